//! The lock-free list of fired remote wakers: any thread pushes, the hub takes everything.
//!
//! Every cross-thread wake-up goes through here, so it is one compare-and-swap on one cache line
//! for the waker, and one swap for the hub per batch, with no lock that two threads could both
//! need at once. The list is a Treiber stack with push and take-all only: with no single pop,
//! a stale head seen by a pushing thread is harmless (its `next` is re-read on every failed
//! swap), so there is no ABA problem. Each entry is a [`WakeCell`] shared by its
//! [`RemoteWaker`](super::RemoteWaker) and, while queued, by the list: the list owns one
//! strong count of every cell it holds.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// One remote waker's entry: the id the hub maps to the waiting greenlet, and whether it fired.
pub(crate) struct WakeCell {
    /// The next cell of the list while queued (written only by the pushing thread before it
    /// publishes the cell).
    next: AtomicPtr<WakeCell>,
    pub(crate) id: u64,
    /// Set once by the first `wake` or `disarm`: a cell is queued at most once.
    pub(crate) fired: AtomicBool,
    /// Set by a cross-thread primitive that served its waiter, before the wake-up: on this line
    /// so that the woken greenlet reads it where the hub just read the cell.
    pub(crate) notified: AtomicBool,
}

impl WakeCell {
    pub(crate) fn new(id: u64) -> Arc<WakeCell> {
        Arc::new(WakeCell {
            next: AtomicPtr::new(ptr::null_mut()),
            id,
            fired: AtomicBool::new(false),
            notified: AtomicBool::new(false),
        })
    }
}

/// The list head; null when empty.
pub(crate) struct WakeList {
    head: AtomicPtr<WakeCell>,
}

impl WakeList {
    pub(crate) const fn new() -> WakeList {
        WakeList {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Queues `cell`. Returns whether the list was empty: the first push since the hub last
    /// took the list is the one that must make sure the hub looks (see `Shared::notify`).
    ///
    /// The swap is sequentially consistent: it is one half of the Dekker pair with the hub's
    /// `sleeping` flag.
    pub(crate) fn push(&self, cell: Arc<WakeCell>) -> bool {
        let new = Arc::into_raw(cell).cast_mut();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `new` comes from `Arc::into_raw` above, so it points to a live cell, and
            // no other thread reads its `next` before the swap below publishes it.
            unsafe { (*new).next.store(head, Ordering::Relaxed) };
            match self
                .head
                .compare_exchange_weak(head, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return head.is_null(),
                Err(current) => head = current,
            }
        }
    }

    /// Whether anything is queued (a hint for the hub's loop: relaxed).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Whether anything is queued, as the hub's half of the Dekker pair (after it marked
    /// itself asleep).
    pub(crate) fn is_empty_seqcst(&self) -> bool {
        self.head.load(Ordering::SeqCst).is_null()
    }

    /// Takes every queued cell, appending their ids to `ids` oldest first.
    pub(crate) fn take_all(&self, ids: &mut Vec<u64>) -> usize {
        let mut p = self.head.swap(ptr::null_mut(), Ordering::SeqCst);
        let start = ids.len();
        while !p.is_null() {
            // SAFETY: every pointer in the list came from `Arc::into_raw` in `push`, which
            // handed its strong count to the list; the swap above took the whole list out, so
            // this thread owns that count now and takes it back exactly once. The cell's
            // `next` was written before the push's release swap, which the swap above acquired.
            let cell = unsafe { Arc::from_raw(p) };
            // A swap, not a load: it takes the line for writing at once (the count is
            // decremented next), instead of reading it shared and upgrading it after.
            p = cell.next.swap(ptr::null_mut(), Ordering::Relaxed);
            ids.push(cell.id);
        }
        ids[start..].reverse();
        ids.len() - start
    }
}

impl Drop for WakeList {
    fn drop(&mut self) {
        // Gives back the counts of the cells still queued.
        self.take_all(&mut Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_in_push_order_and_reports_the_first_push() {
        let list = WakeList::new();
        let cells: Vec<_> = (0..4).map(WakeCell::new).collect();
        assert!(list.push(cells[0].clone()), "first push into an empty list");
        assert!(!list.push(cells[1].clone()));
        assert!(!list.push(cells[2].clone()));
        let mut ids = vec![99];
        assert_eq!(list.take_all(&mut ids), 3);
        assert_eq!(ids, vec![99, 0, 1, 2]);
        assert!(list.is_empty());
        assert!(list.push(cells[3].clone()), "first push after a take");
        drop(list);
        for c in &cells {
            assert_eq!(Arc::strong_count(c), 1, "the list gave back every count");
        }
    }

    #[test]
    fn concurrent_pushes_are_all_taken_once() {
        const THREADS: u64 = 4;
        const EACH: u64 = 5_000;
        let list = Arc::new(WakeList::new());
        let pushers: Vec<_> = (0..THREADS)
            .map(|t| {
                let list = list.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        list.push(WakeCell::new(t * EACH + i));
                    }
                })
            })
            .collect();
        let mut ids = Vec::new();
        while pushers.iter().any(|p| !p.is_finished()) {
            list.take_all(&mut ids);
        }
        for p in pushers {
            p.join().unwrap();
        }
        list.take_all(&mut ids);
        ids.sort_unstable();
        assert_eq!(ids, (0..THREADS * EACH).collect::<Vec<_>>());
    }
}
