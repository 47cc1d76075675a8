//! Staging: checks an [`Op`] against the head state (durable plus not yet durable changes)
//! and turns it into records with UIDs, MODSEQs and UIDVALIDITYs assigned.

use std::collections::{BTreeMap, BTreeSet};

use super::format::{
    AppendRec, CreateRec, DeleteRec, ExpungeRec, FlagsRec, RECORD_HEADER_BYTES, Record, RenameRec,
    SubscribeRec,
};
use super::index::{FIRST_MODSEQ, FIRST_UID, Index};
use super::{INBOX, ModSeq, Op, StoreError, Uid};

/// Longest account or mailbox name, in bytes.
pub const NAME_MAX_BYTES: usize = 1024;
/// Longest flag or keyword, in bytes.
pub const FLAG_MAX_BYTES: usize = 256;
/// Most flags and keywords on one message.
pub const FLAGS_PER_MESSAGE_MAX: usize = 256;

/// Generous bound on the encoded size of one record's fixed fields and varints.
const RECORD_OVERHEAD_BYTES: usize = RECORD_HEADER_BYTES + 96;

#[derive(Debug, Clone, PartialEq, Eq)]
struct HeadMailbox {
    uidvalidity: u32,
    uid_next: Uid,
    highest_modseq: ModSeq,
    uids: BTreeSet<Uid>,
}

impl HeadMailbox {
    fn new(uidvalidity: u32) -> Self {
        Self {
            uidvalidity,
            uid_next: FIRST_UID,
            highest_modseq: FIRST_MODSEQ,
            uids: BTreeSet::new(),
        }
    }
}

/// What staging produced: the records, the body that follows the append record, and
/// the identifiers handed out.
#[derive(Debug)]
pub(crate) struct Plan {
    pub records: Vec<Record>,
    pub body: Vec<u8>,
    pub uid: Option<Uid>,
    pub uidvalidity: Option<u32>,
    pub modseq: Option<ModSeq>,
}

/// The shape of the index after every staged change: enough to validate and number ops.
#[derive(Debug, Clone, Default)]
pub(crate) struct Head {
    accounts: BTreeMap<String, BTreeMap<String, HeadMailbox>>,
    uidvalidity_last: u32,
    /// Lowest UIDVALIDITY the next mailbox may get.
    pub uidvalidity_floor: u32,
    /// Counters (UIDNEXT, HIGHESTMODSEQ) by UIDVALIDITY that dropped records reached,
    /// for durable mailboxes only.
    high_water: BTreeMap<u32, (Uid, ModSeq)>,
}

impl Head {
    /// The head state of a durable index with nothing staged.
    pub fn from_index(index: &Index) -> Self {
        let accounts = index
            .accounts
            .iter()
            .map(|(name, account)| {
                let mailboxes = account
                    .mailboxes
                    .iter()
                    .map(|(mb_name, m)| {
                        let head = HeadMailbox {
                            uidvalidity: m.uidvalidity,
                            uid_next: m.uid_next,
                            highest_modseq: m.highest_modseq,
                            uids: m.messages.keys().copied().collect(),
                        };
                        (mb_name.clone(), head)
                    })
                    .collect();
                (name.clone(), mailboxes)
            })
            .collect();
        Self {
            accounts,
            uidvalidity_last: index.uidvalidity_last,
            uidvalidity_floor: 0,
            high_water: BTreeMap::new(),
        }
    }

