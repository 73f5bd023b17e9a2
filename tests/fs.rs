//! `greenlet::fs`: std's file functions and a `File` on the file pool. Each call parks only its
//! greenlet: in a child process whose file pool has one thread, every call is queued behind a
//! "slow disk" (a FIFO open that a greenlet releases after a ticker's ticks), so it can only
//! finish after other greenlets ran. Errors are std's, and a slow disk fills only the file
//! pool: spawn_blocking and name lookups go on.

mod util;

use std::ffi::CString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use greenlet::fs::{self, File, OpenOptions};
use util::{TempPath, Ticker, on_fresh_thread};

/// A fresh directory for a test (removed on drop).
fn tmp(tag: &str) -> TempPath {
    TempPath::new(tag)
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Spawns a greenlet that waits for `n` ticks, then writes `data` into the FIFO at `path`
/// (green: the open waits on the file pool until the reader has opened its end).
fn write_fifo_after_ticks(ticker: &Ticker, n: u64, path: PathBuf, data: &'static [u8]) {
    let counter = ticker.counter();
    let target = ticker.ticks() + n;
    greenlet::spawn(move || {
        while counter.get() < target {
            greenlet::sleep(Duration::from_millis(1));
        }
        fs::write(&path, data).unwrap();
    });
}

// ---- waiting parks the greenlet ----

/// A read that cannot finish until another greenlet runs: `fs::read` of a FIFO whose writer
/// is a greenlet that first waits for five ticks.
#[test]
fn read_parks_until_another_greenlet_writes() {
    on_fresh_thread(|| {
        let dir = tmp("fs-fifo");
        let fifo = dir.dir.join("fifo");
        mkfifo(&fifo);
        let ticker = Ticker::start();
        write_fifo_after_ticks(&ticker, 5, fifo.clone(), b"through the fifo");
        assert_eq!(fs::read(&fifo).unwrap(), b"through the fifo");
        assert!(ticker.ticks() >= 5);

        // The same through a `File`: open parks until the writer opens, read until it writes.
        write_fifo_after_ticks(&ticker, 5, fifo.clone(), b"again");
        let before = ticker.ticks();
        let mut f = File::open(&fifo).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "again");
        assert!(ticker.ticks() >= before + 5);
    });
}

/// Every function, `File` method and `ReadDir` parks its greenlet: run in a child process
/// whose file pool has a single thread (see [`SlowDisk`]).
#[test]
fn every_call_parks_while_a_ticker_runs() {
    let run = util::run_test_in_child_with("every_call_child", &[]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("every call parked"), "{}", run.stdout);
    if !run.stdout.contains("uncached reads parked") {
        println!(
            "note: the child could not evict a file from the page cache: uncached reads untested"
        );
    }
}

/// A file pool of one thread, held by a greenlet blocked opening a FIFO; another greenlet
/// releases it after three ticks (opening the writer on the *other* pool, which a slow disk
/// does not hold up). A call made meanwhile is queued behind the held thread, so when it
/// returns the ticker has ticked: the call parked and the hub ran other greenlets.
struct SlowDisk {
    fifo: PathBuf,
    ticker: Ticker,
}

impl SlowDisk {
    fn new(dir: &Path) -> SlowDisk {
        assert_eq!(fs::max_threads(), 1, "run in the child process only");
        let fifo = dir.join("slow-disk");
        mkfifo(&fifo);
        SlowDisk {
            fifo,
            ticker: Ticker::start(),
        }
    }

    /// Holds the pool's one thread (a greenlet blocked opening the FIFO) and starts the
    /// greenlet that releases it after three ticks; returns both and the tick count that
    /// releases it.
    fn hold(
        &self,
    ) -> (
        greenlet::JoinHandle<std::io::Result<Vec<u8>>>,
        greenlet::JoinHandle<()>,
        u64,
    ) {
        let fifo = self.fifo.clone();
        let holder = greenlet::spawn(move || fs::read(&fifo));
        greenlet::yield_now(); // the holder's job goes first and holds the one thread
        let counter = self.ticker.counter();
        let target = self.ticker.ticks() + 3;
        let fifo = self.fifo.clone();
        let releaser = greenlet::spawn(move || {
            while counter.get() < target {
                greenlet::sleep(Duration::from_millis(1));
            }
            greenlet::threadpool::spawn_blocking(move || std::fs::write(fifo, b""))
                .unwrap()
                .unwrap();
        });
        (holder, releaser, target)
    }

