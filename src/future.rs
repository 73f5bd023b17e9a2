//! Rust futures and greenlets, both ways: [`block_on`] runs a `Future` in the calling greenlet,
//! and a [`JoinHandle`] turns into a `Send` future ([`JoinFuture`]) that async code awaits.
//!
//! # A future inside a greenlet
//!
//! [`block_on`] polls the future on the calling greenlet's own stack and parks the greenlet
//! while the future is pending, so the hub runs the other greenlets meanwhile, exactly as
//! during a socket read. The future's [`Waker`] is `Send + Sync` and may be woken from any
//! thread, any number of times: a wake sets a flag and, the first time since the last poll,
//! sends one wake-up through the hub's remote-wake path (its inbox and `mio::Waker` from other
//! threads, the hub directly from its own), so a waker woken a million times costs a million
//! flag swaps and one wake-up, and nothing is lost (`block_on` checks the flag before it
//! parks) or left behind. Waking after the future has finished, even after the
//! greenlet's thread has exited, does nothing.
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//!
//! /// A future that another OS thread completes.
//! struct FromThread(std::sync::mpsc::Receiver<u32>, Option<std::thread::JoinHandle<()>>);
//!
//! impl Future for FromThread {
//!     type Output = u32;
//!     fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
//!         if let Ok(v) = self.0.try_recv() {
//!             return Poll::Ready(v);
//!         }
//!         if self.1.is_none() {
//!             let (tx, rx) = std::sync::mpsc::channel();
//!             let waker = cx.waker().clone();
//!             self.0 = rx;
//!             self.1 = Some(std::thread::spawn(move || {
//!                 tx.send(42).unwrap();
//!                 waker.wake(); // from another thread
//!             }));
//!         }
//!         Poll::Pending
//!     }
//! }
//!
//! let (_, rx) = std::sync::mpsc::channel();
//! assert_eq!(greenlet::block_on(FromThread(rx, None)), 42);
//! ```
//!
//! A future that panics unwinds the calling greenlet, as any panic in it does: a spawned
//! greenlet's [`JoinHandle::get`] then returns [`JoinError::Panicked`], and the hub and the
//! other greenlets carry on.
//!
//! **Futures that need a runtime's reactor are out of scope.** `block_on` is an executor for
//! one future, not a tokio (or async-std, or smol) runtime: a future that registers with such a
//! runtime's reactor or timer wheel (`tokio::net::TcpStream`, `tokio::time::sleep`) panics or
//! never completes here. Use it for futures that need no runtime: `async fn`s and blocks,
//! channels that work without one, futures completed and woken by other threads (a
//! [`JoinFuture`] included); for I/O and timers use this crate's green types, which block
//! only the calling greenlet already.
//!
//! # A greenlet's result inside async code
//!
//! Greenlets and their [`JoinHandle`]s never leave their thread, but
//! [`JoinHandle::into_future`] (the [`IntoFuture`] impl) gives a [`JoinFuture`], which is
//! `Send`: async code on any thread and any executor awaits it for the greenlet's result. It is
//! completed by a link on the greenlet (see [`JoinHandle::link`]), which takes the value as
//! [`get`](JoinHandle::get) would.
//!
//! ```
//! let handle = greenlet::spawn(|| 6 * 7);
//! let future = handle.into_future(); // Send: could be handed to another thread's executor
//! // Here it is awaited by block_on, on the same hub.
//! assert_eq!(greenlet::block_on(future).unwrap(), 42);
//! ```
//!
//! [`IntoFuture`]: std::future::IntoFuture

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::mem::ManuallyDrop;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use crate::hub::waitlist::{BlockError, deadline_after};
use crate::hub::{JoinError, JoinHandle, RemoteNotify, RemoteWait};

