//! Process and machine figures read from `/proc` and `/sys`: CPU ticks and resident memory
//! of a server's process tree, and what machine and disk a run was made on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Most processes a process tree is followed to; far above what either server forks.
pub const TREE_PROCESSES_MAX: usize = 4096;

/// The CPU counters and parent of one process, from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// User-mode CPU time, in clock ticks.
    pub utime_ticks: u64,
    /// Kernel-mode CPU time, in clock ticks.
    pub stime_ticks: u64,
    /// User-mode CPU time of waited-for children, in clock ticks.
    pub cutime_ticks: u64,
    /// Kernel-mode CPU time of waited-for children, in clock ticks.
    pub cstime_ticks: u64,
}

impl ProcStat {
    /// CPU ticks of the process and of the children it has reaped.
    pub fn ticks_with_reaped(&self) -> u64 {
        self.utime_ticks + self.stime_ticks + self.cutime_ticks + self.cstime_ticks
    }
}

/// Parses the text of `/proc/PID/stat`; the command name may hold spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime stime cutime cstime ...
    let number = |i: usize| -> Option<u64> { fields.get(i)?.parse().ok() };
    Some(ProcStat {
        pid,
        ppid: u32::try_from(number(1)?).ok()?,
        utime_ticks: number(11)?,
        stime_ticks: number(12)?,
        cutime_ticks: number(13)?,
        cstime_ticks: number(14)?,
    })
}

/// The value in KiB of a `Key:   123 kB` line of `/proc/PID/status` or `smaps_rollup`.
pub fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Every process's stat that could be read now (processes come and go while reading).
pub fn all_stats() -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(is_pid))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

/// `root` and every process descending from it among `stats` (at most
/// [`TREE_PROCESSES_MAX`]), root first.
pub fn tree(stats: &[ProcStat], root: u32) -> Vec<ProcStat> {
    let mut children: BTreeMap<u32, Vec<&ProcStat>> = BTreeMap::new();
    let mut found = None;
    for stat in stats {
        if stat.pid == root {
            found = Some(*stat);
        } else {
            children.entry(stat.ppid).or_default().push(stat);
        }
    }
    let Some(root_stat) = found else {
        return Vec::new();
    };
    let mut out = vec![root_stat];
    let mut seen = BTreeSet::from([root]);
    let mut next = 0;
    while next < out.len() && out.len() < TREE_PROCESSES_MAX {
        let parent = out[next].pid;
        next += 1;
        for child in children.get(&parent).into_iter().flatten() {
            if out.len() < TREE_PROCESSES_MAX && seen.insert(child.pid) {
                out.push(**child);
            }
        }
    }
    out
}

/// CPU ticks used so far by the tree: every live process's own time plus what each has
/// reaped, so a child that exits moves its time into its parent's and none is lost.
pub fn tree_cpu_ticks(tree: &[ProcStat]) -> u64 {
    tree.iter().map(ProcStat::ticks_with_reaped).sum()
}

/// Machine-wide CPU time from the first line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Busy: user, nice, system, irq, softirq (and steal, time the machine wanted).
    pub busy: u64,
    /// Everything, idle and iowait included.
    pub total: u64,
}

/// Parses the `cpu` line of a `/proc/stat` text.
pub fn parse_machine_ticks(text: &str) -> Option<MachineTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    let total = busy + get(3) + get(4) + get(7);
    Some(MachineTicks { busy, total })
}

/// The machine's CPU time so far.
pub fn machine_ticks() -> MachineTicks {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_machine_ticks(&t))
        .unwrap_or_default()
}

/// Resident memory of a set of processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemorySample {
    /// Sum of `VmRSS` (pages shared between the processes count once per process).
    pub rss_kib: u64,
    /// Sum of `Pss` from `smaps_rollup` (shared pages divided among their users).
    pub pss_kib: u64,
}

/// Sums the resident memory of `pids`; processes that vanished count zero.
pub fn memory_of(pids: impl IntoIterator<Item = u32>) -> MemorySample {
    let mut sample = MemorySample::default();
    for pid in pids {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        if let Ok(status) = std::fs::read_to_string(dir.join("status")) {
            sample.rss_kib += kib_field(&status, "VmRSS").unwrap_or(0);
        }
        if let Ok(rollup) = std::fs::read_to_string(dir.join("smaps_rollup")) {
            sample.pss_kib += kib_field(&rollup, "Pss").unwrap_or(0);
        }
    }
    sample
}

/// `VmHWM` (peak resident memory) of `pid` in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmHWM")
}

/// Resets `VmHWM` of `pid` to its current RSS; false where the kernel refuses.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The effective user id of a `/proc/PID/status` text.
pub fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The effective user id of this process.
pub fn own_effective_uid() -> Option<u32> {
    effective_uid(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// Clock ticks per second for the tick counts of `/proc/PID/stat` (`getconf CLK_TCK`).
pub fn clock_ticks_per_s() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// What a run was made on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs.
    pub cpus: usize,
    /// The CPU model name.
    pub cpu_model: String,
    /// Total memory in KiB.
    pub memory_kib: u64,
    /// Kernel release.
    pub kernel: String,
    /// The filesystem and device holding the measured folder.
    pub disk: String,
}

/// (logical CPUs, model name) of a `/proc/cpuinfo` text.
pub fn parse_cpuinfo(text: &str) -> (usize, String) {
    let cpus = text
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count();
    let model = text
        .lines()
        .find(|l| {
            l.split(':')
                .next()
                .is_some_and(|k| k.trim() == "model name")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    (cpus, model)
}

/// One line of `/proc/self/mountinfo`: where, what filesystem, from which device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount point.
    pub point: String,
    /// Filesystem type.
    pub fstype: String,
    /// The mounted device or source.
    pub source: String,
    /// Per-mount options.
    pub options: String,
}

/// The mount of `mountinfo` whose mount point is the longest prefix of `path` (absolute).
pub fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(point), Some(options), Some(fstype), Some(source)) =
            (left.get(4), left.get(5), right.first(), right.get(1))
        else {
            continue;
        };
        let point = point.replace("\\040", " ");
        if !path.starts_with(&point) {
            continue;
        }
        if best.as_ref().is_none_or(|b| point.len() >= b.point.len()) {
            best = Some(Mount {
                point,
                fstype: (*fstype).to_owned(),
                source: (*source).to_owned(),
                options: (*options).to_owned(),
            });
        }
    }
    best
}

