//! Unit tests of the store: format, group commit, recovery and fsck.

use super::*;
use crate::disk::SimDisk;
use format::BatchHeader;

const BLOCK: u64 = BLOCK_BYTES as u64;
const SEG: u64 = 16 * BLOCK;

fn cfg() -> ShardConfig {
    ShardConfig {
        segment_size_bytes: SEG,
        flush_batch_max_bytes: 6 * BLOCK,
    }
}

fn new_disk(seed: u64) -> SimDisk {
    SimDisk::new(seed, 64 * SEG, SEG)
}

fn append(account: &str, mailbox: &str, body: &[u8]) -> Op {
    Op::Append {
        account: account.into(),
        mailbox: mailbox.into(),
        flags: vec!["\\Recent".into()],
        internal_date: 1_700_000_000,
        meta: b"envelope".to_vec(),
        body: body.to_vec(),
    }
}

fn open(disk: &mut SimDisk, checkpoint: Option<&[u8]>) -> (Shard, RecoveryReport) {
    match Shard::open(disk, checkpoint, cfg()) {
        Ok(v) => v,
        Err(e) => panic!("open failed: {e}"),
    }
}

fn stage(shard: &mut Shard, op: Op) -> Staged {
    match shard.stage(op) {
        Ok(s) => s,
        Err(e) => panic!("stage failed: {e}"),
    }
}

fn flush_ok(shard: &mut Shard, disk: &mut SimDisk) -> u64 {
    match flush(shard, disk) {
        Some(FlushOutcome::Durable { through_ticket }) => through_ticket,
        other => panic!("flush did not succeed: {other:?}"),
    }
}

/// Flushes one batch per op: returns each batch's offset.
fn batches(shard: &mut Shard, disk: &mut SimDisk, bodies: &[&[u8]]) -> Vec<u64> {
    let mut offsets = Vec::new();
    for body in bodies {
        stage(shard, append("alice", INBOX, body));
        offsets.push(shard.log_end_offset());
        flush_ok(shard, disk);
    }
    offsets
}

fn snapshot(shard: &Shard) -> Vec<(String, Account)> {
    shard
        .accounts()
        .map(|a| (a.to_string(), shard.account(a).cloned().unwrap_or_default()))
        .collect()
}

#[test]
fn batch_is_block_aligned_padded_and_verifiable() {
    let mut disk = new_disk(1);
    let (mut shard, _) = open(&mut disk, None);
    stage(&mut shard, append("alice", INBOX, b"one"));
    stage(&mut shard, append("alice", INBOX, b"two"));
    let job = shard.begin_flush().unwrap();
    assert_eq!(job.offset, 0);
    let bytes = job
        .batch
        .contiguous()
        .expect("small bodies share one buffer");
    assert_eq!(bytes.len() % BLOCK_BYTES, 0);
    assert_eq!(job.ensure_len, bytes.len() as u64);
    assert_eq!(job.last_ticket, 2);
    let header = BatchHeader::decode(bytes, job.offset).unwrap();
    assert_eq!((header.first_seq, header.record_count), (0, 3));
    let payload = &bytes[BATCH_HEADER_BYTES..][..header.payload_len as usize];
    assert_eq!(crc32c::crc32c(payload), header.payload_crc32c);
    assert!(
        bytes[BATCH_HEADER_BYTES + payload.len()..]
            .iter()
            .all(|&b| b == 0)
    );
}

