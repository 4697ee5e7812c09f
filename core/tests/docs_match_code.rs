//! `docs/providers.md` names every provider prefix and every dropped request field the
//! code knows, so the doc cannot silently fall behind the table.

use switchback_core::anthropic::DROPPED_FIELDS;
use switchback_core::provider::table::PROVIDERS;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/providers.md");
    std::fs::read_to_string(path).expect("docs/providers.md")
}

#[test]
fn every_prefix_is_documented() {
    let doc = doc();
    for spec in PROVIDERS {
        assert!(
            doc.contains(&format!("| `{}` |", spec.prefix)),
            "{} missing",
            spec.prefix
        );
        if let Some(root) = spec.default_root {
            assert!(doc.contains(root), "{root} missing");
        }
    }
}

#[test]
fn every_dropped_field_is_documented() {
    let doc = doc();
    for (field, _) in DROPPED_FIELDS {
        assert!(
            doc.contains(&format!("`{field}`")),
            "{field} missing from docs/providers.md"
        );
    }
}

#[test]
fn every_refused_prefix_is_documented() {
    let doc = doc();
    for (prefix, _) in switchback_core::provider::table::UNSUPPORTED {
        assert!(
            doc.contains(&format!("| `{prefix}` | refused")),
            "{prefix} missing"
        );
    }
}
