//! Translation between OpenAI Chat Completions (what clients speak) and Anthropic's Messages API
//! (what an `anthropic` provider speaks), as pure functions over bytes: the Chat ↔ Messages pair
//! of [`crate::apis`], through its shared model, kept under the names the machine uses.
//!
//! - [`translate_request`]: an OpenAI chat request body → an Anthropic Messages request body.
//! - [`translate_response`]: an Anthropic message → an OpenAI `chat.completion`.
//! - [`StreamTranslator`]: Anthropic SSE events → OpenAI `chat.completion.chunk`s, one event at a
//!   time.
//! - [`translate_error`] and [`is_spend_limit`]: Anthropic error bodies.
//!
//! Nothing here panics on any input, reads a clock or allocates without bound beyond the input's
//! own size.
//!
//! # Decisions
//!
//! - **`model`** in responses and chunks is the `model` argument the caller passes (the gateway
//!   passes the client-facing `prefix/model-id`), not Anthropic's `model` value, so a client sees
//!   the same name whichever provider served it.
//! - **`id`** is Anthropic's message id prefixed with `chatcmpl-` (`chatcmpl-msg_01...`): unique,
//!   traceable to Anthropic's logs, and shaped like OpenAI's ids. A response without an id gets
//!   `chatcmpl-anthropic`.
//! - **`created`** is always `0`: the core has no clock, and the runtime may overwrite it.
//! - **`finish_reason`**: `end_turn`, `stop_sequence` and `pause_turn` → `stop`; `max_tokens`
//!   and `model_context_window_exceeded` → `length`; `tool_use` → `tool_calls`; `refusal` →
//!   `content_filter`; anything else (or none) → `stop`.
//! - **Usage**: `prompt_tokens` = `input_tokens` + `cache_read_input_tokens` +
//!   `cache_creation_input_tokens` (Anthropic's `input_tokens` excludes cached tokens, OpenAI's
//!   `prompt_tokens` includes them); `completion_tokens` = `output_tokens`; when cache reads are
//!   reported, `prompt_tokens_details.cached_tokens` = `cache_read_input_tokens`.
//! - **Errors** keep Anthropic's error `type` as both OpenAI `type` and `code`, so
//!   `error_codes: [overloaded_error]` in a retry policy matches Anthropic's names.
//! - Request-side decisions (temperature, tool arguments, dropped fields) are documented on
//!   [`translate_request`] and [`DROPPED_FIELDS`].

mod request;
mod response;
mod stream;

pub use crate::apis::messages::{is_spend_limit, translate_error, SPEND_LIMIT_PHRASES};
pub use request::translate_request;
pub use response::translate_response;
pub use stream::{StreamTranslator, Translated};

/// `max_tokens` sent to Anthropic (where it is required) when the client set neither
/// `max_tokens` nor `max_completion_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub use crate::apis::TranslateError;

/// Every top-level OpenAI request field that is not carried over as such to Anthropic, with
/// what happens to it. Fields not listed here and not translated (see [`translate_request`])
/// are dropped too, since Anthropic rejects unknown fields.
pub const DROPPED_FIELDS: &[(&str, &str)] = &[
    (
        "n",
        "1 or absent: dropped; above 1: rejected (Anthropic returns one choice)",
    ),
    (
        "logprobs",
        "false or absent: dropped; true: rejected (Anthropic has no log probabilities)",
    ),
    (
        "top_logprobs",
        "dropped (only meaningful with logprobs, which is rejected)",
    ),
    ("presence_penalty", "dropped (no Anthropic equivalent)"),
    ("frequency_penalty", "dropped (no Anthropic equivalent)"),
    ("logit_bias", "dropped (no Anthropic equivalent)"),
    ("seed", "dropped (Anthropic has no deterministic sampling)"),
    (
        "response_format",
        "`json_schema` becomes `output_config.format`; `json_object` is dropped: Anthropic has \
         no schema-less JSON mode, rejecting it would make every JSON-mode request impossible \
         to fail over, and such prompts normally ask for JSON themselves",
    ),
    (
        "stream_options",
        "dropped: include_usage is honoured by the gateway's stream translation",
    ),
    ("service_tier", "dropped (OpenAI billing tier)"),
    ("store", "dropped (OpenAI stored completions)"),
    (
        "metadata",
        "dropped (OpenAI stored-completion tags; Anthropic's metadata comes from `user`)",
    ),
    ("prediction", "dropped (OpenAI predicted outputs)"),
    (
        "reasoning_effort",
        "dropped (no portable mapping to Anthropic extended thinking)",
    ),
    ("web_search_options", "dropped (OpenAI built-in web search)"),
    (
        "parallel_tool_calls",
        "true or absent: dropped; false: tool_choice.disable_parallel_tool_use",
    ),
    ("user", "becomes metadata.user_id"),
    (
        "temperature",
        "outside Anthropic's range 0..=1: rejected (naming `temperature`)",
    ),
    (
        "max_completion_tokens",
        "becomes max_tokens (preferred over max_tokens)",
    ),
    (
        "stop",
        "becomes stop_sequences (a string becomes a one-element array)",
    ),
    (
        "modalities",
        "[\"text\"] or absent: dropped; any other modality: rejected",
    ),
    ("audio", "rejected (Anthropic has no audio output)"),
    ("functions", "rejected (legacy; use tools)"),
    ("function_call", "rejected (legacy; use tool_choice)"),
];
