//! Transcript tests of the IMAP session against a real shard on a simulated disk: each
//! command's exact response bytes, and two sessions on one mailbox.

use super::*;
use crate::disk::{BLOCK_BYTES, SimDisk};
use crate::store::{Shard, ShardConfig, StoreError, Uid};

const SEG: u64 = 64 * BLOCK_BYTES as u64;
const ACCOUNT: &str = "alice";
const NOW: i64 = 1_700_000_000;

/// One account's shard on a simulated disk.
pub(super) struct World {
    shard: Shard,
    disk: SimDisk,
    /// Bytes read from the disk for message bodies, whole or in part.
    body_bytes_read: u64,
}

impl World {
    pub(super) fn new() -> Self {
        let mut disk = SimDisk::new(7, 256 * SEG, SEG);
        let cfg = ShardConfig {
            segment_size_bytes: SEG,
            flush_batch_max_bytes: 8 * BLOCK_BYTES as u64,
        };
        let shard = match Shard::open(&mut disk, None, cfg) {
            Ok((shard, _)) => shard,
            Err(e) => panic!("open failed: {e}"),
        };
        Self {
            shard,
            disk,
            body_bytes_read: 0,
        }
    }

    /// Stages every op, flushes until durable, and reports each op's result.
    fn apply(&mut self, ops: Vec<store::Op>) -> Vec<Applied> {
        let results = ops
            .into_iter()
            .map(|op| {
                self.shard
                    .stage(op)
                    .map(|s| s.uid)
                    .map_err(|e| e.to_string())
            })
            .collect();
        while let Some(outcome) = store::flush(&mut self.shard, &mut self.disk) {
            assert!(matches!(outcome, store::FlushOutcome::Durable { .. }));
        }
        results
    }
}

impl Mailstore for World {
    fn shard(&self) -> &Shard {
        &self.shard
    }

    fn read_body(&mut self, mailbox: &str, uid: Uid) -> Result<Vec<u8>, StoreError> {
        let body = self
            .shard
            .read_body(&mut self.disk, ACCOUNT, mailbox, uid)?;
        self.body_bytes_read += body.len() as u64;
        Ok(body)
    }

    fn read_body_range(
        &mut self,
        mailbox: &str,
        uid: Uid,
        from: u64,
        len: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let part = self
            .shard
            .read_body_range(&mut self.disk, ACCOUNT, mailbox, uid, from, len)?;
        self.body_bytes_read += part.len() as u64;
        Ok(part)
    }

    fn now_unix_s(&self) -> i64 {
        NOW
    }
}

/// A client connection: a session driven the way the runtime drives it.
pub(super) struct Client {
    session: Session,
    closed: bool,
}

impl Client {
    fn new(cfg: SessionConfig) -> Self {
        Self {
            session: Session::new(cfg),
            closed: false,
        }
    }

    /// Feeds `input` and runs every action; returns all reply bytes as text.
    pub(super) fn send(&mut self, world: &mut World, input: &str) -> String {
        self.send_bytes(world, input.as_bytes())
    }

    fn send_bytes(&mut self, world: &mut World, input: &[u8]) -> String {
        let authed = self.session.account().is_some();
        let step = if authed {
            self.session.feed(input, Some(world))
        } else {
            self.session.feed(input, None)
        };
        self.run(world, step)
    }

    fn run(&mut self, world: &mut World, mut step: Step) -> String {
        let mut out = Vec::new();
        loop {
            out.extend_from_slice(&step.reply);
            step = match step.action {
                None => break,
                Some(Action::Close) => {
                    self.closed = true;
                    break;
                }
                Some(Action::Login(sasl::Request::Password { login, password })) => {
                    let account = (login == ACCOUNT && password == "secret").then_some(login);
                    self.session.authenticated(account, Some(world))
                }
                Some(Action::Login(sasl::Request::ScramKeys { login })) => {
                    let keys = crate::sasl::ScramKeys::derive("secret", b"salt", 4096);
                    let found = (login == ACCOUNT).then_some((login, keys));
                    self.session.scram_keys(found, None)
                }
                Some(Action::Login(sasl::Request::ScramDone { account, .. })) => {
                    self.session.authenticated(account, Some(world))
                }
                Some(Action::Apply(ops)) => {
                    let results = world.apply(ops);
                    self.session.applied(results, world)
                }
                Some(Action::StartTls) => {
                    self.session.tls_started();
                    break;
                }
            };
        }
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => panic!("reply is not UTF-8: {e}"),
        }
    }

    /// A client logged in as alice, with the default mailboxes created.
    pub(super) fn logged_in(world: &mut World) -> Self {
        let mut c = Client::new(SessionConfig::default());
        let reply = c.send(world, "l LOGIN alice secret\r\n");
        assert_eq!(reply, "l OK Logged in\r\n");
        c
    }
}

fn append_text(world: &mut World, client: &mut Client, mailbox: &str, body: &str) -> String {
    let cmd = format!("ap APPEND {mailbox} {{{}+}}\r\n{body}\r\n", body.len());
    client.send(world, &cmd)
}

const MSG1: &str = "From: a@example.org\r\nSubject: one\r\n\r\nhello\r\n";
const MSG2: &str = "From: b@example.org\r\nSubject: two\r\n\r\nworld\r\n";
const MSG3: &str = "From: c@example.org\r\nSubject: three\r\n\r\nagain\r\n";

const CAPS: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT \
                    UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH \
                    SEARCHRES CONDSTORE QRESYNC UTF8=ACCEPT STATUS=SIZE APPENDLIMIT=52428800";

const AUTH_CAPS: &str = " AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN";

#[test]
fn greeting_capability_noop_logout() {
    let mut world = World::new();
    let mut c = Client::new(SessionConfig::default());
    let greeting = String::from_utf8(c.session.greeting()).unwrap_or_default();
    assert_eq!(
        greeting,
        format!("* OK [CAPABILITY {CAPS}{AUTH_CAPS}] treehouse IMAP ready\r\n")
    );
    assert_eq!(
        c.send(&mut world, "a CAPABILITY\r\n"),
        format!("* CAPABILITY {CAPS}{AUTH_CAPS}\r\na OK CAPABILITY completed\r\n")
    );
    assert_eq!(c.send(&mut world, "b NOOP\r\n"), "b OK NOOP completed\r\n");
    assert_eq!(
        c.send(&mut world, "b2 STARTTLS\r\n"),
        "b2 BAD STARTTLS is not available\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c ID NIL\r\n"),
        "* ID (\"name\" \"treehouse\")\r\nc OK ID completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d LOGOUT\r\n"),
        "* BYE treehouse logging out\r\nd OK LOGOUT completed\r\n"
    );
    assert!(c.closed);
}

#[test]
fn login_checks_credentials_and_creates_default_mailboxes() {
    let mut world = World::new();
    let mut c = Client::new(SessionConfig::default());
    assert_eq!(
        c.send(&mut world, "a LOGIN alice wrong\r\n"),
        "a NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
    );
    assert_eq!(
        c.send(&mut world, "b SELECT INBOX\r\n"),
        "b BAD Log in first\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c LOGIN alice secret\r\n"),
        "c OK Logged in\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d LOGIN alice secret\r\n"),
        "d BAD Already authenticated\r\n"
    );
    let names: Vec<&String> = match world.shard.account(ACCOUNT) {
        Some(a) => a.mailboxes.keys().collect(),
        None => panic!("account not created"),
    };
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    assert_eq!(
        c.send(&mut world, "e LIST \"\" \"*\"\r\n"),
        "* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n\
         * LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
         * LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n\
         e OK LIST completed\r\n"
    );
    // A second login finds everything in place and applies nothing.
    let mut c2 = Client::new(SessionConfig::default());
    let step = c2.session.feed(b"x LOGIN alice secret\r\n", None);
    assert!(matches!(
        step.action,
        Some(Action::Login(sasl::Request::Password { .. }))
    ));
    let step = c2
        .session
        .authenticated(Some(ACCOUNT.into()), Some(&mut world));
    assert_eq!(step.reply, b"x OK Logged in\r\n");
    assert_eq!(step.action, None);
}

#[test]
fn authenticate_plain_with_and_without_initial_response() {
    let mut world = World::new();
    let mut c = Client::new(SessionConfig::default());
    // "\0alice\0secret"
    assert_eq!(
        c.send(&mut world, "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        "a OK Logged in\r\n"
    );
    let mut c = Client::new(SessionConfig::default());
    assert_eq!(c.send(&mut world, "b AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    assert_eq!(
        c.send(&mut world, "AGFsaWNlAHdyb25n\r\n"),
        "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"
    );
    assert_eq!(c.send(&mut world, "c AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    assert_eq!(
        c.send(&mut world, "*\r\n"),
        "c BAD Authentication cancelled\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d AUTHENTICATE CRAM-MD5\r\n"),
        "d NO [CANNOT] Unsupported authentication mechanism\r\n"
    );
    assert_eq!(c.session.account(), None);
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
        Ok(bytes) => bytes,
        Err(e) => panic!("bad base64 {text:?}: {e}"),
    }
}

/// The client-final-message of SCRAM-SHA-256 for `password`, given the server-first.
fn scram_client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
    let field = |name: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_default()
            .to_string()
    };
    let (nonce, salt) = (field("r="), unb64(&field("s=")));
    let iterations: u32 = field("i=").parse().unwrap_or(1);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let proof = crate::sasl::tests::client_proof(password, &salt, iterations, &auth_message);
    format!("{without_proof},p={proof}")
}

