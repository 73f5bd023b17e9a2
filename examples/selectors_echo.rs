//! The reference article's `selectors` echo server (section 2.4), in this crate's terms: a
//! [`greenlet::select::Selector`] holds the listening socket and the connections, each with
//! the callback to run when it is readable (`accept` or `read`), and the loop dispatches
//! whatever `select` reports. `select` parks only the loop's greenlet.
//!
//! `echo_server` is the same server written the greenlet way, one straight-line handler per
//! connection instead of callbacks. The article's Python clients work against both
//! (`python3 tests/py/echo_client.py PORT`, `python3 tests/py/threaded_clients.py PORT`).
//!
//! It prints connections opening and closing; `--verbose` prints every chunk too.
//!
//! ```text
//! cargo run --example selectors_echo 1234
//! cargo run --example selectors_echo 1234 --verbose
//! cargo run --example selectors_echo -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use greenlet::net::{TcpListener, TcpStream};
use greenlet::select::{Interest, Selector};

/// The data registered with each descriptor: which callback handles it.
#[derive(Debug, Clone, Copy)]
enum Callback {
    Accept,
    Read,
}

/// The selector and the connections it watches.
struct Loop {
    sel: Selector<Callback>,
    conns: HashMap<RawFd, (TcpStream, SocketAddr)>,
    /// Print every chunk echoed (`--verbose`), not only connections opening and closing.
    verbose: bool,
}

impl Loop {
    fn accept(&mut self, sock: &TcpListener) -> io::Result<()> {
        let (conn, addr) = match sock.accept() {
            Ok(c) => c, // should be ready
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                println!("accept failed: {e}");
                return Ok(());
            }
        };
        println!("accepted {} from {addr}", conn.as_raw_fd());
        conn.set_nonblocking(true)?;
        self.sel
            .register(&conn, Interest::READABLE, Callback::Read)?;
        self.conns.insert(conn.as_raw_fd(), (conn, addr));
        Ok(())
    }

    fn read(&mut self, fd: RawFd) -> io::Result<()> {
        let Some((conn, addr)) = self.conns.get_mut(&fd) else {
            return Ok(());
        };
        let mut data = [0u8; 1000];
        match conn.read(&mut data) {
            // Should be ready.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Ok(n) if n > 0 => {
                let data = &data[..n];
                if self.verbose {
                    println!("echoing {:?} to {addr}", String::from_utf8_lossy(data));
                }
                // Hope it won't block: the socket is non-blocking, so a full send buffer
                // would lose data, as in the article.
                let _ = conn.write(data);
                Ok(())
            }
            _ => {
                println!("closing {addr}");
                self.sel.unregister(fd)?;
                self.conns.remove(&fd); // closes it
                Ok(())
            }
        }
    }
}

/// The article's loop: `events = sel.select()`, then each ready descriptor's callback. With
/// `verbose`, prints every chunk it echoes, as the article does.
pub fn serve(sock: TcpListener, verbose: bool) -> io::Result<()> {
    sock.set_nonblocking(true)?;
    let mut lp = Loop {
        sel: Selector::new()?,
        conns: HashMap::new(),
        verbose,
    };
    lp.sel
        .register(&sock, Interest::READABLE, Callback::Accept)?;
    loop {
        let events: Vec<(RawFd, Callback)> = lp
            .sel
            .select(None)?
            .iter()
            .map(|(key, _mask)| (key.fd, *key.data))
            .collect();
        for (fd, callback) in events {
            match callback {
                Callback::Accept => lp.accept(&sock)?,
                Callback::Read => lp.read(fd)?,
            }
        }
    }
}

/// Binds 127.0.0.1:`port` (0: any free port) and prints where it listens.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    let sock = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", sock.local_addr()?);
    Ok(sock)
}

/// The tour's short self-run: the selector loop in one greenlet, three client greenlets
/// talking to it on the same thread; the loop is killed at the end.
pub fn demo() {
    let sock = bind(0).expect("bind 127.0.0.1:0");
    let addr = sock.local_addr().unwrap();
    let server = greenlet::spawn(move || serve(sock, true));
    let clients: Vec<_> = (0..3)
        .map(|i| {
            greenlet::spawn(move || -> io::Result<String> {
                let mut s = TcpStream::connect(addr)?;
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let msg = format!("hello from client {i}");
                s.write_all(msg.as_bytes())?;
                let mut echo = vec![0; msg.len()];
                s.read_exact(&mut echo)?;
                Ok(String::from_utf8_lossy(&echo).into_owned())
            })
        })
        .collect();
    for (i, c) in clients.iter().enumerate() {
        let echo = c.get().expect("client greenlet").expect("client I/O");
        println!("client {i} got back {echo:?}");
    }
    greenlet::sleep(Duration::from_millis(10)); // let the loop see the clients close
    server.kill().expect("the selector loop dies");
    println!("selector loop stopped");
}

/// Serves on the port given as first argument (1234 by default), printing every chunk with
/// `--verbose`; or self-runs.
pub fn main() {
    let (port, verbose) = match cli::mode("selectors_echo", 1234) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest.iter().any(|a| a == "--verbose")),
    };
    let sock = bind(port).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = serve(sock, verbose) {
        eprintln!("selectors_echo: {e}");
    }
}
