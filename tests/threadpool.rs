//! The thread pool: `spawn_blocking` runs a function on an OS thread while the hub keeps
//! running greenlets, and wakes the caller through the hub's `mio::Waker` (a cross-thread
//! wake). In the spirit of gevent's `test__threadpool.py`.

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use greenlet::threadpool::{self, BlockingError};
use greenlet::{HubBuilder, HubHandle, JoinError};
use util::on_fresh_thread;

/// The pool size every test of this binary uses (the pool is process-wide).
const POOL_SIZE: usize = 4;

fn setup() {
    HubBuilder::new().threadpool_size(POOL_SIZE).init();
}

/// Ports gevent's `test__threadpool.py::PoolBasicTests::test_apply` and the `test_apply` of
/// `TestPool`, `TestPool2`, `TestPool3` and `TestPool10`: the function runs on another OS
/// thread and its value comes back.
#[test]
fn result_comes_back_from_another_thread() {
    setup();
    let here = std::thread::current().id();
    let (value, there) =
        threadpool::spawn_blocking(|| (6 * 7, std::thread::current().id())).unwrap();
    assert_eq!(value, 42);
    assert_ne!(here, there);
    assert_eq!(threadpool::max_threads(), POOL_SIZE);
}

/// Ports gevent's `test__threadpool.py::PoolBasicTests::test_apply_raises`: a panic in the
/// function comes back as `BlockingError::Panicked` and the pool goes on.
#[test]
fn panic_comes_back_as_an_error() {
    setup();
    match threadpool::spawn_blocking(|| -> u32 { panic!("expected panic: in the pool") }) {
        Err(BlockingError::Panicked(p)) => {
            assert_eq!(p.message(), Some("expected panic: in the pool"));
            let e = BlockingError::Panicked(p);
            assert!(e.to_string().contains("expected panic: in the pool"), "{e}");
        }
        other => panic!("expected the panic, got {other:?}"),
    }
    assert_eq!(threadpool::spawn_blocking(|| 1).unwrap(), 1);
}

/// While one greenlet waits for its blocking function, the others run: here the function can
/// only finish once another greenlet has run.
#[test]
fn other_greenlets_run_while_one_waits() {
    setup();
    on_fresh_thread(|| {
        let (tx, rx) = mpsc::channel::<u32>();
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        let ticker = greenlet::spawn(move || {
            for _ in 0..5 {
                greenlet::sleep(Duration::from_millis(1));
                t.set(t.get() + 1);
            }
            tx.send(t.get()).unwrap();
        });
        let waiter = greenlet::spawn(move || {
            threadpool::spawn_blocking(move || rx.recv().unwrap()).unwrap()
        });
        assert_eq!(waiter.get().unwrap(), 5);
        ticker.join().unwrap();
        assert_eq!(ticks.get(), 5);
    });
}

/// The main greenlet waiting on a greenlet that waits on the pool is not a `LoopExit`: the
/// outstanding job can still wake the hub from its thread.
#[test]
fn no_loop_exit_while_a_job_is_outstanding() {
    setup();
    on_fresh_thread(|| {
        let h = greenlet::spawn(|| {
            threadpool::spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(30));
                "done"
            })
        });
        assert_eq!(h.get().unwrap().unwrap(), "done");
        // Main itself may call it too.
        assert_eq!(threadpool::spawn_blocking(|| 5).unwrap(), 5);
    });
}

/// The pool never runs more functions at once than its size.
#[test]
fn pool_size_bound_is_respected() {
    setup();
    on_fresh_thread(|| {
        let running = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..4 * POOL_SIZE)
            .map(|_| {
                let (running, max_seen) = (running.clone(), max_seen.clone());
                greenlet::spawn(move || {
                    threadpool::spawn_blocking(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .unwrap()
                })
            })
            .collect();
        greenlet::joinall(&hs, None, None).unwrap();
        let max = max_seen.load(Ordering::SeqCst);
        assert!(
            (1..=POOL_SIZE).contains(&max),
            "{max} functions ran at once with a pool of {POOL_SIZE}"
        );
    });
}

/// Several hubs (threads) share the pool, each woken on its own thread.
#[test]
fn many_hubs_share_the_pool() {
    setup();
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..5u64)
                    .map(|i| {
                        greenlet::spawn(move || {
                            threadpool::spawn_blocking(move || t * 10 + i).unwrap()
                        })
                    })
                    .collect();
                hs.iter().map(|h| h.get().unwrap()).sum::<u64>()
            })
        })
        .collect();
    let sums: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, [10, 60, 110]);
}

