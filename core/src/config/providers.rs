//! `model_providers[]` entries → [`Provider`]s (spec §3.2, §3.4).

use super::env::{expand, ExpandError};
use super::fields::{boolean, duration, int_in, text};
use super::protection::{convert_retry_budget, warn_budget_without_policy};
use super::raw::{RawProvider, Scalar, S};
use super::recovery::convert_continuation;
use super::report::{join, Pos, Report};
use super::retry::{convert_policy, is_model_name, PolicyUses};
use super::{
    Interface, MockSettings, PolicyOrigin, Provider, RetryBudgetSettings, Secret, Timeouts,
};
use std::time::Duration;

use crate::anthropic::DEFAULT_MAX_TOKENS;
pub use crate::mock::MOCK_KINDS;
pub use crate::provider::table::interface_for_prefix;
use crate::provider::table::requires_base_url;
use crate::upstream::{parse_base_url, UrlError};

/// `provider_interface` values. Plano's provider names that speak OpenAI's protocol are
/// accepted as `openai`, and Plano's `claude` as `anthropic`.
const INTERFACES: &[(&str, Interface)] = &[
    ("openai", Interface::OpenAi),
    ("anthropic", Interface::Anthropic),
    ("azure_openai", Interface::AzureOpenAi),
    ("claude", Interface::Anthropic),
    ("deepseek", Interface::OpenAi),
    ("groq", Interface::OpenAi),
    ("mistral", Interface::OpenAi),
    ("gemini", Interface::OpenAi),
    ("openrouter", Interface::OpenAi),
    ("moonshotai", Interface::OpenAi),
    ("xiaomi", Interface::OpenAi),
    ("digitalocean", Interface::OpenAi),
    ("vercel", Interface::OpenAi),
    ("edenai", Interface::OpenAi),
    ("plano", Interface::OpenAi),
    // Refused below with the reason (a ChatGPT subscription sign-in); listed so the
    // value is not reported as unknown.
    ("chatgpt", Interface::OpenAi),
];

/// A converted entry and what the cross-entry checks need to know about it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub provider: Provider,
    pub path: String,
    pub pos: Pos,
    pub model_pos: Pos,
    pub name_pos: Pos,
    pub default_pos: Pos,
    pub uses: Option<PolicyUses>,
    /// Whether `access_key` was written (even if it expanded to nothing).
    pub key_written: bool,
    /// Whether `timeouts.connect` was written (else `overrides.upstream_connect_timeout`
    /// may set it).
    pub connect_written: bool,
}

