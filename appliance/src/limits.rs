//! Process limits the server needs, raised before the executors start where no
//! privilege is needed, or explained when they cannot be.
//!
//! Locked memory (`ulimit -l`, `RLIMIT_MEMLOCK`): glommio refuses to build an
//! executor's reactor when the limit is below [`MEMLOCK_MIN_BYTES`], whatever the
//! process's privileges; above that it registers each executor's I/O buffers with its
//! three rings, which the kernel charges to the limit once per ring unless the process
//! holds `CAP_IPC_LOCK`, and runs without registered buffers (a faster path, not a
//! correctness matter) when they do not fit. Container runtimes often set 64 KiB.
//!
//! Open files (`ulimit -n`, `RLIMIT_NOFILE`): every connection is a descriptor, and so
//! is every segment file of every shard. systemd starts services with a soft limit of
//! 1024 and a hard one far above it, leaving it to a program that needs more to raise
//! its own soft limit, which the server does.

use rlimit::Resource;

/// The least locked memory glommio starts an executor with, in bytes.
pub const MEMLOCK_MIN_BYTES: u64 = 512 * 1024;

/// io_uring rings per executor that register its I/O buffers.
const RINGS_PER_EXECUTOR: u64 = 3;

/// The locked memory, in bytes, that `executors` executors with `io_memory_bytes` of
/// registered buffers each want.
pub fn memlock_wanted_bytes(executors: usize, io_memory_bytes: usize) -> u64 {
    (executors as u64)
        .saturating_mul(RINGS_PER_EXECUTOR)
        .saturating_mul(io_memory_bytes as u64)
        .max(MEMLOCK_MIN_BYTES)
}

/// What to do about a (soft, hard) locked-memory limit, for `wanted` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// The soft limit already allows it.
    Enough,
    /// Raise the soft limit to this many bytes (at most the hard limit).
    Raise(u64),
}

fn memlock_plan(soft: u64, hard: u64, wanted: u64) -> Result<Plan, String> {
    if soft >= wanted {
        return Ok(Plan::Enough);
    }
    let target = wanted.min(hard);
    if target < MEMLOCK_MIN_BYTES {
        return Err(format!(
            "the locked-memory limit (ulimit -l) is {} KiB, with a hard limit of {} KiB; \
             each executor's io_uring needs at least {} KiB, and {} KiB in all lets them \
             register their I/O buffers. Raise it for treehouse: `ulimit -l {}` in the shell \
             that starts it, LimitMEMLOCK={}K in its systemd unit, or \
             `--ulimit memlock={}` for docker run",
            soft / 1024,
            hard / 1024,
            MEMLOCK_MIN_BYTES / 1024,
            wanted / 1024,
            wanted / 1024,
            wanted / 1024,
            wanted,
        ));
    }
    // soft < wanted, and soft <= hard: so soft <= target.
    Ok(Plan::Raise(target))
}

/// Makes sure the executors can start: raises the soft locked-memory limit towards
/// `wanted` bytes (never past the hard limit, which needs no privilege), or explains
/// what to change when even the hard limit is below glommio's minimum.
pub fn ensure_memlock(wanted: u64) -> Result<(), String> {
    let (soft, hard) = Resource::MEMLOCK
        .get()
        .map_err(|e| format!("cannot read the locked-memory limit: {e}"))?;
    match memlock_plan(soft, hard, wanted)? {
        Plan::Enough => Ok(()),
        Plan::Raise(target) => Resource::MEMLOCK.set(target, hard).map_err(|e| {
            format!("cannot raise the locked-memory limit from {soft} to {target} bytes: {e}")
        }),
    }
}

/// Descriptors the server wants beyond one per connection: segment files, listeners,
/// io_uring rings, event descriptors and the odd file read at run time.
pub const OPEN_FILES_SPARE: u64 = 1024;

/// Raises the soft open-files limit to the hard one, and warns when even the hard
/// limit is below `wanted` descriptors (the configured connection limits and
/// [`OPEN_FILES_SPARE`]): connections past it would be refused by the kernel.
pub fn raise_open_files(wanted: u64) -> Result<(), String> {
    let (soft, hard) = Resource::NOFILE
        .get()
        .map_err(|e| format!("cannot read the open-files limit: {e}"))?;
    if soft < hard {
        Resource::NOFILE
            .set(hard, hard)
            .map_err(|e| format!("cannot raise the open-files limit from {soft} to {hard}: {e}"))?;
    }
    if let Some(warning) = open_files_warning(hard, wanted) {
        eprintln!("treehouse: {warning}");
    }
    Ok(())
}

fn open_files_warning(limit: u64, wanted: u64) -> Option<String> {
    (limit < wanted).then(|| {
        format!(
            "the open-files limit (ulimit -n) is {limit}, below the {wanted} descriptors \
             that the connection limits (smtp, imap and pop3 max_connections) and the \
             store want; connections past it will fail. Raise it: LimitNOFILE={wanted} in \
             the systemd unit, `ulimit -n {wanted}` in the shell that starts treehouse, or \
             `--ulimit nofile={wanted}` for docker run"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn a_hard_open_files_limit_below_the_connections_is_explained() {
        assert_eq!(open_files_warning(524_288, 22_024), None);
        let warning = open_files_warning(4096, 22_024).expect("too low");
        assert!(warning.contains("ulimit -n) is 4096"), "{warning}");
        assert!(warning.contains("LimitNOFILE=22024"), "{warning}");
    }

    #[test]
    fn every_executor_wants_its_buffers_on_each_ring() {
        assert_eq!(memlock_wanted_bytes(2, 2 << 20), 12 * MIB);
        assert_eq!(memlock_wanted_bytes(0, 2 << 20), MEMLOCK_MIN_BYTES);
    }

    #[test]
    fn soft_limits_rise_to_the_hard_one_and_low_hard_limits_are_explained() {
        assert_eq!(memlock_plan(16 * MIB, 16 * MIB, 12 * MIB), Ok(Plan::Enough));
        assert_eq!(
            memlock_plan(8 * MIB, rlimit::INFINITY, 12 * MIB),
            Ok(Plan::Raise(12 * MIB))
        );
        assert_eq!(
            memlock_plan(64 * KIB, 8 * MIB, 12 * MIB),
            Ok(Plan::Raise(8 * MIB))
        );
        let refused =
            memlock_plan(64 * KIB, 64 * KIB, 12 * MIB).expect_err("below glommio's minimum");
        assert!(refused.contains("ulimit -l 12288"), "{refused}");
        assert!(refused.contains("--ulimit memlock=12582912"), "{refused}");
    }
}
