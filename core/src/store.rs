//! The per-shard log-structured store: an append-only log of checksummed batches on a
//! [`Disk`], an in-memory index rebuilt from a checkpoint plus the log tail, and group
//! commit driven from outside (sans-I/O: the store says what to write, the runtime
//! writes it and reports back).
//!
//! # On-disk format
//!
//! The log is a sequence of *batches* in the shard's log space. Each batch starts at a
//! [`BLOCK_BYTES`]-aligned offset, is padded with zeros to a [`BLOCK_BYTES`] multiple,
//! and never crosses a segment boundary (`segment_size_bytes`): a batch that does not fit
//! in the rest of a segment starts at the next segment, leaving the rest unused.
//!
//! Batch header (40 bytes, little-endian):
//!
//! | bytes  | field                                                      |
//! |--------|------------------------------------------------------------|
//! | 0..8   | magic `THLOGv01`                                           |
//! | 8..12  | header crc32c, over bytes 0..8, 12..40 and the batch's own |
//! |        | offset (u64): a batch image elsewhere never verifies       |
//! | 12..16 | payload crc32c, over every record byte                     |
//! | 16..24 | sequence number of the first record                        |
//! | 24..32 | payload length in bytes                                    |
//! | 32..36 | record count                                               |
//! | 36..40 | reserved, zero                                             |
//!
//! The payload follows the header directly: records back to back, each
//! `kind: u8 | head_len: u32 | body_len: u64 | head | body`, where the head is the
//! postcard encoding of the kind's fields and only an append carries a body (the raw
//! message). Kinds: 1 create mailbox, 2 delete mailbox, 3 rename mailbox, 4 append,
//! 5 set flags, 6 expunge, 7 subscribe or unsubscribe. Every record of a mailbox change
//! names its mailbox's UIDVALIDITY and carries the UID and MODSEQ assigned at staging, so
//! replay reproduces them exactly. Sequence
//! numbers count records, start at 0 and are contiguous across batches. One staged
//! [`Op`] becomes one to three records that always share a batch.
//!
//! # Identifiers
//!
//! UIDVALIDITY is unique per shard and strictly increasing: the next mailbox gets
//! `max(last + 1, floor)`, where the floor defaults to 0 and the runtime may raise it
//! with [`Shard::set_uidvalidity_floor`] (e.g. to the current unix time) so that a
//! re-created shard does not repeat old values. A new mailbox has UIDNEXT 1 and
//! HIGHESTMODSEQ 1; every change gets the mailbox's HIGHESTMODSEQ + 1. UIDs and MODSEQs
//! are assigned at [`Shard::stage`] and never go back within a process, even for records
//! that are later dropped; a dropped (never visible) value may be reused after a restart.
//!
//! # Group commit and failures
//!
//! [`Shard::stage`] validates an op against the head state (durable plus staged), queues
//! its records and returns a ticket. [`Shard::begin_flush`] cuts one batch (at most
//! `flush_batch_max_bytes` of payload, or one larger op alone); while it is in flight,
//! new stages gather for the next batch. [`Shard::finish_flush`] with `Ok` makes every
//! ticket up to the job's `last_ticket` durable and visible in the index. ENOSPC fails
//! every not-yet-durable ticket with the tempfail [`StoreError::NoSpace`]; the shard
//! stays writable and the log position does not move. Any other error fails them too and
//! leaves the shard read-only for the rest of the process: after a failed write or sync
//! nothing is acknowledged again.
//!
//! # Recovery rules
//!
//! [`Shard::open`] first syncs the disk (so that what it reads is durable), loads the
//! checkpoint if its crc (and its consistency) checks out, otherwise ignores it and says
//! so in the [`RecoveryReport`]; then it replays the log from the checkpoint's position.
//! A batch is valid when both crcs match and its first sequence number is the expected
//! one. Where the expected position holds no verifying bytes, replay follows a valid
//! batch with the expected sequence number at the next segment start if that batch could
//! not have fit in the rest of the segment (the writer skipped there; what it left
//! behind may be zeros or a never-acknowledged write). At the first position with no valid batch, every
//! block from there to the end of the allocated space is scanned: if any block starts a
//! batch whose checksums match, that is corruption in the middle and `open` fails with
//! [`StoreError::Corrupt`] (nothing is ever skipped); otherwise the non-zero blocks are a
//! torn, never-acknowledged tail: they are overwritten with zeros and synced, so stale
//! bytes can never pass for a batch later. Recovery is idempotent. [`fsck`] replays the
//! whole log without changing it and names every problem.

