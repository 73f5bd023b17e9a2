//! The reference article's 100 concurrent echo clients (section 1.2, "多线程自发自收"), as 100
//! greenlets on one thread instead of 100 OS threads. Each connects, sends `hello N` for a
//! few rounds and checks that the echo is exactly what it sent.
//!
//! ```text
//! cargo run --example echo_clients 8001          # against a running echo_server
//! cargo run --example echo_clients 0             # starts its own echo server first
//! cargo run --example echo_clients 0 100 5       # port, clients, rounds
//! cargo run --example echo_clients 8001 3 2 --verbose   # print every echo
//! cargo run --example echo_clients -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/echo.rs"]
mod echo;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;

/// `sock_conn()`: one client. Returns how many echoes it checked.
fn sock_conn(id: usize, addr: SocketAddr, rounds: usize, verbose: bool) -> io::Result<usize> {
    let mut client = TcpStream::connect(addr)?;
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    for count in 0..rounds {
        let msg = format!("hello {count}");
        client.write_all(msg.as_bytes())?;
        let mut data = vec![0; msg.len()];
        client.read_exact(&mut data)?;
        if data != msg.as_bytes() {
            return Err(io::Error::other(format!(
                "client {id}: sent {msg:?}, got {:?}",
                String::from_utf8_lossy(&data)
            )));
        }
        if verbose {
            println!("[{id}]recv from server: {}", String::from_utf8_lossy(&data));
        }
    }
    Ok(rounds)
}

/// Runs `clients` greenlets against `addr`; prints a summary; returns the echoes checked.
pub fn run(addr: SocketAddr, clients: usize, rounds: usize, verbose: bool) -> usize {
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| greenlet::spawn(move || sock_conn(id, addr, rounds, verbose)))
        .collect();
    let mut ok = 0;
    for (id, h) in handles.iter().enumerate() {
        match h.get() {
            Ok(Ok(n)) => ok += n,
            Ok(Err(e)) => println!("client {id} failed: {e}"),
            Err(e) => println!("client {id} failed: {e}"),
        }
    }
    println!(
        "{clients} clients x {rounds} messages: {ok} echoes checked in {:.1} ms, on one thread",
        start.elapsed().as_secs_f64() * 1e3
    );
    ok
}

/// The tour's short self-run: an echo server on a free port and 100 client greenlets,
/// 3 rounds each.
pub fn demo() {
    let server = echo::start(0, echo::Log::Quiet).expect("bind 127.0.0.1:0");
    run(server.local_addr(), 100, 3, false);
    server.stop(Duration::from_secs(1));
}

/// Connects to the port given as first argument (0: starts its own echo server), with the
/// number of clients and rounds as optional second and third arguments, printing every echo
/// with `--verbose`; or self-runs.
pub fn main() {
    let (port, rest) = match cli::mode("echo_clients", 8001) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest),
    };
    let verbose = echo::Log::from_args(&rest, echo::Log::Quiet) == echo::Log::PerChunk;
    let rest: Vec<&String> = rest.iter().filter(|a| !a.starts_with("--")).collect();
    let usage = "usage: echo_clients PORT [CLIENTS [ROUNDS]] [--verbose] | --self-test";
    let clients: usize = rest.first().map_or(100, |a| a.parse().expect(usage));
    let rounds: usize = rest.get(1).map_or(3, |a| a.parse().expect(usage));
    let server = (port == 0).then(|| echo::start(0, echo::Log::Quiet).expect("bind 127.0.0.1:0"));
    let addr = match &server {
        Some(s) => s.local_addr(),
        None => SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let ok = run(addr, clients, rounds, verbose);
    if let Some(s) = server {
        s.stop(Duration::from_secs(1));
    }
    if ok != clients * rounds {
        std::process::exit(1);
    }
}
