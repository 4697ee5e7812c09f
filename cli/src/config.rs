//! Loading a config file and reporting what is wrong with it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchback_core::config::{load_file, Config};

/// The config path given, or `./config.yaml`.
pub fn path_or_default(path: Option<PathBuf>) -> PathBuf {
    path.unwrap_or_else(|| PathBuf::from("config.yaml"))
}

/// Loads `path`: warnings are logged; on errors every diagnostic goes to stderr and `None`
/// is returned.
pub fn load(path: &Path) -> Option<Config> {
    if !path.exists() && path == Path::new("config.yaml") {
        eprintln!(
            "error: no config given and ./config.yaml does not exist; pass a config file, e.g. `switchback serve path/to/config.yaml`"
        );
        return None;
    }
    match load_file(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{}: {w}", path.display());
            }
            Some(loaded.config)
        }
        Err(e) => {
            for d in &e.errors {
                eprintln!("error: {}: {d}", path.display());
            }
            None
        }
    }
}

/// `switchback check CONFIG`.
pub fn check(path: &Path) -> ExitCode {
    match load_file(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {}: {w}", path.display());
            }
            println!(
                "{}: OK ({} listener(s), {} provider(s), {} warning(s))",
                path.display(),
                loaded.config.listeners.len(),
                loaded.config.providers.len(),
                loaded.warnings.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for d in &e.errors {
                eprintln!("error: {}: {d}", path.display());
            }
            eprintln!("{}: {} error(s)", path.display(), e.errors.len());
            ExitCode::FAILURE
        }
    }
}
