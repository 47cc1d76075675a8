"""The locked-memory limit (ulimit -l): the server raises a low soft limit itself, and
refuses to start below what its io_uring executors need with an error that says what to
change, as container runtimes that set 64 KiB require."""

import resource
import shutil
import smtplib
import unittest

from harness import Server

DOMAIN = "example.test"
KIB = 1024


class MemlockTest(unittest.TestCase):
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


if __name__ == "__main__":
    unittest.main()
