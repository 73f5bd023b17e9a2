//! Unmodified std code under `greenlet::monkey::patch_all()`: sockets, sleeps, timeouts and
//! threads without greenlets.
#![cfg(feature = "monkey")]

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

/// A greenlet that counts ticks every millisecond until `stop` is set: shows that the hub ran
/// while something else was blocked.
fn ticker(stop: Rc<Cell<bool>>) -> (Rc<Cell<u32>>, greenlet::JoinHandle<()>) {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let h = greenlet::spawn(move || {
        while !stop.get() {
            greenlet::sleep(Duration::from_millis(1));
            t.set(t.get() + 1);
        }
    });
    (ticks, h)
}

#[test]
fn std_net_echo_server_and_client_as_greenlets() {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenlet::spawn(move || {
        let mut served = 0;
        while served < 3 {
            let (mut conn, _) = listener.accept().unwrap();
            served += 1;
            greenlet::spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    let n = conn.read(&mut buf).unwrap();
                    if n == 0 {
                        return;
                    }
                    conn.write_all(&buf[..n]).unwrap();
                }
            });
        }
    });
    let clients: Vec<_> = (0..3)
        .map(|i| {
            greenlet::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let msg = format!("hello {i}");
                c.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0u8; msg.len()];
                c.read_exact(&mut back).unwrap();
                String::from_utf8(back).unwrap()
            })
        })
        .collect();
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(c.get().unwrap(), format!("hello {i}"));
    }
    server.join().unwrap();
}

#[test]
fn thread_sleep_in_a_thousand_greenlets_at_once() {
    greenlet::monkey::patch_all();
    let awake = Rc::new(Cell::new(0u32));
    let peak = Rc::new(Cell::new(0u32));
    let handles: Vec<_> = (0..1000)
        .map(|_| {
            let (awake, peak) = (awake.clone(), peak.clone());
            greenlet::spawn(move || {
                awake.set(awake.get() + 1);
                peak.set(peak.get().max(awake.get()));
                std::thread::sleep(Duration::from_millis(20));
                awake.set(awake.get() - 1);
            })
        })
        .collect();
    greenlet::joinall(&handles, None, None).unwrap();
    // All 1000 were inside their sleep at the same time.
    assert_eq!(peak.get(), 1000);
}

#[test]
fn std_read_timeout_still_gives_would_block() {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_s, _) = listener.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let stop = Rc::new(Cell::new(false));
    let (ticks, t) = ticker(stop.clone());
    let err = (&c).read(&mut [0u8; 8]).unwrap_err();
    stop.set(true);
    t.join().unwrap();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
    assert!(ticks.get() > 0, "the hub ran while main waited");
}