    /// Resets to the durable index after staged records were dropped, keeping every
    /// counter at least where the head, the dropped records or an earlier drop left it:
    /// counters never go back, not even when a dropped delete hid a mailbox's counters.
    pub fn rebuild<'a>(&mut self, index: &Index, dropped: impl Iterator<Item = &'a Record>) {
        let mut high = std::mem::take(&mut self.high_water);
        let mut raise = |uidvalidity: u32, uid_next: Uid, modseq: ModSeq| {
            let entry = high.entry(uidvalidity).or_insert((uid_next, modseq));
            *entry = (entry.0.max(uid_next), entry.1.max(modseq));
        };
        for m in self.accounts.values().flat_map(|a| a.values()) {
            raise(m.uidvalidity, m.uid_next, m.highest_modseq);
        }
        for (uidvalidity, uid, modseq) in dropped.filter_map(counters_of) {
            raise(
                uidvalidity,
                uid.map_or(FIRST_UID, |u| u.saturating_add(1)),
                modseq,
            );
        }
        let mut fresh = Head::from_index(index);
        fresh.uidvalidity_last = fresh.uidvalidity_last.max(self.uidvalidity_last);
        fresh.uidvalidity_floor = self.uidvalidity_floor;
        for m in fresh.accounts.values_mut().flat_map(|a| a.values_mut()) {
            if let Some(&(uid_next, modseq)) = high.get(&m.uidvalidity) {
                m.uid_next = m.uid_next.max(uid_next);
                m.highest_modseq = m.highest_modseq.max(modseq);
                fresh
                    .high_water
                    .insert(m.uidvalidity, (m.uid_next, m.highest_modseq));
            }
        }
        *self = fresh;
    }

    /// Validates `op` and turns it into records, updating the head state.
    pub fn plan(&mut self, op: Op) -> Result<Plan, StoreError> {
        match op {
            Op::Append {
                account,
                mailbox,
                flags,
                internal_date,
                meta,
                body,
            } => {
                let mailbox = normalize_mailbox(&mailbox);
                let flags = normalize_flags(flags)?;
                self.plan_append(account, mailbox, flags, internal_date, meta, body)
            }
            Op::CreateMailbox { account, name } => {
                self.plan_create(account, normalize_mailbox(&name))
            }
            Op::DeleteMailbox { account, name } => {
                self.plan_delete(account, normalize_mailbox(&name))
            }
            Op::RenameMailbox { account, from, to } => {
                self.plan_rename(account, normalize_mailbox(&from), normalize_mailbox(&to))
            }
            Op::SetFlags {
                account,
                mailbox,
                uid,
                flags,
            } => {
                let flags = normalize_flags(flags)?;
                self.plan_flags(account, normalize_mailbox(&mailbox), uid, flags)
            }
            Op::Expunge {
                account,
                mailbox,
                uids,
            } => self.plan_expunge(account, normalize_mailbox(&mailbox), uids),
            Op::Subscribe { account, name } => {
                self.plan_subscribe(account, normalize_mailbox(&name), true)
            }
            Op::Unsubscribe { account, name } => {
                self.plan_subscribe(account, normalize_mailbox(&name), false)
            }
        }
    }

    fn mailbox(&self, account: &str, name: &str) -> Option<&HeadMailbox> {
        self.accounts.get(account).and_then(|a| a.get(name))
    }

    fn existing(&self, account: &str, name: &str) -> Result<&HeadMailbox, StoreError> {
        self.mailbox(account, name)
            .ok_or_else(|| StoreError::NoSuchMailbox {
                account: account.to_string(),
                mailbox: name.to_string(),
            })
    }

    fn next_uidvalidity(&self, ahead: u32) -> Result<u32, StoreError> {
        self.uidvalidity_last
            .checked_add(1 + ahead)
            .map(|v| v.max(self.uidvalidity_floor.saturating_add(ahead)))
            .ok_or(StoreError::Exhausted {
                detail: "UIDVALIDITY space of the shard".into(),
            })
    }

    /// Creates the account (with INBOX) and the mailbox where absent.
    /// The caller has checked there is room for two more UIDVALIDITYs.
    fn ensure_mailbox(&mut self, account: &str, name: &str, out: &mut Vec<Record>) {
        if !self.accounts.contains_key(account) {
            self.push(self.create_record(account, INBOX), out);
        }
        if self.mailbox(account, name).is_none() {
            self.push(self.create_record(account, name), out);
        }
    }

    fn create_record(&self, account: &str, name: &str) -> Record {
        let uidvalidity = self.next_uidvalidity(0);
        Record::Create(CreateRec {
            account: account.to_string(),
            name: name.to_string(),
            uidvalidity: uidvalidity.expect("UIDVALIDITY room checked before planning"),
        })
    }

    fn push(&mut self, record: Record, out: &mut Vec<Record>) {
        self.apply(&record);
        out.push(record);
    }

    fn apply(&mut self, record: &Record) {
        match record {
            Record::Create(r) => {
                let account = self.accounts.entry(r.account.clone()).or_default();
                let old = account.insert(r.name.clone(), HeadMailbox::new(r.uidvalidity));
                assert!(old.is_none(), "staged a create of an existing mailbox");
                assert!(
                    r.uidvalidity > self.uidvalidity_last,
                    "UIDVALIDITY must ascend"
                );
                self.uidvalidity_last = r.uidvalidity;
            }
            Record::Delete(r) => {
                let gone = self
                    .accounts
                    .get_mut(&r.account)
                    .and_then(|a| a.remove(&r.name));
                assert!(gone.is_some(), "staged a delete of an absent mailbox");
            }
            Record::Rename(r) => self.apply_rename(r),
            Record::Subscribe(_) => {}
            Record::Append(r) => {
                let m = self.staged_mailbox(&r.account, &r.mailbox);
                assert!(r.uid >= m.uid_next, "UIDs must strictly ascend");
                assert!(r.modseq > m.highest_modseq, "MODSEQ must ascend");
                m.uids.insert(r.uid);
                m.uid_next = r.uid + 1;
                m.highest_modseq = r.modseq;
            }
            Record::Flags(r) => {
                let m = self.staged_mailbox(&r.account, &r.mailbox);
                assert!(r.modseq > m.highest_modseq, "MODSEQ must ascend");
                m.highest_modseq = r.modseq;
            }
            Record::Expunge(r) => {
                let m = self.staged_mailbox(&r.account, &r.mailbox);
                assert!(r.modseq > m.highest_modseq, "MODSEQ must ascend");
                for uid in &r.uids {
                    m.uids.remove(uid);
                }
                m.highest_modseq = r.modseq;
            }
        }
    }

    fn apply_rename(&mut self, r: &RenameRec) {
        let account = self.accounts.get_mut(&r.account);
        let account = account.expect("staged a rename in an absent account");
        let mailbox = account
            .remove(&r.from)
            .expect("staged a rename of an absent mailbox");
        let old = account.insert(r.to.clone(), mailbox);
        assert!(old.is_none(), "staged a rename onto an existing mailbox");
    }

    fn staged_mailbox(&mut self, account: &str, name: &str) -> &mut HeadMailbox {
        self.accounts
            .get_mut(account)
            .and_then(|a| a.get_mut(name))
            .expect("staged a change to an absent mailbox")
    }

    fn plan_append(
        &mut self,
        account: String,
        mailbox: String,
        flags: Vec<String>,
        internal_date: i64,
        meta: Vec<u8>,
        body: Vec<u8>,
    ) -> Result<Plan, StoreError> {
        check_name(&account)?;
        check_name(&mailbox)?;
        self.next_uidvalidity(1)?;
        if let Some(m) = self.mailbox(&account, &mailbox) {
            check_room(m)?;
        }
        let mut records = Vec::new();
        self.ensure_mailbox(&account, &mailbox, &mut records);
        let m = self.existing(&account, &mailbox)?;
        let record = AppendRec {
            uidvalidity: m.uidvalidity,
            uid: m.uid_next,
            modseq: m.highest_modseq + 1,
            account,
            mailbox,
            flags,
            internal_date,
            meta,
            body_crc32c: crc32c::crc32c(&body),
        };
        let ids = (record.uid, record.uidvalidity, record.modseq);
        self.push(Record::Append(record), &mut records);
        Ok(Plan {
            records,
            body,
            uid: Some(ids.0),
            uidvalidity: Some(ids.1),
            modseq: Some(ids.2),
        })
    }

    fn plan_create(&mut self, account: String, name: String) -> Result<Plan, StoreError> {
        check_name(&account)?;
        check_name(&name)?;
        if self.mailbox(&account, &name).is_some() {
            return Err(StoreError::MailboxExists {
                account,
                mailbox: name,
            });
        }
        self.next_uidvalidity(1)?;
        let mut records = Vec::new();
        self.ensure_mailbox(&account, &name, &mut records);
        let uidvalidity = self.existing(&account, &name)?.uidvalidity;
        Ok(plan_of(records, Some(uidvalidity), None))
    }

    fn plan_delete(&mut self, account: String, name: String) -> Result<Plan, StoreError> {
        if name == INBOX {
            return Err(StoreError::Refused {
                detail: "INBOX cannot be deleted".into(),
            });
        }
        let uidvalidity = self.existing(&account, &name)?.uidvalidity;
        let record = Record::Delete(DeleteRec {
            account,
            name,
            uidvalidity,
        });
        let mut records = Vec::new();
        self.push(record, &mut records);
        Ok(plan_of(records, Some(uidvalidity), None))
    }

    fn plan_rename(
        &mut self,
        account: String,
        from: String,
        to: String,
    ) -> Result<Plan, StoreError> {
        check_name(&to)?;
        if from == INBOX {
            return Err(StoreError::Refused {
                detail: "renaming INBOX is not supported".into(),
            });
        }
        let uidvalidity = self.existing(&account, &from)?.uidvalidity;
        if self.mailbox(&account, &to).is_some() {
            return Err(StoreError::MailboxExists {
                account,
                mailbox: to,
            });
        }
        let record = Record::Rename(RenameRec {
            account,
            from,
            to,
            uidvalidity,
        });
        let mut records = Vec::new();
        self.push(record, &mut records);
        Ok(plan_of(records, Some(uidvalidity), None))
    }

    fn plan_flags(
        &mut self,
        account: String,
        mailbox: String,
        uid: Uid,
        flags: Vec<String>,
    ) -> Result<Plan, StoreError> {
        let m = self.existing(&account, &mailbox)?;
        if !m.uids.contains(&uid) {
            return Err(StoreError::NoSuchMessage {
                account,
                mailbox,
                uid,
            });
        }
        let (uidvalidity, modseq) = (m.uidvalidity, m.highest_modseq + 1);
        let record = Record::Flags(FlagsRec {
            account,
            mailbox,
            uidvalidity,
            uid,
            modseq,
            flags,
        });
        let mut records = Vec::new();
        self.push(record, &mut records);
        Ok(plan_of(records, Some(uidvalidity), Some(modseq)))
    }

    fn plan_expunge(
        &mut self,
        account: String,
        mailbox: String,
        uids: Vec<Uid>,
    ) -> Result<Plan, StoreError> {
        let m = self.existing(&account, &mailbox)?;
        let present: BTreeSet<Uid> = uids
            .iter()
            .copied()
            .filter(|u| m.uids.contains(u))
            .collect();
        let Some(&first) = uids.first() else {
            return Err(StoreError::NoSuchMessage {
                account,
                mailbox,
                uid: 0,
            });
        };
        if present.is_empty() {
            return Err(StoreError::NoSuchMessage {
                account,
                mailbox,
                uid: first,
            });
        }
        let (uidvalidity, modseq) = (m.uidvalidity, m.highest_modseq + 1);
        let record = Record::Expunge(ExpungeRec {
            account,
            mailbox,
            uidvalidity,
            uids: present.into_iter().collect(),
            modseq,
        });
        let mut records = Vec::new();
        self.push(record, &mut records);
        Ok(plan_of(records, Some(uidvalidity), Some(modseq)))
    }
}

