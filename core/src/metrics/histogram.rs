//! A fixed-bucket latency histogram: what one shard counts, merged at scrape.

use std::time::Duration;

/// Upper bounds of the buckets, in seconds: LLM answers take from milliseconds (a cached
/// or refused request) to minutes (a long stream), so the buckets reach the default
/// listener timeout of 300 s.
pub const BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Counts per bucket (not cumulative; the last slot is `+Inf`), their sum and count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; BUCKETS.len() + 1],
    sum_nanos: u128,
    count: u64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum_nanos += d.as_nanos();
        self.count += 1;
    }

    /// Adds `other`'s counts (merging shards).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.sum_nanos += other.sum_nanos;
        self.count += other.count;
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }

    /// `(upper bound, count)` per bucket, `+Inf` last, each counting only its own range:
    /// what `prometheus-client` encodes (it adds them up into the cumulative `le` series).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| (BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), *c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_observation_lands_in_its_own_bucket() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(400));
        h.observe(Duration::from_secs(400));
        let b = h.buckets();
        assert_eq!(b[0], (0.005, 1));
        assert_eq!(b[6], (0.5, 1));
        assert_eq!(b.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(b.iter().map(|(_, c)| c).sum::<u64>(), 3);
        assert_eq!(h.count(), 3);
        assert!((h.sum_seconds() - 400.403).abs() < 1e-9);
    }
}