/// Runs `future` to completion in the calling greenlet and returns its output, parking the
/// greenlet (not the thread) whenever the future is pending.
///
/// The other greenlets of the hub run while it waits; the future's `Waker` may be woken from
/// any thread (see the [module documentation](crate::future) for the wake-up path and for what
/// is out of scope: futures that need a tokio reactor). When the main greenlet calls it and
/// nothing could ever wake the future (no `Waker` clone is alive and no other greenlet, timer
/// or I/O can run), it panics with the hub's [`LoopExit`](crate::LoopExit) instead of hanging.
///
/// # Panics
/// If the future panics (the panic unwinds the calling greenlet only). If the wait cannot go
/// on: a [`Timeout`](crate::Timeout) of the calling greenlet ran out, the hub was stopped, the
/// hub ran dry (`LoopExit`), or the hub's cross-thread waker could not be created (out of
/// descriptors). [`block_on_timeout`] returns these as errors instead. A soft kill
/// ([`Killed`](crate::Killed)), which asks the blocking call to fail, unwinds the greenlet as
/// a kill does, since this call has no error to return (`block_on_timeout` returns it).
///
/// # Examples
/// ```
/// let v = greenlet::block_on(async { 1 + 2 });
/// assert_eq!(v, 3);
///
/// // A greenlet's result, awaited: the greenlet runs while the future is pending.
/// let other = greenlet::spawn(|| "ran meanwhile");
/// assert_eq!(greenlet::block_on(async { other.await }).unwrap(), "ran meanwhile");
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    match drive(future, None) {
        Ok(v) => v,
        // A soft kill wants this call to fail; it cannot, so the greenlet unwinds as a kill
        // unwinds it (its destructors, the future's included, run).
        Err(DriveError::Killed) => std::panic::resume_unwind(Box::new(crate::GreenletExit)),
        Err(e) => panic!("greenlet::block_on: {e}"),
    }
}

/// [`block_on`] for at most `timeout`: the future is dropped unfinished if it is still pending
/// then.
///
/// # Errors
/// Kind `TimedOut` when `timeout`, or a [`Timeout`](crate::Timeout) of the calling greenlet,
/// runs out first; kind `Other` wrapping the [`LoopExit`](crate::LoopExit) when the hub is
/// stopped or nothing could ever wake the future, or wrapping [`Killed`](crate::Killed) when
/// the greenlet is killed softly; the error of creating the hub's cross-thread waker (out of
/// descriptors).
///
/// # Panics
/// If the future panics.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let e = greenlet::block_on_timeout(std::future::pending::<()>(), Duration::from_millis(5))
///     .unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(greenlet::block_on_timeout(async { 7 }, Duration::ZERO).unwrap(), 7);
/// ```
pub fn block_on_timeout<F: Future>(future: F, timeout: Duration) -> io::Result<F::Output> {
    drive(future, deadline_after(Some(timeout))).map_err(|e| match e {
        DriveError::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for a future")
        }
        DriveError::LoopExit(e) => io::Error::other(e),
        DriveError::Killed => io::Error::other(crate::Killed),
        DriveError::Io(e) => e,
    })
}

enum DriveError {
    TimedOut,
    LoopExit(crate::LoopExit),
    /// The greenlet was killed softly (see [`Killed`](crate::Killed)).
    Killed,
    Io(io::Error),
}

impl fmt::Display for DriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriveError::TimedOut => f.write_str(
                "a Timeout of the calling greenlet ran out while the future was pending \
                 (use block_on_timeout to get an error instead)",
            ),
            DriveError::LoopExit(e) => fmt::Display::fmt(e, f),
            DriveError::Killed => fmt::Display::fmt(&crate::Killed, f),
            DriveError::Io(e) => write!(f, "cannot create the hub's cross-thread waker: {e}"),
        }
    }
}

fn drive<F: Future>(future: F, deadline: Option<Instant>) -> Result<F::Output, DriveError> {
    let mut future = pin!(future);
    let (notify, wait) = RemoteWait::reusable().map_err(DriveError::Io)?;
    let state = Arc::new(WakeState {
        notify,
        woken: AtomicBool::new(false),
        clones: AtomicUsize::new(0),
    });
    // Our own waker is not counted as a clone and never dropped: `state` keeps it valid.
    let waker = ManuallyDrop::new(state.borrowed_waker());
    let mut cx = Context::from_waker(&waker);
    loop {
        // Wakes from now on (during the poll included) queue one wake-up for the park below.
        state.woken.store(false, Ordering::SeqCst);
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(DriveError::TimedOut);
        }
        if state.woken.load(Ordering::SeqCst) {
            // Woken during the poll (by the future itself, or another thread): the wake-up
            // found nobody parked and is gone, so poll again, after the others had a turn.
            crate::yield_now();
            continue;
        }
        // While a clone of the waker is alive, something may still wake the future: the hub
        // must not report that it ran dry. The last clone going wakes us to re-check.
        let held = state.clones.load(Ordering::SeqCst) > 0;
        if held {
            state.notify.hold();
        }
        let r = wait.wait(deadline, &"a Rust future (block_on)");
        if held {
            state.notify.release();
        }
        match r {
            Ok(()) => {}
            Err(BlockError::TimedOut) => {
                // One last poll: the future may have become ready as the time ran out.
                if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
                    return Ok(v);
                }
                return Err(DriveError::TimedOut);
            }
            Err(BlockError::LoopExit(e)) => return Err(DriveError::LoopExit(e)),
            Err(BlockError::Killed) => return Err(DriveError::Killed),
        }
    }
}

