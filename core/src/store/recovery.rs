//! Reading the log back: batch verification, replay, tail classification (torn tail or
//! corruption in the middle), and `fsck`.

use std::fmt;
use std::io;

use super::checkpoint::{self, Checkpoint};
use super::format::{
    BATCH_HEADER_BYTES, BATCH_MAGIC, BatchHeader, HeaderFault, Record, align_down, align_up,
    decode_payload,
};
use super::index::{ApplyError, BodyLocation, Index};
use super::{ShardConfig, StoreError, Uid};
use crate::disk::{BLOCK_BYTES, Disk};

const BLOCK: u64 = BLOCK_BYTES as u64;
/// Blocks read at once while scanning or zeroing the tail.
const SCAN_CHUNK_BLOCKS: u64 = 64;

/// What `Shard::open` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether a checkpoint was given, used or ignored.
    pub checkpoint: CheckpointUse,
    /// Batches replayed from the log.
    pub batches_replayed: u64,
    /// Records replayed from the log.
    pub records_replayed: u64,
    /// Offset where the next batch goes.
    pub log_end_offset: u64,
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// The torn, never-acknowledged tail that was discarded, if any.
    pub torn_tail: Option<TornTail>,
}

/// How recovery treated the checkpoint it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointUse {
    /// No checkpoint was given; the whole log was replayed.
    Absent,
    /// The checkpoint was loaded; replay started at its position.
    Used {
        /// Log offset replay started at.
        log_offset: u64,
        /// Sequence number replay started at.
        next_seq: u64,
    },
    /// The checkpoint was unusable and the whole log was replayed instead.
    Ignored {
        /// Why the checkpoint was not used.
        reason: String,
    },
}

/// A discarded torn tail: bytes after the last valid batch that form no valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Offset of the first invalid batch position.
    pub offset: u64,
    /// Bytes overwritten with zeros (every non-zero block from `offset` on).
    pub zeroed_bytes: u64,
}

/// The result of `fsck`: every problem found, and what was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Every problem found; empty when the store is consistent.
    pub problems: Vec<FsckProblem>,
    /// Valid batches replayed.
    pub batches: u64,
    /// Records replayed.
    pub records: u64,
    /// Messages in the index whose bodies were read and verified.
    pub messages: u64,
    /// Offset of a torn tail that the next open will discard (not a problem).
    pub torn_tail_offset: Option<u64>,
}

impl FsckReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One problem `fsck` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsckProblem {
    /// The configuration cannot describe a log.
    Config { detail: String },
    /// Reading the disk failed.
    Io { detail: String },
    /// A checksum mismatch before the end of the log.
    Crc { offset: u64, detail: String },
    /// A valid batch whose first sequence number is not the expected one.
    SeqGap {
        offset: u64,
        expected: u64,
        found: u64,
    },
    /// No batch where one must be: valid batches follow a blank or foreign block.
    MissingBatch { offset: u64, detail: String },
    /// A batch that verifies but is malformed (length, segment, records).
    Batch { offset: u64, detail: String },
    /// A record that breaks UID order.
    UidOrder { offset: u64, detail: String },
    /// A record that breaks MODSEQ or UIDVALIDITY order.
    ModSeqOrder { offset: u64, detail: String },
    /// A record that does not fit the index it applies to.
    Record { offset: u64, detail: String },
    /// The replayed index breaks an invariant.
    Index { detail: String },
    /// The checkpoint bytes are unusable.
    CheckpointInvalid { detail: String },
    /// The checkpoint disagrees with what replay builds at its position.
    CheckpointMismatch { detail: String },
    /// A message body cannot be read back or fails its checksum.
    UnreadableBody {
        account: String,
        mailbox: String,
        uid: Uid,
        detail: String,
    },
}

