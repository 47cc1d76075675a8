//! `treehouse-tune`: load generator and benchmarks for treehouse.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use treehouse_tune::compare;
use treehouse_tune::load::imap::ImapPlan;
use treehouse_tune::load::{self, LoadPlan, Pick, PlanError, Protocol};

/// The load generator shares the machine with the server it measures: mimalloc keeps
/// its many small allocations per command cheaper than glibc's malloc across 32 threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// treehouse tuning: load generator and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "treehouse-tune", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send messages over SMTP or LMTP (durable deliveries/s, MiB/s, latency), or run an
    /// IMAP command mix checked against a model of each mailbox (ops/s, latency, mismatches).
    Load(LoadArgs),
    /// Run treehouse and a private Dovecot side by side on one disk: LMTP deliveries and
    /// the IMAP mix against both, alternating, for several rounds, with fio on the same
    /// disk; writes a Markdown report and PNG charts.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProtocolArg {
    Smtp,
    Lmtp,
    Imap,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PickArg {
    RoundRobin,
    Random,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("recipient_source").required(true).multiple(false)
    .args(["recipients_file", "recipient", "accounts_pattern"])))]
struct LoadArgs {
    /// Protocol spoken to the target.
    #[arg(value_enum)]
    protocol: ProtocolArg,
    /// Server address, HOST:PORT.
    #[arg(long)]
    target: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Messages in total across all connections.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Size of each message in bytes (headers included).
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// File of recipient addresses, one a line.
    #[arg(long)]
    recipients_file: Option<PathBuf>,
    /// A recipient address (repeat for more).
    #[arg(long)]
    recipient: Vec<String>,
    /// Recipient address pattern; `{}` becomes 1..=--accounts.
    #[arg(long, requires = "accounts")]
    accounts_pattern: Option<String>,
    /// Number of addresses made from --accounts-pattern.
    #[arg(long, requires = "accounts_pattern")]
    accounts: Option<usize>,
    /// Recipients per message.
    #[arg(long, default_value_t = 1)]
    rcpts_per_message: usize,
    /// How each message's recipients are drawn from the list.
    #[arg(long, value_enum, default_value = "round-robin")]
    pick: PickArg,
    /// Stop starting messages after this many seconds.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// Envelope and header sender.
    #[arg(long, default_value = "load@treehouse-tune.invalid")]
    from: String,
    /// Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.
    #[arg(long)]
    pipeline: bool,
    /// Reconnects allowed per connection after connection errors.
    #[arg(long, default_value_t = 10)]
    reconnects: u32,
    /// Seconds to wait for a connect, a read or a write.
    #[arg(long, default_value_t = 30)]
    io_timeout: u64,
    /// Also print the result as one JSON line.
    #[arg(long)]
    json: bool,
    /// IMAP: the password of every account.
    #[arg(long, default_value = "x")]
    password: String,
    /// IMAP: messages each connection appends to its fresh mailbox before the mix.
    #[arg(long, default_value_t = 20)]
    seed_messages: usize,
    /// IMAP: mix commands in total across all connections.
    #[arg(long, default_value_t = 100_000_000)]
    ops: u64,
}

impl LoadArgs {
    fn plan(&self) -> Result<LoadPlan, PlanError> {
        let recipients = match (&self.recipients_file, &self.accounts_pattern, self.accounts) {
            (Some(path), _, _) => load::recipients_from_file(path)?,
            (None, Some(pattern), Some(accounts)) => {
                load::recipients_from_pattern(pattern, accounts)?
            }
            _ => self.recipient.clone(),
        };
        let protocol = match self.protocol {
            ProtocolArg::Smtp => Protocol::Smtp,
            ProtocolArg::Lmtp | ProtocolArg::Imap => Protocol::Lmtp,
        };
        let mut plan = LoadPlan::new(protocol, &self.target, recipients);
        plan.connections = self.connections;
        plan.messages = self.messages;
        plan.message_size_bytes = self.size;
        plan.rcpts_per_message = self.rcpts_per_message;
        plan.pick = match self.pick {
            PickArg::RoundRobin => Pick::RoundRobin,
            PickArg::Random => Pick::Random,
        };
        plan.from = self.from.clone();
        plan.pipeline = self.pipeline;
        plan.duration_limit = Duration::from_secs(self.seconds);
        plan.reconnects_max = self.reconnects;
        plan.io_timeout = Duration::from_secs(self.io_timeout);
        Ok(plan)
    }

