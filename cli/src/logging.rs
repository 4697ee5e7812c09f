//! Log lines on stderr through `tracing-subscriber`.
//!
//! Lines are formatted on the thread that logs and written by a background thread, many
//! lines per `write` ([`crate::log_writer`]): a request never waits for a `write` to
//! stderr.
//!
//! Records of crates that log through the `log` crate are bridged into the same
//! subscriber, except those of [`SILENCED_CRATES`], which are dropped whatever
//! `RUST_LOG` says: they dump wire bytes that carry credentials.

use std::io::IsTerminal;

use tracing::level_filters::LevelFilter;
use tracing_log::AsLog;
use tracing_subscriber::filter::Directive;
use tracing_subscriber::EnvFilter;

use crate::log_writer::{stderr_batched, FlushGuard};
use crate::LogFormat;

/// Crates whose log records never reach the log. `ureq_proto` (an HTTP/1.1 codec, no longer
/// a dependency; kept here should it come back through another crate) writes a hex dump of
/// every request head it encodes at trace level, and a request head holds the provider key
/// (`Authorization`, `x-api-key`, `api-key`) and the entry's `headers:` values.
pub const SILENCED_CRATES: &[&str] = &["ureq_proto"];

/// Installs the global subscriber: level from `RUST_LOG` (default `info`), with
/// [`SILENCED_CRATES`] switched off. Keep the returned guard alive until exit: dropping
/// it flushes what is still buffered.
pub fn init(format: LogFormat) -> FlushGuard {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for name in SILENCED_CRATES {
        // Overrides any directive RUST_LOG has for the same target.
        if let Ok(off) = format!("{name}=off").parse::<Directive>() {
            filter = filter.add_directive(off);
        }
    }
    // The bridge from the `log` crate drops the silenced crates' records before they
    // become events at all, so no layer or filter can let them through.
    let max_level = filter.max_level_hint().unwrap_or(LevelFilter::TRACE);
    let bridged = tracing_log::LogTracer::builder()
        .ignore_all(SILENCED_CRATES.iter().copied())
        .with_max_level(max_level.as_log())
        .init();
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = stderr_batched();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => tracing::subscriber::set_global_default(builder.json().finish()),
        LogFormat::Human => {
            tracing::subscriber::set_global_default(builder.with_ansi(ansi).finish())
        }
    };
    if let Err(e) = installed {
        eprintln!("warning: cannot install the logger: {e}");
    }
    if let Err(e) = bridged {
        tracing::warn!("log records of dependencies are not logged: {e}");
    }
    guard
}
