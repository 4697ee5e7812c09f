//! `switchback serve`: run the gateway on the chosen runtime until SIGINT/SIGTERM.

use std::path::Path;
use std::process::ExitCode;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use switchback_core::config::Config;
use switchback_pump::{Options, Running};

use crate::{config, Runtime, ServeArgs};

/// Starts `config` on `runtime`; the error is a sentence for the user.
fn start(config: Config, runtime: Runtime, options: Options) -> Result<Running, String> {
    let started = match runtime {
        #[cfg(feature = "smol")]
        Runtime::Smol => switchback_smol::start(config, options),
        #[cfg(feature = "tokio")]
        Runtime::Tokio => switchback_tokio::start(config, options),
        #[allow(unreachable_patterns)]
        other => {
            drop((config, options));
            return Err(format!("this build has no {} runtime", other.as_str()));
        }
    };
    started.map_err(|e| e.to_string())
}

/// `switchback serve [CONFIG]`.
pub fn serve(path: &Path, args: &ServeArgs) -> ExitCode {
    let Some(config) = config::load(path) else {
        return ExitCode::FAILURE;
    };
    // Register the handlers before serving, so an early signal is not lost.
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        drain_timeout: args.drain_timeout,
        threads: args.threads,
        ..Options::default()
    };
    let running = match start(config, args.runtime, options) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(ready) = std::env::var_os(crate::daemon::READY_FILE_ENV) {
        if let Err(e) = std::fs::write(&ready, format!("{}\n", std::process::id())) {
            tracing::warn!(
                "cannot write the ready file {}: {e}",
                ready.to_string_lossy()
            );
        }
    }
    let addrs: Vec<String> = running
        .local_addrs()
        .iter()
        .map(|a| a.to_string())
        .collect();
    tracing::info!(
        runtime = running.runtime(),
        version = env!("CARGO_PKG_VERSION"),
        listeners = %addrs.join(", "),
        "switchback is serving"
    );
    let mut signal = None;
    for s in signals.forever() {
        if s == SIGHUP {
            reload(path, &running);
            continue;
        }
        signal = Some(s);
        break;
    }
    tracing::info!(signal = ?signal, "shutting down: draining in-flight requests");
    running.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

/// SIGHUP (spec §13): re-reads `path`; a config that does not load, or that the running
/// gateway refuses, is logged and the old one keeps serving. The outcome also goes to
/// the reload file `switchback reload` waits on, when `up` named one.
fn reload(path: &Path, running: &Running) {
    tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
    let outcome = match config::validate(path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                tracing::warn!("{}: {w}", path.display());
            }
            running.reload(loaded.config).map_err(|e| vec![e])
        }
        Err(errors) => {
            running.reload_refused();
            Err(errors)
        }
    };
    if let Err(errors) = &outcome {
        for e in errors {
            tracing::error!("reload refused, the previous config keeps serving: {e}");
        }
    }
    crate::daemon::report_reload(&outcome);
}
