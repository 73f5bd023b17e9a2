//! Green Unix-domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`] and
//! [`Incoming`], shaped like std's `std::os::unix::net`.
//!
//! The three socket types are also re-exported from [`greenlet::net`](crate::net); this module
//! exists so that `use std::os::unix::net::{UnixStream, Incoming}` becomes
//! `use greenlet::net::unix::{UnixStream, Incoming}`.

use std::ffi::OsStr;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net;
use std::path::Path;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use super::{Io, fd_traits, timeout_accessors};

// std's Unix socket address type, so that a whole `use std::os::unix::net::{…}` line can
// switch over.
pub use std::os::unix::net::SocketAddr;

/// A Unix-domain stream whose blocking calls park only the calling greenlet (std's
/// [`UnixStream`](std::os::unix::net::UnixStream), green).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use greenlet::net::UnixStream;
///
/// let (a, mut b) = UnixStream::pair()?;
/// let writer = greenlet::spawn(move || {
///     let mut a = a;
///     a.write_all(b"over the pair").unwrap();
/// });
/// let mut s = String::new();
/// b.read_to_string(&mut s)?; // EOF once the writer greenlet drops its end
/// assert_eq!(s, "over the pair");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    pub(crate) io: Io,
    pub(crate) inner: net::UnixStream,
}

impl UnixStream {
    /// Connects to the socket bound at `path`. When the listener's backlog is full, parks
    /// and retries (std blocks) until it has room.
    ///
    /// # Errors
    /// As std's (`NotFound`, `ConnectionRefused`); `TimedOut` when a greenlet
    /// [`Timeout`](crate::Timeout) expires first.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        connect(&SockAddr::unix(path)?)
    }

    /// Connects to the socket at `addr` (a path or, on Linux, an abstract name).
    ///
    /// # Errors
    /// As [`connect`](UnixStream::connect); `InvalidInput` for an unnamed address.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        connect(&to_sockaddr(addr)?)
    }

    /// A connected pair of streams.
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
        Ok((
            UnixStream {
                io: Io::new(),
                inner: a.into(),
            },
            UnixStream {
                io: Io::new(),
                inner: b.into(),
            },
        ))
    }

    /// A second handle on the same stream; options are shared, as in std.
    ///
    /// # Errors
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: self.io.for_clone(),
            inner: self.inner.try_clone()?,
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Bounds each read; on expiry it fails with `WouldBlock` (std's `EAGAIN`).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)?;
        self.io.set_read_timeout(dur);
        Ok(())
    }

    timeout_accessors!("write");

    /// With `true`, calls that would block fail with `WouldBlock` instead of parking.
    ///
    /// # Errors
    /// Never; the `Result` is std's signature.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Shuts down the read half, the write half (the peer reads end-of-file), or both.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Reads without removing the data from the queue; parks until some is there.
    ///
    /// # Errors
    /// As [`read`](Read::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        self.io.read(fd, || peek(fd, buf))
    }
}

