//! Tests of the time decay: a burst's stacks stay resident and guarded for the next burst, and
//! decay steps (driven by an explicit test clock, or by the hub) give back what is beyond the idle
//! bounds, gradually.

use std::time::{Duration, Instant};

use super::super::DEFAULT_STACK_SIZE;
use super::super::pool::{
    self, DECAY_PERIOD, LAZY_STACKS, PARKED_STACKS, SPARE_SLOTS, TRIM_BATCH, WARM_STACKS,
};
use super::pool_bounds::{rss, take, touch_top};
use super::{describe, is_child, on_fresh_thread, run_child_of};
use crate::stack::{decay_stacks_if_due, next_stack_decay, set_stack_decay_driven};

/// A burst well past the spare slabs, so that every tier has excess.
const BURST: usize = 20_000;

/// Makes this thread's pool decay as if a hub drove it, on a test clock set to `start`.
fn drive_on_test_clock(start: Instant) {
    pool::set_test_clock(Some(start));
    set_stack_decay_driven(true);
}

/// Takes and touches `n` stacks, drops them, and returns the pool's statistics at the peak and
/// after the drop.
fn burst(n: usize) -> (pool::Stats, pool::Stats) {
    let stacks = take(n);
    stacks.iter().for_each(touch_top);
    let peak = pool::stats(DEFAULT_STACK_SIZE);
    drop(stacks);
    (peak, pool::stats(DEFAULT_STACK_SIZE))
}

/// Whether `stats` are within what an idle thread may keep.
fn within_idle_bounds(stats: &pool::Stats) -> bool {
    stats.live == 0
        && stats.warm < WARM_STACKS + TRIM_BATCH
        && stats.parked <= PARKED_STACKS
        && stats.lazy <= LAZY_STACKS
        && stats.spare <= SPARE_SLOTS
}

/// Runs decay steps on the test clock, one period apart from `start`, until none is scheduled;
/// returns how many ran. Fails past `limit` steps.
fn decay_to_the_end(start: Instant, limit: u32) -> u32 {
    let mut steps = 0;
    while let Some(due) = next_stack_decay() {
        assert!(steps < limit, "still decaying after {limit} steps");
        steps += 1;
        assert_eq!(due, start + DECAY_PERIOD * steps, "one step per period");
        pool::set_test_clock(Some(due));
        decay_stacks_if_due();
    }
    steps
}

#[test]
fn burst_stays_resident_and_guarded_for_the_next_burst() {
    on_fresh_thread(|| {
        let start = Instant::now();
        drive_on_test_clock(start);
        let (peak, after) = burst(BURST);
        assert!(!within_idle_bounds(&after), "{after:?}");
        // Nothing was freed or unmapped: every trimmed stack is parked, every slab still mapped.
        assert_eq!(after.slabs, peak.slabs, "peak {peak:?}, after {after:?}");
        assert_eq!((after.parked, after.lazy), (after.trimmed, 0), "{after:?}");
        assert_eq!(after.warm + after.trimmed, BURST, "{after:?}");
        assert_eq!(next_stack_decay(), Some(start + DECAY_PERIOD));
        // The next burst maps no slab and installs no guard.
        let (again, _) = burst(BURST);
        assert_eq!(
            (again.mapped, again.guarded),
            (peak.mapped, peak.guarded),
            "first burst {peak:?}, second {again:?}"
        );
        assert_eq!(again.slabs, peak.slabs);
    });
}

#[test]
fn decay_steps_give_back_gradually_down_to_the_idle_bounds() {
    on_fresh_thread(|| {
        let start = Instant::now();
        drive_on_test_clock(start);
        let (peak, after) = burst(BURST);
        // Not due yet: nothing happens.
        pool::set_test_clock(Some(start + DECAY_PERIOD - Duration::from_nanos(1)));
        decay_stacks_if_due();
        assert_eq!(pool::stats(DEFAULT_STACK_SIZE), after);
        // The first step frees a share of the parked stacks (lazily where the kernel can), and
        // unmaps nothing yet: slabs are freed one step and unmapped a later one.
        pool::set_test_clock(Some(start + DECAY_PERIOD));
        decay_stacks_if_due();
        let first = pool::stats(DEFAULT_STACK_SIZE);
        assert_eq!(first.slabs, peak.slabs, "{first:?}");
        assert!(first.parked < after.parked, "{after:?} -> {first:?}");
        assert!(first.parked > after.parked / 2, "{after:?} -> {first:?}");
        assert_eq!(next_stack_decay(), Some(start + DECAY_PERIOD * 2));
        // Later steps end within the idle bounds, and then no step is scheduled.
        pool::set_test_clock(Some(start + DECAY_PERIOD));
        let steps = decay_to_the_end(start + DECAY_PERIOD, 100) + 1;
        let end = pool::stats(DEFAULT_STACK_SIZE);
        println!("{BURST} stacks: {steps} decay steps; {after:?} -> {end:?}");
        assert!(steps > 2, "gradual: {steps} steps");
        assert!(within_idle_bounds(&end), "{end:?}");
        assert!(end.slabs < peak.slabs, "peak {peak:?}, end {end:?}");
    });
}

