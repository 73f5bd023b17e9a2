//! Groups of greenlets, joined and killed together: ports of gevent's `test__greenletset.py`.
//!
//! gevent's cases time their greenlets with sleeps and check elapsed times; here the order in
//! which members finish is forced with events, and nothing is timed.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use greenlet::pool::Group;
use greenlet::sync::Event;
use greenlet::{JoinError, JoinHandle, Kill};

const LONG: Duration = Duration::from_secs(3600);

/// Ports gevent's `test__greenletset.py::Test::test_basic`: a group counts its running members;
/// each leaves when it finishes.
#[test]
fn a_group_counts_members_until_they_finish() {
    let s = Group::new();
    let (first, second) = (Event::new(), Event::new());
    let f = first.clone();
    s.spawn(move || f.wait().unwrap());
    assert_eq!(s.len(), 1);
    let f = second.clone();
    s.spawn(move || f.wait().unwrap());
    assert_eq!(s.len(), 2);
    greenlet::yield_now();
    first.set();
    greenlet::yield_now();
    assert_eq!(s.len(), 1);
    second.set();
    greenlet::yield_now();
    assert!(s.is_empty());
}

/// Ports gevent's `test__greenletset.py::Test::test_waitall`: joining a group waits for every
/// member (the later one included); then it is empty.
#[test]
fn joining_a_group_waits_for_every_member() {
    let s = Group::new();
    let a = s.spawn(|| greenlet::sleep(Duration::from_millis(5)));
    let b = s.spawn(|| greenlet::sleep(Duration::from_millis(10)));
    assert_eq!(s.len(), 2);
    s.join().unwrap();
    assert!(s.is_empty());
    assert!(a.is_successful() && b.is_successful());
}

/// Ports gevent's `test__greenletset.py::Test::test_kill_block`: a blocking kill empties the
/// group without waiting for its members' sleeps.
#[test]
fn killing_a_group_ends_its_members_at_once() {
    let s = Group::new();
    let a = s.spawn(|| greenlet::sleep(LONG));
    let b = s.spawn(|| greenlet::sleep(LONG));
    assert_eq!(s.len(), 2);
    s.kill().unwrap();
    assert!(s.is_empty());
    assert!(matches!(a.get(), Err(JoinError::Killed)));
    assert!(matches!(b.get(), Err(JoinError::Killed)));
}

/// Ports gevent's `test__greenletset.py::Test::test_kill_noblock`: a non-blocking kill returns
/// with the members still there; they are gone after the hub's next turn.
#[test]
fn a_non_blocking_kill_empties_the_group_at_the_next_turn() {
    let s = Group::new();
    s.spawn(|| greenlet::sleep(LONG));
    s.spawn(|| greenlet::sleep(LONG));
    greenlet::yield_now();
    s.kill_nowait();
    assert_eq!(s.len(), 2);
    greenlet::sleep(Duration::from_millis(1));
    assert!(s.is_empty());
}

/// gevent's `Undead`: a greenlet that catches every kill, counts it, and sleeps on, until
/// `stop` is set.
fn undead(stop: Rc<Cell<bool>>) -> (JoinHandle<()>, Rc<Cell<u32>>) {
    let shots = Rc::new(Cell::new(0));
    let s = shots.clone();
    let h = greenlet::spawn(move || {
        while !stop.get() {
            let r = std::panic::catch_unwind(|| greenlet::sleep(Duration::from_millis(2)));
            if r.is_err() {
                s.set(s.get() + 1);
            }
        }
    });
    (h, shots)
}

