//! The facade the retry machine calls: one [`ApiRequest`] per client request, one
//! [`Translation`] per attempt.

use std::cell::OnceCell;
use std::ops::Range;

use bytes::Bytes;

use super::json::parse_response_object;
use super::model::Request;
use super::responses::ToolNames;
use super::stream::StreamTranslator;
use super::{chat, errors, messages, responses, ClientApi, Target, TranslateError, UpstreamApi};
use crate::config::Interface;
use crate::request_body::{self, BodyShape, RequestBodyError};

/// What the gateway reads from a client body before routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The requested model, decoded.
    pub model: String,
    /// Byte range of the top-level `model` value in the body, quotes included.
    pub model_span: Range<usize>,
    /// `"stream": true` (never for embeddings or count_tokens).
    pub stream: bool,
    /// Chat's `stream_options.include_usage: true`.
    pub include_usage: bool,
}

/// The API an attempt uses on a target that speaks `interface` (`serves_responses`: the
/// provider is marked `responses: true`), or `None` when the target cannot serve the client's
/// API at all: embeddings on an Anthropic or mock target, count_tokens on anything but an
/// Anthropic target (answered with a local estimate instead, see [`super::count_tokens`]).
///
/// Chat and Messages clients use Chat Completions on every OpenAI-interface target; Responses
/// clients use Responses where it is served and Chat Completions elsewhere; every
/// generative API uses Messages on Anthropic targets. The built-in mock provider speaks Chat.
pub fn upstream_api_for(
    client: ClientApi,
    interface: Interface,
    serves_responses: bool,
) -> Option<UpstreamApi> {
    let anthropic = interface == Interface::Anthropic;
    match client {
        ClientApi::ChatCompletions | ClientApi::Messages => Some(if anthropic {
            UpstreamApi::Messages
        } else {
            UpstreamApi::ChatCompletions
        }),
        ClientApi::Responses => Some(match (anthropic, serves_responses, interface) {
            (true, _, _) => UpstreamApi::Messages,
            (false, true, Interface::OpenAi) => UpstreamApi::Responses,
            _ => UpstreamApi::ChatCompletions,
        }),
        ClientApi::CountTokens => anthropic.then_some(UpstreamApi::CountTokens),
        ClientApi::Embeddings => matches!(interface, Interface::OpenAi | Interface::AzureOpenAi)
            .then_some(UpstreamApi::Embeddings),
    }
}

/// Whether an upstream API is the client's own (the request and answer pass through).
pub(crate) fn same_api(client: ClientApi, upstream: UpstreamApi) -> bool {
    matches!(
        (client, upstream),
        (ClientApi::ChatCompletions, UpstreamApi::ChatCompletions)
            | (ClientApi::Messages, UpstreamApi::Messages)
            | (ClientApi::CountTokens, UpstreamApi::CountTokens)
            | (ClientApi::Responses, UpstreamApi::Responses)
            | (ClientApi::Embeddings, UpstreamApi::Embeddings)
    )
}

/// A decoded client request, kept for every attempt that needs a translation.
#[derive(Debug, Clone, PartialEq)]
struct DecodedRequest {
    request: Request,
    names: ToolNames,
}

/// One client request, inspected once and translated per target on demand.
#[derive(Debug)]
pub struct ApiRequest {
    api: ClientApi,
    body: Bytes,
    info: RequestInfo,
    /// Decoded the first time an attempt needs a translation (every attempt after reuses it).
    decoded: OnceCell<Result<DecodedRequest, TranslateError>>,
}

impl ApiRequest {
    /// Validates a client body of `api` and reads what routing needs. Call it once per
    /// client request, before any upstream call. Errors are 400s for the client (in its own
    /// shape: [`errors::reshape`]). Promises: never panics; on `Ok` the body is a JSON object
    /// with a string `model` and the API's required field (`messages`, or `input` for
    /// embeddings), and `info.model_span` is the exact range [`Self::upstream_body`] rewrites.
    pub fn inspect(api: ClientApi, body: Bytes) -> Result<ApiRequest, RequestBodyError> {
        let shape = match api {
            ClientApi::ChatCompletions | ClientApi::Messages | ClientApi::CountTokens => {
                BodyShape::Messages
            }
            ClientApi::Responses => BodyShape::OptionalInput,
            ClientApi::Embeddings => BodyShape::RequiredInput,
        };
        let info = request_body::inspect_shape(&body, shape)?;
        let info = RequestInfo {
            model: info.model,
            model_span: info.model_span,
            stream: info.stream && api.streams(),
            include_usage: info.include_usage && api == ClientApi::ChatCompletions,
        };
        Ok(ApiRequest {
            api,
            body,
            info,
            decoded: OnceCell::new(),
        })
    }

