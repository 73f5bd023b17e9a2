//! Slabs: one anonymous mapping carved into many guarded stack slots.
//!
//! A slab is a single `mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)`
//! holding `slots` equal slots. Each slot is `[guard | usable stack]`, guard at the low end because
//! stacks grow down:
//!
//! ```text
//!  slab.start                                                         slab.start + slab.len
//!  | guard | usable (slot 0)   | guard | usable (slot 1)   | ...  | guard | usable (slot n-1) |
//!  ^ limit() of slot 0         ^ base() of slot 0 = limit() of slot 1
//! ```
//!
//! Guards are installed lazily, one slot at a time, when the pool first hands a slot out. On Linux
//! ≥ 6.13 that is `madvise(MADV_GUARD_INSTALL)`, which leaves the mapping whole; older kernels
//! answer `EINVAL`, and we fall back to `mprotect(PROT_NONE)`, which splits the mapping in three
//! (so at most about `vm.max_map_count / 2` guarded stacks fit in one process). The mode that
//! works is remembered for the whole process in one atomic.

use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::registry;

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13): install guard markers in page tables.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Number of guard pages below every stack.
///
/// Rust code probes every page of a large frame (`-Z stack-probes` is on by default on the
/// architectures corosensei supports), so one page is enough to catch every overflow of Rust code.
pub(super) const GUARD_PAGES: usize = 1;

/// Guard mode not yet determined (no guard installed so far in this process).
const MODE_UNKNOWN: u8 = 0;
/// `madvise(MADV_GUARD_INSTALL)` works: guards do not split mappings.
const MODE_MADVISE: u8 = 1;
/// The kernel lacks `MADV_GUARD_INSTALL`: guards are `mprotect(PROT_NONE)` and split mappings.
const MODE_MPROTECT: u8 = 2;

/// Which guard mechanism works in this process (`MODE_*`).
static GUARD_MODE: AtomicU8 = AtomicU8::new(MODE_UNKNOWN);

/// Cached `sysconf(_SC_PAGESIZE)`; 0 until first read.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The system page size in bytes.
pub(super) fn page_size() -> usize {
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096);
    PAGE_SIZE.store(size, Ordering::Relaxed);
    size
}

/// Bytes of guard below every stack.
pub(super) fn guard_len() -> usize {
    GUARD_PAGES * page_size()
}

/// Whether guards are installed with `MADV_GUARD_INSTALL` (so they do not split mappings).
///
/// Returns `None` until the first guard has been installed in this process.
#[cfg(test)]
pub(super) fn guards_split_mappings() -> Option<bool> {
    match GUARD_MODE.load(Ordering::Relaxed) {
        MODE_MADVISE => Some(false),
        MODE_MPROTECT => Some(true),
        _ => None,
    }
}

/// Unit tests can force the `mprotect` fallback (in a child process) to exercise it on a new
/// kernel: `GREENLET_TEST_GUARD_MODE=mprotect`.
#[cfg(test)]
fn initial_mode() -> u8 {
    match std::env::var("GREENLET_TEST_GUARD_MODE").as_deref() {
        Ok("mprotect") => MODE_MPROTECT,
        _ => MODE_UNKNOWN,
    }
}

/// Outside tests the mode is always discovered by asking the kernel.
#[cfg(not(test))]
fn initial_mode() -> u8 {
    MODE_UNKNOWN
}

/// One mapping carved into `slots` slots of `slot_size` bytes, each with a guard at its low end.
///
/// A `Slab` does not unmap itself on drop: slots may still be running code when the owning pool
/// goes away, so unmapping is the explicit, unsafe [`Slab::unmap`].
#[derive(Debug)]
pub(super) struct Slab {
    /// Start of the mapping (page aligned).
    start: usize,
    /// Number of slots.
    slots: usize,
    /// Size of one slot (guard + usable), a multiple of the page size.
    slot_size: usize,
    /// Index of this slab's entry in the overflow registry, if it got one.
    registry_entry: Option<usize>,
}

