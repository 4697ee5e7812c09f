//! The gateway's front door (spec §2): routes a client request to a ready response or
//! to a [`RetryMachine`] that a runtime drives. Holds the compiled config and the
//! shared block table. Pure: the runtime supplies the clock readings and randomness.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::json;

use crate::block_table::SharedBlockTable;
use crate::config::{Config, Provider};
use crate::errors;
use crate::machine::{ChatRequest, RetryMachine};
use crate::provider::{self, Endpoint};
use crate::request_body::{self, RequestBodyError};
use crate::response::{accepted_request_id, generate_request_id, ClientResponse};

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

/// Index of a provider entry in the config, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProviderId(pub usize);

/// A client request as the runtime read it (body complete and within the limit).
#[derive(Debug, Clone)]
pub struct ClientRequest {
    pub method: Method,
    /// The request target's path, with or without a query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
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
    /// Drive this machine: `handle(now, Event::Start)`, then the drive/drain loop.
    Chat(Box<RetryMachine>),
}

/// Compiled configuration plus shared state; one per running gateway.
#[derive(Debug)]
pub struct Gateway {
    config: Config,
    endpoints: Vec<Option<Endpoint>>,
    blocks: SharedBlockTable,
    models_body: Bytes,
}

/// The config names an endpoint the gateway cannot build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GatewayError(pub String);

impl Gateway {
    /// Compiles a loaded config. Fails only on an endpoint that cannot be built
    /// (validation normally rejects those first).
    pub fn new(config: Config) -> Result<Gateway, GatewayError> {
        let endpoints = config
            .providers
            .iter()
            .map(provider::endpoint)
            .collect::<Result<Vec<_>, _>>()
            .map_err(GatewayError)?;
        let data: Vec<_> = config
            .providers
            .iter()
            .flat_map(|p| std::iter::once(p.model.as_str()).chain(p.name.as_deref()))
            .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": crate::config::model_prefix(id)}))
            .collect();
        let models_body = Bytes::from(json!({"object": "list", "data": data}).to_string());
        Ok(Gateway {
            config,
            endpoints,
            blocks: SharedBlockTable::new(),
            models_body,
        })
    }

    /// The config this gateway runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The provider entry `id` names. Ids come from this gateway, so they are in range.
    pub fn provider(&self, id: ProviderId) -> &Provider {
        &self.config.providers[id.0]
    }

    /// The endpoint of `id` (`None` for the mock provider).
    pub fn endpoint(&self, id: ProviderId) -> Option<&Endpoint> {
        self.endpoints.get(id.0).and_then(Option::as_ref)
    }

    /// Every provider id, in config order.
    pub fn provider_ids(&self) -> impl Iterator<Item = ProviderId> + '_ {
        (0..self.config.providers.len()).map(ProviderId)
    }

    /// The entry whose `model` is exactly `model`.
    pub fn find_model(&self, model: &str) -> Option<ProviderId> {
        self.config
            .providers
            .iter()
            .position(|p| p.model == model)
            .map(ProviderId)
    }

    /// Routes a requested model (spec §3.2): full `model`, then `name`, then a unique
    /// bare model id, then the default provider.
    pub fn route(&self, requested: &str) -> Option<ProviderId> {
        let ps = &self.config.providers;
        if let Some(id) = self.find_model(requested) {
            return Some(id);
        }
        if let Some(i) = ps.iter().position(|p| p.name.as_deref() == Some(requested)) {
            return Some(ProviderId(i));
        }
        let mut bare = ps
            .iter()
            .enumerate()
            .filter(|(_, p)| p.model_id() == requested);
        if let (Some((i, _)), None) = (bare.next(), bare.next()) {
            return Some(ProviderId(i));
        }
        ps.iter().position(|p| p.default).map(ProviderId)
    }

    /// The block table shared by every request of this gateway.
    pub fn blocks(&self) -> &SharedBlockTable {
        &self.blocks
    }

    /// Answers a client request, or returns the machine that will (spec §2).
    pub fn handle(self: &Arc<Self>, req: ClientRequest, ctx: RequestContext) -> Reply {
        let request_id = accepted_request_id(&req.headers)
            .map(str::to_owned)
            .unwrap_or_else(|| generate_request_id(ctx.random));
        let path = req.path.split('?').next().unwrap_or("");
        let method = req.method.as_str();
        let ready = |r: ClientResponse| Reply::Respond(r.with_request_id(&request_id));
        match path {
            "/healthz" if req.method == Method::GET || req.method == Method::HEAD => {
                ready(ClientResponse::json(r#"{"status":"ok"}"#))
            }
            "/v1/models" if req.method == Method::GET || req.method == Method::HEAD => {
                ready(ClientResponse::json(self.models_body.clone()))
            }
            "/v1/chat/completions" if req.method == Method::POST => {
                match self.start_chat(req, ctx, &request_id) {
                    Ok(machine) => Reply::Chat(Box::new(machine)),
                    Err(resp) => ready(*resp),
                }
            }
            "/healthz" | "/v1/models" => ready(errors::method_not_allowed(method, path, "GET")),
            "/v1/chat/completions" => ready(errors::method_not_allowed(method, path, "POST")),
            _ => ready(errors::not_found(method, path)),
        }
    }

    fn start_chat(
        self: &Arc<Self>,
        req: ClientRequest,
        ctx: RequestContext,
        request_id: &str,
    ) -> Result<RetryMachine, Box<ClientResponse>> {
        let info = request_body::inspect(&req.body).map_err(|e| Box::new(bad_body(&e)))?;
        let primary = self.route(&info.model).ok_or_else(|| {
            let models: Vec<String> = self
                .config
                .providers
                .iter()
                .map(|p| p.model.clone())
                .collect();
            Box::new(errors::model_not_found(&info.model, &models))
        })?;
        let chat = ChatRequest {
            primary,
            body: req.body,
            info,
            client_headers: req.headers,
            request_id: request_id.to_owned(),
        };
        Ok(RetryMachine::new(Arc::clone(self), chat, ctx))
    }
}

fn bad_body(e: &RequestBodyError) -> ClientResponse {
    let code = match e {
        RequestBodyError::InvalidJson { .. } | RequestBodyError::NotAnObject => None,
        _ => Some("invalid_value"),
    };
    errors::invalid_request(&e.to_string(), code)
}
