//! Queues between greenlets (gevent's `gevent.queue`): [`Queue`] (FIFO), [`LifoQueue`] and
//! [`PriorityQueue`], bounded or not, with gevent's `JoinableQueue` task accounting built in.
//!
//! The three are one implementation, [`QueueCore`](super::storage::QueueCore), over different
//! stores; the channels of [`channel`](super::channel) use it too.

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::error::{RecvError, SendError, TaskDoneError, TryRecvError, TrySendError, WaitError};
use super::storage::{Fifo, Iter, Lifo, Lowest, QueueCore, waitable_by_reading};
use crate::hub::waitlist::deadline_after;

macro_rules! queue_type {
    (
        $(#[$meta:meta])*
        $name:ident, $store:ident, [$($bound:tt)*], $put:literal => $got:literal
    ) => {
        $(#[$meta])*
        pub struct $name<T> {
            core: Rc<QueueCore<T, $store<T>>>,
        }

        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                $name { core: self.core.clone() }
            }
        }

        impl<T $($bound)*> Default for $name<T> {
            fn default() -> Self {
                $name::new()
            }
        }

        waitable_by_reading!(
            "Ready when a `get` would return at once: an item to take, or closed.",
            [T $($bound)*] $name<T>, |q| q.core
        );

        impl<T $($bound)*> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.core, f)
            }
        }

        impl<T $($bound)*> $name<T> {
            /// An unbounded queue: `put` never blocks.
            pub fn new() -> Self {
                $name { core: Rc::new(QueueCore::new(stringify!($name), None)) }
            }

            /// A queue of at most `capacity` items (gevent's `maxsize`): `put` blocks while it
            /// is full. A capacity of 0 makes every `put` wait for a `get` (rendezvous).
            ///
            /// # Examples
            /// ```
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::bounded(1);")]
            /// q.try_put(1).unwrap();
            /// assert!(q.is_full());
            /// assert!(q.try_put(2).is_err());
            /// ```
            #[doc(alias = "maxsize")]
            pub fn bounded(capacity: usize) -> Self {
                $name { core: Rc::new(QueueCore::new(stringify!($name), Some(capacity))) }
            }

            /// Adds an item, waiting while the queue is full. If a greenlet is waiting in
            /// `get`, it receives the item directly.
            ///
            /// # Errors
            /// [`SendError::Closed`] once the queue is closed; [`SendError::LoopExit`] when
            /// nothing could ever make room; [`SendError::TimedOut`] under an expired
            /// [`Timeout`](crate::Timeout). The item comes back in the error.
            pub fn put(&self, item: T) -> Result<(), SendError<T>> {
                self.core.put(item, None, "put")
            }

            /// Adds an item if there is room right now (gevent's `put_nowait`).
            ///
            /// # Errors
            /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the item.
            #[doc(alias = "put_nowait")]
            pub fn try_put(&self, item: T) -> Result<(), TrySendError<T>> {
                self.core.try_put(item)
            }

            /// Adds an item, waiting at most `timeout` for room.
            ///
            /// # Errors
            /// [`SendError::TimedOut`] when no room came in time; otherwise as
            #[doc = concat!("[`put`](", stringify!($name), "::put).")]
            #[doc(alias = "put(timeout)")]
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
                self.core.put(item, deadline_after(Some(timeout)), "put_timeout")
            }

            /// Removes and returns the next item, waiting while the queue is empty. After
            #[doc = concat!("[`close`](", stringify!($name), "::close),")]
            /// the items left are still returned, then [`RecvError::Closed`].
            ///
            /// # Errors
            /// [`RecvError::Closed`]; [`RecvError::LoopExit`] when nothing could ever put an
            /// item; [`RecvError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
            ///
            /// # Examples
            /// ```
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::new();")]
            /// let producer = q.clone();
            /// greenlet::spawn(move || producer.put("hello").unwrap());
            /// assert_eq!(q.get().unwrap(), "hello"); // waits for the producer
            /// ```
            pub fn get(&self) -> Result<T, RecvError> {
                self.core.get(None, "get")
            }

            /// Removes and returns the next item if there is one (gevent's `get_nowait`).
            ///
            /// # Errors
            /// [`TryRecvError::Empty`], or [`TryRecvError::Closed`] once closed and drained.
            #[doc(alias = "get_nowait")]
            pub fn try_get(&self) -> Result<T, TryRecvError> {
                self.core.try_get()
            }

            /// Removes and returns the next item, waiting at most `timeout`.
            ///
            /// # Errors
            /// [`RecvError::TimedOut`] when nothing came in time; otherwise as
            #[doc = concat!("[`get`](", stringify!($name), "::get).")]
            ///
            /// # Examples
            /// ```
            /// use std::time::Duration;
            /// use greenlet::sync::RecvError;
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::<u8>::new();")]
            /// assert_eq!(q.get_timeout(Duration::from_millis(1)), Err(RecvError::TimedOut));
            /// ```
            #[doc(alias = "get(timeout)")]
            pub fn get_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
                self.core.get(deadline_after(Some(timeout)), "get_timeout")
            }

            /// Returns a copy of the next item without removing it, waiting while the queue is
            /// empty.
            ///
            /// # Errors
            #[doc = concat!("As [`get`](", stringify!($name), "::get).")]
            pub fn peek(&self) -> Result<T, RecvError>
            where
                T: Clone,
            {
                self.core.peek(None, "peek")
            }

            /// Returns a copy of the next item, if there is one, without removing it (gevent's
            /// `peek_nowait`).
            ///
            /// # Errors
            #[doc = concat!("As [`try_get`](", stringify!($name), "::try_get).")]
            ///
            /// # Examples
            /// ```
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::new();")]
            /// q.put(7).unwrap();
            /// assert_eq!(q.try_peek(), Ok(7));
            /// assert_eq!(q.len(), 1);
            /// ```
            #[doc(alias = "peek_nowait")]
            pub fn try_peek(&self) -> Result<T, TryRecvError>
            where
                T: Clone,
            {
                self.core.try_peek()
            }

            /// Returns a copy of the next item without removing it, waiting at most `timeout`.
            ///
            /// # Errors
            #[doc = concat!("As [`get_timeout`](", stringify!($name), "::get_timeout).")]
            pub fn peek_timeout(&self, timeout: Duration) -> Result<T, RecvError>
            where
                T: Clone,
            {
                self.core.peek(deadline_after(Some(timeout)), "peek_timeout")
            }

            /// Closes the queue (gevent's `shutdown()`): later puts fail, greenlets waiting to
            /// put get their item back in a [`SendError::Closed`], and getters take the items
            /// left, then get [`RecvError::Closed`]. Idempotent.
            ///
            /// # Examples
            /// ```
            /// use greenlet::sync::{RecvError, SendError};
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::new();")]
            /// q.put(1).unwrap();
            /// q.close();
            /// assert!(matches!(q.put(2), Err(SendError::Closed(2))));
            /// assert_eq!(q.get(), Ok(1));
            /// assert_eq!(q.get(), Err(RecvError::Closed));
            /// ```
            #[doc(alias = "shutdown")]
            pub fn close(&self) {
                self.core.close();
            }

            /// Whether [`close`](Self::close) was called.
            pub fn is_closed(&self) -> bool {
                self.core.is_closed()
            }

            /// How many items are stored (gevent's `qsize()`).
            #[doc(alias = "qsize")]
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether no item is stored (gevent's `empty()`).
            #[doc(alias = "empty")]
            pub fn is_empty(&self) -> bool {
                self.core.len() == 0
            }

            /// Whether a `put` would wait (gevent's `full()`).
            #[doc(alias = "full")]
            pub fn is_full(&self) -> bool {
                self.core.is_full()
            }

            /// The capacity given to [`bounded`](Self::bounded) (gevent's `maxsize`).
            pub fn capacity(&self) -> Option<usize> {
                self.core.capacity()
            }

            /// How many greenlets are waiting in `get` (gevent's `getters`).
            pub fn waiting_getters(&self) -> usize {
                self.core.waiting_getters()
            }

            /// How many greenlets are waiting in `put` (gevent's `putters`).
            pub fn waiting_putters(&self) -> usize {
                self.core.waiting_putters()
            }

            /// Marks one item taken by a `get` as processed (gevent's `JoinableQueue`): once
            /// every item put is done, [`join`](Self::join) returns.
            ///
            /// # Errors
            /// [`TaskDoneError`] if called more times than items were put.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::new();")]
            /// q.put("job").unwrap();
            /// let worker = q.clone();
            /// greenlet::spawn(move || {
            ///     let _job = worker.get().unwrap();
            ///     worker.task_done().unwrap();
            /// });
            /// q.join().unwrap(); // until the worker is done with the job
            /// assert!(q.task_done().is_err());
            /// ```
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.core.task_done()
            }

            /// How many items were put and are not yet [`task_done`](Self::task_done).
            pub fn unfinished_tasks(&self) -> usize {
                self.core.unfinished()
            }

            /// Waits until every item put has been marked [`task_done`](Self::task_done).
            ///
            /// # Errors
            /// [`WaitError::LoopExit`] when nothing could ever finish them;
            /// [`WaitError::TimedOut`] under an expired [`Timeout`](crate::Timeout).
            pub fn join(&self) -> Result<(), WaitError> {
                self.core.join(None, "join")
            }

            /// The non-blocking form of [`join`](Self::join): whether every item is done.
            pub fn try_join(&self) -> bool {
                self.core.unfinished() == 0
            }

            /// Waits at most `timeout` until every item put is done.
            ///
            /// # Errors
            /// [`WaitError::TimedOut`] when items are still unfinished; `LoopExit`.
            pub fn join_timeout(&self, timeout: Duration) -> Result<(), WaitError> {
                self.core.join(deadline_after(Some(timeout)), "join_timeout")
            }

            /// A blocking iterator of `get`s that ends once the queue is closed and drained.
            ///
            /// # Examples
            /// ```
            #[doc = concat!("let q = greenlet::sync::", stringify!($name), "::new();")]
            #[doc = concat!("for i in [", $put, "] { q.put(i).unwrap(); }")]
            /// q.close();
            #[doc = concat!("assert_eq!(q.iter().collect::<Vec<_>>(), [", $got, "]);")]
            /// ```
            pub fn iter(&self) -> Iter<'_, T> {
                Iter::new(&*self.core)
            }
        }
    };
}

