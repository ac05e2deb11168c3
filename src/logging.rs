//! Logs in the two formats Prometheus components offer: logfmt (the default) and JSON.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber. `level` is debug, info, warn or error; `format` logfmt or json.
pub fn init(level: &str, format: &str) {
    let filter = tracing_subscriber::filter::LevelFilter::from_level(match level {
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    });
    let builder = tracing_subscriber::fmt().with_max_level(filter).with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.event_format(Logfmt).try_init()
    };
}

/// `ts=2026-11-25T10:00:00.123Z level=info msg="listening" address=[::]:9091`
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let ts = jiff::Timestamp::now().round(jiff::Unit::Millisecond).unwrap_or_else(|_| jiff::Timestamp::now());
        write!(writer, "ts={ts} level={}", event.metadata().level().as_str().to_ascii_lowercase())?;
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        writeln!(writer, "{}", fields.0)
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field.name(), &format!("{value:?}"));
    }
}

impl Fields {
    fn push(&mut self, name: &str, value: &str) {
        let key = if name == "message" { "msg" } else { name };
        let needs_quotes = value.is_empty() || value.contains([' ', '"', '=', '\n', '\\']);
        if needs_quotes {
            self.0.push_str(&format!(" {key}={value:?}"));
        } else {
            self.0.push_str(&format!(" {key}={value}"));
        }
    }
}
