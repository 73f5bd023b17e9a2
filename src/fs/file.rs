//! [`File`] and [`OpenOptions`]: std's, with every system call on the file pool.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::nowait::NoWait;
use super::{FileTimes, Metadata, Permissions, run};

/// The most bytes one read or write moves to or from the pool thread: larger buffers are
/// served in pieces (a short read or write, as `Read` and `Write` allow), which bounds the
/// pool thread's temporary buffer.
const MAX_CHUNK: usize = 8 << 20;

/// An open file whose reads, writes, seeks and syncs run on the file pool (std's `File`), so
/// that a slow disk parks only the calling greenlet.
///
/// It has std's constructors and methods, `Read`, `Write` and `Seek` for `File` and `&File`,
/// and the descriptor traits. A read first asks the kernel for what the page cache holds,
/// without waiting (`preadv2` with `RWF_NOWAIT`, on the calling thread: as fast as std's read
/// when the data is cached); what is not cached, and every other call, is one hand-over to a
/// pool thread, with the data copied once between your buffer and the pool thread's: use large
/// buffers (a `BufReader` / `BufWriter` around it) for many small pieces. It holds no hub
/// state, so it is `Send` and `Sync` like std's.
///
/// # Examples
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// use greenlet::fs::File;
///
/// let path = std::env::temp_dir().join(format!("greenlet-file-{}", std::process::id()));
/// let mut f = File::create(&path)?;
/// f.write_all(b"hello, file")?;
/// f.sync_all()?;
///
/// let mut f = File::open(&path)?;
/// f.seek(SeekFrom::Start(7))?;
/// let mut rest = String::new();
/// f.read_to_string(&mut rest)?;
/// assert_eq!(rest, "file");
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    /// Shared with the pool job of the current call; a call cut short by a `Timeout` keeps its
    /// clone until its system call returns.
    inner: Arc<std::fs::File>,
    /// Whether reads may be tried without waiting first.
    nowait: NoWait,
}

impl File {
    /// Opens a file for reading (std's `File::open`).
    ///
    /// # Errors
    /// As std's: `NotFound`, `PermissionDenied`, ...; kind `TimedOut` under a
    /// [`Timeout`](crate::Timeout) of the calling greenlet.
    ///
    /// # Examples
    /// ```
    /// let e = greenlet::fs::File::open("/no/such/file").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens a file for writing, creating it or truncating it (std's `File::create`).
    ///
    /// # Errors
    /// As [`open`](File::open).
    ///
    /// # Examples
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-create-{}", std::process::id()));
    /// let f = greenlet::fs::File::create(&path)?;
    /// assert_eq!(f.metadata()?.len(), 0);
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Creates a new file for reading and writing; fails if it exists (std's
    /// `File::create_new`).
    ///
    /// # Errors
    /// `AlreadyExists`, or as [`open`](File::open).
    ///
    /// # Examples
    /// ```
    /// let e = greenlet::fs::File::create_new("/").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    /// ```
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// The options builder (std's `File::options`).
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Runs `op` with the std file on the pool.
    fn on_pool<T: Send + 'static>(
        &self,
        op: impl FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let file = self.inner.clone();
        run(move || op(&file))
    }

    /// Flushes data and metadata to the device (std's `sync_all`).
    ///
    /// # Errors
    /// As std's.
    pub fn sync_all(&self) -> io::Result<()> {
        self.on_pool(std::fs::File::sync_all)
    }

    /// Flushes data to the device (std's `sync_data`).
    ///
    /// # Errors
    /// As std's.
    pub fn sync_data(&self) -> io::Result<()> {
        self.on_pool(std::fs::File::sync_data)
    }

