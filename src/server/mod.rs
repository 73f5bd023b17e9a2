//! Servers (gevent's `gevent.server`): accept loops that run one greenlet per connection.
//!
//! A [`StreamServer`] owns a TCP listener and calls your handler, in a new greenlet, for every
//! connection it accepts. The handler is ordinary straight-line code over a
//! [`TcpStream`](net::TcpStream): `read`, `write_all`, loop, return. While it waits for the
//! network, the hub runs the other connections, so one OS thread serves thousands of clients
//! without callbacks, futures or state machines. A [`DatagramServer`] does the same for UDP,
//! one greenlet per datagram.
//!
//! # An echo server
//!
//! The reference article's gevent echo server (`gevent.spawn(handle_request, cli)` per
//! accepted socket) is a handler:
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::Shutdown;
//! use greenlet::server::StreamServer;
//! use greenlet::net;
//!
//! fn handle_request(mut conn: net::TcpStream, _peer: std::net::SocketAddr) {
//!     let mut buf = [0u8; 1024];
//!     loop {
//!         match conn.read(&mut buf) {
//!             Ok(0) => { let _ = conn.shutdown(Shutdown::Write); return; }
//!             Ok(n) => if conn.write_all(&buf[..n]).is_err() { return },
//!             Err(_) => return,
//!         }
//!     }
//! }
//!
//! let server = StreamServer::bind("127.0.0.1:8001", handle_request).unwrap();
//! println!("listening on {}", server.local_addr());
//! server.serve_forever().unwrap(); // runs the hub until the server is stopped
//! ```
//!
//! # Starting, limiting and stopping
//!
//! - [`serve_forever`](StreamServer::serve_forever) starts the accept loop and blocks the
//!   calling greenlet until the server stops; [`start`](StreamServer::start) starts it and
//!   returns, so the same greenlet can go on (run clients, tests, a second server).
//! - [`spawn_limit(n)`](StreamServer::spawn_limit) caps how many connections are handled at
//!   once (gevent's `spawn=Pool(n)`): at the cap the server stops accepting and lets clients
//!   wait in the kernel's listen backlog. [`with_pool`](StreamServer::with_pool) does the same
//!   with a [`Pool`] that other servers or other work share.
//! - [`idle_timeout(d)`](StreamServer::idle_timeout) gives every connection a read and write
//!   timeout (gevent programs call `socket.settimeout`), so idle clients, and clients that
//!   stopped reading, are let go; a handler bounds a whole request with a
//!   [`Timeout`](crate::Timeout) (see `examples/http_hello.rs`).
//! - [`stop(timeout)`](StreamServer::stop) closes the listener (new clients are refused), gives
//!   the running handlers `timeout` to finish, then kills the rest: each unwinds from whatever
//!   it was blocked on, dropping (closing) its socket.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use greenlet::server::StreamServer;
//! use greenlet::net;
//!
//! // A handler that never returns by itself: it waits for a byte that never comes.
//! let server = StreamServer::bind("127.0.0.1:0", |mut conn: net::TcpStream, _| {
//!     conn.write_all(b"hi").unwrap();
//!     let _ = conn.read(&mut [0u8; 1]);
//! })
//! .unwrap();
//! server.start().unwrap();
//!
//! let mut client = net::TcpStream::connect(server.local_addr()).unwrap();
//! let mut hi = [0u8; 2];
//! client.read_exact(&mut hi).unwrap();
//! assert_eq!(server.connection_count(), 1);
//!
//! // The handler does not finish within 10 ms, so it is killed; its socket closes.
//! assert_eq!(server.stop(Duration::from_millis(10)), 1);
//! assert_eq!(client.read(&mut hi).unwrap(), 0);
//! assert!(net::TcpStream::connect(server.local_addr()).is_err());
//! ```
//!
//! # Faults
//!
//! A handler that panics ends its own connection only; the panic is logged with the peer's
//! address. Accept errors never end the loop unless the listener itself is broken: aborted
//! connections are skipped, and running out of descriptors (`EMFILE`/`ENFILE`) or kernel
//! memory (`ENOBUFS`/`ENOMEM`) logs one warning and retries with a backoff (5 ms doubling to
//! 1 s) instead of spinning, so serving resumes once descriptors are free again.

