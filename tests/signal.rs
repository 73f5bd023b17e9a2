//! `greenlet::signal::Signals`: delivery, the three receive forms, several receivers, refused
//! signals, and the disposition coming back.
//!
//! Signal dispositions are process-wide and the tests of this file run in parallel, so each
//! test uses a signal of its own, and raises it only while a `Signals` for it exists.

use std::time::Duration;

use greenlet::signal::Signals;
use libc::c_int;

mod util;
use util::{Ticker, on_fresh_thread};

fn raise(signo: c_int) {
    // SAFETY: raising a signal for which a Signals (our handler) is installed.
    assert_eq!(unsafe { libc::raise(signo) }, 0);
}

fn rt(n: c_int) -> c_int {
    libc::SIGRTMIN() + n
}

/// The current handler address (or SIG_DFL / SIG_IGN) of `signo`.
fn disposition(signo: c_int) -> libc::sighandler_t {
    // SAFETY: querying only; `old` is a valid out-pointer.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signo, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// A greenlet blocked in `recv` lets a ticker run, and gets the signal another greenlet sends.
#[test]
fn recv_parks_while_a_ticker_keeps_running() {
    on_fresh_thread(|| {
        let signals = Signals::new(&[libc::SIGUSR1]).unwrap();
        let ticker = Ticker::start();
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = ticks.clone();
        // The signal is sent only after the ticker has ticked while main was parked in recv.
        let sender = greenlet::spawn(move || {
            let t = Ticker::start();
            t.wait_ticks(5);
            seen.set(5);
            raise(libc::SIGUSR1);
        });
        assert_eq!(signals.recv().unwrap(), libc::SIGUSR1);
        assert_eq!(
            ticks.get(),
            5,
            "the signal came from the greenlet that waited for ticks"
        );
        assert!(ticker.ticks() >= 5, "the ticker ran during recv");
        sender.join().unwrap();
    });
}

/// `try_recv` and `recv_timeout` report "nothing yet" as `None`, and then the signal.
#[test]
fn try_recv_and_recv_timeout_without_and_with_a_signal() {
    on_fresh_thread(|| {
        let signals = Signals::new(&[libc::SIGUSR2]).unwrap();
        assert_eq!(signals.try_recv().unwrap(), None);
        let ticker = Ticker::start();
        assert_eq!(
            signals.recv_timeout(Duration::from_millis(30)).unwrap(),
            None
        );
        assert!(ticker.ticks() > 0, "the ticker ran during recv_timeout");
        raise(libc::SIGUSR2);
        assert_eq!(signals.try_recv().unwrap(), Some(libc::SIGUSR2));
        assert_eq!(signals.try_recv().unwrap(), None);
        raise(libc::SIGUSR2);
        assert_eq!(
            signals.recv_timeout(Duration::from_secs(60)).unwrap(),
            Some(libc::SIGUSR2)
        );
    });
}

/// Several signals on one `Signals` come back in the order they were delivered.
#[test]
fn deliveries_keep_their_order() {
    on_fresh_thread(|| {
        let (a, b) = (rt(1), rt(2));
        let signals = Signals::new(&[a, b, a]).unwrap();
        assert_eq!(signals.signals(), [a, b]);
        for s in [a, b, b, a] {
            raise(s);
        }
        let got: Vec<c_int> = (0..4).map(|_| signals.recv().unwrap()).collect();
        assert_eq!(got, [a, b, b, a]);
    });
}

/// Two `Signals` on one hub and one on another thread's hub each get every delivery.
#[test]
fn several_signals_on_one_number_on_several_hubs() {
    let signo = rt(3);
    let here = Signals::new(&[signo]).unwrap();
    let also_here = Signals::new(&[signo]).unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let there = Signals::new(&[signo]).unwrap();
        ready_tx.send(()).unwrap();
        let ticker = Ticker::start();
        let got = there.recv_timeout(util::NOT_HANGING).unwrap();
        (got, ticker.ticks())
    });
    ready_rx.recv().unwrap();
    raise(signo);
    assert_eq!(here.recv().unwrap(), signo);
    assert_eq!(also_here.recv().unwrap(), signo);
    let (got, _) = other.join().unwrap();
    assert_eq!(got, Some(signo));
}

