//! A small Redis-compatible server: PING, ECHO, GET, SET (with EX/PX), MGET, MSET, DEL,
//! EXISTS, INCR, DECR, INCRBY, DECRBY, EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, DBSIZE, QUIT, and
//! transactions (MULTI, EXEC, DISCARD; WATCH is refused with an error, UNWATCH answers OK),
//! plus the handshakes clients send with their defaults (redis-cli's COMMAND DOCS,
//! redis-benchmark's CONFIG GET, redis-py's HELLO 3, CLIENT SETINFO and SELECT); inline and
//! multibulk requests, pipelining. The unmodified `redis-cli`, `redis-benchmark` and redis-py
//! (its default `pipeline()` is a transaction) talk to it.
//!
//! Each connection is straight-line code in its own greenlet: read into one buffer, run every
//! complete command in it, write the replies, read again. The keyspace is in
//! `common/keyspace.rs`, the commands in `common/commands.rs`, a connection's side (its
//! transaction, its replies) in `common/session.rs`. On one hub the connections share the
//! keyspace without a lock; with `--threads N` the server runs on the N hubs of a
//! [`greenlet::Runtime`] and the keyspace is one `greenlet::sync::Mutex` shared by them. A
//! command runs inside one hold of the keyspace, and an `EXEC` runs its whole queue inside
//! one, so no other client's command runs in between, on one hub or on N. The keyspace is
//! never held across a write: replies are written after it is let go, a large value from a
//! reference shared with the keyspace. Keys with a deadline are deleted by a greenlet that
//! sleeps on the hub's timers.
//!
//! Memory per connection is bounded, whatever the client asks or how slowly it reads: replies
//! are gathered into one buffer (so pipelined commands are answered with few writes) that is
//! written out as soon as it passes [`commands::FLUSH_AT`]; a large value is written straight
//! from the keyspace, and many replies of it (a pipeline or a transaction of GETs) share it
//! rather than copy it. While a write waits for the client to read, the connection reads no
//! more commands: a client that does not read its replies is held back by TCP, not buffered
//! here. The request buffer is bounded by [`MAX_REQUEST`], a transaction's queue by
//! [`session::MAX_QUEUED_BYTES`] and [`session::MAX_QUEUED_ARGS`] (the command past either is
//! refused, and `EXEC` then discards the transaction). An idle connection is closed after
//! `--idle-timeout` (like redis-server's `timeout`), and a command that has begun must arrive
//! whole within `--request-timeout`.
//!
//! ```text
//! cargo run --release --example redis_server 6379
//! cargo run --release --example redis_server 6379 --idle-timeout=300 --request-timeout=10
//! cargo run --release --example redis_server -- 6379 --threads 2
//! redis-cli -p 6379 set greeting hello; redis-cli -p 6379 get greeting
//! printf 'MULTI\nINCR n\nINCR n\nEXEC\n' | redis-cli -p 6379
//! redis-benchmark -p 6379 -t ping_inline,ping_mbulk,set,get -P 16
//! cargo run --example redis_server -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/commands.rs"]
mod commands;
#[path = "common/keyspace.rs"]
mod keyspace;
#[path = "common/limits.rs"]
mod limits;
#[path = "common/resp.rs"]
mod resp;
#[path = "common/session.rs"]
mod session;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

use self::limits::{Timeouts, read_until};

pub use keyspace::{Db, Keyspace, SharedDb};
pub use session::Session;

/// The initial read buffer of a connection; it grows for large requests, up to
/// [`MAX_REQUEST`].
const BUF_SIZE: usize = 16 << 10;
/// The largest single request (all its arguments) a connection may send.
const MAX_REQUEST: usize = 2 * resp::MAX_BULK + (64 << 10);

/// How long the server waits for clients by default.
pub const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(300),
    request: Duration::from_secs(30),
};

/// Serves one connection until the client quits or closes, breaks the protocol, or is too
/// slow.
pub fn handle(conn: TcpStream, db: &impl Keyspace, request_timeout: Duration) {
    let _ = serve(&conn, db, request_timeout);
}

fn serve(conn: &TcpStream, db: &impl Keyspace, request_timeout: Duration) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut out = Session::new(conn, db, BUF_SIZE);
    let mut args: Vec<Range<usize>> = Vec::with_capacity(8);
    // Unparsed bytes are buf[start..end].
    let (mut start, mut end) = (0usize, 0usize);
    // When the command now arriving began to (None: none has begun).
    let mut begun: Option<Instant> = None;
    loop {
        let mut close = false;
        while start < end {
            match resp::parse(&buf[start..end], &mut args) {
                Ok(Some(n)) => {
                    begun = None;
                    close = out.execute(&buf[start..start + n], &args)?;
                    start += n;
                    if close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.push(e.reply());
                    close = true;
                    break;
                }
            }
        }
        out.flush()?;
        if close {
            lingering_close(conn);
            return Ok(());
        }
        if start == end {
            (start, end) = (0, 0);
            if buf.len() > BUF_SIZE {
                buf.truncate(BUF_SIZE);
                buf.shrink_to_fit();
            }
        } else if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            } else if buf.len() < MAX_REQUEST {
                buf.resize((buf.len() * 2).min(MAX_REQUEST), 0);
            } else {
                (&*conn).write_all(b"-ERR Protocol error: request too big\r\n")?;
                lingering_close(conn);
                return Ok(());
            }
        }
        let n = if start < end {
            // A command has begun: it has until its deadline, however its bytes trickle in.
            let deadline = *begun.get_or_insert_with(Instant::now) + request_timeout;
            match read_until(conn, &mut buf[end..], deadline) {
                Some(n) => n?,
                None => {
                    (&*conn).write_all(b"-ERR request timeout\r\n")?;
                    lingering_close(conn);
                    return Ok(());
                }
            }
        } else {
            // Waiting for a command to begin: the server's idle timeout bounds this read.
            (&*conn).read(&mut buf[end..])?
        };
        if n == 0 {
            return Ok(());
        }
        end += n;
    }
}

