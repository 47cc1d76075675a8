//! The appliance configuration: one TOML file, every key optional, every limit named
//! with its unit. `DEFAULT_TOML` is the documented default file.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Bytes a segment keeps free beyond the largest message (record headers, index entries).
pub const SEGMENT_RESERVE_BYTES: u64 = 64 * 1024;
/// Alignment of segment sizes and flush batches: direct I/O block size.
pub const BLOCK_SIZE_BYTES: u64 = 4096;
/// Largest accepted `store.shards`.
pub const SHARDS_MAX: u32 = 4096;
/// Largest accepted `server.executors`.
pub const EXECUTORS_MAX: usize = 1024;
/// Protocol names accepted by `--listen PROTO=ADDR`, in `[listen]` order.
pub const LISTEN_PROTOCOLS: [&str; 9] = [
    "smtp",
    "lmtp",
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "submission",
    "submissions",
    "metrics",
];

/// The documented default configuration file, printed by `treehouse config default`.
pub const DEFAULT_TOML: &str = r#"# treehouse configuration file.
#
# Every key is optional: a key left out keeps the default written here.
# Unknown keys are errors. Command-line options override this file:
# --data-dir DIR replaces server.data_dir, and --listen PROTO=ADDR (repeatable)
# replaces the whole [listen] list of each protocol it names.

[server]
# Host name announced in SMTP greetings and IMAP/POP3 banners. Must not be empty.
# Default: "localhost".
hostname = "localhost"

# Folder holding the account directory (<data_dir>/directory/: passwd, domains,
# aliases) and, unless store.data_dirs says otherwise, the mail store
# (<data_dir>/store). A relative path is relative to the working folder.
# Default: "./treehouse-data".
data_dir = "./treehouse-data"

# Executor threads, each pinned to one core. 0 = one per available core.
# Only cores the process may use count and are pinned to (taskset, systemd
# CPUAffinity=, container CPU sets); with more executors than such cores,
# none is pinned. Range: 0 to 1024. Default: 0. Unit: threads.
executors = 0

# Domain given to a bare local part: "alice" means "alice@<default_domain>" at
# login, in deliveries and in the admin commands.
# Default: "localhost".
default_domain = "localhost"

# true: on a start that finds no accounts, create demo@localhost with a random
# 16-character password and print it once on standard output.
# Default: true.
demo_account = true

[listen]
# Addresses each protocol listens on, "IP:PORT" strings ("[::1]:143" for IPv6).
# [] turns the protocol off. Every executor binds every address (SO_REUSEPORT),
# so port 0 is not allowed, and no address may appear twice.

# SMTP, mail from other servers. Default: ["127.0.0.1:2525"].
smtp = ["127.0.0.1:2525"]

# LMTP, local delivery from an MTA such as Postfix. Default: ["127.0.0.1:2424"].
lmtp = ["127.0.0.1:2424"]

# IMAP4rev1 mail access. Default: ["127.0.0.1:1143"].
imap = ["127.0.0.1:1143"]

# IMAP over implicit TLS (RFC 8314; port 993 on an appliance).
# Default: ["127.0.0.1:1993"].
imaps = ["127.0.0.1:1993"]

# POP3 mail access (port 110 on an appliance). Default: ["127.0.0.1:1110"].
pop3 = ["127.0.0.1:1110"]

# POP3 over implicit TLS (RFC 8314; port 995 on an appliance).
# Default: ["127.0.0.1:1995"].
pop3s = ["127.0.0.1:1995"]

# SMTP submission from authenticated users (RFC 6409; port 587 on an
# appliance). Default: ["127.0.0.1:1587"].
submission = ["127.0.0.1:1587"]

# Submission over implicit TLS (RFC 8314; port 465 on an appliance).
# Default: ["127.0.0.1:1465"].
submissions = ["127.0.0.1:1465"]

# Metrics over HTTP, Prometheus text format. Default: [] (off).
metrics = []

[store]
# Virtual shards; an account hashes to one shard. Fixed when the store is first
# formatted: starting an existing store with a different value is an error.
# Range: 1 to 4096. Default: 16. Unit: shards.
shards = 16

# One folder per disk for shard segment files; shards are spread over them.
# [] = ["<data_dir>/store"]. No folder may appear twice.
# Default: [].
data_dirs = []

# Size of each preallocated segment file. A multiple of 4096, and
# more than smtp.max_message_bytes + 65536 (a message never spans two segments).
# Default: 268435456 (256 MiB). Unit: bytes.
segment_size_bytes = 268435456