/// A large body goes from the op to the disk write in the buffer it arrived in: the
/// batch holds that very allocation, and what it writes reads back as the message.
#[test]
fn a_large_body_is_written_from_its_own_buffer() {
    let big = ShardConfig {
        segment_size_bytes: 8 << 20,
        flush_batch_max_bytes: 6 * BLOCK,
    };
    let mut disk = SimDisk::new(7, 32 << 20, 8 << 20);
    let (mut shard, _) = Shard::open(&mut disk, None, big).unwrap();
    stage(&mut shard, append("alice", INBOX, b"small one"));
    let body: Vec<u8> = (0..3 * WRITE_CHUNK_BYTES as u32 + 1234)
        .map(|i| (i % 251) as u8)
        .collect();
    let (body_addr, expected) = (body.as_ptr() as usize, body.clone());
    let mut op = append("alice", INBOX, b"");
    if let Op::Append { body: b, .. } = &mut op {
        *b = body;
    }
    stage(&mut shard, op);
    stage(&mut shard, append("alice", INBOX, b"small two"));
    // The first batch takes the small op alone (the large one would pass the limit).
    flush(&mut shard, &mut disk);
    let job = shard.begin_flush().unwrap();
    assert!(job.batch.contiguous().is_none());
    assert!(job.batch.part_addresses().contains(&body_addr));
    let image = job.batch.to_vec();
    let header = BatchHeader::decode(&image, job.offset).unwrap();
    let payload = &image[BATCH_HEADER_BYTES..][..header.payload_len as usize];
    assert_eq!(crc32c::crc32c(payload), header.payload_crc32c);
    let result = job.run(&mut disk);
    shard.finish_flush(result);
    flush(&mut shard, &mut disk);
    assert_eq!(
        shard.read_body(&mut disk, "alice", INBOX, 2).unwrap(),
        expected
    );
    let (reopened, _) = Shard::open(&mut disk, None, big).unwrap();
    assert_eq!(reopened.mailbox("alice", INBOX).unwrap().messages.len(), 3);
    assert_eq!(
        reopened.read_body(&mut disk, "alice", INBOX, 2).unwrap(),
        expected
    );
    assert_eq!(
        reopened.read_body(&mut disk, "alice", INBOX, 3).unwrap(),
        b"small two"
    );
}

#[test]
fn staged_changes_are_invisible_until_durable() {
    let mut disk = new_disk(2);
    let (mut shard, _) = open(&mut disk, None);
    let s1 = stage(&mut shard, append("alice", "inbox", b"hello"));
    let s2 = stage(&mut shard, append("alice", INBOX, b"world"));
    assert_eq!((s1.uid, s2.uid), (Some(1), Some(2)));
    assert_eq!(s1.uidvalidity, s2.uidvalidity);
    assert!(s2.modseq > s1.modseq);
    assert!(shard.account("alice").is_none());
    assert_eq!(flush_ok(&mut shard, &mut disk), s2.ticket);
    let inbox = shard.mailbox("alice", INBOX).unwrap();
    assert_eq!(inbox.uid_next, 3);
    assert_eq!(inbox.highest_modseq, s2.modseq.unwrap());
    assert_eq!(inbox.messages[&2].size_bytes, 5);
    assert_eq!(
        shard.read_body(&mut disk, "alice", INBOX, 1).unwrap(),
        b"hello"
    );
    assert_eq!(
        shard.read_body(&mut disk, "alice", INBOX, 2).unwrap(),
        b"world"
    );
}

#[test]
fn stages_gather_while_a_flush_is_in_flight() {
    let mut disk = new_disk(3);
    let (mut shard, _) = open(&mut disk, None);
    stage(&mut shard, append("alice", INBOX, b"a"));
    let job = shard.begin_flush().unwrap();
    let later = stage(&mut shard, append("alice", INBOX, b"b"));
    assert!(shard.begin_flush().is_none(), "one flush at a time");
    let result = job.run(&mut disk);
    let outcome = shard.finish_flush(result);
    assert_eq!(
        outcome,
        FlushOutcome::Durable {
            through_ticket: job.last_ticket
        }
    );
    assert_eq!(shard.mailbox("alice", INBOX).unwrap().messages.len(), 1);
    assert_eq!(flush_ok(&mut shard, &mut disk), later.ticket);
    assert_eq!(shard.mailbox("alice", INBOX).unwrap().messages.len(), 2);
}

#[test]
fn batch_size_is_bounded_and_a_large_op_goes_alone() {
    let mut disk = new_disk(4);
    let (mut shard, _) = open(&mut disk, None);
    let body = vec![b'x'; 4 * BLOCK_BYTES];
    for _ in 0..3 {
        stage(&mut shard, append("alice", INBOX, &body));
    }
    let big = vec![b'y'; 8 * BLOCK_BYTES];
    let big_ticket = stage(&mut shard, append("alice", INBOX, &big)).ticket;
    let mut last_tickets = Vec::new();
    while let Some(FlushOutcome::Durable { through_ticket }) = flush(&mut shard, &mut disk) {
        last_tickets.push(through_ticket);
    }
    assert_eq!(last_tickets, vec![1, 2, 3, big_ticket]);
    let (reopened, _) = open(&mut disk, None);
    assert_eq!(snapshot(&reopened), snapshot(&shard));
}

