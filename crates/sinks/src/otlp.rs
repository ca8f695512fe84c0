//! OTLP export of the loop's `tracing` spans: an OpenTelemetry SDK tracer provider with a batch
//! exporter speaking OTLP/HTTP protobuf, bridged into `tracing` by `tracing-opentelemetry`.
//!
//! ```no_run
//! # fn main() -> power_loop_contracts::Result<()> {
//! use tracing_subscriber::prelude::*;
//! use power_loop_sinks::otlp::{OtlpOptions, OtlpPipeline};
//! let otlp = OtlpPipeline::new(OtlpOptions::default().endpoint("http://127.0.0.1:4318/v1/traces"))?;
//! // Add the layer to the host's own subscriber; the loop's spans come from `TracingSink`.
//! tracing_subscriber::registry().with(otlp.layer()).init();
//! // … run sends with an `Arc::new(TracingSink::default())` subscribed to the bus …
//! otlp.shutdown()?; // exports what is still batched
//! # Ok(()) }
//! ```
//!
//! The HTTP client is the async `reqwest` client (rustls with the ring provider). The SDK's batch
//! processor runs on its own thread, so requests are driven by a small private tokio runtime
//! thread: export works whether or not the host runs tokio, and outlives the host's runtime.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use power_loop_contracts::{Error, ErrorCode, Result};
use tracing_subscriber::registry::LookupSpan;

/// Options of an [`OtlpPipeline`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OtlpOptions {
    /// Full traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. `None`: the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` variables, else
    /// `http://localhost:4318/v1/traces`.
    pub endpoint: Option<String>,
    /// `service.name` of the resource (default `power-loop`).
    pub service_name: String,
    /// Timeout of one export request (default 10 s).
    pub timeout: Duration,
}

impl Default for OtlpOptions {
    fn default() -> Self {
        OtlpOptions {
            endpoint: None,
            service_name: "power-loop".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

impl OtlpOptions {
    /// Sets the traces URL.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
    /// Sets `service.name`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }
    /// Sets the export timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }
}

/// Runs each request of the async reqwest client on the pipeline's runtime thread.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    rt: tokio::runtime::Handle,
}

impl HttpClient for RuntimeClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<
        Box<
            dyn Future<Output = std::result::Result<Response<Bytes>, HttpError>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let client = self.client.clone();
        let task = self
            .rt
            .spawn(async move { HttpClient::send_bytes(&client, request).await });
        Box::pin(async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(Box::new(e) as HttpError),
            }
        })
    }
}

struct RuntimeThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeThread {
    fn start() -> Result<(Self, tokio::runtime::Handle)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| otlp_err(format!("cannot start the export runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("power-loop-otlp".to_owned())
            .spawn(move || {
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| otlp_err(format!("cannot start the export thread: {e}")))?;
        Ok((
            RuntimeThread {
                stop: Some(stop),
                thread: Some(thread),
            },
            handle,
        ))
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn otlp_err(msg: String) -> Error {
    Error::new(ErrorCode::ConfigInvalid, msg)
}

/// An OTLP trace pipeline: tracer provider + batch exporter + the runtime that sends.
/// Dropping it shuts the provider down (exporting what is batched) before the runtime stops.
pub struct OtlpPipeline {
    provider: SdkTracerProvider,
    runtime: Option<RuntimeThread>,
}

impl std::fmt::Debug for OtlpPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpPipeline").finish_non_exhaustive()
    }
}

impl OtlpPipeline {
    /// Builds the exporter and provider. Fails with `config.invalid` on a bad endpoint.
    pub fn new(opts: OtlpOptions) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (runtime, rt) = RuntimeThread::start()?;
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .build()
            .map_err(|e| otlp_err(format!("cannot build the OTLP HTTP client: {e}")))?;
        let mut builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(RuntimeClient { client, rt })
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_timeout(opts.timeout);
        if let Some(url) = &opts.endpoint {
            builder = builder.with_endpoint(url.clone());
        }
        let exporter = builder
            .build()
            .map_err(|e| otlp_err(format!("cannot build the OTLP exporter: {e}")))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(opts.service_name)
                    .build(),
            )
            .build();
        Ok(OtlpPipeline {
            provider,
            runtime: Some(runtime),
        })
    }

    /// The tracer provider (e.g. to install as the global OpenTelemetry provider).
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// A tracer named `power_loop`.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer("power_loop")
    }

    /// The `tracing` layer that exports spans through this pipeline; add it to the host's
    /// subscriber.
    pub fn layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer())
    }

    /// Exports every finished span now.
    pub fn force_flush(&self) -> Result<()> {
        self.provider
            .force_flush()
            .map_err(|e| Error::new(ErrorCode::Io, format!("OTLP flush failed: {e}")))
    }

    /// Exports what is batched and stops the pipeline.
    pub fn shutdown(mut self) -> Result<()> {
        let r = self
            .provider
            .shutdown()
            .map_err(|e| Error::new(ErrorCode::Io, format!("OTLP shutdown failed: {e}")));
        self.runtime.take();
        r
    }
}

impl Drop for OtlpPipeline {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            let _ = self.provider.shutdown();
            self.runtime.take();
        }
    }
}

/// Builds an [`OtlpPipeline`] and installs `tracing_subscriber::registry()` with its layer as
/// the global `tracing` subscriber (for hosts without a tracing setup of their own). Fails (`config.invalid`) when a global subscriber
/// is already set: then add [`OtlpPipeline::layer`] to that setup instead.
pub fn init(opts: OtlpOptions) -> Result<OtlpPipeline> {
    use tracing_subscriber::prelude::*;
    let pipeline = OtlpPipeline::new(opts)?;
    tracing_subscriber::registry()
        .with(pipeline.layer())
        .try_init()
        .map_err(|e| {
            otlp_err(format!(
                "a global tracing subscriber is already set ({e}); add OtlpPipeline::layer() to it instead"
            ))
        })?;
    Ok(pipeline)
}
