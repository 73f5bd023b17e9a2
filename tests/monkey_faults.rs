//! The monkey hooks under bad input and at the edges: closed and reused descriptors, refused
//! and hanging connects, non-blocking descriptors, kills, signals, fork, thread teardown, and
//! threads that have no greenlets at all.
#![cfg(feature = "monkey")]

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Patches, and gives the test's thread its greenlet runtime: its own code is then the main
/// greenlet, whose hooked calls cooperate too.
fn patch() {
    greenlet::monkey::patch_all();
    assert!(greenlet::monkey::is_patched());
    greenlet::yield_now();
}

/// Counts ticks of a greenlet that sleeps 1 ms at a time until `stop` is set.
fn ticker(stop: &Rc<Cell<bool>>) -> (Rc<Cell<u32>>, greenlet::JoinHandle<()>) {
    let ticks = Rc::new(Cell::new(0));
    let (t, stop) = (ticks.clone(), stop.clone());
    let h = greenlet::spawn(move || {
        while !stop.get() {
            greenlet::sleep(Duration::from_millis(1));
            t.set(t.get() + 1);
        }
    });
    (ticks, h)
}

fn errno_of(r: isize) -> Option<i32> {
    (r < 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap())
}

#[test]
fn read_on_a_closed_descriptor_is_ebadf() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.into_raw_fd();
    // SAFETY (test): closing a descriptor we own.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    let mut buf = [0u8; 4];
    // SAFETY (test): a valid buffer; the descriptor is closed on purpose.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 4) };
    assert_eq!(errno_of(r), Some(libc::EBADF));
}

#[test]
fn close_by_another_greenlet_wakes_the_parked_reader_with_ebadf_even_after_reuse() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.into_raw_fd();
    let reader = greenlet::spawn(move || {
        let mut buf = [0u8; 16];
        // SAFETY (test): a valid buffer.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 16) };
        (r, errno_of(r))
    });
    greenlet::yield_now(); // the reader parks on fd
    // SAFETY (test): closing the reader's descriptor behind its back, on purpose.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    // The number is reused at once by a new socket that has data waiting.
    let (c, mut d) = UnixStream::pair().unwrap();
    d.write_all(b"not for the old reader").unwrap();
    let reused = c.as_raw_fd() == fd;
    let (r, e) = reader.get().unwrap();
    assert_eq!((r, e), (-1, Some(libc::EBADF)));
    if reused {
        // The new socket's data is still there for its owner.
        let mut got = [0u8; 22];
        (&c).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"not for the old reader");
    }
    drop(b);
}

#[test]
fn shutdown_wakes_a_parked_reader_with_end_of_file() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let a2 = a.clone();
    let reader = greenlet::spawn(move || (&*a2).read(&mut [0u8; 8]).unwrap());
    greenlet::yield_now();
    a.shutdown(std::net::Shutdown::Read).unwrap();
    assert_eq!(reader.get().unwrap(), 0);
    drop(b);
}

#[test]
fn connect_refused_is_reported() {
    patch();
    // A port nobody listens on: held by a bound socket that never listens (a listening one,
    // even closed at once, could live on in a child another test forks meanwhile).
    let held = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    held.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    let addr = held.local_addr().unwrap().as_socket().unwrap();
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn connect_that_never_completes_ends_at_the_greenlet_timeout_while_others_run() {
    patch();
    // A listener with a full backlog drops further SYNs: connects hang in SYN_SENT.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut filled = Vec::new();
    let stop = Rc::new(Cell::new(false));
    let (ticks, t) = ticker(&stop);
    let timeout = greenlet::Timeout::start(Some(Duration::from_millis(300)));
    // Fill the backlog until a connect hangs; the Timeout ends the one that does.
    let err = loop {
        match TcpStream::connect(addr) {
            Ok(s) => filled.push(s),
            Err(e) => break e,
        }
    };
    drop(timeout);
    stop.set(true);
    t.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(ticks.get() > 0);
    // std's connect_timeout (its own poll loop) gives TimedOut too.
    let err = TcpStream::connect_timeout(&addr, Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[test]
fn a_nonblocking_socket_keeps_returning_would_block() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    c.set_nonblocking(true).unwrap();
    let err = (&c).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    listener.set_nonblocking(true).unwrap();
    let (_s, _) = listener.accept().unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
    // Back to blocking: the read parks (and the peer's write wakes it).
    c.set_nonblocking(false).unwrap();
    let (mut s2, _) = (_s.try_clone().unwrap(), ());
    let writer = greenlet::spawn(move || s2.write_all(b"ok").unwrap());
    let mut got = [0u8; 2];
    (&c).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok");
    writer.join().unwrap();
}

#[test]
fn the_user_view_of_a_listener_the_hooks_made_nonblocking_is_kept() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    let l = Rc::new(listener);
    let l2 = l.clone();
    let acceptor = greenlet::spawn(move || l2.accept().map(|(s, _)| s.peer_addr().is_ok()));
    greenlet::yield_now(); // parks in accept: the listener is now non-blocking underneath
    // SAFETY (test): F_GETFL on an open descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert_eq!(
        flags & libc::O_NONBLOCK,
        0,
        "the user still sees a blocking listener"
    );
    let _c = TcpStream::connect(addr).unwrap();
    assert!(acceptor.get().unwrap().unwrap());
    // A thread without greenlets accepting on it still blocks until a connection comes.
    let listener = Rc::try_unwrap(l).unwrap();
    let t = std::thread::spawn(move || listener.accept().map(|_| ()));
    std::thread::sleep(Duration::from_millis(30));
    assert!(!t.is_finished(), "the plain thread's accept blocks");
    let _c2 = std::net::TcpStream::connect(addr).unwrap();
    t.join().unwrap().unwrap();
}

