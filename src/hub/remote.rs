//! Waking a hub from other OS threads: thread-pool results, `Send` handles, greenlets placed
//! on a hub by another thread, stop requests.
//!
//! Greenlets never leave their thread, so another thread cannot hold one. It holds a
//! [`RemoteWaker`] instead: a number that the hub maps back to the parked greenlet, plus the
//! hub's inbox and `mio::Waker` to interrupt its poll.
//!
//! Many wake-ups are cheap: a wake-up is a push onto the hub's inbox under a short lock, and the
//! `eventfd` write of the `mio::Waker` (a system call) happens only for the first wake-up after
//! the hub drained its inbox, and only when the hub is asleep in its poll. A hub busy running
//! greenlets finds the inbox on its next loop turn without any system call. A wake-up from the
//! hub's own thread skips the inbox altogether.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::io::WAKER_TOKEN;
use super::spawn::JoinHandle;
use super::waitlist::BlockError;
use super::{Waiter, park_with, waiter, with_hub};
use crate::error::Panic;

/// Work sent to a hub by another thread: it runs on the hub's thread, in the hub's loop, and
/// only spawns a greenlet there (see `crate::runtime`).
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Gives every hub a number no other hub of the process ever has (addresses are reused).
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// What other threads put in for the hub, under one lock.
#[derive(Default)]
struct Inbox {
    /// Ids of remote wakers that fired.
    woken: Vec<u64>,
    /// Greenlets to spawn.
    jobs: Vec<Job>,
    /// Set when the hub will run no more jobs (its thread is shutting down or gone).
    closed: bool,
}

/// The part of a hub other threads can reach.
struct Shared {
    waker: mio::Waker,
    /// The hub's serial number: a wake-up from the hub's own thread is told apart by it.
    serial: u64,
    inbox: Mutex<Inbox>,
    /// Set by the first wake-up after the hub drained its inbox.
    pending: AtomicBool,
    /// Set while the hub is (about to be) blocked in its poll: only then does a wake-up need
    /// the `mio::Waker`'s system call.
    sleeping: AtomicBool,
    stop: AtomicBool,
    /// Live [`RemoteWaker`]s: while any exists, the hub may be woken from outside, so running
    /// dry is not a `LoopExit`.
    outstanding: AtomicUsize,
    /// Greenlets placed here by other threads that have not finished yet (the load a
    /// `Runtime` balances).
    load: AtomicUsize,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal(&self, id: u64) {
        if self.serial == super::current_serial()
            && super::try_with_hub(|hub| hub.remote.wake_local(id)) == Some(true)
        {
            return;
        }
        self.inbox().woken.push(id);
        self.notify();
    }

    /// Makes sure the hub looks at its inbox soon: the Dekker pair `pending` / `sleeping`
    /// (both sequentially consistent) guarantees that either this call sees the hub asleep and
    /// wakes it, or the hub sees `pending` before it goes to sleep.
    fn notify(&self) {
        if !self.pending.swap(true, Ordering::SeqCst)
            && self.sleeping.load(Ordering::SeqCst)
            && let Err(e) = self.waker.wake()
        {
            log::error!("greenlet: could not wake a hub from another thread: {e}");
        }
    }
}

/// The hub-side state of remote wake-ups.
pub(crate) struct RemoteState {
    shared: OnceCell<Arc<Shared>>,
    serial: u64,
    waiting: RefCell<HashMap<u64, Waiter>>,
    next_id: Cell<u64>,
    /// The drained ids, kept to reuse its allocation.
    spare: RefCell<Vec<u64>>,
    /// Greenlets spawned here by other threads, still running: killed by `kill_spawned`.
    spawned: RefCell<HashMap<u64, JoinHandle<()>>>,
}

impl Default for RemoteState {
    fn default() -> RemoteState {
        RemoteState {
            shared: OnceCell::new(),
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            waiting: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
            spare: RefCell::new(Vec::new()),
            spawned: RefCell::new(HashMap::new()),
        }
    }
}

impl fmt::Debug for RemoteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteState")
            .field("serial", &self.serial)
            .field("waiting", &self.waiting.borrow().len())
            .finish()
    }
}

