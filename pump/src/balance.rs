//! Spreading client connections over the worker threads (spec §8). Every worker polls a
//! copy of the same listening socket, so a new connection wakes them all and whichever
//! accepts first serves it; in a burst (a load balancer or a benchmark opening fifty
//! keep-alive connections at once) the first worker awake can take every one. With this,
//! a worker leaves the next connection to the others while it serves more than
//! [`SLACK`] connections more than the least loaded worker, and is woken to accept again
//! when that changes. The least loaded worker never declines, so some worker always
//! accepts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Waker};

/// How many connections more than the least loaded worker a worker may serve and still
/// accept. One keeps a steady stream of short connections from bouncing between workers.
pub(crate) const SLACK: usize = 1;

/// The open client connections of every worker, and the accept loops waiting for their
/// worker's turn. Shared by all workers of one gateway.
#[derive(Debug)]
pub(crate) struct Balance {
    open: Box<[AtomicUsize]>,
    waiting: Mutex<Vec<Waker>>,
    /// `waiting.len()`, readable without the lock: connection opens and closes only take
    /// the lock when some accept loop waits.
    waiting_count: AtomicUsize,
}

impl Balance {
    /// A balance for `workers` workers, none serving anything yet.
    pub(crate) fn new(workers: usize) -> Balance {
        Balance {
            open: (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            waiting: Mutex::new(Vec::new()),
            waiting_count: AtomicUsize::new(0),
        }
    }

    /// Whether worker `me` should leave the next connection to a less loaded worker.
    pub(crate) fn should_decline(&self, me: usize) -> bool {
        let Some(mine) = self.open.get(me).map(|n| n.load(Ordering::SeqCst)) else {
            return false;
        };
        let least = self
            .open
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0);
        mine > least + SLACK
    }

    /// For an accept loop of worker `me` about to accept: true when it should not, in
    /// which case `cx`'s waker is woken once the balance changes (any worker's connection
    /// opens or closes). Call it before every accept.
    #[must_use]
    pub(crate) fn poll_decline(&self, me: usize, cx: &mut Context<'_>) -> bool {
        if !self.should_decline(me) {
            return false;
        }
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
            self.waiting_count.store(waiting.len(), Ordering::SeqCst);
        }
        // Checked again after registering, so a change made meanwhile is not missed (the
        // worker that made it read `waiting_count` after changing its count).
        self.should_decline(me)
    }

    /// Worker `me` started serving a connection.
    pub(crate) fn opened(&self, me: usize) {
        if let Some(n) = self.open.get(me) {
            n.fetch_add(1, Ordering::SeqCst);
        }
        self.wake_waiting();
    }

    /// A connection of worker `me` ended.
    pub(crate) fn closed(&self, me: usize) {
        if let Some(n) = self.open.get(me) {
            // Never below zero, even for a close with no matching open.
            let _ = n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
        }
        self.wake_waiting();
    }

    fn wake_waiting(&self) {
        if self.waiting_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let woken = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            self.waiting_count.store(0, Ordering::SeqCst);
            std::mem::take(&mut *waiting)
        };
        for w in woken {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (Arc::clone(&c), Waker::from(c))
    }

    #[test]
    fn one_worker_never_declines() {
        let b = Balance::new(1);
        for _ in 0..100 {
            b.opened(0);
        }
        assert!(!b.should_decline(0));
    }

    #[test]
    fn a_worker_ahead_by_more_than_the_slack_declines_and_the_least_loaded_never_does() {
        let b = Balance::new(3);
        b.opened(0);
        assert!(!b.should_decline(0), "1 against 0: within the slack");
        b.opened(0);
        assert!(b.should_decline(0), "2 against 0");
        assert!(!b.should_decline(1) && !b.should_decline(2));
        b.opened(1);
        assert!(b.should_decline(0), "the least loaded is still at 0");
        b.opened(2);
        assert!(!b.should_decline(0), "2 against 1: within the slack");
    }

    #[test]
    fn a_burst_spreads_evenly_when_the_first_worker_awake_tries_to_take_it_all() {
        // Worker 0 is always offered the connection first, as when it wakes first; it
        // takes it unless it declines, and then worker 1 does.
        let b = Balance::new(2);
        for _ in 0..50 {
            if b.should_decline(0) {
                b.opened(1);
            } else {
                b.opened(0);
            }
        }
        let (a, c) = (
            b.open[0].load(Ordering::SeqCst),
            b.open[1].load(Ordering::SeqCst),
        );
        assert_eq!(a + c, 50);
        assert!(a.abs_diff(c) <= SLACK + 1, "{a} / {c}");
    }

    #[test]
    fn a_declining_accept_loop_is_woken_when_the_balance_changes() {
        let b = Balance::new(2);
        for _ in 0..2 {
            b.opened(0);
        }
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(b.poll_decline(0, &mut cx));
        assert!(
            b.poll_decline(0, &mut cx),
            "registered once however often polled"
        );
        assert_eq!(b.waiting_count.load(Ordering::SeqCst), 1);
        b.opened(1);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken by the other's open"
        );
        assert!(!b.poll_decline(0, &mut cx), "2 against 1: its turn again");
        // Its own close wakes it too.
        b.opened(0);
        assert!(b.poll_decline(0, &mut cx));
        b.closed(0);
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(b.waiting_count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_close_without_an_open_never_underflows() {
        let b = Balance::new(2);
        b.closed(1);
        assert_eq!(b.open[1].load(Ordering::SeqCst), 0);
        assert!(!b.should_decline(0));
    }
}
