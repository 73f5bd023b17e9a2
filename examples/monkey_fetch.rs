//! The reference article's sequential-vs-concurrent fetch (section 1.2) with an unmodified
//! HTTP client: `ureq`, which is plain blocking `std::net` code. After
//! `greenlet::monkey::patch_all()` its blocking calls park only the greenlet that makes them,
//! so spawning one greenlet per URL makes the fetches overlap, as `gevent.monkey.patch_all()`
//! makes `urllib2` overlap in the article.
//!
//! The servers are local and written with plain `std::net` and `std::thread::sleep` too (no
//! greenlet API in them either), each answering after its own delay: sequentially the delays
//! add up, concurrently the total is the longest one.
//!
//! ```text
//! cargo run --features monkey --example monkey_fetch 8200      # servers on 8200, 8201, 8202
//! cargo run --features monkey --example monkey_fetch -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// ureq's call stack needs more than the default 64 KiB greenlet stack in a debug build.
const FETCH_STACK: usize = 512 * 1024;

/// A server on `port` answering every request with a short page after `delay`: plain std
/// code, one greenlet per connection.
fn slow_server(port: u16, delay: Duration) -> io::Result<String> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let url = format!("http://{}/", listener.local_addr()?);
    println!("listening on {url} (answers after {delay:?})");
    greenlet::spawn(move || {
        while let Ok((conn, _)) = listener.accept() {
            greenlet::spawn(move || answer(conn, delay));
        }
    });
    Ok(url)
}

fn answer(mut conn: TcpStream, delay: Duration) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    std::thread::sleep(delay); // std's sleep: it parks this greenlet only
    let body = format!("answered after {delay:?}\n");
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The article's `f(url)`: fetch with ureq and say how much came back.
fn f(url: &str) {
    println!("GET: {url}");
    match ureq::get(url).call() {
        Ok(mut r) => match r.body_mut().read_to_string() {
            Ok(data) => println!("{} bytes received from {url}.", data.len()),
            Err(e) => println!("{url}: {e}"),
        },
        Err(e) => println!("{url}: {e}"),
    }
}

/// Starts the servers, fetches sequentially then concurrently, prints and returns both times.
pub fn run(port: u16, delays: &[Duration]) -> (Duration, Duration) {
    greenlet::monkey::patch_all();
    let urls: Vec<String> = delays
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let p = if port == 0 { 0 } else { port + i as u16 };
            slow_server(p, d).unwrap_or_else(|e| panic!("cannot listen on port {p}: {e}"))
        })
        .collect();

    let spawn_fetch = |url: String| {
        greenlet::SpawnBuilder::new()
            .stack_size(FETCH_STACK)
            .spawn(move || f(&url))
            .expect("a stack for the fetch")
    };

    let t = Instant::now();
    for url in &urls {
        spawn_fetch(url.clone()).join().expect("the fetch finishes");
    }
    let sequential = t.elapsed();
    println!("sequential cost {:.3} s", sequential.as_secs_f64());

    let t = Instant::now();
    let jobs: Vec<_> = urls.iter().cloned().map(spawn_fetch).collect();
    greenlet::joinall(&jobs, None, None).expect("the fetches finish");
    let concurrent = t.elapsed();
    println!("concurrent cost {:.3} s", concurrent.as_secs_f64());
    (sequential, concurrent)
}

/// The tour's short self-run: three servers answering after 50, 100 and 150 ms.
pub fn demo() {
    run(
        0,
        &[
            Duration::from_millis(50),
            Duration::from_millis(100),
            Duration::from_millis(150),
        ],
    );
}

/// Starts its servers from the port given as first argument (0: free ports), or self-runs.
pub fn main() {
    let port = match cli::mode("monkey_fetch", 8200) {
        cli::Mode::SelfRun => return demo(),
        cli::Mode::Port(port, _) => port,
    };
    run(
        port,
        &[
            Duration::from_millis(300),
            Duration::from_millis(500),
            Duration::from_millis(200),
        ],
    );
}
