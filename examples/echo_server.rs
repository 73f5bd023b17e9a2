//! The reference article's gevent echo server (section 1.2): one greenlet per connection,
//! each running the blocking-looking `handle_request` loop.
//!
//! It prints one line per connection; `--verbose` prints every chunk received, as the
//! article's server does (too slow to measure the server with).
//!
//! ```text
//! cargo run --example echo_server 8001           # then: cargo run --example echo_clients 8001
//! cargo run --example echo_server 8001 --verbose  # every chunk
//! cargo run --example echo_server -- --self-test  # a short self-run
//! ```
//!
//! Python's version, for comparison:
//!
//! ```python
//! def server(port):
//!     s = socket.socket()
//!     s.bind(('0.0.0.0', port))
//!     s.listen(500)
//!     while True:
//!         cli, addr = s.accept()
//!         gevent.spawn(handle_request, cli)
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/echo.rs"]
mod echo;

use std::io::{Read, Write};
use std::time::Duration;

use greenlet::net::TcpStream;

/// The tour's short self-run: the server on a free port and three client greenlets, each
/// sending one line and reading the echo.
pub fn demo() {
    let server = echo::start(0, echo::Log::PerChunk).expect("bind 127.0.0.1:0");
    let addr = server.local_addr();
    let clients: Vec<_> = (0..3)
        .map(|i| {
            greenlet::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let msg = format!("hello {i}");
                s.write_all(msg.as_bytes()).unwrap();
                let mut echo = vec![0; msg.len()];
                s.read_exact(&mut echo).unwrap();
                println!("client {i} got back {:?}", String::from_utf8_lossy(&echo));
            })
        })
        .collect();
    greenlet::joinall(&clients, Some(Duration::from_secs(10)), None).expect("clients finish");
    server.stop(Duration::from_secs(1));
    println!("server stopped");
}

/// Serves on the port given as first argument (8001 by default), printing every chunk with
/// `--verbose`; or self-runs.
pub fn main() {
    let (port, log) = match cli::mode("echo_server", 8001) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => {
            (port, echo::Log::from_args(&rest, echo::Log::PerConnection))
        }
    };
    let server =
        echo::start(port, log).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = server.serve_forever() {
        eprintln!("echo_server: {e}");
    }
}
