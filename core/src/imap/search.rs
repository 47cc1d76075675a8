//! SEARCH evaluation (RFC 9051 §6.4.4, RFC 3501 §6.4.4, RFC 7162 MODSEQ): whether one
//! message matches a search key.
//!
//! Choices made here:
//! - String keys match case-insensitively (Unicode lower case) as substrings.
//! - FROM, TO, CC, BCC and SUBJECT match the ENVELOPE fields (RFC 9051 wording) with
//!   RFC 2047 encoded words decoded; an address reads `name <mailbox@host>`. They need
//!   no message bytes.
//! - HEADER matches every field of that name in the top-level header, unfolded and
//!   with encoded words decoded; an empty string matches any message with the field.
//! - BODY matches the decoded text of every text/* part (transfer encoding and charset
//!   removed, HTML reduced to text) and the decoded headers of embedded messages; TEXT
//!   matches that, the top-level header or the MIME header of any part.
//! - BEFORE/ON/SINCE use the internal date's UTC day. SENTBEFORE/SENTON/SENTSINCE use
//!   the day written in the Date header, or the internal date's when it has no valid one.
//! - MODSEQ compares the message's MODSEQ; the optional entry name and type are accepted
//!   and ignored, since per-flag MODSEQs are not kept.

use std::cell::OnceCell;
use std::num::NonZeroU32;

use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{Sequence, SequenceSet};
use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;

use super::fetch::{decode_transfer, fields};
use crate::message::{self, MessageMeta, PartContent};
use crate::store;

const DAY_S: i64 = 86_400;

/// Where a message stands in the selected mailbox, for sequence sets and \Recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchContext {
    /// The message's sequence number.
    pub seq: u32,
    /// The highest sequence number in the mailbox (`*` in a sequence set).
    pub max_seq: u32,
    /// The highest UID in the mailbox (`*` in a UID set).
    pub max_uid: u32,
    /// Whether the message is \Recent in this session.
    pub recent: bool,
    /// Whether the message is in the saved search result (`$`, RFC 5182).
    pub saved: bool,
}

/// How much of a message's raw bytes evaluating a key needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Needs {
    /// Nothing but the index: flags, dates, sizes, the envelope.
    Index,
    /// The top-level header (HEADER).
    Header,
    /// The whole message (BODY, TEXT).
    Whole,
}

/// How much of a message evaluating `key` needs.
pub fn needs(key: &SearchKey<'_>) -> Needs {
    match key {
        SearchKey::Header(..) => Needs::Header,
        SearchKey::Body(_) | SearchKey::Text(_) => Needs::Whole,
        SearchKey::And(keys) => needs_all(keys.as_ref()),
        SearchKey::Not(key) => needs(key),
        SearchKey::Or(left, right) => needs(left).max(needs(right)),
        _ => Needs::Index,
    }
}

