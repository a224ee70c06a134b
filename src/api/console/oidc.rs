//! OpenID Connect sign-in: authorization code with PKCE (S256) against `[console] issuer`.
//!
//! Written out rather than taken from a crate: PKCE is a SHA-256 (ring) and base64url, the
//! exchange one form POST (reqwest), both already dependencies, and the token itself is
//! then verified by the API's own authentication like any bearer token. Nothing is kept
//! on the server between the two legs: the verifier, state and nonce travel in a sealed,
//! ten-minute, `SameSite=Lax` cookie (Lax, because the callback is a top-level navigation
//! from the issuer's site, on which a Strict cookie would not be sent).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::html::{enc, esc, page};
use super::session::{same_token, COOKIE};
use super::{see_other, Console};
use crate::api::AppState;
use crate::config::ConsoleOidc;

/// The cookie carrying the pending sign-in between the two legs.
pub const PENDING_COOKIE: &str = "rolecall_console_oidc";
/// How long the user has at the issuer.
const PENDING_SECONDS: i64 = 600;
/// Where the issuer sends the user back.
pub const CALLBACK_PATH: &str = "/console/signin/callback";

/// What the first leg leaves for the second.
#[derive(Serialize, Deserialize)]
struct Pending {
    verifier: String,
    state: String,
    redirect_uri: String,
    token_endpoint: String,
    expires: i64,
}

#[derive(Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    id_token: Option<String>,
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// This console's own base URL: `public_url` when configured, else the request's host.
fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &app.config().public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn failed(status: StatusCode, message: &str) -> Response {
    page(
        status,
        "Sign-in failed",
        None,
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p><p><a href=\"/console/signin\">Back to sign in</a></p>",
            esc(message)
        ),
    )
}

