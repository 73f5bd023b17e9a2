//! greenlet::net under bad input and faults: peers that reset or stop reading, signals,
//! timeouts on every blocking call, descriptor leaks, 10,000 concurrent connections.
//!
//! The tests here count descriptors and memory of the whole process, so they run one at a
//! time (`SERIAL`).

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use greenlet::select::{Interest, Selector, select};
use util::{TempPath, fd_count, listener, rss_kib, tcp_pair};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn peer_reset_mid_request_is_a_clean_error() {
    let _g = serial();
    let (l, addr) = listener();
    let server = greenlet::spawn(move || {
        let (conn, _) = l.accept().unwrap();
        let mut request = [0; 1000];
        let read = (&conn).read_exact(&mut request);
        // Writing to a reset connection fails too, without a signal killing the process.
        let write = (0..64).try_for_each(|_| (&conn).write_all(&[0; 1024]));
        (read, write)
    });
    let client = TcpStream::connect(addr).unwrap();
    (&client).write_all(&[1; 100]).unwrap(); // a tenth of the request ...
    greenlet::sleep(util::SHORT);
    // ... then an RST instead of the rest.
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    let (read, write) = server.get().unwrap();
    let kind = read.unwrap_err().kind();
    assert!(
        matches!(kind, ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof),
        "{kind:?}"
    );
    let kind = write.unwrap_err().kind();
    assert!(
        matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
        "{kind:?}"
    );
    // The hub is fine afterwards.
    let (a, b) = tcp_pair();
    (&a).write_all(b"ok").unwrap();
    let mut buf = [0; 2];
    (&b).read_exact(&mut buf).unwrap();
}

#[test]
fn a_peer_that_stops_reading_parks_the_writer_with_bounded_memory() {
    let _g = serial();
    const TOTAL: usize = 64 << 20;
    let (writer_end, reader_end) = tcp_pair();
    let written = Rc::new(Cell::new(0usize));
    let writer = greenlet::spawn({
        let written = written.clone();
        move || {
            let chunk = vec![0xA5u8; 64 << 10];
            while written.get() < TOTAL {
                let n = (&writer_end).write(&chunk).unwrap();
                written.set(written.get() + n);
            }
        }
    });
    let ticks = Rc::new(Cell::new(0u32));
    let ticker = greenlet::spawn({
        let ticks = ticks.clone();
        move || {
            for _ in 0..20 {
                ticks.set(ticks.get() + 1);
                greenlet::sleep(Duration::from_millis(5));
            }
        }
    });
    let rss_before = rss_kib();
    greenlet::sleep(Duration::from_millis(100));
    let stalled_at = written.get();
    assert!(
        stalled_at > 0 && stalled_at < TOTAL,
        "the writer is parked in write after {stalled_at} bytes"
    );
    greenlet::sleep(Duration::from_millis(50));
    assert_eq!(
        written.get(),
        stalled_at,
        "no progress while the peer does not read"
    );
    assert!(!writer.is_ready());
    assert!(ticks.get() >= 10, "the hub ran other greenlets meanwhile");
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 16 << 10,
        "RSS grew by {grown} KiB while the writer was parked"
    );
    // The peer reads again: the writer resumes and finishes.
    let mut buf = vec![0; 256 << 10];
    let mut read = 0;
    while read < TOTAL {
        let n = (&reader_end).read(&mut buf).unwrap();
        assert!(n > 0);
        assert!(buf[..n].iter().all(|&b| b == 0xA5));
        read += n;
    }
    writer.join().unwrap();
    // The writer's last write may end past TOTAL (a partial write before it): read the rest.
    while read < written.get() {
        let n = (&reader_end).read(&mut buf).unwrap();
        assert!(n > 0);
        assert!(buf[..n].iter().all(|&b| b == 0xA5));
        read += n;
    }
    ticker.join().unwrap();
    assert_eq!(read, written.get());
}

