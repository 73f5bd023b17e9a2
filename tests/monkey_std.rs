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

/// Ports gevent's `test__monkey.py::TestMonkey::test_socket` (after patching, the `socket`
/// module's functions are gevent's): std's own `TcpListener` and `TcpStream` serve and connect
/// as greenlets, each blocking call parking only its greenlet.
#[test]
fn std_net_echo_server_and_client_as_greenlets() {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenlet::spawn(move || {
        let mut handlers = Vec::new();
        while handlers.len() < 3 {
            let (mut conn, _) = listener.accept().unwrap();
            handlers.push(greenlet::spawn(move || {
                let mut buf = [0u8; 1024];
                loop {
                    let n = conn.read(&mut buf).unwrap();
                    if n == 0 {
                        return;
                    }
                    conn.write_all(&buf[..n]).unwrap();
                }
            }));
        }
        handlers
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
    // Each handler sees its client's end (read returns 0) and finishes cleanly.
    for handler in server.get().unwrap() {
        handler.join().unwrap();
    }
}

/// Ports gevent's `test__monkey.py::TestMonkey::test_time` (after patching, `time.sleep` is
/// gevent's): `std::thread::sleep` parks only its greenlet, so a thousand sleep at once.
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

#[test]
fn monkey_fetch_example_overlaps_the_concurrent_fetches() {
    let out = std::process::Command::new(util::example_binary("monkey_fetch"))
        .arg("--self-test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("bytes received from").count(), 6, "{text}");
    // Sequentially each GET is answered before the next starts; concurrently all three are
    // sent before the first answer comes back.
    let lines: Vec<&str> = text.lines().collect();
    let seq_end = lines
        .iter()
        .position(|l| l.starts_with("sequential cost"))
        .unwrap();
    let conc_end = lines
        .iter()
        .position(|l| l.starts_with("concurrent cost"))
        .unwrap();
    let kinds = |ls: &[&str]| -> String {
        ls.iter()
            .filter_map(|l| {
                if l.starts_with("GET:") {
                    Some('G')
                } else if l.contains("bytes received") {
                    Some('R')
                } else {
                    None
                }
            })
            .collect()
    };
    assert_eq!(kinds(&lines[..seq_end]), "GRGRGR", "{text}");
    assert_eq!(kinds(&lines[seq_end..conc_end]), "GGGRRR", "{text}");
}

#[test]
fn http_hello_std_example_answers_over_plain_std() {
    let out = std::process::Command::new(util::example_binary("http_hello_std"))
        .arg("--self-test")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 x `200 OK`, 2 bodies"), "{text}");
}

#[test]
fn monkey_cost_example_measures_the_pass_through() {
    let out = std::process::Command::new(util::example_binary("monkey_cost"))
        .args(["--measure", "1000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let figure = |key: &str| -> f64 {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {text}"))
    };
    for key in ["raw_ns=", "unpatched_ns=", "patched_ns="] {
        assert!(figure(key) > 0.0, "{text}");
    }
}

#[test]
fn the_hooks_are_in_the_dynamic_symbol_table_for_shared_libraries() {
    // What a shared library (a C library, a dlopen'ed plugin) gets when it calls `recv`: the
    // executable's definition, the hook, not libc's.
    for name in [c"recv", c"send", c"poll", c"nanosleep", c"getaddrinfo"] {
        // SAFETY (test): looking symbols up by NUL-terminated names.
        let (global, next) = unsafe {
            (
                libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()),
                libc::dlsym(libc::RTLD_NEXT, name.as_ptr()),
            )
        };
        assert!(!global.is_null() && !next.is_null());
        assert_ne!(global, next, "{name:?} resolves to libc's own");
    }
    assert_eq!(
        // SAFETY (test): as above.
        unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"recv".as_ptr()) } as usize,
        libc::recv as *const () as usize,
        "the dynamic linker and the static one agree on the hook"
    );
}

#[test]
fn std_sleeps_cooperate_on_every_hub_of_a_runtime() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    greenlet::monkey::patch_all();
    let rt = greenlet::Runtime::new(2).unwrap();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (now, peak) = (now.clone(), peak.clone());
            rt.spawn_on(i % 2, move || {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50)); // parks on its own hub
                now.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Two hub threads, 200 sleepers in their sleep at once.
    assert_eq!(peak.load(Ordering::SeqCst), 200);
    rt.shutdown(Duration::from_secs(5));
}
