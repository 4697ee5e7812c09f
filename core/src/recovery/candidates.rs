//! Which candidates are asked to continue a stream, in which order (spec §12).

use crate::config::{continuation_order, continuation_strategy, Interface, RetryPolicy};
use crate::gateway::ProviderId;
use crate::routing::Targets;

/// The candidates to ask, in order, for a continuation of a stream that `failed` was
/// relaying in a request whose primary is `primary` (spec §12: §4.3 with the same model
/// first): the failed model, the primary, then `fallback_models` and the other configured
/// entries that fit the strategy of a transport failure (`on_timeout`, else the default
/// rule), each once. Only entries that can continue are listed, and none in `tried` (the
/// targets already asked to continue this request). Blocks are not looked at: the machine
/// picks among these as it picks any retry target.
pub fn continuation_candidates(
    gw: &Targets,
    policy: &RetryPolicy,
    primary: ProviderId,
    failed: ProviderId,
    tried: &[ProviderId],
) -> Vec<ProviderId> {
    let ordered: Vec<ProviderId> = policy
        .fallback_models
        .iter()
        .filter_map(|m| gw.find_model(m))
        .chain(gw.provider_ids())
        .collect();
    let primary_prefix = gw.provider(primary).prefix().to_owned();
    continuation_order(
        failed,
        primary,
        continuation_strategy(policy),
        ordered,
        |id| gw.provider(id).prefix() == primary_prefix,
        |id| {
            let p = gw.provider(id);
            !tried.contains(&id) && p.continuation.can_continue() && p.interface != Interface::Mock
        },
    )
}