    /// Runs `op` behind the held pool thread; asserts it could only finish after three ticks.
    fn run(&self, what: &str, op: &mut dyn FnMut()) {
        let (holder, releaser, target) = self.hold();
        op();
        assert!(
            self.ticker.ticks() >= target,
            "{what} returned before the slow disk was released"
        );
        assert_eq!(holder.get().unwrap().unwrap(), b"");
        releaser.join().unwrap();
    }

    /// Runs `op` while the pool thread is held; asserts it returned without parking at all
    /// (no other greenlet ran: the ticker did not tick).
    fn run_inline(&self, what: &str, op: &mut dyn FnMut()) {
        let (holder, releaser, _) = self.hold();
        let before = self.ticker.ticks();
        op();
        assert_eq!(self.ticker.ticks(), before, "{what} parked");
        assert_eq!(holder.get().unwrap().unwrap(), b"");
        releaser.join().unwrap();
    }
}

/// The body of [`every_call_parks_while_a_ticker_runs`].
#[test]
fn every_call_child() {
    if !util::in_child() {
        return;
    }
    fs::set_max_threads(1);
    on_fresh_thread(|| {
        let dir = tmp("fs-every");
        let d = &dir.dir;
        let slow = SlowDisk::new(d);
        let s = |what: &str, op: &mut dyn FnMut()| slow.run(what, op);
        let a = d.join("a.txt");
        let b = d.join("b.txt");
        s("write", &mut || fs::write(&a, "hello").unwrap());
        s("read", &mut || assert_eq!(fs::read(&a).unwrap(), b"hello"));
        s("read_to_string", &mut || {
            assert_eq!(fs::read_to_string(&a).unwrap(), "hello")
        });
        s("copy", &mut || assert_eq!(fs::copy(&a, &b).unwrap(), 5));
        s("metadata", &mut || {
            assert_eq!(fs::metadata(&b).unwrap().len(), 5)
        });
        let sub = d.join("x/y/z");
        s("create_dir_all", &mut || fs::create_dir_all(&sub).unwrap());
        s("create_dir", &mut || fs::create_dir(d.join("w")).unwrap());
        let moved = sub.join("moved.txt");
        s("rename", &mut || fs::rename(&b, &moved).unwrap());
        s("exists", &mut || assert!(fs::exists(&moved).unwrap()));
        let link = d.join("link");
        s("symlink", &mut || fs::symlink(&a, &link).unwrap());
        s("read_link", &mut || {
            assert_eq!(fs::read_link(&link).unwrap(), a)
        });
        s("symlink_metadata", &mut || {
            let m = fs::symlink_metadata(&link).unwrap();
            assert!(m.file_type().is_symlink());
        });
        s("canonicalize", &mut || {
            let c = fs::canonicalize(&link).unwrap();
            assert_eq!(c, std::fs::canonicalize(&a).unwrap());
        });
        let hard = d.join("hard");
        s("hard_link", &mut || fs::hard_link(&a, &hard).unwrap());
        let mut perm = std::fs::metadata(&a).unwrap().permissions();
        perm.set_readonly(true);
        s("set_permissions", &mut || {
            fs::set_permissions(&a, perm.clone()).unwrap()
        });
        assert!(std::fs::metadata(&a).unwrap().permissions().readonly());
        let mut names = Vec::new();
        s("read_dir", &mut || {
            names = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
        });
        // a.txt, x, w, link, hard and the slow disk's FIFO.
        assert_eq!(names.len(), 6, "{names:?}");
        let entry = std::cell::RefCell::new(None);
        s("ReadDir::next", &mut || {
            *entry.borrow_mut() = fs::read_dir(d)
                .unwrap()
                .find(|e| e.as_ref().is_ok_and(|e| e.file_name() == "a.txt"))
        });
        let entry = entry.into_inner().unwrap().unwrap();
        s("DirEntry::metadata", &mut || {
            assert_eq!(entry.metadata().unwrap().len(), 5)
        });
        s("remove_file", &mut || fs::remove_file(&hard).unwrap());
        s("remove_dir", &mut || fs::remove_dir(d.join("w")).unwrap());
        s("remove_dir_all", &mut || {
            fs::remove_dir_all(d.join("x")).unwrap()
        });

        // File and OpenOptions.
        let path = d.join("f");
        let mut f = None;
        s("File::create", &mut || {
            f = Some(File::create(&path).unwrap())
        });
        let mut f = f.unwrap();
        s("File::write_all", &mut || {
            f.write_all(b"0123456789").unwrap()
        });
        s("File::write", &mut || {
            assert_eq!(f.write(b"ab").unwrap(), 2)
        });
        s("File::sync_all", &mut || f.sync_all().unwrap());
        s("File::sync_data", &mut || f.sync_data().unwrap());
        s("File::set_len", &mut || f.set_len(8).unwrap());
        s("File::metadata", &mut || {
            assert_eq!(f.metadata().unwrap().len(), 8)
        });
        let mut r = None;
        s("OpenOptions::open", &mut || {
            r = Some(OpenOptions::new().read(true).open(&path).unwrap())
        });
        let mut r = r.unwrap();
        s("File::seek", &mut || {
            assert_eq!(r.seek(SeekFrom::Start(2)).unwrap(), 2)
        });
        // Reads of cached data are served on this thread without waiting for the pool;
        // reads of evicted data park on the pool.
        let mut buf = [0u8; 3];
        slow.run_inline("cached File::read", &mut || {
            assert_eq!(r.read(&mut buf).unwrap(), 3)
        });
        assert_eq!(&buf, b"234");
        // Reads that must wait (a FIFO whose writer, a plain thread, writes only when a
        // greenlet tells it to after three ticks) go to the pool and park.
        let data_fifo = d.join("data-fifo");
        mkfifo(&data_fifo);
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let writer = {
            let p = data_fifo.clone();
            std::thread::spawn(move || {
                let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                go_rx.recv().unwrap();
                w.write_all(b"abcd").unwrap();
                go_rx.recv().unwrap();
                w.write_all(b"efgh").unwrap();
                go_rx.recv().unwrap();
            })
        };
        let mut fifo = File::open(&data_fifo).unwrap();
        let go_after_ticks = |what: &str, op: &mut dyn FnMut()| {
            let counter = slow.ticker.counter();
            let target = slow.ticker.ticks() + 3;
            let go = go_tx.clone();
            greenlet::spawn(move || {
                while counter.get() < target {
                    greenlet::sleep(Duration::from_millis(1));
                }
                go.send(()).unwrap();
            });
            op();
            assert!(slow.ticker.ticks() >= target, "{what} did not park");
        };
        let mut four = [0u8; 4];
        go_after_ticks("File::read of a FIFO", &mut || {
            assert_eq!(fifo.read(&mut four).unwrap(), 4)
        });
        assert_eq!(&four, b"abcd");
        go_after_ticks("File::read_exact of a FIFO", &mut || {
            fifo.read_exact(&mut four).unwrap()
        });
        assert_eq!(&four, b"efgh");
        let mut end = Vec::new();
        go_after_ticks("File::read_to_end of a FIFO", &mut || {
            fifo.read_to_end(&mut end).unwrap();
        });
        assert!(end.is_empty());
        writer.join().unwrap();
        r.seek(SeekFrom::Start(4)).unwrap();
        let mut rest = Vec::new();
        slow.run_inline("cached File::read_to_end", &mut || {
            r.read_to_end(&mut rest).unwrap();
        });
        assert_eq!(rest, b"4567");
        s("File::try_clone", &mut || drop(r.try_clone().unwrap()));
        s("File::lock", &mut || r.lock().unwrap());
        s("File::unlock", &mut || r.unlock().unwrap());
        s("File::open", &mut || drop(File::open(&path).unwrap()));
    });
    println!("every call parked");
}

