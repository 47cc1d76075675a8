"""Admin commands against a real store: swaks delivery, export, fsck, Dovecot imports."""

import os
import subprocess
import unittest

from harness import Server, shard_of, strip_received

DOMAIN = "example.test"


def swaks(server, *args):
    done = subprocess.run(["swaks", "--server", f"127.0.0.1:{server.smtp_port}", *args],
                          capture_output=True, text=True, timeout=120)
    return done


class AdminTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=4)
        cls.server.add_user(f"dave@{DOMAIN}")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_a_swaks_plain_pipelined_and_8bit(self):
        for extra in ([], ["--pipeline"], ["--body", "caf\u00e9 8-bit body"]):
            done = swaks(self.server, "--to", f"dave@{DOMAIN}", "--from", "s@upstream.test",
                         "--header", f"Subject: swaks {' '.join(extra)}", *extra)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            self.assertIn("250 2.0.0", done.stdout)
        refused = swaks(self.server, "--to", f"nobody@{DOMAIN}", "--from", "s@upstream.test")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("550 5.1.1", refused.stdout)

    def test_b_dovecot_passwd_line_verifies(self):
        hashed = subprocess.run(["openssl", "passwd", "-6", "-salt", "abcdefgh", "dovecot-pw"],
                                capture_output=True, text=True, check=True).stdout.strip()
        passwd = os.path.join(self.server.data_dir, "directory", "passwd")
        with open(passwd, "a") as f:
            f.write(f"carol@{DOMAIN}:{{SHA512-CRYPT}}{hashed}::::::\n")
        ok = self.server.admin("user", "verify", f"carol@{DOMAIN}", "--password", "dovecot-pw", check=False)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        bad = self.server.admin("user", "verify", f"carol@{DOMAIN}", "--password", "wrong", check=False)
        self.assertNotEqual(bad.returncode, 0)
        listed = self.server.admin("user", "list").stdout.split()
        self.assertIn(f"carol@{DOMAIN}", listed)
        # A running server picks up the pasted line: carol now receives mail.
        for _ in range(50):
            done = swaks(self.server, "--to", f"carol@{DOMAIN}", "--from", "s@upstream.test")
            if done.returncode == 0:
                break
        self.assertIn("250 2.0.0", done.stdout)

    def test_c_export_mbox_and_fsck_detects_corruption(self):
        done = swaks(self.server, "--to", f"dave@{DOMAIN}", "--from", "s@upstream.test",
                     "--body", "From the start\nof a line\n", "--header", "Subject: mbox quoting")
        self.assertEqual(done.returncode, 0, done.stdout)
        self.server.stop()
        try:
            refused = self.server.admin("fsck", check=False)
            self.assertEqual(refused.returncode, 0, refused.stderr)
            maildir = sorted(strip_received(m) for m in self.server.export_maildir(f"dave@{DOMAIN}").values())
            mbox = os.path.join(self.server.tmp, "dave.mbox")
            self.server.admin("export", "--account", f"dave@{DOMAIN}", "--mbox", mbox)
            with open(mbox, "rb") as f:
                text = f.read()
            self.assertEqual(text.count(b"\nFrom MAILER-DAEMON ") + text.startswith(b"From MAILER-DAEMON "),
                             len(maildir))
            self.assertIn(b"\n>From the start", text)
            # Flip one byte inside the first of dave's several batches: fsck must name it.
            shard = shard_of(f"dave@{DOMAIN}", self.server.shards)
            segment = os.path.join(self.server.data_dir, "store", f"shard-{shard:04}", "segment-000000")
            with open(segment, "r+b") as f:
                f.seek(100)
                byte = f.read(1)
                f.seek(100)
                f.write(bytes([byte[0] ^ 0xFF]))
            broken = self.server.admin("fsck", check=False)
            self.assertNotEqual(broken.returncode, 0)
            self.assertIn(os.path.basename(os.path.dirname(segment)), broken.stderr)
            with open(segment, "r+b") as f:
                f.seek(100)
                f.write(byte)
            self.assertEqual(self.server.admin("fsck", check=False).returncode, 0)
        finally:
            self.server.start()

    def test_b2_export_while_serving(self):
        before = len(self.server.export_maildir(f"dave@{DOMAIN}"))
        done = swaks(self.server, "--to", f"dave@{DOMAIN}", "--from", "s@upstream.test",
                     "--header", "Subject: live export")
        self.assertEqual(done.returncode, 0, done.stdout)
        live = self.server.export_maildir(f"dave@{DOMAIN}")
        self.assertEqual(len(live), before + 1)
        self.assertTrue(any(b"Subject: live export" in m for m in live.values()))
        busy = self.server.admin("fsck", check=False)
        self.assertNotEqual(busy.returncode, 0)
        self.assertIn("stop it first", busy.stderr)

    def test_d_config_default_documents_every_limit(self):
        text = self.server.admin("config", "default").stdout
        for key in ("max_message_bytes", "durable_wait_ms", "segment_size_bytes", "queue_depth_max",
                    "max_connections", "idle_timeout_secs"):
            self.assertIn(key, text)


if __name__ == "__main__":
    unittest.main()
