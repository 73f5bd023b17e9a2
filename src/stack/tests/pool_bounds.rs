//! Tests of what the pool keeps and gives back: warm stacks, parked, lazily and eagerly freed ones,
//! spare slabs, batched guards, and the memory of a thread that goes idle after a burst.
//!
//! Tests that read process-wide figures (RSS, `LazyFree`, the mapping count) or force a fallback
//! run in a child process, so that no other test thread moves the figures.

use std::time::Instant;

use corosensei::stack::Stack;

use super::super::pool::{
    self, LAZY_STACKS, MAX_SLAB_SLOTS, PARKED_STACKS, SPARE_SLOTS, TRIM_BATCH, WARM_STACKS,
};
use super::super::{DEFAULT_STACK_SIZE, PooledStack, acquire, advice, slab};
use super::{
    assert_killed_by, describe, is_child, mapping_count, on_fresh_thread, resident_pages,
    run_child_of, touch, usable_start, write_guard,
};

/// Runs test `name` of this module in a child process with `env`; returns its output.
fn child(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    run_child_of(module_path!(), name, env)
}

/// Takes `n` stacks of the default size.
pub(super) fn take(n: usize) -> Vec<PooledStack> {
    (0..n)
        .map(|_| acquire(DEFAULT_STACK_SIZE).unwrap())
        .collect()
}

/// Writes the top word of `stack`, the page a coroutine touches first.
pub(super) fn touch_top(stack: &PooledStack) {
    // SAFETY: the top word of the usable part of a stack we own and no coroutine uses.
    unsafe { std::ptr::write_volatile((stack.base().get() - 8) as *mut u64, 1) };
}

/// Resident bytes of this process (`/proc/self/statm`).
pub(super) fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm has a resident field");
    pages * slab::page_size()
}

