//! The durable index (what replay builds and readers see) and how records change it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::format::{
    AppendRec, CreateRec, DeleteRec, ExpungeRec, FlagsRec, Record, RenameRec, SubscribeRec,
};
use super::{ModSeq, Uid};

/// UIDNEXT of a new mailbox.
pub(crate) const FIRST_UID: Uid = 1;
/// HIGHESTMODSEQ of a new mailbox.
pub(crate) const FIRST_MODSEQ: ModSeq = 1;

/// An account: its mailboxes by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Mailboxes by name; every account has an `INBOX`.
    pub mailboxes: BTreeMap<String, Mailbox>,
    /// Subscribed mailbox names (IMAP SUBSCRIBE); a name need not exist as a mailbox.
    pub subscriptions: BTreeSet<String>,
}

/// A mailbox's IMAP state: identity, counters and messages by UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// UIDVALIDITY, fixed at creation.
    pub uidvalidity: u32,
    /// UIDNEXT: every future message gets a UID at least this.
    pub uid_next: Uid,
    /// HIGHESTMODSEQ: the MODSEQ of the latest change to the mailbox.
    pub highest_modseq: ModSeq,
    /// Messages by UID, ascending; a persistent map, so that a checkpoint's snapshot
    /// of the index is taken in constant time and later changes copy only what they touch.
    pub messages: OrdMap<Uid, Message>,
}

/// One message's index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's UID.
    pub uid: Uid,
    /// MODSEQ of the latest change to this message.
    pub modseq: ModSeq,
    /// System flags and keywords, sorted and without duplicates.
    pub flags: Vec<String>,
    /// IMAP INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// RFC 822 size of the body, in bytes.
    pub size_bytes: u64,
    /// Opaque parsed metadata (envelope, body structure) stored with the message,
    /// checkpointed as one byte string (the same bytes as a sequence of u8s). Shared,
    /// so that a checkpoint's snapshot of the index does not copy it.
    #[serde(with = "shared_bytes")]
    pub meta: Arc<[u8]>,
    /// Where the body bytes sit in the log.
    pub location: BodyLocation,
}

/// Where a message body sits in the log, and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyLocation {
    /// Byte offset of the first body byte in the log space.
    pub offset: u64,
    /// Body length in bytes.
    pub len_bytes: u64,
    /// crc32c of the body bytes.
    pub crc32c: u32,
}

/// (De)serializes shared bytes as one byte string.
mod shared_bytes {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Arc<[u8]>, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Arc<[u8]>, D::Error> {
        let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(input)?;
        Ok(Arc::from(bytes.into_vec()))
    }
}

/// Why a record cannot apply to the index: replay calls this corruption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApplyError {
    /// A UID not above every UID ever used in the mailbox.
    UidOrder(String),
    /// A MODSEQ or UIDVALIDITY not above the one before.
    ModSeqOrder(String),
    /// Any other record that does not fit the state it applies to.
    Mismatch(String),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::UidOrder(d) => write!(f, "UID order violated: {d}"),
            ApplyError::ModSeqOrder(d) => write!(f, "sequence order violated: {d}"),
            ApplyError::Mismatch(d) => write!(f, "record does not fit the index: {d}"),
        }
    }
}

/// The durable index: every account of the shard and the last UIDVALIDITY handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    /// Accounts by address; persistent, as [`Mailbox::messages`].
    pub accounts: OrdMap<String, Account>,
    pub uidvalidity_last: u32,
    /// Messages over every mailbox, kept as records apply; not checkpointed (counted
    /// again when a checkpoint is read, see [`Index::recount`]). It only spaces
    /// checkpoints, so it never goes below zero, whatever a test builds by hand.
    #[serde(skip)]
    pub message_count: u64,
}

impl Mailbox {
    fn new(uidvalidity: u32) -> Self {
        Self {
            uidvalidity,
            uid_next: FIRST_UID,
            highest_modseq: FIRST_MODSEQ,
            messages: OrdMap::new(),
        }
    }

