//! The network examples, run as the programs they are: each is started on port 0, reports
//! where it listens, and is driven by plain blocking clients, by the article's Python clients
//! (`tests/py/`), and by real third-party clients (curl, wrk, redis-cli, redis-benchmark)
//! when those are installed (the test says so and skips that part when one is missing).
//!
//! Every client socket has a timeout and every server process is killed when its test ends.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod util;
use util::resp::{
    assert_stayed_small, expect_values, mbulk, replies, reply, set_large_value, status_kib,
};
use util::servers::{ExampleServer as Server, T, have, python, run};

/// The path of example `name`, built if needed.
fn example(name: &str) -> PathBuf {
    util::example_binary(name)
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_all(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

// ---- self-runs (what the tour shows) ----

fn self_test(name: &str, expect: &[&str]) {
    let out = run(Command::new(example(name)).arg("--self-test"));
    let text = stdout_of(&out);
    assert!(
        out.status.success(),
        "{name} --self-test failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("listening on 127.0.0.1:"),
        "{name}: {text}"
    );
    for e in expect {
        assert!(
            text.contains(e),
            "{name} --self-test: expected {e:?} in:\n{text}"
        );
    }
}

#[test]
fn self_runs() {
    self_test(
        "echo_server",
        &["client 2 got back \"hello 2\"", "server stopped"],
    );
    self_test(
        "echo_clients",
        &["100 clients x 3 messages: 300 echoes checked"],
    );
    self_test(
        "http_hello",
        &[
            "3 x `200 OK`, 2 bodies",
            "garbage -> \"HTTP/1.1 400 Bad Request\"",
        ],
    );
    self_test(
        "redis_server",
        &[concat!(
            r#"+OK\r\n:42\r\n:52\r\n$2\r\n52\r\n+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"#,
            r#":1\r\n:1\r\n$11\r\nhello world\r\n"#,
            r#"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:53\r\n$2\r\n53\r\n+PONG\r\n+OK\r\n"#
        )],
    );
    self_test("concurrent_fetch", &["sequential cost", "concurrent cost"]);
    self_test(
        "select_server",
        &[
            "received \"in parts.\"",
            "after reading no data",
            "select loop stopped",
        ],
    );
    self_test(
        "select_client",
        &["received \"in parts.\"", "received in all:"],
    );
    self_test(
        "selectors_echo",
        &[
            "client 2 got back \"hello from client 2\"",
            "selector loop stopped",
        ],
    );
}

// ---- echo ----

#[test]
fn echo_server_echoes_and_half_closes() {
    let server = Server::start_with("echo_server", &["--verbose"]);
    let mut a = server.connect();
    let mut b = server.connect();
    for i in 0..5 {
        for (s, who) in [(&mut a, "a"), (&mut b, "b")] {
            let msg = format!("hello {who} {i}");
            s.write_all(msg.as_bytes()).unwrap();
            let mut got = vec![0; msg.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, msg.as_bytes());
        }
    }
    // The article's server shuts its sending side down when the client is done.
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut a), "");
    let mut got = [0u8; 4];
    b.write_all(b"last").unwrap();
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"last");
    // With --verbose it prints what it receives, as the article's does.
    let deadline = Instant::now() + T;
    while !server.output().contains("recv: \"last\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let printed = server.output();
    assert!(
        printed.contains("recv: \"hello a 0\"") && printed.contains("recv: \"last\""),
        "{printed}"
    );
}

