//! Signing keys: where an issuer's JWKS comes from, and the cache that keeps the last good
//! set, refreshes it on schedule and once (rate-limited) on an unknown `kid`.
//!
//! A key set's age and the forced-fetch rate limit are read from the injected [`Clock`], the
//! one decisions use, so a test moves time instead of sleeping.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::decide::Clock;
use crate::model::Timestamp;

/// The largest JWKS or discovery document read, in bytes: reading stops there.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS url.
    JwksUri(String),
    /// OIDC discovery: the document at `url` names the JWKS; its `issuer` must equal ours.
    Discovery {
        /// `<issuer>/.well-known/openid-configuration`.
        url: String,
        /// The configured issuer, which the document must repeat.
        issuer: String,
    },
    /// A JWKS file, re-read on each refresh.
    File(PathBuf),
    /// Keys held in memory (the dev issuer).
    Static(JwkSet),
}

/// One usable verification key.
pub struct Key {
    /// Its `kid`, when published with one.
    pub kid: Option<String>,
    /// The algorithm the JWK pins, when it pins one.
    pub alg: Option<Algorithm>,
    /// The algorithms this key's type can verify.
    pub family: &'static [Algorithm],
    /// The key.
    pub decoding: DecodingKey,
}

/// A fetched key set.
pub struct KeySet {
    /// The usable keys (symmetric, encryption-only and unsupported keys are dropped).
    pub keys: Vec<Key>,
    /// When it was fetched, by the verifier's clock.
    pub fetched_at: Timestamp,
}

impl KeySet {
    /// Builds a set fetched at `fetched_at` from a JWKS, keeping only public signature keys.
    pub fn from_jwks(set: &JwkSet, fetched_at: Timestamp) -> KeySet {
        KeySet {
            keys: set.keys.iter().filter_map(usable).collect(),
            fetched_at,
        }
    }

    /// The key a token names; without a `kid`, the only key that can verify `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Key> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let mut fits = self.keys.iter().filter(|k| k.family.contains(&alg));
                match (fits.next(), fits.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }
}

const RSA: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];
const EC_P256: &[Algorithm] = &[Algorithm::ES256];
const EC_P384: &[Algorithm] = &[Algorithm::ES384];
const ED: &[Algorithm] = &[Algorithm::EdDSA];

fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            jsonwebtoken::jwk::EllipticCurve::P256 => EC_P256,
            jsonwebtoken::jwk::EllipticCurve::P384 => EC_P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            jsonwebtoken::jwk::EllipticCurve::Ed25519 => ED,
            _ => return None,
        },
        // A symmetric key in a JWKS is never a verification key for us.
        AlgorithmParameters::OctetKey(_) => return None,
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
    };
    if alg.is_some_and(|a| !family.contains(&a)) {
        return None;
    }
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        family,
        decoding,
    })
}

/// The cached key set of one issuer.
pub struct KeyCache {
    source: KeySource,
    http: reqwest::Client,
    timeout: Duration,
    /// Stamps fetched sets and times the forced-fetch rate limit.
    clock: Arc<dyn Clock>,
    current: arc_swap::ArcSwapOption<KeySet>,
    /// Serializes fetches, so a burst of unknown `kid`s makes one request.
    fetching: tokio::sync::Mutex<()>,
    /// When the last forced (unscheduled) fetch started, by the clock.
    last_forced: Mutex<Option<Timestamp>>,
    /// The last fetch failure, for messages.
    last_error: Mutex<Option<String>>,
    /// Fetches that succeeded, and that failed (for metrics).
    fetched: AtomicU64,
    failed: AtomicU64,
}

