//! Spreading client connections over the worker threads (spec §8). Every worker polls a
//! copy of the same listening socket, so a new connection wakes them all and whichever
//! accepts first serves it; in a burst (a load balancer or a benchmark opening fifty
//! keep-alive connections at once) the first worker awake can take every one. With this,
//! a worker leaves the next connection to the others while it serves more than
//! [`SLACK`] connections more than the least loaded worker still accepting, and is woken
//! to accept again when that changes. The least loaded worker never declines, so some
//! worker always accepts; a worker whose thread ends is retired and no longer counts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Waker};

/// How many connections more than the least loaded worker a worker may serve and still
/// accept. One keeps a steady stream of short connections from bouncing between workers.
pub(crate) const SLACK: usize = 1;

/// One worker's share of the [`Balance`].
#[derive(Debug, Default)]
struct Slot {
    open: AtomicUsize,
    /// Set when the worker's thread ended (or is ending): it accepts nothing more.
    retired: AtomicBool,
    /// This worker's accept loops waiting for its turn.
    waiting: Mutex<Vec<Waker>>,
    /// `waiting.len()`, readable without the lock, so opens and closes only take the
    /// lock when a loop waits.
    waiting_count: AtomicUsize,
}

impl Slot {
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

/// The open client connections of every worker, and the accept loops waiting for their
/// worker's turn. Shared by all workers of one gateway.
#[derive(Debug)]
pub(crate) struct Balance {
    slots: Box<[Slot]>,
}

impl Balance {
    /// A balance for `workers` workers, none serving anything yet.
    pub(crate) fn new(workers: usize) -> Balance {
        Balance {
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    /// The connections worker `me` serves.
    pub(crate) fn open(&self, me: usize) -> usize {
        self.slots
            .get(me)
            .map_or(0, |s| s.open.load(Ordering::SeqCst))
    }

    /// Whether worker `me` should leave the next connection to a less loaded worker
    /// that still accepts.
    pub(crate) fn should_decline(&self, me: usize) -> bool {
        let Some(mine) = self.slots.get(me).map(|s| s.open.load(Ordering::SeqCst)) else {
            return false;
        };
        let least = self
            .slots
            .iter()
            .filter(|s| !s.retired.load(Ordering::SeqCst))
            .map(|s| s.open.load(Ordering::SeqCst))
            .min()
            .unwrap_or(mine);
        mine > least.saturating_add(SLACK)
    }

    /// For an accept loop of worker `me` about to accept: true when it should not, in
    /// which case `cx`'s waker is woken once that may have changed (another worker
    /// opened a connection, `me` closed one, a worker retired). Call it before every
    /// accept.
    #[must_use]
    pub(crate) fn poll_decline(&self, me: usize, cx: &mut Context<'_>) -> bool {
        let Some(slot) = self.slots.get(me) else {
            return false;
        };
        if !self.should_decline(me) {
            return false;
        }
        {
            let mut waiting = slot.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
            slot.waiting_count.store(waiting.len(), Ordering::SeqCst);
        }
        // Checked again after registering, so a change made meanwhile is not missed (the
        // worker that made it reads `waiting_count` after changing its count).
        self.should_decline(me)
    }

    /// Worker `me` started serving a connection: another worker may now be the busier
    /// one no longer, so the others' waiting loops look again.
    pub(crate) fn opened(&self, me: usize) {
        let Some(slot) = self.slots.get(me) else {
            return;
        };
        slot.open.fetch_add(1, Ordering::SeqCst);
        self.wake_others(me);
    }

    /// A connection of worker `me` ended: only `me` can have become less busy than it
    /// was, so only its own waiting loops look again.
    pub(crate) fn closed(&self, me: usize) {
        let Some(slot) = self.slots.get(me) else {
            return;
        };
        // Never below zero, even for a close with no matching open.
        let _ = slot
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
        slot.wake_waiting();
    }

    /// Worker `me` accepts nothing more (its thread ended, or is unwinding): it no
    /// longer counts as the least loaded, and the others look again.
    pub(crate) fn retire(&self, me: usize) {
        if let Some(slot) = self.slots.get(me) {
            slot.retired.store(true, Ordering::SeqCst);
            self.wake_others(me);
        }
    }

    fn wake_others(&self, me: usize) {
        for (i, slot) in self.slots.iter().enumerate() {
            if i != me {
                slot.wake_waiting();
            }
        }
    }
}

/// Retires its worker from the [`Balance`] when dropped: hold one for as long as the
/// worker's thread serves, so a thread that ends, by a panic included, stops counting.
pub(crate) struct RetireOnDrop {
    pub(crate) balance: std::sync::Arc<Balance>,
    pub(crate) worker: usize,
}

impl Drop for RetireOnDrop {
    fn drop(&mut self) {
        self.balance.retire(self.worker);
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
            b.slots[0].open.load(Ordering::SeqCst),
            b.slots[1].open.load(Ordering::SeqCst),
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
        assert_eq!(b.slots[0].waiting_count.load(Ordering::SeqCst), 1);
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
        assert_eq!(b.slots[0].waiting_count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_retired_worker_no_longer_holds_the_others_back() {
        let b = Arc::new(Balance::new(2));
        b.opened(0);
        b.opened(0);
        let (count, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(b.poll_decline(0, &mut cx), "2 against an idle worker 1");
        // Worker 1's thread ends (a guard dropped on unwinding, say).
        drop(RetireOnDrop {
            balance: Arc::clone(&b),
            worker: 1,
        });
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken by the retirement");
        for _ in 0..10 {
            assert!(!b.poll_decline(0, &mut cx), "the only worker left accepts");
            b.opened(0);
        }
        // Its connections closing afterwards change nothing.
        b.closed(1);
        assert!(!b.should_decline(0));
    }

    #[test]
    fn a_close_wakes_only_its_own_workers_loops() {
        let b = Balance::new(2);
        b.opened(0);
        b.opened(0);
        let (zero, w0) = waker();
        assert!(b.poll_decline(0, &mut Context::from_waker(&w0)));
        b.closed(1);
        assert_eq!(
            zero.0.load(Ordering::SeqCst),
            0,
            "another's close cannot help 0"
        );
        b.closed(0);
        assert_eq!(zero.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_close_without_an_open_never_underflows() {
        let b = Balance::new(2);
        b.closed(1);
        assert_eq!(b.slots[1].open.load(Ordering::SeqCst), 0);
        assert!(!b.should_decline(0));
    }
}
