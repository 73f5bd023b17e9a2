//! What the hub reports through `log`: panics nobody looked at, and the blocking monitor
//! (gevent's `max_blocking_time`, `test__hub.py`'s `TestPeriodicMonitoringThread` and
//! `test___monitor.py`). The logger is process-global, so every logging test lives in this
//! binary; each test looks only for messages that name its own greenlets.

mod util;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use greenlet::{HubBuilder, SpawnBuilder};
use util::on_fresh_thread;

/// Records every message with the name of the thread that logged it, and prints it to stderr
/// (where a child process's parent reads it).
struct TestLogger {
    records: Mutex<Vec<(log::Level, String, String)>>,
}

impl log::Log for TestLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let msg = record.args().to_string();
        eprintln!("[{}] {msg}", record.level());
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        self.records
            .lock()
            .unwrap()
            .push((record.level(), msg, thread));
    }

    fn flush(&self) {}
}

fn logger() -> &'static TestLogger {
    static LOGGER: OnceLock<&'static TestLogger> = OnceLock::new();
    LOGGER.get_or_init(|| {
        let logger: &'static TestLogger = Box::leak(Box::new(TestLogger {
            records: Mutex::new(Vec::new()),
        }));
        log::set_logger(logger).expect("the only logger of this test binary");
        log::set_max_level(log::LevelFilter::Trace);
        logger
    })
}

/// The messages at `level` that contain `needle`.
fn logged(level: log::Level, needle: &str) -> Vec<String> {
    logged_by(level, needle)
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

/// The messages at `level` that contain `needle`, each with the thread that logged it.
fn logged_by(level: log::Level, needle: &str) -> Vec<(String, String)> {
    logger()
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, m, _)| *l == level && m.contains(needle))
        .map(|(_, m, t)| (m.clone(), t.clone()))
        .collect()
}

