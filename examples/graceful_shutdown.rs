//! Graceful shutdown: a greenlet waits for `SIGTERM` (or `SIGINT`, Ctrl-C) with
//! `greenlet::signal::Signals` and stops a `StreamServer` with `stop(grace)`: the listener
//! closes at once, requests in progress get the grace period to finish, and handlers still
//! running after it are killed (their sockets close).
//!
//! ```text
//! cargo run --example graceful_shutdown 8003 [GRACE_MS]   # then: kill -TERM <pid>
//! cargo run --example graceful_shutdown -- --self-test     # a short self-run
//! ```
//!
//! The server answers each line `JOB` with `done: JOB` after 100 ms of "work".

#[path = "common/cli.rs"]
mod cli;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;
use greenlet::signal::Signals;

/// How long a job takes.
const WORK: Duration = Duration::from_millis(100);

/// Reads lines and answers each after `WORK`, until the client is done.
fn handle(conn: TcpStream, _peer: SocketAddr) {
    let mut writer = match conn.try_clone() {
        Ok(w) => w,
        Err(e) => return println!("cannot clone the connection: {e}"),
    };
    for line in BufReader::new(conn).lines() {
        let Ok(job) = line else { return };
        println!("working on {job}");
        greenlet::sleep(WORK);
        if writer
            .write_all(format!("done: {job}\n").as_bytes())
            .is_err()
        {
            return;
        }
    }
}

/// Starts the server on `port` (0: any free port) and prints where it listens.
fn start(port: u16) -> StreamServer {
    let server = StreamServer::bind(("127.0.0.1", port), handle)
        .unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    println!("listening on {}", server.local_addr());
    server.start().expect("start the accept loop");
    server
}

/// Parks until `SIGTERM` or `SIGINT`, then stops `server` with `grace`; returns how many
/// handlers were cut off.
fn shut_down_on_signal(signals: &Signals, server: &StreamServer, grace: Duration) -> usize {
    let signo = signals.recv().expect("wait for a signal");
    let name = if signo == libc::SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    };
    println!(
        "{name}: stopping, {} connection(s) open, {} ms of grace",
        server.connection_count(),
        grace.as_millis()
    );
    let cut_off = server.stop(grace);
    println!("stopped: {cut_off} handler(s) cut off");
    cut_off
}

/// The tour's self-run: two clients, one mid-request when the process sends itself
/// `SIGTERM`, one idle; the first gets its answer, the second is cut off after the grace.
pub fn demo() {
    let signals = Signals::new(&[libc::SIGTERM, libc::SIGINT]).expect("catch SIGTERM");
    let server = start(0);
    let addr = server.local_addr();
    let busy = greenlet::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"report\n").unwrap();
        let mut answer = String::new();
        BufReader::new(s).read_line(&mut answer).unwrap();
        println!("busy client got {:?}", answer.trim_end());
    });
    let idle = greenlet::spawn(move || {
        let s = TcpStream::connect(addr).expect("connect");
        let mut rest = String::new();
        let n = BufReader::new(s).read_line(&mut rest).unwrap_or(0);
        println!("idle client: connection closed by the server ({n} bytes)");
    });
    // Once the job is in progress, the process signals itself, as `kill -TERM` would.
    greenlet::sleep(WORK / 2);
    // SAFETY: raising a signal for which `signals` has a handler installed.
    unsafe { libc::raise(libc::SIGTERM) };
    let cut_off = shut_down_on_signal(&signals, &server, Duration::from_millis(300));
    busy.join().unwrap();
    idle.join().unwrap();
    assert_eq!(cut_off, 1, "the idle connection is cut off");
    match TcpStream::connect(addr) {
        Ok(_) => println!("a new client was accepted after the stop?"),
        Err(_) => println!("new clients are refused"),
    }
}

/// Serves on the port given as first argument (0: any free port) until `SIGTERM` or `SIGINT`,
/// or self-runs.
pub fn main() {
    let (port, rest) = match cli::mode_or_self_run("graceful_shutdown") {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest),
    };
    let grace = rest
        .first()
        .map(|ms| Duration::from_millis(ms.parse().expect("GRACE_MS: a number")))
        .unwrap_or(Duration::from_secs(5));
    // Catch the signals before accepting anyone, so that none is missed.
    let signals = Signals::new(&[libc::SIGTERM, libc::SIGINT]).expect("catch SIGTERM");
    let server = start(port);
    println!("pid {}", std::process::id());
    shut_down_on_signal(&signals, &server, grace);
}
