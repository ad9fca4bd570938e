//! The audit admin HTTP surface: a JSON query API and an HTML dashboard (per-minute
//! rates per kind as SVG charts, the latest events, filters), both behind the admin
//! credential. No external assets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tessera_clock::SharedClock;
use tessera_service::html::{escape, Page};

use crate::event::KINDS;
use crate::log::AuditLog;
use crate::query::{query, Filter};

/// What the admin routes share.
#[derive(Debug)]
pub struct Dashboard {
    /// The log.
    pub log: AuditLog,
    /// The admin token.
    pub admin_token: String,
    /// Time.
    pub clock: SharedClock,
    /// A trace viewer's UI, where events with a trace id link to their trace.
    pub trace_viewer_url: Option<String>,
}

const COOKIE: &str = "__Host-tessera-audit";

/// The routes, to merge into the admin port.
pub fn routes(dashboard: Arc<Dashboard>) -> Router {
    Router::new()
        .route("/api/events", get(api_events))
        .route("/dashboard", get(page))
        .route("/dashboard/login", post(sign_in))
        .with_state(dashboard)
}

/// The dashboard cookie's value: derived from the token, never the token itself.
fn cookie_value(token: &str) -> String {
    tessera_config::secret::encode_hex(&Sha256::digest(
        format!("tessera-audit-dashboard|{token}").as_bytes(),
    ))
}

fn equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the request carries the admin credential: `Authorization: Bearer <token>`,
/// Basic with the token as password, or the dashboard cookie.
fn authorized(dashboard: &Dashboard, headers: &HeaderMap) -> bool {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return equal(token.trim(), &dashboard.admin_token);
    }
    if let Some(basic) = auth.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        return decoded
            .split_once(':')
            .is_some_and(|(_, p)| equal(p, &dashboard.admin_token));
    }
    let expected = cookie_value(&dashboard.admin_token);
    tessera_verify::cookie::session_token(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        "audit",
    )
    .is_some_and(|value| equal(value, &expected))
}

async fn api_events(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    if !authorized(&dashboard, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"tessera-audit\"")],
            Json(serde_json::json!({"error": "unauthorized", "error_description": "send the audit admin token as Authorization: Bearer <token> (it is in the audit secrets folder, admin.token)"})),
        )
            .into_response();
    }
    let (records, next) = query(&dashboard.log, &filter);
    Json(serde_json::json!({ "records": records, "next_after_seq": next })).into_response()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

async fn sign_in(State(dashboard): State<Arc<Dashboard>>, Form(form): Form<TokenForm>) -> Response {
    if !equal(form.token.trim(), &dashboard.admin_token) {
        return html(
            StatusCode::UNAUTHORIZED,
            &login_form(Some(
                "That token is not right. It is in the audit secrets folder (admin.token).",
            )),
            None,
        );
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/dashboard"));
    let cookie = format!(
        "{COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=43200",
        cookie_value(&dashboard.admin_token)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1d21}h1{font-size:1.3rem}\
.charts{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0;border:1px solid #ccd;padding:.5rem;border-radius:6px}\
figcaption{font-weight:600}table{border-collapse:collapse;width:100%;margin-top:1rem}\
td,th{border-bottom:1px solid #dde;padding:.3rem .5rem;text-align:left;font-size:.9rem}\
.failure{color:#b00020}label{margin-right:.5rem}input,select,button{font-size:.95rem}";

fn html(status: StatusCode, body: &str, refresh: Option<u32>) -> Response {
    let refresh = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    Page {
        title: "Tessera audit",
        style: STYLE,
        head: &refresh,
        body,
        ..Page::default()
    }
    .respond(status)
}

fn login_form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p role=\"alert\" class=\"failure\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!("<h1>Tessera audit</h1>{error}<form method=\"post\" action=\"/dashboard/login\">\
<label for=\"token\">Admin token</label><input id=\"token\" name=\"token\" type=\"password\" autofocus required>\
<button type=\"submit\">Open the dashboard</button></form>")
}

/// Per-minute counts for the last `minutes` minutes ending at `now_ms`, per kind.
fn rates(
    records: &[crate::log::Record],
    now_ms: i64,
    minutes: i64,
    filter: &Filter,
) -> BTreeMap<String, Vec<u64>> {
    let start = now_ms - minutes * 60_000;
    let mut rates: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for record in records.iter().rev() {
        let e = &record.event;
        if e.time_unix_ms < start {
            break;
        }
        if (!filter.user.is_empty() && e.user_id != filter.user && e.user_name != filter.user)
            || (!filter.site.is_empty() && e.site != filter.site)
            || (!filter.kind.is_empty() && e.kind != filter.kind)
        {
            continue;
        }
        let bucket = ((e.time_unix_ms - start) / 60_000).clamp(0, minutes - 1) as usize;
        rates
            .entry(e.kind.clone())
            .or_insert_with(|| vec![0; minutes as usize])[bucket] += 1;
    }
    rates
}

fn chart(kind: &str, counts: &[u64]) -> String {
    let (width, height) = (300.0, 80.0);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = width / (counts.len().max(2) - 1) as f64;
    let points: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                height - (*c as f64 / max) * (height - 4.0)
            )
        })
        .collect();
    let total: u64 = counts.iter().sum();
    format!(
        "<figure><figcaption>{kind} · {total} in the last hour · peak {peak}/min</figcaption>\
<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{kind} per minute\">\
<polyline fill=\"none\" stroke=\"#1a5fb4\" stroke-width=\"2\" points=\"{points}\"/></svg></figure>",
        kind = escape(kind),
        peak = max as u64,
        points = points.join(" ")
    )
}

