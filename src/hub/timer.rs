//! The hub's timers: deadlines ordered in a B-tree so that a timer can be cancelled in
//! O(log n) when the operation it guards finishes first (a socket read with a timeout must not
//! leave an entry behind for every request).

use std::collections::BTreeMap;
use std::time::Instant;

use super::Waiter;

/// Identifies one timer; the sequence number makes equal deadlines distinct and FIFO.
pub(crate) type TimerKey = (Instant, u64);

/// Pending timers of one hub.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    entries: BTreeMap<TimerKey, Waiter>,
    seq: u64,
}

impl Timers {
    /// Wakes `waiter` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waiter: Waiter) -> TimerKey {
        self.seq += 1;
        let key = (deadline, self.seq);
        self.entries.insert(key, waiter);
        key
    }

    /// Cancels a timer; a no-op if it already fired.
    pub(crate) fn remove(&mut self, key: &TimerKey) {
        self.entries.remove(key);
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|(k, _)| k.0)
    }

    /// Removes and returns the first timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Waiter> {
        let entry = self.entries.first_entry()?;
        if entry.key().0 <= now { Some(entry.remove()) } else { None }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
