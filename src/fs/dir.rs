//! Directory listings: [`ReadDir`] reads entries on the file pool in batches, and each
//! [`DirEntry`] carries what std's gives without another system call.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::PathBuf;

use super::{FileType, Metadata, run};

/// How many entries one trip to the pool reads.
const BATCH: usize = 256;

/// An entry of a directory (std's `DirEntry`): its path, name and inode number are known
/// without a system call, as is its file type on file systems that report it while listing;
/// [`metadata`](DirEntry::metadata) runs on the file pool.
///
/// # Examples
/// ```
/// for entry in greenlet::fs::read_dir("/")? {
///     let entry = entry?;
///     assert!(entry.path().starts_with("/"));
///     let _kind = entry.file_type()?; // no system call on most file systems
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DirEntry {
    path: PathBuf,
    ino: u64,
    /// Known from the listing (`d_type`), or `None` when the file system did not say.
    file_type: Option<FileType>,
}

impl DirEntry {
    fn from_std(e: &std::fs::DirEntry) -> DirEntry {
        // std's `file_type` answers from `d_type` when there is one and makes an `lstat`
        // otherwise; here that runs on the pool thread, during the listing.
        DirEntry {
            path: e.path(),
            ino: e.ino(),
            file_type: e.file_type().ok(),
        }
    }

    /// The full path: the directory given to [`read_dir`](super::read_dir) joined with the
    /// entry's name.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's name, without the directory.
    pub fn file_name(&self) -> OsString {
        self.path
            .file_name()
            .map(OsString::from)
            .unwrap_or_default()
    }

    /// The inode number (std's `DirEntryExt::ino`).
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The entry's file type, not following symbolic links (std's `DirEntry::file_type`).
    ///
    /// # Errors
    /// When the listing did not give the type and the `lstat` for it, run on the file pool,
    /// fails (the entry was removed meanwhile, say).
    pub fn file_type(&self) -> io::Result<FileType> {
        match self.file_type {
            Some(t) => Ok(t),
            None => self.metadata().map(|m| m.file_type()),
        }
    }

    /// The entry's metadata, not following symbolic links (std's `DirEntry::metadata`), read
    /// on the file pool.
    ///
    /// # Errors
    /// As [`symlink_metadata`](super::symlink_metadata).
    pub fn metadata(&self) -> io::Result<Metadata> {
        super::symlink_metadata(&self.path)
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path).finish()
    }
}

/// The next entries of `dir`, up to a batch; fewer only at its end (or after an error, which
/// is the batch's last item).
pub(super) fn next_batch(dir: &mut std::fs::ReadDir) -> Vec<io::Result<DirEntry>> {
    let mut batch = Vec::new();
    for entry in dir.by_ref() {
        let failed = entry.is_err();
        batch.push(entry.map(|e| DirEntry::from_std(&e)));
        if failed || batch.len() == BATCH {
            break;
        }
    }
    batch
}

/// An iterator over a directory's entries (std's `ReadDir`), fetched from the file pool in
/// batches of 256 so that a large directory costs one hand-over per batch; iterating parks
/// the calling greenlet only when a batch runs out.
///
/// If a fetch fails (a [`Timeout`](crate::Timeout) ran out while it waited, say), the error is
/// the next item and the iteration ends: the listing stayed with the pool thread.
///
/// # Examples
/// ```
/// let mut names: Vec<_> = greenlet::fs::read_dir("/")?
///     .map(|e| e.map(|e| e.file_name()))
///     .collect::<Result<_, _>>()?;
/// names.sort();
/// assert!(names.iter().any(|n| n == "tmp"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReadDir {
    /// std's listing, between fetches; `None` at the end.
    inner: Option<std::fs::ReadDir>,
    ready: VecDeque<io::Result<DirEntry>>,
}

impl ReadDir {
    pub(super) fn new(inner: std::fs::ReadDir, batch: Vec<io::Result<DirEntry>>) -> ReadDir {
        let ended = batch.len() < BATCH;
        ReadDir {
            inner: (!ended).then_some(inner),
            ready: batch.into(),
        }
    }
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        if let Some(e) = self.ready.pop_front() {
            return Some(e);
        }
        let mut inner = self.inner.take()?;
        match run(move || {
            let batch = next_batch(&mut inner);
            Ok((inner, batch))
        }) {
            Ok((inner, batch)) => {
                if batch.len() == BATCH {
                    self.inner = Some(inner);
                }
                self.ready = batch.into();
                self.ready.pop_front()
            }
            Err(e) => Some(Err(e)),
        }
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir")
            .field("buffered", &self.ready.len())
            .field("done", &self.inner.is_none())
            .finish()
    }
}
