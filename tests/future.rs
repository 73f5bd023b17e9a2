//! Rust futures and greenlets: `block_on` runs a future in a greenlet (woken from the same hub,
//! from other threads, many times, after it finished), panics stay in their greenlet, and a
//! `JoinHandle` becomes a `Send` future that async code on another thread awaits.

mod util;

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use greenlet::{JoinError, block_on, block_on_timeout};
use util::{Ticker, on_fresh_thread};

/// A future that is ready once `flag` is set, storing the latest waker in `waker` for whoever
/// sets the flag.
#[derive(Clone, Default)]
struct Flag {
    set: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    polls: Arc<AtomicU64>,
}

impl Flag {
    fn set_and_wake(&self) {
        self.set.store(true, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }

    fn wait(&self) -> FlagFuture {
        FlagFuture(self.clone())
    }
}

struct FlagFuture(Flag);

impl Future for FlagFuture {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let polls = self.0.polls.fetch_add(1, Ordering::SeqCst) + 1;
        // Register before looking, so that a set in between is not missed.
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.set.load(Ordering::SeqCst) {
            Poll::Ready(polls)
        } else {
            Poll::Pending
        }
    }
}

/// A one-future executor for a plain OS thread (no hub): parks the thread until woken.
fn run_on_os_thread<F: Future>(f: F) -> F::Output {
    struct Unpark(Mutex<bool>, Condvar);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            *self.0.lock().unwrap() = true;
            self.1.notify_one();
        }
    }
    let unpark = Arc::new(Unpark(Mutex::new(false), Condvar::new()));
    let waker = Waker::from(unpark.clone());
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        let mut woken = unpark.0.lock().unwrap();
        while !*woken {
            let (w, t) = unpark.1.wait_timeout(woken, util::NOT_HANGING).unwrap();
            assert!(!t.timed_out(), "the future was never woken");
            woken = w;
        }
        *woken = false;
    }
}

// ---- block_on ----

#[test]
fn block_on_runs_async_code() {
    on_fresh_thread(|| {
        async fn add(a: u32, b: u32) -> u32 {
            a + b
        }
        assert_eq!(block_on(async { add(1, 2).await * 2 }), 6);
        assert_eq!(block_on(std::future::ready("ready")), "ready");
    });
}

/// A future woken by another greenlet of the same hub, which first waits for the ticker: the
/// ticker runs while block_on waits.
#[test]
fn block_on_parks_while_a_ticker_runs_and_a_greenlet_wakes_it() {
    on_fresh_thread(|| {
        let flag = Flag::default();
        let ticker = Ticker::start();
        let counter = ticker.counter();
        let setter = flag.clone();
        greenlet::spawn(move || {
            while counter.get() < 5 {
                greenlet::sleep(Duration::from_millis(1));
            }
            setter.set_and_wake();
        });
        let polls = block_on(flag.wait());
        assert!(ticker.ticks() >= 5);
        assert!(polls >= 2, "polled, parked, woken, polled again");
    });
}

/// A future that wakes itself while it is being polled (as `yield_now`-style futures do) is
/// polled again: a wake from the hub's own thread that finds nobody parked must not be lost
/// (regression: with same-thread wakes delivered directly, it was, and block_on hung).
#[test]
fn a_future_that_wakes_itself_during_its_poll_is_polled_again() {
    on_fresh_thread(|| {
        let mut polls = 0;
        let n = block_on(std::future::poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(polls)
            }
        }));
        assert_eq!(n, 3);
        // And with a clone woken and dropped inside the poll.
        let mut polls = 0;
        block_on(std::future::poll_fn(|cx| {
            polls += 1;
            if polls == 1 {
                let clone = cx.waker().clone();
                clone.wake();
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }));
    });
}

/// Woken from another OS thread, which first waits for a go from a greenlet that waits for
/// the ticker.
#[test]
fn block_on_woken_from_another_thread() {
    on_fresh_thread(|| {
        let flag = Flag::default();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let setter = flag.clone();
        let thread = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            setter.set_and_wake();
        });
        let ticker = Ticker::start();
        let counter = ticker.counter();
        greenlet::spawn(move || {
            while counter.get() < 5 {
                greenlet::sleep(Duration::from_millis(1));
            }
            go_tx.send(()).unwrap();
        });
        block_on(flag.wait());
        assert!(ticker.ticks() >= 5);
        thread.join().unwrap();
    });
}

