//! The errors of the synchronisation primitives.
//!
//! Blocking calls fail for three reasons besides their own (a closed queue, an over-release):
//! the time given to a `_timeout` form ran out, a [`Timeout`](crate::Timeout) active on the
//! calling greenlet expired, or nothing could ever wake the caller ([`LoopExit`]). A value that
//! could not be sent always comes back inside the error.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::hub::LoopExit;
use crate::hub::waitlist::BlockError;

/// Why a wait for a condition (an event, a permit, a lock, a join) gave up.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use greenlet::sync::{Semaphore, WaitError};
///
/// let sem = Semaphore::new(0);
/// assert_eq!(sem.acquire_timeout(Duration::from_millis(1)).unwrap_err(), WaitError::TimedOut);
/// // Nothing else runs on this thread, so nothing could ever release it:
/// let err = sem.acquire().unwrap_err();
/// assert!(err.to_string().contains("would block forever"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// The time given to the call, or a [`Timeout`](crate::Timeout) of the calling greenlet,
    /// ran out first.
    TimedOut,
    /// Nothing could ever satisfy the wait (see [`LoopExit`]).
    LoopExit(LoopExit),
    /// The calling greenlet was killed softly: time to clean up (see [`Killed`](crate::Killed)).
    Killed,
}

impl WaitError {
    /// Whether the wait timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, WaitError::TimedOut)
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::TimedOut => f.write_str("timed out waiting"),
            WaitError::LoopExit(e) => fmt::Display::fmt(e, f),
            WaitError::Killed => fmt::Display::fmt(&crate::Killed, f),
        }
    }
}

impl Error for WaitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WaitError::LoopExit(e) => Some(e),
            WaitError::TimedOut | WaitError::Killed => None,
        }
    }
}

impl From<BlockError> for WaitError {
    fn from(e: BlockError) -> WaitError {
        match e {
            BlockError::TimedOut => WaitError::TimedOut,
            BlockError::LoopExit(e) => WaitError::LoopExit(e),
            BlockError::Killed => WaitError::Killed,
        }
    }
}

impl From<LoopExit> for WaitError {
    fn from(e: LoopExit) -> WaitError {
        BlockError::from(e).into()
    }
}

/// Why a blocking receive (`get`, `recv`, `peek`) produced no item.
///
/// One type serves the blocking and the `_timeout` forms: a plain `recv` can time out too,
/// under a [`Timeout`](crate::Timeout) of the calling greenlet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecvError {
    /// The queue or channel is closed and every item in it has been taken.
    Closed,
    /// The time given to the call, or a [`Timeout`](crate::Timeout) of the calling greenlet,
    /// ran out first.
    TimedOut,
    /// Nothing could ever put an item (see [`LoopExit`]).
    LoopExit(LoopExit),
    /// The calling greenlet was killed softly: time to clean up (see [`Killed`](crate::Killed)).
    Killed,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Closed => f.write_str("receiving on a closed and empty queue or channel"),
            RecvError::TimedOut => f.write_str("timed out waiting for an item"),
            RecvError::LoopExit(e) => fmt::Display::fmt(e, f),
            RecvError::Killed => fmt::Display::fmt(&crate::Killed, f),
        }
    }
}

impl Error for RecvError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RecvError::LoopExit(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WaitError> for RecvError {
    fn from(e: WaitError) -> RecvError {
        match e {
            WaitError::TimedOut => RecvError::TimedOut,
            WaitError::LoopExit(e) => RecvError::LoopExit(e),
            WaitError::Killed => RecvError::Killed,
        }
    }
}

/// Why a non-blocking receive (`try_get`, `try_recv`) produced no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to take right now (gevent's `Empty`).
    Empty,
    /// The queue or channel is closed and every item in it has been taken.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("receiving on an empty queue or channel"),
            TryRecvError::Closed => f.write_str("receiving on a closed and empty queue or channel"),
        }
    }
}

impl Error for TryRecvError {}

/// Why a blocking send (`put`, `send`) did not deliver its item; the item comes back.
#[derive(Clone, PartialEq, Eq)]
pub enum SendError<T> {
    /// The queue or channel is closed (or every receiver is gone).
    Closed(T),
    /// The time given to the call, or a [`Timeout`](crate::Timeout) of the calling greenlet,
    /// ran out first.
    TimedOut(T),
    /// Nothing could ever make room (see [`LoopExit`]).
    LoopExit(T, LoopExit),
    /// The calling greenlet was killed softly: time to clean up (see [`Killed`](crate::Killed)).
    Killed(T),
}