    /// Truncates or extends the file to `size` bytes (std's `set_len`).
    ///
    /// # Errors
    /// As std's (`InvalidInput` for a file not open for writing).
    ///
    /// # Examples
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-setlen-{}", std::process::id()));
    /// let f = greenlet::fs::File::create(&path)?;
    /// f.set_len(1000)?;
    /// assert_eq!(f.metadata()?.len(), 1000);
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.on_pool(move |f| f.set_len(size))
    }

    /// The file's metadata (std's `metadata`).
    ///
    /// # Errors
    /// As std's.
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.on_pool(std::fs::File::metadata)
    }

    /// A second handle on the same open file (std's `try_clone`: shared position and flags).
    ///
    /// # Errors
    /// As std's (out of descriptors).
    ///
    /// # Examples
    /// ```
    /// use std::io::{Seek, SeekFrom};
    /// let path = std::env::temp_dir().join(format!("greenlet-clone-{}", std::process::id()));
    /// let mut f = greenlet::fs::File::create(&path)?;
    /// let mut g = f.try_clone()?;
    /// g.seek(SeekFrom::Start(3))?;
    /// assert_eq!(f.stream_position()?, 3);
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<File> {
        self.on_pool(std::fs::File::try_clone).map(File::from)
    }

    /// Changes the file's permissions (std's `set_permissions`).
    ///
    /// # Errors
    /// As std's.
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.on_pool(move |f| f.set_permissions(perm))
    }

    /// Sets the access and modification times (std's `set_times`).
    ///
    /// # Errors
    /// As std's.
    pub fn set_times(&self, times: FileTimes) -> io::Result<()> {
        self.on_pool(move |f| f.set_times(times))
    }

    /// Sets the modification time (std's `set_modified`).
    ///
    /// # Errors
    /// As std's.
    pub fn set_modified(&self, time: SystemTime) -> io::Result<()> {
        self.on_pool(move |f| f.set_modified(time))
    }

    /// Takes an exclusive advisory lock, parking while another holder has it (std's `lock`).
    ///
    /// # Errors
    /// As std's.
    ///
    /// # Examples
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-lock-{}", std::process::id()));
    /// let f = greenlet::fs::File::create(&path)?;
    /// f.lock()?; // parks this greenlet (not the thread) while another process holds it
    /// f.unlock()?;
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lock(&self) -> io::Result<()> {
        self.on_pool(std::fs::File::lock)
    }

    /// Takes a shared advisory lock, parking while an exclusive holder has it (std's
    /// `lock_shared`).
    ///
    /// # Errors
    /// As std's.
    pub fn lock_shared(&self) -> io::Result<()> {
        self.on_pool(std::fs::File::lock_shared)
    }

    /// Releases this handle's lock (std's `unlock`).
    ///
    /// # Errors
    /// As std's.
    pub fn unlock(&self) -> io::Result<()> {
        self.on_pool(std::fs::File::unlock)
    }

    /// Gives std's `File` back, unless a call cut short by a [`Timeout`](crate::Timeout) still
    /// runs on a pool thread (then `Err(self)`: try again later).
    ///
    /// # Errors
    /// `self`, as above.
    ///
    /// # Examples
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-intostd-{}", std::process::id()));
    /// let f = greenlet::fs::File::create(&path)?;
    /// let std_file: std::fs::File = f.try_into_std().expect("no call in flight");
    /// assert_eq!(std_file.metadata()?.len(), 0);
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_into_std(self) -> Result<std::fs::File, File> {
        let nowait = self.nowait;
        Arc::try_unwrap(self.inner).map_err(|inner| File { inner, nowait })
    }
}

impl File {
    /// A read without waiting, of what the page cache holds (see [`NoWait`]).
    fn read_cached(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        self.nowait.read(self.inner.as_raw_fd(), buf)
    }

