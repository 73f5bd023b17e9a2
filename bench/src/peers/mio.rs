//! A hand-written mio event loop, no coroutines at all: the floor for a single-threaded server.
//!
//! Each connection is a buffer in a slab; readiness is drained to `WouldBlock` on every event, as
//! mio requires. A hub running straight-line code per connection aims to cost no more CPU per
//! request than this.

use std::io::{ErrorKind, Read, Write};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::proto::ConnBuf;

/// The listener's token; connections use their slot number.
pub const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    buf: ConnBuf,
}

/// Serves with `parse` on 127.0.0.1:`port` until the process is killed.
pub fn serve(port: u16, parse: fn(&[u8], &mut Vec<u8>) -> usize) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut listener = TcpListener::bind(addr).map_err(|e| format!("bind: {e}"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| format!("register: {e}"))?;
    event_loop(&mut poll, &listener, parse, || {}, || {})
}

/// The loop of one thread: `listener` is registered on `poll` with [`LISTENER`] already.
/// `accepted` runs for every connection accepted, `served` for every connection event.
pub fn event_loop(
    poll: &mut Poll,
    listener: &TcpListener,
    parse: fn(&[u8], &mut Vec<u8>) -> usize,
    accepted: impl Fn(),
    served: impl Fn(),
) -> Result<(), String> {
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {e}"));
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    accepted();
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if poll
                        .registry()
                        .register(&mut stream, Token(slot), interest)
                        .is_ok()
                    {
                        let buf = ConnBuf::new();
                        conns[slot] = Some(Conn { stream, buf });
                    } else {
                        free.push(slot);
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            served();
            if !drive(conn, parse) {
                let mut conn = conns[slot].take().expect("present");
                let _ = poll.registry().deregister(&mut conn.stream);
                free.push(slot);
            }
        }
    }
}

/// Reads until `WouldBlock`, answers, writes until done or `WouldBlock`; false when closed.
fn drive(conn: &mut Conn, parse: fn(&[u8], &mut Vec<u8>) -> usize) -> bool {
    loop {
        match conn.stream.read(conn.buf.spare()) {
            Ok(0) => return false,
            Ok(n) => conn.buf.filled(n, parse),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let mut written = 0;
    while written < conn.buf.out.len() {
        match conn.stream.write(&conn.buf.out[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.buf.out.drain(..written);
    true
}

#[cfg(test)]
mod tests {
    use crate::proto::{self, testing};

    #[test]
    fn serves_http() {
        testing::check_http(testing::start(|port| super::serve(port, proto::http)));
    }

    #[test]
    fn serves_resp() {
        testing::check_resp(testing::start(|port| super::serve(port, proto::resp)));
    }
}
