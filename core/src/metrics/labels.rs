//! The label values of the metric families: each a small closed set, or a name from the
//! config, so a scrape's series stay bounded whatever clients and upstreams send.

use crate::machine::{AttemptRecord, Outcome, UNTRANSLATABLE_REQUEST};
use crate::recovery::RecoverySummary;

/// The client API a request path belongs to (spec §9): the `api` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiLabel {
    ChatCompletions,
    Messages,
    CountTokens,
    Responses,
    Embeddings,
    /// Every other path: health checks, `/v1/models`, `/metrics`, unknown paths, and
    /// requests refused before their path was read.
    Other,
}

impl ApiLabel {
    /// The API of a request target (its query, if any, is ignored).
    pub fn of_path(target: &str) -> ApiLabel {
        match target.split('?').next().unwrap_or("") {
            "/v1/chat/completions" => ApiLabel::ChatCompletions,
            "/v1/messages" => ApiLabel::Messages,
            "/v1/messages/count_tokens" => ApiLabel::CountTokens,
            "/v1/responses" => ApiLabel::Responses,
            "/v1/embeddings" => ApiLabel::Embeddings,
            _ => ApiLabel::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ApiLabel::ChatCompletions => "chat_completions",
            ApiLabel::Messages => "messages",
            ApiLabel::CountTokens => "count_tokens",
            ApiLabel::Responses => "responses",
            ApiLabel::Embeddings => "embeddings",
            ApiLabel::Other => "other",
        }
    }
}

/// The `status_class` label: `2xx` ... `5xx`, or `none` when the client got no response
/// head (it left first).
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// The `outcome` label of a request the retry machine answered.
pub fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failed => "failed",
        Outcome::StreamAborted => "stream_aborted",
        Outcome::Cancelled => "cancelled",
    }
}

/// The `outcome` label of a stream recovery (spec §12): `completed` (a continuation
/// finished the answer), `failed` (continuations ran, none finished it) or
/// `not_continued` (none could be asked: no candidate, or the stream could not be
/// continued).
pub fn recovery_outcome(r: &RecoverySummary) -> &'static str {
    if r.completed {
        "completed"
    } else if r.continuations() == 0 {
        "not_continued"
    } else {
        "failed"
    }
}

/// The `outcome` of a request the gateway answered itself (health checks, bad requests):
/// `success` below 400, `failed` otherwise.
pub fn immediate_outcome(status: u16) -> &'static str {
    if status < 400 {
        "success"
    } else {
        "failed"
    }
}

/// The upstream statuses counted under their own `error_type`: the ones the retry rules
/// retry by default (spec §4.1). Others are counted by class.
const OWN_STATUSES: [(u16, &str); 7] = [
    (408, "http_408"),
    (429, "http_429"),
    (500, "http_500"),
    (502, "http_502"),
    (503, "http_503"),
    (504, "http_504"),
    (529, "http_529"),
];

/// The `error_type` label of an attempt: its record's `error_type` folded into a closed
/// set (timeouts lose their duration, uncommon statuses their digits).
pub fn error_class(r: &AttemptRecord) -> &'static str {
    if let Some((_, name)) = OWN_STATUSES
        .iter()
        .find(|(s, _)| Some(*s) == r.status && r.error_type.starts_with("http_"))
    {
        return name;
    }
    match r.error_type.as_str() {
        "ok" => "ok",
        // A continuation abandoned because the gateway stopped is the gateway's leaving,
        // as for any attempt the gateway stops.
        "cancelled" | "abandoned" => "cancelled",
        // A committed stream's failure, and a continuation that ended early.
        "stream_aborted" | "stream_truncated" => "stream_aborted",
        // A continuation whose text could not be used (spec §12).
        "restarted" | "refusal" | "tool_call" | "no_content" | "untranslatable" => {
            "unusable_continuation"
        }
        // No call was made: the target cannot express the request.
        UNTRANSLATABLE_REQUEST => UNTRANSLATABLE_REQUEST,
        "connect_error" => "connect_error",
        "invalid_response" => "invalid_response",
        "stream_error" => "stream_error",
        t if t.starts_with("timeout") => "timeout",
        t if t.starts_with("http_4") => "http_4xx",
        t if t.starts_with("http_5") => "http_5xx",
        t if t.starts_with("http_") => "http_other",
        _ => "other",
    }
}

/// Every `error_type` value, for the documentation test.
pub const ERROR_CLASSES: [&str; 19] = [
    "ok",
    "cancelled",
    "stream_aborted",
    "unusable_continuation",
    UNTRANSLATABLE_REQUEST,
    "connect_error",
    "invalid_response",
    "stream_error",
    "timeout",
    "http_408",
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_529",
    "http_4xx",
    "http_5xx",
    "http_other",
];
