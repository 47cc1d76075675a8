//! Byte layout of batches and records (see the `store` module doc for the format).

use serde::{Deserialize, Serialize};

use super::{ModSeq, Uid};
use crate::disk::BLOCK_BYTES;

/// First bytes of every batch header.
pub(crate) const BATCH_MAGIC: [u8; 8] = *b"THLOGv01";
/// Size of the batch header that starts every batch.
pub(crate) const BATCH_HEADER_BYTES: usize = 40;
/// Size of the fixed part of every record: kind, head length, body length.
pub(crate) const RECORD_HEADER_BYTES: usize = 13;

const BLOCK: u64 = BLOCK_BYTES as u64;

/// Rounds `n` up to a multiple of BLOCK_BYTES.
pub(crate) fn align_up(n: u64) -> u64 {
    n.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// Rounds `n` down to a multiple of BLOCK_BYTES.
pub(crate) fn align_down(n: u64) -> u64 {
    n - n % BLOCK
}

/// The fixed header at the start of every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub first_seq: u64,
    pub record_count: u32,
    pub payload_len: u64,
    pub payload_crc32c: u32,
}

/// Why a block does not hold a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    /// The block is all zeros: nothing was ever written there.
    Zero,
    /// The block holds bytes but no batch magic.
    NoMagic,
    /// The magic is there but the header checksum does not match.
    Crc,
}

impl BatchHeader {
    /// The header's on-disk bytes for a batch at `offset`, checksum included.
    pub fn encode(&self, offset: u64) -> [u8; BATCH_HEADER_BYTES] {
        let mut b = [0u8; BATCH_HEADER_BYTES];
        b[0..8].copy_from_slice(&BATCH_MAGIC);
        b[12..16].copy_from_slice(&self.payload_crc32c.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        b[32..36].copy_from_slice(&self.record_count.to_le_bytes());
        let crc = header_crc(&b, offset);
        b[8..12].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and verifies a header from the first bytes of the block at `offset`.
    pub fn decode(block: &[u8], offset: u64) -> Result<Self, HeaderFault> {
        if block.iter().all(|&b| b == 0) {
            return Err(HeaderFault::Zero);
        }
        let b = block
            .get(..BATCH_HEADER_BYTES)
            .ok_or(HeaderFault::NoMagic)?;
        if b[0..8] != BATCH_MAGIC {
            return Err(HeaderFault::NoMagic);
        }
        if le_u32(&b[8..12]) != header_crc(b, offset) {
            return Err(HeaderFault::Crc);
        }
        Ok(Self {
            payload_crc32c: le_u32(&b[12..16]),
            first_seq: le_u64(&b[16..24]),
            payload_len: le_u64(&b[24..32]),
            record_count: le_u32(&b[32..36]),
        })
    }

    /// Bytes the whole batch occupies: header, payload and zero padding.
    pub fn batch_len_bytes(&self) -> u64 {
        align_up((BATCH_HEADER_BYTES as u64).saturating_add(self.payload_len))
    }
}

/// Covers the header fields and the batch's own offset, so that a batch image anywhere
/// else (copied, or embedded in a message body) never verifies.
fn header_crc(b: &[u8], offset: u64) -> u32 {
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b[0..8]), &b[12..BATCH_HEADER_BYTES]);
    crc32c::crc32c_append(crc, &offset.to_le_bytes())
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// A mailbox comes into being (an account comes into being with its first mailbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CreateRec {
    pub account: String,
    pub name: String,
    pub uidvalidity: u32,
}

/// A mailbox and its messages go away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeleteRec {
    pub account: String,
    pub name: String,
    pub uidvalidity: u32,
}

/// A mailbox changes its name, keeping UIDVALIDITY and messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RenameRec {
    pub account: String,
    pub from: String,
    pub to: String,
    pub uidvalidity: u32,
}

/// A message is added; its body follows the record head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AppendRec {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: Uid,
    pub modseq: ModSeq,
    pub flags: Vec<String>,
    pub internal_date: i64,
    /// Written as one byte string (postcard encodes it exactly as a sequence of u8s,
    /// a length and the bytes, but copies it at once rather than a byte at a time).
    #[serde(with = "serde_bytes")]
    pub meta: Vec<u8>,
    pub body_crc32c: u32,
}

/// A message's flags are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlagsRec {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uid: Uid,
    pub modseq: ModSeq,
    pub flags: Vec<String>,
}

/// Messages are removed from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExpungeRec {
    pub account: String,
    pub mailbox: String,
    pub uidvalidity: u32,
    pub uids: Vec<Uid>,
    pub modseq: ModSeq,
}

/// A mailbox name is added to or removed from an account's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SubscribeRec {
    pub account: String,
    pub name: String,
    pub subscribed: bool,
}

