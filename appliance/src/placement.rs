//! Where the executors run: one per CPU, spread over the machine's topology, and only on
//! the CPUs this process may use.
//!
//! `taskset`, systemd's `CPUAffinity=`/`AllowedCPUs=` and container CPU sets (for
//! example `docker run --cpuset-cpus`) all narrow the process's affinity mask. glommio
//! picks CPUs from the machine's topology alone, so without this an executor could be
//! pinned outside that mask: escaping `taskset`, or, inside a cgroup CPU set, failing to
//! start at all.

use glommio::{CpuSet, PoolPlacement};
use std::collections::BTreeSet;

/// The executor placement for `executors` executors: each pinned to its own allowed CPU,
/// spread over packages and cores, when there are enough allowed CPUs; unpinned
/// otherwise (more executors than CPUs, or a topology that cannot be read).
pub fn placement(executors: usize) -> PoolPlacement {
    let Ok(online) = CpuSet::online() else {
        return PoolPlacement::Unbound(executors);
    };
    let usable = match allowed_cpus() {
        Some(allowed) => online.filter(|location| allowed.contains(&location.cpu)),
        None => online,
    };
    if executors <= usable.len() {
        PoolPlacement::MaxSpread(executors, Some(usable))
    } else {
        PoolPlacement::Unbound(executors)
    }
}

/// The CPUs in this process's affinity mask, from `/proc/self/status`; `None` where it
/// cannot be read or parsed.
fn allowed_cpus() -> Option<BTreeSet<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list)
}

/// The CPUs of a kernel CPU list such as `0-3,8,10-11`; `None` if it is malformed or
/// empty.
fn parse_cpu_list(list: &str) -> Option<BTreeSet<usize>> {
    let mut cpus = BTreeSet::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last): (usize, usize) =
                    (first.trim().parse().ok()?, last.trim().parse().ok()?);
                if first > last {
                    return None;
                }
                cpus.extend(first..=last);
            }
            None => {
                cpus.insert(part.trim().parse().ok()?);
            }
        }
    }
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        let set = |cpus: &[usize]| Some(cpus.iter().copied().collect::<BTreeSet<_>>());
        assert_eq!(parse_cpu_list("0-1\n"), set(&[0, 1]));
        assert_eq!(parse_cpu_list("\t3"), set(&[3]));
        assert_eq!(parse_cpu_list("0-2,8,10-11"), set(&[0, 1, 2, 8, 10, 11]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("0-x"), None);
        assert_eq!(parse_cpu_list("0,,1"), None);
    }

    #[test]
    fn executors_are_pinned_only_to_allowed_cpus() {
        let allowed = allowed_cpus().expect("this process's affinity mask is readable");
        let executors = allowed.len();
        match placement(executors) {
            PoolPlacement::MaxSpread(count, Some(cpus)) => {
                assert_eq!(count, executors);
                assert!(cpus.iter().all(|location| allowed.contains(&location.cpu)));
            }
            other => panic!("expected one pinned executor per allowed CPU, got {other:?}"),
        }
        assert!(matches!(
            placement(executors + 1),
            PoolPlacement::Unbound(n) if n == executors + 1
        ));
    }
}
