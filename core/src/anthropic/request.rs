//! OpenAI chat request → Anthropic Messages request, through the shared model.

use bytes::Bytes;

use crate::apis::{chat, messages, Target, TranslateError, UpstreamApi};

/// OpenAI chat request body → Anthropic Messages request body for `model_id` (the part after the
/// provider prefix). `max_tokens` is required by Anthropic: the client's `max_completion_tokens`
/// or `max_tokens` (in that order), else `default_max_tokens`.
///
/// The body is decoded by [`chat::decode_request`] and encoded by
/// [`messages::encode_request`]; their docs list what is kept, mapped, dropped and rejected
/// (and [`DROPPED_FIELDS`](super::DROPPED_FIELDS) the fields with no Anthropic equivalent).
pub fn translate_request(
    openai_body: &[u8],
    model_id: &str,
    default_max_tokens: u32,
) -> Result<Bytes, TranslateError> {
    let req = chat::decode_request(openai_body, UpstreamApi::Messages.label())?;
    let target = Target {
        default_max_tokens,
        ..Target::new(model_id)
    };
    messages::encode_request(&req, &target)
}
