//! OpenTelemetry export of the runtime's traces (feature `otel`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // Spans of this process go to an OTLP/HTTP collector (Jaeger, Tempo, the Collector, …).
//! let telemetry = durable::telemetry::init_otlp("http://localhost:4318")?;
//! // … run workers and clients: every instance is one trace …
//! telemetry.shutdown()?; // flushes what is buffered
//! # Ok(()) }
//! ```
//!
//! [`init_otlp`](crate::telemetry::init_otlp) installs a global `tracing` subscriber with an OpenTelemetry layer exporting
//! over OTLP/HTTP (protobuf), with a batch span processor on its own thread and a small HTTP/1.1
//! client (plain `http://`: run a collector beside the process; no TLS stack is compiled).
//! To compose your own subscriber (a `fmt` layer too, filters, another exporter), build the
//! layer with [`layer`](crate::telemetry::layer) from a provider of your own, the `tracing-opentelemetry` idiom; the
//! runtime gives each of its spans its remote parent either way.

pub use opentelemetry;
pub use opentelemetry_sdk;
pub use tracing_opentelemetry;
pub use tracing_subscriber;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

/// What [`init_otlp`] installed; [`shutdown`](Self::shutdown) flushes it.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// The tracer provider (to add a layer of your own, or flush).
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Export what is buffered and stop exporting.
    pub fn shutdown(self) -> Result<(), crate::Error> {
        self.provider.shutdown().map_err(|e| crate::Error::Config(format!("shutting OpenTelemetry down: {e}")))
    }
}

/// The OpenTelemetry layer of `provider`, for a subscriber of your own:
/// `tracing_subscriber::registry().with(durable::telemetry::layer(&provider))`.
pub fn layer<S>(
    provider: &SdkTracerProvider,
) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("durable"))
}

/// Export this process's spans over OTLP/HTTP (protobuf) to `endpoint` (the collector's base
/// URL, `http://host:4318`; spans go to `/v1/traces`), with service name `durable` unless
/// `OTEL_SERVICE_NAME` says otherwise; installs the global `tracing` subscriber (an error if
/// one is installed already).
pub fn init_otlp(endpoint: &str) -> Result<Telemetry, crate::Error> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let config = |e: String| crate::Error::Config(format!("OpenTelemetry export to {endpoint}: {e}"));
    let base = endpoint.trim_end_matches('/');
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_http_client(SmallHttp { timeout: Duration::from_secs(10) })
        .build()
        .map_err(|e| config(e.to_string()))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "durable".to_string());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let subscriber = tracing_subscriber::registry().with(layer(&provider));
    tracing::subscriber::set_global_default(subscriber).map_err(|e| config(e.to_string()))?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(Telemetry { provider })
}

/// A small blocking HTTP/1.1 client for plain `http://` collectors: one request per
/// connection. The batch span processor calls it on its own thread.
#[derive(Debug)]
struct SmallHttp {
    timeout: Duration,
}

type HttpError = Box<dyn std::error::Error + Send + Sync>;

impl SmallHttp {
    fn post(&self, request: http::Request<bytes::Bytes>) -> Result<http::Response<bytes::Bytes>, HttpError> {
        let uri = request.uri();
        if uri.scheme_str() != Some("http") {
            return Err(format!("only http:// collector URLs are supported, not {uri}").into());
        }
        let host = uri.host().ok_or("the collector URL has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?.next().ok_or("no address")?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut head = format!("{} {path} HTTP/1.1\r\nhost: {host}:{port}\r\nconnection: close\r\n", request.method());
        for (k, v) in request.headers() {
            if k != http::header::CONTENT_LENGTH && k != http::header::HOST && k != http::header::CONNECTION {
                head.push_str(&format!("{k}: {}\r\n", v.to_str()?));
            }
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", request.body().len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(request.body())?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line)?;
        let status: u16 = status_line.split_whitespace().nth(1).ok_or("no HTTP status")?.parse()?;
        let mut length = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse::<u64>().ok();
            }
        }
        let mut body = Vec::new();
        reader.take(length.unwrap_or(4 << 20).min(4 << 20)).read_to_end(&mut body)?;
        Ok(http::Response::builder().status(status).body(bytes::Bytes::from(body))?)
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for SmallHttp {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, HttpError> {
        self.post(request)
    }
}
