use super::*;

const DATE: &str = "Tue, 1 Jul 2025 10:00:00 +0000";
const RECEIVED_ESMTP: &str = "Received: from client.example.test ([192.0.2.7])\r\n\
\tby mx.example.test with ESMTP;\r\n\
\tTue, 1 Jul 2025 10:00:00 +0000\r\n";
const EHLO_REPLY: &str = "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
250-SIZE 2000\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n";

/// The nonce stem that, with the first exchange's number, gives the server nonce of
/// RFC 7677's example exchange.
const SASL_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k";

struct Users;

impl Directory for Users {
    fn recipient(&self, address: &str) -> Recipient {
        match address.to_ascii_lowercase().as_str() {
            "alice@example.test" => Recipient::Local {
                accounts: vec!["alice".into()],
            },
            "bob@example.test" => Recipient::Local {
                accounts: vec!["bob".into()],
            },
            "postmaster" => Recipient::Local {
                accounts: vec!["admin".into()],
            },
            other if other.ends_with("@example.test") => Recipient::UnknownUser,
            _ => Recipient::RelayDenied,
        }
    }

    fn may_send_as(&self, account: &str, sender: &str) -> bool {
        let sender = sender.to_ascii_lowercase();
        match account {
            "alice@example.test" => {
                sender == "alice@example.test" || sender == "sales@example.test"
            }
            other => sender == other,
        }
    }
}

fn limits() -> Limits {
    Limits {
        max_message_bytes: 2000,
        max_recipients: 3,
        max_command_line_bytes: 512,
        max_text_line_bytes: 1000,
        max_errors: 10,
    }
}

fn session_with(mode: Mode, limits: Limits) -> Session {
    let config = SessionConfig {
        mode,
        hostname: "mx.example.test".into(),
        limits,
        starttls: false,
        plaintext_login: false,
        sasl_nonce: SASL_NONCE.into(),
    };
    let peer = "192.0.2.7:40000".parse().expect("test address");
    Session::new(config, peer, DATE.into())
}

fn session(mode: Mode) -> Session {
    session_with(mode, limits())
}

/// What a client saw: all reply bytes, the deliveries asked for, and whether the
/// session closed.
#[derive(Debug, PartialEq)]
struct Transcript {
    replies: String,
    deliveries: Vec<Delivery>,
    closed: bool,
    /// The authentication actions asked for, in order.
    auth_actions: Vec<Action>,
}

/// Feeds `chunks` in order; each delivery is answered with `outcome(delivery)`.
fn converse(
    session: &mut Session,
    chunks: &[&[u8]],
    outcome: &dyn Fn(&Delivery) -> Vec<RecipientOutcome>,
) -> Transcript {
    let mut transcript = Transcript {
        replies: String::new(),
        deliveries: Vec::new(),
        closed: false,
        auth_actions: Vec::new(),
    };
    for chunk in chunks {
        let mut step = session.feed(chunk, &Users);
        loop {
            transcript
                .replies
                .push_str(std::str::from_utf8(&step.reply).expect("replies are ASCII"));
            match step.action {
                Some(Action::Deliver(delivery)) => {
                    let outcomes = outcome(&delivery);
                    transcript.deliveries.push(delivery);
                    step = session.delivered(outcomes, &Users);
                }
                Some(Action::Close) => {
                    transcript.closed = true;
                    break;
                }
                Some(Action::StartTls) => panic!("STARTTLS is not offered in these transcripts"),
                Some(action @ Action::Login(sasl::Request::Password { .. })) => {
                    let Action::Login(sasl::Request::Password { login, password }) = &action else {
                        unreachable!()
                    };
                    let account = check_password(login, password);
                    transcript.auth_actions.push(action);
                    step = session.authenticated(account, &Users);
                }
                Some(Action::Login(sasl::Request::ScramKeys { login })) => {
                    let found = scram_keys_of(&login);
                    transcript
                        .auth_actions
                        .push(Action::Login(sasl::Request::ScramKeys { login }));
                    step = session.scram_keys(found, &Users);
                }
                Some(action @ Action::Login(sasl::Request::ScramDone { .. })) => {
                    let Action::Login(sasl::Request::ScramDone { account, .. }) = &action else {
                        unreachable!()
                    };
                    let account = account.clone();
                    transcript.auth_actions.push(action);
                    step = session.authenticated(account, &Users);
                }
                None => break,
            }
        }
    }
    transcript
}

fn all_durable(delivery: &Delivery) -> Vec<RecipientOutcome> {
    vec![RecipientOutcome::Durable; delivery.recipients.len()]
}

fn run(mode: Mode, input: &[u8]) -> Transcript {
    converse(&mut session(mode), &[input], &all_durable)
}

fn bytewise(mode: Mode, input: &[u8]) -> Transcript {
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    converse(&mut session(mode), &chunks, &all_durable)
}

#[test]
fn greeting_names_the_protocol() {
    assert_eq!(
        session(Mode::Smtp).greeting(),
        b"220 mx.example.test ESMTP treehouse\r\n"
    );
    assert_eq!(
        session(Mode::Lmtp).greeting(),
        b"220 mx.example.test LMTP treehouse\r\n"
    );
}

#[test]
fn smtp_transaction_transcript() {
    let t = run(
        Mode::Smtp,
        b"EHLO client.example.test\r\n\
MAIL FROM:<sender@remote.test> SIZE=100 BODY=8BITMIME\r\n\
RCPT TO:<Alice@example.test>\r\n\
DATA\r\n\
Subject: hi\r\n\
\r\n\
Hello.\r\n\
.\r\n\
QUIT\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: delivered\r\n221 2.0.0 Bye\r\n"
        )
    );
    assert!(t.closed);
    assert_eq!(
        t.deliveries,
        vec![delivery(
            "sender@remote.test",
            vec![vec!["alice".into()]],
            format!("{RECEIVED_ESMTP}Subject: hi\r\n\r\nHello.\r\n").into_bytes(),
        )]
    );
}

/// The delivery of `message`, with its line feeds counted here.
fn delivery(mail_from: &str, recipients: Vec<Vec<String>>, message: Vec<u8>) -> Delivery {
    Delivery {
        mail_from: mail_from.into(),
        recipients,
        newlines: message.iter().filter(|&&b| b == b'\n').count() as u64,
        message,
    }
}

