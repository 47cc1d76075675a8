//! Transcript tests of the POP3 session: exact reply bytes and actions.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;
use crate::sasl::tests::client_proof;
use crate::store::{BodyLocation, Mailbox, Message};

const FIRST: &[u8] = b"Subject: one\r\n\r\nhello\r\n.dot line\r\n..two dots\r\n";
const SECOND: &[u8] = b"Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n";

fn config(plaintext_login: bool) -> SessionConfig {
    SessionConfig {
        stls: true,
        plaintext_login,
        sasl_nonce: "n0nce".to_string(),
        ..SessionConfig::default()
    }
}

fn session(plaintext_login: bool) -> Session {
    Session::new(config(plaintext_login))
}

fn text(step: &Step) -> &str {
    std::str::from_utf8(&step.reply).expect("replies are ASCII")
}

/// Feeds `input` and checks the exact reply and action.
fn exchange(s: &mut Session, input: &str, reply: &str, action: Option<Action>) {
    let step = s.feed(input.as_bytes());
    assert_eq!(text(&step), reply, "reply to {input:?}");
    assert_eq!(step.action, action, "action after {input:?}");
}

/// The maildrop of the two test messages, with UIDs 3 and 7 in UIDVALIDITY 0x1234.
fn maildrop() -> Maildrop {
    Maildrop {
        uidvalidity: 0x1234,
        messages: vec![
            MaildropMessage {
                uid: 3,
                size_bytes: FIRST.len() as u64,
            },
            MaildropMessage {
                uid: 7,
                size_bytes: SECOND.len() as u64,
            },
        ],
    }
}

/// A session logged in as alice with the test maildrop locked.
fn logged_in() -> Session {
    let mut s = session(true);
    exchange(&mut s, "USER alice\r\n", "+OK Send PASS\r\n", None);
    let step = s.feed(b"PASS secret\r\n");
    assert!(matches!(
        step.action,
        Some(Action::Login(sasl::Request::Password { .. }))
    ));
    let step = s.authenticated(Some("alice@example.test".into()));
    assert_eq!(
        step.action,
        Some(Action::Lock {
            account: "alice@example.test".into()
        })
    );
    let step = s.locked(Lock::Locked(maildrop()));
    assert_eq!(
        text(&step),
        "+OK Logged in, maildrop has 2 messages (80 octets)\r\n"
    );
    assert_eq!(s.account(), Some("alice@example.test"));
    s
}

#[test]
fn greeting_and_capabilities_on_a_trusted_listener() {
    let mut s = session(true);
    assert_eq!(s.greeting(), b"+OK treehouse POP3 ready\r\n");
    exchange(
        &mut s,
        "CAPA\r\n",
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN LOGIN\r\nSTLS\r\n\
         IMPLEMENTATION treehouse\r\n.\r\n",
        None,
    );
    exchange(
        &mut s,
        "auth\r\n",
        "+OK\r\nSCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n",
        None,
    );
}

