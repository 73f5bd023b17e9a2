//! Files and directories without blocking the hub: std's `std::fs` functions and a [`File`],
//! run on a thread pool of their own.
//!
//! Regular files cannot be waited on the way sockets are (the kernel reports them always
//! ready, and a read that must go to the disk blocks the thread however it is asked), so every
//! call here runs std's own function on a pool thread while the calling greenlet parks, as
//! gevent's `FileObjectThread` does; the one exception is a [`File`] read of data the page
//! cache holds, which the kernel serves without waiting (below). The names, signatures and
//! errors are `std::fs`'s:
//!
//! ```
//! use greenlet::fs;
//!
//! let dir = std::env::temp_dir().join(format!("greenlet-fs-doc-{}", std::process::id()));
//! fs::create_dir_all(&dir)?;
//! fs::write(dir.join("a.txt"), "hello")?;          // parks this greenlet, not the thread
//! assert_eq!(fs::read_to_string(dir.join("a.txt"))?, "hello");
//! fs::copy(dir.join("a.txt"), dir.join("b.txt"))?;
//! let names: Vec<_> = fs::read_dir(&dir)?.map(|e| e.unwrap().file_name()).collect();
//! assert_eq!(names.len(), 2);
//! assert_eq!(fs::metadata(dir.join("b.txt"))?.len(), 5);
//! fs::remove_dir_all(&dir)?;
//! assert!(!fs::exists(&dir)?);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The file pool
//!
//! The pool is bounded ([`set_max_threads`], [`DEFAULT_MAX_THREADS`] by default) and separate
//! from [`threadpool::spawn_blocking`](crate::threadpool::spawn_blocking)'s, which also
//! resolves host names: a slow or hung disk (a dead network mount, a FIFO nobody opens) fills
//! only this pool, and delays only other file work, never DNS or your own blocking jobs.
//!
//! # Costs and what differs from std
//!
//! - Each call is a hand-over to a pool thread and back (microseconds, more on a loaded
//!   machine), and reads and writes through a [`File`] copy the data once between the
//!   caller's buffer and the pool thread's. Read and write in large pieces (wrap the `File` in
//!   a `BufReader` / `BufWriter`, or use [`read()`] / [`write()`] for whole files).
//! - A [`File`] read first asks for what the page cache holds without waiting
//!   (`preadv2(RWF_NOWAIT)`, Linux 4.14+, on file systems that support it): that part is read
//!   on the calling thread at std's speed, and only what must come from the disk goes to the
//!   pool. Such a read never waits for the disk or a lock (the kernel answers `EAGAIN`
//!   instead), so it cannot stall the hub.
//! - A [`Timeout`](crate::Timeout) of the calling greenlet ends the wait with an error of kind
//!   `TimedOut`, but not the system call: it finishes on its pool thread (a write still
//!   happens, a read's data is dropped and the file position has moved).
//! - When the hub is stopped, a waiting call fails with kind `Other` wrapping the
//!   [`LoopExit`](crate::LoopExit); the operation itself completes on the pool.
//! - A [`File`] holds no hub state, so it is `Send` and `Sync` like std's.

mod dir;
mod file;
mod nowait;

use std::io;
use std::path::{Path, PathBuf};

use crate::threadpool::{BlockingError, Pool, run_on};

pub use self::dir::{DirEntry, ReadDir};
pub use self::file::{File, OpenOptions};
pub use std::fs::{FileTimes, FileType, Metadata, Permissions};

/// The default number of file-pool threads.
pub const DEFAULT_MAX_THREADS: usize = 8;

static FILES: Pool = Pool::new("greenlet-fs", DEFAULT_MAX_THREADS);

/// Sets the most threads the file pool may run at once (at least 1), for the whole process;
/// the last setting wins. As for [`threadpool::set_max_threads`], lowering it stops no thread
/// that is running.
///
/// [`threadpool::set_max_threads`]: crate::threadpool::set_max_threads
///
/// # Examples
/// ```
/// greenlet::fs::set_max_threads(4);
/// assert_eq!(greenlet::fs::max_threads(), 4);
/// ```
pub fn set_max_threads(n: usize) {
    FILES.set_max_threads(n);
}

/// The most threads the file pool may run at once.
///
/// # Examples
/// ```
/// assert!(greenlet::fs::max_threads() >= 1);
/// ```
pub fn max_threads() -> usize {
    FILES.max_threads()
}

/// Runs `op` on the file pool, parking the calling greenlet until it returns.
pub(crate) fn run<T, F>(op: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    run_on(&FILES, op).map_err(|e| match e {
        BlockingError::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            "the greenlet's Timeout expired (the file operation goes on on its thread)",
        ),
        BlockingError::Interrupted(e) => io::Error::other(e),
        BlockingError::Killed => io::Error::other(crate::Killed),
        BlockingError::Spawn(e) => e,
        BlockingError::Panicked(p) => io::Error::other(p.to_string()),
    })?
}

