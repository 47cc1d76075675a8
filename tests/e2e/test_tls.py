"""STARTTLS on SMTP with the generated self-signed certificate (RFC 3207, RFC 8314)."""

import imaplib
import poplib
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

from harness import Server, shard_of, strip_received, client_context
from test_delivery import chat, read_reply

DOMAIN = "example.test"


class TlsServer(unittest.TestCase):
    """One server for the TLS tests; its accounts span both executors."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=4)
        cls.server.add_user(f"tina@{DOMAIN}")
        # One account whose shard each executor owns, so IMAP sessions move with TLS.
        cls.imap_users = []
        for i in range(64):
            user = f"reader{i}@{DOMAIN}"
            if shard_of(user, 4) % 2 not in [shard_of(u, 4) % 2 for u in cls.imap_users]:
                cls.imap_users.append(user)
        for user in cls.imap_users:
            cls.server.add_user(user, "pw")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()


class SmtpTlsTest(TlsServer):
    def test_starttls_delivery_is_stored_and_marked_esmtps(self):
        msg = b"From: a@upstream.test\r\nSubject: over tls\r\nMessage-ID: <tls@t>\r\n\r\nsecret\r\n"
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
            s.ehlo("client.test")
            self.assertTrue(s.has_extn("starttls"))
            code, _ = s.starttls(context=client_context())
            self.assertEqual(code, 220)
            self.assertIn(s.sock.version(), ("TLSv1.2", "TLSv1.3"))
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"), "STARTTLS is not offered twice")
            self.assertEqual(s.sendmail("a@upstream.test", [f"tina@{DOMAIN}"], msg), {})
        self.server.stop()
        try:
            stored = list(self.server.export_maildir(f"tina@{DOMAIN}").values())
            self.assertEqual([strip_received(m) for m in stored], [msg])
            self.assertIn(b" with ESMTPS;", stored[0])
        finally:
            self.server.start()

    def test_commands_injected_before_the_handshake_are_not_run(self):
        with socket.create_connection(("127.0.0.1", self.server.smtp_port), timeout=30) as raw:
            read_reply(raw, b"220")
            chat(raw, b"EHLO client.test\r\n", b"250")
            raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@upstream.test>\r\n")
            self.assertTrue(raw.recv(4096).startswith(b"220 2.0.0"))
            tls = client_context().wrap_socket(raw, server_hostname="localhost")
            chat(tls, b"EHLO client.test\r\n", b"250")
            # Had the injected MAIL run, this RCPT would be accepted.
            chat(tls, f"RCPT TO:<tina@{DOMAIN}>\r\n".encode(), b"503 5.5.1")
            chat(tls, b"QUIT\r\n", b"221")

    def test_sighup_reloads_the_certificate(self):
        def served_certificate():
            with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
                s.starttls(context=client_context())
                return s.sock.getpeercert(binary_form=True)

        before = served_certificate()
        tls_dir = os.path.join(self.server.data_dir, "tls")
        crt, key = os.path.join(tls_dir, "new.crt"), os.path.join(tls_dir, "new.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-subj", "/CN=reloaded.example.test", "-days", "2",
                        "-keyout", key, "-out", crt], check=True, capture_output=True, timeout=60)
        os.replace(key, os.path.join(tls_dir, "self-signed.key"))
        os.replace(crt, os.path.join(tls_dir, "self-signed.crt"))
        with open(os.path.join(tls_dir, "self-signed.crt")) as f:
            expected = ssl.PEM_cert_to_DER_cert(f.read())
        self.assertNotEqual(before, expected)
        os.kill(self.server.proc.pid, signal.SIGHUP)
        after = before
        deadline = time.time() + 10
        while after != expected and time.time() < deadline:
            time.sleep(0.1)
            after = served_certificate()
        self.assertEqual(after, expected, "new handshakes use the reloaded certificate")
        self.assertIsNone(self.server.proc.poll(), "SIGHUP does not stop the server")

    def test_only_tls_1_2_and_1_3(self):
        s = self.server
        # Every listener: STARTTLS (SMTP, submission, IMAP), STLS (POP3), implicit TLS.
        listeners = {
            "smtp": (s.smtp_port, ["-starttls", "smtp"]),
            "submission": (s.submission_port, ["-starttls", "smtp"]),
            "imap": (s.imap_port, ["-starttls", "imap"]),
            "pop3": (s.pop3_port, ["-starttls", "pop3"]),
            "imaps": (s.imaps_port, []),
            "pop3s": (s.pop3s_port, []),
            "submissions": (s.submissions_port, []),
        }
        for name, (port, starttls) in listeners.items():
            results = {}
            for version in ("tls1", "tls1_1", "tls1_2", "tls1_3"):
                # SECLEVEL=0 lets the client offer the old versions, so a refusal is the server's.
                done = subprocess.run(
                    ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *starttls,
                     f"-{version}", "-cipher", "DEFAULT@SECLEVEL=0"],
                    input=b"", capture_output=True, timeout=30)
                out = done.stdout.decode(errors="replace")
                results[version] = "Cipher is (NONE)" not in out and "New, TLSv1." in out
            self.assertEqual(results, {"tls1": False, "tls1_1": False, "tls1_2": True, "tls1_3": True},
                             name)


class ImapTlsTest(TlsServer):
    def test_imap_starttls_login_and_fetch_on_both_executors(self):
        for user in self.imap_users:
            msg = f"From: a@upstream.test\r\nSubject: for {user}\r\n\r\nbody\r\n".encode()
            with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
                s.sendmail("a@upstream.test", [user], msg)
            # Several connections: the kernel spreads them over both executors, so most
            # logins move to the other executor together with their TLS session.
            for _ in range(6):
                m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
                self.assertIn("STARTTLS", m.capabilities)
                m.starttls(ssl_context=client_context())
                self.assertNotIn("STARTTLS", m.capabilities)
                m.login(user, "pw")
                typ, data = m.select("INBOX")
                self.assertEqual((typ, data), ("OK", [b"1"]))
                typ, data = m.fetch("1", "(BODY.PEEK[])")
                self.assertEqual(strip_received(data[0][1]), msg)
                m.logout()

    def test_imaps_implicit_tls(self):
        user = self.imap_users[-1]
        m = imaplib.IMAP4_SSL("127.0.0.1", self.server.imaps_port, ssl_context=client_context(), timeout=30)
        self.assertIn(m.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertNotIn("STARTTLS", m.capabilities)
        m.login(user, "pw")
        self.assertEqual(m.select("INBOX")[0], "OK")
        m.logout()

    def test_imap_commands_before_the_handshake_are_not_run(self):
        with socket.create_connection(("127.0.0.1", self.server.imap_port), timeout=30) as raw:
            self.assertTrue(raw.recv(4096).startswith(b"* OK"))
            user = self.imap_users[0]
            raw.sendall(b"a STARTTLS\r\nb LOGIN " + user.encode() + b" pw\r\n")
            self.assertTrue(raw.recv(4096).startswith(b"a OK"))
            tls = client_context().wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"c SELECT INBOX\r\n")
            reply = tls.recv(4096)
            # Had the injected LOGIN run, SELECT would succeed.
            self.assertTrue(reply.startswith(b"c BAD") or reply.startswith(b"c NO"), reply)
            tls.sendall(b"d LOGOUT\r\n")


class PlaintextLoginTest(unittest.TestCase):
    """With auth.plaintext_login = "never", passwords wait for TLS."""

    def test_logindisabled_until_starttls(self):
        server = Server(executors=2, shards=4)
        # Passwords wait for TLS everywhere but on the POP3 listener the admin trusts.
        with open(server.config_path, "a") as f:
            f.write(f'plaintext_login = "never"\nplaintext_listeners = ["127.0.0.1:{server.pop3_port}"]\n')
        try:
            server.add_user(f"pat@{DOMAIN}", "pw")
            server.start()
            m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
            self.assertIn("LOGINDISABLED", m.capabilities)
            self.assertNotIn("AUTH=PLAIN", m.capabilities)
            typ, data = m._simple_command("LOGIN", f"pat@{DOMAIN}", "pw")
            self.assertEqual(typ, "NO")
            self.assertIn(b"[PRIVACYREQUIRED]", data[0])
            m.starttls(ssl_context=client_context())
            self.assertNotIn("LOGINDISABLED", m.capabilities)
            self.assertEqual(m.login(f"pat@{DOMAIN}", "pw")[0], "OK")
            m.logout()
            p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=30)
            self.assertIn("USER", p.capa())
            p.user(f"pat@{DOMAIN}")
            self.assertTrue(p.pass_("pw").startswith(b"+OK"))
            p.quit()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
