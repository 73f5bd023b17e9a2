//! [`StreamServer`]: a TCP accept loop that runs one greenlet per connection.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::lifecycle::Lifecycle;
use super::net::{TcpListener, TcpStream, ToSocketAddrs};
use crate::pool::Pool;

/// The listen backlog [`StreamServer::bind`] asks for (the kernel caps it at
/// `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 1024;

type Handler = dyn Fn(TcpStream, SocketAddr);

struct Inner {
    life: Lifecycle<TcpListener>,
    handler: Rc<Handler>,
    /// The read and write timeout given to every connection (see `idle_timeout`).
    idle_timeout: Cell<Option<Duration>>,
}

/// A TCP server that calls a handler in a new greenlet for every connection (gevent's
/// `StreamServer`).
///
/// The handler is plain straight-line code: it reads and writes its
/// [`TcpStream`](crate::net::TcpStream) as if blocking, and the hub runs the other connections while
/// it waits. A panic in a handler ends only that connection (it is logged with the peer's
/// address). The accept loop survives transient accept errors; when the process runs out of
/// descriptors (`EMFILE`, `ENFILE`) or kernel memory (`ENOBUFS`, `ENOMEM`) it logs one warning
/// and retries with a backoff from 5 ms doubling up to 1 s, so it never spins, and serving
/// resumes once descriptors are free again.
///
/// A `StreamServer` is a cheap handle: clones refer to the same server. A started server keeps
/// serving until [`stop`](StreamServer::stop) is called, whether or not handles remain.
///
/// # Examples
/// An echo server and a client, on one thread:
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use greenlet::server::StreamServer;
/// use greenlet::net;
///
/// let server = StreamServer::bind("127.0.0.1:0", |mut conn: net::TcpStream, _peer| {
///     let mut buf = [0u8; 1024];
///     loop {
///         match conn.read(&mut buf) {
///             Ok(0) | Err(_) => return,
///             Ok(n) => { let _ = conn.write_all(&buf[..n]); }
///         }
///     }
/// })
/// .unwrap();
/// server.start().unwrap();
///
/// let mut client = net::TcpStream::connect(server.local_addr()).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut echo = [0u8; 5];
/// client.read_exact(&mut echo).unwrap();
/// assert_eq!(&echo, b"hello");
/// drop(client);
///
/// server.stop(Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct StreamServer {
    inner: Rc<Inner>,
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StreamServer");
        self.inner.life.debug_fields(&mut d);
        d.finish()
    }
}