impl fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsckProblem::Config { detail } => write!(f, "configuration: {detail}"),
            FsckProblem::Io { detail } => write!(f, "read error: {detail}"),
            FsckProblem::Crc { offset, detail } => {
                write!(f, "checksum mismatch at offset {offset}: {detail}")
            }
            FsckProblem::SeqGap {
                offset,
                expected,
                found,
            } => {
                write!(
                    f,
                    "sequence gap at offset {offset}: expected {expected}, found {found}"
                )
            }
            FsckProblem::MissingBatch { offset, detail } => {
                write!(f, "missing batch at offset {offset}: {detail}")
            }
            FsckProblem::Batch { offset, detail } => {
                write!(f, "malformed batch at offset {offset}: {detail}")
            }
            FsckProblem::UidOrder { offset, detail } => {
                write!(f, "UID order broken at offset {offset}: {detail}")
            }
            FsckProblem::ModSeqOrder { offset, detail } => {
                write!(
                    f,
                    "MODSEQ/UIDVALIDITY order broken at offset {offset}: {detail}"
                )
            }
            FsckProblem::Record { offset, detail } => {
                write!(f, "bad record at offset {offset}: {detail}")
            }
            FsckProblem::Index { detail } => write!(f, "index invariant broken: {detail}"),
            FsckProblem::CheckpointInvalid { detail } => write!(f, "checkpoint unusable: {detail}"),
            FsckProblem::CheckpointMismatch { detail } => {
                write!(f, "checkpoint disagrees with the log: {detail}")
            }
            FsckProblem::UnreadableBody {
                account,
                mailbox,
                uid,
                detail,
            } => {
                write!(
                    f,
                    "{account} {mailbox} UID {uid}: body unreadable: {detail}"
                )
            }
        }
    }
}

/// Why no valid batch sits at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    Header(HeaderFault),
    SeqMismatch { expected: u64, found: u64 },
    PastEnd { len_bytes: u64 },
    CrossesSegment { len_bytes: u64 },
    PayloadCrc,
    Records(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Header(HeaderFault::Zero) => write!(f, "blank block where a batch belongs"),
            Fault::Header(HeaderFault::NoMagic) => write!(f, "no batch magic"),
            Fault::Header(HeaderFault::Crc) => write!(f, "batch header checksum mismatch"),
            Fault::SeqMismatch { expected, found } => {
                write!(f, "batch starts at sequence {found}, expected {expected}")
            }
            Fault::PastEnd { len_bytes } => {
                write!(f, "batch of {len_bytes} bytes runs past the end")
            }
            Fault::CrossesSegment { len_bytes } => {
                write!(f, "batch of {len_bytes} bytes crosses a segment boundary")
            }
            Fault::PayloadCrc => write!(f, "batch payload checksum mismatch"),
            Fault::Records(d) => write!(f, "batch records malformed: {d}"),
        }
    }
}

/// A verified batch and its records, with body locations resolved.
#[derive(Debug)]
pub(crate) struct Batch {
    pub offset: u64,
    pub header: BatchHeader,
    pub records: Vec<(Record, Option<BodyLocation>)>,
}

/// Reads the batch at `pos` and checks both checksums (and the sequence, if given).
fn read_verified<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
    expected_seq: Option<u64>,
) -> io::Result<Result<(BatchHeader, Vec<u8>), Fault>> {
    let mut block = vec![0u8; BLOCK_BYTES];
    disk.read_at(pos, &mut block)?;
    let header = match BatchHeader::decode(&block, pos) {
        Ok(h) => h,
        Err(fault) => return Ok(Err(Fault::Header(fault))),
    };
    if let Some(expected) = expected_seq.filter(|&e| e != header.first_seq) {
        let found = header.first_seq;
        return Ok(Err(Fault::SeqMismatch { expected, found }));
    }
    let len_bytes = header.batch_len_bytes();
    let seg = cfg.segment_size_bytes;
    if pos.saturating_add(len_bytes) > disk.len() {
        return Ok(Err(Fault::PastEnd { len_bytes }));
    }
    if pos / seg != (pos + len_bytes - 1) / seg {
        return Ok(Err(Fault::CrossesSegment { len_bytes }));
    }
    let mut buf = vec![0u8; len_bytes as usize];
    buf[..BLOCK_BYTES].copy_from_slice(&block);
    if len_bytes > BLOCK {
        disk.read_at(pos + BLOCK, &mut buf[BLOCK_BYTES..])?;
    }
    let payload = &buf[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + header.payload_len as usize];
    if crc32c::crc32c(payload) != header.payload_crc32c {
        return Ok(Err(Fault::PayloadCrc));
    }
    Ok(Ok((header, buf)))
}

