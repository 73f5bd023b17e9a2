//! Greenlet behaviour, ported from Python greenlet's own tests (`test_greenlet.py`,
//! `test_throw.py`, `test_leaks.py`).
//!
//! Each test names the Python test it ports. Where this crate's rule differs from Python's
//! (values are typed, failures are `Result`s rather than exceptions, switching to a dead
//! greenlet is refused), the doc comment says how the port adapts it.

mod util;

use std::cell::{Cell, OnceCell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{Builder, DEFAULT_STACK_SIZE, Greenlet, GreenletExit, ParentError, SwitchError};
use util::{DropCounter, Log, OnDrop, SomeError};

/// Switches from the running greenlet to its parent with `value`.
fn try_to_parent<T: 'static, R: 'static>(value: T) -> Result<R, SwitchError> {
    // The temporary handle on the current greenlet is dropped before switching.
    let parent = greenlet::current()
        .parent()
        .expect("a greenlet has a parent");
    parent.switch(value)
}

/// Switches from the running greenlet to its parent with `value`, expecting an `R` back.
fn to_parent<T: 'static, R: 'static>(value: T) -> R {
    try_to_parent(value).expect("switch to parent")
}

// ---------------------------------------------------------------------------------------------
// Switching

/// The body of `test_simple`, also run on other threads by `test_threads`.
fn run_simple_sequence() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let g = Greenlet::new(move |()| {
        s.borrow_mut().push(1);
        let () = to_parent(());
        s.borrow_mut().push(3);
    });
    seen.borrow_mut().push(0);
    let () = g.switch(()).unwrap();
    seen.borrow_mut().push(2);
    let () = g.switch(()).unwrap();
    seen.borrow_mut().push(4);
    assert_eq!(*seen.borrow(), [0, 1, 2, 3, 4]);
    assert!(g.is_dead());
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_simple`: a greenlet runs up to its
/// switch to the parent; the next switch to it resumes it right there.
#[test]
fn switch_resumes_the_greenlet_where_it_left_off() {
    run_simple_sequence();
}

/// A greenlet body for `test_two_children`: counts 1, waits, then counts 2 more.
fn counting_child(count: Rc<Cell<usize>>) -> impl FnOnce(()) + 'static {
    move |()| {
        count.set(count.get() + 1);
        let () = to_parent(());
        count.set(count.get() + 2);
    }
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_two_children`: two children of main
/// run and finish independently, in whatever order main switches to them.
#[test]
fn two_children_run_and_finish_independently() {
    let count = Rc::new(Cell::new(0));
    let g = Greenlet::new(counting_child(count.clone()));
    let h = Greenlet::new(counting_child(count.clone()));
    let () = g.switch(()).unwrap();
    assert_eq!(count.get(), 1);
    let () = h.switch(()).unwrap();
    assert_eq!(count.get(), 2);
    let () = h.switch(()).unwrap();
    assert_eq!(count.get(), 4);
    assert!(h.is_dead());
    assert!(g.is_active());
    let () = g.switch(()).unwrap();
    assert_eq!(count.get(), 6);
    assert!(g.is_dead());
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_two_recursive_children`: a greenlet
/// creates a child, which is its child (not main's), and the child's switch to its parent
/// resumes the creator.
#[test]
fn a_child_created_inside_a_greenlet_switches_back_to_it() {
    let log = Log::new();
    let l = log.clone();
    let outer = Greenlet::new(move |()| {
        l.push("a");
        let l2 = l.clone();
        let inner = Greenlet::new(move |()| {
            l2.push("b");
            let () = to_parent(());
        });
        assert_eq!(inner.parent(), Some(greenlet::current()));
        let () = inner.switch(()).unwrap();
        l.push("c");
    });
    let () = outer.switch(()).unwrap();
    assert_eq!(log.events(), ["a", "b", "c"]);
    assert!(outer.is_dead());
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_switch_kwargs_to_parent`: the first
/// switch's value is the function's argument, each switch to the parent hands it a value, each
/// switch back is what the greenlet's pending switch returns, and the return value goes to the
/// parent.
#[test]
fn values_travel_both_ways_and_the_return_value_goes_to_the_parent() {
    let g = Greenlet::new(|x: u32| {
        let y: u32 = to_parent(x * 10);
        let z: String = to_parent((y, "pair"));
        format!("{x} {y} {z}")
    });
    assert_eq!(g.switch::<u32, u32>(3).unwrap(), 30);
    assert_eq!(g.switch::<u32, (u32, &str)>(4).unwrap(), (4, "pair"));
    let done: String = g.switch(String::from("end")).unwrap();
    assert_eq!(done, "3 4 end");
    assert!(g.is_dead());
}

/// Ports the introductory example of greenlet's documentation (`test1`/`test2` printing
/// 12, 56, 34, 78), which greenlet's tests exercise as `test_two_children`: switch is symmetric,
/// two greenlets that are not main switch to each other in both directions, with values.
#[test]
fn any_greenlet_switches_to_any_other_in_both_directions() {
    let log = Log::new();
    let slot1: Rc<OnceCell<Greenlet>> = Rc::default();
    let slot2: Rc<OnceCell<Greenlet>> = Rc::default();
    let (l, s2) = (log.clone(), slot2.clone());
    let gr1 = Greenlet::new(move |()| {
        l.push("12");
        let back: u32 = s2.get().unwrap().switch(1u32).unwrap();
        l.push(format!("34 got {back}"));
        let () = s2.get().unwrap().switch(3u32).unwrap();
        l.push("gr1 resumed");
    });
    let (l, s1) = (log.clone(), slot1.clone());
    let gr2 = Greenlet::new(move |first: u32| {
        l.push(format!("56 got {first}"));
        let again: u32 = s1.get().unwrap().switch(2u32).unwrap();
        l.push(format!("78 got {again}"));
        "gr2 done"
    });
    slot1.set(gr1.clone()).unwrap();
    slot2.set(gr2.clone()).unwrap();
    let end: &str = gr1.switch(()).unwrap();
    assert_eq!(
        end, "gr2 done",
        "gr2's return value goes to its parent, main"
    );
    assert_eq!(log.events(), ["12", "56 got 1", "34 got 2", "78 got 3"]);
    assert!(gr2.is_dead());
    assert!(gr1.is_active());
}

/// Ports the self-switch rule of greenlet's `green_switch` (exercised by
/// `test_greenlet.py::TestGreenlet::test_tuple_subclass`, which switches to `getcurrent()`):
/// switching to the running greenlet returns the value at once.
#[test]
fn switching_to_the_running_greenlet_returns_the_value() {
    assert_eq!(greenlet::current().switch::<u32, u32>(5).unwrap(), 5);
    let g = Greenlet::new(|x: u32| greenlet::current().switch::<u32, u32>(x + 1).unwrap());
    assert_eq!(g.switch::<u32, u32>(1).unwrap(), 2);
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_threads`: every OS thread has its own
/// main greenlet and runs its greenlets independently of the others.
#[test]
fn every_thread_has_its_own_main_greenlet() {
    let here = greenlet::main().id();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                run_simple_sequence();
                assert!(greenlet::current().is_main());
                greenlet::main().id()
            })
        })
        .collect();
    let mut mains: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(!mains.contains(&here));
    mains.sort_unstable();
    mains.dedup();
    assert_eq!(mains.len(), 4);
}

/// Implemented for every type; for `Send` (or `Sync`) types also with the marker `u8`, so that
/// naming the method without the marker is ambiguous and does not compile for them.
trait AmbiguousIfSend<Marker> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

/// As [`AmbiguousIfSend`], for `Sync`.
trait AmbiguousIfSync<Marker> {
    fn check() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_switch_to_another_thread` (switching
/// to another thread's greenlet raises `greenlet.error`): here a handle cannot even reach
/// another thread. Greenlets and generators are neither `Send` nor `Sync`; this file stops
/// compiling if either becomes so (as does the `compile_fail` doctest on `Greenlet`).
#[test]
fn greenlets_and_generators_are_neither_send_nor_sync() {
    <Greenlet as AmbiguousIfSend<_>>::check();
    <Greenlet as AmbiguousIfSync<_>>::check();
    <greenlet::Generator<(), u32, ()> as AmbiguousIfSend<_>>::check();
    <greenlet::Generator<(), u32, ()> as AmbiguousIfSync<_>>::check();
}

/// Ports greenlet's `test_leaks.py::TestLeaks::test_arg_refs`: values passed through a hundred
/// switches are neither leaked nor dropped twice.
#[test]
fn values_passed_through_switches_are_not_leaked() {
    let arg = Rc::new(());
    let g = Greenlet::new(|mut a: Rc<()>| {
        loop {
            a = to_parent(a);
        }
    });
    for _ in 0..100 {
        let back: Rc<()> = g.switch(arg.clone()).unwrap();
        assert_eq!(Rc::strong_count(&arg), 2);
        drop(back);
    }
    assert_eq!(Rc::strong_count(&arg), 1);
    drop(g);
    assert_eq!(Rc::strong_count(&arg), 1);
}

// ---------------------------------------------------------------------------------------------
// Types

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_switch_kwargs` (the first switch's
/// arguments become the function's), for a typed crate: a value of the wrong type for an
/// unstarted greenlet is refused with both type names, is dropped, and nothing starts.
#[test]
fn a_value_of_the_wrong_type_for_an_unstarted_greenlet_starts_nothing() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |x: u64| {
        r.set(true);
        x + 1
    });
    let drops = DropCounter::new();
    match g.switch::<_, u64>(drops.token()) {
        Err(SwitchError::WrongType { expected, found }) => {
            assert_eq!(expected, "u64");
            assert!(found.ends_with("util::Token"), "found: {found}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert_eq!(drops.dropped(), 1, "the refused value is dropped");
    assert!(!ran.get());
    assert!(!g.is_started());
    assert_eq!(g.switch::<u64, u64>(41).unwrap(), 42);
    assert!(ran.get());
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_switch_kwargs_to_parent`, for a typed
/// crate: a pending switch that receives a value of another type than it asked for returns
/// `WrongType` with both names, in main and in a greenlet; the value is dropped, not lost
/// silently.
#[test]
fn a_pending_switch_receiving_the_wrong_type_returns_wrong_type() {
    let drops = DropCounter::new();
    let d = drops.clone();
    let g = Greenlet::new(move |()| {
        // Main's pending switch expects a u32; hand it a Token. Then expect a u32 ourselves.
        match greenlet::main().switch::<_, u32>(d.token()) {
            Err(SwitchError::WrongType { expected, found }) => format!("{expected} <- {found}"),
            other => format!("unexpected {other:?}"),
        }
    });
    match g.switch::<(), u32>(()) {
        Err(SwitchError::WrongType { expected, found }) => {
            assert_eq!(expected, "u32");
            assert!(found.ends_with("util::Token"), "found: {found}");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert_eq!(drops.dropped(), 1, "the refused value is dropped");
    assert!(g.is_active(), "the sender is still suspended in its switch");
    let report: String = g.switch("not a number").unwrap();
    assert_eq!(report, "u32 <- &str");
    assert!(g.is_dead());
}

/// Ports greenlet's
/// `test_greenlet.py::TestGreenlet::test_falling_off_end_switches_to_unstarted_parent_works`:
/// a child's return value starts its unstarted parent with that value.
#[test]
fn a_return_value_starts_an_unstarted_parent() {
    let parent = Greenlet::new(|x: u32| (x, 24u32));
    let child = Greenlet::new(|()| 42u32);
    child.set_parent(&parent).unwrap();
    let result: (u32, u32) = child.switch(()).unwrap();
    assert_eq!(result, (42, 24));
    assert!(child.is_dead());
    assert!(parent.is_dead());
}

/// Ports greenlet's
/// `test_greenlet.py::TestGreenlet::test_falling_off_end_switches_to_unstarted_parent_raises_error`
/// and `test_parent_return_failure`: a return value of the wrong type for an unstarted parent
/// ends that parent without running it, and the error reaches the grandparent.
#[test]
fn a_return_value_of_the_wrong_type_fails_an_unstarted_parent() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let parent = Greenlet::new(move |s: String| {
        r.set(true);
        s
    });
    let child = Greenlet::new(|()| 42u32);
    child.set_parent(&parent).unwrap();
    match child.switch::<(), String>(()) {
        Err(SwitchError::WrongType { expected, found }) => {
            assert_eq!(expected, "alloc::string::String");
            assert_eq!(found, "u32");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert!(!ran.get());
    assert!(parent.is_dead());
    assert!(child.is_dead());
}

// ---------------------------------------------------------------------------------------------
// current() and main

/// Ports greenlet's `test_greenlet.py::TestGreenletSetParentErrors::test_main_greenlet_parent_is_none`
/// and `TestMainGreenlet::test_main_greenlet_is_greenlet`: in a thread's own code, `current()`
/// is the main greenlet, which has no parent.
#[test]
fn main_is_current_in_the_thread_and_has_no_parent() {
    let cur = greenlet::current();
    assert!(cur.is_main());
    assert!(cur.is_current());
    assert_eq!(cur, greenlet::main());
    assert_eq!(cur.parent(), None);
    assert_eq!(cur.name(), Some("main"));
    assert!(cur.is_started() && cur.is_active() && !cur.is_dead());
    assert_eq!(cur.stack_size(), 0);
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_running_greenlet_has_no_run`'s
/// premise: inside a greenlet, `current()` is that greenlet, not main.
#[test]
fn current_inside_a_greenlet_is_that_greenlet() {
    let g = Greenlet::new(|()| {
        assert!(!greenlet::main().is_current());
        greenlet::current()
    });
    let inside: Greenlet = g.switch(()).unwrap();
    assert_eq!(inside, g);
    assert!(!inside.is_main());
    assert!(!inside.is_current());
    assert!(greenlet::current().is_main());
}

// ---------------------------------------------------------------------------------------------
// Parents

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_parent_equals_None`: a greenlet's
/// parent is the greenlet that created it.
#[test]
fn the_default_parent_is_the_creator() {
    let g = Greenlet::new(|()| ());
    assert_eq!(g.parent(), Some(greenlet::main()));
    let outer = Greenlet::new(|()| {
        let inner = Greenlet::new(|()| ());
        inner.parent() == Some(greenlet::current())
    });
    assert!(outer.switch::<(), bool>(()).unwrap());
}

/// Ports the `g2.parent = g1` step of greenlet's `test_greenlet.py::TestGreenlet::test_exception`:
/// after `set_parent`, the greenlet's return value goes to the new parent's pending switch.
#[test]
fn set_parent_changes_where_the_return_value_goes() {
    let receiver = Greenlet::new(|()| {
        let got: u32 = to_parent(());
        got * 2
    });
    let () = receiver.switch(()).unwrap();
    let child = Greenlet::new(|()| 7u32);
    child.set_parent(&receiver).unwrap();
    assert_eq!(child.parent(), Some(receiver.clone()));
    assert_eq!(child.switch::<(), u32>(()).unwrap(), 14);
    assert!(receiver.is_dead());
}

/// Ports greenlet's `test_greenlet.py::TestGreenletSetParentErrors::test_trivial_cycle`.
#[test]
fn set_parent_to_itself_is_a_cycle() {
    let g = Greenlet::new(|()| ());
    assert_eq!(g.set_parent(&g), Err(ParentError::Cycle));
    assert_eq!(g.parent(), Some(greenlet::main()));
}

/// Ports greenlet's `test_greenlet.py::TestGreenletSetParentErrors::test_deeper_cycle`.
#[test]
fn set_parent_to_a_descendant_is_a_cycle() {
    let g1 = Greenlet::new(|()| ());
    let g2 = Greenlet::new(|()| ());
    let g3 = Greenlet::new(|()| ());
    g1.set_parent(&g2).unwrap();
    g2.set_parent(&g3).unwrap();
    assert_eq!(g3.set_parent(&g1), Err(ParentError::Cycle));
    assert_eq!(g3.parent(), Some(greenlet::main()));
}

/// Ports greenlet's `test_greenlet.py::TestGreenletSetParentErrors::test_trivial_cycle_main`.
#[test]
fn main_cannot_get_a_parent() {
    let main = greenlet::main();
    let g = Greenlet::new(|()| ());
    assert_eq!(main.set_parent(&main), Err(ParentError::Main));
    assert_eq!(main.set_parent(&g), Err(ParentError::Main));
    assert_eq!(main.parent(), None);
}

/// Regression (no Python counterpart; ARCHITECTURE.md, soundness rule 2: "no `RefCell` borrow
/// across a switch"): `set_parent` must not drop the old parent while it holds the borrow of the
/// parent link. When that was the old parent's last handle and the old parent is suspended,
/// dropping it destroys it, which runs its destructors; one that reads the child's parent must
/// not find the link still borrowed.
#[test]
fn set_parent_drops_the_old_parent_outside_the_borrow() {
    let readable: Rc<Cell<Option<bool>>> = Rc::default();
    let r = readable.clone();
    let old_parent = Greenlet::new(move |()| {
        let child = Greenlet::new(|()| ());
        let c = child.clone();
        let _guard = OnDrop(move || {
            let ok = panic::catch_unwind(AssertUnwindSafe(|| c.parent())).is_ok();
            r.set(Some(ok));
        });
        let () = greenlet::main().switch(child).unwrap();
    });
    let child: Greenlet = old_parent.switch(()).unwrap();
    drop(old_parent); // The child's parent link is now the old parent's last handle.
    assert_eq!(readable.get(), None);
    child.set_parent(&greenlet::main()).unwrap();
    assert_eq!(
        readable.get(),
        Some(true),
        "the old parent's destructor found the child's parent link borrowed"
    );
    assert_eq!(child.parent(), Some(greenlet::main()));
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_two_recursive_children`, three levels
/// deep: grandchildren return through the parent chain, each level to its creator.
#[test]
fn grandchildren_return_through_the_parent_chain() {
    let top = Greenlet::new(|base: u32| {
        let mid = Greenlet::new(|x: u32| {
            let leaf = Greenlet::new(|y: u32| y + 1);
            leaf.switch::<u32, u32>(x * 10).unwrap() + 1
        });
        mid.switch::<u32, u32>(base + 1).unwrap() * 2
    });
    // top(1) -> mid(2) -> leaf(20) = 21 -> mid 22 -> top 44.
    assert_eq!(top.switch::<u32, u32>(1).unwrap(), 44);
}

/// Ports greenlet's parent rule ("if the parent is dead, the value goes to the parent's parent",
/// documented in greenlet's "Parents" and relied on by
/// `test_greenlet.py::TestGreenlet::test_dealloc_switch_args_not_lost`): a child whose parent
/// died delivers its return value to the nearest live ancestor.
#[test]
fn a_child_of_a_dead_parent_returns_to_the_nearest_live_ancestor() {
    let mid = Greenlet::new(|()| {
        let child = Greenlet::new(|()| {
            let x: u32 = greenlet::main().switch(greenlet::current()).unwrap();
            x + 1
        });
        let () = child.switch(()).unwrap();
        "mid done"
    });
    // mid starts the child, which hands main its own handle.
    let child: Greenlet = mid.switch(()).unwrap();
    assert_eq!(child.parent(), Some(mid.clone()));
    // mid finishes while the child is still suspended.
    let done: &str = mid.switch(()).unwrap();
    assert_eq!(done, "mid done");
    assert!(mid.is_dead() && child.is_active());
    // The child's return value skips its dead parent.
    assert_eq!(child.switch::<u32, u32>(5).unwrap(), 6);
}

/// Regression (Python greenlet recurses too, but has the interpreter's trashcan): a greenlet
/// keeps its dead parent alive through its parent link, so generations of greenlets that each
/// create their successor and die form a chain; dropping its last handle must not recurse once
/// per generation. 100,000 dead generations, dropped on a test thread's 2 MiB stack, in a child
/// process so that an overflow fails only this test.
#[test]
fn dropping_a_long_chain_of_dead_parents_does_not_overflow_the_stack() {
    if !util::in_child_process("dropping_a_long_chain_of_dead_parents_does_not_overflow_the_stack")
    {
        return;
    }
    const GENERATIONS: usize = 100_000;
    // Dead greenlets hold no stack; link them leaf -> ... -> oldest -> main. Each `set_parent`
    // walks only the new parent's (short) chain, so building is linear.
    let mut chain: Vec<Greenlet> = (0..GENERATIONS)
        .map(|_| {
            let g = Greenlet::new(|()| ());
            let () = g.switch(()).unwrap();
            g
        })
        .collect();
    for pair in chain.windows(2) {
        pair[0].set_parent(&pair[1]).unwrap();
    }
    let leaf = chain.swap_remove(0);
    drop(chain); // Now only the parent links keep the older generations alive.
    let mut depth = 0;
    let mut p = leaf.parent();
    while let Some(g) = p {
        depth += 1;
        p = g.parent();
    }
    assert_eq!(depth, GENERATIONS);
    drop(leaf);
}

// ---------------------------------------------------------------------------------------------
// throw

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_send_exception` and
/// `test_throw.py::ThrowTests::test_kill` with a real error: the error is raised where the
/// greenlet is suspended, its stack unwinds (every destructor runs), and the uncaught error
/// reaches the parent as `SwitchError::Thrown` with the original error inside.
#[test]
fn throw_unwinds_the_greenlet_and_hands_the_error_to_the_parent() {
    let drops = DropCounter::new();
    let resumed = Rc::new(Cell::new(false));
    let (d, res) = (drops.clone(), resumed.clone());
    let g = Greenlet::new(move |()| {
        let _outer = d.token();
        let nested = |d: &DropCounter| {
            let _inner = d.token();
            let () = to_parent(());
        };
        nested(&d);
        res.set(true);
    });
    let () = g.switch(()).unwrap();
    assert_eq!(drops.dropped(), 0);
    let err = g.throw::<_, ()>(SomeError("boom")).unwrap_err();
    assert!(err.is_failure());
    match err {
        SwitchError::Thrown(e) => {
            assert_eq!(*e.downcast::<SomeError>().unwrap(), SomeError("boom"));
        }
        other => panic!("expected Thrown, got {other:?}"),
    }
    assert_eq!(drops.dropped(), 2, "both frames' destructors ran");
    assert!(!resumed.get());
    assert!(g.is_dead());
}

/// Ports the first case of greenlet's `test_throw.py::ThrowTests::test_throw_goes_to_original_parent`:
/// throwing into an unstarted greenlet kills it without running its function (whose captures
/// are dropped), and the error goes to its parent.
#[test]
fn throw_into_an_unstarted_greenlet_kills_it_without_running_it() {
    let ran = Rc::new(Cell::new(false));
    let drops = DropCounter::new();
    let (r, capture) = (ran.clone(), drops.token());
    let g = Greenlet::new(move |()| {
        r.set(true);
        drop(capture);
    });
    match g.throw::<_, ()>(SomeError("early")) {
        Err(SwitchError::Thrown(e)) => assert_eq!(e.to_string(), "some error: early"),
        other => panic!("expected Thrown, got {other:?}"),
    }
    assert!(!ran.get());
    assert!(g.is_dead());
    assert_eq!(drops.dropped(), 1, "the function's captures are dropped");
}

/// Ports greenlet's `test_throw.py::ThrowTests::test_kill`: `GreenletExit` is the quiet
/// exception; the parent receives it as a value. Throwing again into the now dead greenlet is
/// refused with `Dead` (Python hands back another `GreenletExit`): decided difference (b) of
/// the front page.
#[test]
fn throwing_greenlet_exit_gives_the_parent_greenlet_exit_as_a_value() {
    let g = Greenlet::new(|()| {
        let () = to_parent("ok");
        let () = to_parent("fail");
    });
    assert_eq!(g.switch::<(), &str>(()).unwrap(), "ok");
    let exit: GreenletExit = g.throw(GreenletExit).unwrap();
    assert_eq!(exit, GreenletExit);
    assert!(g.is_dead());
    assert!(matches!(
        g.throw::<_, GreenletExit>(GreenletExit),
        Err(SwitchError::Dead)
    ));
}

/// Ports the `GreenletExit` rule of greenlet's `test_throw.py::ThrowTests::test_kill` for a
/// switch expecting another type: it returns `SwitchError::Exited`, which is no failure, while
/// a panic or a thrown error is one.
#[test]
fn greenlet_exit_at_a_switch_expecting_another_type_is_exited_not_a_failure() {
    let g = Greenlet::new(|()| {
        let () = to_parent(());
        5u32
    });
    let () = g.switch(()).unwrap();
    let err = g.throw::<_, u32>(GreenletExit).unwrap_err();
    assert!(matches!(err, SwitchError::Exited), "{err:?}");
    assert!(!err.is_failure());
    assert!(g.is_dead());

    // Raising GreenletExit inside the greenlet ends it quietly too.
    let quiet = Greenlet::new(|()| -> u32 { panic::resume_unwind(Box::new(GreenletExit)) });
    let err = quiet.switch::<(), u32>(()).unwrap_err();
    assert!(matches!(err, SwitchError::Exited) && !err.is_failure());
}

/// Ports greenlet's `test_throw.py::ThrowTests::test_class`: a greenlet can catch a thrown
/// error (with `catch_unwind`) and carry on; the thrower's `throw` returns what the greenlet
/// switches back with.
#[test]
fn a_thrown_error_can_be_caught_and_the_greenlet_carries_on() {
    let g = Greenlet::new(
        |()| match panic::catch_unwind(|| to_parent::<_, ()>("ok")) {
            Err(_) => {
                let () = to_parent("ok");
            }
            Ok(()) => {
                let () = to_parent("fail");
            }
        },
    );
    assert_eq!(g.switch::<(), &str>(()).unwrap(), "ok");
    assert_eq!(g.throw::<_, &str>(SomeError("runtime")).unwrap(), "ok");
    assert!(g.is_active());
}

/// Ports greenlet's `test_throw.py::ThrowTests::test_val`: the greenlet that catches a thrown
/// error can tell which error it is (there, `str(val) == "ciao"`).
///
/// Core gap: the thrown error travels as the crate-private `Thrown` payload, so nothing public
/// can inspect it once caught. `util::thrown_error` expects the payload to be the
/// `Box<dyn Error + Send + Sync>` itself (see the report for the proposed fix).
#[test]
fn a_caught_thrown_error_can_be_inspected() {
    let g = Greenlet::new(|()| {
        let payload = panic::catch_unwind(|| to_parent::<_, ()>("ok")).unwrap_err();
        let verdict = match util::thrown_error(&*payload) {
            Some(e) if e.is::<SomeError>() && e.to_string() == "some error: ciao" => "ok",
            _ => "fail",
        };
        let () = to_parent(verdict);
    });
    assert_eq!(g.switch::<(), &str>(()).unwrap(), "ok");
    assert_eq!(g.throw::<_, &str>(SomeError("ciao")).unwrap(), "ok");
}

/// Ports the second and third cases of greenlet's
/// `test_throw.py::ThrowTests::test_throw_goes_to_original_parent`: an error thrown into a
/// child goes to the child's parent, even when the thrower is someone else; there it is the
/// result of the parent's pending switch (Python raises it there).
#[test]
fn a_thrown_error_goes_to_the_original_parent() {
    fn f1(_: ()) -> &'static str {
        match greenlet::main().switch::<_, ()>("f1 ready to catch") {
            Err(SwitchError::Thrown(e)) if e.is::<SomeError>() => "caught",
            Err(_) => "other error",
            Ok(()) => "normal exit",
        }
    }
    fn f2(_: ()) {
        let () = greenlet::main().switch("from f2").unwrap();
    }

    // Both unstarted: the error kills f2, then f1 without running it, and reaches main.
    let g1 = Greenlet::new(f1);
    let g2 = Greenlet::new(f2);
    g2.set_parent(&g1).unwrap();
    assert!(matches!(
        g2.throw::<_, &str>(SomeError("index")),
        Err(SwitchError::Thrown(_))
    ));
    assert!(g1.is_dead() && g2.is_dead());

    // f1 waiting, f2 unstarted.
    let g1 = Greenlet::new(f1);
    let g2 = Greenlet::new(f2);
    g2.set_parent(&g1).unwrap();
    assert_eq!(g1.switch::<(), &str>(()).unwrap(), "f1 ready to catch");
    assert_eq!(g2.throw::<_, &str>(SomeError("index")).unwrap(), "caught");
    assert!(g1.is_dead() && g2.is_dead());

    // Both waiting.
    let g1 = Greenlet::new(f1);
    let g2 = Greenlet::new(f2);
    g2.set_parent(&g1).unwrap();
    assert_eq!(g1.switch::<(), &str>(()).unwrap(), "f1 ready to catch");
    assert_eq!(g2.switch::<(), &str>(()).unwrap(), "from f2");
    assert_eq!(g2.throw::<_, &str>(SomeError("index")).unwrap(), "caught");
    assert!(g1.is_dead() && g2.is_dead());
}

/// Ports greenlet's throw-into-self rule (`test_throw.py::ThrowTests::test_non_traceback_param`
/// throws into `getcurrent()`): throwing into the running greenlet raises right there; an
/// uncaught `GreenletExit` thrown that way ends the greenlet quietly.
#[test]
fn throw_into_the_running_greenlet_raises_right_there() {
    let g = Greenlet::new(|()| {
        let caught =
            panic::catch_unwind(|| greenlet::current().throw::<_, ()>(SomeError("self"))).is_err();
        let () = to_parent(caught);
        let () = greenlet::current().throw(GreenletExit).unwrap();
        let () = to_parent(false);
    });
    assert!(g.switch::<(), bool>(()).unwrap());
    let exit: GreenletExit = g.switch(()).unwrap();
    assert_eq!(exit, GreenletExit);
    assert!(g.is_dead());
}

/// Decided difference (c) of the front page: greenlet raises an error thrown into the main
/// greenlet (from a child) in main; here main is the thread's own stack and the throw is
/// refused with `NotAllowed`, from main and from a child. A child makes main's pending switch
/// fail by switching to it with an error value.
#[test]
fn throw_into_main_is_not_allowed() {
    let main = greenlet::main();
    assert!(matches!(
        main.throw::<_, ()>(SomeError("x")),
        Err(SwitchError::NotAllowed(_))
    ));
    let g = Greenlet::new(|()| {
        let refused = matches!(
            greenlet::main().throw::<_, ()>(SomeError("x")),
            Err(SwitchError::NotAllowed(_))
        );
        let main = greenlet::main();
        let () = main.switch(refused).unwrap();
        let () = main
            .switch(Err::<u32, SomeError>(SomeError("instead")))
            .unwrap();
    });
    assert!(g.switch::<(), bool>(()).unwrap());
    let failed: Result<u32, SomeError> = g.switch(()).unwrap();
    assert_eq!(failed, Err(SomeError("instead")));
}

/// Decided difference (b) of the front page: greenlet raises an error thrown into a finished
/// greenlet in that greenlet's parent (here main, the thrower itself); here the throw is
/// refused with `Dead`, nothing unwinds, and the error is dropped.
#[test]
fn throw_into_a_finished_greenlet_is_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An error that counts its drops.
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);
    impl std::fmt::Display for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("counted")
        }
    }
    impl std::error::Error for Counted {}
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let g = Greenlet::new(|()| 1u32);
    assert_eq!(g.switch::<(), u32>(()).unwrap(), 1);
    let drops = Arc::new(AtomicUsize::new(0));
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        g.throw::<_, u32>(Counted(drops.clone()))
    }));
    assert!(matches!(r, Ok(Err(SwitchError::Dead))), "{r:?}");
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // The parent (main) goes on switching normally.
    let h = Greenlet::new(|x: u32| x + 1);
    assert_eq!(h.switch::<u32, u32>(1).unwrap(), 2);
}

// ---------------------------------------------------------------------------------------------
// Panics

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_exception` (an uncaught exception
/// ends the greenlet and is raised in its parent): a panic inside a greenlet becomes
/// `SwitchError::Panicked` for the parent, the process does not abort, the greenlet is dead and
/// other greenlets keep working.
#[test]
fn a_panic_in_a_greenlet_is_an_error_for_its_parent() {
    let g = Greenlet::new(|()| -> u32 { panic!("boom {}", 42) });
    let err = g.switch::<(), u32>(()).unwrap_err();
    match &err {
        SwitchError::Panicked(p) => assert_eq!(p.message(), Some("boom 42")),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(err.is_failure());
    assert!(g.is_dead());
    assert!(matches!(g.switch::<(), u32>(()), Err(SwitchError::Dead)));

    let s = Greenlet::new(|()| -> u32 { panic!("a static message") });
    match s.switch::<(), u32>(()) {
        Err(SwitchError::Panicked(p)) => assert_eq!(p.message(), Some("a static message")),
        other => panic!("expected Panicked, got {other:?}"),
    }

    let h = Greenlet::new(|x: u32| x * 2);
    assert_eq!(h.switch::<u32, u32>(21).unwrap(), 42);
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_exception` in full: g2's parent is
/// set to g1; g2 panics; g1's pending switch receives the panic, records it and re-raises it;
/// g1 dies and main receives the panic. Python's last steps, `g2.switch()` returning `()` and
/// `g2.switch(25)` returning 25 (the switch to dead g2 goes on to main, the caller), are
/// `Err(Dead)` here: decided difference (a) of the front page.
#[test]
fn a_panic_goes_to_the_parents_pending_switch() {
    fn fmain(seen: Log) -> impl FnOnce(()) + 'static {
        move |()| {
            if let Err(e) = try_to_parent::<(), ()>(()) {
                seen.push(e.to_string());
                if let SwitchError::Panicked(p) = e {
                    panic::resume_unwind(p.into_payload());
                }
            }
            panic!("SomeError");
        }
    }
    let seen = Log::new();
    let g1 = Greenlet::new(fmain(seen.clone()));
    let g2 = Greenlet::new(fmain(seen.clone()));
    let () = g1.switch(()).unwrap();
    let () = g2.switch(()).unwrap();
    g2.set_parent(&g1).unwrap();
    assert!(seen.events().is_empty());
    match g2.switch::<(), ()>(()) {
        Err(SwitchError::Panicked(p)) => assert_eq!(p.message(), Some("SomeError")),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(seen.events(), ["greenlet panicked: SomeError"]);
    assert!(g1.is_dead() && g2.is_dead());
    assert!(matches!(g2.switch::<(), ()>(()), Err(SwitchError::Dead)));
}

// ---------------------------------------------------------------------------------------------
// Dropping greenlets

/// A greenlet body for `test_dealloc`: waits in a switch to its parent and records the
/// `GreenletExit` that dropping its last handle raises there.
fn records_greenlet_exit(seen: Log) -> impl FnOnce(()) + 'static {
    move |()| {
        if let Err(payload) = panic::catch_unwind(|| to_parent::<(), ()>(())) {
            seen.push(if payload.is::<GreenletExit>() {
                "GreenletExit"
            } else {
                "something else"
            });
            panic::resume_unwind(payload);
        }
    }
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_dealloc`: dropping the last handle of
/// a suspended greenlet raises `GreenletExit` where it is suspended; dropping another handle
/// does nothing.
#[test]
fn dropping_a_suspended_greenlet_raises_greenlet_exit_in_it() {
    let seen = Log::new();
    let g1 = Greenlet::new(records_greenlet_exit(seen.clone()));
    let g2 = Greenlet::new(records_greenlet_exit(seen.clone()));
    let () = g1.switch(()).unwrap();
    let () = g2.switch(()).unwrap();
    let g1_again = g1.clone();
    drop(g1);
    assert!(seen.events().is_empty(), "another handle is still alive");
    drop(g1_again);
    assert_eq!(seen.events(), ["GreenletExit"]);
    drop(g2);
    assert_eq!(seen.events(), ["GreenletExit", "GreenletExit"]);
}

/// Recurses `depth` frames deep, each holding a token, then waits in a switch to the parent.
fn descend(depth: u32, drops: &DropCounter) {
    let _token = drops.token();
    if depth == 0 {
        let () = to_parent(());
    } else {
        descend(depth - 1, drops);
    }
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_dealloc` with destructors in place of
/// `except`: dropping a greenlet suspended ten frames deep runs every destructor on its stack,
/// in every frame, and its captures'.
#[test]
fn dropping_a_suspended_greenlet_runs_every_destructor_on_its_stack() {
    let drops = DropCounter::new();
    let resumed = Rc::new(Cell::new(false));
    let (d, res, capture) = (drops.clone(), resumed.clone(), drops.token());
    let g = Greenlet::new(move |()| {
        let _capture = capture;
        let _boxed = Box::new(d.token());
        descend(9, &d);
        res.set(true);
    });
    let () = g.switch(()).unwrap();
    assert_eq!(drops.dropped(), 0);
    drop(g);
    assert_eq!(drops.dropped(), 12, "capture + box + ten frames");
    assert!(!resumed.get());
}

/// No direct Python counterpart (an unstarted Python greenlet just releases its `run`):
/// dropping an unstarted greenlet drops its function's captures without running it.
#[test]
fn dropping_an_unstarted_greenlet_drops_its_captures_without_running_it() {
    let drops = DropCounter::new();
    let ran = Rc::new(Cell::new(false));
    let (r, capture) = (ran.clone(), drops.token());
    let g = Greenlet::new(move |()| {
        r.set(true);
        drop(capture);
    });
    drop(g);
    assert_eq!(drops.dropped(), 1);
    assert!(!ran.get());
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_parent_restored_on_kill`: a greenlet
/// being destroyed tries to switch to another greenlet from its cleanup. Python lets it; here
/// the switch returns `SwitchError::NotAllowed`, the other greenlet does not start, and the
/// destruction completes.
#[test]
fn switching_from_a_destructor_during_destruction_is_not_allowed() {
    let hub = Greenlet::new(|()| ());
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let (h, o) = (hub.clone(), outcome.clone());
    let g = Greenlet::new(move |()| {
        let _guard = OnDrop(move || {
            let r = h.switch::<(), ()>(());
            *o.borrow_mut() = Some(format!("{r:?}"));
        });
        let () = greenlet::main().switch(()).unwrap();
    });
    let () = g.switch(()).unwrap();
    drop(g);
    let got = outcome.borrow_mut().take().expect("the destructor ran");
    assert!(got.starts_with("Err(NotAllowed("), "{got}");
    assert!(!hub.is_started());
}

/// Regression (no Python counterpart): a destructor of a greenlet that main is destroying (by
/// dropping its last handle) switches to main. Main is not the current greenlet then — it only
/// runs the destruction — so the switch must be refused with `NotAllowed`, not "succeed" at
/// once as a switch to oneself would.
#[test]
fn switching_to_main_from_a_destructor_during_destruction_is_not_allowed() {
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let o = outcome.clone();
    let g = Greenlet::new(move |()| {
        let _guard = OnDrop(move || {
            let r = greenlet::main().switch::<u32, u32>(7);
            *o.borrow_mut() = Some(format!("{r:?}"));
        });
        let () = greenlet::main().switch(()).unwrap();
    });
    let () = g.switch(()).unwrap();
    drop(g);
    let got = outcome.borrow_mut().take().expect("the destructor ran");
    assert!(got.starts_with("Err(NotAllowed("), "{got}");
}

/// Regression (no Python counterpart): as above, when the destruction runs inside another
/// greenlet, which the destructor then tries to switch to.
#[test]
fn switching_to_the_destroying_greenlet_from_a_destructor_is_not_allowed() {
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let o = outcome.clone();
    let dropper = Greenlet::new(move |()| {
        let me = greenlet::current();
        let victim = Greenlet::new(move |()| {
            let _guard = OnDrop(move || {
                let r = me.switch::<u32, u32>(7);
                *o.borrow_mut() = Some(format!("{r:?}"));
            });
            let () = to_parent(());
        });
        let () = victim.switch(()).unwrap();
        drop(victim);
    });
    let () = dropper.switch(()).unwrap();
    assert!(dropper.is_dead());
    let got = outcome.borrow_mut().take().expect("the destructor ran");
    assert!(got.starts_with("Err(NotAllowed("), "{got}");
}

/// Regression (no Python counterpart: Python's exceptions are per frame, Rust's panic count is
/// per thread): a greenlet unwinding a panic whose destructor tries to switch away must be
/// refused with `NotAllowed`. Otherwise the greenlet it switches to runs while
/// `std::thread::panicking()` is true (and the unwinding greenlet stays parked inside a
/// cleanup, see the next test).
#[test]
fn a_greenlet_unwinding_a_panic_cannot_switch_away() {
    let outcome: Rc<RefCell<Option<String>>> = Rc::default();
    let o = outcome.clone();
    let g = Greenlet::new(move |()| {
        let _guard = OnDrop(move || {
            let r = greenlet::main().switch::<(), ()>(());
            *o.borrow_mut() = Some(format!("{r:?}"));
        });
        panic!("unwinding");
    });
    let first = g.switch::<(), ()>(());
    let main_saw_a_panic = std::thread::panicking();
    if g.is_active() {
        // The destructor did switch: let the greenlet finish unwinding before asserting.
        let _ = g.switch::<(), ()>(());
    }
    assert!(
        !main_saw_a_panic,
        "main ran while the greenlet was unwinding, and saw std::thread::panicking()"
    );
    assert!(matches!(first, Err(SwitchError::Panicked(_))), "{first:?}");
    let got = outcome.borrow_mut().take().expect("the destructor ran");
    assert!(got.starts_with("Err(NotAllowed("), "{got}");
}

/// Regression (no Python counterpart): a greenlet that switched away from a destructor while
/// unwinding a panic, and is then dropped, must not abort the process. (Dropping throws
/// `GreenletExit` where it waits, inside that destructor: Rust aborts on a panic escaping a
/// destructor during unwinding.) Runs in a child process, so that an abort fails only this
/// test.
#[test]
fn dropping_a_greenlet_parked_while_unwinding_does_not_abort() {
    if !util::in_child_process("dropping_a_greenlet_parked_while_unwinding_does_not_abort") {
        return;
    }
    let g = Greenlet::new(|()| {
        let _guard = OnDrop(|| {
            let _ = greenlet::main().switch::<(), ()>(());
        });
        panic!("unwinding");
    });
    let _ = g.switch::<(), ()>(());
    drop(g);
}

/// Regression (Python's `except Exception` does not catch `GreenletExit`, but Rust's
/// `catch_unwind` catches everything): dropping a greenlet whose body catches every panic in a
/// loop and goes back to waiting must end. The body gets `GreenletExit`, then `NotAllowed` for
/// a few attempts, and is then given up; it must not be resumed over and over until it stops
/// by itself (here it stops after 1000 attempts, so that the test ends either way).
#[test]
fn dropping_a_greenlet_that_catches_every_panic_in_a_loop_ends() {
    // A suspended greenlet that bounces every switch on to main, like a hub.
    let hub = Greenlet::new(|()| {
        loop {
            let () = greenlet::main().switch(()).unwrap();
        }
    });
    let () = hub.switch(()).unwrap();
    let attempts = Rc::new(Cell::new(0u32));
    let (a, h) = (attempts.clone(), hub.clone());
    let g = Greenlet::new(move |()| {
        while a.get() < 1000 {
            a.set(a.get() + 1);
            let _ = panic::catch_unwind(AssertUnwindSafe(|| h.switch::<(), ()>(())));
        }
    });
    let () = g.switch(()).unwrap();
    assert_eq!(attempts.get(), 1);
    drop(g);
    assert!(
        attempts.get() < 100,
        "the greenlet was resumed {} times while being destroyed",
        attempts.get()
    );
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_dealloc_catches_GreenletExit_throws_other`:
/// a greenlet that answers `GreenletExit` with another panic while being destroyed does not
/// crash the process; the panic is dropped (Python prints it as "ignored").
#[test]
fn a_panic_while_answering_greenlet_exit_on_drop_is_contained() {
    let drops = DropCounter::new();
    let capture = drops.token();
    let g = Greenlet::new(move |()| {
        let _capture = capture;
        if panic::catch_unwind(|| to_parent::<(), ()>(())).is_err() {
            panic!("SomeError while exiting");
        }
    });
    let () = g.switch(()).unwrap();
    drop(g);
    assert_eq!(drops.dropped(), 1);
    let h = Greenlet::new(|x: u32| x + 1);
    assert_eq!(h.switch::<u32, u32>(1).unwrap(), 2);
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_dealloc_switch_args_not_lost`: a
/// greenlet gives up every handle to itself, then switches to main with a value. The value
/// arrives; the greenlet is destroyed after switching out (its cleanup runs).
#[test]
fn a_value_switched_by_a_greenlet_that_dropped_its_last_handle_is_not_lost() {
    let worker_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let initiator_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let cleaned_up = Rc::new(Cell::new(false));
    let (ws, is, c) = (
        worker_slot.clone(),
        initiator_slot.clone(),
        cleaned_up.clone(),
    );
    let worker = Greenlet::new(move |()| {
        let value: u32 = to_parent(());
        // Delete main's reference to us, and the initiator's parent link.
        drop(ws.borrow_mut().take());
        let initiator = is.borrow().clone().unwrap();
        initiator.set_parent(&greenlet::main()).unwrap();
        drop(initiator);
        let _finally = OnDrop(move || c.set(true));
        let () = to_parent(value);
    });
    let () = worker.switch(()).unwrap();
    let initiator = Greenlet::new(|()| 42u32);
    initiator.set_parent(&worker).unwrap();
    *worker_slot.borrow_mut() = Some(worker);
    *initiator_slot.borrow_mut() = Some(initiator.clone());
    let value: u32 = initiator.switch(()).unwrap();
    assert_eq!(value, 42);
    assert!(cleaned_up.get());
    assert!(worker_slot.borrow().is_none());
}

/// Regression (Python's `test_dealloc_switch_args_not_lost` resurrects the greenlet the same
/// way, with `seen.append(greenlet.getcurrent())` in its `finally`): a greenlet destroyed right
/// after it switched away, whose cleanup keeps a handle on it, is dead afterwards; a switch to
/// it is refused with `Dead`.
#[test]
fn a_greenlet_kept_alive_by_its_own_cleanup_ends_dead() {
    let worker_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let initiator_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let kept: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let (ws, is, k) = (worker_slot.clone(), initiator_slot.clone(), kept.clone());
    let worker = Greenlet::new(move |()| {
        let value: u32 = to_parent(());
        drop(ws.borrow_mut().take());
        let initiator = is.borrow().clone().unwrap();
        initiator.set_parent(&greenlet::main()).unwrap();
        drop(initiator);
        let _finally = OnDrop(move || *k.borrow_mut() = Some(greenlet::current()));
        let () = to_parent(value);
    });
    let () = worker.switch(()).unwrap();
    let initiator = Greenlet::new(|()| 42u32);
    initiator.set_parent(&worker).unwrap();
    *worker_slot.borrow_mut() = Some(worker);
    *initiator_slot.borrow_mut() = Some(initiator.clone());
    assert_eq!(initiator.switch::<(), u32>(()).unwrap(), 42);
    let worker = kept.borrow_mut().take().expect("the cleanup kept a handle");
    let dbg = format!("{worker:?}");
    assert!(worker.is_dead(), "{dbg}");
    assert!(matches!(
        worker.switch::<(), ()>(()),
        Err(SwitchError::Dead)
    ));
}

/// Regression (no Python counterpart: Python's thread-state teardown kills a dead thread's
/// greenlets itself): a suspended greenlet kept in a `thread_local!` that the thread touched
/// before its first greenlet is dropped at thread exit, after the thread's greenlet runtime is
/// gone. It must still unwind cleanly (its destructors run) instead of dereferencing the
/// vanished current greenlet. Runs in a child process, so that a crash fails only this test.
#[test]
fn a_greenlet_kept_in_a_thread_local_is_destroyed_at_thread_exit() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static KEEP: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
    }
    if !util::in_child_process("a_greenlet_kept_in_a_thread_local_is_destroyed_at_thread_exit") {
        return;
    }
    let thread = std::thread::spawn(|| {
        // Registered before the greenlet runtime: destroyed after it at thread exit.
        KEEP.with(|_| ());
        let g = Greenlet::new(|()| {
            let _guard = OnDrop(|| {
                DROPPED.fetch_add(1, Ordering::SeqCst);
            });
            let () = greenlet::main().switch(()).unwrap();
        });
        let () = g.switch(()).unwrap();
        KEEP.with(|k| k.borrow_mut().push(g));
    });
    assert!(thread.join().is_ok());
    assert_eq!(DROPPED.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// States, Debug, dead greenlets

/// Ports greenlet's `test_greenlet.py::TestRepr` (`test_initial`, `test_main_while_running`,
/// `test_main_in_background`, `test_dead`) and the `dead` / `bool(g)` attributes:
/// `is_started`, `is_active`, `is_dead` and the `Debug` state word at every stage.
#[test]
fn state_queries_and_debug_follow_the_life_cycle() {
    type Inside = (String, String, (bool, bool, bool));
    let g = Builder::new()
        .name("worker")
        .build(|()| {
            let me = greenlet::current();
            let seen: Inside = (
                format!("{me:?}"),
                format!("{:?}", greenlet::main()),
                (me.is_started(), me.is_active(), me.is_dead()),
            );
            drop(me);
            let () = to_parent(seen);
        })
        .unwrap();
    let dbg = format!("{g:?}");
    assert!(dbg.contains("unstarted") && dbg.contains("worker"), "{dbg}");
    assert_eq!(
        (g.is_started(), g.is_active(), g.is_dead()),
        (false, false, false)
    );

    let (inside, main_inside, flags): Inside = g.switch(()).unwrap();
    assert!(
        inside.contains("running") && inside.contains("worker"),
        "{inside}"
    );
    assert!(
        main_inside.contains("suspended") && main_inside.contains("main"),
        "{main_inside}"
    );
    assert_eq!(flags, (true, true, false));

    let dbg = format!("{g:?}");
    assert!(dbg.contains("suspended") && dbg.contains("worker"), "{dbg}");
    assert_eq!(
        (g.is_started(), g.is_active(), g.is_dead()),
        (true, true, false)
    );
    let main = format!("{:?}", greenlet::main());
    assert!(main.contains("running") && main.contains("main"), "{main}");

    let () = g.switch(()).unwrap();
    let dbg = format!("{g:?}");
    assert!(dbg.contains("dead") && dbg.contains("worker"), "{dbg}");
    assert!(
        !dbg.contains("suspended") && !dbg.contains("running"),
        "{dbg}"
    );
    assert_eq!(
        (g.is_started(), g.is_active(), g.is_dead()),
        (true, false, true)
    );
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_switch_to_dead_greenlet_reparent`
/// with this crate's rule, decided difference (a) of the front page: where Python switches to
/// a dead greenlet's parent instead, here the switch is refused with `SwitchError::Dead`, the
/// value is dropped, and no parent is started (not even an unstarted one given with
/// `set_parent`).
#[test]
fn switching_to_a_dead_greenlet_is_refused() {
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let never_started = Greenlet::new(move |()| s.set(true));
    let child = Greenlet::new(|()| 42u32);
    assert_eq!(child.switch::<(), u32>(()).unwrap(), 42);
    child.set_parent(&never_started).unwrap();
    let drops = DropCounter::new();
    assert!(matches!(
        child.switch::<_, ()>(drops.token()),
        Err(SwitchError::Dead)
    ));
    assert_eq!(drops.dropped(), 1);
    assert!(!started.get() && !never_started.is_started());
}

/// No Python counterpart: a builder names the greenlet and gives it a stack of at least the
/// size asked for, which it can use; the default is `DEFAULT_STACK_SIZE`.
#[test]
fn builder_names_the_greenlet_and_sizes_its_stack() {
    let g = Builder::new()
        .name("big")
        .stack_size(512 * 1024)
        .build(|()| {
            let buf = std::hint::black_box([1u8; 96 * 1024]);
            buf.iter().map(|&b| u32::from(b)).sum::<u32>()
        })
        .unwrap();
    assert_eq!(g.name(), Some("big"));
    assert!(g.stack_size() >= 512 * 1024);
    assert_eq!(g.switch::<(), u32>(()).unwrap(), 96 * 1024);
    let d = Greenlet::new(|()| ());
    assert!(d.stack_size() >= DEFAULT_STACK_SIZE);
    assert_eq!(d.name(), None);
}

// ---------------------------------------------------------------------------------------------
// Memory (bounds on resident memory, never timings)

/// Ports greenlet's `test_leaks.py::TestLeaks::test_untracked_memory_doesnt_increase`:
/// creating, running to completion and dropping 100,000 greenlets does not grow memory, because
/// every finished greenlet's stack is given back.
#[test]
fn finished_greenlets_give_their_stacks_back() {
    let _serial = util::memory_lock();
    let run = |n: u64| {
        for i in 0..n {
            let g = Greenlet::new(|x: u64| x + 1);
            assert_eq!(g.switch::<u64, u64>(i).unwrap(), i + 1);
        }
    };
    run(1000); // Warm up the stack pool.
    let before = util::rss_kib();
    run(100_000);
    let after = util::rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_frame` (a dead greenlet's `gr_frame`
/// is `None`: it holds no frames): a greenlet gives its stack back when it finishes, not when
/// its last handle goes. 100,000 finished greenlets kept alive hold no stacks: with a stack
/// each they would need gigabytes, or more memory maps than `vm.max_map_count` allows.
#[test]
fn dead_greenlets_kept_alive_hold_no_stack() {
    let _serial = util::memory_lock();
    let before = util::rss_kib();
    let dead: Vec<Greenlet> = (0..100_000u32)
        .map(|i| {
            let g = Greenlet::new(move |()| i);
            assert_eq!(g.switch::<(), u32>(()).unwrap(), i);
            g
        })
        .collect();
    let after = util::rss_kib();
    assert!(dead.iter().all(Greenlet::is_dead));
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

// ---------------------------------------------------------------------------------------------
// Examples

/// Runs `examples/greenlet_switch.rs`, the reference article's greenlet demo, and checks its
/// exact output.
#[test]
fn example_greenlet_switch_prints_12_56_34_78() {
    assert_eq!(
        util::run_example("greenlet_switch", &[]),
        "12\n56\n34\n78\n"
    );
}

/// Runs `examples/alive.rs` at test size (`alive 1000`) and checks the shape of its report.
#[test]
fn example_alive_parks_a_thousand_greenlets() {
    let out = util::run_example("alive", &["1000"]);
    let mut lines = out.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("alive: 1000 greenlets suspended in ") && first.contains(" KiB each ("),
        "{out}"
    );
    let second = lines.next().unwrap_or_default();
    assert!(
        second.starts_with("alive: dropped 1000 greenlets in "),
        "{out}"
    );
}
