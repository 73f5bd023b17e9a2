//! The cross-thread core of [`Mutex`](super::Mutex), [`RwLock`](super::RwLock) and
//! [`Condvar`](super::Condvar): wait nodes that any thread notifies, and a FIFO gate that admits
//! one exclusive holder or many shared ones.
//!
//! The gate only decides who may go in; the data stays in std's own lock next to it, which the
//! holder takes without waiting (it is never contended) and which brings std's poisoning with it.
//! A waiter is served in arrival order and the gate is handed to it directly on release, so a
//! greenlet on a busy hub is never overtaken by one that keeps re-locking, and no waiter
//! starves: shared waiters behind a waiting exclusive one wait for it.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, LockResult, Mutex, MutexGuard, PoisonError, TryLockError, TryLockResult};
use std::time::Instant;

use crate::hub::waitlist::BlockError;
use crate::hub::{Parker, Unparker, parker};

/// One waiter in a cross-thread queue: notified (a flag, then an unpark) by whoever serves it.
pub(crate) struct Node {
    unparker: Unparker,
}

impl Node {
    /// A node for the calling greenlet or thread, and the parker to wait on it with.
    pub(crate) fn new() -> (Parker, Arc<Node>) {
        let (parker, unparker) = parker();
        (parker, Arc::new(Node { unparker }))
    }

    /// Serves the waiter: sets its flag, then wakes it.
    pub(crate) fn notify(&self) {
        self.unparker.notify();
    }

    pub(crate) fn is_notified(&self) -> bool {
        self.unparker.is_notified()
    }

    /// The waiter gave up by itself: nobody needs to wake it any more.
    pub(crate) fn disarm(&self) {
        self.unparker.disarm();
    }

    /// Waits until notified, or `deadline`. A stop request of the hub does not end the wait
    /// (the lock calls built on this have no error to report it with).
    ///
    /// # Errors
    /// [`BlockError::TimedOut`] at the deadline (or, with `honour_timeouts`, when a
    /// [`Timeout`](crate::Timeout) of the greenlet expires); the node may have been notified
    /// meanwhile, which the caller checks under its lock.
    pub(crate) fn wait(
        &self,
        parker: &Parker,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
        honour_timeouts: bool,
    ) -> Result<(), BlockError> {
        let mut killed = false;
        loop {
            match self.wait_stoppable(parker, deadline, what, honour_timeouts) {
                Err(BlockError::LoopExit(_)) => {}
                // A soft kill: these waits (std's lock calls) have no error for it, so the
                // wait goes on and the kill is handed to the greenlet's next park.
                Err(BlockError::Killed) => killed = true,
                r => {
                    if killed {
                        crate::hub::request_kill(&crate::current());
                    }
                    return r;
                }
            }
        }
    }

    /// [`wait`](Node::wait) that also ends, with [`BlockError::LoopExit`], when the waiting
    /// greenlet's hub is stopped.
    ///
    /// # Errors
    /// As `wait`, plus the stop.
    pub(crate) fn wait_stoppable(
        &self,
        parker: &Parker,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
        honour_timeouts: bool,
    ) -> Result<(), BlockError> {
        if parker.spin(|| self.is_notified()) {
            return Ok(());
        }
        loop {
            if self.is_notified() {
                return Ok(());
            }
            parker.park(deadline, what, honour_timeouts)?;
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("notified", &self.is_notified())
            .finish()
    }
}

/// Removes `node` from `queue` if it is still there; returns whether it was.
pub(crate) fn remove_node(queue: &mut VecDeque<Arc<Node>>, node: &Arc<Node>) -> bool {
    match queue.iter().position(|n| Arc::ptr_eq(n, node)) {
        Some(i) => {
            queue.remove(i);
            true
        }
        None => false,
    }
}

/// Locks one of this module's internal std locks. They guard only bookkeeping that no user
/// code runs under, so a poisoned one is still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Waiting {
    exclusive: bool,
    node: Arc<Node>,
}

#[derive(Default)]
struct State {
    readers: usize,
    writer: bool,
    queue: VecDeque<Waiting>,
}

impl State {
    fn admits(&self, exclusive: bool) -> bool {
        if exclusive {
            self.readers == 0 && !self.writer
        } else {
            !self.writer
        }
    }

    fn enter(&mut self, exclusive: bool) {
        if exclusive {
            self.writer = true;
        } else {
            self.readers += 1;
        }
    }

    /// Lets in the waiters at the head of the queue that may go in now.
    fn admit_waiting(&mut self) {
        while let Some(front) = self.queue.front() {
            if !self.admits(front.exclusive) {
                break;
            }
            let exclusive = front.exclusive;
            self.enter(exclusive);
            if let Some(w) = self.queue.pop_front() {
                w.node.notify();
            }
            if exclusive {
                break;
            }
        }
    }
}

