//! switchback-core: the sans-IO heart of the switchback LLM gateway.
//!
//! Nothing in this crate opens a socket, reads a clock, sleeps or draws global
//! randomness: time is always an argument, randomness comes from a seed, and
//! every decision is returned as a value for a runtime to carry out.

pub mod config;
pub mod pushback;
pub mod request_body;
pub mod sse;
pub mod upstream;