const PIPELINED: &[u8] = b"EHLO client.example.test\r\n\
MAIL FROM:<>\r\n\
RCPT TO:<alice@example.test>\r\n\
RCPT TO:<nobody@example.test>\r\n\
RCPT TO:<someone@elsewhere.test>\r\n\
RCPT TO:<bob@example.test>\r\n\
DATA\r\n\
..dot\r\n\
line\r\n\
.\r\n\
MAIL FROM:<sender@remote.test>\r\n\
RCPT TO:<postmaster>\r\n\
BDAT 7\r\n\
chunk1\nBDAT 8 LAST\r\n\
chunk2\r\n\
NOOP\r\n\
QUIT\r\n";

#[test]
fn pipelined_input_in_one_feed_and_byte_by_byte() {
    let whole = run(Mode::Smtp, PIPELINED);
    assert_eq!(
        whole.replies,
        format!(
            "{EHLO_REPLY}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 Error: user unknown\r\n\
550 5.7.1 Error: relay denied\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: delivered\r\n\
250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 7 octets received\r\n\
250 2.0.0 Ok: delivered\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
        )
    );
    assert_eq!(whole.deliveries.len(), 2);
    assert_eq!(whole.deliveries[0].mail_from, "");
    assert_eq!(
        whole.deliveries[0].recipients,
        vec![vec!["alice"], vec!["bob"]]
    );
    assert_eq!(
        whole.deliveries[0].message,
        format!("{RECEIVED_ESMTP}.dot\r\nline\r\n").into_bytes()
    );
    assert_eq!(whole.deliveries[1].recipients, vec![vec!["admin"]]);
    assert_eq!(
        whole.deliveries[1].message,
        format!("{RECEIVED_ESMTP}chunk1\r\nchunk2\r\n").into_bytes()
    );
    assert!(whole.closed);
    assert_eq!(bytewise(Mode::Smtp, PIPELINED), whole);
    for split in [2, 3, 5, 16, 64] {
        let chunks: Vec<&[u8]> = PIPELINED.chunks(split).collect();
        assert_eq!(
            converse(&mut session(Mode::Smtp), &chunks, &all_durable),
            whole,
            "split into {split}-byte chunks"
        );
    }
}

#[test]
fn dot_unstuffing_and_first_line_dot() {
    let t = run(
        Mode::Smtp,
        b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n\
DATA\r\n..first\r\nmid..dle\r\n...\r\n.\r\n\
MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n.\r\n",
    );
    assert_eq!(t.deliveries.len(), 2);
    assert_eq!(
        t.deliveries[0].message,
        format!("{RECEIVED_ESMTP}.first\r\nmid..dle\r\n..\r\n").into_bytes()
    );
    assert_eq!(
        t.deliveries[1].message,
        RECEIVED_ESMTP.as_bytes(),
        "empty message"
    );
}

#[test]
fn bare_newlines_cannot_end_data() {
    for smuggle in [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n.\n",
        b"\r\n.\r",
    ] {
        let mut input = b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\n\
RCPT TO:<bob@example.test>\r\nDATA\r\nvisible"
            .to_vec();
        input.extend_from_slice(smuggle);
        input.extend_from_slice(
            b"MAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
smuggled\r\n.\r\nQUIT\r\n",
        );
        let t = run(Mode::Smtp, &input);
        assert_eq!(t.deliveries.len(), 1, "{smuggle:?}");
        assert_eq!(t.deliveries[0].recipients, vec![vec!["bob"]], "{smuggle:?}");
        let message = String::from_utf8(t.deliveries[0].message.clone()).expect("ASCII");
        assert!(
            message.contains("MAIL FROM:<evil@remote.test>\r\n"),
            "{smuggle:?}"
        );
        assert!(message.ends_with("smuggled\r\n"), "{smuggle:?}");
        assert!(
            !message.replace("\r\n", "").contains(['\r', '\n']),
            "only CRLF line endings: {message:?}"
        );
        assert!(
            t.replies.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: delivered\r\n221 2.0.0 Bye\r\n"),
            "{smuggle:?}: {}",
            t.replies
        );
        assert_eq!(bytewise(Mode::Smtp, &input), t, "{smuggle:?}");
    }
}

#[test]
fn bdat_chunks_build_one_message() {
    let t = run(
        Mode::Smtp,
        b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n\
BDAT 10\r\nSubject: xBDAT 0\r\nBDAT 10 LAST\r\n\r\n\r\nbody\r\nBDAT 3\r\nabcQUIT\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 10 octets received\r\n\
250 2.0.0 0 octets received\r\n250 2.0.0 Ok: delivered\r\n\
503 5.5.1 Error: need MAIL command\r\n221 2.0.0 Bye\r\n"
        )
    );
    assert_eq!(
        t.deliveries[0].message,
        format!("{RECEIVED_ESMTP}Subject: x\r\n\r\nbody\r\n").into_bytes()
    );
}

#[test]
fn bdat_and_data_do_not_mix() {
    let t = run(
        Mode::Smtp,
        b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n\
BDAT 2\r\nhiDATA\r\nRCPT TO:<alice@example.test>\r\nRSET\r\nDATA\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 2 octets received\r\n\
503 5.5.1 Error: BDAT transfer in progress\r\n503 5.5.1 Error: message transfer in progress\r\n\
250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n"
        )
    );
}

#[test]
fn size_limit_on_mail_data_and_bdat() {
    let big = vec![b'x'; 100];
    let mut data = b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test> SIZE=2001\r\n\
MAIL FROM:<a@remote.test> SIZE=2000\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        .to_vec();
    for _ in 0..25 {
        data.extend_from_slice(&big);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n");
    data.extend_from_slice(b"BDAT 1500\r\n");
    for _ in 0..15 {
        data.extend_from_slice(&[b'y'; 98]);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b"BDAT 600\r\n");
    for _ in 0..6 {
        data.extend_from_slice(&[b'z'; 98]);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b"BDAT 4 LAST\r\nend\nNOOP\r\n");
    let t = run(Mode::Smtp, &data);
    let too_big = "552 5.3.4 Error: message size exceeds fixed limit\r\n";
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}{too_big}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n{too_big}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n\
250 2.0.0 1500 octets received\r\n{too_big}{too_big}250 2.0.0 Ok\r\n"
        )
    );
    assert!(t.deliveries.is_empty());
    assert_eq!(bytewise(Mode::Smtp, &data), t);
}

