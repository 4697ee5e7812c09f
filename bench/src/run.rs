//! `switchback-bench all`: the whole suite, side by side, and its report.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::core_bench::{self, CoreResult};
use crate::http1::{chat_body, chat_request};
use crate::load::{self, HoldRun, LatencyRun, SseRun};
use crate::report::{
    bar_chart_svg, fmt_delta, fmt_ratio, fmt_us, group, mib, us, Series, Table, PERCENTILES,
};
use crate::systems::{self, Pinning, Proc};

#[derive(Debug, clap::Args)]
pub struct AllOptions {
    /// Tiny counts, a few seconds in all: checks that the harness works; asserts no timings.
    #[arg(long)]
    quick: bool,
    /// Where results.md and the SVG charts go (default docs/bench, or a temp dir with --quick).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Concurrent SSE streams for the memory test.
    #[arg(long)]
    streams: Option<usize>,
    /// Skip nginx.
    #[arg(long)]
    no_nginx: bool,
    /// Do not install nginx when it is missing.
    #[arg(long)]
    no_install: bool,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    no_pin: bool,
}

/// The sizes of one run.
#[derive(Debug, Clone)]
struct Plan {
    seq_count: u64,
    seq_time: Duration,
    max_conns: usize,
    max_time: Duration,
    rate_time: Duration,
    rate_conns: usize,
    sse_conns: usize,
    sse_per_conn: u64,
    sse_chunks: u32,
    sse_interval_ms: u64,
    failover_count: u64,
    hold: usize,
    hold_timeout: Duration,
    core_requests: u64,
    core_budget: Duration,
}

impl Plan {
    fn full(streams: usize) -> Plan {
        Plan {
            seq_count: 20_000,
            seq_time: Duration::from_secs(15),
            max_conns: 50,
            max_time: Duration::from_secs(8),
            rate_time: Duration::from_secs(10),
            rate_conns: 64,
            sse_conns: 4,
            sse_per_conn: 25,
            sse_chunks: 20,
            sse_interval_ms: 10,
            failover_count: 10_000,
            hold: streams,
            hold_timeout: Duration::from_secs(60),
            core_requests: 2_000_000,
            core_budget: Duration::from_secs(2),
        }
    }

    fn quick(streams: usize) -> Plan {
        Plan {
            seq_count: 200,
            seq_time: Duration::from_secs(2),
            max_conns: 50,
            max_time: Duration::from_millis(400),
            rate_time: Duration::from_millis(500),
            rate_conns: 8,
            sse_conns: 2,
            sse_per_conn: 2,
            sse_chunks: 5,
            sse_interval_ms: 5,
            failover_count: 100,
            hold: streams,
            hold_timeout: Duration::from_secs(10),
            core_requests: 2_000,
            core_budget: Duration::from_millis(100),
        }
    }
}

/// One system under test and what was measured on it.
#[derive(Debug)]
struct Sys {
    name: &'static str,
    addr: SocketAddr,
    proxy: bool,
    proc_: Option<Proc>,
    launch: String,
    idle_rss: Option<u64>,
    seq: Option<LatencyRun>,
    max: Option<(LatencyRun, f64)>,
    fixed: Option<LatencyRun>,
    fixed_low: Option<LatencyRun>,
    sse: Option<SseRun>,
    failover: Option<LatencyRun>,
    hold: Option<(HoldRun, u64, u64)>,
}

impl Sys {
    fn new(name: &'static str, addr: SocketAddr, proc_: Option<Proc>, launch: String) -> Sys {
        Sys {
            name,
            addr,
            proxy: proc_.is_some(),
            proc_,
            launch,
            idle_rss: None,
            seq: None,
            max: None,
            fixed: None,
            fixed_low: None,
            sse: None,
            failover: None,
            hold: None,
        }
    }

    fn is_proxy(&self) -> bool {
        self.proxy
    }

