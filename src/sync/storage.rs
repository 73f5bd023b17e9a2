//! The implementation shared by every queue and channel: [`QueueCore`], generic over a
//! [`Store`] that decides the order items come out in.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::Instant;

use super::error::{RecvError, SendError, TaskDoneError, TryRecvError, TrySendError, WaitError};
use super::parked::Parked;
use crate::hub::Waiter;
use crate::hub::waitlist::{WaitList, block_on};

/// How a queue stores its items: the order they come out in.
pub(crate) trait Store<T>: Default {
    fn push(&mut self, item: T);
    fn pop(&mut self) -> Option<T>;
    fn peek(&self) -> Option<&T>;
    fn len(&self) -> usize;
    /// Puts back an item that `pop` returned, so that it comes out next.
    fn unpop(&mut self, item: T);
}

/// First in, first out.
pub(crate) struct Fifo<T>(VecDeque<T>);

/// Last in, first out.
pub(crate) struct Lifo<T>(Vec<T>);

/// Lowest first, as Python's `heapq`.
pub(crate) struct Lowest<T>(BinaryHeap<Reverse<T>>);

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo(VecDeque::new())
    }
}

impl<T> Store<T> for Fifo<T> {
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.0.front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn unpop(&mut self, item: T) {
        self.0.push_front(item);
    }
}

impl<T> Default for Lifo<T> {
    fn default() -> Self {
        Lifo(Vec::new())
    }
}

impl<T> Store<T> for Lifo<T> {
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn peek(&self) -> Option<&T> {
        self.0.last()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn unpop(&mut self, item: T) {
        self.0.push(item);
    }
}

impl<T: Ord> Default for Lowest<T> {
    fn default() -> Self {
        Lowest(BinaryHeap::new())
    }
}

impl<T: Ord> Store<T> for Lowest<T> {
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(v)| v)
    }
    fn peek(&self) -> Option<&T> {
        self.0.peek().map(|Reverse(v)| v)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn unpop(&mut self, item: T) {
        self.push(item);
    }
}

/// Implements [`Waitable`](crate::Waitable) for a type whose `get` side is the `QueueCore`
/// that `$core` reaches from `$s` (a `&Self`): ready when a `get` would return at once.
macro_rules! waitable_by_reading {
    ($doc:literal, [$($generics:tt)*] $ty:ty, |$s:ident| $core:expr) => {
        #[doc = $doc]
        impl<$($generics)*> crate::hub::Waitable for $ty {
            fn is_ready(&self) -> bool {
                let $s = self;
                $core.is_readable()
            }
            fn add_waiter(&self, wakeup: &crate::hub::Wakeup) {
                let $s = self;
                $core.add_read_waiter(wakeup.waiter());
            }
            fn remove_waiters(&self) {
                let $s = self;
                $core.prune_read_waiters();
            }
        }
    };
}
pub(crate) use waitable_by_reading;

/// Names a blocking call in `LoopExit` messages: `Queue::get`.
struct What(&'static str, &'static str);

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.0, self.1)
    }
}

/// The implementation of every queue and channel.
pub(crate) struct QueueCore<T, S> {
    kind: &'static str,
    store: RefCell<S>,
    /// At most this many items are stored (`Some(0)`: rendezvous); `None`: unbounded.
    capacity: Option<usize>,
    closed: Cell<bool>,
    /// Receivers waiting for an item; a put hands it straight to the longest-waiting one.
    getters: Parked<T>,
    /// Senders waiting for room, each with its item; a get takes the longest-waiting one's.
    putters: Parked<T>,
    peekers: WaitList,
    /// Items put and not yet `task_done`.
    unfinished: Cell<usize>,
    joiners: WaitList,
    /// Whether a sender that hands its item to a waiting receiver then lets it run first
    /// (gevent's `Channel`), rather than going on (std's and Go's rendezvous).
    yield_to_receiver: bool,
}

