//! The network workloads: real servers driven by real clients, one server at a time.
//!
//! - `http`: `wrk -t1 -cC -dDs` against a hello-world keep-alive server: this crate's
//!   `http_hello` example, the same crate's sockets and server with the harness's own parser
//!   (`greenlet (harness parser)`, like for like with the mio loop), a hand-written mio loop
//!   (the floor), tokio and may.
//! - `ping`: `redis-benchmark -t ping_inline,ping_mbulk -P 1|16 --csv` against a RESP server:
//!   this crate's `redis_server` example, redis-server itself when installed (the floor), tokio
//!   and may.
//!
//! Every server is its own process on one thread; its CPU time (user + system, from
//! `/proc/<pid>/stat`) is read before and after the client runs, which gives the CPU it spent
//! per request: on a small machine the client often limits req/s, so CPU per request is the
//! figure to compare. A missing client skips the workload with what to install; a figure is
//! never made up.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::model::{Cell, Config, Row, Skip};
use crate::peers::Runtime;
use crate::stats::{Sample, fmt_sig};
use crate::sys;

/// Connections of every redis-benchmark run.
const PING_CONNS: u32 = 100;
/// Pipeline depths of the ping workload.
const PIPELINES: [u32; 2] = [1, 16];

/// Which client drives a workload, and the server of each runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Http,
    /// HTTP with two server threads: `http_hello --threads 2`, tokio multi-thread, may with
    /// two workers.
    Http2,
    Resp,
}

impl Proto {
    fn workload(self) -> &'static str {
        match self {
            Proto::Http | Proto::Http2 => "http",
            Proto::Resp => "ping",
        }
    }
    fn client(self) -> (&'static str, &'static str) {
        match self {
            Proto::Http | Proto::Http2 => ("wrk", "apt-get install wrk"),
            Proto::Resp => ("redis-benchmark", "apt-get install redis-tools"),
        }
    }
    fn example(self) -> &'static str {
        match self {
            Proto::Http | Proto::Http2 => "http_hello",
            Proto::Resp => "redis_server",
        }
    }
    fn runtimes(self) -> &'static [Runtime] {
        match self {
            Proto::Http => &[
                Runtime::Greenlet,
                Runtime::GreenletMonkey,
                Runtime::GreenletProto,
                Runtime::Mio,
                Runtime::May,
                Runtime::Tokio,
            ],
            Proto::Http2 => &[Runtime::Greenlet, Runtime::May, Runtime::Tokio],
            Proto::Resp => &[
                Runtime::Greenlet,
                Runtime::RedisServer,
                Runtime::May,
                Runtime::Tokio,
            ],
        }
    }
}

/// One load setting: connections and pipeline depth.
#[derive(Debug, Clone, Copy)]
struct Load {
    conns: u32,
    pipeline: u32,
}

/// One client run against one server.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rps: f64,
    cpu_us_per_req: f64,
}

/// Runs workload `name` (`http`, with one and with two server threads, or `ping`), or says
/// why it is skipped.
pub fn run(name: &str, cfg: &Config) -> Result<Vec<Row>, Skip> {
    if name == "http" {
        let mut rows = run_proto(Proto::Http, cfg)?;
        rows.extend(run_proto(Proto::Http2, cfg)?);
        Ok(rows)
    } else {
        run_proto(Proto::Resp, cfg)
    }
}

