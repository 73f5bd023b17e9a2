//! [`Mutex`]: std's `Mutex` for greenlets on any thread; a waiting greenlet parks.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{self, LockResult, TryLockError, TryLockResult};
use std::time::Duration;

use super::gate::{Gate, Leave, adopt, try_form};
use crate::hub::waitlist::deadline_after;

/// A mutual-exclusion lock that protects data, for greenlets on any hub and for plain threads:
/// std's [`Mutex`](std::sync::Mutex), with the same methods, guards and poisoning, except that
/// a greenlet that waits for it parks (its hub runs the other greenlets) instead of blocking its
/// OS thread.
///
/// That is what makes it safe to hold across blocking calls: a greenlet may keep the guard
/// while it sleeps or writes to a socket, and the other greenlets of its hub that want the lock
/// wait without stopping the hub. (A `std::sync::Mutex` held that way freezes the hub for good
/// as soon as a second greenlet of the same hub locks it.) A thread without a hub blocks, as
/// with std's.
///
/// Waiters get the lock in arrival order, handed over at each unlock, whichever thread they
/// are on. A greenlet's [`Timeout`](crate::Timeout) does not cut [`lock`](Mutex::lock) short
/// (std's `lock` has no error for it): use [`lock_timeout`](Mutex::lock_timeout). Between
/// greenlets of one thread only, [`Lock`](super::Lock) costs less.
///
/// # Examples
/// Two hubs, a counter, and a lock held across a sleep:
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use greenlet::{Runtime, sync::Mutex};
///
/// let rt = Runtime::new(2).unwrap();
/// let counter = Arc::new(Mutex::new(0u64));
/// let handles: Vec<_> = (0..4).map(|_| {
///     let counter = counter.clone();
///     rt.spawn(move || {
///         let mut n = counter.lock().unwrap();
///         greenlet::sleep(Duration::from_millis(1)); // the others park meanwhile
///         *n += 1;
///     })
/// }).collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock().unwrap(), 4);
/// ```
pub struct Mutex<T: ?Sized> {
    gate: Gate,
    data: sync::Mutex<T>,
}

/// Holds a [`Mutex`] until dropped (std's `MutexGuard`); gives access to the data.
///
/// Like std's, it is not `Send`: it is released on the thread that took it.
///
/// ```compile_fail
/// let m = std::sync::Arc::new(greenlet::sync::Mutex::new(0));
/// let guard = m.lock().unwrap();
/// std::thread::spawn(move || drop(guard)); // MutexGuard is !Send
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    // Dropped before `_leave`: std's lock is free by the time the next holder is let in.
    inner: sync::MutexGuard<'a, T>,
    _leave: Leave<'a>,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            gate: Gate::new(),
            data: sync::Mutex::new(value),
        }
    }

    /// Consumes the mutex and returns its data.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the data if a holder panicked.
    pub fn into_inner(self) -> LockResult<T> {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting as long as another greenlet or thread holds it: a greenlet
    /// parks, a plain thread blocks.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the guard if a holder panicked while holding it.
    ///
    /// # Panics
    /// Never for contention; like std's, locking a mutex the caller already holds never
    /// returns (it waits for itself).
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.gate.enter(true, None, &"Mutex::lock");
        self.guard()
    }

    /// Locks the mutex if it is free right now (and nobody waits for it).
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if it is held; [`TryLockError::Poisoned`] as `lock`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::TryLockError;
    /// let m = greenlet::sync::Mutex::new(1);
    /// let g = m.try_lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(g);
    /// assert_eq!(*m.try_lock().unwrap(), 1);
    /// ```
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        try_form(self.gate.try_enter(true), || self.guard())
    }

    /// Locks the mutex, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if the time ran out; [`TryLockError::Poisoned`] as `lock`.
    ///
    /// # Examples
    /// ```
    /// use std::{sync::TryLockError, time::Duration};
    /// let m = greenlet::sync::Mutex::new(());
    /// let _held = m.lock().unwrap();
    /// let r = m.lock_timeout(Duration::from_millis(5));
    /// assert!(matches!(r, Err(TryLockError::WouldBlock)));
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<MutexGuard<'_, T>> {
        let deadline = deadline_after(Some(timeout));
        try_form(
            self.gate.enter(true, deadline, &"Mutex::lock_timeout"),
            || self.guard(),
        )
    }

    /// The guard once the gate let us in.
    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let leave = Leave {
            gate: &self.gate,
            exclusive: true,
        };
        adopt(self.data.try_lock(), |inner| MutexGuard {
            mutex: self,
            inner,
            _leave: leave,
        })
    }

    /// Whether a holder panicked while holding the lock (std's `is_poisoned`).
    pub fn is_poisoned(&self) -> bool {
        self.data.is_poisoned()
    }

    /// Clears the poisoned state (std's `clear_poison`).
    pub fn clear_poison(&self) {
        self.data.clear_poison();
    }

    /// The data, through a unique borrow: no locking needed.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the reference if a holder panicked.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.data.get_mut()
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (for [`Condvar`](super::Condvar)).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(p)) => d.field("data", &&*p.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
