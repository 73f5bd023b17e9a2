//! The micro workloads (switch, spawn, channel, os): which runtimes run which case at what size,
//! and the parent's loop that runs every repetition in a fresh child.
//!
//! Repetitions are interleaved (rep 1 of every runtime, then rep 2, ...) so that a machine that
//! slows down halfway through a run slows every runtime alike. A runtime that fails once is not
//! run again in that row: its cell says why.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::child;
use crate::model::{Cell, Config, Row};
use crate::peers::{Micro, Runtime};
use crate::stats::{Sample, fmt_count, fmt_sig};

/// One row of a micro workload.
#[derive(Debug)]
struct Case {
    workload: &'static str,
    micro: Micro,
    title: &'static str,
    unit: &'static str,
    /// Whether a higher figure is better (throughput).
    higher_is_better: bool,
    /// The runtimes and their full size (the quick run takes a tenth).
    runtimes: &'static [(Runtime, u64)],
}

const CASES: &[Case] = &[
    Case {
        workload: "switch",
        micro: Micro::Switch,
        title: "switch: explicit, two coroutines (greenlet `switch` / corosensei resume+suspend)",
        unit: "ns/switch",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 2_000_000),
            (Runtime::Corosensei, 20_000_000),
        ],
    },
    Case {
        workload: "switch",
        micro: Micro::Yield,
        title: "switch: yield through the scheduler, two coroutines",
        unit: "ns/switch",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 1_000_000),
            (Runtime::Floor, 10_000_000),
            (Runtime::May, 1_000_000),
            (Runtime::Tokio, 1_000_000),
        ],
    },
    Case {
        workload: "switch",
        micro: Micro::YieldNested,
        title: "switch: yield through the scheduler from inside a called function, two coroutines",
        unit: "ns/switch",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 1_000_000),
            (Runtime::Floor, 10_000_000),
            (Runtime::May, 1_000_000),
        ],
    },
    Case {
        workload: "spawn",
        micro: Micro::Spawn,
        title: "spawn + join, one yield each",
        unit: "µs each",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 100_000),
            (Runtime::May, 100_000),
            (Runtime::Tokio, 100_000),
            (Runtime::Threads, 10_000),
        ],
    },
    Case {
        workload: "spawn",
        micro: Micro::SpawnWarm,
        title: "spawn + join, one yield each, second round in one process (first round untimed)",
        unit: "µs each",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 100_000),
            (Runtime::May, 100_000),
            (Runtime::Tokio, 100_000),
        ],
    },
    Case {
        workload: "channel",
        micro: Micro::Channel,
        title: "channel: ping-pong between two coroutines",
        unit: "ns/message",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 1_000_000),
            (Runtime::May, 1_000_000),
            (Runtime::Tokio, 1_000_000),
        ],
    },
    Case {
        workload: "spawn",
        micro: Micro::XSpawn,
        title: "spawn + join onto 2 threads, one yield each (greenlet `Runtime::spawn` on 2 hubs)",
        unit: "µs each",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 100_000),
            (Runtime::May, 100_000),
            (Runtime::Tokio, 100_000),
        ],
    },
    Case {
        workload: "channel",
        micro: Micro::XChannel,
        title: "channel: ping-pong between 2 threads (greenlet `sync::mpsc` between 2 hubs)",
        unit: "ns/message",
        higher_is_better: false,
        runtimes: &[
            (Runtime::Greenlet, 200_000),
            (Runtime::May, 200_000),
            (Runtime::Tokio, 200_000),
            (Runtime::Threads, 200_000),
            (Runtime::Crossbeam, 200_000),
        ],
    },
    Case {
        workload: "os",
        micro: Micro::Process,
        title: "os: `Command::new(\"true\").output()`, one child after another",
        unit: "µs/child",
        higher_is_better: false,
        runtimes: &[(Runtime::Greenlet, 1_000), (Runtime::Std, 1_000)],
    },
    Case {
        workload: "os",
        micro: Micro::FileChunks,
        title: "os: read a cached file in 64 KiB `File::read` calls, one thread",
        unit: "MB/s",
        higher_is_better: true,
        runtimes: &[(Runtime::Greenlet, 256), (Runtime::Std, 256)],
    },
    Case {
        workload: "os",
        micro: Micro::FileCold,
        title: "os: read a file evicted from the page cache in 64 KiB `File::read` calls, one thread",
        unit: "MB/s",
        higher_is_better: true,
        runtimes: &[(Runtime::Greenlet, 256), (Runtime::Std, 256)],
    },
    Case {
        workload: "os",
        micro: Micro::FileWhole,
        title: "os: read a cached file whole (`fs::read`), one thread",
        unit: "MB/s",
        higher_is_better: true,
        runtimes: &[(Runtime::Greenlet, 256), (Runtime::Std, 256)],
    },
];

