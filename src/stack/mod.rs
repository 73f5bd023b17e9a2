//! Greenlet stacks. PLACEHOLDER INTERFACE (to be replaced by the slab allocator):
//! `acquire(size)` hands out a guarded stack from the per-thread pool; dropping a
//! `PooledStack` gives it back.

use std::io;

/// Default usable stack size of a greenlet, in bytes.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// A guarded stack owned by one greenlet; dropping it returns it to this thread's pool.
#[derive(Debug)]
pub(crate) struct PooledStack {
    inner: corosensei::stack::DefaultStack,
    size: usize,
}

impl PooledStack {
    /// Usable size in bytes (without the guard page).
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

// SAFETY: delegates to corosensei's DefaultStack, which has a guard page.
unsafe impl corosensei::stack::Stack for PooledStack {
    fn base(&self) -> corosensei::stack::StackPointer {
        self.inner.base()
    }
    fn limit(&self) -> corosensei::stack::StackPointer {
        self.inner.limit()
    }
}

/// Takes a stack of at least `size` usable bytes from this thread's pool.
pub(crate) fn acquire(size: usize) -> io::Result<PooledStack> {
    Ok(PooledStack { inner: corosensei::stack::DefaultStack::new(size)?, size })
}