/// Regression (issue 8, defect 11): by default the echo servers print one line per
/// connection, not every chunk (formatting every chunk was 90% of the server's CPU under
/// load).
#[test]
fn echo_servers_log_per_connection_unless_verbose() {
    for name in ["echo_server", "selectors_echo", "select_server"] {
        let server = Server::start(name);
        let mut s = server.connect();
        for i in 0..20 {
            let msg = format!("chunk {i:02}");
            s.write_all(msg.as_bytes()).unwrap();
            let mut got = vec![0; msg.len()];
            s.read_exact(&mut got).unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
        let _ = read_all(&mut s);
        let deadline = Instant::now() + T;
        while !server.output().contains("127.0.0.1:") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        let printed = server.output();
        assert!(printed.contains("127.0.0.1:"), "{name}: {printed}");
        assert!(
            !printed.contains("chunk"),
            "{name} printed a chunk:\n{printed}"
        );
        assert!(printed.lines().count() <= 3, "{name}:\n{printed}");
    }
}

#[test]
fn echo_clients_against_echo_server() {
    let server = Server::start("echo_server");
    let out =
        run(Command::new(example("echo_clients")).args([&server.port(), "100", "3", "--verbose"]));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("100 clients x 3 messages: 300 echoes checked"),
        "{text}"
    );
    assert!(text.contains("[99]recv from server: hello 2"), "{text}");
}

// ---- the article's Python clients against the select, selectors and gevent-style servers ----

/// The article's select client (2.3) gets each of its messages back on both sockets.
fn check_select_client(server: &Server) {
    let text = python("select_client.py", &[&server.port()], "");
    for message in ["This is the message. ", "It will be sent ", "in parts."] {
        assert_eq!(
            text.matches(&format!("received \"b'{message}'\"")).count(),
            2,
            "{message:?} echoed on both sockets:\n{text}"
        );
    }
}

/// The article's echo clients (1.2): the interactive one fed from stdin, and 100 threads.
fn check_echo_clients(server: &Server) {
    let text = python("echo_client.py", &[&server.port()], "abc\nhello world\n");
    assert!(
        text.contains("Received b'abc'") && text.contains("Received b'hello world'"),
        "{text}"
    );
    let text = python("threaded_clients.py", &[&server.port(), "100", "3"], "");
    assert!(text.contains("ok 300 of 300"), "{text}");
}

#[test]
fn select_server_with_the_articles_python_clients() {
    if !have("python3", "the article's Python clients") {
        return;
    }
    let server = Server::start_with("select_server", &["--verbose"]);
    check_select_client(&server);
    check_echo_clients(&server);
    let deadline = Instant::now() + T;
    while server.output().matches("after reading no data").count() < 103
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = server.output();
    assert!(log.contains("new connection from 127.0.0.1:"), "{log}");
    assert!(
        log.contains("received \"This is the message. \" from"),
        "{log}"
    );
    assert!(log.contains("output queue for"), "{log}");
    assert_eq!(log.matches("after reading no data").count(), 103, "{log}");
}

#[test]
fn select_client_against_select_server() {
    let server = Server::start("select_server");
    let out = run(Command::new(example("select_client")).arg(server.port()));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("received \"in parts.\"").count(), 2, "{text}");
}

#[test]
fn selectors_echo_with_the_articles_python_clients() {
    if !have("python3", "the article's Python clients") {
        return;
    }
    let server = Server::start("selectors_echo");
    check_echo_clients(&server);
    check_select_client(&server);
}

#[test]
fn echo_server_with_the_articles_python_clients() {
    if !have("python3", "the article's Python clients") {
        return;
    }
    let server = Server::start("echo_server");
    check_echo_clients(&server);
    check_select_client(&server);
}

// ---- HTTP ----

const HELLO: &str =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";
/// The answer that ends a connection says so (RFC 9112, 9.6).
const HELLO_CLOSE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nHello, World!";

#[test]
fn http_pipelined_requests_are_answered_in_order() {
    let server = Server::start("http_hello");
    let mut s = server.connect();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD / HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello=world\
          DELETE / HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let got = read_all(&mut s);
    let head_only = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n";
    let not_allowed = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 19\r\n\r\nMethod Not Allowed\n";
    assert_eq!(
        got,
        [HELLO, head_only, not_allowed, not_allowed, HELLO_CLOSE].concat()
    );
}

