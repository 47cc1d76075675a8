//! SEARCH evaluation tests: keys as imap-codec decodes them from a SEARCH command,
//! evaluated against real messages.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::ToStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::Vec1;

use super::*;
use crate::imap::fetch::tests::{ALTERNATIVE, FORWARD, INTERNATIONAL, PLAIN, stored};

/// Message 3 of 10 in the mailbox, UID 7 of at most 20, not \Recent.
const CTX: SearchContext = SearchContext {
    seq: 3,
    max_seq: 10,
    max_uid: 20,
    recent: false,
    saved: false,
};

/// Whether `msg` matches `key`, given the whole raw message `body` (or none).
fn matches(
    key: &SearchKey<'_>,
    ctx: &SearchContext,
    msg: &store::Message,
    body: Option<&[u8]>,
) -> bool {
    matches_all(std::slice::from_ref(key), ctx, msg, body, None)
}

/// The key of `SEARCH <spec>` as imap-codec decodes it (an and-list for several).
fn key(spec: &str) -> SearchKey<'static> {
    let line = format!("a SEARCH {spec}\r\n");
    let (_, command) = CommandCodec::new()
        .decode_static(line.as_bytes())
        .unwrap_or_else(|e| panic!("{spec:?} does not decode: {e:?}"));
    let CommandBody::Search { criteria, .. } = command.body else {
        panic!("not a SEARCH: {spec}");
    };
    let mut criteria = criteria.into_inner();
    if criteria.len() == 1 {
        return criteria.remove(0);
    }
    SearchKey::And(Vec1::try_from(criteria).expect("non-empty"))
}

fn hit_with(raw: &[u8], spec: &str, ctx: &SearchContext) -> bool {
    matches(&key(spec), ctx, &stored(raw), Some(raw))
}

fn hit(raw: &[u8], spec: &str) -> bool {
    hit_with(raw, spec, &CTX)
}

fn astring(text: &str) -> AString<'static> {
    AString::try_from(text.to_string()).expect("valid astring")
}

/// Evaluates a string key built directly (for non-ASCII search strings).
fn hit_key(raw: &[u8], key: SearchKey<'_>) -> bool {
    matches(&key.to_static(), &CTX, &stored(raw), Some(raw))
}

/// Asserts each spec matches (`true`) or not (`false`).
fn check(raw: &[u8], cases: &[(&str, bool)]) {
    for (spec, expected) in cases {
        assert_eq!(hit(raw, spec), *expected, "SEARCH {spec}");
    }
}

#[test]
fn flag_keys() {
    // The stored message carries $Junk and \Seen.
    check(
        PLAIN,
        &[
            ("ALL", true),
            ("SEEN", true),
            ("UNSEEN", false),
            ("ANSWERED", false),
            ("UNANSWERED", true),
            ("DELETED", false),
            ("UNDELETED", true),
            ("DRAFT", false),
            ("UNDRAFT", true),
            ("FLAGGED", false),
            ("UNFLAGGED", true),
            ("KEYWORD $Junk", true),
            ("KEYWORD $junk", true),
            ("UNKEYWORD $Junk", false),
            ("KEYWORD Work", false),
            ("UNKEYWORD Work", true),
        ],
    );
    let mut msg = stored(PLAIN);
    msg.flags = vec![
        "\\Answered".into(),
        "\\Deleted".into(),
        "\\Draft".into(),
        "\\Flagged".into(),
    ];
    for (spec, expected) in [
        ("ANSWERED DELETED DRAFT FLAGGED UNSEEN", true),
        ("UNANSWERED", false),
        ("UNDELETED", false),
        ("UNDRAFT", false),
        ("UNFLAGGED", false),
        ("SEEN", false),
    ] {
        assert_eq!(
            matches(&key(spec), &CTX, &msg, None),
            expected,
            "SEARCH {spec}"
        );
    }
}

#[test]
fn recent_new_and_old() {
    let recent = SearchContext {
        recent: true,
        ..CTX
    };
    assert!(hit_with(PLAIN, "RECENT", &recent));
    assert!(!hit_with(PLAIN, "OLD", &recent));
    assert!(!hit_with(PLAIN, "NEW", &recent), "NEW is RECENT UNSEEN");
    assert!(!hit(PLAIN, "RECENT"));
    assert!(hit(PLAIN, "OLD"));
    let mut unseen = stored(PLAIN);
    unseen.flags.clear();
    assert!(matches(&key("NEW"), &recent, &unseen, None));
    assert!(!matches(&key("NEW"), &CTX, &unseen, None));
}