#[test]
fn authenticate_login_and_scram_sha_256() {
    let mut world = World::new();
    let mut c = Client::new(SessionConfig::default());
    assert_eq!(
        c.send(&mut world, "a AUTHENTICATE LOGIN\r\n"),
        format!("+ {}\r\n", b64(b"Username:"))
    );
    assert_eq!(
        c.send(&mut world, &format!("{}\r\n", b64(b"alice"))),
        format!("+ {}\r\n", b64(b"Password:"))
    );
    assert_eq!(
        c.send(&mut world, &format!("{}\r\n", b64(b"secret"))),
        "a OK Logged in\r\n"
    );

    for (password, answer) in [
        (
            "wrong",
            "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n",
        ),
        ("secret", "b OK Logged in\r\n"),
    ] {
        let mut c = Client::new(SessionConfig::default());
        let first_bare = "n=alice,r=clientnonce";
        let reply = c.send(
            &mut world,
            &format!(
                "b AUTHENTICATE SCRAM-SHA-256 {}\r\n",
                b64(format!("n,,{first_bare}").as_bytes())
            ),
        );
        let server_first =
            String::from_utf8(unb64(reply.trim_start_matches("+ "))).unwrap_or_default();
        assert!(server_first.starts_with("r=clientnonce"), "{server_first}");
        let last = scram_client_final(password, first_bare, &server_first);
        let reply = c.send(&mut world, &format!("{}\r\n", b64(last.as_bytes())));
        if password == "secret" {
            let server_final =
                String::from_utf8(unb64(reply.trim_start_matches("+ "))).unwrap_or_default();
            assert!(server_final.starts_with("v="), "{server_final}");
            assert_eq!(c.send(&mut world, "\r\n"), answer);
            assert_eq!(c.session.account(), Some(ACCOUNT));
        } else {
            assert_eq!(reply, answer);
            assert_eq!(c.session.account(), None);
        }
    }
    // An unknown user fails at once; the session goes on.
    let mut c = Client::new(SessionConfig::default());
    let reply = c.send(
        &mut world,
        &format!("c AUTHENTICATE SCRAM-SHA-256 {}\r\n", b64(b"n,,n=bob,r=x")),
    );
    assert_eq!(reply, "c NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
    assert_eq!(c.send(&mut world, "d NOOP\r\n"), "d OK NOOP completed\r\n");
}

#[test]
fn bad_input_gets_an_error_and_the_session_goes_on() {
    let mut world = World::new();
    let cfg = SessionConfig {
        line_max_bytes: 100,
        literal_max_bytes: 50,
        ..SessionConfig::default()
    };
    let mut c = Client::new(cfg);
    assert_eq!(
        c.send(&mut world, "a FROBNICATE\r\n"),
        "a BAD Unknown command or invalid arguments\r\n"
    );
    let long = format!("b LOGIN {} x\r\n", "u".repeat(200));
    assert_eq!(
        c.send(&mut world, &long),
        "b BAD [TOOBIG] Command line too long\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c LOGIN {60}\r\n"),
        "c NO [TOOBIG] Literal exceeds the limit of 50 bytes\r\n"
    );
    let nonsync = format!("d LOGIN {{60+}}\r\n{} x\r\n", "p".repeat(60));
    assert_eq!(
        c.send(&mut world, &nonsync),
        "d BAD [TOOBIG] Literal exceeds the limit of 50 bytes\r\n"
    );
    // A literal within the limit is invited with a continuation.
    assert_eq!(
        c.send(&mut world, "e LOGIN {5}\r\n"),
        "+ Ready for literal data\r\n"
    );
    assert_eq!(c.send(&mut world, "alice secret\r\n"), "e OK Logged in\r\n");
    assert_eq!(
        c.send(&mut world, "f CREATE &Jjo\r\n"),
        "f BAD mailbox name is not valid modified UTF-7\r\n"
    );
    // The same tag twice in a row: each command gets its own answer.
    assert_eq!(
        c.send(&mut world, "g NOOP\r\ng NOOP\r\n"),
        "g OK NOOP completed\r\ng OK NOOP completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "h FETCH 1 FLAGS\r\n"),
        "h BAD No mailbox selected\r\n"
    );
    assert_eq!(
        c.send(&mut world, "* NOOP\r\n"),
        "* BAD Unknown command or invalid arguments\r\n"
    );
    assert_eq!(c.send(&mut world, "i NOOP\r\n"), "i OK NOOP completed\r\n");
}

#[test]
fn enable_and_namespace() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    assert_eq!(
        c.send(&mut world, "a ENABLE QRESYNC UTF8=ACCEPT X-UNKNOWN\r\n"),
        "* ENABLED QRESYNC UTF8=ACCEPT\r\na OK ENABLE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "b ENABLE CONDSTORE\r\n"),
        "* ENABLED\r\nb OK ENABLE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c NAMESPACE\r\n"),
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\nc OK NAMESPACE completed\r\n"
    );
}

#[test]
fn mailbox_create_list_rename_delete_status() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    assert_eq!(
        c.send(&mut world, "a CREATE work/2024/q1\r\n"),
        "a OK CREATE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "b CREATE work\r\n"),
        "b NO [ALREADYEXISTS] Mailbox already exists\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c CREATE inbox\r\n"),
        "c NO [ALREADYEXISTS] Mailbox already exists\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d LIST \"\" work/%\r\n"),
        "* LIST (\\HasChildren) \"/\" work/2024\r\nd OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "e LIST work/ *\r\n"),
        "* LIST (\\HasChildren) \"/\" work/2024\r\n\
         * LIST (\\HasNoChildren) \"/\" work/2024/q1\r\n\
         e OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "f LIST \"\" \"\"\r\n"),
        "* LIST (\\Noselect) \"/\" \"\"\r\nf OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "g RENAME work old\r\n"),
        "g OK RENAME completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "h LIST \"\" old*\r\n"),
        "* LIST (\\HasChildren) \"/\" old\r\n\
         * LIST (\\HasChildren) \"/\" old/2024\r\n\
         * LIST (\\HasNoChildren) \"/\" old/2024/q1\r\n\
         h OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "i DELETE old/2024\r\n"),
        "i OK DELETE completed\r\n"
    );
    // The child survives its deleted parent, which remains as a \Noselect level.
    assert_eq!(
        c.send(&mut world, "j LIST \"\" old/*\r\n"),
        "* LIST (\\Noselect \\HasChildren) \"/\" old/2024\r\n\
         * LIST (\\HasNoChildren) \"/\" old/2024/q1\r\n\
         j OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "k DELETE INBOX\r\n"),
        "k NO [CANNOT] INBOX cannot be deleted\r\n"
    );
    assert_eq!(
        c.send(&mut world, "l DELETE nothere\r\n"),
        "l NO [NONEXISTENT] No such mailbox\r\n"
    );
    assert_eq!(
        c.send(&mut world, "m CREATE a/../b\r\n"),
        "m NO [CANNOT] mailbox name has a . or .. level\r\n"
    );
    let deep = vec!["x"; 20].join("/");
    assert_eq!(
        c.send(&mut world, &format!("n CREATE {deep}\r\n")),
        "n NO [CANNOT] mailbox hierarchy is too deep\r\n"
    );
    let long = "y".repeat(600);
    assert_eq!(
        c.send(&mut world, &format!("o CREATE {long}\r\n")),
        "o NO [CANNOT] mailbox name is too long\r\n"
    );
    append_text(&mut world, &mut c, "INBOX", MSG1);
    append_text(&mut world, &mut c, "INBOX", MSG2);
    assert_eq!(
        c.send(&mut world, "p STORE 1 +FLAGS (\\Seen)\r\n"),
        "p BAD No mailbox selected\r\n"
    );
    let uidvalidity = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map_or(0, |m| m.uidvalidity);
    let size = MSG1.len() + MSG2.len();
    assert_eq!(
        c.send(
            &mut world,
            "q STATUS inbox (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ RECENT)\r\n"
        ),
        format!(
            "* STATUS INBOX (MESSAGES 2 UIDNEXT 3 UIDVALIDITY {uidvalidity} UNSEEN 2 DELETED 0 \
             SIZE {size} HIGHESTMODSEQ 3 RECENT 0)\r\nq OK STATUS completed\r\n"
        )
    );
}

#[test]
fn international_names_in_utf7_and_utf8() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    assert_eq!(
        c.send(&mut world, "a CREATE Entw&APw-rfe\r\n"),
        "a OK CREATE completed\r\n"
    );
    assert!(world.shard.mailbox(ACCOUNT, "Entwürfe").is_some());
    assert_eq!(
        c.send(&mut world, "b LIST \"\" Entw*\r\n"),
        "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\nb OK LIST completed\r\n"
    );
    c.send(&mut world, "c ENABLE UTF8=ACCEPT\r\n");
    assert_eq!(
        c.send(&mut world, "d LIST \"\" Entw*\r\n"),
        "* LIST (\\HasNoChildren) \"/\" {9}\r\nEntwürfe\r\nd OK LIST completed\r\n"
    );
}

