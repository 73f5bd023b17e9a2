//! `redis_server`'s transactions (`MULTI`, the queued commands, `EXEC` or `DISCARD`), run as
//! the program it is: the replies redis-server gives (compared byte for byte with a real
//! redis-server when one is installed), atomicity on one hub and on two, and the bounds that
//! keep a connection's memory small whatever its transaction holds.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod util;
use util::resp::{
    assert_stayed_small, expect_values, mbulk, replies, reply, set_large_value, status_kib,
};
use util::servers::{ExampleServer as Server, T, have};

/// Each request, sent on a fresh connection followed by `QUIT`, and the reply bytes
/// redis-server 7 gives (its `+OK` to QUIT included).
const CASES: &[(&str, &str)] = &[
    (
        "MULTI\r\nSET a 1\r\nINCR a\r\nGET a\r\nEXEC\r\n",
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n$1\r\n2\r\n",
    ),
    ("MULTI\r\nEXEC\r\n", "+OK\r\n*0\r\n"),
    (
        "EXEC\r\nDISCARD\r\n",
        "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n",
    ),
    (
        "MULTI\r\nMULTI\r\nSET a 1\r\nEXEC\r\n",
        "+OK\r\n-ERR MULTI calls can not be nested\r\n+QUEUED\r\n*1\r\n+OK\r\n",
    ),
    (
        "SET a 1\r\nMULTI\r\nGET\r\nSET a 2\r\nEXEC\r\nGET a\r\n",
        "+OK\r\n+OK\r\n-ERR wrong number of arguments for 'get' command\r\n+QUEUED\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n$1\r\n1\r\n",
    ),
    (
        "MULTI\r\nFOO bar\r\nEXEC\r\n",
        "+OK\r\n-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n",
    ),
    // An error found only when the command runs leaves the others to run.
    (
        "MULTI\r\nSET a b c\r\nSET a 1\r\nINCR a\r\nEXEC\r\n",
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n-ERR syntax error\r\n+OK\r\n:2\r\n",
    ),
    (
        "SET a 2\r\nMULTI\r\nSET a 5\r\nDISCARD\r\nGET a\r\nEXEC\r\n",
        "+OK\r\n+OK\r\n+QUEUED\r\n+OK\r\n$1\r\n2\r\n-ERR EXEC without MULTI\r\n",
    ),
    (
        "MULTI\r\nGET\r\nDISCARD\r\nEXEC\r\n",
        "+OK\r\n-ERR wrong number of arguments for 'get' command\r\n+OK\r\n\
         -ERR EXEC without MULTI\r\n",
    ),
    (
        "MULTI\r\nMSET a\r\nMSET a 1 b\r\nEXEC\r\n",
        "+OK\r\n-ERR wrong number of arguments for 'mset' command\r\n+QUEUED\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n",
    ),
    (
        "MULTI\r\nEXEC x\r\nEXEC\r\n",
        "+OK\r\n-EXECABORT Transaction discarded because of: \
         wrong number of arguments for 'exec' command\r\n-ERR EXEC without MULTI\r\n",
    ),
    (
        "MULTI\r\nMULTI x\r\nDISCARD x\r\nSET a 1\r\nEXEC\r\n",
        "+OK\r\n-ERR wrong number of arguments for 'multi' command\r\n\
         -ERR wrong number of arguments for 'discard' command\r\n+QUEUED\r\n\
         -EXECABORT Transaction discarded because of previous errors.\r\n",
    ),
    (
        "MULTI\r\nWATCH a\r\nUNWATCH\r\nEXEC\r\n",
        "+OK\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n*1\r\n+OK\r\n",
    ),
    // Empty requests are skipped inside a transaction too.
    ("MULTI\r\n\r\n*0\r\nEXEC\r\n", "+OK\r\n*0\r\n"),
    (
        "MULTI\r\nSET t 1 EX 100\r\nTTL t\r\nMGET z t nope\r\nDEL t\r\nECHO hi\r\nPING\r\nEXEC\r\n",
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n\
         *6\r\n+OK\r\n:100\r\n*3\r\n$-1\r\n$1\r\n1\r\n$-1\r\n:1\r\n$2\r\nhi\r\n+PONG\r\n",
    ),
    // QUIT inside a transaction is answered at once; the transaction is dropped.
    ("MULTI\r\nSET a 9\r\n", "+OK\r\n+QUEUED\r\n"),
];