/// What every `Waker` of one `block_on` shares.
struct WakeState {
    notify: RemoteNotify,
    /// Set by a wake; the first wake since the last poll queues a wake-up, later ones do not.
    woken: AtomicBool,
    /// Live clones of the waker (`block_on`'s own is not one).
    clones: AtomicUsize,
}

impl WakeState {
    fn wake(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            self.notify.notify();
        }
    }

    /// `block_on`'s own waker: borrows the `Arc` (no count) and must never be dropped.
    fn borrowed_waker(self: &Arc<WakeState>) -> Waker {
        let raw = RawWaker::new(Arc::as_ptr(self).cast(), &VTABLE);
        // SAFETY: the vtable's functions uphold RawWaker's contract for a pointer obtained from
        // an `Arc<WakeState>` (see each function); this one is not counted and is never
        // dropped (it lives in a ManuallyDrop next to the `Arc` that keeps the state alive, and
        // futures can only borrow or clone it).
        unsafe { Waker::from_raw(raw) }
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_waker, wake, wake_by_ref, drop_waker);

/// Clones a waker: one more strong count of the `Arc` and one more live clone.
///
/// # Safety
/// `data` is the pointer of a live waker of this vtable (from `Arc::as_ptr` of a
/// `WakeState`).
unsafe fn clone_waker(data: *const ()) -> RawWaker {
    // SAFETY: `data` comes from `Arc::as_ptr` of an `Arc<WakeState>` that is alive: the waker
    // being cloned is either `block_on`'s own (whose `Arc` outlives every use of it) or a clone,
    // which owns a strong count.
    unsafe { Arc::increment_strong_count(data.cast::<WakeState>()) };
    // SAFETY: as above, the state is alive.
    let state = unsafe { &*data.cast::<WakeState>() };
    state.clones.fetch_add(1, Ordering::SeqCst);
    RawWaker::new(data, &VTABLE)
}

