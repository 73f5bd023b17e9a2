//! What the `monkey` hooks cost where they do not cooperate: a hooked `read(2)` of one byte
//! from `/dev/zero` on a thread without greenlets, before and after `patch_all`, next to the
//! raw system call. `cargo bench --features monkey --bench monkey`.

use std::hint::black_box;
use std::os::fd::AsRawFd;

use criterion::{Criterion, criterion_group, criterion_main};

fn pass_through(c: &mut Criterion) {
    let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let fd = zero.as_raw_fd();
    let mut byte = 0u8;
    let buf = (&raw mut byte).cast::<libc::c_void>();
    let mut g = c.benchmark_group("monkey read(2), thread without greenlets");
    g.bench_function("raw system call", |b| {
        // SAFETY: one byte into a valid one-byte buffer, from an open descriptor.
        b.iter(|| black_box(unsafe { libc::syscall(libc::SYS_read, fd, buf, 1) }))
    });
    if !greenlet::monkey::is_patched() {
        g.bench_function("hooked, before patch_all", |b| {
            // SAFETY: as above; `libc::read` is the hook in this binary.
            b.iter(|| black_box(unsafe { libc::read(fd, buf, 1) }))
        });
    }
    greenlet::monkey::patch_all();
    g.bench_function("hooked, after patch_all", |b| {
        // SAFETY: as above.
        b.iter(|| black_box(unsafe { libc::read(fd, buf, 1) }))
    });
    g.finish();
}

criterion_group!(benches, pass_through);
criterion_main!(benches);
