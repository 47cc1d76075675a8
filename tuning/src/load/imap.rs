//! IMAP load generator: each connection works on a mailbox of its own, keeps a model of it
//! (UIDs, flags, message bytes) and checks every response against that model; only
//! commands whose responses match count as operations.

use super::message::rfc5322_date;
use super::report::{LATENCY_US_MAX, json_string};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most concurrent connections.
pub const CONNECTIONS_MAX: usize = 4096;
/// Most messages each connection appends before the mix starts.
pub const SEED_MESSAGES_MAX: usize = 10_000;
/// Largest message size in bytes.
pub const MESSAGE_SIZE_BYTES_MAX: usize = 16 << 20;
/// Longest response line, literals included, in bytes.
pub const RESPONSE_LINE_BYTES_MAX: usize = 64 << 20;
/// Mismatch descriptions kept for the report.
pub const MISMATCH_SAMPLES_MAX: usize = 20;
/// Pause before each reconnect.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// Most reconnects per connection after an error or mismatch.
pub const RECONNECTS_MAX: u32 = 1000;

/// A command of the mix (or of a connection's setup), as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// LOGIN (setup).
    Login,
    /// CREATE of the connection's mailbox (setup).
    Create,
    /// APPEND of a seed message (setup).
    SeedAppend,
    /// SELECT of the connection's mailbox.
    Select,
    /// FETCH 1:* (UID FLAGS).
    FetchFlags,
    /// FETCH n (ENVELOPE).
    FetchEnvelope,
    /// FETCH n (BODY.PEEK[]).
    FetchBody,
    /// UID STORE +FLAGS / -FLAGS of one message.
    Store,
    /// UID SEARCH FLAGGED / UNSEEN / HEADER Subject.
    Search,
    /// APPEND of one message.
    Append,
    /// UID EXPUNGE of one message marked \Deleted.
    Expunge,
}

impl Command {
    /// Every command, in report order.
    pub const ALL: [Command; 11] = [
        Command::Login,
        Command::Create,
        Command::SeedAppend,
        Command::Select,
        Command::FetchFlags,
        Command::FetchEnvelope,
        Command::FetchBody,
        Command::Store,
        Command::Search,
        Command::Append,
        Command::Expunge,
    ];

    /// Lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Command::Login => "login",
            Command::Create => "create",
            Command::SeedAppend => "seed_append",
            Command::Select => "select",
            Command::FetchFlags => "fetch_flags",
            Command::FetchEnvelope => "fetch_envelope",
            Command::FetchBody => "fetch_body",
            Command::Store => "uid_store",
            Command::Search => "uid_search",
            Command::Append => "append",
            Command::Expunge => "uid_expunge",
        }
    }

    /// Whether the command belongs to the measured mix (not to a connection's setup).
    pub fn is_mix(self) -> bool {
        !matches!(self, Command::Login | Command::Create | Command::SeedAppend)
    }
}

/// What to run, where, and for how long.
#[derive(Debug, Clone)]
pub struct ImapPlan {
    /// HOST:PORT of the server.
    pub target: String,
    /// Concurrent connections; connection i logs in as `accounts[i % accounts.len()]`.
    pub connections: usize,
    /// Login names.
    pub accounts: Vec<String>,
    /// The password of every account.
    pub password: String,
    /// Messages each connection appends before the mix starts.
    pub seed_messages: usize,
    /// Mean message size in bytes (each is drawn from half to one and a half times it).
    pub message_size_bytes: usize,
    /// Mix operations in total across all connections.
    pub ops_max: u64,
    /// The mix stops starting commands this long after every connection finished setup.
    pub duration_limit: Duration,
    /// Reconnects allowed per connection after errors or mismatches.
    pub reconnects_max: u32,
    /// Longest wait for a connect, a read or a write.
    pub io_timeout: Duration,
}

impl ImapPlan {
    /// A plan with default limits: 20 seed messages of about 4 KiB, 60 s at most.
    pub fn new(target: &str, accounts: Vec<String>, password: &str) -> Self {
        ImapPlan {
            target: target.to_owned(),
            connections: 1,
            accounts,
            password: password.to_owned(),
            seed_messages: 20,
            message_size_bytes: 4096,
            ops_max: 100_000_000,
            duration_limit: Duration::from_secs(60),
            reconnects_max: 10,
            io_timeout: Duration::from_secs(30),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let bounds = [
            ("connections", self.connections, 1, CONNECTIONS_MAX),
            ("accounts", self.accounts.len(), 1, usize::MAX),
            ("seed messages", self.seed_messages, 0, SEED_MESSAGES_MAX),
            (
                "message size bytes",
                self.message_size_bytes,
                512,
                MESSAGE_SIZE_BYTES_MAX,
            ),
            (
                "reconnects",
                self.reconnects_max as usize,
                0,
                RECONNECTS_MAX as usize,
            ),
        ];
        for (name, value, min, max) in bounds {
            if value < min || value > max {
                return Err(format!("{name} is {value}; allowed {min}..={max}"));
            }
        }
        if self.io_timeout.is_zero() || self.duration_limit > Duration::from_secs(24 * 3600) {
            return Err("I/O timeout must be positive and the duration at most 24 h".to_owned());
        }
        for text in self.accounts.iter().chain([&self.password]) {
            if text.is_empty() || text.bytes().any(|b| b < b' ' || b == 0x7f) {
                return Err(format!(
                    "login or password {text:?} is empty or has controls"
                ));
            }
        }
        Ok(())
    }
}

/// Counts and latencies of one command.
#[derive(Debug, Clone)]
pub struct CommandTally {
    /// Commands whose responses matched the model.
    pub ok: u64,
    /// Commands refused (NO, BAD) or whose responses did not match.
    pub failed: u64,
    /// Latency of `ok` commands, from sending to the tagged reply, in µs.
    pub latency_us: Histogram<u64>,
}

impl Default for CommandTally {
    fn default() -> Self {
        CommandTally {
            ok: 0,
            failed: 0,
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .expect("constant histogram bounds are valid"),
        }
    }
}

/// Outcomes of one connection, or of a whole run once merged.
#[derive(Debug, Clone, Default)]
pub struct ImapTally {
    /// Per command.
    pub commands: BTreeMap<Command, CommandTally>,
    /// Refusals and mismatches in total.
    pub errors: u64,
    /// The first few refusals and mismatches, with the command and what differed.
    pub error_samples: Vec<String>,
    /// Failed connects and I/O errors (timeouts, resets, unparsable responses).
    pub connection_errors: u64,
    /// The first connection error's description.
    pub connection_error_first: Option<String>,
}

impl ImapTally {
    fn ok(&mut self, command: Command, latency: Duration) {
        let t = self.commands.entry(command).or_default();
        t.ok += 1;
        t.latency_us.saturating_record(latency.as_micros() as u64);
    }

