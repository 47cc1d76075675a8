//! Message metadata computed once at delivery: the IMAP ENVELOPE and BODYSTRUCTURE
//! (RFC 9051 §7.5.2) and the byte offsets of every MIME part, stored with the message
//! so that FETCH never re-parses it.
//!
//! Parsing is done by mail-parser; this module only maps its result onto IMAP's model.
//! Choices made here:
//! - Envelope strings are the raw header text, unfolded (CR and LF removed) and trimmed,
//!   with RFC 2047 encoded words left as they are. Header bytes that are not UTF-8 are
//!   replaced lossily; the exact bytes stay in the stored message.
//! - Address display names are raw as well (encoded words kept); quoted strings are
//!   unquoted and comments are used as the name when there is no phrase, as mail-parser
//!   does. An address without `@` gets an empty (not NIL) host, since a NIL host marks
//!   a group in IMAP.
//! - Content-Type parameters are mail-parser's decoded values (RFC 2231 joined).
//! - A part whose type says multipart but that has no usable boundary is reported as
//!   text/plain; a message/rfc822 part whose content cannot be parsed in place (for
//!   example base64-encoded) gets an empty envelope and a text/plain body over its
//!   content, so every structure can be written out in IMAP's grammar.
//! - Nesting deeper than [`MAX_DEPTH`] is reported as a leaf.

use mail_parser::parsers::MessageStream;
use mail_parser::{
    Address as ParsedAddress, Header, HeaderName, HeaderValue, MessageParser, MessagePart, PartType,
};
use serde::{Deserialize, Serialize};

/// Deepest MIME nesting described part by part; deeper parts are reported as leaves.
pub const MAX_DEPTH: usize = 48;

/// Most embedded-message markers (message/rfc822, message/global or multipart/digest in
/// a Content-Type field) a message may carry to have its body parsed. mail-parser nests
/// embedded messages without bound and drops them recursively, so a message that could
/// nest deeper is described from its header only.
pub const MAX_EMBEDDED_MARKERS: usize = 256;

/// Version byte that starts every encoded [`MessageMeta`].
const FORMAT_VERSION: u8 = 1;

/// Everything IMAP FETCH needs about a message's headers and MIME structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// The ENVELOPE of the message.
    pub envelope: Envelope,
    /// The BODYSTRUCTURE of the message, with part offsets.
    pub body: BodyStructure,
    /// The Date header as seconds since the Unix epoch, when it parses as a valid date.
    pub sent_at_unix_s: Option<i64>,
    /// Total size of the message in octets (RFC822.SIZE).
    pub size_octets: u64,
}

/// An IMAP ENVELOPE: raw header values and parsed address lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Raw Date header.
    pub date: Option<String>,
    /// Raw Subject header.
    pub subject: Option<String>,
    /// From addresses.
    pub from: Vec<Address>,
    /// Sender addresses (From when absent or empty).
    pub sender: Vec<Address>,
    /// Reply-To addresses (From when absent or empty).
    pub reply_to: Vec<Address>,
    /// To addresses.
    pub to: Vec<Address>,
    /// Cc addresses.
    pub cc: Vec<Address>,
    /// Bcc addresses.
    pub bcc: Vec<Address>,
    /// Raw In-Reply-To header.
    pub in_reply_to: Option<String>,
    /// Raw Message-ID header.
    pub message_id: Option<String>,
}

/// One IMAP address structure; group start and end markers use IMAP's NIL-host form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name (raw, encoded words kept).
    pub name: Option<String>,
    /// Source route (obsolete; always absent).
    pub adl: Option<String>,
    /// Local part, or the group name in a group start marker.
    pub mailbox: Option<String>,
    /// Domain; absent only in group markers.
    pub host: Option<String>,
}

/// An IMAP BODYSTRUCTURE node with its extension data and byte offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyStructure {
    /// Media type, lower case ("text").
    pub media_type: String,
    /// Media subtype, lower case ("plain").
    pub media_subtype: String,
    /// Content-Type parameters in header order.
    pub params: Vec<(String, String)>,
    /// Raw Content-ID.
    pub id: Option<String>,
    /// Raw Content-Description.
    pub description: Option<String>,
    /// Raw Content-Transfer-Encoding ("7BIT" when absent).
    pub encoding: String,
    /// Size of the part's body in octets.
    pub size_octets: u64,
    /// Raw Content-MD5.
    pub md5: Option<String>,
    /// Content-Disposition.
    pub disposition: Option<Disposition>,
    /// Content-Language tags.
    pub language: Vec<String>,
    /// Raw Content-Location.
    pub location: Option<String>,
    /// Where the part lies in the raw message.
    pub offsets: PartOffsets,
    /// What the part contains.
    pub content: PartContent,
}

/// A Content-Disposition value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    /// Disposition type, lower case ("attachment").
    pub kind: String,
    /// Disposition parameters in header order.
    pub params: Vec<(String, String)>,
}

/// Byte offsets of one part in the raw message: `[header_start, body_start)` is the
/// part's header, `[body_start, end)` its body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartOffsets {
    /// First byte of the part's header.
    pub header_start: u64,
    /// First byte of the part's body (after the blank line).
    pub body_start: u64,
    /// One past the last byte of the part's body.
    pub end: u64,
}

/// The kind-specific part of a [`BodyStructure`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartContent {
    /// A non-text leaf.
    Basic,
    /// A text/* leaf.
    Text {
        /// Body size in lines.
        lines: u64,
    },
    /// A message/rfc822 (or message/global) part.
    Message {
        /// Envelope of the embedded message.
        envelope: Box<Envelope>,
        /// Structure of the embedded message.
        body: Box<BodyStructure>,
        /// Body size in lines.
        lines: u64,
    },
    /// A multipart/* part.
    Multipart {
        /// Child parts in order.
        parts: Vec<BodyStructure>,
        /// The boundary parameter.
        boundary: String,
    },
}

