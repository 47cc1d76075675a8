//! `treehouse-tune compare`: treehouse and a private Dovecot on the same disk, the same
//! accounts and the same load, alternating, for several rounds; fio on that disk in the
//! same run; a Markdown report with medians and ratios, and PNG charts.

pub mod charts;
pub mod dovecot;
pub mod fio;
pub mod measure;
pub mod process;
pub mod procfs;
pub mod report;
pub mod treehouse;

use fio::DiskFigures;
use measure::{Measurement, Target};
use process::free_loopback_ports;
use procfs::Machine;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most rounds.
pub const ROUNDS_MAX: usize = 20;
/// Longest measured pass of one workload.
pub const SECONDS_MAX: u64 = 600;
/// Most distinct connection counts.
pub const CONNECTION_COUNTS_MAX: usize = 8;
/// Most connections of one workload.
pub const CONNECTIONS_MAX: usize = 256;
/// Accounts on both servers: `user1..user100@example.test`.
pub const ACCOUNTS: usize = 100;
/// The domain of every account.
pub const DOMAIN: &str = "example.test";
/// The password of every account.
pub const PASSWORD: &str = "x";
/// Shards of treehouse's fresh store.
pub const SHARDS: u32 = 16;
/// LMTP message sizes.
pub const LMTP_SIZES_BYTES: [usize; 2] = [4 << 10, 64 << 10];
/// Messages sent to each account before the first workload of a round, on both servers:
/// treehouse's shards prepare their first segments, Dovecot creates every Maildir.
pub const STORE_WARMUP_MESSAGES_PER_ACCOUNT: u64 = 4;
/// The font the charts are drawn with (Debian's fonts-dejavu-core).
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// How long a server gets to stop on SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest time a package installation may take.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(1200);

/// Why a comparison could not be made.
#[derive(Debug)]
pub enum CompareError {
    /// A setting is outside its limits.
    Plan(String),
    /// A file or folder operation failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A tool (fio, apt-get, dovecot, doveconf) failed.
    Tool {
        /// The program.
        tool: String,
        /// What happened.
        message: String,
    },
    /// A server could not be started or failed.
    Server {
        /// `treehouse` or `dovecot`.
        server: &'static str,
        /// What happened.
        message: String,
    },
    /// A load run could not start.
    Load(String),
}

impl CompareError {
    /// An I/O error while doing `what`.
    pub fn io(what: &str, source: std::io::Error) -> CompareError {
        CompareError::Io {
            what: what.to_owned(),
            source,
        }
    }
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompareError::Plan(m) => write!(f, "{m}"),
            CompareError::Io { what, source } => write!(f, "{what}: {source}"),
            CompareError::Tool { tool, message } => write!(f, "{tool}: {message}"),
            CompareError::Server { server, message } => write!(f, "{server}: {message}"),
            CompareError::Load(m) => write!(f, "load generator: {m}"),
        }
    }
}

impl std::error::Error for CompareError {}

/// Which server a figure belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerKind {
    /// treehouse.
    Treehouse,
    /// Dovecot.
    Dovecot,
}

impl ServerKind {
    /// Both, in report order.
    pub const BOTH: [ServerKind; 2] = [ServerKind::Treehouse, ServerKind::Dovecot];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Treehouse => "treehouse",
            ServerKind::Dovecot => "Dovecot",
        }
    }
}

/// One workload, run against both servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// LMTP deliveries of one size, one recipient each, round-robin over the accounts.
    Lmtp {
        /// Message size.
        size_bytes: usize,
        /// Concurrent connections.
        connections: usize,
    },
    /// The checked IMAP command mix of `treehouse-tune load imap`.
    Imap {
        /// Concurrent connections.
        connections: usize,
    },
}

impl Workload {
    /// `lmtp 4KiB x32`, `imap x1`.
    pub fn name(&self) -> String {
        match self {
            Workload::Lmtp {
                size_bytes,
                connections,
            } => format!("lmtp {}KiB x{connections}", size_bytes >> 10),
            Workload::Imap { connections } => format!("imap x{connections}"),
        }
    }

