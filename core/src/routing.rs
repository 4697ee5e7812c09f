//! Which provider entry a requested model goes to (spec §3.2, §10), in one place that
//! every inbound API calls through [`Gateway::route`](crate::gateway::Gateway::route).
//!
//! The order, first match wins (`docs/configuration.md` gives the reasons):
//!
//! 1. an exact entry whose `model` is the requested string;
//! 2. an entry whose `name` is it;
//! 3. a `model_aliases` entry, which stands for its target's entry;
//! 4. a wildcard entry `prefix/*` for a request `prefix/<id>` (exact entries won in 1);
//! 5. the one exact entry whose model id (after the prefix) is the request, if only one;
//! 6. the `default: true` entry.
//!
//! A routed request carries the concrete model it is sent as: a wildcard answers
//! `openai/gpt-4.1` as that model (`gpt-4.1` upstream, `x-switchback-model:
//! openai/gpt-4.1`), an alias as its target. [`Targets`] is the per-request view the
//! retry machine reads providers through, which holds that concrete model when no
//! configured entry names it.

use std::sync::Arc;

use crate::block_table::SharedBlockTable;
use crate::body_memory::BodyMemory;
use crate::config::{ModelAlias, Provider};
use crate::gateway::{Gateway, ProviderId};
use crate::provider::{self, Endpoint};
use crate::retry_budget::SharedRetryBudget;

/// Which step of the routing order matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Model,
    Name,
    Alias,
    Wildcard,
    BareId,
    Default,
}

/// Where a request goes: the entry whose settings apply and the concrete model sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The gateway's target for `model`; for a wildcard answer that no configured model
    /// names, the wildcard entry itself.
    pub provider: ProviderId,
    /// The full concrete model, `prefix/model-id`: what the upstream is asked for (after
    /// the prefix) and what `x-switchback-model` names.
    pub model: String,
    pub via: Via,
}

/// The routing table of one gateway: pure lookups over its targets.
#[derive(Debug, Clone)]
pub struct Router {
    /// `(model, name, id)` of each exact configured entry, in config order.
    exact: Vec<(String, Option<String>, ProviderId)>,
    /// `(prefix, id)` of each wildcard entry.
    wildcards: Vec<(String, ProviderId)>,
    /// `(model, id)` of the targets made from a wildcard for a model the config names
    /// elsewhere (a fallback), so those requests share one target.
    derived: Vec<(String, ProviderId)>,
    /// `(alias, target id)`.
    aliases: Vec<(String, ProviderId)>,
    default: Option<ProviderId>,
}

impl Router {
    /// Builds the table. `targets` are the gateway's: the first `configured` are the
    /// config's entries in order, the rest derived from wildcards.
    pub fn new(targets: &[Provider], configured: usize, aliases: &[ModelAlias]) -> Router {
        let mut r = Router {
            exact: Vec::new(),
            wildcards: Vec::new(),
            derived: Vec::new(),
            aliases: Vec::new(),
            default: None,
        };
        for (i, p) in targets.iter().enumerate() {
            let id = ProviderId(i);
            if i >= configured {
                r.derived.push((p.model.clone(), id));
            } else if p.is_wildcard() {
                r.wildcards.push((p.prefix().to_string(), id));
            } else {
                r.exact.push((p.model.clone(), p.name.clone(), id));
                if p.default && r.default.is_none() {
                    r.default = Some(id);
                }
            }
        }
        for a in aliases {
            if let Some((_, _, id)) = r.exact.iter().find(|(m, _, _)| *m == a.target) {
                r.aliases.push((a.name.clone(), *id));
            }
        }
        r
    }

    /// Routes a requested model by the order in the module doc; `None` when nothing
    /// matches and there is no default (the caller answers 404).
    pub fn route(&self, targets: &[Provider], requested: &str) -> Option<RouteTarget> {
        let to = |id: ProviderId, via: Via| RouteTarget {
            provider: id,
            model: targets[id.0].model.clone(),
            via,
        };
        if let Some((_, _, id)) = self.exact.iter().find(|(m, _, _)| m == requested) {
            return Some(to(*id, Via::Model));
        }
        if let Some((_, _, id)) = self
            .exact
            .iter()
            .find(|(_, n, _)| n.as_deref() == Some(requested))
        {
            return Some(to(*id, Via::Name));
        }
        if let Some((_, id)) = self.aliases.iter().find(|(a, _)| a == requested) {
            return Some(to(*id, Via::Alias));
        }
        if let Some(target) = self.wildcard(requested) {
            return Some(target);
        }
        let mut bare = self
            .exact
            .iter()
            .filter(|(m, _, _)| m.split_once('/').is_some_and(|(_, id)| id == requested));
        if let (Some((_, _, id)), None) = (bare.next(), bare.next()) {
            return Some(to(*id, Via::BareId));
        }
        self.default.map(|id| to(id, Via::Default))
    }