/// Bytes of this process freed with `MADV_FREE` that the kernel has not taken yet.
fn lazy_free() -> usize {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .expect("read /proc/self/smaps_rollup")
        .lines()
        .find_map(|l| l.strip_prefix("LazyFree:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("smaps_rollup has LazyFree")
        * 1024
}

/// Past the warm, parked and lazily freed stacks a class keeps: some are freed.
const PAST_THE_BOUNDS: usize = WARM_STACKS + TRIM_BATCH + PARKED_STACKS + 600;

/// Sets up `count` fully touched stacks, drops them, and returns the pool's statistics and how
/// many pages of the trimmed stacks (the oldest, dropped first) are still resident.
fn drop_past_the_warm_bound(count: usize) -> (pool::Stats, usize) {
    let stacks = take(count);
    let ranges: Vec<(usize, usize)> = stacks.iter().map(|s| (usable_start(s), s.size())).collect();
    stacks.iter().for_each(touch);
    let pages = DEFAULT_STACK_SIZE / slab::page_size();
    let resident: usize = ranges.iter().map(|&(s, l)| resident_pages(s, l)).sum();
    assert_eq!(resident, count * pages);
    drop(stacks);
    let stats = pool::stats(DEFAULT_STACK_SIZE);
    assert_eq!(stats.live, 0);
    assert!(
        (WARM_STACKS..WARM_STACKS + TRIM_BATCH).contains(&stats.warm),
        "{stats:?}"
    );
    assert_eq!(stats.trimmed, count - stats.warm, "{stats:?}");
    assert!(stats.parked <= PARKED_STACKS, "{stats:?}");
    let trimmed = &ranges[..stats.trimmed];
    let resident = trimmed.iter().map(|&(s, l)| resident_pages(s, l)).sum();
    (stats, resident)
}

#[test]
fn trimmed_stacks_are_parked_then_freed_lazily_and_reused_first() {
    let name = "trimmed_stacks_are_parked_then_freed_lazily_and_reused_first";
    if is_child(name) {
        let (stats, resident) = drop_past_the_warm_bound(PAST_THE_BOUNDS);
        let page = slab::page_size();
        let parked_pages = stats.parked * DEFAULT_STACK_SIZE / page;
        if stats.lazy == 0 {
            println!("note: MADV_FREE unsupported: trimmed stacks were freed eagerly");
            assert_eq!(resident, parked_pages, "{stats:?}");
        } else {
            // Every page of a trimmed stack that is neither parked nor taken by the kernel yet is
            // lazily free (but for those still in per-CPU batches, which the kernel marks a little
            // later).
            let batched = 64 * std::thread::available_parallelism().map_or(1, |n| n.get());
            let lazy_pages = resident - parked_pages;
            assert!(lazy_pages > 0, "{stats:?}");
            assert!(
                lazy_pages.saturating_sub(batched) * page <= lazy_free(),
                "{lazy_pages} lazily freed pages resident, LazyFree {} bytes; {stats:?}",
                lazy_free()
            );
        }
        // Trimmed slots are reused before any new slab is mapped, guards and all.
        let again = take(PAST_THE_BOUNDS);
        assert_eq!(pool::stats(DEFAULT_STACK_SIZE).slabs, stats.slabs);
        for stack in &again {
            // SAFETY: reads the top word of the usable part of a stack we own.
            let top = unsafe { std::ptr::read_volatile((stack.base().get() - 8) as *const u64) };
            assert!(top == 0 || top == 1, "old contents or zeroes, nothing else");
        }
        again.iter().for_each(touch);
        // The last one taken had been trimmed: its guard still faults.
        write_guard(again.last().expect("taken"));
        println!("wrote to the guard of a reused stack without faulting");
        std::process::exit(0);
    }
    let output = child(name, &[]);
    assert_killed_by(&output, libc::SIGSEGV);
}

#[test]
fn eager_trims_return_pages_at_once() {
    if is_child("eager_trims_return_pages_at_once") {
        let (stats, resident) = drop_past_the_warm_bound(PAST_THE_BOUNDS);
        assert_eq!(stats.lazy, 0, "{stats:?}");
        assert!(stats.parked < stats.trimmed, "{stats:?}");
        let parked_pages = stats.parked * DEFAULT_STACK_SIZE / slab::page_size();
        assert_eq!(resident, parked_pages, "only parked stacks hold memory");
        std::process::exit(0);
    }
    for env in ["dontneed", "dontneed,unbatched"] {
        let output = child(
            "eager_trims_return_pages_at_once",
            &[("GREENLET_TEST_ADVICE", env)],
        );
        assert!(output.status.success(), "{env}: {}", describe(&output));
    }
}

#[test]
fn lazily_freed_stacks_are_bounded() {
    on_fresh_thread(|| {
        let stacks = take(LAZY_STACKS + 2000);
        stacks.iter().for_each(touch_top);
        drop(stacks);
        let stats = pool::stats(DEFAULT_STACK_SIZE);
        assert_eq!(stats.live, 0);
        assert!(stats.parked <= PARKED_STACKS, "{stats:?}");
        if stats.lazy > 0 {
            assert!(stats.lazy <= LAZY_STACKS, "{stats:?}");
            assert!(
                stats.trimmed > stats.lazy + stats.parked,
                "the rest is freed eagerly: {stats:?}"
            );
        }
    });
}

#[test]
fn empty_slabs_beyond_the_spares_are_unmapped() {
    on_fresh_thread(|| {
        let count = 20_000;
        let stacks = take(count);
        stacks.iter().for_each(touch_top);
        let peak = pool::stats(DEFAULT_STACK_SIZE);
        drop(stacks);
        let after = pool::stats(DEFAULT_STACK_SIZE);
        assert!(after.spare > 0, "empty slabs are kept: {after:?}");
        assert!(after.spare <= SPARE_SLOTS, "{after:?}");
        // Left: the spares, the slabs holding warm stacks, and the fresh one.
        assert!(after.slabs < peak.slabs, "peak {peak:?}, after {after:?}");
        let warm_slabs = WARM_STACKS.div_ceil(MAX_SLAB_SLOTS) + 1;
        assert!(
            after.slabs - after.spare_slabs <= warm_slabs + 1,
            "peak {peak:?}, after {after:?}"
        );
        // Everything kept is handed out again before any slab is mapped.
        let again = take(after.warm + after.trimmed);
        assert_eq!(pool::stats(DEFAULT_STACK_SIZE).slabs, after.slabs);
        again.iter().for_each(touch);
        drop(again);
        let stacks = take(count);
        stacks.iter().for_each(touch_top);
    });
}

#[test]
fn every_slot_of_a_guard_batch_is_guarded() {
    if is_child("every_slot_of_a_guard_batch_is_guarded") {
        let index: usize = std::env::var("GREENLET_TEST_GUARD_INDEX")
            .expect("index")
            .parse()
            .expect("a number");
        let stacks = take(index + 1);
        stacks.iter().for_each(touch);
        write_guard(&stacks[index]);
        println!("wrote to the guard of stack {index} without faulting");
        std::process::exit(0);
    }
    // Slabs of 16, 32 and 64 slots: the first slot, the last of the second slab, one in the
    // middle of the third slab's batch; the last one also range by range.
    for (index, env) in [(0, ""), (47, ""), (70, ""), (70, "unbatched")] {
        let output = child(
            "every_slot_of_a_guard_batch_is_guarded",
            &[
                ("GREENLET_TEST_GUARD_INDEX", &index.to_string()),
                ("GREENLET_TEST_ADVICE", env),
            ],
        );
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&output.status),
            Some(libc::SIGSEGV),
            "stack {index} {env}: {}",
            describe(&output)
        );
    }
}