    /// What one operation is.
    pub fn operation(&self) -> &'static str {
        match self {
            Workload::Lmtp { .. } => "deliveries",
            Workload::Imap { .. } => "commands",
        }
    }

    /// Concurrent connections.
    pub fn connections(&self) -> usize {
        match self {
            Workload::Lmtp { connections, .. } | Workload::Imap { connections } => *connections,
        }
    }

    /// Messages a measured pass may send per second at most (a bound on disk use).
    pub fn messages_per_s_cap(&self) -> u64 {
        match self {
            Workload::Lmtp { size_bytes, .. } if *size_bytes <= 16 << 10 => 20_000,
            Workload::Lmtp { .. } => 4_000,
            Workload::Imap { .. } => 0,
        }
    }
}

/// Every workload of a round, in the order it runs: LMTP by size and connections, then IMAP.
pub fn workloads(connection_counts: &[usize]) -> Vec<Workload> {
    let mut out = Vec::new();
    for size_bytes in LMTP_SIZES_BYTES {
        for &connections in connection_counts {
            out.push(Workload::Lmtp {
                size_bytes,
                connections,
            });
        }
    }
    for &connections in connection_counts {
        out.push(Workload::Imap { connections });
    }
    out
}

/// The order the servers take a workload in round `round` (1-based): treehouse first in
/// odd rounds, Dovecot first in even ones, so that neither always meets a warmer disk.
pub fn server_order(round: usize) -> [ServerKind; 2] {
    if round % 2 == 1 {
        [ServerKind::Treehouse, ServerKind::Dovecot]
    } else {
        [ServerKind::Dovecot, ServerKind::Treehouse]
    }
}

/// What to compare, where, and for how long.
#[derive(Debug, Clone)]
pub struct ComparePlan {
    /// Folder on the disk to measure; a temporary folder is made (and removed) under it.
    pub dir: PathBuf,
    /// Rounds; each starts both servers on fresh stores.
    pub rounds: usize,
    /// Measured seconds of each workload on each server.
    pub seconds: u64,
    /// Unmeasured warm-up seconds before each measured pass.
    pub warmup_seconds: u64,
    /// Seconds of each fio job (run before and after the rounds).
    pub fio_seconds: u64,
    /// Connection counts of every workload.
    pub connection_counts: Vec<usize>,
    /// The `treehouse` binary (copied into the run's folder before use).
    pub treehouse_binary: PathBuf,
    /// `store.segment_size_bytes` of treehouse.
    pub segment_size_bytes: u64,
    /// Install missing Debian packages (dovecot-imapd, dovecot-lmtpd, fio, fonts-dejavu-core).
    pub install: bool,
}

