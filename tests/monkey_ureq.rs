//! An unmodified HTTP client crate (`ureq`, built on `std::net`) cooperating under
//! `greenlet::monkey::patch_all()`: fifty fetches from a slow local server are all in flight at
//! once, and a ticker greenlet keeps ticking meanwhile.
#![cfg(feature = "monkey")]

#[path = "../examples/common/http.rs"]
mod http;

use std::cell::Cell;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

/// ureq's call stack is deeper than the default 64 KiB in a debug build.
const CLIENT_STACK: usize = 512 * 1024;

fn spawn_client<T: 'static>(f: impl FnOnce() -> T + 'static) -> greenlet::JoinHandle<T> {
    greenlet::SpawnBuilder::new()
        .stack_size(CLIENT_STACK)
        .spawn(f)
        .expect("a stack for the client")
}

/// Requests the server is answering right now, and the most at once.
#[derive(Default)]
struct Gauge {
    now: Cell<u32>,
    peak: Cell<u32>,
}

impl Gauge {
    fn enter(&self) {
        self.now.set(self.now.get() + 1);
        self.peak.set(self.peak.get().max(self.now.get()));
    }
    fn leave(&self) {
        self.now.set(self.now.get() - 1);
    }
}

/// Plain std code: one greenlet per connection, which answers after `delay`.
fn slow_server(delay: Duration, gauge: Rc<Gauge>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    greenlet::spawn(move || {
        loop {
            let Ok((conn, _)) = listener.accept() else {
                return;
            };
            let gauge = gauge.clone();
            greenlet::spawn(move || serve(conn, delay, &gauge));
        }
    });
    addr
}

fn serve(mut conn: TcpStream, delay: Duration, gauge: &Gauge) {
    if !http::read_head(&mut conn) {
        return;
    }
    gauge.enter();
    std::thread::sleep(delay); // the slow part: parks this greenlet only
    gauge.leave();
    let body = b"slow hello";
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .and_then(|()| conn.write_all(body));
}

#[test]
fn fifty_ureq_fetches_are_in_flight_at_once_while_a_ticker_ticks() {
    greenlet::monkey::patch_all();
    let served = Rc::new(Gauge::default());
    let addr = slow_server(Duration::from_millis(200), served.clone());
    let url = format!("http://{addr}/");

    let done = Rc::new(Cell::new(false));
    let ticks = Rc::new(Cell::new(0u32));
    let (d, t) = (done.clone(), ticks.clone());
    let ticker = greenlet::spawn(move || {
        while !d.get() {
            greenlet::sleep(Duration::from_millis(5));
            t.set(t.get() + 1);
        }
    });

    let fetching = Rc::new(Gauge::default());
    let fetches: Vec<_> = (0..50)
        .map(|_| {
            let (url, fetching) = (url.clone(), fetching.clone());
            spawn_client(move || {
                fetching.enter();
                let body = ureq::get(&url)
                    .call()
                    .expect("the fetch succeeds")
                    .body_mut()
                    .read_to_string()
                    .expect("the body reads");
                fetching.leave();
                body
            })
        })
        .collect();
    for f in &fetches {
        assert_eq!(f.get().unwrap(), "slow hello");
    }
    done.set(true);
    ticker.join().unwrap();

    // All fifty requests were with the server at the same time: they overlapped completely.
    assert_eq!(served.peak.get(), 50);
    assert_eq!(fetching.peak.get(), 50);
    // While they waited, the ticker kept running (one request takes 200 ms; it ticks every 5).
    assert!(ticks.get() >= 10, "the ticker ticked {} times", ticks.get());
}

#[test]
fn ureq_fetch_by_host_name_resolves_without_blocking_the_hub() {
    greenlet::monkey::patch_all();
    let served = Rc::new(Gauge::default());
    let addr = slow_server(Duration::from_millis(50), served.clone());
    let url = format!("http://localhost:{}/", addr.port());
    let fetches: Vec<_> = (0..5)
        .map(|_| {
            let url = url.clone();
            spawn_client(move || {
                ureq::get(&url)
                    .call()
                    .map(|mut r| r.body_mut().read_to_string().unwrap())
            })
        })
        .collect();
    for f in &fetches {
        // "localhost" may resolve to ::1 first, where nothing listens: ureq moves on.
        assert_eq!(f.get().unwrap().expect("fetched"), "slow hello");
    }
    assert_eq!(served.peak.get(), 5);
}
