//! Groups of greenlets (gevent's `gevent.pool`): a [`Group`] tracks the greenlets spawned into
//! it, to join or kill them together and to map a function over many items; a [`Pool`] is a
//! group that runs at most `size` greenlets at once, so spawning into a full pool waits.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use greenlet::pool::Pool;
//!
//! let pool = Pool::new(3);
//! // At most three run at once; the results come back in the order of the items.
//! let squares = pool.map(1..=10u64, |n| {
//!     greenlet::sleep(Duration::from_millis(1));
//!     n * n
//! }).unwrap();
//! assert_eq!(squares, [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::panic::{self, AssertUnwindSafe};

use crate::error::{GreenletExit, Panic};
use crate::hub::waitlist::{WaitList, block_on, deadline_after};
use crate::sync::{SemCore, WaitError};
use crate::{Greenlet, JoinError, JoinHandle, SpawnBuilder};

/// A member of a group, whatever its value type.
trait Member {
    fn greenlet(&self) -> &Greenlet;
    fn kill_nowait(&self);
    fn kill_soft(&self);
}

impl<T: 'static> Member for JoinHandle<T> {
    fn greenlet(&self) -> &Greenlet {
        JoinHandle::greenlet(self)
    }
    fn kill_nowait(&self) {
        JoinHandle::kill_nowait(self);
    }
    fn kill_soft(&self) {
        JoinHandle::kill_soft(self);
    }
}

/// What the handles of a group or pool share.
struct Inner {
    kind: &'static str,
    members: RefCell<Vec<Rc<dyn Member>>>,
    /// The members this group has asked to die (gevent's `dying`), by id, and whether the ask
    /// was a hard one (an unwind): each is asked softly at most once and unwound at most once,
    /// so that one that cleans up is not interrupted again and again.
    dying: RefCell<Vec<(u64, bool)>>,
    /// Greenlets waiting for the group to empty.
    emptied: WaitList,
    /// A pool's permits: one per running member.
    limit: Option<SemCore>,
}

/// Names a blocking call in `LoopExit` messages: `Pool::spawn`.
struct What(&'static str, &'static str);

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.0, self.1)
    }
}

fn join_error(e: WaitError) -> JoinError {
    match e {
        WaitError::TimedOut => JoinError::TimedOut,
        WaitError::LoopExit(e) => JoinError::LoopExit(e),
        WaitError::Killed => JoinError::Killed,
    }
}

impl Inner {
    fn new(kind: &'static str, limit: Option<usize>) -> Rc<Inner> {
        Rc::new(Inner {
            kind,
            members: RefCell::new(Vec::new()),
            dying: RefCell::new(Vec::new()),
            emptied: WaitList::new(),
            limit: limit.map(|n| SemCore::new(n, Some(n))),
        })
    }

    fn acquire(&self, deadline: Option<Instant>, op: &'static str) -> Result<(), WaitError> {
        match &self.limit {
            Some(sem) => sem.acquire(deadline, &What(self.kind, op)),
            None => Ok(()),
        }
    }

    fn try_acquire(&self) -> bool {
        self.limit.as_ref().is_none_or(SemCore::try_acquire)
    }

    fn release(&self) {
        if let Some(sem) = &self.limit {
            // One permit per member: cannot overflow.
            let _ = sem.release();
        }
    }

    fn contains(&self, g: &Greenlet) -> bool {
        self.members
            .borrow()
            .iter()
            .any(|m| m.greenlet().id() == g.id())
    }

