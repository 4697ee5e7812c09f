//! Loading a config file and reporting what is wrong with it: the one validation path
//! that `check`, `serve` and `up` share (spec §10: `check` refuses exactly what `serve`
//! would).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchback_core::config::{explain, load_file, Config, Diagnostic, Loaded};
use switchback_core::gateway::Gateway;

/// The config path given, or `./config.yaml`.
pub fn path_or_default(path: Option<PathBuf>) -> PathBuf {
    path.unwrap_or_else(|| PathBuf::from("config.yaml"))
}

/// Loads and validates `path` as `serve` will run it: the loader's checks, then the
/// gateway built from the result (which a loaded config always passes; building it here
/// keeps that true by construction). `Err` holds every error, one sentence each.
pub fn validate(path: &Path) -> Result<Loaded, Vec<String>> {
    if !path.exists() && path == Path::new("config.yaml") {
        return Err(vec![
            "no config given and ./config.yaml does not exist; pass a config file, e.g. `switchback serve path/to/config.yaml`".to_string(),
        ]);
    }
    let shown = |d: &Diagnostic| format!("{}: {d}", path.display());
    let loaded = load_file(path).map_err(|e| e.errors.iter().map(shown).collect::<Vec<_>>())?;
    if let Err(e) = Gateway::new(loaded.config.clone()) {
        return Err(vec![format!("{}: {e}", path.display())]);
    }
    Ok(loaded)
}

/// Loads `path` for serving: warnings are logged; on errors every one goes to stderr and
/// `None` is returned.
pub fn load(path: &Path) -> Option<Config> {
    match validate(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{}: {w}", path.display());
            }
            Some(loaded.config)
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            None
        }
    }
}

/// `switchback check [--explain] CONFIG`.
pub fn check(path: &Path, explain_policies: bool) -> ExitCode {
    match validate(path) {
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
            if explain_policies {
                print!("\n{}", explain(&loaded.config));
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s)", path.display(), errors.len());
            ExitCode::FAILURE
        }
    }
}
