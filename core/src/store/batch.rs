//! One batch as it goes to disk: its bytes in parts, so that a large message body is
//! written from the buffer it was received into, never copied into a batch image.

use std::io;

use super::format::{BATCH_HEADER_BYTES, BatchHeader, Record};
use super::{BodyLocation, StagedOp};
use crate::disk::{BLOCK_BYTES, Disk};

/// A body at least this large stays in its own buffer; smaller ones are copied into the
/// batch's shared part, where one copy costs less than a separate write.
const BODY_OWN_PART_MIN_BYTES: usize = 64 * 1024;

/// Most bytes one disk write carries when a batch is written piece by piece.
pub const WRITE_CHUNK_BYTES: usize = 1024 * 1024;

/// The bytes of one batch: `parts` back to back, then zeros up to `len_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    parts: Vec<Vec<u8>>,
    len_bytes: u64,
}

impl Batch {
    /// Bytes the batch occupies on disk; a multiple of BLOCK_BYTES.
    pub fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    /// The whole batch as one slice, when it is held in one buffer (every batch
    /// without a large body).
    pub fn contiguous(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [only] if only.len() as u64 == self.len_bytes => Some(only),
            _ => None,
        }
    }

    /// Fills `out` with the batch's bytes from byte `from` on (zeros past the payload).
    pub fn copy_to(&self, from: u64, out: &mut [u8]) {
        let mut part_start = 0u64;
        let mut filled = 0usize;
        for part in &self.parts {
            let part_end = part_start + part.len() as u64;
            let at = from + filled as u64;
            if filled < out.len() && at < part_end {
                let within = (at - part_start) as usize;
                let n = (part.len() - within).min(out.len() - filled);
                out[filled..filled + n].copy_from_slice(&part[within..within + n]);
                filled += n;
            }
            part_start = part_end;
        }
        out[filled..].fill(0);
    }

    /// Where each part's bytes live, to show that a body was not copied.
    #[cfg(test)]
    pub(crate) fn part_addresses(&self) -> Vec<usize> {
        self.parts.iter().map(|p| p.as_ptr() as usize).collect()
    }

    /// Gives the batch's buffers up, each with the batch byte it starts at. A body large
    /// enough to be held in a part of its own comes back as the very buffer it arrived
    /// in, so that it can be kept after the write without a copy.
    pub fn into_parts(self) -> impl Iterator<Item = (u64, Vec<u8>)> {
        let mut at = 0u64;
        self.parts.into_iter().map(move |part| {
            let start = at;
            at += part.len() as u64;
            (start, part)
        })
    }

    /// The whole batch in one buffer (tests and tools; a flush writes it in chunks).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; self.len_bytes as usize];
        self.copy_to(0, &mut bytes);
        bytes
    }

    /// Writes the batch at `offset` of `disk`: in one write when it is contiguous,
    /// otherwise in chunks of at most [`WRITE_CHUNK_BYTES`] through one reused buffer.
    pub fn write_at<D: Disk>(&self, disk: &mut D, offset: u64) -> io::Result<()> {
        if let Some(bytes) = self.contiguous() {
            return disk.write_at(offset, bytes);
        }
        let mut chunk = vec![0u8; WRITE_CHUNK_BYTES.min(self.len_bytes as usize)];
        let mut at = 0u64;
        while at < self.len_bytes {
            let n = (self.len_bytes - at).min(chunk.len() as u64) as usize;
            self.copy_to(at, &mut chunk[..n]);
            disk.write_at(offset + at, &chunk[..n])?;
            at += n as u64;
        }
        Ok(())
    }
}

/// Lays out one batch: header, the ops' bytes, zero padding; resolves body locations.
pub(super) fn build_batch(
    ops: Vec<StagedOp>,
    offset: u64,
    len_bytes: u64,
    first_seq: u64,
) -> (Batch, Vec<(Record, Option<BodyLocation>)>) {
    let mut parts = Vec::new();
    // The shared buffer is sized once for the heads and small bodies, padding included.
    let small_bytes: usize = ops
        .iter()
        .map(|op| {
            let body = op.body.as_ref().map_or(0, Vec::len);
            op.head.len()
                + if body < BODY_OWN_PART_MIN_BYTES {
                    body
                } else {
                    0
                }
        })
        .sum();
    let mut shared =
        Vec::with_capacity((BATCH_HEADER_BYTES + small_bytes).next_multiple_of(BLOCK_BYTES));
    shared.resize(BATCH_HEADER_BYTES, 0);
    let mut at = BATCH_HEADER_BYTES as u64;
    let mut records = Vec::new();
    let mut crc = 0;
    for op in ops {
        let op_at = offset + at;
        crc = crc32c::crc32c_append(crc, &op.head);
        shared.extend_from_slice(&op.head);
        at += op.head.len() as u64;
        let body_at = op.head.len() as u64;
        let body_len = op.body.as_ref().map_or(0, |b| b.len() as u64);
        if let Some(body) = op.body {
            // The append that the body follows already holds the body's crc32c.
            crc = match op.records.last() {
                Some(Record::Append(a)) => {
                    crate::crc::crc32c_combine(crc, a.body_crc32c, body.len())
                }
                _ => crc32c::crc32c_append(crc, &body),
            };
            at += body.len() as u64;
            if body.len() < BODY_OWN_PART_MIN_BYTES {
                shared.extend_from_slice(&body);
            } else {
                parts.push(std::mem::take(&mut shared));
                parts.push(body);
            }
        }
        for record in op.records {
            let body = match &record {
                Record::Append(a) => Some(BodyLocation {
                    offset: op_at + body_at,
                    len_bytes: body_len,
                    crc32c: a.body_crc32c,
                }),
                _ => None,
            };
            records.push((record, body));
        }
    }
    let header = BatchHeader {
        first_seq,
        record_count: u32::try_from(records.len()).expect("a batch holds fewer than 2^32 records"),
        payload_len: at - BATCH_HEADER_BYTES as u64,
        payload_crc32c: crc,
    };
    if parts.is_empty() {
        // No large body: the batch is one buffer, padded, written as it stands.
        shared.resize(len_bytes as usize, 0);
    }
    parts.push(shared);
    parts.retain(|p| !p.is_empty());
    parts[0][..BATCH_HEADER_BYTES].copy_from_slice(&header.encode(offset));
    debug_assert_eq!(len_bytes % BLOCK_BYTES as u64, 0);
    (Batch { parts, len_bytes }, records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(parts: Vec<Vec<u8>>, len_bytes: u64) -> Batch {
        Batch { parts, len_bytes }
    }

    #[test]
    fn copy_to_joins_parts_and_pads_with_zeros() {
        let b = batch(vec![vec![1, 2, 3], vec![4, 5], vec![6]], 8);
        assert_eq!(b.to_vec(), vec![1, 2, 3, 4, 5, 6, 0, 0]);
        let mut out = [9u8; 4];
        b.copy_to(2, &mut out);
        assert_eq!(out, [3, 4, 5, 6]);
        b.copy_to(5, &mut out[..3]);
        assert_eq!(out[..3], [6, 0, 0]);
        assert_eq!(b.contiguous(), None);
        let one = batch(vec![vec![7; 8]], 8);
        assert_eq!(one.contiguous(), Some(&[7u8; 8][..]));
        let starts: Vec<(u64, Vec<u8>)> = b.into_parts().collect();
        assert_eq!(
            starts,
            vec![(0, vec![1, 2, 3]), (3, vec![4, 5]), (5, vec![6])]
        );
    }
}
