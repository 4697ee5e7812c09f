//! Where a provider entry's requests go and how they are authenticated (spec §3.2, §5).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{Interface, Provider};
use crate::upstream::{parse_base_url, Origin, UpstreamHttpRequest};

/// The resolved endpoint of a provider entry: origin and the chat path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub origin: Origin,
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
}

/// Public API roots of the prefixes that have one (OpenAI-compatible unless noted).
pub const DEFAULT_API_ROOTS: [(&str, &str); 12] = [
    ("openai", "https://api.openai.com/v1"),
    ("anthropic", "https://api.anthropic.com/v1"),
    ("mistral", "https://api.mistral.ai/v1"),
    ("groq", "https://api.groq.com/openai/v1"),
    ("deepseek", "https://api.deepseek.com/v1"),
    ("xai", "https://api.x.ai/v1"),
    ("together_ai", "https://api.together.xyz/v1"),
    (
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai",
    ),
    ("openrouter", "https://openrouter.ai/api/v1"),
    ("moonshotai", "https://api.moonshot.ai/v1"),
    ("zhipu", "https://open.bigmodel.cn/api/paas/v4"),
    (
        "qwen",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    ),
];

/// The Anthropic API version header value sent with Messages requests.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The endpoint of `provider`, or `None` for the in-process mock provider. A `base_url`
/// path replaces the default API root; a `base_url` without a path gets `/v1`.
pub fn endpoint(provider: &Provider) -> Result<Option<Endpoint>, String> {
    if provider.interface == Interface::Mock {
        return Ok(None);
    }
    let root = match &provider.base_url {
        Some(url) => url.clone(),
        None => DEFAULT_API_ROOTS
            .iter()
            .find(|(p, _)| *p == provider.prefix())
            .map(|(_, root)| (*root).to_owned())
            .ok_or_else(|| {
                format!(
                    "model '{}' has no base_url and its prefix '{}' has no public default",
                    provider.model,
                    provider.prefix()
                )
            })?,
    };
    let (origin, base_path) =
        parse_base_url(&root).map_err(|e| format!("base_url of '{}': {e}", provider.model))?;
    let base_path = if base_path.is_empty() {
        "/v1".to_owned()
    } else {
        base_path
    };
    let suffix = match provider.interface {
        Interface::Anthropic => "/messages",
        _ => "/chat/completions",
    };
    Ok(Some(Endpoint {
        origin,
        path: format!("{base_path}{suffix}"),
    }))
}

/// Builds the upstream request for one attempt: the already rewritten `body`, the
/// target's credentials (never the client's unless `passthrough_auth`), and the
/// entry's extra headers.
pub fn build_request(
    provider: &Provider,
    endpoint: &Endpoint,
    body: Bytes,
    client_headers: &HeaderMap,
    stream: bool,
) -> UpstreamHttpRequest {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        }),
    );
    if provider.passthrough_auth {
        if let Some(v) = client_headers.get(http::header::AUTHORIZATION) {
            headers.insert(http::header::AUTHORIZATION, v.clone());
        }
    } else if let Some(key) = &provider.access_key {
        let (name, value) = match provider.interface {
            Interface::Anthropic => ("x-api-key", key.expose().to_owned()),
            Interface::AzureOpenAi => ("api-key", key.expose().to_owned()),
            _ => ("authorization", format!("Bearer {}", key.expose())),
        };
        if let Ok(mut v) = HeaderValue::from_str(&value) {
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    if provider.interface == Interface::Anthropic {
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    for (name, value) in &provider.headers {
        if let (Ok(n), Ok(mut v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.expose()),
        ) {
            v.set_sensitive(true);
            headers.insert(n, v);
        }
    }
    UpstreamHttpRequest {
        origin: endpoint.origin.clone(),
        method: Method::POST,
        path_and_query: endpoint.path.clone(),
        headers,
        body,
    }
}
