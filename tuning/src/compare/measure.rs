//! One pass of one workload against one server, run in this process with the load
//! generator's library, while a sampler follows the server's CPU time and resident memory
//! through `/proc`.

use super::procfs::{self, MemorySample, ProcStat};
use super::{CompareError, ServerKind, Workload};
use crate::load::imap::{self, ImapPlan, ImapReport};
use crate::load::report::{LATENCY_US_MAX, LoadReport};
use crate::load::{self, LoadPlan, Protocol};
use hdrhistogram::Histogram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Latency percentiles reported and charted.
pub const PERCENTILES: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];
/// How often the sampler reads `/proc`.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// Most samples kept for one pass (a bound on the sampler's memory).
pub const SAMPLES_MAX: usize = 20_000;
/// Longest wait for a connect, a read or a write of the load generator.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Failure descriptions kept per pass.
pub const FAILURE_SAMPLES_MAX: usize = 5;

/// Where a server listens and which process tree is its own.
#[derive(Debug, Clone)]
pub struct Target {
    /// Which server.
    pub kind: ServerKind,
    /// The root of its process tree.
    pub pid: u32,
    /// LMTP HOST:PORT.
    pub lmtp: String,
    /// IMAP HOST:PORT.
    pub imap: String,
}

/// What one measured pass gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// Durable deliveries (LMTP recipients with 250) or mix commands that matched the model.
    pub operations: u64,
    /// Wall time of the measured part (for IMAP: the mix, setup excluded).
    pub elapsed_s: f64,
    /// Durably delivered message bytes per second in MiB (0 for IMAP).
    pub mib_per_s: f64,
    /// Latency at each of [`PERCENTILES`], in ms.
    pub latency_ms: Vec<f64>,
    /// Longest latency, in ms.
    pub latency_ms_max: f64,
    /// CPU seconds of the server's processes during the measured part.
    pub server_cpu_s: f64,
    /// CPU seconds of this process (load generator and sampler) during the measured part.
    pub loadgen_cpu_s: f64,
    /// Busy CPU seconds of the whole machine (every process and the kernel) during the
    /// measured part.
    pub machine_cpu_s: f64,
    /// Peak resident memory in KiB: treehouse's VmHWM (reset before the pass); for
    /// Dovecot the largest sampled sum of VmRSS over its processes.
    pub peak_rss_kib: u64,
    /// Largest sampled sum of PSS over the server's processes, in KiB.
    pub peak_pss_kib: u64,
    /// Most processes seen in the server's tree at once.
    pub processes_max: usize,
    /// Failed deliveries, connection errors, refusals and model mismatches.
    pub failures: u64,
    /// The first few failure descriptions.
    pub failure_samples: Vec<String>,
}

impl Measurement {
    /// Operations per second.
    pub fn ops_per_s(&self) -> f64 {
        if self.elapsed_s > 0.0 {
            self.operations as f64 / self.elapsed_s
        } else {
            0.0
        }
    }

    /// Server CPU seconds per 1,000 operations; `None` without operations.
    pub fn server_cpu_s_per_1k(&self) -> Option<f64> {
        (self.operations > 0).then(|| self.server_cpu_s * 1000.0 / self.operations as f64)
    }

    /// Latency at `percentile` (one of [`PERCENTILES`]), or NaN.
    pub fn latency_ms_at(&self, percentile: f64) -> f64 {
        PERCENTILES
            .iter()
            .position(|&p| p == percentile)
            .and_then(|i| self.latency_ms.get(i).copied())
            .unwrap_or(f64::NAN)
    }
}

/// One reading of the sampler.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    server_ticks: u64,
    own_ticks: u64,
    machine_busy_ticks: u64,
}

/// What the sampler saw during a pass.
#[derive(Debug, Default)]
struct Trace {
    readings: Vec<Reading>,
    memory_peak: MemorySample,
    processes_max: usize,
}

impl Trace {
    /// The reading closest to `at`.
    fn nearest(&self, at: Instant) -> Option<Reading> {
        self.readings
            .iter()
            .min_by_key(|r| if r.at > at { r.at - at } else { at - r.at })
            .copied()
    }
}

