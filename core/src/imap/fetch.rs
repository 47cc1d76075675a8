//! FETCH rendering (RFC 9051 §6.4.5 and §7.5.2, RFC 3516 BINARY, RFC 7162 MODSEQ): turns
//! the data items a client asked for into response items, from a message's index entry
//! and, where an item needs it, the message's raw bytes.
//!
//! ENVELOPE and BODYSTRUCTURE come from the stored [`MessageMeta`]; section data
//! (`BODY[...]`, `BINARY[...]`, `RFC822.*`) is sliced from the raw bytes with the part
//! offsets in that metadata, so nothing is parsed again. Choices made here:
//! - A section that names a part the message does not have, or HEADER/TEXT of a part
//!   that is not an embedded message, is answered with NIL.
//! - Section data goes out as a literal; NUL octets, which a literal may not carry, are
//!   sent as 0x80. BINARY data that contains NUL goes out as a literal8 instead.
//! - A partial BINARY answer carries no `<origin>`: the response grammar has none
//!   (RFC 9051 §9, `msg-att-static`).
//! - message/global parts are described as basic parts: the encoder only writes the
//!   message/rfc822 form.
//! - FLAGS lists the stored flags; `\Recent` belongs to the session (see [`flags`]).

use std::borrow::Cow;
use std::num::{NonZeroU32, NonZeroU64};

use imap_codec::imap_types::ToStatic;
use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{IString, Literal, LiteralMode, NString, NString8, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::{MessageDataItem, MessageDataItemName, Section};
use imap_codec::imap_types::flag::{Flag, FlagFetch};
use mail_parser::decoders::base64::base64_decode;
use mail_parser::parsers::MessageStream;

use crate::message::{self, MessageMeta, MetaError, PartContent};
use crate::store;

/// Why a FETCH item could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The stored metadata does not decode.
    #[error("message metadata: {0}")]
    Meta(#[from] MetaError),
    /// An item needs the message's bytes and none were given (see [`needs_body`]).
    #[error("the message body is needed to render this FETCH and was not read")]
    BodyMissing,
    /// BINARY asked for a part whose Content-Transfer-Encoding is not known
    /// (answer `NO [UNKNOWN-CTE]`).
    #[error("unknown Content-Transfer-Encoding {0:?}")]
    UnknownCte(String),
    /// BINARY asked for a part whose content does not decode in its own encoding.
    #[error("the part's content is not valid {0}")]
    Undecodable(String),
    /// The index entry holds a value IMAP cannot express.
    #[error("index entry cannot be rendered: {0}")]
    Index(String),
}

/// Whether any of `items` needs the message's raw bytes.
pub fn needs_body(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|item| {
        matches!(
            item,
            MessageDataItemName::BodyExt { .. }
                | MessageDataItemName::Binary { .. }
                | MessageDataItemName::BinarySize { .. }
                | MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Header
                | MessageDataItemName::Rfc822Text
        )
    })
}

