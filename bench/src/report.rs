//! The report: a markdown table for people, a JSON file with every raw figure for programs, and
//! the machine they were measured on.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::child::shorten;
use crate::model::{Cell, Config, Row, Skip};
use crate::peers::Runtime;
use crate::stats::fmt_sig;

/// The machine a run was measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// `cpu family` and `model` from `/proc/cpuinfo` (x86), which name the generation when the
    /// model name is generic.
    pub cpu_family_model: Option<String>,
    /// Whether the CPU flags say this is a virtual machine (`hypervisor`).
    pub virtualized: bool,
    /// Logical CPUs this process may run on.
    pub cores: usize,
    /// Operating system and kernel release, as `uname -sr` prints them.
    pub kernel: String,
    /// Total memory, from `/proc/meminfo`.
    pub memory_gib: f64,
    /// `vm.max_map_count`, the limit that stops one-mapping-per-stack designs near 32k.
    pub max_map_count: Option<u64>,
    /// The host name.
    pub hostname: String,
}

impl Machine {
    /// Describes the machine this process runs on.
    pub fn detect() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let cpu_family_model = match (field("cpu family"), field("model")) {
            (Some(f), Some(m)) => Some(format!("family {f} model {m}")),
            _ => None,
        };
        let virtualized = field("flags").is_some_and(|f| f.split(' ').any(|x| x == "hypervisor"));
        let mem_kib: f64 = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let os = read("/proc/sys/kernel/ostype");
        let release = read("/proc/sys/kernel/osrelease");
        Machine {
            cpu,
            cpu_family_model,
            virtualized,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: format!("{} {}", os.trim(), release.trim()),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            max_map_count: read("/proc/sys/vm/max_map_count").trim().parse().ok(),
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
        }
    }

    /// One line: `Intel Xeon ..., 2 cores, 23.4 GiB, Linux 6.18.4 (vm.max_map_count 65530)`.
    pub fn line(&self) -> String {
        let maps = self
            .max_map_count
            .map_or(String::new(), |m| format!(", vm.max_map_count {m}"));
        let model = self
            .cpu_family_model
            .as_ref()
            .map_or(String::new(), |m| format!(" ({m})"));
        let vm = if self.virtualized {
            ", virtual machine"
        } else {
            ""
        };
        format!(
            "{}{model}, {} cores{vm}, {} GiB, {}{maps}",
            self.cpu, self.cores, self.memory_gib, self.kernel
        )
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (UTC).
    pub started: String,
    /// How long it took, in seconds.
    pub duration_s: f64,
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub config: Config,
    /// The command line that reproduces the run.
    pub command: String,
    /// One row per figure.
    pub rows: Vec<Row>,
    /// Workloads that did not run, and why.
    pub skipped: Vec<Skip>,
}

impl Report {
    /// The runtimes that have a cell in some row, in column order.
    fn columns(&self) -> Vec<Runtime> {
        Runtime::ALL
            .into_iter()
            .filter(|r| self.rows.iter().any(|row| row.cells.contains_key(r)))
            .collect()
    }

    /// The markdown report: heading, machine, table, notes.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## greenlet against its peers\n");
        let _ = writeln!(md, "Machine: {}.  ", self.machine.line());
        let _ = writeln!(
            md,
            "Run {} ({:.0} s): `{}`.\n",
            self.started, self.duration_s, self.command
        );
        md.push_str(&self.table());
        let _ = writeln!(
            md,
            "\nEach figure is the median of {} repetitions ({} for alive, http and ping), each in a \
             fresh process; ± is half the min–max range of the repetitions, relative to the \
             median. The last column is greenlet's cost over the best peer's \
             (for req/s, the best peer's req/s over greenlet's): below 1× greenlet does better; \
             a row with a floor (work that no runtime can avoid) also gives greenlet's cost over \
             the floor.",
            self.config.reps, self.config.long_reps
        );
        let notes = self.notes();
        if !notes.is_empty() {
            md.push_str("\nNotes:\n\n");
            for n in notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }

