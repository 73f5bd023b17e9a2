//! Several cores: a [`Runtime`] of N OS threads, each with its own hub, and greenlets placed on
//! them from any thread.
//!
//! A greenlet is placed on a hub when it is spawned and never moves: it runs on that hub's
//! thread from start to end, so thread-locals (std's included) stay sound inside it, and
//! everything it creates (its stack, its green sockets, its local greenlets) stays there too.
//! Work crosses threads only as `Send` values: the closure given to [`Runtime::spawn`], its
//! result, and what goes through the `Send` primitives of [`sync`](crate::sync)
//! ([`Mutex`](crate::sync::Mutex), [`RwLock`](crate::sync::RwLock),
//! [`Condvar`](crate::sync::Condvar), [`sync::mpsc`](crate::sync::mpsc)). A greenlet waiting on one of
//! those parks, and is woken across threads through its hub's remote-wake path.

mod join;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use crate::hub::HubHandle;
use crate::sync::mpsc;

pub use self::join::RemoteJoinHandle;

/// How [`Runtime::spawn`] chooses a hub for a new greenlet.
///
/// Measured with `target/release/bench __placement` (2 hubs, on a heavily loaded 2-core
/// machine, so the times are rough): placing and joining trivial greenlets cost the same with
/// both; uneven work (400 CPU-bound greenlets, one in ten 40 times longer, at most 8 in
/// flight) took a median of 69 ms least-loaded against 182 ms round-robin over 9 paired runs
/// (least-loaded ahead in 6, behind in 2). A greenlet that computes does not yield, so what
/// round-robin queues behind a long one waits for it; least-loaded sends new work to the hub
/// that has less running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Placement {
    /// The hub with the fewest greenlets placed by the runtime still running (ties go round
    /// the hubs). The default: greenlets never move once placed, so a hub that got the long
    /// ones keeps them; placing by load is what keeps uneven work spread.
    #[default]
    LeastLoaded,
    /// Each hub in turn: one atomic increment, blind to how long each greenlet runs.
    RoundRobin,
}

/// Configures a [`Runtime`]: thread count, thread names, placement.
///
/// # Examples
/// ```
/// use greenlet::runtime::{Builder, Placement};
///
/// let rt = Builder::new()
///     .threads(2)
///     .name("worker")
///     .placement(Placement::RoundRobin)
///     .build()
///     .unwrap();
/// let name = rt.spawn_on(1, || std::thread::current().name().unwrap().to_owned()).unwrap();
/// assert_eq!(name.join().unwrap(), "worker-1");
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    threads: usize,
    name: String,
    placement: Placement,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            threads: thread::available_parallelism().map_or(1, |n| n.get()),
            name: "greenlet-hub".into(),
            placement: Placement::default(),
        }
    }
}

impl Builder {
    /// One thread per available core, threads named `greenlet-hub-<i>`, least-loaded
    /// placement.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// How many OS threads (hubs) to run.
    pub fn threads(mut self, threads: usize) -> Builder {
        self.threads = threads;
        self
    }

    /// The threads' name prefix: thread `i` is named `<name>-<i>`.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = name.into();
        self
    }

    /// How [`Runtime::spawn`] chooses a hub.
    pub fn placement(mut self, placement: Placement) -> Builder {
        self.placement = placement;
        self
    }

    /// Starts the threads, each running its hub, and returns once every hub is up.
    ///
    /// # Errors
    /// `InvalidInput` for zero threads; the error of a thread or hub that could not be made
    /// (the threads already started are shut down).
    pub fn build(self) -> io::Result<Runtime> {
        if self.threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Runtime needs at least one thread",
            ));
        }
        let mut rt = Runtime {
            hubs: Vec::with_capacity(self.threads),
            threads: Vec::with_capacity(self.threads),
            next: AtomicUsize::new(0),
            placement: self.placement,
        };
        for i in 0..self.threads {
            let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
            let (control_tx, control_rx) = mpsc::channel();
            let thread = thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || hub_main(ready_tx, control_rx))?;
            let handle = match ready_rx.recv() {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("a hub thread died while starting")),
            };
            rt.hubs.push(handle);
            rt.threads.push(HubThread {
                control: control_tx,
                thread: Some(thread),
            });
        }
        Ok(rt)
    }
}

