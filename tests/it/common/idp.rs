//! A fake external identity provider: real keys, real signed JWTs, and a real OpenID
//! discovery document and JWKS served over HTTP on loopback.
//!
//! RSA keys come from the committed fixtures `tests/fixtures/keys/rsa-{1,2}.json` (test-only
//! keys made with `openssl`); EC P-256 and Ed25519 keys are generated with `ring` at run time.
//! Tokens are built by hand (`base64url(header).base64url(claims).signature`) so tests can
//! forge any header: no `kid`, a `jku`, `crit`, `alg: none`, HMAC key confusion, ...
#![allow(dead_code)] // each test crate uses a different part of `common`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Value};

const RSA_1: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/keys/rsa-1.json"
));
const RSA_2: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/keys/rsa-2.json"
));

/// One committed RSA fixture key, parsed.
struct RsaFixture {
    private_pkcs1_der: Vec<u8>,
    public_pkcs1_der: Vec<u8>,
    n: String,
    e: String,
}

fn rsa_fixture(fixture: u8) -> RsaFixture {
    let text = match fixture {
        1 => RSA_1,
        2 => RSA_2,
        other => panic!("there is no RSA fixture key {other} (only 1 and 2)"),
    };
    let doc: Value = serde_json::from_str(text).expect("RSA fixture is JSON");
    let field = |name: &str| -> String {
        doc[name]
            .as_str()
            .unwrap_or_else(|| panic!("RSA fixture {fixture} lacks string field {name}"))
            .to_owned()
    };
    let der = |name: &str| -> Vec<u8> {
        STANDARD
            .decode(field(name))
            .unwrap_or_else(|e| panic!("RSA fixture {fixture} field {name} is not base64: {e}"))
    };
    RsaFixture {
        private_pkcs1_der: der("private_pkcs1_der_b64"),
        public_pkcs1_der: der("public_pkcs1_der_b64"),
        n: field("n"),
        e: field("e"),
    }
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `base64url(header).base64url(claims)`: the signing input of a JWS.
fn signing_input(header: &Value, claims: &Value) -> String {
    let header = serde_json::to_vec(header).expect("header serializes");
    let claims = serde_json::to_vec(claims).expect("claims serialize");
    format!("{}.{}", b64url(&header), b64url(&claims))
}

/// The JOSE name of an algorithm, e.g. `"RS256"`.
fn alg_name(alg: Algorithm) -> String {
    match serde_json::to_value(alg).expect("Algorithm serializes") {
        Value::String(name) => name,
        other => panic!("Algorithm serialized as {other}"),
    }
}

/// A private signing key plus the public JWK an identity provider publishes for it.
#[derive(Clone)]
pub struct SigningKey {
    /// The key id, in the JWK and in tokens' headers.
    pub kid: String,
    /// The algorithm tokens are signed with.
    pub alg: Algorithm,
    key: EncodingKey,
    /// The public JWK: `kid`, `kty`, `alg`, `use: "sig"` and the key's public parameters.
    pub jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("jwk", &self.jwk)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn rsa_with(fixture: u8, kid: &str, alg: Algorithm) -> SigningKey {
        let f = rsa_fixture(fixture);
        SigningKey {
            kid: kid.to_owned(),
            alg,
            key: EncodingKey::from_rsa_der(&f.private_pkcs1_der),
            jwk: json!({
                "kty": "RSA",
                "use": "sig",
                "alg": alg_name(alg),
                "kid": kid,
                "n": f.n,
                "e": f.e,
            }),
        }
    }

    /// RS256 with committed RSA-2048 fixture key `fixture` (1 or 2).
    pub fn rsa(fixture: u8, kid: &str) -> SigningKey {
        Self::rsa_with(fixture, kid, Algorithm::RS256)
    }

    /// PS256 with committed RSA-2048 fixture key `fixture` (1 or 2): the same key material
    /// as [`SigningKey::rsa`].
    pub fn rsa_pss(fixture: u8, kid: &str) -> SigningKey {
        Self::rsa_with(fixture, kid, Algorithm::PS256)
    }

    /// ES256 with a fresh P-256 key.
    pub fn ec_p256(kid: &str) -> SigningKey {
        let rng = SystemRandom::new();
        let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate a P-256 key");
        let pair =
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("parse the P-256 key");
        let public = pair.public_key().as_ref();
        assert_eq!(public.len(), 65, "uncompressed P-256 point");
        assert_eq!(public[0], 0x04, "uncompressed P-256 point");
        SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC",
                "use": "sig",
                "alg": "ES256",
                "kid": kid,
                "crv": "P-256",
                "x": b64url(&public[1..33]),
                "y": b64url(&public[33..65]),
            }),
        }
    }

    /// EdDSA with a fresh Ed25519 key.
    pub fn ed25519(kid: &str) -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate an Ed25519 key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse the Ed25519 key");
        let public = pair.public_key().as_ref();
        assert_eq!(public.len(), 32, "Ed25519 public key");
        SigningKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "OKP",
                "use": "sig",
                "alg": "EdDSA",
                "kid": kid,
                "crv": "Ed25519",
                "x": b64url(public),
            }),
        }
    }

    /// Sets (`Some`) or removes (`None`) the `alg` member of the published JWK. Signing is
    /// unaffected: tokens still use `self.alg`.
    pub fn with_jwk_alg(mut self, alg: Option<&str>) -> SigningKey {
        let jwk = self.jwk.as_object_mut().expect("a JWK is an object");
        match alg {
            Some(alg) => {
                jwk.insert("alg".to_owned(), Value::String(alg.to_owned()));
            }
            None => {
                jwk.remove("alg");
            }
        }
        self
    }

    /// A token with header `{"alg": <self.alg>, "typ": "JWT", "kid": <self.kid>}`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({ "alg": alg_name(self.alg), "typ": "JWT", "kid": self.kid });
        self.sign_with_header(&header, claims)
    }

    /// A token whose header is `header` verbatim, signed with this key and `self.alg`
    /// (whatever the header claims).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, self.alg)
            .expect("sign the token");
        format!("{input}.{signature}")
    }

    /// The PKCS#1 `RSAPublicKey` DER of RSA fixture key `fixture` (1 or 2): what an
    /// HS256-with-the-public-key (key confusion) attack uses as the HMAC secret.
    pub fn rsa_public_der(fixture: u8) -> Vec<u8> {
        rsa_fixture(fixture).public_pkcs1_der
    }
}

