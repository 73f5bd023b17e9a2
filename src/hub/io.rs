//! The hub's I/O reactor: mio readiness turned into greenlet wake-ups.
//!
//! Every green socket registers its descriptor once, edge-triggered, for both directions. An
//! operation that returns `WouldBlock` parks its greenlet on the descriptor's wait list for that
//! direction; the next readiness event wakes every greenlet on the list (each retries, so two
//! greenlets reading one socket are both served and no wake-up is lost).

use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use super::waitlist::{BlockError, WaitList};
use super::{Waiter, park, waiter, with_hub};

/// The token of the cross-thread waker.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// A direction of readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

#[derive(Default)]
struct Entry {
    readers: IoWaiters,
    writers: IoWaiters,
    /// The descriptor has reported what a short read neither clears nor sees reported again
    /// (see `net::Io::read_stream`): urgent data (a read stops short at its mark, with more
    /// queued behind), the end of the stream or an error (a read takes the data before it, and
    /// the next returns the end or the error). Sticky: from then on every read of it asks the
    /// kernel first.
    read_sticky: Cell<bool>,
}

/// The greenlets waiting on one descriptor in one direction, in arrival order. Almost always
/// there is one (the connection's own greenlet, parked on every request of a keep-alive
/// connection): it sits in an inline slot, with no queue to grow, borrow or walk; any more
/// go to a [`WaitList`] behind it.
#[derive(Default)]
struct IoWaiters {
    /// The longest-waiting greenlet, when the queue behind it is empty or younger.
    first: Cell<Option<Waiter>>,
    more: WaitList,
}

impl IoWaiters {
    #[inline]
    fn push(&self, w: Waiter) {
        // Into the slot only when nobody waits behind it, so arrival order holds.
        let first = self.first.take();
        if first.is_none() && self.more.is_empty() {
            self.first.set(Some(w));
        } else {
            self.first.set(first);
            self.more.push(w);
        }
    }

    /// Wakes every greenlet waiting here (as [`WaitList::wake_all`]: those that arrive while
    /// it runs wait for the next readiness event).
    #[inline]
    fn wake_all(&self) {
        let behind = !self.more.is_empty();
        if let Some(w) = self.first.take() {
            // Dropped outside any borrow: it may hold the last handle of a greenlet.
            w.wake();
        }
        if behind {
            self.more.wake_all();
        }
    }

    /// Takes out the entries whose greenlets have moved on (see [`WaitList::take_stale`]).
    #[must_use]
    fn take_stale(&self) -> Vec<Waiter> {
        let mut stale = self.more.take_stale();
        if let Some(w) = self.first.take() {
            if w.is_waiting() {
                self.first.set(Some(w));
            } else {
                stale.push(w);
            }
        }
        stale
    }
}

thread_local! {
    /// How many times this thread's reactor has taken events from epoll. A stream socket whose
    /// read emptied the receive buffer with no harvest since knows that nothing has come in
    /// (anything arriving since queued an edge that no harvest has taken yet), so its next read
    /// parks without a system call that would only say `EAGAIN` (`net::Io::read_stream`).
    static HARVESTS: Cell<u64> = const { Cell::new(0) };
}

/// This thread's reactor harvest count (see [`HARVESTS`]).
#[inline]
pub(crate) fn harvests() -> u64 {
    HARVESTS.with(Cell::get)
}

/// The per-hub reactor state.
#[derive(Default)]
pub(crate) struct Reactor {
    /// Created on first registration; polled only by the hub loop.
    poll: RefCell<Option<Poll>>,
    /// A clone of the poll's registry, so registering never needs the poll itself.
    registry: OnceCell<Registry>,
    events: RefCell<Option<Events>>,
    entries: RefCell<Vec<Option<Entry>>>,
    free: RefCell<Vec<usize>>,
    /// Greenlets currently parked on I/O.
    parked: Cell<usize>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("parked", &self.parked.get())
            .finish_non_exhaustive()
    }
}

