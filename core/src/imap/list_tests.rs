//! Transcript tests of mailbox listing: the levels LSUB and RECURSIVEMATCH report above
//! subscribed names, and the OLDNAME extended data item of IMAP4rev2.

use imap_codec::ResponseCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::core::AString;
use imap_codec::imap_types::extensions::list_extended::{
    MboxListExtendedItem, TaggedExtComp, TaggedExtVal,
};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Data, Response};

use super::tests::{Client, World};

/// Sends each command and checks its exact reply.
fn transcript(world: &mut World, session: &mut Client, steps: &[(&str, &str)]) {
    for (command, reply) in steps {
        assert_eq!(session.send(world, command), *reply, "after {command:?}");
    }
}

/// Sends each command and checks that it succeeds.
fn setup(world: &mut World, session: &mut Client, commands: &[&str]) {
    for command in commands {
        let reply = session.send(world, command);
        assert!(reply.contains(" OK "), "{command:?}: {reply}");
    }
}

/// Unsubscribes the mailboxes every account starts subscribed to.
const UNSUBSCRIBE_DEFAULTS: [&str; 6] = [
    "u1 UNSUBSCRIBE INBOX\r\n",
    "u2 UNSUBSCRIBE Drafts\r\n",
    "u3 UNSUBSCRIBE Sent\r\n",
    "u4 UNSUBSCRIBE Trash\r\n",
    "u5 UNSUBSCRIBE Junk\r\n",
    "u6 UNSUBSCRIBE Archive\r\n",
];

/// A logged-in session whose account has none of its default subscriptions, after
/// `commands` (each must succeed).
fn subscribed_only(commands: &[&str]) -> (World, Client) {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    setup(&mut world, &mut c, &UNSUBSCRIBE_DEFAULTS);
    setup(&mut world, &mut c, commands);
    (world, c)
}

#[test]
fn lsub_percent_returns_unsubscribed_levels_as_noselect() {
    let (mut world, mut c) = subscribed_only(&[
        "a1 CREATE foo/bar\r\n",
        "a2 SUBSCRIBE foo/bar\r\n",
        "a3 CREATE a/b/c\r\n",
        "a4 SUBSCRIBE a/b/c\r\n",
        "a5 SUBSCRIBE ghost/x\r\n",
    ]);
    transcript(
        &mut world,
        &mut c,
        &[
            // RFC 3501 §6.3.9: "foo/bar" subscribed, "foo" not: `%` returns "foo" as
            // \Noselect, whether the mailbox exists (foo, a) or not (ghost).
            (
                "b LSUB \"\" %\r\n",
                "* LSUB (\\Noselect \\HasChildren) \"/\" a\r\n\
                 * LSUB (\\Noselect \\HasChildren) \"/\" foo\r\n\
                 * LSUB (\\Noselect \\HasNoChildren) \"/\" ghost\r\n\
                 b OK LSUB completed\r\n",
            ),
            // Each level the wildcard stops at, under a reference too.
            (
                "c LSUB \"\" a/%\r\n",
                "* LSUB (\\Noselect \\HasChildren) \"/\" a/b\r\nc OK LSUB completed\r\n",
            ),
            (
                "c2 LSUB a/ %\r\n",
                "* LSUB (\\Noselect \\HasChildren) \"/\" a/b\r\nc2 OK LSUB completed\r\n",
            ),
            (
                "d LSUB \"\" foo/%\r\n",
                "* LSUB (\\HasNoChildren) \"/\" foo/bar\r\nd OK LSUB completed\r\n",
            ),
            // `*` reaches the subscribed names themselves: no levels.
            (
                "e LSUB \"\" *\r\n",
                "* LSUB (\\HasNoChildren) \"/\" a/b/c\r\n\
                 * LSUB (\\HasNoChildren) \"/\" foo/bar\r\n\
                 * LSUB (\\Noselect \\HasNoChildren) \"/\" ghost/x\r\n\
                 e OK LSUB completed\r\n",
            ),
            // A pattern that reaches nothing subscribed lists nothing.
            ("f LSUB \"\" x%\r\n", "f OK LSUB completed\r\n"),
            // A subscribed level is listed as itself, without \Noselect.
            ("g SUBSCRIBE foo\r\n", "g OK SUBSCRIBE completed\r\n"),
            (
                "h LSUB \"\" f%\r\n",
                "* LSUB (\\HasChildren) \"/\" foo\r\nh OK LSUB completed\r\n",
            ),
            // Plain LIST is not affected.
            (
                "i LIST \"\" f%\r\n",
                "* LIST (\\HasChildren) \"/\" foo\r\ni OK LIST completed\r\n",
            ),
        ],
    );
    // An IMAP4rev2 session's LSUB says \Noselect for a level too.
    c.send(&mut world, "j ENABLE IMAP4rev2\r\n");
    transcript(
        &mut world,
        &mut c,
        &[(
            "k LSUB \"\" g%\r\n",
            "* LSUB (\\Noselect \\HasNoChildren) \"/\" ghost\r\nk OK LSUB completed\r\n",
        )],
    );
}

