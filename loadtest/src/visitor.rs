//! One simulated visitor: a browser-like HTTP client (its own cookie jar, redirects
//! followed, the stack's names resolved where the stack says), and the few pieces of a
//! page a visitor reads (hidden form fields, a form's action).

use std::sync::Arc;
use std::time::Duration;

use goose::metrics::GooseRequestMetric;
use goose::prelude::*;
use reqwest::cookie::Jar;
use reqwest::header::{HeaderMap, HeaderValue};

use crate::plan::Plan;
use crate::tally::{Tally, Timeline};

/// What a visitor carries between transactions.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The datacenter whose login this visitor's resolver reaches.
    pub home: usize,
    /// Which account it signs in as.
    pub account: String,
}

/// A response as the visitor saw it, after redirects.
#[derive(Debug)]
pub struct Page {
    /// The final status.
    pub status: u16,
    /// The final URL.
    pub url: String,
    /// The body.
    pub body: String,
    /// `Set-Cookie` values of the final response.
    pub set_cookies: Vec<String>,
}

impl Page {
    /// Whether the page is a site's signed-in view.
    pub fn signed_in(&self) -> bool {
        self.body.contains("Signed in as")
    }

    /// Whether the page is a site's signed-out view.
    pub fn signed_out(&self) -> bool {
        self.body.contains("You are not signed in")
    }

    /// Whether the page is the login form.
    pub fn is_login_form(&self) -> bool {
        self.body.contains("name=\"flow\"") && self.body.contains("name=\"password\"")
    }
}

/// A client builder for a visitor near datacenter `home` coming from `address`.
pub fn client_builder(
    plan: &Plan,
    home: usize,
    address: &str,
    cookies: bool,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let stack = &plan.stack;
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!("tessera-load/", env!("CARGO_PKG_VERSION")));
    if cookies {
        builder = builder.cookie_provider(Arc::new(Jar::default()));
    }
    if let Some(address) = stack.datacenters[home].login_address {
        builder = builder.resolve(&host_of(&stack.login_origin)?, address);
    }
    for site in &stack.sites {
        if let Some(address) = site.address {
            builder = builder.resolve(&host_of(&site.origin)?, address);
        }
    }
    if let Some(ca) = &plan.ca {
        builder = builder.tls_certs_only([ca.clone()]);
    }
    if stack.forwarded_for {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(address)?);
        builder = builder.default_headers(headers);
    }
    Ok(builder)
}

fn host_of(origin: &str) -> anyhow::Result<String> {
    url::Url::parse(origin)?
        .host_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{origin} names no host"))
}

/// The address visitor `index` comes from: people and scrapers from 10.0.0.0/8, one each.
pub fn address_of(index: usize) -> String {
    format!(
        "10.{}.{}.{}",
        (index >> 16) & 0xff,
        (index >> 8) & 0xff,
        index & 0xff
    )
}

/// Gives `user` a client of its own, and the visitor state its scenario uses.
pub async fn open_browser(user: &mut GooseUser, cookies: bool) -> TransactionResult {
    let plan = Plan::get();
    let index = user.weighted_users_index;
    let home = index % plan.stack.datacenters.len();
    let address = address_of(index);
    let builder = client_builder(plan, home, &address, cookies)
        .map_err(|e| Box::new(TransactionError::Custom(e.to_string())))?;
    user.set_client_builder(builder).await?;
    let account = plan.stack.accounts[index % plan.stack.accounts.len()].clone();
    user.set_session_data(Visitor { home, account });
    Ok(())
}

/// The visitor state [`open_browser`] left.
pub fn visitor(user: &GooseUser) -> Result<Visitor, Box<TransactionError>> {
    user.get_session_data::<Visitor>()
        .cloned()
        .ok_or_else(|| Box::new(TransactionError::Custom("visitor without a browser".into())))
}

