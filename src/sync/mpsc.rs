//! Channels between threads and greenlets: std's [`std::sync::mpsc`], green.
//!
//! [`channel`] and [`sync_channel`] have std's signatures, types, methods and errors (the error
//! types are std's own); what differs is how a wait is done. Any greenlet, on any hub, or any
//! plain thread may send. A greenlet that receives from an empty channel parks, and its hub runs
//! the other greenlets meanwhile; a greenlet that sends on a full [`sync_channel`] parks the same
//! way. A plain thread (one without a hub) blocks, as with std. The wake-up of a greenlet on
//! another thread goes through its hub's remote-wake path.
//!
//! Not to be confused with [`sync::channel`](super::channel) and
//! [`sync::sync_channel`](super::sync_channel): those are for greenlets of one thread (cheaper,
//! `!Send`, gevent's error types). These are `Send`, for crossing threads.
//!
//! # Waiting, and when it ends
//!
//! - [`Receiver::recv`] waits until an item comes or every sender is gone
//!   ([`RecvError`]). A greenlet's [`Timeout`](crate::Timeout) that expires, or a stop of its
//!   hub, also ends the wait with [`RecvError`]: std's error has no other case, so check the
//!   [`with_timeout`](crate::with_timeout) result to tell them apart.
//! - [`Receiver::try_recv`] never waits; [`Receiver::recv_timeout`] waits at most a given time.
//! - [`SyncSender::send`] on a full channel waits for room (for
//!   [`sync_channel(0)`](sync_channel), until the receiver takes the item); [`SyncSender::try_send`] never waits,
//!   [`SyncSender::send_timeout`] waits at most a given time.
//!
//! As with std, a receiver that holds one of its own senders waits forever once the others are
//! gone: a hub whose greenlet waits here is never told [`LoopExit`](crate::LoopExit), since a
//! send may come from another thread at any time.
//!
//! # Examples
//! Four OS threads feed one greenlet:
//! ```
//! use greenlet::sync::mpsc;
//!
//! let (tx, rx) = mpsc::channel();
//! let senders: Vec<_> = (0..4u64).map(|t| {
//!     let tx = tx.clone();
//!     std::thread::spawn(move || for i in 0..100 { tx.send(t * 1000 + i).unwrap() })
//! }).collect();
//! drop(tx);
//! let consumer = greenlet::spawn(move || rx.iter().count());
//! assert_eq!(consumer.get().unwrap(), 400); // ends when every sender is gone
//! for s in senders {
//!     s.join().unwrap();
//! }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use super::gate::{Node, remove_node};
use crate::hub::Parker;
use crate::hub::waitlist::{BlockError, deadline_after};

/// Creates an unbounded channel: [`Sender::send`] never waits (std's `channel`).
///
/// # Examples
/// ```
/// let (tx, rx) = greenlet::sync::mpsc::channel();
/// std::thread::spawn(move || tx.send("from a thread").unwrap());
/// assert_eq!(rx.recv().unwrap(), "from a thread"); // the main greenlet parks meanwhile
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(None);
    (Sender { chan: chan.clone() }, Receiver::new(chan))
}

/// Creates a channel that holds at most `bound` items: a send to a full channel waits (std's
/// `sync_channel`). With `bound` 0, every send waits until the receiver takes the item (a
/// rendezvous).
///
/// # Examples
/// ```
/// use greenlet::sync::mpsc::{self, TrySendError};
///
/// let (tx, rx) = mpsc::sync_channel(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.recv().unwrap(), 1);
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Chan::new(Some(bound));
    (SyncSender { chan: chan.clone() }, Receiver::new(chan))
}

