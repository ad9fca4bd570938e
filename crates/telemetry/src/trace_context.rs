//! W3C trace context across gRPC hops: read from incoming request headers, written into
//! outgoing request metadata, so one login is one trace across services.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = tonic::metadata::MetadataKey::from_bytes(key.as_bytes());
        let value = tonic::metadata::MetadataValue::try_from(value.as_str());
        if let (Ok(key), Ok(value)) = (key, value) {
            self.0.insert(key, value);
        }
    }
}

/// The span for one incoming gRPC request, child of the caller's span when the request
/// carries a `traceparent` header. Pass it to tonic's `Server::builder().trace_fn`.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        rpc.path = %request.uri().path(),
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

/// The span for one incoming HTTP request (the login service's public surface), child of
/// the caller's span when the request carries a `traceparent` header.
pub fn http_server_span(
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> tracing::Span {
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        http.method = %method,
        http.path = %path,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(parent);
    span
}

/// The current span's trace id (32 hex characters), or empty outside a trace.
pub fn current_trace_id() -> String {
    use opentelemetry::trace::TraceContextExt as _;
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span_context.trace_id().to_string()
    } else {
        String::new()
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

/// A tonic client interceptor that forwards the current trace context.
#[allow(clippy::result_large_err)] // the signature tonic's interceptors have
pub fn propagate(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    inject_current(request.metadata_mut());
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn with_otel_subscriber(test: impl FnOnce()) {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, test);
    }

    #[test]
    fn incoming_traceparent_becomes_the_parent_of_the_request_span() {
        with_otel_subscriber(|| {
            let request = http::Request::builder()
                .uri("/tessera.stash.v1.TokenStash/Take")
                .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
                .body(())
                .expect("request");
            let span = grpc_server_span(&request);
            let trace_id = span.context().span().span_context().trace_id().to_string();
            assert_eq!(trace_id, TRACE_ID);
        });
    }

    #[test]
    fn outgoing_metadata_carries_the_current_trace() {
        with_otel_subscriber(|| {
            let request = http::Request::builder()
                .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
                .body(())
                .expect("request");
            let span = grpc_server_span(&request);
            let _entered = span.enter();
            let forwarded = propagate(tonic::Request::new(())).expect("interceptor");
            let traceparent = forwarded
                .metadata()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert!(traceparent.contains(TRACE_ID), "{traceparent:?}");
        });
    }
}