#[test]
fn a_trim_runs_the_step_that_is_due() {
    on_fresh_thread(|| {
        let start = Instant::now();
        drive_on_test_clock(start);
        let (_, after) = burst(BURST);
        pool::set_test_clock(Some(start + DECAY_PERIOD));
        // Enough releases for a trim, on a thread whose hub (if it had one) never turned idle.
        let (_, trimmed) = burst(WARM_STACKS + TRIM_BATCH + 1);
        assert!(
            trimmed.parked < after.parked - TRIM_BATCH,
            "{after:?} -> {trimmed:?}"
        );
        assert_eq!(next_stack_decay(), Some(start + DECAY_PERIOD * 2));
    });
}

#[test]
fn stopping_the_driver_gives_back_the_excess_at_once() {
    on_fresh_thread(|| {
        drive_on_test_clock(Instant::now());
        let (peak, _) = burst(BURST);
        set_stack_decay_driven(false);
        let end = pool::stats(DEFAULT_STACK_SIZE);
        assert!(within_idle_bounds(&end), "{end:?}");
        assert!(end.slabs < peak.slabs, "peak {peak:?}, end {end:?}");
        assert_eq!(next_stack_decay(), None);
        // Undriven, a burst is bounded as it ends.
        let (_, after) = burst(BURST);
        assert!(within_idle_bounds(&after), "{after:?}");
    });
}

#[test]
fn the_hub_drives_the_decay_and_runs_a_due_step_when_idle() {
    on_fresh_thread(|| {
        let start = Instant::now();
        // The clock stands still: no step runs during the burst, however slow the machine.
        pool::set_test_clock(Some(start));
        let all: Vec<_> = (0..BURST)
            .map(|i| {
                crate::spawn(move || {
                    crate::yield_now();
                    i
                })
            })
            .collect();
        let sum: usize = all.into_iter().map(|h| h.get().unwrap()).sum();
        assert_eq!(sum, BURST * (BURST - 1) / 2);
        let after = pool::stats(DEFAULT_STACK_SIZE);
        assert!(
            !within_idle_bounds(&after),
            "the hub drives: kept {after:?}"
        );
        assert_eq!(next_stack_decay(), Some(start + DECAY_PERIOD));
        // Due now: the hub's next idle turn runs the step.
        pool::set_test_clock(Some(start + DECAY_PERIOD));
        crate::sleep(Duration::from_millis(1));
        let stepped = pool::stats(DEFAULT_STACK_SIZE);
        assert!(stepped.parked < after.parked, "{after:?} -> {stepped:?}");
        assert_eq!(next_stack_decay(), Some(start + DECAY_PERIOD * 2));
    });
}

#[test]
fn decayed_burst_gives_memory_back() {
    let name = "decayed_burst_gives_memory_back";
    if is_child(name) {
        let count = 40_000;
        let page = super::super::slab::page_size();
        let start = Instant::now();
        drive_on_test_clock(start);
        let before = rss();
        let stacks = take(count);
        stacks.iter().for_each(touch_top);
        let peak = rss();
        drop(stacks);
        let kept = rss();
        // The burst's stacks stay resident (one page each here), minus allocator noise.
        assert!(kept + (4 << 20) >= peak, "{before} -> {peak} -> {kept}");
        decay_to_the_end(start, 200);
        let after = rss();
        // As for an idle thread without decay: warm, parked and lazily freed stacks, a trim batch
        // in between, and room for the allocator.
        let bound = (WARM_STACKS + 2 * TRIM_BATCH + PARKED_STACKS + LAZY_STACKS) * page + (4 << 20);
        println!(
            "RSS before {before}, at the peak {peak}, after the burst {kept}, after decay {after} \
             bytes (at most {bound} kept)"
        );
        assert!(after <= before + bound, "{before} -> {peak} -> {after}");
        std::process::exit(0);
    }
    let output = run_child_of(module_path!(), name, &[]);
    assert!(output.status.success(), "{}", describe(&output));
    println!("{}", String::from_utf8_lossy(&output.stdout));
}
