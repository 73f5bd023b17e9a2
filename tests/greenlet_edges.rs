//! Edge cases from greenlet's `test_greenlet.py` that `tests/greenlet.rs` does not hold: C
//! frames between a greenlet's switches, handles that are not copies, and a destructor that
//! switches while a greenlet starts.

mod util;

use greenlet::Greenlet;
use util::{Log, OnDrop};

/// Calls `cb(v)` through a C-ABI frame (the shape of a C library calling back into Rust).
extern "C" fn call_through_c(v: u64, cb: extern "C" fn(u64) -> u64) -> u64 {
    cb(v)
}

/// `v!` times what the greenlet is resumed with, each level of the recursion going through a
/// C-ABI frame; the innermost level suspends the greenlet there.
extern "C" fn factorial_times_resumed(v: u64) -> u64 {
    if v > 0 {
        v * call_through_c(v - 1, factorial_times_resumed)
    } else {
        let main = greenlet::main();
        main.switch::<(), u64>(()).unwrap()
    }
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_get_stack_with_nested_c_calls`: a
/// greenlet suspended five C-ABI frames deep, while another greenlet runs, resumes there with
/// the value it is sent and unwinds back through those frames: 5! x 10 = 1200.
#[test]
fn a_greenlet_suspended_inside_c_frames_resumes_there() {
    let g = Greenlet::new(|v: u64| factorial_times_resumed(v));
    let () = g.switch(5u64).unwrap();
    // Something else runs in between, on its own stack.
    let other = Greenlet::new(|x: u64| x + 1);
    assert_eq!(other.switch::<u64, u64>(1).unwrap(), 2);
    assert_eq!(g.switch::<u64, u64>(10).unwrap(), 1200);
    assert!(g.is_dead());
}

/// Ports greenlet's `test_greenlet.py::TestGreenlet::test_deepcopy` (copying a greenlet is a
/// `TypeError`): a greenlet cannot be copied; `clone` gives another handle on the same
/// greenlet, through which it is resumed where it stands.
#[test]
fn cloning_a_greenlet_gives_another_handle_not_a_copy() {
    let g = Greenlet::new(|mut n: u32| {
        loop {
            let main = greenlet::main();
            n = main.switch(n + 1).unwrap();
        }
    });
    let h = g.clone();
    assert_eq!(h, g);
    assert_eq!(h.id(), g.id());
    assert_eq!(g.switch::<u32, u32>(1).unwrap(), 2);
    assert!(h.is_started(), "the clone sees the same greenlet start");
    assert_eq!(h.switch::<u32, u32>(10).unwrap(), 11);
}

/// Ports greenlet's `test_greenlet.py::TestBrokenGreenlets::test_reentrant_switch_run_callable_has_del`
/// (the greenlet's `run` callable has a `__del__` that switches to main while the greenlet
/// starts): a greenlet whose function drops a capture first thing, whose destructor switches
/// to main; main's first switch to it returns what that destructor sent, and the function
/// goes on once main switches back.
#[test]
fn a_destructor_run_as_a_greenlet_starts_may_switch() {
    let log = Log::new();
    let l = log.clone();
    let run_callable = OnDrop(move || {
        l.push("RunCallable drop");
        let main = greenlet::main();
        let () = main.switch("from RunCallable").unwrap();
    });
    let l = log.clone();
    let g = Greenlet::new(move |()| {
        drop(run_callable);
        l.push("run_func enter");
    });
    let got: &str = g.switch(()).unwrap();
    log.push(format!("main: g.switch() {got}"));
    let () = g.switch(()).unwrap();
    assert!(g.is_dead());
    assert_eq!(
        log.events(),
        [
            "RunCallable drop",
            "main: g.switch() from RunCallable",
            "run_func enter"
        ]
    );
}
