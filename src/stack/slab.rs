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
//! Guards are installed lazily, a batch of slots at a time, when the pool first needs a slot of the
//! batch (see [`advice`] for how: guard markers that leave the mapping whole, or `mprotect`).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::advice;
use super::registry;

/// Number of guard pages below every stack.
///
/// Rust code probes every page of a large frame (`-Z stack-probes` is on by default on the
/// architectures corosensei supports), so one page is enough to catch every overflow of Rust code.
pub(super) const GUARD_PAGES: usize = 1;

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

    /// Installs the guards of slots `first .. first + count`, in batches.
    ///
    /// # Errors
    ///
    /// The `madvise`/`mprotect` error of the first slot that failed (see
    /// [`advice::install_guards`]); the slots before it are guarded.
    ///
    /// # Safety
    ///
    /// None of the slots may be in use as a stack: a guard destroys the lowest page(s) of its slot.
    pub(super) unsafe fn install_guards(&self, first: usize, count: usize) -> io::Result<()> {
        debug_assert!(first + count <= self.slots);
        let mut ranges = [(0, 0); advice::BATCH];
        for start in (first..first + count).step_by(advice::BATCH) {
            let n = (first + count - start).min(advice::BATCH);
            for (i, range) in ranges[..n].iter_mut().enumerate() {
                *range = (self.slot_start(start + i), guard_len());
            }
            // SAFETY: every range is the guard page of a slot of this slab's private anonymous
            // mapping; the caller guarantees none of the slots is in use.
            unsafe { advice::install_guards(&ranges[..n]) }?;
            // The top page of every slot is where a coroutine's first frames go: fault them in
            // now, in one call, rather than one trap per greenlet.
            let page = page_size();
            for (i, range) in ranges[..n].iter_mut().enumerate() {
                *range = (self.slot_start(start + i) + self.slot_size - page, page);
            }
            // SAFETY: every range is the top page of a slot of this slab; populating it does not
            // change its contents.
            unsafe { advice::populate(&ranges[..n]) };
        }
        Ok(())
    }

    /// The address range of the usable parts of slots `first .. first + count` (with the guards
    /// between them), for [`advice::free`].
    pub(super) fn usable_range(&self, first: usize, count: usize) -> (usize, usize) {
        debug_assert!(count > 0 && first + count <= self.slots);
        let from = self.slot_start(first) + guard_len();
        let to = self.slot_start(first) + count * self.slot_size;
        (from, to - from)
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