/// `File`: write, seek, read, read_exact, set_len, sync, metadata, try_clone (shared
/// position), append through `OpenOptions`, and `&File` as reader and writer.
#[test]
fn file_reads_writes_and_seeks_on_the_pool() {
    on_fresh_thread(|| {
        let dir = tmp("fs-file");
        let path = dir.dir.join("f");
        let mut f = File::create_new(&path).unwrap();
        f.write_all(b"0123456789").unwrap();
        assert_eq!(f.write(b"ab").unwrap(), 2);
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        assert_eq!(f.seek(SeekFrom::Start(3)).unwrap(), 3);
        let mut three = [0u8; 3];
        f.read_exact(&mut three).unwrap();
        assert_eq!(&three, b"345");
        let mut buf = [0u8; 64];
        let n = f.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"6789ab");
        assert_eq!(f.read(&mut buf).unwrap(), 0, "end of file");
        // read_exact past the end: std's error.
        f.seek(SeekFrom::Start(10)).unwrap();
        let mut four = [0u8; 4];
        let e = f.read_exact(&mut four).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(&four[..2], b"ab");
        f.set_len(4).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 4);
        let clone = f.try_clone().unwrap();
        (&clone).seek(SeekFrom::Start(1)).unwrap();
        assert_eq!(f.stream_position().unwrap(), 1, "clones share the position");
        let mut rest = Vec::new();
        (&f).read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"123");
        drop((f, clone));

        let mut app = OpenOptions::new().append(true).open(&path).unwrap();
        app.write_all(b"-end").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0123-end");

        // Large pieces in one call each way.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut f = File::create(&path).unwrap();
        f.write_all(&big).unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert!(back == big);
        let f = f.try_into_std().expect("no call in flight");
        assert_eq!(f.metadata().unwrap().len(), 3_000_000);
    });
}

