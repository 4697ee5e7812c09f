//! Observability end to end (spec §13), every scenario on each runtime: `/metrics` after
//! a failover (and checked by `promtool`, and scraped by a real Prometheus server),
//! `/v1/status`, the admin listener, live reload (valid, refused, mid-stream), and the
//! OTLP spans of a failover (over HTTP and gRPC, decoded with the official types).

#![cfg_attr(
    not(any(feature = "smol", feature = "tokio")),
    allow(dead_code, unused_imports)
)]

mod harness;
mod otlp;
mod prometheus;
mod reload;
mod surface;
mod traces;

use prometheus::{prometheus_scrapes_a_failover_counter, promtool_accepts_the_exposition};
use reload::{
    reload_keeps_blocks_and_counters, reload_mid_stream_finishes_on_the_old_config,
    reload_reaches_kept_alive_connections, reload_refuses_a_listener_change,
};
use surface::{admin_port_serves_metrics_off_the_model_listener, metrics_after_a_failover};
use switchback_tests::scenarios;
use traces::{
    a_collector_that_is_down_drops_and_counts, traces_of_a_failover_over_otlp_grpc,
    traces_of_a_failover_over_otlp_http,
};

scenarios! {
    metrics_after_a_failover,
    admin_port_serves_metrics_off_the_model_listener,
    promtool_accepts_the_exposition,
    prometheus_scrapes_a_failover_counter,
    reload_keeps_blocks_and_counters,
    reload_refuses_a_listener_change,
    reload_reaches_kept_alive_connections,
    reload_mid_stream_finishes_on_the_old_config,
    traces_of_a_failover_over_otlp_http,
    traces_of_a_failover_over_otlp_grpc,
    a_collector_that_is_down_drops_and_counts,
}
