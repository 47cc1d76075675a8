"""Starts the real `treehouse` binary on loopback ports of its own and talks to it."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("TREEHOUSE_BIN", os.path.join(ROOT, "target", "release", "treehouse"))

_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def shard_of(account: str, shards: int) -> int:
    """The virtual shard of an account, as treehouse computes it."""
    return crc32c(account.strip().lower().encode()) % shards


def client_context():
    """A TLS client context that accepts the server's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list:
    """n distinct free loopback ports (all bound at once, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def treehouse(*args, check=True, timeout=120):
    """Runs an admin command of the binary and returns the CompletedProcess."""
    done = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"treehouse {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


class Server:
    """One treehouse instance with its own data folder and ports."""

    def __init__(self, executors=2, shards=8, segment_size_bytes=64 << 20, extra_toml="", data_dirs=None,
                 imap_toml="", auth_toml=""):
        self.tmp = tempfile.mkdtemp(prefix="treehouse-e2e-")
        self.data_dir = os.path.join(self.tmp, "data")
        (self.smtp_port, self.lmtp_port, self.imap_port, self.imaps_port, self.pop3_port,
         self.pop3s_port, self.submission_port, self.submissions_port) = free_ports(8)
        self.shards = shards
        self.executors = executors
        self.config_path = os.path.join(self.tmp, "treehouse.toml")
        dirs = ""
        if data_dirs:
            dirs = "data_dirs = [" + ", ".join(f'"{d}"' for d in data_dirs) + "]\n"
        with open(self.config_path, "w") as f:
            f.write(
                f"""[server]
hostname = "mx.example.test"
data_dir = "{self.data_dir}"
executors = {executors}
default_domain = "example.test"
demo_account = false

[listen]
smtp = ["127.0.0.1:{self.smtp_port}"]
lmtp = ["127.0.0.1:{self.lmtp_port}"]
imap = ["127.0.0.1:{self.imap_port}"]
imaps = ["127.0.0.1:{self.imaps_port}"]
pop3 = ["127.0.0.1:{self.pop3_port}"]
pop3s = ["127.0.0.1:{self.pop3s_port}"]
submission = ["127.0.0.1:{self.submission_port}"]
submissions = ["127.0.0.1:{self.submissions_port}"]

[store]
shards = {shards}
segment_size_bytes = {segment_size_bytes}
{dirs}
{extra_toml}
"""
            )
            if "[imap]" not in extra_toml:
                literal_max_bytes = ""
                # An IMAP literal must fit a segment; small test segments get a smaller limit.
                if "max_literal_bytes" not in imap_toml:
                    literal_max_bytes = f"max_literal_bytes = {min(50 << 20, segment_size_bytes - (128 << 10))}\n"
                f.write(f"\n[imap]\n{literal_max_bytes}{imap_toml}\n")
            if "[auth]" not in extra_toml:
                f.write(f"\n[auth]\n{auth_toml}\n")
        self.proc = None
        self.log_path = os.path.join(self.tmp, "server.log")

    def admin(self, *args, check=True):
        return treehouse(*args, "--config", self.config_path, check=check)

    def add_user(self, address, password="secret"):
        self.admin("user", "add", address, "--password", password)

    def start(self, wait=True, launcher=()):
        """Starts the server, through `launcher` (a command prefix such as taskset) if given."""
        self.log_offset = len(self.log()) if os.path.exists(self.log_path) else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*launcher, BINARY, "serve", "--config", self.config_path], stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.log()}")
            if "ready" in self.log()[self.log_offset :]:
                for port in (self.smtp_port, self.lmtp_port, self.imap_port):
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        s.recv(512)
                return
            time.sleep(0.05)
        raise AssertionError(f"server not ready within {timeout}s: {self.log()}")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def export_maildir(self, account):
        """Exports an account (server stopped) and returns {file name: bytes} of cur/."""
        target = os.path.join(self.tmp, "export-" + account.replace("@", "_") + f"-{time.time_ns()}")
        self.admin("export", "--account", account, "--maildir", target)
        out = {}
        for folder, _dirs, files in os.walk(target):
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    out[os.path.relpath(os.path.join(folder, name), target)] = f.read()
        return out

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def strip_received(stored: bytes) -> bytes:
    """Removes the Received: trace field treehouse prepends (and its folded lines)."""
    assert stored.startswith(b"Received: "), stored[:80]
    at = stored.index(b"\r\n") + 2
    while stored[at : at + 1] in (b" ", b"\t"):
        at = stored.index(b"\r\n", at) + 2
    return stored[at:]