#[test]
fn sequence_and_uid_sets() {
    check(
        PLAIN,
        &[
            ("3", true),
            ("1:2", false),
            ("2:4", true),
            ("4:2", true),
            ("1,3,5", true),
            ("5:*", false),
            ("*", false),
            ("*:2", true),
            ("UID 7", true),
            ("UID 1:6,8", false),
            ("UID 7:*", true),
            ("UID *", false),
            ("UID 30:*", false),
        ],
    );
    // `*` is the largest number in use; a range past it still reaches it.
    let last = SearchContext {
        seq: 3,
        max_seq: 3,
        max_uid: 7,
        recent: false,
        saved: false,
    };
    assert!(hit_with(PLAIN, "*", &last));
    assert!(hit_with(PLAIN, "5:*", &last));
    assert!(hit_with(PLAIN, "UID *", &last));
    assert!(hit_with(PLAIN, "UID 30:*", &last));
    assert!(!hit_with(
        PLAIN,
        "4:*",
        &SearchContext { max_seq: 5, ..last }
    ));
}

#[test]
fn size_keys() {
    let size = PLAIN.len();
    check(
        PLAIN,
        &[
            (&format!("LARGER {}", size - 1), true),
            (&format!("LARGER {size}"), false),
            (&format!("SMALLER {}", size + 1), true),
            (&format!("SMALLER {size}"), false),
        ],
    );
}

#[test]
fn internal_date_keys_use_the_utc_day() {
    // 760686745 is 1994-02-08 05:52:25 UTC.
    check(
        PLAIN,
        &[
            ("BEFORE 8-Feb-1994", false),
            ("BEFORE 9-Feb-1994", true),
            ("ON 8-Feb-1994", true),
            ("ON 7-Feb-1994", false),
            ("SINCE 8-Feb-1994", true),
            ("SINCE 9-Feb-1994", false),
            ("SINCE 1-Jan-1970 BEFORE 1-Jan-2000", true),
        ],
    );
    let mut early = stored(PLAIN);
    early.internal_date = -1; // 1969-12-31 23:59:59 UTC
    assert!(matches(&key("ON 31-Dec-1969"), &CTX, &early, None));
    assert!(matches(&key("BEFORE 1-Jan-1970"), &CTX, &early, None));
}

#[test]
fn sent_date_keys_use_the_written_day() {
    // Date: Mon, 7 Feb 1994 21:52:25 -0800 — 8 Feb in UTC, but 7 Feb as written.
    check(
        PLAIN,
        &[
            ("SENTON 7-Feb-1994", true),
            ("SENTON 8-Feb-1994", false),
            ("SENTBEFORE 8-Feb-1994", true),
            ("SENTBEFORE 7-Feb-1994", false),
            ("SENTSINCE 7-Feb-1994", true),
            ("SENTSINCE 8-Feb-1994", false),
        ],
    );
    // Date: Tue, 2 Jan 2024 23:30:00 -0500.
    check(
        ALTERNATIVE,
        &[("SENTON 2-Jan-2024", true), ("SENTON 3-Jan-2024", false)],
    );
    // Without a Date header the internal date stands in.
    check(
        FORWARD,
        &[
            ("SENTON 8-Feb-1994", true),
            ("SENTBEFORE 8-Feb-1994", false),
        ],
    );
}

#[test]
fn modseq_key() {
    check(
        PLAIN,
        &[
            ("MODSEQ 42", true),
            ("MODSEQ 1", true),
            ("MODSEQ 43", false),
            ("MODSEQ \"/flags/\\\\draft\" all 40", true),
            ("MODSEQ \"/flags/\\\\draft\" priv 50", false),
        ],
    );
}

#[test]
fn address_and_subject_keys_match_the_envelope() {
    check(
        PLAIN,
        &[
            ("FROM fred", true),
            ("FROM FOOBAR@blurdybloop", true),
            ("FROM \"Fred Foobar <foobar\"", true),
            ("FROM mooch", false),
            ("TO mooch@owatagu", true),
            ("TO fred", false),
            ("CC mooch", false),
            ("BCC mooch", false),
            ("SUBJECT \"AFTERNOON meet\"", true),
            ("SUBJECT evening", false),
        ],
    );
    check(
        ALTERNATIVE,
        &[
            ("TO \"doe, jane\"", true),
            ("TO b@example.test", true),
            ("CC team", true),
            ("CC d@example.test", true),
            ("CC jane", false),
        ],
    );
    // Encoded words and raw UTF-8 are matched decoded, without case.
    assert!(hit_key(INTERNATIONAL, SearchKey::From(astring("andré"))));
    assert!(hit_key(
        INTERNATIONAL,
        SearchKey::From(astring("ANDRÉ <andre@"))
    ));
    assert!(!hit_key(INTERNATIONAL, SearchKey::From(astring("Andr=C3"))));
    assert!(hit_key(INTERNATIONAL, SearchKey::To(astring("jürgen"))));
    assert!(hit_key(
        INTERNATIONAL,
        SearchKey::Subject(astring("grüße aus köln"))
    ));
    assert!(hit_key(INTERNATIONAL, SearchKey::Subject(astring("KÖLN"))));
    assert!(!hit_key(
        INTERNATIONAL,
        SearchKey::Subject(astring("iso-8859"))
    ));
}