fn read(root: u32, own: u32) -> (Reading, Vec<ProcStat>) {
    let stats = procfs::all_stats();
    let tree = procfs::tree(&stats, root);
    let own_ticks = stats
        .iter()
        .find(|s| s.pid == own)
        .map_or(0, |s| s.utime_ticks + s.stime_ticks);
    let reading = Reading {
        at: Instant::now(),
        server_ticks: procfs::tree_cpu_ticks(&tree),
        own_ticks,
        machine_busy_ticks: procfs::machine_ticks().busy,
    };
    (reading, tree)
}

/// Runs `load` while sampling the process tree under `root`; returns its result, the
/// trace, and the readings taken just before and just after it.
fn sampled<R>(root: u32, load: impl FnOnce() -> R) -> (R, Trace, Reading, Reading) {
    let own = std::process::id();
    let stop = AtomicBool::new(false);
    let trace = Mutex::new(Trace::default());
    let (first, _) = read(root, own);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let (reading, tree) = read(root, own);
                let memory = procfs::memory_of(tree.iter().map(|s| s.pid));
                let mut t = trace.lock().unwrap_or_else(|e| e.into_inner());
                if t.readings.len() < SAMPLES_MAX {
                    t.readings.push(reading);
                }
                t.memory_peak.rss_kib = t.memory_peak.rss_kib.max(memory.rss_kib);
                t.memory_peak.pss_kib = t.memory_peak.pss_kib.max(memory.pss_kib);
                t.processes_max = t.processes_max.max(tree.len());
                drop(t);
                std::thread::sleep(SAMPLE_INTERVAL);
            }
        });
        let result = load();
        stop.store(true, Ordering::Relaxed);
        result
    });
    let (last, _) = read(root, own);
    let trace = trace.into_inner().unwrap_or_else(|e| e.into_inner());
    (result, trace, first, last)
}

fn lmtp_plan(
    target: &Target,
    size_bytes: usize,
    connections: usize,
    accounts: &[String],
) -> LoadPlan {
    let mut plan = LoadPlan::new(Protocol::Lmtp, &target.lmtp, accounts.to_vec());
    plan.connections = connections;
    plan.message_size_bytes = size_bytes;
    plan.io_timeout = IO_TIMEOUT;
    // As an MTA's LMTP client does (Postfix pipelines when PIPELINING is offered).
    plan.pipeline = true;
    plan
}

fn imap_plan(target: &Target, connections: usize, seconds: u64, accounts: &[String]) -> ImapPlan {
    let mut plan = ImapPlan::new(&target.imap, accounts.to_vec(), super::PASSWORD);
    plan.connections = connections;
    plan.duration_limit = Duration::from_secs(seconds);
    plan.io_timeout = IO_TIMEOUT;
    plan
}

/// Every failure of an LMTP run, as text ('' if none).
pub fn lmtp_failures(report: &LoadReport) -> (u64, Vec<String>) {
    let t = &report.tally;
    let mut samples: Vec<String> = t
        .replies_failed
        .iter()
        .map(|((stage, code), count)| format!("{}:{code} x{count}", stage.name()))
        .collect();
    if let Some(first) = &t.connection_error_first {
        samples.push(format!("connection error: {first}"));
    }
    samples.truncate(FAILURE_SAMPLES_MAX);
    (t.messages_failed + t.connection_errors, samples)
}

/// Every failure of an IMAP run: refusals, mismatches and connection errors.
pub fn imap_failures(report: &ImapReport) -> (u64, Vec<String>) {
    let t = &report.tally;
    let mut samples: Vec<String> = t.error_samples.clone();
    if let Some(first) = &t.connection_error_first {
        samples.push(format!("connection error: {first}"));
    }
    samples.truncate(FAILURE_SAMPLES_MAX);
    (t.errors + t.connection_errors, samples)
}

