"""Limits and failures: each gets its protocol reply and the server goes on."""

import os
import socket
import subprocess
import time
import unittest

from harness import Server, shard_of
from test_delivery import chat, message, read_reply

DOMAIN = "example.test"


def lines_until(sock, count):
    got = b""
    while got.count(b"\r\n") < count:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got.split(b"\r\n")[:count]


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=4, extra_toml=(
            "\n[smtp]\nmax_recipients = 3\nmax_errors = 4\nidle_timeout_secs = 2\n"
            "max_message_bytes = 100000\n"))
        cls.server.add_user(f"erin@{DOMAIN}")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.server.smtp_port), timeout=30)
        read_reply(s, b"220")
        chat(s, b"EHLO client.test\r\n", b"250")
        return s

    def test_too_many_recipients(self):
        with self.connect() as s:
            chat(s, b"MAIL FROM:<a@upstream.test>\r\n", b"250")
            for _ in range(3):
                chat(s, b"RCPT TO:<erin@example.test>\r\n", b"250")
            chat(s, b"RCPT TO:<erin@example.test>\r\n", b"452 4.5.3")

    def test_message_over_limit_after_data(self):
        with self.connect() as s:
            chat(s, b"MAIL FROM:<a@upstream.test>\r\n", b"250")
            chat(s, b"RCPT TO:<erin@example.test>\r\n", b"250")
            chat(s, b"DATA\r\n", b"354")
            s.sendall(message("big", "y" * 70 + "\r\n") * 1 + (b"z" * 70 + b"\r\n") * 2000 + b".\r\n")
            read_reply(s, b"552 5.3.4")
            chat(s, b"NOOP\r\n", b"250")

    def test_error_limit_closes_with_421(self):
        with self.connect() as s:
            replies = b""
            for _ in range(4):
                replies += chat(s, b"BOGUS\r\n")
            while b"421" not in replies:
                chunk = s.recv(4096)
                if not chunk:
                    break
                replies += chunk
            self.assertIn(b"421", replies)
            self.assertEqual(s.recv(4096), b"", "server closes after 421")

    def test_idle_timeout(self):
        with self.connect() as s:
            s.settimeout(30)
            got = s.recv(4096)
            self.assertTrue(got.startswith(b"421 4.4.2"), got)

    def test_server_still_serves(self):
        with self.connect() as s:
            chat(s, b"MAIL FROM:<a@upstream.test>\r\n", b"250")
            chat(s, b"RCPT TO:<erin@example.test>\r\n", b"250")
            chat(s, b"DATA\r\n", b"354")
            chat(s, message("fine") + b".\r\n", b"250")


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs")
class FullShardTest(unittest.TestCase):
    """Half of the shards live on a 512 KiB tmpfs, too small for one 1 MiB segment."""

    def test_full_disk_tempfails_only_its_recipients(self):
        tiny = os.path.join("/tmp", f"treehouse-tiny-{os.getpid()}")
        os.makedirs(tiny, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", tiny], check=True)
        server = None
        try:
            big = os.path.join("/tmp", f"treehouse-big-{os.getpid()}")
            server = Server(executors=2, shards=4, segment_size_bytes=1 << 20,
                            data_dirs=[big, tiny],
                            extra_toml="flush_batch_max_bytes = 524288\n\n[smtp]\nmax_message_bytes = 500000\n")
            users = [f"u{i}@{DOMAIN}" for i in range(16)]
            for u in users:
                server.add_user(u)
            server.start()
            healthy = [u for u in users if shard_of(u, 4) % 2 == 0][:2]
            full = [u for u in users if shard_of(u, 4) % 2 == 1][:1]
            self.assertTrue(healthy and full)
            with socket.create_connection(("127.0.0.1", server.lmtp_port), timeout=30) as s:
                read_reply(s, b"220")
                chat(s, b"LHLO client.test\r\n", b"250")
                chat(s, b"MAIL FROM:<l@upstream.test>\r\n", b"250")
                order = [healthy[0], full[0], healthy[1]]
                for r in order:
                    chat(s, f"RCPT TO:<{r}>\r\n".encode(), b"250")
                chat(s, b"DATA\r\n", b"354")
                s.sendall(message("partial") + b".\r\n")
                replies = lines_until(s, 3)
            self.assertTrue(replies[0].startswith(b"250"), replies)
            self.assertTrue(replies[1].startswith(b"452 4.3.1"), replies)
            self.assertTrue(replies[2].startswith(b"250"), replies)
            server.stop()
            stored = server.export_maildir(healthy[0])
            self.assertEqual(len(stored), 1)
            self.assertEqual(server.admin("fsck", check=False).returncode, 0)
        finally:
            if server:
                server.cleanup()
            subprocess.run(["umount", tiny], check=False)
            os.rmdir(tiny)


if __name__ == "__main__":
    unittest.main()