/// A waker cloned and woken a million times from another thread, while the future counts up
/// to a target the thread reaches last: no wake-up is lost (the future finishes), wakes
/// coalesce into few polls, and nothing piles up (the process would grow by tens of MB if
/// each wake queued an entry).
#[test]
fn a_waker_woken_a_million_times_loses_nothing() {
    on_fresh_thread(|| {
        let progress = Arc::new(AtomicU64::new(0));
        let waker_slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let (p, slot) = (progress.clone(), waker_slot.clone());
        const N: u64 = 1_000_000;
        let before = util::rss_kib();
        let thread = std::thread::spawn(move || {
            let waker = loop {
                if let Some(w) = slot.lock().unwrap().clone() {
                    break w;
                }
                std::thread::yield_now();
            };
            for i in 1..=N {
                p.store(i, Ordering::SeqCst);
                let clone = waker.clone();
                clone.wake(); // a clone, woken and dropped
                waker.wake_by_ref();
            }
        });
        let mut polls = 0u64;
        block_on(std::future::poll_fn(|cx| {
            polls += 1;
            *waker_slot.lock().unwrap() = Some(cx.waker().clone());
            if progress.load(Ordering::SeqCst) == N {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
        thread.join().unwrap();
        let grown = util::rss_kib().saturating_sub(before);
        assert!(polls < 2 * N, "{polls} polls for {N} x 2 wakes");
        assert!(grown < 16 * 1024, "grew by {grown} KiB");
    });
}

/// Waking after the future has finished does nothing, on this thread, from another, and after
/// the greenlet's thread has exited; and a surviving clone does not keep the hub from seeing
/// that it ran dry.
#[test]
fn waking_after_the_end_is_harmless() {
    let kept = on_fresh_thread(|| {
        let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
        let k = kept.clone();
        block_on(std::future::poll_fn(move |cx| {
            *k.lock().unwrap() = Some(cx.waker().clone());
            Poll::Ready(())
        }));
        let w = kept.lock().unwrap().clone().unwrap();
        w.wake_by_ref();
        let w2 = w.clone();
        std::thread::spawn(move || w2.wake()).join().unwrap();
        // Nothing else can wake main: a LoopExit, not a hang, despite the surviving clone.
        let e = greenlet::sync::Event::new().wait().unwrap_err();
        assert!(e.to_string().contains("would block forever"), "{e}");
        w
    });
    // The greenlet's thread (and its hub) are gone.
    kept.wake_by_ref();
    std::thread::spawn(move || kept.wake()).join().unwrap();
}

// ---- bad input ----

/// A future that panics unwinds only its greenlet: join gives the panic, the hub and the
/// other greenlets go on.
#[test]
fn a_panicking_future_is_the_greenlets_panic() {
    on_fresh_thread(|| {
        let ticker = Ticker::start();
        let h = greenlet::spawn(|| {
            block_on(async {
                greenlet::sleep(Duration::from_millis(2)); // green calls work inside, too
                panic!("expected panic: inside a future");
            })
        });
        match h.get() {
            Err(JoinError::Panicked(p)) => {
                assert_eq!(p.message(), Some("expected panic: inside a future"))
            }
            other => panic!("expected the future's panic, got {other:?}"),
        }
        ticker.wait_ticks(2);
        assert_eq!(greenlet::spawn(|| 5).get().unwrap(), 5);
    });
}

/// A future that can never be woken: `block_on_timeout` times out; in main with no waker
/// clone alive and nothing else to run, the wait is a `LoopExit`, not a hang, also when a
/// thread held the waker and dropped it without waking.
#[test]
fn a_future_nothing_can_wake() {
    on_fresh_thread(|| {
        let e =
            block_on_timeout(std::future::pending::<()>(), Duration::from_millis(10)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // Huge timeouts are no deadline; the hub finds nothing can wake the future.
        let e = block_on_timeout(std::future::pending::<()>(), Duration::MAX).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Other);
        assert!(e.to_string().contains("would block forever"), "{e}");
        let mut handed = false;
        let e = block_on_timeout(
            std::future::poll_fn(|cx| {
                if !handed {
                    handed = true;
                    let w = cx.waker().clone();
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(10));
                        drop(w);
                    });
                }
                Poll::<()>::Pending
            }),
            Duration::MAX,
        )
        .unwrap_err();
        assert!(e.to_string().contains("would block forever"), "{e}");
        let panic =
            std::panic::catch_unwind(|| block_on(std::future::pending::<()>())).unwrap_err();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("greenlet::block_on") && msg.contains("forever"),
            "{msg}"
        );
    });
}

