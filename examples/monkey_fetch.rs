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

// `concurrent_fetch`, included for its timing and delays, brings its own copies of the helpers.
#![allow(clippy::duplicate_mod)]

#[path = "concurrent_fetch.rs"]
#[allow(dead_code)] // its green servers and client are not used here
mod article;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/http.rs"]
mod http;

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

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
    if !http::read_head(&mut conn) {
        return;
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
    let urls = article::start_servers(port, delays, slow_server);

    article::sequential_then_concurrent(&urls, |url| {
        greenlet::SpawnBuilder::new()
            .stack_size(FETCH_STACK)
            .spawn(move || f(&url))
            .expect("a stack for the fetch")
    })
}

/// The tour's short self-run: three servers answering after 50, 100 and 150 ms.
pub fn demo() {
    run(0, &article::DEMO_DELAYS);
}

/// Starts its servers from the port given as first argument (0: free ports), or self-runs.
pub fn main() {
    match cli::mode("monkey_fetch", 8200) {
        cli::Mode::SelfRun => demo(),
        cli::Mode::Port(port, _) => {
            run(port, &article::DELAYS);
        }
    }
}
