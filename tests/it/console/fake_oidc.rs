//! A fake OpenID Connect issuer on loopback for the console's sign-in: discovery, an
//! authorization endpoint that consents at once, and a token endpoint that checks the PKCE
//! verifier against the challenge before handing out the token it was given (signed by the
//! test IdP, so Rolecall's own verifier accepts it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::json;

/// What the fake remembers.
#[derive(Default)]
pub struct Shared {
    /// The token the token endpoint hands out.
    pub token: Mutex<String>,
    /// code → (challenge, redirect_uri, client_id).
    codes: Mutex<HashMap<String, (String, String, String)>>,
    /// Token requests refused for a bad verifier.
    pub refused: Mutex<usize>,
}

/// A running fake issuer.
pub struct FakeOidc {
    /// Its base URL (the `[console] issuer`).
    pub issuer: String,
    /// Its state.
    pub shared: Arc<Shared>,
}

type Params = Query<HashMap<String, String>>;

impl FakeOidc {
    /// Binds 127.0.0.1:0, then serves.
    pub async fn start() -> FakeOidc {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let base = issuer.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let base = base.clone();
                    async move {
                        Json(json!({
                            "issuer": base,
                            "authorization_endpoint": format!("{base}/authorize"),
                            "token_endpoint": format!("{base}/token"),
                        }))
                    }
                }),
            )
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOidc { issuer, shared }
    }
}

async fn authorize(State(shared): State<Arc<Shared>>, Query(q): Params) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code" || get("code_challenge_method") != "S256" {
        return (StatusCode::BAD_REQUEST, "code flow with S256 only").into_response();
    }
    let code = uuid::Uuid::new_v4().to_string();
    shared.codes.lock().unwrap().insert(
        code.clone(),
        (get("code_challenge"), get("redirect_uri"), get("client_id")),
    );
    Redirect::to(&format!(
        "{}?code={code}&state={}",
        get("redirect_uri"),
        get("state")
    ))
    .into_response()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let Some((challenge, redirect_uri, client_id)) =
        shared.codes.lock().unwrap().remove(&get("code"))
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, get("code_verifier").as_bytes());
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    if get("grant_type") != "authorization_code"
        || computed != challenge
        || get("redirect_uri") != redirect_uri
        || get("client_id") != client_id
    {
        *shared.refused.lock().unwrap() += 1;
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    }
    let token = shared.token.lock().unwrap().clone();
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})).into_response()
}
