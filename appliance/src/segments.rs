//! A shard's log on the filesystem: preallocated segment files in one folder (allocated
//! with `fallocate`, and zero-filled ahead of a log taking small flushes; see
//! [`create_segment`] and [`DmaSegments::zero_ahead`]), opened with O_DIRECT.
//! [`SegmentFiles`] is the blocking `Disk` used for recovery, fsck and export;
//! [`DmaSegments`] is the io_uring path the executors write through while serving.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use glommio::io::{DmaFile, OpenOptions as DmaOpenOptions};
use treehouse_core::disk::{BLOCK_BYTES, Disk};
use treehouse_core::store::{Batch, WRITE_CHUNK_BYTES};

/// Bytes written per zero-fill request.
const ZERO_FILL_CHUNK_BYTES: usize = 1 << 20;

/// The path of segment `index` of a shard folder.
pub fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("segment-{index:06}"))
}

/// Where a segment is made before it is renamed into place, so that a crash or a
/// full disk never leaves a short segment behind.
fn creating_path(segment: &Path) -> PathBuf {
    segment.with_extension("creating")
}

/// The path of a shard's checkpoint file.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint")
}

/// Counts the segment files already present (segment-000000, segment-000001, ...).
fn existing_segments(dir: &Path) -> u64 {
    let mut count = 0;
    while segment_path(dir, count).exists() {
        count += 1;
    }
    count
}

/// Makes a new directory entry durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a shard's checkpoint file, if it has one.
pub fn read_checkpoint(dir: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(checkpoint_path(dir)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces a shard's checkpoint atomically: temp file, fsync, rename, fsync folder.
pub fn write_checkpoint(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join("checkpoint.tmp");
    {
        let file = File::create(&tmp)?;
        file.write_all_at(bytes, 0)?;
        file.sync_data()?;
    }
    std::fs::rename(&tmp, checkpoint_path(dir))?;
    sync_dir(dir)
}

/// A 4 KiB-aligned scratch buffer carved out of a plain `Vec` (no unsafe needed).
struct Aligned {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let storage = vec![0u8; len + BLOCK_BYTES];
        let start = storage.as_ptr().align_offset(BLOCK_BYTES);
        assert!(
            start < BLOCK_BYTES,
            "a Vec<u8> can always be aligned inside its slack"
        );
        Aligned {
            storage,
            start,
            len,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Blocking, O_DIRECT access to a shard's segment files.
pub struct SegmentFiles {
    dir: PathBuf,
    segment_size_bytes: u64,
    files: Vec<File>,
}

impl SegmentFiles {
    /// Opens (creating the folder if needed) the segments of one shard.
    pub fn open(dir: &Path, segment_size_bytes: u64) -> io::Result<Self> {
        assert!(segment_size_bytes.is_multiple_of(BLOCK_BYTES as u64));
        std::fs::create_dir_all(dir)?;
        let mut files = Vec::new();
        for index in 0..existing_segments(dir) {
            files.push(open_direct(&segment_path(dir, index))?);
        }
        Ok(SegmentFiles {
            dir: dir.to_path_buf(),
            segment_size_bytes,
            files,
        })
    }

    /// Opens segments created since this handle was opened (by the serving writer).
    pub fn refresh(&mut self) -> io::Result<()> {
        while segment_path(&self.dir, self.files.len() as u64).exists() {
            let index = self.files.len() as u64;
            self.files
                .push(open_direct(&segment_path(&self.dir, index))?);
        }
        Ok(())
    }

    fn locate(&self, offset: u64, len: usize) -> io::Result<(&File, u64)> {
        let index = offset / self.segment_size_bytes;
        let within = offset % self.segment_size_bytes;
        if within + len as u64 > self.segment_size_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("access at {offset} (+{len}) crosses a segment boundary"),
            ));
        }
        let file = self.files.get(index as usize).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "offset {offset} is past the last segment in {}",
                    self.dir.display()
                ),
            )
        })?;
        Ok((file, within))
    }
}