#[test]
fn an_op_too_large_for_a_segment_is_refused() {
    let mut disk = new_disk(5);
    let (mut shard, _) = open(&mut disk, None);
    let err = shard
        .stage(append("alice", INBOX, &vec![0; SEG as usize]))
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(shard.begin_flush().is_none());
    let just_fits = vec![1; (SEG - 2 * BLOCK) as usize];
    stage(&mut shard, append("alice", INBOX, &just_fits));
    flush_ok(&mut shard, &mut disk);
    assert_eq!(
        shard.read_body(&mut disk, "alice", INBOX, 1).unwrap(),
        just_fits
    );
}

#[test]
fn a_batch_that_does_not_fit_starts_the_next_segment() {
    let mut disk = new_disk(6);
    let (mut shard, _) = open(&mut disk, None);
    let offsets = batches(
        &mut shard,
        &mut disk,
        &[&[1; 5 * 4096], &[2; 5 * 4096], &[3; 5 * 4096]],
    );
    assert_eq!(offsets[..2], [0, 6 * BLOCK]);
    assert_eq!(
        shard.log_end_offset(),
        SEG + 6 * BLOCK,
        "third batch moved to segment 2"
    );
    let (reopened, report) = open(&mut disk, None);
    assert_eq!(report.batches_replayed, 3);
    assert_eq!(report.torn_tail, None);
    assert_eq!(snapshot(&reopened), snapshot(&shard));
    assert_eq!(
        reopened.read_body(&mut disk, "alice", INBOX, 3).unwrap(),
        vec![3; 5 * 4096]
    );
    assert!(fsck(&mut disk, None, cfg()).is_clean());
}

#[test]
fn replay_follows_a_skipped_batch_past_unacknowledged_remains() {
    let mut disk = new_disk(22);
    let (mut shard, _) = open(&mut disk, None);
    let offsets = batches(&mut shard, &mut disk, &[&[1; 12 * 4096]]);
    let end = shard.log_end_offset();
    assert_eq!((offsets[0], end), (0, 13 * BLOCK));
    // Remains of a failed, never-acknowledged write whose zeroing did not persist.
    disk.corrupt(end, &[0x5A; BLOCK_BYTES]);
    batches(&mut shard, &mut disk, &[&[2; 4 * 4096]]);
    assert_eq!(
        shard.log_end_offset(),
        SEG + 5 * BLOCK,
        "the batch skipped to segment 2"
    );
    disk.crash();
    let (reopened, report) = open(&mut disk, None);
    assert_eq!(report.batches_replayed, 2);
    assert_eq!(snapshot(&reopened), snapshot(&shard));
    assert!(fsck(&mut disk, None, cfg()).is_clean());
}

#[test]
fn reopen_with_and_without_checkpoint_gives_the_same_index() {
    let mut disk = new_disk(7);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"a", b"b"]);
    let checkpoint = shard.checkpoint();
    assert_eq!(shard.records_since_checkpoint(), 0);
    batches(&mut shard, &mut disk, &[b"c"]);
    assert_eq!(shard.records_since_checkpoint(), 1);
    let (from_checkpoint, report) = open(&mut disk, Some(&checkpoint));
    assert!(matches!(report.checkpoint, CheckpointUse::Used { .. }));
    assert_eq!(report.records_replayed, 1);
    let (from_log, report) = open(&mut disk, None);
    assert_eq!(report.records_replayed, 4);
    assert_eq!(snapshot(&from_checkpoint), snapshot(&shard));
    assert_eq!(snapshot(&from_log), snapshot(&shard));
    assert_eq!(from_checkpoint.checkpoint(), shard.checkpoint());
    assert!(fsck(&mut disk, Some(&checkpoint), cfg()).is_clean());
}

/// A checkpoint's snapshot is taken at once and encoded later (elsewhere, while the
/// shard goes on): what it encodes is the state when it was taken, whatever changed
/// since, and reopening from it replays the rest of the log to the live state.
#[test]
fn a_snapshot_encodes_the_state_it_was_taken_at() {
    let mut disk = new_disk(8);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"a", b"b", b"c"]);
    stage(&mut shard, append("bob", INBOX, b"d"));
    flush_ok(&mut shard, &mut disk);
    let at_snapshot = shard.checkpoint();
    let snap = shard.checkpoint_snapshot();
    let at_snapshot_view = snapshot(&shard);
    // Later changes touch every kind of entry the snapshot shares with the live index.
    batches(&mut shard, &mut disk, &[b"e"]);
    stage(&mut shard, append("carol", INBOX, b"f"));
    stage(
        &mut shard,
        Op::SetFlags {
            account: "alice".into(),
            mailbox: INBOX.into(),
            uid: 1,
            flags: vec!["\\Seen".into()],
        },
    );
    stage(
        &mut shard,
        Op::Expunge {
            account: "bob".into(),
            mailbox: INBOX.into(),
            uids: vec![1],
        },
    );
    flush_ok(&mut shard, &mut disk);
    assert_ne!(snapshot(&shard), at_snapshot_view);
    // alice a, b, c, e; bob's d expunged; carol f.
    assert_eq!(shard.indexed_messages(), 5);
    let encoded = snap.encode();
    assert_eq!(encoded, at_snapshot);
    let (from_snapshot, report) = open(&mut disk, Some(&encoded));
    assert!(matches!(report.checkpoint, CheckpointUse::Used { .. }));
    assert_eq!(
        report.records_replayed, 5,
        "e, carol's INBOX and f, flags, expunge"
    );
    assert_eq!(snapshot(&from_snapshot), snapshot(&shard));
    assert!(fsck(&mut disk, Some(&encoded), cfg()).is_clean());
}

