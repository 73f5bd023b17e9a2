//! The two wire protocols the network workloads speak, shared by every peer server in this crate.
//!
//! - HTTP/1.1 hello world with keep-alive, what `wrk` drives: every request (headers ending in
//!   an empty line, no body) gets the same 13-byte `Hello, World!` response.
//! - RESP, what `redis-benchmark -t ping_inline,ping_mbulk` drives: `PING` as an inline command
//!   (`PING\r\n`) or as a multi-bulk array (`*1\r\n$4\r\nPING\r\n`) gets `+PONG\r\n`. The
//!   `CONFIG GET` that redis-benchmark sends when it starts gets an empty array.
//!
//! Both parsers work on a connection's buffer: they append the responses to `out` and return how
//! many bytes of input they consumed; a partial request stays in the buffer for the next read.

/// The response to every HTTP request.
pub const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!";

/// Answers every complete HTTP request in `buf`; returns the bytes consumed.
pub fn http(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut start = 0;
    while let Some(p) = find(&buf[start..], b"\r\n\r\n") {
        start += p + 4;
        out.extend_from_slice(HTTP_RESPONSE);
    }
    start
}

/// Answers every complete RESP command in `buf`; returns the bytes consumed.
pub fn resp(buf: &[u8], out: &mut Vec<u8>) -> usize {
    let mut start = 0;
    while start < buf.len() {
        let parsed = if buf[start] == b'*' {
            multibulk(&buf[start..])
        } else {
            inline(&buf[start..])
        };
        match parsed {
            Some((used, command)) => {
                start += used;
                out.extend_from_slice(reply(command));
            }
            None => break,
        }
    }
    start
}

/// The reply to a command, by its name.
fn reply(command: &[u8]) -> &'static [u8] {
    if command.eq_ignore_ascii_case(b"PING") {
        b"+PONG\r\n"
    } else if command.eq_ignore_ascii_case(b"CONFIG") {
        b"*0\r\n"
    } else if command.is_empty() {
        b""
    } else {
        b"-ERR unknown command\r\n"
    }
}

/// `PING\r\n`: (bytes used, first word).
fn inline(buf: &[u8]) -> Option<(usize, &[u8])> {
    let end = find(buf, b"\r\n")?;
    let line = &buf[..end];
    let word = line.split(|b| *b == b' ').next().unwrap_or(b"");
    Some((end + 2, word))
}

/// `*N\r\n` then N times `$len\r\n<bytes>\r\n`: (bytes used, first element).
fn multibulk(buf: &[u8]) -> Option<(usize, &[u8])> {
    let (mut pos, count) = number(buf, 1)?;
    let mut first: &[u8] = b"";
    for i in 0..count {
        if buf.get(pos) != Some(&b'$') {
            // Not RESP we understand: drop the rest of the line so the connection goes on.
            return Some((pos + find(&buf[pos..], b"\r\n")? + 2, b"?"));
        }
        let (data, len) = number(buf, pos + 1)?;
        let end = data.checked_add(len)?;
        if buf.len() < end + 2 {
            return None;
        }
        if i == 0 {
            first = &buf[data..end];
        }
        pos = end + 2;
    }
    Some((pos, first))
}

/// The decimal number starting at `at` and ending in `\r\n`: (position after it, value).
fn number(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let rest = buf.get(at..)?;
    let end = find(rest, b"\r\n")?;
    let value = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    Some((at + end + 2, value))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A connection buffer: bytes read but not yet answered, and the answers not yet written.
#[derive(Debug)]
pub struct ConnBuf {
    /// Input, `have` bytes of it valid.
    pub input: Vec<u8>,
    /// How many bytes of `input` hold data.
    pub have: usize,
    /// Responses waiting to be written.
    pub out: Vec<u8>,
}

impl ConnBuf {
    /// An empty buffer with room for a 16 KiB read.
    pub fn new() -> ConnBuf {
        ConnBuf {
            input: vec![0; 16 * 1024],
            have: 0,
            out: Vec::with_capacity(4096),
        }
    }

    /// The free space to read into (grows the buffer when a request fills it).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.have == self.input.len() {
            self.input.resize(self.input.len() * 2, 0);
        }
        &mut self.input[self.have..]
    }

    /// Records `n` bytes read into `spare()` and answers what is complete with `parse`.
    pub fn filled(&mut self, n: usize, parse: fn(&[u8], &mut Vec<u8>) -> usize) {
        self.have += n;
        let used = parse(&self.input[..self.have], &mut self.out);
        self.input.copy_within(used..self.have, 0);
        self.have -= used;
    }
}

impl Default for ConnBuf {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_pipelined_and_partial() {
        let mut out = Vec::new();
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo";
        let used = http(req, &mut out);
        assert_eq!(used, 27);
        assert_eq!(out, HTTP_RESPONSE);
    }

    #[test]
    fn resp_inline_multibulk_and_config() {
        let mut out = Vec::new();
        let input = b"PING\r\n*1\r\n$4\r\nPING\r\n*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n*1\r\n$4\r\nPI";
        let used = resp(input, &mut out);
        assert_eq!(&input[used..], b"*1\r\n$4\r\nPI");
        assert_eq!(out, b"+PONG\r\n+PONG\r\n*0\r\n");
    }

    #[test]
    fn conn_buf_keeps_partial_input() {
        let mut c = ConnBuf::new();
        let msg = b"PING\r\nPI";
        c.spare()[..msg.len()].copy_from_slice(msg);
        c.filled(msg.len(), resp);
        assert_eq!(c.out, b"+PONG\r\n");
        assert_eq!(&c.input[..c.have], b"PI");
    }
}

/// Test helpers for the servers in `peers/`.
#[cfg(test)]
pub mod testing {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// Runs `serve` on a free port in a background thread; returns the port once it accepts.
    /// A server whose bind fails (another socket took the port between `free_port` and the
    /// bind) is started again on another port.
    pub fn start(serve: fn(u16) -> Result<(), String>) -> u16 {
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = crate::sys::free_port().expect("free port");
            let server = std::thread::spawn(move || serve(port));
            let addr = (std::net::Ipv4Addr::LOCALHOST, port).into();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if crate::sys::accepts(addr, Duration::from_secs(1)) {
                    return port;
                }
                if server.is_finished() {
                    failures.push(format!("port {port}: {:?}", server.join()));
                    break;
                }
                assert!(Instant::now() < deadline, "server did not listen");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("the server did not start: {failures:?}");
    }

    /// Sends `request` and reads until `want` bytes came back.
    pub fn exchange(port: u16, request: &[u8], want: usize) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).expect("write");
        let mut got = vec![0; want];
        s.read_exact(&mut got).expect("read the whole answer");
        got
    }

    /// Two pipelined HTTP requests, split across writes, get two responses.
    pub fn check_http(port: u16) {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let got = exchange(port, req, 2 * super::HTTP_RESPONSE.len());
        assert_eq!(got, [super::HTTP_RESPONSE, super::HTTP_RESPONSE].concat());
    }

    /// An inline and a multi-bulk PING get two PONGs.
    pub fn check_resp(port: u16) {
        let got = exchange(port, b"PING\r\n*1\r\n$4\r\nPING\r\n", 14);
        assert_eq!(got, b"+PONG\r\n+PONG\r\n");
    }
}
