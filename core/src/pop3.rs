//! POP3 server sessions (RFC 1939, with RFC 2449 CAPA and response codes, RFC 5034
//! AUTH and RFC 2595 STLS) as state machines without I/O: bytes in, reply bytes and
//! requests for the runtime out.
//!
//! # Driving a session
//!
//! - Send [`Session::greeting`] when the connection opens.
//! - Pass every byte read to [`Session::feed`], send [`Step::reply`], then answer
//!   [`Step::action`]; each answer returns another [`Step`] to handle the same way:
//!   - [`Action::Login`]: check the password and answer [`Session::authenticated`];
//!     look up the account's SCRAM keys and answer [`Session::scram_keys`]; or record
//!     a SCRAM exchange's outcome and answer [`Session::authenticated`] with the
//!     account it names ([`sasl::Request`]).
//!   - [`Action::Lock`]: on the executor that owns the account's shard, lock the
//!     maildrop (one POP3 session per maildrop) and take its [`Maildrop`] snapshot, then
//!     [`Session::locked`]. The lock lasts until the connection ends, however it ends.
//!   - [`Action::ReadBody`]: read the INBOX message, then [`Session::body_read`].
//!   - [`Action::Apply`]: make the expunge durable, then [`Session::applied`].
//!   - [`Action::StartTls`]: run the TLS handshake, then [`Session::tls_started`].
//!   - [`Action::Close`]: close after sending the reply.
//! - While an action is pending the session only buffers input; the runtime should stop
//!   reading until it has answered.
//!
//! # Choices
//!
//! - The maildrop is the account's INBOX as it was when the session locked it: message
//!   numbers stay fixed for the session, mail delivered later shows up in the next one,
//!   and a message expunged meanwhile by IMAP answers RETR and TOP with `-ERR`.
//! - Unique ids (UIDL) are the message's UID and the INBOX's UIDVALIDITY as eight
//!   upper-case hex digits each (Dovecot's default `%08Xu%08Xv`): stable across
//!   sessions and restarts, never reused.
//! - DELE only marks. QUIT in the TRANSACTION state asks for one expunge of every marked
//!   message and answers `+OK` only once it is durable, `-ERR [SYS/TEMP]` if it failed
//!   (RFC 2449 §8.1.2); a connection that ends without QUIT deletes nothing.
//! - LIST, STAT and the RETR reply give the stored octets (stored messages use CRLF).
//! - Lines may end in CRLF or bare LF. A line longer than `line_max_bytes` (RFC 2449
//!   allows 255 octets for commands; the default is more generous) is discarded up to
//!   its end and answered `-ERR`. Unknown commands, syntax errors, commands in the wrong
//!   state and failed logins count as errors; after `errors_max` the session closes.
//! - USER/PASS and AUTH PLAIN/LOGIN are refused with `-ERR [AUTH]` before TLS unless
//!   the listener allows plaintext logins; SCRAM-SHA-256 is always offered.
//! - Input pipelined after STLS is discarded, never run inside TLS.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::mem;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::sasl::{self, Exchange, Failure, Mechanism, ScramKeys};
use crate::store::{self, Op, Uid};

/// Input buffered while an action is pending; beyond it the session closes.
pub const PIPELINED_INPUT_MAX_BYTES: usize = 64 * 1024;

/// Limits one session runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Longest line the client may send, with its line ending, in bytes.
    pub line_max_bytes: usize,
    /// Errors after which the session answers `-ERR` and closes.
    pub errors_max: u32,
    /// How long a client may stay silent before the runtime closes the connection.
    pub idle_timeout: Duration,
    /// Whether the runtime can start TLS on this connection (STLS is offered).
    pub stls: bool,
    /// Whether passwords may be sent before TLS (a trusted listener).
    pub plaintext_login: bool,
    /// Fresh random printable ASCII (no commas) from the runtime, per connection: the
    /// stem of each SCRAM server nonce.
    pub sasl_nonce: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            line_max_bytes: 1024,
            errors_max: 10,
            idle_timeout: Duration::from_secs(600),
            stls: false,
            plaintext_login: true,
            sasl_nonce: "treehouse".to_string(),
        }
    }
}

