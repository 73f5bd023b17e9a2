//! libcurl, a C library, cooperating through greenlet's monkey hooks.
//!
//! libcurl is linked as a shared library (Debian's `libcurl4-openssl-dev`, found by curl-sys
//! through pkg-config), so its calls to `recv`, `send`, `poll`, `connect`, ... are resolved at
//! run time through the executable's dynamic symbol table. No linker flag is needed for them
//! to reach the hooks: the linker exports every symbol that the executable defines and that a
//! shared library on the link line (libc.so.6) defines too, which is every hook.

#[path = "../../examples/common/http.rs"]
mod http;

use std::cell::Cell;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

fn slow_server(delay: Duration, peak: Rc<Cell<u32>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let now = Rc::new(Cell::new(0u32));
    greenlet::spawn(move || {
        while let Ok((mut conn, _)) = listener.accept() {
            let (now, peak) = (now.clone(), peak.clone());
            greenlet::spawn(move || {
                if !http::read_head(&mut conn) {
                    return;
                }
                now.set(now.get() + 1);
                peak.set(peak.get().max(now.get()));
                std::thread::sleep(delay);
                now.set(now.get() - 1);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    addr
}

fn fetch(url: &str) -> Vec<u8> {
    let mut body = Vec::new();
    let mut easy = curl::easy::Easy::new();
    easy.url(url).unwrap();
    {
        let mut t = easy.transfer();
        t.write_function(|d| {
            body.extend_from_slice(d);
            Ok(d.len())
        })
        .unwrap();
        t.perform().unwrap();
    }
    body
}

#[test]
fn the_dynamic_linker_resolves_libc_names_to_the_hooks() {
    for name in [
        c"recv",
        c"send",
        c"poll",
        c"connect",
        c"read",
        c"getaddrinfo",
    ] {
        // SAFETY: looking up a symbol by a NUL-terminated name.
        let dynamic = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        // SAFETY: as above; RTLD_NEXT from here skips the executable, finding libc's own.
        let libcs = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
        assert!(!dynamic.is_null() && !libcs.is_null());
        assert_ne!(
            dynamic, libcs,
            "{name:?} resolves to libc's, not to the hook"
        );
    }
}

#[test]
fn libcurl_fetches_overlap_in_greenlets() {
    greenlet::monkey::patch_all();
    let peak = Rc::new(Cell::new(0));
    let addr = slow_server(Duration::from_millis(200), peak.clone());
    let url = format!("http://{addr}/");
    let ticks = Rc::new(Cell::new(0u32));
    let done = Rc::new(Cell::new(false));
    let (t, d) = (ticks.clone(), done.clone());
    let ticker = greenlet::spawn(move || {
        while !d.get() {
            greenlet::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        }
    });
    let fetches: Vec<_> = (0..10)
        .map(|_| {
            let url = url.clone();
            greenlet::SpawnBuilder::new()
                .stack_size(1 << 20)
                .spawn(move || fetch(&url))
                .unwrap()
        })
        .collect();
    for f in &fetches {
        assert_eq!(f.get().unwrap(), b"hello");
    }
    done.set(true);
    ticker.join().unwrap();
    assert_eq!(
        peak.get(),
        10,
        "all ten transfers were at the server at once"
    );
    assert!(ticks.get() >= 10, "the ticker ticked {} times", ticks.get());
}
