//! The examples of the operating-system tour stop: `graceful_shutdown`, `tls_echo` and
//! `websocket_echo`, run without arguments (their self-run) and as servers on a port, driven
//! by real clients: Python's `ssl` module and the `websockets` package (`.ci/run` installs it;
//! the test says so and skips that part only when it cannot be had), plus raw sockets that
//! misbehave.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

mod util;
use util::servers::{ExampleServer, T, have, python, run};

/// Runs example `name` without arguments and checks that it succeeds and prints `expect`.
fn self_run(name: &str, expect: &[&str]) -> String {
    let out = run(&mut Command::new(util::example_binary(name)));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for e in expect {
        assert!(text.contains(e), "{name}: expected {e:?} in:\n{text}");
    }
    text
}

/// Whether Python can import `module`; prints a note when it cannot.
fn have_python_module(module: &str, purpose: &str) -> bool {
    if !have("python3", purpose) {
        return false;
    }
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("note: the Python module {module} is not installed: skipping {purpose}");
    }
    found
}

// ---- graceful_shutdown ----

#[test]
fn graceful_shutdown_runs_to_completion() {
    self_run(
        "graceful_shutdown",
        &[
            "working on report",
            "SIGTERM: stopping, 2 connection(s) open",
            "busy client got \"done: report\"",
            "stopped: 1 handler(s) cut off",
            "idle client: connection closed by the server",
            "new clients are refused",
        ],
    );
}

/// `kill -TERM` on the serving process: the request in progress is answered, an idle client is
/// cut off after the grace period, new clients are refused, and the process exits cleanly.
#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut server = ExampleServer::start_with("graceful_shutdown", &["500"]);
    let mut idle = server.connect();
    let mut busy = server.connect();
    busy.write_all(b"invoice\n").unwrap();
    server.wait_for_output("working on invoice");
    // SAFETY: signalling our own child process, which is alive (we hold it).
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let mut answer = String::new();
    BufReader::new(&busy).read_line(&mut answer).unwrap();
    assert_eq!(answer, "done: invoice\n");
    // Done: the busy client hangs up, so its handler ends within the grace period.
    busy.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        idle.read_to_end(&mut rest).unwrap(),
        0,
        "idle client closed"
    );
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    // The last lines may still be on their way through the output thread.
    let out = server.wait_for_output("handler(s) cut off");
    assert!(
        out.contains("SIGTERM: stopping, 2 connection(s) open, 500 ms of grace"),
        "{out}"
    );
    assert!(out.contains("stopped: 1 handler(s) cut off"), "{out}");
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "new clients are refused"
    );
}

// ---- tls_echo ----

#[test]
fn tls_echo_runs_to_completion() {
    self_run(
        "tls_echo",
        &[
            "client 0: 3 echoes over TLS",
            "client 2: 3 echoes over TLS",
            "TLS handshake failed: received corrupt message",
            "garbage peer: closed by the server",
            "TLS handshake failed: unexpected end of file",
            "after them, a client still gets \"still served\"",
            "server stopped",
        ],
    );
}

/// A TLS server on a port, with its certificate written out for clients to trust.
fn tls_server(tag: &str) -> (ExampleServer, util::TempPath) {
    let dir = util::TempPath::new(tag);
    let cert = dir.dir.join("cert.pem");
    let server = ExampleServer::start_with("tls_echo", &[cert.to_str().unwrap()]);
    server.wait_for_output("certificate in");
    (server, dir)
}

/// Python's `ssl` module, verifying the certificate, ten clients at once.
#[test]
fn tls_echo_serves_python_ssl_clients() {
    if !have("python3", "the Python ssl client") {
        return;
    }
    let (server, dir) = tls_server("tls-py");
    let cert = dir.dir.join("cert.pem");
    let text = python(
        "tls_client.py",
        &[&server.port(), cert.to_str().unwrap(), "10", "5"],
        "",
    );
    assert!(text.contains("ok 50 of 50"), "{text}");
    assert!(text.contains("negotiated TLSv1.3"), "{text}");
}

