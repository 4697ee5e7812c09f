//! The retry budget (spec §11): over any sliding 10 s window, retries may number at most
//! `ratio` × the first attempts in that window plus `min_per_second` × 10.
//!
//! [`RetryBudget`] is sans-IO: every method takes `now`. It counts in fixed time buckets
//! (half a second each), so its memory is a constant 21 pairs of counters however much
//! traffic it sees. Bucketing is conservative in both directions: a retry is checked
//! against the retries of every bucket that overlaps the last 10 s (a window of 10 to
//! 10.5 s) and against the first attempts of the buckets that lie wholly inside it (9.5
//! to 10 s). So for every retry it admits at `t`, the retries in `(t - 10 s, t]` are at
//! most `ratio` × the first attempts in `(t - 10 s, t]` plus `min_per_second` × 10: the
//! bound holds exactly, never only on average.
//!
//! One budget serves a whole gateway ([`SharedRetryBudget`]); a provider entry with its
//! own `retry_budget` gets its own.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::RetryBudgetSettings;

/// The sliding window the budget is defined over.
pub const RETRY_BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// The width of one counting bucket.
const BUCKET: Duration = Duration::from_millis(500);
/// Buckets per window.
const BUCKETS_PER_WINDOW: u64 = 20;
/// Buckets kept: a whole window plus the bucket being filled.
const SLOTS: usize = BUCKETS_PER_WINDOW as usize + 1;
/// `ratio` is kept in millionths, so admission is exact integer arithmetic.
const RATIO_SCALE: u64 = 1_000_000;

/// Counts of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// Which bucket (counted from the budget's origin) these counts belong to.
    index: u64,
    first_attempts: u64,
    retries: u64,
}

/// A retry budget: records first attempts and admits or refuses retries. See the module
/// docs for the guarantee.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    ratio_millionths: u64,
    /// `min_per_second` × the window in seconds.
    floor: u64,
    /// The instant bucket 0 starts at: the first `now` the budget saw.
    origin: Option<Instant>,
    /// The highest bucket index seen so far.
    latest: u64,
    slots: [Bucket; SLOTS],
    /// Retries refused since the budget was made (or taken over on reload).
    refused: u64,
}

/// What a retry budget allows right now, for `/v1/status` (spec §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetStatus {
    /// First attempts counted in the window.
    pub first_attempts: u64,
    /// Retries counted in the window.
    pub retries: u64,
    /// Retries the window allows in all (`ratio` × first attempts + the floor).
    pub allowed: u64,
    /// Retries refused since the budget was made.
    pub refused: u64,
}

impl BudgetStatus {
    /// Retries that would still be admitted now.
    pub fn headroom(&self) -> u64 {
        self.allowed.saturating_sub(self.retries)
    }
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per first attempt plus `min_per_second`.
    /// A negative or non-finite ratio counts as 0.
    pub fn new(ratio: f64, min_per_second: u32) -> RetryBudget {
        let ratio = if ratio.is_finite() && ratio > 0.0 {
            ratio
        } else {
            0.0
        };
        RetryBudget {
            ratio_millionths: (ratio * RATIO_SCALE as f64).floor() as u64,
            floor: u64::from(min_per_second) * RETRY_BUDGET_WINDOW.as_secs(),
            origin: None,
            latest: 0,
            slots: [Bucket::default(); SLOTS],
            refused: 0,
        }
    }

    /// This budget's settings with `old`'s counts: what a reload does when an entry's
    /// budget settings changed, so neither its window nor its refusal count starts over.
    pub fn continuing(mut self, old: &RetryBudget) -> RetryBudget {
        self.origin = old.origin;
        self.latest = old.latest;
        self.slots = old.slots;
        self.refused = old.refused;
        self
    }

    /// The window's counts and what it allows at `now`.
    pub fn status(&self, now: Instant) -> BudgetStatus {
        let (first_attempts, retries) = self.window(now);
        let allowed = (self.ratio_millionths.saturating_mul(first_attempts) / RATIO_SCALE)
            .saturating_add(self.floor);
        BudgetStatus {
            first_attempts,
            retries,
            allowed,
            refused: self.refused,
        }
    }

