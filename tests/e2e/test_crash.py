"""Kill -9 under load: every message that got 250 survives exactly once, byte-identical."""

import os
import random
import smtplib
import threading
import time
import unittest

from harness import Server, strip_received

DOMAIN = "example.test"
SENDERS = 8
KILLS = int(os.environ.get("TREEHOUSE_CRASH_KILLS", "20"))
ACCOUNTS = [f"crash{i}@{DOMAIN}" for i in range(16)]


class Sender(threading.Thread):
    """Sends numbered messages until told to stop; remembers which got 250."""

    def __init__(self, index, server, stop):
        super().__init__(daemon=True)
        self.index = index
        self.server = server
        self.stop = stop
        self.acked = {}  # message id -> (account, bytes)
        self.rnd = random.Random(index)
        self.count = 0

    def run(self):
        deadline = time.time() + 600
        while not self.stop.is_set() and time.time() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=20) as s:
                    while not self.stop.is_set():
                        self.count += 1
                        mid = f"s{self.index}-{self.count}"
                        account = self.rnd.choice(ACCOUNTS)
                        size = self.rnd.choice([200, 3000, 70000])
                        body = ("x" * 70 + "\r\n") * (size // 72 + 1)
                        msg = (f"From: s@upstream.test\r\nTo: {account}\r\nMessage-ID: <{mid}@t>\r\n"
                               f"Subject: {mid}\r\n\r\n{body}").encode()
                        s.sendmail("s@upstream.test", [account], msg)
                        self.acked[mid] = (account, msg)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)


class CrashTest(unittest.TestCase):
    def test_kill_nine_loses_nothing_acknowledged(self):
        server = Server(executors=2, shards=8, segment_size_bytes=16 << 20,
                        extra_toml="checkpoint_every_records = 200\n\n[smtp]\nmax_message_bytes = 1048576\n")
        try:
            for account in ACCOUNTS:
                server.add_user(account)
            server.start()
            stop = threading.Event()
            senders = [Sender(i, server, stop) for i in range(SENDERS)]
            for s in senders:
                s.start()
            rnd = random.Random(2026)
            for _ in range(KILLS):
                time.sleep(rnd.uniform(0.2, 1.2))
                server.kill()
                time.sleep(rnd.uniform(0.0, 0.3))
                server.start()
            time.sleep(1.0)
            stop.set()
            for s in senders:
                s.join(timeout=60)
            server.stop()
            acked = {}
            for s in senders:
                acked.update(s.acked)
            self.assertGreater(len(acked), KILLS, "load should have delivered many messages")
            for account in ACCOUNTS:
                stored = server.export_maildir(account).values() if any(a == account for a, _ in acked.values()) else []
                by_id = {}
                for raw in stored:
                    body = strip_received(raw)
                    mid = body.split(b"Message-ID: <", 1)[1].split(b"@", 1)[0].decode()
                    by_id.setdefault(mid, []).append(body)
                for mid, (acc, msg) in acked.items():
                    if acc != account:
                        continue
                    self.assertIn(mid, by_id, f"acknowledged {mid} lost for {account}")
                    self.assertEqual(len(by_id[mid]), 1, f"{mid} stored {len(by_id[mid])} times")
                    self.assertEqual(by_id[mid][0], msg, f"{mid} differs")
            check = server.admin("fsck")
            self.assertIn("consistent", check.stdout)
            print(f"crash test: {KILLS} kills, {len(acked)} acknowledged messages, all present once",
                  flush=True)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