    /// The wildcard route of `prefix/<id>`, if a wildcard entry has that prefix.
    fn wildcard(&self, requested: &str) -> Option<RouteTarget> {
        let (prefix, id) = requested.split_once('/')?;
        if id.is_empty() || id == "*" {
            return None;
        }
        let (_, wildcard) = self.wildcards.iter().find(|(p, _)| p == prefix)?;
        let provider = self
            .derived
            .iter()
            .find(|(m, _)| m == requested)
            .map_or(*wildcard, |(_, id)| *id);
        Some(RouteTarget {
            provider,
            model: requested.to_string(),
            via: Via::Wildcard,
        })
    }

    /// The target a fallback model names, among the exact entries and the targets derived
    /// from wildcards.
    pub fn find_model(&self, model: &str) -> Option<ProviderId> {
        self.exact
            .iter()
            .find(|(m, _, _)| m == model)
            .map(|(_, _, id)| *id)
            .or_else(|| {
                self.derived
                    .iter()
                    .find(|(m, _)| m == model)
                    .map(|(_, id)| *id)
            })
    }

    /// The wildcard entry that covers `model`, if any.
    pub fn wildcard_for(&self, model: &str) -> Option<ProviderId> {
        let (prefix, id) = model.split_once('/')?;
        if id.is_empty() || id == "*" {
            return None;
        }
        self.wildcards
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, id)| *id)
    }

    /// Every exact configured entry, in config order: the candidates a failover may pick
    /// besides its fallbacks (a wildcard entry names no model to fail over to).
    pub fn candidates(&self) -> impl Iterator<Item = ProviderId> + '_ {
        self.exact.iter().map(|(_, _, id)| *id)
    }
}

/// The longest model a wildcard entry accepts from a client (the whole `prefix/id`, in
/// bytes). No provider's model ids come near it; it bounds what one client-named key
/// costs the block table (see [`crate::key_cap`]), and is also the longest name the
/// shared state accepts from other replicas.
pub const MAX_WILDCARD_MODEL_BYTES: usize = 256;

/// A wildcard entry made concrete for one model: the same settings, that `model`.
pub fn concrete(wildcard: &Provider, model: &str) -> Provider {
    Provider {
        model: model.to_string(),
        ..wildcard.clone()
    }
}

/// The providers one request may use: the gateway's targets, plus the concrete target a
/// wildcard answered with when no configured model names it. The retry machine reads
/// every provider through this, so a wildcard answer is a model like any other (its
/// blocks, reports and headers name the concrete model).
#[derive(Debug)]
pub struct Targets {
    gateway: Arc<Gateway>,
    extra: Option<(ProviderId, Provider, Option<Endpoint>)>,
    /// The configured entry the request was routed to (a wildcard for `extra`).
    entry: ProviderId,
}

impl Targets {
    /// The view for a request routed to `route`, and the id of its primary. Fails when
    /// the concrete model cannot be sent to the wildcard's upstream (an Azure deployment
    /// name with characters a URL path cannot carry); the message says why.
    pub fn for_route(
        gateway: Arc<Gateway>,
        route: &RouteTarget,
    ) -> Result<(Targets, ProviderId), String> {
        let entry = gateway.provider(route.provider);
        if entry.model == route.model {
            return Ok((
                Targets {
                    gateway,
                    extra: None,
                    entry: route.provider,
                },
                route.provider,
            ));
        }
        if route.model.len() > MAX_WILDCARD_MODEL_BYTES {
            return Err(format!(
                "the model id is {} bytes long; a model under the wildcard entry '{}' may be at most {MAX_WILDCARD_MODEL_BYTES}",
                route.model.len(),
                entry.model
            ));
        }
        let p = concrete(entry, &route.model);
        let endpoint = provider::endpoint(&p)?;
        let id = ProviderId(gateway.target_count());
        Ok((
            Targets {
                gateway,
                extra: Some((id, p, endpoint)),
                entry: route.provider,
            },
            id,
        ))
    }

    /// The provider `id` names (ids come from this view, so they are in range).
    pub fn provider(&self, id: ProviderId) -> &Provider {
        match &self.extra {
            Some((x, p, _)) if *x == id => p,
            _ => self.gateway.provider(id),
        }
    }

    /// The endpoint of `id` (`None` for the mock provider).
    pub fn endpoint(&self, id: ProviderId) -> Option<&Endpoint> {
        match &self.extra {
            Some((x, _, e)) if *x == id => e.as_ref(),
            _ => self.gateway.endpoint(id),
        }
    }

    /// The target a fallback model names.
    pub fn find_model(&self, model: &str) -> Option<ProviderId> {
        match &self.extra {
            Some((x, p, _)) if p.model == model => Some(*x),
            _ => self.gateway.find_model(model),
        }
    }

