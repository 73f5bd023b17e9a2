//! Greenlets placed on a hub by another thread, and the `Send` handle to join them.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{GreenletExit, Panic};
use crate::hub::waitlist::deadline_after;
use crate::hub::{HubHandle, JoinError, LoadToken, SpawnBuilder};
use crate::sync::gate::Node;

/// A handle on a greenlet placed on a hub by [`Runtime::spawn`](crate::Runtime::spawn),
/// [`Runtime::spawn_on`](crate::Runtime::spawn_on) or [`HubHandle::spawn`]: unlike a
/// [`JoinHandle`](crate::JoinHandle) it is `Send` (for a `Send` value), so any thread or
/// greenlet may wait for the value, as with [`std::thread::JoinHandle`].
///
/// [`join`](RemoteJoinHandle::join) parks a greenlet (its hub runs the others meanwhile) or
/// blocks a plain thread. Dropping the handle does not stop the greenlet.
///
/// # Examples
/// ```
/// let rt = greenlet::Runtime::new(2).unwrap();
/// let h = rt.spawn(|| std::thread::current().name().map(str::to_owned));
/// let name = h.join().unwrap().unwrap();
/// assert!(name.starts_with("greenlet-hub-"));
/// ```
///
/// It stays on its own side of the thread boundary only if its value does: a handle on a value
/// that is not `Send` cannot be made, since the closure's result must cross threads:
/// ```compile_fail
/// let rt = greenlet::Runtime::new(1).unwrap();
/// let h = rt.spawn(|| std::rc::Rc::new(1)); // Rc is not Send
/// ```
pub struct RemoteJoinHandle<T> {
    slot: Arc<Slot<T>>,
}

struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    outcome: Option<Result<T, JoinError>>,
    /// Set once `join_timeout` took the outcome.
    taken: bool,
    /// The joiner, while it waits.
    waiter: Option<Arc<Node>>,
    /// Whether a handle remains (a panic nobody can see is logged).
    handle: bool,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The greenlet's side: completes the slot once, or with [`JoinError::Killed`] if dropped
/// before that (the greenlet never ran, or its hub went away).
pub(crate) struct Completer<T> {
    slot: Arc<Slot<T>>,
    done: bool,
}

impl<T> Completer<T> {
    pub(crate) fn complete(mut self, outcome: Result<T, JoinError>) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Result<T, JoinError>) {
        self.done = true;
        let waiter = {
            let mut s = self.slot.lock();
            if !s.handle
                && let Err(JoinError::Panicked(p)) = &outcome
            {
                log::error!(
                    "a greenlet placed from another thread panicked and nobody joined it: {p}"
                );
            }
            s.outcome = Some(outcome);
            s.waiter.take()
        };
        if let Some(w) = waiter {
            w.notify();
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Err(JoinError::Killed));
        }
    }
}

/// A new slot: the completer for the greenlet, the handle for the joiner.
pub(crate) fn pair<T>() -> (Completer<T>, RemoteJoinHandle<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            outcome: None,
            taken: false,
            waiter: None,
            handle: true,
        }),
    });
    (
        Completer {
            slot: slot.clone(),
            done: false,
        },
        RemoteJoinHandle { slot },
    )
}

impl<T> RemoteJoinHandle<T> {
    /// A handle whose greenlet could not be placed anywhere.
    pub(crate) fn failed(e: io::Error) -> RemoteJoinHandle<T> {
        let (completer, handle) = pair();
        completer.complete(Err(JoinError::Spawn(e)));
        handle
    }

    /// Waits for the greenlet to finish and returns its value (std's `JoinHandle::join`).
    ///
    /// # Errors
    /// [`JoinError::Panicked`] with the panic, [`JoinError::Killed`] if it was killed (or its
    /// hub shut down before it finished), [`JoinError::Spawn`] if it could not be started,
    /// [`JoinError::Taken`] if [`join_timeout`](Self::join_timeout) took the value already;
    /// for a joining greenlet, [`JoinError::TimedOut`] when its [`Timeout`](crate::Timeout)
    /// expires and [`JoinError::LoopExit`] when its hub is stopped.
    pub fn join(self) -> Result<T, JoinError> {
        self.wait(None)
    }