/// The mix commands' latencies merged into one histogram.
pub fn imap_mix_latency(report: &ImapReport) -> Histogram<u64> {
    let mut all = Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
        .expect("constant histogram bounds are valid");
    for (command, tally) in &report.tally.commands {
        if command.is_mix() {
            let _ = all.add(&tally.latency_us);
        }
    }
    all
}

fn cpu_s(before_ticks: u64, after_ticks: u64, ticks_per_s: f64) -> f64 {
    after_ticks.saturating_sub(before_ticks) as f64 / ticks_per_s
}

fn percentiles_ms(histogram: &Histogram<u64>) -> (Vec<f64>, f64) {
    let at = PERCENTILES
        .iter()
        .map(|p| histogram.value_at_quantile(p / 100.0) as f64 / 1000.0)
        .collect();
    (at, histogram.max() as f64 / 1000.0)
}

/// Sends [`super::STORE_WARMUP_MESSAGES_PER_ACCOUNT`] 4 KiB LMTP messages to every account
/// over 32 connections; returns the failures as text ('' if none).
pub fn store_warmup(target: &Target, accounts: &[String]) -> Result<String, CompareError> {
    let mut plan = lmtp_plan(target, 4 << 10, 32, accounts);
    plan.messages = super::STORE_WARMUP_MESSAGES_PER_ACCOUNT * accounts.len() as u64;
    plan.duration_limit = Duration::from_secs(120);
    let report = load::run(&plan).map_err(|e| CompareError::Load(e.to_string()))?;
    let (failures, samples) = lmtp_failures(&report);
    Ok(if failures == 0 {
        String::new()
    } else {
        format!("{failures} failures: {}", samples.join("; "))
    })
}

/// An unmeasured pass of `workload` for `seconds`; returns its failures as text.
pub fn warm_up(
    target: &Target,
    workload: &Workload,
    seconds: u64,
    accounts: &[String],
) -> Result<String, CompareError> {
    if seconds == 0 {
        return Ok(String::new());
    }
    let (failures, samples) = match *workload {
        Workload::Lmtp {
            size_bytes,
            connections,
        } => {
            let mut plan = lmtp_plan(target, size_bytes, connections, accounts);
            plan.messages = workload.messages_per_s_cap() * seconds;
            plan.duration_limit = Duration::from_secs(seconds);
            lmtp_failures(&load::run(&plan).map_err(|e| CompareError::Load(e.to_string()))?)
        }
        Workload::Imap { connections } => {
            let plan = imap_plan(target, connections, seconds, accounts);
            imap_failures(&imap::run(&plan).map_err(CompareError::Load)?)
        }
    };
    Ok(if failures == 0 {
        String::new()
    } else {
        format!("{failures} failures: {}", samples.join("; "))
    })
}

