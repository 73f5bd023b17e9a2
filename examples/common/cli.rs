//! The command line shared by the network examples: `NAME PORT [more...]` serves on PORT (0:
//! any free port), `NAME --self-test` runs the short self-run. Run inside another program
//! (the tour includes the examples' files and calls their `main`), they self-run too. The
//! servers also take `--threads N` anywhere on the line (see [`threads`]).

#![allow(dead_code)]

use std::path::Path;

/// What to do, from `std::env::args()`.
pub enum Mode {
    /// Serve (or connect) on this port, with the remaining arguments.
    Port(u16, Vec<String>),
    /// The short self-run.
    SelfRun,
}

/// Parses the command line of example `name`, whose default port is `default_port`.
///
/// # Panics
/// With a usage line when the port is not a number.
pub fn mode(name: &str, default_port: u16) -> Mode {
    let mut args = std::env::args();
    let exe = args.next().unwrap_or_default();
    let rest = without_threads(args.collect());
    let inside_another_program = Path::new(&exe).file_stem().is_none_or(|stem| stem != name);
    match rest.first().map(String::as_str) {
        Some("--self-test") => Mode::SelfRun,
        Some(port) if port.parse::<u16>().is_ok() => {
            Mode::Port(port.parse().unwrap_or(default_port), rest[1..].to_vec())
        }
        // The tour passes its own arguments (demo names), or none.
        _ if inside_another_program => Mode::SelfRun,
        None => Mode::Port(default_port, Vec::new()),
        Some(_) => panic!("usage: {name} PORT (0: any free port) | --self-test"),
    }
}

/// `--threads N` from the command line: how many hubs (OS threads) a server runs on; 1 (the
/// default) serves on the main thread's hub alone.
///
/// # Panics
/// With a usage line when N is not a positive number.
pub fn threads(name: &str) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--threads") {
        None => 1,
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("usage: {name} [PORT] --threads N (N >= 1)")),
    }
}

/// The arguments without `--threads N`.
fn without_threads(mut args: Vec<String>) -> Vec<String> {
    if let Some(i) = args.iter().position(|a| a == "--threads") {
        let end = (i + 2).min(args.len());
        args.drain(i..end);
    }
    args
}

/// [`mode`] for the examples that self-run when given no argument (`tls_echo`,
/// `websocket_echo`, `graceful_shutdown`): they serve only on a port given explicitly.
///
/// # Panics
/// With a usage line when the first argument is neither a port nor `--self-test`.
pub fn mode_or_self_run(name: &str) -> Mode {
    if std::env::args().nth(1).is_none() {
        return Mode::SelfRun;
    }
    mode(name, 0)
}
