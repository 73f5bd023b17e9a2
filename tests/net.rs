//! greenlet::net: std-shaped API, echo over every socket type with many greenlets on one
//! thread, shared sockets, timeouts with std's error kinds, conversions.

mod util;

use std::cell::Cell;
use std::fmt::Debug;
use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{
    TcpListener, TcpStream, ToSocketAddrs, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use util::{TempPath, listener, tcp_pair};

fn echo(mut s: impl Read + Write) {
    let mut buf = [0; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            return;
        }
        s.write_all(&buf[..n]).unwrap();
    }
}

/// Written once against std's traits, used with std and green sockets alike.
fn roundtrip<S: Read + Write>(mut s: S, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

/// Everything a std socket offers, as bounds: the green types must satisfy them.
fn std_shaped<S>(_: &S)
where
    S: Read
        + Write
        + AsRawFd
        + AsFd
        + IntoRawFd
        + FromRawFd
        + Debug
        + Into<OwnedFd>
        + From<OwnedFd>,
    for<'a> &'a S: Read + Write,
{
}

#[test]
fn std_shaped_api_compiles_and_works_for_std_and_green() {
    // std: echo on an OS thread.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || echo(l.accept().unwrap().0));
    let s = std::net::TcpStream::connect(addr).unwrap();
    std_shaped(&s);
    assert_eq!(roundtrip(&s, b"std"), b"std");
    drop(s);
    t.join().unwrap();

    // green: same function, echo in a greenlet of this thread.
    let (l, addr) = listener();
    let server = greenlet::spawn(move || echo(l.accept().unwrap().0));
    let s = TcpStream::connect(addr).unwrap();
    std_shaped(&s);
    assert_eq!(roundtrip(&s, b"green"), b"green");
    let mut s = s;
    assert_eq!(roundtrip(&mut s, b"again"), b"again");
    drop(s);
    server.join().unwrap();

    let (a, _b) = UnixStream::pair().unwrap();
    std_shaped(&a);
}

#[test]
fn tcp_echo_many_greenlets_one_thread() {
    const CLIENTS: usize = 200;
    const ROUNDS: usize = 20;
    let (l, addr) = listener();
    let server = greenlet::spawn(move || {
        let handlers: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (s, _) = l.accept().unwrap();
                greenlet::spawn(move || echo(s))
            })
            .collect();
        greenlet::joinall(&handlers, None, None).unwrap().len()
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            greenlet::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                for r in 0..ROUNDS {
                    let msg = format!("client {i} round {r}");
                    assert_eq!(roundtrip(&mut s, msg.as_bytes()), msg.as_bytes());
                    if r % 5 == 0 {
                        greenlet::yield_now();
                    }
                }
            })
        })
        .collect();
    assert_eq!(
        greenlet::joinall(&clients, None, None).unwrap().len(),
        CLIENTS
    );
    for c in &clients {
        c.join().unwrap();
    }
    assert_eq!(server.get().unwrap(), CLIENTS);
}

#[test]
fn udp_echo_many_greenlets_one_thread() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    const CLIENTS: usize = 50;
    let srv = greenlet::spawn(move || {
        let mut buf = [0; 256];
        for _ in 0..CLIENTS * 10 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            greenlet::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.connect(addr).unwrap();
                assert_eq!(s.peer_addr().unwrap(), addr);
                let mut buf = [0; 256];
                for r in 0..10 {
                    let msg = format!("{i}/{r}");
                    s.send(msg.as_bytes()).unwrap();
                    let n = s.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..n], msg.as_bytes());
                }
            })
        })
        .collect();
    for c in &clients {
        c.join().unwrap();
    }
    srv.join().unwrap();
}

