//! A greenlet that overflows its stack aborts the process with one clear line on stderr (which
//! greenlet, its stack size, how to give it more) instead of a bare segmentation fault.
//!
//! Each test re-runs this test binary in a child process (`GREENLET_OVERFLOW_CHILD=<test>`
//! selects the child role), lets the child overflow, and checks how it died.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

/// Environment variable that selects the child role of a test.
const CHILD_ENV: &str = "GREENLET_OVERFLOW_CHILD";

/// Whether this process is the child of test `name`. Children do not dump core.
fn is_child(name: &str) -> bool {
    if std::env::var(CHILD_ENV).as_deref() != Ok(name) {
        return false;
    }
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    true
}

/// Re-runs this test binary, running only test `name`, in its child role.
fn run_child(name: &str) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .expect("failed to run the child test process")
}

/// The child's status and output, for assertion messages.
fn describe(output: &Output) -> String {
    format!(
        "status {:?} (signal {:?})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        output.status.signal(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts the child aborted after printing exactly one overflow line containing `expected`.
fn assert_overflow_reported(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(output)
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("stack overflow in greenlet"))
        .collect();
    assert_eq!(lines.len(), 1, "one overflow line: {}", describe(output));
    for needle in expected {
        assert!(
            lines[0].contains(needle),
            "missing {needle:?}: {}",
            describe(output)
        );
    }
}

/// Recurses without bound; each frame holds an array the optimiser cannot remove, and the
/// call is not in tail position, so this overflows in release builds too.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 512]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(std::hint::black_box(frame)[depth as usize % 512] as u64)
}

#[test]
fn unbounded_recursion_in_a_greenlet_aborts_with_a_clear_message() {
    if is_child("unbounded_recursion_in_a_greenlet_aborts_with_a_clear_message") {
        let g = greenlet::Builder::new()
            .name("deep")
            .stack_size(32 * 1024)
            .build(move |_: ()| recurse(0))
            .expect("build");
        let _: Result<u64, greenlet::SwitchError> = g.switch(());
        println!("the greenlet returned instead of overflowing");
        std::process::exit(0);
    }
    let output = run_child("unbounded_recursion_in_a_greenlet_aborts_with_a_clear_message");
    assert_overflow_reported(
        &output,
        &[
            "greenlet: stack overflow in greenlet #",
            "\"deep\"",
            "(stack size 32 KiB)",
            "stack_size",
        ],
    );
}

#[test]
fn overflow_of_an_unnamed_greenlet_names_its_id() {
    if is_child("overflow_of_an_unnamed_greenlet_names_its_id") {
        let g = greenlet::Greenlet::new(|_: ()| recurse(0));
        println!("greenlet id {}", g.id());
        let _: Result<u64, greenlet::SwitchError> = g.switch(());
        std::process::exit(0);
    }
    let output = run_child("overflow_of_an_unnamed_greenlet_names_its_id");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // libtest prints "test <name> ... " without a newline before the child's own output.
    let id = stdout
        .split("greenlet id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("child did not print its greenlet id: {}", describe(&output)));
    let expected_size = format!("(stack size {} KiB)", greenlet::DEFAULT_STACK_SIZE / 1024);
    assert_overflow_reported(&output, &[&format!("in greenlet #{id} ("), &expected_size]);
}

#[test]
fn overflow_in_a_spawned_greenlet_on_another_thread_is_reported() {
    if is_child("overflow_in_a_spawned_greenlet_on_another_thread_is_reported") {
        let thread = std::thread::spawn(|| {
            let handle = greenlet::SpawnBuilder::new()
                .name("worker-7")
                .stack_size(128 * 1024)
                .spawn(|| recurse(0))
                .expect("spawn");
            let _ = handle.join();
        });
        let _ = thread.join();
        std::process::exit(0);
    }
    let output = run_child("overflow_in_a_spawned_greenlet_on_another_thread_is_reported");
    assert_overflow_reported(&output, &["\"worker-7\"", "(stack size 128 KiB)"]);
}

#[test]
fn thread_stack_overflow_is_still_reported_by_std() {
    if is_child("thread_stack_overflow_is_still_reported_by_std") {
        // Start the greenlet runtime (and its SIGSEGV handler) first.
        let g = greenlet::Greenlet::new(|x: u32| x + 1);
        assert_eq!(g.switch::<u32, u32>(1).unwrap(), 2);
        let _ = std::thread::Builder::new()
            .name("plain-thread".into())
            .stack_size(256 * 1024)
            .spawn(|| {
                // A greenlet runtime on this thread too, but the overflow is on the thread's own stack.
                let g = greenlet::Greenlet::new(|x: u32| x + 1);
                assert_eq!(g.switch::<u32, u32>(1).unwrap(), 2);
                recurse(0)
            })
            .unwrap()
            .join();
        std::process::exit(0);
    }
    let output = run_child("thread_stack_overflow_is_still_reported_by_std");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("thread 'plain-thread'"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("has overflowed its stack"),
        "{}",
        describe(&output)
    );
    assert!(
        !stderr.contains("stack overflow in greenlet"),
        "{}",
        describe(&output)
    );
}

#[test]
fn bigger_stack_fixes_the_overflow() {
    // The same bounded recursion that needs ~100 frames of 512+ bytes fits in 1 MiB.
    #[inline(never)]
    fn bounded(depth: u64) -> u64 {
        let frame = std::hint::black_box([depth as u8; 512]);
        let below = if depth == 0 { 0 } else { bounded(depth - 1) };
        below + std::hint::black_box(frame)[0] as u64
    }
    let g = greenlet::Builder::new()
        .name("deep-enough")
        .stack_size(1024 * 1024)
        .build(|n: u64| bounded(n))
        .unwrap();
    assert_eq!(g.stack_size(), 1024 * 1024);
    assert_eq!(g.switch::<u64, u64>(100).unwrap(), (0..=100).sum::<u64>());
}