/// `base64url(header).base64url(claims).<HMAC-SHA256 signature with secret>`, the header
/// taken verbatim (e.g. `{"alg":"HS256","kid":"k1"}`).
pub fn hs256_token(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

/// `base64url(header).base64url(claims).` with an empty signature, e.g. for `alg: none`.
pub fn unsigned_token(header: &Value, claims: &Value) -> String {
    format!("{}.", signing_input(header, claims))
}

/// Seconds since the Unix epoch.
fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits i64")
}

/// The standard claims of an access token: `iss`, `aud`, `oid`, `tid`, `sub` (= `oid`),
/// `iat` and `nbf` (now), `exp` (now + `ttl_secs`, may be negative) and `ver: "2.0"`.
pub fn claims(
    issuer: &str,
    audience: &str,
    oid: uuid::Uuid,
    tid: uuid::Uuid,
    ttl_secs: i64,
) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": audience,
        "oid": oid.to_string(),
        "tid": tid.to_string(),
        "sub": oid.to_string(),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_secs,
        "ver": "2.0",
    })
}

/// How many bytes an oversized key document has: far over Rolecall's 1 MiB cap, so a
/// client that reads it whole is told apart from one that stops at the cap.
pub const OVERSIZED_BYTES: usize = 256 << 20;

/// How `GET /keys` answers with an oversized document (see [`Idp::serve_oversized_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversized {
    /// Chunked transfer encoding: no length is declared, so only counting while reading
    /// can stop it.
    Chunked,
    /// `Content-Length: OVERSIZED_BYTES`, declared up front.
    Declared,
}

/// What became of one oversized answer, as the server side saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OversizedAnswer {
    /// Body bytes handed to the connection before it ended.
    pub sent: usize,
    /// True when every byte was handed over; false when the client hung up first.
    pub finished: bool,
}

