//! The locked-memory limit (`ulimit -l`, `RLIMIT_MEMLOCK`) that the executors' io_uring
//! rings need, raised before they start, or refused with an error that says what to
//! change.
//!
//! glommio refuses to build an executor's reactor when the limit is below
//! [`MEMLOCK_MIN_BYTES`], whatever the process's privileges; above that it registers
//! each executor's I/O buffers with its three rings, which the kernel charges to the
//! limit once per ring unless the process holds `CAP_IPC_LOCK`, and runs without
//! registered buffers (a faster path, not a correctness matter) when they do not fit.
//! Container runtimes often set 64 KiB.

use rlimit::Resource;

/// The least locked memory glommio starts an executor with, in bytes.
pub const MEMLOCK_MIN_BYTES: u64 = 512 * 1024;

/// io_uring rings per executor that register its I/O buffers.
const RINGS_PER_EXECUTOR: u64 = 3;

/// The locked memory, in bytes, that `executors` executors with `io_memory_bytes` of
/// registered buffers each want.
pub fn wanted_bytes(executors: usize, io_memory_bytes: usize) -> u64 {
    (executors as u64)
        .saturating_mul(RINGS_PER_EXECUTOR)
        .saturating_mul(io_memory_bytes as u64)
        .max(MEMLOCK_MIN_BYTES)
}

/// What to do about a (soft, hard) limit, for `wanted` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// The soft limit already allows it.
    Enough,
    /// Raise the soft limit to this many bytes (at most the hard limit).
    Raise(u64),
}

fn plan(soft: u64, hard: u64, wanted: u64) -> Result<Plan, String> {
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
    Ok(Plan::Raise(target.max(soft)))
}

/// Makes sure the executors can start: raises the soft locked-memory limit towards
/// `wanted` bytes (never past the hard limit, which needs no privilege), or explains
/// what to change when even the hard limit is below glommio's minimum.
pub fn ensure(wanted: u64) -> Result<(), String> {
    let (soft, hard) = Resource::MEMLOCK
        .get()
        .map_err(|e| format!("cannot read the locked-memory limit: {e}"))?;
    match plan(soft, hard, wanted)? {
        Plan::Enough => Ok(()),
        Plan::Raise(target) => Resource::MEMLOCK.set(target, hard).map_err(|e| {
            format!("cannot raise the locked-memory limit from {soft} to {target} bytes: {e}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;

    #[test]
    fn every_executor_wants_its_buffers_on_each_ring() {
        assert_eq!(wanted_bytes(2, 2 << 20), 12 * MIB);
        assert_eq!(wanted_bytes(0, 2 << 20), MEMLOCK_MIN_BYTES);
    }

    #[test]
    fn soft_limits_rise_to_the_hard_one_and_low_hard_limits_are_explained() {
        assert_eq!(plan(16 * MIB, 16 * MIB, 12 * MIB), Ok(Plan::Enough));
        assert_eq!(
            plan(8 * MIB, rlimit::INFINITY, 12 * MIB),
            Ok(Plan::Raise(12 * MIB))
        );
        assert_eq!(plan(64 * KIB, 8 * MIB, 12 * MIB), Ok(Plan::Raise(8 * MIB)));
        let refused = plan(64 * KIB, 64 * KIB, 12 * MIB).expect_err("below glommio's minimum");
        assert!(refused.contains("ulimit -l 12288"), "{refused}");
        assert!(refused.contains("--ulimit memlock=12582912"), "{refused}");
    }
}