impl KeyCache {
    /// An empty cache reading time from `clock`; static sources are loaded at once.
    pub fn new(
        source: KeySource,
        http: reqwest::Client,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> KeyCache {
        let initial = match &source {
            KeySource::Static(set) => Some(Arc::new(KeySet::from_jwks(set, clock.now()))),
            _ => None,
        };
        KeyCache {
            source,
            http,
            timeout,
            clock,
            current: arc_swap::ArcSwapOption::new(initial),
            fetching: tokio::sync::Mutex::new(()),
            last_forced: Mutex::new(None),
            last_error: Mutex::new(None),
            fetched: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The last good key set.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.current.load_full()
    }

    /// How long ago, by the clock, `set` was fetched (zero if the clock reads earlier).
    pub fn age(&self, set: &KeySet) -> Duration {
        since(set.fetched_at, self.clock.now())
    }

    /// Why the last fetch failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// How many fetches succeeded and how many failed, since start (a static set loaded at
    /// start is neither).
    pub fn fetch_counts(&self) -> (u64, u64) {
        (
            self.fetched.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Fetches now, replacing the set on success and keeping it on failure.
    pub async fn refresh(&self) -> Result<(), String> {
        let _one_at_a_time = self.fetching.lock().await;
        self.fetch_and_store().await
    }

    /// Fetches unless a forced fetch started within `min_interval` by the clock (then does
    /// nothing and answers false). Waits for a fetch already under way instead of starting
    /// another.
    pub async fn refresh_forced(&self, min_interval: Duration) -> bool {
        let before = self.current();
        let _one_at_a_time = self.fetching.lock().await;
        // Someone else fetched while we waited: use theirs. (`before` keeps the old set
        // alive, so a new set cannot reuse its address.)
        let fetched_meanwhile = match (&before, &self.current()) {
            (None, None) => false,
            (Some(old), Some(new)) => !Arc::ptr_eq(old, new),
            _ => true,
        };
        if fetched_meanwhile {
            return true;
        }
        {
            let Ok(mut last) = self.last_forced.lock() else {
                return false;
            };
            let now = self.clock.now();
            if last.is_some_and(|t| since(t, now) < min_interval) {
                return false;
            }
            *last = Some(now);
        }
        self.fetch_and_store().await.is_ok()
    }

    async fn fetch_and_store(&self) -> Result<(), String> {
        let result = self.fetch().await;
        let counter = if result.is_ok() {
            &self.fetched
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.as_ref().err().cloned();
        }
        let set = result?;
        let fetched = KeySet::from_jwks(&set, self.clock.now());
        self.current.store(Some(Arc::new(fetched)));
        Ok(())
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        match &self.source {
            KeySource::Static(set) => Ok(set.clone()),
            KeySource::File(path) => {
                let text = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                serde_json::from_slice(&text)
                    .map_err(|e| format!("`{}` is not a JWKS: {e}", path.display()))
            }
            KeySource::JwksUri(uri) => self.get_json(uri).await,
            KeySource::Discovery { url, issuer } => {
                #[derive(serde::Deserialize)]
                struct Discovery {
                    issuer: String,
                    jwks_uri: String,
                }
                let doc: Discovery = self.get_json(url).await?;
                if doc.issuer != *issuer {
                    return Err(format!(
                        "the discovery document at {url} names issuer `{}`, not `{issuer}`",
                        doc.issuer
                    ));
                }
                let jwks = reqwest::Url::parse(&doc.jwks_uri)
                    .map_err(|e| format!("discovery names a bad jwks_uri: {e}"))?;
                let from = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
                // Keys over https, or over http only from the loopback host we were given.
                let loopback_http = from.scheme() == "http" && jwks.host_str() == from.host_str();
                if jwks.scheme() != "https" && !loopback_http {
                    return Err(format!(
                        "discovery names `{jwks}`, which is neither https nor on {url}'s host"
                    ));
                }
                self.get_json(jwks.as_str()).await
            }
        }
    }

    /// GETs `url` and parses its JSON body, reading at most [`MAX_DOCUMENT_BYTES`]: a
    /// declared length over the cap is refused before the body is read, and an undeclared
    /// (chunked) body is read chunk by chunk and dropped, with its connection, as soon as it
    /// passes the cap. So a hostile or broken key location costs at most the cap in memory.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let mut response = self
            .http
            .get(url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: status {}", response.status()));
        }
        let too_big = || format!("GET {url}: document over {MAX_DOCUMENT_BYTES} bytes");
        let declared = response.content_length();
        if declared.is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(too_big());
        }
        // INVARIANT: `declared` is at most the cap here, so this allocation is bounded.
        let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the JSON expected: {e}"))
    }
}

/// The time from `then` to `now`; zero when `now` is earlier (a wall clock set back).
fn since(then: Timestamp, now: Timestamp) -> Duration {
    (now - then).to_std().unwrap_or(Duration::ZERO)
}
