//! The typed, validated configuration. Everything here is produced by
//! [`crate::config::load_str`]; defaults are already applied, so consumers never
//! see an `Option` that means "use the default".

use core::net::IpAddr;
use std::fmt;
use std::time::Duration;

/// A whole gateway configuration: listeners and the providers they route to.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The `version` string of the file, if it had one.
    pub version: Option<String>,
    /// Model listeners, in file order.
    pub listeners: Vec<Listener>,
    /// Model providers, in file order (the order matters for candidate selection, spec §4.3).
    pub providers: Vec<Provider>,
    /// `model_aliases`, in file order; every target is a provider entry's `model`.
    pub aliases: Vec<ModelAlias>,
    /// The gateway-wide retry budget (`retry_budget`, spec §11); on by default.
    pub retry_budget: RetryBudgetSettings,
    /// Gateway-wide resource bounds (`limits`).
    pub limits: Limits,
    /// What replicas share (`state`, spec §14); by default nothing.
    pub state: super::StateSettings,
    /// `metrics:`: whether requests are counted for `/metrics` (on by default).
    pub metrics: MetricsSettings,
    /// Plano's `tracing:`, when it turns tracing on (an endpoint and a sampling rate).
    pub tracing: Option<TracingSettings>,
}

/// `metrics:` (spec §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// `false`: nothing is recorded and `/metrics` answers 404.
    pub enabled: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { enabled: true }
    }
}

/// How spans leave the gateway: OTLP over gRPC (Plano's `opentracing_grpc_endpoint`) or
/// over HTTP with protobuf bodies (`otlp_http_endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `opentelemetry.proto.collector.trace.v1.TraceService/Export` over HTTP/2.
    Grpc,
    /// `POST /v1/traces` with an `application/x-protobuf` body, over HTTP/1.1.
    HttpProtobuf,
}

/// Plano's `tracing:` section, as switchback honours it (spec §13).
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// `random_sampling`: the percentage (0 to 100) of requests without a sampled
    /// `traceparent` that are traced.
    pub sampling_percent: u32,
    pub protocol: OtlpProtocol,
    /// The collector's URL (`http://host:4317`, `https://collector/v1/traces`).
    pub endpoint: String,
    /// `span_attributes.static`: added to every request span.
    pub static_attributes: Vec<(String, String)>,
    /// `span_attributes.header_prefixes`: request headers whose name starts with one
    /// become request span attributes (prefix removed, `-` turned into `.`).
    pub header_prefixes: Vec<String>,
}

/// One `model_aliases` entry (spec §10): requests for `name` go to the entry whose
/// `model` is `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAlias {
    pub name: String,
    /// The full `model` of the provider entry the alias stands for.
    pub target: String,
}

/// Where a provider entry's effective `retry_policy` came from (shown by `check --explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// Written on the entry.
    Written,
    /// Mapped from the model listener's `max_retries: N` (Plano's Envoy route retries),
    /// because the entry has no `retry_policy` of its own.
    ListenerMaxRetries(u32),
    /// None: the upstream answer passes through unchanged.
    None,
}

/// `retry_budget:` (spec §11): over any sliding 10 s window, retries may number at most
/// `ratio` × the first attempts in that window plus `min_per_second` × 10.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudgetSettings {
    /// `false`: retries are not budgeted at all.
    pub enabled: bool,
    /// Retries allowed per first attempt (0.2: one retry per five requests).
    pub ratio: f64,
    /// Retries allowed per second regardless of traffic (the floor).
    pub min_per_second: u32,
}

impl Default for RetryBudgetSettings {
    /// On, `{ratio: 0.2, min_per_second: 10}`.
    fn default() -> Self {
        RetryBudgetSettings {
            enabled: true,
            ratio: 0.2,
            min_per_second: 10,
        }
    }
}

/// The default of [`Limits::max_buffered_body_bytes`]: 256 MiB.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: usize = 256 * 1024 * 1024;

/// `limits:`: bounds on what the gateway as a whole holds in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of request and response bodies buffered at once, across every
    /// request; past it new requests get 503 with `Retry-After: 1`.
    pub max_buffered_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
        }
    }
}

/// One `type: model` listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    /// The overall deadline of one request, retries and waits included (spec §3.1).
    pub timeout: Duration,
    /// Plano's `max_retries`, already applied to the providers (spec §10).
    pub max_retries: Option<u32>,
    /// `admin_port` (and `admin_address`): where `/metrics` and `/v1/status` are served
    /// instead of on this listener.
    pub admin: Option<core::net::SocketAddr>,
}

