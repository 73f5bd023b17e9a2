//! Channels between greenlets: gevent's rendezvous [`Channel`], and std-shaped
//! [`channel`]/[`sync_channel`] pairs of [`Sender`] and [`Receiver`].

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use super::error::{RecvError, SendError, TryRecvError, TrySendError};
use super::storage::{Fifo, Iter, QueueCore, Source, waitable_by_reading};
use crate::hub::waitlist::deadline_after;

/// A rendezvous channel (gevent's `queue.Channel`): it stores nothing, so
/// [`send`](Channel::send) waits until a greenlet [`recv`](Channel::recv)s the item, and a
/// receiver waits for a sender. Any number of greenlets may send and receive; each side is
/// served in arrival order. Clones are handles on the same channel.
///
/// As in gevent, a send to a waiting receiver lets the receiver run with the item before the
/// send returns. [`sync_channel(0)`](sync_channel) is the same rendezvous in std's and Go's
/// order, where the sender goes on at once; it costs one switch less per message.
///
/// # Examples
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use greenlet::sync::Channel;
///
/// let ch = Channel::new();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let (rx, rx_log) = (ch.clone(), log.clone());
/// let receiver = greenlet::spawn(move || {
///     for _ in 0..2 {
///         let item = rx.recv().unwrap();
///         rx_log.borrow_mut().push(item);
///     }
/// });
/// log.borrow_mut().push("sending");
/// ch.send("hello").unwrap(); // returns once the receiver has it
/// log.borrow_mut().push("sent hello");
/// ch.send("world").unwrap();
/// log.borrow_mut().push("sent world");
/// receiver.join().unwrap();
/// assert_eq!(*log.borrow(), ["sending", "hello", "sent hello", "world", "sent world"]);
/// ```
pub struct Channel<T> {
    core: Rc<QueueCore<T, Fifo<T>>>,
}

impl<T> Channel<T> {
    /// A new rendezvous channel.
    pub fn new() -> Channel<T> {
        Channel {
            core: Rc::new(QueueCore::new("Channel", Some(0)).yielding_to_receiver()),
        }
    }

    /// Sends an item, waiting until a receiver takes it.
    ///
    /// # Errors
    /// [`SendError::Closed`] once the channel is closed; [`SendError::LoopExit`] when no
    /// receiver could ever come; [`SendError::TimedOut`] under an expired
    /// [`Timeout`](crate::Timeout). The item comes back in the error.
    #[doc(alias = "put")]
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        self.core.put(item, None, "send")
    }

    /// Sends an item if a receiver is waiting right now (gevent's `put_nowait`).
    ///
    /// # Errors
    /// [`TrySendError::Full`] when no receiver waits; [`TrySendError::Closed`].
    #[doc(alias = "put_nowait")]
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.core.try_put(item)
    }

    /// Sends an item, waiting at most `timeout` for a receiver to take it.
    ///
    /// # Errors
    /// [`SendError::TimedOut`] with the item when nobody took it in time; as
    /// [`send`](Channel::send) otherwise.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.core
            .put(item, deadline_after(Some(timeout)), "send_timeout")
    }

    /// Receives an item, waiting for a sender.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once the channel is closed; [`RecvError::LoopExit`] when no
    /// sender could ever come; [`RecvError::TimedOut`] under an expired
    /// [`Timeout`](crate::Timeout).
    #[doc(alias = "get")]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.core.get(None, "recv")
    }

    /// Receives an item if a sender is waiting right now (gevent's `get_nowait`).
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] when no sender waits; [`TryRecvError::Closed`].
    #[doc(alias = "get_nowait")]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.core.try_get()
    }

    /// Receives an item, waiting at most `timeout` for a sender.
    ///
    /// # Errors
    /// [`RecvError::TimedOut`] when no sender came in time; as [`recv`](Channel::recv)
    /// otherwise.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.core.get(deadline_after(Some(timeout)), "recv_timeout")
    }

    /// Closes the channel: waiting and later senders fail with their item, receivers get
    /// [`RecvError::Closed`]. Idempotent.
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether [`close`](Channel::close) was called.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// How many greenlets wait in `recv` (gevent's `getters`).
    pub fn waiting_receivers(&self) -> usize {
        self.core.waiting_getters()
    }

    /// How many greenlets wait in `send` (gevent's `putters`).
    pub fn waiting_senders(&self) -> usize {
        self.core.waiting_putters()
    }

    /// A blocking iterator of `recv`s that ends once the channel is closed.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter::new(&*self.core)
    }
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            core: self.core.clone(),
        }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

waitable_by_reading!(
    "Ready when a `recv` would return at once: a sender waiting with an item, or closed.",
    [T] Channel<T>, |c| c.core
);

waitable_by_reading!(
    "Ready when a `recv` would return at once: an item to take, or every sender gone.",
    [T] Receiver<T>, |r| r.ends.core
);

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.core, f)
    }
}

/// What the ends of a [`channel`] share: the queue and how many ends of each kind are left.
struct Ends<T> {
    core: QueueCore<T, Fifo<T>>,
    senders: Cell<usize>,
    receivers: Cell<usize>,
}