/// Signals that cannot be caught, fault signals, reserved and bogus numbers and an empty list
/// are refused with `InvalidInput` and a message naming the problem; nothing is installed.
#[test]
fn uncatchable_and_bogus_signals_are_refused_clearly() {
    let cases: [(&[c_int], &str); 7] = [
        (&[libc::SIGKILL], "SIGKILL cannot be caught"),
        (&[libc::SIGSTOP], "SIGSTOP cannot be caught"),
        (&[libc::SIGSEGV], "fault signal"),
        (&[libc::SIGFPE], "fault signal"),
        (&[0], "not a signal number"),
        (&[4096], "not a signal number"),
        (&[], "at least one signal"),
    ];
    for (signos, msg) in cases {
        let e = Signals::new(signos).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{signos:?}");
        assert!(e.to_string().contains(msg), "{signos:?}: {e}");
    }
    // A refused number in a list installs nothing for the valid ones either.
    let before = disposition(rt(4));
    assert!(Signals::new(&[rt(4), libc::SIGKILL]).is_err());
    assert_eq!(disposition(rt(4)), before);
}

/// The disposition from before the first `Signals` comes back when the last one goes.
#[test]
fn last_signals_dropped_restores_the_previous_disposition() {
    let signo = rt(5);
    // SAFETY: setting SIG_IGN for a real-time signal only this test uses.
    unsafe { libc::signal(signo, libc::SIG_IGN) };
    let first = Signals::new(&[signo]).unwrap();
    let second = Signals::new(&[signo]).unwrap();
    assert_ne!(disposition(signo), libc::SIG_IGN);
    drop(first);
    assert_ne!(
        disposition(signo),
        libc::SIG_IGN,
        "one Signals is still there"
    );
    raise(signo);
    assert_eq!(second.recv().unwrap(), signo);
    drop(second);
    assert_eq!(disposition(signo), libc::SIG_IGN);
    // SAFETY: as above.
    unsafe { libc::signal(signo, libc::SIG_DFL) };
    assert_eq!(disposition(signo), libc::SIG_DFL);
    drop(Signals::new(&[signo]).unwrap());
    assert_eq!(disposition(signo), libc::SIG_DFL);
}

/// A `Timeout` of the waiting greenlet ends `recv` with `TimedOut`.
#[test]
fn greenlet_timeout_ends_recv() {
    on_fresh_thread(|| {
        let signals = Signals::new(&[rt(6)]).unwrap();
        let r = greenlet::with_timeout(Duration::from_millis(20), || signals.recv());
        match r {
            Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut),
            Err(_) => {}
            Ok(Ok(s)) => panic!("no signal was sent, got {s}"),
        }
    });
}

/// Signals made and dropped on one thread while another thread sends the signal in a loop:
/// no delivery crashes the process or goes to a closed pipe, and a long-lived `Signals` keeps
/// receiving throughout (regression guard for the handler/drop hand-over).
#[test]
fn dropping_signals_while_signals_fly() {
    let signo = rt(7);
    let keeper = Signals::new(&[signo]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let sender = std::thread::spawn(move || {
        let mut sent = 0u32;
        while !s.load(std::sync::atomic::Ordering::Relaxed) && sent < 20_000 {
            // SAFETY: the keeper's handler is installed for the whole loop.
            unsafe { libc::kill(pid, signo) };
            sent += 1;
            std::thread::yield_now();
        }
        sent
    });
    for _ in 0..2000 {
        drop(Signals::new(&[signo]).unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.join().unwrap();
    assert!(sent > 0);
    assert_eq!(keeper.recv().unwrap(), signo);
}
