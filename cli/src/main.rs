//! `switchback`: the command line of the switchback LLM gateway (spec §1).

mod config;
mod daemon;
mod gateway;
mod log_writer;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mimalloc: the gateway allocates small buffers per request on several threads, where
/// glibc's allocator spent a tenth of the CPU time under load (measured with `perf`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "switchback", version, about)]
struct Cli {
    /// Log format on stderr (the level comes from RUST_LOG, default `info`).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway in the foreground until SIGINT/SIGTERM.
    Serve {
        /// The config file (default ./config.yaml).
        config: Option<PathBuf>,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Start the gateway in the background and wait until every listener is healthy.
    Up {
        /// The config file (default ./config.yaml).
        config: Option<PathBuf>,
        #[command(flatten)]
        serve: ServeArgs,
        /// Where the pid and log files live (default $XDG_STATE_HOME/switchback or
        /// ~/.local/state/switchback).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Stop the gateway started by `up` (SIGTERM, then SIGKILL after a timeout).
    Down {
        /// Where the pid and log files live.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Make the gateway started by `up` re-read its config (as SIGHUP does), in the
    /// gateway's own environment; exit 1 with the gateway's errors when it refuses the new
    /// config (the old one keeps serving).
    Reload {
        /// Where the pid and log files live.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Validate a config file and print its errors and warnings.
    Check {
        /// The config file.
        config: PathBuf,
        /// Also print each provider entry's effective retry policy, defaults and Plano
        /// mappings filled in.
        #[arg(long)]
        explain: bool,
    },
}

/// How `serve` (and `up`) run the gateway.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Which runtime drives the gateway.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    pub runtime: Runtime,
    /// Worker threads, each with its own executor (default: the CPUs this process may run
    /// on).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// How long a graceful stop lets in-flight requests finish, e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_drain_timeout)]
    pub drain_timeout: Duration,
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is not a thread count; give a whole number from 1 to 1024"
        )),
    }
}

fn parse_drain_timeout(text: &str) -> Result<Duration, String> {
    switchback_core::config::parse_duration(text).map_err(|e| format!("the drain timeout {e}"))
}

/// The runtime that drives the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    Smol,
    Tokio,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Smol => "smol",
            Runtime::Tokio => "tokio",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _log_flush = logging::init(cli.log_format);
    match cli.command {
        Command::Serve { config, serve } => {
            gateway::serve(&config::path_or_default(config), &serve)
        }
        Command::Up {
            config,
            serve,
            state_dir,
        } => daemon::up(
            &config::path_or_default(config),
            &serve,
            cli.log_format,
            state_dir,
        ),
        Command::Down { state_dir } => daemon::down(state_dir),
        Command::Reload { state_dir } => daemon::reload(state_dir),
        Command::Check { config, explain } => config::check(&config, explain),
    }
}
