//! The blocking monitor (gevent's `max_blocking_time`): a watchdog thread that reports, through
//! `log::warn!`, a greenlet that keeps the hub from running for longer than a threshold.
//!
//! The hub bumps a counter each time it resumes a greenlet and records which one; the watchdog
//! samples the counter. If it has not moved for a whole threshold while a greenlet (not the
//! hub's poll) was running, that greenlet is named in the warning, with a backtrace of where
//! it is at that moment (see `sampler`).
//!
//! The watchdog only samples: the names and lines of the backtrace are looked up, and the
//! warning logged, by a reporter thread of its own, started at its first warning. The first
//! lookup reads the binary's debug information, which can take a second; done by the watchdog,
//! it would leave the hub unwatched meanwhile, and a second blocking stretch in that time would
//! go unreported.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::greenlet::Greenlet;

/// gevent's default `max_blocking_time`.
pub(crate) const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

struct Shared {
    resumes: AtomicU64,
    /// Whether the hub is idle in its poll (not blocked by a greenlet).
    idle: AtomicBool,
    running: Mutex<String>,
    /// The libc call the running greenlet is blocked in, when the `monkey` hooks know it.
    #[cfg(feature = "monkey")]
    call: Mutex<Option<(&'static str, i32)>>,
    stop: AtomicBool,
    /// The hub's thread (process id, thread id), for the backtrace of a blocker.
    thread: (libc::pid_t, libc::pid_t),
}

/// The hub side of the monitor.
#[derive(Default)]
pub(crate) struct Monitor {
    shared: OnceCell<Arc<Shared>>,
    enabled: Cell<bool>,
    pending: Cell<Option<Duration>>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("enabled", &self.enabled.get())
            .finish()
    }
}

impl Monitor {
    /// Off, unless `GREENLET_MONITOR` is set: `1` for the default threshold, or a number of
    /// milliseconds.
    pub(crate) fn from_env() -> Monitor {
        let m = Monitor::default();
        if let Ok(v) = std::env::var("GREENLET_MONITOR") {
            let threshold = match v.trim() {
                "" | "0" | "off" | "false" => return m,
                "1" | "on" | "true" => DEFAULT_THRESHOLD,
                ms => match ms.parse::<u64>() {
                    Ok(ms) => Duration::from_millis(ms),
                    Err(_) => {
                        log::warn!(
                            "GREENLET_MONITOR={v:?} is not a number of milliseconds; using 100"
                        );
                        DEFAULT_THRESHOLD
                    }
                },
            };
            m.pending.set(Some(threshold));
        }
        m
    }

    /// Starts the watchdog for this hub.
    pub(crate) fn enable(&self, threshold: Duration) {
        self.pending.set(Some(threshold));
    }

    fn start(&self, threshold: Duration) -> Option<Arc<Shared>> {
        // Called on the hub's thread (its first resume after enabling).
        let shared = Arc::new(Shared {
            resumes: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            running: Mutex::new(String::new()),
            #[cfg(feature = "monkey")]
            call: Mutex::new(None),
            stop: AtomicBool::new(false),
            thread: super::sampler::current_thread(),
        });
        super::sampler::install();
        let watched = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("greenlet-monitor".into())
            .spawn(move || {
                let mut reporter = Reporter::default();
                watch(watched, threshold, |r| reporter.send(r));
            });
        match spawned {
            Ok(_) => Some(shared),
            Err(e) => {
                log::warn!("greenlet: could not start the blocking monitor: {e}");
                None
            }
        }
    }

    /// Called by the hub as it resumes `g`.
    #[inline]
    pub(crate) fn resuming(&self, g: &Greenlet) {
        if !self.enabled.get() && self.pending.get().is_none() {
            return;
        }
        self.resuming_slow(g);
    }

    #[cold]
    fn resuming_slow(&self, g: &Greenlet) {
        if let Some(shared) = self.active() {
            shared.resumes.fetch_add(1, Ordering::Relaxed);
            shared.idle.store(false, Ordering::Relaxed);
            let mut running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
            running.clear();
            use std::fmt::Write;
            let _ = match g.name().filter(|n| !n.is_empty()) {
                Some(name) => write!(running, "{name:?} (#{})", g.id()),
                None => write!(running, "#{}", g.id()),
            };
        }
    }