#[test]
fn list_subscribed_reports_levels_with_childinfo_and_missing_names() {
    let (mut world, mut c) = subscribed_only(&[
        "a1 CREATE foo/bar\r\n",
        "a2 CREATE foo/baz\r\n",
        "a3 SUBSCRIBE foo/bar\r\n",
    ]);
    transcript(
        &mut world,
        &mut c,
        &[
            // RFC 5258 §5 example 9: only "foo/bar" subscribed.
            ("b LIST (SUBSCRIBED) \"\" %\r\n", "b OK LIST completed\r\n"),
            (
                "c LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n",
                "* LIST (\\HasChildren) \"/\" foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
                 c OK LIST completed\r\n",
            ),
            (
                "d LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *\r\n",
                "* LIST (\\Subscribed \\HasNoChildren) \"/\" foo/bar\r\nd OK LIST completed\r\n",
            ),
            // A subscribed parent is \Subscribed and keeps its CHILDINFO.
            ("e SUBSCRIBE foo\r\n", "e OK SUBSCRIBE completed\r\n"),
            (
                "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n",
                "* LIST (\\Subscribed \\HasChildren) \"/\" foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
                 f OK LIST completed\r\n",
            ),
            ("g UNSUBSCRIBE foo\r\n", "g OK UNSUBSCRIBE completed\r\n"),
            // A parent that does not exist is \NonExistent with CHILDINFO.
            ("h DELETE foo\r\n", "h OK DELETE completed\r\n"),
            (
                "i LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n",
                "* LIST (\\NonExistent \\HasChildren) \"/\" foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
                 i OK LIST completed\r\n",
            ),
            // Subscribed names that do not exist are \NonExistent (RFC 5258 §5 example 2).
            ("j SUBSCRIBE foo/peach\r\n", "j OK SUBSCRIBE completed\r\n"),
            ("j2 DELETE foo/bar\r\n", "j2 OK DELETE completed\r\n"),
            (
                "k LIST (SUBSCRIBED) \"\" *\r\n",
                "* LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" foo/bar\r\n\
                 * LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" foo/peach\r\n\
                 k OK LIST completed\r\n",
            ),
            // RETURN (SUBSCRIBED) lists what exists, never a missing subscribed name.
            (
                "l LIST \"\" foo* RETURN (SUBSCRIBED)\r\n",
                "* LIST (\\NonExistent \\HasChildren) \"/\" foo\r\n\
                 * LIST (\\HasNoChildren) \"/\" foo/baz\r\n\
                 l OK LIST completed\r\n",
            ),
        ],
    );
}

/// The OLDNAME item of one encoded LIST response, decoded by the codec: the listed
/// name and the old name.
fn decoded_oldname(line: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let (_, response) = ResponseCodec::default().decode(line.as_bytes()).ok()?;
    let Response::Data(Data::List {
        mailbox,
        extended_items,
        ..
    }) = response
    else {
        return None;
    };
    let name = match mailbox {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(other) => other.as_ref().to_vec(),
    };
    match extended_items.as_slice() {
        [
            MboxListExtendedItem::Other {
                tag,
                value: TaggedExtVal::Comp(Some(TaggedExtComp::Single(old))),
            },
        ] if tag.inner().as_ref() == b"OLDNAME" => Some((name, AString::as_ref(old).to_vec())),
        _ => None,
    }
}

