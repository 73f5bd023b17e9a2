//! Cooperative sockets that look exactly like std's blocking ones (gevent's `gevent.socket`).
//!
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`] have std's names, signatures and semantics, but a call that would block
//! parks only the calling greenlet: the hub runs the others until the kernel reports the
//! socket ready. Code written against std moves over by changing an import:
//!
//! ```
//! use std::io::{Read, Write};
//! use greenlet::net::{TcpListener, TcpStream}; // was: use std::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//!
//! // One greenlet per connection, written as straight-line blocking code.
//! let server = greenlet::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf)
//! });
//!
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! let mut echo = [0; 5];
//! client.read_exact(&mut echo)?; // the server greenlet runs while main waits here
//! assert_eq!(&echo, b"hello");
//! server.get().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What is the same as std
//!
//! - Every blocking call blocks (the calling greenlet), honours `set_read_timeout` /
//!   `set_write_timeout` and fails with the error std gives when they expire: `WouldBlock`
//!   (`EAGAIN`, as std on Linux) for reads and writes, `TimedOut` for
//!   [`TcpStream::connect_timeout`].
//! - `set_nonblocking(true)` makes calls return `WouldBlock` instead of parking, as in std.
//! - `Read` and `Write` are implemented for the socket and for `&socket`, vectored I/O included;
//!   `try_clone` gives a second handle that shares options (timeouts, non-blocking mode) as a
//!   std clone does.
//! - Conversions: `From<std::net::TcpStream>` adopts a std socket (keeping its timeouts),
//!   `From<greenlet::net::TcpStream> for std::net::TcpStream` gives it back in blocking mode,
//!   and the raw-descriptor traits (`AsRawFd`, `AsFd`, `FromRawFd`, `IntoRawFd`, `OwnedFd`)
//!   are all there; likewise for the other five types.
//! - std's plain types (`SocketAddr`, `IpAddr`, `Shutdown`, …) are re-exported here, so a whole
//!   `use std::net::{…}` line switches over (`use std::os::unix::net::{…}` becomes
//!   `use greenlet::net::unix::{…}`).
//! - Addresses are anything that implements this module's [`ToSocketAddrs`], which has std's
//!   impls (`SocketAddr`, `(ip, port)`, `"host:port"`, `("host", port)`, slices, …). Host
//!   names resolve on lookup threads of their own
//!   ([`max_lookup_threads`](crate::threadpool::max_lookup_threads)), so a slow DNS server
//!   blocks neither the hub nor [`spawn_blocking`](crate::threadpool::spawn_blocking)'s work;
//!   IP literals are parsed without a thread hop. [`set_resolver`] replaces the resolver.
//!
//! # What differs
//!
//! - A green socket belongs to the thread that uses it (its hub watches it): it is neither
//!   `Send` nor `Sync`. To hand a connection to another thread, convert it into the std type
//!   and adopt it there with `From`.
//! - A [`Timeout`](crate::Timeout) active on the calling greenlet also bounds every blocking
//!   call; when it (rather than the socket's own timeout) expires, the call fails with
//!   `TimedOut`.
//! - When the main greenlet waits for a socket, the hub runs the other greenlets meanwhile. A
//!   socket that nobody will ever make ready is a legitimate wait (the hub cannot know that the
//!   peer will stay silent): set a timeout if that can happen.
//! - When the hub is stopped ([`HubHandle::stop`](crate::HubHandle::stop)), a blocked call of
//!   the main greenlet fails with an error of kind `Other` that wraps the
//!   [`LoopExit`](crate::LoopExit).
//!
//! Several greenlets may block on the same socket in the same direction (two readers, two
//! acceptors): each readiness event wakes all of them and each retries, so every one is
//! served in turn and no wake-up is lost.
//!
//! # Waiting for descriptors that are not green sockets
//!
//! [`wait_readable`] and [`wait_writable`] park until any descriptor (another library's
//! socket, a pipe) is ready; [`select`](crate::select) waits for many at once.
//!
//! # Design
//!
//! Each type wraps the std type, put into non-blocking mode once, plus a registration with the
//! hub's mio poller that is made lazily, the first time an operation would block. So a read
//! that succeeds right away is exactly one system call with no bookkeeping, `From<std::…>`
//! cannot fail, and every option and conversion is std's own. mio's types would have given the
//! same system calls but no timeouts, `peek` on every type, or conversions back to std; wrapping
//! std keeps this module a thin layer. The registration is edge-triggered for both directions:
//! an operation that returns `WouldBlock` parks its greenlet on the descriptor's wait list for
//! that direction and retries when woken (see `IoRegistration` in the hub). A TCP read that
//! returned less than it asked for has emptied the receive buffer, so the next read on that
//! stream parks at once instead of asking the kernel for the `EAGAIN` it would get, unless the
//! hub has polled since or the socket has reported urgent data, its end or an error (see
//! `Io::read_stream`): a keep-alive server makes one system call per request to read, not two.