/// Converts one entry at `path`; `None` when `model` is missing or malformed.
pub(crate) fn convert_provider(
    rep: &mut Report,
    raw: &S<RawProvider>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    gateway_budget: RetryBudgetSettings,
) -> Option<Entry> {
    let r = &raw.value;
    let pos = Pos::at(raw);
    let line = pos.line.unwrap_or(0);

    let Some(model_v) = &r.model else {
        rep.error(
            join(path, "model"),
            pos,
            "this provider entry needs `model`, written `provider/model-id`, e.g. `openai/gpt-4o`",
        );
        return None;
    };
    let model = text(model_v).trim().to_string();
    if !is_model_name(&model) {
        rep.error(
            join(path, "model"),
            Pos::at(model_v),
            format!(
                "`model` must be written `provider/model-id` (e.g. `openai/gpt-4o`), not `{model}`"
            ),
        );
        return None;
    }
    let prefix = super::model_prefix(&model).to_string();
    let is_mock = prefix == "mock";

    if let Some(v) = &r.routing_preferences {
        let p = join(path, "routing_preferences");
        super::schema::check_shape(rep, v, &p, &super::schema::PROVIDER_ROUTING_PREFERENCES);
        rep.warn(
            &p,
            Pos::at(v),
            super::plano::ignored(&p, "switchback does not choose models by preference; requests reach this entry when they name its model (or its name, or an alias of it)"),
        );
    }
    if let Some(reason) = unsupported_prefix(&prefix) {
        rep.error(join(path, "model"), Pos::at(model_v), reason);
        return None;
    }
    let wildcard = super::is_wildcard_model(&model);
    if wildcard {
        for (key, v, why) in [
            ("default", &r.default, "a wildcard entry cannot be the default provider (Plano refuses it too): a request for an unknown model would have no model id to send. Make an exact entry the default"),
            ("name", &r.name, "a wildcard entry stands for many models, so a `name` would not say which one to send; give the name to an exact entry, or use `model_aliases`"),
        ] {
            if let Some(v) = v {
                rep.error(join(path, key), Pos::at(v), format!("`{key}` on `{model}`: {why}"));
            }
        }
    }
    let http_host = r.http_host.as_ref().filter(|_| !is_mock).and_then(|v| {
        let host = text(v).trim().to_string();
        if !host.is_empty() && http::HeaderValue::from_str(&host).is_ok() && !host.contains(['/', ' ']) {
            Some(host)
        } else {
            rep.error(
                join(path, "http_host"),
                Pos::at(v),
                "`http_host` must be a host name (optionally with `:port`), e.g. `api.example.com`; it is sent upstream as the `Host` header",
            );
            None
        }
    });

    let name = r.name.as_ref().map(text);
    let default = r
        .default
        .as_ref()
        .and_then(|v| boolean(rep, v, &join(path, "default")))
        .unwrap_or(false);
    let passthrough_auth = r
        .passthrough_auth
        .as_ref()
        .and_then(|v| boolean(rep, v, &join(path, "passthrough_auth")))
        .unwrap_or(false);
    let default_max_tokens = r
        .default_max_tokens
        .as_ref()
        .and_then(|v| {
            int_in(
                rep,
                v,
                &join(path, "default_max_tokens"),
                1,
                u64::from(u32::MAX),
            )
        })
        .map_or(DEFAULT_MAX_TOKENS, |n| n as u32);
    let max_output_tokens = r.max_output_tokens.as_ref().and_then(|v| {
        int_in(
            rep,
            v,
            &join(path, "max_output_tokens"),
            1,
            u64::from(u32::MAX),
        )
        .map(|n| n as u32)
    });

    let mut access_key = None;
    let mut base_url = None;
    if is_mock {
        for (name, v) in [
            ("access_key", &r.access_key),
            ("base_url", &r.base_url),
            ("endpoint", &r.endpoint),
            ("http_host", &r.http_host),
        ] {
            if let Some(v) = v {
                rep.warn(
                    join(path, name),
                    Pos::at(v),
                    format!(
                        "mock providers are answered in-process, so `{name}` is ignored; remove it"
                    ),
                );
            }
        }
    } else {
        if let Some(v) = &r.access_key {
            access_key = expand_field(rep, v, &join(path, "access_key"), path, env)
                .filter(|k| !k.is_empty())
                .map(Secret::new);
        }
        match (&r.base_url, &r.endpoint) {
            (Some(_), Some(e)) => rep.error(
                join(path, "endpoint"),
                Pos::at(e),
                "both `base_url` and `endpoint` (its older spelling) are set; keep only `base_url`",
            ),
            (Some(v), None) => {
                let p = join(path, "base_url");
                if let Some(url) = expand_field(rep, v, &p, path, env) {
                    base_url = checked_url(rep, &url, v, &p, "base_url");
                }
            }
            (None, Some(v)) => {
                let p = join(path, "endpoint");
                if let Some(e) = expand_field(rep, v, &p, path, env) {
                    base_url = checked_url(rep, &endpoint_url(&e), v, &p, "endpoint");
                }
            }
            (None, None) if requires_base_url(&prefix) => rep.error(
                join(path, "base_url"),
                Pos::at(model_v),
                missing_base_url(&prefix),
            ),
            (None, None) => {}
        }
    }

    let interface = match &r.provider_interface {
        Some(v) if text(v) == "chatgpt" => {
            rep.error(
                join(path, "provider_interface"),
                Pos::at(v),
                CHATGPT_REFUSAL,
            );
            Interface::OpenAi
        }
        Some(v) if is_mock => {
            rep.error(
                join(path, "provider_interface"),
                Pos::at(v),
                "mock providers are answered in-process and have no wire protocol; remove `provider_interface`",
            );
            Interface::Mock
        }
        Some(v) => super::fields::choice(rep, v, &join(path, "provider_interface"), INTERFACES)
            .unwrap_or_else(|| interface_for_prefix(&prefix)),
        None => interface_for_prefix(&prefix),
    };

    let responses = serves_responses(rep, r, path, interface);

    let mut headers = Vec::new();
    if let Some(h) = &r.headers {
        let hp = join(path, "headers");
        for (k, v) in &h.value.0 {
            let p = join(&hp, &k.value);
            if http::HeaderName::from_bytes(k.value.as_bytes()).is_err() {
                rep.error(
                    &p,
                    Pos::at(k),
                    format!(
                        "`{}` is not a valid HTTP header name; use letters, digits and `-`",
                        k.value
                    ),
                );
                continue;
            }
            if let Some(value) = expand_field(rep, v, &p, path, env) {
                if http::HeaderValue::from_str(&value).is_err() {
                    rep.error(
                        &p,
                        Pos::at(v),
                        format!("the value of header `{}` is not a valid HTTP header value (no line breaks or control characters)", k.value),
                    );
                    continue;
                }
                headers.push((k.value.clone(), Secret::new(value)));
            }
        }
    }

    let mut timeouts = Timeouts::default();
    let connect_written = r
        .timeouts
        .as_ref()
        .is_some_and(|t| t.value.connect.is_some());
    if let Some(t) = &r.timeouts {
        let tp = join(path, "timeouts");
        for (name, v, slot) in [
            ("connect", &t.value.connect, &mut timeouts.connect),
            (
                "first_token",
                &t.value.first_token,
                &mut timeouts.first_token,
            ),
            ("idle", &t.value.idle, &mut timeouts.idle),
        ] {
            if let Some(v) = v {
                if let Some(d) = duration(rep, v, &join(&tp, name), false) {
                    *slot = d;
                }
            }
        }
    }

    let mock = mock_settings(rep, raw, path, &model, is_mock);
    let continuation =
        convert_continuation(rep, &r.continuation, &join(path, "continuation"), interface);

    let mut uses = None;
    let retry_policy = r.retry_policy.as_ref().map(|p| {
        let (policy, u) = convert_policy(rep, p, &join(path, "retry_policy"));
        uses = Some(u);
        policy
    });
    let retry_budget = r.retry_budget.as_ref().map(|b| {
        let p = join(path, "retry_budget");
        if retry_policy.is_none() {
            warn_budget_without_policy(rep, b, &p);
        }
        // Writing a budget on an entry means budgeting it: `enabled` is not inherited.
        let base = RetryBudgetSettings {
            enabled: true,
            ..gateway_budget
        };
        convert_retry_budget(rep, b, &p, base)
    });

    let policy_origin = if retry_policy.is_some() {
        PolicyOrigin::Written
    } else {
        PolicyOrigin::None
    };
    let provider = Provider {
        model,
        name,
        access_key,
        base_url,
        http_host,
        interface,
        default,
        passthrough_auth,
        default_max_tokens,
        responses,
        max_output_tokens,
        headers,
        retry_policy,
        policy_origin,
        retry_budget,
        timeouts,
        continuation,
        mock,
        line,
    };
    check_endpoint(rep, &provider, r, path, pos);
    Some(Entry {
        provider,
        path: path.to_string(),
        pos,
        model_pos: Pos::at(model_v),
        name_pos: r.name.as_ref().map(Pos::at).unwrap_or(pos),
        default_pos: r.default.as_ref().map(Pos::at).unwrap_or(pos),
        uses,
        key_written: r.access_key.is_some(),
        connect_written,
    })
}