    /// Spawns `f` as a member; the caller holds a permit for it.
    fn start<T: 'static>(self: &Rc<Self>, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        match SpawnBuilder::new().spawn(f) {
            Ok(h) => {
                self.insert(&h);
                h
            }
            Err(e) => {
                self.release();
                panic!("{}::spawn: {e}", self.kind);
            }
        }
    }

    /// Runs `f` in a member greenlet and waits for its value; in the calling greenlet when it
    /// is a member already (it may hold the last free place itself).
    fn apply<T: 'static>(
        self: &Rc<Self>,
        deadline: Option<Instant>,
        f: impl FnOnce() -> T + 'static,
    ) -> Result<T, JoinError> {
        if self.contains(&crate::current()) {
            return match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => Ok(v),
                // A kill goes on unwinding the caller.
                Err(p) if p.is::<GreenletExit>() => panic::resume_unwind(p),
                Err(p) => Err(JoinError::Panicked(Panic::new(p))),
            };
        }
        self.acquire(deadline, "apply").map_err(join_error)?;
        let h = self.start(f);
        match deadline {
            None => h.get(),
            Some(d) => h.get_timeout(d.saturating_duration_since(Instant::now())),
        }
    }

    /// Spawns `f` as a member (the caller holds a permit); `callback` runs in the member
    /// with the value, if `f` returns one.
    fn start_then<T: 'static>(
        self: &Rc<Self>,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> JoinHandle<T> {
        self.start(move || {
            let v = f();
            callback(&v);
            v
        })
    }

    /// Makes `h` a member; the caller holds a permit for it. It leaves when it finishes.
    fn insert<T: 'static>(self: &Rc<Self>, h: &JoinHandle<T>) {
        if self.contains(h.greenlet()) {
            self.release();
            return;
        }
        self.members.borrow_mut().push(Rc::new(h.clone()));
        let group = Rc::downgrade(self);
        h.link_internal(move |h| {
            if let Some(group) = group.upgrade() {
                group.remove(h.greenlet());
            }
        });
    }

    /// Takes `g` out of the group, returning its permit; returns whether it was a member.
    fn remove(&self, g: &Greenlet) -> bool {
        let removed = {
            let mut members = self.members.borrow_mut();
            let i = members.iter().position(|m| m.greenlet().id() == g.id());
            i.map(|i| members.remove(i))
        };
        let Some(member) = removed else { return false };
        self.dying.borrow_mut().retain(|&(id, _)| id != g.id());
        self.release();
        if self.members.borrow().is_empty() {
            self.emptied.wake_all();
        }
        drop(member);
        true
    }

    fn join(&self, deadline: Option<Instant>, op: &'static str) -> Result<(), WaitError> {
        block_on(&self.emptied, deadline, &What(self.kind, op), || {
            self.members.borrow().is_empty().then_some(())
        })
        .map_err(WaitError::from)
    }

    /// Kills every member (`soft`: asks them to finish, see `JoinHandle::kill_soft`).
    fn kill_nowait(&self, soft: bool) {
        let members: Vec<Rc<dyn Member>> = self.members.borrow().clone();
        let me = crate::current();
        let mut killing_me = None;
        for m in members {
            let id = m.greenlet().id();
            let asked = self
                .dying
                .borrow()
                .iter()
                .find(|&&(d, _)| d == id)
                .map(|&(_, hard)| hard);
            match asked {
                // Unwound already, or asked softly again: nothing more to ask.
                Some(true) => continue,
                Some(false) if soft => continue,
                _ => {}
            }
            let mut dying = self.dying.borrow_mut();
            dying.retain(|&(d, _)| d != id);
            dying.push((id, !soft));
            drop(dying);
            if id == me.id() {
                killing_me = Some(m);
            } else if soft {
                m.kill_soft();
            } else {
                m.kill_nowait();
            }
        }
        // Last: killing the calling greenlet unwinds it here.
        if let Some(m) = killing_me {
            m.kill_nowait();
        }
    }

    /// Kills every member gracefully: a soft kill, `timeout` to finish, then the unwind and
    /// `timeout` again.
    fn kill_gracefully(&self, timeout: Duration) -> Result<(), WaitError> {
        self.kill_nowait(true);
        match self.join(deadline_after(Some(timeout)), "kill_timeout") {
            Err(WaitError::TimedOut) => {
                self.kill_nowait(false);
                self.join(deadline_after(Some(timeout)), "kill_timeout")
            }
            r => r,
        }
    }
}

mod map;

