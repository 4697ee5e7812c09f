//! End-to-end test support for switchback: a scriptable mock upstream, a small raw
//! HTTP client, shared fixtures and a uniform way to start a gateway on either runtime.
//! The scenario table lives in `tests/scenarios.rs`.

pub mod client;
pub mod fixtures;
pub mod gateway;
pub mod mock_upstream;
