//! The `treehouse` command line.

use crate::config::LISTEN_PROTOCOLS;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// treehouse: a mail delivery and access appliance (SMTP, LMTP, IMAP, POP3).
#[derive(Debug, Parser)]
#[command(name = "treehouse", version)]
pub struct Cli {
    /// Configuration file (TOML); without it the built-in defaults apply
    /// (`treehouse config default` prints them).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data folder; overrides server.data_dir.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mail server until stopped.
    Serve {
        /// Listen on ADDR for PROTO (smtp, lmtp, imap, pop3, submission, metrics),
        /// replacing that protocol's addresses from the file; repeat for more
        /// addresses; `PROTO=` turns the protocol off.
        #[arg(long = "listen", value_name = "PROTO=ADDR", value_parser = parse_listen)]
        listen: Vec<ListenOverride>,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage aliases.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Manage local domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Copy every message of one account to a Maildir or an mbox file.
    Export {
        /// Account whose mail is exported.
        #[arg(long, value_name = "ADDRESS")]
        account: String,
        /// Where to write.
        #[command(flatten)]
        target: ExportArgs,
    },
    /// Check the whole store for consistency (the server must be stopped).
    Fsck,
    /// Print or check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `treehouse user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account (and its domain, if new).
    Add {
        /// Address of the account; a bare name is in server.default_domain.
        address: String,
        /// Password; visible to other local users in the process list. Without
        /// it, the password is read as one line from standard input.
        #[arg(long, value_name = "PW")]
        password: Option<String>,
    },
    /// Remove an account (its stored mail is kept).
    Del {
        /// Address of the account.
        address: String,
    },
    /// List accounts.
    List,
    /// Set a new password.
    Passwd {
        /// Address of the account.
        address: String,
        /// New password; without it, read as one line from standard input.
        #[arg(long, value_name = "PW")]
        password: Option<String>,
    },
    /// Check a login and password against the directory (exit 0 when they match).
    Verify {
        /// The login: an address, or a bare name in server.default_domain.
        address: String,
        /// The password to check; without it, read as one line from standard input.
        #[arg(long, value_name = "PW")]
        password: Option<String>,
    },
}

/// `treehouse alias ...`.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS to TARGET accounts (added to any existing targets).
    Add {
        /// The alias address.
        alias: String,
        /// Accounts that receive the alias's mail.
        #[arg(required = true, num_args = 1..)]
        targets: Vec<String>,
    },
    /// Remove an alias.
    Del {
        /// The alias address.
        alias: String,
    },
    /// List aliases and their targets.
    List,
}

/// `treehouse domain ...`.
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Accept mail for DOMAIN.
    Add {
        /// The domain name.
        domain: String,
    },
    /// List local domains.
    List,
}

/// `treehouse config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the default configuration file, every key documented.
    Default,
    /// Validate the configuration and print it as it takes effect.
    Check,
}

/// The export destination: exactly one of `--maildir` and `--mbox`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ExportArgs {
    /// Write a Maildir tree into DIR.
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// Write one mbox file FILE.
    #[arg(long, value_name = "FILE")]
    pub mbox: Option<PathBuf>,
}

/// One `--listen PROTO=ADDR`; no address turns the protocol off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOverride {
    /// One of `LISTEN_PROTOCOLS`.
    pub protocol: String,
    /// The address, or `None` for `PROTO=`.
    pub address: Option<SocketAddr>,
}

fn parse_listen(value: &str) -> Result<ListenOverride, String> {
    let Some((protocol, address)) = value.split_once('=') else {
        return Err("expected PROTO=ADDR, e.g. smtp=0.0.0.0:25".to_string());
    };
    let protocol = protocol.trim().to_ascii_lowercase();
    if !LISTEN_PROTOCOLS.contains(&protocol.as_str()) {
        return Err(format!(
            "unknown protocol {protocol:?}; use one of {}",
            LISTEN_PROTOCOLS.join(", ")
        ));
    }
    let address = address.trim();
    let address =
        if address.is_empty() {
            None
        } else {
            Some(address.parse().map_err(|e| {
                format!("{address:?} is not IP:PORT ({e}); e.g. 0.0.0.0:25 or [::]:25")
            })?)
        };
    Ok(ListenOverride { protocol, address })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn listen_values_parse() {
        assert_eq!(
            parse_listen("SMTP=127.0.0.1:25").unwrap(),
            ListenOverride {
                protocol: "smtp".into(),
                address: Some("127.0.0.1:25".parse().unwrap())
            }
        );
        assert_eq!(parse_listen("pop3=").unwrap().address, None);
        assert!(
            parse_listen("ftp=127.0.0.1:21")
                .unwrap_err()
                .contains("unknown protocol")
        );
        assert!(parse_listen("imap=localhost:143").is_err());
        assert!(parse_listen("imap").is_err());
    }

    #[test]
    fn global_options_follow_subcommands() {
        let cli = Cli::try_parse_from([
            "treehouse",
            "user",
            "add",
            "alice@example.test",
            "--password",
            "pw",
            "--data-dir",
            "/tmp/d",
        ])
        .unwrap();
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/d")));
        assert!(matches!(
            cli.command,
            Command::User(UserCommand::Add { .. })
        ));
        let both = Cli::try_parse_from([
            "treehouse",
            "export",
            "--account",
            "a@b",
            "--maildir",
            "x",
            "--mbox",
            "y",
        ]);
        assert!(both.is_err());
        let neither = Cli::try_parse_from(["treehouse", "export", "--account", "a@b"]);
        assert!(neither.is_err());
    }
}
