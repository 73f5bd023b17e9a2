//! A RESP (REdis Serialization Protocol) request parser for the examples: multibulk
//! (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`) and inline (`ECHO hi\r\n`) commands, parsed in place
//! into argument ranges of the read buffer, with bounds on every length.
//!
//! Included with `#[path = "common/resp.rs"] mod resp;` by `redis_server`, and by
//! `tests/protocols.rs`, which runs the tests at the bottom.

#![allow(dead_code)]

use std::ops::Range;

/// The most arguments of one command.
pub const MAX_ARGS: usize = 4096;
/// The longest bulk string (argument) accepted.
pub const MAX_BULK: usize = 8 << 20;
/// The longest inline command line accepted.
pub const MAX_INLINE: usize = 64 << 10;

/// A protocol error: the client is answered `-ERR Protocol error: ...` and disconnected, as
/// redis-server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    InvalidMultibulkLength,
    InvalidBulkLength,
    ExpectedDollar,
    /// A bulk string not followed by `\r\n`.
    MissingCrlf,
    TooBigInline,
    UnbalancedQuotes,
}

impl ProtocolError {
    /// The error reply, complete with `\r\n`.
    pub fn reply(self) -> &'static [u8] {
        match self {
            ProtocolError::InvalidMultibulkLength => {
                b"-ERR Protocol error: invalid multibulk length\r\n"
            }
            ProtocolError::InvalidBulkLength => b"-ERR Protocol error: invalid bulk length\r\n",
            ProtocolError::ExpectedDollar => b"-ERR Protocol error: expected '$'\r\n",
            ProtocolError::MissingCrlf => {
                b"-ERR Protocol error: bulk string not followed by CRLF\r\n"
            }
            ProtocolError::TooBigInline => b"-ERR Protocol error: too big inline request\r\n",
            ProtocolError::UnbalancedQuotes => {
                b"-ERR Protocol error: unbalanced quotes in request\r\n"
            }
        }
    }
}

