//! A private Dovecot instance for the comparison: its own configuration, sockets, state
//! and log in folders of the run, the same accounts as treehouse in a passwd-file, mail in
//! Maildir on the measured disk, loopback ports only; Dovecot's own defaults otherwise
//! (in particular `mail_fsync = optimized`: every delivered or appended message is fsynced
//! together with its directory before the reply).

use super::CompareError;
use super::process::{ServerProcess, run_bounded, wait_for_greeting};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The Dovecot master binary (in /usr/sbin, which a non-root PATH often lacks).
pub const DOVECOT_BIN: &str = "/usr/sbin/dovecot";

/// How long a fresh instance may take to greet on both ports.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Who Dovecot's processes run as, and who owns the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Users {
    /// `default_internal_user`: auth workers, anvil, stats.
    pub internal: String,
    /// `default_login_user`: the imap-login processes.
    pub login: String,
    /// Owner of the mail folders (passwd-file uid); Dovecot refuses uid 0 for mail.
    pub mail_uid: u32,
    /// Group of the mail folders.
    pub mail_gid: u32,
}

/// (name, uid, gid) of each line of an `/etc/passwd` text.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    passwd.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((name, uid, gid))
    })
}

/// The users for an instance started by effective user `euid`, given `/etc/passwd`:
/// as root, Dovecot's packaged `dovecot`/`dovenull` users and mail owned by `nobody`;
/// otherwise everything as the invoking user.
pub fn users_for(euid: u32, passwd: &str) -> Result<Users, String> {
    let find = |wanted: &str| passwd_entries(passwd).find(|(name, _, _)| *name == wanted);
    if euid != 0 {
        let (name, uid, gid) = passwd_entries(passwd)
            .find(|(_, uid, _)| *uid == euid)
            .ok_or_else(|| format!("uid {euid} has no /etc/passwd entry"))?;
        return Ok(Users {
            internal: name.to_owned(),
            login: name.to_owned(),
            mail_uid: uid,
            mail_gid: gid,
        });
    }
    let (_, nobody_uid, nobody_gid) =
        find("nobody").ok_or("no user nobody in /etc/passwd to own the mail")?;
    let pick = |preferred: &str| {
        find(preferred).map_or_else(|| "nobody".to_owned(), |(n, _, _)| n.to_owned())
    };
    Ok(Users {
        internal: pick("dovecot"),
        login: pick("dovenull"),
        mail_uid: nobody_uid,
        mail_gid: nobody_gid,
    })
}

/// Everything that makes one instance.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Folder on the measured disk holding the configuration, passwd-file, log and mail.
    pub root: PathBuf,
    /// Short folder for sockets and state (UNIX socket paths are limited to 108 bytes).
    pub run_dir: PathBuf,
    /// Distinguishes this instance's process titles.
    pub instance_name: String,
    /// LMTP port on 127.0.0.1.
    pub lmtp_port: u16,
    /// IMAP port on 127.0.0.1.
    pub imap_port: u16,
    /// Process and mail owners.
    pub users: Users,
    /// Login names (full addresses).
    pub accounts: Vec<String>,
    /// The password of every account.
    pub password: String,
}

impl Setup {
    /// The Maildir root: `<root>/mail/<domain>/<local part>`.
    pub fn mail_dir(&self) -> PathBuf {
        self.root.join("mail")
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("dovecot.conf")
    }

    /// The passwd-file of accounts.
    pub fn passwd_path(&self) -> PathBuf {
        self.root.join("passwd")
    }

    /// Dovecot's log.
    pub fn log_path(&self) -> PathBuf {
        self.root.join("dovecot.log")
    }
}

/// The passwd-file: `user:{PLAIN}password:uid:gid::home::` for every account.
pub fn passwd_text(setup: &Setup) -> String {
    let mut text = String::new();
    for account in &setup.accounts {
        let (local, domain) = account.split_once('@').unwrap_or((account, ""));
        let home = setup.mail_dir().join(domain).join(local);
        let _ = writeln!(
            text,
            "{account}:{{PLAIN}}{}:{}:{}::{}::",
            setup.password,
            setup.users.mail_uid,
            setup.users.mail_gid,
            home.display()
        );
    }
    text
}