#[test]
fn torn_tail_is_discarded_zeroed_and_recovery_is_idempotent() {
    let mut disk = new_disk(8);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"acked"]);
    let acked = snapshot(&shard);
    stage(&mut shard, append("alice", INBOX, &[7; 3 * 4096]));
    let job = shard.begin_flush().unwrap();
    job.write_to(&mut disk).unwrap();
    disk.crash();
    // Make sure the tail is torn (whatever the seed decided): one sector of garbage.
    disk.corrupt(job.offset + 2 * BLOCK, &[0xAB; 512]);
    assert_eq!(
        fsck(&mut disk, None, cfg()).torn_tail_offset,
        Some(job.offset)
    );
    let (mut first, report) = open(&mut disk, None);
    let torn = report.torn_tail.clone().unwrap();
    assert_eq!(torn.offset, job.offset);
    assert!(torn.zeroed_bytes >= BLOCK);
    assert_eq!(snapshot(&first), acked);
    let (second, report) = open(&mut disk, None);
    assert_eq!(report.torn_tail, None);
    assert_eq!(snapshot(&second), acked);
    assert_eq!(second.checkpoint(), first.checkpoint());
    let after = stage(&mut first, append("alice", INBOX, b"after"));
    assert_eq!(after.uid, Some(2));
    flush_ok(&mut first, &mut disk);
    let (third, _) = open(&mut disk, None);
    assert_eq!(snapshot(&third), snapshot(&first));
    assert!(fsck(&mut disk, None, cfg()).is_clean());
}