/// Why stored metadata could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The bytes are empty.
    #[error("message metadata is empty")]
    Empty,
    /// The format version byte is not one this build reads.
    #[error("message metadata has format version {0}, expected {FORMAT_VERSION}")]
    Version(u8),
    /// The bytes do not decode.
    #[error("message metadata is corrupt: {0}")]
    Corrupt(#[from] postcard::Error),
}

impl MessageMeta {
    /// Serializes the metadata for storage in the index.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        // Serializing owned strings, vectors and enums into a Vec cannot fail.
        match postcard::to_extend(self, out) {
            Ok(bytes) => {
                out = bytes;
            }
            Err(error) => unreachable!("postcard into a Vec failed: {error}"),
        }
        out
    }

    /// Reads metadata written by [`MessageMeta::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, MetaError> {
        let (&version, rest) = bytes.split_first().ok_or(MetaError::Empty)?;
        if version != FORMAT_VERSION {
            return Err(MetaError::Version(version));
        }
        Ok(postcard::from_bytes(rest)?)
    }
}

/// Parses a raw message (CRLF line endings) into its metadata; never fails: a message
/// that cannot be parsed is described as a text/plain body with an empty envelope.
pub fn parse(raw: &[u8]) -> MessageMeta {
    parse_with(raw, None)
}

/// [`parse`], for a message whose line feeds were counted as it arrived (`newlines`,
/// all of them): a message of one text part then has its lines counted from that and
/// its header, not from another pass over its body.
pub fn parse_counted(raw: &[u8], newlines: u64) -> MessageMeta {
    parse_with(raw, Some(newlines))
}

fn parse_with(raw: &[u8], newlines: Option<u64>) -> MessageMeta {
    // A leaf part is described from its header, which cannot nest: only a message
    // mail-parser reads whole needs its nesting bounded first (a scan of every line).
    if let Some(meta) = single_part(raw, newlines) {
        return meta;
    }
    if embedded_markers(raw) > MAX_EMBEDDED_MARKERS {
        return header_only(raw);
    }
    parse_whole(raw)
}

/// The metadata of a message that is one leaf part (neither multipart nor an embedded
/// message), from its header alone: parsing the whole message would make mail-parser
/// decode the body (transfer encoding, charset) only for it to be ignored, which is most
/// of the cost of a large message. None when the message is not such a part.
/// `newlines`, where known, is the number of line feeds in `raw`.
fn single_part(raw: &[u8], newlines: Option<u64>) -> Option<MessageMeta> {
    let header_end = blank_line_end(raw);
    let end = u32::try_from(raw.len()).ok()?;
    if header_end >= raw.len() {
        return None;
    }
    let header_bytes = &raw[..header_end];
    let mut message = unless_panicking(|| parser().parse(header_bytes))?;
    let root = message.parts.first_mut()?;
    if root.offset_header != 0 || root.offset_body as usize != header_end {
        return None;
    }
    let content_type =
        header(root, &HeaderName::ContentType).and_then(|h| h.value.as_content_type());
    if content_type.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart") || ct.ctype().eq_ignore_ascii_case("message")
    }) {
        return None;
    }
    root.offset_end = end;
    let root = &message.parts[0];
    let sent_at_unix_s = match header(root, &HeaderName::Date).map(|h| &h.value) {
        Some(HeaderValue::DateTime(date)) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    };
    Some(MessageMeta {
        envelope: envelope(raw, root),
        body: structure(raw, &message.parts[..1], 0, false, 0, newlines),
        sent_at_unix_s,
        size_octets: raw.len() as u64,
    })
}

/// What mail-parser makes of a message, or None where it panics. mail-parser 0.11 has a
/// debug assertion that fires on some malformed nesting (a multipart/digest part that
/// holds an empty message/rfc822 part), so debug builds panic there while release
/// builds go on; any panic a later version brings means "cannot be parsed" here, never
/// a dead session.
fn unless_panicking<T>(parse: impl FnOnce() -> Option<T> + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(parse).ok().flatten()
}

/// The metadata of any message, with mail-parser reading all of it.
fn parse_whole(raw: &[u8]) -> MessageMeta {
    let size_octets = raw.len() as u64;
    let Some(message) = unless_panicking(|| parser().parse(raw)) else {
        // Its header may still be readable: keep the envelope.
        return header_only(raw);
    };
    let Some(root) = message.parts.first() else {
        return MessageMeta {
            envelope: Envelope::default(),
            body: fallback_text(raw, 0, blank_line_end(raw), raw.len()),
            sent_at_unix_s: None,
            size_octets,
        };
    };
    let sent_at_unix_s = match header(root, &HeaderName::Date).map(|h| &h.value) {
        Some(HeaderValue::DateTime(date)) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    };
    MessageMeta {
        envelope: envelope(raw, root),
        body: structure(raw, &message.parts, 0, false, 0, None),
        sent_at_unix_s,
        size_octets,
    }
}

/// The metadata of a message described from its header only: the envelope, and the
/// body as one text/plain part.
fn header_only(raw: &[u8]) -> MessageMeta {
    let body_start = blank_line_end(raw);
    let message = unless_panicking(|| parser().parse_headers(raw));
    let root = message.as_ref().and_then(|m| m.parts.first());
    let sent_at_unix_s = match root
        .and_then(|r| header(r, &HeaderName::Date))
        .map(|h| &h.value)
    {
        Some(HeaderValue::DateTime(date)) if date.is_valid() => Some(date.to_timestamp()),
        _ => None,
    };
    MessageMeta {
        envelope: root.map(|r| envelope(raw, r)).unwrap_or_default(),
        body: fallback_text(raw, 0, body_start, raw.len()),
        sent_at_unix_s,
        size_octets: raw.len() as u64,
    }
}