#[test]
fn two_writers_blocked_on_one_socket_are_both_served() {
    let _g = serial();
    const EACH: usize = 8 << 20;
    let (w, r) = tcp_pair();
    let w = Rc::new(w);
    let writers: Vec<_> = [1u8, 2]
        .into_iter()
        .map(|tag| {
            let w = w.clone();
            greenlet::spawn(move || {
                let chunk = vec![tag; 4096];
                for _ in 0..EACH / chunk.len() {
                    (&*w).write_all(&chunk).unwrap();
                }
            })
        })
        .collect();
    greenlet::sleep(util::SHORT); // both parked on a full send buffer
    assert!(writers.iter().all(|h| !h.is_ready()));
    let mut counts = [0usize; 3];
    let mut buf = vec![0; 64 << 10];
    while counts[1] + counts[2] < 2 * EACH {
        let n = (&r).read(&mut buf).unwrap();
        assert!(n > 0);
        for &b in &buf[..n] {
            counts[b as usize] += 1;
        }
    }
    assert_eq!(counts, [0, EACH, EACH]);
    for h in &writers {
        h.join().unwrap();
    }
}

/// A signal handler that does nothing, installed without `SA_RESTART`, so that blocking
/// system calls of the thread it hits fail with `EINTR`.
extern "C" fn on_sigusr1(_: libc::c_int) {}

#[test]
fn signals_during_blocking_calls_do_not_surface_as_errors() {
    let _g = serial();
    // SAFETY: the handler is async-signal-safe (it does nothing); `sa` is fully initialised.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        sa.sa_flags = 0; // no SA_RESTART
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let peer = std::thread::spawn({
        let done = done.clone();
        move || {
            let (mut s, _) = std_listener.accept().unwrap();
            // Interrupt the hub's epoll_wait again and again while the greenlet is parked.
            for _ in 0..50 {
                // SAFETY: `me` is the test thread, alive until it has joined this thread.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(2));
            }
            s.write_all(b"after the signals").unwrap();
            while !done.load(Ordering::Acquire) {
                // SAFETY: as above.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(2));
            }
            s
        }
    });
    let client = TcpStream::connect(addr).unwrap();
    let mut buf = [0; 17];
    (&client).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after the signals");
    // Timed waits under signals end on time, not early with an error.
    client
        .set_read_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        (&client).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    let start = Instant::now();
    greenlet::sleep(Duration::from_millis(30));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(
        select(&[&client], &[], Some(Duration::from_millis(20))).unwrap(),
        (vec![], vec![])
    );
    done.store(true, Ordering::Release);
    let _ = peer.join().unwrap();
}