# Largest group-commit batch written to a segment with one write and one data
# sync; a single larger record is written alone. A multiple of 4096, at most
# segment_size_bytes.
# Default: 4194304 (4 MiB). Unit: bytes.
flush_batch_max_bytes = 4194304

# How long a delivery waits for its shard to make it durable; past this the
# client gets 451 4.3.0 and retries later. At least 1.
# Default: 10000 (10 s). Unit: milliseconds.
durable_wait_ms = 10000

# A shard writes an index checkpoint after this many log records, bounding the
# log tail replayed at start; a shard whose index holds more than four times as many
# messages waits for a quarter of that many records instead, so that checkpoints of a
# large index cost a bounded amount of CPU per record. Each checkpoint encodes the
# shard's whole index, on a thread at the lowest CPU priority (one at a time), while
# the shard goes on serving; a smaller value costs more CPU, never a pause.
# At least 1.
# Default: 10000. Unit: records.
checkpoint_every_records = 10000

# Deliveries staged but not yet durable, per shard; one more gets 452 4.3.1.
# At least 1.
# Default: 1024. Unit: deliveries.
queue_depth_max = 1024

# Memory each executor keeps recently written and read message bodies in, for
# FETCH without a disk read; a new body pushes the oldest ones out. A body larger
# than a sixteenth of it is never kept. 0 turns the cache off.
# Default: 33554432 (32 MiB). Unit: bytes.
body_cache_bytes = 33554432

[smtp]
# Largest message accepted (advertised as SIZE); must be less than
# store.segment_size_bytes - 65536. At least 1024.
# Default: 52428800 (50 MiB). Unit: bytes.
max_message_bytes = 52428800

# Recipients per mail transaction. At least 1.
# Default: 100. Unit: recipients.
max_recipients = 100

# Longest command line, CRLF included. At least 512 (RFC 5321 4.5.3.1.4).
# Default: 512. Unit: bytes.
max_command_line_bytes = 512

# Longest line of message data, CRLF included. At least 1000
# (RFC 5321 4.5.3.1.6).
# Default: 1000. Unit: bytes.
max_text_line_bytes = 1000

# Protocol errors on one connection before it is closed. At least 1.
# Default: 10. Unit: errors.
max_errors = 10

# Concurrent SMTP, submission and LMTP connections, in total over all listeners
# and all executors; each executor admits an equal share, rounded up. At least 1.
# Default: 1000. Unit: connections.
max_connections = 1000

# A connection idle this long is closed. At least 1.
# Default: 300 (5 minutes). Unit: seconds.
idle_timeout_secs = 300

[imap]
# Longest command line, literals excluded. At least 1024.
# Default: 65536 (64 KiB). Unit: bytes.
max_line_bytes = 65536

# Largest literal, and so the largest APPEND (advertised as APPENDLIMIT); must
# be less than store.segment_size_bytes - 65536. At least 1024.
# Default: 52428800 (50 MiB). Unit: bytes.
max_literal_bytes = 52428800

# Concurrent IMAP connections, in total over all listeners and executors; each
# executor admits an equal share, rounded up. At least 1.
# Default: 10000. Unit: connections.
max_connections = 10000

# A connection silent this long (IDLE included) is logged out; RFC 9051 asks
# for at least 30 minutes. At least 1.
# Default: 1800 (30 minutes). Unit: seconds.
idle_timeout_secs = 1800

[pop3]
# Concurrent POP3 connections, in total over all listeners and executors; each
# executor admits an equal share, rounded up. At least 1.
# Default: 10000. Unit: connections.
max_connections = 10000

# A connection silent this long is closed; RFC 1939 asks for at least 10
# minutes. At least 1.
# Default: 600 (10 minutes). Unit: seconds.
idle_timeout_secs = 600

[auth]
# Where passwords may be sent before TLS, for IMAP, POP3 and SMTP AUTH:
# "loopback" (only on listeners bound to a loopback address), "always", or
# "never". Elsewhere IMAP advertises LOGINDISABLED, SMTP answers 530 5.7.0 and
# POP3 -ERR until STARTTLS/STLS. Default: "loopback".
plaintext_login = "loopback"

# Listener addresses ("IP:PORT", as in [listen]) that also take passwords before
# TLS whatever plaintext_login says: listeners the admin trusts, e.g. one on an
# internal network behind a TLS-terminating proxy. Default: [].
plaintext_listeners = []

