//! Unit tests of the stack pool, slabs, guards and the overflow handler; what the pool keeps and
//! gives back is tested in `pool_bounds`, and `report` measures it.
//!
//! Tests that must crash (guard faults, overflow reports) or that change process-wide state
//! (the guard mode, the mapping count) re-run this test binary in a child process with
//! `GREENLET_STACK_TEST_CHILD=<test name>`, and check how it died. Tests that depend on the pool
//! starting empty run on a fresh thread, since the pool is per thread.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use corosensei::stack::{STACK_ALIGNMENT, Stack};
use corosensei::{Coroutine, CoroutineResult};

use super::pool;
use super::{DEFAULT_STACK_SIZE, PooledStack, acquire, advice, install_overflow_handler, slab};

mod decay;
mod pool_bounds;
mod report;

/// Environment variable that selects the child role of a test.
const CHILD_ENV: &str = "GREENLET_STACK_TEST_CHILD";

/// Runs `f` on a new thread (with an empty pool) and returns its result.
fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("test thread panicked")
}

/// Whether this process is the child of test `name`.
fn is_child(name: &str) -> bool {
    if std::env::var(CHILD_ENV).as_deref() != Ok(name) {
        return false;
    }
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit only reads the struct we pass; a crashing child should not dump core.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    true
}

/// Re-runs this test binary, running only test `name` of this module in its child role, with
/// `env` set.
fn run_child(name: &str, env: &[(&str, &str)]) -> Output {
    run_child_of(module_path!(), name, env)
}

/// Re-runs this test binary, running only test `name` of `module` (its `module_path!()`) in its
/// child role, with `env` set.
fn run_child_of(module: &str, name: &str, env: &[(&str, &str)]) -> Output {
    let path = module.split_once("::").map_or(module, |(_, rest)| rest);
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            &format!("{path}::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .envs(env.iter().copied())
        .output()
        .expect("failed to run child test process")
}

/// Describes a child's fate for assertion messages.
fn describe(output: &Output) -> String {
    format!(
        "status {:?} (signal {:?})\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        output.status.signal(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that the child of `output` was killed by `signal`.
#[track_caller]
fn assert_killed_by(output: &Output, signal: libc::c_int) {
    assert_eq!(output.status.signal(), Some(signal), "{}", describe(output));
}

/// Number of mappings of this process.
fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("read /proc/self/maps")
        .lines()
        .count()
}

/// Lowest usable address of `stack` (just above its guard).
fn usable_start(stack: &PooledStack) -> usize {
    stack.limit().get() + slab::guard_len()
}

/// Writes one byte into the guard of `stack`. Faults.
fn write_guard(stack: &PooledStack) {
    let guard = stack.limit().get() as *mut u8;
    // SAFETY: the guard page belongs to our own slab and no Rust object lives there; the write
    // is meant to fault (and kill this child process).
    unsafe { std::ptr::write_volatile(guard, 1) };
}

/// Touches every page of the usable part of `stack`.
fn touch(stack: &PooledStack) {
    let page = slab::page_size();
    for addr in (usable_start(stack)..stack.base().get()).step_by(page) {
        // SAFETY: the address is in the usable part of a stack we own and that no coroutine uses.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
    }
}

/// Number of resident pages in `[start, start + len)` (unmapped pages count as not resident).
fn resident_pages(start: usize, len: usize) -> usize {
    let page = slab::page_size();
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: mincore only writes `len / page` bytes into `vec`, which is that long.
    let ret = unsafe { libc::mincore(start as *mut libc::c_void, len, vec.as_mut_ptr()) };
    if ret != 0 {
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ENOMEM)
        );
        return 0;
    }
    vec.iter().filter(|&&v| v & 1 != 0).count()
}

/// Recurses until the stack runs out, with frames that cannot be optimised away.
#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 256]);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse_forever(depth + 1).wrapping_add(std::hint::black_box(frame)[7] as u64)
}

