//! The descriptor hooks: `read`/`write` and their vectored forms, the socket calls, and the
//! calls that end or duplicate a descriptor.
//!
//! Every hook is `#[unsafe(no_mangle)]`: it *is* libc's symbol for the whole binary. Its first
//! line asks [`cooperating`]; when the answer is no (another thread, before `patch_all`, the
//! hub, a signal handler) it makes the raw system call and returns. Otherwise the cooperative
//! path runs out of line: one attempt that cannot block (`MSG_DONTWAIT`, `RWF_NOWAIT`), and
//! only when that would block on a descriptor the user left blocking, a park on the hub.

use libc::{c_int, c_uint, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::cooperating;
use super::fdtable::{self, Dir, Kind};
use super::sys::{self, errno, fail};
use super::wait::{self, Ctx, blocking, guarded, run, run_all, run_from};

/// Largest write that fits a pipe without blocking once `poll` says it is writable.
const PIPE_BUF: usize = 4096;

/// `MSG_DONTWAIT` when trying without blocking.
fn dontwait(nonblocking: bool) -> c_int {
    if nonblocking { libc::MSG_DONTWAIT } else { 0 }
}

/// One attempt at vectored I/O on a pipe-like descriptor: `RWF_NOWAIT` where the kernel has it,
/// else `poll` first (writes capped to what fits); the plain call when `nonblocking` is false.
fn pipe_io(ctx: &Ctx, dir: Dir, iov: *const iovec, cnt: c_int, nonblocking: bool) -> ssize_t {
    if !nonblocking {
        return match dir {
            Dir::Read => sys::readv(ctx.fd, iov, cnt),
            Dir::Write => sys::writev(ctx.fd, iov, cnt),
        };
    }
    if ctx.slot.kind() == Kind::NoWait {
        let r = match dir {
            Dir::Read => sys::preadv2(ctx.fd, iov, cnt, libc::RWF_NOWAIT),
            Dir::Write => sys::pwritev2(ctx.fd, iov, cnt, libc::RWF_NOWAIT),
        };
        if r >= 0 || !matches!(errno(), libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) {
            return r;
        }
        // This kernel or file has no per-call non-blocking mode.
        ctx.slot.set_kind(Kind::PollFirst);
    }
    let events = match dir {
        Dir::Read => libc::POLLIN,
        Dir::Write => libc::POLLOUT,
    };
    match sys::poll_now(ctx.fd, events) {
        Err(e) => fail(e),
        Ok(0) => fail(libc::EAGAIN),
        Ok(revents) if revents & libc::POLLNVAL != 0 => fail(libc::EBADF),
        Ok(_) => match dir {
            Dir::Read => sys::readv(ctx.fd, iov, cnt),
            Dir::Write => {
                // A blocking write larger than the free space would wait for the reader.
                // SAFETY: the caller's iov array has `cnt` valid entries (libc's contract).
                let first = unsafe { &*iov };
                let capped = iovec {
                    iov_base: first.iov_base,
                    iov_len: first.iov_len.min(PIPE_BUF),
                };
                sys::writev(ctx.fd, &capped, 1)
            }
        },
    }
}

/// The user's iovecs with the first `skip` bytes dropped.
fn advance(iov: *const iovec, cnt: c_int, mut skip: usize) -> Vec<iovec> {
    // SAFETY: the caller's iov array has `cnt` valid entries (libc's contract).
    let all = unsafe { std::slice::from_raw_parts(iov, cnt.max(0) as usize) };
    let mut out = Vec::with_capacity(all.len());
    for v in all {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        out.push(iovec {
            // SAFETY: `skip < iov_len`, so the offset stays inside the caller's buffer.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(skip) }.cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    out
}

fn total_len(iov: *const iovec, cnt: c_int) -> usize {
    // SAFETY: as in `advance`.
    let all = unsafe { std::slice::from_raw_parts(iov, cnt.max(0) as usize) };
    all.iter().fold(0usize, |n, v| n.saturating_add(v.iov_len))
}

/// Whether a call taken the socket way failed (`ENOTSOCK`) because the descriptor is no longer
/// a socket: its number was reused behind the hooks' back (closed by libc itself, say). The
/// cached kind is dropped, for the caller to make the call again the general way.
fn stale_socket(fd: c_int, r: ssize_t) -> bool {
    if r >= 0 || errno() != libc::ENOTSOCK {
        return false;
    }
    match fdtable::slot(fd) {
        Some(slot) if slot.kind() == Kind::Socket => {
            slot.set_kind(Kind::Unknown);
            true
        }
        _ => false,
    }
}

/// A read-side call on any descriptor: vectored, as `readv`.
fn coop_readv(fd: c_int, iov: *const iovec, cnt: c_int, name: &'static str) -> ssize_t {
    let r = coop_readv_once(fd, iov, cnt, name);
    if stale_socket(fd, r) {
        return coop_readv_once(fd, iov, cnt, name);
    }
    r
}

fn coop_readv_once(fd: c_int, iov: *const iovec, cnt: c_int, name: &'static str) -> ssize_t {
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("readv", fd, || sys::readv(fd, iov, cnt));
        };
        match ctx.kind() {
            Kind::Socket if cnt == 1 => {
                // SAFETY: one valid iovec (libc's contract).
                let v = unsafe { *iov };
                stream_read(&ctx, name, v.iov_len, |nb| {
                    let (addr, len) = (std::ptr::null_mut(), std::ptr::null_mut());
                    sys::recvfrom(fd, v.iov_base, v.iov_len, dontwait(nb), addr, len)
                })
            }
            Kind::Socket => run(&ctx, Dir::Read, name, |nb| {
                let mut msg = msg_of(iov, cnt);
                sys::recvmsg(fd, &mut msg, dontwait(nb))
            }),
            Kind::NoWait | Kind::PollFirst => run(&ctx, Dir::Read, name, |nb| {
                pipe_io(&ctx, Dir::Read, iov, cnt, nb)
            }),
            Kind::Blocking | Kind::Unknown => blocking(name, fd, || sys::readv(fd, iov, cnt)),
        }
    })
}

/// A plain read of `n` bytes from a socket (no flags, one buffer), which parks at once when
/// the last one emptied the receive buffer and nothing can have come in unseen since.
///
/// A read of plain TCP that returns less than it asked for has emptied the receive buffer:
/// the kernel copies all it holds, up to `n`. Whatever arrives afterwards queues an edge on
/// this thread's registration of the descriptor, which the reactor has not harvested while
/// its harvest count stands still. The next read then parks without first making a system
/// call that would only say `EAGAIN`, the read a keep-alive server makes after each answer
/// (as `net::Io::read_stream` does for green streams).
///
/// The read asks the kernel first after a harvest, on a descriptor the user made
/// non-blocking, and on a socket whose registration has reported urgent data, the end of the
/// stream or an error (a short read can stop at the urgent mark, or take the end along with
/// the data, with no edge to come for what is left). Only TCP sockets with no upper layer
/// protocol count: a datagram socket reads one datagram, a Unix stream stops short at passed
/// descriptors, kernel TLS reads one record at a time. `TCP_ULP` set through the hooked
/// `setsockopt` is seen; one set by a raw system call is not.
fn stream_read(
    ctx: &Ctx,
    name: &'static str,
    n: usize,
    attempt: impl FnMut(bool) -> ssize_t,
) -> ssize_t {
    // One lookup of this thread's registration serves the check, the park and the record.
    let watched = wait::watched(ctx);
    let park_first = watched.as_ref().is_some_and(|w| w.known_empty(ctx));
    let r = run_from(ctx, Dir::Read, name, park_first, watched.as_ref(), attempt);
    // The first park on the descriptor made its registration; the read that followed counts.
    if let Some(w) = watched.or_else(|| wait::watched(ctx)) {
        w.note_read(ctx, r, n);
    }
    r
}

/// A write-side call on any descriptor: vectored, as `writev`, writing everything.
fn coop_writev(fd: c_int, iov: *const iovec, cnt: c_int, name: &'static str) -> ssize_t {
    let r = coop_writev_once(fd, iov, cnt, name);
    if stale_socket(fd, r) {
        return coop_writev_once(fd, iov, cnt, name);
    }
    r
}

fn coop_writev_once(fd: c_int, iov: *const iovec, cnt: c_int, name: &'static str) -> ssize_t {
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("writev", fd, || sys::writev(fd, iov, cnt));
        };
        let len = total_len(iov, cnt);
        let kind = ctx.kind();
        if matches!(kind, Kind::Blocking | Kind::Unknown) {
            return blocking(name, fd, || sys::writev(fd, iov, cnt));
        }
        let mut rest: Vec<iovec> = Vec::new();
        run_all(&ctx, Dir::Write, name, len, |done, nb| {
            let (p, n) = if done == 0 {
                (iov, cnt)
            } else {
                rest = advance(iov, cnt, done);
                (rest.as_ptr(), rest.len() as c_int)
            };
            if kind == Kind::Socket && n == 1 {
                // SAFETY: one valid iovec (the caller's, or one of `rest`).
                let v = unsafe { *p };
                sys::sendto(fd, v.iov_base, v.iov_len, dontwait(nb), std::ptr::null(), 0)
            } else if kind == Kind::Socket {
                let msg = msg_of(p, n);
                sys::sendmsg(fd, &msg, dontwait(nb))
            } else {
                pipe_io(&ctx, Dir::Write, p, n, nb)
            }
        })
    })
}

