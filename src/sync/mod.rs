//! Synchronisation between greenlets of one thread (gevent's `gevent.event`, `gevent.queue`
//! and `gevent.lock`).

mod error;
mod event;
mod lock;
mod parked;
mod semaphore;
mod sender;

#[allow(unused_imports)]
pub(crate) use self::semaphore::SemCore;

pub use self::error::{
    AsyncError, RecvError, ReleaseError, SendError, TaskDoneError, TryRecvError, TrySendError,
    WaitError,
};
pub use self::event::{AsyncResult, Event};
pub use self::lock::{Lock, LockGuard, RLock, RLockGuard};
pub use self::semaphore::{BoundedSemaphore, Semaphore};
pub use self::sender::AsyncSender;
