//! fio on the measured disk, with the jobs of `scripts/bench-disk`: durable 4 KiB writes
//! (O_DIRECT, fdatasync after each) and 64 KiB sequential O_DIRECT write bandwidth.

use super::CompareError;
use super::process::run_bounded;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What fio measured on the disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskFigures {
    /// 4 KiB O_DIRECT writes with an fdatasync after each, per second.
    pub iops_4k_fdatasync: f64,
    /// 64 KiB sequential O_DIRECT writes (queue depth 8), MiB per second.
    pub seq_64k_mib_per_s: f64,
}

impl DiskFigures {
    /// The mean of two measurements (before and after the servers ran).
    pub fn mean(a: &DiskFigures, b: &DiskFigures) -> DiskFigures {
        DiskFigures {
            iops_4k_fdatasync: (a.iops_4k_fdatasync + b.iops_4k_fdatasync) / 2.0,
            seq_64k_mib_per_s: (a.seq_64k_mib_per_s + b.seq_64k_mib_per_s) / 2.0,
        }
    }
}

/// (write bandwidth in KiB/s, write IOPS) of a fio terse (version 3) line.
pub fn parse_terse_write(line: &str) -> Option<(f64, f64)> {
    let fields: Vec<&str> = line.trim().split(';').collect();
    if fields.first() != Some(&"3") {
        return None;
    }
    // 5 leading fields, then 41 read fields; the write block starts with its total KiB,
    // bandwidth in KiB/s, IOPS and runtime in ms.
    const WRITE_BW_KIB: usize = 5 + 41 + 1;
    let bw = fields.get(WRITE_BW_KIB)?.parse().ok()?;
    let iops = fields.get(WRITE_BW_KIB + 1)?.parse().ok()?;
    Some((bw, iops))
}

/// Runs one fio job in `dir` for `seconds`, returning (KiB/s, IOPS) of its writes.
fn job(dir: &Path, name: &str, seconds: u64, args: &[&str]) -> Result<(f64, f64), CompareError> {
    let file = dir.join(name);
    let mut command = Command::new("fio");
    command
        .arg(format!("--name={name}"))
        .arg(format!("--filename={}", file.display()))
        .arg("--output-format=terse")
        .arg(format!("--runtime={seconds}"))
        .arg("--time_based")
        .args(args);
    let limit = Duration::from_secs(4 * seconds + 180);
    let out = run_bounded(&mut command, limit);
    let _ = std::fs::remove_file(&file);
    let out = out?;
    let text = String::from_utf8_lossy(&out);
    text.lines()
        .find_map(parse_terse_write)
        .ok_or_else(|| CompareError::Tool {
            tool: "fio".to_owned(),
            message: format!("no terse result line in {:?}", text.trim()),
        })
}

/// Measures the disk under `dir` with fio, each job for `seconds`.
pub fn measure(dir: &Path, seconds: u64) -> Result<DiskFigures, CompareError> {
    let (_, iops) = job(
        dir,
        "fio-4k-write-fdatasync",
        seconds,
        &[
            "--direct=1",
            "--bs=4k",
            "--rw=write",
            "--fdatasync=1",
            "--ioengine=psync",
            "--size=64M",
        ],
    )?;
    let seq = [
        "--bs=64k",
        "--rw=write",
        "--direct=1",
        "--iodepth=8",
        "--size=512M",
        "--end_fsync=1",
    ];
    let mut uring = vec!["--ioengine=io_uring"];
    uring.extend(seq);
    let (bw_kib, _) = match job(dir, "fio-64k-seq-write", seconds, &uring) {
        Ok(figures) => figures,
        Err(_) => {
            let mut aio = vec!["--ioengine=libaio"];
            aio.extend(seq);
            job(dir, "fio-64k-seq-write", seconds, &aio)?
        }
    };
    Ok(DiskFigures {
        iops_4k_fdatasync: iops,
        seq_64k_mib_per_s: bw_kib / 1024.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terse_write_fields_parse() {
        let mut fields = vec!["3", "fio-3.33", "job", "0", "0"];
        fields.extend(std::iter::repeat_n("0", 41));
        fields.extend(["1584", "790", "197", "2003"]);
        fields.extend(std::iter::repeat_n("0", 20));
        let line = fields.join(";");
        assert_eq!(parse_terse_write(&line), Some((790.0, 197.0)));
        assert_eq!(parse_terse_write("2;fio;job"), None);
        assert_eq!(parse_terse_write("3;fio-3.33;job;0;0"), None);
    }

    #[test]
    fn mean_of_two_runs() {
        let a = DiskFigures {
            iops_4k_fdatasync: 100.0,
            seq_64k_mib_per_s: 1000.0,
        };
        let b = DiskFigures {
            iops_4k_fdatasync: 300.0,
            seq_64k_mib_per_s: 500.0,
        };
        let m = DiskFigures::mean(&a, &b);
        assert_eq!((m.iops_4k_fdatasync, m.seq_64k_mib_per_s), (200.0, 750.0));
    }
}
