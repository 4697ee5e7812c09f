//! A real `redis-server` for tests (Debian's `redis-server` package): started on an
//! ephemeral loopback port with no persistence, optionally with a password and TLS,
//! killed and restarted on the same port, stopped when dropped.
//!
//! [`RedisServer::start`] finds the binary on `PATH`; when it is missing it installs the
//! package with `apt-get` once per test process (as root). When that is impossible it
//! prints a loud `SKIPPED` message and returns `None`, except under CI (`CI` set), where
//! it panics: CI (`.ci/run`) installs the package, so the real-Redis tests never pass
//! there without running.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::mock_upstream::refused_port;

/// How a test wants its Redis.
#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    /// `requirepass`.
    pub password: Option<String>,
    /// Serve TLS only, with a certificate for `localhost` and `127.0.0.1` signed by this
    /// CA's PEM (see [`TestCa::server_pem`](crate::tls::TestCa::server_pem)): the
    /// certificate and the key.
    pub tls: Option<(String, String)>,
}

/// A running `redis-server`. See the module docs.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    options: RedisOptions,
}

/// The `redis-server` binary, installing the Debian package if needed; `None` (after a
/// loud message) when it cannot be had outside CI.
///
/// # Panics
/// Under CI (`CI` set) when the binary cannot be had.
pub fn redis_server_binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find("redis-server").or_else(|| {
                eprintln!("redis-server is not installed: installing the Debian package redis-server");
                install();
                find("redis-server")
            })
        })
        .clone()
        .or_else(|| {
            let message = "redis-server is not installed and `apt-get install redis-server` failed; the real-Redis tests did NOT run";
            assert!(std::env::var_os("CI").is_none(), "{message}");
            eprintln!("\n==== SKIPPED: {message} ====\n");
            None
        })
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn install() {
    let quiet = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !quiet(&["install", "-y", "-q", "redis-server"]) {
        quiet(&["update", "-q"]);
        quiet(&["install", "-y", "-q", "redis-server"]);
    }
}

impl RedisServer {
    /// Starts a server (see the module docs); `None` when `redis-server` cannot be had.
    ///
    /// # Panics
    /// If the server does not come up.
    pub fn start(options: RedisOptions) -> Option<RedisServer> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let binary = redis_server_binary()?;
        let dir = std::env::temp_dir().join(format!(
            "switchback-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("redis temp dir");
        if let Some((cert, key)) = &options.tls {
            std::fs::write(dir.join("server.pem"), cert).expect("write the cert");
            std::fs::write(dir.join("server.key"), key).expect("write the key");
        }
        let mut server = RedisServer {
            binary,
            child: None,
            port: refused_port(),
            dir,
            options,
        };
        server.spawn();
        Some(server)
    }

    /// The port it listens on (TLS only, when started with TLS).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://[:password@]127.0.0.1:port/db`, or `rediss://...@localhost:port/db` with TLS.
    pub fn url(&self, db: u32) -> String {
        let auth = self
            .options
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        match self.options.tls {
            Some(_) => format!("rediss://{auth}localhost:{}/{db}", self.port),
            None => format!("redis://{auth}127.0.0.1:{}/{db}", self.port),
        }
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir);
        match &self.options.tls {
            Some(_) => {
                cmd.args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(self.dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(self.dir.join("server.key"));
            }
            None => {
                cmd.args(["--port", &port]);
            }
        }
        if let Some(p) = &self.options.password {
            cmd.args(["--requirepass", p]);
        }
        let log = std::fs::File::create(self.dir.join("redis.log")).expect("redis log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "redis-server exited ({status}):\n{}",
                    std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < end, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli` with `args` against it (TLS and password as configured) and
    /// returns its stdout (empty when it could not connect).
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = self.binary.with_file_name("redis-cli");
        let mut cmd = Command::new(cli);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.options.tls.is_some() {
            cmd.args(["--tls", "--insecure"]);
        }
        if let Some(p) = &self.options.password {
            cmd.args(["--no-auth-warning", "-a", p]);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Kills it at once (SIGKILL): clients see their connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let end = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            assert!(
                Instant::now() < end,
                "redis-server still accepts after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the same port, empty.
    ///
    /// # Panics
    /// If it does not come up.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Where its files (and its log) are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