mod lookup;
mod tcp;
mod udp;
pub mod unix;
pub(crate) mod wait;

#[cfg(test)]
mod tests;

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::hub::waitlist::{BlockError, deadline_after};
use crate::hub::{self, Direction, IoRegistration};

pub use self::lookup::{reset_resolver, set_resolver, system_resolver};
pub use self::tcp::{Incoming, TcpListener, TcpStream};
pub use self::udp::UdpSocket;
pub use self::unix::{UnixDatagram, UnixListener, UnixStream};
pub use self::wait::{wait_readable, wait_writable};
// std's address and option types, so that a whole `use std::net::{…}` line can switch over.
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
};

/// Options that std keeps on the open file description, which `try_clone` handles share.
#[derive(Debug, Default)]
struct Options {
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    /// `set_nonblocking(true)` was called: report `WouldBlock` instead of parking.
    nonblocking: Cell<bool>,
}

/// The hub side of a green socket: its lazy registration and its std-visible options.
pub(crate) struct Io {
    reg: OnceCell<Registration>,
    options: Rc<Options>,
    /// 1 + the reactor's harvest count when a read of this stream last returned less than it
    /// asked for, which empties the receive buffer; 0 when the last read did not (see
    /// [`read_stream`](Io::read_stream)).
    emptied: Cell<u64>,
}

/// A hub registration, of the descriptor itself or, when that is taken, of a duplicate it
/// owns (see [`Registration::new`]).
pub(crate) struct Registration {
    // Field order matters: deregister before closing the duplicate.
    reg: IoRegistration,
    _dup: Option<OwnedFd>,
}

impl Registration {
    /// Registers `fd` with this thread's hub. If the descriptor is registered already (another
    /// greenlet is waiting on it through its raw descriptor), a duplicate is registered
    /// instead: epoll watches the open file, so the duplicate reports the same readiness.
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        match IoRegistration::new(fd) {
            Ok(reg) => Ok(Registration { reg, _dup: None }),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // SAFETY: EEXIST means epoll has `fd` registered, so it is open; callers pass
                // the descriptor of something they borrow for this call, and it is only
                // borrowed here to duplicate it.
                let dup = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
                let reg = IoRegistration::new(std::os::fd::AsRawFd::as_raw_fd(&dup))?;
                Ok(Registration {
                    reg,
                    _dup: Some(dup),
                })
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn io(&self) -> &IoRegistration {
        &self.reg
    }

    /// Wakes the greenlets waiting on the descriptor and ends the registration, for a
    /// descriptor that is being closed (`still_open`) or was closed behind this registration's
    /// back (its number may already name another file). A registration of a duplicate owns
    /// that duplicate, which is still open either way.
    #[cfg(feature = "monkey")]
    pub(crate) fn release(&self, still_open: bool) {
        self.reg.release(still_open || self._dup.is_some());
    }
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("registered", &self.reg.get().is_some())
            .field("read_timeout", &self.options.read_timeout.get())
            .field("write_timeout", &self.options.write_timeout.get())
            .field("nonblocking", &self.options.nonblocking.get())
            .finish()
    }
}

impl Io {
    /// State for a socket with no timeouts.
    pub(crate) fn new() -> Io {
        Io {
            reg: OnceCell::new(),
            options: Rc::default(),
            emptied: Cell::new(0),
        }
    }

    /// State for an adopted socket that already had these timeouts.
    pub(crate) fn with_timeouts(read: Option<Duration>, write: Option<Duration>) -> Io {
        let io = Io::new();
        io.options.read_timeout.set(read);
        io.options.write_timeout.set(write);
        io
    }

