//! `Runtime`: N hubs on N threads, greenlets placed on them from any thread, `Send` join
//! handles, shutdown. No timed assertions: parallelism is shown by two greenlets that can only
//! both finish if they run at the same instant.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use greenlet::runtime::{Builder, Placement};
use greenlet::{HubHandle, JoinError, Runtime};

mod util;

/// The name of the current thread.
fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// Spins without yielding until `arrived` reaches `n`; gives up after a bounded number of
/// rounds (far more than two running threads need) and returns whether it saw `n`.
fn spin_until(arrived: &AtomicUsize, n: usize) -> bool {
    for _ in 0..20_000_000_000u64 {
        if arrived.load(Ordering::Acquire) >= n {
            return true;
        }
        std::hint::spin_loop();
    }
    false
}

#[test]
fn cpu_bound_greenlets_on_two_hubs_run_in_parallel() {
    let rt = Runtime::new(2).unwrap();
    let arrived = Arc::new(AtomicUsize::new(0));
    // Neither greenlet ever yields: both can see the other arrive only if they run on two
    // threads at the same time.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let arrived = arrived.clone();
            rt.spawn(move || {
                arrived.fetch_add(1, Ordering::AcqRel);
                let met = spin_until(&arrived, 2);
                let work: u64 = (0..2_000_000u64).map(|i| i ^ (i >> 3)).sum();
                (met, thread_name(), work)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.0), "both ran at once: {results:?}");
    assert_ne!(
        results[0].1, results[1].1,
        "the work was split across the threads"
    );
    assert_eq!(results[0].2, results[1].2);
}

#[test]
fn least_loaded_placement_splits_cpu_work_across_hubs() {
    let rt = Runtime::new(2).unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    // Eight busy greenlets placed while none can finish (they wait on `gate`, yielding): the
    // load is 4 and 4.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let gate = gate.clone();
            rt.spawn(move || {
                while !gate.load(Ordering::Acquire) {
                    greenlet::yield_now();
                }
                thread_name()
            })
        })
        .collect();
    gate.store(true, Ordering::Release);
    let names: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let on_first = names.iter().filter(|n| *n == "greenlet-hub-0").count();
    assert_eq!(on_first, 4, "{names:?}");
}

#[test]
fn round_robin_placement_alternates_hubs() {
    let rt = Builder::new()
        .threads(3)
        .placement(Placement::RoundRobin)
        .build()
        .unwrap();
    let names: Vec<String> = (0..6)
        .map(|_| rt.spawn(thread_name))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for hub in 0..3 {
        let n = names
            .iter()
            .filter(|n| **n == format!("greenlet-hub-{hub}"))
            .count();
        assert_eq!(n, 2, "{names:?}");
    }
}

#[test]
fn join_from_a_greenlet_parks_it_and_its_hub_runs_on() {
    let rt = Runtime::new(1).unwrap();
    let h = rt.spawn(|| {
        greenlet::sleep(Duration::from_millis(20));
        7
    });
    // The joiner is a greenlet of this thread's hub: a sibling keeps running while it waits.
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let t = ticks.clone();
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let d = done.clone();
    let ticker = greenlet::spawn(move || {
        while !d.get() {
            t.set(t.get() + 1);
            greenlet::sleep(Duration::from_millis(1));
        }
    });
    let joiner = greenlet::spawn(move || h.join());
    assert_eq!(joiner.get().unwrap().unwrap(), 7);
    done.set(true);
    ticker.join().unwrap();
    assert!(ticks.get() > 1, "the ticker ran while the join waited");
}

#[test]
fn join_from_a_plain_thread_blocks_until_the_value_is_there() {
    let rt = Runtime::new(1).unwrap();
    let h = rt.spawn(|| {
        greenlet::sleep(Duration::from_millis(5));
        "done"
    });
    let joined = std::thread::spawn(move || h.join().unwrap())
        .join()
        .unwrap();
    assert_eq!(joined, "done");
}