/// The wire protocol a provider entry speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interface {
    /// OpenAI Chat Completions (and every OpenAI-compatible server).
    OpenAi,
    /// Anthropic Messages API.
    Anthropic,
    /// Azure OpenAI: OpenAI's body with Azure's paths and `api-key` header.
    AzureOpenAi,
    /// The built-in mock provider (spec §3.4), answered in-process.
    Mock,
}

/// A credential. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value, for building an upstream request header. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Per-attempt timeouts (the `timeouts` extension, spec §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connection establishment.
    pub connect: Duration,
    /// From sending the request until the attempt commits (spec §6).
    pub first_token: Duration,
    /// The longest gap between body chunks.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(30),
            idle: Duration::from_secs(30),
        }
    }
}

/// Settings of a built-in mock provider entry (`mock/...` models, spec §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockSettings {
    /// How long the mock waits before answering (`mock/slow`; zero for the others).
    pub delay: Duration,
    /// The `Retry-After` the rate-limited mock sends, in seconds.
    pub retry_after_seconds: u64,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            delay: Duration::from_secs(2),
            retry_after_seconds: 5,
        }
    }
}

/// One `model_providers[]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Provider {
    /// `prefix/model-id`, compared as a full string.
    pub model: String,
    /// An alias clients may use instead of `model`.
    pub name: Option<String>,
    pub access_key: Option<Secret>,
    /// `base_url` as written (after variable expansion), or the URL the older `endpoint`
    /// spelling stands for, if any.
    pub base_url: Option<String>,
    /// The `Host` header sent upstream instead of the URL's host (Plano's `http_host`).
    pub http_host: Option<String>,
    /// The wire protocol, resolved from `provider_interface` or the prefix.
    pub interface: Interface,
    pub default: bool,
    pub passthrough_auth: bool,
    /// `max_tokens` sent to an Anthropic-interface upstream when the client gives none
    /// (Anthropic requires it; default 4096).
    pub default_max_tokens: u32,
    /// `responses: true`: an OpenAI-interface provider that serves `/v1/responses` itself,
    /// so Responses clients are passed through to it instead of translated (spec §9).
    pub responses: bool,
    /// `max_output_tokens`: a translated request's output limit (`max_tokens` of a Messages
    /// client, `max_output_tokens` of a Responses client) is lowered to this for this
    /// provider. `None`: sent as the client asked.
    pub max_output_tokens: Option<u32>,
    /// Extra upstream headers, in file order.
    pub headers: Vec<(String, Secret)>,
    /// `None`: no retries at all, the upstream answer passes through (spec §3.2).
    pub retry_policy: Option<RetryPolicy>,
    /// Whether `retry_policy` was written or mapped from the listener's `max_retries`.
    pub policy_origin: PolicyOrigin,
    /// This entry's own retry budget (`retry_budget` on the entry, spec §11); `None`: the
    /// entry's requests count in the gateway's budget.
    pub retry_budget: Option<RetryBudgetSettings>,
    pub timeouts: Timeouts,
    /// How the entry continues a cut stream (`continuation:`, spec §12), default applied.
    pub continuation: super::Continuation,
    /// Only for `mock/` models.
    pub mock: MockSettings,
    /// The 1-based YAML line of the entry, for messages.
    pub line: usize,
}

impl Provider {
    /// The part of `model` before the first `/`.
    pub fn prefix(&self) -> &str {
        model_prefix(&self.model)
    }
    /// Whether `model` is a wildcard (`openai/*`): it routes every `openai/<id>` request
    /// that no exact entry takes (spec §10).
    pub fn is_wildcard(&self) -> bool {
        is_wildcard_model(&self.model)
    }
    /// The part of `model` after the first `/`: what the upstream is asked for.
    pub fn model_id(&self) -> &str {
        self.model
            .split_once('/')
            .map(|(_, id)| id)
            .unwrap_or(&self.model)
    }
}

/// Whether a `prefix/model-id` string is a wildcard entry's: `prefix/*`.
pub fn is_wildcard_model(model: &str) -> bool {
    model.split_once('/').is_some_and(|(_, id)| id == "*")
}

/// The provider prefix of a `prefix/model-id` string (the whole string if it has no `/`).
pub fn model_prefix(model: &str) -> &str {
    model.split_once('/').map(|(p, _)| p).unwrap_or(model)
}

/// Which target a retry goes to (spec §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The model that just failed, again.
    SameModel,
    /// Another model with the primary's prefix.
    SameProvider,
    /// A model whose prefix differs from the primary's.
    DifferentProvider,
}

/// When backoff applies (spec §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffApplyTo {
    SameModel,
    SameProvider,
    Global,
}

/// What a block covers: one model, or every model of a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockScope {
    Model,
    Provider,
}