impl Reactor {
    pub(crate) fn registry(&self) -> io::Result<&Registry> {
        if let Some(r) = self.registry.get() {
            return Ok(r);
        }
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        *self.poll.borrow_mut() = Some(poll);
        Ok(self.registry.get_or_init(|| registry))
    }

    pub(crate) fn has_waiters(&self) -> bool {
        self.parked.get() > 0
    }

    /// Polls mio for at most `timeout` (`None`: until something happens) and wakes the
    /// greenlets parked on ready descriptors. Remote wake-ups are drained by the caller.
    pub(crate) fn poll(&self, timeout: Option<Duration>) {
        let mut poll_slot = self.poll.borrow_mut();
        let Some(poll) = poll_slot.as_mut() else {
            // Nothing was ever registered: only timers can be waited for.
            if let Some(t) = timeout {
                std::thread::sleep(t);
            }
            return;
        };
        let mut events_slot = self.events.borrow_mut();
        let events = events_slot.get_or_insert_with(|| Events::with_capacity(1024));
        let result = poll.poll(events, timeout);
        HARVESTS.with(|h| h.set(h.get() + 1));
        if let Err(e) = result
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error!("greenlet hub: polling for I/O failed: {e}");
        }
        let entries = self.entries.borrow();
        for event in events.iter() {
            if event.token() == WAKER_TOKEN {
                // Remote wake-ups are read from their queue after the poll (`RemoteState::drain`).
                continue;
            }
            let Some(Some(entry)) = entries.get(event.token().0) else {
                continue;
            };
            let closed = event.is_error() || event.is_read_closed() || event.is_write_closed();
            if event.is_priority() || closed {
                entry.read_sticky.set(true);
            }
            // Urgent data alone does not wake readers: `wait_readable` would report a socket
            // readable with nothing to `read`, which blocks a caller's blocking descriptor.
            if event.is_readable() || closed {
                entry.readers.wake_all();
            }
            if event.is_writable() || closed {
                entry.writers.wake_all();
            }
        }
    }

    fn insert(&self) -> usize {
        let mut entries = self.entries.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(i) => {
                entries[i] = Some(Entry::default());
                i
            }
            None => {
                entries.push(Some(Entry::default()));
                entries.len() - 1
            }
        }
    }
}

/// A descriptor registered with this thread's hub; deregistered when dropped.
///
/// Neither `Send` nor `Sync`: the token means something only to the hub of the thread that
/// made it (dropped on another thread, it would free that hub's slot instead).
pub(crate) struct IoRegistration {
    token: usize,
    fd: RawFd,
    /// Set once [`release`](IoRegistration::release) has woken the waiters and settled the
    /// epoll registration: dropping must not deregister by a descriptor number that may now
    /// belong to another file.
    #[cfg(feature = "monkey")]
    released: Cell<bool>,
    _thread_bound: PhantomData<*const ()>,
}

impl fmt::Debug for IoRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoRegistration")
            .field("fd", &self.fd)
            .field("token", &self.token)
            .finish()
    }
}

impl IoRegistration {
    /// Registers `fd` (which must stay open while registered) for both directions.
    pub(crate) fn new(fd: RawFd) -> io::Result<IoRegistration> {
        with_hub(|hub| {
            let token = hub.io.insert();
            let r = hub.io.registry().and_then(|reg| {
                reg.register(
                    &mut SourceFd(&fd),
                    Token(token),
                    // Priority too, to learn of TCP urgent data (`Entry::read_sticky`).
                    Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY,
                )
            });
            match r {
                Ok(()) => Ok(IoRegistration {
                    token,
                    fd,
                    #[cfg(feature = "monkey")]
                    released: Cell::new(false),
                    _thread_bound: PhantomData,
                }),
                Err(e) => {
                    hub.io.entries.borrow_mut()[token] = None;
                    hub.io.free.borrow_mut().push(token);
                    Err(e)
                }
            }
        })
    }