/// The byte range `[from, to)` of the raw message that `items` need, when every item
/// that needs the body is `BODY[]<origin.octets>` (or its PEEK): such a FETCH reads
/// only that range from disk. None when any item needs more, or none needs the body.
pub fn body_window(items: &[MessageDataItemName<'_>]) -> Option<(u64, u64)> {
    let mut window: Option<(u64, u64)> = None;
    for item in items
        .iter()
        .filter(|i| needs_body(std::slice::from_ref(*i)))
    {
        let MessageDataItemName::BodyExt {
            section: None,
            partial: Some((origin, octets)),
            ..
        } = item
        else {
            return None;
        };
        let (from, to) = (
            u64::from(*origin),
            u64::from(*origin) + u64::from(octets.get()),
        );
        window = Some(match window {
            Some((f, t)) => (f.min(from), t.max(to)),
            None => (from, to),
        });
    }
    window
}

/// Renders `items` for one message given only `bytes`, the raw message's bytes from
/// offset `from` on, as [`body_window`] chose them.
pub fn render_window(
    items: &[MessageDataItemName<'_>],
    msg: &store::Message,
    from: u64,
    bytes: &[u8],
) -> Result<Vec<MessageDataItem<'static>>, FetchError> {
    let mut meta: Option<MessageMeta> = None;
    items
        .iter()
        .map(|item| match item {
            MessageDataItemName::BodyExt {
                section: None,
                partial: Some((origin, octets)),
                ..
            } => {
                let start = (u64::from(*origin).saturating_sub(from) as usize).min(bytes.len());
                let end = start.saturating_add(octets.get() as usize).min(bytes.len());
                Ok(MessageDataItem::BodyExt {
                    section: None,
                    origin: Some(*origin),
                    data: literal(&bytes[start..end])?,
                })
            }
            _ => render_item(item, msg, None, &mut meta),
        })
        .collect()
}

/// Whether fetching `items` sets `\Seen` (BODY[...] and BINARY[...] without .PEEK,
/// RFC822 and RFC822.TEXT).
pub fn sets_seen(items: &[MessageDataItemName<'_>]) -> bool {
    items.iter().any(|item| {
        matches!(
            item,
            MessageDataItemName::BodyExt { peek: false, .. }
                | MessageDataItemName::Binary { peek: false, .. }
                | MessageDataItemName::Rfc822
                | MessageDataItemName::Rfc822Text
        )
    })
}

/// Renders `items` for one message, in the order asked. `body` is the whole raw
/// message and must be given when [`needs_body`] says so. The sequence number is the
/// caller's, for its `Data::Fetch`; the items do not repeat it.
pub fn render(
    items: &[MessageDataItemName<'_>],
    _seq: NonZeroU32,
    msg: &store::Message,
    body: Option<&[u8]>,
) -> Result<Vec<MessageDataItem<'static>>, FetchError> {
    let mut meta: Option<MessageMeta> = None;
    items
        .iter()
        .map(|item| render_item(item, msg, body, &mut meta))
        .collect()
}

/// Renders one item; `meta` caches the decoded metadata across the items of a message.
fn render_item(
    item: &MessageDataItemName<'_>,
    msg: &store::Message,
    body: Option<&[u8]>,
    meta: &mut Option<MessageMeta>,
) -> Result<MessageDataItem<'static>, FetchError> {
    let raw = || body.ok_or(FetchError::BodyMissing);
    Ok(match item {
        MessageDataItemName::Flags => flags(&msg.flags, false),
        MessageDataItemName::InternalDate => {
            MessageDataItem::InternalDate(internal_date(msg.internal_date)?)
        }
        MessageDataItemName::Rfc822Size => MessageDataItem::Rfc822Size(clamp_u32(msg.size_bytes)),
        MessageDataItemName::Uid => MessageDataItem::Uid(
            NonZeroU32::new(msg.uid).ok_or_else(|| FetchError::Index("UID 0".into()))?,
        ),
        MessageDataItemName::ModSeq => MessageDataItem::ModSeq(
            NonZeroU64::new(msg.modseq).ok_or_else(|| FetchError::Index("MODSEQ 0".into()))?,
        ),
        MessageDataItemName::Envelope => {
            MessageDataItem::Envelope(envelope(&decoded(meta, msg)?.envelope))
        }
        MessageDataItemName::Body => {
            MessageDataItem::Body(structure(&decoded(meta, msg)?.body, false))
        }
        MessageDataItemName::BodyStructure => {
            MessageDataItem::BodyStructure(structure(&decoded(meta, msg)?.body, true))
        }
        MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(literal(raw()?)?),
        MessageDataItemName::Rfc822Header => {
            let raw = raw()?;
            let data = section_bytes(raw, &decoded(meta, msg)?.body, &Section::Header(None));
            MessageDataItem::Rfc822Header(literal(&data.unwrap_or_default())?)
        }
        MessageDataItemName::Rfc822Text => {
            let raw = raw()?;
            let data = section_bytes(raw, &decoded(meta, msg)?.body, &Section::Text(None));
            MessageDataItem::Rfc822Text(literal(&data.unwrap_or_default())?)
        }
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            let raw = raw()?;
            let data = match section {
                None => Some(Cow::Borrowed(raw)),
                Some(section) => section_bytes(raw, &decoded(meta, msg)?.body, section),
            };
            let (data, origin) = match data {
                Some(data) => {
                    let (window, origin) = apply_partial(&data, *partial);
                    (literal(window)?, origin)
                }
                None => (NString(None), partial.map(|(origin, _)| origin)),
            };
            MessageDataItem::BodyExt {
                section: section.as_ref().map(ToStatic::to_static),
                origin,
                data,
            }
        }
        MessageDataItemName::Binary {
            section, partial, ..
        } => {
            let raw = raw()?;
            let value = match binary_bytes(raw, &decoded(meta, msg)?.body, section)? {
                Some(data) => literal8(apply_partial(&data, *partial).0)?,
                None => NString8::NString(NString(None)),
            };
            MessageDataItem::Binary {
                section: section.clone(),
                value,
            }
        }
        MessageDataItemName::BinarySize { section } => {
            let raw = raw()?;
            let size = binary_bytes(raw, &decoded(meta, msg)?.body, section)?
                .map_or(0, |data| clamp_u32(data.len() as u64));
            MessageDataItem::BinarySize {
                section: section.clone(),
                size,
            }
        }
    })
}

