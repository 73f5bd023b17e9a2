//! The switch state stays consistent whatever user code does: a destructor that panics while
//! the runtime drops a value (a destroyed greenlet's, one left for the hub) never leaves the
//! running greenlet pointing at a freed or wrong greenlet. These tests are also run under
//! valgrind's memcheck by `scripts/valgrind.sh`, which is where a use-after-free shows.

mod util;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{Greenlet, GreenletExit, SwitchError};
use util::DropCounter;

/// A value whose destructor panics (unless the thread is already unwinding, where a panic would
/// abort the process whatever the runtime does).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// Asserts that the runtime is healthy from main's point of view: main is current and
/// running, an explicit switch works, and the hub runs spawned greenlets.
fn assert_runtime_works() {
    let me = greenlet::current();
    assert!(me.is_main(), "current() is {me:?}, not main");
    assert!(me.is_current());
    let g = Greenlet::new(|x: u32| x + 1);
    assert_eq!(g.switch::<u32, u32>(41).unwrap(), 42);
    assert_eq!(greenlet::spawn(|| 7).get().unwrap(), 7);
    assert!(greenlet::current().is_main());
}

/// A greenlet that catches the `GreenletExit` of its destruction and returns a value whose
/// destructor panics.
fn catches_exit_and_returns_a_panicking_value() -> Greenlet {
    let g = Greenlet::new(|()| {
        let r = panic::catch_unwind(|| {
            let () = greenlet::main().switch(()).unwrap();
        });
        assert!(r.is_err_and(|p| p.is::<GreenletExit>()));
        PanicOnDrop("the destroyed greenlet's value")
    });
    let () = g.switch(()).unwrap();
    g
}

/// Regression (issue 8, defect 1: use-after-free): dropping the last handle of a greenlet that
/// catches `GreenletExit` and returns a value whose `Drop` panics. The panic used to escape
/// `destroy` before `CURRENT` and main's state were restored; the greenlet was freed, and the
/// next `current()` incremented the count of freed memory. Now the value is dropped once the
/// state is restored, and its panic is logged, not thrown at the code that dropped the handle.
#[test]
fn dropping_a_greenlet_whose_value_panics_on_drop_leaves_current_valid() {
    let g = catches_exit_and_returns_a_panicking_value();
    drop(g);
    assert_runtime_works();
}

/// Regression (issue 8, defect 1, second form): the same drop made by a spawned greenlet,
/// whose own body (`run_spawned`) then asks for `current()` to finish.
#[test]
fn a_spawned_greenlet_dropping_a_greenlet_whose_value_panics_on_drop_finishes() {
    let g = catches_exit_and_returns_a_panicking_value();
    let h = greenlet::spawn(move || {
        drop(g);
        greenlet::current().is_main()
    });
    assert_eq!(h.get().unwrap(), false);
    assert_runtime_works();
}

/// Regression (issue 8, defect 2: wedged runtime): a greenlet given the hub as parent (the hub
/// is reachable as the parent of any spawned greenlet) returns a value whose `Drop` panics.
/// The panic used to unwind out of the dispatch loop with the hub current: main "was" the hub,
/// every later switch was refused and `spawn(..).get()` panicked. Now the hub drops it quietly
/// and goes on; main's switch ends with `LoopExit` (nothing wakes main: it waits for a value
/// that went to the hub).
#[test]
fn a_value_left_for_the_hub_that_panics_on_drop_does_not_wedge_the_runtime() {
    let hub = greenlet::spawn(|| ()).greenlet().parent().expect("the hub");
    assert!(!hub.is_main());
    let g = Greenlet::new(|()| PanicOnDrop("a value left for the hub"));
    g.set_parent(&hub).unwrap();
    let r = g.switch::<(), ()>(());
    assert!(matches!(r, Err(SwitchError::LoopExit { .. })), "{r:?}");
    assert!(g.is_dead());
    assert_runtime_works();
}

/// Regression (issue 8, defect 1, in the dispatch loop): a greenlet gives up every handle on
/// itself and switches to main, so the dispatch loop holds its last handle and drops it
/// between two resumes; the greenlet catches the `GreenletExit` of its destruction and leaves a
/// value whose destructor panics. Main must get the value switched to it and stay the running
/// greenlet (the loop used to leave `CURRENT` on the freed greenlet).
#[test]
fn a_greenlet_destroyed_between_two_resumes_leaves_current_valid() {
    let worker_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let initiator_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let cleaned = Rc::new(Cell::new(false));
    let (ws, is, c) = (worker_slot.clone(), initiator_slot.clone(), cleaned.clone());
    let worker = Greenlet::new(move |()| {
        let value: u32 = greenlet::main().switch(()).unwrap();
        drop(ws.borrow_mut().take());
        let initiator = is.borrow_mut().take().unwrap();
        initiator.set_parent(&greenlet::main()).unwrap();
        drop(initiator);
        let r = panic::catch_unwind(|| greenlet::main().switch::<u32, ()>(value));
        assert!(r.is_err_and(|p| p.is::<GreenletExit>()));
        c.set(true);
        PanicOnDrop("left by a greenlet destroyed between resumes")
    });
    let () = worker.switch(()).unwrap();
    let initiator = Greenlet::new(|()| 42u32);
    initiator.set_parent(&worker).unwrap();
    *worker_slot.borrow_mut() = Some(worker);
    *initiator_slot.borrow_mut() = Some(initiator.clone());
    let value: u32 = initiator.switch(()).unwrap();
    assert_eq!(value, 42);
    assert!(
        cleaned.get(),
        "the worker was destroyed when the loop dropped it"
    );
    assert_runtime_works();
}

/// Regression (issue 8, siblings of defect 1): a greenlet-local value whose destructor panics,
/// and a thrown error caught and answered with a panicking value, never reach main or
/// the hub.
#[test]
fn panicking_destructors_of_locals_and_captures_are_contained() {
    greenlet::greenlet_local! {
        static PANICS: Cell<Option<PanicOnDrop>> = Cell::new(None);
    }
    let drops = DropCounter::new();
    let token = drops.token();
    let h = greenlet::spawn(move || {
        let _token = token;
        PANICS.with(|p| p.set(Some(PanicOnDrop("a greenlet-local value"))));
        greenlet::sleep(std::time::Duration::from_secs(3600));
    });
    greenlet::yield_now();
    h.kill().unwrap();
    assert_eq!(drops.dropped(), 1);
    // An unstarted greenlet whose function captures a panicking value: dropped on the
    // greenlet's own stack (corosensei would abort on a panic out of dropping its coroutine),
    // and the panic is logged there.
    let g = Greenlet::new({
        let v = PanicOnDrop("a capture");
        move |()| drop(v)
    });
    let r = panic::catch_unwind(AssertUnwindSafe(move || drop(g)));
    assert!(r.is_ok());
    assert_runtime_works();
}
