//! [`Verifier`]: turns a bearer token into an [`Identity`], or says exactly why not.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::keys::{KeyCache, KeySet, KeySource};
use super::settings::IssuerSpec;
use super::{Identity, TokenError, MAX_TOKEN_BYTES};
use crate::decide::{Clock, SystemClock};
use crate::model::TenantId;

/// One trusted issuer and its key cache.
struct Issuer {
    spec: IssuerSpec,
    keys: KeyCache,
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One issuer's key fetches since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFetches<'a> {
    /// The issuer as configured (a `{tid}` template stays one issuer).
    pub issuer: &'a str,
    /// Fetches that succeeded, scheduled or forced.
    pub refreshes: u64,
    /// Fetches that failed (the last good set was kept).
    pub failures: u64,
}

/// Validates tokens against the trusted issuers. Cheap to share behind an `Arc`.
pub struct Verifier {
    issuers: Vec<Arc<Issuer>>,
    default_tenant: TenantId,
    /// Tokens already validated, so a token presented again skips the signature check.
    cache: std::sync::Mutex<TokenCache>,
    /// `now` for token lifetimes and the cache; the key caches share it.
    clock: Arc<dyn Clock>,
    _refreshers: Vec<AbortOnDrop>,
}

/// How many validated tokens are remembered (the cache is emptied when full).
const CACHE_CAPACITY: usize = 8192;
/// How many bytes of token text the cache may hold.
const CACHE_BYTES: usize = 8 << 20;

/// Validated tokens by their whole text, and the bytes of text held.
#[derive(Default)]
struct TokenCache {
    entries: HashMap<Box<str>, Verified>,
    bytes: usize,
}

/// A validated token, valid while its issuer still serves the same fresh key set and the
/// token has not expired.
struct Verified {
    identity: Identity,
    issuer: usize,
    keys: Arc<KeySet>,
    /// `exp` plus the leeway.
    until: i64,
}

/// Header members that point at or carry key material: never followed, never trusted.
const KEY_HEADERS: [&str; 4] = ["jku", "x5u", "x5c", "jwk"];

impl Verifier {
    /// A verifier for `issuers` on the system clock; tokens without a tenant claim (where
    /// allowed) act in `default_tenant`. Must be called inside a tokio runtime: it starts
    /// one refresh task per issuer with a remote key source, which fetches at once and then
    /// on schedule.
    pub fn start(issuers: Vec<IssuerSpec>, default_tenant: TenantId) -> anyhow::Result<Verifier> {
        Self::start_with(issuers, default_tenant, Arc::new(SystemClock))
    }

    /// [`Verifier::start`] reading `now` from `clock`: token lifetimes (`exp`, `nbf`, `iat`,
    /// and how long a validated token is remembered), a key set's age against
    /// `jwks_max_stale_seconds` and the `jwks_min_refetch_seconds` rate limit. Those are all
    /// checked as a token is verified, and a stale key set is refetched right then, so a
    /// test that moves `clock` sees them move with it. Only the refresh tasks' schedule
    /// (`jwks_refresh_seconds`, and the quicker retry after a failed fetch) runs on real
    /// time.
    pub fn start_with(
        issuers: Vec<IssuerSpec>,
        default_tenant: TenantId,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Verifier> {
        let http = reqwest::Client::builder()
            // Key locations are checked once (https, or loopback http); a redirect could lead
            // anywhere, so none is followed.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rolecall/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let issuers: Vec<Arc<Issuer>> = issuers
            .into_iter()
            .map(|spec| {
                let keys = KeyCache::new(
                    spec.source.clone(),
                    http.clone(),
                    spec.fetch_timeout,
                    clock.clone(),
                );
                Arc::new(Issuer { spec, keys })
            })
            .collect();
        let refreshers = issuers
            .iter()
            .filter(|i| !matches!(i.spec.source, KeySource::Static(_)))
            .map(|issuer| AbortOnDrop(tokio::spawn(refresh_loop(issuer.clone()))))
            .collect();
        Ok(Verifier {
            issuers,
            default_tenant,
            cache: std::sync::Mutex::new(TokenCache::default()),
            clock,
            _refreshers: refreshers,
        })
    }

    /// Per trusted issuer, how often its keys were fetched and failed to be (for metrics).
    pub fn key_fetches(&self) -> impl Iterator<Item = KeyFetches<'_>> {
        self.issuers.iter().map(|issuer| {
            let (refreshes, failures) = issuer.keys.fetch_counts();
            KeyFetches {
                issuer: &issuer.spec.name,
                refreshes,
                failures,
            }
        })
    }

