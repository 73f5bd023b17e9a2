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

/// How many `PanicOnDrop` destructors have panicked, in every test of this file.
static BOMBS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            BOMBS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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
    assert!(
        !h.get().unwrap(),
        "the spawned greenlet is current in its own body"
    );
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

/// Regression (issue 8, siblings of defect 1): a greenlet-local value whose destructor panics
/// (dropped as its greenlet is killed) and the panicking capture of a greenlet that never
/// started reach neither main nor the hub.
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

// ---------------------------------------------------------------------------------------------
// Property: whatever the sequence, `current()` names the live greenlet that is running.

/// A small deterministic generator (xorshift64*), so that a failing seed can be replayed.
struct Rng(Cell<u64>);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(Cell::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1))
    }

    fn below(&self, n: usize) -> usize {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// What a greenlet of the property test ends with: nothing, or a value whose destructor panics
/// (dropped by whoever receives it: its parent, the hub, a destroyer).
type Outcome = Option<PanicOnDrop>;

/// The greenlets of one run, and what the run observed.
struct World {
    rng: Rng,
    greenlets: RefCell<Vec<Greenlet>>,
    spawned: RefCell<Vec<greenlet::JoinHandle<Outcome>>>,
    /// Times `current()` named another greenlet than the one running (also counted while the
    /// thread exits: destroyed greenlets check too).
    violations: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Counts the drops of the token each greenlet's function holds.
    drops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Greenlets created, also while the thread exits (destroyed greenlets that catch
    /// `GreenletExit` go on and may create more).
    created: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

greenlet::greenlet_local! {
    static BOMB: RefCell<Option<PanicOnDrop>> = RefCell::new(None);
}

/// A token counted in `World::drops` when dropped.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl World {
    fn check(&self, expected: u64) {
        if greenlet::current().id() != expected {
            self.violations
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn pick(&self) -> Option<Greenlet> {
        let gs = self.greenlets.borrow();
        (!gs.is_empty()).then(|| gs[self.rng.below(gs.len())].clone())
    }

    fn create(self: &Rc<World>) {
        let world = self.clone();
        let token = Counted(self.drops.clone());
        self.created
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.rng.below(2) == 0 {
            let g = Greenlet::new(move |x: u32| {
                let _token = token;
                world.body(x)
            });
            self.greenlets.borrow_mut().push(g);
        } else {
            let h = greenlet::spawn(move || {
                let _token = token;
                world.body(0)
            });
            self.greenlets.borrow_mut().push(h.greenlet().clone());
            self.spawned.borrow_mut().push(h);
        }
    }

    /// One random step; `me` is the running greenlet's id. Returns false to end the body.
    fn step(self: &Rc<World>, me: u64) -> bool {
        match self.rng.below(14) {
            0 | 1 => {
                if let Some(g) = self.pick() {
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| g.switch::<u32, u32>(1)));
                }
            }
            2 => {
                let _ = panic::catch_unwind(|| greenlet::main().switch::<u32, u32>(2));
            }
            3 => greenlet::yield_now(),
            4 => {
                let mut gs = self.greenlets.borrow_mut();
                if !gs.is_empty() {
                    let i = self.rng.below(gs.len());
                    let g = gs.swap_remove(i);
                    drop(gs);
                    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(g)));
                }
            }
            5 => {
                if let Some(g) = self.pick()
                    && !g.is_current()
                {
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                        g.throw::<_, u32>(util::SomeError("thrown"))
                    }));
                }
            }
            6 => {
                let hs = self.spawned.borrow();
                if !hs.is_empty() {
                    let h = hs[self.rng.below(hs.len())].clone();
                    drop(hs);
                    if !h.greenlet().is_current() {
                        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                            if self.rng.below(2) == 0 {
                                h.kill_nowait();
                            } else {
                                let _ = h.kill();
                            }
                        }));
                    }
                }
            }
            7 if self.created.load(std::sync::atomic::Ordering::SeqCst) < 24 => self.create(),
            8 => {
                if let (Some(a), Some(b)) = (self.pick(), self.pick()) {
                    let _ = a.set_parent(&b);
                }
            }
            9 => BOMB.with(|b| *b.borrow_mut() = Some(PanicOnDrop("a greenlet-local value"))),
            10 if me != greenlet::main().id() => return false,
            11 => {
                // A greenlet handle on the hub, refused as a switch or throw target.
                let hub = greenlet::spawn(|| -> Outcome { None }).greenlet().parent();
                if let Some(hub) = hub {
                    let _ = hub.switch::<u32, u32>(3);
                    let _ = hub.throw::<_, u32>(util::SomeError("at the hub"));
                }
            }
            _ => {}
        }
        self.check(me);
        true
    }

    fn body(self: &Rc<World>, _first: u32) -> Outcome {
        let me = greenlet::current().id();
        self.check(me);
        for _ in 0..12 {
            // Some greenlets catch the `GreenletExit` of a kill or a destruction and go on (their
            // switches are then refused), to end with a value that panics when dropped.
            let r = panic::catch_unwind(AssertUnwindSafe(|| self.step(me)));
            self.check(me);
            match r {
                Ok(true) => {}
                Ok(false) => break,
                Err(p) if p.is::<GreenletExit>() && self.rng.below(2) == 0 => {
                    return Some(PanicOnDrop("returned after GreenletExit"));
                }
                Err(p) => panic::resume_unwind(p),
            }
        }
        match self.rng.below(3) {
            0 => None,
            1 => Some(PanicOnDrop("a greenlet's return value")),
            _ => panic!("a greenlet's own panic"),
        }
    }
}