/// One logged change, as replay applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Create(CreateRec),
    Delete(DeleteRec),
    Rename(RenameRec),
    Append(AppendRec),
    Flags(FlagsRec),
    Expunge(ExpungeRec),
    Subscribe(SubscribeRec),
}

impl Record {
    fn kind(&self) -> u8 {
        match self {
            Record::Create(_) => 1,
            Record::Delete(_) => 2,
            Record::Rename(_) => 3,
            Record::Append(_) => 4,
            Record::Flags(_) => 5,
            Record::Expunge(_) => 6,
            Record::Subscribe(_) => 7,
        }
    }

    fn head_bytes(&self) -> Vec<u8> {
        let head = match self {
            Record::Create(r) => postcard::to_allocvec(r),
            Record::Delete(r) => postcard::to_allocvec(r),
            Record::Rename(r) => postcard::to_allocvec(r),
            Record::Append(r) => postcard::to_allocvec(r),
            Record::Flags(r) => postcard::to_allocvec(r),
            Record::Expunge(r) => postcard::to_allocvec(r),
            Record::Subscribe(r) => postcard::to_allocvec(r),
        };
        head.expect("in-memory records always serialize")
    }

    fn decode_head(kind: u8, head: &[u8]) -> Result<Self, String> {
        let record = match kind {
            1 => postcard::from_bytes(head).map(Record::Create),
            2 => postcard::from_bytes(head).map(Record::Delete),
            3 => postcard::from_bytes(head).map(Record::Rename),
            4 => postcard::from_bytes(head).map(Record::Append),
            5 => postcard::from_bytes(head).map(Record::Flags),
            6 => postcard::from_bytes(head).map(Record::Expunge),
            7 => postcard::from_bytes(head).map(Record::Subscribe),
            other => return Err(format!("unknown record kind {other}")),
        };
        record.map_err(|e| format!("record kind {kind} does not decode: {e}"))
    }
}

/// Appends one record to `out`; returns where its body starts within `out`.
#[cfg(test)]
pub(crate) fn encode_record(record: &Record, body: &[u8], out: &mut Vec<u8>) -> u64 {
    encode_record_head(record, body.len() as u64, out);
    let body_at = out.len() as u64;
    out.extend_from_slice(body);
    body_at
}

/// Appends one record to `out` up to where its body of `body_len` bytes starts; the
/// body itself must follow it directly in the batch.
pub(crate) fn encode_record_head(record: &Record, body_len: u64, out: &mut Vec<u8>) {
    assert!(
        body_len == 0 || matches!(record, Record::Append(_)),
        "only an append record carries a body"
    );
    let head = record.head_bytes();
    let head_len = u32::try_from(head.len()).expect("record head fits u32 (bounded at stage)");
    out.push(record.kind());
    out.extend_from_slice(&head_len.to_le_bytes());
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&head);
}

/// A record read back from a payload, with where its body sits within the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedRecord {
    pub record: Record,
    pub body_offset: u64,
    pub body_len: u64,
}

/// Splits a verified payload into exactly `count` records.
pub(crate) fn decode_payload(payload: &[u8], count: u32) -> Result<Vec<DecodedRecord>, String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    for i in 0..count {
        let (decoded, next) =
            decode_record(payload, at).map_err(|e| format!("record {i} of {count}: {e}"))?;
        records.push(decoded);
        at = next;
    }
    if at != payload.len() {
        return Err(format!(
            "{} bytes after the last of {count} records",
            payload.len() - at
        ));
    }
    Ok(records)
}

