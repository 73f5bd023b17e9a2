//! Servers on every hub of a [`Runtime`]: one socket per hub, bound with `SO_REUSEPORT`, so
//! the kernel spreads connections (or datagrams) over the hubs, and each hub serves its own
//! with no lock, no shared queue and no wake-up of the other hubs.
//!
//! Why not one shared listener that every hub waits on (with `EPOLLEXCLUSIVE`, so that one
//! connection wakes one hub)? The hub that is woken accepts every connection queued at that
//! moment, and the hub woken most is the one that went to sleep last: under a burst of
//! connects, most of them land on one hub, which then serves them for their whole life (a
//! connection never moves). `SO_REUSEPORT` spreads connections by a hash of their addresses,
//! evenly whatever the hubs are doing. The measurement is in the bench (`bench/README.md`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::{DEFAULT_BACKLOG, DatagramServer, Reply, StreamServer};
use crate::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use crate::runtime::{RemoteJoinHandle, Runtime};
use crate::sync::{Condvar, Mutex, mpsc};

/// A server running on every hub of a [`Runtime`], made by [`StreamServer::start_on`] or
/// [`DatagramServer::start_on`]: `Send + Sync`, so any thread may stop it or wait for it.
///
/// Each hub runs its own [`StreamServer`] (or [`DatagramServer`]) on its own socket; the
/// sockets share the address through `SO_REUSEPORT`, and the kernel spreads new connections
/// over them.
pub struct RuntimeServer {
    addr: SocketAddr,
    hubs: Mutex<Vec<HubServer>>,
    stopped: Mutex<Option<usize>>,
    stopped_cv: Condvar,
}

struct HubServer {
    control: mpsc::Sender<Duration>,
    done: RemoteJoinHandle<usize>,
}

/// What a hub-local server needs to do for a [`RuntimeServer`].
trait Served {
    fn start(&self) -> io::Result<()>;
    fn stop(&self, timeout: Duration) -> usize;
}

impl Served for StreamServer {
    fn start(&self) -> io::Result<()> {
        StreamServer::start(self)
    }
    fn stop(&self, timeout: Duration) -> usize {
        StreamServer::stop(self, timeout)
    }
}

impl Served for DatagramServer {
    fn start(&self) -> io::Result<()> {
        DatagramServer::start(self)
    }
    fn stop(&self, timeout: Duration) -> usize {
        DatagramServer::stop(self, timeout)
    }
}

/// Binds `n` sockets of type `ty` to `addr` with `SO_REUSEPORT` (the first one picks the port
/// when `addr`'s is 0).
fn bind_reuseport(addr: SocketAddr, ty: Type, n: usize) -> io::Result<Vec<Socket>> {
    let mut addr = addr;
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        let protocol = if ty == Type::STREAM {
            Protocol::TCP
        } else {
            Protocol::UDP
        };
        let s = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
        if ty == Type::STREAM {
            s.set_reuse_address(true)?;
        }
        s.set_reuse_port(true)?;
        s.bind(&addr.into())?;
        if ty == Type::STREAM {
            s.listen(DEFAULT_BACKLOG)?;
        }
        if addr.port() == 0 {
            let bound = s.local_addr()?.as_socket().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "not an internet address")
            })?;
            addr.set_port(bound.port());
        }
        sockets.push(s);
    }
    Ok(sockets)
}

/// The first address `addr` resolves to.
fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    })
}

/// Starts one server per hub: `make(socket)` runs on the hub's thread.
fn spread<L, F>(
    rt: &Runtime,
    addr: SocketAddr,
    sockets: Vec<Socket>,
    make: F,
) -> io::Result<RuntimeServer>
where
    L: Served + 'static,
    F: Fn(Socket) -> io::Result<L> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    let mut hubs = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        let (control, orders) = mpsc::channel::<Duration>();
        let (make, ready) = (make.clone(), ready_tx.clone());
        let done = rt.spawn_on(i, move || {
            let server = match make(socket).and_then(|s| s.start().map(|()| s)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return 0;
                }
            };
            let _ = ready.send(Ok(()));
            drop(ready);
            // Serves (the hub runs the server's greenlets) until told to stop; a runtime
            // shutting down kills this greenlet, which stops the server as it unwinds.
            let mut stop_on_unwind = StopOnDrop(Some(&server));
            let grace = orders.recv().unwrap_or(Duration::ZERO);
            stop_on_unwind.0 = None;
            server.stop(grace)
        })?;
        hubs.push(HubServer { control, done });
    }
    drop(ready_tx);
    let server = RuntimeServer {
        addr,
        hubs: Mutex::new(hubs),
        stopped: Mutex::new(None),
        stopped_cv: Condvar::new(),
    };
    for _ in 0..rt.threads() {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                server.stop(Duration::ZERO);
                return Err(e);
            }
            Err(_) => {
                server.stop(Duration::ZERO);
                return Err(io::Error::other("a hub stopped while its server started"));
            }
        }
    }
    Ok(server)
}

/// Stops a hub's server if its greenlet unwinds (is killed) while serving.
struct StopOnDrop<'a, L: Served>(Option<&'a L>);

impl<L: Served> Drop for StopOnDrop<'_, L> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.stop(Duration::ZERO);
        }
    }
}

