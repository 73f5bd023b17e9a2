//! The hub's costs, per operation (issue 3's targets, as figures to compare within one run):
//!
//! - `hub/yield`: two greenlets handing control back and forth with `yield_now`, per switch
//!   (target ≤ 15 ns; may 51 ns, Go 37 ns on the reference machine).
//! - `hub/yield_2000`: the same among 2,000 greenlets, each touching 512 bytes of its frame
//!   between yields, per switch: each is resumed after 1,999 others, so what its resume
//!   touches is out of the L1 and L2 caches, as for a server's connections at c=2000. The
//!   difference to `hub/yield` is the cost of those misses (and what the hub's prefetch of
//!   the next greenlets' lines hides of it).
//! - `hub/spawn_join_100k`: spawn 100,000 greenlets that each yield once, then join them all;
//!   per greenlet (target ≤ 0.4 µs; tokio current_thread 0.76 µs, may 1.55, Go 1.62).
//! - `hub/spawn_idle_64` and `hub/spawn_raw_idle_64`: spawn 64 greenlets that each yield
//!   once (dropping the handle, or with `spawn_raw`, gevent's handle-less form), then `idle()`
//!   until they are done; per greenlet, with warm stacks. The difference is the `JoinHandle`'s
//!   bookkeeping.
//! - `hub/sleep_100k_distinct`: 100,000 greenlets sleeping at once until distinct deadlines;
//!   per sleeper (timer insert + fire + the greenlet's spawn and join).
//! - `hub/channel_pingpong`: main and a greenlet bouncing a number through two rendezvous
//!   channels (`sync_channel(0)`, Go's unbuffered `chan`), per switch (target ≤ 30 ns; Go's
//!   unbuffered channel 103 ns on the reference machine).
//! - `floor/corosensei_resume_suspend`: the floor, one raw corosensei resume + suspend.
//!
//! Run: `cargo bench --bench hub -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

/// Greenlets per round of the 100k benchmarks.
const BATCH: u64 = 100_000;

/// Runs `round(BATCH)` as many times as needed to cover `iters` operations (at least once, so
/// that every sample has the full 100,000 greenlets alive at once), and scales the time to
/// `iters` operations.
fn in_batches(iters: u64, mut round: impl FnMut(u64) -> Duration) -> Duration {
    let rounds = iters.div_ceil(BATCH).max(1);
    let total: Duration = (0..rounds).map(|_| round(BATCH)).sum();
    total.mul_f64(iters as f64 / (rounds * BATCH) as f64)
}

fn yield_pingpong(c: &mut Criterion) {
    c.bench_function("hub/yield", |b| {
        b.iter_custom(|iters| {
            // Two greenlets, each yielding `per` times: 2 * per switches.
            let per = (iters / 2).max(1);
            let start = Instant::now();
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    greenlet::spawn(move || {
                        for _ in 0..per {
                            greenlet::yield_now();
                        }
                    })
                })
                .collect();
            greenlet::joinall(&hs, None, None).unwrap();
            start.elapsed().mul_f64(iters as f64 / (2 * per) as f64)
        })
    });
}

fn yield_among_many(c: &mut Criterion) {
    const GREENLETS: u64 = 2_000;
    c.bench_function("hub/yield_2000", |b| {
        b.iter_custom(|iters| {
            let per = (iters / GREENLETS).max(1);
            let start = Instant::now();
            let hs: Vec<_> = (0..GREENLETS)
                .map(|_| {
                    greenlet::spawn(move || {
                        let mut frame = [0u8; 512];
                        for round in 0..per {
                            // A handler's locals: one write per line.
                            for line in frame.iter_mut().step_by(64) {
                                *line = line.wrapping_add(round as u8);
                            }
                            black_box(&mut frame);
                            greenlet::yield_now();
                        }
                    })
                })
                .collect();
            greenlet::joinall(&hs, None, None).unwrap();
            start
                .elapsed()
                .mul_f64(iters as f64 / (GREENLETS * per) as f64)
        })
    });
}

fn channel_pingpong(c: &mut Criterion) {
    c.bench_function("hub/channel_pingpong", |b| {
        b.iter_custom(|iters| {
            // One round trip is two switches: main -> echo -> main.
            let rounds = (iters / 2).max(1);
            let (to_echo, echo_rx) = greenlet::sync::sync_channel::<u64>(0);
            let (echo_tx, from_echo) = greenlet::sync::sync_channel::<u64>(0);
            let echo = greenlet::spawn(move || {
                while let Ok(v) = echo_rx.recv() {
                    echo_tx.send(v + 1).unwrap();
                }
            });
            let start = Instant::now();
            let mut v = 0;
            for _ in 0..rounds {
                to_echo.send(v).unwrap();
                v = from_echo.recv().unwrap();
            }
            let elapsed = start.elapsed();
            assert_eq!(black_box(v), rounds);
            drop(to_echo);
            echo.join().unwrap();
            elapsed.mul_f64(iters as f64 / (2 * rounds) as f64)
        })
    });
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    group.sample_size(20);
    group.bench_function("spawn_join_100k", |b| {
        b.iter_custom(|iters| {
            in_batches(iters, |n| {
                let start = Instant::now();
                let hs: Vec<_> = (0..n)
                    .map(|i| {
                        greenlet::spawn(move || {
                            greenlet::yield_now();
                            i
                        })
                    })
                    .collect();
                let sum: u64 = hs.iter().map(|h| h.get().unwrap()).sum();
                let elapsed = start.elapsed();
                assert_eq!(black_box(sum), n * (n - 1) / 2);
                elapsed
            })
        })
    });
    for (name, raw) in [("spawn_idle_64", false), ("spawn_raw_idle_64", true)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let rounds = iters.div_ceil(64).max(1);
                let start = Instant::now();
                for _ in 0..rounds {
                    for _ in 0..64 {
                        if raw {
                            greenlet::spawn_raw(greenlet::yield_now);
                        } else {
                            drop(greenlet::spawn(greenlet::yield_now));
                        }
                    }
                    greenlet::idle().unwrap();
                }
                start.elapsed().mul_f64(iters as f64 / (rounds * 64) as f64)
            })
        });
    }
    group.bench_function("sleep_100k_distinct", |b| {
        b.iter_custom(|iters| {
            in_batches(iters, |n| {
                let start = Instant::now();
                // Distinct deadlines 10 ns apart, from 1 ms ahead: every sleeper has its own
                // timer, inserted in spawn order and fired in deadline order.
                let base = start + Duration::from_millis(1);
                let hs: Vec<_> = (0..n)
                    .map(|i| {
                        greenlet::spawn(move || {
                            greenlet::sleep_until(base + Duration::from_nanos(10 * i))
                        })
                    })
                    .collect();
                greenlet::joinall(&hs, None, None).unwrap();
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn floor(c: &mut Criterion) {
    use corosensei::{Coroutine, CoroutineResult};
    c.bench_function("floor/corosensei_resume_suspend", |b| {
        let mut co = Coroutine::new(|y, mut x: u64| {
            loop {
                x = y.suspend(x + 1);
            }
        });
        b.iter(|| match co.resume(black_box(1)) {
            CoroutineResult::Yield(v) => v,
            CoroutineResult::Return(()) => unreachable!(),
        })
    });
}

criterion_group!(
    benches,
    floor,
    yield_pingpong,
    yield_among_many,
    channel_pingpong,
    spawn_join
);
criterion_main!(benches);