fn open_direct(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

impl Disk for SegmentFiles {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        // Reads may span segments: split them at each boundary.
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let room = (self.segment_size_bytes - at % self.segment_size_bytes) as usize;
            let len = room.min(buf.len() - done);
            let (file, within) = self.locate(at, len)?;
            let mut scratch = Aligned::new(len);
            file.read_exact_at(scratch.bytes_mut(), within)?;
            buf[done..done + len].copy_from_slice(scratch.bytes());
            done += len;
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let (file, within) = self.locate(offset, buf.len())?;
        let mut scratch = Aligned::new(buf.len());
        scratch.bytes_mut().copy_from_slice(buf);
        file.write_all_at(scratch.bytes(), within)
    }

    fn sync(&mut self) -> io::Result<()> {
        for file in &self.files {
            file.sync_data()?;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.files.len() as u64 * self.segment_size_bytes
    }

    fn ensure_len(&mut self, len: u64) -> io::Result<()> {
        while self.len() < len {
            let path = segment_path(&self.dir, self.files.len() as u64);
            let creating = creating_path(&path);
            let file = open_direct(&creating)?;
            let zeros = Aligned::new(ZERO_FILL_CHUNK_BYTES);
            let mut at = 0;
            while at < self.segment_size_bytes {
                let n = (self.segment_size_bytes - at).min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
                file.write_all_at(&zeros.bytes()[..n], at)?;
                at += n as u64;
            }
            file.sync_all()?;
            std::fs::rename(&creating, &path)?;
            sync_dir(&self.dir)?;
            self.files.push(file);
        }
        Ok(())
    }
}

/// A shard's segments as an offline tool reads them. When a running server owns the
/// shard (`live`), the repairs recovery would make (zeroing a torn tail, which for a live
/// shard is the batch being written right now) are left to the server and not written.
pub struct Snapshot {
    files: SegmentFiles,
    live: bool,
}

impl Snapshot {
    /// Wraps `files`; `live` when a server holds the store.
    pub fn new(files: SegmentFiles, live: bool) -> Self {
        Snapshot { files, live }
    }
}

impl Disk for Snapshot {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.files.read_at(offset, buf)
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if self.live {
            Ok(())
        } else {
            self.files.write_at(offset, buf)
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        if self.live { Ok(()) } else { self.files.sync() }
    }

    fn len(&self) -> u64 {
        self.files.len()
    }

    fn ensure_len(&mut self, len: u64) -> io::Result<()> {
        if self.live && len > self.files.len() {
            let e = "a live shard's log is grown only by its server";
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, e));
        }
        self.files.ensure_len(len)
    }
}

/// io_uring (glommio DMA) access to a shard's segments, for the serving path.
pub struct DmaSegments {
    dir: PathBuf,
    segment_size_bytes: u64,
    files: Vec<Rc<DmaFile>>,
    /// The segment a background task is creating, if any.
    preparing: Rc<Cell<Option<u64>>>,
    /// How many segments are known to exist: those opened, and the next one once the
    /// background task has made it (so that a flush does not ask the file system).
    made: Rc<Cell<u64>>,
    /// Log offset up to which the space past the log end has been zero-filled.
    zeroed_to: Rc<Cell<u64>>,
    /// The log range a background task is still zero-filling, if any.
    zeroing: Rc<Cell<Option<(u64, u64)>>>,
    /// Whether the shard had no segment when opened: only then is its first segment
    /// zeroed whole (a restart does not zero it again).
    fresh: bool,
}

/// A flush of at most this many bytes asks for zero-filled space ahead of the log end.
///
/// A fresh segment's blocks are allocated but unwritten, so the fdatasync after a
/// write into them also commits the extents' conversion to written: a second,
/// dependent device write. For a small flush that doubles its time (the 4 KiB rate
/// falls by a fifth); zero-filling the space ahead first avoids it, at the price of
/// writing every byte twice. A large flush hardly notices the conversion, and
/// zero-filling ahead of it would take half of the disk's bandwidth, so only a log
/// taking small flushes is zero-filled ahead.
const ZERO_AHEAD_FLUSH_MAX_BYTES: u64 = 64 * 1024;