/// `recv(MSG_PEEK)` (std's `peek` on Unix sockets is not stable yet).
fn peek(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Connects a new non-blocking stream socket to `addr`.
fn connect(addr: &SockAddr) -> io::Result<UnixStream> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
    // A Unix connect completes at once or fails with EAGAIN when the listener's backlog is
    // full; nothing signals when room appears (epoll reports an unconnected socket writable),
    // so retry with a growing pause, as a blocking connect would sleep in the kernel.
    let mut pause = Duration::from_millis(1);
    loop {
        match socket.connect(addr) {
            Ok(()) => {
                return Ok(UnixStream {
                    io: Io::new(),
                    inner: socket.into(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        crate::hub::check_can_block();
        let until = Instant::now() + pause;
        let w = crate::hub::waiter();
        let r = crate::hub::park(&w, Some(until), &"room in a Unix listener's backlog");
        match r {
            Err(e) => return Err(io::Error::other(e)),
            // A greenlet Timeout ended the pause early.
            Ok(false) if Instant::now() < until => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the greenlet's Timeout expired",
                ));
            }
            Ok(_) => {}
        }
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A std Unix address as a `socket2` one.
fn to_sockaddr(addr: &SocketAddr) -> io::Result<SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = addr.as_abstract_name() {
            // socket2 takes an abstract name as a path with a leading NUL.
            let mut bytes = Vec::with_capacity(name.len() + 1);
            bytes.push(0);
            bytes.extend_from_slice(name);
            return SockAddr::unix(OsStr::from_bytes(&bytes));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot connect or bind to an unnamed Unix address",
    ))
}

/// A `socket2` Unix address as a std one.
fn from_sockaddr(addr: &SockAddr) -> io::Result<SocketAddr> {
    if let Some(path) = addr.as_pathname() {
        return SocketAddr::from_pathname(path);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(name) = addr.as_abstract_namespace() {
        use std::os::linux::net::SocketAddrExt;
        return SocketAddr::from_abstract_name(name);
    }
    // An empty path is std's unnamed address.
    SocketAddr::from_pathname("")
}

macro_rules! stream_io {
    ($t:ty) => {
        impl Read for $t {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let inner = &self.inner;
                self.io.read(inner.as_raw_fd(), || (&*inner).read(buf))
            }

            #[inline]
            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                let inner = &self.inner;
                self.io
                    .read(inner.as_raw_fd(), || (&*inner).read_vectored(bufs))
            }
        }

        impl Write for $t {
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
    };
}

stream_io!(UnixStream);
stream_io!(&UnixStream);

impl From<net::UnixStream> for UnixStream {
    /// Adopts a std stream: puts it in non-blocking mode and keeps its timeouts.
    fn from(inner: net::UnixStream) -> UnixStream {
        let io = Io::with_timeouts(
            inner.read_timeout().ok().flatten(),
            inner.write_timeout().ok().flatten(),
        );
        let _ = inner.set_nonblocking(true);
        UnixStream { io, inner }
    }
}

fd_traits!(UnixStream, net::UnixStream);

/// A Unix-domain listening socket whose `accept` parks only the calling greenlet (std's
/// [`UnixListener`](std::os::unix::net::UnixListener), green).
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use greenlet::net::{UnixListener, UnixStream};
///
/// let dir = std::env::temp_dir().join(format!("greenlet-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("sock");
/// # let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// greenlet::spawn(move || {
///     let (mut conn, _) = listener.accept().unwrap();
///     conn.write_all(b"hi").unwrap();
/// });
/// let mut s = String::new();
/// UnixStream::connect(&path)?.read_to_string(&mut s)?;
/// assert_eq!(s, "hi");
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    pub(crate) io: Io,
    pub(crate) inner: net::UnixListener,
}

impl UnixListener {
    /// Binds to `path` (which must not exist yet), as std does.
    ///
    /// # Errors
    /// As std's (`AddrInUse`, …).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let inner = net::UnixListener::bind(path)?;
        inner.set_nonblocking(true)?;
        Ok(UnixListener {
            io: Io::new(),
            inner,
        })
    }

    /// Binds to `addr` (a path or, on Linux, an abstract name).
    ///
    /// # Errors
    /// As std's.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let inner = net::UnixListener::bind_addr(addr)?;
        inner.set_nonblocking(true)?;
        Ok(UnixListener {
            io: Io::new(),
            inner,
        })
    }

    /// Accepts a connection, parking until one comes.
    ///
    /// # Errors
    /// As `accept4(2)`; `TimedOut` when a greenlet [`Timeout`](crate::Timeout) expires first.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let inner = &self.inner;
        let (socket, addr) = self.io.read(inner.as_raw_fd(), || {
            SockRef::from(inner).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })?;
        Ok((
            UnixStream {
                io: Io::new(),
                inner: socket.into(),
            },
            from_sockaddr(&addr)?,
        ))
    }

    /// A second handle on the same listening socket.
    ///
    /// # Errors
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: self.io.for_clone(),
            inner: self.inner.try_clone()?,
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// With `true`, `accept` fails with `WouldBlock` instead of parking.
    ///
    /// # Errors
    /// Never; the `Result` is std's signature.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl From<net::UnixListener> for UnixListener {
    /// Adopts a std listener (putting it in non-blocking mode).
    fn from(inner: net::UnixListener) -> UnixListener {
        let _ = inner.set_nonblocking(true);
        UnixListener {
            io: Io::new(),
            inner,
        }
    }
}

fd_traits!(UnixListener, net::UnixListener);

/// The iterator of [`UnixListener::incoming`]: accepts forever.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}