impl Head {
    fn plan_subscribe(
        &mut self,
        account: String,
        name: String,
        subscribed: bool,
    ) -> Result<Plan, StoreError> {
        check_name(&name)?;
        if !self.accounts.contains_key(&account) {
            return Err(StoreError::NoSuchMailbox {
                account,
                mailbox: INBOX.to_string(),
            });
        }
        let record = Record::Subscribe(SubscribeRec {
            account,
            name,
            subscribed,
        });
        let mut records = Vec::new();
        self.push(record, &mut records);
        Ok(plan_of(records, None, None))
    }
}

fn plan_of(records: Vec<Record>, uidvalidity: Option<u32>, modseq: Option<ModSeq>) -> Plan {
    Plan {
        records,
        body: Vec::new(),
        uid: None,
        uidvalidity,
        modseq,
    }
}

/// The mailbox counters a record advances: (UIDVALIDITY, UID, MODSEQ).
fn counters_of(record: &Record) -> Option<(u32, Option<Uid>, ModSeq)> {
    match record {
        Record::Append(r) => Some((r.uidvalidity, Some(r.uid), r.modseq)),
        Record::Flags(r) => Some((r.uidvalidity, None, r.modseq)),
        Record::Expunge(r) => Some((r.uidvalidity, None, r.modseq)),
        _ => None,
    }
}

