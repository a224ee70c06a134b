//! Starts the real app on loopback (bind port 0 first, then spawn: no test sleeps) and
//! talks to it over real HTTP.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use rolecall::config::Config;
use rolecall::App;
use serde_json::Value;

/// The admin key every test app uses.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

/// A running app on its own fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The database URL the app uses.
    pub database_url: String,
    /// The app's decision clock: the system time plus an offset a test moves forward.
    pub clock: Arc<TestClock>,
    /// Every decision the app reported, in order.
    pub decisions: Arc<Decisions>,
    /// The app's shared state: its store and decision layer (e.g. its current snapshot).
    pub state: rolecall::api::AppState,
    /// Stops the server when dropped.
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// One HTTP answer, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Parsed body (`Value::Null` when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `type` suffix (`validation`, `not-found`, ...), asserting the content type.
    pub fn problem(&self) -> &str {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "expected a problem document, got {self:?}"
        );
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("https://rolecall.dev/problems/"))
            .unwrap_or_else(|| panic!("no problem type in {:?}", self.body))
    }

    /// The problem's field pointers, in order.
    pub fn pointers(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|e| e["pointer"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl TestApp {
    /// Starts the app against `database_url`.
    pub async fn spawn(database_url: String) -> TestApp {
        Self::spawn_with(Config::for_tests(database_url, ADMIN_KEY)).await
    }

    /// Starts the app with a custom config.
    pub async fn spawn_with(config: Config) -> TestApp {
        init_logs();
        let database_url = config.database_url.as_str().to_owned();
        let clock = Arc::new(TestClock::default());
        let decisions = Arc::new(Decisions::default());
        let wiring = rolecall::decide::Wiring {
            clock: clock.clone(),
            hook: decisions.clone(),
        };
        let app = App::build_with(config, wiring).await.expect("app builds");
        let addr = app.local_addr().expect("bound");
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = app
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        TestApp {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            database_url,
            clock,
            decisions,
            state,
            _shutdown: tx,
        }
    }

    /// Sends a request with the admin key, optionally a JSON body and extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(ADMIN_KEY);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request sent");
        Self::reply(response).await
    }

    /// Turns a response into a [`Reply`].
    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `GET` with the admin key.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
    }

    /// `POST` JSON with the admin key.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    /// `PATCH` JSON with the admin key.
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(body), &[]).await
    }

    /// `DELETE` with the admin key.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None, &[]).await
    }
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
    }
}

/// The decision clock tests run on: the system time shifted by an offset that only grows,
/// so a test jumps ahead instead of sleeping, and every other test sees real time.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    /// Moves the app's decisions `by` into the future.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl rolecall::decide::Clock for TestClock {
    fn now(&self) -> rolecall::model::Timestamp {
        chrono::Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// One reported decision, as the test hook keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The request's id.
    pub request_id: String,
    /// The caller's actor id.
    pub caller: String,
    /// The subject asked about.
    pub subject: uuid::Uuid,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// Check or admin.
    pub purpose: rolecall::decide::Purpose,
    /// The answer.
    pub allowed: bool,
    /// The snapshot revision.
    pub revision: String,
}

/// A decision hook that remembers every decision.
#[derive(Debug, Default)]
pub struct Decisions(std::sync::Mutex<Vec<Decided>>);

impl Decisions {
    /// Every decision so far.
    pub fn all(&self) -> Vec<Decided> {
        self.0.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl rolecall::decide::DecisionHook for Decisions {
    fn record(&self, record: &rolecall::decide::DecisionRecord<'_>) {
        let request = &record.question.request;
        if let Ok(mut all) = self.0.lock() {
            all.push(Decided {
                request_id: record.request_id.to_owned(),
                caller: record.caller.id().to_owned(),
                subject: request.subject.id,
                action: request.action.as_str().to_owned(),
                resource: request.resource.as_str().to_owned(),
                purpose: record.purpose,
                allowed: record.allowed,
                revision: record.revision.to_string(),
            });
        }
    }
}
