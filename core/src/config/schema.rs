//! The keys of Plano's schema (katanemo/plano `config/plano_config_schema.yaml`, release
//! 0.4.36) for the parts switchback does not read, as data: a typo inside an ignored
//! section is still an error with its path and line, while every key Plano knows passes.
//!
//! Only keys are checked (and that a value which must be one scalar is one): values of
//! ignored sections are never used, so their types do not matter here.

use super::raw::{RawNode, S};
use super::report::{index, join, Pos, Report};

/// The form a node of Plano's schema takes.
#[derive(Debug)]
pub(crate) enum Shape {
    /// One value: a string, number or boolean.
    Scalar,
    /// A list whose items all have the inner shape.
    List(&'static Shape),
    /// A mapping with these keys only (Plano's `additionalProperties: false`).
    Map(&'static [(&'static str, Shape)]),
    /// A mapping whose keys the user chooses, each value of the inner shape.
    Dict(&'static Shape),
}

use Shape::{Dict, List, Map, Scalar};

const STRINGS: Shape = List(&Scalar);

/// `agents[]` and `filters[]` entries.
pub(crate) const AGENT_OR_FILTER: Shape = List(&Map(&[
    ("id", Scalar),
    ("url", Scalar),
    ("type", Scalar),
    ("transport", Scalar),
    ("tool", Scalar),
]));

/// `endpoints`.
const ENDPOINTS: Shape = Dict(&Map(&[
    ("endpoint", Scalar),
    ("connect_timeout", Scalar),
    ("protocol", Scalar),
    ("http_host", Scalar),
    ("prefix_affinity", Scalar),
]));

/// `overrides`.
pub(crate) const OVERRIDES: Shape = Map(&[
    ("prompt_target_intent_matching_threshold", Scalar),
    ("optimize_context_window", Scalar),
    ("use_agent_orchestrator", Scalar),
    ("disable_signals", Scalar),
    ("upstream_connect_timeout", Scalar),
    ("upstream_tls_ca_path", Scalar),
    ("llm_routing_model", Scalar),
    ("agent_orchestration_model", Scalar),
    ("orchestrator_model_context_length", Scalar),
]);

const PROMPT_CACHING: Shape = Map(&[
    ("enabled", Scalar),
    ("session_affinity", Scalar),
    ("inject_cache_control", Scalar),
    ("min_prefix_tokens", Scalar),
    ("session_ttl_seconds", Scalar),
]);

const PROMPT_TARGETS: Shape = List(&Map(&[
    ("name", Scalar),
    ("default", Scalar),
    ("description", Scalar),
    ("auto_llm_dispatch_on_response", Scalar),
    (
        "parameters",
        List(&Map(&[
            ("name", Scalar),
            ("additionalProperties", Scalar),
            ("required", Scalar),
            ("default", Scalar),
            ("description", Scalar),
            ("type", Scalar),
            ("enum", List(&Scalar)),
            ("in_path", Scalar),
            ("format", Scalar),
        ])),
    ),
    (
        "endpoint",
        Map(&[
            ("name", Scalar),
            ("path", Scalar),
            ("http_method", Scalar),
            ("http_headers", Dict(&Scalar)),
        ]),
    ),
    ("system_prompt", Scalar),
]));

const RATELIMITS: Shape = List(&Map(&[
    ("model", Scalar),
    ("selector", Map(&[("key", Scalar), ("value", Scalar)])),
    ("limit", Map(&[("tokens", Scalar), ("unit", Scalar)])),
]));

/// `tracing`: Plano's keys, plus switchback's `otlp_http_endpoint`.
pub(crate) const TRACING: Shape = Map(&[
    ("random_sampling", Scalar),
    ("trace_arch_internal", Scalar),
    ("opentracing_grpc_endpoint", Scalar),
    ("otlp_http_endpoint", Scalar),
    (
        "span_attributes",
        Map(&[("header_prefixes", STRINGS), ("static", Dict(&Scalar))]),
    ),
    (
        "exporters",
        List(&Map(&[
            ("type", Scalar),
            ("url", Scalar),
            ("api_key", Scalar),
            ("distinct_id_header", Scalar),
            ("capture_messages", Scalar),
        ])),
    ),
]);

