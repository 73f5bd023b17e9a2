//! greenlet::select and the fd waits of greenlet::net: raw descriptors, green sockets, the
//! Selector registry; waits park only the calling greenlet.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{UnixStream, wait_readable, wait_writable};
use greenlet::select::{Interest, Selector, select};
use util::tcp_pair;

/// A greenlet that counts loop turns while the test waits: proves the wait parks only the
/// calling greenlet.
fn ticker() -> (Rc<Cell<u32>>, greenlet::JoinHandle<()>) {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let h = greenlet::spawn(move || {
        for _ in 0..10 {
            t.set(t.get() + 1);
            greenlet::sleep(Duration::from_millis(1));
        }
    });
    (ticks, h)
}

#[test]
fn wait_readable_and_writable_on_raw_descriptors() {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd: RawFd = a.as_raw_fd();
    // Timeout, and the hub keeps running other greenlets meanwhile.
    let (ticks, h) = ticker();
    let start = Instant::now();
    assert!(!wait_readable(fd, Some(Duration::from_millis(30))).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(ticks.get() > 1, "other greenlets ran during the wait");
    h.join().unwrap();
    // Zero timeout just checks.
    assert!(!wait_readable(fd, Some(Duration::ZERO)).unwrap());
    assert!(wait_writable(fd, Some(Duration::ZERO)).unwrap());
    // Woken by a writer on another thread.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        b.write_all(b"x").unwrap();
        b
    });
    assert!(wait_readable(fd, None).unwrap());
    // Level-triggered: still readable until read.
    assert!(wait_readable(&a, None).unwrap());
    let mut buf = [0; 1];
    (&a).read_exact(&mut buf).unwrap();
    let b = t.join().unwrap();
    // Hang-up counts as readable (read returns EOF).
    drop(b);
    assert!(wait_readable(fd, Some(Duration::from_secs(5))).unwrap());
    assert_eq!((&a).read(&mut buf).unwrap(), 0);
}

#[test]
fn wait_on_a_closed_descriptor_is_ebadf() {
    let fd = util::closed_fd();
    let e = wait_readable(fd, Some(Duration::from_millis(5))).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
}

#[test]
fn wait_on_green_sockets_and_on_their_raw_descriptors() {
    let (client, server) = tcp_pair();
    // A greenlet blocked reading the socket (registered with the hub) ...
    let reader = greenlet::spawn({
        let server = server.try_clone().unwrap();
        move || {
            let mut buf = [0; 2];
            (&server).read_exact(&mut buf).unwrap();
            buf
        }
    });
    greenlet::yield_now();
    // ... and waits on the same socket, through the socket and through its raw descriptor
    // (registered with the hub already: served through a duplicate).
    let by_socket = greenlet::spawn({
        let server = server.try_clone().unwrap();
        move || wait_readable(&server, Some(Duration::from_secs(5))).unwrap()
    });
    let raw = server.as_raw_fd();
    let by_fd = greenlet::spawn(move || wait_readable(raw, Some(Duration::from_secs(5))).unwrap());
    greenlet::sleep(util::SHORT);
    assert!(!by_socket.is_ready() && !by_fd.is_ready() && !reader.is_ready());
    (&client).write_all(b"hi").unwrap();
    assert_eq!(&reader.get().unwrap(), b"hi");
    // The waiters were woken by the same event; the data may be gone by the time they look,
    // in which case they wait on (and time out at 5 s): give them data that stays.
    (&client).write_all(b"more").unwrap();
    assert!(by_socket.get().unwrap());
    assert!(by_fd.get().unwrap());
    assert!(wait_writable(&client, Some(Duration::ZERO)).unwrap());
}