    /// The table alone.
    pub fn table(&self) -> String {
        let cols = self.columns();
        let mut t = String::from("| workload | unit |");
        for c in &cols {
            let _ = write!(t, " {} |", c.name());
        }
        t.push_str(" greenlet ÷ best peer |\n|---|---|");
        for _ in &cols {
            t.push_str("--:|");
        }
        t.push_str("--:|\n");
        for row in &self.rows {
            let _ = write!(t, "| {} | {} |", row.case, row.unit);
            for c in &cols {
                let text = row.cells.get(c).map_or("—".to_string(), cell_text);
                let _ = write!(t, " {} |", text.replace('|', "/"));
            }
            let mut ratio = row.ratio.map_or("—".to_string(), |r| {
                format!("**{}×** ({})", fmt_sig(r.cost), r.best_peer.name())
            });
            if let Some(f) = row.floor_ratio {
                let _ = write!(ratio, "; **{}×** the floor", fmt_sig(f));
            }
            let _ = writeln!(t, " {ratio} |");
        }
        for s in &self.skipped {
            let _ = write!(t, "| {} | {} |", s.workload, s.reason);
            for _ in &cols {
                t.push_str(" — |");
            }
            t.push_str(" — |\n");
        }
        t
    }

    /// What qualifies a figure: sizes that differ, runtimes that stopped early.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for row in &self.rows {
            for (runtime, cell) in &row.cells {
                if let Cell::Ok {
                    note: Some(note), ..
                } = cell
                    && note.contains("only")
                {
                    let key = format!("{}, {}:", row.workload, runtime.name());
                    let note = note.split(" — ").next().unwrap_or(note);
                    if !notes.iter().any(|n: &String| n.starts_with(&key)) {
                        notes.push(format!("{key} {note}"));
                    }
                }
            }
        }
        if self
            .rows
            .iter()
            .any(|r| r.workload == "switch" && r.cells.contains_key(&Runtime::Floor))
        {
            notes.push(
                "switch (yield): the floor is no runtime: two raw corosensei coroutines and a \
                 scheduler that is only a queue of who is ready, so a hand-over's two stack \
                 switches and a queue push and pop. In the row \"from inside a called \
                 function\" every yield is made in a function that is not inlined into the \
                 coroutine's loop: corosensei resumes with a call and suspends with a return on \
                 the other stack, so there both that function's return and the suspend's \
                 are mispredicted, a cost the floor pays too."
                    .into(),
            );
        }
        if self.rows.iter().any(|r| r.workload == "alive") {
            notes.push(
                "alive: tokio tasks are stackless futures (no stack per task); OS threads are \
                 capped at 10k with 64 KiB stacks; the floor is no runtime: one guard and one \
                 fresh page per 64 KiB stack slot, the kernel work a guarded stack cannot avoid."
                    .into(),
            );
        }
        notes
    }

    /// Writes `report.md` and `report.json` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("report.json"), json + "\n")
    }
}

/// `12.3 ±4%`, `failed: <reason>`, `skipped: <reason>`; sizes that differ from the row's are
/// shown.
fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Ok { sample, note } => {
            let spread = sample.spread_pct();
            let mut s = if sample.values.len() > 1 {
                format!("{} ±{:.0}%", fmt_sig(sample.median), spread)
            } else {
                fmt_sig(sample.median)
            };
            if let Some(n) = note
                .as_deref()
                .filter(|n| n.contains("only") || n.contains("capped"))
            {
                let first = n.split(" — ").next().unwrap_or(n);
                let first = first.split([':', ';']).next().unwrap_or(first);
                let _ = write!(s, " ({})", first.trim());
            }
            s
        }
        Cell::Failed { reason } => format!("failed: {}", shorten(reason, 90)),
        Cell::Skipped { reason } => format!("skipped: {}", shorten(reason, 90)),
    }
}

/// Seconds since the Unix epoch as `2026-11-24 21:45 UTC`.
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_556_700), "2026-11-24 21:45 UTC");
    }

    #[test]
    fn machine_is_described() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.line().contains("cores"));
    }
}
