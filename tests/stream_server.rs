//! `StreamServer` against gevent's `test__server.py`.
//!
//! gevent runs each case three times, spawning handlers with `gevent.spawn`
//! (`TestDefaultSpawn`), `spawn_raw` (`TestRawSpawn`) and a pool of two (`TestPoolSpawn`). A
//! server here always spawns its handlers (the first two are the same) and may be limited
//! (`spawn_limit`), so each test runs with no limit and with a limit of two, and names all
//! three classes.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::{TcpListener, TcpStream};
use greenlet::server::StreamServer;

/// gevent's `SimpleStreamServer.handle`: `/ping` is answered with `PONG`; `/long` and `/short`
/// get `hello`, then are held until the client closes; anything else is a 404.
fn simple_handler(conn: TcpStream, _peer: SocketAddr) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split(' ').nth(1).unwrap_or("");
    let mut conn = conn;
    match path {
        "/ping" => conn.write_all(b"HTTP/1.0 200 OK\r\n\r\nPONG").unwrap(),
        "/long" | "/short" => {
            conn.write_all(b"hello").unwrap();
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        }
        _ => conn.write_all(b"HTTP/1.0 404 WTF?\r\n\r\n").unwrap(),
    }
}

/// The spawn limits each test runs with: none (gevent's default and raw spawns) and a pool of
/// two (`TestPoolSpawn`).
const LIMITS: [usize; 2] = [0, 2];

fn bound(limit: usize) -> StreamServer {
    StreamServer::bind("127.0.0.1:0", simple_handler)
        .unwrap()
        .spawn_limit(limit)
}

fn on_listener(limit: usize) -> StreamServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    StreamServer::new(listener, simple_handler)
        .unwrap()
        .spawn_limit(limit)
}

/// A client that sends `GET url` and gives up reading after `timeout`.
fn send_request(addr: SocketAddr, url: &str, timeout: Duration) -> TcpStream {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(timeout)).unwrap();
    sock.write_all(format!("GET {url} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    sock
}

/// gevent's `assertRequestSucceeded`.
fn assert_request_succeeded(addr: SocketAddr) {
    let mut sock = send_request(addr, "/ping", util::NOT_HANGING);
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).unwrap();
    assert!(answer.ends_with(b"\r\n\r\nPONG"), "{answer:?}");
}

/// gevent's `assertConnectionRefused`.
fn assert_connection_refused(addr: SocketAddr) {
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}

/// gevent's `assertNotAccepted` (and `assertPoolFull`): the connection is made (the kernel's
/// backlog takes it) but nobody answers the request in time.
fn assert_not_answered(addr: SocketAddr) {
    let mut sock = send_request(addr, "/ping", Duration::from_millis(50));
    let mut answer = [0; 64];
    let e = sock.read(&mut answer).unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::WouldBlock,
        "expected no answer in time"
    );
}

/// gevent's `_test_server_start_stop(restartable=False)` after the server was created: start,
/// two requests served, stop, then refused.
fn start_serve_stop(server: &StreamServer) {
    server.start().unwrap();
    assert_request_succeeded(server.local_addr());
    assert_request_succeeded(server.local_addr());
    server.stop(Duration::from_secs(5));
    assert_connection_refused(server.local_addr());
}

/// Ports gevent's `test__server.py::TestDefaultSpawn::test_subclass_just_create`,
/// `TestRawSpawn::test_subclass_just_create` and `TestPoolSpawn::test_subclass_just_create`: a
/// server made on a listener but not started answers nobody.
#[test]
fn a_server_not_started_answers_nobody() {
    for limit in LIMITS {
        let server = on_listener(limit);
        assert!(!server.is_serving());
        assert_not_answered(server.local_addr());
    }
}

/// Ports gevent's `test__server.py::TestDefaultSpawn::test_subclass_with_socket`,
/// `TestRawSpawn::test_subclass_with_socket` and `TestPoolSpawn::test_subclass_with_socket`: on
/// a listener, nobody is answered before `start`, requests are served after it, and `stop`
/// closes the listener. (gevent's pause and resume, `stop_accepting` and `start_accepting`,
/// have no counterpart: a stopped server stays stopped.)
#[test]
fn a_server_on_a_listener_starts_serves_and_stops() {
    for limit in LIMITS {
        let server = on_listener(limit);
        assert_not_answered(server.local_addr());
        start_serve_stop(&server);
    }
}

/// Ports gevent's `test__server.py::TestDefaultSpawn::test_subclass_with_address` and
/// `TestDefaultSpawn::test_backlog_is_accepted_for_address`, and the same two of
/// `TestRawSpawn` and `TestPoolSpawn`, with this crate's rule: gevent binds a server made from
/// an address only when it starts, so a client before that is refused; `bind` binds (and
/// listens) at once, as std's `TcpListener::bind` does, so that client waits in the backlog
/// and is answered once the server starts. (The backlog is `DEFAULT_BACKLOG`; a server with a
/// backlog of its own is made on a listener.)
#[test]
fn a_server_bound_to_an_address_starts_serves_and_stops() {
    for limit in LIMITS {
        let server = bound(limit);
        let early = send_request(server.local_addr(), "/ping", util::NOT_HANGING);
        start_serve_stop_with_early_client(&server, early);
    }
}

