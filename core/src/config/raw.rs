//! The file as written: serde structs that mirror the YAML one to one.
//!
//! Every struct denies unknown keys. Leaves are [`Scalar`]s so that a value of the wrong
//! kind (`max_attempts: three`) is reported by the conversion step, which collects every
//! such error, instead of stopping the whole parse at the first one. Only the shape of
//! the document (a list where a mapping belongs, an unknown key) stops the parse.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::fmt;

pub(crate) type S<T> = Spanned<T>;
pub(crate) type Opt<T> = Option<Spanned<T>>;

/// One scalar value of any YAML kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Scalar {
    /// A short description of the kind, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Scalar::Int(_) => "a number",
            Scalar::Float(_) => "a decimal number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Str(_) => "a string",
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a single value (a string, number or boolean)")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(i128::from(v)))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                i128::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("number too large"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Str(String::new()))
            }
            fn visit_none<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Str(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping whose keys are chosen by the user (e.g. `headers`), in file order.
#[derive(Debug)]
pub(crate) struct RawMap<V>(pub Vec<(S<String>, S<V>)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for RawMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = RawMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = a.next_key()? {
                    out.push((k, a.next_value()?));
                }
                Ok(RawMap(out))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// The top level of a config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub version: Opt<Scalar>,
    pub listeners: Opt<RawListeners>,
    pub model_providers: Opt<Vec<S<RawProvider>>>,
    pub llm_providers: Opt<Vec<S<RawProvider>>>,
    pub model_aliases: Opt<RawMap<RawAlias>>,
    pub retry_budget: Opt<RawRetryBudget>,
    pub limits: Opt<RawLimits>,
    /// Shared state across replicas (spec §14, `state.rs`).
    pub state: Opt<super::state::RawState>,
    /// `metrics: {enabled}` (switchback's own; see `observe.rs`).
    pub metrics: Opt<RawMetrics>,
    /// Plano's `tracing`: honoured (see `observe.rs`), checked against Plano's schema.
    pub tracing: Opt<RawNode>,
    /// Plano's `overrides`: one key is honoured, the rest are named in warnings.
    pub overrides: Opt<RawNode>,
    // Plano sections that switchback does not implement: checked against Plano's schema,
    // then ignored with a warning (see `plano.rs`).
    pub agents: Opt<RawNode>,
    pub filters: Opt<RawNode>,
    pub endpoints: Opt<RawNode>,
    pub system_prompt: Opt<RawNode>,
    pub prompt_targets: Opt<RawNode>,
    pub prompt_guards: Opt<RawNode>,
    pub ratelimits: Opt<RawNode>,
    pub mode: Opt<RawNode>,
    pub routing: Opt<RawNode>,
    pub routing_preferences: Opt<RawNode>,
    pub state_storage: Opt<RawNode>,
    pub prompt_caching: Opt<RawNode>,
    pub model_metrics_sources: Opt<RawNode>,
}

impl RawConfig {
    /// The ignored Plano sections that are present, with their names, in schema order.
    pub(crate) fn ignored_sections(&self) -> Vec<(&'static str, &S<RawNode>)> {
        let all = [
            ("agents", &self.agents),
            ("filters", &self.filters),
            ("endpoints", &self.endpoints),
            ("system_prompt", &self.system_prompt),
            ("prompt_targets", &self.prompt_targets),
            ("prompt_guards", &self.prompt_guards),
            ("ratelimits", &self.ratelimits),
            ("mode", &self.mode),
            ("routing", &self.routing),
            ("routing_preferences", &self.routing_preferences),
            ("state_storage", &self.state_storage),
            ("prompt_caching", &self.prompt_caching),
            ("model_metrics_sources", &self.model_metrics_sources),
        ];
        all.into_iter()
            .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
            .collect()
    }
}

/// Any YAML value, with the position of every node kept: the form of the Plano sections
/// switchback checks against Plano's schema but does not otherwise read.
#[derive(Debug)]
pub(crate) enum RawNode {
    Map(Vec<(S<String>, S<RawNode>)>),
    Seq(Vec<S<RawNode>>),
    Scalar(Scalar),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Int(i128::from(v))))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Int(i128::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Str(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Str(v)))
            }
            fn visit_unit<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Str(String::new())))
            }
            fn visit_none<E>(self) -> Result<RawNode, E> {
                Ok(RawNode::Scalar(Scalar::Str(String::new())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawNode, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(RawNode::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawNode, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = a.next_key()? {
                    out.push((k, a.next_value()?));
                }
                Ok(RawNode::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `model_aliases` entry: `alias_name: {target: provider/model}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlias {
    pub target: Opt<Scalar>,
}

/// `listeners:` in its list form or Plano's legacy mapping form.
#[derive(Debug)]
pub(crate) enum RawListeners {
    List(Vec<S<RawListener>>),
    Legacy(Vec<(S<String>, S<RawLegacyListener>)>),
}

impl<'de> Deserialize<'de> for RawListeners {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawListeners;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of listeners")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawListeners, A::Error> {
                let mut out = Vec::new();
                while let Some(l) = a.next_element()? {
                    out.push(l);
                }
                Ok(RawListeners::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawListeners, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = a.next_key()? {
                    out.push((k, a.next_value()?));
                }
                Ok(RawListeners::Legacy(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `listeners[]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    #[serde(rename = "type")]
    pub kind: Opt<Scalar>,
    pub name: Opt<Scalar>,
    pub address: Opt<Scalar>,
    pub port: Opt<Scalar>,
    pub timeout: Opt<Scalar>,
    /// Plano's Envoy route retries, mapped onto a `retry_policy` (`max_retries.rs`).
    pub max_retries: Opt<Scalar>,
    /// switchback's admin listener for `/metrics` and `/v1/status` (`observe.rs`).
    pub admin_port: Opt<Scalar>,
    pub admin_address: Opt<Scalar>,
    // Plano keys of prompt and agent listeners; on a model listener filters are refused.
    pub router: Opt<RawNode>,
    pub agents: Opt<RawNode>,
    pub input_filters: Opt<RawNode>,
    pub output_filters: Opt<RawNode>,
}

/// One entry of Plano's legacy `listeners: {egress_traffic: {...}}` form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLegacyListener {
    pub address: Opt<Scalar>,
    pub port: Opt<Scalar>,
    pub message_format: Opt<Scalar>,
    pub timeout: Opt<Scalar>,
}

/// One `model_providers[]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub model: Opt<Scalar>,
    pub name: Opt<Scalar>,
    pub access_key: Opt<Scalar>,
    pub base_url: Opt<Scalar>,
    pub provider_interface: Opt<Scalar>,
    pub default: Opt<Scalar>,
    pub passthrough_auth: Opt<Scalar>,
    pub default_max_tokens: Opt<Scalar>,
    /// The provider serves OpenAI's Responses API itself (`/v1/responses`).
    pub responses: Opt<Scalar>,
    /// The most output tokens a translated request asks this provider for.
    pub max_output_tokens: Opt<Scalar>,
    pub headers: Opt<RawMap<Scalar>>,
    pub retry_policy: Opt<RawRetryPolicy>,
    pub timeouts: Opt<RawTimeouts>,
    pub mock: Opt<RawMock>,
    /// The `Host` header sent upstream (Plano's `http_host`).
    pub http_host: Opt<Scalar>,
    /// The older spelling of `base_url`: `host:port`, `http://host:port` or a full URL.
    pub endpoint: Opt<Scalar>,
    pub retry_budget: Opt<RawRetryBudget>,
    /// How the entry continues a cut stream (spec §12, `recovery.rs`).
    pub continuation: Opt<Scalar>,
    // Plano fields switchback does not use: accepted and ignored, with a warning.
    pub routing_preferences: Opt<RawNode>,
}

/// `timeouts:` on a provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub connect: Opt<Scalar>,
    pub first_token: Opt<Scalar>,
    pub idle: Opt<Scalar>,
}

/// `mock:` on a `mock/...` provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMock {
    pub delay: Opt<Scalar>,
    pub retry_after_seconds: Opt<Scalar>,
}

