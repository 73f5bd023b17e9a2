//! Killing greenlets: the soft kill (`kill_timeout`, `kill_soft`, `killall(Kill::Grace)`), in
//! which a greenlet's blocking call fails with its own `Killed` and its cleanup may block, and
//! what blocking does during the unwind of a hard kill.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use greenlet::net::{TcpListener, TcpStream};
use greenlet::sync::{AsyncError, AsyncResult, Event, Queue, RecvError, SendError, WaitError};
use greenlet::{JoinError, Kill, Killed};
use util::Log;

const LONG: Duration = Duration::from_secs(3600);
const GRACE: Duration = Duration::from_secs(10);

/// The regression of the issue: a destructor that blocks during a kill returned at once, so a
/// goodbye message never went out. With the soft kill, the blocking call fails with
/// `Killed`, the cleanup code blocks (a sleep and a socket write) and completes.
#[test]
fn soft_kill_lets_cleanup_block_and_say_goodbye() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reading = Event::new();
    let server = greenlet::spawn({
        let reading = reading.clone();
        move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            // Set right before the read parks: whoever waits on it runs once the read has.
            reading.set();
            // Waits for a request that never comes; the soft kill ends the read.
            let err = conn.read(&mut buf).unwrap_err();
            assert!(Killed::is_in(&err), "{err:?}");
            greenlet::sleep(Duration::from_millis(2)); // cleanup may block...
            conn.write_all(b"goodbye\n").unwrap(); // ...and do I/O
            "closed politely"
        }
    });
    let client = greenlet::spawn(move || {
        let mut conn = TcpStream::connect(addr).unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        got
    });
    // Connected, and the server parked in its read (a fixed sleep was too short under valgrind).
    reading.wait_timeout(GRACE).unwrap();
    server.kill_timeout(GRACE).unwrap();
    assert_eq!(server.get().unwrap(), "closed politely");
    assert_eq!(client.get().unwrap(), "goodbye\n");
}

/// Each API reports a soft kill in its own error type.
#[test]
fn every_blocking_api_reports_killed_in_its_own_type() {
    let log = Log::new();
    let l = log.clone();
    let h = greenlet::spawn(move || {
        let q = Queue::<u8>::new();
        l.push(format!("get: {:?}", q.get()));
        let full = Queue::bounded(0);
        l.push(format!("put: {:?}", full.put(1u8)));
        l.push(format!("event: {:?}", Event::new().wait()));
        l.push(format!("result: {:?}", AsyncResult::<u8>::new().get()));
        let other = greenlet::spawn(|| greenlet::sleep(LONG));
        l.push(format!("join: {:?}", other.join()));
        l.push(format!("idle-free sleep returns: {}", {
            greenlet::sleep(LONG);
            "yes"
        }));
        other.kill().unwrap();
    });
    greenlet::yield_now();
    let expect = [
        "get: Err(Killed)",
        "put: Err(Killed(..))",
        "event: Err(Killed)",
        "result: Err(Killed)",
        "join: Err(Killed)",
        "idle-free sleep returns: yes",
    ];
    for _ in 0..expect.len() {
        h.kill_soft();
        greenlet::yield_now();
        greenlet::yield_now();
    }
    h.join().unwrap();
    assert_eq!(log.events(), expect);
    // The types themselves, for the match arms users write.
    assert!(matches!(WaitError::Killed, WaitError::Killed));
    assert_eq!(RecvError::Killed.to_string(), Killed.to_string());
    assert!(SendError::Killed(1).into_inner() == 1);
    assert!(matches!(
        AsyncError::from(WaitError::Killed),
        AsyncError::Killed
    ));
}

/// A soft kill is delivered once: the blocking call after the failed one works.
#[test]
fn a_soft_kill_fails_one_call_only() {
    let q = Queue::new();
    let q2 = q.clone();
    let h = greenlet::spawn(move || {
        let first = q2.get();
        let second = q2.get_timeout(GRACE);
        (first, second)
    });
    greenlet::yield_now();
    h.kill_soft();
    greenlet::yield_now(); // the first get fails; the second waits
    q.put(7).unwrap();
    assert_eq!(h.get().unwrap(), (Err(RecvError::Killed), Ok(7)));
}

