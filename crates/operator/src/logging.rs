//! Structured logs: `--log-format text|json`, `--log-level` (a level or an `EnvFilter`
//! directive such as `info,kube=warn`). Logs never carry secret values: the controllers log names,
//! key ids and error kinds only.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;

use crate::Error;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("unknown log format {s:?} (expected text or json)")),
        }
    }
}

/// Builds the filter for `level`: Go's slog names (`DEBUG`, `INFO`, `WARN`, `ERROR`) are accepted
/// in any case, as are tracing directives.
pub fn filter(level: &str) -> Result<EnvFilter, Error> {
    let normalized = match level.to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        other => other.to_owned(),
    };
    EnvFilter::try_new(&normalized).map_err(|e| Error::Invalid {
        what: "log level",
        reason: e.to_string(),
    })
}

/// Installs the global subscriber, writing to stderr.
pub fn init(format: LogFormat, level: &str) -> Result<(), Error> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| Error::Logging(e.to_string()))
}
