//! The gRPC surface: Append (every Tessera service) and Query (admins).

use std::sync::Arc;
use tessera_service::ServiceError as _;

use tessera_mtls::AccessPolicy;
use tessera_proto::audit::v1 as pb;
use tessera_proto::audit::v1::audit_server::Audit;
use tonic::{Request, Response, Status};

use crate::event::{IpMode, StoredEvent, MAX_BATCH};
use crate::log::AuditLog;
use crate::metrics::AuditMetrics;
use crate::query::{query, Filter};
use crate::AuditError;

/// The Audit service.
#[derive(Debug)]
pub struct AuditService {
    log: AuditLog,
    access: AccessPolicy,
    ip_mode: IpMode,
    ip_key: [u8; 32],
    metrics: Arc<AuditMetrics>,
}

impl AuditService {
    /// A service over `log`.
    pub fn new(
        log: AuditLog,
        access: AccessPolicy,
        ip_mode: IpMode,
        ip_key: [u8; 32],
        metrics: Arc<AuditMetrics>,
    ) -> Self {
        AuditService {
            log,
            access,
            ip_mode,
            ip_key,
            metrics,
        }
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let caller = self.access.authorize("Append", &request)?;
        let mut events = request.into_inner().events;
        // Who wrote an event is the caller's certificate, never what the event says.
        for event in &mut events {
            event.service = caller.name().to_owned();
        }
        if events.is_empty() || events.len() > MAX_BATCH {
            self.metrics.refused.inc();
            return Err(AuditError::InvalidBatch(format!(
                "a batch holds 1 to {MAX_BATCH} events, not {}; split it",
                events.len()
            ))
            .to_status());
        }
        // Each event's append shows in the trace of the request that wrote it.
        let appends: Vec<tracing::Span> = events
            .iter()
            .filter(|event| event.trace_id.len() == 32 && event.span_id.len() == 16)
            .map(|event| {
                let span = tessera_telemetry::trace_context::span_under(
                    "audit.append",
                    &event.trace_id,
                    &event.span_id,
                );
                span.record("event.kind", event.kind.as_str());
                span
            })
            .collect();
        // One bad event is refused alone: it never costs the other events of its batch,
        // which may be other people's.
        let mut valid = Vec::with_capacity(events.len());
        let mut refusals = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            match StoredEvent::from_proto(index, event, self.ip_mode, &self.ip_key) {
                Ok(event) => valid.push(event),
                Err(refusal) => refusals.push(refusal.to_string()),
            }
        }
        self.metrics.events_refused.inc_by(refusals.len() as u64);
        let (stored, duplicates, last_seq) = if valid.is_empty() {
            (0, 0, self.log.last_seq())
        } else {
            self.log.append(valid).await.map_err(|e| e.to_status())?
        };
        self.metrics.stored.inc_by(stored);
        drop(appends);
        Ok(Response::new(pb::AppendResponse {
            stored,
            duplicates,
            last_seq,
            refused: refusals.len() as u64,
            refusals,
        }))
    }

    async fn query(
        &self,
        request: Request<pb::QueryRequest>,
    ) -> Result<Response<pb::QueryResponse>, Status> {
        self.access.authorize("Query", &request)?;
        let request = request.into_inner();
        let filter = Filter {
            from_unix_ms: request.from_unix_ms,
            to_unix_ms: request.to_unix_ms,
            kind: request.kind,
            user: request.user,
            site: request.site,
            after_seq: request.after_seq,
            limit: request.limit,
        };
        let (records, next) = query(&self.log, &filter);
        Ok(Response::new(pb::QueryResponse {
            records: records
                .into_iter()
                .map(|r| pb::Record {
                    seq: r.seq,
                    event: Some(r.event.to_proto()),
                    hash: r.hash,
                })
                .collect(),
            next_after_seq: next,
        }))
    }
}