impl StreamServer {
    /// Binds a listener to `addr` (backlog [`DEFAULT_BACKLOG`]) and makes a server that calls
    /// `handler` for every connection. Nothing is accepted before [`start`](Self::start) or
    /// [`serve_forever`](Self::serve_forever).
    ///
    /// The listener is bound and listening from here on, as std's `TcpListener::bind` is: a
    /// client that connects before the start waits in the backlog and is served once the
    /// server starts (gevent binds a server made from an address only when it starts, so such
    /// a client is refused there).
    ///
    /// # Errors
    /// What binding the address returns (address in use, permission, resolution errors).
    pub fn bind<A, H>(addr: A, handler: H) -> io::Result<StreamServer>
    where
        A: ToSocketAddrs,
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        // Names resolve the green way (`net::ToSocketAddrs`); std binds the first address
        // that works.
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let std = std::net::TcpListener::bind(&addrs[..])?;
        // Binding listened with std's small backlog; listening again only raises it.
        socket2::SockRef::from(&std).listen(DEFAULT_BACKLOG)?;
        StreamServer::new(TcpListener::from(std), handler)
    }

    /// Makes a server that accepts on an existing listener (for a backlog or socket options
    /// of your own). A listener put in non-blocking mode is put back in (green) blocking mode.
    ///
    /// # Errors
    /// If the listener's local address cannot be read (it is not bound).
    ///
    /// # Examples
    /// ```
    /// use greenlet::net::TcpListener;
    /// use greenlet::server::StreamServer;
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    /// let server = StreamServer::new(listener, |_conn, _peer| {}).unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn new<H>(listener: TcpListener, handler: H) -> io::Result<StreamServer>
    where
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let addr = listener.local_addr()?;
        // The accept loop parks while nobody connects (a non-blocking listener would spin).
        listener.set_nonblocking(false)?;
        Ok(StreamServer {
            inner: Rc::new(Inner {
                life: Lifecycle::new("StreamServer", addr, listener),
                handler: Rc::new(handler),
                idle_timeout: Cell::new(None),
            }),
        })
    }

    /// Limits how many connections are handled at once (gevent's `spawn=Pool(n)`): at the
    /// limit, the server stops accepting (clients wait in the listen backlog) until a handler
    /// finishes. `spawn_limit(0)` means no limit, which is the default.
    ///
    /// # Examples
    /// ```
    /// # use greenlet::server::StreamServer;
    /// let server = StreamServer::bind("127.0.0.1:0", |_conn, _peer| {}).unwrap().spawn_limit(100);
    /// ```
    #[doc(alias = "Pool")]
    pub fn spawn_limit(self, n: usize) -> StreamServer {
        self.inner.life.handlers.set_limit((n > 0).then_some(n));
        self
    }

    /// Gives every connection a read and a write timeout of `timeout` before its handler runs
    /// (what gevent programs do with `socket.settimeout`): a read that waits longer than that
    /// for the client, or a write that waits longer for it to read, fails with
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) as std's timeouts do, and the handler's error
    /// path closes the connection. So an idle keep-alive connection, or a client that stopped
    /// sending or reading, is let go instead of holding a greenlet and a descriptor forever.
    /// `None` (the default) means no timeout. A handler may change its socket's timeouts.
    ///
    /// This bounds each wait, not a whole request: a client that sends a byte just often enough
    /// is bounded by a deadline in the handler (a [`Timeout`](crate::Timeout) around reading
    /// one request, as `examples/http_hello.rs` and `examples/redis_server.rs` do).
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use greenlet::server::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |mut conn: greenlet::net::TcpStream, _| {
    ///     // An idle client: the read gives up after the server's timeout.
    ///     let err = conn.read(&mut [0u8; 1]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// })
    /// .unwrap()
    /// .idle_timeout(Some(Duration::from_millis(20)));
    /// server.start().unwrap();
    /// let mut idle = greenlet::net::TcpStream::connect(server.local_addr()).unwrap();
    /// // The handler gave up and closed the connection.
    /// assert_eq!(idle.read(&mut [0u8; 1]).unwrap(), 0);
    /// server.stop(Duration::from_secs(1));
    /// ```
    #[doc(alias = "settimeout")]
    pub fn idle_timeout(self, timeout: Option<Duration>) -> StreamServer {
        self.inner
            .idle_timeout
            .set(timeout.filter(|t| !t.is_zero()));
        self
    }

    /// Runs the handlers in `pool` as well (gevent's `spawn=pool`): the server accepts only
    /// while the pool has room, so one pool can bound several servers, or a server together
    /// with other work. [`stop`](Self::stop) still concerns only this server's handlers.
    ///
    /// # Examples
    /// ```
    /// use greenlet::pool::Pool;
    /// use greenlet::server::StreamServer;
    ///
    /// let pool = Pool::new(1000);
    /// let a = StreamServer::bind("127.0.0.1:0", |_conn, _peer| {}).unwrap().with_pool(&pool);
    /// let b = StreamServer::bind("127.0.0.1:0", |_conn, _peer| {}).unwrap().with_pool(&pool);
    /// // a and b together handle at most 1000 connections at once.
    /// ```
    pub fn with_pool(self, pool: &Pool) -> StreamServer {
        self.inner.life.handlers.set_pool(pool.clone());
        self
    }

    /// The address the server listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.life.addr
    }

    /// How many connections are being handled right now.
    pub fn connection_count(&self) -> usize {
        self.inner.life.handlers.len()
    }

    /// Whether the accept loop is running.
    pub fn is_serving(&self) -> bool {
        self.inner.life.is_serving()
    }

    /// Starts accepting in a new greenlet and returns at once (gevent's `start`). The accept
    /// loop runs whenever the current greenlet blocks or yields.
    ///
    /// # Errors
    /// `InvalidInput` if the server was already started or stopped; an error if no greenlet
    /// can be spawned (out of stacks).
    pub fn start(&self) -> io::Result<()> {
        let inner = self.inner.clone();
        self.inner
            .life
            .start(move |listener| accept_loop(&inner, &listener))
    }

    /// Starts the server if needed, then blocks the current greenlet until the server is
    /// stopped (gevent's `serve_forever`). Called from the main greenlet, this runs the hub.
    ///
    /// # Errors
    /// The listener's error if accepting failed for good (`EBADF`, `EINVAL`, `ENOTSOCK`); a
    /// `LoopExit` (as `io::ErrorKind::Other`) if the hub was stopped.
    pub fn serve_forever(&self) -> io::Result<()> {
        self.inner.life.serve_forever(|| self.start())
    }

    /// Stops the server (gevent's `stop`): closes the listener at once, so new connections are
    /// refused, waits up to `timeout` for the connections being handled to finish, then kills
    /// the handlers still running (they unwind from wherever they block, closing their
    /// sockets). Returns how many handlers were killed. Stopping a stopped server does nothing.
    ///
    /// A handler may stop its own server: it is neither waited for nor killed.
    pub fn stop(&self, timeout: Duration) -> usize {
        self.inner.life.stop(timeout)
    }
}

fn accept_loop(inner: &Rc<Inner>, listener: &TcpListener) {
    let life = &inner.life;
    let mut backoff = life.backoff();
    loop {
        if life.handlers.acquire().is_err() {
            return;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff.reset();
                if let Some(t) = inner.idle_timeout.get()
                    && let Err(e) = stream
                        .set_read_timeout(Some(t))
                        .and_then(|()| stream.set_write_timeout(Some(t)))
                {
                    log::warn!("StreamServer: cannot set the timeout of a connection: {e}");
                }
                let handler = inner.handler.clone();
                if let Err(e) = life.handlers.spawn(peer, move || handler(stream, peer)) {
                    // Out of stacks: the connection was closed; wait before the next one.
                    backoff.wait(&e);
                }
            }
            Err(e) => {
                if !life.on_error(e, "accept", &mut backoff) {
                    return;
                }
            }
        }
    }
}
