//! The load generator against an in-process SMTP/LMTP responder whose replies are scripted.

use super::report::Stage;
use super::*;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Chooses the final reply code for recipient `rcpt` of the `index`th message received;
/// 0 closes the connection instead.
type FinalCode = fn(index: u64, rcpt: &str) -> u16;

/// Replies a responder gives.
#[derive(Clone, Copy)]
struct Script {
    lmtp: bool,
    rcpt_code: fn(rcpt: &str) -> u16,
    final_code: FinalCode,
}

/// A message as the responder stored it.
#[derive(Debug, Clone)]
struct Received {
    size_bytes: usize,
    message_id: String,
    rcpts: Vec<String>,
}

/// Everything the responder saw.
#[derive(Default)]
struct Log {
    messages: Vec<Received>,
    pipelined_batches: u64,
}

/// Starts a responder on 127.0.0.1 and returns its address and log.
fn responder(script: Script) -> (String, Arc<Mutex<Log>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = Arc::clone(&shared);
            std::thread::spawn(move || serve(stream, script, &log));
        }
    });
    (addr, log)
}

/// Answers one connection until QUIT or EOF.
fn serve(stream: TcpStream, script: Script, log: &Mutex<Log>) {
    let mut out = stream.try_clone().expect("clone");
    let mut input = BufReader::new(stream);
    let _ = out.write_all(b"220 responder ready\r\n");
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if input.buffer().starts_with(b"RCPT") || input.buffer().starts_with(b"DATA") {
            log.lock().expect("log").pipelined_batches += 1;
        }
        let command = line.trim_end();
        let reply = match command.get(..4).unwrap_or("") {
            "EHLO" | "LHLO" => "250-responder\r\n250-PIPELINING\r\n250 8BITMIME".to_owned(),
            "MAIL" => {
                rcpts.clear();
                "250 2.1.0 ok".to_owned()
            }
            "RCPT" => {
                let rcpt = command
                    .trim_start_matches("RCPT TO:<")
                    .trim_end_matches('>');
                let code = (script.rcpt_code)(rcpt);
                if code / 100 == 2 {
                    rcpts.push(rcpt.to_owned());
                }
                format!("{code} rcpt")
            }
            "DATA" if rcpts.is_empty() => "554 5.5.1 no valid recipients".to_owned(),
            "DATA" => {
                let _ = out.write_all(b"354 go ahead\r\n");
                let Some(received) = read_message(&mut input, &rcpts) else {
                    return;
                };
                let index = {
                    let mut log = log.lock().expect("log");
                    log.messages.push(received);
                    log.messages.len() as u64 - 1
                };
                let finals: Vec<String> = if script.lmtp {
                    rcpts
                        .iter()
                        .map(|r| format!("{} final", (script.final_code)(index, r)))
                        .collect()
                } else {
                    vec![format!("{} final", (script.final_code)(index, &rcpts[0]))]
                };
                if finals.iter().any(|f| f.starts_with("0 ")) {
                    return;
                }
                rcpts.clear();
                finals.join("\r\n")
            }
            "RSET" => {
                rcpts.clear();
                "250 2.0.0 reset".to_owned()
            }
            "QUIT" => {
                let _ = out.write_all(b"221 bye\r\n");
                return;
            }
            _ => "500 unknown".to_owned(),
        };
        if out.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
            return;
        }
    }
}

/// Reads a dot-stuffed message up to the terminating dot line.
fn read_message(input: &mut BufReader<TcpStream>, rcpts: &[String]) -> Option<Received> {
    let mut size_bytes = 0;
    let mut message_id = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        assert!(line.ends_with(b"\r\n"), "bare LF in {line:?}");
        if line == b".\r\n" {
            break;
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        if let Some(id) = unstuffed.strip_prefix(b"Message-ID: ") {
            message_id = String::from_utf8_lossy(id).trim_end().to_owned();
        }
        size_bytes += unstuffed.len();
    }
    Some(Received {
        size_bytes,
        message_id,
        rcpts: rcpts.to_vec(),
    })
}

fn always_250(_: &str) -> u16 {
    250
}

fn plan(protocol: Protocol, addr: &str, recipients: &[&str]) -> LoadPlan {
    let mut plan = LoadPlan::new(
        protocol,
        addr,
        recipients.iter().map(|r| r.to_string()).collect(),
    );
    plan.io_timeout = Duration::from_secs(10);
    plan.duration_limit = Duration::from_secs(60);
    plan
}

