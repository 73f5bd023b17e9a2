//! The `monkey` workload: what a hooked `read(2)` costs on a thread without greenlets (where
//! the hook only asks its question and makes the raw call), next to the raw system call.
//!
//! The hooks replace libc's symbols for a whole binary, so this bench binary, which also runs
//! the peers, must not link them: the figures come from this crate's `monkey_cost` example,
//! built with `--features monkey` and run once per repetition, in a fresh process each time.

use std::process::Command;

use crate::model::{Cell, Config, Row};
use crate::net::build_example;
use crate::peers::Runtime;
use crate::stats::Sample;
use crate::sys;

/// Calls timed per round in the child.
const CALLS: u64 = 2_000_000;

/// One row: the hooked read (greenlet + monkey) against the raw system call.
pub fn run(cfg: &Config) -> Vec<Row> {
    let mut row = Row::new(
        "monkey",
        "monkey: read(2) of 1 byte, thread without greenlets, after patch_all (hook pass-through)",
        "ns/call",
    );
    let calls = if cfg.quick { CALLS / 10 } else { CALLS };
    let exe = match build_example("monkey_cost", &["--features", "monkey"]) {
        Ok(exe) => exe,
        Err(e) => {
            for r in [Runtime::GreenletMonkey, Runtime::Syscall] {
                row.cells.insert(r, Cell::Failed { reason: e.clone() });
            }
            return vec![row];
        }
    };
    let (mut hooked, mut raw) = (Vec::new(), Vec::new());
    let mut failure = None;
    for rep in 1..=cfg.reps {
        let out = sys::run_with_timeout(
            Command::new(&exe).args(["--measure", &calls.to_string()]),
            cfg.timeout,
        );
        match out.map(|o| o.stdout) {
            Ok(text) => match (figure(&text, "patched_ns="), figure(&text, "raw_ns=")) {
                (Some(h), Some(r)) => {
                    eprintln!(
                        "[monkey] rep {rep}/{}: hooked {h:.2} ns, raw {r:.2} ns",
                        cfg.reps
                    );
                    hooked.push(h);
                    raw.push(r);
                }
                _ => failure = Some(format!("unreadable output: {text:?}")),
            },
            Err(e) => failure = Some(e),
        }
    }
    for (runtime, values) in [(Runtime::GreenletMonkey, hooked), (Runtime::Syscall, raw)] {
        let cell = match (Sample::new(values), &failure) {
            (Some(s), None) => Cell::ok(s),
            (_, Some(why)) => Cell::Failed {
                reason: why.clone(),
            },
            (None, None) => Cell::Failed {
                reason: "no figure".into(),
            },
        };
        row.cells.insert(runtime, cell);
    }
    row.compute_ratio();
    vec![row]
}

fn figure(text: &str, key: &str) -> Option<f64> {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key))
        .and_then(|v| v.parse().ok())
}