#[test]
fn subscriptions_are_durable_and_shared_by_sessions() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    assert_eq!(
        c.send(&mut world, "a CREATE lists\r\n"),
        "a OK CREATE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "b SUBSCRIBE lists\r\n"),
        "b OK SUBSCRIBE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c UNSUBSCRIBE Junk\r\n"),
        "c OK UNSUBSCRIBE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d SUBSCRIBE a/../b\r\n"),
        "d NO [CANNOT] mailbox name has a . or .. level\r\n"
    );
    let mut other = Client::logged_in(&mut world);
    assert_eq!(
        other.send(&mut world, "e LSUB \"\" *\r\n"),
        "* LSUB (\\HasNoChildren \\Archive) \"/\" Archive\r\n\
         * LSUB (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
         * LSUB (\\HasNoChildren) \"/\" INBOX\r\n\
         * LSUB (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LSUB (\\HasNoChildren \\Trash) \"/\" Trash\r\n\
         * LSUB (\\HasNoChildren) \"/\" lists\r\n\
         e OK LSUB completed\r\n"
    );
}

#[test]
fn list_extended_selection_and_return_options() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    for cmd in [
        "s1 CREATE work/2024/q1\r\n",
        "s2 SUBSCRIBE work/2024/q1\r\n",
        "s3 SUBSCRIBE gone\r\n",
        "s4 UNSUBSCRIBE Junk\r\n",
    ] {
        assert!(c.send(&mut world, cmd).contains(" OK "), "{cmd}");
    }
    // SUBSCRIBED lists subscribed names, existing or not, with \Subscribed.
    let subscribed = "* LIST (\\Subscribed \\HasNoChildren \\Archive) \"/\" Archive\r\n\
                      * LIST (\\Subscribed \\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
                      * LIST (\\Subscribed \\HasNoChildren) \"/\" INBOX\r\n\
                      * LIST (\\Subscribed \\HasNoChildren \\Sent) \"/\" Sent\r\n\
                      * LIST (\\Subscribed \\HasNoChildren \\Trash) \"/\" Trash\r\n\
                      * LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" gone\r\n\
                      * LIST (\\Subscribed \\HasNoChildren) \"/\" work/2024/q1\r\n";
    assert_eq!(
        c.send(&mut world, "a LIST (SUBSCRIBED) \"\" \"*\"\r\n"),
        format!("{subscribed}a OK LIST completed\r\n")
    );
    // RECURSIVEMATCH: a parent whose subscribed descendant is not listed gets CHILDINFO.
    assert_eq!(
        c.send(&mut world, "b LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n"),
        "* LIST (\\Subscribed \\HasNoChildren \\Archive) \"/\" Archive\r\n\
         * LIST (\\Subscribed \\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
         * LIST (\\Subscribed \\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\Subscribed \\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\Subscribed \\HasNoChildren \\Trash) \"/\" Trash\r\n\
         * LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" gone\r\n\
         * LIST (\\HasChildren) \"/\" work (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
         b OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(
            &mut world,
            "b2 LIST (RECURSIVEMATCH SUBSCRIBED) work/ %\r\n"
        ),
        "* LIST (\\HasChildren) \"/\" work/2024 (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
         b2 OK LIST completed\r\n"
    );
    // Every subscribed descendant is listed: no redundant CHILDINFO (RFC 5258 §3.5).
    assert_eq!(
        c.send(&mut world, "b3 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *\r\n"),
        format!("{subscribed}b3 OK LIST completed\r\n")
    );
    // RECURSIVEMATCH needs a base option; unknown options are BAD (RFC 5258 §3).
    for (tag, cmd) in [
        ("d1", "LIST (RECURSIVEMATCH) \"\" *"),
        ("d2", "LIST (REMOTE RECURSIVEMATCH) \"\" *"),
        ("d3", "LIST (X-UNKNOWN) \"\" *"),
        ("d4", "LIST \"\" * RETURN (X-UNKNOWN)"),
    ] {
        assert_eq!(
            c.send(&mut world, &format!("{tag} {cmd}\r\n")),
            format!("{tag} BAD Unknown command or invalid arguments\r\n")
        );
    }
    // An extended LIST ignores the empty pattern instead of naming the delimiter.
    assert_eq!(
        c.send(&mut world, "e LIST () \"\" \"\"\r\n"),
        "e OK LIST completed\r\n"
    );
    // Several patterns; a name matching two of them is listed once.
    assert_eq!(
        c.send(
            &mut world,
            "f LIST \"\" (INBOX I* \"\" Sent work/%) RETURN (CHILDREN)\r\n"
        ),
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\HasChildren) \"/\" work/2024\r\n\
         f OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "g LIST (SPECIAL-USE) \"\" *\r\n"),
        "* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n\
         * LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
         * LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n\
         g OK LIST completed\r\n"
    );
    // A deleted parent remains as a level of hierarchy: \NonExistent in an extended
    // LIST, \Noselect in a plain one. Return options add no names (`gone`).
    c.send(&mut world, "h0 DELETE work/2024\r\n");
    assert_eq!(
        c.send(&mut world, "h LIST \"\" * RETURN (SUBSCRIBED)\r\n"),
        "* LIST (\\Subscribed \\HasNoChildren \\Archive) \"/\" Archive\r\n\
         * LIST (\\Subscribed \\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
         * LIST (\\Subscribed \\HasNoChildren) \"/\" INBOX\r\n\
         * LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n\
         * LIST (\\Subscribed \\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * LIST (\\Subscribed \\HasNoChildren \\Trash) \"/\" Trash\r\n\
         * LIST (\\HasChildren) \"/\" work\r\n\
         * LIST (\\NonExistent \\HasChildren) \"/\" work/2024\r\n\
         * LIST (\\Subscribed \\HasNoChildren) \"/\" work/2024/q1\r\n\
         h OK LIST completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "h2 LIST \"\" work/%\r\n"),
        "* LIST (\\Noselect \\HasChildren) \"/\" work/2024\r\nh2 OK LIST completed\r\n"
    );
    // An option given twice counts once.
    assert_eq!(
        c.send(
            &mut world,
            "i LIST (SUBSCRIBED SUBSCRIBED) \"\" gone RETURN (SUBSCRIBED SUBSCRIBED)\r\n"
        ),
        "* LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" gone\r\ni OK LIST completed\r\n"
    );
    // LSUB is unchanged.
    assert_eq!(
        c.send(&mut world, "j LSUB \"\" gone\r\n"),
        "* LSUB (\\Noselect \\HasNoChildren) \"/\" gone\r\nj OK LSUB completed\r\n"
    );
}

#[test]
fn list_status_reports_what_status_reports() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    c.send(&mut world, "a CREATE lists/rust\r\n");
    c.send(&mut world, "b DELETE lists\r\n");
    append_text(&mut world, &mut c, "INBOX", MSG1);
    c.send(
        &mut world,
        &format!(
            "ap APPEND INBOX (\\Seen \\Deleted) {{{}+}}\r\n{MSG2}\r\n",
            MSG2.len()
        ),
    );
    let items = "MESSAGES UNSEEN DELETED SIZE UIDNEXT HIGHESTMODSEQ";
    let status = |c: &mut Client, world: &mut World, name: &str| {
        let reply = c.send(world, &format!("s STATUS {name} ({items})\r\n"));
        reply
            .strip_suffix("s OK STATUS completed\r\n")
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{reply}"))
    };
    let inbox = status(&mut c, &mut world, "INBOX");
    let size = MSG1.len() + MSG2.len();
    assert_eq!(
        inbox,
        format!(
            "* STATUS INBOX (MESSAGES 2 UNSEEN 1 DELETED 1 SIZE {size} UIDNEXT 3 HIGHESTMODSEQ 3)\r\n"
        )
    );
    let archive = status(&mut c, &mut world, "Archive");
    let rust = status(&mut c, &mut world, "lists/rust");
    // A STATUS after each selectable mailbox, none after the missing level `lists`.
    assert_eq!(
        c.send(
            &mut world,
            &format!("l LIST \"\" (INBOX Archive lists*) RETURN (STATUS ({items}))\r\n")
        ),
        format!(
            "* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n{archive}\
             * LIST (\\HasNoChildren) \"/\" INBOX\r\n{inbox}\
             * LIST (\\NonExistent \\HasChildren) \"/\" lists\r\n\
             * LIST (\\HasNoChildren) \"/\" lists/rust\r\n{rust}\
             l OK LIST completed\r\n"
        )
    );
    // Two STATUS options merge; the selected mailbox is reported too.
    select_inbox(&mut world, &mut c);
    assert_eq!(
        c.send(
            &mut world,
            "m LIST \"\" INBOX RETURN (STATUS (MESSAGES) STATUS (MESSAGES UNSEEN))\r\n"
        ),
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * STATUS INBOX (MESSAGES 2 UNSEEN 1)\r\nm OK LIST completed\r\n"
    );
}

