//! Timeouts (gevent's `Timeout` and `with_timeout`).
//!
//! Rust has no exceptions to raise into a blocked greenlet, so a [`Timeout`] is a deadline on
//! the current greenlet: while it is alive, every blocking call the greenlet makes (a join, a
//! queue get, a socket read, a sleep) waits at most until the earliest active deadline, then
//! returns its own timeout error. [`with_timeout`] runs a function under such a deadline and
//! reports whether it was cut short.

use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;

/// The deadlines of one greenlet, innermost last.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    stack: RefCell<Vec<(u64, Instant)>>,
    /// The ids of active timeouts that have cut a blocking call short.
    fired: RefCell<Vec<u64>>,
}

impl Deadlines {
    /// The earliest active deadline.
    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.stack.borrow().iter().map(|&(_, d)| d).min()
    }

    /// Whether no timeout is active: the usual case, tested apart so that a park under none
    /// does not pay for the search and the comparisons of `Option<Instant>`s.
    #[inline]
    fn is_empty(&self) -> bool {
        self.stack.borrow().is_empty()
    }

    /// A blocking call gave up at `deadline`: every active timeout due by then has fired.
    #[cold]
    pub(crate) fn mark_fired(&self, deadline: Instant) {
        let stack = self.stack.borrow();
        let mut fired = self.fired.borrow_mut();
        for &(id, d) in stack.iter() {
            if d <= deadline && !fired.contains(&id) {
                fired.push(id);
            }
        }
    }

    fn has_fired(&self, id: u64) -> bool {
        self.fired.borrow().contains(&id)
    }

    fn remove(&self, id: u64) {
        self.stack.borrow_mut().retain(|&(i, _)| i != id);
        self.fired.borrow_mut().retain(|&i| i != id);
    }
}

/// The earlier of `deadline` and the current greenlet's timeouts.
#[inline]
pub(crate) fn effective_deadline(g: &Greenlet, deadline: Option<Instant>) -> Option<Instant> {
    let deadlines = &g.inner().sched.deadlines;
    if deadlines.is_empty() {
        return deadline;
    }
    match (deadline, deadlines.earliest()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A deadline on the current greenlet's blocking calls, active until dropped.
///
/// Nested timeouts each keep their own deadline; a blocking call gives up at the earliest one,
/// and [`is_expired`](Timeout::is_expired) tells which of them fired. A zero timeout makes the
/// next blocking call give up at once; `Timeout::start(None)` never fires.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::{Timeout, JoinError};
///
/// let forever = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(3600)));
/// let t = Timeout::start(Some(Duration::from_millis(10)));
/// assert!(matches!(forever.join(), Err(JoinError::TimedOut)));
/// assert!(t.is_expired());
/// ```
#[must_use = "a Timeout is active only while it is kept alive"]
pub struct Timeout {
    owner: Greenlet,
    id: u64,
    deadline: Option<Instant>,
}

impl Timeout {
    /// Puts a deadline `duration` from now on the current greenlet (`None`: no deadline).
    pub fn start(duration: Option<Duration>) -> Timeout {
        let owner = crate::current();
        let deadline = duration.and_then(|d| Instant::now().checked_add(d));
        let id = super::with_hub(super::Hub::new_token);
        if let Some(d) = deadline {
            owner
                .inner()
                .sched
                .deadlines
                .stack
                .borrow_mut()
                .push((id, d));
        }
        Timeout {
            owner,
            id,
            deadline,
        }
    }

    /// Whether this timeout's deadline has passed.
    pub fn is_expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }
}

impl Timeout {
    /// Whether this timeout has cut a blocking call of its greenlet short.
    fn has_fired(&self) -> bool {
        self.owner.inner().sched.deadlines.has_fired(self.id)
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        self.owner.inner().sched.deadlines.remove(self.id);
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("remaining", &self.remaining())
            .field("expired", &self.is_expired())
            .finish()
    }
}

/// The error of [`with_timeout`]: the time ran out before the function finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed {
    after: Duration,
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.after)
    }
}

impl std::error::Error for Elapsed {}

/// Runs `f` with a [`Timeout`] of `duration`: `Err(Elapsed)` if the timeout fired, that is, cut
/// one of `f`'s blocking calls short (those calls then returned their own timeout errors), else
/// `Ok` with `f`'s value.
///
/// As in gevent, a timeout fires only at a blocking call: an `f` that never blocks returns its
/// value even if it ran past the deadline, and a zero timeout fires at `f`'s first blocking
/// call (that call's next loop turn).
///
/// # Errors
/// [`Elapsed`] when the time ran out.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let r = greenlet::with_timeout(Duration::from_millis(5), || greenlet::sleep(Duration::from_secs(60)));
/// assert!(r.is_err());
/// let r = greenlet::with_timeout(Duration::from_secs(60), || 7);
/// assert_eq!(r, Ok(7));
/// ```
pub fn with_timeout<T>(duration: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let t = Timeout::start(Some(duration));
    let v = f();
    // Not `is_expired`: what matters is whether the deadline interrupted `f`, not whether it has
    // passed by the time `f` returned (gevent returns the value of an `f` that did not block).
    if t.has_fired() {
        Err(Elapsed { after: duration })
    } else {
        Ok(v)
    }
}