    /// A read on the file pool.
    fn read_on_pool(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(MAX_CHUNK);
        let data = self.on_pool(move |mut f| {
            let mut data = vec![0; len];
            let n = f.read(&mut data)?;
            data.truncate(n);
            Ok(data)
        })?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.read_cached(buf) {
            Some(r) => r,
            None => self.read_on_pool(buf),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        // What is cached, on this thread; the rest in one trip per piece instead of one per
        // short read. std's error when the file ends first.
        let mut filled = 0;
        while filled < buf.len() {
            match self.read_cached(&mut buf[filled..]) {
                Some(Ok(0)) => return Err(eof()),
                Some(Ok(n)) => filled += n,
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        for piece in buf[filled..].chunks_mut(MAX_CHUNK) {
            let len = piece.len();
            let (data, result) = self.on_pool(move |mut f| {
                let mut data = vec![0; len];
                let mut got = 0;
                while got < len {
                    match f.read(&mut data[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Ok((data, Err(e))),
                    }
                }
                data.truncate(got);
                Ok((data, Ok(got == len)))
            })?;
            piece[..data.len()].copy_from_slice(&data);
            if !result? {
                return Err(eof());
            }
        }
        Ok(())
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        // What is cached, on this thread, in growing steps.
        let mut step = 64 * 1024;
        loop {
            let old = buf.len();
            buf.resize(old + step, 0);
            match self.read_cached(&mut buf[old..]) {
                Some(Ok(0)) => {
                    buf.truncate(old);
                    return Ok(old - start);
                }
                Some(Ok(n)) => {
                    buf.truncate(old + n);
                    step = (step * 2).min(MAX_CHUNK);
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(old),
                Some(Err(e)) => {
                    buf.truncate(old);
                    return Err(e);
                }
                None => {
                    buf.truncate(old);
                    break;
                }
            }
        }
        // The rest in one trip.
        let data = self.on_pool(|mut f| {
            let mut data = Vec::new();
            f.read_to_end(&mut data)?;
            Ok(data)
        })?;
        buf.extend_from_slice(&data);
        Ok(buf.len() - start)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let mut data = Vec::new();
        self.read_to_end(&mut data)?;
        let s = std::str::from_utf8(&data).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            )
        })?;
        buf.push_str(s);
        Ok(s.len())
    }
}

/// std's error for a `read_exact` that reached the end of the file first.
fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer")
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        self.on_pool(move |mut f| f.write(&data))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        for piece in buf.chunks(MAX_CHUNK) {
            let data = piece.to_vec();
            self.on_pool(move |mut f| f.write_all(&data))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // std's `File` buffers nothing; `sync_all` is the call that reaches the device.
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.on_pool(move |mut f| f.seek(pos))
    }
}

// `Read`, `Write` and `Seek` for `File` are those of `&File`, as in std.
impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        (&*self).read_exact(buf)
    }
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl From<std::fs::File> for File {
    /// Adopts an open std file.
    fn from(f: std::fs::File) -> File {
        File {
            inner: Arc::new(f),
            nowait: NoWait::new(),
        }
    }
}

impl From<OwnedFd> for File {
    /// Adopts an open descriptor.
    fn from(fd: OwnedFd) -> File {
        File::from(std::fs::File::from(fd))
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl FromRawFd for File {
    /// Adopts an open file descriptor.
    ///
    /// # Safety
    /// As std's `File::from_raw_fd`: `fd` must be open and owned by the caller, which hands
    /// its ownership over.
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: the caller's contract is std's.
        File::from(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

impl IntoRawFd for File {
    /// Gives up the descriptor; if a call cut short by a [`Timeout`](crate::Timeout) still
    /// runs on a pool thread, the descriptor given is a duplicate, and the original closes when
    /// that call ends.
    ///
    /// # Panics
    /// If that duplicate cannot be made (out of descriptors).
    fn into_raw_fd(self) -> RawFd {
        match self.try_into_std() {
            Ok(f) => f.into_raw_fd(),
            Err(f) => f
                .inner
                .try_clone()
                .expect("duplicate a file descriptor still in use by a pool thread")
                .into_raw_fd(),
        }
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.inner, f)
    }
}

/// Options for opening a file (std's `OpenOptions`); [`open`](OpenOptions::open) runs on the
/// file pool and gives a green [`File`].
///
/// # Examples
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("greenlet-append-{}", std::process::id()));
/// greenlet::fs::write(&path, "a")?;
/// let mut f = greenlet::fs::OpenOptions::new().append(true).open(&path)?;
/// f.write_all(b"b")?;
/// assert_eq!(greenlet::fs::read_to_string(&path)?, "ab");
/// greenlet::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// Every option off, as std's.
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Open for appending.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate to length 0 on opening.
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it does not exist.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// The permission bits of a file created (std's `OpenOptionsExt::mode`).
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        std::os::unix::fs::OpenOptionsExt::mode(&mut self.0, mode);
        self
    }

    /// Extra `open(2)` flags (std's `OpenOptionsExt::custom_flags`).
    pub fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut self.0, flags);
        self
    }

    /// Opens `path` with these options, on the file pool.
    ///
    /// # Errors
    /// As std's: `NotFound`, `AlreadyExists`, `PermissionDenied`, `IsADirectory` when writing
    /// to a directory, `InvalidInput` for contradictory options; kind `TimedOut` under a
    /// [`Timeout`](crate::Timeout) of the calling greenlet.
    ///
    /// # Examples
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-opts-{}", std::process::id()));
    /// let f = greenlet::fs::OpenOptions::new().write(true).create_new(true).mode(0o600)
    ///     .open(&path)?;
    /// drop(f);
    /// let again = greenlet::fs::OpenOptions::new().write(true).create_new(true).open(&path);
    /// assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// greenlet::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let options = self.0.clone();
        let path = path.as_ref().to_path_buf();
        run(move || options.open(path)).map(File::from)
    }
}