/// What the fake provider serves; changed by tests while it runs.
struct IdpState {
    jwks: Vec<Value>,
    down: bool,
    oversized: Option<Oversized>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<IdpState>>,
    fetches: Arc<AtomicUsize>,
    issuer: String,
    /// Oversized answers that have ended, in the order they ended.
    oversized_answers: Arc<Mutex<Vec<OversizedAnswer>>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, IdpState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn serve_discovery(State(shared): State<Shared>) -> Response {
    if shared.lock().down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/keys", shared.issuer),
    }))
    .into_response()
}

async fn serve_keys(State(shared): State<Shared>) -> Response {
    shared.fetches.fetch_add(1, Ordering::SeqCst);
    let state = shared.lock();
    if state.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(how) = state.oversized {
        return oversized_body(how, shared.oversized_answers.clone());
    }
    Json(json!({ "keys": state.jwks })).into_response()
}

/// The body of an oversized answer, fed in 64 KiB chunks: when the stream ends or is
/// dropped (the client hung up), it records how far it got.
struct Feed {
    chunk: axum::body::Bytes,
    sent: usize,
    answers: Arc<Mutex<Vec<OversizedAnswer>>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        let answer = OversizedAnswer {
            sent: self.sent,
            finished: self.sent >= OVERSIZED_BYTES,
        };
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(answer);
    }
}

/// `{"keys": [], "padding": "xxxx...` for [`OVERSIZED_BYTES`]: JSON that never closes, so
/// only its size can make a client give up.
fn oversized_body(how: Oversized, answers: Arc<Mutex<Vec<OversizedAnswer>>>) -> Response {
    let mut first = br#"{"keys": [], "padding": ""#.to_vec();
    first.resize(64 * 1024, b'x');
    let feed = Feed {
        chunk: axum::body::Bytes::from(first),
        sent: 0,
        answers,
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let n = feed.chunk.len().min(OVERSIZED_BYTES - feed.sent);
        if n == 0 {
            return None;
        }
        feed.sent += n;
        let chunk = feed.chunk.slice(..n);
        Some((Ok::<_, std::convert::Infallible>(chunk), feed))
    });
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    if how == Oversized::Declared {
        headers.insert(
            axum::http::header::CONTENT_LENGTH,
            axum::http::HeaderValue::from(OVERSIZED_BYTES),
        );
    }
    response
}

fn jwks_of(keys: &[&SigningKey]) -> Vec<Value> {
    keys.iter().map(|k| k.jwk.clone()).collect()
}

/// A running fake identity provider on `127.0.0.1:<port>`; stopped when dropped.
pub struct Idp {
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Idp {
    /// Starts serving `GET /.well-known/openid-configuration` (`issuer`, `jwks_uri`) and
    /// `GET /keys` (`{"keys": [jwk, ...]}`) with the public JWKs of `keys`.
    pub async fn start(keys: &[&SigningKey]) -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake IdP on loopback");
        let port = listener.local_addr().expect("fake IdP address").port();
        let shared = Shared {
            state: Arc::new(Mutex::new(IdpState {
                jwks: jwks_of(keys),
                down: false,
                oversized: None,
            })),
            fetches: Arc::new(AtomicUsize::new(0)),
            issuer: format!("http://127.0.0.1:{port}"),
            oversized_answers: Arc::new(Mutex::new(Vec::new())),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(serve_discovery))
            .route("/keys", get(serve_keys))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake IdP server");
        });
        Idp { shared, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// `<issuer>/keys`.
    pub fn jwks_uri(&self) -> String {
        format!("{}/keys", self.shared.issuer)
    }

    /// Replaces the published keys (takes effect for the next request).
    pub fn set_keys(&self, keys: &[&SigningKey]) {
        self.shared.lock().jwks = jwks_of(keys);
    }

    /// While down, both routes answer 503.
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
    }

    /// How many `GET /keys` requests have arrived, including those answered 503.
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// From now on `GET /keys` answers 200 with an [`OVERSIZED_BYTES`] document sent `how`
    /// (`None`: the published keys again).
    pub fn serve_oversized_keys(&self, how: Option<Oversized>) {
        self.shared.lock().oversized = how;
    }

    /// Oversized answers that have ended (finished, or cut off by the client hanging up).
    pub fn oversized_answers(&self) -> Vec<OversizedAnswer> {
        self.shared
            .oversized_answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.server.abort();
    }
}