#[test]
fn fresh_slots_get_their_top_page_with_their_guard() {
    if is_child("fresh_slots_get_their_top_page_with_their_guard") {
        let page = slab::page_size();
        let first = acquire(DEFAULT_STACK_SIZE).unwrap();
        // The first slab's 16 slots got their guards in one batch; the top pages of the 15 not
        // handed out yet are resident already, unless populating is off or unsupported.
        let tops: usize = (1..16)
            .map(|i| first.base().get() + i * (DEFAULT_STACK_SIZE + page) - page)
            .map(|top| resident_pages(top, page))
            .sum();
        let populated = advice::populates();
        println!("populating: {populated:?}, {tops} top pages resident");
        if populated == Some(true) {
            assert_eq!(tops, 15);
        } else {
            assert_eq!(tops, 0);
        }
        std::process::exit(if std::env::var("GREENLET_TEST_ADVICE").is_ok() {
            3
        } else {
            0
        });
    }
    let output = child("fresh_slots_get_their_top_page_with_their_guard", &[]);
    assert!(output.status.success(), "{}", describe(&output));
    let output = child(
        "fresh_slots_get_their_top_page_with_their_guard",
        &[("GREENLET_TEST_ADVICE", "nopopulate")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
}

#[test]
fn idle_thread_gives_memory_back() {
    if is_child("idle_thread_gives_memory_back") {
        let count = 40_000;
        let page = slab::page_size();
        let before = rss();
        let stacks = take(count);
        stacks.iter().for_each(touch_top);
        let peak = rss();
        assert!(peak >= before + count * page, "{before} -> {peak}");
        drop(stacks);
        let after = rss();
        // Warm, parked and lazily freed stacks (one page each here), a trim batch in between,
        // and room for the allocator.
        let kept = (WARM_STACKS + 2 * TRIM_BATCH + PARKED_STACKS + LAZY_STACKS) * page + (4 << 20);
        println!("RSS {before} -> {peak} -> {after} bytes (at most {kept} kept)");
        assert!(after <= before + kept, "{before} -> {peak} -> {after}");
        std::process::exit(0);
    }
    let output = child("idle_thread_gives_memory_back", &[]);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn many_stacks_need_few_mappings() {
    on_fresh_thread(|| {
        let count = 100_000;
        let first = acquire(DEFAULT_STACK_SIZE).unwrap();
        if advice::guards_split_mappings() != Some(false) {
            println!(
                "note: MADV_GUARD_INSTALL unsupported (Linux < 6.13): skipping the mapping count test"
            );
            return;
        }
        let before = mapping_count();
        let started = Instant::now();
        let stacks = take(count - 1);
        let elapsed = started.elapsed();
        let grown = mapping_count().saturating_sub(before);
        println!(
            "{count} stacks of 64 KiB: mappings grew by {grown}, {:?} per fresh acquire",
            elapsed / count as u32
        );
        assert!(grown < 1000, "{count} stacks added {grown} mappings");
        drop(stacks);
        drop(first);
    });
}
