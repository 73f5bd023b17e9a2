//! The name hooks: `getaddrinfo` and `getnameinfo` run libc's resolver on the lookup threads
//! (a pool of their own, apart from `spawn_blocking`'s, so slow DNS delays no other blocking
//! work) and park the calling greenlet until it answers. The pool's own threads have no
//! greenlets, so their calls go straight to libc's functions (found with `dlsym(RTLD_NEXT)`).
//!
//! A lookup that the caller stops waiting for (a `Timeout`, a kill) goes on on its thread; its
//! result is freed there. The call then fails with `EAI_SYSTEM` and `errno` `ETIMEDOUT` or
//! `ECANCELED`.

use std::ffi::{CStr, CString, c_char};
use std::sync::atomic::AtomicPtr;

use libc::{addrinfo, c_int, c_void, sockaddr, socklen_t};

use super::cooperating;
use super::sys::{self, set_errno};
use super::wait::guarded;
use crate::threadpool::{BlockingError, lookup_blocking};

type GetAddrInfo = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;
type FreeAddrInfo = unsafe extern "C" fn(*mut addrinfo);
type GetNameInfo = unsafe extern "C" fn(
    *const sockaddr,
    socklen_t,
    *mut c_char,
    socklen_t,
    *mut c_char,
    socklen_t,
    c_int,
) -> c_int;

static GETADDRINFO: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
static FREEADDRINFO: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
static GETNAMEINFO: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());

/// Resolves libc's functions ahead of time.
pub(super) fn prepare() {
    sys::real(&GETADDRINFO, c"getaddrinfo");
    sys::real(&FREEADDRINFO, c"freeaddrinfo");
    sys::real(&GETNAMEINFO, c"getnameinfo");
}

fn real_getaddrinfo() -> Option<GetAddrInfo> {
    let p = sys::real(&GETADDRINFO, c"getaddrinfo");
    // SAFETY: libc's `getaddrinfo` has this signature; null means not found.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, GetAddrInfo>(p) })
}

fn real_getnameinfo() -> Option<GetNameInfo> {
    let p = sys::real(&GETNAMEINFO, c"getnameinfo");
    // SAFETY: libc's `getnameinfo` has this signature; null means not found.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, GetNameInfo>(p) })
}

/// A result list of libc's `getaddrinfo`, freed if nobody takes it.
struct AddrList(*mut addrinfo);

// SAFETY: the list is plain heap memory owned by whoever holds this; libc's freeaddrinfo may
// be called from any thread.
unsafe impl Send for AddrList {}

impl Drop for AddrList {
    fn drop(&mut self) {
        let p = sys::real(&FREEADDRINFO, c"freeaddrinfo");
        if !self.0.is_null() && !p.is_null() {
            // SAFETY: `p` is libc's freeaddrinfo, `self.0` a list it allocated, freed once.
            unsafe { std::mem::transmute::<*mut c_void, FreeAddrInfo>(p)(self.0) };
        }
    }
}

fn failed(e: BlockingError) -> c_int {
    set_errno(match e {
        BlockingError::TimedOut => libc::ETIMEDOUT,
        BlockingError::Spawn(e) => e.raw_os_error().unwrap_or(libc::EAGAIN),
        _ => libc::ECANCELED,
    });
    libc::EAI_SYSTEM
}

fn owned(s: *const c_char) -> Option<CString> {
    // SAFETY: a non-null argument is a NUL-terminated string (libc's contract).
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_owned())
}

/// libc's `getaddrinfo`, resolved on the lookup threads for a cooperating greenlet.
///
/// # Safety
/// libc's contract for `getaddrinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let Some(real) = real_getaddrinfo() else {
        set_errno(libc::ENOSYS);
        return libc::EAI_SYSTEM;
    };
    if !cooperating() {
        // SAFETY: the caller's arguments, passed on to libc's function.
        return unsafe { real(node, service, hints, res) };
    }
    let (node, service) = (owned(node), owned(service));
    let hints = (!hints.is_null()).then(|| {
        // SAFETY: a non-null `hints` is a valid addrinfo (libc's contract).
        let h = unsafe { &*hints };
        (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol)
    });
    guarded(libc::EAI_SYSTEM, || {
        let lookup = lookup_blocking(move || {
            // SAFETY: all-zero is a valid addrinfo (null pointers).
            let mut h: addrinfo = unsafe { std::mem::zeroed() };
            if let Some((flags, family, socktype, protocol)) = hints {
                (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol) =
                    (flags, family, socktype, protocol);
            }
            let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
            let mut out = std::ptr::null_mut();
            // SAFETY: valid strings or null, a valid hints struct, a writable result slot.
            let rc = unsafe {
                real(
                    ptr(&node),
                    ptr(&service),
                    if hints.is_some() {
                        &h
                    } else {
                        std::ptr::null()
                    },
                    &mut out,
                )
            };
            (rc, sys::errno(), AddrList(out))
        });
        match lookup {
            Ok((rc, errno, list)) => {
                let list = std::mem::ManuallyDrop::new(list);
                // SAFETY: `res` is writable (libc's contract); the list is handed over.
                unsafe { *res = list.0 };
                set_errno(errno);
                rc
            }
            Err(e) => failed(e),
        }
    })
}

/// libc's `getnameinfo`, resolved on the lookup threads for a cooperating greenlet.
///
/// # Safety
/// libc's contract for `getnameinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getnameinfo(
    addr: *const sockaddr,
    len: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    let Some(real) = real_getnameinfo() else {
        set_errno(libc::ENOSYS);
        return libc::EAI_SYSTEM;
    };
    if !cooperating() || addr.is_null() {
        // SAFETY: the caller's arguments, passed on to libc's function.
        return unsafe { real(addr, len, host, hostlen, serv, servlen, flags) };
    }
    // SAFETY: `addr` holds `len` bytes (libc's contract).
    let sa = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), len as usize) }.to_vec();
    let (want_host, want_serv) = (!host.is_null(), !serv.is_null());
    guarded(libc::EAI_SYSTEM, || {
        let lookup = lookup_blocking(move || {
            let mut h = vec![0 as c_char; if want_host { hostlen as usize } else { 0 }];
            let mut s = vec![0 as c_char; if want_serv { servlen as usize } else { 0 }];
            let hp = if want_host {
                h.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            };
            let sp = if want_serv {
                s.as_mut_ptr()
            } else {
                std::ptr::null_mut()
            };
            // SAFETY: a copy of the caller's address and buffers of the caller's sizes.
            let rc = unsafe {
                real(
                    sa.as_ptr().cast(),
                    sa.len() as socklen_t,
                    hp,
                    hostlen,
                    sp,
                    servlen,
                    flags,
                )
            };
            (rc, sys::errno(), h, s)
        });
        match lookup {
            Ok((rc, errno, h, s)) => {
                // SAFETY: the caller's buffers hold `hostlen` / `servlen` bytes, as the copies.
                unsafe {
                    if want_host {
                        std::ptr::copy_nonoverlapping(h.as_ptr(), host, h.len());
                    }
                    if want_serv {
                        std::ptr::copy_nonoverlapping(s.as_ptr(), serv, s.len());
                    }
                }
                set_errno(errno);
                rc
            }
            Err(e) => failed(e),
        }
    })
}