/// N OS threads, a hub on each: the way to use several cores (gevent's answer is processes;
/// this is the same model inside one process).
///
/// [`spawn`](Runtime::spawn) places a greenlet on one of the hubs (the least loaded, see
/// [`Placement`]), [`spawn_on`](Runtime::spawn_on) on a given one; the greenlet runs there
/// until it ends, and its [`RemoteJoinHandle`] can be joined from any thread or greenlet.
/// Greenlets on different hubs run in parallel and share data through `Send` types: the
/// [`sync`](crate::sync) primitives that cross threads ([`Mutex`](crate::sync::Mutex),
/// [`RwLock`](crate::sync::RwLock), [`Condvar`](crate::sync::Condvar),
/// [`sync::mpsc`](crate::sync::mpsc)), `Arc`, atomics. Servers serve on every hub with one listener
/// each ([`StreamServer::start_on`](crate::server::StreamServer::start_on)).
///
/// Dropping the runtime kills the greenlets it placed (each unwinds from where it waits,
/// running its destructors) and joins its threads; [`shutdown`](Runtime::shutdown) first gives
/// them time to finish.
///
/// # Examples
/// ```
/// let rt = greenlet::Runtime::new(2).unwrap();
/// let handles: Vec<_> = (1..=4u64).map(|i| rt.spawn(move || i * i)).collect();
/// let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, 30);
/// ```
///
/// Only `Send` work crosses: a closure holding an `Rc` does not compile.
/// ```compile_fail
/// let rt = greenlet::Runtime::new(1).unwrap();
/// let shared = std::rc::Rc::new(1);
/// rt.spawn(move || *shared + 1);
/// ```
pub struct Runtime {
    hubs: Vec<HubHandle>,
    threads: Vec<HubThread>,
    next: AtomicUsize,
    placement: Placement,
}

