//! The load test's baseline: a trivial axum handler on the same runtime settings as
//! Rolecall, answering `POST /v1/check` with a constant decision. `scripts/load-test`
//! measures both in the same run and reports the ratio.
#![allow(clippy::unwrap_used, clippy::expect_used)] // measurement code: a failed set-up should stop the run

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().route(
        "/v1/check",
        post(|Json(_): Json<Value>| async {
            Json(json!({"allowed": true, "decision": "allow", "revision": "1", "reasons": []}))
        }),
    );
    println!("baseline listening on http://{addr}");
    axum::serve(listener, app).await
}