    fn error(&mut self, command: Command, description: String) {
        self.commands.entry(command).or_default().failed += 1;
        self.errors += 1;
        if self.error_samples.len() < MISMATCH_SAMPLES_MAX {
            self.error_samples
                .push(format!("{}: {description}", command.name()));
        }
    }

    fn connection_error(&mut self, description: String) {
        self.connection_errors += 1;
        self.connection_error_first.get_or_insert(description);
    }

    /// Adds `other`'s counts and latencies to this one.
    pub fn merge(&mut self, other: &ImapTally) {
        for (command, t) in &other.commands {
            let mine = self.commands.entry(*command).or_default();
            mine.ok += t.ok;
            mine.failed += t.failed;
            mine.latency_us
                .add(&t.latency_us)
                .expect("histograms with equal bounds add");
        }
        self.errors += other.errors;
        for sample in &other.error_samples {
            if self.error_samples.len() < MISMATCH_SAMPLES_MAX {
                self.error_samples.push(sample.clone());
            }
        }
        self.connection_errors += other.connection_errors;
        if self.connection_error_first.is_none() {
            self.connection_error_first
                .clone_from(&other.connection_error_first);
        }
    }
}

/// The result of an IMAP load run.
#[derive(Debug, Clone)]
pub struct ImapReport {
    /// The HOST:PORT loaded.
    pub target: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Seed messages per connection.
    pub seed_messages: usize,
    /// Mean message size in bytes.
    pub message_size_bytes: usize,
    /// Wall time of every connection's setup (login, create, seed appends).
    pub setup_elapsed: Duration,
    /// Wall time of the mix, from the end of setup to the last connection's end.
    pub elapsed: Duration,
    /// Counts and latencies of all connections.
    pub tally: ImapTally,
}

impl ImapReport {
    /// Matched mix commands per second.
    pub fn ops_per_s(&self) -> f64 {
        let ops: u64 = self
            .tally
            .commands
            .iter()
            .filter(|(c, _)| c.is_mix())
            .map(|(_, t)| t.ok)
            .sum();
        self.per_s(ops)
    }

    /// Matched `command`s per second of the mix (of setup, for setup commands).
    pub fn command_per_s(&self, command: Command) -> f64 {
        let ok = self.tally.commands.get(&command).map_or(0, |t| t.ok);
        if command.is_mix() {
            self.per_s(ok)
        } else {
            ok as f64 / self.setup_elapsed.as_secs_f64().max(1e-9)
        }
    }

    fn per_s(&self, count: u64) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { count as f64 / s } else { 0.0 }
    }

    /// Latency of matched `command`s at `quantile` (0..=1), in milliseconds.
    pub fn latency_ms(&self, command: Command, quantile: f64) -> f64 {
        self.tally.commands.get(&command).map_or(0.0, |t| {
            t.latency_us.value_at_quantile(quantile) as f64 / 1000.0
        })
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        let t = &self.tally;
        let mut commands = String::new();
        for (i, (command, c)) in t.commands.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(
                commands,
                "{comma}\"{}\":{{\"ok\":{},\"failed\":{},\"per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3}}}",
                command.name(),
                c.ok,
                c.failed,
                self.command_per_s(*command),
                self.latency_ms(*command, 0.50),
                self.latency_ms(*command, 0.99),
            );
        }
        let samples: Vec<String> = t.error_samples.iter().map(|s| json_string(s)).collect();
        format!(
            "{{\"protocol\":\"imap\",\"target\":{},\"connections\":{},\"seed_messages\":{},\
             \"message_size_bytes\":{},\"setup_s\":{:.3},\"elapsed_s\":{:.3},\"ops_per_s\":{:.1},\
             \"commands\":{{{commands}}},\"errors\":{},\"error_samples\":[{}],\
             \"connection_errors\":{},\"connection_error_first\":{}}}",
            json_string(&self.target),
            self.connections,
            self.seed_messages,
            self.message_size_bytes,
            self.setup_elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.ops_per_s(),
            t.errors,
            samples.join(","),
            t.connection_errors,
            t.connection_error_first
                .as_deref()
                .map_or_else(|| "null".to_owned(), json_string),
        )
    }
}

impl fmt::Display for ImapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        writeln!(
            f,
            "treehouse-tune load imap {} connections={} seed_messages={} message_size_bytes={}",
            self.target, self.connections, self.seed_messages, self.message_size_bytes
        )?;
        writeln!(
            f,
            "setup_s {:.3}  mix elapsed_s {:.3}  ops/s {:.1}",
            self.setup_elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64(),
            self.ops_per_s()
        )?;
        writeln!(
            f,
            "{:<15} {:>9} {:>7} {:>10} {:>9} {:>9}",
            "command", "ok", "failed", "per_s", "p50_ms", "p99_ms"
        )?;
        for (command, c) in &t.commands {
            writeln!(
                f,
                "{:<15} {:>9} {:>7} {:>10.1} {:>9.3} {:>9.3}",
                command.name(),
                c.ok,
                c.failed,
                self.command_per_s(*command),
                self.latency_ms(*command, 0.50),
                self.latency_ms(*command, 0.99)
            )?;
        }
        writeln!(f, "errors            {}", t.errors)?;
        for sample in &t.error_samples {
            writeln!(f, "  error: {sample}")?;
        }
        write!(f, "connection_errors {}", t.connection_errors)?;
        match &t.connection_error_first {
            Some(first) => write!(f, " (first: {first})"),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Response parsing.

/// One value of an IMAP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An atom or number (`BODY[...]` included, brackets and all).
    Atom(Vec<u8>),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    /// NIL.
    Nil,
    /// A parenthesized list.
    List(Vec<Token>),
}

impl Token {
    fn number(&self) -> Option<u32> {
        match self {
            Token::Atom(a) => std::str::from_utf8(a).ok()?.parse().ok(),
            _ => None,
        }
    }

