//! The hooked `read`/`recv` after a short read of plain TCP parks before asking the kernel, and
//! every case where the receive buffer may not be empty asks it first.
//!
//! What is observed is whether the read parks: a bystander greenlet, spawned just before the
//! read, runs only if the reader switches away. The data is always in the receive buffer
//! before the read begins (`wait_queued` checks with `FIONREAD`, which neither parks nor lets
//! the hub harvest), so a read that asks the kernel first returns at once, and one that parks
//! first lets the bystander run. Every socket has a 5 s read timeout: a read parked on data
//! with no edge to come fails instead of hanging.
#![cfg(feature = "monkey")]

mod util;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use util::reads::{READ_TIMEOUT, parks, wait_queued};

/// A connected pair over loopback, made through the hooks: (client, accepted server end), the
/// server end with its read timeout.
fn pair() -> (TcpStream, TcpStream) {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    (client, server)
}

/// `read` into `len` bytes: what it got, and whether it parked.
fn read_and_see(mut source: impl Read, len: usize) -> (io::Result<Vec<u8>>, bool) {
    let mut buf = vec![0; len];
    parks(|| source.read(&mut buf).map(|n| buf[..n].to_vec()))
}

/// Sends `bytes` from a greenlet that runs once the reader parks.
fn send_later(client: &TcpStream, bytes: &'static [u8]) -> greenlet::JoinHandle<()> {
    let mut client = client.try_clone().unwrap();
    greenlet::spawn(move || client.write_all(bytes).unwrap())
}

/// A pair whose server end has just made a short read ("ab" into 16 bytes) after parking (so
/// this thread has its registration), with no harvest since.
fn after_short_read() -> (TcpStream, TcpStream) {
    let (client, server) = pair();
    let sender = send_later(&client, b"ab");
    let (got, parked) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"ab");
    assert!(parked, "nothing had arrived: the first read parks");
    sender.join().unwrap();
    (client, server)
}

#[test]
fn the_read_after_a_short_read_parks_before_asking_the_kernel() {
    let (mut client, server) = after_short_read();
    // The data is already queued, but no harvest came since the short read, so the reader
    // cannot know: it parks first, and the edge the data queued wakes it.
    client.write_all(b"cd").unwrap();
    wait_queued(server.as_raw_fd(), 2);
    let (got, parked) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"cd");
    assert!(parked, "parked first, woken by the data's edge");
    // And again, the short read just made being the one that counts.
    client.write_all(b"ef").unwrap();
    wait_queued(server.as_raw_fd(), 2);
    let (got, parked) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"ef");
    assert!(parked);
}

#[test]
fn recv_with_no_flags_parks_first_and_a_peek_asks_the_kernel() {
    let (mut client, server) = after_short_read();
    client.write_all(b"cd").unwrap();
    wait_queued(server.as_raw_fd(), 2);
    // `peek` (MSG_PEEK) is not a plain read: it asks the kernel, and finds the data.
    let mut buf = [0u8; 16];
    let (n, parked) = parks(|| server.peek(&mut buf).unwrap());
    assert_eq!(&buf[..n], b"cd");
    assert!(!parked, "a peek of queued data does not park");
    // A plain recv after the short read parks first, the peek notwithstanding.
    let fd = server.as_raw_fd();
    // SAFETY: `fd` is the server's open socket; `buf` is valid for its length.
    let (n, parked) = parks(|| unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) });
    assert_eq!(n, 2);
    assert_eq!(&buf[..2], b"cd");
    assert!(parked, "parked first, woken by the data's edge");
}

#[test]
fn a_read_after_a_harvest_asks_the_kernel_first() {
    let (mut client, server) = after_short_read();
    // Data comes in while this greenlet sleeps; the hub harvests its edge with nobody
    // waiting on the socket. The read must find it without waiting for another edge.
    client.write_all(b"cd").unwrap();
    wait_queued(server.as_raw_fd(), 2);
    greenlet::sleep(Duration::from_millis(20));
    let (got, parked) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"cd");
    assert!(!parked, "the data was there: no park");
}

#[test]
fn a_read_that_fills_its_buffer_does_not_count_as_emptying_it() {
    let (client, server) = pair();
    // One write: the 32 bytes arrive together, and the first read takes half of them.
    let sender = send_later(&client, b"0123456789abcdef0123456789ABCDEF");
    let (got, _) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"0123456789abcdef");
    sender.join().unwrap();
    let (got, parked) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"0123456789ABCDEF");
    assert!(!parked, "found by the first system call");
}

