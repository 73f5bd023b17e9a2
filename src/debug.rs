//! Diagnostics: what every greenlet of a thread is doing ([`dump`], gevent's
//! `print_run_info`, Go's goroutine dump), and how a panic in a greenlet is reported.
//!
//! # Dumps
//!
//! [`dump`] lists the greenlets of the calling thread: id, name, state (running, ready,
//! parked, suspended in an explicit switch, unstarted), and for a parked one what it waits on
//! and since when, with a backtrace of where it parked. The wait and the backtrace are
//! recorded when the greenlet parks, and only while capture is on ([`enable`], or the
//! environment variable `GREENLET_DEBUG=1`): a backtrace costs microseconds, the check for it
//! one load and a branch. Without capture the dump still has every greenlet's id, name and
//! state.
//!
//! ```
//! use std::time::Duration;
//!
//! greenlet::debug::enable();
//! fn wait_for_orders() {
//!     greenlet::sleep(Duration::from_secs(3600));
//! }
//! let h = greenlet::SpawnBuilder::new().name("clerk").spawn(wait_for_orders).unwrap();
//! greenlet::yield_now(); // it parks in its sleep
//! let text = greenlet::debug::dump();
//! assert!(text.contains("\"clerk\"") && text.contains("parked") && text.contains("sleep"));
//! h.kill().unwrap();
//! ```
//!
//! [`dump_on_signal`] prints the dump to standard error whenever a signal (`SIGQUIT`, the
//! Ctrl-\ of a terminal, by convention) arrives.
//!
//! # Panics in greenlets
//!
//! The crate installs a panic hook (once, the first time a greenlet is created in the
//! process, wrapping the hook that was set before) that reports a panic inside a greenlet once,
//! naming the greenlet: `greenlet "worker" (#7) on thread 'main' panicked at src/x.rs:3:5:`,
//! the message, and a backtrace as `RUST_BACKTRACE` asks. Panics outside greenlets go to the
//! previous hook unchanged. The unobserved-panic log of a spawned greenlet is then not
//! repeated.

use std::backtrace::Backtrace;
use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::greenlet::{Inner, Kind, State};

/// Whether parks record what they wait on and a backtrace.
static CAPTURE: AtomicBool = AtomicBool::new(false);
static FROM_ENV: Once = Once::new();
static PANIC_HOOK: Once = Once::new();

/// Turns on the capture of what each greenlet parks on and where (for [`dump`]), for every
/// thread. The environment variable `GREENLET_DEBUG=1` does the same at start.
pub fn enable() {
    CAPTURE.store(true, Ordering::Relaxed);
}

/// Turns the capture off again; greenlets parked meanwhile keep what they recorded.
pub fn disable() {
    CAPTURE.store(false, Ordering::Relaxed);
}

/// Whether the capture is on.
pub fn is_enabled() -> bool {
    CAPTURE.load(Ordering::Relaxed)
}

/// What a greenlet recorded when it parked (capture on).
struct ParkInfo {
    /// The park it describes: stale once the greenlet's park token differs.
    token: u64,
    what: String,
    since: Instant,
    trace: Backtrace,
}

/// What a greenlet recorded of its last park, for [`dump`]. The greenlets themselves are
/// found through the thread's list of greenlets (the one the thread-exit teardown walks).
#[derive(Default)]
pub(crate) struct Diag {
    parked: Cell<Option<Box<ParkInfo>>>,
}

impl fmt::Debug for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parked = self.parked.take();
        let recorded = parked.is_some();
        self.parked.set(parked);
        f.debug_struct("Diag").field("recorded", &recorded).finish()
    }
}

/// Reads `GREENLET_DEBUG` and installs the panic hook, once per process: when a thread's
/// runtime is made, before its first greenlet.
pub(crate) fn install_once() {
    FROM_ENV.call_once(|| {
        if std::env::var("GREENLET_DEBUG").is_ok_and(|v| !matches!(v.trim(), "" | "0")) {
            enable();
        }
    });
    PANIC_HOOK.call_once(install_panic_hook);
}

/// Called by a greenlet about to park on `what`: records it when capture is on.
#[inline]
pub(crate) fn parking(diag: &Diag, token: u64, what: &dyn fmt::Display) {
    if CAPTURE.load(Ordering::Relaxed) {
        record_park(diag, token, what);
    }
}

#[cold]
#[inline(never)]
fn record_park(diag: &Diag, token: u64, what: &dyn fmt::Display) {
    // Nothing is cleared on resume (that would cost every park a store): a record whose token
    // is not the greenlet's current park token is stale, and the dump ignores it.
    diag.parked.set(Some(Box::new(ParkInfo {
        token,
        what: what.to_string(),
        since: Instant::now(),
        trace: Backtrace::force_capture(),
    })));
}

/// Describes every greenlet of the calling thread, one paragraph each: id, name, state; for a
/// parked greenlet (with capture on, see [`enable`]) what it waits on, for how long, and the
/// backtrace of its park.
///
/// # Examples
/// ```
/// let text = greenlet::debug::dump();
/// assert!(text.contains("\"main\"") && text.contains("running"));
/// ```
pub fn dump() -> String {
    // Makes the thread's runtime (its main greenlet and hub) if nothing has yet.
    drop(crate::current());
    let ready = crate::hub::ready_ids();
    let mut greenlets = crate::thread_state::coroutines(|_| true);
    greenlets.push(crate::main());
    greenlets.push(crate::switch::hub_greenlet());
    let now = Instant::now();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "greenlets of thread {:?}: {} (capture of parks {})",
        std::thread::current().name().unwrap_or("<unnamed>"),
        greenlets.len(),
        if is_enabled() {
            "on"
        } else {
            "off: set GREENLET_DEBUG=1 or call greenlet::debug::enable() for waits and backtraces"
        }
    );
    let mut sorted = greenlets;
    sorted.sort_by_key(|g| g.id());
    for g in &sorted {
        describe(&mut out, g.inner(), &ready, now);
    }
    out
}