#[test]
fn http_keep_alive_and_requests_split_across_reads() {
    let server = Server::start("http_hello");
    let mut s = server.connect();
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut got = vec![0; HELLO.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, HELLO.as_bytes());
    }
    // One byte at a time: the parser waits for the rest.
    for b in b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut got = vec![0; HELLO.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, HELLO.as_bytes());
    // HTTP/1.0 closes after the answer unless asked otherwise.
    let mut old = server.connect();
    old.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(read_all(&mut old), HELLO_CLOSE);
}

/// Regression (issue 8, defect 8): the answer after which the server closes says
/// `Connection: close` (the client asked, or spoke HTTP/1.0 without keep-alive), so that a
/// client does not count the close as an error; an HTTP/1.0 client that asked for keep-alive
/// is told `Connection: keep-alive`; an HTTP/1.1 keep-alive answer carries neither.
#[test]
fn http_answers_say_connection_close_when_the_server_closes() {
    let server = Server::start("http_hello");
    let exchange = |request: &[u8]| {
        let mut s = server.connect();
        s.write_all(request).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_all(&mut s)
    };
    assert_eq!(
        exchange(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"),
        HELLO_CLOSE
    );
    assert_eq!(exchange(b"GET / HTTP/1.0\r\n\r\n"), HELLO_CLOSE);
    assert_eq!(
        exchange(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        HELLO.replace("\r\n\r\n", "\r\nConnection: keep-alive\r\n\r\n")
    );
    assert_eq!(exchange(b"GET / HTTP/1.1\r\n\r\n"), HELLO);
    if have("curl", "the curl -H 'Connection: close' check") {
        let url = format!("http://{}/", server.addr);
        let out = run(Command::new("curl").args([
            "-sS",
            "-i",
            "--max-time",
            "10",
            "-H",
            "Connection: close",
            &url,
        ]));
        let text = stdout_of(&out);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("Hello, World!"), "{text}");
    }
}

/// Writes `bytes` one at a time, `gap` apart, until the peer stops taking them; returns how
/// many were sent.
fn drip(s: &mut TcpStream, bytes: &[u8], gap: Duration) -> usize {
    for (i, b) in bytes.iter().enumerate() {
        if s.write_all(&[*b]).is_err() {
            return i;
        }
        std::thread::sleep(gap);
    }
    bytes.len()
}

/// Regression (issue 8, defect 9): `http_hello` lets go of an idle keep-alive connection after
/// its idle timeout, and answers a request that trickles in a byte at a time past its request
/// timeout with `408 Request Timeout` and a close, while serving others.
#[test]
fn http_idle_and_slow_clients_are_let_go() {
    let server = Server::start_with(
        "http_hello",
        &["--idle-timeout=0.3", "--request-timeout=0.5"],
    );
    // Idle after one request: closed by the server (read returns 0, not our 10 s timeout).
    let mut idle = server.connect();
    idle.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_all(&mut idle), HELLO);
    // Never says anything: closed too.
    let mut silent = server.connect();
    assert_eq!(read_all(&mut silent), "");
    // A byte every 50 ms of a 200-byte head (10 s): cut off with a 408.
    let mut slow = server.connect();
    let head = format!("GET / HTTP/1.1\r\nX-Slow: {}\r\n\r\n", "s".repeat(170));
    let reader = {
        let mut r = slow.try_clone().unwrap();
        std::thread::spawn(move || read_all(&mut r))
    };
    let sent = drip(&mut slow, head.as_bytes(), Duration::from_millis(50));
    let got = reader.join().unwrap();
    assert!(
        got.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{got:?}"
    );
    assert!(got.contains("Connection: close"), "{got:?}");
    assert!(sent < head.len(), "the whole slow request went through");
    // Others are served meanwhile and after.
    let mut fresh = server.connect();
    fresh
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_all(&mut fresh), HELLO_CLOSE);
}

