//! Who is asking: the authenticated caller of a request, and the tenant it acts in.

use std::sync::Arc;

use axum::http::HeaderValue;
use uuid::Uuid;

use crate::auth::Identity;
use crate::model::TenantId;
use crate::store::Actor;

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum CallerKind {
    /// The break-glass admin key: every operation is allowed.
    AdminKey,
    /// A validated bearer token.
    Token(Arc<Identity>),
}

/// The authenticated caller of a `/v1` route, and the tenant it acts in. Extracted once per
/// request (kept in the request's extensions); cloning it clones an `Arc`.
#[derive(Debug, Clone)]
pub struct Caller(Arc<CallerInfo>);

impl std::ops::Deref for Caller {
    type Target = CallerInfo;

    fn deref(&self) -> &CallerInfo {
        &self.0
    }
}

/// What [`Caller`] holds.
#[derive(Debug)]
pub struct CallerInfo {
    /// Recorded in `changes.actor`: the principal id, or `admin-key`.
    pub actor: Actor,
    /// The tenant the call acts in: the token's, or for the admin key the
    /// `Rolecall-Tenant` header, else the default tenant.
    pub tenant: TenantId,
    /// How it authenticated.
    pub kind: CallerKind,
    /// The request's id (`x-request-id`), for the decision record: the request-id layer's
    /// value, shared (no copy per request).
    pub request_id: HeaderValue,
    /// The route template the request matched (`/v1/check`), for the decision record: a
    /// `'static` label, so counting decisions by endpoint allocates nothing.
    pub endpoint: &'static str,
}

impl CallerInfo {
    /// The request's id as text (`-` if it was not; the request-id layer accepts only
    /// visible ASCII, so it always is).
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("-")
    }
}

impl Caller {
    /// Wraps what authentication found.
    pub fn new(info: CallerInfo) -> Caller {
        Caller(Arc::new(info))
    }

    /// The caller's principal id, when it is a token caller.
    pub fn principal_id(&self) -> Option<Uuid> {
        self.identity().map(|identity| identity.principal_id)
    }

    /// The validated token behind the caller; `None` for the admin key, which holds
    /// everything and is bound by none of the admin plane's rules.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.kind {
            CallerKind::AdminKey => None,
            CallerKind::Token(identity) => Some(identity),
        }
    }
}