#[test]
fn header_key_matches_decoded_fields_by_name() {
    check(
        PLAIN,
        &[
            ("HEADER Message-ID \"\"", true),
            ("HEADER message-id b27397", true),
            ("HEADER X-Absent \"\"", false),
            ("HEADER Content-Type us-ascii", true),
            ("HEADER Subject fred", false),
        ],
    );
    check(
        ALTERNATIVE,
        &[
            ("HEADER To \"doe, jane\"", true),
            ("HEADER Cc \"team: c@\"", true),
        ],
    );
    assert!(hit_key(
        INTERNATIONAL,
        SearchKey::Header(astring("subject"), astring("grüße"))
    ));
    // Folded fields are unfolded.
    let folded = b"Subject: a very\r\n long subject\r\n\r\nbody\r\n";
    assert!(hit(folded, "HEADER Subject \"very long\""));
    // HEADER looks at the top-level header only.
    assert!(!hit(FORWARD, "HEADER Subject original"));
}

#[test]
fn body_key_matches_decoded_text_parts() {
    assert!(hit_key(
        INTERNATIONAL,
        SearchKey::Body(astring("überweisung"))
    ));
    assert!(
        !hit(INTERNATIONAL, "BODY w5xiZXJ3"),
        "base64 text is decoded"
    );
    assert!(hit_key(
        ALTERNATIVE,
        SearchKey::Body(astring("café au lait, please"))
    ));
    assert!(
        !hit(ALTERNATIVE, "BODY caf=c3"),
        "quoted-printable is decoded"
    );
    assert!(!hit(ALTERNATIVE, "BODY \"<p>\""), "HTML is reduced to text");
    assert!(
        !hit(ALTERNATIVE, "BODY JVBERi0"),
        "attachments are not text"
    );
    assert!(!hit(ALTERNATIVE, "BODY report"), "the header is not body");
    assert!(hit(FORWARD, "BODY \"see below\""));
    assert!(hit(FORWARD, "BODY \"inner BODY\""));
    assert!(hit(FORWARD, "BODY \"original folded\""), "embedded header");
    let latin1 = b"Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=FC=DFe\r\n";
    assert!(hit_key(latin1, SearchKey::Body(astring("GRÜßE"))));
    assert!(!hit(latin1, "BODY gr=fc"));
}

#[test]
fn text_key_matches_header_or_body() {
    check(
        ALTERNATIVE,
        &[
            ("TEXT report", true),
            ("TEXT \"au lait\"", true),
            ("TEXT subject", true),
            ("TEXT nowhere", false),
            ("TEXT r.pdf", true),
            ("TEXT \"the REPORT\"", true),
            ("BODY r.pdf", false),
        ],
    );
    assert!(hit_key(INTERNATIONAL, SearchKey::Text(astring("grüße"))));
    assert!(hit_key(INTERNATIONAL, SearchKey::Text(astring("erhalten"))));
}

#[test]
fn not_or_and_nesting() {
    check(
        PLAIN,
        &[
            ("NOT SEEN", false),
            ("NOT NOT SEEN", true),
            ("OR SEEN DELETED", true),
            ("OR DELETED SEEN", true),
            ("OR DELETED DRAFT", false),
            ("NOT OR DELETED DRAFT", true),
            ("SEEN NOT DELETED FROM fred", true),
            ("SEEN NOT DELETED FROM joe", false),
            ("(SEEN UID 7) (FROM fred)", true),
            ("OR NOT SEEN (FROM fred SMALLER 10)", false),
            ("OR NOT SEEN (FROM fred LARGER 10)", true),
            (
                "OR (NOT KEYWORD $Junk) UID 7 NOT (OR LARGER 100000 OR DRAFT BODY zzz)",
                true,
            ),
            ("NOT (OR LARGER 100000 OR DRAFT BODY tomorrow)", false),
            ("OR (OR 1 2) (OR UID 9 OR 8 TEXT Joe)", true),
        ],
    );
}

