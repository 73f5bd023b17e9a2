//! Parks N greenlets at once, each suspended mid-function on its own stack, and reports what
//! that costs: the time to create and start them, the resident memory each one adds, and the
//! time to tear them all down.
//!
//! ```text
//! cargo run --release --example alive -- [N]      # N defaults to 1_000_000
//! alive: 1000000 greenlets suspended in 0.83 s, RSS 4.21 KiB each (64 KiB stacks, vm.max_map_count 65530, mappings: 61)
//! alive: dropped 1000000 greenlets in 0.35 s
//! ```
//!
//! If the system runs out of something on the way (memory maps, address space), it says which
//! error it got after how many greenlets, and exits with a failure status.

use std::fs;
use std::io::Read;
use std::process::ExitCode;
use std::time::Instant;

use greenlet::{Builder, DEFAULT_STACK_SIZE, Greenlet};

/// What every parked greenlet runs: hand control back to main and wait there until dropped.
fn park(_: ()) {
    let () = greenlet::main()
        .switch(())
        .expect("main resumes a parked greenlet only by dropping it");
}

/// `VmRSS` of this process in KiB, or 0 if `/proc` cannot tell.
fn rss_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The number of memory mappings of this process (lines of `/proc/self/maps`), 0 if unknown.
///
/// Counted through a small stack buffer: when the map count is exhausted, a large heap
/// allocation (which needs a new mapping) would fail.
fn mappings() -> usize {
    let Ok(mut maps) = fs::File::open("/proc/self/maps") else {
        return 0;
    };
    let mut buf = [0u8; 8192];
    let mut lines = 0;
    loop {
        match maps.read(&mut buf) {
            Ok(0) | Err(_) => return lines,
            Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
        }
    }
}

/// The kernel's limit on mappings per process, as text (`?` if unreadable).
fn max_map_count() -> String {
    fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| String::from("?"))
}

/// Parses the optional count argument (underscores allowed: `1_000_000`).
fn parse_count() -> Result<usize, String> {
    let mut args = std::env::args();
    let exe = args.next().unwrap_or_default();
    if std::path::Path::new(&exe)
        .file_stem()
        .is_none_or(|stem| stem != "alive")
    {
        // Run inside the tour: a short run.
        return Ok(1000);
    }
    match args.next() {
        None => Ok(1_000_000),
        Some(arg) => arg
            .replace('_', "")
            .parse()
            .map_err(|e| format!("alive: N must be a number of greenlets, not {arg:?}: {e}")),
    }
}

/// Creates and starts `n` greenlets, each left suspended in [`park`].
fn park_all(n: usize) -> Result<Vec<Greenlet>, String> {
    let mut parked = Vec::with_capacity(n);
    for i in 0..n {
        let failed = |what: &dyn std::fmt::Display| {
            format!(
                "alive: greenlet {} of {n} failed: {what} ({i} suspended, mappings: {}, vm.max_map_count {})",
                i + 1,
                mappings(),
                max_map_count()
            )
        };
        let g = Builder::new().build(park).map_err(|e| failed(&e))?;
        g.switch::<(), ()>(()).map_err(|e| failed(&e))?;
        parked.push(g);
    }
    Ok(parked)
}

/// Parks N greenlets (the first argument; 1,000,000 by default, 1,000 inside the tour) and
/// reports the time and memory they take; exits non-zero with the reason if it cannot.
pub fn main() {
    let code = run();
    if code != ExitCode::SUCCESS {
        std::process::exit(1);
    }
}

fn run() -> ExitCode {
    let n = match parse_count() {
        Ok(n) => n,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let rss_before = rss_kib();
    let start = Instant::now();
    let parked = match park_all(n) {
        Ok(parked) => parked,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::FAILURE;
        }
    };
    let elapsed = start.elapsed();
    let grown = rss_kib().saturating_sub(rss_before);
    println!(
        "alive: {n} greenlets suspended in {:.2} s, RSS {:.2} KiB each ({} KiB stacks, vm.max_map_count {}, mappings: {})",
        elapsed.as_secs_f64(),
        grown as f64 / n.max(1) as f64,
        DEFAULT_STACK_SIZE / 1024,
        max_map_count(),
        mappings()
    );
    let start = Instant::now();
    drop(parked);
    println!(
        "alive: dropped {n} greenlets in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