/// Advisory locks: a second `lock` parks (its pool thread blocks in `flock`) until the holder
/// unlocks, and the holder's greenlet runs meanwhile.
#[test]
fn lock_waits_for_the_holder_to_unlock() {
    on_fresh_thread(|| {
        let dir = tmp("fs-lock");
        let path = dir.dir.join("lockfile");
        fs::write(&path, "").unwrap();
        let holder = File::open(&path).unwrap();
        holder.lock().unwrap();
        let ticker = Ticker::start();
        let counter = ticker.counter();
        let target = ticker.ticks() + 5;
        let unlocker = greenlet::spawn(move || {
            while counter.get() < target {
                greenlet::sleep(Duration::from_millis(1));
            }
            holder.unlock().unwrap();
            counter.get()
        });
        let other = File::open(&path).unwrap();
        other.lock().unwrap();
        assert!(unlocker.get().unwrap() >= 5);
        assert!(ticker.ticks() >= 5);
        other.unlock().unwrap();
        other.lock_shared().unwrap();
    });
}

/// A listing larger than one batch: every entry comes back once, with its type and inode
/// without a further call, and its metadata from the pool.
#[test]
fn read_dir_in_batches() {
    on_fresh_thread(|| {
        let dir = tmp("fs-readdir");
        for i in 0..600 {
            std::fs::write(dir.dir.join(format!("f{i:03}")), [0u8; 3]).unwrap();
        }
        std::fs::create_dir(dir.dir.join("sub")).unwrap();
        let mut rd = fs::read_dir(&dir.dir).unwrap();
        let dbg = format!("{rd:?}");
        let mut names = Vec::new();
        for e in rd.by_ref() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            assert!(e.ino() > 0);
            if e.file_name() == "sub" {
                assert!(t.is_dir());
            } else {
                assert!(t.is_file());
                assert_eq!(e.metadata().unwrap().len(), 3);
            }
            assert_eq!(e.path().parent(), Some(dir.dir.as_path()));
            names.push(e.file_name().into_string().unwrap());
        }
        assert!(rd.next().is_none());
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 601);
        assert!(dbg.contains("ReadDir"), "{dbg}");
    });
}

// ---- bad input ----

/// Files that do not exist, directories where files are expected and the other way round,
/// invalid UTF-8: std's error kinds.
#[test]
fn missing_files_and_directories_give_std_errors() {
    on_fresh_thread(|| {
        use std::io::ErrorKind::*;
        let dir = tmp("fs-errors");
        let d = &dir.dir;
        let missing = d.join("missing");
        assert_eq!(fs::read(&missing).unwrap_err().kind(), NotFound);
        assert_eq!(File::open(&missing).unwrap_err().kind(), NotFound);
        assert_eq!(fs::metadata(&missing).unwrap_err().kind(), NotFound);
        assert_eq!(fs::remove_file(&missing).unwrap_err().kind(), NotFound);
        assert_eq!(fs::read_dir(&missing).unwrap_err().kind(), NotFound);
        assert!(!fs::exists(&missing).unwrap());
        // A directory where a file is expected.
        assert_eq!(fs::read(d).unwrap_err().kind(), IsADirectory);
        assert_eq!(fs::write(d, "x").unwrap_err().kind(), IsADirectory);
        assert_eq!(File::create(d).unwrap_err().kind(), IsADirectory);
        let mut f = File::open(d).unwrap(); // opening a directory read-only is allowed
        assert_eq!(f.read(&mut [0u8; 8]).unwrap_err().kind(), IsADirectory);
        assert_eq!(fs::remove_file(d).unwrap_err().kind(), IsADirectory);
        // A file where a directory is expected.
        let file = d.join("file");
        fs::write(&file, [0xff, 0xfe]).unwrap();
        assert_eq!(fs::read_dir(&file).unwrap_err().kind(), NotADirectory);
        assert_eq!(
            fs::create_dir(file.join("sub")).unwrap_err().kind(),
            NotADirectory
        );
        assert_eq!(fs::create_dir(&file).unwrap_err().kind(), AlreadyExists);
        assert_eq!(fs::read_to_string(&file).unwrap_err().kind(), InvalidData);
        let mut s = String::from("kept");
        assert_eq!(
            File::open(&file)
                .unwrap()
                .read_to_string(&mut s)
                .unwrap_err()
                .kind(),
            InvalidData
        );
        assert_eq!(s, "kept", "nothing appended on invalid UTF-8");
        assert_eq!(File::create_new(&file).unwrap_err().kind(), AlreadyExists);
        assert_eq!(
            OpenOptions::new().open(&file).unwrap_err().kind(),
            InvalidInput,
            "no access mode"
        );
    });
}

