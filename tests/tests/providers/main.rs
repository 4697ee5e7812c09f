//! Provider scenarios over real loopback sockets on each runtime: cross-protocol failover
//! between OpenAI and Anthropic upstreams (the Anthropic mocks answer in the Messages
//! format, JSON and SSE, as Anthropic's documentation shows), Anthropic errors in OpenAI's
//! shape, and HTTPS upstreams trusted through `SWITCHBACK_CA_FILE`.
//!
//! The runtimes read `SWITCHBACK_CA_FILE` when they start, and the variable is
//! process-wide: every scenario here starts its gateway through [`harness::gateway`], which makes
//! this binary's one test CA, writes it to a PEM file and sets the variable before the
//! first gateway starts.
//!
//! The scenarios live in `failover` (cross-protocol) and `https`, on the shared `harness`
//! and the Anthropic fixtures in `anthropic`.

#![cfg_attr(
    not(any(feature = "smol", feature = "tokio")),
    allow(dead_code, unused_imports)
)]

mod anthropic;
mod failover;
mod harness;
mod https;

use failover::{
    anthropic_400_reaches_the_client_in_openai_shape,
    anthropic_529_fails_over_to_openai_with_the_clients_body,
    anthropic_stream_error_after_content_ends_the_stream_with_an_error,
    anthropic_stream_error_before_content_fails_over_to_openai, openai_429_fails_over_to_anthropic,
    openai_429_fails_over_to_anthropic_streaming_with_tool_calls,
};
use https::{https_untrusted_certificates_are_refused, https_upstreams_trusted_through_ca_file};
use switchback_tests::scenarios;

scenarios! {
    openai_429_fails_over_to_anthropic,
    openai_429_fails_over_to_anthropic_streaming_with_tool_calls,
    anthropic_529_fails_over_to_openai_with_the_clients_body,
    anthropic_400_reaches_the_client_in_openai_shape,
    anthropic_stream_error_before_content_fails_over_to_openai,
    anthropic_stream_error_after_content_ends_the_stream_with_an_error,
    https_upstreams_trusted_through_ca_file,
    https_untrusted_certificates_are_refused,
}
