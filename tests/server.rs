//! StreamServer and DatagramServer: concurrency, spawn limits, graceful stop, faults, and
//! accept backoff when the process runs out of descriptors.
//!
//! Every test runs its server and its clients as greenlets on the test's own thread; the
//! EMFILE test re-runs this binary as a child process with a lowered descriptor limit.

use std::cell::{Cell, OnceCell, RefCell};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{TcpStream, UdpSocket};
use greenlet::server::{DatagramServer, StreamServer};

const T: Duration = Duration::from_secs(10);

fn echo_handler(mut conn: TcpStream, _peer: SocketAddr) {
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(T)).unwrap();
    s
}

/// Sends `msg` and reads back as many bytes.
fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut got = vec![0; msg.len()];
    s.read_exact(&mut got).unwrap();
    got
}

#[test]
fn serves_many_concurrent_clients() {
    let server = StreamServer::bind("127.0.0.1:0", echo_handler).unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..300)
        .map(|i| {
            greenlet::spawn(move || {
                let mut s = connect(addr);
                for round in 0..5 {
                    let msg = format!("client {i} round {round}");
                    assert_eq!(round_trip(&mut s, msg.as_bytes()), msg.as_bytes());
                    greenlet::yield_now();
                }
            })
        })
        .collect();
    for c in &clients {
        c.get_timeout(T).expect("client finished");
    }
    // Handlers end once their clients close.
    let deadline = Instant::now() + T;
    while server.connection_count() > 0 && Instant::now() < deadline {
        greenlet::sleep(Duration::from_millis(1));
    }
    assert_eq!(server.connection_count(), 0);
    assert_eq!(server.stop(T), 0);
}

#[test]
fn spawn_limit_caps_concurrent_handlers() {
    let running = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let served = Rc::new(Cell::new(0usize));
    let (r, p, d) = (running.clone(), peak.clone(), served.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        r.set(r.get() + 1);
        p.set(p.get().max(r.get()));
        greenlet::sleep(Duration::from_millis(20));
        let _ = conn.write_all(b"done");
        r.set(r.get() - 1);
        d.set(d.get() + 1);
    })
    .unwrap()
    .spawn_limit(3);
    server.start().unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..12)
        .map(|_| {
            greenlet::spawn(move || {
                let mut s = connect(addr);
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                assert_eq!(got, b"done");
            })
        })
        .collect();
    for c in &clients {
        c.get_timeout(T).expect("client finished");
    }
    assert_eq!(served.get(), 12);
    assert_eq!(peak.get(), 3, "at most 3 handlers at once");
    server.stop(T);
}

#[test]
fn a_shared_pool_bounds_two_servers_together() {
    let pool = greenlet::pool::Pool::new(2);
    let running = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let make = || {
        let (r, p) = (running.clone(), peak.clone());
        StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
            r.set(r.get() + 1);
            p.set(p.get().max(r.get()));
            greenlet::sleep(Duration::from_millis(10));
            r.set(r.get() - 1);
            let _ = conn.write_all(b"ok");
        })
        .unwrap()
        .with_pool(&pool)
    };
    let (a, b) = (make(), make());
    a.start().unwrap();
    b.start().unwrap();
    let clients: Vec<_> = (0..10)
        .map(|i| {
            let addr = if i % 2 == 0 {
                a.local_addr()
            } else {
                b.local_addr()
            };
            greenlet::spawn(move || {
                let mut s = connect(addr);
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                assert_eq!(got, b"ok");
            })
        })
        .collect();
    for c in &clients {
        c.get_timeout(T).expect("client finished");
    }
    assert_eq!(peak.get(), 2, "both servers together stay within the pool");
    assert!(pool.is_empty());
    a.stop(T);
    b.stop(T);
}

