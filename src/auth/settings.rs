//! The `[[auth.issuers]]` configuration: its TOML shape and the validated [`IssuerSpec`].

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use uuid::Uuid;

use super::keys::KeySource;

/// The placeholder an Entra-style issuer template carries for the tenant id.
pub const TID_PLACEHOLDER: &str = "{tid}";

/// Algorithms accepted when an issuer does not list its own.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// One trusted issuer, as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The exact `iss`, or a template containing `{tid}`.
    pub issuer: String,
    /// Accepted `aud` values (at least one).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Where the issuer publishes its JWKS.
    pub jwks_uri: Option<String>,
    /// Find the JWKS through `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub discovery: bool,
    /// A JWKS on disk (re-read on every refresh).
    pub jwks_file: Option<PathBuf>,
    /// Accepted `alg` values; default RS256, PS256, ES256, EdDSA.
    pub algorithms: Option<Vec<String>>,
    /// Whether this issuer's `wids` claims grant built-in roles.
    #[serde(default)]
    pub trust_wids: bool,
    /// Clock skew allowed on `exp`, `nbf` and `iat`; default 60.
    pub leeway_seconds: Option<u64>,
    /// Tenants this issuer may vouch for. Empty: an exact issuer acts in `default_tenant`
    /// only, and a `{tid}` template in the tenant its `iss` names.
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// Whether tokens must carry a tenant claim; default true. When false, a token without
    /// one acts in `default_tenant`.
    pub require_tenant: Option<bool>,
    /// Claim names, when the issuer does not use Entra's.
    pub claims: Option<ClaimSettings>,
    /// How often the key set is refetched; default 3600.
    pub jwks_refresh_seconds: Option<u64>,
    /// How long the last good key set may be used while the issuer is unreachable; default
    /// 86400.
    pub jwks_max_stale_seconds: Option<u64>,
    /// The least time between two refetches forced by an unknown `kid`; default 30.
    pub jwks_min_refetch_seconds: Option<u64>,
    /// The timeout of one fetch; default 5000.
    pub jwks_timeout_ms: Option<u64>,
}

/// `claims = { subject = "oid", ... }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSettings {
    /// Default `oid`.
    pub subject: Option<String>,
    /// Default `sub`; used when `subject` is absent.
    pub subject_fallback: Option<String>,
    /// Default `tid`.
    pub tenant: Option<String>,
    /// Default `groups`.
    pub groups: Option<String>,
    /// Default `wids`.
    pub roles: Option<String>,
}

/// The claims a token's identity is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// The principal id (`oid`).
    pub subject: String,
    /// Used when `subject` is absent (`sub`).
    pub subject_fallback: String,
    /// The tenant (`tid`).
    pub tenant: String,
    /// Group ids (`groups`).
    pub groups: String,
    /// Directory role template ids (`wids`).
    pub roles: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            subject: "oid".to_owned(),
            subject_fallback: "sub".to_owned(),
            tenant: "tid".to_owned(),
            groups: "groups".to_owned(),
            roles: "wids".to_owned(),
        }
    }
}

/// How an issuer's `iss` is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerMatch {
    /// This exact string.
    Exact(String),
    /// `prefix{tid}suffix`, where the middle is the token's tenant id.
    Template {
        /// Before `{tid}`.
        prefix: String,
        /// After `{tid}`.
        suffix: String,
    },
}

impl IssuerMatch {
    /// `None` when `iss` is not this issuer's; `Some(tid)` when it is, with the tenant a
    /// template bound (the caller checks it equals the token's `tid`).
    pub fn matches(&self, iss: &str) -> Option<Option<Uuid>> {
        match self {
            IssuerMatch::Exact(exact) => (exact == iss).then_some(None),
            IssuerMatch::Template { prefix, suffix } => {
                let middle = iss.strip_prefix(prefix.as_str())?;
                let middle = middle.strip_suffix(suffix.as_str())?;
                // Only the canonical hyphenated form, so one tenant has one issuer string.
                let tid = Uuid::parse_str(middle).ok()?;
                (tid.hyphenated().to_string() == middle.to_ascii_lowercase()).then_some(Some(tid))
            }
        }
    }
}

