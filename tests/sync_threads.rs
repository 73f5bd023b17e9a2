//! The `Send + Sync` primitives of `greenlet::sync` across hubs and threads: `Mutex`,
//! `RwLock`, `Condvar` and `mpsc`. What is checked is that waiting parks (the hub's other
//! greenlets keep running), that nothing is lost, and std's semantics (poisoning, errors,
//! timeouts); never how long anything took.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, TryRecvError, TrySendError};
use std::sync::{Arc, TryLockError};
use std::time::Duration;

use greenlet::sync::{Condvar, Mutex, RwLock, mpsc};
use greenlet::{JoinError, Runtime};

mod util;

/// What one hub saw in the mutex test.
#[derive(Debug)]
struct HubReport {
    ticks: u64,
    /// Ticks of this hub's ticker that happened while a greenlet of this hub waited for the
    /// lock, summed over every wait.
    ticks_during_waits: u64,
}

#[test]
fn green_mutex_held_across_sleeps_loses_no_update_and_hubs_keep_ticking() {
    const PER_HUB: usize = 200;
    let rt = Runtime::new(2).unwrap();
    let counter = Arc::new(Mutex::new(0u64));
    let drivers: Vec<_> = (0..2)
        .map(|hub| {
            let counter = counter.clone();
            rt.spawn_on(hub, move || {
                let ticks = Rc::new(Cell::new(0u64));
                let done = Rc::new(Cell::new(false));
                let (t, d) = (ticks.clone(), done.clone());
                let ticker = greenlet::spawn(move || {
                    while !d.get() {
                        t.set(t.get() + 1);
                        greenlet::sleep(Duration::from_micros(200));
                    }
                });
                let during_waits = Rc::new(Cell::new(0u64));
                let workers: Vec<_> = (0..PER_HUB)
                    .map(|_| {
                        let (counter, ticks, during) =
                            (counter.clone(), ticks.clone(), during_waits.clone());
                        greenlet::spawn(move || {
                            let before = ticks.get();
                            let mut n = counter.lock().unwrap();
                            during.set(during.get() + (ticks.get() - before));
                            let seen = *n;
                            // Held across a green sleep: a std mutex here would freeze the hub.
                            greenlet::sleep(Duration::from_micros(100));
                            *n = seen + 1;
                        })
                    })
                    .collect();
                greenlet::joinall(&workers, None, None).unwrap();
                for w in &workers {
                    assert!(w.is_successful());
                }
                done.set(true);
                ticker.join().unwrap();
                HubReport {
                    ticks: ticks.get(),
                    ticks_during_waits: during_waits.get(),
                }
            })
            .unwrap()
        })
        .collect();
    let reports: Vec<HubReport> = drivers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        *counter.lock().unwrap(),
        2 * PER_HUB as u64,
        "no update lost"
    );
    for r in &reports {
        // Had a wait blocked the hub's thread, its ticker could not have ticked during it.
        assert!(r.ticks_during_waits > 0, "{reports:?}");
        assert!(r.ticks > 1, "{reports:?}");
    }
}

#[test]
fn four_threads_send_100k_messages_to_one_greenlet() {
    const PER_THREAD: u64 = 25_000;
    let rt = Runtime::new(1).unwrap();
    let (tx, rx) = mpsc::channel::<(u64, u64)>();
    let receiver = rt.spawn(move || {
        let mut next = [0u64; 4];
        let mut count = 0u64;
        for (sender, i) in rx.iter() {
            // Each sender's messages arrive in the order it sent them.
            assert_eq!(next[sender as usize], i);
            next[sender as usize] += 1;
            count += 1;
        }
        (count, next)
    });
    let senders: Vec<_> = (0..4u64)
        .map(|s| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    tx.send((s, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    for s in senders {
        s.join().unwrap();
    }
    let (count, next) = receiver.join().unwrap();
    assert_eq!(count, 4 * PER_THREAD);
    assert_eq!(next, [PER_THREAD; 4]);
}

#[test]
fn a_full_sync_channel_parks_the_sending_greenlet_not_its_hub() {
    let rt = Runtime::new(1).unwrap();
    let (tx, rx) = mpsc::sync_channel::<u32>(2);
    let sent = Arc::new(AtomicUsize::new(0));
    let s = sent.clone();
    let sibling_ran_while_full = Arc::new(AtomicBool::new(false));
    let flag = sibling_ran_while_full.clone();
    let h = rt.spawn(move || {
        let s2 = s.clone();
        let sender = greenlet::spawn(move || {
            for i in 0..10 {
                tx.send(i).unwrap();
                s2.fetch_add(1, Ordering::AcqRel);
            }
        });
        // The sender fills the channel and parks; this sibling then runs on the same hub.
        greenlet::yield_now();
        if s.load(Ordering::Acquire) == 2 && !sender.is_ready() {
            flag.store(true, Ordering::Release);
        }
        sender.join().unwrap();
    });
    // A plain thread receiver, draining slowly.
    while sent.load(Ordering::Acquire) < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let got: Vec<u32> = rx.iter().collect();
    h.join().unwrap();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert!(sibling_ran_while_full.load(Ordering::Acquire));
}

#[test]
fn rendezvous_send_returns_once_the_receiver_has_the_item() {
    let (tx, rx) = mpsc::sync_channel::<u32>(0);
    let taken = Arc::new(AtomicBool::new(false));
    let t = taken.clone();
    let receiver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let v = rx.recv().unwrap();
        t.store(true, Ordering::Release);
        v
    });
    // The main greenlet parks until the thread has taken the item.
    tx.send(7).unwrap();
    // `send` returned, so the thread had taken the item (it sets the flag right after).
    assert_eq!(receiver.join().unwrap(), 7);
    assert!(taken.load(Ordering::Acquire));
    // Nobody receiving: try_send finds no taker, and the item comes back.
    let (tx, _rx) = mpsc::sync_channel::<u32>(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(
        tx.send_timeout(2, Duration::from_millis(5)),
        Err(TrySendError::Full(2))
    );
}

#[test]
fn mpsc_errors_are_std_errors() {
    let (tx, rx) = mpsc::channel::<u8>();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(2)),
        Err(RecvTimeoutError::Timeout)
    );
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(std::sync::mpsc::RecvError));
    let (tx, rx) = mpsc::sync_channel::<u8>(1);
    drop(rx);
    assert_eq!(tx.send(3), Err(std::sync::mpsc::SendError(3)));
    assert_eq!(tx.try_send(4), Err(TrySendError::Disconnected(4)));
}

