//! Semaphores (gevent's `gevent.lock.Semaphore` and `BoundedSemaphore`), and the core that
//! the locks of [`lock`](super::lock) and the pools of [`pool`](crate::pool) share.
//!
//! Waiters are served in arrival order, and a release hands its permit straight to the
//! longest-waiting greenlet: a greenlet that runs between the release and the waiter's wake-up
//! cannot take the permit first (gevent's `TestSemaphoreFair`).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::error::{ReleaseError, WaitError};
use super::parked::Parked;
use crate::hub::waitlist::{WaitList, block_on, deadline_after};
use crate::hub::{Waitable, Wakeup};

/// The shared state of every semaphore and lock here.
pub(crate) struct SemCore {
    permits: Cell<usize>,
    /// The most permits there may be (bounded semaphores and locks).
    limit: Option<usize>,
    waiters: Parked<()>,
    /// Greenlets waiting for a permit to be free without taking it (`Pool::wait_available`).
    watchers: WaitList,
}

impl SemCore {
    pub(crate) fn new(permits: usize, limit: Option<usize>) -> SemCore {
        SemCore {
            permits: Cell::new(permits),
            limit,
            waiters: Parked::new(),
            watchers: WaitList::new(),
        }
    }

    pub(crate) fn permits(&self) -> usize {
        self.permits.get()
    }

    pub(crate) fn try_acquire(&self) -> bool {
        match self.permits.get() {
            0 => false,
            n => {
                self.permits.set(n - 1);
                true
            }
        }
    }

    pub(crate) fn acquire(
        &self,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
    ) -> Result<(), WaitError> {
        loop {
            if self.try_acquire() {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(WaitError::TimedOut);
            }
            // A permit handed to us that we cannot take (we are being killed) goes on.
            let woken = self
                .waiters
                .park(None, deadline, what, |()| self.put_back());
            if woken.served {
                return Ok(());
            }
            match woken.woken {
                Ok(true) => {}
                Ok(false) if self.try_acquire() => return Ok(()),
                Ok(false) => return Err(WaitError::TimedOut),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Returns a permit: to the longest waiter if there is one, else to the count.
    pub(crate) fn release(&self) -> Result<(), ReleaseError> {
        if self.waiters.offer(()).is_ok() {
            return Ok(());
        }
        let n = self.permits.get();
        if let Some(limit) = self.limit
            && n >= limit
        {
            return Err(ReleaseError::Overflow { limit });
        }
        self.permits.set(n.saturating_add(1));
        self.watchers.wake_all();
        Ok(())
    }

    fn put_back(&self) {
        // Cannot overflow: the permit was taken from this semaphore.
        let _ = self.release();
    }

    /// Waits until a permit is free, without taking it; returns how many are.
    pub(crate) fn wait_available(
        &self,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
    ) -> Result<usize, WaitError> {
        block_on(&self.watchers, deadline, what, || {
            match self.permits.get() {
                0 => None,
                n => Some(n),
            }
        })
        .map_err(WaitError::from)
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiters.len()
    }
}

/// Ready while a permit is free; a wait on it does not take the permit (gevent's `wait` and
/// `iwait` on a semaphore): call `try_acquire` after it, and expect another greenlet may have
/// taken the permit in between.
impl Waitable for SemCore {
    fn is_ready(&self) -> bool {
        self.permits.get() > 0
    }
    fn add_waiter(&self, wakeup: &Wakeup) {
        self.watchers.push(wakeup.waiter().clone());
    }
    fn remove_waiters(&self) {
        self.watchers.prune();
    }
}

impl fmt::Debug for SemCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemCore")
            .field("permits", &self.permits.get())
            .field("limit", &self.limit)
            .field("waiting", &self.waiters.len())
            .finish()
    }
}

/// A counting semaphore (gevent's `Semaphore`): [`acquire`](Semaphore::acquire) takes a
/// permit, blocking the greenlet while there is none, and returns a [`SemaphoreGuard`] that
/// gives the permit back when dropped. Waiters are served first come, first served.
///
/// The guard is gevent's `with sem:`: the permit comes back however the holder leaves its scope,
/// a panic or a kill included, so a killed holder never keeps its permit. gevent's manual form
/// is here too: [`SemaphoreGuard::forget`] keeps the permit taken, and
/// [`release`](Semaphore::release) (from any greenlet) gives one back.
///
/// Clones are handles on the same semaphore.
///
/// # Examples
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use greenlet::sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let (running, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// let workers: Vec<_> = (0..5).map(|_| {
///     let (sem, running, most) = (sem.clone(), running.clone(), most.clone());
///     greenlet::spawn(move || {
///         let _permit = sem.acquire().unwrap(); // given back at the end of the scope
///         running.set(running.get() + 1);
///         most.set(most.get().max(running.get()));
///         greenlet::yield_now();
///         running.set(running.get() - 1);
///     })
/// }).collect();
/// greenlet::joinall(&workers, None, None).unwrap();
/// assert_eq!(most.get(), 2);
/// assert_eq!(sem.available_permits(), 2);
/// ```
///
/// A holder that is killed gives its permit back as its stack unwinds:
/// ```
/// use std::time::Duration;
/// use greenlet::sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// let s = sem.clone();
/// let holder = greenlet::spawn(move || {
///     let _permit = s.acquire().unwrap();
///     greenlet::sleep(Duration::from_secs(3600));
/// });
/// greenlet::yield_now(); // it takes the permit and sleeps
/// assert_eq!(sem.available_permits(), 0);
/// holder.kill().unwrap();
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[derive(Clone)]
pub struct Semaphore {
    core: Rc<SemCore>,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            core: Rc::new(SemCore::new(permits, None)),
        }
    }