fn check_room(m: &HeadMailbox) -> Result<(), StoreError> {
    if m.uid_next == Uid::MAX || m.highest_modseq == ModSeq::MAX {
        return Err(StoreError::Exhausted {
            detail: "UID or MODSEQ space of the mailbox".into(),
        });
    }
    Ok(())
}

/// `INBOX` in any letter case names the one INBOX; other names are case-sensitive.
pub(crate) fn normalize_mailbox(name: &str) -> String {
    if name.eq_ignore_ascii_case(INBOX) {
        INBOX.to_string()
    } else {
        name.to_string()
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > NAME_MAX_BYTES || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName {
            detail: format!("name must be 1 to {NAME_MAX_BYTES} bytes without control characters"),
        });
    }
    Ok(())
}

/// Sorts and deduplicates flags, refusing empty, oversized or whitespace-bearing ones.
fn normalize_flags(mut flags: Vec<String>) -> Result<Vec<String>, StoreError> {
    flags.sort();
    flags.dedup();
    let bad = |f: &String| {
        f.is_empty()
            || f.len() > FLAG_MAX_BYTES
            || f.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if flags.len() > FLAGS_PER_MESSAGE_MAX || flags.iter().any(bad) {
        return Err(StoreError::InvalidName {
            detail: format!(
                "at most {FLAGS_PER_MESSAGE_MAX} flags of 1 to {FLAG_MAX_BYTES} bytes, no spaces"
            ),
        });
    }
    Ok(flags)
}

/// An upper bound on the bytes `op` encodes to, known before any state is touched.
/// An op makes at most three records (INBOX, its mailbox, the change), each repeating
/// the names; the body, metadata, flags and UIDs appear once.
pub(crate) fn encoded_bytes_bound(op: &Op) -> usize {
    let strings = |v: &[&str]| v.iter().map(|s| s.len() + 10).sum::<usize>();
    let flag_bytes = |f: &[String]| f.iter().map(|s| s.len() + 10).sum::<usize>();
    let (names, once) = match op {
        Op::Append {
            account,
            mailbox,
            flags,
            meta,
            body,
            ..
        } => (
            strings(&[account, mailbox, INBOX]),
            flag_bytes(flags) + meta.len() + 10 + body.len(),
        ),
        Op::CreateMailbox { account, name } | Op::DeleteMailbox { account, name } => {
            (strings(&[account, name, INBOX]), 0)
        }
        Op::RenameMailbox { account, from, to } => (strings(&[account, from, to]), 0),
        Op::Subscribe { account, name } | Op::Unsubscribe { account, name } => {
            (strings(&[account, name]), 0)
        }
        Op::SetFlags {
            account,
            mailbox,
            flags,
            ..
        } => (strings(&[account, mailbox]), flag_bytes(flags)),
        Op::Expunge {
            account,
            mailbox,
            uids,
        } => (strings(&[account, mailbox]), 10 + uids.len() * 5),
    };
    3 * (RECORD_OVERHEAD_BYTES + names) + once
}