/// A `Timeout` of the calling greenlet ends a file wait with `TimedOut`; the call itself stays
/// on its pool thread until it can finish.
#[test]
fn timeout_ends_the_wait_not_the_call() {
    on_fresh_thread(|| {
        let dir = tmp("fs-timeout");
        let fifo = dir.dir.join("fifo");
        mkfifo(&fifo);
        let t = greenlet::Timeout::start(Some(Duration::from_millis(30)));
        let e = fs::read(&fifo).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(t.is_expired());
        drop(t);
        // Release the pool thread still blocked opening the FIFO for reading.
        let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        drop(w);
    });
}

/// A `File` is `Send` like std's: made on one thread, used on another (with its own hub).
#[test]
fn file_is_send() {
    let dir = tmp("fs-send");
    let path = dir.dir.join("f");
    let f = on_fresh_thread(move || File::create(path).unwrap());
    let n = on_fresh_thread(move || {
        let mut f = f;
        f.write_all(b"moved").unwrap();
        f.metadata().unwrap().len()
    });
    assert_eq!(n, 5);
}

// ---- the pool is bounded and separate ----

/// A slow disk (FIFOs nobody writes, which keep `open` blocked) fills the file pool and delays
/// only file work: spawn_blocking and a name lookup still complete, and a file call made
/// meanwhile finishes only after the blocked ones are released. The pool never runs more
/// threads than its limit. Run in a child process to own the process-wide pools.
#[test]
fn slow_disk_delays_only_file_work() {
    let run = util::run_test_in_child_with("slow_disk_child", &[]);
    assert!(run.success, "child failed:\n{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("slow disk ok"), "{}", run.stdout);
}

/// The body of [`slow_disk_delays_only_file_work`].
#[test]
fn slow_disk_child() {
    if !util::in_child() {
        return;
    }
    fs::set_max_threads(2);
    on_fresh_thread(|| {
        let dir = tmp("fs-slow");
        let fifos: Vec<PathBuf> = (0..4).map(|i| dir.dir.join(format!("fifo{i}"))).collect();
        for f in &fifos {
            mkfifo(f);
        }
        let log = util::Log::new();
        // Four readers for two threads: two block in `open`, two wait in the queue.
        let readers: Vec<_> = fifos
            .iter()
            .cloned()
            .map(|f| {
                let log = log.clone();
                greenlet::spawn(move || {
                    let r = fs::read(&f).unwrap();
                    log.push("fifo read");
                    r
                })
            })
            .collect();
        let meta = {
            let log = log.clone();
            let path = dir.dir.clone();
            greenlet::spawn(move || {
                fs::metadata(&path).unwrap();
                log.push("metadata");
            })
        };
        greenlet::sleep(Duration::from_millis(50));
        let threads = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let comm = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == "greenlet-fs")
            })
            .count();
        assert_eq!(threads, 2, "the file pool is bounded");
        assert!(log.events().is_empty(), "{:?}", log.events());
        // The other pool and DNS are not stuck behind the disk.
        assert_eq!(greenlet::threadpool::spawn_blocking(|| 7).unwrap(), 7);
        use greenlet::net::ToSocketAddrs;
        assert!(("localhost", 80).to_socket_addrs().unwrap().count() > 0);
        assert!(log.events().is_empty(), "{:?}", log.events());
        log.push("released");
        // Release the disk: writers opened from OS threads (std, blocking) one per FIFO.
        let writers: Vec<_> = fifos
            .iter()
            .cloned()
            .map(|f| std::thread::spawn(move || std::fs::write(f, b"x").unwrap()))
            .collect();
        for r in readers {
            assert_eq!(r.get().unwrap(), b"x");
        }
        meta.join().unwrap();
        for w in writers {
            w.join().unwrap();
        }
        let events = log.events();
        assert_eq!(events[0], "released", "{events:?}");
        assert!(events.contains(&"metadata".to_string()), "{events:?}");
    });
    println!("slow disk ok");
}
