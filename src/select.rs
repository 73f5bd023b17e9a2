//! Waiting for many descriptors at once (gevent's `gevent.select` and Python's `selectors`),
//! parking only the calling greenlet.
//!
//! - [`select`] takes lists of things to read from and write to and returns the indices of
//!   those that are ready: one call, no state.
//! - [`Selector`] is a registry (register / modify / unregister / select) for a set that
//!   changes slowly, with data attached to each descriptor; a `select` costs the ready
//!   descriptors, not the registered ones.
//!
//! Both take anything [`Selectable`]: green sockets (waited on through their own hub
//! registration, so a socket other greenlets read from can be selected on too), std sockets,
//! and raw descriptors from other libraries.
//!
//! ```
//! use std::io::Write;
//! use std::time::Duration;
//! use greenlet::net::UnixStream;
//!
//! let (a, mut a_peer) = UnixStream::pair()?;
//! let (b, _b_peer) = UnixStream::pair()?;
//! greenlet::spawn(move || a_peer.write_all(b"!").unwrap());
//! let (readable, writable) = greenlet::select::select(&[&a, &b], &[], Some(Duration::from_secs(5)))?;
//! assert_eq!((readable, writable), (vec![0], vec![]));
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::hub::waitlist::{BlockError, deadline_after};
use crate::hub::{Direction, IoRegistration, wait_any_io};
use crate::net::Registration;
use crate::net::wait::{is_ready, poll_now, pollfd};

pub(crate) use self::sealed::Source;

pub(crate) mod sealed {
    use std::os::fd::RawFd;

    use crate::net::Io;

    /// What a [`Selectable`](super::Selectable) is waited on through: its descriptor and,
    /// for a green socket, its hub state.
    #[derive(Debug, Clone, Copy)]
    pub struct Source<'a> {
        pub(crate) fd: RawFd,
        pub(crate) io: Option<&'a Io>,
    }

    pub trait Sealed {
        fn source(&self) -> Source<'_>;
    }
}

/// Something [`select`], [`Selector`] and [`wait_readable`](crate::net::wait_readable) can
/// wait on: the green sockets of [`crate::net`], std's sockets, files and child pipes, raw
/// descriptors (`RawFd`, `BorrowedFd`, `OwnedFd`) and references to any of these.
///
/// For another library's socket, pass `sock.as_raw_fd()`.
pub trait Selectable: sealed::Sealed {}

macro_rules! green {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn source(&self) -> Source<'_> {
                Source { fd: self.inner.as_raw_fd(), io: Some(&self.io) }
            }
        }
        impl Selectable for $t {}
    )*};
}

green!(
    crate::net::TcpStream,
    crate::net::TcpListener,
    crate::net::UdpSocket,
    crate::net::UnixStream,
    crate::net::UnixListener,
    crate::net::UnixDatagram
);

macro_rules! raw {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {
            fn source(&self) -> Source<'_> {
                Source { fd: self.as_raw_fd(), io: None }
            }
        }
        impl Selectable for $t {}
    )*};
}

raw!(
    BorrowedFd<'_>,
    OwnedFd,
    std::net::TcpStream,
    std::net::TcpListener,
    std::net::UdpSocket,
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixDatagram,
    std::fs::File,
    std::io::Stdin,
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr
);

impl sealed::Sealed for RawFd {
    fn source(&self) -> Source<'_> {
        Source {
            fd: *self,
            io: None,
        }
    }
}

impl Selectable for RawFd {}

impl<T: Selectable + ?Sized> sealed::Sealed for &T {
    fn source(&self) -> Source<'_> {
        (**self).source()
    }
}

impl<T: Selectable + ?Sized> Selectable for &T {}