#[test]
fn every_blocking_call_has_a_timeout() {
    let _g = serial();
    let t = Some(Duration::from_millis(10));
    let check = |what: &str, r: std::io::Result<()>, want: ErrorKind| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), want, "{what}: {e}");
    };
    let under_timeout = |f: &dyn Fn() -> std::io::Result<()>| {
        let _t = greenlet::Timeout::start(t);
        f()
    };

    // Socket timeouts: WouldBlock, as std.
    let (c, _s) = tcp_pair();
    c.set_read_timeout(t).unwrap();
    check(
        "tcp read",
        (&c).read(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    check(
        "tcp peek",
        c.peek(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    let (w, _silent) = tcp_pair();
    w.set_write_timeout(t).unwrap();
    check(
        "tcp write",
        (0..1024).try_for_each(|_| (&w).write_all(&[0; 64 << 10])),
        ErrorKind::WouldBlock,
    );
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(t).unwrap();
    check(
        "udp recv_from",
        u.recv_from(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    check(
        "udp peek_from",
        u.peek_from(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    u.connect(u.local_addr().unwrap()).unwrap();
    check(
        "udp recv",
        u.recv(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    check(
        "udp peek",
        u.peek(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_read_timeout(t).unwrap();
    check(
        "unix read",
        (&a).read(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    check(
        "unix peek",
        a.peek(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    let (d, _e) = UnixDatagram::pair().unwrap();
    d.set_read_timeout(t).unwrap();
    check(
        "unix recv",
        d.recv(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    check(
        "unix recv_from",
        d.recv_from(&mut [0; 1]).map(drop),
        ErrorKind::WouldBlock,
    );
    d.set_write_timeout(t).unwrap();
    check(
        "unix send",
        (0..100_000).try_for_each(|_| d.send(&[0; 1024]).map(drop)),
        ErrorKind::WouldBlock,
    );

    // Calls without a socket timeout of their own: a greenlet Timeout gives TimedOut.
    let (l, _) = listener();
    check(
        "tcp accept",
        under_timeout(&|| l.accept().map(drop)),
        ErrorKind::TimedOut,
    );
    let tmp = TempPath::new("faults");
    let ul = UnixListener::bind(&tmp.path).unwrap();
    check(
        "unix accept",
        under_timeout(&|| ul.accept().map(drop)),
        ErrorKind::TimedOut,
    );
    let (c2, _s2) = tcp_pair();
    check(
        "tcp read (Timeout)",
        under_timeout(&|| (&c2).read(&mut [0; 1]).map(drop)),
        ErrorKind::TimedOut,
    );
    // Waits report "not ready" on timeout.
    assert!(!greenlet::net::wait_readable(&c2, t).unwrap());
    assert_eq!(select(&[&c2], &[], t).unwrap(), (vec![], vec![]));
    let mut sel = Selector::new().unwrap();
    sel.register(&c2, Interest::READABLE, ()).unwrap();
    assert!(sel.select(t).unwrap().is_empty());
}

#[test]
fn no_descriptor_leaks_over_10000_connections() {
    let _g = serial();
    const CONNECTIONS: usize = 10_000;
    const CLIENTS: usize = 100;
    // Warm up: the hub's poller and the listener exist before counting.
    let (l, addr) = listener();
    let l = Rc::new(l);
    let serve_one = |l: &TcpListener| {
        let (conn, _) = l.accept().unwrap();
        greenlet::spawn(move || {
            let mut b = [0; 1];
            (&conn).read_exact(&mut b).unwrap();
            (&conn).write_all(&b).unwrap();
            // The server closes first (TIME_WAIT stays on this side, not on client ports).
        });
    };
    let warm = TcpStream::connect(addr).unwrap();
    serve_one(&l);
    (&warm).write_all(b"w").unwrap();
    (&warm).read_exact(&mut [0; 1]).unwrap();
    drop(warm);
    greenlet::sleep(util::SHORT);
    let before = fd_count();

    let server = greenlet::spawn({
        let l = l.clone();
        move || {
            for _ in 0..CONNECTIONS {
                serve_one(&l);
            }
        }
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            greenlet::spawn(move || {
                for j in 0..CONNECTIONS / CLIENTS {
                    let s = TcpStream::connect(addr).unwrap();
                    // Exercise registration too: wait for the echo (parks).
                    (&s).write_all(&[(i + j) as u8]).unwrap();
                    let mut b = [0; 1];
                    (&s).read_exact(&mut b).unwrap();
                    assert_eq!(b[0], (i + j) as u8);
                    assert_eq!((&s).read(&mut b).unwrap(), 0, "server closed");
                    // Every 10th connection also makes a clone.
                    if j % 10 == 0 {
                        drop(s.try_clone().unwrap());
                    }
                }
            })
        })
        .collect();
    for c in &clients {
        c.join().unwrap();
    }
    server.join().unwrap();
    greenlet::sleep(util::SHORT); // let the last server greenlets finish
    let after = fd_count();
    assert_eq!(
        after, before,
        "descriptors leaked over {CONNECTIONS} connections"
    );
}

const ROLE: &str = "GREENLET_NET_TEST_ROLE";
const PEER: &str = "GREENLET_NET_TEST_PEER";
const CONCURRENT: usize = 10_000;

/// The client side of `ten_thousand_concurrent_connections`, in a child process (10,000
/// connections are 20,000 descriptors when both ends are in one process; `ulimit -n` is
/// 20,000 here).
fn concurrent_clients(addr: SocketAddr) {
    const BATCH: usize = 500;
    let mut open = Vec::with_capacity(CONCURRENT);
    while open.len() < CONCURRENT {
        let batch: Vec<_> = (0..BATCH.min(CONCURRENT - open.len()))
            .map(|_| {
                greenlet::spawn(move || {
                    let s = TcpStream::connect(addr).unwrap();
                    (&s).write_all(b"?").unwrap();
                    let mut b = [0; 1];
                    (&s).read_exact(&mut b).unwrap();
                    s
                })
            })
            .collect();
        open.extend(batch.iter().map(|h| h.get().unwrap()));
    }
    // All are open at once and were served; closing them ends the server's greenlets.
    drop(open);
}

#[test]
fn ten_thousand_concurrent_connections_on_one_hub() {
    if std::env::var_os(ROLE).is_some_and(|r| r == "client") {
        concurrent_clients(std::env::var(PEER).unwrap().parse().unwrap());
        return;
    }
    let _g = serial();
    raise_fd_limit();
    // A backlog as large as the system allows: the clients connect in batches of 500.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_reuse_address(true).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(4096).unwrap();
    let l = TcpListener::from(std::net::TcpListener::from(sock));
    let addr = l.local_addr().unwrap();

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "ten_thousand_concurrent_connections_on_one_hub",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "client")
        .env(PEER, addr.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let live = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let mut handlers = Vec::with_capacity(CONCURRENT);
    let deadline = greenlet::Timeout::start(Some(Duration::from_secs(120)));
    for _ in 0..CONCURRENT {
        let (conn, _) = l.accept().expect("accept (all 10,000 within two minutes)");
        let (live, peak) = (live.clone(), peak.clone());
        handlers.push(greenlet::spawn(move || {
            let mut b = [0; 1];
            (&conn).read_exact(&mut b).unwrap();
            live.set(live.get() + 1);
            peak.set(peak.get().max(live.get()));
            (&conn).write_all(&b).unwrap();
            // Parked until the client closes, which it does once all 10,000 are served.
            let n = (&conn).read(&mut b).unwrap();
            live.set(live.get() - 1);
            n
        }));
    }
    let done = greenlet::joinall(&handlers, None, None).unwrap();
    drop(deadline);
    assert_eq!(done.len(), CONCURRENT);
    assert!(handlers.iter().all(|h| h.get().unwrap() == 0));
    assert_eq!(
        peak.get(),
        CONCURRENT,
        "all connections were open and served at once"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "client process: {status}");
    assert!(
        fd_count() < 100,
        "server sockets closed: {} open",
        fd_count()
    );
    let _ = l.as_raw_fd();
}

/// Raises the soft descriptor limit to the hard one.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to fill in and to pass back.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    assert!(
        lim.rlim_cur as usize > CONCURRENT + 100,
        "needs ulimit -n above {}",
        CONCURRENT + 100
    );
}

#[test]
fn killing_a_greenlet_parked_on_a_socket_leaves_nothing_behind() {
    let _g = serial();
    // Regression: a kill unwinds out of the park; the reactor's count of parked greenlets
    // must still go down, or the hub thinks I/O is pending forever and a deadlock of the
    // main greenlet hangs instead of reporting LoopExit.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (client, _server) = tcp_pair();
        let reader = greenlet::spawn(move || {
            let _ = (&client).read(&mut [0; 1]);
        });
        let selector = greenlet::spawn(|| {
            let (a, _b) = UnixStream::pair().unwrap();
            let _ = select(&[&a], &[], None);
        });
        greenlet::sleep(util::SHORT);
        reader.kill().unwrap();
        selector.kill().unwrap();
        // A deadlock: a joins b, b joins a.
        let slot: Rc<std::cell::RefCell<Option<greenlet::JoinHandle<()>>>> = Rc::default();
        let a = greenlet::spawn({
            let slot = slot.clone();
            move || {
                greenlet::yield_now();
                let b = slot.borrow().clone().unwrap();
                let _ = b.join();
            }
        });
        let b = greenlet::spawn({
            let a = a.clone();
            move || {
                let _ = a.join();
            }
        });
        *slot.borrow_mut() = Some(b);
        tx.send(matches!(a.join(), Err(greenlet::JoinError::LoopExit(_))))
            .unwrap();
    });
    let loop_exit = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the hub hung instead of reporting LoopExit");
    assert!(loop_exit);
}