/// Recurses `depth` times with `256`-byte frames, then returns the sum of the frames' bytes.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth as u8; 256]);
    let below = if depth == 0 { 0 } else { recurse(depth - 1) };
    below + std::hint::black_box(frame)[255] as u64
}

#[test]
fn sizes_round_up_to_pages_and_min_stack_size() {
    let page = slab::page_size();
    let tiny = acquire(1).unwrap();
    assert_eq!(
        tiny.size(),
        corosensei::stack::MIN_STACK_SIZE.next_multiple_of(page)
    );
    let default = acquire(DEFAULT_STACK_SIZE).unwrap();
    assert_eq!(default.size(), DEFAULT_STACK_SIZE);
    let odd = acquire(DEFAULT_STACK_SIZE + 1).unwrap();
    assert_eq!(odd.size(), DEFAULT_STACK_SIZE + page);
    for stack in [&tiny, &default, &odd] {
        assert_eq!(stack.base().get() % STACK_ALIGNMENT, 0);
        assert_eq!(stack.limit().get() % page, 0);
        assert_eq!(
            stack.base().get() - stack.limit().get(),
            stack.size() + slab::guard_len()
        );
    }
    let err = acquire(usize::MAX - 10).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn dropped_stack_is_reused_warm_and_lifo() {
    on_fresh_thread(|| {
        let first = acquire(DEFAULT_STACK_SIZE).unwrap();
        let base = first.base();
        drop(first);
        let again = acquire(DEFAULT_STACK_SIZE).unwrap();
        assert_eq!(again.base(), base, "a freed stack is handed out again");

        let other = acquire(DEFAULT_STACK_SIZE).unwrap();
        let (a, b) = (again.base(), other.base());
        assert_ne!(a, b);
        drop(again);
        drop(other);
        assert_eq!(
            acquire(DEFAULT_STACK_SIZE).unwrap().base(),
            b,
            "last freed comes first"
        );
        // The temporary above went back to the pool; `b` is on top again.
        let x = acquire(DEFAULT_STACK_SIZE).unwrap();
        let y = acquire(DEFAULT_STACK_SIZE).unwrap();
        assert_eq!((x.base(), y.base()), (b, a));
    });
}

#[test]
fn size_classes_do_not_mix() {
    on_fresh_thread(|| {
        let small = acquire(16 * 1024).unwrap();
        let small_base = small.base();
        drop(small);
        let big = acquire(128 * 1024).unwrap();
        assert_ne!(big.base(), small_base);
        assert_eq!(big.size(), 128 * 1024);
        assert_eq!(acquire(16 * 1024).unwrap().base(), small_base);
    });
}

#[test]
fn whole_usable_region_is_writable_and_zeroed() {
    let stack = acquire(DEFAULT_STACK_SIZE).unwrap();
    let start = usable_start(&stack) as *mut u8;
    let len = stack.size();
    // SAFETY: `[start, start + len)` is the usable part of a stack we own and no coroutine uses.
    let region = unsafe { std::slice::from_raw_parts_mut(start, len) };
    assert!(region.iter().all(|&b| b == 0), "fresh stacks read as zero");
    region.fill(0xA5);
    assert!(region.iter().all(|&b| b == 0xA5));
}

#[test]
fn coroutine_runs_on_a_pooled_stack() {
    let stack = acquire(DEFAULT_STACK_SIZE).unwrap();
    let (low, high) = (stack.limit().get(), stack.base().get());
    let mut coroutine = Coroutine::with_stack(stack, |yielder, input: u64| {
        let local = 0u8;
        let here = std::hint::black_box(&local) as *const u8 as usize;
        let next = yielder.suspend(here as u64);
        // 31 frames: about 35 KiB in debug builds, 17 KiB in release, of 64 KiB.
        recurse(input + next)
    });
    let CoroutineResult::Yield(address) = coroutine.resume(10) else {
        panic!("expected a yield")
    };
    assert!(
        (low as u64..high as u64).contains(&address),
        "runs on the pooled stack"
    );
    let CoroutineResult::Return(sum) = coroutine.resume(20) else {
        panic!("expected a return")
    };
    assert_eq!(sum, (0..=30).sum::<u64>());
}

#[test]
fn guard_page_faults() {
    if is_child("guard_page_faults") {
        let stack = acquire(DEFAULT_STACK_SIZE).unwrap();
        write_guard(&stack);
        println!("wrote to the guard page without faulting");
        std::process::exit(0);
    }
    let output = run_child("guard_page_faults", &[]);
    assert_killed_by(&output, libc::SIGSEGV);
}

#[test]
fn overflow_handler_reports_guard_fault_and_aborts() {
    if is_child("overflow_handler_reports_guard_fault_and_aborts") {
        install_overflow_handler();
        let stack = acquire(DEFAULT_STACK_SIZE).unwrap();
        write_guard(&stack);
        std::process::exit(0);
    }
    let output = run_child("overflow_handler_reports_guard_fault_and_aborts", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_killed_by(&output, libc::SIGABRT);
    assert!(
        stderr.contains("greenlet: stack overflow in greenlet #"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("(stack size 64 KiB)"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("greenlet::Builder::stack_size(...)"),
        "{}",
        describe(&output)
    );
}

#[test]
fn coroutine_overflow_is_reported() {
    if is_child("coroutine_overflow_is_reported") {
        install_overflow_handler();
        let stack = acquire(32 * 1024).unwrap();
        let mut coroutine =
            Coroutine::with_stack(stack, |_yielder: &corosensei::Yielder<(), ()>, ()| {
                recurse_forever(0)
            });
        let _ = coroutine.resume(());
        std::process::exit(0);
    }
    let output = run_child("coroutine_overflow_is_reported", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_killed_by(&output, libc::SIGABRT);
    assert!(
        stderr.contains("stack overflow in greenlet"),
        "{}",
        describe(&output)
    );
    assert!(
        stderr.contains("(stack size 32 KiB)"),
        "{}",
        describe(&output)
    );
    assert_eq!(
        stderr.matches("stack overflow").count(),
        1,
        "one line: {}",
        describe(&output)
    );
}

#[test]
fn other_faults_go_to_the_previous_handler() {
    if is_child("other_faults_go_to_the_previous_handler") {
        install_overflow_handler();
        let _stack = acquire(DEFAULT_STACK_SIZE).unwrap();
        // SAFETY: maps a fresh inaccessible page that nothing else uses.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                slab::page_size(),
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        // SAFETY: the page is ours and holds no Rust object; the write is meant to fault.
        unsafe { std::ptr::write_volatile(page.cast::<u8>(), 1) };
        std::process::exit(0);
    }
    let output = run_child("other_faults_go_to_the_previous_handler", &[]);
    assert_killed_by(&output, libc::SIGSEGV);
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("stack overflow"),
        "{}",
        describe(&output)
    );
}

#[test]
fn thread_overflow_still_reported_by_std() {
    if is_child("thread_overflow_still_reported_by_std") {
        install_overflow_handler();
        let _stack = acquire(DEFAULT_STACK_SIZE).unwrap();
        let _ = std::thread::Builder::new()
            .name("deep-thread".into())
            .stack_size(256 * 1024)
            .spawn(|| recurse_forever(0))
            .unwrap()
            .join();
        std::process::exit(0);
    }
    let output = run_child("thread_overflow_still_reported_by_std", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_killed_by(&output, libc::SIGABRT);
    assert!(
        stderr.contains("has overflowed its stack"),
        "{}",
        describe(&output)
    );
    assert!(
        !stderr.contains("stack overflow in greenlet"),
        "{}",
        describe(&output)
    );
}

#[test]
fn alt_stack_is_added_when_missing() {
    on_fresh_thread(|| {
        // Remove the alternate stack std gave this thread, then ask for ours.
        // SAFETY: all-zeroes is a valid `stack_t`.
        let mut previous: libc::stack_t = unsafe { std::mem::zeroed() };
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: this thread is not running on its alternate stack.
        assert_eq!(unsafe { libc::sigaltstack(&disable, &mut previous) }, 0);
        install_overflow_handler();
        // SAFETY: all-zeroes is a valid `stack_t`.
        let mut now: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: querying writes only into `now`.
        assert_eq!(unsafe { libc::sigaltstack(std::ptr::null(), &mut now) }, 0);
        assert_eq!(
            now.ss_flags & libc::SS_DISABLE,
            0,
            "an alternate stack is installed"
        );
        assert!(now.ss_size >= 64 * 1024);
        // Restoring std's stack would make our thread-local destructor leave it alone; leave
        // ours in place so that destructor unmaps it.
    });
}

#[test]
fn mprotect_fallback_guards_and_splits_mappings() {
    if is_child("mprotect_fallback_guards_and_splits_mappings") {
        let before = mapping_count();
        let stacks: Vec<PooledStack> = (0..100)
            .map(|_| acquire(DEFAULT_STACK_SIZE).unwrap())
            .collect();
        assert_eq!(advice::guards_split_mappings(), Some(true));
        let grown = mapping_count() - before;
        assert!(
            grown >= 150,
            "mprotect guards split the mapping: grew by {grown}"
        );
        stacks.iter().for_each(touch);
        write_guard(&stacks[50]);
        std::process::exit(0);
    }
    let output = run_child(
        "mprotect_fallback_guards_and_splits_mappings",
        &[("GREENLET_TEST_GUARD_MODE", "mprotect")],
    );
    assert_killed_by(&output, libc::SIGSEGV);
}

#[test]
fn running_out_of_mappings_names_max_map_count() {
    if is_child("running_out_of_mappings_names_max_map_count") {
        let mut stacks = Vec::new();
        let err = loop {
            match acquire(16 * 1024) {
                Ok(stack) => stacks.push(stack),
                Err(err) => break err,
            }
            assert!(stacks.len() < 1_000_000, "never ran out of mappings");
        };
        println!("after {} stacks: {err}", stacks.len());
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        let message = err.to_string();
        assert!(message.contains("vm.max_map_count"), "{message}");
        assert!(message.contains("sysctl -w vm.max_map_count="), "{message}");
        // Freeing stacks makes room again.
        stacks.truncate(stacks.len() - 1000);
        drop(stacks);
        acquire(16 * 1024).unwrap();
        std::process::exit(0);
    }
    let output = run_child(
        "running_out_of_mappings_names_max_map_count",
        &[("GREENLET_TEST_GUARD_MODE", "mprotect")],
    );
    assert!(output.status.success(), "{}", describe(&output));
}

thread_local! {
    /// Holds a stack past the destruction of the pool (see `drop_after_pool_is_gone`).
    static HOLDER: Holder = const { Holder(std::cell::RefCell::new(None)) };
}

/// Set when an `acquire` during thread-local destruction failed cleanly.
static ACQUIRE_DURING_EXIT_FAILED: AtomicBool = AtomicBool::new(false);

/// A thread-local slot that drops its stack (and tries to acquire another) at thread exit.
struct Holder(std::cell::RefCell<Option<PooledStack>>);

impl Drop for Holder {
    fn drop(&mut self) {
        if self.0.borrow_mut().take().is_some() && acquire(DEFAULT_STACK_SIZE).is_err() {
            ACQUIRE_DURING_EXIT_FAILED.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn drop_after_pool_is_gone() {
    let orphans = pool::ORPHAN_RELEASES.load(Ordering::SeqCst);
    on_fresh_thread(|| {
        // Registered first, so destroyed after the pool (destructors run in reverse order).
        HOLDER.with(|_| {});
        let stack = acquire(DEFAULT_STACK_SIZE).unwrap();
        touch(&stack);
        HOLDER.with(|holder| *holder.0.borrow_mut() = Some(stack));
    });
    assert!(
        pool::ORPHAN_RELEASES.load(Ordering::SeqCst) > orphans,
        "the stack outlived its pool"
    );
    assert!(ACQUIRE_DURING_EXIT_FAILED.load(Ordering::SeqCst));
}