    fn is_atom(&self, name: &str) -> bool {
        matches!(self, Token::Atom(a) if a.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// The tokens of `input` (a response line with its literals inline), or why not.
pub fn tokenize(input: &[u8]) -> Result<Vec<Token>, String> {
    let mut pos = 0;
    let tokens = tokens_until(input, &mut pos, None)?;
    Ok(tokens)
}

fn tokens_until(input: &[u8], pos: &mut usize, close: Option<u8>) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    loop {
        while input.get(*pos) == Some(&b' ') {
            *pos += 1;
        }
        let Some(&b) = input.get(*pos) else {
            return match close {
                None => Ok(out),
                Some(_) => Err("unclosed list".to_owned()),
            };
        };
        match b {
            b')' => {
                *pos += 1;
                return match close {
                    Some(_) => Ok(out),
                    None => Err("unbalanced )".to_owned()),
                };
            }
            b'(' => {
                *pos += 1;
                out.push(Token::List(tokens_until(input, pos, Some(b')'))?));
            }
            b'"' => {
                *pos += 1;
                let mut s = Vec::new();
                loop {
                    match input.get(*pos) {
                        None => return Err("unterminated quoted string".to_owned()),
                        Some(b'"') => break,
                        Some(b'\\') => {
                            *pos += 1;
                            let Some(&c) = input.get(*pos) else {
                                return Err("unterminated quoted string".to_owned());
                            };
                            s.push(c);
                        }
                        Some(&c) => s.push(c),
                    }
                    *pos += 1;
                }
                *pos += 1;
                out.push(Token::Str(s));
            }
            b'{' => {
                let rest = &input[*pos..];
                let end = rest
                    .iter()
                    .position(|&c| c == b'}')
                    .ok_or("unterminated literal length")?;
                let len: usize = std::str::from_utf8(&rest[1..end])
                    .ok()
                    .and_then(|n| n.trim_end_matches('+').parse().ok())
                    .ok_or("bad literal length")?;
                if rest.get(end + 1..end + 3) != Some(b"\r\n") {
                    return Err("literal length not followed by CRLF".to_owned());
                }
                let start = *pos + end + 3;
                let data = input
                    .get(start..start + len)
                    .ok_or("literal shorter than announced")?;
                out.push(Token::Str(data.to_vec()));
                *pos = start + len;
            }
            _ => {
                let start = *pos;
                let mut depth = 0usize;
                while let Some(&c) = input.get(*pos) {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b'(' | b')' if depth == 0 => break,
                        b'\r' | b'\n' => break,
                        _ => {}
                    }
                    *pos += 1;
                }
                if *pos == start {
                    return Err(format!("unexpected byte {:?}", char::from(b)));
                }
                let atom = &input[start..*pos];
                out.push(if atom.eq_ignore_ascii_case(b"NIL") {
                    Token::Nil
                } else {
                    Token::Atom(atom.to_vec())
                });
            }
        }
    }
}

/// Flags the model tracks, as bits.
pub mod flag {
    /// \Seen.
    pub const SEEN: u8 = 1;
    /// \Flagged.
    pub const FLAGGED: u8 = 2;
    /// \Deleted.
    pub const DELETED: u8 = 4;
    /// The keyword `$Tune`.
    pub const KEYWORD: u8 = 8;
}

/// The keyword the mix sets and clears.
pub const KEYWORD: &str = "$Tune";

/// The flag bits of a FLAGS list (\Recent ignored), or the first flag the model does not know.
pub fn parse_flags(list: &[Token]) -> Result<u8, String> {
    let mut bits = 0;
    for token in list {
        let Token::Atom(name) = token else {
            return Err(format!("flag {token:?} is not an atom"));
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        bits |= match name.as_str() {
            "\\seen" => flag::SEEN,
            "\\flagged" => flag::FLAGGED,
            "\\deleted" => flag::DELETED,
            "$tune" => flag::KEYWORD,
            "\\recent" => 0,
            _ => return Err(format!("unexpected flag {name}")),
        };
    }
    Ok(bits)
}

/// `bits` as an IMAP flag list without parentheses.
pub fn flags_text(bits: u8) -> String {
    let names = [
        (flag::SEEN, "\\Seen"),
        (flag::FLAGGED, "\\Flagged"),
        (flag::DELETED, "\\Deleted"),
        (flag::KEYWORD, KEYWORD),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    set.join(" ")
}

/// What one untagged FETCH response carried.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The sequence number.
    pub seq: u32,
    /// UID, if sent.
    pub uid: Option<u32>,
    /// Flag bits, if sent.
    pub flags: Option<u8>,
    /// The ENVELOPE's subject (`None` without ENVELOPE; `Some(None)` for NIL).
    pub subject: Option<Option<Vec<u8>>>,
    /// BODY[], if sent.
    pub body: Option<Vec<u8>>,
}

/// One untagged response the model checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    /// `* N EXISTS`.
    Exists(u32),
    /// `* N EXPUNGE`.
    Expunge(u32),
    /// `* N FETCH (...)`.
    Fetch(Fetched),
    /// `* SEARCH ...`.
    Search(Vec<u32>),
    /// `* OK [UIDVALIDITY n]`.
    UidValidity(u32),
    /// `* BYE ...`.
    Bye(String),
    /// Anything else (FLAGS, RECENT, other OK codes, CAPABILITY...).
    Other,
}

/// Parses one untagged response (without `* ` and CRLF).
pub fn parse_untagged(line: &[u8]) -> Result<Untagged, String> {
    let upper = |n: usize| line.get(..n).map(|p| p.to_ascii_uppercase());
    if upper(4).as_deref() == Some(b"BYE ") || line.eq_ignore_ascii_case(b"BYE") {
        return Ok(Untagged::Bye(String::from_utf8_lossy(line).into_owned()));
    }
    if upper(16).as_deref() == Some(b"OK [UIDVALIDITY ") {
        let rest = &line[16..];
        let end = rest.iter().position(|&c| c == b']').unwrap_or(rest.len());
        return std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|n| n.parse().ok())
            .map(Untagged::UidValidity)
            .ok_or_else(|| "bad UIDVALIDITY".to_owned());
    }
    let is_search = upper(6).as_deref() == Some(b"SEARCH");
    let first_is_number = line.first().is_some_and(u8::is_ascii_digit);
    if !is_search && !first_is_number {
        return Ok(Untagged::Other);
    }
    let tokens = tokenize(line)?;
    if is_search {
        return tokens[1..]
            .iter()
            .map(|t| t.number().ok_or_else(|| format!("SEARCH item {t:?}")))
            .collect::<Result<_, _>>()
            .map(Untagged::Search);
    }
    let n = tokens.first().and_then(Token::number).ok_or("bad number")?;
    let Some(kind) = tokens.get(1) else {
        return Err("number without a keyword".to_owned());
    };
    if kind.is_atom("EXISTS") {
        return Ok(Untagged::Exists(n));
    }
    if kind.is_atom("EXPUNGE") {
        return Ok(Untagged::Expunge(n));
    }
    if !kind.is_atom("FETCH") {
        return Ok(Untagged::Other);
    }
    let Some(Token::List(items)) = tokens.get(2) else {
        return Err("FETCH without a list".to_owned());
    };
    let mut fetched = Fetched {
        seq: n,
        ..Fetched::default()
    };
    for pair in items.chunks(2) {
        let [Token::Atom(name), value] = pair else {
            return Err(format!("FETCH item {pair:?}"));
        };
        match (name.to_ascii_uppercase().as_slice(), value) {
            (b"UID", v) => fetched.uid = Some(v.number().ok_or("bad UID")?),
            (b"FLAGS", Token::List(list)) => fetched.flags = Some(parse_flags(list)?),
            (b"ENVELOPE", Token::List(env)) => {
                fetched.subject = Some(match env.get(1) {
                    Some(Token::Str(s)) => Some(s.clone()),
                    Some(Token::Nil) => None,
                    other => return Err(format!("ENVELOPE subject {other:?}")),
                });
            }
            (b"BODY[]", Token::Str(body)) => fetched.body = Some(body.clone()),
            (b"BODY[]", Token::Nil) => return Err("BODY[] is NIL".to_owned()),
            _ => {}
        }
    }
    Ok(Untagged::Fetch(fetched))
}

