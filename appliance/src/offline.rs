//! Admin commands that read the store while no server runs: export and fsck.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use treehouse_core::address::{normalize, shard_of};
use treehouse_core::store::{self, Shard};

use crate::config::Config;
use crate::runtime::{Layout, lock_store, prepare_layout, shard_config};
use crate::segments::{self, SegmentFiles, Snapshot};

/// Where `export` writes an account's mail.
pub enum ExportTarget {
    /// A Maildir++ folder: INBOX at the top, other mailboxes as `.Name` subfolders.
    Maildir(PathBuf),
    /// One mboxrd file holding every mailbox's messages.
    Mbox(PathBuf),
}

/// Writes every message of `account` out, byte-identical to what was stored; returns
/// how many messages were written.
pub fn export(config: &Config, account: &str, target: ExportTarget) -> Result<u64, String> {
    // With no server running, export holds the lock; with one, it reads a snapshot of
    // what is durable and leaves every repair to the server.
    let lock = lock_store(config).ok();
    let layout = prepare_layout(config, 1)?;
    let account = normalize(account);
    let shard_id = shard_of(&account, layout.shard_count);
    let (shard, mut disk) = open_shard(config, &layout, shard_id, lock.is_none())?;
    let Some(found) = shard.account(&account) else {
        return Err(format!(
            "no mail is stored for {account}; check the address with `treehouse user list`"
        ));
    };
    let mut sink =
        Sink::create(&target).map_err(|e| format!("cannot create the export target: {e}"))?;
    let mut count = 0;
    for (name, mailbox) in &found.mailboxes {
        for (uid, entry) in &mailbox.messages {
            let body = shard
                .read_body(&mut disk, &account, name, *uid)
                .map_err(|e| format!("{account} {name} UID {uid}: cannot read the message: {e}"))?;
            sink.write(name, *uid, entry.internal_date, &entry.flags, &body)
                .map_err(|e| format!("cannot write {name} UID {uid}: {e}"))?;
            count += 1;
        }
    }
    sink.finish()
        .map_err(|e| format!("cannot finish the export: {e}"))?;
    Ok(count)
}

/// Checks every shard; `Ok` holds a summary, `Err` names every inconsistency found.
pub fn fsck(config: &Config) -> Result<String, String> {
    let _lock = lock_store(config)?;
    let layout = prepare_layout(config, 1)?;
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    for shard in 0..layout.shard_count {
        let dir = &layout.shard_dirs[shard as usize];
        let report = match check_shard(config, dir) {
            Ok(report) => report,
            Err(e) => {
                problems.push(format!("shard {shard} ({}): {e}", dir.display()));
                continue;
            }
        };
        for problem in &report.problems {
            problems.push(format!("shard {shard} ({}): {problem}", dir.display()));
        }
        summary.push(format!(
            "shard {shard}: {} batches, {} records, {} messages verified{}",
            report.batches,
            report.records,
            report.messages,
            report
                .torn_tail_offset
                .map(|o| format!(", torn tail at {o} (discarded at next start)"))
                .unwrap_or_default()
        ));
    }
    if problems.is_empty() {
        Ok(format!(
            "store consistent: {} shards\n{}",
            layout.shard_count,
            summary.join("\n")
        ))
    } else {
        Err(problems.join("\n"))
    }
}

fn check_shard(config: &Config, dir: &Path) -> Result<store::FsckReport, String> {
    if !dir.exists() {
        return Ok(store::FsckReport::default());
    }
    let mut disk = SegmentFiles::open(dir, config.store.segment_size_bytes)
        .map_err(|e| format!("cannot open segments: {e}"))?;
    let checkpoint =
        segments::read_checkpoint(dir).map_err(|e| format!("cannot read checkpoint: {e}"))?;
    Ok(store::fsck(
        &mut disk,
        checkpoint.as_deref(),
        shard_config(config),
    ))
}