#[test]
fn stop_refuses_new_clients_waits_for_handlers_and_kills_the_rest() {
    let finished = Rc::new(Cell::new(0));
    let unwound = Rc::new(Cell::new(0));
    let (f, u) = (finished.clone(), unwound.clone());
    struct OnUnwind(Rc<Cell<i32>>);
    impl Drop for OnUnwind {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let _guard = OnUnwind(u.clone());
        let mut cmd = [0u8; 4];
        conn.read_exact(&mut cmd).unwrap();
        if &cmd == b"slow" {
            // Finishes within stop's grace period.
            greenlet::sleep(Duration::from_millis(50));
            conn.write_all(b"bye").unwrap();
            f.set(f.get() + 1);
        } else {
            // Stuck in a read that never completes: must be killed.
            let _ = conn.read(&mut cmd);
            unreachable!("the client never sends more");
        }
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let mut slow = connect(addr);
    let mut stuck = connect(addr);
    slow.write_all(b"slow").unwrap();
    stuck.write_all(b"hang").unwrap();
    let deadline = Instant::now() + T;
    while server.connection_count() < 2 && Instant::now() < deadline {
        greenlet::sleep(Duration::from_millis(1));
    }
    assert_eq!(server.connection_count(), 2);

    let killed = server.stop(Duration::from_secs(1));
    assert_eq!(killed, 1, "the stuck handler is killed");
    assert_eq!(finished.get(), 1, "the slow handler was allowed to finish");
    assert_eq!(unwound.get(), 2, "both handlers' destructors ran");
    assert_eq!(server.connection_count(), 0);
    assert!(!server.is_serving());

    let mut bye = Vec::new();
    slow.read_to_end(&mut bye).unwrap();
    assert_eq!(bye, b"bye");
    // The killed handler's socket was closed.
    let mut rest = Vec::new();
    assert_eq!(stuck.read_to_end(&mut rest).unwrap(), 0);
    // The listener is closed.
    let e = TcpStream::connect(addr).expect_err("the listener is closed");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    // Stopping again does nothing.
    assert_eq!(server.stop(T), 0);
}

#[test]
fn serve_forever_returns_once_stopped_even_from_a_handler() {
    let slot: Rc<OnceCell<StreamServer>> = Rc::default();
    let handler_slot = slot.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut buf = [0u8; 4];
        if conn.read_exact(&mut buf).is_ok() && &buf == b"stop" {
            // A handler may stop its own server; it is neither waited for nor killed.
            let killed = handler_slot.get().unwrap().stop(Duration::from_millis(100));
            let _ = conn.write_all(format!("killed {killed}").as_bytes());
        }
    })
    .unwrap();
    slot.set(server.clone()).unwrap();
    let addr = server.local_addr();
    let client = greenlet::spawn(move || {
        let mut idle = connect(addr); // a connection that never says anything
        let mut s = connect(addr);
        s.write_all(b"stop").unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(
            idle.read(&mut [0u8; 1]).unwrap(),
            0,
            "the idle handler was killed"
        );
        got
    });
    server
        .serve_forever()
        .expect("serve_forever ends without error after stop");
    assert_eq!(client.get_timeout(T).unwrap(), "killed 1");
    assert!(
        server.start().is_err(),
        "a stopped server cannot be restarted"
    );
}

