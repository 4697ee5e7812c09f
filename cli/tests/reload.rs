//! `switchback reload` against a gateway started by `switchback up` (spec §1, §13), on
//! each runtime: a valid change takes effect and exits 0, even when the caller's shell
//! lacks a `$VAR` the config uses or exports a value of its own (the gateway's own
//! environment judges); a file that does
//! not load, and a listener change the gateway refuses, exit 1 with the reason while the
//! old config keeps serving; with no gateway up it exits 1. Also SIGHUP sent straight to
//! the gateway with a broken file: logged, counted as failed, reported, old config kept.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use switchback_tests::client::get;

const BIN: &str = env!("CARGO_BIN_EXE_switchback");
/// Set only in the environment `switchback up` runs in; the config's trace collector
/// comes from it (an unset variable there is a config error).
const KEY_VAR: &str = "SWITCHBACK_RELOAD_TEST_COLLECTOR";
const REFUSED: &str = "reload refused, the previous config keeps serving";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn config(port: u16, extra_model: Option<&str>) -> String {
    let mut y = format!(
        "version: v0.3.0\nlisteners:\n  - type: model\n    name: model_listener\n    port: {port}\ntracing:\n  random_sampling: 100\n  opentracing_grpc_endpoint: ${KEY_VAR}\nmodel_providers:\n  - model: mock/ok\n    default: true\n"
    );
    if let Some(m) = extra_model {
        y.push_str(&format!("  - model: {m}\n"));
    }
    y
}

/// Runs `switchback ARGS --state-dir STATE` with `env` added and `KEY_VAR` removed.
fn switchback_env(args: &[&str], state: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("RUST_LOG")
        .env_remove(KEY_VAR)
        .envs(env.iter().copied())
        .output()
        .expect("run switchback")
}

fn switchback(args: &[&str], state: &Path) -> Output {
    switchback_env(args, state, &[])
}

fn metric(addr: SocketAddr, series: &str) -> u64 {
    get(addr, "/metrics")
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} on /metrics"))
}

fn log(state: &Path) -> String {
    std::fs::read_to_string(state.join("switchback.log")).unwrap_or_default()
}

/// Waits until `check` holds, failing after a generous bound.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGHUP straight to the gateway (no `switchback reload`) with a file that does not
/// load: the refusal is logged, counted as failed on /metrics, written to the report
/// with the error, and the old config keeps serving.
fn sighup_with_a_broken_file(state: &Path, file: &Path, addr: SocketAddr) {
    const FAILED: &str = r#"switchback_config_reloads_total{result="failed"}"#;
    let failed_before = metric(addr, FAILED);
    let refused_before = log(state).matches(REFUSED).count();
    let report_before =
        std::fs::read_to_string(state.join("switchback.reload")).unwrap_or_default();
    let models_before = models(addr);
    std::fs::write(file, "model_providers:\n  - model: mock/ok\n    retry_policy: {on_failures: {consecutive: many}}\n").unwrap();
    let pid: i32 = std::fs::read_to_string(state.join("switchback.pid"))
        .expect("the pid file")
        .trim()
        .parse()
        .expect("a pid");
    kill_process(Pid::from_raw(pid).expect("pid"), Signal::HUP).expect("SIGHUP");
    // The log line is written before the report: wait for both.
    wait_until("the refusal in the log", || {
        log(state).matches(REFUSED).count() > refused_before
    });
    wait_until("the new report", || {
        std::fs::read_to_string(state.join("switchback.reload")).is_ok_and(|r| r != report_before)
    });
    let refused = log(state);
    let line = refused
        .lines()
        .rfind(|l| l.contains(REFUSED))
        .expect("the refusal line");
    assert!(line.contains("consecutive"), "{line}");
    assert_eq!(metric(addr, FAILED), failed_before + 1);
    let report = std::fs::read_to_string(state.join("switchback.reload")).expect("the report");
    let mut lines = report.lines();
    assert!(
        lines.next().is_some_and(|l| l.ends_with(" failed")),
        "{report}"
    );
    assert!(lines.any(|l| l.contains("consecutive")), "{report}");
    assert_eq!(models(addr), models_before, "the old config keeps serving");
    assert_eq!(get(addr, "/healthz").status, 200);
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
    let up = switchback_env(
        &["up", file_arg, "--runtime", runtime],
        &state,
        &[(KEY_VAR, &format!("http://127.0.0.1:{}", free_port()))],
    );
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(models(addr), ["mock/ok"]);

    // The caller's shell has no KEY_VAR: the gateway's environment has, and judges.
    std::fs::write(&file, config(port, Some("mock/slow"))).unwrap();
    let ok = switchback(&["reload"], &state);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(models(addr), ["mock/ok", "mock/slow"]);
    // Nor does a value exported only in the caller's shell count: one the config would
    // refuse changes nothing (the gateway's own value still judges).
    let exported = switchback_env(&["reload"], &state, &[(KEY_VAR, "not a url")]);
    assert!(exported.status.success(), "{}", text(&exported));
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

    sighup_with_a_broken_file(&state, &file, addr);

    let metrics = get(addr, "/metrics").text();
    assert!(
        metrics.contains(r#"switchback_config_reloads_total{result="ok"} 2"#)
            && metrics.contains(r#"switchback_config_reloads_total{result="failed"} 3"#),
        "{metrics}"
    );
    let down = switchback(&["down"], &state);
    assert!(down.status.success(), "{}", text(&down));
    let log = log(&state);
    assert!(log.contains(REFUSED), "{log}");
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
