//! A persistent hash map with structure sharing: extendible hashing over `Arc`ed buckets.
//!
//! Cloning a [`CowMap`] costs two reference-count increments. Changing a clone copies the
//! directory (24 bytes per bucket) and the one bucket touched (at most [`BUCKET_MAX`]
//! entries, a few kilobytes), never the whole map, so the next snapshot shares everything
//! else with the previous one. Within one batch of changes, `Arc::make_mut` finds the
//! copies already unique and mutates them in place.
//!
//! Lookups are a directory index (bits 32.. of the key's hash) and a linear probe of one
//! small open-addressing table (low bits): about one cache miss, like a plain hash map.
//! Hashes are computed by the caller ([`hash_str`], [`hash_uuid`]) and can be reused
//! across many maps, e.g. one scope hash probed in every principal's grant table.

use std::sync::Arc;

use uuid::Uuid;

/// A bucket splits once it holds more entries than this (3/4 of a 256-slot table).
///
/// Each snapshot that changes a bucket clones every entry in it, so smaller buckets make a
/// write cheaper, but they cost checks more: with 48, the directory and its chunks at size
/// L (4 times as many buckets) fell out of cache, and a check at L took 2.4 times as long
/// at the median (`benches/check.rs`), while bulk creation gained nothing measurable.
pub(crate) const BUCKET_MAX: usize = 192;
/// Buckets never split past this local depth (a pathological hash then just grows a bucket).
const MAX_DEPTH: u32 = 24;

/// Mixes a 64-bit value (murmur3's finalizer): every output bit depends on every input bit.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Hashes a string. Deterministic across processes (the engine's keys are tenant data, and
/// a tenant can only slow down its own lookups by crafting collisions).
#[inline]
pub(crate) fn hash_str(s: &str) -> u64 {
    let bytes = s.as_bytes();
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        // INVARIANT: `chunks_exact(8)` yields 8-byte slices.
        #[allow(clippy::expect_used)]
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        h = (h ^ word)
            .wrapping_mul(0x5851_f42d_4c95_7f2d)
            .rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(buf)).wrapping_mul(0x5851_f42d_4c95_7f2d);
    }
    mix(h)
}

/// Hashes a uuid (ids need not be random: tests and imports use sequential ones).
#[inline]
pub(crate) fn hash_uuid(id: &Uuid) -> u64 {
    let v = id.as_u128();
    mix((v as u64) ^ mix((v >> 64) as u64 ^ 0x2545_f491_4f6c_dd1d))
}

/// A key that knows its hash. Slots do not store the hash beside the key (8 bytes in every
/// slot of every map, issue 16): a key that carries its hash ([`Key`]) answers from it, a
/// uuid recomputes it (a few multiplications) when a table is rebuilt.
pub(crate) trait MapKey: Clone + Eq {
    /// The key's hash, as [`hash_str`] or [`hash_uuid`] computes it.
    fn key_hash(&self) -> u64;

    /// False when this key certainly does not have `hash`: a cheap test run before the
    /// caller's equality on every probed slot.
    fn may_have_hash(&self, hash: u64) -> bool;
}

impl MapKey for Uuid {
    #[inline]
    fn key_hash(&self) -> u64 {
        hash_uuid(self)
    }

    /// Comparing two uuids costs no more than comparing hashes.
    #[inline]
    fn may_have_hash(&self, _hash: u64) -> bool {
        true
    }
}

/// An interned string with its hash: scope paths in the index.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    /// `hash_str(text)`.
    pub hash: u64,
    /// Shared text.
    pub text: Arc<str>,
}

