//! Synchronisation: gevent's primitives between greenlets of one thread (`gevent.event`,
//! `gevent.queue`, `gevent.lock`), and std's primitives for greenlets and threads anywhere.
//!
//! | gevent | here, one thread |
//! | --- | --- |
//! | `Event` | [`Event`] |
//! | `AsyncResult` | [`AsyncResult`], and [`AsyncSender`] to complete it from another thread |
//! | `Queue`, `JoinableQueue`, `LifoQueue`, `PriorityQueue` | [`Queue`], [`LifoQueue`], [`PriorityQueue`] (all joinable) |
//! | `Channel` | [`Channel`]; std-shaped [`channel`] and [`sync_channel`] |
//! | `Semaphore`, `BoundedSemaphore`, `Lock`, `RLock` | [`Semaphore`], [`BoundedSemaphore`], [`Lock`], [`RLock`] |
//!
//! | std | here, across threads and hubs (`Send + Sync`) |
//! | --- | --- |
//! | `std::sync::Mutex`, `RwLock`, `Condvar` | [`Mutex`], [`RwLock`], [`Condvar`] |
//! | `std::sync::mpsc::{channel, sync_channel}` | [`mpsc::channel`], [`mpsc::sync_channel`] |
//!
//! Two families, two names for channels: [`channel`] / [`sync_channel`] at the top of this
//! module (with [`Sender`], [`Receiver`]) are the one-thread kind, `!Send` and cheapest, with
//! gevent's error types (closing, [`LoopExit`](crate::LoopExit)); [`mpsc::channel`] /
//! [`mpsc::sync_channel`] are std's, `Send`, for sending between threads and hubs. The
//! cross-thread types are std's API exactly (same methods, `LockResult` and poisoning, std's
//! own error types); what differs is the wait: a greenlet parks (its hub runs the others) and
//! is woken across threads through its hub's remote waker; a thread without a hub blocks.
//!
//! # Blocking, in three forms
//!
//! Every call that may wait parks only the calling greenlet: the hub runs the others
//! meanwhile. Each comes in three forms, as std's channels do:
//!
//! - the plain form waits as long as needed: [`Queue::get`];
//! - the `try_` form never waits: [`Queue::try_get`] (gevent's `get_nowait`);
//! - the `_timeout` form waits at most a given time: [`Queue::get_timeout`].
//!
//! A plain form can still give up: when a [`Timeout`](crate::Timeout) of the calling greenlet
//! expires, and when nothing could ever satisfy it. The main greenlet waiting on a queue that no
//! greenlet, timer, socket or thread could ever fill gets [`LoopExit`](crate::LoopExit) inside
//! the error, at once, rather than hanging:
//!
//! ```
//! use greenlet::sync::{Queue, RecvError};
//!
//! let q = Queue::<u32>::new();
//! match q.get() {
//!     Err(RecvError::LoopExit(e)) => assert!(e.to_string().contains("would block forever")),
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! # Fairness
//!
//! Waiters are served in arrival order, and what they wait for is handed to them directly: an
//! item put into a queue goes to the longest-waiting getter, a released permit to the
//! longest-waiting acquirer, before any other greenlet runs. A greenlet that is killed or
//! times out while it waits never takes an item or a permit with it: it goes to the next
//! waiter.
//!
//! # Handles
//!
//! The one-thread primitives are cheap handles: clone one into each greenlet that uses it (they
//! are `!Send`, like greenlets); of them, only [`AsyncSender`] crosses threads. The
//! cross-thread ones are shared like std's, in an `Arc` (or a `static`).
//!
//! # Example: a worker pool fed by a queue
//!
//! ```
//! use greenlet::sync::Queue;
//!
//! let jobs = Queue::bounded(4);
//! let results = Queue::new();
//! let workers: Vec<_> = (0..3).map(|_| {
//!     let (jobs, results) = (jobs.clone(), results.clone());
//!     greenlet::spawn(move || {
//!         // Ends when the queue is closed and drained.
//!         for n in jobs.iter() {
//!             results.put(n * n).unwrap();
//!             jobs.task_done().unwrap();
//!         }
//!     })
//! }).collect();
//! for n in 1..=10u64 {
//!     jobs.put(n).unwrap(); // waits while 4 jobs are queued
//! }
//! jobs.join().unwrap(); // every job done
//! jobs.close();
//! greenlet::joinall(&workers, None, None).unwrap();
//! let total: u64 = std::iter::from_fn(|| results.try_get().ok()).sum();
//! assert_eq!(total, 385);
//! ```

mod channel;
mod condvar;
mod error;
mod event;
pub(crate) mod gate;
mod lock;
pub mod mpsc;
mod mutex;
mod parked;
mod queue;
mod rwlock;
mod semaphore;
mod sender;
mod storage;

pub(crate) use self::semaphore::SemCore;

pub use self::channel::{Channel, IntoIter, Receiver, Sender, channel, sync_channel};
pub use self::condvar::{Condvar, WaitTimeoutResult};
pub use self::error::{
    AsyncError, RecvError, ReleaseError, SendError, TaskDoneError, TryRecvError, TrySendError,
    WaitError,
};
pub use self::event::{AsyncResult, Event};
pub use self::lock::{Lock, LockGuard, RLock, RLockGuard};
pub use self::mutex::{Mutex, MutexGuard};
pub use self::queue::{LifoQueue, PriorityQueue, Queue};
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
pub use self::sender::AsyncSender;
pub use self::storage::Iter;