/// The FLAGS item for a message's stored flags, with `\Recent` added when `recent`.
/// Stored flags that are not valid IMAP atoms are left out.
pub fn flags(stored: &[String], recent: bool) -> MessageDataItem<'static> {
    let mut out: Vec<FlagFetch<'static>> = stored
        .iter()
        .filter(|flag| !flag.eq_ignore_ascii_case("\\Recent"))
        .filter_map(|flag| Flag::try_from(flag.as_str()).ok())
        .map(|flag| FlagFetch::Flag(flag.to_static()))
        .collect();
    if recent {
        out.push(FlagFetch::Recent);
    }
    MessageDataItem::Flags(out)
}

/// The INTERNALDATE of a message stored as unix seconds, in UTC.
pub fn internal_date(unix_s: i64) -> Result<DateTime, FetchError> {
    let utc = chrono::DateTime::from_timestamp(unix_s, 0)
        .ok_or_else(|| FetchError::Index(format!("internal date {unix_s} out of range")))?;
    DateTime::try_from(utc.fixed_offset())
        .map_err(|error| FetchError::Index(format!("internal date {unix_s}: {error}")))
}

/// The stored metadata, decoded once per message.
fn decoded<'m>(
    meta: &'m mut Option<MessageMeta>,
    msg: &store::Message,
) -> Result<&'m MessageMeta, FetchError> {
    if meta.is_none() {
        *meta = Some(MessageMeta::decode(&msg.meta)?);
    }
    meta.as_ref()
        .ok_or_else(|| FetchError::Index("metadata vanished".into()))
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// A string for a response: quoted when it can be, else a literal; NULs are dropped.
fn istring(text: &str) -> IString<'static> {
    let clean: String = text.chars().filter(|&c| c != '\0').collect();
    match IString::try_from(clean) {
        Ok(value) => value,
        // Without NUL every string is a valid literal; keep the response well-formed anyway.
        Err(_) => IString::Literal(Literal::unvalidated(Vec::new())),
    }
}

fn nstring(text: Option<&str>) -> NString<'static> {
    NString(text.map(istring))
}

/// Section data as a literal; NUL octets become 0x80.
fn literal(data: &[u8]) -> Result<NString<'static>, FetchError> {
    let bytes: Vec<u8> = data
        .iter()
        .map(|&b| if b == 0 { 0x80 } else { b })
        .collect();
    let literal = Literal::try_from(bytes)
        .map_err(|error| FetchError::Index(format!("section data: {error}")))?;
    Ok(NString(Some(IString::Literal(literal))))
}