/// Runs the cases of `workload` and returns their rows.
pub fn run(workload: &'static str, cfg: &Config) -> Vec<Row> {
    CASES
        .iter()
        .filter(|c| c.workload == workload)
        .map(|c| run_case(c, cfg))
        .collect()
}

fn run_case(case: &Case, cfg: &Config) -> Row {
    let mut values: BTreeMap<Runtime, Vec<f64>> = BTreeMap::new();
    let mut failed: BTreeMap<Runtime, String> = BTreeMap::new();
    for rep in 1..=cfg.reps {
        for &(runtime, full) in case.runtimes {
            if failed.contains_key(&runtime) {
                continue;
            }
            let n = cfg.size(full);
            let label = format!(
                "[{}] {} {} n={} rep {rep}/{}",
                case.workload,
                case.micro.name(),
                runtime.name(),
                fmt_count(n),
                cfg.reps
            );
            match measure(case.micro, runtime, n, cfg.timeout) {
                Ok(v) => {
                    eprintln!("{label}: {} {}", fmt_sig(v), case.unit);
                    values.entry(runtime).or_default().push(v);
                }
                Err(reason) => {
                    eprintln!("{label}: failed: {reason}");
                    failed.insert(runtime, reason);
                }
            }
        }
    }
    let mut row = Row::new(case.workload, case.title, case.unit);
    if case.higher_is_better {
        row = row.higher_is_better();
    }
    for &(runtime, full) in case.runtimes {
        let n = cfg.size(full);
        let cell = match (failed.remove(&runtime), values.remove(&runtime)) {
            (Some(reason), _) => Cell::Failed { reason },
            (None, Some(v)) => match Sample::new(v) {
                Some(sample) => Cell::Ok {
                    sample,
                    note: Some(format!("n={}", fmt_count(n))),
                },
                None => Cell::Failed {
                    reason: "no finite figure".into(),
                },
            },
            (None, None) => Cell::Failed {
                reason: "not run".into(),
            },
        };
        row.cells.insert(runtime, cell);
    }
    row.compute_ratio();
    row
}

/// One repetition in a fresh child: `bench __micro <case> <runtime> <n>`.
fn measure(micro: Micro, runtime: Runtime, n: u64, timeout: Duration) -> Result<f64, String> {
    let args = [
        "__micro".to_string(),
        micro.name().to_string(),
        runtime.name().to_string(),
        n.to_string(),
    ];
    let report = child::run_self(&args, timeout, |_| {}).map_err(|f| f.reason)?;
    report
        .get("value")
        .ok_or_else(|| "child printed no value".to_string())
}

/// Child side of [`measure`]: runs the workload and prints its figure.
pub fn child_main(args: &[String]) -> Result<(), String> {
    let [micro, runtime, n] = args else {
        return Err(
            "usage: __micro <switch|yield|spawn|spawn-warm|channel|xchannel|xspawn|process|\
             file-chunks|file-cold|file-whole> <runtime> <n>"
                .into(),
        );
    };
    let micro = Micro::parse(micro).ok_or_else(|| format!("unknown micro workload {micro}"))?;
    let runtime = Runtime::parse(runtime).ok_or_else(|| format!("unknown runtime {runtime}"))?;
    let n: u64 = n.parse().map_err(|e| format!("bad n {n}: {e}"))?;
    let v = crate::peers::run_micro(micro, runtime, n.max(1))?;
    child::result("value", v);
    Ok(())
}
