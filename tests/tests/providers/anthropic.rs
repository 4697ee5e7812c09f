//! Fixtures: Anthropic's documented shapes (shared with core's translation tests)

/// A Messages response: a thinking block, then two text blocks.
pub(crate) const MESSAGE_TEXT: &str =
    include_str!("../../../core/tests/fixtures/anthropic/response/text.anthropic.json");
/// The text of [`MESSAGE_TEXT`].
pub(crate) const MESSAGE_TEXT_CONTENT: &str = "Hi! My name is Claude. How can I help?";
/// A Messages stream: thinking, text, a `ping`, two `tool_use` blocks whose input arrives
/// as `input_json_delta` fragments, `message_delta` with usage, `message_stop`.
pub(crate) const STREAM_TOOL_CALL: &str =
    include_str!("../../../core/tests/fixtures/anthropic/stream/tool_call.sse");
pub(crate) const OVERLOADED: &str =
    include_str!("../../../core/tests/fixtures/anthropic/error/overloaded.anthropic.json");
/// A Messages stream with an `error` event after some text.
pub(crate) const STREAM_ERROR_MID: &str =
    include_str!("../../../core/tests/fixtures/anthropic/stream/error_mid_stream.sse");
pub(crate) const INVALID_REQUEST: &str =
    include_str!("../../../core/tests/fixtures/anthropic/error/invalid_request.anthropic.json");

pub(crate) const OPENAI: &str = "openai/gpt-4o";
pub(crate) const CLAUDE: &str = "anthropic/claude-sonnet-4-5";
