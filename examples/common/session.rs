//! One connection of `redis_server`: runs its commands, keeps its transaction, and writes its
//! replies.
//!
//! A command runs inside one [`Keyspace::with`] and adds its reply to an [`Out`]; the replies
//! are written (and the expiring greenlets woken) after the keyspace is let go, so no lock or
//! borrow is held while a client is slow to read. A transaction (`MULTI`, the commands,
//! `EXEC`) is queued as the requests' own bytes, and `EXEC` runs all of it inside one
//! [`Keyspace::with`]: no other client's command runs in between, on one hub or on several.
//!
//! `WATCH` is refused with an error (`UNWATCH` answers `+OK`: nothing is ever watched): a
//! client that relies on optimistic locking learns at once that it is not served, rather than
//! running a transaction that should have been aborted.

use std::io::{self, Write};
use std::ops::Range;
use std::time::Instant;

use greenlet::net::TcpStream;

use super::commands::{self, Cmd, Out};
use super::keyspace::{self, Keyspace};
use super::resp;

/// The most request bytes one transaction may queue.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;
/// The most arguments (command names included) one transaction may queue. This bounds the
/// commands, and the replies an `EXEC` gathers before writing (one per argument at most).
pub const MAX_QUEUED_ARGS: usize = 1 << 18;

/// The commands queued since `MULTI`.
#[derive(Default)]
struct Queue {
    /// The queued requests, as they arrived.
    requests: Vec<u8>,
    commands: usize,
    args: usize,
    /// A command was refused while queuing: `EXEC` discards the transaction.
    refused: bool,
}

/// One client's connection: its replies on their way, and its transaction if one is open.
pub struct Session<'a, K: Keyspace> {
    conn: &'a TcpStream,
    db: &'a K,
    out: Out,
    multi: Option<Queue>,
    /// The arguments of a queued command, reused by `EXEC`.
    queued_args: Vec<Range<usize>>,
}

impl<'a, K: Keyspace> Session<'a, K> {
    /// A session on `conn` against `db`, with room for `capacity` bytes of replies.
    pub fn new(conn: &'a TcpStream, db: &'a K, capacity: usize) -> Session<'a, K> {
        Session {
            conn,
            db,
            out: Out::with_capacity(capacity),
            multi: None,
            queued_args: Vec::new(),
        }
    }

    /// Adds bytes as they are to the replies (a protocol error before closing).
    pub fn push(&mut self, reply: &[u8]) {
        self.out.push(reply);
    }

    /// Writes every waiting reply (waiting, green, while the client does not read).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.write_to(self.conn)
    }

    /// Runs one command (`args` are ranges of `req`), or queues it in the open transaction,
    /// adding its reply; writes the replies out once enough wait (and then waits for the
    /// client). Returns whether the connection is to be closed (QUIT).
    pub fn execute(&mut self, req: &[u8], args: &[Range<usize>]) -> io::Result<bool> {
        let Some(first) = args.first() else {
            return Ok(false); // an empty line or `*0`: nothing to answer
        };
        let quit = self.dispatch(req, args, &req[first.clone()]);
        if let Some(deadline) = self.out.earliest.take() {
            keyspace::wake_by(self.db, deadline);
        }
        if quit || self.out.is_full() {
            self.flush()?;
        }
        Ok(quit)
    }

    fn dispatch(&mut self, req: &[u8], args: &[Range<usize>], name: &[u8]) -> bool {
        let Some(spec) = commands::lookup(name) else {
            self.refuse_in_multi();
            commands::unknown(&mut self.out, req, args);
            return false;
        };
        if !spec.arity_fits(args.len()) {
            if spec.cmd == Cmd::Exec && self.multi.take().is_some() {
                self.out.push(
                    b"-EXECABORT Transaction discarded because of: \
                      wrong number of arguments for 'exec' command\r\n",
                );
            } else {
                commands::wrong_arity(&mut self.out, spec.name);
                self.refuse_in_multi();
            }
            return false;
        }
        let out = &mut self.out;
        match spec.cmd {
            Cmd::Quit => {
                out.push(b"+OK\r\n");
                return true;
            }
            Cmd::Multi if self.multi.is_some() => {
                out.push(b"-ERR MULTI calls can not be nested\r\n")
            }
            Cmd::Multi => {
                self.multi = Some(Queue::default());
                out.push(b"+OK\r\n");
            }
            Cmd::Exec => match self.multi.take() {
                None => out.push(b"-ERR EXEC without MULTI\r\n"),
                Some(q) if q.refused => {
                    out.push(b"-EXECABORT Transaction discarded because of previous errors.\r\n")
                }
                Some(q) => self.exec(&q),
            },
            Cmd::Discard => match self.multi.take() {
                None => out.push(b"-ERR DISCARD without MULTI\r\n"),
                Some(_) => out.push(b"+OK\r\n"),
            },
            Cmd::Watch if self.multi.is_some() => {
                out.push(b"-ERR WATCH inside MULTI is not allowed\r\n")
            }
            Cmd::Watch => out.push(
                b"-ERR WATCH is not supported by this server \
                  (MULTI/EXEC are atomic, optimistic locking is not served)\r\n",
            ),
            _ if self.multi.is_some() => self.queue(req, args),
            cmd if spec.uses_keyspace() => {
                let now = Instant::now();
                self.db
                    .with(|ks| commands::run(cmd, req, args, ks, now, out));
            }
            cmd => commands::answer(cmd, req, args, out),
        }
        false
    }

    /// Inside `MULTI`, a refused command makes `EXEC` discard the transaction; its queue is
    /// dropped at once.
    fn refuse_in_multi(&mut self) {
        if let Some(q) = &mut self.multi {
            *q = Queue {
                refused: true,
                ..Queue::default()
            };
        }
    }

    /// Queues a command of the open transaction (its name and arity checked).
    fn queue(&mut self, req: &[u8], args: &[Range<usize>]) {
        let q = self.multi.as_mut().expect("queue is called inside MULTI");
        if !q.refused {
            if q.requests.len() + req.len() > MAX_QUEUED_BYTES
                || q.args + args.len() > MAX_QUEUED_ARGS
            {
                let _ = write!(
                    self.out.bytes,
                    "-ERR transaction too big: at most {MAX_QUEUED_BYTES} bytes and \
                     {MAX_QUEUED_ARGS} arguments may be queued\r\n"
                );
                self.refuse_in_multi();
                return;
            }
            q.requests.extend_from_slice(req);
            q.commands += 1;
            q.args += args.len();
        }
        self.out.push(b"+QUEUED\r\n");
    }

    /// `EXEC`: runs every queued command inside one hold of the keyspace, gathering their
    /// replies into one array (large values shared, not copied).
    fn exec(&mut self, q: &Queue) {
        let (out, args) = (&mut self.out, &mut self.queued_args);
        let now = Instant::now();
        let _ = write!(out.bytes, "*{}\r\n", q.commands);
        self.db.with(|ks| {
            let mut at = 0;
            while at < q.requests.len() {
                // Each request parsed whole when it was queued.
                let Ok(Some(n)) = resp::parse(&q.requests[at..], args) else {
                    break;
                };
                let req = &q.requests[at..at + n];
                at += n;
                match commands::lookup(&req[args[0].clone()]) {
                    Some(spec) if spec.uses_keyspace() => {
                        commands::run(spec.cmd, req, args, ks, now, out)
                    }
                    Some(spec) => commands::answer(spec.cmd, req, args, out),
                    None => commands::unknown(out, req, args),
                }
            }
        });
    }
}