/// `retry_policy:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetryPolicy {
    pub fallback_models: Opt<Vec<S<Scalar>>>,
    pub default_strategy: Opt<Scalar>,
    pub default_max_attempts: Opt<Scalar>,
    pub default_then: Opt<RawThen>,
    pub default_max_wait: Opt<Scalar>,
    pub on_status_codes: Opt<Vec<S<RawStatusRule>>>,
    pub on_timeout: Opt<RawRule>,
    pub backoff: Opt<RawBackoff>,
    pub retry_after_handling: Opt<RawRetryAfter>,
    pub max_retry_duration_ms: Opt<Scalar>,
    pub on_high_latency: Opt<RawHighLatency>,
    pub on_failures: Opt<RawOnFailures>,
    /// Spec §12 (`recovery.rs`).
    pub stream_recovery: Opt<super::recovery::RawStreamRecovery>,
}

/// `then:` (escalation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThen {
    pub strategy: Opt<Scalar>,
    pub max_attempts: Opt<Scalar>,
}

/// `on_timeout:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub strategy: Opt<Scalar>,
    pub max_attempts: Opt<Scalar>,
    pub then: Opt<RawThen>,
    pub max_wait: Opt<Scalar>,
}

/// One `on_status_codes[]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatusRule {
    pub codes: Opt<Vec<S<Scalar>>>,
    pub error_codes: Opt<Vec<S<Scalar>>>,
    pub strategy: Opt<Scalar>,
    pub max_attempts: Opt<Scalar>,
    pub then: Opt<RawThen>,
    pub max_wait: Opt<Scalar>,
}

/// `backoff:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBackoff {
    pub apply_to: Opt<Scalar>,
    pub base_ms: Opt<Scalar>,
    pub max_ms: Opt<Scalar>,
    pub jitter: Opt<Scalar>,
}

/// `retry_after_handling:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetryAfter {
    pub scope: Opt<Scalar>,
    pub apply_to: Opt<Scalar>,
    pub max_retry_after_seconds: Opt<Scalar>,
}

/// `on_high_latency:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHighLatency {
    pub threshold_ms: Opt<Scalar>,
    pub measure: Opt<Scalar>,
    pub min_triggers: Opt<Scalar>,
    pub trigger_window_seconds: Opt<Scalar>,
    pub strategy: Opt<Scalar>,
    pub max_attempts: Opt<Scalar>,
    pub block_duration_seconds: Opt<Scalar>,
    pub scope: Opt<Scalar>,
    pub apply_to: Opt<Scalar>,
}

/// `retry_budget:` at the top level or on a provider entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetryBudget {
    pub enabled: Opt<Scalar>,
    pub ratio: Opt<Scalar>,
    pub min_per_second: Opt<Scalar>,
}

/// `metrics:` at the top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub enabled: Opt<Scalar>,
}

/// `limits:` at the top level.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_buffered_body_bytes: Opt<Scalar>,
}

/// `on_failures:` in a `retry_policy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOnFailures {
    pub consecutive: Opt<Scalar>,
    pub window_seconds: Opt<Scalar>,
    pub block_duration_seconds: Opt<Scalar>,
    pub scope: Opt<Scalar>,
}