    /// State for a `try_clone` of this socket: its own registration, shared options.
    pub(crate) fn for_clone(&self) -> Io {
        Io {
            reg: OnceCell::new(),
            options: self.options.clone(),
            emptied: Cell::new(0),
        }
    }

    /// Whether no clone shares the options (converting back to std may then restore
    /// blocking mode on the shared file description without breaking a green clone).
    pub(crate) fn is_last_handle(&self) -> bool {
        Rc::strong_count(&self.options) == 1
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.options.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.options.write_timeout.get()
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) {
        self.options.read_timeout.set(t);
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) {
        self.options.write_timeout.set(t);
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.options.nonblocking.set(nonblocking);
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        self.options.nonblocking.get()
    }

    /// The hub registration of `fd`, made on first use.
    pub(crate) fn registration(&self, fd: RawFd) -> io::Result<&IoRegistration> {
        if let Some(r) = self.reg.get() {
            return Ok(r.io());
        }
        let r = Registration::new(fd)?;
        Ok(self.reg.get_or_init(|| r).io())
    }

    /// Runs a read-side operation, parking until readable while it would block.
    #[inline]
    pub(crate) fn read<T>(&self, fd: RawFd, op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        self.run(fd, Direction::Read, op)
    }

    /// Runs a read of a TCP stream into buffers of `len` bytes in all, parking until readable
    /// while it would block.
    ///
    /// A TCP read that returns less than it asked for has emptied the receive buffer: the
    /// kernel copies all it holds, up to `len`, and stops short only at urgent data's mark.
    /// From then on, whatever arrives queues an edge on the descriptor's registration
    /// (edge-triggered and permanent; one made later reports what is there already). So
    /// while the reactor has not harvested since, nothing can have come in unseen, and the
    /// next read parks without first making a system call that would only say `EAGAIN`: a
    /// keep-alive server's read after each answer. (tokio does the same after a short read.)
    ///
    /// The read asks the kernel first once the reactor has harvested (an edge may have been
    /// taken while nobody waited), and on every read of a socket whose registration has
    /// reported urgent data, the end of the stream or an error: a short read can stop at the
    /// urgent mark, or take the data before the end of the stream with the end itself, and the
    /// next read must then see what is left, the end or the error, with no edge to come.
    ///
    /// Not for `peek`, which leaves the data where it is, nor for datagrams (one per read) or
    /// Unix streams (a read stops short at passed descriptors and, with `SO_PASSCRED`, between
    /// writers). A TCP socket turned into something else through its raw descriptor (kernel
    /// TLS, which reads one record at a time) is outside what this assumes.
    #[inline]
    pub(crate) fn read_stream(
        &self,
        fd: RawFd,
        len: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        let r = if self.known_empty() {
            self.run_slow(fd, Direction::Read, None, &mut op)
        } else {
            self.run(fd, Direction::Read, &mut op)
        };
        // Linux caps one read at `MAX_RW_COUNT`: a read of more may stop there, short of `len`.
        const MAX_RW_COUNT: usize = (i32::MAX as usize) & !4095;
        let emptied = matches!(r, Ok(n) if n > 0 && n < len.min(MAX_RW_COUNT));
        // Recorded in the same run as the read: no harvest can come between.
        self.emptied
            .set(if emptied { hub::io_harvests() + 1 } else { 0 });
        r
    }

    /// Whether the last read emptied the receive buffer and nothing can have come in unseen
    /// since (see [`read_stream`](Io::read_stream)); never in non-blocking mode, which must
    /// not park.
    #[inline]
    fn known_empty(&self) -> bool {
        self.emptied.get() == hub::io_harvests() + 1
            && !self.options.nonblocking.get()
            && self.reg.get().is_none_or(|r| !r.io().read_sticky())
    }

    /// Runs a write-side operation, parking until writable while it would block.
    #[inline]
    pub(crate) fn write<T>(&self, fd: RawFd, op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
        self.run(fd, Direction::Write, op)
    }

