//! Green TCP: [`TcpListener`], [`TcpStream`] and [`Incoming`], shaped like std's.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{self, Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

use super::{Io, ToSocketAddrs, blocked_error, each_addr, fd_traits, timeout_accessors};
use crate::hub::Direction;
use crate::hub::waitlist::BlockError;

/// A TCP connection whose blocking calls park only the calling greenlet (std's
/// [`TcpStream`](std::net::TcpStream), green).
///
/// Same methods, traits and errors as std's; see the [module docs](crate::net) for the few
/// differences (it stays on its thread; a greenlet [`Timeout`](crate::Timeout) also bounds its
/// calls).
///
/// # Examples
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use greenlet::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// greenlet::spawn(move || {
///     for conn in listener.incoming().take(1) {
///         let mut conn = conn.unwrap();
///         conn.write_all(b"hello\n").unwrap();
///     }
/// });
/// let mut line = String::new();
/// BufReader::new(TcpStream::connect(addr)?).read_line(&mut line)?;
/// assert_eq!(line, "hello\n");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// A green socket is tied to its thread:
/// ```compile_fail
/// let s = greenlet::net::TcpStream::connect("127.0.0.1:1").unwrap();
/// std::thread::spawn(move || drop(s)); // error: `Rc<..>` cannot be sent between threads
/// ```
pub struct TcpStream {
    // Field order matters: the registration goes before the descriptor is closed.
    pub(crate) io: Io,
    pub(crate) inner: net::TcpStream,
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each address it resolves to in turn; parks the
    /// calling greenlet while the name is looked up and while the connection is set up.
    ///
    /// # Errors
    /// As std's: the last address's error (`ConnectionRefused`, …), or `InvalidInput` when
    /// nothing resolved. `TimedOut` when a greenlet [`Timeout`](crate::Timeout) expires first.
    ///
    /// # Examples
    /// ```
    /// let listener = greenlet::net::TcpListener::bind("127.0.0.1:0")?;
    /// let stream = greenlet::net::TcpStream::connect(listener.local_addr()?)?;
    /// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| connect(a, None))
    }

    /// Opens a connection to `addr`, giving up with `TimedOut` after `timeout`.
    ///
    /// # Errors
    /// `InvalidInput` for a zero timeout (as std), `TimedOut` when it expires, else as
    /// [`connect`](TcpStream::connect).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let listener = greenlet::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = listener.local_addr()?;
    /// let stream = greenlet::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        connect(
            addr,
            Some(
                Instant::now()
                    .checked_add(timeout)
                    .unwrap_or_else(far_future),
            ),
        )
    }

    /// The remote address.
    ///
    /// # Errors
    /// `NotConnected` if the connection is gone.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down the read half, the write half (the peer reads end-of-file), or both.
    ///
    /// # Errors
    /// As `shutdown(2)` (`NotConnected`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// A second handle on the same connection (a duplicated descriptor). Options set on one
    /// (timeouts, non-blocking mode) apply to both, as in std.
    ///
    /// # Errors
    /// As `dup(2)` (out of descriptors).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: self.io.for_clone(),
            inner: self.inner.try_clone()?,
        })
    }

    /// Bounds each read: when no data comes within `dur`, it fails with `WouldBlock` (std's
    /// `EAGAIN` on Linux). `None` waits forever.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// # Examples
    /// ```
    /// use std::io::{ErrorKind, Read};
    /// use std::time::Duration;
    /// let listener = greenlet::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut stream = greenlet::net::TcpStream::connect(listener.local_addr()?)?;
    /// stream.set_read_timeout(Some(Duration::from_millis(10)))?;
    /// let err = stream.read(&mut [0; 8]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::WouldBlock);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        // std validates and stores it on the socket, where a conversion back to std finds it.
        self.inner.set_read_timeout(dur)?;
        self.io.set_read_timeout(dur);
        Ok(())
    }

    timeout_accessors!("write");

    /// Reads without removing the data from the queue; parks until some is there.
    ///
    /// # Errors
    /// As [`read`](Read::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.peek(buf))
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// With `true`, calls that would block fail with `WouldBlock` instead of parking, as with
    /// a std socket in non-blocking mode. Shared with `try_clone` handles.
    ///
    /// # Errors
    /// Never; the `Result` is std's signature.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// A far deadline for timeouts too large for `Instant`.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Connects a new non-blocking socket to `addr`, parking until the handshake ends.
