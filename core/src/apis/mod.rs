//! The client APIs switchback serves and the upstream APIs it speaks (spec §9), translated
//! through one internal model of a turn ([`model`]), as pure functions and small state
//! machines over bytes.
//!
//! - [`chat`]: OpenAI Chat Completions. [`messages`]: Anthropic Messages.
//!   [`responses`]: OpenAI Responses (stateless). Each has request decode/encode, response
//!   decode/encode, a stream decoder (upstream SSE → [`model::StreamEvent`]s) and a stream
//!   encoder (internal events → that API's exact event grammar).
//! - [`embeddings`] (passthrough only) and [`count_tokens`] (Anthropic's, or a local estimate).
//! - [`ApiRequest`] and [`Translation`]: the facade the retry machine calls per request and per
//!   target: the upstream body and path, the client's success and error bodies, and a
//!   [`StreamTranslator`] that tags each client event with its meaning for the commit rule.
//! - [`errors`]: gateway-made errors and upstream errors in each client API's shape.
//!
//! Nothing here panics on any input, reads a clock or grows memory beyond the input's own
//! size (stream encoders that must repeat the whole answer at the end are capped at
//! [`MAX_ACCUMULATED_BYTES`]). `docs/apis.md` lists what each translation carries over.

pub mod chat;
pub mod count_tokens;
pub mod embeddings;
mod error;
pub mod errors;
pub(crate) mod json;
pub mod messages;
pub mod model;
pub mod responses;
pub mod route;
mod sse_out;
mod sse_raw;
mod stream;
mod translation;

pub use error::TranslateError;
pub use sse_out::{ClientEvent, EventKind};
pub use sse_raw::{FramedEvent, RelayFramer};
pub use stream::{StreamEnd, StreamTranslator};
pub use translation::{upstream_api_for, ApiRequest, RequestInfo, Translation};

/// The most bytes of answer a stream encoder keeps to repeat at the end (Responses'
/// `response.completed` carries the whole output). Past it the stream ends with an error.
pub const MAX_ACCUMULATED_BYTES: usize = 32 * 1024 * 1024;

/// An API a client calls the gateway with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientApi {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl ClientApi {
    /// The API a request path names (its query, if any, ignored), or `None`.
    pub fn from_path(path: &str) -> Option<ClientApi> {
        match path.split('?').next().unwrap_or("") {
            "/v1/chat/completions" => Some(ClientApi::ChatCompletions),
            "/v1/messages" => Some(ClientApi::Messages),
            "/v1/messages/count_tokens" => Some(ClientApi::CountTokens),
            "/v1/responses" => Some(ClientApi::Responses),
            "/v1/embeddings" => Some(ClientApi::Embeddings),
            _ => None,
        }
    }

    /// The path the gateway serves this API on.
    pub fn path(self) -> &'static str {
        match self {
            ClientApi::ChatCompletions => "/v1/chat/completions",
            ClientApi::Messages => "/v1/messages",
            ClientApi::CountTokens => "/v1/messages/count_tokens",
            ClientApi::Responses => "/v1/responses",
            ClientApi::Embeddings => "/v1/embeddings",
        }
    }

    /// Whether clients of this API may ask for a stream.
    pub fn streams(self) -> bool {
        matches!(
            self,
            ClientApi::ChatCompletions | ClientApi::Messages | ClientApi::Responses
        )
    }

    /// Whether gateway-made errors take Anthropic's shape for this API.
    pub fn anthropic_errors(self) -> bool {
        matches!(self, ClientApi::Messages | ClientApi::CountTokens)
    }
}

/// What an upstream target is asked to speak for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamApi {
    /// OpenAI Chat Completions (every OpenAI-compatible server).
    ChatCompletions,
    /// Anthropic Messages.
    Messages,
    /// OpenAI Responses (providers marked `responses: true`).
    Responses,
    /// OpenAI Embeddings.
    Embeddings,
    /// Anthropic token counting.
    CountTokens,
}

