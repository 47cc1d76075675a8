//! `treehouse`: the mail appliance binary — server, admin commands and offline tools.

mod auth;
mod body_cache;
mod cli;
mod clock;
mod config;
mod delivery;
mod directory;
mod imap;
mod limits;
mod mesh;
mod offline;
mod placement;
mod pop3;
mod runtime;
mod segments;
mod shard;
mod tls;

use clap::Parser;
use cli::{AliasCommand, Cli, Command, ConfigCommand, DomainCommand, ListenOverride, UserCommand};
use config::Config;
use directory::Directory;
use std::io::Write;
use std::path::Path;

/// Each executor thread allocates and frees a great many small buffers per message;
/// mimalloc's per-thread heaps serve them without the locking and consolidation that
/// glibc's malloc spent about a fifth of the server's CPU on under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Usage errors exit with 2 (clap's convention), `--help` and `--version` with 0.
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(message) => {
            for line in message.lines() {
                eprintln!("treehouse: {line}");
            }
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<(), String> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(data_dir) = cli.data_dir {
        config.server.data_dir = data_dir;
    }
    match cli.command {
        Command::Serve { listen } => serve(config, &listen),
        Command::User(command) => user(&config, command),
        Command::Alias(command) => alias(&config, command),
        Command::Domain(command) => domain(&config, command),
        Command::Export { account, target } => {
            config.validate()?;
            let account = qualify(&config, &account);
            let (target, path) = match (target.maildir, target.mbox) {
                (Some(dir), _) => (offline::ExportTarget::Maildir(dir.clone()), dir),
                (None, Some(file)) => (offline::ExportTarget::Mbox(file.clone()), file),
                (None, None) => return Err("give --maildir DIR or --mbox FILE".to_string()),
            };
            let count = offline::export(&config, &account, target)?;
            println!(
                "exported {count} messages of {account} to {}",
                path.display()
            );
            Ok(())
        }
        Command::Fsck => {
            config.validate()?;
            match offline::fsck(&config) {
                Ok(summary) => {
                    println!("{summary}");
                    Ok(())
                }
                Err(problems) => {
                    eprintln!("{problems}");
                    Err("fsck found the problems above; keep the server stopped and keep a copy of the data dir before repairing".to_string())
                }
            }
        }
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::DEFAULT_TOML);
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            config.validate()?;
            print!("{}", config.to_toml());
            Ok(())
        }
    }
}

fn serve(mut config: Config, listen: &[ListenOverride]) -> Result<(), String> {
    apply_listen_overrides(&mut config, listen)?;
    config.validate()?;
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        format!(
            "cannot create data dir {}: {e}; check server.data_dir (or --data-dir) and its permissions",
            data_dir.display()
        )
    })?;
    if config.server.demo_account
        && let Some(password) = Directory::ensure_demo(&data_dir)?
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "demo account: {} password: {password}",
            directory::DEMO_ACCOUNT
        );
        let _ = out.flush();
    }
    let directory = Directory::load(&data_dir)?.with_default_domain(&config.server.default_domain);
    runtime::serve(config, directory)
}

/// Replaces the address list of every protocol named on the command line.
fn apply_listen_overrides(config: &mut Config, listen: &[ListenOverride]) -> Result<(), String> {
    let mut replaced: Vec<&str> = Vec::new();
    for item in listen {
        let addresses = config.listen.addresses_mut(&item.protocol).ok_or_else(|| {
            format!(
                "unknown protocol {} in --listen; use one of {}",
                item.protocol,
                config::LISTEN_PROTOCOLS.join(", ")
            )
        })?;
        if !replaced.contains(&item.protocol.as_str()) {
            addresses.clear();
            replaced.push(&item.protocol);
        }
        if let Some(address) = item.address
            && !addresses.contains(&address)
        {
            addresses.push(address);
        }
    }
    Ok(())
}

/// A bare local part names an address in `server.default_domain`.
fn qualify(config: &Config, name: &str) -> String {
    let name = name.trim();
    if name.contains('@') {
        name.to_string()
    } else {
        format!("{name}@{}", config.server.default_domain)
    }
}

