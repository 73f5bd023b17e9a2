//! What happens to parked greenlets when the process exits (this test has its own `main`: the
//! behaviour under test is that of a process's main thread, which libtest keeps for itself).
//!
//! The parent runs this binary again as a child in each mode and reads what the child's
//! destructors printed. At process exit the main thread's suspended greenlets are abandoned, not
//! unwound (as std leaves other threads' stacks); an ordinary thread that ends still unwinds
//! its greenlets (their destructors run).

use std::process::Command;
use std::time::Duration;

/// Set in the child; its value names the mode.
const CHILD: &str = "GREENLET_PROCESS_EXIT_CHILD";

/// Prints its word when dropped: a destructor on a parked greenlet's stack.
struct Says(&'static str);

impl Drop for Says {
    fn drop(&mut self) {
        println!("{}", self.0);
    }
}

/// Parks `n` greenlets, each holding a `Says(word)` on its stack, and lets them park.
fn park_some(n: usize, word: &'static str) -> Vec<greenlet::JoinHandle<()>> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            greenlet::spawn(move || {
                let _says = Says(word);
                greenlet::sleep(Duration::from_secs(3600));
            })
        })
        .collect();
    greenlet::yield_now();
    assert!(handles.iter().all(|h| !h.is_ready()));
    handles
}

fn child(mode: &str) {
    match mode {
        // main returns with parked greenlets (their handles dropped: gevent's abandoned).
        "return" => {
            drop(park_some(1000, "unwound-on-main"));
            println!("main-done");
        }
        // std::process::exit from a greenlet of the main thread.
        "exit-in-greenlet" => {
            let _parked = park_some(10, "unwound-on-main");
            let h = greenlet::spawn(|| {
                println!("main-done");
                std::process::exit(0)
            });
            let _ = h.join();
        }
        // An ordinary thread ends with parked greenlets: they unwind, their destructors run.
        "thread" => {
            std::thread::spawn(|| drop(park_some(3, "unwound-on-thread")))
                .join()
                .expect("thread ends normally");
            println!("main-done");
        }
        other => panic!("unknown mode {other}"),
    }
}

/// Runs the child in `mode`; returns its standard output, after checking it exited with 0.
fn run_child(mode: &str) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(CHILD, mode)
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {mode} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Regression: exiting a process with parked greenlets on its main thread used to unwind every
/// one of them first (about 15 µs each: 15 s for a million). Now they are abandoned.
fn main_thread_greenlets_are_abandoned_at_process_exit() {
    for mode in ["return", "exit-in-greenlet"] {
        let out = run_child(mode);
        assert!(out.contains("main-done"), "{mode}: {out}");
        assert!(
            !out.contains("unwound-on-main"),
            "{mode}: a parked greenlet of the main thread was unwound at process exit:\n{out}"
        );
    }
}

/// Thread exit, not process exit: the thread's parked greenlets still unwind.
fn a_thread_that_ends_still_unwinds_its_greenlets() {
    let out = run_child("thread");
    assert_eq!(out.matches("unwound-on-thread").count(), 3, "{out}");
    assert!(out.contains("main-done"), "{out}");
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD) {
        child(&mode);
        return;
    }
    let tests: [(&str, fn()); 2] = [
        (
            "main_thread_greenlets_are_abandoned_at_process_exit",
            main_thread_greenlets_are_abandoned_at_process_exit,
        ),
        (
            "a_thread_that_ends_still_unwinds_its_greenlets",
            a_thread_that_ends_still_unwinds_its_greenlets,
        ),
    ];
    // libtest's arguments (a filter, --nocapture, ...) are accepted and a filter is honoured.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        test();
        println!("test {name} ... ok");
    }
}
