//! `ApiError`: the only error type that becomes an HTTP response, always RFC 9457
//! `application/problem+json` with a stable `type` per kind.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::model::{FieldError, ValidationErrors};
use crate::store::StoreError;

/// The prefix of every problem `type` URI. The URIs are identifiers (documented in
/// `openapi.yaml`), stable across releases.
pub const PROBLEM_BASE: &str = "https://rolecall.dev/problems/";

/// The 401 detail for a presented credential that is neither the admin key nor a token.
pub const INVALID_CREDENTIAL: &str = "the bearer credential is not valid";

/// The 503 `issuer-unavailable` detail: the same for every issuer and failure, so an
/// unauthenticated caller learns no key location or network error.
pub const ISSUER_UNAVAILABLE: &str =
    "the token's issuer cannot be reached to verify it; retry later";

/// Everything a request can fail with. Variants map one-to-one to problem types.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Fields of the body, query or headers are invalid (400 `validation`).
    #[error("the request is invalid")]
    Validation(ValidationErrors),
    /// The body is not JSON, or not the JSON this operation takes (400 `malformed-body`).
    #[error("{0}")]
    MalformedBody(String),
    /// No credentials (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A credential was presented and is not valid (401 `invalid-token`, with
    /// `WWW-Authenticate: Bearer error="invalid_token"`).
    #[error("{0}")]
    InvalidToken(String),
    /// Authenticated, but the caller lacks `action` at `scope` (403 `forbidden`).
    #[error("the caller may not perform `{action}` at `{scope}`")]
    Forbidden {
        /// The action refused.
        action: String,
        /// The scope it was refused at.
        scope: String,
    },
    /// Authenticated, but the request is not one this caller may make for another reason,
    /// e.g. acting in another tenant (403 `forbidden`).
    #[error("{0}")]
    ForbiddenOther(String),
    /// The caller may manage assignments at `scope` but does not hold every permission of
    /// the role it tries to assign there (403 `escalation-refused`).
    #[error("assigning role `{role}` at `{scope}` would grant permissions the caller does not hold there")]
    EscalationRefused {
        /// The role.
        role: String,
        /// The scope.
        scope: String,
        /// The role's patterns the caller does not hold at the scope.
        missing: Vec<String>,
    },
    /// No such object (404 `not-found`).
    #[error("{0}")]
    NotFound(String),
    /// No such route (404 `not-found`).
    #[error("no route for `{0}`")]
    NoRoute(String),
    /// The route exists but not with this method (405 `method-not-allowed`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Uniqueness or reference conflict (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// A built-in role cannot be changed (409 `builtin-role-immutable`).
    #[error("{0}")]
    BuiltinImmutable(String),
    /// `If-Match` did not match (412 `precondition-failed`).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body did not arrive within `body_read_timeout` (408 `request-timeout`; the
    /// connection is closed).
    #[error("{0}")]
    RequestTimeout(String),
    /// The body is over the limit (413 `payload-too-large`).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body is not `application/json` (415 `unsupported-media-type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A PIM request, review or activation refused by the directory's state or the role's
    /// policy (422 `activation-refused`, with the refusal's `reason`).
    #[error(transparent)]
    Refused(crate::model::Refusal),
    /// Valid input the current directory cannot accept (422 `unprocessable`).
    #[error("the request cannot be applied to the directory as it stands")]
    Unprocessable(ValidationErrors),
    /// The snapshot did not reach the requested revision in time (503 `consistency-timeout`).
    #[error("{0}")]
    ConsistencyTimeout(String),
    /// A token issuer's signing keys cannot be had (503 `issuer-unavailable`): fail closed.
    /// The reason (key location, fetch error) is logged, never answered: the caller is not
    /// authenticated yet.
    #[error("{0}")]
    IssuerUnavailable(String),
    /// This replica's snapshot is not loaded yet, or older than `max_staleness_ms`: it
    /// answers nothing from it (503 `not-ready`, fail closed).
    #[error("{reason}")]
    NotReady {
        /// Why, for the problem's `detail`.
        reason: String,
        /// What `/readyz` reports, for the problem's `readiness`.
        readiness: Box<crate::api::Readiness>,
    },
    /// The store is unreachable (503 `store-unavailable`).
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// A bug; the body says only "internal error" (500 `internal`).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// One invalid field or parameter.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        ApiError::Validation(ValidationErrors::single(pointer, detail))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            Validation(_) => (StatusCode::BAD_REQUEST, "validation", "Invalid request"),
            MalformedBody(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
            ),
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid-token", "Invalid token"),
            Forbidden { .. } | ForbiddenOther(_) => {
                (StatusCode::FORBIDDEN, "forbidden", "Forbidden")
            }
            EscalationRefused { .. } => (
                StatusCode::FORBIDDEN,
                "escalation-refused",
                "Privilege escalation refused",
            ),
            NotFound(_) | NoRoute(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            BuiltinImmutable(_) => (
                StatusCode::CONFLICT,
                "builtin-role-immutable",
                "Built-in role is read-only",
            ),
            PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
            ),
            RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                "Request timeout",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Unprocessable request",
            ),
            Refused(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "activation-refused",
                "Activation refused",
            ),
            ConsistencyTimeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "consistency-timeout",
                "Consistency timeout",
            ),
            IssuerUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "issuer-unavailable",
                "Token issuer unavailable",
            ),
            NotReady { .. } => (StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready"),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Store unavailable",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { .. } => ApiError::NotFound(error.to_string()),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::BuiltinImmutable(_) => ApiError::BuiltinImmutable(error.to_string()),
            StoreError::PreconditionFailed { .. } => {
                ApiError::PreconditionFailed(error.to_string())
            }
            StoreError::Unprocessable(errors) => ApiError::Unprocessable(errors),
            StoreError::Refused(refusal) => ApiError::Refused(refusal),
            StoreError::InvalidCursor => ApiError::invalid("?cursor", error.to_string()),
            StoreError::Unavailable(source) => ApiError::Unavailable(source.into()),
            StoreError::Corrupt(message) => ApiError::Internal(anyhow::anyhow!(message)),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors)
    }
}

