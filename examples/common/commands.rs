//! The commands of `redis_server`, as redis-server answers them: the command table (names and
//! arities, checked before a command runs or is queued in a transaction), and each command's
//! work against a [`Store`] the caller holds.
//!
//! A command never blocks and never writes to its client: it adds its reply to an [`Out`],
//! whose large values are shared with the store rather than copied, so that the caller can run
//! one command (or a whole `EXEC`) inside one hold of the keyspace and write the replies after
//! letting it go.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::keyspace::Store;

/// Replies are written out once this many bytes are waiting; a value this large is written
/// straight from the keyspace, never copied into the replies.
pub const FLUSH_AT: usize = 64 << 10;

/// The commands this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    Get,
    Set,
    Ping,
    Echo,
    MGet,
    MSet,
    Del,
    Exists,
    Incr,
    Decr,
    IncrBy,
    DecrBy,
    Expire,
    PExpire,
    Ttl,
    PTtl,
    Persist,
    DbSize,
    Hello,
    Client,
    Select,
    Config,
    Command,
    Quit,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
}

/// A command's name and arity, as redis-server's command table gives them.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub cmd: Cmd,
    /// `n`: exactly `n` arguments (the name included); `-n`: at least `n`.
    pub arity: i32,
}

impl Spec {
    /// Whether `n` arguments (the name included) fit the command's arity.
    pub fn arity_fits(&self, n: usize) -> bool {
        let want = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            n == want
        } else {
            n >= want
        }
    }

    /// Whether the command reads or changes the keyspace (and so runs while it is held).
    pub fn uses_keyspace(&self) -> bool {
        use Cmd::*;
        matches!(
            self.cmd,
            Get | Set
                | MGet
                | MSet
                | Del
                | Exists
                | Incr
                | Decr
                | IncrBy
                | DecrBy
                | Expire
                | PExpire
                | Ttl
                | PTtl
                | Persist
                | DbSize
        )
    }
}

const fn spec(name: &'static str, cmd: Cmd, arity: i32) -> Spec {
    Spec { name, cmd, arity }
}

/// The command table, the most frequent first (it is searched in order).
pub const COMMANDS: &[Spec] = &[
    spec("get", Cmd::Get, 2),
    spec("set", Cmd::Set, -3),
    spec("ping", Cmd::Ping, -1),
    spec("echo", Cmd::Echo, 2),
    spec("mget", Cmd::MGet, -2),
    spec("mset", Cmd::MSet, -3),
    spec("del", Cmd::Del, -2),
    spec("exists", Cmd::Exists, -2),
    spec("incr", Cmd::Incr, 2),
    spec("decr", Cmd::Decr, 2),
    spec("incrby", Cmd::IncrBy, 3),
    spec("decrby", Cmd::DecrBy, 3),
    spec("expire", Cmd::Expire, -3),
    spec("pexpire", Cmd::PExpire, -3),
    spec("ttl", Cmd::Ttl, 2),
    spec("pttl", Cmd::PTtl, 2),
    spec("persist", Cmd::Persist, 2),
    spec("dbsize", Cmd::DbSize, 1),
    spec("multi", Cmd::Multi, 1),
    spec("exec", Cmd::Exec, 1),
    spec("discard", Cmd::Discard, 1),
    spec("watch", Cmd::Watch, -2),
    spec("unwatch", Cmd::Unwatch, 1),
    spec("hello", Cmd::Hello, -1),
    spec("client", Cmd::Client, -2),
    spec("select", Cmd::Select, 2),
    spec("config", Cmd::Config, -2),
    spec("command", Cmd::Command, -1),
    spec("quit", Cmd::Quit, -1),
];

/// The command named `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|s| s.name.len() == name.len() && name.eq_ignore_ascii_case(s.name.as_bytes()))
}

/// Replies not written yet: bytes, with the large values between them shared with the store
/// (a reference each, however often a value is asked for), and the earliest deadline the
/// commands set, for the expiring greenlets.
#[derive(Default)]
pub struct Out {
    /// The reply bytes; `values` go between them.
    pub bytes: Vec<u8>,
    /// Large values, each to be written at its offset in `bytes`.
    values: Vec<(usize, Arc<Vec<u8>>)>,
    /// The earliest deadline set since this was last taken.
    pub earliest: Option<Instant>,
}