mod batch;
mod checkpoint;
mod format;
mod index;
mod recovery;
mod stage;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::VecDeque;
use std::io;

use crate::disk::{BLOCK_BYTES, Disk, is_no_space};
use batch::build_batch;
use format::{BATCH_HEADER_BYTES, Record, align_up, encode_record_head};
use stage::Head;

pub use batch::{Batch, WRITE_CHUNK_BYTES};
pub use index::{Account, BodyLocation, Mailbox, Message};
pub use recovery::{CheckpointUse, FsckProblem, FsckReport, RecoveryReport, TornTail, fsck};
pub use stage::{FLAG_MAX_BYTES, FLAGS_PER_MESSAGE_MAX, NAME_MAX_BYTES};

/// A message's unique identifier within a mailbox (IMAP UID).
pub type Uid = u32;
/// A modification sequence number (RFC 7162 MODSEQ).
pub type ModSeq = u64;

/// The name of every account's inbox; matched case-insensitively.
pub const INBOX: &str = "INBOX";

/// Layout limits of one shard's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardConfig {
    /// Size of one segment of the log space; a multiple of BLOCK_BYTES.
    pub segment_size_bytes: u64,
    /// Most payload bytes one group-commit batch gathers (one larger op goes alone).
    pub flush_batch_max_bytes: u64,
}

impl ShardConfig {
    /// Checks that the configuration describes a usable log.
    pub fn validate(&self) -> Result<(), StoreError> {
        let block = BLOCK_BYTES as u64;
        if self.segment_size_bytes < 2 * block || !self.segment_size_bytes.is_multiple_of(block) {
            return Err(StoreError::Config {
                detail: format!(
                    "segment_size_bytes {} must be a multiple of {block} and at least {}",
                    self.segment_size_bytes,
                    2 * block
                ),
            });
        }
        if self.flush_batch_max_bytes == 0 {
            return Err(StoreError::Config {
                detail: "flush_batch_max_bytes must be positive".into(),
            });
        }
        Ok(())
    }

    /// Most encoded bytes one op may take: a batch of it alone must fit a segment.
    pub fn op_max_bytes(&self) -> u64 {
        self.segment_size_bytes - BATCH_HEADER_BYTES as u64
    }
}

/// A change to the shard, as the runtime asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Appends a message to account/mailbox; creates the account and the mailbox if absent (INBOX on first delivery).
    Append {
        /// Account name.
        account: String,
        /// Mailbox name; `INBOX` in any case means the INBOX.
        mailbox: String,
        /// Initial flags and keywords.
        flags: Vec<String>,
        /// IMAP INTERNALDATE, unix seconds.
        internal_date: i64,
        /// Opaque parsed metadata (envelope, body structure) kept in the index.
        meta: Vec<u8>,
        /// The raw message.
        body: Vec<u8>,
    },
    /// Creates a mailbox (and the account, with its INBOX, if absent).
    CreateMailbox { account: String, name: String },
    /// Deletes a mailbox and its messages; INBOX cannot be deleted.
    DeleteMailbox { account: String, name: String },
    /// Renames one mailbox, keeping UIDVALIDITY and messages; INBOX cannot be renamed.
    RenameMailbox {
        account: String,
        from: String,
        to: String,
    },
    /// Replaces the flags (system flags like "\\Seen" and keywords) of one message.
    SetFlags {
        account: String,
        mailbox: String,
        uid: Uid,
        flags: Vec<String>,
    },
    /// Adds a name to the account's subscriptions (the account must exist; the mailbox need not).
    Subscribe { account: String, name: String },
    /// Removes a name from the account's subscriptions.
    Unsubscribe { account: String, name: String },
    /// Removes messages; UIDs not present are ignored, but at least one must be.
    Expunge {
        account: String,
        mailbox: String,
        uids: Vec<Uid>,
    },
}

