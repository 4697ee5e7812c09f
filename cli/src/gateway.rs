//! `switchback serve`: run the gateway on the chosen runtime until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use switchback_core::config::Config;

use crate::{config, Runtime};

/// A gateway running on one of the runtimes compiled in.
enum Running {
    #[cfg(feature = "smol")]
    Smol(switchback_smol::Running),
    #[cfg(feature = "tokio")]
    Tokio(switchback_tokio::Running),
}

impl Running {
    fn local_addrs(&self) -> Vec<SocketAddr> {
        match self {
            #[cfg(feature = "smol")]
            Running::Smol(r) => r.local_addrs(),
            #[cfg(feature = "tokio")]
            Running::Tokio(r) => r.local_addrs(),
        }
    }

    fn shutdown(self) {
        match self {
            #[cfg(feature = "smol")]
            Running::Smol(r) => r.shutdown(),
            #[cfg(feature = "tokio")]
            Running::Tokio(r) => r.shutdown(),
        }
    }
}

/// Starts `config` on `runtime`; the error is a sentence for the user.
fn start(config: Config, runtime: Runtime) -> Result<Running, String> {
    match runtime {
        #[cfg(feature = "smol")]
        Runtime::Smol => switchback_smol::start(config, switchback_smol::Options::default())
            .map(Running::Smol)
            .map_err(|e| e.to_string()),
        #[cfg(not(feature = "smol"))]
        Runtime::Smol => {
            drop(config);
            Err("this build has no smol runtime".to_string())
        }
        #[cfg(feature = "tokio")]
        Runtime::Tokio => switchback_tokio::start(config, switchback_tokio::Options::default())
            .map(Running::Tokio)
            .map_err(|e| e.to_string()),
        #[cfg(not(feature = "tokio"))]
        Runtime::Tokio => {
            drop(config);
            Err("this build has no tokio runtime; use --runtime smol".to_string())
        }
    }
}

/// `switchback serve [CONFIG]`.
pub fn serve(path: &Path, runtime: Runtime) -> ExitCode {
    let Some(config) = config::load(path) else {
        return ExitCode::FAILURE;
    };
    // Register the handlers before serving, so an early signal is not lost.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let running = match start(config, runtime) {
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
        runtime = runtime.as_str(),
        version = env!("CARGO_PKG_VERSION"),
        listeners = %addrs.join(", "),
        "switchback is serving"
    );
    let signal = signals.forever().next();
    tracing::info!(signal = ?signal, "shutting down: draining in-flight requests");
    running.shutdown();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
