//! Outside programs some tests run against the gateway (Debian's `prometheus` package:
//! `promtool` and the Prometheus server): found on `PATH`, installed with `apt-get` when
//! missing and possible, and otherwise reported with a loud skip message. Under CI
//! (`CI` set) a missing tool fails the test instead: `.ci/run` installs it, so it
//! missing there is a broken CI, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// One install attempt at a time (apt-get holds a lock).
static INSTALLING: Mutex<()> = Mutex::new(());

/// `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The program `name` from Debian package `package`: on `PATH`, or installed now with
/// `apt-get install` (as root). `None`, after a loud message on stderr, when it cannot
/// be had; under CI that is a test failure.
///
/// # Panics
/// Under CI (`CI` set), when the program cannot be had.
pub fn require(name: &str, package: &str, test: &str) -> Option<PathBuf> {
    if let Some(p) = on_path(name) {
        return Some(p);
    }
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = on_path(name) {
        return Some(p);
    }
    let tried = install(package);
    if let Some(p) = on_path(name) {
        return Some(p);
    }
    let why = format!(
        "`{name}` (Debian package `{package}`) is not installed and could not be installed ({tried})"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {why}; .ci/run installs it, so CI must have it");
    }
    eprintln!("\n!!!!! SKIPPED {test}: {why}. Install it with `apt-get install {package}` to run this test. !!!!!\n");
    None
}

/// `apt-get install -y PACKAGE` (after `apt-get update` if the first try fails); says
/// what happened.
fn install(package: &str) -> String {
    let Some(apt) = on_path("apt-get") else {
        return "no apt-get here".to_owned();
    };
    let run = |args: &[&str]| {
        Command::new(&apt)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let args = ["install", "-y", "-qq", "--no-install-recommends", package];
    if run(&args) {
        return "installed".to_owned();
    }
    if run(&["update", "-qq"]) && run(&args) {
        return "installed".to_owned();
    }
    "apt-get install failed (not root, or no package source)".to_owned()
}
