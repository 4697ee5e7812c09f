//! The core stays sans-IO mechanically: its normal dependency tree holds no async
//! runtime, no async or futures crate, no HTTP server or client stack, no TLS and no
//! socket crate. Fails the build's tests the moment one sneaks in.

use std::process::Command;

const FORBIDDEN_EXACT: [&str; 9] = [
    "tokio",
    "smol",
    "hyper",
    "mio",
    "rustls",
    "socket2",
    "async-h1",
    "http-types",
    "polling",
];
const FORBIDDEN_PREFIXES: [&str; 4] = ["async-", "futures", "tokio-", "rustls-"];

#[test]
fn core_depends_on_nothing_async_or_networked() {
    let cargo = env!("CARGO");
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "switchback-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"switchback-core"),
        "unexpected cargo tree output:\n{tree}"
    );
    let bad: Vec<&&str> = names
        .iter()
        .filter(|n| {
            FORBIDDEN_EXACT.contains(n) || FORBIDDEN_PREFIXES.iter().any(|p| n.starts_with(p))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "the core must stay sans-IO, but depends on {bad:?}:\n{tree}"
    );
}
