//! `greenlet::process`: children waited for by parking the greenlet (pidfd, and `SIGCHLD` in a
//! child test process run with `GREENLET_NO_PIDFD=1`), green pipes, std's defaults and errors.
//! In the spirit of gevent's `test__subprocess.py`.
//!
//! Every wait here ends because a greenlet that first waited for a ticker's ticks did
//! something (created a file the child waits for, wrote to its stdin, killed it): the ticks
//! prove that the hub ran other greenlets while the waiter was parked, without timing.

mod util;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use greenlet::process::{Command, Stdio};
use util::{NOT_HANGING, Ticker, on_fresh_thread};

/// A fresh directory for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let t = util::TempPath::new(tag);
        let dir = t.dir.clone();
        std::mem::forget(t);
        Dir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shell command that waits until `flag` exists (bounded: it gives up after a minute).
fn wait_for_file(flag: &Path) -> String {
    format!(
        "n=0; while [ ! -e '{}' ] && [ $n -lt 6000 ]; do sleep 0.01; n=$((n+1)); done",
        flag.display()
    )
}

/// Spawns a greenlet that waits for `n` ticks of `ticker`, then creates `flag`.
fn create_after_ticks(ticker: &Ticker, n: u64, flag: PathBuf) -> greenlet::JoinHandle<u64> {
    let target = ticker.ticks() + n;
    let t = ticker_handle(ticker);
    greenlet::spawn(move || {
        while t() < target {
            greenlet::sleep(Duration::from_millis(1));
        }
        std::fs::write(&flag, "").unwrap();
        t()
    })
}

/// A closure reading the ticker's count (the Ticker itself stays with the test).
fn ticker_handle(ticker: &Ticker) -> impl Fn() -> u64 + 'static {
    let counter = ticker.counter();
    move || counter.get()
}

// ---- waiting for the exit ----

/// `output()` parks the greenlet until the child exits; a ticker runs meanwhile, and the child
/// exits only because another greenlet ran.
pub fn output_parks_body() {
    let dir = Dir::new("proc-output");
    let flag = dir.file("go");
    let ticker = Ticker::start();
    let creator = create_after_ticks(&ticker, 5, flag.clone());
    let out = Command::new("sh")
        .args(["-c", &format!("{}; echo done", wait_for_file(&flag))])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"done\n");
    assert!(out.stderr.is_empty());
    assert!(creator.get().unwrap() >= 5);
    assert!(ticker.ticks() >= 5, "the ticker ran while output() waited");
}

#[test]
fn output_parks_while_a_ticker_keeps_running() {
    on_fresh_thread(output_parks_body);
}

/// `status()`, `wait`, `try_wait` and `wait_timeout`: the exit code comes back, and a wait that
/// times out returns `None` while the ticker runs.
pub fn wait_forms_body() {
    let dir = Dir::new("proc-wait");
    let flag = dir.file("go");
    let ticker = Ticker::start();
    let mut child = Command::new("sh")
        .args(["-c", &format!("{}; exit 7", wait_for_file(&flag))])
        .spawn()
        .unwrap();
    assert!(child.try_wait().unwrap().is_none());
    let before = ticker.ticks();
    assert!(
        child
            .wait_timeout(Duration::from_millis(20))
            .unwrap()
            .is_none()
    );
    assert!(
        ticker.ticks() > before,
        "the ticker ran during wait_timeout"
    );
    let creator = create_after_ticks(&ticker, 3, flag);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    assert!(creator.get().unwrap() >= 3);
    // Waiting again gives the same status, as std.
    assert_eq!(child.wait().unwrap().code(), Some(7));
    assert_eq!(child.try_wait().unwrap().map(|s| s.code()), Some(Some(7)));
    assert_eq!(
        Command::new("sh")
            .args(["-c", "exit 3"])
            .status()
            .unwrap()
            .code(),
        Some(3)
    );
}

#[test]
fn wait_try_wait_wait_timeout_and_status() {
    on_fresh_thread(wait_forms_body);
}

/// Ten children started at once run at the same time: each child exits only once all ten
/// have started (it waits for ten files, each created by one child), so if waiting for one
/// blocked the hub, the next would never be spawned and the first would give up and report
/// fewer than ten.
pub fn ten_children_body() {
    let dir = Dir::new("proc-ten");
    let d = dir.0.display().to_string();
    let ticker = Ticker::start();
    let script = format!(
        "touch '{d}/started-'$0; n=0; \
         while [ $(ls '{d}' | wc -l) -lt 10 ] && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done; \
         ls '{d}' | wc -l"
    );
    let children: Vec<_> = (0..10)
        .map(|i| {
            let script = script.clone();
            greenlet::spawn(move || {
                Command::new("sh")
                    .args(["-c", &script, &i.to_string()])
                    .output()
            })
        })
        .collect();
    for h in children {
        let out = h.get().unwrap().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "10",
            "every child saw all ten running"
        );
    }
    assert!(ticker.ticks() > 0);
}

