//! The gateway's front door (spec §2): routes a client request to a ready response or
//! to a [`RetryMachine`] that a runtime drives. Holds the compiled config and the
//! state shared across requests: the block table, the retry budgets and the count of
//! buffered body bytes. Pure: the runtime supplies the clock readings and randomness.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::json;

use crate::apis::{self, count_tokens, embeddings, upstream_api_for, ApiRequest, ClientApi};
use crate::block_table::{BlockKey, SharedBlockTable};
use crate::body_memory::{BodyMemory, BodyReservation};
use crate::config::{Config, Provider};
use crate::errors;
use crate::machine::{RetryMachine, RoutedRequest};
use crate::metrics::{Metrics, Slot};
use crate::provider::{self, Endpoint};
use crate::request_body::RequestBodyError;
use crate::response::{accepted_request_id, generate_request_id, ClientResponse};
use crate::retry_budget::{BudgetStatus, RetryBudget, SharedRetryBudget};
use crate::routing::{self, RouteTarget, Router, Targets};
use crate::secrets::{mark_client_credentials, Redacted};

/// The largest client request body accepted (spec §2: 32 MiB); runtimes answer
/// [`errors::payload_too_large`] beyond it without reading further.
pub const MAX_REQUEST_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What every runtime takes besides the config: limits that protect the gateway from
/// clients, and how long a graceful stop waits.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a graceful shutdown waits for in-flight requests (default 10 s).
    pub drain_timeout: Duration,
    /// A client must send its whole request head within this of the connection waiting for
    /// one (default 10 s); else the connection is answered 408 (part of a head arrived) or
    /// closed (nothing did).
    pub header_read_timeout: Duration,
    /// The longest gap between request body bytes (408 beyond), and the longest a client may
    /// leave response bytes unread before it is taken for gone (default 30 s).
    pub body_idle_timeout: Duration,
    /// Request bodies above this get 413 before any upstream call
    /// (default [`MAX_REQUEST_BODY_BYTES`]).
    pub max_request_body: usize,
    /// Worker threads, each with its own executor (default: the CPUs the process may run on).
    pub threads: Option<usize>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            drain_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            max_request_body: MAX_REQUEST_BODY_BYTES,
            threads: None,
        }
    }
}

/// Which listener a request arrived on: a model listener, or the admin listener of
/// `admin_port` (which serves `/metrics`, `/v1/status` and `/healthz` only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Surface {
    /// A model listener. It also serves `/metrics` and `/v1/status` unless the config
    /// sets an `admin_port`.
    #[default]
    Public,
    /// The admin listener.
    Admin,
}

/// Index of a provider entry in the config, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId(pub usize);

/// A client request as the runtime read it (body complete and within the limit).
/// Its `Debug` shows no credential header value.
#[derive(Clone)]
pub struct ClientRequest {
    pub method: Method,
    /// The request target's path, with or without a query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl std::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &Redacted(&self.headers))
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Clock readings and randomness for one request, from the runtime.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// Monotonic time the request arrived.
    pub now: Instant,
    /// Wall-clock time at `now` (to read HTTP-date pushback headers).
    pub wall: SystemTime,
    /// The listener's `timeout`: the request's overall deadline.
    pub timeout: Duration,
    /// Fresh random bits: seeds the request id and the machine's jitter.
    pub random: u64,
}

/// What to do with a client request.
#[derive(Debug)]
pub enum Reply {
    /// Answer at once with this response.
    Respond(ClientResponse),
    /// Drive this machine: `handle(now, Event::Start)`, then the drive/drain loop. (Named
    /// for the first door; it answers a request of any client API.)
    Chat(Box<RetryMachine>),
}

/// Compiled configuration plus shared state; one per running gateway.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    /// The config's entries in order, then the targets derived from wildcard entries for
    /// the fallback models they cover. [`ProviderId`]s index this.
    targets: Vec<Provider>,
    endpoints: Vec<Option<Endpoint>>,
    router: Router,
    blocks: SharedBlockTable,
    /// Per provider entry: the retry budget its requests count in (`None`: unbudgeted).
    budgets: Vec<Option<SharedRetryBudget>>,
    /// The gateway-wide budget (`None`: off), shared by every entry without its own.
    shared_budget: Option<SharedRetryBudget>,
    body_memory: BodyMemory,
    models_body: Bytes,
    /// The counters behind `/metrics`, shared with the gateways that reload this one.
    metrics: Arc<Metrics>,
    /// Per [`ProviderId`]: the metrics slot of the target's model.
    slots: Vec<Slot>,
    /// 0 for the gateway a process started with, one more per reload.
    generation: u64,
}

