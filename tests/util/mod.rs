//! Helpers shared by the integration tests: drop counters, memory readings, thrown-error
//! inspection and the example binaries.
//!
//! Every test file includes this with `mod util;` and uses only part of it.
#![allow(dead_code)]

pub mod reads;
pub mod resp;
pub mod servers;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;

/// Counts how many of its [`Token`]s have been dropped.
#[derive(Debug, Clone, Default)]
pub struct DropCounter(Rc<Cell<usize>>);

impl DropCounter {
    /// A counter at zero.
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A value that bumps this counter when it is dropped.
    pub fn token(&self) -> Token {
        Token(self.0.clone())
    }

    /// How many tokens have been dropped so far.
    pub fn dropped(&self) -> usize {
        self.0.get()
    }
}

/// Bumps its [`DropCounter`] when dropped.
#[derive(Debug)]
pub struct Token(Rc<Cell<usize>>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Runs a closure when dropped: a destructor with arbitrary behaviour.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// An ordered record of events, shared between greenlets.
#[derive(Debug, Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    /// An empty log.
    pub fn new() -> Log {
        Log::default()
    }

    /// Appends an event.
    pub fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// A plain error type to throw into greenlets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SomeError(pub &'static str);

impl fmt::Display for SomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "some error: {}", self.0)
    }
}

impl Error for SomeError {}

/// The error a panic payload carries when it is an error thrown with `Greenlet::throw` and
/// caught inside the greenlet with `catch_unwind`.
///
/// The thrown error travels as a `Box<dyn Error + Send + Sync>` panic payload (see the core-bug
/// note in `tests/greenlet.rs`, `thrown_error_is_inspectable_when_caught`).
pub fn thrown_error(payload: &(dyn Any + Send)) -> Option<&(dyn Error + Send + Sync + 'static)> {
    payload
        .downcast_ref::<Box<dyn Error + Send + Sync>>()
        .map(|b| &**b)
}

/// The resident set size of this process in KiB (`VmRSS` of `/proc/self/status`).
pub fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// The path of the example `name`, built (or found up to date) by `cargo build --example` in
/// the test's own target directory and profile.
///
/// `cargo test` builds the examples, but `cargo test --test greenlet` builds only that target,
/// so the test asks cargo itself; cargo does not hold its build lock while tests run. Test
/// executables live in `<target>/<profile>/deps/`, examples in `<target>/<profile>/examples/`.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable in <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "--example", name, "--target-dir"])
        .arg(target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    // Built the way the test was: with the monkey hooks when the test has them.
    if cfg!(feature = "monkey") {
        cmd.args(["--features", "monkey"]);
    }
    let out = cmd.output().expect("run cargo build --example");
    assert!(
        out.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example binary not found at {}",
        path.display()
    );
    path
}