fn decode_record(payload: &[u8], at: usize) -> Result<(DecodedRecord, usize), String> {
    let fixed = payload
        .get(at..at.saturating_add(RECORD_HEADER_BYTES))
        .ok_or("truncated record header")?;
    let head_len = le_u32(&fixed[1..5]) as usize;
    let body_len = le_u64(&fixed[5..13]);
    let head_at = at + RECORD_HEADER_BYTES;
    let head = payload
        .get(head_at..head_at.saturating_add(head_len))
        .ok_or("truncated record head")?;
    let record = Record::decode_head(fixed[0], head)?;
    let body_at = head_at + head_len;
    let body_end = usize::try_from(body_len)
        .ok()
        .and_then(|len| body_at.checked_add(len))
        .filter(|&end| end <= payload.len())
        .ok_or("truncated record body")?;
    if body_len > 0 && !matches!(record, Record::Append(_)) {
        return Err("a record other than an append carries a body".to_string());
    }
    let decoded = DecodedRecord {
        record,
        body_offset: body_at as u64,
        body_len,
    };
    Ok((decoded, body_end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BatchHeader {
        BatchHeader {
            first_seq: 77,
            record_count: 3,
            payload_len: 5000,
            payload_crc32c: 0xdead_beef,
        }
    }

    #[test]
    fn header_round_trips_and_pads_to_blocks() {
        let h = header();
        assert_eq!(BatchHeader::decode(&h.encode(8192), 8192), Ok(h));
        assert_eq!(h.batch_len_bytes(), 2 * BLOCK_BYTES as u64);
    }

    #[test]
    fn header_flip_is_a_crc_fault() {
        let mut bytes = header().encode(0);
        assert_eq!(BatchHeader::decode(&bytes, 4096), Err(HeaderFault::Crc));
        bytes[20] ^= 1;
        assert_eq!(BatchHeader::decode(&bytes, 0), Err(HeaderFault::Crc));
        bytes[0] ^= 1;
        assert_eq!(BatchHeader::decode(&bytes, 0), Err(HeaderFault::NoMagic));
        assert_eq!(
            BatchHeader::decode(&[0u8; BLOCK_BYTES], 0),
            Err(HeaderFault::Zero)
        );
    }

    #[test]
    fn records_round_trip_with_body_position() {
        let create = Record::Create(CreateRec {
            account: "a".into(),
            name: "INBOX".into(),
            uidvalidity: 1,
        });
        let append = Record::Append(AppendRec {
            account: "a".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 1,
            uid: 1,
            modseq: 2,
            flags: vec!["\\Seen".into()],
            internal_date: 1_700_000_000,
            meta: vec![1, 2, 3],
            body_crc32c: crc32c::crc32c(b"hello"),
        });
        let mut payload = Vec::new();
        encode_record(&create, &[], &mut payload);
        let body_at = encode_record(&append, b"hello", &mut payload);
        let decoded = decode_payload(&payload, 2).unwrap();
        assert_eq!(decoded[0].record, create);
        assert_eq!(decoded[1].record, append);
        assert_eq!(decoded[1].body_offset, body_at);
        assert_eq!(&payload[body_at as usize..][..5], b"hello");
        assert!(decode_payload(&payload, 3).is_err());
        assert!(decode_payload(&payload[..payload.len() - 1], 2).is_err());
    }

    /// Message metadata is (de)serialized as one byte string. Stores written when it
    /// was a plain sequence of u8s must read the same, and write the same bytes.
    #[test]
    fn metadata_bytes_keep_the_encoding_of_a_sequence_of_u8s() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct SeqAppend {
            account: String,
            mailbox: String,
            uidvalidity: u32,
            uid: Uid,
            modseq: ModSeq,
            flags: Vec<String>,
            internal_date: i64,
            meta: Vec<u8>,
            body_crc32c: u32,
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct SeqMessage {
            uid: Uid,
            modseq: ModSeq,
            flags: Vec<String>,
            internal_date: i64,
            size_bytes: u64,
            meta: Box<[u8]>,
            location: crate::store::BodyLocation,
        }
        // Long enough that its length takes two varint bytes.
        let meta: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let old = SeqAppend {
            account: "a@example.test".into(),
            mailbox: "INBOX".into(),
            uidvalidity: 7,
            uid: 9,
            modseq: 11,
            flags: vec!["\\Seen".into()],
            internal_date: -5,
            meta: meta.clone(),
            body_crc32c: 13,
        };
        let new = AppendRec {
            account: old.account.clone(),
            mailbox: old.mailbox.clone(),
            uidvalidity: 7,
            uid: 9,
            modseq: 11,
            flags: old.flags.clone(),
            internal_date: -5,
            meta: meta.clone(),
            body_crc32c: 13,
        };
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(postcard::to_allocvec(&new).unwrap(), old_bytes);
        assert_eq!(postcard::from_bytes::<AppendRec>(&old_bytes).unwrap(), new);

        let location = crate::store::BodyLocation {
            offset: 4096,
            len_bytes: 300,
            crc32c: 17,
        };
        let old = SeqMessage {
            uid: 9,
            modseq: 11,
            flags: vec!["$Junk".into()],
            internal_date: 1_700_000_000,
            size_bytes: 300,
            meta: meta.clone().into_boxed_slice(),
            location,
        };
        let new = crate::store::Message {
            uid: 9,
            modseq: 11,
            flags: vec!["$Junk".into()],
            internal_date: 1_700_000_000,
            size_bytes: 300,
            meta: meta.into(),
            location,
        };
        let old_bytes = postcard::to_allocvec(&old).unwrap();
        assert_eq!(postcard::to_allocvec(&new).unwrap(), old_bytes);
        assert_eq!(
            postcard::from_bytes::<crate::store::Message>(&old_bytes).unwrap(),
            new
        );
    }
}