/// How much of a message evaluating all of `keys` needs.
pub fn needs_all(keys: &[SearchKey<'_>]) -> Needs {
    keys.iter().map(needs).max().unwrap_or(Needs::Index)
}

/// Whether `msg` matches every one of `keys` (a SEARCH's criteria). `raw` holds the
/// message from its first byte on: the whole of it, or at least its top-level header
/// when [`needs`] says only that is needed; keys that need more than it holds match
/// nothing. `meta` is the message's decoded metadata, when the caller already has it.
pub fn matches_all(
    keys: &[SearchKey<'_>],
    ctx: &SearchContext,
    msg: &store::Message,
    raw: Option<&[u8]>,
    meta: Option<MessageMeta>,
) -> bool {
    let candidate = Candidate {
        ctx,
        msg,
        body: raw,
        meta: meta.map(Some).map(OnceCell::from).unwrap_or_default(),
        header: OnceCell::new(),
        text: OnceCell::new(),
        mime_text: OnceCell::new(),
    };
    keys.iter().all(|key| candidate.eval(key))
}

/// One message under evaluation, with what was derived from it so far.
struct Candidate<'c> {
    ctx: &'c SearchContext,
    msg: &'c store::Message,
    body: Option<&'c [u8]>,
    meta: OnceCell<Option<MessageMeta>>,
    /// Top-level header fields: lower-case name and decoded, lower-case value.
    header: OnceCell<Vec<(String, String)>>,
    /// Decoded body text, lower case.
    text: OnceCell<String>,
    /// Decoded MIME headers of the body parts, lower case.
    mime_text: OnceCell<String>,
}

impl Candidate<'_> {
    fn eval(&self, key: &SearchKey<'_>) -> bool {
        match key {
            SearchKey::And(keys) => keys.as_ref().iter().all(|key| self.eval(key)),
            SearchKey::Not(key) => !self.eval(key),
            SearchKey::Or(left, right) => self.eval(left) || self.eval(right),
            SearchKey::All => true,
            SearchKey::SequenceSet(set) => {
                contains(set, self.ctx.seq, self.ctx.max_seq, self.ctx.saved)
            }
            SearchKey::Uid(set) => contains(set, self.msg.uid, self.ctx.max_uid, self.ctx.saved),
            SearchKey::Answered => self.has_flag("\\Answered"),
            SearchKey::Deleted => self.has_flag("\\Deleted"),
            SearchKey::Draft => self.has_flag("\\Draft"),
            SearchKey::Flagged => self.has_flag("\\Flagged"),
            SearchKey::Seen => self.has_flag("\\Seen"),
            SearchKey::Unanswered => !self.has_flag("\\Answered"),
            SearchKey::Undeleted => !self.has_flag("\\Deleted"),
            SearchKey::Undraft => !self.has_flag("\\Draft"),
            SearchKey::Unflagged => !self.has_flag("\\Flagged"),
            SearchKey::Unseen => !self.has_flag("\\Seen"),
            SearchKey::Keyword(atom) => self.has_flag(atom.as_ref()),
            SearchKey::Unkeyword(atom) => !self.has_flag(atom.as_ref()),
            SearchKey::Recent => self.ctx.recent,
            SearchKey::New => self.ctx.recent && !self.has_flag("\\Seen"),
            SearchKey::Old => !self.ctx.recent,
            SearchKey::Larger(size) => self.msg.size_bytes > u64::from(*size),
            SearchKey::Smaller(size) => self.msg.size_bytes < u64::from(*size),
            SearchKey::Before(date) => self.internal_day() < day(date),
            SearchKey::On(date) => self.internal_day() == day(date),
            SearchKey::Since(date) => self.internal_day() >= day(date),
            SearchKey::SentBefore(date) => self.sent_day() < day(date),
            SearchKey::SentOn(date) => self.sent_day() == day(date),
            SearchKey::SentSince(date) => self.sent_day() >= day(date),
            SearchKey::ModSequence { modseq, .. } => self.msg.modseq >= *modseq,
            SearchKey::From(text) => self.envelope_has(text, |e| addresses(&e.from)),
            SearchKey::To(text) => self.envelope_has(text, |e| addresses(&e.to)),
            SearchKey::Cc(text) => self.envelope_has(text, |e| addresses(&e.cc)),
            SearchKey::Bcc(text) => self.envelope_has(text, |e| addresses(&e.bcc)),
            SearchKey::Subject(text) => self.envelope_has(text, |e| {
                e.subject.as_deref().map(decode_words).unwrap_or_default()
            }),
            SearchKey::Header(name, text) => self.header_has(name, text),
            SearchKey::Body(text) => self.text().contains(&needle(text)),
            SearchKey::Text(text) => {
                let needle = needle(text);
                self.header()
                    .iter()
                    .any(|(name, value)| name.contains(&needle) || value.contains(&needle))
                    || self.text().contains(&needle)
                    || self.mime_text().contains(&needle)
            }
        }
    }

    /// Whether the message carries `flag` (system flags and keywords match without case).
    fn has_flag(&self, flag: &str) -> bool {
        self.msg.flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
    }

    fn meta(&self) -> Option<&MessageMeta> {
        self.meta
            .get_or_init(|| MessageMeta::decode(&self.msg.meta).ok())
            .as_ref()
    }

    fn internal_day(&self) -> i64 {
        self.msg.internal_date.div_euclid(DAY_S)
    }

    /// The day written in the Date header, else the internal date's.
    fn sent_day(&self) -> i64 {
        self.meta()
            .filter(|meta| meta.sent_at_unix_s.is_some())
            .and_then(|meta| meta.envelope.date.as_deref())
            .and_then(written_day)
            .unwrap_or_else(|| self.internal_day())
    }

    fn envelope_has(
        &self,
        text: &AString<'_>,
        field: impl Fn(&message::Envelope) -> String,
    ) -> bool {
        let Some(meta) = self.meta() else {
            return false;
        };
        field(&meta.envelope).to_lowercase().contains(&needle(text))
    }

    fn header(&self) -> &[(String, String)] {
        self.header
            .get_or_init(|| self.raw_header().map(decoded_fields).unwrap_or_default())
    }

    /// The message's top-level header, as stored.
    fn raw_header(&self) -> Option<&[u8]> {
        let (raw, meta) = (self.body?, self.meta()?);
        let end = usize::try_from(meta.body.offsets.body_start)
            .unwrap_or(usize::MAX)
            .min(raw.len());
        Some(&raw[..end])
    }

    /// Whether a header field named `name` holds `text`; only fields of that name are
    /// decoded (unless every field already is, for TEXT).
    fn header_has(&self, name: &AString<'_>, text: &AString<'_>) -> bool {
        let needle = needle(text);
        if let Some(decoded) = self.header.get() {
            let name = String::from_utf8_lossy(name.as_ref()).to_lowercase();
            return decoded
                .iter()
                .any(|(field, value)| *field == name && value.contains(&needle));
        }
        let Some(raw) = self.raw_header() else {
            return false;
        };
        fields(raw).into_iter().any(|field| {
            field
                .name
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_ref()))
                && field
                    .bytes
                    .iter()
                    .position(|&b| b == b':')
                    .is_some_and(|colon| {
                        decode_value(&field.bytes[colon + 1..])
                            .to_lowercase()
                            .contains(&needle)
                    })
        })
    }

    fn text(&self) -> &str {
        self.text.get_or_init(|| {
            let (Some(raw), Some(meta)) = (self.body, self.meta()) else {
                return String::new();
            };
            body_text(raw, &meta.body).to_lowercase()
        })
    }

    fn mime_text(&self) -> &str {
        self.mime_text.get_or_init(|| {
            let (Some(raw), Some(meta)) = (self.body, self.meta()) else {
                return String::new();
            };
            mime_headers(raw, &meta.body)
        })
    }
}

