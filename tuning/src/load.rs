//! SMTP/LMTP load generator: N connections, driven by a few event-loop threads, send
//! generated messages and count only durable acknowledgements (2xx final replies) as
//! deliveries.

pub mod imap;
pub mod message;
pub mod report;
mod session;
#[cfg(test)]
mod tests;

use message::Composer;
use report::{LoadReport, Tally};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most concurrent connections.
pub const CONNECTIONS_MAX: usize = 4096;
/// Most messages in one run.
pub const MESSAGES_MAX: u64 = 1_000_000_000;
/// Largest message size in bytes.
pub const MESSAGE_SIZE_BYTES_MAX: usize = 64 << 20;
/// Most recipients per message.
pub const RCPTS_PER_MESSAGE_MAX: usize = 1000;
/// Most recipients in the list messages are addressed from.
pub const RECIPIENTS_MAX: usize = 10_000_000;
/// Longest run.
pub const DURATION_LIMIT_MAX: Duration = Duration::from_secs(24 * 3600);
/// Most reconnects per connection.
pub const RECONNECTS_MAX: u32 = 1000;
/// Longest wait for a connect, a read or a write.
pub const IO_TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// Protocol spoken to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP: EHLO, one final reply per message.
    Smtp,
    /// LMTP: LHLO, one final reply per accepted recipient.
    Lmtp,
}

impl Protocol {
    /// Lower-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Lmtp => "lmtp",
        }
    }
}

/// How the recipients of each message are drawn from the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Consecutive entries, continuing where the previous message (on any connection) ended.
    RoundRobin,
    /// Distinct entries chosen uniformly at random.
    Random,
}

/// What to send, where, and for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// SMTP or LMTP.
    pub protocol: Protocol,
    /// HOST:PORT of the server.
    pub target: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Messages in total across all connections.
    pub messages: u64,
    /// Size of each message in bytes.
    pub message_size_bytes: usize,
    /// Addresses recipients are drawn from.
    pub recipients: Vec<String>,
    /// Recipients per message (distinct, at most `recipients.len()`).
    pub rcpts_per_message: usize,
    /// How recipients are drawn.
    pub pick: Pick,
    /// Envelope and header sender.
    pub from: String,
    /// Send MAIL, RCPT and DATA in one write when the server offers PIPELINING.
    pub pipeline: bool,
    /// The run stops starting messages after this long.
    pub duration_limit: Duration,
    /// Reconnects allowed per connection after connection errors.
    pub reconnects_max: u32,
    /// Longest wait for a connect, a read or a write.
    pub io_timeout: Duration,
}

impl LoadPlan {
    /// A plan with default limits: one recipient per message, round-robin, 300 s at most.
    pub fn new(protocol: Protocol, target: &str, recipients: Vec<String>) -> Self {
        LoadPlan {
            protocol,
            target: target.to_owned(),
            connections: 1,
            messages: 1000,
            message_size_bytes: 4096,
            recipients,
            rcpts_per_message: 1,
            pick: Pick::RoundRobin,
            from: "load@treehouse-tune.invalid".to_owned(),
            pipeline: false,
            duration_limit: Duration::from_secs(300),
            reconnects_max: 10,
            io_timeout: Duration::from_secs(30),
        }
    }

    fn validate(&self) -> Result<(), PlanError> {
        let bounds = [
            (
                "connections",
                self.connections as u64,
                1,
                CONNECTIONS_MAX as u64,
            ),
            ("messages", self.messages, 1, MESSAGES_MAX),
            (
                "message size bytes",
                self.message_size_bytes as u64,
                0,
                MESSAGE_SIZE_BYTES_MAX as u64,
            ),
            (
                "recipients per message",
                self.rcpts_per_message as u64,
                1,
                RCPTS_PER_MESSAGE_MAX.min(self.recipients.len()) as u64,
            ),
            (
                "recipients",
                self.recipients.len() as u64,
                1,
                RECIPIENTS_MAX as u64,
            ),
            (
                "duration limit seconds",
                self.duration_limit.as_secs(),
                0,
                DURATION_LIMIT_MAX.as_secs(),
            ),
            (
                "reconnects",
                u64::from(self.reconnects_max),
                0,
                u64::from(RECONNECTS_MAX),
            ),
            (
                "I/O timeout seconds",
                self.io_timeout.as_secs(),
                0,
                IO_TIMEOUT_MAX.as_secs(),
            ),
        ];
        for (name, value, min, max) in bounds {
            if value < min || value > max {
                return Err(PlanError::OutOfRange {
                    name,
                    value,
                    min,
                    max,
                });
            }
        }
        if self.io_timeout.is_zero() {
            return Err(PlanError::OutOfRange {
                name: "I/O timeout milliseconds",
                value: 0,
                min: 1,
                max: IO_TIMEOUT_MAX.as_millis() as u64,
            });
        }
        for address in std::iter::once(&self.from).chain(&self.recipients) {
            if address.is_empty() || address.bytes().any(|b| b <= b' ' || b"<>".contains(&b)) {
                return Err(PlanError::Address(address.clone()));
            }
        }
        Ok(())
    }
}