#[test]
fn a_panicking_handler_ends_only_its_connection() {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _| {
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        if &buf == b"boom" {
            panic!("handler asked to panic");
        }
        conn.write_all(&buf).unwrap();
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    for _ in 0..3 {
        let mut bad = connect(addr);
        bad.write_all(b"boom").unwrap();
        let mut rest = Vec::new();
        assert_eq!(
            bad.read_to_end(&mut rest).unwrap(),
            0,
            "the panicking handler's socket is closed"
        );
        let mut good = connect(addr);
        assert_eq!(round_trip(&mut good, b"fine"), b"fine");
    }
    assert!(server.is_serving());
    server.stop(T);
}

/// CPU time of the calling thread (the one whose hub runs the server), in microseconds.
fn thread_cpu_micros() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_THREAD is valid on Linux.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

#[test]
fn a_listener_left_non_blocking_is_served_without_spinning() {
    let listener = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let server = StreamServer::new(listener, echo_handler).unwrap();
    server.start().unwrap();
    // Idle: the accept loop parks (a loop retrying WouldBlock would use the whole 200 ms).
    let before = thread_cpu_micros();
    greenlet::sleep(Duration::from_millis(200));
    let used = thread_cpu_micros() - before;
    assert!(
        used < 100_000,
        "the idle accept loop used {used} µs of CPU in 200 ms"
    );
    let mut s = connect(server.local_addr());
    assert_eq!(round_trip(&mut s, b"still served"), b"still served");
    drop(s);
    server.stop(T);
}

#[test]
fn start_twice_is_an_error() {
    let server = StreamServer::bind("127.0.0.1:0", echo_handler).unwrap();
    server.start().unwrap();
    assert_eq!(
        server.start().unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );
    server.stop(T);
}

#[test]
fn datagram_server_echoes_and_handlers_run_concurrently() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    let server = DatagramServer::bind("127.0.0.1:0", move |data, _peer, reply| {
        if data == b"slow" {
            // A blocking handler does not hold up the next datagrams.
            greenlet::sleep(Duration::from_millis(50));
        }
        o.borrow_mut().push(data.to_vec());
        reply.send(data).unwrap();
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(T)).unwrap();
    client.send_to(b"slow", addr).unwrap();
    client.send_to(b"fast", addr).unwrap();
    let mut buf = [0u8; 64];
    let mut replies = Vec::new();
    for _ in 0..2 {
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr);
        replies.push(buf[..n].to_vec());
    }
    assert_eq!(replies, [b"fast".to_vec(), b"slow".to_vec()]);
    assert_eq!(*order.borrow(), [b"fast".to_vec(), b"slow".to_vec()]);

    // Many clients at once.
    let clients: Vec<_> = (0..50)
        .map(|i| {
            greenlet::spawn(move || {
                let c = UdpSocket::bind("127.0.0.1:0").unwrap();
                c.set_read_timeout(Some(T)).unwrap();
                let msg = format!("datagram {i}");
                c.send_to(msg.as_bytes(), addr).unwrap();
                let mut buf = [0u8; 64];
                let (n, _) = c.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], msg.as_bytes());
            })
        })
        .collect();
    for c in &clients {
        c.get_timeout(T).expect("client finished");
    }
    assert_eq!(server.stop(T), 0);
    assert!(!server.is_serving());
}

#[test]
fn datagram_server_stop_kills_blocked_handlers() {
    let server = DatagramServer::bind("127.0.0.1:0", |_data, _peer, _reply| {
        greenlet::sleep(Duration::from_secs(3600));
    })
    .unwrap();
    server.start().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"x", server.local_addr()).unwrap();
    let deadline = Instant::now() + T;
    while server.handler_count() == 0 && Instant::now() < deadline {
        greenlet::sleep(Duration::from_millis(1));
    }
    assert_eq!(server.stop(Duration::from_millis(20)), 1);
    assert_eq!(server.handler_count(), 0);
}

// ---- EMFILE: the accept loop backs off instead of spinning, and recovers ----

const CHILD_ENV: &str = "GREENLET_TEST_EMFILE_CHILD";

fn cpu_micros_self() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(ru.ru_utime) + us(ru.ru_stime)
}

/// The child half of `accept_backs_off_on_emfile_and_resumes`: a server in a process with
/// only a few spare descriptors. Reports its address, then its CPU time when asked on stdin.
#[test]
fn emfile_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful when run by the parent test
    }
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _| {
        let _ = conn.write_all(b"hi\n");
        let _ = conn.read_to_end(&mut Vec::new());
    })
    .unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
    let limit = (open + 8) as libc::rlim_t;
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
    println!("addr {}", server.local_addr());
    std::thread::spawn(|| {
        for line in std::io::stdin().lines() {
            match line.as_deref() {
                Ok("cpu") => println!("cpu {}", cpu_micros_self()),
                _ => std::process::exit(0),
            }
        }
        std::process::exit(0);
    });
    server.serve_forever().unwrap();
}