/// What every handle of one channel shares.
struct Chan<T> {
    state: Mutex<State<T>>,
    /// `None`: unbounded; `Some(0)`: rendezvous.
    bound: Option<usize>,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver: bool,
    /// The receiver, while it waits for an item.
    recv_waiter: Option<Arc<Node>>,
    /// Senders waiting for room (or, for a rendezvous, for their item to be taken).
    send_waiters: VecDeque<Arc<Node>>,
    /// How many items were ever queued and taken: a rendezvous sender waits for `taken` to
    /// pass the number of its item.
    sent: u64,
    taken: u64,
}

impl<T> Chan<T> {
    fn new(bound: Option<usize>) -> Arc<Chan<T>> {
        Arc::new(Chan {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                senders: 1,
                receiver: true,
                recv_waiter: None,
                send_waiters: VecDeque::new(),
                sent: 0,
                taken: 0,
            }),
            bound,
        })
    }

    /// The channel's state. Its lock guards only the queue and bookkeeping: no user code runs
    /// under it except item destructors run after it is released, so poisoning cannot happen
    /// halfway through an update.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many items fit in the queue: a rendezvous channel holds the one being handed over.
    fn room(&self) -> usize {
        match self.bound {
            None => usize::MAX,
            Some(b) => b.max(1),
        }
    }

    /// Queues `item` (room checked by the caller); returns its number and the receiver to wake.
    fn push(&self, s: &mut State<T>, item: T) -> (u64, Option<Arc<Node>>) {
        s.queue.push_back(item);
        s.sent += 1;
        (s.sent, s.recv_waiter.take())
    }

    /// Sends, waiting for room until `deadline` if `wait` (only a bounded channel is ever
    /// full).
    fn send(
        &self,
        item: T,
        deadline: Option<Instant>,
        mut wait: bool,
    ) -> Result<(), TrySendError<T>> {
        loop {
            let mut s = self.lock();
            if !s.receiver {
                return Err(TrySendError::Disconnected(item));
            }
            if s.queue.len() < self.room() {
                let (number, receiver) = self.push(&mut s, item);
                drop(s);
                if let Some(r) = receiver {
                    r.notify();
                }
                if self.bound == Some(0) {
                    return self.await_taken(number, deadline, wait);
                }
                return Ok(());
            }
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(TrySendError::Full(item));
            }
            let (parker, node) = Node::new();
            s.send_waiters.push_back(node.clone());
            drop(s);
            let r = self.wait_node(&node, &parker, deadline, "SyncSender::send");
            self.forget_sender(&node);
            if r.is_err() {
                // Out of time (or the greenlet's `Timeout` expired): one last try.
                wait = false;
            }
        }
    }

    /// A rendezvous send: waits until the receiver has taken item number `number`; takes it
    /// back if the receiver goes away or the time runs out first.
    fn await_taken(
        &self,
        number: u64,
        deadline: Option<Instant>,
        mut wait: bool,
    ) -> Result<(), TrySendError<T>> {
        loop {
            let mut s = self.lock();
            if s.taken >= number {
                return Ok(());
            }
            let gone = !s.receiver;
            if gone || !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                // Not taken: it is still the last item of the queue (a rendezvous channel
                // holds one item at a time).
                let Some(item) = s.queue.pop_back() else {
                    unreachable!("an untaken item of a rendezvous channel is queued")
                };
                s.sent -= 1;
                Self::wake_first_sender(&mut s);
                return Err(if gone {
                    TrySendError::Disconnected(item)
                } else {
                    TrySendError::Full(item)
                });
            }
            let (parker, node) = Node::new();
            s.send_waiters.push_back(node.clone());
            drop(s);
            let r = self.wait_node(&node, &parker, deadline, "SyncSender::send");
            self.forget_sender(&node);
            if r.is_err() {
                wait = false;
            }
        }
    }

    /// Takes a sender's node out of the queue after its wait.
    fn forget_sender(&self, node: &Arc<Node>) {
        let mut s = self.lock();
        remove_node(&mut s.send_waiters, node);
        node.disarm();
    }

    /// Waits on a sender's node; a kill while waiting takes the node out of the queue (and
    /// passes on a wake-up it had received).
    fn wait_node(
        &self,
        node: &Arc<Node>,
        parker: &Parker,
        deadline: Option<Instant>,
        what: &str,
    ) -> Result<(), BlockError> {
        let mut leave = LeaveSenders {
            chan: self,
            node,
            armed: true,
        };
        let r = node.wait_stoppable(parker, deadline, &what, true);
        leave.armed = false;
        r
    }

    fn wake_first_sender(s: &mut State<T>) {
        if let Some(n) = s.send_waiters.pop_front() {
            n.notify();
        }
    }

    /// Takes the next item, waiting until `deadline` if `wait`.
    fn recv(&self, deadline: Option<Instant>, wait: bool) -> Result<T, RecvTimeoutError> {
        loop {
            let mut s = self.lock();
            if let Some(item) = s.queue.pop_front() {
                s.taken += 1;
                if self.bound == Some(0) {
                    // The sender of this item waits for it to be taken, and the next one for
                    // room: wake them all, each checks.
                    for n in std::mem::take(&mut s.send_waiters) {
                        n.notify();
                    }
                } else if self.bound.is_some() {
                    Self::wake_first_sender(&mut s);
                }
                return Ok(item);
            }
            if s.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            if !wait || deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RecvTimeoutError::Timeout);
            }
            let (parker, node) = Node::new();
            s.recv_waiter = Some(node.clone());
            drop(s);
            let mut leave = LeaveReceiver {
                chan: self,
                node: &node,
                armed: true,
            };
            let r = node.wait_stoppable(&parker, deadline, &"Receiver::recv", true);
            leave.armed = false;
            drop(leave);
            self.forget_receiver(&node);
            if let Err(e) = r {
                // One last look: an item may have come just as the time ran out.
                let mut s = self.lock();
                if let Some(item) = s.queue.pop_front() {
                    s.taken += 1;
                    if self.bound.is_some() {
                        for n in std::mem::take(&mut s.send_waiters) {
                            n.notify();
                        }
                    }
                    return Ok(item);
                }
                return Err(match e {
                    BlockError::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => {
                        RecvTimeoutError::Timeout
                    }
                    // A greenlet's `Timeout` (or a stop): std's `recv` knows only
                    // `RecvError`, which `Receiver::recv` makes of `Disconnected`.
                    _ => RecvTimeoutError::Disconnected,
                });
            }
        }
    }

    fn forget_receiver(&self, node: &Arc<Node>) {
        let mut s = self.lock();
        if s.recv_waiter.as_ref().is_some_and(|n| Arc::ptr_eq(n, node)) {
            s.recv_waiter = None;
        }
        node.disarm();
    }
}

