//! End-to-end test support for switchback: a scriptable mock upstream, a small raw
//! HTTP client, shared fixtures and a uniform way to start a gateway on either runtime.
//! The scenario tables live in `tests/scenarios/` and `tests/providers/`, expanded
//! by [`scenarios!`] from [`table`].

pub mod client;
pub mod fixtures;
pub mod gateway;
pub mod mock_upstream;
pub mod redis;
pub mod table;
pub mod tls;
pub mod tools;
