use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::{sampling, TelemetryError};

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Keeps span export running; dropping it flushes what is buffered.
#[must_use = "dropping the guard stops trace export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(err) = provider.shutdown() {
                eprintln!("trace export did not shut down cleanly: {err}");
            }
        }
    }
}

/// Who exports the spans: the resource attributes every span of the process carries, so a
/// trace viewer shows which service in which datacenter did what.
#[derive(Clone, Debug)]
pub struct ServiceIdentity {
    service: &'static str,
    datacenter: Option<String>,
    instance: Option<String>,
}

impl ServiceIdentity {
    /// `service` (reported as `service.name`, e.g. `login`).
    pub fn new(service: &'static str) -> Self {
        ServiceIdentity {
            service,
            datacenter: None,
            instance: None,
        }
    }

    /// The datacenter it runs in (`tessera.datacenter`).
    pub fn datacenter(mut self, datacenter: impl Into<String>) -> Self {
        self.datacenter = Some(datacenter.into()).filter(|d| !d.is_empty());
        self
    }

    /// Which of several processes of one service it is (`service.instance.id`, e.g. a
    /// demo site's client id).
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into()).filter(|i| !i.is_empty());
        self
    }

    /// The service name.
    pub fn service(&self) -> &'static str {
        self.service
    }

    fn resource(&self) -> Resource {
        let mut attributes = Vec::new();
        if let Some(datacenter) = &self.datacenter {
            attributes.push(KeyValue::new("tessera.datacenter", datacenter.clone()));
        }
        // Viewers tell processes apart by instance: every process names one.
        let instance = self
            .instance
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.service, std::process::id()));
        attributes.push(KeyValue::new("service.instance.id", instance));
        Resource::builder()
            .with_service_name(self.service)
            .with_attributes(attributes)
            .build()
    }
}

impl From<&'static str> for ServiceIdentity {
    fn from(service: &'static str) -> Self {
        ServiceIdentity::new(service)
    }
}

/// Installs logging and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OTLP span export for
/// `identity`, sampled as [`crate::sampling`] says (`OTEL_TRACES_SAMPLER_ARG` is the ratio
/// of new traces kept). W3C trace context is always the propagator.
pub fn init(
    identity: impl Into<ServiceIdentity>,
    format: LogFormat,
) -> Result<TelemetryGuard, TelemetryError> {
    let identity = identity.into();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(spec).map_err(|e| TelemetryError::Filter(e.to_string()))?,
        Err(_) => EnvFilter::new("info"),
    };
    let logs = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };

    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let ratio =
                sampling::ratio_from(std::env::var(sampling::RATIO_VARIABLE).ok().as_deref())?;
            Some(otlp_provider(&identity, ratio)?)
        }
        _ => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(identity.service())));

    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(
    identity: &ServiceIdentity,
    ratio: f64,
) -> Result<SdkTracerProvider, TelemetryError> {
    // The exporter reads the endpoint and headers from the standard OTEL_* variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| TelemetryError::Otlp(e.to_string()))?;
    let exporting = BatchSpanProcessor::builder(exporter).build();
    Ok(SdkTracerProvider::builder()
        .with_sampler(sampling::RecordUnsampled::new(ratio))
        .with_span_processor(sampling::KeepErrors::new(exporting))
        .with_resource(identity.resource())
        .build())
}
