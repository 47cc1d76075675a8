//! Child processes of a comparison: tools run with a time limit, and servers that are
//! started, waited for and stopped (SIGTERM, then SIGKILL) within bounded time.

use super::CompareError;
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a waiting loop looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Runs `command` to its end within `limit`, returning its standard output; a failure
/// exit, a timeout or a failed start is an error naming the program.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Result<Vec<u8>, CompareError> {
    let tool = command.get_program().to_string_lossy().into_owned();
    let error = |message: String| CompareError::Tool {
        tool: tool.clone(),
        message,
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| error(format!("cannot start: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (out, err, status) = std::thread::scope(|scope| {
        let out = scope.spawn(move || read_all(stdout.as_mut()));
        let err = scope.spawn(move || read_all(stderr.as_mut()));
        let status = wait_within(&mut child, limit);
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        (out, err, status)
    });
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => Err(error(format!(
            "exited with {s}: {}",
            String::from_utf8_lossy(&err).trim()
        ))),
        None => Err(error(format!(
            "still running after {} s; killed",
            limit.as_secs()
        ))),
    }
}

fn read_all(source: Option<&mut impl Read>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(source) = source {
        let _ = source.read_to_end(&mut bytes);
    }
    bytes
}

/// Waits for `child` to exit, at most `limit`.
pub fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL_INTERVAL),
            _ => return None,
        }
    }
}

/// Sends signal `name` (`TERM`, `KILL`) to `pid` with kill(1); false when that failed.
pub fn send_signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `count` distinct loopback ports that were free a moment ago.
pub fn free_loopback_ports(count: usize) -> Result<Vec<u16>, CompareError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CompareError::io("binding a loopback port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CompareError::io("reading a loopback port", e))
}

/// Waits until `addr` accepts a connection and greets with a line starting `prefix`.
pub fn wait_for_greeting(addr: SocketAddr, prefix: &[u8], limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let mut last = String::from("not tried");
    while Instant::now() < deadline {
        match greeting(addr) {
            Ok(line) if line.starts_with(prefix) => return Ok(()),
            Ok(line) => last = format!("greeting {:?}", String::from_utf8_lossy(&line)),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Err(format!(
        "{addr} did not greet with {:?} within {} s: {last}",
        String::from_utf8_lossy(prefix),
        limit.as_secs()
    ))
}

fn greeting(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 512 && !line.ends_with(b"\n") {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        line.push(byte[0]);
    }
    // Leave politely; the servers log abrupt closes.
    let quit: &[u8] = if line.starts_with(b"*") {
        b"a LOGOUT\r\n"
    } else {
        b"QUIT\r\n"
    };
    let _ = stream.write_all(quit);
    Ok(line)
}

/// A server process of the comparison; stopped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    /// What it is, for messages.
    pub name: &'static str,
    child: Child,
    /// Its process id (for Dovecot, the master's).
    pub pid: u32,
    /// Where its standard error goes.
    pub stderr_path: PathBuf,
    exit: Option<ExitStatus>,
}

/// Most characters of a server's standard error quoted in a message.
pub const STDERR_SHOWN_CHARS: usize = 4000;

impl ServerProcess {
    /// Starts `command` with standard output and error in files under `dir`.
    pub fn start(
        name: &'static str,
        command: &mut Command,
        dir: &Path,
    ) -> Result<ServerProcess, CompareError> {
        let stdout_path = dir.join(format!("{name}.stdout"));
        let stderr_path = dir.join(format!("{name}.stderr"));
        let file = |path: &Path| {
            std::fs::File::create(path)
                .map_err(|e| CompareError::io(&format!("creating {}", path.display()), e))
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(file(&stdout_path)?)
            .stderr(file(&stderr_path)?)
            .spawn()
            .map_err(|e| CompareError::Server {
                server: name,
                message: format!("cannot start {:?}: {e}", command.get_program()),
            })?;
        Ok(ServerProcess {
            name,
            pid: child.id(),
            child,
            stderr_path,
            exit: None,
        })
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.is_some()
    }

    /// The last part of its standard error.
    pub fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let start = text
            .char_indices()
            .rev()
            .nth(STDERR_SHOWN_CHARS)
            .map_or(0, |(i, _)| i);
        text[start..].trim().to_owned()
    }

    /// SIGTERM, then SIGKILL after `limit`; returns how it exited.
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.has_exited() {
            return self.exit;
        }
        send_signal(self.pid, "TERM");
        self.exit = wait_within(&mut self.child, limit);
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = wait_within(&mut self.child, limit);
        }
        self.exit
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_run_returns_output_or_names_the_failure() {
        let out = run_bounded(
            Command::new("sh").args(["-c", "echo hello"]),
            Duration::from_secs(10),
        )
        .expect("sh runs");
        assert_eq!(out, b"hello\n");
        let err = run_bounded(
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .expect_err("fails");
        assert!(err.to_string().contains("oops"), "{err}");
        let err = run_bounded(Command::new("sleep").arg("5"), Duration::from_millis(200))
            .expect_err("times out");
        assert!(err.to_string().contains("killed"), "{err}");
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_loopback_ports(4).expect("ports");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 4);
        assert!(ports.iter().all(|&p| p != 0));
    }
}
