//! `switchback-bench metrics-cost`: what recording metrics costs, in one run. Two
//! switchback processes on the same runtime serve the same config, one with
//! `metrics: {enabled: false}`, in front of one mock upstream; rounds of maximum
//! throughput alternate between them (the order flips every round, so drift on a
//! shared machine hits both alike), and the medians are compared. Before measuring it
//! checks that `/metrics` answers 404 on the gateway with metrics off and 200 on the
//! other, so a config that failed to switch metrics off aborts the run instead of
//! comparing a gateway with itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::http1::{chat_body, chat_request};
use crate::load;
use crate::run::{machine, pinning};
use crate::systems::{self, switchback_config};

#[derive(Debug, clap::Args)]
pub struct MetricsCostOptions {
    /// The runtime both gateways run on.
    #[arg(long, default_value = "smol")]
    runtime: String,
    /// Rounds per gateway.
    #[arg(long, default_value_t = 6)]
    rounds: u32,
    /// Seconds per round.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    no_pin: bool,
}

/// The status code `GET /metrics` gets from `addr`.
fn metrics_status(addr: SocketAddr) -> Result<u16, String> {
    let fail = |e: std::io::Error| format!("GET /metrics on {addr}: {e}");
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(fail)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(fail)?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .map_err(fail)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = conn.read(&mut buf).map_err(fail)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("GET /metrics on {addr}: no status line in {line:?}"))
}

/// Fails unless `/metrics` is served where metrics are on and absent where they are off.
fn check_metrics_switch(on: SocketAddr, off: SocketAddr) -> Result<(), String> {
    match (metrics_status(on)?, metrics_status(off)?) {
        (200, 404) => Ok(()),
        (a, b) => Err(format!(
            "expected /metrics to answer 200 with metrics on and 404 with them off, got {a} and {b}; the two gateways would not differ in what is measured"
        )),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn run(opts: &MetricsCostOptions) -> ExitCode {
    match measure(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metrics-cost: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(opts: &MetricsCostOptions) -> Result<(), String> {
    let (pin, pin_note) = pinning(opts.no_pin);
    let work = std::env::temp_dir().join(format!("switchback-metrics-cost-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let bin = systems::switchback_binary()?;
    let (_mock, mock) = systems::start_mock(&pin, &work, 200, "mock")?;
    let rt = opts.runtime.as_str();
    let (_on, on, _) =
        systems::start_switchback_with(&pin, &work, &bin, rt, "metrics-on", &|port| {
            switchback_config(port, mock, mock)
        })?;
    let (_off, off, _) =
        systems::start_switchback_with(&pin, &work, &bin, rt, "metrics-off", &|port| {
            format!(
                "{}metrics:\n  enabled: false\n",
                switchback_config(port, mock, mock)
            )
        })?;
    check_metrics_switch(on, off)?;
    let req = chat_request(&chat_body("openai/bench", false, None));
    let round = Duration::from_secs(opts.seconds.max(1));
    for addr in [on, off] {
        load::closed_loop(addr, &req, opts.conns, Duration::from_secs(1), u64::MAX);
    }
    let (mut with, mut without) = (Vec::new(), Vec::new());
    println!("{pin_note}\nmachine: {}\n", machine());
    println!("| round | metrics on (req/s) | metrics off (req/s) |\n|---|---|---|");
    for i in 0..opts.rounds {
        let order = if i % 2 == 0 { [on, off] } else { [off, on] };
        let mut got = [0.0, 0.0];
        for addr in order {
            let r = load::closed_loop(addr, &req, opts.conns, round, u64::MAX);
            if r.errors > 0 {
                return Err(format!(
                    "{} errors on {addr}: {:?}",
                    r.errors, r.first_error
                ));
            }
            got[usize::from(addr == off)] = r.rate();
        }
        println!("| {} | {:.0} | {:.0} |", i + 1, got[0], got[1]);
        with.push(got[0]);
        without.push(got[1]);
    }
    let (m_on, m_off) = (median(with), median(without));
    println!(
        "\nmedian: metrics on {m_on:.0} req/s, off {m_off:.0} req/s: metrics cost {:.1} % of throughput ({} runtime, {} connections, {} s rounds)",
        (1.0 - m_on / m_off) * 100.0,
        opts.runtime,
        opts.conns,
        round.as_secs()
    );
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering every connection with `status`.
    fn answering(status: u16) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten().take(2) {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = write!(conn, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            }
        });
        addr
    }

    #[test]
    fn the_run_aborts_unless_metrics_are_on_in_one_and_off_in_the_other() {
        assert_eq!(check_metrics_switch(answering(200), answering(404)), Ok(()));
        let err = check_metrics_switch(answering(200), answering(200)).unwrap_err();
        assert!(err.contains("got 200 and 200"), "{err}");
        assert!(check_metrics_switch(answering(404), answering(404)).is_err());
    }
}