/// What staging handed out for an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    /// Monotonic ticket; the op is durable once a flush reports a `through_ticket` ≥ it.
    pub ticket: u64,
    /// The appended message's UID.
    pub uid: Option<Uid>,
    /// UIDVALIDITY of the mailbox the op touched (the new one for a create).
    pub uidvalidity: Option<u32>,
    /// MODSEQ of the change (append, flags, expunge).
    pub modseq: Option<ModSeq>,
}

/// One batch to write: ensure the length, write `batch` at `offset`, sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushJob {
    /// Where the batch goes; BLOCK_BYTES-aligned.
    pub offset: u64,
    /// The whole batch; its length is a multiple of BLOCK_BYTES.
    pub batch: Batch,
    /// The disk must be at least this long before the write.
    pub ensure_len: u64,
    /// The last ticket this batch makes durable.
    pub last_ticket: u64,
    /// Where each message body of the batch lies in the log.
    pub bodies: Vec<BodyLocation>,
}

impl FlushJob {
    /// Grows the disk if needed and writes the batch, without syncing.
    pub fn write_to<D: Disk>(&self, disk: &mut D) -> io::Result<()> {
        if disk.len() < self.ensure_len {
            disk.ensure_len(self.ensure_len)?;
        }
        self.batch.write_at(disk, self.offset)
    }

    /// Writes the batch and syncs it: the whole I/O side of a flush.
    pub fn run<D: Disk>(&self, disk: &mut D) -> io::Result<()> {
        self.write_to(disk)?;
        disk.sync()
    }
}

/// How a flush ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Every ticket up to `through_ticket` is durable and visible.
    Durable { through_ticket: u64 },
    /// Every ticket not yet durable, up to `through_ticket`, failed with `error`.
    Failed {
        through_ticket: u64,
        error: StoreError,
    },
}

/// Whether the shard accepts changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Changes are accepted.
    Writable,
    /// A write or sync failed; no change is accepted until the process restarts.
    ReadOnly { reason: String },
}

/// Errors of the store, each phrased for the person who must act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The shard's disk is full; nothing was written; retry later.
    #[error("shard disk is full (ENOSPC); nothing was stored, try again later")]
    NoSpace,
    /// The shard refuses changes after a failed write or sync.
    #[error("shard is read-only: {reason}")]
    ReadOnly { reason: String },
    /// A disk operation failed.
    #[error("shard disk I/O failed: {detail}")]
    Io { detail: String },
    /// The log or a body is damaged; nothing was skipped.
    #[error("shard log corrupt at offset {offset}: {detail}")]
    Corrupt { offset: u64, detail: String },
    /// An op too large for one segment.
    #[error("change of up to {bytes} bytes exceeds the limit of {limit_bytes} bytes per change")]
    TooLarge { bytes: u64, limit_bytes: u64 },
    /// The shard configuration is unusable.
    #[error("invalid shard configuration: {detail}")]
    Config { detail: String },
    /// A name or flag breaks the limits.
    #[error("invalid name or flag: {detail}")]
    InvalidName { detail: String },
    /// The mailbox does not exist.
    #[error("no mailbox {mailbox:?} in account {account:?}")]
    NoSuchMailbox { account: String, mailbox: String },
    /// The mailbox already exists.
    #[error("mailbox {mailbox:?} already exists in account {account:?}")]
    MailboxExists { account: String, mailbox: String },
    /// The message does not exist.
    #[error("no message with UID {uid} in {account:?}/{mailbox:?}")]
    NoSuchMessage {
        account: String,
        mailbox: String,
        uid: Uid,
    },
    /// The operation is not allowed on this mailbox.
    #[error("{detail}")]
    Refused { detail: String },
    /// A counter has no values left.
    #[error("exhausted: {detail}")]
    Exhausted { detail: String },
}