/// The password from `--password`, or one line read from standard input.
fn password_argument(given: Option<String>) -> Result<String, String> {
    if let Some(password) = given {
        return Ok(password);
    }
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!("password: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| {
        format!("cannot read the password from standard input: {e}; give --password PW")
    })?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(
            "no password given; give --password PW or type one line on standard input".to_string(),
        );
    }
    Ok(password)
}

fn data_dir(config: &Config) -> &Path {
    &config.server.data_dir
}

fn user(config: &Config, command: UserCommand) -> Result<(), String> {
    match command {
        UserCommand::Add { address, password } => {
            let account = qualify(config, &address);
            let password = password_argument(password)?;
            Directory::add_user(data_dir(config), &account, &password)?;
            println!("added account {}", account.to_ascii_lowercase());
        }
        UserCommand::Del { address } => {
            let account = qualify(config, &address);
            Directory::del_user(data_dir(config), &account)?;
            println!(
                "removed account {}; its stored mail is kept",
                account.to_ascii_lowercase()
            );
        }
        UserCommand::List => {
            for account in Directory::load(data_dir(config))?.accounts() {
                println!("{account}");
            }
        }
        UserCommand::Passwd { address, password } => {
            let account = qualify(config, &address);
            let password = password_argument(password)?;
            Directory::set_password(data_dir(config), &account, &password)?;
            println!("changed the password of {}", account.to_ascii_lowercase());
        }
        UserCommand::Verify { address, password } => {
            let password = password_argument(password)?;
            let directory = Directory::load(data_dir(config))?
                .with_default_domain(&config.server.default_domain);
            match directory.authenticate(&address, &password) {
                Some(account) => println!("password ok for {account}"),
                None => {
                    return Err(format!(
                        "login {address} failed: unknown account or wrong password"
                    ));
                }
            }
        }
    }
    Ok(())
}

fn alias(config: &Config, command: AliasCommand) -> Result<(), String> {
    match command {
        AliasCommand::Add { alias, targets } => {
            let alias = qualify(config, &alias);
            let targets: Vec<String> = targets.iter().map(|t| qualify(config, t)).collect();
            Directory::add_alias(data_dir(config), &alias, &targets)?;
            println!(
                "alias {} delivers to {}",
                alias.to_ascii_lowercase(),
                targets.join(", ").to_ascii_lowercase()
            );
        }
        AliasCommand::Del { alias } => {
            let alias = qualify(config, &alias);
            Directory::del_alias(data_dir(config), &alias)?;
            println!("removed alias {}", alias.to_ascii_lowercase());
        }
        AliasCommand::List => {
            for (alias, targets) in Directory::load(data_dir(config))?.aliases() {
                println!("{alias}: {}", targets.join(", "));
            }
        }
    }
    Ok(())
}

fn domain(config: &Config, command: DomainCommand) -> Result<(), String> {
    match command {
        DomainCommand::Add { domain } => {
            Directory::add_domain(data_dir(config), &domain)?;
            println!("added local domain {}", domain.trim().to_ascii_lowercase());
        }
        DomainCommand::List => {
            for domain in Directory::load(data_dir(config))?.domains() {
                println!("{domain}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_overrides_replace_only_named_protocols() {
        let mut config = Config::default();
        let overrides = [
            ListenOverride {
                protocol: "smtp".into(),
                address: Some("0.0.0.0:25".parse().unwrap()),
            },
            ListenOverride {
                protocol: "smtp".into(),
                address: Some("[::]:25".parse().unwrap()),
            },
            ListenOverride {
                protocol: "imap".into(),
                address: None,
            },
        ];
        apply_listen_overrides(&mut config, &overrides).unwrap();
        assert_eq!(
            config.listen.smtp,
            vec!["0.0.0.0:25".parse().unwrap(), "[::]:25".parse().unwrap()]
        );
        assert!(config.listen.imap.is_empty());
        assert_eq!(config.listen.lmtp, config::Listen::default().lmtp);
    }

    #[test]
    fn bare_names_get_the_default_domain() {
        let mut config = Config::default();
        config.server.default_domain = "example.test".into();
        assert_eq!(qualify(&config, "alice"), "alice@example.test");
        assert_eq!(qualify(&config, "bob@other.test"), "bob@other.test");
    }
}
