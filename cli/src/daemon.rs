//! `switchback up` and `switchback down`: the gateway as a background process with a pid file
//! and a log file in a state directory.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, test_kill_process, Pid, Signal};

use crate::{config, LogFormat, ServeArgs};

const PID_FILE: &str = "switchback.pid";
const LOG_FILE: &str = "switchback.log";
const READY_FILE: &str = "switchback.ready";
const CONFIG_FILE: &str = "switchback.config";
const RELOAD_FILE: &str = "switchback.reload";
/// Set by `up` on the background `serve`: the file it writes each reload's outcome to
/// (`N ok`, or `N failed` and the errors), which `switchback reload` waits on.
pub const RELOAD_FILE_ENV: &str = "SWITCHBACK_RELOAD_FILE";
/// How long `reload` waits for the gateway to report the outcome.
const RELOAD_WAIT: Duration = Duration::from_secs(10);
/// Set by `up` on the background `serve`: the file it writes its pid to once every listener
/// is bound, so `up` never mistakes another process on the same port for its own gateway.
pub const READY_FILE_ENV: &str = "SWITCHBACK_READY_FILE";
/// How long `up` waits for every listener to answer `GET /healthz` with 200.
const HEALTH_WAIT: Duration = Duration::from_secs(30);
/// How long `down` waits after SIGTERM before SIGKILL (the gateway drains for up to 10 s).
const STOP_WAIT: Duration = Duration::from_secs(12);
/// Log lines shown when the background gateway dies during `up`.
const LOG_TAIL_LINES: usize = 30;

/// `--state-dir`, else `$XDG_STATE_HOME/switchback`, else `~/.local/state/switchback`.
fn state_dir(given: Option<PathBuf>) -> PathBuf {
    if let Some(d) = given {
        return d;
    }
    match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("switchback"),
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            home.join(".local/state/switchback")
        }
    }
}