fn errors(report: &LoadReport) -> BTreeMap<(Stage, u16), u64> {
    report.tally.replies_failed.clone()
}

#[test]
fn smtp_every_third_message_refused_counts_exactly_those_as_errors() {
    let (addr, log) = responder(Script {
        lmtp: false,
        rcpt_code: always_250,
        final_code: |index, _| if index % 3 == 2 { 451 } else { 250 },
    });
    let mut plan = plan(Protocol::Smtp, &addr, &["a@x.test", "b@x.test"]);
    plan.connections = 3;
    plan.messages = 30;
    plan.message_size_bytes = 5000;
    let report = run(&plan).expect("runs");

    let t = &report.tally;
    assert_eq!(
        (t.messages_ok, t.messages_failed, t.recipients_ok),
        (20, 10, 20)
    );
    assert_eq!(errors(&report), BTreeMap::from([((Stage::Final, 451), 10)]));
    assert_eq!(t.message_bytes_ok, 20 * 5000);
    assert_eq!(t.latency_us.len(), 20);
    assert_eq!(t.connection_errors, 0);
    let log = log.lock().expect("log");
    assert_eq!(log.messages.len(), 30);
    assert!(log.messages.iter().all(|m| m.size_bytes == 5000));
    let ids: HashSet<&str> = log.messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 30, "Message-IDs are unique");
    assert!(
        report
            .to_string()
            .contains("errors                  final:451=10")
    );
}

#[test]
fn messages_larger_than_the_socket_buffer_arrive_whole() {
    let (addr, log) = responder(Script {
        lmtp: true,
        rcpt_code: always_250,
        final_code: |_, _| 250,
    });
    let mut plan = plan(Protocol::Lmtp, &addr, &["a@x.test", "b@x.test"]);
    plan.connections = 2;
    plan.messages = 6;
    // Each message takes several writes, the shared body resumed part-way each time.
    let size = 3 << 20;
    plan.message_size_bytes = size;
    let report = run(&plan).expect("runs");

    assert_eq!(
        (report.tally.messages_ok, report.tally.messages_failed),
        (6, 0)
    );
    let log = log.lock().expect("log");
    assert_eq!(log.messages.len(), 6);
    assert!(log.messages.iter().all(|m| m.size_bytes == size));
    let ids: HashSet<&str> = log.messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 6, "Message-IDs are unique");
}

#[test]
fn lmtp_counts_each_recipient_reply() {
    let (addr, log) = responder(Script {
        lmtp: true,
        rcpt_code: always_250,
        final_code: |_, rcpt| if rcpt == "u2@x.test" { 452 } else { 250 },
    });
    let recipients = recipients_from_pattern("u{}@x.test", 4).expect("pattern");
    let mut plan = LoadPlan::new(Protocol::Lmtp, &addr, recipients);
    plan.connections = 2;
    plan.messages = 12;
    plan.rcpts_per_message = 2;
    let report = run(&plan).expect("runs");

    // Round-robin pairs are (u1, u2) and (u3, u4): six messages lose u2.
    let t = &report.tally;
    assert_eq!(
        (t.messages_ok, t.messages_failed, t.recipients_ok),
        (6, 6, 18)
    );
    assert_eq!(errors(&report), BTreeMap::from([((Stage::Final, 452), 6)]));
    let log = log.lock().expect("log");
    assert_eq!(log.messages.len(), 12);
    assert!(
        log.messages
            .iter()
            .all(|m| m.rcpts.len() == 2 && m.rcpts[0] != m.rcpts[1])
    );
}

fn reject_bad(rcpt: &str) -> u16 {
    if rcpt.starts_with("bad") { 550 } else { 250 }
}

#[test]
fn refused_recipient_fails_its_message_without_data() {
    let (addr, log) = responder(Script {
        lmtp: false,
        rcpt_code: reject_bad,
        final_code: |_, _| 250,
    });
    let mut plan = plan(
        Protocol::Smtp,
        &addr,
        &["a@x.test", "bad@x.test", "c@x.test"],
    );
    plan.connections = 2;
    plan.messages = 30;
    let report = run(&plan).expect("runs");

    assert_eq!(
        (report.tally.messages_ok, report.tally.messages_failed),
        (20, 10)
    );
    assert_eq!(errors(&report), BTreeMap::from([((Stage::Rcpt, 550), 10)]));
    let log = log.lock().expect("log");
    assert_eq!(log.messages.len(), 20);
    assert_eq!(log.pipelined_batches, 0);
}

