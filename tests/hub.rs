//! The hub: scheduling order, spawned greenlets and their handles, waiting on many, `LoopExit`,
//! fairness and cross-thread stop. Many of these port gevent's own tests; each says which.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{HubHandle, JoinError, JoinHandle, Kill, SpawnBuilder};
use util::on_fresh_thread;

/// A log shared by the greenlets of one test.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

const LONG: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Order

/// Ports gevent's `test__order.py::TestSleep0::test` (the article's demo too): greenlets
/// yielding with `sleep(0)` resume in FIFO order within one loop turn: `1A 2A 1B 2B`.
#[test]
fn sleep_zero_resumes_in_fifo_order() {
    let log = Log::default();
    let hs: Vec<_> = [1, 2]
        .into_iter()
        .map(|n| {
            let log = log.clone();
            greenlet::spawn(move || {
                log.push(format!("{n}A"));
                greenlet::sleep(Duration::ZERO);
                log.push(format!("{n}B"));
            })
        })
        .collect();
    greenlet::joinall(&hs, None, None).unwrap();
    assert_eq!(log.take(), ["1A", "2A", "1B", "2B"]);
}

/// `yield_now` is the same as `sleep(0)`: many greenlets, many rounds, strict round-robin.
#[test]
fn yield_now_round_robin_over_many_rounds() {
    let log = Log::default();
    let hs: Vec<_> = (0..5)
        .map(|n| {
            let log = log.clone();
            greenlet::spawn(move || {
                for round in 0..4 {
                    log.push(format!("{round}:{n}"));
                    greenlet::yield_now();
                }
            })
        })
        .collect();
    greenlet::joinall(&hs, None, None).unwrap();
    let expected: Vec<String> = (0..4)
        .flat_map(|r| (0..5).map(move |n| format!("{r}:{n}")))
        .collect();
    assert_eq!(log.take(), expected);
}

/// gevent's "log == [0, 1, 2, 3]" check: spawned greenlets start in spawn order, and only once
/// the spawning greenlet blocks.
#[test]
fn spawned_greenlets_start_in_order_when_main_blocks() {
    let log = Log::default();
    let l1 = log.clone();
    let a = greenlet::spawn(move || l1.push("a"));
    let l2 = log.clone();
    let b = greenlet::spawn(move || l2.push("b"));
    log.push("main");
    assert!(!a.is_ready() && !b.is_ready());
    greenlet::yield_now();
    log.push("main again");
    assert!(a.is_ready() && b.is_ready());
    assert_eq!(log.take(), ["main", "a", "b", "main again"]);
}

/// A greenlet spawned while the current loop turn runs waits for the next turn: greenlets that
/// were ready first go first.
#[test]
fn greenlet_spawned_during_a_turn_runs_after_those_already_ready() {
    let log = Log::default();
    let (l1, l2) = (log.clone(), log.clone());
    let a = greenlet::spawn(move || {
        let l3 = l1.clone();
        let c = greenlet::spawn(move || l3.push("c"));
        l1.push("a");
        c
    });
    let b = greenlet::spawn(move || l2.push("b"));
    let c = a.get().unwrap();
    c.join().unwrap();
    b.join().unwrap();
    assert_eq!(log.take(), ["a", "b", "c"]);
}

/// `spawn_later` starts greenlets by deadline, not by spawn order; equal delays keep spawn order.
#[test]
fn spawn_later_runs_by_deadline() {
    let log = Log::default();
    let mut hs = Vec::new();
    for (name, ms) in [("30", 30), ("10", 10), ("20a", 20), ("20b", 20), ("0", 0)] {
        let log = log.clone();
        hs.push(greenlet::spawn_later(
            Duration::from_millis(ms),
            move || log.push(name),
        ));
    }
    assert!(hs.iter().all(|h| !h.is_ready()));
    greenlet::joinall(&hs, None, None).unwrap();
    assert_eq!(log.take(), ["0", "10", "20a", "20b", "30"]);
}

/// `spawn_later` really waits: the greenlet has not run after a zero-time yield.
#[test]
fn spawn_later_does_not_start_early() {
    let started = Instant::now();
    let h = greenlet::spawn_later(Duration::from_millis(20), Instant::now);
    greenlet::yield_now();
    assert!(!h.is_ready());
    let ran_at = h.get().unwrap();
    assert!(ran_at.duration_since(started) >= Duration::from_millis(20));
}

// ---------------------------------------------------------------------------------------------
// The handle