#[test]
fn search_return_answers_with_esearch() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    for body in [MSG1, MSG2, MSG3, MSG1, MSG2] {
        append_text(&mut world, &mut c, "INBOX", body);
    }
    select_inbox(&mut world, &mut c);
    c.send(&mut world, "x1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    c.send(&mut world, "x2 EXPUNGE\r\n");
    c.send(&mut world, "x3 STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
    // Sequence numbers 1-4 are UIDs 2-5; message 2 (UID 3) is \Seen.
    assert_eq!(
        c.send(&mut world, "a SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN\r\n"),
        "* ESEARCH (TAG \"a\") MIN 1 MAX 4 COUNT 3 ALL 1,3:4\r\na OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(
            &mut world,
            "b UID SEARCH RETURN (ALL COUNT MAX MIN) UNSEEN\r\n"
        ),
        "* ESEARCH (TAG \"b\") UID MIN 2 MAX 5 COUNT 3 ALL 2,4:5\r\nb OK SEARCH completed\r\n"
    );
    // RETURN () means ALL.
    assert_eq!(
        c.send(&mut world, "c UID SEARCH RETURN () ALL\r\n"),
        "* ESEARCH (TAG \"c\") UID ALL 2:5\r\nc OK SEARCH completed\r\n"
    );
    // No match: no MIN, MAX or ALL, but COUNT 0 and the ESEARCH response itself.
    assert_eq!(
        c.send(&mut world, "d SEARCH RETURN (COUNT) SUBJECT nothing\r\n"),
        "* ESEARCH (TAG \"d\") COUNT 0\r\nd OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(
            &mut world,
            "e UID SEARCH RETURN (MIN MAX ALL) SUBJECT nothing\r\n"
        ),
        "* ESEARCH (TAG \"e\") UID\r\ne OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(
            &mut world,
            "f SEARCH RETURN (MAX) CHARSET UTF-8 SUBJECT two\r\n"
        ),
        "* ESEARCH (TAG \"f\") MAX 4\r\nf OK SEARCH completed\r\n"
    );
    // SAVE alone answers with the tagged OK only (RFC 5182 §2.1).
    assert_eq!(
        c.send(&mut world, "g SEARCH RETURN (SAVE) ALL\r\n"),
        "g OK SEARCH completed\r\n"
    );
    // With MODSEQ in the criteria: the highest MODSEQ of the messages reported.
    let modseq = |uid: Uid| {
        world
            .shard
            .mailbox(ACCOUNT, "INBOX")
            .and_then(|m| m.messages.get(&uid).map(|x| x.modseq))
            .unwrap_or(0)
    };
    let (min_modseq, all_modseq) = (modseq(2), modseq(3).max(modseq(5)));
    assert_eq!(
        c.send(&mut world, "h SEARCH RETURN (MIN) MODSEQ 1 UNSEEN\r\n"),
        format!("* ESEARCH (TAG \"h\") MIN 1 MODSEQ {min_modseq}\r\nh OK SEARCH completed\r\n")
    );
    assert_eq!(
        c.send(&mut world, "h2 SEARCH RETURN (COUNT) MODSEQ 1\r\n"),
        format!("* ESEARCH (TAG \"h2\") COUNT 4 MODSEQ {all_modseq}\r\nh2 OK SEARCH completed\r\n")
    );
    // Without RETURN, SEARCH answers as before.
    assert_eq!(
        c.send(&mut world, "i SEARCH UNSEEN\r\n"),
        "* SEARCH 1 3 4\r\ni OK SEARCH completed\r\n"
    );
}

#[test]
fn append_utf8_needs_utf8_accept() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    let message = "From: a@example.org\r\nSubject: café\r\n\r\nbonjour\r\n";
    let n = message.len();
    assert_eq!(
        c.send(
            &mut world,
            &format!("a APPEND INBOX UTF8 (~{{{n}+}}\r\n{message})\r\n")
        ),
        "a BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT\r\n"
    );
    c.send(&mut world, "b ENABLE UTF8=ACCEPT\r\n");
    assert_eq!(
        c.send(&mut world, &format!("c APPEND INBOX UTF8 (~{{{n}}}\r\n")),
        "+ Ready for literal data\r\n"
    );
    let uv = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map_or(0, |m| m.uidvalidity);
    assert_eq!(
        c.send(&mut world, &format!("{message})\r\n")),
        format!("c OK [APPENDUID {uv} 1] APPEND completed\r\n")
    );
    assert_eq!(
        world.read_body("INBOX", 1).as_deref().ok(),
        Some(message.as_bytes())
    );
}

fn select_inbox(world: &mut World, c: &mut Client) -> String {
    c.send(world, "s SELECT INBOX\r\n")
}

#[test]
fn select_append_store_expunge() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    let uv = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map_or(0, |m| m.uidvalidity);
    assert_eq!(
        append_text(&mut world, &mut c, "INBOX", MSG1),
        format!("ap OK [APPENDUID {uv} 1] APPEND completed\r\n")
    );
    assert_eq!(
        c.send(
            &mut world,
            &format!(
                "ap2 APPEND INBOX (\\Flagged) {{{}+}}\r\n{MSG2}\r\n",
                MSG2.len()
            )
        ),
        format!("ap2 OK [APPENDUID {uv} 2] APPEND completed\r\n")
    );
    assert_eq!(
        append_text(&mut world, &mut c, "nothere", MSG1),
        "ap NO [TRYCREATE] No such mailbox\r\n"
    );
    assert_eq!(
        select_inbox(&mut world, &mut c),
        format!(
            "* 2 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
             * OK [UNSEEN 1] First unseen\r\n* OK [UIDVALIDITY {uv}] UIDs valid\r\n\
             * OK [UIDNEXT 3] Predicted next UID\r\n* OK [HIGHESTMODSEQ 3] Highest\r\n\
             s OK [READ-WRITE] SELECT completed\r\n"
        )
    );
    // Appending to the selected mailbox announces the new message.
    assert_eq!(
        append_text(&mut world, &mut c, "INBOX", MSG3),
        format!("* 3 EXISTS\r\nap OK [APPENDUID {uv} 3] APPEND completed\r\n")
    );
    assert_eq!(
        c.send(&mut world, "a STORE 1:2 +FLAGS (\\Deleted)\r\n"),
        "* 1 FETCH (FLAGS (\\Deleted))\r\n* 2 FETCH (FLAGS (\\Deleted \\Flagged))\r\na OK STORE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "b UID STORE 2 -FLAGS.SILENT (\\Flagged)\r\n"),
        "b OK STORE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c STORE 3 FLAGS (\\Answered $Label)\r\n"),
        "* 3 FETCH (FLAGS ($Label \\Answered))\r\nc OK STORE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d STORE 9 +FLAGS (\\Seen)\r\n"),
        "d BAD Invalid message sequence number\r\n"
    );
    assert_eq!(
        c.send(&mut world, "e UID EXPUNGE 2\r\n"),
        "* 2 EXPUNGE\r\ne OK EXPUNGE completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "f EXPUNGE\r\n"),
        "* 1 EXPUNGE\r\nf OK EXPUNGE completed\r\n"
    );
    let uids: Vec<Uid> = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map(|m| m.messages.keys().copied().collect())
        .unwrap_or_default();
    assert_eq!(uids, [3]);
    assert_eq!(
        c.send(&mut world, "g UNSELECT\r\n"),
        "g OK UNSELECT completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "h EXPUNGE\r\n"),
        "h BAD No mailbox selected\r\n"
    );
}

#[test]
fn examine_is_read_only_and_close_expunges_silently() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    append_text(&mut world, &mut c, "INBOX", MSG2);
    let reply = c.send(&mut world, "a EXAMINE INBOX\r\n");
    assert!(
        reply.contains("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"),
        "{reply}"
    );
    assert!(
        reply.ends_with("a OK [READ-ONLY] EXAMINE completed\r\n"),
        "{reply}"
    );
    assert_eq!(
        c.send(&mut world, "b STORE 1 +FLAGS (\\Deleted)\r\n"),
        "b NO [READ-ONLY] Mailbox is read-only\r\n"
    );
    select_inbox(&mut world, &mut c);
    c.send(&mut world, "c STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    assert_eq!(
        c.send(&mut world, "d CLOSE\r\n"),
        "d OK CLOSE completed\r\n"
    );
    assert_eq!(
        world
            .shard
            .mailbox(ACCOUNT, "INBOX")
            .map(|m| m.messages.len()),
        Some(1)
    );
}

#[test]
fn copy_and_move_report_copyuid() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    append_text(&mut world, &mut c, "INBOX", MSG2);
    append_text(&mut world, &mut c, "INBOX", MSG3);
    select_inbox(&mut world, &mut c);
    let archive = world
        .shard
        .mailbox(ACCOUNT, "Archive")
        .map_or(0, |m| m.uidvalidity);
    let trash = world
        .shard
        .mailbox(ACCOUNT, "Trash")
        .map_or(0, |m| m.uidvalidity);
    let junk = world
        .shard
        .mailbox(ACCOUNT, "Junk")
        .map_or(0, |m| m.uidvalidity);
    assert_eq!(
        c.send(&mut world, "a COPY 1:2 Archive\r\n"),
        format!("a OK [COPYUID {archive} 1:2 1:2] COPY completed\r\n")
    );
    assert_eq!(
        c.send(&mut world, "b UID MOVE 2:3 Trash\r\n"),
        format!(
            "* OK [COPYUID {trash} 2:3 1:2] Moved\r\n* 3 EXPUNGE\r\n* 2 EXPUNGE\r\nb OK MOVE completed\r\n"
        )
    );
    assert_eq!(
        c.send(&mut world, "b2 UID COPY 1 Junk\r\n"),
        format!("b2 OK [COPYUID {junk} 1 1] COPY completed\r\n")
    );
    assert_eq!(
        c.send(&mut world, "b3 MOVE 1 Junk\r\n"),
        format!("* OK [COPYUID {junk} 1 2] Moved\r\n* 1 EXPUNGE\r\nb3 OK MOVE completed\r\n")
    );
    assert_eq!(
        c.send(&mut world, "b4 CHECK\r\n"),
        "b4 OK CHECK completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c COPY 1 nothere\r\n"),
        "c NO [TRYCREATE] No such mailbox\r\n"
    );
    let count = |w: &World, name: &str| w.shard.mailbox(ACCOUNT, name).map(|m| m.messages.len());
    assert_eq!(count(&world, "INBOX"), Some(0));
    assert_eq!(count(&world, "Junk"), Some(2));
    assert_eq!(count(&world, "Archive"), Some(2));
    assert_eq!(count(&world, "Trash"), Some(2));
    let mut small = Client::new(SessionConfig {
        copy_max_bytes: 10,
        ..SessionConfig::default()
    });
    small.send(&mut world, "l LOGIN alice secret\r\n");
    small.send(&mut world, "s SELECT Trash\r\n");
    assert_eq!(
        small.send(&mut world, "d COPY 1 INBOX\r\n"),
        "d NO [LIMIT] More than 10 bytes at once; copy fewer messages\r\n"
    );
    let body = world.read_body("Trash", 2);
    assert_eq!(body.as_deref().ok(), Some(MSG3.as_bytes()));
}

