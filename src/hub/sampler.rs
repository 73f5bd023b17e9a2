//! A backtrace of a hub thread that a greenlet keeps busy, for the blocking monitor's warning.
//!
//! The watchdog thread cannot read another thread's stack, so it asks that thread to record
//! its own: it sends the thread a signal (`SIGRTMAX - 2`), whose handler walks the thread's
//! stack from where it was interrupted, writes the return addresses into a static buffer and
//! returns; the watchdog then turns the addresses into names and lines. The handler makes no
//! allocation and takes no lock of its own; the walk is libgcc's unwinder (`_Unwind_Backtrace`,
//! as glibc's `backtrace()` uses it), which reads the unwind tables.
//!
//! This is one of the crate's few modules with `unsafe`: the handler's installation and the
//! signal sent to one thread.
//!
//! Limits, said where the monitor is documented: the handler is installed only if nothing
//! else handles that signal; a blocking system call the signal interrupts is restarted
//! (`SA_RESTART`), except those Linux never restarts (`poll`, `epoll_wait`, `nanosleep`, ...),
//! which fail with `EINTR` once, as they do for any signal; and a thread interrupted inside the
//! dynamic loader while it holds the loader's lock would wait for it in the handler, so the
//! watchdog gives up on a sample after a bound rather than wait with it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

const MAX_FRAMES: usize = 64;

/// The return addresses the handler recorded, `LEN` of them.
static IPS: [AtomicUsize; MAX_FRAMES] = [const { AtomicUsize::new(0) }; MAX_FRAMES];
static LEN: AtomicUsize = AtomicUsize::new(0);

/// The exchange between a watchdog and the handler.
static STATE: AtomicU8 = AtomicU8::new(IDLE);
const IDLE: u8 = 0;
const REQUESTED: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;

/// One sample at a time, among the watchdogs of every hub.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// How long a watchdog waits for a thread to record its stack.
const SAMPLE_WAIT: Duration = Duration::from_millis(500);

fn signal_number() -> libc::c_int {
    libc::SIGRTMAX() - 2
}

/// The calling thread's id, to sample it later from another thread.
pub(crate) fn current_thread() -> (libc::pid_t, libc::pid_t) {
    // SAFETY: getpid and gettid have no preconditions.
    unsafe {
        (
            libc::getpid(),
            libc::syscall(libc::SYS_gettid) as libc::pid_t,
        )
    }
}

/// Installs the handler once per process; returns whether it is installed.
pub(crate) fn install() -> bool {
    INSTALL.call_once(|| {
        let signo = signal_number();
        // SAFETY: all-zeroes is a valid `sigaction`; querying writes only into `old`.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(signo, std::ptr::null(), &mut old) } != 0
            || old.sa_sigaction != libc::SIG_DFL
        {
            log::warn!(
                "greenlet: signal {signo} is in use: the blocking monitor's warnings will have no \
                 backtrace"
            );
            return;
        }
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler
            as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
            as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: `sa_mask` is a valid signal set to empty; the handler is an `extern "C"` fn
        // of the SA_SIGINFO signature that makes only async-signal-safe use of statics.
        let ok = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signo, &action, std::ptr::null_mut()) == 0
        };
        INSTALLED.store(ok, Ordering::Release);
    });
    INSTALLED.load(Ordering::Acquire)
}

extern "C" fn handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Only a sample that a watchdog asked for (not a stray or late signal) is written.
    if STATE
        .compare_exchange(REQUESTED, WRITING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    // SAFETY: errno is thread-local; it is restored so the interrupted code does not see a
    // change.
    let errno = unsafe { *libc::__errno_location() };
    let mut n = 0;
    // SAFETY: `trace_unsynchronized` may not run concurrently with another trace of the
    // same backtrace instance's state; it keeps none between calls on this platform (it calls
    // `_Unwind_Backtrace`, which allocates nothing), and STATE admits one writer at a time.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            IPS[n].store(frame.ip() as usize, Ordering::Relaxed);
            n += 1;
            n < MAX_FRAMES
        });
    }
    LEN.store(n, Ordering::Relaxed);
    STATE.store(DONE, Ordering::Release);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Records the stack of thread `tid` of process `pid` as it runs now: the return addresses,
/// for [`describe`]; `None` if the handler is not installed or the thread did not answer in
/// time.
pub(crate) fn sample(pid: libc::pid_t, tid: libc::pid_t) -> Option<Vec<usize>> {
    if !install() {
        return None;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    STATE.store(REQUESTED, Ordering::Release);
    // SAFETY: tgkill only sends a signal; a thread that has exited makes it fail with ESRCH.
    let sent = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal_number()) } == 0;
    if !sent {
        STATE.store(IDLE, Ordering::Release);
        return None;
    }
    let give_up = Instant::now() + SAMPLE_WAIT;
    loop {
        match STATE.load(Ordering::Acquire) {
            DONE => break,
            REQUESTED | WRITING if Instant::now() >= give_up => {
                // A handler that starts after this finds the state idle and writes nothing.
                STATE.store(IDLE, Ordering::Release);
                return None;
            }
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    let ips: Vec<usize> = IPS[..LEN.load(Ordering::Relaxed)]
        .iter()
        .map(|ip| ip.load(Ordering::Relaxed))
        .collect();
    STATE.store(IDLE, Ordering::Release);
    Some(ips)
}

/// Names and lines of `ips`, from the interrupted frame on (the handler's own frames and the
/// signal trampoline are left out).
pub(crate) fn describe(ips: &[usize]) -> String {
    let frames: Vec<(String, String)> = ips
        .iter()
        .map(|&ip| {
            let mut name = String::from("<unknown>");
            let mut place = String::new();
            // A return address points after its call: look up the call itself (for the
            // interrupted frame, one byte back is still inside its function).
            let addr = ip.saturating_sub(1);
            backtrace::resolve(addr as *mut std::ffi::c_void, |symbol| {
                if let Some(n) = symbol.name() {
                    name = format!("{n:#}");
                }
                if let (Some(file), Some(line)) = (symbol.filename(), symbol.lineno()) {
                    place = format!("{}:{line}", file.display());
                }
            });
            (name, place)
        })
        .collect();
    // The interrupted frame follows the handler and the signal trampoline (`__restore_rt`,
    // which has no name when the C library has no symbols).
    let mut start = frames
        .iter()
        .position(|(name, _)| name.contains("sampler::handler"))
        .map_or(0, |i| i + 1);
    if frames
        .get(start)
        .is_some_and(|(name, _)| name == "<unknown>" || name.contains("__restore_rt"))
    {
        start += 1;
    }
    let mut out = String::new();
    for (i, (name, place)) in frames[start..].iter().enumerate() {
        let _ = writeln!(out, "  {i:>3}: {name}");
        if !place.is_empty() {
            let _ = writeln!(out, "             at {place}");
        }
    }
    out
}