/// Takes a parked sender out of the queue if its greenlet unwinds.
struct LeaveSenders<'a, T> {
    chan: &'a Chan<T>,
    node: &'a Arc<Node>,
    armed: bool,
}

impl<T> Drop for LeaveSenders<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            let mut s = self.chan.lock();
            self.node.disarm();
            if !remove_node(&mut s.send_waiters, self.node) && self.node.is_notified() {
                Chan::wake_first_sender(&mut s);
            }
        }
    }
}

/// Forgets the parked receiver if its greenlet unwinds.
struct LeaveReceiver<'a, T> {
    chan: &'a Chan<T>,
    node: &'a Arc<Node>,
    armed: bool,
}

impl<T> Drop for LeaveReceiver<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            self.chan.forget_receiver(self.node);
        }
    }
}

/// The sending half of a [`channel`] (std's `Sender`): `Send + Sync`, cloned for more senders.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The sending half of a [`sync_channel`] (std's `SyncSender`).
pub struct SyncSender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving half of a channel (std's `Receiver`): `Send`, not `Sync`; one receiver per
/// channel.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// Not `Sync`, as std's: one receiver takes from the channel at a time.
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl<T> Sender<T> {
    /// Sends `t`; never waits.
    ///
    /// # Errors
    /// [`SendError`] with the item when the receiver is gone.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.chan.send(t, None, false).map_err(|e| match e {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => SendError(t),
        })
    }
}

