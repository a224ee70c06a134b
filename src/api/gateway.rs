//! Forward-auth for gateways: `/v1/gateway/authorize` decides the request a gateway is about
//! to pass upstream, read from the gateway's headers (nginx `auth_request`: `X-Original-Method`,
//! `X-Original-URI`; Caddy `forward_auth` and Traefik ForwardAuth: `X-Forwarded-Method`,
//! `X-Forwarded-Uri`, `X-Forwarded-Host`) or, for Envoy's HTTP ext_authz, from the request's
//! own method and the path after `/v1/gateway/authorize`.
//!
//! The subject is the bearer token's holder, so the question is about the caller itself and
//! needs no right to ask. `[gateway]` rules map method, path and host to an action and a
//! resource path. 200 carries the principal for the upstream; 401 is a missing or bad token
//! (with `WWW-Authenticate`, which nginx and Caddy pass on); 403 a deny, an unmatched route
//! (unless `unmatched = "allow"`) or a path that is refused. A request that cannot have come
//! from a correctly configured gateway (no original URI, or sources that disagree) is a 400,
//! which gateways turn into an error, never into access.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use super::authz::Caller;
use super::{route, ApiError, AppState, Route};
use crate::decide::Question;
use crate::engine::{CheckRequest, Facts};
use crate::gateway::{ResolveError, Routes, Unmatched};

/// The forward-auth endpoint (nginx, Caddy, Traefik).
pub const AUTHORIZE_PATH: &str = "/v1/gateway/authorize";
/// Envoy's HTTP ext_authz sends the original method and path under `path_prefix`.
pub const ENVOY_PATH: &str = "/v1/gateway/authorize/{*path}";

/// The original method, from nginx.
pub static ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
/// The original URI (path and query), from nginx.
pub static ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
/// The original method, from Caddy and Traefik.
pub static FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
/// The original URI, from Caddy and Traefik.
pub static FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
/// The original host.
pub static FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The gateway's shared secret, when `[gateway] shared_secret` is set.
pub static GATEWAY_SECRET: HeaderName = HeaderName::from_static("x-rolecall-gateway-secret");
/// For the upstream: the caller's principal id.
pub static PRINCIPAL: HeaderName = HeaderName::from_static("x-rolecall-principal");
/// For the upstream: the caller's tenant.
pub static TENANT: HeaderName = HeaderName::from_static("x-rolecall-tenant");
/// For the upstream: the decision's id (the authorize request's `x-request-id`, which the
/// decision log records).
pub static DECISION_ID: HeaderName = HeaderName::from_static("x-rolecall-decision-id");

/// The methods the endpoint answers (`GET` also answers `HEAD`). Gateways send `GET`; Envoy
/// sends the original request's method.
const METHODS: [(Method, MethodFilter); 6] = [
    (Method::GET, MethodFilter::GET),
    (Method::POST, MethodFilter::POST),
    (Method::PUT, MethodFilter::PUT),
    (Method::PATCH, MethodFilter::PATCH),
    (Method::DELETE, MethodFilter::DELETE),
    (Method::OPTIONS, MethodFilter::OPTIONS),
];

/// The gateway routes.
pub fn routes() -> Vec<Route> {
    let mut all = Vec::with_capacity(2 * METHODS.len());
    for path in [AUTHORIZE_PATH, ENVOY_PATH] {
        for (method, filter) in METHODS {
            all.push(route(method, path, on(filter, authorize)));
        }
    }
    all
}

/// The request the gateway asks about.
#[derive(Debug)]
struct Original<'a> {
    method: &'a str,
    uri: &'a str,
    host: Option<&'a str>,
}

/// The one value of header `name`, if sent; sent twice, or not visible ASCII, is a 400.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value.to_str().map(Some).map_err(|_| {
            ApiError::invalid(name.as_str(), format!("`{name}` is not visible ASCII"))
        }),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            name.as_str(),
            format!("`{name}` is sent more than once"),
        )),
    }
}