    /// Whether `other` admits retries by the same rule (ratio and floor).
    pub fn same_settings(&self, other: &RetryBudget) -> bool {
        self.ratio_millionths == other.ratio_millionths && self.floor == other.floor
    }

    /// The budget the settings describe, or `None` when they switch budgeting off.
    pub fn from_settings(settings: &RetryBudgetSettings) -> Option<RetryBudget> {
        settings
            .enabled
            .then(|| RetryBudget::new(settings.ratio, settings.min_per_second))
    }

    /// Counts one first attempt (the first upstream call of a request). Call it when the
    /// attempt is sent.
    pub fn record_first_attempt(&mut self, now: Instant) {
        self.bucket_mut(now).first_attempts += 1;
    }

    /// Whether one more retry fits the budget at `now`; when it does, it is counted.
    /// Call it once per retry, when the retry is decided; a refused retry must not be made.
    #[must_use = "a refused retry must not be made"]
    pub fn try_retry(&mut self, now: Instant) -> bool {
        let (first_attempts, retries) = self.window(now);
        let allowed = self.ratio_millionths.saturating_mul(first_attempts)
            + self.floor.saturating_mul(RATIO_SCALE);
        let wanted = (retries + 1).saturating_mul(RATIO_SCALE);
        if wanted > allowed {
            self.refused += 1;
            return false;
        }
        self.bucket_mut(now).retries += 1;
        true
    }

    /// The first attempts and retries the budget counts at `now`: first attempts of the
    /// buckets wholly inside the last window, retries of every bucket overlapping it.
    pub fn window(&self, now: Instant) -> (u64, u64) {
        let current = self.index_of(now).max(self.latest);
        let mut first_attempts = 0;
        let mut retries = 0;
        for b in &self.slots {
            let age = current.saturating_sub(b.index);
            if b.index > current {
                continue;
            }
            if age < BUCKETS_PER_WINDOW {
                first_attempts += b.first_attempts;
            }
            if age <= BUCKETS_PER_WINDOW {
                retries += b.retries;
            }
        }
        (first_attempts, retries)
    }

    /// The bucket index of `now`. A `now` before the origin counts as the origin.
    fn index_of(&self, now: Instant) -> u64 {
        let Some(origin) = self.origin else {
            return 0;
        };
        let since = now.saturating_duration_since(origin);
        (since.as_nanos() / BUCKET.as_nanos()) as u64
    }

    /// The bucket `now` falls in, cleared if its slot still holds an older bucket. A
    /// `now` earlier than one already seen (clock readings from several threads) counts
    /// in the latest bucket, which only makes the budget stricter for that retry.
    fn bucket_mut(&mut self, now: Instant) -> &mut Bucket {
        if self.origin.is_none() {
            self.origin = Some(now);
        }
        let index = self.index_of(now).max(self.latest);
        self.latest = index;
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Bucket {
                index,
                ..Bucket::default()
            };
        }
        slot
    }
}

/// A [`RetryBudget`] shared by the requests it counts. Cloning shares it.
#[derive(Debug, Clone)]
pub struct SharedRetryBudget(Arc<Mutex<RetryBudget>>);

impl SharedRetryBudget {
    /// Shares `budget`.
    pub fn new(budget: RetryBudget) -> Self {
        SharedRetryBudget(Arc::new(Mutex::new(budget)))
    }

    /// Locks the budget. A panic in another holder never poisons it for good: a
    /// half-finished update leaves counts that are at worst one off.
    pub fn lock(&self) -> MutexGuard<'_, RetryBudget> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_constant() {
        // A fixed array of buckets, whatever the traffic (the traffic half of this test,
        // which needs a clock origin, is in core/tests/retry_budget.rs).
        let b = RetryBudget::new(0.2, 10);
        assert_eq!(
            std::mem::size_of_val(&b.slots),
            SLOTS * std::mem::size_of::<Bucket>()
        );
    }
}