#[test]
fn corruption_in_the_middle_is_reported_never_skipped() {
    let mut disk = new_disk(9);
    let (mut shard, _) = open(&mut disk, None);
    let offsets = batches(&mut shard, &mut disk, &[b"one", b"two", b"three"]);
    disk.corrupt(offsets[1] + BATCH_HEADER_BYTES as u64, b"X");
    match Shard::open(&mut disk, None, cfg()) {
        Err(StoreError::Corrupt { offset, .. }) => assert_eq!(offset, offsets[1]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let report = fsck(&mut disk, None, cfg());
    assert!(
        matches!(report.problems[..], [FsckProblem::Crc { offset, .. }] if offset == offsets[1]),
        "{report:?}"
    );
    disk.corrupt(offsets[1], &[0; BLOCK_BYTES]);
    let report = fsck(&mut disk, None, cfg());
    assert!(
        matches!(report.problems[..], [FsckProblem::MissingBatch { .. }]),
        "{report:?}"
    );
    assert!(Shard::open(&mut disk, None, cfg()).is_err());
}

#[test]
fn a_batch_out_of_place_or_out_of_sequence_is_named() {
    let mut disk = new_disk(10);
    let (mut shard, _) = open(&mut disk, None);
    let offsets = batches(&mut shard, &mut disk, &[b"one", b"two", b"three"]);
    let mut first = vec![0; BLOCK_BYTES];
    disk.read_at(offsets[0], &mut first).unwrap();
    disk.corrupt(offsets[1], &first);
    let report = fsck(&mut disk, None, cfg());
    let copied_image_fails = matches!(report.problems[..], [FsckProblem::Crc { .. }]);
    assert!(
        copied_image_fails,
        "a batch image elsewhere must not verify: {report:?}"
    );
    let mut third = vec![0; BLOCK_BYTES];
    disk.read_at(offsets[2], &mut third).unwrap();
    let mut header = BatchHeader::decode(&third, offsets[2]).unwrap();
    header.first_seq = 7;
    third[..BATCH_HEADER_BYTES].copy_from_slice(&header.encode(offsets[1]));
    disk.corrupt(offsets[1], &third);
    let report = fsck(&mut disk, None, cfg());
    let gap = [FsckProblem::SeqGap {
        offset: offsets[1],
        expected: 2,
        found: 7,
    }];
    assert_eq!(report.problems, gap);
    assert!(matches!(
        Shard::open(&mut disk, None, cfg()),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_bad_checkpoint_is_ignored_and_named() {
    let mut disk = new_disk(11);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"a", b"b"]);
    let mut checkpoint = shard.checkpoint();
    let last = checkpoint.len() - 1;
    checkpoint[last] ^= 1;
    let (reopened, report) = open(&mut disk, Some(&checkpoint));
    assert!(matches!(report.checkpoint, CheckpointUse::Ignored { .. }));
    assert_eq!(report.records_replayed, 3);
    assert_eq!(snapshot(&reopened), snapshot(&shard));
    let report = fsck(&mut disk, Some(&checkpoint), cfg());
    assert!(matches!(
        report.problems[..],
        [FsckProblem::CheckpointInvalid { .. }]
    ));
}

#[test]
fn fsck_names_a_checkpoint_that_disagrees_with_the_log() {
    let mut disk = new_disk(12);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"a"]);
    let mut index = shard.index.clone();
    if let Some(m) = index
        .accounts
        .get_mut("alice")
        .and_then(|a| a.mailboxes.get_mut(INBOX))
    {
        m.uid_next += 1;
    }
    let wrong = checkpoint::encode(shard.log_end, shard.next_seq, &index);
    let report = fsck(&mut disk, Some(&wrong), cfg());
    assert!(
        matches!(
            report.problems[..],
            [FsckProblem::CheckpointMismatch { .. }]
        ),
        "{report:?}"
    );
    let ahead = checkpoint::encode(shard.log_end, shard.next_seq + 5, &shard.index);
    let report = fsck(&mut disk, Some(&ahead), cfg());
    assert!(
        matches!(
            report.problems[..],
            [FsckProblem::CheckpointMismatch { .. }]
        ),
        "{report:?}"
    );
}

#[test]
fn enospc_fails_every_pending_ticket_keeps_writable_and_recovers() {
    let mut disk = SimDisk::new(13, SEG, SEG);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[&[1; 12 * 4096]]);
    let durable = snapshot(&shard);
    let s1 = stage(&mut shard, append("alice", INBOX, &[2; 6 * 4096]));
    let job = shard.begin_flush().unwrap();
    let s2 = stage(&mut shard, append("alice", INBOX, b"behind"));
    let result = job.run(&mut disk);
    let outcome = shard.finish_flush(result);
    assert_eq!(
        outcome,
        FlushOutcome::Failed {
            through_ticket: s2.ticket,
            error: StoreError::NoSpace
        }
    );
    assert!(StoreError::NoSpace.is_tempfail());
    assert_eq!(shard.health(), Health::Writable);
    assert_eq!(snapshot(&shard), durable);
    assert!(shard.begin_flush().is_none(), "the queued op failed too");
    assert_eq!((s1.uid, s2.uid), (Some(2), Some(3)));
    let s3 = stage(&mut shard, append("alice", INBOX, &[3; 6 * 4096]));
    assert_eq!(s3.uid, Some(4), "UIDs never go back in-process");
    assert!(s3.modseq > s2.modseq);
    assert!(matches!(
        flush(&mut shard, &mut disk),
        Some(FlushOutcome::Failed { .. })
    ));
    disk.set_capacity_bytes(4 * SEG);
    stage(&mut shard, append("alice", INBOX, &[4; 6 * 4096]));
    flush_ok(&mut shard, &mut disk);
    let uids: Vec<Uid> = shard
        .mailbox("alice", INBOX)
        .unwrap()
        .messages
        .keys()
        .copied()
        .collect();
    assert_eq!(uids, vec![1, 5]);
    let (reopened, _) = open(&mut disk, None);
    assert_eq!(snapshot(&reopened), snapshot(&shard));
    assert!(fsck(&mut disk, None, cfg()).is_clean());
}

