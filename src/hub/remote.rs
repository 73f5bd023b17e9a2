//! Waking a hub from other OS threads: thread-pool results, `Send` handles, stop requests.
//!
//! Greenlets never leave their thread, so another thread cannot hold one. It holds a
//! [`RemoteWaker`] instead: a number that the hub maps back to the parked greenlet, plus a
//! `mio::Waker` to interrupt the hub's poll.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::io::WAKER_TOKEN;
use super::waitlist::BlockError;
use super::{Waiter, park, waiter, with_hub};

/// The part of a hub other threads can reach.
struct Shared {
    waker: mio::Waker,
    woken: Mutex<Vec<u64>>,
    pending: AtomicBool,
    stop: AtomicBool,
    /// Live [`RemoteWaker`]s: while any exists, the hub may be woken from outside, so running
    /// dry is not a `LoopExit`.
    outstanding: AtomicUsize,
}

impl Shared {
    fn signal(&self, id: u64) {
        self.woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
        self.pending.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            log::error!("greenlet: could not wake a hub from another thread: {e}");
        }
    }
}

/// The hub-side state of remote wake-ups.
#[derive(Default)]
pub(crate) struct RemoteState {
    shared: OnceCell<Arc<Shared>>,
    waiting: RefCell<HashMap<u64, Waiter>>,
    next_id: Cell<u64>,
}

impl fmt::Debug for RemoteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteState")
            .field("waiting", &self.waiting.borrow().len())
            .finish()
    }
}

impl RemoteState {
    fn shared(&self, registry: &mio::Registry) -> io::Result<&Arc<Shared>> {
        if let Some(s) = self.shared.get() {
            return Ok(s);
        }
        let shared = Arc::new(Shared {
            waker: mio::Waker::new(registry, WAKER_TOKEN)?,
            woken: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            outstanding: AtomicUsize::new(0),
        });
        Ok(self.shared.get_or_init(|| shared))
    }

    /// Wakes the greenlets whose remote wakers fired.
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
        if !shared.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let ids = std::mem::take(&mut *shared.woken.lock().unwrap_or_else(|e| e.into_inner()));
        let mut waiting = self.waiting.borrow_mut();
        for id in ids {
            if let Some(w) = waiting.remove(&id) {
                w.wake();
            }
        }
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
}

/// A `Send + Sync` handle that wakes one greenlet on one hub from any thread.
///
/// Made with [`remote_pair`](crate::hub::RemoteWait::new); while it exists the waiting hub
/// does not report `LoopExit`. Dropping it without [`wake`](RemoteWaker::wake) wakes the
/// greenlet too, so that it can find out that nothing is coming.
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
        with_hub(|hub| {
            let shared = hub.remote.shared(hub.io.registry()?)?.clone();
            let id = hub.remote.next_id.get() + 1;
            hub.remote.next_id.set(id);
            shared.outstanding.fetch_add(1, Ordering::AcqRel);
            Ok((
                RemoteWaker {
                    shared,
                    id,
                    done: AtomicBool::new(false),
                },
                RemoteWait { id },
            ))
        })
    }

    /// Parks until the waker fires (or is dropped), or `deadline`. Callers check their own
    /// condition before and after, as with every park.
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
    ) -> Result<(), BlockError> {
        super::check_can_block();
        let w = waiter();
        with_hub(|hub| hub.remote.waiting.borrow_mut().insert(self.id, w.clone()));
        // Removes the entry however the park ends, a kill included.
        struct Unregister(u64);
        impl Drop for Unregister {
            fn drop(&mut self) {
                super::try_with_hub(|hub| hub.remote.waiting.borrow_mut().remove(&self.0));
            }
        }
        let _unregister = Unregister(self.id);
        let r = park(&w, deadline, what);
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(BlockError::TimedOut),
            Err(e) => Err(BlockError::LoopExit(e)),
        }
    }
}

/// A `Send + Sync` handle on a thread's hub, for other threads.
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
    /// once with a [`LoopExit`](super::LoopExit) whose `is_stopped()` is true.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.pending.store(true, Ordering::Release);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("greenlet: could not wake a hub to stop it: {e}");
        }
    }
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle").finish_non_exhaustive()
    }
}