/// Reads, verifies and decodes the batch at `pos`, expecting `expected_seq`.
fn probe<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
    expected_seq: u64,
) -> io::Result<Result<Batch, Fault>> {
    let (header, buf) = match read_verified(disk, cfg, pos, Some(expected_seq))? {
        Ok(v) => v,
        Err(fault) => return Ok(Err(fault)),
    };
    let payload = &buf[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + header.payload_len as usize];
    let decoded = match decode_payload(payload, header.record_count) {
        Ok(d) => d,
        Err(detail) => return Ok(Err(Fault::Records(detail))),
    };
    let payload_at = pos + BATCH_HEADER_BYTES as u64;
    let records = decoded
        .into_iter()
        .map(|d| {
            let body = match &d.record {
                Record::Append(a) => Some(BodyLocation {
                    offset: payload_at + d.body_offset,
                    len_bytes: d.body_len,
                    crc32c: a.body_crc32c,
                }),
                _ => None,
            };
            (d.record, body)
        })
        .collect();
    Ok(Ok(Batch {
        offset: pos,
        header,
        records,
    }))
}

/// The next step of a replay at (`pos`, `seq`).
pub(crate) enum Step {
    /// A valid batch (at `pos`, or at the next segment start when it did not fit).
    Batch(Batch),
    /// No valid batch at `pos`; the tail decides whether that is the end.
    Stop(Fault),
    /// `pos` is at the end of the allocated space.
    End,
}

/// Finds the batch that continues the log at (`pos`, `seq`).
pub(crate) fn next_step<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
    seq: u64,
) -> io::Result<Step> {
    if pos >= disk.len() {
        return Ok(Step::End);
    }
    let fault = match probe(disk, cfg, pos, seq)? {
        Ok(batch) => return Ok(Step::Batch(batch)),
        Err(fault) => fault,
    };
    // Only bytes that never verified may sit where a skipped batch was not written:
    // zeros, or the remains of a never-acknowledged write whose zeroing did not persist.
    if matches!(fault, Fault::Header(_) | Fault::PayloadCrc)
        && let Some(batch) = skipped_batch(disk, cfg, pos, seq)?
    {
        return Ok(Step::Batch(batch));
    }
    Ok(Step::Stop(fault))
}

/// The batch at the next segment start, if the writer put it there because it did not
/// fit in the rest of `pos`'s segment.
fn skipped_batch<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
    seq: u64,
) -> io::Result<Option<Batch>> {
    let seg = cfg.segment_size_bytes;
    let next = (pos / seg + 1) * seg;
    if pos.is_multiple_of(seg) || next >= disk.len() {
        return Ok(None);
    }
    Ok(probe(disk, cfg, next, seq)?
        .ok()
        .filter(|b| pos + b.header.batch_len_bytes() > next))
}

/// The index replay builds, and where it stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct Replay {
    pub index: Index,
    pub pos: u64,
    pub seq: u64,
    pub batches: u64,
    pub records: u64,
}

impl Replay {
    /// Applies a verified batch and moves past it.
    pub fn apply(&mut self, batch: &Batch) -> Result<(), ApplyError> {
        for (record, body) in &batch.records {
            self.index.apply(record, *body)?;
        }
        self.pos = batch.offset + batch.header.batch_len_bytes();
        self.seq += u64::from(batch.header.record_count);
        self.batches += 1;
        self.records += u64::from(batch.header.record_count);
        Ok(())
    }
}

/// What lies after the last valid batch.
pub(crate) enum Tail {
    /// Only zeros: the clean end of the log.
    Clean,
    /// Non-zero blocks that form no valid batch: a torn, never-acknowledged write.
    Torn { runs: Vec<(u64, u64)> },
    /// A valid batch after an invalid position: corruption in the middle.
    Corrupt { valid_at: u64, first_seq: u64 },
}

