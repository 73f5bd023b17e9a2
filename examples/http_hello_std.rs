//! `http_hello` written with plain `std::net` (no green type anywhere) and made concurrent by
//! `greenlet::monkey::patch_all()`: one greenlet per connection, each blocking in std's
//! `accept`, `read` and `write`, which the hooks turn into parks on the hub. Same handler as
//! `http_hello` (its `serve` takes any socket type); the bench harness compares the two.
//!
//! ```text
//! cargo run --release --features monkey --example http_hello_std 8080
//! wrk -t1 -c100 -d5s http://127.0.0.1:8080/
//! cargo run --features monkey --example http_hello_std -- --self-test
//! ```

// `http_hello`, included for its handler, brings its own copy of the command-line helper.
#![allow(clippy::duplicate_mod)]

#[path = "common/cli.rs"]
mod cli;
#[path = "http_hello.rs"]
#[allow(dead_code)] // its own server and demo are not used here, only `serve`
mod hello;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Closes a connection the client may still be sending on (see `http_hello`), with std's own
/// read timeout bounding the drain.
fn lingering_close(mut conn: &TcpStream) {
    let _ = conn.shutdown(Shutdown::Write);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut sink = [0u8; 4096];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

/// Binds `port` (0: any free port), prints where, and serves in a greenlet until the
/// listener fails.
pub fn start(port: u16) -> io::Result<SocketAddr> {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    greenlet::spawn(move || {
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    // As `http_hello`'s server does (gevent's `socket.settimeout`): an idle
                    // client is let go, a request that has begun has a deadline.
                    let timeouts = hello::TIMEOUTS;
                    let _ = conn.set_read_timeout(Some(timeouts.idle));
                    let _ = conn.set_write_timeout(Some(timeouts.idle));
                    greenlet::spawn(move || hello::serve(&conn, lingering_close, timeouts.request));
                }
                Err(e) => {
                    eprintln!("http_hello_std: accept: {e}");
                    return;
                }
            }
        }
    });
    Ok(addr)
}

/// The short self-run: a server, a client sending two pipelined requests (the last says
/// `Connection: close`), plain std all the way.
pub fn demo() {
    let addr = start(0).expect("bind 127.0.0.1:0");
    let client = greenlet::spawn(move || -> io::Result<String> {
        let mut conn = TcpStream::connect(addr)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        )?;
        let mut got = String::new();
        conn.read_to_string(&mut got)?;
        Ok(got)
    });
    let answers = client.get().expect("client greenlet").expect("exchange");
    println!(
        "two pipelined GETs over std::net -> {} x `200 OK`, {} bodies",
        answers.matches("HTTP/1.1 200 OK").count(),
        answers.matches("Hello, World!").count()
    );
}

/// Serves on the port given as first argument (8080 by default), or self-runs.
pub fn main() {
    let port = match cli::mode("http_hello_std", 8080) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, _) => port,
    };
    start(port).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    // Main parks here for good; the hub serves the connections meanwhile.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
