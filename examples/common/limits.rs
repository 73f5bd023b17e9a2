//! How long the example servers wait for their clients: an idle timeout (the server's
//! [`StreamServer::idle_timeout`](greenlet::server::StreamServer::idle_timeout)) and a
//! deadline for one request, once it has begun, however slowly its bytes trickle in. Shared by
//! `http_hello` and `redis_server`.

#![allow(dead_code)]

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// How long a server waits for clients.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// How long a connection may wait for a request to begin (and a write for the client to
    /// read): the server's idle timeout.
    pub idle: Duration,
    /// How long a request may take to arrive whole, once it has begun.
    pub request: Duration,
}

impl Timeouts {
    /// `defaults`, with `--idle-timeout=SECS` and `--request-timeout=SECS` from `args`.
    ///
    /// # Panics
    /// With a usage line when a value is not a number of seconds.
    pub fn from_args(args: &[String], defaults: Timeouts) -> Timeouts {
        Timeouts {
            idle: seconds(args, "idle-timeout", defaults.idle),
            request: seconds(args, "request-timeout", defaults.request),
        }
    }
}

/// The value of `--NAME=SECONDS` among `args` (fractions allowed), or `default`.
fn seconds(args: &[String], name: &str, default: Duration) -> Duration {
    let prefix = format!("--{name}=");
    match args.iter().find_map(|a| a.strip_prefix(&prefix)) {
        Some(v) => v
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or_else(|| panic!("--{name}: expected a number of seconds, got {v:?}")),
        None => default,
    }
}

/// Reads into `buf`, giving up at `deadline` (`None` then): the read of a request that has
/// begun, on any socket whose references read (a green `TcpStream`, or std's under the
/// `monkey` feature).
pub fn read_until<S>(mut conn: &S, buf: &mut [u8], deadline: Instant) -> Option<io::Result<usize>>
where
    for<'a> &'a S: Read,
{
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    greenlet::with_timeout(left, || conn.read(buf)).ok()
}
