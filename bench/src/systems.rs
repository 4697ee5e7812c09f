//! The systems under test and the processes behind them: the mock upstreams, nginx and
//! switchback on each runtime. Also CPU time and RSS of a process tree from /proc.

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http1::HEALTH_REQUEST;
use crate::load::Conn;

/// A free loopback port (bound, read, released).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Where processes run: `taskset -c CPU` when pinning is available.
#[derive(Debug, Clone)]
pub struct Pinning {
    /// CPU list for the proxies and the mock upstreams (None: not pinned). The load
    /// generator has the other CPU to itself, so every system, direct included, pays the
    /// same two cross-CPU wake-ups per request and the generator's timing stays precise.
    pub servers: Option<String>,
}

impl Pinning {
    fn command(cpus: &Option<String>, program: &Path) -> Command {
        match cpus {
            Some(c) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(c).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }
}

/// A child process we started, stopped (TERM, then KILL) on drop.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// This process and its children (nginx workers), from /proc.
    pub fn tree(&self) -> Vec<u32> {
        let root = self.pid();
        let mut pids = vec![root];
        if let Ok(dir) = fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()))
                    == Some(root)
                {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    /// Whether it already exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fields of /proc/PID/stat after the command name: [0] state, [1] ppid, ... [11] utime,
/// [12] stime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    Some(after.split(' ').map(str::to_owned).collect())
}

/// utime + stime of every process in `pids`, in seconds.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    let hz = rustix::param::clock_ticks_per_second() as f64;
    pids.iter()
        .filter_map(|&p| stat_fields(p))
        .map(|f| {
            let u: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
            let s: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
            (u + s) as f64 / hz
        })
        .sum()
}

/// VmRSS of every process in `pids`, in bytes.
pub fn rss_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&p| fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .sum()
}

/// Waits until `addr` answers `GET /healthz` with 200, or the process exits, or 10 s pass.
pub fn wait_healthy(addr: SocketAddr, proc_: &mut Proc) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < until {
        if proc_.exited() {
            return Err(format!("{} exited during startup", proc_.name));
        }
        match Conn::new(addr).exchange(HEALTH_REQUEST, &mut |_, _, _| {}) {
            Ok(200) => return Ok(()),
            Ok(s) => last = format!("status {s}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{} not healthy on {addr} after 10 s: {last}",
        proc_.name
    ))
}

fn log_file(dir: &Path, name: &str) -> Result<Stdio, String> {
    let f = fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    Ok(Stdio::from(f))
}