/// `switchback up [CONFIG]`.
pub fn up(
    path: &Path,
    serve: &ServeArgs,
    log_format: LogFormat,
    state: Option<PathBuf>,
) -> ExitCode {
    let Some(cfg) = config::load(path) else {
        return ExitCode::FAILURE;
    };
    let dir = state_dir(state);
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!(
            "error: cannot create the state directory {}: {e}",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    if let Some(pid) = running_pid(&dir) {
        eprintln!(
            "switchback is already up (pid {}); replacing it",
            pid.as_raw_nonzero()
        );
        stop(pid);
        let _ = fs::remove_file(dir.join(PID_FILE));
    }

    let config_path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let log_path = dir.join(LOG_FILE);
    let log = match OpenOptions::new().create(true).append(true).open(&log_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "error: cannot open the log file {}: {e}",
                log_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the switchback executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stdout, stderr) = match (log.try_clone(), log.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!(
                "error: cannot open the log file {}: {e}",
                log_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let ready_path = dir.join(READY_FILE);
    let _ = fs::remove_file(&ready_path);
    let _ = fs::remove_file(dir.join(RELOAD_FILE));
    if let Err(e) = fs::write(
        dir.join(CONFIG_FILE),
        config_path.as_os_str().as_encoded_bytes(),
    ) {
        eprintln!(
            "error: cannot write the config file name in {}: {e}",
            dir.display()
        );
    }
    let mut command = Command::new(exe);
    command
        .arg("--log-format")
        .arg(log_format.as_str())
        .arg("serve")
        .arg(&config_path)
        .arg("--runtime")
        .arg(serve.runtime.as_str())
        .arg("--drain-timeout")
        .arg(format!("{}ms", serve.drain_timeout.as_millis()));
    if let Some(n) = serve.threads {
        command.arg("--threads").arg(n.to_string());
    }
    let mut child = match command
        .env(READY_FILE_ENV, &ready_path)
        .env(RELOAD_FILE_ENV, dir.join(RELOAD_FILE))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own process group: a terminal's Ctrl-C or hang-up does not reach it.
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start the gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = fs::write(dir.join(PID_FILE), format!("{}\n", child.id())) {
        eprintln!("error: cannot write the pid file in {}: {e}", dir.display());
    }

    let targets: Vec<SocketAddr> = cfg
        .listeners
        .iter()
        .map(|l| SocketAddr::new(reachable(l.address), l.port))
        .collect();
    let deadline = Instant::now() + HEALTH_WAIT;
    let mut pending = targets.clone();
    let mut bound = false;
    loop {
        bound = bound
            || fs::read_to_string(&ready_path).is_ok_and(|s| s.trim() == child.id().to_string());
        if bound {
            pending.retain(|a| !healthy(*a));
        }
        if pending.is_empty() {
            let shown: Vec<String> = targets.iter().map(|a| format!("http://{a}")).collect();
            println!(
                "switchback is up (pid {}) on {}; log: {}",
                child.id(),
                shown.join(", "),
                log_path.display()
            );
            return ExitCode::SUCCESS;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let _ = fs::remove_file(dir.join(PID_FILE));
            eprintln!("error: the gateway exited during startup ({status}); its log says:");
            eprint!("{}", log_tail(&log_path, log_start));
            return ExitCode::FAILURE;
        }
        if Instant::now() >= deadline {
            let shown: Vec<String> = pending.iter().map(ToString::to_string).collect();
            eprintln!(
                "error: no healthy answer from GET /healthz on {} within {} s; stopping it. Its log says:",
                shown.join(", "),
                HEALTH_WAIT.as_secs()
            );
            eprint!("{}", log_tail(&log_path, log_start));
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(dir.join(PID_FILE));
            return ExitCode::FAILURE;
        }
        sleep(Duration::from_millis(100));
    }
}

/// `switchback down`.
pub fn down(state: Option<PathBuf>) -> ExitCode {
    let dir = state_dir(state);
    match running_pid(&dir) {
        Some(pid) => {
            stop(pid);
            println!("switchback (pid {}) stopped", pid.as_raw_nonzero());
        }
        None => println!("switchback is not running"),
    }
    let _ = fs::remove_file(dir.join(PID_FILE));
    let _ = fs::remove_file(dir.join(READY_FILE));
    let _ = fs::remove_file(dir.join(CONFIG_FILE));
    let _ = fs::remove_file(dir.join(RELOAD_FILE));
    ExitCode::SUCCESS
}

/// `switchback reload`: sends SIGHUP to the gateway started by `up` and waits for it to
/// report the outcome: exit 0 when the new config serves, 1 with the gateway's reasons
/// when it kept the old one (a file that does not load, a listener change). The file is
/// judged by the gateway alone, in its own environment (the one `up` ran in, plus the
/// `.env` beside the config): a `$VAR` set there but not in this shell is no error, and
/// one unset there is, whatever this shell holds.
pub fn reload(state: Option<PathBuf>) -> ExitCode {
    let dir = state_dir(state);
    let Some(pid) = running_pid(&dir) else {
        eprintln!(
            "error: no gateway started by `switchback up` is running (state directory {})",
            dir.display()
        );
        return ExitCode::FAILURE;
    };
    let path = match fs::read(dir.join(CONFIG_FILE)) {
        Ok(bytes) => PathBuf::from(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            eprintln!(
                "error: cannot read which config the gateway serves ({}: {e}); restart it with `switchback up CONFIG`",
                dir.join(CONFIG_FILE).display()
            );
            return ExitCode::FAILURE;
        }
    };
    let report = dir.join(RELOAD_FILE);
    let before = fs::read_to_string(&report).unwrap_or_default();
    if let Err(e) = kill_process(pid, Signal::HUP) {
        eprintln!(
            "error: cannot signal the gateway (pid {}): {e}",
            pid.as_raw_nonzero()
        );
        return ExitCode::FAILURE;
    }
    let deadline = Instant::now() + RELOAD_WAIT;
    while Instant::now() < deadline {
        let now = fs::read_to_string(&report).unwrap_or_default();
        if now != before && now.ends_with('\n') {
            let mut lines = now.lines();
            let status = lines.next().unwrap_or_default();
            if status.ends_with(" ok") {
                println!(
                    "switchback (pid {}) reloaded {}",
                    pid.as_raw_nonzero(),
                    path.display()
                );
                return ExitCode::SUCCESS;
            }
            for l in lines {
                eprintln!("error: {l}");
            }
            eprintln!(
                "the gateway (pid {}) keeps serving its previous config",
                pid.as_raw_nonzero()
            );
            return ExitCode::FAILURE;
        }
        sleep(Duration::from_millis(50));
    }
    eprintln!(
        "error: the gateway (pid {}) did not report the reload within {} s; see its log",
        pid.as_raw_nonzero(),
        RELOAD_WAIT.as_secs()
    );
    ExitCode::FAILURE
}

/// Writes a reload's outcome to `$SWITCHBACK_RELOAD_FILE` (when `up` set it): a first line
/// `N ok` or `N failed` (N counts this process's reloads), then one error per line.
pub fn report_reload(outcome: &Result<(), Vec<String>>) {
    static RELOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let Some(path) = std::env::var_os(RELOAD_FILE_ENV) else {
        return;
    };
    let n = RELOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let text = match outcome {
        Ok(()) => format!("{n} ok\n"),
        Err(errors) => {
            let mut t = format!("{n} failed\n");
            for e in errors {
                t.push_str(&e.replace('\n', " "));
                t.push('\n');
            }
            t
        }
    };
    // Written whole then renamed, so `reload` never reads half a report.
    let tmp = PathBuf::from(&path).with_extension("tmp");
    if fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, &path))
        .is_err()
    {
        tracing::warn!(
            "cannot write the reload report {}",
            PathBuf::from(&path).display()
        );
    }
}

/// The pid in the state directory's pid file, if that process is alive and is a switchback.
fn running_pid(dir: &Path) -> Option<Pid> {
    let text = fs::read_to_string(dir.join(PID_FILE)).ok()?;
    let pid = Pid::from_raw(text.trim().parse().ok()?)?;
    test_kill_process(pid).ok()?;
    // Guard against a recycled pid: on Linux, check the command line names switchback.
    let cmdline = format!("/proc/{}/cmdline", pid.as_raw_nonzero());
    if let Ok(cmd) = fs::read(&cmdline) {
        if !String::from_utf8_lossy(&cmd).contains("switchback") {
            return None;
        }
    }
    Some(pid)
}

/// SIGTERM, wait for the graceful drain, then SIGKILL.
fn stop(pid: Pid) {
    if kill_process(pid, Signal::TERM).is_err() {
        return;
    }
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        if !alive(pid) {
            return;
        }
        sleep(Duration::from_millis(50));
    }
    eprintln!(
        "switchback (pid {}) did not stop within {} s; killing it",
        pid.as_raw_nonzero(),
        STOP_WAIT.as_secs()
    );
    let _ = kill_process(pid, Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(pid) && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
}

/// Alive and not a zombie.
fn alive(pid: Pid) -> bool {
    if test_kill_process(pid).is_err() {
        return false;
    }
    let stat = format!("/proc/{}/stat", pid.as_raw_nonzero());
    match fs::read_to_string(stat) {
        // The state follows the parenthesised command name.
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// The address to probe for a listener bound to `addr` (wildcards become loopback).
fn reachable(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    }
}

/// `GET /healthz` answered 200.
fn healthy(addr: SocketAddr) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.set_write_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0_u8; 12];
        s.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
    };
    probe().unwrap_or(false)
}

/// The last lines the log file got since `from`.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = lines[start..].join("\n");
    out.push('\n');
    out
}