# After a failed authentication, the next attempt from the same client IP or
# for the same account waits this long, doubling with each further failure.
# 0 turns throttling off. Default: 250. Unit: milliseconds.
failure_delay_ms = 250

# The longest such wait. At least failure_delay_ms.
# Default: 15000 (15 s). Unit: milliseconds.
failure_delay_max_ms = 15000

# Failures older than this are forgotten. At least 1.
# Default: 900 (15 minutes). Unit: seconds.
failure_window_secs = 900

# Client IPs and accounts remembered with failures; beyond it the oldest are
# forgotten first. At least 1.
# Default: 100000. Unit: entries.
failure_entries_max = 100000

[tls]
# PEM certificate chain offered by STARTTLS and implicit TLS when the client
# names no host (or a host without its own entry in tls.sni). Empty: a
# self-signed certificate for server.hostname is generated at first start in
# <data_dir>/tls/.
# Default: "".
cert_file = ""

# PEM private key of cert_file; set both or neither.
# Default: "".
key_file = ""

# One certificate per host name, chosen by the name the client sends in TLS
# SNI: a list of { name = "mail.example.org", cert_file = "...",
# key_file = "..." } tables. All are re-read on SIGHUP. Default: [].
sni = []
"#;

/// The whole appliance configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Identity, folders and threads.
    pub server: Server,
    /// Listen addresses per protocol.
    pub listen: Listen,
    /// Mail store layout and durability limits.
    pub store: Store,
    /// SMTP, submission and LMTP limits.
    pub smtp: Smtp,
    /// IMAP limits.
    pub imap: Imap,
    /// POP3 limits.
    pub pop3: Pop3,
    /// Password rules and failure throttling.
    pub auth: Auth,
    /// Certificates for STARTTLS and implicit TLS.
    pub tls: Tls,
}

/// `[tls]`: the server certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain; empty for the generated self-signed one.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
    /// Certificates chosen by the host name a client sends in SNI.
    pub sni: Vec<SniCertificate>,
}

/// One `tls.sni` entry: the certificate for one host name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniCertificate {
    /// The host name, as clients send it in SNI.
    pub name: String,
    /// PEM certificate chain for `name`.
    pub cert_file: PathBuf,
    /// PEM private key of `cert_file`.
    pub key_file: PathBuf,
}

/// `[pop3]`: limits for POP3 sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3 {
    /// Concurrent connections in total over all executors and POP3 listeners.
    pub max_connections: usize,
    /// Silence before a connection is closed.
    pub idle_timeout_secs: u64,
}

impl Default for Pop3 {
    fn default() -> Pop3 {
        Pop3 {
            max_connections: 10_000,
            idle_timeout_secs: 600,
        }
    }
}

/// `[auth]`: where passwords may be sent, and how failures are slowed down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Where passwords may be sent before TLS.
    pub plaintext_login: PlaintextLogin,
    /// Listener addresses that take passwords before TLS in any case.
    pub plaintext_listeners: Vec<SocketAddr>,
    /// Wait before the next attempt after one failure; doubles per failure.
    pub failure_delay_ms: u64,
    /// Longest wait before an attempt.
    pub failure_delay_max_ms: u64,
    /// Age after which a failure is forgotten.
    pub failure_window_secs: u64,
    /// Client IPs and accounts remembered with failures.
    pub failure_entries_max: usize,
}

impl Auth {
    /// Whether a listener bound to `local` may take a password before TLS.
    pub fn plaintext_allowed(&self, local: SocketAddr) -> bool {
        self.plaintext_login.allows(local) || self.plaintext_listeners.contains(&local)
    }
}

impl Default for Auth {
    fn default() -> Auth {
        Auth {
            plaintext_login: PlaintextLogin::Loopback,
            plaintext_listeners: Vec::new(),
            failure_delay_ms: 250,
            failure_delay_max_ms: 15_000,
            failure_window_secs: 900,
            failure_entries_max: 100_000,
        }
    }
}

/// `[imap]`: limits for IMAP sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Imap {
    /// Longest command line, literals excluded.
    pub max_line_bytes: u32,
    /// Largest literal (APPENDLIMIT).
    pub max_literal_bytes: u32,
    /// Concurrent connections in total over all executors and IMAP listeners.
    pub max_connections: usize,
    /// Silence before a connection is logged out.
    pub idle_timeout_secs: u64,
}