    /// The configured candidates of a failover, in config order.
    pub fn provider_ids(&self) -> impl Iterator<Item = ProviderId> + '_ {
        self.gateway.provider_ids()
    }

    /// The block table shared by every request of the gateway.
    pub fn blocks(&self) -> &SharedBlockTable {
        self.gateway.blocks()
    }

    /// The retry budget the requests of `id` count in: the routed entry's for the
    /// request's own concrete target, else the entry's (`None`: unbudgeted).
    pub fn retry_budget(&self, id: ProviderId) -> Option<&SharedRetryBudget> {
        match &self.extra {
            Some((x, _, _)) if *x == id => self.gateway.retry_budget(self.entry),
            _ => self.gateway.retry_budget(id),
        }
    }

    /// The gateway-wide count of buffered body bytes.
    pub fn body_memory(&self) -> &BodyMemory {
        self.gateway.body_memory()
    }

    /// The metrics slot of `id`: its entry's model (the wildcard entry as written for
    /// the request's own concrete target, so a client's model never becomes a label).
    pub fn metric_slot(&self, id: ProviderId) -> crate::metrics::Slot {
        match &self.extra {
            Some((x, _, _)) if *x == id => self.gateway.metric_slot(self.entry),
            _ => self.gateway.metric_slot(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    /// The route of each request, as `(model sent, via)`, for `providers` (YAML entries).
    fn routes(providers: &str, aliases: &str, requests: &[&str]) -> Vec<Option<(String, Via)>> {
        let yaml = format!("model_providers:\n{providers}{aliases}");
        let config = load_str(&yaml, &|_| Some("k".into()))
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        let gw = Gateway::new(config).unwrap();
        requests
            .iter()
            .map(|r| gw.route(r).map(|t| (t.model, t.via)))
            .collect()
    }

    fn some(model: &str, via: Via) -> Option<(String, Via)> {
        Some((model.to_string(), via))
    }

    #[test]
    fn the_order_is_model_name_alias_wildcard_bare_id_default() {
        let providers = "  - model: openai/*\n    access_key: k\n  - model: openai/gpt-4o\n    name: best\n    access_key: k\n  - model: mistral/small\n    access_key: k\n    default: true\n";
        let aliases = "model_aliases:\n  cheap: {target: mistral/small}\n";
        let got = routes(
            providers,
            aliases,
            &[
                "openai/gpt-4o",
                "best",
                "cheap",
                "openai/gpt-4.1",
                "small",
                "gpt-4o",
                "anthropic/x",
                "openai/*",
            ],
        );
        assert_eq!(
            got,
            [
                some("openai/gpt-4o", Via::Model),
                some("openai/gpt-4o", Via::Name),
                some("mistral/small", Via::Alias),
                some("openai/gpt-4.1", Via::Wildcard),
                some("mistral/small", Via::BareId),
                some("openai/gpt-4o", Via::BareId),
                some("mistral/small", Via::Default),
                some("mistral/small", Via::Default),
            ]
        );
    }

    #[test]
    fn without_a_default_nothing_else_routes() {
        let got = routes(
            "  - model: openai/*\n    access_key: k\n",
            "",
            &["gpt-4.1", "openai/", "x"],
        );
        assert_eq!(
            got,
            [None, None, None],
            "a bare id never reaches a wildcard"
        );
    }

    #[test]
    fn a_wildcard_answer_is_its_own_target_and_a_covered_fallback_shares_one() {
        let providers = "  - model: anthropic/claude\n    access_key: k\n    retry_policy:\n      fallback_models: [openai/gpt-4.1]\n  - model: openai/*\n    access_key: k\n";
        let yaml = format!("model_providers:\n{providers}");
        let config = load_str(&yaml, &|_| None).unwrap().config;
        let gw = Arc::new(Gateway::new(config).unwrap());
        assert_eq!(gw.target_count(), 3, "the fallback got a target");
        let fallback = gw.find_model("openai/gpt-4.1").unwrap();
        assert_eq!(gw.provider(fallback).model, "openai/gpt-4.1");
        assert_eq!(gw.provider(fallback).model_id(), "gpt-4.1");
        assert_eq!(gw.route("openai/gpt-4.1").unwrap().provider, fallback);
        assert_eq!(
            gw.provider_ids().collect::<Vec<_>>(),
            [ProviderId(0)],
            "wildcards are no candidates"
        );
        let route = gw.route("openai/o3").unwrap();
        let (targets, primary) = Targets::for_route(Arc::clone(&gw), &route).unwrap();
        assert_eq!(primary, ProviderId(3));
        assert_eq!(targets.provider(primary).model, "openai/o3");
        assert_eq!(targets.find_model("openai/o3"), Some(primary));
        assert!(targets.endpoint(primary).is_some());
        assert_eq!(targets.provider(ProviderId(1)).model, "openai/*");
    }
}