async fn page(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    if !authorized(&dashboard, &headers) {
        return html(StatusCode::UNAUTHORIZED, &login_form(None), None);
    }
    let now = dashboard.clock.now().as_i64();
    let charts = dashboard
        .log
        .read(|records| rates(records, now, 60, &filter));
    let latest: Vec<crate::log::Record> = dashboard.log.read(|records| {
        records
            .iter()
            .rev()
            .filter(|r| {
                (filter.kind.is_empty() || r.event.kind == filter.kind)
                    && (filter.user.is_empty()
                        || r.event.user_id == filter.user
                        || r.event.user_name == filter.user)
                    && (filter.site.is_empty() || r.event.site == filter.site)
            })
            .take(50)
            .cloned()
            .collect()
    });
    let options: String = std::iter::once("")
        .chain(KINDS.iter().copied())
        .map(|k| {
            format!(
                "<option value=\"{k}\"{}>{}</option>",
                if k == filter.kind { " selected" } else { "" },
                if k.is_empty() { "all kinds" } else { k }
            )
        })
        .collect();
    let charts_html: String = if charts.is_empty() {
        "<p>No events in the last hour.</p>".into()
    } else {
        charts
            .iter()
            .map(|(kind, counts)| chart(kind, counts))
            .collect()
    };
    let rows: String = latest
        .iter()
        .map(|r| {
            let e = &r.event;
            let when = utc(e.time_unix_ms);
            let trace = trace_link(dashboard.trace_viewer_url.as_deref(), &e.trace_id);
            format!(
                "<tr><td>{}</td><td><time datetime=\"{when}\">{when}</time></td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{trace}</td></tr>",
                r.seq,
                escape(&e.kind),
                escape(&e.outcome),
                escape(&e.outcome),
                escape(&e.reason),
                escape(if e.user_name.is_empty() { &e.user_id } else { &e.user_name }),
                escape(&e.site),
                escape(&e.service),
                escape(&e.client_ip),
            )
        })
        .collect();
    let body = format!(
        "<h1>Tessera audit</h1>\
<form method=\"get\" action=\"/dashboard\"><label for=\"kind\">Kind</label><select id=\"kind\" name=\"kind\">{options}</select> \
<label for=\"user\">User</label><input id=\"user\" name=\"user\" value=\"{user}\"> \
<label for=\"site\">Site</label><input id=\"site\" name=\"site\" value=\"{site}\"> <button type=\"submit\">Filter</button></form>\
<h2>Per minute, last hour</h2><div class=\"charts\">{charts_html}</div>\
<h2>Latest events</h2><table id=\"latest\"><thead><tr><th>#</th><th>time (UTC)</th><th>kind</th><th>outcome</th><th>reason</th><th>user</th><th>site</th><th>service</th><th>client IP</th><th>trace</th></tr></thead><tbody>{rows}</tbody></table>",
        user = escape(&filter.user),
        site = escape(&filter.site),
    );
    html(StatusCode::OK, &body, Some(10))
}

/// `unix_ms` as a UTC date and time a person reads at a glance, e.g. `2026-11-24 09:05:03`.
fn utc(unix_ms: i64) -> String {
    let seconds = unix_ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// A link to the event's trace in the viewer, when there is a viewer and the event has a
/// well-formed trace id (the writer's text is never put in a link unchecked).
fn trace_link(viewer: Option<&str>, trace_id: &str) -> String {
    let well_formed = trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
    match viewer {
        Some(viewer) if well_formed => format!(
            "<a href=\"{}/trace/{trace_id}\">{}</a>",
            escape(viewer.trim_end_matches('/')),
            &trace_id[..8]
        ),
        _ if well_formed => trace_id[..8].to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_518_303_000), "2026-11-24 11:05:03");
        assert_eq!(utc(-1000), "1969-12-31 23:59:59");
    }

    #[test]
    fn only_well_formed_trace_ids_become_links() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_link(Some("http://127.0.0.1:7416/"), id),
            format!("<a href=\"http://127.0.0.1:7416/trace/{id}\">4bf92f35</a>")
        );
        assert_eq!(trace_link(None, id), "4bf92f35");
        assert_eq!(trace_link(Some("http://v"), "\"><script>"), "");
        assert_eq!(trace_link(Some("http://v"), ""), "");
    }
}
