//! SMTP (RFC 5321) and LMTP (RFC 2033) server sessions as state machines without I/O.
//!
//! The runtime feeds received bytes to [`Session::feed`] and writes the reply bytes it
//! gets back; a [`Action::Deliver`] asks it to store a message durably and report each
//! recipient's outcome through [`Session::delivered`]. Commands are parsed by
//! smtp-proto; this module frames lines, enforces limits and keeps the state.
//!
//! Choices made here:
//! - Command lines may end in CRLF or bare LF (RFC 5321 §2.3.8 asks for CRLF; many
//!   clients send LF and a command line cannot carry message content). A command line
//!   longer than `max_command_line_bytes` (with its line ending) gets `500 5.5.2` and
//!   is discarded up to the next LF; a NUL byte gets `500 5.5.2`.
//! - DATA ends only at CRLF "." CRLF, so bare LF or CR cannot smuggle an end of data
//!   (CVE-2023-51766 class). Bare LF and bare CR inside the content are stored as CRLF,
//!   the same for BDAT; a leading dot is removed only after CRLF.
//! - A message over `max_message_bytes` is read to its end (DATA) or its chunk is read
//!   (BDAT) without being stored, then refused with `552 5.3.4`. A text line over
//!   `max_text_line_bytes` (with its CRLF) is read the same way and refused with
//!   `554 5.6.0`: the content, not the mail system, is at fault.
//! - Enhanced status codes (RFC 2034) are sent once the client greeted with EHLO/LHLO.
//! - Address syntax errors use `501 5.1.7` (sender) and `501 5.1.3` (recipient); other
//!   argument errors `501 5.5.4`; parameters of extensions not offered `555 5.5.4`.
//!   DSN parameters (NOTIFY, ORCPT, RET, ENVID) are accepted and ignored.
//! - `<postmaster>` is looked up as `postmaster`.
//! - Errors counted towards `max_errors`: unknown or unimplemented commands, syntax
//!   and sequence errors, over-long lines, NUL bytes, refused senders and recipients,
//!   and failed or cancelled authentications.
//!
//! Submission (RFC 6409) adds SMTP AUTH (RFC 4954) over [`crate::sasl`]:
//! - AUTH is offered only in [`Mode::Submission`]; SCRAM-SHA-256 always, PLAIN and
//!   LOGIN only under TLS or where `plaintext_login` allows passwords in the clear
//!   (elsewhere they get `530 5.7.0`). The MX and LMTP listeners answer AUTH with 502.
//! - An AUTH exchange reads the client's base64 lines itself ("*" cancels); an
//!   exchange line may be as long as [`AUTH_LINE_MAX_BYTES`]. While the runtime checks
//!   a password or looks up SCRAM keys, input is only buffered, so commands pipelined
//!   after `AUTH PLAIN <initial-response>` run once the outcome is known.
//! - MAIL needs an authenticated session, and its reverse path must be an address the
//!   account owns ([`Directory::may_send_as`]; the null sender is refused). Only local
//!   recipients are accepted: there is no outbound queue.
//! - Received headers name the protocol with an "A" (RFC 3848: ESMTPA, ESMTPSA, ...),
//!   never the login or anything of the exchange.

mod body;

use crate::sasl::{self, Exchange, Failure, Mechanism, ScramKeys};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use body::{Body, Rejection};
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, AUTH_SCRAM_SHA_256, Error as ParseError, MAIL_BODY_BINARYMIME,
    MAIL_SMTPUTF8, Request,
};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// Input buffered while a delivery or an authentication check is outstanding; beyond
/// it the session closes with 421.
pub const PIPELINED_INPUT_MAX_BYTES: usize = 1 << 20;

/// Longest client line in an AUTH exchange, with its line ending (RFC 4954 §4: 12288).
pub const AUTH_LINE_MAX_BYTES: usize = 12288;

/// Which protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SMTP (RFC 5321) with ESMTP extensions.
    Smtp,
    /// LMTP (RFC 2033): LHLO, and one reply per recipient after the message.
    Lmtp,
    /// Message submission (RFC 6409): SMTP from authenticated users to local recipients.
    Submission,
}

/// Bounds on what a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in octets after dot-unstuffing; advertised as SIZE.
    pub max_message_bytes: u64,
    /// Most recipients in one transaction.
    pub max_recipients: usize,
    /// Longest command line including its line ending (RFC 5321 §4.5.3.1.4: 512).
    pub max_command_line_bytes: usize,
    /// Longest message text line including CRLF (RFC 5321 §4.5.3.1.6: 1000).
    pub max_text_line_bytes: usize,
    /// Errors after which the session answers 421 and closes.
    pub max_errors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 50 << 20,
            max_recipients: 100,
            max_command_line_bytes: 512,
            max_text_line_bytes: 1000,
            max_errors: 10,
        }
    }
}

/// How a session presents itself and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// SMTP or LMTP.
    pub mode: Mode,
    /// The host name in the greeting and Received headers.
    pub hostname: String,
    /// Bounds on client input.
    pub limits: Limits,
    /// Whether the runtime can start TLS on this connection (STARTTLS is offered).
    pub starttls: bool,
    /// Whether passwords (AUTH PLAIN and LOGIN) may be sent before TLS on this listener.
    pub plaintext_login: bool,
    /// Fresh random printable ASCII (no commas) from the runtime, per connection: the
    /// stem of each SCRAM server nonce.
    pub sasl_nonce: String,
}

/// What the directory says of a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// Local accounts receive the mail (one, or several for an alias).
    Local {
        /// The accounts the mail goes to; never empty.
        accounts: Vec<String>,
    },
    /// The domain is ours but the user does not exist.
    UnknownUser,
    /// The domain is not ours.
    RelayDenied,
}

