//! Waking a hub from other OS threads: thread-pool results, `Send` handles, greenlets placed
//! on a hub by another thread, stop requests.
//!
//! Greenlets never leave their thread, so another thread cannot hold one. It holds a
//! [`RemoteWaker`] instead: a number that the hub maps back to the parked greenlet, plus the
//! hub's inbox and `mio::Waker` to interrupt its poll.
//!
//! Many wake-ups are cheap: a wake-up is one compare-and-swap onto the hub's lock-free wake
//! list (`super::wakelist`), and the `eventfd` write of the `mio::Waker` (a system call)
//! happens only for the first wake-up after the hub took the list, and only when the hub is
//! asleep in its poll. A hub busy running greenlets finds the list on its next loop turn
//! without any system call; an idle hub whose recent wake-ups came quickly from other threads
//! spins briefly before it sleeps (see `super::spin`), so that a ping-pong between hubs that
//! both have a core needs no system call either. A wake-up from the hub's own thread skips the
//! list altogether. A fired waker counts as outstanding until the hub took it off the list, so
//! a hub never runs dry (`LoopExit`) with a wake-up still on its way.
//!
//! Greenlets placed by other threads start at most [`JOBS_PER_TURN`] per loop turn: a flood of
//! placements waits in the inbox as closures rather than as live greenlets with stacks, and
//! the hub's ready greenlets and I/O get their turn in between.

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::idslab::IdSlab;
use super::io::WAKER_TOKEN;
use super::spawn::JoinHandle;
use super::spin::{SPIN_FOR, Spinner};
use super::waitlist::BlockError;
use super::wakelist::{WakeCell, WakeList};
use super::{Waiter, park_with, waiter, with_hub};
use crate::error::Panic;

/// Work sent to a hub by another thread: it runs on the hub's thread, in the hub's loop, and
/// only spawns a greenlet there (see `crate::runtime`).
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Gives every hub a number no other hub of the process ever has (addresses are reused).
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// How many greenlets placed by other threads a hub starts per loop turn, at most. Started
/// greenlets run in the next batch; with one that yields once, the live ones stay under twice
/// this, which the stack pool serves from its warm stacks (320 of them) without a system call.
pub(crate) const JOBS_PER_TURN: usize = 128;

/// Greenlets placed by other threads, waiting for the hub to take them.
#[derive(Default)]
struct Inbox {
    jobs: Vec<Job>,
}

/// Keeps a value on cache lines of its own (two, as the adjacent-line prefetcher pairs them),
/// so that what one thread writes often does not slow down what another reads or writes.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The part of a hub other threads can reach.
///
/// Laid out by who writes what: wakers push onto `woken` (the only line every wake-up
/// writes), the hub writes `sleeping` only around a blocking poll (wakers read it),
/// `outstanding` is the hub's own count (changed on its thread but for a disarm elsewhere),
/// and the rest is read mostly.
struct Shared {
    /// Fired remote wakers, for the hub to wake their greenlets.
    woken: Padded<WakeList>,
    /// Set while the hub is (about to be) blocked in its poll: only then does a wake-up need
    /// the `mio::Waker`'s system call.
    sleeping: Padded<AtomicBool>,
    /// Live [`RemoteWaker`]s, counting a fired one until the hub took it off `woken`: while
    /// any exists, the hub may be woken from outside, so running dry is not a `LoopExit`.
    outstanding: Padded<AtomicUsize>,
    waker: mio::Waker,
    /// The hub's serial number: a wake-up from the hub's own thread is told apart by it.
    serial: u64,
    inbox: Mutex<Inbox>,
    /// Set (under the inbox's lock) when the hub will run no more jobs (its thread is shutting
    /// down or gone); read without it by `HubHandle::is_open`.
    closed: AtomicBool,
    /// Set by the first job (or stop request) after the hub drained its inbox, and by the hub
    /// itself while it has placed greenlets left to start.
    pending: AtomicBool,
    stop: AtomicBool,
    /// Greenlets placed here by other threads that have not finished yet (the load a
    /// `Runtime` balances).
    load: AtomicUsize,
}

