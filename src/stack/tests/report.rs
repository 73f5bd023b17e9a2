//! The pool's cost report: an ignored test that prints what each operation costs, and what a
//! thread keeps after a burst. Run it with
//! `cargo test --release --lib stack::tests::report::report_costs -- --ignored --nocapture`;
//! `GREENLET_MILLION=1` adds a million-stack burst.

use std::time::{Duration, Instant};

use corosensei::stack::Stack;

use super::super::pool::{TRIM_BATCH, WARM_STACKS};
use super::super::{DEFAULT_STACK_SIZE, PooledStack, acquire};
use super::{mapping_count, on_fresh_thread, touch};

/// Time per item of `n` items done in `elapsed`.
fn each(elapsed: Duration, n: usize) -> Duration {
    elapsed / n as u32
}

/// Takes `n` stacks; returns them and the time per acquire.
fn take(n: usize) -> (Vec<PooledStack>, Duration) {
    let started = Instant::now();
    let stacks: Vec<PooledStack> = (0..n)
        .map(|_| acquire(DEFAULT_STACK_SIZE).unwrap())
        .collect();
    (stacks, each(started.elapsed(), n))
}

/// Writes the top word of every stack (the page a coroutine touches first); time per stack.
fn touch_tops(stacks: &[PooledStack]) -> Duration {
    let started = Instant::now();
    for s in stacks {
        // SAFETY: writes the top word of a stack we own and no coroutine uses.
        unsafe { std::ptr::write_volatile((s.base().get() - 8) as *mut u64, 1) }
    }
    each(started.elapsed(), stacks.len())
}

/// Drops the stacks in order; time per release.
fn release(stacks: Vec<PooledStack>) -> Duration {
    let n = stacks.len();
    let started = Instant::now();
    drop(stacks);
    each(started.elapsed(), n)
}

/// A `/proc/self/status` field, e.g. `VmRSS:    1234 kB`.
fn status(name: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .map_or_else(String::new, |l| {
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        })
}

#[test]
#[ignore = "measurement, prints timings"]
fn report_costs() {
    if std::env::var("GREENLET_MILLION").as_deref() == Ok("1") {
        on_fresh_thread(million);
    }
    on_fresh_thread(|| {
        let n = 100_000;
        let (stacks, fresh) = take(n);
        println!("fresh acquire (slab share, guards and top pages in batches): {fresh:?}");
        println!("first touch of the top page: {:?}", touch_tops(&stacks));
        println!(
            "release of a 100k burst in order (trims of {TRIM_BATCH}, spares, unmaps): {:?}; \
             idle: {}",
            release(stacks),
            status("VmRSS")
        );
        let (stacks, again) = take(n);
        let touched = touch_tops(&stacks);
        println!(
            "100k burst again: acquire {again:?} + touch {touched:?} (warm, spare and fresh slots)"
        );
        drop(stacks);

        let started = Instant::now();
        for _ in 0..n {
            drop(std::hint::black_box(acquire(DEFAULT_STACK_SIZE).unwrap()));
        }
        println!("warm acquire + release: {:?}", each(started.elapsed(), n));

        // Churn: 5000 fully touched stacks released in scattered order, then taken again.
        let (keep, _) = take(5000);
        keep.iter().for_each(touch);
        let order: Vec<usize> = (0..keep.len()).map(|i| (i * 7919) % keep.len()).collect();
        let mut keep: Vec<Option<PooledStack>> = keep.into_iter().map(Some).collect();
        let started = Instant::now();
        for &i in &order {
            keep[i] = None;
        }
        println!(
            "release in scattered order, 64 KiB touched (beyond {WARM_STACKS} warm): {:?}; \
             idle: {}",
            each(started.elapsed(), order.len()),
            status("VmRSS")
        );
        let (mix, taken) = take(5000);
        println!(
            "acquire after that: {taken:?} + touch {:?}",
            touch_tops(&mix)
        );
        drop(mix);
    });
}

/// A million stacks taken, their top pages touched, and released: the costs, the mappings, and
/// what the idle thread keeps.
fn million() {
    let n = 1_000_000;
    let maps = mapping_count();
    let rss = status("VmRSS");
    let (stacks, fresh) = take(n);
    let touched = touch_tops(&stacks);
    println!(
        "1M stacks: acquire {fresh:?} + touch {touched:?} each, mappings {maps} -> {}, \
         {rss} -> {}, {}",
        mapping_count(),
        status("VmRSS"),
        status("VmPTE")
    );
    let released = release(stacks);
    println!(
        "1M released: {released:?} each; idle now: mappings {}, {}, {}",
        mapping_count(),
        status("VmRSS"),
        status("VmPTE")
    );
}
