//! [`Condvar`]: std's `Condvar` for the green [`Mutex`]; a waiting greenlet parks.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, LockResult, Mutex as StdMutex, PoisonError};
use std::time::{Duration, Instant};

use super::gate::{Node, lock, remove_node};
use super::mutex::MutexGuard;
use crate::hub::waitlist::deadline_after;

/// A condition variable for the green [`Mutex`](super::Mutex) (std's
/// [`Condvar`](std::sync::Condvar), same methods): a greenlet that waits parks, on whichever
/// hub, and is woken by a notification from any greenlet or thread; a plain thread blocks.
///
/// Notifications go to waiters in arrival order. A waiter that gives up (its timeout ran out,
/// or its greenlet was killed) after a `notify_one` chose it passes the notification on to the
/// next waiter, so none is lost. There are no spurious wake-ups, but as with std, wait in a loop
/// (or with [`wait_while`](Condvar::wait_while)): another waiter may change the condition first.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use greenlet::{Runtime, sync::{Condvar, Mutex}};
///
/// let rt = Runtime::new(2).unwrap();
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let waiter = {
///     let pair = pair.clone();
///     rt.spawn_on(0, move || {
///         let (ready, cv) = &*pair;
///         let ready = cv.wait_while(ready.lock().unwrap(), |r| !*r).unwrap();
///         *ready
///     }).unwrap()
/// };
/// let pair2 = pair.clone();
/// rt.spawn_on(1, move || {
///     *pair2.0.lock().unwrap() = true;
///     pair2.1.notify_all();
/// }).unwrap();
/// assert!(waiter.join().unwrap());
/// ```
pub struct Condvar {
    waiters: StdMutex<VecDeque<Arc<Node>>>,
}

/// Whether a timed wait on a [`Condvar`] ended because its time ran out (std's
/// `WaitTimeoutResult`, which cannot be made outside std).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait timed out.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Condvar {
        Condvar {
            waiters: StdMutex::new(VecDeque::new()),
        }
    }

    /// Unlocks the guard's mutex, waits for a notification, and locks the mutex again.
    ///
    /// # Errors
    /// A [`PoisonError`] holding the guard if the mutex is poisoned when it is locked again.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let mutex = guard.mutex();
        self.park(guard, None);
        mutex.lock()
    }

    /// Waits while `condition` holds (checked with the lock held, first before any wait).
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait).
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`wait`](Condvar::wait) for at most `timeout`.
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait), with the timeout result.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{Condvar, Mutex};
    ///
    /// let (m, cv) = (Mutex::new(()), Condvar::new());
    /// let (_guard, r) = cv.wait_timeout(m.lock().unwrap(), Duration::from_millis(5)).unwrap();
    /// assert!(r.timed_out());
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let mutex = guard.mutex();
        let notified = self.park(guard, deadline_after(Some(timeout)));
        let r = WaitTimeoutResult(!notified);
        match mutex.lock() {
            Ok(g) => Ok((g, r)),
            Err(p) => Err(PoisonError::new((p.into_inner(), r))),
        }
    }

    /// Waits while `condition` holds, for at most `timeout` in all.
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait), with the timeout result (timed out only if the condition
    /// still held at the end).
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = deadline_after(Some(timeout));
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            let left = match deadline {
                None => Duration::MAX,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return Ok((guard, WaitTimeoutResult(true))),
                },
            };
            guard = match self.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(p) => {
                    let (g, r) = p.into_inner();
                    return Err(PoisonError::new((g, r)));
                }
            };
        }
    }

    /// Wakes the longest-waiting waiter, if any.
    pub fn notify_one(&self) {
        let node = lock(&self.waiters).pop_front();
        if let Some(node) = node {
            node.notify();
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let nodes = std::mem::take(&mut *lock(&self.waiters));
        for node in nodes {
            node.notify();
        }
    }

    /// Queues the caller, unlocks (drops `guard`), and waits for a notification or `deadline`;
    /// returns whether it was notified.
    fn park<T: ?Sized>(&self, guard: MutexGuard<'_, T>, deadline: Option<Instant>) -> bool {
        let (parker, node) = Node::new();
        lock(&self.waiters).push_back(node.clone());
        drop(guard);
        let mut leave = Leave {
            condvar: self,
            node: &node,
            armed: true,
        };
        let r = node.wait(&parker, deadline, &"Condvar::wait", false);
        leave.armed = false;
        match r {
            Ok(()) => true,
            Err(_) => self.give_up(&node),
        }
    }

    /// The waiter of `node` stops waiting: returns whether it was notified meanwhile. When it
    /// was but unwinds, the notification goes to the next waiter.
    fn give_up(&self, node: &Arc<Node>) -> bool {
        let mut waiters = lock(&self.waiters);
        node.disarm();
        if remove_node(&mut waiters, node) {
            return false;
        }
        // Not queued any more: a notification chose it.
        node.is_notified()
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("waiters", &lock(&self.waiters).len())
            .finish()
    }
}

/// Takes a waiter off the condvar when its greenlet unwinds (is killed) while waiting; a
/// notification it had received goes to the next waiter.
struct Leave<'a> {
    condvar: &'a Condvar,
    node: &'a Arc<Node>,
    armed: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        if self.armed && self.condvar.give_up(self.node) {
            self.condvar.notify_one();
        }
    }
}
