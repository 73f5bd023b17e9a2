//! Running blocking work on OS threads while the hub keeps serving greenlets (gevent's
//! `hub.threadpool`).
//!
//! Process-wide, bounded pools: one for [`spawn_blocking`], a small one of its own for name
//! lookups (`net`'s resolving), so that slow DNS (an unreachable server makes every lookup
//! wait for seconds) never holds the threads that unrelated blocking work needs, and blocking
//! work never delays a lookup; and the file pool of [`fs`](crate::fs), for the same reason
//! with a slow disk. Threads are started on demand and leave after a while
//! without work. The calling greenlet parks until its function returns and is woken through
//! the hub's `mio::Waker`.

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

/// The default number of threads that look host names up at once.
pub const DEFAULT_MAX_LOOKUP_THREADS: usize = 4;

/// How long an idle pool thread waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// A bounded set of OS threads taking jobs from one FIFO queue.
pub(crate) struct Pool {
    /// The name of its threads.
    name: &'static str,
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

impl Pool {
    pub(crate) const fn new(name: &'static str, max: usize) -> Pool {
        Pool {
            name,
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
            }),
            available: Condvar::new(),
            max: AtomicUsize::new(max),
        }
    }

    /// Sets the most threads the pool may run at once (at least 1).
    pub(crate) fn set_max_threads(&self, n: usize) {
        self.max.store(n.max(1), Ordering::Relaxed);
    }

    /// The most threads the pool may run at once.
    pub(crate) fn max_threads(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }
}

/// The pool of [`spawn_blocking`].
static POOL: Pool = Pool::new("greenlet-pool", DEFAULT_MAX_THREADS);

/// The pool of name lookups.
static LOOKUPS: Pool = Pool::new("greenlet-lookup", DEFAULT_MAX_LOOKUP_THREADS);

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
    POOL.set_max_threads(n);
}

/// The most threads the pool may run at once.
pub fn max_threads() -> usize {
    POOL.max_threads()
}

/// Sets how many host names may be looked up at once (at least 1; the default is
/// [`DEFAULT_MAX_LOOKUP_THREADS`]), for the whole process. Lookups have their own threads, apart
/// from [`spawn_blocking`]'s: more lookups than this wait for one of them.
///
/// # Examples
/// ```
/// greenlet::threadpool::set_max_lookup_threads(8);
/// assert_eq!(greenlet::threadpool::max_lookup_threads(), 8);
/// ```
pub fn set_max_lookup_threads(n: usize) {
    LOOKUPS.set_max_threads(n);
}

/// How many host names may be looked up at once.
pub fn max_lookup_threads() -> usize {
    LOOKUPS.max_threads()
}

/// Runs `f` on [`spawn_blocking`]'s pool without waiting for it (cleanup that must not block
/// the hub, such as reaping a killed child). If no thread can be started, `f` is dropped unrun
/// and that is logged.
pub(crate) fn detach(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = submit(&POOL, Box::new(f)) {
        log::error!("greenlet: could not start a thread-pool thread for background work: {e}");
    }
}

fn submit(pool: &'static Pool, job: Job) -> std::io::Result<()> {
    let mut q = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
    q.jobs.push_back(job);
    if q.idle > 0 {
        pool.available.notify_one();
    }
    // Start a thread whenever the queued jobs outnumber the idle threads (a notified thread
    // counts as idle until it wakes and takes its job). Checking only `idle > 0` left a second
    // job queued behind a busy thread while the only idle one was still waking up for the
    // first: two jobs that wait for each other then never finished.
    if q.jobs.len() > q.idle && q.threads < pool.max.load(Ordering::Relaxed) {
        q.threads += 1;
        let spawned = std::thread::Builder::new()
            .name(pool.name.into())
            .spawn(move || worker(pool));
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

fn worker(pool: &'static Pool) {
    let mut q = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = q.jobs.pop_front() {
            drop(q);
            job();
            q = pool.queue.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        q.idle += 1;
        let (guard, timeout) = pool
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
    run_on(&POOL, f)
}

/// [`spawn_blocking`] on the pool of name lookups.
pub(crate) fn lookup_blocking<T, F>(f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_on(&LOOKUPS, f)
}

/// Runs `f` on `pool` and parks the calling greenlet until it returns (see [`spawn_blocking`]).
pub(crate) fn run_on<T, F>(pool: &'static Pool, f: F) -> Result<T, BlockingError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot: Arc<Mutex<Option<std::thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let (waker, wait) = RemoteWait::new().map_err(BlockingError::Spawn)?;
    let filled = slot.clone();
    submit(
        pool,
        Box::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            *filled.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            waker.wake();
        }),
    )
    .map_err(BlockingError::Spawn)?;
    loop {
        if let Some(r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return r.map_err(|p| BlockingError::Panicked(Panic::new(p)));
        }
        // The waker is outstanding until the job ends, so the hub cannot run dry: a LoopExit
        // here is a stop request or a refusal to block, and waiting on would ignore it.
        match wait.wait(None, &format_args!("a job on the {} threads", pool.name)) {
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
