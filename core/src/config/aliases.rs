//! `model_aliases` (spec §10): `alias_name: {target: provider/model}`. A request for the
//! alias goes to the target's provider entry; the target must be an exact entry's
//! `model` (or its unique bare model id, as Plano accepts), never a wildcard.

use super::fields::text;
use super::providers::Entry;
use super::raw::{RawAlias, RawMap, S};
use super::report::{join, Pos, Report};
use super::ModelAlias;

/// Converts and checks every alias against the provider entries.
pub(crate) fn convert_aliases(
    rep: &mut Report,
    raw: &Option<S<RawMap<RawAlias>>>,
    entries: &[Entry],
) -> Vec<ModelAlias> {
    let Some(map) = raw else {
        return Vec::new();
    };
    let mut out: Vec<ModelAlias> = Vec::new();
    for (name, value) in &map.value.0 {
        let path = join("model_aliases", &name.value);
        let alias = name.value.trim();
        let Some(target_v) = &value.value.target else {
            rep.error(
                &path,
                Pos::at(value),
                format!("the alias `{alias}` needs a `target`, e.g. `{alias}: {{target: openai/gpt-4o}}`"),
            );
            continue;
        };
        let target = text(target_v).trim().to_string();
        let tpath = join(&path, "target");
        if alias.is_empty() {
            rep.error(&path, Pos::at(name), "an alias name must not be empty");
            continue;
        }
        if let Some(e) = entries
            .iter()
            .find(|e| e.provider.model == alias || e.provider.name.as_deref() == Some(alias))
        {
            rep.error(
                &path,
                Pos::at(name),
                format!("the alias `{alias}` is also the model or name of {}; a request for it would be ambiguous, so rename the alias", e.path),
            );
            continue;
        }
        if out.iter().any(|a| a.name == alias) {
            rep.error(
                &path,
                Pos::at(name),
                format!("the alias `{alias}` is defined twice; keep one"),
            );
            continue;
        }
        let exact = |e: &&Entry| !e.provider.is_wildcard();
        let by_model = entries
            .iter()
            .filter(exact)
            .find(|e| e.provider.model == target);
        let by_id = || {
            let mut it = entries
                .iter()
                .filter(exact)
                .filter(|e| e.provider.model_id() == target);
            match (it.next(), it.next()) {
                (Some(e), None) => Some(e),
                _ => None,
            }
        };
        match by_model.or_else(by_id) {
            Some(e) => out.push(ModelAlias {
                name: alias.to_string(),
                target: e.provider.model.clone(),
            }),
            None => {
                let wildcard = entries.iter().find(|e| {
                    e.provider.is_wildcard()
                        && target.split_once('/').map(|(p, _)| p) == Some(e.provider.prefix())
                });
                let hint = match wildcard {
                    Some(w) => format!(
                        " ({} `{}` covers it, but an alias needs an exact entry, as in Plano)",
                        w.path, w.provider.model
                    ),
                    None => String::new(),
                };
                rep.error(
                    tpath,
                    Pos::at(target_v),
                    format!("the alias `{alias}` targets `{target}`, which no provider entry defines{hint}; add a `model_providers` entry with `model: {target}` or point the alias at a configured model"),
                );
            }
        }
    }
    out
}