/// Ports gevent's `test__greenletset.py::Test::test_kill_fires_once` (regression: every kill
/// of a group used to interrupt its members again): a group asks each member to die once, however
/// often it is killed; a member that catches the kill lingers undisturbed, and a blocking kill
/// of members that refuse to die gives up at an enclosing timeout with every member still
/// in. (gevent's `killone` has no counterpart: a member's own handle kills it alone.)
#[test]
fn a_group_kills_each_member_once() {
    let stop = Rc::new(Cell::new(false));
    let (p1, u1) = undead(stop.clone());
    let (p2, u2) = undead(stop.clone());
    greenlet::sleep(Duration::from_millis(1));
    let s = Group::new();
    s.add(&p1);
    s.add(&p2);
    assert_eq!(s.len(), 2);
    let check = |one: u32, two: u32| {
        assert!(!p1.is_ready() && !p2.is_ready());
        assert_eq!((u1.get(), u2.get()), (one, two));
    };
    check(0, 0);
    s.kill_nowait();
    check(0, 0);
    greenlet::yield_now();
    check(1, 1);
    s.kill_nowait();
    s.kill_nowait();
    greenlet::sleep(Duration::from_millis(10));
    check(1, 1);
    assert!(greenlet::with_timeout(Duration::from_millis(10), || s.kill()).is_err());
    assert_eq!(s.len(), 2);
    check(1, 1);
    stop.set(true);
    s.join().unwrap();
}

/// Ports gevent's `test__greenletset.py::Test::test_killall_subclass`: killing a group whose
/// members are one that already failed and one that sleeps.
#[test]
fn killing_a_group_with_a_failed_member() {
    let p1 = greenlet::spawn(|| -> u32 { panic!("expected panic: 1 / 0") });
    let p2 = greenlet::spawn(|| {
        greenlet::sleep(LONG);
        0
    });
    greenlet::yield_now(); // p1 fails and leaves; p2 sleeps
    let s = Group::new();
    s.add(&p1);
    s.add(&p2);
    assert_eq!(s.len(), 1, "a finished greenlet leaves at once");
    s.kill().unwrap();
    assert!(s.is_empty());
    assert!(matches!(p1.get(), Err(JoinError::Panicked(_))));
    assert!(matches!(p2.get(), Err(JoinError::Killed)));
}

/// Ports gevent's `test__greenletset.py::Test::test_killall_iterable_argument_non_block`:
/// `killall` without blocking; the greenlets are dead once the hub has turned.
#[test]
fn killall_without_blocking() {
    let hs: Vec<_> = (0..2)
        .map(|_| greenlet::spawn(|| greenlet::sleep(LONG)))
        .collect();
    greenlet::killall(&hs, Kill::Now).unwrap();
    greenlet::sleep(Duration::from_millis(1));
    assert!(hs.iter().all(|h| h.greenlet().is_dead()));
}

/// A greenlet that sleeps long and, when a kill interrupts its sleep (by unwinding it, or by
/// ending it early), lingers in another long sleep, and another, until `stop` is set (gevent's
/// `except: sleep(1)`, for a kill that may come more than once).
fn lingering(stop: &Rc<Cell<bool>>) -> JoinHandle<()> {
    let stop = stop.clone();
    greenlet::spawn(move || {
        while !stop.get() {
            let _ = std::panic::catch_unwind(|| greenlet::sleep(LONG));
        }
    })
}

/// Ports gevent's `test__greenletset.py::Test::test_killall_iterable_argument_timeout_not_started`:
/// greenlets killed before they start never run, so they die at once, well within the timeout.
#[test]
fn killall_with_a_timeout_before_the_greenlets_start() {
    let stop = Rc::new(Cell::new(false));
    let hs = [lingering(&stop), lingering(&stop)];
    greenlet::killall(&hs, Kill::JoinTimeout(Duration::from_millis(50))).unwrap();
    assert!(hs.iter().all(|h| h.greenlet().is_dead()));
}

/// Ports gevent's `test__greenletset.py::Test::test_killall_iterable_argument_timeout_started`:
/// running greenlets that linger after the kill outlive the timeout; `killall` says so and
/// they are still alive.
#[test]
fn killall_with_a_timeout_gives_up_on_lingering_greenlets() {
    let stop = Rc::new(Cell::new(false));
    let hs = [lingering(&stop), lingering(&stop)];
    greenlet::yield_now(); // both start and sleep
    assert!(matches!(
        greenlet::killall(&hs, Kill::JoinTimeout(Duration::from_millis(5))),
        Err(JoinError::TimedOut)
    ));
    assert!(hs.iter().all(|h| !h.greenlet().is_dead()));
    // Told to stop lingering, they end at the next kill.
    stop.set(true);
    greenlet::killall(&hs, Kill::Join).unwrap();
    assert!(hs.iter().all(|h| h.greenlet().is_dead()));
}