/// The methods a [`Group`] and a [`Pool`] share.
macro_rules! group_methods {
    ($name:ident, $ctor:literal, $unwrap:literal) => {
        /// How many greenlets are in it (still running, or not yet started).
        pub fn len(&self) -> usize {
            self.inner.members.borrow().len()
        }

        /// Whether no greenlet is in it.
        pub fn is_empty(&self) -> bool {
            self.inner.members.borrow().is_empty()
        }

        /// Whether the greenlet of `handle` is in it.
        pub fn contains<T: 'static>(&self, handle: &JoinHandle<T>) -> bool {
            self.inner.contains(handle.greenlet())
        }

        /// Takes a greenlet out without killing it (gevent's `discard`); it no longer counts
        /// for joins, kills or the pool's size. Returns whether it was in.
        pub fn discard<T: 'static>(&self, handle: &JoinHandle<T>) -> bool {
            self.inner.remove(handle.greenlet())
        }

        /// Waits until every greenlet in it has finished (greenlets added meanwhile too).
        ///
        /// # Errors
        /// [`WaitError::LoopExit`] when they could never finish (a member that joins its own
        /// group never does); [`WaitError::TimedOut`] under an expired
        /// [`Timeout`](crate::Timeout).
        ///
        /// # Examples
        /// ```
        #[doc = concat!("let group = ", $ctor, ";")]
        #[doc = concat!("let h = group.spawn(|| greenlet::yield_now())", $unwrap, ";")]
        /// assert_eq!(group.len(), 1);
        /// group.join().unwrap();
        /// assert!(group.is_empty() && h.is_ready());
        /// ```
        pub fn join(&self) -> Result<(), WaitError> {
            self.inner.join(None, "join")
        }

        /// The non-blocking form of [`join`](Self::join): whether it is empty.
        pub fn try_join(&self) -> bool {
            self.is_empty()
        }

        /// Waits at most `timeout` until every greenlet in it has finished.
        ///
        /// # Errors
        /// [`WaitError::TimedOut`] when some are still running; `LoopExit`.
        pub fn join_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
            self.inner.join(deadline_after(Some(timeout)), "join_timeout")
        }

        /// Kills every greenlet in it at once and waits until they are gone (gevent's
        /// `kill()`). If the calling greenlet is in it, it is killed last, and this call does
        /// not return. Their destructors cannot block (see
        /// [`JoinHandle::kill`](crate::JoinHandle::kill)); for cleanup that blocks, use
        /// [`kill_timeout`](Self::kill_timeout).
        ///
        /// # Errors
        /// As [`join`](Self::join).
        ///
        /// # Examples
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let group = ", $ctor, ";")]
        #[doc = concat!("let h = group.spawn(|| greenlet::sleep(Duration::from_secs(3600)))", $unwrap, ";")]
        /// group.kill().unwrap();
        /// assert!(group.is_empty());
        /// assert!(matches!(h.get(), Err(greenlet::JoinError::Killed)));
        /// ```
        pub fn kill(&self) -> Result<(), WaitError> {
            self.inner.kill_nowait(false);
            self.inner.join(None, "kill")
        }

        /// Asks every greenlet in it to die, without waiting (gevent's `kill(block=False)`).
        ///
        /// Each member is asked once (by any of the group's kills): one that catches the kill
        /// to clean up is not interrupted again by the next kill of the group, which only
        /// waits for it (gevent's `dying` set).
        pub fn kill_nowait(&self) {
            self.inner.kill_nowait(false);
        }

        /// Kills every greenlet in it gracefully, as
        /// [`JoinHandle::kill_timeout`](crate::JoinHandle::kill_timeout) does one: each one's
        /// blocking call fails with [`Killed`](crate::Killed) and its cleanup may block; those
        /// still running after `timeout` are unwound, and waited for at most `timeout` more
        /// (gevent's `kill(timeout=...)`).
        ///
        /// # Errors
        /// [`WaitError::TimedOut`] when some are still running after both waits (only a
        /// greenlet that catches the unwind and goes on can be); `LoopExit`;
        /// [`WaitError::Killed`] if the caller is killed softly meanwhile.
        pub fn kill_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
            self.inner.kill_gracefully(timeout)
        }

        /// Runs `f` in a greenlet of this group and waits for its value (gevent's `apply`).
        ///
        /// Called from a greenlet that is already in it, `f` runs right there instead, as in
        /// gevent: waiting for a place the caller may hold itself could never end.
        ///
        /// # Errors
        /// [`JoinError::Panicked`] when `f` panics; [`JoinError::Killed`] when its greenlet is
        /// killed (or the caller is killed softly while it waits); [`JoinError::LoopExit`]
        /// when it could never get a place or finish.
        ///
        /// # Examples
        /// ```
        #[doc = concat!("let group = ", $ctor, ";")]
        /// assert_eq!(group.apply(|| 6 * 7).unwrap(), 42);
        /// let failed = group.apply(|| -> u32 { panic!("expected panic: in apply") });
        /// assert!(matches!(failed, Err(greenlet::JoinError::Panicked(_))));
        /// ```
        pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Result<T, JoinError> {
            self.inner.apply(None, f)
        }

        /// [`apply`](Self::apply), waiting at most `timeout` for a place and the value. When
        /// the time runs out after `f` started, its greenlet goes on running in the group.
        ///
        /// # Errors
        /// [`JoinError::TimedOut`]; otherwise as [`apply`](Self::apply).
        ///
        /// # Examples
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let group = ", $ctor, ";")]
        /// let slow = group.apply_timeout(Duration::from_millis(1), || {
        ///     greenlet::sleep(Duration::from_secs(3600))
        /// });
        /// assert!(matches!(slow, Err(greenlet::JoinError::TimedOut)));
        /// group.kill().unwrap();
        /// ```
        pub fn apply_timeout<T: 'static>(
            &self,
            timeout: Duration,
            f: impl FnOnce() -> T + 'static,
        ) -> Result<T, JoinError> {
            self.inner.apply(deadline_after(Some(timeout)), f)
        }

        /// Runs `f` on every item, each in a greenlet of this group, and returns the results in
        /// the order of the items (gevent's `map`).
        ///
        /// # Errors
        /// The first failure in item order: a panic of `f` ([`JoinError::Panicked`]), a kill,
        /// or a wait that gave up. Greenlets already started keep running.
        ///
        /// # Examples
        /// ```
        #[doc = concat!("let group = ", $ctor, ";")]
        /// let lens = group.map(["a", "bb", "ccc"], |s| s.len()).unwrap();
        /// assert_eq!(lens, [1, 2, 3]);
        /// ```
        pub fn map<A, R, I, F>(&self, items: I, f: F) -> Result<Vec<R>, JoinError>
        where
            A: 'static,
            R: 'static,
            I: IntoIterator<Item = A>,
            F: Fn(A) -> R + 'static,
        {
            self.imap(items, f).collect()
        }

        /// Like [`map`](Self::map), lazily: an iterator of each item's outcome, in item order
        /// (gevent's `imap`). Items are taken from `items` as there is room to run them, and
        /// only while the iterator is asked for its next element: a pool's `imap` runs at most
        /// its size ahead of a slow reader (gevent's `maxsize` has no counterpart), a group's
        /// starts every item at once.
        ///
        /// The iterator ends after the last item, or after a wait of its own gave up (that
        /// error is its last element).
        ///
        /// # Examples
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let group = ", $ctor, ";")]
        /// let it = group.imap([30u64, 10, 20], |ms| {
        ///     greenlet::sleep(Duration::from_millis(ms));
        ///     ms
        /// });
        /// let got: Vec<u64> = it.map(Result::unwrap).collect();
        /// assert_eq!(got, [30, 10, 20]);
        /// ```
        pub fn imap<A, R, I, F>(&self, items: I, f: F) -> impl Iterator<Item = Result<R, JoinError>> + use<A, R, I, F>
        where
            A: 'static,
            R: 'static,
            I: IntoIterator<Item = A>,
            F: Fn(A) -> R + 'static,
        {
            map::mapper(&self.inner, items, f, true)
        }

        /// Like [`imap`](Self::imap), but yields each outcome as soon as its greenlet finishes
        /// (gevent's `imap_unordered`).
        ///
        /// # Examples
        /// ```
        /// use std::time::Duration;
        #[doc = concat!("let group = ", $ctor, ";")]
        /// let it = group.imap_unordered([30u64, 1], |ms| {
        ///     greenlet::sleep(Duration::from_millis(ms));
        ///     ms
        /// });
        /// let got: Vec<u64> = it.map(Result::unwrap).collect();
        /// assert_eq!(got, [1, 30]);
        /// ```
        pub fn imap_unordered<A, R, I, F>(
            &self,
            items: I,
            f: F,
        ) -> impl Iterator<Item = Result<R, JoinError>> + use<A, R, I, F>
        where
            A: 'static,
            R: 'static,
            I: IntoIterator<Item = A>,
            F: Fn(A) -> R + 'static,
        {
            map::mapper(&self.inner, items, f, false)
        }
    };
}

