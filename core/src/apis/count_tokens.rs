//! Anthropic token counting (`POST /v1/messages/count_tokens`, spec §9).
//!
//! When the model resolves to an Anthropic-interface provider, the request goes there
//! (the body with only `model` replaced, to `/v1/messages/count_tokens`). For any other
//! target no upstream can count Anthropic's way, so the gateway answers itself with
//! [`local_response`]: `{"input_tokens": N}` and the header
//! [`ESTIMATE_HEADER`]`: estimated`.
//!
//! # The estimate
//!
//! Claude's tokenizer is not public, so the count is a heuristic over the request's text,
//! made to lean high (a client that compacts its context at a threshold should compact
//! early rather than overflow):
//!
//! - Text is split into runs: a run of ASCII letters costs one token per started 4 letters;
//!   a run of digits one per started 3 digits; a whitespace run other than a single space
//!   one token; each ASCII punctuation or symbol one token; each CJK character (Han, kana,
//!   Hangul) one token; a run of other letters (Cyrillic, Greek, accented Latin, ...) one per
//!   started 2 letters; any other character (emoji, symbols) two tokens.
//! - Each message costs 4 tokens more, the request 8; tools cost their name, description and
//!   JSON schema as text plus 8 each, and 350 for the tool-use system prompt Anthropic adds
//!   when tools are present; a tool call costs its name and arguments; an image 1600 tokens
//!   (Anthropic's cost for an image at its largest size before downscaling); a base64
//!   document one token per 32 base64 characters (about one page image and its text per
//!   70 KB of PDF).
//!
//! Its error has not been measured against Claude's tokenizer (which cannot be run here); it
//! is an estimate and the response header says so.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::json;

use super::model::{Part, Request, Source, ToolOutput};
use super::{messages, TranslateError};
use crate::response::ClientResponse;

/// The response header a locally estimated count carries (value `estimated`).
pub const ESTIMATE_HEADER: HeaderName = HeaderName::from_static("x-switchback-token-count");

/// Tokens Anthropic adds for the tool-use system prompt when a request has tools.
const TOOL_PROMPT_TOKENS: u64 = 350;
/// Tokens counted for one image.
const IMAGE_TOKENS: u64 = 1600;

/// Estimated tokens of `text` (the rules in the module docs).
pub fn estimate_text(text: &str) -> u64 {
    #[derive(PartialEq, Clone, Copy)]
    enum Run {
        None,
        Letters,
        Digits,
        Space,
        Other,
    }
    let mut tokens = 0u64;
    let mut run = Run::None;
    let mut len = 0u64;
    let flush = |run: Run, len: u64| -> u64 {
        match run {
            Run::Letters => len.div_ceil(4),
            Run::Digits => len.div_ceil(3),
            Run::Space => u64::from(len > 1),
            Run::Other => len.div_ceil(2),
            Run::None => 0,
        }
    };
    for c in text.chars() {
        let kind = if c.is_ascii_alphabetic() {
            Run::Letters
        } else if c.is_ascii_digit() {
            Run::Digits
        } else if c.is_whitespace() {
            Run::Space
        } else if c.is_alphabetic() && !is_cjk(c) {
            Run::Other
        } else {
            Run::None
        };
        if kind != run {
            tokens = tokens.saturating_add(flush(run, len));
            run = kind;
            len = 0;
        }
        if kind == Run::None {
            tokens = tokens.saturating_add(if c.is_ascii() || is_cjk(c) { 1 } else { 2 });
        } else {
            len += 1;
        }
    }
    tokens.saturating_add(flush(run, len))
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff | 0x20000..=0x2fa1f)
}

fn estimate_part(part: &Part) -> u64 {
    match part {
        Part::Text { text, .. } | Part::Refusal(text) => estimate_text(text),
        Part::Thinking { text, .. } => estimate_text(text),
        Part::Image { .. } => IMAGE_TOKENS,
        Part::Document { source, .. } => match source {
            Source::Base64 { data, .. } => (data.len() as u64).div_ceil(32),
            Source::Text(text) => estimate_text(text),
            Source::Url(_) | Source::FileId(_) => IMAGE_TOKENS,
        },
        Part::ToolCall {
            name, arguments, ..
        } => estimate_text(name)
            .saturating_add(estimate_text(arguments))
            .saturating_add(4),
        Part::ToolResult { output, .. } => match output {
            ToolOutput::Text(s) => estimate_text(s).saturating_add(4),
            ToolOutput::Parts(parts) => parts
                .iter()
                .map(estimate_part)
                .fold(4u64, u64::saturating_add),
        },
    }
}

/// Estimated input tokens of a request (the rules in the module docs).
pub fn estimate(req: &Request) -> u64 {
    let mut tokens = 8u64;
    for m in &req.messages {
        tokens = m
            .parts
            .iter()
            .map(estimate_part)
            .fold(tokens.saturating_add(4), u64::saturating_add);
    }
    if !req.tools.is_empty() {
        tokens = tokens.saturating_add(TOOL_PROMPT_TOKENS);
    }
    for t in &req.tools {
        let schema = t
            .parameters
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        tokens = tokens
            .saturating_add(estimate_text(&t.name))
            .saturating_add(estimate_text(t.description.as_deref().unwrap_or_default()))
            .saturating_add(estimate_text(&schema))
            .saturating_add(8);
    }
    tokens
}

/// The gateway's own answer to a count_tokens request whose target is not Anthropic:
/// 200 `{"input_tokens": N}` with [`ESTIMATE_HEADER`]`: estimated`, or the 400 (Anthropic's
/// shape) for a body that is not a valid Messages request.
pub fn local_response(body: &[u8]) -> ClientResponse {
    match messages::request::decode(body, "the local token counter") {
        Ok(req) => {
            let mut r = ClientResponse::json(Bytes::from(
                json!({ "input_tokens": estimate(&req) }).to_string(),
            ));
            r.headers
                .insert(ESTIMATE_HEADER, HeaderValue::from_static("estimated"));
            r
        }
        Err(e) => invalid(&e),
    }
}

fn invalid(e: &TranslateError) -> ClientResponse {
    let mut r = ClientResponse::json(Bytes::from(
        json!({ "type": "error", "error": { "type": "invalid_request_error", "message": e.to_string(), "code": e.code() } })
            .to_string(),
    ));
    r.status = StatusCode::BAD_REQUEST;
    r
}
