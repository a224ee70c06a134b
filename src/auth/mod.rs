//! Bearer tokens: which issuers are trusted, their signing keys, and how a JWT access token
//! becomes an [`Identity`] (principal, tenant, token groups, `wids`).
//!
//! Validation is strict and fails closed. A token is refused (401 `invalid-token`) when it
//! is over [`MAX_TOKEN_BYTES`], malformed, unsigned (`alg: none`), signed with an algorithm
//! its issuer is not configured for (HMAC never is: only public keys are trusted, which
//! rules out key confusion), names a key we do not hold after one refresh, carries `jku`,
//! `x5u`, `x5c`, `jwk` (key material or key locations are never followed) or `crit`
//! headers, has a bad signature, is expired, not yet valid or issued in the future beyond
//! the leeway, comes from an unknown issuer, is for another audience, lacks a subject or
//! tenant, or names a tenant the issuer may not vouch for: its `allowed_tenants` when
//! configured, else for an exact issuer the default tenant only, and for a `{tid}` template
//! the tenant its `iss` names (see [`TenantRule`]).

pub mod dev;
mod keys;
mod settings;
mod verify;

pub use keys::KeySource;
pub use settings::{ClaimNames, IssuerMatch, IssuerSettings, IssuerSpec, TenantRule};
pub use verify::{KeyFetches, Verifier};

use uuid::Uuid;

use crate::model::Subject;
use crate::model::TenantId;

/// The largest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Who a valid token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The principal's object id (`oid`, else `sub`).
    pub principal_id: Uuid,
    /// The tenant the token was issued for (`tid`, else the configured default).
    pub tenant: TenantId,
    /// Group ids from the `groups` claim.
    pub groups: Vec<Uuid>,
    /// Role template ids from `wids`, kept only when the issuer is trusted to assert them.
    pub wids: Vec<Uuid>,
    /// True when the token carried a groups overage marker (`_claim_names.groups`) instead
    /// of its groups: only stored memberships are used.
    pub groups_overage: bool,
    /// The issuer (`iss`) as the token states it.
    pub issuer: String,
}

impl Identity {
    /// The subject the engine evaluates for this identity.
    pub fn subject(&self) -> Subject {
        Subject {
            id: self.principal_id,
            groups: self.groups.clone(),
            wids: self.wids.clone(),
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token itself is not acceptable (401 with `error="invalid_token"`).
    #[error("{0}")]
    Invalid(String),
    /// The issuer's keys cannot be had (never fetched, or older than the staleness bound
    /// while the issuer is unreachable): fail closed with 503. The reason names the key
    /// location and the fetch error, so it is for the server's log, never for the caller.
    #[error("{0}")]
    KeysUnavailable(String),
}

impl TokenError {
    fn invalid(message: impl Into<String>) -> TokenError {
        TokenError::Invalid(message.into())
    }
}