/// Decoded BINARY data: a literal, or a literal8 when it contains NUL.
fn literal8(data: &[u8]) -> Result<NString8<'static>, FetchError> {
    if data.contains(&0) {
        return Ok(NString8::Literal8(Literal8 {
            data: Cow::Owned(data.to_vec()),
            mode: LiteralMode::Sync,
        }));
    }
    Ok(NString8::NString(literal(data)?))
}

/// The `<origin.octets>` window of `data`, and the origin to report.
fn apply_partial(data: &[u8], partial: Option<(u32, NonZeroU32)>) -> (&[u8], Option<u32>) {
    let Some((origin, octets)) = partial else {
        return (data, None);
    };
    let start = (origin as usize).min(data.len());
    let end = start.saturating_add(octets.get() as usize).min(data.len());
    (&data[start..end], Some(origin))
}

/// `raw[from..to]`, clamped to the bytes there are.
fn slice(raw: &[u8], from: u64, to: u64) -> &[u8] {
    let to = usize::try_from(to).unwrap_or(usize::MAX).min(raw.len());
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(to);
    &raw[from..to]
}

/// The part a list of part numbers names (RFC 9051 §6.4.5): numbers index the parts of
/// a multipart; part 1 of a non-multipart is its body; after a message/rfc822 part the
/// numbers continue in the embedded message's body.
pub(crate) fn find_part<'m>(
    root: &'m message::BodyStructure,
    numbers: &[NonZeroU32],
) -> Option<&'m message::BodyStructure> {
    let mut container = root;
    let mut found = None;
    for (i, number) in numbers.iter().enumerate() {
        let index = number.get() as usize - 1;
        let child = match &container.content {
            PartContent::Multipart { parts, .. } => parts.get(index)?,
            _ if index == 0 => container,
            _ => return None,
        };
        if i + 1 < numbers.len() {
            container = match &child.content {
                PartContent::Multipart { .. } => child,
                PartContent::Message { body, .. } => body,
                _ => return None,
            };
        }
        found = Some(child);
    }
    found
}

/// Where a message's header and text lie: the whole message (`part` None) or the
/// message embedded in a message/rfc822 part.
fn message_bounds(
    raw: &[u8],
    root: &message::BodyStructure,
    part: Option<&message::BodyStructure>,
) -> Option<(u64, u64, u64)> {
    match part {
        None => Some((0, root.offsets.body_start, raw.len() as u64)),
        Some(part) => match &part.content {
            PartContent::Message { body, .. } => Some((
                part.offsets.body_start,
                body.offsets.body_start.max(part.offsets.body_start),
                part.offsets.end,
            )),
            _ => None,
        },
    }
}

/// The bytes a BODY section names, or None when the message has no such section.
pub(crate) fn section_bytes<'r>(
    raw: &'r [u8],
    root: &message::BodyStructure,
    section: &Section<'_>,
) -> Option<Cow<'r, [u8]>> {
    let part_of = |part: &Option<imap_codec::imap_types::fetch::Part>| match part {
        None => Some(None),
        Some(numbers) => find_part(root, numbers.0.as_ref()).map(Some),
    };
    match section {
        Section::Part(numbers) => {
            let part = find_part(root, numbers.0.as_ref())?;
            Some(Cow::Borrowed(slice(
                raw,
                part.offsets.body_start,
                part.offsets.end,
            )))
        }
        Section::Mime(numbers) => {
            let part = find_part(root, numbers.0.as_ref())?;
            Some(Cow::Borrowed(slice(
                raw,
                part.offsets.header_start,
                part.offsets.body_start,
            )))
        }
        Section::Header(part) => {
            let (start, body_start, _) = message_bounds(raw, root, part_of(part)?)?;
            Some(Cow::Borrowed(slice(raw, start, body_start)))
        }
        Section::Text(part) => {
            let (_, body_start, end) = message_bounds(raw, root, part_of(part)?)?;
            Some(Cow::Borrowed(slice(raw, body_start, end)))
        }
        Section::HeaderFields(part, names) | Section::HeaderFieldsNot(part, names) => {
            let (start, body_start, _) = message_bounds(raw, root, part_of(part)?)?;
            let header = slice(raw, start, body_start);
            let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
            let keep = matches!(section, Section::HeaderFields(..));
            Some(Cow::Owned(select_fields(header, &names, keep)))
        }
    }
}