/// Sends `request` and `QUIT` on a new connection to `port`; everything the server says
/// until it closes.
fn exchange(port: u16, request: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    c.write_all(b"QUIT\r\n").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn redis_transactions_answer_as_redis_server_does() {
    let server = Server::start("redis_server");
    let port: u16 = server.port().parse().unwrap();
    for (request, expected) in CASES {
        assert_eq!(
            exchange(port, request),
            format!("{expected}+OK\r\n"),
            "{request:?}"
        );
    }
    // WATCH is refused outside a transaction (nothing is watched, so UNWATCH is fine).
    assert_eq!(
        exchange(port, "WATCH a\r\nUNWATCH\r\nWATCH\r\n"),
        "-ERR WATCH is not supported by this server \
         (MULTI/EXEC are atomic, optimistic locking is not served)\r\n+OK\r\n\
         -ERR wrong number of arguments for 'watch' command\r\n+OK\r\n"
    );
}

/// A real redis-server on a free port, killed on drop.
struct RealRedis {
    child: Child,
    port: u16,
}

impl RealRedis {
    /// Starts redis-server on a free port and waits until it accepts connections; tries another
    /// port if it exits first (its bind failed).
    fn start() -> RealRedis {
        let mut exits = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server");
            let give_up = Instant::now() + T;
            loop {
                if accepts(port) {
                    return RealRedis { child, port };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    exits.push(format!("port {port}: {status}"));
                    break;
                }
                assert!(Instant::now() < give_up, "redis-server did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start: {exits:?}");
    }
}

/// A TCP port on 127.0.0.1 that nothing uses right now, found by binding a socket that never
/// listens: a listening one would be copied into any child another test forks meanwhile and
/// take connections there until that child's `exec`, then reset them.
fn free_port() -> u16 {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.local_addr().unwrap().as_socket().unwrap().port()
}

/// Whether something accepts connections on 127.0.0.1:`port`; a connection that reached itself
/// (a connect to a port nobody listens on can, rarely, be given that port as its source) does
/// not count.
fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect(addr).is_ok_and(|s| s.local_addr().ok() != Some(addr))
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same requests against a real redis-server, when one is installed: the table above is
/// what it says, byte for byte.
#[test]
fn redis_transaction_replies_are_redis_servers_byte_for_byte() {
    if !have("redis-server", "the comparison with a real redis-server") {
        return;
    }
    let real = RealRedis::start();
    let ours = Server::start("redis_server");
    let port: u16 = ours.port().parse().unwrap();
    for (request, _) in CASES {
        assert_eq!(
            exchange(port, request),
            exchange(real.port, request),
            "{request:?}"
        );
    }
}

/// A client's `MULTI`, 2,000 `INCR`s and `EXEC` while four others pipeline `INCR`s of the
/// same key: the transaction's replies are consecutive (no other command ran in between),
/// and no increment is lost.
fn exec_is_not_interleaved(server: &Server) {
    const N: usize = 2000;
    const OTHERS: usize = 4;
    let others: Vec<_> = (0..OTHERS)
        .map(|_| {
            let s = server.connect();
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                for _ in 0..4 {
                    w.write_all(mbulk(&["INCR", "c"]).repeat(N / 4).as_bytes())
                        .unwrap();
                    replies(&mut r, N / 4);
                }
            })
        })
        .collect();
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut request = mbulk(&["MULTI"]);
    request += &mbulk(&["INCR", "c"]).repeat(N);
    request += &mbulk(&["EXEC"]);
    w.write_all(request.as_bytes()).unwrap();
    assert_eq!(reply(&mut r), "+OK");
    assert!(replies(&mut r, N).iter().all(|q| q == "+QUEUED"));
    let exec = reply(&mut r);
    let values: Vec<i64> = exec
        .strip_prefix("*[")
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("EXEC: {exec:.80}"))
        .split(',')
        .map(|v| v.strip_prefix(':').unwrap().parse().unwrap())
        .collect();
    assert_eq!(values.len(), N);
    for pair in values.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "another command ran inside EXEC");
    }
    for t in others {
        t.join().unwrap();
    }
    w.write_all(b"GET c\r\n").unwrap();
    assert_eq!(reply(&mut r), format!("${}", N * (OTHERS + 1)));
}

