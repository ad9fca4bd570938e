use std::future::Future;

use crate::{init, LogFormat, ServiceIdentity, TelemetryError};

/// Runs a service's `main` future on a multi-threaded runtime with telemetry set up for
/// `identity`, the way every Tessera binary does.
///
/// Telemetry starts inside the runtime, because the OTLP exporter's connection lives on
/// it, and its guard is dropped before the runtime shuts down, so buffered spans are
/// flushed while the exporter can still send them.
pub fn run_service<F: Future>(
    identity: impl Into<ServiceIdentity>,
    format: LogFormat,
    main: F,
) -> Result<F::Output, TelemetryError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| TelemetryError::Runtime(e.to_string()))?;
    let guard = {
        let _entered = runtime.enter();
        init(identity, format)?
    };
    let output = runtime.block_on(main);
    drop(guard);
    Ok(output)
}
