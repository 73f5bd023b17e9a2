//! `apply` and `apply_async` of groups and pools: ports of gevent's `test__pool.py` cases about
//! them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenlet::JoinError;
use greenlet::pool::{Group, Pool};
use greenlet::sync::Event;

/// Ports gevent's `test__pool.py::TestCoroutinePool::test_apply_async`: a function
/// given to `apply_async` runs; the caller waits for its effect.
#[test]
fn apply_async_runs_the_function() {
    let pool = Pool::new(2);
    let done = Event::new();
    let d = done.clone();
    pool.apply_async(move || d.set(), |_| ()).unwrap();
    done.wait().unwrap();
}

/// Ports gevent's `test__pool.py::TestCoroutinePool::test_apply`, `PoolBasicTests::test_apply`
/// and the `test_apply` of `TestPool`, `TestPool2`, `TestPool3`, `TestPool10` and
/// `TestPoolUnlimit`. `apply` returns the function's value.
#[test]
fn apply_returns_the_value() {
    for size in [1usize, 2, 3, 10] {
        let pool = Pool::new(size);
        assert_eq!(pool.apply(|| 5 * 5).unwrap(), 25);
        assert_eq!(pool.apply(|| ("foo", 1)).unwrap(), ("foo", 1));
    }
    assert_eq!(Group::new().apply(|| 3 * 3).unwrap(), 9);
}

/// Ports gevent's `test__pool.py::TestCoroutinePool::test_apply_raises`: a panic in
/// the applied function comes back as `JoinError::Panicked`.
#[test]
fn apply_reports_a_panic() {
    let pool = Pool::new(1);
    assert!(matches!(
        pool.apply(|| -> u8 { panic!("expected panic: ExpectedException") }),
        Err(JoinError::Panicked(_))
    ));
}

/// Ports gevent's `test__pool.py::TestCoroutinePool::test_multiple_coros`: a
/// consumer spawned into a pool of two waits on an event that a producer given to
/// `apply_async` sets: `cons1, prod, cons2`.
#[test]
fn a_consumer_and_a_producer_in_one_pool() {
    let pool = Pool::new(2);
    let evt = Event::new();
    let results = Rc::new(RefCell::new(Vec::new()));
    let (e, r) = (evt.clone(), results.clone());
    let done = pool
        .spawn(move || {
            r.borrow_mut().push("cons1");
            e.wait().unwrap();
            r.borrow_mut().push("cons2");
        })
        .unwrap();
    let (e, r) = (evt.clone(), results.clone());
    pool.apply_async(
        move || {
            greenlet::sleep(Duration::from_millis(1));
            r.borrow_mut().push("prod");
            e.set();
        },
        |_| (),
    )
    .unwrap();
    done.get().unwrap();
    assert_eq!(*results.borrow(), ["cons1", "prod", "cons2"]);
}

/// Ports gevent's `test__pool.py::TestCoroutinePool::test_reentrant`: in a pool of
/// one, a function applied from inside an applied function runs right there (6); an
/// `apply_async` afterwards runs too.
#[test]
fn apply_inside_apply_in_a_pool_of_one() {
    let pool = Pool::new(1);
    let p = pool.clone();
    assert_eq!(pool.apply(move || p.apply(|| 5 + 1).unwrap()).unwrap(), 6);
    let evt = Event::new();
    let e = evt.clone();
    pool.apply_async(move || e.set(), |_| ()).unwrap();
    evt.wait().unwrap();
}

/// Ports gevent's `test__pool.py::TestCoroutinePool::test_stderr_raising` (the error report
/// itself fails there). a member that panics gives its slot back (`free_count` 1)
/// and the pool applies the next function at once.
#[test]
fn a_panicking_member_gives_its_slot_back() {
    let pool = Pool::new(1);
    let waiter = pool
        .spawn(|| -> u8 { panic!("expected panic: Raising an error from the crash() function") })
        .unwrap();
    assert!(matches!(waiter.get(), Err(JoinError::Panicked(_))));
    greenlet::yield_now();
    assert_eq!(pool.free_count(), 1);
    assert!(matches!(
        greenlet::with_timeout(Duration::from_millis(100), || pool.apply(|| ())),
        Ok(Ok(()))
    ));
}

/// Ports gevent's `test__pool.py::TestPool::test_async`, `test_async_callback` and
/// `test_async_timeout`, and the same three of `TestPool2`, `TestPool3`, `TestPool10` and
/// `TestPoolUnlimit`. `apply_async` returns a handle at once whose `get` gives 49
/// after the function's sleep; the callback gets 49 too; a `get_timeout` shorter than the sleep
/// gives up with `TimedOut`.
#[test]
fn apply_async_handles_and_callbacks() {
    for size in [Some(1usize), Some(2), Some(3), Some(10), None] {
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        let sqr = |x: u64, ms: u64| {
            greenlet::sleep(Duration::from_millis(ms));
            x * x
        };
        let (quick, slow) = match size {
            Some(n) => {
                let pool = Pool::new(n);
                let quick = pool
                    .apply_async(move || sqr(7, 8), move |v| s.set(*v))
                    .unwrap();
                let slow = pool.apply_async(move || sqr(6, 200), |_| ()).unwrap();
                (quick, slow)
            }
            None => {
                let group = Group::new();
                let quick = group.apply_async(move || sqr(7, 8), move |v| s.set(*v));
                let slow = group.apply_async(move || sqr(6, 200), |_| ());
                (quick, slow)
            }
        };
        assert!(matches!(
            slow.get_timeout(Duration::from_millis(35)),
            Err(JoinError::TimedOut)
        ));
        assert_eq!(quick.get().unwrap(), 49);
        greenlet::yield_now();
        assert_eq!(seen.get(), 49);
        assert_eq!(slow.get().unwrap(), 36);
    }
}
