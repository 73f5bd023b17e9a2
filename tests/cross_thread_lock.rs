//! A lock shared by OS threads, for greenlets and plain threads: ports of the cases gevent runs
//! against a `Semaphore(1)` (`TestSemaphoreMultiThread`), a `BoundedSemaphore(1)`
//! (`TestBoundedSemaphoreMultiThread`), both in `test__semaphore.py`, and an `RLock`
//! (`TestRLockMultiThread`, `test__lock.py`): each is a lock taken in one thread and waited for
//! in another.
//!
//! `greenlet::sync::{Semaphore, BoundedSemaphore, Lock, RLock}` are thread-bound (`!Send`), so
//! the cross-thread lock here is `sync::Mutex`, and each test names all three classes.
//! Reentrancy (`RLock`) is not what these cases test.

mod util;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use greenlet::sync::Mutex;

const LARGE_TICK: Duration = Duration::from_millis(200);

/// Ports gevent's `test__semaphore.py::TestSemaphoreMultiThread::test_acquire_in_one_then_another`,
/// `TestBoundedSemaphoreMultiThread::test_acquire_in_one_then_another` and
/// `test__lock.py::TestRLockMultiThread::test_acquire_in_one_then_another`. Expected: main holds
/// the lock; a plain thread's `lock()` waits; when main unlocks, the thread gets it.
#[test]
fn a_lock_held_here_is_taken_by_a_thread_once_released() {
    let lock = Arc::new(Mutex::new(0u32));
    let guard = lock.lock().unwrap();
    let (running_tx, running_rx) = mpsc::channel();
    let l = lock.clone();
    let thread = std::thread::spawn(move || {
        running_tx.send(()).unwrap();
        *l.lock().unwrap() += 1;
        true
    });
    running_rx.recv().unwrap();
    greenlet::sleep(Duration::from_millis(5));
    assert!(!thread.is_finished());
    drop(guard);
    assert!(thread.join().unwrap());
    assert_eq!(*lock.lock().unwrap(), 1);
}

/// Ports gevent's `test__semaphore.py::TestSemaphoreMultiThread::test_acquire_in_one_then_another_timed`,
/// `TestBoundedSemaphoreMultiThread::test_acquire_in_one_then_another_timed` and
/// `test__lock.py::TestRLockMultiThread::test_acquire_in_one_then_another_timed`. Expected: while
/// main holds the lock, a thread's `lock_timeout(1 ms)` gives up (WouldBlock); afterwards main
/// unlocks and the lock is free.
#[test]
fn a_thread_gives_up_on_a_lock_held_here() {
    let lock = Arc::new(Mutex::new(()));
    let guard = lock.lock().unwrap();
    let l = lock.clone();
    let thread = std::thread::spawn(move || l.lock_timeout(Duration::from_millis(1)).is_ok());
    assert!(!thread.join().unwrap());
    drop(guard);
    assert!(lock.try_lock().is_ok());
}

/// Ports gevent's `test__semaphore.py::TestSemaphoreMultiThread::test_acquire_in_one_wait_greenlet_wait_thread_gives_up`,
/// `TestBoundedSemaphoreMultiThread::test_acquire_in_one_wait_greenlet_wait_thread_gives_up` and
/// `test__lock.py::TestRLockMultiThread::test_acquire_in_one_wait_greenlet_wait_thread_gives_up`.
/// Expected: main holds the lock; a greenlet waits for it (parked, the hub runs); main unlocks
/// and the greenlet gets it, starts a thread that tries to lock with a timeout of
/// `LARGE_TICK`, and sleeps twice that holding the lock: the thread gives up, the greenlet
/// succeeded.
#[test]
fn a_greenlet_gets_the_lock_and_a_thread_gives_up() {
    let lock = Arc::new(Mutex::new(()));
    let guard = lock.lock().unwrap();
    let l = lock.clone();
    let glet = greenlet::spawn(move || {
        let held = l.lock().unwrap();
        let l2 = l.clone();
        let (trying_tx, trying_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            trying_tx.send(()).unwrap();
            l2.lock_timeout(LARGE_TICK).is_ok()
        });
        // Hold the lock for twice the thread's patience from the moment it tries.
        while trying_rx.try_recv().is_err() {
            greenlet::sleep(Duration::from_millis(1));
        }
        greenlet::sleep(2 * LARGE_TICK);
        drop(held);
        thread.join().unwrap()
    });
    greenlet::yield_now();
    assert!(!glet.is_ready());
    drop(guard);
    assert!(!glet.get().unwrap(), "the thread must have given up");
}

/// The body of gevent's `test_dueling_threads`: two threads lock and unlock 10,000 times each,
/// `how` says with `lock()` or `lock_timeout`, and with a hub of their own (sleeping the green
/// way every tenth round) or without (a native sleep every hundredth).
fn duel(timed: bool, with_hub: bool) {
    let lock = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let lock = lock.clone();
            std::thread::spawn(move || {
                for i in 0..10_000u32 {
                    let guard = if timed {
                        lock.lock_timeout(Duration::from_secs(4)).unwrap()
                    } else {
                        lock.lock().unwrap()
                    };
                    drop(guard);
                    if with_hub && i % 10 == 0 {
                        greenlet::sleep(Duration::from_millis(1));
                    } else if i % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                10_000u32 - 1
            })
        })
        .collect();
    let results: Vec<u32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results, [9_999, 9_999]);
}

/// Ports gevent's `test__semaphore.py::TestSemaphoreMultiThread::test_dueling_threads`,
/// `TestBoundedSemaphoreMultiThread::test_dueling_threads` and
/// `test__lock.py::TestRLockMultiThread::test_dueling_threads`. Expected: two plain threads
/// take and give back the lock 10,000 times each, and both finish.
#[test]
fn two_threads_duel_for_a_lock() {
    duel(false, false);
}

/// Ports gevent's `test__semaphore.py::TestSemaphoreMultiThread::test_dueling_threads_timeout`,
/// `TestBoundedSemaphoreMultiThread::test_dueling_threads_timeout` and
/// `test__lock.py::TestRLockMultiThread::test_dueling_threads_timeout`. Expected: the same with
/// `lock_timeout`, which never gives up.
#[test]
fn two_threads_duel_for_a_lock_with_timeouts() {
    duel(true, false);
}

/// Ports gevent's `test__semaphore.py::TestSemaphoreMultiThread::test_dueling_threads_with_hub`,
/// `TestBoundedSemaphoreMultiThread::test_dueling_threads_with_hub` and
/// `test__lock.py::TestRLockMultiThread::test_dueling_threads_with_hub`. Expected: the same
/// with a hub on each thread, sleeping the green way now and then.
#[test]
fn two_threads_with_hubs_duel_for_a_lock() {
    duel(false, true);
}