    /// Whether the descriptor has reported urgent data, the end of its stream or an error
    /// (see `Entry::read_sticky`).
    pub(crate) fn read_sticky(&self) -> bool {
        // A token this hub does not know (a hub made since, at thread exit) counts as yes.
        with_hub(|hub| {
            hub.io
                .entries
                .borrow()
                .get(self.token)
                .and_then(Option::as_ref)
                .is_none_or(|e| e.read_sticky.get())
        })
    }

    /// Parks the current greenlet until the descriptor is ready in `dir` (after an operation
    /// returned `WouldBlock`), or until `deadline`.
    ///
    /// # Errors
    /// `TimedOut` / `LoopExit` as [`BlockError`].
    pub(crate) fn wait(&self, dir: Direction, deadline: Option<Instant>) -> Result<(), BlockError> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(BlockError::TimedOut);
        }
        self.wait_unexpired(dir, deadline)
    }

    /// [`wait`](IoRegistration::wait) for a caller that has just computed `deadline` from a
    /// positive timeout, so it has not passed: no clock read (a socket with a read timeout
    /// parks on every request of a keep-alive connection). Should it pass before the park,
    /// the park's timer ends the wait on the next turn of the hub.
    ///
    /// # Errors
    /// As [`wait`](IoRegistration::wait).
    pub(crate) fn wait_unexpired(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
    ) -> Result<(), BlockError> {
        super::check_can_block();
        let w = waiter();
        with_hub(|hub| {
            let entries = hub.io.entries.borrow();
            let entry = entries[self.token].as_ref().expect("registered descriptor");
            match dir {
                Direction::Read => entry.readers.push(w.clone()),
                Direction::Write => entry.writers.push(w.clone()),
            }
            hub.io.parked.set(hub.io.parked.get() + 1);
        });
        let woken = Cell::new(false);
        // Also runs when a kill unwinds out of the park.
        let _unpark = OnDrop(|| {
            if woken.get() {
                // Woken by the reactor, which took our waiter off the list: only the count
                // is left (a stray switch leaves the waiter there, stale, for the next
                // wake-up of the list to drop).
                let _ = super::try_with_hub(|hub| hub.io.parked.set(hub.io.parked.get() - 1));
            } else {
                self.unpark_unwoken();
            }
        });
        // Formatted only if the wait ends in `LoopExit`: no allocation, and no formatting
        // arguments built, per park.
        let r = park(&w, deadline, &Readiness(dir, self.fd));
        woken.set(matches!(r, Ok(true)));
        match r {
            Ok(true) => Ok(()),
            Ok(false) => Err(BlockError::TimedOut),
            Err(e) => Err(e.into()),
        }
    }

    /// The end of a wait that the reactor did not end (a timeout, a kill, the hub stopping):
    /// uncount it and take its waiter, now stale, off the lists.
    #[cold]
    #[inline(never)]
    fn unpark_unwoken(&self) {
        let stale = super::try_with_hub(|hub| {
            hub.io.parked.set(hub.io.parked.get() - 1);
            let entries = hub.io.entries.borrow();
            match entries.get(self.token) {
                Some(Some(entry)) => {
                    let mut stale = entry.readers.take_stale();
                    stale.append(&mut entry.writers.take_stale());
                    stale
                }
                _ => Vec::new(),
            }
        });
        // Dropped without borrowing the reactor: a stale waiter may hold the last handle of a
        // greenlet whose destruction closes sockets.
        drop(stale);
    }
}

/// What a greenlet parked on a descriptor waits for, as a blocked call's error names it.
struct Readiness(Direction, RawFd);

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} readiness of fd {}", self.0.name(), self.1)
    }
}

