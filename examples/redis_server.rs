//! A small Redis-compatible server: PING, ECHO, GET, SET (with EX/PX), MGET, MSET, DEL,
//! EXISTS, INCR, DECR, INCRBY, DECRBY, EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, DBSIZE and QUIT,
//! plus the handshakes clients send with their defaults (redis-cli's COMMAND DOCS,
//! redis-benchmark's CONFIG GET, redis-py's HELLO 3, CLIENT SETINFO and SELECT); inline and
//! multibulk requests, pipelining. The unmodified `redis-cli`, `redis-benchmark` and redis-py talk to it.
//!
//! Each connection is straight-line code in its own greenlet: read into one buffer, run every
//! complete command in it, write all the replies with one `write`, read again. The keyspace
//! and the commands are in `common/keyspace.rs`: on one hub the connections share it without
//! a lock; with `--threads N` the server runs on the N hubs of a [`greenlet::Runtime`] and the
//! keyspace is one `greenlet::sync::Mutex` shared by them, held for one command at a time.
//! Keys with a deadline are deleted by a greenlet that sleeps on the hub's timers.
//!
//! ```text
//! cargo run --release --example redis_server 6379
//! cargo run --release --example redis_server -- 6379 --threads 2
//! redis-cli -p 6379 set greeting hello; redis-cli -p 6379 get greeting
//! redis-benchmark -p 6379 -t ping_inline,ping_mbulk,set,get -P 16
//! cargo run --example redis_server -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/keyspace.rs"]
mod keyspace;
#[path = "common/resp.rs"]
mod resp;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

pub use keyspace::{Db, Keyspace, SharedDb, execute};

/// The initial read buffer of a connection; it grows for large requests, up to
/// [`MAX_REQUEST`].
const BUF_SIZE: usize = 16 << 10;
/// The largest single request (all its arguments) a connection may send.
const MAX_REQUEST: usize = 2 * resp::MAX_BULK + (64 << 10);

/// Serves one connection until the client quits or closes, or breaks the protocol.
pub fn handle(conn: TcpStream, db: &impl Keyspace) {
    let _ = serve(&conn, db);
}

fn serve(mut conn: &TcpStream, db: &impl Keyspace) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut out: Vec<u8> = Vec::with_capacity(BUF_SIZE);
    let mut args: Vec<Range<usize>> = Vec::with_capacity(8);
    // Unparsed bytes are buf[start..end].
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        let mut close = false;
        while start < end {
            match resp::parse(&buf[start..end], &mut args) {
                Ok(Some(n)) => {
                    close = execute(&buf[start..start + n], &args, db, &mut out);
                    start += n;
                    if close {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    out.extend_from_slice(e.reply());
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
            if out.capacity() > 4 * BUF_SIZE {
                out.shrink_to(BUF_SIZE);
            }
        }
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
                conn.write_all(b"-ERR Protocol error: request too big\r\n")?;
                lingering_close(conn);
                return Ok(());
            }
        }
        let n = conn.read(&mut buf[end..])?;
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
pub fn start(port: u16) -> io::Result<StreamServer> {
    let db: Db = Rc::default();
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, _peer: SocketAddr| {
        handle(conn, &db)
    })?;
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
    let server = start(0).expect("bind 127.0.0.1:0");
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
                        PING\r\n\
                        QUIT\r\n";
        exchange(addr, request)
    });
    let garbage = greenlet::spawn(move || exchange(addr, b"*1\r\n$x\r\n"));
    let replies = client.get().expect("client greenlet").expect("exchange");
    println!(
        "SET, INCR, INCRBY, GET, MSET, MGET, PEXPIRE, EXISTS, ECHO, PING, QUIT pipelined -> {:?}",
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
fn serve_threads(port: u16, threads: usize) -> io::Result<()> {
    let rt = greenlet::Runtime::new(threads)?;
    let db: SharedDb = Arc::default();
    let server = StreamServer::start_on(&rt, ("127.0.0.1", port), move |conn, _peer| {
        handle(conn, &db)
    })?;
    println!("listening on {} ({threads} hubs)", server.local_addr());
    server.serve_forever();
    Ok(())
}

/// Serves on the port given as first argument (6379 by default), or self-runs.
pub fn main() {
    let port = match cli::mode("redis_server", 6379) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, _) => port,
    };
    let threads = cli::threads("redis_server");
    if threads > 1 {
        if let Err(e) = serve_threads(port, threads) {
            eprintln!("redis_server: cannot serve on port {port}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let server = start(port).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = server.serve_forever() {
        eprintln!("redis_server: {e}");
    }
}
