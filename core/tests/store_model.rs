//! Property test of the shard store against a simple in-memory model.
//!
//! Random sequences of appends, flag changes, expunges, mailbox create/rename/delete,
//! flushes (whole, or begun and finished apart so that stages gather behind them),
//! crashes at any point, failed syncs and writes (EIO), a full disk (ENOSPC) and space
//! returning, and stalls run on a [`SimDisk`]. After every flush the durable index must
//! equal the model; after every crash and reopen: every acknowledged change survives
//! exactly, a batch whose fate was unknown is there whole or not at all, bodies are
//! byte-identical, opening twice gives the same index, and fsck is clean.
//!
//! 1,000 cases run by default. To run more:
//! `TREEHOUSE_STORE_CASES=100000 cargo test -p treehouse-core --release --test store_model`

use std::collections::BTreeMap;
use std::io;

use proptest::prelude::*;
use treehouse_core::disk::{BLOCK_BYTES, Disk, SimDisk, SplitMix64};
use treehouse_core::store::{
    CheckpointUse, FlushJob, FlushOutcome, Health, INBOX, ModSeq, Op, Shard, ShardConfig, Staged,
    StoreError, Uid, fsck,
};

const SEG: u64 = 8 * BLOCK_BYTES as u64;
const CAPACITY_BYTES: u64 = 64 * SEG;
const STALL_BOUND_MS: u64 = 1000;
const ACCOUNTS: [&str; 2] = ["alice", "bob"];
const MAILBOXES: [&str; 3] = [INBOX, "Sent", "Work"];
const FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Deleted", "$Label"];
const HINT: &str = "store_model: TREEHOUSE_STORE_CASES=100000 cargo test -p treehouse-core --release --test store_model runs more cases";

fn cfg() -> ShardConfig {
    ShardConfig {
        segment_size_bytes: SEG,
        flush_batch_max_bytes: 3 * BLOCK_BYTES as u64,
    }
}

