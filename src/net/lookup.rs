//! Host name lookups: run on a small thread pool of their own, through a resolver that a
//! program may replace (gevent lets a program choose its resolver too).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use crate::threadpool::{self, BlockingError};

/// A resolver: host name and port to socket addresses.
type Resolver = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// The resolver set by [`set_resolver`]; `None`: [`system_resolver`].
static RESOLVER: RwLock<Option<Arc<Resolver>>> = RwLock::new(None);

/// Replaces how host names are looked up, for the whole process: every host name that a
/// [`ToSocketAddrs`](super::ToSocketAddrs) of this module resolves goes to `resolver` (IP
/// literals never do). It runs on the lookup threads (see
/// [`max_lookup_threads`](crate::threadpool::max_lookup_threads)), never on the hub, so it
/// may block. For a cache, a fixed table (tests, service discovery) or a resolver library;
/// [`system_resolver`] is the default, and [`reset_resolver`] brings it back.
///
/// # Examples
/// ```
/// use std::net::SocketAddr;
/// use greenlet::net::{self, ToSocketAddrs};
///
/// // Send one made-up name to loopback; ask the system about the others.
/// net::set_resolver(|host, port| match host {
///     "db.internal.example" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
///     _ => net::system_resolver(host, port),
/// });
/// let addrs: Vec<_> = ("db.internal.example", 5432).to_socket_addrs()?.collect();
/// assert_eq!(addrs, [SocketAddr::from(([127, 0, 0, 1], 5432))]);
/// net::reset_resolver();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_resolver(
    resolver: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
) {
    *RESOLVER.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(resolver));
}

/// Goes back to [`system_resolver`] after [`set_resolver`].
pub fn reset_resolver() {
    *RESOLVER.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The system's resolver (`getaddrinfo`, through std): what host names resolve with unless
/// [`set_resolver`] says otherwise. It blocks its thread; called from a greenlet, it blocks
/// the hub (the `ToSocketAddrs` of this module call it on a lookup thread).
///
/// # Errors
/// The resolver's error (unknown host, no network, ...).
///
/// # Examples
/// ```
/// let addrs = greenlet::net::system_resolver("localhost", 80)?;
/// assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn system_resolver(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Vec::from_iter)
}

/// Resolves `host` on the lookup pool, parking the calling greenlet.
pub(crate) fn resolve(host: String, port: u16) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let resolver = RESOLVER.read().unwrap_or_else(|e| e.into_inner()).clone();
    let found = threadpool::lookup_blocking(move || match resolver {
        Some(resolver) => resolver(&host, port),
        None => system_resolver(&host, port),
    })
    .map_err(|e| match e {
        BlockingError::TimedOut => io::Error::new(io::ErrorKind::TimedOut, e),
        e => io::Error::other(e),
    })??;
    Ok(found.into_iter())
}

/// Resolves `"host:port"` (an address literal is parsed by the caller) as std does: the port
/// after the last colon.
pub(crate) fn resolve_host_port(s: &str) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address");
    let (host, port) = s.rsplit_once(':').ok_or_else(invalid)?;
    let port: u16 = port.parse().map_err(|_| invalid())?;
    resolve(host.to_owned(), port)
}
