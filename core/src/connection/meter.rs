//! What the connection driver records about each request it answers with the retry
//! machine: the request in flight (and its open stream), when its response head went
//! out, and at its end the summary's attempts, into the worker's metrics shard.

use std::sync::Arc;
use std::time::Instant;

use crate::machine::{RetryMachine, Summary};
use crate::metrics::labels::{error_class, outcome, recovery_outcome};
use crate::metrics::{ApiLabel, AttemptFacts, Finished, InFlight, MetricsShard};

/// One machine-answered request's metrics, from dispatch to `Finish`.
#[derive(Debug)]
pub(crate) struct RequestMeter {
    shard: Arc<MetricsShard>,
    in_flight: InFlight,
    api: ApiLabel,
    started: Instant,
    committed_at: Option<Instant>,
}

impl RequestMeter {
    /// Starts counting a request that arrived at `started` on `target`.
    pub(crate) fn start(shard: Arc<MetricsShard>, target: &str, started: Instant) -> RequestMeter {
        RequestMeter {
            in_flight: InFlight::start(Arc::clone(&shard)),
            shard,
            api: ApiLabel::of_path(target),
            started,
            committed_at: None,
        }
    }

    /// The response head went out at `now` (`streaming`: a stream's commit point).
    pub(crate) fn head_written(&mut self, now: Instant, streaming: bool) {
        self.committed_at.get_or_insert(now);
        if streaming {
            self.in_flight.stream_opened();
        }
    }

    /// The machine finished at `now` with `summary`: counts the request and its attempts
    /// (labelled through `machine`'s targets, the gateway it ran on).
    pub(crate) fn finish(self, now: Instant, summary: &Summary, machine: &RetryMachine) {
        let targets = machine.targets();
        let attempts: Vec<AttemptFacts> = summary
            .records
            .iter()
            .map(|r| AttemptFacts {
                target: r.target,
                slot: targets.metric_slot(r.target),
                error_type: error_class(r),
            })
            .collect();
        let model = summary
            .target
            .map_or(crate::metrics::Slot::NONE, |t| targets.metric_slot(t));
        self.shard.record_finished(&Finished {
            api: self.api,
            model,
            primary: targets.metric_slot(summary.primary),
            status: summary.status,
            outcome: outcome(summary.outcome),
            commit: self
                .committed_at
                .map(|t| t.saturating_duration_since(self.started)),
            total: now.saturating_duration_since(self.started),
            attempts: &attempts,
            recovery: summary.recovery.as_ref().map(recovery_outcome),
        });
    }
}
