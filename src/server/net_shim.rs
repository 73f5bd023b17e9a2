//! TEMPORARY stand-in for `greenlet::net` (branch `net`), so that the servers and their
//! examples can be written and tested before the real green sockets land. Same names and
//! signatures as `std::net` (the subset the servers use); replaced by an import of
//! `crate::net` once that module is on main.

#![allow(missing_docs)]

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

pub use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::hub::waitlist::BlockError;
use crate::hub::{Direction, IoRegistration};

/// A lazily registered descriptor with per-direction timeouts.
#[derive(Default)]
struct Io {
    reg: OnceCell<IoRegistration>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl Io {
    fn block<T>(
        &self,
        fd: RawFd,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<T>,
    ) -> io::Result<T> {
        let timeout = match dir {
            Direction::Read => self.read_timeout.get(),
            Direction::Write => self.write_timeout.get(),
        };
        let mut deadline: Option<Instant> = None;
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if deadline.is_none() {
                deadline = timeout.and_then(|t| Instant::now().checked_add(t));
            }
            let reg = match self.reg.get() {
                Some(r) => r,
                None => {
                    let r = IoRegistration::new(fd)?;
                    self.reg.get_or_init(|| r)
                }
            };
            match reg.wait(dir, deadline) {
                Ok(()) => {}
                Err(BlockError::TimedOut) => {
                    return Err(io::Error::from(io::ErrorKind::WouldBlock));
                }
                Err(BlockError::LoopExit(e)) => return Err(io::Error::other(e)),
            }
        }
    }
}

/// A green TCP listener.
pub struct TcpListener {
    io: Io,
    std: std::net::TcpListener,
}

impl TcpListener {
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        Ok(TcpListener::from(std::net::TcpListener::bind(addr)?))
    }

    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, a) = self
            .io
            .block(self.std.as_raw_fd(), Direction::Read, || self.std.accept())?;
        Ok((TcpStream::from(s), a))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std.local_addr()
    }
}

impl From<std::net::TcpListener> for TcpListener {
    fn from(std: std::net::TcpListener) -> TcpListener {
        std.set_nonblocking(true).expect("set_nonblocking");
        TcpListener {
            io: Io::default(),
            std,
        }
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.std.fmt(f)
    }
}

/// A green TCP stream.
pub struct TcpStream {
    io: Io,
    std: std::net::TcpStream,
}

impl TcpStream {
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_one(a) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses")))
    }

    fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let m = mio::net::TcpStream::connect(addr)?;
        // SAFETY: the descriptor is owned by `m`, whose ownership we take over.
        let std = unsafe { std::net::TcpStream::from_raw_fd(m.into_raw_fd()) };
        let s = TcpStream {
            io: Io::default(),
            std,
        };
        s.io.block(s.std.as_raw_fd(), Direction::Write, || {
            if let Some(e) = s.std.take_error()? {
                return Err(e);
            }
            match s.std.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Err(e) => Err(e),
            }
        })?;
        Ok(s)
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std.peer_addr()
    }
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std.local_addr()
    }
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.std.shutdown(how)
    }
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.std.set_nodelay(on)
    }
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.read_timeout.set(t);
        Ok(())
    }
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.write_timeout.set(t);
        Ok(())
    }
}

impl From<std::net::TcpStream> for TcpStream {
    fn from(std: std::net::TcpStream) -> TcpStream {
        std.set_nonblocking(true).expect("set_nonblocking");
        TcpStream {
            io: Io::default(),
            std,
        }
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let s = *self;
        s.io.block(s.std.as_raw_fd(), Direction::Read, || (&s.std).read(buf))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let s = *self;
        s.io.block(s.std.as_raw_fd(), Direction::Write, || (&s.std).write(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.std.fmt(f)
    }
}

/// A green UDP socket.
pub struct UdpSocket {
    io: Io,
    std: std::net::UdpSocket,
}

impl UdpSocket {
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        Ok(UdpSocket::from(std::net::UdpSocket::bind(addr)?))
    }
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.block(self.std.as_raw_fd(), Direction::Read, || {
            self.std.recv_from(buf)
        })
    }
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.io.block(self.std.as_raw_fd(), Direction::Write, || {
            self.std.send_to(buf, addr)
        })
    }
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        self.std.connect(addr)
    }
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.block(self.std.as_raw_fd(), Direction::Write, || {
            self.std.send(buf)
        })
    }
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io
            .block(self.std.as_raw_fd(), Direction::Read, || self.std.recv(buf))
    }
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std.local_addr()
    }
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.io.read_timeout.set(t);
        Ok(())
    }
}

impl From<std::net::UdpSocket> for UdpSocket {
    fn from(std: std::net::UdpSocket) -> UdpSocket {
        std.set_nonblocking(true).expect("set_nonblocking");
        UdpSocket {
            io: Io::default(),
            std,
        }
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.std.fmt(f)
    }
}