fn connect(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(*addr), Type::STREAM.nonblocking(), None)?;
    let stream = TcpStream {
        io: Io::new(),
        inner: socket.into(),
    };
    match SockRef::from(&stream.inner).connect(&(*addr).into()) {
        Ok(()) => return Ok(stream),
        // In progress (EINTR too: the connection goes on asynchronously).
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    let reg = stream.io.registration(stream.inner.as_raw_fd())?;
    loop {
        reg.wait(Direction::Write, deadline).map_err(|e| match e {
            BlockError::TimedOut if deadline.is_some_and(|d| Instant::now() >= d) => {
                io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
            }
            e => blocked_error(e, None),
        })?;
        if let Some(e) = stream.inner.take_error()? {
            return Err(e);
        }
        match stream.inner.peer_addr() {
            Ok(_) => return Ok(stream),
            // Woken before the handshake ended: keep waiting.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => return Err(e),
        }
    }
}

impl Read for TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[inline]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Read for &TcpStream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &self.inner;
        let len = buf.len();
        self.io
            .read_stream(inner.as_raw_fd(), len, || (&*inner).read(buf))
    }

    #[inline]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let inner = &self.inner;
        // std passes at most `IOV_MAX` (1,024 on Linux) buffers.
        let len = bufs.iter().take(1024).map(|b| b.len()).sum();
        self.io
            .read_stream(inner.as_raw_fd(), len, || (&*inner).read_vectored(bufs))
    }
}

impl Write for TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &self.inner;
        self.io.write(inner.as_raw_fd(), || (&*inner).write(buf))
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let inner = &self.inner;
        self.io
            .write(inner.as_raw_fd(), || (&*inner).write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<net::TcpStream> for TcpStream {
    /// Adopts a std stream: puts it in non-blocking mode (which cannot fail on an open
    /// socket; on a closed one the first call reports the error) and keeps its timeouts.
    fn from(inner: net::TcpStream) -> TcpStream {
        let io = Io::with_timeouts(
            inner.read_timeout().ok().flatten(),
            inner.write_timeout().ok().flatten(),
        );
        let _ = inner.set_nonblocking(true);
        TcpStream { io, inner }
    }
}

fd_traits!(TcpStream, net::TcpStream);

/// A TCP listening socket whose `accept` parks only the calling greenlet (std's
/// [`TcpListener`](std::net::TcpListener), green).
///
/// Several greenlets may accept on one listener: each connection goes to one of them.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use greenlet::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = greenlet::spawn(move || {
///     let (mut conn, peer) = listener.accept().unwrap();
///     conn.write_all(peer.to_string().as_bytes()).unwrap();
/// });
/// let mut client = TcpStream::connect(addr)?;
/// let mut seen = String::new();
/// client.read_to_string(&mut seen)?;
/// assert_eq!(seen, client.local_addr()?.to_string());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    pub(crate) io: Io,
    pub(crate) inner: net::TcpListener,
}

impl TcpListener {
    /// Binds to `addr` (the first of its addresses that works), as std does: `SO_REUSEADDR`,
    /// a backlog of 128. Port 0 picks a free port.
    ///
    /// For a larger backlog, set the socket up with `socket2` and adopt it with `From`.
    ///
    /// # Errors
    /// As std's (`AddrInUse`, `InvalidInput` when nothing resolved).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let inner = each_addr(&addr, |a| net::TcpListener::bind(a))?;
        inner.set_nonblocking(true)?;
        Ok(TcpListener {
            io: Io::new(),
            inner,
        })
    }

    /// The local address (with the port picked for port 0).
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A second handle on the same listening socket.
    ///
    /// # Errors
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: self.io.for_clone(),
            inner: self.inner.try_clone()?,
        })
    }

    /// Accepts a connection, parking until one comes. The new stream is non-blocking from
    /// the start (one `accept4(2)`, no extra system call).
    ///
    /// # Errors
    /// As `accept4(2)` (`EMFILE` when out of descriptors, …); `TimedOut` when a greenlet
    /// [`Timeout`](crate::Timeout) expires first.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let inner = &self.inner;
        let (socket, addr) = self.io.read(inner.as_raw_fd(), || {
            SockRef::from(inner).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })?;
        let stream = TcpStream {
            io: Io::new(),
            inner: socket.into(),
        };
        let addr = addr.as_socket().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "accepted a non-IP address")
        })?;
        Ok((stream, addr))
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Sets `IP_TTL` for accepted connections.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// The `IP_TTL` value.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// With `true`, `accept` fails with `WouldBlock` instead of parking when nobody is
    /// connecting, as a std listener in non-blocking mode.
    ///
    /// # Errors
    /// Never; the `Result` is std's signature.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }
}

impl From<net::TcpListener> for TcpListener {
    /// Adopts a std listener (putting it in non-blocking mode).
    fn from(inner: net::TcpListener) -> TcpListener {
        let _ = inner.set_nonblocking(true);
        TcpListener {
            io: Io::new(),
            inner,
        }
    }
}

fd_traits!(TcpListener, net::TcpListener);

/// The iterator of [`TcpListener::incoming`]: accepts forever, one `io::Result` per call.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}