#[test]
fn redis_exec_runs_its_queue_with_no_other_command_in_between() {
    exec_is_not_interleaved(&Server::start("redis_server"));
}

#[test]
fn redis_exec_on_two_hubs_runs_its_queue_with_no_other_command_in_between() {
    exec_is_not_interleaved(&Server::start_with("redis_server", &["--threads", "2"]));
}

/// An `EXEC` of 1,000 `GET`s of a 2 MiB value (2 GB of replies): the replies share the value
/// (a reference each, not a copy), so the server's peak resident set stays under 256 MB
/// while the client waits before reading and then as it reads, and every reply is intact.
#[test]
fn redis_exec_of_gets_of_a_large_value_keeps_the_server_small() {
    const VALUE: usize = 2 << 20;
    const GETS: usize = 1000;
    let server = Server::start("redis_server");
    let pid = server.child.id();
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::with_capacity(1 << 20, s);
    let value = set_large_value(&mut w, &mut r, VALUE);
    let base = status_kib(pid, "VmRSS");
    let mut request = mbulk(&["MULTI"]);
    request += &mbulk(&["GET", "k"]).repeat(GETS);
    request += &mbulk(&["EXEC"]);
    w.write_all(request.as_bytes()).unwrap();
    assert_eq!(reply(&mut r), "+OK");
    assert!(replies(&mut r, GETS).iter().all(|q| q == "+QUEUED"));
    // Not reading the EXEC's replies yet: the server must wait, not buffer.
    std::thread::sleep(Duration::from_millis(300));
    let waiting = status_kib(pid, "VmRSS");
    let mut header = String::new();
    std::io::BufRead::read_line(&mut r, &mut header).unwrap();
    assert_eq!(header, format!("*{GETS}\r\n"));
    expect_values(&mut r, &value, GETS);
    assert_stayed_small(pid, base, waiting);
}

/// A transaction may queue at most 2^18 arguments and 16 MiB of requests: the command past
/// either bound is refused at once with an error that says so, `EXEC` then discards the
/// transaction, and the connection goes on.
#[test]
fn redis_a_transaction_too_big_is_refused_and_discarded() {
    const MAX_ARGS: usize = 1 << 18;
    let too_big = "-ERR transaction too big: at most 16777216 bytes and 262144 arguments \
                   may be queued";
    let server = Server::start("redis_server");
    let s = server.connect();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::with_capacity(1 << 20, s);
    // Too many arguments: 2^18 PINGs fit, the next does not.
    let mut request = String::from("MULTI\r\n");
    request += &"PING\r\n".repeat(MAX_ARGS + 2);
    request += "EXEC\r\nPING\r\n";
    w.write_all(request.as_bytes()).unwrap();
    assert_eq!(reply(&mut r), "+OK");
    let got = replies(&mut r, MAX_ARGS + 2);
    assert!(got[..MAX_ARGS].iter().all(|q| q == "+QUEUED"));
    assert_eq!(got[MAX_ARGS], too_big);
    assert_eq!(got[MAX_ARGS + 1], "+QUEUED");
    assert_eq!(
        replies(&mut r, 2),
        [
            "-EXECABORT Transaction discarded because of previous errors.",
            "+PONG"
        ]
    );
    // Too many bytes: one SET of an 8 MiB value fits, a second does not.
    let value = "v".repeat(8 << 20);
    w.write_all(b"MULTI\r\n").unwrap();
    w.write_all(mbulk(&["SET", "a", &value]).as_bytes())
        .unwrap();
    w.write_all(mbulk(&["SET", "b", &value]).as_bytes())
        .unwrap();
    w.write_all(b"EXEC\r\nEXISTS a b\r\n").unwrap();
    assert_eq!(
        replies(&mut r, 5),
        [
            "+OK",
            "+QUEUED",
            too_big,
            "-EXECABORT Transaction discarded because of previous errors.",
            ":0"
        ]
    );
}
