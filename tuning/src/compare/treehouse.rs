//! A treehouse server for the comparison: a fresh data folder on the measured disk, the
//! same accounts as Dovecot as passwd lines, LMTP and IMAP on loopback ports of its own,
//! the server's defaults otherwise.

use super::CompareError;
use super::process::{ServerProcess, run_bounded};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a fresh server may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The line `treehouse serve` prints once it accepts connections.
pub const READY_LINE: &str = "treehouse: ready";

/// Everything that makes one server.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The `treehouse` binary.
    pub binary: PathBuf,
    /// Folder on the measured disk for the configuration, standard output and data.
    pub root: PathBuf,
    /// LMTP port on 127.0.0.1.
    pub lmtp_port: u16,
    /// IMAP port on 127.0.0.1.
    pub imap_port: u16,
    /// Virtual shards of the fresh store.
    pub shards: u32,
    /// `store.segment_size_bytes`.
    pub segment_size_bytes: u64,
    /// Login names (full addresses), all in one domain.
    pub accounts: Vec<String>,
    /// The password of every account.
    pub password: String,
}

impl Setup {
    /// `server.data_dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The domain of the first account (every account shares it).
    fn domain(&self) -> &str {
        self.accounts
            .first()
            .and_then(|a| a.split_once('@'))
            .map_or("localhost", |(_, d)| d)
    }
}

/// The passwd lines of the accounts (`address:{PLAIN}password`).
pub fn passwd_text(setup: &Setup) -> String {
    let mut text = String::new();
    for account in &setup.accounts {
        let _ = writeln!(text, "{account}:{{PLAIN}}{}", setup.password);
    }
    text
}

/// The `treehouse.toml` of the server: one executor per core, only LMTP and IMAP on.
pub fn config_text(setup: &Setup) -> String {
    format!(
        "[server]\n\
         data_dir = \"{data}\"\n\
         executors = 0\n\
         demo_account = false\n\
         default_domain = \"{domain}\"\n\
         [listen]\n\
         smtp = []\n\
         imaps = []\npop3 = []\npop3s = []\nsubmission = []\nsubmissions = []\n\
         lmtp = [\"127.0.0.1:{lmtp}\"]\n\
         imap = [\"127.0.0.1:{imap}\"]\n\
         [store]\n\
         shards = {shards}\n\
         segment_size_bytes = {segment}\n",
        data = setup.data_dir().display(),
        domain = setup.domain(),
        lmtp = setup.lmtp_port,
        imap = setup.imap_port,
        shards = setup.shards,
        segment = setup.segment_size_bytes,
    )
}

/// `treehouse --version`.
pub fn version(binary: &std::path::Path) -> Result<String, CompareError> {
    let out = run_bounded(
        Command::new(binary).arg("--version"),
        Duration::from_secs(30),
    )?;
    Ok(String::from_utf8_lossy(&out).trim().to_owned())
}

/// A running server.
#[derive(Debug)]
pub struct Treehouse {
    /// The `treehouse serve` process.
    pub process: ServerProcess,
    /// What it was made from.
    pub setup: Setup,
}

impl Treehouse {
    /// Writes the configuration and accounts and starts `treehouse serve`; returns once it
    /// prints its ready line.
    pub fn start(setup: Setup) -> Result<Treehouse, CompareError> {
        let io = |what: &str, e| CompareError::io(what, e);
        let directory = setup.data_dir().join("directory");
        std::fs::create_dir_all(&directory).map_err(|e| io("creating the data folder", e))?;
        std::fs::write(directory.join("passwd"), passwd_text(&setup))
            .map_err(|e| io("writing the treehouse passwd", e))?;
        std::fs::write(directory.join("domains"), format!("{}\n", setup.domain()))
            .map_err(|e| io("writing the treehouse domains", e))?;
        let config = setup.root.join("treehouse.toml");
        std::fs::write(&config, config_text(&setup))
            .map_err(|e| io("writing treehouse.toml", e))?;
        let mut command = Command::new(&setup.binary);
        command.arg("serve").arg("--config").arg(&config);
        let mut process = ServerProcess::start("treehouse", &mut command, &setup.root)?;
        let stdout = setup.root.join("treehouse.stdout");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&stdout).unwrap_or_default();
            if text.contains(READY_LINE) {
                return Ok(Treehouse { process, setup });
            }
            let message = if process.has_exited() {
                "exited before it was ready"
            } else if Instant::now() >= deadline {
                "not ready in time"
            } else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            return Err(CompareError::Server {
                server: "treehouse",
                message: format!("{message}: {}", process.stderr_tail()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            binary: PathBuf::from("/bin/treehouse"),
            root: PathBuf::from("/data/cmp/round-1/treehouse"),
            lmtp_port: 40024,
            imap_port: 40143,
            shards: 16,
            segment_size_bytes: 256 << 20,
            accounts: vec![
                "user1@example.test".to_owned(),
                "user2@example.test".to_owned(),
            ],
            password: "x".to_owned(),
        }
    }

    #[test]
    fn config_serves_only_lmtp_and_imap_on_loopback() {
        assert_eq!(
            config_text(&setup()),
            "[server]\ndata_dir = \"/data/cmp/round-1/treehouse/data\"\nexecutors = 0\n\
             demo_account = false\ndefault_domain = \"example.test\"\n[listen]\nsmtp = []\n\
             imaps = []\npop3 = []\npop3s = []\nsubmission = []\nsubmissions = []\n\
             lmtp = [\"127.0.0.1:40024\"]\nimap = [\"127.0.0.1:40143\"]\n[store]\nshards = 16\n\
             segment_size_bytes = 268435456\n"
        );
    }

    #[test]
    fn passwd_lines_carry_the_shared_password() {
        assert_eq!(
            passwd_text(&setup()),
            "user1@example.test:{PLAIN}x\nuser2@example.test:{PLAIN}x\n"
        );
    }
}