/// Starts the mock upstream (this binary's `mock` command) on a free port.
pub fn start_mock(
    pin: &Pinning,
    dir: &Path,
    status: u16,
    name: &str,
) -> Result<(Proc, SocketAddr), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let port = free_port().map_err(|e| e.to_string())?;
    let child = Pinning::command(&pin.servers, &me)
        .args([
            "mock",
            "--port",
            &port.to_string(),
            "--status",
            &status.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(dir, name)?)
        .spawn()
        .map_err(|e| format!("cannot start the mock: {e}"))?;
    let mut p = Proc {
        child,
        name: name.to_owned(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_healthy(addr, &mut p)?;
    Ok((p, addr))
}

/// The nginx reference: `proxy_pass` to the mock with upstream keep-alive, one worker.
pub fn start_nginx(
    pin: &Pinning,
    dir: &Path,
    nginx: &Path,
    mock: SocketAddr,
) -> Result<(Proc, SocketAddr), String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let ndir = dir.join("nginx");
    fs::create_dir_all(ndir.join("logs")).map_err(|e| e.to_string())?;
    let d = ndir.display();
    let conf = format!(
        "# Generated by switchback-bench: a plain reverse proxy to the mock upstream.
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{
    worker_connections 16000;
}}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    upstream mock {{
        server {mock};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"
    );
    let conf_path = ndir.join("nginx.conf");
    fs::write(&conf_path, conf).map_err(|e| e.to_string())?;
    let child = Pinning::command(&pin.servers, nginx)
        .arg("-p")
        .arg(&ndir)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(dir, "nginx-stderr")?)
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))?;
    let mut p = Proc {
        child,
        name: "nginx".into(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_healthy(addr, &mut p)?;
    Ok((p, addr))
}

/// The switchback config: `openai/bench` straight to the mock (no retry policy), and
/// `openai/primary` (a mock answering 429 without Retry-After) failing over to
/// `groq/fallback` (the normal mock).
pub fn switchback_config(port: u16, mock: SocketAddr, mock429: SocketAddr) -> String {
    format!(
        "# Generated by switchback-bench.
version: v0.3.0
listeners:
  - type: model
    name: bench
    port: {port}
model_providers:
  - model: openai/bench
    base_url: http://{mock}
    access_key: bench-key
    default: true
  - model: openai/primary
    base_url: http://{mock429}
    access_key: bench-key
    # The failover path measures what one failover costs, so this entry's retries are
    # not budgeted (the budget exists to refuse exactly this traffic in an outage).
    retry_budget: {{enabled: false}}
    retry_policy:
      fallback_models: [groq/fallback]
      on_status_codes:
        - codes: [429]
          strategy: different_provider
          max_attempts: 1
  - model: groq/fallback
    base_url: http://{mock}
    access_key: bench-key
"
    )
}

/// How switchback was started, for the report.
#[derive(Debug, Clone)]
pub struct Launch {
    pub command: String,
}

/// Starts switchback on `runtime` (`smol` or `tokio`) with the `switchback` binary; if that
/// binary has no such runtime, with this harness's `host-tokio` command (the same
/// `switchback_tokio::start` and logging setup as the CLI).
pub fn start_switchback(
    pin: &Pinning,
    dir: &Path,
    bin: &Path,
    runtime: &str,
    mock: SocketAddr,
    mock429: SocketAddr,
) -> Result<(Proc, SocketAddr, Launch), String> {
    start_switchback_with(pin, dir, bin, runtime, runtime, &|port| {
        switchback_config(port, mock, mock429)
    })
}

/// [`start_switchback`] with the config `config(port)` makes, named `switchback-{tag}`.
pub fn start_switchback_with(
    pin: &Pinning,
    dir: &Path,
    bin: &Path,
    runtime: &str,
    tag: &str,
    config: &dyn Fn(u16) -> String,
) -> Result<(Proc, SocketAddr, Launch), String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let cfg = dir.join(format!("switchback-{tag}.yaml"));
    fs::write(&cfg, config(port)).map_err(|e| e.to_string())?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let name = format!("switchback-{tag}");
    let attempt = |program: &Path, args: Vec<String>| -> Result<Proc, String> {
        let child = Pinning::command(&pin.servers, program)
            .args(&args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(dir, &name)?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut p = Proc {
            child,
            name: name.clone(),
        };
        wait_healthy(addr, &mut p)?;
        Ok(p)
    };
    let cfg_s = cfg.display().to_string();
    let args = vec![
        "serve".to_string(),
        cfg_s.clone(),
        "--runtime".into(),
        runtime.into(),
    ];
    match attempt(bin, args.clone()) {
        Ok(p) => Ok((
            p,
            addr,
            Launch {
                command: format!("switchback {}", args.join(" ")),
            },
        )),
        Err(e) if runtime == "tokio" => {
            eprintln!("note: `switchback serve --runtime tokio` failed ({e}); using `switchback-bench host-tokio`");
            let me = std::env::current_exe().map_err(|e| e.to_string())?;
            let p = attempt(&me, vec!["host-tokio".into(), cfg_s.clone()])?;
            Ok((
                p,
                addr,
                Launch {
                    command: format!("switchback-bench host-tokio {cfg_s}"),
                },
            ))
        }
        Err(e) => Err(e),
    }
}

/// The `switchback` binary beside this one (same target dir and profile), building it with
/// cargo when it is missing.
pub fn switchback_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = me.with_file_name("switchback");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Always ask cargo: it is a no-op when the binary is fresh, and rebuilds it when not.
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "switchback"]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    eprintln!(
        "building the switchback binary ({})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(format!("cargo build -p switchback failed: {s}")),
        Err(e) if bin.exists() => {
            eprintln!("note: cannot run cargo ({e}); using {}", bin.display())
        }
        Err(e) => return Err(format!("cannot run cargo: {e}")),
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("no switchback binary at {}", bin.display()))
    }
}