#[test]
fn eio_on_sync_makes_the_shard_read_only_for_good() {
    let mut disk = new_disk(14);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"acked"]);
    let durable = snapshot(&shard);
    let pending = stage(&mut shard, append("alice", INBOX, b"never acked"));
    disk.fail_next_sync();
    let outcome = flush(&mut shard, &mut disk).unwrap();
    match outcome {
        FlushOutcome::Failed {
            through_ticket,
            error,
        } => {
            assert_eq!(through_ticket, pending.ticket);
            assert!(matches!(error, StoreError::Io { .. }) && error.is_tempfail());
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert!(matches!(shard.health(), Health::ReadOnly { .. }));
    assert!(matches!(
        shard.stage(append("alice", INBOX, b"x")),
        Err(StoreError::ReadOnly { .. })
    ));
    assert!(shard.begin_flush().is_none());
    assert_eq!(snapshot(&shard), durable);
    assert_eq!(
        shard.read_body(&mut disk, "alice", INBOX, 1).unwrap(),
        b"acked"
    );
    disk.crash();
    let (mut reopened, _) = open(&mut disk, None);
    assert_eq!(reopened.health(), Health::Writable);
    let inbox = reopened.mailbox("alice", INBOX).unwrap();
    assert_eq!(
        inbox.messages[&1].location,
        durable[0].1.mailboxes[INBOX].messages[&1].location
    );
    stage(&mut reopened, append("alice", INBOX, b"again"));
    flush_ok(&mut reopened, &mut disk);
    assert!(fsck(&mut disk, None, cfg()).is_clean());
}

#[test]
fn eio_on_write_makes_the_shard_read_only() {
    let mut disk = new_disk(15);
    let (mut shard, _) = open(&mut disk, None);
    stage(&mut shard, append("alice", INBOX, b"x"));
    disk.fail_next_write();
    assert!(matches!(
        flush(&mut shard, &mut disk),
        Some(FlushOutcome::Failed { .. })
    ));
    assert!(matches!(shard.health(), Health::ReadOnly { .. }));
}

/// What a runtime tells a client after waiting at most `bound_ms` for durability.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Ack,
    TempFail,
}

/// Runs one flush the way the runtime does: a stall beyond `bound_ms` answers TempFail
/// (the runtime's deadline passes) even if the write completes later.
fn deliver_batch(shard: &mut Shard, disk: &mut SimDisk, bound_ms: u64) -> Reply {
    let Some(job) = shard.begin_flush() else {
        return Reply::TempFail;
    };
    let result = job.run(disk);
    let stalled_ms = disk.take_stall_ms();
    let outcome = shard.finish_flush(result);
    match outcome {
        FlushOutcome::Durable { .. } if stalled_ms <= bound_ms => Reply::Ack,
        _ => Reply::TempFail,
    }
}

#[test]
fn a_stall_beyond_the_bound_tempfails_and_loses_nothing_acked() {
    let mut disk = new_disk(16);
    let (mut shard, _) = open(&mut disk, None);
    stage(&mut shard, append("alice", INBOX, b"before"));
    assert_eq!(deliver_batch(&mut shard, &mut disk, 1000), Reply::Ack);
    stage(&mut shard, append("alice", INBOX, b"stalled"));
    disk.stall_next_ops(2, 800);
    assert_eq!(deliver_batch(&mut shard, &mut disk, 1000), Reply::TempFail);
    assert_eq!(
        shard.health(),
        Health::Writable,
        "a slow disk is not a failed disk"
    );
    stage(&mut shard, append("alice", INBOX, b"after"));
    assert_eq!(deliver_batch(&mut shard, &mut disk, 1000), Reply::Ack);
    disk.crash();
    let (reopened, _) = open(&mut disk, None);
    let inbox = reopened.mailbox("alice", INBOX).unwrap();
    for (uid, body) in [(1, &b"before"[..]), (3, b"after")] {
        assert_eq!(
            reopened.read_body(&mut disk, "alice", INBOX, uid).unwrap(),
            body
        );
    }
    assert_eq!(
        inbox.messages.len(),
        3,
        "the tempfailed message is durable too (at-least-once)"
    );
}

#[test]
fn read_body_detects_a_damaged_body() {
    let mut disk = new_disk(17);
    let (mut shard, _) = open(&mut disk, None);
    batches(&mut shard, &mut disk, &[b"precious", b"later"]);
    let at = shard.mailbox("alice", INBOX).unwrap().messages[&1]
        .location
        .offset;
    let mut block = vec![0; BLOCK_BYTES];
    disk.read_at(at - at % BLOCK, &mut block).unwrap();
    block[(at % BLOCK) as usize] ^= 0xFF;
    disk.corrupt(at - at % BLOCK, &block);
    let err = shard.read_body(&mut disk, "alice", INBOX, 1).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    let report = fsck(&mut disk, None, cfg());
    assert!(
        matches!(report.problems[..], [FsckProblem::Crc { offset: 0, .. }]),
        "{report:?}"
    );
}

