"""Message submission (RFC 6409) with SMTP AUTH (RFC 4954): STARTTLS on the submission
port, implicit TLS on submissions (RFC 8314), PLAIN, LOGIN and SCRAM-SHA-256 logins,
the envelope sender check, local-only delivery, and swaks as a second client."""

import base64
import imaplib
import smtplib
import ssl
import subprocess
import unittest

import scramp

from harness import Server, strip_received, client_context

DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"
SALES = f"sales@{DOMAIN}"
PASSWORD = "s3cret-Pa55"
RELAY_REFUSED = b"5.7.1 Relaying to remote domains is not available: this server has no outbound queue yet"


def message(subject):
    return (
        f"From: Alice <{ALICE}>\r\nTo: {BOB}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@client.test>\r\n\r\nHello Bob,\r\n.dot line\r\nbye\r\n"
    ).encode()


def inbox(server, account, password=PASSWORD):
    """Every message in the account's INBOX, fetched over IMAP with implicit TLS."""
    m = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=client_context(), timeout=30)
    try:
        m.login(account, password)
        m.select("INBOX", readonly=True)
        typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        return [part[1] for part in data if isinstance(part, tuple)]
    finally:
        m.logout()


def stored_with_id(server, account, subject):
    """The stored copies of the message `message(subject)` in the account's INBOX."""
    mid = f"<{subject.replace(' ', '-')}@client.test>".encode()
    return [m for m in inbox(server, account) if b"Message-ID: " + mid + b"\r\n" in m]


class SubmissionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=4, auth_toml="failure_delay_ms = 0\n")
        cls.server.add_user(ALICE, PASSWORD)
        cls.server.add_user(BOB, PASSWORD)
        cls.server.admin("alias", "add", SALES, ALICE)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def starttls(self):
        s = smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=30)
        s.ehlo("client.test")
        self.assertTrue(s.has_extn("starttls"))
        code, _ = s.starttls(context=client_context())
        self.assertEqual(code, 220)
        s.ehlo("client.test")
        return s

    def assert_arrived_intact(self, subject, msg, account=BOB, protocol=b"ESMTPSA"):
        stored = stored_with_id(self.server, account, subject)
        self.assertEqual(len(stored), 1, f"{subject!r} stored once in {account}")
        self.assertEqual(strip_received(stored[0]), msg)
        received = stored[0][: len(stored[0]) - len(msg)]
        self.assertIn(b" with " + protocol + b";", received)
        self.assertNotIn(PASSWORD.encode(), received)
        return stored[0]

    def test_starttls_then_login_chosen_by_smtplib(self):
        with self.starttls() as s:
            self.assertFalse(s.has_extn("starttls"), "STARTTLS is not offered twice")
            self.assertEqual(s.esmtp_features["auth"].split(), ["SCRAM-SHA-256", "PLAIN", "LOGIN"])
            code, text = s.login(ALICE, PASSWORD)
            self.assertEqual((code, text), (235, b"2.7.0 Authentication successful"))
            msg = message("chosen by smtplib")
            self.assertEqual(s.sendmail(ALICE, [BOB], msg), {})
        self.assert_arrived_intact("chosen by smtplib", msg)

    def test_forced_plain_and_login_with_and_without_initial_response(self):
        for mechanism in ("PLAIN", "LOGIN"):
            for initial_response_ok in (True, False):
                with self.subTest(mechanism=mechanism, initial_response=initial_response_ok):
                    with self.starttls() as s:
                        s.user, s.password = ALICE, PASSWORD
                        authobject = s.auth_plain if mechanism == "PLAIN" else s.auth_login
                        code, _ = s.auth(mechanism, authobject, initial_response_ok=initial_response_ok)
                        self.assertEqual(code, 235)
                        subject = f"forced {mechanism} {initial_response_ok}"
                        msg = message(subject)
                        self.assertEqual(s.sendmail(ALICE, [BOB], msg), {})
                    self.assert_arrived_intact(subject, msg)

    def test_scram_sha_256_in_the_clear_with_scramp(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=30) as s:
            s.ehlo("client.test")
            client = scramp.ScramClient(["SCRAM-SHA-256"], ALICE, PASSWORD)
            first = base64.b64encode(client.get_client_first().encode()).decode()
            code, challenge = s.docmd("AUTH", f"SCRAM-SHA-256 {first}")
            self.assertEqual(code, 334, challenge)
            client.set_server_first(base64.b64decode(challenge).decode())
            code, challenge = s.docmd(base64.b64encode(client.get_client_final().encode()).decode())
            self.assertEqual(code, 334, challenge)
            client.set_server_final(base64.b64decode(challenge).decode())
            self.assertEqual(s.docmd(""), (235, b"2.7.0 Authentication successful"))
            msg = message("over scram")
            self.assertEqual(s.sendmail(ALICE, [BOB], msg), {})
        # RFC 3848: authenticated, without TLS.
        self.assert_arrived_intact("over scram", msg, protocol=b"ESMTPA")

    def test_implicit_tls_on_submissions(self):
        with smtplib.SMTP_SSL(
            "127.0.0.1", self.server.submissions_port, context=client_context(), timeout=30
        ) as s:
            self.assertIn(s.sock.version(), ("TLSv1.2", "TLSv1.3"))
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("starttls"), "no STARTTLS under implicit TLS")
            self.assertIn("PLAIN", s.esmtp_features["auth"].split())
            s.login(ALICE, PASSWORD)
            msg = message("implicit tls")
            self.assertEqual(s.sendmail(SALES, [BOB, ALICE], msg), {})
        self.assert_arrived_intact("implicit tls", msg)
        self.assert_arrived_intact("implicit tls", msg, account=ALICE)

    def test_wrong_password_gets_535_then_the_right_one_works(self):
        with self.starttls() as s:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as refused:
                s.login(ALICE, "not the password")
            self.assertEqual(refused.exception.smtp_code, 535)
            self.assertEqual(refused.exception.smtp_error, b"5.7.8 Authentication credentials invalid")
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                s.login(f"nobody@{DOMAIN}", PASSWORD)
            self.assertEqual(s.login(ALICE, PASSWORD)[0], 235)
            self.assertEqual(s.docmd("AUTH", "PLAIN ="), (503, b"5.5.1 Error: already authenticated"))

    def test_mail_before_auth_is_refused(self):
        with self.starttls() as s:
            self.assertEqual(s.mail(ALICE), (530, b"5.7.0 Authentication required"))

    def test_sender_must_belong_to_the_account(self):
        with self.starttls() as s:
            s.login(ALICE, PASSWORD)
            not_owned = b"5.7.1 Sender address rejected: not owned by " + ALICE.encode()
            self.assertEqual(s.mail(BOB), (553, not_owned))
            self.assertEqual(s.mail(""), (553, not_owned))
            self.assertEqual(s.mail("alice@elsewhere.test"), (553, not_owned))
            self.assertEqual(s.mail(f"alice+lists@{DOMAIN}")[0], 250)
            s.rset()
            self.assertEqual(s.mail(SALES)[0], 250)

    def test_remote_recipient_is_refused_and_local_one_accepted(self):
        with self.starttls() as s:
            s.login(ALICE, PASSWORD)
            self.assertEqual(s.mail(ALICE)[0], 250)
            self.assertEqual(s.rcpt("friend@remote.test"), (550, RELAY_REFUSED))
            self.assertEqual(s.rcpt(f"nobody@{DOMAIN}"), (550, b"5.1.1 Error: user unknown"))
            self.assertEqual(s.rcpt(BOB)[0], 250)
            msg = message("one of three recipients")
            self.assertEqual(s.data(msg)[0], 250)
        self.assert_arrived_intact("one of three recipients", msg)

    def test_mx_listener_does_not_offer_auth(self):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("auth"))
            s.starttls(context=client_context())
            s.ehlo("client.test")
            self.assertFalse(s.has_extn("auth"))
            self.assertEqual(s.docmd("AUTH", "PLAIN =")[0], 502)

    def test_swaks_with_starttls_and_plain(self):
        done = subprocess.run(
            [
                "swaks", "--server", "127.0.0.1", "--port", str(self.server.submission_port),
                "--tls", "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", PASSWORD,
                "--from", ALICE, "--to", BOB, "--helo", "client.test",
                "--header", "Subject: from swaks", "--header", "Message-ID: <from-swaks@client.test>",
                "--body", "sent by swaks",
            ],
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("<~  235 2.7.0 Authentication successful", done.stdout)
        self.assertIn("<~  250 2.0.0 Ok: delivered", done.stdout)
        stored = stored_with_id(self.server, BOB, "from swaks")
        self.assertEqual(len(stored), 1)
        self.assertIn(b"sent by swaks", stored[0])
        self.assertIn(b" with ESMTPSA;", stored[0])


class NoPasswordsInTheClearTest(unittest.TestCase):
    """A server that takes passwords only under TLS, even on loopback."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(
            executors=1, shards=2, auth_toml='plaintext_login = "never"\nfailure_delay_ms = 0\n'
        )
        cls.server.add_user(ALICE, PASSWORD)
        cls.server.add_user(BOB, PASSWORD)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_passwords_wait_for_starttls(self):
        with smtplib.SMTP("127.0.0.1", self.server.submission_port, timeout=30) as s:
            s.ehlo("client.test")
            self.assertEqual(s.esmtp_features["auth"].split(), ["SCRAM-SHA-256"])
            plain = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
            must = (530, b"5.7.0 Must issue a STARTTLS command first")
            self.assertEqual(s.docmd("AUTH", f"PLAIN {plain}"), must)
            self.assertEqual(s.docmd("AUTH", "LOGIN"), must)
            s.starttls(context=client_context())
            s.ehlo("client.test")
            self.assertEqual(s.esmtp_features["auth"].split(), ["SCRAM-SHA-256", "PLAIN", "LOGIN"])
            self.assertEqual(s.login(ALICE, PASSWORD)[0], 235)
            msg = message("after starttls")
            self.assertEqual(s.sendmail(ALICE, [BOB], msg), {})
        stored = stored_with_id(self.server, BOB, "after starttls")
        self.assertEqual([strip_received(m) for m in stored], [msg])


if __name__ == "__main__":
    unittest.main()