#[test]
fn oversized_body_is_not_buffered() {
    let mut s = session(Mode::Smtp);
    let start =
        b"EHLO c.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n";
    assert!(s.feed(start, &Users).action.is_none());
    let line = [&[b'x'; 98][..], b"\r\n"].concat();
    for _ in 0..1000 {
        s.feed(&line, &Users);
        let over_limit = match &s.transaction {
            Some(Transaction {
                body: Some(body), ..
            }) => body.would_exceed(0),
            _ => panic!("transaction in progress"),
        };
        assert!(!over_limit, "stored body stays within the limit");
        assert!(s.pending.is_empty());
    }
    let end = s.feed(b".\r\n", &Users);
    assert_eq!(
        end.reply,
        b"552 5.3.4 Error: message size exceeds fixed limit\r\n"
    );
}

#[test]
fn too_many_recipients() {
    let t = run(
        Mode::Smtp,
        b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\n\
RCPT TO:<bob@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n\
RCPT TO:<alice@example.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
452 4.5.3 Error: too many recipients\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
250 2.0.0 Ok: delivered\r\n"
        )
    );
    assert_eq!(
        t.deliveries[0].recipients,
        vec![vec!["bob"], vec!["bob"], vec!["alice"]]
    );
}

#[test]
fn lmtp_replies_per_recipient_with_one_tempfail() {
    let input = b"LHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\n\
RCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\n\
RCPT TO:<alice@example.test>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n";
    let bob_fails = |delivery: &Delivery| -> Vec<RecipientOutcome> {
        delivery
            .recipients
            .iter()
            .map(|account| match account[0].as_str() {
                "bob" => RecipientOutcome::TempFail {
                    code: 451,
                    enhanced: "4.3.0",
                    text: "mailbox shard busy, try again later".into(),
                },
                _ => RecipientOutcome::Durable,
            })
            .collect()
    };
    let t = converse(&mut session(Mode::Lmtp), &[input], &bob_fails);
    assert_eq!(
        t.replies,
        "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 2000\r\n\
250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n\
250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 Error: user unknown\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
354 End data with <CR><LF>.<CR><LF>\r\n\
250 2.0.0 <alice@example.test> delivered\r\n\
451 4.3.0 <bob@example.test> mailbox shard busy, try again later\r\n\
250 2.0.0 <alice@example.test> delivered\r\n221 2.0.0 Bye\r\n"
    );
    assert_eq!(
        t.deliveries[0].recipients,
        vec![vec!["alice"], vec!["bob"], vec!["alice"]]
    );
    assert!(t.deliveries[0].message.starts_with(
        b"Received: from client.example.test ([192.0.2.7])\r\n\tby mx.example.test with LMTP;\r\n"
    ));
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(converse(&mut session(Mode::Lmtp), &chunks, &bob_fails), t);
}

#[test]
fn smtp_reports_the_first_tempfail_for_all() {
    let input = b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\n\
RCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\n";
    let second_fails = |_: &Delivery| {
        vec![
            RecipientOutcome::Durable,
            RecipientOutcome::TempFail {
                code: 452,
                enhanced: "4.3.1",
                text: "disk full".into(),
            },
        ]
    };
    let t = converse(&mut session(Mode::Smtp), &[input], &second_fails);
    assert!(
        t.replies
            .ends_with("354 End data with <CR><LF>.<CR><LF>\r\n452 4.3.1 disk full\r\n")
    );
}

#[test]
fn lmtp_refuses_ehlo_and_smtp_refuses_lhlo() {
    let t = run(
        Mode::Lmtp,
        b"EHLO c.test\r\nHELO c.test\r\nMAIL FROM:<a@remote.test>\r\n",
    );
    assert_eq!(
        t.replies,
        "500 Error: this is LMTP, use LHLO\r\n500 Error: this is LMTP, use LHLO\r\n\
503 Error: send LHLO first\r\n"
    );
    let t = run(Mode::Smtp, b"LHLO c.test\r\n");
    assert_eq!(t.replies, "500 Error: unknown command\r\n");
}

#[test]
fn helo_session_has_no_enhanced_codes() {
    let t = run(
        Mode::Smtp,
        b"HELO client.example.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n\
DATA\r\nx\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        t.replies,
        "250 mx.example.test\r\n250 Ok\r\n250 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
250 Ok: delivered\r\n221 Bye\r\n"
    );
    assert!(t.deliveries[0].message.starts_with(
        b"Received: from client.example.test ([192.0.2.7])\r\n\tby mx.example.test with SMTP;\r\n"
    ));
}

#[test]
fn received_header_variants() {
    let mut s = session(Mode::Smtp);
    s.peer = "[2001:db8::5]:25".parse().expect("test address");
    s.set_clock("Wed, 2 Jul 2025 11:00:00 +0200".into());
    let t = converse(
        &mut s,
        &[
            "EHLO evil(host);x\r\nMAIL FROM:<j\u{fc}rgen@remote.test> SMTPUTF8\r\n\
RCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n"
                .as_bytes(),
        ],
        &all_durable,
    );
    assert_eq!(
        t.deliveries[0].message,
        b"Received: from evil_host__x ([IPv6:2001:db8::5])\r\n\
\tby mx.example.test with UTF8SMTP;\r\n\tWed, 2 Jul 2025 11:00:00 +0200\r\nx\r\n"
    );
    let t = run(
        Mode::Smtp,
        "EHLO c.test\r\nMAIL FROM:<j\u{fc}rgen@remote.test>\r\n".as_bytes(),
    );
    assert!(
        t.replies
            .ends_with("553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n")
    );
}

#[test]
fn command_line_too_long() {
    let mut input = b"EHLO c.test\r\nNOOP ".to_vec();
    input.extend_from_slice(&[b'x'; 600]);
    input.extend_from_slice(b"\r\nNOOP\r\n");
    let mut exact = b"NOOP ".to_vec();
    exact.extend_from_slice(&[b'x'; 505]);
    exact.extend_from_slice(b"\r\n");
    assert_eq!(exact.len(), 512);
    input.extend_from_slice(&exact);
    exact.insert(5, b'x');
    input.extend_from_slice(&exact);
    input.extend_from_slice(b"NOOP\r\n");
    let t = run(Mode::Smtp, &input);
    let too_long = "500 5.5.2 Error: line too long\r\n";
    let ok = "250 2.0.0 Ok\r\n";
    assert_eq!(
        t.replies,
        format!("{EHLO_REPLY}{too_long}{ok}{ok}{too_long}{ok}")
    );
    assert_eq!(bytewise(Mode::Smtp, &input), t);
}