#[test]
fn oldname_reports_names_treehouse_normalized_in_imap4rev2() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    // IMAP4rev1: no unsolicited LIST.
    transcript(
        &mut world,
        &mut c,
        &[
            ("a CREATE inbox/one\r\n", "a OK CREATE completed\r\n"),
            (
                "a2 LIST \"\" INBOX/*\r\n",
                "* LIST (\\HasNoChildren) \"/\" INBOX/one\r\na2 OK LIST completed\r\n",
            ),
            (
                "b ENABLE IMAP4rev2\r\n",
                "* ENABLED IMAP4rev2\r\nb OK ENABLE completed\r\n",
            ),
        ],
    );
    transcript(
        &mut world,
        &mut c,
        &[
            // RFC 9051 §6.3.4: the created name, with the supplied one as OLDNAME.
            (
                "c CREATE Inbox/Sub\r\n",
                "* LIST (\\HasNoChildren) \"/\" INBOX/Sub (\"OLDNAME\" (Inbox/Sub))\r\n\
                 c OK CREATE completed\r\n",
            ),
            // Names treehouse keeps as supplied, and a trailing separator, get none.
            ("d CREATE INBOX/two\r\n", "d OK CREATE completed\r\n"),
            ("d2 CREATE plain/\r\n", "d2 OK CREATE completed\r\n"),
            (
                "d3 CREATE INBOX\r\n",
                "d3 NO [ALREADYEXISTS] Mailbox already exists\r\n",
            ),
            (
                "e CREATE inbox/sub\r\n",
                "* LIST (\\HasNoChildren) \"/\" INBOX/sub (\"OLDNAME\" (inbox/sub))\r\n\
                 e OK CREATE completed\r\n",
            ),
            // A refused command announces nothing.
            (
                "e2 CREATE inBox/Sub\r\n",
                "e2 NO [ALREADYEXISTS] Mailbox already exists\r\n",
            ),
            (
                "e3 DELETE inbox/none\r\n",
                "e3 NO [NONEXISTENT] No such mailbox\r\n",
            ),
            (
                "e4 RENAME inbox/nothing x/y\r\n",
                "e4 NO [NONEXISTENT] No such mailbox\r\n",
            ),
            // RFC 9051 §6.3.6: the new name, with the existing name as supplied.
            (
                "f RENAME inbox/Sub Work\r\n",
                "* LIST (\\HasNoChildren) \"/\" Work (\"OLDNAME\" (inbox/Sub))\r\n\
                 f OK RENAME completed\r\n",
            ),
            (
                "g RENAME Work inbox/Work\r\n",
                "* LIST (\\HasNoChildren) \"/\" INBOX/Work (\"OLDNAME\" (Work))\r\n\
                 g OK RENAME completed\r\n",
            ),
            ("h RENAME plain other\r\n", "h OK RENAME completed\r\n"),
            // Children move along: the new name has them.
            (
                "h2 CREATE INBOX/Work/deep\r\n",
                "h2 OK CREATE completed\r\n",
            ),
            (
                "i RENAME inbox/Work Projects\r\n",
                "* LIST (\\HasChildren) \"/\" Projects (\"OLDNAME\" (inbox/Work))\r\n\
                 i OK RENAME completed\r\n",
            ),
            // RFC 9051 §6.3.5: DELETE says \NonExistent.
            (
                "j DELETE iNbOx/two\r\n",
                "* LIST (\\NonExistent \\HasNoChildren) \"/\" INBOX/two (\"OLDNAME\" (iNbOx/two))\r\n\
                 j OK DELETE completed\r\n",
            ),
            (
                "k LIST \"\" INBOX/*\r\n",
                "* LIST (\\HasNoChildren) \"/\" INBOX/one\r\n\
                 * LIST (\\HasNoChildren) \"/\" INBOX/sub\r\n\
                 k OK LIST completed\r\n",
            ),
            // RENAME INBOX to a normalized name: the new name, OLDNAME INBOX.
            (
                "l RENAME INBOX inbox/old\r\n",
                "* LIST (\\HasNoChildren) \"/\" INBOX/old (\"OLDNAME\" (INBOX))\r\n\
                 l OK RENAME completed\r\n",
            ),
        ],
    );
    // SELECT and EXAMINE MUST send OLDNAME for a name they normalized (RFC 9051
    // §6.3.2); the name as given gets the plain LIST response.
    let reply = c.send(&mut world, "s1 EXAMINE inbox/old\r\n");
    assert!(
        reply.contains("* LIST (\\HasNoChildren) \"/\" INBOX/old (\"OLDNAME\" (inbox/old))\r\n"),
        "{reply}"
    );
    let reply = c.send(&mut world, "s2 SELECT INBOX/old\r\n");
    assert!(
        reply.contains("* LIST (\\HasNoChildren) \"/\" INBOX/old\r\n"),
        "{reply}"
    );
    assert!(!reply.contains("OLDNAME"), "{reply}");
    // Non-ASCII names travel as UTF-8 in both places, as literals.
    let reply = c.send(&mut world, "m CREATE \"inbox/Entwürfe\"\r\n");
    assert_eq!(
        reply,
        "* LIST (\\HasNoChildren) \"/\" {15}\r\nINBOX/Entwürfe (\"OLDNAME\" ({15}\r\ninbox/Entwürfe))\r\n\
         m OK CREATE completed\r\n"
    );
    // The codec reads the responses back as OLDNAME items.
    let (untagged, _) = reply.split_at(reply.find("m OK").unwrap_or(reply.len()));
    assert_eq!(
        decoded_oldname(untagged),
        Some((
            "INBOX/Entwürfe".as_bytes().to_vec(),
            "inbox/Entwürfe".as_bytes().to_vec()
        ))
    );
    let reply = c.send(&mut world, "n RENAME Projects inbox/P\r\n");
    let (untagged, _) = reply.split_at(reply.find("n OK").unwrap_or(reply.len()));
    assert_eq!(
        decoded_oldname(untagged),
        Some((b"INBOX/P".to_vec(), b"Projects".to_vec()))
    );
}