#[test]
fn rename_of_selected_inbox_reports_expunges_before_completion() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    select_inbox(&mut world, &mut c);
    assert_eq!(
        c.send(&mut world, "a RENAME INBOX saved\r\n"),
        "* 1 EXPUNGE\r\na OK RENAME completed\r\n"
    );
    assert_eq!(c.send(&mut world, "b NOOP\r\n"), "b OK NOOP completed\r\n");
}

#[test]
fn check_needs_a_selected_mailbox() {
    let mut world = World::new();
    let mut c = Client::new(SessionConfig::default());
    assert_eq!(
        c.send(&mut world, "a CHECK\r\n"),
        "a BAD No mailbox selected\r\n"
    );
    let mut c = Client::logged_in(&mut world);
    assert_eq!(
        c.send(&mut world, "b CHECK\r\n"),
        "b BAD No mailbox selected\r\n"
    );
    select_inbox(&mut world, &mut c);
    assert_eq!(
        c.send(&mut world, "c CHECK\r\n"),
        "c OK CHECK completed\r\n"
    );
}

#[test]
fn literals_before_login_are_limited_to_a_line() {
    let mut world = World::new();
    let cfg = SessionConfig {
        line_max_bytes: 1000,
        literal_max_bytes: 100_000,
        ..SessionConfig::default()
    };
    let mut c = Client::new(cfg);
    assert_eq!(
        c.send(&mut world, "a LOGIN {5000}\r\n"),
        "a NO [TOOBIG] Literal exceeds the limit of 1000 bytes\r\n"
    );
    assert_eq!(
        c.send(
            &mut world,
            "b LOGIN alice secret\r\nc APPEND INBOX {5000}\r\n"
        ),
        "b OK Logged in\r\n+ Ready for literal data\r\n"
    );
}

#[test]
fn rename_inbox_moves_its_messages() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    append_text(&mut world, &mut c, "INBOX", MSG2);
    assert_eq!(
        c.send(&mut world, "a RENAME INBOX saved\r\n"),
        "a OK RENAME completed\r\n"
    );
    assert_eq!(
        world
            .shard
            .mailbox(ACCOUNT, "INBOX")
            .map(|m| m.messages.len()),
        Some(0)
    );
    assert_eq!(
        world
            .shard
            .mailbox(ACCOUNT, "saved")
            .map(|m| m.messages.len()),
        Some(2)
    );
}

#[test]
fn fetch_renders_and_body_fetch_sets_seen() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    select_inbox(&mut world, &mut c);
    assert_eq!(
        c.send(&mut world, "a FETCH 1 (FLAGS RFC822.SIZE)\r\n"),
        format!(
            "* 1 FETCH (FLAGS () RFC822.SIZE {})\r\na OK FETCH completed\r\n",
            MSG1.len()
        )
    );
    assert_eq!(
        c.send(
            &mut world,
            "b UID FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]\r\n"
        ),
        "* 1 FETCH (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: one\r\n\r\n)\r\nb OK FETCH completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c FETCH 1 BODY[TEXT]\r\n"),
        "* 1 FETCH (BODY[TEXT] {7}\r\nhello\r\n FLAGS (\\Seen))\r\nc OK FETCH completed\r\n"
    );
    let flags = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .and_then(|m| m.messages.get(&1).map(|x| x.flags.clone()));
    assert_eq!(flags, Some(vec!["\\Seen".to_string()]));
}

#[test]
fn two_sessions_see_each_others_changes_where_allowed() {
    let mut world = World::new();
    let mut a = Client::logged_in(&mut world);
    let mut b = Client::logged_in(&mut world);
    append_text(&mut world, &mut a, "INBOX", MSG1);
    append_text(&mut world, &mut a, "INBOX", MSG2);
    select_inbox(&mut world, &mut a);
    select_inbox(&mut world, &mut b);
    // B flags and expunges message 1 and appends a third message.
    b.send(&mut world, "b1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    b.send(&mut world, "b2 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n");
    assert_eq!(
        b.send(&mut world, "b3 EXPUNGE\r\n"),
        "* 1 EXPUNGE\r\nb3 OK EXPUNGE completed\r\n"
    );
    append_text(&mut world, &mut b, "INBOX", MSG3);
    // A's FETCH by sequence number sees the flag change and the new message, never the expunge.
    assert_eq!(
        a.send(&mut world, "a1 FETCH 2 (FLAGS)\r\n"),
        "* 2 FETCH (FLAGS (\\Flagged))\r\n* 3 EXISTS\r\na1 OK FETCH completed\r\n"
    );
    // Message 1 keeps its number until the expunge is announced; its data is gone.
    assert_eq!(
        a.send(&mut world, "a1b FETCH 1 (FLAGS)\r\n"),
        "a1b OK [EXPUNGEISSUED] Some messages were expunged meanwhile\r\n"
    );
    assert_eq!(
        a.send(&mut world, "a1c SEARCH ALL\r\n"),
        "* SEARCH 2 3\r\na1c OK SEARCH completed\r\n"
    );
    // Nor during STORE by sequence number.
    assert_eq!(
        a.send(&mut world, "a2 STORE 3 +FLAGS (\\Seen)\r\n"),
        "* 3 FETCH (FLAGS (\\Seen))\r\na2 OK STORE completed\r\n"
    );
    // NOOP may announce the expunge.
    assert_eq!(
        a.send(&mut world, "a3 NOOP\r\n"),
        "* 1 EXPUNGE\r\na3 OK NOOP completed\r\n"
    );
    assert_eq!(
        a.send(&mut world, "a4 NOOP\r\n"),
        "a4 OK NOOP completed\r\n"
    );
    // B learns of A's \Seen at its next NOOP.
    assert_eq!(
        b.send(&mut world, "b4 NOOP\r\n"),
        "* 2 FETCH (FLAGS (\\Seen))\r\nb4 OK NOOP completed\r\n"
    );
}

#[test]
fn uid_commands_and_qresync_announce_vanished() {
    let mut world = World::new();
    let mut a = Client::logged_in(&mut world);
    let mut b = Client::logged_in(&mut world);
    append_text(&mut world, &mut a, "INBOX", MSG1);
    append_text(&mut world, &mut a, "INBOX", MSG2);
    a.send(&mut world, "e ENABLE QRESYNC\r\n");
    select_inbox(&mut world, &mut a);
    select_inbox(&mut world, &mut b);
    b.send(&mut world, "b1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
    b.send(&mut world, "b2 EXPUNGE\r\n");
    // A UID command may carry expunges; with QRESYNC they are VANISHED.
    assert_eq!(
        a.send(&mut world, "a1 UID FETCH 2 (FLAGS)\r\n"),
        "* 2 FETCH (UID 2 FLAGS () MODSEQ (3))\r\n* VANISHED 1\r\na1 OK FETCH completed\r\n"
    );
    let uv = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map_or(0, |m| m.uidvalidity);
    let reply = a.send(
        &mut world,
        &format!("a2 SELECT INBOX (QRESYNC ({uv} 3 1:2))\r\n"),
    );
    assert!(
        reply.starts_with("* OK [CLOSED] Previous mailbox closed\r\n"),
        "{reply}"
    );
    assert!(reply.contains("* VANISHED (EARLIER) 1\r\n"), "{reply}");
    assert!(
        reply.ends_with("a2 OK [READ-WRITE] SELECT completed\r\n"),
        "{reply}"
    );
    assert_eq!(
        a.send(
            &mut world,
            "a3 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"
        ),
        "* VANISHED (EARLIER) 1\r\n* 1 FETCH (UID 2 FLAGS () MODSEQ (3))\r\na3 OK FETCH completed\r\n"
    );
    assert_eq!(
        a.send(
            &mut world,
            "a4 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3 VANISHED)\r\n"
        ),
        "* VANISHED (EARLIER) 1\r\na4 OK FETCH completed\r\n"
    );
    assert_eq!(
        b.send(
            &mut world,
            "b3 FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n"
        ),
        "b3 BAD VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE\r\n"
    );
}

#[test]
fn conditional_store_reports_modified() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    append_text(&mut world, &mut c, "INBOX", MSG2);
    select_inbox(&mut world, &mut c);
    // Message 1 has MODSEQ 2, message 2 MODSEQ 3.
    assert_eq!(
        c.send(
            &mut world,
            "a STORE 1:2 (UNCHANGEDSINCE 2) +FLAGS (\\Seen)\r\n"
        ),
        "* 1 FETCH (FLAGS (\\Seen) MODSEQ (4))\r\na OK [MODIFIED 2] Conditional STORE failed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "b STORE 2 +FLAGS.SILENT (\\Draft)\r\n"),
        "* 2 FETCH (FLAGS (\\Draft) MODSEQ (5))\r\nb OK STORE completed\r\n"
    );
}

#[test]
fn idle_reports_changes_until_done() {
    let mut world = World::new();
    let mut a = Client::logged_in(&mut world);
    let mut b = Client::logged_in(&mut world);
    select_inbox(&mut world, &mut a);
    assert_eq!(a.send(&mut world, "i IDLE\r\n"), "+ idling\r\n");
    assert!(a.session.poll(&mut world).is_empty());
    append_text(&mut world, &mut b, "INBOX", MSG1);
    assert_eq!(a.session.poll(&mut world), b"* 1 EXISTS\r\n");
    assert!(a.session.poll(&mut world).is_empty());
    assert_eq!(a.send(&mut world, "DONE\r\n"), "i OK IDLE terminated\r\n");
    assert_eq!(a.send(&mut world, "n NOOP\r\n"), "n OK NOOP completed\r\n");
}

#[test]
fn search_by_flags_text_and_uid() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    append_text(&mut world, &mut c, "INBOX", MSG1);
    append_text(&mut world, &mut c, "INBOX", MSG2);
    append_text(&mut world, &mut c, "INBOX", MSG3);
    select_inbox(&mut world, &mut c);
    c.send(&mut world, "a STORE 2 +FLAGS.SILENT (\\Seen)\r\n");
    assert_eq!(
        c.send(&mut world, "b SEARCH UNSEEN\r\n"),
        "* SEARCH 1 3\r\nb OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "c UID SEARCH SUBJECT two\r\n"),
        "* SEARCH 2\r\nc OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "d SEARCH BODY again NOT SEEN\r\n"),
        "* SEARCH 3\r\nd OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "e SEARCH MODSEQ 5\r\n"),
        "* SEARCH 2 (MODSEQ 5)\r\ne OK SEARCH completed\r\n"
    );
    assert_eq!(
        c.send(&mut world, "f SEARCH CHARSET KOI8-R ALL\r\n"),
        "f NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset\r\n"
    );
}

