//! Every measurement runs in a child process: this binary re-executed with a hidden subcommand.
//!
//! A child has its own heap, its own runtimes (may's global configuration, tokio's runtime, this
//! crate's per-thread hub) and its own RSS, and when it crashes, hangs or runs out of memory maps
//! the parent records `failed: <reason>` and carries on. Children talk to the parent with lines on
//! stdout:
//!
//! ```text
//! progress 20000          how far a long measurement got (also: how far it got before dying)
//! result ns 12.5          one named figure
//! ```
//!
//! Anything else on stdout is ignored; stderr is kept so its last line can explain a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Child side: reports how far a long measurement got.
pub fn progress(done: u64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "progress {done}");
    let _ = out.flush();
}

/// Child side: reports one named figure.
pub fn result(key: &str, value: f64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "result {key} {value}");
    let _ = out.flush();
}

/// What a child that finished cleanly reported.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The `result` lines, in order.
    pub results: Vec<(String, f64)>,
    /// The last `progress` value, if any.
    pub progress: Option<u64>,
}

impl Report {
    /// The figure named `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.results.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// Why a child gave no figures.
#[derive(Debug, Clone)]
pub struct Failure {
    /// One line for the table: exit status or signal, and the child's last stderr line.
    pub reason: String,
    /// The last `progress` value the child reported before it failed.
    pub progress: Option<u64>,
}

enum Line {
    Out(String),
    Err(String),
}

/// Runs this binary with `args`, forwarding progress to `on_progress`, killing it after `timeout`.
pub fn run_self(
    args: &[String],
    timeout: Duration,
    mut on_progress: impl FnMut(u64),
) -> Result<Report, Failure> {
    let exe = std::env::current_exe().map_err(|e| Failure {
        reason: format!("cannot find own executable: {e}"),
        progress: None,
    })?;
    let mut child = Command::new(exe)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Failure {
            reason: format!("cannot start child: {e}"),
            progress: None,
        })?;
    let (tx, rx) = mpsc::channel();
    let readers = [
        forward(
            child.stdout.take().expect("piped stdout"),
            tx.clone(),
            Line::Out,
        ),
        forward(child.stderr.take().expect("piped stderr"), tx, Line::Err),
    ];
    let deadline = Instant::now() + timeout;
    let mut report = Report::default();
    let mut err_lines = Vec::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Line::Out(l)) => parse_line(&l, &mut report, &mut on_progress),
            Ok(Line::Err(l)) => keep_reason(&l, &mut err_lines),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait();
    for r in readers {
        let _ = r.join();
    }
    // Lines that arrived between the kill and the readers ending.
    for line in rx.try_iter() {
        match line {
            Line::Out(l) => parse_line(&l, &mut report, &mut on_progress),
            Line::Err(l) => keep_reason(&l, &mut err_lines),
        }
    }
    let last_err = failure_line(err_lines.iter().map(String::as_str));
    let fail = |reason: String| Failure {
        reason,
        progress: report.progress,
    };
    if timed_out {
        return Err(fail(format!("timed out after {}s", timeout.as_secs())));
    }
    let status = status.map_err(|e| fail(format!("wait failed: {e}")))?;
    if !status.success() {
        return Err(fail(describe_exit(status, &last_err)));
    }
    if report.results.is_empty() {
        return Err(fail(format!("child printed no result; {last_err}")));
    }
    Ok(report)
}

fn parse_line(line: &str, report: &mut Report, on_progress: &mut impl FnMut(u64)) {
    let mut it = line.split_whitespace();
    match (it.next(), it.next(), it.next()) {
        (Some("progress"), Some(n), None) => {
            if let Ok(n) = n.parse() {
                report.progress = Some(n);
                on_progress(n);
            }
        }
        (Some("result"), Some(k), Some(v)) => {
            if let Ok(v) = v.parse() {
                report.results.push((k.to_string(), v));
            }
        }
        _ => {}
    }
}

/// Keeps the last lines of a child's stderr, enough to find its panic message.
fn keep_reason(line: &str, lines: &mut Vec<String>) {
    if lines.len() == 200 {
        lines.remove(0);
    }
    lines.push(line.to_string());
}

/// The line of a failed program's stderr that explains the failure: a panic's message (the line
/// after `panicked at`, or the rest of that line), else the last line that is not part of a
/// backtrace or a hint about one.
pub fn failure_line<'a>(lines: impl DoubleEndedIterator<Item = &'a str> + Clone) -> String {
    let mut after_panic = None;
    let mut prev_was_panic = false;
    for line in lines.clone() {
        let line = line.trim();
        if prev_was_panic && !line.is_empty() {
            after_panic = Some(line.to_string());
        }
        prev_was_panic = false;
        if let Some((_, rest)) = line.split_once("panicked at ") {
            // `thread 'main' panicked at src/x.rs:1:2:` then the message on the next line.
            match rest.split_once(": ") {
                Some((_, msg)) if !msg.is_empty() => after_panic = Some(msg.to_string()),
                _ => prev_was_panic = true,
            }
        }
    }
    if let Some(msg) = after_panic {
        return format!("panicked: {msg}");
    }
    lines
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !is_backtrace(l))
        .unwrap_or("")
        .to_string()
}

/// A line of a backtrace, or the hint about one.
fn is_backtrace(line: &str) -> bool {
    let frame = line
        .split_once(": ")
        .is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok());
    frame
        || line.starts_with("note:")
        || line.starts_with("stack backtrace")
        || line.starts_with("at ")
}

fn forward<R: Read + Send + 'static>(
    src: R,
    tx: mpsc::Sender<Line>,
    wrap: fn(String) -> Line,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(src).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    })
}

/// `exit status 101: thread 'main' panicked at ...` / `killed by signal 11 (SIGSEGV)`.
pub fn describe_exit(status: std::process::ExitStatus, last_err: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    if status.code() == Some(1) && !last_err.is_empty() {
        // A child that gave up cleanly: its own message says it all.
        return shorten(last_err, 200);
    }
    let what = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s} ({})", signal_name(s)),
        _ => "exited abnormally".to_string(),
    };
    if last_err.is_empty() {
        what
    } else {
        format!("{what}: {}", shorten(last_err, 160))
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGKILL => "SIGKILL, out of memory?",
        libc::SIGILL => "SIGILL",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_line_finds_the_panic_message() {
        let err = "thread 'main' panicked at src/x.rs:3:5:\nno hub yet\nstack backtrace:\n   0: foo\n             at src/x.rs:3\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.";
        assert_eq!(failure_line(err.lines()), "panicked: no hub yet");
    }

    #[test]
    fn failure_line_without_panic_is_the_last_real_line() {
        let err = "starting\nbind: address in use\nnote: run with `RUST_BACKTRACE=1`";
        assert_eq!(failure_line(err.lines()), "bind: address in use");
    }
}
