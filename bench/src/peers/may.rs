//! may: stackful coroutines with a work-stealing scheduler, here pinned to one worker thread so
//! that it compares with a single-threaded hub.
//!
//! may's `spawn` is `unsafe` (a coroutine that touches a thread-local or overflows its small
//! stack is undefined behaviour); every closure spawned here touches no thread-local, keeps its
//! buffers on the heap and recurses nowhere, which is what makes each call sound.

use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use may::coroutine::{self, Builder, JoinHandle};

use super::{Alive, AliveProbe};
use crate::proto::ConnBuf;

/// One worker thread; must run before may's scheduler first starts.
pub fn configure() {
    configure_workers(1);
}

/// `n` worker threads (the two-core workloads); must run before may's scheduler first starts.
pub fn configure_workers(n: usize) {
    may::config().set_workers(n);
}

/// Spawns a coroutine, reporting an allocation failure instead of panicking.
fn go<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<JoinHandle<T>> {
    // SAFETY: callers pass closures that use no thread-local storage and little stack (see the
    // module docs), the two conditions of may's `Builder::spawn`.
    unsafe { Builder::new().spawn(f) }
}

/// Two coroutines on one worker, each calling `yield_now` `n` times: ns per switch.
pub fn yield_now(n: u64) -> f64 {
    two_yielders(n, coroutine::yield_now)
}

/// A yield made inside a function: not inlined into the coroutine's loop.
#[inline(never)]
fn yield_in_a_call() {
    coroutine::yield_now();
}

/// [`yield_now`] with each yield inside a called function: ns per yield.
pub fn yield_nested(n: u64) -> f64 {
    two_yielders(n, yield_in_a_call)
}

/// Two coroutines on one worker, each running `step` `n` times: ns per step.
fn two_yielders(n: u64, step: impl Fn() + Copy + Send + 'static) -> f64 {
    let start = Instant::now();
    let both: Vec<_> = (0..2)
        .map(|_| {
            go(move || {
                for _ in 0..n {
                    step();
                }
            })
            .expect("spawn")
        })
        .collect();
    for h in both {
        h.join().expect("yielder panicked");
    }
    start.elapsed().as_nanos() as f64 / (2 * n) as f64
}

/// Spawns `n` coroutines that each yield once, joins them all: µs per coroutine.
pub fn spawn(n: u64) -> f64 {
    let start = Instant::now();
    let all: Vec<_> = (0..n)
        .map(|i| {
            go(move || {
                coroutine::yield_now();
                i
            })
            .expect("spawn")
        })
        .collect();
    let sum: u64 = all.into_iter().map(|h| h.join().expect("joined")).sum();
    let dt = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    dt.as_secs_f64() * 1e6 / n as f64
}

/// [`spawn`] twice in this process: µs per coroutine of the second round.
pub fn spawn_warm(n: u64) -> f64 {
    spawn(n);
    spawn(n)
}

/// Ping-pong between two coroutines over may's mpsc channels: ns per message.
pub fn channel(n: u64) -> f64 {
    let (to_echo, echo_rx) = may::sync::mpsc::channel::<u64>();
    let (to_main, main_rx) = may::sync::mpsc::channel::<u64>();
    let echo = go(move || {
        while let Ok(v) = echo_rx.recv() {
            if to_main.send(v + 1).is_err() {
                break;
            }
        }
    })
    .expect("spawn");
    let ping = go(move || {
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..n {
            to_echo.send(v).expect("echo alive");
            v = main_rx.recv().expect("echo alive");
        }
        let dt = start.elapsed();
        assert_eq!(v, n);
        dt
    })
    .expect("spawn");
    let dt = ping.join().expect("ping panicked");
    echo.join().expect("echo panicked");
    dt.as_nanos() as f64 / (2 * n) as f64
}

/// `n` coroutines, each parked on a shared channel until the end; stops at the first coroutine
/// may cannot create.
pub fn alive(n: u64) -> Result<Alive, String> {
    // Start the scheduler before the baseline is taken.
    go(|| ()).map_err(|e| e.to_string())?.join().ok();
    let probe = AliveProbe::start(n);
    let started = Arc::new(AtomicU64::new(0));
    let (gate_tx, gate_rx) = may::sync::mpmc::channel::<()>();
    let mut all = Vec::with_capacity(n as usize);
    for i in 0..n {
        let (started, gate) = (started.clone(), gate_rx.clone());
        // may panics when it cannot map a stack: catch it to report exactly how far it got.
        let spawned = std::panic::catch_unwind(AssertUnwindSafe(|| {
            go(move || {
                started.fetch_add(1, Ordering::Relaxed);
                let _ = gate.recv();
            })
        }));
        let h = match spawned {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return Err(probe.failed(i, &format!("spawn: {e}"))),
            Err(panic) => return Err(probe.failed(i, &panic_message(&*panic))),
        };
        all.push(h);
        probe.tick(i + 1);
    }
    while started.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let figures = probe.finish();
    std::mem::forget((all, gate_tx, gate_rx));
    Ok(figures)
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let msg = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    format!("spawn panicked: {msg}")
}

/// A coroutine per connection on one worker; answers with `parse` until the process is killed.
pub fn serve(port: u16, parse: fn(&[u8], &mut Vec<u8>) -> usize) -> Result<(), String> {
    let listener =
        may::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("bind: {e}"))?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        go(move || {
            let mut conn = ConnBuf::new();
            loop {
                let n = match stream.read(conn.spare()) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                conn.filled(n, parse);
                if !conn.out.is_empty() {
                    if stream.write_all(&conn.out).is_err() {
                        return;
                    }
                    conn.out.clear();
                }
            }
        })
        .map_err(|e| format!("spawn: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::proto::{self, testing};

    #[test]
    fn micro_workloads_give_times() {
        super::configure();
        for f in [
            super::yield_now,
            super::yield_nested,
            super::spawn,
            super::spawn_warm,
            super::channel,
        ] {
            let v = f(100);
            assert!(v.is_finite() && v > 0.0);
        }
    }

    #[test]
    fn serves_http_and_resp() {
        super::configure();
        testing::check_http(testing::start(|port| super::serve(port, proto::http)));
        testing::check_resp(testing::start(|port| super::serve(port, proto::resp)));
    }
}