    /// True when no issuer is trusted (only the admin key can authenticate).
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Validates `token` and reads its identity. A token validated before is answered from
    /// a cache (the whole token is the key, so a token differing in any byte is validated
    /// afresh) while it is unexpired and its issuer's key set is the same one, still within
    /// the staleness bound: a rotation or refresh of the keys revalidates every token.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        if let Some(identity) = self.cached(token) {
            return Ok(identity);
        }
        let (identity, issuer, keys, until) = self.verify_uncached(token).await?;
        if let Ok(mut cache) = self.cache.lock() {
            // Emptied wholesale when full: cheap, and every entry is revalidated in time.
            if cache.entries.len() >= CACHE_CAPACITY || cache.bytes + token.len() > CACHE_BYTES {
                cache.entries.clear();
                cache.bytes = 0;
            }
            let entry = Verified {
                identity: identity.clone(),
                issuer,
                keys,
                until,
            };
            if cache.entries.insert(token.into(), entry).is_none() {
                cache.bytes += token.len();
            }
        }
        Ok(identity)
    }

    fn cached(&self, token: &str) -> Option<Identity> {
        let mut cache = self.cache.lock().ok()?;
        let hit = cache.entries.get(token)?;
        let issuer = self.issuers.get(hit.issuer)?;
        let current = issuer.keys.current();
        let fresh = current
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &hit.keys) && issuer.within_staleness(c));
        if fresh && self.clock.now().timestamp() <= hit.until {
            return Some(hit.identity.clone());
        }
        if cache.entries.remove(token).is_some() {
            cache.bytes = cache.bytes.saturating_sub(token.len());
        }
        None
    }

    async fn verify_uncached(
        &self,
        token: &str,
    ) -> Result<(Identity, usize, Arc<KeySet>, i64), TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::invalid(format!(
                "the token is over {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::invalid(
                "the token is not a signed JWT (three base64url parts separated by dots)",
            ));
        };
        let header = decode_part(header, "header")?;
        let alg = check_header(&header)?;
        let claims = decode_part(payload, "payload")?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| TokenError::invalid("the token has no `iss` claim"))?;
        let (index, issuer, bound_tenant) = self
            .issuers
            .iter()
            .enumerate()
            .find_map(|(n, i)| i.spec.matcher.matches(iss).map(|t| (n, i, t)))
            .ok_or_else(|| TokenError::invalid(format!("issuer `{iss}` is not trusted")))?;
        let spec = &issuer.spec;
        if !spec.algorithms.contains(&alg) {
            return Err(TokenError::invalid(format!(
                "algorithm {alg:?} is not accepted for issuer `{}`",
                spec.name
            )));
        }
        let kid = header.get("kid").map(|k| match k.as_str() {
            Some(k) => Ok(k),
            None => Err(TokenError::invalid("header `kid` is not a string")),
        });
        let kid = kid.transpose()?;
        let mut set = issuer.fresh_keys().await?;
        let refreshed;
        let key = match set.find(kid, alg) {
            Some(key) => key,
            None => {
                // One refetch for a key we have not seen: the issuer may have rotated.
                issuer.keys.refresh_forced(spec.min_refetch).await;
                refreshed = issuer.keys.current();
                if let Some(r) = &refreshed {
                    set = r.clone();
                }
                refreshed
                    .as_deref()
                    .and_then(|s| s.find(kid, alg))
                    .ok_or_else(|| match kid {
                        Some(kid) => TokenError::invalid(format!(
                            "signing key `{kid}` is not in issuer `{}`'s key set",
                            spec.name
                        )),
                        None => TokenError::invalid(format!(
                            "the token names no `kid` and issuer `{}` has no single {alg:?} key",
                            spec.name
                        )),
                    })?
            }
        };
        if key.alg.is_some_and(|a| a != alg) || !key.family.contains(&alg) {
            return Err(TokenError::invalid(format!(
                "signing key `{}` is not for algorithm {alg:?}",
                key.kid.as_deref().unwrap_or("-")
            )));
        }
        let mut validation = Validation::new(alg);
        validation.leeway = spec.leeway;
        // jsonwebtoken would check `exp` and `nbf` on the system clock: `lifetime_error`
        // checks them on ours.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_audience(&spec.audiences);
        validation.set_issuer(&[iss]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let decoded = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation);
        let now = self.clock.now().timestamp();
        // The first failure in jsonwebtoken's order: the signature and the required claims,
        // then the lifetime, then issuer and audience.
        let failure = match decoded {
            Ok(_) => lifetime_error(&claims, now, spec.leeway),
            Err(e) => match e.into_kind() {
                later @ (ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience) => {
                    Some(lifetime_error(&claims, now, spec.leeway).unwrap_or(later))
                }
                first => Some(first),
            },
        };
        if let Some(kind) = failure {
            return Err(TokenError::invalid(describe(&kind, spec)));
        }
        // The signature holds: the claims read below are the issuer's.
        let until = claims
            .get("exp")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .saturating_add(spec.leeway as i64);
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_i64()
                .ok_or_else(|| TokenError::invalid("claim `iat` is not a number"))?;
            if iat > now.saturating_add(spec.leeway as i64) {
                return Err(TokenError::invalid(
                    "the token is issued in the future (`iat`)",
                ));
            }
        }
        let identity = self.identity(spec, iss, bound_tenant, &claims)?;
        Ok((identity, index, set, until))
    }

    fn identity(
        &self,
        spec: &IssuerSpec,
        iss: &str,
        bound_tenant: Option<Uuid>,
        claims: &Map<String, Value>,
    ) -> Result<Identity, TokenError> {
        let names = &spec.claims;
        let (subject_claim, subject) = match claims.get(&names.subject) {
            Some(v) => (&names.subject, v),
            None => (
                &names.subject_fallback,
                claims.get(&names.subject_fallback).ok_or_else(|| {
                    TokenError::invalid(format!(
                        "the token has neither `{}` nor `{}`",
                        names.subject, names.subject_fallback
                    ))
                })?,
            ),
        };
        let principal_id = subject
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| TokenError::invalid(format!("claim `{subject_claim}` is not a uuid")))?;
        let tenant = match claims.get(&names.tenant) {
            Some(v) => v
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| {
                    TokenError::invalid(format!("claim `{}` is not a uuid", names.tenant))
                })?,
            None if spec.require_tenant => {
                return Err(TokenError::invalid(format!(
                    "the token has no `{}` claim",
                    names.tenant
                )))
            }
            None => self.default_tenant.0,
        };
        if bound_tenant.is_some_and(|b| b != tenant) {
            return Err(TokenError::invalid(format!(
                "claim `{}` does not match the tenant in `iss`",
                names.tenant
            )));
        }
        if !spec
            .tenants
            .allows(&spec.matcher, tenant, self.default_tenant.0)
        {
            return Err(TokenError::invalid(format!(
                "tenant {tenant} is not allowed for issuer `{}`",
                spec.name
            )));
        }
        let groups = uuid_list(claims, &names.groups)?;
        let groups_overage = claims
            .get("_claim_names")
            .and_then(Value::as_object)
            .is_some_and(|names_map| names_map.contains_key(&names.groups));
        let wids = if spec.trust_wids {
            uuid_list(claims, &names.roles)?
        } else {
            Vec::new()
        };
        Ok(Identity {
            principal_id,
            tenant: TenantId(tenant),
            groups,
            wids,
            groups_overage,
            issuer: iss.to_owned(),
        })
    }
}