impl UpstreamApi {
    /// The provider named in error messages about what this API cannot express.
    pub fn label(self) -> &'static str {
        match self {
            UpstreamApi::Messages | UpstreamApi::CountTokens => "Anthropic",
            UpstreamApi::ChatCompletions | UpstreamApi::Embeddings => "OpenAI Chat Completions",
            UpstreamApi::Responses => "OpenAI Responses",
        }
    }

    /// The endpoint path under the provider's API root (`/v1` by default).
    pub fn endpoint(self) -> &'static str {
        match self {
            UpstreamApi::ChatCompletions => "/chat/completions",
            UpstreamApi::Messages => "/messages",
            UpstreamApi::Responses => "/responses",
            UpstreamApi::Embeddings => "/embeddings",
            UpstreamApi::CountTokens => "/messages/count_tokens",
        }
    }
}

/// Which field an OpenAI Chat target takes its output limit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxTokensField {
    /// `max_tokens`: what every OpenAI-compatible server accepts.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: what OpenAI's own reasoning models require.
    MaxCompletionTokens,
}

/// What tool-call ids a Chat target accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolCallIds {
    /// Any string (OpenAI and most OpenAI-compatible servers).
    #[default]
    AsGiven,
    /// Exactly 9 ASCII letters and digits (Mistral); other ids are rewritten, the same id to
    /// the same 9 characters, so calls and their results still match.
    NineAlphanumeric,
}

/// What an encoder needs to know about the target of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The model id sent upstream (the part of `provider/model` after the prefix).
    pub model_id: &'a str,
    /// `max_tokens` for Anthropic targets when the client set none (Anthropic requires it).
    pub default_max_tokens: u32,
    /// When set, a client's output limit above it is lowered to it.
    pub max_output_tokens: Option<u32>,
    /// Which field Chat targets get the output limit in.
    pub max_tokens_field: MaxTokensField,
    /// Which tool-call ids Chat targets accept.
    pub tool_call_ids: ToolCallIds,
    /// How the target continues a final assistant message (the entry's `continuation`):
    /// what a translated prefill becomes for a Chat target.
    pub continuation: crate::config::Continuation,
}

impl<'a> Target<'a> {
    /// A target with the defaults: Anthropic's 4096 default, no cap, `max_tokens`.
    pub fn new(model_id: &'a str) -> Self {
        Target {
            model_id,
            default_max_tokens: crate::anthropic::DEFAULT_MAX_TOKENS,
            max_output_tokens: None,
            max_tokens_field: MaxTokensField::MaxTokens,
            tool_call_ids: ToolCallIds::AsGiven,
            continuation: crate::config::Continuation::None,
        }
    }

    /// The target for a provider entry: its model id, its `default_max_tokens`, its
    /// `max_output_tokens` cap, and
    /// `max_completion_tokens` for OpenAI's own API and Azure OpenAI (which accept it for
    /// every model, and whose reasoning models reject `max_tokens`), `max_tokens` for every
    /// other OpenAI-compatible server; Mistral's 9-character tool-call ids for `mistral`;
    /// the entry's `continuation` style.
    pub fn for_provider(provider: &'a crate::config::Provider) -> Self {
        let official = provider.interface == crate::config::Interface::AzureOpenAi
            || (provider.prefix() == "openai" && provider.base_url.is_none());
        Target {
            model_id: provider.model_id(),
            default_max_tokens: provider.default_max_tokens,
            max_output_tokens: provider.max_output_tokens,
            max_tokens_field: if official {
                MaxTokensField::MaxCompletionTokens
            } else {
                MaxTokensField::MaxTokens
            },
            tool_call_ids: if provider.prefix() == "mistral" {
                ToolCallIds::NineAlphanumeric
            } else {
                ToolCallIds::AsGiven
            },
            continuation: provider.continuation,
        }
    }

    /// `n`, lowered to `max_output_tokens` when that is set.
    pub fn cap_max_tokens(&self, n: u64) -> u64 {
        match self.max_output_tokens {
            Some(cap) => n.min(u64::from(cap)),
            None => n,
        }
    }
}
