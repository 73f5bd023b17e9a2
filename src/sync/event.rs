//! Events and one-shot results (gevent's `gevent.event`): [`Event`] and [`AsyncResult`] (whose
//! thread-safe [`AsyncSender`] lives in `sender.rs`).

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::io;
use std::mem;
use std::rc::Rc;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::error::{AsyncError, WaitError};
use super::sender::{AsyncSender, SenderInner, SharedError, Slot, SlotState};
use crate::hub::waitlist::{BlockError, WaitList, block_on, deadline_after};
use crate::hub::{self, RemoteWait, Waitable, Wakeup};

/// A flag that greenlets can wait for (gevent's `Event`): [`wait`](Event::wait) blocks until
/// another greenlet [`set`](Event::set)s it, which wakes every waiter at once.
///
/// A waiter woken by `set` returns even if the event was [`clear`](Event::clear)ed again before
/// it ran. Clones are handles on the same event.
///
/// # Examples
/// ```
/// use greenlet::sync::Event;
///
/// let ready = Event::new();
/// let waiters: Vec<_> = (0..3).map(|i| {
///     let ready = ready.clone();
///     greenlet::spawn(move || { ready.wait().unwrap(); i })
/// }).collect();
/// greenlet::yield_now(); // they all start and wait
/// ready.set();
/// let got: Vec<i32> = waiters.iter().map(|h| h.get().unwrap()).collect();
/// assert_eq!(got, [0, 1, 2]);
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<EventInner>,
}

#[derive(Default)]
struct EventInner {
    flag: Cell<bool>,
    /// Counts `set` calls, so that a waiter knows it was set even if cleared since.
    generation: Cell<u64>,
    waiters: WaitList,
}

impl Event {
    /// A new, unset event.
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiting greenlet.
    pub fn set(&self) {
        let inner = &self.inner;
        inner.flag.set(true);
        inner.generation.set(inner.generation.get().wrapping_add(1));
        inner.waiters.wake_all();
    }

    /// Resets the flag: later waits block until the next `set`.
    ///
    /// # Examples
    /// ```
    /// let e = greenlet::sync::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    #[doc(alias = "reset")]
    pub fn clear(&self) {
        self.inner.flag.set(false);
    }

    /// Whether the flag is set (gevent's `is_set()`/`ready()`).
    #[doc(alias = "ready")]
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    fn wait_until(&self, deadline: Option<Instant>, what: &'static str) -> Result<(), WaitError> {
        let inner = &self.inner;
        let start = inner.generation.get();
        block_on(&inner.waiters, deadline, &what, || {
            (inner.flag.get() || inner.generation.get() != start).then_some(())
        })
        .map_err(WaitError::from)
    }

    /// Waits until the flag is set.
    ///
    /// On a set event it returns at once, without yielding, even while greenlets woken by
    /// the same `set` have not run yet (gevent makes such a late waiter yield to them first);
    /// a wait that costs no trip through the hub is worth more than that order, and code that
    /// needs an order between greenlets has a [`Queue`](super::Queue).
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when nothing could ever set it;
    /// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
    pub fn wait(&self) -> Result<(), WaitError> {
        self.wait_until(None, "Event::wait")
    }

    /// The non-blocking form of [`wait`](Event::wait): whether the flag is set.
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Waits at most `timeout` for the flag (gevent's `wait(timeout)`).
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when it was not set in time; `LoopExit` if the hub is stopped.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let e = greenlet::sync::Event::new();
    /// assert!(e.wait_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// e.set();
    /// assert_eq!(e.wait_timeout(Duration::from_millis(1)), Ok(()));
    /// ```
    #[doc(alias = "wait(timeout)")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
        self.wait_until(deadline_after(Some(timeout)), "Event::wait_timeout")
    }
}