fn msg_of(iov: *const iovec, cnt: c_int) -> msghdr {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = cnt.max(0) as _;
    msg
}

/// libc's `read`, parking a cooperating greenlet while the descriptor has nothing to read.
///
/// # Safety
/// libc's contract for `read`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    if !cooperating() {
        return sys::read(fd, buf, n);
    }
    let v = iovec {
        iov_base: buf,
        iov_len: n,
    };
    coop_readv(fd, &v, 1, "read")
}

/// libc's `readv`, cooperating as [`read`].
///
/// # Safety
/// libc's contract for `readv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    if !cooperating() {
        return sys::readv(fd, iov, cnt);
    }
    coop_readv(fd, iov, cnt, "readv")
}

/// libc's `write`: on a blocking descriptor it returns once everything is written (or its
/// timeout expires), parking a cooperating greenlet meanwhile.
///
/// # Safety
/// libc's contract for `write`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if !cooperating() {
        return sys::write(fd, buf, n);
    }
    let v = iovec {
        iov_base: buf.cast_mut(),
        iov_len: n,
    };
    coop_writev(fd, &v, 1, "write")
}

/// libc's `writev`, cooperating as [`write`].
///
/// # Safety
/// libc's contract for `writev`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    if !cooperating() {
        return sys::writev(fd, iov, cnt);
    }
    coop_writev(fd, iov, cnt, "writev")
}

