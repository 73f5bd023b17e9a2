//! The thread-safe side of an [`AsyncResult`](super::AsyncResult): [`AsyncSender`] and the
//! slot it shares with the greenlet side.

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::hub::RemoteWaker;

pub(super) type SharedError = Arc<dyn Error + Send + Sync>;

/// The cross-thread slot of an `AsyncResult`, shared with its senders.
pub(super) struct Slot<T> {
    pub(super) state: Mutex<SlotState<T>>,
}

pub(super) enum SlotState<T> {
    /// Senders may still set it.
    Open,
    Set(Result<T, SharedError>),
    /// Every sender went away without setting it.
    Dropped,
    /// Completed (locally, or its value moved to the greenlet side): senders' sets fail.
    Closed,
}

impl<T> Slot<T> {
    pub(super) fn lock(&self) -> MutexGuard<'_, SlotState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) struct SenderInner<T> {
    pub(super) slot: Arc<Slot<T>>,
    pub(super) waker: RemoteWaker,
}

impl<T> Drop for SenderInner<T> {
    fn drop(&mut self) {
        let mut slot = self.slot.lock();
        if matches!(*slot, SlotState::Open) {
            *slot = SlotState::Dropped;
        }
        drop(slot);
        self.waker.wake();
    }
}

/// The sending side of an [`AsyncResult`], made by [`AsyncResult::sender`]: `Send` and `Sync`
/// (for a `Send` value), so any OS thread can complete the result and wake the greenlet waiting
/// for it. Clones share one completion; when the last clone goes without completing it, getters
/// fail with [`AsyncError::SenderDropped`].
///
/// [`AsyncResult`]: super::AsyncResult
/// [`AsyncResult::sender`]: super::AsyncResult::sender
/// [`AsyncError::SenderDropped`]: super::AsyncError::SenderDropped
///
/// # Examples
/// ```
/// use greenlet::sync::{AsyncError, AsyncResult};
///
/// let result = AsyncResult::<u64>::new();
/// let tx = result.sender();
/// std::thread::spawn(move || drop(tx)); // gives up without a value
/// assert!(matches!(result.get(), Err(AsyncError::SenderDropped)));
/// ```
pub struct AsyncSender<T> {
    pub(super) inner: Arc<SenderInner<T>>,
}

impl<T> Clone for AsyncSender<T> {
    fn clone(&self) -> Self {
        AsyncSender {
            inner: self.inner.clone(),
        }
    }
}

impl<T> AsyncSender<T> {
    fn complete(&self, outcome: Result<T, SharedError>) -> bool {
        let mut slot = self.inner.slot.lock();
        if !matches!(*slot, SlotState::Open) {
            return false;
        }
        *slot = SlotState::Set(outcome);
        drop(slot);
        self.inner.waker.wake();
        true
    }

    /// Completes the result with `value` and wakes the waiting greenlet. Only the first
    /// completion counts: returns whether this one did.
    pub fn set(&self, value: T) -> bool {
        self.complete(Ok(value))
    }

    /// Completes the result with an error; returns whether this call completed it.
    #[doc(alias = "set_exception")]
    pub fn set_error(&self, error: impl Into<Box<dyn Error + Send + Sync>>) -> bool {
        self.complete(Err(Arc::from(error.into())))
    }

    /// Whether the result is still open to a `set` from a sender.
    pub fn is_open(&self) -> bool {
        matches!(*self.inner.slot.lock(), SlotState::Open)
    }
}

impl<T> fmt::Debug for AsyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSender")
            .field("open", &self.is_open())
            .finish()
    }
}