/// One header field: its name (None for a line that is not a field) and its bytes,
/// folded lines and line end included.
pub(crate) struct Field<'h> {
    /// The field name before the colon, trimmed.
    pub(crate) name: Option<&'h [u8]>,
    /// The whole field as it appears in the header.
    pub(crate) bytes: &'h [u8],
}

/// Splits a header block into its fields; the blank line that ends it is not a field.
pub(crate) fn fields(header: &[u8]) -> Vec<Field<'_>> {
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut start = 0;
    let mut field_start: Option<usize> = None;
    while start < header.len() {
        let end = header[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |p| start + p + 1);
        let line = &header[start..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        let blank = line == b"\r\n" || line == b"\n";
        if !continuation || blank {
            if let Some(from) = field_start.take() {
                out.push(field(&header[from..start]));
            }
            if blank {
                return out;
            }
            field_start = Some(start);
        }
        start = end;
    }
    if let Some(from) = field_start {
        out.push(field(&header[from..]));
    }
    out
}

fn field(bytes: &[u8]) -> Field<'_> {
    let name = bytes
        .iter()
        .position(|&b| b == b':')
        .map(|colon| bytes[..colon].trim_ascii())
        .filter(|name| !name.is_empty() && !name.contains(&b'\n'));
    Field { name, bytes }
}

/// Whether a header block ends with the blank line that separates it from a body.
fn has_blank_line(header: &[u8]) -> bool {
    header == b"\r\n" || header == b"\n" || header.ends_with(b"\n\r\n") || header.ends_with(b"\n\n")
}

/// HEADER.FIELDS (`keep`) or HEADER.FIELDS.NOT of a header block: the fields whose name
/// is (or is not) in `names`, compared without case, then the blank line if there is one.
fn select_fields(header: &[u8], names: &[&[u8]], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields(header) {
        let listed = field
            .name
            .is_some_and(|name| names.iter().any(|n| n.eq_ignore_ascii_case(name)));
        if listed == keep {
            out.extend_from_slice(field.bytes);
        }
    }
    if has_blank_line(header) {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The decoded bytes a BINARY section names (the whole message, unchanged, for an
/// empty section), or None when the message has no such part.
fn binary_bytes<'r>(
    raw: &'r [u8],
    root: &message::BodyStructure,
    section: &[NonZeroU32],
) -> Result<Option<Cow<'r, [u8]>>, FetchError> {
    if section.is_empty() {
        return Ok(Some(Cow::Borrowed(raw)));
    }
    let Some(part) = find_part(root, section) else {
        return Ok(None);
    };
    let content = slice(raw, part.offsets.body_start, part.offsets.end);
    decode_transfer(content, &part.encoding).map(Some)
}

/// Removes a Content-Transfer-Encoding (RFC 2045 §6).
pub(crate) fn decode_transfer<'c>(
    content: &'c [u8],
    encoding: &str,
) -> Result<Cow<'c, [u8]>, FetchError> {
    let encoding = encoding.trim();
    if ["7bit", "8bit", "binary"]
        .iter()
        .any(|identity| encoding.eq_ignore_ascii_case(identity))
    {
        return Ok(Cow::Borrowed(content));
    }
    if encoding.eq_ignore_ascii_case("base64") {
        return base64_decode(content)
            .map(Cow::Owned)
            .ok_or_else(|| FetchError::Undecodable("base64".into()));
    }
    if encoding.eq_ignore_ascii_case("quoted-printable") {
        let (end, decoded) = MessageStream::new(content).decode_quoted_printable_mime(b"");
        if end == usize::MAX {
            return Err(FetchError::Undecodable("quoted-printable".into()));
        }
        return Ok(Cow::Owned(decoded.into_owned()));
    }
    Err(FetchError::UnknownCte(encoding.to_string()))
}

