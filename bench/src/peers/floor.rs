//! The floors: work that no runtime can avoid, with nothing of a runtime around it.
//!
//! **Alive:** the kernel work that N guarded 64 KiB stacks cannot avoid, with no coroutine at
//! all. Every slot is what greenlet's pool hands out (a guard page below a 64 KiB stack, slots
//! side by side in large `MAP_NORESERVE` mappings of 1024 slots): per slot, one guard is
//! installed and one fresh page (the top of the stack, where a coroutine's first frames go) is
//! written. Both are done the cheapest way the kernel offers. Guards: `MADV_GUARD_INSTALL`
//! (Linux 6.13+) for a batch of slots per `process_madvise` call, else one `madvise` per slot,
//! else `mprotect` (which splits the mapping, so the floor then stops near
//! `vm.max_map_count / 2` like any design that does). Pages: faulted in by a batched
//! `MADV_POPULATE_WRITE` (Linux 5.14+; cheaper than one trap per page), else by the write
//! itself. A greenlet runtime's creation time over this is its own overhead on top of the
//! kernel's.
//!
//! **Yield:** two raw corosensei coroutines and a scheduler that is nothing but a queue of who
//! is ready. A hand-over on corosensei cannot do less: the yielder suspends to the scheduler's
//! stack, which pops the next one and resumes it (two stack switches, a queue push and a pop).

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::{Alive, AliveProbe};

/// Two coroutines, each yielding `n` times to a scheduler that is only a ready queue:
/// nanoseconds per yield.
pub fn yield_now(n: u64) -> f64 {
    two_suspenders(n, |yielder| yielder.suspend(()))
}

/// A suspend made inside a function: not inlined into the coroutine's loop.
#[inline(never)]
fn suspend_in_a_call(yielder: &Yielder<(), ()>) {
    yielder.suspend(());
}

/// [`yield_now`] with each suspend inside a called function: nanoseconds per yield. corosensei
/// resumes with a call and suspends with a return on the other stack, so from inside a called
/// function both the function's return and the suspend's are mispredicted.
pub fn yield_nested(n: u64) -> f64 {
    two_suspenders(n, suspend_in_a_call)
}

/// Two coroutines, each suspending with `suspend` `n` times, resumed in turn from a ready
/// queue: nanoseconds per suspend. Generic, so that an inline `suspend` stays in the
/// coroutine's own loop.
fn two_suspenders(n: u64, suspend: impl Fn(&Yielder<(), ()>) + Copy + 'static) -> f64 {
    let make = || {
        Coroutine::new(move |yielder: &Yielder<(), ()>, ()| {
            for _ in 0..n {
                suspend(yielder);
            }
        })
    };
    let mut both = [make(), make()];
    let mut ready: VecDeque<usize> = VecDeque::from([0, 1]);
    let start = Instant::now();
    while let Some(i) = ready.pop_front() {
        if let CoroutineResult::Yield(()) = both[black_box(i)].resume(()) {
            ready.push_back(i);
        }
    }
    let dt = start.elapsed();
    assert!(both.iter().all(Coroutine::done), "both ran to the end");
    dt.as_nanos() as f64 / (2 * n) as f64
}

/// Usable bytes per slot, greenlet's default stack size.
const STACK: usize = 64 * 1024;
/// Slots per mapping, as in greenlet's largest slabs.
const SLAB_SLOTS: usize = 1024;
/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `MADV_POPULATE_WRITE` from `<linux/mman.h>` (Linux 5.14).
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// How guards are installed on this kernel, found out by the first slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guards {
    /// Not known yet.
    Unknown,
    /// `process_madvise(MADV_GUARD_INSTALL)`, one call per slab; holds a pidfd of this process.
    Batched(libc::c_int),
    /// `madvise(MADV_GUARD_INSTALL)` per slot.
    PerSlot,
    /// `mprotect(PROT_NONE)` per slot.
    Mprotect,
}