impl Issuer {
    /// True while `set` may be used: static keys always, fetched ones up to `max_stale`
    /// old by the clock.
    fn within_staleness(&self, set: &KeySet) -> bool {
        matches!(self.spec.source, KeySource::Static(_))
            || self.keys.age(set) <= self.spec.max_stale
    }

    /// The key set to verify with: the cached one while within the staleness bound, else
    /// a fetch now, rate-limited by the clock like an unknown `kid`'s; none at all fails
    /// closed.
    async fn fresh_keys(&self) -> Result<Arc<KeySet>, TokenError> {
        if let Some(set) = self.keys.current() {
            if self.within_staleness(&set) {
                return Ok(set);
            }
        }
        self.keys.refresh_forced(self.spec.min_refetch).await;
        match self.keys.current() {
            Some(set) if self.within_staleness(&set) => Ok(set),
            _ => Err(TokenError::KeysUnavailable(format!(
                "no current signing keys for issuer `{}`: {}",
                self.spec.name,
                self.keys
                    .last_error()
                    .unwrap_or_else(|| "not fetched yet".to_owned())
            ))),
        }
    }
}

/// Fetches at once, then every `refresh`; after a failure, retries sooner.
async fn refresh_loop(issuer: Arc<Issuer>) {
    loop {
        let wait = match issuer.keys.refresh().await {
            Ok(()) => issuer.spec.refresh,
            Err(error) => {
                tracing::warn!(issuer = %issuer.spec.name, %error, "cannot refresh signing keys; keeping the last good set");
                issuer
                    .spec
                    .min_refetch
                    .min(issuer.spec.refresh)
                    .max(Duration::from_secs(1))
            }
        };
        tokio::time::sleep(wait).await;
    }
}

