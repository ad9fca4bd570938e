use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

/// One HTTP answer as a browser saw it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The URL requested.
    pub url: String,
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The `Location` header, resolved against the request URL.
    pub fn location(&self) -> Option<String> {
        let location = self.headers.get(LOCATION)?.to_str().ok()?;
        let base = reqwest::Url::parse(&self.url).ok()?;
        base.join(location).ok().map(|u| u.to_string())
    }

    /// Every `Set-Cookie` header, as sent.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// A query parameter of the `Location`.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let location = reqwest::Url::parse(&self.location()?).ok()?;
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The value of the hidden form field `name` in the body.
    pub fn form_field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(
            self.body[start..end]
                .replace("&quot;", "\"")
                .replace("&amp;", "&"),
        )
    }
}

/// A scripted browser for in-process flow tests: follows nothing by itself, keeps the
/// cookies it is given (all hosts share one jar: tests run on one loopback host, and
/// cookies ignore ports, as in a real browser).
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
    /// Public origins reached at other addresses: (origin, base URL sent to instead).
    routes: Vec<(String, String)>,
}

impl Browser {
    /// An empty browser.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            jar: BTreeMap::new(),
            routes: Vec::new(),
        })
    }

    /// A browser that reaches each public `origin` of `routes` at its base URL instead,
    /// as a name resolver and a TLS front would take it there: the pages, the `Origin`
    /// header and the cookies stay those of the public origin (e.g. a login service at
    /// `https://login.example.test` reached at `http://127.0.0.1:32768`).
    pub fn routed(routes: &[(String, String)]) -> anyhow::Result<Self> {
        let mut browser = Browser::new()?;
        browser.set_routes(routes);
        Ok(browser)
    }

    /// Replaces the routes (e.g. the person's name resolver now answers with another
    /// datacenter); the cookies stay.
    pub fn set_routes(&mut self, routes: &[(String, String)]) {
        self.routes = routes
            .iter()
            .map(|(origin, base)| {
                (
                    origin.trim_end_matches('/').to_owned(),
                    base.trim_end_matches('/').to_owned(),
                )
            })
            .collect();
    }

    /// The `Cookie` header this browser sends (every cookie it holds).
    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Where a request for `url` is sent.
    fn wire_url(&self, url: &str) -> String {
        for (origin, base) in &self.routes {
            if let Some(rest) = url.strip_prefix(origin.as_str()) {
                if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
                    return format!("{base}{rest}");
                }
            }
        }
        url.to_owned()
    }

    /// The cookie `name`, if held.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    /// Sets a cookie by hand (e.g. to replay an old one).
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.insert(name.to_owned(), value.to_owned());
    }

    fn absorb(&mut self, answer: &Answer) {
        for cookie in answer.set_cookies() {
            let Some((pair, attributes)) = cookie.split_once(';').or(Some((cookie.as_str(), "")))
            else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if attributes.to_ascii_lowercase().contains("max-age=0") {
                self.jar.remove(name.trim());
            } else {
                self.jar
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }

    async fn finish(&mut self, url: &str, response: reqwest::Response) -> anyhow::Result<Answer> {
        let answer = Answer {
            url: url.to_owned(),
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await?,
        };
        self.absorb(&answer);
        Ok(answer)
    }

    /// `GET url` with the cookies held.
    pub async fn get(&mut self, url: &str) -> anyhow::Result<Answer> {
        let response = self
            .http
            .get(self.wire_url(url))
            .header("cookie", self.cookie_header())
            .send()
            .await?;
        self.finish(url, response).await
    }

    /// `POST url` with a form and the cookies held, as a form on a page of `url`'s own
    /// origin sends it.
    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let origin = origin_of(url)?;
        self.post_from(&origin, url, form).await
    }

    /// `POST url` with a form, as a page of `origin` sends it: with the `Origin` and
    /// `Sec-Fetch-Site` a browser sets, and, like a browser, without the `SameSite`
    /// cookies when the post is cross-site (the jar ignores ports, as browsers do for
    /// cookies, so loopback hosts on different ports are same-site).
    pub async fn post_from(
        &mut self,
        origin: &str,
        url: &str,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let target = origin_of(url)?;
        let fetch_site = if target == origin {
            "same-origin"
        } else if host_of(&target) == host_of(origin) {
            "same-site"
        } else {
            "cross-site"
        };
        let mut request = self
            .http
            .post(self.wire_url(url))
            .header("origin", origin)
            .header("sec-fetch-site", fetch_site)
            .form(form);
        if fetch_site != "cross-site" {
            request = request.header("cookie", self.cookie_header());
        }
        let response = request.send().await?;
        self.finish(url, response).await
    }

    /// `GET url`, then follows its redirects.
    pub async fn visit(&mut self, url: &str) -> anyhow::Result<Answer> {
        let first = self.get(url).await?;
        self.follow(first).await
    }

    /// Follows redirects from `answer` (at most 10); the last answer.
    pub async fn follow(&mut self, mut answer: Answer) -> anyhow::Result<Answer> {
        for _ in 0..10 {
            if !(300..400).contains(&answer.status) {
                return Ok(answer);
            }
            let next = answer
                .location()
                .ok_or_else(|| anyhow::anyhow!("redirect without Location from {}", answer.url))?;
            answer = self.get(&next).await?;
        }
        anyhow::bail!("more than 10 redirects")
    }
}

fn origin_of(url: &str) -> anyhow::Result<String> {
    Ok(reqwest::Url::parse(url)?.origin().ascii_serialization())
}

fn host_of(origin: &str) -> Option<String> {
    reqwest::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}
