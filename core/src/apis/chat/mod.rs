//! OpenAI Chat Completions: request, response and stream, to and from the internal model.

pub mod request;

pub use request::decode as decode_request;