#[test]
fn text_line_too_long_is_refused_after_the_data() {
    let mut input =
        b"EHLO c.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            .to_vec();
    input.extend_from_slice(&[b'x'; 999]);
    input.extend_from_slice(b"\r\n.\r\nNOOP\r\n");
    let t = run(Mode::Smtp, &input);
    assert!(t.deliveries.is_empty());
    assert!(t.replies.ends_with(
        "354 End data with <CR><LF>.<CR><LF>\r\n\
554 5.6.0 Error: message has a line longer than 1000 octets\r\n250 2.0.0 Ok\r\n"
    ));
}

#[test]
fn nul_in_command() {
    let t = run(
        Mode::Smtp,
        b"EHLO c.test\r\nNOOP a\0b\r\nMAIL FROM:<a\0@remote.test>\r\nNOOP\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}500 5.5.2 Error: NUL character in command\r\n\
500 5.5.2 Error: NUL character in command\r\n250 2.0.0 Ok\r\n"
        )
    );
}

#[test]
fn error_limit_closes_with_421() {
    let limits = Limits {
        max_errors: 3,
        ..limits()
    };
    let input =
        b"EHLO c.test\r\nFOO\r\nRCPT TO:<bob@example.test>\r\nNOOP\r\nMAIL FROM:<x\r\nNOOP\r\n";
    let t = converse(
        &mut session_with(Mode::Smtp, limits.clone()),
        &[input],
        &all_durable,
    );
    assert_eq!(
        t.replies,
        format!(
            "{EHLO_REPLY}500 5.5.1 Error: unknown command\r\n503 5.5.1 Error: need MAIL command\r\n\
250 2.0.0 Ok\r\n501 5.1.7 Error: bad sender address syntax\r\n\
421 4.7.0 mx.example.test Error: too many errors, closing connection\r\n"
        )
    );
    assert!(t.closed);
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        converse(&mut session_with(Mode::Smtp, limits), &chunks, &all_durable),
        t
    );
}

#[test]
fn sequence_and_misc_commands() {
    let t = run(
        Mode::Smtp,
        b"MAIL FROM:<a@remote.test>\r\nEHLO c.test\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n\
MAIL FROM:<a@remote.test>\r\nMAIL FROM:<a@remote.test>\r\nDATA\r\nRCPT TO:bob\r\n\
STARTTLS\r\nVRFY bob\r\nEXPN list\r\nHELP\r\nRSET\r\nQUIT\r\nNOOP\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "503 Error: send EHLO or HELO first\r\n{EHLO_REPLY}\
503 5.5.1 Error: need MAIL command\r\n503 5.5.1 Error: need MAIL command\r\n\
250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n554 5.5.1 Error: no valid recipients\r\n\
501 5.5.4 Syntax: RCPT TO:<forward-path> [parameters]\r\n\
502 5.5.1 Error: STARTTLS not available\r\n\
252 2.5.2 Cannot verify user, but will accept message and attempt delivery\r\n\
502 5.5.1 Error: EXPN not available\r\n\
214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP VRFY QUIT\r\n\
250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
        )
    );
    assert!(t.closed);
}

#[test]
fn input_during_delivery_is_buffered_then_answered() {
    let mut s = session(Mode::Smtp);
    let step = s.feed(
        b"EHLO c.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\nNO",
        &Users,
    );
    assert!(matches!(step.action, Some(Action::Deliver(_))));
    let step = s.feed(b"OP\r\nQUIT\r\n", &Users);
    assert_eq!(
        step,
        Step::default(),
        "nothing is answered before the delivery"
    );
    let step = s.delivered(vec![RecipientOutcome::Durable], &Users);
    assert_eq!(
        step.reply,
        b"250 2.0.0 Ok: delivered\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
    );
    assert_eq!(step.action, Some(Action::Close));
}

#[test]
fn timeout_replies_421_and_closes() {
    let mut s = session(Mode::Smtp);
    s.feed(b"EHLO c.test\r\n", &Users);
    assert_eq!(
        s.timed_out(),
        b"421 4.4.2 mx.example.test Error: idle timeout, closing connection\r\n"
    );
    assert_eq!(s.feed(b"NOOP\r\n", &Users).action, Some(Action::Close));

    let mut s = session(Mode::Smtp);
    let step = s.feed(
        b"EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nx\r\n.\r\n",
        &Users,
    );
    assert!(matches!(step.action, Some(Action::Deliver(_))));
    s.timed_out();
    let step = s.delivered(vec![RecipientOutcome::Durable], &Users);
    assert_eq!(step.reply, b"", "a closed session says nothing more");
    assert_eq!(step.action, Some(Action::Close));
}

#[test]
fn lmtp_refusal_after_data_is_per_recipient() {
    let mut input =
        b"LHLO c.test\r\nMAIL FROM:<a@remote.test> FOO=bar\r\nMAIL FROM:<a@remote.test>\r\n\
RCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nBDAT 2001 LAST\r\n"
            .to_vec();
    input.extend_from_slice(&[b'x'; 2001]);
    input.extend_from_slice(b"QUIT\r\n");
    let t = run(Mode::Lmtp, &input);
    assert!(
        t.replies
            .contains("555 5.5.4 Error: unsupported parameter FOO=BAR\r\n"),
        "{}",
        t.replies
    );
    assert!(t.replies.ends_with(
        "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n\
552 5.3.4 Error: message size exceeds fixed limit\r\n\
552 5.3.4 Error: message size exceeds fixed limit\r\n221 2.0.0 Bye\r\n"
    ));
    assert!(t.deliveries.is_empty());
}

/// `input` cut at each of `cuts` (clamped to its length, in any order).
fn cut_at(input: &[u8], cuts: Vec<usize>) -> Vec<&[u8]> {
    let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for cut in cuts {
        chunks.push(&input[from..cut]);
        from = cut;
    }
    chunks.push(&input[from..]);
    chunks
}