/// One message of a maildrop snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaildropMessage {
    /// The message's UID in the INBOX.
    pub uid: Uid,
    /// Its stored size in octets.
    pub size_bytes: u64,
}

/// The INBOX as a POP3 session sees it: the messages present when it was locked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maildrop {
    /// The INBOX's UIDVALIDITY (0 for an account without an INBOX yet).
    pub uidvalidity: u32,
    /// Messages by message number - 1, in UID order.
    pub messages: Vec<MaildropMessage>,
}

impl Maildrop {
    /// The snapshot of `inbox` (None: the account has no mail yet).
    pub fn snapshot(inbox: Option<&store::Mailbox>) -> Maildrop {
        let Some(inbox) = inbox else {
            return Maildrop::default();
        };
        Maildrop {
            uidvalidity: inbox.uidvalidity,
            messages: inbox
                .messages
                .values()
                .map(|m| MaildropMessage {
                    uid: m.uid,
                    size_bytes: m.size_bytes,
                })
                .collect(),
        }
    }

    /// The unique id (UIDL) of the message with `uid`.
    pub fn unique_id(&self, uid: Uid) -> String {
        format!("{uid:08X}{:08X}", self.uidvalidity)
    }
}

/// The runtime's answer to [`Action::Lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// The maildrop is locked for this session; here is its snapshot.
    Locked(Maildrop),
    /// Another POP3 session holds the maildrop.
    InUse,
    /// The maildrop cannot be opened now; the text says why.
    Unavailable(String),
}

/// Why the runtime could not read a message for [`Action::ReadBody`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    /// The message was expunged since the snapshot (e.g. by an IMAP client).
    Expunged,
    /// The store could not read it now (the client may retry); the text says why.
    Unavailable(String),
    /// The stored message is damaged (retrying will not help); the text says why.
    Damaged(String),
}

/// What one call into the session produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Bytes to send to the client, in order.
    pub reply: Vec<u8>,
    /// A request for the runtime; the session buffers input until it is answered.
    pub action: Option<Action>,
}

/// A request the session makes of the runtime.
#[derive(Clone, PartialEq, Eq)]
pub enum Action {
    /// Log a client in: the runtime answers [`sasl::Request::ScramKeys`] through
    /// [`Session::scram_keys`], the others through [`Session::authenticated`].
    Login(sasl::Request),
    /// Lock the maildrop of `account`, then call [`Session::locked`].
    Lock {
        /// The account whose INBOX is the maildrop.
        account: String,
    },
    /// Read the INBOX message with `uid`, then call [`Session::body_read`].
    ReadBody {
        /// The message's UID.
        uid: Uid,
    },
    /// Make this expunge durable, then call [`Session::applied`].
    Apply(Op),
    /// Start TLS now (the `+OK` is in this step), then call [`Session::tls_started`].
    /// Input that followed STLS has already been discarded (RFC 2595 §4).
    StartTls,
    /// Close the connection after sending the reply.
    Close,
}

/// Shows the request, never the password.
impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Login(request) => f.debug_tuple("Login").field(request).finish(),
            Action::Lock { account } => f.debug_struct("Lock").field("account", account).finish(),
            Action::ReadBody { uid } => f.debug_struct("ReadBody").field("uid", uid).finish(),
            Action::Apply(op) => f.debug_tuple("Apply").field(op).finish(),
            Action::StartTls => f.write_str("StartTls"),
            Action::Close => f.write_str("Close"),
        }
    }
}