fn cases() -> u32 {
    std::env::var("TREEHOUSE_STORE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[derive(Debug, Clone)]
enum Action {
    Append {
        account: usize,
        mailbox: usize,
        flags: u8,
        body_len: usize,
        seed: u64,
    },
    Create {
        account: usize,
        mailbox: usize,
    },
    Delete {
        account: usize,
        mailbox: usize,
    },
    Rename {
        account: usize,
        from: usize,
        to: usize,
    },
    SetFlags {
        account: usize,
        mailbox: usize,
        pick: usize,
        flags: u8,
    },
    Expunge {
        account: usize,
        mailbox: usize,
        picks: Vec<usize>,
    },
    Flush,
    Begin,
    Finish,
    Crash {
        checkpoint_mode: u8,
    },
    FailNextSync,
    FailNextWrite,
    DiskFull,
    SpaceReturns,
    Stall {
        delay_ms: u64,
    },
    Checkpoint,
}

fn action() -> impl Strategy<Value = Action> {
    let a = 0..ACCOUNTS.len();
    let m = 0..MAILBOXES.len();
    let body_len = prop_oneof![
        6 => 0usize..300,
        3 => 300usize..5000,
        2 => 5000usize..20_000,
        1 => Just(SEG as usize + 1),
    ];
    prop_oneof![
        30 => (a.clone(), m.clone(), any::<u8>(), body_len, any::<u64>()).prop_map(
            |(account, mailbox, flags, body_len, seed)| Action::Append { account, mailbox, flags, body_len, seed }
        ),
        5 => (a.clone(), m.clone()).prop_map(|(account, mailbox)| Action::Create { account, mailbox }),
        4 => (a.clone(), m.clone()).prop_map(|(account, mailbox)| Action::Delete { account, mailbox }),
        4 => (a.clone(), m.clone(), m.clone()).prop_map(|(account, from, to)| Action::Rename { account, from, to }),
        10 => (a.clone(), m.clone(), any::<usize>(), any::<u8>()).prop_map(
            |(account, mailbox, pick, flags)| Action::SetFlags { account, mailbox, pick, flags }
        ),
        6 => (a, m, prop::collection::vec(any::<usize>(), 1..4)).prop_map(
            |(account, mailbox, picks)| Action::Expunge { account, mailbox, picks }
        ),
        12 => Just(Action::Flush),
        6 => Just(Action::Begin),
        6 => Just(Action::Finish),
        5 => (0u8..3).prop_map(|checkpoint_mode| Action::Crash { checkpoint_mode }),
        2 => Just(Action::FailNextSync),
        1 => Just(Action::FailNextWrite),
        2 => Just(Action::DiskFull),
        2 => Just(Action::SpaceReturns),
        3 => prop_oneof![Just(100u64), Just(800), Just(5000)].prop_map(|delay_ms| Action::Stall { delay_ms }),
        3 => Just(Action::Checkpoint),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelMessage {
    modseq: ModSeq,
    flags: Vec<String>,
    internal_date: i64,
    meta: Vec<u8>,
    body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelMailbox {
    /// None only for an INBOX created implicitly, until the store shows its value.
    uidvalidity: Option<u32>,
    uid_next: Uid,
    highest_modseq: ModSeq,
    messages: BTreeMap<Uid, ModelMessage>,
}

impl ModelMailbox {
    fn new(uidvalidity: Option<u32>) -> Self {
        Self {
            uidvalidity,
            uid_next: 1,
            highest_modseq: 1,
            messages: BTreeMap::new(),
        }
    }
}

type Model = BTreeMap<String, BTreeMap<String, ModelMailbox>>;

/// A staged change with the identifiers the store assigned.
#[derive(Debug, Clone)]
enum Change {
    Append {
        account: String,
        mailbox: String,
        uidvalidity: u32,
        uid: Uid,
        message: ModelMessage,
    },
    Create {
        account: String,
        name: String,
        uidvalidity: u32,
    },
    Delete {
        account: String,
        name: String,
    },
    Rename {
        account: String,
        from: String,
        to: String,
    },
    SetFlags {
        account: String,
        mailbox: String,
        uid: Uid,
        modseq: ModSeq,
        flags: Vec<String>,
    },
    Expunge {
        account: String,
        mailbox: String,
        uids: Vec<Uid>,
        modseq: ModSeq,
    },
}

fn mailbox<'a>(model: &'a Model, account: &str, name: &str) -> Option<&'a ModelMailbox> {
    model.get(account).and_then(|a| a.get(name))
}

fn mailbox_mut<'a>(model: &'a mut Model, account: &str, name: &str) -> &'a mut ModelMailbox {
    match model.get_mut(account).and_then(|a| a.get_mut(name)) {
        Some(m) => m,
        None => panic!("model: no mailbox {account}/{name}"),
    }
}

/// The mailbox a create or append lands in: made (with its account) where absent.
fn land<'a>(
    model: &'a mut Model,
    account: &str,
    name: &str,
    uidvalidity: u32,
) -> &'a mut ModelMailbox {
    let account = model
        .entry(account.to_string())
        .or_insert_with(|| BTreeMap::from([(INBOX.to_string(), ModelMailbox::new(None))]));
    let m = account
        .entry(name.to_string())
        .or_insert_with(|| ModelMailbox::new(Some(uidvalidity)));
    assert!(
        m.uidvalidity.is_none_or(|v| v == uidvalidity),
        "UIDVALIDITY of {name} changed"
    );
    m.uidvalidity = Some(uidvalidity);
    m
}

fn apply(model: &mut Model, change: &Change) {
    match change {
        Change::Append {
            account,
            mailbox,
            uidvalidity,
            uid,
            message,
        } => {
            let m = land(model, account, mailbox, *uidvalidity);
            assert!(*uid >= m.uid_next && message.modseq > m.highest_modseq);
            m.uid_next = uid + 1;
            m.highest_modseq = message.modseq;
            m.messages.insert(*uid, message.clone());
        }
        Change::Create {
            account,
            name,
            uidvalidity,
        } => {
            land(model, account, name, *uidvalidity);
        }
        Change::Delete { account, name } => {
            model.get_mut(account).and_then(|a| a.remove(name));
        }
        Change::Rename { account, from, to } => {
            if let Some(a) = model.get_mut(account)
                && let Some(m) = a.remove(from)
            {
                a.insert(to.clone(), m);
            }
        }
        Change::SetFlags {
            account,
            mailbox,
            uid,
            modseq,
            flags,
        } => {
            let m = mailbox_mut(model, account, mailbox);
            m.highest_modseq = *modseq;
            if let Some(message) = m.messages.get_mut(uid) {
                message.flags = flags.clone();
                message.modseq = *modseq;
            }
        }
        Change::Expunge {
            account,
            mailbox,
            uids,
            modseq,
        } => {
            let m = mailbox_mut(model, account, mailbox);
            m.highest_modseq = *modseq;
            for uid in uids {
                m.messages.remove(uid);
            }
        }
    }
}