/// Ports gevent's `test__threadpool.py::TestPool::test_async_timeout` and the same case of
/// `TestPool2`, `TestPool3` and `TestPool10` (a `get` with a timeout on a job that takes
/// longer gives up; the job runs on). Also a regression: under a `Timeout` that ran out,
/// `spawn_blocking` spun through the hub (every park timed out at once) until the function
/// returned, and returned its value late. It now gives up with `TimedOut`, as gevent's
/// `threadpool.apply` raises `Timeout`; the function keeps running. Here the function can only
/// return after the call gave up.
#[test]
fn timeout_ends_the_wait() {
    setup();
    on_fresh_thread(|| {
        let (tx, rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let r = greenlet::with_timeout(Duration::from_millis(10), || {
            threadpool::spawn_blocking(move || {
                rx.recv().unwrap();
                done_tx.send(()).unwrap();
            })
        });
        match r {
            Err(_elapsed) => {}
            Ok(inner) => panic!("expected the timeout to fire, got {inner:?}"),
        }
        // A zero timeout gives up at the first wait, with the error of spawn_blocking itself.
        let (tx2, rx2) = mpsc::channel::<()>();
        let t = greenlet::Timeout::start(Some(Duration::ZERO));
        assert!(matches!(
            threadpool::spawn_blocking(move || rx2.recv()),
            Err(BlockingError::TimedOut)
        ));
        drop(t);
        // The abandoned functions are still running; release them.
        tx.send(()).unwrap();
        tx2.send(()).unwrap();
        done_rx.recv().unwrap();
    });
}

/// Killing a greenlet that waits on the pool ends it; the function finishes on its own and
/// the hub is fine afterwards.
#[test]
fn kill_a_greenlet_waiting_on_the_pool() {
    setup();
    on_fresh_thread(|| {
        let (tx, rx) = mpsc::channel::<()>();
        let finished = Arc::new(AtomicUsize::new(0));
        let f = finished.clone();
        let h = greenlet::spawn(move || {
            threadpool::spawn_blocking(move || {
                rx.recv().unwrap();
                f.fetch_add(1, Ordering::SeqCst);
            })
        });
        greenlet::yield_now();
        h.kill().unwrap();
        assert!(matches!(h.get(), Err(JoinError::Killed)));
        tx.send(()).unwrap();
        // The hub still works, and a later job completes.
        assert_eq!(threadpool::spawn_blocking(|| 9).unwrap(), 9);
    });
}

/// A stop request from another thread ends the main greenlet's `spawn_blocking` wait like any
/// other blocking call (`Interrupted` with a stopped `LoopExit`); the function itself still
/// runs to the end on its pool thread.
#[test]
fn stop_interrupts_a_blocking_wait_and_the_job_still_finishes() {
    setup();
    on_fresh_thread(|| {
        let hub = HubHandle::current().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let r = threadpool::spawn_blocking(move || {
            hub.stop();
            std::thread::sleep(Duration::from_millis(10));
            done_tx.send("kept").unwrap();
            "kept"
        });
        match r {
            Err(threadpool::BlockingError::Interrupted(e)) => assert!(e.is_stopped(), "{e}"),
            other => panic!("expected an interrupted wait, got {other:?}"),
        }
        assert_eq!(
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            "kept"
        );
    });
}

/// Regression: with one idle pool thread, two functions submitted together that wait for
/// each other (a rendezvous) must run at once. The pool used to wake the idle thread for the
/// first and start no thread for the second, so both waited forever. Runs in a fresh process,
/// where the pool state is known: exactly one idle thread after the first job.
#[test]
fn rendezvous_jobs_run_concurrently() {
    let run = util::run_test_in_child_with("rendezvous_child", &[]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("rendezvous ok"), "{}", run.stdout);
}

/// The body of [`rendezvous_jobs_run_concurrently`], run only in its child process.
#[test]
fn rendezvous_child() {
    if !util::in_child() {
        return;
    }
    setup();
    // One job, so that the pool has exactly one thread, idle once it is done.
    threadpool::spawn_blocking(|| ()).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // let it go idle
    let barrier = Arc::new(Barrier::new(2));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            greenlet::spawn(move || {
                threadpool::spawn_blocking(move || b.wait().is_leader()).unwrap()
            })
        })
        .collect();
    let leaders = hs.iter().filter(|h| h.get().unwrap()).count();
    assert_eq!(leaders, 1);
    println!("rendezvous ok");
}

