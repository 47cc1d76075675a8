//! The block device a shard's log lives on: the [`Disk`] trait, and [`SimDisk`], a
//! deterministic simulated disk that tears writes, fails syncs, fills up and stalls.
//!
//! A shard's log space is one linear byte range made of fixed-size segments (files or a
//! raw device region). All access is [`BLOCK_BYTES`]-aligned, as O_DIRECT requires.

use std::io;

/// Alignment and granularity of every disk access, in bytes.
pub const BLOCK_BYTES: usize = 4096;

/// Granularity at which a [`SimDisk`] tears an interrupted write, in bytes.
pub const SECTOR_BYTES: usize = 512;

/// A shard's log space: a linear byte range made of segments (files or a raw device region).
pub trait Disk {
    /// Reads buf.len() bytes at offset; offset and len are multiples of BLOCK_BYTES.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes buf at offset; offset and len multiples of BLOCK_BYTES; never crosses a segment boundary.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Makes every completed write durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Bytes currently allocated (zero-filled, readable).
    fn len(&self) -> u64;
    /// Whether no space is allocated yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Grows the allocated, zero-filled space to at least `len` bytes (new segments). ENOSPC possible.
    fn ensure_len(&mut self, len: u64) -> io::Result<()>;
}

/// Whether an I/O error means "out of space" (ENOSPC, EDQUOT), a condition that can pass.
pub fn is_no_space(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || error.raw_os_error() == Some(28)
}

/// SplitMix64: a tiny, deterministic pseudo-random generator for simulations.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next pseudo-random 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A pseudo-random value in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "SplitMix64::below needs a positive bound");
        self.next_u64() % bound
    }
}

/// What a crash or a failed sync did to one unsynced write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFate {
    /// Every sector reached the medium.
    Kept,
    /// No sector reached the medium.
    Lost,
    /// Some sectors reached the medium, others kept their old contents.
    Torn,
}

#[derive(Debug, Clone)]
struct UnsyncedWrite {
    offset: u64,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct Stall {
    ops_left: u32,
    delay_ms_per_op: u64,
    accrued_ms: u64,
}

/// A deterministic simulated disk: what a seed decides, it decides the same way every run.
///
/// It keeps two images: `current` (what reads see, like the page cache) and `durable`
/// (what survives a crash). Writes land in `current` and are queued as unsynced; `sync`
/// copies them to `durable`. [`SimDisk::crash`] resolves each unsynced write by the seed
/// (kept whole, lost whole, or torn at [`SECTOR_BYTES`] granularity) and drops `current`.
/// A failed sync resolves its writes the same way but leaves `current` as it was: reads
/// go on showing data that may not be durable, as a page cache does after an fsync error.
/// Growth ([`Disk::ensure_len`]) allocates whole segments and is durable at once, as a
/// preallocated, synced segment file is. Misaligned access and writes that cross a
/// segment boundary break the [`Disk`] contract and panic.
#[derive(Debug, Clone)]
pub struct SimDisk {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<UnsyncedWrite>,
    capacity_bytes: u64,
    segment_size_bytes: u64,
    rng: SplitMix64,
    syncs_to_fail: u32,
    writes_to_fail: u32,
    stall: Stall,
    fates: Vec<WriteFate>,
}

impl SimDisk {
    /// An empty disk that can grow to `capacity_bytes`, in segments of `segment_size_bytes`.
    pub fn new(seed: u64, capacity_bytes: u64, segment_size_bytes: u64) -> Self {
        assert!(
            segment_size_bytes > 0 && segment_size_bytes.is_multiple_of(BLOCK_BYTES as u64),
            "segment size must be a positive multiple of BLOCK_BYTES"
        );
        Self {
            current: Vec::new(),
            durable: Vec::new(),
            unsynced: Vec::new(),
            capacity_bytes,
            segment_size_bytes,
            rng: SplitMix64::new(seed),
            syncs_to_fail: 0,
            writes_to_fail: 0,
            stall: Stall::default(),
            fates: Vec::new(),
        }
    }

    /// The most bytes the disk may allocate.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// Changes the most bytes the disk may allocate; raising it again means space returns.
    pub fn set_capacity_bytes(&mut self, capacity_bytes: u64) {
        self.capacity_bytes = capacity_bytes;
    }

    /// Segment size the disk allocates in and that no write may cross, in bytes.
    pub fn segment_size_bytes(&self) -> u64 {
        self.segment_size_bytes
    }

    /// Number of writes not yet made durable by a sync.
    pub fn unsynced_writes(&self) -> usize {
        self.unsynced.len()
    }

    /// Simulates a power cut: every unsynced write is kept, lost or torn (by the seed);
    /// reads afterwards see only what reached the medium. Returns each write's fate.
    pub fn crash(&mut self) -> Vec<WriteFate> {
        let fates = self.resolve_unsynced();
        self.current = self.durable.clone();
        self.fates.extend_from_slice(&fates);
        fates
    }

