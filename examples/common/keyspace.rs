//! The keyspace and commands of `redis_server`: strings with optional expiry, and the
//! commands real clients send with their defaults (redis-cli's `COMMAND DOCS`, redis-py's
//! `HELLO 3` and `CLIENT SETINFO`).
//!
//! On one hub the keyspace is an `Rc<RefCell<Store>>` shared by all connections: they all run
//! on one thread, so there is no lock, and no command can be interrupted half-way (a greenlet
//! only switches when it blocks, and commands never block). With `--threads N` it is one
//! `greenlet::sync::Mutex` shared by the hubs, held for one command at a time.
//!
//! Keys expire two ways, as in redis-server: a read finds an expired key gone (lazily), and a
//! greenlet sleeps on the hub's timers until the next deadline and deletes what is due
//! (actively), so memory does not wait for a read.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::sync::Event;

/// Replies are written out once this many bytes are waiting.
pub const FLUSH_AT: usize = 64 << 10;

/// String keys to string values, with deadlines for the keys that expire. A value is shared
/// (`Arc`), so that a GET of a large value can write it after the keyspace is let go; SET
/// changes it in place unless such a write still holds it.
#[derive(Default)]
pub struct Store {
    values: HashMap<Vec<u8>, Arc<Vec<u8>>>,
    deadlines: HashMap<Vec<u8>, Instant>,
    /// The deadlines in time order, for the expiring greenlets.
    schedule: BTreeSet<(Instant, Vec<u8>)>,
}

/// The keyspace of one hub: no lock, the hub's connections take turns.
pub type Db = Rc<RefCell<Store>>;

/// The keyspace shared by the hubs of a runtime.
pub type SharedDb = Arc<greenlet::sync::Mutex<Store>>;

/// A keyspace a command runs against, with exclusive access for the length of `with`.
pub trait Keyspace: Clone + 'static {
    /// A handle that does not keep the keyspace alive, for its expiring greenlet.
    type Weak: 'static;
    /// Runs `f` on the store.
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R;
    /// Identifies the keyspace (among those of this thread's expiring greenlets).
    fn id(&self) -> usize;
    /// The weak form of this handle.
    fn downgrade(&self) -> Self::Weak;
    /// The handle again, if the keyspace is still alive.
    fn upgrade(weak: &Self::Weak) -> Option<Self>;
}

impl Keyspace for Db {
    type Weak = std::rc::Weak<RefCell<Store>>;
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.borrow_mut())
    }
    fn id(&self) -> usize {
        Rc::as_ptr(self) as usize
    }
    fn downgrade(&self) -> Self::Weak {
        Rc::downgrade(self)
    }
    fn upgrade(weak: &Self::Weak) -> Option<Self> {
        weak.upgrade()
    }
}

impl Keyspace for SharedDb {
    type Weak = std::sync::Weak<greenlet::sync::Mutex<Store>>;
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        // Never held across a blocking call (commands do not block), so the lock is only
        // ever waited for by the other hubs, for one command.
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
    fn id(&self) -> usize {
        Arc::as_ptr(self) as usize
    }
    fn downgrade(&self) -> Self::Weak {
        Arc::downgrade(self)
    }
    fn upgrade(weak: &Self::Weak) -> Option<Self> {
        weak.upgrade()
    }
}

impl Store {
    /// The value of `key` if it has one and has not expired.
    fn get(&mut self, key: &[u8], now: Instant) -> Option<&Arc<Vec<u8>>> {
        self.expire_if_due(key, now);
        self.values.get(key)
    }

