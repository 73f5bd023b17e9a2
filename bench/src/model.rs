//! What a run produces: rows of cells, one cell per runtime, and the run's settings.
//!
//! A row is one figure of one workload (say "spawn + join, µs each"); a cell holds the
//! repetitions of one runtime, or why there are none. The ratio of a row compares this crate with
//! the best peer that produced a figure, as a cost: below 1 means this crate does better.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::peers::Runtime;
use crate::stats::Sample;

impl Serialize for Runtime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Which direction is better for a row's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Times, CPU and memory: less is better.
    Lower,
    /// Throughput: more is better.
    Higher,
}

/// One runtime's result in one row.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Cell {
    /// The repetitions, and a remark that qualifies them (a smaller N, say).
    Ok {
        /// The repetitions.
        #[serde(flatten)]
        sample: Sample,
        /// What the reader must know to compare this figure.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The runtime was run and gave no figure.
    Failed {
        /// Why, in one line.
        reason: String,
    },
    /// The runtime was not run.
    Skipped {
        /// Why, in one line.
        reason: String,
    },
}

impl Cell {
    /// A figure with no remark.
    pub fn ok(sample: Sample) -> Cell {
        Cell::Ok { sample, note: None }
    }

    /// The median, when there is one.
    pub fn median(&self) -> Option<f64> {
        match self {
            Cell::Ok { sample, .. } => Some(sample.median),
            _ => None,
        }
    }
}

/// This crate against the best peer of a row.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratio {
    /// This crate's cost divided by the best peer's: `< 1` means this crate does better.
    pub cost: f64,
    /// The peer with the best figure.
    pub best_peer: Runtime,
}

/// One figure of one workload, for every runtime that has it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The workload named on the command line (`switch`, `spawn`, ...).
    pub workload: &'static str,
    /// What this row measures, for people.
    pub case: String,
    /// The unit of every cell.
    pub unit: &'static str,
    /// Whether lower or higher is better.
    pub better: Better,
    /// One cell per runtime that takes part in this row.
    pub cells: BTreeMap<Runtime, Cell>,
    /// This crate against the best peer, when both have a figure.
    pub ratio: Option<Ratio>,
    /// This crate's cost divided by the floor's ([`Runtime::Floor`]), when the row has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
}

impl Row {
    /// A row with no cells yet.
    pub fn new(workload: &'static str, case: impl Into<String>, unit: &'static str) -> Row {
        Row {
            workload,
            case: case.into(),
            unit,
            better: Better::Lower,
            cells: BTreeMap::new(),
            ratio: None,
            floor_ratio: None,
        }
    }

    /// The same row, where higher is better.
    pub fn higher_is_better(mut self) -> Row {
        self.better = Better::Higher;
        self
    }

    /// Fills in [`Row::ratio`] and [`Row::floor_ratio`] from the cells. The floor is no peer:
    /// it never counts as the best one.
    pub fn compute_ratio(&mut self) {
        // This crate's figure: the plain one, or the monkey one in rows that have only that.
        let ours = self
            .cells
            .get(&Runtime::Greenlet)
            .or_else(|| self.cells.get(&Runtime::GreenletMonkey))
            .and_then(Cell::median);
        let floor = self.cells.get(&Runtime::Floor).and_then(Cell::median);
        self.floor_ratio = match (ours, floor) {
            (Some(ours), Some(floor)) if floor > 0.0 => Some(ours / floor),
            _ => None,
        };
        let best = self
            .cells
            .iter()
            // This crate's own variants and the floor are not peers.
            .filter(|(r, _)| {
                !matches!(
                    **r,
                    Runtime::Greenlet
                        | Runtime::GreenletMonkey
                        | Runtime::GreenletProto
                        | Runtime::Floor
                )
            })
            .filter_map(|(r, c)| c.median().map(|m| (*r, m)))
            .filter(|(_, m)| *m > 0.0)
            .min_by(|a, b| match self.better {
                Better::Lower => a.1.total_cmp(&b.1),
                Better::Higher => b.1.total_cmp(&a.1),
            });
        self.ratio = match (ours, best) {
            (Some(ours), Some((best_peer, best))) if ours > 0.0 => Some(Ratio {
                cost: match self.better {
                    Better::Lower => ours / best,
                    Better::Higher => best / ours,
                },
                best_peer,
            }),
            _ => None,
        };
    }
}