/// The `[APPENDUID validity uid]` code of a tagged OK text.
pub fn parse_appenduid(text: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(text).ok()?;
    let upper = text.to_ascii_uppercase();
    let start = upper.find("[APPENDUID ")? + "[APPENDUID ".len();
    let end = start + text[start..].find(']')?;
    let mut parts = text[start..end].split(' ');
    let validity = parts.next()?.parse().ok()?;
    let uid = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((validity, uid))
}

// ---------------------------------------------------------------------------------------
// The model.

/// One message as the connection appended it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMessage {
    /// UID; 0 while its APPEND is in flight.
    pub uid: u32,
    /// Flag bits.
    pub flags: u8,
    /// The Subject header's value.
    pub subject: String,
    /// The exact bytes appended.
    pub bytes: Vec<u8>,
}

/// What the connection believes its mailbox holds, in sequence order.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Messages by sequence number - 1.
    pub messages: Vec<ModelMessage>,
    /// How many of them the server has announced (EXISTS minus EXPUNGEs since).
    pub announced: usize,
    /// UIDVALIDITY once known.
    pub uidvalidity: Option<u32>,
    /// The highest UID ever assigned.
    pub uid_max: u32,
}

/// What the untagged responses of one command carried, once checked against the model.
#[derive(Debug, Default)]
pub struct Observed {
    /// FETCH responses, in order.
    pub fetches: Vec<Fetched>,
    /// SEARCH results.
    pub searches: Vec<Vec<u32>>,
    /// UIDs removed by EXPUNGE responses.
    pub expunged: Vec<u32>,
    /// EXISTS counts.
    pub exists: Vec<u32>,
}

impl Model {
    /// Checks untagged responses in order, applying EXISTS and EXPUNGE; `Err` says what differed.
    pub fn observe(&mut self, responses: &[Untagged]) -> Result<Observed, String> {
        let mut seen = Observed::default();
        for response in responses {
            match response {
                Untagged::Exists(n) => {
                    if *n as usize != self.messages.len() {
                        return Err(format!("* {n} EXISTS, expected {}", self.messages.len()));
                    }
                    self.announced = *n as usize;
                    seen.exists.push(*n);
                }
                Untagged::Expunge(n) => {
                    let n = *n as usize;
                    if n == 0 || n > self.announced {
                        return Err(format!(
                            "* {n} EXPUNGE, but {} messages are announced",
                            self.announced
                        ));
                    }
                    let gone = self.messages.remove(n - 1);
                    self.announced -= 1;
                    seen.expunged.push(gone.uid);
                }
                Untagged::Fetch(f) => {
                    self.check_fetch(f)?;
                    seen.fetches.push(f.clone());
                }
                Untagged::Search(uids) => seen.searches.push(uids.clone()),
                Untagged::UidValidity(v) => match self.uidvalidity {
                    Some(known) if known != *v => {
                        return Err(format!("UIDVALIDITY {v}, was {known}"));
                    }
                    _ => self.uidvalidity = Some(*v),
                },
                Untagged::Bye(text) => return Err(format!("unexpected {text}")),
                Untagged::Other => {}
            }
        }
        Ok(seen)
    }

    fn check_fetch(&self, f: &Fetched) -> Result<(), String> {
        let seq = f.seq as usize;
        if seq == 0 || seq > self.announced {
            return Err(format!(
                "* {seq} FETCH, but {} messages are announced",
                self.announced
            ));
        }
        let m = &self.messages[seq - 1];
        if let Some(uid) = f.uid
            && uid != m.uid
        {
            return Err(format!("* {seq} FETCH has UID {uid}, expected {}", m.uid));
        }
        if let Some(flags) = f.flags
            && flags != m.flags
        {
            return Err(format!(
                "* {seq} FETCH (UID {}) FLAGS ({}), expected ({})",
                m.uid,
                flags_text(flags),
                flags_text(m.flags)
            ));
        }
        if let Some(subject) = &f.subject
            && subject.as_deref() != Some(m.subject.as_bytes())
        {
            return Err(format!(
                "* {seq} FETCH (UID {}) ENVELOPE subject {:?}, expected {:?}",
                m.uid,
                subject.as_ref().map(|s| String::from_utf8_lossy(s)),
                m.subject
            ));
        }
        if let Some(body) = &f.body
            && *body != m.bytes
        {
            let at = body
                .iter()
                .zip(&m.bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(body.len().min(m.bytes.len()));
            return Err(format!(
                "* {seq} FETCH (UID {}) BODY[] of {} bytes differs from the {} appended at byte {at}",
                m.uid,
                body.len(),
                m.bytes.len()
            ));
        }
        Ok(())
    }

    /// The sequence number of `uid` among announced messages.
    pub fn seq_of(&self, uid: u32) -> Option<usize> {
        self.messages[..self.announced]
            .iter()
            .position(|m| m.uid == uid)
            .map(|i| i + 1)
    }

    /// UIDs of announced messages for which `keep` holds, ascending.
    pub fn uids_where(&self, keep: impl Fn(&ModelMessage) -> bool) -> Vec<u32> {
        let mut uids: Vec<u32> = self.messages[..self.announced]
            .iter()
            .filter(|m| m.uid != 0 && keep(m))
            .map(|m| m.uid)
            .collect();
        uids.sort_unstable();
        uids
    }
}

// ---------------------------------------------------------------------------------------
// The client.

/// Why a command did not count.
enum Failure {
    /// The server refused it or its responses differ from the model.
    Mismatch(Command, String),
    /// The connection failed.
    Io(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e.to_string())
    }
}

