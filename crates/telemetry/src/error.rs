/// What can go wrong setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter in `RUST_LOG` does not parse.
    #[error("RUST_LOG is not a valid filter ({0}); use e.g. `info` or `tessera=debug,info`")]
    Filter(String),
    /// The OTLP exporter could not be built.
    #[error("cannot set up OTLP export to OTEL_EXPORTER_OTLP_ENDPOINT: {0}; fix the endpoint or unset it")]
    Otlp(String),
    /// The sampling ratio is not a number from 0 to 1.
    #[error("OTEL_TRACES_SAMPLER_ARG is {0:?}, not a ratio of traces to keep; use a number from 0 to 1 (e.g. 0.1), or unset it to keep every trace")]
    SampleRatio(String),
    /// The async runtime could not be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    /// A global subscriber was already installed.
    #[error("logging was already initialised in this process")]
    AlreadyInitialised,
}

impl TelemetryError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            TelemetryError::Filter(_) => "telemetry.filter",
            TelemetryError::Otlp(_) => "telemetry.otlp",
            TelemetryError::SampleRatio(_) => "telemetry.sample_ratio",
            TelemetryError::Runtime(_) => "telemetry.runtime",
            TelemetryError::AlreadyInitialised => "telemetry.already_initialised",
        }
    }
}
