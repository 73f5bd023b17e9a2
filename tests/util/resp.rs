//! A client's side of RESP for the tests that drive `redis_server`: requests in multibulk
//! form, replies read back as short strings, and the server's memory as `/proc` reports it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// Reads one RESP reply and renders it compactly: `+OK`, `-ERR ...`, `:1`, `$value`, `$nil`,
/// `*[a,b]`, `*nil`.
pub fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(1);
    match kind {
        "+" | "-" | ":" => line.to_owned(),
        "$" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return "$nil".into();
            }
            let mut data = vec![0; n as usize + 2];
            r.read_exact(&mut data).unwrap();
            assert_eq!(&data[n as usize..], b"\r\n");
            format!("${}", String::from_utf8_lossy(&data[..n as usize]))
        }
        "*" if rest.starts_with('-') => "*nil".into(),
        "*" => {
            let n: usize = rest.parse().unwrap();
            let items: Vec<String> = (0..n).map(|_| reply(r)).collect();
            format!("*[{}]", items.join(","))
        }
        _ => panic!("not a RESP reply: {line:?}"),
    }
}

pub fn replies(r: &mut BufReader<TcpStream>, n: usize) -> Vec<String> {
    (0..n).map(|_| reply(r)).collect()
}

pub fn mbulk(args: &[&str]) -> String {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s += &format!("${}\r\n{a}\r\n", a.len());
    }
    s
}

/// A field of `/proc/PID/status`, in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read the server's /proc status")
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Sets key `k` to a value of `len` letters over `w`, reads the `+OK` from `r`, and returns
/// the value.
pub fn set_large_value(w: &mut TcpStream, r: &mut BufReader<TcpStream>, len: usize) -> Vec<u8> {
    let value: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut set = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").into_bytes();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    w.write_all(&set).unwrap();
    assert_eq!(reply(r), "+OK");
    value
}

/// Reads `count` bulk replies, each of which must be `value`, intact.
pub fn expect_values(r: &mut BufReader<TcpStream>, value: &[u8], count: usize) {
    let header = format!("${}\r\n", value.len());
    let mut got = vec![0u8; value.len() + 2];
    for i in 0..count {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, header, "reply {i}");
        r.read_exact(&mut got).unwrap();
        assert!(
            got[..value.len()] == *value && got[value.len()..] == *b"\r\n",
            "reply {i} is not the value"
        );
    }
}

/// Asserts that server `pid` stayed small: its peak resident set under 256 MB, and under
/// 32 MB more than `base` KiB (its size before the replies) while its client did not read
/// (`waiting` KiB then).
pub fn assert_stayed_small(pid: u32, base: usize, waiting: usize) {
    let peak = status_kib(pid, "VmHWM");
    println!("server RSS: {base} KiB before, {waiting} KiB with replies unread, peak {peak} KiB");
    assert!(
        peak < 256 * 1024,
        "the server's peak RSS was {peak} KiB (before: {base} KiB)"
    );
    assert!(
        waiting < base + 32 * 1024,
        "the server grew from {base} to {waiting} KiB while its client did not read"
    );
}
