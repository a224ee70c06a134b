//! Compiled action patterns.
//!
//! A pattern is lowercased and turned into tokens once, when its role is compiled. Segment
//! keywords become segment classes: `allEntities` is exactly one segment, `allTasks` one or
//! more, `allProperties` zero or more (it absorbs one neighbouring `/`, so
//! `a/allProperties/read` matches `a/read` and `a/x/y/read`). `*` matches any run of
//! characters, `/` included. The common shapes (exact, `prefix*`, `*suffix`, `*`) get
//! direct string tests; everything else runs a position-set simulation over the action's
//! at most [`MAX_ACTION_LEN`] bytes, linear in pattern length, with no backtracking.

use crate::model::MAX_ACTION_LEN;

/// Lowercase keyword: exactly one segment.
const ALL_ENTITIES: &str = "allentities";
/// Lowercase keyword: zero or more segments.
const ALL_PROPERTIES: &str = "allproperties";
/// Lowercase keyword: one or more segments.
const ALL_TASKS: &str = "alltasks";

/// One step of a general pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// These bytes, exactly.
    Lit(Box<str>),
    /// `.*`
    Star,
    /// `[^/]+` (allEntities).
    OneSeg,
    /// `[^/]+(/[^/]+)*` (allTasks).
    Segs,
    /// `(/[^/]+)*` (allProperties after a segment).
    SlashSegs,
    /// `([^/]+/)*` (allProperties at the start).
    SegsSlash,
}

/// A compiled pattern. Matches lowercase actions (the caller lowercases once per check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Matcher {
    /// No wildcard or keyword: equality.
    Exact(Box<str>),
    /// Matches every action.
    Any,
    /// `lit*`.
    Prefix(Box<str>),
    /// `*lit`.
    Suffix(Box<str>),
    /// Anything else.
    General(Box<[Tok]>),
}

impl Matcher {
    /// Compiles `pattern` (any case).
    pub fn compile(pattern: &str) -> Matcher {
        let lower = pattern.to_ascii_lowercase();
        let segments: Vec<&str> = lower.split('/').collect();
        let keyword = |s: &str| s == ALL_ENTITIES || s == ALL_PROPERTIES || s == ALL_TASKS;
        if !lower.contains('*') && !segments.iter().any(|s| keyword(s)) {
            return Matcher::Exact(lower.into());
        }
        if segments.iter().all(|s| *s == ALL_PROPERTIES) {
            return Matcher::Any;
        }
        let mut toks: Vec<Tok> = Vec::new();
        let mut lit = String::new();
        let flush = |lit: &mut String, toks: &mut Vec<Tok>| {
            if !lit.is_empty() {
                toks.push(Tok::Lit(std::mem::take(lit).into()));
            }
        };
        // After a segment, the next real segment needs a `/` first.
        let mut after = false;
        for segment in segments {
            if segment == ALL_PROPERTIES {
                flush(&mut lit, &mut toks);
                toks.push(if after {
                    Tok::SlashSegs
                } else {
                    Tok::SegsSlash
                });
                continue;
            }
            if after {
                lit.push('/');
            }
            match segment {
                ALL_ENTITIES | ALL_TASKS => {
                    flush(&mut lit, &mut toks);
                    toks.push(if segment == ALL_TASKS {
                        Tok::Segs
                    } else {
                        Tok::OneSeg
                    });
                }
                _ => {
                    for (i, part) in segment.split('*').enumerate() {
                        if i > 0 {
                            flush(&mut lit, &mut toks);
                            if toks.last() != Some(&Tok::Star) {
                                toks.push(Tok::Star);
                            }
                        }
                        lit.push_str(part);
                    }
                }
            }
            after = true;
        }
        flush(&mut lit, &mut toks);
        match toks.as_slice() {
            [Tok::Star] => Matcher::Any,
            [Tok::Lit(l), Tok::Star] => Matcher::Prefix(l.clone()),
            [Tok::Star, Tok::Lit(l)] => Matcher::Suffix(l.clone()),
            [Tok::Lit(l)] => Matcher::Exact(l.clone()),
            _ => Matcher::General(toks.into()),
        }
    }

