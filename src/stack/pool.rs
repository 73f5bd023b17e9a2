//! The per-thread stack pool: size classes, warm and cold free lists, slab growth and trimming.
//!
//! Each thread owns one [`Pool`] (a `thread_local!`, never shared). Stacks are grouped in size
//! classes by usable size (rounded up to pages). A class hands out, in order of preference:
//!
//! 1. a **warm** stack: freed recently, memory still resident (LIFO, so caches are hot);
//! 2. a **cold** stack: freed earlier, memory already returned to the OS, guard still in place;
//! 3. a **fresh** slot of the newest slab, guarding it first (one `madvise` per slot, paid only
//!    when a slot is first used);
//! 4. a fresh slot of a new slab. Slabs grow geometrically from [`FIRST_SLAB_SLOTS`] to
//!    [`MAX_SLAB_SLOTS`] slots, so a million 64 KiB stacks need about a thousand mappings.
//!
//! At most [`WARM_STACKS`] + [`TRIM_BATCH`] warm stacks are kept per class. When that many
//! accumulate, the [`TRIM_BATCH`] oldest are returned to the OS in one pass: sorted by address,
//! each run of neighbouring slots costs a single `madvise(MADV_DONTNEED)` (the guards between
//! them survive it), and they become cold. A slab whose slots are all free then is unmapped
//! outright, unless it is the newest one, which keeps its place for the next burst.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;

use super::slab::{self, Slab};

/// Warm (resident) free stacks kept per size class after a trim.
pub(super) const WARM_STACKS: usize = 64;

/// Warm stacks returned to the OS at once when a class holds `WARM_STACKS + TRIM_BATCH`.
pub(super) const TRIM_BATCH: usize = 32;

/// Slots in the first slab of a size class; each further slab doubles, up to `MAX_SLAB_SLOTS`.
pub(super) const FIRST_SLAB_SLOTS: usize = 16;

/// Most slots in one slab.
pub(super) const MAX_SLAB_SLOTS: usize = 1024;

/// Most bytes of address space in one slab (slabs of big stacks hold fewer slots).
#[cfg(target_pointer_width = "64")]
const MAX_SLAB_BYTES: usize = 256 << 20;
/// Most bytes of address space in one slab (slabs of big stacks hold fewer slots).
#[cfg(not(target_pointer_width = "64"))]
const MAX_SLAB_BYTES: usize = 16 << 20;

thread_local! {
    /// This thread's pool.
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { classes: Vec::new() }) };
}

/// Where a handed-out stack lives: size class, slab and slot within the slab.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    /// Index of the size class in the pool.
    class: u32,
    /// Index of the slab in its class.
    slab: u32,
    /// Index of the slot in its slab.
    index: u32,
}

/// Takes a slot with `usable` bytes of stack (a multiple of the page size) from this thread's
/// pool. Returns the slot and its start address (the guard's low end).
///
/// # Errors
///
/// Mapping a slab or installing a guard failed (see [`slab::explain`]), or the thread is exiting
/// and its pool is gone.
pub(super) fn acquire(usable: usize) -> io::Result<(Slot, usize)> {
    POOL.try_with(|pool| pool.borrow_mut().acquire(usable))
        .unwrap_or_else(|_| {
            Err(io::Error::other(
                "greenlet stacks: cannot allocate a stack while the thread is exiting",
            ))
        })
}

/// Makes this thread's pool exist, so that its thread-local destructor runs after those of
/// thread-locals first used later (the runtime's teardown, which gives every stack back).
pub(crate) fn touch() {
    let _ = POOL.try_with(|_| ());
}