    fn pids(&self) -> Vec<u32> {
        self.proc_.as_ref().map(Proc::tree).unwrap_or_default()
    }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// nproc, CPU model, memory, kernel, load: for the report.
pub(crate) fn machine() -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let cpus = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into());
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    format!(
        "- CPUs (nproc): {cpus}\n- CPU model: {model}\n- memory: {mem}\n- kernel: Linux {kernel}\n"
    )
}

fn loadavg() -> String {
    read("/proc/loadavg")
        .split(' ')
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn find_nginx() -> Option<PathBuf> {
    [
        "/usr/sbin/nginx",
        "/usr/bin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// nginx, installed from Debian's `nginx-light` when missing (idempotent: nothing is done
/// when it is already there).
fn ensure_nginx(install: bool) -> Option<PathBuf> {
    if let Some(p) = find_nginx() {
        return Some(p);
    }
    if !install {
        return None;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!("nginx is missing and this is not root: skipping nginx (install nginx-light)");
        return None;
    }
    eprintln!("installing nginx-light (apt-get)");
    let ok = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !(ok(&["update", "-qq"]) && ok(&["install", "-y", "-qq", "nginx-light"])) {
        eprintln!("apt-get could not install nginx-light: skipping nginx");
    }
    find_nginx()
}

fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum;
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

pub(crate) fn pinning(no_pin: bool) -> (Pinning, String) {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let has_taskset = Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if no_pin || cpus < 2 || !has_taskset {
        let why = if no_pin {
            "disabled (--no-pin)"
        } else if cpus < 2 {
            "not possible (one CPU)"
        } else {
            "not possible (no taskset)"
        };
        return (
            Pinning { servers: None },
            format!("CPU pinning {why}: every process shares every CPU."),
        );
    }
    let mut set = rustix::thread::CpuSet::new();
    set.set(0);
    let _ = rustix::thread::sched_setaffinity(None, &set);
    let last = cpus - 1;
    let servers = if last == 1 {
        "1".to_string()
    } else {
        format!("1-{last}")
    };
    (
        Pinning {
            servers: Some(servers.clone()),
        },
        format!(
            "CPU pinning: the load generator alone on CPU 0; the proxies and the mock upstreams on CPU {servers} (the proxy under test shares its core with the mock, and every system, direct included, crosses CPUs twice per request)."
        ),
    )
}

fn step(what: &str) {
    eprintln!("== {what}");
}

fn check(
    problems: &mut Vec<String>,
    sys: &str,
    what: &str,
    ok: u64,
    errors: u64,
    first: &Option<String>,
) {
    if ok == 0 || errors > 0 {
        problems.push(format!(
            "{sys} / {what}: {ok} ok, {errors} errors{}",
            first
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ));
    }
}

pub fn all(opts: AllOptions) -> ExitCode {
    match all_inner(&opts) {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("\nthe run had failures:");
            for p in problems {
                eprintln!("  - {p}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn all_inner(opts: &AllOptions) -> Result<Vec<String>, String> {
    let started = Instant::now();
    let streams = opts.streams.unwrap_or(if opts.quick { 50 } else { 5000 });
    let plan = if opts.quick {
        Plan::quick(streams)
    } else {
        Plan::full(streams)
    };
    let machine = machine();
    let load_before = loadavg();
    let nofile = raise_nofile();
    let (pin, pin_note) = pinning(opts.no_pin);
    let work = std::env::temp_dir().join(format!("switchback-bench-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let out = match &opts.out {
        Some(o) => o.clone(),
        None if opts.quick => work.join("out"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench"),
    };
    fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    eprintln!("work dir (configs, logs): {}", work.display());
    eprintln!("{pin_note}");
    let mut problems = Vec::new();

    let nginx = if opts.no_nginx {
        None
    } else {
        let n = ensure_nginx(!opts.quick && !opts.no_install);
        if n.is_none() {
            eprintln!("nginx not found: skipping the nginx reference");
        }
        n
    };
    let bin = systems::switchback_binary()?;

    // The core alone first, while nothing else runs.
    step("core benchmark");
    let core = core_bench::run(plan.core_requests, plan.core_budget, None, true);

    step("starting the mocks and the proxies");
    let (mock, mock_addr) = systems::start_mock(&pin, &work, 200, "mock")?;
    let (mock429, mock429_addr) = systems::start_mock(&pin, &work, 429, "mock-429")?;
    let mut syss = vec![Sys::new(
        "direct",
        mock_addr,
        None,
        format!("switchback-bench mock --port {}", mock_addr.port()),
    )];
    if let Some(n) = &nginx {
        let (p, a) = systems::start_nginx(&pin, &work, n, mock_addr)?;
        syss.push(Sys::new(
            "nginx",
            a,
            Some(p),
            format!("{} (see the generated nginx.conf)", n.display()),
        ));
    }
    for (name, rt) in [("switchback-smol", "smol"), ("switchback-tokio", "tokio")] {
        let (p, a, launch) =
            systems::start_switchback(&pin, &work, &bin, rt, mock_addr, mock429_addr)?;
        syss.push(Sys::new(name, a, Some(p), launch.command));
    }
    std::thread::sleep(Duration::from_millis(300));
    for s in &mut syss {
        if s.is_proxy() {
            s.idle_rss = Some(systems::rss_bytes(&s.pids()));
        }
    }

    let plain = chat_request(&chat_body("openai/bench", false, None));
    let sse_user = format!("bench-sse-{}-{}", plan.sse_chunks, plan.sse_interval_ms);
    let sse_req = chat_request(&chat_body("openai/bench", true, Some(&sse_user)));

    step("sequential latency (1 connection)");
    for s in &mut syss {
        let r = load::sequential(s.addr, &plain, plan.seq_count, plan.seq_time);
        check(
            &mut problems,
            s.name,
            "sequential",
            r.ok,
            r.errors,
            &r.first_error,
        );
        eprintln!("  {:<17} p50 {} µs", s.name, fmt_us(us(&r.hist, 50.0)));
        s.seq = Some(r);
    }

    step(&format!(
        "maximum throughput ({} connections)",
        plan.max_conns
    ));
    let mock_pids = vec![mock.pid()];
    for s in &mut syss {
        let pids = if s.is_proxy() {
            s.pids()
        } else {
            mock_pids.clone()
        };
        let cpu0 = systems::cpu_seconds(&pids);
        let r = load::closed_loop(s.addr, &plain, plan.max_conns, plan.max_time, 50_000_000);
        let cpu = systems::cpu_seconds(&pids) - cpu0;
        check(
            &mut problems,
            s.name,
            "throughput",
            r.ok,
            r.errors,
            &r.first_error,
        );
        eprintln!("  {:<17} {:.0} req/s", s.name, r.rate());
        s.max = Some((r, cpu));
    }

    let reference = syss
        .iter()
        .find(|s| s.name == "nginx")
        .or_else(|| syss.iter().find(|s| s.name == "direct"))
        .and_then(|s| s.max.as_ref().map(|m| (s.name, m.0.rate())))
        .unwrap_or(("direct", 1000.0));
    let rate = if opts.quick {
        200.0
    } else {
        (reference.1 * 0.5).round()
    };
    let rate_note = if opts.quick {
        "200 req/s (quick mode: a fixed small rate)".to_string()
    } else {
        format!(
            "{} req/s = 50 % of {}'s maximum",
            group(rate as i64),
            reference.0
        )
    };
    step(&format!("fixed rate: {rate_note}"));
    for s in &mut syss {
        s.fixed = Some(fixed_rate(&mut problems, s, &plain, rate, &plan));
    }
    // A second rate every system can sustain: half the slowest switchback's maximum.
    let slowest = syss
        .iter()
        .filter(|s| s.name.starts_with("switchback"))
        .filter_map(|s| s.max.as_ref().map(|m| m.0.rate()))
        .fold(f64::INFINITY, f64::min);
    let rate_low = if opts.quick || !slowest.is_finite() {
        100.0
    } else {
        (slowest * 0.5).round()
    };
    let rate_low_note = format!(
        "{} req/s = 50 % of the slower switchback runtime's maximum",
        group(rate_low as i64)
    );
    step(&format!("fixed rate: {rate_low_note}"));
    for s in &mut syss {
        s.fixed_low = Some(fixed_rate(&mut problems, s, &plain, rate_low, &plan));
    }

    step("streaming (SSE)");
    for s in &mut syss {
        let r = load::streams(
            s.addr,
            &sse_req,
            plan.sse_conns,
            plan.sse_per_conn,
            Duration::from_secs(60),
        );
        check(
            &mut problems,
            s.name,
            "streaming",
            r.streams_ok,
            r.errors,
            &r.first_error,
        );
        eprintln!(
            "  {:<17} first chunk p50 {} µs",
            s.name,
            fmt_us(us(&r.ttfc, 50.0))
        );
        s.sse = Some(r);
    }

    step("failover (429 without Retry-After, then the fallback)");
    let fallback_direct = chat_request(&chat_body("groq/fallback", false, None));
    let failover_req = chat_request(&chat_body("openai/primary", false, None));
    for s in &mut syss {
        let req = if s.name == "direct" {
            &fallback_direct
        } else if s.name.starts_with("switchback") {
            let mut c = load::Conn::new(s.addr);
            match c.exchange(&failover_req, &mut |_, _, _| {}) {
                Ok(200) if c.last_attempts() == Some(2) => {}
                other => problems.push(format!(
                    "{}: failover request gave {other:?} with x-switchback-attempts {:?}, expected 200 after 2",
                    s.name,
                    c.last_attempts()
                )),
            }
            &failover_req
        } else {
            continue;
        };
        let r = load::sequential(s.addr, req, plan.failover_count, plan.seq_time);
        check(
            &mut problems,
            s.name,
            "failover",
            r.ok,
            r.errors,
            &r.first_error,
        );
        s.failover = Some(r);
    }

    step(&format!("memory: {} open SSE streams per proxy", plan.hold));
    let hold_req = chat_request(&chat_body("openai/bench", true, Some("bench-sse-90-1000")));
    for s in &mut syss {
        if !s.is_proxy() {
            continue;
        }
        let pids = s.pids();
        let before = systems::rss_bytes(&pids);
        let (h, during) =
            load::hold_streams(s.addr, &hold_req, plan.hold, plan.hold_timeout, || {
                systems::rss_bytes(&pids)
            });
        if h.opened < plan.hold {
            problems.push(format!(
                "{}: only {} of {} streams opened ({} failed)",
                s.name, h.opened, plan.hold, h.failed
            ));
        }
        eprintln!(
            "  {:<17} {} streams open: RSS {} → {}",
            s.name,
            h.opened,
            mib(before as f64),
            mib(during as f64)
        );
        s.hold = Some((h, before, during));
        // Let the closed streams drain before the next proxy is measured.
        std::thread::sleep(Duration::from_secs(1));
    }

    let load_after = loadavg();
    let launches: Vec<String> = syss
        .iter()
        .map(|s| format!("- {}: `{}`", s.name, s.launch))
        .collect();
    drop(syss.iter_mut().map(|s| s.proc_.take()).collect::<Vec<_>>());
    drop(mock);
    drop(mock429);

    let ctx = Context {
        plan: &plan,
        rate_note: &rate_note,
        rate_low_note: &rate_low_note,
        machine: &machine,
        pin_note: &pin_note,
        load_before: &load_before,
        load_after: &load_after,
        nofile,
        quick: opts.quick,
        elapsed: started.elapsed(),
        launches: &launches,
    };
    let md = render(&ctx, &syss, &core);
    print!("{md}");
    fs::write(out.join("results.md"), &md).map_err(|e| e.to_string())?;
    let names: Vec<&str> = PERCENTILES.iter().map(|p| p.1).collect();
    let series = |f: &dyn Fn(&Sys) -> Option<&LatencyRun>| -> Vec<Series> {
        syss.iter()
            .filter_map(|s| {
                f(s).map(|r| Series {
                    name: s.name.to_owned(),
                    values: PERCENTILES.iter().map(|p| us(&r.hist, p.0)).collect(),
                })
            })
            .collect()
    };
    fs::write(
        out.join("latency-fixed-rate.svg"),
        bar_chart_svg(
            &format!("Latency at {rate_note}"),
            "µs",
            &names,
            &series(&|s| s.fixed.as_ref()),
        ),
    )
    .map_err(|e| e.to_string())?;
    fs::write(
        out.join("latency-fixed-rate-sustained.svg"),
        bar_chart_svg(
            &format!("Latency at {rate_low_note}"),
            "µs",
            &names,
            &series(&|s| s.fixed_low.as_ref()),
        ),
    )
    .map_err(|e| e.to_string())?;
    fs::write(
        out.join("latency-sequential.svg"),
        bar_chart_svg(
            "Latency, 1 connection, sequential",
            "µs",
            &names,
            &series(&|s| s.seq.as_ref()),
        ),
    )
    .map_err(|e| e.to_string())?;
    eprintln!("wrote {}/results.md and the SVG charts", out.display());
    Ok(problems)
}

fn fixed_rate(
    problems: &mut Vec<String>,
    s: &Sys,
    req: &[u8],
    rate: f64,
    plan: &Plan,
) -> LatencyRun {
    let r = load::open_loop(s.addr, req, rate, plan.rate_time, plan.rate_conns);
    check(
        problems,
        s.name,
        "fixed rate",
        r.ok,
        r.errors,
        &r.first_error,
    );
    eprintln!(
        "  {:<17} p50 {} µs, p99 {} µs, {} unsent",
        s.name,
        fmt_us(us(&r.hist, 50.0)),
        fmt_us(us(&r.hist, 99.0)),
        r.unsent
    );
    r
}

struct Context<'a> {
    plan: &'a Plan,
    rate_note: &'a str,
    rate_low_note: &'a str,
    machine: &'a str,
    pin_note: &'a str,
    load_before: &'a str,
    load_after: &'a str,
    nofile: u64,
    quick: bool,
    elapsed: Duration,
    launches: &'a [String],
}

pub fn core_table(core: &[CoreResult]) -> Table {
    let mut t = Table::new(&[
        "path",
        "variant",
        "requests",
        "ns / request",
        "attempts / request",
    ]);
    for c in core {
        t.row(vec![
            c.path.to_owned(),
            c.variant.to_owned(),
            group(c.requests as i64),
            group(c.ns_per_request.round() as i64),
            format!("{}", c.attempts_per_request),
        ]);
    }
    t
}

fn latency_table(
    syss: &[Sys],
    pick: &dyn Fn(&Sys) -> Option<&LatencyRun>,
    with_rate: bool,
) -> Table {
    let mut header = vec![
        "system",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "p99.9 µs",
        "added p50",
        "added p99",
        "p99 ×direct",
        "requests",
    ];
    if with_rate {
        header.push("achieved req/s");
        header.push("unsent (time bound)");
    }
    let mut t = Table::new(&header);
    let direct = syss.iter().find(|s| s.name == "direct").and_then(pick);
    for s in syss {
        let Some(r) = pick(s) else { continue };
        let mut row = vec![s.name.to_owned()];
        for (p, _) in PERCENTILES {
            row.push(fmt_us(us(&r.hist, p)));
        }
        let d = |p: f64| {
            direct
                .map(|d| us(&r.hist, p) - us(&d.hist, p))
                .unwrap_or(f64::NAN)
        };
        row.push(fmt_delta(d(50.0)));
        row.push(fmt_delta(d(99.0)));
        row.push(fmt_ratio(
            direct
                .map(|d| us(&r.hist, 99.0) / us(&d.hist, 99.0))
                .unwrap_or(f64::NAN),
        ));
        row.push(group(r.hist.len() as i64));
        if with_rate {
            row.push(group(r.rate().round() as i64));
            row.push(group(r.unsent as i64));
        }
        t.row(row);
    }
    t
}

/// Added latency of `s` over direct at percentile `p` in a run picked by `pick`.
fn added(
    syss: &[Sys],
    name: &str,
    pick: &dyn Fn(&Sys) -> Option<&hdrhistogram::Histogram<u64>>,
    p: f64,
) -> f64 {
    let get = |n: &str| {
        syss.iter()
            .find(|s| s.name == n)
            .and_then(pick)
            .map(|h| us(h, p))
    };
    match (get(name), get("direct")) {
        (Some(a), Some(b)) => a - b,
        _ => f64::NAN,
    }
}

fn render(ctx: &Context<'_>, syss: &[Sys], core: &[CoreResult]) -> String {
    let mut s = String::new();
    let plan = ctx.plan;
    let _ = writeln!(
        s,
        "## Run{}\n",
        if ctx.quick {
            " (--quick: tiny counts, timings meaningless)"
        } else {
            ""
        }
    );
    s.push_str(ctx.machine);
    let _ = writeln!(
        s,
        "- load average (1/5/15 min): {} before the run, {} after",
        ctx.load_before, ctx.load_after
    );
    let _ = writeln!(s, "- open-file limit: {}", ctx.nofile);
    let _ = writeln!(s, "- {}", ctx.pin_note);
    let _ = writeln!(s, "- run time: {:.0} s", ctx.elapsed.as_secs_f64());
    s.push_str("- processes:\n");
    for l in ctx.launches {
        let _ = writeln!(s, "  {l}");
    }

    let _ = writeln!(
        s,
        "\n### Latency, 1 connection, sequential ({} requests each)\n",
        group(plan.seq_count as i64)
    );
    s.push_str(&latency_table(syss, &|x| x.seq.as_ref(), false).markdown());

    let _ = writeln!(
        s,
        "\n### Latency at a fixed rate: {} for {:.1} s, {} connections, measured from each request's intended send time\n",
        ctx.rate_note,
        plan.rate_time.as_secs_f64(),
        plan.rate_conns
    );
    s.push_str(&latency_table(syss, &|x| x.fixed.as_ref(), true).markdown());
    s.push_str("\nA system that cannot sustain the rate queues: its latency then measures the backlog (that is the point of measuring from the intended send time).\n");

    let _ = writeln!(
        s,
        "\n### Latency at a fixed rate every system sustains: {} for {:.1} s, {} connections\n",
        ctx.rate_low_note,
        plan.rate_time.as_secs_f64(),
        plan.rate_conns
    );
    s.push_str(&latency_table(syss, &|x| x.fixed_low.as_ref(), true).markdown());

    let _ = writeln!(
        s,
        "\n### Maximum throughput, {} connections, {:.1} s\n",
        plan.max_conns,
        plan.max_time.as_secs_f64()
    );
    let mut t = Table::new(&[
        "system",
        "req/s",
        "×nginx",
        "×direct",
        "CPU s / 1,000 req",
        "CPU use (cores)",
        "p50 µs",
        "p99 µs",
        "errors",
    ]);
    let rate_of = |n: &str| {
        syss.iter()
            .find(|x| x.name == n)
            .and_then(|x| x.max.as_ref())
            .map(|m| m.0.rate())
    };
    for x in syss {
        let Some((r, cpu)) = &x.max else { continue };
        let rate = r.rate();
        t.row(vec![
            if x.is_proxy() {
                x.name.to_owned()
            } else {
                format!("{} (CPU: the mock)", x.name)
            },
            group(rate.round() as i64),
            fmt_ratio(rate_of("nginx").map(|n| rate / n).unwrap_or(f64::NAN)),
            fmt_ratio(rate_of("direct").map(|n| rate / n).unwrap_or(f64::NAN)),
            format!("{:.3}", cpu / (r.ok.max(1) as f64) * 1000.0),
            format!("{:.2}", cpu / r.elapsed.as_secs_f64()),
            fmt_us(us(&r.hist, 50.0)),
            fmt_us(us(&r.hist, 99.0)),
            group(r.errors as i64),
        ]);
    }
    s.push_str(&t.markdown());

    let _ = writeln!(
        s,
        "\n### Streaming: {} chunks {} ms apart; {} connections × {} streams\n",
        plan.sse_chunks, plan.sse_interval_ms, plan.sse_conns, plan.sse_per_conn
    );
    s.push_str("Time to first chunk (request sent → first content event read); inter-chunk gap as the client saw it; per-chunk transit (the mock's write → the client's read, chunks 2..N, from the mock's wall-clock stamp).\n\n");
    let mut t = Table::new(&[
        "system",
        "first chunk p50 µs",
        "p99 µs",
        "added p50",
        "added p99",
        "gap p50 µs",
        "gap p99 µs",
        "transit p50 µs",
        "transit p99 µs",
        "added transit p50",
        "added transit p99",
        "streams",
    ]);
    let direct_sse = syss
        .iter()
        .find(|x| x.name == "direct")
        .and_then(|x| x.sse.as_ref());
    for x in syss {
        let Some(r) = &x.sse else { continue };
        let d = |h: &dyn Fn(&SseRun) -> &hdrhistogram::Histogram<u64>, p: f64| {
            direct_sse
                .map(|ds| us(h(r), p) - us(h(ds), p))
                .unwrap_or(f64::NAN)
        };
        t.row(vec![
            x.name.to_owned(),
            fmt_us(us(&r.ttfc, 50.0)),
            fmt_us(us(&r.ttfc, 99.0)),
            fmt_delta(d(&|r| &r.ttfc, 50.0)),
            fmt_delta(d(&|r| &r.ttfc, 99.0)),
            fmt_us(us(&r.gap, 50.0)),
            fmt_us(us(&r.gap, 99.0)),
            fmt_us(us(&r.transit, 50.0)),
            fmt_us(us(&r.transit, 99.0)),
            fmt_delta(d(&|r| &r.transit, 50.0)),
            fmt_delta(d(&|r| &r.transit, 99.0)),
            group(r.streams_ok as i64),
        ]);
    }
    s.push_str(&t.markdown());

    let _ = writeln!(
        s,
        "\n### Memory: idle RSS, and RSS with {} concurrent open SSE streams\n",
        group(plan.hold as i64)
    );
    s.push_str("Idle: after start-up, before any traffic. Per stream: (RSS with the streams open − RSS just before opening them) / streams open. nginx: master + worker.\n\n");
    let mut t = Table::new(&[
        "system",
        "idle RSS",
        "RSS before",
        "RSS with streams",
        "streams open",
        "bytes / stream",
        "KiB / stream",
        "open time s",
    ]);
    for x in syss {
        let Some((h, before, during)) = &x.hold else {
            continue;
        };
        let per = (*during as f64 - *before as f64) / h.opened.max(1) as f64;
        t.row(vec![
            x.name.to_owned(),
            x.idle_rss.map(|r| mib(r as f64)).unwrap_or_default(),
            mib(*before as f64),
            mib(*during as f64),
            group(h.opened as i64),
            group(per.round() as i64),
            format!("{:.1}", per / 1024.0),
            format!("{:.1}", h.open_time.as_secs_f64()),
        ]);
    }
    s.push_str(&t.markdown());

    let _ = writeln!(s, "\n### Failover: primary answers 429 (no Retry-After), fallback answers 200; 1 connection, sequential\n");
    s.push_str("direct = straight to the fallback mock; switchback = `openai/primary` failing over to `groq/fallback` (2 upstream attempts per request).\n\n");
    s.push_str(&latency_table(syss, &|x| x.failover.as_ref(), false).markdown());

    s.push_str(
        "\n### The core alone (no sockets): `Gateway::handle` + `RetryMachine` per request\n\n",
    );
    let _ = write!(s, "`machine`: pre-parsed upstream events. `machine+codec`: also encodes the upstream request and parses the raw upstream bytes with the shared HTTP/1.1 codec. One thread, timed loop, {} build.\n\n", if cfg!(debug_assertions) { "debug" } else { "release" });
    s.push_str(&core_table(core).markdown());

    // Targets.
    s.push_str("\n### Targets\n\n");
    let mut t = Table::new(&["target", "switchback-smol", "switchback-tokio"]);
    let nginx_rate = rate_of("nginx");
    fn seq(x: &Sys) -> Option<&hdrhistogram::Histogram<u64>> {
        x.seq.as_ref().map(|r| &r.hist)
    }
    fn ttfc(x: &Sys) -> Option<&hdrhistogram::Histogram<u64>> {
        x.sse.as_ref().map(|r| &r.ttfc)
    }
    type Check<'a> = Box<dyn Fn(&str) -> (f64, bool, String) + 'a>;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let checks: Vec<(&str, Check<'_>)> = vec![
        (
            "throughput ≥ 0.8× nginx",
            Box::new(|n: &str| {
                let v = rate_of(n)
                    .zip(nginx_rate)
                    .map(|(a, b)| a / b)
                    .unwrap_or(f64::NAN);
                (v, v >= 0.8, fmt_ratio(v))
            }),
        ),
        (
            "added p50 ≤ 25 µs, 1 connection",
            Box::new(|n: &str| {
                let v = added(syss, n, &seq, 50.0);
                (v, v <= 25.0, format!("{} µs", fmt_delta(v)))
            }),
        ),
        (
            "added time to first chunk ≤ 100 µs p50",
            Box::new(|n: &str| {
                let v = added(syss, n, &ttfc, 50.0);
                (v, v <= 100.0, format!("{} µs", fmt_delta(v)))
            }),
        ),
        (
            "≤ 32 KiB per open stream",
            Box::new(|n: &str| {
                let v = syss
                    .iter()
                    .find(|x| x.name == n)
                    .and_then(|x| x.hold.as_ref())
                    .map(|(h, b, d)| (*d as f64 - *b as f64) / h.opened.max(1) as f64 / 1024.0)
                    .unwrap_or(f64::NAN);
                (v, v <= 32.0, format!("{v:.1} KiB"))
            }),
        ),
        (
            "idle RSS ≤ 20 MiB",
            Box::new(|n: &str| {
                let v = syss
                    .iter()
                    .find(|x| x.name == n)
                    .and_then(|x| x.idle_rss)
                    .map(|r| r as f64 / 1024.0 / 1024.0)
                    .unwrap_or(f64::NAN);
                (v, v <= 20.0, format!("{v:.1} MiB"))
            }),
        ),
        (
            // One core for both runtimes: the same figure in both columns.
            "the core ≤ 3 µs per simple request (200 JSON, machine+codec)",
            Box::new(|_: &str| {
                let v = core
                    .iter()
                    .find(|c| c.path == "200 JSON" && c.variant == "machine+codec")
                    .map(|c| c.ns_per_request / 1000.0)
                    .unwrap_or(f64::NAN);
                (v, v <= 3.0, format!("{v:.2} µs"))
            }),
        ),
    ];
    for (name, f) in &checks {
        let mut row = vec![(*name).to_owned()];
        for sys in ["switchback-smol", "switchback-tokio"] {
            let (v, ok, shown) = f(sys);
            row.push(if v.is_nan() {
                "n/a".into()
            } else {
                format!("{shown}: {}", verdict(ok))
            });
        }
        t.row(row);
    }
    s.push_str(&t.markdown());
    s
}