/// Recipient and sender lookups used by RCPT TO and, in submission, MAIL FROM.
pub trait Directory {
    /// Looks up a recipient address as the client wrote it (without angle brackets).
    fn recipient(&self, address: &str) -> Recipient;
    /// True when the authenticated `account` may use `sender` (as the client wrote it,
    /// never empty) as the reverse path of a submitted message.
    fn may_send_as(&self, account: &str, sender: &str) -> bool;
}

/// A message to store durably for its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The reverse path ("" for the null sender).
    pub mail_from: String,
    /// For each accepted RCPT, in order, the accounts it expands to (duplicates kept).
    pub recipients: Vec<Vec<String>>,
    /// The message with a Received header prepended, dot-unstuffed, CRLF line endings.
    pub message: Vec<u8>,
    /// Line feeds in `message`, counted as it arrived (see [`crate::message::parse_counted`]).
    pub newlines: u64,
}

/// What the runtime must do after writing a step's reply.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Store the message, then call [`Session::delivered`].
    Deliver(Delivery),
    /// Close the connection.
    Close,
    /// Start TLS now (the 220 reply is in this step), then call [`Session::tls_started`].
    /// Input that followed STARTTLS has already been discarded (RFC 3207 §4.2).
    StartTls,
    /// Log a client in: the runtime answers [`sasl::Request::ScramKeys`] through
    /// [`Session::scram_keys`], the others through [`Session::authenticated`].
    Login(sasl::Request),
}

/// Shows the action, never a password.
impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Deliver(delivery) => f.debug_tuple("Deliver").field(delivery).finish(),
            Action::Close => f.write_str("Close"),
            Action::StartTls => f.write_str("StartTls"),
            Action::Login(request) => f.debug_tuple("Login").field(request).finish(),
        }
    }
}

/// The result of feeding input: reply bytes to write, then an optional action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    /// Reply bytes, in command order.
    pub reply: Vec<u8>,
    /// What to do once the reply is written.
    pub action: Option<Action>,
}

/// Outcome of one recipient's copy: durable, or a temporary failure with its reply text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientOutcome {
    /// The copy is on stable storage.
    Durable,
    /// The copy could not be stored now; the client should retry later.
    TempFail {
        /// Reply code, 451 or 452.
        code: u16,
        /// Enhanced status code, such as "4.3.0".
        enhanced: &'static str,
        /// Reply text.
        text: String,
    },
}

/// One SMTP or LMTP connection's protocol state.
pub struct Session {
    config: SessionConfig,
    peer: SocketAddr,
    date: String,
    hello: Option<Hello>,
    transaction: Option<Transaction>,
    phase: Phase,
    pending: Vec<u8>,
    pending_overflow: bool,
    /// TLS is active on the connection.
    tls: bool,
    discarding_line: bool,
    errors: usize,
    delivering_to: Vec<String>,
    /// The account this session authenticated as (submission only).
    account: Option<String>,
    /// AUTH exchanges started, to make each SCRAM server nonce distinct.
    sasl_exchanges: u64,
}

/// How the client greeted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeting {
    Helo,
    Ehlo,
    Lhlo,
}

struct Hello {
    greeting: Greeting,
    domain: String,
}

/// One mail transaction, from MAIL FROM to the end of the message.
struct Transaction {
    mail_from: String,
    smtputf8: bool,
    /// The size MAIL FROM declared (RFC 1870), 0 if none.
    declared_bytes: usize,
    /// Accepted recipients as (address, accounts).
    recipients: Vec<(String, Vec<String>)>,
    /// Present once DATA or the first BDAT began.
    body: Option<Body>,
}

enum Phase {
    Command,
    Data {
        receiver: DataReceiver,
        /// Unstuffed bytes not yet handed to the body (a trailing CR that DataReceiver
        /// may still take back when it sees the end of data).
        staging: Vec<u8>,
        /// The receiver has taken in a whole CRLF line last (or nothing yet), so it
        /// waits for a line start: lines that need no repair may bypass it.
        between_lines: bool,
        /// The last byte the receiver took in.
        last_byte: u8,
    },
    Bdat {
        sink: BdatSink,
        chunk_bytes: usize,
        last: bool,
        /// The reply owed once the chunk is read, when the chunk is refused.
        refusal: Option<Reply>,
    },
    Delivering,
    /// An AUTH exchange waits for the client's next line.
    AuthResponse(Box<Sasl>),
    /// An AUTH exchange waits for the runtime: a password check, a SCRAM key lookup
    /// (the exchange is kept to continue with the keys) or the record of its end.
    Authenticating(Option<Box<Sasl>>),
    Closed,
}

/// A SASL exchange in progress.
struct Sasl {
    exchange: Exchange,
    /// The login whose SCRAM keys were looked up, so its outcome can be recorded.
    login: Option<String>,
}

enum BdatSink {
    Keep(BdatReceiver, Vec<u8>),
    Discard(DummyDataReceiver),
}

/// A reply line owed to the client.
struct Reply {
    code: u16,
    enhanced: &'static str,
    text: String,
    is_error: bool,
}

/// A framed command line, or why there is none.
enum Framed<'d> {
    Line(&'d [u8]),
    TooLong,
    NeedMore,
}

impl Session {
    /// A new session for a connection from `peer`; `now_rfc5322_date` dates Received headers.
    pub fn new(cfg: SessionConfig, peer: SocketAddr, now_rfc5322_date: String) -> Self {
        Session {
            config: cfg,
            peer,
            date: now_rfc5322_date,
            hello: None,
            transaction: None,
            phase: Phase::Command,
            pending: Vec::new(),
            pending_overflow: false,
            tls: false,
            discarding_line: false,
            errors: 0,
            delivering_to: Vec::new(),
            account: None,
            sasl_exchanges: 0,
        }
    }

    /// The 220 greeting sent when the connection opens.
    pub fn greeting(&mut self) -> Vec<u8> {
        let protocol = match self.config.mode {
            Mode::Smtp | Mode::Submission => "ESMTP",
            Mode::Lmtp => "LMTP",
        };
        format!("220 {} {protocol} treehouse\r\n", self.config.hostname).into_bytes()
    }