impl Out {
    /// No replies yet, with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Out {
        Out {
            bytes: Vec::with_capacity(capacity),
            ..Out::default()
        }
    }

    /// Whether enough is waiting to be written now: [`FLUSH_AT`] bytes, or a large value
    /// (written as soon as asked for, as before transactions).
    pub fn is_full(&self) -> bool {
        self.bytes.len() >= FLUSH_AT || !self.values.is_empty()
    }

    /// Adds bytes as they are (a whole reply, `\r\n` included).
    pub fn push(&mut self, reply: &[u8]) {
        self.bytes.extend_from_slice(reply);
    }

    /// An integer reply.
    pub fn int(&mut self, n: i64) {
        let _ = write!(self.bytes, ":{n}\r\n");
    }

    /// A bulk string reply, copied.
    pub fn bulk(&mut self, v: &[u8]) {
        let _ = write!(self.bytes, "${}\r\n", v.len());
        self.bytes.extend_from_slice(v);
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// A value of the keyspace, or nil. A small one is copied while the bytes waiting stay
    /// under [`FLUSH_AT`]; any other is shared, so that many replies of one large value (a
    /// pipeline or a transaction of GETs) hold it once.
    pub fn value(&mut self, v: Option<&Arc<Vec<u8>>>) {
        match v {
            None => self.bytes.extend_from_slice(b"$-1\r\n"),
            Some(v) if v.len() < FLUSH_AT && self.bytes.len() < FLUSH_AT => self.bulk(v),
            Some(v) => {
                let _ = write!(self.bytes, "${}\r\n", v.len());
                self.values.push((self.bytes.len(), Arc::clone(v)));
                self.bytes.extend_from_slice(b"\r\n");
            }
        }
    }

    /// Notes a deadline a command set.
    pub fn deadline(&mut self, d: Instant) {
        if self.earliest.is_none_or(|e| d < e) {
            self.earliest = Some(d);
        }
    }

    /// Writes everything waiting, in order (waiting, green, while the client does not read).
    pub fn write_to(&mut self, mut conn: impl Write) -> io::Result<()> {
        let mut at = 0;
        for (offset, v) in self.values.drain(..) {
            conn.write_all(&self.bytes[at..offset])?;
            conn.write_all(&v)?;
            at = offset;
        }
        if at < self.bytes.len() {
            conn.write_all(&self.bytes[at..])?;
        }
        self.bytes.clear();
        if self.bytes.capacity() > 4 * FLUSH_AT {
            self.bytes.shrink_to(FLUSH_AT);
        }
        Ok(())
    }
}

const NOT_AN_INTEGER: &[u8] = b"-ERR value is not an integer or out of range\r\n";

/// `-ERR wrong number of arguments for 'cmd' command`.
pub fn wrong_arity(out: &mut Out, cmd: &str) {
    let _ = write!(
        out.bytes,
        "-ERR wrong number of arguments for '{cmd}' command\r\n"
    );
}