/// Which tenants an issuer may vouch for: the tenant a token acts in must pass this rule,
/// so one issuer cannot administer a tenant it was not configured for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRule {
    /// Only these (`allowed_tenants`). A template's `iss` must also name the token's tenant.
    Listed(Vec<Uuid>),
    /// Nothing configured: an exact issuer acts in the default tenant only; a `{tid}`
    /// template in the tenant its `iss` names.
    Default,
    /// Any tenant. Only for the dev issuer, whose signing key the server itself keeps and
    /// whose tokens may claim any `wids` anyway: a tenant bound adds nothing there.
    Any,
}

impl TenantRule {
    /// True when a token of an issuer matched by `matcher` may act in `tenant`.
    pub fn allows(&self, matcher: &IssuerMatch, tenant: Uuid, default_tenant: Uuid) -> bool {
        match (self, matcher) {
            (TenantRule::Listed(list), _) => list.contains(&tenant),
            (TenantRule::Default, IssuerMatch::Exact(_)) => tenant == default_tenant,
            // INVARIANT: the template's `iss` already bound `tenant` (checked by the caller).
            (TenantRule::Default, IssuerMatch::Template { .. }) => true,
            (TenantRule::Any, _) => true,
        }
    }
}

/// A validated trusted issuer.
#[derive(Debug, Clone)]
pub struct IssuerSpec {
    /// The configured issuer string (template or exact), for messages.
    pub name: String,
    /// How `iss` is recognised.
    pub matcher: IssuerMatch,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Where the keys come from.
    pub source: KeySource,
    /// Accepted algorithms (never HMAC).
    pub algorithms: Vec<Algorithm>,
    /// Whether `wids` claims grant built-in roles.
    pub trust_wids: bool,
    /// Clock skew allowed, in seconds.
    pub leeway: u64,
    /// Tenants this issuer may vouch for.
    pub tenants: TenantRule,
    /// Whether the tenant claim is required.
    pub require_tenant: bool,
    /// Claim names.
    pub claims: ClaimNames,
    /// Scheduled refetch period.
    pub refresh: Duration,
    /// Staleness bound for the last good key set.
    pub max_stale: Duration,
    /// Least time between forced refetches.
    pub min_refetch: Duration,
    /// One fetch's timeout.
    pub fetch_timeout: Duration,
}