queue_type! {
    /// A first-in, first-out queue between greenlets (gevent's `Queue` and `JoinableQueue`).
    ///
    /// Unbounded ([`new`](Queue::new)) or [`bounded`](Queue::bounded); every blocking call
    /// comes in three forms (`get`, `try_get`, `get_timeout`), and a greenlet waiting in `get`
    /// receives a new item directly, in arrival order. Clones are handles on the same queue.
    ///
    /// # Examples
    /// ```
    /// use greenlet::sync::Queue;
    ///
    /// let q = Queue::bounded(2);
    /// let producer = {
    ///     let q = q.clone();
    ///     greenlet::spawn(move || {
    ///         for i in 0..5 {
    ///             q.put(i).unwrap(); // waits while two items are queued
    ///         }
    ///         q.close();
    ///     })
    /// };
    /// let got: Vec<i32> = q.iter().collect();
    /// assert_eq!(got, [0, 1, 2, 3, 4]);
    /// producer.join().unwrap();
    /// ```
    Queue, Fifo, [], "1, 2, 3" => "1, 2, 3"
}

queue_type! {
    /// A last-in, first-out queue (a stack) between greenlets (gevent's `LifoQueue`).
    ///
    /// The same interface as [`Queue`]; only the order differs.
    ///
    /// # Examples
    /// ```
    /// let q = greenlet::sync::LifoQueue::new();
    /// for i in 1..=3 { q.put(i).unwrap(); }
    /// assert_eq!([q.get(), q.get(), q.get()], [Ok(3), Ok(2), Ok(1)]);
    /// ```
    LifoQueue, Lifo, [], "1, 2, 3" => "3, 2, 1"
}

queue_type! {
    /// A queue that returns its lowest item first (gevent's `PriorityQueue`, like Python's
    /// `heapq`); put `(priority, value)` tuples to order by priority, or
    /// [`Reverse`](std::cmp::Reverse) items for highest first.
    ///
    /// The same interface as [`Queue`]; only the order differs.
    ///
    /// # Examples
    /// ```
    /// let q = greenlet::sync::PriorityQueue::new();
    /// q.put((2, "write")).unwrap();
    /// q.put((1, "read")).unwrap();
    /// q.put((3, "close")).unwrap();
    /// assert_eq!(q.get().unwrap(), (1, "read"));
    /// assert_eq!(q.get().unwrap(), (2, "write"));
    /// ```
    PriorityQueue, Lowest, [: Ord], "3, 1, 2" => "1, 2, 3"
}