/// Runs a closure when dropped, on return or unwinding alike.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Parks the current greenlet until any of `sources` is ready in its direction, or until
/// `deadline`: one waiter is pushed onto every wait list involved (as `joinall` does with
/// joiners), so one greenlet waits on many descriptors at once. Readiness is edge-triggered:
/// callers check the current state (with `poll(2)`) before calling this, and again after.
///
/// # Errors
/// `TimedOut` / `LoopExit` as [`BlockError`].
pub(crate) fn wait_any(
    sources: &[(&IoRegistration, Direction)],
    deadline: Option<Instant>,
) -> Result<(), BlockError> {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(BlockError::TimedOut);
    }
    super::check_can_block();
    let w = waiter();
    let for_each_list = |f: &mut dyn FnMut(&IoWaiters)| {
        // `try_`: the cleanup below may run while the thread's hub is being torn down.
        let _ = super::try_with_hub(|hub| {
            let entries = hub.io.entries.borrow();
            for (reg, dir) in sources {
                if let Some(Some(entry)) = entries.get(reg.token) {
                    f(match dir {
                        Direction::Read => &entry.readers,
                        Direction::Write => &entry.writers,
                    });
                }
            }
        });
    };
    for_each_list(&mut |list| list.push(w.clone()));
    with_hub(|hub| hub.io.parked.set(hub.io.parked.get() + 1));
    // Also runs when a kill unwinds out of the park.
    let _unpark = OnDrop(|| {
        let _ = super::try_with_hub(|hub| hub.io.parked.set(hub.io.parked.get() - 1));
        // Our waiter is stale on every list that did not fire: drop it there (outside the
        // reactor's borrow, see `IoRegistration::wait`).
        let mut stale = Vec::new();
        for_each_list(&mut |list| stale.append(&mut list.take_stale()));
        drop(stale);
    });
    let r = park(
        &w,
        deadline,
        &format_args!("readiness of {} descriptors", sources.len()),
    );
    match r {
        Ok(true) => Ok(()),
        Ok(false) => Err(BlockError::TimedOut),
        Err(e) => Err(e.into()),
    }
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Read => "read",
            Direction::Write => "write",
        }
    }
}

impl IoRegistration {
    /// Wakes every greenlet waiting on the descriptor (they retry and find out what happened)
    /// and ends the epoll registration: with `deregister`, by removing it (the descriptor is
    /// still open: it is about to be closed); without, by leaving it to the kernel, which drops
    /// it with the file (the descriptor was closed already and its number may be reused). Later
    /// waits on this registration still work, but nothing will wake them: callers check first.
    #[cfg(feature = "monkey")]
    pub(crate) fn release(&self, deregister: bool) {
        if self.released.replace(true) {
            return;
        }
        let _ = super::try_with_hub(|hub| {
            if deregister && let Ok(reg) = hub.io.registry() {
                let _ = reg.deregister(&mut SourceFd(&self.fd));
            }
            let old = hub
                .io
                .entries
                .borrow_mut()
                .get_mut(self.token)
                .and_then(|e| e.replace(Entry::default()));
            // Woken outside the borrow: dropping a waiter may drop a greenlet.
            if let Some(entry) = old {
                entry.readers.wake_all();
                entry.writers.wake_all();
            }
        });
    }

    #[cfg(feature = "monkey")]
    fn is_released(&self) -> bool {
        self.released.get()
    }

    #[cfg(not(feature = "monkey"))]
    fn is_released(&self) -> bool {
        false
    }
}

impl Drop for IoRegistration {
    fn drop(&mut self) {
        let fd = self.fd;
        let token = self.token;
        let released = self.is_released();
        // During thread exit the hub may already be gone; the descriptor is closed by its
        // owner right after, which removes it from epoll anyway.
        let _ = super::try_with_hub(|hub| {
            if !released && let Ok(reg) = hub.io.registry() {
                let _ = reg.deregister(&mut SourceFd(&fd));
            }
            let entry = hub.io.entries.borrow_mut()[token].take();
            if let Some(entry) = entry {
                // Anyone still waiting is woken to find the socket gone.
                entry.readers.wake_all();
                entry.writers.wake_all();
            }
            hub.io.free.borrow_mut().push(token);
        });
    }
}