/// Closes a connection the client may still be sending on: stop sending, then read and drop
/// what arrives for up to a second. Closing with unread input would make the kernel reset the
/// connection, which can destroy the last answer before the client reads it.
fn lingering_close(mut conn: &TcpStream) {
    let _ = conn.shutdown(Shutdown::Write);
    let _ = greenlet::with_timeout(Duration::from_secs(1), || {
        let mut sink = [0u8; 4096];
        while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    });
}

/// Starts the server on `port` (0: any free port) and prints where it listens.
pub fn start(port: u16, timeouts: Timeouts) -> io::Result<StreamServer> {
    let db: Db = Rc::default();
    let request = timeouts.request;
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, _peer: SocketAddr| {
        handle(conn, &db, request)
    })?
    .idle_timeout(Some(timeouts.idle));
    println!("listening on {}", server.local_addr());
    server.start()?;
    Ok(server)
}

/// Sends `request` on a new connection and reads until the server closes it.
fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.write_all(request)?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got)?;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// The tour's short self-run: the server on a free port; one client greenlet pipelines a few
/// commands (multibulk and inline, a transaction among them) and QUIT, another sends
/// garbage; prints the replies.
pub fn demo() {
    let server = start(0, TIMEOUTS).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let client = greenlet::spawn(move || {
        let request = b"*3\r\n$3\r\nSET\r\n$7\r\ncounter\r\n$2\r\n41\r\n\
                        INCR counter\r\n\
                        INCRBY counter 10\r\n\
                        *2\r\n$3\r\nGET\r\n$7\r\ncounter\r\n\
                        MSET a 1 b 2\r\n\
                        MGET a b nosuchkey\r\n\
                        PEXPIRE a 5\r\n\
                        EXISTS counter nosuchkey\r\n\
                        ECHO \"hello world\"\r\n\
                        MULTI\r\nINCR counter\r\nGET counter\r\nEXEC\r\n\
                        PING\r\n\
                        QUIT\r\n";
        exchange(addr, request)
    });
    let garbage = greenlet::spawn(move || exchange(addr, b"*1\r\n$x\r\n"));
    let replies = client.get().expect("client greenlet").expect("exchange");
    println!(
        "SET, INCR, INCRBY, GET, MSET, MGET, PEXPIRE, EXISTS, ECHO, MULTI/EXEC, PING, QUIT \
         pipelined -> {:?}",
        replies
    );
    let reply = garbage
        .get()
        .expect("client greenlet")
        .expect("garbage exchange");
    println!(
        "garbage -> {:?}, then the server closed the connection",
        reply.trim_end()
    );
    server.stop(Duration::from_secs(1));
    println!("server stopped");
}

/// Serves on the N hubs of a runtime (`--threads N`), one keyspace for all, until the process
/// is killed.
fn serve_threads(port: u16, threads: usize, timeouts: Timeouts) -> io::Result<()> {
    let rt = greenlet::Runtime::new(threads)?;
    let db: SharedDb = Arc::default();
    let server = StreamServer::start_on(&rt, ("127.0.0.1", port), move |conn, _peer| {
        // The idle timeout, as `StreamServer::idle_timeout` gives it on one hub.
        let _ = conn.set_read_timeout(Some(timeouts.idle));
        let _ = conn.set_write_timeout(Some(timeouts.idle));
        handle(conn, &db, timeouts.request)
    })?;
    println!("listening on {} ({threads} hubs)", server.local_addr());
    server.serve_forever();
    Ok(())
}

/// Serves on the port given as first argument (6379 by default), with `--idle-timeout=SECS`,
/// `--request-timeout=SECS` and `--threads N` if given; or self-runs.
pub fn main() {
    let (port, rest) = match cli::mode("redis_server", 6379) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest),
    };
    let timeouts = Timeouts::from_args(&rest, TIMEOUTS);
    let threads = cli::threads("redis_server");
    if threads > 1 {
        if let Err(e) = serve_threads(port, threads, timeouts) {
            eprintln!("redis_server: cannot serve on port {port}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let server =
        start(port, timeouts).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = server.serve_forever() {
        eprintln!("redis_server: {e}");
    }
}