/// Maps `n` guarded slots and writes the top page of each; the figures of the run.
pub fn alive(n: u64) -> Result<Alive, String> {
    let page = page_size();
    let slot = STACK + page;
    let probe = AliveProbe::start(n);
    let mut guards = Guards::Unknown;
    let mut done = 0u64;
    while done < n {
        let slots = (n - done).min(SLAB_SLOTS as u64) as usize;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases no
        // Rust object. It is never unmapped: the process exits after the measurement.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                slot * slots,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(probe.failed(done, &format!("mmap: {}", last_error())));
        }
        let base = base as usize;
        // SAFETY: the range is the mapping made just above.
        unsafe {
            libc::madvise(
                base as *mut libc::c_void,
                slot * slots,
                libc::MADV_NOHUGEPAGE,
            )
        };
        install_guards(&mut guards, base, slot, slots, page).map_err(|e| probe.failed(done, &e))?;
        if let Guards::Batched(fd) = guards {
            // The top page of every slot, faulted in by one call; on refusal the writes below do
            // it one trap at a time.
            let tops: Vec<libc::iovec> = (0..slots)
                .map(|i| libc::iovec {
                    iov_base: (base + (i + 1) * slot - page) as *mut libc::c_void,
                    iov_len: page,
                })
                .collect();
            // SAFETY: every range is the top page of a slot of our own mapping; populating it
            // does not change its contents.
            unsafe { process_madvise(fd, &tops, MADV_POPULATE_WRITE) };
        }
        for i in 0..slots {
            let top = base + (i + 1) * slot - 8;
            // SAFETY: `top` is the last word of slot i's usable part, inside our own mapping.
            unsafe { std::ptr::write_volatile(top as *mut u64, i as u64) };
        }
        done += slots as u64;
        probe.tick(done);
    }
    Ok(probe.finish())
}

/// Installs the guards of `slots` slots of `slot` bytes from `base`, each `page` bytes long.
fn install_guards(
    mode: &mut Guards,
    base: usize,
    slot: usize,
    slots: usize,
    page: usize,
) -> Result<(), String> {
    if *mode == Guards::Unknown {
        // SAFETY: pidfd_open has no memory-safety preconditions.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        *mode = if fd >= 0 {
            Guards::Batched(fd as libc::c_int)
        } else {
            Guards::PerSlot
        };
    }
    if let Guards::Batched(fd) = *mode {
        let iov: Vec<libc::iovec> = (0..slots)
            .map(|i| libc::iovec {
                iov_base: (base + i * slot) as *mut libc::c_void,
                iov_len: page,
            })
            .collect();
        // SAFETY: every range is the guard page of a slot of our own mapping, which holds nothing.
        if unsafe { process_madvise(fd, &iov, MADV_GUARD_INSTALL) } {
            return Ok(());
        }
        // Older kernels refuse this advice through process_madvise: go slot by slot (the guards
        // this call may have installed are installed again, which is harmless).
        *mode = Guards::PerSlot;
    }
    for i in 0..slots {
        let guard = (base + i * slot) as *mut libc::c_void;
        if *mode == Guards::PerSlot {
            // SAFETY: the guard page of a slot of our own mapping, which holds nothing.
            if unsafe { libc::madvise(guard, page, MADV_GUARD_INSTALL) } == 0 {
                continue;
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(format!("madvise(MADV_GUARD_INSTALL): {}", last_error()));
            }
            *mode = Guards::Mprotect;
        }
        // SAFETY: as above.
        if unsafe { libc::mprotect(guard, page, libc::PROT_NONE) } != 0 {
            return Err(format!("mprotect: {}", last_error()));
        }
    }
    Ok(())
}

/// `process_madvise(fd, ranges, advice)`; whether every byte of every range was advised.
///
/// # Safety
///
/// Every range must be inside a private anonymous mapping of this process, fit for `advice`.
unsafe fn process_madvise(fd: libc::c_int, ranges: &[libc::iovec], advice: libc::c_int) -> bool {
    let want: usize = ranges.iter().map(|r| r.iov_len).sum();
    // SAFETY: the caller's guarantee; the kernel only reads the array (UIO_MAXIOV is 1024, the
    // most ranges passed here).
    let done = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            fd,
            ranges.as_ptr(),
            ranges.len(),
            advice,
            0,
        )
    };
    done >= 0 && done as usize == want
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096).max(4096)
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    /// Set in the child process that runs the test alone.
    const ALONE: &str = "BENCH_FLOOR_TEST_ALONE";

    #[test]
    fn alive_touches_one_page_per_slot() {
        // RSS is the whole process's: other tests freeing memory on their threads meanwhile
        // would hide this one's pages, so the measurement runs in a process of its own.
        if std::env::var_os(ALONE).is_none() {
            let name = "peers::floor::tests::alive_touches_one_page_per_slot";
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads=1"])
                .env(ALONE, "1")
                .output()
                .expect("run the test alone");
            assert!(
                out.status.success(),
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("1 passed"),
                "the child ran no test: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            return;
        }
        let n = 3000;
        let a = super::alive(n).expect("3000 slots fit");
        assert_eq!(a.n, n);
        // One page per slot at least, plus the page tables' share (not counted in RSS).
        assert!(a.rss_delta >= n * 4096, "{} bytes", a.rss_delta);
    }

    #[test]
    fn yield_floor_runs_both_to_the_end_and_gives_a_time() {
        let ns = super::yield_now(1_000);
        assert!(ns.is_finite() && ns > 0.0);
        let ns = super::yield_nested(1_000);
        assert!(ns.is_finite() && ns > 0.0);
    }
}
