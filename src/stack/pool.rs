//! The per-thread stack pool: size classes, free tiers, slab growth, and what is given back when.
//!
//! Each thread owns one [`Pool`] (a `thread_local!`, never shared). Stacks are grouped in size
//! classes by usable size (rounded up to pages). A class hands out, in order of preference:
//!
//! 1. a **warm** stack: freed recently, memory resident, reused LIFO so caches are hot. Taking or
//!    giving back a warm stack touches neither the kernel nor the slab's bookkeeping.
//! 2. a **trimmed** stack: freed earlier and moved off the warm list to its slab's free list.
//!    Its memory is still resident (*parked*), freed lazily (`MADV_FREE`: the pages stay until
//!    the kernel needs memory, so a reuse costs no fault unless it took them) or freed eagerly
//!    (`MADV_DONTNEED`); its guard is in place either way.
//! 3. a **fresh** slot of the newest slab. Guards are installed, and the top pages (where a
//!    coroutine's first frames go) faulted in, [`advice::BATCH`] slots at a time with one system
//!    call each, when the first slot of a batch is needed.
//! 4. a fresh slot of a new slab. Slabs grow geometrically from [`FIRST_SLAB_SLOTS`] to
//!    [`MAX_SLAB_SLOTS`] slots, so a million 64 KiB stacks need about a thousand mappings.
//!
//! What is kept, and what goes back (all counts per size class). Beyond the warm list, the pool
//! keeps at most about as many free stacks of each kind as there are live ones (hysteresis, so a
//! pool that shrinks a little keeps its stacks), and a constant once few are live. *When* the
//! rest goes back depends on whether the thread has a hub:
//!
//! - With a hub (every thread that spawns), what a burst leaves stays resident and guarded, and
//!   [`decay`] gives the excess over these bounds back over the following seconds: a quarter of
//!   it every quarter second, the slabs trimmed longest ago first, lazily freed one step and
//!   unmapped a later one. A second burst soon after the first reuses its stacks with no fault and
//!   no system call, where giving them back at once cost a fault and a guard per greenlet again.
//! - Without one (greenlets switched to explicitly, nothing to drive a decay), the bounds apply
//!   as a trim finds them exceeded, as follows.
//!
//! - At most [`WARM_STACKS`] + [`TRIM_BATCH`] warm stacks. Past that the [`TRIM_BATCH`] oldest are
//!   trimmed: parked on their slabs' free lists, no system call.
//! - A slab left with no live or warm stack is kept mapped, guards installed, while the slots of
//!   such empty slabs number at most [`SPARE_SLOTS`]; its memory is freed at once (one
//!   `MADV_DONTNEED`, the slots being neighbours). The next burst reuses it instead of mapping a
//!   slab and installing guards again. Past that bound an empty slab is unmapped, which returns
//!   its memory and page tables at once. The slab that still has never-used slots is always kept.
//!   So a burst that ends in the order it started gives its slabs back whole, with no system call
//!   per slot.
//! - Parked stacks beyond the live ones or [`PARKED_STACKS`], whichever is more, are freed (down to
//!   half of that), those of the slabs trimmed longest ago first, neighbouring slots as one range
//!   and up to [`advice::BATCH`] ranges per system call: lazily while the lazily freed stacks
//!   number at most the live ones or [`LAZY_STACKS`], whichever is more, else eagerly. As the live
//!   stacks shrink, lazily freed ones beyond that bound are freed again, eagerly: their pages
//!   count in RSS until the kernel takes them.
//!
//! So a thread that once ran a million greenlets and now runs none keeps, per size class, at most
//! `WARM_STACKS + TRIM_BATCH` warm and `PARKED_STACKS` parked stacks resident, `LAZY_STACKS`
//! lazily freed ones, and `SPARE_SLOTS` slots of address space (page tables and guards): at once
//! without a hub, after the decay (a few seconds: 13 steps for 20,000 stacks) with one. Counts
//! are of stacks: each holds the pages it touched, one for a shallow greenlet, up to its size. A
//! thread that leaves its hub right after a burst and then neither spawns nor blocks on the hub
//! holds the burst's stacks until it does, or until it exits (which gives everything back).