mod datagram;
mod lifecycle;
mod spread;
mod stream;

use crate::net;

pub use self::datagram::{DatagramServer, Reply};
pub use self::spread::RuntimeServer;
pub use self::stream::{DEFAULT_BACKLOG, StreamServer};

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use crate::error::GreenletExit;
use crate::hub::waitlist::{BlockError, WaitList, block_on};
use crate::hub::{JoinHandle, Kill, SpawnBuilder, joinall, killall};
use crate::pool::Pool;
use crate::sync::WaitError;

/// How long [`Handlers::stop`] waits for killed handlers to finish unwinding.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(1);

/// First and last delay of the backoff after resource-exhaustion errors.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The running handler greenlets of a server, with an optional cap on how many run at once.
pub(crate) struct Handlers {
    map: RefCell<HashMap<u64, JoinHandle<()>>>,
    next_key: Cell<u64>,
    limit: Cell<Option<usize>>,
    /// Slots taken: handlers running plus the one the accept loop may hold while accepting.
    used: Cell<usize>,
    freed: WaitList,
    /// A pool the handlers also join (shared with other servers or work).
    pool: RefCell<Option<Pool>>,
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("running", &self.len())
            .field("limit", &self.limit.get())
            .finish()
    }
}

impl Handlers {
    pub(crate) fn new() -> Rc<Handlers> {
        Rc::new(Handlers {
            map: RefCell::new(HashMap::new()),
            next_key: Cell::new(0),
            limit: Cell::new(None),
            used: Cell::new(0),
            freed: WaitList::new(),
            pool: RefCell::new(None),
        })
    }

    pub(crate) fn set_limit(&self, limit: Option<usize>) {
        self.limit.set(limit);
        self.freed.wake_all();
    }

    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit.get()
    }

    pub(crate) fn set_pool(&self, pool: Pool) {
        *self.pool.borrow_mut() = Some(pool);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// Waits for a free slot (and room in the pool, if any) and takes it.
    pub(crate) fn acquire(&self) -> Result<(), BlockError> {
        block_on(
            &self.freed,
            None,
            &"a free handler slot of a server",
            || {
                self.limit
                    .get()
                    .is_none_or(|l| self.used.get() < l)
                    .then_some(())
            },
        )?;
        let pool = self.pool.borrow().clone();
        if let Some(pool) = pool {
            pool.wait_available().map_err(|e| match e {
                WaitError::TimedOut => BlockError::TimedOut,
                WaitError::LoopExit(e) => BlockError::LoopExit(e),
                WaitError::Killed => BlockError::Killed,
            })?;
        }
        self.used.set(self.used.get() + 1);
        Ok(())
    }

    /// Gives a slot back.
    pub(crate) fn release(&self) {
        self.used.set(self.used.get().saturating_sub(1));
        if self.limit.get().is_some() {
            self.freed.wake_one();
        }
    }

    /// Runs `f` in a new greenlet that holds the slot taken by the last [`acquire`]
    /// (released when it ends, however it ends). A panic in `f` is logged, naming `peer`.
    ///
    /// # Errors
    /// When no greenlet can be spawned; the slot is released and `f` dropped.
    pub(crate) fn spawn(
        self: &Rc<Self>,
        peer: SocketAddr,
        f: impl FnOnce() + 'static,
    ) -> io::Result<()> {
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        let active = Active {
            handlers: self.clone(),
            key,
        };
        let body = move || {
            let _active = active;
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
                if payload.is::<GreenletExit>() {
                    panic::resume_unwind(payload);
                }
                log::error!(
                    "greenlet server: the handler for {peer} panicked: {}",
                    panic_message(&*payload)
                );
            }
        };
        let pool = self.pool.borrow().clone();
        let h = match pool {
            None => SpawnBuilder::new().spawn(body)?,
            // Spawning into the pool waits for room if another user of the pool took the
            // room `acquire` saw, so the pool's size is never exceeded.
            Some(pool) => match panic::catch_unwind(AssertUnwindSafe(|| pool.spawn(body))) {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => return Err(io::Error::other(e)),
                Err(payload) if payload.is::<GreenletExit>() => panic::resume_unwind(payload),
                // Pool::spawn panics when no stack can be had.
                Err(payload) => return Err(io::Error::other(panic_message(&*payload).to_owned())),
            },
        };
        // The greenlet has not run yet (spawning only schedules it), so it is still running.
        self.map.borrow_mut().insert(key, h);
        Ok(())
    }

    /// Waits up to `timeout` for the handlers (except the calling greenlet) to finish, then
    /// kills the others; returns how many were killed.
    pub(crate) fn stop(&self, timeout: Duration) -> usize {
        let me = crate::current().id();
        let running: Vec<JoinHandle<()>> = self
            .map
            .borrow()
            .values()
            .filter(|h| h.greenlet().id() != me)
            .cloned()
            .collect();
        if running.is_empty() {
            return 0;
        }
        let _ = joinall(&running, Some(timeout), None);
        let left: Vec<_> = running.into_iter().filter(|h| !h.is_ready()).collect();
        if !left.is_empty() {
            let _ = killall(&left, Kill::Grace(KILL_WAIT));
        }
        left.len()
    }
}

