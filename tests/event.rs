//! Events, results and semaphores: ports of gevent's `test__event.py` and `test__semaphore.py`
//! that `tests/sync.rs` and `tests/waits.rs` do not already hold.

mod util;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use greenlet::sync::{AsyncResult, AsyncSender, Event, Semaphore};

/// Ports gevent's `test__event.py::TestEventWait::test_cover` (`str(Event())`): an event
/// prints whether it is set.
#[test]
fn an_event_prints_its_state() {
    let e = Event::new();
    assert!(format!("{e:?}").contains("false"), "{e:?}");
    e.set();
    assert!(format!("{e:?}").contains("true"), "{e:?}");
}

/// Ports gevent's `test__event.py::TestEventBasics::test_wait_while_notifying` with this
/// crate's rule: two greenlets wait on an event; it is set, and at once a third wait on it (in
/// main) returns without yielding, ahead of the two woken greenlets, which run next. gevent
/// makes that late waiter yield until the woken ones have run (`[1, 2, 3]`); here a wait on
/// a set event never switches (`[3, 1, 2]`), so that it costs no trip through the hub.
#[test]
fn a_wait_on_a_set_event_returns_at_once_even_while_others_are_woken() {
    let event = Event::new();
    let results: Rc<RefCell<Vec<u32>>> = Rc::default();
    for i in [1, 2] {
        let (e, r) = (event.clone(), results.clone());
        greenlet::spawn(move || {
            e.wait().unwrap();
            r.borrow_mut().push(i);
        });
    }
    greenlet::yield_now(); // both wait
    event.set();
    event.wait().unwrap();
    results.borrow_mut().push(3);
    greenlet::yield_now();
    assert_eq!(*results.borrow(), [3, 1, 2]);
}

/// Where a cross-thread test's waiting side waits: in the thread's main greenlet, or in a
/// greenlet it spawns and joins (gevent's `wait_in_bg`).
#[derive(Clone, Copy)]
enum WaitIn {
    Main,
    Spawned,
}

/// The body of gevent's `TestAsyncResultCrossThread.test_cross_thread_use`: a thread with its
/// own hub, kept busy by a greenlet that spins on a local event, waits for a result (with a
/// timeout or without) that this thread completes through a sender.
fn wait_on_another_thread(timed: bool, wait_in: WaitIn) {
    let (sender_tx, sender_rx) = mpsc::channel::<AsyncSender<&'static str>>();
    let waiter = std::thread::spawn(move || {
        let result = AsyncResult::new();
        let local = Event::new();
        let spinner = {
            let local = local.clone();
            greenlet::spawn(move || {
                while !local.is_set() {
                    let _ = local.wait_timeout(Duration::from_millis(2));
                }
            })
        };
        sender_tx.send(result.sender()).unwrap();
        let work = move || {
            if timed {
                result.wait_timeout(Duration::from_secs(60)).unwrap();
            } else {
                result.wait().unwrap();
            }
            result.get().unwrap()
        };
        let got = match wait_in {
            WaitIn::Main => work(),
            WaitIn::Spawned => greenlet::spawn(work).get().unwrap(),
        };
        local.set();
        spinner.join().unwrap();
        got
    });
    let sender = sender_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(5)); // let it wait first
    assert!(sender.set("from main"));
    assert_eq!(waiter.join().unwrap(), "from main");
}

/// Ports gevent's `test__event.py::TestAsyncResultCrossThread::test_cross_thread_use`.
#[test]
fn a_result_waited_for_on_another_threads_main_is_set_from_here() {
    wait_on_another_thread(false, WaitIn::Main);
}

/// Ports gevent's `test__event.py::TestAsyncResultCrossThread::test_cross_thread_use_bg`.
#[test]
fn a_result_waited_for_in_another_threads_greenlet_is_set_from_here() {
    wait_on_another_thread(false, WaitIn::Spawned);
}

/// Ports gevent's `test__event.py::TestAsyncResultCrossThread::test_cross_thread_use_timed`.
#[test]
fn a_result_waited_for_with_a_timeout_on_another_threads_main_is_set_from_here() {
    wait_on_another_thread(true, WaitIn::Main);
}

/// Ports gevent's `test__event.py::TestAsyncResultCrossThread::test_cross_thread_use_timed_bg`.
#[test]
fn a_result_waited_for_with_a_timeout_in_another_threads_greenlet_is_set_from_here() {
    wait_on_another_thread(true, WaitIn::Spawned);
}

/// Ports gevent's `test__event.py::TestAsyncResultCrossThread::test_cross_thread_use_set_in_bg`
/// and `TestAsyncResultCrossThread::test_cross_thread_use_set_in_bg2`: main waits (with a long
/// timeout) for a result that a thread, started from a greenlet, completes. Twice, as gevent
/// runs it twice.
#[test]
fn a_result_waited_for_here_is_set_by_a_thread_started_from_a_greenlet() {
    for _ in 0..2 {
        let result = AsyncResult::new();
        let sender = result.sender();
        let starter =
            greenlet::spawn(move || std::thread::spawn(move || assert!(sender.set("from main"))));
        result.wait_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(result.get().unwrap(), "from main");
        starter.get().unwrap().join().unwrap();
    }
}

/// Ports gevent's `test__semaphore.py::TestSemaphore::test_semaphore_in_class_with_del`: a
/// destructor that acquires a semaphore with a free permit, even one run while a panic
/// unwinds (when no switch is allowed), gets it at once.
#[test]
fn a_destructor_acquires_a_free_permit() {
    struct X {
        s: Rc<Semaphore>,
        got: Rc<RefCell<Vec<bool>>>,
    }
    impl Drop for X {
        fn drop(&mut self) {
            let ok = self.s.acquire().map(|g| g.forget()).is_ok();
            self.got.borrow_mut().push(ok);
        }
    }
    let got: Rc<RefCell<Vec<bool>>> = Rc::default();
    drop(X {
        s: Rc::new(Semaphore::new(1)),
        got: got.clone(),
    });
    let (g, s) = (got.clone(), Rc::new(Semaphore::new(1)));
    let h = greenlet::spawn(move || {
        let _x = X { s, got: g };
        panic!("expected panic: unwinding through a destructor that acquires");
    });
    assert!(h.get().is_err());
    assert_eq!(*got.borrow(), [true, true]);
}