#[test]
fn pipelined_transactions_count_rcpt_and_data_refusals() {
    let (addr, log) = responder(Script {
        lmtp: false,
        rcpt_code: reject_bad,
        final_code: |_, _| 250,
    });
    let mut plan = plan(
        Protocol::Smtp,
        &addr,
        &["a@x.test", "bad@x.test", "c@x.test"],
    );
    plan.connections = 2;
    plan.messages = 30;
    plan.pipeline = true;
    let report = run(&plan).expect("runs");

    assert_eq!(
        (report.tally.messages_ok, report.tally.messages_failed),
        (20, 10)
    );
    assert_eq!(
        errors(&report),
        BTreeMap::from([((Stage::Rcpt, 550), 10), ((Stage::Data, 554), 10)])
    );
    let log = log.lock().expect("log");
    assert_eq!(log.messages.len(), 20);
    assert!(
        log.pipelined_batches >= 30,
        "{} batches",
        log.pipelined_batches
    );
}

#[test]
fn random_pick_chooses_distinct_recipients() {
    let (addr, log) = responder(Script {
        lmtp: true,
        rcpt_code: always_250,
        final_code: |_, _| 250,
    });
    let mut plan = plan(Protocol::Lmtp, &addr, &["a@x", "b@x", "c@x", "d@x", "e@x"]);
    plan.pick = Pick::Random;
    plan.rcpts_per_message = 3;
    plan.messages = 20;
    let report = run(&plan).expect("runs");

    assert_eq!(
        (report.tally.messages_ok, report.tally.recipients_ok),
        (20, 60)
    );
    let log = log.lock().expect("log");
    for message in &log.messages {
        let distinct: HashSet<&String> = message.rcpts.iter().collect();
        assert_eq!(distinct.len(), 3);
    }
}

#[test]
fn refused_connections_are_counted_and_retried_a_bounded_number_of_times() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let mut plan = plan(Protocol::Smtp, &addr, &["a@x.test"]);
    plan.connections = 2;
    plan.reconnects_max = 2;
    let report = run(&plan).expect("runs");

    assert_eq!(report.tally.connection_errors, 6);
    assert_eq!(report.tally.messages_ok, 0);
    assert!(report.tally.connection_error_first.is_some());
}

#[test]
fn dropped_connections_fail_their_message_and_reconnect() {
    let (addr, log) = responder(Script {
        lmtp: false,
        rcpt_code: always_250,
        final_code: |index, _| if index == 4 || index == 9 { 0 } else { 250 },
    });
    let mut plan = plan(Protocol::Smtp, &addr, &["a@x.test"]);
    plan.messages = 20;
    let report = run(&plan).expect("runs");

    let t = &report.tally;
    assert_eq!(
        (t.messages_ok, t.messages_failed, t.connection_errors),
        (18, 2, 2)
    );
    assert!(t.replies_failed.is_empty());
    assert_eq!(log.lock().expect("log").messages.len(), 20);
}

#[test]
fn a_silent_server_times_out_once_and_ends_the_run() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // Greets, says hello, then reads without ever replying again.
            let mut out = stream.try_clone().expect("clone");
            let mut input = BufReader::new(stream);
            let _ = out.write_all(b"220 ready\r\n");
            let mut line = String::new();
            let _ = input.read_line(&mut line);
            let _ = out.write_all(b"250 hello\r\n");
            while input.read_line(&mut line).unwrap_or(0) > 0 {}
        }
    });
    let mut plan = plan(Protocol::Smtp, &addr, &["a@x.test"]);
    plan.duration_limit = Duration::from_secs(1);
    plan.io_timeout = Duration::from_secs(2);
    plan.reconnects_max = 100;
    let report = run(&plan).expect("runs");

    let t = &report.tally;
    assert_eq!(
        (t.messages_ok, t.messages_failed, t.connection_errors),
        (0, 1, 1)
    );
}

#[test]
fn bad_plans_are_refused() {
    let mut plan = plan(Protocol::Smtp, "127.0.0.1:1", &["a@x.test"]);
    plan.rcpts_per_message = 2;
    assert!(matches!(run(&plan), Err(PlanError::OutOfRange { .. })));
    let bad_address = LoadPlan::new(Protocol::Smtp, "127.0.0.1:1", vec!["a b@x".to_owned()]);
    assert!(matches!(run(&bad_address), Err(PlanError::Address(_))));
    assert!(matches!(
        recipients_from_pattern("user@x", 3),
        Err(PlanError::Pattern(_))
    ));
}