impl Key {
    /// Hashes and copies `text`.
    pub fn new(text: &str) -> Key {
        Key {
            hash: hash_str(text),
            text: Arc::from(text),
        }
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for Key {}

impl MapKey for Key {
    #[inline]
    fn key_hash(&self) -> u64 {
        self.hash
    }

    #[inline]
    fn may_have_hash(&self, hash: u64) -> bool {
        self.hash == hash
    }
}

#[derive(Clone)]
struct Slot<K, V> {
    key: K,
    value: V,
}

/// Smallest table: 8 slots.
const MIN_CAPACITY: usize = 8;

/// An open-addressing table (linear probing, at most 3/4 full) in one shared allocation:
/// a lookup touches the directory entry (hot) and then, usually, one slot.
struct Bucket<K, V> {
    /// How many low bits of the directory index this bucket's entries share.
    depth: u32,
    len: u32,
    /// A power of two long.
    slots: Arc<[Option<Slot<K, V>>]>,
}

impl<K, V> Clone for Bucket<K, V> {
    fn clone(&self) -> Self {
        Bucket {
            depth: self.depth,
            len: self.len,
            slots: Arc::clone(&self.slots),
        }
    }
}

impl<K: MapKey, V: Clone> Bucket<K, V> {
    fn with_capacity(depth: u32, entries: usize) -> Self {
        Table::for_entries(entries).into_bucket(depth)
    }

    #[inline]
    fn find(&self, hash: u64, mut eq: impl FnMut(&K) -> bool) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            match &self.slots[i] {
                None => return None,
                Some(s) if s.key.may_have_hash(hash) && eq(&s.key) => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// Places a slot known to be absent (the caller checked), growing first if needed;
    /// returns its index.
    fn insert_new(&mut self, slot: Slot<K, V>) -> usize {
        if (self.len as usize + 1) * 4 > self.slots.len() * 3 {
            let entries = self.len as usize + 1;
            let mut grown = Table::for_entries(entries);
            self.drain(|s| grown.place(s));
            *self = grown.into_bucket(self.depth);
        }
        let i = place(Arc::make_mut(&mut self.slots), slot);
        self.len += 1;
        i
    }

    /// Hands every entry to `f`, emptying this bucket: moved out when no other snapshot
    /// shares the table (a build, or the second change to a bucket in one batch), cloned
    /// otherwise. The caller replaces the bucket.
    fn drain(&mut self, f: impl FnMut(Slot<K, V>)) {
        match Arc::get_mut(&mut self.slots) {
            Some(slots) => slots.iter_mut().filter_map(Option::take).for_each(f),
            None => self.slots.iter().flatten().cloned().for_each(f),
        }
        self.len = 0;
    }

    /// Removes slot `i`, shifting later entries of its probe run back (no tombstones).
    fn remove_at(&mut self, mut i: usize) -> Slot<K, V> {
        let mask = self.slots.len() - 1;
        let slots = Arc::make_mut(&mut self.slots);
        // INVARIANT: callers pass the index of an occupied slot they just found.
        #[allow(clippy::expect_used)]
        let removed = slots[i].take().expect("occupied");
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(s) = &slots[j] else { break };
            let home = s.key.key_hash() as usize & mask;
            // Move `j` into the hole at `i` unless its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                slots[i] = slots[j].take();
                i = j;
            }
        }
        self.len -= 1;
        removed
    }
}

/// The smallest table (a power of two, at least [`MIN_CAPACITY`]) at most 3/4 full with
/// `entries`.
fn capacity_for(entries: usize) -> usize {
    let mut capacity = MIN_CAPACITY;
    while capacity * 3 / 4 < entries {
        capacity *= 2;
    }
    capacity
}

/// Linear probing from `slot`'s home to the first free place, which is filled; returns its
/// index. The table has a free slot (tables are at most 3/4 full).
fn place<K: MapKey, V>(slots: &mut [Option<Slot<K, V>>], slot: Slot<K, V>) -> usize {
    let mask = slots.len() - 1;
    let mut i = slot.key.key_hash() as usize & mask;
    while slots[i].is_some() {
        i = (i + 1) & mask;
    }
    slots[i] = Some(slot);
    i
}

/// A table being filled, before it is shared.
struct Table<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    len: u32,
}

impl<K: MapKey, V> Table<K, V> {
    fn for_entries(entries: usize) -> Self {
        Table {
            slots: (0..capacity_for(entries)).map(|_| None).collect(),
            len: 0,
        }
    }

    fn place(&mut self, slot: Slot<K, V>) {
        place(&mut self.slots, slot);
        self.len += 1;
    }

    fn into_bucket(self, depth: u32) -> Bucket<K, V> {
        Bucket {
            depth,
            len: self.len,
            slots: self.slots.into(),
        }
    }
}

/// A persistent hash map; see the module docs.
pub(crate) struct CowMap<K, V> {
    /// `1 << depth` slots, each naming a bucket; a bucket of local depth `d` is named by
    /// `1 << (depth - d)` slots (those agreeing in their low `d` bits).
    slots: Arc<[u32]>,
    /// The buckets, [`CHUNK`] to a shared chunk (every chunk full but the last), so a change
    /// copies one chunk and the chunk list rather than every bucket handle.
    /// INVARIANT: each bucket is held once here, so `Arc::make_mut` on its table copies
    /// only when another snapshot shares it.
    buckets: Arc<[Chunk<K, V>]>,
    /// Total number of buckets.
    count: usize,
    depth: u32,
    len: usize,
}

/// Buckets per directory chunk.
const CHUNK: usize = 64;

/// [`CHUNK`] buckets, shared between snapshots until one of them changes.
type Chunk<K, V> = Arc<[Bucket<K, V>]>;

