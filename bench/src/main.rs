//! `cargo run --release -p bench -- [workload...] [options]`: measures greenlet against its
//! peers in one run and writes a markdown table, a JSON file and an SVG chart.
//!
//! Workloads: `switch spawn channel os alive http ping monkey` (default: all of them). Every
//! repetition runs in a fresh child process (this binary with a hidden `__...` subcommand), so
//! runtimes do not share a heap, a scheduler or an RSS, and a crash is a table cell instead of a
//! lost run. Progress goes to stderr; the table goes to stdout and, with the JSON and the chart,
//! to `--out` (default `target/bench-report`).
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod alive;
mod chart;
mod child;
mod greenlet_work;
mod http_client;
mod listeners;
mod micro;
mod model;
mod monkey;
mod net;
mod peers;
mod proto;
mod report;
mod stats;
mod sys;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use model::Config;
use report::{Machine, Report};

/// Every workload, in the order they run.
const WORKLOADS: [&str; 8] = [
    "switch", "spawn", "channel", "os", "alive", "http", "ping", "monkey",
];

const USAGE: &str = "\
usage: cargo run --release -p bench -- [WORKLOAD...] [OPTIONS]

Measures greenlet against raw corosensei, may, tokio, OS threads (and, for the network
workloads, a hand-written mio loop and redis-server; for the os workload, std's blocking
calls) in one run.

WORKLOADS (default: all)
  switch    explicit switch between two coroutines; yield through the scheduler
  spawn     spawn + join 100,000 that each yield once (OS threads: 10,000); again as the
            second round in one process
  channel   ping-pong over a channel between two coroutines
  os        a child's output (`true`, 1,000 in a row) and reading a 256 MiB file (cached
            and evicted), greenlet::process / greenlet::fs against std's blocking calls
  alive     N parked coroutines: creation time and RSS each, one child process per runtime
  http      hello-world keep-alive servers under wrk (skipped without wrk)
  ping      RESP PING servers under redis-benchmark (skipped without redis-benchmark)
  monkey    a hooked read(2) on a thread without greenlets next to the raw system call
            (the http workload also runs http_hello on plain std::net under the monkey hooks)