    /// The client's API.
    pub fn api(&self) -> ClientApi {
        self.api
    }

    /// What [`Self::inspect`] read.
    pub fn info(&self) -> &RequestInfo {
        &self.info
    }

    /// The client's body as it came.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    fn decoded(&self) -> Result<&DecodedRequest, TranslateError> {
        self.decoded
            .get_or_init(|| {
                let target = "another API";
                match self.api {
                    ClientApi::ChatCompletions => {
                        chat::decode_request(&self.body, target).map(|request| DecodedRequest {
                            request,
                            names: ToolNames::default(),
                        })
                    }
                    ClientApi::Messages | ClientApi::CountTokens => {
                        messages::decode_request(&self.body, target).map(|request| DecodedRequest {
                            request,
                            names: ToolNames::default(),
                        })
                    }
                    ClientApi::Responses => {
                        responses::decode_request(&self.body, target).map(|d| DecodedRequest {
                            request: d.request,
                            names: d.names,
                        })
                    }
                    ClientApi::Embeddings => Err(TranslateError::Unsupported(
                        "embeddings requests cannot be translated to another API".into(),
                    )),
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The client's request in the internal model (decoded once, on first use). For
    /// count_tokens estimates and tests; embeddings have no internal form.
    pub fn request(&self) -> Result<&Request, TranslateError> {
        self.decoded().map(|d| &d.request)
    }

    /// The body to send to `target`, which speaks `upstream` for this attempt.
    ///
    /// When `upstream` is the client's own API, the client's bytes with only `model` replaced
    /// by `target.model_id` (every other byte as sent: [`request_body::rewrite_model`]).
    /// Otherwise the request translated: decoded once per client request, encoded per target
    /// (the encoders' docs and `docs/apis.md` list every rule). `Err` means the request cannot
    /// be expressed for this target: a 400 for the client, like the upstream's own 400 would
    /// be (pass it through unless a rule lists 400), and no upstream call.
    pub fn upstream_body(
        &self,
        upstream: UpstreamApi,
        target: &Target<'_>,
    ) -> Result<Bytes, TranslateError> {
        if same_api(self.api, upstream) {
            return Ok(request_body::rewrite_model(
                &self.body,
                &self.info.model_span,
                target.model_id,
            ));
        }
        let decoded = self.decoded().map_err(|e| relabel(&e, upstream))?;
        match upstream {
            UpstreamApi::Messages => messages::encode_request(&decoded.request, target),
            UpstreamApi::ChatCompletions => chat::encode_request(&decoded.request, target),
            UpstreamApi::Responses => responses::encode_request(&decoded.request, target),
            UpstreamApi::Embeddings | UpstreamApi::CountTokens => {
                Err(TranslateError::Unsupported(format!(
                    "a {} request cannot be sent to the {} endpoint",
                    self.api.path(),
                    upstream.endpoint()
                )))
            }
        }
    }

    /// How to read `upstream`'s answers to this request for the client, reporting `model`
    /// (the client-facing `provider/model` that answered).
    pub fn translation(&self, upstream: UpstreamApi, model: &str) -> Translation {
        let names = self
            .decoded
            .get()
            .and_then(|d| d.as_ref().ok())
            .map(|d| d.names.clone())
            .unwrap_or_default();
        Translation {
            client: self.api,
            upstream,
            model: model.to_owned(),
            include_usage: self.info.include_usage,
            names,
        }
    }
}

/// Decode errors name the target API's provider.
fn relabel(e: &TranslateError, upstream: UpstreamApi) -> TranslateError {
    let fix = |s: &str| s.replace("another API", upstream.label());
    match e {
        TranslateError::InvalidRequest(s) => TranslateError::InvalidRequest(fix(s)),
        TranslateError::Unsupported(s) => TranslateError::Unsupported(fix(s)),
        other => other.clone(),
    }
}

/// How one attempt's answers become the client's: success bodies, error bodies, streams.
#[derive(Debug, Clone)]
pub struct Translation {
    client: ClientApi,
    upstream: UpstreamApi,
    model: String,
    include_usage: bool,
    names: ToolNames,
}

impl Translation {
    /// The API the upstream speaks for this attempt.
    pub fn upstream(&self) -> UpstreamApi {
        self.upstream
    }

    /// The client's API.
    pub fn client(&self) -> ClientApi {
        self.client
    }

    /// Whether the upstream speaks the client's API (bodies and events pass through).
    pub fn is_passthrough(&self) -> bool {
        same_api(self.client, self.upstream)
    }

    /// A 2xx non-streamed body → the client's body. Passing through, the body is checked to
    /// be well-formed JSON and returned unchanged; translating, it is decoded and encoded.
    /// `Err` means the answer is unusable: a failed attempt (`invalid_response`). A
    /// translated body is JSON: the client response's `content-type` must be
    /// `application/json`. An embeddings body must be a JSON object with a `data` list.
    pub fn success_body(&self, raw: Bytes) -> Result<Bytes, TranslateError> {
        if self.client == ClientApi::Embeddings {
            return if super::embeddings::is_well_formed(&raw) {
                Ok(raw)
            } else {
                Err(TranslateError::InvalidResponse(
                    "the embeddings response is not a JSON object with a `data` list".into(),
                ))
            };
        }
        if self.is_passthrough() {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(&raw) {
                Ok(_) => Ok(raw),
                Err(_) => Err(TranslateError::InvalidResponse(
                    "the response body is not well-formed JSON".into(),
                )),
            };
        }
        let resp = match self.upstream {
            UpstreamApi::Messages => messages::decode_response(&raw)?,
            UpstreamApi::Responses => responses::decode_response(&raw)?,
            UpstreamApi::ChatCompletions => chat::decode_response(&raw)?,
            UpstreamApi::Embeddings | UpstreamApi::CountTokens => {
                parse_response_object(&raw)?;
                return Ok(raw);
            }
        };
        match self.client {
            ClientApi::Messages | ClientApi::CountTokens => {
                messages::encode_response(&resp, &self.model)
            }
            ClientApi::Responses => Ok(responses::encode_response(&resp, &self.model, &self.names)),
            ClientApi::ChatCompletions | ClientApi::Embeddings => {
                Ok(chat::encode_response(&resp, &self.model))
            }
        }
    }

    /// An upstream error body (any status) in OpenAI's shape, for the retry rules
    /// (`error_codes` match its `code` or `type`) and the exhaustion body's `last_error`:
    /// Anthropic errors are converted ([`messages::translate_error`], type kept as `code`),
    /// every other body is returned unchanged.
    pub fn error_for_rules(&self, status: u16, raw: &Bytes) -> Bytes {
        match self.upstream {
            UpstreamApi::Messages | UpstreamApi::CountTokens => {
                messages::translate_error(status, raw)
            }
            _ => raw.clone(),
        }
    }

    /// An upstream error body that passes through to the client (spec §4.1), in the client's
    /// shape, status kept: unchanged when the upstream speaks the client's API (or another
    /// OpenAI API for an OpenAI client), converted otherwise.
    pub fn error_for_client(&self, status: u16, raw: Bytes) -> Bytes {
        let anthropic_upstream = matches!(
            self.upstream,
            UpstreamApi::Messages | UpstreamApi::CountTokens
        );
        match (self.client.anthropic_errors(), anthropic_upstream) {
            (true, true) | (false, false) => raw,
            (false, true) => messages::translate_error(status, &raw),
            (true, false) => errors::anthropic_error_from_any(status, &raw),
        }
    }

    /// The stream translator for one streamed attempt.
    pub fn stream(&self) -> StreamTranslator {
        StreamTranslator::translating(
            self.upstream,
            self.client,
            &self.model,
            self.include_usage,
            self.names.clone(),
        )
    }
}
