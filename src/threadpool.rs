//! Running blocking work on OS threads while the hub keeps serving greenlets (gevent's
//! `hub.threadpool`).
//!
//! The pool is process-wide and bounded; threads are started on demand and leave after a
//! while without work. The calling greenlet parks until its function returns and is woken
//! through the hub's `mio::Waker`.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::Panic;
use crate::hub::RemoteWait;
use crate::hub::waitlist::BlockError;

/// The default number of pool threads (gevent's default `maxsize` is 10).
pub const DEFAULT_MAX_THREADS: usize = 10;

/// How long an idle pool thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    queue: Mutex<Queue>,
    available: Condvar,
    max: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    queue: Mutex::new(Queue {
        jobs: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    available: Condvar::new(),
    max: AtomicUsize::new(DEFAULT_MAX_THREADS),
};

/// Sets the most threads the pool may run at once (at least 1), for the whole process; the last
/// setting wins. Lowering it stops no thread: no new one starts while the pool is at or above
/// the limit, and the threads already running go on taking jobs until each has been idle for
/// ten seconds, as every pool thread does.
///
/// # Examples
/// ```
/// greenlet::threadpool::set_max_threads(4);
/// greenlet::threadpool::set_max_threads(2);
/// assert_eq!(greenlet::threadpool::max_threads(), 2);
/// ```
pub fn set_max_threads(n: usize) {
    POOL.max.store(n.max(1), Ordering::Relaxed);
}

/// The most threads the pool may run at once.
pub fn max_threads() -> usize {
    POOL.max.load(Ordering::Relaxed)
}

fn submit(job: Job) -> std::io::Result<()> {
    let mut q = POOL.queue.lock().unwrap_or_else(|e| e.into_inner());
    q.jobs.push_back(job);
    if q.idle > 0 {
        POOL.available.notify_one();
    }
    // Start a thread whenever the queued jobs outnumber the idle threads (a notified thread
    // counts as idle until it wakes and takes its job). Checking only `idle > 0` left a second
    // job queued behind a busy thread while the only idle one was still waking up for the
    // first: two jobs that wait for each other then never finished.
    if q.jobs.len() > q.idle && q.threads < max_threads() {
        q.threads += 1;
        let spawned = std::thread::Builder::new()
            .name("greenlet-pool".into())
            .spawn(worker);
        if let Err(e) = spawned {
            q.threads -= 1;
            if q.threads == 0 {
                q.jobs.pop_back();
                return Err(e);
            }
        }
    }
    Ok(())
}

fn worker() {
    let mut q = POOL.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = q.jobs.pop_front() {
            drop(q);
            job();
            q = POOL.queue.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        q.idle += 1;
        let (guard, timeout) = POOL
            .available
            .wait_timeout(q, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        q = guard;
        q.idle -= 1;
        if timeout.timed_out() && q.jobs.is_empty() {
            q.threads -= 1;
            return;
        }
    }
}

/// Why [`spawn_blocking`] produced no value.
#[derive(Debug)]
#[non_exhaustive]
pub enum BlockingError {
    /// The function panicked on its pool thread.
    Panicked(Panic),
    /// No pool thread could be started.
    Spawn(std::io::Error),
    /// A [`Timeout`](crate::Timeout) of the calling greenlet ran out first. The function keeps
    /// running on its pool thread; its result is dropped.
    TimedOut,
    /// The hub was stopped ([`HubHandle::stop`](crate::HubHandle::stop)) or the wait was
    /// refused (during unwinding) before the function returned; it keeps running on its pool
    /// thread and its result is dropped.
    Interrupted(crate::LoopExit),
    /// The calling greenlet was killed softly (see [`Killed`](crate::Killed)) before the
    /// function returned; it keeps running on its pool thread and its result is dropped.
    Killed,
}

impl fmt::Display for BlockingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockingError::Panicked(p) => write!(f, "blocking function {p}"),
            BlockingError::Spawn(e) => write!(f, "could not start a thread-pool thread: {e}"),
            BlockingError::TimedOut => {
                f.write_str("timed out waiting for a blocking function (it keeps running)")
            }
            BlockingError::Interrupted(e) => write!(f, "waiting for a thread-pool job: {e}"),
            BlockingError::Killed => write!(f, "waiting for a thread-pool job: {}", crate::Killed),
        }
    }
}

impl std::error::Error for BlockingError {}

/// Runs `f` on a pool thread and parks the calling greenlet until it returns; other greenlets
/// run meanwhile. For blocking calls that have no green form (file I/O, CPU-heavy work, C
/// libraries).
///
/// # Errors
/// [`BlockingError::Panicked`] if `f` panicked (the panic does not cross into the hub);
/// [`BlockingError::Spawn`] if no thread could be started; [`BlockingError::TimedOut`] if a
/// [`Timeout`](crate::Timeout) of the calling greenlet ran out first.
///
/// # Examples
/// ```
/// let sum = greenlet::threadpool::spawn_blocking(|| (1..=100u64).sum::<u64>()).unwrap();
/// assert_eq!(sum, 5050);
/// ```
pub fn spawn_blocking<T, F>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot: Arc<Mutex<Option<std::thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let (waker, wait) = RemoteWait::new().map_err(BlockingError::Spawn)?;
    let filled = slot.clone();
    submit(Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        waker.wake();
    }))
    .map_err(BlockingError::Spawn)?;
    loop {
        if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return r.map_err(|p| BlockingError::Panicked(Panic::new(p)));
        }
        // The waker is outstanding until the job ends, so the hub cannot run dry: a LoopExit
        // here is a stop request or a refusal to block, and waiting on would ignore it.
        match wait.wait(None, &"a thread-pool job") {
            Ok(()) => {}
            Err(BlockError::LoopExit(e)) => return Err(BlockingError::Interrupted(e)),
            // A `Timeout` of this greenlet ran out. Waiting on would spin through the hub (every
            // later park times out at once) until the job ends: give up, as gevent's
            // `threadpool.apply` raises `Timeout`.
            Err(BlockError::TimedOut) => return Err(BlockingError::TimedOut),
            Err(BlockError::Killed) => return Err(BlockingError::Killed),
        }
    }
}
