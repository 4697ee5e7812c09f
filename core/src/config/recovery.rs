//! Stream recovery settings (spec §12): `retry_policy.stream_recovery` and a provider entry's
//! `continuation:`, with their checks. `docs/streaming.md` says what each value means.

use std::fmt;

use serde::Deserialize;

use super::fields::{choice, int_in};
use super::providers::Entry;
use super::raw::{Opt, Scalar, S};
use super::report::{join, Pos, Report};
use super::{Interface, Strategy};

/// The most continuations `max_continuations` may allow: each one sends the whole prompt
/// again, and a stream cut more often than this is better ended than patched.
pub const MAX_CONTINUATIONS: u32 = 5;
/// `max_continuations` when not written.
pub const DEFAULT_MAX_CONTINUATIONS: u32 = 2;

/// How a provider entry continues a stream another attempt began (spec §12,
/// `continuation:`): the form of "the original request plus the text so far as an
/// assistant turn" that its upstream accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Continuation {
    /// The entry never continues a stream (the default for OpenAI-interface entries; write
    /// it on an Anthropic entry whose model rejects prefill, e.g. Claude Opus 4.6).
    None,
    /// Anthropic Messages: a final assistant message is continued natively (the default
    /// for Anthropic-interface entries).
    Native,
    /// A final assistant message, which the server continues (Groq, llama.cpp, ...).
    AssistantPrefill,
    /// Mistral's `"prefix": true` on the final assistant message.
    MistralPrefix,
    /// DeepSeek's chat prefix completion: `"prefix": true` on the final assistant message,
    /// sent to the beta path (`/beta/chat/completions`).
    DeepseekPrefix,
    /// vLLM's `continue_final_message: true` with `add_generation_prompt: false`.
    VllmContinueFinalMessage,
}

impl Continuation {
    /// The value as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            Continuation::None => "none",
            Continuation::Native => "native",
            Continuation::AssistantPrefill => "assistant_prefill",
            Continuation::MistralPrefix => "mistral_prefix",
            Continuation::DeepseekPrefix => "deepseek_prefix",
            Continuation::VllmContinueFinalMessage => "vllm_continue_final_message",
        }
    }

    /// Whether the entry can continue a stream at all.
    pub fn can_continue(self) -> bool {
        self != Continuation::None
    }

    /// What an entry of `interface` does when it writes no `continuation:`: Anthropic
    /// continues natively, everything else does not continue.
    pub fn default_for(interface: Interface) -> Continuation {
        match interface {
            Interface::Anthropic => Continuation::Native,
            Interface::OpenAi | Interface::AzureOpenAi | Interface::Mock => Continuation::None,
        }
    }
}

impl fmt::Display for Continuation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `retry_policy.stream_recovery` (spec §12) when it is on: a committed stream that fails
/// after text content is continued by a candidate, at most `max_continuations` times per
/// request. Off (`None` in [`super::RetryPolicy`]) unless written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRecovery {
    /// Continuation attempts per request, failed ones included (1 to [`MAX_CONTINUATIONS`]).
    pub max_continuations: u32,
}

impl Default for StreamRecovery {
    fn default() -> Self {
        StreamRecovery {
            max_continuations: DEFAULT_MAX_CONTINUATIONS,
        }
    }
}

/// `stream_recovery:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStreamRecovery {
    pub mode: Opt<Scalar>,
    pub max_continuations: Opt<Scalar>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Continue,
    Off,
}

