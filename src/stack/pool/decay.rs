//! Time decay: what a burst leaves beyond the idle bounds is given back over seconds, not at once.
//!
//! A thread whose hub drives the decay ([`set_decay_driven`]) keeps the stacks its trims park:
//! resident, guards installed, their slabs mapped. A second burst soon after the first then takes
//! them back with no page fault and no system call, instead of faulting every page and installing
//! every guard again. The excess over the idle bounds ([`PARKED_STACKS`], [`LAZY_STACKS`],
//! [`SPARE_SLOTS`], each per size class) is given back by decay steps, one every
//! [`DECAY_PERIOD`] while there is excess, each returning a [`DECAY_SHARE`]th of it (at least
//! [`TRIM_BATCH`] stacks), the slabs trimmed longest ago first, in three tiers:
//!
//! 1. parked stacks beyond their bound are freed lazily (`MADV_FREE`): still mapped and guarded,
//!    and still cheap to reuse while the kernel has not taken their pages;
//! 2. lazily freed stacks beyond their bound are freed eagerly (`MADV_DONTNEED`), except on empty
//!    slabs beyond the spares, which wait for the third tier;
//! 3. empty slabs beyond the spares are unmapped, those whose memory an earlier step freed first
//!    (so a slab is freed lazily one step and unmapped a later one), and any once no parked stack
//!    is left beyond its bound.
//!
//! A step runs when it is due and the hub turns idle (the hub sleeps at most until then), or when
//! a trim finds it due (a clock read per trim of [`TRIM_BATCH`] stacks, never per spawn or exit).
//! No step is scheduled while nothing is in excess. On a thread without a hub, nothing drives the
//! decay, and trims apply the bounds at once (see the parent module).

use std::time::{Duration, Instant};

use super::{Class, LAZY_STACKS, PARKED_STACKS, POOL, Pool, SPARE_SLOTS, SlabState, TRIM_BATCH};

/// Time between two decay steps while a pool holds more than its idle bounds.
pub(in crate::stack) const DECAY_PERIOD: Duration = Duration::from_millis(250);

/// Each decay step gives back this fraction (one over it) of each tier's excess.
pub(in crate::stack) const DECAY_SHARE: usize = 4;

/// The fewest stacks (or slots of spare slabs) a decay step gives back per tier and class.
const DECAY_MIN: usize = TRIM_BATCH;

/// The decay state of one thread's pool.
#[derive(Debug)]
pub(super) struct Decay {
    /// Whether something (the hub) runs decay steps: trims keep what they park.
    driven: bool,
    /// When the next step is due; `None` while nothing is in excess.
    due: Option<Instant>,
}

impl Decay {
    /// Not driven, nothing due.
    pub(super) const fn new() -> Decay {
        Decay {
            driven: false,
            due: None,
        }
    }

    /// Whether trims keep what they park for the decay to give back.
    pub(super) fn driven(&self) -> bool {
        self.driven
    }
}

/// Says whether this thread's hub drives the decay. While it does, trims keep what they park;
/// when it stops, everything beyond the idle bounds is given back at once.
pub(crate) fn set_decay_driven(driven: bool) {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            pool.set_driven(driven);
        }
    });
}

/// When this thread's next decay step is due, if one is scheduled (no clock read).
pub(crate) fn next_decay() -> Option<Instant> {
    POOL.try_with(|pool| pool.try_borrow().ok().and_then(|pool| pool.decay.due))
        .ok()
        .flatten()
}

/// Runs this thread's decay step if it is due (reads the clock only when one is scheduled).
pub(crate) fn decay_if_due() {
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut()
            && pool.decay.due.is_some()
        {
            let now = now();
            if pool.decay.due.is_some_and(|due| now >= due) {
                pool.step(now);
            }
        }
    });
}