/// An upper bound on how deeply mail-parser could nest embedded messages in `raw`.
///
/// Each level needs a Content-Type field naming message/rfc822, message/global or
/// multipart/digest, so the bound counts those words in every line that could belong to
/// a Content-Type field (body lines included, which only over-counts). A part whose
/// header pairs such a word with a base64 or quoted-printable encoding is parsed from
/// decoded bytes this scan cannot see: its depth is unbounded.
fn embedded_markers(raw: &[u8]) -> usize {
    #[derive(PartialEq)]
    enum Field {
        ContentType,
        Encoding,
        Other,
    }
    let mut markers = 0usize;
    let mut field = Field::Other;
    let (mut part_markers, mut part_encoded) = (0usize, false);
    for line in raw.split(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        let text = line.trim_ascii();
        if text.is_empty() {
            if !continuation {
                if part_markers > 0 && part_encoded {
                    return usize::MAX;
                }
                (part_markers, part_encoded) = (0, false);
                field = Field::Other;
            }
            continue;
        }
        if field_name_is(text, b"content-type") {
            field = Field::ContentType;
        } else if field_name_is(text, b"content-transfer-encoding") {
            field = Field::Encoding;
        } else if !continuation {
            field = Field::Other;
        }
        match field {
            Field::ContentType => {
                let found = text
                    .windows(6)
                    .filter(|w| {
                        [&b"rfc822"[..], b"global", b"digest"]
                            .iter()
                            .any(|word| w.eq_ignore_ascii_case(word))
                    })
                    .count();
                markers = markers.saturating_add(found);
                part_markers = part_markers.saturating_add(found);
            }
            Field::Encoding => {
                part_encoded |= contains_ignore_case(text, b"base64")
                    || contains_ignore_case(text, b"quoted-printable");
            }
            Field::Other => {}
        }
    }
    if part_markers > 0 && part_encoded {
        return usize::MAX;
    }
    markers
}