    fn imap_plan(&self) -> Result<ImapPlan, PlanError> {
        let mut plan = ImapPlan::new(&self.target, self.plan()?.recipients, &self.password);
        plan.connections = self.connections;
        plan.seed_messages = self.seed_messages;
        plan.message_size_bytes = self.size;
        plan.ops_max = self.ops;
        plan.duration_limit = Duration::from_secs(self.seconds);
        plan.reconnects_max = self.reconnects;
        plan.io_timeout = Duration::from_secs(self.io_timeout);
        Ok(plan)
    }
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Folder on the disk to measure; the servers' stores and fio's files go in a
    /// temporary folder under it [default: the system temporary folder].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Rounds; each starts both servers on fresh stores.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measured seconds of each workload on each server.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds of the same workload before each measured pass.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Seconds of each fio job (run before and after the rounds).
    #[arg(long, default_value_t = 10)]
    fio_seconds: u64,
    /// Connection counts of every workload, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    connections: Vec<usize>,
    /// The treehouse binary [default: `treehouse` beside this program].
    #[arg(long)]
    treehouse: Option<PathBuf>,
    /// treehouse's store.segment_size_bytes, in MiB.
    #[arg(long, default_value_t = 256)]
    segment_mib: u64,
    /// Write the Markdown report to this file [default: standard output].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Folder for the PNG charts.
    #[arg(long, default_value = "docs/bench")]
    charts_dir: PathBuf,
    /// Fail instead of installing missing Debian packages (dovecot-imapd, dovecot-lmtpd,
    /// fio, fonts-dejavu-core) with apt-get.
    #[arg(long)]
    no_install: bool,
}

impl CompareArgs {
    fn plan(&self) -> Result<compare::ComparePlan, String> {
        let treehouse_binary = match &self.treehouse {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|e| format!("cannot locate this program: {e}"))?
                .with_file_name("treehouse"),
        };
        Ok(compare::ComparePlan {
            dir: self.dir.clone().unwrap_or_else(std::env::temp_dir),
            rounds: self.rounds,
            seconds: self.seconds,
            warmup_seconds: self.warmup_seconds,
            fio_seconds: self.fio_seconds,
            connection_counts: self.connections.clone(),
            treehouse_binary,
            segment_size_bytes: self.segment_mib.saturating_mul(1 << 20),
            install: !self.no_install,
        })
    }
}

/// The command line as typed, quoting arguments that need it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| {
            let a = if i == 0 {
                "treehouse-tune".to_owned()
            } else {
                a
            };
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c)) {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a
            }
        })
        .collect();
    args.join(" ")
}

/// Runs a comparison and writes its report and charts; 1 when the comparison is not valid.
fn compare_main(args: &CompareArgs) -> Result<ExitCode, String> {
    let plan = args.plan()?;
    let mut progress = |line: &str| eprintln!("treehouse-tune compare: {line}");
    let outcome = compare::run(&plan, &mut progress).map_err(|e| e.to_string())?;
    let summaries = compare::report::summarize(&outcome);
    std::fs::create_dir_all(&args.charts_dir)
        .map_err(|e| format!("creating {}: {e}", args.charts_dir.display()))?;
    let report_dir = match &args.report {
        Some(path) => path.parent().map(Path::to_owned).unwrap_or_default(),
        None => PathBuf::new(),
    };
    let font = Path::new(compare::FONT_PATH);
    let mut charts = Vec::new();
    for (title, file, draw) in [
        (
            "Throughput against connections",
            compare::charts::THROUGHPUT_FILE,
            compare::charts::throughput as fn(&Path, &Path, &[_]) -> Result<(), String>,
        ),
        (
            "Latency distribution",
            compare::charts::LATENCY_FILE,
            compare::charts::latency,
        ),
    ] {
        let path = args.charts_dir.join(file);
        match draw(&path, font, &summaries) {
            Ok(()) => charts.push((title.to_owned(), relative_link(&report_dir, &path))),
            Err(e) => eprintln!("treehouse-tune compare: chart {}: {e}", path.display()),
        }
    }
    let markdown = compare::report::markdown(&outcome, &summaries, &command_line(), &charts);
    match &args.report {
        Some(path) => std::fs::write(path, &markdown)
            .map_err(|e| format!("writing {}: {e}", path.display()))?,
        None => print!("{markdown}"),
    }
    Ok(if compare::report::is_valid(&outcome, &summaries) {
        ExitCode::SUCCESS
    } else {
        eprintln!("treehouse-tune compare: not a valid comparison (failures or abandoned rounds)");
        ExitCode::from(1)
    })
}

/// `to` as a link relative to folder `from` (both taken from the working folder).
fn relative_link(from: &Path, to: &Path) -> String {
    let absolute = |p: &Path| {
        let p = if p.is_absolute() {
            p.to_owned()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        p.components().fold(PathBuf::new(), |mut acc, c| {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    acc.pop();
                }
                other => acc.push(other),
            }
            acc
        })
    };
    let (from, to) = (absolute(from), absolute(to));
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut link = PathBuf::new();
    for _ in common..from.len() {
        link.push("..");
    }
    for part in &to_parts[common..] {
        link.push(part);
    }
    link.to_string_lossy().into_owned()
}