    /// [`join`](Self::join) waiting at most `timeout`; the handle stays usable when the time
    /// runs out.
    ///
    /// # Errors
    /// [`JoinError::TimedOut`] if the greenlet is still running; as `join` otherwise (after a
    /// success, a later call is [`JoinError::Taken`]).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use greenlet::JoinError;
    ///
    /// let rt = greenlet::Runtime::new(1).unwrap();
    /// let h = rt.spawn(|| greenlet::sleep(Duration::from_millis(50)));
    /// assert!(matches!(h.join_timeout(Duration::from_millis(1)), Err(JoinError::TimedOut)));
    /// assert!(h.join_timeout(Duration::from_secs(10)).is_ok());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<T, JoinError> {
        self.wait(deadline_after(Some(timeout)))
    }

    /// Whether the greenlet has finished (std's `is_finished`).
    pub fn is_finished(&self) -> bool {
        self.slot.lock().outcome.is_some()
    }

    fn take(s: &mut SlotState<T>) -> Option<Result<T, JoinError>> {
        if s.taken {
            return Some(Err(JoinError::Taken));
        }
        let outcome = s.outcome.take()?;
        s.taken = true;
        Some(outcome)
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<T, JoinError> {
        loop {
            let mut s = self.slot.lock();
            if let Some(outcome) = Self::take(&mut s) {
                return outcome;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(JoinError::TimedOut);
            }
            let (parker, node) = Node::new();
            s.waiter = Some(node.clone());
            drop(s);
            let r = node.wait_stoppable(&parker, deadline, &"RemoteJoinHandle::join", true);
            let mut s = self.slot.lock();
            if s.waiter.as_ref().is_some_and(|n| Arc::ptr_eq(n, &node)) {
                s.waiter = None;
            }
            node.disarm();
            match r {
                Ok(()) => {}
                Err(e) => {
                    if let Some(outcome) = Self::take(&mut s) {
                        return outcome;
                    }
                    return Err(e.into());
                }
            }
        }
    }
}

impl<T> Drop for RemoteJoinHandle<T> {
    fn drop(&mut self) {
        self.slot.lock().handle = false;
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Sends `f` to `hub`, where it becomes a greenlet.
pub(crate) fn place<T, F>(hub: &HubHandle, f: F) -> io::Result<RemoteJoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (completer, handle) = pair();
    hub.submit(move |load| start_here(f, completer, load))?;
    Ok(handle)
}

/// Runs on the hub's thread: spawns the greenlet that runs `f` and completes the slot.
fn start_here<T, F>(f: F, completer: Completer<T>, load: LoadToken)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // Shared with the greenlet's closure, so that a failed spawn (which drops the closure)
    // still has the completer to report the error with.
    let slot = Rc::new(RefCell::new(Some(completer)));
    let body_slot = slot.clone();
    let spawned = SpawnBuilder::new().spawn(move || {
        let _load = load;
        let Some(completer) = body_slot.borrow_mut().take() else {
            return;
        };
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => completer.complete(Ok(v)),
            Err(p) if p.is::<GreenletExit>() => {
                completer.complete(Err(JoinError::Killed));
                panic::resume_unwind(p);
            }
            Err(p) => completer.complete(Err(JoinError::Panicked(Panic::new(p)))),
        }
    });
    match spawned {
        Ok(h) => crate::hub::track_remote(h),
        Err(e) => {
            let completer = slot.borrow_mut().take();
            if let Some(c) = completer {
                c.complete(Err(JoinError::Spawn(e)));
            }
        }
    }
}

impl HubHandle {
    /// Places a new greenlet running `f` on this hub, from any thread; returns a `Send`
    /// handle to join it.
    ///
    /// The hub's thread spawns the greenlet on its next loop turn, so the hub must be running
    /// (as every hub of a [`Runtime`](crate::Runtime) is; a thread's own hub runs while its
    /// code blocks on the hub). The greenlet never leaves that thread.
    ///
    /// # Errors
    /// `NotConnected` when the hub's thread has exited or is shutting down: never a hang.
    ///
    /// # Examples
    /// ```
    /// let rt = greenlet::Runtime::new(1).unwrap();
    /// let hub = rt.hub(0).unwrap();
    /// let h = hub.spawn(|| 6 * 7).unwrap();
    /// assert_eq!(h.join().unwrap(), 42);
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> io::Result<RemoteJoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        place(self, f)
    }
}
