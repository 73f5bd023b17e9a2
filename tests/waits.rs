//! Every blocking call gives up at its own timeout and at an enclosing `Timeout`: ports of the
//! cases gevent's `AbstractGenericWaitTestCase` and `AbstractGenericGetTestCase` (in
//! `gevent.testing.timing`) add to each of its test classes that wraps a blocking call.
//!
//! gevent runs `test_returns_none_after_timeout` (or `test_raises_timeout_number`),
//! `test_outer_timeout_is_not_lost` and, for the get forms, `test_raises_timeout_Timeout` against
//! one call per class; here each test names its class and runs the same three checks from
//! `tests/util` against the crate's form of that call. (The fourth, `..._exc_customized`, has no
//! counterpart: a `Timeout` carries no exception; see `tests/PORTED.md`.)

mod util;

use std::time::Duration;

use greenlet::JoinError;
use greenlet::pool::Pool;
use greenlet::select::{Interest, Selector};
use greenlet::sync::{
    AsyncError, AsyncResult, Channel, Event, LifoQueue, PriorityQueue, Queue, RecvError, SendError,
    WaitError,
};
use util::{
    assert_gives_up_at_an_enclosing_timeout, assert_gives_up_at_its_timeout,
    assert_outer_timeout_is_not_lost,
};

const LONG: Duration = Duration::from_secs(3600);

/// Runs the three generic checks against the call `wait`.
fn all_three(wait: impl Fn(Option<Duration>) -> bool) {
    assert_gives_up_at_its_timeout(&wait);
    assert_outer_timeout_is_not_lost(&wait);
    assert_gives_up_at_an_enclosing_timeout(&wait);
}

// ---------------------------------------------------------------------------------------------
// test__greenlet.py

/// Ports gevent's `test__greenlet.py::TestJoin::test_returns_none_after_timeout` and
/// `TestJoin::test_outer_timeout_is_not_lost`: joining a greenlet that sleeps for long gives
/// up, and an enclosing `Timeout` ends the join too.
#[test]
fn join_of_a_sleeping_greenlet_gives_up() {
    let sleeper = greenlet::spawn(|| greenlet::sleep(LONG));
    all_three(|t: Option<Duration>| {
        let r = match t {
            Some(t) => sleeper.join_timeout(t),
            None => sleeper.join(),
        };
        matches!(r, Err(JoinError::TimedOut))
    });
    sleeper.kill().unwrap();
}

/// Ports gevent's `test__greenlet.py::TestGet::test_raises_timeout_number`,
/// `TestGet::test_raises_timeout_Timeout` and `TestGet::test_outer_timeout_is_not_lost`: `get`
/// on a greenlet that sleeps for long gives up with `TimedOut`; the value is still to come.
#[test]
fn get_of_a_sleeping_greenlet_gives_up() {
    let sleeper = greenlet::spawn(|| {
        greenlet::sleep(LONG);
        1
    });
    all_three(|t: Option<Duration>| {
        let r = match t {
            Some(t) => sleeper.get_timeout(t),
            None => sleeper.get(),
        };
        matches!(r, Err(JoinError::TimedOut))
    });
    assert!(!sleeper.is_ready());
    sleeper.kill().unwrap();
}

/// Ports gevent's `test__greenlet.py::TestJoinAll::test_returns_none_after_timeout` and
/// `TestJoinAll::test_outer_timeout_is_not_lost`: `joinall` on a sleeping greenlet returns
/// without it.
#[test]
fn joinall_of_a_sleeping_greenlet_gives_up() {
    let sleeper = greenlet::spawn(|| greenlet::sleep(LONG));
    let handles = [sleeper.clone()];
    all_three(|t: Option<Duration>| greenlet::joinall(&handles, t, None).unwrap().is_empty());
    sleeper.kill().unwrap();
}

/// Ports gevent's `test__greenlet.py::TestJoinAll0::test_returns_none_after_timeout` and
/// `TestJoinAll0::test_outer_timeout_is_not_lost`: `joinall` on a greenlet that has not
/// started (gevent's `Greenlet()` never started; here one due to start in an hour).
#[test]
fn joinall_of_an_unstarted_greenlet_gives_up() {
    let unstarted = greenlet::spawn_later(LONG, || ());
    let handles = [unstarted.clone()];
    all_three(|t: Option<Duration>| greenlet::joinall(&handles, t, None).unwrap().is_empty());
    assert!(!unstarted.greenlet().is_started());
    unstarted.kill().unwrap();
}

// ---------------------------------------------------------------------------------------------
// test__event.py

/// The waits of `Event` and `AsyncResult` give up with `WaitError::TimedOut`.
fn timed_out(r: Result<(), WaitError>) -> bool {
    matches!(r, Err(WaitError::TimedOut))
}