/// A search string as lower-case text.
fn needle(text: &AString<'_>) -> String {
    String::from_utf8_lossy(text.as_ref()).to_lowercase()
}

/// Whether `value` is in a sequence set, `*` standing for `largest` and `$` matching
/// when `saved`.
fn contains(set: &SequenceSet, value: u32, largest: u32, saved: bool) -> bool {
    let Some(largest) = NonZeroU32::new(largest) else {
        return false;
    };
    set.0.as_ref().iter().any(|sequence| match sequence {
        Sequence::Single(single) => single.expand(largest).get() == value,
        Sequence::Range(from, to) => {
            let (a, b) = (from.expand(largest).get(), to.expand(largest).get());
            (a.min(b)..=a.max(b)).contains(&value)
        }
        Sequence::LastCommand => saved,
    })
}

/// Days since the Unix epoch of a search date.
fn day(date: &NaiveDate) -> i64 {
    date.as_ref()
        .signed_duration_since(chrono::NaiveDate::default())
        .num_days()
}

/// Days since the Unix epoch of the calendar day written in a Date header.
fn written_day(date: &str) -> Option<i64> {
    let parsed = mail_parser::DateTime::parse_rfc822(date)?;
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(parsed.year),
        u32::from(parsed.month),
        u32::from(parsed.day),
    )?;
    Some(
        date.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
}

/// Unstructured header text with RFC 2047 encoded words decoded and folding removed.
fn decode_words(value: &str) -> String {
    decode_value(value.as_bytes())
}

