//! Locks (gevent's `gevent.lock.Lock` and `RLock`): [`Lock`] with its [`LockGuard`], and the
//! reentrant [`RLock`].
//!
//! Both are built on the semaphore core, so waiters get the lock in arrival order, handed over
//! directly at each unlock.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::error::{ReleaseError, WaitError};
use super::semaphore::SemCore;
use crate::hub::waitlist::deadline_after;

/// A mutual-exclusion lock between greenlets (gevent's `Lock`): [`lock`](Lock::lock) returns a
/// guard that unlocks when dropped, like std's `MutexGuard`. Waiters get the lock in arrival
/// order.
///
/// It guards no data: keep what it protects in a `RefCell` next to it. Unlike a `RefCell`
/// borrow, the guard may be held across blocking calls. gevent's raw
/// [`acquire`](Lock::acquire)/[`release`](Lock::release) are here too; any greenlet may
/// release, as in gevent.
///
/// # Examples
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use greenlet::sync::Lock;
///
/// let lock = Lock::new();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let hs: Vec<_> = (0..2).map(|i| {
///     let (lock, log) = (lock.clone(), log.clone());
///     greenlet::spawn(move || {
///         let _guard = lock.lock().unwrap();
///         log.borrow_mut().push(format!("{i} in"));
///         greenlet::yield_now(); // the other greenlet runs, and waits for the lock
///         log.borrow_mut().push(format!("{i} out"));
///     })
/// }).collect();
/// greenlet::joinall(&hs, None, None).unwrap();
/// assert_eq!(*log.borrow(), ["0 in", "0 out", "1 in", "1 out"]);
/// ```
#[derive(Clone)]
pub struct Lock {
    core: Rc<SemCore>,
}

/// Holds a [`Lock`] until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Lock {
    /// An unlocked lock.
    pub fn new() -> Lock {
        Lock {
            core: Rc::new(SemCore::new(1, Some(1))),
        }
    }

    /// Locks, waiting while another greenlet holds the lock.
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when nothing could ever unlock it (for instance the calling
    /// greenlet holds it already: the lock is not reentrant, see [`RLock`]);
    /// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
    pub fn lock(&self) -> Result<LockGuard<'_>, WaitError> {
        self.core.acquire(None, &"Lock::lock")?;
        Ok(LockGuard { lock: self })
    }

    /// Locks if the lock is free right now.
    ///
    /// # Examples
    /// ```
    /// let lock = greenlet::sync::Lock::new();
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_none());
    /// drop(guard);
    /// assert!(lock.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.core.try_acquire().then(|| LockGuard { lock: self })
    }

    /// Locks, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the lock did not come free in time; `LoopExit`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>, WaitError> {
        self.core
            .acquire(deadline_after(Some(timeout)), &"Lock::lock_timeout")?;
        Ok(LockGuard { lock: self })
    }

    /// Locks without a guard (gevent's `acquire()`); pair with [`release`](Lock::release).
    ///
    /// # Errors
    /// As [`lock`](Lock::lock).
    pub fn acquire(&self) -> Result<(), WaitError> {
        self.core.acquire(None, &"Lock::acquire")
    }

    /// Locks without a guard if the lock is free right now.
    #[doc(alias = "acquire(blocking=False)")]
    pub fn try_acquire(&self) -> bool {
        self.core.try_acquire()
    }

    /// Locks without a guard, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`lock_timeout`](Lock::lock_timeout).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
        self.core
            .acquire(deadline_after(Some(timeout)), &"Lock::acquire_timeout")
    }

    /// Unlocks a lock taken with [`acquire`](Lock::acquire); the longest waiter gets it.
    ///
    /// # Errors
    /// [`ReleaseError::NotLocked`] if the lock is not held.
    ///
    /// # Examples
    /// ```
    /// use greenlet::sync::{Lock, ReleaseError};
    /// let lock = Lock::new();
    /// lock.acquire().unwrap();
    /// lock.release().unwrap();
    /// assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.release().map_err(|_| ReleaseError::NotLocked)
    }

    /// Whether some greenlet holds the lock.
    pub fn is_locked(&self) -> bool {
        self.core.permits() == 0
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .field("waiting", &self.core.waiting())
            .finish()
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        if self.lock.release().is_err() {
            log::error!(
                "greenlet::sync::LockGuard dropped after its lock was released by `Lock::release`"
            );
        }
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

/// A reentrant lock (gevent's `RLock`): the greenlet that holds it may lock it again, and it
/// is free once every lock is matched by an unlock. Only the owner may release it.
///
/// # Examples
/// ```
/// use greenlet::sync::{RLock, ReleaseError};
///
/// let lock = RLock::new();
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap(); // same greenlet: no deadlock
/// drop(inner);
/// assert!(lock.is_locked());
/// drop(outer);
/// assert!(!lock.is_locked());
/// assert_eq!(lock.release(), Err(ReleaseError::NotLocked));
/// ```
#[derive(Clone)]
pub struct RLock {
    inner: Rc<RLockInner>,
}

struct RLockInner {
    core: SemCore,
    /// The id of the owning greenlet.
    owner: Cell<Option<u64>>,
    depth: Cell<usize>,
}

/// Holds an [`RLock`] (one level of it) until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    owner: u64,
}