/// Position of the first `\n` in `buf`.
fn find_lf(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Parses a decimal integer of the form used in RESP headers (`-1`, `0`, `42`).
fn parse_int(digits: &[u8]) -> Option<i64> {
    let (neg, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    Some(if neg { -n } else { n })
}

/// Parses one command at the start of `buf`, storing its arguments as ranges of `buf` in
/// `args` (cleared first). Returns `Ok(Some(consumed))` for a complete command, `Ok(None)` when
/// more bytes are needed. An empty inline line is a command with no arguments (to be skipped).
///
/// # Errors
/// A [`ProtocolError`]; the connection should be closed after replying.
pub fn parse(buf: &[u8], args: &mut Vec<Range<usize>>) -> Result<Option<usize>, ProtocolError> {
    args.clear();
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_multibulk(buf, args),
        Some(_) => parse_inline(buf, args),
    }
}

fn parse_multibulk(
    buf: &[u8],
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    let Some(lf) = find_lf(buf) else {
        return if buf.len() > 32 {
            Err(ProtocolError::InvalidMultibulkLength)
        } else {
            Ok(None)
        };
    };
    if lf < 2 || buf[lf - 1] != b'\r' {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    let count = parse_int(&buf[1..lf - 1]).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count > MAX_ARGS as i64 {
        return Err(ProtocolError::InvalidMultibulkLength);
    }
    let mut pos = lf + 1;
    // `*0` and `*-1` are empty commands, skipped as redis-server does.
    for _ in 0..count.max(0) {
        let rest = &buf[pos..];
        match rest.first() {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(ProtocolError::ExpectedDollar),
        }
        let Some(lf) = find_lf(rest) else {
            return if rest.len() > 32 {
                Err(ProtocolError::InvalidBulkLength)
            } else {
                Ok(None)
            };
        };
        if lf < 2 || rest[lf - 1] != b'\r' {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let len = parse_int(&rest[1..lf - 1]).ok_or(ProtocolError::InvalidBulkLength)?;
        if !(0..=MAX_BULK as i64).contains(&len) {
            return Err(ProtocolError::InvalidBulkLength);
        }
        let start = pos + lf + 1;
        let end = start + len as usize;
        if buf.len() < end + 2 {
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::MissingCrlf);
        }
        args.push(start..end);
        pos = end + 2;
    }
    Ok(Some(pos))
}

fn parse_inline(buf: &[u8], args: &mut Vec<Range<usize>>) -> Result<Option<usize>, ProtocolError> {
    let Some(lf) = find_lf(buf) else {
        return if buf.len() > MAX_INLINE {
            Err(ProtocolError::TooBigInline)
        } else {
            Ok(None)
        };
    };
    if lf > MAX_INLINE {
        return Err(ProtocolError::TooBigInline);
    }
    let line_end = if lf > 0 && buf[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    let mut i = 0;
    while i < line_end {
        while i < line_end && matches!(buf[i], b' ' | b'\t') {
            i += 1;
        }
        if i == line_end {
            break;
        }
        if args.len() == MAX_ARGS {
            return Err(ProtocolError::TooBigInline);
        }
        if matches!(buf[i], b'"' | b'\'') {
            // A quoted argument, without escapes: "hello world".
            let quote = buf[i];
            let start = i + 1;
            let Some(len) = buf[start..line_end].iter().position(|&b| b == quote) else {
                return Err(ProtocolError::UnbalancedQuotes);
            };
            args.push(start..start + len);
            i = start + len + 1;
            if i < line_end && !matches!(buf[i], b' ' | b'\t') {
                return Err(ProtocolError::UnbalancedQuotes);
            }
        } else {
            let start = i;
            while i < line_end && !matches!(buf[i], b' ' | b'\t') {
                i += 1;
            }
            args.push(start..i);
        }
    }
    Ok(Some(lf + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(buf: &[u8]) -> (Vec<&[u8]>, usize) {
        let mut args = Vec::new();
        let n = parse(buf, &mut args).expect("valid").expect("complete");
        (args.into_iter().map(|r| &buf[r]).collect(), n)
    }

    #[test]
    fn multibulk() {
        let req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n";
        let (a, n) = args_of(req);
        assert_eq!(a, [&b"SET"[..], b"k", b"hello"]);
        assert_eq!(args_of(&req[n..]).0, [&b"PING"[..]]);
    }

    #[test]
    fn binary_safe_bulk() {
        let (a, _) = args_of(b"*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n");
        assert_eq!(a[1], b"a\r\nb");
    }

    #[test]
    fn every_prefix_is_partial() {
        let req = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$10\r\n0123456789\r\n";
        let mut args = Vec::new();
        for i in 0..req.len() {
            assert_eq!(parse(&req[..i], &mut args), Ok(None), "prefix {i}");
        }
        assert_eq!(parse(req, &mut args), Ok(Some(req.len())));
        assert_eq!(parse(b"PING", &mut args), Ok(None));
    }

    #[test]
    fn inline() {
        assert_eq!(args_of(b"PING\r\n"), (vec![&b"PING"[..]], 6));
        assert_eq!(args_of(b"  set  k   v\n").0, [&b"set"[..], b"k", b"v"]);
        assert_eq!(
            args_of(b"ECHO \"hello world\"\r\n").0,
            [&b"ECHO"[..], b"hello world"]
        );
        assert_eq!(args_of(b"\r\n"), (vec![], 2));
    }

    #[test]
    fn errors() {
        let mut args = Vec::new();
        for (req, err) in [
            (&b"*x\r\n"[..], ProtocolError::InvalidMultibulkLength),
            (b"*99999999\r\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\n", ProtocolError::InvalidMultibulkLength),
            (b"*1\r\n+PING\r\n", ProtocolError::ExpectedDollar),
            (b"*1\r\n$-5\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$999999999999\r\n", ProtocolError::InvalidBulkLength),
            (b"*1\r\n$4\r\nPINGxx", ProtocolError::MissingCrlf),
            (b"ECHO \"open\r\n", ProtocolError::UnbalancedQuotes),
        ] {
            assert_eq!(
                parse(req, &mut args),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(req)
            );
        }
        assert_eq!(
            parse(&vec![b'a'; MAX_INLINE + 1], &mut args),
            Err(ProtocolError::TooBigInline)
        );
        assert_eq!(
            parse(&[b'*'; 40], &mut args),
            Err(ProtocolError::InvalidMultibulkLength)
        );
    }
}