impl<K, V> Clone for CowMap<K, V> {
    fn clone(&self) -> Self {
        CowMap {
            slots: Arc::clone(&self.slots),
            buckets: Arc::clone(&self.buckets),
            count: self.count,
            depth: self.depth,
            len: self.len,
        }
    }
}

impl<K: MapKey, V: Clone> Default for CowMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn dir_bits(hash: u64) -> usize {
    (hash >> 32) as usize
}

impl<K: MapKey, V: Clone> CowMap<K, V> {
    /// An empty map (one empty bucket).
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty map whose directory is already sized for about `n` entries, so building it
    /// does not split buckets over and over.
    pub fn with_capacity(n: usize) -> Self {
        let mut depth = 0;
        while depth < 16 && (BUCKET_MAX / 2) << depth < n {
            depth += 1;
        }
        let per_bucket = n >> depth;
        let count = 1usize << depth;
        let all: Vec<Bucket<K, V>> = (0..count)
            .map(|_| Bucket::with_capacity(depth, per_bucket))
            .collect();
        CowMap {
            slots: (0..1u32 << depth).collect(),
            buckets: all.chunks(CHUNK).map(Arc::from).collect(),
            count,
            depth,
            len: 0,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn bucket_of(&self, hash: u64) -> usize {
        self.slots[dir_bits(hash) & ((1usize << self.depth) - 1)] as usize
    }

    #[inline]
    fn bucket(&self, b: usize) -> &Bucket<K, V> {
        &self.buckets[b / CHUNK][b % CHUNK]
    }

    /// The entry whose key has `hash` and satisfies `eq`.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(&K) -> bool) -> Option<(&K, &V)> {
        let bucket = self.bucket(self.bucket_of(hash));
        let i = bucket.find(hash, eq)?;
        bucket.slots[i].as_ref().map(|s| (&s.key, &s.value))
    }

    /// The value stored under `key`.
    #[inline]
    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key.key_hash(), |k| k == key).map(|(_, v)| v)
    }

    fn bucket_mut(&mut self, b: usize) -> &mut Bucket<K, V> {
        let chunk = &mut Arc::make_mut(&mut self.buckets)[b / CHUNK];
        &mut Arc::make_mut(chunk)[b % CHUNK]
    }

    /// The value under `key`, copied out of shared structure first if needed.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let hash = key.key_hash();
        let b = self.bucket_of(hash);
        // Look first so a miss copies nothing.
        let i = self.bucket(b).find(hash, |k| k == key)?;
        let bucket = self.bucket_mut(b);
        Arc::make_mut(&mut bucket.slots)[i]
            .as_mut()
            .map(|s| &mut s.value)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = key.key_hash();
        let b = self.bucket_of(hash);
        if let Some(i) = self.bucket(b).find(hash, |k| *k == key) {
            let bucket = self.bucket_mut(b);
            // INVARIANT: `find` returned `i` for an occupied slot of this bucket.
            #[allow(clippy::expect_used)]
            let slot = Arc::make_mut(&mut bucket.slots)[i].as_mut().expect("found");
            return Some(std::mem::replace(&mut slot.value, value));
        }
        self.insert_absent(b, hash, key, value);
        None
    }

    /// Inserts `key`, known absent, into bucket `b` (its bucket); returns where it went:
    /// its bucket and index (the bucket may have split).
    fn insert_absent(&mut self, b: usize, hash: u64, key: K, value: V) -> (usize, usize) {
        let bucket = self.bucket_mut(b);
        let i = bucket.insert_new(Slot { key, value });
        let full = bucket.len as usize > BUCKET_MAX && bucket.depth < MAX_DEPTH;
        self.len += 1;
        if !full {
            return (b, i);
        }
        // INVARIANT: `insert_new` placed the entry at `i`.
        #[allow(clippy::expect_used)]
        let key = self.bucket(b).slots[i]
            .as_ref()
            .map(|slot| slot.key.clone())
            .expect("placed just above");
        self.split(hash);
        let b = self.bucket_of(hash);
        // INVARIANT: splitting moves entries between buckets, never drops one.
        #[allow(clippy::expect_used)]
        let i = self
            .bucket(b)
            .find(hash, |k| *k == key)
            .expect("kept by the split");
        (b, i)
    }

    /// The value under `key`, inserting `make()` first when absent. One probe when present,
    /// and no second lookup after an insert (building a snapshot calls this per row).
    #[allow(clippy::expect_used)] // see the INVARIANT below
    pub fn get_or_insert_with(&mut self, key: &K, make: impl FnOnce() -> V) -> &mut V {
        let hash = key.key_hash();
        let b = self.bucket_of(hash);
        let (b, i) = match self.bucket(b).find(hash, |k| k == key) {
            Some(i) => (b, i),
            None => self.insert_absent(b, hash, key.clone(), make()),
        };
        let bucket = self.bucket_mut(b);
        // INVARIANT: slot `i` of bucket `b` holds the key: found, or just inserted there.
        Arc::make_mut(&mut bucket.slots)[i]
            .as_mut()
            .map(|s| &mut s.value)
            .expect("present")
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = key.key_hash();
        let b = self.bucket_of(hash);
        let i = self.bucket(b).find(hash, |k| k == key)?;
        let slot = self.bucket_mut(b).remove_at(i);
        self.len -= 1;
        Some(slot.value)
    }

    /// Splits the bucket that `hash` falls in, doubling the directory when the bucket is
    /// already as deep as the directory. Copies the directory when it doubles or another
    /// snapshot shares it, and that bucket's entries.
    fn split(&mut self, hash: u64) {
        let b = self.bucket_of(hash);
        let local = self.bucket(b).depth;
        if local == self.depth {
            let mut doubled = Vec::with_capacity(self.slots.len() * 2);
            doubled.extend_from_slice(&self.slots);
            doubled.extend_from_slice(&self.slots);
            self.slots = doubled.into();
            self.depth += 1;
        }
        // Moves the entries when the table is not shared (a build), copies them otherwise.
        let old = self.bucket_mut(b);
        let half = old.len as usize / 2 + 1;
        let (mut low, mut high) = (Table::for_entries(half), Table::for_entries(half));
        old.drain(|s| {
            if (dir_bits(s.key.key_hash()) >> local) & 1 == 0 {
                low.place(s);
            } else {
                high.place(s);
            }
        });
        *old = low.into_bucket(local + 1);
        let high = high.into_bucket(local + 1);
        let nb = self.count as u32;
        let chunks = Arc::make_mut(&mut self.buckets);
        if self.count % CHUNK == 0 {
            let mut list = chunks.to_vec();
            list.push(Arc::from(vec![high]));
            self.buckets = list.into();
        } else {
            // INVARIANT: this branch runs only when there is at least one chunk.
            #[allow(clippy::expect_used)]
            let last = chunks.last_mut().expect("one chunk at least");
            let mut grown = last.to_vec();
            grown.push(high);
            *last = grown.into();
        }
        self.count += 1;
        // Changed in place when no other snapshot shares the directory (a build, or the
        // second split in one batch of changes), copied once otherwise.
        let slots = Arc::make_mut(&mut self.slots);
        let base = dir_bits(hash) & ((1usize << local) - 1);
        let mut j = base;
        while j < slots.len() {
            if (j >> local) & 1 == 1 {
                slots[j] = nb;
            }
            j += 1 << local;
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.buckets
            .iter()
            .flat_map(|c| c.iter())
            .flat_map(|b| b.slots.iter().flatten().map(|s| (&s.key, &s.value)))
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_map_behaves_like_a_hash_map_through_many_splits() {
        let mut map: CowMap<Uuid, u64> = CowMap::new();
        let mut model = std::collections::HashMap::new();
        for n in 0..20_000u128 {
            map.insert(id(n * 7919 % 30_011), n as u64);
            model.insert(id(n * 7919 % 30_011), n as u64);
            if n % 3 == 0 {
                map.remove(&id(n));
                model.remove(&id(n));
            }
        }
        assert_eq!(map.len(), model.len());
        assert_eq!(map.iter().count(), model.len());
        for (k, v) in &model {
            assert_eq!(map.get(k), Some(v));
        }
        assert!(map.depth > 4, "the directory grew");
    }

    #[test]
    fn changing_a_clone_leaves_the_original_untouched_and_shares_other_buckets() {
        let mut a: CowMap<Uuid, u64> = CowMap::new();
        for n in 0..40_000 {
            a.insert(id(n), n as u64);
        }
        let mut b = a.clone();
        b.insert(id(5), 99);
        b.remove(&id(6));
        *b.get_mut(&id(7)).unwrap() = 77;
        assert_eq!(a.get(&id(5)), Some(&5));
        assert_eq!(a.get(&id(6)), Some(&6));
        assert_eq!(a.get(&id(7)), Some(&7));
        assert_eq!(b.get(&id(5)), Some(&99));
        assert_eq!(b.get(&id(6)), None);
        assert_eq!(b.get(&id(7)), Some(&77));
        let (a_all, b_all) = (
            a.buckets.iter().flat_map(|c| c.iter()),
            b.buckets.iter().flat_map(|c| c.iter()),
        );
        let shared = a_all
            .zip(b_all)
            .filter(|(x, y)| Arc::ptr_eq(&x.slots, &y.slots))
            .count();
        assert!(shared + 3 >= a.count, "at most three buckets were copied");
        assert!(a.count > CHUNK, "the directory has several chunks");
    }
}