/// How far past the log end zeros are kept, once small flushes ask for them; zeroing
/// starts again when less than half of this is left.
const ZERO_AHEAD_BYTES: u64 = 8 << 20;

/// Zeroing starts at least this far past the log end, so that the flushes right after
/// it seldom wait for a zero-fill chunk they would overlap.
const ZERO_AHEAD_GAP_BYTES: u64 = 256 * 1024;

/// How often a flush that needs a segment still being prepared looks again.
const PREPARING_POLL: Duration = Duration::from_millis(1);

impl DmaSegments {
    /// Opens the segment files that recovery found.
    pub async fn open(dir: &Path, segment_size_bytes: u64) -> io::Result<Self> {
        let mut files = Vec::new();
        for index in 0..existing_segments(dir) {
            files.push(Rc::new(open_dma(&segment_path(dir, index)).await?));
        }
        let made = files.len() as u64;
        Ok(DmaSegments {
            fresh: made == 0,
            dir: dir.to_path_buf(),
            segment_size_bytes,
            files,
            preparing: Rc::new(Cell::new(None)),
            made: Rc::new(Cell::new(made)),
            zeroed_to: Rc::new(Cell::new(0)),
            zeroing: Rc::new(Cell::new(None)),
        })
    }

    /// Makes sure segments cover `len` bytes, creating any that the background
    /// preparer has not already made.
    pub async fn ensure_len(&mut self, len: u64) -> io::Result<()> {
        while (self.files.len() as u64) * self.segment_size_bytes < len {
            let index = self.files.len() as u64;
            while self.preparing.get() == Some(index) {
                glommio::timer::sleep(PREPARING_POLL).await;
            }
            let path = segment_path(&self.dir, index);
            if !path.exists() {
                create_segment(&self.dir, index, self.segment_size_bytes).await?;
            }
            self.files.push(Rc::new(open_dma(&path).await?));
        }
        Ok(())
    }

