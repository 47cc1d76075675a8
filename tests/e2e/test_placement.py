"""Executors keep to the CPUs the server may use: taskset, systemd's CPUAffinity= and
container CPU sets narrow the process's affinity mask, and no thread may leave it."""

import os
import shutil
import smtplib
import unittest

from harness import Server

DOMAIN = "example.test"


def allowed_cpus(pid, tid):
    """The Cpus_allowed_list of one thread, as the kernel writes it."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"no Cpus_allowed_list for thread {tid}")


class PlacementTest(unittest.TestCase):
    def test_server_started_under_taskset_runs_only_on_that_cpu(self):
        if shutil.which("taskset") is None:
            self.skipTest("taskset (util-linux) is not installed")
        # The last allowed CPU: on a machine with more than one, not the CPU that a
        # placement blind to the affinity mask picks first.
        cpu = max(os.sched_getaffinity(0))
        # executors = 0 means one per allowed CPU; executors = 1 asks for one outright.
        for executors in (0, 1):
            with self.subTest(executors=executors):
                server = Server(executors=executors, shards=4)
                try:
                    server.add_user(f"pinned@{DOMAIN}")
                    server.start(launcher=("taskset", "-c", str(cpu)))
                    self.assertIn("ready with 1 executors", server.log())
                    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as smtp:
                        refused = smtp.sendmail("s@upstream.test", [f"pinned@{DOMAIN}"],
                                                b"Subject: pinned\r\n\r\nbody\r\n")
                    self.assertEqual(refused, {})
                    pid = server.proc.pid
                    threads = {tid: allowed_cpus(pid, tid) for tid in os.listdir(f"/proc/{pid}/task")}
                    self.assertGreater(len(threads), 1)
                    self.assertEqual(set(threads.values()), {str(cpu)}, threads)
                finally:
                    server.cleanup()


if __name__ == "__main__":
    unittest.main()
