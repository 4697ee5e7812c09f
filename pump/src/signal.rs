//! Telling every worker thread, and every connection on a worker, that the gateway is
//! stopping.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The gateway-wide stop: set once (with the drain deadline) by [`Running`](crate::Running),
/// awaited by each worker thread, which keeps one waker slot here (so the slots never grow,
/// however often a worker is polled with a new waker).
#[derive(Debug)]
pub(crate) struct Stop {
    /// Set with the deadline: lets a poll that already registered its waker skip the lock.
    stopped: AtomicBool,
    state: Mutex<(Option<Instant>, Vec<Option<Waker>>)>,
}

impl Stop {
    /// A stop signal for `workers` worker threads.
    pub(crate) fn new(workers: usize) -> Stop {
        Stop {
            stopped: AtomicBool::new(false),
            state: Mutex::new((None, vec![None; workers])),
        }
    }

    /// Starts the drain: in-flight requests have until `deadline`.
    pub(crate) fn trigger(&self, deadline: Instant) {
        let wakers: Vec<Waker> = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.0.is_some() {
                return;
            }
            state.0 = Some(deadline);
            self.stopped.store(true, Ordering::Release);
            state.1.iter_mut().filter_map(Option::take).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Ready with the drain deadline once [`trigger`](Self::trigger) was called. Worker
    /// `worker`'s main future is polled on every wake-up of its executor, so it passes the
    /// waker it registered last in `registered`: a repeat poll costs one atomic load.
    pub(crate) fn poll(
        &self,
        cx: &mut Context<'_>,
        worker: usize,
        registered: &mut Option<Waker>,
    ) -> Poll<Instant> {
        if !self.stopped.load(Ordering::Acquire)
            && registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match state.0 {
            Some(deadline) => Poll::Ready(deadline),
            None => {
                if let Some(slot) = state.1.get_mut(worker) {
                    *slot = Some(cx.waker().clone());
                }
                *registered = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// One worker's fan-out of the drain to its tasks (accept loops and connections): each task
/// holds a slot whose waker is woken when the drain starts.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    deadline: Cell<Option<Instant>>,
    slots: RefCell<Vec<Option<Waker>>>,
    free: RefCell<Vec<usize>>,
}

impl Drain {
    /// A slot for one task; give it back with [`unregister`](Self::unregister).
    pub(crate) fn register(&self) -> usize {
        if let Some(slot) = self.free.borrow_mut().pop() {
            return slot;
        }
        let mut slots = self.slots.borrow_mut();
        slots.push(None);
        slots.len() - 1
    }

    pub(crate) fn unregister(&self, slot: usize) {
        if let Some(w) = self.slots.borrow_mut().get_mut(slot) {
            *w = None;
        }
        self.free.borrow_mut().push(slot);
    }

    /// The drain deadline once the drain started; otherwise remembers the task's waker.
    pub(crate) fn poll(&self, slot: usize, cx: &mut Context<'_>) -> Option<Instant> {
        if let Some(deadline) = self.deadline.get() {
            return Some(deadline);
        }
        if let Some(w) = self.slots.borrow_mut().get_mut(slot) {
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        None
    }

    /// Starts the drain on this worker and wakes every task.
    pub(crate) fn start(&self, deadline: Instant) {
        self.deadline.set(Some(deadline));
        let wakers: Vec<Waker> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for w in wakers {
            w.wake();
        }
    }
}
