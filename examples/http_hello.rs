//! An HTTP/1.1 keep-alive server answering `Hello, World!`, one greenlet per connection.
//!
//! The handler is straight-line code over one read buffer (on the greenlet's stack): parse
//! every complete request in the buffer in place, answer them all with one `write` (so
//! pipelined requests are answered in order, in one system call), read again. Nothing is
//! allocated per request. Bad requests get an error status and the connection is closed; the
//! server goes on serving the others.
//!
//! A server read as a model must also let go of clients: an answer says `Connection: close`
//! when the server will close (the client asked, or spoke HTTP/1.0 without keep-alive); an
//! idle keep-alive connection is closed after `--idle-timeout` (the server's
//! [`StreamServer::idle_timeout`]), and a request that has begun must arrive whole within
//! `--request-timeout`, however slowly its bytes trickle in (`408 Request Timeout`).
//!
//! With `--threads N` it serves on the N hubs of a [`greenlet::Runtime`], one `SO_REUSEPORT`
//! listener each: the kernel spreads connections over the hubs, and each hub serves its own.
//!
//! ```text
//! cargo run --release --example http_hello 8080     # then: curl -v http://127.0.0.1:8080/
//! cargo run --release --example http_hello 8080 --idle-timeout=5 --request-timeout=2
//! wrk -t1 -c100 -d5s http://127.0.0.1:8080/
//! cargo run --release --example http_hello -- 8080 --threads 2   # one hub per core
//! cargo run --example http_hello -- --self-test      # a short self-run
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/http.rs"]
mod http;
#[path = "common/limits.rs"]
mod limits;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

pub use self::limits::Timeouts;
use self::limits::read_until;

use self::http::{Parse, Request};

/// One answer in its three forms, by how the connection goes on: HTTP/1.1 keep-alive (the
/// default, no header), closing (`Connection: close`), HTTP/1.0 keep-alive
/// (`Connection: keep-alive`, which a 1.0 client needs to keep the connection).
macro_rules! answer {
    ($status:literal, $headers:literal, $body:literal) => {
        [
            concat!("HTTP/1.1 ", $status, "\r\n", $headers, "\r\n", $body).as_bytes(),
            concat!(
                "HTTP/1.1 ",
                $status,
                "\r\n",
                $headers,
                "Connection: close\r\n\r\n",
                $body
            )
            .as_bytes(),
            concat!(
                "HTTP/1.1 ",
                $status,
                "\r\n",
                $headers,
                "Connection: keep-alive\r\n\r\n",
                $body
            )
            .as_bytes(),
        ]
    };
}

const HELLO: [&[u8]; 3] = answer!(
    "200 OK",
    "Content-Length: 13\r\nContent-Type: text/plain\r\n",
    "Hello, World!"
);
const HELLO_HEAD: [&[u8]; 3] = answer!(
    "200 OK",
    "Content-Length: 13\r\nContent-Type: text/plain\r\n",
    ""
);
const NOT_ALLOWED: [&[u8]; 3] = answer!(
    "405 Method Not Allowed",
    "Allow: GET, HEAD\r\nContent-Length: 19\r\n",
    "Method Not Allowed\n"
);
const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 16\r\nConnection: close\r\n\r\nRequest Timeout\n";

/// Which form of an answer a request gets (an index into the arrays above).
fn form(req: &Request<'_>) -> usize {
    match (req.keep_alive, req.minor) {
        (false, _) => 1,
        (true, 0) => 2,
        (true, _) => 0,
    }
}

/// How long the server waits for clients by default.
pub const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(60),
    request: Duration::from_secs(10),
};

/// Serves one connection until the client closes it, asks to close, misbehaves, or is too
/// slow.
pub fn handle(conn: TcpStream, _peer: SocketAddr, request_timeout: Duration) {
    let _ = serve(&conn, lingering_close, request_timeout);
}