    /// Once the log end of a shard in use passes half of the last segment, returns a task that creates
    /// the next one, so that rolling over never waits for it.
    pub fn prepare_ahead(&self, log_end: u64) -> Option<impl Future<Output = ()> + 'static> {
        let allocated = self.files.len() as u64 * self.segment_size_bytes;
        let next = self.files.len() as u64;
        // An empty shard makes its first segment when its first change arrives, so
        // that a store with many idle shards does not allocate them all at start.
        let near_end = log_end > 0 && log_end + self.segment_size_bytes / 2 >= allocated;
        if !near_end || self.preparing.get().is_some() || self.made.get() > next {
            return None;
        }
        self.preparing.set(Some(next));
        let (dir, size, preparing, made) = (
            self.dir.clone(),
            self.segment_size_bytes,
            self.preparing.clone(),
            self.made.clone(),
        );
        Some(async move {
            match create_segment(&dir, next, size).await {
                Ok(()) => made.set(made.get().max(next + 1)),
                Err(e) => eprintln!(
                    "treehouse: cannot prepare segment {next} in {}: {e}",
                    dir.display()
                ),
            }
            preparing.set(None);
        })
    }

    /// After a flush of `flushed_bytes` ending at `log_end`, returns a task that
    /// zero-fills the space ahead of the log end, if the flush was small and the zeros
    /// ahead run short (see [`ZERO_AHEAD_FLUSH_MAX_BYTES`]). The task stays within the
    /// segment it starts in and never touches the log below `log_end`; a flush that
    /// would overlap what it is still writing waits for it.
    pub fn zero_ahead(
        &self,
        log_end: u64,
        flushed_bytes: u64,
    ) -> Option<impl Future<Output = ()> + 'static> {
        let zeroed_to = self.zeroed_to.get();
        if flushed_bytes > ZERO_AHEAD_FLUSH_MAX_BYTES
            || self.zeroing.get().is_some()
            || zeroed_to >= log_end + ZERO_AHEAD_BYTES / 2
        {
            return None;
        }
        let size = self.segment_size_bytes;
        let from = zeroed_to.max(log_end + ZERO_AHEAD_GAP_BYTES);
        let index = from / size;
        let segment_end = (index + 1) * size;
        // A new shard's first segment is zeroed whole, in the background after its
        // first small flush (typically its first account's default mailboxes), while
        // the disk is otherwise idle, so that zeros are ready before small mail
        // arrives in bulk. No flush waits for that, as one waited for the whole
        // segment when every segment was zero-filled before use.
        let to = if index == 0 && self.fresh {
            segment_end
        } else {
            (log_end + ZERO_AHEAD_BYTES).min(segment_end)
        };
        let file = self.files.get(index as usize)?.clone();
        if from >= to {
            return None;
        }
        debug_assert!(from.is_multiple_of(BLOCK_BYTES as u64));
        self.zeroing.set(Some((from, to)));
        let (zeroed, zeroing, dir) = (
            self.zeroed_to.clone(),
            self.zeroing.clone(),
            self.dir.clone(),
        );
        let base = index * size;
        Some(async move {
            let done_to = |at: u64| {
                zeroing.set(Some((base + at, to)));
                zeroed.set(base + at);
            };
            let written = match zero_fill(&file, from - base, to - base, done_to).await {
                Ok(()) => file.fdatasync().await.map_err(io::Error::from),
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                eprintln!(
                    "treehouse: cannot zero-fill ahead in {}: {e}",
                    dir.display()
                );
            }
            zeroing.set(None);
        })
    }

    /// Waits while a zero-fill ahead is still writing any of `[offset, end)`.
    async fn wait_for_zeroing(&self, offset: u64, end: u64) {
        while let Some((from, to)) = self.zeroing.get()
            && from < end
            && offset < to
        {
            glommio::timer::sleep(PREPARING_POLL).await;
        }
    }

    /// Writes one batch (aligned, within one segment) and returns once it is durable.
    ///
    /// A batch that fits one DMA buffer of [`WRITE_CHUNK_BYTES`], the usual case, is one
    /// write with `RWF_DSYNC`: it completes when its data, and the file system metadata
    /// needed to read it back, are on stable storage, as a write and an fdatasync would.
    /// That is one io_uring request instead of two, and the sync runs in the kernel's
    /// direct-I/O completion instead of on an io_uring worker thread: 8-17 % less CPU
    /// per delivery here (BENCHMARKS.md, section 5).
    ///
    /// A batch held in parts (a large message body) goes out in chunks, each copied
    /// into a DMA buffer of at most [`WRITE_CHUNK_BYTES`], so the body is never held
    /// twice. The last chunk and an fdatasync of the file, which covers every chunk, are
    /// submitted together as one io_uring link, so the kernel starts the fdatasync as
    /// the write completes, without waiting for this executor to be scheduled in
    /// between.
    pub async fn write_durable(&self, offset: u64, batch: &Batch) -> io::Result<()> {
        let index = (offset / self.segment_size_bytes) as usize;
        let within = offset % self.segment_size_bytes;
        assert!(
            within + batch.len_bytes() <= self.segment_size_bytes,
            "batch crosses a segment"
        );
        let file = self.files.get(index).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("no segment for offset {offset}"),
            )
        })?;
        self.wait_for_zeroing(offset, offset + batch.len_bytes())
            .await;
        let mut at = 0u64;
        while at < batch.len_bytes() {
            let n = (batch.len_bytes() - at).min(WRITE_CHUNK_BYTES as u64) as usize;
            if at + n as u64 == batch.len_bytes() {
                let mut buffer = file.alloc_dma_buffer(n);
                batch.copy_to(at, buffer.as_bytes_mut());
                // The whole batch in one write carries RWF_DSYNC; the last of several
                // chunks is linked to an fdatasync, which covers the earlier ones too.
                let (written, durable) = if at == 0 {
                    let written = file
                        .write_at_dsync(buffer, within)
                        .await
                        .map_err(io::Error::from)?;
                    (written, written == n)
                } else {
                    file.write_at_then_fdatasync(buffer, within + at)
                        .await
                        .map_err(io::Error::from)?
                };
                if durable {
                    return Ok(());
                }
                // A short write (the linked fdatasync is then skipped). Finish the
                // chunk, which reports the error that cut it short, then sync below.
                let done = whole_blocks(written)?;
                write_fully(&file, within + at + done as u64, n - done, |from, out| {
                    batch.copy_to(at + (done as u64) + from, out)
                })
                .await?;
                break;
            }
            write_fully(&file, within + at, n, |from, out| {
                batch.copy_to(at + from, out)
            })
            .await?;
            at += n as u64;
        }
        file.fdatasync().await.map_err(io::Error::from)
    }
}