/// Converts `stream_recovery` found at `path`: `None` when `mode: off`. Writing the block
/// means opting in, so `mode` defaults to `continue`.
pub(crate) fn convert_stream_recovery(
    rep: &mut Report,
    raw: &S<RawStreamRecovery>,
    path: &str,
) -> Option<StreamRecovery> {
    let r = &raw.value;
    // YAML 1.1 readers take a bare `off` (and `on`) for a boolean.
    let mode = r
        .mode
        .as_ref()
        .and_then(|v| match v.value {
            Scalar::Bool(false) => Some(Mode::Off),
            Scalar::Bool(true) => Some(Mode::Continue),
            _ => choice(
                rep,
                v,
                &join(path, "mode"),
                &[("continue", Mode::Continue), ("off", Mode::Off)],
            ),
        })
        .unwrap_or(Mode::Continue);
    let mut out = StreamRecovery::default();
    if let Some(v) = &r.max_continuations {
        let p = join(path, "max_continuations");
        if matches!(v.value, Scalar::Int(0)) {
            rep.error(
                &p,
                Pos::at(v),
                "`max_continuations` is 0, which would never continue a stream; write `mode: off` to turn stream recovery off, or allow 1 or more",
            );
        } else if let Some(n) = int_in(rep, v, &p, 1, u64::from(MAX_CONTINUATIONS)) {
            out.max_continuations = n as u32;
        }
    }
    (mode == Mode::Continue).then_some(out)
}

const STYLES: &[(&str, Continuation)] = &[
    ("none", Continuation::None),
    ("native", Continuation::Native),
    ("assistant_prefill", Continuation::AssistantPrefill),
    ("mistral_prefix", Continuation::MistralPrefix),
    ("deepseek_prefix", Continuation::DeepseekPrefix),
    (
        "vllm_continue_final_message",
        Continuation::VllmContinueFinalMessage,
    ),
];

/// Converts a provider entry's `continuation` at `path` for an entry of `interface`;
/// absent, the interface's default ([`Continuation::default_for`]).
pub(crate) fn convert_continuation(
    rep: &mut Report,
    raw: &Opt<Scalar>,
    path: &str,
    interface: Interface,
) -> Continuation {
    let default = Continuation::default_for(interface);
    let Some(v) = raw else {
        return default;
    };
    let Some(style) = choice(rep, v, path, STYLES) else {
        return default;
    };
    let refusal = match (interface, style) {
        (_, Continuation::None) => None,
        (Interface::Mock, _) => Some(
            "mock providers answer in-process with a fixed text and cannot continue a stream; remove `continuation`".to_string(),
        ),
        (Interface::Anthropic, Continuation::Native) => None,
        (Interface::Anthropic, s) => Some(format!(
            "`{s}` is a style of OpenAI-compatible servers; Anthropic-interface entries continue natively (a final assistant message), so write `native` or leave `continuation` out, or `none` if the model rejects prefill"
        )),
        (_, Continuation::Native) => Some(
            "OpenAI-compatible servers have no native continuation; write the style the server accepts: assistant_prefill, mistral_prefix, deepseek_prefix or vllm_continue_final_message (see docs/streaming.md)".to_string(),
        ),
        (Interface::AzureOpenAi, Continuation::DeepseekPrefix) => Some(
            "`deepseek_prefix` needs DeepSeek's beta endpoint, which Azure OpenAI does not serve; use assistant_prefill or mistral_prefix if the deployment accepts it".to_string(),
        ),
        _ => None,
    };
    match refusal {
        Some(message) => {
            rep.error(path, Pos::at(v), message);
            default
        }
        None => style,
    }
}

/// The order in which candidates are asked to continue a stream (spec §12): the model that
/// was streaming first, then the request's primary, then the failover candidates of
/// `strategy` as spec §4.3 orders them (`ordered`: `fallback_models` first, then the other
/// entries in config order), each once, and only those `can_continue` accepts. With
/// `same_model` only the model that was streaming is asked.
///
/// Generic over the id type so that the gateway (over its targets) and `check` (over the
/// config's entries) order candidates the same way.
pub fn continuation_order<T: Copy + PartialEq>(
    failed: T,
    primary: T,
    strategy: Strategy,
    ordered: impl IntoIterator<Item = T>,
    same_prefix_as_primary: impl Fn(T) -> bool,
    can_continue: impl Fn(T) -> bool,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    let push = |id: T, out: &mut Vec<T>| {
        if !out.contains(&id) && can_continue(id) {
            out.push(id);
        }
    };
    push(failed, &mut out);
    if strategy == Strategy::SameModel {
        return out;
    }
    push(primary, &mut out);
    for id in ordered {
        let fits = match strategy {
            Strategy::SameModel => false,
            Strategy::SameProvider => same_prefix_as_primary(id),
            Strategy::DifferentProvider => !same_prefix_as_primary(id),
        };
        if fits && id != primary {
            push(id, &mut out);
        }
    }
    out
}