/// The ENVELOPE structure of stored envelope data.
pub fn envelope(env: &message::Envelope) -> Envelope<'static> {
    let list = |addresses: &[message::Address]| addresses.iter().map(address).collect();
    Envelope {
        date: nstring(env.date.as_deref()),
        subject: nstring(env.subject.as_deref()),
        from: list(&env.from),
        sender: list(&env.sender),
        reply_to: list(&env.reply_to),
        to: list(&env.to),
        cc: list(&env.cc),
        bcc: list(&env.bcc),
        in_reply_to: nstring(env.in_reply_to.as_deref()),
        message_id: nstring(env.message_id.as_deref()),
    }
}

fn address(addr: &message::Address) -> Address<'static> {
    Address {
        name: nstring(addr.name.as_deref()),
        adl: nstring(addr.adl.as_deref()),
        mailbox: nstring(addr.mailbox.as_deref()),
        host: nstring(addr.host.as_deref()),
    }
}

fn params(list: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(name, value)| (istring(name), istring(value)))
        .collect()
}

/// The BODY (`extended` false) or BODYSTRUCTURE (`extended` true) of a stored structure.
pub fn structure(node: &message::BodyStructure, extended: bool) -> BodyStructure<'static> {
    if let PartContent::Multipart { parts, .. } = &node.content {
        let bodies: Vec<BodyStructure<'static>> =
            parts.iter().map(|part| structure(part, extended)).collect();
        if let Ok(bodies) = Vec1::try_from(bodies) {
            return BodyStructure::Multi {
                bodies,
                subtype: istring(&node.media_subtype.to_ascii_uppercase()),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: params(&node.params),
                    tail: Some(disposition(node)),
                }),
            };
        }
    }
    let basic = BasicFields {
        parameter_list: params(&node.params),
        id: nstring(node.id.as_deref()),
        description: nstring(node.description.as_deref()),
        content_transfer_encoding: istring(&node.encoding),
        size: clamp_u32(node.size_octets),
    };
    let specific = match &node.content {
        PartContent::Text { lines } => SpecificFields::Text {
            subtype: istring(&node.media_subtype.to_ascii_uppercase()),
            number_of_lines: clamp_u32(*lines),
        },
        PartContent::Message {
            envelope: env,
            body,
            lines,
        } if node.media_subtype.eq_ignore_ascii_case("rfc822") => SpecificFields::Message {
            envelope: Box::new(envelope(env)),
            body_structure: Box::new(structure(body, extended)),
            number_of_lines: clamp_u32(*lines),
        },
        _ => SpecificFields::Basic {
            r#type: istring(&node.media_type.to_ascii_uppercase()),
            subtype: istring(&node.media_subtype.to_ascii_uppercase()),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(node.md5.as_deref()),
            tail: Some(disposition(node)),
        }),
    }
}

/// Disposition, language and location extension fields of a part.
fn disposition(node: &message::BodyStructure) -> Disposition<'static> {
    Disposition {
        disposition: node
            .disposition
            .as_ref()
            .map(|d| (istring(&d.kind), params(&d.params))),
        tail: Some(Language {
            language: node.language.iter().map(|tag| istring(tag)).collect(),
            tail: Some(Location {
                location: nstring(node.location.as_deref()),
                extensions: Vec::new(),
            }),
        }),
    }
}

#[cfg(test)]
#[path = "fetch_tests.rs"]
pub(crate) mod tests;