impl IssuerSpec {
    /// Validates one `[[auth.issuers]]` entry; the error names the field.
    pub fn from_settings(s: IssuerSettings) -> Result<IssuerSpec, String> {
        let matcher = match s.issuer.matches(TID_PLACEHOLDER).count() {
            0 if s.issuer.is_empty() => return Err("`issuer` is empty".to_owned()),
            0 => IssuerMatch::Exact(s.issuer.clone()),
            1 => {
                let (prefix, suffix) = s
                    .issuer
                    .split_once(TID_PLACEHOLDER)
                    .ok_or_else(|| "`issuer` template is malformed".to_owned())?;
                IssuerMatch::Template {
                    prefix: prefix.to_owned(),
                    suffix: suffix.to_owned(),
                }
            }
            _ => return Err("`issuer` may contain `{tid}` at most once".to_owned()),
        };
        if s.audiences.is_empty() || s.audiences.iter().any(String::is_empty) {
            return Err("`audiences` must list at least one non-empty audience".to_owned());
        }
        let source = match (&s.jwks_uri, s.discovery, &s.jwks_file) {
            (Some(uri), false, None) => KeySource::JwksUri(check_url("jwks_uri", uri)?),
            (None, true, None) => {
                if matches!(matcher, IssuerMatch::Template { .. }) {
                    return Err("`discovery` needs an exact issuer; a `{tid}` template must name its `jwks_uri`".to_owned());
                }
                let base = s.issuer.trim_end_matches('/');
                KeySource::Discovery {
                    url: check_url(
                        "issuer",
                        &format!("{base}/.well-known/openid-configuration"),
                    )?,
                    issuer: s.issuer.clone(),
                }
            }
            (None, false, Some(path)) => KeySource::File(path.clone()),
            _ => {
                return Err(
                    "give exactly one of `jwks_uri`, `discovery = true` or `jwks_file`".to_owned(),
                )
            }
        };
        let algorithms = match &s.algorithms {
            None => DEFAULT_ALGORITHMS.to_vec(),
            Some(list) if list.is_empty() => {
                return Err("`algorithms` must not be empty".to_owned())
            }
            Some(list) => list
                .iter()
                .map(|raw| parse_algorithm(raw))
                .collect::<Result<_, _>>()?,
        };
        let allowed_tenants: Vec<Uuid> = s
            .allowed_tenants
            .iter()
            .map(|raw| {
                Uuid::parse_str(raw)
                    .map_err(|_| format!("`allowed_tenants`: `{raw}` is not a uuid"))
            })
            .collect::<Result<_, _>>()?;
        let tenants = if allowed_tenants.is_empty() {
            TenantRule::Default
        } else {
            TenantRule::Listed(allowed_tenants)
        };
        let require_tenant = s.require_tenant.unwrap_or(true);
        if !require_tenant && matches!(matcher, IssuerMatch::Template { .. }) {
            return Err("a `{tid}` template issuer always requires the tenant claim".to_owned());
        }
        let defaults = ClaimNames::default();
        let c = s.claims.unwrap_or_default();
        let claims = ClaimNames {
            subject: c.subject.unwrap_or(defaults.subject),
            subject_fallback: c.subject_fallback.unwrap_or(defaults.subject_fallback),
            tenant: c.tenant.unwrap_or(defaults.tenant),
            groups: c.groups.unwrap_or(defaults.groups),
            roles: c.roles.unwrap_or(defaults.roles),
        };
        let seconds = |key: &str, v: Option<u64>, default: u64| match v {
            Some(0) => Err(format!("`{key}` must be greater than 0")),
            v => Ok(Duration::from_secs(v.unwrap_or(default))),
        };
        let refresh = seconds("jwks_refresh_seconds", s.jwks_refresh_seconds, 3600)?;
        let max_stale = seconds("jwks_max_stale_seconds", s.jwks_max_stale_seconds, 86_400)?;
        let min_refetch = seconds("jwks_min_refetch_seconds", s.jwks_min_refetch_seconds, 30)?;
        let fetch_timeout = match s.jwks_timeout_ms {
            Some(0) => return Err("`jwks_timeout_ms` must be greater than 0".to_owned()),
            v => Duration::from_millis(v.unwrap_or(5000)),
        };
        if max_stale < refresh {
            return Err(
                "`jwks_max_stale_seconds` must be at least `jwks_refresh_seconds`".to_owned(),
            );
        }
        Ok(IssuerSpec {
            name: s.issuer,
            matcher,
            audiences: s.audiences,
            source,
            algorithms,
            trust_wids: s.trust_wids,
            leeway: s.leeway_seconds.unwrap_or(60),
            tenants,
            require_tenant,
            claims,
            refresh,
            max_stale,
            min_refetch,
            fetch_timeout,
        })
    }
}

/// Parses an accepted algorithm. HMAC algorithms are refused: Rolecall verifies with
/// public keys only, so a shared secret can never be confused with one.
fn parse_algorithm(raw: &str) -> Result<Algorithm, String> {
    use Algorithm::*;
    let alg: Algorithm = raw
        .parse()
        .map_err(|_| format!("`algorithms`: `{raw}` is not a JWS algorithm"))?;
    match alg {
        HS256 | HS384 | HS512 => Err(format!(
            "`algorithms`: `{raw}` is a shared-secret algorithm; only public-key algorithms are accepted"
        )),
        other => Ok(other),
    }
}

