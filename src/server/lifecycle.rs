//! What both servers share: the serving state, the loop greenlet, `start`, `serve_forever`,
//! `stop`, and how the loop reacts to errors of its socket.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::{AcceptBackoff, AcceptError, Handlers, KILL_WAIT, classify_accept_error};
use crate::hub::waitlist::{WaitList, block_on};
use crate::hub::{JoinHandle, SpawnBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Made, not started.
    Idle,
    /// The loop (accept or receive) runs.
    Serving,
    /// No longer serving; `stop` is waiting for handlers, or the socket failed.
    Closing,
    /// Stopped: every handler is gone.
    Stopped,
}

/// The lifecycle of a server whose loop serves socket `S` (a listener, a UDP socket).
pub(crate) struct Lifecycle<S> {
    /// `StreamServer(127.0.0.1:8000)`: the loop greenlet's name and the prefix of log lines.
    name: String,
    pub(crate) addr: SocketAddr,
    socket: RefCell<Option<Rc<S>>>,
    pub(crate) handlers: Rc<Handlers>,
    state: Cell<State>,
    serve_loop: RefCell<Option<JoinHandle<()>>>,
    /// `serve_forever` callers, woken when the server stops or its socket fails.
    done: WaitList,
    /// The error that ended the loop, for `serve_forever`.
    fatal: RefCell<Option<io::Error>>,
}

impl<S: 'static> Lifecycle<S> {
    pub(crate) fn new(kind: &str, addr: SocketAddr, socket: S) -> Lifecycle<S> {
        Lifecycle {
            name: format!("{kind}({addr})"),
            addr,
            socket: RefCell::new(Some(Rc::new(socket))),
            handlers: Handlers::new(),
            state: Cell::new(State::Idle),
            serve_loop: RefCell::new(None),
            done: WaitList::new(),
            fatal: RefCell::new(None),
        }
    }

    pub(crate) fn is_serving(&self) -> bool {
        self.state.get() == State::Serving
    }

    /// Spawns the loop, `run(socket)`, in a greenlet named after the server.
    pub(crate) fn start(&self, run: impl FnOnce(Rc<S>) + 'static) -> io::Result<()> {
        if self.state.get() != State::Idle {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: already started or stopped", self.name),
            ));
        }
        let socket = self
            .socket
            .borrow()
            .clone()
            .expect("an idle server has its socket");
        let h = SpawnBuilder::new()
            .name(self.name.clone())
            .spawn(move || run(socket))?;
        *self.serve_loop.borrow_mut() = Some(h);
        self.state.set(State::Serving);
        Ok(())
    }

    /// Blocks the current greenlet until the server stops or its socket fails (after
    /// `start()` if the server is idle).
    pub(crate) fn serve_forever(&self, start: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        if self.state.get() == State::Idle {
            start()?;
        }
        let what = format!("{}::serve_forever", self.name);
        let r = block_on(&self.done, None, &what, || {
            (self.state.get() == State::Stopped || self.fatal.borrow().is_some()).then_some(())
        });
        if let Some(e) = self.fatal.borrow_mut().take() {
            return Err(e);
        }
        r.map_err(|e| crate::net::blocked_error(e, None))
    }

    /// Closes the socket (killing the loop unless it is the caller), waits up to `timeout` for
    /// the handlers, kills the rest; returns how many were killed.
    pub(crate) fn stop(&self, timeout: Duration) -> usize {
        if self.state.get() == State::Stopped {
            return 0;
        }
        self.state.set(State::Closing);
        let h = self.serve_loop.borrow_mut().take();
        if let Some(h) = h
            && !h.greenlet().is_current()
        {
            let _ = h.kill_timeout(KILL_WAIT);
        }
        self.socket.borrow_mut().take();
        let killed = self.handlers.stop(timeout);
        self.state.set(State::Stopped);
        self.done.wake_all();
        killed
    }

    /// The loop's answer to an error of `verb` (accept, receive) on its socket: retry at once,
    /// back off (out of descriptors or memory), or stop serving for good. Returns whether the
    /// loop goes on.
    pub(crate) fn on_error(&self, e: io::Error, verb: &str, backoff: &mut AcceptBackoff) -> bool {
        self.handlers.release();
        match classify_accept_error(&e) {
            AcceptError::Retry => {}
            AcceptError::Exhausted => backoff.wait(&e),
            AcceptError::Fatal => {
                log::error!("{}: {verb} failed, not serving any more: {e}", self.name);
                *self.fatal.borrow_mut() = Some(e);
                self.state.set(State::Closing);
                self.done.wake_all();
                return false;
            }
            AcceptError::Unknown => {
                log::error!("{}: {verb} failed: {e}", self.name);
                backoff.wait(&e);
            }
        }
        true
    }

    /// A backoff whose warnings name this server.
    pub(crate) fn backoff(&self) -> AcceptBackoff {
        AcceptBackoff::new(self.name.clone())
    }

    /// The fields a server's `Debug` shows.
    pub(crate) fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("addr", &self.addr)
            .field("state", &self.state.get())
            .field("handlers", &self.handlers.len())
            .field("spawn_limit", &self.handlers.limit());
    }
}