/// Where a client may send its password in the clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlaintextLogin {
    /// On listeners bound to a loopback address.
    #[default]
    Loopback,
    /// On every listener.
    Always,
    /// Never: TLS first.
    Never,
}

impl PlaintextLogin {
    /// Whether a listener bound to `local` may take a password before TLS.
    pub fn allows(self, local: std::net::SocketAddr) -> bool {
        match self {
            PlaintextLogin::Loopback => local.ip().is_loopback(),
            PlaintextLogin::Always => true,
            PlaintextLogin::Never => false,
        }
    }
}

impl Default for Imap {
    fn default() -> Imap {
        Imap {
            max_line_bytes: 64 * 1024,
            max_literal_bytes: 50 * 1024 * 1024,
            max_connections: 10_000,
            idle_timeout_secs: 1800,
        }
    }
}

/// `[server]`: identity, folders and threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Host name announced in greetings and banners.
    pub hostname: String,
    /// Folder for the account directory and, by default, the store.
    pub data_dir: PathBuf,
    /// Executor threads; 0 = one per available core.
    pub executors: usize,
    /// Domain given to a bare local part.
    pub default_domain: String,
    /// Create demo@localhost on a start that finds no accounts.
    pub demo_account: bool,
}

impl Default for Server {
    fn default() -> Server {
        Server {
            hostname: "localhost".to_string(),
            data_dir: PathBuf::from("./treehouse-data"),
            executors: 0,
            default_domain: "localhost".to_string(),
            demo_account: true,
        }
    }
}

/// `[listen]`: addresses per protocol; an empty list turns the protocol off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// SMTP from other servers.
    pub smtp: Vec<SocketAddr>,
    /// LMTP from a local MTA.
    pub lmtp: Vec<SocketAddr>,
    /// IMAP mail access.
    pub imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS.
    pub imaps: Vec<SocketAddr>,
    /// POP3 mail access.
    pub pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS.
    pub pop3s: Vec<SocketAddr>,
    /// SMTP submission from authenticated users.
    pub submission: Vec<SocketAddr>,
    /// Submission over implicit TLS.
    pub submissions: Vec<SocketAddr>,
    /// Prometheus metrics over HTTP.
    pub metrics: Vec<SocketAddr>,
}

impl Default for Listen {
    fn default() -> Listen {
        Listen {
            smtp: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            lmtp: vec![SocketAddr::from(([127, 0, 0, 1], 2424))],
            imap: vec![SocketAddr::from(([127, 0, 0, 1], 1143))],
            imaps: vec![SocketAddr::from(([127, 0, 0, 1], 1993))],
            pop3: vec![SocketAddr::from(([127, 0, 0, 1], 1110))],
            pop3s: vec![SocketAddr::from(([127, 0, 0, 1], 1995))],
            submission: vec![SocketAddr::from(([127, 0, 0, 1], 1587))],
            submissions: vec![SocketAddr::from(([127, 0, 0, 1], 1465))],
            metrics: Vec::new(),
        }
    }
}

impl Listen {
    /// The address list of protocol `name` (one of `LISTEN_PROTOCOLS`), if it exists.
    pub fn addresses_mut(&mut self, name: &str) -> Option<&mut Vec<SocketAddr>> {
        match name {
            "smtp" => Some(&mut self.smtp),
            "lmtp" => Some(&mut self.lmtp),
            "imap" => Some(&mut self.imap),
            "imaps" => Some(&mut self.imaps),
            "pop3" => Some(&mut self.pop3),
            "pop3s" => Some(&mut self.pop3s),
            "submission" => Some(&mut self.submission),
            "submissions" => Some(&mut self.submissions),
            "metrics" => Some(&mut self.metrics),
            _ => None,
        }
    }

    /// Every (protocol, address list) pair, in `LISTEN_PROTOCOLS` order.
    pub fn by_protocol(&self) -> [(&'static str, &[SocketAddr]); 9] {
        [
            ("smtp", &self.smtp),
            ("lmtp", &self.lmtp),
            ("imap", &self.imap),
            ("imaps", &self.imaps),
            ("pop3", &self.pop3),
            ("pop3s", &self.pop3s),
            ("submission", &self.submission),
            ("submissions", &self.submissions),
            ("metrics", &self.metrics),
        ]
    }
}

/// `[store]`: mail store layout and durability limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// Virtual shard count, fixed at format time.
    pub shards: u32,
    /// One folder per disk for segment files; empty = `<data_dir>/store`.
    pub data_dirs: Vec<PathBuf>,
    /// Size of each preallocated segment file.
    pub segment_size_bytes: u64,
    /// Largest group-commit batch written with one write and one data sync.
    pub flush_batch_max_bytes: u64,
    /// Longest wait for durability before a delivery gets 451 4.3.0.
    pub durable_wait_ms: u64,
    /// Log records between index checkpoints.
    pub checkpoint_every_records: u64,
    /// Staged-but-not-durable deliveries per shard before 452 4.3.1.
    pub queue_depth_max: usize,
    /// Memory per executor for cached message bodies.
    pub body_cache_bytes: u64,
}

