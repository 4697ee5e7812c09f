//! `model_providers[]` entries → [`Provider`]s (spec §3.2, §3.4).

use super::env::{expand, ExpandError};
use super::fields::{boolean, duration, int_in, text};
use super::protection::{convert_retry_budget, warn_budget_without_policy};
use super::raw::{RawProvider, Scalar, S};
use super::report::{join, Pos, Report};
use super::retry::{convert_policy, is_model_name, PolicyUses};
use super::{Interface, MockSettings, Provider, RetryBudgetSettings, Secret, Timeouts};
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

    for (name, v) in [
        ("http_host", &r.http_host),
        ("routing_preferences", &r.routing_preferences),
    ] {
        if let Some(v) = v {
            rep.warn(
                join(path, name),
                Pos::at(v),
                format!("`{name}` is a Plano setting that switchback does not use; it is ignored"),
            );
        }
    }

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

    let mut access_key = None;
    let mut base_url = None;
    if is_mock {
        for (name, v) in [("access_key", &r.access_key), ("base_url", &r.base_url)] {
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
        if let Some(v) = &r.base_url {
            let p = join(path, "base_url");
            if let Some(url) = expand_field(rep, v, &p, path, env) {
                match url_problem(&url) {
                    None => base_url = Some(url),
                    Some(problem) => rep.error(&p, Pos::at(v), problem),
                }
            }
        } else if requires_base_url(&prefix) {
            rep.error(
                join(path, "base_url"),
                Pos::at(model_v),
                format!("the `{prefix}` prefix has no public endpoint; set `base_url` to your server's URL (e.g. http://127.0.0.1:11434 for a local ollama)"),
            );
        }
    }

    let interface = match &r.provider_interface {
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

    Some(Entry {
        provider: Provider {
            model,
            name,
            access_key,
            base_url,
            interface,
            default,
            passthrough_auth,
            default_max_tokens,
            headers,
            retry_policy,
            retry_budget,
            timeouts,
            mock,
            line,
        },
        path: path.to_string(),
        pos,
        model_pos: Pos::at(model_v),
        name_pos: r.name.as_ref().map(Pos::at).unwrap_or(pos),
        default_pos: r.default.as_ref().map(Pos::at).unwrap_or(pos),
        uses,
        key_written: r.access_key.is_some(),
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

/// What is wrong with a `base_url`, as a sentence that never repeats the URL: it may
/// hold a credential (`user:password@`), or a value expanded from the environment.
/// The same parser the gateway uses at startup decides, so `check` and `serve` agree.
fn url_problem(url: &str) -> Option<String> {
    let problem = match parse_base_url(url).err()? {
        UrlError::UnsupportedScheme(_) => "`base_url` must be an http:// or https:// URL with a host, e.g. https://api.example.com/v1",
        UrlError::UserInfo => "`base_url` must not carry credentials (`user:password@`); put the key in `access_key` instead",
        UrlError::Fragment => "`base_url` must not have a `#fragment`",
        UrlError::Query => "`base_url` must not have a `?query`; it is joined with the endpoint path",
        UrlError::InvalidHost(_) => "`base_url` has no valid host; write it like https://api.example.com/v1",
        UrlError::InvalidPort(_) => "`base_url` has an invalid port; use a number from 1 to 65535",
        UrlError::InvalidPath(_) => "`base_url` has a path with characters that cannot be sent in a request line",
    };
    Some(problem.to_owned())
}
