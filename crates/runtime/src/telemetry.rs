//! Logging and tracing set-up, in one place.
//!
//! Logs always go to stderr. Spans are exported over OTLP/gRPC only when the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! variable is set; without it no exporter is built and the RPC layers pass
//! calls through untouched. See `docs/observability.md`.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log pipelines.
    Json,
}

/// Whether this process exports spans (set once, by [`init_telemetry`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported; the RPC tracing layers do nothing otherwise.
pub(crate) fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps telemetry running; dropping it flushes the spans still buffered
/// and shuts the exporter down. Keep it until the servers have stopped.
#[derive(Debug)]
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether this guard's process exports spans over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            if let Err(error) = provider.shutdown() {
                // The subscriber may be gone already: stderr is what is left.
                eprintln!("telemetry: flushing spans failed: {error}");
            }
        }
    }
}

/// The variables that turn span export on.
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

fn variable(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The binary's file name, the service name when `OTEL_SERVICE_NAME` is not set.
fn binary_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_stem)
        .and_then(|name| name.to_str())
        .map_or_else(|| "latchkey".to_owned(), str::to_owned)
}

/// The tracer provider exporting over OTLP/gRPC, when an endpoint is set.
/// Must run inside a Tokio runtime (the exporter's channel lives there).
fn tracer_provider() -> Option<SdkTracerProvider> {
    if variable("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    {
        return None;
    }
    let endpoint = ENDPOINT_VARIABLES.iter().find_map(|name| variable(name))?;
    // The exporter reads the endpoint, headers, timeout and compression
    // from the standard variables itself; the endpoint is repeated here
    // only to reject a bad one up front with a clear message.
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("telemetry: not exporting spans to {endpoint}: {error}");
            return None;
        }
    };
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    let named_by_attributes = variable("OTEL_RESOURCE_ATTRIBUTES")
        .is_some_and(|attributes| attributes.contains("service.name="));
    if variable("OTEL_SERVICE_NAME").is_none() && !named_by_attributes {
        resource = resource.with_service_name(binary_name());
    }
    // The batch processor reads `OTEL_BSP_*` (delay, queue and batch sizes).
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// Whether log lines may carry colour: only when stderr (where the fmt layer
/// writes) is a terminal, so a file, a pipe or a container's log driver gets
/// plain text; never with `NO_COLOR` set (<https://no-color.org>).
fn colour_logs() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`,
/// for logs and exported spans alike.
///
/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported over
/// OTLP/gRPC and W3C trace context (`traceparent`, `tracestate`) is read
/// from incoming and written to outgoing gRPC calls. Must be called inside
/// a Tokio runtime.
pub fn init_telemetry(format: LogFormat, default_filter: &str) -> TelemetryGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Logs go to stderr: stdout is for what a command prints for its user.
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(colour_logs())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = tracer_provider();
    let spans = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("latchkey")));
    // A second initialisation (tests start several servers per process)
    // keeps the first subscriber.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok();
    if !installed {
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return TelemetryGuard { provider: None };
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        EXPORTING.store(true, Ordering::Relaxed);
    }
    TelemetryGuard { provider }
}