fn current_id() -> u64 {
    crate::current().id()
}

impl RLock {
    /// An unlocked reentrant lock.
    pub fn new() -> RLock {
        RLock {
            inner: Rc::new(RLockInner {
                core: SemCore::new(1, Some(1)),
                owner: Cell::new(None),
                depth: Cell::new(0),
            }),
        }
    }

    fn take(&self, deadline: Option<Instant>, what: &'static str) -> Result<u64, WaitError> {
        let me = current_id();
        let inner = &self.inner;
        if inner.owner.get() == Some(me) {
            inner.depth.set(inner.depth.get() + 1);
            return Ok(me);
        }
        inner.core.acquire(deadline, &what)?;
        inner.owner.set(Some(me));
        inner.depth.set(1);
        Ok(me)
    }

    fn try_take(&self) -> Option<u64> {
        let me = current_id();
        let inner = &self.inner;
        if inner.owner.get() == Some(me) {
            inner.depth.set(inner.depth.get() + 1);
            return Some(me);
        }
        if !inner.core.try_acquire() {
            return None;
        }
        inner.owner.set(Some(me));
        inner.depth.set(1);
        Some(me)
    }

    /// Locks, waiting while another greenlet holds the lock; the owner locks again at once.
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when nothing could ever unlock it; [`WaitError::TimedOut`]
    /// under an expired [`Timeout`](crate::Timeout).
    pub fn lock(&self) -> Result<RLockGuard<'_>, WaitError> {
        let owner = self.take(None, "RLock::lock")?;
        Ok(RLockGuard { lock: self, owner })
    }

    /// Locks if the lock is free right now or held by the calling greenlet.
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        self.try_take()
            .map(|owner| RLockGuard { lock: self, owner })
    }

    /// Locks, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the lock did not come free in time; `LoopExit`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RLockGuard<'_>, WaitError> {
        let owner = self.take(deadline_after(Some(timeout)), "RLock::lock_timeout")?;
        Ok(RLockGuard { lock: self, owner })
    }

    /// Locks without a guard (gevent's `acquire()`); pair with [`release`](RLock::release).
    ///
    /// # Errors
    /// As [`lock`](RLock::lock).
    pub fn acquire(&self) -> Result<(), WaitError> {
        self.take(None, "RLock::acquire").map(drop)
    }

    /// Locks without a guard if the lock is free right now or held by the caller.
    #[doc(alias = "acquire(blocking=False)")]
    pub fn try_acquire(&self) -> bool {
        self.try_take().is_some()
    }

    /// Locks without a guard, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`lock_timeout`](RLock::lock_timeout).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
        self.take(deadline_after(Some(timeout)), "RLock::acquire_timeout")
            .map(drop)
    }

    /// Undoes one [`acquire`](RLock::acquire) of the calling greenlet.
    ///
    /// # Errors
    /// [`ReleaseError::NotLocked`] if nobody holds the lock, [`ReleaseError::NotOwner`] if
    /// another greenlet does.
    pub fn release(&self) -> Result<(), ReleaseError> {
        match self.inner.owner.get() {
            None => Err(ReleaseError::NotLocked),
            Some(owner) if owner != current_id() => Err(ReleaseError::NotOwner),
            Some(_) => {
                self.release_owned();
                Ok(())
            }
        }
    }

    fn release_owned(&self) {
        let inner = &self.inner;
        let depth = inner.depth.get().saturating_sub(1);
        inner.depth.set(depth);
        if depth == 0 {
            inner.owner.set(None);
            // Held, so it cannot overflow.
            let _ = inner.core.release();
        }
    }

    /// Whether some greenlet holds the lock.
    pub fn is_locked(&self) -> bool {
        self.inner.owner.get().is_some()
    }

    /// Whether the calling greenlet holds the lock (gevent's `_is_owned()`).
    #[doc(alias = "_is_owned")]
    pub fn is_owned(&self) -> bool {
        self.inner.owner.get() == Some(current_id())
    }
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.inner.owner.get())
            .field("depth", &self.inner.depth.get())
            .field("waiting", &self.inner.core.waiting())
            .finish()
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // The guard is the proof of ownership, even if it moved to another greenlet.
        if self.lock.inner.owner.get() == Some(self.owner) {
            self.lock.release_owned();
        } else {
            log::error!(
                "greenlet::sync::RLockGuard dropped after its lock was released by `RLock::release`"
            );
        }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("owner", &self.owner)
            .finish()
    }
}