/// libc's `recv`.
///
/// # Safety
/// libc's contract for `recv`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the same contract.
    unsafe {
        recvfrom(
            fd,
            buf,
            n,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// libc's `recvfrom`: parks while nothing has arrived (with `MSG_WAITALL`, until the buffer is
/// full), unless the socket or `flags` say non-blocking.
///
/// # Safety
/// libc's contract for `recvfrom`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if !cooperating() || flags & libc::MSG_DONTWAIT != 0 {
        return sys::recvfrom(fd, buf, n, flags, addr, len);
    }
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("recvfrom", fd, || {
                sys::recvfrom(fd, buf, n, flags, addr, len)
            });
        };
        // MSG_WAITALL waits for the whole buffer on stream sockets only.
        if flags & libc::MSG_WAITALL != 0 && is_stream(fd) {
            return run_all(&ctx, Dir::Read, "recvfrom", n, |done, nb| {
                // SAFETY: `done < n`: inside the caller's buffer.
                let at = unsafe { buf.cast::<u8>().add(done) }.cast();
                sys::recvfrom(fd, at, n - done, flags | dontwait(nb), addr, len)
            });
        }
        if flags == 0 && ctx.kind() == Kind::Socket {
            return stream_read(&ctx, "recvfrom", n, |nb| {
                sys::recvfrom(fd, buf, n, dontwait(nb), addr, len)
            });
        }
        run(&ctx, Dir::Read, "recvfrom", |nb| {
            sys::recvfrom(fd, buf, n, flags | dontwait(nb), addr, len)
        })
    })
}

/// Whether `fd` is a stream socket (one `getsockopt`; asked only for `MSG_WAITALL`).
fn is_stream(fd: c_int) -> bool {
    let mut ty: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    let saved = errno();
    let r = sys::getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        (&raw mut ty).cast(),
        &mut len,
    );
    sys::set_errno(saved);
    r == 0 && ty == libc::SOCK_STREAM
}

/// libc's `recvmsg`.
///
/// # Safety
/// libc's contract for `recvmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if !cooperating() || flags & libc::MSG_DONTWAIT != 0 {
        return sys::recvmsg(fd, msg, flags);
    }
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("recvmsg", fd, || sys::recvmsg(fd, msg, flags));
        };
        run(&ctx, Dir::Read, "recvmsg", |nb| {
            sys::recvmsg(fd, msg, flags | dontwait(nb))
        })
    })
}