    /// Called by the hub when it gets control back and may block in its poll.
    #[inline]
    pub(crate) fn idle(&self) {
        if self.enabled.get()
            && let Some(shared) = self.shared.get()
        {
            shared.resumes.fetch_add(1, Ordering::Relaxed);
            shared.idle.store(true, Ordering::Relaxed);
        }
    }

    /// Records (or, with `None`, clears) the libc call the running greenlet is about to block
    /// the hub in: a hooked call that cannot cooperate, named with its descriptor.
    #[cfg(feature = "monkey")]
    pub(crate) fn note_call(&self, call: Option<(&'static str, i32)>) {
        if self.enabled.get()
            && let Some(shared) = self.shared.get()
        {
            *shared.call.lock().unwrap_or_else(|e| e.into_inner()) = call;
        }
    }

    fn active(&self) -> Option<&Arc<Shared>> {
        if let Some(threshold) = self.pending.take() {
            // First use after enabling: start the watchdog thread.
            if let Some(shared) = self.start(threshold) {
                let _ = self.shared.set(shared);
                self.enabled.set(true);
            }
        }
        self.shared.get()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // The hub is going away with its thread: stop the watchdog, or it would go on watching
        // a thread that no longer runs and report its last greenlet as blocking the hub.
        if let Some(shared) = self.shared.get() {
            shared.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// ", in the blocking libc call `read()` on fd 5", when the `monkey` hooks saw which call.
#[cfg(feature = "monkey")]
fn blocked_in(shared: &Shared) -> String {
    match *shared.call.lock().unwrap_or_else(|e| e.into_inner()) {
        Some((name, fd)) if fd >= 0 => format!(", in the blocking libc call {name}() on fd {fd}"),
        Some((name, _)) => format!(", in the blocking libc call {name}()"),
        None => String::new(),
    }
}

#[cfg(not(feature = "monkey"))]
fn blocked_in(_: &Shared) -> &'static str {
    ""
}

/// Whether the `monkey` hooks saw the blocker enter a blocking libc call: then it is not
/// sampled (the call is named already, and the sampling signal would make a call like
/// `ppoll` fail with `EINTR`).
#[cfg(feature = "monkey")]
fn in_libc_call(shared: &Shared) -> bool {
    shared
        .call
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some()
}

#[cfg(not(feature = "monkey"))]
fn in_libc_call(_: &Shared) -> bool {
    false
}

/// A warning the watchdog hands to the reporter thread.
struct Report {
    /// The warning without its backtrace.
    head: String,
    /// The blocker's return addresses, if it was sampled while it still blocked.
    ips: Option<Vec<usize>>,
}

impl Report {
    /// Looks up the backtrace's names and lines, and logs the warning.
    fn emit(self) {
        let trace = self
            .ips
            .map(|ips| format!("; it is at:\n{}", super::sampler::describe(&ips)))
            .unwrap_or_default();
        log::warn!("{}{trace}", self.head);
    }
}

/// Starts a thread that passes each report it is sent to `emit`, in the order sent.
fn spawn_reporter(emit: impl Fn(Report) + Send + 'static) -> io::Result<mpsc::Sender<Report>> {
    let (tx, rx) = mpsc::channel::<Report>();
    std::thread::Builder::new()
        .name("greenlet-monitor-report".into())
        .spawn(move || rx.into_iter().for_each(emit))?;
    Ok(tx)
}

/// The watchdog's side of its reporter thread, which its first report starts. Each watchdog has
/// its own: it ends with the watchdog, after the reports left to it, and nothing is shared with
/// the watchdogs of other hubs, or with a forked child (which has none of the parent's threads).
#[derive(Default)]
struct Reporter {
    tx: Option<mpsc::Sender<Report>>,
    /// The thread could not be started: reports are logged by the watchdog itself.
    failed: bool,
}

impl Reporter {
    fn send(&mut self, report: Report) {
        if self.tx.is_none() && !self.failed {
            match spawn_reporter(Report::emit) {
                Ok(tx) => self.tx = Some(tx),
                Err(e) => {
                    self.failed = true;
                    log::warn!("greenlet: could not start the monitor's reporter thread: {e}");
                }
            }
        }
        match &self.tx {
            Some(tx) => {
                if let Err(mpsc::SendError(report)) = tx.send(report) {
                    report.emit();
                }
            }
            None => report.emit(),
        }
    }
}

/// The watchdog's loop: checks the hub every `threshold`, and passes a warning for each
/// blocking stretch to `report`, which must not block.
fn watch(shared: Arc<Shared>, threshold: Duration, mut report: impl FnMut(Report)) {
    let mut last = shared.resumes.load(Ordering::Relaxed);
    let mut reported = u64::MAX;
    loop {
        std::thread::sleep(threshold);
        // Checked after the sleep, right before sampling: a hub dropped during the sleep must
        // not be reported.
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = shared.resumes.load(Ordering::Relaxed);
        if now == last && !shared.idle.load(Ordering::Relaxed) && reported != now {
            let running = shared
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let (pid, tid) = shared.thread;
            // Kept only if it still blocked when sampled (the counter has not moved).
            let sampled = if in_libc_call(&shared) {
                None
            } else {
                super::sampler::sample(pid, tid)
            };
            report(Report {
                head: format!(
                    "greenlet {running} has blocked the hub for more than {threshold:?}{}",
                    blocked_in(&shared)
                ),
                ips: sampled.filter(|_| shared.resumes.load(Ordering::Relaxed) == now),
            });
            reported = now;
        }
        last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// How long a test waits for what must happen before it calls it a hang.
    const GIVE_UP: Duration = Duration::from_secs(30);

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let give_up = Instant::now() + GIVE_UP;
        while !done() {
            assert!(Instant::now() < give_up, "gave up waiting: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_watchdog_keeps_watching_while_a_warning_is_being_reported() {
        // The hub's thread, blocked for as long as the test lasts.
        let (end, ended) = mpsc::channel::<()>();
        let (tell, told) = mpsc::channel();
        let hub = std::thread::spawn(move || {
            tell.send(super::super::sampler::current_thread()).unwrap();
            let _ = ended.recv();
        });
        let shared = Arc::new(Shared {
            resumes: AtomicU64::new(1),
            idle: AtomicBool::new(false),
            running: Mutex::new("first".into()),
            #[cfg(feature = "monkey")]
            call: Mutex::new(None),
            stop: AtomicBool::new(false),
            thread: told.recv().unwrap(),
        });
        // How many warnings the watchdog has handed over.
        let reports = Arc::new(AtomicU64::new(0));
        // A reporter whose every warning takes until the test releases it, as a slow lookup
        // of the backtrace's names would.
        let (emitting, emitted) = mpsc::channel::<Report>();
        let (release, released) = mpsc::channel::<()>();
        let reporter = spawn_reporter(move |report| {
            emitting.send(report).unwrap();
            released.recv().unwrap();
        })
        .unwrap();
        let (watched, handed) = (shared.clone(), reports.clone());
        let watchdog = std::thread::spawn(move || {
            watch(watched, Duration::from_millis(10), move |r| {
                reporter.send(r).unwrap();
                handed.fetch_add(1, Ordering::Relaxed);
            });
        });

        let first = emitted
            .recv_timeout(GIVE_UP)
            .expect("the first stretch is reported");
        assert!(
            first.head.contains("greenlet first has blocked the hub"),
            "{}",
            first.head
        );
        assert!(
            first.ips.is_some(),
            "the blocker is sampled while it blocks"
        );
        // While the first warning is still being reported, the hub resumes another greenlet,
        // which blocks it too.
        *shared.running.lock().unwrap() = "second".into();
        shared.resumes.fetch_add(1, Ordering::Relaxed);
        wait_until("the second stretch handed to the reporter", || {
            reports.load(Ordering::Relaxed) == 2
        });
        release.send(()).unwrap();
        let second = emitted
            .recv_timeout(GIVE_UP)
            .expect("the second stretch is reported");
        assert!(
            second.head.contains("greenlet second has blocked the hub"),
            "{}",
            second.head
        );
        release.send(()).unwrap();

        shared.stop.store(true, Ordering::Relaxed);
        watchdog.join().unwrap();
        end.send(()).unwrap();
        hub.join().unwrap();
        assert_eq!(
            reports.load(Ordering::Relaxed),
            2,
            "each stretch reported once"
        );
    }
}
