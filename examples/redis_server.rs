//! A small Redis-compatible server: PING, ECHO, SET, GET, DEL, INCR, EXISTS (and QUIT, plus
//! the CONFIG GET / COMMAND handshakes of redis-cli and redis-benchmark), inline and multibulk
//! requests, pipelining. The unmodified `redis-cli` and `redis-benchmark` talk to it.
//!
//! Each connection is straight-line code in its own greenlet: read into one buffer, run every
//! complete command in it, write the replies, read again. On one hub the keyspace is an
//! `Rc<RefCell<HashMap>>` shared by all connections: they all run on one thread, so there is no
//! lock, and no command is interrupted half-way (a greenlet only switches when it blocks, and a
//! command blocks, if at all, only to write its reply, after it has read or changed the
//! keyspace; a large value is written from a shared snapshot, without a borrow of the
//! keyspace across the write). With `--threads N` the server runs on the N hubs of a
//! [`greenlet::Runtime`] and the keyspace is one `greenlet::sync::Mutex` shared by them, held
//! for one command at a time (never across a write).
//!
//! Memory per connection is bounded, whatever the client asks or how slowly it reads: replies
//! are gathered into one buffer (so pipelined commands are answered with few writes) that is
//! written out as soon as it passes [`FLUSH_AT`]; a large value is written straight from the
//! keyspace. While a write waits for the client to read, the connection reads no more commands:
//! a client that does not read its replies is held back by TCP, not buffered here. The request
//! buffer is bounded by [`MAX_REQUEST`]. An idle connection is closed after `--idle-timeout`
//! (like redis-server's `timeout`), and a command that has begun must arrive whole within
//! `--request-timeout`.
//!
//! ```text
//! cargo run --release --example redis_server 6379
//! cargo run --release --example redis_server 6379 --idle-timeout=300 --request-timeout=10
//! cargo run --release --example redis_server -- 6379 --threads 2
//! redis-cli -p 6379 set greeting hello; redis-cli -p 6379 get greeting
//! redis-benchmark -p 6379 -t ping_inline,ping_mbulk,set,get -P 16
//! cargo run --example redis_server -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/limits.rs"]
mod limits;
#[path = "common/resp.rs"]
mod resp;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

use self::limits::{Timeouts, read_until};

/// String keys to string values. A value is shared (`Arc`), so that a GET of a large value can
/// write it after the keyspace is let go; SET changes it in place unless such a write still
/// holds it.
pub type Map = HashMap<Vec<u8>, Arc<Vec<u8>>>;

/// The keyspace of one hub: no lock, the hub's connections take turns.
pub type Db = Rc<RefCell<Map>>;

/// The keyspace shared by the hubs of a runtime.
pub type SharedDb = Arc<greenlet::sync::Mutex<Map>>;

/// A keyspace a command runs against, with exclusive access for the length of `f`.
pub trait Keyspace {
    /// Runs `f` on the map.
    fn with<R>(&self, f: impl FnOnce(&mut Map) -> R) -> R;
}

impl Keyspace for Db {
    fn with<R>(&self, f: impl FnOnce(&mut Map) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

impl Keyspace for SharedDb {
    fn with<R>(&self, f: impl FnOnce(&mut Map) -> R) -> R {
        // Never held across a blocking call (`f` never blocks), so the lock is only ever
        // waited for by the other hubs, for one command.
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The initial read buffer of a connection; it grows for large requests, up to
/// [`MAX_REQUEST`].
const BUF_SIZE: usize = 16 << 10;
/// The largest single request (all its arguments) a connection may send.
const MAX_REQUEST: usize = 2 * resp::MAX_BULK + (64 << 10);
/// Replies are written out once this many bytes are waiting.
pub const FLUSH_AT: usize = 64 << 10;

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

/// The replies on their way to one client.
struct Replies<'a> {
    conn: &'a TcpStream,
    buf: Vec<u8>,
}

impl Replies<'_> {
    /// Writes the waiting replies once there are [`FLUSH_AT`] bytes of them.
    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every waiting reply (waiting, green, while the client does not read).
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let mut conn = self.conn;
            conn.write_all(&self.buf)?;
            self.buf.clear();
            if self.buf.capacity() > 4 * FLUSH_AT {
                self.buf.shrink_to(FLUSH_AT);
            }
        }
        Ok(())
    }