/// Ports gevent's `test__greenlet.py::TestBasic::test_simple_exit` and
/// `TestBasic::test_exc_info_no_error`: the accessors (no error among them) before start, while
/// running, and after a successful end.
#[test]
fn accessors_through_a_successful_life() {
    let links = Rc::new(Cell::new(0));
    let h = greenlet::spawn(|| {
        greenlet::sleep(Duration::from_millis(5));
        5
    });
    let l = links.clone();
    h.link(move |h| {
        assert!(h.is_ready());
        l.set(l.get() + 1)
    });
    assert!(!h.is_ready() && !h.is_successful());
    assert!(h.value().is_none() && h.error().is_none());
    assert!(!h.greenlet().is_started());

    greenlet::yield_now(); // it starts and sleeps
    assert!(h.greenlet().is_started() && h.greenlet().is_active());
    assert!(!h.is_ready() && !h.is_successful() && h.value().is_none());
    assert_eq!(links.get(), 0);

    h.join().unwrap();
    assert!(h.is_ready() && h.is_successful());
    assert_eq!(*h.value().unwrap(), 5);
    assert!(h.error().is_none());
    assert!(h.greenlet().is_dead());
    assert_eq!(links.get(), 1);

    assert_eq!(h.get().unwrap(), 5);
    // The value moved out; the greenlet still counts as successful.
    assert!(h.value().is_none() && h.is_successful());
    assert!(matches!(h.get(), Err(JoinError::Taken)));
    assert!(matches!(h.try_get(), Err(JoinError::Taken)));
}

