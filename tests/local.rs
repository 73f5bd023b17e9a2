//! Greenlet-local storage (gevent's `local`): ports of gevent's `test__local.py` where they
//! apply to a typed key, and of greenlet's `test_contextvars.py`, whose per-greenlet context
//! variables are what greenlet-locals are here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use greenlet::{Greenlet, JoinError};

/// Counts live values, to see when they are dropped.
struct Sentinel {
    drops: Rc<Cell<usize>>,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

thread_local! {
    static CREATED: Cell<usize> = const { Cell::new(0) };
    static DROPS: Rc<Cell<usize>> = Rc::new(Cell::new(0));
}

fn drops() -> usize {
    DROPS.with(|d| d.get())
}

greenlet::greenlet_local! {
    static NUMBER: Cell<u32> = Cell::new(0);
    static NAME: RefCell<String> = RefCell::new(String::from("unset"));
    static SENTINEL: Sentinel = {
        CREATED.with(|c| c.set(c.get() + 1));
        Sentinel { drops: DROPS.with(Rc::clone) }
    };
    /// An initialiser that reads another local.
    static DERIVED: String = NAME.with(|n| format!("derived from {}", n.borrow()));
}

/// Ports gevent's `test__local.py::TestGeventLocal::test_local_opts_not_subclassed` (a value
/// set is read back) and `TestGeventLocal::test_attribute_error` (a value set in another
/// greenlet is not seen): each greenlet sees its own value, created on first use; main's is
/// untouched.
#[test]
fn values_are_per_greenlet() {
    NUMBER.with(|n| n.set(1));
    let hs: Vec<_> = (2..6u32)
        .map(|i| {
            greenlet::spawn(move || {
                assert_eq!(
                    NUMBER.with(Cell::get),
                    0,
                    "a fresh greenlet starts from the initialiser"
                );
                NUMBER.with(|n| n.set(i));
                greenlet::yield_now(); // others set theirs meanwhile
                NUMBER.with(Cell::get)
            })
        })
        .collect();
    let got: Vec<u32> = hs.iter().map(|h| h.get().unwrap()).collect();
    assert_eq!(got, [2, 3, 4, 5]);
    assert_eq!(NUMBER.with(Cell::get), 1);
}

/// Ports gevent's `test__local.py::TestGeventLocal::test_objects`: two locals of one greenlet
/// are independent.
#[test]
fn keys_are_independent() {
    let h = greenlet::spawn(|| {
        NUMBER.with(|n| n.set(7));
        NAME.with(|n| *n.borrow_mut() = "seven".into());
        (NUMBER.with(Cell::get), NAME.with(|n| n.borrow().clone()))
    });
    assert_eq!(h.get().unwrap(), (7, "seven".to_string()));
}

/// An initialiser may use other locals of the same greenlet.
#[test]
fn initialiser_may_use_other_locals() {
    let h = greenlet::spawn(|| {
        NAME.with(|n| *n.borrow_mut() = "g".into());
        DERIVED.with(Clone::clone)
    });
    assert_eq!(h.get().unwrap(), "derived from g");
}

/// A greenlet spawned by another starts with fresh values, not its spawner's.
#[test]
fn values_are_not_inherited() {
    let h = greenlet::spawn(|| {
        NUMBER.with(|n| n.set(10));
        let child = greenlet::spawn(|| NUMBER.with(Cell::get));
        (child.get().unwrap(), NUMBER.with(Cell::get))
    });
    assert_eq!(h.get().unwrap(), (0, 10));
}

/// Plain greenlets (explicit switch, no hub) have their own locals too.
#[test]
fn explicit_greenlets_have_locals() {
    NUMBER.with(|n| n.set(99));
    let g = Greenlet::new(|x: u32| {
        NUMBER.with(|n| n.set(x));
        let main = greenlet::main();
        let _: () = main.switch(NUMBER.with(Cell::get)).unwrap();
        NUMBER.with(Cell::get)
    });
    assert_eq!(g.switch::<u32, u32>(5).unwrap(), 5);
    assert_eq!(NUMBER.with(Cell::get), 99);
    assert_eq!(g.switch::<(), u32>(()).unwrap(), 5);
}

/// Ports gevent's
/// `test__local.py::TestGeventLocal::test_locals_collected_when_greenlet_dead_but_still_referenced`
/// (gevent#387): a greenlet's values are dropped when it finishes, even while handles on it
/// remain.
#[test]
fn values_are_dropped_when_the_greenlet_ends() {
    let before = (CREATED.with(Cell::get), drops());
    let hs: Vec<_> = (0..5)
        .map(|_| {
            greenlet::spawn(|| {
                SENTINEL.with(|_| ());
                greenlet::yield_now();
                SENTINEL.with(|_| ()); // the same value: no new one
            })
        })
        .collect();
    greenlet::joinall(&hs, None, None).unwrap();
    assert_eq!(CREATED.with(Cell::get) - before.0, 5);
    // The handles are alive, yet every value is gone.
    assert!(hs.iter().all(|h| h.is_ready()));
    assert_eq!(drops() - before.1, 5);
    drop(hs);
    assert_eq!(drops() - before.1, 5);
}

/// Values are dropped when the greenlet ends by a panic or a kill too.
#[test]
fn values_are_dropped_on_panic_and_kill() {
    let before = drops();
    let panicker = greenlet::spawn(|| {
        SENTINEL.with(|_| ());
        panic!("expected panic: local");
    });
    assert!(matches!(panicker.get(), Err(JoinError::Panicked(_))));
    assert_eq!(drops() - before, 1);

    let sleeper = greenlet::spawn(|| {
        SENTINEL.with(|_| ());
        greenlet::sleep(std::time::Duration::from_secs(3600));
    });
    greenlet::yield_now();
    assert_eq!(drops() - before, 1);
    sleeper.kill().unwrap();
    assert_eq!(drops() - before, 2);
    assert!(sleeper.greenlet().is_dead());
}

/// A plain greenlet's values go when its function returns, before its handle goes.
#[test]
fn explicit_greenlet_values_are_dropped_at_its_end() {
    let before = drops();
    let g = Greenlet::new(|()| SENTINEL.with(|_| ()));
    let _: () = g.switch(()).unwrap();
    assert!(g.is_dead());
    assert_eq!(drops() - before, 1);
}

/// A value whose destructor touches the locals again does not hang or leak.
#[test]
fn destructor_touching_locals() {
    struct Toucher;
    impl Drop for Toucher {
        fn drop(&mut self) {
            NUMBER.with(|n| n.set(n.get() + 1));
        }
    }
    greenlet::greenlet_local! {
        static TOUCHER: Toucher = Toucher;
    }
    let h = greenlet::spawn(|| TOUCHER.with(|_| ()));
    h.get().unwrap();
}

/// A value whose destructor blocks (a local holding a connection that says goodbye) may use
/// the hub: the greenlet is still alive while its locals are dropped.
#[test]
fn destructor_may_block() {
    struct Goodbye(Rc<Cell<bool>>);
    impl Drop for Goodbye {
        fn drop(&mut self) {
            greenlet::sleep(std::time::Duration::from_millis(1));
            self.0.set(true);
        }
    }
    thread_local! {
        static SAID: Rc<Cell<bool>> = Rc::new(Cell::new(false));
    }
    greenlet::greenlet_local! {
        static GOODBYE: Goodbye = Goodbye(SAID.with(Rc::clone));
    }
    let h = greenlet::spawn(|| GOODBYE.with(|_| ()));
    h.get().unwrap();
    assert!(SAID.with(|s| s.get()));
}

/// The key prints its type.
#[test]
fn key_debug() {
    assert!(format!("{NUMBER:?}").contains("Cell<u32>"));
}

// ---------------------------------------------------------------------------------------------
// greenlet's test_contextvars.py: a context variable is a greenlet-local here.

/// How a new greenlet gets its context (greenlet's `propagate_by`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Propagate {
    /// It starts from the initial value (greenlet's default: contexts are not inherited).
    Not,
    /// It starts from a copy of its creator's value (`copy_context().run`, `gr_context = copy`).
    Copy,
    /// It shares its creator's value (`gr_context = getcurrent().gr_context`).
    Share,
}