/// The config names an endpoint the gateway cannot build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GatewayError(pub String);

impl Gateway {
    /// Compiles a loaded config. A config from [`load_str`](crate::config::load_str)
    /// never fails here: the loader builds every endpoint the same way and reports what
    /// cannot be built, so `check` and `serve` agree (spec §10). The error remains for
    /// configs assembled by hand.
    pub fn new(config: Config) -> Result<Gateway, GatewayError> {
        Gateway::build(config, None)
    }

    /// Compiles a reloaded config (spec §13) that takes over `old`'s shared state: the
    /// block table (minus the models and prefixes the new config no longer has), the
    /// retry budgets of entries that still exist (and the gateway-wide one), the body
    /// memory count and the metrics. `old` keeps serving the requests it has in flight.
    pub fn succeed(config: Config, old: &Gateway) -> Result<Gateway, GatewayError> {
        Gateway::build(config, Some(old))
    }

    fn build(config: Config, old: Option<&Gateway>) -> Result<Gateway, GatewayError> {
        let mut targets = config.providers.clone();
        let configured = targets.len();
        let first = Router::new(&targets, configured, &[]);
        let fallbacks = config
            .providers
            .iter()
            .filter_map(|p| p.retry_policy.as_ref())
            .flat_map(|policy| policy.fallback_models.iter());
        for model in fallbacks {
            let known =
                first.find_model(model).is_some() || targets.iter().any(|t| &t.model == model);
            if let (false, Some(w)) = (known, first.wildcard_for(model)) {
                let derived = routing::concrete(&targets[w.0], model);
                targets.push(derived);
            }
        }
        let endpoints = targets
            .iter()
            .map(provider::entry_endpoint)
            .collect::<Result<Vec<_>, _>>()
            .map_err(GatewayError)?;
        let router = Router::new(&targets, configured, &config.aliases);
        let models_body = models_body(&config);
        let shared_budget = RetryBudget::from_settings(&config.retry_budget)
            .map(|b| succeed_budget(b, old.and_then(|o| o.shared_budget.as_ref())));
        let budgets = targets
            .iter()
            .map(|p| match &p.retry_budget {
                Some(own) => RetryBudget::from_settings(own).map(|b| {
                    let before = old.and_then(|o| o.own_budget_of(&p.model));
                    succeed_budget(b, before)
                }),
                None => shared_budget.clone(),
            })
            .collect();
        let limit = config.limits.max_buffered_body_bytes;
        let (blocks, body_memory, metrics, generation) = match old {
            Some(o) => {
                o.body_memory.set_limit(limit);
                let blocks = o.blocks.clone();
                blocks.lock().retain_keys(|k| still_configured(&targets, k));
                (
                    blocks,
                    o.body_memory.clone(),
                    Arc::clone(&o.metrics),
                    o.generation + 1,
                )
            }
            None => (
                SharedBlockTable::new(),
                BodyMemory::new(limit),
                Metrics::new(),
                0,
            ),
        };
        blocks.lock().set_configured_models(
            targets
                .iter()
                .filter(|t| !t.is_wildcard())
                .map(|t| t.model.clone()),
        );
        let slots = targets.iter().map(|t| metrics.slot(&t.model)).collect();
        Ok(Gateway {
            config,
            targets,
            endpoints,
            router,
            blocks,
            budgets,
            shared_budget,
            body_memory,
            models_body,
            metrics,
            slots,
            generation,
        })
    }

    /// The budget of the entry for `model` when it has its own.
    fn own_budget_of(&self, model: &str) -> Option<&SharedRetryBudget> {
        let i = self
            .targets
            .iter()
            .position(|t| t.model == model && t.retry_budget.is_some())?;
        self.budgets.get(i).and_then(Option::as_ref)
    }