#[test]
fn http_garbage_gets_an_error_and_a_close_while_others_are_served() {
    let server = Server::start("http_hello");
    let mut good = server.connect();
    let cases: [(&[u8], &str); 5] = [
        (
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
            "400 Bad Request",
        ),
        (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", "400 Bad Request"),
        (b"GET / HTTP/9.9\r\n\r\n", "505 HTTP Version Not Supported"),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "501 Not Implemented",
        ),
        (&[b'A'; 9000], "431 Request Header Fields Too Large"),
    ];
    for (garbage, status) in cases {
        let mut bad = server.connect();
        bad.write_all(garbage).unwrap();
        let got = read_all(&mut bad);
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{got:?}"
        );
        assert!(got.contains("Connection: close"), "{got:?}");
        // The keep-alive client opened before is still served.
        good.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut ok = vec![0; HELLO.len()];
        good.read_exact(&mut ok).unwrap();
        assert_eq!(ok, HELLO.as_bytes());
    }
    // A client that connects and says nothing, or hangs up half-way, harms nobody.
    let _silent = server.connect();
    let mut half = server.connect();
    half.write_all(b"GET / HT").unwrap();
    drop(half);
    good.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut ok = vec![0; HELLO.len()];
    good.read_exact(&mut ok).unwrap();
}