greenlet::greenlet_local! {
    /// The context variable `ID_VAR`: a cell, so that greenlets can share one.
    static ID_VAR: RefCell<Rc<Cell<Option<u32>>>> = RefCell::new(Rc::default());
}

fn id_get() -> Option<u32> {
    ID_VAR.with(|v| v.borrow().get())
}

fn id_set(id: u32) {
    ID_VAR.with(|v| v.borrow().set(Some(id)));
}

/// greenlet's `_test_context`: main sets the variable to 0 and starts four greenlets, each of
/// which checks what it starts with, sets its own id, and counts what it sees twice, switching
/// back to main in between; main counts what it sees before each round. Returns the counts.
fn count_context_views(propagate: Propagate) -> [u32; 5] {
    id_set(0);
    let counts: Rc<RefCell<[u32; 5]>> = Rc::default();
    let lets: Vec<Greenlet> = (1..5u32)
        .map(|id| {
            let creators = ID_VAR.with(|v| v.borrow().clone());
            let counts = counts.clone();
            Greenlet::new(move |()| {
                match propagate {
                    Propagate::Not => {}
                    Propagate::Copy => {
                        ID_VAR.with(|v| *v.borrow_mut() = Rc::new((*creators).clone()))
                    }
                    Propagate::Share => ID_VAR.with(|v| *v.borrow_mut() = creators),
                }
                let expected = match propagate {
                    Propagate::Not => None,
                    Propagate::Copy => Some(0),
                    Propagate::Share => Some(id - 1),
                };
                assert_eq!(id_get(), expected, "greenlet {id} starts with");
                id_set(id);
                for _ in 0..2 {
                    counts.borrow_mut()[id_get().unwrap() as usize] += 1;
                    let main = greenlet::main();
                    let () = main.switch(()).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..2 {
        counts.borrow_mut()[id_get().unwrap() as usize] += 1;
        for g in &lets {
            let () = g.switch(()).unwrap();
        }
    }
    for g in &lets {
        let () = g.switch(()).unwrap();
        assert!(g.is_dead());
    }
    *counts.borrow()
}

/// Ports greenlet's `test_contextvars.py::ContextVarsTests::test_context_not_propagated`: a new
/// greenlet starts from the variable's initial value, not its creator's, and each greenlet
/// counts only its own id (twice each).
#[test]
fn context_not_propagated_each_greenlet_sees_its_own() {
    assert_eq!(count_context_views(Propagate::Not), [2; 5]);
}

/// Ports greenlet's `test_contextvars.py::ContextVarsTests::test_context_propagated_by_context_run`
/// and `ContextVarsTests::test_context_propagated_by_setting_attribute`: a greenlet started
/// from a copy of its creator's context sees the creator's value first; its own changes stay
/// its own. Here the copy is explicit: the creator's value is captured and set at the start.
#[test]
fn context_copied_from_the_creator_then_kept_apart() {
    assert_eq!(count_context_views(Propagate::Copy), [2; 5]);
}

/// Ports greenlet's `test_contextvars.py::ContextVarsTests::test_context_shared`: greenlets
/// that share their creator's context see each other's changes (the last id wins). Here the
/// sharing is explicit: the local holds a cell shared through `Rc`.
#[test]
fn context_shared_with_the_creator_shows_every_change() {
    assert_eq!(count_context_views(Propagate::Share), [1, 1, 1, 1, 6]);
}
