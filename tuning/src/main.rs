//! `treehouse-tune`: load generator and benchmarks for treehouse.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use treehouse_tune::load::imap::ImapPlan;
use treehouse_tune::load::{self, LoadPlan, Pick, PlanError, Protocol};

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
        let Command::Load(load) = cli.command;
        Ok(load)
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
        let Command::Load(args) = Cli::try_parse_from(argv).expect("parses").command;
        let plan = args.imap_plan().expect("valid");
        assert_eq!(plan.accounts, ["u1@x.test", "u2@x.test"]);
        assert_eq!(plan.password, "pw");
        assert_eq!((plan.seed_messages, plan.connections), (5, 3));
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