/// Scans every block from `pos` to the end for non-zero bytes and valid batches.
pub(crate) fn classify_tail<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
) -> io::Result<Tail> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut at = pos;
    while at < disk.len() {
        let len = (disk.len() - at).min(SCAN_CHUNK_BLOCKS * BLOCK);
        let mut chunk = vec![0u8; len as usize];
        disk.read_at(at, &mut chunk)?;
        for (i, block) in chunk.chunks(BLOCK_BYTES).enumerate() {
            let block_at = at + i as u64 * BLOCK;
            if block.iter().all(|&b| b == 0) {
                continue;
            }
            if block.starts_with(&BATCH_MAGIC)
                && let Ok((header, _)) = read_verified(disk, cfg, block_at, None)?
            {
                let first_seq = header.first_seq;
                return Ok(Tail::Corrupt {
                    valid_at: block_at,
                    first_seq,
                });
            }
            push_block(&mut runs, block_at);
        }
        at += len;
    }
    Ok(if runs.is_empty() {
        Tail::Clean
    } else {
        Tail::Torn { runs }
    })
}

fn push_block(runs: &mut Vec<(u64, u64)>, block_at: u64) {
    match runs.last_mut() {
        Some((start, len)) if *start + *len == block_at => *len += BLOCK,
        _ => runs.push((block_at, BLOCK)),
    }
}

/// Overwrites each run with zeros (never across a segment boundary) and syncs.
fn zero_runs<D: Disk>(disk: &mut D, cfg: &ShardConfig, runs: &[(u64, u64)]) -> io::Result<u64> {
    let seg = cfg.segment_size_bytes;
    let mut zeroed = 0;
    for &(start, len) in runs {
        let mut at = start;
        while at < start + len {
            let seg_end = (at / seg + 1) * seg;
            let n = (start + len)
                .min(seg_end)
                .min(at + SCAN_CHUNK_BLOCKS * BLOCK)
                - at;
            disk.write_at(at, &vec![0u8; n as usize])?;
            at += n;
            zeroed += n;
        }
    }
    disk.sync()?;
    Ok(zeroed)
}

fn io_error(e: io::Error) -> StoreError {
    StoreError::Io {
        detail: e.to_string(),
    }
}

/// The replay start a checkpoint gives, or the log start when it is absent or unusable.
fn start_point<D: Disk>(disk: &D, checkpoint: Option<&[u8]>) -> (Replay, CheckpointUse) {
    let Some(bytes) = checkpoint else {
        return (Replay::default(), CheckpointUse::Absent);
    };
    let ignored = |reason: String| (Replay::default(), CheckpointUse::Ignored { reason });
    let c = match checkpoint::decode(bytes) {
        Ok(c) => c,
        Err(reason) => return ignored(reason),
    };
    if c.log_end > disk.len() || !c.log_end.is_multiple_of(BLOCK) {
        return ignored(format!(
            "checkpoint position {} is not in the log",
            c.log_end
        ));
    }
    if let Some(v) = c.index.violations().first() {
        return ignored(format!("checkpoint index inconsistent: {v}"));
    }
    let used = CheckpointUse::Used {
        log_offset: c.log_end,
        next_seq: c.next_seq,
    };
    let replay = Replay {
        index: c.index,
        pos: c.log_end,
        seq: c.next_seq,
        ..Replay::default()
    };
    (replay, used)
}

/// Rebuilds the durable state: checkpoint, then replay, then the tail rule.
pub(crate) fn recover<D: Disk>(
    disk: &mut D,
    checkpoint: Option<&[u8]>,
    cfg: &ShardConfig,
) -> Result<(Replay, RecoveryReport), StoreError> {
    // Makes what reads return durable, so that replay never builds on bytes that only a
    // write cache holds.
    disk.sync().map_err(io_error)?;
    let (mut replay, checkpoint) = start_point(disk, checkpoint);
    let fault = loop {
        match next_step(disk, cfg, replay.pos, replay.seq).map_err(io_error)? {
            Step::Batch(batch) => replay.apply(&batch).map_err(|e| StoreError::Corrupt {
                offset: batch.offset,
                detail: e.to_string(),
            })?,
            Step::Stop(fault) => break Some(fault),
            Step::End => break None,
        }
    };
    let torn_tail = settle_tail(disk, cfg, replay.pos, fault)?;
    let report = RecoveryReport {
        checkpoint,
        batches_replayed: replay.batches,
        records_replayed: replay.records,
        log_end_offset: replay.pos,
        next_seq: replay.seq,
        torn_tail,
    };
    Ok((replay, report))
}

