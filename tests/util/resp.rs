//! A client's side of RESP for the tests that drive `redis_server`: requests in multibulk
//! form, replies read back as short strings, and the server's memory as `/proc` reports it.

use std::io::{BufRead, BufReader, Read};
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
