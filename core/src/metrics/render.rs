//! The scrape: every shard merged, the block table and retry budgets read, and the whole
//! rendered in the Prometheus text format (0.0.4) by `prometheus-client`.

use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Counts, Histogram, Slot};
use crate::gateway::Gateway;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

type Labels = Vec<(&'static str, String)>;

/// One family, ready to encode.
#[derive(Debug)]
enum Family {
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, i64)>),
    Histogram(Vec<(Labels, Histogram)>),
}

/// What one scrape shows: owned values, encoded by `prometheus-client`.
#[derive(Debug)]
struct Snapshot {
    families: Vec<(&'static str, &'static str, Family)>,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, family) in &self.families {
            let kind = match family {
                Family::Counter(_) => MetricType::Counter,
                Family::Gauge(_) => MetricType::Gauge,
                Family::Histogram(_) => MetricType::Histogram,
            };
            // The encoder adds `_total` to a counter's name itself.
            let name = name.strip_suffix("_total").unwrap_or(name);
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            match family {
                Family::Counter(rows) => {
                    for (labels, v) in rows {
                        ConstCounter::new(*v).encode(metric.encode_family(labels)?)?;
                    }
                }
                Family::Gauge(rows) => {
                    for (labels, v) in rows {
                        ConstGauge::new(*v).encode(metric.encode_family(labels)?)?;
                    }
                }
                Family::Histogram(rows) => {
                    for (labels, h) in rows {
                        metric
                            .encode_family(labels)?
                            .encode_histogram::<NoLabelSet>(
                                h.sum_seconds(),
                                h.count(),
                                &h.buckets(),
                                None,
                            )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The text of `GET /metrics` for `gw` at `now`. The metric set is documented in
/// `docs/operations.md`; a test holds the two together.
pub fn render(gw: &Gateway, now: Instant) -> String {
    let metrics = gw.metrics();
    let counts = metrics.merged();
    let names = metrics.names();
    let name = |s: Slot| {
        names
            .get(s.0 as usize)
            .cloned()
            .unwrap_or_else(|| "none".to_owned())
    };
    let mut families = Vec::new();
    families.extend(request_families(&counts, &name));
    families.extend(state_families(gw, now));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot { families }));
    let mut out = String::new();
    // Writing into a String cannot fail; an error would only mean an encoder bug.
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

fn request_families(
    c: &Counts,
    name: &dyn Fn(Slot) -> String,
) -> Vec<(&'static str, &'static str, Family)> {
    let requests = c
        .requests
        .iter()
        .map(|(k, v)| {
            let labels = vec![
                ("api", k.api.as_str().to_owned()),
                ("model", name(k.model)),
                ("status_class", k.status_class.to_owned()),
                ("outcome", k.outcome.to_owned()),
            ];
            (labels, *v)
        })
        .collect();
    let attempts = c
        .attempts
        .iter()
        .map(|((slot, e), v)| {
            (
                vec![("provider", name(*slot)), ("error_type", (*e).to_owned())],
                *v,
            )
        })
        .collect();
    let retries = c
        .retries
        .iter()
        .map(|(slot, v)| (vec![("model", name(*slot))], *v))
        .collect();
    let failovers = c
        .failovers
        .iter()
        .map(|((from, to), v)| (vec![("from", name(*from)), ("to", name(*to))], *v))
        .collect();
    let recoveries = c
        .recoveries
        .iter()
        .map(|((slot, o), v)| {
            (
                vec![("model", name(*slot)), ("outcome", (*o).to_owned())],
                *v,
            )
        })
        .collect();
    let hist = |m: &std::collections::BTreeMap<Slot, Histogram>| {
        m.iter()
            .map(|(slot, h)| (vec![("model", name(*slot))], h.clone()))
            .collect()
    };
    vec![
        ("switchback_requests_total", "Client requests finished, by client API, the model that answered (or was tried last), status class and outcome.", Family::Counter(requests)),
        ("switchback_upstream_attempts_total", "Upstream attempts, by provider entry and error_type (ok for the attempt that answered; untranslatable_request for one the gateway refused without a call).", Family::Counter(attempts)),
        ("switchback_retries_total", "Attempts after a request's first, by the model the request was routed to.", Family::Counter(retries)),
        ("switchback_failovers_total", "Retries sent to another provider entry than the attempt before, by the entry failed over from and to.", Family::Counter(failovers)),
        ("switchback_stream_recoveries_total", "Committed streams that failed and were recovered (spec 12), by the model the request was routed to and outcome (completed, failed, not_continued).", Family::Counter(recoveries)),
        ("switchback_time_to_commit_seconds", "Time from a request's arrival to its response head (a stream's first content event), by the model that answered.", Family::Histogram(hist(&c.commit))),
        ("switchback_request_duration_seconds", "Time from a request's arrival to its end, by the model that answered (or was tried last).", Family::Histogram(hist(&c.duration))),
        ("switchback_requests_in_flight", "Requests being answered by the retry machine.", Family::Gauge(vec![(Vec::new(), c.in_flight)])),
        ("switchback_streams_open", "Streamed responses being written to clients.", Family::Gauge(vec![(Vec::new(), c.open_streams)])),
        ("switchback_trace_spans_exported_total", "Spans the OTLP collector accepted.", Family::Counter(vec![(Vec::new(), c.spans_exported)])),
        ("switchback_trace_spans_dropped_total", "Spans dropped: the export queue was full, or the collector could not take them.", Family::Counter(vec![(Vec::new(), c.spans_dropped)])),
        ("switchback_trace_export_failures_total", "OTLP export calls that failed (connect, timeout, an error status).", Family::Counter(vec![(Vec::new(), c.export_failures)])),
    ]
}

fn state_families(gw: &Gateway, now: Instant) -> Vec<(&'static str, &'static str, Family)> {
    let mut blocks: std::collections::BTreeMap<Labels, i64> = std::collections::BTreeMap::new();
    for b in gw.blocks().lock().blocks(now) {
        if b.until.is_none() {
            continue;
        }
        let (model, scope) = gw.block_label(&b.key);
        let labels = vec![
            ("model", model),
            ("scope", scope.to_owned()),
            ("kind", b.kind.as_str().to_owned()),
        ];
        *blocks.entry(labels).or_default() += 1;
    }
    let budgets = gw.budget_statuses(now);
    let rejections = budgets
        .iter()
        .map(|(label, s)| (vec![("budget", label.clone())], s.refused))
        .collect();
    let headroom = budgets
        .iter()
        .map(|(label, s)| (vec![("budget", label.clone())], s.headroom() as i64))
        .collect();
    let reloads = gw.metrics().reloads();
    vec![
        ("switchback_blocks_active", "Blocks in force now, by model (or prefix/* for a provider-wide block), scope and kind.", Family::Gauge(blocks.into_iter().collect())),
        ("switchback_retry_budget_rejections_total", "Retries the retry budget refused, by budget (gateway, or the model of an entry with its own).", Family::Counter(rejections)),
        ("switchback_retry_budget_headroom", "Retries the retry budget would still admit in its current 10 s window.", Family::Gauge(headroom)),
        ("switchback_config_reloads_total", "Config reloads, by result (ok: the new config serves; failed: the old one kept serving).", Family::Counter(vec![
            (vec![("result", "ok".to_owned())], reloads.0),
            (vec![("result", "failed".to_owned())], reloads.1),
        ])),
    ]
}