/// libc's `send`.
///
/// # Safety
/// libc's contract for `send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the same contract.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

/// libc's `sendto`: on a blocking socket, returns once everything is queued (or the timeout
/// expires), parking a cooperating greenlet while the send buffer is full.
///
/// # Safety
/// libc's contract for `sendto`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    if !cooperating() || flags & libc::MSG_DONTWAIT != 0 {
        return sys::sendto(fd, buf, n, flags, addr, len);
    }
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("sendto", fd, || sys::sendto(fd, buf, n, flags, addr, len));
        };
        run_all(&ctx, Dir::Write, "sendto", n, |done, nb| {
            // SAFETY: `done < n`: inside the caller's buffer.
            let at = unsafe { buf.cast::<u8>().add(done) }.cast();
            sys::sendto(fd, at, n - done, flags | dontwait(nb), addr, len)
        })
    })
}

/// libc's `sendmsg`, cooperating as [`sendto`]; ancillary data goes with the first part only.
///
/// # Safety
/// libc's contract for `sendmsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if !cooperating() || flags & libc::MSG_DONTWAIT != 0 {
        return sys::sendmsg(fd, msg, flags);
    }
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("sendmsg", fd, || sys::sendmsg(fd, msg, flags));
        };
        // SAFETY: the caller's msghdr is valid (libc's contract).
        let m = unsafe { &*msg };
        let (iov, cnt) = (m.msg_iov.cast_const(), m.msg_iovlen as c_int);
        let len = total_len(iov, cnt);
        let mut rest: Vec<iovec> = Vec::new();
        run_all(&ctx, Dir::Write, "sendmsg", len, |done, nb| {
            if done == 0 {
                return sys::sendmsg(fd, msg, flags | dontwait(nb));
            }
            rest = advance(iov, cnt, done);
            let mut more = msg_of(rest.as_ptr(), rest.len() as c_int);
            more.msg_name = m.msg_name;
            more.msg_namelen = m.msg_namelen;
            sys::sendmsg(fd, &more, flags | dontwait(nb))
        })
    })
}

/// libc's `accept`.
///
/// # Safety
/// libc's contract for `accept`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the same contract.
    unsafe { accept4(fd, addr, len, 0) }
}

/// libc's `accept4`: parks a cooperating greenlet until a connection is pending. The listener
/// is made non-blocking for good the first time (the user's view is kept by the hooks), and a
/// blocking accept on it from a thread without a runtime still blocks.
///
/// # Safety
/// libc's contract for `accept4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if !cooperating() {
        return accepted(fd, accept_blocking(fd, addr, len, flags), flags);
    }
    let r = guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("accept", fd, || accept_blocking(fd, addr, len, flags)) as ssize_t;
        };
        if ctx.nonblocking() {
            return sys::accept4(fd, addr, len, flags) as ssize_t;
        }
        // Learned once per listener (a listener made before the thread had its runtime went
        // unrecorded), for its connections to inherit (see `accepted`).
        ctx.plain_tcp();
        if !ctx.slot.is_flipped() {
            let fl = sys::fcntl(fd, libc::F_GETFL, 0);
            if fl >= 0 && sys::fcntl(fd, libc::F_SETFL, (fl | libc::O_NONBLOCK) as usize) == 0 {
                ctx.slot.set_nonblocking(false);
                ctx.slot.set_flipped();
            }
        }
        run(&ctx, Dir::Read, "accept", |nb| {
            if nb {
                sys::accept4(fd, addr, len, flags) as ssize_t
            } else {
                accept_blocking(fd, addr, len, flags) as ssize_t
            }
        })
    });
    accepted(fd, r as c_int, flags)
}

/// A plain accept, which blocks as the user expects even on a listener the hooks made
/// non-blocking: on `EAGAIN` from a flipped blocking listener it waits in `poll`.
fn accept_blocking(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    loop {
        let r = sys::accept4(fd, addr, len, flags);
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
        let Some(slot) = fdtable::slot(fd) else {
            return r;
        };
        if !slot.is_flipped() || slot.nonblocking() != Some(false) {
            return r;
        }
        let timeout = slot.timeout(Dir::Read).flatten();
        if sys::poll_wait(fd, libc::POLLIN, timeout) == 0 {
            // SO_RCVTIMEO expired, as the kernel reports it.
            return fail(libc::EAGAIN) as c_int;
        }
    }
}

