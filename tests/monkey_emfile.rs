//! `accept` under `EMFILE` with the monkey hooks: the error comes back to the caller (no hang,
//! no spin inside the hook), and accepting works again once descriptors are free. Its own test
//! binary, because it lowers the process's descriptor limit.
#![cfg(feature = "monkey")]

use std::net::{TcpListener, TcpStream};

#[test]
fn accept_on_emfile_reports_the_error_and_recovers() {
    greenlet::monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap();

    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY (test): reading and then lowering this process's own limit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) };
    // Use up every descriptor below a limit just above the ones open now.
    let mut hog = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) if hog.len() < 64 => hog.push(f),
            _ => break,
        }
    }
    let highest = hog.last().map(std::os::fd::AsRawFd::as_raw_fd).unwrap();
    let lowered = libc::rlimit {
        rlim_cur: highest as u64 + 1,
        rlim_max: old.rlim_max,
    };
    // SAFETY (test): as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
    let accepted = greenlet::spawn(move || {
        let first = listener.accept().map(|_| ()).map_err(|e| e.raw_os_error());
        (listener, first)
    });
    let (listener, first) = accepted.get().unwrap();
    assert_eq!(first, Err(Some(libc::EMFILE)));
    drop(hog);
    // SAFETY (test): restoring the limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
    let (conn, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    assert_eq!(conn.local_addr().unwrap(), addr);
}