/// Waits until some of `read` are readable or some of `write` writable, or until `timeout`;
/// returns the indices of the ready ones in each list (both empty on timeout). Parks only
/// the calling greenlet (gevent's `select.select`).
///
/// Readiness is checked with one `poll(2)` first, so descriptors that are ready already
/// cost no registration. Otherwise the greenlet parks once on all of them: green sockets
/// through their own hub registration, other descriptors through one made for the call.
/// Errors and hang-ups count as ready (the next operation reports them). With both lists
/// empty, it sleeps for `timeout`.
///
/// # Errors
/// `EBADF` if a descriptor is not open; `InvalidInput` for empty lists without a timeout
/// (nothing could ever end the wait); registration errors; the
/// [`LoopExit`](crate::LoopExit) (kind `Other`) when the hub is stopped.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let (a, _peer) = greenlet::net::UnixStream::pair()?;
/// // Nothing to read yet, but writable.
/// let (r, w) = greenlet::select::select(&[&a], &[&a], None)?;
/// assert_eq!((r, w), (vec![], vec![0]));
/// // Raw descriptors work too; the timeout bounds the wait.
/// use std::os::fd::AsRawFd;
/// let fd = a.as_raw_fd();
/// let (r, w) = greenlet::select::select(&[&fd], &[], Some(Duration::from_millis(5)))?;
/// assert!(r.is_empty() && w.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn select(
    read: &[&dyn Selectable],
    write: &[&dyn Selectable],
    timeout: Option<Duration>,
) -> io::Result<(Vec<usize>, Vec<usize>)> {
    if read.is_empty() && write.is_empty() {
        return match timeout {
            Some(t) => {
                crate::sleep(t);
                Ok((Vec::new(), Vec::new()))
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "select with nothing to wait for and no timeout",
            )),
        };
    }
    let deadline = deadline_after(timeout);
    let sources: Vec<(Source<'_>, Direction)> = read
        .iter()
        .map(|s| (s.source(), Direction::Read))
        .chain(write.iter().map(|s| (s.source(), Direction::Write)))
        .collect();
    let mut pfds: Vec<libc::pollfd> = sources.iter().map(|&(s, d)| pollfd(s.fd, d)).collect();
    let split = |pfds: &[libc::pollfd]| {
        let ready = |range: std::ops::Range<usize>| {
            range.filter(|&i| is_ready(&pfds[i])).collect::<Vec<_>>()
        };
        let (r, w) = (ready(0..read.len()), ready(read.len()..pfds.len()));
        (r, w.into_iter().map(|i| i - read.len()).collect())
    };
    if poll_now(&mut pfds)? > 0 || timeout == Some(Duration::ZERO) {
        return Ok(split(&pfds));
    }
    // Green sockets first, so that a raw descriptor given for a socket that is not
    // registered yet does not take the socket's place (it gets a duplicate instead).
    for (s, _) in &sources {
        if let Some(io) = s.io {
            io.registration(s.fd)?;
        }
    }
    let mut temps: Vec<(RawFd, Registration)> = Vec::new();
    for (s, _) in &sources {
        if s.io.is_none() && !temps.iter().any(|(fd, _)| *fd == s.fd) {
            temps.push((s.fd, Registration::new(s.fd)?));
        }
    }
    let regs: Vec<(&IoRegistration, Direction)> = sources
        .iter()
        .map(|&(s, dir)| {
            let reg = match s.io {
                Some(io) => io.registration(s.fd)?,
                None => temps
                    .iter()
                    .find(|(fd, _)| *fd == s.fd)
                    .map(|(_, r)| r.io())
                    .expect("registered above"),
            };
            Ok((reg, dir))
        })
        .collect::<io::Result<_>>()?;
    loop {
        match wait_any_io(&regs, deadline) {
            Ok(()) => {
                if poll_now(&mut pfds)? > 0 {
                    return Ok(split(&pfds));
                }
            }
            Err(BlockError::TimedOut) => {
                poll_now(&mut pfds)?;
                return Ok(split(&pfds));
            }
            Err(e) => return Err(crate::net::blocked_error(e, None)),
        }
    }
}