#[test]
fn accept_backs_off_on_emfile_and_resumes() {
    use std::net::TcpStream as StdStream;
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", "emfile_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Watchdog: reading the child's output must not hang the test if the child hangs.
    let pid = child.id() as libc::pid_t;
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watched = finished.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !watched.load(std::sync::atomic::Ordering::SeqCst) {
            // SAFETY: kill(2) with our own child's pid (not yet reaped: the parent waits for
            // it only after setting `finished`).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_value = |prefix: &str| -> String {
        for line in lines.by_ref() {
            let line = line.unwrap();
            // The test harness may print its own text before ours on the same line.
            if let Some((_, v)) = line.split_once(prefix) {
                return v.trim().to_owned();
            }
        }
        panic!("the child ended before printing {prefix:?}");
    };
    let addr: SocketAddr = next_value("addr ").parse().unwrap();

    // More clients than the child has descriptors for: the first ones are greeted, the rest
    // wait in the listen backlog while accept fails with EMFILE.
    let clients: Vec<StdStream> = (0..30).map(|_| StdStream::connect(addr).unwrap()).collect();
    let greeted = |s: &StdStream, wait: Duration| -> bool {
        s.set_read_timeout(Some(wait)).unwrap();
        let mut hi = [0u8; 3];
        matches!((&*s).read_exact(&mut hi), Ok(()) if &hi == b"hi\n")
    };
    let mut served = 0;
    while served < clients.len() && greeted(&clients[served], Duration::from_millis(500)) {
        served += 1;
    }
    assert!(served > 0, "some connections are accepted");
    assert!(
        served < clients.len(),
        "the descriptor limit was reached ({served} accepted)"
    );

    // While out of descriptors, the accept loop sleeps between retries: the process uses
    // little CPU (a spinning loop would use a whole core: ~1,000,000 µs per second).
    writeln!(stdin, "cpu").unwrap();
    let before: u64 = next_value("cpu ").parse().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    writeln!(stdin, "cpu").unwrap();
    let after: u64 = next_value("cpu ").parse().unwrap();
    assert!(
        after - before < 200_000,
        "the accept loop spins while out of descriptors: {} µs of CPU in 1 s",
        after - before
    );

    // Descriptors come back when the served clients leave; the waiting ones get served.
    let mut clients = clients;
    let waiting = clients.split_off(served);
    drop(clients);
    let mut resumed = 0;
    for s in &waiting {
        if greeted(s, Duration::from_secs(5)) {
            resumed += 1;
            // Leave right away so that the next waiting client gets a descriptor.
        }
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    assert_eq!(
        resumed,
        waiting.len(),
        "serving resumes once descriptors are free"
    );

    writeln!(stdin, "exit").unwrap();
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + T;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---- reads as a server's handlers do them: short reads, then more data or end of file ----

/// After a short read (less than the buffer), data sent later is still read: what a server
/// that skipped the read which would say `EAGAIN` must keep doing.
#[test]
fn data_arriving_after_a_short_read_is_read() {
    let listener = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let writer = greenlet::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        for chunk in [&b"one"[..], b"two", b"three"] {
            s.write_all(chunk).unwrap();
            greenlet::sleep(Duration::from_millis(5));
        }
    });
    let mut s = connect(addr);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.len() < 11 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"onetwothree");
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    writer.get_timeout(T).unwrap();
}

/// Data and the peer's close arrive together (one readiness event): after the short read of
/// the data, the end of file comes at once, without waiting for another event.
#[test]
fn end_of_file_right_behind_the_data_is_seen() {
    let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _| {
        let mut req = [0u8; 4];
        conn.read_exact(&mut req).unwrap();
        conn.write_all(b"answer").unwrap();
        // Dropping the stream closes it right behind the answer.
    })
    .unwrap();
    server.start().unwrap();
    for _ in 0..20 {
        let mut s = connect(server.local_addr());
        s.write_all(b"ask!").unwrap();
        greenlet::sleep(Duration::from_millis(2)); // answer and FIN both arrive meanwhile
        let start = Instant::now();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"answer");
        assert!(start.elapsed() < T, "read_to_end waited for its timeout");
    }
    server.stop(T);
}