#[test]
fn partial_writes_are_completed_and_partial_reads_returned() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    // 4 MiB: many times the socket buffer, so the writer parks many times.
    let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    let expect = data.clone();
    let writer = greenlet::spawn(move || {
        let mut a = a;
        // One write call: it returns only when all is written, as a blocking write does.
        // SAFETY (test): a valid buffer of data.len() bytes.
        let n = unsafe { libc::write(a.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        a.flush().unwrap();
        n
    });
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = vec![0u8; 1 << 16];
    while got.len() < expect.len() {
        let n = (&b).read(&mut buf).unwrap();
        assert!(n > 0);
        reads += 1;
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(writer.get().unwrap(), expect.len() as isize);
    assert_eq!(got, expect);
    assert!(reads > 1, "reads return what has arrived");
}

#[test]
fn a_kill_during_a_hooked_read_cancels_the_call_and_ends_the_greenlet() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let g = greenlet::spawn(move || {
        let r = (&a).read(&mut [0u8; 8]);
        s.set(Some(r.map_err(|e| e.raw_os_error())));
        // Code after the failed call goes on until the next green blocking call.
        greenlet::sleep(Duration::from_secs(10));
        unreachable!("the deferred kill is raised at the next park");
    });
    greenlet::yield_now();
    assert!(matches!(
        g.kill(),
        Ok(()) | Err(greenlet::JoinError::Killed)
    ));
    assert!(matches!(g.get(), Err(greenlet::JoinError::Killed)));
    assert_eq!(seen.get(), Some(Err(Some(libc::ECANCELED))));
}

/// A soft kill (`kill_timeout`) of a greenlet parked in a hooked read makes that read fail
/// with `ECANCELED`, once: its cleanup then blocks in hooked calls (a std write, a std sleep)
/// as usual, and it finishes by returning.
#[test]
fn a_soft_kill_during_a_hooked_read_fails_it_once_and_cleanup_may_block() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    let g = greenlet::spawn(move || {
        let err = (&a).read(&mut [0u8; 8]).unwrap_err();
        std::thread::sleep(Duration::from_millis(1)); // hooked: parks
        (&a).write_all(b"bye").unwrap();
        err.raw_os_error()
    });
    greenlet::yield_now();
    g.kill_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(g.get().unwrap(), Some(libc::ECANCELED));
    let mut got = [0u8; 3];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"bye");
}

#[test]
fn a_killed_greenlet_that_returns_after_the_hooked_call_counts_as_killed() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let g = greenlet::spawn(move || (&a).read(&mut [0u8; 8]).is_err());
    greenlet::yield_now();
    g.kill_nowait();
    assert!(matches!(g.get(), Err(greenlet::JoinError::Killed)));
}

#[test]
fn a_greenlet_timeout_ends_a_hooked_read_with_timed_out() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let timeout = greenlet::Timeout::start(Some(Duration::from_millis(20)));
    let err = (&a).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(timeout.is_expired());
}