/// Admits one exclusive holder or any number of shared ones, in arrival order.
pub(crate) struct Gate {
    state: Mutex<State>,
}

impl Gate {
    pub(crate) const fn new() -> Gate {
        Gate {
            state: Mutex::new(State {
                readers: 0,
                writer: false,
                queue: VecDeque::new(),
            }),
        }
    }

    /// Goes in if that is possible right now without overtaking a waiter.
    pub(crate) fn try_enter(&self, exclusive: bool) -> bool {
        let mut s = lock(&self.state);
        if s.queue.is_empty() && s.admits(exclusive) {
            s.enter(exclusive);
            true
        } else {
            false
        }
    }

    /// Goes in, waiting (a greenlet parks, a plain thread blocks) until `deadline`; returns
    /// whether it went in. The greenlet's `Timeout`s do not cut the wait short: std's lock
    /// calls have no error for them.
    pub(crate) fn enter(
        &self,
        exclusive: bool,
        deadline: Option<Instant>,
        what: &dyn fmt::Display,
    ) -> bool {
        let (parker, node) = {
            let mut s = lock(&self.state);
            if s.queue.is_empty() && s.admits(exclusive) {
                s.enter(exclusive);
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            let (parker, node) = Node::new();
            s.queue.push_back(Waiting {
                exclusive,
                node: node.clone(),
            });
            (parker, node)
        };
        let mut abandon = Abandon {
            gate: self,
            node: &node,
            exclusive,
            armed: true,
        };
        let r = node.wait(&parker, deadline, what, false);
        abandon.armed = false;
        match r {
            Ok(()) => true,
            Err(_) => self.give_up(&node, exclusive, false),
        }
    }

    /// The waiter of `node` stops waiting (deadline, or unwinding when `unwinding`): returns
    /// whether it was let in meanwhile (then it holds the gate, unless unwinding, in which case
    /// the gate is passed on).
    fn give_up(&self, node: &Arc<Node>, exclusive: bool, unwinding: bool) -> bool {
        let mut s = lock(&self.state);
        node.disarm();
        if node.is_notified() {
            if unwinding {
                drop(s);
                self.leave(exclusive);
            }
            return true;
        }
        if let Some(i) = s.queue.iter().position(|w| Arc::ptr_eq(&w.node, node)) {
            s.queue.remove(i);
        }
        // A waiting writer that leaves the head may let the readers behind it in.
        s.admit_waiting();
        false
    }

    /// Leaves, letting the next waiters in.
    pub(crate) fn leave(&self, exclusive: bool) {
        let mut s = lock(&self.state);
        if exclusive {
            s.writer = false;
        } else {
            s.readers -= 1;
        }
        s.admit_waiting();
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = lock(&self.state);
        f.debug_struct("Gate")
            .field("readers", &s.readers)
            .field("writer", &s.writer)
            .field("waiting", &s.queue.len())
            .finish()
    }
}

/// Takes a waiter out of the gate when it unwinds (is killed) while waiting.
struct Abandon<'a> {
    gate: &'a Gate,
    node: &'a Arc<Node>,
    exclusive: bool,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gate.give_up(self.node, self.exclusive, true);
        }
    }
}

/// Leaves the gate when dropped: the last field of every guard, so that std's guard (declared
/// before it) is released first and the next holder finds std's lock free.
pub(crate) struct Leave<'a> {
    pub(crate) gate: &'a Gate,
    pub(crate) exclusive: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.gate.leave(self.exclusive);
    }
}

/// Wraps std's guard, taken by a caller the gate let in (std's lock is free then, so it never
/// has to wait), in the green guard made by `wrap`, keeping std's poisoning. `wrap` owns the
/// [`Leave`] already, so a failure here still leaves the gate.
pub(crate) fn adopt<G, H>(taken: TryLockResult<G>, wrap: impl FnOnce(G) -> H) -> LockResult<H> {
    match taken {
        Ok(g) => Ok(wrap(g)),
        Err(TryLockError::Poisoned(p)) => Err(PoisonError::new(wrap(p.into_inner()))),
        Err(TryLockError::WouldBlock) => {
            unreachable!("only callers the gate let in touch std's lock, one writer at a time")
        }
    }
}

/// A `try_` or `_timeout` form's result: `WouldBlock` if the gate did not let the caller in.
pub(crate) fn try_form<H>(
    entered: bool,
    guard: impl FnOnce() -> LockResult<H>,
) -> TryLockResult<H> {
    if !entered {
        return Err(TryLockError::WouldBlock);
    }
    Ok(guard()?)
}
