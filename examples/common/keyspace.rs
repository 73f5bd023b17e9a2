//! The keyspace of `redis_server`: strings with optional expiry.
//!
//! On one hub the keyspace is an `Rc<RefCell<Store>>` shared by all connections: they all run
//! on one thread, so there is no lock, and no command can be interrupted half-way (a greenlet
//! only switches when it blocks, and commands never block). With `--threads N` it is one
//! `greenlet::sync::Mutex` shared by the hubs. Either way a command (or a whole `EXEC`) runs
//! inside one [`Keyspace::with`] and never blocks there: its replies are written, and the
//! expiring greenlets woken, after the keyspace is let go.
//!
//! Keys expire two ways, as in redis-server: a read finds an expired key gone (lazily), and a
//! greenlet sleeps on the hub's timers until the next deadline and deletes what is due
//! (actively), so memory does not wait for a read.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use greenlet::sync::Event;

/// String keys to string values, with deadlines for the keys that expire. A value is shared
/// (`Arc`), so that a GET of a large value can write it after the keyspace is let go; SET
/// changes it in place unless such a write still holds it.
#[derive(Default)]
pub struct Store {
    pub values: HashMap<Vec<u8>, Arc<Vec<u8>>>,
    pub deadlines: HashMap<Vec<u8>, Instant>,
    /// The deadlines in time order, for the expiring greenlets.
    schedule: BTreeSet<(Instant, Vec<u8>)>,
}

/// The keyspace of one hub: no lock, the hub's connections take turns.
pub type Db = Rc<RefCell<Store>>;

/// The keyspace shared by the hubs of a runtime.
pub type SharedDb = Arc<greenlet::sync::Mutex<Store>>;

/// A keyspace a command runs against, with exclusive access for the length of `with`.
pub trait Keyspace: Clone + 'static {
    /// A handle that does not keep the keyspace alive, for its expiring greenlet.
    type Weak: 'static;
    /// Runs `f` on the store.
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R;
    /// Identifies the keyspace (among those of this thread's expiring greenlets).
    fn id(&self) -> usize;
    /// The weak form of this handle.
    fn downgrade(&self) -> Self::Weak;
    /// The handle again, if the keyspace is still alive.
    fn upgrade(weak: &Self::Weak) -> Option<Self>;
}

impl Keyspace for Db {
    type Weak = std::rc::Weak<RefCell<Store>>;
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        f(&mut self.borrow_mut())
    }
    fn id(&self) -> usize {
        Rc::as_ptr(self) as usize
    }
    fn downgrade(&self) -> Self::Weak {
        Rc::downgrade(self)
    }
    fn upgrade(weak: &Self::Weak) -> Option<Self> {
        weak.upgrade()
    }
}

impl Keyspace for SharedDb {
    type Weak = std::sync::Weak<greenlet::sync::Mutex<Store>>;
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        // Never held across a blocking call (commands do not block), so the lock is only
        // ever waited for by the other hubs, for one command.
        f(&mut self.lock().unwrap_or_else(|e| e.into_inner()))
    }
    fn id(&self) -> usize {
        Arc::as_ptr(self) as usize
    }
    fn downgrade(&self) -> Self::Weak {
        Arc::downgrade(self)
    }
    fn upgrade(weak: &Self::Weak) -> Option<Self> {
        weak.upgrade()
    }
}

impl Store {
    /// The value of `key` if it has one and has not expired.
    pub fn get(&mut self, key: &[u8], now: Instant) -> Option<&Arc<Vec<u8>>> {
        self.expire_if_due(key, now);
        self.values.get(key)
    }

    pub fn expire_if_due(&mut self, key: &[u8], now: Instant) {
        if self.deadlines.get(key).is_some_and(|&d| d <= now) {
            self.remove(key);
        }
    }

    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.persist(key);
        self.values.remove(key).is_some()
    }

    /// Takes the deadline off `key`; returns whether it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        match self.deadlines.remove(key) {
            Some(d) => {
                self.schedule.remove(&(d, key.to_vec()));
                true
            }
            None => false,
        }
    }

    /// Sets `key` to `value`, without a deadline (as SET does).
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.persist(key);
        match self.values.get_mut(key) {
            Some(v) => {
                // In place, unless a GET is still writing the old value.
                let v = Arc::make_mut(v);
                v.clear();
                v.extend_from_slice(value);
            }
            None => {
                self.values.insert(key.to_vec(), Arc::new(value.to_vec()));
            }
        }
    }

    pub fn set_deadline(&mut self, key: &[u8], deadline: Instant) {
        self.persist(key);
        self.deadlines.insert(key.to_vec(), deadline);
        self.schedule.insert((deadline, key.to_vec()));
    }

    /// Deletes every key whose deadline has passed; returns the next deadline.
    pub fn expire_due(&mut self, now: Instant) -> Option<Instant> {
        while let Some((d, _)) = self.schedule.first() {
            if *d > now {
                return Some(*d);
            }
            let (_, key) = self.schedule.pop_first().expect("checked");
            self.deadlines.remove(&key);
            self.values.remove(&key);
        }
        None
    }
}

/// This hub's expiring greenlet for one keyspace: when it wakes up next, and how to wake it
/// earlier.
struct Expirer {
    earlier: Event,
    until: Cell<Option<Instant>>,
}

thread_local! {
    /// The expiring greenlets of this hub, by keyspace.
    static EXPIRERS: RefCell<HashMap<usize, Rc<Expirer>>> = RefCell::new(HashMap::new());
}

/// Makes sure an expiring greenlet of this hub wakes up by `deadline` (the earliest a command
/// set, called once the keyspace is let go). Each hub that sets a deadline sees to it, so with
/// several hubs sharing a keyspace every deadline is covered (the first expirer to wake
/// deletes what is due).
pub fn wake_by<K: Keyspace>(db: &K, deadline: Instant) {
    let existing = EXPIRERS.with(|e| e.borrow().get(&db.id()).cloned());
    match existing {
        Some(x) => {
            if x.until.get().is_none_or(|u| deadline < u) {
                x.earlier.set();
            }
        }
        None => {
            let x = Rc::new(Expirer {
                earlier: Event::new(),
                until: Cell::new(None),
            });
            EXPIRERS.with(|e| e.borrow_mut().insert(db.id(), x.clone()));
            let (weak, id) = (db.downgrade(), db.id());
            greenlet::SpawnBuilder::new()
                .name("redis-expire")
                .spawn(move || expire_loop::<K>(weak, id, x))
                .expect("a stack for the expiring greenlet");
        }
    }
}

/// The expiring greenlet: sleeps until the next deadline (or until an earlier one is set on
/// this hub), deletes what is due; ends with the keyspace, or when nothing is left to expire.
fn expire_loop<K: Keyspace>(weak: K::Weak, id: usize, me: Rc<Expirer>) {
    loop {
        let next = match K::upgrade(&weak) {
            Some(db) => db.with(|s| s.expire_due(Instant::now())),
            None => None,
        };
        let Some(next) = next else {
            EXPIRERS.with(|e| e.borrow_mut().remove(&id));
            return;
        };
        me.until.set(Some(next));
        me.earlier.clear();
        // Timed out: a deadline is due; set: an earlier one came, look again.
        let _ = me
            .earlier
            .wait_timeout(next.saturating_duration_since(Instant::now()));
    }
}