/// [`start_serve_stop`], checking that a client that connected before the start is served.
fn start_serve_stop_with_early_client(server: &StreamServer, mut early: TcpStream) {
    server.start().unwrap();
    let mut answer = Vec::new();
    early.read_to_end(&mut answer).unwrap();
    assert!(answer.ends_with(b"PONG"), "{answer:?}");
    assert_request_succeeded(server.local_addr());
    server.stop(Duration::from_secs(5));
    assert_connection_refused(server.local_addr());
}

/// The body of gevent's `_test_serve_forever`: `serve_forever` in a greenlet serves; `stop`
/// ends it, and new clients are refused.
fn serve_forever_then_stop(server: &StreamServer) {
    let forever = {
        let server = server.clone();
        greenlet::spawn(move || server.serve_forever())
    };
    greenlet::yield_now();
    assert_request_succeeded(server.local_addr());
    server.stop(Duration::from_secs(5));
    assert!(!server.is_serving());
    assert_connection_refused(server.local_addr());
    forever.get().unwrap().unwrap();
}

/// Ports gevent's `test__server.py::TestDefaultSpawn::test_serve_forever`,
/// `TestRawSpawn::test_serve_forever` and `TestPoolSpawn::test_serve_forever`.
#[test]
fn serve_forever_serves_until_stopped() {
    for limit in LIMITS {
        let server = bound(limit);
        assert!(!server.is_serving());
        serve_forever_then_stop(&server);
    }
}

/// Ports gevent's `test__server.py::TestDefaultSpawn::test_serve_forever_after_start`,
/// `TestRawSpawn::test_serve_forever_after_start` and
/// `TestPoolSpawn::test_serve_forever_after_start`: `serve_forever` on a started server.
#[test]
fn serve_forever_after_start_serves_until_stopped() {
    for limit in LIMITS {
        let server = bound(limit);
        server.start().unwrap();
        assert!(server.is_serving());
        serve_forever_then_stop(&server);
    }
}

/// Ports gevent's `test__server.py::TestDefaultSpawn::test_server_closes_client_sockets`,
/// `TestRawSpawn::test_server_closes_client_sockets` and
/// `TestPoolSpawn::test_server_closes_client_sockets`: a handler that returns without touching
/// its connection closes it; the client reads the end (or a reset), not a hang.
#[test]
fn a_handler_that_returns_closes_the_connection() {
    for limit in LIMITS {
        let server = StreamServer::bind("127.0.0.1:0", |_conn, _peer| {})
            .unwrap()
            .spawn_limit(limit);
        server.start().unwrap();
        let mut sock = send_request(server.local_addr(), "/", util::NOT_HANGING);
        let mut answer = Vec::new();
        match sock.read_to_end(&mut answer) {
            Ok(_) => assert!(answer.is_empty(), "{answer:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        }
        server.stop(Duration::from_secs(5));
        assert_connection_refused(server.local_addr());
    }
}

/// Ports gevent's
/// `test__server.py::TestDefaultSpawn::test_server_repr_when_handle_is_instancemethod`,
/// `TestRawSpawn::test_server_repr_when_handle_is_instancemethod` and
/// `TestPoolSpawn::test_server_repr_when_handle_is_instancemethod` (the repr names the server;
/// a Rust handler has no name to show): a server's `Debug` names it and its address.
#[test]
fn a_server_prints_its_kind_and_address() {
    for limit in LIMITS {
        let server = bound(limit);
        server.start().unwrap();
        let dbg = format!("{server:?}");
        assert!(dbg.contains("StreamServer"), "{dbg}");
        assert!(dbg.contains(&server.local_addr().to_string()), "{dbg}");
        server.stop(Duration::from_secs(5));
    }
}

/// Ports gevent's `test__server.py::TestPoolSpawn::test_pool_full`: with a pool of two busy
/// with a long and a short request, a third request is not answered (three times); once
/// they end, requests are served again.
#[test]
fn a_full_pool_answers_nobody_until_a_handler_ends() {
    let server = bound(2);
    server.start().unwrap();
    let addr = server.local_addr();
    let mut long = send_request(addr, "/long", util::NOT_HANGING);
    let mut short = send_request(addr, "/short", util::NOT_HANGING);
    for conn in [&mut long, &mut short] {
        let mut hello = [0; 5];
        conn.read_exact(&mut hello).unwrap();
        assert_eq!(&hello, b"hello");
    }
    assert_eq!(server.connection_count(), 2);
    for _ in 0..3 {
        assert_not_answered(addr);
    }
    drop(long);
    drop(short);
    assert_request_succeeded(addr);
    server.stop(Duration::from_secs(5));
}