fn run_proto(proto: Proto, cfg: &Config) -> Result<Vec<Row>, Skip> {
    let (client, install) = proto.client();
    let Some(client) = sys::which(client) else {
        let reason = format!("skipped: {client} not installed ({install})");
        eprintln!("[{}] {reason}", proto.workload());
        return Err(Skip {
            workload: proto.workload(),
            reason,
        });
    };
    let loads: Vec<Load> = match proto {
        Proto::Http | Proto::Http2 => cfg
            .conns
            .iter()
            .map(|&conns| Load { conns, pipeline: 1 })
            .collect(),
        Proto::Resp => PIPELINES
            .iter()
            .map(|&pipeline| Load {
                conns: PING_CONNS,
                pipeline,
            })
            .collect(),
    };
    // How each runtime's server is started, or why it cannot be.
    let servers: BTreeMap<Runtime, Result<Vec<String>, String>> = proto
        .runtimes()
        .iter()
        .map(|&r| (r, server_command(proto, r)))
        .collect();
    let logs = cfg.out.join("logs");
    let _ = std::fs::create_dir_all(&logs);
    let mut results: BTreeMap<(usize, Runtime), Result<Vec<Figures>, String>> = BTreeMap::new();
    for rep in 1..=cfg.long_reps {
        for (li, load) in loads.iter().enumerate() {
            for (&runtime, server) in &servers {
                let slot = results
                    .entry((li, runtime))
                    .or_insert_with(|| Ok(Vec::new()));
                let (Ok(argv), Ok(done)) = (server, &mut *slot) else {
                    continue;
                };
                let pipeline = match proto {
                    Proto::Http | Proto::Http2 => String::new(),
                    Proto::Resp => format!(" P={}", load.pipeline),
                };
                let label = format!(
                    "[{}] {} c={}{pipeline} rep {rep}/{}",
                    proto.workload(),
                    runtime.name(),
                    load.conns,
                    cfg.long_reps
                );
                eprintln!("{label}: running {}", client.display());
                let threads = if proto == Proto::Http2 { "-2" } else { "" };
                let log = logs.join(format!(
                    "{}{threads}-{}.log",
                    proto.workload(),
                    runtime.name()
                ));
                match measure(proto, &client, argv, *load, cfg, &log) {
                    Ok(f) => {
                        eprintln!(
                            "{label}: {} req/s, {} µs CPU/request",
                            fmt_sig(f.rps),
                            fmt_sig(f.cpu_us_per_req)
                        );
                        done.push(f);
                    }
                    Err(reason) => {
                        eprintln!("{label}: failed: {reason}");
                        *slot = Err(reason);
                    }
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (li, load) in loads.iter().enumerate() {
        let what = match proto {
            Proto::Http => format!("http: hello keep-alive, wrk -t1 -c{}", load.conns),
            Proto::Http2 => format!(
                "http: hello keep-alive, 2 server threads, wrk -t1 -c{}",
                load.conns
            ),
            Proto::Resp => format!(
                "ping: RESP PING, redis-benchmark -c{} -P{}",
                load.conns, load.pipeline
            ),
        };
        // The same handler on plain std::net under the monkey hooks, against the green one:
        // CPU per request, repetition by repetition (they ran interleaved).
        let monkey =
            cpu_ratio(&results, li, Runtime::GreenletMonkey, Runtime::Greenlet).map(|ratios| {
                let mut row = Row::new(
                    proto.workload(),
                    format!("{what}: server CPU, std::net under monkey ÷ greenlet::net"),
                    "×",
                );
                row.cells.insert(Runtime::GreenletMonkey, cell(ratios));
                row
            });
        // Both greenlet servers against the mio loop, repetition by repetition: the harness
        // parser's server differs from the mio loop only in the runtime.
        let mut vs_mio = Row::new(
            proto.workload(),
            format!("{what}: server CPU ÷ the mio loop's"),
            "×",
        );
        for ours in [Runtime::Greenlet, Runtime::GreenletProto] {
            if let Some(ratios) = cpu_ratio(&results, li, ours, Runtime::Mio) {
                vs_mio.cells.insert(ours, cell(ratios));
            }
        }
        let mut cpu = Row::new(
            proto.workload(),
            format!("{what}: server CPU"),
            "µs/request",
        );
        let mut rps =
            Row::new(proto.workload(), format!("{what}: throughput"), "req/s").higher_is_better();
        for (&runtime, server) in &servers {
            let (cpu_cell, rps_cell) = match (server, results.remove(&(li, runtime))) {
                (Err(reason), _) => (failed(reason), failed(reason)),
                (_, Some(Err(reason))) => (failed(&reason), failed(&reason)),
                (_, Some(Ok(runs))) if !runs.is_empty() => (
                    cell(runs.iter().map(|f| f.cpu_us_per_req).collect()),
                    cell(runs.iter().map(|f| f.rps).collect()),
                ),
                _ => (failed("not run"), failed("not run")),
            };
            cpu.cells.insert(runtime, cpu_cell);
            rps.cells.insert(runtime, rps_cell);
        }
        cpu.compute_ratio();
        rps.compute_ratio();
        rows.push(cpu);
        rows.push(rps);
        if !vs_mio.cells.is_empty() {
            rows.push(vs_mio);
        }
        rows.extend(monkey);
    }
    Ok(rows)
}

/// `num`'s CPU per request over `den`'s, repetition by repetition (they ran interleaved),
/// when both have figures for load `li`.
fn cpu_ratio(
    results: &BTreeMap<(usize, Runtime), Result<Vec<Figures>, String>>,
    li: usize,
    num: Runtime,
    den: Runtime,
) -> Option<Vec<f64>> {
    match (results.get(&(li, num)), results.get(&(li, den))) {
        (Some(Ok(n)), Some(Ok(d))) if !n.is_empty() && !d.is_empty() => Some(
            n.iter()
                .zip(d)
                .map(|(n, d)| n.cpu_us_per_req / d.cpu_us_per_req)
                .collect(),
        ),
        _ => None,
    }
}

fn failed(reason: &str) -> Cell {
    if let Some(r) = reason.strip_prefix("skipped: ") {
        return Cell::Skipped { reason: r.into() };
    }
    Cell::Failed {
        reason: reason.into(),
    }
}

fn cell(values: Vec<f64>) -> Cell {
    Sample::new(values).map_or_else(|| failed("no finite figure"), Cell::ok)
}

/// The command line of `runtime`'s server for `proto`, with `{port}` for the port.
fn server_command(proto: Proto, runtime: Runtime) -> Result<Vec<String>, String> {
    let own = |what: &str| {
        let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
        Ok(vec![
            exe.display().to_string(),
            "__serve".into(),
            runtime.name().into(),
            what.into(),
            "{port}".into(),
        ])
    };
    match (proto, runtime) {
        (Proto::Http2, Runtime::Greenlet) => {
            let exe = build_example(proto.example(), &[])?;
            Ok(vec![
                exe.display().to_string(),
                "{port}".into(),
                "--threads".into(),
                "2".into(),
            ])
        }
        (_, Runtime::Greenlet) => {
            let exe = build_example(proto.example(), &[])?;
            Ok(vec![exe.display().to_string(), "{port}".into()])
        }
        (Proto::Http, Runtime::GreenletMonkey) => {
            let exe = build_example("http_hello_std", &["--features", "monkey"])?;
            Ok(vec![exe.display().to_string(), "{port}".into()])
        }
        (Proto::Resp, Runtime::RedisServer) => {
            let exe = sys::which("redis-server").ok_or(
                "skipped: redis-server not installed (apt-get install redis-server)".to_string(),
            )?;
            let args = ["--port", "{port}", "--save", "", "--appendonly", "no"];
            let mut v = vec![exe.display().to_string()];
            v.extend(args.iter().map(|s| s.to_string()));
            Ok(v)
        }
        (Proto::Http, _) => own("http"),
        (Proto::Http2, _) => own("http2"),
        (Proto::Resp, _) => own("resp"),
    }
}

/// Builds this crate's example `name` in release mode (with `extra` cargo arguments, such as
/// features) and returns its path.
pub fn build_example(name: &str, extra: &[&str]) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "[net] cargo build --release -p greenlet --example {name} {}",
        extra.join(" ")
    );
    let out = sys::run_with_timeout(
        Command::new(&cargo)
            .current_dir(&root)
            .args(["build", "--release", "-p", "greenlet", "--example", name])
            .args(extra),
        Duration::from_secs(900),
    )?;
    if !out.status.success() {
        let why = out
            .stderr
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("cargo build failed")
            .to_string();
        return Err(format!("cannot build example {name}: {why}"));
    }
    // Where cargo put it: next to this binary when both are release builds of one workspace.
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("examples").join(name)));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    [beside, Some(target.join("release/examples").join(name))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("example {name} built but not found under target/release/examples"))
}