#[test]
fn mailbox_lifecycle_and_its_errors() {
    let mut disk = new_disk(18);
    let (mut shard, _) = open(&mut disk, None);
    let work = stage(
        &mut shard,
        Op::CreateMailbox {
            account: "bob".into(),
            name: "Work".into(),
        },
    );
    let create_again = shard.stage(Op::CreateMailbox {
        account: "bob".into(),
        name: "Work".into(),
    });
    assert!(matches!(
        create_again,
        Err(StoreError::MailboxExists { .. })
    ));
    let delete_inbox = shard.stage(Op::DeleteMailbox {
        account: "bob".into(),
        name: "inbox".into(),
    });
    assert!(matches!(delete_inbox, Err(StoreError::Refused { .. })));
    stage(&mut shard, append("bob", "Work", b"m"));
    stage(
        &mut shard,
        Op::RenameMailbox {
            account: "bob".into(),
            from: "Work".into(),
            to: "Old".into(),
        },
    );
    flush_ok(&mut shard, &mut disk);
    let bob = shard.account("bob").unwrap();
    assert_eq!(bob.mailboxes.keys().collect::<Vec<_>>(), ["INBOX", "Old"]);
    assert_eq!(Some(bob.mailboxes["Old"].uidvalidity), work.uidvalidity);
    assert!(bob.mailboxes["INBOX"].uidvalidity < bob.mailboxes["Old"].uidvalidity);
    let missing = shard.stage(Op::SetFlags {
        account: "bob".into(),
        mailbox: "Old".into(),
        uid: 9,
        flags: vec![],
    });
    assert!(matches!(
        missing,
        Err(StoreError::NoSuchMessage { uid: 9, .. })
    ));
    let flags = vec!["\\Seen".into(), "$Work".into(), "\\Seen".into()];
    let set = Op::SetFlags {
        account: "bob".into(),
        mailbox: "Old".into(),
        uid: 1,
        flags,
    };
    stage(&mut shard, set);
    let gone = Op::Expunge {
        account: "bob".into(),
        mailbox: "Old".into(),
        uids: vec![1, 7],
    };
    let expunged = stage(&mut shard, gone);
    stage(
        &mut shard,
        Op::DeleteMailbox {
            account: "bob".into(),
            name: "Old".into(),
        },
    );
    let recreated = stage(
        &mut shard,
        Op::CreateMailbox {
            account: "bob".into(),
            name: "Old".into(),
        },
    );
    assert!(
        recreated.uidvalidity > work.uidvalidity,
        "a re-created mailbox gets a new UIDVALIDITY"
    );
    flush_ok(&mut shard, &mut disk);
    assert!(expunged.modseq.is_some());
    let old = shard.mailbox("bob", "Old").unwrap();
    assert!(old.messages.is_empty() && old.uid_next == 1);
    let (reopened, _) = open(&mut disk, None);
    assert_eq!(snapshot(&reopened), snapshot(&shard));
}

/// The count of indexed messages (what spaces a large index's checkpoints) follows
/// appends, expunges and deleted mailboxes, and comes back from a checkpoint and a log.
#[test]
fn the_message_count_follows_every_change_and_every_reopen() {
    let mut disk = new_disk(23);
    let (mut shard, _) = open(&mut disk, None);
    for body in [b"a", b"b", b"c"] {
        stage(&mut shard, append("alice", INBOX, body));
    }
    let work = Op::CreateMailbox {
        account: "alice".into(),
        name: "Work".into(),
    };
    stage(&mut shard, work);
    stage(&mut shard, append("alice", "Work", b"w1"));
    stage(&mut shard, append("alice", "Work", b"w2"));
    flush_ok(&mut shard, &mut disk);
    assert_eq!(shard.indexed_messages(), 5);
    let gone = Op::Expunge {
        account: "alice".into(),
        mailbox: INBOX.into(),
        uids: vec![2],
    };
    stage(&mut shard, gone);
    flush_ok(&mut shard, &mut disk);
    assert_eq!(shard.indexed_messages(), 4);
    let checkpoint = shard.checkpoint();
    let delete = Op::DeleteMailbox {
        account: "alice".into(),
        name: "Work".into(),
    };
    stage(&mut shard, delete);
    stage(&mut shard, append("bob", INBOX, b"d"));
    flush_ok(&mut shard, &mut disk);
    assert_eq!(shard.indexed_messages(), 3);
    let (from_checkpoint, _) = open(&mut disk, Some(&checkpoint));
    assert_eq!(from_checkpoint.indexed_messages(), 3);
    let (from_log, _) = open(&mut disk, None);
    assert_eq!(from_log.indexed_messages(), 3);
}

