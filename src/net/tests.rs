//! `Io::read_stream`: the read after a short read parks before asking the kernel, and every
//! case where the receive buffer may not be empty asks it first. Each read here counts its
//! system calls, and has a read timeout, so that a read parked on data that is already there
//! fails instead of hanging.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::Io;

/// A connected pair: the client (blocking), and the accepted end (non-blocking, as green
/// sockets keep theirs) with its `Io`, which has a read timeout.
fn pair() -> (TcpStream, TcpStream, Io) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let io = Io::new();
    io.set_read_timeout(Some(Duration::from_secs(5)));
    (client, server, io)
}

/// `io.read_stream` of `server` into `len` bytes: the result, and how many system calls it made.
fn read(io: &Io, server: &TcpStream, len: usize) -> (io::Result<Vec<u8>>, usize) {
    let calls = Cell::new(0);
    let mut buf = vec![0; len];
    let r = io.read_stream(server.as_raw_fd(), len, || {
        calls.set(calls.get() + 1);
        (&*server).read(&mut buf)
    });
    (r.map(|n| buf[..n].to_vec()), calls.get())
}

/// Reads into 16 bytes and checks that it got `want` with one system call (`why` says why
/// one).
fn assert_read_once(io: &Io, server: &TcpStream, want: &[u8], why: &str) {
    let (got, calls) = read(io, server, 16);
    assert_eq!(got.unwrap(), want);
    assert_eq!(calls, 1, "{why}");
}

/// Sends `bytes` from a greenlet that runs once the reader parks.
fn send_later(client: &TcpStream, bytes: &'static [u8]) -> crate::JoinHandle<()> {
    let mut client = client.try_clone().unwrap();
    crate::spawn(move || client.write_all(bytes).unwrap())
}

/// A pair whose accepted end has just made a short read ("ab" into 16 bytes), parked first
/// (so it is registered), with no harvest since.
fn after_short_read() -> (TcpStream, TcpStream, Io) {
    let (client, server, io) = pair();
    let sender = send_later(&client, b"ab");
    assert_eq!(read(&io, &server, 16).0.unwrap(), b"ab");
    sender.join().unwrap();
    (client, server, io)
}

#[test]
fn the_read_after_a_short_read_parks_without_a_system_call() {
    let (client, server, io) = after_short_read();
    // Nothing is queued, and no harvest came since the short read: park first.
    let sender = send_later(&client, b"cd");
    assert_read_once(
        &io,
        &server,
        b"cd",
        "parked first, then one read that found the data",
    );
    sender.join().unwrap();
    // The same again with the registration made by the parks before.
    let sender = send_later(&client, b"ef");
    assert_read_once(&io, &server, b"ef", "one system call");
    sender.join().unwrap();
}

#[test]
fn a_read_after_a_harvest_asks_the_kernel_first() {
    let (mut client, server, io) = after_short_read();
    // Data comes in while this greenlet sleeps; the hub harvests its edge with nobody
    // waiting on the socket. The read must find it without waiting for another edge.
    client.write_all(b"cd").unwrap();
    crate::sleep(Duration::from_millis(20));
    assert_read_once(&io, &server, b"cd", "the data was there: no park");
}

#[test]
fn a_read_that_fills_its_buffer_does_not_count_as_emptying_it() {
    let (client, server, io) = pair();
    // One write: the 32 bytes arrive together, and the first read takes half of them.
    let sender = send_later(&client, b"0123456789abcdef0123456789ABCDEF");
    assert_eq!(read(&io, &server, 16).0.unwrap(), b"0123456789abcdef");
    sender.join().unwrap();
    assert_read_once(
        &io,
        &server,
        b"0123456789ABCDEF",
        "found by the first system call, with no park",
    );
}

#[test]
fn urgent_data_makes_every_read_ask_the_kernel_first() {
    let (client, server, io) = pair();
    let fd = client.as_raw_fd();
    // "ab", the urgent byte "!", then "cd", all queued before the reader wakes: its first
    // read stops at the urgent mark, short, with "cd" still queued and its edge taken.
    let sender = crate::spawn(move || {
        // SAFETY: `fd` is the client's open socket; the buffers are valid for their lengths.
        unsafe {
            assert_eq!(libc::send(fd, b"ab".as_ptr().cast(), 2, 0), 2);
            assert_eq!(libc::send(fd, b"!".as_ptr().cast(), 1, libc::MSG_OOB), 1);
            assert_eq!(libc::send(fd, b"cd".as_ptr().cast(), 2, 0), 2);
        }
    });
    let (first, _) = read(&io, &server, 16);
    assert_eq!(first.unwrap(), b"ab");
    sender.join().unwrap();
    assert_read_once(
        &io,
        &server,
        b"cd",
        "found by the first system call, with no park",
    );
    drop(client);
}

#[test]
fn non_blocking_mode_asks_the_kernel_after_a_short_read() {
    // The client stays open: its end would make the read return 0.
    let (_client, server, io) = after_short_read();
    io.set_nonblocking(true);
    let (r, calls) = read(&io, &server, 16);
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert_eq!(calls, 1);
}

#[test]
fn shutting_down_the_read_side_after_a_short_read_ends_the_next_read() {
    let (client, server, io) = after_short_read();
    server.shutdown(Shutdown::Read).unwrap();
    let (r, _) = read(&io, &server, 16);
    assert_eq!(r.unwrap(), b"", "end of stream, not a timeout");
    drop(client);
}

#[test]
fn the_peer_closing_after_a_short_read_ends_the_next_read() {
    let (client, server, io) = after_short_read();
    let closer = crate::spawn(move || drop(client));
    assert_read_once(
        &io,
        &server,
        b"",
        "parked first, then one read that found the end",
    );
    closer.join().unwrap();
}

#[test]
fn data_and_the_end_of_the_stream_together_end_the_next_read() {
    let (client, server, io) = pair();
    // Parked and registered when the data and the end arrive, in one edge: the short read
    // takes both, and the next read must return the end with no edge to come.
    let closer = crate::spawn(move || {
        let mut client = client;
        client.write_all(b"ab").unwrap();
        drop(client);
    });
    let (first, _) = read(&io, &server, 16);
    assert_eq!(first.unwrap(), b"ab");
    closer.join().unwrap();
    assert_read_once(&io, &server, b"", "the end was there: no park");
}