/// Gives a slot back to this thread's pool.
///
/// # Safety
///
/// `slot` and `start` must come from one [`acquire`] on this thread, with `slot_size` the slot's
/// size, and the stack must no longer be in use; each slot is released once.
pub(super) unsafe fn release(slot: Slot, start: usize, slot_size: usize) {
    let released = POOL
        .try_with(|pool| match pool.try_borrow_mut() {
            Ok(mut pool) => {
                pool.release(slot);
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    if !released {
        #[cfg(test)]
        ORPHAN_RELEASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The pool is gone (this drop runs during thread-local destruction, after the pool's
        // own destructor) or busy. Return the memory to the OS and leak the slot's address
        // space: its slab was left mapped by `Pool::drop` because this slot was still live.
        let guard = slab::guard_len();
        // SAFETY: the caller guarantees the stack is no longer in use; the usable range lies in
        // a slab that is never unmapped while one of its slots is live.
        unsafe { slab::discard_range(start + guard, slot_size - guard) };
    }
}

/// The stacks of one thread.
#[derive(Debug)]
struct Pool {
    /// Size classes, in order of first use; indices are stable.
    classes: Vec<Class>,
}

impl Pool {
    /// Takes a slot of `usable` bytes, creating its size class on first use.
    fn acquire(&mut self, usable: usize) -> io::Result<(Slot, usize)> {
        let class = match self.classes.iter().position(|c| c.usable == usable) {
            Some(class) => class,
            None => {
                self.classes.push(Class::new(usable));
                self.classes.len() - 1
            }
        };
        let (slab, index, start) = self.classes[class].acquire()?;
        Ok((
            Slot {
                class: class as u32,
                slab,
                index,
            },
            start,
        ))
    }

    /// Takes back a slot.
    fn release(&mut self, slot: Slot) {
        self.classes[slot.class as usize].release(slot.slab, slot.index);
    }
}

impl Drop for Pool {
    /// Thread exit: unmaps every slab with no live stack. A slab with live stacks (greenlets
    /// still held by other thread-locals) stays mapped so they can finish unwinding; its free
    /// slots' memory is returned to the OS, and the live ones are discarded as they are dropped.
    fn drop(&mut self) {
        for class in &mut self.classes {
            for &(slab, index) in &class.warm {
                if let Some(state) = &class.slabs[slab as usize]
                    && state.live > 0
                {
                    // SAFETY: a warm slot is free; nothing lives in it.
                    unsafe { state.slab.discard(index as usize, 1) };
                }
            }
            for state in class.slabs.drain(..).flatten() {
                if state.live == 0 {
                    // SAFETY: no slot of this slab is in use, and the pool that could hand one
                    // out again is being destroyed.
                    unsafe { state.slab.unmap() };
                }
                // Otherwise the `Slab` is dropped without unmapping: the mapping is leaked on
                // purpose (see above) and stays in the overflow registry.
            }
        }
    }
}

/// Bookkeeping of one slab.
#[derive(Debug)]
struct SlabState {
    /// The mapping.
    slab: Slab,
    /// Slots `0 .. handed_out` have been handed out at least once (and are guarded).
    handed_out: usize,
    /// Slots currently in use as stacks.
    live: usize,
    /// Slots of this slab in the class's warm list.
    warm: usize,
    /// Free slots whose memory was returned to the OS (LIFO).
    cold: Vec<u32>,
}

/// All stacks of one usable size.
///
/// Invariants: every slab except `fresh` has handed out all its slots; a slab id is in
/// `cold_slabs` exactly when its `cold` list is non-empty; for each slab,
/// `handed_out == live + warm + cold.len()`.
#[derive(Debug)]
struct Class {
    /// Usable bytes per stack.
    usable: usize,
    /// Guard + usable bytes per slot.
    slot_size: usize,
    /// Slabs by id; `None` marks an unmapped slab whose id is in `free_ids`.
    slabs: Vec<Option<SlabState>>,
    /// Ids of unmapped slabs, for reuse.
    free_ids: Vec<u32>,
    /// Warm free slots `(slab, index)`: newest at the back (handed out first), oldest at the
    /// front (trimmed first).
    warm: VecDeque<(u32, u32)>,
    /// Ids of slabs with cold slots.
    cold_slabs: Vec<u32>,
    /// The slab that still has never-used slots.
    fresh: Option<u32>,
    /// Slots in the next slab to map.
    next_slots: usize,
    /// Upper bound of `next_slots` for this class.
    max_slots: usize,
}

impl Class {
    /// An empty class of `usable`-byte stacks.
    fn new(usable: usize) -> Class {
        let slot_size = usable + slab::guard_len();
        let max_slots = (MAX_SLAB_BYTES / slot_size).clamp(1, MAX_SLAB_SLOTS);
        Class {
            usable,
            slot_size,
            slabs: Vec::new(),
            free_ids: Vec::new(),
            warm: VecDeque::new(),
            cold_slabs: Vec::new(),
            fresh: None,
            next_slots: FIRST_SLAB_SLOTS.min(max_slots),
            max_slots,
        }
    }

    /// The live slab with id `slab`.
    fn state(&mut self, slab: u32) -> &mut SlabState {
        self.slabs[slab as usize]
            .as_mut()
            .expect("greenlet stacks: slot of an unmapped slab")
    }

    /// Hands out a slot: warm, else cold, else fresh (mapping a slab if needed).
    /// Returns `(slab id, slot index, slot start)`.
    fn acquire(&mut self) -> io::Result<(u32, u32, usize)> {
        if let Some((slab, index)) = self.warm.pop_back() {
            let state = self.state(slab);
            state.warm -= 1;
            state.live += 1;
            return Ok((slab, index, state.slab.slot_start(index as usize)));
        }
        if let Some(&slab) = self.cold_slabs.last() {
            let state = self.state(slab);
            let index = state
                .cold
                .pop()
                .expect("greenlet stacks: cold slab without cold slots");
            state.live += 1;
            let start = state.slab.slot_start(index as usize);
            if state.cold.is_empty() {
                self.cold_slabs.pop();
            }
            return Ok((slab, index, start));
        }
        let slab = match self.fresh {
            Some(slab) => slab,
            None => self.grow()?,
        };
        let state = self.state(slab);
        let index = state.handed_out;
        // SAFETY: slots at and above `handed_out` have never been handed out: nothing uses them.
        unsafe { state.slab.install_guard(index)? };
        state.handed_out += 1;
        state.live += 1;
        let start = state.slab.slot_start(index);
        if state.handed_out == state.slab.slots() {
            self.fresh = None;
        }
        Ok((slab, index as u32, start))
    }

    /// Maps a new slab (halving its size on `ENOMEM` down to one slot) and makes it `fresh`.
    fn grow(&mut self) -> io::Result<u32> {
        let mut slots = self.next_slots;
        let slab = loop {
            match Slab::map(self.slot_size, slots) {
                Ok(slab) => break slab,
                Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && slots > 1 => slots /= 2,
                Err(err) => return Err(slab::explain("mmap", err)),
            }
        };
        self.next_slots = (slots * 2).min(self.max_slots);
        let state = SlabState {
            slab,
            handed_out: 0,
            live: 0,
            warm: 0,
            cold: Vec::new(),
        };
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.slabs[id as usize] = Some(state);
                id
            }
            None => {
                self.slabs.push(Some(state));
                (self.slabs.len() - 1) as u32
            }
        };
        self.fresh = Some(id);
        Ok(id)
    }

    /// Takes back a slot as warm; trims the oldest warm slots when there are too many.
    fn release(&mut self, slab: u32, index: u32) {
        let state = self.state(slab);
        state.live -= 1;
        state.warm += 1;
        self.warm.push_back((slab, index));
        if self.warm.len() >= WARM_STACKS + TRIM_BATCH {
            self.trim();
        }
    }

    /// Returns the memory of the `TRIM_BATCH` oldest warm slots to the OS; unmaps slabs that end
    /// up with every slot free (except the fresh slab).
    fn trim(&mut self) {
        let mut batch = [(0u32, 0u32); TRIM_BATCH];
        for entry in &mut batch {
            *entry = self
                .warm
                .pop_front()
                .expect("greenlet stacks: trim without warm slots");
        }
        batch.sort_unstable();
        for group in batch.chunk_by(|a, b| a.0 == b.0) {
            let slab = group[0].0;
            let fresh = self.fresh == Some(slab);
            let state = self.state(slab);
            state.warm -= group.len();
            if state.live == 0 && state.warm == 0 && !fresh {
                let had_cold = !state.cold.is_empty();
                let state = self.slabs[slab as usize].take().expect("checked above");
                if had_cold {
                    self.cold_slabs.retain(|&s| s != slab);
                }
                // SAFETY: every slot of the slab has been handed out (it is not the fresh slab)
                // and none is live or warm, so all are cold or in this batch: none is in use, and
                // the slab is gone from every free list.
                unsafe { state.slab.unmap() };
                self.free_ids.push(slab);
                continue;
            }
            for run in group.chunk_by(|a, b| b.1 == a.1 + 1) {
                // SAFETY: these slots were warm, i.e. free; nothing lives in them.
                unsafe { state.slab.discard(run[0].1 as usize, run.len()) };
            }
            let was_empty = state.cold.is_empty();
            state.cold.extend(group.iter().map(|&(_, index)| index));
            if was_empty {
                self.cold_slabs.push(slab);
            }
        }
    }
}

/// Number of stacks released after their pool was destroyed, for tests.
#[cfg(test)]
pub(super) static ORPHAN_RELEASES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Per-thread pool statistics, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stats {
    /// Mapped slabs of the class.
    pub(super) slabs: usize,
    /// Warm free stacks.
    pub(super) warm: usize,
    /// Cold free stacks.
    pub(super) cold: usize,
    /// Live stacks.
    pub(super) live: usize,
}

/// Statistics of this thread's size class of `usable`-byte stacks (all zero if it does not exist).
#[cfg(test)]
pub(super) fn stats(usable: usize) -> Stats {
    POOL.with(|pool| {
        let pool = pool.borrow();
        let mut stats = Stats {
            slabs: 0,
            warm: 0,
            cold: 0,
            live: 0,
        };
        if let Some(class) = pool.classes.iter().find(|c| c.usable == usable) {
            for state in class.slabs.iter().flatten() {
                stats.slabs += 1;
                stats.warm += state.warm;
                stats.cold += state.cold.len();
                stats.live += state.live;
            }
            assert_eq!(stats.warm, class.warm.len());
        }
        stats
    })
}
