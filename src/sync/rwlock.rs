//! [`RwLock`]: std's `RwLock` for greenlets on any thread; a waiting greenlet parks.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{self, LockResult, TryLockError, TryLockResult};
use std::time::Duration;

use super::gate::{Gate, Leave, adopt, try_form};
use crate::hub::waitlist::deadline_after;

/// A reader-writer lock that protects data, for greenlets on any hub and for plain threads:
/// std's [`RwLock`](std::sync::RwLock), with the same methods, guards and poisoning (a writer
/// that panics poisons it), except that a greenlet that waits parks instead of blocking its OS
/// thread, so guards may be held across blocking calls.
///
/// Waiters are served in arrival order: readers that arrive while a writer waits queue behind
/// it, so writers never starve. A greenlet's [`Timeout`](crate::Timeout) does not cut
/// [`read`](RwLock::read) or [`write`](RwLock::write) short; use
/// [`read_timeout`](RwLock::read_timeout) / [`write_timeout`](RwLock::write_timeout).
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use greenlet::sync::RwLock;
///
/// let config = Arc::new(RwLock::new(String::from("v1")));
/// let reader = {
///     let config = config.clone();
///     std::thread::spawn(move || config.read().unwrap().clone())
/// };
/// *config.write().unwrap() = String::from("v2");
/// let seen = reader.join().unwrap();
/// assert!(seen == "v1" || seen == "v2");
/// assert_eq!(*config.read().unwrap(), "v2");
/// ```
pub struct RwLock<T: ?Sized> {
    gate: Gate,
    data: sync::RwLock<T>,
}

/// Shared access to the data of an [`RwLock`], until dropped (std's `RwLockReadGuard`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    inner: sync::RwLockReadGuard<'a, T>,
    _leave: Leave<'a>,
}

/// Exclusive access to the data of an [`RwLock`], until dropped (std's `RwLockWriteGuard`).
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    inner: sync::RwLockWriteGuard<'a, T>,
    _leave: Leave<'a>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            gate: Gate::new(),
            data: sync::RwLock::new(value),
        }
    }

    /// Consumes the lock and returns its data.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the data if a writer panicked.
    pub fn into_inner(self) -> LockResult<T> {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds or waits for the lock.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the guard if a writer panicked.
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.gate.enter(false, None, &"RwLock::read");
        self.read_guard()
    }

    /// Locks for reading if that is possible right now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if a writer holds or waits for it; `Poisoned` as `read`.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        try_form(self.gate.try_enter(false), || self.read_guard())
    }

    /// Locks for reading, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if the time ran out; `Poisoned` as `read`.
    pub fn read_timeout(&self, timeout: Duration) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if !self.gate.enter(
            false,
            deadline_after(Some(timeout)),
            &"RwLock::read_timeout",
        ) {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.read_guard()?)
    }

    /// Locks for writing, waiting while anyone holds the lock.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the guard if a writer panicked.
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.gate.enter(true, None, &"RwLock::write");
        self.write_guard()
    }

    /// Locks for writing if nobody holds or waits for the lock right now.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if it is held; `Poisoned` as `write`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::TryLockError;
    /// let lock = greenlet::sync::RwLock::new(0);
    /// let r = lock.read().unwrap();
    /// assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
    /// assert!(lock.try_read().is_ok());
    /// drop(r);
    /// *lock.try_write().unwrap() += 1;
    /// ```
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        try_form(self.gate.try_enter(true), || self.write_guard())
    }

    /// Locks for writing, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if the time ran out; `Poisoned` as `write`.
    pub fn write_timeout(&self, timeout: Duration) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if !self.gate.enter(
            true,
            deadline_after(Some(timeout)),
            &"RwLock::write_timeout",
        ) {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.write_guard()?)
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let leave = Leave {
            gate: &self.gate,
            exclusive: false,
        };
        adopt(self.data.try_read(), |inner| RwLockReadGuard {
            inner,
            _leave: leave,
        })
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let leave = Leave {
            gate: &self.gate,
            exclusive: true,
        };
        adopt(self.data.try_write(), |inner| RwLockWriteGuard {
            inner,
            _leave: leave,
        })
    }

    /// Whether a writer panicked while holding the lock.
    pub fn is_poisoned(&self) -> bool {
        self.data.is_poisoned()
    }

    /// Clears the poisoned state.
    pub fn clear_poison(&self) {
        self.data.clear_poison();
    }

    /// The data, through a unique borrow: no locking needed.
    ///
    /// # Errors
    /// A [`PoisonError`](std::sync::PoisonError) holding the reference if a writer panicked.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(p)) => d.field("data", &&*p.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