/// A soft kill of a greenlet that is running (not parked) fails its next park.
#[test]
fn a_soft_kill_before_the_park_fails_the_next_park() {
    let h = greenlet::spawn(|| {
        let me = greenlet::current();
        let _ = me; // the kill comes from the greenlet that runs next
        greenlet::yield_now(); // killed meanwhile, but yielding is not a park
        Event::new().wait_timeout(GRACE)
    });
    let h2 = h.clone();
    greenlet::spawn(move || h2.kill_soft());
    assert_eq!(h.get().unwrap(), Err(WaitError::Killed));
}

/// A greenlet that ignores the soft kill is unwound when the grace time is up, and its
/// destructors run.
#[test]
fn a_greenlet_that_ignores_the_soft_kill_is_unwound_after_the_grace() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let h = greenlet::spawn(move || {
        let _guard = util::OnDrop(move || d.set(true));
        loop {
            // Ignores every failure, the soft kill's included.
            let _ = Event::new().wait();
        }
    });
    greenlet::yield_now();
    h.kill_timeout(Duration::from_millis(5)).unwrap();
    assert!(dropped.get());
    assert!(matches!(h.get(), Err(JoinError::Killed)));
}

/// An item handed to a getter just before the soft kill reaches it is not lost: the getter
/// takes it, and the kill fails its next park instead.
#[test]
fn an_item_served_before_the_soft_kill_is_taken_and_the_kill_waits() {
    let q = Queue::new();
    let q2 = q.clone();
    let h = greenlet::spawn(move || (q2.get(), q2.get()));
    greenlet::yield_now(); // parked in the first get
    q.put("item").unwrap(); // handed straight to it; it is ready, not yet run
    h.kill_soft();
    assert_eq!(h.get().unwrap(), (Ok("item"), Err(RecvError::Killed)));
}

/// `killall(Kill::Grace)` gives every greenlet its goodbye; `Kill::from_block` maps gevent's
/// arguments.
#[test]
fn killall_with_grace_lets_each_greenlet_clean_up() {
    let said = Rc::new(RefCell::new(Vec::new()));
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let said = said.clone();
            greenlet::spawn(move || {
                if Event::new().wait() == Err(WaitError::Killed) {
                    greenlet::sleep(Duration::from_millis(1));
                    said.borrow_mut().push(i);
                }
            })
        })
        .collect();
    greenlet::yield_now();
    greenlet::killall(&hs, Kill::Grace(GRACE)).unwrap();
    said.borrow_mut().sort();
    assert_eq!(*said.borrow(), [0, 1, 2]);
    assert_eq!(Kill::from_block(false, Some(GRACE)), Kill::Now);
    assert_eq!(Kill::from_block(true, None), Kill::Join);
    assert_eq!(
        Kill::from_block(true, Some(GRACE)),
        Kill::JoinTimeout(GRACE)
    );
}

/// During a hard kill's unwind nothing may block: a blocking call in a destructor fails at
/// once with a refusal, as the kill's documentation says.
#[test]
fn blocking_during_a_hard_kill_unwind_is_refused_at_once() {
    let outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    let h = greenlet::spawn(move || {
        let _guard = util::OnDrop(move || {
            *o.borrow_mut() = Some(Queue::<u8>::new().get());
        });
        greenlet::sleep(LONG);
    });
    greenlet::yield_now();
    h.kill().unwrap();
    match outcome.borrow_mut().take() {
        Some(Err(RecvError::LoopExit(e))) => assert!(e.is_refused(), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// `Kill::JoinTimeout` (the old `killall(hs, true, Some(t))`) unwinds at once, without the
/// soft kill: a sleeper ends killed, not by returning from its sleep.
#[test]
fn killall_join_timeout_unwinds_at_once() {
    let hs: Vec<_> = (0..3)
        .map(|_| greenlet::spawn(|| greenlet::sleep(LONG)))
        .collect();
    greenlet::yield_now();
    greenlet::killall(&hs, Kill::JoinTimeout(GRACE)).unwrap();
    assert!(hs.iter().all(|h| matches!(h.get(), Err(JoinError::Killed))));
}