/// One request named `name`; counts 5xx and failures to answer, and records its
/// latency on the run's timeline. `expect`: the status that counts as success (else
/// any 2xx).
pub async fn send(
    user: &mut GooseUser,
    name: &str,
    method: GooseMethod,
    url: &str,
    customize: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    expect: Option<u16>,
) -> Result<(Page, GooseRequestMetric), Box<TransactionError>> {
    let builder = customize(user.get_request_builder(&method, url)?);
    let mut request = GooseRequest::builder()
        .method(method)
        .path(url)
        .name(name)
        .set_request_builder(builder);
    if let Some(status) = expect {
        request = request.expect_status_code(status);
    }
    let goose = user.request(request.build()).await?;
    Timeline::get().record(goose.request.response_time);
    let mut metric = goose.request;
    match goose.response {
        Ok(response) => {
            let status = response.status().as_u16();
            if status >= 500 {
                Tally::bump(&Tally::get().server_errors);
            }
            let page_url = response.url().to_string();
            let set_cookies = response
                .headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            let body = match response.text().await {
                Ok(body) => body,
                Err(e) => {
                    Tally::bump(&Tally::get().transport_errors);
                    return Err(fail(user, &mut metric, &format!("body unread: {e}")));
                }
            };
            Ok((
                Page {
                    status,
                    url: page_url,
                    body,
                    set_cookies,
                },
                metric,
            ))
        }
        Err(e) => {
            Tally::bump(&Tally::get().transport_errors);
            Err(fail(user, &mut metric, &format!("no answer: {e}")))
        }
    }
}

/// Marks `metric` failed with `why`; the error that ends the transaction.
pub fn fail(
    user: &mut GooseUser,
    metric: &mut GooseRequestMetric,
    why: &str,
) -> Box<TransactionError> {
    match user.set_failure(why, metric, None, None) {
        Err(e) => e,
        Ok(()) => Box::new(TransactionError::Custom(why.to_owned())),
    }
}

/// The value of the hidden field `name` in `html`, unescaped.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// Every hidden field in `html`, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    const INPUT: &str = "<input type=\"hidden\" name=\"";
    const VALUE: &str = "\" value=\"";
    let mut fields = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(INPUT) {
        rest = &rest[at + INPUT.len()..];
        let Some(name_end) = rest.find(VALUE) else {
            break;
        };
        let name = &rest[..name_end];
        let value_start = name_end + VALUE.len();
        let Some(value_len) = rest[value_start..].find('"') else {
            break;
        };
        fields.push((
            unescape(name),
            unescape(&rest[value_start..value_start + value_len]),
        ));
        rest = &rest[value_start + value_len..];
    }
    fields
}

/// The `action` of the first form in `html`, unescaped.
pub fn form_action(html: &str) -> Option<String> {
    let start =
        html.find("<form method=\"post\" action=\"")? + "<form method=\"post\" action=\"".len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value a `Set-Cookie` line sets, if its cookie's name contains `part`.
pub fn cookie_value<'c>(set_cookie: &'c str, part: &str) -> Option<&'c str> {
    let (pair, _) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
    let (name, value) = pair.split_once('=')?;
    (name.contains(part) && value != "deleted").then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_fields_and_the_action_are_read_back_unescaped() {
        let html = "<form method=\"post\" action=\"https://login.example/logout?a=1&amp;b=2\">\
<input type=\"hidden\" name=\"client_id\" value=\"wiki-a\">\
<input type=\"hidden\" name=\"post_logout_redirect_uri\" value=\"http://localhost:7501/\">\
<input type=\"hidden\" name=\"id_token_hint\" value=\"a.b&#39;c\"></form>";
        assert_eq!(
            form_action(html).as_deref(),
            Some("https://login.example/logout?a=1&b=2")
        );
        assert_eq!(
            hidden_fields(html),
            vec![
                ("client_id".to_owned(), "wiki-a".to_owned()),
                (
                    "post_logout_redirect_uri".to_owned(),
                    "http://localhost:7501/".to_owned()
                ),
                ("id_token_hint".to_owned(), "a.b'c".to_owned()),
            ]
        );
        assert_eq!(hidden_field(html, "client_id").as_deref(), Some("wiki-a"));
        assert_eq!(hidden_field(html, "flow"), None);
    }

    #[test]
    fn a_cookie_value_is_read_by_a_part_of_its_name_and_a_deletion_is_not_one() {
        assert_eq!(
            cookie_value("__Host-wiki-a-refresh=abc; Path=/; Secure", "refresh"),
            Some("abc")
        );
        assert_eq!(
            cookie_value("__Host-wiki-a-refresh=deleted; Max-Age=0", "refresh"),
            None
        );
        assert_eq!(cookie_value("__Host-wiki-a=xyz; Path=/", "refresh"), None);
    }

    #[test]
    fn visitors_come_from_addresses_of_their_own() {
        assert_eq!(address_of(0), "10.0.0.0");
        assert_eq!(address_of(258), "10.0.1.2");
        assert_ne!(address_of(1), address_of(2));
    }
}
