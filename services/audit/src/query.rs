//! Filtering the retained records: by time, kind, user and site, with paging.

use serde::Deserialize;

use crate::log::{AuditLog, Record};

/// What a query asks for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Filter {
    pub from_unix_ms: i64,
    pub to_unix_ms: i64,
    pub kind: String,
    pub user: String,
    pub site: String,
    pub after_seq: u64,
    pub limit: u32,
}

impl Filter {
    fn matches(&self, record: &Record) -> bool {
        let e = &record.event;
        record.seq > self.after_seq
            && e.time_unix_ms >= self.from_unix_ms
            && (self.to_unix_ms == 0 || e.time_unix_ms < self.to_unix_ms)
            && (self.kind.is_empty() || e.kind == self.kind)
            && (self.user.is_empty() || e.user_id == self.user || e.user_name == self.user)
            && (self.site.is_empty() || e.site == self.site)
    }
}

/// Matching records, oldest first, at most `limit` (default 100, at most 1000), and the
/// `after_seq` of the next page (0 when there is none).
pub fn query(log: &AuditLog, filter: &Filter) -> (Vec<Record>, u64) {
    let limit = match filter.limit {
        0 => 100,
        n => n.min(1000) as usize,
    };
    log.read(|records| {
        let start = records.partition_point(|r| r.seq <= filter.after_seq);
        let mut found: Vec<Record> = records[start..]
            .iter()
            .filter(|r| filter.matches(r))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map_or(0, |r| r.seq)
        } else {
            0
        };
        (found, next)
    })
}