/// Which readiness to wait for, or which was found (Python's `EVENT_READ | EVENT_WRITE`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Readable (Python's `selectors.EVENT_READ`).
    #[doc(alias = "EVENT_READ")]
    pub const READABLE: Interest = Interest(1);
    /// Writable (Python's `selectors.EVENT_WRITE`).
    #[doc(alias = "EVENT_WRITE")]
    pub const WRITABLE: Interest = Interest(2);

    /// Whether this includes [`READABLE`](Interest::READABLE).
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether this includes [`WRITABLE`](Interest::WRITABLE).
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    /// Both interests (`a | b` in const context).
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    const fn epoll_flags(self) -> u32 {
        let mut flags = 0;
        if self.is_readable() {
            flags |= libc::EPOLLIN as u32;
        }
        if self.is_writable() {
            flags |= libc::EPOLLOUT as u32;
        }
        flags
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            (false, true) => f.write_str("WRITABLE"),
            (false, false) => f.write_str("(none)"),
        }
    }
}

/// A registered descriptor, as [`Selector::select`] and [`Selector::get_key`] report it
/// (Python's `SelectorKey`).
#[derive(Debug, Clone, Copy)]
pub struct SelectorKey<'a, T> {
    /// The descriptor.
    pub fd: RawFd,
    /// What it is registered for.
    pub events: Interest,
    /// The data registered with it.
    pub data: &'a T,
}

/// A registry of descriptors to wait on, each with its interest and some data (Python's
/// `selectors.DefaultSelector`, green): `select` parks only the calling greenlet.
///
/// It keeps its own level-triggered epoll set, whose descriptor is watched by the hub, so it
/// costs the ready descriptors per `select` and works for any descriptor, green sockets
/// included. As with Python's selectors, unregister a descriptor before closing it.
///
/// # Examples
/// ```
/// use std::io::Write;
/// use greenlet::net::UnixStream;
/// use greenlet::select::{Interest, Selector};
///
/// let (a, mut a_peer) = UnixStream::pair()?;
/// let (b, mut b_peer) = UnixStream::pair()?;
/// let mut sel = Selector::new()?;
/// sel.register(&a, Interest::READABLE, "a")?;
/// sel.register(&b, Interest::READABLE, "b")?;
/// greenlet::spawn(move || b_peer.write_all(b"!").unwrap());
/// let ready = sel.select(None)?;
/// assert_eq!(ready.len(), 1);
/// assert_eq!(*ready[0].0.data, "b");
/// assert!(ready[0].1.is_readable());
/// sel.unregister(&a)?;
/// # drop(a_peer);
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "DefaultSelector")]
#[doc(alias = "selectors")]
pub struct Selector<T> {
    // Field order matters: the hub registration goes before the epoll descriptor is closed.
    reg: OnceCell<Registration>,
    epoll: OwnedFd,
    keys: HashMap<RawFd, (Interest, T)>,
    events: Vec<libc::epoll_event>,
    /// The hub registration belongs to this thread.
    _not_send: PhantomData<*const ()>,
}