impl RemoteState {
    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }

    fn shared(&self, registry: &mio::Registry) -> io::Result<&Arc<Shared>> {
        if let Some(s) = self.shared.get() {
            return Ok(s);
        }
        let shared = Arc::new(Shared {
            waker: mio::Waker::new(registry, WAKER_TOKEN)?,
            serial: self.serial,
            inbox: Mutex::new(Inbox::default()),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
            load: AtomicUsize::new(0),
        });
        Ok(self.shared.get_or_init(|| shared))
    }

    /// Wakes a greenlet of this hub from its own thread; false if the hub is busy with its
    /// table (then the wake-up goes through the inbox).
    fn wake_local(&self, id: u64) -> bool {
        let Ok(mut waiting) = self.waiting.try_borrow_mut() else {
            return false;
        };
        let w = waiting.remove(&id);
        drop(waiting);
        if let Some(w) = w {
            w.wake();
        }
        true
    }

    /// Wakes the greenlets whose remote wakers fired and spawns the greenlets sent here.
    #[inline]
    pub(crate) fn drain(&self) {
        // Called on every loop turn: a plain load first, the atomic swap only when something
        // is pending.
        if let Some(shared) = self.shared.get()
            && shared.pending.load(Ordering::Relaxed)
        {
            self.drain_pending(shared);
        }
    }

    #[cold]
    fn drain_pending(&self, shared: &Shared) {
        if !shared.pending.swap(false, Ordering::SeqCst) {
            return;
        }
        let mut ids = std::mem::take(&mut *self.spare.borrow_mut());
        let jobs = {
            let mut inbox = shared.inbox();
            std::mem::swap(&mut inbox.woken, &mut ids);
            std::mem::take(&mut inbox.jobs)
        };
        {
            for id in ids.drain(..) {
                // Not borrowed while waking (or dropping) the waiter.
                let w = self.waiting.borrow_mut().remove(&id);
                if let Some(w) = w {
                    w.wake();
                }
            }
        }
        *self.spare.borrow_mut() = ids;
        run_jobs(jobs);
    }

    /// Whether the hub may block in its poll: marks it asleep, then checks for wake-ups that
    /// came in meanwhile (see [`Shared::notify`]).
    pub(crate) fn prepare_sleep(&self) -> bool {
        match self.shared.get() {
            None => true,
            Some(s) => {
                s.sleeping.store(true, Ordering::SeqCst);
                !s.pending.load(Ordering::SeqCst)
            }
        }
    }

    pub(crate) fn woke_up(&self) {
        if let Some(s) = self.shared.get() {
            s.sleeping.store(false, Ordering::Relaxed);
        }
    }

    /// Thread exit: takes every registered waiter out.
    pub(crate) fn take_waiting(&self) -> HashMap<u64, Waiter> {
        std::mem::take(&mut *self.waiting.borrow_mut())
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.shared
            .get()
            .is_some_and(|s| s.stop.swap(false, Ordering::AcqRel))
    }

    pub(crate) fn has_outstanding(&self) -> bool {
        self.shared
            .get()
            .is_some_and(|s| s.outstanding.load(Ordering::Acquire) > 0)
    }

    pub(crate) fn is_live(&self) -> bool {
        self.has_outstanding()
    }

    /// Refuses jobs from now on (they fail at their sender), and spawns those already sent.
    pub(crate) fn close(&self) {
        if let Some(shared) = self.shared.get() {
            let jobs = {
                let mut inbox = shared.inbox();
                inbox.closed = true;
                std::mem::take(&mut inbox.jobs)
            };
            run_jobs(jobs);
        }
    }

    /// Keeps the handle of a greenlet spawned here by another thread until it finishes.
    pub(crate) fn track(&self, handle: JoinHandle<()>) {
        let id = handle.greenlet().id();
        self.spawned.borrow_mut().insert(id, handle.clone());
        handle.link_internal(move |h| {
            let id = h.greenlet().id();
            let gone = super::try_with_hub(|hub| hub.remote.spawned.borrow_mut().remove(&id));
            drop(gone);
        });
    }

    /// The greenlets spawned here by other threads that are still running.
    pub(crate) fn spawned(&self) -> Vec<JoinHandle<()>> {
        self.spawned.borrow().values().cloned().collect()
    }
}

impl Drop for RemoteState {
    fn drop(&mut self) {
        // The hub is going away with its thread: senders of jobs get an error from now on, and
        // jobs not run are dropped (their joiners learn that the greenlet never ran).
        if let Some(shared) = self.shared.get() {
            let jobs = {
                let mut inbox = shared.inbox();
                inbox.closed = true;
                std::mem::take(&mut inbox.jobs)
            };
            drop(jobs);
        }
    }
}