#[test]
fn pipelined_commands_wait_for_durable_changes() {
    let mut world = World::new();
    let mut c = Client::new(SessionConfig::default());
    let input = format!(
        "a LOGIN alice secret\r\nb SELECT INBOX\r\nc APPEND INBOX {{{}}}\r\n",
        MSG1.len()
    );
    let reply = c.send(&mut world, &input);
    assert!(
        reply.starts_with("a OK Logged in\r\n* 0 EXISTS\r\n"),
        "{reply}"
    );
    assert!(
        reply.ends_with("b OK [READ-WRITE] SELECT completed\r\n+ Ready for literal data\r\n"),
        "{reply}"
    );
    let uv = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map_or(0, |m| m.uidvalidity);
    assert_eq!(
        c.send(&mut world, &format!("{MSG1}\r\nd NOOP\r\n")),
        format!(
            "* 1 EXISTS\r\nc OK [APPENDUID {uv} 1] APPEND completed\r\nd OK NOOP completed\r\n"
        )
    );
    // While an action is pending the session takes no further command.
    let step = c.session.feed(
        b"e NOOP\r\nf STORE 1 +FLAGS (\\Seen)\r\ng NOOP\r\n",
        Some(&mut world),
    );
    assert_eq!(step.reply, b"e OK NOOP completed\r\n");
    let Some(Action::Apply(ops)) = step.action else {
        panic!("expected an apply");
    };
    let step = c.session.feed(b"h NOOP\r\n", Some(&mut world));
    assert_eq!(step, Step::default());
    let results = world.apply(ops);
    let step = c.session.applied(results, &mut world);
    assert_eq!(
        step.reply,
        b"* 1 FETCH (FLAGS (\\Seen))\r\nf OK STORE completed\r\ng OK NOOP completed\r\nh OK NOOP completed\r\n"
    );
}

/// What a client knows of the selected mailbox: each message's flags, if it was told them.
#[derive(Debug, Default)]
struct ClientView {
    flags: Vec<Option<String>>,
}

impl ClientView {
    /// Applies untagged EXISTS, EXPUNGE and FETCH FLAGS lines in order.
    fn learn(&mut self, reply: &str) {
        for line in reply.split("\r\n") {
            let words: Vec<&str> = line.split(' ').collect();
            let count = self.flags.len();
            match words.as_slice() {
                ["*", n, "EXISTS"] => {
                    let n: usize = n.parse().unwrap_or(usize::MAX);
                    assert!(n >= count, "EXISTS {n} below {count}: {reply}");
                    self.flags.resize(n, None);
                }
                ["*", n, "EXPUNGE"] => {
                    let n: usize = n.parse().unwrap_or(0);
                    assert!(n >= 1 && n <= count, "EXPUNGE {n} of {count}: {reply}");
                    self.flags.remove(n - 1);
                }
                ["*", n, "FETCH", ..] => {
                    let n: usize = n.parse().unwrap_or(0);
                    assert!(n >= 1 && n <= count, "FETCH {n} of {count}: {reply}");
                    if let Some(at) = line.find("FLAGS (") {
                        let rest = &line[at + 7..];
                        let end = rest.find(')').unwrap_or(rest.len());
                        self.flags[n - 1] = Some(rest[..end].to_string());
                    }
                }
                _ => {}
            }
        }
    }

    /// Asserts the view matches the durable mailbox: count and every known flag list.
    fn assert_exact(&self, world: &World, at: &str) {
        let messages: Vec<&store::Message> = world
            .shard
            .mailbox(ACCOUNT, "INBOX")
            .map(|m| m.messages.values().collect())
            .unwrap_or_default();
        assert_eq!(self.flags.len(), messages.len(), "{at}: count");
        for (seq, (known, msg)) in self.flags.iter().zip(&messages).enumerate() {
            if let Some(flags) = known {
                assert_eq!(*flags, msg.flags.join(" "), "{at}: flags of {}", seq + 1);
            }
        }
    }
}

#[test]
fn random_concurrent_changes_keep_the_view_exact() {
    for seed in 0..12u64 {
        let mut rng = crate::disk::SplitMix64::new(seed);
        let mut world = World::new();
        let mut a = Client::logged_in(&mut world);
        let mut b = Client::logged_in(&mut world);
        let mut view = ClientView::default();
        view.learn(&select_inbox(&mut world, &mut a));
        select_inbox(&mut world, &mut b);
        for step in 0..60 {
            let uid = 1 + rng.below(8);
            let b_cmd = match rng.below(5) {
                0 => format!("b APPEND INBOX {{{}+}}\r\n{MSG1}\r\n", MSG1.len()),
                1 => "b STORE 1:* -FLAGS.SILENT (\\Deleted)\r\n".to_string(),
                2 => format!("b UID STORE {uid} +FLAGS.SILENT (\\Deleted)\r\n"),
                3 => format!("b UID STORE {uid} FLAGS.SILENT ($K{})\r\n", rng.below(3)),
                _ => "b EXPUNGE\r\n".to_string(),
            };
            b.send(&mut world, &b_cmd);
            b.send(&mut world, "bn NOOP\r\n");
            let (a_cmd, expunge_ok) = match rng.below(6) {
                0 => ("a FETCH 1:* (FLAGS)\r\n", false),
                1 => ("a STORE 1:* +FLAGS (\\Seen)\r\n", false),
                2 => ("a SEARCH ALL\r\n", false),
                3 => ("a UID FETCH 1:* (FLAGS)\r\n", true),
                4 => ("a UID STORE 1:* -FLAGS (\\Seen)\r\n", true),
                _ => ("a NOOP\r\n", true),
            };
            let a_cmd = if view.flags.is_empty() && !expunge_ok {
                "a NOOP\r\n"
            } else {
                a_cmd
            };
            let reply = a.send(&mut world, a_cmd);
            if !expunge_ok && !view.flags.is_empty() {
                assert!(
                    !reply.contains(" EXPUNGE\r\n"),
                    "seed {seed} step {step}: {reply}"
                );
            }
            view.learn(&reply);
            if a_cmd == "a NOOP\r\n" {
                view.assert_exact(&world, &format!("seed {seed} step {step}"));
            }
        }
        view.learn(&a.send(&mut world, "z NOOP\r\n"));
        view.assert_exact(&world, &format!("seed {seed} end"));
    }
}

