//! Where an attempt goes and which client headers go with it, per client API × upstream API.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::translation::same_api;
use super::{ClientApi, UpstreamApi};

/// The known endpoint suffixes of a provider's chat path (`provider::endpoint`).
const ENDPOINT_SUFFIXES: &[&str] = &["/chat/completions", "/messages"];

/// The path (and query) of an attempt: the provider's endpoint path (`/v1/chat/completions`
/// or `/v1/messages`, maybe with a query such as Azure's `?api-version=`) with its endpoint
/// replaced by `upstream`'s (`/v1/responses`, `/v1/embeddings`, `/v1/messages/count_tokens`),
/// its own query kept, and the client's query appended when the upstream speaks the client's
/// API (Claude Code's `?beta=true` reaches Anthropic; spec §9).
pub fn upstream_path(
    endpoint_path: &str,
    upstream: UpstreamApi,
    client: ClientApi,
    client_query: Option<&str>,
) -> String {
    let (path, query) = match endpoint_path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (endpoint_path, None),
    };
    let root = ENDPOINT_SUFFIXES
        .iter()
        .find_map(|s| path.strip_suffix(s))
        .unwrap_or(path);
    let mut out = format!("{root}{}", upstream.endpoint());
    let client_query = client_query
        .filter(|q| !q.is_empty())
        .filter(|_| same_api(client, upstream));
    let queries: Vec<&str> = query.into_iter().chain(client_query).collect();
    if !queries.is_empty() {
        out.push('?');
        out.push_str(&queries.join("&"));
    }
    out
}

/// Anthropic client headers forwarded to Anthropic-interface targets of a Messages or
/// count_tokens client: they select the API version and the betas the body relies on.
pub const ANTHROPIC_FORWARDED: &[&str] = &["anthropic-version", "anthropic-beta"];

/// The client headers to add to an attempt's request, beyond the target's own credentials.
///
/// - A Messages or count_tokens client's `anthropic-version` and `anthropic-beta` go to
///   Anthropic-interface targets (replacing the gateway's default version); to other
///   targets they mean nothing and are not sent.
/// - With `passthrough_auth`, the client's credential is sent instead of the target's:
///   `authorization` as it came; to Anthropic targets also `x-api-key`; to OpenAI targets a
///   client that sent only `x-api-key` (as Anthropic SDKs do) has it sent as
///   `authorization: Bearer`.
///
/// Nothing else of the client's is forwarded (`x-app`, SDK telemetry headers, cookies).
/// Returned headers that carry credentials are marked sensitive.
pub fn forwarded_headers(
    client: ClientApi,
    upstream: UpstreamApi,
    client_headers: &HeaderMap,
    passthrough_auth: bool,
) -> Vec<(HeaderName, HeaderValue)> {
    let anthropic_upstream = matches!(upstream, UpstreamApi::Messages | UpstreamApi::CountTokens);
    let mut out = Vec::new();
    if client.anthropic_errors() && anthropic_upstream {
        for name in ANTHROPIC_FORWARDED {
            for v in client_headers.get_all(*name) {
                out.push((HeaderName::from_static(name), v.clone()));
            }
        }
    }
    if passthrough_auth {
        let sensitive = |v: &HeaderValue| {
            let mut v = v.clone();
            v.set_sensitive(true);
            v
        };
        let auth = client_headers.get(http::header::AUTHORIZATION);
        let key = client_headers.get("x-api-key");
        if let Some(v) = auth {
            out.push((http::header::AUTHORIZATION, sensitive(v)));
        }
        match (anthropic_upstream, key, auth) {
            (true, Some(k), _) => out.push((HeaderName::from_static("x-api-key"), sensitive(k))),
            (false, Some(k), None) => {
                if let Some(v) = k
                    .to_str()
                    .ok()
                    .and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok())
                {
                    out.push((http::header::AUTHORIZATION, sensitive(&v)));
                }
            }
            _ => {}
        }
    }
    out
}