#[test]
fn unix_stream_and_datagram_echo() {
    let tmp = TempPath::new("echo");
    let l = UnixListener::bind(&tmp.path).unwrap();
    assert_eq!(
        l.local_addr().unwrap().as_pathname(),
        Some(tmp.path.as_path())
    );
    let server = greenlet::spawn(move || {
        let hs: Vec<_> = l
            .incoming()
            .take(20)
            .map(|s| greenlet::spawn(move || echo(s.unwrap())))
            .collect();
        greenlet::joinall(&hs, None, None).unwrap();
    });
    let path = Rc::new(tmp.path.clone());
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let path = path.clone();
            greenlet::spawn(move || {
                let s = UnixStream::connect(&*path).unwrap();
                assert!(s.peer_addr().unwrap().as_pathname().is_some());
                let msg = format!("unix {i}");
                assert_eq!(roundtrip(&s, msg.as_bytes()), msg.as_bytes());
            })
        })
        .collect();
    for c in &clients {
        c.join().unwrap();
    }
    server.join().unwrap();

    // Datagrams between bound sockets.
    let dtmp = TempPath::new("dgram");
    let a_path = dtmp.dir.join("a");
    let b_path = dtmp.dir.join("b");
    let a = UnixDatagram::bind(&a_path).unwrap();
    let b = UnixDatagram::bind(&b_path).unwrap();
    let bp = b_path.clone();
    let sender = greenlet::spawn(move || {
        for i in 0..10u8 {
            a.send_to(&[i], &bp).unwrap();
        }
    });
    let mut buf = [0; 8];
    for i in 0..10u8 {
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[i]);
        assert_eq!(from.as_pathname(), Some(a_path.as_path()));
    }
    sender.join().unwrap();
}

/// Ports gevent's `test__socket_close.py::Test::test_recv_twice` with this crate's rule: gevent
/// refuses a second greenlet's `recv` on a socket another greenlet is already receiving on
/// (an `AssertionError`); here, as std lets two threads read one `&TcpStream`, both wait and
/// each read is served in turn.
#[test]
fn two_greenlets_reading_one_socket_are_both_served() {
    let (client, server) = tcp_pair();
    let server = Rc::new(server);
    let got = Rc::new(Cell::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (server, got) = (server.clone(), got.clone());
            greenlet::spawn(move || {
                let mut buf = [0; 1];
                let n = (&*server).read(&mut buf).unwrap();
                assert_eq!(n, 1);
                got.set(got.get() + 1);
            })
        })
        .collect();
    greenlet::sleep(util::SHORT); // both are parked on the same registration now
    assert_eq!(got.get(), 0);
    (&client).write_all(b"a").unwrap();
    greenlet::sleep(util::SHORT);
    assert_eq!(
        got.get(),
        1,
        "one byte serves one reader; the other waits again"
    );
    (&client).write_all(b"b").unwrap();
    greenlet::joinall(&readers, Some(Duration::from_secs(10)), None).unwrap();
    assert_eq!(got.get(), 2);
    for r in &readers {
        r.join().unwrap();
    }
}

#[test]
fn two_greenlets_accepting_on_one_listener_are_both_served() {
    let (l, addr) = listener();
    let l = Rc::new(l);
    let acceptors: Vec<_> = (0..2)
        .map(|_| {
            let l = l.clone();
            greenlet::spawn(move || l.accept().unwrap().1)
        })
        .collect();
    greenlet::yield_now();
    let c1 = TcpStream::connect(addr).unwrap();
    let c2 = TcpStream::connect(addr).unwrap();
    let mut peers: Vec<SocketAddr> = acceptors.iter().map(|a| a.get().unwrap()).collect();
    peers.sort();
    let mut want = vec![c1.local_addr().unwrap(), c2.local_addr().unwrap()];
    want.sort();
    assert_eq!(peers, want);
}