    /// Takes a permit, waiting for one as long as needed; the guard gives it back when dropped.
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when nothing could ever release one;
    /// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
    ///
    /// # Examples
    /// ```
    /// let sem = greenlet::sync::Semaphore::new(1);
    /// let permit = sem.acquire().unwrap();
    /// assert!(sem.acquire().is_err()); // main would wait forever: LoopExit
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, WaitError> {
        self.core.acquire(None, &"Semaphore::acquire")?;
        Ok(SemaphoreGuard::new(&self.core))
    }

    /// Takes a permit if one is free right now (gevent's `acquire(blocking=False)`).
    ///
    /// # Examples
    /// ```
    /// let sem = greenlet::sync::Semaphore::new(1);
    /// let permit = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(permit);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    #[doc(alias = "acquire(blocking=False)")]
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.core
            .try_acquire()
            .then(|| SemaphoreGuard::new(&self.core))
    }

    /// Takes a permit, waiting at most `timeout` (gevent's `acquire(timeout=...)`).
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when no permit came in time; [`WaitError::LoopExit`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let sem = greenlet::sync::Semaphore::new(0);
    /// assert!(sem.acquire_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    #[doc(alias = "acquire(timeout)")]
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>, WaitError> {
        self.core
            .acquire(deadline_after(Some(timeout)), &"Semaphore::acquire_timeout")?;
        Ok(SemaphoreGuard::new(&self.core))
    }

    /// Gives a permit back by hand (gevent's `release()`), for one kept with
    /// [`SemaphoreGuard::forget`]; the longest-waiting greenlet gets it directly. Any greenlet
    /// may release, and an unbounded semaphore takes more permits than it started with.
    ///
    /// # Examples
    /// ```
    /// let sem = greenlet::sync::Semaphore::new(1);
    /// sem.acquire().unwrap().forget(); // gevent's sem.acquire()
    /// assert_eq!(sem.available_permits(), 0);
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn release(&self) {
        // Unbounded: cannot fail (the count saturates).
        let _ = self.core.release();
    }

    /// How many permits are free (gevent's `counter`).
    #[doc(alias = "counter")]
    pub fn available_permits(&self) -> usize {
        self.core.permits()
    }

    /// Whether no permit is free (gevent's `locked()`).
    pub fn is_locked(&self) -> bool {
        self.core.permits() == 0
    }
}

/// `Waitable` for the semaphore types, through their core: ready while a permit is free,
/// without taking it (gevent's `wait([sem])`). A greenlet that then wants the permit calls
/// `try_acquire`, which may find it taken by another greenlet that ran in between.
macro_rules! waitable_through_core {
    ($($ty:ty),*) => {$(
        /// Ready while a permit is free, without taking it: see [`Waitable`].
        impl Waitable for $ty {
            fn is_ready(&self) -> bool {
                self.core.is_ready()
            }
            fn add_waiter(&self, wakeup: &Wakeup) {
                self.core.add_waiter(wakeup)
            }
            fn remove_waiters(&self) {
                self.core.remove_waiters()
            }
        }
    )*};
}

