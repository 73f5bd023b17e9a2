//! Memory advice for stack slots, batched: guards, lazy and eager frees.
//!
//! Every stack slot needs a guard when it is first handed out, and trimmed slots give their memory
//! back. One `madvise` per slot costs a system call (and, for frees, a TLB flush) per slot, which
//! was most of the kernel time of a pool under churn. Here the ranges of one operation go to the
//! kernel in one `process_madvise(PIDFD_SELF, ...)` call of up to [`BATCH`] ranges (Linux 6.13 lets
//! a process give itself any advice this way; the `PIDFD_SELF` sentinel needs no descriptor, so
//! nothing leaks into a forked child). Kernels without it answer `EBADF`/`ENOSYS`/`EPERM` once and
//! every later call goes range by range, as does any call the kernel refuses part-way (advice is
//! idempotent, so ranges done twice are harmless).
//!
//! - Guards are `MADV_GUARD_INSTALL` markers (Linux 6.13), which do not split the mapping; older
//!   kernels answer `EINVAL` and guards fall back to `mprotect(PROT_NONE)` from then on, which
//!   splits it in three (so at most about `vm.max_map_count / 2` guarded stacks fit in a process).
//! - Trimmed stacks are freed lazily with `MADV_FREE` (Linux 4.5): the pages stay mapped until the
//!   kernel needs memory, so a stack reused soon costs no page fault, while the kernel may still
//!   take them at any time. They count in the process's RSS until it does, so the pool bounds how
//!   many it keeps that way and frees the rest eagerly with `MADV_DONTNEED`.
//!
//! Guards survive both frees. The modes that work are remembered for the whole process in atomics.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13): install guard markers in page tables.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// `MADV_POPULATE_WRITE` from `<linux/mman.h>` (Linux 5.14): fault pages in, writable.
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// `PIDFD_SELF_PROCESS` from `<linux/pidfd.h>`: a pidfd sentinel naming the calling process.
const PIDFD_SELF_PROCESS: libc::c_long = -10001;

/// Most ranges given to the kernel in one call. The `iovec` array lives on the caller's stack,
/// which may be a greenlet's: 64 ranges are 1 KiB. Past a few dozen ranges the per-call cost is
/// already small next to the per-range work.
pub(super) const BATCH: usize = 64;

/// A mode not yet determined.
const UNKNOWN: u8 = 0;
/// The first choice works (batched calls; guard markers; lazy frees).
const YES: u8 = 1;
/// The kernel lacks it: use the fallback.
const NO: u8 = 2;

/// Whether `process_madvise(PIDFD_SELF)` works.
static BATCHING: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether guards are `MADV_GUARD_INSTALL` markers (`YES`) or `mprotect` (`NO`).
static GUARD_MARKERS: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether `MADV_FREE` works (`NO`: trims use `MADV_DONTNEED`).
static LAZY_FREE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether batched `MADV_POPULATE_WRITE` works (`NO`: pages are faulted in as they are used).
static POPULATE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether guards are installed with `MADV_GUARD_INSTALL` (so they do not split mappings).
///
/// Returns `None` until the first guard has been installed in this process.
#[cfg(test)]
pub(super) fn guards_split_mappings() -> Option<bool> {
    match GUARD_MARKERS.load(Ordering::Relaxed) {
        YES => Some(false),
        NO => Some(true),
        _ => None,
    }
}

/// Unit tests can force the fallbacks (in a child process) to exercise them on a new kernel:
/// `GREENLET_TEST_GUARD_MODE=mprotect` and `GREENLET_TEST_ADVICE=unbatched,dontneed`.
#[cfg(test)]
fn forced(mode: &AtomicU8, var: &str, value: &str) {
    if mode.load(Ordering::Relaxed) == UNKNOWN
        && std::env::var(var).is_ok_and(|v| v.split(',').any(|v| v == value))
    {
        mode.store(NO, Ordering::Relaxed);
    }
}

/// Outside tests every mode is found by asking the kernel.
#[cfg(not(test))]
fn forced(_: &AtomicU8, _: &str, _: &str) {}

