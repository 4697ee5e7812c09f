//! The Plano sections switchback does not implement (spec §10): each is checked against
//! Plano's schema (`schema.rs`) and named in a warning that says what is not done, so a
//! Plano config runs unchanged and its user knows exactly what differs. `overrides` is
//! read key by key: `upstream_connect_timeout` is honoured, the rest are named.

use std::time::Duration;

use super::fields::duration;
use super::raw::{RawConfig, RawNode, S};
use super::report::{join, Pos, Report};
use super::schema::{check_shape, section_shape, OVERRIDES};

/// What each ignored top-level section would have done in Plano, and what a user gets
/// instead, as the second half of its warning.
pub(crate) const IGNORED_SECTIONS: &[(&str, &str)] = &[
    ("agents", "switchback serves no agent listeners, so these agents are never called"),
    ("filters", "switchback runs no filter chains; only agent listeners (which are skipped) use these, and a model listener that names one is refused"),
    ("endpoints", "they are the upstreams of prompt targets and agents, which switchback does not serve"),
    ("system_prompt", "Plano adds it on prompt listeners only, which switchback does not serve; model requests are forwarded as the client sent them"),
    ("prompt_targets", "switchback serves no prompt listeners, so no prompt is matched to a target or turned into a function call"),
    ("prompt_guards", "Plano runs them on prompt listeners only, which switchback does not serve; requests on the model listener are forwarded unchecked, as in Plano"),
    ("ratelimits", "switchback does not enforce token rate limits; every request is forwarded however many tokens a client uses. Limit clients in front of the gateway if you need it"),
    ("mode", "switchback always serves model (LLM) requests"),
    ("routing", "switchback does no session or preference routing; a request goes to the model it names, an alias, or the default provider"),
    ("routing_preferences", "switchback does not choose models by preference; a request goes to the model it names, an alias, or the default provider"),
    ("state_storage", "switchback keeps no conversation state"),
    ("prompt_caching", "switchback adds no cache-control markers and does not pin a conversation to one model; prompts are sent as the client wrote them"),
    ("model_metrics_sources", "switchback fetches no cost or latency metrics; they only feed Plano's model routing, which switchback does not do"),
];

/// What each `overrides` key would have done, for the keys switchback does not honour.
const IGNORED_OVERRIDES: &[(&str, &str)] = &[
    ("prompt_target_intent_matching_threshold", "it tunes prompt targets, which switchback does not serve"),
    ("optimize_context_window", "switchback does not trim conversations to fit a model's context window; an over-long request gets the upstream's own error"),
    ("use_agent_orchestrator", "switchback runs no agent orchestrator"),
    ("disable_signals", "switchback runs no signal analysis, so there is nothing to disable"),
    ("upstream_tls_ca_path", "switchback verifies upstream TLS against its bundled Mozilla roots and loads no other CA bundle; an upstream whose certificate only that CA signs will fail to connect"),
    ("llm_routing_model", "switchback runs no router model"),
    ("agent_orchestration_model", "switchback runs no agent orchestrator"),
    ("orchestrator_model_context_length", "switchback runs no orchestrator model"),
];

/// The warning for an ignored section or key at `path`.
pub(crate) fn ignored(path: &str, why: &str) -> String {
    format!("`{path}` is ignored: {why}")
}

/// Checks and names every ignored section; returns the `upstream_connect_timeout`
/// override, if one is set (it becomes the default `timeouts.connect`).
pub(crate) fn ignored_sections(rep: &mut Report, raw: &RawConfig) -> Option<Duration> {
    for (name, node) in raw.ignored_sections() {
        check_shape(rep, node, name, section_shape(name));
        let why = IGNORED_SECTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("switchback does not implement it", |(_, w)| w);
        rep.warn(name, Pos::at(node), ignored(name, why));
    }
    raw.overrides.as_ref().and_then(|o| overrides(rep, o))
}

fn overrides(rep: &mut Report, node: &S<RawNode>) -> Option<Duration> {
    check_shape(rep, node, "overrides", &OVERRIDES);
    let RawNode::Map(entries) = &node.value else {
        return None;
    };
    let mut connect = None;
    for (k, v) in entries {
        let path = join("overrides", &k.value);
        if k.value == "upstream_connect_timeout" {
            if let RawNode::Scalar(s) = &v.value {
                let spanned = S {
                    value: s.clone(),
                    referenced: v.referenced,
                    defined: v.defined,
                };
                connect = duration(rep, &spanned, &path, false);
            }
        } else if let Some((_, why)) = IGNORED_OVERRIDES.iter().find(|(n, _)| *n == k.value) {
            rep.warn(&path, Pos::at(k), ignored(&path, why));
        }
    }
    connect
}