/// Whether the model says the store must accept `op` (on a writable shard).
fn accepts(model: &Model, op: &Op) -> bool {
    let exists = |a: &str, n: &str| mailbox(model, a, n).is_some();
    match op {
        Op::Append { body, .. } => body.len() < SEG as usize - 2 * BLOCK_BYTES,
        Op::CreateMailbox { account, name } => !exists(account, name),
        Op::DeleteMailbox { account, name } => name != INBOX && exists(account, name),
        Op::RenameMailbox { account, from, to } => {
            from != INBOX && exists(account, from) && !exists(account, to)
        }
        Op::SetFlags {
            account,
            mailbox: name,
            uid,
            ..
        } => mailbox(model, account, name).is_some_and(|m| m.messages.contains_key(uid)),
        Op::Expunge {
            account,
            mailbox: name,
            uids,
        } => mailbox(model, account, name)
            .is_some_and(|m| uids.iter().any(|u| m.messages.contains_key(u))),
        Op::Subscribe { account, .. } | Op::Unsubscribe { account, .. } => {
            model.contains_key(account)
        }
    }
}

fn flag_set(bits: u8) -> Vec<String> {
    let mut flags: Vec<String> = FLAGS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, f)| f.to_string())
        .collect();
    flags.sort();
    flags
}

fn body_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

/// The store's durable state in model form, bodies read back from the disk.
fn store_view(shard: &Shard, disk: &mut SimDisk) -> Model {
    let mut view = Model::new();
    for account in shard.accounts() {
        let Some(a) = shard.account(account) else {
            continue;
        };
        for (name, m) in &a.mailboxes {
            let mut mailbox = ModelMailbox::new(Some(m.uidvalidity));
            mailbox.uid_next = m.uid_next;
            mailbox.highest_modseq = m.highest_modseq;
            for (uid, message) in &m.messages {
                let body = match shard.read_body(disk, account, name, *uid) {
                    Ok(body) => body,
                    Err(e) => panic!("body of {account}/{name}/{uid} unreadable: {e}"),
                };
                assert_eq!(message.size_bytes, body.len() as u64);
                let entry = ModelMessage {
                    modseq: message.modseq,
                    flags: message.flags.clone(),
                    internal_date: message.internal_date,
                    meta: message.meta.to_vec(),
                    body,
                };
                mailbox.messages.insert(*uid, entry);
            }
            view.entry(account.to_string())
                .or_default()
                .insert(name.clone(), mailbox);
        }
    }
    view
}

/// Fills in UIDVALIDITYs the model could not know (implicit INBOX) from the store.
fn learn(model: &mut Model, view: &Model) {
    for (account, mailboxes) in model.iter_mut() {
        for (name, m) in mailboxes
            .iter_mut()
            .filter(|(_, m)| m.uidvalidity.is_none())
        {
            m.uidvalidity = mailbox(view, account, name).and_then(|v| v.uidvalidity);
        }
    }
}

fn open_retrying(
    disk: &mut SimDisk,
    checkpoint: Option<&[u8]>,
) -> (Shard, treehouse_core::store::RecoveryReport) {
    // Each armed fault fails at most one open, and a case arms fewer than 200.
    for _ in 0..200 {
        match Shard::open(disk, checkpoint, cfg()) {
            Ok(v) => return v,
            // An injected write or sync fault hit recovery's own zeroing: open again.
            Err(StoreError::Io { .. }) => continue,
            Err(e) => panic!("open failed: {e}"),
        }
    }
    panic!("open kept failing")
}

