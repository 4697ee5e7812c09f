//! Where the tests find the seed suite's configs: `$SWITCHBACK_SEED_DIR/configs` when the
//! variable is set, else `shared/seed/configs` beside the repository (the repository
//! root's parent holds `shared/`, as CI lays it out). Included by the core's and the
//! CLI's tests, so both read the same directory.

use std::path::{Path, PathBuf};

/// The seed configs directory for the repository at `repo_root`, or `None` when it is
/// absent outside CI (the caller skips, and this says so on stderr). With `CI` set an
/// absent seed is a failure: CI always has it.
pub fn seed_configs(repo_root: &Path) -> Option<PathBuf> {
    let dir = match std::env::var_os("SWITCHBACK_SEED_DIR") {
        Some(seed) => PathBuf::from(seed).join("configs"),
        None => repo_root.join("../shared/seed/configs"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!(
        "the seed configs are not at {} (set SWITCHBACK_SEED_DIR to the seed directory, or put shared/seed beside the repository)",
        dir.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("SKIPPED seed configs: {why}");
    None
}