#[test]
fn a_greenlet_timeout_ends_recv_with_recv_error() {
    let (_tx, rx) = mpsc::channel::<u8>();
    // The `Timeout` fired (Err(Elapsed)); inside, recv ended with std's RecvError.
    let r = greenlet::with_timeout(Duration::from_millis(5), || {
        assert_eq!(rx.recv(), Err(std::sync::mpsc::RecvError));
    });
    assert!(r.is_err());
}

#[test]
fn try_iter_takes_what_is_there() {
    let (tx, rx) = mpsc::channel();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(rx.try_iter().count(), 0);
}

#[test]
fn a_plain_thread_waits_for_a_mutex_a_greenlet_holds_across_a_sleep() {
    let rt = Runtime::new(1).unwrap();
    let m = Arc::new(Mutex::new(Vec::new()));
    let locked = Arc::new(AtomicBool::new(false));
    let (m2, l2) = (m.clone(), locked.clone());
    let holder = rt.spawn(move || {
        let mut v = m2.lock().unwrap();
        l2.store(true, Ordering::Release);
        greenlet::sleep(Duration::from_millis(20));
        v.push("greenlet");
    });
    while !locked.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let m3 = m.clone();
    // A thread with no hub: it blocks until the greenlet unlocks.
    std::thread::spawn(move || m3.lock().unwrap().push("thread"))
        .join()
        .unwrap();
    holder.join().unwrap();
    assert_eq!(*m.lock().unwrap(), ["greenlet", "thread"]);
}

#[test]
fn a_plain_thread_receives_from_greenlets() {
    let rt = Runtime::new(2).unwrap();
    let (tx, rx) = mpsc::channel();
    for hub in 0..2 {
        let tx = tx.clone();
        rt.spawn_on(hub, move || {
            for i in 0..100 {
                if i % 10 == 0 {
                    greenlet::yield_now();
                }
                tx.send(hub * 1000 + i).unwrap();
            }
        })
        .unwrap();
    }
    drop(tx);
    let got = std::thread::spawn(move || rx.iter().count())
        .join()
        .unwrap();
    assert_eq!(got, 200);
}

#[test]
fn a_panic_while_holding_the_mutex_poisons_it() {
    let rt = Runtime::new(1).unwrap();
    let m = Arc::new(Mutex::new(1));
    let m2 = m.clone();
    let h = rt.spawn(move || {
        let _g = m2.lock().unwrap();
        panic!("holder panics");
    });
    assert!(matches!(h.join(), Err(JoinError::Panicked(_))));
    assert!(m.is_poisoned());
    let g = m.lock().unwrap_err().into_inner();
    assert_eq!(*g, 1);
    drop(g);
    assert!(matches!(m.try_lock(), Err(TryLockError::Poisoned(_))));
    m.clear_poison();
    assert_eq!(*m.lock().unwrap(), 1);
    let m = Arc::try_unwrap(m).unwrap();
    assert_eq!(m.into_inner().unwrap(), 1);
}