fn decode_part(part: &str, what: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::invalid(format!("the token's {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::invalid(format!(
            "the token's {what} is not a JSON object"
        ))),
    }
}

/// jsonwebtoken's `exp` and `nbf` checks, made at `now` (the verifier's clock, in seconds)
/// with `leeway` seconds: the same comparisons, and the same readings of a NumericDate (a
/// non-negative integer, or a finite non-negative float, rounded). A missing or unreadable
/// `exp` was already refused as a missing required claim; such an `nbf` is ignored, as
/// jsonwebtoken ignores it.
fn lifetime_error(claims: &Map<String, Value>, now: i64, leeway: u64) -> Option<ErrorKind> {
    let now = u64::try_from(now).unwrap_or(0);
    if numeric_date(claims.get("exp")).is_some_and(|exp| exp < now.saturating_sub(leeway)) {
        return Some(ErrorKind::ExpiredSignature);
    }
    if numeric_date(claims.get("nbf")).is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Some(ErrorKind::ImmatureSignature);
    }
    None
}

/// A JWT NumericDate as jsonwebtoken reads one; `None` when absent or not one.
fn numeric_date(value: Option<&Value>) -> Option<u64> {
    let value = value?;
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
            .map(|f| f.round() as u64)
    })
}

/// Refuses unsigned tokens, key-carrying headers and critical extensions; answers `alg`.
fn check_header(header: &Map<String, Value>) -> Result<Algorithm, TokenError> {
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| TokenError::invalid("the token header has no `alg`"))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::invalid(
            "unsigned tokens (`alg: none`) are not accepted",
        ));
    }
    if let Some(name) = KEY_HEADERS.iter().find(|h| header.contains_key(**h)) {
        return Err(TokenError::invalid(format!(
            "header `{name}` is not accepted: keys come only from the issuer's configured key set"
        )));
    }
    if header.contains_key("crit") {
        return Err(TokenError::invalid(
            "header `crit` names extensions Rolecall does not support",
        ));
    }
    alg.parse::<Algorithm>()
        .map_err(|_| TokenError::invalid(format!("algorithm `{alg}` is not supported")))
}

/// A claim holding an array of strings; entries that are not uuids cannot name a
/// principal here and are skipped.
fn uuid_list(claims: &Map<String, Value>, name: &str) -> Result<Vec<Uuid>, TokenError> {
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok()))
            .collect()),
        Some(_) => Err(TokenError::invalid(format!(
            "claim `{name}` is not an array"
        ))),
    }
}

fn describe(kind: &ErrorKind, spec: &IssuerSpec) -> String {
    match kind {
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
        ErrorKind::InvalidAudience => format!(
            "the token's audience is not one of {}",
            spec.audiences.join(", ")
        ),
        ErrorKind::InvalidIssuer => "the token's issuer does not match".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        ErrorKind::InvalidAlgorithm => "the algorithm does not fit the signing key".to_owned(),
        _ => "the token is malformed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lifetime(claims: Value, now: i64) -> Option<ErrorKind> {
        let Value::Object(claims) = claims else {
            panic!("claims are an object")
        };
        lifetime_error(&claims, now, 60)
    }

    #[test]
    fn exp_and_nbf_are_read_and_compared_as_jsonwebtoken_does() {
        let expired = |kind: Option<ErrorKind>| matches!(kind, Some(ErrorKind::ExpiredSignature));
        let early = |kind: Option<ErrorKind>| matches!(kind, Some(ErrorKind::ImmatureSignature));
        // `exp` passes until the leeway is spent, as an integer or a float.
        assert!(lifetime(json!({"exp": 1000}), 1060).is_none());
        assert!(expired(lifetime(json!({"exp": 1000}), 1061)));
        assert!(lifetime(json!({"exp": 1000.4}), 1060).is_none());
        assert!(expired(lifetime(json!({"exp": 999.6}), 1061)));
        // `nbf` may be up to the leeway ahead.
        assert!(lifetime(json!({"exp": 9999, "nbf": 1060}), 1000).is_none());
        assert!(early(lifetime(json!({"exp": 9999, "nbf": 1061}), 1000)));
        assert!(early(lifetime(json!({"exp": 9999, "nbf": 1060.6}), 1000)));
        // An `nbf` that is not a NumericDate is ignored, as jsonwebtoken ignores it.
        for odd in [json!("1061"), json!(-1), json!(null), json!(f64::MAX)] {
            assert!(lifetime(json!({"exp": 9999, "nbf": odd}), 1000).is_none());
        }
    }
}