#[test]
fn before_tls_an_untrusted_listener_refuses_passwords() {
    let mut s = session(false);
    exchange(
        &mut s,
        "CAPA\r\n",
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nSASL SCRAM-SHA-256\r\nSTLS\r\nIMPLEMENTATION treehouse\r\n.\r\n",
        None,
    );
    let refused =
        "-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first\r\n";
    exchange(&mut s, "USER alice\r\n", refused, None);
    exchange(&mut s, "PASS secret\r\n", "-ERR Send USER first\r\n", None);
    exchange(&mut s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", refused, None);
    exchange(&mut s, "AUTH LOGIN\r\n", refused, None);
    exchange(&mut s, "AUTH\r\n", "+OK\r\nSCRAM-SHA-256\r\n.\r\n", None);
    // SCRAM never reveals the password, so it is allowed.
    exchange(&mut s, "AUTH SCRAM-SHA-256\r\n", "+ \r\n", None);
    exchange(&mut s, "*\r\n", "-ERR Authentication cancelled\r\n", None);
}

#[test]
fn stls_discards_pipelined_input_and_then_allows_passwords() {
    let mut s = session(false);
    exchange(
        &mut s,
        "STLS\r\nUSER mallory\r\nPASS evil\r\n",
        "+OK Begin TLS negotiation\r\n",
        Some(Action::StartTls),
    );
    s.tls_started();
    // Nothing that came in the clear is run inside TLS: PASS finds no USER.
    exchange(&mut s, "PASS evil\r\n", "-ERR Send USER first\r\n", None);
    exchange(
        &mut s,
        "CAPA\r\n",
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN LOGIN\r\n\
         IMPLEMENTATION treehouse\r\n.\r\n",
        None,
    );
    exchange(&mut s, "STLS\r\n", "-ERR TLS is already active\r\n", None);
    exchange(&mut s, "USER alice\r\n", "+OK Send PASS\r\n", None);
}

#[test]
fn stls_is_refused_where_the_runtime_cannot_start_tls() {
    let mut s = Session::new(SessionConfig::default());
    exchange(&mut s, "STLS\r\n", "-ERR STLS is not available\r\n", None);
}

#[test]
fn user_and_pass_with_spaces_in_the_password() {
    let mut s = session(true);
    exchange(&mut s, "USER alice\r\n", "+OK Send PASS\r\n", None);
    exchange(
        &mut s,
        "PASS pass word \r\nSTAT\r\n",
        "",
        Some(Action::Login(sasl::Request::Password {
            login: "alice".into(),
            password: "pass word ".into(),
        })),
    );
    // The pipelined STAT waits for the lock.
    let step = s.authenticated(Some("alice".into()));
    assert_eq!(text(&step), "");
    assert_eq!(
        step.action,
        Some(Action::Lock {
            account: "alice".into()
        })
    );
    let step = s.locked(Lock::Locked(maildrop()));
    assert_eq!(
        text(&step),
        "+OK Logged in, maildrop has 2 messages (80 octets)\r\n+OK 2 80\r\n"
    );
}

#[test]
fn failed_login_answers_auth_and_stays_in_authorization() {
    let mut s = session(true);
    exchange(&mut s, "USER alice\r\n", "+OK Send PASS\r\n", None);
    let step = s.feed(b"PASS wrong\r\n");
    assert!(matches!(
        step.action,
        Some(Action::Login(sasl::Request::Password { .. }))
    ));
    let step = s.authenticated(None);
    assert_eq!(text(&step), "-ERR [AUTH] Authentication failed\r\n");
    assert_eq!(step.action, None);
    exchange(&mut s, "PASS again\r\n", "-ERR Send USER first\r\n", None);
    exchange(&mut s, "USER alice\r\n", "+OK Send PASS\r\n", None);
    exchange(&mut s, "PASS\r\n", "-ERR Missing password\r\n", None);
    // Answers the session did not ask for change nothing.
    assert_eq!(s.locked(Lock::InUse), Step::default());
    assert_eq!(s.applied(Ok(())), Step::default());
    exchange(&mut s, "STAT\r\n", "-ERR Log in first\r\n", None);
    exchange(
        &mut s,
        "QUIT\r\n",
        "+OK treehouse POP3 signing off\r\n",
        Some(Action::Close),
    );
    exchange(&mut s, "STAT\r\n", "", None);
}

#[test]
fn auth_plain_with_initial_response_and_via_challenge() {
    let mut s = session(true);
    let response = BASE64.encode(b"\0alice\0secret");
    let wanted = Some(Action::Login(sasl::Request::Password {
        login: "alice".into(),
        password: "secret".into(),
    }));
    exchange(
        &mut s,
        &format!("AUTH PLAIN {response}\r\n"),
        "",
        wanted.clone(),
    );
    assert_eq!(
        text(&s.authenticated(None)),
        "-ERR [AUTH] Authentication failed\r\n"
    );
    exchange(&mut s, "AUTH plain\r\n", "+ \r\n", None);
    exchange(&mut s, &format!("{response}\r\n"), "", wanted);
    let step = s.authenticated(Some("alice".into()));
    assert_eq!(
        step.action,
        Some(Action::Lock {
            account: "alice".into()
        })
    );
}

#[test]
fn auth_plain_errors() {
    let mut s = session(true);
    // "=" is an empty initial response, which PLAIN cannot use.
    exchange(
        &mut s,
        "AUTH PLAIN =\r\n",
        "-ERR Malformed authentication exchange\r\n",
        None,
    );
    exchange(
        &mut s,
        "AUTH PLAIN !!!\r\n",
        "-ERR Invalid base64 in the initial response\r\n",
        None,
    );
    exchange(&mut s, "AUTH PLAIN\r\n", "+ \r\n", None);
    exchange(
        &mut s,
        "not base64!\r\n",
        "-ERR Malformed authentication exchange\r\n",
        None,
    );
    exchange(&mut s, "AUTH PLAIN\r\n", "+ \r\n", None);
    exchange(&mut s, "*\r\n", "-ERR Authentication cancelled\r\n", None);
    exchange(
        &mut s,
        "AUTH CRAM-MD5\r\n",
        "-ERR Unsupported authentication mechanism\r\n",
        None,
    );
    // Another authorization identity is refused as credentials.
    let other = BASE64.encode(b"bob\0alice\0secret");
    exchange(
        &mut s,
        &format!("AUTH PLAIN {other}\r\n"),
        "-ERR [AUTH] Authentication failed\r\n",
        None,
    );
}

#[test]
fn auth_login_prompts_for_user_and_password() {
    let mut s = session(true);
    exchange(&mut s, "AUTH LOGIN\r\n", "+ VXNlcm5hbWU6\r\n", None);
    exchange(
        &mut s,
        &format!("{}\r\n", BASE64.encode("alice")),
        "+ UGFzc3dvcmQ6\r\n",
        None,
    );
    exchange(
        &mut s,
        &format!("{}\r\n", BASE64.encode("secret")),
        "",
        Some(Action::Login(sasl::Request::Password {
            login: "alice".into(),
            password: "secret".into(),
        })),
    );
    // With an initial response the user name prompt is skipped.
    s.authenticated(None);
    exchange(
        &mut s,
        &format!("AUTH LOGIN {}\r\n", BASE64.encode("alice")),
        "+ UGFzc3dvcmQ6\r\n",
        None,
    );
}

/// Runs SCRAM-SHA-256 as a client with `password`; the session ends waiting on ScramDone.
fn scram(s: &mut Session, password: &str) -> Step {
    let keys = ScramKeys::derive("secret", b"salty", 64);
    let bare = "n=alice,r=cl1ent";
    let step = s.feed(
        format!(
            "AUTH SCRAM-SHA-256 {}\r\n",
            BASE64.encode(format!("n,,{bare}"))
        )
        .as_bytes(),
    );
    assert_eq!(
        step.action,
        Some(Action::Login(sasl::Request::ScramKeys {
            login: "alice".into()
        }))
    );
    let step = s.scram_keys(Some(("alice@example.test".into(), keys)));
    let challenge = text(&step).strip_prefix("+ ").expect("a challenge");
    let server_first =
        String::from_utf8(BASE64.decode(challenge.trim_end()).expect("base64")).expect("utf-8");
    // The server nonce is the runtime's stem and the exchange's count.
    assert!(
        server_first.starts_with("r=cl1entn0nce1,s="),
        "{server_first}"
    );
    let without_proof = "c=biws,r=cl1entn0nce1";
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let proof = client_proof(password, b"salty", 64, &auth_message);
    s.feed(
        format!(
            "{}\r\n",
            BASE64.encode(format!("{without_proof},p={proof}"))
        )
        .as_bytes(),
    )
}

#[test]
fn auth_scram_sha256_reports_success_and_failure() {
    let mut s = session(false);
    let step = scram(&mut s, "secret");
    let server_final = text(&step).strip_prefix("+ ").expect("server-final");
    let server_final = BASE64.decode(server_final.trim_end()).expect("base64");
    assert!(server_final.starts_with(b"v="));
    exchange(
        &mut s,
        "\r\n",
        "",
        Some(Action::Login(sasl::Request::ScramDone {
            login: "alice".into(),
            account: Some("alice@example.test".into()),
        })),
    );
    let step = s.authenticated(Some("alice@example.test".into()));
    assert_eq!(
        step.action,
        Some(Action::Lock {
            account: "alice@example.test".into()
        })
    );

    let mut s = session(false);
    let step = scram(&mut s, "wrong");
    assert_eq!(text(&step), "");
    assert_eq!(
        step.action,
        Some(Action::Login(sasl::Request::ScramDone {
            login: "alice".into(),
            account: None
        }))
    );
    let step = s.authenticated(None);
    assert_eq!(text(&step), "-ERR [AUTH] Authentication failed\r\n");
}

#[test]
fn auth_scram_for_an_unknown_login_is_recorded_as_a_failure() {
    let mut s = session(false);
    let first = BASE64.encode("n,,n=nobody,r=abc");
    let step = s.feed(format!("AUTH SCRAM-SHA-256 {first}\r\n").as_bytes());
    assert_eq!(
        step.action,
        Some(Action::Login(sasl::Request::ScramKeys {
            login: "nobody".into()
        }))
    );
    let step = s.scram_keys(None);
    assert_eq!(
        step.action,
        Some(Action::Login(sasl::Request::ScramDone {
            login: "nobody".into(),
            account: None
        }))
    );
    assert_eq!(
        text(&s.authenticated(None)),
        "-ERR [AUTH] Authentication failed\r\n"
    );
}

#[test]
fn maildrop_in_use_is_refused_with_in_use() {
    let mut s = session(true);
    s.feed(b"USER alice\r\nPASS secret\r\n");
    s.authenticated(Some("alice".into()));
    let step = s.locked(Lock::InUse);
    assert_eq!(
        text(&step),
        "-ERR [IN-USE] Mailbox is locked by another POP3 session\r\n"
    );
    assert_eq!(s.account(), None);
    exchange(&mut s, "STAT\r\n", "-ERR Log in first\r\n", None);
    s.feed(b"USER alice\r\nPASS secret\r\n");
    s.authenticated(Some("alice".into()));
    assert_eq!(
        text(&s.locked(Lock::Unavailable("shard 3 is read-only".into()))),
        "-ERR [SYS/TEMP] Mailbox is not available: shard 3 is read-only\r\n"
    );
}

#[test]
fn stat_list_and_uidl() {
    let mut s = logged_in();
    exchange(&mut s, "STAT\r\n", "+OK 2 80\r\n", None);
    exchange(
        &mut s,
        "LIST\r\n",
        "+OK 2 messages (80 octets)\r\n1 46\r\n2 34\r\n.\r\n",
        None,
    );
    exchange(&mut s, "list 2\r\n", "+OK 2 34\r\n", None);
    exchange(
        &mut s,
        "UIDL\r\n",
        "+OK Unique-ID listing follows\r\n1 0000000300001234\r\n2 0000000700001234\r\n.\r\n",
        None,
    );
    exchange(&mut s, "UIDL 1\r\n", "+OK 1 0000000300001234\r\n", None);
    exchange(
        &mut s,
        "LIST 3\r\n",
        "-ERR No such message, only 2 messages in maildrop\r\n",
        None,
    );
    exchange(
        &mut s,
        "LIST 0\r\n",
        "-ERR No such message, only 2 messages in maildrop\r\n",
        None,
    );
    exchange(
        &mut s,
        "LIST x\r\n",
        "-ERR Invalid message number\r\n",
        None,
    );
    exchange(
        &mut s,
        "LIST 1 2\r\n",
        "-ERR Syntax error in LIST\r\n",
        None,
    );
    exchange(&mut s, "NOOP\r\n", "+OK\r\n", None);
}

#[test]
fn retr_stuffs_dots_and_top_cuts_the_body() {
    let mut s = logged_in();
    exchange(&mut s, "RETR 1\r\n", "", Some(Action::ReadBody { uid: 3 }));
    let step = s.body_read(Ok(FIRST.to_vec()));
    assert_eq!(
        text(&step),
        "+OK 46 octets\r\nSubject: one\r\n\r\nhello\r\n..dot line\r\n...two dots\r\n.\r\n"
    );
    exchange(&mut s, "TOP 2 0\r\n", "", Some(Action::ReadBody { uid: 7 }));
    assert_eq!(
        text(&s.body_read(Ok(SECOND.to_vec()))),
        "+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\n.\r\n"
    );
    s.feed(b"TOP 2 2\r\n");
    assert_eq!(
        text(&s.body_read(Ok(SECOND.to_vec()))),
        "+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\nl1\r\nl2\r\n.\r\n"
    );
    s.feed(b"TOP 2 99\r\n");
    assert_eq!(
        text(&s.body_read(Ok(SECOND.to_vec()))),
        "+OK Top of message follows\r\nSubject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n"
    );
    // A body without a final line ending still ends with CRLF "." CRLF.
    s.feed(b"RETR 2\r\n");
    assert_eq!(
        text(&s.body_read(Ok(b"A: b\r\n\r\n.".to_vec()))),
        "+OK 9 octets\r\nA: b\r\n\r\n..\r\n.\r\n"
    );
    exchange(&mut s, "TOP 1\r\n", "-ERR Syntax error in TOP\r\n", None);
    exchange(
        &mut s,
        "TOP 1 -1\r\n",
        "-ERR Invalid number of lines\r\n",
        None,
    );
}

#[test]
fn a_message_expunged_meanwhile_or_unreadable_answers_err() {
    let mut s = logged_in();
    s.feed(b"RETR 1\r\n");
    assert_eq!(
        text(&s.body_read(Err(ReadFailure::Expunged))),
        "-ERR Message 1 no longer exists\r\n"
    );
    s.feed(b"RETR 2\r\n");
    assert_eq!(
        text(&s.body_read(Err(ReadFailure::Unavailable("EIO".into())))),
        "-ERR [SYS/TEMP] Message 2 cannot be read now: EIO\r\n"
    );
    s.feed(b"TOP 2 0\r\n");
    assert_eq!(
        text(&s.body_read(Err(ReadFailure::Damaged("crc mismatch".into())))),
        "-ERR [SYS/PERM] Message 2 cannot be read: crc mismatch\r\n"
    );
    exchange(&mut s, "STAT\r\n", "+OK 2 80\r\n", None);
}

#[test]
fn dele_marks_rset_unmarks_and_quit_expunges() {
    let mut s = logged_in();
    exchange(&mut s, "DELE 1\r\n", "+OK Message 1 deleted\r\n", None);
    exchange(
        &mut s,
        "DELE 1\r\n",
        "-ERR Message 1 already deleted\r\n",
        None,
    );
    exchange(
        &mut s,
        "RETR 1\r\n",
        "-ERR Message 1 already deleted\r\n",
        None,
    );
    exchange(&mut s, "STAT\r\n", "+OK 1 34\r\n", None);
    exchange(
        &mut s,
        "LIST\r\n",
        "+OK 1 messages (34 octets)\r\n2 34\r\n.\r\n",
        None,
    );
    exchange(
        &mut s,
        "UIDL\r\n",
        "+OK Unique-ID listing follows\r\n2 0000000700001234\r\n.\r\n",
        None,
    );
    exchange(
        &mut s,
        "RSET\r\n",
        "+OK Maildrop has 2 messages (80 octets)\r\n",
        None,
    );
    exchange(&mut s, "DELE 2\r\n", "+OK Message 2 deleted\r\n", None);
    exchange(&mut s, "DELE 1\r\n", "+OK Message 1 deleted\r\n", None);
    exchange(
        &mut s,
        "QUIT\r\nNOOP\r\n",
        "",
        Some(Action::Apply(Op::Expunge {
            account: "alice@example.test".into(),
            mailbox: "INBOX".into(),
            uids: vec![3, 7],
        })),
    );
    let step = s.applied(Ok(()));
    assert_eq!(
        text(&step),
        "+OK treehouse POP3 signing off (2 messages deleted)\r\n"
    );
    assert_eq!(step.action, Some(Action::Close));
}

#[test]
fn a_failed_expunge_answers_sys_temp() {
    let mut s = logged_in();
    s.feed(b"DELE 2\r\n");
    let step = s.feed(b"QUIT\r\n");
    assert!(matches!(step.action, Some(Action::Apply(_))));
    let step = s.applied(Err("shard 1 did not make the change durable".into()));
    assert_eq!(
        text(&step),
        "-ERR [SYS/TEMP] Messages were not deleted: shard 1 did not make the change durable\r\n"
    );
    assert_eq!(step.action, Some(Action::Close));
}

#[test]
fn quit_without_deletions_changes_nothing() {
    let mut s = logged_in();
    exchange(
        &mut s,
        "QUIT\r\n",
        "+OK treehouse POP3 signing off\r\n",
        Some(Action::Close),
    );
}

#[test]
fn pipelined_commands_run_in_order_around_reads() {
    let mut s = logged_in();
    exchange(
        &mut s,
        "STAT\r\nLIST 1\r\nRETR 2\r\nNOOP\r\n",
        "+OK 2 80\r\n+OK 1 46\r\n",
        Some(Action::ReadBody { uid: 7 }),
    );
    let step = s.body_read(Ok(SECOND.to_vec()));
    assert_eq!(
        text(&step),
        "+OK 34 octets\r\nSubject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n+OK\r\n"
    );
}

#[test]
fn capabilities_after_login_and_wrong_state_commands() {
    let mut s = logged_in();
    exchange(
        &mut s,
        "CAPA\r\n",
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nIMPLEMENTATION treehouse\r\n.\r\n",
        None,
    );
    exchange(&mut s, "USER bob\r\n", "-ERR Already logged in\r\n", None);
    exchange(&mut s, "STLS\r\n", "-ERR Already logged in\r\n", None);
    exchange(&mut s, "APOP bob abc\r\n", "-ERR Unknown command\r\n", None);
    exchange(&mut s, "\r\n", "-ERR Unknown command\r\n", None);
}

#[test]
fn long_lines_are_refused_and_the_session_goes_on() {
    let mut s = session(true);
    let long = "X".repeat(3000);
    exchange(
        &mut s,
        &format!("{long}\r\nNOOP\r\n"),
        "-ERR Line too long\r\n-ERR Log in first\r\n",
        None,
    );
    // A long line arriving in pieces is discarded to its end.
    exchange(&mut s, &"Y".repeat(1500), "", None);
    exchange(&mut s, &"Y".repeat(1500), "", None);
    exchange(
        &mut s,
        "Y\r\nUSER a\n",
        "-ERR Line too long\r\n+OK Send PASS\r\n",
        None,
    );
}

#[test]
fn too_many_errors_close_the_session() {
    let mut s = session(true);
    for _ in 0..9 {
        exchange(&mut s, "BOGUS\r\n", "-ERR Unknown command\r\n", None);
    }
    exchange(
        &mut s,
        "BOGUS\r\nNOOP\r\n",
        "-ERR Unknown command\r\n-ERR Too many errors, closing connection\r\n",
        Some(Action::Close),
    );
    exchange(&mut s, "CAPA\r\n", "", None);
}

#[test]
fn snapshot_takes_the_inbox_uids_and_sizes() {
    let message = |uid: Uid, size_bytes: u64| Message {
        uid,
        modseq: 1,
        flags: Vec::new(),
        internal_date: 0,
        size_bytes,
        meta: Arc::from([]),
        location: BodyLocation {
            offset: 0,
            len_bytes: size_bytes,
            crc32c: 0,
        },
    };
    let inbox = Mailbox {
        uidvalidity: 1_700_000_000,
        uid_next: 10,
        highest_modseq: 5,
        messages: [(2u32, message(2, 100)), (9, message(9, 7))]
            .into_iter()
            .collect(),
    };
    let drop = Maildrop::snapshot(Some(&inbox));
    assert_eq!(
        drop.messages,
        vec![
            MaildropMessage {
                uid: 2,
                size_bytes: 100
            },
            MaildropMessage {
                uid: 9,
                size_bytes: 7
            }
        ]
    );
    assert_eq!(drop.unique_id(9), "000000096553F100");
    assert_eq!(Maildrop::snapshot(None), Maildrop::default());
}

#[test]
fn input_piling_up_behind_a_pending_action_closes_the_session() {
    let mut s = session(true);
    s.feed(b"USER alice\r\n");
    let step = s.feed(b"PASS secret\r\n");
    assert!(matches!(
        step.action,
        Some(Action::Login(sasl::Request::Password { .. }))
    ));
    let flood = "NOOP\r\n".repeat(PIPELINED_INPUT_MAX_BYTES / 6 + 1);
    exchange(
        &mut s,
        &flood,
        "-ERR Too much pipelined input, closing connection\r\n",
        Some(Action::Close),
    );
}