impl Slab {
    /// Maps a slab of `slots` slots of `slot_size` bytes each (guards not yet installed).
    ///
    /// # Errors
    ///
    /// The raw `mmap` error (the caller may retry smaller, then pass it through [`explain`]).
    pub(super) fn map(slot_size: usize, slots: usize) -> io::Result<Slab> {
        debug_assert!(
            slot_size.is_multiple_of(page_size()) && slot_size > guard_len() && slots > 0
        );
        let len = slot_size.checked_mul(slots).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "greenlet stacks: slab size overflows usize",
            )
        })?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing aliases no
        // existing Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = ptr as usize;
        // Transparent huge pages would turn a 4 KiB stack touch into a 2 MiB allocation shared
        // by ~30 stacks; opt the slab out. Failure only costs memory, so it is ignored.
        // SAFETY: `[start, start + len)` is the mapping created just above and owned by us.
        unsafe { libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE) };
        let registry_entry = registry::register(start, len, slot_size, guard_len());
        Ok(Slab {
            start,
            slots,
            slot_size,
            registry_entry,
        })
    }

    /// Number of slots in this slab.
    pub(super) fn slots(&self) -> usize {
        self.slots
    }

    /// Lowest address of slot `index`, i.e. of its guard (corosensei's `limit()`).
    pub(super) fn slot_start(&self, index: usize) -> usize {
        debug_assert!(index < self.slots);
        self.start + index * self.slot_size
    }

    /// Installs the guard of slot `index`. Called once per slot, before it is first handed out.
    ///
    /// # Errors
    ///
    /// The `madvise`/`mprotect` error; `ENOMEM` (the map count ran out while `mprotect` split the
    /// mapping) becomes an error that names `vm.max_map_count`.
    ///
    /// # Safety
    ///
    /// Slot `index` must not be in use as a stack: the guard destroys the lowest page(s) of it.
    pub(super) unsafe fn install_guard(&self, index: usize) -> io::Result<()> {
        // SAFETY: the guard range is page aligned and lies inside this slab's private anonymous
        // mapping; the caller guarantees the slot is not in use.
        unsafe { install_guard(self.slot_start(index), guard_len()) }
    }

    /// Returns the memory of the usable parts of slots `first .. first + count` to the OS with one
    /// `madvise(MADV_DONTNEED)`. The range spans the guards between the slots; guards survive
    /// `MADV_DONTNEED` (both guard markers and `PROT_NONE`), and the slots read as zero afterwards.
    ///
    /// # Safety
    ///
    /// No slot in the range may be in use as a stack (nothing may live in that memory).
    pub(super) unsafe fn discard(&self, first: usize, count: usize) {
        debug_assert!(count > 0 && first + count <= self.slots);
        let from = self.slot_start(first) + guard_len();
        let to = self.slot_start(first) + count * self.slot_size;
        // SAFETY: the range is inside our mapping; the caller guarantees no stack lives there.
        unsafe { discard_range(from, to - from) };
    }

    /// Unmaps the slab and removes it from the overflow registry.
    ///
    /// # Safety
    ///
    /// No slot of this slab may be in use as a stack, now or later.
    pub(super) unsafe fn unmap(self) {
        if let Some(entry) = self.registry_entry {
            registry::unregister(entry);
        }
        let len = self.slot_size * self.slots;
        // SAFETY: `[start, start + len)` is exactly the mapping created in `map`; the caller
        // guarantees nothing uses it any more.
        let ret = unsafe { libc::munmap(self.start as *mut libc::c_void, len) };
        debug_assert_eq!(ret, 0, "munmap failed: {}", io::Error::last_os_error());
    }
}

/// Returns the memory of `[addr, addr + len)` to the OS (`madvise(MADV_DONTNEED)`); the range
/// reads as zeroes afterwards and guards inside it stay in place.
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

/// Makes `[addr, addr + len)` a guard: any access faults with `SIGSEGV`.
///
/// Uses `MADV_GUARD_INSTALL`, or `mprotect(PROT_NONE)` once the kernel has answered `EINVAL`.
///
/// # Errors
///
/// The `madvise`/`mprotect` error; `ENOMEM` (the map count ran out while `mprotect` split the
/// mapping) becomes an error that names `vm.max_map_count`.
///
/// # Safety
///
/// The range must be page aligned, inside a private anonymous mapping owned by the caller, and
/// hold nothing that is still in use: its contents are lost.
pub(super) unsafe fn install_guard(addr: usize, len: usize) -> io::Result<()> {
    let addr = addr as *mut libc::c_void;
    let mut mode = GUARD_MODE.load(Ordering::Relaxed);
    if mode == MODE_UNKNOWN {
        mode = initial_mode();
        if mode != MODE_UNKNOWN {
            GUARD_MODE.store(mode, Ordering::Relaxed);
        }
    }
    if mode != MODE_MPROTECT {
        // SAFETY: the caller guarantees the range is ours and holds nothing in use.
        if unsafe { libc::madvise(addr, len, MADV_GUARD_INSTALL) } == 0 {
            if mode == MODE_UNKNOWN {
                GUARD_MODE.store(MODE_MADVISE, Ordering::Relaxed);
            }
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(explain("madvise(MADV_GUARD_INSTALL)", err));
        }
        // Kernel < 6.13 (or a locked mapping): fall back to mprotect from now on.
        GUARD_MODE.store(MODE_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above, the range is ours and holds nothing in use.
    if unsafe { libc::mprotect(addr, len, libc::PROT_NONE) } != 0 {
        return Err(explain("mprotect", io::Error::last_os_error()));
    }
    Ok(())
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
