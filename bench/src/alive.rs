//! The alive workload: N coroutines parked at once, the time to create them and the resident
//! memory each one costs.
//!
//! Every runtime runs in its own child (`bench __alive <runtime> <n>`), so the RSS it reports is
//! its own. A runtime that cannot reach N (may and raw corosensei stop near 32k mappings under
//! the default `vm.max_map_count`; OS threads are capped at 10k here) is run again at what it
//! survives, and its cell says so: the figure and how far it got at N.

use std::collections::BTreeMap;

use crate::child;
use crate::model::{Cell, Config, Row, Ticker};
use crate::peers::{self, Runtime};
use crate::stats::{Sample, fmt_count, fmt_sig};

/// The runtimes of this workload, in the order they run.
const RUNTIMES: [Runtime; 6] = [
    Runtime::Greenlet,
    Runtime::Floor,
    Runtime::Corosensei,
    Runtime::May,
    Runtime::Tokio,
    Runtime::Threads,
];

/// OS threads are not run past this many: 1M threads is not a workload, it is a fork bomb.
const MAX_THREADS: u64 = 10_000;

/// The state of one runtime across repetitions.
#[derive(Debug, Default)]
struct Track {
    n: u64,
    note: Option<String>,
    rss_each: Vec<f64>,
    create_each_us: Vec<f64>,
    create_total_s: Vec<f64>,
    retried: bool,
    failed: Option<String>,
}

/// Runs every repetition of every runtime; returns the RSS row and the creation-time row.
pub fn run(cfg: &Config) -> Vec<Row> {
    let mut tracks: BTreeMap<Runtime, Track> = RUNTIMES
        .iter()
        .map(|&r| {
            let n = if r == Runtime::Threads {
                cfg.alive_n.min(MAX_THREADS)
            } else {
                cfg.alive_n
            };
            let note = (n < cfg.alive_n).then(|| format!("capped at N={}", fmt_count(n)));
            (
                r,
                Track {
                    n,
                    note,
                    ..Track::default()
                },
            )
        })
        .collect();
    for rep in 1..=cfg.long_reps {
        // An eighth more than N: greenlet's processes hold about a tenth more than the floor's.
        warm_up(cfg.alive_n + cfg.alive_n / 8, rep, cfg);
        for runtime in RUNTIMES {
            let t = tracks.get_mut(&runtime).expect("every runtime has a track");
            if t.failed.is_none() {
                run_rep(runtime, rep, t, cfg);
            }
        }
    }
    let mut rss = Row::new(
        "alive",
        format!(
            "alive: RSS per parked coroutine, N={}",
            fmt_count(cfg.alive_n)
        ),
        "bytes each",
    );
    let mut create = Row::new(
        "alive",
        format!(
            "alive: time to create and park, N={}",
            fmt_count(cfg.alive_n)
        ),
        "µs each",
    );
    for (runtime, t) in tracks {
        let total = Sample::new(t.create_total_s.clone()).map(|s| s.median);
        let (rss_cell, create_cell) = match t.failed {
            Some(reason) => (
                Cell::Failed {
                    reason: reason.clone(),
                },
                Cell::Failed { reason },
            ),
            None => (
                cell(t.rss_each, t.note.clone()),
                cell(
                    t.create_each_us,
                    Some(match (&t.note, total) {
                        (Some(n), Some(s)) => format!("{n} — {} s in all", fmt_sig(s)),
                        (None, Some(s)) => format!("{} s in all", fmt_sig(s)),
                        (n, None) => n.clone().unwrap_or_default(),
                    }),
                ),
            ),
        };
        rss.cells.insert(runtime, rss_cell);
        create.cells.insert(runtime, create_cell);
    }
    rss.compute_ratio();
    create.compute_ratio();
    vec![rss, create]
}

fn cell(values: Vec<f64>, note: Option<String>) -> Cell {
    match Sample::new(values) {
        Some(sample) => Cell::Ok { sample, note },
        None => Cell::Failed {
            reason: "no figure".into(),
        },
    }
}