/// A set of greenlets to join or kill together (gevent's `Group`): greenlets spawned into it
/// (or [`add`](Group::add)ed) leave it when they finish. Clones are handles on the same group.
///
/// # Examples
/// ```
/// use greenlet::pool::Group;
///
/// let group = Group::new();
/// let a = group.spawn(|| 1);
/// let b = group.spawn(|| 2);
/// group.join().unwrap();
/// assert_eq!(a.get().unwrap() + b.get().unwrap(), 3);
/// ```
#[derive(Clone)]
pub struct Group {
    inner: Rc<Inner>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group {
            inner: Inner::new("Group", None),
        }
    }

    /// Spawns `f` as a new greenlet in the group.
    ///
    /// # Panics
    /// If no stack can be had, as [`spawn`](crate::spawn).
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> JoinHandle<T> {
        self.inner.start(f)
    }

    /// Spawns `f` in the group and returns its handle at once; when `f` returns a value,
    /// `callback` runs with it in the same greenlet (gevent's `apply_async(func,
    /// callback=...)`; a panic of `f` skips it).
    ///
    /// # Panics
    /// If no stack can be had, as [`spawn`](crate::spawn).
    ///
    /// # Examples
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let group = greenlet::pool::Group::new();
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let h = group.apply_async(|| 6 * 7, move |v| s.set(*v));
    /// assert_eq!(h.get().unwrap(), 42);
    /// assert_eq!(seen.get(), 42);
    /// ```
    pub fn apply_async<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> JoinHandle<T> {
        self.inner.start_then(f, callback)
    }

    /// Adds an already spawned greenlet; adding a member again does nothing, and a finished
    /// greenlet leaves at once.
    pub fn add<T: 'static>(&self, handle: &JoinHandle<T>) {
        self.inner.insert(handle);
    }

    group_methods!(Group, "greenlet::pool::Group::new()", "");
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}