impl ComparePlan {
    fn validate(&self) -> Result<(), CompareError> {
        let bounds = [
            ("rounds", self.rounds as u64, 1, ROUNDS_MAX as u64),
            ("seconds", self.seconds, 1, SECONDS_MAX),
            ("warm-up seconds", self.warmup_seconds, 0, SECONDS_MAX),
            ("fio seconds", self.fio_seconds, 1, SECONDS_MAX),
            (
                "connection counts",
                self.connection_counts.len() as u64,
                1,
                CONNECTION_COUNTS_MAX as u64,
            ),
        ];
        for (name, value, min, max) in bounds {
            if value < min || value > max {
                return Err(CompareError::Plan(format!(
                    "{name} is {value}; allowed {min}..={max}"
                )));
            }
        }
        if let Some(c) = self
            .connection_counts
            .iter()
            .find(|&&c| c == 0 || c > CONNECTIONS_MAX)
        {
            return Err(CompareError::Plan(format!(
                "{c} connections; allowed 1..={CONNECTIONS_MAX}"
            )));
        }
        if !self.segment_size_bytes.is_multiple_of(4096) || self.segment_size_bytes < 64 << 20 {
            return Err(CompareError::Plan(format!(
                "segment size {} bytes is not a multiple of 4096 of at least 64 MiB",
                self.segment_size_bytes
            )));
        }
        if !self.dir.is_dir() {
            return Err(CompareError::Plan(format!(
                "{} is not a folder",
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// A generous bound on the bytes one round writes (both servers' messages at the
    /// message caps, treehouse's segments twice over) plus fio's files.
    pub fn disk_bytes_needed(&self) -> u64 {
        let segments = 2 * u64::from(SHARDS) * self.segment_size_bytes;
        let per_pass_s = self.seconds + self.warmup_seconds;
        let messages: u64 = workloads(&self.connection_counts)
            .iter()
            .map(|w| match w {
                Workload::Lmtp { size_bytes, .. } => {
                    let stored = (*size_bytes as u64 + 1024).div_ceil(4096) * 4096;
                    w.messages_per_s_cap() * per_pass_s * stored
                }
                Workload::Imap { connections } => *connections as u64 * (64 << 20),
            })
            .sum();
        segments + 2 * messages + (1 << 30)
    }
}

/// Debian packages the comparison needs, each with a file that shows it is installed.
pub const REQUIRED_PACKAGES: [(&str, &str); 5] = [
    ("dovecot-core", dovecot::DOVECOT_BIN),
    ("dovecot-imapd", "/usr/lib/dovecot/imap"),
    ("dovecot-lmtpd", "/usr/lib/dovecot/lmtp"),
    ("fio", "/usr/bin/fio"),
    ("fonts-dejavu-core", FONT_PATH),
];

/// The packages of [`REQUIRED_PACKAGES`] whose file `exists` says is missing.
pub fn missing_packages(exists: impl Fn(&Path) -> bool) -> Vec<&'static str> {
    REQUIRED_PACKAGES
        .iter()
        .filter(|(_, file)| !exists(Path::new(file)))
        .map(|(package, _)| *package)
        .collect()
}

/// The apt-get command line installing `packages`, through `sudo -n` unless run as root.
pub fn install_command(euid: u32, packages: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if euid != 0 {
        argv.extend(["sudo", "-n", "--preserve-env=DEBIAN_FRONTEND"].map(String::from));
    }
    argv.extend(["apt-get", "install", "-y", "-q", "--no-install-recommends"].map(String::from));
    argv.extend(packages.iter().map(|p| (*p).to_owned()));
    argv
}

/// Installs whatever of [`REQUIRED_PACKAGES`] is missing (refreshing the package lists
/// once if the first attempt fails), or names it when `install` is off.
fn ensure_packages(install: bool, progress: &mut dyn FnMut(&str)) -> Result<(), CompareError> {
    let missing = missing_packages(Path::exists);
    if missing.is_empty() {
        return Ok(());
    }
    if !install {
        return Err(CompareError::Plan(format!(
            "missing Debian packages: {} (install them, or drop --no-install)",
            missing.join(" ")
        )));
    }
    let euid = procfs::own_effective_uid().unwrap_or(0);
    let apt = |argv: Vec<String>| -> Result<(), CompareError> {
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        process::run_bounded(&mut command, INSTALL_TIMEOUT).map(|_| ())
    };
    progress(&format!("installing {}", missing.join(" ")));
    if apt(install_command(euid, &missing)).is_err() {
        let mut update = install_command(euid, &[]);
        let at = update.iter().position(|a| a == "install").unwrap_or(0);
        update.truncate(at);
        update.push("update".to_owned());
        update.push("-q".to_owned());
        apt(update)?;
        apt(install_command(euid, &missing))?;
    }
    let still = missing_packages(Path::exists);
    if still.is_empty() {
        Ok(())
    } else {
        Err(CompareError::Tool {
            tool: "apt-get".to_owned(),
            message: format!("still missing after installing: {}", still.join(" ")),
        })
    }
}

/// Available bytes of the filesystem holding `dir`, from `df -Pk`.
fn available_bytes(dir: &Path) -> Option<u64> {
    let out = process::run_bounded(
        Command::new("df").arg("-Pk").arg(dir),
        Duration::from_secs(30),
    )
    .ok()?;
    parse_df_available_kib(&String::from_utf8_lossy(&out)).map(|kib| kib * 1024)
}

/// The "Available" KiB of the last line of `df -Pk` output.
pub fn parse_df_available_kib(text: &str) -> Option<u64> {
    text.lines().last()?.split_whitespace().nth(3)?.parse().ok()
}

/// One measured pass.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Which server.
    pub server: ServerKind,
    /// Which workload.
    pub workload: Workload,
    /// What it gave.
    pub measurement: Measurement,
}

/// One round: both servers started on fresh stores, every workload on each.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// 1-based.
    pub index: usize,
    /// Every measured pass of the round.
    pub samples: Vec<Sample>,
    /// Why the round ended early, if it did (its samples are left out of the medians).
    pub abandoned: Option<String>,
    /// How each server exited when stopped.
    pub exits: Vec<(ServerKind, String)>,
    /// Error lines in Dovecot's log: count and the first few.
    pub dovecot_log_problems: (usize, Vec<String>),
    /// Peak resident memory over the whole round, in KiB: treehouse's VmHWM, Dovecot's
    /// largest sampled sum of VmRSS over its processes.
    pub peak_rss_kib: Vec<(ServerKind, u64)>,
}

/// Everything one comparison measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When the run started, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// Wall time of the whole run.
    pub wall: Duration,
    /// The machine.
    pub machine: Machine,
    /// `treehouse --version`.
    pub treehouse_version: String,
    /// `dovecot --version`.
    pub dovecot_version: String,
    /// Dovecot's durability and process settings as `doveconf` resolved them.
    pub dovecot_settings: String,
    /// What was asked.
    pub plan: ComparePlan,
    /// fio before the rounds.
    pub fio_before: DiskFigures,
    /// fio after the rounds.
    pub fio_after: DiskFigures,
    /// Workloads in run order.
    pub workloads: Vec<Workload>,
    /// Every round.
    pub rounds: Vec<Round>,
}

impl Outcome {
    /// fio's figures as used for the ratios: the mean of before and after.
    pub fn fio(&self) -> DiskFigures {
        DiskFigures::mean(&self.fio_before, &self.fio_after)
    }
}

/// The run's temporary folder; removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn accounts() -> Vec<String> {
    (1..=ACCOUNTS)
        .map(|n| format!("user{n}@{DOMAIN}"))
        .collect()
}