#[test]
fn a_greenlet_timeout_ends_a_hooked_sleep_early() {
    patch();
    let t = std::time::Instant::now();
    let r = greenlet::with_timeout(Duration::from_millis(20), || {
        std::thread::sleep(Duration::from_secs(30))
    });
    assert!(r.is_err(), "the Timeout fired");
    assert!(t.elapsed() < Duration::from_secs(30));
}

static HANDLER_WRITES: AtomicUsize = AtomicUsize::new(0);
static HANDLER_FD: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    // A hooked call inside a signal handler: must go straight to the kernel.
    let fd = HANDLER_FD.load(Ordering::Relaxed) as RawFd;
    // SAFETY (test): write(2) is async-signal-safe; a one-byte static buffer.
    let r = unsafe { libc::write(fd, b"s".as_ptr().cast(), 1) };
    if r == 1 {
        HANDLER_WRITES.fetch_add(1, Ordering::Relaxed);
    }
    // A hooked sleep in a handler blocks for real instead of parking.
    // SAFETY (test): valid timespec.
    unsafe {
        libc::nanosleep(
            &libc::timespec {
                tv_sec: 0,
                tv_nsec: 1000,
            },
            std::ptr::null_mut(),
        )
    };
}

#[test]
fn signal_handlers_calling_hooked_functions_pass_through_and_sleeps_survive_eintr() {
    patch();
    let (r, w) = UnixStream::pair().unwrap();
    HANDLER_FD.store(w.as_raw_fd() as usize, Ordering::Relaxed);
    // SAFETY (test): installing a plain handler without SA_RESTART.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_usr1 as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGUSR1, &act, std::ptr::null_mut());
    }
    let me = unsafe { libc::pthread_self() };
    let sleeper = greenlet::spawn(|| {
        std::thread::sleep(Duration::from_millis(60));
        true
    });
    let busy = greenlet::spawn(move || {
        // Signals land while greenlets run and while the hub waits.
        for _ in 0..5 {
            // SAFETY (test): signalling our own thread.
            unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            greenlet::sleep(Duration::from_millis(5));
        }
    });
    busy.join().unwrap();
    assert!(sleeper.get().unwrap());
    assert_eq!(HANDLER_WRITES.load(Ordering::Relaxed), 5);
    let mut got = [0u8; 5];
    (&r).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"sssss");
    // The old action reported is the user's own handler, not the hooks' trampoline.
    // SAFETY (test): querying.
    let old = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut old);
        old
    };
    assert_eq!(
        old.sa_sigaction,
        on_usr1 as extern "C" fn(libc::c_int) as usize
    );
}

#[test]
fn a_plain_thread_blocking_read_is_unaffected_and_still_interrupted_by_signals() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 3];
        (&a).read_exact(&mut buf).unwrap();
        buf
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        !t.is_finished(),
        "a thread without greenlets blocks as unpatched"
    );
    b.write_all(b"abc").unwrap();
    assert_eq!(&t.join().unwrap(), b"abc");

    // A handler without SA_RESTART interrupts its blocking read with EINTR, as unpatched.
    // SAFETY (test): installing an empty handler.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_usr2 as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut());
    }
    let (a, _b) = UnixStream::pair().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        // SAFETY (test): our own thread id.
        tx.send(unsafe { libc::pthread_self() }).unwrap();
        let mut buf = [0u8; 1];
        // SAFETY (test): a valid buffer.
        let r = unsafe { libc::read(a.as_raw_fd(), buf.as_mut_ptr().cast(), 1) };
        errno_of(r)
    });
    let tid = rx.recv().unwrap();
    while !t.is_finished() {
        // SAFETY (test): signalling a live thread of ours (it finishes only after this).
        unsafe { libc::pthread_kill(tid, libc::SIGUSR2) };
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(t.join().unwrap(), Some(libc::EINTR));
}

extern "C" fn on_usr2(_: libc::c_int) {}

/// Ports gevent's `test__monkey_hub_in_thread.py` (after `patch_all`, plain threads call
/// `time.sleep`): three plain threads, with no greenlet runtime, sleep after patching as
/// unpatched, side by side, each the whole time.
#[test]
fn plain_threads_sleep_as_unpatched_after_patching() {
    patch();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(|| {
                let start = std::time::Instant::now();
                std::thread::sleep(Duration::from_millis(20));
                start.elapsed()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap() >= Duration::from_millis(20));
    }
}