#[test]
fn select_returns_the_ready_ones() {
    let pairs: Vec<(UnixStream, UnixStream)> =
        (0..4).map(|_| UnixStream::pair().unwrap()).collect();
    let readers: Vec<&UnixStream> = pairs.iter().map(|(a, _)| a).collect();
    let read_set: Vec<&dyn greenlet::select::Selectable> = readers
        .iter()
        .map(|s| *s as &dyn greenlet::select::Selectable)
        .collect();
    // Nothing readable: times out with nothing, others run meanwhile.
    let (ticks, h) = ticker();
    let (r, w) = select(&read_set, &[], Some(Duration::from_millis(20))).unwrap();
    assert!(r.is_empty() && w.is_empty());
    assert!(ticks.get() > 1);
    h.join().unwrap();
    // Two become readable while we wait (written by greenlets).
    let w1 = pairs[1].1.try_clone().unwrap();
    let w3 = pairs[3].1.try_clone().unwrap();
    greenlet::spawn(move || {
        greenlet::sleep(Duration::from_millis(5));
        (&w1).write_all(b"1").unwrap();
        (&w3).write_all(b"3").unwrap();
    });
    let (mut r, _) = select(&read_set, &[], None).unwrap();
    if r.len() == 1 {
        // The second write may land after the first wake-up.
        greenlet::sleep(util::SHORT);
        r = select(&read_set, &[], Some(Duration::ZERO)).unwrap().0;
    }
    assert_eq!(r, [1, 3]);
    // Read and write lists together, raw descriptors mixed with green sockets, the same
    // descriptor in both lists.
    let fd0 = pairs[0].0.as_raw_fd();
    let std_pair = std::os::unix::net::UnixStream::pair().unwrap();
    let (r, w) = select(
        &[&pairs[1].0, &fd0, &std_pair.0],
        &[&fd0, &pairs[2].0],
        None,
    )
    .unwrap();
    assert_eq!(r, [0]);
    assert_eq!(w, [0, 1]);
}

#[test]
fn select_parks_on_many_until_one_fires() {
    let (a, a_peer) = UnixStream::pair().unwrap();
    let (b, b_peer) = UnixStream::pair().unwrap();
    let raw_pair = std::os::unix::net::UnixStream::pair().unwrap();
    let raw = raw_pair.0.as_raw_fd();
    let mut raw_peer = raw_pair.1;
    // Each source in turn wakes the select: green socket, green socket, raw descriptor.
    for (i, who) in [1usize, 0, 2].into_iter().enumerate() {
        let (ap, bp) = (a_peer.try_clone().unwrap(), b_peer.try_clone().unwrap());
        let mut rp = raw_peer.try_clone().unwrap();
        let writer = greenlet::spawn(move || {
            greenlet::sleep(Duration::from_millis(10));
            match who {
                0 => (&ap).write_all(b"a").unwrap(),
                1 => (&bp).write_all(b"b").unwrap(),
                _ => rp.write_all(b"r").unwrap(),
            }
        });
        let (r, _) = select(&[&a, &b, &raw], &[], Some(Duration::from_secs(5))).unwrap();
        assert_eq!(r, [who], "round {i}");
        writer.join().unwrap();
        let mut buf = [0; 1];
        match who {
            0 => (&a).read_exact(&mut buf).unwrap(),
            1 => (&b).read_exact(&mut buf).unwrap(),
            _ => (&raw_pair.0).read_exact(&mut buf).unwrap(),
        }
    }
    raw_peer.flush().unwrap();
}