    fn expire_if_due(&mut self, key: &[u8], now: Instant) {
        if self.deadlines.get(key).is_some_and(|&d| d <= now) {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: &[u8]) -> bool {
        self.persist(key);
        self.values.remove(key).is_some()
    }

    /// Takes the deadline off `key`; returns whether it had one.
    fn persist(&mut self, key: &[u8]) -> bool {
        match self.deadlines.remove(key) {
            Some(d) => {
                self.schedule.remove(&(d, key.to_vec()));
                true
            }
            None => false,
        }
    }

    /// Sets `key` to `value`, without a deadline (as SET does).
    fn set(&mut self, key: &[u8], value: &[u8]) {
        self.persist(key);
        match self.values.get_mut(key) {
            Some(v) => {
                // In place, unless a GET is still writing the old value.
                let v = Arc::make_mut(v);
                v.clear();
                v.extend_from_slice(value);
            }
            None => {
                self.values.insert(key.to_vec(), Arc::new(value.to_vec()));
            }
        }
    }

    fn set_deadline(&mut self, key: &[u8], deadline: Instant) {
        self.persist(key);
        self.deadlines.insert(key.to_vec(), deadline);
        self.schedule.insert((deadline, key.to_vec()));
    }

    /// Deletes every key whose deadline has passed; returns the next deadline.
    fn expire_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some((d, _)) = self.schedule.first() {
            if *d > now {
                return Some(*d);
            }
            let (_, key) = self.schedule.pop_first().expect("checked");
            self.deadlines.remove(&key);
            self.values.remove(&key);
        }
        None
    }
}

/// This hub's expiring greenlet for one keyspace: when it wakes up next, and how to wake it
/// earlier.
struct Expirer {
    earlier: Event,
    until: Cell<Option<Instant>>,
}

thread_local! {
    /// The expiring greenlets of this hub, by keyspace.
    static EXPIRERS: RefCell<HashMap<usize, Rc<Expirer>>> = RefCell::new(HashMap::new());
}

/// Gives `key` a deadline, and makes sure an expiring greenlet of this hub wakes up by then.
/// Each hub that sets a deadline sees to it, so with several hubs sharing a keyspace every
/// deadline is covered (the first expirer to wake deletes what is due).
fn expire_at<K: Keyspace>(db: &K, key: &[u8], deadline: Instant) {
    db.with(|s| s.set_deadline(key, deadline));
    let existing = EXPIRERS.with(|e| e.borrow().get(&db.id()).cloned());
    match existing {
        Some(x) => {
            if x.until.get().is_none_or(|u| deadline < u) {
                x.earlier.set();
            }
        }
        None => {
            let x = Rc::new(Expirer {
                earlier: Event::new(),
                until: Cell::new(None),
            });
            EXPIRERS.with(|e| e.borrow_mut().insert(db.id(), x.clone()));
            let (weak, id) = (db.downgrade(), db.id());
            greenlet::SpawnBuilder::new()
                .name("redis-expire")
                .spawn(move || expire_loop::<K>(weak, id, x))
                .expect("a stack for the expiring greenlet");
        }
    }
}

/// The expiring greenlet: sleeps until the next deadline (or until an earlier one is set on
/// this hub), deletes what is due; ends with the keyspace, or when nothing is left to expire.
fn expire_loop<K: Keyspace>(weak: K::Weak, id: usize, me: Rc<Expirer>) {
    loop {
        let next = match K::upgrade(&weak) {
            Some(db) => db.with(|s| s.expire_due(Instant::now())),
            None => None,
        };
        let Some(next) = next else {
            EXPIRERS.with(|e| e.borrow_mut().remove(&id));
            return;
        };
        me.until.set(Some(next));
        me.earlier.clear();
        // Timed out: a deadline is due; set: an earlier one came, look again.
        let _ = me
            .earlier
            .wait_timeout(next.saturating_duration_since(Instant::now()));
    }
}

fn bulk(out: &mut Vec<u8>, v: &[u8]) {
    let _ = write!(out, "${}\r\n", v.len());
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

fn int(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, ":{n}\r\n");
}

fn wrong_arity(out: &mut Vec<u8>, cmd: &str) {
    let _ = write!(
        out,
        "-ERR wrong number of arguments for '{cmd}' command\r\n"
    );
}