#[test]
fn options_changed_through_a_duplicate_are_seen_through_the_original() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_s, _) = listener.accept().unwrap();
    // Learn the original's view (blocking, a timeout) through a read that times out.
    c.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(
        (&c).read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // The clone shares the open file: its options are the original's too.
    let c2 = c.try_clone().unwrap();
    c2.set_read_timeout(None).unwrap();
    c2.set_nonblocking(true).unwrap();
    // Non-blocking now: WouldBlock at once. Had the stale view (blocking, no timeout) been
    // kept, this read would park forever.
    let r = greenlet::with_timeout(Duration::from_secs(30), || (&c).read(&mut [0u8; 1]));
    assert_eq!(r.unwrap().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn connect_honours_so_sndtimeo_with_einprogress_as_unpatched() {
    patch();
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(0).unwrap();
    let addr: socket2::SockAddr = listener.local_addr().unwrap();
    let mut filled = Vec::new();
    let stop = Rc::new(Cell::new(false));
    let (ticks, t) = ticker(&stop);
    let err = loop {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        match s.connect(&addr) {
            Ok(()) => filled.push(s),
            Err(e) => break e,
        }
    };
    stop.set(true);
    t.join().unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::EINPROGRESS));
    assert!(ticks.get() > 0);
}

#[test]
fn getnameinfo_runs_on_the_lookup_threads() {
    patch();
    let g = greenlet::spawn(|| {
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 80u16.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut host = [0 as libc::c_char; 64];
        let mut serv = [0 as libc::c_char; 32];
        // SAFETY (test): a valid sockaddr_in and buffers of the sizes given.
        let rc = unsafe {
            libc::getnameinfo(
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
                host.as_mut_ptr(),
                host.len() as libc::socklen_t,
                serv.as_mut_ptr(),
                serv.len() as libc::socklen_t,
                libc::NI_NUMERICHOST | libc::NI_NUMERICSERV,
            )
        };
        let text = |b: &[libc::c_char]| {
            // SAFETY (test): getnameinfo wrote NUL-terminated strings.
            unsafe { std::ffi::CStr::from_ptr(b.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        };
        (rc, text(&host), text(&serv))
    });
    assert_eq!(g.get().unwrap(), (0, "127.0.0.1".into(), "80".into()));
}

#[test]
fn fork_gives_an_unpatched_child() {
    patch();
    let (mut parent_end, child_end) = UnixStream::pair().unwrap();
    let stop = Rc::new(Cell::new(false));
    let (ticks, t) = ticker(&stop);
    // SAFETY (test): the child only makes async-signal-safe calls and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let fd = child_end.as_raw_fd();
        let ok = !greenlet::monkey::is_patched();
        // Hooked calls in the child go straight to the kernel: a blocking sleep and write.
        // SAFETY: valid arguments; _exit ends the child.
        unsafe {
            libc::usleep(20_000);
            let msg: &[u8] = if ok {
                b"child unpatched"
            } else {
                b"child patched!!"
            };
            libc::write(fd, msg.as_ptr().cast(), msg.len());
            libc::_exit(0);
        }
    }
    assert!(pid > 0);
    let mut got = [0u8; 15];
    parent_end.read_exact(&mut got).unwrap(); // parks: the ticker runs meanwhile
    stop.set(true);
    t.join().unwrap();
    assert_eq!(&got, b"child unpatched");
    assert!(ticks.get() > 0);
    let mut status = 0;
    // SAFETY (test): reaping our child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(greenlet::monkey::is_patched(), "the parent stays patched");
    let _ = parent_end.write(b"");
}

#[test]
fn hooked_calls_during_thread_teardown_pass_through() {
    patch();
    struct ClosesAtExit(Option<UnixStream>, Option<UnixStream>);
    impl Drop for ClosesAtExit {
        fn drop(&mut self) {
            // Runs during thread teardown, possibly after the runtime is gone.
            let (mut a, b) = (self.0.take().unwrap(), self.1.take().unwrap());
            a.write_all(b"bye").unwrap();
            let mut buf = [0u8; 3];
            (&b).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"bye");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    thread_local! {
        static AT_EXIT: std::cell::RefCell<Option<ClosesAtExit>> = const { std::cell::RefCell::new(None) };
    }
    std::thread::spawn(|| {
        let (a, b) = UnixStream::pair().unwrap();
        AT_EXIT.with(|s| *s.borrow_mut() = Some(ClosesAtExit(Some(a), Some(b))));
        // Make the runtime and hub exist and be used.
        let g = greenlet::spawn(|| std::thread::sleep(Duration::from_millis(1)));
        g.join().unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn pipes_of_std_process_cooperate() {
    patch();
    let stop = Rc::new(Cell::new(false));
    let (ticks, t) = ticker(&stop);
    let kids: Vec<_> = (0..3)
        .map(|i| {
            greenlet::spawn(move || {
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("sleep 0.1; echo child {i}"))
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap()
            })
        })
        .collect();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("sleep 0.1; echo piped")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    child.wait().unwrap();
    assert_eq!(s, "piped\n");
    for (i, k) in kids.iter().enumerate() {
        assert_eq!(k.get().unwrap(), format!("child {i}\n"));
    }
    stop.set(true);
    t.join().unwrap();
    assert!(
        ticks.get() > 10,
        "the ticker ran while the children slept: {}",
        ticks.get()
    );
}

#[test]
fn poll_select_and_epoll_park_the_greenlet() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let woke = Rc::new(Cell::new(0));
    let w = woke.clone();
    let waiter = greenlet::spawn(move || {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY (test): one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 5000) };
        w.set(1);
        // select with a timeout that expires: 0 and an empty set.
        // SAFETY (test): valid fd_set and timeval.
        let s = unsafe {
            let mut set: libc::fd_set = std::mem::zeroed();
            libc::FD_ZERO(&mut set);
            let (c, _d) = UnixStream::pair().unwrap();
            libc::FD_SET(c.as_raw_fd(), &mut set);
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 20_000,
            };
            libc::select(
                c.as_raw_fd() + 1,
                &mut set,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut tv,
            )
        };
        // epoll_wait on a user's own epoll descriptor.
        // SAFETY (test): valid epoll calls.
        let e = unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 7,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
            let mut out = [libc::epoll_event { events: 0, u64: 0 }; 4];
            let n = libc::epoll_wait(ep, out.as_mut_ptr(), 4, 5000);
            libc::close(ep);
            (n, out[0].u64)
        };
        (n, p.revents & libc::POLLIN != 0, s, e)
    });
    // The waiter parked in poll: it has not woken while main ran.
    greenlet::sleep(Duration::from_millis(10));
    assert_eq!(woke.get(), 0);
    b.write_all(b"x").unwrap();
    let (n, readable, s, e) = waiter.get().unwrap();
    assert_eq!((n, readable), (1, true));
    assert_eq!(s, 0);
    assert_eq!(e, (1, 7));
}

