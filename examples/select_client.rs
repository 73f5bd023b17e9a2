//! The reference article's `select` client (section 2.3): two sockets, each sending a message
//! in three parts and reading back what the server returns, written as the same plain
//! sequential code with green sockets.
//!
//! ```text
//! cargo run --example select_server 10000 &
//! cargo run --example select_client 10000
//! cargo run --example select_client 0              # against its own greenlet echo server
//! cargo run --example select_client -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/echo.rs"]
mod echo;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::TcpStream;

const MESSAGES: [&str; 3] = ["This is the message. ", "It will be sent ", "in parts."];

/// The article's client against `server_address`; returns everything it received.
pub fn run(server_address: SocketAddr) -> io::Result<String> {
    // Create two TCP/IP sockets and connect them to the port where the server is listening.
    println!("connecting to {server_address}");
    let mut socks = [
        TcpStream::connect(server_address)?,
        TcpStream::connect(server_address)?,
    ];
    let mut open = [true, true];
    let mut received = String::new();
    for message in MESSAGES {
        // Send messages on both sockets.
        for s in &mut socks {
            println!("{}: sending {message:?}", s.local_addr()?);
            s.write_all(message.as_bytes())?;
        }
        // Read responses on both sockets.
        for (s, open) in socks.iter_mut().zip(&mut open) {
            if !*open {
                continue;
            }
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut data = [0u8; 1024];
            let n = s.read(&mut data)?;
            let data = String::from_utf8_lossy(&data[..n]);
            println!("{}: received {data:?}", s.local_addr()?);
            received += &data;
            if n == 0 {
                println!("closing socket {}", s.local_addr()?);
                *open = false;
            }
        }
    }
    Ok(received)
}

/// The tour's short self-run: the client against a greenlet echo server on a free port.
pub fn demo() {
    let server = echo::start(0, echo::Log::Quiet).expect("bind 127.0.0.1:0");
    let got = run(server.local_addr()).expect("the client's I/O");
    println!("received in all: {got:?}");
    server.stop(Duration::from_secs(1));
}

/// Connects to the port given as first argument (0: starts its own echo server), or
/// self-runs.
pub fn main() {
    let port = match cli::mode("select_client", 10000) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(0, _) => return demo(),
        cli::Mode::Port(port, _) => port,
    };
    if let Err(e) = run(SocketAddr::from(([127, 0, 0, 1], port))) {
        eprintln!("select_client: {e}");
        std::process::exit(1);
    }
}