impl<T> SendError<T> {
    /// The item that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v)
            | SendError::TimedOut(v)
            | SendError::LoopExit(v, _)
            | SendError::Killed(v) => v,
        }
    }

    /// The error for `item` when the wait to send it gave up with `exit`.
    pub(crate) fn from_exit(item: T, exit: LoopExit) -> SendError<T> {
        if exit.is_killed() {
            SendError::Killed(item)
        } else {
            SendError::LoopExit(item, exit)
        }
    }

    /// Whether the send failed because the queue or channel is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::TimedOut(_) => f.write_str("TimedOut(..)"),
            SendError::LoopExit(_, e) => f.debug_tuple("LoopExit").field(&"..").field(e).finish(),
            SendError::Killed(_) => f.write_str("Killed(..)"),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("sending on a closed queue or channel"),
            SendError::TimedOut(_) => f.write_str("timed out waiting to send"),
            SendError::LoopExit(_, e) => fmt::Display::fmt(e, f),
            SendError::Killed(_) => fmt::Display::fmt(&crate::Killed, f),
        }
    }
}

impl<T> Error for SendError<T> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SendError::LoopExit(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Why a non-blocking send (`try_put`, `try_send`) did not deliver its item; the item comes
/// back.
#[derive(Clone, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// No room right now (gevent's `Full`); for a rendezvous channel: no receiver waiting.
    Full(T),
    /// The queue or channel is closed (or every receiver is gone).
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The item that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("sending on a full queue or channel"),
            TrySendError::Closed(_) => f.write_str("sending on a closed queue or channel"),
        }
    }
}

impl<T> Error for TrySendError<T> {}

/// A release that does not match an acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A [`BoundedSemaphore`](super::BoundedSemaphore) was released more times than it was
    /// acquired.
    Overflow {
        /// The semaphore's initial (and largest) value.
        limit: usize,
    },
    /// The lock is not held.
    NotLocked,
    /// The [`RLock`](super::RLock) is held by another greenlet.
    NotOwner,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::Overflow { limit } => {
                write!(
                    f,
                    "semaphore released too many times (its limit is {limit})"
                )
            }
            ReleaseError::NotLocked => f.write_str("cannot release a lock that is not held"),
            ReleaseError::NotOwner => f.write_str("cannot release a lock held by another greenlet"),
        }
    }
}

impl Error for ReleaseError {}

/// [`task_done`](super::Queue::task_done) was called more times than items were put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than there were items put")
    }
}

impl Error for TaskDoneError {}

/// Why an [`AsyncResult`](super::AsyncResult) produced no value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AsyncError {
    /// The result was completed with an error (`set_error`); every getter sees it.
    Failed(Arc<dyn Error + Send + Sync>),
    /// Every [`AsyncSender`](super::AsyncSender) was dropped without completing the result.
    SenderDropped,
    /// The value was moved out by [`take`](super::AsyncResult::take).
    Taken,
    /// The result is not complete yet (from the non-blocking forms).
    NotReady,
    /// The time given to the call, or a [`Timeout`](crate::Timeout) of the calling greenlet,
    /// ran out first.
    TimedOut,
    /// Nothing could ever complete the result (see [`LoopExit`]).
    LoopExit(LoopExit),
    /// The calling greenlet was killed softly: time to clean up (see [`Killed`](crate::Killed)).
    Killed,
}

impl fmt::Display for AsyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::Failed(e) => write!(f, "the result was set to an error: {e}"),
            AsyncError::SenderDropped => {
                f.write_str("every sender of the result was dropped without setting it")
            }
            AsyncError::Taken => f.write_str("the result's value was already taken"),
            AsyncError::NotReady => f.write_str("the result is not ready yet"),
            AsyncError::TimedOut => f.write_str("timed out waiting for the result"),
            AsyncError::LoopExit(e) => fmt::Display::fmt(e, f),
            AsyncError::Killed => fmt::Display::fmt(&crate::Killed, f),
        }
    }
}

impl Error for AsyncError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AsyncError::Failed(e) => Some(&**e),
            AsyncError::LoopExit(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WaitError> for AsyncError {
    fn from(e: WaitError) -> AsyncError {
        match e {
            WaitError::TimedOut => AsyncError::TimedOut,
            WaitError::LoopExit(e) => AsyncError::LoopExit(e),
            WaitError::Killed => AsyncError::Killed,
        }
    }
}