    /// The blocking-op loop: try, and only when the kernel says `WouldBlock`, park until the
    /// descriptor is ready and try again. The fast path is the bare system call.
    #[inline]
    fn run<T>(
        &self,
        fd: RawFd,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match op() {
                Err(e) => match Failure::of(&e) {
                    Failure::Interrupted => continue,
                    Failure::WouldBlock => return self.run_slow(fd, dir, Some(e), &mut op),
                    Failure::Other => return Err(e),
                },
                ok => return ok,
            }
        }
    }

    /// Parks until ready and retries. `would_block` is the `WouldBlock` error of the attempt
    /// that brought the call here, returned as it is in non-blocking mode; `None` when no
    /// attempt was made (the caller checked that the socket is in blocking mode). Not
    /// `#[cold]`: a keep-alive server comes here on every request (the read after the
    /// answer), so it is kept out of line for the fast path's sake but optimised as the hot
    /// path it is.
    #[inline(never)]
    fn run_slow<T>(
        &self,
        fd: RawFd,
        dir: Direction,
        would_block: Option<io::Error>,
        op: &mut dyn FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        let options = &*self.options;
        if let Some(e) = would_block
            && options.nonblocking.get()
        {
            return Err(e);
        }
        let timeout = match dir {
            Direction::Read => options.read_timeout.get(),
            Direction::Write => options.write_timeout.get(),
        };
        let deadline = deadline_after(timeout);
        let reg = self.registration(fd)?;
        // The deadline was just set from a positive timeout: the first wait need not read the
        // clock to see whether it passed; a wait after a spurious wake-up must.
        let mut waited = reg.wait_unexpired(dir, deadline);
        loop {
            waited.map_err(|e| blocked_error(e, deadline))?;
            loop {
                match op() {
                    Err(e) => match Failure::of(&e) {
                        Failure::Interrupted => continue,
                        Failure::WouldBlock => break,
                        Failure::Other => return Err(e),
                    },
                    ok => return ok,
                }
            }
            waited = reg.wait(dir, deadline);
        }
    }
}

/// What the blocking-op loop does with a failed system call.
enum Failure {
    /// `EINTR`: try again at once.
    Interrupted,
    /// `EAGAIN`: park until ready.
    WouldBlock,
    /// Anything else: the caller's error.
    Other,
}

impl Failure {
    /// One look at the error number (`Error::kind` decodes it through a table, and the loop
    /// asked twice); errors that carry no number go by their kind.
    #[inline]
    fn of(e: &io::Error) -> Failure {
        match e.raw_os_error() {
            Some(libc::EINTR) => Failure::Interrupted,
            // EWOULDBLOCK is EAGAIN on Linux.
            Some(libc::EAGAIN) => Failure::WouldBlock,
            Some(_) => Failure::Other,
            None => match e.kind() {
                io::ErrorKind::Interrupted => Failure::Interrupted,
                io::ErrorKind::WouldBlock => Failure::WouldBlock,
                _ => Failure::Other,
            },
        }
    }
}

/// The error a blocking socket call returns when its wait ended early: std's `EAGAIN` when
/// the socket's own timeout (`deadline`) expired, `TimedOut` when a greenlet [`Timeout`]
/// did, and the [`LoopExit`](crate::LoopExit) (kind `Other`) when the hub was stopped.
///
/// [`Timeout`]: crate::Timeout
pub(crate) fn blocked_error(e: BlockError, deadline: Option<Instant>) -> io::Error {
    match e {
        BlockError::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => {
            io::Error::from_raw_os_error(libc::EAGAIN)
        }
        BlockError::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "the greenlet's Timeout expired")
        }
        BlockError::LoopExit(e) => io::Error::other(e),
        BlockError::Killed => io::Error::other(crate::Killed),
    }
}

/// Runs `f` on each address of `addr` until one succeeds (std's `each_addr`).
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_err = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// Values that resolve to socket addresses: std's `ToSocketAddrs`, with host names looked up
/// on the thread pool so that the hub keeps running.
///
/// It has std's implementations: socket addresses, `(IpAddr | Ipv4Addr | Ipv6Addr, u16)`,
/// `"host:port"` and `("host", port)` as `&str` or `String`, slices of addresses and
/// references. A string holding an IP literal is parsed in place; a host name is resolved on
/// a lookup thread (with [`system_resolver`] unless [`set_resolver`] says otherwise), parking
/// only the calling greenlet.
///
/// # Examples
/// ```
/// use greenlet::net::ToSocketAddrs;
/// let addrs: Vec<_> = "127.0.0.1:80".to_socket_addrs()?.collect();
/// assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
/// // Names resolve on the lookup threads.
/// assert!(("localhost", 80).to_socket_addrs()?.any(|a| a.ip().is_loopback()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[doc(alias = "getaddrinfo")]
pub trait ToSocketAddrs {
    /// The addresses.
    type Iter: Iterator<Item = SocketAddr>;

