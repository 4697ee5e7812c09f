//! `switchback-bench`: the benchmark harness of the switchback gateway.
//!
//! `switchback-bench all` starts a mock upstream, nginx (`proxy_pass` with upstream
//! keep-alive) and switchback on smol and on tokio, and measures each side by side in one
//! run: latency (sequential and at a fixed rate), maximum throughput and CPU per request,
//! streaming, memory per open stream, failover cost, and the core alone. It prints markdown
//! tables and writes them, with an SVG chart, to an output directory. `--quick` runs tiny
//! counts to check that the harness works, asserting no timings.
//!
//! See `docs/benchmarks.md`.

/// The gateway binary's allocator (`cli/src/main.rs`), so the core benchmark measures the
/// core as it runs in the gateway.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod core_bench;
mod http1;
mod load;
mod metrics_cost;
mod mock;
mod report;
mod run;
mod systems;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "switchback-bench",
    about = "Benchmarks of the switchback gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every measurement on direct, nginx, switchback-smol and switchback-tokio.
    All(run::AllOptions),
    /// What recording metrics costs: the same gateway with metrics on and off, in one run.
    MetricsCost(metrics_cost::MetricsCostOptions),
    /// Only the core benchmark (no sockets).
    Core {
        /// Requests per path and variant (at most; each also stops after ~2 s).
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
        /// Only the rows whose "path variant" contains this (e.g. "200 JSON connection"),
        /// for profiling one path.
        #[arg(long)]
        only: Option<String>,
        /// Run with `metrics: {enabled: false}` (to compare what recording costs).
        #[arg(long)]
        metrics_off: bool,
    },
    /// Serve the mock upstream on 127.0.0.1:PORT (used by `all`).
    Mock {
        #[arg(long)]
        port: u16,
        /// Status of every chat answer: 200, or e.g. 429 (sent without Retry-After).
        #[arg(long, default_value_t = 200)]
        status: u16,
    },
    /// Serve CONFIG with `switchback_tokio::start` and the CLI's logging setup (used by `all`
    /// when the `switchback` binary has no tokio runtime).
    HostTokio { config: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::All(opts) => run::all(opts),
        Command::MetricsCost(opts) => metrics_cost::run(&opts),
        Command::Core {
            requests,
            only,
            metrics_off,
        } => {
            let budget = std::time::Duration::from_secs(2);
            let results = core_bench::run(requests, budget, only.as_deref(), !metrics_off);
            print!("{}", run::core_table(&results).markdown());
            ExitCode::SUCCESS
        }
        Command::Mock { port, status } => {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match mock::run(addr, mock::MockOptions { status }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mock: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::HostTokio { config } => host_tokio(&config),
    }
}

fn host_tokio(path: &std::path::Path) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let loaded = match switchback_core::config::load_str(&text, &|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let _running =
        match switchback_tokio::start(loaded.config, switchback_tokio::Options::default()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
    // Serve until killed (the harness sends SIGTERM).
    loop {
        std::thread::park();
    }
}
