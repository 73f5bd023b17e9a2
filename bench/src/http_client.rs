//! `bench __http_client <port> <conns> <requests>`: a keep-alive HTTP client that always sends
//! the same requests in the same order, so that a server's instruction count under callgrind
//! is repeatable (`scripts/callgrind_http.sh`). wrk's load depends on timing; this one does not.
//!
//! It opens `conns` connections, then in rounds writes one request on every connection and
//! reads every answer, until `requests` requests were answered (the last round may use fewer
//! connections). Each answer must be the harness's hello response, byte for byte, which is
//! also what `http_hello` answers a keep-alive GET.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::proto::HTTP_RESPONSE;

/// Child side: runs the client, prints `result requests N` when every answer came back.
pub fn client_main(args: &[String]) -> Result<(), String> {
    let [port, conns, requests] = args else {
        return Err("usage: __http_client <port> <conns> <requests>".into());
    };
    let number = |what: &str, v: &str| -> Result<u64, String> {
        v.parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{what}: expected a positive number, got {v:?}"))
    };
    let port = u16::try_from(number("port", port)?).map_err(|e| format!("port: {e}"))?;
    let conns = number("conns", conns)?;
    let requests = number("requests", requests)?;
    let done = run(port, conns as usize, requests)?;
    crate::child::result("requests", done as f64);
    Ok(())
}

/// Sends `requests` requests over `conns` keep-alive connections; returns how many were
/// answered (all of them, or an error).
fn run(port: u16, conns: usize, requests: u64) -> Result<u64, String> {
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        streams.push(connect(port)?);
    }
    let mut answer = vec![0u8; HTTP_RESPONSE.len()];
    let mut done = 0u64;
    while done < requests {
        let round = (requests - done).min(conns as u64) as usize;
        for s in &mut streams[..round] {
            s.write_all(request.as_bytes())
                .map_err(|e| format!("write: {e}"))?;
        }
        for s in &mut streams[..round] {
            s.read_exact(&mut answer)
                .map_err(|e| format!("read after {done} answers: {e}"))?;
            if answer != HTTP_RESPONSE {
                return Err(format!(
                    "unexpected answer: {:?}",
                    String::from_utf8_lossy(&answer)
                ));
            }
            done += 1;
        }
    }
    Ok(done)
}

/// Connects to 127.0.0.1:`port`, retrying for a minute while the server (slow under
/// valgrind) starts.
fn connect(port: u16) -> Result<TcpStream, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(60)))
                    .map_err(|e| format!("timeout: {e}"))?;
                return Ok(s);
            }
            Err(e) if Instant::now() >= deadline => return Err(format!("connect: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::{self, testing};

    #[test]
    fn answers_are_counted_over_rounds() {
        let port = testing::start(|port| crate::peers::mio::serve(port, proto::http));
        // 7 requests over 3 connections: two full rounds and one of a single request.
        assert_eq!(super::run(port, 3, 7), Ok(7));
    }

    #[test]
    fn bad_arguments_are_errors() {
        let args = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert!(super::client_main(&args(&["1", "2"])).is_err());
        assert!(super::client_main(&args(&["80", "0", "5"])).is_err());
        assert!(super::client_main(&args(&["70000", "1", "5"])).is_err());
    }
}