impl<T> SyncSender<T> {
    /// Sends `t`, waiting while the channel is full (a greenlet parks); with bound 0, until
    /// the receiver takes it.
    ///
    /// # Errors
    /// [`SendError`] with the item when the receiver is gone, or when a greenlet's
    /// [`Timeout`](crate::Timeout) expires or its hub is stopped first (std's error has no
    /// other case).
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.chan.send(t, None, true).map_err(|e| match e {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => SendError(t),
        })
    }

    /// Sends `t` if there is room right now (for bound 0: if the receiver waits right now).
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Disconnected`], with the item.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        self.chan.send(t, None, false)
    }

    /// Sends `t`, waiting at most `timeout` for room (for bound 0: for the receiver to take
    /// it). Not in std (whose `send_timeout` is unstable): a full channel at the deadline is
    /// [`TrySendError::Full`].
    ///
    /// # Errors
    /// As [`try_send`](SyncSender::try_send).
    pub fn send_timeout(&self, t: T, timeout: Duration) -> Result<(), TrySendError<T>> {
        self.chan.send(t, deadline_after(Some(timeout)), true)
    }
}

impl<T> Receiver<T> {
    fn new(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver {
            chan,
            _not_sync: PhantomData,
        }
    }

    /// Takes the next item, waiting until one comes (a greenlet parks, a plain thread blocks).
    ///
    /// # Errors
    /// [`RecvError`] when the channel is empty and every sender is gone, or when a greenlet's
    /// [`Timeout`](crate::Timeout) expires or its hub is stopped first.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None, true).map_err(|_| RecvError)
    }

    /// Takes the next item if there is one.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], or [`TryRecvError::Disconnected`] when every sender is gone.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.recv(None, false).map_err(|e| match e {
            RecvTimeoutError::Timeout => TryRecvError::Empty,
            RecvTimeoutError::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Takes the next item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Disconnected`] when every sender
    /// is gone (or, as for `recv`, a greenlet's `Timeout` expired or its hub was stopped).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use greenlet::sync::mpsc::{self, RecvTimeoutError};
    ///
    /// let (_tx, rx) = mpsc::channel::<u8>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(deadline_after(Some(timeout)), true)
    }

    /// An iterator that waits for items and ends when every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the items there are now, without waiting.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// What both sender types share: cloning counts a sender, the last one going wakes a waiting
/// receiver (which then finds the channel disconnected), `Debug` shows nothing of the items.
macro_rules! sender_handle {
    ($name:ident) => {
        impl<T> Clone for $name<T> {
            fn clone(&self) -> Self {
                self.chan.lock().senders += 1;
                $name {
                    chan: self.chan.clone(),
                }
            }
        }

        impl<T> Drop for $name<T> {
            fn drop(&mut self) {
                let receiver = {
                    let mut s = self.chan.lock();
                    s.senders -= 1;
                    if s.senders == 0 {
                        s.recv_waiter.take()
                    } else {
                        None
                    }
                };
                if let Some(r) = receiver {
                    r.notify();
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

sender_handle!(Sender);
sender_handle!(SyncSender);

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let (items, senders) = {
            let mut s = self.chan.lock();
            s.receiver = false;
            // An item of a rendezvous channel still belongs to its waiting sender, which takes
            // it back.
            let items = if self.chan.bound == Some(0) {
                VecDeque::new()
            } else {
                std::mem::take(&mut s.queue)
            };
            (items, std::mem::take(&mut s.send_waiters))
        };
        // Waiting senders find the receiver gone; the items left are dropped here, outside
        // the channel's lock.
        for n in senders {
            n.notify();
        }
        drop(items);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// Waits for items until every sender is gone: [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

/// The items there are now: [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

/// Owns the receiver; waits for items until every sender is gone.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