proptest::proptest! {
    #[test]
    fn any_split_gives_the_same_transcript(cuts in proptest::collection::vec(0..PIPELINED.len(), 0..12)) {
        let chunks = cut_at(PIPELINED, cuts);
        let split = converse(&mut session(Mode::Smtp), &chunks, &all_durable);
        proptest::prop_assert_eq!(split, run(Mode::Smtp, PIPELINED));
    }

    /// A DATA body of lines with dots, bare CRs and bare LFs, sent dot-stuffed and cut
    /// anywhere, arrives unstuffed with every line ending made CRLF.
    #[test]
    fn any_split_of_data_gives_the_sent_lines(
        lines in proptest::collection::vec("[a.\r\n]{0,12}", 0..40),
        cuts in proptest::collection::vec(0usize..600, 0..16),
    ) {
        let mut body = Vec::new();
        for line in &lines {
            body.extend_from_slice(line.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        let mut input = b"EHLO client.example.test\r\nMAIL FROM:<a@remote.test>\r\n\
RCPT TO:<bob@example.test>\r\nDATA\r\n".to_vec();
        // Stuffs a dot that starts a line, where a line starts after a CRLF.
        let mut at_line_start = true;
        for (i, &b) in body.iter().enumerate() {
            if at_line_start && b == b'.' {
                input.push(b'.');
            }
            input.push(b);
            at_line_start = b == b'\n' && i > 0 && body[i - 1] == b'\r';
        }
        input.extend_from_slice(b".\r\nQUIT\r\n");
        let mut expected = RECEIVED_ESMTP.as_bytes().to_vec();
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'\r' if body.get(i + 1) == Some(&b'\n') => {
                    expected.extend_from_slice(b"\r\n");
                    i += 1;
                }
                b'\r' | b'\n' => expected.extend_from_slice(b"\r\n"),
                b => expected.push(b),
            }
            i += 1;
        }
        let chunks = cut_at(&input, cuts);
        let t = converse(&mut session(Mode::Smtp), &chunks, &all_durable);
        proptest::prop_assert_eq!(t.deliveries.len(), 1, "{}", t.replies);
        proptest::prop_assert_eq!(
            String::from_utf8_lossy(&t.deliveries[0].message),
            String::from_utf8_lossy(&expected)
        );
        let newlines = expected.iter().filter(|&&b| b == b'\n').count() as u64;
        proptest::prop_assert_eq!(t.deliveries[0].newlines, newlines);
    }

    #[test]
    fn arbitrary_input_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let mut s = session_with(Mode::Smtp, Limits { max_command_line_bytes: 64, ..limits() });
        let mut prefix = b"EHLO c.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\n".to_vec();
        prefix.extend_from_slice(&input);
        converse(&mut s, &[&prefix], &all_durable);
        proptest::prop_assert!(s.pending.len() <= 64);
    }
}

fn tls_session() -> Session {
    let config = SessionConfig {
        mode: Mode::Smtp,
        hostname: "mx.example.test".into(),
        limits: limits(),
        starttls: true,
        plaintext_login: false,
        sasl_nonce: SASL_NONCE.into(),
    };
    Session::new(
        config,
        "192.0.2.7:40000".parse().expect("test address"),
        DATE.into(),
    )
}

