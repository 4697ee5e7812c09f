//! Log lines on stderr through `tracing-subscriber`.
//!
//! Lines are formatted on the thread that logs and written by a background thread
//! through a buffer that is flushed whenever no line is waiting: a request never waits
//! for a `write` to stderr, and a burst of lines costs one syscall, not one per line.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::LogFormat;

/// Lines that may wait for the writer thread before logging blocks. The queue's slots are
/// allocated up front, so this bounds the logger's memory too.
const LOG_QUEUE_LINES: usize = 8 * 1024;

/// Installs the global subscriber: level from `RUST_LOG` (default `info`). Keep the
/// returned guard alive until exit: dropping it flushes what is still buffered.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("switchback-log")
        .finish(BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.with_ansi(ansi).init(),
    }
    guard
}