    /// Takes received bytes and answers the complete commands among them; a partial
    /// command line is kept for the next call. While a delivery or an authentication
    /// check is outstanding, input is only buffered.
    pub fn feed(&mut self, input: &[u8], dir: &dyn Directory) -> Step {
        match self.phase {
            Phase::Closed => {
                return Step {
                    reply: Vec::new(),
                    action: Some(Action::Close),
                };
            }
            Phase::Delivering | Phase::Authenticating(_) => {
                if self.pending.len().saturating_add(input.len()) > PIPELINED_INPUT_MAX_BYTES {
                    self.pending_overflow = true;
                } else {
                    self.pending.extend_from_slice(input);
                }
                return Step::default();
            }
            _ => {}
        }
        let mut reply = Vec::new();
        let action = if self.pending.is_empty() {
            self.run(input, dir, &mut reply)
        } else {
            let mut data = std::mem::take(&mut self.pending);
            data.extend_from_slice(input);
            self.run(&data, dir, &mut reply)
        };
        Step { reply, action }
    }

    /// Reports the outcome of an [`Action::Deliver`], one per recipient in order, and
    /// goes on with input buffered meanwhile.
    pub fn delivered(&mut self, outcomes: Vec<RecipientOutcome>, dir: &dyn Directory) -> Step {
        if matches!(self.phase, Phase::Closed) {
            // Timed out while the delivery was in flight: nothing more to say.
            return Step {
                reply: Vec::new(),
                action: Some(Action::Close),
            };
        }
        assert!(
            matches!(self.phase, Phase::Delivering),
            "delivered() called without an outstanding delivery"
        );
        let addresses = std::mem::take(&mut self.delivering_to);
        assert_eq!(
            outcomes.len(),
            addresses.len(),
            "one outcome per recipient of the delivery"
        );
        let mut reply = Vec::new();
        match self.config.mode {
            Mode::Smtp | Mode::Submission => match outcomes.iter().find_map(temp_fail) {
                Some((code, enhanced, text)) => self.write(&mut reply, code, enhanced, &text),
                None => self.write(&mut reply, 250, "2.0.0", "Ok: delivered"),
            },
            Mode::Lmtp => {
                for (outcome, address) in outcomes.iter().zip(&addresses) {
                    let address = printable(address);
                    match temp_fail(outcome) {
                        Some((code, enhanced, text)) => {
                            self.write(&mut reply, code, enhanced, &format!("<{address}> {text}"))
                        }
                        None => {
                            self.write(&mut reply, 250, "2.0.0", &format!("<{address}> delivered"))
                        }
                    }
                }
            }
        }
        self.phase = Phase::Command;
        self.resume(reply, dir)
    }

    /// Reports the outcome of a [`sasl::Request::Password`] or
    /// [`sasl::Request::ScramDone`]: the account, or None when the credentials were
    /// wrong; then goes on with input buffered meanwhile.
    pub fn authenticated(&mut self, account: Option<String>, dir: &dyn Directory) -> Step {
        if matches!(self.phase, Phase::Closed) {
            return Step {
                reply: Vec::new(),
                action: Some(Action::Close),
            };
        }
        assert!(
            matches!(self.phase, Phase::Authenticating(None)),
            "authenticated() called without an outstanding authentication"
        );
        self.phase = Phase::Command;
        let mut reply = Vec::new();
        match account {
            Some(account) => {
                self.account = Some(account);
                self.write(&mut reply, 235, "2.7.0", "Authentication successful");
            }
            None => {
                self.error(
                    &mut reply,
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
                );
                if let Some(action) = self.check_errors(&mut reply) {
                    return Step {
                        reply,
                        action: Some(action),
                    };
                }
            }
        }
        self.resume(reply, dir)
    }

    /// Reports the outcome of a [`sasl::Request::ScramKeys`]: the canonical account and
    /// its keys, or None when the login names no account with SCRAM keys.
    pub fn scram_keys(&mut self, found: Option<(String, ScramKeys)>, dir: &dyn Directory) -> Step {
        if matches!(self.phase, Phase::Closed) {
            return Step {
                reply: Vec::new(),
                action: Some(Action::Close),
            };
        }
        let Phase::Authenticating(Some(mut sasl)) =
            std::mem::replace(&mut self.phase, Phase::Command)
        else {
            panic!("scram_keys() called without an outstanding key lookup");
        };
        let step = sasl.exchange.keys(found);
        let mut reply = Vec::new();
        if let Some(action) = self.sasl_step(sasl, step, &mut reply) {
            return Step {
                reply,
                action: Some(action),
            };
        }
        self.resume(reply, dir)
    }

    /// Goes on with the input buffered while the runtime was busy, after `reply`.
    fn resume(&mut self, mut reply: Vec<u8>, dir: &dyn Directory) -> Step {
        if self.pending_overflow {
            self.write(
                &mut reply,
                421,
                "4.7.0",
                &self.closing("too much pipelined input"),
            );
            self.close();
            return Step {
                reply,
                action: Some(Action::Close),
            };
        }
        let data = std::mem::take(&mut self.pending);
        let action = self.run(&data, dir, &mut reply);
        Step { reply, action }
    }

    /// Sets the date used in Received headers from now on.
    pub fn set_clock(&mut self, now_rfc5322_date: String) {
        self.date = now_rfc5322_date;
    }

    /// The 421 reply for an idle client; the session is closed afterwards.
    pub fn timed_out(&mut self) -> Vec<u8> {
        let mut reply = Vec::new();
        self.write(&mut reply, 421, "4.4.2", &self.closing("idle timeout"));
        self.close();
        reply
    }