/// A handler's claim on its slot: dropped when its greenlet's closure is consumed or dropped
/// (even when the greenlet is killed before it starts).
struct Active {
    handlers: Rc<Handlers>,
    key: u64,
}

impl Drop for Active {
    fn drop(&mut self) {
        self.handlers.map.borrow_mut().remove(&self.key);
        self.handlers.release();
    }
}

/// What to do about an error from `accept` / `recv_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// Concerns one connection or datagram only: try again at once.
    Retry,
    /// Out of descriptors or kernel memory: wait (with backoff) and try again.
    Exhausted,
    /// The socket itself is unusable: give up.
    Fatal,
    /// Anything else: log and retry with backoff, never spin.
    Unknown,
}

pub(crate) fn classify_accept_error(e: &io::Error) -> AcceptError {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Exhausted,
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::ECONNREFUSED
            | libc::EINTR
            | libc::EAGAIN
            | libc::EPROTO
            | libc::EPERM
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::ETIMEDOUT,
        ) => AcceptError::Retry,
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT) => AcceptError::Fatal,
        _ if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ) =>
        {
            AcceptError::Retry
        }
        _ => AcceptError::Unknown,
    }
}

/// The sleep between retries while accepting keeps failing: 5 ms doubling to 1 s, one warning
/// per episode.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    what: String,
    delay: Duration,
}

impl AcceptBackoff {
    pub(crate) fn new(what: String) -> AcceptBackoff {
        AcceptBackoff {
            what,
            delay: Duration::ZERO,
        }
    }

    /// A success: the next failure starts a new episode.
    pub(crate) fn reset(&mut self) {
        if !self.delay.is_zero() {
            log::info!("{}: accepting again", self.what);
            self.delay = Duration::ZERO;
        }
    }

    /// Sleeps the current greenlet before the next attempt.
    pub(crate) fn wait(&mut self, e: &io::Error) {
        if self.delay.is_zero() {
            log::warn!(
                "{}: {e}; retrying with a backoff of {BACKOFF_MIN:?} up to {BACKOFF_MAX:?}",
                self.what
            );
            self.delay = BACKOFF_MIN;
        } else {
            self.delay = (self.delay * 2).min(BACKOFF_MAX);
        }
        crate::sleep(self.delay);
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string payload>"
    }
}