/// Starts the server, waits until it listens, runs the client, reads the server's CPU time.
fn measure(
    proto: Proto,
    client: &Path,
    argv: &[String],
    load: Load,
    cfg: &Config,
    log: &Path,
) -> Result<Figures, String> {
    let port = sys::free_port().map_err(|e| format!("no free port: {e}"))?;
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let log_file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut server = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let pid = server.id();
    let outcome = (|| {
        sys::wait_listening(&mut server, port, Duration::from_secs(15))?;
        let before = sys::cpu_time(pid)?;
        let (rps, requests) = match proto {
            Proto::Http | Proto::Http2 => wrk(client, port, load, cfg)?,
            Proto::Resp => redis_benchmark(client, port, load, cfg)?,
        };
        let after = sys::cpu_time(pid)?;
        if let Ok(Some(status)) = server.try_wait() {
            return Err(format!("server died during the run ({status})"));
        }
        let cpu = after.saturating_sub(before);
        Ok(Figures {
            rps,
            cpu_us_per_req: cpu.as_secs_f64() * 1e6 / requests,
        })
    })();
    let _ = server.kill();
    let _ = server.wait();
    outcome.map_err(|e: String| match sys::last_line(log) {
        Some(l) => format!("{e}; server said: {}", crate::child::shorten(&l, 120)),
        None => e,
    })
}