fn decode_value(value: &[u8]) -> String {
    let mut line = value.to_vec();
    line.push(b'\n');
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// An address list as text: `name <mailbox@host>` for each address, group names kept.
fn addresses(list: &[message::Address]) -> String {
    let mut out = String::new();
    for addr in list {
        if let Some(name) = &addr.name {
            out.push_str(&decode_words(name));
            out.push(' ');
        }
        match (&addr.mailbox, &addr.host) {
            (Some(mailbox), Some(host)) => {
                out.push('<');
                out.push_str(mailbox);
                out.push('@');
                out.push_str(host);
                out.push('>');
            }
            (Some(group), None) => out.push_str(group),
            _ => {}
        }
        out.push_str(", ");
    }
    out
}

/// Header fields as lower-case name and decoded, lower-case value.
fn decoded_fields(header: &[u8]) -> Vec<(String, String)> {
    fields(header)
        .into_iter()
        .filter_map(|field| {
            let name = field.name?;
            let colon = field.bytes.iter().position(|&b| b == b':')?;
            Some((
                String::from_utf8_lossy(name).to_lowercase(),
                decode_value(&field.bytes[colon + 1..]).to_lowercase(),
            ))
        })
        .collect()
}

/// The searchable text of a body: decoded text parts and embedded messages' headers.
fn body_text(raw: &[u8], root: &message::BodyStructure) -> String {
    let mut out = String::new();
    // Depth is bounded by message::MAX_DEPTH, but walk without recursion anyway.
    let mut pending = vec![root];
    while let Some(node) = pending.pop() {
        match &node.content {
            PartContent::Multipart { parts, .. } => pending.extend(parts.iter().rev()),
            PartContent::Message { body, .. } => {
                let start = clamp(node.offsets.body_start, raw);
                let end = clamp(body.offsets.body_start, raw).max(start);
                for (name, value) in decoded_fields(&raw[start..end]) {
                    out.push_str(&name);
                    out.push_str(": ");
                    out.push_str(&value);
                    out.push('\n');
                }
                pending.push(body);
            }
            PartContent::Text { .. } => {
                out.push_str(&part_text(raw, node));
                out.push('\n');
            }
            PartContent::Basic => {}
        }
    }
    out
}

/// The MIME headers of every part below the top level, decoded, one field a line.
fn mime_headers(raw: &[u8], root: &message::BodyStructure) -> String {
    let mut out = String::new();
    let mut pending: Vec<&message::BodyStructure> = match &root.content {
        PartContent::Multipart { parts, .. } => parts.iter().rev().collect(),
        PartContent::Message { body, .. } => vec![body],
        _ => Vec::new(),
    };
    while let Some(node) = pending.pop() {
        let end = clamp(node.offsets.body_start, raw);
        let start = clamp(node.offsets.header_start, raw).min(end);
        for (name, value) in decoded_fields(&raw[start..end]) {
            out.push_str(&name);
            out.push_str(": ");
            out.push_str(&value);
            out.push('\n');
        }
        match &node.content {
            PartContent::Multipart { parts, .. } => pending.extend(parts.iter().rev()),
            PartContent::Message { body, .. } => pending.push(body),
            _ => {}
        }
    }
    out
}

fn clamp(offset: u64, raw: &[u8]) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX).min(raw.len())
}

/// A text part's content with its transfer encoding and charset removed.
fn part_text(raw: &[u8], node: &message::BodyStructure) -> String {
    let end = clamp(node.offsets.end, raw);
    let start = clamp(node.offsets.body_start, raw).min(end);
    let content = &raw[start..end];
    let bytes =
        decode_transfer(content, &node.encoding).unwrap_or(std::borrow::Cow::Borrowed(content));
    let charset = node
        .params
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("charset"))
        .map(|(_, value)| value.as_str())
        .unwrap_or("us-ascii");
    let text = match charset_decoder(charset.as_bytes()) {
        Some(decode) if !is_utf8_compatible(charset) => decode(&bytes),
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    if node.media_subtype.eq_ignore_ascii_case("html") {
        html_to_text(&text)
    } else {
        text
    }
}

/// Whether text in a charset reads as UTF-8 (ASCII is taken as UTF-8, since mislabelled
/// UTF-8 is common).
fn is_utf8_compatible(charset: &str) -> bool {
    ["us-ascii", "ascii", "utf-8", "utf8"]
        .iter()
        .any(|name| charset.eq_ignore_ascii_case(name))
}

#[cfg(test)]
#[path = "search_tests.rs"]
mod tests;