/// Runs the whole comparison, telling `progress` what it is doing.
pub fn run(plan: &ComparePlan, progress: &mut dyn FnMut(&str)) -> Result<Outcome, CompareError> {
    plan.validate()?;
    ensure_packages(plan.install, progress)?;
    let needed = plan.disk_bytes_needed();
    if let Some(available) = available_bytes(&plan.dir)
        && available < needed
    {
        return Err(CompareError::Plan(format!(
            "{} has {:.1} GiB free; a round may write up to {:.1} GiB: free space, or lower \
             --seconds or --segment-mib",
            plan.dir.display(),
            available as f64 / (1u64 << 30) as f64,
            needed as f64 / (1u64 << 30) as f64
        )));
    }
    let started = Instant::now();
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let work = WorkDir(plan.dir.join(format!(
        "treehouse-compare-{}-{started_unix_s}",
        std::process::id()
    )));
    std::fs::create_dir_all(&work.0).map_err(|e| CompareError::io("creating the run folder", e))?;
    let binary = work.0.join("treehouse");
    std::fs::copy(&plan.treehouse_binary, &binary).map_err(|e| {
        CompareError::io(&format!("copying {}", plan.treehouse_binary.display()), e)
    })?;
    let treehouse_version = treehouse::version(&binary)?;
    let dovecot_version = dovecot::version()?;
    progress(&format!("{treehouse_version}; Dovecot {dovecot_version}"));
    let machine = procfs::machine(&work.0);
    progress(&format!("fio before, {} s per job", plan.fio_seconds));
    let fio_before = fio::measure(&work.0, plan.fio_seconds)?;
    let workloads = workloads(&plan.connection_counts);
    let mut rounds = Vec::new();
    let mut dovecot_settings = String::new();
    for index in 1..=plan.rounds {
        let round = run_round(
            plan,
            index,
            &work.0,
            &binary,
            &workloads,
            &mut dovecot_settings,
            progress,
        )?;
        rounds.push(round);
    }
    progress(&format!("fio after, {} s per job", plan.fio_seconds));
    let fio_after = fio::measure(&work.0, plan.fio_seconds)?;
    Ok(Outcome {
        started_unix_s,
        wall: started.elapsed(),
        machine,
        treehouse_version,
        dovecot_version,
        dovecot_settings,
        plan: plan.clone(),
        fio_before,
        fio_after,
        workloads,
        rounds,
    })
}

/// Both servers of one round, started on fresh folders.
struct Servers {
    treehouse: treehouse::Treehouse,
    dovecot: dovecot::Dovecot,
}

impl Servers {
    fn target(&self, kind: ServerKind) -> Target {
        match kind {
            ServerKind::Treehouse => Target {
                kind,
                pid: self.treehouse.process.pid,
                lmtp: format!("127.0.0.1:{}", self.treehouse.setup.lmtp_port),
                imap: format!("127.0.0.1:{}", self.treehouse.setup.imap_port),
            },
            ServerKind::Dovecot => Target {
                kind,
                pid: self.dovecot.process.pid,
                lmtp: format!("127.0.0.1:{}", self.dovecot.setup.lmtp_port),
                imap: format!("127.0.0.1:{}", self.dovecot.setup.imap_port),
            },
        }
    }