/// A tagged reply and the untagged responses before it.
struct Reply {
    untagged: Vec<Vec<u8>>,
    ok: bool,
    text: Vec<u8>,
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u64,
}

impl Client {
    fn connect(addrs: &[SocketAddr], timeout: Duration) -> io::Result<Client> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            match TcpStream::connect_timeout(addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout))?;
                    stream.set_write_timeout(Some(timeout))?;
                    stream.set_nodelay(true)?;
                    let mut client = Client {
                        reader: BufReader::with_capacity(64 * 1024, stream.try_clone()?),
                        writer: stream,
                        tag: 0,
                    };
                    let greeting = client.read_line()?;
                    if !greeting.starts_with(b"* OK") {
                        return Err(io::Error::other(format!(
                            "greeting {:?}",
                            String::from_utf8_lossy(&greeting)
                        )));
                    }
                    return Ok(client);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// One logical response line with its literals inline, CRLF removed.
    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            let room = RESPONSE_LINE_BYTES_MAX.saturating_sub(line.len()) as u64;
            let n = (&mut self.reader).take(room).read_until(b'\n', &mut line)?;
            if n == 0 || !line.ends_with(b"\n") {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed or response line too long",
                ));
            }
            let Some(len) = literal_length(&line) else {
                line.truncate(line.len() - 2);
                return Ok(line);
            };
            if len > RESPONSE_LINE_BYTES_MAX.saturating_sub(line.len()) {
                return Err(io::Error::other("literal too long"));
            }
            let start = line.len();
            line.resize(start + len, 0);
            self.reader.read_exact(&mut line[start..])?;
        }
    }

    /// Sends `tag SP command` and reads through its tagged reply.
    fn run(&mut self, command: &[u8]) -> Result<Reply, Failure> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut wire = Vec::with_capacity(command.len() + tag.len() + 3);
        wire.extend_from_slice(tag.as_bytes());
        wire.push(b' ');
        wire.extend_from_slice(command);
        wire.extend_from_slice(b"\r\n");
        self.writer.write_all(&wire)?;
        let mut untagged = Vec::new();
        loop {
            let line = self.read_line()?;
            if let Some(rest) = line.strip_prefix(b"* ") {
                untagged.push(rest.to_vec());
            } else if let Some(rest) = line
                .strip_prefix(tag.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            {
                let ok = rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK");
                return Ok(Reply {
                    untagged,
                    ok,
                    text: rest.to_vec(),
                });
            } else {
                return Err(Failure::Io(format!(
                    "unexpected line {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                )));
            }
        }
    }
}

/// Every untagged response of a reply, parsed, or the first that does not parse.
fn parse_all(lines: &[Vec<u8>]) -> Result<Vec<Untagged>, String> {
    lines
        .iter()
        .map(|line| {
            parse_untagged(line).map_err(|e| {
                let shown = String::from_utf8_lossy(&line[..line.len().min(200)]);
                format!("unparsable response \"* {shown}\": {e}")
            })
        })
        .collect()
}

/// The length of the literal announced at the end of `line` (`{N}\r\n`), if any.
fn literal_length(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}\r\n")?;
    let open = body.iter().rposition(|&c| c == b'{')?;
    std::str::from_utf8(&body[open + 1..]).ok()?.parse().ok()
}

/// `text` as an IMAP quoted string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        if ch == '"' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('"');
    out
}

/// Words subjects are drawn from; HEADER Subject searches look for one of them.
const SUBJECT_WORDS: [&str; 4] = ["alpha", "bravo", "charlie", "delta"];

/// A message of `size_bytes` (or just its headers, if longer): headers, then lines of `id`-dependent text.
pub fn compose(account: &str, subject: &str, date: &str, id: &str, size_bytes: usize) -> Vec<u8> {
    let mut m = format!(
        "From: load@treehouse-tune.invalid\r\nTo: {account}\r\nSubject: {subject}\r\n\
         Date: {date}\r\nMessage-ID: <{id}@treehouse-tune.invalid>\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    .into_bytes();
    m.reserve(size_bytes.saturating_sub(m.len()));
    let mut line = 0u64;
    while m.len() + 2 < size_bytes {
        let text = format!("{id} line {line} ");
        let room = size_bytes - m.len() - 2;
        // The line is the text repeated, cut at 76 characters or the room left.
        let mut width = room.min(76);
        while width > 0 {
            let piece = &text.as_bytes()[..width.min(text.len())];
            m.extend_from_slice(piece);
            width -= piece.len();
        }
        m.extend_from_slice(b"\r\n");
        line += 1;
    }
    m
}

/// State all connections of a run share.
struct Shared<'a> {
    plan: &'a ImapPlan,
    addrs: Vec<SocketAddr>,
    run_id: u64,
    date: String,
    setup_done: Barrier,
    mix_started: Mutex<Option<Instant>>,
    next_op: AtomicU64,
}

impl Shared<'_> {
    /// Claims `count` mix commands; false once the deadline or the command limit is reached.
    fn claim(&self, deadline: Instant, count: u64) -> bool {
        Instant::now() < deadline
            && self.next_op.fetch_add(count, Ordering::Relaxed) + count <= self.plan.ops_max
    }
}

/// One connection's conversation with its mailbox.
struct Conversation<'a> {
    shared: &'a Shared<'a>,
    client: Client,
    account: &'a str,
    mailbox: String,
    model: Model,
    rng: StdRng,
    appended: u64,
}

