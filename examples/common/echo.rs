//! The reference article's gevent echo handler (section 1.2), shared by `echo_server` and
//! `echo_clients` (which starts its own server when given port 0).

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

/// `handle_request(conn)`: echo what comes until the client is done, then shut down the
/// sending side and close. With `verbose`, prints every chunk as the article does.
pub fn handle_request(mut conn: TcpStream, verbose: bool) {
    let mut buf = [0u8; 1024];
    let r: io::Result<()> = (|| loop {
        let n = conn.read(&mut buf)?;
        if verbose {
            println!("recv: {:?}", String::from_utf8_lossy(&buf[..n]));
        }
        if n == 0 {
            return conn.shutdown(Shutdown::Write);
        }
        conn.write_all(&buf[..n])?;
    })();
    if let Err(e) = r {
        println!("{e}");
    }
    // `finally: conn.close()`: dropping the stream closes it.
}

/// `server(port)`: an echo server on 127.0.0.1:`port` (0: any free port), started in the
/// background; prints where it listens.
pub fn start(port: u16, verbose: bool) -> io::Result<StreamServer> {
    let server = StreamServer::bind(("127.0.0.1", port), move |conn, _peer: SocketAddr| {
        handle_request(conn, verbose)
    })?;
    println!("listening on {}", server.local_addr());
    server.start()?;
    Ok(server)
}
