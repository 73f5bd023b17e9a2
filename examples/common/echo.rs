//! The reference article's gevent echo handler (section 1.2), shared by `echo_server` and
//! `echo_clients` (which starts its own server when given port 0).

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

/// What the echo examples print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Nothing.
    Quiet,
    /// One line per connection, when it ends: what it echoed. The default when serving, so
    /// that the server can be measured (formatting every chunk cost 90% of its CPU under load).
    PerConnection,
    /// Every chunk received, as the article's server prints it (`--verbose`), and the line per
    /// connection.
    PerChunk,
}

impl Log {
    /// `PerChunk` when `--verbose` is among `args`, else `default`.
    pub fn from_args(args: &[String], default: Log) -> Log {
        if args.iter().any(|a| a == "--verbose") {
            Log::PerChunk
        } else {
            default
        }
    }
}

/// `handle_request(conn)`: echo what comes until the client is done, then shut down the
/// sending side and close.
pub fn handle_request(mut conn: TcpStream, peer: SocketAddr, log: Log) {
    let mut buf = [0u8; 1024];
    let (mut bytes, mut reads) = (0usize, 0usize);
    let r: io::Result<()> = (|| loop {
        let n = conn.read(&mut buf)?;
        if log == Log::PerChunk {
            println!("recv: {:?}", String::from_utf8_lossy(&buf[..n]));
        }
        if n == 0 {
            return conn.shutdown(Shutdown::Write);
        }
        (bytes, reads) = (bytes + n, reads + 1);
        conn.write_all(&buf[..n])?;
    })();
    if log != Log::Quiet {
        match r {
            Ok(()) => println!("{peer}: echoed {bytes} bytes in {reads} reads"),
            Err(e) => println!("{peer}: {e} after echoing {bytes} bytes in {reads} reads"),
        }
    }
    // `finally: conn.close()`: dropping the stream closes it.
}

/// `server(port)`: an echo server on 127.0.0.1:`port` (0: any free port), started in the
/// background; prints where it listens.
pub fn start(port: u16, log: Log) -> io::Result<StreamServer> {
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, peer: SocketAddr| {
        handle_request(conn, peer, log)
    })?;
    println!("listening on {}", server.local_addr());
    server.start()?;
    Ok(server)
}