fn pending_cookie(value: &str, max_age: i64) -> HeaderValue {
    let text = format!(
        "{PENDING_COOKIE}={value}; Path=/console/signin; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

async fn discover(console: &Console, oidc: &ConsoleOidc) -> Result<Discovery, String> {
    let url = format!("{}/.well-known/openid-configuration", oidc.issuer);
    let response = console
        .http()
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("cannot reach the issuer's discovery document: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("cannot read {url}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{url} is not a discovery document: {e}"))
}

/// First leg: off to the issuer with a fresh verifier, state and nonce. A plain link, not
/// a form: a form's redirect to another origin would break `form-action 'self'`, and a
/// forged start only sends the user to their own sign-in (the state cookie binds the
/// callback to the browser that started it, which is what stops login CSRF here).
pub(super) async fn start(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
) -> Response {
    let Some(oidc) = app.config().console_oidc.clone() else {
        return failed(
            StatusCode::NOT_FOUND,
            "OpenID Connect sign-in is not configured",
        );
    };
    let endpoints = match discover(&console, &oidc).await {
        Ok(endpoints) => endpoints,
        Err(message) => return failed(StatusCode::BAD_GATEWAY, &message),
    };
    let key = console.key();
    let (Some(v1), Some(v2), Some(state), Some(nonce)) = (
        key.random_token(),
        key.random_token(),
        key.random_token(),
        key.random_token(),
    ) else {
        return failed(
            StatusCode::SERVICE_UNAVAILABLE,
            "the system random generator failed; try again",
        );
    };
    let verifier = format!("{v1}{v2}");
    let pending = Pending {
        state,
        redirect_uri: format!("{}{CALLBACK_PATH}", base_url(&app, &headers)),
        token_endpoint: endpoints.token_endpoint,
        expires: chrono::Utc::now().timestamp() + PENDING_SECONDS,
        verifier,
    };
    let Some(sealed) = key.seal_as(PENDING_COOKIE, &pending) else {
        return failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot start the sign-in",
        );
    };
    let separator = if endpoints.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let mut url = endpoints.authorization_endpoint;
    let _ = write!(
        url,
        "{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}\
         &code_challenge={}&code_challenge_method=S256",
        enc(&oidc.client_id),
        enc(&pending.redirect_uri),
        enc(&oidc.scope),
        enc(&pending.state),
        enc(&nonce),
        challenge(&pending.verifier)
    );
    let mut response = see_other(&url);
    response
        .headers_mut()
        .append(header::SET_COOKIE, pending_cookie(&sealed, PENDING_SECONDS));
    response
}

/// Second leg: the issuer's code and our state back; exchange the code with the verifier.
pub(super) async fn callback(
    State(app): State<AppState>,
    Extension(console): Extension<Console>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(oidc) = app.config().console_oidc.clone() else {
        return failed(
            StatusCode::NOT_FOUND,
            "OpenID Connect sign-in is not configured",
        );
    };
    if let Some(error) = q.get("error") {
        let detail = q.get("error_description").map_or("", String::as_str);
        return failed(
            StatusCode::UNAUTHORIZED,
            &format!("the issuer refused: {error} {detail}"),
        );
    }
    let pending: Option<Pending> = super::pages::cookie(&headers, PENDING_COOKIE)
        .and_then(|value| console.key().open_as(PENDING_COOKIE, &value));
    let Some(pending) = pending.filter(|p| p.expires > chrono::Utc::now().timestamp()) else {
        return failed(
            StatusCode::FORBIDDEN,
            "no sign-in is in progress here; start again",
        );
    };
    let state = q.get("state").map_or("", String::as_str);
    if !same_token(&pending.state, state) {
        return failed(
            StatusCode::FORBIDDEN,
            "the sign-in's state did not match; start again",
        );
    }
    let Some(code) = q.get("code") else {
        return failed(StatusCode::BAD_REQUEST, "the issuer sent no code");
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("client_id", oidc.client_id.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    let answer = match console
        .http()
        .post(&pending.token_endpoint)
        .form(&form)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<TokenAnswer>(&b).ok()),
        Ok(r) => {
            return failed(
                StatusCode::UNAUTHORIZED,
                &format!("the token endpoint answered {}", r.status()),
            )
        }
        Err(e) => {
            return failed(
                StatusCode::BAD_GATEWAY,
                &format!("cannot reach the token endpoint: {e}"),
            )
        }
    };
    let Some(answer) = answer else {
        return failed(
            StatusCode::BAD_GATEWAY,
            "the token endpoint's answer is not a token response",
        );
    };
    let mut last_error = "the issuer returned no token".to_owned();
    for token in [answer.access_token, answer.id_token].into_iter().flatten() {
        match console.caller(&app, &token).await {
            Ok(caller) => {
                let label = super::pages::label_of(&caller);
                let expires = super::session::token_expiry(&token);
                let Some(session) = console.key().start(token, label, expires) else {
                    return failed(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the system random generator failed; try again",
                    );
                };
                let Some(sealed) = console.key().seal(&session) else {
                    return failed(StatusCode::INTERNAL_SERVER_ERROR, "cannot start a session");
                };
                let max_age = (session.expires - chrono::Utc::now().timestamp()).max(0);
                let secure = super::pages::secure(&app, &headers);
                // A 200 page, not a redirect: this navigation began on the issuer's site,
                // so the Strict session cookie is sent only from a navigation of our own.
                let mut response = page(
                    StatusCode::OK,
                    "Signed in",
                    None,
                    "<p>Signed in. <a id=\"continue\" href=\"/console/roles\">Continue to the console</a></p>",
                );
                let h = response.headers_mut();
                h.append(
                    header::SET_COOKIE,
                    super::pages::set_cookie(COOKIE, &sealed, max_age, secure),
                );
                h.append(header::SET_COOKIE, pending_cookie("", 0));
                h.insert(
                    header::REFRESH,
                    HeaderValue::from_static("0; url=/console/roles"),
                );
                return response.into_response();
            }
            Err(error) => last_error = error.to_string(),
        }
    }
    failed(
        StatusCode::UNAUTHORIZED,
        &format!("the issuer's token is not accepted here: {last_error}"),
    )
}