impl Default for Store {
    fn default() -> Store {
        Store {
            shards: 16,
            data_dirs: Vec::new(),
            segment_size_bytes: 256 * 1024 * 1024,
            flush_batch_max_bytes: 4 * 1024 * 1024,
            durable_wait_ms: 10_000,
            checkpoint_every_records: 10_000,
            queue_depth_max: 1024,
            body_cache_bytes: 32 * 1024 * 1024,
        }
    }
}

/// `[smtp]`: limits for SMTP, submission and LMTP sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// Largest accepted message.
    pub max_message_bytes: u64,
    /// Recipients per transaction.
    pub max_recipients: usize,
    /// Longest command line, CRLF included.
    pub max_command_line_bytes: usize,
    /// Longest message data line, CRLF included.
    pub max_text_line_bytes: usize,
    /// Protocol errors before the connection is closed.
    pub max_errors: usize,
    /// Concurrent connections in total over all executors and SMTP-family listeners.
    pub max_connections: usize,
    /// Idle time before a connection is closed.
    pub idle_timeout_secs: u64,
}

impl Default for Smtp {
    fn default() -> Smtp {
        Smtp {
            max_message_bytes: 50 * 1024 * 1024,
            max_recipients: 100,
            max_command_line_bytes: 512,
            max_text_line_bytes: 1000,
            max_errors: 10,
            max_connections: 1000,
            idle_timeout_secs: 300,
        }
    }
}