/// Whether a header line starts with field `name` (lower case) and a colon; whitespace
/// inside the name is ignored, as mail-parser ignores it.
fn field_name_is(line: &[u8], name: &[u8]) -> bool {
    // Most lines are body text: reject them on their first letter before looking further.
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first.map(u8::to_ascii_lowercase) != name.first().copied() {
        return false;
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let mut chars = line[..colon].iter().filter(|b| !b.is_ascii_whitespace());
    name.iter()
        .all(|&n| chars.next().is_some_and(|c| c.to_ascii_lowercase() == n))
        && chars.next().is_none()
}

fn contains_ignore_case(text: &[u8], word: &[u8]) -> bool {
    text.windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// Where the body starts when mail-parser found no header: after the first empty line,
/// or at the end when there is none.
fn blank_line_end(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    if raw.starts_with(b"\n") {
        return 1;
    }
    // The first line feed followed by an empty line, CRLF or bare LF.
    raw.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .find_map(|(at, _)| match &raw[at + 1..] {
            [b'\n', ..] => Some(at + 2),
            [b'\r', b'\n', ..] => Some(at + 3),
            _ => None,
        })
        .unwrap_or(raw.len())
}

/// A text/plain; charset=us-ascii leaf over `raw[body_start..end]`.
fn fallback_text(raw: &[u8], header_start: usize, body_start: usize, end: usize) -> BodyStructure {
    let offsets = clamp_offsets(raw, header_start, body_start, end);
    let body = &raw[offsets.body_start as usize..offsets.end as usize];
    BodyStructure {
        media_type: "text".into(),
        media_subtype: "plain".into(),
        params: vec![("charset".into(), "us-ascii".into())],
        id: None,
        description: None,
        encoding: "7BIT".into(),
        size_octets: body.len() as u64,
        md5: None,
        disposition: None,
        language: Vec::new(),
        location: None,
        offsets,
        content: PartContent::Text {
            lines: count_lines(body),
        },
    }
}

/// Offsets ordered and inside the message, whatever the parser reported.
fn clamp_offsets(raw: &[u8], header_start: usize, body_start: usize, end: usize) -> PartOffsets {
    let end = end.min(raw.len());
    let body_start = body_start.min(end);
    let header_start = header_start.min(body_start);
    PartOffsets {
        header_start: header_start as u64,
        body_start: body_start as u64,
        end: end as u64,
    }
}

/// Number of lines in the body at `offsets`: from `newlines`, the line feeds of all of
/// `raw`, when given and the body ends `raw`, so that only what precedes the body is
/// scanned; otherwise counted.
fn text_lines(raw: &[u8], offsets: &PartOffsets, newlines: Option<u64>) -> u64 {
    let (start, end) = (offsets.body_start as usize, offsets.end as usize);
    let body = &raw[start..end];
    match newlines {
        Some(all) if end == raw.len() => {
            let in_body = all.saturating_sub(count_newlines(&raw[..start]));
            match body.last() {
                Some(b'\n') | None => in_body,
                Some(_) => in_body + 1,
            }
        }
        _ => count_lines(body),
    }
}

/// Number of LFs in `bytes`.
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    // Counted in byte-wide lanes (at most 255 per chunk) so that the loop runs on
    // whole vector registers, not four bytes at a time.
    bytes
        .chunks(255)
        .map(|chunk| u64::from(chunk.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
        .sum()
}

/// Number of lines in a body: its LFs, plus one for a last line without LF.
fn count_lines(body: &[u8]) -> u64 {
    let newlines = count_newlines(body);
    match body.last() {
        Some(b'\n') | None => newlines,
        Some(_) => newlines + 1,
    }
}

/// The parser a message is described with. It decodes the fields BODYSTRUCTURE and
/// the sent date read, each as mail-parser would by default; it only locates the
/// ENVELOPE fields, which [`envelope`] reads from their raw bytes (addresses parsed
/// there with encoded words kept); and it skips every other field (Received,
/// DKIM-Signature, List-*, ...) without decoding it: those are read, when at all, from
/// their raw bytes.
fn parser() -> &'static MessageParser {
    static PARSER: std::sync::LazyLock<MessageParser> = std::sync::LazyLock::new(|| {
        let located = [
            HeaderName::ContentMd5,
            HeaderName::Subject,
            HeaderName::From,
            HeaderName::Sender,
            HeaderName::ReplyTo,
            HeaderName::To,
            HeaderName::Cc,
            HeaderName::Bcc,
            HeaderName::MessageId,
            HeaderName::InReplyTo,
        ];
        located
            .into_iter()
            .fold(
                MessageParser::new()
                    .with_mime_headers()
                    .header_comma_separated(HeaderName::ContentLanguage)
                    .header_date(HeaderName::Date),
                MessageParser::header_raw,
            )
            .default_header_ignore()
    });
    &PARSER
}

/// The first header of a part with that name.
fn header<'a, 'x>(part: &'a MessagePart<'x>, name: &HeaderName<'_>) -> Option<&'a Header<'x>> {
    part.headers.iter().find(|h| &h.name == name)
}

/// A header's raw value bytes (after the colon, up to and including its line end).
fn raw_bytes<'r>(raw: &'r [u8], header: &Header<'_>) -> &'r [u8] {
    let end = (header.offset_end as usize).min(raw.len());
    let start = (header.offset_start as usize).min(end);
    &raw[start..end]
}

/// A header's raw value, unfolded and trimmed; `None` when absent.
fn raw_value(raw: &[u8], part: &MessagePart<'_>, name: &HeaderName<'_>) -> Option<String> {
    let header = header(part, name)?;
    let unfolded: Vec<u8> = raw_bytes(raw, header)
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    Some(String::from_utf8_lossy(unfolded.trim_ascii()).into_owned())
}

/// The ENVELOPE of a message whose root part is `root`.
fn envelope(raw: &[u8], root: &MessagePart<'_>) -> Envelope {
    let list = |name: HeaderName<'_>| {
        header(root, &name)
            .map(|h| addresses(raw_bytes(raw, h)))
            .unwrap_or_default()
    };
    let from = list(HeaderName::From);
    let mut sender = list(HeaderName::Sender);
    if sender.is_empty() {
        sender = from.clone();
    }
    let mut reply_to = list(HeaderName::ReplyTo);
    if reply_to.is_empty() {
        reply_to = from.clone();
    }
    Envelope {
        date: raw_value(raw, root, &HeaderName::Date),
        subject: raw_value(raw, root, &HeaderName::Subject),
        from,
        sender,
        reply_to,
        to: list(HeaderName::To),
        cc: list(HeaderName::Cc),
        bcc: list(HeaderName::Bcc),
        in_reply_to: raw_value(raw, root, &HeaderName::InReplyTo),
        message_id: raw_value(raw, root, &HeaderName::MessageId),
    }
}

/// Parses an address-list header value with mail-parser, keeping encoded words raw.
///
/// mail-parser decodes RFC 2047 words in names; to keep them raw, every `=` that opens
/// an encoded word (`=?`) is swapped for a control byte absent from the value before
/// parsing and swapped back afterwards. Offsets do not move, since one byte replaces one.
fn addresses(value: &[u8]) -> Vec<Address> {
    let mask = (1u8..=8).find(|b| !value.contains(b));
    let masked: Vec<u8> = match mask {
        Some(mask) => {
            let mut masked = value.to_vec();
            for i in 0..masked.len().saturating_sub(1) {
                if masked[i] == b'=' && masked[i + 1] == b'?' {
                    masked[i] = mask;
                }
            }
            masked
        }
        None => value.to_vec(),
    };
    let unmask = |text: &str| -> String {
        match mask {
            Some(mask) => text.replace(char::from(mask), "="),
            None => text.to_string(),
        }
    };
    let mut out = Vec::new();
    match MessageStream::new(&masked).parse_address() {
        HeaderValue::Address(ParsedAddress::List(list)) => {
            out.extend(list.iter().map(|a| address(a, &unmask)));
        }
        HeaderValue::Address(ParsedAddress::Group(groups)) => {
            for group in &groups {
                match &group.name {
                    Some(name) => {
                        out.push(Address {
                            mailbox: Some(unmask(name)),
                            ..Address::default()
                        });
                        out.extend(group.addresses.iter().map(|a| address(a, &unmask)));
                        out.push(Address::default());
                    }
                    None => out.extend(group.addresses.iter().map(|a| address(a, &unmask))),
                }
            }
        }
        _ => {}
    }
    out
}

/// One mail-parser address as an IMAP address structure.
fn address(parsed: &mail_parser::Addr<'_>, unmask: &dyn Fn(&str) -> String) -> Address {
    let name = parsed
        .name
        .as_deref()
        .map(unmask)
        .filter(|name| !name.is_empty());
    let (mailbox, host) = match parsed.address.as_deref().map(unmask) {
        Some(addr) => match addr.rsplit_once('@') {
            Some((local, domain)) => (local.to_string(), domain.to_string()),
            None => (addr, String::new()),
        },
        None => (String::new(), String::new()),
    };
    Address {
        name,
        adl: None,
        mailbox: Some(mailbox),
        host: Some(host),
    }
}

/// Content-Type or Content-Disposition parameters as (name, value) pairs.
fn attributes(value: &mail_parser::ContentType<'_>) -> Vec<(String, String)> {
    value
        .attributes()
        .unwrap_or_default()
        .iter()
        .map(|a| (a.name.to_string(), a.value.to_string()))
        .collect()
}

/// The structure of `parts[id]`; `in_digest` tells whether the parent is
/// multipart/digest, where the default type is message/rfc822. `newlines`, where
/// known, is the number of line feeds in all of `raw`.
fn structure(
    raw: &[u8],
    parts: &[MessagePart<'_>],
    id: usize,
    in_digest: bool,
    depth: usize,
    newlines: Option<u64>,
) -> BodyStructure {
    let Some(part) = parts.get(id) else {
        return fallback_text(raw, raw.len(), raw.len(), raw.len());
    };
    let offsets = clamp_offsets(
        raw,
        part.offset_header as usize,
        part.offset_body as usize,
        part.offset_end as usize,
    );
    let body = &raw[offsets.body_start as usize..offsets.end as usize];
    let content_type =
        header(part, &HeaderName::ContentType).and_then(|h| h.value.as_content_type());
    let (mut media_type, mut media_subtype, params) = match content_type {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
            attributes(ct),
        ),
        None if in_digest => ("message".into(), "rfc822".into(), Vec::new()),
        None => (
            "text".into(),
            "plain".into(),
            vec![("charset".into(), "us-ascii".into())],
        ),
    };
    let descend = depth < MAX_DEPTH;
    let content = match (&part.body, media_type.as_str()) {
        (PartType::Multipart(children), "multipart") if descend && !children.is_empty() => {
            let digest = media_subtype == "digest";
            PartContent::Multipart {
                parts: children
                    .iter()
                    .map(|&child| structure(raw, parts, child as usize, digest, depth + 1, None))
                    .collect(),
                boundary: content_type
                    .and_then(|ct| ct.attribute("boundary"))
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        (_, "multipart") => {
            media_type = "text".into();
            media_subtype = "plain".into();
            PartContent::Text {
                lines: text_lines(raw, &offsets, newlines),
            }
        }
        (_, "message") if matches!(media_subtype.as_str(), "rfc822" | "global") => {
            embedded(raw, part, offsets, body, descend, depth)
        }
        (_, "text") => PartContent::Text {
            lines: text_lines(raw, &offsets, newlines),
        },
        _ => PartContent::Basic,
    };
    let disposition = header(part, &HeaderName::ContentDisposition)
        .and_then(|h| h.value.as_content_type())
        .map(|d| Disposition {
            kind: d.ctype().to_ascii_lowercase(),
            params: attributes(d),
        });
    let language = match header(part, &HeaderName::ContentLanguage).map(|h| &h.value) {
        Some(HeaderValue::TextList(tags)) => tags.iter().map(|t| t.to_string()).collect(),
        Some(HeaderValue::Text(tag)) => vec![tag.to_string()],
        _ => Vec::new(),
    };
    BodyStructure {
        media_type,
        media_subtype,
        params,
        id: raw_value(raw, part, &HeaderName::ContentId),
        description: raw_value(raw, part, &HeaderName::ContentDescription),
        encoding: raw_value(raw, part, &HeaderName::ContentTransferEncoding)
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| "7BIT".into()),
        size_octets: body.len() as u64,
        md5: raw_value(raw, part, &HeaderName::ContentMd5),
        disposition,
        language,
        location: raw_value(raw, part, &HeaderName::ContentLocation),
        offsets,
        content,
    }
}

/// The content of a message/rfc822 part: the embedded message when mail-parser parsed
/// it in place, else an empty envelope over a text/plain body.
fn embedded(
    raw: &[u8],
    part: &MessagePart<'_>,
    offsets: PartOffsets,
    body: &[u8],
    descend: bool,
    depth: usize,
) -> PartContent {
    let lines = count_lines(body);
    // Only an unencoded embedded message is parsed in place; its parts' offsets then
    // point into `raw`. An encoded one was parsed from decoded bytes.
    let in_place = descend && part.encoding == mail_parser::Encoding::None;
    if let (PartType::Message(message), true) = (&part.body, in_place)
        && let Some(root) = message.parts.first()
    {
        return PartContent::Message {
            envelope: Box::new(envelope(raw, root)),
            body: Box::new(structure(raw, &message.parts, 0, false, depth + 1, None)),
            lines,
        };
    }
    let start = offsets.body_start as usize;
    let end = offsets.end as usize;
    let inner_body = start + blank_line_end(body);
    PartContent::Message {
        envelope: Box::default(),
        body: Box::new(fallback_text(raw, start, inner_body, end)),
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(raw: &[u8], from: u64, to: u64) -> &str {
        std::str::from_utf8(&raw[from as usize..to as usize]).expect("test input is UTF-8")
    }

    fn body_of<'a>(raw: &'a [u8], part: &BodyStructure) -> &'a str {
        slice(raw, part.offsets.body_start, part.offsets.end)
    }

    fn addr(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address {
            name: name.map(str::to_string),
            adl: None,
            mailbox: Some(mailbox.into()),
            host: Some(host.into()),
        }
    }

    const PLAIN: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

    #[test]
    fn plain_message_envelope_and_structure() {
        let meta = parse(PLAIN);
        let env = &meta.envelope;
        assert_eq!(
            env.date.as_deref(),
            Some("Mon, 7 Feb 1994 21:52:25 -0800 (PST)")
        );
        assert_eq!(env.subject.as_deref(), Some("afternoon meeting"));
        let fred = addr(Some("Fred Foobar"), "foobar", "Blurdybloop.example");
        assert_eq!(env.from, vec![fred.clone()]);
        assert_eq!(env.sender, vec![fred.clone()], "sender defaults to from");
        assert_eq!(env.reply_to, vec![fred], "reply-to defaults to from");
        assert_eq!(
            env.to,
            vec![addr(None, "mooch", "owatagu.siam.edu.example")]
        );
        assert!(env.cc.is_empty() && env.bcc.is_empty());
        assert_eq!(env.in_reply_to, None);
        assert_eq!(
            env.message_id.as_deref(),
            Some("<B27397-0100000@Blurdybloop.example>")
        );
        assert_eq!(meta.sent_at_unix_s, Some(760_686_745));
        assert_eq!(meta.size_octets, PLAIN.len() as u64);

        let body = &meta.body;
        assert_eq!(
            (body.media_type.as_str(), body.media_subtype.as_str()),
            ("text", "plain")
        );
        assert_eq!(body.params.len(), 1);
        assert!(body.params[0].0.eq_ignore_ascii_case("charset"));
        assert_eq!(body.encoding, "7BIT");
        assert_eq!(body.size_octets, 55);
        assert_eq!(body.content, PartContent::Text { lines: 1 });
        assert_eq!(body.offsets.header_start, 0);
        assert_eq!(
            body_of(PLAIN, body),
            "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
        );
        assert!(slice(PLAIN, 0, body.offsets.body_start).ends_with("US-ASCII\r\n\r\n"));
    }

    /// A message whose line feeds were counted as it arrived is described exactly as
    /// one parsed from scratch, and the count is what a one-part message's lines come
    /// from.
    #[test]
    fn counted_newlines_give_the_same_description() {
        let no_final_newline = b"Subject: x\r\n\r\none\r\ntwo";
        let header_only = b"Subject: x\r\n";
        for raw in [
            PLAIN,
            ALTERNATIVE,
            FORWARD,
            &no_final_newline[..],
            &header_only[..],
            b"",
        ] {
            let newlines = raw.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(parse_counted(raw, newlines), parse(raw));
        }
        let counted = parse_counted(no_final_newline, 3 + 5);
        assert_eq!(
            parse(no_final_newline).body.content,
            PartContent::Text { lines: 2 }
        );
        assert_eq!(counted.body.content, PartContent::Text { lines: 2 + 5 });
    }

    const ALTERNATIVE: &[u8] = b"From: a@example.test\r\n\
To: b@example.test, \"Doe, Jane\" <jane@example.test>\r\n\
Cc: Team: c@example.test, d@example.test;\r\n\
Subject: report\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9\r\n\
two\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Caf\xc3\xa9</p>\r\n\
--inner--\r\n\
\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
Content-ID: <part3@example.test>\r\n\
Content-Description: The report\r\n\
Content-Language: en, de\r\n\
Content-Location: http://example.test/r.pdf\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--outer--\r\n\
epilogue\r\n";

    #[test]
    fn multipart_alternative_with_attachment() {
        let meta = parse(ALTERNATIVE);
        let env = &meta.envelope;
        assert_eq!(
            env.to,
            vec![
                addr(None, "b", "example.test"),
                addr(Some("Doe, Jane"), "jane", "example.test")
            ]
        );
        let group_start = Address {
            mailbox: Some("Team".into()),
            ..Address::default()
        };
        assert_eq!(
            env.cc,
            vec![
                group_start,
                addr(None, "c", "example.test"),
                addr(None, "d", "example.test"),
                Address::default()
            ]
        );

        let root = &meta.body;
        assert_eq!(root.media_type, "multipart");
        assert_eq!(root.media_subtype, "mixed");
        let PartContent::Multipart { parts, boundary } = &root.content else {
            panic!("root is multipart: {root:?}");
        };
        assert_eq!(boundary, "outer");
        assert_eq!(parts.len(), 2);

        let alternative = &parts[0];
        assert_eq!(alternative.media_subtype, "alternative");
        let PartContent::Multipart {
            parts: alt,
            boundary,
        } = &alternative.content
        else {
            panic!("first part is multipart: {alternative:?}");
        };
        assert_eq!(boundary, "inner");
        assert_eq!(alt.len(), 2);
        assert_eq!(alt[0].encoding, "quoted-printable");
        assert_eq!(body_of(ALTERNATIVE, &alt[0]), "Caf=C3=A9\r\ntwo");
        assert_eq!(alt[0].size_octets, 14);
        assert_eq!(alt[0].content, PartContent::Text { lines: 2 });
        assert_eq!(alt[1].media_subtype, "html");
        assert_eq!(body_of(ALTERNATIVE, &alt[1]), "<p>Caf\u{e9}</p>");
        assert!(
            slice(
                ALTERNATIVE,
                alt[1].offsets.header_start,
                alt[1].offsets.body_start
            )
            .starts_with("Content-Type: text/html")
        );

        let pdf = &parts[1];
        assert_eq!(
            (pdf.media_type.as_str(), pdf.media_subtype.as_str()),
            ("application", "pdf")
        );
        assert_eq!(pdf.params, vec![("name".to_string(), "r.pdf".to_string())]);
        assert_eq!(pdf.content, PartContent::Basic);
        assert_eq!(pdf.encoding, "base64");
        assert_eq!(pdf.id.as_deref(), Some("<part3@example.test>"));
        assert_eq!(pdf.description.as_deref(), Some("The report"));
        assert_eq!(pdf.md5.as_deref(), Some("Q2hlY2sgSW50ZWdyaXR5IQ=="));
        assert_eq!(pdf.location.as_deref(), Some("http://example.test/r.pdf"));
        assert_eq!(pdf.language, vec!["en".to_string(), "de".to_string()]);
        assert_eq!(
            pdf.disposition,
            Some(Disposition {
                kind: "attachment".into(),
                params: vec![("filename".into(), "r.pdf".into())],
            })
        );
        assert_eq!(body_of(ALTERNATIVE, pdf), "JVBERi0xLjQK");
        assert_eq!(pdf.size_octets, 12);

        let decoded = MessageMeta::decode(&meta.encode()).expect("round trip");
        assert_eq!(decoded, meta);
    }

    const FORWARD: &[u8] = b"From: outer@example.test\r\n\
Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
see below\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: inner@example.test\r\n\
Subject: original\r\n\
Message-ID: <orig@example.test>\r\n\
\r\n\
inner body\r\n\
line two\r\n\
--b1--\r\n";

    #[test]
    fn embedded_message_rfc822() {
        let meta = parse(FORWARD);
        let PartContent::Multipart { parts, .. } = &meta.body.content else {
            panic!("root is multipart: {:?}", meta.body);
        };
        let forwarded = &parts[1];
        assert_eq!(forwarded.media_type, "message");
        assert_eq!(forwarded.media_subtype, "rfc822");
        let PartContent::Message {
            envelope,
            body,
            lines,
        } = &forwarded.content
        else {
            panic!("second part is a message: {forwarded:?}");
        };
        assert_eq!(envelope.subject.as_deref(), Some("original"));
        assert_eq!(envelope.from, vec![addr(None, "inner", "example.test")]);
        assert_eq!(envelope.message_id.as_deref(), Some("<orig@example.test>"));
        assert_eq!(*lines, 6);
        assert!(body_of(FORWARD, forwarded).starts_with("From: inner@example.test\r\n"));
        assert!(body_of(FORWARD, forwarded).ends_with("line two"));
        assert_eq!(body.media_type, "text");
        assert_eq!(body_of(FORWARD, body), "inner body\r\nline two");
        assert_eq!(meta.envelope.subject.as_deref(), Some("fwd"));
    }

    #[test]
    fn header_text_stays_raw() {
        let raw = "From: =?utf-8?q?Andr=C3=A9?= <andre@example.test>\r\n\
To: J\u{fc}rgen <j\u{fc}rgen@b\u{fc}cher.example>\r\n\
Subject: =?utf-8?q?caf=C3=A9?=\r\n\
\x20\u{e9}t\u{e9} folded\r\n\
\r\n\
body\r\n";
        let meta = parse(raw.as_bytes());
        let env = &meta.envelope;
        assert_eq!(
            env.subject.as_deref(),
            Some("=?utf-8?q?caf=C3=A9?= \u{e9}t\u{e9} folded")
        );
        assert_eq!(
            env.from,
            vec![addr(
                Some("=?utf-8?q?Andr=C3=A9?="),
                "andre",
                "example.test"
            )]
        );
        assert_eq!(
            env.to,
            vec![addr(
                Some("J\u{fc}rgen"),
                "j\u{fc}rgen",
                "b\u{fc}cher.example"
            )]
        );
    }

    /// mail-parser 0.11's debug assertion fires on this nesting (a digest part holding
    /// an empty message/rfc822 part); in every build the message gets a description.
    #[test]
    fn a_message_mail_parser_asserts_on_is_still_described() {
        let raw = b"Subject: digest\r\nContent-Type: multipart/digest; boundary=b\r\n\r\n\
                    --b\r\n\r\nContent-Type: message/rfc822\r\n\r\n\r\n--b--\r\n";
        let meta = parse(raw);
        assert_eq!(meta.size_octets, raw.len() as u64);
        assert_eq!(meta.envelope.subject.as_deref(), Some("digest"));
    }

    #[test]
    fn malformed_input_still_gets_meta() {
        for raw in [
            &b""[..],
            b"no header here at all",
            b"\r\n\r\njust a body",
            b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"From: <<<@@@>>>\r\nTo: ,,,;;;\"\r\nContent-Type: ;;;\r\n\r\n\xff\xfe",
        ] {
            let meta = parse(raw);
            assert!(meta.body.offsets.end <= raw.len() as u64, "{raw:?}");
            assert_eq!(
                MessageMeta::decode(&meta.encode()).expect("round trip"),
                meta
            );
        }
        let meta = parse(b"no header here at all");
        assert_eq!(meta.envelope, Envelope::default());
        assert_eq!(meta.body.media_type, "text");

        let meta = parse(b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n");
        assert_eq!(
            (
                meta.body.media_type.as_str(),
                meta.body.media_subtype.as_str()
            ),
            ("text", "plain")
        );
        assert_eq!(
            body_of(
                b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
                &meta.body
            ),
            "no boundary\r\n"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = String::from("Subject: deep\r\n");
        for level in 0..200 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\nleaf\r\n");
        let meta = parse(raw.as_bytes());
        let mut depth = 0;
        let mut node = &meta.body;
        while let PartContent::Multipart { parts, .. } = &node.content {
            node = &parts[0];
            depth += 1;
        }
        assert!(depth <= MAX_DEPTH, "depth {depth}");
        assert_eq!(
            MessageMeta::decode(&meta.encode()).expect("round trip"),
            meta
        );
    }

    #[test]
    fn deeply_embedded_messages_fall_back_to_header_only() {
        let nest = |levels: usize, encoding: &str| {
            format!("From: top@example.test\r\nSubject: nest\r\n{encoding}")
                + &"Content-Type: message/rfc822\r\n\r\n".repeat(levels)
                + "Subject: x\r\n\r\nhi\r\n"
        };
        let shallow = parse(nest(3, "").as_bytes());
        assert!(matches!(shallow.body.content, PartContent::Message { .. }));
        // Deep enough to overflow a thread's stack inside mail-parser if it were parsed.
        let deep = nest(100_000, "");
        let meta = parse(deep.as_bytes());
        assert_eq!(meta.envelope.subject.as_deref(), Some("nest"));
        assert_eq!(meta.envelope.from, vec![addr(None, "top", "example.test")]);
        assert_eq!(meta.body.media_type, "text");
        assert!(body_of(deep.as_bytes(), &meta.body).starts_with("Content-Type: message/rfc822"));
        // Encoded embedded messages hide their depth: never parsed.
        let encoded = nest(1, "Content-Transfer-Encoding: base64\r\n");
        assert_eq!(embedded_markers(encoded.as_bytes()), usize::MAX);
        assert_eq!(embedded_markers(ALTERNATIVE), 0);
        assert_eq!(embedded_markers(FORWARD), 1);
    }

    #[test]
    fn only_leaf_messages_take_the_header_only_path() {
        let plain = b"From: a@b\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n";
        let pdf = b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n";
        for raw in [&plain[..], &pdf[..]] {
            let fast = single_part(raw, None).expect("a leaf message takes the fast path");
            assert_eq!(fast, parse_whole(raw));
            assert_eq!(parse(raw), fast);
        }
        assert_eq!(
            single_part(plain, None).map(|m| m.body.content),
            Some(PartContent::Text { lines: 2 })
        );
        assert!(single_part(ALTERNATIVE, None).is_none());
        assert!(single_part(FORWARD, None).is_none());
        assert!(single_part(b"Subject: no body\r\n", None).is_none());
    }

    proptest::proptest! {
        #[test]
        fn a_single_part_is_described_from_its_header_as_from_the_whole(
            headers in proptest::collection::vec(
                proptest::sample::select(vec![
                    "Content-Type: text/plain; charset=iso-8859-1\r\n",
                    "Content-Type: text/html; charset=\"utf-8\"\r\n",
                    "Content-Type: application/pdf; name=\"a b.pdf\"\r\n",
                    "Content-Type: image/png\r\n",
                    "Content-Type: TEXT/Plain\r\n",
                    "Content-Transfer-Encoding: base64\r\n",
                    "Content-Transfer-Encoding: quoted-printable\r\n",
                    "Content-Disposition: attachment; filename=x.txt\r\n",
                    "Content-Language: en, fr\r\n",
                    "Content-ID: <id@x>\r\n",
                    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n",
                    "From: \"a\" <a@b>, =?x?q?y?= <c@d>\r\n",
                    "To: undisclosed-recipients:;\r\n",
                    "Subject: =?utf-8?b?w6k=?=\r\n",
                    " folded\r\n",
                    "Message-ID: <m@x>\r\n",
                ]),
                0..12,
            ),
            body in proptest::collection::vec(
                proptest::sample::select(vec![
                    "text\r\n", "=C3=A9=\r\n", "aGVsbG8=\r\n", "\r\n", "--b\r\n", ".\r\n",
                    "\u{e9}\r\n", "no newline",
                ]),
                1..20,
            ),
        ) {
            let raw = format!("{}\r\n{}", headers.concat(), body.concat()).into_bytes();
            proptest::prop_assume!(!String::from_utf8_lossy(&raw).to_ascii_lowercase().contains("multipart"));
            let fast = single_part(&raw, None);
            let whole = parse_whole(&raw);
            let newlines = raw.iter().filter(|&&b| b == b'\n').count() as u64;
            proptest::prop_assert_eq!(&single_part(&raw, Some(newlines)), &fast);
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(fast, whole);
            }
        }

        #[test]
        fn any_bytes_give_consistent_meta(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "Content-Type: multipart/mixed; boundary=b\r\n",
                    "Content-Type: message/rfc822\r\n",
                    "Content-Type: multipart/digest; boundary=b\r\n",
                    "Content-Transfer-Encoding: base64\r\n",
                    "From: \"a\" <a@b>, =?x?q?y?= <c@d>\r\n",
                    "Subject: =?utf-8?b?w6k=?=\r\n",
                    " folded\r\n",
                    "\r\n",
                    "\n",
                    "--b\r\n",
                    "--b--\r\n",
                    "text\r\n",
                    "\u{e9}\u{0}\r",
                ]),
                0..40,
            ),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut raw = pieces.concat().into_bytes();
            raw.extend_from_slice(&noise);
            let meta = parse(&raw);
            let mut nodes = vec![&meta.body];
            while let Some(node) = nodes.pop() {
                let o = node.offsets;
                proptest::prop_assert!(o.header_start <= o.body_start);
                proptest::prop_assert!(o.body_start <= o.end && o.end <= raw.len() as u64);
                proptest::prop_assert_eq!(node.size_octets, o.end - o.body_start);
                match &node.content {
                    PartContent::Multipart { parts, .. } => nodes.extend(parts.iter()),
                    PartContent::Message { body, .. } => nodes.push(body),
                    _ => {}
                }
            }
            proptest::prop_assert_eq!(MessageMeta::decode(&meta.encode()).expect("round trip"), meta);
        }
    }

    #[test]
    fn decode_rejects_bad_bytes() {
        assert!(matches!(MessageMeta::decode(&[]), Err(MetaError::Empty)));
        assert!(matches!(
            MessageMeta::decode(&[99, 0]),
            Err(MetaError::Version(99))
        ));
        let mut bytes = parse(PLAIN).encode();
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(
            MessageMeta::decode(&bytes),
            Err(MetaError::Corrupt(_))
        ));
    }
}
