//! The writer behind the log: lines are formatted on the thread that logs into a buffer of
//! that thread's, appended whole to one shared buffer, and written to stderr by a
//! background thread, many lines per `write`.
//!
//! The writer thread sleeps on a condition variable while there is nothing to write, and a
//! logging thread wakes it only when it is asleep. After each write the writer waits
//! [`BATCH_WINDOW`] before it looks again, so lines that arrive meanwhile go out together:
//! under load the log costs at most a few hundred `write`s a second and no wake-ups at all,
//! never a spin (a channel that spins before it parks took CPU from the request threads it
//! shares cores with), and a line waits at most about that window. The shared buffer is
//! bounded: past it, a logging thread waits for the writer (no line is dropped).

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes that may wait for the writer thread before logging blocks.
const MAX_PENDING_BYTES: usize = 4 * 1024 * 1024;

/// How long the writer lets lines gather after a write.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

#[derive(Debug, Default)]
struct State {
    pending: Vec<u8>,
    /// The writer thread is waiting for lines.
    asleep: bool,
    /// No more lines: the writer writes what is left and ends.
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when lines arrive (to the writer) and when room frees up (to loggers).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one formatted line (or several) for the writer thread.
    fn push(&self, bytes: &[u8]) {
        let mut state = self.lock();
        while state.pending.len() + bytes.len() > MAX_PENDING_BYTES
            && !state.pending.is_empty()
            && !state.closed
        {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.pending.extend_from_slice(bytes);
        if state.asleep {
            state.asleep = false;
            self.changed.notify_all();
        }
    }
}

/// The `MakeWriter` the subscriber formats into; cloneable, cheap.
#[derive(Debug, Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

/// Flushes what is queued and stops the writer thread when dropped (at exit).
#[derive(Debug)]
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.changed.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread (named `switchback-log`); falls back to writing on the
/// logging thread when no thread can be started.
pub fn stderr_batched() -> (BatchedStderr, FlushGuard) {
    let shared = Arc::new(Shared::default());
    let for_thread = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("switchback-log".into())
        .spawn(move || write_loop(&for_thread))
        .ok();
    if thread.is_none() {
        shared.lock().closed = true;
    }
    (
        BatchedStderr {
            shared: Arc::clone(&shared),
        },
        FlushGuard { shared, thread },
    )
}

fn write_loop(shared: &Shared) {
    let mut out = io::stderr();
    let mut batch = Vec::new();
    loop {
        {
            let mut state = shared.lock();
            while state.pending.is_empty() && !state.closed {
                state.asleep = true;
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
            }
            if state.pending.is_empty() && state.closed {
                return;
            }
            std::mem::swap(&mut batch, &mut state.pending);
            shared.changed.notify_all();
        }
        // A log that cannot be written (stderr closed) is dropped, never retried forever.
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        std::thread::sleep(BATCH_WINDOW);
    }
}

thread_local! {
    /// The line being formatted on this thread (reused: no allocation per line).
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One event's writer: collects the formatted line, hands it over whole when dropped.
#[derive(Debug)]
pub struct LineWriter<'a> {
    shared: &'a Shared,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        LINE.with(|line| line.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            if line.is_empty() {
                return;
            }
            if self.shared.lock().closed {
                // No writer thread (not started, or exiting): write here.
                let _ = io::stderr().write_all(&line);
            } else {
                self.shared.push(&line);
            }
            line.clear();
        });
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_whole_and_in_order_from_many_threads() {
        let shared = Arc::new(Shared::default());
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let make = BatchedStderr {
                    shared: Arc::clone(&shared),
                };
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let mut w = make.make_writer();
                        write!(w, "thread {t} ").unwrap();
                        writeln!(w, "line {i}").unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let text = String::from_utf8(shared.lock().pending.clone()).unwrap();
        for t in 0..4 {
            let mine: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..200).collect::<Vec<_>>(), "thread {t}");
        }
    }
}