/// Creates segment `index` under a temporary name, then renames it into place. Its
/// blocks are allocated with `fallocate` (unwritten extents, which read as zeros), so
/// that making it writes nothing; zeros are written later, only where small flushes
/// need them ([`DmaSegments::zero_ahead`]). Where the file system cannot allocate, the
/// segment is zero-filled.
async fn create_segment(dir: &Path, index: u64, size: u64) -> io::Result<()> {
    let path = segment_path(dir, index);
    let creating = creating_path(&path);
    // A crash may have left a half-made segment; fallocate would keep its bytes.
    match std::fs::remove_file(&creating) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let file = open_dma(&creating).await?;
    if file.pre_allocate(size, false).await.is_err() {
        // Zero-filling reports its own error (a full disk, say) if it fails too.
        zero_fill(&file, 0, size, |_| {}).await?;
    }
    file.fdatasync().await.map_err(io::Error::from)?;
    file.rename(&path).await.map_err(io::Error::from)?;
    file.close().await.map_err(io::Error::from)?;
    sync_dir(dir)
}

/// Writes zeros over `[from, to)` of `file` (block-aligned), one shared buffer at a
/// time, calling `done_to` with the file offset up to which zeros are written.
async fn zero_fill(file: &DmaFile, from: u64, to: u64, done_to: impl Fn(u64)) -> io::Result<()> {
    // One zeroed buffer, written again and again: filling copies nothing.
    let mut zeros = file.alloc_dma_buffer(ZERO_FILL_CHUNK_BYTES);
    zeros.as_bytes_mut().fill(0);
    let zeros = Rc::new(zeros);
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
        let written = if n == ZERO_FILL_CHUNK_BYTES {
            file.write_rc_at(zeros.clone(), at)
                .await
                .map_err(io::Error::from)?
        } else {
            0
        };
        if written < n {
            // A short write or a last partial chunk: the rest as any other write.
            let done = written - written % BLOCK_BYTES;
            write_fully(file, at + done as u64, n - done, |_, out| out.fill(0)).await?;
        }
        at += n as u64;
        done_to(at);
    }
    Ok(())
}

/// Writes `len` bytes at `offset`, which `fill(from, out)` copies into each DMA buffer
/// (`out` holds the bytes from `from` on); continues after short writes so that the
/// error that stopped one (ENOSPC, EIO) is the one reported.
async fn write_fully(
    file: &DmaFile,
    offset: u64,
    len: usize,
    fill: impl Fn(u64, &mut [u8]),
) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        let mut buffer = file.alloc_dma_buffer(len - done);
        fill(done as u64, buffer.as_bytes_mut());
        let written = file
            .write_at(buffer, offset + done as u64)
            .await
            .map_err(io::Error::from)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the disk accepted no bytes",
            ));
        }
        done += whole_blocks(written)?;
    }
    Ok(())
}