/// Ports gevent's `test__greenlet.py::TestBasic::test_error_exit`: a panic is the greenlet's
/// error, its joiner gets it, and the hub survives to run more greenlets.
#[test]
fn panic_becomes_the_joiners_error_and_the_hub_survives() {
    let bystander = greenlet::spawn(|| {
        for _ in 0..3 {
            greenlet::yield_now();
        }
        "still here"
    });
    let h = SpawnBuilder::new()
        .name("doomed")
        .spawn(|| -> u32 {
            greenlet::yield_now();
            panic!("expected panic: test_error_exit")
        })
        .unwrap();
    // join() waits; a failure of the greenlet is not a failure to join.
    h.join().unwrap();
    assert!(h.is_ready() && !h.is_successful());
    assert!(h.value().is_none());
    assert!(
        matches!(&*h.error().unwrap(), JoinError::Panicked(p) if p.message() == Some("expected panic: test_error_exit"))
    );
    match h.get() {
        Err(JoinError::Panicked(p)) => {
            assert_eq!(p.message(), Some("expected panic: test_error_exit"));
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    assert_eq!(bystander.get().unwrap(), "still here");
    assert_eq!(greenlet::spawn(|| 1 + 1).get().unwrap(), 2);
}

/// The panic's Display names it as a greenlet panic.
#[test]
fn join_error_display() {
    let h = greenlet::spawn(|| panic!("boom"));
    let e = h.get().unwrap_err();
    assert_eq!(e.to_string(), "greenlet panicked: boom");
    assert_eq!(JoinError::Killed.to_string(), "greenlet was killed");
}

/// `try_get` does not wait; `get_timeout` waits at most that long.
#[test]
fn try_get_and_get_timeout() {
    let h = greenlet::spawn(|| {
        greenlet::sleep(Duration::from_millis(20));
        7
    });
    assert!(matches!(h.try_get(), Err(JoinError::TimedOut)));
    assert!(matches!(
        h.get_timeout(Duration::from_millis(1)),
        Err(JoinError::TimedOut)
    ));
    assert_eq!(h.get_timeout(greenlet_util_long()).unwrap(), 7);
}

fn greenlet_util_long() -> Duration {
    util::NOT_HANGING
}

/// gevent's `TestJoin`/`TestGet` (`AbstractGenericWaitTestCase`): joining a greenlet that
/// sleeps for long times out, then it can be killed.
#[test]
fn join_timeout_times_out_on_a_long_sleeper() {
    let h = greenlet::spawn(|| greenlet::sleep(LONG));
    assert!(matches!(
        h.join_timeout(Duration::from_millis(10)),
        Err(JoinError::TimedOut)
    ));
    assert!(matches!(
        h.join_timeout(Duration::ZERO),
        Err(JoinError::TimedOut)
    ));
    assert!(!h.is_ready());
    h.kill().unwrap();
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

/// Ports gevent's `test__greenlet.py::TestStr::test_method` (the name part): given names are
/// kept; the automatic one is `Greenlet-<id>`; both show in `Debug`. (Names are given at
/// spawn: gevent's later renaming has no counterpart.)
#[test]
fn names_for_diagnostics() {
    let named = SpawnBuilder::new().name("worker-7").spawn(|| ()).unwrap();
    assert_eq!(named.name(), "worker-7");
    assert_eq!(named.greenlet().name(), Some("worker-7"));
    assert!(format!("{named:?}").contains("worker-7"));
    assert!(format!("{named:?}").contains("pending"));

    let anonymous = greenlet::spawn(|| ());
    assert_eq!(
        anonymous.name(),
        format!("Greenlet-{}", anonymous.greenlet().id())
    );
    assert!(format!("{anonymous:?}").contains(&anonymous.name()));
    greenlet::joinall(&[named.clone(), anonymous], None, None).unwrap();
    assert!(format!("{named:?}").contains("succeeded"));
}

/// A spawned greenlet's stack size comes from the builder.
#[test]
fn spawn_builder_stack_size() {
    let h = SpawnBuilder::new()
        .stack_size(256 * 1024)
        .spawn(|| greenlet::current().stack_size())
        .unwrap();
    assert!(h.get().unwrap() >= 256 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Links

/// Ports gevent's `test__order.py::Test::test_greenlet_link`, `Test3::test_greenlet_link`,
/// `Test4::test_greenlet_link` and `TestM::test_greenlet_link` (2, 3, 4 and 1000 callbacks):
/// links run in the order they were added, after the greenlet's own work.
#[test]
fn links_run_in_order_of_adding() {
    for count in [2, 3, 4, 5, 6, 1000] {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l0 = log.clone();
        let g = greenlet::spawn(move || l0.borrow_mut().push(0));
        for i in 1..count {
            let l = log.clone();
            g.link(move |_| l.borrow_mut().push(i));
        }
        g.join().unwrap();
        assert_eq!(*log.borrow(), (0..count).collect::<Vec<_>>());
    }
}

/// A link added after the end runs at once; links see the outcome through the handle.
#[test]
fn link_after_the_end_runs_at_once() {
    let h = greenlet::spawn(|| 100);
    h.join().unwrap();
    let seen = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let s = seen.clone();
        h.link(move |h| s.set(*h.value().unwrap()));
        assert_eq!(seen.get(), 100);
        seen.set(0);
    }
}

/// Ports gevent's `test__greenlet.py::TestStuff::test_multiple_listeners_error`: a panicking link
/// does not stop the others, for a greenlet that returns and for one that fails.
#[test]
fn a_panicking_link_does_not_stop_the_others() {
    let results = Rc::new(RefCell::new(Vec::new()));
    let h = greenlet::spawn(|| 5);
    let r1 = results.clone();
    h.link(move |_| {
        r1.borrow_mut().push(10);
        panic!("expected panic: listener1");
    });
    let r2 = results.clone();
    h.link(move |_| {
        r2.borrow_mut().push(20);
        panic!("expected panic: listener2");
    });
    h.link(|_| panic!("expected panic: listener3"));
    h.join().unwrap();
    assert_eq!(*results.borrow(), [10, 20]);
    assert_eq!(h.get().unwrap(), 5);

    // The same for a greenlet that fails.
    results.borrow_mut().clear();
    let failed = greenlet::spawn(|| -> u32 { panic!("expected panic: test_multiple_listeners") });
    for n in [10, 20] {
        let r = results.clone();
        failed.link(move |_| {
            r.borrow_mut().push(n);
            panic!("expected panic: listener {n}");
        });
    }
    failed.link(|_| panic!("expected panic: listener3"));
    failed.join().unwrap();
    assert_eq!(*results.borrow(), [10, 20]);
    assert!(matches!(failed.get(), Err(JoinError::Panicked(_))));
}

/// Links added by a link run too, after the ones already there.
#[test]
fn links_added_by_links_run() {
    let log = Log::default();
    let h = greenlet::spawn(|| ());
    let l = log.clone();
    h.link(move |h| {
        l.push("first");
        let l2 = l.clone();
        h.link(move |_| l2.push("added by first"));
    });
    let l = log.clone();
    h.link(move |_| l.push("second"));
    h.join().unwrap();
    assert_eq!(log.take(), ["first", "second", "added by first"]);
}

// ---------------------------------------------------------------------------------------------
// Kill

/// Where the greenlet stands when gevent's kill tests kill it: one class each.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// `TestKill`: created, never run. Here a greenlet spawned and killed before the spawner
    /// yields (a spawned greenlet is scheduled at once; nothing is "created but not started").
    Spawned,
    /// `TestKillAfterStart`: `start()`ed, not run yet. The same thing here.
    Started,
    /// `TestKillAfterStartLater`: due to start later (`spawn_later`).
    StartLater,
    /// `TestKillWhileRunning`: started and blocked in a long sleep.
    Running,
}

const STAGES: [Stage; 4] = [
    Stage::Spawned,
    Stage::Started,
    Stage::StartLater,
    Stage::Running,
];

/// The body of gevent's `TestKill._do_test` for one stage and one way of killing: the
/// function's own work never runs (a running one is unwound in its sleep), links fire once,
/// the outcome is `Killed`, and killing again changes nothing. gevent calls a killed greenlet
/// successful, with `GreenletExit` as its value; here it has no value, so `is_successful` is
/// false and `get` is `Err(Killed)`.
fn check_kill(stage: Stage, kill: impl Fn(&JoinHandle<()>)) {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let work = move || {
        if matches!(stage, Stage::Running) {
            greenlet::sleep(LONG);
        }
        r.set(true);
    };
    let h = match stage {
        Stage::StartLater => greenlet::spawn_later(Duration::from_millis(200), work),
        _ => greenlet::spawn(work),
    };
    let links = Rc::new(Cell::new(0));
    let l = links.clone();
    h.link(move |_| l.set(l.get() + 1));
    if matches!(stage, Stage::Running) {
        greenlet::yield_now(); // it starts and blocks in its sleep
        assert!(h.greenlet().is_started() && !h.is_ready());
    }
    kill(&h);
    greenlet::sleep(Duration::from_millis(1)); // spin the loop, as gevent's test does
    let check = |h: &JoinHandle<()>| {
        assert!(h.is_ready(), "{stage:?}");
        assert!(!h.is_successful());
        assert!(h.greenlet().is_dead());
        assert!(matches!(&*h.error().unwrap(), JoinError::Killed));
        assert!(matches!(h.get(), Err(JoinError::Killed)));
    };
    check(&h);
    kill(&h); // must not hurt
    greenlet::sleep(Duration::from_millis(1));
    check(&h);
    assert!(
        !ran.get(),
        "a killed greenlet's work must never run ({stage:?})"
    );
    assert_eq!(links.get(), 1, "{stage:?}");
}

/// Ports gevent's `test__greenlet.py::TestKill::test_block`, `TestKillAfterStart::test_block`,
/// `TestKillAfterStartLater::test_block` and `TestKillWhileRunning::test_block`: a blocking
/// kill at each stage.
#[test]
fn kill_blocking_at_every_stage() {
    for stage in STAGES {
        check_kill(stage, |h| h.kill().unwrap());
    }
}

/// Ports gevent's `test__greenlet.py::TestKill::test_non_block`,
/// `TestKillAfterStart::test_non_block`, `TestKillAfterStartLater::test_non_block` and
/// `TestKillWhileRunning::test_non_block`.
#[test]
fn kill_non_blocking_at_every_stage() {
    for stage in STAGES {
        check_kill(stage, |h| h.kill_nowait());
    }
}

/// Ports gevent's `test__greenlet.py::TestKill::test_block_killall`,
/// `TestKillAfterStart::test_block_killall`, `TestKillAfterStartLater::test_block_killall` and
/// `TestKillWhileRunning::test_block_killall`.
#[test]
fn killall_blocking_at_every_stage() {
    for stage in STAGES {
        check_kill(stage, |h| {
            greenlet::killall(std::slice::from_ref(h), Kill::Join).unwrap()
        });
    }
}

/// Ports gevent's `test__greenlet.py::TestKill::test_non_block_killal`,
/// `TestKillAfterStart::test_non_block_killal`, `TestKillAfterStartLater::test_non_block_killal`
/// and `TestKillWhileRunning::test_non_block_killal`.
#[test]
fn killall_non_blocking_at_every_stage() {
    for stage in STAGES {
        check_kill(stage, |h| {
            greenlet::killall(std::slice::from_ref(h), Kill::Now).unwrap()
        });
    }
}

/// A greenlet spawned for later and killed before its time never runs, even once its time has
/// come, and its links fire at once.
#[test]
fn kill_before_a_later_start() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let h = greenlet::spawn_later(Duration::from_millis(30), move || r.set(true));
    let linked = Rc::new(Cell::new(false));
    let l = linked.clone();
    h.link(move |_| l.set(true));
    h.kill().unwrap();
    assert!(linked.get());
    assert!(matches!(h.get(), Err(JoinError::Killed)));
    greenlet::sleep(Duration::from_millis(40));
    assert!(!ran.get());
}

/// Regression: a `spawn_later` greenlet killed before its start left its start timer in the
/// hub, so the hub could not see that nothing was left and a `LoopExit` waited for that far
/// deadline instead of being reported at once.
#[test]
fn killed_spawn_later_does_not_keep_the_hub_alive() {
    on_fresh_thread(|| {
        let h = greenlet::spawn_later(LONG, || ());
        h.kill().unwrap();
        let stuck = self_joiner("stuck");
        assert!(matches!(stuck.join(), Err(JoinError::LoopExit(_))));
    });
}

/// A greenlet killed while it blocks unwinds from where it is blocked (its destructors run),
/// never reaches the code after the block, and links fire.
#[test]
fn kill_while_blocked_unwinds_the_greenlet() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let after = Rc::new(Cell::new(false));
    let (d, a) = (dropped.clone(), after.clone());
    let h = greenlet::spawn(move || {
        let _guard = Guard(d);
        greenlet::sleep(LONG);
        a.set(true);
    });
    let linked = Rc::new(Cell::new(false));
    let l = linked.clone();
    h.link(move |_| l.set(true));
    greenlet::yield_now(); // let it start and block
    assert!(h.greenlet().is_started() && !h.is_ready());
    h.kill().unwrap();
    assert!(dropped.get() && !after.get() && linked.get());
    assert!(matches!(h.get(), Err(JoinError::Killed)));
    h.kill().unwrap();
    h.kill_nowait();
}

/// Killing a greenlet that is ready to run (it yielded) ends it at its next switch.
#[test]
fn kill_a_greenlet_that_yields() {
    let rounds = Rc::new(Cell::new(0));
    let r = rounds.clone();
    let h = greenlet::spawn(move || {
        loop {
            r.set(r.get() + 1);
            greenlet::yield_now();
        }
    });
    greenlet::yield_now();
    greenlet::yield_now();
    h.kill().unwrap();
    let at_kill = rounds.get();
    greenlet::yield_now();
    greenlet::yield_now();
    assert_eq!(rounds.get(), at_kill);
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

/// A greenlet may kill itself: it unwinds at once.
#[test]
fn kill_self() {
    let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let s = slot.clone();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    let h = greenlet::spawn(move || {
        let me = s.borrow().clone().unwrap();
        me.kill_nowait();
        a.set(true);
    });
    *slot.borrow_mut() = Some(h.clone());
    assert!(matches!(h.get(), Err(JoinError::Killed)));
    assert!(!after.get());
    slot.borrow_mut().take();
}

/// A greenlet that takes its time to die: it catches the kill, blocks for `linger` (cleaning
/// up, say), then lets the kill go on.
fn slow_to_die(linger: Duration) -> JoinHandle<()> {
    greenlet::spawn(move || {
        // A soft kill only ends the sleep early: it sleeps again, until it is unwound.
        let killed = loop {
            if let Err(unwind) = std::panic::catch_unwind(|| greenlet::sleep(LONG)) {
                break unwind;
            }
        };
        greenlet::sleep(linger);
        std::panic::resume_unwind(killed)
    })
}

/// Killing twice: the second kill reaches a greenlet still busy with the first; no abort, and
/// it ends killed.
#[test]
fn second_kill_while_the_first_is_handled() {
    let h = slow_to_die(Duration::from_millis(5));
    greenlet::yield_now();
    h.kill_nowait();
    greenlet::yield_now(); // the first kill is delivered; the greenlet now lingers
    h.kill_nowait();
    h.kill_nowait();
    h.kill().unwrap();
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

/// A destructor that tries to block while a kill unwinds the greenlet is refused at once (a
/// switch while unwinding is refused); the kill completes and nothing aborts.
#[test]
fn destructor_blocking_during_a_kill_is_refused() {
    struct TriesToSleep(Rc<Cell<bool>>);
    impl Drop for TriesToSleep {
        fn drop(&mut self) {
            greenlet::sleep(LONG); // returns at once: refused while unwinding
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let h = greenlet::spawn(move || {
        let _guard = TriesToSleep(d);
        greenlet::sleep(LONG);
    });
    greenlet::yield_now();
    h.kill_nowait();
    h.kill_nowait();
    h.kill().unwrap();
    assert!(dropped.get());
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

/// `kill_timeout` gives up waiting when the greenlet takes longer to die.
#[test]
fn kill_timeout_waits_at_most_that_long() {
    let h = slow_to_die(Duration::from_millis(30));
    greenlet::yield_now();
    assert!(matches!(
        h.kill_timeout(Duration::from_millis(1)),
        Err(JoinError::TimedOut)
    ));
    h.join().unwrap();
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

/// `killall`: blocking kills them all; with a timeout it reports one that would not die in time.
#[test]
fn killall_block_and_timeout() {
    let hs: Vec<_> = (0..5)
        .map(|_| greenlet::spawn(|| greenlet::sleep(LONG)))
        .collect();
    greenlet::yield_now();
    greenlet::killall(&hs, Kill::Join).unwrap();
    assert!(hs.iter().all(|h| matches!(h.get(), Err(JoinError::Killed))));

    let slow = slow_to_die(Duration::from_millis(30));
    greenlet::yield_now();
    let hs = [slow];
    assert!(matches!(
        greenlet::killall(&hs, Kill::Grace(Duration::from_millis(1))),
        Err(JoinError::TimedOut)
    ));
    greenlet::joinall(&hs, None, None).unwrap();
    // Killing finished greenlets does nothing.
    greenlet::killall(&hs, Kill::Join).unwrap();
}

/// Ports gevent's `test__greenlet.py::TestRef::test_kill_scheduled` and
/// `TestRef::test_kill_started`.
#[test]
fn kill_scheduled_and_started() {
    greenlet::spawn(|| greenlet::sleep(LONG)).kill().unwrap();
    let g = greenlet::spawn(|| greenlet::sleep(LONG));
    greenlet::sleep(Duration::from_millis(1));
    g.kill().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Waiting on many

/// Ports gevent's `test__joinall.py::Test::test`: joining a list that names one greenlet twice.
#[test]
fn joinall_with_duplicates() {
    let a = greenlet::spawn(|| ());
    let b = greenlet::spawn(|| ());
    assert_eq!(
        greenlet::joinall(&[a.clone(), b, a], None, None).unwrap(),
        [0, 1, 2]
    );
}

/// Ports gevent's `test__greenlet.py::TestStuff::test_wait_noerrors`: joinall, then the values;
/// a link added to a finished greenlet runs at once, and again after another one.
#[test]
fn joinall_then_values() {
    let hs: Vec<_> = (1..=3).map(|i| greenlet::spawn(move || i)).collect();
    assert_eq!(greenlet::joinall(&hs, None, None).unwrap(), [0, 1, 2]);
    let values: Vec<i32> = hs.iter().map(|h| *h.value().unwrap()).collect();
    assert_eq!(values, [1, 2, 3]);
    for _ in 0..2 {
        let seen = Rc::new(Cell::new(0));
        let s = seen.clone();
        hs[0].link(move |h| s.set(*h.value().unwrap()));
        assert_eq!(seen.get(), 1);
    }
}

/// Ports gevent's `test__greenlet.py::TestStuff::test_joinall_count_raise_error`: `count`
/// returns once that many are done, and a failed greenlet counts as done.
#[test]
fn joinall_count() {
    let sleeper = greenlet::spawn(|| {
        loop {
            greenlet::sleep(Duration::from_millis(5));
        }
    });
    let raiser = greenlet::spawn(|| panic!("expected panic: count"));
    let hs = [sleeper, raiser];
    assert_eq!(greenlet::joinall(&hs, None, Some(1)).unwrap(), [1]);
    assert!(hs[1].is_ready() && !hs[0].is_ready());
    hs[0].kill().unwrap();
    assert!(hs[0].is_ready());
}

/// gevent's `TestJoinAll`: with a timeout, joinall returns those that finished in time.
#[test]
fn joinall_timeout() {
    let quick = greenlet::spawn(|| ());
    let slow = greenlet::spawn(|| greenlet::sleep(LONG));
    let hs = [slow, quick];
    assert_eq!(
        greenlet::joinall(&hs, Some(Duration::from_millis(10)), None).unwrap(),
        [1]
    );
    assert_eq!(
        greenlet::joinall(&hs, Some(Duration::ZERO), None).unwrap(),
        [1]
    );
    greenlet::killall(&hs, Kill::Join).unwrap();
}

/// gevent's `TestJoinAll0`: nothing to wait for returns at once.
#[test]
fn joinall_of_nothing() {
    let none: [JoinHandle<()>; 0] = [];
    assert!(greenlet::joinall(&none, None, None).unwrap().is_empty());
    assert!(
        greenlet::joinall(&none, Some(Duration::ZERO), Some(3))
            .unwrap()
            .is_empty()
    );
}

/// `wait(handles, ..)` is `joinall`.
#[test]
fn wait_for_given_greenlets() {
    let hs: Vec<_> = (0..3u64)
        .map(|i| greenlet::spawn(move || greenlet::sleep(Duration::from_millis(i))))
        .collect();
    assert!(greenlet::wait(&hs, None, Some(2)).unwrap().len() >= 2);
    assert_eq!(greenlet::wait(&hs, None, None).unwrap(), [0, 1, 2]);
}

/// `wait_all`: gevent's `wait()` without objects: runs the hub until nothing is left to run.
#[test]
fn wait_all_runs_everything() {
    on_fresh_thread(|| {
        let done = Rc::new(Cell::new(0));
        for i in 0..10u64 {
            let d = done.clone();
            // Not joined: fire and forget, as gevent's `spawn(...); wait()`.
            drop(greenlet::spawn(move || {
                greenlet::sleep(Duration::from_millis(i));
                greenlet::spawn(move || d.set(d.get() + 1));
            }));
        }
        assert!(greenlet::wait_all(None).unwrap());
        assert_eq!(done.get(), 10);
        // With nothing at all, it returns at once.
        assert!(greenlet::wait_all(None).unwrap());
        // A timeout ends it early.
        let h = greenlet::spawn(|| greenlet::sleep(LONG));
        assert!(!greenlet::wait_all(Some(Duration::from_millis(5))).unwrap());
        h.kill().unwrap();
    });
}

/// `iwait` yields greenlets as they finish, in finishing order.
#[test]
fn iwait_yields_in_finishing_order() {
    let hs: Vec<_> = [40u64, 10, 30, 0, 20]
        .into_iter()
        .map(|ms| greenlet::spawn(move || greenlet::sleep(Duration::from_millis(ms))))
        .collect();
    let order: Vec<usize> = greenlet::iwait(&hs, None).collect();
    assert_eq!(order, [3, 1, 4, 2, 0]);
}

/// Regression: greenlets that finish between two looks of `iwait` come out in the order they
/// finished, not in the order they were given.
#[test]
fn iwait_keeps_finishing_order_within_one_turn() {
    // h0 finishes one turn after h1, but both before the main greenlet looks again.
    let h0 = greenlet::spawn(greenlet::yield_now);
    let h1 = greenlet::spawn(|| ());
    let order: Vec<usize> = greenlet::iwait(&[h0, h1], None).collect();
    assert_eq!(order, [1, 0]);
}

/// `iwait` with a timeout stops yielding at the timeout; finished ones come first.
#[test]
fn iwait_timeout() {
    let hs = [
        greenlet::spawn(|| greenlet::sleep(LONG)),
        greenlet::spawn(|| ()),
    ];
    let order: Vec<usize> = greenlet::iwait(&hs, Some(Duration::from_millis(10))).collect();
    assert_eq!(order, [1]);
    hs[0].kill().unwrap();
}

/// `iwait` lets the caller work between results, and sees greenlets that finished meanwhile.
#[test]
fn iwait_is_lazy() {
    let hs: Vec<_> = (0..4).map(|i| greenlet::spawn(move || i)).collect();
    let mut seen = Vec::new();
    for i in greenlet::iwait(&hs, None) {
        seen.push(i);
        greenlet::yield_now();
    }
    seen.sort();
    assert_eq!(seen, [0, 1, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// LoopExit

/// A greenlet that joins itself: nothing can ever wake it.
fn self_joiner(name: &str) -> JoinHandle<()> {
    let me: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let m = me.clone();
    let h = SpawnBuilder::new()
        .name(name)
        .spawn(move || {
            let own = m.borrow_mut().take().unwrap();
            let _ = own.join();
        })
        .unwrap();
    *me.borrow_mut() = Some(h.clone());
    h
}

/// The main greenlet waiting on something that nothing can ever finish gets `LoopExit` (the
/// error says it would block forever and what was waited on) instead of hanging.
#[test]
fn loop_exit_instead_of_hanging() {
    on_fresh_thread(|| {
        let stuck = self_joiner("stuck-forever");
        match stuck.join() {
            Err(JoinError::LoopExit(e)) => {
                assert!(!e.is_stopped());
                let msg = e.to_string();
                assert!(msg.contains("would block forever"), "{msg}");
                assert!(msg.contains("stuck-forever"), "{msg}");
                assert!(
                    e.waiting_on()
                        .contains("join of greenlet \"stuck-forever\""),
                    "{}",
                    e.waiting_on()
                );
                // The JoinError says the same.
                assert!(
                    JoinError::LoopExit(e)
                        .to_string()
                        .contains("would block forever")
                );
            }
            other => panic!("expected LoopExit, got {other:?}"),
        }
        // The hub still works afterwards.
        assert_eq!(greenlet::spawn(|| 3).get().unwrap(), 3);
        // Asking again gives LoopExit again.
        assert!(matches!(stuck.get(), Err(JoinError::LoopExit(_))));
    });
}

/// Two greenlets joining each other: a deadlock, reported to main's joinall.
#[test]
fn loop_exit_on_mutual_join() {
    on_fresh_thread(|| {
        let slot: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
        let s = slot.clone();
        let a = SpawnBuilder::new()
            .name("a")
            .spawn(move || {
                let b = s.borrow_mut().take().unwrap();
                let _ = b.join();
            })
            .unwrap();
        let a2 = a.clone();
        let b = SpawnBuilder::new()
            .name("b")
            .spawn(move || {
                let _ = a2.join();
            })
            .unwrap();
        *slot.borrow_mut() = Some(b.clone());
        let hs = [a, b];
        let e = greenlet::joinall(&hs, None, None).unwrap_err();
        assert!(e.to_string().contains("would block forever"), "{e}");
        assert!(
            e.waiting_on().contains("join of greenlet"),
            "{}",
            e.waiting_on()
        );
        // Waiting for some of them says how many.
        let e = greenlet::joinall(&hs, None, Some(1)).unwrap_err();
        assert!(
            e.waiting_on().contains("1 of 2 greenlets"),
            "{}",
            e.waiting_on()
        );
        assert!(greenlet::iwait(&hs, None).next().is_none());
    });
}

/// No `LoopExit` while a timer is pending: a sleeping greenlet will wake up.
#[test]
fn no_loop_exit_while_a_timer_is_pending() {
    on_fresh_thread(|| {
        let h = greenlet::spawn(|| {
            greenlet::sleep(Duration::from_millis(20));
            "woke"
        });
        assert_eq!(h.get().unwrap(), "woke");
    });
}

/// `LoopExit` reaches the main greenlet even when the blocked one is several joins away.
#[test]
fn loop_exit_through_a_chain_of_joins() {
    on_fresh_thread(|| {
        let stuck = self_joiner("bottom");
        let s = stuck.clone();
        let middle = greenlet::spawn(move || s.join());
        match middle.join() {
            Err(JoinError::LoopExit(e)) => {
                assert!(e.waiting_on().contains("join of greenlet"), "{e}")
            }
            other => panic!("expected LoopExit, got {other:?}"),
        }
        drop(stuck);
    });
}

// ---------------------------------------------------------------------------------------------
// Fairness

/// A greenlet that yields in a loop does not starve the others, nor timers.
#[test]
fn busy_yielders_do_not_starve_timers_or_each_other() {
    let stop = Rc::new(Cell::new(false));
    let counts: Rc<[Cell<u64>; 2]> = Rc::new([Cell::new(0), Cell::new(0)]);
    let spinners: Vec<_> = (0..2)
        .map(|i| {
            let (stop, counts) = (stop.clone(), counts.clone());
            greenlet::spawn(move || {
                while !stop.get() {
                    counts[i].set(counts[i].get() + 1);
                    greenlet::yield_now();
                }
            })
        })
        .collect();
    let sleeper = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(10)));
    sleeper.join().unwrap(); // would never return if the spinners starved the timer
    stop.set(true);
    greenlet::joinall(&spinners, None, None).unwrap();
    let (a, b) = (counts[0].get(), counts[1].get());
    assert!(a > 0 && a.abs_diff(b) <= 1, "unfair: {a} vs {b}");
}

/// Main blocking in `sleep` while a greenlet yields forever still wakes up.
#[test]
fn main_sleep_wakes_while_a_greenlet_spins() {
    let h = greenlet::spawn(|| {
        loop {
            greenlet::yield_now();
        }
    });
    greenlet::sleep(Duration::from_millis(10));
    h.kill().unwrap();
}

/// Timers fire in deadline order, whatever the order of sleeping.
#[test]
fn timers_fire_in_deadline_order() {
    let log = Log::default();
    let hs: Vec<_> = [5u64, 25, 15, 1, 20, 10]
        .into_iter()
        .map(|ms| {
            let log = log.clone();
            greenlet::spawn(move || {
                greenlet::sleep(Duration::from_millis(ms));
                log.push(ms.to_string());
            })
        })
        .collect();
    greenlet::joinall(&hs, None, None).unwrap();
    assert_eq!(log.take(), ["1", "5", "10", "15", "20", "25"]);
}

/// `sleep` and `sleep_until` wait at least as long as asked.
#[test]
fn sleep_waits_long_enough() {
    let t = Instant::now();
    greenlet::sleep(Duration::from_millis(15));
    assert!(t.elapsed() >= Duration::from_millis(15));
    let deadline = Instant::now() + Duration::from_millis(10);
    greenlet::sleep_until(deadline);
    assert!(Instant::now() >= deadline);
    // A deadline in the past returns (after one loop turn).
    greenlet::sleep_until(Instant::now() - Duration::from_millis(1));
}

/// Many concurrent sleepers all wake up (the per-timer bench, small).
#[test]
fn many_sleepers() {
    let n = 2000;
    let woke = Rc::new(Cell::new(0));
    let base = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|i| {
            let w = woke.clone();
            greenlet::spawn(move || {
                greenlet::sleep_until(base + Duration::from_micros(i * 3));
                w.set(w.get() + 1);
            })
        })
        .collect();
    greenlet::joinall(&hs, None, None).unwrap();
    assert_eq!(woke.get(), n);
}

// ---------------------------------------------------------------------------------------------
// Threads

/// One hub per OS thread: greenlets of two threads run independently, each on its own hub.
#[test]
fn one_hub_per_thread() {
    let threads: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..10)
                    .map(|i| {
                        greenlet::spawn(move || {
                            greenlet::yield_now();
                            t * 100 + i
                        })
                    })
                    .collect();
                hs.iter().map(|h| h.get().unwrap()).sum::<i32>()
            })
        })
        .collect();
    let sums: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, [45, 1045, 2045]);
}

/// Cross-thread stop (issue 3): `HubHandle::stop` from another OS thread ends the main
/// greenlet's blocking call with a `LoopExit` whose `is_stopped()` is true.
#[test]
fn stop_from_another_thread_ends_mains_blocking_call() {
    on_fresh_thread(|| {
        let sleeper = SpawnBuilder::new()
            .name("long-sleeper")
            .spawn(|| greenlet::sleep(LONG))
            .unwrap();
        let hub = HubHandle::current().unwrap();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            hub.stop();
        });
        match sleeper.join() {
            Err(JoinError::LoopExit(e)) => {
                assert!(e.is_stopped());
                assert!(e.to_string().contains("stopped"), "{e}");
                assert!(e.waiting_on().contains("long-sleeper"), "{e}");
            }
            other => panic!("expected a stopped LoopExit, got {other:?}"),
        }
        stopper.join().unwrap();
        // The hub keeps working after a stop.
        assert_eq!(greenlet::spawn(|| 5).get().unwrap(), 5);
        sleeper.kill().unwrap();
    });
}

/// A stop requested while main is busy ends its next blocking call; a plain `sleep` just
/// returns early.
#[test]
fn stop_before_blocking() {
    on_fresh_thread(|| {
        let hub = HubHandle::current().unwrap();
        let h2 = hub.clone();
        std::thread::spawn(move || h2.stop()).join().unwrap();
        let t = Instant::now();
        greenlet::sleep(LONG);
        assert!(t.elapsed() < LONG);
        assert!(format!("{hub:?}").contains("HubHandle"));
    });
}