/// Wakes and drops a clone.
///
/// # Safety
/// `data` is the pointer of a counted clone, which the call consumes.
unsafe fn wake(data: *const ()) {
    // SAFETY: the caller owns a clone (a strong count) of a live state; `drop_waker` gives the
    // count back after the wake.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

/// Wakes without consuming.
///
/// # Safety
/// `data` is the pointer of a live waker of this vtable.
unsafe fn wake_by_ref(data: *const ()) {
    // SAFETY: a waker (counted clone or `block_on`'s own) is alive, so is the state.
    let state = unsafe { &*data.cast::<WakeState>() };
    state.wake();
}

/// Drops a clone: one live clone and one strong count less.
///
/// # Safety
/// `data` is the pointer of a counted clone (never `block_on`'s own waker), which the call
/// consumes.
unsafe fn drop_waker(data: *const ()) {
    // SAFETY: only clones are dropped (`block_on`'s own waker never is), and each owns one
    // strong count of a live `Arc<WakeState>`, given back here exactly once.
    let state = unsafe { &*data.cast::<WakeState>() };
    if state.clones.fetch_sub(1, Ordering::SeqCst) == 1 {
        // The last clone went: if `block_on` is parked counting on it, let it re-check (it
        // polls again and parks without holding the hub open).
        state.notify.notify();
    }
    // SAFETY: as above.
    unsafe { Arc::decrement_strong_count(data.cast::<WakeState>()) };
}

// ---------------------------------------------------------------------------------------------
// The other way round: async code waiting for a greenlet.

/// The slot a [`JoinFuture`] shares with the link that completes it.
struct Completion<T> {
    state: Mutex<CompletionState<T>>,
}

struct CompletionState<T> {
    outcome: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
    /// The outcome has been handed to the future.
    taken: bool,
}

impl<T> Completion<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, CompletionState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the outcome (unless one is there) and wakes the future.
    fn complete(&self, outcome: Result<T, JoinError>) {
        let waker = {
            let mut s = self.lock();
            if s.outcome.is_some() || s.taken {
                return;
            }
            s.outcome = Some(outcome);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Completes the future when the greenlet finishes; if it is dropped unrun (with the
/// greenlet's links, which are dropped unrun only if the greenlet is freed without finishing),
/// completes it with `Killed`, so that an awaiting task does not hang on a greenlet that can no
/// longer finish.
struct Completer<T>(Arc<Completion<T>>);

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.0.complete(Err(JoinError::Killed));
    }
}

/// A `Send` future for the outcome of a spawned greenlet, made by
/// [`JoinHandle::into_future`] (`IntoFuture`): async code on any thread awaits it.
///
/// Its output is what [`JoinHandle::get`] would return: the greenlet's value, or
/// [`JoinError::Panicked`] / [`JoinError::Killed`] for how it ended, or [`JoinError::Taken`]
/// when another handle's `get` took the value first. Dropping the future does not affect the
/// greenlet. A greenlet still parked when its thread exits is not unwound today (it is left
/// suspended), so its future never completes: finish or kill such greenlets before their
/// thread ends.
///
/// # Examples
/// Async code on another thread, with a minimal executor of its own, waits for a greenlet:
/// ```
/// use std::sync::{Arc, Condvar, Mutex};
/// use std::task::{Context, Poll, Wake, Waker};
///
/// /// A one-future executor for an OS thread: parks the thread until woken.
/// fn run_on_this_thread<F: std::future::Future>(f: F) -> F::Output {
///     struct Flag(Mutex<bool>, Condvar);
///     impl Wake for Flag {
///         fn wake(self: Arc<Self>) {
///             *self.0.lock().unwrap() = true;
///             self.1.notify_one();
///         }
///     }
///     let flag = Arc::new(Flag(Mutex::new(false), Condvar::new()));
///     let waker = Waker::from(flag.clone());
///     let mut f = std::pin::pin!(f);
///     loop {
///         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
///             return v;
///         }
///         let mut woken = flag.0.lock().unwrap();
///         while !*woken {
///             woken = flag.1.wait(woken).unwrap();
///         }
///         *woken = false;
///     }
/// }
///
/// let handle = greenlet::spawn(|| {
///     greenlet::sleep(std::time::Duration::from_millis(5));
///     "done by a greenlet"
/// });
/// let future = handle.into_future();
/// let waiter = std::thread::spawn(move || run_on_this_thread(future));
/// greenlet::sleep(std::time::Duration::from_millis(20)); // the hub runs the greenlet
/// assert_eq!(waiter.join().unwrap().unwrap(), "done by a greenlet");
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct JoinFuture<T> {
    completion: Arc<Completion<T>>,
}

impl<T> Future for JoinFuture<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.completion.lock();
        if let Some(outcome) = s.outcome.take() {
            s.taken = true;
            return Poll::Ready(outcome);
        }
        if s.taken {
            // Polled again after it completed: the outcome was handed out already.
            return Poll::Ready(Err(JoinError::Taken));
        }
        match &mut s.waker {
            Some(w) => w.clone_from(cx.waker()),
            None => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.completion.lock();
        f.debug_struct("JoinFuture")
            .field("ready", &s.outcome.is_some())
            .field("taken", &s.taken)
            .finish()
    }
}

impl<T: Send + 'static> IntoFuture for JoinHandle<T> {
    type Output = Result<T, JoinError>;
    type IntoFuture = JoinFuture<T>;

    /// A `Send` future for the greenlet's outcome (see [`JoinFuture`]). The value is taken
    /// when the greenlet finishes, as by [`get`](JoinHandle::get): other handles' `get` then
    /// returns [`JoinError::Taken`].
    fn into_future(self) -> JoinFuture<T> {
        let completion = Arc::new(Completion {
            state: Mutex::new(CompletionState {
                outcome: None,
                waker: None,
                taken: false,
            }),
        });
        let completer = Completer(completion.clone());
        self.link(move |h| {
            let outcome = h.get();
            completer.0.complete(outcome);
        });
        JoinFuture { completion }
    }
}
