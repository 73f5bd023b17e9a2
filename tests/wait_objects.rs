//! Waiting on objects of different kinds at once (`wait_objects`, gevent's `wait(objects)`):
//! ports of gevent's `test__event.py` cases about it.

mod util;

use std::rc::Rc;
use std::time::Duration;

use greenlet::Waitable;
use greenlet::sync::{AsyncResult, Event, Semaphore};

/// gevent's generic wait checks (own timeout, outer timeout) on `wait_objects` over `object`
/// alone, which is not ready.
fn wait_objects_gives_up(object: &dyn Waitable) {
    let objects = [object];
    let wait = |t| {
        greenlet::wait_objects(&objects, t, None)
            .unwrap()
            .is_empty()
    };
    util::assert_gives_up_at_its_timeout(wait);
    util::assert_outer_timeout_is_not_lost(wait);
}

/// Ports gevent's `test__event.py::TestGeventWaitOnEvent::test_returns_none_after_timeout` and
/// `TestGeventWaitOnEvent::test_outer_timeout_is_not_lost`: `wait_objects` on an unset event
/// gives up at its timeout (nothing ready) and at an outer `with_timeout`.
#[test]
fn wait_objects_on_an_event_gives_up() {
    wait_objects_gives_up(&Event::new());
}

/// Ports gevent's `test__event.py::TestWaitAsyncResult::test_returns_none_after_timeout` and
/// `TestWaitAsyncResult::test_outer_timeout_is_not_lost`: the same on a pending result.
#[test]
fn wait_objects_on_a_result_gives_up() {
    wait_objects_gives_up(&AsyncResult::<u8>::new());
}

/// Ports gevent's `test__event.py::TestWait::test`, `TestWait_notimeout::test`,
/// `TestWait_count1::test` and `TestWait_count2::test`: a sender sets five events
/// and five results one by one (1 ms apart); `wait_objects` over all ten with no count waits
/// for all ten (with a timeout of 1 s or none), with a count of 1 or 2 returns that many
/// while the sender is still at work.
#[test]
fn wait_objects_over_events_and_results() {
    for (count, timeout) in [
        (None, Some(Duration::from_secs(10))),
        (None, None),
        (Some(1), Some(Duration::from_secs(10))),
        (Some(2), Some(Duration::from_secs(10))),
    ] {
        let events: Vec<Event> = (0..5).map(|_| Event::new()).collect();
        let results: Vec<AsyncResult<()>> = (0..5).map(|_| AsyncResult::new()).collect();
        let sender = {
            let (mut events, mut results) = (events.clone(), results.clone());
            greenlet::spawn(move || {
                while !events.is_empty() || !results.is_empty() {
                    greenlet::sleep(Duration::from_millis(1));
                    if let Some(e) = events.pop() {
                        e.set();
                    }
                    greenlet::sleep(Duration::from_millis(1));
                    if let Some(r) = results.pop() {
                        r.set(());
                    }
                }
            })
        };
        let mut objects: Vec<&dyn Waitable> = events.iter().map(|e| e as &dyn Waitable).collect();
        objects.extend(results.iter().map(|r| r as &dyn Waitable));
        let ready = greenlet::wait_objects(&objects, timeout, count).unwrap();
        match count {
            None => {
                assert_eq!(ready.len(), 10);
                assert!(sender.is_ready());
            }
            Some(n) => {
                assert_eq!(ready.len(), n);
                assert!(!sender.is_ready());
                sender.kill().unwrap();
            }
        }
    }
}

/// Ports gevent's `test__event.py::TestEventBasics::test_gevent_wait_twice_when_already_set`.
/// `wait_objects` on a set event returns it, twice.
#[test]
fn wait_objects_twice_on_a_set_event() {
    let e = Event::new();
    e.set();
    let objects: [&dyn Waitable; 1] = [&e];
    assert_eq!(greenlet::wait_objects(&objects, None, None).unwrap(), [0]);
    assert_eq!(greenlet::wait_objects(&objects, None, None).unwrap(), [0]);
}

/// Ports gevent's `test__iwait.py::Testiwait::test_noiter`. Expected: of two acquired
/// semaphores, the one a greenlet releases comes first out of `iwait_objects`.
#[test]
fn iwait_on_semaphores() {
    let (sem1, sem2) = (Rc::new(Semaphore::new(0)), Semaphore::new(0));
    let s = sem1.clone();
    greenlet::spawn(move || s.release());
    let objects: [&dyn Waitable; 2] = [&*sem1, &sem2];
    assert_eq!(greenlet::iwait_objects(&objects, None).next(), Some(0));
}

/// Ports gevent's `test__iwait.py::Testiwait::test_iwait_partial` and
/// `Testiwait::test_iwait_nogarbage`. Expected: an `iwait_objects` over semaphores taken only
/// partly (one element) leaves no waiter registered on the others once dropped.
#[test]
fn a_partly_taken_iwait_on_semaphores_leaves_nothing_behind() {
    let (sem1, sem2) = (Rc::new(Semaphore::new(0)), Semaphore::new(0));
    let s = sem1.clone();
    let let_ = greenlet::spawn(move || s.release());
    {
        let objects: [&dyn Waitable; 2] = [&*sem1, &sem2];
        let mut it = greenlet::iwait_objects(&objects, Some(Duration::from_millis(10)));
        assert_eq!(it.next(), Some(0));
    }
    let_.get().unwrap();
    // Nothing waits on sem2 any more: a release with no waiter keeps the permit.
    sem2.release();
    assert!(sem2.try_acquire().is_some());
}

/// Ports gevent's `test__semaphore.py::TestSemaphore::test_rawlink_on_unacquired_runs_notifiers`.
/// Expected: waiting on a semaphore with a free permit returns at once.
#[test]
fn waiting_on_a_free_semaphore_returns_at_once() {
    let s = Semaphore::new(1);
    let objects: [&dyn Waitable; 1] = [&s];
    assert_eq!(greenlet::wait_objects(&objects, None, None).unwrap(), [0]);
}