/// Applies the tail rule at `pos`: corruption is an error, a torn tail is zeroed.
fn settle_tail<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
    fault: Option<Fault>,
) -> Result<Option<TornTail>, StoreError> {
    let Some(fault) = fault else {
        return Ok(None);
    };
    match classify_tail(disk, cfg, pos).map_err(io_error)? {
        Tail::Clean => Ok(None),
        Tail::Corrupt {
            valid_at,
            first_seq,
        } => Err(StoreError::Corrupt {
            offset: pos,
            detail: format!(
                "{fault}, yet a valid batch (sequence {first_seq}) follows at offset {valid_at}"
            ),
        }),
        Tail::Torn { runs } => {
            let zeroed_bytes = zero_runs(disk, cfg, &runs).map_err(io_error)?;
            Ok(Some(TornTail {
                offset: pos,
                zeroed_bytes,
            }))
        }
    }
}

/// Reads a body back with an aligned read and verifies its checksum.
pub(crate) fn read_location<D: Disk>(
    disk: &mut D,
    loc: &BodyLocation,
) -> Result<Vec<u8>, StoreError> {
    let end = loc
        .offset
        .checked_add(loc.len_bytes)
        .filter(|&e| e <= disk.len());
    let corrupt = |detail: String| StoreError::Corrupt {
        offset: loc.offset,
        detail,
    };
    let end = end.ok_or_else(|| corrupt("body runs past the end of the log".into()))?;
    let start = align_down(loc.offset);
    let mut buf = vec![0u8; (align_up(end) - start) as usize];
    disk.read_at(start, &mut buf).map_err(io_error)?;
    let skip = (loc.offset - start) as usize;
    let body = buf[skip..skip + loc.len_bytes as usize].to_vec();
    if crc32c::crc32c(&body) != loc.crc32c {
        return Err(corrupt("body checksum mismatch".into()));
    }
    Ok(body)
}

/// Reads `len` bytes of a body from byte `from` on, clamped to the body, reading only the
/// blocks that hold them. Unlike [`read_location`] it cannot check the body's checksum,
/// which covers the whole body.
pub(crate) fn read_location_range<D: Disk>(
    disk: &mut D,
    loc: &BodyLocation,
    from: u64,
    len: u64,
) -> Result<Vec<u8>, StoreError> {
    let from = from.min(loc.len_bytes);
    let len = len.min(loc.len_bytes - from);
    let end = loc
        .offset
        .checked_add(from + len)
        .filter(|&e| e <= disk.len())
        .ok_or_else(|| StoreError::Corrupt {
            offset: loc.offset,
            detail: "body runs past the end of the log".into(),
        })?;
    if len == 0 {
        return Ok(Vec::new());
    }
    let first = loc.offset + from;
    let start = align_down(first);
    let mut buf = vec![0u8; (align_up(end) - start) as usize];
    disk.read_at(start, &mut buf).map_err(io_error)?;
    let skip = (first - start) as usize;
    Ok(buf[skip..skip + len as usize].to_vec())
}