/// The session's protocol state (RFC 1939 §3).
enum State {
    /// Not logged in; `user` is the name a USER command gave.
    Authorization { user: Option<String> },
    /// AUTH in progress, waiting for the client's next response line. `login` is known
    /// once a SCRAM exchange has asked for keys.
    Sasl {
        exchange: Box<Exchange>,
        login: Option<String>,
    },
    /// Logged in with the maildrop locked.
    Transaction(Transaction),
    /// QUIT answered, or the session gave up; nothing more is read.
    Closed,
}

/// A locked maildrop and what the client did with it.
struct Transaction {
    account: String,
    maildrop: Maildrop,
    /// Message numbers - 1 marked by DELE.
    deleted: BTreeSet<usize>,
}

impl Transaction {
    /// Messages not marked deleted, and their octets.
    fn totals(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, octets), (_, m)| (n + 1, octets + m.size_bytes))
    }

    /// (message number - 1, message) of every message not marked deleted.
    fn live(&self) -> impl Iterator<Item = (usize, &MaildropMessage)> {
        self.maildrop
            .messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted.contains(i))
    }
}

/// A request in flight with the runtime.
enum Pending {
    /// Credentials being checked (or a SCRAM outcome being recorded); `failure` is what
    /// a refusal means.
    Login { failure: Failure },
    /// SCRAM keys being looked up for `login`.
    Keys {
        exchange: Box<Exchange>,
        login: String,
    },
    /// The maildrop of `account` being locked.
    Lock { account: String },
    /// A message being read for RETR (`top_lines` None) or TOP.
    Read {
        number: usize,
        top_lines: Option<u64>,
    },
    /// QUIT's expunge of `count` messages being made durable.
    Update { count: usize },
}

/// One POP3 connection's state.
pub struct Session {
    cfg: SessionConfig,
    state: State,
    pending: Option<Pending>,
    /// Received bytes not yet processed.
    input: Vec<u8>,
    /// Discarding an over-long line up to its end.
    discarding: bool,
    errors: u32,
    /// TLS is active on the connection.
    tls: bool,
    /// AUTH commands so far; appended to `sasl_nonce` for each exchange's nonce.
    auth_count: u64,
    out: Vec<u8>,
}

/// Shows the session's state, never buffered input (it may hold a password).
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Authorization { .. } => "authorization",
            State::Sasl { .. } => "sasl",
            State::Transaction(_) => "transaction",
            State::Closed => "closed",
        };
        f.debug_struct("Session")
            .field("state", &state)
            .field("account", &self.account())
            .field("pending", &self.pending.is_some())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Why a message-number argument was refused.
enum BadNumber {
    Syntax,
    NoSuch,
    Deleted(usize),
}

