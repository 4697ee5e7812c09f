//! A timer armed lazily for a sans-IO state machine's `poll_timeout`.

use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::Timer;

/// Wraps a runtime timer so that a later deadline keeps the earlier setting (its wake-up
/// is harmless: the owner asks its state machine again) and only an earlier one re-arms,
/// which keeps re-arming off the path of a deadline that moves later on every request.
#[derive(Debug)]
pub(crate) struct LazyTimer<T: Timer> {
    timer: T,
    armed: Option<Instant>,
}

impl<T: Timer> LazyTimer<T> {
    pub(crate) fn new(timer: T) -> LazyTimer<T> {
        LazyTimer { timer, armed: None }
    }

    /// Makes sure a wake-up comes no later than `at`; `Ready` when the armed instant has
    /// passed (the owner then calls its machine's `handle_timeout` if `at` is due).
    #[must_use = "Pending means a wake-up is arranged; Ready means the armed instant passed"]
    pub(crate) fn poll_until(&mut self, cx: &mut Context<'_>, at: Instant) -> Poll<()> {
        if self.armed.is_none_or(|armed| at < armed) {
            self.timer.set(at);
            self.armed = Some(at);
        }
        let fired = self.timer.poll_fired(cx);
        if fired.is_ready() {
            self.armed = None;
        }
        fired
    }
}
