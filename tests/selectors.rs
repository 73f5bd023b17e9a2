//! `select` and `Selector`: ports of gevent's `test__select.py` and `test__selectors.py` that
//! `tests/select.rs` and `tests/waits.rs` do not already hold.
//!
//! gevent's "possible crashes" cases close a descriptor while (or before) it is waited on; the
//! call must return (with or without an error) and never crash or hang. A Rust socket cannot be
//! dropped while `select` borrows it, so those cases use raw descriptors, or a socket known to
//! a `Selector` only by its number.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use greenlet::net::UnixStream;
use greenlet::select::{Interest, Selector};

const TICK: Duration = Duration::from_millis(2);

/// A pipe as two raw descriptors nobody owns: this test closes them itself.
fn raw_pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

fn close(fd: RawFd) {
    // SAFETY: `fd` came from `raw_pipe` and is closed once, by the caller's design.
    unsafe { libc::close(fd) };
}

/// Whether `r` is a return or the error for a descriptor that is not open: what a wait on a
/// descriptor closed meanwhile may give.
fn returned_or_ebadf<T>(r: &std::io::Result<T>) -> bool {
    match r {
        Ok(_) => true,
        Err(e) => e.raw_os_error() == Some(libc::EBADF),
    }
}

/// Ports gevent's `test__select.py::TestSelectRead::test_errno` and
/// `TestPossibleCrashes::test_closing_fd_before_selecting`: `select` on a descriptor that is not
/// open fails with `EBADF`.
#[test]
fn select_on_a_closed_descriptor_is_ebadf() {
    let fd = util::closed_fd();
    let e = greenlet::select::select(&[&fd], &[], Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    let e = greenlet::select::select(&[&fd], &[], Some(TICK)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
}

/// Ports gevent's `test__select.py::TestSelectTypes::test_int`: `select` takes a socket's raw
/// descriptor number.
#[test]
fn select_takes_a_raw_descriptor_number() {
    let (a, _b) = UnixStream::pair().unwrap();
    let fd: RawFd = a.as_raw_fd();
    let (r, w) = greenlet::select::select(&[&fd], &[], Some(TICK)).unwrap();
    assert!(r.is_empty() && w.is_empty());
}

/// Ports gevent's `test__select.py::TestPossibleCrashes::test_closing_fd_while_selecting`: a
/// greenlet closes the descriptor that main is selecting on; the select returns.
#[test]
fn select_returns_when_its_descriptor_is_closed_meanwhile() {
    let (r, w) = raw_pipe();
    let closer = greenlet::spawn(move || close(r));
    let got = greenlet::select::select(&[&r], &[], Some(TICK));
    assert!(returned_or_ebadf(&got), "{got:?}");
    closer.join().unwrap();
    close(w);
}

/// Ports gevent's `test__select.py::TestPollRead::test_unregister_never_registered`: removing a
/// descriptor that was never registered is an error (`NotFound`, Python's `KeyError`).
#[test]
fn unregistering_an_unknown_descriptor_is_not_found() {
    let mut sel = Selector::<()>::new().unwrap();
    let e = sel.unregister(5 as RawFd).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// Ports gevent's `test__select.py::TestPollRead::test_poll_invalid` (skipped by gevent, which
/// would see `POLLNVAL`) with epoll's rule: a descriptor closed while registered leaves the
/// kernel's set, so `select` reports nothing for it, and unregistering it still hands the data
/// back.
#[test]
fn a_registered_descriptor_closed_is_reported_no_more() {
    let (r, w) = raw_pipe();
    let mut sel = Selector::new().unwrap();
    sel.register(r, Interest::READABLE, "pipe").unwrap();
    close(r);
    close(w);
    assert!(sel.select(Some(Duration::ZERO)).unwrap().is_empty());
    assert_eq!(sel.unregister(r).unwrap(), "pipe");
}

/// Ports gevent's `test__select.py::TestPossibleCrashes::test_closing_object_while_polling` and
/// `test__selectors.py::TestPossibleCrashes::test_closing_fd_while_selecting`: a greenlet closes
/// a descriptor registered in a `Selector` while main selects on it; the select returns.
#[test]
fn a_selector_returns_when_a_registered_descriptor_is_closed_meanwhile() {
    let (r, w) = raw_pipe();
    let mut sel = Selector::new().unwrap();
    sel.register(r, Interest::READABLE, ()).unwrap();
    let closer = greenlet::spawn(move || close(r));
    let got = sel.select(Some(TICK)).map(|ready| ready.len());
    assert!(returned_or_ebadf(&got), "{got:?}");
    closer.join().unwrap();
    sel.unregister(r).unwrap();
    close(w);
}

/// Ports gevent's `test__selectors.py::TestPossibleCrashes::test_closing_object_while_selecting`:
/// a greenlet drops a green socket registered in a `Selector` while main selects; the select
/// returns.
#[test]
fn a_selector_returns_when_a_registered_socket_is_dropped_meanwhile() {
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let mut sel = Selector::new().unwrap();
    sel.register(&a, Interest::READABLE, ()).unwrap();
    let dropper = greenlet::spawn(move || drop(a));
    let got = sel.select(Some(TICK)).map(|ready| ready.len());
    assert!(returned_or_ebadf(&got), "{got:?}");
    dropper.join().unwrap();
    sel.unregister(fd).unwrap();
    drop(b);
}

/// Ports gevent's `test__selectors.py::TestPossibleCrashes::test_closing_fd_before_selecting`:
/// registering a descriptor that is not open fails (`EBADF`; Python's `ValueError`).
#[test]
fn registering_a_closed_descriptor_fails() {
    let mut sel = Selector::new().unwrap();
    let e = sel
        .register(util::closed_fd(), Interest::READABLE, ())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    assert!(sel.is_empty());
}

/// gevent's `run_selector_once` with `read_from_ready_socket_and_reply`: one select; each ready
/// socket's message is echoed and the socket is unregistered and closed.
fn reply_once(sel: &mut Selector<usize>, conns: &mut [Option<UnixStream>]) -> usize {
    let ready: Vec<usize> = sel
        .select(Some(util::NOT_HANGING))
        .unwrap()
        .into_iter()
        .map(|(key, _)| *key.data)
        .collect();
    for &i in &ready {
        let mut conn = conns[i].take().unwrap();
        let mut buf = [0; 100];
        let n = conn.read(&mut buf).unwrap();
        conn.write_all(&buf[..n]).unwrap();
        sel.unregister(&conn).unwrap();
        greenlet::yield_now();
    }
    ready.len()
}

/// Ports gevent's `test__selectors.py::GeventSelectorTest::test_select_using_socketpair`: a
/// greenlet selects on one end of a socket pair and echoes what comes; the other end sends and
/// reads the echo.
#[test]
fn a_selecting_greenlet_echoes_a_socket_pair() {
    let (server, mut client) = UnixStream::pair().unwrap();
    let mut sel = Selector::new().unwrap();
    sel.register(&server, Interest::READABLE, 0).unwrap();
    let mut conns = vec![Some(server)];
    let glet = greenlet::spawn(move || reply_once(&mut sel, &mut conns));
    client.write_all(b"abcdef").unwrap();
    let mut data = [0; 6];
    client.read_exact(&mut data).unwrap();
    assert_eq!(&data, b"abcdef");
    assert_eq!(glet.get_timeout(util::NOT_HANGING).unwrap(), 1);
}

/// Ports gevent's `test__selectors.py::GeventSelectorTest::test_select_many_sockets`: ten pairs;
/// one selector finds every server end ready and echoes it, another finds every client end
/// ready with its own reply, each with its data.
#[test]
fn selectors_over_many_socket_pairs() {
    let mut server_sel = Selector::new().unwrap();
    let mut client_sel = Selector::new().unwrap();
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for i in 0..10usize {
        let (server, mut client) = UnixStream::pair().unwrap();
        server_sel.register(&server, Interest::READABLE, i).unwrap();
        client_sel.register(&client, Interest::READABLE, i).unwrap();
        client.write_all(i.to_string().as_bytes()).unwrap();
        servers.push(Some(server));
        clients.push(client);
    }
    greenlet::yield_now();
    assert_eq!(reply_once(&mut server_sel, &mut servers), 10);
    let ready = client_sel.select(Some(util::NOT_HANGING)).unwrap();
    assert_eq!(ready.len(), 10);
    let mut found: Vec<usize> = ready.iter().map(|(key, _)| *key.data).collect();
    for &i in &found {
        let mut buf = [0; 50];
        let n = (&clients[i]).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], i.to_string().as_bytes());
    }
    found.sort_unstable();
    assert_eq!(found, (0..10).collect::<Vec<_>>());
}