/// Ready once set.
impl Waitable for Event {
    fn is_ready(&self) -> bool {
        self.is_set()
    }
    fn add_waiter(&self, wakeup: &Wakeup) {
        self.inner.waiters.push(wakeup.waiter().clone());
    }
    fn remove_waiters(&self) {
        self.inner.waiters.prune();
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// What an [`AsyncResult`] holds.
enum State<T> {
    Pending,
    Done(Result<T, SharedError>),
    /// The value was moved out by `take`.
    Taken,
}

/// The greenlet side's link to its senders.
struct Remote<T> {
    slot: Arc<Slot<T>>,
    wait: Rc<RemoteWait>,
    senders: Weak<SenderInner<T>>,
}

impl<T> Remote<T> {
    /// Fires the senders' waker early: it wakes the greenlet watching for them, if any, and
    /// stops the senders from keeping the hub out of `LoopExit` now that nothing is coming.
    fn release_waker(&self) {
        if let Some(senders) = self.senders.upgrade() {
            senders.waker.wake();
        }
    }
}

struct ResultInner<T> {
    state: RefCell<State<T>>,
    waiters: WaitList,
    remote: RefCell<Option<Remote<T>>>,
    /// Whether one waiter is parked on the remote wake-up (the others wait on `waiters`).
    watching: Cell<bool>,
}

/// A one-shot result that greenlets can wait for (gevent's `AsyncResult`): completed once with
/// [`set`](AsyncResult::set) or [`set_error`](AsyncResult::set_error), after which every
/// [`get`](AsyncResult::get) returns it. Clones are handles on the same result.
///
/// To complete it from another OS thread (a thread pool, a callback API), make an
/// [`AsyncSender`] with [`sender`](AsyncResult::sender): it is `Send`, and it wakes the
/// waiting greenlet through the hub. Dropping every sender without completing the result makes
/// the getters fail with [`AsyncError::SenderDropped`] instead of waiting forever.
///
/// # Examples
/// ```
/// use greenlet::sync::AsyncResult;
///
/// let result = AsyncResult::new();
/// let r = result.clone();
/// greenlet::spawn(move || r.set(6 * 7));
/// assert_eq!(result.get().unwrap(), 42);
/// ```
///
/// From another thread:
/// ```
/// use greenlet::sync::AsyncResult;
///
/// let result = AsyncResult::new();
/// let tx = result.sender();
/// std::thread::spawn(move || tx.set("computed elsewhere"));
/// assert_eq!(result.get().unwrap(), "computed elsewhere");
/// ```
///
/// The result itself stays on its thread:
/// ```compile_fail
/// let result = greenlet::sync::AsyncResult::<u8>::new();
/// std::thread::spawn(move || result.set(1)); // error: `Rc<..>` cannot be sent between threads
/// ```
pub struct AsyncResult<T> {
    inner: Rc<ResultInner<T>>,
}

impl<T> Clone for AsyncResult<T> {
    fn clone(&self) -> Self {
        AsyncResult {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for AsyncResult<T> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T> AsyncResult<T> {
    /// A new, pending result.
    pub fn new() -> AsyncResult<T> {
        AsyncResult {
            inner: Rc::new(ResultInner {
                state: RefCell::new(State::Pending),
                waiters: WaitList::new(),
                remote: RefCell::new(None),
                watching: Cell::new(false),
            }),
        }
    }

    /// Completes the result with `value` and wakes every waiter. Only the first completion
    /// counts: returns whether this one did (if not, `value` is dropped).
    pub fn set(&self, value: T) -> bool {
        self.complete(Ok(value))
    }

    /// Completes the result with an error (gevent's `set_exception`); every getter receives it
    /// as [`AsyncError::Failed`]. Returns whether this call completed the result.
    ///
    /// # Examples
    /// ```
    /// use greenlet::sync::{AsyncError, AsyncResult};
    /// let r = AsyncResult::<u32>::new();
    /// r.set_error("no route to host");
    /// match r.get() {
    ///     Err(AsyncError::Failed(e)) => assert_eq!(e.to_string(), "no route to host"),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    #[doc(alias = "set_exception")]
    pub fn set_error(&self, error: impl Into<Box<dyn Error + Send + Sync>>) -> bool {
        self.complete(Err(Arc::from(error.into())))
    }

    fn complete(&self, outcome: Result<T, SharedError>) -> bool {
        let inner = &self.inner;
        if !self.refresh_pending() {
            return false;
        }
        if let Some(remote) = &*inner.remote.borrow() {
            *remote.slot.lock() = SlotState::Closed;
            remote.release_waker();
        }
        *inner.state.borrow_mut() = State::Done(outcome);
        inner.waiters.wake_all();
        true
    }

    /// Moves a value set by a sender into the greenlet side; returns whether still pending.
    fn refresh_pending(&self) -> bool {
        let inner = &self.inner;
        if !matches!(*inner.state.borrow(), State::Pending) {
            return false;
        }
        let remote = inner.remote.borrow();
        let Some(remote) = remote.as_ref() else {
            return true;
        };
        let mut slot = remote.slot.lock();
        if !matches!(*slot, SlotState::Set(_)) {
            return true;
        }
        let SlotState::Set(outcome) = mem::replace(&mut *slot, SlotState::Closed) else {
            return true;
        };
        drop(slot);
        *inner.state.borrow_mut() = State::Done(outcome);
        inner.waiters.wake_all();
        false
    }

    /// Whether every sender is gone without completing the result.
    fn abandoned(&self) -> bool {
        self.inner
            .remote
            .borrow()
            .as_ref()
            .is_some_and(|r| matches!(*r.slot.lock(), SlotState::Dropped))
    }

    /// Whether senders may still complete it.
    fn remote_open(&self) -> bool {
        self.inner
            .remote
            .borrow()
            .as_ref()
            .is_some_and(|r| matches!(*r.slot.lock(), SlotState::Open))
    }

    /// Whether the result is complete, or can never be completed by its senders (gevent's
    /// `ready()`).
    #[doc(alias = "ready")]
    pub fn is_ready(&self) -> bool {
        !self.refresh_pending() || self.abandoned()
    }

    /// Whether the result holds a value (gevent's `successful()`).
    pub fn is_successful(&self) -> bool {
        !self.refresh_pending()
            && matches!(
                *self.inner.state.borrow(),
                State::Done(Ok(_)) | State::Taken
            )
    }

    fn wait_until(&self, deadline: Option<Instant>, what: &'static str) -> Result<(), WaitError> {
        let inner = &self.inner;
        loop {
            if self.is_ready() {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(WaitError::TimedOut);
            }
            let woken = if self.remote_open() && !inner.watching.get() {
                // This greenlet watches for the senders; the others wait on the list.
                inner.watching.set(true);
                let _watch = Watch(self);
                // Not borrowed across the park: another greenlet may make a sender meanwhile.
                let wait = inner.remote.borrow().as_ref().map(|r| r.wait.clone());
                match wait {
                    Some(wait) => wait.wait(deadline, &what),
                    None => Ok(()),
                }
            } else {
                hub::check_can_block();
                let w = hub::waiter();
                inner.waiters.push(w.clone());
                match hub::park(&w, deadline, &what) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(BlockError::TimedOut),
                    Err(e) => Err(e.into()),
                }
            };
            match woken {
                Ok(()) => {}
                Err(BlockError::TimedOut) if self.is_ready() => return Ok(()),
                Err(e) => {
                    inner.waiters.prune();
                    return Err(e.into());
                }
            }
        }
    }

    /// Waits until the result is complete (or abandoned by its senders), without taking it.
    ///
    /// # Errors
    /// [`WaitError::LoopExit`] when nothing could ever complete it;
    /// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
    pub fn wait(&self) -> Result<(), WaitError> {
        self.wait_until(None, "AsyncResult::wait")
    }

    /// The non-blocking form of [`wait`](AsyncResult::wait): [`is_ready`](AsyncResult::is_ready).
    pub fn try_wait(&self) -> bool {
        self.is_ready()
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    /// [`WaitError::TimedOut`] when it was not completed in time; `LoopExit`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
        self.wait_until(deadline_after(Some(timeout)), "AsyncResult::wait_timeout")
    }

    /// The outcome, if the result is complete: a clone of the value, or the error.
    fn peek(&self) -> Result<T, AsyncError>
    where
        T: Clone,
    {
        if self.refresh_pending() {
            return Err(if self.abandoned() {
                AsyncError::SenderDropped
            } else {
                AsyncError::NotReady
            });
        }
        match &*self.inner.state.borrow() {
            State::Done(Ok(v)) => Ok(v.clone()),
            State::Done(Err(e)) => Err(AsyncError::Failed(e.clone())),
            State::Taken => Err(AsyncError::Taken),
            State::Pending => Err(AsyncError::NotReady),
        }
    }

    /// Waits for the result and returns a clone of its value (gevent's `get()`).
    ///
    /// # Errors
    /// [`AsyncError::Failed`] with the error of `set_error`; [`AsyncError::SenderDropped`];
    /// [`AsyncError::Taken`]; [`AsyncError::LoopExit`] when nothing could ever complete it;
    /// [`AsyncError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
    pub fn get(&self) -> Result<T, AsyncError>
    where
        T: Clone,
    {
        self.wait()?;
        self.peek()
    }

    /// The value if the result is complete now (gevent's `get_nowait()`).
    ///
    /// # Errors
    /// [`AsyncError::NotReady`] if it is not; otherwise as [`get`](AsyncResult::get).
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, AsyncError>
    where
        T: Clone,
    {
        self.peek()
    }

    /// Waits at most `timeout` for the result and returns a clone of its value.
    ///
    /// # Errors
    /// [`AsyncError::TimedOut`] when it was not completed in time; otherwise as
    /// [`get`](AsyncResult::get).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::{AsyncError, AsyncResult};
    /// let r = AsyncResult::<i32>::new();
    /// assert!(matches!(r.get_timeout(Duration::from_millis(1)), Err(AsyncError::TimedOut)));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, AsyncError>
    where
        T: Clone,
    {
        self.wait_timeout(timeout)?;
        self.peek()
    }

    /// Moves the value out of a completed result, without waiting (later getters see
    /// [`AsyncError::Taken`]). For values that are not `Clone`: [`wait`](AsyncResult::wait)
    /// first.
    ///
    /// # Errors
    /// [`AsyncError::NotReady`] if not complete; the failure otherwise.
    ///
    /// # Examples
    /// ```
    /// use greenlet::sync::{AsyncError, AsyncResult};
    /// let r = AsyncResult::new();
    /// r.set(vec![1, 2, 3]);
    /// r.wait().unwrap();
    /// assert_eq!(r.take().unwrap(), [1, 2, 3]);
    /// assert!(matches!(r.take(), Err(AsyncError::Taken)));
    /// ```
    pub fn take(&self) -> Result<T, AsyncError> {
        if self.refresh_pending() {
            return Err(if self.abandoned() {
                AsyncError::SenderDropped
            } else {
                AsyncError::NotReady
            });
        }
        let mut state = self.inner.state.borrow_mut();
        match mem::replace(&mut *state, State::Taken) {
            State::Done(Ok(v)) => Ok(v),
            State::Done(Err(e)) => {
                *state = State::Done(Err(e.clone()));
                Err(AsyncError::Failed(e))
            }
            State::Taken => Err(AsyncError::Taken),
            State::Pending => {
                *state = State::Pending;
                Err(AsyncError::NotReady)
            }
        }
    }

    /// A `Send` handle that completes this result from any thread, waking the greenlet that
    /// waits for it.
    ///
    /// While a sender exists, the hub does not report [`LoopExit`](crate::LoopExit) to a
    /// greenlet waiting for the result: the sender may still come.
    ///
    /// # Panics
    /// If the hub cannot make its cross-thread wake-up (out of file descriptors); see
    /// [`try_sender`](AsyncResult::try_sender).
    pub fn sender(&self) -> AsyncSender<T> {
        self.try_sender()
            .unwrap_or_else(|e| panic!("AsyncResult::sender: {e}"))
    }

    /// [`sender`](AsyncResult::sender) that reports failure as an error.
    ///
    /// # Errors
    /// If the hub's poller or its cross-thread waker cannot be created.
    pub fn try_sender(&self) -> io::Result<AsyncSender<T>> {
        let mut remote = self.inner.remote.borrow_mut();
        if let Some(r) = remote.as_ref()
            && let Some(inner) = r.senders.upgrade()
        {
            return Ok(AsyncSender { inner });
        }
        let pending = matches!(*self.inner.state.borrow(), State::Pending);
        let (waker, wait) = RemoteWait::new()?;
        let slot = Arc::new(Slot {
            state: Mutex::new(if pending {
                SlotState::Open
            } else {
                SlotState::Closed
            }),
        });
        let inner = Arc::new(SenderInner {
            slot: slot.clone(),
            waker,
        });
        if !pending {
            // Already complete: nothing to wait for, so do not hold the hub out of LoopExit.
            inner.waker.wake();
        }
        *remote = Some(Remote {
            slot,
            wait: Rc::new(wait),
            senders: Arc::downgrade(&inner),
        });
        drop(remote);
        if pending {
            // Greenlets already waiting wait on the local list, where no sender can reach them:
            // only one waiter at a time watches the senders' wake-up (see `wait_until`). Wake
            // them so that one of them becomes that watcher; the others wait again.
            self.inner.waiters.wake_all();
        }
        Ok(AsyncSender { inner })
    }
}

impl<T> Drop for ResultInner<T> {
    fn drop(&mut self) {
        if let Some(remote) = self.remote.get_mut() {
            remote.release_waker();
        }
    }
}

/// Clears the watching flag when the watcher leaves, and lets another waiter take over.
struct Watch<'a, T>(&'a AsyncResult<T>);

impl<T> Drop for Watch<'_, T> {
    fn drop(&mut self) {
        let inner = &self.0.inner;
        inner.watching.set(false);
        inner.waiters.wake_one();
    }
}

/// Ready once complete (or abandoned by its senders), as [`AsyncResult::is_ready`] says.
impl<T> Waitable for AsyncResult<T> {
    fn is_ready(&self) -> bool {
        AsyncResult::is_ready(self)
    }
    fn add_waiter(&self, wakeup: &Wakeup) {
        let inner = &self.inner;
        inner.waiters.push(wakeup.waiter().clone());
        if !inner.watching.get()
            && self.remote_open()
            && let Some(remote) = &*inner.remote.borrow()
        {
            // Nobody watches for the senders: this wait does.
            remote.wait.add_waiter(wakeup.waiter());
        }
    }
    fn remove_waiters(&self) {
        self.inner.waiters.prune();
        if let Some(remote) = &*self.inner.remote.borrow() {
            remote.wait.remove_stale();
        }
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self.inner.state.borrow() {
            State::Pending if self.abandoned() => "abandoned",
            State::Pending => "pending",
            State::Done(Ok(_)) => "value",
            State::Done(Err(_)) => "error",
            State::Taken => "taken",
        };
        f.debug_struct("AsyncResult")
            .field("state", &state)
            .finish()
    }
}