#[test]
fn http_curl_interop() {
    if !have("curl", "the curl interop test") {
        return;
    }
    let server = Server::start("http_hello");
    let url = format!("http://{}/", server.addr);
    // Two URLs in one curl run: the second request reuses the kept-alive connection.
    let out = run(Command::new("curl").args(["-sS", "-v", "--max-time", "10", &url, &url]));
    let (body, log) = (
        stdout_of(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{log}");
    assert_eq!(body, "Hello, World!Hello, World!");
    assert!(log.contains("< HTTP/1.1 200 OK"), "{log}");
    assert!(
        log.to_lowercase().contains("re-using existing connection"),
        "curl reused the connection:\n{log}"
    );
}

#[test]
fn http_wrk_interop() {
    if !have("wrk", "the wrk interop test") {
        return;
    }
    let server = Server::start("http_hello");
    let out =
        run(Command::new("wrk").args(["-t1", "-c50", "-d1s", &format!("http://{}/", server.addr)]));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Requests/sec"), "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
}

// ---- RESP ----

/// Regression (issue 8, defect 7): 1,000 pipelined `GET`s of a 2 MiB value (2 GB of replies
/// for 7 KB of requests). The server used to build every reply of one read in memory before
/// writing anything, and grew to 2 GB whether or not the client read. Now its replies are
/// written as they pass 64 KiB (a large value straight from the keyspace) and it reads no more
/// commands while the client does not read: its peak resident set stays under 256 MB, while
/// the client waits before reading and then as it reads, and every reply arrives intact.
#[test]
fn redis_pipelined_gets_of_a_large_value_keep_the_server_small() {
    const VALUE: usize = 2 << 20;
    const GETS: usize = 1000;
    let server = Server::start("redis_server");
    let pid = server.child.id();
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::with_capacity(1 << 20, s);
    let value = set_large_value(&mut w, &mut r, VALUE);
    let base = status_kib(pid, "VmRSS");
    w.write_all(mbulk(&["GET", "k"]).repeat(GETS).as_bytes())
        .unwrap();
    // Not reading yet: the server must wait, not buffer.
    std::thread::sleep(Duration::from_millis(300));
    let waiting = status_kib(pid, "VmRSS");
    expect_values(&mut r, &value, GETS);
    assert_stayed_small(pid, base, waiting);
}

/// Regression (issue 8, defect 9): `redis_server` closes an idle connection after its idle
/// timeout, and a command that trickles in a byte at a time past its request timeout gets an
/// error and a close, while others are served.
#[test]
fn redis_idle_and_slow_clients_are_let_go() {
    let server = Server::start_with(
        "redis_server",
        &["--idle-timeout=0.3", "--request-timeout=0.5"],
    );
    let mut idle = server.connect();
    idle.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_all(&mut idle), "+PONG\r\n");
    let mut slow = server.connect();
    let command = mbulk(&["SET", "slow", &"s".repeat(150)]);
    let reader = {
        let mut r = slow.try_clone().unwrap();
        std::thread::spawn(move || read_all(&mut r))
    };
    let sent = drip(&mut slow, command.as_bytes(), Duration::from_millis(50));
    assert_eq!(reader.join().unwrap(), "-ERR request timeout\r\n");
    assert!(sent < command.len(), "the whole slow command went through");
    let mut fresh = server.connect();
    fresh.write_all(b"EXISTS slow\r\nQUIT\r\n").unwrap();
    assert_eq!(read_all(&mut fresh), ":0\r\n+OK\r\n");
}

#[test]
fn redis_every_command_inline_and_multibulk() {
    let server = Server::start("redis_server");
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut ask = |req: String| -> String {
        w.write_all(req.as_bytes()).unwrap();
        reply(&mut r)
    };
    assert_eq!(ask("PING\r\n".into()), "+PONG");
    assert_eq!(ask(mbulk(&["PING"])), "+PONG");
    assert_eq!(ask(mbulk(&["ping", "hi"])), "$hi");
    assert_eq!(ask(mbulk(&["ECHO", "a\r\nb"])), "$a\r\nb");
    assert_eq!(ask("echo \"two words\"\r\n".into()), "$two words");
    assert_eq!(ask(mbulk(&["GET", "k"])), "$nil");
    assert_eq!(ask(mbulk(&["SET", "k", "v1"])), "+OK");
    assert_eq!(ask("set k v2\r\n".into()), "+OK");
    assert_eq!(ask("GET k\r\n".into()), "$v2");
    assert_eq!(ask(mbulk(&["EXISTS", "k", "nope", "k"])), ":2");
    assert_eq!(ask(mbulk(&["INCR", "n"])), ":1");
    assert_eq!(ask("INCR n\r\n".into()), ":2");
    assert_eq!(
        ask(mbulk(&["INCR", "k"])),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(ask(mbulk(&["SET", "big", "9223372036854775807"])), "+OK");
    assert_eq!(
        ask(mbulk(&["INCR", "big"])),
        "-ERR increment or decrement would overflow"
    );
    assert_eq!(ask(mbulk(&["DEL", "k", "n", "nope"])), ":2");
    assert_eq!(ask(mbulk(&["EXISTS", "k"])), ":0");
    assert_eq!(
        ask(mbulk(&["GET"])),
        "-ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(ask(mbulk(&["SET", "a", "b", "c"])), "-ERR syntax error");
    assert_eq!(
        ask(mbulk(&["FLUSHALL", "x"])),
        "-ERR unknown command 'FLUSHALL', with args beginning with: 'x' "
    );
    // Empty lines and empty multibulks are skipped without a reply, as redis-server does.
    assert_eq!(ask("\r\n*0\r\nPING\r\n".into()), "+PONG");
    assert_eq!(
        ask(mbulk(&["CONFIG", "GET", "appendonly"])),
        "*[$appendonly,$no]"
    );
    // The commands real clients' defaults need.
    assert_eq!(ask(mbulk(&["INCRBY", "m", "10"])), ":10");
    assert_eq!(ask("DECRBY m 3\r\n".into()), ":7");
    assert_eq!(ask(mbulk(&["DECR", "m"])), ":6");
    assert_eq!(
        ask(mbulk(&["INCRBY", "m", "x"])),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(ask(mbulk(&["MSET", "x", "1", "y", "2"])), "+OK");
    assert_eq!(ask(mbulk(&["MGET", "x", "nope", "y"])), "*[$1,$nil,$2]");
    assert_eq!(
        ask(mbulk(&["MSET", "x"])),
        "-ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(ask(mbulk(&["TTL", "x"])), ":-1");
    assert_eq!(ask(mbulk(&["TTL", "nope"])), ":-2");
    assert_eq!(ask(mbulk(&["EXPIRE", "x", "100"])), ":1");
    assert_eq!(ask(mbulk(&["TTL", "x"])), ":100");
    assert_eq!(ask(mbulk(&["EXPIRE", "nope", "100"])), ":0");
    assert_eq!(ask(mbulk(&["SET", "x", "again"])), "+OK");
    assert_eq!(ask(mbulk(&["TTL", "x"])), ":-1", "SET clears the deadline");
    assert_eq!(ask(mbulk(&["EXPIRE", "y", "0"])), ":1");
    assert_eq!(
        ask(mbulk(&["EXISTS", "y"])),
        ":0",
        "a past deadline deletes at once"
    );
    assert_eq!(
        ask(mbulk(&["HELLO", "3"])),
        "-NOPROTO sorry, this protocol version is not supported"
    );
    assert!(ask(mbulk(&["HELLO", "2"])).starts_with("*[$server,$redis,"));
    assert_eq!(ask(mbulk(&["CLIENT", "SETINFO", "LIB-NAME", "t"])), "+OK");
    assert_eq!(ask(mbulk(&["SELECT", "0"])), "+OK");
    assert_eq!(ask(mbulk(&["COMMAND", "DOCS"])), "*[]");
    assert_eq!(ask(mbulk(&["QUIT"])), "+OK");
    let mut rest = Vec::new();
    assert_eq!(
        r.read_to_end(&mut rest).unwrap(),
        0,
        "QUIT closes the connection"
    );
}

#[test]
fn redis_pipelining_answers_in_order() {
    let server = Server::start("redis_server");
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut batch = String::new();
    for i in 0..200 {
        batch += &mbulk(&["SET", &format!("key{i}"), &format!("value{i}")]);
        batch += &format!("GET key{i}\r\n");
        batch += &mbulk(&["INCR", "counter"]);
    }
    // One large write, and the same again split into tiny pieces.
    w.write_all(batch.as_bytes()).unwrap();
    let got = replies(&mut r, 600);
    for i in 0..200 {
        assert_eq!(
            got[3 * i..3 * i + 3],
            [
                "+OK".to_string(),
                format!("$value{i}"),
                format!(":{}", i + 1)
            ]
        );
    }
    for chunk in batch.as_bytes().chunks(7) {
        w.write_all(chunk).unwrap();
    }
    let got = replies(&mut r, 600);
    assert_eq!(got[599], ":400");
    // A value bigger than the initial read buffer.
    let big = "x".repeat(100_000);
    w.write_all(mbulk(&["SET", "big", &big]).as_bytes())
        .unwrap();
    w.write_all(mbulk(&["GET", "big"]).as_bytes()).unwrap();
    assert_eq!(replies(&mut r, 2), ["+OK".to_string(), format!("${big}")]);
}

#[test]
fn redis_garbage_gets_an_error_and_a_close_while_others_are_served() {
    let server = Server::start("redis_server");
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(mbulk(&["SET", "survivor", "yes"]).as_bytes())
        .unwrap();
    assert_eq!(reply(&mut r), "+OK");
    let cases: [(&[u8], &str); 6] = [
        (b"*x\r\n", "-ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$'"),
        (b"*1\r\n$-3\r\n", "-ERR Protocol error: invalid bulk length"),
        (
            b"*1\r\n$4\r\nPINGPONG",
            "-ERR Protocol error: bulk string not followed by CRLF",
        ),
        (
            b"ECHO \"unbalanced\r\n",
            "-ERR Protocol error: unbalanced quotes in request",
        ),
        (
            &[b'z'; 70_000],
            "-ERR Protocol error: too big inline request",
        ),
    ];
    for (garbage, error) in cases {
        let bad = server.connect();
        let mut bw = bad.try_clone().unwrap();
        bw.write_all(garbage).unwrap();
        let mut br = BufReader::new(bad);
        assert_eq!(reply(&mut br), error);
        let mut rest = Vec::new();
        assert_eq!(
            br.read_to_end(&mut rest).unwrap(),
            0,
            "the server closes after a protocol error"
        );
        // The well-behaved client is still served, and the keyspace is intact.
        w.write_all(b"GET survivor\r\n").unwrap();
        assert_eq!(reply(&mut r), "$yes");
    }
    // Binary noise from many clients at once.
    let noisy: Vec<TcpStream> = (0..20u8)
        .map(|i| {
            let mut s = server.connect();
            let _ = s.write_all(&[b'*', 0xff, i, 0, b'\r', b'\n']);
            s
        })
        .collect();
    drop(noisy);
    w.write_all(b"PING\r\n").unwrap();
    assert_eq!(reply(&mut r), "+PONG");
}

#[test]
fn redis_cli_interop() {
    if !have("redis-cli", "the redis-cli interop test") {
        return;
    }
    let server = Server::start("redis_server");
    let port = server.port();
    let cli = |args: &[&str]| -> String {
        let out = run(Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args));
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout_of(&out).trim_end().to_owned()
    };
    assert_eq!(cli(&["PING"]), "PONG");
    assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(&["GET", "greeting"]), "hello world");
    assert_eq!(cli(&["INCR", "visits"]), "1");
    assert_eq!(cli(&["INCR", "visits"]), "2");
    assert_eq!(cli(&["EXISTS", "greeting", "visits", "nope"]), "2");
    assert_eq!(cli(&["ECHO", "hi"]), "hi");
    assert_eq!(cli(&["DEL", "greeting"]), "1");
    assert_eq!(cli(&["GET", "greeting"]), "");
    assert!(cli(&["NOSUCH"]).starts_with("ERR unknown command 'NOSUCH'"));
    assert_eq!(cli(&["INCRBY", "visits", "40"]), "42");
    assert_eq!(cli(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(cli(&["MGET", "a", "b"]), "1\n2");
    assert_eq!(cli(&["EXPIRE", "a", "60"]), "1");
    assert_eq!(cli(&["TTL", "a"]), "60");
    // Many commands piped through one connection.
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    for i in 0..100 {
        writeln!(input, "INCR piped").unwrap();
        if i == 99 {
            writeln!(input, "GET piped").unwrap();
        }
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout_of(&out).lines().last(), Some("100"));
}

/// redis-py with its defaults: it opens with `HELLO 3` (RESP3), gets `NOPROTO`, falls back
/// to RESP2, names itself with `CLIENT SETINFO`, and then every command it sends works,
/// expiry by the server's own timers and its default `pipeline()` (`MULTI`/`EXEC`) included.
#[test]
fn redis_py_with_its_defaults() {
    if !have("python3", "the redis-py test") {
        return;
    }
    let probe = Command::new("python3")
        .args(["-c", "import redis"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("note: the Python package redis is not installed: skipping the redis-py test");
        return;
    }
    let server = Server::start("redis_server");
    let out = python("redis_py_client.py", &[&server.port()], "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ping True",
            "set True b'hello'",
            "incrby 40 41 42",
            "decr 41 39",
            "mset True [b'1', b'2', None]",
            "expire True 100 -1 -2",
            "persist True -1",
            "pexpire True 4",
            "expired 3 0 None",
            "set ex True 50",
            "pipeline [True, 3, b'3']",
            "transaction [True, 7, b'7', [b'7', b'39']]",
            "with [1, 2] b'2'",
            "refused Command # 2 (NOSUCH) of pipeline caused error b'2'",
            "delete 2",
        ],
        "{out}"
    );
}

#[test]
fn redis_benchmark_interop() {
    if !have("redis-benchmark", "the redis-benchmark interop test") {
        return;
    }
    let server = Server::start("redis_server");
    for pipeline in ["1", "16"] {
        let out = run(Command::new("redis-benchmark").args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port(),
            "-c",
            "20",
            "-n",
            "5000",
            "-P",
            pipeline,
            "-t",
            "ping_inline,ping_mbulk,set,get",
            "--csv",
        ]));
        let (text, err) = (
            stdout_of(&out),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{text}{err}");
        assert!(
            !err.contains("WARNING"),
            "redis-benchmark complained: {err}"
        );
        for test in ["PING_INLINE", "PING_MBULK", "SET", "GET"] {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("\"{test}\"")))
                .unwrap_or_else(|| {
                    panic!("no {test} result from redis-benchmark -P {pipeline}:\n{text}{err}")
                });
            let rps: f64 = line.split('"').nth(3).unwrap().parse().unwrap();
            assert!(rps > 0.0, "{line}");
        }
    }
}

// ---- concurrent fetch ----

#[test]
fn concurrent_fetch_prints_both_costs() {
    let out = run(Command::new(example("concurrent_fetch")).arg("0"));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("listening on 127.0.0.1:").count(), 3, "{text}");
    assert_eq!(
        text.matches("16384 bytes received from").count(),
        6,
        "{text}"
    );
    let cost = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label}: {text}"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    // Sequentially the delays (0.3 + 0.5 + 0.2 s) add up: a lower bound, not a speed check.
    assert!(cost("sequential cost") >= 1.0, "{text}");
    assert!(cost("concurrent cost") >= 0.5, "{text}");
}