    /// Makes the next sync fail with EIO; the writes it covered may or may not be durable.
    pub fn fail_next_sync(&mut self) {
        self.syncs_to_fail += 1;
    }

    /// Makes the next write fail with EIO, without effect.
    pub fn fail_next_write(&mut self) {
        self.writes_to_fail += 1;
    }

    /// Makes each of the next `ops` operations take `delay_ms_per_op` of virtual time.
    pub fn stall_next_ops(&mut self, ops: u32, delay_ms_per_op: u64) {
        self.stall.ops_left = ops;
        self.stall.delay_ms_per_op = delay_ms_per_op;
    }

    /// Virtual delay, in ms, the operations since the last call took; resets it to zero.
    pub fn take_stall_ms(&mut self) -> u64 {
        std::mem::take(&mut self.stall.accrued_ms)
    }

    /// Every fate a crash or failed sync decided so far, oldest first.
    pub fn fates(&self) -> &[WriteFate] {
        &self.fates
    }

    /// Overwrites bytes on the medium and in the cache alike: simulates media corruption.
    pub fn corrupt(&mut self, offset: u64, bytes: &[u8]) {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(bytes.len());
        assert!(
            end <= self.current.len(),
            "corruption past the end of the disk"
        );
        self.current[start..end].copy_from_slice(bytes);
        self.durable[start..end].copy_from_slice(bytes);
    }

    fn tick(&mut self) {
        if self.stall.ops_left > 0 {
            self.stall.ops_left -= 1;
            self.stall.accrued_ms += self.stall.delay_ms_per_op;
        }
    }

    fn resolve_unsynced(&mut self) -> Vec<WriteFate> {
        let writes = std::mem::take(&mut self.unsynced);
        writes.iter().map(|w| self.resolve_one(w)).collect()
    }

    fn resolve_one(&mut self, write: &UnsyncedWrite) -> WriteFate {
        let fate = match self.rng.below(3) {
            0 => WriteFate::Kept,
            1 => WriteFate::Lost,
            _ => WriteFate::Torn,
        };
        let start = to_index(write.offset);
        for (i, sector) in write.bytes.chunks(SECTOR_BYTES).enumerate() {
            let keep = match fate {
                WriteFate::Kept => true,
                WriteFate::Lost => false,
                WriteFate::Torn => self.rng.below(2) == 0,
            };
            if keep {
                let at = start + i * SECTOR_BYTES;
                self.durable[at..at + sector.len()].copy_from_slice(sector);
            }
        }
        fate
    }

    fn segment_len(&self, len: u64) -> u64 {
        len.div_ceil(self.segment_size_bytes) * self.segment_size_bytes
    }

    fn grow(&mut self, len: u64) -> io::Result<()> {
        if len <= self.len() {
            return Ok(());
        }
        let new_len = self.segment_len(len);
        if new_len > self.capacity_bytes {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated disk full (ENOSPC)",
            ));
        }
        self.current.resize(to_index(new_len), 0);
        self.durable.resize(to_index(new_len), 0);
        Ok(())
    }

    fn check_aligned(&self, offset: u64, len: usize) {
        assert!(
            offset.is_multiple_of(BLOCK_BYTES as u64) && len.is_multiple_of(BLOCK_BYTES),
            "unaligned disk access: offset {offset}, len {len}"
        );
    }
}