impl StoreError {
    /// Whether the client should retry later (SMTP 4xx) rather than give up.
    pub fn is_tempfail(&self) -> bool {
        matches!(
            self,
            StoreError::NoSpace | StoreError::ReadOnly { .. } | StoreError::Io { .. }
        )
    }
}

/// An op's records, encoded, waiting for a batch.
#[derive(Debug)]
struct StagedOp {
    ticket: u64,
    records: Vec<Record>,
    /// The encoded records, up to the append's body if there is one.
    head: Vec<u8>,
    /// The append's body, which follows `head` directly (it ends the op's records).
    body: Option<Vec<u8>>,
}

impl StagedOp {
    fn len_bytes(&self) -> u64 {
        (self.head.len() + self.body.as_ref().map_or(0, Vec::len)) as u64
    }
}

/// The batch being written.
#[derive(Debug)]
struct InFlight {
    offset: u64,
    len_bytes: u64,
    record_count: u64,
    last_ticket: u64,
    records: Vec<(Record, Option<BodyLocation>)>,
}

/// A shard's durable state at one log position, to be encoded as a checkpoint.
#[derive(Debug)]
pub struct CheckpointSnapshot {
    log_end: u64,
    next_seq: u64,
    index: index::Index,
}

impl CheckpointSnapshot {
    /// The checkpoint bytes (CPU-bound: milliseconds per ten thousand messages).
    pub fn encode(&self) -> Vec<u8> {
        checkpoint::encode(self.log_end, self.next_seq, &self.index)
    }
}

/// One shard: its durable index, its staged changes and its log position.
#[derive(Debug)]
pub struct Shard {
    cfg: ShardConfig,
    index: index::Index,
    head: Head,
    staged: VecDeque<StagedOp>,
    staged_bytes: u64,
    in_flight: Option<InFlight>,
    log_end: u64,
    next_seq: u64,
    next_ticket: u64,
    health: Health,
    checkpoint_seq: Cell<u64>,
}

impl Shard {
    /// Recovers the shard from `disk` (and a checkpoint, if usable); see the module doc.
    pub fn open<D: Disk>(
        disk: &mut D,
        checkpoint: Option<&[u8]>,
        cfg: ShardConfig,
    ) -> Result<(Shard, RecoveryReport), StoreError> {
        cfg.validate()?;
        let (replay, report) = recovery::recover(disk, checkpoint, &cfg)?;
        let checkpoint_seq = match report.checkpoint {
            CheckpointUse::Used { next_seq, .. } => next_seq,
            _ => 0,
        };
        let shard = Shard {
            cfg,
            head: Head::from_index(&replay.index),
            index: replay.index,
            staged: VecDeque::new(),
            staged_bytes: 0,
            in_flight: None,
            log_end: replay.pos,
            next_seq: replay.seq,
            next_ticket: 1,
            health: Health::Writable,
            checkpoint_seq: Cell::new(checkpoint_seq),
        };
        Ok((shard, report))
    }

    /// Validates `op`, assigns its identifiers and queues its records; not yet visible.
    pub fn stage(&mut self, op: Op) -> Result<Staged, StoreError> {
        if let Health::ReadOnly { reason } = &self.health {
            return Err(StoreError::ReadOnly {
                reason: reason.clone(),
            });
        }
        let bound = stage::encoded_bytes_bound(&op) as u64;
        if bound > self.cfg.op_max_bytes() {
            return Err(StoreError::TooLarge {
                bytes: bound,
                limit_bytes: self.cfg.op_max_bytes(),
            });
        }
        let mut plan = self.head.plan(op)?;
        let mut head = Vec::new();
        let mut body = None;
        for record in &plan.records {
            assert!(body.is_none(), "an append's body ends its op's records");
            if matches!(record, Record::Append(_)) {
                encode_record_head(record, plan.body.len() as u64, &mut head);
                body = Some(std::mem::take(&mut plan.body));
            } else {
                encode_record_head(record, 0, &mut head);
            }
        }
        let op = StagedOp {
            ticket: self.next_ticket,
            records: plan.records,
            head,
            body,
        };
        assert!(op.len_bytes() <= bound, "encoded size bound too small");
        let ticket = op.ticket;
        self.next_ticket += 1;
        self.staged_bytes += op.len_bytes();
        self.staged.push_back(op);
        Ok(Staged {
            ticket,
            uid: plan.uid,
            uidvalidity: plan.uidvalidity,
            modseq: plan.modseq,
        })
    }