/// Key locations must be `https://`, except on loopback (tests, sidecars).
fn check_url(key: &str, raw: &str) -> Result<String, String> {
    let url =
        reqwest::Url::parse(raw).map_err(|e| format!("`{key}`: `{raw}` is not a url: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback => Ok(raw.to_owned()),
        _ => Err(format!(
            "`{key}`: `{raw}` must be https (plain http only on loopback)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> IssuerSettings {
        IssuerSettings {
            issuer: "https://login.example.com/{tid}/v2.0".to_owned(),
            audiences: vec!["api://rolecall".to_owned()],
            jwks_uri: Some("https://login.example.com/keys".to_owned()),
            ..IssuerSettings::default()
        }
    }

    #[test]
    fn templates_bind_the_tenant_in_canonical_form_only() {
        let spec = IssuerSpec::from_settings(base()).expect("valid");
        let tid = Uuid::new_v4();
        let iss = format!("https://login.example.com/{tid}/v2.0");
        assert_eq!(spec.matcher.matches(&iss), Some(Some(tid)));
        assert_eq!(
            spec.matcher
                .matches(&format!("https://login.example.com/{}/v2.0", tid.simple())),
            None
        );
        assert_eq!(
            spec.matcher.matches("https://login.example.com/x/v2.0"),
            None
        );
        assert_eq!(spec.matcher.matches("https://evil.example.com/v2.0"), None);
    }

    #[test]
    fn exact_issuers_act_in_the_default_tenant_unless_tenants_are_listed() {
        let default = Uuid::new_v4();
        let other = Uuid::new_v4();
        let exact = IssuerSpec::from_settings(IssuerSettings {
            issuer: "https://partner.example.com".to_owned(),
            ..base()
        })
        .expect("valid");
        assert_eq!(exact.tenants, TenantRule::Default);
        assert!(exact.tenants.allows(&exact.matcher, default, default));
        assert!(!exact.tenants.allows(&exact.matcher, other, default));
        let listed = IssuerSpec::from_settings(IssuerSettings {
            issuer: "https://partner.example.com".to_owned(),
            allowed_tenants: vec![other.to_string()],
            ..base()
        })
        .expect("valid");
        assert!(listed.tenants.allows(&listed.matcher, other, default));
        assert!(!listed.tenants.allows(&listed.matcher, default, default));
        // A template acts in the tenant its `iss` names (the verifier checks that binding).
        let template = IssuerSpec::from_settings(base()).expect("valid");
        assert!(template.tenants.allows(&template.matcher, other, default));
    }

    #[test]
    fn hmac_plain_http_and_ambiguous_key_sources_are_refused() {
        let hs = IssuerSettings {
            algorithms: Some(vec!["HS256".to_owned()]),
            ..base()
        };
        assert!(IssuerSpec::from_settings(hs)
            .unwrap_err()
            .contains("shared-secret"));
        let http = IssuerSettings {
            jwks_uri: Some("http://login.example.com/keys".to_owned()),
            ..base()
        };
        assert!(IssuerSpec::from_settings(http)
            .unwrap_err()
            .contains("https"));
        let loopback = IssuerSettings {
            jwks_uri: Some("http://127.0.0.1:9/keys".to_owned()),
            ..base()
        };
        assert!(IssuerSpec::from_settings(loopback).is_ok());
        let both = IssuerSettings {
            discovery: true,
            ..base()
        };
        assert!(IssuerSpec::from_settings(both)
            .unwrap_err()
            .contains("exactly one"));
        let none = IssuerSettings {
            audiences: vec![],
            ..base()
        };
        assert!(IssuerSpec::from_settings(none)
            .unwrap_err()
            .contains("audiences"));
    }
}