/// A `Timeout` of the greenlet: `block_on_timeout` reports `TimedOut`, `block_on` panics in
/// its greenlet saying so.
#[test]
fn a_greenlet_timeout_under_block_on() {
    on_fresh_thread(|| {
        let flag = Flag::default();
        let keep = flag.clone();
        let t = greenlet::Timeout::start(Some(Duration::from_millis(10)));
        let e = block_on_timeout(flag.wait(), Duration::from_secs(3600)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        drop(t);
        let h = greenlet::spawn(move || {
            let _t = greenlet::Timeout::start(Some(Duration::from_millis(10)));
            block_on(keep.wait())
        });
        match h.get() {
            Err(JoinError::Panicked(p)) => {
                assert!(p.message().unwrap().contains("Timeout"), "{p}")
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    });
}

/// A soft kill (`kill_timeout`): `block_on_timeout` fails with `Killed` (and the greenlet may
/// clean up and return); `block_on`, which has no error to return, unwinds as a kill does.
#[test]
fn a_soft_kill_under_block_on() {
    on_fresh_thread(|| {
        let h = greenlet::spawn(|| {
            let e = block_on_timeout(std::future::pending::<()>(), Duration::from_secs(3600))
                .unwrap_err();
            assert!(
                e.get_ref().is_some_and(|e| e.is::<greenlet::Killed>()),
                "{e}"
            );
            greenlet::sleep(Duration::from_millis(1)); // cleanup may block
            "cleaned up"
        });
        greenlet::yield_now();
        h.kill_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(h.get().unwrap(), "cleaned up");

        let dropped = std::rc::Rc::new(std::cell::Cell::new(false));
        let d = dropped.clone();
        let h = greenlet::spawn(move || {
            let _guard = util::OnDrop(move || d.set(true));
            block_on(std::future::pending::<()>())
        });
        greenlet::yield_now();
        h.kill_timeout(Duration::from_secs(10)).unwrap();
        assert!(matches!(h.get(), Err(JoinError::Killed)));
        assert!(dropped.get(), "the greenlet unwound");
    });
}

// ---- the other way round: async code awaits a greenlet ----

fn assert_send<T: Send>(_: &T) {}

/// Async code on another OS thread, on its own executor, awaits a greenlet's value; the
/// greenlet's hub runs a ticker meanwhile.
#[test]
fn async_code_on_another_thread_awaits_a_greenlet() {
    on_fresh_thread(|| {
        let ticker = Ticker::start();
        let counter = ticker.counter();
        let h = greenlet::spawn(move || {
            while counter.get() < 5 {
                greenlet::sleep(Duration::from_millis(1));
            }
            String::from("computed by a greenlet")
        });
        let fut = h.clone().into_future();
        assert_send(&fut);
        let dbg = format!("{fut:?}");
        assert!(dbg.contains("JoinFuture"), "{dbg}");
        let waiter = std::thread::spawn(move || run_on_os_thread(fut));
        h.join().unwrap();
        assert_eq!(waiter.join().unwrap().unwrap(), "computed by a greenlet");
        assert!(ticker.ticks() >= 5);
        // The value was taken by the future.
        assert!(matches!(h.get(), Err(JoinError::Taken)));
    });
}

/// The future reports how the greenlet ended: a panic, a kill; and an already finished
/// greenlet's value at once.
#[test]
fn join_future_reports_panics_kills_and_finished_greenlets() {
    on_fresh_thread(|| {
        let p = greenlet::spawn(|| -> u32 { panic!("expected panic: for the future") });
        let fut = p.into_future();
        greenlet::yield_now();
        match run_on_os_thread(fut) {
            Err(JoinError::Panicked(p)) => {
                assert_eq!(p.message(), Some("expected panic: for the future"))
            }
            other => panic!("{other:?}"),
        }
        let k = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
        let fut = k.clone().into_future();
        greenlet::yield_now();
        k.kill().unwrap();
        assert!(matches!(run_on_os_thread(fut), Err(JoinError::Killed)));
        let done = greenlet::spawn(|| 9);
        done.join().unwrap();
        assert_eq!(run_on_os_thread(done.into_future()).unwrap(), 9);
    });
}

/// A greenlet awaited from async code that the greenlet's hub itself runs (`block_on` of an
/// `async` block awaiting two greenlets).
#[test]
fn block_on_awaits_greenlets_of_its_own_hub() {
    on_fresh_thread(|| {
        let a = greenlet::spawn(|| {
            greenlet::sleep(Duration::from_millis(5));
            2
        });
        let b = greenlet::spawn(|| 3);
        let sum = block_on(async move { a.await.unwrap() * b.await.unwrap() });
        assert_eq!(sum, 6);
    });
}

/// A greenlet that can never finish because its thread exits: the future completes with
/// `Killed` instead of hanging the task that awaits it.
#[test]
fn join_future_of_a_greenlet_whose_thread_exits() {
    let fut = on_fresh_thread(|| {
        let h = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
        greenlet::yield_now();
        h.into_future()
    });
    assert!(matches!(run_on_os_thread(fut), Err(JoinError::Killed)));
}
