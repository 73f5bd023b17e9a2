//! A blocking `connect` made by a cooperating greenlet.

use std::time::{Duration, Instant};

use libc::{c_int, sockaddr, socklen_t};

use super::fdtable::Dir;
use super::sys::{self, errno, fail};
use super::wait::{self, Blocked, Ctx, blocking};

/// Connects the way a blocking `connect` does, parking instead of blocking: the socket is
/// non-blocking for the one call, then the greenlet waits for writability and reads
/// `SO_ERROR`. The timeout is `SO_SNDTIMEO`, which gives `EINPROGRESS`, as the kernel does.
pub(super) fn blocking_connect(ctx: &Ctx, addr: *const sockaddr, len: socklen_t) -> c_int {
    let fd = ctx.fd;
    let deadline = ctx.deadline(Dir::Write);
    let mut backoff = Duration::from_millis(1);
    loop {
        let (r, e) = connect_nonblocking(fd, addr, len);
        if r == 0 {
            return 0;
        }
        match e {
            libc::EINPROGRESS => return finish(ctx, deadline),
            // A Unix socket whose listener's backlog is full: a blocking connect waits for
            // room, which nothing signals; retry with a growing pause.
            libc::EAGAIN => {
                let until = Instant::now() + backoff;
                let until = deadline.map_or(until, |d| d.min(until));
                match wait::sleep_until(until) {
                    Ok(()) if deadline.is_some_and(|d| Instant::now() >= d) => {
                        return fail(libc::EAGAIN) as c_int;
                    }
                    Ok(()) => backoff = (backoff * 2).min(Duration::from_millis(50)),
                    Err(Blocked::Impossible) => {
                        return blocking("connect", fd, || sys::connect(fd, addr, len));
                    }
                    Err(b) => return fail(b.errno(libc::EAGAIN)) as c_int,
                }
            }
            e => return fail(e) as c_int,
        }
    }
}

/// `connect` with `O_NONBLOCK` set around it; the result and its errno.
fn connect_nonblocking(fd: c_int, addr: *const sockaddr, len: socklen_t) -> (c_int, c_int) {
    let fl = sys::fcntl(fd, libc::F_GETFL, 0);
    if fl < 0 {
        let r = sys::connect(fd, addr, len);
        return (r, errno());
    }
    let set = fl & libc::O_NONBLOCK == 0;
    if set {
        sys::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as usize);
    }
    let r = sys::connect(fd, addr, len);
    let e = errno();
    if set {
        sys::fcntl(fd, libc::F_SETFL, fl as usize);
    }
    (r, e)
}

/// Waits for a connect in progress to end; its outcome from `SO_ERROR`.
fn finish(ctx: &Ctx, deadline: Option<Instant>) -> c_int {
    let fd = ctx.fd;
    loop {
        match sys::poll_now(fd, libc::POLLOUT) {
            Err(e) => return fail(e) as c_int,
            Ok(revents) if revents != 0 => return so_error(fd),
            Ok(_) => {}
        }
        match ctx.wait(Dir::Write, deadline) {
            Ok(()) => {}
            Err(Blocked::Own) => return fail(libc::EINPROGRESS) as c_int,
            Err(Blocked::Impossible) => {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let ready = blocking("connect", fd, || sys::poll_wait(fd, libc::POLLOUT, left));
                return if ready > 0 {
                    so_error(fd)
                } else {
                    fail(libc::EINPROGRESS) as c_int
                };
            }
            Err(b) => return fail(b.errno(libc::EINPROGRESS)) as c_int,
        }
    }
}

/// The outcome of a finished non-blocking connect.
fn so_error(fd: c_int) -> c_int {
    let mut err: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    let r = sys::getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        (&raw mut err).cast(),
        &mut len,
    );
    if r < 0 {
        return r;
    }
    if err != 0 {
        return fail(err) as c_int;
    }
    0
}