/// Regression (issue 8, defect 10): name lookups used to share the thread pool with
/// `spawn_blocking`, so slow lookups (an unreachable DNS server makes each one wait for
/// seconds) held every pool thread, and unrelated blocking work waited behind them. A
/// resolver that blocks until released stands in for the slow DNS server, deterministically:
/// with twelve lookups stuck, no more than `max_lookup_threads()` of them are running, and
/// `spawn_blocking` work still runs.
#[test]
fn slow_name_lookups_never_stall_spawn_blocking() {
    use greenlet::net::ToSocketAddrs;
    use std::sync::{Condvar, Mutex};
    static STUCK: AtomicUsize = AtomicUsize::new(0);
    static RELEASE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
    setup();
    greenlet::net::set_resolver(|host, port| {
        if !host.ends_with(".slow.test") {
            return greenlet::net::system_resolver(host, port);
        }
        STUCK.fetch_add(1, Ordering::SeqCst);
        let (released, wake) = &RELEASE;
        let mut r = released.lock().unwrap();
        while !*r {
            r = wake.wait(r).unwrap();
        }
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    });
    let bound = threadpool::max_lookup_threads();
    let result = on_fresh_thread(move || {
        let lookups: Vec<_> = (0..12)
            .map(|i| {
                greenlet::spawn(move || {
                    (format!("host{i}.slow.test").as_str(), 80)
                        .to_socket_addrs()
                        .map(Iterator::count)
                })
            })
            .collect();
        while STUCK.load(Ordering::SeqCst) < bound {
            greenlet::sleep(Duration::from_millis(1));
        }
        // Every lookup thread is stuck: blocking work runs all the same (the bound only turns
        // a stall into a failure).
        let work = greenlet::with_timeout(util::NOT_HANGING / 4, || {
            threadpool::spawn_blocking(|| 6 * 7)
        });
        let stuck_meanwhile = STUCK.load(Ordering::SeqCst);
        let (released, wake) = &RELEASE;
        *released.lock().unwrap() = true;
        wake.notify_all();
        let resolved: Vec<usize> = lookups.iter().map(|h| h.get().unwrap().unwrap()).collect();
        (work.map(Result::unwrap), stuck_meanwhile, resolved)
    });
    greenlet::net::reset_resolver();
    let (work, stuck_meanwhile, resolved) = result;
    assert_eq!(
        work,
        Ok(42),
        "spawn_blocking waited behind the stuck lookups"
    );
    assert_eq!(
        stuck_meanwhile, bound,
        "lookups beyond the bound ran at once"
    );
    assert_eq!(resolved, [1; 12]);
}

/// Regression: a job that finished just as the hub looked for anything that could still wake
/// it (its waker already gone, its wake-up still in the hub's inbox) made the waiting call fail
/// with a false `LoopExit`. Many quick jobs give the race many chances.
#[test]
fn no_false_loop_exit_when_a_job_finishes_as_the_hub_runs_dry() {
    setup();
    on_fresh_thread(|| {
        for i in 0..5_000u32 {
            assert_eq!(threadpool::spawn_blocking(move || i).unwrap(), i);
        }
    });
}

/// Ports gevent's `test__threadpool.py::PoolBasicTests::test_execute_async`: jobs handed to the
/// pool from greenlets run while the submitting code goes on, and all of them are done once
/// their greenlets are.
#[test]
fn jobs_from_several_greenlets_all_run() {
    setup();
    let done = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (1..=4)
        .map(|i| {
            let done = done.clone();
            greenlet::spawn(move || {
                threadpool::spawn_blocking(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                    i
                })
                .unwrap()
            })
        })
        .collect();
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "nothing ran before main yielded"
    );
    let mut got: Vec<i32> = hs.iter().map(|h| h.get().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2, 3, 4]);
    assert_eq!(done.load(Ordering::SeqCst), 4);
}

/// Ports gevent's `test__threadpool.py::_AbstractPoolTest::test_map`, the `test_map` of
/// `TestPool`, `TestPool2`, `TestPool3`, `TestPool10` and `TestTPE`: mapping blocking work over
/// items (here `pool::Group::map` with `spawn_blocking` in each greenlet: the thread pool has
/// no map of its own) gives the results in item order.
#[test]
fn mapping_blocking_work_keeps_item_order() {
    setup();
    let group = greenlet::pool::Group::new();
    for n in [10u64, 100] {
        let got = group
            .map(0..n, |x| threadpool::spawn_blocking(move || x * x).unwrap())
            .unwrap();
        assert_eq!(got, (0..n).map(|x| x * x).collect::<Vec<_>>());
    }
}

/// Ports gevent's `test__threadpool.py::TestPool2::test_recursive_apply`: a job that hands
/// another job to the pool and waits for it (on its pool thread, which gets a hub of its own
/// for that; the inner job sleeps the green way there too) gets its value.
#[test]
fn a_job_may_wait_for_another_job() {
    setup();
    let got = threadpool::spawn_blocking(|| {
        threadpool::spawn_blocking(|| {
            greenlet::yield_now();
            greenlet::sleep(Duration::from_millis(1));
            "B"
        })
        .unwrap()
    })
    .unwrap();
    assert_eq!(got, "B");
}

/// Ports gevent's `test__threadpool.py::TestRef::test`: once a job is done, nothing of it is
/// kept: its function (and what it captured) is dropped, and only the value it returned lives
/// on, with the caller.
#[test]
fn a_finished_job_keeps_nothing_alive() {
    setup();
    let arg = Arc::new("arg");
    let captured = arg.clone();
    let result = threadpool::spawn_blocking(move || Arc::new(captured.len())).unwrap();
    assert_eq!(
        Arc::strong_count(&arg),
        1,
        "the function and its captures are dropped"
    );
    assert_eq!(
        Arc::strong_count(&result),
        1,
        "the value is the caller's alone"
    );
}