struct Flight {
    job: FlushJob,
    write_error: Option<io::Error>,
}

struct World {
    disk: SimDisk,
    shard: Shard,
    /// What is durable: acknowledged changes, and durable ones whose ack timed out.
    committed: Model,
    /// `committed` plus every staged change: what the store validates against.
    head: Model,
    pending: Vec<(u64, Change)>,
    in_flight: Option<Flight>,
    /// A written batch whose fate is unknown (failed sync, crash before sync).
    uncertain: Vec<Change>,
    read_only: bool,
    last_ticket: u64,
    checkpoint: Option<Vec<u8>>,
    uid_high: BTreeMap<u32, Uid>,
    modseq_high: BTreeMap<u32, ModSeq>,
    uidvalidity_high: u32,
    uidvalidity_durable_high: u32,
    observed: BTreeMap<u32, (Uid, ModSeq)>,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut disk = SimDisk::new(seed, CAPACITY_BYTES, SEG);
        let (shard, _) = open_retrying(&mut disk, None);
        World {
            disk,
            shard,
            committed: Model::new(),
            head: Model::new(),
            pending: Vec::new(),
            in_flight: None,
            uncertain: Vec::new(),
            read_only: false,
            last_ticket: 0,
            checkpoint: None,
            uid_high: BTreeMap::new(),
            modseq_high: BTreeMap::new(),
            uidvalidity_high: 0,
            uidvalidity_durable_high: 0,
            observed: BTreeMap::new(),
        }
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Append {
                account,
                mailbox,
                flags,
                body_len,
                seed,
            } => {
                let op = Op::Append {
                    account: ACCOUNTS[account].into(),
                    mailbox: MAILBOXES[mailbox].into(),
                    flags: flag_set(flags),
                    internal_date: 1_700_000_000 + seed as i64 % 1000,
                    meta: seed.to_le_bytes()[..(seed % 9) as usize].to_vec(),
                    body: body_bytes(body_len, seed),
                };
                self.stage(op);
            }
            Action::Create { account, mailbox } => self.stage(Op::CreateMailbox {
                account: ACCOUNTS[account].into(),
                name: MAILBOXES[mailbox].into(),
            }),
            Action::Delete { account, mailbox } => self.stage(Op::DeleteMailbox {
                account: ACCOUNTS[account].into(),
                name: MAILBOXES[mailbox].into(),
            }),
            Action::Rename { account, from, to } => self.stage(Op::RenameMailbox {
                account: ACCOUNTS[account].into(),
                from: MAILBOXES[from].into(),
                to: MAILBOXES[to].into(),
            }),
            Action::SetFlags {
                account,
                mailbox,
                pick,
                flags,
            } => {
                let uid = self.pick_uid(account, mailbox, pick);
                self.stage(Op::SetFlags {
                    account: ACCOUNTS[account].into(),
                    mailbox: MAILBOXES[mailbox].into(),
                    uid,
                    flags: flag_set(flags),
                });
            }
            Action::Expunge {
                account,
                mailbox,
                picks,
            } => {
                let uids = picks
                    .iter()
                    .map(|&p| self.pick_uid(account, mailbox, p))
                    .collect();
                self.stage(Op::Expunge {
                    account: ACCOUNTS[account].into(),
                    mailbox: MAILBOXES[mailbox].into(),
                    uids,
                });
            }
            Action::Flush => self.flush(),
            Action::Begin => self.begin(),
            Action::Finish => self.finish(),
            Action::Crash { checkpoint_mode } => self.crash(checkpoint_mode),
            Action::FailNextSync => self.disk.fail_next_sync(),
            Action::FailNextWrite => self.disk.fail_next_write(),
            Action::DiskFull => self.disk.set_capacity_bytes(self.disk.len()),
            Action::SpaceReturns => self.disk.set_capacity_bytes(CAPACITY_BYTES),
            Action::Stall { delay_ms } => self.disk.stall_next_ops(2, delay_ms),
            Action::Checkpoint => self.checkpoint = Some(self.shard.checkpoint()),
        }
    }

    /// A UID of the mailbox (by `pick`), or one that is likely absent when it is empty.
    fn pick_uid(&self, account: usize, mailbox: usize, pick: usize) -> Uid {
        let uids: Vec<Uid> = crate::mailbox(&self.head, ACCOUNTS[account], MAILBOXES[mailbox])
            .map(|m| m.messages.keys().copied().collect())
            .unwrap_or_default();
        if uids.is_empty() || pick.is_multiple_of(8) {
            (pick % 50) as Uid + 1
        } else {
            uids[pick % uids.len()]
        }
    }

    fn stage(&mut self, op: Op) {
        let accepted = accepts(&self.head, &op);
        let result = self.shard.stage(op.clone());
        if self.read_only {
            assert!(
                matches!(result, Err(StoreError::ReadOnly { .. })),
                "read-only shard staged {op:?}"
            );
            return;
        }
        match result {
            Ok(staged) => {
                assert!(accepted, "store accepted {op:?}, the model refuses it");
                assert!(staged.ticket > self.last_ticket, "tickets must ascend");
                self.last_ticket = staged.ticket;
                let change = self.change_of(op, staged);
                apply(&mut self.head, &change);
                self.pending.push((staged.ticket, change));
            }
            Err(e) => {
                assert!(!accepted, "store refused {op:?}: {e}");
                assert!(!e.is_tempfail(), "a refusal is not a tempfail: {e}");
            }
        }
    }

    fn check_new_uidvalidity(&mut self, uidvalidity: u32) {
        assert!(
            uidvalidity > self.uidvalidity_high,
            "UIDVALIDITY {uidvalidity} not new"
        );
        self.uidvalidity_high = uidvalidity;
    }

    fn check_modseq(&mut self, m: Option<&ModelMailbox>, uidvalidity: u32, modseq: ModSeq) {
        let floor = m.map_or(1, |m| m.highest_modseq);
        let high = self.modseq_high.entry(uidvalidity).or_insert(0);
        assert!(
            modseq > floor && modseq > *high,
            "MODSEQ {modseq} not above {floor} and {high}"
        );
        *high = modseq;
    }

    fn change_of(&mut self, op: Op, staged: Staged) -> Change {
        let (Some(uidvalidity), modseq) = (staged.uidvalidity, staged.modseq) else {
            panic!("staged op without UIDVALIDITY: {op:?}");
        };
        match op {
            Op::Append {
                account,
                mailbox,
                flags,
                internal_date,
                meta,
                body,
            } => {
                let existing = crate::mailbox(&self.head, &account, &mailbox).cloned();
                if existing.is_none() {
                    self.check_new_uidvalidity(uidvalidity);
                }
                let uid = staged.uid.unwrap_or(0);
                let high = self.uid_high.entry(uidvalidity).or_insert(0);
                let uid_next = existing.as_ref().map_or(1, |m| m.uid_next);
                assert!(
                    uid > *high && uid >= uid_next,
                    "UID {uid} reused (UIDNEXT {uid_next})"
                );
                *high = uid;
                let modseq = modseq.unwrap_or(0);
                self.check_modseq(existing.as_ref(), uidvalidity, modseq);
                let message = ModelMessage {
                    modseq,
                    flags,
                    internal_date,
                    meta,
                    body,
                };
                Change::Append {
                    account,
                    mailbox,
                    uidvalidity,
                    uid,
                    message,
                }
            }
            Op::CreateMailbox { account, name } => {
                self.check_new_uidvalidity(uidvalidity);
                Change::Create {
                    account,
                    name,
                    uidvalidity,
                }
            }
            Op::DeleteMailbox { account, name } => Change::Delete { account, name },
            Op::RenameMailbox { account, from, to } => Change::Rename { account, from, to },
            Op::SetFlags {
                account,
                mailbox,
                uid,
                flags,
            } => {
                let existing = crate::mailbox(&self.head, &account, &mailbox).cloned();
                let modseq = modseq.unwrap_or(0);
                self.check_modseq(existing.as_ref(), uidvalidity, modseq);
                Change::SetFlags {
                    account,
                    mailbox,
                    uid,
                    modseq,
                    flags,
                }
            }
            Op::Expunge {
                account,
                mailbox,
                uids,
            } => {
                let existing = crate::mailbox(&self.head, &account, &mailbox).cloned();
                let modseq = modseq.unwrap_or(0);
                self.check_modseq(existing.as_ref(), uidvalidity, modseq);
                let present = existing.map(|m| m.messages).unwrap_or_default();
                let mut uids: Vec<Uid> = uids
                    .into_iter()
                    .filter(|u| present.contains_key(u))
                    .collect();
                uids.sort_unstable();
                uids.dedup();
                Change::Expunge {
                    account,
                    mailbox,
                    uids,
                    modseq,
                }
            }
            Op::Subscribe { .. } | Op::Unsubscribe { .. } => {
                panic!("the model never stages subscriptions: {op:?}")
            }
        }
    }

    fn begin(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let Some(job) = self.shard.begin_flush() else {
            assert!(
                self.pending.is_empty() || self.read_only,
                "staged changes but no flush job"
            );
            return;
        };
        assert!(!self.read_only && !self.pending.is_empty());
        assert_eq!(job.batch.len_bytes() % BLOCK_BYTES as u64, 0);
        self.disk.take_stall_ms();
        let write_error = job.write_to(&mut self.disk).err();
        self.in_flight = Some(Flight { job, write_error });
    }

    fn take_pending_through(&mut self, ticket: u64) -> Vec<Change> {
        let split = self.pending.partition_point(|(t, _)| *t <= ticket);
        self.pending.drain(..split).map(|(_, c)| c).collect()
    }

    fn finish(&mut self) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        let written = flight.write_error.is_none();
        let result = match flight.write_error {
            Some(e) => Err(e),
            None => self.disk.sync(),
        };
        // A stall past the bound means the runtime answered tempfail already; what the
        // flush makes durable is still committed (at-least-once), never acknowledged.
        let _stalled = self.disk.take_stall_ms() > STALL_BOUND_MS;
        match self.shard.finish_flush(result) {
            FlushOutcome::Durable { through_ticket } => {
                assert_eq!(through_ticket, flight.job.last_ticket);
                assert_eq!(self.shard.health(), Health::Writable);
                for change in self.take_pending_through(through_ticket) {
                    self.commit(&change);
                }
                self.check_in_process();
            }
            FlushOutcome::Failed {
                through_ticket,
                error,
            } => {
                assert_eq!(
                    through_ticket, self.last_ticket,
                    "every pending ticket fails"
                );
                assert!(error.is_tempfail());
                let in_job = self.take_pending_through(flight.job.last_ticket);
                self.pending.clear();
                self.head = self.committed.clone();
                if error == StoreError::NoSpace {
                    assert!(!written, "ENOSPC comes before anything is written");
                    assert_eq!(self.shard.health(), Health::Writable);
                } else {
                    assert!(matches!(self.shard.health(), Health::ReadOnly { .. }));
                    self.read_only = true;
                    if written {
                        self.uncertain = in_job;
                    }
                }
                self.check_in_process();
            }
        }
    }

    fn flush(&mut self) {
        self.finish();
        while !self.read_only {
            self.begin();
            if self.in_flight.is_none() {
                break;
            }
            self.finish();
        }
    }

    fn commit(&mut self, change: &Change) {
        if let Change::Create { uidvalidity, .. } | Change::Append { uidvalidity, .. } = change {
            self.uidvalidity_durable_high = self.uidvalidity_durable_high.max(*uidvalidity);
        }
        apply(&mut self.committed, change);
    }

    /// The durable index equals the committed model, and the store's promises hold.
    fn check_in_process(&mut self) {
        let view = store_view(&self.shard, &mut self.disk);
        learn(&mut self.committed, &view);
        learn(&mut self.head, &view);
        assert_eq!(view, self.committed, "durable index differs from the model");
        self.check_promises(&view);
    }

    fn check_promises(&mut self, view: &Model) {
        let mut seen = std::collections::BTreeSet::new();
        for m in view.values().flat_map(|a| a.values()) {
            let uidvalidity = m.uidvalidity.unwrap_or(0);
            assert!(
                seen.insert(uidvalidity),
                "UIDVALIDITY {uidvalidity} used twice"
            );
            self.uidvalidity_durable_high = self.uidvalidity_durable_high.max(uidvalidity);
            assert!(m.messages.keys().all(|&u| u < m.uid_next));
            assert!(
                m.messages
                    .values()
                    .all(|msg| msg.modseq <= m.highest_modseq)
            );
            let last = self.observed.entry(uidvalidity).or_insert((0, 0));
            assert!(m.uid_next >= last.0, "UIDNEXT went back");
            assert!(m.highest_modseq >= last.1, "HIGHESTMODSEQ went back");
            *last = (m.uid_next, m.highest_modseq);
        }
    }

    fn crash(&mut self, checkpoint_mode: u8) {
        self.disk.crash();
        if let Some(flight) = self.in_flight.take()
            && flight.write_error.is_none()
        {
            assert!(self.uncertain.is_empty(), "two batches of unknown fate");
            self.uncertain = self.take_pending_through(flight.job.last_ticket);
        }
        self.pending.clear();
        self.reopen(checkpoint_mode);
    }

    fn reopen(&mut self, checkpoint_mode: u8) {
        let checkpoint = match (checkpoint_mode, &self.checkpoint) {
            (1, Some(c)) => Some(c.clone()),
            (2, Some(c)) => Some(
                c.iter()
                    .enumerate()
                    .map(|(i, b)| if i == c.len() / 2 { b ^ 4 } else { *b })
                    .collect(),
            ),
            _ => None,
        };
        let (shard, report) = open_retrying(&mut self.disk, checkpoint.as_deref());
        match (checkpoint_mode, &checkpoint) {
            (_, None) => assert_eq!(report.checkpoint, CheckpointUse::Absent),
            (1, Some(_)) => assert!(matches!(report.checkpoint, CheckpointUse::Used { .. })),
            _ => assert!(matches!(report.checkpoint, CheckpointUse::Ignored { .. })),
        }
        self.disk.take_stall_ms();
        let view = store_view(&shard, &mut self.disk);
        self.resolve_uncertain(&view);
        let (again, report) = open_retrying(&mut self.disk, checkpoint.as_deref());
        assert_eq!(report.torn_tail, None, "recovery left a torn tail behind");
        assert_eq!(
            store_view(&again, &mut self.disk),
            view,
            "recovery is not idempotent"
        );
        assert_eq!(again.checkpoint(), shard.checkpoint());
        let report = fsck(&mut self.disk, self.checkpoint.as_deref(), cfg());
        assert!(
            report.is_clean() && report.torn_tail_offset.is_none(),
            "fsck: {report:?}"
        );
        self.shard = again;
        self.head = self.committed.clone();
        self.read_only = false;
        self.last_ticket = 0;
        self.uid_high.clear();
        self.modseq_high.clear();
        self.check_promises(&view);
        self.uidvalidity_high = self.uidvalidity_durable_high;
    }

    /// The recovered state is the committed one, or it plus the whole uncertain batch.
    fn resolve_uncertain(&mut self, view: &Model) {
        learn(&mut self.committed, view);
        if *view == self.committed {
            self.uncertain.clear();
            return;
        }
        let uncertain = std::mem::take(&mut self.uncertain);
        assert!(
            !uncertain.is_empty(),
            "recovered state differs from every acknowledged change"
        );
        let mut with_batch = self.committed.clone();
        for change in &uncertain {
            apply(&mut with_batch, change);
        }
        learn(&mut with_batch, view);
        assert_eq!(
            *view, with_batch,
            "recovered state is neither without nor with the unacked batch"
        );
        for change in &uncertain {
            self.commit(change);
        }
        learn(&mut self.committed, view);
    }
}

fn run_case(seed: u64, actions: Vec<Action>) {
    static HINT_ONCE: std::sync::Once = std::sync::Once::new();
    HINT_ONCE.call_once(|| eprintln!("{HINT}"));
    let mut world = World::new(seed);
    for action in actions {
        world.run(action);
    }
    world.crash(1);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn store_matches_model_across_crashes(seed in any::<u64>(), actions in prop::collection::vec(action(), 1..100)) {
        run_case(seed, actions);
    }
}
