//! Which traces are exported: a configurable ratio of new traces, the caller's decision
//! for the rest (parent-based), and every span that ended in error whatever the ratio.
//!
//! Head sampling cannot know at a span's start whether it will fail, so spans the ratio
//! leaves out are still recorded (not exported), and [`KeepErrors`] exports those that
//! end with an error status. Recording costs a few allocations per span; exporting is
//! what the ratio saves.

use std::time::Duration;

use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SamplingDecision, SamplingResult, ShouldSample, Span, SpanData, SpanProcessor,
};
use opentelemetry_sdk::Resource;

use crate::TelemetryError;

/// The environment variable holding the ratio of new traces kept (OpenTelemetry's own).
pub const RATIO_VARIABLE: &str = "OTEL_TRACES_SAMPLER_ARG";

/// Reads the ratio of new traces to keep from `value` (the [`RATIO_VARIABLE`]); unset or
/// empty keeps every trace.
pub fn ratio_from(value: Option<&str>) -> Result<f64, TelemetryError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(1.0);
    };
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(TelemetryError::SampleRatio(text.to_owned())),
    }
}

/// Parent-based sampling at `ratio` for new traces, recording (not dropping) what it does
/// not sample, so [`KeepErrors`] can still export spans that fail.
#[derive(Debug, Clone)]
pub struct RecordUnsampled {
    inner: Sampler,
}

impl RecordUnsampled {
    /// Keeps `ratio` of new traces and follows the caller's decision otherwise.
    pub fn new(ratio: f64) -> Self {
        RecordUnsampled {
            inner: Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))),
        }
    }
}

impl ShouldSample for RecordUnsampled {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> SamplingResult {
        let mut result =
            self.inner
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if result.decision == SamplingDecision::Drop {
            result.decision = SamplingDecision::RecordOnly;
        }
        result
    }
}

/// Passes sampled spans on, and unsampled ones too when they ended in error (marked
/// sampled, so the exporting processor behind keeps them).
#[derive(Debug)]
pub struct KeepErrors<P> {
    next: P,
}

impl<P> KeepErrors<P> {
    /// Wraps the exporting processor `next`.
    pub fn new(next: P) -> Self {
        KeepErrors { next }
    }
}

impl<P: SpanProcessor> SpanProcessor for KeepErrors<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.next.on_start(span, cx);
    }

    fn on_end(&self, mut span: SpanData) {
        if !span.span_context.is_sampled() {
            if !matches!(span.status, Status::Error { .. }) {
                return;
            }
            let context = &span.span_context;
            span.span_context = SpanContext::new(
                context.trace_id(),
                context.span_id(),
                context.trace_flags().with_sampled(true),
                context.is_remote(),
                context.trace_state().clone(),
            );
        }
        self.next.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.next.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// Collects what reaches it, as the exporting processor would (sampled spans only).
    #[derive(Debug, Clone, Default)]
    struct Exported(Arc<Mutex<Vec<String>>>);

    impl SpanProcessor for Exported {
        fn on_start(&self, _span: &mut Span, _cx: &Context) {}
        fn on_end(&self, span: SpanData) {
            if span.span_context.is_sampled() {
                if let Ok(mut names) = self.0.lock() {
                    names.push(span.name.to_string());
                }
            }
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    fn exported_with_ratio(ratio: f64) -> Vec<String> {
        let exported = Exported::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(RecordUnsampled::new(ratio))
            .with_span_processor(KeepErrors::new(exported.clone()))
            .build();
        let tracer = provider.tracer("test");
        tracer.start("fine").end();
        let mut failing = tracer.start("failing");
        failing.set_status(Status::error("backend unavailable"));
        failing.end();
        let names = exported.0.lock().map(|n| n.clone()).unwrap_or_default();
        names
    }

    #[test]
    fn errors_are_exported_even_when_the_ratio_keeps_nothing() {
        assert_eq!(exported_with_ratio(0.0), vec!["failing".to_owned()]);
    }

    #[test]
    fn a_ratio_of_one_exports_every_span() {
        assert_eq!(
            exported_with_ratio(1.0),
            vec!["fine".to_owned(), "failing".to_owned()]
        );
    }

    #[test]
    fn the_ratio_must_be_a_fraction() {
        assert_eq!(ratio_from(None).ok(), Some(1.0));
        assert_eq!(ratio_from(Some("0.25")).ok(), Some(0.25));
        for bad in ["2", "-0.1", "half"] {
            let err = ratio_from(Some(bad)).expect_err(bad);
            assert!(err.to_string().contains(RATIO_VARIABLE), "{err}");
        }
    }
}