/// A decimal `i64` as redis-server reads one (no `+`, no spaces).
fn parse_i64(v: &[u8]) -> Option<i64> {
    if v.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Runs a command that uses the keyspace (`spec.uses_keyspace()`, arity checked) against the
/// store the caller holds.
pub fn run(
    cmd: Cmd,
    req: &[u8],
    args: &[Range<usize>],
    ks: &mut Store,
    now: Instant,
    out: &mut Out,
) {
    let arg = |i: usize| &req[args[i].clone()];
    let n = args.len();
    match cmd {
        Cmd::Get => out.value(ks.get(arg(1), now)),
        Cmd::Set => set(ks, req, args, now, out),
        Cmd::MGet => {
            let _ = write!(out.bytes, "*{}\r\n", n - 1);
            for i in 1..n {
                out.value(ks.get(arg(i), now));
            }
        }
        Cmd::MSet if n.is_multiple_of(2) => wrong_arity(out, "mset"),
        Cmd::MSet => {
            for i in (1..n).step_by(2) {
                ks.set(arg(i), arg(i + 1));
            }
            out.push(b"+OK\r\n");
        }
        Cmd::Del | Cmd::Exists => {
            let count = (1..n)
                .filter(|&i| {
                    ks.expire_if_due(arg(i), now);
                    if cmd == Cmd::Del {
                        ks.remove(arg(i))
                    } else {
                        ks.values.contains_key(arg(i))
                    }
                })
                .count();
            out.int(count as i64);
        }
        Cmd::Incr => incr_by(ks, arg(1), 1, now, out),
        Cmd::Decr => incr_by(ks, arg(1), -1, now, out),
        Cmd::IncrBy | Cmd::DecrBy => match parse_i64(arg(2)) {
            Some(by) if cmd == Cmd::IncrBy => incr_by(ks, arg(1), by, now, out),
            Some(by) => match by.checked_neg() {
                Some(by) => incr_by(ks, arg(1), by, now, out),
                None => out.push(b"-ERR decrement would overflow\r\n"),
            },
            None => out.push(NOT_AN_INTEGER),
        },
        Cmd::Expire | Cmd::PExpire => {
            let (name, unit) = if cmd == Cmd::Expire {
                ("expire", 1000)
            } else {
                ("pexpire", 1)
            };
            if n != 3 {
                // The NX/XX/GT/LT options are not served.
                wrong_arity(out, name);
            } else {
                expire(ks, arg(1), arg(2), unit, now, out);
            }
        }
        Cmd::Ttl | Cmd::PTtl => {
            ks.expire_if_due(arg(1), now);
            let ttl = if !ks.values.contains_key(arg(1)) {
                -2
            } else {
                match ks.deadlines.get(arg(1)) {
                    None => -1,
                    Some(d) => {
                        let ms = d.saturating_duration_since(now).as_millis() as i64;
                        // redis-server rounds seconds to the nearest.
                        if cmd == Cmd::Ttl {
                            (ms + 500) / 1000
                        } else {
                            ms
                        }
                    }
                }
            };
            out.int(ttl);
        }
        Cmd::Persist => {
            ks.expire_if_due(arg(1), now);
            let had = ks.persist(arg(1));
            out.int(i64::from(had));
        }
        // Counts keys whose deadline passed but that no read or expiring greenlet has deleted
        // yet, as redis-server's does.
        Cmd::DbSize => out.int(ks.values.len() as i64),
        _ => answer(cmd, req, args, out),
    }
}

/// Answers a command that does not use the keyspace (arity checked).
pub fn answer(cmd: Cmd, req: &[u8], args: &[Range<usize>], out: &mut Out) {
    let arg = |i: usize| &req[args[i].clone()];
    let n = args.len();
    match cmd {
        Cmd::Ping if n == 1 => out.push(b"+PONG\r\n"),
        Cmd::Ping if n == 2 => out.bulk(arg(1)),
        Cmd::Ping => wrong_arity(out, "ping"),
        Cmd::Echo => out.bulk(arg(1)),
        Cmd::Hello => hello(req, args, out),
        Cmd::Client => {
            // redis-py names itself (SETINFO, SETNAME) on connect; the names are not kept.
            let sub = arg(1);
            if sub.eq_ignore_ascii_case(b"setinfo") || sub.eq_ignore_ascii_case(b"setname") {
                out.push(b"+OK\r\n");
            } else if sub.eq_ignore_ascii_case(b"getname") {
                out.push(b"$-1\r\n");
            } else {
                unknown(out, req, args);
            }
        }
        // One database, number 0.
        Cmd::Select if arg(1) == b"0" => out.push(b"+OK\r\n"),
        Cmd::Select => out.push(b"-ERR DB index is out of range\r\n"),
        Cmd::Config if n == 3 && arg(1).eq_ignore_ascii_case(b"get") => {
            // redis-benchmark asks for `save` and `appendonly` before it starts: nothing is
            // saved here.
            let value: Option<&[u8]> = match arg(2) {
                p if p.eq_ignore_ascii_case(b"save") => Some(b""),
                p if p.eq_ignore_ascii_case(b"appendonly") => Some(b"no"),
                _ => None,
            };
            match value {
                Some(v) => {
                    out.push(b"*2\r\n");
                    out.bulk(arg(2));
                    out.bulk(v);
                }
                None => out.push(b"*0\r\n"),
            }
        }
        Cmd::Command => command(req, args, out),
        // Nothing is ever watched (WATCH is refused), so there is nothing to forget.
        Cmd::Unwatch => out.push(b"+OK\r\n"),
        _ => unknown(out, req, args),
    }
}

/// `SET key value [EX seconds | PX milliseconds]`.
fn set(ks: &mut Store, req: &[u8], args: &[Range<usize>], now: Instant, out: &mut Out) {
    let arg = |i: usize| &req[args[i].clone()];
    let ttl_ms = match args.len() {
        3 => None,
        5 if arg(3).eq_ignore_ascii_case(b"ex") || arg(3).eq_ignore_ascii_case(b"px") => {
            let unit = if arg(3).eq_ignore_ascii_case(b"ex") {
                1000
            } else {
                1
            };
            match parse_i64(arg(4)).and_then(|t| t.checked_mul(unit)) {
                Some(ms) if ms > 0 => Some(ms),
                Some(_) => return out.push(b"-ERR invalid expire time in 'set' command\r\n"),
                None => return out.push(NOT_AN_INTEGER),
            }
        }
        _ => return out.push(b"-ERR syntax error\r\n"),
    };
    ks.set(arg(1), arg(2));
    if let Some(ms) = ttl_ms {
        let deadline = now + Duration::from_millis(ms as u64);
        ks.set_deadline(arg(1), deadline);
        out.deadline(deadline);
    }
    out.push(b"+OK\r\n");
}

/// `EXPIRE key seconds` / `PEXPIRE key milliseconds` (`unit` ms per step): 1 if the key
/// exists (a deadline not in the future deletes it), 0 if not.
fn expire(ks: &mut Store, key: &[u8], amount: &[u8], unit: i64, now: Instant, out: &mut Out) {
    let Some(ms) = parse_i64(amount).and_then(|t| t.checked_mul(unit)) else {
        return out.push(NOT_AN_INTEGER);
    };
    ks.expire_if_due(key, now);
    if !ks.values.contains_key(key) {
        return out.int(0);
    }
    if ms <= 0 {
        ks.remove(key);
    } else {
        let deadline = now + Duration::from_millis(ms as u64);
        ks.set_deadline(key, deadline);
        out.deadline(deadline);
    }
    out.int(1);
}

fn incr_by(ks: &mut Store, key: &[u8], by: i64, now: Instant, out: &mut Out) {
    let old = match ks.get(key, now) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(i) => i,
            None => return out.push(NOT_AN_INTEGER),
        },
    };
    let Some(new) = old.checked_add(by) else {
        return out.push(b"-ERR increment or decrement would overflow\r\n");
    };
    // Keeps the key's deadline, as redis-server does.
    let v = Arc::make_mut(ks.values.entry(key.to_vec()).or_default());
    v.clear();
    let _ = write!(v, "{new}");
    out.int(new);
}
/// `HELLO [protover ...]`: RESP2 only. `HELLO 3` gets `NOPROTO`, which redis-py (whose
/// default is RESP3) answers by falling back to RESP2.
fn hello(req: &[u8], args: &[Range<usize>], out: &mut Out) {
    if let Some(v) = args.get(1) {
        match parse_i64(&req[v.clone()]) {
            Some(2) => {}
            Some(3) => {
                return out.push(b"-NOPROTO sorry, this protocol version is not supported\r\n");
            }
            _ => {
                return out.push(b"-ERR Protocol version is not an integer or out of range\r\n");
            }
        }
        if args.len() > 2 {
            // AUTH and SETNAME options: no users here.
            return out.push(b"-ERR HELLO options are not supported by this server\r\n");
        }
    }
    // The RESP2 form of redis-server's map: field, value, field, value...
    out.push(b"*14\r\n");
    for (k, v) in [
        ("server", "redis"),
        ("version", "7.0.0"),
        ("proto", ""),
        ("id", ""),
        ("mode", "standalone"),
        ("role", "master"),
    ] {
        out.bulk(k.as_bytes());
        match k {
            "proto" => out.int(2),
            "id" => out.int(1),
            _ => out.bulk(v.as_bytes()),
        }
    }
    out.bulk(b"modules");
    out.push(b"*0\r\n");
}

