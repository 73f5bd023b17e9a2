//! Greenlets and OS threads: ports of the thread cases of greenlet's `test_greenlet.py` and
//! `test_leaks.py`.
//!
//! Every thread has its own main greenlet and runtime; greenlets never cross threads (handles
//! are `!Send`, see `tests/greenlet.rs`), so greenlet's cases about switching to, reparenting
//! onto or freeing a greenlet from another thread have no counterpart (`tests/PORTED.md`).
//! What remains: threads running greenlets side by side, and what a thread leaves behind when
//! it exits.

mod util;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use greenlet::{Greenlet, GreenletExit, WeakGreenlet};

/// Switches from the running greenlet to its parent.
fn to_parent() {
    let parent = greenlet::current().parent().expect("a parent");
    let () = parent.switch(()).unwrap();
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_switching_many_threads`: sixteen
/// threads at once each create a greenlet and keep switching to it; twenty rounds. (The other
/// half of that test, switching from another thread, cannot be written: see
/// `greenlets_and_generators_are_neither_send_nor_sync`.)
#[test]
fn many_threads_switch_their_own_greenlets_at_once() {
    for _ in 0..20 {
        let barrier = Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let g = Greenlet::new(|mut n: u32| {
                        loop {
                            let main = greenlet::main();
                            n = main.switch(n + 1).unwrap();
                        }
                    });
                    barrier.wait();
                    let mut n = 0;
                    for _ in 0..200 {
                        n = g.switch::<u32, u32>(n).unwrap();
                    }
                    n
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 200);
        }
    }
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_thread_bug`: two threads each run a
/// greenlet that blocks its OS thread (a plain `std::thread::sleep`); both finish.
#[test]
fn greenlets_blocking_two_threads_both_finish() {
    let threads: Vec<_> = [20u64, 30]
        .into_iter()
        .map(|ms| {
            std::thread::spawn(move || {
                let g = Greenlet::new(move |()| {
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    ms
                });
                g.switch::<(), u64>(()).unwrap()
            })
        })
        .collect();
    let done: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(done, [20, 30]);
}

/// What a thread-local `Probe` found about a greenlet when the thread's destructors ran.
static FREED: AtomicUsize = AtomicUsize::new(0);
static STILL_ALIVE: AtomicUsize = AtomicUsize::new(0);

/// Weak handles checked when the thread exits, after its greenlet runtime is gone (the probe
/// is registered first, so it is destroyed last).
struct Probe(RefCell<Vec<WeakGreenlet>>);

impl Drop for Probe {
    fn drop(&mut self) {
        for weak in self.0.borrow().iter() {
            let counter = match weak.upgrade() {
                None => &FREED,
                Some(_) => &STILL_ALIVE,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

thread_local! {
    static PROBE: Probe = const { Probe(RefCell::new(Vec::new())) };
}

/// Runs `body` on a fresh thread whose exit checks the greenlets `body` returns weak handles
/// on; returns (freed, still alive). Runs in a child process (the counters are global, and a
/// crash at thread exit must fail only this test).
fn freed_at_thread_exit(body: fn() -> Vec<WeakGreenlet>) -> (usize, usize) {
    FREED.store(0, Ordering::SeqCst);
    STILL_ALIVE.store(0, Ordering::SeqCst);
    std::thread::spawn(move || {
        PROBE.with(|_| ()); // registered before the greenlet runtime
        let weak = body();
        PROBE.with(|p| p.0.borrow_mut().extend(weak));
    })
    .join()
    .unwrap();
    (
        FREED.load(Ordering::SeqCst),
        STILL_ALIVE.load(Ordering::SeqCst),
    )
}

/// Ports greenlet's `test_leaks.py::TestLeaks::test_threaded_leak`: a thread's main greenlet
/// is freed when the thread exits.
#[test]
fn a_threads_main_greenlet_is_freed_at_thread_exit() {
    if !util::in_child_process("a_threads_main_greenlet_is_freed_at_thread_exit") {
        return;
    }
    for _ in 0..2 {
        let found = freed_at_thread_exit(|| vec![greenlet::main().downgrade()]);
        assert_eq!(found, (1, 0), "(freed, still alive)");
    }
}

greenlet::greenlet_local! {
    /// Finished greenlets kept by the main greenlet (greenlet's `getcurrent().ll`).
    static KEPT: RefCell<Vec<Greenlet>> = RefCell::new(Vec::new());
}

/// Ports greenlet's `test_leaks.py::TestLeaks::test_threaded_adv_leak`: a thread's main
/// greenlet keeps finished greenlets (whose parent it is) in a greenlet-local; when the thread
/// exits, all of them are freed (main's locals are dropped then, which breaks the cycle
/// through their parent links).
#[test]
fn finished_greenlets_kept_by_a_threads_main_are_freed_at_thread_exit() {
    if !util::in_child_process("finished_greenlets_kept_by_a_threads_main_are_freed_at_thread_exit")
    {
        return;
    }
    for _ in 0..2 {
        let found = freed_at_thread_exit(|| {
            let mut weak = vec![greenlet::main().downgrade()];
            for _ in 0..2 {
                let g = Greenlet::new(|()| ());
                let () = g.switch(()).unwrap();
                weak.push(g.downgrade());
                KEPT.with(|k| k.borrow_mut().push(g));
            }
            weak
        });
        assert_eq!(found, (3, 0), "(freed, still alive)");
    }
}

/// Suspends `n` greenlets that count the `GreenletExit` their destruction raises.
fn suspended_greenlets(n: usize, exits: &Arc<AtomicUsize>) -> Vec<Greenlet> {
    (0..n)
        .map(|_| {
            let exits = exits.clone();
            let g = Greenlet::new(move |()| {
                if let Err(payload) = std::panic::catch_unwind(to_parent) {
                    if payload.is::<GreenletExit>() {
                        exits.fetch_add(1, Ordering::SeqCst);
                    }
                    std::panic::resume_unwind(payload);
                }
            });
            let () = g.switch(()).unwrap();
            g
        })
        .collect()
}

/// Runs `round` twice to warm up, then ten times more, and checks that memory did not grow.
fn assert_rounds_do_not_grow_memory(round: impl Fn()) {
    round();
    round();
    let before = util::rss_kib();
    for _ in 0..10 {
        round();
    }
    let after = util::rss_kib();
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// Ports greenlet's
/// `test_leaks.py::TestLeaks::test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_thread`:
/// threads that each suspend 2 x 1000 greenlets and drop them before exiting raise
/// `GreenletExit` in every one, and doing it again and again does not grow memory.
#[test]
fn suspended_greenlets_dropped_in_their_thread_do_not_grow_memory() {
    let _serial = util::memory_lock();
    let round = || {
        let exits = Arc::new(AtomicUsize::new(0));
        let e = exits.clone();
        std::thread::spawn(move || {
            let mut all = suspended_greenlets(1000, &e);
            all.extend(suspended_greenlets(1000, &e));
            drop(all);
        })
        .join()
        .unwrap();
        assert_eq!(exits.load(Ordering::SeqCst), 2000);
    };
    assert_rounds_do_not_grow_memory(round);
}

thread_local! {
    /// Suspended greenlets a thread still holds when it exits.
    static LEFT_BEHIND: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
}

/// Ports greenlet's
/// `test_leaks.py::TestLeaks::test_untracked_memory_doesnt_increase_unfinished_thread_dealloc_in_main`,
/// with this crate's rule: the greenlets cannot be handed to another thread to be freed there,
/// so they are still referenced when their thread exits; they are unwound then (`GreenletExit`
/// in each, where Python frees them without running them), and doing it again and again does
/// not grow memory. Runs in a child process, so that a crash at thread exit fails only this
/// test.
#[test]
fn suspended_greenlets_left_at_thread_exit_do_not_grow_memory() {
    if !util::in_child_process("suspended_greenlets_left_at_thread_exit_do_not_grow_memory") {
        return;
    }
    let round = || {
        let exits = Arc::new(AtomicUsize::new(0));
        let e = exits.clone();
        std::thread::spawn(move || {
            LEFT_BEHIND.with(|_| ()); // registered before the runtime: dropped after it
            let all = suspended_greenlets(2000, &e);
            LEFT_BEHIND.with(|l| l.borrow_mut().extend(all));
        })
        .join()
        .unwrap();
        assert_eq!(exits.load(Ordering::SeqCst), 2000);
    };
    assert_rounds_do_not_grow_memory(round);
}