impl Conversation<'_> {
    /// Runs `command`, checks its untagged responses, and counts it if `check` agrees too.
    fn step(
        &mut self,
        tally: &mut ImapTally,
        command: Command,
        wire: &[u8],
        check: impl FnOnce(&mut Model, &Reply, Observed) -> Result<(), String>,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let reply = self.client.run(wire)?;
        let latency = started.elapsed();
        let outcome = if reply.ok {
            parse_all(&reply.untagged)
                .and_then(|untagged| self.model.observe(&untagged))
                .and_then(|seen| check(&mut self.model, &reply, seen))
        } else {
            Err(format!("refused: {}", String::from_utf8_lossy(&reply.text)))
        };
        match outcome {
            Ok(()) => {
                tally.ok(command, latency);
                Ok(())
            }
            Err(what) => {
                let shown = String::from_utf8_lossy(&wire[..wire.len().min(120)]).into_owned();
                Err(Failure::Mismatch(command, format!("{shown:?}: {what}")))
            }
        }
    }

    fn login(&mut self, tally: &mut ImapTally) -> Result<(), Failure> {
        let wire = format!(
            "LOGIN {} {}",
            quoted(self.account),
            quoted(&self.shared.plan.password)
        );
        self.step(tally, Command::Login, wire.as_bytes(), |_, _, _| Ok(()))?;
        let wire = format!("CREATE {}", quoted(&self.mailbox));
        self.step(tally, Command::Create, wire.as_bytes(), |_, _, _| Ok(()))
    }

    fn select(&mut self, tally: &mut ImapTally) -> Result<(), Failure> {
        let wire = format!("SELECT {}", quoted(&self.mailbox));
        // SELECT restarts the view: EXISTS must count every message the model holds.
        self.model.announced = 0;
        self.step(tally, Command::Select, wire.as_bytes(), |model, _, seen| {
            if seen.exists.len() != 1 {
                return Err(format!(
                    "{} EXISTS responses, expected 1",
                    seen.exists.len()
                ));
            }
            if model.uidvalidity.is_none() {
                return Err("no UIDVALIDITY".to_owned());
            }
            Ok(())
        })
    }

    fn append(&mut self, tally: &mut ImapTally, command: Command) -> Result<(), Failure> {
        self.appended += 1;
        let plan = self.shared.plan;
        let size = self
            .rng
            .gen_range(plan.message_size_bytes / 2..=plan.message_size_bytes * 3 / 2);
        let word = SUBJECT_WORDS[self.rng.gen_range(0..SUBJECT_WORDS.len())];
        let id = format!(
            "{:x}.{}.{}",
            self.shared.run_id, self.mailbox, self.appended
        );
        let subject = format!("tune {word} {}", self.appended);
        let bytes = compose(self.account, &subject, &self.shared.date, &id, size);
        let flags = if self.rng.gen_bool(0.5) {
            flag::SEEN
        } else {
            0
        };
        let mut wire = format!(
            "APPEND {} ({}) {{{}+}}\r\n",
            quoted(&self.mailbox),
            flags_text(flags),
            bytes.len()
        )
        .into_bytes();
        wire.extend_from_slice(&bytes);
        self.model.messages.push(ModelMessage {
            uid: 0,
            flags,
            subject,
            bytes,
        });
        self.step(tally, command, &wire, |model, reply, _| {
            let (validity, uid) = parse_appenduid(&reply.text)
                .ok_or_else(|| "tagged OK without APPENDUID".to_owned())?;
            if Some(validity) != model.uidvalidity {
                return Err(format!(
                    "APPENDUID validity {validity}, expected {:?}",
                    model.uidvalidity
                ));
            }
            if uid <= model.uid_max {
                return Err(format!("APPENDUID uid {uid} not above {}", model.uid_max));
            }
            model.uid_max = uid;
            let last = model
                .messages
                .iter_mut()
                .rfind(|m| m.uid == 0)
                .ok_or("appended message missing from the model")?;
            last.uid = uid;
            Ok(())
        })
    }

    fn fetch_flags(&mut self, tally: &mut ImapTally) -> Result<(), Failure> {
        if self.model.announced == 0 {
            return Ok(());
        }
        self.step(
            tally,
            Command::FetchFlags,
            b"FETCH 1:* (UID FLAGS)",
            |model, _, seen| {
                let mut seqs: Vec<u32> = seen
                    .fetches
                    .iter()
                    .filter(|f| f.flags.is_some() && f.uid.is_some())
                    .map(|f| f.seq)
                    .collect();
                seqs.sort_unstable();
                seqs.dedup();
                if seqs.len() != model.announced {
                    return Err(format!(
                        "FLAGS for {} messages, expected {}",
                        seqs.len(),
                        model.announced
                    ));
                }
                Ok(())
            },
        )
    }

    fn pick_seq(&mut self) -> Option<u32> {
        (self.model.announced > 0).then(|| self.rng.gen_range(1..=self.model.announced as u32))
    }

    fn fetch_one(&mut self, tally: &mut ImapTally, command: Command) -> Result<(), Failure> {
        let Some(seq) = self.pick_seq() else {
            return Ok(());
        };
        let (item, wire) = match command {
            Command::FetchEnvelope => ("ENVELOPE", format!("FETCH {seq} (ENVELOPE)")),
            _ => ("BODY[]", format!("FETCH {seq} (BODY.PEEK[])")),
        };
        self.step(tally, command, wire.as_bytes(), |_, _, seen| {
            let found = seen.fetches.iter().any(|f| {
                f.seq == seq
                    && match command {
                        Command::FetchEnvelope => f.subject.is_some(),
                        _ => f.body.is_some(),
                    }
            });
            if found {
                Ok(())
            } else {
                Err(format!("no {item} for {seq}"))
            }
        })
    }

    fn store(
        &mut self,
        tally: &mut ImapTally,
        bit: u8,
        add: bool,
        silent: bool,
    ) -> Result<(), Failure> {
        let Some(seq) = self.pick_seq() else {
            return Ok(());
        };
        let message = &mut self.model.messages[seq as usize - 1];
        let uid = message.uid;
        let flags_before = message.flags;
        if add {
            message.flags |= bit;
        } else {
            message.flags &= !bit;
        }
        // RFC 9051 6.4.6 says STORE "normally" returns the new flags; a server may leave
        // out the FETCH when nothing changed (Dovecot does), so it is required only then.
        let changed = message.flags != flags_before;
        let wire = format!(
            "UID STORE {uid} {}FLAGS{} ({})",
            if add { "+" } else { "-" },
            if silent { ".SILENT" } else { "" },
            flags_text(bit)
        );
        self.step(tally, Command::Store, wire.as_bytes(), |_, _, seen| {
            if silent
                || !changed
                || seen
                    .fetches
                    .iter()
                    .any(|f| f.uid == Some(uid) && f.flags.is_some())
            {
                Ok(())
            } else {
                Err(format!("no FETCH (FLAGS) for UID {uid}"))
            }
        })?;
        Ok(())
    }

    fn search(&mut self, tally: &mut ImapTally) -> Result<(), Failure> {
        let word = SUBJECT_WORDS[self.rng.gen_range(0..SUBJECT_WORDS.len())];
        let (wire, expected) = match self.rng.gen_range(0..3) {
            0 => (
                "UID SEARCH FLAGGED".to_owned(),
                self.model.uids_where(|m| m.flags & flag::FLAGGED != 0),
            ),
            1 => (
                "UID SEARCH UNSEEN".to_owned(),
                self.model.uids_where(|m| m.flags & flag::SEEN == 0),
            ),
            _ => (
                format!("UID SEARCH HEADER Subject {word}"),
                self.model.uids_where(|m| m.subject.contains(word)),
            ),
        };
        self.step(tally, Command::Search, wire.as_bytes(), |_, _, seen| {
            let [found] = seen.searches.as_slice() else {
                return Err(format!(
                    "{} SEARCH responses, expected 1",
                    seen.searches.len()
                ));
            };
            let mut found = found.clone();
            found.sort_unstable();
            if found == expected {
                Ok(())
            } else {
                Err(format!("SEARCH {found:?}, expected {expected:?}"))
            }
        })
    }

    fn expunge_one(&mut self, tally: &mut ImapTally) -> Result<(), Failure> {
        let Some(seq) = self.pick_seq() else {
            return Ok(());
        };
        let uid = self.model.messages[seq as usize - 1].uid;
        self.model.messages[seq as usize - 1].flags |= flag::DELETED;
        let wire = format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)");
        self.step(tally, Command::Store, wire.as_bytes(), |_, _, _| Ok(()))?;
        let wire = format!("UID EXPUNGE {uid}");
        self.step(tally, Command::Expunge, wire.as_bytes(), |_, _, seen| {
            if seen.expunged == [uid] {
                Ok(())
            } else {
                Err(format!(
                    "expunged UIDs {:?}, expected [{uid}]",
                    seen.expunged
                ))
            }
        })
    }

    /// One round of the mix; false when the run is over.
    fn mix_round(&mut self, tally: &mut ImapTally, deadline: Instant) -> Result<bool, Failure> {
        for op in 0..10 {
            // The last step is two commands: UID STORE +FLAGS.SILENT (\Deleted), UID EXPUNGE.
            if !self.shared.claim(deadline, if op == 9 { 2 } else { 1 }) {
                return Ok(false);
            }
            match op {
                0 => self.select(tally)?,
                1 => self.fetch_flags(tally)?,
                2 => self.fetch_one(tally, Command::FetchEnvelope)?,
                3 => self.fetch_one(tally, Command::FetchBody)?,
                4 | 5 => {
                    let bit = [flag::FLAGGED, flag::SEEN, flag::KEYWORD][self.rng.gen_range(0..3)];
                    let add = self.rng.gen_bool(0.5);
                    self.store(tally, bit, add, false)?;
                }
                6 => self.search(tally)?,
                7 => self.append(tally, Command::Append)?,
                8 => self.search(tally)?,
                _ => self.expunge_one(tally)?,
            }
        }
        Ok(true)
    }
}