/// The one value all `sources` that are present agree on; disagreeing sources mean a client
/// header slipped past the gateway, so the request is refused rather than guessed.
fn agreed<'a>(
    sources: &[(&str, Option<&'a str>)],
    same: impl Fn(&str, &str) -> bool,
) -> Result<Option<&'a str>, ApiError> {
    let mut found: Option<(&str, &'a str)> = None;
    for (name, value) in sources {
        let Some(value) = value else { continue };
        match found {
            None => found = Some((name, value)),
            Some((first, seen)) if !same(seen, value) => {
                return Err(ApiError::invalid(
                    *name,
                    format!("`{name}` and `{first}` name different requests; send one"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(found.map(|(_, value)| value))
}

impl<'a> Original<'a> {
    fn from_parts(parts: &'a Parts) -> Result<Original<'a>, ApiError> {
        let headers = &parts.headers;
        // Envoy: `/v1/gateway/authorize/api/x?q` is `/api/x?q` with the request's own method.
        let envoy = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .and_then(|pq| pq.strip_prefix(AUTHORIZE_PATH))
            .filter(|rest| rest.starts_with('/'));
        let uri = agreed(
            &[
                ("X-Original-URI", single(headers, &ORIGINAL_URI)?),
                ("X-Forwarded-Uri", single(headers, &FORWARDED_URI)?),
                ("the path after /v1/gateway/authorize", envoy),
            ],
            |a, b| a == b,
        )?
        .ok_or_else(|| {
            ApiError::invalid(
                "X-Original-URI",
                "send the original request's URI as `X-Original-URI` (nginx) or \
                 `X-Forwarded-Uri` (Caddy, Traefik), or ask at \
                 `/v1/gateway/authorize/<path>` (Envoy)",
            )
        })?;
        let method = agreed(
            &[
                ("X-Original-Method", single(headers, &ORIGINAL_METHOD)?),
                ("X-Forwarded-Method", single(headers, &FORWARDED_METHOD)?),
                ("the request's method", envoy.map(|_| parts.method.as_str())),
            ],
            |a, b| a.eq_ignore_ascii_case(b),
        )?
        // A gateway's own subrequest is a GET whatever the original was, so the method is
        // never assumed.
        .ok_or_else(|| {
            ApiError::invalid(
                "X-Original-Method",
                "send the original request's method as `X-Original-Method` (nginx) or \
                 `X-Forwarded-Method` (Caddy, Traefik)",
            )
        })?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ApiError::invalid(
                "X-Original-Method",
                format!("`{method}` is not an HTTP method"),
            ));
        }
        let forwarded_host = single(headers, &FORWARDED_HOST)?;
        if forwarded_host.is_some_and(|h| h.contains(',')) {
            return Err(ApiError::invalid(
                "X-Forwarded-Host",
                "`X-Forwarded-Host` names one host; a list cannot be trusted",
            ));
        }
        // Envoy keeps the original `Host`; a gateway's subrequest has its own, so there the
        // host comes only from `X-Forwarded-Host`.
        let host = match envoy {
            Some(_) => forwarded_host.or(single(headers, &header::HOST)?),
            None => forwarded_host,
        };
        Ok(Original { method, uri, host })
    }
}

/// `[gateway] shared_secret`: the gateway proves itself before anything else is looked at.
fn check_secret(routes: &Routes, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(secret) = routes.shared_secret() else {
        return Ok(());
    };
    let sent = headers
        .get(&GATEWAY_SECRET)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    // INVARIANT: constant-time comparison, so response timing says nothing about the secret.
    if bool::from(sent.ct_eq(secret.expose().as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::ForbiddenOther(
            "the gateway did not send the right `X-Rolecall-Gateway-Secret`".to_owned(),
        ))
    }
}

/// `/v1/gateway/authorize` (any method, no body) and `/v1/gateway/authorize/{path}`.
async fn authorize(State(app): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    // One load: the request is decided by one version of the rules, whatever a reload does.
    let routes = app.config().gateway.routes();
    check_secret(&routes, &parts.headers)?;
    // A gateway's mistake is reported before the caller's (read again below, once the
    // extractor has had `parts` mutably).
    Original::from_parts(&parts)?;
    let caller = Caller::from_request_parts(&mut parts, &app).await?;
    let Some(identity) = caller.identity() else {
        return Err(ApiError::ForbiddenOther(
            "the admin key is no principal; a gateway forwards the token of the caller to decide about"
                .to_owned(),
        ));
    };
    let original = Original::from_parts(&parts)?;
    let target = match routes.resolve(original.method, original.uri, original.host) {
        Ok(Some(target)) => target,
        Ok(None) => match routes.unmatched() {
            Unmatched::Allow => return Ok(allowed(&caller)),
            Unmatched::Deny => {
                return Err(ApiError::ForbiddenOther(format!(
                    "no gateway route matches `{} {}`",
                    original.method.to_ascii_uppercase(),
                    path_only(original.uri)
                )))
            }
        },
        Err(ResolveError::Path(error)) => {
            return Err(ApiError::ForbiddenOther(format!(
                "the request path is refused: {error}"
            )))
        }
        Err(error @ ResolveError::Unmappable { .. }) => {
            return Err(ApiError::ForbiddenOther(error.to_string()))
        }
    };
    let mut request = CheckRequest::new(identity.subject(), target.action, target.resource);
    request.facts = Facts {
        resource: target
            .captures
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect::<Map<String, Value>>(),
        action_name: Some(original.method.to_ascii_uppercase()),
        ..Facts::default()
    };
    let question = Question {
        request,
        groups_overage: identity.groups_overage,
        vouched: false,
    };
    let decider = app.decider();
    // About oneself: always allowed to ask, but asked the one way every front door asks.
    decider.may_ask(
        &caller,
        &question.request.subject,
        false,
        &question.request.resource,
    )?;
    let snapshot = decider.snapshot();
    let verdict = decider.decide(&caller, &snapshot, &question, false);
    if verdict.allowed {
        Ok(allowed(&caller))
    } else {
        Err(ApiError::Forbidden {
            action: question.request.action.as_str().to_owned(),
            scope: question.request.resource.as_str().to_owned(),
        })
    }
}

/// The URI without its query, for messages (a query may hold secrets).
fn path_only(uri: &str) -> &str {
    uri.split(['?', '#']).next().unwrap_or(uri)
}

/// 200 with the caller for the upstream.
fn allowed(caller: &Caller) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    let values = [
        (&PRINCIPAL, caller.principal_id().map(|id| id.to_string())),
        (&TENANT, Some(caller.tenant.to_string())),
    ];
    for (name, value) in values {
        if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
            headers.insert(name.clone(), value);
        }
    }
    headers.insert(DECISION_ID.clone(), caller.request_id.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
