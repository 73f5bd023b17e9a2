//! Green UDP: [`UdpSocket`], shaped like std's.

use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::{Io, ToSocketAddrs, each_addr, fd_traits, timeout_accessors};

/// A UDP socket whose blocking calls park only the calling greenlet (std's
/// [`UdpSocket`](std::net::UdpSocket), green).
///
/// # Examples
/// ```
/// use greenlet::net::UdpSocket;
///
/// let server = UdpSocket::bind("127.0.0.1:0")?;
/// let addr = server.local_addr()?;
/// let echo = greenlet::spawn(move || {
///     let mut buf = [0; 64];
///     let (n, from) = server.recv_from(&mut buf).unwrap();
///     server.send_to(&buf[..n], from).unwrap();
/// });
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.connect(addr)?;
/// client.send(b"ping")?;
/// let mut buf = [0; 64];
/// let n = client.recv(&mut buf)?; // the echo greenlet runs meanwhile
/// assert_eq!(&buf[..n], b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    pub(crate) io: Io,
    pub(crate) inner: net::UdpSocket,
}

impl UdpSocket {
    /// Binds to `addr` (the first of its addresses that works).
    ///
    /// # Errors
    /// As std's (`AddrInUse`, `InvalidInput` when nothing resolved).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        let inner = each_addr(&addr, |a| net::UdpSocket::bind(a))?;
        inner.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: Io::new(),
            inner,
        })
    }

    /// Receives one datagram, parking until one comes; returns its length and sender.
    ///
    /// # Errors
    /// `WouldBlock` when the read timeout expires; else as `recvfrom(2)`.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), leaving the datagram in the queue.
    ///
    /// # Errors
    /// As [`recv_from`](UdpSocket::recv_from).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.peek_from(buf))
    }

    /// Sends a datagram to `addr` (its first address), parking while the send buffer is full.
    ///
    /// # Errors
    /// `InvalidInput` when `addr` resolves to nothing; else as `sendto(2)`.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        match addr.to_socket_addrs()?.next() {
            Some(to) => self
                .io
                .write(self.inner.as_raw_fd(), || self.inner.send_to(buf, to)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no addresses to send data to",
            )),
        }
    }

    /// The address [`connect`](UdpSocket::connect)ed to.
    ///
    /// # Errors
    /// `NotConnected` if not connected.
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

    /// A second handle on the same socket; options are shared, as in std.
    ///
    /// # Errors
    /// As `dup(2)`.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: self.io.for_clone(),
            inner: self.inner.try_clone()?,
        })
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

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.set_broadcast(broadcast)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v4(on)
    }

    /// Whether `IP_MULTICAST_LOOP` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_multicast_ttl_v4(ttl)
    }

    /// The `IP_MULTICAST_TTL` value.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v6(on)
    }

    /// Whether `IPV6_MULTICAST_LOOP` is set.
    ///
    /// # Errors
    /// As `getsockopt(2)`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.multicast_loop_v6()
    }

    /// Joins an IPv4 multicast group (`IP_ADD_MEMBERSHIP`).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group (`IPV6_ADD_MEMBERSHIP`).
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    /// As `setsockopt(2)`.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.leave_multicast_v6(multiaddr, interface)
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

    /// Sets the default destination (the first of `addr`'s addresses that works) and filters
    /// incoming datagrams to it.
    ///
    /// # Errors
    /// As std's.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.inner.connect(a))
    }

    /// Sends to the connected address, parking while the send buffer is full.
    ///
    /// # Errors
    /// `NotConnected` / `DestinationAddrRequired` when not connected; else as `send(2)`.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io
            .write(self.inner.as_raw_fd(), || self.inner.send(buf))
    }

    /// Receives one datagram from the connected address, parking until one comes.
    ///
    /// # Errors
    /// `WouldBlock` when the read timeout expires; `ConnectionRefused` after an ICMP error.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv), leaving the datagram in the queue.
    ///
    /// # Errors
    /// As [`recv`](UdpSocket::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .read(self.inner.as_raw_fd(), || self.inner.peek(buf))
    }

    /// With `true`, calls that would block fail with `WouldBlock` instead of parking.
    ///
    /// # Errors
    /// Never; the `Result` is std's signature.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.io.set_nonblocking(nonblocking);
        Ok(())
    }
}

impl From<net::UdpSocket> for UdpSocket {
    /// Adopts a std socket: puts it in non-blocking mode and keeps its timeouts.
    fn from(inner: net::UdpSocket) -> UdpSocket {
        let io = Io::with_timeouts(
            inner.read_timeout().ok().flatten(),
            inner.write_timeout().ok().flatten(),
        );
        let _ = inner.set_nonblocking(true);
        UdpSocket { io, inner }
    }
}

fd_traits!(UdpSocket, net::UdpSocket);