impl<T, S: Store<T>> QueueCore<T, S> {
    pub(crate) fn new(kind: &'static str, capacity: Option<usize>) -> QueueCore<T, S> {
        QueueCore {
            kind,
            store: RefCell::new(S::default()),
            capacity,
            closed: Cell::new(false),
            getters: Parked::new(),
            putters: Parked::new(),
            peekers: WaitList::new(),
            unfinished: Cell::new(0),
            joiners: WaitList::new(),
            yield_to_receiver: false,
        }
    }

    /// gevent's `Channel` order: a send that hands its item to a waiting receiver lets the
    /// receiver run before it returns.
    pub(crate) fn yielding_to_receiver(mut self) -> QueueCore<T, S> {
        self.yield_to_receiver = true;
        self
    }

    fn stored(&self, item: T) {
        self.store.borrow_mut().push(item);
        self.peekers.wake_all();
    }

    fn count_put(&self) {
        self.unfinished.set(self.unfinished.get() + 1);
    }

    pub(crate) fn try_put(&self, item: T) -> Result<(), TrySendError<T>> {
        self.try_put_inner(item).map(drop)
    }

    /// Puts without waiting; `Ok(true)` when a waiting getter received the item directly.
    #[inline(always)]
    fn try_put_inner(&self, item: T) -> Result<bool, TrySendError<T>> {
        if self.closed.get() {
            return Err(TrySendError::Closed(item));
        }
        let item = match self.getters.offer(item) {
            Ok(()) => {
                self.count_put();
                return Ok(true);
            }
            Err(item) => item,
        };
        let len = self.store.borrow().len();
        if self.capacity.is_some_and(|c| len >= c) {
            return Err(TrySendError::Full(item));
        }
        self.stored(item);
        self.count_put();
        Ok(false)
    }

