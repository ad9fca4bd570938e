//! Events as the log stores them: validated at the edge, the client IP reduced as
//! configured, and a canonical JSON form that the hash chain covers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_proto::audit::v1 as pb;

use crate::AuditError;

/// Every kind of event the log accepts.
pub const KINDS: &[&str] = &[
    "login_succeeded",
    "login_failed",
    "code_issued",
    "code_redeemed",
    "code_rejected",
    "session_issued",
    "session_refreshed",
    "session_revoked",
    "refresh_token_reuse",
    "jwt_rejected",
    "stash_write_failed",
    "rate_limited",
    "logout",
];

/// The most events in one batch.
pub const MAX_BATCH: usize = 1000;
/// The largest event, as canonical JSON.
pub const MAX_EVENT_BYTES: usize = 4096;

/// An event as stored. Field order is the canonical order the hash covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub time_unix_ms: i64,
    pub service: String,
    pub datacenter: String,
    pub kind: String,
    pub outcome: String,
    pub reason: String,
    pub user_id: String,
    pub user_name: String,
    pub site: String,
    pub client_ip: String,
    pub user_agent_class: String,
    pub trace_id: String,
    pub details: BTreeMap<String, String>,
    pub writer: String,
    pub writer_seq: u64,
    pub sample_rate: f64,
}

/// How client IPs are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IpMode {
    /// IPv4 to its /24, IPv6 to its /48.
    #[default]
    Truncate,
    /// A keyed hash (HMAC-SHA256 under the service's key), 16 hex characters.
    Hash,
}

/// Reduces `ip` as configured; anything that is not an IP address becomes `invalid`.
pub fn reduce_ip(ip: &str, mode: IpMode, key: &[u8; 32]) -> String {
    if ip.is_empty() {
        return String::new();
    }
    let Ok(parsed) = ip.parse::<IpAddr>() else {
        return "invalid".into();
    };
    match mode {
        IpMode::Truncate => match parsed {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
        IpMode::Hash => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(parsed.to_string().as_bytes());
            let digest = mac.finalize().into_bytes();
            tessera_config::secret::encode_hex(&digest[..8])
        }
    }
}

fn bounded(index: usize, field: &'static str, value: &str, max: usize) -> Result<(), AuditError> {
    if value.len() > max {
        return Err(AuditError::invalid_event(
            index,
            format!("{field} is {} bytes; at most {max}", value.len()),
        ));
    }
    Ok(())
}

impl StoredEvent {
    /// Validates event `index` of a batch and converts it.
    pub fn from_proto(
        index: usize,
        event: pb::Event,
        ip_mode: IpMode,
        ip_key: &[u8; 32],
    ) -> Result<Self, AuditError> {
        if !KINDS.contains(&event.kind.as_str()) {
            return Err(AuditError::invalid_event(
                index,
                format!(
                    "kind {:?} is unknown; known kinds: {}",
                    event.kind.chars().take(64).collect::<String>(),
                    KINDS.join(", ")
                ),
            ));
        }
        if event.time_unix_ms <= 0 {
            return Err(AuditError::invalid_event(index, "time_unix_ms is missing"));
        }
        if event.writer.is_empty() || event.writer_seq == 0 {
            return Err(AuditError::invalid_event(
                index,
                "writer and writer_seq (from 1) are required, so retries are not stored twice",
            ));
        }
        if !matches!(event.outcome.as_str(), "" | "success" | "failure") {
            return Err(AuditError::invalid_event(
                index,
                "outcome must be success or failure",
            ));
        }
        if !matches!(
            event.user_agent_class.as_str(),
            "" | "browser" | "bot" | "app" | "unknown"
        ) {
            return Err(AuditError::invalid_event(
                index,
                "user_agent_class must be browser, bot, app or unknown",
            ));
        }
        if !(event.sample_rate == 0.0 || (event.sample_rate > 0.0 && event.sample_rate <= 1.0)) {
            return Err(AuditError::invalid_event(
                index,
                "sample_rate must be in (0, 1]",
            ));
        }
        for (field, value) in [
            ("service", &event.service),
            ("datacenter", &event.datacenter),
            ("reason", &event.reason),
            ("user_id", &event.user_id),
            ("user_name", &event.user_name),
            ("site", &event.site),
            ("client_ip", &event.client_ip),
            ("trace_id", &event.trace_id),
            ("writer", &event.writer),
        ] {
            bounded(index, field, value, 256)?;
        }
        if event.details.len() > 32 {
            return Err(AuditError::invalid_event(
                index,
                "details has more than 32 entries",
            ));
        }
        let stored = StoredEvent {
            time_unix_ms: event.time_unix_ms,
            service: event.service,
            datacenter: event.datacenter,
            kind: event.kind,
            outcome: event.outcome,
            reason: event.reason,
            user_id: event.user_id,
            user_name: event.user_name,
            site: event.site,
            client_ip: reduce_ip(&event.client_ip, ip_mode, ip_key),
            user_agent_class: event.user_agent_class,
            trace_id: event.trace_id,
            details: event.details.into_iter().collect(),
            writer: event.writer,
            writer_seq: event.writer_seq,
            sample_rate: if event.sample_rate == 0.0 {
                1.0
            } else {
                event.sample_rate
            },
        };
        let size = stored.canonical().len();
        if size > MAX_EVENT_BYTES {
            return Err(AuditError::invalid_event(
                index,
                format!("the event is {size} bytes; at most {MAX_EVENT_BYTES}"),
            ));
        }
        Ok(stored)
    }

    /// The canonical JSON the hash chain covers.
    pub fn canonical(&self) -> String {
        // A plain struct of strings, numbers and a map cannot fail to serialise.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Back to the wire form.
    pub fn to_proto(&self) -> pb::Event {
        pb::Event {
            time_unix_ms: self.time_unix_ms,
            service: self.service.clone(),
            datacenter: self.datacenter.clone(),
            kind: self.kind.clone(),
            outcome: self.outcome.clone(),
            reason: self.reason.clone(),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            site: self.site.clone(),
            client_ip: self.client_ip.clone(),
            user_agent_class: self.user_agent_class.clone(),
            trace_id: self.trace_id.clone(),
            details: self.details.clone().into_iter().collect(),
            writer: self.writer.clone(),
            writer_seq: self.writer_seq,
            sample_rate: self.sample_rate,
            // Not kept: it only placed the append in the writer's trace.
            span_id: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ips_are_truncated_or_keyed_hashed_and_never_kept_whole() {
        let key = [7u8; 32];
        assert_eq!(
            reduce_ip("203.0.113.77", IpMode::Truncate, &key),
            "203.0.113.0/24"
        );
        assert_eq!(
            reduce_ip("2001:db8:1:2::5", IpMode::Truncate, &key),
            "2001:db8:1::/48"
        );
        let hashed = reduce_ip("203.0.113.77", IpMode::Hash, &key);
        assert_eq!(hashed.len(), 16);
        assert!(!hashed.contains("203"));
        assert_eq!(
            hashed,
            reduce_ip("203.0.113.77", IpMode::Hash, &key),
            "stable per key"
        );
        assert_ne!(
            hashed,
            reduce_ip("203.0.113.77", IpMode::Hash, &[8u8; 32]),
            "keyed"
        );
        assert_eq!(reduce_ip("not an ip", IpMode::Truncate, &key), "invalid");
        assert_eq!(reduce_ip("", IpMode::Hash, &key), "");
    }
}