    /// 0 for the gateway a process started with, one more per reload.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The counters behind `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Whether requests are counted (`metrics.enabled`).
    pub fn metrics_enabled(&self) -> bool {
        self.config.metrics.enabled
    }

    /// The metrics slot of target `id` (the configured entry's model; a wildcard entry
    /// as written).
    pub fn metric_slot(&self, id: ProviderId) -> Slot {
        self.slots.get(id.0).copied().unwrap_or(Slot::NONE)
    }

    /// The `model` and `scope` labels of a block: a configured model as it is, any
    /// other model (a wildcard's concrete one) and a provider-wide block as `prefix/*`.
    pub fn block_label(&self, key: &BlockKey) -> (String, &'static str) {
        match key {
            BlockKey::Model(m) if self.targets.iter().any(|t| &t.model == m) => {
                (m.clone(), "model")
            }
            BlockKey::Model(m) => (format!("{}/*", crate::config::model_prefix(m)), "model"),
            BlockKey::Prefix(p) => (format!("{p}/*"), "provider"),
        }
    }

    /// Every retry budget with its label (`gateway`, or the model of an entry with its
    /// own) and its state at `now`.
    pub fn budget_statuses(&self, now: Instant) -> Vec<(String, BudgetStatus)> {
        let mut out = Vec::new();
        if let Some(b) = &self.shared_budget {
            out.push(("gateway".to_owned(), b.lock().status(now)));
        }
        for (t, b) in self.targets.iter().zip(&self.budgets) {
            if let (Some(_), Some(b)) = (&t.retry_budget, b) {
                out.push((t.model.clone(), b.lock().status(now)));
            }
        }
        out
    }

    /// How many targets the gateway has (the config's entries and the derived ones).
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// The config this gateway runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The target `id` names. Ids come from this gateway, so they are in range.
    pub fn provider(&self, id: ProviderId) -> &Provider {
        &self.targets[id.0]
    }

    /// The endpoint of `id` (`None` for the mock provider).
    pub fn endpoint(&self, id: ProviderId) -> Option<&Endpoint> {
        self.endpoints.get(id.0).and_then(Option::as_ref)
    }

