//! FETCH rendering tests: each renders items for a real message and asserts on the exact
//! bytes imap-codec encodes for the untagged FETCH response.

use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::{CommandCodec, ResponseCodec};

use super::*;
use crate::store::BodyLocation;

/// RFC 9051's example message.
pub(crate) const PLAIN: &[u8] = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n\
From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
Subject: afternoon meeting\r\n\
To: mooch@owatagu.siam.edu.example\r\n\
Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
\r\n\
Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";

/// multipart/mixed: multipart/alternative (quoted-printable text, HTML) and a base64 PDF.
pub(crate) const ALTERNATIVE: &[u8] = b"From: a@example.test\r\n\
To: b@example.test, \"Doe, Jane\" <jane@example.test>\r\n\
Cc: Team: c@example.test, d@example.test;\r\n\
Subject: report\r\n\
Date: Tue, 2 Jan 2024 23:30:00 -0500\r\n\
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
Caf=C3=A9 au lait, =\r\n\
please\r\n\
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

/// multipart/mixed: text, then a message/rfc822 that is itself multipart/alternative.
pub(crate) const FORWARD: &[u8] = b"From: outer@example.test\r\n\
Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\
\r\n\
preamble\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
see below\r\n\
--b1\r\n\
Content-Type: message/rfc822\r\n\
Content-Description: forwarded\r\n\
\r\n\
From: inner@example.test\r\n\
Subject: original\r\n\
\x20folded\r\n\
Message-ID: <orig@example.test>\r\n\
Content-Type: multipart/alternative; boundary=b2\r\n\
\r\n\
--b2\r\n\
Content-Type: text/plain\r\n\
\r\n\
inner body\r\n\
--b2\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>x</b>\r\n\
--b2--\r\n\
--b1--\r\n\
epilogue\r\n";

/// Non-ASCII header text: encoded words and raw UTF-8; a base64 UTF-8 text body.
pub(crate) const INTERNATIONAL: &[u8] = "From: =?utf-8?q?Andr=C3=A9?= <andre@example.test>\r\n\
To: J\u{fc}rgen <juergen@example.test>\r\n\
Subject: =?iso-8859-1?q?Gr=FC=DFe?= aus =?utf-8?b?S8O2bG4=?=\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
w5xiZXJ3ZWlzdW5nIGVyaGFsdGVu\r\n"
    .as_bytes();

pub(crate) fn stored(raw: &[u8]) -> store::Message {
    store::Message {
        uid: 7,
        modseq: 42,
        flags: vec!["$Junk".into(), "\\Seen".into()],
        internal_date: 760_686_745,
        size_bytes: raw.len() as u64,
        meta: crate::message::parse(raw).encode().into(),
        location: BodyLocation {
            offset: 0,
            len_bytes: raw.len() as u64,
            crc32c: crc32c::crc32c(raw),
        },
    }
}

/// The item names of `FETCH 1 (<spec>)` as imap-codec decodes them.
fn names(spec: &str) -> Vec<MessageDataItemName<'static>> {
    let line = format!("a FETCH 1 {spec}\r\n");
    let (_, command) = CommandCodec::new()
        .decode_static(line.as_bytes())
        .unwrap_or_else(|e| panic!("{spec:?} does not decode: {e:?}"));
    match command.body {
        CommandBody::Fetch {
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
            ..
        } => names,
        CommandBody::Fetch {
            macro_or_item_names: MacroOrMessageDataItemNames::Macro(m),
            ..
        } => m.expand().into_iter().map(|n| n.to_static()).collect(),
        other => panic!("not a FETCH: {other:?}"),
    }
}

/// The encoded `* 3 FETCH (...)` response.
fn encode(items: Vec<MessageDataItem<'static>>) -> Vec<u8> {
    let seq = NonZeroU32::new(3).expect("3 is not zero");
    let response = Response::Data(Data::Fetch {
        seq,
        items: Vec1::try_from(items).expect("at least one item"),
    });
    ResponseCodec::new().encode(&response).dump()
}

/// Renders `spec` for `raw` and returns the encoded response as text (lossy).
fn fetch(raw: &[u8], spec: &str) -> String {
    String::from_utf8_lossy(&fetch_bytes(raw, spec)).into_owned()
}