/// The connection loop, for any socket type whose references read and write (this example's
/// green `TcpStream`, or std's in `http_hello_std`); `close_gently` ends a connection the
/// client may still be sending on; a request that has begun must arrive whole within
/// `request_timeout`.
pub fn serve<S>(conn: &S, close_gently: fn(&S), request_timeout: Duration) -> io::Result<()>
where
    for<'a> &'a S: Read + Write,
{
    // The read buffer lives on the greenlet's stack, next to the frames that are touched
    // anyway when the greenlet resumes: no extra page per request.
    let mut buf = [0u8; http::MAX_HEAD];
    let mut out = Answers::default();
    // Unparsed bytes are buf[start..end]; `discard` body bytes are still to be skipped.
    let (mut start, mut end, mut discard) = (0usize, 0usize, 0usize);
    // When the request now arriving began to (None: no request has begun).
    let mut begun: Option<Instant> = None;
    loop {
        let mut close = false;
        loop {
            if discard > 0 {
                let n = discard.min(end - start);
                start += n;
                discard -= n;
                if discard > 0 {
                    break;
                }
            }
            match http::parse(&buf[start..end]) {
                Parse::Complete(req) => {
                    let form = form(&req);
                    match req.method {
                        b"GET" => out.push(HELLO[form]),
                        b"HEAD" => out.push(HELLO_HEAD[form]),
                        _ => out.push(NOT_ALLOWED[form]),
                    }
                    begun = None;
                    start += req.head_len;
                    discard = req.content_length;
                    if !req.keep_alive {
                        close = true;
                        break;
                    }
                }
                Parse::Partial => break,
                Parse::Error(status) => {
                    out.push(status.response());
                    close = true;
                    break;
                }
            }
        }
        out.write_to(conn)?;
        if close {
            close_gently(conn);
            return Ok(());
        }
        if start == end {
            (start, end) = (0, 0);
        } else if start > 0 && end == buf.len() {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let n = if start < end || discard > 0 {
            // A request has begun: it has until its deadline, however its bytes trickle in.
            let deadline = *begun.get_or_insert_with(Instant::now) + request_timeout;
            match read_until(conn, &mut buf[end..], deadline) {
                Some(n) => n?,
                None => {
                    (&*conn).write_all(REQUEST_TIMEOUT)?;
                    close_gently(conn);
                    return Ok(());
                }
            }
        } else {
            // Waiting for a request to begin: the server's idle timeout bounds this read.
            (&*conn).read(&mut buf[end..])?
        };
        if n == 0 {
            return Ok(());
        }
        end += n;
    }
}

/// The answers to the requests found in one read. Usually there is one, written straight
/// from its static bytes; pipelined requests get theirs gathered into one buffer, written
/// with one call, in order.
#[derive(Default)]
struct Answers {
    first: Option<&'static [u8]>,
    more: Vec<u8>,
}

impl Answers {
    fn push(&mut self, answer: &'static [u8]) {
        if self.first.is_none() && self.more.is_empty() {
            self.first = Some(answer);
        } else {
            if let Some(first) = self.first.take() {
                self.more.extend_from_slice(first);
            }
            self.more.extend_from_slice(answer);
        }
    }

    fn write_to<S>(&mut self, mut conn: &S) -> io::Result<()>
    where
        for<'a> &'a S: Write,
    {
        if let Some(first) = self.first.take() {
            conn.write_all(first)
        } else if !self.more.is_empty() {
            let r = conn.write_all(&self.more);
            self.more.clear();
            r
        } else {
            Ok(())
        }
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
    let request = timeouts.request;
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, peer| {
        handle(conn, peer, request)
    })?
    .idle_timeout(Some(timeouts.idle));
    println!("listening on {}", server.local_addr());
    server.start()?;
    Ok(server)
}

/// Sends `request` on a new connection and reads everything until the server closes it.
fn exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.write_all(request)?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got)?;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// The tour's short self-run: a server on a free port, a client greenlet sending three
/// pipelined requests (the last says `Connection: close`), another sending garbage; prints
/// what came back and stops the server.
pub fn demo() {
    let server = start(0, TIMEOUTS).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let pipelined = greenlet::spawn(move || {
        exchange(addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    });
    let garbage = greenlet::spawn(move || exchange(addr, b"\x16\x03\x01 hello?\r\n\r\n"));
    let answers = pipelined
        .get()
        .expect("client greenlet")
        .expect("pipelined exchange");
    println!(
        "GET, HEAD, GET pipelined on one connection -> {} x `200 OK`, {} bodies, in order; \
         the last says `Connection: close` {} time(s)",
        answers.matches("HTTP/1.1 200 OK").count(),
        answers.matches("Hello, World!").count(),
        answers.matches("Connection: close").count()
    );
    let answer = garbage
        .get()
        .expect("client greenlet")
        .expect("garbage exchange");
    println!(
        "garbage -> {:?}, then the server closed the connection",
        answer.lines().next().unwrap_or("")
    );
    server.stop(Duration::from_secs(1));
    println!("server stopped");
}

/// Serves on the N hubs of a runtime (`--threads N`) until the process is killed.
fn serve_threads(port: u16, threads: usize, timeouts: Timeouts) -> io::Result<()> {
    let rt = greenlet::Runtime::new(threads)?;
    let server = StreamServer::start_on(&rt, ("127.0.0.1", port), move |conn, peer| {
        // The idle timeout, as `StreamServer::idle_timeout` gives it on one hub.
        let _ = conn.set_read_timeout(Some(timeouts.idle));
        let _ = conn.set_write_timeout(Some(timeouts.idle));
        handle(conn, peer, timeouts.request)
    })?;
    println!("listening on {} ({threads} hubs)", server.local_addr());
    server.serve_forever();
    Ok(())
}

/// Serves on the port given as first argument (8080 by default), with `--idle-timeout=SECS`,
/// `--request-timeout=SECS` and `--threads N` if given; or self-runs.
pub fn main() {
    let (port, rest) = match cli::mode("http_hello", 8080) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest),
    };
    let timeouts = Timeouts::from_args(&rest, TIMEOUTS);
    let threads = cli::threads("http_hello");
    if threads > 1 {
        if let Err(e) = serve_threads(port, threads, timeouts) {
            eprintln!("http_hello: cannot serve on port {port}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let server =
        start(port, timeouts).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = server.serve_forever() {
        eprintln!("http_hello: {e}");
    }
}