/// Records a new connection's descriptor, accepted on `listener`: a socket of its own,
/// non-blocking as `flags` say, plain TCP when the listener is.
fn accepted(listener: c_int, r: c_int, flags: c_int) -> c_int {
    if r >= 0
        && let Some(slot) = fdtable::slot(r)
    {
        // An upper layer protocol is never installed on a listener (kernel TLS wants an
        // established connection), so a plain TCP listener's connections start plain.
        let tcp = fdtable::slot(listener).and_then(|l| l.plain_tcp());
        // Timeouts are inherited from the listener: learned when needed.
        slot.fresh_socket(flags & libc::SOCK_NONBLOCK != 0, false, tcp);
    }
    r
}

/// libc's `connect`: a blocking connect parks a cooperating greenlet until the handshake ends
/// (the socket is non-blocking for that one call), then reports `SO_ERROR`; `EINPROGRESS` when
/// `SO_SNDTIMEO` expires first, as unpatched.
///
/// # Safety
/// libc's contract for `connect`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if !cooperating() {
        return sys::connect(fd, addr, len);
    }
    guarded(-1, || {
        let Some(ctx) = Ctx::enter(fd) else {
            return blocking("connect", fd, || sys::connect(fd, addr, len));
        };
        if ctx.nonblocking() {
            return sys::connect(fd, addr, len);
        }
        super::connect::blocking_connect(&ctx, addr, len)
    })
}

/// libc's `socket`: records the new descriptor as a socket with no timeouts.
///
/// # Safety
/// libc's contract for `socket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let fd = sys::socket(domain, ty, protocol);
    if fd >= 0
        && let Some(slot) = fdtable::slot(fd)
    {
        // The type without the flags (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`) or'ed into it.
        const SOCK_TYPE_MASK: c_int = 0xf;
        let stream = ty & SOCK_TYPE_MASK == libc::SOCK_STREAM;
        let tcp = matches!(domain, libc::AF_INET | libc::AF_INET6)
            && stream
            && matches!(protocol, 0 | libc::IPPROTO_TCP);
        slot.fresh_socket(ty & libc::SOCK_NONBLOCK != 0, true, Some(tcp));
    }
    fd
}

/// Forgets `fd` before it is closed: this thread's registration (waking whoever waits on it)
/// and what the table knows. Only the atomic part runs in a signal handler.
fn closing(fd: c_int) {
    if super::is_patched() && super::SIGNAL_DEPTH.get() == 0 {
        // A panic here is a bug; it must not cross into C.
        let _ = std::panic::catch_unwind(|| wait::forget(fd));
    }
    if let Some(slot) = fdtable::slot(fd) {
        slot.closed();
    }
}

/// libc's `close`: wakes every greenlet of this thread parked on `fd` (they fail with `EBADF`,
/// even if the number is reused by then) and deregisters it from the hub first.
///
/// # Safety
/// libc's contract for `close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    closing(fd);
    sys::close(fd)
}

/// libc's `close_range`, forgetting each descriptor as [`close`] does.
///
/// # Safety
/// libc's contract for `close_range`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 && first <= last {
        fdtable::for_each_in(first, last, |fd, _| closing(fd));
    }
    sys::close_range(first, last, flags)
}

/// libc's `dup`: the new descriptor shares the file (and its options) with `fd`.
///
/// # Safety
/// libc's contract for `dup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    duplicated(fd, sys::dup(fd))
}

/// libc's `dup2`: `new` is closed first (as [`close`] does), then names `old`'s file.
///
/// # Safety
/// libc's contract for `dup2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup3 refuses this; dup2 checks that `old` is open and returns it.
        return if sys::fcntl(old, libc::F_GETFD, 0) < 0 {
            -1
        } else {
            new
        };
    }
    // SAFETY: the same contract.
    unsafe { dup3(old, new, 0) }
}

/// libc's `dup3`, as [`dup2`].
///
/// # Safety
/// libc's contract for `dup3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new && sys::fcntl(old, libc::F_GETFD, 0) >= 0 {
        closing(new);
    }
    duplicated(old, sys::dup3(old, new, flags))
}

/// Records that `new` (a result of the dup family) names `old`'s file.
pub(super) fn duplicated(old: c_int, new: c_int) -> c_int {
    if new >= 0
        && let Some(slot) = fdtable::slot(new)
    {
        slot.duplicate_of(fdtable::slot(old));
    } else if new >= 0
        && let Some(from) = fdtable::slot(old)
    {
        from.clear_private();
    }
    new
}
