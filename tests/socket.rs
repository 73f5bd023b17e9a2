//! Green sockets: ports of gevent's `test__socket.py` and `test__socket_close.py` that
//! `tests/net.rs` does not already hold.
//!
//! gevent's `test__socket.py` runs against the monkey-patched `socket` module, with the server
//! side in another greenlet; here the green types of `greenlet::net` play that part. A Python
//! socket can be closed while another greenlet uses it; a Rust one is dropped only when nobody
//! borrows it, so the closing cases become shutdowns.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv6Addr, Shutdown, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use greenlet::net::{TcpStream, ToSocketAddrs};

/// gevent's `long_data`: "0, 1, 2, ..., 19999".
fn long_data() -> Vec<u8> {
    (0..20000)
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
        .into_bytes()
}

/// gevent's `_test_sendall`: a greenlet accepts and reads everything; the client connects,
/// `prepare`s its socket, writes `data` in one `write_all`, shuts down and closes. Returns what
/// the server read.
fn sendall(data: &[u8], prepare: impl FnOnce(&TcpStream)) -> Vec<u8> {
    let (listener, addr) = util::listener();
    let server = greenlet::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut read = Vec::new();
        conn.read_to_end(&mut read).unwrap();
        read
    });
    let mut client = TcpStream::connect(addr).unwrap();
    prepare(&client);
    client.write_all(data).unwrap();
    let _ = client.shutdown(Shutdown::Both);
    drop(client);
    server.get().unwrap()
}

/// Ports gevent's `test__socket.py::TestTCP::test_sendall_str` and `TestTCP::test_sendall_array`
/// (the same bytes, from a `str` and from an `array`; a `&[u8]` here): a long `write_all`
/// arrives whole and in order.
#[test]
fn write_all_of_long_data_arrives_whole() {
    let data = long_data();
    assert_eq!(sendall(&data, |_| {}), data);
}

/// Ports gevent's `test__socket.py::TestTCP::test_sendall_empty` and
/// `TestTCP::test_sendall_empty_with_timeout`: writing nothing, with and without a write
/// timeout, sends nothing and does not block.
#[test]
fn write_all_of_nothing_sends_nothing() {
    assert_eq!(sendall(b"", |_| {}), b"");
    let with_timeout = |s: &TcpStream| {
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    };
    assert_eq!(sendall(b"", with_timeout), b"");
}

/// Ports gevent's `test__socket.py::TestTCP::test_sendall_nonblocking`: a short `write_all` on
/// a socket in non-blocking mode fits at once.
#[test]
fn write_all_on_a_non_blocking_socket() {
    let non_blocking = |s: &TcpStream| s.set_nonblocking(true).unwrap();
    assert_eq!(sendall(b"hi\n", non_blocking), b"hi\n");
}

/// Ports gevent's `test__socket.py::TestTCP::test_empty_send`: a `write` of nothing writes 0
/// bytes.
#[test]
fn writing_nothing_writes_zero_bytes() {
    let (mut client, _server) = util::tcp_pair();
    assert_eq!(client.write(b"").unwrap(), 0);
}

/// Ports gevent's `test__socket.py::TestTCP::test_fullduplex`: both directions at once on one
/// connection, each from its own greenlet: the server sends 100,000 bytes while it reads the
/// client's greeting; the client reads them all while it sends.
#[test]
fn both_directions_at_once() {
    const N: usize = 100_000;
    let (listener, addr) = util::listener();
    let server = greenlet::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut out = conn.try_clone().unwrap();
        let sender = greenlet::spawn(move || out.write_all(&[b't'; N]).unwrap());
        let mut greeting = [0; 11];
        (&conn).read_exact(&mut greeting).unwrap();
        sender.join().unwrap();
        greeting
    });
    let client = TcpStream::connect(addr).unwrap();
    let mut input = client.try_clone().unwrap();
    let reader = greenlet::spawn(move || {
        let mut got = vec![0; N];
        input.read_exact(&mut got).unwrap();
        got.iter().all(|&b| b == b't')
    });
    (&client).write_all(b"hello world").unwrap();
    assert_eq!(&server.get().unwrap(), b"hello world");
    assert!(reader.get().unwrap());
}

