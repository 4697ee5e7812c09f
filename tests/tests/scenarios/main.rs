//! The scenario table: every scenario runs over real loopback sockets against each
//! runtime built in (features `smol`, `tokio`), as `smol_<scenario>` and
//! `tokio_<scenario>`. Each scenario scripts its mock upstreams, starts a gateway on an
//! ephemeral port with a config naming the mocks' ports, acts as a client and asserts
//! what the client saw and what each mock received.
//!
//! IT-1 .. IT-13 are the seed suite's scenarios (`../shared/seed/`), with its mocks'
//! HTTP/1.0 framing and its assertions, and its long waits scaled down.
//!
//! The scenarios live in one module per concern (`seed`, `transport`, `streaming`,
//! `rules`, `disconnect`, `surface`, `limits`, `plano`, `storm`, `faults`, `http`, `doors`,
//! `recovery`),
//! on the shared `harness`.

#![cfg_attr(
    not(any(feature = "smol", feature = "tokio")),
    allow(dead_code, unused_imports)
)]

mod disconnect;
mod doors;
mod doors_wire;
mod faults;
mod harness;
mod http;
mod limits;
mod plano;
mod recovery;
mod rules;
mod seed;
mod storm;
mod streaming;
mod surface;
mod transport;

use disconnect::{
    client_gone_during_backoff, client_gone_during_retry_after,
    client_gone_mid_stream_closes_upstream,
};
use doors::{
    doors_count_tokens, doors_cut_after_commit_ends_with_the_apis_error,
    doors_cut_before_commit_fails_over_invisibly, doors_embeddings_429_fails_over,
    doors_error_shapes, doors_messages_429_fails_over_to_anthropic_passthrough,
    doors_messages_529_fails_over_to_openai_stream, doors_messages_tool_use_through_openai,
    doors_responses_429_fails_over_to_chat_stream,
    doors_responses_chat_429_fails_over_to_anthropic,
    doors_same_api_streams_are_relayed_byte_for_byte,
};
use faults::{
    fault_100_continue_before_answer, fault_200_invalid_json, fault_200_text_html,
    fault_204_no_content, fault_301_redirect, fault_all_invalid_json_stream,
    fault_body_memory_full_gets_503, fault_close_before_any_byte, fault_connection_refused,
    fault_content_length_longer_than_body, fault_drip_body, fault_drip_head, fault_drip_stream,
    fault_endless_json_body, fault_endless_sse_line, fault_garbage_status_line,
    fault_one_mib_upstream_head, fault_reset_mid_body, fault_sse_event_over_1_mib_after_commit,
    fault_sse_event_over_1_mib_before_commit, fault_stream_as_string_is_refused,
    fault_unasked_gzip, fault_unreachable_error_names_the_entry_not_the_address,
    fault_unresolvable_host,
};
use http::{
    http_529_passes_through, http_body_idle_timeout_408, http_cl_and_te_400_and_close,
    http_close_reaches_the_client_at_once, http_drain_cuts_stream_with_gateway_shutdown,
    http_early_upstream_answer_413, http_graceful_shutdown_finishes_in_flight,
    http_http10_client_framing, http_listener_port_in_use_names_the_address,
    http_mock_provider_answers, http_oversized_head_431, http_pipelined_requests_in_order,
    http_stale_pooled_connection_resent_once,
};
use limits::{
    all_blocked_answers_at_once, concurrent_requests_are_served_in_parallel,
    listener_deadline_bounds_request, malformed_http_400,
    no_policy_transport_error_is_gateway_error, slow_client_head_times_out,
};
use plano::{
    plano_alias_routes_to_target, plano_exact_beats_wildcard, plano_fallback_through_wildcard,
    plano_http_host_and_endpoint, plano_max_retries_retries_503_same_model,
    plano_wildcard_routes_concrete_model,
};
use recovery::{
    recovery_cut_after_40_words_same_model, recovery_every_candidate_rejects,
    recovery_fallback_rejects_prefill_primary_accepts,
    recovery_openai_client_anthropic_primary_native, recovery_stall_continued_by_the_fallback,
};
use rules::{
    error_code_400_fails_over, passthrough_400_untouched, then_long_retry_after_fails_over_at_once,
    then_short_retry_after_retries_same_model,
};
use seed::{
    it10_timeout_triggers_retry, it11_high_latency_failover, it12_streaming, it13_body_preserved,
    it1_basic_429, it2_503_different_provider, it3_all_exhausted, it4_no_retry_policy,
    it5_max_attempts, it6_backoff_delay, it7_fallback_priority, it8_retry_after_honored,
    it9_retry_after_blocks_selection,
};
use storm::{
    storm_failure_block_recovers_within_one_block, storm_retry_budget_bounds_upstream_load,
};
use streaming::{
    inband_error_before_commit_fails_over, malformed_sse_event_dropped, missing_done_appended,
    stream_cut_after_commit_ends_with_error, stream_cut_before_commit_retried,
    stream_stall_after_commit_ends_with_error,
};
use surface::{
    healthz_models_and_unknown_path, http10_close_delimited_json_and_sse, invalid_json_400,
    oversize_body_413, request_id_echoed_or_generated, success_headers_and_upstream_request,
    unknown_model_404, upstream_connection_reused,
};
use switchback_tests::{scenarios, scenarios_alone};
use transport::{
    connect_refused_fails_over, first_token_timeouts_exhaust, reset_before_headers_fails_over,
    timeout_error_type_names_the_timeout, truncated_json_fails_over,
};