/// Ports gevent's `test__socket.py::TestTCP::test_recv_timeout`,
/// `TestTCP::test_sendall_timeout` and `test__socket_timeout.py::Test::test_timeout`: a read
/// with nothing to read and a write nobody reads give up at the socket's timeouts, with std's
/// error (`WouldBlock`, std's kind for an expired socket timeout, where Python says
/// `timed out`), and the socket stays usable.
#[test]
fn read_and_write_timeouts_give_the_same_error_kind_as_std() {
    let t = Duration::from_millis(20);
    // std first.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(t)).unwrap();
    let std_err = (&s).read(&mut [0; 4]).unwrap_err();
    // green.
    let (client, _server) = tcp_pair();
    client.set_read_timeout(Some(t)).unwrap();
    assert_eq!(client.read_timeout().unwrap(), Some(t));
    let start = Instant::now();
    let err = (&client).read(&mut [0; 4]).unwrap_err();
    assert!(start.elapsed() >= t);
    assert_eq!(err.kind(), std_err.kind());
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.raw_os_error(), std_err.raw_os_error());
    // The socket is still usable after a timeout.
    client.set_read_timeout(None).unwrap();

    // Zero timeouts are refused as std does.
    assert_eq!(
        client
            .set_read_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    // Write timeout: fill the send buffer of a connection nobody reads.
    let (writer, _silent_peer) = tcp_pair();
    writer.set_write_timeout(Some(t)).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let err = (0..1024)
        .try_for_each(|_| (&writer).write_all(&chunk))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);

    // UDP and Unix sockets too.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(t)).unwrap();
    assert_eq!(
        u.recv_from(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(t)).unwrap();
    assert_eq!(
        (&a).read(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let (d, _e) = UnixDatagram::pair().unwrap();
    d.set_read_timeout(Some(t)).unwrap();
    assert_eq!(
        d.recv(&mut [0; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn a_greenlet_timeout_bounds_accept_with_timed_out() {
    let (l, _addr) = listener();
    let start = Instant::now();
    let timeout = greenlet::Timeout::start(Some(Duration::from_millis(20)));
    let err = l.accept().map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(timeout.is_expired());
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn connect_timeout_against_a_full_backlog() {
    // A listener with a tiny backlog that nobody accepts from: once its queue is full the
    // kernel drops further SYNs, so a connect cannot finish.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(1).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    let mut timed_out = None;
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(50)) {
            Ok(s) => held.push(s),
            Err(e) => {
                timed_out = Some(e);
                break;
            }
        }
    }
    let e = timed_out.expect("the backlog never filled up");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert_eq!(
        TcpStream::connect_timeout(&addr, Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput,
        "as std"
    );
}

/// Ports gevent's `test__socket_errors.py::TestSocketErrors::test_connection_refused` and
/// `test__socket.py::TestCreateConnection::test_refuses`: connecting to a port nobody listens
/// on is refused, with std's error.
#[test]
fn connect_errors_are_std_errors() {
    // A port nobody listens on.
    let (l, addr) = listener();
    drop(l);
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    assert!(
        refused.to_string().to_lowercase().contains("refused"),
        "{refused}"
    );
    let empty: &[SocketAddr] = &[];
    assert_eq!(
        TcpStream::connect(empty).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(TcpStream::connect("not an address").is_err());
    let tmp = TempPath::new("nobody");
    assert_eq!(
        UnixStream::connect(&tmp.path).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn half_close_peer_reads_eof_and_can_still_write_back() {
    let (client, server) = tcp_pair();
    let srv = greenlet::spawn(move || {
        let mut req = Vec::new();
        (&server).read_to_end(&mut req).unwrap(); // ends at the client's FIN
        (&server)
            .write_all(&req.iter().rev().copied().collect::<Vec<_>>())
            .unwrap();
    });
    (&client).write_all(b"abc").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        (&client).write(b"x").unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
    let mut resp = Vec::new();
    (&client).read_to_end(&mut resp).unwrap();
    assert_eq!(resp, b"cba");
    srv.join().unwrap();

    // Same over Unix streams.
    let (a, b) = UnixStream::pair().unwrap();
    let srv = greenlet::spawn(move || {
        let mut req = String::new();
        (&b).read_to_string(&mut req).unwrap();
        (&b).write_all(req.to_uppercase().as_bytes()).unwrap();
    });
    (&a).write_all(b"unix").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    let mut resp = String::new();
    (&a).read_to_string(&mut resp).unwrap();
    assert_eq!(resp, "UNIX");
    srv.join().unwrap();
}

#[test]
fn try_clone_shares_options_and_reads_the_same_stream() {
    let (client, server) = tcp_pair();
    let clone = client.try_clone().unwrap();
    assert_ne!(clone.as_raw_fd(), client.as_raw_fd());
    client
        .set_read_timeout(Some(Duration::from_millis(15)))
        .unwrap();
    assert_eq!(
        clone.read_timeout().unwrap(),
        Some(Duration::from_millis(15)),
        "options are shared as in std"
    );
    assert_eq!(
        (&clone).read(&mut [0; 1]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // The clone has its own registration: reading through either works while both are used.
    let reader = greenlet::spawn(move || {
        clone.set_read_timeout(None).unwrap();
        let mut buf = [0; 5];
        (&clone).read_exact(&mut buf).unwrap();
        buf
    });
    greenlet::yield_now();
    (&server).write_all(b"hello").unwrap();
    assert_eq!(&reader.get().unwrap(), b"hello");
    (&server).write_all(b"!").unwrap();
    let mut one = [0; 1];
    (&client).read_exact(&mut one).unwrap();
    assert_eq!(&one, b"!");
}

#[test]
fn adopting_and_returning_std_sockets() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let std_client = std::net::TcpStream::connect(addr).unwrap();
    std_client
        .set_read_timeout(Some(Duration::from_millis(25)))
        .unwrap();
    // The kernel rounds to its tick; std reports the rounded value.
    let std_timeout = std_client.read_timeout().unwrap();
    let green = TcpStream::from(std_client);
    assert_eq!(
        green.read_timeout().unwrap(),
        std_timeout,
        "adoption keeps std's timeouts"
    );
    let green_listener = TcpListener::from(l);
    let (server, _) = green_listener.accept().unwrap();
    (&server).write_all(b"x").unwrap();
    let mut b = [0; 1];
    (&green).read_exact(&mut b).unwrap();

    // Back to std: blocking again (a blocking read with a timeout gives WouldBlock after
    // waiting, not at once).
    let std_again: std::net::TcpStream = green.into();
    let start = Instant::now();
    assert_eq!(
        (&std_again).read(&mut b).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(
        start.elapsed() >= Duration::from_millis(20),
        "blocking mode was restored"
    );

    // Raw descriptors.
    let fd = TcpStream::from(std_again).into_raw_fd();
    // SAFETY: `fd` was just given up by `into_raw_fd` and is owned by nobody else.
    let green = unsafe { TcpStream::from_raw_fd(fd) };
    let owned: OwnedFd = green.into();
    let green = TcpStream::from(owned);
    (&server).write_all(b"y").unwrap();
    (&green).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"y");

    let (a, b2) = std::os::unix::net::UnixStream::pair().unwrap();
    let (a, mut b2g) = (UnixStream::from(a), UnixStream::from(b2));
    (&a).write_all(b"u").unwrap();
    b2g.read_exact(&mut b).unwrap();
    let u = UdpSocket::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    let _: std::net::UdpSocket = u.into();
}

#[test]
fn set_nonblocking_reports_would_block_instead_of_parking() {
    let (client, _server) = tcp_pair();
    client.set_nonblocking(true).unwrap();
    assert_eq!(
        (&client).read(&mut [0; 1]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let (l, _) = listener();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    client.set_nonblocking(false).unwrap();
}

#[test]
fn peek_options_and_vectored_io() {
    let (client, server) = tcp_pair();
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    client.set_ttl(42).unwrap();
    assert_eq!(client.ttl().unwrap(), 42);
    assert!(client.take_error().unwrap().is_none());
    assert_eq!(client.peer_addr().unwrap(), server.local_addr().unwrap());

    let peeker = greenlet::spawn({
        let server = server.try_clone().unwrap();
        move || {
            let mut buf = [0; 3];
            let n = server.peek(&mut buf).unwrap(); // parks until data comes
            buf[..n].to_vec()
        }
    });
    greenlet::yield_now();
    let n = (&client)
        .write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cd")])
        .unwrap();
    assert_eq!(n, 4);
    let peeked = peeker.get().unwrap();
    assert!(!peeked.is_empty() && b"abc".starts_with(&peeked));
    let (mut x, mut y) = ([0; 1], [0; 3]);
    let mut got = 0;
    while got < 4 {
        let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
        got += (&server).read_vectored(&mut bufs).unwrap();
    }
    assert_eq!((&x, &y), (b"a", b"bcd"));

    let (ua, ub) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    ua.send_to(b"dg", ub.local_addr().unwrap()).unwrap();
    let mut buf = [0; 8];
    let (n, from) = ub.peek_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"dg"[..], ua.local_addr().unwrap()));
    assert_eq!(ub.recv_from(&mut buf).unwrap().0, 2);

    let (ua, ub) = UnixStream::pair().unwrap();
    (&ua).write_all(b"pk").unwrap();
    assert_eq!(ub.peek(&mut buf).unwrap(), 2);
    assert_eq!((&ub).read(&mut buf).unwrap(), 2);
}

#[test]
fn host_names_resolve_on_the_thread_pool_while_others_run() {
    let (l, addr) = listener();
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = greenlet::spawn({
        let ticks = ticks.clone();
        move || {
            for _ in 0..5 {
                ticks.set(ticks.get() + 1);
                greenlet::yield_now();
            }
        }
    });
    let server = greenlet::spawn(move || l.accept().map(|_| ()));
    let s = TcpStream::connect(("localhost", addr.port())).unwrap();
    assert!(s.peer_addr().unwrap().ip().is_loopback());
    server.get().unwrap().unwrap();
    ticker.join().unwrap();
    assert_eq!(ticks.get(), 5);
    // IP literals parse in place.
    let addrs: Vec<_> = "[::1]:80".to_socket_addrs().unwrap().collect();
    assert_eq!(addrs, ["[::1]:80".parse::<SocketAddr>().unwrap()]);
    assert!(("256.0.0.1", 80).to_socket_addrs().is_err() || cfg!(not(target_os = "linux")));
}

#[test]
fn unix_connect_waits_for_room_in_a_full_backlog() {
    let tmp = TempPath::new("backlog");
    let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    sock.bind(&socket2::SockAddr::unix(&tmp.path).unwrap())
        .unwrap();
    sock.listen(1).unwrap();
    let l = UnixListener::from(std::os::unix::net::UnixListener::from(sock));
    // Fill the backlog with connections nobody accepts yet.
    let mut held = Vec::new();
    loop {
        match greenlet::with_timeout(Duration::from_millis(30), || UnixStream::connect(&tmp.path)) {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut);
                break;
            }
            Err(_) => break,
        }
        assert!(held.len() < 64, "backlog never filled up");
    }
    // Now a connect parks until the listener accepts.
    let path = tmp.path.clone();
    let late = greenlet::spawn(move || UnixStream::connect(&path).map(|_| ()));
    greenlet::sleep(util::SHORT);
    assert!(!late.is_ready());
    for _ in 0..held.len() + 1 {
        l.accept().unwrap();
    }
    late.get_timeout(Duration::from_secs(5)).unwrap().unwrap();
}

#[test]
fn a_stopped_hub_ends_a_blocked_read_with_loop_exit() {
    std::thread::spawn(|| {
        let (client, _server) = tcp_pair();
        let hub = greenlet::HubHandle::current().unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            hub.stop();
        });
        let err = (&client).read(&mut [0; 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other);
        let exit = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<greenlet::LoopExit>())
            .expect("wraps LoopExit");
        assert!(exit.is_stopped());
    })
    .join()
    .unwrap();
}
