//! Greenlet stacks: guarded stacks carved out of large slabs, pooled per thread.
//!
//! Every greenlet runs on its own stack. Mapping each stack separately, with an `mprotect`ed
//! guard page, costs two kernel mappings per stack, and Linux allows 65530 mappings per process
//! by default (`vm.max_map_count`): such runtimes stop near 32k live coroutines. Here:
//!
//! - [`slab`]: stacks are slots of large `MAP_NORESERVE` mappings (slabs), each slot a guard page
//!   below the usable stack, so a million greenlets need about a thousand mappings.
//! - [`advice`]: what the pool asks of the kernel, batched into one `process_madvise` call per
//!   operation where the kernel allows: guards as `MADV_GUARD_INSTALL` markers (Linux ≥ 6.13),
//!   which do not split the mapping (older kernels fall back to `mprotect`, and running out of
//!   mappings is reported with an error that says which limit was hit and how to raise it);
//!   trimmed stacks freed lazily (`MADV_FREE`) or at once (`MADV_DONTNEED`).
//! - [`pool`]: each thread keeps its stacks in a pool of size classes; freed stacks are reused
//!   warm (LIFO), then trimmed ones, then fresh slots; what it keeps is bounded, and empty slabs
//!   beyond a few spares are unmapped. On a thread with a hub, what a burst leaves beyond the
//!   bounds stays resident and guarded and is given back over seconds (time decay, stepped by
//!   the hub's idle turns), so the next burst reuses warm stacks.
//! - [`overflow`]: a `SIGSEGV` handler recognises a fault in a guard page and aborts with one
//!   line naming the greenlet and its stack size, instead of a bare segmentation fault.
//! - [`registry`]: the process-wide, lock-free list of slabs the handler consults.
//!
//! A [`PooledStack`] implements corosensei's [`Stack`], so a coroutine
//! runs on it directly; dropping it returns the stack to the pool of its thread.

mod advice;
mod overflow;
mod pool;
mod registry;
mod slab;
#[cfg(test)]
mod tests;
mod valgrind;

use std::io;
use std::marker::PhantomData;

use corosensei::stack::valgrind::ValgrindStackRegistration;
use corosensei::stack::{MIN_STACK_SIZE, Stack, StackPointer};

pub(crate) use overflow::install_overflow_handler;
pub(crate) use pool::touch as touch_pool;
pub(crate) use pool::{
    decay_if_due as decay_stacks_if_due, next_decay as next_stack_decay,
    set_decay_driven as set_stack_decay_driven,
};

/// Default usable stack size of a greenlet, in bytes.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// A guarded stack owned by one greenlet; dropping it returns it to this thread's pool.
///
/// `!Send`: the stack belongs to the pool of the thread that acquired it.
#[derive(Debug)]
pub(crate) struct PooledStack {
    /// Lowest address of the slot, guard included (corosensei's `limit`).
    limit: StackPointer,
    /// Highest address of the usable stack (corosensei's `base`).
    base: StackPointer,
    /// Where the slot lives in the pool.
    slot: pool::Slot,
    /// Tells Valgrind (if running under it) that this range is a stack; a no-op otherwise.
    _valgrind: ValgrindStackRegistration,
    /// Makes the type `!Send` and `!Sync`.
    _not_send: PhantomData<*const ()>,
}

impl PooledStack {
    /// Usable size in bytes (without the guard page).
    pub(crate) fn size(&self) -> usize {
        self.base.get() - self.limit.get() - slab::guard_len()
    }
}

// SAFETY: `[limit, limit + guard)` is a guard (every access faults) for as long as the slot
// exists: guards are installed before a slot is first handed out and survive `MADV_FREE` and
// `MADV_DONTNEED`, and the slab is not unmapped while the slot is live. The usable part is at least
// MIN_STACK_SIZE bytes (`acquire` rounds up), and both ends are page aligned, hence aligned to
// STACK_ALIGNMENT.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        self.limit
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        let slot_size = self.base.get() - self.limit.get();
        // SAFETY: the slot came from `pool::acquire` on this thread (the type is `!Send`), is
        // released exactly once (here), and the coroutine that ran on it is gone: corosensei
        // drops the stack only after the coroutine has finished or been unwound.
        unsafe { pool::release(self.slot, self.limit.get(), slot_size) };
    }
}

/// Takes a stack of at least `size` usable bytes from this thread's pool.
///
/// The size is rounded up to whole pages and to at least corosensei's `MIN_STACK_SIZE`.
///
/// # Errors
///
/// `InvalidInput` if the size is absurdly large; otherwise the OS error of mapping a slab or
/// installing a guard. Running out of mappings (`ENOMEM`) gives an `OutOfMemory` error whose
/// message names `vm.max_map_count` and how to raise it.
pub(crate) fn acquire(size: usize) -> io::Result<PooledStack> {
    let usable = usable_size(size)?;
    let (slot, start) = pool::acquire(usable)?;
    let slot_size = usable + slab::guard_len();
    let limit = StackPointer::new(start).expect("greenlet stacks: slot at address 0");
    let base = StackPointer::new(start + slot_size).expect("greenlet stacks: slot wraps around");
    valgrind::mark_undefined(start + slab::guard_len(), usable);
    Ok(PooledStack {
        limit,
        base,
        slot,
        _valgrind: ValgrindStackRegistration::new(start as *mut u8, slot_size),
        _not_send: PhantomData,
    })
}

/// The usable size of the size class serving a request for `size` bytes.
fn usable_size(size: usize) -> io::Result<usize> {
    size.max(MIN_STACK_SIZE)
        .checked_next_multiple_of(slab::page_size())
        .filter(|&usable| usable <= isize::MAX as usize / 4)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("greenlet stacks: stack size {size} is too large"),
            )
        })
}
