//! The reference article's `select` echo server (section 2.3), in this crate's terms: the same
//! event loop over `inputs`, `outputs` and per-socket message queues, with
//! [`greenlet::select::select`] in place of Python's `select.select`.
//!
//! The loop blocks in `select`, which parks only its own greenlet: other greenlets (the
//! self-run's clients, for one) keep running on the same thread meanwhile. The article's own
//! Python client works against it (`python3 tests/py/select_client.py PORT`), as does
//! `select_client`, its Rust port.
//!
//! It prints connections opening and closing; `--verbose` prints every chunk received and
//! sent, as the article's does.
//!
//! ```text
//! cargo run --example select_server 10000       # then: cargo run --example select_client 10000
//! cargo run --example select_server 10000 --verbose
//! cargo run --example select_server -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use greenlet::net::{TcpListener, TcpStream};
use greenlet::select::{Selectable, select};

/// A client connection with its queue of data to send back (`message_queues[s]`).
struct Client {
    sock: TcpStream,
    addr: SocketAddr,
    queue: VecDeque<Vec<u8>>,
}

/// The article's loop: serves until the listener fails (or the greenlet is killed). With
/// `verbose`, prints every chunk received and sent, as the article does; otherwise only
/// connections opening and closing.
pub fn serve(server: TcpListener, verbose: bool) -> io::Result<()> {
    server.set_nonblocking(true)?; // server.setblocking(False)
    let server_fd = server.as_raw_fd();
    // Sockets from which we expect to read, and to which we expect to write.
    let mut inputs: Vec<RawFd> = vec![server_fd];
    let mut outputs: Vec<RawFd> = Vec::new();
    let mut clients: HashMap<RawFd, Client> = HashMap::new();

    while !inputs.is_empty() {
        // Wait for at least one of the sockets to be ready for processing.
        if verbose {
            println!("\nwaiting for the next event");
        }
        let (readable, writable) = {
            let socket = |fd: &RawFd| -> &dyn Selectable {
                if *fd == server_fd {
                    &server
                } else {
                    &clients[fd].sock
                }
            };
            let r: Vec<&dyn Selectable> = inputs.iter().map(socket).collect();
            let w: Vec<&dyn Selectable> = outputs.iter().map(socket).collect();
            let (r_idx, w_idx) = select(&r, &w, None)?;
            let pick = |list: &[RawFd], idx: Vec<usize>| -> Vec<RawFd> {
                idx.into_iter().map(|i| list[i]).collect()
            };
            (pick(&inputs, r_idx), pick(&outputs, w_idx))
        };

        // Handle inputs.
        for s in readable {
            if s == server_fd {
                // A "readable" server socket is ready to accept a connection.
                let (connection, client_address) = match server.accept() {
                    Ok(c) => c,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        println!("accept failed: {e}");
                        continue;
                    }
                };
                println!("new connection from {client_address}");
                connection.set_nonblocking(true)?;
                let fd = connection.as_raw_fd();
                inputs.push(fd);
                // Give the connection a queue for data we want to send.
                clients.insert(
                    fd,
                    Client {
                        sock: connection,
                        addr: client_address,
                        queue: VecDeque::new(),
                    },
                );
            } else {
                let client = clients.get_mut(&s).expect("an input is a client");
                let mut data = [0u8; 1024];
                match client.sock.read(&mut data) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(n) if n > 0 => {
                        // A readable client socket has data.
                        let data = &data[..n];
                        if verbose {
                            println!(
                                "received {:?} from {}",
                                String::from_utf8_lossy(data),
                                client.addr
                            );
                        }
                        client.queue.push_back(data.to_vec());
                        // Add output channel for response.
                        if !outputs.contains(&s) {
                            outputs.push(s);
                        }
                    }
                    // Interpret an empty result (or an error) as a closed connection.
                    closed => {
                        if let Err(e) = closed {
                            println!("error from {}: {e}", client.addr);
                        }
                        println!("closing {} after reading no data", client.addr);
                        // Stop listening for input on the connection.
                        outputs.retain(|&o| o != s);
                        inputs.retain(|&i| i != s);
                        // Dropping the client closes the socket and removes its queue.
                        clients.remove(&s);
                    }
                }
            }
        }

        // Handle outputs.
        for s in writable {
            let Some(client) = clients.get_mut(&s) else {
                continue; // closed above
            };
            match client.queue.pop_front() {
                None => {
                    // No messages waiting, so stop checking for writability.
                    if verbose {
                        println!("output queue for {} is empty", client.addr);
                    }
                    outputs.retain(|&o| o != s);
                }
                Some(next_msg) => {
                    if verbose {
                        println!(
                            "sending {:?} to {}",
                            String::from_utf8_lossy(&next_msg),
                            client.addr
                        );
                    }
                    if let Err(e) = client.sock.write_all(&next_msg) {
                        println!("sending to {} failed: {e}", client.addr);
                    }
                }
            }
        }
        // Python's third list, "exceptional conditions": select reports errors and hang-ups
        // as readable, and the read above closes such sockets.
    }
    Ok(())
}

/// Binds 127.0.0.1:`port` (0: any free port) and prints where it listens.
pub fn bind(port: u16) -> io::Result<TcpListener> {
    let server = TcpListener::bind(("127.0.0.1", port))?;
    println!("listening on {}", server.local_addr()?);
    Ok(server)
}

/// The tour's short self-run: the select loop in one greenlet, two clients sending the
/// article's messages in another, on the same thread; the loop is killed at the end.
pub fn demo() {
    let server = bind(0).expect("bind 127.0.0.1:0");
    let addr = server.local_addr().unwrap();
    let loop_greenlet = greenlet::spawn(move || serve(server, true));
    let client = greenlet::spawn(move || -> io::Result<Vec<String>> {
        let mut socks = [TcpStream::connect(addr)?, TcpStream::connect(addr)?];
        let mut got = Vec::new();
        for message in ["This is the message. ", "It will be sent ", "in parts."] {
            for s in &mut socks {
                s.write_all(message.as_bytes())?;
            }
            for s in &mut socks {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                let mut data = vec![0; message.len()];
                s.read_exact(&mut data)?;
                got.push(String::from_utf8_lossy(&data).into_owned());
            }
        }
        Ok(got)
    });
    let got = client.get().expect("client greenlet").expect("client I/O");
    greenlet::sleep(Duration::from_millis(10)); // let the loop print the closings
    println!("\nthe client got back: {got:?}");
    loop_greenlet.kill().expect("the select loop dies");
    println!("select loop stopped");
}

/// Serves on the port given as first argument (10000 by default), printing every chunk with
/// `--verbose`; or self-runs.
pub fn main() {
    let (port, verbose) = match cli::mode("select_server", 10000) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, rest) => (port, rest.iter().any(|a| a == "--verbose")),
    };
    let server = bind(port).unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    if let Err(e) = serve(server, verbose) {
        eprintln!("select_server: {e}");
    }
}