/// The replies on their way to one client: gathered into one buffer, so that pipelined
/// commands are answered with few writes, and written out once [`FLUSH_AT`] bytes wait, so that
/// memory per connection stays bounded whatever the client asks.
pub struct Replies<'a> {
    conn: &'a TcpStream,
    /// Replies not written yet.
    pub buf: Vec<u8>,
}

impl<'a> Replies<'a> {
    /// No replies yet, for `conn`, with room for `capacity` bytes.
    pub fn new(conn: &'a TcpStream, capacity: usize) -> Replies<'a> {
        Replies {
            conn,
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Writes the waiting replies once there are [`FLUSH_AT`] bytes of them.
    pub fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every waiting reply (waiting, green, while the client does not read).
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let mut conn = self.conn;
            conn.write_all(&self.buf)?;
            self.buf.clear();
            if self.buf.capacity() > 4 * FLUSH_AT {
                self.buf.shrink_to(FLUSH_AT);
            }
        }
        Ok(())
    }

    /// A bulk string reply; a large one is written straight from `v`, not copied.
    fn bulk(&mut self, v: &[u8]) -> io::Result<()> {
        if v.len() < FLUSH_AT {
            bulk(&mut self.buf, v);
            return self.flush_if_full();
        }
        let _ = write!(self.buf, "${}\r\n", v.len());
        self.flush()?;
        let mut conn = self.conn;
        conn.write_all(v)?;
        self.buf.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// A value read from the keyspace, or nil.
    fn value(&mut self, v: Option<&[u8]>) -> io::Result<()> {
        match v {
            Some(v) => self.bulk(v),
            None => {
                self.buf.extend_from_slice(b"$-1\r\n");
                self.flush_if_full()
            }
        }
    }
}

const NOT_AN_INTEGER: &[u8] = b"-ERR value is not an integer or out of range\r\n";

/// A decimal `i64` as redis-server reads one (no `+`, no spaces).
fn parse_i64(v: &[u8]) -> Option<i64> {
    if v.first() == Some(&b'+') {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Runs one command (`args` are ranges of `req`), adding its reply to `replies` (which may
/// write replies out, and then waits for the client). Returns whether the connection is to be
/// closed (QUIT).
pub fn execute(
    req: &[u8],
    args: &[Range<usize>],
    db: &impl Keyspace,
    replies: &mut Replies<'_>,
) -> io::Result<bool> {
    let Some(first) = args.first() else {
        return Ok(false); // an empty line or `*0`: nothing to answer
    };
    let arg = |i: usize| &req[args[i].clone()];
    let cmd = &req[first.clone()];
    let is = |name: &str| cmd.eq_ignore_ascii_case(name.as_bytes());
    let n = args.len();
    let now = Instant::now();
    // The replies that carry values are written after the keyspace is let go: a large value
    // from a shared snapshot, without a borrow or a lock across the write.
    if is("get") && n == 2 {
        let v = db.with(|ks| ks.get(arg(1), now).cloned());
        replies.value(v.as_deref().map(Vec::as_slice))?;
        return Ok(false);
    }
    if is("mget") && n >= 2 {
        let values: Vec<Option<Arc<Vec<u8>>>> =
            db.with(|ks| (1..n).map(|i| ks.get(arg(i), now).cloned()).collect());
        let _ = write!(replies.buf, "*{}\r\n", n - 1);
        for v in &values {
            replies.value(v.as_deref().map(Vec::as_slice))?;
        }
        return Ok(false);
    }
    if is("echo") && n == 2 {
        replies.bulk(arg(1))?;
        return Ok(false);
    }
    let out = &mut replies.buf;
    if is("ping") {
        match n {
            1 => out.extend_from_slice(b"+PONG\r\n"),
            2 => bulk(out, arg(1)),
            _ => wrong_arity(out, "ping"),
        }
    } else if is("get") {
        wrong_arity(out, "get");
    } else if is("set") {
        set(db, req, args, now, out);
    } else if is("mget") {
        wrong_arity(out, "mget");
    } else if is("mset") {
        if n < 3 || n.is_multiple_of(2) {
            wrong_arity(out, "mset");
        } else {
            db.with(|ks| {
                for i in (1..n).step_by(2) {
                    ks.set(arg(i), arg(i + 1));
                }
            });
            out.extend_from_slice(b"+OK\r\n");
        }
    } else if is("echo") {
        wrong_arity(out, "echo")
    } else if is("del") || is("exists") {
        let del = is("del");
        if n < 2 {
            wrong_arity(out, if del { "del" } else { "exists" });
        } else {
            let count = db.with(|ks| {
                (1..n)
                    .filter(|&i| {
                        ks.expire_if_due(arg(i), now);
                        if del {
                            ks.remove(arg(i))
                        } else {
                            ks.values.contains_key(arg(i))
                        }
                    })
                    .count()
            });
            int(out, count as i64);
        }
    } else if is("incr") || is("decr") {
        if n != 2 {
            wrong_arity(out, if is("incr") { "incr" } else { "decr" });
        } else {
            let by = if is("incr") { 1 } else { -1 };
            db.with(|ks| incr_by(ks, arg(1), by, now, out));
        }
    } else if is("incrby") || is("decrby") {
        if n != 3 {
            wrong_arity(out, if is("incrby") { "incrby" } else { "decrby" });
        } else {
            match parse_i64(arg(2)) {
                Some(by) if is("incrby") => db.with(|ks| incr_by(ks, arg(1), by, now, out)),
                Some(by) => match by.checked_neg() {
                    Some(by) => db.with(|ks| incr_by(ks, arg(1), by, now, out)),
                    None => out.extend_from_slice(b"-ERR decrement would overflow\r\n"),
                },
                None => out.extend_from_slice(NOT_AN_INTEGER),
            }
        }
    } else if is("expire") || is("pexpire") {
        let name = if is("expire") { "expire" } else { "pexpire" };
        if n != 3 {
            wrong_arity(out, name);
        } else {
            let unit = if name == "expire" { 1000 } else { 1 };
            expire(db, arg(1), arg(2), unit, now, out);
        }
    } else if is("ttl") || is("pttl") {
        if n != 2 {
            wrong_arity(out, if is("ttl") { "ttl" } else { "pttl" });
        } else {
            let left = db.with(|ks| {
                ks.expire_if_due(arg(1), now);
                if !ks.values.contains_key(arg(1)) {
                    None
                } else {
                    Some(
                        ks.deadlines
                            .get(arg(1))
                            .map(|d| d.saturating_duration_since(now)),
                    )
                }
            });
            let ttl = match left {
                None => -2,
                Some(None) => -1,
                Some(Some(d)) => {
                    let ms = d.as_millis() as i64;
                    // redis-server rounds seconds to the nearest.
                    if is("ttl") { (ms + 500) / 1000 } else { ms }
                }
            };
            int(out, ttl);
        }
    } else if is("persist") {
        if n != 2 {
            wrong_arity(out, "persist");
        } else {
            let had = db.with(|ks| {
                ks.expire_if_due(arg(1), now);
                ks.persist(arg(1))
            });
            int(out, i64::from(had));
        }
    } else if is("dbsize") {
        // Counts keys whose deadline passed but that no read or expiring greenlet has
        // deleted yet, as redis-server's does.
        if n != 1 {
            wrong_arity(out, "dbsize");
        } else {
            int(out, db.with(|ks| ks.values.len()) as i64);
        }
    } else if is("hello") {
        hello(req, args, out);
    } else if is("client") && n >= 2 {
        // redis-py names itself (SETINFO, SETNAME) on connect; the names are not kept.
        let sub = arg(1);
        if sub.eq_ignore_ascii_case(b"setinfo") || sub.eq_ignore_ascii_case(b"setname") {
            out.extend_from_slice(b"+OK\r\n");
        } else if sub.eq_ignore_ascii_case(b"getname") {
            out.extend_from_slice(b"$-1\r\n");
        } else {
            unknown(out, req, args);
        }
    } else if is("select") {
        // One database, number 0.
        if n != 2 {
            wrong_arity(out, "select");
        } else if arg(1) == b"0" {
            out.extend_from_slice(b"+OK\r\n");
        } else {
            out.extend_from_slice(b"-ERR DB index is out of range\r\n");
        }
    } else if is("quit") {
        out.extend_from_slice(b"+OK\r\n");
        return Ok(true);
    } else if is("config") && n == 3 && arg(1).eq_ignore_ascii_case(b"get") {
        // redis-benchmark asks for `save` and `appendonly` before it starts: nothing is
        // saved here.
        let value: Option<&[u8]> = match arg(2) {
            p if p.eq_ignore_ascii_case(b"save") => Some(b""),
            p if p.eq_ignore_ascii_case(b"appendonly") => Some(b"no"),
            _ => None,
        };
        match value {
            Some(v) => {
                out.extend_from_slice(b"*2\r\n");
                bulk(out, arg(2));
                bulk(out, v);
            }
            None => out.extend_from_slice(b"*0\r\n"),
        }
    } else if is("command") {
        command(req, args, out);
    } else {
        unknown(out, req, args);
    }
    replies.flush_if_full().map(|()| false)
}

/// `SET key value [EX seconds | PX milliseconds]`.
fn set(db: &impl Keyspace, req: &[u8], args: &[Range<usize>], now: Instant, out: &mut Vec<u8>) {
    let arg = |i: usize| &req[args[i].clone()];
    let n = args.len();
    if n < 3 {
        return wrong_arity(out, "set");
    }
    let ttl_ms = match n {
        3 => None,
        5 if arg(3).eq_ignore_ascii_case(b"ex") || arg(3).eq_ignore_ascii_case(b"px") => {
            let unit = if arg(3).eq_ignore_ascii_case(b"ex") {
                1000
            } else {
                1
            };
            match parse_i64(arg(4)).and_then(|t| t.checked_mul(unit)) {
                Some(ms) if ms > 0 => Some(ms),
                Some(_) => {
                    return out.extend_from_slice(b"-ERR invalid expire time in 'set' command\r\n");
                }
                None => return out.extend_from_slice(NOT_AN_INTEGER),
            }
        }
        _ => return out.extend_from_slice(b"-ERR syntax error\r\n"),
    };
    db.with(|ks| ks.set(arg(1), arg(2)));
    if let Some(ms) = ttl_ms {
        expire_at(db, arg(1), now + Duration::from_millis(ms as u64));
    }
    out.extend_from_slice(b"+OK\r\n");
}

/// `EXPIRE key seconds` / `PEXPIRE key milliseconds` (`unit` ms per step): 1 if the key
/// exists (a deadline not in the future deletes it), 0 if not.
fn expire(
    db: &impl Keyspace,
    key: &[u8],
    amount: &[u8],
    unit: i64,
    now: Instant,
    out: &mut Vec<u8>,
) {
    let Some(ms) = parse_i64(amount).and_then(|t| t.checked_mul(unit)) else {
        return out.extend_from_slice(NOT_AN_INTEGER);
    };
    let exists = db.with(|ks| {
        ks.expire_if_due(key, now);
        ks.values.contains_key(key)
    });
    if !exists {
        return int(out, 0);
    }
    if ms <= 0 {
        db.with(|ks| ks.remove(key));
    } else {
        expire_at(db, key, now + Duration::from_millis(ms as u64));
    }
    int(out, 1);
}

fn incr_by(ks: &mut Store, key: &[u8], by: i64, now: Instant, out: &mut Vec<u8>) {
    let old = match ks.get(key, now) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(i) => i,
            None => return out.extend_from_slice(NOT_AN_INTEGER),
        },
    };
    let Some(new) = old.checked_add(by) else {
        return out.extend_from_slice(b"-ERR increment or decrement would overflow\r\n");
    };
    // Keeps the key's deadline, as redis-server does.
    let v = Arc::make_mut(ks.values.entry(key.to_vec()).or_default());
    v.clear();
    let _ = write!(v, "{new}");
    int(out, new);
}

/// `HELLO [protover ...]`: RESP2 only. `HELLO 3` gets `NOPROTO`, which redis-py (whose
/// default is RESP3) answers by falling back to RESP2.
fn hello(req: &[u8], args: &[Range<usize>], out: &mut Vec<u8>) {
    if let Some(v) = args.get(1) {
        match parse_i64(&req[v.clone()]) {
            Some(2) => {}
            Some(3) => {
                return out.extend_from_slice(
                    b"-NOPROTO sorry, this protocol version is not supported\r\n",
                );
            }
            _ => {
                return out.extend_from_slice(
                    b"-ERR Protocol version is not an integer or out of range\r\n",
                );
            }
        }
        if args.len() > 2 {
            // AUTH and SETNAME options: no users here.
            return out
                .extend_from_slice(b"-ERR HELLO options are not supported by this server\r\n");
        }
    }
    // The RESP2 form of redis-server's map: field, value, field, value...
    out.extend_from_slice(b"*14\r\n");
    for (k, v) in [
        ("server", "redis"),
        ("version", "7.0.0"),
        ("proto", ""),
        ("id", ""),
        ("mode", "standalone"),
        ("role", "master"),
    ] {
        bulk(out, k.as_bytes());
        match k {
            "proto" => int(out, 2),
            "id" => int(out, 1),
            _ => bulk(out, v.as_bytes()),
        }
    }
    bulk(out, b"modules");
    out.extend_from_slice(b"*0\r\n");
}

/// `COMMAND` and its subcommands, as far as clients ask at start: redis-cli asks for
/// `COMMAND DOCS` (hints); the answers say "no documentation" without an error.
fn command(req: &[u8], args: &[Range<usize>], out: &mut Vec<u8>) {
    let sub = args.get(1).map(|r| &req[r.clone()]);
    match sub {
        Some(s) if s.eq_ignore_ascii_case(b"count") => int(out, COMMANDS.len() as i64),
        Some(s) if s.eq_ignore_ascii_case(b"list") => {
            let _ = write!(out, "*{}\r\n", COMMANDS.len());
            for c in COMMANDS {
                bulk(out, c.as_bytes());
            }
        }
        // `COMMAND`, `COMMAND DOCS [..]`, `COMMAND INFO [..]`: nothing to document.
        _ => out.extend_from_slice(b"*0\r\n"),
    }
}

/// The commands this server answers.
const COMMANDS: &[&str] = &[
    "ping", "echo", "get", "set", "mget", "mset", "del", "exists", "incr", "decr", "incrby",
    "decrby", "expire", "pexpire", "ttl", "pttl", "persist", "dbsize", "hello", "client", "select",
    "config", "command", "quit",
];

/// `-ERR unknown command 'x', with args beginning with: 'a' 'b' `, as redis-server says it,
/// with names cut short and made printable.
fn unknown(out: &mut Vec<u8>, req: &[u8], args: &[Range<usize>]) {
    let show = |r: &Range<usize>| -> String {
        String::from_utf8_lossy(&req[r.clone()])
            .chars()
            .take(128)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let _ = write!(
        out,
        "-ERR unknown command '{}', with args beginning with: ",
        show(&args[0])
    );
    for a in args.iter().skip(1).take(8) {
        let _ = write!(out, "'{}' ", show(a));
    }
    out.extend_from_slice(b"\r\n");
}