    /// The exact (lowercase) action, when the pattern has no wildcard.
    pub fn exact(&self) -> Option<&str> {
        match self {
            Matcher::Exact(s) => Some(s),
            _ => None,
        }
    }

    /// True when `action` (lowercase, a valid action) matches.
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Matcher::Exact(s) => **s == *action,
            Matcher::Any => true,
            Matcher::Prefix(p) => action.starts_with(&**p),
            Matcher::Suffix(p) => action.ends_with(&**p),
            Matcher::General(toks) => simulate(toks, action.as_bytes()),
        }
    }
}

const WORDS: usize = MAX_ACTION_LEN / 64 + 1;

/// A set of positions `0..=len` in the action.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Bits([u64; WORDS]);

impl Bits {
    const EMPTY: Bits = Bits([0; WORDS]);

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// Every position from `from` to `last`, inclusive.
    fn range(from: usize, last: usize) -> Bits {
        let mut b = Bits::EMPTY;
        for (w, word) in b.0.iter_mut().enumerate() {
            let lo = w * 64;
            let hi = lo + 63;
            if from > hi || last < lo {
                continue;
            }
            let a = from.max(lo) - lo;
            let z = last.min(hi) - lo;
            let ones = if z - a == 63 {
                u64::MAX
            } else {
                ((1u64 << (z - a + 1)) - 1) << a
            };
            *word |= ones;
        }
        b
    }

    fn and(self, o: Bits) -> Bits {
        let mut r = self;
        r.0.iter_mut().zip(o.0).for_each(|(a, b)| *a &= b);
        r
    }

    fn or(self, o: Bits) -> Bits {
        let mut r = self;
        r.0.iter_mut().zip(o.0).for_each(|(a, b)| *a |= b);
        r
    }

    fn not(self) -> Bits {
        let mut r = self;
        r.0.iter_mut().for_each(|a| *a = !*a);
        r
    }

    fn count(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(w * 64 + bit)
            })
        })
    }

    /// The smallest position satisfying `keep`.
    fn min_where(&self, keep: impl Fn(usize) -> bool) -> Option<usize> {
        self.iter().find(|&p| keep(p))
    }
}