/// The bytes a short O_DIRECT write took, which must be whole blocks so that the next
/// write stays aligned.
fn whole_blocks(written: usize) -> io::Result<usize> {
    if !written.is_multiple_of(BLOCK_BYTES) {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "unaligned short write",
        ));
    }
    Ok(written)
}

async fn open_dma(path: &Path) -> io::Result<DmaFile> {
    DmaOpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .dma_open(path)
        .await
        .map_err(io::Error::from)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use treehouse_core::store::{Op, Shard, ShardConfig};

    /// An empty folder of its own for one test.
    pub(crate) fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("treehouse-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    /// An append of `body` to the INBOX of `a@example.test`.
    pub(crate) fn append(body: Vec<u8>) -> Op {
        Op::Append {
            account: "a@example.test".into(),
            mailbox: "INBOX".into(),
            flags: Vec::new(),
            internal_date: 0,
            meta: Vec::new(),
            body,
        }
    }

    /// The bodies of INBOX, oldest first, as recovery finds them in `dir`.
    fn recovered_bodies(dir: &Path, cfg: ShardConfig) -> Vec<Vec<u8>> {
        let mut disk = SegmentFiles::open(dir, cfg.segment_size_bytes).expect("reopen");
        let (shard, _) = Shard::open(&mut disk, None, cfg).expect("recover");
        let inbox = shard.mailbox("a@example.test", "INBOX").expect("inbox");
        let uids: Vec<_> = inbox.messages.keys().copied().collect();
        uids.into_iter()
            .map(|uid| {
                shard
                    .read_body(&mut disk, "a@example.test", "INBOX", uid)
                    .expect("body")
            })
            .collect()
    }

    #[test]
    fn segments_grow_zero_filled_and_round_trip() {
        let dir = std::env::temp_dir().join(format!("treehouse-seg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let segment = 64 * 1024;
        let mut disk = SegmentFiles::open(&dir, segment).expect("open");
        assert_eq!(disk.len(), 0);
        disk.ensure_len(segment + 1).expect("grow");
        assert_eq!(disk.len(), 2 * segment);
        let block = vec![7u8; BLOCK_BYTES];
        disk.write_at(segment, &block).expect("write");
        disk.sync().expect("sync");
        let mut back = vec![1u8; 2 * BLOCK_BYTES];
        disk.read_at(segment - BLOCK_BYTES as u64, &mut back)
            .expect("read across");
        assert!(back[..BLOCK_BYTES].iter().all(|b| *b == 0));
        assert_eq!(&back[BLOCK_BYTES..], &block[..]);
        let reopened = SegmentFiles::open(&dir, segment).expect("reopen");
        assert_eq!(reopened.len(), 2 * segment);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A batch larger than one write chunk goes out as several writes, the last linked
    /// to the fdatasync; recovery must find all of it.
    #[test]
    fn a_batch_of_several_chunks_is_written_whole() {
        let dir = fresh_dir("chunks");
        let segment = 8 * WRITE_CHUNK_BYTES as u64;
        let cfg = ShardConfig {
            segment_size_bytes: segment,
            flush_batch_max_bytes: segment / 2,
        };
        // Two and a half chunks of a pattern no block repeats at the same offset.
        let big: Vec<u8> = (0..5 * WRITE_CHUNK_BYTES / 2)
            .map(|i| (i % 251) as u8)
            .collect();
        let small = b"Subject: small\r\n\r\nhi\r\n".to_vec();
        let mut disk = SegmentFiles::open(&dir, segment).expect("open");
        let (mut shard, _) = Shard::open(&mut disk, None, cfg).expect("shard");
        shard.stage(append(big.clone())).expect("stage big");
        shard.stage(append(small.clone())).expect("stage small");
        let job = shard.begin_flush().expect("a batch");
        assert!(job.batch.len_bytes() > 2 * WRITE_CHUNK_BYTES as u64);
        let at = dir.clone();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut segments = DmaSegments::open(&at, segment).await.expect("open");
                segments.ensure_len(job.ensure_len).await.expect("create");
                segments
                    .write_durable(job.offset, &job.batch)
                    .await
                    .expect("write");
            })
            .expect("executor")
            .join()
            .expect("join");
        let back = recovered_bodies(&dir, cfg);
        assert_eq!(back.len(), 2);
        assert!(back[0] == big, "the large body comes back as written");
        assert_eq!(back[1], small);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn created_segments_are_whole_and_all_zeros() {
        let dir = fresh_dir("dmaseg");
        // Two whole zero-fill chunks and a part of one.
        let size = 2 * ZERO_FILL_CHUNK_BYTES as u64 + 3 * BLOCK_BYTES as u64;
        // A crash may leave half-made segments with old bytes under the temporary name:
        // the first is zero-filled, the second allocated.
        let creating: Vec<_> = (0..2)
            .map(|i| creating_path(&segment_path(&dir, i)))
            .collect();
        for path in &creating {
            std::fs::write(path, vec![0xa5u8; size as usize]).expect("leftover");
        }
        let made = dir.clone();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut segments = DmaSegments::open(&made, size).await.expect("open");
                segments.ensure_len(size + 1).await.expect("create");
            })
            .expect("executor")
            .join()
            .expect("join");
        for (index, path) in creating.iter().enumerate() {
            let bytes = std::fs::read(segment_path(&dir, index as u64)).expect("read");
            assert_eq!(bytes.len() as u64, size, "segment {index}");
            assert!(bytes.iter().all(|b| *b == 0), "segment {index}");
            assert!(!path.exists());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Zeros written ahead of the log never land on mail: a flush that overlaps a
    /// zero-fill still in progress waits for it.
    #[test]
    fn zeroing_ahead_never_overwrites_a_flush() {
        let dir = fresh_dir("zero");
        let segment = 1 << 20;
        let cfg = ShardConfig {
            segment_size_bytes: segment,
            flush_batch_max_bytes: segment,
        };
        let pattern = |len: usize, seed: usize| -> Vec<u8> {
            (0..len).map(|i| ((i + seed) % 251) as u8 + 1).collect()
        };
        // Fills most of the first segment, so that the next batch starts the second.
        let bodies = [
            pattern(1020 * 1024, 0),
            b"Subject: small\r\n\r\nhi\r\n".to_vec(),
            pattern(600 * 1024, 7),
        ];
        let mut disk = SegmentFiles::open(&dir, segment).expect("open");
        let (mut shard, _) = Shard::open(&mut disk, None, cfg).expect("shard");
        let mut jobs = Vec::new();
        for body in &bodies {
            shard.stage(append(body.clone())).expect("stage");
            let job = shard.begin_flush().expect("a batch");
            shard.finish_flush(Ok(()));
            jobs.push(job);
        }
        assert_eq!(
            jobs[1].offset, segment,
            "the small batch opens the second segment"
        );
        let at = dir.clone();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let mut segments = DmaSegments::open(&at, segment).await.expect("open");
                let mut zeroing = None;
                for job in &jobs {
                    segments.ensure_len(job.ensure_len).await.expect("create");
                    segments
                        .write_durable(job.offset, &job.batch)
                        .await
                        .expect("write");
                    let end = job.offset + job.batch.len_bytes();
                    if zeroing.is_some() {
                        // The flush overlapping the zero-fill went out after it.
                        assert!(segments.zeroed_to.get() >= end);
                    }
                    if let Some(task) = segments.zero_ahead(end, job.batch.len_bytes()) {
                        zeroing = Some(glommio::spawn_local(task));
                    }
                }
                zeroing.expect("the small flush zero-fills ahead").await;
            })
            .expect("executor")
            .join()
            .expect("join");
        let back = recovered_bodies(&dir, cfg);
        assert_eq!(back.len(), bodies.len());
        for (i, (back, body)) in back.iter().zip(&bodies).enumerate() {
            assert!(back == body, "message {i} comes back as written");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