    fn bump_modseq(&mut self, modseq: ModSeq) -> Result<(), ApplyError> {
        if modseq <= self.highest_modseq {
            return Err(ApplyError::ModSeqOrder(format!(
                "MODSEQ {modseq} not above HIGHESTMODSEQ {}",
                self.highest_modseq
            )));
        }
        self.highest_modseq = modseq;
        Ok(())
    }
}

impl Index {
    /// Sets [`Index::message_count`] from the mailboxes (one step per mailbox).
    pub fn recount(&mut self) {
        self.message_count = self
            .accounts
            .values()
            .flat_map(|a| a.mailboxes.values())
            .map(|m| m.messages.len() as u64)
            .sum();
    }

    /// Applies one record; `body` is where an append's body sits in the log.
    pub fn apply(&mut self, record: &Record, body: Option<BodyLocation>) -> Result<(), ApplyError> {
        match record {
            Record::Create(r) => self.create(r),
            Record::Delete(r) => self.delete(r),
            Record::Rename(r) => self.rename(r),
            Record::Append(r) => self.append(r, body),
            Record::Flags(r) => self.set_flags(r),
            Record::Expunge(r) => self.expunge(r),
            Record::Subscribe(r) => self.subscribe(r),
        }
    }

    fn mailbox_mut(
        &mut self,
        account: &str,
        name: &str,
        uidvalidity: u32,
    ) -> Result<&mut Mailbox, ApplyError> {
        let mailbox = self
            .accounts
            .get_mut(account)
            .and_then(|a| a.mailboxes.get_mut(name))
            .ok_or_else(|| ApplyError::Mismatch(format!("no mailbox {account}/{name}")))?;
        if mailbox.uidvalidity != uidvalidity {
            return Err(ApplyError::Mismatch(format!(
                "{account}/{name} has UIDVALIDITY {}, record says {uidvalidity}",
                mailbox.uidvalidity
            )));
        }
        Ok(mailbox)
    }

    fn create(&mut self, r: &CreateRec) -> Result<(), ApplyError> {
        if r.uidvalidity <= self.uidvalidity_last {
            return Err(ApplyError::ModSeqOrder(format!(
                "UIDVALIDITY {} not above {}",
                r.uidvalidity, self.uidvalidity_last
            )));
        }
        let account = self.accounts.entry(r.account.clone()).or_default();
        if account.mailboxes.contains_key(&r.name) {
            return Err(ApplyError::Mismatch(format!(
                "{}/{} already exists",
                r.account, r.name
            )));
        }
        account
            .mailboxes
            .insert(r.name.clone(), Mailbox::new(r.uidvalidity));
        self.uidvalidity_last = r.uidvalidity;
        Ok(())
    }

    fn delete(&mut self, r: &DeleteRec) -> Result<(), ApplyError> {
        self.mailbox_mut(&r.account, &r.name, r.uidvalidity)?;
        if let Some(account) = self.accounts.get_mut(&r.account)
            && let Some(gone) = account.mailboxes.remove(&r.name)
        {
            self.message_count = self
                .message_count
                .saturating_sub(gone.messages.len() as u64);
        }
        Ok(())
    }

    fn rename(&mut self, r: &RenameRec) -> Result<(), ApplyError> {
        self.mailbox_mut(&r.account, &r.from, r.uidvalidity)?;
        let Some(account) = self.accounts.get_mut(&r.account) else {
            return Err(ApplyError::Mismatch(format!("no account {}", r.account)));
        };
        if account.mailboxes.contains_key(&r.to) {
            return Err(ApplyError::Mismatch(format!(
                "rename target {}/{} exists",
                r.account, r.to
            )));
        }
        if let Some(mailbox) = account.mailboxes.remove(&r.from) {
            account.mailboxes.insert(r.to.clone(), mailbox);
        }
        Ok(())
    }