/// Prints a report (and its JSON line when asked), or the error; the exit code says which.
fn finish<R: std::fmt::Display>(
    report: Result<R, String>,
    json: Option<fn(&R) -> String>,
    command: &str,
) -> ExitCode {
    match report {
        Ok(report) => {
            println!("{report}");
            if let Some(to_json) = json {
                println!("{}", to_json(&report));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("treehouse-tune {command}: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) if matches!(args.protocol, ProtocolArg::Imap) => {
            let report = args
                .imap_plan()
                .map_err(|e| e.to_string())
                .and_then(|plan| load::imap::run(&plan));
            let json = args
                .json
                .then_some(load::imap::ImapReport::to_json as fn(&_) -> String);
            finish(report, json, "load imap")
        }
        Command::Compare(args) => match compare_main(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("treehouse-tune compare: {e}");
                ExitCode::from(2)
            }
        },
        Command::Load(args) => {
            let report = args
                .plan()
                .and_then(|plan| load::run(&plan))
                .map_err(|e| e.to_string());
            let json = args
                .json
                .then_some(load::report::LoadReport::to_json as fn(&_) -> String);
            finish(report, json, "load")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_args(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let argv = ["treehouse-tune", "load", "lmtp", "--target", "127.0.0.1:24"];
        let cli = Cli::try_parse_from(argv.iter().chain(args))?;
        match cli.command {
            Command::Load(load) => Ok(load),
            Command::Compare(_) => panic!("parsed a load command line as compare"),
        }
    }

    #[test]
    fn accounts_pattern_expands_to_numbered_recipients() {
        let args = load_args(&["--accounts-pattern", "u{}@x.test", "--accounts", "3"]);
        let plan = args.expect("parses").plan().expect("valid");
        assert_eq!(plan.recipients, ["u1@x.test", "u2@x.test", "u3@x.test"]);
        assert_eq!(plan.protocol, Protocol::Lmtp);
    }

    #[test]
    fn imap_load_takes_accounts_password_and_seed() {
        let argv = [
            "treehouse-tune",
            "load",
            "imap",
            "--target",
            "127.0.0.1:143",
            "--accounts-pattern",
            "u{}@x.test",
            "--accounts",
            "2",
            "--password",
            "pw",
            "--seed-messages",
            "5",
            "--connections",
            "3",
        ];
        let Command::Load(args) = Cli::try_parse_from(argv).expect("parses").command else {
            panic!("not a load command");
        };
        let plan = args.imap_plan().expect("valid");
        assert_eq!(plan.accounts, ["u1@x.test", "u2@x.test"]);
        assert_eq!(plan.password, "pw");
        assert_eq!((plan.seed_messages, plan.connections), (5, 3));
    }

    #[test]
    fn compare_defaults_and_connection_lists_parse() {
        let cli = Cli::try_parse_from(["treehouse-tune", "compare", "--connections", "1,8,32"])
            .expect("parses");
        let Command::Compare(args) = cli.command else {
            panic!("not compare");
        };
        let plan = args.plan().expect("plan");
        assert_eq!(plan.connection_counts, [1, 8, 32]);
        assert_eq!((plan.rounds, plan.seconds, plan.warmup_seconds), (3, 10, 2));
        assert_eq!(plan.segment_size_bytes, 256 << 20);
        assert!(plan.install);
        assert_eq!(args.charts_dir, Path::new("docs/bench"));
        assert!(plan.treehouse_binary.ends_with("treehouse"));
    }

    #[test]
    fn chart_links_are_relative_to_the_report() {
        assert_eq!(
            relative_link(Path::new("/repo"), Path::new("/repo/docs/bench/a.png")),
            "docs/bench/a.png"
        );
        assert_eq!(
            relative_link(
                Path::new("/repo/reports"),
                Path::new("/repo/docs/bench/a.png")
            ),
            "../docs/bench/a.png"
        );
        assert_eq!(
            relative_link(Path::new("/repo/./x/.."), Path::new("/repo/a.png")),
            "a.png"
        );
    }

    #[test]
    fn exactly_one_recipient_source_is_required() {
        assert!(load_args(&[]).is_err());
        assert!(
            load_args(&[
                "--recipient",
                "a@x",
                "--accounts-pattern",
                "{}",
                "--accounts",
                "1"
            ])
            .is_err()
        );
        let args = load_args(&["--recipient", "a@x", "--recipient", "b@x"]).expect("parses");
        assert_eq!(args.plan().expect("valid").recipients, ["a@x", "b@x"]);
    }
}