#[test]
fn flags_are_normalized_and_modseq_ascends() {
    let mut disk = new_disk(19);
    let (mut shard, _) = open(&mut disk, None);
    let added = stage(&mut shard, append("carol", INBOX, b"m"));
    let flags = vec!["\\Seen".into(), "$Label".into(), "\\Seen".into()];
    let set = stage(
        &mut shard,
        Op::SetFlags {
            account: "carol".into(),
            mailbox: INBOX.into(),
            uid: 1,
            flags,
        },
    );
    assert!(set.modseq > added.modseq);
    flush_ok(&mut shard, &mut disk);
    let message = &shard.mailbox("carol", INBOX).unwrap().messages[&1];
    assert_eq!(message.flags, ["$Label", "\\Seen"]);
    assert_eq!(Some(message.modseq), set.modseq);
    let bad = vec!["has space".into()];
    let err = shard.stage(Op::SetFlags {
        account: "carol".into(),
        mailbox: INBOX.into(),
        uid: 1,
        flags: bad,
    });
    assert!(matches!(err, Err(StoreError::InvalidName { .. })));
}

#[test]
fn uidvalidity_floor_and_persistence_across_restarts() {
    let mut disk = new_disk(20);
    let (mut shard, _) = open(&mut disk, None);
    shard.set_uidvalidity_floor(1_700_000_000);
    let first = stage(&mut shard, append("dave", INBOX, b"m"));
    assert_eq!(first.uidvalidity, Some(1_700_000_000));
    stage(
        &mut shard,
        Op::CreateMailbox {
            account: "dave".into(),
            name: "Tmp".into(),
        },
    );
    stage(
        &mut shard,
        Op::DeleteMailbox {
            account: "dave".into(),
            name: "Tmp".into(),
        },
    );
    flush_ok(&mut shard, &mut disk);
    let checkpoint = shard.checkpoint();
    let (mut reopened, _) = open(&mut disk, Some(&checkpoint));
    let again = stage(
        &mut reopened,
        Op::CreateMailbox {
            account: "dave".into(),
            name: "Tmp".into(),
        },
    );
    assert_eq!(
        again.uidvalidity,
        Some(1_700_000_002),
        "a deleted mailbox's UIDVALIDITY is never reused"
    );
}

#[test]
fn invalid_configuration_is_refused() {
    let mut disk = new_disk(21);
    let bad = ShardConfig {
        segment_size_bytes: 5000,
        flush_batch_max_bytes: 1,
    };
    assert!(matches!(
        Shard::open(&mut disk, None, bad),
        Err(StoreError::Config { .. })
    ));
    assert!(!fsck(&mut disk, None, bad).is_clean());
}

#[test]
fn subscriptions_persist_through_replay_and_checkpoint() {
    let mut disk = new_disk(21);
    let (mut shard, _) = open(&mut disk, None);
    let sub = |name: &str| Op::Subscribe {
        account: "alice".into(),
        name: name.into(),
    };
    assert!(matches!(
        shard.stage(sub("Lists")),
        Err(StoreError::NoSuchMailbox { .. })
    ));
    stage(&mut shard, append("alice", INBOX, b"one"));
    stage(&mut shard, sub("Lists"));
    stage(&mut shard, sub("inbox"));
    stage(&mut shard, sub("Gone"));
    stage(
        &mut shard,
        Op::Unsubscribe {
            account: "alice".into(),
            name: "Gone".into(),
        },
    );
    assert!(matches!(
        shard.stage(sub("bad\u{7}name")),
        Err(StoreError::InvalidName { .. })
    ));
    while flush(&mut shard, &mut disk).is_some() {}
    let subscribed = |shard: &Shard| -> Vec<String> {
        shard
            .account("alice")
            .map(|a| a.subscriptions.iter().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(subscribed(&shard), ["INBOX", "Lists"]);
    let checkpoint = shard.checkpoint();
    let (replayed, _) = open(&mut disk, None);
    assert_eq!(subscribed(&replayed), ["INBOX", "Lists"]);
    let (restored, _) = open(&mut disk, Some(&checkpoint));
    assert_eq!(subscribed(&restored), ["INBOX", "Lists"]);
}
