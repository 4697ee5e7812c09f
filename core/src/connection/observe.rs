//! The connection's observability hooks (spec §13): which gateway each new request uses
//! after a reload, which listener it arrived on, where its metrics go, and the spans of
//! finished traced requests for the runtime's exporter.

use std::sync::Arc;

use super::Connection;
use crate::gateway::Surface;
use crate::metrics::{ApiLabel, MetricsShard};
use crate::reload::LiveGateway;

impl Connection {
    /// Takes each new request's gateway from `live`, so a reload reaches kept-alive
    /// connections at their next request (spec §13). `version` is the
    /// [`LiveGateway::version`] the gateway given to [`new`](Self::new) is of. Call once,
    /// after `new`.
    pub fn follow(&mut self, live: Arc<LiveGateway>, version: u64) {
        let mut seen = version;
        live.refresh(&mut self.gw, &mut seen);
        self.live = Some((live, seen));
    }

    /// The connection arrived on the admin listener (or a model listener, the default).
    pub fn set_surface(&mut self, surface: Surface) {
        self.surface = surface;
    }

    /// Records this connection's requests in `shard`: a runtime hands every connection of
    /// a worker thread that thread's shard, so no lock is shared across threads.
    pub fn set_metrics_shard(&mut self, shard: Arc<MetricsShard>) {
        self.shard = Some(shard);
    }

    /// The spans of the traced requests that finished since the last call (spec §13);
    /// a runtime queues them for its exporter after each round of `handle_*` calls.
    pub fn take_spans(&mut self) -> Vec<crate::trace::SpanRecord> {
        std::mem::take(&mut self.spans)
    }

    /// Whether finished spans wait for [`take_spans`](Self::take_spans).
    pub fn has_spans(&self) -> bool {
        !self.spans.is_empty()
    }

    /// The shard to record in, when metrics are on.
    pub(super) fn meter_shard(&mut self) -> Option<Arc<MetricsShard>> {
        if !self.gw.metrics_enabled() {
            return None;
        }
        Some(Arc::clone(
            self.shard.get_or_insert_with(|| self.gw.metrics().shard(0)),
        ))
    }

    /// Counts a request the gateway or the codec answered at once.
    pub(super) fn record_immediate(&mut self, target: Option<&str>, status: u16) {
        if let Some(shard) = self.meter_shard() {
            shard.record_immediate(target.map_or(ApiLabel::Other, ApiLabel::of_path), status);
        }
    }
}