    /// The first server found dead, with its standard error.
    fn dead(&mut self) -> Option<String> {
        if self.treehouse.process.has_exited() {
            return Some(format!(
                "treehouse exited: {}",
                self.treehouse.process.stderr_tail()
            ));
        }
        if self.dovecot.process.has_exited() {
            return Some(format!(
                "Dovecot's master exited: {}",
                self.dovecot.process.stderr_tail()
            ));
        }
        None
    }
}

fn start_servers(
    plan: &ComparePlan,
    index: usize,
    root: &Path,
    binary: &Path,
) -> Result<Servers, CompareError> {
    let ports = free_loopback_ports(4)?;
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| CompareError::io("reading /etc/passwd", e))?;
    let euid = procfs::own_effective_uid().unwrap_or(0);
    let users = dovecot::users_for(euid, &passwd).map_err(|message| CompareError::Server {
        server: "dovecot",
        message,
    })?;
    let instance = format!("thc{}r{index}", std::process::id());
    let treehouse = treehouse::Treehouse::start(treehouse::Setup {
        binary: binary.to_owned(),
        root: root.join("treehouse"),
        lmtp_port: ports[0],
        imap_port: ports[1],
        shards: SHARDS,
        segment_size_bytes: plan.segment_size_bytes,
        accounts: accounts(),
        password: PASSWORD.to_owned(),
    })?;
    let dovecot = dovecot::Dovecot::start(dovecot::Setup {
        root: root.join("dovecot"),
        run_dir: std::env::temp_dir().join(&instance),
        instance_name: instance,
        lmtp_port: ports[2],
        imap_port: ports[3],
        users,
        accounts: accounts(),
        password: PASSWORD.to_owned(),
    })?;
    Ok(Servers { treehouse, dovecot })
}