struct HubThread {
    /// Tells the hub's main greenlet to shut down, with its grace period.
    control: mpsc::Sender<Duration>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Runtime {
    /// Starts `threads` OS threads named `greenlet-hub-<i>`, each running a hub, with
    /// least-loaded placement ([`Builder`] for more).
    ///
    /// # Errors
    /// `InvalidInput` for zero threads; the error of a thread that could not be started.
    pub fn new(threads: usize) -> io::Result<Runtime> {
        Builder::new().threads(threads).build()
    }

    /// How many hubs (threads) the runtime has.
    pub fn threads(&self) -> usize {
        self.hubs.len()
    }

    /// A `Send` handle on hub `index` (to place greenlets on it, or to stop it).
    pub fn hub(&self, index: usize) -> Option<HubHandle> {
        self.hubs.get(index).cloned()
    }

    /// Places a new greenlet running `f` on one of the hubs (see [`Placement`]) and returns a
    /// `Send` handle to join it. If the chosen hub's thread has gone, the next one is tried.
    ///
    /// # Examples
    /// ```
    /// let rt = greenlet::Runtime::new(2).unwrap();
    /// let h = rt.spawn(|| "hello from a hub");
    /// assert_eq!(h.join().unwrap(), "hello from a hub");
    /// ```
    ///
    /// If no hub is left (every one was stopped), the handle's `join` fails with
    /// [`JoinError::Spawn`](crate::JoinError::Spawn).
    pub fn spawn<T, F>(&self, f: F) -> RemoteJoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let n = self.hubs.len();
        let first = self.pick();
        let mut f = Some(f);
        let mut last_error = None;
        for k in 0..n {
            let hub = &self.hubs[(first + k) % n];
            if !hub.is_open() {
                continue;
            }
            let Some(work) = f.take() else { break };
            match join::place(hub, work) {
                Ok(handle) => return handle,
                // The closure went with the failed attempt: the hub closed in between.
                Err(e) => {
                    last_error = Some(e);
                    break;
                }
            }
        }
        RemoteJoinHandle::failed(last_error.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "every hub of the runtime has shut down",
            )
        }))
    }

    /// Places a new greenlet running `f` on hub `index`.
    ///
    /// # Errors
    /// `InvalidInput` if there is no hub `index`; `NotConnected` if its thread has gone (it
    /// was stopped): never a hang.
    ///
    /// # Examples
    /// ```
    /// let rt = greenlet::Runtime::new(2).unwrap();
    /// let h = rt.spawn_on(1, || std::thread::current().name().unwrap().to_owned()).unwrap();
    /// assert_eq!(h.join().unwrap(), "greenlet-hub-1");
    /// assert!(rt.spawn_on(2, || ()).is_err());
    /// ```
    pub fn spawn_on<T, F>(&self, index: usize, f: F) -> io::Result<RemoteJoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let hub = self.hubs.get(index).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no hub {index}: the runtime has {}", self.hubs.len()),
            )
        })?;
        join::place(hub, f)
    }

    /// The hub for the next greenlet.
    fn pick(&self) -> usize {
        let n = self.hubs.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        match self.placement {
            Placement::RoundRobin => start,
            Placement::LeastLoaded => (0..n)
                .map(|k| (start + k) % n)
                .min_by_key(|&i| self.hubs[i].load())
                .unwrap_or(start),
        }
    }

    /// Shuts down gracefully: the hubs take no more greenlets, the greenlets placed on them
    /// get up to `timeout` to finish, those still running then are killed (they unwind,
    /// running their destructors), and the threads are joined.
    ///
    /// Blocks the calling thread until then (called from a greenlet, it blocks that greenlet's
    /// hub too).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let rt = greenlet::Runtime::new(2).unwrap();
    /// let quick = rt.spawn(|| greenlet::sleep(Duration::from_millis(1)));
    /// let endless = rt.spawn(|| greenlet::sleep(Duration::from_secs(3600)));
    /// rt.shutdown(Duration::from_millis(50));
    /// assert!(quick.join().is_ok());
    /// assert!(matches!(endless.join(), Err(greenlet::JoinError::Killed)));
    /// ```
    pub fn shutdown(mut self, timeout: Duration) {
        self.shut_down(timeout);
    }

    fn shut_down(&mut self, grace: Duration) {
        for t in &self.threads {
            let _ = t.control.send(grace);
        }
        let me = thread::current().id();
        for t in &mut self.threads {
            let Some(thread) = t.thread.take() else {
                continue;
            };
            if thread.thread().id() == me {
                // Dropped by one of its own greenlets: that thread ends by itself once the
                // greenlet returns; joining it here would wait for ourselves.
                continue;
            }
            if thread.join().is_err() {
                log::error!("greenlet: a hub thread of a Runtime panicked");
            }
        }
    }
}

impl Drop for Runtime {
    /// Kills the greenlets still running on the hubs and joins the threads.
    fn drop(&mut self) {
        self.shut_down(Duration::ZERO);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("threads", &self.hubs.len())
            .field("placement", &self.placement)
            .field(
                "load",
                &self.hubs.iter().map(HubHandle::load).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A hub thread: reports its hub, then runs it (its main greenlet waits for the shutdown
/// order, which runs the hub meanwhile), then shuts the hub's greenlets down.
fn hub_main(
    ready: std::sync::mpsc::SyncSender<io::Result<HubHandle>>,
    control: mpsc::Receiver<Duration>,
) {
    let handle = HubHandle::current();
    let ok = handle.is_ok();
    if ready.send(handle).is_err() || !ok {
        return;
    }
    // A stop of the hub (`HubHandle::stop`) ends the wait as well: it shuts this hub down at
    // once, and the runtime places no more greenlets here.
    let grace = control.recv().unwrap_or(Duration::ZERO);
    crate::hub::shut_down_remote(grace);
}
