//! Dev mode's own issuer: an Ed25519 key kept in the data directory, trusted as issuer
//! [`DEV_ISSUER`], and `rolecall dev-token` minting tokens from it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use uuid::Uuid;

use super::keys::KeySource;
use super::settings::{ClaimNames, IssuerMatch, IssuerSpec, TenantRule};

/// The `iss` of dev tokens.
pub const DEV_ISSUER: &str = "rolecall-dev";
/// The `aud` of dev tokens.
pub const DEV_AUDIENCE: &str = "rolecall";
/// The key file's name in the data directory.
pub const DEV_KEY_FILE: &str = "dev-signing-key";

/// The dev signing key (PKCS#8 Ed25519).
pub struct DevKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    kid: String,
    /// Where it is stored.
    pub path: PathBuf,
}

/// What a dev token asserts.
#[derive(Debug, Clone)]
pub struct DevClaims {
    /// `oid`.
    pub oid: Uuid,
    /// `tid`; absent: the server's default tenant.
    pub tid: Option<Uuid>,
    /// `groups`.
    pub groups: Vec<Uuid>,
    /// `wids`.
    pub wids: Vec<Uuid>,
    /// Lifetime.
    pub ttl: Duration,
}

impl DevKey {
    /// Reads `data_dir/dev-signing-key`, creating it (mode 0600) when absent.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<DevKey> {
        use anyhow::Context as _;
        let path = data_dir.join(DEV_KEY_FILE);
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating `{}`", data_dir.display()))?;
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| anyhow::anyhow!("cannot generate an Ed25519 key"))?;
                write_private(&path, doc.as_ref())?;
                // Another process may have won the race; use whatever is on disk.
                std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?
            }
            Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| anyhow::anyhow!("`{}` is not an Ed25519 PKCS#8 key", path.display()))?;
        let public = pair.public_key().as_ref().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        let kid = format!("dev-{}", &hex(digest.as_ref())[..16]);
        Ok(DevKey {
            pkcs8,
            public,
            kid,
            path,
        })
    }

    /// The public key as a JWKS.
    pub fn jwks(&self) -> JwkSet {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.public);
        let value = serde_json::json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"
        }]});
        // INVARIANT: the literal above is a well-formed JWKS.
        serde_json::from_value(value).unwrap_or(JwkSet { keys: Vec::new() })
    }

    /// The dev issuer: this key, `wids` trusted, tokens without `tid` in the default tenant,
    /// any `tid` accepted (`rolecall dev-token --tid`).
    pub fn issuer(&self) -> IssuerSpec {
        IssuerSpec {
            name: DEV_ISSUER.to_owned(),
            matcher: IssuerMatch::Exact(DEV_ISSUER.to_owned()),
            audiences: vec![DEV_AUDIENCE.to_owned()],
            source: KeySource::Static(self.jwks()),
            algorithms: vec![Algorithm::EdDSA],
            trust_wids: true,
            leeway: 60,
            tenants: TenantRule::Any,
            require_tenant: false,
            claims: ClaimNames::default(),
            refresh: Duration::from_secs(3600),
            max_stale: Duration::from_secs(86_400),
            min_refetch: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }

    /// Signs a dev token.
    pub fn mint(&self, claims: &DevClaims) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(claims.ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let mut body = serde_json::json!({
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "oid": claims.oid,
            "sub": claims.oid,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl),
            "ver": "2.0",
        });
        if let Some(tid) = claims.tid {
            body["tid"] = serde_json::json!(tid);
        }
        if !claims.groups.is_empty() {
            body["groups"] = serde_json::json!(claims.groups);
        }
        if !claims.wids.is_empty() {
            body["wids"] = serde_json::json!(claims.wids);
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        Ok(jsonwebtoken::encode(&header, &body, &key)?)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => std::io::Write::write_all(&mut file, bytes)
            .with_context(|| format!("writing `{}`", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating `{}`", path.display())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