#[test]
fn a_panic_in_a_placed_greenlet_reaches_the_joiner() {
    let rt = Runtime::new(1).unwrap();
    let h = rt.spawn(|| -> u32 { panic!("boom on a hub") });
    match h.join() {
        Err(JoinError::Panicked(p)) => assert!(p.to_string().contains("boom on a hub")),
        other => panic!("{other:?}"),
    }
    // The hub survives it.
    assert_eq!(rt.spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn join_timeout_keeps_the_handle_usable() {
    let rt = Runtime::new(1).unwrap();
    let go = Arc::new(AtomicBool::new(false));
    let g = go.clone();
    let h = rt.spawn(move || {
        while !g.load(Ordering::Acquire) {
            greenlet::sleep(Duration::from_millis(1));
        }
        5
    });
    assert!(matches!(
        h.join_timeout(Duration::from_millis(5)),
        Err(JoinError::TimedOut)
    ));
    assert!(!h.is_finished());
    go.store(true, Ordering::Release);
    assert_eq!(h.join_timeout(Duration::from_secs(30)).unwrap(), 5);
    assert!(matches!(h.join(), Err(JoinError::Taken)));
}

#[test]
fn spawn_on_a_stopped_hub_fails_instead_of_hanging() {
    let rt = Runtime::new(2).unwrap();
    rt.hub(1).unwrap().stop();
    // The stop shuts hub 1 down on its own thread: wait until it no longer takes work.
    let mut err = None;
    for _ in 0..10_000 {
        match rt.spawn_on(1, || ()) {
            Err(e) => {
                err = Some(e);
                break;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let err = err.expect("spawn_on a stopped hub fails");
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    assert!(!rt.hub(1).unwrap().is_open());
    // `spawn` places on the hub that is left.
    assert_eq!(rt.spawn(thread_name).join().unwrap(), "greenlet-hub-0");
    assert!(rt.spawn_on(5, || ()).is_err());
}

#[test]
fn hub_handle_spawn_on_a_thread_that_exited_fails() {
    let hub = std::thread::spawn(|| HubHandle::current().unwrap())
        .join()
        .unwrap();
    assert!(!hub.is_open());
    let err = hub.spawn(|| 1).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
}

#[test]
fn hub_handle_spawn_on_this_threads_hub_runs_when_it_blocks() {
    let hub = HubHandle::current().unwrap();
    let h = hub.spawn(thread_name).unwrap();
    // Joining parks the main greenlet, so the hub runs and spawns the greenlet here.
    assert_eq!(h.join().unwrap(), thread_name());
}

/// Sets its flag when dropped: proves that a killed greenlet unwound.
struct Unwound(Arc<AtomicUsize>);

impl Drop for Unwound {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

#[test]
fn dropping_a_runtime_unwinds_its_running_greenlets() {
    let rt = Runtime::new(2).unwrap();
    let unwound = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let guard = Unwound(unwound.clone());
            let started = started.clone();
            rt.spawn(move || {
                let _guard = guard;
                started.fetch_add(1, Ordering::AcqRel);
                greenlet::sleep(Duration::from_secs(3600));
            })
        })
        .collect();
    while started.load(Ordering::Acquire) < 6 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    assert_eq!(unwound.load(Ordering::Acquire), 6);
    for h in handles {
        assert!(matches!(h.join(), Err(JoinError::Killed)));
    }
}

#[test]
fn shutdown_lets_greenlets_finish_within_the_grace_period() {
    let rt = Runtime::new(2).unwrap();
    let h = rt.spawn(|| {
        greenlet::sleep(Duration::from_millis(10));
        "finished"
    });
    rt.shutdown(Duration::from_secs(30));
    assert_eq!(h.join().unwrap(), "finished");
}

#[test]
fn zero_threads_is_an_error() {
    let err = Runtime::new(0).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn greenlets_on_a_hub_keep_their_thread_for_life() {
    let rt = Runtime::new(2).unwrap();
    let hs: Vec<_> = (0..8)
        .map(|_| {
            rt.spawn(|| {
                let before = std::thread::current().id();
                for _ in 0..10 {
                    greenlet::sleep(Duration::from_millis(1));
                    assert_eq!(std::thread::current().id(), before);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn a_stream_server_on_two_hubs_serves_from_both_threads() {
    use std::io::{Read, Write};
    let rt = Runtime::new(2).unwrap();
    let server = greenlet::server::StreamServer::start_on(
        &rt,
        "127.0.0.1:0",
        |mut conn: greenlet::net::TcpStream, _peer| {
            let mut buf = [0u8; 4];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let _ = conn.write_all(thread_name().as_bytes());
                let _ = conn.write_all(b"\n");
            }
        },
    )
    .unwrap();
    // The kernel hashes each connection to one of the two listeners: enough connections reach
    // both hubs (the chance that 64 all land on one is 2^-63).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"x").unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while c.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        seen.insert(String::from_utf8(line).unwrap());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["greenlet-hub-0", "greenlet-hub-1"]
    );
    assert_eq!(server.stop(Duration::from_secs(5)), 0);
    assert!(std::net::TcpStream::connect(server.local_addr()).is_err());
}

#[test]
fn dropping_a_runtime_with_a_server_and_open_connections_ends() {
    use std::io::Read;
    let rt = Runtime::new(2).unwrap();
    let server = greenlet::server::StreamServer::start_on(
        &rt,
        "127.0.0.1:0",
        |mut conn: greenlet::net::TcpStream, _| {
            let _ = conn.read(&mut [0u8; 1]);
        },
    )
    .unwrap();
    let mut clients: Vec<_> = (0..8)
        .map(|_| std::net::TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    drop(rt);
    // The handlers were unwound and their sockets closed.
    for c in &mut clients {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(matches!(c.read(&mut [0u8; 1]), Ok(0) | Err(_)));
    }
    assert_eq!(server.stop(Duration::ZERO), 0);
}

#[test]
fn the_cross_thread_types_are_send_and_sync_as_std_s() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Runtime>();
    sync::<Runtime>();
    send::<greenlet::RemoteJoinHandle<u8>>();
    send::<HubHandle>();
    sync::<HubHandle>();
    send::<greenlet::sync::Mutex<u8>>();
    sync::<greenlet::sync::Mutex<u8>>();
    sync::<greenlet::sync::RwLock<u8>>();
    sync::<greenlet::sync::Condvar>();
    send::<greenlet::sync::mpsc::Sender<u8>>();
    sync::<greenlet::sync::mpsc::Sender<u8>>();
    send::<greenlet::sync::mpsc::SyncSender<u8>>();
    send::<greenlet::sync::mpsc::Receiver<u8>>();
    send::<greenlet::server::RuntimeServer>();
    sync::<greenlet::server::RuntimeServer>();
}