#[test]
fn a_writer_panic_poisons_the_rwlock_a_reader_panic_does_not() {
    let rt = Runtime::new(1).unwrap();
    let l = Arc::new(RwLock::new(0));
    let l2 = l.clone();
    let reader = rt.spawn(move || {
        let _r = l2.read().unwrap();
        panic!("reader panics");
    });
    assert!(reader.join().is_err());
    assert!(!l.is_poisoned());
    let l3 = l.clone();
    let writer = rt.spawn(move || {
        let _w = l3.write().unwrap();
        panic!("writer panics");
    });
    assert!(writer.join().is_err());
    assert!(l.is_poisoned());
    assert!(l.read().is_err());
}

#[test]
fn lock_timeouts_give_up_and_leave_the_lock_usable() {
    let rt = Runtime::new(1).unwrap();
    let m = Arc::new(Mutex::new(0));
    let l = Arc::new(RwLock::new(0));
    let (m2, l2) = (m.clone(), l.clone());
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = rt.spawn(move || {
        let _g = m2.lock().unwrap();
        let _w = l2.write().unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.recv().unwrap();
    assert!(matches!(
        m.lock_timeout(Duration::from_millis(5)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    assert!(matches!(
        l.read_timeout(Duration::from_millis(5)),
        Err(TryLockError::WouldBlock)
    ));
    assert!(matches!(
        l.write_timeout(Duration::from_millis(5)),
        Err(TryLockError::WouldBlock)
    ));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    *m.lock_timeout(Duration::from_secs(30)).unwrap() += 1;
    *l.write_timeout(Duration::from_secs(30)).unwrap() += 1;
    assert_eq!(*m.lock().unwrap(), 1);
    assert_eq!(*l.read().unwrap(), 1);
}

#[test]
fn rwlock_readers_share_it_across_sleeps() {
    let rt = Runtime::new(2).unwrap();
    let l = Arc::new(RwLock::new(()));
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let (l, inside, peak) = (l.clone(), inside.clone(), peak.clone());
            rt.spawn(move || {
                let _r = l.read().unwrap();
                let now = inside.fetch_add(1, Ordering::AcqRel) + 1;
                peak.fetch_max(now, Ordering::AcqRel);
                greenlet::sleep(Duration::from_millis(20));
                inside.fetch_sub(1, Ordering::AcqRel);
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert!(peak.load(Ordering::Acquire) > 1, "readers held it together");
}

#[test]
fn a_killed_waiter_leaves_the_mutex_queue() {
    let m = Rc::new(Mutex::new(0));
    let guard = m.lock().unwrap();
    let m2 = m.clone();
    let waiter = greenlet::spawn(move || *m2.lock().unwrap() += 1);
    let m3 = m.clone();
    let next = greenlet::spawn(move || *m3.lock().unwrap() += 10);
    greenlet::yield_now(); // both wait now
    waiter.kill().unwrap();
    drop(guard);
    next.join().unwrap();
    assert_eq!(*m.lock().unwrap(), 10);
}

#[test]
fn condvar_wakes_a_greenlet_on_another_hub() {
    let rt = Runtime::new(2).unwrap();
    let pair = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let p = pair.clone();
    let consumer = rt
        .spawn_on(0, move || {
            let (items, cv) = &*p;
            let mut got = Vec::new();
            while got.len() < 50 {
                let mut items = cv
                    .wait_while(items.lock().unwrap(), |v| v.is_empty())
                    .unwrap();
                got.append(&mut items);
            }
            got
        })
        .unwrap();
    let p = pair.clone();
    rt.spawn_on(1, move || {
        for i in 0..50 {
            p.0.lock().unwrap().push(i);
            p.1.notify_one();
            if i % 7 == 0 {
                greenlet::sleep(Duration::from_millis(1));
            }
        }
    })
    .unwrap()
    .join()
    .unwrap();
    assert_eq!(consumer.join().unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn condvar_wait_timeout_reports_the_timeout() {
    let m = Mutex::new(0);
    let cv = Condvar::new();
    let (g, r) = cv
        .wait_timeout_while(m.lock().unwrap(), Duration::from_millis(5), |n| *n == 0)
        .unwrap();
    assert!(r.timed_out());
    assert_eq!(*g, 0);
}

#[test]
fn condvar_notify_after_a_timeout_reaches_the_remaining_waiter() {
    // Two waiters on one hub; the first gives up before the notification comes.
    let m = Rc::new(Mutex::new(false));
    let cv = Rc::new(Condvar::new());
    let (m1, cv1) = (m.clone(), cv.clone());
    let first = greenlet::spawn(move || {
        let (_g, r) = cv1
            .wait_timeout(m1.lock().unwrap(), Duration::from_millis(1))
            .unwrap();
        r.timed_out()
    });
    let (m2, cv2) = (m.clone(), cv.clone());
    let second = greenlet::spawn(move || {
        let g = cv2.wait_while(m2.lock().unwrap(), |ready| !*ready).unwrap();
        *g
    });
    greenlet::yield_now(); // both wait
    greenlet::sleep(Duration::from_millis(5)); // the first has timed out
    *m.lock().unwrap() = true;
    cv.notify_one();
    assert!(first.get().unwrap());
    assert!(second.get().unwrap());
}