/// Runs jobs sent by other threads. A job only spawns a greenlet; a panic in one (a
/// destructor of its closure) is logged, never raised into the hub.
fn run_jobs(jobs: Vec<Job>) {
    for job in jobs {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(job)) {
            log::error!(
                "greenlet: placing a greenlet sent from another thread panicked: {}",
                Panic::new(p)
            );
        }
    }
}

/// A `Send + Sync` handle that wakes one greenlet on one hub from any thread.
///
/// Made with [`RemoteWait::new`]; while it exists the waiting hub does not report `LoopExit`.
/// Dropping it without [`wake`](RemoteWaker::wake) wakes the greenlet too, so that it can find
/// out that nothing is coming.
pub struct RemoteWaker {
    shared: Arc<Shared>,
    id: u64,
    done: AtomicBool,
}

impl RemoteWaker {
    /// Wakes the greenlet (once; later calls do nothing).
    pub fn wake(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            self.shared.signal(self.id);
            self.shared.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Gives up without waking anybody (the waiting greenlet itself no longer waits).
    pub(crate) fn disarm(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            self.shared.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        self.wake();
    }
}

impl fmt::Debug for RemoteWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWaker").field("id", &self.id).finish()
    }
}

/// The hub side of a [`RemoteWaker`]: lets the current greenlet park until it fires.
#[derive(Debug)]
pub(crate) struct RemoteWait {
    id: u64,
}

impl RemoteWait {
    /// A new pair; the waker may be sent to any thread.
    pub(crate) fn new() -> io::Result<(RemoteWaker, RemoteWait)> {
        let (shared, wait) = RemoteWait::with_shared()?;
        shared.outstanding.fetch_add(1, Ordering::AcqRel);
        Ok((
            RemoteWaker {
                shared,
                id: wait.id,
                done: AtomicBool::new(false),
            },
            wait,
        ))
    }

    /// A new pair whose waking side fires any number of times (see [`RemoteNotify`]).
    pub(crate) fn reusable() -> io::Result<(RemoteNotify, RemoteWait)> {
        let (shared, wait) = RemoteWait::with_shared()?;
        Ok((
            RemoteNotify {
                shared,
                id: wait.id,
            },
            wait,
        ))
    }

    fn with_shared() -> io::Result<(Arc<Shared>, RemoteWait)> {
        with_hub(|hub| {
            let shared = hub.remote.shared(hub.io.registry()?)?.clone();
            let id = hub.remote.next_id.get() + 1;
            hub.remote.next_id.set(id);
            Ok((shared, RemoteWait { id }))
        })
    }

    /// Parks until the waker fires (or is dropped), or `deadline` (or a `Timeout` of the
    /// greenlet) passes. Callers check their own condition before and after, as with every
    /// park.
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
    ) -> Result<(), BlockError> {
        self.wait_with(deadline, what, true)
    }

    /// [`wait`](RemoteWait::wait), choosing whether the greenlet's `Timeout`s cut it short.
    pub(crate) fn wait_with(
        &self,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
        honour_timeouts: bool,
    ) -> Result<(), BlockError> {
        super::check_can_block();
        let w = waiter();
        with_hub(|hub| hub.remote.waiting.borrow_mut().insert(self.id, w.clone()));
        // Removes the entry however the park ends, a kill included.
        struct Unregister(u64);
        impl Drop for Unregister {
            fn drop(&mut self) {
                let removed =
                    super::try_with_hub(|hub| hub.remote.waiting.borrow_mut().remove(&self.0));
                drop(removed);
            }
        }
        let _unregister = Unregister(self.id);
        let r = park_with(&w, deadline, what, false, honour_timeouts);
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(BlockError::TimedOut),
            Err(e) => Err(e.into()),
        }
    }
}

impl RemoteWait {
    /// Has `w` woken when the waker fires, unless a greenlet waits on it already (its own
    /// wait then wakes whoever else needs waking).
    pub(crate) fn add_waiter(&self, w: &Waiter) {
        with_hub(|hub| {
            let mut waiting = hub.remote.waiting.borrow_mut();
            let entry = waiting.entry(self.id).or_insert_with(|| w.clone());
            if !entry.is_waiting() {
                *entry = w.clone();
            }
        });
    }

    /// Drops the registration if its greenlet no longer waits.
    pub(crate) fn remove_stale(&self) {
        super::try_with_hub(|hub| {
            let mut waiting = hub.remote.waiting.borrow_mut();
            if waiting.get(&self.id).is_some_and(|w| !w.is_waiting()) {
                waiting.remove(&self.id);
            }
        });
    }
}