/// The problem document (RFC 9457) with Rolecall's `errors` extension.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    /// For a 403: the action refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    /// For a 403: where it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    /// For `escalation-refused`: the role's patterns the caller lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<&'a [String]>,
    /// For `activation-refused`: which rule refused (`not-eligible`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// For `not-ready`: what `/readyz` reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    readiness: Option<&'a crate::api::Readiness>,
    /// The request's `x-request-id`, so a problem pasted into a ticket finds its log lines.
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        match &self {
            ApiError::Internal(source) => tracing::error!(error = ?source, "internal error"),
            ApiError::Unavailable(source) => tracing::warn!(error = ?source, "store unavailable"),
            ApiError::IssuerUnavailable(reason) => {
                tracing::warn!(error = %reason, "token issuer unavailable");
            }
            _ => {}
        }
        let errors = match &self {
            ApiError::Validation(e) | ApiError::Unprocessable(e) => Some(e.errors.as_slice()),
            _ => None,
        };
        let detail = match &self {
            // INVARIANT: a 5xx never leaks its cause; the request id (in the headers and in
            // `requestId`) ties it to the log line written above.
            ApiError::Internal(_) => "internal error".to_owned(),
            ApiError::Unavailable(_) => "the store is unavailable; retry later".to_owned(),
            ApiError::IssuerUnavailable(_) => ISSUER_UNAVAILABLE.to_owned(),
            ApiError::Validation(e) | ApiError::Unprocessable(e) => e.to_string(),
            other => other.to_string(),
        };
        let (action, scope, missing) = match &self {
            ApiError::Forbidden { action, scope } => {
                (Some(action.as_str()), Some(scope.as_str()), None)
            }
            ApiError::EscalationRefused { scope, missing, .. } => (
                Some(crate::api::authz::MANAGE_ASSIGNMENTS),
                Some(scope.as_str()),
                Some(missing.as_slice()),
            ),
            _ => (None, None, None),
        };
        let request_id = crate::telemetry::request_id();
        let problem = Problem {
            kind: format!("{PROBLEM_BASE}{kind}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
            action,
            scope,
            missing,
            reason: match &self {
                ApiError::Refused(refusal) => Some(refusal.reason()),
                _ => None,
            },
            readiness: match &self {
                ApiError::NotReady { readiness, .. } => Some(readiness.as_ref()),
                _ => None,
            },
            request_id: request_id.as_ref().and_then(|id| id.to_str().ok()),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"rolecall\""),
                );
            }
            // RFC 6750 §3: a presented but bad credential says `invalid_token`, and why.
            ApiError::InvalidToken(reason) => {
                let challenge = format!(
                    "Bearer realm=\"rolecall\", error=\"invalid_token\", error_description=\"{}\"",
                    quotable(reason)
                );
                let value = HeaderValue::from_str(&challenge).unwrap_or_else(|_| {
                    HeaderValue::from_static("Bearer realm=\"rolecall\", error=\"invalid_token\"")
                });
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
            // RFC 9110 §15.5.9: the rest of the body may still come; the connection cannot
            // carry another request.
            ApiError::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        if matches!(
            self,
            ApiError::ConsistencyTimeout(_)
                | ApiError::NotReady { .. }
                | ApiError::Unavailable(_)
                | ApiError::IssuerUnavailable(_)
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// RFC 6750 `error_description` allows printable ASCII except `"` and `\\`.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl From<crate::sync::NotYet> for ApiError {
    fn from(e: crate::sync::NotYet) -> Self {
        ApiError::ConsistencyTimeout(format!(
            "revision {} is committed but this replica's snapshot is at {}; retry with consistency {{\"atLeast\": \"{}\"}}",
            e.wanted, e.reached, e.wanted
        ))
    }
}

impl From<crate::decide::DecideError> for ApiError {
    fn from(e: crate::decide::DecideError) -> Self {
        use crate::decide::DecideError;
        match e {
            DecideError::Forbidden { action, scope } => ApiError::Forbidden {
                action: action.to_owned(),
                scope: scope.as_str().to_owned(),
            },
            DecideError::NotYet(e) => e.into(),
            DecideError::Store(e) => e.into(),
        }
    }
}