#[test]
fn needs_the_header_for_header_keys_and_the_whole_message_for_text_keys() {
    for spec in [
        "ALL",
        "FROM a TO b CC c BCC d SUBJECT e",
        "SEEN UID 1:* 1:5 LARGER 3 SINCE 1-Jan-2000 SENTON 1-Jan-2000 MODSEQ 5",
        "NOT OR KEYWORD x (NEW OLD RECENT)",
    ] {
        assert_eq!(needs(&key(spec)), Needs::Index, "{spec}");
    }
    for spec in [
        "HEADER X-A b",
        "OR HEADER a b SEEN",
        "NOT (SEEN HEADER a b)",
    ] {
        assert_eq!(needs(&key(spec)), Needs::Header, "{spec}");
    }
    for spec in [
        "BODY x",
        "TEXT x",
        "SEEN NOT (OR DRAFT BODY x)",
        "OR HEADER a b TEXT c",
    ] {
        assert_eq!(needs(&key(spec)), Needs::Whole, "{spec}");
    }
}

#[test]
fn header_keys_match_the_same_on_the_header_alone() {
    let raw: &[u8] =
        b"Subject: =?utf-8?q?caf=C3=A9?= menu\r\nX-Tag: blue\r\n\r\nSubject: not a header\r\n";
    let msg = stored(raw);
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header")
        + 4;
    for (spec, expected) in [
        ("HEADER Subject \"fé menu\"", true),
        ("HEADER Subject header", false),
        ("HEADER X-Tag blue", true),
        ("NOT HEADER X-Tag red", true),
    ] {
        let keys = [key(spec)];
        assert_eq!(
            matches_all(&keys, &CTX, &msg, Some(&raw[..header_end]), None),
            expected,
            "{spec} on the header"
        );
        assert_eq!(
            matches_all(&keys, &CTX, &msg, Some(raw), None),
            expected,
            "{spec} on the whole message"
        );
    }
}

#[test]
fn without_the_body_body_keys_match_nothing() {
    let msg = stored(PLAIN);
    assert!(!matches(&key("BODY Joe"), &CTX, &msg, None));
    assert!(!matches(&key("HEADER Subject \"\""), &CTX, &msg, None));
    assert!(matches(&key("NOT TEXT Joe"), &CTX, &msg, None));
    assert!(matches(&key("BODY Joe"), &CTX, &msg, Some(PLAIN)));
    // Envelope keys do not need it.
    assert!(matches(&key("FROM fred"), &CTX, &msg, None));
}

#[test]
fn corrupt_metadata_matches_no_content_key() {
    let mut msg = stored(PLAIN);
    msg.meta = vec![1, 0xff].into();
    assert!(!matches(&key("FROM fred"), &CTX, &msg, Some(PLAIN)));
    assert!(!matches(&key("BODY Joe"), &CTX, &msg, Some(PLAIN)));
    assert!(matches(&key("SEEN UID 7"), &CTX, &msg, Some(PLAIN)));
    // The sent date falls back to the internal date.
    assert!(matches(&key("SENTON 8-Feb-1994"), &CTX, &msg, None));
}

proptest::proptest! {
    #[test]
    fn any_message_evaluates_without_panic(
        pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "Content-Type: multipart/mixed; boundary=b\r\n",
                "Content-Type: message/rfc822\r\n",
                "Content-Type: text/html; charset=iso-8859-2\r\n",
                "Content-Transfer-Encoding: base64\r\n",
                "Content-Transfer-Encoding: quoted-printable\r\n",
                "Date: 31 Feb 99999 25:61 +9999\r\n",
                "Subject: =?utf-8?b?w6k=?= =?bogus?q?=FF?=\r\n",
                " folded\r\n",
                "\r\n",
                "--b\r\n",
                "--b--\r\n",
                "w6k=\r\n",
                "=C3=\r\n",
                "\u{e9}\u{0}\r",
            ]),
            0..40,
        ),
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
    ) {
        let mut raw = pieces.concat().into_bytes();
        raw.extend_from_slice(&noise);
        let key = key("OR (TEXT w6k SENTSINCE 1-Jan-2000) NOT (HEADER Subject x BODY y FROM z)");
        let first = matches(&key, &CTX, &stored(&raw), Some(&raw));
        // Evaluation is a pure function of its inputs.
        proptest::prop_assert_eq!(first, matches(&key, &CTX, &stored(&raw), Some(&raw)));
    }
}