#[test]
fn names_resolve_on_the_lookup_threads() {
    patch();
    let stop = Rc::new(Cell::new(false));
    let (_ticks, t) = ticker(&stop);
    let lookups: Vec<_> = (0..4)
        .map(|_| {
            greenlet::spawn(|| {
                std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80))
                    .map(|it| it.count())
                    .unwrap_or(0)
            })
        })
        .collect();
    for l in &lookups {
        assert!(l.get().unwrap() > 0);
    }
    stop.set(true);
    t.join().unwrap();
    // A name that does not exist fails as libc says, without hanging.
    let r = std::net::ToSocketAddrs::to_socket_addrs(&("no-such-host.invalid", 80));
    assert!(r.is_err());
}

#[test]
fn a_descriptor_number_reused_behind_the_hooks_back_is_relearned() {
    // The kernel hands out the lowest free number: in a process of its own no other test's
    // thread can take the closed number before the pipe does.
    if !util::in_child_process("a_descriptor_number_reused_behind_the_hooks_back_is_relearned") {
        return;
    }
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"s").unwrap();
    let fd = a.into_raw_fd();
    let mut one = [0u8; 1];
    // The hooks now know this number as a socket.
    // SAFETY (test): a valid one-byte buffer.
    assert_eq!(unsafe { libc::read(fd, one.as_mut_ptr().cast(), 1) }, 1);
    // Closed without the hooks seeing it (as libc's own fclose would).
    // SAFETY (test): closing our own descriptor with the raw system call.
    assert_eq!(unsafe { libc::syscall(libc::SYS_close, fd) }, 0);
    let mut p = [0; 2];
    // SAFETY (test): a valid array for pipe2.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    assert_eq!(p[0], fd, "the number was reused by the pipe's read end");
    // SAFETY (test): writing to and reading from our own pipe.
    unsafe {
        assert_eq!(libc::write(p[1], b"pipe".as_ptr().cast(), 4), 4);
        let mut got = [0u8; 4];
        assert_eq!(libc::read(p[0], got.as_mut_ptr().cast(), 4), 4);
        assert_eq!(&got, b"pipe");
        libc::close(p[0]);
        libc::close(p[1]);
    }
}

