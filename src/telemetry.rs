//! Logs and traces: the `tracing` subscriber `rolecall` installs, and the request id every
//! log line of a request carries.
//!
//! Logs go to stderr (stdout carries the dev banner and the decision log's `stdout`
//! target), one line per event, as JSON or as human-readable text ([`LogFormat`]).
//!
//! The request id reaches each line through a task-local the request-id layer sets
//! ([`scope`]), not through a span: the formatter reads it only when a line is written, so
//! a request that logs nothing (nearly every check) pays for no span. The per-request span
//! (method, route, request id, tenant) is a `debug` one; it exists only when that level is
//! on for `rolecall`, or when traces are exported.

use std::io::IsTerminal as _;
use std::str::FromStr;

use axum::http::HeaderValue;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

tokio::task_local! {
    /// The id of the request whose future is being polled.
    static REQUEST_ID: HeaderValue;
}

/// The name of the request id in log lines (a top-level JSON member, or a trailing
/// `request_id=` field).
pub const REQUEST_ID_FIELD: &str = "request_id";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `pretty` when stderr is a terminal, else `json`: a person at a terminal reads text,
    /// and whatever collects the output of a service or container gets JSON.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// One human-readable line per event, in color on a terminal.
    Pretty,
}

impl LogFormat {
    /// The accepted spellings, for messages and the configuration reference.
    pub const VALUES: &'static str = "`auto`, `json` or `pretty`";

    /// `Auto` decided for this process's stderr.
    pub fn resolve(self) -> LogFormat {
        match self {
            LogFormat::Auto if std::io::stderr().is_terminal() => LogFormat::Pretty,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            other => Err(format!("`{other}` is not {}", LogFormat::VALUES)),
        }
    }
}

/// Where traces are exported (`[otel]`), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelSettings {
    /// The OTLP http/protobuf traces URL, `/v1/traces` included.
    pub traces_url: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

impl OtelSettings {
    /// `endpoint` is the collector's base URL (`http://collector:4318`), to which
    /// `/v1/traces` is added unless it already ends with it.
    pub fn new(endpoint: &str, service_name: Option<String>) -> Result<Self, String> {
        let url =
            url::Url::parse(endpoint).map_err(|e| format!("`{endpoint}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!("`{endpoint}` is not an http(s) URL with a host"));
        }
        let base = endpoint.trim_end_matches('/');
        let traces_url = if base.ends_with("/v1/traces") {
            base.to_owned()
        } else {
            format!("{base}/v1/traces")
        };
        Ok(OtelSettings {
            traces_url,
            service_name: service_name.unwrap_or_else(|| "rolecall".to_owned()),
        })
    }
}

/// Runs `future` with `id` as the request id of every line it logs.
pub fn scope<F: std::future::Future>(
    id: HeaderValue,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<HeaderValue, F> {
    REQUEST_ID.scope(id, future)
}

/// Runs `f` with `id` as the request id of every line it logs.
pub fn sync_scope<R>(id: HeaderValue, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(id, f)
}

/// The id of the request being handled on this task, if any.
pub fn request_id() -> Option<HeaderValue> {
    REQUEST_ID.try_with(HeaderValue::clone).ok()
}

/// Keeps the trace exporter alive; dropping it flushes the spans not yet sent.
#[must_use = "dropping it stops trace export"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.shutdown() {
                eprintln!("rolecall: cannot flush traces: {error}");
            }
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` when set, else `filter` (a `tracing` filter
/// such as `info,rolecall=debug`), written in `format` to stderr, and traces exported to
/// `otel` when given. Also routes panics into the log, so a handler's panic is one line
/// with its request id rather than raw text on stderr.
pub fn init(
    filter: &str,
    format: LogFormat,
    otel: Option<&OtelSettings>,
) -> anyhow::Result<Telemetry> {
    let env_filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match format.resolve() {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(format::JsonFields::new())
            .event_format(JsonWithRequestId(
                format::format()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true),
            ))
            .boxed(),
        _ => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .event_format(TextWithRequestId(format::format().with_ansi(ansi)))
                .boxed()
        }
    };
    let registry = tracing_subscriber::registry().with(fmt.with_filter(env_filter));
    #[cfg(feature = "otel")]
    let (registry, provider) = {
        let (layer, provider) = match otel {
            Some(settings) => {
                let (layer, provider) = otel::layer(settings)?;
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        (registry.with(layer), provider)
    };
    #[cfg(not(feature = "otel"))]
    anyhow::ensure!(
        otel.is_none(),
        "this binary was built without the `otel` feature"
    );
    registry.try_init()?;
    std::panic::set_hook(Box::new(|panic| {
        tracing::error!(%panic, "panicked");
    }));
    Ok(Telemetry {
        #[cfg(feature = "otel")]
        provider,
    })
}

/// The stock JSON line with the request id added as its first member.
struct JsonWithRequestId<F>(F);

impl<S, N, F> FormatEvent<S, N> for JsonWithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = request_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                // A valid request id is visible ASCII: only `"` and `\` need escaping.
                writer.write_str("{\"")?;
                writer.write_str(REQUEST_ID_FIELD)?;
                writer.write_str("\":\"")?;
                for c in String::from_utf8_lossy(id.as_bytes()).chars() {
                    if matches!(c, '"' | '\\') {
                        writer.write_char('\\')?;
                    }
                    writer.write_char(c)?;
                }
                writer.write_str("\",")?;
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
}

/// The stock text line with ` request_id=<id>` before its end.
struct TextWithRequestId<F>(F);

impl<S, N, F> FormatEvent<S, N> for TextWithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = request_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        writer.write_str(body)?;
        write!(
            writer,
            " {REQUEST_ID_FIELD}={}",
            String::from_utf8_lossy(id.as_bytes())
        )?;
        writer.write_char('\n')
    }
}

#[cfg(feature = "otel")]
mod otel {
    //! The OTLP exporter behind `--features otel`.

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing::{Level, Subscriber};
    use tracing_subscriber::filter::{filter_fn, LevelFilter};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    use super::OtelSettings;

    /// A layer exporting spans (the `debug` request span and the store's spans among them)
    /// and the events at `warn` and above inside them, with the provider to shut down.
    pub(super) fn layer<S>(
        settings: &OtelSettings,
    ) -> anyhow::Result<(Box<dyn Layer<S> + Send + Sync>, SdkTracerProvider)>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(settings.traces_url.clone())
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(settings.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("rolecall");
        let filter = filter_fn(|meta| {
            (meta.is_span() && *meta.level() <= Level::DEBUG) || *meta.level() <= Level::WARN
        })
        .with_max_level_hint(LevelFilter::DEBUG);
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter)
            .boxed();
        Ok((layer, provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_formats_parse_and_name_the_bad_value() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("pretty".parse(), Ok(LogFormat::Pretty));
        assert_eq!("auto".parse(), Ok(LogFormat::Auto));
        let err = "yaml".parse::<LogFormat>().unwrap_err();
        assert!(err.contains("`yaml`"), "{err}");
        assert_eq!(LogFormat::Json.resolve(), LogFormat::Json);
    }

    #[test]
    fn the_otlp_endpoint_gets_the_traces_path_once() {
        let s = OtelSettings::new("http://collector:4318", None).unwrap();
        assert_eq!(s.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(s.service_name, "rolecall");
        let s = OtelSettings::new("https://c.example/v1/traces/", Some("pdp".into())).unwrap();
        assert_eq!(s.traces_url, "https://c.example/v1/traces");
        assert!(OtelSettings::new("collector:4318", None).is_err());
    }
}