/// A `Send + Sync` handle that wakes one greenlet on one hub from any thread, any number of
/// times (the waking side of a Rust `Waker`, see `future.rs`).
///
/// Unlike [`RemoteWaker`] it does not keep the hub from reporting `LoopExit` by merely
/// existing: its owner says when it counts, with [`hold`](RemoteNotify::hold) and
/// [`release`](RemoteNotify::release). A notification that finds the greenlet not parked on
/// the matching [`RemoteWait`] is lost (from the hub's own thread at once, from another when
/// the hub drains its inbox): callers keep their own flag and check it before parking.
pub(crate) struct RemoteNotify {
    shared: Arc<Shared>,
    id: u64,
}

impl RemoteNotify {
    /// Wakes the greenlet if it is parked on the matching [`RemoteWait`] (see above); does
    /// nothing harmful once the hub or its thread is gone.
    pub(crate) fn notify(&self) {
        self.shared.signal(self.id);
    }

    /// Counts this as a possible source of wake-ups: the hub does not run dry meanwhile.
    /// Called on the hub's thread; pairs with [`release`](RemoteNotify::release).
    pub(crate) fn hold(&self) {
        self.shared.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// Undoes one [`hold`](RemoteNotify::hold).
    pub(crate) fn release(&self) {
        self.shared.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for RemoteNotify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteNotify")
            .field("id", &self.id)
            .finish()
    }
}

/// A `Send + Sync` handle on a thread's hub, for other threads: stop it, or place greenlets
/// on it with [`spawn`](HubHandle::spawn).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let hub = greenlet::HubHandle::current().unwrap();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(10));
///     hub.stop();
/// });
/// // Would sleep an hour; the other thread stops the hub first.
/// greenlet::sleep(Duration::from_secs(3600));
/// ```
#[derive(Clone)]
pub struct HubHandle {
    shared: Arc<Shared>,
}

impl HubHandle {
    /// A handle on the current thread's hub.
    ///
    /// # Errors
    /// If the hub's poller cannot be created (out of descriptors).
    pub fn current() -> io::Result<HubHandle> {
        with_hub(|hub| {
            Ok(HubHandle {
                shared: hub.remote.shared(hub.io.registry()?)?.clone(),
            })
        })
    }

    /// Asks the hub to stop: the main greenlet's current (or next) blocking call returns at
    /// once with a [`LoopExit`](super::LoopExit) whose `is_stopped()` is true. A hub of a
    /// [`Runtime`](crate::Runtime) shuts down (see [`Runtime::shutdown`](crate::Runtime::shutdown)).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        // Always wake: the stop flag is read on the next loop turn.
        self.shared.pending.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("greenlet: could not wake a hub to stop it: {e}");
        }
    }

    /// Whether the hub still takes greenlets from other threads (its thread is running and
    /// not shutting down).
    pub fn is_open(&self) -> bool {
        !self.shared.inbox().closed
    }

    /// How many greenlets placed on this hub from other threads are still running.
    pub(crate) fn load(&self) -> usize {
        self.shared.load.load(Ordering::Relaxed)
    }

    /// Hands `job` to the hub's thread, to run in its loop, with one unit of the hub's load
    /// (held until the job's greenlet is done with it).
    ///
    /// # Errors
    /// `NotConnected` when the hub's thread has exited or is shutting down; the job is dropped.
    pub(crate) fn submit(&self, job: impl FnOnce(LoadToken) + Send + 'static) -> io::Result<()> {
        let mut inbox = self.shared.inbox();
        if inbox.closed {
            drop(inbox);
            drop(job);
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the hub's thread has exited or is shutting down",
            ));
        }
        self.shared.load.fetch_add(1, Ordering::Relaxed);
        let token = LoadToken {
            shared: self.shared.clone(),
        };
        inbox.jobs.push(Box::new(move || job(token)));
        drop(inbox);
        self.shared.notify();
        Ok(())
    }
}

/// One unit of a hub's [`load`](HubHandle::load), given back when dropped.
pub(crate) struct LoadToken {
    shared: Arc<Shared>,
}

impl Drop for LoadToken {
    fn drop(&mut self) {
        self.shared.load.fetch_sub(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for LoadToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadToken").finish_non_exhaustive()
    }
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle")
            .field("hub", &self.shared.serial)
            .field("open", &self.is_open())
            .finish()
    }
}
