//! Anthropic message → OpenAI `chat.completion`, through the shared model.

use bytes::Bytes;

use crate::apis::{chat, messages, TranslateError};

/// Anthropic Messages response body → OpenAI `chat.completion` body, reported as `model`:
/// [`messages::decode_response`] then [`chat::encode_response`] (their docs list what is
/// carried over). Thinking blocks are dropped; `id` is `chatcmpl-` + Anthropic's id
/// (`chatcmpl-anthropic` without one).
pub fn translate_response(anthropic_body: &[u8], model: &str) -> Result<Bytes, TranslateError> {
    let resp = messages::decode_response(anthropic_body)?;
    Ok(chat::encode_response(&resp, model))
}