impl Config {
    /// Reads `path`, or returns the defaults when `path` is `None`. Does not validate.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read config file {}: {e}; check the path given to --config",
                path.display()
            )
        })?;
        Config::parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Parses configuration text. Does not validate.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| {
            let what = e.message().trim_end();
            let place = match e.span() {
                Some(span) => format!("line {}: ", line_of(text, span.start)),
                None => String::new(),
            };
            format!(
                "{place}{what}; fix or remove that key (`treehouse config default` prints every key)"
            )
        })
    }

    /// The effective configuration as TOML, as `treehouse config check` prints it.
    pub fn to_toml(&self) -> String {
        // Serialising plain structs of strings, numbers, paths and addresses cannot fail,
        // except for a path that is not UTF-8; show that as a comment rather than panic.
        toml::to_string(self)
            .unwrap_or_else(|e| format!("# cannot print this configuration as TOML: {e}\n"))
    }

    /// Checks every limit and relation; the error names each key to change.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        self.validate_server(&mut problems);
        self.validate_listen(&mut problems);
        self.validate_store(&mut problems);
        self.validate_smtp(&mut problems);
        self.validate_imap(&mut problems);
        self.validate_access(&mut problems);
        if self.tls.cert_file.as_os_str().is_empty() != self.tls.key_file.as_os_str().is_empty() {
            problems.push(
                "tls.cert_file and tls.key_file go together: set both, or neither for a self-signed certificate"
                    .to_string(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The store folders, one per disk: `store.data_dirs`, or `<data_dir>/store`.
    pub fn store_dirs(&self) -> Vec<PathBuf> {
        if self.store.data_dirs.is_empty() {
            vec![self.server.data_dir.join("store")]
        } else {
            self.store.data_dirs.clone()
        }
    }

    /// The executor count with 0 resolved to the number of available cores.
    pub fn executor_count(&self) -> usize {
        if self.server.executors > 0 {
            return self.server.executors;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    fn validate_server(&self, problems: &mut Vec<String>) {
        let server = &self.server;
        if server.hostname.trim().is_empty() || server.hostname.contains(char::is_whitespace) {
            problems.push(format!(
                "server.hostname = {:?} is empty or has spaces; set it to this host's name, e.g. \"mail.example.com\"",
                server.hostname
            ));
        }
        let domain = &server.default_domain;
        if domain.is_empty() || domain.contains('@') || domain.contains(char::is_whitespace) {
            problems.push(format!(
                "server.default_domain = {domain:?} is not a domain name; set it to a domain such as \"example.com\""
            ));
        }
        if server.data_dir.as_os_str().is_empty() {
            problems.push(
                "server.data_dir is empty; set it to a folder, e.g. \"/var/lib/treehouse\""
                    .to_string(),
            );
        }
        if server.executors > EXECUTORS_MAX {
            problems.push(format!(
                "server.executors = {} is more than {EXECUTORS_MAX}; lower it, or use 0 for one per core",
                server.executors
            ));
        }
    }

    fn validate_listen(&self, problems: &mut Vec<String>) {
        let mut seen: BTreeMap<SocketAddr, &str> = BTreeMap::new();
        let mut any = false;
        for (protocol, addresses) in self.listen.by_protocol() {
            for address in addresses {
                any = true;
                if address.port() == 0 {
                    problems.push(format!(
                        "listen.{protocol} has {address} with port 0; every executor must bind the same port, so give a fixed port"
                    ));
                }
                if let Some(other) = seen.insert(*address, protocol) {
                    problems.push(format!(
                        "listen.{protocol} and listen.{other} both use {address}; give each protocol its own address"
                    ));
                }
            }
        }
        if !any {
            problems.push(
                "every [listen] list is empty, so there is nothing to serve; give at least listen.smtp, listen.lmtp or listen.imap an address"
                    .to_string(),
            );
        }
    }

    fn validate_store(&self, problems: &mut Vec<String>) {
        let store = &self.store;
        if store.shards == 0 || store.shards > SHARDS_MAX {
            problems.push(format!(
                "store.shards = {} is outside 1 to {SHARDS_MAX}; pick a value in that range (it is fixed once the store is formatted)",
                store.shards
            ));
        }
        let mut dirs = std::collections::BTreeSet::new();
        for dir in &store.data_dirs {
            if dir.as_os_str().is_empty() {
                problems.push("store.data_dirs has an empty path; remove it".to_string());
            } else if !dirs.insert(dir) {
                problems.push(format!(
                    "store.data_dirs lists {} twice; list each disk's folder once",
                    dir.display()
                ));
            }
        }
        if !store.segment_size_bytes.is_multiple_of(BLOCK_SIZE_BYTES)
            || store.segment_size_bytes == 0
        {
            problems.push(format!(
                "store.segment_size_bytes = {} is not a positive multiple of {BLOCK_SIZE_BYTES}; round it to one",
                store.segment_size_bytes
            ));
        }
        if !store.flush_batch_max_bytes.is_multiple_of(BLOCK_SIZE_BYTES)
            || store.flush_batch_max_bytes == 0
        {
            problems.push(format!(
                "store.flush_batch_max_bytes = {} is not a positive multiple of {BLOCK_SIZE_BYTES}; round it to one",
                store.flush_batch_max_bytes
            ));
        }
        if store.flush_batch_max_bytes > store.segment_size_bytes {
            problems.push(format!(
                "store.flush_batch_max_bytes = {} is larger than store.segment_size_bytes = {}; lower it",
                store.flush_batch_max_bytes, store.segment_size_bytes
            ));
        }
        for (key, value) in [
            ("durable_wait_ms", store.durable_wait_ms),
            ("checkpoint_every_records", store.checkpoint_every_records),
            ("queue_depth_max", store.queue_depth_max as u64),
        ] {
            if value == 0 {
                problems.push(format!("store.{key} = 0; set it to at least 1"));
            }
        }
    }

    fn validate_smtp(&self, problems: &mut Vec<String>) {
        let smtp = &self.smtp;
        let segment = self.store.segment_size_bytes;
        let room = segment.saturating_sub(SEGMENT_RESERVE_BYTES);
        if smtp.max_message_bytes >= room {
            problems.push(format!(
                "smtp.max_message_bytes = {} does not fit a segment: it must be less than store.segment_size_bytes - {SEGMENT_RESERVE_BYTES} = {room}; lower smtp.max_message_bytes or raise store.segment_size_bytes",
                smtp.max_message_bytes
            ));
        }
        if smtp.max_message_bytes < 1024 {
            problems.push(format!(
                "smtp.max_message_bytes = {} is below 1024; raise it",
                smtp.max_message_bytes
            ));
        }
        if smtp.max_command_line_bytes < 512 {
            problems.push(format!(
                "smtp.max_command_line_bytes = {} is below the 512 that RFC 5321 requires; raise it",
                smtp.max_command_line_bytes
            ));
        }
        if smtp.max_text_line_bytes < 1000 {
            problems.push(format!(
                "smtp.max_text_line_bytes = {} is below the 1000 that RFC 5321 requires; raise it",
                smtp.max_text_line_bytes
            ));
        }
        for (key, value) in [
            ("max_recipients", smtp.max_recipients as u64),
            ("max_errors", smtp.max_errors as u64),
            ("max_connections", smtp.max_connections as u64),
            ("idle_timeout_secs", smtp.idle_timeout_secs),
        ] {
            if value == 0 {
                problems.push(format!("smtp.{key} = 0; set it to at least 1"));
            }
        }
    }
}

impl Config {
    fn validate_access(&self, problems: &mut Vec<String>) {
        let (pop3, auth) = (&self.pop3, &self.auth);
        for (key, value) in [
            ("pop3.max_connections", pop3.max_connections as u64),
            ("pop3.idle_timeout_secs", pop3.idle_timeout_secs),
            ("auth.failure_window_secs", auth.failure_window_secs),
            ("auth.failure_entries_max", auth.failure_entries_max as u64),
        ] {
            if value == 0 {
                problems.push(format!("{key} = 0; set it to at least 1"));
            }
        }
        if auth.failure_delay_max_ms < auth.failure_delay_ms {
            problems.push(format!(
                "auth.failure_delay_max_ms = {} is below auth.failure_delay_ms = {}; raise it",
                auth.failure_delay_max_ms, auth.failure_delay_ms
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for entry in &self.tls.sni {
            let name = entry.name.to_ascii_lowercase();
            if name.is_empty() || name.contains(char::is_whitespace) {
                problems.push(format!(
                    "tls.sni has an entry with name {:?}; give each entry a host name such as \"mail.example.org\"",
                    entry.name
                ));
            } else if !names.insert(name) {
                problems.push(format!(
                    "tls.sni lists {} twice; give each host name one certificate",
                    entry.name
                ));
            }
            if entry.cert_file.as_os_str().is_empty() || entry.key_file.as_os_str().is_empty() {
                problems.push(format!(
                    "tls.sni entry {:?} needs both cert_file and key_file",
                    entry.name
                ));
            }
        }
    }

    fn validate_imap(&self, problems: &mut Vec<String>) {
        let imap = &self.imap;
        let room = self
            .store
            .segment_size_bytes
            .saturating_sub(SEGMENT_RESERVE_BYTES);
        if u64::from(imap.max_literal_bytes) >= room {
            problems.push(format!(
                "imap.max_literal_bytes = {} does not fit a segment: it must be less than store.segment_size_bytes - {SEGMENT_RESERVE_BYTES} = {room}; lower imap.max_literal_bytes or raise store.segment_size_bytes",
                imap.max_literal_bytes
            ));
        }
        for (key, value) in [
            ("max_line_bytes", u64::from(imap.max_line_bytes)),
            ("max_literal_bytes", u64::from(imap.max_literal_bytes)),
        ] {
            if value < 1024 {
                problems.push(format!("imap.{key} = {value} is below 1024; raise it"));
            }
        }
        for (key, value) in [
            ("max_connections", imap.max_connections as u64),
            ("idle_timeout_secs", imap.idle_timeout_secs),
        ] {
            if value == 0 {
                problems.push(format!("imap.{key} = 0; set it to at least 1"));
            }
        }
    }
}

/// The 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dotted key path of a TOML table, e.g. "store.shards".
    fn key_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if let toml::Value::Table(inner) = value {
                key_paths(inner, &path, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn default_toml_parses_to_defaults() {
        let parsed = Config::parse(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, Config::default());
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn default_toml_names_and_documents_every_key() {
        let serialized: toml::Table = toml::Value::try_from(Config::default())
            .unwrap()
            .as_table()
            .unwrap()
            .clone();
        let mut expected = Vec::new();
        key_paths(&serialized, "", &mut expected);
        let written: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
        let mut present = Vec::new();
        key_paths(&written, "", &mut present);
        expected.sort();
        present.sort();
        assert_eq!(present, expected);
        assert_eq!(
            expected.len(),
            44,
            "a new key needs a documented line in DEFAULT_TOML"
        );
        // Each key line is preceded by a comment that states its default.
        let lines: Vec<&str> = DEFAULT_TOML.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains(" = ") && !line.starts_with('#') {
                let comment: Vec<&str> = lines[..i]
                    .iter()
                    .rev()
                    .take_while(|l| l.starts_with('#'))
                    .copied()
                    .collect();
                assert!(
                    comment.iter().any(|l| l.contains("Default:")),
                    "key line {line:?} lacks a Default: comment"
                );
            }
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[smtp]\nmax_mesage_bytes = 10\n").unwrap_err();
        assert!(err.contains("max_mesage_bytes"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = Config::parse("[storage]\nshards = 1\n").unwrap_err();
        assert!(err.contains("storage"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_not_panicked() {
        let err = Config::parse("[store]\nshards = \"many\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = Config::parse("[listen]\nsmtp = [\"not an address\"]\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let config =
            Config::parse("[server]\nhostname = \"mx.example.test\"\n[store]\nshards = 4\n")
                .unwrap();
        assert_eq!(config.server.hostname, "mx.example.test");
        assert_eq!(config.store.shards, 4);
        assert_eq!(config.smtp, Smtp::default());
        assert_eq!(config.listen, Listen::default());
    }

    #[test]
    fn message_larger_than_segment_names_both_keys() {
        let mut config = Config::default();
        config.smtp.max_message_bytes = config.store.segment_size_bytes;
        let err = config.validate().unwrap_err();
        assert!(err.contains("smtp.max_message_bytes"), "{err}");
        assert!(err.contains("store.segment_size_bytes"), "{err}");
        config.smtp.max_message_bytes = config.store.segment_size_bytes - SEGMENT_RESERVE_BYTES;
        assert!(config.validate().is_err());
        config.smtp.max_message_bytes -= 1;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn every_broken_limit_is_reported() {
        let mut config = Config::default();
        config.store.shards = 0;
        config.server.hostname = String::new();
        config.store.segment_size_bytes = 1000;
        config.smtp.max_recipients = 0;
        config.listen.imap = config.listen.smtp.clone();
        let err = config.validate().unwrap_err();
        for key in [
            "store.shards",
            "server.hostname",
            "store.segment_size_bytes",
            "smtp.max_recipients",
            "listen.imap",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
    }

    #[test]
    fn trusted_listeners_take_passwords_before_tls() {
        let config = Config::parse(
            "[auth]\nplaintext_login = \"never\"\nplaintext_listeners = [\"10.0.0.1:143\"]\n",
        )
        .unwrap();
        assert!(
            config
                .auth
                .plaintext_allowed("10.0.0.1:143".parse().unwrap())
        );
        assert!(
            !config
                .auth
                .plaintext_allowed("10.0.0.1:993".parse().unwrap())
        );
        assert!(
            !config
                .auth
                .plaintext_allowed("127.0.0.1:143".parse().unwrap())
        );
        let default = Auth::default();
        assert!(default.plaintext_allowed("127.0.0.1:143".parse().unwrap()));
        assert!(default.plaintext_allowed("[::1]:143".parse().unwrap()));
        assert!(!default.plaintext_allowed("192.0.2.1:143".parse().unwrap()));
    }

    #[test]
    fn port_zero_and_no_listener_are_rejected() {
        let mut config = Config::default();
        config.listen.smtp = vec!["127.0.0.1:0".parse().unwrap()];
        assert!(config.validate().unwrap_err().contains("port 0"));
        config.listen = Listen {
            smtp: vec![],
            lmtp: vec![],
            imap: vec![],
            imaps: vec![],
            pop3: vec![],
            pop3s: vec![],
            submission: vec![],
            submissions: vec![],
            metrics: vec![],
        };
        assert!(config.validate().unwrap_err().contains("nothing to serve"));
    }

    #[test]
    fn effective_config_round_trips() {
        let mut config = Config::default();
        config.store.data_dirs = vec![PathBuf::from("/disk1"), PathBuf::from("/disk2")];
        config.listen.pop3 = vec!["[::1]:1110".parse().unwrap()];
        assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
        assert_eq!(
            config.store_dirs(),
            vec![PathBuf::from("/disk1"), PathBuf::from("/disk2")]
        );
        assert_eq!(
            Config::default().store_dirs(),
            vec![PathBuf::from("./treehouse-data/store")]
        );
    }

    #[test]
    fn load_reports_missing_file_with_path() {
        let err = Config::load(Some(Path::new("/nonexistent/treehouse.toml"))).unwrap_err();
        assert!(err.contains("/nonexistent/treehouse.toml"), "{err}");
        assert_eq!(Config::load(None).unwrap(), Config::default());
    }
}