#[test]
fn ten_children_started_at_once_overlap() {
    on_fresh_thread(ten_children_body);
}

// ---- bad input ----

/// A program that does not exist is std's `NotFound`, from every way of starting it; one that
/// is not executable is `PermissionDenied`.
#[test]
fn missing_program_is_not_found() {
    on_fresh_thread(|| {
        let mut cmd = Command::new("/no/such/program-greenlet");
        assert_eq!(
            cmd.spawn().unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(
            cmd.output().unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        assert_eq!(
            cmd.status().unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        let dir = Dir::new("proc-noexec");
        let file = dir.file("not-executable");
        std::fs::write(&file, "echo hi").unwrap();
        assert_eq!(
            Command::new(&file).status().unwrap_err().kind(),
            std::io::ErrorKind::PermissionDenied
        );
    });
}

/// A child killed by a signal: `kill()` gives `SIGKILL`, a child that signals itself gives its
/// signal; neither is a success nor has a code.
pub fn killed_by_signal_body() {
    let ticker = Ticker::start();
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id();
    let killer = {
        let t = ticker_handle(&ticker);
        greenlet::spawn(move || {
            let target = t() + 3;
            while t() < target {
                greenlet::sleep(Duration::from_millis(1));
            }
            // SAFETY: `pid` is our child, not reaped yet (the test waits for it).
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
        })
    };
    let status = child.wait().unwrap();
    killer.join().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(!status.success());
    assert_eq!(status.code(), None);
    assert!(ticker.ticks() >= 3);

    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    // Killing a child that has been waited for is not an error, as std.
    child.kill().unwrap();

    let out = Command::new("sh")
        .args(["-c", "echo before; kill -USR1 $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGUSR1));
    assert_eq!(out.stdout, b"before\n");
}

#[test]
fn child_killed_by_a_signal() {
    on_fresh_thread(killed_by_signal_body);
}

/// A pipe closed early: writing to a child that exited without reading is `BrokenPipe`; a
/// child that closes its stdout while it runs on gives end-of-file at once.
#[test]
fn pipe_closed_early() {
    on_fresh_thread(|| {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Wait for the exit without closing stdin (`wait` would close it).
        while child.try_wait().unwrap().is_none() {
            greenlet::sleep(Duration::from_millis(1));
        }
        let big = vec![b'x'; 1 << 20];
        let e = stdin.write_all(&big).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);

        let dir = Dir::new("proc-closed");
        let flag = dir.file("go");
        let mut child = Command::new("sh")
            .args([
                "-c",
                &format!("echo early; exec >&-; {}", wait_for_file(&flag)),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "early\n");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child runs on after closing its stdout"
        );
        std::fs::write(&flag, "").unwrap();
        assert!(child.wait().unwrap().success());
    });
}

// ---- pipes ----

/// Green pipes in both directions: a greenlet writes 4 MiB into `cat`, after the ticker ticked,
/// while main reads it back (see `util::cat_fed_after_ticks`).
pub fn pipes_body() {
    let ticker = Ticker::start();
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let back = util::cat_fed_after_ticks(&ticker, 3, data.clone());
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

/// The child's stderr, read by main while a greenlet feeds the child after the ticker ticked.
pub fn stderr_body() {
    let ticker = Ticker::start();
    let mut child = Command::new("sh")
        .args(["-c", "cat >&2"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let counter = ticker.counter();
    greenlet::spawn(move || {
        while counter.get() < 3 {
            greenlet::sleep(Duration::from_millis(1));
        }
        stdin.write_all(b"to stderr").unwrap();
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err, "to stderr");
    assert!(ticker.ticks() >= 3);
    assert!(child.wait().unwrap().success());
}

#[test]
fn stderr_is_green() {
    on_fresh_thread(stderr_body);
}

#[test]
fn pipes_are_green_both_ways() {
    on_fresh_thread(pipes_body);
}

/// A child's stdout handed to another child as its stdin (a shell pipeline), in blocking mode
/// again for it; and stderr read alongside stdout by `wait_with_output`.
#[test]
fn pipeline_and_wait_with_output() {
    on_fresh_thread(|| {
        let mut first = Command::new("echo")
            .arg("shout")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let second = Command::new("tr")
            .args(["a-z", "A-Z"])
            .stdin(first.stdout.take().unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = second.wait_with_output().unwrap();
        assert_eq!(out.stdout, b"SHOUT\n");
        assert!(first.wait().unwrap().success());

        // Both streams at once, each larger than a pipe's buffer: no deadlock.
        let out = Command::new("sh")
            .args([
                "-c",
                "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; echo end >&2",
            ])
            .output()
            .unwrap();
        assert_eq!(out.stdout.len(), 300_000);
        assert_eq!(out.stderr.len(), 300_004);
        assert!(out.stderr.ends_with(b"end\n"));
    });
}

/// std's stream defaults: `output` pipes stdout and stderr and gives an empty stdin; a later
/// `spawn` of the same command inherits the parent's stdout again; configured streams are kept.
#[test]
fn stream_defaults_follow_std() {
    on_fresh_thread(|| {
        let dir = Dir::new("proc-defaults");
        let seen = dir.file("stdout-was");
        // The child reads its stdin to the end, then says where its stdout goes.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "cat; t=$(readlink /proc/$$/fd/1); echo \"$t\" > \"$0\"",
        ])
        .arg(&seen);
        let out = cmd.output().unwrap();
        assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
        assert!(std::fs::read_to_string(&seen).unwrap().starts_with("pipe:"));
        let mut child = cmd.stdin(Stdio::null()).spawn().unwrap();
        assert!(child.stdout.is_none() && child.stderr.is_none() && child.stdin.is_none());
        assert!(child.wait().unwrap().success());
        let ours = std::fs::read_link("/proc/self/fd/1").unwrap();
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap().trim(),
            ours.display().to_string(),
            "spawn after output inherits stdout again"
        );
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        assert!(child.stdout.is_some());
        assert!(child.wait().unwrap().success());
        assert_eq!(cmd.get_program(), "sh");
        assert_eq!(cmd.get_args().count(), 3);
        let dbg = format!("{cmd:?}");
        assert!(dbg.contains("sh"), "{dbg}");
    });
}

// ---- interruptions ----

/// A `Timeout` cuts `output()` short with `TimedOut`, and the child it owned is killed and
/// reaped rather than left running.
#[test]
fn output_cut_short_by_a_timeout_kills_its_child() {
    on_fresh_thread(|| {
        let dir = Dir::new("proc-timeout");
        let pidfile = dir.file("pid");
        let script = format!("echo $$ > '{}'; exec sleep 60", pidfile.display());
        let r = greenlet::with_timeout(Duration::from_millis(50), || {
            Command::new("sh").args(["-c", &script]).output()
        });
        match r {
            Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
            Err(_) => {}
            Ok(Ok(out)) => panic!("sleep 60 finished? {out:?}"),
        }
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed and reaped on the thread pool: the process disappears.
        let deadline = std::time::Instant::now() + NOT_HANGING;
        while Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "child {pid} still there"
            );
            greenlet::sleep(Duration::from_millis(5));
        }
    });
}

/// A greenlet killed while it waits for a child unwinds (its destructors run: here one that
/// kills the child, which a dropped `Child` does not do, as in std).
#[test]
fn killing_a_waiting_greenlet_unwinds_it() {
    on_fresh_thread(|| {
        let waiter = greenlet::spawn(|| {
            let mut child = Command::new("sleep").arg("60").spawn().unwrap();
            let pid = child.id();
            let _guard = util::OnDrop(move || {
                // SAFETY: our own child, not reaped: kill it so it does not outlive the test.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            });
            child.wait()
        });
        greenlet::sleep(Duration::from_millis(10));
        waiter.kill().unwrap();
        assert!(matches!(waiter.get(), Err(greenlet::JoinError::Killed)));
    });
}

/// The `SIGCHLD` watch, for kernels without `pidfd_open`: the same bodies in a child test
/// process run with `GREENLET_NO_PIDFD=1`.
#[test]
fn sigchld_fallback_without_pidfd() {
    let run = util::run_test_in_child_with("sigchld_fallback_child", &[("GREENLET_NO_PIDFD", "1")]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("watch: SIGCHLD"), "{}", run.stdout);
    assert!(run.stdout.contains("sigchld bodies ok"), "{}", run.stdout);
}

/// The body of [`sigchld_fallback_without_pidfd`], run only in its child process.
#[test]
fn sigchld_fallback_child() {
    if !util::in_child() {
        return;
    }
    on_fresh_thread(|| {
        let mut child = Command::new("true").spawn().unwrap();
        let dbg = format!("{child:?}");
        assert!(dbg.contains("SIGCHLD"), "{dbg}");
        println!("watch: SIGCHLD");
        assert!(child.wait().unwrap().success());
        output_parks_body();
        wait_forms_body();
        ten_children_body();
        killed_by_signal_body();
        pipes_body();
        stderr_body();
    });
    println!("sigchld bodies ok");
}

/// With a pidfd (this kernel has one), the watch says so.
#[test]
fn pidfd_is_used_where_the_kernel_has_it() {
    on_fresh_thread(|| {
        let mut child = Command::new("true").spawn().unwrap();
        let dbg = format!("{child:?}");
        child.wait().unwrap();
        // SAFETY: a plain system call probe with an invalid pid; no memory is touched.
        let has_pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, 0, 0) } >= 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS);
        if has_pidfd && std::env::var_os("GREENLET_NO_PIDFD").is_none() {
            assert!(dbg.contains("pidfd"), "{dbg}");
        } else {
            println!("note: no pidfd_open here: the SIGCHLD watch is in use");
        }
    });
}