#[test]
fn starttls_is_offered_once_and_resets_the_session() {
    let mut s = tls_session();
    let step = s.feed(b"EHLO client.test\r\n", &Users);
    let text = String::from_utf8(step.reply).expect("ASCII");
    assert!(text.contains("250-STARTTLS\r\n"), "{text}");
    let step = s.feed(b"STARTTLS\r\n", &Users);
    assert_eq!(step.reply, b"220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(step.action, Some(Action::StartTls));
    s.tls_started();
    // The client must greet again; MAIL before EHLO is out of sequence.
    let step = s.feed(b"MAIL FROM:<a@remote.test>\r\n", &Users);
    assert_eq!(step.reply, b"503 Error: send EHLO or HELO first\r\n");
    let step = s.feed(b"EHLO client.test\r\n", &Users);
    let text = String::from_utf8(step.reply).expect("ASCII");
    assert!(!text.contains("STARTTLS"), "{text}");
    let step = s.feed(b"STARTTLS\r\n", &Users);
    assert!(step.reply.starts_with(b"502 5.5.1"));
    assert_eq!(step.action, None);
}

#[test]
fn commands_sent_with_starttls_are_discarded_not_run_inside_tls() {
    let mut s = tls_session();
    s.feed(b"EHLO client.test\r\n", &Users);
    // An attacker appends commands in the same packet as STARTTLS (CVE-2011-0411).
    let step = s.feed(
        b"STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\n",
        &Users,
    );
    assert_eq!(step.reply, b"220 2.0.0 Ready to start TLS\r\n");
    assert_eq!(step.action, Some(Action::StartTls));
    s.tls_started();
    let step = s.feed(
        b"EHLO client.test\r\nRCPT TO:<alice@example.test>\r\n",
        &Users,
    );
    let text = String::from_utf8(step.reply).expect("ASCII");
    // The injected MAIL never ran, so the RCPT that follows is out of sequence.
    assert!(
        text.ends_with("503 5.5.1 Error: need MAIL command\r\n"),
        "{text}"
    );
}

#[test]
fn received_header_says_esmtps_after_tls() {
    let mut s = tls_session();
    s.feed(b"EHLO client.test\r\nSTARTTLS\r\n", &Users);
    s.tls_started();
    let step = s.feed(b"EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nhi\r\n.\r\n", &Users);
    let Some(Action::Deliver(delivery)) = step.action else {
        panic!("expected a delivery")
    };
    let message = String::from_utf8(delivery.message).expect("ASCII");
    assert!(message.contains(" with ESMTPS;"), "{message}");
}

// Submission (RFC 6409) and SMTP AUTH (RFC 4954).

/// The runtime's password check in these transcripts: alice's password is "secret".
fn check_password(login: &str, password: &str) -> Option<String> {
    let account = match login {
        "alice" | "alice@example.test" => "alice@example.test",
        _ => return None,
    };
    (password == "secret").then(|| account.to_string())
}

/// The RFC 7677 example: user "user", password "pencil".
fn scram_keys_of(login: &str) -> Option<(String, ScramKeys)> {
    let salt = BASE64
        .decode("W22ZaJ0SNY7soEsUEjb6gQ==")
        .expect("test salt");
    (login == "user").then(|| {
        (
            "user@example.test".to_string(),
            ScramKeys::derive("pencil", &salt, 4096),
        )
    })
}

/// A submission session; `tls` as after implicit TLS, `plaintext_login` as on loopback.
fn submission(tls: bool, plaintext_login: bool) -> Session {
    let config = SessionConfig {
        mode: Mode::Submission,
        hostname: "mx.example.test".into(),
        limits: limits(),
        starttls: !tls,
        plaintext_login,
        sasl_nonce: SASL_NONCE.into(),
    };
    let mut s = Session::new(
        config,
        "192.0.2.7:40000".parse().expect("test address"),
        DATE.into(),
    );
    if tls {
        s.tls_started();
    }
    s
}

fn b64(text: &str) -> String {
    BASE64.encode(text)
}

fn submit(s: &mut Session, input: &str) -> Transcript {
    converse(s, &[input.as_bytes()], &all_durable)
}

const SUBMISSION_EHLO_TLS: &str = "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
250-SIZE 2000\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n\
250-AUTH SCRAM-SHA-256 PLAIN LOGIN\r\n250 CHUNKING\r\n";

/// alice's PLAIN response: no authorization identity, "alice", "secret".
const ALICE_PLAIN: &str = "AGFsaWNlAHNlY3JldA==";

#[test]
fn ehlo_offers_auth_by_listener_and_transport() {
    let t = submit(&mut submission(true, false), "EHLO c.test\r\n");
    assert_eq!(t.replies, SUBMISSION_EHLO_TLS);
    // In the clear on an untrusted listener only SCRAM, which never reveals the password.
    let t = submit(&mut submission(false, false), "EHLO c.test\r\n");
    assert_eq!(
        t.replies,
        "250-mx.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 2000\r\n\
250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-STARTTLS\r\n250-AUTH SCRAM-SHA-256\r\n\
250 CHUNKING\r\n"
    );
    let t = submit(&mut submission(false, true), "EHLO c.test\r\n");
    assert!(
        t.replies
            .contains("250-STARTTLS\r\n250-AUTH SCRAM-SHA-256 PLAIN LOGIN\r\n"),
        "{}",
        t.replies
    );
    // Once authenticated, AUTH is no longer offered.
    let t = submit(
        &mut submission(true, false),
        &format!("EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\nEHLO c.test\r\n"),
    );
    assert!(t.replies.ends_with(
        "235 2.7.0 Authentication successful\r\n250-mx.example.test\r\n250-PIPELINING\r\n\
250-8BITMIME\r\n250-SIZE 2000\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"
    ));
}

#[test]
fn mx_and_lmtp_do_not_offer_auth() {
    let mut mx = tls_session();
    let t = submit(
        &mut mx,
        &format!("EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<a@remote.test>\r\n"),
    );
    assert!(!t.replies.contains("AUTH"), "{}", t.replies);
    assert!(
        t.replies.ends_with(
            "250 CHUNKING\r\n502 5.5.1 Error: command not implemented\r\n250 2.1.0 Ok\r\n"
        ),
        "{}",
        t.replies
    );
    assert!(t.auth_actions.is_empty());
    let t = submit(
        &mut session(Mode::Lmtp),
        &format!("LHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\n"),
    );
    assert!(
        t.replies
            .ends_with("250 CHUNKING\r\n502 5.5.1 Error: command not implemented\r\n")
    );
    assert!(t.auth_actions.is_empty());
}

const SUBMIT_PIPELINED: &str = "EHLO client.example.test\r\n\
AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n\
MAIL FROM:<alice@example.test>\r\n\
RCPT TO:<bob@example.test>\r\n\
RCPT TO:<someone@remote.test>\r\n\
RCPT TO:<nobody@example.test>\r\n\
DATA\r\n\
Subject: hi\r\n\
\r\n\
Hello.\r\n\
.\r\n\
QUIT\r\n";

#[test]
fn plain_with_initial_response_then_pipelined_submission() {
    let t = submit(&mut submission(true, false), SUBMIT_PIPELINED);
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n\
250 2.1.5 Ok\r\n\
550 5.7.1 Relaying to remote domains is not available: this server has no outbound queue yet\r\n\
550 5.1.1 Error: user unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
250 2.0.0 Ok: delivered\r\n221 2.0.0 Bye\r\n"
        )
    );
    assert_eq!(
        t.auth_actions,
        vec![Action::Login(sasl::Request::Password {
            login: "alice".into(),
            password: "secret".into()
        })]
    );
    assert_eq!(
        t.deliveries,
        vec![delivery(
            "alice@example.test",
            vec![vec!["bob".into()]],
            "Received: from client.example.test ([192.0.2.7])\r\n\
\tby mx.example.test with ESMTPSA;\r\n\tTue, 1 Jul 2025 10:00:00 +0000\r\n\
Subject: hi\r\n\r\nHello.\r\n"
                .into(),
        )]
    );
    assert!(t.closed);
    // The same bytes in any chunking give the same transcript.
    let input = SUBMIT_PIPELINED.as_bytes();
    for split in [1, 3, 7, 40] {
        let chunks: Vec<&[u8]> = input.chunks(split).collect();
        assert_eq!(
            converse(&mut submission(true, false), &chunks, &all_durable),
            t,
            "split into {split}-byte chunks"
        );
    }
}

#[test]
fn input_after_auth_waits_for_the_password_check() {
    let mut s = submission(true, false);
    s.feed(b"EHLO c.test\r\n", &Users);
    let step = s.feed(
        format!("AUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<alice@example.test>\r\n").as_bytes(),
        &Users,
    );
    assert_eq!(step.reply, b"");
    assert!(matches!(
        step.action,
        Some(Action::Login(sasl::Request::Password { .. }))
    ));
    let step = s.feed(b"RCPT TO:<bob@example.test>\r\n", &Users);
    assert_eq!(
        step,
        Step::default(),
        "nothing is answered before the check"
    );
    let step = s.authenticated(Some("alice@example.test".into()), &Users);
    assert_eq!(
        step.reply,
        b"235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
    );
    assert_eq!(step.action, None);
}

