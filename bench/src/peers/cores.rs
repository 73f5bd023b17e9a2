//! The two-core workloads: a ping-pong between two threads, and spawn + join onto two worker
//! threads, for every runtime that has them. This crate's side runs on a two-hub
//! `greenlet::Runtime`; tokio on a two-worker multi-thread runtime; may with two workers; std's
//! and crossbeam's channels between two OS threads.
//!
//! On a two-core machine the ping-pong measures the hand-over between two threads (a wake-up
//! of the other side, and for a parked receiver its sleep and wake in the kernel), not a
//! speed-up: each message waits for the previous one.

use std::time::{Duration, Instant};

/// Pings `n` numbers to an echo on the other hub and back, over two `greenlet::sync::mpsc`
/// channels: ns per message (one way).
pub fn greenlet_xchannel(n: u64) -> f64 {
    let rt = greenlet::Runtime::new(2).expect("runtime");
    let (to_echo, echo_rx) = greenlet::sync::mpsc::channel::<u64>();
    let (to_main, main_rx) = greenlet::sync::mpsc::channel::<u64>();
    let echo = rt
        .spawn_on(1, move || {
            for v in echo_rx.iter() {
                if to_main.send(v + 1).is_err() {
                    break;
                }
            }
        })
        .expect("hub 1");
    let ping = rt
        .spawn_on(0, move || {
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
        .expect("hub 0");
    let dt = ping.join().expect("ping");
    echo.join().expect("echo");
    per_message(dt, n)
}

/// Ping-pong between the calling thread and an echo thread over two channels made by
/// `$channel` (std's and crossbeam's have the same shape): ns per message.
macro_rules! thread_ping_pong {
    ($channel:path, $n:expr) => {{
        let n: u64 = $n;
        let (to_echo, echo_rx) = $channel();
        let (to_main, main_rx) = $channel();
        let echo = std::thread::spawn(move || {
            for v in echo_rx.iter() {
                if to_main.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let start = Instant::now();
        let mut v: u64 = 0;
        for _ in 0..n {
            to_echo.send(v).expect("echo alive");
            v = main_rx.recv().expect("echo alive");
        }
        let dt = start.elapsed();
        assert_eq!(v, n);
        drop(to_echo);
        echo.join().expect("echo");
        per_message(dt, n)
    }};
}

/// The same between two OS threads over `std::sync::mpsc`.
pub fn std_xchannel(n: u64) -> f64 {
    thread_ping_pong!(std::sync::mpsc::channel, n)
}

/// The same between two OS threads over crossbeam's unbounded channels.
pub fn crossbeam_xchannel(n: u64) -> f64 {
    thread_ping_pong!(crossbeam_channel::unbounded, n)
}

fn tokio_mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio multi-thread runtime")
}

/// Two tasks on a two-worker tokio runtime over unbounded `tokio::sync::mpsc` channels (the
/// scheduler decides where each runs; it may keep both on one worker).
pub fn tokio_xchannel(n: u64) -> f64 {
    tokio_mt().block_on(async move {
        let (to_echo, mut echo_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let (to_main, mut main_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let echo = tokio::spawn(async move {
            while let Some(v) = echo_rx.recv().await {
                if to_main.send(v + 1).is_err() {
                    break;
                }
            }
        });
        let ping = tokio::spawn(async move {
            let start = Instant::now();
            let mut v = 0;
            for _ in 0..n {
                to_echo.send(v).expect("echo alive");
                v = main_rx.recv().await.expect("echo alive");
            }
            assert_eq!(v, n);
            start.elapsed()
        });
        let dt = ping.await.expect("ping");
        echo.await.expect("echo");
        per_message(dt, n)
    })
}

/// Two coroutines of may (two workers) over may's mpsc channels.
pub fn may_xchannel(n: u64) -> f64 {
    super::may::channel(n)
}

/// Spawns `n` greenlets onto a two-hub runtime from the main thread (each yields once), joins
/// them all from the main thread: µs each.
pub fn greenlet_xspawn(n: u64) -> f64 {
    let rt = greenlet::Runtime::new(2).expect("runtime");
    let start = Instant::now();
    let all: Vec<_> = (0..n)
        .map(|i| {
            rt.spawn(move || {
                greenlet::yield_now();
                i
            })
        })
        .collect();
    let sum: u64 = all.into_iter().map(|h| h.join().expect("joined")).sum();
    let dt = start.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    drop(rt);
    dt.as_secs_f64() * 1e6 / n as f64
}

/// The same with tasks on a two-worker tokio runtime.
pub fn tokio_xspawn(n: u64) -> f64 {
    super::tokio::spawn_on(&tokio_mt(), n)
}

/// The same with may coroutines on two workers.
pub fn may_xspawn(n: u64) -> f64 {
    super::may::spawn(n)
}

fn per_message(dt: Duration, n: u64) -> f64 {
    dt.as_nanos() as f64 / (2 * n) as f64
}

/// `bench __placement [reps]`: the two placements of `greenlet::Runtime` (2 hubs) on two
/// workloads, printed one line per repetition: the cost of placing (20,000 trivial
/// spawn + join) and the makespan of uneven work (400 CPU-bound greenlets, one in ten 40 times
/// longer, at most 8 in flight, as a worker pool would feed them).
pub fn placement_main(args: &[String]) -> Result<(), String> {
    use greenlet::runtime::{Builder, Placement};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let reps: u64 = match args.first() {
        Some(r) => r.parse().map_err(|e| format!("reps: {e}"))?,
        None => 3,
    };
    fn work(units: u64) -> u64 {
        let mut x = 0u64;
        for i in 0..units * 20_000 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x)
    }
    for rep in 0..reps {
        for placement in [Placement::RoundRobin, Placement::LeastLoaded] {
            let rt = Builder::new()
                .threads(2)
                .placement(placement)
                .build()
                .map_err(|e| e.to_string())?;
            let t = Instant::now();
            let hs: Vec<_> = (0..20_000u64).map(|i| rt.spawn(move || i)).collect();
            for h in hs {
                h.join().map_err(|e| e.to_string())?;
            }
            let cost = t.elapsed().as_secs_f64() * 1e6 / 20_000.0;
            let mut seed = 12_345 + rep;
            let sizes: Vec<u64> = (0..400)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed % 100 < 10 { 200 } else { 5 }
                })
                .collect();
            let in_flight = Arc::new(AtomicUsize::new(0));
            let t = Instant::now();
            let mut hs = Vec::with_capacity(sizes.len());
            for &units in &sizes {
                while in_flight.load(Ordering::Acquire) >= 8 {
                    std::thread::sleep(Duration::from_micros(50));
                }
                in_flight.fetch_add(1, Ordering::AcqRel);
                let in_flight = in_flight.clone();
                hs.push(rt.spawn(move || {
                    work(units);
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                }));
            }
            for h in hs {
                h.join().map_err(|e| e.to_string())?;
            }
            let makespan = t.elapsed().as_secs_f64() * 1e3;
            println!(
                "rep {rep} {placement:?}: place+join {cost:.2} µs each; uneven work done in {makespan:.0} ms"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cross_thread_workloads_give_times() {
        for f in [
            super::greenlet_xchannel,
            super::std_xchannel,
            super::crossbeam_xchannel,
            super::tokio_xchannel,
            super::greenlet_xspawn,
            super::tokio_xspawn,
        ] {
            let t = f(200);
            assert!(t.is_finite() && t > 0.0);
        }
    }
}