/// Declares green forms of std's path functions: each runs std's function with owned
/// arguments on the file pool. `$arg: $ty => $conv` converts a borrowed argument to what is
/// moved to the pool thread; `$example` is the body of the function's doctest, run in a
/// fresh directory `dir` (removed afterwards) with a file `dir/a` holding `hello`.
macro_rules! on_pool {
    ($(
        $(#[$doc:meta])*
        $name:ident<$($gen:ident: $bound:path),*>($($arg:ident: $ty:ty => $conv:expr),*) -> $ret:ty
            = $std:path;
        example: $example:literal;
    )*) => {$(
        $(#[$doc])*
        ///
        /// # Errors
        /// As std's; kind `TimedOut` under a [`Timeout`](crate::Timeout) of the calling
        /// greenlet (the operation completes on its pool thread).
        ///
        /// # Examples
        #[doc = concat!(
            "```\nuse greenlet::fs;\n",
            "# let dir = std::env::temp_dir().join(format!(\"greenlet-doc-",
            stringify!($name), "-{}\", std::process::id()));\n",
            "# std::fs::create_dir_all(&dir)?;\n",
            "# std::fs::write(dir.join(\"a\"), \"hello\")?;\n",
            $example,
            "\n# std::fs::remove_dir_all(&dir)?;\n",
            "# Ok::<(), std::io::Error>(())\n```"
        )]
        pub fn $name<$($gen: $bound),*>($($arg: $ty),*) -> io::Result<$ret> {
            $(let $arg = $conv;)*
            run(move || $std($($arg),*))
        }
    )*};
}

fn owned(p: impl AsRef<Path>) -> PathBuf {
    p.as_ref().to_path_buf()
}

on_pool! {
    /// Reads a whole file into a vector (std's `fs::read`).
    read<P: AsRef<Path>>(path: P => owned(path)) -> Vec<u8> = std::fs::read;
    example: "assert_eq!(fs::read(dir.join(\"a\"))?, b\"hello\");";
    /// Reads a whole UTF-8 file into a string (std's `fs::read_to_string`).
    read_to_string<P: AsRef<Path>>(path: P => owned(path)) -> String = std::fs::read_to_string;
    example: "assert_eq!(fs::read_to_string(dir.join(\"a\"))?, \"hello\");";
    /// Copies a file's contents and permissions; returns the bytes copied (std's `fs::copy`).
    copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P => owned(from), to: Q => owned(to)) -> u64
        = std::fs::copy;
    example: "assert_eq!(fs::copy(dir.join(\"a\"), dir.join(\"b\"))?, 5);";
    /// Metadata of a path, following symbolic links (std's `fs::metadata`).
    metadata<P: AsRef<Path>>(path: P => owned(path)) -> Metadata = std::fs::metadata;
    example: "let m = fs::metadata(dir.join(\"a\"))?;\nassert!(m.is_file() && m.len() == 5);";
    /// Metadata of a path without following a final symbolic link (std's
    /// `fs::symlink_metadata`).
    symlink_metadata<P: AsRef<Path>>(path: P => owned(path)) -> Metadata
        = std::fs::symlink_metadata;
    example: "fs::symlink(\"a\", dir.join(\"l\"))?;\n\
              assert!(fs::symlink_metadata(dir.join(\"l\"))?.file_type().is_symlink());";
    /// Removes a file (std's `fs::remove_file`).
    remove_file<P: AsRef<Path>>(path: P => owned(path)) -> () = std::fs::remove_file;
    example: "fs::remove_file(dir.join(\"a\"))?;\nassert!(!fs::exists(dir.join(\"a\"))?);";
    /// Removes an empty directory (std's `fs::remove_dir`).
    remove_dir<P: AsRef<Path>>(path: P => owned(path)) -> () = std::fs::remove_dir;
    example: "fs::create_dir(dir.join(\"d\"))?;\nfs::remove_dir(dir.join(\"d\"))?;";
    /// Removes a directory and everything in it (std's `fs::remove_dir_all`).
    remove_dir_all<P: AsRef<Path>>(path: P => owned(path)) -> () = std::fs::remove_dir_all;
    example: "fs::create_dir_all(dir.join(\"d/e\"))?;\nfs::remove_dir_all(dir.join(\"d\"))?;";
    /// Creates a directory (std's `fs::create_dir`).
    create_dir<P: AsRef<Path>>(path: P => owned(path)) -> () = std::fs::create_dir;
    example: "fs::create_dir(dir.join(\"d\"))?;\n\
              assert_eq!(fs::create_dir(dir.join(\"d\")).unwrap_err().kind(), \
              std::io::ErrorKind::AlreadyExists);";
    /// Creates a directory and its missing parents (std's `fs::create_dir_all`).
    create_dir_all<P: AsRef<Path>>(path: P => owned(path)) -> () = std::fs::create_dir_all;
    example: "fs::create_dir_all(dir.join(\"d/e/f\"))?;\nassert!(fs::metadata(dir.join(\"d/e/f\"))?.is_dir());";
    /// Renames a file or directory, replacing `to` if it is a file (std's `fs::rename`).
    rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P => owned(from), to: Q => owned(to)) -> ()
        = std::fs::rename;
    example: "fs::rename(dir.join(\"a\"), dir.join(\"b\"))?;\nassert_eq!(fs::read(dir.join(\"b\"))?, b\"hello\");";
    /// Makes a hard link `link` to `original` (std's `fs::hard_link`).
    hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P => owned(original), link: Q => owned(link))
        -> () = std::fs::hard_link;
    example: "fs::hard_link(dir.join(\"a\"), dir.join(\"h\"))?;\nassert_eq!(fs::read(dir.join(\"h\"))?, b\"hello\");";
    /// Makes a symbolic link `link` to `original` (std's `os::unix::fs::symlink`).
    symlink<P: AsRef<Path>, Q: AsRef<Path>>(original: P => owned(original), link: Q => owned(link))
        -> () = std::os::unix::fs::symlink;
    example: "fs::symlink(\"a\", dir.join(\"l\"))?;\nassert_eq!(fs::read(dir.join(\"l\"))?, b\"hello\");";
    /// The target of a symbolic link (std's `fs::read_link`).
    read_link<P: AsRef<Path>>(path: P => owned(path)) -> PathBuf = std::fs::read_link;
    example: "fs::symlink(\"a\", dir.join(\"l\"))?;\nassert_eq!(fs::read_link(dir.join(\"l\"))?, std::path::Path::new(\"a\"));";
    /// The absolute path with every symbolic link resolved (std's `fs::canonicalize`).
    canonicalize<P: AsRef<Path>>(path: P => owned(path)) -> PathBuf = std::fs::canonicalize;
    example: "assert!(fs::canonicalize(dir.join(\"a\"))?.is_absolute());";
    /// Whether a path exists; unlike `Path::exists`, errors other than "not found" are
    /// reported (std's `fs::exists`).
    exists<P: AsRef<Path>>(path: P => owned(path)) -> bool = std::fs::exists;
    example: "assert!(fs::exists(dir.join(\"a\"))?);\nassert!(!fs::exists(dir.join(\"nothing\"))?);";
}