fn to_index(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

fn eio(what: &str) -> io::Error {
    io::Error::other(format!("simulated {what} failure (EIO)"))
}

impl Disk for SimDisk {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_aligned(offset, buf.len());
        self.tick();
        let end = offset.saturating_add(buf.len() as u64);
        if end > self.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {} bytes at {offset} past the end", buf.len()),
            ));
        }
        let start = to_index(offset);
        buf.copy_from_slice(&self.current[start..start + buf.len()]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.check_aligned(offset, buf.len());
        let seg = self.segment_size_bytes;
        let end = offset.saturating_add(buf.len() as u64);
        assert!(
            buf.is_empty() || offset / seg == (end - 1) / seg,
            "write of {} bytes at {offset} crosses a segment boundary",
            buf.len()
        );
        self.tick();
        if self.writes_to_fail > 0 {
            self.writes_to_fail -= 1;
            return Err(eio("write"));
        }
        self.grow(end)?;
        let start = to_index(offset);
        self.current[start..start + buf.len()].copy_from_slice(buf);
        self.unsynced.push(UnsyncedWrite {
            offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.tick();
        if self.syncs_to_fail > 0 {
            self.syncs_to_fail -= 1;
            let fates = self.resolve_unsynced();
            self.fates.extend_from_slice(&fates);
            return Err(eio("fdatasync"));
        }
        for write in std::mem::take(&mut self.unsynced) {
            let start = to_index(write.offset);
            self.durable[start..start + write.bytes.len()].copy_from_slice(&write.bytes);
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.current.len() as u64
    }

    fn ensure_len(&mut self, len: u64) -> io::Result<()> {
        self.tick();
        self.grow(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG: u64 = 4 * BLOCK_BYTES as u64;

    fn block(fill: u8) -> Vec<u8> {
        vec![fill; BLOCK_BYTES]
    }

    fn read_block(disk: &mut SimDisk, offset: u64) -> Vec<u8> {
        let mut buf = block(0);
        disk.read_at(offset, &mut buf)
            .map(|()| buf)
            .unwrap_or_default()
    }

    #[test]
    fn synced_writes_survive_a_crash() {
        let mut disk = SimDisk::new(1, 8 * SEG, SEG);
        disk.write_at(0, &block(7)).unwrap();
        disk.sync().unwrap();
        disk.crash();
        assert_eq!(read_block(&mut disk, 0), block(7));
        assert_eq!(disk.len(), SEG);
    }

    #[test]
    fn crash_keeps_loses_or_tears_unsynced_writes_by_seed() {
        let mut seen = Vec::new();
        for seed in 0..64 {
            let mut disk = SimDisk::new(seed, 8 * SEG, SEG);
            disk.ensure_len(SEG).unwrap();
            disk.write_at(0, &block(9)).unwrap();
            let fates = disk.crash();
            let after = read_block(&mut disk, 0);
            match fates[0] {
                WriteFate::Kept => assert_eq!(after, block(9)),
                WriteFate::Lost => assert_eq!(after, block(0)),
                WriteFate::Torn => assert!(
                    after
                        .chunks(SECTOR_BYTES)
                        .all(|s| s.iter().all(|&b| b == 0) || s.iter().all(|&b| b == 9))
                ),
            }
            seen.push(fates[0]);
        }
        for fate in [WriteFate::Kept, WriteFate::Lost, WriteFate::Torn] {
            assert!(seen.contains(&fate), "{fate:?} never chosen");
        }
    }

    #[test]
    fn same_seed_same_outcome() {
        let run = |seed| {
            let mut disk = SimDisk::new(seed, 8 * SEG, SEG);
            for i in 0..4 {
                disk.write_at(i * BLOCK_BYTES as u64, &block(i as u8 + 1))
                    .unwrap();
            }
            disk.crash();
            (0..4)
                .map(|i| read_block(&mut disk, i * BLOCK_BYTES as u64))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
    }

    #[test]
    fn capacity_limit_gives_enospc_without_effect_and_space_returns() {
        let mut disk = SimDisk::new(3, SEG, SEG);
        disk.ensure_len(SEG).unwrap();
        let err = disk.ensure_len(SEG + 1).unwrap_err();
        assert!(is_no_space(&err));
        let err = disk.write_at(SEG, &block(1)).unwrap_err();
        assert!(is_no_space(&err));
        assert_eq!(disk.len(), SEG);
        assert_eq!(disk.unsynced_writes(), 0);
        disk.set_capacity_bytes(2 * SEG);
        disk.write_at(SEG, &block(1)).unwrap();
        assert_eq!(disk.len(), 2 * SEG);
    }

    #[test]
    fn failed_sync_reports_eio_and_cache_still_shows_new_data() {
        let mut disk = SimDisk::new(5, 8 * SEG, SEG);
        disk.write_at(0, &block(4)).unwrap();
        disk.fail_next_sync();
        let err = disk.sync().unwrap_err();
        assert!(!is_no_space(&err));
        assert_eq!(read_block(&mut disk, 0), block(4));
        assert_eq!(disk.unsynced_writes(), 0);
        assert!(disk.sync().is_ok());
    }

    #[test]
    fn failed_write_has_no_effect() {
        let mut disk = SimDisk::new(6, 8 * SEG, SEG);
        disk.ensure_len(SEG).unwrap();
        disk.fail_next_write();
        assert!(disk.write_at(0, &block(4)).is_err());
        assert_eq!(read_block(&mut disk, 0), block(0));
        assert_eq!(disk.unsynced_writes(), 0);
    }

    #[test]
    fn stalls_accrue_virtual_delay_per_operation() {
        let mut disk = SimDisk::new(7, 8 * SEG, SEG);
        disk.stall_next_ops(2, 300);
        disk.write_at(0, &block(1)).unwrap();
        disk.sync().unwrap();
        disk.sync().unwrap();
        assert_eq!(disk.take_stall_ms(), 600);
        assert_eq!(disk.take_stall_ms(), 0);
    }

    #[test]
    #[should_panic(expected = "crosses a segment boundary")]
    fn write_across_segments_breaks_the_contract() {
        let mut disk = SimDisk::new(8, 8 * SEG, SEG);
        let _ = disk.write_at(SEG - BLOCK_BYTES as u64, &vec![0; 2 * BLOCK_BYTES]);
    }
}