/// Ports gevent's `test__socket.py::TestTCP::test_makefile`: a buffered reader over the
/// connection reads a line, then the end; it keeps the connection open after the original
/// handle is gone (a `try_clone` here, as Python's file keeps the socket).
#[test]
fn a_buffered_reader_reads_a_line_then_the_end() {
    let (listener, addr) = util::listener();
    let acceptor = greenlet::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hello\n").unwrap();
    });
    let client = TcpStream::connect(addr).unwrap();
    let mut file = BufReader::new(client.try_clone().unwrap());
    drop(client);
    let mut line = String::new();
    file.read_line(&mut line).unwrap();
    assert_eq!(line, "hello\n");
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    acceptor.join().unwrap();
}

/// Ports gevent's `test__socket.py::TestTCP::test_makefile_timeout`: reading a line through a
/// buffered reader fails at the socket's read timeout when the peer says nothing.
#[test]
fn a_buffered_read_gives_up_at_the_read_timeout() {
    let (client, _server) = util::tcp_pair();
    client
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let start = Instant::now();
    let err = BufReader::new(&client)
        .read_line(&mut String::new())
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::WouldBlock,
        "std's kind for a read timeout"
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
}

/// Ports gevent's `test__socket.py::TestFunctions::test_wait_timeout` (`gevent.socket.wait`
/// with a timeout): waiting for a silent socket to become readable gives up at the timeout.
#[test]
fn waiting_for_a_silent_socket_gives_up() {
    let (client, _server) = util::tcp_pair();
    let start = Instant::now();
    let ready = greenlet::net::wait_readable(&client, Some(Duration::from_millis(10))).unwrap();
    assert!(!ready);
    assert!(start.elapsed() >= Duration::from_millis(10));
}

/// Ports gevent's `test__socket.py::TestFunctions::test_resolve_ipv6_scope_id`: an IPv6 address
/// with a scope id resolves to itself, scope id kept, without a name lookup.
#[test]
fn an_ipv6_address_with_a_scope_id_resolves_to_itself() {
    let ip: Ipv6Addr = "2607:f8b0:4000:80e::200e".parse().unwrap();
    let addr = SocketAddr::V6(SocketAddrV6::new(ip, 80, 0, 9));
    let resolved: Vec<SocketAddr> = addr.to_socket_addrs().unwrap().collect();
    assert_eq!(resolved, [addr]);
    match resolved[0] {
        SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), 9),
        SocketAddr::V4(_) => unreachable!(),
    }
}

/// Ports gevent's `test__socket_close.py::Test::test_recv_closed` with Rust's rule: gevent
/// closes a socket that another greenlet is receiving on, and the receiver fails with `EBADF`.
/// A Rust socket cannot be closed while it is borrowed; shutting it down is the way to end a
/// blocked read from elsewhere, and the reader then sees the end of the stream.
#[test]
fn shutting_down_a_socket_ends_a_blocked_read() {
    let (listener, addr) = util::listener();
    let server = greenlet::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    });
    let sock = TcpStream::connect(addr).unwrap();
    let reading = sock.try_clone().unwrap();
    let receiver = greenlet::spawn(move || (&reading).read(&mut [0; 25]).map_err(|e| e.kind()));
    greenlet::sleep(Duration::from_millis(1));
    assert!(!receiver.is_ready());
    sock.shutdown(Shutdown::Both).unwrap();
    assert_eq!(
        receiver.get_timeout(util::NOT_HANGING).unwrap(),
        Ok(0),
        "the end of the stream"
    );
    drop(sock);
    server.join().unwrap();
}
