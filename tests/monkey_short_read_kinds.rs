//! What the hooked `socket` and `accept` record of a new socket decides whether a short read
//! counts as having emptied it: only plain TCP's does. A datagram socket and a Unix stream
//! accepted from a Unix listener ask the kernel first on the read after a short one.
//!
//! In a file of its own: an option set through a shared descriptor (as other tests of short
//! reads do) makes the hooks forget what they recorded, and they then ask the kernel, which
//! would hide a wrong record.
#![cfg(feature = "monkey")]

mod util;

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};

use util::reads::{READ_TIMEOUT, parks, wait_queued};

/// Makes the hooks' table hold slots for low descriptors: it allocates them on a cooperating
/// call, never in the hooked `socket` (which must stay async-signal-safe), so the first sockets
/// of a process would otherwise go unrecorded and be looked at later.
fn table_ready() {
    greenlet::monkey::patch_all();
    // The hooks cooperate once the thread has its runtime.
    greenlet::spawn(|| ()).join().unwrap();
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.set_nonblocking(true).unwrap();
    assert!(probe.recv(&mut [0u8; 1]).is_err(), "nothing was sent to it");
}

#[test]
fn a_datagram_socket_asks_the_kernel_after_a_short_read() {
    table_ready();
    // One datagram per read: the one read says nothing of the next one queued.
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(receiver.local_addr().unwrap()).unwrap();
    let first = {
        let s = sender.try_clone().unwrap();
        greenlet::spawn(move || assert_eq!(s.send(b"ab").unwrap(), 2))
    };
    let mut buf = [0u8; 16];
    let (n, parked) = parks(|| receiver.recv(&mut buf).unwrap());
    assert_eq!(&buf[..n], b"ab");
    assert!(parked, "registered by a park");
    first.join().unwrap();
    assert_eq!(sender.send(b"cd").unwrap(), 2);
    wait_queued(receiver.as_raw_fd(), 2);
    let (n, parked) = parks(|| receiver.recv(&mut buf).unwrap());
    assert_eq!(&buf[..n], b"cd");
    assert!(!parked, "not TCP: asked the kernel first");
}

#[test]
fn a_unix_stream_from_a_unix_listener_asks_the_kernel_after_a_short_read() {
    table_ready();
    // A Unix stream read stops short at passed descriptors: a short read says nothing.
    let dir = std::env::temp_dir().join(format!("greenlet-short-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("listener.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut client = UnixStream::connect(&path).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    server.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let sender = {
        let mut c = client.try_clone().unwrap();
        greenlet::spawn(move || c.write_all(b"ab").unwrap())
    };
    let mut buf = [0u8; 16];
    let (n, parked) = parks(|| server.read(&mut buf).unwrap());
    assert_eq!(&buf[..n], b"ab");
    assert!(parked, "registered by a park");
    sender.join().unwrap();
    client.write_all(b"cd").unwrap();
    wait_queued(server.as_raw_fd(), 2);
    let (n, parked) = parks(|| server.read(&mut buf).unwrap());
    assert_eq!(&buf[..n], b"cd");
    assert!(!parked, "not TCP: asked the kernel first");
}