use std::cell::RefCell;
use std::io;

#[cfg(test)]
pub(super) use decay::{DECAY_PERIOD, set_test_clock};
pub(crate) use decay::{decay_if_due, next_decay, set_decay_driven};

use super::advice::{self, Free};
use super::slab::{self, Slab};

mod decay;

/// Warm (resident) free stacks kept per size class after a trim.
pub(super) const WARM_STACKS: usize = 256;

/// Warm stacks trimmed at once when a class holds `WARM_STACKS + TRIM_BATCH`.
pub(super) const TRIM_BATCH: usize = 64;

/// Parked (trimmed but resident) stacks a class may hold even when fewer stacks are live.
pub(super) const PARKED_STACKS: usize = 256;

/// Lazily freed stacks a class may hold even when fewer stacks are live.
pub(super) const LAZY_STACKS: usize = 1024;

/// Slots of empty slabs a class keeps mapped for the next burst.
pub(super) const SPARE_SLOTS: usize = 8192;

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

/// Marks an entry of [`SlabState::trimmed`] whose memory is still resident.
const PARKED: u32 = 1 << 31;

/// Marks an entry of [`SlabState::trimmed`] whose memory was freed lazily.
const LAZY: u32 = 1 << 30;

/// The slot index in an entry of [`SlabState::trimmed`] (the rest are the tags above).
const INDEX: u32 = LAZY - 1;

