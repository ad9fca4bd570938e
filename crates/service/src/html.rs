//! The one HTML page shell every Tessera page is served in, and the one escaping function:
//! pages differ in their look, never in the headers that keep them safe.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One page: its title (text), its own inline style, extra `<head>` markup, its body
/// markup, and at most one inline script (allowed by its hash, nothing else).
#[derive(Debug, Clone, Default)]
pub struct Page<'a> {
    /// The document title, as text (escaped here).
    pub title: &'a str,
    /// The page's inline CSS.
    pub style: &'a str,
    /// Extra `<head>` markup (e.g. a refresh), already safe.
    pub head: &'a str,
    /// The `<body>` content, already escaped where it holds text.
    pub body: &'a str,
    /// The one script the page may run, appended to the body.
    pub script: Option<&'static str>,
    /// The `Referrer-Policy`; `same-origin` when empty. (Not `no-referrer`: under it
    /// browsers send `Origin: null` even on a page's own form posts.)
    pub referrer_policy: &'static str,
}

impl Page<'_> {
    /// The response: the page with every security header: a content security policy
    /// allowing nothing but its inline style (and its script by hash), no framing, no
    /// MIME sniffing, no caching.
    pub fn respond(&self, status: StatusCode) -> Response {
        use base64::Engine as _;
        use sha2::Digest as _;
        let (script_tag, script_src) = match self.script {
            Some(script) => (
                format!("<script>{script}</script>"),
                format!(
                    "; script-src 'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script))
                ),
            ),
            None => (String::new(), String::new()),
        };
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">{head}\
<title>{title}</title><style>{style}</style></head><body>{body}{script_tag}</body></html>",
            head = self.head,
            title = escape(self.title),
            style = self.style,
            body = self.body,
        );
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        no_store(headers);
        let policy = format!(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'{script_src}"
        );
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let referrer = if self.referrer_policy.is_empty() {
            "same-origin"
        } else {
            self.referrer_policy
        };
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
        response
    }
}

/// Marks a response as never to be cached (it carries tokens or per-person state).
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn every_page_carries_the_security_headers_and_its_script_only_by_hash() {
        let response = Page {
            title: "<Sign in>",
            body: "<p>hi</p>",
            script: Some("document.forms[0].submit()"),
            ..Page::default()
        }
        .respond(StatusCode::OK);
        let header = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let csp = header(header::CONTENT_SECURITY_POLICY);
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert_eq!(header(header::X_FRAME_OPTIONS), "DENY");
        assert_eq!(header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(header::CACHE_CONTROL), "no-store");
        assert_eq!(header(header::REFERRER_POLICY), "same-origin");
    }
}
