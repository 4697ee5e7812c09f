//! switchback-core: the sans-IO heart of the switchback LLM gateway.
//!
//! Nothing in this crate opens a socket, reads a clock, sleeps or draws global
//! randomness: time is always an argument, randomness comes from a seed, and
//! every decision is returned as a value for a runtime to carry out.

pub mod anthropic;
pub mod apis;
pub mod backoff;
pub mod block_table;
pub mod body_memory;
mod chunked;
pub mod classify;
pub mod config;
pub mod connection;
pub mod errors;
pub mod failure_blocks;
pub mod gateway;
mod head_fields;
pub mod key_cap;
pub mod machine;
pub mod metrics;
pub mod mock;
pub mod provider;
pub mod pushback;
pub mod recovery;
pub mod reload;
pub mod request_body;
pub mod response;
pub mod retry_budget;
pub mod routing;
pub mod secrets;
pub mod server;
pub mod shared_state;
pub mod sim;
pub mod sse;
pub mod status;
pub mod trace;
pub mod upstream;
