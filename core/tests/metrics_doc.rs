//! `docs/operations.md`'s metrics reference and the exposition agree: every family
//! exposed is documented with its type, and every documented family is exposed; every
//! `error_type` value is documented.

use std::sync::Arc;
use std::time::Instant;

use switchback_core::config::load_str;
use switchback_core::gateway::Gateway;
use switchback_core::metrics::{labels::ERROR_CLASSES, render};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/operations.md");
    std::fs::read_to_string(path).expect("docs/operations.md")
}

#[test]
fn every_family_is_documented_with_its_type() {
    let yaml = "model_providers:\n  - model: mock/ok\n";
    let gw = Arc::new(Gateway::new(load_str(yaml, &|_| None).unwrap().config).unwrap());
    #[allow(clippy::disallowed_methods)]
    let text = render(&gw, Instant::now());
    let mut exposed: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect();
    let doc = doc();
    let mut documented: Vec<(String, String)> = doc
        .lines()
        .filter(|l| l.starts_with("| `switchback_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
        })
        .collect();
    exposed.sort();
    documented.sort();
    assert_eq!(exposed, documented);
    for e in ERROR_CLASSES {
        assert!(
            doc.contains(&format!("`{e}`")),
            "error_type {e} is not documented"
        );
    }
}
