//! Spawned greenlets' links and outcomes: ports of gevent's `test__greenlet.py` that
//! `tests/hub.rs` does not already hold.
//!
//! gevent links a greenlet to an `AsyncResult`, a queue's `put` or any callable; here a link is
//! a closure, which does the same by calling `set` or `put` itself. Links run on the finishing
//! greenlet, so a link may block (a channel's send waits for its receiver).

mod util;

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::sync::{AsyncError, AsyncResult, Channel, Queue};
use greenlet::{JoinError, JoinHandle};

/// Completes `result` with how `h` ended: its value, or its failure as an error.
fn complete<T: Clone + 'static>(result: &AsyncResult<T>, h: &JoinHandle<T>) {
    match (h.value(), h.error()) {
        (Some(v), _) => result.set(v.clone()),
        (None, Some(e)) => result.set_error(e.to_string()),
        (None, None) => result.set_error("the value was taken"),
    };
}

/// Ports gevent's `test__greenlet.py::TestLink::test_link_to_asyncresult`: a link completes an
/// `AsyncResult` with the greenlet's value; links added after the end run at once.
#[test]
fn a_link_completes_an_async_result_with_the_value() {
    let p = greenlet::spawn(|| 100);
    let event = AsyncResult::new();
    let e = event.clone();
    p.link(move |h| complete(&e, h));
    assert_eq!(event.get().unwrap(), 100);
    for _ in 0..3 {
        let event2 = AsyncResult::new();
        let e = event2.clone();
        p.link(move |h| complete(&e, h));
        assert_eq!(event2.try_get().unwrap(), 100);
    }
}

/// Ports gevent's `test__greenlet.py::TestLink::test_link_to_asyncresult_exception`: a greenlet
/// that fails completes its linked results with its failure; every getter of one result sees
/// the same error.
#[test]
fn a_link_completes_an_async_result_with_the_failure() {
    let p = greenlet::spawn(|| -> u32 { panic!("expected panic: test_link_to_asyncresult") });
    let event = AsyncResult::new();
    let e = event.clone();
    p.link(move |h| complete(&e, h));
    let first = match event.get() {
        Err(AsyncError::Failed(err)) => err,
        other => panic!("expected the failure, got {other:?}"),
    };
    assert!(
        first
            .to_string()
            .contains("expected panic: test_link_to_asyncresult")
    );
    match event.get() {
        Err(AsyncError::Failed(again)) => assert!(std::sync::Arc::ptr_eq(&first, &again)),
        other => panic!("expected the failure again, got {other:?}"),
    }
    for _ in 0..3 {
        let event2 = AsyncResult::new();
        let e = event2.clone();
        p.link(move |h| complete(&e, h));
        assert!(matches!(event2.try_get(), Err(AsyncError::Failed(_))));
    }
}

/// Ports gevent's `test__greenlet.py::TestLink::test_link_to_queue`: a link puts the handle in
/// a queue, whose reader sees the value through it.
#[test]
fn a_link_puts_the_handle_in_a_queue() {
    let p = greenlet::spawn(|| 100);
    let q: Queue<JoinHandle<i32>> = Queue::new();
    for _ in 0..4 {
        let q2 = q.clone();
        p.link(move |h| q2.put(h.clone()).unwrap());
        assert_eq!(*q.get().unwrap().value().unwrap(), 100);
    }
}

/// Ports gevent's `test__greenlet.py::TestLink::test_link_to_channel`: three greenlets hand
/// their handles over a channel from their links; each link waits for the reader (the
/// channel holds nothing), and the reader gets all three.
#[test]
fn links_hand_handles_over_a_channel() {
    let ch: Channel<JoinHandle<i32>> = Channel::new();
    let ps: Vec<_> = (101..=103).map(|v| greenlet::spawn(move || v)).collect();
    for p in &ps {
        let c = ch.clone();
        p.link(move |h| c.send(h.clone()).unwrap());
    }
    let mut results: Vec<i32> = (0..3)
        .map(|_| *ch.recv().unwrap().value().unwrap())
        .collect();
    results.sort_unstable();
    assert_eq!(results, [101, 102, 103]);
    greenlet::joinall(&ps, None, None).unwrap();
}

/// Ports gevent's `test__greenlet.py::TestStuff::test_minimal_id`: a spawned greenlet and its
/// parent (the hub) have small positive ids, and the automatic name is made from the id.
#[test]
fn spawned_greenlets_and_the_hub_have_ids() {
    let g = greenlet::spawn(|| 1);
    let parent = g
        .greenlet()
        .parent()
        .expect("a spawned greenlet's parent is the hub");
    assert!(g.greenlet().id() > 0 && parent.id() > 0);
    assert_ne!(g.greenlet().id(), parent.id());
    assert_eq!(parent.name(), Some("hub"));
    assert_eq!(g.name(), format!("Greenlet-{}", g.greenlet().id()));
    g.join().unwrap();
}

/// Ports gevent's `test__greenlet.py::TestStuff::test_wait_error` and
/// `TestStuff::test_joinall_exception_order`: `joinall(raise_error=True)` raises the failure
/// that came first. Here `joinall` has no `raise_error`; `iwait` hands the greenlets over in
/// the order they finish, so the first failure is the first handle with an error: the one that
/// failed at once, not the one that fails after a sleep.
#[test]
fn the_first_failure_comes_first_out_of_iwait() {
    let slow = greenlet::spawn(|| -> u32 {
        greenlet::sleep(std::time::Duration::from_millis(20));
        panic!("expected panic: first")
    });
    let quick = greenlet::spawn(|| -> u32 { panic!("expected panic: second") });
    let hs = [slow, quick];
    let first_failure = greenlet::iwait(&hs, None)
        .find(|&i| hs[i].error().is_some())
        .unwrap();
    assert_eq!(first_failure, 1);
    assert!(matches!(
        &*hs[1].error().unwrap(),
        JoinError::Panicked(p) if p.message() == Some("expected panic: second")
    ));
    // `joinall` without `raise_error`: waits for both.
    assert_eq!(greenlet::joinall(&hs, None, None).unwrap(), [0, 1]);
}

/// Ports gevent's
/// `test__greenlet.py::TestDeadPropertyDuringSwitch::test_dead_is_false_for_current_greenlet_during_switch`
/// (observed there with `greenlet.settrace`): a spawned greenlet that has just been switched
/// into is not dead, not ready, and its links have not run.
#[test]
fn a_greenlet_just_switched_into_is_not_dead() {
    let seen: Rc<RefCell<Vec<(bool, bool, bool)>>> = Rc::default();
    let slot: Rc<RefCell<Option<JoinHandle<u32>>>> = Rc::default();
    let linked = Rc::new(std::cell::Cell::new(false));
    let (s, me, l) = (seen.clone(), slot.clone(), linked.clone());
    let h = greenlet::spawn(move || {
        let me = me.borrow_mut().take().unwrap();
        s.borrow_mut()
            .push((me.greenlet().is_dead(), me.is_ready(), l.get()));
        42
    });
    *slot.borrow_mut() = Some(h.clone());
    let l = linked.clone();
    h.link(move |_| l.set(true));
    assert_eq!(h.get().unwrap(), 42);
    assert_eq!(*seen.borrow(), [(false, false, false)]);
    assert!(linked.get());
}