const ROUTING: Shape = Map(&[
    ("llm_provider", Scalar),
    ("model", Scalar),
    ("session_ttl_seconds", Scalar),
    ("session_max_entries", Scalar),
    (
        "session_cache",
        Map(&[("type", Scalar), ("url", Scalar), ("tenant_header", Scalar)]),
    ),
    (
        "routing_budget",
        Map(&[
            ("max_switch_spend_pct", Scalar),
            ("replenish_on_rebind", Scalar),
            ("cache_read_discount", Scalar),
            ("record_counterfactual", Scalar),
        ]),
    ),
    ("route_on_user_only", Scalar),
]);

const STATE_STORAGE: Shape = Map(&[("type", Scalar), ("connection_string", Scalar)]);

const PROMPT_GUARDS: Shape = Map(&[(
    "input_guards",
    Map(&[(
        "jailbreak",
        Map(&[("on_exception", Map(&[("message", Scalar)]))]),
    )]),
)]);

/// Top-level `routing_preferences[]`.
const ROUTING_PREFERENCES: Shape = List(&Map(&[
    ("name", Scalar),
    ("description", Scalar),
    ("models", STRINGS),
    ("selection_policy", Map(&[("prefer", Scalar)])),
]));

/// `routing_preferences[]` inline on a provider entry (deprecated in Plano).
pub(crate) const PROVIDER_ROUTING_PREFERENCES: Shape =
    List(&Map(&[("name", Scalar), ("description", Scalar)]));

/// `model_metrics_sources[]`: the union of the keys of Plano's `cost` and `latency` forms.
const MODEL_METRICS_SOURCES: Shape = List(&Map(&[
    ("type", Scalar),
    ("provider", Scalar),
    ("url", Scalar),
    ("query", Scalar),
    ("refresh_interval", Scalar),
    ("model_aliases", Dict(&Scalar)),
]));

/// `agents[]` of an agent listener.
pub(crate) const LISTENER_AGENTS: Shape = List(&Map(&[
    ("id", Scalar),
    ("description", Scalar),
    ("default", Scalar),
    ("input_filters", STRINGS),
]));

/// A list of filter ids (`input_filters`, `output_filters`).
pub(crate) const FILTER_IDS: Shape = STRINGS;

/// The schema of each top-level section switchback ignores.
pub(crate) fn section_shape(name: &str) -> &'static Shape {
    match name {
        "agents" | "filters" => &AGENT_OR_FILTER,
        "endpoints" => &ENDPOINTS,
        "prompt_targets" => &PROMPT_TARGETS,
        "prompt_guards" => &PROMPT_GUARDS,
        "ratelimits" => &RATELIMITS,
        "tracing" => &TRACING,
        "routing" => &ROUTING,
        "routing_preferences" => &ROUTING_PREFERENCES,
        "state_storage" => &STATE_STORAGE,
        "prompt_caching" => &PROMPT_CACHING,
        "model_metrics_sources" => &MODEL_METRICS_SOURCES,
        "overrides" => &OVERRIDES,
        _ => &Scalar, // `system_prompt`, `mode`
    }
}

/// Reports every key of `node` (at `path`) that Plano's schema does not have, and every
/// list or mapping where the schema has a single value.
pub(crate) fn check_shape(rep: &mut Report, node: &S<RawNode>, path: &str, shape: &Shape) {
    match (shape, &node.value) {
        (Scalar, RawNode::Scalar(_)) => {}
        (Scalar, _) => rep.error(
            path,
            Pos::at(node),
            format!(
                "`{}` must be a single value here, not a list or a mapping",
                leaf(path)
            ),
        ),
        (List(inner), RawNode::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_shape(rep, item, &index(path, i), inner);
            }
        }
        (List(_), _) => rep.error(
            path,
            Pos::at(node),
            format!(
                "`{}` must be a list here, e.g. `[a, b]` or `- a` lines",
                leaf(path)
            ),
        ),
        (Map(keys), RawNode::Map(entries)) => {
            for (k, v) in entries {
                let p = join(path, &k.value);
                match keys.iter().find(|(name, _)| *name == k.value) {
                    Some((_, inner)) => check_shape(rep, v, &p, inner),
                    None => {
                        let allowed: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
                        rep.error(
                            p,
                            Pos::at(k),
                            format!(
                                "unknown field `{}`; Plano's schema allows only {} here. Remove or rename this key",
                                k.value,
                                allowed.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        (Dict(inner), RawNode::Map(entries)) => {
            for (k, v) in entries {
                check_shape(rep, v, &join(path, &k.value), inner);
            }
        }
        (Map(_) | Dict(_), _) => rep.error(
            path,
            Pos::at(node),
            format!(
                "`{}` must be a mapping of `key: value` pairs here",
                leaf(path)
            ),
        ),
    }
}

fn leaf(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}