    /// A bulk string reply; a large one is written straight from `v`, not copied.
    fn bulk(&mut self, v: &[u8]) -> io::Result<()> {
        if v.len() < FLUSH_AT {
            bulk(&mut self.buf, v);
            return self.flush_if_full();
        }
        let _ = write!(self.buf, "${}\r\n", v.len());
        self.flush()?;
        let mut conn = self.conn;
        conn.write_all(v)?;
        self.buf.extend_from_slice(b"\r\n");
        Ok(())
    }
}

fn serve(conn: &TcpStream, db: &impl Keyspace, request_timeout: Duration) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut out = Replies {
        conn,
        buf: Vec::with_capacity(BUF_SIZE),
    };
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
                    close = execute(&buf[start..start + n], &args, db, &mut out)?;
                    start += n;
                    if close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.buf.extend_from_slice(e.reply());
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

fn bulk(out: &mut Vec<u8>, v: &[u8]) {
    let _ = write!(out, "${}\r\n", v.len());
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

fn int(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, ":{n}\r\n");
}

fn wrong_arity(out: &mut Vec<u8>, cmd: &str) {
    let _ = write!(
        out,
        "-ERR wrong number of arguments for '{cmd}' command\r\n"
    );
}

/// Runs one command (`args` are ranges of `req`), adding its reply to `replies`. Returns
/// whether the connection is to be closed (QUIT).
fn execute(
    req: &[u8],
    args: &[Range<usize>],
    db: &impl Keyspace,
    replies: &mut Replies<'_>,
) -> io::Result<bool> {
    let Some(first) = args.first() else {
        return Ok(false); // an empty line or `*0`: nothing to answer
    };
    let arg = |i: usize| &req[args[i].clone()];
    let cmd = &req[first.clone()];
    let is = |name: &str| cmd.eq_ignore_ascii_case(name.as_bytes());
    let n = args.len();
    if is("get") && n == 2 {
        // A small value is copied into the replies; a large one is written after the keyspace
        // is let go, straight from a shared snapshot (the write may wait for the client).
        let out = &mut replies.buf;
        let large = db.with(|db| match db.get(arg(1)) {
            Some(v) if v.len() >= FLUSH_AT => Some(v.clone()),
            Some(v) => {
                bulk(out, v);
                None
            }
            None => {
                out.extend_from_slice(b"$-1\r\n");
                None
            }
        });
        if let Some(v) = large {
            replies.bulk(&v)?;
        }
        return replies.flush_if_full().map(|()| false);
    }
    if is("echo") && n == 2 {
        replies.bulk(arg(1))?;
        return replies.flush_if_full().map(|()| false);
    }
    let out = &mut replies.buf;
    if is("ping") {
        match n {
            1 => out.extend_from_slice(b"+PONG\r\n"),
            2 => bulk(out, arg(1)),
            _ => wrong_arity(out, "ping"),
        }
    } else if is("get") {
        wrong_arity(out, "get");
    } else if is("set") {
        if n < 3 {
            wrong_arity(out, "set");
        } else if n > 3 {
            out.extend_from_slice(b"-ERR syntax error\r\n");
        } else {
            db.with(|db| match db.get_mut(arg(1)) {
                Some(v) => {
                    // In place, unless a GET is still writing the old value.
                    let v = Arc::make_mut(v);
                    v.clear();
                    v.extend_from_slice(arg(2));
                }
                None => {
                    db.insert(arg(1).to_vec(), Arc::new(arg(2).to_vec()));
                }
            });
            out.extend_from_slice(b"+OK\r\n");
        }
    } else if is("echo") {
        wrong_arity(out, "echo")
    } else if is("del") || is("exists") {
        let del = is("del");
        if n < 2 {
            wrong_arity(out, if del { "del" } else { "exists" });
        } else {
            let count = db.with(|db| {
                (1..n)
                    .filter(|&i| {
                        if del {
                            db.remove(arg(i)).is_some()
                        } else {
                            db.contains_key(arg(i))
                        }
                    })
                    .count()
            });
            int(out, count as i64);
        }
    } else if is("incr") {
        if n != 2 {
            wrong_arity(out, "incr");
        } else {
            db.with(|db| incr(db, arg(1), out));
        }
    } else if is("quit") {
        out.extend_from_slice(b"+OK\r\n");
        return Ok(true);
    } else if is("config") && n == 3 && arg(1).eq_ignore_ascii_case(b"get") {
        // redis-benchmark asks for `save` and `appendonly` before it starts: nothing is
        // saved here.
        let value: Option<&[u8]> = match arg(2) {
            p if p.eq_ignore_ascii_case(b"save") => Some(b""),
            p if p.eq_ignore_ascii_case(b"appendonly") => Some(b"no"),
            _ => None,
        };
        match value {
            Some(v) => {
                out.extend_from_slice(b"*2\r\n");
                bulk(out, arg(2));
                bulk(out, v);
            }
            None => out.extend_from_slice(b"*0\r\n"),
        }
    } else if is("command") {
        // redis-cli asks for command docs: none here.
        out.extend_from_slice(b"*0\r\n");
    } else {
        unknown(out, req, args);
    }
    replies.flush_if_full().map(|()| false)
}