/// Runs one seeded sequence on a fresh thread, which ends with whatever is left (parked,
/// suspended, unstarted): returns (violations, greenlets created, tokens dropped).
fn run_sequence(seed: u64) -> (usize, usize, usize) {
    std::thread::spawn(move || {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let violations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let world = Rc::new(World {
            rng: Rng::new(seed),
            greenlets: RefCell::default(),
            spawned: RefCell::default(),
            violations: violations.clone(),
            drops: drops.clone(),
            created: created.clone(),
        });
        let main_id = greenlet::main().id();
        for _ in 0..4 {
            world.create();
        }
        for _ in 0..40 {
            let w = world.clone();
            let _ = panic::catch_unwind(AssertUnwindSafe(|| w.step(main_id)));
            world.check(main_id);
        }
        // Break the cycles through the world (greenlets hold it): dropping these handles runs
        // greenlets (destroyed ones may go on), so not while the lists are borrowed. What is
        // left ends with the thread.
        let greenlets = std::mem::take(&mut *world.greenlets.borrow_mut());
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(greenlets)));
        let spawned = std::mem::take(&mut *world.spawned.borrow_mut());
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(spawned)));
        drop(world);
        (violations, drops, created)
    })
    .join()
    .map(|(violations, drops, created)| {
        (
            violations.load(std::sync::atomic::Ordering::SeqCst),
            created.load(std::sync::atomic::Ordering::SeqCst),
            drops.load(std::sync::atomic::Ordering::SeqCst),
        )
    })
    .unwrap_or_else(|_| panic!("seed {seed}: the thread panicked"))
}

/// Property (issue 8): no sequence of public calls leaves `current()` naming anything but the
/// live greenlet that is running. Seeded random sequences mix explicit switches, yields,
/// throws, kills, dropped handles, re-parenting (to the hub too), values and locals whose
/// destructors panic, greenlets that catch `GreenletExit` and go on, and thread exit with
/// greenlets left parked, suspended and unstarted. Every greenlet's function is dropped by the
/// time its thread has ended. `GREENLET_PROPERTY_SEEDS` sets the number of seeds
/// (`scripts/valgrind.sh` runs fewer, under memcheck).
#[test]
fn current_always_names_the_live_running_greenlet() {
    let seeds: u64 = std::env::var("GREENLET_PROPERTY_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let (mut all_created, bombs_before) = (0, BOMBS.load(std::sync::atomic::Ordering::SeqCst));
    for seed in 0..seeds {
        let (violations, created, dropped) = run_sequence(seed);
        all_created += created;
        assert_eq!(
            violations, 0,
            "seed {seed}: current() named the wrong greenlet"
        );
        assert_eq!(
            dropped, created,
            "seed {seed}: {created} greenlets created, {dropped} functions dropped at thread exit"
        );
    }
    let bombs = BOMBS.load(std::sync::atomic::Ordering::SeqCst) - bombs_before;
    println!("{seeds} seeds: {all_created} greenlets, {bombs} destructors panicked");
    assert!(bombs > 0, "no sequence had a destructor panic");
}

/// A greenlet's stack slot goes back to the pool when it finishes, and the next greenlet
/// spawned gets it. Here the first one parks many times (its frames pushed and popped again
/// and again) and ends while main waits in the hub; the second one's closure, copied onto the
/// reused slot, must read back as written. Under memcheck (`scripts/valgrind.sh`) this is the
/// pattern where the marks left by the first greenlet's popped frames made memcheck report
/// the second one's fresh locals as invalid accesses, until every slot handed out was marked
/// as new stack memory.
#[test]
fn a_reused_stack_slot_holds_the_next_greenlets_closure() {
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = greenlet::spawn(move || {
        for _ in 0..10 {
            t.set(t.get() + 1);
            greenlet::sleep(std::time::Duration::from_millis(1));
        }
    });
    greenlet::sleep(std::time::Duration::from_millis(20));
    ticker.join().unwrap();
    assert_eq!(ticks.get(), 10);
    let words = [3u64, 5, 7, 11, 13, 17];
    let name = String::from("second");
    let seen = Rc::new(RefCell::new(None));
    let out = seen.clone();
    let second = greenlet::spawn(move || {
        greenlet::sleep(std::time::Duration::from_millis(1));
        *out.borrow_mut() = Some((words.iter().sum::<u64>(), name));
    });
    second.join().unwrap();
    assert_eq!(*seen.borrow(), Some((56, String::from("second"))));
}
