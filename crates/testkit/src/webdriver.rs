use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::WAIT_LIMIT;

/// The network error Chromium shows when it believes the machine is offline.
const OFFLINE: &str = "ERR_INTERNET_DISCONNECTED";

/// The W3C WebDriver element reference key.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
/// which `just test` installs). One browser session; closed on drop. Refuses loudly when
/// the browser or its driver is missing.
#[derive(Debug)]
pub struct Chromium {
    driver: Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

/// A page element.
#[derive(Debug, Clone)]
pub struct Element(String);

fn find_binary(names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"]
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|path| path.exists())
            .map(|path| path.display().to_string())
    })
}

impl Chromium {
    /// Starts chromedriver and a headless browser session.
    pub async fn start() -> anyhow::Result<Self> {
        Chromium::start_with_args(&[]).await
    }

    /// The same, with more Chromium switches (e.g. `--host-resolver-rules=…`).
    pub async fn start_with_args(extra_args: &[String]) -> anyhow::Result<Self> {
        let driver_bin = find_binary(&["chromedriver"]).ok_or_else(|| {
            anyhow::anyhow!("chromedriver not found; install it with: apt-get install -y chromium chromium-driver")
        })?;
        let browser_bin = find_binary(&["chromium", "chromium-browser"]).ok_or_else(|| {
            anyhow::anyhow!(
                "chromium not found; install it with: apt-get install -y chromium chromium-driver"
            )
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        // The driver prints nothing we can wait on reliably; ask its status until it answers.
        tokio::time::timeout(WAIT_LIMIT, async {
            loop {
                if let Ok(response) = http.get(format!("{base}/status")).send().await {
                    if response.status().is_success() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("chromedriver did not start within {WAIT_LIMIT:?}"))?;
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1000,800",
            "--no-first-run",
            "--disable-extensions",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra_args.iter().cloned());
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": browser_bin,
                    "args": args
                }
            }}
        });
        let reply: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await?
            .json()
            .await?;
        let session = reply["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("chromium did not start a session: {reply}"))?
            .to_owned();
        Ok(Chromium {
            driver,
            http,
            session,
            base,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request.send().await?.json().await?;
        if let Some(error) = reply["value"].get("error") {
            anyhow::bail!("webdriver {path}: {error}: {}", reply["value"]["message"]);
        }
        Ok(reply["value"].clone())
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// The current URL.
    pub async fn current_url(&self) -> anyhow::Result<String> {
        let value = self.call(reqwest::Method::GET, "/url", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The element matching `css`, waiting until it appears.
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({ "using": "css selector", "value": css })),
                )
                .await;
            match found {
                Ok(value) => {
                    let id = value[ELEMENT_KEY]
                        .as_str()
                        .ok_or_else(|| anyhow::anyhow!("no element reference for {css}"))?;
                    return Ok(Element(id.to_owned()));
                }
                Err(err) if tokio::time::Instant::now() > deadline => {
                    let url = self.current_url().await.unwrap_or_default();
                    let page = self.page_text().await;
                    anyhow::bail!("{css} never appeared on {url}: {err}; the page shows: {page}")
                }
                Err(_) => {
                    // Chromium on Linux briefly believes it is offline while network
                    // interfaces come and go (Docker adds and removes them for containers
                    // started beside the test) and shows its offline page instead of
                    // loading: load the page again, as a person would.
                    if self.page_text().await == OFFLINE {
                        self.call(reqwest::Method::POST, "/refresh", Some(json!({})))
                            .await?;
                    }
                    // Navigation after a click may still be under way.
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
            }
        }
    }

    /// Waits until the element matching `css` shows text containing `text`; that text.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let seen = match self.find(css).await {
                Ok(element) => self.text(&element).await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if seen.contains(text) {
                return Ok(seen);
            }
            if tokio::time::Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_default();
                anyhow::bail!("{css} on {url} shows {seen:?}, never {text:?}");
            }
            // The page changes on its own schedule (redirect chains); WebDriver has no
            // event for "this text appeared", so ask again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The start of the page's source, for a failure to say what was shown instead.
    async fn page_text(&self) -> String {
        match self.call(reqwest::Method::GET, "/source", None).await {
            Ok(source) => {
                let source = source.as_str().unwrap_or_default();
                // Chromium's own error page names the network error deep in its source.
                match source.find("ERR_") {
                    Some(at) => source[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                        .collect(),
                    None => source.chars().take(600).collect(),
                }
            }
            Err(err) => format!("(its source could not be read: {err})"),
        }
    }

    /// Types `text` into `element`.
    pub async fn type_into(&self, element: &Element, text: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await
        .map(|_| ())
    }

    /// Clicks `element`.
    pub async fn click(&self, element: &Element) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    /// The visible text of `element`.
    pub async fn text(&self, element: &Element) -> anyhow::Result<String> {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.0),
                None,
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The names of the cookies the page can see through WebDriver (all of them, also
    /// `HttpOnly`), with their attributes.
    pub async fn cookies(&self) -> anyhow::Result<Vec<Value>> {
        let value = self.call(reqwest::Method::GET, "/cookie", None).await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// Saves a PNG screenshot of the page to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let value = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let png =
            base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default())?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}

impl Chromium {
    /// Ends the browser session (the browser exits), then the driver.
    pub async fn close(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Best effort: ending the driver ends the browser it started.
        let _ = self.driver.start_kill();
    }
}
