//! What happens to a thread's greenlets and runtime when the thread ends: every greenlet that
//! has not finished is destroyed (unwound, its destructors run), main's greenlet-locals are
//! dropped while the hub still exists, the thread's stacks go back to the OS, and destructors
//! that run during or after all that may use the crate without aborting the process.
//!
//! The tests that could abort run in a child process, so that an abort fails one test only.

mod util;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use greenlet::sync::{Event, Lock};
use greenlet::{Greenlet, JoinError};

/// Runs test `name` in a child process when not already in one; returns whether the caller is
/// the child (and should run the test body).
fn in_child_or_run(name: &str) -> bool {
    if util::in_child() {
        return true;
    }
    let run = util::run_test_in_child_with(name, &[]);
    assert!(
        run.success,
        "the child test failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    false
}

/// Regression (issue 8, defect 3: abort at thread exit): a main greenlet's `greenlet_local!`
/// value whose `Drop` sleeps, spawns and joins. Main's locals used to be dropped with the
/// runtime after the hub was gone: `with_hub` panicked inside a thread-local destructor and
/// Rust aborted. Now they are dropped by the teardown while the hub exists; blocking there
/// fails at once, cleanly, and a greenlet spawned there never runs.
#[test]
fn a_main_local_that_sleeps_or_spawns_on_drop_does_not_abort_at_thread_exit() {
    static RAN: AtomicUsize = AtomicUsize::new(0);
    static NEVER_RAN: AtomicUsize = AtomicUsize::new(0);
    struct Blocks;
    impl Drop for Blocks {
        fn drop(&mut self) {
            greenlet::sleep(Duration::from_millis(1));
            greenlet::yield_now();
            // Spawned while the thread exits: it never runs (it is killed before it starts).
            let h = greenlet::spawn(|| 1);
            if let Err(JoinError::Killed) = h.get() {
                NEVER_RAN.fetch_add(1, Ordering::SeqCst);
            }
            // Blocking fails at once, cleanly.
            let e = greenlet::sync::Event::new().wait().unwrap_err();
            assert!(e.to_string().contains("exiting"), "{e}");
            RAN.fetch_add(1, Ordering::SeqCst);
        }
    }
    greenlet::greenlet_local! {
        static BLOCKS: RefCell<Option<Blocks>> = RefCell::new(None);
    }
    if !in_child_or_run("a_main_local_that_sleeps_or_spawns_on_drop_does_not_abort_at_thread_exit")
    {
        return;
    }
    std::thread::spawn(|| {
        BLOCKS.with(|b| *b.borrow_mut() = Some(Blocks));
        // The hub has run (a spawned greenlet parked on it), as in a real program.
        let h = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
        greenlet::yield_now();
        assert!(!h.is_ready());
    })
    .join()
    .expect("the thread ends normally");
    assert_eq!(RAN.load(Ordering::SeqCst), 1);
    assert_eq!(NEVER_RAN.load(Ordering::SeqCst), 1);
}

/// Regression (issue 8, defect 4: abort at thread exit): a suspended greenlet kept in a
/// `thread_local!` that the thread used before the crate, whose destructor calls
/// `greenlet::main()`; and a thread-local destructor that uses the crate after its runtime is
/// gone. `RUNTIME.with` used to panic while `GreenletExit` unwound (an abort). Now the
/// teardown destroys the greenlet while everything exists, and later calls get a fresh runtime
/// in which nothing can switch: switching and blocking fail, spawned greenlets never run.
#[test]
fn destructors_that_use_the_crate_during_and_after_teardown_do_not_abort() {
    static GREENLET_CLEANUP: AtomicUsize = AtomicUsize::new(0);
    static LATE: AtomicUsize = AtomicUsize::new(0);
    struct UsesTheCrate;
    impl Drop for UsesTheCrate {
        fn drop(&mut self) {
            let main = greenlet::main();
            assert!(main.is_main());
            assert!(greenlet::current().is_main());
            greenlet::sleep(Duration::from_millis(1));
            let h = greenlet::spawn(|| 5);
            assert!(h.get().is_err(), "nothing runs once the thread is exiting");
            let g = Greenlet::new(|x: u32| x);
            assert!(g.switch::<u32, u32>(1).is_err());
            assert!(greenlet::sync::Event::new().wait().is_err());
            LATE.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        // Both used before the crate: destroyed after its runtime.
        static KEEP: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
        static LATE_USER: RefCell<Option<UsesTheCrate>> = const { RefCell::new(None) };
    }
    if !in_child_or_run("destructors_that_use_the_crate_during_and_after_teardown_do_not_abort") {
        return;
    }
    std::thread::spawn(|| {
        LATE_USER.with(|l| *l.borrow_mut() = Some(UsesTheCrate));
        KEEP.with(|_| ());
        let g = Greenlet::new(|()| {
            let _cleanup = util::OnDrop(|| {
                assert!(greenlet::main().is_main());
                assert!(!greenlet::current().is_main());
                GREENLET_CLEANUP.fetch_add(1, Ordering::SeqCst);
            });
            let () = greenlet::main().switch(()).unwrap();
        });
        let () = g.switch(()).unwrap();
        KEEP.with(|k| k.borrow_mut().push(g));
    })
    .join()
    .expect("the thread ends normally");
    assert_eq!(GREENLET_CLEANUP.load(Ordering::SeqCst), 1);
    assert_eq!(LATE.load(Ordering::SeqCst), 1);
}

/// Lines of `/proc/self/maps`: the process's memory mappings.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

/// Runs one thread that parks three spawned greenlets (sleeping, waiting for an event, waiting
/// for a lock) and ends; each greenlet holds a value that counts its drop.
fn thread_ending_with_parked_greenlets(drops: &'static AtomicUsize) {
    struct Counts(&'static AtomicUsize);
    impl Drop for Counts {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    std::thread::spawn(move || {
        let event = Event::new();
        let lock = std::rc::Rc::new(Lock::new());
        let held = lock.clone();
        let _holder = greenlet::spawn(move || {
            let _guard = held.lock().unwrap();
            greenlet::sleep(Duration::from_secs(3600));
        });
        greenlet::yield_now();
        let counted = [
            greenlet::spawn(move || {
                let _c = Counts(drops);
                greenlet::sleep(Duration::from_secs(3600));
            }),
            greenlet::spawn(move || {
                let _c = Counts(drops);
                let _ = event.wait();
            }),
            greenlet::spawn(move || {
                let _c = Counts(drops);
                let _ = lock.lock();
            }),
        ];
        greenlet::yield_now();
        assert!(counted.iter().all(|h| !h.is_ready()));
        // The handles go; the greenlets stay parked, each holding a waiter on itself.
    })
    .join()
    .expect("the thread ends normally");
}

/// Regression (issue 8, defect 5: leak at thread exit): 400 threads each end with spawned
/// greenlets parked in a sleep, an `Event` and a `Lock`. They used to be leaked (each holds a
/// waiter on itself, a cycle), with their destructors never run, about 25 KB of memory and a
/// slab of address space per thread. Now every destructor runs, and neither the resident set
/// nor the number of mappings grows with the number of threads.
#[test]
fn parked_greenlets_are_destroyed_and_their_stacks_freed_at_thread_exit() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    // Alone in a process: other tests' threads would grow the allocator's arenas meanwhile.
    if !in_child_or_run("parked_greenlets_are_destroyed_and_their_stacks_freed_at_thread_exit") {
        return;
    }
    // Warm up: the allocator's arenas, the thread pool of the test harness.
    for _ in 0..20 {
        thread_ending_with_parked_greenlets(&DROPS);
    }
    assert_eq!(DROPS.load(Ordering::SeqCst), 20 * 3);
    let (rss_before, maps_before) = (util::rss_kib(), mappings());
    const THREADS: usize = 400;
    for _ in 0..THREADS {
        thread_ending_with_parked_greenlets(&DROPS);
    }
    let (rss_after, maps_after) = (util::rss_kib(), mappings());
    assert_eq!(DROPS.load(Ordering::SeqCst), (20 + THREADS) * 3);
    let grew_kib = rss_after.saturating_sub(rss_before);
    println!(
        "{THREADS} threads: RSS {rss_before} -> {rss_after} KiB, mappings {maps_before} -> {maps_after}"
    );
    assert!(
        grew_kib < 4 * 1024,
        "RSS grew by {grew_kib} KiB over {THREADS} threads"
    );
    assert!(
        maps_after < maps_before + 16,
        "mappings grew from {maps_before} to {maps_after} over {THREADS} threads"
    );
}
