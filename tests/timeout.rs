//! `Timeout` and `with_timeout`: ports of gevent's `test__timeout.py` and
//! `test__api_timeout.py` where they apply to a deadline-based timeout.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{Elapsed, JoinError, Timeout};

const SHOULD_EXPIRE: Duration = Duration::from_millis(10);
const LONG: Duration = Duration::from_secs(3600);

/// Ports gevent's `test__timeout.py::Test::test_expires` and `Test::test_expires_false` (a
/// `Timeout` never raises, so every one behaves as gevent's silent one): a timeout interrupts
/// what the greenlet blocks on.
#[test]
fn timeout_interrupts_a_join() {
    let forever = greenlet::spawn(|| greenlet::sleep(LONG));
    let t = Timeout::start(Some(SHOULD_EXPIRE));
    assert!(!t.is_expired());
    assert!(matches!(forever.join(), Err(JoinError::TimedOut)));
    assert!(t.is_expired());
    assert_eq!(t.remaining(), Some(Duration::ZERO));
    drop(t);
    forever.kill().unwrap();
}

/// Ports gevent's `test__api_timeout.py::Test::test_api`: a sleep under a timeout ends at the
/// timeout.
#[test]
fn timeout_cuts_a_sleep_short() {
    let start = Instant::now();
    let t = Timeout::start(Some(SHOULD_EXPIRE));
    greenlet::sleep(LONG);
    assert!(t.is_expired());
    assert!(start.elapsed() < LONG);
}

/// Ports gevent's `test__api_timeout.py::Test::test_api`, first part: a timeout that does not
/// expire changes nothing.
#[test]
fn unexpired_timeout_changes_nothing() {
    let t = Timeout::start(Some(util::NOT_HANGING));
    greenlet::sleep(Duration::from_millis(2));
    let h = greenlet::spawn(|| 3);
    assert_eq!(h.get().unwrap(), 3);
    assert!(!t.is_expired());
    assert!(t.remaining().unwrap() > Duration::ZERO);
}

/// Ports gevent's `test__timeout.py::Test::test_cancel`: a dropped (cancelled) timeout never
/// fires.
#[test]
fn dropped_timeout_is_cancelled() {
    let t = Timeout::start(Some(Duration::from_millis(1)));
    drop(t);
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(15));
    assert!(start.elapsed() >= Duration::from_millis(15));
}

/// Ports gevent's `test__api_timeout.py::Test::test_api`: `Timeout(None)` disables the timer.
#[test]
fn no_timeout_means_never() {
    let t = Timeout::start(None);
    assert_eq!(t.deadline(), None);
    assert_eq!(t.remaining(), None);
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(10));
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert!(!t.is_expired());
    assert_eq!(greenlet::with_timeout(Duration::MAX, || 1), Ok(1));
}

/// Ports gevent's `test__api_timeout.py::Test::test_nested_timeout`, outer short and inner
/// long: the outer one fires; the inner
/// one is still pending afterwards.
#[test]
fn nested_outer_short_fires_the_outer() {
    let outer = Timeout::start(Some(SHOULD_EXPIRE));
    {
        let inner = Timeout::start(Some(util::NOT_HANGING));
        let forever = greenlet::spawn(|| greenlet::sleep(LONG));
        assert!(matches!(forever.join(), Err(JoinError::TimedOut)));
        assert!(outer.is_expired());
        assert!(!inner.is_expired());
        forever.kill_nowait();
    }
    assert!(outer.is_expired());
}

/// Ports gevent's `test__api_timeout.py::Test::test_nested_timeout`, outer long and inner
/// short: the inner one fires, and only
/// it; once it is gone, blocking calls wait again until the outer deadline.
#[test]
fn nested_inner_short_fires_the_inner_only() {
    let outer = Timeout::start(Some(util::NOT_HANGING));
    {
        let inner = Timeout::start(Some(SHOULD_EXPIRE));
        greenlet::sleep(LONG);
        assert!(inner.is_expired());
        assert!(!outer.is_expired());
    }
    assert!(!outer.is_expired());
    // With the inner one dropped, a short sleep runs its full length.
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(10));
    assert!(start.elapsed() >= Duration::from_millis(10));
}

/// Nested `with_timeout`: the inner one reports, the outer one returns the inner's result.
#[test]
fn nested_with_timeout_reports_the_right_one() {
    let r = greenlet::with_timeout(util::NOT_HANGING, || {
        greenlet::with_timeout(SHOULD_EXPIRE, || greenlet::sleep(LONG))
    });
    assert!(matches!(r, Ok(Err(Elapsed { .. }))), "{r:?}");
    let r = greenlet::with_timeout(SHOULD_EXPIRE, || {
        greenlet::with_timeout(util::NOT_HANGING, || greenlet::sleep(LONG))
    });
    assert!(r.is_err());
}