/// Creates an unbounded channel, as `std::sync::mpsc::channel`: [`Sender::send`] never
/// blocks. Both ends may be cloned (any number of greenlets may send and receive); when every
/// [`Sender`] is gone, receivers take what is left and then get [`RecvError::Closed`], and when
/// every [`Receiver`] is gone, sends fail with their item.
///
/// # Examples
/// ```
/// let (tx, rx) = greenlet::sync::channel();
/// for i in 0..3 {
///     let tx = tx.clone();
///     greenlet::spawn(move || tx.send(i).unwrap());
/// }
/// drop(tx);
/// let got: Vec<i32> = rx.iter().collect();
/// assert_eq!(got, [0, 1, 2]);
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    pair(None)
}

/// Creates a bounded channel, as `std::sync::mpsc::sync_channel`: [`Sender::send`] waits
/// while `bound` items are queued. A bound of 0 is a rendezvous, as Go's unbuffered `chan`:
/// every send waits until a receiver takes its item; when a receiver is already waiting, the
/// item is handed to it and the sender goes on.
///
/// # Examples
/// ```
/// let (tx, rx) = greenlet::sync::sync_channel(0);
/// let pong = greenlet::spawn(move || {
///     let n: u32 = rx.recv().unwrap();
///     n + 1
/// });
/// tx.send(41).unwrap(); // returns once `pong` has the value
/// assert_eq!(pong.get().unwrap(), 42);
/// ```
pub fn sync_channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    pair(Some(bound))
}

fn pair<T>(capacity: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let ends = Rc::new(Ends {
        core: QueueCore::new("channel", capacity),
        senders: Cell::new(1),
        receivers: Cell::new(1),
    });
    (Sender { ends: ends.clone() }, Receiver { ends })
}

/// The sending end of a [`channel`] or [`sync_channel`].
pub struct Sender<T> {
    ends: Rc<Ends<T>>,
}

impl<T> Sender<T> {
    /// Sends an item, waiting while the channel is full (for a rendezvous channel: until a
    /// receiver takes it).
    ///
    /// # Errors
    /// [`SendError::Closed`] when every receiver is gone; [`SendError::LoopExit`] when nothing
    /// could ever make room; [`SendError::TimedOut`] under an expired
    /// [`Timeout`](crate::Timeout). The item comes back in the error.
    pub fn send(&self, item: T) -> Result<(), SendError<T>> {
        self.ends.core.put(item, None, "send")
    }

    /// Sends an item if there is room (or a waiting receiver) right now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the item.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.ends.core.try_put(item)
    }

    /// Sends an item, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendError::TimedOut`] with the item; as [`send`](Sender::send) otherwise.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError<T>> {
        self.ends
            .core
            .put(item, deadline_after(Some(timeout)), "send_timeout")
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.ends.senders.set(self.ends.senders.get() + 1);
        Sender {
            ends: self.ends.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let n = self.ends.senders.get() - 1;
        self.ends.senders.set(n);
        if n == 0 {
            self.ends.core.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("channel", &self.ends.core)
            .finish()
    }
}

/// The receiving end of a [`channel`] or [`sync_channel`].
pub struct Receiver<T> {
    ends: Rc<Ends<T>>,
}

impl<T> Receiver<T> {
    /// Receives an item, waiting while the channel is empty.
    ///
    /// # Errors
    /// [`RecvError::Closed`] once every sender is gone and the channel is drained;
    /// [`RecvError::LoopExit`] when nothing could ever send; [`RecvError::TimedOut`] under an
    /// expired [`Timeout`](crate::Timeout).
    ///
    /// # Examples
    /// ```
    /// use greenlet::sync::RecvError;
    /// let (tx, rx) = greenlet::sync::channel::<u8>();
    /// // The sender is alive but nothing runs that could use it: LoopExit, not a hang.
    /// assert!(matches!(rx.recv(), Err(RecvError::LoopExit(_))));
    /// drop(tx);
    /// assert_eq!(rx.recv(), Err(RecvError::Closed));
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.ends.core.get(None, "recv")
    }

    /// Receives an item if there is one right now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Closed`] once every sender is gone and the
    /// channel is drained.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.ends.core.try_get()
    }

    /// Receives an item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvError::TimedOut`]; as [`recv`](Receiver::recv) otherwise.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        self.ends
            .core
            .get(deadline_after(Some(timeout)), "recv_timeout")
    }

    /// A blocking iterator of `recv`s that ends once every sender is gone and the channel is
    /// drained.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter::new(self)
    }

    /// An iterator over the items available now, without waiting.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = greenlet::sync::channel();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.try_recv().ok())
    }
}

impl<T> Source<T> for Receiver<T> {
    fn recv(&self) -> Result<T, RecvError> {
        Receiver::recv(self)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.ends.receivers.set(self.ends.receivers.get() + 1);
        Receiver {
            ends: self.ends.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let n = self.ends.receivers.get() - 1;
        self.ends.receivers.set(n);
        if n == 0 {
            self.ends.core.close();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("channel", &self.ends.core)
            .finish()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// An owning blocking iterator over a [`Receiver`]'s items.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