/// A workload that was not run at all, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    /// The workload.
    pub workload: &'static str,
    /// Why, with what to do about it.
    pub reason: String,
}

/// The settings of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Repetitions of every micro workload.
    pub reps: u32,
    /// Repetitions of every alive run and every network run.
    pub long_reps: u32,
    /// A short smoke run with smaller sizes.
    pub quick: bool,
    /// How many coroutines the alive workload parks.
    pub alive_n: u64,
    /// Seconds of every wrk run.
    pub net_secs: u32,
    /// The connection counts of the network workloads.
    pub conns: Vec<u32>,
    /// Requests per redis-benchmark test at pipeline 1 (ten times as many when pipelined).
    pub ping_requests: u64,
    /// Where the report goes.
    pub out: PathBuf,
    /// A child that runs longer than this is killed and reported as failed.
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Config {
    /// The size of a micro workload: the full size, or a tenth in a quick run.
    pub fn size(&self, full: u64) -> u64 {
        if self.quick { (full / 10).max(1) } else { full }
    }
}

/// Throttles progress lines on stderr to about one a second per task.
#[derive(Debug)]
pub struct Ticker {
    last: std::time::Instant,
}

impl Ticker {
    /// A ticker that lets the first line through.
    pub fn new() -> Ticker {
        Ticker {
            last: std::time::Instant::now() - Duration::from_secs(10),
        }
    }

    /// Whether a line may be printed now.
    pub fn due(&mut self) -> bool {
        if self.last.elapsed() >= Duration::from_secs(1) {
            self.last = std::time::Instant::now();
            true
        } else {
            false
        }
    }
}

impl Default for Ticker {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(better: Better, cells: &[(Runtime, f64)]) -> Row {
        let mut r = Row::new("w", "case", "unit");
        r.better = better;
        for &(rt, v) in cells {
            r.cells.insert(rt, Cell::ok(Sample::new(vec![v]).unwrap()));
        }
        r.compute_ratio();
        r
    }

    #[test]
    fn ratio_is_a_cost_against_the_best_peer() {
        let r = row(
            Better::Lower,
            &[
                (Runtime::Greenlet, 30.0),
                (Runtime::May, 10.0),
                (Runtime::Tokio, 20.0),
            ],
        );
        let ratio = r.ratio.unwrap();
        assert_eq!((ratio.cost, ratio.best_peer), (3.0, Runtime::May));
        let r = row(
            Better::Higher,
            &[
                (Runtime::Greenlet, 50.0),
                (Runtime::May, 100.0),
                (Runtime::Tokio, 25.0),
            ],
        );
        let ratio = r.ratio.unwrap();
        assert_eq!((ratio.cost, ratio.best_peer), (2.0, Runtime::May));
    }

    #[test]
    fn the_floor_is_no_peer_but_has_its_own_ratio() {
        let r = row(
            Better::Lower,
            &[
                (Runtime::Greenlet, 3.0),
                (Runtime::Floor, 2.0),
                (Runtime::Tokio, 0.5),
            ],
        );
        let ratio = r.ratio.unwrap();
        assert_eq!((ratio.cost, ratio.best_peer), (6.0, Runtime::Tokio));
        assert_eq!(r.floor_ratio, Some(1.5));
        let r = row(
            Better::Lower,
            &[(Runtime::Greenlet, 3.0), (Runtime::Floor, 2.0)],
        );
        assert!(r.ratio.is_none(), "the floor alone is no best peer");
        assert_eq!(r.floor_ratio, Some(1.5));
        assert!(
            row(Better::Lower, &[(Runtime::Greenlet, 1.0)])
                .floor_ratio
                .is_none()
        );
    }

    #[test]
    fn no_ratio_without_both_sides() {
        assert!(row(Better::Lower, &[(Runtime::May, 1.0)]).ratio.is_none());
        assert!(
            row(Better::Lower, &[(Runtime::Greenlet, 1.0)])
                .ratio
                .is_none()
        );
    }
}