scenarios! {
    it1_basic_429,
    it2_503_different_provider,
    it3_all_exhausted,
    it4_no_retry_policy,
    it5_max_attempts,
    it6_backoff_delay,
    it7_fallback_priority,
    it8_retry_after_honored,
    it9_retry_after_blocks_selection,
    it10_timeout_triggers_retry,
    it11_high_latency_failover,
    it12_streaming,
    it13_body_preserved,
    connect_refused_fails_over,
    reset_before_headers_fails_over,
    truncated_json_fails_over,
    first_token_timeouts_exhaust,
    timeout_error_type_names_the_timeout,
    stream_cut_before_commit_retried,
    stream_cut_after_commit_ends_with_error,
    stream_stall_after_commit_ends_with_error,
    inband_error_before_commit_fails_over,
    malformed_sse_event_dropped,
    missing_done_appended,
    passthrough_400_untouched,
    error_code_400_fails_over,
    then_long_retry_after_fails_over_at_once,
    then_short_retry_after_retries_same_model,
    client_gone_during_backoff,
    client_gone_during_retry_after,
    client_gone_mid_stream_closes_upstream,
    invalid_json_400,
    oversize_body_413,
    unknown_model_404,
    healthz_models_and_unknown_path,
    request_id_echoed_or_generated,
    success_headers_and_upstream_request,
    http10_close_delimited_json_and_sse,
    upstream_connection_reused,
    all_blocked_answers_at_once,
    listener_deadline_bounds_request,
    no_policy_transport_error_is_gateway_error,
    concurrent_requests_are_served_in_parallel,
    slow_client_head_times_out,
    plano_alias_routes_to_target,
    plano_wildcard_routes_concrete_model,
    plano_exact_beats_wildcard,
    plano_max_retries_retries_503_same_model,
    plano_fallback_through_wildcard,
    plano_http_host_and_endpoint,
    malformed_http_400,
    fault_garbage_status_line,
    fault_one_mib_upstream_head,
    fault_endless_json_body,
    fault_endless_sse_line,
    fault_drip_head,
    fault_drip_body,
    fault_drip_stream,
    fault_reset_mid_body,
    fault_content_length_longer_than_body,
    fault_200_invalid_json,
    fault_200_text_html,
    fault_unasked_gzip,
    fault_100_continue_before_answer,
    fault_204_no_content,
    fault_301_redirect,
    fault_close_before_any_byte,
    fault_connection_refused,
    fault_unresolvable_host,
    fault_sse_event_over_1_mib_after_commit,
    fault_sse_event_over_1_mib_before_commit,
    fault_stream_as_string_is_refused,
    fault_all_invalid_json_stream,
    fault_unreachable_error_names_the_entry_not_the_address,
    fault_body_memory_full_gets_503,
    http_pipelined_requests_in_order,
    http_http10_client_framing,
    http_529_passes_through,
    http_body_idle_timeout_408,
    http_cl_and_te_400_and_close,
    http_oversized_head_431,
    http_early_upstream_answer_413,
    http_stale_pooled_connection_resent_once,
    http_drain_cuts_stream_with_gateway_shutdown,
    http_graceful_shutdown_finishes_in_flight,
    http_mock_provider_answers,
    http_listener_port_in_use_names_the_address,
    http_close_reaches_the_client_at_once,
    doors_messages_529_fails_over_to_openai_stream,
    doors_messages_429_fails_over_to_anthropic_passthrough,
    doors_messages_tool_use_through_openai,
    doors_responses_429_fails_over_to_chat_stream,
    doors_responses_chat_429_fails_over_to_anthropic,
    doors_same_api_streams_are_relayed_byte_for_byte,
    doors_embeddings_429_fails_over,
    doors_count_tokens,
    doors_cut_before_commit_fails_over_invisibly,
    doors_cut_after_commit_ends_with_the_apis_error,
    doors_error_shapes,
    recovery_cut_after_40_words_same_model,
    recovery_stall_continued_by_the_fallback,
    recovery_fallback_rejects_prefill_primary_accepts,
    recovery_every_candidate_rejects,
    recovery_openai_client_anthropic_primary_native,
}

scenarios_alone! {
    storm_retry_budget_bounds_upstream_load,
    storm_failure_block_recovers_within_one_block,
}