    /// Processes `data` from the start; what is not consumed goes to `self.pending`.
    fn run(&mut self, data: &[u8], dir: &dyn Directory, out: &mut Vec<u8>) -> Option<Action> {
        let mut pos = 0;
        let action = loop {
            match self.phase {
                Phase::Command => match self.frame(data, &mut pos) {
                    Framed::Line(line) => {
                        if let Some(action) = self.command(line, dir, out) {
                            break Some(action);
                        }
                    }
                    Framed::TooLong => {
                        self.error(out, 500, "5.5.2", "Error: line too long");
                        if let Some(action) = self.check_errors(out) {
                            break Some(action);
                        }
                    }
                    Framed::NeedMore => break None,
                },
                Phase::Data { .. } => {
                    if pos == data.len() {
                        break None;
                    }
                    if self.data_step(data, &mut pos)
                        && let Some(action) = self.end_of_message(out)
                    {
                        break Some(action);
                    }
                }
                Phase::Bdat { .. } => {
                    if !self.bdat_step(data, &mut pos) {
                        break None;
                    }
                    if let Some(action) = self.end_of_chunk(out) {
                        break Some(action);
                    }
                }
                Phase::AuthResponse(_) => match self.frame(data, &mut pos) {
                    Framed::Line(line) => {
                        if let Some(action) = self.auth_response(line, out) {
                            break Some(action);
                        }
                    }
                    Framed::TooLong => {
                        self.phase = Phase::Command;
                        self.error(
                            out,
                            500,
                            "5.5.6",
                            "Error: authentication exchange line too long",
                        );
                        if let Some(action) = self.check_errors(out) {
                            break Some(action);
                        }
                    }
                    Framed::NeedMore => break None,
                },
                Phase::Delivering | Phase::Authenticating(_) => break None,
                Phase::Closed => break Some(Action::Close),
            }
        };
        // After STARTTLS, whatever the client sent in the clear is dropped, never run
        // inside TLS (RFC 3207 §4.2; the CVE-2011-0411 injection).
        if !matches!(self.phase, Phase::Closed) && !matches!(action, Some(Action::StartTls)) {
            self.pending.extend_from_slice(&data[pos..]);
        }
        action
    }