fn run_round(
    plan: &ComparePlan,
    index: usize,
    work: &Path,
    binary: &Path,
    workloads: &[Workload],
    dovecot_settings: &mut String,
    progress: &mut dyn FnMut(&str),
) -> Result<Round, CompareError> {
    let root = work.join(format!("round-{index}"));
    let _round_dir = WorkDir(root.clone());
    let mut servers = start_servers(plan, index, &root, binary)?;
    let _run_dir = WorkDir(servers.dovecot.setup.run_dir.clone());
    if dovecot_settings.is_empty() {
        *dovecot_settings = dovecot::resolved_settings(
            &servers.dovecot.setup,
            &[
                "mail_fsync",
                "mail_nfs_storage",
                "mail_nfs_index",
                "maildir_very_dirty_syncs",
                "lmtp_user_concurrency_limit",
                "default_process_limit",
            ],
        )
        .unwrap_or_else(|e| format!("(doveconf failed: {e})"));
    }
    progress(&format!(
        "round {index}: treehouse pid {} (lmtp {}, imap {}), Dovecot master pid {} (lmtp {}, imap {})",
        servers.treehouse.process.pid,
        servers.treehouse.setup.lmtp_port,
        servers.treehouse.setup.imap_port,
        servers.dovecot.process.pid,
        servers.dovecot.setup.lmtp_port,
        servers.dovecot.setup.imap_port,
    ));
    let mut round = Round {
        index,
        ..Round::default()
    };
    let mut peaks: Vec<(ServerKind, u64)> = ServerKind::BOTH.iter().map(|&k| (k, 0)).collect();
    for kind in ServerKind::BOTH {
        let warm = measure::store_warmup(&servers.target(kind), &accounts())?;
        if !warm.is_empty() {
            progress(&format!("  {} store warm-up: {warm}", kind.name()));
        }
    }
    'workloads: for workload in workloads {
        for kind in server_order(index) {
            let target = servers.target(kind);
            let warm = measure::warm_up(&target, workload, plan.warmup_seconds, &accounts())?;
            if !warm.is_empty() {
                progress(&format!(
                    "  {} {} warm-up: {warm}",
                    kind.name(),
                    workload.name()
                ));
            }
            let m = measure::measure(&target, workload, plan.seconds, &accounts())?;
            progress(&format!(
                "  {:<9} {:<14} {:>9.1} {}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  cpu {:.3} s/1k  rss {:.1} MiB{}",
                kind.name(),
                workload.name(),
                m.ops_per_s(),
                workload.operation(),
                m.latency_ms_at(50.0),
                m.latency_ms_at(99.0),
                m.server_cpu_s_per_1k().unwrap_or(f64::NAN),
                m.peak_rss_kib as f64 / 1024.0,
                if m.failures == 0 {
                    String::new()
                } else {
                    format!(
                        "  FAILURES {}: {}",
                        m.failures,
                        m.failure_samples.join("; ")
                    )
                }
            ));
            if let Some(peak) = peaks.iter_mut().find(|(k, _)| *k == kind) {
                peak.1 = peak.1.max(m.peak_rss_kib);
            }
            round.samples.push(Sample {
                server: kind,
                workload: *workload,
                measurement: m,
            });
            if let Some(dead) = servers.dead() {
                progress(&format!("round {index} abandoned: {dead}"));
                round.abandoned = Some(dead);
                break 'workloads;
            }
        }
    }
    if let Some(hwm) = procfs::peak_rss_kib(servers.treehouse.process.pid)
        && let Some(peak) = peaks.iter_mut().find(|(k, _)| *k == ServerKind::Treehouse)
    {
        peak.1 = peak.1.max(hwm);
    }
    round.peak_rss_kib = peaks;
    round.dovecot_log_problems = servers.dovecot.log_problems(5);
    for (kind, process) in [
        (ServerKind::Treehouse, &mut servers.treehouse.process),
        (ServerKind::Dovecot, &mut servers.dovecot.process),
    ] {
        let exit = process
            .stop(STOP_TIMEOUT)
            .map_or_else(|| "did not exit".to_owned(), |s| s.to_string());
        round.exits.push((kind, exit));
    }
    Ok(round)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_cover_sizes_and_connections_then_imap() {
        let names: Vec<String> = workloads(&[1, 32]).iter().map(Workload::name).collect();
        assert_eq!(
            names,
            [
                "lmtp 4KiB x1",
                "lmtp 4KiB x32",
                "lmtp 64KiB x1",
                "lmtp 64KiB x32",
                "imap x1",
                "imap x32"
            ]
        );
    }

    #[test]
    fn servers_alternate_which_goes_first() {
        assert_eq!(server_order(1)[0], ServerKind::Treehouse);
        assert_eq!(server_order(2)[0], ServerKind::Dovecot);
        assert_eq!(server_order(3)[0], ServerKind::Treehouse);
    }

    #[test]
    fn missing_packages_are_named_and_installed_with_sudo_unless_root() {
        let missing = missing_packages(|p| p.starts_with("/usr/bin") || p.ends_with("imap"));
        assert_eq!(
            missing,
            ["dovecot-core", "dovecot-lmtpd", "fonts-dejavu-core"]
        );
        assert!(missing_packages(|_| true).is_empty());
        assert_eq!(
            install_command(0, &["fio"]).join(" "),
            "apt-get install -y -q --no-install-recommends fio"
        );
        assert_eq!(
            install_command(1000, &["fio"]).join(" "),
            "sudo -n --preserve-env=DEBIAN_FRONTEND apt-get install -y -q --no-install-recommends fio"
        );
    }

    #[test]
    fn df_available_is_read_from_the_last_line() {
        let text = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                    /dev/vda         263174212  50331648  46137344      53% /\n";
        assert_eq!(parse_df_available_kib(text), Some(46_137_344));
        assert_eq!(parse_df_available_kib(""), None);
    }

    fn plan() -> ComparePlan {
        ComparePlan {
            dir: std::env::temp_dir(),
            rounds: 3,
            seconds: 10,
            warmup_seconds: 2,
            fio_seconds: 10,
            connection_counts: vec![1, 32],
            treehouse_binary: PathBuf::from("treehouse"),
            segment_size_bytes: 256 << 20,
            install: false,
        }
    }

    #[test]
    fn plans_out_of_bounds_are_refused() {
        assert!(plan().validate().is_ok());
        for broken in [
            ComparePlan {
                rounds: 0,
                ..plan()
            },
            ComparePlan {
                connection_counts: vec![1, 0],
                ..plan()
            },
            ComparePlan {
                segment_size_bytes: (64 << 20) + 1,
                ..plan()
            },
            ComparePlan {
                dir: PathBuf::from("/nonexistent/folder"),
                ..plan()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }

    #[test]
    fn disk_bound_grows_with_seconds() {
        let short = plan().disk_bytes_needed();
        let long = ComparePlan {
            seconds: 20,
            ..plan()
        }
        .disk_bytes_needed();
        assert!(long > short);
        assert!(short > 2 * u64::from(SHARDS) * (256 << 20));
    }
}