/// Runs the tokens over `s`, tracking every position a prefix of the pattern can end at.
fn simulate(toks: &[Tok], s: &[u8]) -> bool {
    let n = s.len();
    if n > MAX_ACTION_LEN {
        return false;
    }
    let all = Bits::range(0, n);
    // Positions q with s[q-1] == '/'.
    let mut slash_before = Bits::EMPTY;
    for (i, &c) in s.iter().enumerate() {
        if c == b'/' {
            slash_before.set(i + 1);
        }
    }
    let slash_at = |p: usize| p < n && s[p] == b'/';
    let mut cur = Bits::EMPTY;
    cur.set(0);
    for tok in toks {
        cur = match tok {
            Tok::Lit(l) => {
                let l = l.as_bytes();
                let mut next = Bits::EMPTY;
                if cur.count() <= 4 {
                    for p in cur.iter() {
                        if s[p..].starts_with(l) {
                            next.set(p + l.len());
                        }
                    }
                } else if let Some(first) = cur.iter().next() {
                    let mut from = first;
                    while from + l.len() <= n {
                        match find(&s[from..], l) {
                            Some(i) => {
                                if cur.has(from + i) {
                                    next.set(from + i + l.len());
                                }
                                from += i + 1;
                            }
                            None => break,
                        }
                    }
                }
                next
            }
            Tok::Star => match cur.iter().next() {
                Some(m) => Bits::range(m, n),
                None => Bits::EMPTY,
            },
            Tok::OneSeg => {
                let mut next = Bits::EMPTY;
                for p in cur.iter().filter(|&p| p < n && s[p] != b'/') {
                    let end = s[p..].iter().position(|&c| c == b'/').map_or(n, |i| p + i);
                    next = next.or(Bits::range(p + 1, end));
                }
                next
            }
            Tok::Segs => match cur.min_where(|p| p < n && !slash_at(p)) {
                Some(m) => Bits::range(m + 1, n).and(slash_before.not()).and(all),
                None => Bits::EMPTY,
            },
            Tok::SlashSegs => match cur.min_where(slash_at) {
                Some(m) => cur.or(Bits::range(m + 1, n).and(slash_before.not()).and(all)),
                None => cur,
            },
            Tok::SegsSlash => match cur.min_where(|p| p < n && !slash_at(p)) {
                Some(m) => cur.or(Bits::range(m + 1, n).and(slash_before)),
                None => cur,
            },
        };
        if cur.is_empty() {
            return false;
        }
    }
    cur.has(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, a: &str) -> bool {
        Matcher::compile(p).matches(&a.to_ascii_lowercase())
    }

    #[test]
    fn shapes_compile_to_their_fast_paths() {
        assert!(matches!(Matcher::compile("a/b/Read"), Matcher::Exact(s) if &*s == "a/b/read"));
        assert_eq!(Matcher::compile("*"), Matcher::Any);
        assert!(matches!(
            Matcher::compile("contoso.expenses/*"),
            Matcher::Prefix(_)
        ));
        assert!(matches!(Matcher::compile("*/read"), Matcher::Suffix(_)));
        assert!(matches!(
            Matcher::compile("a/allProperties/allTasks"),
            Matcher::General(_)
        ));
    }

    #[test]
    fn keywords_match_their_segment_counts() {
        let all = "microsoft.directory/applications/allProperties/allTasks";
        assert!(m(
            all,
            "microsoft.directory/applications/credentials/update"
        ));
        assert!(m(all, "microsoft.directory/applications/delete"));
        assert!(m(all, "microsoft.directory/applications/a/b/c"));
        assert!(!m(all, "microsoft.directory/applications"));
        assert!(!m(all, "microsoft.directory/applicationsx/delete"));
        let read = "microsoft.directory/applications/allProperties/read";
        assert!(m(read, "microsoft.directory/applications/read"));
        assert!(m(read, "microsoft.directory/applications/owners/read"));
        assert!(m(read, "microsoft.directory/applications/a/b/read"));
        assert!(!m(read, "microsoft.directory/applications/owners/update"));
        assert!(!m(read, "microsoft.directory/applications/xread"));
        let ent = "microsoft.azure.supportTickets/allEntities/allTasks";
        assert!(m(ent, "microsoft.azure.supportTickets/tickets/create"));
        assert!(!m(ent, "microsoft.azure.supportTickets/tickets"));
        assert!(m("a/allEntities/read", "a/x/read"));
        assert!(!m("a/allEntities/read", "a/x/y/read"));
        assert!(!m("a/allEntities/read", "a/read"));
        assert!(m("allProperties/read", "read"));
        assert!(m("allProperties/read", "x/y/read"));
        assert!(m("ALLPROPERTIES/ALLTASKS", "x/y"));
    }

    #[test]
    fn a_star_crosses_segments_and_may_be_empty() {
        assert!(m("contoso.expenses/*", "contoso.expenses/reports/approve"));
        assert!(m("*/read", "a/b/read"));
        assert!(!m("*/read", "a/b/reads"));
        assert!(m("a*/c", "ab/x/c"));
        assert!(m("ab*", "ab/c"));
        assert!(m("a/x*y/b", "a/x1/y/b"));
        assert!(m("a*b*c/d", "abc/d"));
        assert!(!m("a*b*c/d", "acb/d"));
        assert!(!m("*a*a*a*a*a*a*a*b", &format!("{}/c", "a".repeat(200))));
        assert!(m("*a*a*a*a*a*a*a*b", &format!("{}b", "a/".repeat(100))));
        assert!(m("a*/allTasks", "ab/c/d"));
        assert!(!m("a*/allTasks", "ab"));
    }
}