/// The strategy that orders continuation candidates: a cut, a stall or an in-band error is
/// a transport failure (spec §4.1), so `on_timeout`'s, else the default rule's.
pub fn continuation_strategy(policy: &super::RetryPolicy) -> Strategy {
    policy
        .on_timeout
        .as_ref()
        .unwrap_or(&policy.default_rule)
        .strategy
}

/// The entry index a model name stands for among `entries`: an exact entry, else a
/// wildcard entry of its prefix.
pub(crate) fn entry_for_model(providers: &[&super::Provider], model: &str) -> Option<usize> {
    providers.iter().position(|p| p.model == model).or_else(|| {
        providers
            .iter()
            .position(|p| p.is_wildcard() && p.prefix() == super::model_prefix(model))
    })
}

/// The models (with their style) that would be asked to continue a stream of `providers[me]`
/// when it fails: [`continuation_order`] over the config's entries.
pub(crate) fn config_candidates(
    providers: &[&super::Provider],
    me: usize,
) -> Vec<(String, Continuation)> {
    let Some(policy) = providers[me].retry_policy.as_ref() else {
        return Vec::new();
    };
    let prefix = providers[me].prefix();
    // Fallbacks keep their own model name (a wildcard entry answers for them).
    let mut names: Vec<(String, usize)> = Vec::new();
    for m in &policy.fallback_models {
        if let Some(i) = entry_for_model(providers, m) {
            names.push((m.clone(), i));
        }
    }
    for (i, p) in providers.iter().enumerate() {
        if !p.is_wildcard() {
            names.push((p.model.clone(), i));
        }
    }
    let own = names.len();
    names.push((providers[me].model.clone(), me));
    let order = continuation_order(
        own,
        own,
        continuation_strategy(policy),
        0..own,
        |k| super::model_prefix(&names[k].0) == prefix,
        |k| providers[names[k].1].continuation.can_continue(),
    );
    let mut out: Vec<(String, Continuation)> = Vec::new();
    for k in order {
        let (model, i) = &names[k];
        if !out.iter().any(|(m, _)| m == model) {
            out.push((model.clone(), providers[*i].continuation));
        }
    }
    out
}

/// Warns about every entry whose policy turns stream recovery on while no candidate (the
/// entry itself included) can continue a stream.
pub(crate) fn warn_recovery_without_candidates(rep: &mut Report, entries: &[Entry]) {
    let providers: Vec<&super::Provider> = entries.iter().map(|e| &e.provider).collect();
    for (i, e) in entries.iter().enumerate() {
        let Some(uses) = &e.uses else { continue };
        let Some((path, pos)) = &uses.stream_recovery else {
            continue;
        };
        let enabled = e
            .provider
            .retry_policy
            .as_ref()
            .is_some_and(|p| p.stream_recovery.is_some());
        if enabled && config_candidates(&providers, i).is_empty() {
            rep.warn(
                path,
                *pos,
                format!(
                    "stream recovery is on, but no candidate can continue a stream of {}: it has `continuation: {}` and no failover candidate declares a style. Set `continuation:` on an entry (Anthropic entries continue natively), or remove stream_recovery",
                    e.provider.model, e.provider.continuation
                ),
            );
        }
    }
}
