//! FIFO hand-off between parked greenlets: the fairness under every primitive of this module.
//!
//! A [`WaitList`](crate::hub::waitlist::WaitList) only wakes a greenlet, which then competes
//! for the resource with any greenlet that happens to run first. [`Parked`] instead gives the
//! resource (an item, a permit) straight to the longest-waiting greenlet, into a slot only that
//! greenlet reads, and then wakes it: nobody can barge in between, which is what gevent's
//! `TestSemaphoreFair` checks. It works both ways:
//!
//! - receivers park with an empty slot, and a producer [`offer`](Parked::offer)s them an item;
//! - senders park with their item in the slot, and a consumer [`accept`](Parked::accept)s it.
//!
//! A greenlet that gives up (timeout, kill, `LoopExit`) removes its own entry; one that was
//! handed something and unwinds before taking it gives it back through `redeliver`, so a killed
//! waiter never loses an item or a permit.
//!
//! A served entry stays where it is, marked served, until its woken owner takes it out: serving
//! wakes the owner, so the entry no longer counts as waiting (`Waiter::is_waiting`) and later
//! offers pass over it, and the owner finds it at the front in the usual FIFO case. (A second
//! queue of served entries cost a push, a pop and a search per hand-over.)

use std::cell::{Cell, RefCell, RefMut};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use crate::hub::{self, LoopExit, Waiter};

/// A parked greenlet and its slot.
struct Entry<T> {
    id: u64,
    waiter: Waiter,
    /// Whether an `offer` or `accept` served it (its slot then holds the final content).
    served: bool,
    slot: Option<T>,
}

impl<T> Entry<T> {
    /// Whether an `offer` (`full` false) or an `accept` (`full` true) may serve this entry: its
    /// greenlet still waits here, unserved, with its slot empty or full as that side needs.
    #[inline]
    fn serves(&self, full: bool) -> bool {
        !self.served && self.slot.is_some() == full && self.waiter.is_waiting()
    }
}

/// Greenlets parked with a slot each, in arrival order.
pub(crate) struct Parked<T> {
    /// Entries in arrival order: waiting, given up, or served, until their owner removes them.
    waiting: RefCell<VecDeque<Entry<T>>>,
    next_id: Cell<u64>,
}

/// How one [`Parked::park`] ended.
pub(crate) struct Woken<T> {
    /// What `park` returned: `Ok(true)` woken in time, `Ok(false)` deadline, `Err` `LoopExit`.
    pub(crate) woken: Result<bool, LoopExit>,
    /// Whether an `offer` or `accept` served this entry.
    pub(crate) served: bool,
    /// The slot's content at the end: the item offered, or the item not accepted.
    pub(crate) slot: Option<T>,
}

impl<T> Parked<T> {
    pub(crate) const fn new() -> Parked<T> {
        Parked {
            waiting: RefCell::new(VecDeque::new()),
            next_id: Cell::new(0),
        }
    }

    /// Parks the current greenlet once, with `slot`, until it is served or woken otherwise, or
    /// `deadline` passes. If the greenlet unwinds (is killed) after being offered an item, the
    /// item goes to `redeliver`.
    #[inline]
    pub(crate) fn park(
        &self,
        slot: Option<T>,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
        redeliver: impl FnOnce(T),
    ) -> Woken<T> {
        hub::check_can_block();
        let waiter = hub::waiter();
        let id = self.next_id.get().wrapping_add(1);
        self.next_id.set(id);
        self.waiting.borrow_mut().push_back(Entry {
            id,
            waiter: waiter.clone(),
            served: false,
            slot,
        });
        let mut guard = Guard {
            parked: self,
            id,
            redeliver: Some(redeliver),
        };
        let woken = hub::park(&waiter, deadline, what);
        // Disarmed: not unwinding, the entry is removed below. Forgotten rather than dropped,
        // so that the usual way out does not go through its drop glue (a sixtieth of a
        // channel message); the closure is dropped here.
        let redeliver = guard.redeliver.take();
        std::mem::forget(guard);
        drop(redeliver);
        let (served, slot) = self.remove(id);
        if served
            && let Err(e) = &woken
            && e.is_killed()
        {
            // It was served before the soft kill reached it: it takes what it was given, and
            // the kill waits for its next park.
            hub::request_kill(&crate::current());
        }
        Woken {
            woken,
            served,
            slot,
        }
    }

