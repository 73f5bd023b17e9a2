//! `bench __listeners <reuseport|exclusive> <threads> <port>`: how to share a port between the
//! hubs of a multi-threaded server, measured on the hand-written mio loop (so that only the
//! listener differs): one `SO_REUSEPORT` listener per thread, or one listener that every
//! thread's epoll waits on with `EPOLLEXCLUSIVE` (one wake-up per connection instead of all).
//!
//! It serves HTTP hello with the mio peer's loop and prints, every 200 ms, how many connections each
//! thread accepted and how many requests each answered: `bench/scripts/listeners.sh` runs it
//! under `wrk` in both modes and reports the spread with the CPU per request.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Poll};
use socket2::{Domain, Socket, Type};

use crate::peers::mio::LISTENER;
use crate::proto;

/// Accepted connections and answered reads of one thread.
#[derive(Default)]
struct Counts {
    conns: AtomicU64,
    reads: AtomicU64,
}

/// Child side: serves until killed.
pub fn serve_main(args: &[String]) -> Result<(), String> {
    let [mode, threads, port] = args else {
        return Err("usage: __listeners <reuseport|exclusive> <threads> <port>".into());
    };
    let exclusive = match mode.as_str() {
        "reuseport" => false,
        "exclusive" => true,
        m => return Err(format!("unknown mode {m}")),
    };
    let threads: usize = threads.parse().map_err(|e| format!("threads: {e}"))?;
    let port: u16 = port.parse().map_err(|e| format!("port: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listeners: Vec<std::net::TcpListener> = if exclusive {
        let one = bind(addr, false)?;
        (0..threads)
            .map(|_| one.try_clone().map_err(|e| format!("dup: {e}")))
            .collect::<Result<_, _>>()?
    } else {
        (0..threads)
            .map(|_| bind(addr, true))
            .collect::<Result<_, _>>()?
    };
    let counts: Arc<Vec<Counts>> = Arc::new((0..threads).map(|_| Counts::default()).collect());
    for (i, l) in listeners.into_iter().enumerate() {
        let counts = counts.clone();
        std::thread::Builder::new()
            .name(format!("listener-{i}"))
            .spawn(move || {
                if let Err(e) = worker(l, exclusive, &counts[i]) {
                    eprintln!("thread {i}: {e}");
                }
            })
            .map_err(|e| format!("thread: {e}"))?;
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let conns: Vec<u64> = counts
            .iter()
            .map(|c| c.conns.load(Ordering::Relaxed))
            .collect();
        let reads: Vec<u64> = counts
            .iter()
            .map(|c| c.reads.load(Ordering::Relaxed))
            .collect();
        println!("connections {conns:?} reads {reads:?}");
    }
}

fn bind(addr: SocketAddr, reuseport: bool) -> Result<std::net::TcpListener, String> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(|e| e.to_string())?;
    s.set_reuse_address(true).map_err(|e| e.to_string())?;
    if reuseport {
        s.set_reuse_port(true).map_err(|e| e.to_string())?;
    }
    s.bind(&addr.into()).map_err(|e| format!("bind: {e}"))?;
    s.listen(1024).map_err(|e| format!("listen: {e}"))?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(s.into())
}

fn worker(listener: std::net::TcpListener, exclusive: bool, counts: &Counts) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut listener = TcpListener::from_std(listener);
    if exclusive {
        // mio has no EPOLLEXCLUSIVE: register the listener on mio's epoll by hand, with the
        // token as the event's data, which is how mio reads its events back.
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
            u64: LISTENER.0 as u64,
        };
        // SAFETY: both descriptors are open for the duration of the call, and `ev` is a valid,
        // initialised epoll_event that the kernel only reads.
        let r = unsafe {
            libc::epoll_ctl(
                poll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                listener.as_raw_fd(),
                &mut ev,
            )
        };
        if r != 0 {
            return Err(format!(
                "epoll_ctl(EPOLLEXCLUSIVE): {}",
                std::io::Error::last_os_error()
            ));
        }
    } else {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| format!("register: {e}"))?;
    }
    crate::peers::mio::event_loop(
        &mut poll,
        &listener,
        proto::http,
        || {
            counts.conns.fetch_add(1, Ordering::Relaxed);
        },
        || {
            counts.reads.fetch_add(1, Ordering::Relaxed);
        },
    )
}