#[test]
fn the_hubs_own_waker_and_poll_never_come_back_into_the_hub() {
    patch();
    // A greenlet of another patched thread stops this thread's hub: its write to the hub's
    // waker (an eventfd, through the `write` hook, from a greenlet) and this hub's own
    // epoll_wait and waker read (through the hooks, from the hub) pass straight through.
    let handle = greenlet::HubHandle::current().unwrap();
    let other = std::thread::spawn(move || {
        let g = greenlet::spawn(move || {
            std::thread::sleep(Duration::from_millis(30)); // parks on that thread's hub
            handle.stop();
        });
        g.join().unwrap();
    });
    let sleeper = greenlet::spawn(|| std::thread::sleep(Duration::from_secs(3600)));
    // Main parks in a hooked sleep of its own; the stop ends it early (EINTR, nothing left).
    std::thread::sleep(Duration::from_secs(3600));
    other.join().unwrap();
    sleeper.kill().unwrap_or(());
}

#[test]
fn msg_waitall_fills_the_buffer_on_streams_only() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    let writer = greenlet::spawn(move || {
        let mut b = b;
        for part in [b"ab", b"cd", b"ef"] {
            b.write_all(part).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        b
    });
    let mut buf = [0u8; 6];
    // SAFETY (test): a valid buffer.
    let n = unsafe { libc::recv(a.as_raw_fd(), buf.as_mut_ptr().cast(), 6, libc::MSG_WAITALL) };
    assert_eq!((n, &buf), (6, b"abcdef"));
    drop(writer.get().unwrap());

    let (c, d) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let sender = greenlet::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        d.send(b"one").unwrap();
        d.send(b"two").unwrap();
    });
    let mut buf = [0u8; 16];
    // SAFETY (test): a valid buffer.
    let n = unsafe {
        libc::recv(
            c.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            16,
            libc::MSG_WAITALL,
        )
    };
    assert_eq!(&buf[..n as usize], b"one", "one datagram, not two glued");
    sender.join().unwrap();
}

#[test]
fn a_write_that_times_out_returns_what_it_wrote_then_would_block() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_write_timeout(Some(Duration::from_millis(30)))
        .unwrap();
    let big = vec![7u8; 8 << 20];
    let stop = Rc::new(Cell::new(false));
    let (ticks, t) = ticker(&stop);
    // One blocking write: the buffer fills, nobody reads, SO_SNDTIMEO expires: the kernel's
    // answer is the part written.
    // SAFETY (test): a valid buffer.
    let n = unsafe { libc::write(a.as_raw_fd(), big.as_ptr().cast(), big.len()) };
    assert!(n > 0 && (n as usize) < big.len(), "partial count, got {n}");
    // Nothing more fits: the next write fails with EAGAIN once its timeout expires.
    let err = (&a).write(&big).unwrap_err();
    stop.set(true);
    t.join().unwrap();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
    assert!(ticks.get() > 0, "the hub ran while the writer waited");
}

#[test]
fn every_sleeping_call_parks_only_its_greenlet() {
    patch();
    let inside = Rc::new(Cell::new(0u32));
    let peak = Rc::new(Cell::new(0u32));
    let sleepers: [fn(); 4] = [
        // SAFETY (test): plain sleeping calls with valid arguments.
        || unsafe {
            libc::usleep(30_000);
        },
        || unsafe {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 30_000_000,
            };
            libc::nanosleep(&ts, std::ptr::null_mut());
        },
        || unsafe {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 30_000_000,
            };
            libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &ts, std::ptr::null_mut());
        },
        || unsafe {
            // An absolute deadline on the monotonic clock.
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
            ts.tv_nsec += 30_000_000;
            if ts.tv_nsec >= 1_000_000_000 {
                ts.tv_sec += 1;
                ts.tv_nsec -= 1_000_000_000;
            }
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            );
        },
    ];
    let handles: Vec<_> = sleepers
        .iter()
        .chain(std::iter::once(
            &((|| unsafe {
                libc::sleep(1);
            }) as fn()),
        ))
        .map(|&f| {
            let (inside, peak) = (inside.clone(), peak.clone());
            greenlet::spawn(move || {
                inside.set(inside.get() + 1);
                peak.set(peak.get().max(inside.get()));
                f();
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    greenlet::joinall(&handles, None, None).unwrap();
    assert_eq!(peak.get(), 5, "all five were asleep at once");
}