impl Shared {
    fn inbox(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anything waits for the hub's attention (relaxed: the hub's loop polls it).
    #[inline]
    fn has_news(&self) -> bool {
        !self.woken.is_empty() || self.pending.load(Ordering::Relaxed)
    }

    /// A remote waker fired: wakes its greenlet directly when called on the hub's own thread
    /// (and the hub's table is free), else queues the cell for the hub.
    fn signal(&self, cell: &Arc<WakeCell>) {
        if self.serial == super::current_serial()
            && super::try_with_hub(|hub| hub.remote.wake_local(cell.id)) == Some(true)
        {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        if self.woken.push(cell.clone()) {
            self.wake_if_sleeping();
        }
    }

    /// Makes sure the hub looks at its inbox soon: the Dekker pair `pending` / `sleeping`
    /// (both sequentially consistent) guarantees that either this call sees the hub asleep and
    /// wakes it, or the hub sees `pending` before it goes to sleep.
    ///
    /// Called after the push onto the inbox. If `pending` is already set, whoever set it has
    /// made sure of the same and the hub has not drained since: a drain clears `pending`
    /// before it takes the inbox under its lock, so a push that follows the drain's take
    /// (happens after it, through the lock) cannot read the `true` from before the clear.
    fn notify(&self) {
        if self.pending.load(Ordering::Relaxed) {
            return;
        }
        if !self.pending.swap(true, Ordering::SeqCst) {
            self.wake_if_sleeping();
        }
    }

    /// The second half of the Dekker pair, after a sequentially consistent write that the
    /// hub reads after marking itself asleep (`pending`, or the head of `woken`): only a hub
    /// that sleeps (or is about to) needs the `eventfd` write.
    fn wake_if_sleeping(&self) {
        if self.sleeping.load(Ordering::SeqCst)
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
    /// One slot per live [`RemoteWait`] (its id is the key), holding the waiter while a
    /// greenlet waits on it.
    waiting: RefCell<IdSlab<Option<Waiter>>>,
    /// The drained ids, kept to reuse its allocation.
    spare: RefCell<Vec<u64>>,
    /// Jobs taken from the inbox and not started yet ([`JOBS_PER_TURN`] start per turn).
    queued: RefCell<VecDeque<Job>>,
    /// Greenlets spawned here by other threads, still running: killed at shutdown.
    spawned: RefCell<IdSlab<JoinHandle<()>>>,
    /// Whether to spin before sleeping, judged by the recent wake-ups.
    spinner: Spinner,
}

impl Default for RemoteState {
    fn default() -> RemoteState {
        RemoteState {
            shared: OnceCell::new(),
            serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed),
            waiting: RefCell::new(IdSlab::default()),
            spare: RefCell::new(Vec::new()),
            queued: RefCell::new(VecDeque::new()),
            spawned: RefCell::new(IdSlab::default()),
            spinner: Spinner::new(),
        }
    }
}

impl fmt::Debug for RemoteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteState")
            .field("serial", &self.serial)
            .field("waits", &self.waiting.borrow().len())
            .field("queued", &self.queued.borrow().len())
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
            woken: Padded(WakeList::new()),
            sleeping: Padded(AtomicBool::new(false)),
            outstanding: Padded(AtomicUsize::new(0)),
            waker: mio::Waker::new(registry, WAKER_TOKEN)?,
            serial: self.serial,
            inbox: Mutex::new(Inbox::default()),
            closed: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
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
        let w = waiting.get_mut(id).and_then(Option::take);
        drop(waiting);
        if let Some(w) = w {
            w.wake();
        }
        true
    }

    /// Takes the waiter registered under `id`, if a greenlet waits there.
    fn take_waiter(&self, id: u64) -> Option<Waiter> {
        self.waiting.borrow_mut().get_mut(id).and_then(Option::take)
    }

    /// Wakes the greenlets whose remote wakers fired and spawns the greenlets sent here.
    #[inline]
    pub(crate) fn drain(&self) {
        // Called on every loop turn: a plain load first, the atomic swap only when something
        // is pending.
        if let Some(shared) = self.shared.get()
            && shared.has_news()
        {
            self.drain_news(shared);
        }
    }

    fn drain_news(&self, shared: &Shared) {
        if !shared.woken.is_empty() {
            let mut ids = std::mem::take(&mut *self.spare.borrow_mut());
            let taken = shared.woken.take_all(&mut ids);
            // They were counted until now, so that the hub could not run dry in between.
            shared.outstanding.fetch_sub(taken, Ordering::AcqRel);
            for id in ids.drain(..) {
                // Not borrowed while waking (or dropping) the waiter.
                let w = self.take_waiter(id);
                if let Some(w) = w {
                    w.wake();
                }
            }
            *self.spare.borrow_mut() = ids;
        }
        if shared.pending.load(Ordering::Relaxed) && shared.pending.swap(false, Ordering::SeqCst) {
            self.take_jobs(shared);
        }
    }

    #[cold]
    fn take_jobs(&self, shared: &Shared) {
        let jobs = std::mem::take(&mut shared.inbox().jobs);
        if !jobs.is_empty() {
            let mut queued = self.queued.borrow_mut();
            if queued.is_empty() {
                *queued = VecDeque::from(jobs);
            } else {
                queued.extend(jobs);
            }
        }
        if !self.queued.borrow().is_empty() {
            self.start_queued(shared, JOBS_PER_TURN);
        }
    }

    /// Starts up to `max` queued jobs, oldest first. If some are left, marks the inbox
    /// pending again: the hub comes back for them next turn instead of sleeping.
    fn start_queued(&self, shared: &Shared, max: usize) {
        for _ in 0..max {
            // Not borrowed while the job runs: it spawns a greenlet, which may drop user values.
            let job = self.queued.borrow_mut().pop_front();
            match job {
                Some(job) => run_job(job),
                None => return,
            }
        }
        if !self.queued.borrow().is_empty() {
            shared.pending.store(true, Ordering::SeqCst);
        }
    }

    /// The hub is about to block in its poll for up to `timeout`: spins first while wake-ups
    /// from other threads have been coming quickly. Returns whether one came (the hub then
    /// drains its inbox instead of polling).
    pub(crate) fn spin_for_wake_up(&self, timeout: Option<Duration>) -> bool {
        let Some(shared) = self.shared.get() else {
            return false;
        };
        if timeout.is_some_and(|t| t < SPIN_FOR) {
            // A timer is due sooner: spinning would make it late.
            return false;
        }
        self.spinner.spin(|| shared.has_news())
    }

    /// Whether the hub may block in its poll: marks it asleep, then checks for wake-ups that
    /// came in meanwhile (see [`Shared::notify`]).
    pub(crate) fn prepare_sleep(&self) -> bool {
        match self.shared.get() {
            None => true,
            Some(s) => {
                s.sleeping.store(true, Ordering::SeqCst);
                s.woken.is_empty_seqcst() && !s.pending.load(Ordering::SeqCst)
            }
        }
    }

    /// The hub's poll returned; tells the spinner whether a wake-up from another thread
    /// ended it.
    pub(crate) fn woke_up(&self) {
        if let Some(s) = self.shared.get() {
            s.sleeping.store(false, Ordering::Relaxed);
            self.spinner.woke(s.has_news());
        }
    }

    /// Thread exit: takes every registered waiter out (the slots stay reserved for their
    /// `RemoteWait`s).
    pub(crate) fn take_waiting(&self) -> Vec<Waiter> {
        self.waiting
            .borrow_mut()
            .values_mut()
            .filter_map(Option::take)
            .collect()
    }

    /// Whether a stop was requested since the last call. Asked on every loop turn: a plain
    /// load first, so that the line other threads read stays shared.
    #[inline]
    pub(crate) fn stop_requested(&self) -> bool {
        self.shared
            .get()
            .is_some_and(|s| s.stop.load(Ordering::Relaxed) && s.stop.swap(false, Ordering::AcqRel))
    }

    /// Whether something from another thread may still wake a greenlet: a live
    /// [`RemoteWaker`], or a placed greenlet not started yet.
    pub(crate) fn has_outstanding(&self) -> bool {
        self.shared
            .get()
            .is_some_and(|s| s.outstanding.load(Ordering::Acquire) > 0)
            || !self.queued.borrow().is_empty()
    }

    pub(crate) fn is_live(&self) -> bool {
        self.has_outstanding()
    }

    /// Refuses jobs from now on (they fail at their sender), and spawns those already sent.
    pub(crate) fn close(&self) {
        if let Some(shared) = self.shared.get() {
            let jobs = shared.close();
            self.queued.borrow_mut().extend(jobs);
            self.start_queued(shared, usize::MAX);
        }
    }

    /// Keeps the handle of a greenlet spawned here by another thread until it finishes.
    pub(crate) fn track(&self, handle: JoinHandle<()>) {
        let key = self.spawned.borrow_mut().insert(handle.clone());
        handle.link_internal(move |_| {
            let gone = super::try_with_hub(|hub| hub.remote.spawned.borrow_mut().remove(key));
            drop(gone);
        });
    }

    /// The greenlets spawned here by other threads that are still running.
    pub(crate) fn spawned(&self) -> Vec<JoinHandle<()>> {
        self.spawned.borrow().values().cloned().collect()
    }
}