waitable_through_core!(Semaphore, BoundedSemaphore);

impl Default for Semaphore {
    /// A semaphore with one permit, as gevent's `Semaphore()`.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.core.permits())
            .field("waiting", &self.core.waiting())
            .finish()
    }
}

/// A semaphore that may not be released more times than it was acquired (gevent's
/// `BoundedSemaphore`): an over-release is a [`ReleaseError`], not a silent extra permit.
///
/// [`acquire`](BoundedSemaphore::acquire) returns a [`SemaphoreGuard`], as
/// [`Semaphore`]'s does.
///
/// # Examples
/// ```
/// use greenlet::sync::{BoundedSemaphore, ReleaseError};
///
/// let sem = BoundedSemaphore::new(1);
/// drop(sem.acquire().unwrap()); // taken and given back
/// sem.acquire().unwrap().forget(); // taken by hand...
/// sem.release().unwrap(); // ...and given back by hand
/// assert_eq!(sem.release(), Err(ReleaseError::Overflow { limit: 1 }));
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    core: Rc<SemCore>,
}

impl BoundedSemaphore {
    /// A semaphore with `permits` permits, never more.
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            core: Rc::new(SemCore::new(permits, Some(permits))),
        }
    }

    /// Takes a permit, waiting for one as long as needed; the guard gives it back when dropped.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub fn acquire(&self) -> Result<SemaphoreGuard<'_>, WaitError> {
        self.core.acquire(None, &"BoundedSemaphore::acquire")?;
        Ok(SemaphoreGuard::new(&self.core))
    }

    /// Takes a permit if one is free right now.
    #[doc(alias = "acquire(blocking=False)")]
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.core
            .try_acquire()
            .then(|| SemaphoreGuard::new(&self.core))
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>, WaitError> {
        self.core.acquire(
            deadline_after(Some(timeout)),
            &"BoundedSemaphore::acquire_timeout",
        )?;
        Ok(SemaphoreGuard::new(&self.core))
    }

    /// Gives a permit back by hand (gevent's `release()`), for one kept with
    /// [`SemaphoreGuard::forget`]; the longest-waiting greenlet gets it directly.
    ///
    /// # Errors
    /// [`ReleaseError::Overflow`] when every permit is already free.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.release()
    }

    /// How many permits are free.
    #[doc(alias = "counter")]
    pub fn available_permits(&self) -> usize {
        self.core.permits()
    }

    /// Whether no permit is free.
    pub fn is_locked(&self) -> bool {
        self.core.permits() == 0
    }
}

impl Default for BoundedSemaphore {
    /// A bounded semaphore with one permit.
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("permits", &self.core.permits())
            .field("limit", &self.core.limit)
            .field("waiting", &self.core.waiting())
            .finish()
    }
}

/// A permit taken from a [`Semaphore`] or a [`BoundedSemaphore`]; dropping it gives the permit
/// back (to the longest-waiting greenlet, if any).
///
/// Made by `acquire`, `try_acquire` and `acquire_timeout`. Because the permit comes back in the
/// guard's destructor, a holder that panics or is killed gives it back as its stack unwinds.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    core: &'a SemCore,
}

impl<'a> SemaphoreGuard<'a> {
    fn new(core: &'a SemCore) -> SemaphoreGuard<'a> {
        SemaphoreGuard { core }
    }

    /// Keeps the permit taken without a guard: gevent's manual `acquire()`, to be paired with a
    /// `release()` later, by this greenlet or another.
    ///
    /// # Examples
    /// ```
    /// use greenlet::sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// sem.acquire().unwrap().forget();
    /// let s = sem.clone();
    /// let releaser = greenlet::spawn(move || s.release()); // any greenlet may release
    /// releaser.join().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // A bounded semaphore refuses only if someone released this permit by hand already
        // (with `release` instead of `forget` + `release`): the count stays at its limit.
        if self.core.release().is_err() {
            log::error!(
                "greenlet::sync::SemaphoreGuard dropped after its permit was given back by `release`"
            );
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("available_permits", &self.core.permits())
            .finish()
    }
}
