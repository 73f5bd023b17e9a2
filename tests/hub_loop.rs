//! The hub's loop and its time: ports of gevent's `test__hub.py`, `test__hub_join.py`,
//! `test__sleep0.py` and `test__api_timeout.py` that `tests/hub.rs`, `tests/timeout.rs` and
//! `tests/waits.rs` do not already hold.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenlet::{JoinError, Timeout};

/// Keeps the hub from running for `d`, as a CPU-bound stretch does.
fn busy(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Ports gevent's `test__api_timeout.py::Test::test_sleep_calls_update_now`: after a stretch
/// in which the hub did not run, a sleep still lasts its whole time from the call (gevent
/// refreshes the loop's cached clock; here every deadline is taken from the clock at the call).
#[test]
fn a_sleep_after_a_busy_stretch_lasts_from_the_call() {
    greenlet::yield_now();
    busy(Duration::from_millis(20));
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(10));
    assert!(start.elapsed() >= Duration::from_millis(10));
}

/// Ports gevent's `test__api_timeout.py::Test::test_timeout_calls_update_now`: a `Timeout`
/// started after a stretch in which the hub did not run is pending, and runs its whole time
/// from its start.
#[test]
fn a_timeout_after_a_busy_stretch_counts_from_its_start() {
    greenlet::yield_now();
    busy(Duration::from_millis(20));
    let start = Instant::now();
    let t = Timeout::start(Some(Duration::from_millis(200)));
    assert!(!t.is_expired());
    greenlet::sleep(Duration::from_secs(3600));
    assert!(t.is_expired());
    assert!(start.elapsed() >= Duration::from_millis(200));
}

/// Ports gevent's `test__sleep0.py` (a `sleep(0)` loop inside a 10 ms `Timeout` ends): a loop
/// of `sleep(0)` lets the hub run its timers, so another greenlet's timer fires while it
/// spins, and the loop's own `Timeout` expires. (Rust has no exception to end the loop: the
/// loop asks its `Timeout`.)
#[test]
fn a_sleep_zero_loop_lets_timers_fire() {
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let h = greenlet::spawn(move || {
        greenlet::sleep(Duration::from_millis(2));
        f.set(true);
    });
    // The other greenlet starts and arms its 2 ms timer before the loop's 10 ms Timeout is
    // started, so its timer is due first however long this thread is preempted in between.
    greenlet::sleep(Duration::ZERO);
    let t = Timeout::start(Some(Duration::from_millis(10)));
    let mut spins = 0u64;
    while !t.is_expired() {
        greenlet::sleep(Duration::ZERO);
        spins += 1;
    }
    // A timer due in the very last turn has woken the greenlet, which runs after this one.
    greenlet::sleep(Duration::ZERO);
    assert!(
        fired.get(),
        "the other greenlet's timer did not fire in {spins} spins"
    );
    h.join().unwrap();
}

/// Ports gevent's `test__hub.py::TestExceptionInMainloop::test_sleep`: a greenlet that fails
/// while main sleeps does not cut main's sleep short; its failure is kept for whoever asks.
#[test]
fn a_failing_greenlet_does_not_disturb_a_sleeper() {
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(10));
    assert!(start.elapsed() >= Duration::from_millis(10));
    let failing = greenlet::spawn_later(Duration::from_millis(1), || -> u32 {
        panic!("expected panic: TestExceptionInMainloop")
    });
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(10));
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert!(failing.is_ready());
    assert!(matches!(failing.get(), Err(JoinError::Panicked(_))));
}

/// Ports gevent's `test__hub_join.py::TestJoin::test_join_many_times`: running the hub until
/// nothing is left (`hub.join()`) returns true, again and again, before and after a sleep.
#[test]
fn running_the_hub_dry_again_and_again() {
    util::on_fresh_thread(|| {
        assert!(greenlet::wait_all(None).unwrap());
        assert!(greenlet::wait_all(None).unwrap());
        greenlet::sleep(Duration::from_millis(1));
        assert!(greenlet::wait_all(None).unwrap());
    });
}

/// Ports gevent's `test__hub_join.py::TestJoin::test_join_in_new_thread_doesnt_leak_hub_or_greenlet`:
/// ten threads in turn each spawn and join a greenlet and run their hub dry; every greenlet
/// and every thread's main greenlet is freed when its thread exits. Runs in a child process,
/// so that a crash at thread exit fails only this test.
#[test]
fn a_threads_hub_and_greenlets_are_freed_when_it_exits() {
    static FREED: AtomicUsize = AtomicUsize::new(0);
    static ALIVE: AtomicUsize = AtomicUsize::new(0);
    struct Probe(std::cell::RefCell<Vec<greenlet::WeakGreenlet>>);
    impl Drop for Probe {
        fn drop(&mut self) {
            for w in self.0.borrow().iter() {
                let c = if w.upgrade().is_none() {
                    &FREED
                } else {
                    &ALIVE
                };
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    thread_local! {
        static PROBE: Probe = const { Probe(std::cell::RefCell::new(Vec::new())) };
    }
    if !util::in_child_process("a_threads_hub_and_greenlets_are_freed_when_it_exits") {
        return;
    }
    for _ in 0..10 {
        std::thread::spawn(|| {
            PROBE.with(|_| ()); // registered before the runtime: dropped after it
            let g = greenlet::spawn(|| 0);
            g.join().unwrap();
            assert!(greenlet::wait_all(None).unwrap());
            let weak = vec![g.greenlet().downgrade(), greenlet::main().downgrade()];
            PROBE.with(|p| p.0.borrow_mut().extend(weak));
        })
        .join()
        .unwrap();
    }
    assert_eq!(FREED.load(Ordering::SeqCst), 20);
    assert_eq!(ALIVE.load(Ordering::SeqCst), 0);
}
