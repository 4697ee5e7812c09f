//! `switchback reload` against a gateway started by `switchback up` (spec §1, §13), on
//! each runtime: a valid change takes effect and exits 0; a file that does not load, and
//! a listener change the gateway refuses, exit 1 with the reason while the old config
//! keeps serving; with no gateway up it exits 1.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};

use switchback_tests::client::get;

const BIN: &str = env!("CARGO_BIN_EXE_switchback");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn config(port: u16, extra_model: Option<&str>) -> String {
    let mut y = format!(
        "version: v0.3.0\nlisteners:\n  - type: model\n    name: model_listener\n    port: {port}\nmodel_providers:\n  - model: mock/ok\n    default: true\n"
    );
    if let Some(m) = extra_model {
        y.push_str(&format!("  - model: {m}\n"));
    }
    y
}

fn switchback(args: &[&str], state: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("RUST_LOG")
        .output()
        .expect("run switchback")
}

fn models(addr: SocketAddr) -> Vec<String> {
    get(addr, "/v1/models").json()["data"]
        .as_array()
        .expect("a model list")
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(runtime: &str) {
    let dir = std::env::temp_dir().join(format!(
        "switchback-reload-{}-{runtime}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state");
    let file = dir.join("config.yaml");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let none = switchback(&["reload"], &state);
    assert!(!none.status.success(), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no gateway"),
        "{}",
        text(&none)
    );

    std::fs::write(&file, config(port, None)).unwrap();
    let file_arg = file.to_str().unwrap();
    let up = switchback(&["up", file_arg, "--runtime", runtime], &state);
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(models(addr), ["mock/ok"]);

    std::fs::write(&file, config(port, Some("mock/slow"))).unwrap();
    let ok = switchback(&["reload"], &state);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(models(addr), ["mock/ok", "mock/slow"]);

    std::fs::write(
        &file,
        "model_providers:\n  - model: mock/ok\n    retry_policy: {default_max_attempts: lots}\n",
    )
    .unwrap();
    let bad = switchback(&["reload"], &state);
    assert!(!bad.status.success(), "{}", text(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("default_max_attempts"), "{}", text(&bad));
    assert!(err.contains("keeps serving"), "{}", text(&bad));
    assert_eq!(models(addr), ["mock/ok", "mock/slow"]);

    std::fs::write(&file, config(free_port(), None)).unwrap();
    let moved = switchback(&["reload"], &state);
    assert!(!moved.status.success(), "{}", text(&moved));
    assert!(
        String::from_utf8_lossy(&moved.stderr).contains("restart"),
        "{}",
        text(&moved)
    );
    assert_eq!(models(addr), ["mock/ok", "mock/slow"]);

    let metrics = get(addr, "/metrics").text();
    assert!(
        metrics.contains(r#"switchback_config_reloads_total{result="ok"} 1"#)
            && metrics.contains(r#"switchback_config_reloads_total{result="failed"} 1"#),
        "{metrics}"
    );
    let down = switchback(&["down"], &state);
    assert!(down.status.success(), "{}", text(&down));
    let log = std::fs::read_to_string(state.join("switchback.log")).unwrap_or_default();
    assert!(log.contains("reload refused"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reload_smol() {
    run("smol");
}

#[test]
fn reload_tokio() {
    run("tokio");
}