fn fetch_bytes(raw: &[u8], spec: &str) -> Vec<u8> {
    let names = names(spec);
    let seq = NonZeroU32::new(3).expect("3 is not zero");
    let items =
        render(&names, seq, &stored(raw), Some(raw)).unwrap_or_else(|e| panic!("{spec}: {e}"));
    encode(items)
}

fn lit(data: &str) -> String {
    format!("{{{}}}\r\n{data}", data.len())
}

#[test]
fn fast_items_from_the_index() {
    assert_eq!(
        fetch(PLAIN, "(FLAGS INTERNALDATE RFC822.SIZE UID MODSEQ)"),
        format!(
            "* 3 FETCH (FLAGS ($Junk \\Seen) INTERNALDATE \"08-Feb-1994 05:52:25 +0000\" \
             RFC822.SIZE {} UID 7 MODSEQ (42))\r\n",
            PLAIN.len()
        )
    );
    let msg = stored(PLAIN);
    let none = render(
        &names("(FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE MODSEQ)"),
        NonZeroU32::MIN,
        &msg,
        None,
    );
    assert!(none.is_ok(), "index-only items need no body: {none:?}");
}

#[test]
fn flags_item_adds_recent_and_skips_invalid() {
    let stored = vec![
        "\\Answered".to_string(),
        "\\Recent".into(),
        "bad flag".into(),
        "Work".into(),
    ];
    assert_eq!(
        String::from_utf8_lossy(&encode(vec![flags(&stored, true)])),
        "* 3 FETCH (FLAGS (\\Answered Work \\Recent))\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&encode(vec![flags(&[], false)])),
        "* 3 FETCH (FLAGS ())\r\n"
    );
}

#[test]
fn envelope_of_a_plain_message() {
    let fred = "(\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")";
    assert_eq!(
        fetch(PLAIN, "(ENVELOPE)"),
        format!(
            "* 3 FETCH (ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \
             \"afternoon meeting\" ({fred}) ({fred}) ({fred}) \
             ((NIL NIL \"mooch\" \"owatagu.siam.edu.example\")) NIL NIL NIL \
             \"<B27397-0100000@Blurdybloop.example>\"))\r\n"
        )
    );
}

#[test]
fn envelope_with_groups_and_quoted_names() {
    let a = "(NIL NIL \"a\" \"example.test\")";
    assert_eq!(
        fetch(ALTERNATIVE, "(ENVELOPE)"),
        format!(
            "* 3 FETCH (ENVELOPE (\"Tue, 2 Jan 2024 23:30:00 -0500\" \"report\" ({a}) ({a}) ({a}) \
             ((NIL NIL \"b\" \"example.test\")(\"Doe, Jane\" NIL \"jane\" \"example.test\")) \
             ((NIL NIL \"Team\" NIL)(NIL NIL \"c\" \"example.test\")\
             (NIL NIL \"d\" \"example.test\")(NIL NIL NIL NIL)) NIL NIL NIL))\r\n"
        )
    );
}

#[test]
fn envelope_with_non_ascii_headers() {
    let andre = "(\"=?utf-8?q?Andr=C3=A9?=\" NIL \"andre\" \"example.test\")";
    let juergen = "J\u{fc}rgen";
    assert_eq!(
        fetch(INTERNATIONAL, "(ENVELOPE)"),
        format!(
            "* 3 FETCH (ENVELOPE (NIL \"=?iso-8859-1?q?Gr=FC=DFe?= aus =?utf-8?b?S8O2bG4=?=\" \
             ({andre}) ({andre}) ({andre}) (({} NIL \"juergen\" \"example.test\")) \
             NIL NIL NIL NIL))\r\n",
            lit(juergen)
        )
    );
}

#[test]
fn bodystructure_and_body_of_a_plain_message() {
    assert_eq!(
        fetch(PLAIN, "(BODYSTRUCTURE BODY)"),
        "* 3 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \
         \"7BIT\" 55 1 NIL NIL NIL NIL) \
         BODY (\"TEXT\" \"PLAIN\" (\"charset\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1))\r\n"
    );
}