/// Connects, logs in, creates and fills a fresh mailbox; `attempt` names it.
fn open<'a>(
    shared: &'a Shared<'a>,
    index: usize,
    attempt: u32,
    tally: &mut ImapTally,
) -> Result<Conversation<'a>, Failure> {
    let plan = shared.plan;
    let client = Client::connect(&shared.addrs, plan.io_timeout)?;
    let mut conversation = Conversation {
        shared,
        client,
        account: &plan.accounts[index % plan.accounts.len()],
        mailbox: format!("tune-{:x}-{index}-{attempt}", shared.run_id & 0xffff_ffff),
        model: Model::default(),
        rng: StdRng::seed_from_u64(shared.run_id ^ ((index as u64) << 20) ^ u64::from(attempt)),
        appended: 0,
    };
    conversation.login(tally)?;
    // Setup, not mix: its failure counts, its success does not.
    conversation.select(&mut ImapTally::default())?;
    for _ in 0..plan.seed_messages {
        conversation.append(tally, Command::SeedAppend)?;
    }
    Ok(conversation)
}

fn record(tally: &mut ImapTally, failure: Failure) {
    match failure {
        Failure::Mismatch(command, what) => tally.error(command, what),
        Failure::Io(what) => tally.connection_error(what),
    }
}

/// One connection: setup, wait for every other connection's setup, then the mix.
fn connection_loop(shared: &Shared<'_>, index: usize) -> ImapTally {
    let plan = shared.plan;
    let mut tally = ImapTally::default();
    let mut attempt = 0;
    let mut conversation = match open(shared, index, attempt, &mut tally) {
        Ok(c) => Some(c),
        Err(f) => {
            record(&mut tally, f);
            None
        }
    };
    shared.setup_done.wait();
    let started = *shared
        .mix_started
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Instant::now);
    let deadline = started + plan.duration_limit;
    loop {
        let mut current = match conversation.take() {
            Some(c) => c,
            None => {
                if attempt >= plan.reconnects_max || Instant::now() >= deadline {
                    return tally;
                }
                attempt += 1;
                std::thread::sleep(RECONNECT_PAUSE);
                match open(shared, index, attempt, &mut tally) {
                    Ok(c) => c,
                    Err(f) => {
                        record(&mut tally, f);
                        continue;
                    }
                }
            }
        };
        match current.mix_round(&mut tally, deadline) {
            Ok(true) => conversation = Some(current),
            Ok(false) => {
                let _ = current.client.run(b"LOGOUT");
                return tally;
            }
            Err(f) => record(&mut tally, f),
        }
    }
}