    fn append(&mut self, r: &AppendRec, body: Option<BodyLocation>) -> Result<(), ApplyError> {
        let location = body.ok_or_else(|| ApplyError::Mismatch("append without body".into()))?;
        let mailbox = self.mailbox_mut(&r.account, &r.mailbox, r.uidvalidity)?;
        if r.uid < mailbox.uid_next {
            return Err(ApplyError::UidOrder(format!(
                "{}/{}: UID {} below UIDNEXT {}",
                r.account, r.mailbox, r.uid, mailbox.uid_next
            )));
        }
        mailbox.bump_modseq(r.modseq)?;
        let next = r
            .uid
            .checked_add(1)
            .ok_or_else(|| ApplyError::UidOrder(format!("UID {} leaves no UIDNEXT", r.uid)))?;
        mailbox.uid_next = next;
        let message = Message {
            uid: r.uid,
            modseq: r.modseq,
            flags: r.flags.clone(),
            internal_date: r.internal_date,
            size_bytes: location.len_bytes,
            meta: Arc::from(r.meta.as_slice()),
            location,
        };
        mailbox.messages.insert(r.uid, message);
        self.message_count += 1;
        Ok(())
    }

    fn set_flags(&mut self, r: &FlagsRec) -> Result<(), ApplyError> {
        let mailbox = self.mailbox_mut(&r.account, &r.mailbox, r.uidvalidity)?;
        if !mailbox.messages.contains_key(&r.uid) {
            return Err(ApplyError::Mismatch(format!(
                "{}/{}: no UID {} to set flags on",
                r.account, r.mailbox, r.uid
            )));
        }
        mailbox.bump_modseq(r.modseq)?;
        if let Some(message) = mailbox.messages.get_mut(&r.uid) {
            message.flags = r.flags.clone();
            message.modseq = r.modseq;
        }
        Ok(())
    }

    fn expunge(&mut self, r: &ExpungeRec) -> Result<(), ApplyError> {
        let mailbox = self.mailbox_mut(&r.account, &r.mailbox, r.uidvalidity)?;
        if r.uids.is_empty() || r.uids.iter().any(|u| !mailbox.messages.contains_key(u)) {
            return Err(ApplyError::Mismatch(format!(
                "{}/{}: expunge of absent UIDs {:?}",
                r.account, r.mailbox, r.uids
            )));
        }
        mailbox.bump_modseq(r.modseq)?;
        let mut removed = 0;
        for uid in &r.uids {
            removed += u64::from(mailbox.messages.remove(uid).is_some());
        }
        self.message_count = self.message_count.saturating_sub(removed);
        Ok(())
    }

    fn subscribe(&mut self, r: &SubscribeRec) -> Result<(), ApplyError> {
        let Some(account) = self.accounts.get_mut(&r.account) else {
            return Err(ApplyError::Mismatch(format!("no account {}", r.account)));
        };
        if r.subscribed {
            account.subscriptions.insert(r.name.clone());
        } else {
            account.subscriptions.remove(&r.name);
        }
        Ok(())
    }

    /// Checks what the index promises: UIDs below UIDNEXT, MODSEQs within HIGHESTMODSEQ,
    /// entries keyed by their own UID. Returns each violation found.
    pub fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (account_name, account) in &self.accounts {
            for (name, mailbox) in &account.mailboxes {
                let at = format!("{account_name}/{name}");
                mailbox_violations(&at, mailbox, self.uidvalidity_last, &mut found);
            }
        }
        found
    }
}

fn mailbox_violations(at: &str, mailbox: &Mailbox, uidvalidity_last: u32, found: &mut Vec<String>) {
    if mailbox.uidvalidity == 0 || mailbox.uidvalidity > uidvalidity_last {
        found.push(format!(
            "{at}: UIDVALIDITY {} out of range",
            mailbox.uidvalidity
        ));
    }
    for (uid, message) in &mailbox.messages {
        if *uid != message.uid || *uid == 0 || *uid >= mailbox.uid_next {
            found.push(format!(
                "{at}: UID {uid} not below UIDNEXT {}",
                mailbox.uid_next
            ));
        }
        if message.modseq > mailbox.highest_modseq {
            found.push(format!(
                "{at}: UID {uid} MODSEQ {} above HIGHESTMODSEQ {}",
                message.modseq, mailbox.highest_modseq
            ));
        }
    }
}
