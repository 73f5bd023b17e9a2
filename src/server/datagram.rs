//! [`DatagramServer`]: a UDP receive loop that runs one greenlet per datagram.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::lifecycle::Lifecycle;
use super::net::{ToSocketAddrs, UdpSocket};
use crate::pool::Pool;

/// The largest datagram the server receives whole (larger ones are truncated by the kernel).
const MAX_DATAGRAM: usize = 65536;

type Handler = dyn Fn(&[u8], SocketAddr, &Reply);

/// How a datagram handler answers: sends from the server's socket, to the datagram's sender
/// or anywhere else.
pub struct Reply {
    socket: Rc<UdpSocket>,
    peer: SocketAddr,
}

impl Reply {
    /// The address the datagram came from.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends `buf` back to the datagram's sender.
    ///
    /// # Errors
    /// What `send_to` returns.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.socket.send_to(buf, self.peer)
    }

    /// Sends `buf` to `addr` from the server's socket (gevent's `DatagramServer.sendto`).
    ///
    /// # Errors
    /// What `send_to` returns.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        self.socket.send_to(buf, addr)
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").field("peer", &self.peer).finish()
    }
}

struct Inner {
    life: Lifecycle<UdpSocket>,
    handler: Rc<Handler>,
}

/// A UDP server that calls a handler in a new greenlet for every datagram (gevent's
/// `DatagramServer`).
///
/// The handler gets the datagram, its sender's address and a [`Reply`] to answer with. It
/// may block (sleep, talk to other servers) without holding up the next datagrams. Like
/// [`StreamServer`](super::StreamServer) it has [`spawn_limit`](Self::spawn_limit),
/// [`start`](Self::start), [`serve_forever`](Self::serve_forever) and [`stop`](Self::stop).
///
/// # Examples
/// A UDP echo server:
/// ```
/// use std::time::Duration;
/// use greenlet::server::DatagramServer;
/// use greenlet::net;
///
/// let server = DatagramServer::bind("127.0.0.1:0", |data, _peer, reply| {
///     let _ = reply.send(data);
/// })
/// .unwrap();
/// server.start().unwrap();
///
/// let client = net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.send_to(b"ping", server.local_addr()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, from) = client.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], server.local_addr()));
/// server.stop(Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct DatagramServer {
    inner: Rc<Inner>,
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DatagramServer");
        self.inner.life.debug_fields(&mut d);
        d.finish()
    }
}

impl DatagramServer {
    /// Binds a UDP socket to `addr` and makes a server that calls `handler` for every datagram.
    /// Nothing is received before [`start`](Self::start) or
    /// [`serve_forever`](Self::serve_forever).
    ///
    /// # Errors
    /// What binding the address returns.
    pub fn bind<A, H>(addr: A, handler: H) -> io::Result<DatagramServer>
    where
        A: ToSocketAddrs,
        H: Fn(&[u8], SocketAddr, &Reply) + 'static,
    {
        DatagramServer::new(UdpSocket::bind(addr)?, handler)
    }

    /// Makes a server that receives on an existing socket.
    ///
    /// # Errors
    /// If the socket's local address cannot be read.
    pub fn new<H>(socket: UdpSocket, handler: H) -> io::Result<DatagramServer>
    where
        H: Fn(&[u8], SocketAddr, &Reply) + 'static,
    {
        let addr = socket.local_addr()?;
        // The receive loop parks while nothing comes (a non-blocking socket would spin).
        socket.set_nonblocking(false)?;
        Ok(DatagramServer {
            inner: Rc::new(Inner {
                life: Lifecycle::new("DatagramServer", addr, socket),
                handler: Rc::new(handler),
            }),
        })
    }

    /// Limits how many handlers run at once; at the limit, datagrams wait in the socket's
    /// receive buffer (and the kernel drops what does not fit). `0` means no limit, the
    /// default.
    #[doc(alias = "Pool")]
    pub fn spawn_limit(self, n: usize) -> DatagramServer {
        self.inner.life.handlers.set_limit((n > 0).then_some(n));
        self
    }

    /// Runs the handlers in `pool` as well: the server receives only while the pool has
    /// room (see [`StreamServer::with_pool`](super::StreamServer::with_pool)).
    pub fn with_pool(self, pool: &Pool) -> DatagramServer {
        self.inner.life.handlers.set_pool(pool.clone());
        self
    }

    /// The address the server receives on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.life.addr
    }

    /// How many handlers are running right now.
    pub fn handler_count(&self) -> usize {
        self.inner.life.handlers.len()
    }

    /// Whether the receive loop is running.
    pub fn is_serving(&self) -> bool {
        self.inner.life.is_serving()
    }

    /// Starts receiving in a new greenlet and returns at once.
    ///
    /// # Errors
    /// `InvalidInput` if already started or stopped; an error if no greenlet can be spawned.
    pub fn start(&self) -> io::Result<()> {
        let inner = self.inner.clone();
        self.inner
            .life
            .start(move |socket| recv_loop(&inner, socket))
    }

    /// Starts the server if needed and blocks the current greenlet until it is stopped.
    ///
    /// # Errors
    /// The socket's error if receiving failed for good; a `LoopExit` (as
    /// `io::ErrorKind::Other`) if the hub was stopped.
    pub fn serve_forever(&self) -> io::Result<()> {
        self.inner.life.serve_forever(|| self.start())
    }

    /// Stops receiving and closes the socket, waits up to `timeout` for running handlers, then
    /// kills the rest; returns how many were killed. Handlers still holding a [`Reply`] keep
    /// the socket open until they end.
    pub fn stop(&self, timeout: Duration) -> usize {
        self.inner.life.stop(timeout)
    }
}

fn recv_loop(inner: &Rc<Inner>, socket: Rc<UdpSocket>) {
    let life = &inner.life;
    let mut backoff = life.backoff();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        if life.handlers.acquire().is_err() {
            return;
        }
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                backoff.reset();
                let data = buf[..n].to_vec();
                let handler = inner.handler.clone();
                let reply = Reply {
                    socket: socket.clone(),
                    peer,
                };
                if let Err(e) = life
                    .handlers
                    .spawn(peer, move || handler(&data, peer, &reply))
                {
                    backoff.wait(&e);
                }
            }
            Err(e) => {
                if !life.on_error(e, "receive", &mut backoff) {
                    return;
                }
            }
        }
    }
}