    /// Takes entry `id` out: whether it was served, and its slot.
    #[inline(always)]
    fn remove(&self, id: u64) -> (bool, Option<T>) {
        let mut waiting = self.waiting.borrow_mut();
        // Usually the front: entries are served, and their owners resumed, in arrival order.
        let i = if waiting.front().is_some_and(|e| e.id == id) {
            0
        } else {
            match waiting.iter().position(|e| e.id == id) {
                Some(i) => i,
                None => return (false, None),
            }
        };
        match take_at(&mut waiting, i) {
            Some(e) => (e.served, e.slot),
            None => (false, None),
        }
    }

    /// Marks the longest-waiting entry still parked whose slot is full (`true`) or empty as
    /// served, wakes its greenlet, and returns the entry for the caller to fill or empty.
    /// Scheduling touches only the hub's ready queue, never this list, and runs no user code.
    #[inline(always)]
    fn serve_first(&self, full: bool) -> Option<RefMut<'_, Entry<T>>> {
        let waiting = self.waiting.borrow_mut();
        let mut e = RefMut::filter_map(waiting, |w| {
            // Usually the front, or nobody: looked at first, without the search's set-up over
            // the deque's two halves (a fifth of a channel's send).
            if w.front()?.serves(full) {
                return w.front_mut();
            }
            w.iter_mut().skip(1).find(|e| e.serves(full))
        })
        .ok()?;
        e.served = true;
        e.waiter.wake();
        Some(e)
    }

    /// Gives `item` to the longest-waiting greenlet parked with an empty slot, and wakes it.
    ///
    /// # Errors
    /// The item back, when nobody is waiting.
    pub(crate) fn offer(&self, item: T) -> Result<(), T> {
        let Some(mut e) = self.serve_first(false) else {
            return Err(item);
        };
        e.slot = Some(item);
        Ok(())
    }

    /// Takes the item of the longest-waiting greenlet parked with a full slot, and wakes it.
    pub(crate) fn accept(&self) -> Option<T> {
        self.serve_first(true)?.slot.take()
    }

    /// Runs `f` on the item of the longest-waiting greenlet parked with a full slot.
    pub(crate) fn peek_full<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let waiting = self.waiting.borrow();
        let e = waiting
            .iter()
            .find(|e| e.slot.is_some() && e.waiter.is_waiting())?;
        e.slot.as_ref().map(f)
    }

    /// Wakes every parked greenlet without serving it; each re-checks its condition.
    pub(crate) fn wake_all(&self) {
        let waiters: Vec<Waiter> = self
            .waiting
            .borrow()
            .iter()
            .map(|e| e.waiter.clone())
            .collect();
        for w in waiters {
            w.wake();
        }
    }

    /// How many greenlets are parked here.
    pub(crate) fn len(&self) -> usize {
        self.waiting
            .borrow()
            .iter()
            .filter(|e| e.waiter.is_waiting())
            .count()
    }
}

/// `VecDeque::remove`, with the usual case (the front: FIFO order) as a plain `pop_front`:
/// `remove` shifts the rest through a general copy even when nothing needs to move, which was a
/// tenth of a channel hand-over.
#[inline]
fn take_at<E>(queue: &mut VecDeque<E>, i: usize) -> Option<E> {
    if i == 0 {
        queue.pop_front()
    } else {
        queue.remove(i)
    }
}

impl<T> Default for Parked<T> {
    fn default() -> Self {
        Parked::new()
    }
}

impl<T> fmt::Debug for Parked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parked")
            .field("waiting", &self.len())
            .finish()
    }
}

/// Removes a parked entry when its greenlet unwinds out of `park`, handing back what it was
/// given.
struct Guard<'a, T, F: FnOnce(T)> {
    parked: &'a Parked<T>,
    id: u64,
    redeliver: Option<F>,
}

impl<T, F: FnOnce(T)> Drop for Guard<'_, T, F> {
    fn drop(&mut self) {
        let Some(redeliver) = self.redeliver.take() else {
            return;
        };
        let (served, slot) = self.parked.remove(self.id);
        if let (true, Some(item)) = (served, slot) {
            redeliver(item);
        }
    }
}