/// Why a plan cannot run.
#[derive(Debug)]
pub enum PlanError {
    /// A setting is outside its limits.
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// An address is empty or holds spaces, controls or angle brackets.
    Address(String),
    /// An accounts pattern lacks the `{}` placeholder.
    Pattern(String),
    /// The recipients file cannot be read.
    RecipientsFile(String, std::io::Error),
    /// The target does not resolve.
    Resolve(String, std::io::Error),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::OutOfRange {
                name,
                value,
                min,
                max,
            } => write!(f, "{name} is {value}; allowed {min}..={max}"),
            PlanError::Address(a) => write!(f, "address {a:?} is empty or not a bare address"),
            PlanError::Pattern(p) => write!(f, "accounts pattern {p:?} has no {{}} placeholder"),
            PlanError::RecipientsFile(path, e) => write!(f, "recipients file {path}: {e}"),
            PlanError::Resolve(target, e) => write!(f, "target {target}: {e}"),
        }
    }
}

impl std::error::Error for PlanError {}

/// Addresses made by replacing `{}` in `pattern` with 1..=`accounts`.
pub fn recipients_from_pattern(pattern: &str, accounts: usize) -> Result<Vec<String>, PlanError> {
    if !pattern.contains("{}") {
        return Err(PlanError::Pattern(pattern.to_owned()));
    }
    if accounts > RECIPIENTS_MAX {
        return Err(PlanError::OutOfRange {
            name: "accounts",
            value: accounts as u64,
            min: 1,
            max: RECIPIENTS_MAX as u64,
        });
    }
    Ok((1..=accounts)
        .map(|n| pattern.replace("{}", &n.to_string()))
        .collect())
}

/// Addresses in `path`, one a line; blank lines and lines starting with `#` are skipped.
pub fn recipients_from_file(path: &Path) -> Result<Vec<String>, PlanError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PlanError::RecipientsFile(path.display().to_string(), e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// State all connections of a run share.
struct Run<'a> {
    plan: &'a LoadPlan,
    addrs: Vec<SocketAddr>,
    composer: Composer,
    run_id: u64,
    deadline: Instant,
    /// Next message sequence number to claim; a claim at or past `plan.messages` ends a loop.
    next_seq: AtomicU64,
    /// Next round-robin recipient index.
    next_rcpt: AtomicUsize,
}

impl Run<'_> {
    /// Whether no further message may start.
    fn is_over(&self) -> bool {
        Instant::now() >= self.deadline
            || self.next_seq.load(Ordering::Relaxed) >= self.plan.messages
    }

    /// Claims the next message's sequence number, or `None` when the run is over.
    fn claim(&self) -> Option<u64> {
        if Instant::now() >= self.deadline {
            return None;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        (seq < self.plan.messages).then_some(seq)
    }
}

/// Threads that share the connections: one per four CPUs, so that on a machine shared
/// with the server the generator takes little of it, and never more than connections.
fn worker_threads(connections: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    (cpus / 4).clamp(1, connections.max(1))
}

/// Runs `plan` to completion and reports what the server durably accepted.
pub fn run(plan: &LoadPlan) -> Result<LoadReport, PlanError> {
    plan.validate()?;
    let addrs: Vec<SocketAddr> = plan
        .target
        .to_socket_addrs()
        .map_err(|e| PlanError::Resolve(plan.target.clone(), e))?
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let run_id = (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 48);
    let date = message::rfc5322_date(now.as_secs());
    let started = Instant::now();
    let run = Run {
        plan,
        addrs,
        composer: Composer::new(&plan.from, plan.message_size_bytes, run_id, &date, run_id),
        run_id,
        deadline: started + plan.duration_limit,
        next_seq: AtomicU64::new(0),
        next_rcpt: AtomicUsize::new(0),
    };
    let mut tally = Tally::default();
    let threads = worker_threads(plan.connections);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                let run = &run;
                let indices: Vec<usize> = (worker..plan.connections).step_by(threads).collect();
                scope.spawn(move || session::drive(run, &indices))
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(connection_tally) => tally.merge(&connection_tally),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    Ok(LoadReport {
        protocol: plan.protocol.name(),
        target: plan.target.clone(),
        connections: plan.connections,
        message_size_bytes: run.composer.message_size_bytes(),
        rcpts_per_message: plan.rcpts_per_message,
        pipeline: plan.pipeline,
        elapsed: started.elapsed(),
        tally,
    })
}
