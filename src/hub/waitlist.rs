//! FIFO lists of parked greenlets, and the one blocking loop every primitive is built on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::{LoopExit, Waiter, check_can_block, park, waiter};

/// Greenlets waiting for something, in arrival order.
#[derive(Default)]
pub(crate) struct WaitList {
    queue: RefCell<VecDeque<Waiter>>,
}

impl WaitList {
    pub(crate) const fn new() -> WaitList {
        WaitList {
            queue: RefCell::new(VecDeque::new()),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    pub(crate) fn push(&self, w: Waiter) {
        self.queue.borrow_mut().push_back(w);
    }

    /// Wakes the longest-waiting greenlet that is still parked here; returns whether one was.
    pub(crate) fn wake_one(&self) -> bool {
        loop {
            let w = self.queue.borrow_mut().pop_front();
            match w {
                Some(w) => {
                    if w.wake() {
                        return true;
                    }
                }
                None => return false,
            }
        }
    }

    /// Wakes every greenlet parked here.
    pub(crate) fn wake_all(&self) {
        // Popped one by one so the list keeps its capacity (a socket that parks a greenlet on
        // every request must not allocate on every park), without holding the borrow while a
        // waiter is woken or dropped (dropping the last handle of a greenlet runs its
        // destructors, which may use this list). Waiters pushed meanwhile wait for next time.
        let n = self.queue.borrow().len();
        for _ in 0..n {
            let w = self.queue.borrow_mut().pop_front();
            match w {
                Some(w) => {
                    w.wake();
                }
                None => break,
            }
        }
    }

    /// Drops entries whose greenlets have moved on (timed out, killed).
    pub(crate) fn prune(&self) {
        drop(self.take_stale());
    }

    /// Takes out the entries whose greenlets have moved on, for the caller to drop once it
    /// holds no borrow: a stale waiter may hold the last handle of a greenlet, whose destruction
    /// may use this list.
    #[must_use]
    pub(crate) fn take_stale(&self) -> Vec<Waiter> {
        let mut stale = Vec::new();
        self.queue.borrow_mut().retain(|w| {
            let keep = w.is_waiting();
            if !keep {
                stale.push(w.clone());
            }
            keep
        });
        stale
    }
}

impl fmt::Debug for WaitList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitList")
            .field("waiting", &self.queue.borrow().len())
            .finish()
    }
}

/// Why a blocking wait ended without its condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockError {
    TimedOut,
    LoopExit(LoopExit),
    /// The greenlet was killed softly while it waited (see `hub::request_kill`).
    Killed,
}

impl From<LoopExit> for BlockError {
    fn from(e: LoopExit) -> BlockError {
        if e.is_killed() {
            BlockError::Killed
        } else {
            BlockError::LoopExit(e)
        }
    }
}

/// The deadline `timeout` from now (`None`: never; a huge timeout saturates to never).
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Blocks the current greenlet until `attempt` succeeds, re-trying each time it is woken
/// through `list`, until `deadline`.
///
/// `attempt` runs first without blocking; a zero timeout therefore means "try once, then
/// report the timeout", as the `try_` forms of gevent's primitives do.
pub(crate) fn block_on<T>(
    list: &WaitList,
    deadline: Option<Instant>,
    what: &dyn fmt::Display,
    mut attempt: impl FnMut() -> Option<T>,
) -> Result<T, BlockError> {
    loop {
        if let Some(v) = attempt() {
            return Ok(v);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(BlockError::TimedOut);
        }
        check_can_block();
        let w = waiter();
        list.push(w.clone());
        let woken = park(&w, deadline, what);
        match woken {
            Ok(true) => {}
            Ok(false) => {
                list.prune();
                // One last try: the condition may have become true just as the time ran out.
                return attempt().ok_or(BlockError::TimedOut);
            }
            Err(exit) => {
                list.prune();
                return Err(exit.into());
            }
        }
    }
}
