//! Checkpoint bytes: the durable index and the log position it reflects, crc-protected.
//!
//! Layout: magic `THCKPT01` (8 bytes) | crc32c (u32 LE) over everything after it |
//! body length (u64 LE) | body (postcard: log offset, next sequence number, index).

use serde::{Deserialize, Serialize};

use super::index::Index;

const MAGIC: [u8; 8] = *b"THCKPT01";
const PREFIX_BYTES: usize = 20;

/// The state a checkpoint restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// Offset where the next batch after this state goes (start of replay).
    pub log_end: u64,
    /// Sequence number of the first record after this state.
    pub next_seq: u64,
    /// The durable index at that point.
    pub index: Index,
}

#[derive(Serialize)]
struct CheckpointRef<'a> {
    log_end: u64,
    next_seq: u64,
    index: &'a Index,
}

/// Encodes the durable state at (`log_end`, `next_seq`).
pub(crate) fn encode(log_end: u64, next_seq: u64, index: &Index) -> Vec<u8> {
    let body = postcard::to_allocvec(&CheckpointRef {
        log_end,
        next_seq,
        index,
    })
    .expect("in-memory index always serializes");
    let mut out = Vec::with_capacity(PREFIX_BYTES + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out[12..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and verifies checkpoint bytes; the error says why they cannot be used.
pub(crate) fn decode(bytes: &[u8]) -> Result<Checkpoint, String> {
    if bytes.len() < PREFIX_BYTES || bytes[0..8] != MAGIC {
        return Err("not a treehouse checkpoint (bad magic or too short)".into());
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[8..12]);
    if u32::from_le_bytes(crc) != crc32c::crc32c(&bytes[12..]) {
        return Err("checkpoint checksum mismatch".into());
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    if u64::from_le_bytes(len) != (bytes.len() - PREFIX_BYTES) as u64 {
        return Err("checkpoint length mismatch".into());
    }
    let mut checkpoint: Checkpoint = postcard::from_bytes(&bytes[PREFIX_BYTES..])
        .map_err(|e| format!("checkpoint does not decode: {e}"))?;
    checkpoint.index.recount();
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_any_flip() {
        let index = Index {
            uidvalidity_last: 9,
            ..Index::default()
        };
        let bytes = encode(8192, 5, &index);
        let back = decode(&bytes).unwrap();
        assert_eq!((back.log_end, back.next_seq, back.index), (8192, 5, index));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "flip at {i} accepted");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }

    /// The index's maps became persistent ones; checkpoints written when they were
    /// `BTreeMap`s must read the same, and new ones must be the same bytes.
    #[test]
    fn persistent_maps_keep_the_checkpoint_layout() {
        use std::collections::{BTreeMap, BTreeSet};

        use crate::store::index::{Account, BodyLocation, Mailbox, Message};

        #[derive(Serialize)]
        struct OldMailbox {
            uidvalidity: u32,
            uid_next: u32,
            highest_modseq: u64,
            messages: BTreeMap<u32, Message>,
        }
        #[derive(Serialize)]
        struct OldAccount {
            mailboxes: BTreeMap<String, OldMailbox>,
            subscriptions: BTreeSet<String>,
        }
        #[derive(Serialize)]
        struct OldIndex {
            accounts: BTreeMap<String, OldAccount>,
            uidvalidity_last: u32,
        }
        let message = |uid: u32| Message {
            uid,
            modseq: u64::from(uid) + 1,
            flags: vec!["\\Seen".into()],
            internal_date: 1_700_000_000,
            size_bytes: 10,
            meta: vec![uid as u8; 3].into(),
            location: BodyLocation {
                offset: u64::from(uid) * 4096,
                len_bytes: 10,
                crc32c: uid,
            },
        };
        let mut index = Index {
            uidvalidity_last: 4,
            ..Index::default()
        };
        for name in ["bob", "alice"] {
            let mailbox = Mailbox {
                uidvalidity: 3,
                uid_next: 301,
                highest_modseq: 302,
                messages: [1, 2, 300].map(|u| (u, message(u))).into_iter().collect(),
            };
            let account = Account {
                mailboxes: BTreeMap::from([("INBOX".to_string(), mailbox)]),
                subscriptions: BTreeSet::from(["INBOX".to_string()]),
            };
            index.accounts.insert(name.to_string(), account);
        }
        // The same content in the former shapes.
        let old_mailbox = |m: &Mailbox| OldMailbox {
            uidvalidity: m.uidvalidity,
            uid_next: m.uid_next,
            highest_modseq: m.highest_modseq,
            messages: m.messages.iter().map(|(u, x)| (*u, x.clone())).collect(),
        };
        let old_account = |a: &Account| OldAccount {
            mailboxes: a
                .mailboxes
                .iter()
                .map(|(n, m)| (n.clone(), old_mailbox(m)))
                .collect(),
            subscriptions: a.subscriptions.clone(),
        };
        let old = OldIndex {
            accounts: index
                .accounts
                .iter()
                .map(|(k, a)| (k.clone(), old_account(a)))
                .collect(),
            uidvalidity_last: index.uidvalidity_last,
        };
        index.recount();
        assert_eq!(index.message_count, 6);
        let old_body = postcard::to_allocvec(&(4096u64, 9u64, &old)).unwrap();
        let new_bytes = encode(4096, 9, &index);
        assert_eq!(new_bytes[PREFIX_BYTES..], old_body[..]);
        assert_eq!(decode(&new_bytes).unwrap().index, index);
    }
}