/// A group that runs at most `size` greenlets at once (gevent's `Pool`): spawning into a full
/// pool waits until a member finishes. Waiting spawners are served in arrival order. Clones
/// are handles on the same pool.
///
/// # Examples
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use greenlet::pool::Pool;
///
/// let pool = Pool::new(2);
/// let (running, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// for _ in 0..6 {
///     let (running, most) = (running.clone(), most.clone());
///     pool.spawn(move || {
///         running.set(running.get() + 1);
///         most.set(most.get().max(running.get()));
///         greenlet::yield_now();
///         running.set(running.get() - 1);
///     })
///     .unwrap(); // waits while two are running
/// }
/// pool.join().unwrap();
/// assert_eq!(most.get(), 2);
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
    size: usize,
}

impl Pool {
    /// A pool of at most `size` running greenlets. A size of 0 is allowed (gevent's
    /// `Pool(0)`): it is always full.
    pub fn new(size: usize) -> Pool {
        Pool {
            inner: Inner::new("Pool", Some(size)),
            size,
        }
    }

    /// The most greenlets it runs at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many more greenlets could start now without waiting (gevent's `free_count()`).
    pub fn free_count(&self) -> usize {
        self.inner
            .limit
            .as_ref()
            .map_or(usize::MAX, SemCore::permits)
    }

    /// Whether a spawn would wait (gevent's `full()`).
    #[doc(alias = "full")]
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    fn wait_available_until(
        &self,
        deadline: Option<Instant>,
        op: &'static str,
    ) -> Result<usize, WaitError> {
        match &self.inner.limit {
            Some(sem) => sem.wait_available(deadline, &What("Pool", op)),
            None => Ok(usize::MAX),
        }
    }

    /// Waits until a greenlet could start without waiting, and returns how many could
    /// (gevent's `wait_available()`).
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when no member could ever finish; [`WaitError::TimedOut`]
    /// under an expired [`Timeout`](crate::Timeout).
    pub fn wait_available(&self) -> Result<usize, WaitError> {
        self.wait_available_until(None, "wait_available")
    }

    /// The non-blocking form of [`wait_available`](Pool::wait_available): the
    /// [`free_count`](Pool::free_count).
    pub fn try_wait_available(&self) -> usize {
        self.free_count()
    }

    /// Waits at most `timeout` until a greenlet could start without waiting.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the pool stayed full; `LoopExit`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::pool::Pool::new(0);
    /// assert!(pool.wait_available_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// ```
    pub fn wait_available_timeout(&self, timeout: Duration) -> Result<usize, WaitError> {
        self.wait_available_until(deadline_after(Some(timeout)), "wait_available_timeout")
    }