/// Waits (generously) for a message at `level` containing `needle`, for messages that come
/// from the monitor's own thread.
fn wait_logged(level: log::Level, needle: &str) -> Vec<String> {
    let give_up = Instant::now() + util::NOT_HANGING;
    loop {
        let found = logged(level, needle);
        if !found.is_empty() || Instant::now() > give_up {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Serialises the tests that measure blocking: run side by side on a small machine, one test's
/// busy loop could delay another's greenlets past the threshold.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps the hub from running for `d`, as a CPU-bound loop does.
fn busy_loop(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------------
// Panics nobody looked at

/// Regression: a spawned greenlet's panic was reported twice, by std's hook as `thread
/// 'main' panicked` and again by the unobserved-panic log. Now the crate's hook reports it
/// once, naming the greenlet, and the log stays quiet. In a child process, to read its stderr.
#[test]
fn a_panic_in_a_greenlet_is_reported_once_naming_the_greenlet() {
    let run = util::run_test_in_child_with("panic_report_child", &[("RUST_BACKTRACE", "0")]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    let mentions: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("nobody joins me"))
        .collect();
    assert_eq!(
        mentions.len(),
        1,
        "reported {} times:\n{}",
        mentions.len(),
        run.stderr
    );
    let header = run
        .stderr
        .lines()
        .find(|l| l.contains("fire-and-forget-panicker"))
        .unwrap_or_else(|| panic!("no report naming the greenlet:\n{}", run.stderr));
    assert!(
        header.starts_with("greenlet \"fire-and-forget-panicker\" (#")
            && header.contains("panicked at tests/monitor.rs:"),
        "{header}"
    );
    // std's own report (`thread '..' panicked at`) does not come as well.
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("thread '")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("[ERROR]"), "{}", run.stderr);
}

/// The body of [`a_panic_in_a_greenlet_is_reported_once_naming_the_greenlet`].
#[test]
fn panic_report_child() {
    if !util::in_child() {
        return;
    }
    logger();
    let h = SpawnBuilder::new()
        .name("fire-and-forget-panicker")
        .spawn(|| panic!("expected panic: nobody joins me"))
        .unwrap();
    drop(h); // fire and forget
    greenlet::yield_now();
    assert_eq!(greenlet::spawn(|| 1).get().unwrap(), 1);
}

/// When another panic hook replaced the crate's (set after it), a panic nobody joined is
/// still reported once, through `log::error!` with the greenlet's name and the message, when
/// its last handle goes.
#[test]
fn unobserved_panic_is_logged_when_another_hook_replaced_the_crates() {
    let run = util::run_test_in_child_with("replaced_hook_child", &[]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
}

/// The body of [`unobserved_panic_is_logged_when_another_hook_replaced_the_crates`].
#[test]
fn replaced_hook_child() {
    if !util::in_child() {
        return;
    }
    logger();
    greenlet::spawn(|| ()).join().unwrap(); // the crate's hook is installed by now
    std::panic::set_hook(Box::new(|_| {})); // an application's own, silent hook
    let h = SpawnBuilder::new()
        .name("ignored-panicker")
        .spawn(|| panic!("expected panic: ignored"))
        .unwrap();
    greenlet::yield_now();
    assert!(h.is_ready());
    assert!(logged(log::Level::Error, "ignored-panicker").is_empty());
    let h2 = h.clone();
    drop(h);
    assert!(logged(log::Level::Error, "ignored-panicker").is_empty());
    drop(h2);
    let found = logged(log::Level::Error, "ignored-panicker");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("expected panic: ignored"), "{}", found[0]);
}

/// A panic that was joined, got, or linked is not reported: someone saw it.
#[test]
fn observed_panics_are_not_logged() {
    logger();
    let joined = SpawnBuilder::new()
        .name("joined-panicker")
        .spawn(|| panic!("expected panic: joined"))
        .unwrap();
    joined.join().unwrap();
    drop(joined);
    let got = SpawnBuilder::new()
        .name("got-panicker")
        .spawn(|| panic!("expected panic: got"))
        .unwrap();
    assert!(got.get().is_err());
    drop(got);
    let linked = SpawnBuilder::new()
        .name("linked-panicker")
        .spawn(|| panic!("expected panic: linked"))
        .unwrap();
    linked.link(|_| ());
    drop(linked);
    let waited = SpawnBuilder::new()
        .name("waited-panicker")
        .spawn(|| panic!("expected panic: waited"))
        .unwrap();
    greenlet::joinall(std::slice::from_ref(&waited), None, None).unwrap();
    drop(waited);
    greenlet::yield_now();
    for name in [
        "joined-panicker",
        "got-panicker",
        "linked-panicker",
        "waited-panicker",
    ] {
        assert!(
            logged(log::Level::Error, name).is_empty(),
            "{name} was logged"
        );
    }
}

/// A successful greenlet nobody joined is not reported.
#[test]
fn unobserved_success_is_not_logged() {
    logger();
    drop(
        SpawnBuilder::new()
            .name("quiet-success")
            .spawn(|| 5)
            .unwrap(),
    );
    greenlet::yield_now();
    assert!(logged(log::Level::Error, "quiet-success").is_empty());
}

/// A panicking link is reported with the greenlet's name.
#[test]
fn panicking_link_is_logged() {
    logger();
    let h = SpawnBuilder::new().name("link-owner").spawn(|| ()).unwrap();
    h.link(|_| panic!("expected panic: in a link"));
    h.join().unwrap();
    let found = logged(log::Level::Error, "link-owner");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("expected panic: in a link"),
        "{}",
        found[0]
    );
}

// ---------------------------------------------------------------------------------------------
// The blocking monitor

/// With the monitor switched on by the builder (threshold 50 ms), a greenlet that keeps the
/// hub from running for 300 ms is reported through `log::warn!` by name (ports gevent's
/// `test__hub.py::TestPeriodicMonitoringThread::test_blocking_this_thread`).
#[test]
fn monitor_names_the_greenlet_that_blocks_the_hub() {
    let _serial = serial();
    logger();
    on_fresh_thread(|| {
        HubBuilder::new().monitor(Duration::from_millis(50)).init();
        let h = SpawnBuilder::new()
            .name("busy-looper")
            .spawn(|| busy_loop(Duration::from_millis(300)))
            .unwrap();
        h.join().unwrap();
    });
    let found = wait_logged(log::Level::Warn, "busy-looper");
    assert!(
        !found.is_empty(),
        "the monitor did not report the busy greenlet"
    );
    assert!(found[0].contains("blocked the hub"), "{}", found[0]);
    // One report per blocking stretch, not one per sample.
    assert_eq!(found.len(), 1, "{found:?}");
    // Logged by the reporter, so that the watchdog never stops watching to look up names.
    let by = logged_by(log::Level::Warn, "busy-looper");
    assert_eq!(by[0].1, "greenlet-monitor-report", "{by:?}");
}

/// The blocker, for the backtrace test: a name to find in the warning.
#[inline(never)]
fn hogs_the_hub_in_a_named_function(d: Duration) {
    busy_loop(d);
    std::hint::black_box(());
}

/// The monitor's warning carries a backtrace of where the blocker is while it blocks: the
/// named function it busy-loops in is in it.
#[test]
fn monitor_warning_has_the_blockers_backtrace() {
    let _serial = serial();
    logger();
    on_fresh_thread(|| {
        HubBuilder::new().monitor(Duration::from_millis(50)).init();
        let h = SpawnBuilder::new()
            .name("traced-hog")
            .spawn(|| hogs_the_hub_in_a_named_function(Duration::from_millis(400)))
            .unwrap();
        h.join().unwrap();
    });
    let found = wait_logged(log::Level::Warn, "traced-hog");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("it is at:") && found[0].contains("hogs_the_hub_in_a_named_function"),
        "no backtrace naming the blocking function:\n{}",
        found[0]
    );
}

/// Blocks the hub for at least 300 ms and until `n` warnings name "blocks-twice" (or the test
/// gives up).
fn busy_until_logged(n: usize) {
    let give_up = Instant::now() + util::NOT_HANGING;
    busy_loop(Duration::from_millis(300));
    while logged(log::Level::Warn, "blocks-twice").len() < n && Instant::now() < give_up {
        busy_loop(Duration::from_millis(10));
    }
}

/// A greenlet that blocks, yields, and blocks again is reported for each stretch; greenlets
/// that keep switching are not.
#[test]
fn monitor_reports_each_blocking_stretch() {
    let _serial = serial();
    logger();
    on_fresh_thread(|| {
        HubBuilder::new().monitor(Duration::from_millis(50)).init();
        let polite = SpawnBuilder::new()
            .name("polite-switcher")
            .spawn(|| {
                let end = Instant::now() + Duration::from_millis(200);
                while Instant::now() < end {
                    greenlet::yield_now();
                }
            })
            .unwrap();
        let twice = SpawnBuilder::new()
            .name("blocks-twice")
            .spawn(|| {
                // Each stretch lasts until it has been reported: on a loaded machine the
                // monitor's thread may not run for longer than a fixed stretch.
                busy_until_logged(1);
                greenlet::sleep(Duration::from_millis(1));
                busy_until_logged(2);
            })
            .unwrap();
        greenlet::joinall(&[polite, twice], None, None).unwrap();
    });
    assert_eq!(logged(log::Level::Warn, "blocks-twice").len(), 2);
    assert!(logged(log::Level::Warn, "polite-switcher").is_empty());
}

/// The monitor is off by default: nothing is reported.
#[test]
fn monitor_is_off_by_default() {
    let _serial = serial();
    logger();
    if std::env::var_os("GREENLET_MONITOR").is_some() {
        return; // switched on from outside: this test means nothing then
    }
    on_fresh_thread(|| {
        let h = SpawnBuilder::new()
            .name("unmonitored-spinner")
            .spawn(|| busy_loop(Duration::from_millis(200)))
            .unwrap();
        h.join().unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(logged(log::Level::Warn, "unmonitored-spinner").is_empty());
}

/// Regression: the monitor's watchdog thread outlived its hub's thread and then reported the
/// last greenlet of the dead thread as blocking the hub. It now stops with the hub.
#[test]
fn monitor_stops_with_its_thread() {
    let _serial = serial();
    logger();
    let main_id = on_fresh_thread(|| {
        HubBuilder::new().monitor(Duration::from_millis(100)).init();
        greenlet::sleep(Duration::from_millis(1)); // the hub resumes main: the watchdog starts
        greenlet::current().id()
    });
    std::thread::sleep(Duration::from_millis(500));
    let found = logged(log::Level::Warn, &format!("(#{main_id})"));
    assert!(found.is_empty(), "a dead thread was reported: {found:?}");
}

/// The `GREENLET_MONITOR` environment variable switches the monitor on (here with a 50 ms
/// threshold) for hubs created afterwards. Runs in a child process with the variable set and
/// reads the warning from the child's stderr.
#[test]
fn monitor_switched_on_by_the_environment() {
    let _serial = serial();
    let run = util::run_test_in_child_with("monitor_env_child", &[("GREENLET_MONITOR", "50")]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("env-busy"))
        .unwrap_or_else(|| panic!("no warning in:\n{}", run.stderr));
    assert!(
        warning.starts_with("[WARN]") && warning.contains("blocked the hub"),
        "{warning}"
    );
    assert!(warning.contains("50ms"), "{warning}");
}

/// The body of [`monitor_switched_on_by_the_environment`], run only in its child process.
#[test]
fn monitor_env_child() {
    if !util::in_child() {
        return;
    }
    logger();
    let h = SpawnBuilder::new()
        .name("env-busy")
        .spawn(|| busy_loop(Duration::from_millis(300)))
        .unwrap();
    h.join().unwrap();
    wait_logged(log::Level::Warn, "env-busy");
}