/// Checks a store end to end without changing it; names every problem found.
pub fn fsck<D: Disk>(disk: &mut D, checkpoint: Option<&[u8]>, cfg: ShardConfig) -> FsckReport {
    let mut report = FsckReport::default();
    if let Err(e) = cfg.validate() {
        report.problems.push(FsckProblem::Config {
            detail: e.to_string(),
        });
        return report;
    }
    let checkpoint = match checkpoint.map(checkpoint::decode) {
        Some(Err(detail)) => {
            report
                .problems
                .push(FsckProblem::CheckpointInvalid { detail });
            None
        }
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let replay = fsck_replay(disk, &cfg, checkpoint.as_ref(), &mut report);
    report.batches = replay.batches;
    report.records = replay.records;
    for detail in replay.index.violations() {
        report.problems.push(FsckProblem::Index { detail });
    }
    check_bodies(disk, &replay.index, &mut report);
    report
}

/// Replays the whole log, comparing with the checkpoint at its position and naming the
/// first problem in the log.
fn fsck_replay<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    checkpoint: Option<&Checkpoint>,
    report: &mut FsckReport,
) -> Replay {
    let mut replay = Replay::default();
    let mut compared = checkpoint.is_none();
    let fault = loop {
        if !compared && checkpoint.is_some_and(|c| c.next_seq == replay.seq) {
            compare_checkpoint(checkpoint, &replay, report);
            compared = true;
        }
        let step = match next_step(disk, cfg, replay.pos, replay.seq) {
            Ok(step) => step,
            Err(e) => {
                report.problems.push(FsckProblem::Io {
                    detail: e.to_string(),
                });
                return replay;
            }
        };
        match step {
            Step::Batch(batch) => {
                if let Err(e) = replay.apply(&batch) {
                    report.problems.push(apply_problem(batch.offset, e));
                    return replay;
                }
            }
            Step::Stop(fault) => break Some(fault),
            Step::End => break None,
        }
    };
    if !compared {
        report.problems.push(FsckProblem::CheckpointMismatch {
            detail: "the log never reaches the checkpoint's sequence number".into(),
        });
    }
    if let Some(fault) = fault {
        fsck_tail(disk, cfg, replay.pos, fault, report);
    }
    replay
}

fn compare_checkpoint(checkpoint: Option<&Checkpoint>, replay: &Replay, report: &mut FsckReport) {
    let Some(c) = checkpoint else { return };
    let detail = if c.log_end != replay.pos {
        format!(
            "checkpoint places sequence {} at offset {}, the log at {}",
            c.next_seq, c.log_end, replay.pos
        )
    } else if c.index != replay.index {
        format!(
            "checkpoint index differs from the replayed index at sequence {}",
            c.next_seq
        )
    } else {
        return;
    };
    report
        .problems
        .push(FsckProblem::CheckpointMismatch { detail });
}

fn apply_problem(offset: u64, e: ApplyError) -> FsckProblem {
    let detail = e.to_string();
    match e {
        ApplyError::UidOrder(_) => FsckProblem::UidOrder { offset, detail },
        ApplyError::ModSeqOrder(_) => FsckProblem::ModSeqOrder { offset, detail },
        ApplyError::Mismatch(_) => FsckProblem::Record { offset, detail },
    }
}

fn fsck_tail<D: Disk>(
    disk: &mut D,
    cfg: &ShardConfig,
    pos: u64,
    fault: Fault,
    report: &mut FsckReport,
) {
    match classify_tail(disk, cfg, pos) {
        Err(e) => report.problems.push(FsckProblem::Io {
            detail: e.to_string(),
        }),
        Ok(Tail::Clean) => {}
        Ok(Tail::Torn { .. }) => report.torn_tail_offset = Some(pos),
        Ok(Tail::Corrupt {
            valid_at,
            first_seq,
        }) => {
            let detail = format!(
                "{fault}; a valid batch (sequence {first_seq}) follows at offset {valid_at}"
            );
            report.problems.push(fault_problem(pos, fault, detail));
        }
    }
}

fn fault_problem(offset: u64, fault: Fault, detail: String) -> FsckProblem {
    match fault {
        Fault::Header(HeaderFault::Crc) | Fault::PayloadCrc => FsckProblem::Crc { offset, detail },
        Fault::Header(_) => FsckProblem::MissingBatch { offset, detail },
        Fault::SeqMismatch { expected, found } => FsckProblem::SeqGap {
            offset,
            expected,
            found,
        },
        Fault::PastEnd { .. } | Fault::CrossesSegment { .. } | Fault::Records(_) => {
            FsckProblem::Batch { offset, detail }
        }
    }
}

fn check_bodies<D: Disk>(disk: &mut D, index: &Index, report: &mut FsckReport) {
    for (account_name, account) in &index.accounts {
        for (name, mailbox) in &account.mailboxes {
            for message in mailbox.messages.values() {
                report.messages += 1;
                if let Err(e) = read_location(disk, &message.location) {
                    report.problems.push(FsckProblem::UnreadableBody {
                        account: account_name.clone(),
                        mailbox: name.clone(),
                        uid: message.uid,
                        detail: e.to_string(),
                    });
                }
            }
        }
    }
}
