"""Process limits: the server raises a low soft locked-memory limit (ulimit -l) itself
and refuses to start below what its io_uring executors need, saying what to change (as
container runtimes that set 64 KiB require); it raises its soft open-files limit
(ulimit -n, 1024 under systemd) to the hard one, so that connections are not refused
long before the configured connection limits, and warns when the hard one is too low."""

import resource
import shutil
import smtplib
import socket
import unittest

from harness import Server

DOMAIN = "example.test"
KIB = 1024


class LimitsTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("prlimit") is None:
            self.skipTest("prlimit (util-linux) is not installed")

    def test_a_low_soft_limit_is_raised_up_to_the_hard_one(self):
        _soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if hard != resource.RLIM_INFINITY and hard < 512 * KIB:
            self.skipTest(f"this shell's hard locked-memory limit is {hard} bytes")
        hard_arg = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        server = Server(executors=2, shards=4)
        try:
            server.add_user(f"locked@{DOMAIN}")
            server.start(launcher=("prlimit", f"--memlock={64 * KIB}:{hard_arg}"))
            with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as smtp:
                refused = smtp.sendmail("s@upstream.test", [f"locked@{DOMAIN}"],
                                        b"Subject: locked\r\n\r\nbody\r\n")
            self.assertEqual(refused, {})
        finally:
            server.cleanup()

    def test_b_a_hard_limit_too_low_is_refused_with_what_to_do(self):
        server = Server(executors=2, shards=4)
        try:
            server.start(wait=False, launcher=("prlimit", f"--memlock={64 * KIB}:{64 * KIB}"))
            code = server.proc.wait(timeout=60)
            log = server.log()
            self.assertNotEqual(code, 0, log)
            self.assertIn("the locked-memory limit (ulimit -l) is 64 KiB", log)
            self.assertIn("ulimit -l", log)
            self.assertIn("LimitMEMLOCK=", log)
            self.assertNotIn("panicked", log)
        finally:
            server.cleanup()

    def test_c_a_low_open_files_limit_is_raised_for_connections(self):
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 4096:
            self.skipTest(f"this shell's hard open-files limit is {hard}")
        server = Server(executors=2, shards=4)
        clients = []
        try:
            server.start(launcher=("prlimit", "--nofile=64:4096"))
            # Far more connections than a soft limit of 64 descriptors would allow.
            for _ in range(150):
                c = socket.create_connection(("127.0.0.1", server.imap_port), timeout=10)
                clients.append(c)
            for c in clients:
                self.assertTrue(c.recv(512).startswith(b"* OK"))
            # The hard limit is below what the default connection limits want.
            self.assertIn("the open-files limit (ulimit -n) is 4096", server.log())
        finally:
            for c in clients:
                c.close()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