/// One repetition; on a first failure part-way, retries once at 90% of how far it got.
fn run_rep(runtime: Runtime, rep: u32, t: &mut Track, cfg: &Config) {
    let failure = match measure(runtime, t.n, rep, cfg) {
        Ok(figures) => return t.record(figures),
        Err(f) => f,
    };
    let got = failure.progress.unwrap_or(0);
    let why = explain(&failure.reason, got);
    let retry = (got * 9 / 10) / 1000 * 1000;
    if !t.retried && t.rss_each.is_empty() && retry >= 1000 && retry < t.n {
        eprintln!(
            "[alive] {}: failed after ~{} of {}: {why}; running it again with N={}",
            runtime.name(),
            fmt_count(got),
            fmt_count(t.n),
            fmt_count(retry)
        );
        t.note = Some(format!(
            "N={} only: at N={} it failed after ~{} ({why})",
            fmt_count(retry),
            fmt_count(t.n),
            fmt_count(got)
        ));
        t.n = retry;
        t.retried = true;
        return run_rep(runtime, rep, t, cfg);
    }
    t.failed = Some(format!(
        "failed at ~{} of {}: {why}",
        fmt_count(got),
        fmt_count(t.n)
    ));
}

impl Track {
    fn record(&mut self, (created_s, rss): (f64, f64)) {
        let n = self.n as f64;
        self.rss_each.push(rss / n);
        self.create_each_us.push(created_s * 1e6 / n);
        self.create_total_s.push(created_s);
    }
}

/// The child's reason, with the kernel limit named when it is the likely cause.
fn explain(reason: &str, got: u64) -> String {
    let limit: Option<u64> = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let short = child::shorten(reason, 120);
    match limit {
        // Two mappings per coroutine (stack + guard page): it ran out of map entries.
        Some(max) if got > 0 && (got * 2).abs_diff(max) < max / 10 => {
            format!("{short}; vm.max_map_count = {max}")
        }
        _ => short,
    }
}

/// Runs the floor's child once at `n`, untimed, before a repetition's runtimes. On a virtual
/// machine the host may take back the memory a guest frees (free page reporting), and the
/// first process to touch gigabytes again after that pays the host's faults too: measured on a
/// 2-core KVM guest, the first of two runs in a row after a pause took 2.5–3.3x as long as the
/// second, whether the floor or greenlet came first (nearly all of it system time). Without
/// this, the runtime that runs first in each repetition (greenlet) paid it for everyone.
fn warm_up(n: u64, rep: u32, cfg: &Config) {
    let args = [
        "__alive".to_string(),
        Runtime::Floor.name().to_string(),
        n.to_string(),
    ];
    match child::run_self(&args, cfg.timeout, |_| {}) {
        Ok(_) => eprintln!(
            "[alive] rep {rep}/{}: memory warm-up done (untimed)",
            cfg.long_reps
        ),
        Err(f) => eprintln!(
            "[alive] rep {rep}/{}: memory warm-up failed: {}",
            cfg.long_reps, f.reason
        ),
    }
}

/// Runs `bench __alive <runtime> <n>` with progress on stderr.
fn measure(runtime: Runtime, n: u64, rep: u32, cfg: &Config) -> Result<(f64, f64), child::Failure> {
    let label = format!("[alive] {} rep {rep}/{}", runtime.name(), cfg.long_reps);
    let mut ticker = Ticker::new();
    let args = [
        "__alive".to_string(),
        runtime.name().to_string(),
        n.to_string(),
    ];
    let report = child::run_self(&args, cfg.timeout, |done| {
        if ticker.due() {
            eprintln!("{label}: {}/{} parked", fmt_count(done), fmt_count(n));
        }
    })?;
    match (report.get("created_s"), report.get("rss_bytes")) {
        (Some(c), Some(r)) => {
            eprintln!(
                "{label}: {} parked in {} s, {} bytes each",
                fmt_count(n),
                fmt_sig(c),
                fmt_sig(r / n as f64)
            );
            Ok((c, r))
        }
        _ => Err(child::Failure {
            reason: "child printed no figures".into(),
            progress: report.progress,
        }),
    }
}

/// Child side: `__alive <runtime> <n>` parks n coroutines, prints the figures and exits at once
/// (tearing a million coroutines down is not part of the measurement).
pub fn child_main(args: &[String]) -> Result<(), String> {
    let [runtime, n] = args else {
        return Err("usage: __alive <runtime> <n>".into());
    };
    let runtime = Runtime::parse(runtime).ok_or_else(|| format!("unknown runtime {runtime}"))?;
    let n: u64 = n.parse().map_err(|e| format!("bad n {n}: {e}"))?;
    let alive = peers::run_alive(runtime, n.max(1))?;
    child::progress(alive.n);
    child::result("created_s", alive.created.as_secs_f64());
    child::result("rss_bytes", alive.rss_delta as f64);
    std::process::exit(0);
}