/// Garbage, a handshake cut off by the peer, and a peer that goes silent mid-handshake: each
/// ends in an error and a closed connection, and a client is served meanwhile.
#[test]
fn tls_echo_bad_peers_fail_alone() {
    let (server, dir) = tls_server("tls-bad");
    // Garbage where the ClientHello should be: an alert at most, then the close.
    let mut garbage = server.connect();
    garbage
        .write_all(b"\x00\x01\x02 this is not TLS\r\n")
        .unwrap();
    let mut got = Vec::new();
    garbage.read_to_end(&mut got).unwrap();
    assert!(got.len() < 64, "at most an alert: {got:?}");
    // The start of a ClientHello, then the peer stops and hangs up.
    let mut cut = server.connect();
    cut.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00])
        .unwrap();
    cut.shutdown(Shutdown::Write).unwrap();
    got.clear();
    cut.read_to_end(&mut got).unwrap();
    // The start of a ClientHello, then silence: the server drops it after its handshake
    // timeout; meanwhile other clients are served.
    let mut silent = server.connect();
    silent.set_read_timeout(Some(util::NOT_HANGING)).unwrap();
    silent.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40]).unwrap();
    let started = Instant::now();
    if have("python3", "the Python ssl client") {
        let cert = dir.dir.join("cert.pem");
        let text = python(
            "tls_client.py",
            &[&server.port(), cert.to_str().unwrap(), "2", "2"],
            "",
        );
        assert!(text.contains("ok 4 of 4"), "{text}");
    }
    got.clear();
    silent.read_to_end(&mut got).unwrap();
    assert!(started.elapsed() < util::NOT_HANGING);
    let out = server.wait_for_output("the peer went silent");
    assert!(
        out.contains("TLS handshake failed: received corrupt message"),
        "{out}"
    );
    assert!(
        out.contains("TLS handshake failed: unexpected end of file"),
        "{out}"
    );
    // Still serving.
    let mut probe = server.connect();
    probe.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    got.clear();
    probe.read_to_end(&mut got).unwrap();
}

// ---- websocket_echo ----

#[test]
fn websocket_echo_runs_to_completion() {
    self_run(
        "websocket_echo",
        &[
            "client 0: \"hello from client 0\" came back",
            "client 2: \"hello from client 2\" came back",
            "handshake failed",
            "plain HTTP peer: connection closed by the server",
            "after it, a client still gets \"still served\"",
            "server stopped",
        ],
    );
}

/// The `websockets` package: ten clients at once, text, binary and 100 kB messages, clean
/// closes.
#[test]
fn websocket_echo_serves_python_websockets_clients() {
    if !have_python_module("websockets", "the Python websockets client") {
        return;
    }
    let server = ExampleServer::start("websocket_echo");
    let text = python("ws_client.py", &[&server.port(), "10"], "");
    assert!(text.contains("ok 30 of 30"), "{text}");
    let out = server.wait_for_output("closed after 3 message(s)");
    assert!(!out.contains("handshake failed"), "{out}");
}

/// A raw socket that speaks plain HTTP, and one that upgrades and then sends garbage frames:
/// each is closed, and a well-behaved connection is served.
#[test]
fn websocket_echo_bad_peers_fail_alone() {
    let server = ExampleServer::start("websocket_echo");
    let mut http = server.connect();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    http.read_to_end(&mut got).unwrap();

    let mut ws = server.connect();
    ws.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = String::new();
    let mut reader = BufReader::new(ws.try_clone().unwrap());
    reader.read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // An unmasked frame with a reserved opcode: a protocol error for the server.
    ws.write_all(&[0x83, 0x01, 0x00]).unwrap();
    got.clear();
    reader.read_to_end(&mut got).unwrap();
    let out = server.wait_for_output("handshake failed");
    let deadline = Instant::now() + T;
    let mut out = out;
    while out.matches("127.0.0.1:").count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        out = server.output();
    }
    assert!(out.matches("127.0.0.1:").count() >= 2, "{out}");
}