/// Runs `plan` to completion and reports what matched the model.
pub fn run(plan: &ImapPlan) -> Result<ImapReport, String> {
    plan.validate()?;
    let addrs: Vec<SocketAddr> = plan
        .target
        .to_socket_addrs()
        .map_err(|e| format!("target {}: {e}", plan.target))?
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let shared = Shared {
        plan,
        addrs,
        run_id: (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 48),
        date: rfc5322_date(now.as_secs()),
        setup_done: Barrier::new(plan.connections),
        mix_started: Mutex::new(None),
        next_op: AtomicU64::new(0),
    };
    let started = Instant::now();
    let mut tally = ImapTally::default();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..plan.connections)
            .map(|index| {
                let shared = &shared;
                scope.spawn(move || connection_loop(shared, index))
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(t) => tally.merge(&t),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mix_started = shared
        .mix_started
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(started);
    Ok(ImapReport {
        target: plan.target.clone(),
        connections: plan.connections,
        seed_messages: plan.seed_messages,
        message_size_bytes: plan.message_size_bytes,
        setup_elapsed: mix_started - started,
        elapsed: mix_started.elapsed(),
        tally,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(uid: u32, flags: u8, subject: &str) -> ModelMessage {
        ModelMessage {
            uid,
            flags,
            subject: subject.to_owned(),
            bytes: format!("Subject: {subject}\r\n\r\nbody {uid}\r\n").into_bytes(),
        }
    }

    fn model() -> Model {
        Model {
            messages: vec![
                message(3, flag::SEEN, "tune alpha 1"),
                message(5, flag::FLAGGED | flag::KEYWORD, "tune bravo 2"),
                message(9, 0, "tune alpha 3"),
            ],
            announced: 3,
            uidvalidity: Some(7),
            uid_max: 9,
        }
    }

    fn untagged(line: &str) -> Untagged {
        parse_untagged(line.as_bytes()).expect("parses")
    }

    #[test]
    fn fetch_with_literal_body_envelope_and_flags_parses() {
        let line =
            b"2 FETCH (UID 5 FLAGS (\\Flagged \\Recent $tune) ENVELOPE (\"Mon, 1 Jan 2024\" \
            {12}\r\ntune bravo 2 NIL NIL NIL NIL NIL NIL NIL \"<x@y>\") BODY[] {4}\r\nab)c)";
        let Untagged::Fetch(f) = parse_untagged(line).expect("parses") else {
            panic!("not a FETCH");
        };
        assert_eq!(f.seq, 2);
        assert_eq!(f.uid, Some(5));
        assert_eq!(f.flags, Some(flag::FLAGGED | flag::KEYWORD));
        assert_eq!(f.subject, Some(Some(b"tune bravo 2".to_vec())));
        assert_eq!(f.body.as_deref(), Some(&b"ab)c"[..]));
    }

    #[test]
    fn other_untagged_responses_parse() {
        assert_eq!(untagged("4 EXISTS"), Untagged::Exists(4));
        assert_eq!(untagged("2 EXPUNGE"), Untagged::Expunge(2));
        assert_eq!(untagged("SEARCH 3 9"), Untagged::Search(vec![3, 9]));
        assert_eq!(untagged("SEARCH"), Untagged::Search(vec![]));
        assert_eq!(
            untagged("OK [UIDVALIDITY 77] UIDs valid"),
            Untagged::UidValidity(77)
        );
        assert_eq!(untagged("FLAGS (\\Seen (x)"), Untagged::Other);
        assert_eq!(untagged("1 RECENT"), Untagged::Other);
        assert!(parse_untagged(b"1 FETCH (FLAGS (\\Bogus))").is_err());
        assert!(parse_untagged(b"1 FETCH (BODY[] {9}\r\nshort)").is_err());
    }

    #[test]
    fn appenduid_and_literal_lengths_parse() {
        assert_eq!(
            parse_appenduid(b"OK [APPENDUID 7 12] Append completed"),
            Some((7, 12))
        );
        assert_eq!(parse_appenduid(b"OK Append completed"), None);
        assert_eq!(literal_length(b"* 1 FETCH (BODY[] {42}\r\n"), Some(42));
        assert_eq!(literal_length(b"* OK done\r\n"), None);
    }

    #[test]
    fn model_accepts_matching_responses_and_applies_expunge() {
        let mut m = model();
        let seen = m
            .observe(&[
                untagged("2 FETCH (UID 5 FLAGS (\\Flagged $Tune))"),
                untagged("1 EXPUNGE"),
                untagged("2 EXISTS"),
            ])
            .expect("matches");
        assert_eq!(seen.expunged, [3]);
        assert_eq!(m.announced, 2);
        assert_eq!(m.seq_of(9), Some(2));
        assert_eq!(m.uids_where(|x| x.subject.contains("alpha")), [9]);
    }

    #[test]
    fn model_reports_what_differs() {
        let cases = [
            ("4 EXISTS", "* 4 EXISTS, expected 3"),
            ("2 FETCH (UID 6)", "* 2 FETCH has UID 6, expected 5"),
            (
                "1 FETCH (FLAGS (\\Seen \\Flagged))",
                "* 1 FETCH (UID 3) FLAGS (\\Seen \\Flagged), expected (\\Seen)",
            ),
            ("4 EXPUNGE", "* 4 EXPUNGE, but 3 messages are announced"),
            ("OK [UIDVALIDITY 8] x", "UIDVALIDITY 8, was 7"),
        ];
        for (line, expected) in cases {
            assert_eq!(
                model().observe(&[untagged(line)]).err().as_deref(),
                Some(expected)
            );
        }
        let mut m = model();
        let body = b"3 FETCH (BODY[] {4}\r\nbody)";
        let err = m
            .observe(&[parse_untagged(body).expect("parses")])
            .expect_err("differs");
        assert!(err.contains("BODY[] of 4 bytes differs"), "{err}");
    }

    #[test]
    fn composed_message_has_the_asked_size_and_headers() {
        let m = compose(
            "u@x",
            "tune alpha 1",
            "Mon, 1 Jan 2024 00:00:00 +0000",
            "id1",
            3000,
        );
        assert_eq!(m.len(), 3000);
        assert!(m.starts_with(b"From: "));
        assert!(m.ends_with(b"\r\n"));
        let text = String::from_utf8(m).expect("ascii");
        assert!(text.contains("\r\nSubject: tune alpha 1\r\n"));
        assert!(text.lines().all(|l| l.len() <= 78));
        // Each body line is "<id> line <n> " repeated and cut at 76 characters.
        let body = &text[text.find("\r\n\r\n").expect("a header") + 4..];
        for (n, line) in body.split_terminator("\r\n").enumerate() {
            let unit = format!("id1 line {n} ");
            let full: String = unit.chars().cycle().take(76).collect();
            assert!(full.starts_with(line), "line {n}: {line:?}");
        }
    }

    #[test]
    fn report_lists_each_command_and_errors() {
        let mut tally = ImapTally::default();
        tally.ok(Command::Select, Duration::from_millis(2));
        tally.ok(Command::Append, Duration::from_millis(4));
        tally.error(Command::Search, "SEARCH [1], expected []".to_owned());
        let report = ImapReport {
            target: "127.0.0.1:1143".to_owned(),
            connections: 1,
            seed_messages: 20,
            message_size_bytes: 4096,
            setup_elapsed: Duration::from_secs(1),
            elapsed: Duration::from_secs(2),
            tally,
        };
        assert_eq!(report.ops_per_s(), 1.0);
        let text = report.to_string();
        assert!(
            text.contains("  error: uid_search: SEARCH [1], expected []"),
            "{text}"
        );
        let json = report.to_json();
        assert!(
            json.contains("\"select\":{\"ok\":1,\"failed\":0,\"per_s\":0.5,"),
            "{json}"
        );
        assert!(
            json.contains(
                "\"errors\":1,\"error_samples\":[\"uid_search: SEARCH [1], expected []\"]"
            ),
            "{json}"
        );
    }
}
