//! Who is calling: the [`Caller`] extractor authenticates every `/v1` request, from a bearer
//! token of a trusted issuer or the break-glass admin key, and names the tenant it acts in.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::{header, request::Parts, HeaderValue};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::authz::{Caller, CallerInfo, CallerKind};
use super::extract::TENANT_HEADER;
use super::{ApiError, AppState};
use crate::auth::TokenError;
use crate::model::TenantId;
use crate::store::Actor;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(parts, state).await?;
        tracing::Span::current().record("tenant", tracing::field::display(caller.tenant));
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    // Set by the request-id layer before any handler runs; the task-local is the same
    // value, without a header lookup.
    let request_id = crate::telemetry::request_id()
        .or_else(|| parts.headers.get(&super::REQUEST_ID).cloned())
        .unwrap_or_else(|| HeaderValue::from_static("-"));
    let endpoint = crate::metrics::endpoint(parts.extensions.get::<MatchedPath>());
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "send `Authorization: Bearer <token>`",
        ));
    };
    let credential = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or_else(|| {
            ApiError::InvalidToken("the Authorization header is not `Bearer <token>`".to_owned())
        })?;
    let header_tenant = match parts.headers.get(TENANT_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
                .map(TenantId)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Rolecall-Tenant",
                        "the Rolecall-Tenant header is not a uuid",
                    )
                })?,
        ),
    };
    if let Some(key) = &state.config().admin_key {
        // INVARIANT: constant-time comparison, so response timing says nothing about the key.
        if bool::from(credential.as_bytes().ct_eq(key.expose().as_bytes())) {
            return Ok(Caller::new(CallerInfo {
                actor: Actor::new("admin-key"),
                tenant: header_tenant.unwrap_or(state.config().default_tenant),
                kind: CallerKind::AdminKey,
                request_id,
                endpoint,
            }));
        }
    }
    if state.verifier().is_empty() {
        return Err(ApiError::InvalidToken(
            super::error::INVALID_CREDENTIAL.to_owned(),
        ));
    }
    let identity = state
        .verifier()
        .verify(credential)
        .await
        .map_err(|e| match e {
            TokenError::Invalid(reason) => ApiError::InvalidToken(reason),
            TokenError::KeysUnavailable(reason) => ApiError::IssuerUnavailable(reason),
        })?;
    // A group is not a principal that signs in: a token naming a group's id as its subject
    // would act with the group's assignments without being a member of anything.
    if state
        .decider()
        .snapshot()
        .is_group(identity.tenant, identity.principal_id)
    {
        return Err(ApiError::InvalidToken(format!(
            "the token's subject {} is a group, which cannot authenticate",
            identity.principal_id
        )));
    }
    if header_tenant.is_some_and(|t| t != identity.tenant) {
        return Err(ApiError::ForbiddenOther(format!(
            "a token acts only in its own tenant ({}); drop the Rolecall-Tenant header",
            identity.tenant
        )));
    }
    Ok(Caller::new(CallerInfo {
        actor: Actor::with_issuer(identity.principal_id.to_string(), identity.issuer.as_str()),
        tenant: identity.tenant,
        kind: CallerKind::Token(Arc::new(identity)),
        request_id,
        endpoint,
    }))
}