thread_local! {
    /// This thread's pool.
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            classes: Vec::new(),
            decay: decay::Decay::new(),
        })
    };
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
/// Mapping a slab or installing a guard failed (see [`advice::explain`]), or the thread is
/// exiting and its pool is gone.
#[inline]
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
#[inline]
pub(super) unsafe fn release(slot: Slot, start: usize, slot_size: usize) {
    let released = POOL
        .try_with(|pool| match pool.try_borrow_mut() {
            Ok(mut pool) => {
                pool.release(
                    slot.class as usize,
                    Warm {
                        start,
                        slab: slot.slab,
                        index: slot.index,
                    },
                );
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
        unsafe { advice::discard_range(start + guard, slot_size - guard) };
    }
}

/// The stacks of one thread.
#[derive(Debug)]
struct Pool {
    /// Size classes, in order of first use; indices are stable.
    classes: Vec<Class>,
    /// Who gives back what a burst left, and when the next step is due.
    decay: decay::Decay,
}

impl Pool {
    /// Takes a slot of `usable` bytes, creating its size class on first use.
    #[inline]
    fn acquire(&mut self, usable: usize) -> io::Result<(Slot, usize)> {
        let class = match self.classes.iter().position(|c| c.usable == usable) {
            Some(class) => class,
            None => {
                self.classes.push(Class::new(usable));
                self.classes.len() - 1
            }
        };
        let warm = self.classes[class].acquire()?;
        Ok((
            Slot {
                class: class as u32,
                slab: warm.slab,
                index: warm.index,
            },
            warm.start,
        ))
    }

    /// Takes back a slot of class `class` as warm; trims the oldest warm slots when there are too
    /// many.
    #[inline]
    fn release(&mut self, class: usize, warm: Warm) {
        let list = &mut self.classes[class].warm;
        list.push(warm);
        if list.len() >= WARM_STACKS + TRIM_BATCH {
            self.trim(class);
        }
    }

    /// Trims class `class`. With decay driven (by the hub), what the trim leaves beyond the idle
    /// bounds stays resident and guarded, and is given back by later decay steps; otherwise the
    /// bounds apply at once.
    #[cold]
    fn trim(&mut self, class: usize) {
        let keep = self.decay.driven();
        self.classes[class].trim(keep);
        if keep {
            self.after_trim();
        }
    }
}

impl Drop for Pool {
    /// Thread exit: unmaps every slab with no live stack. A slab with live stacks (greenlets
    /// still held by other thread-locals) stays mapped so they can finish unwinding; the memory of
    /// its free slots is returned to the OS now, and that of the live ones as they are dropped.
    fn drop(&mut self) {
        for class in &mut self.classes {
            let mut warm_in = vec![0usize; class.slabs.len()];
            for w in &class.warm {
                warm_in[w.slab as usize] += 1;
            }
            for (id, state) in class.slabs.iter_mut().enumerate() {
                let Some(state) = state.take() else { continue };
                if state.busy == warm_in[id] {
                    // SAFETY: no slot of this slab is in use (every handed-out slot is warm or
                    // trimmed), and the pool that could hand one out again is being destroyed.
                    unsafe { state.slab.unmap() };
                    continue;
                }
                let mut ranges: Vec<(usize, usize)> = class
                    .warm
                    .iter()
                    .filter(|w| w.slab as usize == id)
                    .map(|w| w.index)
                    .chain(
                        state
                            .trimmed
                            .iter()
                            .filter(|&&e| e & (PARKED | LAZY) != 0)
                            .map(|&e| e & INDEX),
                    )
                    .map(|index| state.slab.usable_range(index as usize, 1))
                    .collect();
                ranges.sort_unstable();
                // SAFETY: warm and trimmed slots are free; nothing lives in them.
                unsafe { advice::free(&ranges, Free::Eager) };
                // The `Slab` is dropped without unmapping: the mapping is leaked on purpose (see
                // above) and stays in the overflow registry.
            }
        }
    }
}

/// A free slot on the warm list: where it starts and where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Warm {
    /// Lowest address of the slot (its guard).
    start: usize,
    /// Id of its slab in the class.
    slab: u32,
    /// Index of the slot in the slab.
    index: u32,
}

/// Bookkeeping of one slab.
#[derive(Debug)]
struct SlabState {
    /// The mapping.
    slab: Slab,
    /// Slots `0 .. guarded` have their guard installed.
    guarded: usize,
    /// Slots `0 .. handed_out` have been handed out at least once.
    handed_out: usize,
    /// Slots handed out and not trimmed since: live, or warm on the class's list.
    busy: usize,
    /// Trimmed free slots (LIFO): the slot index, tagged [`PARKED`] or [`LAZY`] (untagged: freed
    /// eagerly).
    trimmed: Vec<u32>,
    /// How many entries of `trimmed` are tagged [`PARKED`].
    parked: usize,
    /// How many entries of `trimmed` are tagged [`LAZY`].
    lazy: usize,
}

impl SlabState {
    /// Frees the memory of the trimmed slots tagged with any of `tags`, `how` says when, and
    /// retags them. Returns how many were parked and lazily freed before, and how they were freed.
    fn free_tagged(&mut self, tags: u32, how: Free) -> (usize, usize, Free) {
        let mut indices: Vec<u32> = self
            .trimmed
            .iter()
            .filter(|&&e| e & tags != 0)
            .map(|&e| e & INDEX)
            .collect();
        indices.sort_unstable();
        let ranges: Vec<(usize, usize)> = indices
            .chunk_by(|a, b| b == &(a + 1))
            .map(|run| self.slab.usable_range(run[0] as usize, run.len()))
            .collect();
        // SAFETY: trimmed slots are free; nothing lives in them.
        let done = unsafe { advice::free(&ranges, how) };
        let new_tag = if done == Free::Lazy { LAZY } else { 0 };
        let (mut parked, mut lazy) = (0, 0);
        for entry in &mut self.trimmed {
            if *entry & tags != 0 {
                parked += usize::from(*entry & PARKED != 0);
                lazy += usize::from(*entry & LAZY != 0);
                *entry = (*entry & INDEX) | new_tag;
            }
        }
        self.parked -= parked;
        self.lazy = self.lazy - lazy + if done == Free::Lazy { indices.len() } else { 0 };
        (parked, lazy, done)
    }
}

/// All stacks of one usable size.
///
/// Invariants: every slab except `fresh` has handed out all its slots; for each slab,
/// `handed_out == busy + trimmed.len()`; a slab id is in `partial` exactly when its `trimmed` list
/// is non-empty; `busy`, `parked`, `lazy` and `spare` are the sums described on the fields.
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
    /// Warm free slots: newest at the back (handed out first), oldest at the front (trimmed
    /// first).
    warm: Vec<Warm>,
    /// Ids of slabs with trimmed slots, in the order they got their first one.
    partial: Vec<u32>,
    /// The slab that still has never-used slots.
    fresh: Option<u32>,
    /// Slots in the next slab to map.
    next_slots: usize,
    /// Upper bound of `next_slots` for this class.
    max_slots: usize,
    /// Sum of the slabs' `busy`: live stacks are `busy - warm.len()`.
    busy: usize,
    /// Sum of the slabs' `parked`.
    parked: usize,
    /// Sum of the slabs' `lazy`.
    lazy: usize,
    /// Slots of the empty slabs kept mapped (`busy == 0`, not `fresh`).
    spare: usize,
    /// Slabs mapped since the class was created (a figure for tests and reports).
    mapped: usize,
    /// Slots given a guard since the class was created (a figure for tests and reports).
    guarded: usize,
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
            warm: Vec::new(),
            partial: Vec::new(),
            fresh: None,
            next_slots: FIRST_SLAB_SLOTS.min(max_slots),
            max_slots,
            busy: 0,
            parked: 0,
            lazy: 0,
            spare: 0,
            mapped: 0,
            guarded: 0,
        }
    }

    /// The mapped slab with id `slab`.
    fn state(&mut self, slab: u32) -> &mut SlabState {
        self.slabs[slab as usize]
            .as_mut()
            .expect("greenlet stacks: slot of an unmapped slab")
    }

    /// Hands out a slot: warm, else trimmed, else fresh (mapping a slab if needed).
    #[inline]
    fn acquire(&mut self) -> io::Result<Warm> {
        match self.warm.pop() {
            Some(warm) => Ok(warm),
            None => self.acquire_cold(),
        }
    }

    /// Hands out a trimmed or a fresh slot.
    #[cold]
    fn acquire_cold(&mut self) -> io::Result<Warm> {
        if let Some(&slab) = self.partial.last() {
            let fresh = self.fresh == Some(slab);
            let state = self.state(slab);
            let entry = state
                .trimmed
                .pop()
                .expect("greenlet stacks: partial slab without trimmed slots");
            let (was_empty, slots) = (state.busy == 0, state.slab.slots());
            let (parked, lazy) = (entry & PARKED != 0, entry & LAZY != 0);
            state.parked -= usize::from(parked);
            state.lazy -= usize::from(lazy);
            state.busy += 1;
            let index = entry & INDEX;
            let start = state.slab.slot_start(index as usize);
            if state.trimmed.is_empty() {
                self.partial.pop();
            }
            if was_empty && !fresh {
                self.spare -= slots;
            }
            self.parked -= usize::from(parked);
            self.lazy -= usize::from(lazy);
            self.busy += 1;
            return Ok(Warm { start, slab, index });
        }
        let slab = match self.fresh {
            Some(slab) => slab,
            None => self.grow()?,
        };
        let state = self.state(slab);
        let index = state.handed_out;
        if index == state.guarded {
            let count = (state.slab.slots() - index).min(advice::BATCH);
            // SAFETY: slots at and above `handed_out` have never been handed out: nothing uses
            // them.
            unsafe { state.slab.install_guards(index, count)? };
            state.guarded = index + count;
            self.guarded += count;
        }
        let state = self.state(slab);
        state.handed_out += 1;
        state.busy += 1;
        let start = state.slab.slot_start(index);
        if state.handed_out == state.slab.slots() {
            self.fresh = None;
        }
        self.busy += 1;
        Ok(Warm {
            start,
            slab,
            index: index as u32,
        })
    }

    /// Maps a new slab (halving its size on `ENOMEM` down to one slot) and makes it `fresh`.
    fn grow(&mut self) -> io::Result<u32> {
        let mut slots = self.next_slots;
        let slab = loop {
            match Slab::map(self.slot_size, slots) {
                Ok(slab) => break slab,
                Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && slots > 1 => slots /= 2,
                Err(err) => return Err(advice::explain("mmap", err)),
            }
        };
        self.next_slots = (slots * 2).min(self.max_slots);
        self.mapped += 1;
        let state = SlabState {
            slab,
            guarded: 0,
            handed_out: 0,
            busy: 0,
            trimmed: Vec::new(),
            parked: 0,
            lazy: 0,
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

    /// Trims the `TRIM_BATCH` oldest warm slots: parks them on their slabs. With `keep`, that is
    /// all (decay gives back the excess later). Without it, keeps or unmaps the slabs that end up
    /// empty, and frees parked and lazily freed slots beyond their bounds.
    fn trim(&mut self, keep: bool) {
        let mut batch = [Warm {
            start: 0,
            slab: 0,
            index: 0,
        }; TRIM_BATCH];
        batch.copy_from_slice(&self.warm[..TRIM_BATCH]);
        self.warm.drain(..TRIM_BATCH);
        batch.sort_unstable_by_key(|w| (w.slab, w.index));
        for group in batch.chunk_by(|a, b| a.slab == b.slab) {
            let slab = group[0].slab;
            let fresh = self.fresh == Some(slab);
            let state = self.state(slab);
            state.busy -= group.len();
            let (empty, slots) = (state.busy == 0 && !fresh, state.slab.slots());
            self.busy -= group.len();
            if empty && !keep && self.spare + slots > SPARE_SLOTS {
                // Its other slots are trimmed already: the whole slab goes back at once.
                self.unmap(slab);
                continue;
            }
            let state = self.state(slab);
            if state.trimmed.is_empty() {
                self.partial.push(slab);
            }
            let state = self.state(slab);
            state.trimmed.extend(group.iter().map(|w| w.index | PARKED));
            state.parked += group.len();
            self.parked += group.len();
            if empty {
                self.spare += slots;
                if !keep {
                    // A spare keeps its address space and guards for the next burst, not its
                    // memory.
                    let (parked, lazy, _) =
                        self.state(slab).free_tagged(PARKED | LAZY, Free::Eager);
                    self.parked -= parked;
                    self.lazy -= lazy;
                }
            }
        }
        if keep {
            return;
        }
        let live = self.busy - self.warm.len();
        if self.parked > live.max(PARKED_STACKS) {
            self.free_parked(live.max(PARKED_STACKS) / 2, live.max(LAZY_STACKS));
        }
        if self.lazy > live.max(LAZY_STACKS) {
            self.free_lazy(live.max(LAZY_STACKS), false);
        }
    }

    /// Frees the parked slots of the slabs trimmed longest ago, a whole slab's at a time, until at
    /// most `keep` are left: lazily while the lazily freed ones stay within `lazy_limit`, else
    /// eagerly.
    fn free_parked(&mut self, keep: usize, lazy_limit: usize) {
        let mut next = 0;
        while self.parked > keep && next < self.partial.len() {
            let slab = self.partial[next];
            next += 1;
            let lazy = self.lazy;
            let state = self.state(slab);
            if state.parked == 0 {
                continue;
            }
            let how = if lazy + state.parked <= lazy_limit {
                Free::Lazy
            } else {
                Free::Eager
            };
            let (parked, _, done) = state.free_tagged(PARKED, how);
            self.parked -= parked;
            if done == Free::Lazy {
                self.lazy += parked;
            }
        }
    }

    /// Frees eagerly the lazily freed slots of the slabs trimmed longest ago, a whole slab's at a
    /// time, until at most `keep` are left; with `skip_spares`, not those of spare slabs (which
    /// are to be unmapped instead).
    fn free_lazy(&mut self, keep: usize, skip_spares: bool) {
        let mut next = 0;
        while self.lazy > keep && next < self.partial.len() {
            let slab = self.partial[next];
            next += 1;
            if skip_spares && self.is_spare(slab) {
                continue;
            }
            let state = self.state(slab);
            if state.lazy > 0 {
                let (_, lazy, _) = state.free_tagged(LAZY, Free::Eager);
                self.lazy -= lazy;
            }
        }
    }

    /// Unmaps slab `slab`, which has no busy slot and is not the fresh slab.
    fn unmap(&mut self, slab: u32) {
        let state = self.slabs[slab as usize]
            .take()
            .expect("greenlet stacks: unmapping an unmapped slab");
        if !state.trimmed.is_empty() {
            self.partial.retain(|&s| s != slab);
        }
        self.parked -= state.parked;
        self.lazy -= state.lazy;
        self.free_ids.push(slab);
        // SAFETY: the slab is not the fresh one, so every slot has been handed out; none is busy
        // (live or warm), so all are trimmed or in the trim batch that dropped them: none is in
        // use, and the slab is gone from every free list.
        unsafe { state.slab.unmap() };
    }
}

/// Number of stacks released after their pool was destroyed, for tests.
#[cfg(test)]
pub(super) static ORPHAN_RELEASES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Per-thread pool statistics, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Stats {
    /// Mapped slabs of the class.
    pub(super) slabs: usize,
    /// Warm free stacks.
    pub(super) warm: usize,
    /// Trimmed free stacks (lazily or eagerly freed).
    pub(super) trimmed: usize,
    /// Trimmed free stacks whose memory is still resident.
    pub(super) parked: usize,
    /// Trimmed free stacks whose memory was freed lazily.
    pub(super) lazy: usize,
    /// Live stacks.
    pub(super) live: usize,
    /// Slots of empty slabs kept mapped.
    pub(super) spare: usize,
    /// Empty slabs kept mapped.
    pub(super) spare_slabs: usize,
    /// Slabs mapped since the class was created.
    pub(super) mapped: usize,
    /// Slots given a guard since the class was created.
    pub(super) guarded: usize,
}

/// Statistics of this thread's size class of `usable`-byte stacks (all zero if it does not exist),
/// after checking the class's invariants.
#[cfg(test)]
pub(super) fn stats(usable: usize) -> Stats {
    POOL.with(|pool| {
        let pool = pool.borrow();
        let mut stats = Stats::default();
        let Some(class) = pool.classes.iter().find(|c| c.usable == usable) else {
            return stats;
        };
        let (mut busy, mut parked, mut lazy, mut spare) = (0, 0, 0, 0);
        for (id, state) in class.slabs.iter().enumerate() {
            let Some(state) = state else { continue };
            stats.slabs += 1;
            assert_eq!(state.handed_out, state.busy + state.trimmed.len());
            let tagged = |tag| state.trimmed.iter().filter(|&&e| e & tag != 0).count();
            assert_eq!((state.parked, state.lazy), (tagged(PARKED), tagged(LAZY)));
            assert_eq!(
                class.partial.contains(&(id as u32)),
                !state.trimmed.is_empty()
            );
            assert!(class.fresh == Some(id as u32) || state.handed_out == state.slab.slots());
            busy += state.busy;
            parked += state.parked;
            lazy += state.lazy;
            stats.trimmed += state.trimmed.len();
            if state.busy == 0 && class.fresh != Some(id as u32) {
                spare += state.slab.slots();
                stats.spare_slabs += 1;
            }
        }
        assert_eq!(
            (busy, parked, lazy, spare),
            (class.busy, class.parked, class.lazy, class.spare)
        );
        stats.parked = parked;
        stats.warm = class.warm.len();
        stats.lazy = lazy;
        stats.live = busy - class.warm.len();
        stats.spare = spare;
        stats.mapped = class.mapped;
        stats.guarded = class.guarded;
        stats
    })
}