#[test]
fn input_split_anywhere_gives_the_same_replies() {
    let script = format!(
        "a LOGIN {{5}}\r\nalice secret\r\nb SELECT INBOX\r\nc APPEND INBOX (\\Seen) {{{}}}\r\n{MSG1}\r\n\
         d FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\ne IDLE\r\nDONE\r\nf LOGOUT\r\n",
        MSG1.len()
    );
    let mut whole_world = World::new();
    let mut whole = Client::new(SessionConfig::default());
    let expected = whole.send(&mut whole_world, &script);
    assert_eq!(
        expected,
        "+ Ready for literal data\r\na OK Logged in\r\n\
         * 0 EXISTS\r\n* 0 RECENT\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n\
         * OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT 1] Predicted next UID\r\n\
         * OK [HIGHESTMODSEQ 1] Highest\r\nb OK [READ-WRITE] SELECT completed\r\n\
         + Ready for literal data\r\n* 1 EXISTS\r\nc OK [APPENDUID 1 1] APPEND completed\r\n\
         * 1 FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: one\r\n\r\n)\r\n\
         d OK FETCH completed\r\n+ idling\r\ne OK IDLE terminated\r\n\
         * BYE treehouse logging out\r\nf OK LOGOUT completed\r\n"
    );
    for chunk in [1, 2, 7] {
        let mut world = World::new();
        let mut c = Client::new(SessionConfig::default());
        let mut got = String::new();
        for piece in script.as_bytes().chunks(chunk) {
            got.push_str(&c.send_bytes(&mut world, piece));
        }
        assert_eq!(got, expected, "chunks of {chunk} bytes");
        assert!(c.closed);
    }
}

#[test]
fn starttls_drops_commands_sent_with_it_and_is_offered_once() {
    let mut world = World::new();
    let cfg = SessionConfig {
        starttls: true,
        ..SessionConfig::default()
    };
    let mut client = Client::new(cfg);
    let caps = client.send(&mut world, "a CAPABILITY\r\n");
    assert!(caps.contains(" STARTTLS"), "{caps}");
    // The LOGIN rides in the same packet as STARTTLS (the CVE-2011-0411 injection).
    let reply = client.send(
        &mut world,
        &format!("b STARTTLS\r\nc LOGIN {ACCOUNT} secret\r\n"),
    );
    assert_eq!(reply, "b OK Begin TLS negotiation now\r\n");
    assert_eq!(
        client.session.account(),
        None,
        "the injected LOGIN never ran"
    );
    let caps = client.send(&mut world, "d CAPABILITY\r\n");
    assert!(!caps.contains("STARTTLS"), "{caps}");
    let again = client.send(&mut world, "e STARTTLS\r\n");
    assert_eq!(again, "e BAD STARTTLS is not available\r\n");
}

#[test]
fn untrusted_listener_refuses_passwords_before_tls() {
    let mut world = World::new();
    let cfg = SessionConfig {
        starttls: true,
        plaintext_login: false,
        ..SessionConfig::default()
    };
    let mut client = Client::new(cfg);
    let caps = client.send(&mut world, "a CAPABILITY\r\n");
    assert!(
        caps.contains(" LOGINDISABLED")
            && caps.contains(" AUTH=SCRAM-SHA-256")
            && !caps.contains("AUTH=PLAIN")
            && !caps.contains("AUTH=LOGIN"),
        "{caps}"
    );
    let login = client.send(&mut world, &format!("b LOGIN {ACCOUNT} secret\r\n"));
    assert_eq!(login, "b NO [PRIVACYREQUIRED] Use STARTTLS first\r\n");
    let auth = client.send(&mut world, "c AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(auth, "c NO [PRIVACYREQUIRED] Use STARTTLS first\r\n");
    let auth = client.send(&mut world, "c2 AUTHENTICATE LOGIN\r\n");
    assert_eq!(auth, "c2 NO [PRIVACYREQUIRED] Use STARTTLS first\r\n");
    assert_eq!(
        client.send(&mut world, "d STARTTLS\r\n"),
        "d OK Begin TLS negotiation now\r\n"
    );
    let caps = client.send(&mut world, "e CAPABILITY\r\n");
    assert!(
        caps.contains("AUTH=PLAIN") && !caps.contains("LOGINDISABLED"),
        "{caps}"
    );
    let login = client.send(&mut world, &format!("f LOGIN {ACCOUNT} secret\r\n"));
    assert!(login.ends_with("f OK Logged in\r\n"), "{login}");
}

#[test]
fn partial_body_fetch_reads_only_its_range() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz12\r\n";
    let body = format!("Subject: big\r\n\r\n{}", line.repeat(2000));
    assert!(append_text(&mut world, &mut c, "INBOX", &body).contains("OK"));
    c.send(&mut world, "s SELECT INBOX\r\n");
    world.body_bytes_read = 0;
    let reply = c.send(
        &mut world,
        "f FETCH 1 (UID BODY.PEEK[]<16.10> BODY.PEEK[]<100000.4>)\r\n",
    );
    let expected_tail = &body[100_000..100_004];
    assert_eq!(
        reply,
        format!(
            "* 1 FETCH (UID 1 BODY[]<16> {{10}}\r\n0123456789 BODY[]<100000> {{4}}\r\n{expected_tail})\r\nf OK FETCH completed\r\n"
        )
    );
    // One range covering both windows, far less than the whole message.
    assert_eq!(world.body_bytes_read, 100_004 - 16);
    world.body_bytes_read = 0;
    let reply = c.send(&mut world, "g FETCH 1 (BODY.PEEK[]<150000.10>)\r\n");
    assert_eq!(
        reply,
        format!(
            "* 1 FETCH (BODY[]<150000> {{10}}\r\n{})\r\ng OK FETCH completed\r\n",
            &body[150_000..150_010]
        )
    );
    assert_eq!(world.body_bytes_read, 10);
    // Past the end: an empty string at the origin asked (RFC 9051 §6.4.5).
    let reply = c.send(&mut world, "h FETCH 1 (BODY.PEEK[]<999999.10>)\r\n");
    assert_eq!(
        reply,
        "* 1 FETCH (BODY[]<999999> {0}\r\n)\r\nh OK FETCH completed\r\n"
    );
    // Anything more than BODY[]<partial> reads the whole message, as before.
    world.body_bytes_read = 0;
    c.send(
        &mut world,
        "i FETCH 1 (BODY.PEEK[]<0.10> BODY.PEEK[TEXT]<0.10>)\r\n",
    );
    assert_eq!(world.body_bytes_read, body.len() as u64);
}

/// The mailbox with MSG1, MSG2, MSG3, MSG1, MSG2 (UIDs 1-5), selected.
fn five_selected(world: &mut World) -> Client {
    let mut c = Client::logged_in(world);
    for body in [MSG1, MSG2, MSG3, MSG1, MSG2] {
        append_text(world, &mut c, "INBOX", body);
    }
    select_inbox(world, &mut c);
    c
}

/// Sends each command and checks its exact reply.
fn transcript(world: &mut World, c: &mut Client, steps: &[(&str, &str)]) {
    for (command, reply) in steps {
        assert_eq!(c.send(world, command), *reply, "after {command:?}");
    }
}