fn open_shard(
    config: &Config,
    layout: &Layout,
    shard: u32,
    live: bool,
) -> Result<(Shard, Snapshot), String> {
    let dir = &layout.shard_dirs[shard as usize];
    let files = SegmentFiles::open(dir, config.store.segment_size_bytes)
        .map_err(|e| format!("shard {shard}: {e}"))?;
    let mut disk = Snapshot::new(files, live);
    let checkpoint = segments::read_checkpoint(dir).map_err(|e| format!("shard {shard}: {e}"))?;
    let (shard_state, _) = Shard::open(&mut disk, checkpoint.as_deref(), shard_config(config))
        .map_err(|e| {
            format!(
                "shard {shard} in {}: {e}; run `treehouse fsck`",
                dir.display()
            )
        })?;
    Ok((shard_state, disk))
}

/// An export destination being written.
enum Sink {
    Maildir(PathBuf),
    Mbox(io::BufWriter<File>),
}

impl Sink {
    fn create(target: &ExportTarget) -> io::Result<Sink> {
        match target {
            ExportTarget::Maildir(dir) => {
                std::fs::create_dir_all(dir)?;
                Ok(Sink::Maildir(dir.clone()))
            }
            ExportTarget::Mbox(path) => Ok(Sink::Mbox(io::BufWriter::new(File::create(path)?))),
        }
    }

    fn write(
        &mut self,
        mailbox: &str,
        uid: u32,
        internal_date: i64,
        flags: &[String],
        body: &[u8],
    ) -> io::Result<()> {
        match self {
            Sink::Maildir(root) => {
                let folder = maildir_folder(root, mailbox);
                for sub in ["cur", "new", "tmp"] {
                    std::fs::create_dir_all(folder.join(sub))?;
                }
                let name = format!(
                    "{internal_date}.U{uid}.treehouse:2,{}",
                    maildir_flags(flags)
                );
                std::fs::write(folder.join("cur").join(name), body)
            }
            Sink::Mbox(out) => {
                writeln!(out, "From MAILER-DAEMON {}", asctime(internal_date))?;
                writeln!(out, "X-Treehouse-Mailbox: {mailbox}")?;
                for line in body.split_inclusive(|b| *b == b'\n') {
                    // mboxrd: quote every "From " line that is already quoted zero or more times.
                    let unquoted = line.iter().position(|b| *b != b'>').unwrap_or(line.len());
                    if line[unquoted..].starts_with(b"From ") {
                        out.write_all(b">")?;
                    }
                    out.write_all(line)?;
                }
                if !body.ends_with(b"\n") {
                    out.write_all(b"\n")?;
                }
                out.write_all(b"\n")
            }
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Maildir(_) => Ok(()),
            Sink::Mbox(mut out) => {
                out.flush()?;
                out.get_ref().sync_all()
            }
        }
    }
}

/// INBOX is the Maildir's top level; `A/B` becomes `.A.B` (Maildir++).
fn maildir_folder(root: &Path, mailbox: &str) -> PathBuf {
    if mailbox.eq_ignore_ascii_case("INBOX") {
        root.to_path_buf()
    } else {
        root.join(format!(".{}", mailbox.replace('/', ".")))
    }
}

/// Maildir info flags, in the ASCII order the Maildir spec requires.
fn maildir_flags(flags: &[String]) -> String {
    let mut letters: Vec<char> = flags
        .iter()
        .filter_map(|f| match f.to_ascii_lowercase().as_str() {
            "\\draft" => Some('D'),
            "\\flagged" => Some('F'),
            "\\answered" => Some('R'),
            "\\seen" => Some('S'),
            "\\deleted" => Some('T'),
            _ => None,
        })
        .collect();
    letters.sort_unstable();
    letters.into_iter().collect()
}

/// The `From ` line date of mbox: `Sun Nov 29 03:24:14 2026`.
fn asctime(unix_secs: i64) -> String {
    let date = crate::clock::rfc5322(unix_secs); // "Sun, 29 Nov 2026 03:24:14 +0000"
    let parts: Vec<&str> = date.split_whitespace().collect();
    match parts.as_slice() {
        [day, dd, mon, year, time, _] => {
            format!("{} {mon} {dd} {time} {year}", day.trim_end_matches(','))
        }
        _ => date,
    }
}