// ---- --threads N ----

/// The names of the server process's threads.
fn thread_names(server: &Server) -> Vec<String> {
    let dir = format!("/proc/{}/task", server.child.id());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// How many hub threads (`greenlet-hub-<i>`) the server process runs.
fn hubs_of(server: &Server) -> usize {
    thread_names(server)
        .iter()
        .filter(|n| n.starts_with("greenlet-hub-"))
        .count()
}

#[test]
fn http_hello_with_two_threads_answers_and_runs_two_hubs() {
    let server = Server::start_with("http_hello", &["--threads", "2"]);
    assert_eq!(hubs_of(&server), 2, "{:?}", thread_names(&server));
    for _ in 0..16 {
        let mut c = server.connect();
        c.write_all(
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let answer = read_all(&mut c);
        assert_eq!(answer.matches("Hello, World!").count(), 2, "{answer}");
    }
}

#[test]
fn redis_server_with_two_threads_shares_one_keyspace() {
    let server = Server::start_with("redis_server", &["--threads", "2"]);
    assert_eq!(hubs_of(&server), 2, "{:?}", thread_names(&server));
    // Connections land on either hub; all see the same keys.
    for i in 0..16 {
        let mut c = server.connect();
        c.write_all(b"INCR hits\r\nQUIT\r\n").unwrap();
        let answer = read_all(&mut c);
        assert_eq!(answer, format!(":{}\r\n+OK\r\n", i + 1));
    }
    // Keys with deadlines, set from connections on either hub, are deleted by themselves,
    // without a read (DBSIZE does not expire keys, EXISTS would).
    for i in 0..8 {
        let mut c = server.connect();
        let req = format!("SET temp{i} v PX 20\r\nTTL temp{i}\r\nQUIT\r\n");
        c.write_all(req.as_bytes()).unwrap();
        assert_eq!(read_all(&mut c), "+OK\r\n:0\r\n+OK\r\n");
    }
    let give_up = Instant::now() + T;
    loop {
        let mut c = server.connect();
        c.write_all(b"DBSIZE\r\nQUIT\r\n").unwrap();
        let answer = read_all(&mut c);
        if answer == ":1\r\n+OK\r\n" {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "the keys never expired: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_bad_threads_argument_is_a_usage_error() {
    let out = run(Command::new(example("http_hello")).args(["0", "--threads", "zero"]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads N"));
}