#[test]
fn plain_and_login_through_challenges() {
    let t = submit(
        &mut submission(true, false),
        &format!(
            "EHLO c.test\r\nAUTH PLAIN\r\n{ALICE_PLAIN}\r\nMAIL FROM:<alice@example.test>\r\n"
        ),
    );
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}334 \r\n235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n"
        )
    );
    let t = submit(
        &mut submission(true, false),
        &format!(
            "EHLO c.test\r\nAUTH LOGIN\r\n{}\r\n{}\r\nMAIL FROM:<alice@example.test>\r\n",
            b64("alice"),
            b64("secret")
        ),
    );
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n\
235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n"
        )
    );
    assert_eq!(
        t.auth_actions,
        vec![Action::Login(sasl::Request::Password {
            login: "alice".into(),
            password: "secret".into()
        })]
    );
    // LOGIN with the user name as initial response; "=" is an empty initial response.
    let t = submit(
        &mut submission(true, false),
        &format!(
            "EHLO c.test\r\nAUTH LOGIN {}\r\n{}\r\nAUTH PLAIN =\r\n",
            b64("alice@example.test"),
            b64("secret")
        ),
    );
    assert!(
        t.replies.ends_with(
            "334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n\
503 5.5.1 Error: already authenticated\r\n"
        ),
        "{}",
        t.replies
    );
    let t = submit(
        &mut submission(true, false),
        "EHLO c.test\r\nAUTH PLAIN =\r\n",
    );
    assert!(
        t.replies
            .ends_with("501 5.5.2 Error: malformed authentication response\r\n"),
        "{}",
        t.replies
    );
}

#[test]
fn wrong_password_then_right_one() {
    let t = submit(
        &mut submission(true, false),
        &format!(
            "EHLO c.test\r\nAUTH PLAIN {}\r\nMAIL FROM:<alice@example.test>\r\n\
AUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<alice@example.test>\r\n",
            b64("\0alice\0guess")
        ),
    );
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}535 5.7.8 Authentication credentials invalid\r\n\
530 5.7.0 Authentication required\r\n235 2.7.0 Authentication successful\r\n\
250 2.1.0 Ok\r\n"
        )
    );
}

#[test]
fn failed_logins_count_towards_the_error_limit() {
    let mut s = submission(true, false);
    let mut input = "EHLO c.test\r\n".to_string();
    for _ in 0..10 {
        input.push_str(&format!("AUTH PLAIN {}\r\n", b64("\0alice\0guess")));
    }
    let t = submit(&mut s, &input);
    assert_eq!(t.auth_actions.len(), 10);
    assert!(t.replies.ends_with(
        "535 5.7.8 Authentication credentials invalid\r\n\
421 4.7.0 mx.example.test Error: too many errors, closing connection\r\n"
    ));
    assert!(t.closed);
}

#[test]
fn cancel_bad_base64_and_unknown_mechanism() {
    let t = submit(
        &mut submission(true, false),
        "EHLO c.test\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN !!!\r\n\
AUTH LOGIN\r\n%%%\r\nAUTH CRAM-MD5\r\nAUTH FOO\r\nAUTH\r\nMAIL FROM:<alice@example.test>\r\n",
    );
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}334 \r\n501 5.0.0 Authentication cancelled\r\n\
334 VXNlcm5hbWU6\r\n501 5.0.0 Authentication cancelled\r\n\
501 5.5.2 Error: invalid base64 data\r\n\
334 VXNlcm5hbWU6\r\n501 5.5.2 Error: invalid base64 data\r\n\
504 5.5.4 Error: unrecognized authentication mechanism\r\n\
504 5.5.4 Error: unrecognized authentication mechanism\r\n\
501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n\
530 5.7.0 Authentication required\r\n"
        )
    );
    assert!(t.auth_actions.is_empty());
}

#[test]
fn passwords_need_tls_on_untrusted_listeners() {
    let mut s = submission(false, false);
    let t = submit(
        &mut s,
        &format!("EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\nAUTH LOGIN\r\n"),
    );
    assert!(
        t.replies.ends_with(
            "250 CHUNKING\r\n530 5.7.0 Must issue a STARTTLS command first\r\n\
530 5.7.0 Must issue a STARTTLS command first\r\n"
        ),
        "{}",
        t.replies
    );
    assert!(t.auth_actions.is_empty());
    let step = s.feed(b"STARTTLS\r\n", &Users);
    assert_eq!(step.action, Some(Action::StartTls));
    s.tls_started();
    let t = submit(
        &mut s,
        &format!("EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\n"),
    );
    assert_eq!(
        t.replies,
        format!("{SUBMISSION_EHLO_TLS}235 2.7.0 Authentication successful\r\n")
    );
    // A listener that allows passwords in the clear (loopback by default) takes them.
    let t = submit(
        &mut submission(false, true),
        &format!("EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\n"),
    );
    assert!(
        t.replies
            .ends_with("250 CHUNKING\r\n235 2.7.0 Authentication successful\r\n")
    );
}

#[test]
fn starttls_forgets_the_authentication() {
    let mut s = submission(false, true);
    submit(
        &mut s,
        &format!("EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\n"),
    );
    let step = s.feed(b"STARTTLS\r\n", &Users);
    assert_eq!(step.action, Some(Action::StartTls));
    s.tls_started();
    let t = submit(&mut s, "EHLO c.test\r\nMAIL FROM:<alice@example.test>\r\n");
    assert_eq!(
        t.replies,
        format!("{SUBMISSION_EHLO_TLS}530 5.7.0 Authentication required\r\n")
    );
}

#[test]
fn auth_needs_ehlo_and_no_transaction() {
    let t = submit(
        &mut submission(true, false),
        &format!(
            "AUTH PLAIN {ALICE_PLAIN}\r\nHELO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\n\
EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<alice@example.test>\r\n\
AUTH PLAIN {ALICE_PLAIN}\r\n"
        ),
    );
    assert_eq!(
        t.replies,
        format!(
            "503 Error: send EHLO first\r\n250 mx.example.test\r\n503 Error: send EHLO first\r\n\
{SUBMISSION_EHLO_TLS}235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n\
503 5.5.1 Error: AUTH not allowed during a mail transaction\r\n"
        )
    );
}