#[test]
fn search_save_and_dollar_refer_to_saved_uids() {
    let mut world = World::new();
    let mut c = five_selected(&mut world);
    let uv = |w: &World, name: &str| w.shard.mailbox(ACCOUNT, name).map_or(0, |m| m.uidvalidity);
    let (archive, trash) = (uv(&world, "Archive"), uv(&world, "Trash"));
    transcript(
        &mut world,
        &mut c,
        &[
            // Before any SAVE, `$` is the empty set.
            ("a FETCH $ (FLAGS)\r\n", "a OK FETCH completed\r\n"),
            (
                "a2 UID SEARCH $\r\n",
                "* SEARCH\r\na2 OK SEARCH completed\r\n",
            ),
            // SAVE alone: only the tagged OK.
            (
                "b SEARCH RETURN (SAVE) SUBJECT two\r\n",
                "b OK SEARCH completed\r\n",
            ),
            (
                "c FETCH $ (UID)\r\n",
                "* 2 FETCH (UID 2)\r\n* 5 FETCH (UID 5)\r\nc OK FETCH completed\r\n",
            ),
            (
                "d UID SEARCH $\r\n",
                "* SEARCH 2 5\r\nd OK SEARCH completed\r\n",
            ),
            (
                "d2 SEARCH 1,$\r\n",
                "* SEARCH 1 2 5\r\nd2 OK SEARCH completed\r\n",
            ),
            // With MIN (or MAX) and neither ALL nor COUNT, only those are saved.
            (
                "e SEARCH RETURN (SAVE MIN) SUBJECT two\r\n",
                "* ESEARCH (TAG \"e\") MIN 2\r\ne OK SEARCH completed\r\n",
            ),
            (
                "f UID SEARCH RETURN (ALL) $\r\n",
                "* ESEARCH (TAG \"f\") UID ALL 2\r\nf OK SEARCH completed\r\n",
            ),
            (
                "g SEARCH RETURN (MAX SAVE MIN) ALL\r\n",
                "* ESEARCH (TAG \"g\") MIN 1 MAX 5\r\ng OK SEARCH completed\r\n",
            ),
            (
                "h UID FETCH $ (FLAGS)\r\n",
                "* 1 FETCH (UID 1 FLAGS ())\r\n* 5 FETCH (UID 5 FLAGS ())\r\nh OK FETCH completed\r\n",
            ),
            // With COUNT (or ALL), everything that matched is saved.
            (
                "i SEARCH RETURN (SAVE COUNT MIN) SUBJECT one\r\n",
                "* ESEARCH (TAG \"i\") MIN 1 COUNT 2\r\ni OK SEARCH completed\r\n",
            ),
            (
                "j UID SEARCH RETURN () $\r\n",
                "* ESEARCH (TAG \"j\") UID ALL 1,4\r\nj OK SEARCH completed\r\n",
            ),
            // A failed SEARCH with SAVE empties `$`.
            (
                "k SEARCH RETURN (SAVE) CHARSET KOI8-R ALL\r\n",
                "k NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset\r\n",
            ),
            (
                "l UID SEARCH $\r\n",
                "* SEARCH\r\nl OK SEARCH completed\r\n",
            ),
            ("l2 COPY $ Archive\r\n", "l2 OK No messages\r\n"),
            ("l3 UID MOVE $ Trash\r\n", "l3 OK No messages\r\n"),
            // COPY, STORE and MOVE, with and without UID.
            (
                "m SEARCH RETURN (SAVE) SUBJECT two\r\n",
                "m OK SEARCH completed\r\n",
            ),
            // A SEARCH with SAVE sees `$` as it was before it.
            (
                "m2 SEARCH RETURN (SAVE) $ UID 4:*\r\n",
                "m2 OK SEARCH completed\r\n",
            ),
            (
                "m3 UID SEARCH $\r\n",
                "* SEARCH 5\r\nm3 OK SEARCH completed\r\n",
            ),
            (
                "m4 SEARCH RETURN (SAVE) SUBJECT two\r\n",
                "m4 OK SEARCH completed\r\n",
            ),
            (
                "n UID COPY $ Archive\r\n",
                &format!("n OK [COPYUID {archive} 2,5 1:2] COPY completed\r\n"),
            ),
            (
                "o STORE 1,$ +FLAGS.SILENT (\\Deleted)\r\n",
                "o OK STORE completed\r\n",
            ),
            (
                "o2 UID STORE $ +FLAGS (\\Flagged)\r\n",
                "* 2 FETCH (UID 2 FLAGS (\\Deleted \\Flagged))\r\n\
                 * 5 FETCH (UID 5 FLAGS (\\Deleted \\Flagged))\r\no2 OK STORE completed\r\n",
            ),
            (
                "p MOVE $ Trash\r\n",
                &format!(
                    "* OK [COPYUID {trash} 2,5 1:2] Moved\r\n* 5 EXPUNGE\r\n* 2 EXPUNGE\r\n\
                     p OK MOVE completed\r\n"
                ),
            ),
            // Expunged messages drop out of `$`.
            (
                "q UID SEARCH $\r\n",
                "* SEARCH\r\nq OK SEARCH completed\r\n",
            ),
            ("r FETCH $ (UID)\r\n", "r OK FETCH completed\r\n"),
            (
                "s SEARCH RETURN (SAVE) ALL\r\n",
                "s OK SEARCH completed\r\n",
            ),
            (
                "s2 UID SEARCH $\r\n",
                "* SEARCH 1 3 4\r\ns2 OK SEARCH completed\r\n",
            ),
            // UID EXPUNGE $ expunges the saved messages marked \Deleted (UID 1).
            (
                "s3 SEARCH RETURN (SAVE) UID 1:3\r\n",
                "s3 OK SEARCH completed\r\n",
            ),
            (
                "s4 UID EXPUNGE $\r\n",
                "* 1 EXPUNGE\r\ns4 OK EXPUNGE completed\r\n",
            ),
            (
                "s5 UID SEARCH $\r\n",
                "* SEARCH 3\r\ns5 OK SEARCH completed\r\n",
            ),
        ],
    );
    assert_eq!(
        world
            .shard
            .mailbox(ACCOUNT, "Trash")
            .map(|m| m.messages.len()),
        Some(2)
    );
    // SELECT and EXAMINE forget `$`.
    for reselect in ["t SELECT INBOX\r\n", "t EXAMINE INBOX\r\n"] {
        c.send(&mut world, "u SEARCH RETURN (SAVE) ALL\r\n");
        assert!(c.send(&mut world, reselect).starts_with("* 2 EXISTS\r\n"));
        assert_eq!(
            c.send(&mut world, "v UID SEARCH $\r\n"),
            "* SEARCH\r\nv OK SEARCH completed\r\n"
        );
    }
}

#[test]
fn imap4rev2_enabled_changes_what_the_server_says() {
    let mut world = World::new();
    let mut c = Client::logged_in(&mut world);
    for body in [MSG1, MSG2, MSG3] {
        append_text(&mut world, &mut c, "INBOX", body);
    }
    let uv = world
        .shard
        .mailbox(ACCOUNT, "INBOX")
        .map_or(0, |m| m.uidvalidity);
    c.send(&mut world, "a CREATE work/2024\r\n");
    c.send(&mut world, "a2 DELETE work\r\n");
    c.send(&mut world, "a3 CREATE Entw&APw-rfe\r\n");
    let drafts_uv = world
        .shard
        .mailbox(ACCOUNT, "Entwürfe")
        .map_or(0, |m| m.uidvalidity);
    let rev1_select = select_inbox(&mut world, &mut c);
    assert!(
        rev1_select.contains("* 0 RECENT\r\n* FLAGS"),
        "{rev1_select}"
    );
    assert!(rev1_select.contains("* OK [UNSEEN 1]"), "{rev1_select}");
    // Without ENABLE, IMAP4rev1 as before.
    transcript(
        &mut world,
        &mut c,
        &[
            (
                "b LIST \"\" work\r\n",
                "* LIST (\\Noselect \\HasChildren) \"/\" work\r\nb OK LIST completed\r\n",
            ),
            (
                "b2 SEARCH SUBJECT two\r\n",
                "* SEARCH 2\r\nb2 OK SEARCH completed\r\n",
            ),
            (
                "b3 STATUS INBOX (RECENT)\r\n",
                "* STATUS INBOX (RECENT 0)\r\nb3 OK STATUS completed\r\n",
            ),
            (
                "b4 LIST \"\" Entw*\r\n",
                "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\nb4 OK LIST completed\r\n",
            ),
            (
                "c ENABLE IMAP4rev2\r\n",
                "* ENABLED IMAP4rev2\r\nc OK ENABLE completed\r\n",
            ),
            (
                "c2 ENABLE IMAP4rev2\r\n",
                "* ENABLED\r\nc2 OK ENABLE completed\r\n",
            ),
            // No RECENT, no UNSEEN, and the mailbox's LIST response.
            (
                "d SELECT INBOX\r\n",
                &format!(
                    "* 3 EXISTS\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
                     * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] \
                     Flags permitted\r\n* OK [UIDVALIDITY {uv}] UIDs valid\r\n\
                     * OK [UIDNEXT 4] Predicted next UID\r\n* OK [HIGHESTMODSEQ 4] Highest\r\n\
                     * LIST (\\HasNoChildren) \"/\" INBOX\r\nd OK [READ-WRITE] SELECT completed\r\n"
                ),
            ),
            // SEARCH without RETURN answers with ESEARCH.
            (
                "e SEARCH SUBJECT two\r\n",
                "* ESEARCH (TAG \"e\") ALL 2\r\ne OK SEARCH completed\r\n",
            ),
            (
                "e2 UID SEARCH SUBJECT nothing\r\n",
                "* ESEARCH (TAG \"e2\") UID\r\ne2 OK SEARCH completed\r\n",
            ),
            // RECENT, NEW and OLD are gone.
            (
                "f SEARCH NOT NEW\r\n",
                "f BAD RECENT, NEW and OLD are not in IMAP4rev2\r\n",
            ),
            (
                "f2 UID SEARCH OR SUBJECT two RECENT\r\n",
                "f2 BAD RECENT, NEW and OLD are not in IMAP4rev2\r\n",
            ),
            (
                "f3 SEARCH OLD\r\n",
                "f3 BAD RECENT, NEW and OLD are not in IMAP4rev2\r\n",
            ),
            (
                "g STATUS INBOX (MESSAGES RECENT)\r\n",
                "g BAD RECENT is not in IMAP4rev2\r\n",
            ),
            (
                "g2 STATUS INBOX (MESSAGES)\r\n",
                "* STATUS INBOX (MESSAGES 3)\r\ng2 OK STATUS completed\r\n",
            ),
            (
                "g3 LIST \"\" INBOX RETURN (STATUS (RECENT))\r\n",
                "g3 BAD RECENT is not in IMAP4rev2\r\n",
            ),
            // A plain LIST shows missing parents as \NonExistent.
            (
                "h LIST \"\" work\r\n",
                "* LIST (\\NonExistent \\HasChildren) \"/\" work\r\nh OK LIST completed\r\n",
            ),
            // Mailbox names are UTF-8.
            (
                "i LIST \"\" Entw*\r\n",
                "* LIST (\\HasNoChildren) \"/\" {9}\r\nEntwürfe\r\ni OK LIST completed\r\n",
            ),
            (
                "j EXAMINE \"Entwürfe\"\r\n",
                &format!(
                    "* 0 EXISTS\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
                     * OK [PERMANENTFLAGS ()] Read-only mailbox\r\n\
                     * OK [UIDVALIDITY {}] UIDs valid\r\n\
                     * OK [UIDNEXT 1] Predicted next UID\r\n* OK [HIGHESTMODSEQ 1] Highest\r\n\
                     * LIST (\\HasNoChildren) \"/\" {{9}}\r\nEntwürfe\r\n\
                     j OK [READ-ONLY] EXAMINE completed\r\n",
                    drafts_uv
                ),
            ),
        ],
    );
}