/// Ports gevent's `test__event.py::TestEventWait::test_returns_none_after_timeout` and
/// `TestEventWait::test_outer_timeout_is_not_lost`.
#[test]
fn event_wait_gives_up() {
    let e = Event::new();
    all_three(|t: Option<Duration>| timed_out(t.map_or_else(|| e.wait(), |t| e.wait_timeout(t))));
    assert!(!e.is_set());
}

/// Ports gevent's `test__event.py::TestAsyncResultWait::test_returns_none_after_timeout` and
/// `TestAsyncResultWait::test_outer_timeout_is_not_lost`.
#[test]
fn async_result_wait_gives_up() {
    let r = AsyncResult::<u32>::new();
    all_three(|t: Option<Duration>| timed_out(t.map_or_else(|| r.wait(), |t| r.wait_timeout(t))));
    assert!(!r.is_ready());
}

/// Ports gevent's `test__event.py::TestAsyncResultGet::test_raises_timeout_number`,
/// `TestAsyncResultGet::test_raises_timeout_Timeout` and
/// `TestAsyncResultGet::test_outer_timeout_is_not_lost`.
#[test]
fn async_result_get_gives_up() {
    let r = AsyncResult::<u32>::new();
    all_three(|t: Option<Duration>| {
        let got = t.map_or_else(|| r.get(), |t| r.get_timeout(t));
        matches!(got, Err(AsyncError::TimedOut))
    });
    assert!(r.set(1));
    assert_eq!(r.get().unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// test__queue.py

/// A queue's `get` under the generic checks; the queue must be empty.
macro_rules! check_get {
    ($q:expr) => {{
        let q = $q;
        all_three(|t: Option<Duration>| {
            let got = t.map_or_else(|| q.get(), |t| q.get_timeout(t));
            matches!(got, Err(RecvError::TimedOut))
        });
        assert!(q.is_empty());
    }};
}

/// A full bounded queue's `put` under the generic checks: the item comes back each time.
macro_rules! check_put {
    ($q:expr) => {{
        let q = $q;
        q.put(1u32).unwrap();
        assert!(q.is_full());
        all_three(|t: Option<Duration>| {
            let r = t.map_or_else(|| q.put(2), |t| q.put_timeout(2, t));
            matches!(r, Err(SendError::TimedOut(2)))
        });
        assert_eq!(q.len(), 1);
    }};
}

/// Ports gevent's `test__queue.py::TestGetInterrupt` (`test_raises_timeout_number`,
/// `test_raises_timeout_Timeout`, `test_outer_timeout_is_not_lost`) and the same three of
/// `TestGetInterruptJoinableQueue` and `TestGetInterruptSimpleQueue` (gevent skips the last two
/// there, as its `SimpleQueue` cannot be interrupted; `Queue` is both here), for `Queue`.
#[test]
fn queue_get_gives_up() {
    check_get!(Queue::<u32>::new());
}

/// Ports gevent's `test__queue.py::TestGetInterruptLifoQueue` (`test_raises_timeout_number`,
/// `test_raises_timeout_Timeout`, `test_outer_timeout_is_not_lost`).
#[test]
fn lifo_queue_get_gives_up() {
    check_get!(LifoQueue::<u32>::new());
}

/// Ports gevent's `test__queue.py::TestGetInterruptPriorityQueue` (`test_raises_timeout_number`,
/// `test_raises_timeout_Timeout`, `test_outer_timeout_is_not_lost`).
#[test]
fn priority_queue_get_gives_up() {
    check_get!(PriorityQueue::<u32>::new());
}

/// Ports gevent's `test__queue.py::TestGetInterruptChannel` (`test_raises_timeout_number`,
/// `test_raises_timeout_Timeout`, `test_outer_timeout_is_not_lost`): a channel's receive.
#[test]
fn channel_recv_gives_up() {
    let ch = Channel::<u32>::new();
    all_three(|t: Option<Duration>| {
        let got = t.map_or_else(|| ch.recv(), |t| ch.recv_timeout(t));
        matches!(got, Err(RecvError::TimedOut))
    });
    assert_eq!(ch.waiting_receivers(), 0);
}

/// Ports gevent's `test__queue.py::TestPutInterrupt` and `TestPutInterruptJoinableQueue`
/// (`test_raises_timeout_number`, `test_raises_timeout_Timeout`,
/// `test_outer_timeout_is_not_lost`): a put into a full queue gives up and hands the item back.
#[test]
fn queue_put_gives_up() {
    check_put!(Queue::bounded(1));
}

/// Ports gevent's `test__queue.py::TestPutInterruptLifoQueue` (`test_raises_timeout_number`,
/// `test_raises_timeout_Timeout`, `test_outer_timeout_is_not_lost`).
#[test]
fn lifo_queue_put_gives_up() {
    check_put!(LifoQueue::bounded(1));
}

/// Ports gevent's `test__queue.py::TestPutInterruptPriorityQueue`
/// (`test_raises_timeout_number`, `test_raises_timeout_Timeout`,
/// `test_outer_timeout_is_not_lost`).
#[test]
fn priority_queue_put_gives_up() {
    check_put!(PriorityQueue::bounded(1));
}

/// Ports gevent's `test__queue.py::TestPutInterruptChannel` (`test_raises_timeout_number`,
/// `test_raises_timeout_Timeout`, `test_outer_timeout_is_not_lost`): a send on a channel
/// nobody receives from gives up and hands the item back.
#[test]
fn channel_send_gives_up() {
    let ch = Channel::<u32>::new();
    all_three(|t: Option<Duration>| {
        let r = t.map_or_else(|| ch.send(2), |t| ch.send_timeout(2, t));
        matches!(r, Err(SendError::TimedOut(2)))
    });
    assert_eq!(ch.waiting_senders(), 0);
}

// ---------------------------------------------------------------------------------------------
// test__pool.py

/// Ports gevent's `test__pool.py::TestJoinSleep` and `TestJoinSleep_raise_error`
/// (`test_returns_none_after_timeout`, `test_outer_timeout_is_not_lost`): joining a pool with a
/// sleeping member gives up (the two classes differ only by `raise_error`, which has no
/// counterpart: a pool's join never raises a member's failure).
#[test]
fn pool_join_gives_up() {
    let pool = Pool::new(4);
    let sleeper = pool.spawn(|| greenlet::sleep(LONG)).unwrap();
    all_three(|t: Option<Duration>| {
        let r = t.map_or_else(|| pool.join(), |t| pool.join_timeout(t));
        matches!(r, Err(WaitError::TimedOut))
    });
    assert_eq!(pool.len(), 1);
    sleeper.kill().unwrap();
    assert!(pool.is_empty());
}

// ---------------------------------------------------------------------------------------------
// test__hub.py

/// Ports gevent's `test__hub.py::TestSleep::test_returns_none_after_timeout`,
/// `TestSleep::test_outer_timeout_is_not_lost` and `TestSleep::test_simple` (`sleep(0)`
/// returns): a sleep lasts its time, and an enclosing timeout cuts it short.
#[test]
fn sleep_lasts_its_time_and_yields_to_a_timeout() {
    greenlet::sleep(Duration::ZERO);
    all_three(|t: Option<Duration>| {
        greenlet::sleep(t.unwrap_or(LONG));
        true
    });
}

// ---------------------------------------------------------------------------------------------
// test__select.py

/// Ports gevent's `test__select.py::TestSelect::test_returns_none_after_timeout` and
/// `TestSelect::test_outer_timeout_is_not_lost`: `select` with nothing to wait for sleeps for
/// its timeout.
#[test]
fn select_of_nothing_gives_up() {
    let (r, w) = greenlet::select::select(&[], &[], Some(util::WAIT_TICK)).unwrap();
    assert!(r.is_empty() && w.is_empty());
    assert_gives_up_at_its_timeout(|t| {
        let (r, w) = greenlet::select::select(&[], &[], t).unwrap();
        r.is_empty() && w.is_empty()
    });
    assert_outer_timeout_is_not_lost(|t| {
        let (r, w) = greenlet::select::select(&[], &[], t).unwrap();
        r.is_empty() && w.is_empty()
    });
}

/// Ports gevent's `test__select.py::TestSelectRead::test_returns_none_after_timeout` and
/// `TestSelectRead::test_outer_timeout_is_not_lost`: `select` on the read end of a pipe
/// nobody writes to.
#[test]
fn select_on_a_silent_pipe_gives_up() {
    use std::os::fd::AsFd;
    let (reader, _writer) = std::io::pipe().unwrap();
    let fd = reader.as_fd();
    all_three(|t: Option<Duration>| {
        let (r, w) = greenlet::select::select(&[&fd], &[], t).unwrap();
        r.is_empty() && w.is_empty()
    });
}

/// Ports gevent's `test__select.py::TestPollRead::test_returns_none_after_timeout` and
/// `TestPollRead::test_outer_timeout_is_not_lost` (`select.poll`): a `Selector` with the read
/// end of a silent pipe registered.
#[test]
fn selector_on_a_silent_pipe_gives_up() {
    use std::os::fd::AsFd;
    let (reader, _writer) = std::io::pipe().unwrap();
    let sel = std::cell::RefCell::new(Selector::new().unwrap());
    sel.borrow_mut()
        .register(reader.as_fd(), Interest::READABLE, ())
        .unwrap();
    all_three(|t: Option<Duration>| sel.borrow_mut().select(t).unwrap().is_empty());
    let sel = sel.into_inner();
    assert_eq!(sel.len(), 1);
}