impl Pool {
    /// See [`set_decay_driven`].
    fn set_driven(&mut self, driven: bool) {
        self.decay.driven = driven;
        if !driven {
            self.decay.due = None;
            for class in &mut self.classes {
                // Each pass makes progress in at least one tier; three leave no excess.
                for _ in 0..4 {
                    if !class.give_back(true) {
                        break;
                    }
                }
            }
        }
    }

    /// After a trim that kept what it parked: schedules a step if there is excess now, or runs
    /// the one that is due.
    pub(super) fn after_trim(&mut self) {
        match self.decay.due {
            Some(due) => {
                let now = now();
                if now >= due {
                    self.step(now);
                }
            }
            None => {
                if self.classes.iter().any(Class::excess) {
                    self.decay.due = Some(now() + DECAY_PERIOD);
                }
            }
        }
    }

    /// One decay step of every class; schedules the next one while there is excess left.
    fn step(&mut self, now: Instant) {
        let mut more = false;
        for class in &mut self.classes {
            more |= class.give_back(false);
        }
        self.decay.due = more.then(|| now + DECAY_PERIOD);
    }
}

impl Class {
    /// Whether the class holds more than its idle bounds allow.
    pub(super) fn excess(&self) -> bool {
        let live = self.busy - self.warm.len();
        self.spare > SPARE_SLOTS
            || self.parked > live.max(PARKED_STACKS)
            || self.lazy > live.max(LAZY_STACKS)
    }

    /// One decay step (see the module docs): gives back a share of the excess of each tier, or
    /// with `all` the whole of it. Returns whether excess is left.
    fn give_back(&mut self, all: bool) -> bool {
        let live = self.busy - self.warm.len();
        let share = |excess: usize| {
            if all {
                excess
            } else {
                (excess / DECAY_SHARE).max(DECAY_MIN).min(excess)
            }
        };
        // The tiers run last to first, so that what one step frees lazily a later one unmaps.
        if self.spare > SPARE_SLOTS {
            let target = self.spare - share(self.spare - SPARE_SLOTS);
            self.unmap_spares(target, |state| state.parked == 0);
            if all || self.parked <= live.max(PARKED_STACKS) {
                // Nothing parked is left to free first: any spare slab may go.
                self.unmap_spares(target, |_| true);
            }
        }
        let bound = live.max(LAZY_STACKS);
        if self.lazy > bound {
            // Spare slabs beyond the bound are unmapped rather than freed twice.
            self.free_lazy(
                self.lazy - share(self.lazy - bound),
                self.spare > SPARE_SLOTS,
            );
        }
        let bound = live.max(PARKED_STACKS);
        if self.parked > bound {
            self.free_parked(self.parked - share(self.parked - bound), usize::MAX);
        }
        self.excess()
    }

    /// Whether slab `slab` is a spare: mapped, empty, and not the fresh slab.
    pub(super) fn is_spare(&self, slab: u32) -> bool {
        self.fresh != Some(slab)
            && self.slabs[slab as usize]
                .as_ref()
                .is_some_and(|state| state.busy == 0)
    }

    /// Unmaps spare slabs for which `pick` holds, the slabs trimmed longest ago first, until the
    /// spares hold at most `target` slots.
    fn unmap_spares(&mut self, target: usize, pick: impl Fn(&SlabState) -> bool) {
        let mut next = 0;
        while self.spare > target && next < self.partial.len() {
            let slab = self.partial[next];
            if self.is_spare(slab) && pick(self.state(slab)) {
                // `unmap` takes the slab out of `partial`: `next` is the following one now.
                self.spare -= self.state(slab).slab.slots();
                self.unmap(slab);
            } else {
                next += 1;
            }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// A clock that unit tests set, so that decay steps run when the test says.
    static TEST_CLOCK: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Sets (`Some`) or clears this thread's test clock.
#[cfg(test)]
pub(in crate::stack) fn set_test_clock(now: Option<Instant>) {
    TEST_CLOCK.set(now);
}

/// The time: the test clock when one is set.
fn now() -> Instant {
    #[cfg(test)]
    if let Some(now) = TEST_CLOCK.get() {
        return now;
    }
    Instant::now()
}