#[test]
fn select_edge_cases() {
    // Empty lists: a sleep with a timeout, an error without.
    let start = Instant::now();
    assert_eq!(
        select(&[], &[], Some(Duration::from_millis(10))).unwrap(),
        (vec![], vec![])
    );
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert_eq!(
        select(&[], &[], None).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // A closed descriptor.
    let fd = util::closed_fd();
    assert_eq!(
        select(&[&fd], &[], Some(Duration::ZERO))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
    // A greenlet Timeout ends a select like its own timeout.
    let (c, _d) = UnixStream::pair().unwrap();
    let t = greenlet::Timeout::start(Some(Duration::from_millis(10)));
    assert_eq!(select(&[&c], &[], None).unwrap(), (vec![], vec![]));
    assert!(t.is_expired());
}

#[test]
fn selector_register_modify_unregister() {
    let (a, a_peer) = UnixStream::pair().unwrap();
    let (b, b_peer) = UnixStream::pair().unwrap();
    let raw = std::os::unix::net::UnixStream::pair().unwrap();
    let mut sel = Selector::new().unwrap();
    assert!(sel.is_empty());
    sel.register(&a, Interest::READABLE, "a").unwrap();
    sel.register(&b, Interest::READABLE, "b").unwrap();
    sel.register(raw.0.as_raw_fd(), Interest::READABLE, "raw")
        .unwrap();
    assert_eq!(sel.len(), 3);
    assert_eq!(
        sel.register(&a, Interest::WRITABLE, "again")
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(sel.get_key(&b).map(|k| *k.data), Some("b"));

    // Nothing ready: times out, others run meanwhile.
    let (ticks, h) = ticker();
    assert!(
        sel.select(Some(Duration::from_millis(20)))
            .unwrap()
            .is_empty()
    );
    assert!(ticks.get() > 1);
    h.join().unwrap();

    // One becomes ready while we wait.
    let bp = b_peer.try_clone().unwrap();
    greenlet::spawn(move || {
        greenlet::sleep(Duration::from_millis(5));
        (&bp).write_all(b"!").unwrap();
    });
    let ready: Vec<(&str, Interest)> = sel
        .select(None)
        .unwrap()
        .into_iter()
        .map(|(k, ev)| (*k.data, ev))
        .collect();
    assert_eq!(ready, [("b", Interest::READABLE)]);
    // Level-triggered: reported again until read.
    assert_eq!(sel.select(Some(Duration::ZERO)).unwrap().len(), 1);
    (&b).read_exact(&mut [0; 1]).unwrap();
    assert!(sel.select(Some(Duration::ZERO)).unwrap().is_empty());

    // Modify: a for writing too (always writable), with new data.
    sel.modify(&a, Interest::READABLE | Interest::WRITABLE, "a-rw")
        .unwrap();
    let ready = sel.select(None).unwrap();
    assert_eq!(ready.len(), 1);
    assert_eq!((*ready[0].0.data, ready[0].1), ("a-rw", Interest::WRITABLE));
    assert_eq!(ready[0].0.events, Interest::READABLE | Interest::WRITABLE);
    sel.modify(&a, Interest::READABLE, "a").unwrap();

    // Unregister gives the data back; unregistered descriptors are not reported.
    assert_eq!(sel.unregister(&b).unwrap(), "b");
    assert_eq!(sel.unregister(&b).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        sel.modify(&b, Interest::READABLE, "b").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    (&b_peer).write_all(b"?").unwrap();
    assert!(
        sel.select(Some(Duration::from_millis(5)))
            .unwrap()
            .is_empty()
    );

    // Raw descriptor from another thread; hang-up reports readable.
    let mut raw_peer = raw.1;
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        raw_peer.write_all(b"x").unwrap();
    });
    let ready = sel.select(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        ready.iter().map(|(k, _)| *k.data).collect::<Vec<_>>(),
        ["raw"]
    );
    drop(a_peer);
    let mut datas: Vec<&str> = sel
        .select(Some(Duration::from_secs(5)))
        .unwrap()
        .iter()
        .map(|(k, _)| *k.data)
        .collect();
    datas.sort();
    assert_eq!(datas, ["a", "raw"]);
}

#[test]
fn selector_works_for_green_sockets_others_read_from() {
    let (client, server) = tcp_pair();
    let mut sel = Selector::new().unwrap();
    sel.register(&server, Interest::READABLE, ()).unwrap();
    // A greenlet parked in a read on the same socket (its own hub registration).
    let reader = greenlet::spawn({
        let server = server.try_clone().unwrap();
        move || {
            let mut buf = [0; 1];
            (&server).read_exact(&mut buf).unwrap();
        }
    });
    greenlet::yield_now();
    (&client).write_all(b"12").unwrap();
    let ready = sel.select(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(ready.len(), 1);
    reader.join().unwrap();
}