/// Runs the example `name` with `args`; returns its stdout, asserting that it succeeded.
pub fn run_example(name: &str, args: &[&str]) -> String {
    let out = Command::new(example_binary(name))
        .args(args)
        .output()
        .expect("run example");
    assert!(
        out.status.success(),
        "example {name} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// Serialises the tests that measure the process's memory, so that one's allocations do not
/// show up in another's reading. Poisoning (a failed memory test) is ignored.
pub fn memory_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this process is a child started by [`run_test_in_child`].
pub fn in_child() -> bool {
    std::env::var_os("GREENLET_TEST_CHILD").is_some()
}

/// Runs the test `name` of this test executable in a child process (where
/// [`in_child`] is true), so that a crash it may cause (a stack overflow, an abort) fails this
/// test instead of killing the whole test run. Returns the child's output.
pub fn run_test_in_child(name: &str) -> std::process::Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env("GREENLET_TEST_CHILD", "1")
        .output()
        .expect("run the test executable")
}

// ---------------------------------------------------------------------------------------------
// Not hanging: bounds that turn a hang into a failure (never an assertion on speed).

/// A bound that no test comes near unless it hangs.
pub const NOT_HANGING: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `f` on a fresh OS thread (so with a fresh hub) and returns its result; fails the test
/// if it has not finished within [`NOT_HANGING`], instead of hanging the test run.
pub fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("fresh-hub".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .expect("spawn a test thread");
    match rx.recv_timeout(NOT_HANGING) {
        Ok(Ok(v)) => {
            thread.join().expect("test thread");
            v
        }
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the test hung: no result within {NOT_HANGING:?}"),
    }
}

/// For a test that must run in a child process of its own (a crash fails only it; fresh
/// process-wide state): in the parent, runs the test `name` in a child, fails if the child
/// failed, and returns false; in the child, returns true, and the test goes on with its body.
pub fn in_child_process(name: &str) -> bool {
    if in_child() {
        return true;
    }
    let out = run_test_in_child(name);
    assert!(
        out.status.success(),
        "the child test failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// What a child test run printed, and whether it passed.
#[derive(Debug)]
pub struct ChildRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// [`run_test_in_child`] with `envs` set in the child (fresh process-wide state: thread pool,
/// logger, environment), killing the child and failing if it hangs past [`NOT_HANGING`].
pub fn run_test_in_child_with(name: &str, envs: &[(&str, &str)]) -> ChildRun {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env("GREENLET_TEST_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start the child test process");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(NOT_HANGING) {
        Ok(out) => {
            let out = out.expect("the child's output");
            ChildRun {
                success: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            // SAFETY: plain FFI call; `pid` is our child, not reaped yet (its waiter thread is
            // still blocked in wait).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("the child test {name} hung: no result within {NOT_HANGING:?}");
        }
    }
}

// Network helpers (tests/net.rs, tests/select.rs, tests/net_faults.rs).

/// A connected green TCP pair over loopback: (client, server side).
pub fn tcp_pair() -> (greenlet::net::TcpStream, greenlet::net::TcpStream) {
    let listener = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = greenlet::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// A green listener on a free loopback port, and its address.
pub fn listener() -> (greenlet::net::TcpListener, std::net::SocketAddr) {
    let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A descriptor number that is not open (a freshly closed one could be reused at once by
/// another test thread).
pub fn closed_fd() -> std::os::fd::RawFd {
    (5000..)
        // SAFETY: F_GETFD only queries the descriptor table.
        .find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0)
        .unwrap()
}

/// Open descriptors of this process (entries of `/proc/self/fd`).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A unique path for a Unix socket in a fresh temporary directory (removed on drop).
pub struct TempPath {
    pub dir: PathBuf,
    pub path: PathBuf,
}

impl TempPath {
    pub fn new(tag: &str) -> TempPath {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "greenlet-test-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        TempPath { dir, path }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A short pause for "nothing should happen meanwhile" checks.
pub const SHORT: std::time::Duration = std::time::Duration::from_millis(30);

/// A greenlet that counts loop turns of the hub (sleeping 1 ms between counts) until dropped:
/// a test that waits in some call and then sees the count grow proves the hub kept running
/// other greenlets during that wait.
pub struct Ticker {
    ticks: Rc<Cell<u64>>,
    handle: Option<greenlet::JoinHandle<()>>,
}

impl Ticker {
    /// Starts the ticking greenlet on this thread's hub.
    pub fn start() -> Ticker {
        let ticks: Rc<Cell<u64>> = Rc::default();
        let t = ticks.clone();
        let handle = greenlet::spawn(move || {
            loop {
                greenlet::sleep(std::time::Duration::from_millis(1));
                t.set(t.get() + 1);
            }
        });
        Ticker {
            ticks,
            handle: Some(handle),
        }
    }

    /// How many times it has ticked so far.
    pub fn ticks(&self) -> u64 {
        self.ticks.get()
    }

    /// The shared count itself, for greenlets that watch the ticks while the test holds the
    /// `Ticker`.
    pub fn counter(&self) -> Rc<Cell<u64>> {
        self.ticks.clone()
    }

    /// Parks the calling greenlet until the ticker has ticked `n` more times.
    pub fn wait_ticks(&self, n: u64) {
        let target = self.ticks() + n;
        while self.ticks() < target {
            greenlet::sleep(std::time::Duration::from_millis(1));
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.kill();
        }
    }
}

/// Runs `cat` with green pipes: a greenlet writes `data` into its stdin only once `ticker`
/// has ticked `n` more times, while the calling greenlet reads its stdout to the end; returns
/// what came back. With pipes that blocked the thread this could not finish (the read would
/// block the hub before the writer ever ran), and when it returns the ticker has ticked.
pub fn cat_fed_after_ticks(ticker: &Ticker, n: u64, data: Vec<u8>) -> Vec<u8> {
    use greenlet::process::{Command, Stdio};
    use std::io::{Read, Write};
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start cat");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let counter = ticker.counter();
    let target = ticker.ticks() + n;
    let writer = greenlet::spawn(move || {
        while counter.get() < target {
            greenlet::sleep(std::time::Duration::from_millis(1));
        }
        stdin.write_all(&data).expect("write to cat");
        // Dropping stdin closes it: cat sees the end.
    });
    let mut back = Vec::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut back)
        .expect("read from cat");
    writer.join().expect("the writer finished");
    assert!(child.wait().expect("wait for cat").success());
    assert!(ticker.ticks() >= target, "the ticker ran meanwhile");
    back
}

// ---------------------------------------------------------------------------------------------
// Generic waits: gevent's `AbstractGenericWaitTestCase` and `AbstractGenericGetTestCase`, which
// gevent applies to each of its blocking calls. A `wait` closure makes the call under test with
// the timeout it is given (`None`: the call's form without a timeout) and returns whether the
// call gave up (its own timeout error). Only lower bounds on time are asserted, never upper
// ones.

/// How long the generic waits let a call wait before it should give up.
pub const WAIT_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// gevent's `test_returns_none_after_timeout` / `test_raises_timeout_number`: the call with a
/// timeout gives up, and not before that time.
pub fn assert_gives_up_at_its_timeout(wait: impl FnOnce(Option<std::time::Duration>) -> bool) {
    let start = std::time::Instant::now();
    assert!(wait(Some(WAIT_TICK)), "the call did not time out");
    assert!(
        start.elapsed() >= WAIT_TICK,
        "the call gave up after {:?}, before its timeout",
        start.elapsed()
    );
}

/// gevent's `test_outer_timeout_is_not_lost`: the call waits with a long timeout of its own
/// inside a shorter `with_timeout`; the outer deadline ends the call, and `with_timeout` says
/// that it was the one that fired.
pub fn assert_outer_timeout_is_not_lost(wait: impl FnOnce(Option<std::time::Duration>) -> bool) {
    let gave_up = Cell::new(false);
    let start = std::time::Instant::now();
    let r = greenlet::with_timeout(WAIT_TICK, || gave_up.set(wait(Some(NOT_HANGING))));
    assert!(r.is_err(), "with_timeout did not report its deadline");
    assert!(
        gave_up.get(),
        "the call did not give up at the outer deadline"
    );
    assert!(start.elapsed() >= WAIT_TICK && start.elapsed() < NOT_HANGING);
}

/// gevent's `test_raises_timeout_Timeout`: the call without a timeout of its own gives up at
/// an enclosing `Timeout`, which then says it expired.
pub fn assert_gives_up_at_an_enclosing_timeout(
    wait: impl FnOnce(Option<std::time::Duration>) -> bool,
) {
    let t = greenlet::Timeout::start(Some(WAIT_TICK));
    assert!(wait(None), "the call did not give up at the Timeout");
    assert!(t.is_expired());
}