OPTIONS
  --reps N        repetitions of each micro workload (default 5; quick: 3)
  --long-reps N   repetitions of alive, http and ping runs (default 3; quick: 1)
  --alive-n N     coroutines parked by the alive workload (default 1000000; quick: 100000)
  --secs S        seconds of every wrk run (default 5; quick: 1)
  --conns C,C     wrk connection counts (default 100,2000; quick: 100)
  --ping-n N      requests per redis-benchmark test, x10 when pipelined (default 200000; quick: 20000)
  --timeout S     kill a child after S seconds and report it failed (default 300)
  --out DIR       where report.md, report.json and ratios.svg go (default target/bench-report)
  --quick         a short smoke run: smaller sizes, fewer repetitions
  -h, --help      this text
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hidden = match args.first().map(String::as_str) {
        Some("__micro") => Some(micro::child_main(&args[1..])),
        Some("__alive") => Some(alive::child_main(&args[1..])),
        Some("__serve") => Some(net::serve_main(&args[1..])),
        Some("__http_client") => Some(http_client::client_main(&args[1..])),
        Some("__listeners") => Some(listeners::serve_main(&args[1..])),
        Some("__placement") => Some(peers::cores::placement_main(&args[1..])),
        _ => None,
    };
    if let Some(outcome) = hidden {
        if let Err(e) = outcome {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    match parse(&args) {
        Ok(Some((workloads, cfg))) => run(&workloads, cfg, &args),
        Ok(None) => print!("{USAGE}"),
        Err(e) => {
            eprintln!("bench: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// The command line: the workloads to run and the settings; `None` for `--help`.
fn parse(args: &[String]) -> Result<Option<(Vec<&'static str>, Config)>, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut cfg = Config {
        reps: if quick { 3 } else { 5 },
        long_reps: if quick { 1 } else { 3 },
        quick,
        alive_n: if quick { 100_000 } else { 1_000_000 },
        net_secs: if quick { 1 } else { 5 },
        conns: if quick { vec![100] } else { vec![100, 2000] },
        ping_requests: if quick { 20_000 } else { 200_000 },
        out: PathBuf::from("target/bench-report"),
        timeout: Duration::from_secs(300),
    };
    let mut workloads = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.replace('_', "")
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}: expected a positive number, got {v:?}"))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => {}
            "--reps" => cfg.reps = number(arg, value(arg)?)? as u32,
            "--long-reps" => cfg.long_reps = number(arg, value(arg)?)? as u32,
            "--alive-n" => cfg.alive_n = number(arg, value(arg)?)?,
            "--secs" => cfg.net_secs = number(arg, value(arg)?)? as u32,
            "--ping-n" => cfg.ping_requests = number(arg, value(arg)?)?,
            "--timeout" => cfg.timeout = Duration::from_secs(number(arg, value(arg)?)?),
            "--out" => cfg.out = PathBuf::from(value(arg)?),
            "--conns" => {
                cfg.conns = value(arg)?
                    .split(',')
                    .map(|c| number("--conns", c.to_string()).map(|c| c as u32))
                    .collect::<Result<_, _>>()?;
            }
            w => match WORKLOADS.iter().find(|k| **k == w) {
                Some(k) if !workloads.contains(k) => workloads.push(*k),
                Some(_) => {}
                None => return Err(format!("unknown workload or option {w:?}")),
            },
        }
    }
    if workloads.is_empty() {
        workloads = WORKLOADS.to_vec();
    }
    workloads.sort_by_key(|w| WORKLOADS.iter().position(|k| k == w));
    Ok(Some((workloads, cfg)))
}

/// Runs `workloads`, prints the table and writes the report files.
fn run(workloads: &[&'static str], cfg: Config, args: &[String]) {
    sys::raise_fd_limit();
    let started = SystemTime::now();
    let clock = Instant::now();
    let machine = Machine::detect();
    eprintln!("bench: {} on {}", workloads.join(" "), machine.line());
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for &w in workloads {
        match w {
            "alive" => rows.extend(alive::run(&cfg)),
            "monkey" => rows.extend(monkey::run(&cfg)),
            "http" | "ping" => match net::run(w, &cfg) {
                Ok(r) => rows.extend(r),
                Err(skip) => skipped.push(skip),
            },
            _ => rows.extend(micro::run(w, &cfg)),
        }
    }
    let mut command = String::from("cargo run --release -p bench --");
    for a in args {
        command.push(' ');
        command.push_str(a);
    }
    let report = Report {
        started: report::utc(
            started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        duration_s: clock.elapsed().as_secs_f64(),
        machine,
        command,
        rows,
        skipped,
        config: cfg,
    };
    println!("{}", report.markdown());
    let dir = &report.config.out;
    if let Err(e) = report.write(dir) {
        eprintln!("bench: cannot write the report to {}: {e}", dir.display());
        std::process::exit(1);
    }
    let svg = dir.join("ratios.svg");
    if let Err(e) = chart::write_svg(&report, &svg) {
        eprintln!("bench: {e}");
    }
    eprintln!(
        "bench: wrote {0}/report.md, {0}/report.json and {0}/ratios.svg",
        dir.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn defaults_run_everything() {
        let (w, cfg) = parse(&[]).unwrap().unwrap();
        assert_eq!(w, WORKLOADS.to_vec());
        assert_eq!((cfg.reps, cfg.alive_n, cfg.quick), (5, 1_000_000, false));
    }

    #[test]
    fn workloads_in_canonical_order_and_options() {
        let (w, cfg) = parse(&args(
            "ping switch --quick --reps 7 --alive-n 1_000 --conns 10,20",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(w, vec!["switch", "ping"]);
        assert_eq!((cfg.reps, cfg.alive_n, cfg.quick), (7, 1_000, true));
        assert_eq!(cfg.conns, vec![10, 20]);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse(&args("swtich")).is_err());
        assert!(parse(&args("--reps")).is_err());
        assert!(parse(&args("--reps 0")).is_err());
        assert!(parse(&args("--help")).unwrap().is_none());
    }
}
