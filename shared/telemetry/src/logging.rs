//! Structured JSON logs on stdout, one object per line, with the service name and the current
//! span's fields (the request id among them).

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
/// Calling it twice is harmless (tests spawn several apps in one process).
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .flatten_event(true);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    tracing::info!(service, "logging initialised");
}