    /// Spawns `f` as a new greenlet in the pool, first waiting while the pool is full.
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when the pool is full and no member could ever finish;
    /// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
    ///
    /// # Panics
    /// If no stack can be had, as [`spawn`](crate::spawn).
    pub fn spawn<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
    ) -> Result<JoinHandle<T>, WaitError> {
        self.inner.acquire(None, "spawn")?;
        Ok(self.inner.start(f))
    }

    /// Spawns `f` in the pool, first waiting while it is full, and returns its handle; when
    /// `f` returns a value, `callback` runs with it in the same greenlet (gevent's
    /// `apply_async(func, callback=...)`; a panic of `f` skips it).
    ///
    /// # Errors
    /// As [`spawn`](Pool::spawn).
    ///
    /// # Panics
    /// As [`spawn`](Pool::spawn).
    ///
    /// # Examples
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let pool = greenlet::pool::Pool::new(2);
    /// let done = Rc::new(RefCell::new(Vec::new()));
    /// for n in 1..=4u32 {
    ///     let d = done.clone();
    ///     pool.apply_async(move || n * n, move |v| d.borrow_mut().push(*v)).unwrap();
    /// }
    /// pool.join().unwrap();
    /// assert_eq!(*done.borrow(), [1, 4, 9, 16]);
    /// ```
    pub fn apply_async<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> Result<JoinHandle<T>, WaitError> {
        self.inner.acquire(None, "apply_async")?;
        Ok(self.inner.start_then(f, callback))
    }

    /// [`apply_async`](Pool::apply_async), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the pool stayed full; otherwise as
    /// [`spawn`](Pool::spawn).
    ///
    /// # Panics
    /// As [`spawn`](Pool::spawn).
    pub fn apply_async_timeout<T: 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce() -> T + 'static,
        callback: impl FnOnce(&T) + 'static,
    ) -> Result<JoinHandle<T>, WaitError> {
        self.inner
            .acquire(deadline_after(Some(timeout)), "apply_async_timeout")?;
        Ok(self.inner.start_then(f, callback))
    }

    /// Spawns `f` if the pool has room right now; `None` (and `f` dropped) if it is full.
    ///
    /// # Panics
    /// As [`spawn`](Pool::spawn).
    ///
    /// # Examples
    /// ```
    /// let pool = greenlet::pool::Pool::new(1);
    /// assert!(pool.try_spawn(|| ()).is_some());
    /// assert!(pool.try_spawn(|| ()).is_none());
    /// ```
    pub fn try_spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Option<JoinHandle<T>> {
        self.inner.try_acquire().then(|| self.inner.start(f))
    }

    /// Spawns `f`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the pool stayed full; `LoopExit`.
    ///
    /// # Panics
    /// As [`spawn`](Pool::spawn).
    pub fn spawn_timeout<T: 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce() -> T + 'static,
    ) -> Result<JoinHandle<T>, WaitError> {
        self.inner
            .acquire(deadline_after(Some(timeout)), "spawn_timeout")?;
        Ok(self.inner.start(f))
    }

    /// Adds an already spawned greenlet, waiting while the pool is full (gevent's `add`).
    /// Adding a member again does nothing; a finished greenlet leaves at once.
    ///
    /// # Errors
    /// As [`spawn`](Pool::spawn).
    pub fn add<T: 'static>(&self, handle: &JoinHandle<T>) -> Result<(), WaitError> {
        if !self.contains(handle) {
            self.inner.acquire(None, "add")?;
            self.inner.insert(handle);
        }
        Ok(())
    }

    /// Adds an already spawned greenlet if the pool has room right now (gevent's
    /// `add(blocking=False)`, without `PoolFull`); returns whether it is a member.
    pub fn try_add<T: 'static>(&self, handle: &JoinHandle<T>) -> bool {
        if self.contains(handle) {
            return true;
        }
        if !self.inner.try_acquire() {
            return false;
        }
        self.inner.insert(handle);
        true
    }

    /// Adds an already spawned greenlet, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when the pool stayed full; `LoopExit`.
    pub fn add_timeout<T: 'static>(
        &self,
        handle: &JoinHandle<T>,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        if !self.contains(handle) {
            self.inner
                .acquire(deadline_after(Some(timeout)), "add_timeout")?;
            self.inner.insert(handle);
        }
        Ok(())
    }

    group_methods!(Pool, "greenlet::pool::Pool::new(2)", ".unwrap()");
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("len", &self.len())
            .field("free", &self.free_count())
            .finish()
    }
}