impl RuntimeServer {
    /// The address every hub listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server on every hub (see [`StreamServer::stop`]): closes the sockets, waits
    /// up to `timeout` for the connections being handled, kills the rest. Returns how many
    /// handlers were killed, over all hubs; a second call does nothing and returns 0.
    pub fn stop(&self, timeout: Duration) -> usize {
        let hubs = std::mem::take(&mut *self.hubs.lock().unwrap_or_else(|e| e.into_inner()));
        if hubs.is_empty() {
            return 0;
        }
        for h in &hubs {
            let _ = h.control.send(timeout);
        }
        let killed = hubs.into_iter().map(|h| h.done.join().unwrap_or(0)).sum();
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(killed);
        self.stopped_cv.notify_all();
        killed
    }

    /// Waits until the server is stopped, by [`stop`](RuntimeServer::stop) from another
    /// thread or greenlet (gevent's `serve_forever`, for a server that is already serving): a
    /// greenlet parks, a thread blocks.
    pub fn serve_forever(&self) {
        let stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let _stopped = self
            .stopped_cv
            .wait_while(stopped, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
    }
}

impl fmt::Debug for RuntimeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeServer")
            .field("addr", &self.addr)
            .field(
                "hubs",
                &self.hubs.lock().unwrap_or_else(|e| e.into_inner()).len(),
            )
            .finish()
    }
}

impl StreamServer {
    /// Serves on every hub of `runtime`: binds one listener per hub to `addr` with
    /// `SO_REUSEPORT` (the kernel spreads connections over them), starts a server on each,
    /// and returns once all are accepting. Each connection's handler runs on the hub that
    /// accepted it, in a greenlet of its own, and stays there.
    ///
    /// The handler is shared by the hubs, so it is `Send + Sync` (state it keeps across
    /// connections goes in `Arc`s and [`sync`](crate::sync)'s `Send` types).
    ///
    /// # Errors
    /// What binding returns (address in use, permission); the error of a hub whose server
    /// could not start (the others are stopped).
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use greenlet::{Runtime, server::StreamServer};
    ///
    /// let rt = Runtime::new(2).unwrap();
    /// let server = StreamServer::start_on(&rt, "127.0.0.1:0", |mut conn: greenlet::net::TcpStream, _peer| {
    ///     let name = std::thread::current().name().unwrap_or("").to_owned();
    ///     let _ = conn.write_all(name.as_bytes());
    /// })
    /// .unwrap();
    /// let mut conn = std::net::TcpStream::connect(server.local_addr()).unwrap();
    /// let mut hub = String::new();
    /// conn.read_to_string(&mut hub).unwrap();
    /// assert!(hub.starts_with("greenlet-hub-"));
    /// server.stop(Duration::from_secs(1));
    /// ```
    pub fn start_on<A, H>(runtime: &Runtime, addr: A, handler: H) -> io::Result<RuntimeServer>
    where
        A: ToSocketAddrs,
        H: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    {
        let addr = first_addr(addr)?;
        let sockets = bind_reuseport(addr, Type::STREAM, runtime.threads())?;
        let bound = sockets[0].local_addr()?.as_socket().unwrap_or(addr);
        let handler = Arc::new(handler);
        spread(runtime, bound, sockets, move |socket| {
            let listener = TcpListener::from(std::net::TcpListener::from(socket));
            let handler = handler.clone();
            StreamServer::new(listener, move |conn, peer| handler(conn, peer))
        })
    }
}

impl DatagramServer {
    /// Serves on every hub of `runtime`: one UDP socket per hub, bound to `addr` with
    /// `SO_REUSEPORT` (the kernel spreads datagrams over them by their source address), a
    /// server on each. See [`StreamServer::start_on`].
    ///
    /// # Errors
    /// As [`StreamServer::start_on`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use greenlet::{Runtime, server::DatagramServer};
    ///
    /// let rt = Runtime::new(2).unwrap();
    /// let server = DatagramServer::start_on(&rt, "127.0.0.1:0", |data, _peer, reply| {
    ///     let _ = reply.send(data);
    /// })
    /// .unwrap();
    /// let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    /// client.send_to(b"ping", server.local_addr()).unwrap();
    /// let mut buf = [0u8; 8];
    /// let (n, _) = client.recv_from(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"ping");
    /// server.stop(Duration::from_secs(1));
    /// ```
    pub fn start_on<A, H>(runtime: &Runtime, addr: A, handler: H) -> io::Result<RuntimeServer>
    where
        A: ToSocketAddrs,
        H: Fn(&[u8], SocketAddr, &Reply) + Send + Sync + 'static,
    {
        let addr = first_addr(addr)?;
        let sockets = bind_reuseport(addr, Type::DGRAM, runtime.threads())?;
        let bound = sockets[0].local_addr()?.as_socket().unwrap_or(addr);
        let handler = Arc::new(handler);
        spread(runtime, bound, sockets, move |socket| {
            let socket = UdpSocket::from(std::net::UdpSocket::from(socket));
            let handler = handler.clone();
            DatagramServer::new(socket, move |data, peer, reply| handler(data, peer, reply))
        })
    }
}
