"""A 50 MiB APPEND through the real binary: the server holds the message once on its way to
disk (its peak resident memory grows by less than one and a half times the message), and
partial FETCHes of it return exactly the requested bytes."""

import unittest

from harness import Server
from test_imap import Raw, appenduid, message

MESSAGE_BYTES = 50 << 20
# Held once, the message costs its own size plus bounded buffers (a 1 MiB write chunk,
# socket reads); held twice it would cost at least twice its size.
PEAK_GROWTH_MAX = 1.5


def reset_peak_resident(pid):
    """Starts a new peak: VmHWM falls to the present resident size (Linux 4.0+)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def peak_resident_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def large_message(size):
    head = message("fifty mebibytes", body="", to="ivan")
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+!?\r\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"x" * (size - len(head) - len(body))


class LargeAppendTest(unittest.TestCase):
    def setUp(self):
        self.server = Server(executors=1, shards=2, segment_size_bytes=64 << 20)
        self.server.add_user("ivan@example.test")
        self.server.start()

    def tearDown(self):
        self.server.cleanup()

    def test_fifty_mib_append_is_held_once_and_fetched_in_ranges(self):
        data = large_message(MESSAGE_BYTES)
        self.assertEqual(len(data), MESSAGE_BYTES)
        c = Raw(self.server.imap_port, timeout=120)
        c.login("ivan")
        # Warm up every buffer an ordinary APPEND uses, so the baseline includes them.
        c.append("INBOX", message("warm up", to="ivan"))
        reset_peak_resident(self.server.proc.pid)
        before = peak_resident_bytes(self.server.proc.pid)
        tagged = c.append("INBOX", data)
        growth = peak_resident_bytes(self.server.proc.pid) - before
        print(
            f"\n50 MiB APPEND: peak resident growth {growth / (1 << 20):.1f} MiB "
            f"= {growth / MESSAGE_BYTES:.2f} x the message (resident before {before / (1 << 20):.1f} MiB)",
            flush=True,
        )
        self.assertLess(growth, PEAK_GROWTH_MAX * MESSAGE_BYTES)
        _, uid = appenduid(tagged)

        c.cmd("EXAMINE INBOX")
        untagged, _ = c.cmd(f"UID FETCH {uid} (RFC822.SIZE)")
        self.assertEqual(untagged, [b"* 2 FETCH (UID %d RFC822.SIZE %d)" % (uid, MESSAGE_BYTES)])
        for start in (0, MESSAGE_BYTES // 2 - 7, MESSAGE_BYTES - 65536):
            untagged, _ = c.cmd(f"UID FETCH {uid} (BODY.PEEK[]<{start}.65536>)")
            chunk = data[start : start + 65536]
            self.assertEqual(
                untagged,
                [b"* 2 FETCH (UID %d BODY[]<%d> {65536}\r\n%s)" % (uid, start, chunk)],
            )
        c.cmd("LOGOUT")
        c.close()


if __name__ == "__main__":
    unittest.main()