fn incr(db: &mut Map, key: &[u8], out: &mut Vec<u8>) {
    let old = match db.get(key) {
        None => 0,
        Some(v) => match std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        {
            Some(i) if v.first() != Some(&b'+') => i,
            _ => {
                out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n");
                return;
            }
        },
    };
    let Some(new) = old.checked_add(1) else {
        out.extend_from_slice(b"-ERR increment or decrement would overflow\r\n");
        return;
    };
    let v = Arc::make_mut(db.entry(key.to_vec()).or_default());
    v.clear();
    let _ = write!(v, "{new}");
    int(out, new);
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as redis-server says it,
/// with names cut short and made printable.
fn unknown(out: &mut Vec<u8>, req: &[u8], args: &[Range<usize>]) {
    let show = |r: &Range<usize>| -> String {
        String::from_utf8_lossy(&req[r.clone()])
            .chars()
            .take(128)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let _ = write!(
        out,
        "-ERR unknown command '{}', with args beginning with: ",
        show(&args[0])
    );
    for a in args.iter().skip(1).take(8) {
        let _ = write!(out, "'{}' ", show(a));
    }
    out.extend_from_slice(b"\r\n");
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
/// commands (multibulk and inline) and QUIT, another sends garbage; prints the replies.
pub fn demo() {
    let server = start(0, TIMEOUTS).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let client = greenlet::spawn(move || {
        let request = b"*3\r\n$3\r\nSET\r\n$7\r\ncounter\r\n$2\r\n41\r\n\
                        INCR counter\r\n\
                        *2\r\n$3\r\nGET\r\n$7\r\ncounter\r\n\
                        EXISTS counter nosuchkey\r\n\
                        ECHO \"hello world\"\r\n\
                        PING\r\n\
                        QUIT\r\n";
        exchange(addr, request)
    });
    let garbage = greenlet::spawn(move || exchange(addr, b"*1\r\n$x\r\n"));
    let replies = client.get().expect("client greenlet").expect("exchange");
    println!(
        "SET, INCR, GET, EXISTS, ECHO, PING, QUIT pipelined -> {:?}",
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
