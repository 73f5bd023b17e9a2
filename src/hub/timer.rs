//! The hub's timers: deadlines ordered in a B-tree so that a timer can be cancelled in
//! O(log n) when the operation it guards finishes first.
//!
//! Two kinds of entries. A [`Wake::Waiter`] wakes one park once (`spawn_later`'s start). A
//! [`Wake::Park`] is a greenlet's own park timer, armed lazily: a park with a deadline arms one
//! only when the greenlet has none that fires by then, and its end does not cancel it. When it
//! fires, it wakes the greenlet if its current park's deadline has passed, re-arms itself for
//! that deadline if it is later, and goes otherwise. So a greenlet that keeps parking with a
//! later deadline each time (a socket read under a read timeout, `recv_timeout` in a loop)
//! touches the tree about once per timeout period instead of twice per park.

use std::collections::BTreeMap;
use std::time::Instant;

use super::Waiter;
use crate::greenlet::WeakGreenlet;

/// Identifies one timer; the sequence number makes equal deadlines distinct and FIFO.
pub(crate) type TimerKey = (Instant, u64);

/// What a timer does when it fires.
pub(crate) enum Wake {
    /// Wakes this waiter (if it still waits); the flag says whether the timer is weak.
    Waiter(Waiter, bool),
    /// The park timer of this greenlet (weakly: a timer does not keep a greenlet alive).
    Park(WeakGreenlet),
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wake::Waiter(_, weak) => f.debug_struct("Waiter").field("weak", weak).finish(),
            Wake::Park(_) => f.write_str("Park"),
        }
    }
}

/// Pending timers of one hub.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    entries: BTreeMap<TimerKey, Wake>,
    seq: u64,
    /// How many entries do not keep the hub alive by themselves: weak waiter timers (gevent's
    /// `ref=False`, such as the timeout of `wait_all`, which must not stop the hub from seeing
    /// that everything else has finished) and every park timer (which may outlive its park).
    weak: usize,
    /// How many greenlets are parked with a deadline that keeps the hub alive: each of them has
    /// a park timer that fires by then.
    strong_parks: usize,
}

impl Timers {
    /// Wakes `waiter` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waiter: Waiter) -> TimerKey {
        self.insert_wake(deadline, Wake::Waiter(waiter, false))
    }

    /// Arms a park timer of greenlet `g` at `deadline`.
    pub(crate) fn insert_park(&mut self, deadline: Instant, g: WeakGreenlet) -> TimerKey {
        self.insert_wake(deadline, Wake::Park(g))
    }

    fn insert_wake(&mut self, deadline: Instant, wake: Wake) -> TimerKey {
        self.seq += 1;
        let key = (deadline, self.seq);
        self.weak += usize::from(is_weak(&wake));
        self.entries.insert(key, wake);
        key
    }

    /// Cancels a timer (a no-op if it already fired); returns what it held, for the caller to
    /// drop once it no longer borrows the timers.
    pub(crate) fn remove(&mut self, key: &TimerKey) -> Option<Wake> {
        let wake = self.entries.remove(key)?;
        self.weak -= usize::from(is_weak(&wake));
        Some(wake)
    }

    /// A greenlet starts (`true`) or ends a park whose deadline keeps the hub alive.
    pub(crate) fn strong_park(&mut self, starts: bool) {
        if starts {
            self.strong_parks += 1;
        } else {
            self.strong_parks -= 1;
        }
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|(k, _)| k.0)
    }

    /// Removes and returns the first timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerKey, Wake)> {
        let entry = self.entries.first_entry()?;
        if entry.key().0 <= now {
            let (key, wake) = entry.remove_entry();
            self.weak -= usize::from(is_weak(&wake));
            Some((key, wake))
        } else {
            None
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a timer that keeps the hub alive is pending.
    pub(crate) fn has_strong(&self) -> bool {
        self.entries.len() > self.weak || self.strong_parks > 0
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

fn is_weak(wake: &Wake) -> bool {
    match wake {
        Wake::Waiter(_, weak) => *weak,
        Wake::Park(_) => true,
    }
}