    /// Resolves `self` (parking the calling greenlet while a name is looked up).
    ///
    /// # Errors
    /// As std's: unparseable input, a failed lookup (`InvalidInput` / the resolver's error).
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

macro_rules! direct_addrs {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {
            type Iter = std::option::IntoIter<SocketAddr>;
            fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
                std::net::ToSocketAddrs::to_socket_addrs(self)
            }
        }
    )*};
}

direct_addrs!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = std::iter::Cloned<std::slice::Iter<'a, SocketAddr>>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    fn to_socket_addrs(&self) -> io::Result<T::Iter> {
        (**self).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        lookup::resolve_host_port(self)
    }
}

impl ToSocketAddrs for String {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        let (host, port) = *self;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)].into_iter());
        }
        lookup::resolve(host.to_owned(), port)
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = std::vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

/// Inside a green socket type's `impl`: std's `set_write_timeout`, `read_timeout` and
/// `write_timeout`, over the type's shared `io` state (std's socket keeps a copy, so that a
/// conversion back to std finds it). `$op` names what a write is on this type, for the docs.
macro_rules! timeout_accessors {
    ($op:literal) => {
        #[doc = concat!("Bounds each ", $op, ": when it cannot go ahead within `dur`, it fails with")]
        /// `WouldBlock`. `None` waits forever.
        ///
        /// # Errors
        /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
        pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
            self.inner.set_write_timeout(dur)?;
            self.io.set_write_timeout(dur);
            Ok(())
        }

        /// The read timeout.
        ///
        /// # Errors
        /// Never; the `Result` is std's signature.
        pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.io.read_timeout())
        }

        /// The write timeout.
        ///
        /// # Errors
        /// Never; the `Result` is std's signature.
        pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
            Ok(self.io.write_timeout())
        }
    };
}

/// Implements `Debug` (std's, of the socket inside), the descriptor traits and the std
/// conversions for a green socket type `$green { io, inner: $std }`.
macro_rules! fd_traits {
    ($green:ident, $std:ty) => {
        impl std::fmt::Debug for $green {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.inner, f)
            }
        }

        impl std::os::fd::AsRawFd for $green {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.inner)
            }
        }

        impl std::os::fd::AsFd for $green {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.inner)
            }
        }

        impl std::os::fd::IntoRawFd for $green {
            /// Gives up the descriptor, which stays in non-blocking mode.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                let $green { io, inner } = self;
                drop(io);
                std::os::fd::IntoRawFd::into_raw_fd(inner)
            }
        }

        impl std::os::fd::FromRawFd for $green {
            /// Adopts an open socket descriptor, as `From<std type>` does.
            ///
            /// # Safety
            /// As std's: `fd` must be an open socket of the right kind, owned by the caller,
            /// which hands its ownership over.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $green {
                // SAFETY: the caller's contract is std's `from_raw_fd` contract.
                <$green>::from(unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        impl From<std::os::fd::OwnedFd> for $green {
            /// Adopts an owned socket descriptor, as `From<std type>` does.
            fn from(fd: std::os::fd::OwnedFd) -> $green {
                <$green>::from(<$std>::from(fd))
            }
        }

        impl From<$green> for std::os::fd::OwnedFd {
            /// Gives up the descriptor, which stays in non-blocking mode.
            fn from(s: $green) -> std::os::fd::OwnedFd {
                let $green { io, inner } = s;
                drop(io);
                std::os::fd::OwnedFd::from(inner)
            }
        }

        impl From<$green> for $std {
            /// Gives the std socket back, in blocking mode again unless `set_nonblocking(true)`
            /// was called or a `try_clone` of it is still in use (the mode is shared with
            /// clones, and a green clone must stay non-blocking).
            fn from(s: $green) -> $std {
                let $green { io, inner } = s;
                if io.is_last_handle() && !io.is_nonblocking() {
                    let _ = inner.set_nonblocking(false);
                }
                drop(io);
                inner
            }
        }
    };
}

pub(crate) use fd_traits;
pub(crate) use timeout_accessors;