impl Shared {
    /// Refuses jobs from now on; returns those sent and not taken yet.
    fn close(&self) -> Vec<Job> {
        let mut inbox = self.inbox();
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut inbox.jobs)
    }
}

impl Drop for RemoteState {
    fn drop(&mut self) {
        // The hub is going away with its thread: senders of jobs get an error from now on, and
        // jobs not run are dropped (their joiners learn that the greenlet never ran).
        if let Some(shared) = self.shared.get() {
            drop(shared.close());
        }
        drop(std::mem::take(self.queued.get_mut()));
    }
}

/// Runs a job sent by another thread. A job only spawns a greenlet; a panic in one (a
/// destructor of its closure) is logged, never raised into the hub.
fn run_job(job: Job) {
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(job)) {
        log::error!(
            "greenlet: placing a greenlet sent from another thread panicked: {}",
            Panic::new(p)
        );
    }
}

/// A `Send + Sync` handle that wakes one greenlet on one hub from any thread.
///
/// Made with [`RemoteWait::new`]; while it exists the waiting hub does not report `LoopExit`.
/// Dropping it without [`wake`](RemoteWaker::wake) wakes the greenlet too, so that it can find
/// out that nothing is coming.
pub struct RemoteWaker {
    shared: Arc<Shared>,
    cell: Arc<WakeCell>,
}