#[test]
fn sender_must_belong_to_the_account() {
    let t = submit(
        &mut submission(true, false),
        &format!(
            "EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<bob@example.test>\r\n\
MAIL FROM:<>\r\nMAIL FROM:<alice@remote.test>\r\nMAIL FROM:<Sales@example.test>\r\n\
RCPT TO:<alice@example.test>\r\nBDAT 4 LAST\r\nhi\r\n"
        ),
    );
    let not_owned = "553 5.7.1 Sender address rejected: not owned by alice@example.test\r\n";
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}235 2.7.0 Authentication successful\r\n\
{not_owned}{not_owned}{not_owned}250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: delivered\r\n"
        )
    );
    assert_eq!(t.deliveries.len(), 1);
    assert_eq!(t.deliveries[0].mail_from, "Sales@example.test");
    assert_eq!(t.deliveries[0].recipients, vec![vec!["alice"]]);
}

#[test]
fn submission_tempfail_is_reported_like_smtp() {
    let input = format!(
        "EHLO c.test\r\nAUTH PLAIN {ALICE_PLAIN}\r\nMAIL FROM:<alice@example.test>\r\n\
RCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\n"
    );
    let second_fails = |_: &Delivery| {
        vec![
            RecipientOutcome::Durable,
            RecipientOutcome::TempFail {
                code: 451,
                enhanced: "4.3.0",
                text: "shard 3 did not answer in time; try again later".into(),
            },
        ]
    };
    let t = converse(
        &mut submission(true, false),
        &[input.as_bytes()],
        &second_fails,
    );
    assert!(t.replies.ends_with(
        "354 End data with <CR><LF>.<CR><LF>\r\n\
451 4.3.0 shard 3 did not answer in time; try again later\r\n"
    ));
}

/// RFC 7677 §3's example exchange, before TLS (SCRAM never reveals the password).
#[test]
fn scram_sha_256_exchange() {
    let mut s = submission(false, false);
    s.feed(b"EHLO c.test\r\n", &Users);
    let step = s.feed(
        format!(
            "AUTH SCRAM-SHA-256 {}\r\n",
            b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        )
        .as_bytes(),
        &Users,
    );
    assert_eq!(step.reply, b"");
    assert_eq!(
        step.action,
        Some(Action::Login(sasl::Request::ScramKeys {
            login: "user".into()
        }))
    );
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let server_first = format!("r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    let step = s.scram_keys(scram_keys_of("user"), &Users);
    assert_eq!(
        step.reply,
        format!("334 {}\r\n", b64(&server_first)).as_bytes()
    );
    assert_eq!(step.action, None);
    let client_final = format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    let step = s.feed(format!("{}\r\n", b64(&client_final)).as_bytes(), &Users);
    assert_eq!(
        step.reply,
        format!(
            "334 {}\r\n",
            b64("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        )
        .as_bytes()
    );
    let step = s.feed(b"\r\nMAIL FROM:<user@example.test>\r\n", &Users);
    assert_eq!(
        step.action,
        Some(Action::Login(sasl::Request::ScramDone {
            login: "user".into(),
            account: Some("user@example.test".into())
        }))
    );
    let step = s.authenticated(Some("user@example.test".into()), &Users);
    assert_eq!(
        step.reply,
        b"235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n"
    );
}

#[test]
fn scram_failures_are_reported_for_throttling() {
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let wrong_proof = format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let t = submit(
        &mut submission(false, false),
        &format!(
            "EHLO c.test\r\nAUTH SCRAM-SHA-256 {}\r\n{}\r\nAUTH SCRAM-SHA-256 {}\r\n",
            b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
            b64(&wrong_proof),
            b64("n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO"),
        ),
    );
    assert!(
        t.replies.ends_with(
            "535 5.7.8 Authentication credentials invalid\r\n\
535 5.7.8 Authentication credentials invalid\r\n"
        ),
        "{}",
        t.replies
    );
    assert_eq!(
        t.auth_actions,
        vec![
            Action::Login(sasl::Request::ScramKeys {
                login: "user".into()
            }),
            Action::Login(sasl::Request::ScramDone {
                login: "user".into(),
                account: None
            }),
            Action::Login(sasl::Request::ScramKeys {
                login: "nobody".into()
            }),
            Action::Login(sasl::Request::ScramDone {
                login: "nobody".into(),
                account: None
            }),
        ]
    );
}

#[test]
fn auth_line_too_long_ends_the_exchange() {
    let mut input = "EHLO c.test\r\nAUTH PLAIN\r\n".to_string();
    input.push_str(&"A".repeat(AUTH_LINE_MAX_BYTES));
    input.push_str("\r\nNOOP\r\n");
    let t = submit(&mut submission(true, false), &input);
    assert_eq!(
        t.replies,
        format!(
            "{SUBMISSION_EHLO_TLS}334 \r\n500 5.5.6 Error: authentication exchange line too long\r\n\
250 2.0.0 Ok\r\n"
        )
    );
}

#[test]
fn action_debug_hides_the_password() {
    let action = Action::Login(sasl::Request::Password {
        login: "alice".into(),
        password: "secret".into(),
    });
    let shown = format!("{action:?}");
    assert!(
        shown.contains("alice") && !shown.contains("secret"),
        "{shown}"
    );
}

#[test]
fn each_scram_exchange_gets_its_own_server_nonce() {
    let client_first = b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let t = submit(
        &mut submission(false, false),
        &format!(
            "EHLO c.test\r\nAUTH SCRAM-SHA-256 {client_first}\r\n*\r\n\
AUTH SCRAM-SHA-256 {client_first}\r\n*\r\n"
        ),
    );
    let server_firsts: Vec<String> = t
        .replies
        .lines()
        .filter_map(|line| line.strip_prefix("334 "))
        .map(|challenge| {
            String::from_utf8(BASE64.decode(challenge).expect("base64")).expect("UTF-8")
        })
        .collect();
    assert_eq!(
        server_firsts,
        vec![
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ]
    );
    assert_eq!(
        t.replies
            .matches("\r\n501 5.0.0 Authentication cancelled\r\n")
            .count(),
        2
    );
    assert_eq!(
        t.auth_actions.len(),
        2,
        "two key lookups, no outcome to record"
    );
}