#[test]
fn bodystructure_of_alternative_with_attachment() {
    let plain = "(\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 28 2 \
                 NIL NIL NIL NIL)";
    let html = "(\"TEXT\" \"HTML\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)";
    let pdf = "(\"APPLICATION\" \"PDF\" (\"name\" \"r.pdf\") \"<part3@example.test>\" \
               \"The report\" \"base64\" 12 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" \
               (\"attachment\" (\"filename\" \"r.pdf\")) (\"en\" \"de\") \
               \"http://example.test/r.pdf\")";
    assert_eq!(
        fetch(ALTERNATIVE, "(BODYSTRUCTURE)"),
        format!(
            "* 3 FETCH (BODYSTRUCTURE (({plain}{html} \"ALTERNATIVE\" (\"boundary\" \"inner\") \
             NIL NIL NIL){pdf} \"MIXED\" (\"boundary\" \"outer\") NIL NIL NIL))\r\n"
        )
    );
    assert_eq!(
        fetch(ALTERNATIVE, "(BODY)"),
        "* 3 FETCH (BODY (((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \
         \"quoted-printable\" 28 2)(\"TEXT\" \"HTML\" (\"charset\" \"utf-8\") NIL NIL \"7BIT\" \
         12 1) \"ALTERNATIVE\")(\"APPLICATION\" \"PDF\" (\"name\" \"r.pdf\") \
         \"<part3@example.test>\" \"The report\" \"base64\" 12) \"MIXED\"))\r\n"
    );
}

#[test]
fn bodystructure_of_an_embedded_message() {
    let inner = "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL)\
                 (\"TEXT\" \"HTML\" NIL NIL NIL \"7BIT\" 8 1 NIL NIL NIL NIL) \
                 \"ALTERNATIVE\" (\"boundary\" \"b2\") NIL NIL NIL)";
    let envelope = "(NIL \"original folded\" ((NIL NIL \"inner\" \"example.test\")) \
                    ((NIL NIL \"inner\" \"example.test\")) ((NIL NIL \"inner\" \"example.test\")) \
                    NIL NIL NIL NIL \"<orig@example.test>\")";
    assert_eq!(
        fetch(FORWARD, "(BODYSTRUCTURE)"),
        format!(
            "* 3 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL)\
             (\"MESSAGE\" \"RFC822\" NIL NIL \"forwarded\" \"7BIT\" 234 {envelope} {inner} 15 \
             NIL NIL NIL NIL) \"MIXED\" (\"boundary\" \"b1\") NIL NIL NIL))\r\n"
        )
    );
}

#[test]
fn structures_parse_back_with_imap_codec() {
    for raw in [PLAIN, ALTERNATIVE, FORWARD, INTERNATIONAL] {
        let bytes = fetch_bytes(raw, "(ENVELOPE BODYSTRUCTURE BODY BODY[] UID)");
        let (rest, decoded) = ResponseCodec::new()
            .decode(&bytes)
            .unwrap_or_else(|e| panic!("does not parse back: {e:?}"));
        assert!(rest.is_empty());
        let Response::Data(Data::Fetch { items, .. }) = decoded else {
            panic!("not a FETCH: {decoded:?}");
        };
        let items = items.into_inner();
        let ours = render(
            &names("(ENVELOPE BODYSTRUCTURE BODY BODY[] UID)"),
            NonZeroU32::MIN,
            &stored(raw),
            Some(raw),
        )
        .expect("renders");
        assert_eq!(items.len(), ours.len());
        assert_eq!(items[0], ours[0], "envelope");
        assert_eq!(items[1], ours[1], "bodystructure");
        assert_eq!(items[3], ours[3], "body[]");
    }
}

#[test]
fn whole_message_header_and_text() {
    let (header, text) = PLAIN.split_at(PLAIN.len() - 55);
    let (header, text) = (
        std::str::from_utf8(header).expect("ascii"),
        std::str::from_utf8(text).expect("ascii"),
    );
    let whole = std::str::from_utf8(PLAIN).expect("ascii");
    assert_eq!(
        fetch(PLAIN, "(BODY.PEEK[] BODY[HEADER] BODY[TEXT])"),
        format!(
            "* 3 FETCH (BODY[] {} BODY[HEADER] {} BODY[TEXT] {})\r\n",
            lit(whole),
            lit(header),
            lit(text)
        )
    );
    assert_eq!(
        fetch(PLAIN, "(RFC822.HEADER RFC822.TEXT RFC822)"),
        format!(
            "* 3 FETCH (RFC822.HEADER {} RFC822.TEXT {} RFC822 {})\r\n",
            lit(header),
            lit(text),
            lit(whole)
        )
    );
    // Part 1 of a non-multipart message is its body; its MIME header is the header.
    assert_eq!(
        fetch(PLAIN, "(BODY[1] BODY[1.MIME])"),
        format!(
            "* 3 FETCH (BODY[1] {} BODY[1.MIME] {})\r\n",
            lit("Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"),
            lit(header)
        )
    );
}

#[test]
fn numbered_parts_and_mime_headers() {
    assert_eq!(
        fetch(
            ALTERNATIVE,
            "(BODY[1.1] BODY[1.2] BODY[2] BODY[1.1.MIME] BODY[2.MIME])"
        ),
        format!(
            "* 3 FETCH (BODY[1.1] {} BODY[1.2] {} BODY[2] {} BODY[1.1.MIME] {} BODY[2.MIME] {})\r\n",
            lit("Caf=C3=A9 au lait, =\r\nplease"),
            lit("<p>Caf\u{e9}</p>"),
            lit("JVBERi0xLjQK"),
            lit("Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
            lit("Content-Type: application/pdf; name=\"r.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\
                 Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
                 Content-ID: <part3@example.test>\r\n\
                 Content-Description: The report\r\n\
                 Content-Language: en, de\r\n\
                 Content-Location: http://example.test/r.pdf\r\n\
                 Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\n"),
        )
    );
    assert_eq!(
        fetch(ALTERNATIVE, "(BODY[1])"),
        format!(
            "* 3 FETCH (BODY[1] {})\r\n",
            lit("--inner\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\
                 \r\n\
                 Caf=C3=A9 au lait, =\r\n\
                 please\r\n\
                 --inner\r\n\
                 Content-Type: text/html; charset=utf-8\r\n\
                 \r\n\
                 <p>Caf\u{e9}</p>\r\n\
                 --inner--\r\n")
        )
    );
}

#[test]
fn sections_of_an_embedded_message() {
    let inner_header = "From: inner@example.test\r\n\
                        Subject: original\r\n\
                        \x20folded\r\n\
                        Message-ID: <orig@example.test>\r\n\
                        Content-Type: multipart/alternative; boundary=b2\r\n\r\n";
    let inner_text = "--b2\r\nContent-Type: text/plain\r\n\r\ninner body\r\n\
                      --b2\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--b2--";
    assert_eq!(
        fetch(
            FORWARD,
            "(BODY[2.HEADER] BODY[2.TEXT] BODY[2.1] BODY[2.2] BODY[2.2.MIME] BODY[2.MIME])"
        ),
        format!(
            "* 3 FETCH (BODY[2.HEADER] {} BODY[2.TEXT] {} BODY[2.1] {} BODY[2.2] {} \
             BODY[2.2.MIME] {} BODY[2.MIME] {})\r\n",
            lit(inner_header),
            lit(inner_text),
            lit("inner body"),
            lit("<b>x</b>"),
            lit("Content-Type: text/html\r\n\r\n"),
            lit("Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"),
        )
    );
    assert_eq!(
        fetch(FORWARD, "(BODY[2])"),
        format!(
            "* 3 FETCH (BODY[2] {})\r\n",
            lit(&format!("{inner_header}{inner_text}"))
        )
    );
    assert_eq!(
        fetch(FORWARD, "(BODY[2.HEADER.FIELDS (SUBJECT)])"),
        format!(
            "* 3 FETCH (BODY[2.HEADER.FIELDS (SUBJECT)] {})\r\n",
            lit("Subject: original\r\n folded\r\n\r\n")
        )
    );
}

#[test]
fn sections_the_message_lacks_are_nil() {
    assert_eq!(
        fetch(
            FORWARD,
            "(BODY[3] BODY[1.1] BODY[1.HEADER] BODY[1.TEXT] BODY[2.3] BODY[2.1.1] BODY[9.MIME])"
        ),
        "* 3 FETCH (BODY[3] NIL BODY[1.1] NIL BODY[1.HEADER] NIL BODY[1.TEXT] NIL \
         BODY[2.3] NIL BODY[2.1.1] NIL BODY[9.MIME] NIL)\r\n"
    );
    assert_eq!(
        fetch(PLAIN, "(BODY[2] BINARY[2] BINARY.SIZE[2])"),
        "* 3 FETCH (BODY[2] NIL BINARY[2] NIL BINARY.SIZE[2] 0)\r\n"
    );
}

#[test]
fn header_fields_and_fields_not() {
    assert_eq!(
        fetch(
            ALTERNATIVE,
            "(BODY.PEEK[HEADER.FIELDS (subject FROM x-absent)])"
        ),
        format!(
            "* 3 FETCH (BODY[HEADER.FIELDS (subject FROM x-absent)] {})\r\n",
            lit("From: a@example.test\r\nSubject: report\r\n\r\n")
        )
    );
    assert_eq!(
        fetch(
            ALTERNATIVE,
            "(BODY[HEADER.FIELDS.NOT (To Cc Date MIME-Version Content-Type)])"
        ),
        format!(
            "* 3 FETCH (BODY[HEADER.FIELDS.NOT (To Cc Date MIME-Version Content-Type)] {})\r\n",
            lit("From: a@example.test\r\nSubject: report\r\n\r\n")
        )
    );
    assert_eq!(
        fetch(ALTERNATIVE, "(BODY[HEADER.FIELDS (X-None)])"),
        format!(
            "* 3 FETCH (BODY[HEADER.FIELDS (X-None)] {})\r\n",
            lit("\r\n")
        )
    );
    // A message without body and without blank line gets no blank line.
    let bare = b"Subject: only\r\nFrom: x@example.test\r\n";
    assert_eq!(
        fetch(bare, "(BODY[HEADER.FIELDS (Subject)] BODY[TEXT])"),
        format!(
            "* 3 FETCH (BODY[HEADER.FIELDS (Subject)] {} BODY[TEXT] {})\r\n",
            lit("Subject: only\r\n"),
            lit("")
        )
    );
}

#[test]
fn partial_fetches_report_their_origin() {
    assert_eq!(
        fetch(
            PLAIN,
            "(BODY.PEEK[]<0.4> BODY[TEXT]<6.3> BODY[1]<50.100> BODY[]<9999.5>)"
        ),
        format!(
            "* 3 FETCH (BODY[]<0> {} BODY[TEXT]<6> {} BODY[1]<50> {} BODY[]<9999> {})\r\n",
            lit("Date"),
            lit("Joe"),
            lit("ow?\r\n"),
            lit("")
        )
    );
    assert_eq!(
        fetch(PLAIN, "(BODY[5]<0.10>)"),
        "* 3 FETCH (BODY[5]<0> NIL)\r\n"
    );
}

#[test]
fn binary_decodes_transfer_encodings() {
    assert_eq!(
        fetch(
            ALTERNATIVE,
            "(BINARY.PEEK[2] BINARY[1.1] BINARY.SIZE[1.1] BINARY.SIZE[2] BINARY[1.2])"
        ),
        format!(
            "* 3 FETCH (BINARY[2] {} BINARY[1.1] {} BINARY.SIZE[1.1] 21 BINARY.SIZE[2] 9 \
             BINARY[1.2] {})\r\n",
            lit("%PDF-1.4\n"),
            lit("Caf\u{e9} au lait, please"),
            lit("<p>Caf\u{e9}</p>"),
        )
    );
    // Partial BINARY counts in decoded octets and reports no origin.
    assert_eq!(
        fetch(ALTERNATIVE, "(BINARY.PEEK[2]<1.3>)"),
        format!("* 3 FETCH (BINARY[2] {})\r\n", lit("PDF"))
    );
    assert_eq!(
        fetch(INTERNATIONAL, "(BINARY[1] BINARY.SIZE[1])"),
        format!(
            "* 3 FETCH (BINARY[1] {} BINARY.SIZE[1] 21)\r\n",
            lit("\u{dc}berweisung erhalten")
        )
    );
    let whole = std::str::from_utf8(PLAIN).expect("ascii");
    assert_eq!(
        fetch(PLAIN, "(BINARY[])"),
        format!("* 3 FETCH (BINARY[] {})\r\n", lit(whole))
    );
}

#[test]
fn binary_with_nul_is_a_literal8_and_body_replaces_nul() {
    let raw = b"Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAEC\r\n";
    assert_eq!(
        fetch_bytes(raw, "(BINARY[1])"),
        b"* 3 FETCH (BINARY[1] ~{3}\r\n\x00\x01\x02)\r\n"
    );
    let raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\na\x00b";
    assert_eq!(
        fetch_bytes(raw, "(BODY[TEXT] BINARY[1])"),
        b"* 3 FETCH (BODY[TEXT] {3}\r\na\x80b BINARY[1] ~{3}\r\na\x00b)\r\n"
    );
}

#[test]
fn binary_refuses_unknown_and_broken_encodings() {
    let raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
    let err = render(
        &names("(BINARY[1])"),
        NonZeroU32::MIN,
        &stored(raw),
        Some(raw),
    );
    assert!(
        matches!(&err, Err(FetchError::UnknownCte(cte)) if cte == "x-uuencode"),
        "{err:?}"
    );
    // BODY of the same part is fine: it is sent as stored.
    assert_eq!(
        fetch(raw, "(BODY[1])"),
        format!("* 3 FETCH (BODY[1] {})\r\n", lit("begin\r\n"))
    );
    let raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n*** not base64 ***\r\n";
    let err = render(
        &names("(BINARY.SIZE[1])"),
        NonZeroU32::MIN,
        &stored(raw),
        Some(raw),
    );
    assert!(matches!(err, Err(FetchError::Undecodable(_))), "{err:?}");
}

#[test]
fn missing_body_and_corrupt_meta_are_errors() {
    let msg = stored(PLAIN);
    for spec in [
        "(BODY[])",
        "(RFC822)",
        "(BINARY.SIZE[1])",
        "(RFC822.HEADER)",
    ] {
        let out = render(&names(spec), NonZeroU32::MIN, &msg, None);
        assert!(
            matches!(out, Err(FetchError::BodyMissing)),
            "{spec}: {out:?}"
        );
    }
    let mut broken = stored(PLAIN);
    broken.meta = vec![1, 0xff].into();
    let out = render(&names("(ENVELOPE)"), NonZeroU32::MIN, &broken, Some(PLAIN));
    assert!(matches!(out, Err(FetchError::Meta(_))), "{out:?}");
    // Items that do not need the metadata still render.
    assert!(render(&names("(FLAGS UID)"), NonZeroU32::MIN, &broken, None).is_ok());
}

#[test]
fn macros_expand_to_their_items() {
    let fred = "(\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")";
    assert_eq!(
        fetch(PLAIN, "FAST"),
        format!(
            "* 3 FETCH (FLAGS ($Junk \\Seen) INTERNALDATE \"08-Feb-1994 05:52:25 +0000\" \
             RFC822.SIZE {})\r\n",
            PLAIN.len()
        )
    );
    assert!(fetch(PLAIN, "ALL").contains(fred));
    assert!(fetch(PLAIN, "FULL").ends_with("\"7BIT\" 55 1))\r\n"));
}

#[test]
fn seen_and_body_needs() {
    assert!(sets_seen(&names("(BODY[TEXT])")));
    assert!(sets_seen(&names("(FLAGS BINARY[1])")));
    assert!(sets_seen(&names("(RFC822)")));
    assert!(sets_seen(&names("(RFC822.TEXT)")));
    assert!(!sets_seen(&names(
        "(BODY.PEEK[TEXT] BINARY.PEEK[1] BINARY.SIZE[1])"
    )));
    assert!(!sets_seen(&names(
        "(RFC822.HEADER RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY)"
    )));

    assert!(!needs_body(&names(
        "(FLAGS UID INTERNALDATE RFC822.SIZE MODSEQ)"
    )));
    assert!(!needs_body(&names("(ENVELOPE BODY BODYSTRUCTURE)")));
    for spec in [
        "(BODY.PEEK[HEADER])",
        "(RFC822)",
        "(RFC822.HEADER)",
        "(RFC822.TEXT)",
        "(BINARY.PEEK[1])",
        "(BINARY.SIZE[1])",
    ] {
        assert!(needs_body(&names(spec)), "{spec}");
    }
}

#[test]
fn header_field_split_keeps_folding_and_odd_lines() {
    let header = b"A: 1\r\n  more\r\nnot a field\r\nB:2\r\n\r\n";
    let split = fields(header);
    let as_text: Vec<(Option<&str>, &str)> = split
        .iter()
        .map(|f| {
            (
                f.name.map(|n| std::str::from_utf8(n).expect("ascii")),
                std::str::from_utf8(f.bytes).expect("ascii"),
            )
        })
        .collect();
    assert_eq!(
        as_text,
        vec![
            (Some("A"), "A: 1\r\n  more\r\n"),
            (None, "not a field\r\n"),
            (Some("B"), "B:2\r\n"),
        ]
    );
    assert_eq!(
        select_fields(header, &[b"b"], false),
        b"A: 1\r\n  more\r\nnot a field\r\n\r\n"
    );
}

#[test]
fn internal_date_range() {
    assert!(internal_date(0).is_ok());
    assert!(internal_date(i64::MAX).is_err());
    assert!(internal_date(-100_000_000_000).is_err(), "year before 0");
}

#[test]
fn message_global_is_described_as_a_basic_part() {
    let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: message/global\r\n\
\r\n\
Subject: \xc3\xa9\r\n\
\r\n\
hi\r\n\
--b--\r\n";
    assert_eq!(
        fetch(raw, "(BODY)"),
        "* 3 FETCH (BODY ((\"MESSAGE\" \"GLOBAL\" NIL NIL NIL \"7BIT\" 17) \"MIXED\"))\r\n"
    );
    assert_eq!(
        fetch(raw, "(BODY[1.HEADER])"),
        format!(
            "* 3 FETCH (BODY[1.HEADER] {})\r\n",
            lit("Subject: \u{e9}\r\n\r\n")
        )
    );
}

proptest::proptest! {
    #[test]
    fn any_message_renders_and_parses_back(
        pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "Content-Type: multipart/mixed; boundary=b\r\n",
                "Content-Type: message/rfc822\r\n",
                "Content-Type: text/plain; charset=\"x\\\"y\"\r\n",
                "Content-Transfer-Encoding: base64\r\n",
                "Content-Transfer-Encoding: quoted-printable\r\n",
                "Content-Disposition: attachment; filename*=utf-8''%C3%A9\r\n",
                "From: \"a\" <a@b>, =?x?q?y?= <c@d>, g: h@i;\r\n",
                "Subject: =?utf-8?b?w6k=?= \u{e9}\r\n",
                " folded\r\n",
                "\r\n",
                "\n",
                "--b\r\n",
                "--b--\r\n",
                "text=C3\r\n",
                "\u{e9}\u{0}\r",
            ]),
            0..40,
        ),
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
    ) {
        let mut raw = pieces.concat().into_bytes();
        raw.extend_from_slice(&noise);
        let spec = "(FLAGS ENVELOPE BODYSTRUCTURE BODY BODY[] BODY[1] BODY[1.1.MIME] \
                    BODY[2.HEADER] BODY[1.TEXT] BODY[HEADER.FIELDS.NOT (Subject)]<2.40> UID)";
        let items = render(&names(spec), NonZeroU32::MIN, &stored(&raw), Some(&raw));
        let items = match items {
            Ok(items) => items,
            Err(error) => return Err(proptest::test_runner::TestCaseError::fail(format!("{error}"))),
        };
        let bytes = encode(items);
        let parsed = ResponseCodec::new().decode(&bytes);
        proptest::prop_assert!(
            matches!(parsed, Ok((rest, _)) if rest.is_empty()),
            "{:?} does not parse back: {parsed:?}",
            String::from_utf8_lossy(&bytes)
        );
        for section in ["1", "1.1", "2", "2.1"] {
            let spec = format!("(BINARY[{section}] BINARY.SIZE[{section}])");
            match render(&names(&spec), NonZeroU32::MIN, &stored(&raw), Some(&raw)) {
                Ok(items) => {
                    let bytes = encode(items);
                    proptest::prop_assert!(ResponseCodec::new().decode(&bytes).is_ok());
                }
                Err(FetchError::UnknownCte(_) | FetchError::Undecodable(_)) => {}
                Err(error) => return Err(proptest::test_runner::TestCaseError::fail(format!("{error}"))),
            }
        }
    }
}
