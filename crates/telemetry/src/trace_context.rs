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
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

/// The span for one incoming HTTP request, child of the caller's span: the one its
/// `traceparent` header names, else a `traceparent` query parameter (a browser hop that a
/// redirect or form carried on, which sends no headers of ours), else `fallback` (a value
/// the service kept itself, e.g. in a cookie of its own).
pub fn http_server_span(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    fallback: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        http.method = %method,
        http.path = %uri.path(),
        http.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let carried = if headers.contains_key(TRACEPARENT) {
        None
    } else {
        traceparent_query(uri).or_else(|| fallback.map(str::to_owned))
    };
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| match carried.as_deref() {
            Some(value) => {
                let mut carrier = http::HeaderMap::new();
                if let Ok(value) = http::HeaderValue::try_from(value) {
                    carrier.insert(TRACEPARENT, value);
                }
                propagator.extract(&HeaderExtractor(&carrier))
            }
            None => propagator.extract(&HeaderExtractor(headers)),
        });
    let _ = span.set_parent(parent);
    span
}

const TRACEPARENT: &str = "traceparent";

/// The `traceparent` query parameter, when it has the shape of one (55 characters of
/// hex and dashes); anything else is ignored.
fn traceparent_query(uri: &http::Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == TRACEPARENT)
        .map(|(_, value)| value)
        .filter(|value| {
            value.len() == 55 && value.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        })
        .map(str::to_owned)
}

/// The current span's `traceparent`, for a link or form that carries the trace through a
/// browser (see [`http_server_span`]); `None` outside a trace.
pub fn current_traceparent() -> Option<String> {
    current_http_headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let key = http::HeaderName::from_bytes(key.as_bytes());
        let value = http::HeaderValue::try_from(value);
        if let (Ok(key), Ok(value)) = (key, value) {
            self.0.insert(key, value);
        }
    }
}

/// The current span's trace context as HTTP headers (`traceparent`), for a back end's
/// outgoing HTTP calls; empty outside a trace.
pub fn current_http_headers() -> http::HeaderMap {
    let context = tracing::Span::current().context();
    let mut headers = http::HeaderMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(&mut headers))
    });
    headers
}

/// The current span's context as `(trace id, span id)` in lowercase hex, or `None` outside
/// a trace: what a record needs to name the request that wrote it and to be linked under
/// it later. The span id is empty when the span is not exported (not sampled): nothing
/// could hang under it.
pub fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        let span_id = if span_context.is_sampled() {
            span_context.span_id().to_string()
        } else {
            String::new()
        };
        (span_context.trace_id().to_string(), span_id)
    })
}

/// A span named `name`, child of the span `(trace_id, span_id)` another process recorded
/// (e.g. the request that wrote an audit event); a root span when the ids do not parse.
pub fn span_under(name: &'static str, trace_id: &str, span_id: &str) -> tracing::Span {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    let span = tracing::info_span!(
        "span_under",
        otel.name = name,
        otel.kind = "internal",
        event.kind = tracing::field::Empty,
    );
    let ids = TraceId::from_hex(trace_id)
        .ok()
        .zip(SpanId::from_hex(span_id).ok());
    if let Some((trace_id, span_id)) = ids {
        let parent = SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    span
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
