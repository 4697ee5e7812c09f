//! Where a provider entry's requests go and how they are authenticated (spec §3.2, §5).
//! Secrets stay in [`Secret`](crate::config::Secret)s until the header is built, and the
//! header is marked sensitive.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::config::{Interface, Provider};
use crate::upstream::{parse_base_url, Origin, UpstreamHttpRequest};

pub mod table;

use table::AuthStyle;

/// The resolved endpoint of a provider entry: origin, the chat path, and the headers every
/// request to it carries (built once: credentials, `anthropic-version`, `http_host`, the
/// entry's `headers:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub origin: Origin,
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers for every request but the per-request ones (`accept`, passthrough
    /// credentials); secret values are marked sensitive.
    pub headers: HeaderMap,
}

/// The Anthropic API version header value sent with Messages requests.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The Azure OpenAI `api-version` used with deployment paths.
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// The endpoint of `provider`, or `None` for the in-process mock provider.
///
/// The API root is the `base_url` when given, else the prefix's public root
/// ([`table::PROVIDERS`]). A `base_url` path replaces the default root; a `base_url`
/// without a path gets `/v1`. Azure OpenAI with a bare resource URL uses the deployment
/// path (`/openai/deployments/<model-id>/chat/completions?api-version=...`, the model id
/// naming the deployment); with a path (such as `/openai/v1`) it is used as the root.
pub fn endpoint(provider: &Provider) -> Result<Option<Endpoint>, String> {
    if provider.interface == Interface::Mock {
        return Ok(None);
    }
    let root = match &provider.base_url {
        Some(url) => url.as_str(),
        None => table::lookup(provider.prefix())
            .and_then(|s| s.default_root)
            .ok_or_else(|| {
                format!(
                    "model '{}' has no base_url and its prefix '{}' has no public default",
                    provider.model,
                    provider.prefix()
                )
            })?,
    };
    let (origin, base_path) =
        parse_base_url(root).map_err(|e| format!("base_url of '{}': {e}", provider.model))?;
    let root_or_v1 = if base_path.is_empty() {
        "/v1"
    } else {
        base_path.as_str()
    };
    let path = match provider.interface {
        Interface::AzureOpenAi if base_path.is_empty() => {
            let deployment = provider.model_id();
            if !deployment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(format!(
                    "the Azure deployment name '{deployment}' (from model '{}') may only hold letters, digits, '-', '_' and '.'",
                    provider.model
                ));
            }
            if deployment.bytes().all(|b| b == b'.') {
                // `.` and `..` are path segments of their own: the URL would leave
                // `/openai/deployments/`.
                return Err(format!(
                    "the Azure deployment name '{deployment}' (from model '{}') must hold a letter, a digit, '-' or '_'",
                    provider.model
                ));
            }
            format!(
                "/openai/deployments/{deployment}/chat/completions?api-version={AZURE_API_VERSION}"
            )
        }
        Interface::AzureOpenAi => format!("{base_path}/chat/completions"),
        Interface::Anthropic => format!("{root_or_v1}/messages"),
        Interface::OpenAi | Interface::Mock => format!("{root_or_v1}/chat/completions"),
    };
    let headers = base_headers(provider);
    Ok(Some(Endpoint {
        origin,
        path,
        headers,
    }))
}

/// The endpoint of a configured entry as the gateway builds it at startup: [`endpoint`],
/// except that a wildcard entry (`prefix/*`, which no request is sent as: each names its
/// own `prefix/<id>`) is built with the sample model `prefix/model`, so a deployment path
/// or a base URL that cannot carry any model is found when the config loads.
pub fn entry_endpoint(provider: &Provider) -> Result<Option<Endpoint>, String> {
    if !provider.is_wildcard() {
        return endpoint(provider);
    }
    endpoint(&Provider {
        model: format!("{}/model", provider.prefix()),
        ..provider.clone()
    })
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
    let mut headers = endpoint.headers.clone();
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
            let mut v = v.clone();
            v.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, v);
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

/// The headers every request to `provider` carries, built once per gateway.
fn base_headers(provider: &Provider) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if provider.passthrough_auth {
        // The client's credential is added per request.
    } else if let Some(key) = &provider.access_key {
        let (name, value) = match table::auth_style(provider.interface) {
            AuthStyle::XApiKey => ("x-api-key", key.expose().to_owned()),
            AuthStyle::ApiKey => ("api-key", key.expose().to_owned()),
            AuthStyle::Bearer => ("authorization", format!("Bearer {}", key.expose())),
            AuthStyle::None => ("", String::new()),
        };
        if let (false, Ok(mut v)) = (name.is_empty(), HeaderValue::from_str(&value)) {
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
    if let Some(host) = provider
        .http_host
        .as_deref()
        .and_then(|h| HeaderValue::from_str(h).ok())
    {
        // Plano's `http_host`: the `Host` header the upstream sees; the connection (and
        // TLS name) still go to the URL's host.
        headers.insert(http::header::HOST, host);
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
    headers
}