/// The whole `dovecot.conf` of the instance.
pub fn config_text(setup: &Setup) -> String {
    let run = setup.run_dir.display();
    let passwd = setup.passwd_path();
    let passwd = passwd.display();
    format!(
        "# Private Dovecot instance of `treehouse-tune compare`; defaults otherwise.\n\
         base_dir = {run}/run\n\
         state_dir = {run}/state\n\
         instance_name = {instance}\n\
         protocols = imap lmtp\n\
         listen = 127.0.0.1\n\
         ssl = no\n\
         disable_plaintext_auth = no\n\
         auth_mechanisms = plain login\n\
         log_path = {log}\n\
         default_internal_user = {internal}\n\
         default_login_user = {login}\n\
         first_valid_uid = {uid}\n\
         first_valid_gid = {gid}\n\
         mail_location = maildir:{mail}/%d/%n\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {passwd}\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = username_format=%u {passwd}\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap}\n  }}\n  \
         inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n}}\n",
        instance = setup.instance_name,
        log = setup.log_path().display(),
        internal = setup.users.internal,
        login = setup.users.login,
        uid = setup.users.mail_uid.min(500),
        gid = setup.users.mail_gid.min(1),
        mail = setup.mail_dir().display(),
        imap = setup.imap_port,
        lmtp = setup.lmtp_port,
    )
}

/// `dovecot --version`, e.g. `2.3.19.1 (9b53102964)`.
pub fn version() -> Result<String, CompareError> {
    let out = run_bounded(
        Command::new(DOVECOT_BIN).arg("--version"),
        Duration::from_secs(30),
    )?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// Settings of the running configuration as `doveconf` resolves them (`key = value`).
pub fn resolved_settings(setup: &Setup, keys: &[&str]) -> Result<String, CompareError> {
    let mut command = Command::new("doveconf");
    command.arg("-c").arg(setup.config_path()).args(keys);
    let out = run_bounded(&mut command, Duration::from_secs(30))?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// A running instance.
#[derive(Debug)]
pub struct Dovecot {
    /// The master process (every other Dovecot process descends from it).
    pub process: ServerProcess,
    /// What it was made from.
    pub setup: Setup,
}

impl Dovecot {
    /// Writes the configuration and passwd-file, makes the folders and starts the master in
    /// the foreground; returns once both ports greet.
    pub fn start(setup: Setup) -> Result<Dovecot, CompareError> {
        let io = |what: &str, e| CompareError::io(what, e);
        for dir in [&setup.root, &setup.mail_dir(), &setup.run_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| io(&format!("creating {}", dir.display()), e))?;
        }
        chown(
            &setup.mail_dir(),
            setup.users.mail_uid,
            setup.users.mail_gid,
        )?;
        std::fs::write(setup.passwd_path(), passwd_text(&setup))
            .map_err(|e| io("writing the Dovecot passwd-file", e))?;
        std::fs::write(setup.config_path(), config_text(&setup))
            .map_err(|e| io("writing dovecot.conf", e))?;
        let mut command = Command::new(DOVECOT_BIN);
        command.arg("-F").arg("-c").arg(setup.config_path());
        let mut process = ServerProcess::start("dovecot", &mut command, &setup.root)?;
        for (port, prefix) in [(setup.imap_port, &b"* OK"[..]), (setup.lmtp_port, b"220")] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if let Err(message) = wait_for_greeting(addr, prefix, READY_TIMEOUT) {
                let exited = process.has_exited();
                return Err(CompareError::Server {
                    server: "dovecot",
                    message: format!(
                        "{message}{}; stderr: {}; log: {}",
                        if exited { " (master exited)" } else { "" },
                        process.stderr_tail(),
                        log_tail(&setup.log_path())
                    ),
                });
            }
        }
        Ok(Dovecot { process, setup })
    }

    /// Error, fatal and panic lines of its log so far (at most `max`), and their count.
    pub fn log_problems(&self, max: usize) -> (usize, Vec<String>) {
        let text = std::fs::read_to_string(self.setup.log_path()).unwrap_or_default();
        problem_lines(&text, max)
    }
}