    /// Cuts the next batch; None if nothing is staged, a flush is in flight, or the shard failed.
    pub fn begin_flush(&mut self) -> Option<FlushJob> {
        if self.in_flight.is_some() || self.staged.is_empty() || self.health != Health::Writable {
            return None;
        }
        let ops = self.take_batch_ops();
        let payload_len: u64 = ops.iter().map(StagedOp::len_bytes).sum();
        let len_bytes = align_up(BATCH_HEADER_BYTES as u64 + payload_len);
        let offset = self.place(len_bytes);
        let last_ticket = ops.last().map_or(0, |op| op.ticket);
        let (batch, records) = build_batch(ops, offset, len_bytes, self.next_seq);
        let bodies = records.iter().filter_map(|(_, body)| *body).collect();
        self.in_flight = Some(InFlight {
            offset,
            len_bytes,
            record_count: records.len() as u64,
            last_ticket,
            records,
        });
        Some(FlushJob {
            offset,
            batch,
            bodies,
            ensure_len: offset + len_bytes,
            last_ticket,
        })
    }

    /// Takes staged ops for one batch: up to the byte limit, at least one.
    fn take_batch_ops(&mut self) -> Vec<StagedOp> {
        let mut ops = Vec::new();
        let mut payload = 0u64;
        while let Some(op) = self.staged.front() {
            let len = op.len_bytes();
            if !ops.is_empty() && payload + len > self.cfg.flush_batch_max_bytes {
                break;
            }
            payload += len;
            self.staged_bytes -= len;
            ops.extend(self.staged.pop_front());
        }
        ops
    }

    /// Offset for a batch of `len_bytes`: the log end, or the next segment if it does not fit.
    fn place(&self, len_bytes: u64) -> u64 {
        let seg = self.cfg.segment_size_bytes;
        assert!(len_bytes <= seg, "a batch never exceeds a segment");
        let seg_end = (self.log_end / seg + 1) * seg;
        if self.log_end + len_bytes <= seg_end {
            self.log_end
        } else {
            seg_end
        }
    }

    /// Reports the in-flight job's I/O result; see the module doc for failures.
    pub fn finish_flush(&mut self, result: io::Result<()>) -> FlushOutcome {
        let flight = self
            .in_flight
            .take()
            .expect("finish_flush called with no flush in flight");
        match result {
            Ok(()) => self.commit(flight),
            Err(error) => self.fail(flight, error),
        }
    }

    fn commit(&mut self, flight: InFlight) -> FlushOutcome {
        for (record, body) in &flight.records {
            if let Err(e) = self.index.apply(record, *body) {
                panic!("a staged record does not apply to the durable index: {e}");
            }
        }
        self.log_end = flight.offset + flight.len_bytes;
        self.next_seq += flight.record_count;
        FlushOutcome::Durable {
            through_ticket: flight.last_ticket,
        }
    }

    fn fail(&mut self, flight: InFlight, error: io::Error) -> FlushOutcome {
        let staged = std::mem::take(&mut self.staged);
        let dropped = flight.records.iter().map(|(r, _)| r);
        self.head.rebuild(
            &self.index,
            dropped.chain(staged.iter().flat_map(|op| &op.records)),
        );
        self.staged_bytes = 0;
        let error = if is_no_space(&error) {
            StoreError::NoSpace
        } else {
            let reason = format!("log write or fdatasync failed: {error}; read-only until restart");
            self.health = Health::ReadOnly {
                reason: reason.clone(),
            };
            StoreError::Io { detail: reason }
        };
        FlushOutcome::Failed {
            through_ticket: self.next_ticket - 1,
            error,
        }
    }