/// Makes every range a guard: any access faults with `SIGSEGV`.
///
/// # Errors
///
/// The `madvise`/`mprotect` error of the first range that failed (the ranges before it are guards
/// now); `ENOMEM` (the map count ran out while `mprotect` split the mapping) becomes an error that
/// names `vm.max_map_count`.
///
/// # Safety
///
/// Every range must be page aligned, inside a private anonymous mapping owned by the caller, and
/// hold nothing that is still in use: its contents are lost.
pub(super) unsafe fn install_guards(ranges: &[(usize, usize)]) -> io::Result<()> {
    forced(&GUARD_MARKERS, "GREENLET_TEST_GUARD_MODE", "mprotect");
    let mut done = 0;
    if GUARD_MARKERS.load(Ordering::Relaxed) != NO {
        // SAFETY: the caller's guarantee, passed on.
        done = unsafe { advise_batched(ranges, MADV_GUARD_INSTALL) };
        if done == ranges.len() {
            GUARD_MARKERS.store(YES, Ordering::Relaxed);
            return Ok(());
        }
    }
    for &(addr, len) in &ranges[done..] {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { install_guard(addr, len) }?;
    }
    Ok(())
}

/// Makes `[addr, addr + len)` a guard, with a marker or, once the kernel has refused markers,
/// with `mprotect`.
///
/// # Safety
///
/// As for [`install_guards`].
unsafe fn install_guard(addr: usize, len: usize) -> io::Result<()> {
    let ptr = addr as *mut libc::c_void;
    if GUARD_MARKERS.load(Ordering::Relaxed) != NO {
        // SAFETY: the caller guarantees the range is ours and holds nothing in use.
        if unsafe { libc::madvise(ptr, len, MADV_GUARD_INSTALL) } == 0 {
            GUARD_MARKERS.store(YES, Ordering::Relaxed);
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(explain("madvise(MADV_GUARD_INSTALL)", err));
        }
        // Kernel < 6.13 (or a locked mapping): fall back to mprotect from now on.
        GUARD_MARKERS.store(NO, Ordering::Relaxed);
    }
    // SAFETY: as above, the range is ours and holds nothing in use.
    if unsafe { libc::mprotect(ptr, len, libc::PROT_NONE) } != 0 {
        return Err(explain("mprotect", io::Error::last_os_error()));
    }
    Ok(())
}

/// Faults in the pages of the ranges ahead of use (`MADV_POPULATE_WRITE`, Linux 5.14), in batched
/// calls only: one fault per page costs about as much as one system call per page, so without
/// batching (or without the advice) this does nothing. A hint: errors are ignored.
///
/// # Safety
///
/// Every range must be page aligned and inside a private anonymous writable mapping owned by the
/// caller (its contents do not change).
pub(super) unsafe fn populate(ranges: &[(usize, usize)]) {
    forced(&POPULATE, "GREENLET_TEST_ADVICE", "nopopulate");
    if ranges.len() < 2 || POPULATE.load(Ordering::Relaxed) == NO {
        return;
    }
    // SAFETY: the caller's guarantee, passed on; populating does not change memory contents.
    let done = unsafe { advise_batched(ranges, MADV_POPULATE_WRITE) };
    if done == ranges.len() {
        POPULATE.store(YES, Ordering::Relaxed);
    } else if done == 0 && POPULATE.load(Ordering::Relaxed) == UNKNOWN {
        // Unbatched, unsupported (Linux < 5.14) or refused: fault pages in as they are used.
        POPULATE.store(NO, Ordering::Relaxed);
    }
}

/// Whether [`populate`] faults pages in; `None` until it has been tried.
#[cfg(test)]
pub(super) fn populates() -> Option<bool> {
    match POPULATE.load(Ordering::Relaxed) {
        YES => Some(true),
        NO => Some(false),
        _ => None,
    }
}

/// How the memory of trimmed stacks goes back to the OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Free {
    /// `MADV_FREE`: the kernel takes the pages when it needs memory; until then they stay mapped
    /// (a reuse costs no fault) and count in RSS. Falls back to `Eager` on kernels without it.
    Lazy,
    /// `MADV_DONTNEED`: the pages go at once; the next touch faults in a zeroed page.
    Eager,
}