impl RemoteWaker {
    /// Wakes the greenlet (once; later calls do nothing).
    pub fn wake(&self) {
        if !self.cell.fired.swap(true, Ordering::AcqRel) {
            // Still counted as outstanding until the hub takes the cell.
            self.shared.signal(&self.cell);
        }
    }

    /// Serves a cross-thread waiter: marks it notified, then wakes it.
    pub(crate) fn notify(&self) {
        self.cell.notified.store(true, Ordering::Release);
        self.wake();
    }

    /// Whether [`notify`](RemoteWaker::notify) was called.
    pub(crate) fn is_notified(&self) -> bool {
        self.cell.notified.load(Ordering::Acquire)
    }

    /// Gives up without waking anybody (the waiting greenlet itself no longer waits).
    pub(crate) fn disarm(&self) {
        // Usually called after the wake-up came: a load leaves the line shared with the waker.
        if !self.cell.fired.load(Ordering::Acquire) && !self.cell.fired.swap(true, Ordering::AcqRel)
        {
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
        f.debug_struct("RemoteWaker")
            .field("id", &self.cell.id)
            .finish()
    }
}

/// The hub side of a [`RemoteWaker`]: lets the current greenlet park until it fires. It
/// holds a slot of its hub's table (its id) from creation to drop, and stays on its thread.
#[derive(Debug)]
pub(crate) struct RemoteWait {
    id: u64,
    _not_send: PhantomData<*const ()>,
}

impl RemoteWait {
    /// A new pair; the waker may be sent to any thread.
    pub(crate) fn new() -> io::Result<(RemoteWaker, RemoteWait)> {
        let (shared, wait) = RemoteWait::with_shared()?;
        shared.outstanding.fetch_add(1, Ordering::AcqRel);
        Ok((
            RemoteWaker {
                shared,
                cell: WakeCell::new(wait.id),
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
            let id = hub.remote.waiting.borrow_mut().insert(None);
            Ok((
                shared,
                RemoteWait {
                    id,
                    _not_send: PhantomData,
                },
            ))
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
        let displaced = with_hub(|hub| {
            let mut waiting = hub.remote.waiting.borrow_mut();
            waiting.get_mut(self.id).and_then(|e| e.replace(w.clone()))
        });
        drop(displaced);
        // Removes the entry however the park ends, a kill included.
        struct Unregister(u64);
        impl Drop for Unregister {
            fn drop(&mut self) {
                let removed = super::try_with_hub(|hub| hub.remote.take_waiter(self.0));
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
        let displaced = with_hub(|hub| {
            let mut waiting = hub.remote.waiting.borrow_mut();
            let entry = waiting.get_mut(self.id)?;
            if entry.as_ref().is_some_and(Waiter::is_waiting) {
                return None;
            }
            entry.replace(w.clone())
        });
        drop(displaced);
    }

    /// Drops the registration if its greenlet no longer waits.
    pub(crate) fn remove_stale(&self) {
        let removed = super::try_with_hub(|hub| {
            let mut waiting = hub.remote.waiting.borrow_mut();
            let entry = waiting.get_mut(self.id)?;
            if entry.as_ref().is_some_and(|w| !w.is_waiting()) {
                entry.take()
            } else {
                None
            }
        });
        drop(removed);
    }
}

impl Drop for RemoteWait {
    fn drop(&mut self) {
        // Frees the slot: a late wake-up of its waker finds the generation moved on.
        let removed = super::try_with_hub(|hub| hub.remote.waiting.borrow_mut().remove(self.id));
        drop(removed);
    }
}

/// A `Send + Sync` handle that wakes one greenlet on one hub from any thread, any number of
/// times (the waking side of a Rust `Waker`, see `future.rs`).
///
/// Unlike [`RemoteWaker`] it does not keep the hub from reporting `LoopExit` by merely
/// existing: its owner says when it counts, with [`hold`](RemoteNotify::hold) and
/// [`release`](RemoteNotify::release). A notification that finds the greenlet not parked on
/// the matching [`RemoteWait`] is lost (from the hub's own thread at once, from another when
/// the hub takes its wake list): callers keep their own flag and check it before parking.
pub(crate) struct RemoteNotify {
    shared: Arc<Shared>,
    id: u64,
}

impl RemoteNotify {
    /// Wakes the greenlet if it is parked on the matching [`RemoteWait`] (see above); does
    /// nothing harmful once the hub or its thread is gone.
    ///
    /// Each notification from another thread queues a cell of its own (one allocation): the
    /// hub's wake list links a cell into it once at a time, and a `Waker` may fire again
    /// before the hub took the last one. It counts as outstanding until the hub took it, as a
    /// fired [`RemoteWaker`] does.
    pub(crate) fn notify(&self) {
        self.shared.outstanding.fetch_add(1, Ordering::AcqRel);
        self.shared.signal(&WakeCell::new(self.id));
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
        !self.shared.closed.load(Ordering::Acquire)
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
        if self.shared.closed.load(Ordering::Relaxed) {
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