fn mock_settings(
    rep: &mut Report,
    raw: &S<RawProvider>,
    path: &str,
    model: &str,
    is_mock: bool,
) -> MockSettings {
    let r = &raw.value;
    let kind = model.split_once('/').map(|(_, k)| k).unwrap_or("");
    let defaults = MockSettings::default();
    let mut settings = MockSettings {
        delay: if kind == "slow" {
            defaults.delay
        } else {
            Duration::ZERO
        },
        retry_after_seconds: defaults.retry_after_seconds,
    };
    if is_mock && !MOCK_KINDS.contains(&kind) {
        rep.error(
            join(path, "model"),
            r.model.as_ref().map(Pos::at).unwrap_or(Pos::at(raw)),
            format!(
                "`mock/{kind}` is not a mock kind; use one of {}",
                MOCK_KINDS
                    .iter()
                    .map(|k| format!("mock/{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let Some(m) = &r.mock else {
        return settings;
    };
    let mp = join(path, "mock");
    if !is_mock {
        rep.error(
            &mp,
            Pos::at(m),
            format!("`mock` settings are only allowed on `mock/...` models, not on `{model}`; remove them"),
        );
        return settings;
    }
    if let Some(v) = &m.value.delay {
        if let Some(d) = duration(rep, v, &join(&mp, "delay"), true) {
            settings.delay = d;
        }
    }
    if let Some(v) = &m.value.retry_after_seconds {
        if let Some(n) = int_in(rep, v, &join(&mp, "retry_after_seconds"), 0, 86_400) {
            settings.retry_after_seconds = n;
        }
    }
    settings
}

/// Expands variables in a string field; reports unset variables without showing any value.
fn expand_field(
    rep: &mut Report,
    v: &S<Scalar>,
    path: &str,
    entry_path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let what = path
        .strip_prefix(entry_path)
        .unwrap_or(path)
        .trim_start_matches('.');
    match expand(&text(v), env) {
        Ok(s) => Some(s),
        Err(ExpandError::Unset(var)) => {
            rep.error(
                path,
                Pos::at(v),
                format!("the {what} of {entry_path} uses ${var}, which is not set; set {var} in the environment or in a .env file beside the config (write $$ for a literal $)"),
            );
            None
        }
        Err(ExpandError::Malformed(_)) => {
            rep.error(
                path,
                Pos::at(v),
                format!("the {what} of {entry_path} has a malformed `${{...}}` reference; write ${{NAME}} with letters, digits and _ only (write $$ for a literal $)"),
            );
            None
        }
    }
}

/// The URL the older `endpoint` spelling stands for: a full URL as it is; `host:443` or
/// a bare `host` as `https://host` (a credential is never sent in clear text by
/// default); `host:port` as `http://host:port` (a local server).
fn endpoint_url(endpoint: &str) -> String {
    let e = endpoint.trim();
    if e.contains("://") {
        return e.to_string();
    }
    match e.rsplit_once(':') {
        Some((host, "443")) => format!("https://{host}"),
        Some(_) => format!("http://{e}"),
        None => format!("https://{e}"),
    }
}

/// Checks a provider URL exactly as the gateway will parse it, so `check` refuses what
/// `serve` would. The message shows the value as written, never the expanded one (it
/// may hold a secret).
fn checked_url(
    rep: &mut Report,
    url: &str,
    v: &S<Scalar>,
    path: &str,
    key: &str,
) -> Option<String> {
    let why = match parse_base_url(url) {
        Ok(_) => return Some(url.to_string()),
        Err(UrlError::UserInfo) => "must not carry `user:password@` credentials; set `access_key` (or `headers`) instead".to_string(),
        Err(UrlError::Query) => "must not carry a `?query` (it cannot be joined with the API path); put a key in `access_key` or a header in `headers`".to_string(),
        Err(UrlError::Fragment) => "must not carry a `#fragment`".to_string(),
        Err(UrlError::UnsupportedScheme(_)) => "must start with http:// or https://".to_string(),
        Err(UrlError::InvalidHost(_)) => "has no valid host name or IP address".to_string(),
        Err(UrlError::InvalidPort(_)) => "has a port that is not a number from 1 to 65535".to_string(),
        Err(UrlError::InvalidPath(_)) => "has a path with characters that cannot be sent on an HTTP request line".to_string(),
    };
    rep.error(
        path,
        Pos::at(v),
        format!(
            "`{key}` (`{}` as written) {why}, e.g. https://api.example.com/v1",
            redacted(&text(v))
        ),
    );
    None
}

/// A URL as written with what may be a credential masked: the `user:password@` part and
/// the query.
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, _)) => format!("{p}?***"),
        None => path.to_string(),
    };
    if scheme.is_empty() {
        format!("{authority}{path}")
    } else {
        format!("{scheme}://{authority}{path}")
    }
}

