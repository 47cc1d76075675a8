"""SMTP and LMTP delivery through the real binary, checked byte for byte after export."""

import os
import random
import smtplib
import socket
import subprocess
import unittest

from harness import Server, shard_of, strip_received

DOMAIN = "example.test"


def message(subject, body="Hello.\r\n", extra_headers=""):
    return (
        f"From: sender@upstream.test\r\nTo: alice@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@upstream.test>\r\n{extra_headers}\r\n{body}"
    ).encode()


def chat(sock, line, expect=None):
    """Sends one command line and returns the full (possibly multi-line) reply."""
    if line is not None:
        sock.sendall(line)
    return read_reply(sock, expect)


def read_reply(sock, expect=None):
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) >= 2 and len(lines[-2]) >= 4 and lines[-2][3:4] == b" " and data.endswith(b"\r\n"):
            break
    if expect is not None:
        assert data.startswith(expect), (expect, data)
    return data


def stored_bodies(server, account):
    return [strip_received(b) for b in server.export_maildir(account).values()]


class DeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=8)
        cls.users = [f"user{i}@{DOMAIN}" for i in range(12)] + [f"alice@{DOMAIN}", f"bob@{DOMAIN}"]
        for u in cls.users:
            cls.server.add_user(u)
        cls.server.admin("alias", "add", f"postmaster@{DOMAIN}", f"alice@{DOMAIN}")
        cls.server.start()
        cls.sent = {u: [] for u in cls.users}

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=60)

    def send(self, rcpts, msg, **kw):
        with self.smtp() as s:
            refused = s.sendmail("sender@upstream.test", rcpts, msg, **kw)
        self.assertEqual(refused, {})
        for r in rcpts:
            account = {"postmaster@" + DOMAIN: "alice@" + DOMAIN}.get(r, r)
            self.sent[account].append(msg)

    def test_a_ehlo_advertises_extensions(self):
        with self.smtp() as s:
            code, text = s.ehlo("client.test")
            self.assertEqual(code, 250)
            for ext in ("pipelining", "8bitmime", "size", "enhancedstatuscodes", "smtputf8", "chunking"):
                self.assertTrue(s.has_extn(ext), ext)
            self.assertEqual(int(s.esmtp_features["size"]), 50 << 20)

    def test_b_plain_8bit_utf8_and_alias(self):
        self.send([f"alice@{DOMAIN}"], message("plain one"))
        self.send([f"alice@{DOMAIN}"], message("eight bit", "Gr\u00fc\u00dfe aus K\u00f6ln.\r\n"), mail_options=["BODY=8BITMIME"])
        utf8 = ("From: j\u00f6rg@upstream.test\r\nTo: alice@" + DOMAIN + "\r\nSubject: \u00fcber\r\n"
                "Message-ID: <utf8@upstream.test>\r\n\r\n\u3053\u3093\u306b\u3061\u306f\r\n").encode()
        with self.smtp() as s:
            s.ehlo("client.test")
            s.sendmail("j\u00f6rg@upstream.test", [f"alice@{DOMAIN}"], utf8, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        self.sent[f"alice@{DOMAIN}"].append(utf8)
        self.send([f"postmaster@{DOMAIN}"], message("to postmaster"))

    def test_c_multi_recipient_across_executors(self):
        owners = {u: shard_of(u, self.server.shards) % self.server.executors for u in self.users}
        self.assertEqual(set(owners.values()), {0, 1}, "test accounts must span both executors")
        rcpts = [f"user{i}@{DOMAIN}" for i in range(12)]
        self.send(rcpts, message("to twelve"))

    def test_d_pipelined(self):
        with socket.create_connection(("127.0.0.1", self.server.smtp_port)) as s:
            read_reply(s, b"220")
            chat(s, b"EHLO client.test\r\n", b"250")
            body = message("pipelined")
            s.sendall(b"MAIL FROM:<p@upstream.test>\r\nRCPT TO:<bob@" + DOMAIN.encode() + b">\r\n"
                      b"RCPT TO:<nobody@" + DOMAIN.encode() + b">\r\nDATA\r\n")
            got = b""
            while got.count(b"\r\n") < 4:
                got += s.recv(4096)
            lines = got.split(b"\r\n")
            self.assertTrue(lines[0].startswith(b"250"), got)
            self.assertTrue(lines[1].startswith(b"250"), got)
            self.assertTrue(lines[2].startswith(b"550 5.1.1"), got)
            self.assertTrue(lines[3].startswith(b"354"), got)
            chat(s, body + b".\r\n", b"250")
            chat(s, b"QUIT\r\n", b"221")
        self.sent[f"bob@{DOMAIN}"].append(body)

    def test_e_twenty_mib(self):
        rnd = random.Random(7)
        line = lambda: "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(76))
        lines = []
        size = 0
        while size < 20 << 20:
            lines.append(line())
            size += 78
        msg = message("twenty mib", "\r\n".join(lines) + "\r\n")
        self.send([f"user3@{DOMAIN}"], msg)

    def test_f_refusals(self):
        with self.smtp() as s:
            s.ehlo("client.test")
            s.mail("x@upstream.test")
            self.assertEqual(s.rcpt(f"nobody@{DOMAIN}")[0], 550)
            code, text = s.rcpt("someone@elsewhere.test")
            self.assertEqual(code, 550)
            self.assertIn(b"5.7.1", text)
            s.rset()
            code, text = s.mail("x@upstream.test", ["SIZE=99999999999"])
            self.assertEqual(code, 552)
            self.assertIn(b"5.3.4", text)
            self.assertEqual(s.verify("alice")[0], 252)
            self.assertEqual(s.docmd("FROB")[0], 500)
            self.assertEqual(s.noop()[0], 250)

    def test_g_lmtp_per_recipient(self):
        with socket.create_connection(("127.0.0.1", self.server.lmtp_port)) as s:
            read_reply(s, b"220")
            chat(s, b"LHLO client.test\r\n", b"250")
            chat(s, b"MAIL FROM:<l@upstream.test>\r\n", b"250")
            rcpts = [f"user{i}@{DOMAIN}" for i in (4, 5, 6)]
            for r in rcpts:
                chat(s, f"RCPT TO:<{r}>\r\n".encode(), b"250")
            chat(s, b"RCPT TO:<ghost@" + DOMAIN.encode() + b">\r\n", b"550")
            chat(s, b"DATA\r\n", b"354")
            body = message("over lmtp")
            s.sendall(body + b".\r\n")
            got = b""
            while got.count(b"\r\n") < 3:
                got += s.recv(4096)
            self.assertEqual([l[:3] for l in got.split(b"\r\n")[:3]], [b"250"] * 3, got)
            chat(s, b"QUIT\r\n", b"221")
        for r in rcpts:
            self.sent[r].append(body)

    def test_h_bad_input_session_goes_on(self):
        with socket.create_connection(("127.0.0.1", self.server.smtp_port)) as s:
            read_reply(s, b"220")
            chat(s, b"EHLO client.test\r\n", b"250")
            chat(s, b"MAIL FROM:<" + b"a" * 2000 + b"@x.test>\r\n", b"500")
            chat(s, b"MA\x00IL FROM:<a@b>\r\n", b"50")
            chat(s, b"RCPT TO:<bob@example.test>\r\n", b"503")
            chat(s, b"NOOP\r\n", b"250")
        with self.smtp() as s:
            self.assertEqual(s.noop()[0], 250)

    def test_z_export_byte_identical(self):
        self.server.stop()
        try:
            for account, expected in self.sent.items():
                if not expected:
                    continue
                stored = sorted(stored_bodies(self.server, account))
                self.assertEqual(stored, sorted(expected), account)
            check = self.server.admin("fsck")
            self.assertIn("consistent", check.stdout)
        finally:
            self.server.start()


if __name__ == "__main__":
    unittest.main()
