//! Checks across provider entries (spec §3.3): duplicates, defaults, fallbacks that point
//! nowhere, strategies that can never find a candidate, backoff that can never apply.

use super::providers::Entry;
use super::report::{join, Report};
use super::{model_prefix, BackoffApplyTo, Strategy};

/// Runs every cross-entry check over the converted entries.
pub(crate) fn check_entries(rep: &mut Report, entries: &[Entry]) {
    for (i, e) in entries.iter().enumerate() {
        let p = &e.provider;
        let earlier = &entries[..i];
        if let Some(first) = earlier.iter().find(|o| o.provider.model == p.model) {
            rep.error(
                join(&e.path, "model"),
                e.model_pos,
                format!(
                    "`{}` is already defined by {} (line {}); each model may appear once, remove or rename one",
                    p.model,
                    first.path,
                    first.provider.line
                ),
            );
        }
        if let Some(name) = &p.name {
            let clash = earlier.iter().find(|o| {
                o.provider.name.as_deref() == Some(name.as_str()) || &o.provider.model == name
            });
            if let Some(first) = clash {
                rep.error(
                    join(&e.path, "name"),
                    e.name_pos,
                    format!("the name `{name}` is already used by {}; names must be unique and differ from every model", first.path),
                );
            }
        }
        if p.default {
            if let Some(first) = earlier.iter().find(|o| o.provider.default) {
                rep.error(
                    join(&e.path, "default"),
                    e.default_pos,
                    format!(
                        "{} is already the default provider; only one entry may have `default: true`",
                        first.path
                    ),
                );
            }
        }
        if p.access_key.is_none()
            && !p.passthrough_auth
            && p.prefix() != "mock"
            && p.base_url.is_none()
        {
            let what = if e.key_written {
                "is empty"
            } else {
                "is not set"
            };
            rep.warn(
                join(&e.path, "access_key"),
                e.pos,
                format!("the access_key of {} {what}; requests to {} will be sent without credentials. Set `access_key: $YOUR_KEY_VAR` or `passthrough_auth: true`", e.path, p.model),
            );
        }
        if let Some(uses) = &e.uses {
            check_policy_uses(rep, e, entries, uses);
        }
    }
    super::recovery::warn_recovery_without_candidates(rep, entries);
}

fn check_policy_uses(
    rep: &mut Report,
    e: &Entry,
    entries: &[Entry],
    uses: &super::retry::PolicyUses,
) {
    let me = &e.provider;
    for (model, path, pos) in &uses.fallbacks {
        if super::is_wildcard_model(model) {
            rep.error(
                path,
                *pos,
                format!("fallback model `{model}` is a wildcard; a fallback must name one model, e.g. `{}/gpt-4o`", model_prefix(model)),
            );
            continue;
        }
        let covered = |o: &Entry| {
            o.provider.model == *model
                || (o.provider.is_wildcard() && o.provider.prefix() == model_prefix(model))
        };
        if !entries.iter().any(covered) {
            rep.warn(
                path,
                *pos,
                format!("fallback model `{model}` is not defined by any provider entry, so it is skipped; add a `model_providers` entry for it"),
            );
        }
    }
    let prefix = me.prefix();
    // The models a failover can pick: exact entries, and fallbacks a wildcard covers
    // (a wildcard entry itself names no model to fail over to).
    let mut reachable: Vec<&str> = entries
        .iter()
        .filter(|o| !o.provider.is_wildcard())
        .map(|o| o.provider.model.as_str())
        .collect();
    reachable.extend(uses.fallbacks.iter().map(|(m, _, _)| m.as_str()));
    let has_other_prefix = reachable.iter().any(|m| model_prefix(m) != prefix);
    let has_same_prefix = reachable
        .iter()
        .any(|m| *m != me.model && model_prefix(m) == prefix);
    let mut warned_different = false;
    let mut warned_same = false;
    let all = uses.strategies.iter().chain(uses.latency_strategy.iter());
    for (strategy, path, pos) in all {
        match strategy {
            Strategy::DifferentProvider if !has_other_prefix && !warned_different => {
                warned_different = true;
                rep.warn(
                    path,
                    *pos,
                    format!("strategy different_provider can never find a candidate: no provider entry has a prefix other than `{prefix}`. Add one, or use same_model"),
                );
            }
            Strategy::SameProvider if !has_same_prefix && !warned_same => {
                warned_same = true;
                rep.warn(
                    path,
                    *pos,
                    format!("strategy same_provider can never find a candidate: no other provider entry has the prefix `{prefix}`. Add one, or use same_model or different_provider"),
                );
            }
            _ => {}
        }
    }
    if let Some((apply_to, path, pos)) = &uses.backoff_apply_to {
        let has = |s: Strategy| uses.strategies.iter().any(|(x, _, _)| *x == s);
        let (never, needs) = match apply_to {
            BackoffApplyTo::SameModel => (!has(Strategy::SameModel), "same_model"),
            BackoffApplyTo::SameProvider => (
                !has(Strategy::SameModel) && !has(Strategy::SameProvider),
                "same_model or same_provider",
            ),
            BackoffApplyTo::Global => (false, ""),
        };
        if never {
            rep.warn(
                path,
                *pos,
                format!("backoff never applies: `apply_to` needs a retry with strategy {needs}, and no rule of this policy uses one. Use `apply_to: global` or change a strategy"),
            );
        }
    }
}
