//! Microbenchmarks of the greenlet core, side by side with raw corosensei in the same run.
//!
//! ```text
//! cargo bench --bench core -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! - `switch/greenlet`: one explicit `switch` between main and a greenlet (a ping-pong of `u64`;
//!   a round trip is two switches, and the figure is per switch).
//! - `switch/greenlet_pair`: one `switch` between two greenlets that are not main (each goes
//!   through the trampoline: two stack switches), per switch.
//! - `switch/corosensei`: one raw corosensei stack switch (`resume` or `suspend` of a `u64`,
//!   `DefaultStack`), per switch: the floor the greenlet switches are compared with.
//! - `generator/send_round_trip`: one `Generator::send` and the `yield_` that answers it.
//! - `create_run_drop`: create a greenlet, run it to completion (it returns at once) and drop
//!   it, with the stack pool warm.

use std::cell::OnceCell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, CoroutineResult};
use criterion::{Criterion, criterion_group, criterion_main};
use greenlet::{Generator, Greenlet, Yielder};

/// `iters` round trips between main and a greenlet, timed; returns the time per switch.
fn greenlet_main_ping_pong(iters: u64) -> Duration {
    let main = greenlet::main();
    let echo = Greenlet::new(move |mut x: u64| {
        loop {
            x = main.switch(x + 1).unwrap();
        }
    });
    let mut x: u64 = echo.switch(0u64).unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        x = echo.switch(black_box(x)).unwrap();
    }
    let elapsed = start.elapsed();
    black_box(x);
    elapsed / 2
}

/// `iters` round trips between two greenlets (neither is main), timed; time per switch.
fn greenlet_pair_ping_pong(iters: u64) -> Duration {
    let pong_slot: Rc<OnceCell<Greenlet>> = Rc::default();
    let ping_slot: Rc<OnceCell<Greenlet>> = Rc::default();
    let ping_of_pong = ping_slot.clone();
    let pong = Greenlet::new(move |mut x: u64| {
        let ping = ping_of_pong.get().unwrap().clone();
        loop {
            x = ping.switch(x + 1).unwrap();
        }
    });
    let pong_of_ping = pong_slot.clone();
    let ping = Greenlet::new(move |n: u64| {
        let pong = pong_of_ping.get().unwrap().clone();
        // Start pong, so that every timed switch resumes a suspended greenlet.
        let mut x: u64 = pong.switch(0u64).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            x = pong.switch(black_box(x)).unwrap();
        }
        let elapsed = start.elapsed();
        black_box(x);
        elapsed
    });
    pong_slot.set(pong).unwrap();
    ping_slot.set(ping.clone()).unwrap();
    let elapsed: Duration = ping.switch(iters).unwrap();
    elapsed / 2
}

/// `iters` resume/suspend round trips of a raw corosensei coroutine, timed; time per switch.
fn corosensei_ping_pong(iters: u64) -> Duration {
    let mut echo: Coroutine<u64, u64, ()> = Coroutine::new(|y, mut x: u64| {
        loop {
            x = y.suspend(x + 1);
        }
    });
    let mut x = 0;
    let start = Instant::now();
    for _ in 0..iters {
        x = match echo.resume(black_box(x)) {
            CoroutineResult::Yield(v) => v,
            CoroutineResult::Return(()) => unreachable!("the echo coroutine never returns"),
        };
    }
    let elapsed = start.elapsed();
    black_box(x);
    elapsed / 2
}

fn switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("switch");
    group.bench_function("greenlet", |b| b.iter_custom(greenlet_main_ping_pong));
    group.bench_function("greenlet_pair", |b| b.iter_custom(greenlet_pair_ping_pong));
    group.bench_function("corosensei", |b| b.iter_custom(corosensei_ping_pong));
    group.finish();
}

fn generator(c: &mut Criterion) {
    c.bench_function("generator/send_round_trip", |b| {
        let mut echo = Generator::new(|co: &Yielder<u64, u64>, mut x: u64| {
            loop {
                x = co.yield_(x + 1);
            }
        });
        let mut x = 0;
        b.iter(|| {
            x = match echo.send(black_box(x)) {
                greenlet::GeneratorState::Yielded(v) => v,
                greenlet::GeneratorState::Complete(()) => unreachable!("the echo never returns"),
            };
        });
    });
}

fn create_run_drop(c: &mut Criterion) {
    // Warm the stack pool, so that the figure is the steady state.
    for i in 0..1000u64 {
        let _: u64 = Greenlet::new(|x: u64| x + 1).switch(i).unwrap();
    }
    c.bench_function("create_run_drop", |b| {
        let mut i = 0u64;
        b.iter(|| {
            let g = Greenlet::new(|x: u64| x + 1);
            i = g.switch(black_box(i)).unwrap();
        });
    });
}

criterion_group!(benches, switch, generator, create_run_drop);
criterion_main!(benches);