/// A Unix-domain datagram socket whose blocking calls park only the calling greenlet (std's
/// [`UnixDatagram`](std::os::unix::net::UnixDatagram), green).
///
/// # Examples
/// ```
/// use greenlet::net::UnixDatagram;
///
/// let (a, b) = UnixDatagram::pair()?;
/// greenlet::spawn(move || a.send(b"one datagram").unwrap());
/// let mut buf = [0; 32];
/// let n = b.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"one datagram");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    pub(crate) io: Io,
    pub(crate) inner: net::UnixDatagram,
}

impl UnixDatagram {
    /// Binds to `path`.
    ///
    /// # Errors
    /// As std's.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::adopt(net::UnixDatagram::bind(path)?)
    }

    /// Binds to `addr` (a path or, on Linux, an abstract name).
    ///
    /// # Errors
    /// As std's.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::adopt(net::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address.
    ///
    /// # Errors
    /// As `socket(2)`.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::adopt(net::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    ///
    /// # Errors
    /// As `socketpair(2)`.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(Domain::UNIX, Type::DGRAM.nonblocking(), None)?;
        Ok((
            UnixDatagram {
                io: Io::new(),
                inner: a.into(),
            },
            UnixDatagram {
                io: Io::new(),
                inner: b.into(),
            },
        ))
    }

    fn adopt(inner: net::UnixDatagram) -> io::Result<UnixDatagram> {
        inner.set_nonblocking(true)?;
        Ok(UnixDatagram {
            io: Io::new(),
            inner,
        })
    }

    /// Sets the default destination, and filters incoming datagrams to it.
    ///
    /// # Errors
    /// As std's.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.connect(path)
    }

    /// [`connect`](UnixDatagram::connect) to an address.
    ///
    /// # Errors
    /// As std's.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.connect_addr(addr)
    }

    /// A second handle on the same socket; options are shared, as in std.
    ///
    /// # Errors
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: self.io.for_clone(),
            inner: self.inner.try_clone()?,
        })
    }

    /// The local address.
    ///
    /// # Errors
    /// As `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected address.
    ///
    /// # Errors
    /// As `getpeername(2)`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Receives one datagram, parking until one comes; returns its length and sender.
    ///
    /// # Errors
    /// `WouldBlock` when the read timeout expires.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.recv_from(buf))
    }

    /// Receives one datagram, parking until one comes.
    ///
    /// # Errors
    /// `WouldBlock` when the read timeout expires.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.recv(buf))
    }

    /// Like [`recv`](UnixDatagram::recv), leaving the datagram in the queue.
    ///
    /// # Errors
    /// As [`recv`](UnixDatagram::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.inner.as_raw_fd();
        self.io.read(fd, || peek(fd, buf))
    }

    /// Sends a datagram to the socket at `path`, parking while the receiver's queue is full.
    ///
    /// # Errors
    /// `WouldBlock` when the write timeout expires; else as `sendto(2)`.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.io
            .write(self.inner.as_raw_fd(), || self.inner.send_to(buf, path))
    }

    /// Sends a datagram to `addr`, parking while the receiver's queue is full.
    ///
    /// # Errors
    /// As [`send_to`](UnixDatagram::send_to).
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.io.write(self.inner.as_raw_fd(), || {
            self.inner.send_to_addr(buf, addr)
        })
    }

    /// Sends a datagram to the connected address, parking while the receiver's queue is full.
    ///
    /// # Errors
    /// As [`send_to`](UnixDatagram::send_to); `NotConnected` when not connected.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .write(self.inner.as_raw_fd(), || self.inner.send(buf))
    }

    /// Bounds each receive; on expiry it fails with `WouldBlock` (std's `EAGAIN`).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)?;
        self.io.set_read_timeout(dur);
        Ok(())
    }

    timeout_accessors!("send");

    /// With `true`, calls that would block fail with `WouldBlock` instead of parking.
    ///
    /// # Errors
    /// Never; the `Result` is std's signature.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Shuts down reading, writing, or both.
    ///
    /// # Errors
    /// As `shutdown(2)`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }
}

impl From<net::UnixDatagram> for UnixDatagram {
    /// Adopts a std socket: puts it in non-blocking mode and keeps its timeouts.
    fn from(inner: net::UnixDatagram) -> UnixDatagram {
        let io = Io::with_timeouts(
            inner.read_timeout().ok().flatten(),
            inner.write_timeout().ok().flatten(),
        );
        let _ = inner.set_nonblocking(true);
        UnixDatagram { io, inner }
    }
}

fd_traits!(UnixDatagram, net::UnixDatagram);
