//! Just enough of W3C WebDriver, over reqwest, to drive headless Chromium through
//! `chromedriver` (Debian's `chromium` and `chromium-driver`): no extra crate to build.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A `chromedriver` process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    client: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    /// Where screenshots go.
    shots: PathBuf,
}

/// One element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn driver_path() -> PathBuf {
    for candidate in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "chromedriver not found: the console's browser tests need Debian's `chromium` and \
         `chromium-driver` (apt-get install chromium chromium-driver; .ci/run installs them)"
    );
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium at a laptop's window size.
    pub async fn start(shots: PathBuf) -> Browser {
        std::fs::create_dir_all(&shots).expect("screenshot directory");
        let port = free_port();
        let driver = Command::new(driver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        // chromedriver binds after it starts: poll its status (bounded), nothing else waits.
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{base}/status")).send().await {
                if r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
                {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready");
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Debian's chromium");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1366,900",
                         "--no-first-run", "--disable-extensions"]
            }
        }}});
        let answer: Value = client
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session answer");
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        Browser {
            driver,
            client,
            session: format!("{base}/session/{id}"),
            shots,
        }
    }

    /// Like `send`, but `None` on an error (a page between documents, say).
    async fn try_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        let answer: Value = self
            .client
            .request(method, format!("{}{path}", self.session))
            .json(&body.unwrap_or_else(|| json!({})))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (!answer["value"]["error"].is_string()).then(|| answer["value"].clone())
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let answer: Value = request
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("webdriver answer");
        if answer["value"]["error"].is_string() {
            panic!("webdriver {method} {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    /// Loads `url` and waits for it.
    pub async fn goto(&self, url: &str) {
        self.send(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.send(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.send(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The one element `css` selects (panics when there is none).
    pub async fn find(&self, css: &str) -> Element<'_> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        Element {
            browser: self,
            id: v[ELEMENT].as_str().expect("element id").to_owned(),
        }
    }

    /// How many elements `css` selects.
    pub async fn count(&self, css: &str) -> usize {
        self.send(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .map_or(0, Vec::len)
    }

    /// The first link whose text is exactly `text`.
    pub async fn link(&self, text: &str) -> Element<'_> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "link text", "value": text})),
            )
            .await;
        Element {
            browser: self,
            id: v[ELEMENT].as_str().expect("element id").to_owned(),
        }
    }

    /// The visible text of the page's `<main>`.
    pub async fn main_text(&self) -> String {
        self.find("main").await.text().await
    }

    /// Runs `script` in the page (`arguments[0]`... are `args`).
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.send(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Ends the session, which closes Chromium.
    pub async fn quit(mut self) {
        let _ = self.client.delete(self.session.clone()).send().await;
        self.session.clear();
    }

    /// Saves a PNG of the window as `<shots>/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let b64 = self.send(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("screenshot saved");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never called `quit`: end the session (closing Chromium)
        // with a blocking request, so no browser outlives its driver.
        if let Some(rest) = self.session.strip_prefix("http://") {
            if let Some((host, path)) = rest.split_once('/') {
                use std::io::{Read as _, Write as _};
                if let Ok(mut stream) = std::net::TcpStream::connect(host) {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = write!(
                        stream,
                        "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n"
                    );
                    let _ = stream.read_to_end(&mut Vec::new());
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    /// Clicks it (and waits for a navigation it starts).
    pub async fn click(&self) {
        self.browser
            .send(
                reqwest::Method::POST,
                &format!("/element/{}/click", self.id),
                None,
            )
            .await;
    }

    /// Clicks it and waits until the page it leads to has loaded: a form's submission
    /// may navigate after the click returns, so the old document is marked first.
    pub async fn click_to_load(&self) {
        let b = self.browser;
        b.script("window.__rolecallOld = true;", json!([])).await;
        self.click().await;
        for _ in 0..200 {
            let loaded = b
                .try_send(
                    reqwest::Method::POST,
                    "/execute/sync",
                    Some(
                        json!({"script": "return window.__rolecallOld === undefined \
                        && document.readyState === 'complete';", "args": []}),
                    ),
                )
                .await;
            if loaded == Some(json!(true)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the click did not load a new page");
    }

    /// Clears it, then types `text`.
    pub async fn fill(&self, text: &str) {
        self.browser
            .send(
                reqwest::Method::POST,
                &format!("/element/{}/clear", self.id),
                None,
            )
            .await;
        self.browser
            .send(
                reqwest::Method::POST,
                &format!("/element/{}/value", self.id),
                Some(json!({"text": text})),
            )
            .await;
    }

    /// Its visible text.
    pub async fn text(&self) -> String {
        self.browser
            .send(
                reqwest::Method::GET,
                &format!("/element/{}/text", self.id),
                None,
            )
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}