fn describe(out: &mut String, g: &Inner, ready: &[u64], now: Instant) {
    let name = g.name.as_deref().filter(|n| !n.is_empty());
    let state = match g.state.get() {
        State::Started if crate::switch::is_running(g) => "running",
        State::Unstarted => "unstarted",
        State::Started if g.kind == Kind::Hub => "hub",
        State::Started if ready.contains(&g.id) => "ready",
        State::Started if crate::hub::park_token(g) != 0 => "parked",
        State::Started => "suspended in a switch",
        State::Destroying => "being destroyed",
        State::Dead => "dead",
    };
    let _ = write!(out, "\n#{} ", g.id);
    match name {
        Some(n) => {
            let _ = write!(out, "{n:?}");
        }
        None => {
            let _ = write!(out, "Greenlet-{}", g.id);
        }
    }
    let _ = write!(out, ": {state}");
    // Borrowed out of the cell for the look, and put back.
    let info = g.sched.diag.parked.take();
    if let Some(info) = &info {
        if state == "parked" && info.token == crate::hub::park_token(g) {
            let _ = writeln!(
                out,
                " on {} for {:?}",
                info.what,
                now.saturating_duration_since(info.since)
            );
            let trace = info.trace.to_string();
            let _ = write!(out, "  parked at:\n{}", indent(from_the_caller(&trace)));
        } else {
            let _ = writeln!(out);
        }
    } else {
        let _ = writeln!(out);
    }
    g.sched.diag.parked.set(info);
}

/// The backtrace from the frame that called into the hub's park on: the frames of the
/// recording itself say nothing.
fn from_the_caller(trace: &str) -> &str {
    let Some(park) = trace.find("greenlet::hub::park_with") else {
        return trace;
    };
    // The next frame starts with a line `   N: symbol`.
    let mut offset = park;
    for line in trace[park..].split_inclusive('\n') {
        let t = line.trim_start();
        if offset > park
            && t.split_once(": ")
                .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()))
        {
            return &trace[offset..];
        }
        offset += line.len();
    }
    trace
}

fn indent(text: &str) -> String {
    text.lines().fold(String::new(), |mut s, l| {
        let _ = writeln!(s, "    {l}");
        s
    })
}

/// Prints [`dump`] to standard error each time the process receives `signal` (`SIGQUIT`,
/// Ctrl-\ in a terminal, by convention), from a greenlet named `greenlet-debug-dump` that
/// waits for it on this thread's hub.
///
/// The greenlet keeps the hub busy (it waits on a descriptor), so a program that waits for
/// its hub to run dry (`wait_all`, a main greenlet's `LoopExit`) should kill it first.
///
/// # Errors
/// As [`Signals::new`](crate::signal::Signals::new) (a signal that cannot be caught), or
/// when no stack can be had for the greenlet.
///
/// # Examples
/// ```no_run
/// let dumper = greenlet::debug::dump_on_signal(libc::SIGQUIT)?;
/// // ... serve ...
/// dumper.kill().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump_on_signal(signal: libc::c_int) -> io::Result<crate::JoinHandle<()>> {
    let signals = crate::signal::Signals::new(&[signal])?;
    crate::SpawnBuilder::new()
        .name("greenlet-debug-dump")
        .spawn(move || {
            while signals.recv().is_ok() {
                eprintln!("{}", dump());
            }
        })
}

thread_local! {
    /// The id of the greenlet whose panic the hook reported last (0: none since).
    static REPORTED: Cell<u64> = const { Cell::new(0) };
}

/// Whether the panic being caught in the running greenlet was reported by the hook.
pub(crate) fn take_reported() -> bool {
    let (id, _) = crate::greenlet::current_identity_for_signal();
    REPORTED
        .try_with(|r| r.replace(0) == id && id != 0)
        .unwrap_or(false)
}

/// The running greenlet, when it is one with a stack of its own: id and name.
fn running_greenlet() -> Option<(u64, String)> {
    let (id, name) = crate::greenlet::current_identity_for_signal();
    if id == 0 || crate::switch::current_kind() != Kind::Coroutine {
        return None;
    }
    let name = String::from_utf8_lossy(name);
    Some((
        id,
        if name.is_empty() {
            format!("Greenlet-{id}")
        } else {
            format!("{name:?}")
        },
    ))
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let Some((id, name)) = running_greenlet() else {
            return previous(info);
        };
        let _ = REPORTED.try_with(|r| r.set(id));
        let thread = std::thread::current();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        let location = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        let trace = Backtrace::capture();
        let trace = match trace.status() {
            std::backtrace::BacktraceStatus::Captured => format!("stack backtrace:\n{trace}"),
            _ => "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
                .to_owned(),
        };
        eprintln!(
            "greenlet {name} (#{id}) on thread '{}' panicked{location}:\n{message}\n{trace}",
            thread.name().unwrap_or("<unnamed>")
        );
    }));
}
