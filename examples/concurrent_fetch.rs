//! The reference article's sequential-vs-concurrent fetch (section 1.2): fetch several URLs
//! one after the other, then all at once with one greenlet each, and print both times.
//!
//! Instead of python.org, baidu.com and so.com, it fetches from local HTTP servers that it
//! starts itself, each answering after its own delay, so the result does not depend on the
//! network: sequentially the delays add up, concurrently the total is the longest one.
//!
//! ```text
//! cargo run --example concurrent_fetch 8100      # servers on 8100, 8101, 8102
//! cargo run --example concurrent_fetch 0         # servers on free ports
//! cargo run --example concurrent_fetch -- --self-test
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/http.rs"]
mod http;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::server::StreamServer;

/// A page of this many bytes is what each server sends.
const PAGE: usize = 16 * 1024;

/// A server on `port` that answers every request with a page, `delay` after reading it.
fn slow_server(port: u16, delay: Duration) -> io::Result<StreamServer> {
    let server = StreamServer::bind(("127.0.0.1", port), move |mut conn: TcpStream, _peer| {
        let mut buf = vec![0u8; http::MAX_HEAD];
        let mut end = 0;
        loop {
            match conn.read(&mut buf[end..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => end += n,
            }
            match http::parse(&buf[..end]) {
                http::Parse::Partial => continue,
                http::Parse::Error(status) => {
                    let _ = conn.write_all(status.response());
                    return;
                }
                http::Parse::Complete(_) => break,
            }
        }
        greenlet::sleep(delay); // the "network": only this greenlet waits
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {PAGE}\r\nConnection: close\r\n\r\n");
        let _ = conn
            .write_all(head.as_bytes())
            .and_then(|()| conn.write_all(&[b'x'; PAGE]));
    })?;
    println!(
        "listening on {} (answers after {delay:?})",
        server.local_addr()
    );
    server.start()?;
    Ok(server)
}

/// `urlopen(url).read()` for `http://host:port/path`: the body, as a plain HTTP/1.1 client
/// with `Connection: close`.
fn urlopen(url: &str) -> io::Result<Vec<u8>> {
    let invalid =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {url}"));
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("not an http:// URL"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut conn = TcpStream::connect(host)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no response head"))?;
    if !response.starts_with(b"HTTP/1.1 200 ") {
        return Err(invalid("not a 200 response"));
    }
    Ok(response.split_off(head_end + 4))
}

/// `f(url)`.
fn f(url: &str) {
    println!("GET: {url}");
    match urlopen(url) {
        Ok(data) => println!("{} bytes received from {url}.", data.len()),
        Err(e) => println!("{url}: {e}"),
    }
}

/// Starts one server per delay (on `port`, `port + 1`, ... or free ports for 0), fetches
/// from all of them sequentially and then concurrently, prints both times and returns them.
pub fn run(port: u16, delays: &[Duration]) -> (Duration, Duration) {
    let servers = start_servers(port, delays, slow_server);
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}/", s.local_addr()))
        .collect();
    let costs = sequential_then_concurrent(&urls, |url| greenlet::spawn(move || f(&url)));
    for s in &servers {
        s.stop(Duration::from_secs(1));
    }
    costs
}

/// Starts a server with `start` for each delay, on `port`, `port + 1`, ... (free ports for 0).
///
/// # Panics
/// When a server cannot listen.
pub fn start_servers<S>(
    port: u16,
    delays: &[Duration],
    start: impl Fn(u16, Duration) -> io::Result<S>,
) -> Vec<S> {
    delays
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let p = if port == 0 { 0 } else { port + i as u16 };
            start(p, d).unwrap_or_else(|e| panic!("cannot listen on port {p}: {e}"))
        })
        .collect()
}

/// The article's two timings: each URL fetched by a greenlet of `spawn_fetch` that is joined
/// before the next starts, then all of them at once; prints both costs and returns them.
pub fn sequential_then_concurrent(
    urls: &[String],
    spawn_fetch: impl Fn(String) -> greenlet::JoinHandle<()>,
) -> (Duration, Duration) {
    let t = Instant::now();
    for url in urls {
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

/// The tour's short self-run's server delays.
pub const DEMO_DELAYS: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(150),
];

/// The delays of a run on given ports.
pub const DELAYS: [Duration; 3] = [
    Duration::from_millis(300),
    Duration::from_millis(500),
    Duration::from_millis(200),
];

/// The tour's short self-run: three servers answering after 50, 100 and 150 ms.
pub fn demo() {
    run(0, &DEMO_DELAYS);
}

/// Starts its servers from the port given as first argument (0: free ports), or self-runs.
pub fn main() {
    match cli::mode("concurrent_fetch", 8100) {
        cli::Mode::SelfRun => demo(),
        cli::Mode::Port(port, _) => {
            run(port, &DELAYS);
        }
    }
}