/// `COMMAND` and its subcommands, as far as clients ask at start: redis-cli asks for
/// `COMMAND DOCS` (hints); the answers say "no documentation" without an error.
fn command(req: &[u8], args: &[Range<usize>], out: &mut Out) {
    let sub = args.get(1).map(|r| &req[r.clone()]);
    match sub {
        Some(s) if s.eq_ignore_ascii_case(b"count") => out.int(COMMANDS.len() as i64),
        Some(s) if s.eq_ignore_ascii_case(b"list") => {
            let _ = write!(out.bytes, "*{}\r\n", COMMANDS.len());
            for c in COMMANDS {
                out.bulk(c.name.as_bytes());
            }
        }
        // `COMMAND`, `COMMAND DOCS [..]`, `COMMAND INFO [..]`: nothing to document.
        _ => out.push(b"*0\r\n"),
    }
}

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as redis-server says it,
/// with names cut short and made printable.
pub fn unknown(out: &mut Out, req: &[u8], args: &[Range<usize>]) {
    let show = |r: &Range<usize>| -> String {
        String::from_utf8_lossy(&req[r.clone()])
            .chars()
            .take(128)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let _ = write!(
        out.bytes,
        "-ERR unknown command '{}', with args beginning with: ",
        show(&args[0])
    );
    for a in args.iter().skip(1).take(8) {
        let _ = write!(out.bytes, "'{}' ", show(a));
    }
    out.push(b"\r\n");
}