#[test]
fn urgent_data_makes_every_read_ask_the_kernel_first() {
    let (client, server) = pair();
    let fd = client.as_raw_fd();
    // "ab", the urgent byte "!", then "cd", all queued before the reader wakes: its first
    // read stops at the urgent mark, short, with "cd" still queued and its edge taken.
    let sender = greenlet::spawn(move || {
        // SAFETY: `fd` is the client's open socket; the buffers are valid for their lengths.
        unsafe {
            assert_eq!(libc::send(fd, b"ab".as_ptr().cast(), 2, 0), 2);
            assert_eq!(libc::send(fd, b"!".as_ptr().cast(), 1, libc::MSG_OOB), 1);
            assert_eq!(libc::send(fd, b"cd".as_ptr().cast(), 2, 0), 2);
        }
    });
    let (first, _) = read_and_see(&server, 16);
    assert_eq!(first.unwrap(), b"ab");
    sender.join().unwrap();
    let (got, parked) = read_and_see(&server, 16);
    assert_eq!(got.unwrap(), b"cd");
    assert!(!parked, "found by the first system call, not a park");
    drop(client);
}

#[test]
fn non_blocking_mode_asks_the_kernel_after_a_short_read() {
    // The client stays open: its end would make the read return 0.
    let (_client, server) = after_short_read();
    server.set_nonblocking(true).unwrap();
    let (r, parked) = read_and_see(&server, 16);
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::WouldBlock);
    assert!(!parked);
}

#[test]
fn shutting_down_the_read_side_after_a_short_read_ends_the_next_read() {
    let (client, server) = after_short_read();
    server.shutdown(Shutdown::Read).unwrap();
    let (r, _) = read_and_see(&server, 16);
    assert_eq!(r.unwrap(), b"", "end of stream, not a timeout");
    drop(client);
}

#[test]
fn the_peer_closing_after_a_short_read_ends_the_next_read() {
    let (client, server) = after_short_read();
    let closer = greenlet::spawn(move || drop(client));
    let (r, parked) = read_and_see(&server, 16);
    assert_eq!(r.unwrap(), b"", "the end, not a timeout");
    assert!(parked, "nothing had arrived: parked until the end came");
    closer.join().unwrap();
}

#[test]
fn data_and_the_end_of_the_stream_together_end_the_next_read() {
    let (client, server) = pair();
    // Parked and registered when the data and the end arrive, in one edge: the short read
    // takes both, and the next read must return the end with no edge to come.
    let closer = greenlet::spawn(move || {
        let mut client = client;
        client.write_all(b"ab").unwrap();
        drop(client);
    });
    let (first, _) = read_and_see(&server, 16);
    assert_eq!(first.unwrap(), b"ab");
    closer.join().unwrap();
    let (r, parked) = read_and_see(&server, 16);
    assert_eq!(r.unwrap(), b"", "the end was there");
    assert!(!parked);
}

#[test]
fn a_socket_made_behind_the_hooks_back_is_looked_at_and_counts_as_tcp() {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    // A socket the hooked `socket` never saw: whether it is plain TCP is asked of the kernel.
    // SAFETY: a plain socket(2) call; the descriptor is owned below.
    let raw = unsafe { libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(raw >= 0, "socket: {}", io::Error::last_os_error());
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let reader = TcpStream::from(unsafe { OwnedFd::from_raw_fd(raw as RawFd) });
    let addr = sockaddr_of(listener.local_addr().unwrap());
    // SAFETY: `addr` is a valid sockaddr_in of its size.
    let r = unsafe {
        libc::connect(
            reader.as_raw_fd(),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "connect: {}", io::Error::last_os_error());
    reader.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let sender = send_later(&peer, b"ab");
    assert_eq!(read_and_see(&reader, 16).0.unwrap(), b"ab");
    sender.join().unwrap();
    peer.write_all(b"cd").unwrap();
    wait_queued(reader.as_raw_fd(), 2);
    let (got, parked) = read_and_see(&reader, 16);
    assert_eq!(got.unwrap(), b"cd");
    assert!(parked, "learned to be TCP: parked first");
}

fn sockaddr_of(addr: std::net::SocketAddr) -> libc::sockaddr_in {
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("bound to an IPv4 address")
    };
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

#[test]
fn a_unix_stream_asks_the_kernel_after_a_short_read() {
    greenlet::monkey::patch_all();
    // A Unix stream read stops short at passed descriptors: a short read says nothing.
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut writer = a.try_clone().unwrap();
    let sender = greenlet::spawn(move || writer.write_all(b"ab").unwrap());
    let (got, parked) = read_and_see(&b, 16);
    assert_eq!(got.unwrap(), b"ab");
    assert!(parked, "registered by a park");
    sender.join().unwrap();
    a.write_all(b"cd").unwrap();
    wait_queued(b.as_raw_fd(), 2);
    let (got, parked) = read_and_see(&b, 16);
    assert_eq!(got.unwrap(), b"cd");
    assert!(!parked, "not TCP: asked the kernel first");
}