/// Lines of a Dovecot log that report errors, fatal errors or panics: (count, first `max`).
pub fn problem_lines(log: &str, max: usize) -> (usize, Vec<String>) {
    let problems: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(": Error: ") || l.contains(": Fatal: ") || l.contains(": Panic: "))
        .collect();
    let shown = problems.iter().take(max).map(|l| (*l).to_owned()).collect();
    (problems.len(), shown)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join(" | ")
}

/// Gives `path` to `uid:gid` with chown(1), unless it is owned by them already.
fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), CompareError> {
    let mut command = Command::new("chown");
    command.arg(format!("{uid}:{gid}")).arg(path);
    run_bounded(&mut command, Duration::from_secs(30)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                          dovecot:x:102:106:Dovecot:/usr/lib/dovecot:/usr/sbin/nologin\n\
                          dovenull:x:103:107:Dovecot login:/nonexistent:/usr/sbin/nologin\n\
                          alice:x:1000:1000::/home/alice:/bin/sh\n";

    fn setup() -> Setup {
        Setup {
            root: PathBuf::from("/data/cmp/round-1/dovecot"),
            run_dir: PathBuf::from("/tmp/thc-1"),
            instance_name: "thc-1".to_owned(),
            lmtp_port: 40024,
            imap_port: 40143,
            users: users_for(0, PASSWD).expect("root users"),
            accounts: vec![
                "user1@example.test".to_owned(),
                "user2@example.test".to_owned(),
            ],
            password: "x".to_owned(),
        }
    }

    #[test]
    fn root_runs_as_packaged_users_with_mail_owned_by_nobody() {
        assert_eq!(
            users_for(0, PASSWD),
            Ok(Users {
                internal: "dovecot".to_owned(),
                login: "dovenull".to_owned(),
                mail_uid: 65534,
                mail_gid: 65534,
            })
        );
        let alice = users_for(1000, PASSWD).expect("alice");
        assert_eq!((alice.internal.as_str(), alice.mail_uid), ("alice", 1000));
        assert!(users_for(4242, PASSWD).is_err());
        let bare = "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n";
        assert_eq!(users_for(0, bare).expect("bare").internal, "nobody");
    }

    #[test]
    fn passwd_file_lists_every_account_with_home_under_mail() {
        assert_eq!(
            passwd_text(&setup()),
            "user1@example.test:{PLAIN}x:65534:65534::/data/cmp/round-1/dovecot/mail/example.test/user1::\n\
             user2@example.test:{PLAIN}x:65534:65534::/data/cmp/round-1/dovecot/mail/example.test/user2::\n"
        );
    }

    #[test]
    fn config_is_private_loopback_and_keeps_fsync_defaults() {
        let text = config_text(&setup());
        for line in [
            "base_dir = /tmp/thc-1/run",
            "state_dir = /tmp/thc-1/state",
            "instance_name = thc-1",
            "protocols = imap lmtp",
            "listen = 127.0.0.1",
            "ssl = no",
            "log_path = /data/cmp/round-1/dovecot/dovecot.log",
            "default_internal_user = dovecot",
            "default_login_user = dovenull",
            "mail_location = maildir:/data/cmp/round-1/dovecot/mail/%d/%n",
            "  args = scheme=PLAIN username_format=%u /data/cmp/round-1/dovecot/passwd",
            "    address = 127.0.0.1",
            "    port = 40143",
            "    port = 40024",
            "    port = 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("fsync"),
            "fsync settings must stay default:\n{text}"
        );
        assert!(!text.contains("0.0.0.0") && !text.contains('*'));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn log_problems_are_counted_and_sampled() {
        let log = "Nov 29 master: Info: starting\n\
                   Nov 29 auth: Error: passwd-file: bad uid\n\
                   Nov 29 lmtp(1): Fatal: out of memory\n\
                   Nov 29 imap(u): Info: Disconnected\n";
        let (count, shown) = problem_lines(log, 1);
        assert_eq!(count, 2);
        assert_eq!(shown, ["Nov 29 auth: Error: passwd-file: bad uid"]);
    }
}