/// Reads the machine's CPUs, memory, kernel and the disk under `dir`.
pub fn machine(dir: &Path) -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let (cpus, cpu_model) = parse_cpuinfo(&read("/proc/cpuinfo"));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let disk = match mount_of(&read("/proc/self/mountinfo"), &dir) {
        Some(m) => {
            let device = m.source.rsplit('/').next().unwrap_or("").to_owned();
            let model = read(&format!("/sys/block/{device}/device/model"));
            let rotational = read(&format!("/sys/block/{device}/queue/rotational"));
            let kind = match rotational.trim() {
                "" => String::new(),
                r => format!(", queue/rotational={r}"),
            };
            let model = match model.trim() {
                "" => String::new(),
                m => format!(", model {m}"),
            };
            format!(
                "{} on {} (mounted at {}, {}{kind}{model})",
                m.fstype, m.source, m.point, m.options
            )
        }
        None => "unknown".to_owned(),
    };
    Machine {
        cpus,
        cpu_model,
        memory_kib: kib_field(&read("/proc/meminfo"), "MemTotal").unwrap_or(0),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        disk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, ppid: u32, ticks: u64) -> ProcStat {
        ProcStat {
            pid,
            ppid,
            utime_ticks: ticks,
            stime_ticks: 1,
            cutime_ticks: 0,
            cstime_ticks: 0,
        }
    }

    #[test]
    fn stat_with_odd_command_name_parses() {
        let text = "4242 (dovecot-x) (imap) S 4200 4200 4200 0 -1 4194560 120 0 0 0 \
                    17 5 3 2 20 0 1 0 100 1000 200 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                pid: 4242,
                ppid: 4200,
                utime_ticks: 17,
                stime_ticks: 5,
                cutime_ticks: 3,
                cstime_ticks: 2,
            })
        );
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn kib_fields_of_status_and_rollup_parse() {
        let status = "Name:\tdovecot\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(kib_field(status, "VmRSS"), Some(8192));
        assert_eq!(kib_field(status, "VmHWM"), Some(10240));
        assert_eq!(kib_field(status, "VmSwap"), None);
        let rollup = "00400000-7ffe [rollup]\nRss:  900 kB\nPss:  512 kB\nPss_Anon: 100 kB\n";
        assert_eq!(kib_field(rollup, "Pss"), Some(512));
        let uid = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n";
        assert_eq!(effective_uid(uid), Some(0));
    }

    #[test]
    fn tree_follows_descendants_only_and_sums_reaped_time() {
        let stats = [
            stat(1, 0, 1000),
            stat(10, 1, 5),
            stat(11, 10, 7),
            stat(12, 10, 9),
            stat(13, 12, 11),
            stat(20, 1, 500),
        ];
        let t = tree(&stats, 10);
        let pids: Vec<u32> = t.iter().map(|s| s.pid).collect();
        assert_eq!(pids, [10, 11, 12, 13]);
        assert_eq!(tree_cpu_ticks(&t), 5 + 7 + 9 + 11 + 4);
        let mut reaped = stats;
        reaped[1].cutime_ticks = 30;
        reaped[1].cstime_ticks = 2;
        assert_eq!(tree_cpu_ticks(&tree(&reaped, 10)), 5 + 7 + 9 + 11 + 4 + 32);
        assert!(tree(&stats, 99).is_empty());
    }

    #[test]
    fn machine_ticks_add_busy_and_idle() {
        let text = "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\n";
        assert_eq!(
            parse_machine_ticks(text),
            Some(MachineTicks {
                busy: 100 + 5 + 50 + 3 + 2,
                total: 160 + 1000 + 20 + 7,
            })
        );
        assert_eq!(parse_machine_ticks("intr 1 2 3\n"), None);
    }

    #[test]
    fn cpuinfo_counts_processors() {
        let text = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n\n\
                    processor\t: 1\nmodel name\t: Example CPU @ 2.0GHz\n";
        assert_eq!(parse_cpuinfo(text), (2, "Example CPU @ 2.0GHz".to_owned()));
    }

    #[test]
    fn mount_is_the_longest_prefix() {
        let info = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
                    23 22 0:21 / /proc rw,nosuid - proc proc rw\n\
                    30 22 0:30 / /work/scratch rw - tmpfs tmpfs rw,size=10g\n";
        let m = mount_of(info, Path::new("/work/main/x")).expect("root mount");
        assert_eq!(
            (m.point.as_str(), m.fstype.as_str(), m.source.as_str()),
            ("/", "ext4", "/dev/vda")
        );
        let m = mount_of(info, Path::new("/work/scratch/y")).expect("tmpfs");
        assert_eq!(m.fstype, "tmpfs");
        assert_eq!(mount_of("garbage\n", Path::new("/")), None);
    }
}