/// Changes the permissions of a file or directory (std's `fs::set_permissions`).
///
/// # Errors
/// As std's; kind `TimedOut` under a [`Timeout`](crate::Timeout) of the calling greenlet (the
/// change completes on its pool thread).
///
/// # Examples
/// ```
/// use std::os::unix::fs::PermissionsExt;
/// let path = std::env::temp_dir().join(format!("greenlet-perm-{}", std::process::id()));
/// greenlet::fs::write(&path, "")?;
/// greenlet::fs::set_permissions(&path, greenlet::fs::Permissions::from_mode(0o600))?;
/// assert_eq!(greenlet::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    let path = owned(path);
    run(move || std::fs::set_permissions(path, perm))
}

/// Writes `contents` as the whole file, creating or truncating it (std's `fs::write`). The
/// contents are copied once, to the pool thread.
///
/// # Errors
/// As [`std::fs::write`]; kind `TimedOut` under a [`Timeout`](crate::Timeout) of the calling
/// greenlet (the write completes on its pool thread).
///
/// # Examples
/// ```
/// let path = std::env::temp_dir().join(format!("greenlet-write-{}", std::process::id()));
/// greenlet::fs::write(&path, b"bytes")?;
/// assert_eq!(greenlet::fs::read(&path)?, b"bytes");
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let path = owned(path);
    let contents = contents.as_ref().to_vec();
    run(move || std::fs::write(path, contents))
}

/// The entries of a directory, read on the file pool in batches (std's `fs::read_dir`); see
/// [`ReadDir`].
///
/// # Errors
/// As [`std::fs::read_dir`]: `NotFound`, `NotADirectory`, `PermissionDenied`; kind `TimedOut`
/// under a [`Timeout`](crate::Timeout) of the calling greenlet.
///
/// # Examples
/// ```
/// let n = greenlet::fs::read_dir("/")?.filter_map(Result::ok).count();
/// assert!(n > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    let path = owned(path);
    let (inner, batch) = run(move || {
        let mut inner = std::fs::read_dir(path)?;
        let batch = dir::next_batch(&mut inner);
        Ok((inner, batch))
    })?;
    Ok(ReadDir::new(inner, batch))
}