/// One measured pass of `workload` for `seconds` against `target`.
pub fn measure(
    target: &Target,
    workload: &Workload,
    seconds: u64,
    accounts: &[String],
) -> Result<Measurement, CompareError> {
    let hwm_reset = target.kind == ServerKind::Treehouse && procfs::reset_peak_rss(target.pid);
    let ticks_per_s = procfs::clock_ticks_per_s() as f64;
    let call_started = Instant::now();
    let mut m = match *workload {
        Workload::Lmtp {
            size_bytes,
            connections,
        } => {
            let mut plan = lmtp_plan(target, size_bytes, connections, accounts);
            plan.messages = workload.messages_per_s_cap() * seconds;
            plan.duration_limit = Duration::from_secs(seconds);
            let (report, trace, first, last) = sampled(target.pid, || load::run(&plan));
            let report = report.map_err(|e| CompareError::Load(e.to_string()))?;
            let (latency_ms, latency_ms_max) = percentiles_ms(&report.tally.latency_us);
            let (failures, failure_samples) = lmtp_failures(&report);
            Measurement {
                operations: report.tally.recipients_ok,
                elapsed_s: report.elapsed.as_secs_f64(),
                mib_per_s: report.mib_per_s(),
                latency_ms,
                latency_ms_max,
                server_cpu_s: cpu_s(first.server_ticks, last.server_ticks, ticks_per_s),
                loadgen_cpu_s: cpu_s(first.own_ticks, last.own_ticks, ticks_per_s),
                machine_cpu_s: cpu_s(
                    first.machine_busy_ticks,
                    last.machine_busy_ticks,
                    ticks_per_s,
                ),
                peak_rss_kib: trace.memory_peak.rss_kib,
                peak_pss_kib: trace.memory_peak.pss_kib,
                processes_max: trace.processes_max,
                failures,
                failure_samples,
            }
        }
        Workload::Imap { connections } => {
            let plan = imap_plan(target, connections, seconds, accounts);
            let (report, trace, first, last) = sampled(target.pid, || imap::run(&plan));
            let report = report.map_err(CompareError::Load)?;
            // CPU of the mix only: from the reading nearest the end of setup.
            let mix_started = call_started + report.setup_elapsed;
            let at_mix = trace.nearest(mix_started).unwrap_or(first);
            let (latency_ms, latency_ms_max) = percentiles_ms(&imap_mix_latency(&report));
            let (failures, failure_samples) = imap_failures(&report);
            let operations = report
                .tally
                .commands
                .iter()
                .filter(|(c, _)| c.is_mix())
                .map(|(_, t)| t.ok)
                .sum();
            Measurement {
                operations,
                elapsed_s: report.elapsed.as_secs_f64(),
                mib_per_s: 0.0,
                latency_ms,
                latency_ms_max,
                server_cpu_s: cpu_s(at_mix.server_ticks, last.server_ticks, ticks_per_s),
                loadgen_cpu_s: cpu_s(at_mix.own_ticks, last.own_ticks, ticks_per_s),
                machine_cpu_s: cpu_s(
                    at_mix.machine_busy_ticks,
                    last.machine_busy_ticks,
                    ticks_per_s,
                ),
                peak_rss_kib: trace.memory_peak.rss_kib,
                peak_pss_kib: trace.memory_peak.pss_kib,
                processes_max: trace.processes_max,
                failures,
                failure_samples,
            }
        }
    };
    if hwm_reset && let Some(hwm) = procfs::peak_rss_kib(target.pid) {
        m.peak_rss_kib = m.peak_rss_kib.max(hwm);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement() -> Measurement {
        Measurement {
            operations: 2000,
            elapsed_s: 4.0,
            mib_per_s: 0.0,
            latency_ms: vec![1.0, 2.0, 3.0, 4.0, 5.0],
            latency_ms_max: 6.0,
            server_cpu_s: 3.0,
            loadgen_cpu_s: 0.5,
            machine_cpu_s: 4.0,
            peak_rss_kib: 1024,
            peak_pss_kib: 1000,
            processes_max: 1,
            failures: 0,
            failure_samples: Vec::new(),
        }
    }

    #[test]
    fn rates_and_cpu_per_thousand() {
        let m = measurement();
        assert_eq!(m.ops_per_s(), 500.0);
        assert_eq!(m.server_cpu_s_per_1k(), Some(1.5));
        assert_eq!(m.latency_ms_at(99.0), 3.0);
        assert!(m.latency_ms_at(42.0).is_nan());
        let none = Measurement {
            operations: 0,
            elapsed_s: 0.0,
            ..measurement()
        };
        assert_eq!(none.ops_per_s(), 0.0);
        assert_eq!(none.server_cpu_s_per_1k(), None);
    }

    #[test]
    fn trace_finds_the_nearest_reading() {
        let t0 = Instant::now();
        let reading = |ms: u64, ticks: u64| Reading {
            at: t0 + Duration::from_millis(ms),
            server_ticks: ticks,
            own_ticks: ticks / 10,
            machine_busy_ticks: ticks * 2,
        };
        let trace = Trace {
            readings: vec![reading(0, 100), reading(100, 150), reading(200, 400)],
            ..Trace::default()
        };
        let at = |ms| {
            trace
                .nearest(t0 + Duration::from_millis(ms))
                .map(|r| r.server_ticks)
        };
        assert_eq!(at(130), Some(150));
        assert_eq!(at(190), Some(400));
        assert!(Trace::default().nearest(t0).is_none());
    }
}
