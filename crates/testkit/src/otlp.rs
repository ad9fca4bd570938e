use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

/// A span as an OTLP collector received it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The `service.name` resource attribute.
    pub service: String,
    /// The span name.
    pub name: String,
    /// The trace id, lowercase hex.
    pub trace_id: String,
}

/// A minimal OTLP/gRPC trace collector on loopback, for checking what services export.
#[derive(Debug)]
pub struct OtlpCollector {
    /// Where it listens (plain HTTP/2, as OTLP's default).
    pub addr: SocketAddr,
    /// Every span received, in arrival order.
    pub spans: mpsc::UnboundedReceiver<ReceivedSpan>,
    _server: tokio::task::JoinHandle<()>,
}

struct Collector(mpsc::UnboundedSender<ReceivedSpan>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let trace_id = span.trace_id.iter().map(|b| format!("{b:02x}")).collect();
                    let _ = self.0.send(ReceivedSpan {
                        service: service.clone(),
                        name: span.name,
                        trace_id,
                    });
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

impl OtlpCollector {
    /// Starts the collector on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (sender, spans) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Collector(sender)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
        Ok(OtlpCollector {
            addr,
            spans,
            _server: server,
        })
    }

    /// The endpoint URL for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}