/// A zero timeout makes the next blocking call give up (at the next loop turn).
#[test]
fn zero_timeout_fires_at_the_next_blocking_call() {
    let other_ran = Rc::new(Cell::new(false));
    let o = other_ran.clone();
    let h = greenlet::spawn(move || o.set(true));
    let t = Timeout::start(Some(Duration::ZERO));
    let start = Instant::now();
    greenlet::sleep(LONG);
    assert!(start.elapsed() < LONG);
    assert!(t.is_expired());
    // The loop turn ran: the greenlet ready before it ran too.
    assert!(other_ran.get());
    h.join().ok();
}

/// Ports gevent's `test__timeout.py::Test::test_with_timeout`, `Test::test_context_manager`
/// and `Test::test_context_manager_false` (`with Timeout(...)`, raising or silent, is
/// `with_timeout` here, whose caller chooses): `Err(Elapsed)` when the time ran out,
/// `Ok` with the value otherwise.
#[test]
fn with_timeout_ok_and_elapsed() {
    let r = greenlet::with_timeout(SHOULD_EXPIRE, || greenlet::sleep(LONG));
    let e = r.unwrap_err();
    assert!(e.to_string().contains("timed out after"), "{e}");
    assert_eq!(greenlet::with_timeout(util::NOT_HANGING, || 7), Ok(7));
    let r = greenlet::with_timeout(util::NOT_HANGING, || {
        greenlet::sleep(Duration::from_millis(2));
        "slept"
    });
    assert_eq!(r, Ok("slept"));
}

/// Regression: a zero `with_timeout` fires only at a blocking call (at the next loop turn), so
/// a function that never blocks returns its value (gevent's behaviour). It used to return
/// `Err(Elapsed)` because the deadline had passed by the time `f` returned.
#[test]
fn zero_with_timeout_returns_the_value_of_a_function_that_does_not_block() {
    assert_eq!(greenlet::with_timeout(Duration::ZERO, || 5), Ok(5));
    assert!(greenlet::with_timeout(Duration::ZERO, || greenlet::sleep(LONG)).is_err());
}

/// A timeout belongs to the greenlet that started it: others are not interrupted.
#[test]
fn timeouts_are_per_greenlet() {
    let _t = Timeout::start(Some(Duration::from_millis(1)));
    let h = greenlet::spawn(|| {
        let start = Instant::now();
        // Not main's timeout: this sleep runs its full length.
        std::thread::sleep(Duration::from_millis(2));
        greenlet::sleep(Duration::from_millis(10));
        start.elapsed()
    });
    // Main's own blocking call is cut short...
    assert!(matches!(h.join(), Err(JoinError::TimedOut)));
    drop(_t);
    // ...but the greenlet slept its full time.
    assert!(h.get().unwrap() >= Duration::from_millis(10));
}

/// A timeout inside a spawned greenlet interrupts that greenlet's blocking calls.
#[test]
fn timeout_in_a_spawned_greenlet() {
    let h = greenlet::spawn(|| {
        greenlet::with_timeout(SHOULD_EXPIRE, || greenlet::sleep(LONG)).is_err()
    });
    assert!(h.get().unwrap());
}

/// The earlier of a call's own timeout and a `Timeout` wins.
#[test]
fn earliest_deadline_wins() {
    let forever = greenlet::spawn(|| greenlet::sleep(LONG));
    let t = Timeout::start(Some(util::NOT_HANGING));
    let start = Instant::now();
    assert!(matches!(
        forever.join_timeout(Duration::from_millis(5)),
        Err(JoinError::TimedOut)
    ));
    assert!(start.elapsed() < util::NOT_HANGING);
    assert!(!t.is_expired());
    drop(t);
    let t = Timeout::start(Some(Duration::from_millis(5)));
    assert!(matches!(
        forever.join_timeout(util::NOT_HANGING),
        Err(JoinError::TimedOut)
    ));
    assert!(t.is_expired());
    drop(t);
    forever.kill().unwrap();
}

/// Once expired, a timeout keeps every later blocking call from waiting (until dropped).
#[test]
fn expired_timeout_keeps_interrupting() {
    let forever = greenlet::spawn(|| greenlet::sleep(LONG));
    let t = Timeout::start(Some(Duration::from_millis(2)));
    for _ in 0..3 {
        assert!(matches!(forever.join(), Err(JoinError::TimedOut)));
    }
    drop(t);
    forever.kill().unwrap();
}

/// A `Timeout` prints usefully.
#[test]
fn timeout_debug() {
    let t = Timeout::start(Some(LONG));
    let s = format!("{t:?}");
    assert!(s.contains("Timeout") && s.contains("expired: false"), "{s}");
}