/// What a `chatgpt` entry needs that switchback does not have.
const CHATGPT_REFUSAL: &str = "`chatgpt` models are reached through a ChatGPT subscription: Plano signs in with the Codex CLI's tokens and sends ChatGPT account headers to chatgpt.com's Codex backend. switchback implements no such sign-in; use an `openai/...` entry with an API key instead";

/// Why a prefix is refused, for prefixes that need a flow switchback does not implement.
fn unsupported_prefix(prefix: &str) -> Option<&'static str> {
    match prefix {
        "chatgpt" => Some(CHATGPT_REFUSAL),
        "amazon_bedrock" => Some("`amazon_bedrock` models need Bedrock's Converse API and AWS SigV4 request signing, which switchback does not implement yet; until then, reach the model through an OpenAI-compatible gateway with its own prefix, `base_url` and `provider_interface: openai`"),
        _ => None,
    }
}

/// The sentence for an entry whose prefix has no public endpoint.
fn missing_base_url(prefix: &str) -> String {
    match prefix {
        "ollama" => "the `ollama` prefix has no public endpoint; set `base_url` to your ollama server, e.g. http://127.0.0.1:11434".to_string(),
        "azure_openai" => "the `azure_openai` prefix needs your resource's URL; set `base_url`, e.g. https://NAME.openai.azure.com".to_string(),
        "vllm" | "plano" => format!("the `{prefix}` prefix names a server you run, which has no public endpoint; set `base_url` to its URL, e.g. http://127.0.0.1:8000"),
        _ => format!("`{prefix}` is not a provider prefix switchback knows (docs/providers.md lists them), so it has no public endpoint; set `base_url` to the server's URL (and `provider_interface` if it is not OpenAI-compatible)"),
    }
}

