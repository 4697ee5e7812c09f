//! Anthropic Messages: request, response and stream, to and from the internal model.

pub mod request_encode;

pub use request_encode::encode as encode_request;