/// Returns the memory of every range to the OS, `how` says when. Guards inside the ranges stay.
/// Returns how it was done (`Eager` when `Lazy` is not supported).
///
/// # Safety
///
/// Every range must be page aligned, inside a private anonymous mapping owned by the caller, and
/// hold nothing that is still in use.
pub(super) unsafe fn free(ranges: &[(usize, usize)], how: Free) -> Free {
    forced(&LAZY_FREE, "GREENLET_TEST_ADVICE", "dontneed");
    if how == Free::Lazy && LAZY_FREE.load(Ordering::Relaxed) != NO {
        // SAFETY: the caller's guarantee, passed on.
        let done = unsafe { advise_batched(ranges, libc::MADV_FREE) };
        let mut lazy = true;
        for &(addr, len) in &ranges[done..] {
            // SAFETY: as above.
            if unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_FREE) } != 0 {
                lazy = false;
                break;
            }
        }
        if lazy {
            LAZY_FREE.store(YES, Ordering::Relaxed);
            return Free::Lazy;
        }
        // Kernel < 4.5 (or a locked mapping): free eagerly from now on. Ranges already freed
        // lazily are freed again, which is harmless.
        LAZY_FREE.store(NO, Ordering::Relaxed);
    }
    // SAFETY: the caller's guarantee, passed on.
    let done = unsafe { advise_batched(ranges, libc::MADV_DONTNEED) };
    for &(addr, len) in &ranges[done..] {
        // SAFETY: as above.
        unsafe { discard_range(addr, len) };
    }
    Free::Eager
}

/// Returns the memory of `[addr, addr + len)` to the OS at once (`madvise(MADV_DONTNEED)`); the
/// range reads as zeroes afterwards and guards inside it stay in place.
///
/// # Safety
///
/// The range must be page aligned, inside a private anonymous mapping owned by the caller, and
/// hold nothing that is still in use.
pub(super) unsafe fn discard_range(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is ours and holds nothing in use.
    let ret = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    debug_assert_eq!(
        ret,
        0,
        "madvise(MADV_DONTNEED) failed: {}",
        io::Error::last_os_error()
    );
}

/// Gives `advice` for the ranges with as few `process_madvise` calls as possible. Returns how many
/// ranges (from the first) are done for sure; the caller does the rest one by one (after a
/// refusal, or always once the kernel has shown it cannot batch).
///
/// # Safety
///
/// Every range must be page aligned, inside a private anonymous mapping owned by the caller, and
/// fit for `advice` (for destructive advice: hold nothing in use).
unsafe fn advise_batched(ranges: &[(usize, usize)], advice: libc::c_int) -> usize {
    forced(&BATCHING, "GREENLET_TEST_ADVICE", "unbatched");
    if ranges.len() < 2 || BATCHING.load(Ordering::Relaxed) == NO {
        return 0;
    }
    let mut done = 0;
    for chunk in ranges.chunks(BATCH) {
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        for (slot, &(addr, len)) in iov.iter_mut().zip(chunk) {
            *slot = libc::iovec {
                iov_base: addr as *mut libc::c_void,
                iov_len: len,
            };
        }
        let want: usize = chunk.iter().map(|&(_, len)| len).sum();
        // SAFETY: the iovecs describe `chunk.len()` ranges that the caller guarantees are ours and
        // fit for `advice`; the kernel only reads the array.
        let got = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                PIDFD_SELF_PROCESS,
                iov.as_ptr(),
                chunk.len(),
                advice,
                0,
            )
        };
        if got >= 0 && got as usize == want {
            BATCHING.store(YES, Ordering::Relaxed);
            done += chunk.len();
            continue;
        }
        if got < 0 {
            let errno = io::Error::last_os_error().raw_os_error();
            if matches!(errno, Some(libc::EBADF | libc::ENOSYS | libc::EPERM))
                && BATCHING.load(Ordering::Relaxed) == UNKNOWN
            {
                // No PIDFD_SELF (Linux < 6.15), no process_madvise, or a sandbox that forbids it.
                BATCHING.store(NO, Ordering::Relaxed);
            }
        }
        // Refused, or done part-way: the caller redoes this chunk range by range.
        break;
    }
    done
}

/// Wraps the OS error `err` of `op` for the user: `ENOMEM` names the mapping limit and how to
/// raise it.
pub(super) fn explain(op: &str, err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::ENOMEM) {
        let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let maps = std::fs::read("/proc/self/maps")
            .map(|m| m.iter().filter(|&&b| b == b'\n').count().to_string())
            .unwrap_or_else(|_| "unknown".to_owned());
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "greenlet stacks: {op} failed (ENOMEM): the process hit vm.max_map_count \
                 (currently {max}, read /proc/sys/vm/max_map_count; the process has {maps} mappings) \
                 or the address-space limit; raise it with `sysctl -w vm.max_map_count=...` or use \
                 Linux >= 6.13 where guard pages do not split mappings"
            ),
        )
    } else {
        io::Error::new(err.kind(), format!("greenlet stacks: {op} failed: {err}"))
    }
}