    /// The exact configured entries, in config order: what a failover may pick besides
    /// its fallbacks (spec §4.3; a wildcard entry names no model to fail over to).
    pub fn provider_ids(&self) -> impl Iterator<Item = ProviderId> + '_ {
        self.router.candidates()
    }

    /// The target whose `model` is exactly `model`: an exact entry, or the target derived
    /// from a wildcard for a fallback it covers.
    pub fn find_model(&self, model: &str) -> Option<ProviderId> {
        self.router.find_model(model)
    }

    /// Routes a requested model (spec §3.2, §10) by [`Router`]'s order: model, name,
    /// alias, wildcard, unique bare id, default. Every inbound API routes through this.
    pub fn route(&self, requested: &str) -> Option<RouteTarget> {
        self.router.route(&self.targets, requested)
    }

    /// The block table shared by every request of this gateway.
    pub fn blocks(&self) -> &SharedBlockTable {
        &self.blocks
    }

    /// The retry budget that requests routed to `id` count in (spec §11): the entry's
    /// own, or the gateway's; `None` when budgeting is off for them.
    pub fn retry_budget(&self, id: ProviderId) -> Option<&SharedRetryBudget> {
        self.budgets.get(id.0).and_then(Option::as_ref)
    }

    /// The gateway-wide count of buffered body bytes (`limits.max_buffered_body_bytes`).
    /// A connection driver reserves a request body here as it reads it, answers
    /// [`errors::overloaded`] when a reservation fails, and hands the reservation to
    /// [`handle_reserved`](Self::handle_reserved) with the request.
    pub fn body_memory(&self) -> &BodyMemory {
        &self.body_memory
    }

    /// Answers a client request, or returns the machine that will (spec §2, §9). The body
    /// of a request for a machine is counted against [`body_memory`](Self::body_memory) for as
    /// long as its machine lives; when it does not fit, the answer is
    /// [`errors::overloaded`].
    pub fn handle(self: &Arc<Self>, req: ClientRequest, ctx: RequestContext) -> Reply {
        self.handle_reserved(req, ctx, None)
    }

    /// [`handle`](Self::handle) for a request whose body the caller already reserved
    /// while reading it: `reservation` moves into the machine (topped up to the body's
    /// length if it holds less) and is given back when the machine is dropped.
    pub fn handle_reserved(
        self: &Arc<Self>,
        req: ClientRequest,
        ctx: RequestContext,
        reservation: Option<BodyReservation>,
    ) -> Reply {
        self.handle_on(Surface::Public, req, ctx, reservation)
    }

    /// [`handle_reserved`](Self::handle_reserved) for a request that arrived on
    /// `surface`: the admin listener answers only the observability routes and
    /// `/healthz`; a model listener answers the observability routes only when the
    /// config has no admin listener (spec §13).
    pub fn handle_on(
        self: &Arc<Self>,
        surface: Surface,
        mut req: ClientRequest,
        ctx: RequestContext,
        reservation: Option<BodyReservation>,
    ) -> Reply {
        mark_client_credentials(&mut req.headers);
        let request_id = accepted_request_id(&req.headers)
            .map(str::to_owned)
            .unwrap_or_else(|| generate_request_id(ctx.random));
        let path = req.path.split('?').next().unwrap_or("");
        let method = req.method.as_str();
        let ready = |r: ClientResponse| Reply::Respond(r.with_request_id(&request_id));
        let admin_elsewhere = surface == Surface::Public && self.has_admin_listener();
        let get = req.method == Method::GET || req.method == Method::HEAD;
        match path {
            "/metrics" | "/v1/status" if admin_elsewhere => {
                return ready(errors::not_found(method, path))
            }
            "/metrics" if get => return ready(self.metrics_response(ctx.now)),
            "/v1/status" if get => {
                let body = crate::status::status_body(self, ctx.now, ctx.wall);
                return ready(ClientResponse::json(body.to_string()));
            }
            "/metrics" | "/v1/status" => {
                return ready(errors::method_not_allowed(method, path, "GET"))
            }
            "/healthz" => {}
            _ if surface == Surface::Admin => return ready(errors::not_found(method, path)),
            _ => {}
        }
        match (path, ClientApi::from_path(path)) {
            // Claude Code's warm-up (`HEAD /`) and anyone checking that the gateway is up.
            ("/" | "/healthz", _) if get => ready(ClientResponse::json(r#"{"status":"ok"}"#)),
            ("/v1/models", _) if get => ready(ClientResponse::json(self.models_body.clone())),
            (_, Some(api)) if req.method == Method::POST => {
                match self.start(api, req, ctx, &request_id, reservation) {
                    Ok(machine) => Reply::Chat(Box::new(machine)),
                    Err(resp) => ready(*resp),
                }
            }
            ("/" | "/healthz" | "/v1/models", _) => {
                ready(errors::method_not_allowed(method, path, "GET"))
            }
            (_, Some(api)) => ready(apis::errors::reshape_response(
                api,
                errors::method_not_allowed(method, path, "POST"),
            )),
            // Anthropic's other endpoints (batches, files, ...) answer in Anthropic's shape.
            (p, None) if p.starts_with("/v1/messages/") => ready(apis::errors::reshape_response(
                ClientApi::Messages,
                errors::not_found(method, path),
            )),
            _ => ready(errors::not_found(method, path)),
        }
    }

    /// Whether a listener of the config sets `admin_port`.
    fn has_admin_listener(&self) -> bool {
        self.config.listeners.iter().any(|l| l.admin.is_some())
    }

    /// `GET /metrics`: the text exposition, or 404 when `metrics.enabled` is false.
    fn metrics_response(&self, now: Instant) -> ClientResponse {
        if !self.metrics_enabled() {
            return errors::error_response(
                http::StatusCode::NOT_FOUND,
                "Metrics are off in this gateway's config (`metrics: {enabled: false}`).",
                "invalid_request_error",
                Some("metrics_disabled"),
                serde_json::Value::Null,
            );
        }
        let mut r = ClientResponse::json(crate::metrics::render(self, now));
        r.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        r
    }

    /// Routes a request of `api` and builds its machine, or the answer to give at once: a
    /// bad body, an unknown model, an embeddings model without embeddings, a count_tokens
    /// request for a non-Anthropic model (the local estimate), in the client's shape.
    fn start(
        self: &Arc<Self>,
        api: ClientApi,
        req: ClientRequest,
        ctx: RequestContext,
        request_id: &str,
        reservation: Option<BodyReservation>,
    ) -> Result<RetryMachine, Box<ClientResponse>> {
        let client_error = |r: ClientResponse| Box::new(apis::errors::reshape_response(api, r));
        let mut reservation = match reservation {
            Some(r) => r,
            None => self
                .body_memory
                .reserve(0)
                .map_err(|_| client_error(errors::overloaded()))?,
        };
        if reservation.bytes() < req.body.len() {
            reservation
                .resize(req.body.len())
                .map_err(|_| client_error(errors::overloaded()))?;
        }
        let client_query = req
            .path
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .filter(|q| !q.is_empty());
        let request = ApiRequest::inspect(api, req.body).map_err(|e| client_error(bad_body(&e)))?;
        let model = &request.info().model;
        let route = self.route(model).ok_or_else(|| {
            let models: Vec<String> = self
                .config
                .providers
                .iter()
                .map(|p| p.model.clone())
                .chain(self.config.aliases.iter().map(|a| a.name.clone()))
                .collect();
            client_error(errors::model_not_found(model, &models))
        })?;
        let (targets, primary) = Targets::for_route(Arc::clone(self), &route)
            .map_err(|e| client_error(errors::invalid_request(&e, Some("model_not_found"))))?;
        let p = targets.provider(primary);
        if upstream_api_for(api, p.interface, p.responses).is_none() {
            return Err(Box::new(match api {
                ClientApi::CountTokens => count_tokens::local_response(request.body()),
                _ => embeddings::not_served(&p.model),
            }));
        }
        let routed = RoutedRequest {
            primary,
            api: request,
            client_headers: req.headers,
            client_query,
            request_id: request_id.to_owned(),
        };
        let mut machine = RetryMachine::new(Arc::new(targets), routed, ctx);
        machine.hold_request_body(reservation);
        Ok(machine)
    }
}

/// The `/v1/models` list (spec §2, §10): every entry's `model` (a wildcard as written)
/// and `name`, then every alias, each owned by the prefix it routes to.
fn models_body(config: &Config) -> Bytes {
    let entry = |id: &str, prefix: &str| json!({"id": id, "object": "model", "created": 0, "owned_by": prefix});
    let mut data: Vec<_> = config
        .providers
        .iter()
        .flat_map(|p| {
            std::iter::once(p.model.as_str())
                .chain(p.name.as_deref())
                .map(|id| entry(id, p.prefix()))
        })
        .collect();
    data.extend(
        config
            .aliases
            .iter()
            .map(|a| entry(&a.name, crate::config::model_prefix(&a.target))),
    );
    Bytes::from(json!({"object": "list", "data": data}).to_string())
}

fn bad_body(e: &RequestBodyError) -> ClientResponse {
    let code = match e {
        RequestBodyError::InvalidJson { .. } | RequestBodyError::NotAnObject => None,
        RequestBodyError::WrongType { .. } => Some("invalid_type"),
        _ => Some("invalid_value"),
    };
    errors::invalid_request_param(&e.to_string(), code, e.param())
}

/// A reloaded entry's budget: `old` itself when the settings are the same, else the new
/// settings carrying `old`'s counts, so a reload neither resets nor forgets a budget.
fn succeed_budget(new: RetryBudget, old: Option<&SharedRetryBudget>) -> SharedRetryBudget {
    match old {
        Some(o) if o.lock().same_settings(&new) => o.clone(),
        Some(o) => {
            let carried = new.continuing(&o.lock());
            SharedRetryBudget::new(carried)
        }
        None => SharedRetryBudget::new(new),
    }
}

/// Whether a block key still names something `targets` can send to: a model one of them
/// is (or a wildcard entry covers), a prefix one of them has.
fn still_configured(targets: &[Provider], key: &BlockKey) -> bool {
    match key {
        BlockKey::Model(m) => targets.iter().any(|t| {
            &t.model == m || (t.is_wildcard() && t.prefix() == crate::config::model_prefix(m))
        }),
        BlockKey::Prefix(p) => targets.iter().any(|t| t.prefix() == p),
    }
}