    /// The next command line in `data[*pos..]`, framed by LF and bounded in length.
    fn frame<'d>(&mut self, data: &'d [u8], pos: &mut usize) -> Framed<'d> {
        let max = match self.phase {
            Phase::AuthResponse(_) => {
                AUTH_LINE_MAX_BYTES.max(self.config.limits.max_command_line_bytes)
            }
            _ => self.config.limits.max_command_line_bytes,
        };
        loop {
            let rest = &data[*pos..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    *pos += lf + 1;
                    if self.discarding_line {
                        self.discarding_line = false;
                        continue;
                    }
                    let line = &rest[..=lf];
                    return if line.len() > max {
                        Framed::TooLong
                    } else {
                        Framed::Line(line)
                    };
                }
                None if self.discarding_line => {
                    *pos = data.len();
                    return Framed::NeedMore;
                }
                // Whatever ends this line, it will be longer than allowed.
                None if rest.len() >= max => {
                    *pos = data.len();
                    self.discarding_line = true;
                    return Framed::TooLong;
                }
                None => return Framed::NeedMore,
            }
        }
    }

    /// Handles one command line (ending in LF).
    fn command(&mut self, line: &[u8], dir: &dyn Directory, out: &mut Vec<u8>) -> Option<Action> {
        if line.contains(&0) {
            self.error(out, 500, "5.5.2", "Error: NUL character in command");
            return self.check_errors(out);
        }
        match Request::parse(&mut line.iter()) {
            Ok(request) => {
                if let Some(action) = self.request(request, dir, out) {
                    return Some(action);
                }
            }
            Err(error) => self.parse_error(error, out),
        }
        self.check_errors(out)
    }

    fn parse_error(&mut self, error: ParseError, out: &mut Vec<u8>) {
        match error {
            ParseError::UnknownCommand => self.error(out, 500, "5.5.1", "Error: unknown command"),
            ParseError::InvalidSenderAddress => {
                self.error(out, 501, "5.1.7", "Error: bad sender address syntax")
            }
            ParseError::InvalidRecipientAddress => {
                self.error(out, 501, "5.1.3", "Error: bad recipient address syntax")
            }
            ParseError::SyntaxError { syntax } => {
                self.error(out, 501, "5.5.4", &format!("Syntax: {syntax}"))
            }
            ParseError::InvalidParameter { param } => self.error(
                out,
                501,
                "5.5.4",
                &format!("Error: invalid {param} parameter"),
            ),
            ParseError::UnsupportedParameter { param } => {
                let text = format!("Error: unsupported parameter {}", printable(&param));
                self.error(out, 555, "5.5.4", &text)
            }
            ParseError::NeedsMoreData { .. }
            | ParseError::ResponseTooLong
            | ParseError::InvalidResponse { .. } => {
                self.error(out, 501, "5.5.4", "Error: syntax error")
            }
        }
    }

    fn request(
        &mut self,
        request: Request<Cow<'_, str>>,
        dir: &dyn Directory,
        out: &mut Vec<u8>,
    ) -> Option<Action> {
        let lmtp = self.config.mode == Mode::Lmtp;
        match request {
            Request::Ehlo { host } if !lmtp => self.hello(Greeting::Ehlo, &host, out),
            Request::Helo { host } if !lmtp => self.hello(Greeting::Helo, &host, out),
            Request::Lhlo { host } if lmtp => self.hello(Greeting::Lhlo, &host, out),
            Request::Ehlo { .. } | Request::Helo { .. } => {
                self.error(out, 500, "5.5.1", "Error: this is LMTP, use LHLO")
            }
            Request::Lhlo { .. } => self.error(out, 500, "5.5.1", "Error: unknown command"),
            Request::Mail { from } => self.mail(&from.address, from.flags, from.size, dir, out),
            Request::Rcpt { to } => self.rcpt(&to.address, dir, out),
            Request::Data => self.data(out),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.transaction = None;
                self.write(out, 250, "2.0.0", "Ok");
            }
            Request::Noop { .. } => self.write(out, 250, "2.0.0", "Ok"),
            Request::Vrfy { .. } => self.write(
                out,
                252,
                "2.5.2",
                "Cannot verify user, but will accept message and attempt delivery",
            ),
            Request::Expn { .. } => self.error(out, 502, "5.5.1", "Error: EXPN not available"),
            Request::Help { .. } => {
                let hello = match self.config.mode {
                    Mode::Smtp => "EHLO HELO",
                    Mode::Lmtp => "LHLO",
                    Mode::Submission => "EHLO HELO AUTH",
                };
                let text = format!("Commands: {hello} MAIL RCPT DATA BDAT RSET NOOP VRFY QUIT");
                self.write(out, 214, "2.0.0", &text)
            }
            Request::Quit => {
                self.write(out, 221, "2.0.0", "Bye");
                self.close();
                return Some(Action::Close);
            }
            Request::StartTls => return self.start_tls(out),
            Request::Auth {
                mechanism,
                initial_response,
            } if self.config.mode == Mode::Submission => {
                return self.auth(mechanism, &initial_response, out);
            }
            Request::Auth { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.error(out, 502, "5.5.1", "Error: command not implemented")
            }
        }
        None
    }

    fn start_tls(&mut self, out: &mut Vec<u8>) -> Option<Action> {
        if !self.config.starttls || self.tls {
            self.error(out, 502, "5.5.1", "Error: STARTTLS not available");
            return self.check_errors(out);
        }
        if self.transaction.is_some() {
            self.error(
                out,
                503,
                "5.5.1",
                "Error: STARTTLS inside a mail transaction",
            );
            return self.check_errors(out);
        }
        self.write(out, 220, "2.0.0", "Ready to start TLS");
        Some(Action::StartTls)
    }

    /// The runtime finished the TLS handshake: the session starts over (RFC 3207 §4.2),
    /// the client must say EHLO again.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.hello = None;
        self.transaction = None;
        self.account = None;
        self.pending.clear();
    }

    /// Whether passwords may cross this connection: under TLS, or where allowed in the clear.
    fn passwords_allowed(&self) -> bool {
        self.tls || self.config.plaintext_login
    }

    /// The mechanisms EHLO advertises now.
    fn mechanisms(&self) -> impl Iterator<Item = Mechanism> + '_ {
        Mechanism::ALL
            .into_iter()
            .filter(|m| *m == Mechanism::ScramSha256 || self.passwords_allowed())
    }

    /// Starts an AUTH exchange (RFC 4954 §4).
    fn auth(
        &mut self,
        mechanism: u64,
        initial_response: &str,
        out: &mut Vec<u8>,
    ) -> Option<Action> {
        match &self.hello {
            Some(hello) if hello.greeting == Greeting::Ehlo => {}
            _ => {
                self.error(out, 503, "5.5.1", "Error: send EHLO first");
                return None;
            }
        }
        if self.transaction.is_some() {
            self.error(
                out,
                503,
                "5.5.1",
                "Error: AUTH not allowed during a mail transaction",
            );
            return None;
        }
        if self.account.is_some() {
            self.error(out, 503, "5.5.1", "Error: already authenticated");
            return None;
        }
        let mechanism = match mechanism {
            AUTH_PLAIN => Mechanism::Plain,
            AUTH_LOGIN => Mechanism::Login,
            AUTH_SCRAM_SHA_256 => Mechanism::ScramSha256,
            _ => {
                self.error(
                    out,
                    504,
                    "5.5.4",
                    "Error: unrecognized authentication mechanism",
                );
                return None;
            }
        };
        if mechanism != Mechanism::ScramSha256 && !self.passwords_allowed() {
            self.error(out, 530, "5.7.0", "Must issue a STARTTLS command first");
            return None;
        }
        let initial_response = match initial_response {
            "" => None,
            "=" => Some(Vec::new()),
            text => match BASE64.decode(text) {
                Ok(bytes) => Some(bytes),
                Err(_) => {
                    self.error(out, 501, "5.5.2", "Error: invalid base64 data");
                    return None;
                }
            },
        };
        let nonce = format!("{}{}", self.config.sasl_nonce, self.sasl_exchanges);
        self.sasl_exchanges += 1;
        let (exchange, step) = Exchange::start(mechanism, initial_response.as_deref(), &nonce);
        let sasl = Box::new(Sasl {
            exchange,
            login: None,
        });
        self.sasl_step(sasl, step, out)
    }

    /// Takes the client's line in an AUTH exchange: "*" cancels, else base64.
    fn auth_response(&mut self, line: &[u8], out: &mut Vec<u8>) -> Option<Action> {
        let Phase::AuthResponse(mut sasl) = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            unreachable!("auth_response outside an AUTH exchange");
        };
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"*" {
            self.error(out, 501, "5.0.0", "Authentication cancelled");
            return self.check_errors(out);
        }
        let Ok(response) = BASE64.decode(line) else {
            self.error(out, 501, "5.5.2", "Error: invalid base64 data");
            return self.check_errors(out);
        };
        let step = sasl.exchange.respond(&response);
        self.sasl_step(sasl, step, out)
    }

    /// Acts on one step of an AUTH exchange.
    fn sasl_step(
        &mut self,
        mut sasl: Box<Sasl>,
        step: sasl::Step,
        out: &mut Vec<u8>,
    ) -> Option<Action> {
        match step {
            sasl::Step::Challenge(challenge) => {
                out.extend_from_slice(format!("334 {}\r\n", BASE64.encode(challenge)).as_bytes());
                self.phase = Phase::AuthResponse(sasl);
                None
            }
            sasl::Step::VerifyPassword { login, password } => {
                self.phase = Phase::Authenticating(None);
                Some(Action::Login(sasl::Request::Password { login, password }))
            }
            sasl::Step::NeedKeys { login } => {
                sasl.login = Some(login.clone());
                self.phase = Phase::Authenticating(Some(sasl));
                Some(Action::Login(sasl::Request::ScramKeys { login }))
            }
            sasl::Step::Success { account } => {
                debug_assert!(sasl.login.is_some(), "SCRAM succeeds only after its keys");
                let login = sasl.login.unwrap_or_else(|| account.clone());
                self.phase = Phase::Authenticating(None);
                Some(Action::Login(sasl::Request::ScramDone {
                    login,
                    account: Some(account),
                }))
            }
            sasl::Step::Failed(Failure::Credentials) => match sasl.login {
                Some(login) => {
                    self.phase = Phase::Authenticating(None);
                    Some(Action::Login(sasl::Request::ScramDone {
                        login,
                        account: None,
                    }))
                }
                None => {
                    self.error(out, 535, "5.7.8", "Authentication credentials invalid");
                    self.check_errors(out)
                }
            },
            sasl::Step::Failed(Failure::Cancelled) => {
                self.error(out, 501, "5.0.0", "Authentication cancelled");
                self.check_errors(out)
            }
            sasl::Step::Failed(Failure::Malformed) => {
                self.error(
                    out,
                    501,
                    "5.5.2",
                    "Error: malformed authentication response",
                );
                self.check_errors(out)
            }
        }
    }

    fn hello(&mut self, greeting: Greeting, domain: &str, out: &mut Vec<u8>) {
        self.transaction = None;
        self.hello = Some(Hello {
            greeting,
            domain: domain.to_string(),
        });
        let host = &self.config.hostname;
        if greeting == Greeting::Helo {
            out.extend_from_slice(format!("250 {host}\r\n").as_bytes());
            return;
        }
        let size = self.config.limits.max_message_bytes;
        let mut lines = vec![
            host.clone(),
            "PIPELINING".into(),
            "8BITMIME".into(),
            format!("SIZE {size}"),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.config.mode == Mode::Submission && self.account.is_none() {
            let names: Vec<&str> = self.mechanisms().map(Mechanism::name).collect();
            lines.push(format!("AUTH {}", names.join(" ")));
        }
        lines.push("CHUNKING".into());
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let separator = if i == last { ' ' } else { '-' };
            out.extend_from_slice(format!("250{separator}{line}\r\n").as_bytes());
        }
    }

    /// Answers 503 and returns false unless the client has greeted.
    fn require_hello(&mut self, out: &mut Vec<u8>) -> bool {
        if self.hello.is_some() {
            return true;
        }
        let text = match self.config.mode {
            Mode::Smtp | Mode::Submission => "Error: send EHLO or HELO first",
            Mode::Lmtp => "Error: send LHLO first",
        };
        self.error(out, 503, "5.5.1", text);
        false
    }

    fn mail(
        &mut self,
        address: &str,
        flags: u64,
        size: usize,
        dir: &dyn Directory,
        out: &mut Vec<u8>,
    ) {
        if !self.require_hello(out) {
            return;
        }
        if self.config.mode == Mode::Submission && self.account.is_none() {
            return self.error(out, 530, "5.7.0", "Authentication required");
        }
        if self.transaction.is_some() {
            return self.error(out, 503, "5.5.1", "Error: nested MAIL command");
        }
        if flags & MAIL_BODY_BINARYMIME != 0 {
            return self.error(out, 555, "5.5.4", "Error: BINARYMIME not supported");
        }
        let smtputf8 = flags & MAIL_SMTPUTF8 != 0;
        if !smtputf8 && !address.is_ascii() {
            return self.error(out, 553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
        }
        if size as u64 > self.config.limits.max_message_bytes {
            return self.write(out, 552, "5.3.4", "Error: message size exceeds fixed limit");
        }
        if let Some(account) = &self.account
            && (address.is_empty() || !dir.may_send_as(account, address))
        {
            let text = format!(
                "Sender address rejected: not owned by {}",
                printable(account)
            );
            return self.error(out, 553, "5.7.1", &text);
        }
        self.transaction = Some(Transaction {
            mail_from: address.to_string(),
            smtputf8,
            declared_bytes: size,
            recipients: Vec::new(),
            body: None,
        });
        self.write(out, 250, "2.1.0", "Ok");
    }

    fn rcpt(&mut self, address: &str, dir: &dyn Directory, out: &mut Vec<u8>) {
        if !self.require_hello(out) {
            return;
        }
        let max_recipients = self.config.limits.max_recipients;
        let (smtputf8, count) = match &self.transaction {
            None => return self.error(out, 503, "5.5.1", "Error: need MAIL command"),
            Some(tx) if tx.body.is_some() => {
                return self.error(out, 503, "5.5.1", "Error: message transfer in progress");
            }
            Some(tx) => (tx.smtputf8, tx.recipients.len()),
        };
        if count >= max_recipients {
            return self.write(out, 452, "4.5.3", "Error: too many recipients");
        }
        if !smtputf8 && !address.is_ascii() {
            return self.error(out, 553, "5.6.7", "Error: non-ASCII address needs SMTPUTF8");
        }
        let lookup = if address.is_empty() {
            "postmaster"
        } else {
            address
        };
        match dir.recipient(lookup) {
            Recipient::Local { accounts } => {
                if let Some(tx) = self.transaction.as_mut() {
                    tx.recipients.push((lookup.to_string(), accounts));
                }
                self.write(out, 250, "2.1.5", "Ok");
            }
            Recipient::UnknownUser => self.error(out, 550, "5.1.1", "Error: user unknown"),
            Recipient::RelayDenied if self.config.mode == Mode::Submission => self.error(
                out,
                550,
                "5.7.1",
                "Relaying to remote domains is not available: this server has no outbound queue yet",
            ),
            Recipient::RelayDenied => self.error(out, 550, "5.7.1", "Error: relay denied"),
        }
    }

    fn data(&mut self, out: &mut Vec<u8>) {
        if !self.require_hello(out) {
            return;
        }
        let body = self.new_body();
        match self.transaction.as_mut() {
            None => self.error(out, 503, "5.5.1", "Error: need MAIL command"),
            Some(tx) if tx.body.is_some() => {
                self.error(out, 503, "5.5.1", "Error: BDAT transfer in progress")
            }
            Some(tx) if tx.recipients.is_empty() => {
                self.write(out, 554, "5.5.1", "Error: no valid recipients")
            }
            Some(tx) => {
                tx.body = Some(body);
                let mut receiver = DataReceiver::new();
                // The DATA command's own CRLF precedes the content, so that a first
                // line "." ends it and a first line ".." is unstuffed.
                receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
                self.phase = Phase::Data {
                    receiver,
                    staging: Vec::new(),
                    between_lines: true,
                    last_byte: b'\n',
                };
                out.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
            }
        }
    }

    /// Starts reading a BDAT chunk; its reply comes once the chunk is read.
    fn bdat(&mut self, chunk_bytes: usize, last: bool) {
        // The first chunk starts the body.
        let fresh = self
            .transaction
            .as_ref()
            .filter(|tx| tx.body.is_none())
            .map(|_| self.new_body());
        let refuse = |code, enhanced, text: &str, is_error| {
            Some(Reply {
                code,
                enhanced,
                text: text.to_string(),
                is_error,
            })
        };
        let refusal = if self.hello.is_none() {
            let text = match self.config.mode {
                Mode::Smtp | Mode::Submission => "Error: send EHLO or HELO first",
                Mode::Lmtp => "Error: send LHLO first",
            };
            refuse(503, "5.5.1", text, true)
        } else {
            match self.transaction.as_mut() {
                None => refuse(503, "5.5.1", "Error: need MAIL command", true),
                Some(tx) if tx.recipients.is_empty() => {
                    refuse(554, "5.5.1", "Error: no valid recipients", false)
                }
                Some(tx) => {
                    // Some only when the transaction has no body yet.
                    if let Some(fresh) = fresh {
                        tx.body = Some(fresh);
                    }
                    if let Some(body) = tx.body.as_mut()
                        && body.rejection().is_none()
                        && body.would_exceed(chunk_bytes)
                    {
                        body.reject_too_big();
                    }
                    None
                }
            }
        };
        let keep = refusal.is_none()
            && self
                .transaction
                .as_ref()
                .and_then(|tx| tx.body.as_ref())
                .is_some_and(|body| body.rejection().is_none());
        let sink = if keep {
            BdatSink::Keep(BdatReceiver::new(chunk_bytes, last), Vec::new())
        } else {
            BdatSink::Discard(DummyDataReceiver::new_bdat(chunk_bytes))
        };
        self.phase = Phase::Bdat {
            sink,
            chunk_bytes,
            last,
            refusal,
        };
    }

    /// Feeds DATA content; true once the end of data was read. Runs of whole lines
    /// that need no repair, the bulk of a message, go straight into the body,
    /// unstuffed, copied once and scanned once. Any other line (the end of the data, a
    /// bare CR or LF, a long line, a line cut by the end of the input) goes through
    /// the receiver and the body's repairs, one line at a time, so that the lines
    /// after it go straight again.
    fn data_step(&mut self, data: &[u8], pos: &mut usize) -> bool {
        let Phase::Data {
            receiver,
            staging,
            between_lines,
            last_byte,
        } = &mut self.phase
        else {
            unreachable!("data_step outside DATA");
        };
        let mut body = self.transaction.as_mut().and_then(|tx| tx.body.as_mut());
        while *pos < data.len() {
            if *between_lines
                && staging.is_empty()
                && let Some(body) = body.as_deref_mut()
                && body.at_line_start()
            {
                *pos += body.push_data_lines(&data[*pos..]);
                if *pos == data.len() {
                    break;
                }
            }
            // One line (or the rest of the input) through the receiver.
            let rest = &data[*pos..];
            let line = &rest[..memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1)];
            let mut bytes = line.iter();
            let done = receiver.ingest(&mut bytes, staging);
            let taken = &line[..line.len() - bytes.len()];
            *pos += taken.len();
            let ready = if !done && staging.last() == Some(&b'\r') {
                staging.len() - 1
            } else {
                staging.len()
            };
            if let Some(body) = body.as_deref_mut() {
                body.push(&staging[..ready]);
            }
            staging.drain(..ready);
            if done {
                return true;
            }
            if let Some(&last) = taken.last() {
                let before = match taken.len() {
                    1 => *last_byte,
                    n => taken[n - 2],
                };
                *between_lines = last == b'\n' && before == b'\r';
                *last_byte = last;
            }
        }
        false
    }

    /// Feeds BDAT chunk bytes; true once the chunk is complete.
    fn bdat_step(&mut self, data: &[u8], pos: &mut usize) -> bool {
        let Phase::Bdat { sink, .. } = &mut self.phase else {
            unreachable!("bdat_step outside BDAT");
        };
        let mut bytes = data[*pos..].iter();
        let done = match sink {
            BdatSink::Keep(receiver, staging) => {
                let done = receiver.ingest(&mut bytes, staging);
                if let Some(body) = self.transaction.as_mut().and_then(|tx| tx.body.as_mut()) {
                    body.push(staging);
                }
                staging.clear();
                done
            }
            BdatSink::Discard(receiver) => receiver.ingest(&mut bytes),
        };
        *pos = data.len() - bytes.len();
        done
    }

    /// Answers a complete BDAT chunk; the last one ends the message.
    fn end_of_chunk(&mut self, out: &mut Vec<u8>) -> Option<Action> {
        let Phase::Bdat {
            chunk_bytes,
            last,
            refusal,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Command)
        else {
            unreachable!("end_of_chunk outside BDAT");
        };
        if let Some(reply) = refusal {
            if reply.is_error {
                self.error(out, reply.code, reply.enhanced, &reply.text);
            } else {
                self.write(out, reply.code, reply.enhanced, &reply.text);
            }
            return self.check_errors(out);
        }
        if last {
            return self.end_of_message(out);
        }
        let too_big = self
            .transaction
            .as_ref()
            .and_then(|tx| tx.body.as_ref())
            .is_some_and(|body| body.rejection() == Some(Rejection::TooBig));
        if too_big {
            self.write(out, 552, "5.3.4", "Error: message size exceeds fixed limit");
        } else {
            self.write(out, 250, "2.0.0", &format!("{chunk_bytes} octets received"));
        }
        None
    }

    /// The body of the open transaction, after its Received header, with room for the
    /// size MAIL FROM declared (no transaction: a header for a plain one, nothing declared).
    fn new_body(&self) -> Body {
        let limits = &self.config.limits;
        let (smtputf8, declared) = self
            .transaction
            .as_ref()
            .map_or((false, 0), |tx| (tx.smtputf8, tx.declared_bytes));
        Body::new(
            limits.max_message_bytes,
            limits.max_text_line_bytes,
            self.received_header(smtputf8),
            declared,
        )
    }

    /// Ends the transaction after its last byte: a delivery, or the refusal.
    fn end_of_message(&mut self, out: &mut Vec<u8>) -> Option<Action> {
        self.phase = Phase::Command;
        let tx = self.transaction.take()?;
        let body = match tx.body {
            Some(body) => body.finish(),
            None => {
                let header = self.received_header(tx.smtputf8);
                let newlines = crate::message::count_newlines(&header);
                Ok((header, newlines))
            }
        };
        let (code, enhanced, text) = match body {
            Ok((message, newlines)) => {
                let (addresses, recipients) = tx.recipients.into_iter().unzip();
                self.delivering_to = addresses;
                self.phase = Phase::Delivering;
                return Some(Action::Deliver(Delivery {
                    mail_from: tx.mail_from,
                    recipients,
                    message,
                    newlines,
                }));
            }
            Err(Rejection::TooBig) => (
                552,
                "5.3.4",
                "Error: message size exceeds fixed limit".to_string(),
            ),
            Err(Rejection::LineTooLong) => {
                let max = self.config.limits.max_text_line_bytes;
                let text = format!("Error: message has a line longer than {max} octets");
                (554, "5.6.0", text)
            }
        };
        let replies = match self.config.mode {
            Mode::Smtp | Mode::Submission => 1,
            Mode::Lmtp => tx.recipients.len(),
        };
        for _ in 0..replies {
            self.write(out, code, enhanced, &text);
        }
        None
    }

    /// The Received header (RFC 5321 §4.4) for a message of this session.
    fn received_header(&self, smtputf8: bool) -> Vec<u8> {
        let (helo, greeting) = match &self.hello {
            Some(hello) => (token(&hello.domain), hello.greeting),
            None => ("unknown".to_string(), Greeting::Helo),
        };
        let protocol = match (greeting, smtputf8, self.tls) {
            (Greeting::Lhlo, true, _) => "UTF8LMTP",
            (Greeting::Lhlo, false, _) => "LMTP",
            (Greeting::Ehlo, true, false) => "UTF8SMTP",
            (Greeting::Ehlo, true, true) => "UTF8SMTPS",
            (Greeting::Ehlo, false, false) => "ESMTP",
            (Greeting::Ehlo, false, true) => "ESMTPS",
            (Greeting::Helo, _, _) => "SMTP",
        };
        // RFC 3848: an "A" marks a message from an authenticated client.
        let authenticated = if self.account.is_some() && greeting == Greeting::Ehlo {
            "A"
        } else {
            ""
        };
        let ip = match self.peer.ip().to_canonical() {
            IpAddr::V4(ip) => format!("[{ip}]"),
            IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
        };
        format!(
            "Received: from {helo} ({ip})\r\n\tby {} with {protocol}{authenticated};\r\n\t{}\r\n",
            token(&self.config.hostname),
            printable(&self.date)
        )
        .into_bytes()
    }

    /// Closes with 421 once the error limit is reached.
    fn check_errors(&mut self, out: &mut Vec<u8>) -> Option<Action> {
        if self.errors < self.config.limits.max_errors {
            return None;
        }
        self.write(out, 421, "4.7.0", &self.closing("too many errors"));
        self.close();
        Some(Action::Close)
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.transaction = None;
        self.pending = Vec::new();
    }

    fn closing(&self, why: &str) -> String {
        format!("{} Error: {why}, closing connection", self.config.hostname)
    }

    /// Writes an error reply and counts it towards `max_errors`.
    fn error(&mut self, out: &mut Vec<u8>, code: u16, enhanced: &str, text: &str) {
        self.errors += 1;
        self.write(out, code, enhanced, text);
    }

    /// Writes one reply line, with its enhanced status code once the client used EHLO/LHLO.
    fn write(&self, out: &mut Vec<u8>, code: u16, enhanced: &str, text: &str) {
        let enhanced_codes = self
            .hello
            .as_ref()
            .is_some_and(|hello| hello.greeting != Greeting::Helo);
        let line = if enhanced_codes && !enhanced.is_empty() {
            format!("{code} {enhanced} {text}\r\n")
        } else {
            format!("{code} {text}\r\n")
        };
        out.extend_from_slice(line.as_bytes());
    }
}

/// The code, enhanced code and text of a temporary failure.
fn temp_fail(outcome: &RecipientOutcome) -> Option<(u16, &'static str, String)> {
    match outcome {
        RecipientOutcome::Durable => None,
        RecipientOutcome::TempFail {
            code,
            enhanced,
            text,
        } => {
            debug_assert!((400..500).contains(code), "a temporary failure is 4xx");
            Some((*code, *enhanced, printable(text)))
        }
    }
}

/// Client text made safe to echo in a reply: printable ASCII only, bounded.
fn printable(text: &str) -> String {
    text.chars()
        .take(256)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A client-chosen name made safe for a Received header: one token, no comment syntax.
fn token(text: &str) -> String {
    let token: String = text
        .chars()
        .take(255)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._:[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "unknown".into()
    } else {
        token
    }
}

#[cfg(test)]
mod tests;