/// `wrk -t1 -cC -dDs`: (requests per second, requests completed).
fn wrk(client: &Path, port: u16, load: Load, cfg: &Config) -> Result<(f64, f64), String> {
    let out = sys::run_with_timeout(
        Command::new(client).args([
            "-t1".to_string(),
            format!("-c{}", load.conns),
            format!("-d{}s", cfg.net_secs),
            format!("http://127.0.0.1:{port}/"),
        ]),
        Duration::from_secs(u64::from(cfg.net_secs) + 60),
    )?;
    let text = format!("{}{}", out.stdout, out.stderr);
    let field = |marker: &str, pick: fn(&str) -> Option<&str>| -> Option<f64> {
        text.lines()
            .find(|l| l.contains(marker))
            .and_then(pick)
            .and_then(|s| s.parse().ok())
    };
    let rps = field("Requests/sec", |l| l.split_whitespace().nth(1));
    let requests = field("requests in", |l| l.split_whitespace().next());
    if let Some(bad) = text.lines().find(|l| l.contains("Non-2xx")) {
        return Err(format!("wrk: {}", bad.trim()));
    }
    match (rps, requests) {
        (Some(rps), Some(n)) if n > 0.0 => Ok((rps, n)),
        _ => Err(format!(
            "wrk gave no figures ({}): {}",
            out.status,
            crate::child::shorten(text.trim(), 160)
        )),
    }
}

/// `redis-benchmark -t ping_inline,ping_mbulk --csv`: (mean req/s of the two tests, requests).
fn redis_benchmark(
    client: &Path,
    port: u16,
    load: Load,
    cfg: &Config,
) -> Result<(f64, f64), String> {
    // Pipelined requests cost a tenth as much: ten times as many keep the CPU time well above
    // the 10 ms resolution of /proc/<pid>/stat.
    let n = cfg.ping_requests * if load.pipeline > 1 { 10 } else { 1 };
    let out = sys::run_with_timeout(
        Command::new(client).args([
            "-h".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-c".into(),
            load.conns.to_string(),
            "-n".into(),
            n.to_string(),
            "-P".into(),
            load.pipeline.to_string(),
            "-t".into(),
            "ping_inline,ping_mbulk".into(),
            "--csv".into(),
        ]),
        // Generous: a server slower than 5k req/s per pipelined request is broken, not slow.
        Duration::from_secs(60 + 2 * n / (5_000 * u64::from(load.pipeline))),
    )?;
    let rates: Vec<f64> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("\"PING"))
        .filter_map(|l| l.split(',').nth(1))
        .filter_map(|v| v.trim_matches('"').parse().ok())
        .collect();
    if rates.len() != 2 || !out.status.success() {
        return Err(format!(
            "redis-benchmark gave no figures ({}): {}",
            out.status,
            crate::child::shorten(format!("{}{}", out.stdout, out.stderr).trim(), 160)
        ));
    }
    let requests = (n * rates.len() as u64) as f64;
    Ok((rates.iter().sum::<f64>() / rates.len() as f64, requests))
}

/// Child side: `__serve <runtime> <http|resp> <port>` serves until killed.
pub fn serve_main(args: &[String]) -> Result<(), String> {
    let [runtime, proto, port] = args else {
        return Err(
            "usage: __serve <mio|may|tokio|'greenlet (harness parser)'> <http|resp> <port>".into(),
        );
    };
    let runtime = Runtime::parse(runtime).ok_or_else(|| format!("unknown runtime {runtime}"))?;
    let port: u16 = port.parse().map_err(|e| format!("bad port {port}: {e}"))?;
    crate::peers::serve(runtime, proto, port)
}
