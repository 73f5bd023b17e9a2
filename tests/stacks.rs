//! Greenlet stacks through the public API: sizes, usable depth, isolation between stacks,
//! recycling, and the mapping count of many live greenlets.

use std::hint::black_box;
use std::sync::{Mutex, MutexGuard};

use greenlet::{Builder, DEFAULT_STACK_SIZE, Greenlet};

/// The system page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap()
}

/// Number of mappings of this process.
fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Whether the kernel has `MADV_GUARD_INSTALL` (Linux ≥ 6.13), so guards do not split mappings.
fn kernel_has_guard_install() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 13)
}

/// Serialises the tests of this file: they count the process's mappings, which other threads
/// (their stack slabs, their malloc arenas) would disturb.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on a new thread, so it starts with an empty stack pool and greenlet runtime.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("test thread panicked")
}

/// A started greenlet that filled 1 KiB of its stack with `tag`, then switched back to main.
/// Finishing it (`switch(())`) returns whether that stack memory still holds `tag`.
fn parked(tag: u8) -> Greenlet {
    let g = Greenlet::new(move |()| {
        let frame = black_box([tag; 1024]);
        let () = greenlet::main().switch(()).unwrap();
        black_box(&frame).iter().all(|&b| b == tag)
    });
    let () = g.switch(()).unwrap();
    g
}

/// Finishes a greenlet made by [`parked`]; panics if its stack was disturbed.
fn finish(g: &Greenlet) {
    let intact: bool = g.switch(()).unwrap();
    assert!(intact, "greenlet #{} found its stack overwritten", g.id());
    assert!(g.is_dead());
}

#[test]
fn stack_size_is_rounded_up_to_whole_pages() {
    let _serial = serial();
    let page = page_size();
    let default = Greenlet::new(|()| ());
    assert_eq!(default.stack_size(), DEFAULT_STACK_SIZE);
    let odd = Builder::new().stack_size(10_000).build(|()| ()).unwrap();
    assert_eq!(odd.stack_size(), 10_000usize.next_multiple_of(page));
    let tiny = Builder::new().stack_size(1).build(|()| ()).unwrap();
    assert_eq!(tiny.stack_size(), 4096usize.next_multiple_of(page));
    let big = Builder::new().stack_size(8 << 20).build(|()| ()).unwrap();
    assert_eq!(big.stack_size(), 8 << 20);
}

#[test]
fn absurd_stack_size_is_an_error_not_a_crash() {
    let _serial = serial();
    let err = Builder::new()
        .stack_size(usize::MAX / 2)
        .build(|()| ())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

/// Recurses until the frames below `top` span `target` bytes; returns the depth reached.
#[inline(never)]
fn use_stack(top: usize, target: usize, depth: u64) -> u64 {
    let frame = black_box([depth as u8; 256]);
    let here = black_box(&frame) as *const _ as usize;
    let deeper = if top - here < target {
        use_stack(top, target, depth + 1)
    } else {
        depth
    };
    deeper + u64::from(black_box(frame)[0] == 0)
}

#[test]
fn greenlet_can_use_three_quarters_of_its_stack() {
    let _serial = serial();
    for size in [64 * 1024, 256 * 1024, 1 << 20, 8 << 20] {
        let g = Builder::new()
            .name(format!("use-{size}"))
            .stack_size(size)
            .build(move |()| {
                let marker = 0u8;
                let top = black_box(&marker) as *const u8 as usize;
                use_stack(top, size / 4 * 3, 0)
            })
            .unwrap();
        let depth: u64 = g.switch(()).unwrap();
        assert!(depth > 10, "stack of {size} bytes: recursed {depth} frames");
    }
}

#[test]
fn live_greenlets_never_share_stack_memory() {
    let _serial = serial();
    let greenlets: Vec<Greenlet> = (0..3000).map(|i| parked(i as u8)).collect();
    greenlets.iter().for_each(finish);
}

#[test]
fn greenlets_on_many_threads_keep_their_stacks_apart() {
    let _serial = serial();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let greenlets: Vec<Greenlet> =
                    (0..2000).map(|i| parked((t * 61 + i) as u8)).collect();
                greenlets.iter().for_each(finish);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn stacks_are_recycled_across_generations() {
    let _serial = serial();
    on_fresh_thread(|| {
        let generation = |n: usize| {
            let greenlets: Vec<Greenlet> = (0..n).map(|i| parked(i as u8)).collect();
            greenlets.iter().for_each(finish);
        };
        generation(5000);
        let maps_after_first = mapping_count();
        for _ in 0..10 {
            generation(5000);
        }
        let grown = mapping_count().saturating_sub(maps_after_first);
        assert!(
            grown < 20,
            "ten more generations of 5000 greenlets added {grown} mappings"
        );
    });
}

#[test]
fn dropping_suspended_greenlets_returns_their_stacks() {
    let _serial = serial();
    on_fresh_thread(|| {
        let generation = || {
            let greenlets: Vec<Greenlet> = (0..5000).map(|i| parked(i as u8)).collect();
            drop(greenlets); // unwinds each suspended greenlet, then frees its stack
        };
        generation();
        let maps_after_first = mapping_count();
        for _ in 0..10 {
            generation();
        }
        let grown = mapping_count().saturating_sub(maps_after_first);
        assert!(
            grown < 20,
            "ten more generations of 5000 dropped greenlets added {grown} mappings"
        );
    });
}

#[test]
fn hundred_thousand_parked_greenlets_need_few_mappings() {
    let _serial = serial();
    if !kernel_has_guard_install() {
        println!("note: kernel < 6.13 has no MADV_GUARD_INSTALL; guards split mappings, skipping");
        return;
    }
    on_fresh_thread(|| {
        let before = mapping_count();
        let greenlets: Vec<Greenlet> = (0..100_000).map(|i| parked(i as u8)).collect();
        let grown = mapping_count().saturating_sub(before);
        println!("100000 parked greenlets added {grown} mappings");
        assert!(
            grown < 2000,
            "100000 parked greenlets added {grown} mappings"
        );
        greenlets.iter().for_each(finish);
    });
}
