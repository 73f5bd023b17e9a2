//! When greenlets are freed, seen through weak handles: ports of greenlet's `test_weakref.py`
//! and `test_gc.py`.
//!
//! Python frees greenlets by reference counting plus a cycle collector; here handles are
//! reference counted and nothing collects cycles, so a greenlet in a cycle of strong handles
//! stays until the cycle is broken (Rust's rule for `Rc`). `WeakGreenlet` is the way to refer to
//! a greenlet without keeping it alive.

mod util;

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::{Greenlet, WeakGreenlet};
use util::{DropCounter, Log, OnDrop};

/// Ports greenlet's `test_weakref.py::WeakRefTests::test_dead_weakref`: a finished greenlet is
/// freed with its last handle.
#[test]
fn a_finished_greenlet_is_freed_with_its_last_handle() {
    let g = Greenlet::new(|()| ());
    let () = g.switch(()).unwrap();
    assert!(g.is_dead());
    let weak = g.downgrade();
    assert!(weak.upgrade().is_some());
    drop(g);
    assert!(weak.upgrade().is_none());
}

/// Ports greenlet's `test_weakref.py::WeakRefTests::test_inactive_weakref`: a greenlet that
/// never started is freed with its last handle.
#[test]
fn an_unstarted_greenlet_is_freed_with_its_last_handle() {
    let g = Greenlet::new(|()| ());
    let weak = g.downgrade();
    drop(g);
    assert!(weak.upgrade().is_none());
    assert!(format!("{weak:?}").contains("freed"));
}

/// Ports greenlet's `test_weakref.py::WeakRefTests::test_dealloc_weakref`: dropping an
/// unstarted greenlet drops its parent link; when that was the last handle on the suspended
/// parent, the parent is destroyed, and its cleanup finds the child already gone.
#[test]
fn a_parent_destroyed_by_its_childs_drop_sees_the_child_gone() {
    let child_seen_alive: Rc<RefCell<Vec<bool>>> = Rc::default();
    let child_weak: Rc<RefCell<Option<WeakGreenlet>>> = Rc::default();
    let (seen, weak) = (child_seen_alive.clone(), child_weak.clone());
    let worker = Greenlet::new(move |()| {
        let _finally = OnDrop(move || {
            let alive = weak
                .borrow()
                .as_ref()
                .and_then(WeakGreenlet::upgrade)
                .is_some();
            seen.borrow_mut().push(alive);
        });
        let () = greenlet::main().switch(()).unwrap();
    });
    let () = worker.switch(()).unwrap();
    let child = Greenlet::new(|()| ());
    child.set_parent(&worker).unwrap();
    *child_weak.borrow_mut() = Some(child.downgrade());
    drop(worker); // The child's parent link is now the worker's last handle.
    assert!(child_seen_alive.borrow().is_empty());
    drop(child);
    assert_eq!(*child_seen_alive.borrow(), [false]);
}

/// Ports greenlet's `test_gc.py::TestGC::test_dead_circular_ref`: a greenlet whose function
/// returns a handle on itself is freed once that value is dropped.
#[test]
fn a_greenlet_that_returned_its_own_handle_is_freed() {
    let weak = {
        let g = Greenlet::new(|()| greenlet::current());
        let itself: Greenlet = g.switch(()).unwrap();
        assert_eq!(itself, g);
        itself.downgrade()
    };
    assert!(weak.upgrade().is_none());
}

/// Ports greenlet's `test_gc.py::TestGC::test_circular_greenlet` with Rust's rule: a greenlet
/// that holds a strong handle on itself is a reference cycle, which Python's collector frees and
/// Rust does not; it is freed once the cycle is broken, and a greenlet that refers to itself
/// through a `WeakGreenlet` is freed with its last outside handle.
#[test]
fn a_greenlet_in_a_cycle_is_freed_when_the_cycle_is_broken() {
    // The cycle: the greenlet's function keeps a strong handle on the greenlet.
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let s = slot.clone();
    let g = Greenlet::new(move |()| drop(s));
    *slot.borrow_mut() = Some(g.clone());
    let weak = g.downgrade();
    drop(g);
    assert!(
        weak.upgrade().is_some(),
        "a strong cycle keeps the greenlet"
    );
    drop(slot.borrow_mut().take());
    assert!(weak.upgrade().is_none(), "breaking the cycle frees it");

    // The same shape with a weak handle: no cycle.
    let slot: Rc<RefCell<Option<WeakGreenlet>>> = Rc::default();
    let s = slot.clone();
    let g = Greenlet::new(move |()| drop(s));
    *slot.borrow_mut() = Some(g.downgrade());
    let weak = g.downgrade();
    drop(g);
    assert!(weak.upgrade().is_none());
}

/// Ports greenlet's `test_gc.py::TestGC::test_inactive_ref`: an unstarted greenlet whose
/// function refers to the greenlet itself (there, a bound method of a subclass) is freed with
/// its last handle, its function's captures dropped without running.
#[test]
fn an_unstarted_greenlet_referring_to_itself_weakly_is_freed() {
    let drops = DropCounter::new();
    let me: Rc<RefCell<Option<WeakGreenlet>>> = Rc::default();
    let (m, token) = (me.clone(), drops.token());
    let g = Greenlet::new(move |()| {
        let _token = token;
        assert!(m.borrow().as_ref().unwrap().upgrade().is_some());
    });
    *me.borrow_mut() = Some(g.downgrade());
    let weak = g.downgrade();
    drop(g);
    assert!(weak.upgrade().is_none());
    assert_eq!(drops.dropped(), 1);
}

/// Ports greenlet's `test_gc.py::TestGC::test_cycle_in_suspended_frame`: an inner greenlet,
/// suspended, whose only handle is a local of an outer greenlet, is destroyed when the outer
/// one finishes, and the values on its stack are dropped then (Python needs a collection for
/// its cycle; here they go at once).
#[test]
fn a_suspended_greenlet_owned_by_a_finished_frame_is_destroyed_with_it() {
    let log = Log::new();
    let l = log.clone();
    let outer = Greenlet::new(move |()| {
        let l2 = l.clone();
        let inner = Greenlet::new(move |()| {
            let _cycle1 = OnDrop({
                let l = l2.clone();
                move || l.push("finalizer 1")
            });
            let _cycle2 = OnDrop(move || l2.push("finalizer 2"));
            // Not `current().parent()..switch()` in one statement: the temporary handle on
            // the current greenlet would live across the switch and keep it alive.
            let parent = greenlet::current().parent().unwrap();
            let () = parent.switch(()).unwrap();
        });
        let () = inner.switch(()).unwrap();
        l.push("outer done");
    });
    let () = outer.switch(()).unwrap();
    assert!(outer.is_dead());
    assert_eq!(log.events(), ["outer done", "finalizer 2", "finalizer 1"]);
}
