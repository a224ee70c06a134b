//! Console sessions without a session table: the cookie *is* the session, sealed.
//!
//! A session is the bearer credential the user signed in with, a random CSRF token and an
//! expiry, serialized and sealed with AES-256-GCM (ring) under a key derived by HKDF-SHA256
//! from `[console] session_key`. Any replica holding the same key opens it, so replicas
//! sharing a database need nothing else in common; a replica without the key configured
//! makes a random one at start (sessions then last until it restarts and do not cross
//! replicas). The cost of statelessness: sign-out clears the cookie but cannot revoke a
//! copy taken before; the session ends at the credential's own expiry or after
//! [`MAX_AGE_SECONDS`], whichever comes first, and every request re-validates the
//! credential through the API's own authentication.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::config::Secret;

/// The session cookie's name.
pub const COOKIE: &str = "rolecall_console";
/// The sign-in form's double-submit cookie (login CSRF, before any session exists).
pub const SIGNIN_COOKIE: &str = "rolecall_console_signin";
/// The longest a session lasts, whatever the credential's own lifetime.
pub const MAX_AGE_SECONDS: i64 = 8 * 3600;

/// Seals and opens session cookies. Secrets never reach `Debug`.
pub struct SessionKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// A fresh random token (128 bits, base64url) without a key at hand; `None` when the
/// system's random generator fails.
pub fn fresh_token() -> Option<String> {
    token_from(&SystemRandom::new())
}

fn token_from(rng: &SystemRandom) -> Option<String> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// What a session holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The bearer credential every console call sends.
    pub credential: String,
    /// Who signed in, for the page header only.
    pub label: String,
    /// The synchronizer token every state-changing form must echo.
    pub csrf: String,
    /// Unix seconds after which the session is refused.
    pub expires: i64,
}

impl SessionKey {
    /// Derives the key from the configured secret, or makes a random one when none is
    /// configured (single replica, sessions end at restart). Fails when the system's random
    /// generator does: a guessable key would let anyone forge a session.
    pub fn from_config(secret: Option<&Secret>) -> anyhow::Result<SessionKey> {
        let rng = SystemRandom::new();
        let material: Vec<u8> = match secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                let mut ikm = [0u8; 32];
                rng.fill(&mut ikm)
                    .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
                ikm.to_vec()
            }
        };
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"rolecall-console");
        let prk = salt.extract(&material);
        let mut bytes = [0u8; 32];
        prk.expand(&[b"session-seal-v1"], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut bytes))
            .map_err(|_| anyhow::anyhow!("deriving the console session key"))?;
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("building the console session key"))?;
        Ok(SessionKey {
            key: LessSafeKey::new(unbound),
            rng,
        })
    }

    /// A fresh random token (128 bits, base64url); `None` when the system's random
    /// generator fails, so no guessable token is ever handed out.
    pub fn random_token(&self) -> Option<String> {
        token_from(&self.rng)
    }

    /// A new session for `credential`, ending at `expires` or after [`MAX_AGE_SECONDS`].
    /// `None` when no CSRF token can be drawn.
    pub fn start(
        &self,
        credential: String,
        label: String,
        expires: Option<i64>,
    ) -> Option<Session> {
        let cap = chrono::Utc::now().timestamp() + MAX_AGE_SECONDS;
        Some(Session {
            credential,
            label,
            csrf: self.random_token()?,
            expires: expires.map_or(cap, |e| e.min(cap)),
        })
    }

    /// The cookie value: base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, session: &Session) -> Option<String> {
        self.seal_as(COOKIE, session)
    }

    /// Opens a cookie value; `None` when forged, tampered with, sealed under another key or
    /// expired.
    pub fn open(&self, value: &str) -> Option<Session> {
        let session: Session = self.open_as(COOKIE, value)?;
        (session.expires > chrono::Utc::now().timestamp()).then_some(session)
    }

    /// Seals any value for the cookie `name` (the name is the associated data, so one
    /// cookie's value never opens as another's).
    pub fn seal_as<T: Serialize>(&self, name: &str, value: &T) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut data = serde_json::to_vec(value).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens what [`SessionKey::seal_as`] sealed for the cookie `name`.
    pub fn open_as<T: serde::de::DeserializeOwned>(&self, name: &str, value: &str) -> Option<T> {
        let raw = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut sealed)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// Constant-time equality of two tokens (an empty one never matches).
pub fn same_token(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The `exp` claim of a JWT, unverified: only to end the session no later than the token
/// (the token itself is verified on every request).
pub fn token_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_session_opens_under_the_same_key_only() {
        let secret = Secret::new("a-console-session-key-for-tests");
        let key = SessionKey::from_config(Some(&secret)).expect("key");
        let session = key
            .start("token".to_owned(), "me".to_owned(), None)
            .expect("session");
        let sealed = key.seal(&session).expect("seals");
        let opened = key.open(&sealed).expect("opens");
        assert_eq!(opened.credential, "token");
        let same = SessionKey::from_config(Some(&secret)).expect("key");
        assert!(same.open(&sealed).is_some(), "another replica with the key");
        let other =
            SessionKey::from_config(Some(&Secret::new("another-key-entirely-0000"))).expect("key");
        assert!(other.open(&sealed).is_none());
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(key.open(&tampered).is_none());
    }

    #[test]
    fn an_expired_session_is_refused() {
        let key = SessionKey::from_config(None).expect("key");
        let session = key
            .start("t".to_owned(), "me".to_owned(), Some(1))
            .expect("session");
        let sealed = key.seal(&session).expect("seals");
        assert!(key.open(&sealed).is_none());
    }
}
