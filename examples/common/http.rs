//! A small HTTP/1.x request-head parser for the examples: parses in place, allocates nothing,
//! and enforces bounds (head size, header count, token lengths, body size).
//!
//! Included with `#[path = "common/http.rs"] mod http;` by the examples that speak HTTP, and
//! by `tests/protocols.rs`, which runs the tests at the bottom.

#![allow(dead_code)]

/// The largest request head (request line + headers) accepted.
pub const MAX_HEAD: usize = 8192;
/// The most header fields accepted.
pub const MAX_HEADERS: usize = 64;
/// The largest request body accepted (it is read and discarded).
pub const MAX_BODY: usize = 1 << 20;
const MAX_METHOD: usize = 16;

/// A parsed request head, borrowing from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Whether the connection stays open after this request (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    pub content_length: usize,
    /// `Transfer-Encoding` was given (the examples do not take chunked bodies).
    pub chunked: bool,
    /// Bytes of the head, up to and including the empty line.
    pub head_len: usize,
}

/// An error status to answer a bad request with, before closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    BadRequest,
    PayloadTooLarge,
    HeadersTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    /// The complete response, with `Connection: close`.
    pub fn response(self) -> &'static [u8] {
        match self {
            Status::BadRequest => {
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Request\n"
            }
            Status::PayloadTooLarge => {
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 18\r\nConnection: close\r\n\r\nPayload Too Large\n"
            }
            Status::HeadersTooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 32\r\nConnection: close\r\n\r\nRequest Header Fields Too Large\n"
            }
            Status::NotImplemented => {
                b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 16\r\nConnection: close\r\n\r\nNot Implemented\n"
            }
            Status::VersionNotSupported => {
                b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 27\r\nConnection: close\r\n\r\nHTTP Version Not Supported\n"
            }
        }
    }

    pub fn code(self) -> u16 {
        match self {
            Status::BadRequest => 400,
            Status::PayloadTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::NotImplemented => 501,
            Status::VersionNotSupported => 505,
        }
    }
}

/// The outcome of parsing the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<'a> {
    Complete(Request<'a>),
    /// More bytes are needed.
    Partial,
    Error(Status),
}

fn is_tchar(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'#'
            | b'$'
            | b'%'
            | b'&'
            | b'\''
            | b'*'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~'
    ) || b.is_ascii_alphanumeric()
}

/// A cursor over the buffer; `None` from a step means "ran out of bytes".
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes a line ending (`\r\n`, or a bare `\n`); `Some(false)` if there is none here.
    fn eol(&mut self) -> Option<bool> {
        match self.peek()? {
            b'\n' => {
                self.pos += 1;
                Some(true)
            }
            b'\r' => match *self.buf.get(self.pos + 1)? {
                b'\n' => {
                    self.pos += 2;
                    Some(true)
                }
                _ => Some(false),
            },
            _ => Some(false),
        }
    }

    /// Takes bytes while `ok` holds; stops at the first other byte (not consumed).
    fn take_while(&mut self, ok: impl Fn(u8) -> bool) -> Option<&'a [u8]> {
        let start = self.pos;
        let n = self.buf[start..].iter().position(|&b| !ok(b))?;
        self.pos = start + n;
        Some(&self.buf[start..start + n])
    }
}

fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Whether the comma-separated header value contains `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| eq_ignore_case(t.trim_ascii(), token))
}

/// Reads from `conn` until a whole request head has arrived (what the examples' slow servers
/// wait for before answering); false when the peer closed, failed or sent a bad head.
pub fn read_head(conn: &mut impl std::io::Read) -> bool {
    let mut buf = [0u8; MAX_HEAD];
    let mut end = 0;
    loop {
        match conn.read(&mut buf[end..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => end += n,
        }
        match parse(&buf[..end]) {
            Parse::Partial if end < buf.len() => continue,
            Parse::Complete(_) => return true,
            _ => return false,
        }
    }
}

/// Parses one request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parse<'_> {
    match parse_inner(buf) {
        Some(Ok(r)) => Parse::Complete(r),
        Some(Err(s)) => Parse::Error(s),
        None if buf.len() >= MAX_HEAD => Parse::Error(Status::HeadersTooLarge),
        None => Parse::Partial,
    }
}

fn parse_inner(buf: &[u8]) -> Option<Result<Request<'_>, Status>> {
    let bad = Some(Err(Status::BadRequest));
    let mut c = Cursor { buf, pos: 0 };
    // Request line: method SP target SP HTTP/1.x CRLF (empty lines before it are skipped).
    while c.eol()? {}
    let method = c.take_while(is_tchar)?;
    if method.is_empty() || method.len() > MAX_METHOD || c.peek()? != b' ' {
        return bad;
    }
    c.pos += 1;
    let path = c.take_while(|b| (0x21..0x7f).contains(&b))?;
    if path.is_empty() || c.peek()? != b' ' {
        return bad;
    }
    c.pos += 1;
    let version = c.buf.get(c.pos..c.pos + 8)?;
    let minor = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") && v[5].is_ascii_digit() => {
            return Some(Err(Status::VersionNotSupported));
        }
        _ => return bad,
    };
    c.pos += 8;
    if !c.eol()? {
        return bad;
    }
    if c.pos > MAX_HEAD {
        return Some(Err(Status::HeadersTooLarge));
    }
    // Header fields.
    let mut keep_alive = minor == 1;
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut count = 0;
    loop {
        if c.eol()? {
            break;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Some(Err(Status::HeadersTooLarge));
        }
        let name = c.take_while(is_tchar)?;
        if name.is_empty() || c.peek()? != b':' {
            return bad;
        }
        c.pos += 1;
        let value = c.take_while(|b| b == b'\t' || (b' '..0x7f).contains(&b) || b >= 0x80)?;
        if !c.eol()? {
            return bad;
        }
        if c.pos > MAX_HEAD {
            return Some(Err(Status::HeadersTooLarge));
        }
        let value = value.trim_ascii();
        if eq_ignore_case(name, b"content-length") {
            if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return bad;
            }
            let n = value
                .iter()
                .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
            if content_length.is_some_and(|m| m != n) {
                return bad;
            }
            content_length = Some(n);
        } else if eq_ignore_case(name, b"transfer-encoding") {
            chunked = true;
        } else if eq_ignore_case(name, b"connection") {
            if has_token(value, b"close") {
                keep_alive = false;
            } else if has_token(value, b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    if c.pos > MAX_HEAD {
        return Some(Err(Status::HeadersTooLarge));
    }
    if chunked {
        return Some(Err(if content_length.is_some() {
            Status::BadRequest
        } else {
            Status::NotImplemented
        }));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_BODY {
        return Some(Err(Status::PayloadTooLarge));
    }
    Some(Ok(Request {
        method,
        path,
        minor,
        keep_alive,
        content_length,
        chunked,
        head_len: c.pos,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(buf: &[u8]) -> Request<'_> {
        match parse(buf) {
            Parse::Complete(r) => r,
            other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn simple_get() {
        let r = ok(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest");
        assert_eq!(
            (r.method, r.path, r.minor, r.keep_alive),
            (&b"GET"[..], &b"/"[..], 1, true)
        );
        assert_eq!(r.head_len, 27);
        assert_eq!(r.content_length, 0);
    }

    #[test]
    fn every_prefix_is_partial() {
        let req = b"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n";
        for i in 0..req.len() {
            assert_eq!(parse(&req[..i]), Parse::Partial, "prefix {i}");
        }
        let r = ok(req);
        assert_eq!((r.content_length, r.head_len), (3, req.len()));
    }

    #[test]
    fn connection_semantics() {
        assert!(!ok(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nconnection: foo, CLOSE\r\n\r\n").keep_alive);
        assert!(ok(b"GET / HTTP/1.1\nHost: bare-lf\n\n").keep_alive);
    }

    #[test]
    fn garbage_is_rejected() {
        for g in [
            &b"\x00\x01\x02\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 x\r\n\r\n",
            b"GET / FOO/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad\x01: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"*1\r\n$4\r\nPING\r\n",
        ] {
            assert_eq!(
                parse(g),
                Parse::Error(Status::BadRequest),
                "{:?}",
                String::from_utf8_lossy(g)
            );
        }
        assert_eq!(
            parse(b"GET / HTTP/2.0\r\n\r\n"),
            Parse::Error(Status::VersionNotSupported)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Parse::Error(Status::NotImplemented)
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"),
            Parse::Error(Status::PayloadTooLarge)
        );
    }

    #[test]
    fn bounds() {
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < MAX_HEAD + 10 {
            big.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        assert_eq!(parse(&big), Parse::Error(Status::HeadersTooLarge));
        assert_eq!(
            parse(&vec![b'A'; MAX_HEAD]),
            Parse::Error(Status::HeadersTooLarge)
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Parse::Error(Status::HeadersTooLarge));
    }
}