impl Session {
    /// A new session in the AUTHORIZATION state.
    pub fn new(cfg: SessionConfig) -> Self {
        assert!(
            cfg.sasl_nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b','),
            "the SASL nonce must be printable ASCII without commas"
        );
        Self {
            cfg,
            state: State::Authorization { user: None },
            pending: None,
            input: Vec::new(),
            discarding: false,
            errors: 0,
            tls: false,
            auth_count: 0,
            out: Vec::new(),
        }
    }

    /// The greeting to send when the connection opens.
    pub fn greeting(&self) -> Vec<u8> {
        b"+OK treehouse POP3 ready\r\n".to_vec()
    }

    /// How long the client may stay silent before the runtime closes the connection.
    pub fn idle_timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    /// The account whose maildrop is locked, if any.
    pub fn account(&self) -> Option<&str> {
        match &self.state {
            State::Transaction(t) => Some(&t.account),
            _ => None,
        }
    }

    /// The runtime finished the TLS handshake.
    pub fn tls_started(&mut self) {
        self.tls = true;
        if let State::Authorization { user } = &mut self.state {
            *user = None;
        }
    }

    /// Takes more input bytes and processes every complete command in them.
    pub fn feed(&mut self, input: &[u8]) -> Step {
        if matches!(self.state, State::Closed) {
            return Step::default();
        }
        self.input.extend_from_slice(input);
        if self.pending.is_some() && self.input.len() > PIPELINED_INPUT_MAX_BYTES {
            self.input.clear();
            self.line("-ERR Too much pipelined input, closing connection");
            self.state = State::Closed;
            return self.step(Some(Action::Close));
        }
        self.drive()
    }

    /// The runtime's answer to [`sasl::Request::Password`] or
    /// [`sasl::Request::ScramDone`]: the account, or None if refused.
    pub fn authenticated(&mut self, account: Option<String>) -> Step {
        let failure = match self.pending.take() {
            Some(Pending::Login { failure }) => failure,
            other => return self.unexpected(other),
        };
        self.state = State::Authorization { user: None };
        match account {
            Some(account) => {
                self.pending = Some(Pending::Lock {
                    account: account.clone(),
                });
                self.step(Some(Action::Lock { account }))
            }
            None => {
                let action = self.refuse_auth(failure);
                self.finish(action)
            }
        }
    }

    /// The runtime's answer to [`sasl::Request::ScramKeys`]: the account and its keys,
    /// or None.
    pub fn scram_keys(&mut self, found: Option<(String, ScramKeys)>) -> Step {
        let (mut exchange, login) = match self.pending.take() {
            Some(Pending::Keys { exchange, login }) => (exchange, login),
            other => return self.unexpected(other),
        };
        let step = exchange.keys(found);
        let action = self.sasl_step(exchange, Some(login), step);
        self.finish(action)
    }

    /// The runtime's answer to [`Action::Lock`].
    pub fn locked(&mut self, lock: Lock) -> Step {
        let account = match self.pending.take() {
            Some(Pending::Lock { account }) => account,
            other => return self.unexpected(other),
        };
        match lock {
            Lock::Locked(maildrop) => {
                let transaction = Transaction {
                    account,
                    maildrop,
                    deleted: BTreeSet::new(),
                };
                let (n, octets) = transaction.totals();
                self.line(&format!(
                    "+OK Logged in, maildrop has {n} messages ({octets} octets)"
                ));
                self.state = State::Transaction(transaction);
            }
            Lock::InUse => {
                self.line("-ERR [IN-USE] Mailbox is locked by another POP3 session");
            }
            Lock::Unavailable(why) => {
                self.line(&format!("-ERR [SYS/TEMP] Mailbox is not available: {why}"));
            }
        }
        self.drive()
    }

    /// The runtime's answer to [`Action::ReadBody`].
    pub fn body_read(&mut self, body: Result<Vec<u8>, ReadFailure>) -> Step {
        let (number, top_lines) = match self.pending.take() {
            Some(Pending::Read { number, top_lines }) => (number, top_lines),
            other => return self.unexpected(other),
        };
        match body {
            Ok(body) => {
                match top_lines {
                    None => {
                        self.line(&format!("+OK {} octets", body.len()));
                        stuff(&body, &mut self.out);
                    }
                    Some(lines) => {
                        self.line("+OK Top of message follows");
                        let end = top_end(&body, lines);
                        stuff(&body[..end], &mut self.out);
                    }
                }
                self.out.extend_from_slice(b".\r\n");
            }
            Err(ReadFailure::Expunged) => {
                self.line(&format!("-ERR Message {number} no longer exists"));
            }
            Err(ReadFailure::Unavailable(why)) => {
                self.line(&format!(
                    "-ERR [SYS/TEMP] Message {number} cannot be read now: {why}"
                ));
            }
            Err(ReadFailure::Damaged(why)) => {
                self.line(&format!(
                    "-ERR [SYS/PERM] Message {number} cannot be read: {why}"
                ));
            }
        }
        self.drive()
    }

    /// The runtime's answer to [`Action::Apply`]: Ok once durable, or why it failed.
    pub fn applied(&mut self, result: Result<(), String>) -> Step {
        let count = match self.pending.take() {
            Some(Pending::Update { count }) => count,
            other => return self.unexpected(other),
        };
        match result {
            Ok(()) => self.line(&format!(
                "+OK treehouse POP3 signing off ({count} messages deleted)"
            )),
            Err(why) => self.line(&format!("-ERR [SYS/TEMP] Messages were not deleted: {why}")),
        }
        self.state = State::Closed;
        self.step(Some(Action::Close))
    }

    /// An answer to an action the session did not ask for: changes nothing.
    fn unexpected(&mut self, pending: Option<Pending>) -> Step {
        self.pending = pending;
        self.drive()
    }

    fn step(&mut self, action: Option<Action>) -> Step {
        Step {
            reply: mem::take(&mut self.out),
            action,
        }
    }

    /// Ends a step: returns `action` if there is one, else goes on with buffered input.
    fn finish(&mut self, action: Option<Action>) -> Step {
        match action {
            Some(action) => self.step(Some(action)),
            None => self.drive(),
        }
    }

    /// Processes buffered lines until an action is needed or input runs out.
    fn drive(&mut self) -> Step {
        while self.pending.is_none() && !matches!(self.state, State::Closed) {
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                if self.input.len() >= self.cfg.line_max_bytes {
                    self.input.clear();
                    self.discarding = true;
                }
                break;
            };
            let mut line: Vec<u8> = self.input.drain(..=end).collect();
            if mem::take(&mut self.discarding) || line.len() > self.cfg.line_max_bytes {
                if let Some(action) = self.error("-ERR Line too long") {
                    return self.step(Some(action));
                }
                continue;
            }
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(action) = self.on_line(&line) {
                return self.step(Some(action));
            }
        }
        self.step(None)
    }

    fn line(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Answers with a counted error; closes when the client has made too many.
    fn error(&mut self, text: &str) -> Option<Action> {
        self.line(text);
        self.errors += 1;
        if self.errors < self.cfg.errors_max {
            return None;
        }
        self.line("-ERR Too many errors, closing connection");
        self.state = State::Closed;
        Some(Action::Close)
    }

    /// Whether a password may be sent now: under TLS, or on a trusted listener.
    fn login_allowed(&self) -> bool {
        self.tls || self.cfg.plaintext_login
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .filter(|m| *m == Mechanism::ScramSha256 || self.login_allowed())
            .collect()
    }

    fn on_line(&mut self, line: &[u8]) -> Option<Action> {
        if let State::Sasl { .. } = self.state {
            return self.sasl_response(line);
        }
        let text = String::from_utf8_lossy(line);
        let (keyword, rest) = match text.split_once(' ') {
            Some((keyword, rest)) => (keyword, rest),
            None => (text.as_ref(), ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        let args: Vec<&str> = rest.split_ascii_whitespace().collect();
        match keyword.as_str() {
            "CAPA" => {
                self.capa();
                return None;
            }
            "QUIT" => return self.quit(),
            _ => {}
        }
        if matches!(self.state, State::Transaction(_)) {
            return self.transaction_command(&keyword, &args);
        }
        match keyword.as_str() {
            "USER" => self.user(rest.trim()),
            "PASS" => self.pass(line),
            "AUTH" => self.auth(&args),
            "STLS" => self.stls(),
            "STAT" | "LIST" | "RETR" | "DELE" | "NOOP" | "RSET" | "TOP" | "UIDL" => {
                self.error("-ERR Log in first")
            }
            _ => self.error("-ERR Unknown command"),
        }
    }

    fn capa(&mut self) {
        let mut caps = String::from(
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n",
        );
        if !matches!(self.state, State::Transaction(_)) {
            if self.login_allowed() {
                caps.push_str("USER\r\n");
            }
            caps.push_str("SASL");
            for m in self.mechanisms() {
                caps.push(' ');
                caps.push_str(m.name());
            }
            caps.push_str("\r\n");
            if self.cfg.stls && !self.tls {
                caps.push_str("STLS\r\n");
            }
        }
        caps.push_str("IMPLEMENTATION treehouse\r\n.\r\n");
        self.out.extend_from_slice(caps.as_bytes());
    }

    fn quit(&mut self) -> Option<Action> {
        let State::Transaction(t) = mem::replace(&mut self.state, State::Closed) else {
            self.line("+OK treehouse POP3 signing off");
            return Some(Action::Close);
        };
        let uids: Vec<Uid> = t
            .deleted
            .iter()
            .map(|&i| t.maildrop.messages[i].uid)
            .collect();
        if uids.is_empty() {
            self.line("+OK treehouse POP3 signing off");
            return Some(Action::Close);
        }
        self.pending = Some(Pending::Update { count: uids.len() });
        Some(Action::Apply(Op::Expunge {
            account: t.account,
            mailbox: store::INBOX.to_string(),
            uids,
        }))
    }

    const PLAINTEXT_REFUSED: &'static str =
        "-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first";

    fn user(&mut self, name: &str) -> Option<Action> {
        if !self.login_allowed() {
            return self.error(Self::PLAINTEXT_REFUSED);
        }
        if name.is_empty() {
            return self.error("-ERR Missing user name");
        }
        self.state = State::Authorization {
            user: Some(name.to_string()),
        };
        self.line("+OK Send PASS");
        None
    }

    fn pass(&mut self, line: &[u8]) -> Option<Action> {
        let State::Authorization { user } = &mut self.state else {
            return self.error("-ERR Unknown command");
        };
        let Some(login) = user.take() else {
            return self.error("-ERR Send USER first");
        };
        // The password is everything after "PASS ", spaces included (RFC 1939 §7).
        let password = line.get(5..).unwrap_or_default();
        if password.is_empty() {
            return self.error("-ERR Missing password");
        }
        let Ok(password) = String::from_utf8(password.to_vec()) else {
            return self.refuse_auth(Failure::Credentials);
        };
        self.pending = Some(Pending::Login {
            failure: Failure::Credentials,
        });
        Some(Action::Login(sasl::Request::Password { login, password }))
    }

    /// Answers a failed login (counted as an error).
    fn refuse_auth(&mut self, failure: Failure) -> Option<Action> {
        self.state = State::Authorization { user: None };
        self.error(match failure {
            Failure::Credentials => "-ERR [AUTH] Authentication failed",
            Failure::Cancelled => "-ERR Authentication cancelled",
            Failure::Malformed => "-ERR Malformed authentication exchange",
        })
    }

    fn auth(&mut self, args: &[&str]) -> Option<Action> {
        let Some(name) = args.first() else {
            // RFC 1734 clients list the mechanisms with a bare AUTH.
            let mut list = String::from("+OK\r\n");
            for m in self.mechanisms() {
                let _ = write!(list, "{}\r\n", m.name());
            }
            list.push_str(".\r\n");
            self.out.extend_from_slice(list.as_bytes());
            return None;
        };
        if args.len() > 2 {
            return self.error("-ERR Syntax error in AUTH");
        }
        let Some(mechanism) = Mechanism::parse(name) else {
            return self.error("-ERR Unsupported authentication mechanism");
        };
        if !self.mechanisms().contains(&mechanism) {
            return self.error(Self::PLAINTEXT_REFUSED);
        }
        let initial = match args.get(1) {
            None => None,
            Some(&"=") => Some(Vec::new()),
            Some(b64) => match BASE64.decode(b64) {
                Ok(bytes) => Some(bytes),
                Err(_) => return self.error("-ERR Invalid base64 in the initial response"),
            },
        };
        self.auth_count += 1;
        let nonce = format!("{}{}", self.cfg.sasl_nonce, self.auth_count);
        let (exchange, step) = Exchange::start(mechanism, initial.as_deref(), &nonce);
        self.sasl_step(Box::new(exchange), None, step)
    }

    fn sasl_response(&mut self, line: &[u8]) -> Option<Action> {
        let State::Sasl {
            mut exchange,
            login,
        } = mem::replace(&mut self.state, State::Authorization { user: None })
        else {
            return None;
        };
        let step = if line == b"*" {
            sasl::Step::Failed(Failure::Cancelled)
        } else {
            match BASE64.decode(line.trim_ascii()) {
                Ok(decoded) => exchange.respond(&decoded),
                Err(_) => sasl::Step::Failed(Failure::Malformed),
            }
        };
        self.sasl_step(exchange, login, step)
    }

    /// Acts on one step of an AUTH exchange; `login` is set once keys were asked for.
    fn sasl_step(
        &mut self,
        exchange: Box<Exchange>,
        login: Option<String>,
        step: sasl::Step,
    ) -> Option<Action> {
        match step {
            sasl::Step::Challenge(challenge) => {
                self.line(&format!("+ {}", BASE64.encode(challenge)));
                self.state = State::Sasl { exchange, login };
                None
            }
            sasl::Step::VerifyPassword { login, password } => {
                self.pending = Some(Pending::Login {
                    failure: Failure::Credentials,
                });
                Some(Action::Login(sasl::Request::Password { login, password }))
            }
            sasl::Step::NeedKeys { login } => {
                self.pending = Some(Pending::Keys {
                    exchange,
                    login: login.clone(),
                });
                Some(Action::Login(sasl::Request::ScramKeys { login }))
            }
            sasl::Step::Success { account } => {
                self.pending = Some(Pending::Login {
                    failure: Failure::Credentials,
                });
                Some(Action::Login(sasl::Request::ScramDone {
                    login: login.unwrap_or_else(|| account.clone()),
                    account: Some(account),
                }))
            }
            sasl::Step::Failed(failure) => match login {
                // The runtime records every SCRAM exchange it looked keys up for.
                Some(login) => {
                    self.pending = Some(Pending::Login { failure });
                    Some(Action::Login(sasl::Request::ScramDone {
                        login,
                        account: None,
                    }))
                }
                None => self.refuse_auth(failure),
            },
        }
    }

    fn stls(&mut self) -> Option<Action> {
        if self.tls {
            return self.error("-ERR TLS is already active");
        }
        if !self.cfg.stls {
            return self.error("-ERR STLS is not available");
        }
        self.line("+OK Begin TLS negotiation");
        // Whatever followed STLS in the clear is dropped, never run inside TLS.
        self.input.clear();
        self.discarding = false;
        self.state = State::Authorization { user: None };
        Some(Action::StartTls)
    }

    fn transaction_command(&mut self, keyword: &str, args: &[&str]) -> Option<Action> {
        let State::Transaction(t) = &mut self.state else {
            return None;
        };
        match (keyword, args) {
            ("STAT", _) => {
                let (n, octets) = t.totals();
                self.line(&format!("+OK {n} {octets}"));
                None
            }
            ("NOOP", _) => {
                self.line("+OK");
                None
            }
            ("RSET", _) => {
                t.deleted.clear();
                let (n, octets) = t.totals();
                self.line(&format!("+OK Maildrop has {n} messages ({octets} octets)"));
                None
            }
            ("LIST", []) => {
                let (n, octets) = t.totals();
                let mut list = format!("+OK {n} messages ({octets} octets)\r\n");
                for (i, m) in t.live() {
                    let _ = write!(list, "{} {}\r\n", i + 1, m.size_bytes);
                }
                list.push_str(".\r\n");
                self.out.extend_from_slice(list.as_bytes());
                None
            }
            ("UIDL", []) => {
                let mut list = String::from("+OK Unique-ID listing follows\r\n");
                for (i, m) in t.live() {
                    let _ = write!(list, "{} {}\r\n", i + 1, t.maildrop.unique_id(m.uid));
                }
                list.push_str(".\r\n");
                self.out.extend_from_slice(list.as_bytes());
                None
            }
            ("LIST" | "UIDL" | "RETR" | "DELE", [number]) => {
                let i = match self.number(number) {
                    Ok(i) => i,
                    Err(bad) => return self.bad_number(bad),
                };
                let State::Transaction(t) = &mut self.state else {
                    return None;
                };
                let m = t.maildrop.messages[i];
                match keyword {
                    "LIST" => self.line(&format!("+OK {} {}", i + 1, m.size_bytes)),
                    "UIDL" => {
                        let id = t.maildrop.unique_id(m.uid);
                        self.line(&format!("+OK {} {id}", i + 1));
                    }
                    "DELE" => {
                        t.deleted.insert(i);
                        self.line(&format!("+OK Message {} deleted", i + 1));
                    }
                    _ => {
                        self.pending = Some(Pending::Read {
                            number: i + 1,
                            top_lines: None,
                        });
                        return Some(Action::ReadBody { uid: m.uid });
                    }
                }
                None
            }
            ("TOP", [number, lines]) => {
                let i = match self.number(number) {
                    Ok(i) => i,
                    Err(bad) => return self.bad_number(bad),
                };
                let Some(lines) = parse_decimal(lines) else {
                    return self.error("-ERR Invalid number of lines");
                };
                let State::Transaction(t) = &self.state else {
                    return None;
                };
                let uid = t.maildrop.messages[i].uid;
                self.pending = Some(Pending::Read {
                    number: i + 1,
                    top_lines: Some(lines),
                });
                Some(Action::ReadBody { uid })
            }
            ("LIST" | "UIDL" | "RETR" | "DELE" | "TOP", _) => {
                self.error(&format!("-ERR Syntax error in {keyword}"))
            }
            ("USER" | "PASS" | "AUTH" | "STLS", _) => self.error("-ERR Already logged in"),
            _ => self.error("-ERR Unknown command"),
        }
    }

    /// The index of the live message with number `arg`.
    fn number(&self, arg: &str) -> Result<usize, BadNumber> {
        let State::Transaction(t) = &self.state else {
            return Err(BadNumber::NoSuch);
        };
        let n = parse_decimal(arg).ok_or(BadNumber::Syntax)?;
        let n = usize::try_from(n).map_err(|_| BadNumber::NoSuch)?;
        if n == 0 || n > t.maildrop.messages.len() {
            return Err(BadNumber::NoSuch);
        }
        if t.deleted.contains(&(n - 1)) {
            return Err(BadNumber::Deleted(n));
        }
        Ok(n - 1)
    }

    fn bad_number(&mut self, bad: BadNumber) -> Option<Action> {
        let count = match &self.state {
            State::Transaction(t) => t.maildrop.messages.len(),
            _ => 0,
        };
        match bad {
            BadNumber::Syntax => self.error("-ERR Invalid message number"),
            BadNumber::NoSuch => self.error(&format!(
                "-ERR No such message, only {count} messages in maildrop"
            )),
            BadNumber::Deleted(n) => self.error(&format!("-ERR Message {n} already deleted")),
        }
    }
}

/// A decimal number of ASCII digits only (no sign, no spaces).
fn parse_decimal(arg: &str) -> Option<u64> {
    if arg.is_empty() || arg.len() > 19 || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// Writes `body` line by line with CRLF endings, doubling a leading dot (RFC 1939 §3);
/// a last line without an ending gets one.
fn stuff(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(body.len() + 64);
    for line in body.split_inclusive(|&b| b == b'\n') {
        let content = match line.strip_suffix(b"\n") {
            Some(l) => l.strip_suffix(b"\r").unwrap_or(l),
            None => line,
        };
        if content.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
    }
}

/// Where TOP's answer ends: the header, the blank line after it and `lines` body lines.
fn top_end(body: &[u8], lines: u64) -> usize {
    let mut at = 0;
    let mut in_header = true;
    let mut body_lines = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if !in_header {
            if body_lines == lines {
                break;
            }
            body_lines += 1;
        } else if line == b"\r\n" || line == b"\n" {
            in_header = false;
        }
        at += line.len();
    }
    at
}