/// `responses: true` (spec §9): the entry serves OpenAI's Responses API itself. Only an
/// OpenAI-interface entry can: Anthropic speaks Messages, Azure's deployment paths and the
/// mock provider have no `/responses`, so the key is refused there rather than ignored.
fn serves_responses(rep: &mut Report, r: &RawProvider, path: &str, interface: Interface) -> bool {
    let Some(v) = &r.responses else {
        return false;
    };
    let p = join(path, "responses");
    let Some(on) = boolean(rep, v, &p) else {
        return false;
    };
    if on && interface != Interface::OpenAi {
        let what = match interface {
            Interface::Anthropic => "an Anthropic-interface provider speaks Messages",
            Interface::AzureOpenAi => "Azure OpenAI entries are sent Chat Completions",
            _ => "the built-in mock provider answers Chat Completions only",
        };
        rep.error(
            &p,
            Pos::at(v),
            format!("`responses: true` needs an OpenAI-interface provider ({what}); remove it, and Responses clients are translated to this entry's API"),
        );
        return false;
    }
    on
}

/// Builds the entry's endpoint as the gateway will (spec §10: `check` and `serve` agree),
/// reporting what cannot be built. A wildcard entry is checked with a sample model id,
/// since each request names its own.
fn check_endpoint(rep: &mut Report, p: &Provider, r: &RawProvider, path: &str, pos: Pos) {
    let url_written = r.base_url.is_some() || r.endpoint.is_some();
    if p.base_url.is_none() && (url_written || requires_base_url(p.prefix())) {
        return; // already reported
    }
    if let Err(e) = crate::provider::entry_endpoint(p) {
        let (key, at) = match (&r.base_url, &r.endpoint) {
            (Some(v), _) => ("base_url", Pos::at(v)),
            (None, Some(v)) => ("endpoint", Pos::at(v)),
            (None, None) => ("model", r.model.as_ref().map(Pos::at).unwrap_or(pos)),
        };
        rep.error(
            join(path, key),
            at,
            format!("{e}; fix the entry so the gateway can build its upstream URL"),
        );
    }
}