/// Where a block lives: shared by all requests, or only this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockApplyTo {
    Global,
    Request,
}

/// Which latency `on_high_latency` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyMeasure {
    /// Time to the commit point (stream's first content event, or the response head).
    Ttfb,
    /// Time to the complete body.
    Total,
}

/// An inclusive range of HTTP status codes from `codes:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub start: u16,
    pub end: u16,
}

impl StatusRange {
    pub fn contains(&self, status: u16) -> bool {
        self.start <= status && status <= self.end
    }
}

/// The stage a rule escalates to once its own retries are spent (spec §4.9, `then`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    pub strategy: Strategy,
    pub max_attempts: u32,
}

/// A retry rule: what to do and how many retries it grants (spec §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRule {
    pub strategy: Strategy,
    /// Retries granted after the original attempt; 0 never retries.
    pub max_attempts: u32,
    /// Escalation once the retries are spent or the wait is too long.
    pub then: Option<Escalation>,
    /// With `then`: the longest block wait this rule accepts before escalating (default 5 s).
    pub max_wait: Duration,
}

/// One `on_status_codes[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRule {
    pub codes: Vec<StatusRange>,
    /// When non-empty, matches only responses whose JSON error `code` or `type` is listed.
    pub error_codes: Vec<String>,
    pub rule: RetryRule,
}

/// `backoff:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub apply_to: BackoffApplyTo,
    pub base: Duration,
    pub max: Duration,
    pub jitter: bool,
}

/// `retry_after_handling:` (always on, spec §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfterHandling {
    pub scope: BlockScope,
    pub apply_to: BlockApplyTo,
    pub max_retry_after: Duration,
}

impl Default for RetryAfterHandling {
    fn default() -> Self {
        RetryAfterHandling {
            scope: BlockScope::Model,
            apply_to: BlockApplyTo::Global,
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// `on_high_latency:` (spec §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighLatency {
    pub threshold: Duration,
    pub measure: LatencyMeasure,
    pub min_triggers: u32,
    /// Required when `min_triggers > 1`.
    pub trigger_window: Option<Duration>,
    pub strategy: Strategy,
    pub max_attempts: u32,
    pub block_duration: Duration,
    pub scope: BlockScope,
    pub apply_to: BlockApplyTo,
}

/// `on_failures:` (spec §11): `consecutive` retriable failures of a model within
/// `window` block it for `block_duration`; then one request is let through first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnFailures {
    pub consecutive: u32,
    pub window: Duration,
    pub block_duration: Duration,
    pub scope: BlockScope,
}

impl Default for OnFailures {
    /// What `on_failures: {}` means: `{consecutive: 5, window_seconds: 30,
    /// block_duration_seconds: 30, scope: model}`.
    fn default() -> Self {
        OnFailures {
            consecutive: 5,
            window: Duration::from_secs(30),
            block_duration: Duration::from_secs(30),
            scope: BlockScope::Model,
        }
    }
}

/// A provider's `retry_policy` with every default applied (spec §4).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Tried first, in order, for `same_provider`/`different_provider` retries.
    pub fallback_models: Vec<String>,
    /// The rule for retriable failures no `on_status_codes` entry lists.
    pub default_rule: RetryRule,
    /// In match order: entries with `error_codes` first, then the others, each group in file
    /// order (spec §4.9), so the first entry that matches a response is the one that applies.
    pub on_status_codes: Vec<StatusRule>,
    /// For transport failures; `None` falls back to `default_rule`.
    pub on_timeout: Option<RetryRule>,
    pub backoff: Option<Backoff>,
    pub retry_after_handling: RetryAfterHandling,
    /// Bound on the time from the first retry decision (`max_retry_duration_ms`).
    pub max_retry_duration: Option<Duration>,
    pub on_high_latency: Option<HighLatency>,
    /// Failure blocks (`on_failures`, spec §11); `None`: off.
    pub on_failures: Option<OnFailures>,
    /// Stream recovery (`stream_recovery`, spec §12); `None`: off.
    pub stream_recovery: Option<super::StreamRecovery>,
}

impl Default for RetryPolicy {
    /// The policy an empty `retry_policy: {}` means.
    fn default() -> Self {
        RetryPolicy {
            fallback_models: Vec::new(),
            default_rule: RetryRule {
                strategy: Strategy::DifferentProvider,
                max_attempts: 2,
                then: None,
                max_wait: Duration::from_secs(5),
            },
            on_status_codes: Vec::new(),
            on_timeout: None,
            backoff: None,
            retry_after_handling: RetryAfterHandling::default(),
            max_retry_duration: None,
            on_high_latency: None,
            on_failures: None,
            stream_recovery: None,
        }
    }
}
