//! Greenlet-local storage (gevent's `local`): ports of gevent's `test__local.py` where they
//! apply to a typed key.

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

/// Each greenlet sees its own value, created on first use; main's is untouched.
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

/// Two keys of one greenlet are independent.
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

/// gevent's `test_locals_collected_when_greenlet_dead_but_still_referenced` (gevent#387): a
/// greenlet's values are dropped when it finishes, even while handles on it remain.
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
