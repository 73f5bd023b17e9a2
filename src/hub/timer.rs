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
    /// Each waiter with whether its timer is weak.
    entries: BTreeMap<TimerKey, (Waiter, bool)>,
    seq: u64,
    /// How many entries are weak: timers that do not keep the hub alive (gevent's
    /// `ref=False`), such as the timeout of `wait_all`, which must not stop the hub from seeing
    /// that everything else has finished.
    weak: usize,
}

impl Timers {
    /// Wakes `waiter` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waiter: Waiter) -> TimerKey {
        self.insert_with(deadline, waiter, false)
    }

    /// Wakes `waiter` at `deadline`; a `weak` timer does not count as something that can still
    /// wake a greenlet when the hub decides whether it has run dry.
    pub(crate) fn insert_with(
        &mut self,
        deadline: Instant,
        waiter: Waiter,
        weak: bool,
    ) -> TimerKey {
        self.seq += 1;
        let key = (deadline, self.seq);
        self.entries.insert(key, (waiter, weak));
        self.weak += usize::from(weak);
        key
    }

    /// Cancels a timer (a no-op if it already fired); returns its waiter, for the caller to
    /// drop once it no longer borrows the timers.
    pub(crate) fn remove(&mut self, key: &TimerKey) -> Option<Waiter> {
        let (waiter, weak) = self.entries.remove(key)?;
        self.weak -= usize::from(weak);
        Some(waiter)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.first_key_value().map(|(k, _)| k.0)
    }

    /// Removes and returns the first timer if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Waiter> {
        let entry = self.entries.first_entry()?;
        if entry.key().0 <= now {
            let (waiter, weak) = entry.remove();
            self.weak -= usize::from(weak);
            Some(waiter)
        } else {
            None
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a timer that keeps the hub alive is pending.
    pub(crate) fn has_strong(&self) -> bool {
        self.entries.len() > self.weak
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