    /// Whether the shard accepts changes.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// The durable index and log position as checkpoint bytes, crc-protected; resets
    /// [`Shard::records_since_checkpoint`].
    pub fn checkpoint(&self) -> Vec<u8> {
        self.checkpoint_snapshot().encode()
    }

    /// The durable index and log position as they are now, taken in constant time (the
    /// index is persistent: later changes copy only the parts they touch). It encodes
    /// on any thread, so a shard's executor need not stall for its checkpoints; resets
    /// [`Shard::records_since_checkpoint`].
    pub fn checkpoint_snapshot(&self) -> CheckpointSnapshot {
        self.checkpoint_seq.set(self.next_seq);
        CheckpointSnapshot {
            log_end: self.log_end,
            next_seq: self.next_seq,
            index: self.index.clone(),
        }
    }

    /// Durable records since the last checkpoint taken (or opened from).
    pub fn records_since_checkpoint(&self) -> u64 {
        self.next_seq - self.checkpoint_seq.get()
    }

    /// Raises the lowest UIDVALIDITY future mailboxes get (e.g. to the unix time).
    pub fn set_uidvalidity_floor(&mut self, floor: u32) {
        self.head.uidvalidity_floor = floor;
    }

    /// Encoded bytes staged and not yet in a batch (for admission control).
    pub fn staged_bytes(&self) -> u64 {
        self.staged_bytes
    }

    /// Whether a flush job is in flight.
    pub fn flush_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Offset where the next batch goes.
    pub fn log_end_offset(&self) -> u64 {
        self.log_end
    }

    /// Sequence number of the next durable record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The layout limits the shard runs with.
    pub fn config(&self) -> ShardConfig {
        self.cfg
    }

    /// Names of the accounts with durable state.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.index.accounts.keys().map(String::as_str)
    }

    /// Messages in the durable index, over every account and mailbox.
    pub fn indexed_messages(&self) -> u64 {
        self.index.message_count
    }

    /// An account's durable state.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.index.accounts.get(name)
    }

    /// A mailbox's durable state (`INBOX` matched in any case).
    pub fn mailbox(&self, account: &str, name: &str) -> Option<&Mailbox> {
        let name = stage::normalize_mailbox(name);
        self.account(account).and_then(|a| a.mailboxes.get(&name))
    }

    /// Reads a durable message's body back from the log and verifies its checksum.
    pub fn read_body<D: Disk>(
        &self,
        disk: &mut D,
        account: &str,
        mailbox: &str,
        uid: Uid,
    ) -> Result<Vec<u8>, StoreError> {
        let m = self
            .mailbox(account, mailbox)
            .ok_or_else(|| StoreError::NoSuchMailbox {
                account: account.to_string(),
                mailbox: mailbox.to_string(),
            })?;
        let message = m
            .messages
            .get(&uid)
            .ok_or_else(|| StoreError::NoSuchMessage {
                account: account.to_string(),
                mailbox: mailbox.to_string(),
                uid,
            })?;
        recovery::read_location(disk, &message.location)
    }

    /// Reads `len` bytes of one message from byte `from` on (clamped to the message),
    /// reading only the disk blocks that hold them; for FETCH BODY[]<partial>.
    pub fn read_body_range<D: Disk>(
        &self,
        disk: &mut D,
        account: &str,
        mailbox: &str,
        uid: Uid,
        from: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let location = self
            .mailbox(account, mailbox)
            .and_then(|m| m.messages.get(&uid))
            .map(|message| message.location)
            .ok_or_else(|| StoreError::NoSuchMessage {
                account: account.to_string(),
                mailbox: mailbox.to_string(),
                uid,
            })?;
        recovery::read_location_range(disk, &location, from, len)
    }
}

/// Runs one whole flush synchronously (begin, ensure_len, write, sync, finish): for tests and offline tools.
pub fn flush<D: Disk>(shard: &mut Shard, disk: &mut D) -> Option<FlushOutcome> {
    let job = shard.begin_flush()?;
    let result = job.run(disk);
    Some(shard.finish_flush(result))
}