    pub(crate) fn put(
        &self,
        item: T,
        deadline: Option<Instant>,
        op: &'static str,
    ) -> Result<(), SendError<T>> {
        let what = What(self.kind, op);
        let mut item = item;
        loop {
            item = match self.try_put_inner(item) {
                Ok(true) if self.yield_to_receiver => {
                    crate::yield_now();
                    return Ok(());
                }
                Ok(_) => return Ok(()),
                Err(TrySendError::Closed(v)) => return Err(SendError::Closed(v)),
                Err(TrySendError::Full(v)) => v,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendError::TimedOut(item));
            }
            // A rendezvous item is visible to `peek` while its sender waits.
            self.peekers.wake_all();
            let woken = self.putters.park(Some(item), deadline, &what, drop);
            item = match (woken.served, woken.slot) {
                (true, _) | (_, None) => return Ok(()),
                (false, Some(v)) => v,
            };
            match woken.woken {
                Ok(true) => {}
                Ok(false) => {
                    return match self.try_put(item) {
                        Ok(()) => Ok(()),
                        Err(TrySendError::Closed(v)) => Err(SendError::Closed(v)),
                        Err(TrySendError::Full(v)) => Err(SendError::TimedOut(v)),
                    };
                }
                Err(e) => return Err(SendError::from_exit(item, e)),
            }
        }
    }

    #[inline(always)]
    pub(crate) fn try_get(&self) -> Result<T, TryRecvError> {
        let popped = self.store.borrow_mut().pop();
        let open = !self.closed.get();
        if let Some(item) = popped {
            // There is room now: the longest-waiting sender's item goes in.
            if open && let Some(next) = self.putters.accept() {
                self.stored(next);
                self.count_put();
            }
            return Ok(item);
        }
        if open && let Some(item) = self.putters.accept() {
            // Nothing stored (rendezvous): straight from the sender.
            self.count_put();
            return Ok(item);
        }
        Err(if open {
            TryRecvError::Empty
        } else {
            TryRecvError::Closed
        })
    }

    /// Gives back an item handed to a getter that was killed before it took it.
    fn redeliver(&self, item: T) {
        if let Err(item) = self.getters.offer(item) {
            self.store.borrow_mut().unpop(item);
            self.peekers.wake_all();
        }
    }

    pub(crate) fn get(&self, deadline: Option<Instant>, op: &'static str) -> Result<T, RecvError> {
        let what = What(self.kind, op);
        loop {
            match self.try_get() {
                Ok(v) => return Ok(v),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvError::TimedOut);
            }
            let woken = self
                .getters
                .park(None, deadline, &what, |v| self.redeliver(v));
            if let (true, Some(v)) = (woken.served, woken.slot) {
                return Ok(v);
            }
            match woken.woken {
                Ok(true) => {}
                Ok(false) => {
                    return self.try_get().map_err(|e| match e {
                        TryRecvError::Closed => RecvError::Closed,
                        TryRecvError::Empty => RecvError::TimedOut,
                    });
                }
                Err(e) => return Err(WaitError::from(e).into()),
            }
        }
    }

    pub(crate) fn try_peek(&self) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        if let Some(v) = self.store.borrow().peek() {
            return Ok(v.clone());
        }
        if let Some(v) = self.putters.peek_full(T::clone) {
            return Ok(v);
        }
        Err(if self.closed.get() {
            TryRecvError::Closed
        } else {
            TryRecvError::Empty
        })
    }

    pub(crate) fn peek(&self, deadline: Option<Instant>, op: &'static str) -> Result<T, RecvError>
    where
        T: Clone,
    {
        let what = What(self.kind, op);
        let r = block_on(&self.peekers, deadline, &what, || match self.try_peek() {
            Ok(v) => Some(Ok(v)),
            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
            Err(TryRecvError::Empty) => None,
        });
        r.map_err(WaitError::from)?
    }

    /// Whether a `get` would return at once: an item to take, or closed.
    pub(crate) fn is_readable(&self) -> bool {
        self.len() > 0 || self.putters.peek_full(|_| ()).is_some() || self.closed.get()
    }

    /// Wakes `w` when the queue may have become readable.
    pub(crate) fn add_read_waiter(&self, w: &Waiter) {
        self.peekers.push(w.clone());
    }

    pub(crate) fn prune_read_waiters(&self) {
        self.peekers.prune();
    }

    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.getters.wake_all();
        self.putters.wake_all();
        self.peekers.wake_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.store.borrow().len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    pub(crate) fn is_full(&self) -> bool {
        self.capacity.is_some_and(|c| self.len() >= c)
    }

    pub(crate) fn waiting_getters(&self) -> usize {
        self.getters.len()
    }

    pub(crate) fn waiting_putters(&self) -> usize {
        self.putters.len()
    }

    pub(crate) fn task_done(&self) -> Result<(), TaskDoneError> {
        match self.unfinished.get() {
            0 => Err(TaskDoneError),
            n => {
                self.unfinished.set(n - 1);
                if n == 1 {
                    self.joiners.wake_all();
                }
                Ok(())
            }
        }
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.unfinished.get()
    }

    pub(crate) fn join(
        &self,
        deadline: Option<Instant>,
        op: &'static str,
    ) -> Result<(), WaitError> {
        let what = What(self.kind, op);
        block_on(&self.joiners, deadline, &what, || {
            (self.unfinished.get() == 0).then_some(())
        })
        .map_err(WaitError::from)
    }
}

impl<T, S: Store<T>> fmt::Debug for QueueCore<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(self.kind)
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("closed", &self.closed.get())
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .field("unfinished", &self.unfinished.get())
            .finish()
    }
}

/// Something to `get` from, for [`Iter`].
pub(crate) trait Source<T> {
    fn recv(&self) -> Result<T, RecvError>;
}

impl<T, S: Store<T>> Source<T> for QueueCore<T, S> {
    fn recv(&self) -> Result<T, RecvError> {
        self.get(None, "iter")
    }
}

/// A blocking iterator over the items of a queue or channel: ends when it is closed and
/// drained (or when a `get` fails otherwise, see [`RecvError`]).
pub struct Iter<'a, T> {
    source: &'a dyn Source<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.source.recv().ok()
    }
}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<'a, T> Iter<'a, T> {
    pub(crate) fn new(source: &'a dyn Source<T>) -> Iter<'a, T> {
        Iter { source }
    }
}