impl<T> Selector<T> {
    /// An empty selector.
    ///
    /// # Errors
    /// As `epoll_create1(2)` (out of descriptors).
    pub fn new() -> io::Result<Selector<T>> {
        // SAFETY: plain system call with a valid flag.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by `epoll_create1`, is open, and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Selector {
            reg: OnceCell::new(),
            epoll,
            keys: HashMap::new(),
            events: Vec::new(),
            _not_send: PhantomData,
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: Interest) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: events.epoll_flags(),
            u64: fd as u64,
        };
        // SAFETY: `self.epoll` is an open epoll descriptor and `ev` a valid event that lives
        // for the call.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Registers `fd` for `events`, with `data` (Python's `register`).
    ///
    /// # Errors
    /// `AlreadyExists` if it is registered already; `InvalidInput` for an empty interest;
    /// `EPERM` for a descriptor epoll cannot watch (a regular file); `EBADF`.
    pub fn register<S: Selectable>(&mut self, fd: S, events: Interest, data: T) -> io::Result<()> {
        let fd = fd.source().fd;
        if events.0 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no events to register for",
            ));
        }
        if self.keys.contains_key(&fd) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("descriptor {fd} is already registered"),
            ));
        }
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)?;
        self.keys.insert(fd, (events, data));
        Ok(())
    }

    /// Changes what `fd` is registered for, and its data (Python's `modify`).
    ///
    /// # Errors
    /// `NotFound` if it is not registered; `InvalidInput` for an empty interest.
    pub fn modify<S: Selectable>(&mut self, fd: S, events: Interest, data: T) -> io::Result<()> {
        let fd = fd.source().fd;
        if events.0 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no events to register for",
            ));
        }
        let Some(&(old, _)) = self.keys.get(&fd) else {
            return Err(not_registered(fd));
        };
        if old != events {
            self.ctl(libc::EPOLL_CTL_MOD, fd, events)?;
        }
        self.keys.insert(fd, (events, data));
        Ok(())
    }

    /// Removes `fd`, returning its data (Python's `unregister`).
    ///
    /// # Errors
    /// `NotFound` if it is not registered.
    pub fn unregister<S: Selectable>(&mut self, fd: S) -> io::Result<T> {
        let fd = fd.source().fd;
        let (_, data) = self.keys.remove(&fd).ok_or_else(|| not_registered(fd))?;
        // A descriptor closed before unregistering has left the epoll set already.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, Interest(0));
        Ok(data)
    }

    /// The registration of `fd`, if any.
    pub fn get_key<S: Selectable>(&self, fd: S) -> Option<SelectorKey<'_, T>> {
        let fd = fd.source().fd;
        self.keys.get(&fd).map(|(events, data)| SelectorKey {
            fd,
            events: *events,
            data,
        })
    }

    /// How many descriptors are registered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Waits until some registered descriptors are ready, or `timeout` passes (`None`:
    /// forever; zero: just check); returns them with what they are ready for, at most 1024
    /// per call. Readiness is level-triggered: a descriptor that stays ready is reported
    /// again by the next call.
    ///
    /// # Errors
    /// As `epoll_wait(2)`; the [`LoopExit`](crate::LoopExit) (kind `Other`) when the hub is
    /// stopped.
    pub fn select(
        &mut self,
        timeout: Option<Duration>,
    ) -> io::Result<Vec<(SelectorKey<'_, T>, Interest)>> {
        let deadline = deadline_after(timeout);
        let want = self.keys.len().clamp(1, 1024);
        if self.events.len() != want {
            self.events
                .resize(want, libc::epoll_event { events: 0, u64: 0 });
        }
        let mut n = self.poll_events()?;
        while n == 0 && timeout != Some(Duration::ZERO) {
            let reg = match self.reg.get() {
                Some(r) => r,
                None => {
                    let r = Registration::new(self.epoll.as_raw_fd())?;
                    self.reg.get_or_init(|| r)
                }
            };
            match reg.io().wait(Direction::Read, deadline) {
                Ok(()) => n = self.poll_events()?,
                Err(BlockError::TimedOut) => {
                    n = self.poll_events()?;
                    break;
                }
                Err(e) => return Err(crate::net::blocked_error(e, None)),
            }
        }
        let mut ready = Vec::with_capacity(n);
        for ev in &self.events[..n] {
            let (bits, fd) = (ev.events, ev.u64 as RawFd);
            let Some((events, data)) = self.keys.get(&fd) else {
                continue;
            };
            let mut got = 0;
            if bits & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                got |= Interest::READABLE.0;
            }
            if bits & (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                got |= Interest::WRITABLE.0;
            }
            let got = Interest(got & events.0);
            if got.0 != 0 {
                ready.push((
                    SelectorKey {
                        fd,
                        events: *events,
                        data,
                    },
                    got,
                ));
            }
        }
        Ok(ready)
    }

    /// `epoll_wait` without waiting; fills `self.events`.
    fn poll_events(&mut self) -> io::Result<usize> {
        loop {
            // SAFETY: `self.events` is a valid, exclusively borrowed buffer of `len` events.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    self.events.len() as libc::c_int,
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("descriptor {fd} is not registered"),
    )
}

impl<T> fmt::Debug for Selector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fds: Vec<_> = self
            .keys
            .iter()
            .map(|(fd, (events, _))| (*fd, *events))
            .collect();
        fds.sort_unstable_by_key(|&(fd, _)| fd);
        f.debug_struct("Selector")
            .field("epoll", &self.epoll)
            .field("registered", &fds)
            .finish()
    }
}

impl<T> AsRawFd for Selector<T> {
    /// The selector's epoll descriptor: readable when a registered descriptor is ready.
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }
}

impl<T> AsFd for Selector<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}
