"""POP3 through the real binary with Python's poplib: mail delivered over SMTP read back
byte for byte, UIDL stable across sessions and restarts, DELE applied only at QUIT, one
session per maildrop, STLS and implicit TLS, and IMAP seeing what POP3 deleted."""

import base64
import imaplib
import poplib
import smtplib
import socket
import ssl
import time
import unittest

from harness import Server, shard_of, strip_received, client_context

DOMAIN = "example.test"
SHARDS = 4
EXECUTORS = 2
PASSWORD = "pop secret"


def message(subject, body="Hello world.\r\n"):
    return (
        f"From: Sender <sender@upstream.test>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@upstream.test>\r\n\r\n{body}"
    ).encode()


def owner(account):
    return shard_of(account, SHARDS) % EXECUTORS


def users_on_both_executors(stem):
    """One account for each executor's shards, so that sessions move between them."""
    found = {}
    for i in range(200):
        user = f"{stem}{i}@{DOMAIN}"
        found.setdefault(owner(user), user)
        if len(found) == EXECUTORS:
            return [found[e] for e in range(EXECUTORS)]
    raise AssertionError("no accounts found for every executor")


def body_of(lines):
    """The message poplib returned as lines, with its CRLFs back."""
    return b"".join(line + b"\r\n" for line in lines)


def read_to_end(sock):
    """Everything the server sends until it closes the connection."""
    got = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return got
        got += chunk


class Pop3Server(unittest.TestCase):
    """One server for the POP3 tests; each test uses accounts of its own."""

    # Account groups this class uses: one account per executor in each.
    STEMS = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=EXECUTORS, shards=SHARDS, auth_toml="failure_delay_ms = 0\n")
        cls.ACCOUNTS = {stem: users_on_both_executors(stem) for stem in cls.STEMS}
        for users in cls.ACCOUNTS.values():
            for user in users:
                cls.server.add_user(user, PASSWORD)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def deliver(self, account, msg):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=30) as s:
            self.assertEqual(s.sendmail("sender@upstream.test", [account], msg), {})

    def pop3(self, account):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
        try:
            self.assertEqual(p.getwelcome(), b"+OK treehouse POP3 ready")
            p.user(account)
            p.pass_(PASSWORD)
        except BaseException:
            p.close()
            raise
        return p

    def pop3_when_free(self, account):
        """Logs in once the server has seen an earlier connection of `account` go away."""
        deadline = time.time() + 30
        while True:
            try:
                return self.pop3(account)
            except poplib.error_proto as e:
                if b"[IN-USE]" not in e.args[0] or time.time() > deadline:
                    raise
                time.sleep(0.05)

    def uidl(self, p):
        return [line.split()[1] for line in p.uidl()[1]]


class RetrieveTest(Pop3Server):
    STEMS = ("basic", "misc")

    def test_list_retr_top_dele_quit(self):
        for account in self.ACCOUNTS["basic"]:
            with self.subTest(account=account):
                first = message("first", "line one\r\n.starts with a dot\r\n..two dots\r\nend\r\n")
                second = message("second", "a\r\nb\r\nc\r\n")
                self.deliver(account, first)
                self.deliver(account, second)
                p = self.pop3(account)
                resp, listing, _ = p.list()
                sizes = [int(line.split()[1]) for line in listing]
                self.assertEqual([line.split()[0] for line in listing], [b"1", b"2"])
                self.assertEqual(p.stat(), (2, sum(sizes)))
                self.assertEqual(resp, f"+OK 2 messages ({sum(sizes)} octets)".encode())
                for number, sent in [(1, first), (2, second)]:
                    resp, lines, octets = p.retr(number)
                    stored = body_of(lines)
                    self.assertEqual(strip_received(stored), sent)
                    # LIST gives the exact octets RETR sends (before dot-stuffing).
                    self.assertEqual(len(stored), sizes[number - 1])
                    self.assertEqual(resp, f"+OK {sizes[number - 1]} octets".encode())
                    self.assertEqual(p.list(number), f"+OK {number} {sizes[number - 1]}".encode())
                resp, lines, _ = p.top(2, 1)
                self.assertEqual(lines[-2:], [b"", b"a"])
                self.assertTrue(lines[0].startswith(b"Received: "))
                _, lines, _ = p.top(2, 0)
                self.assertEqual(lines[-2:], [b"Message-ID: <second@upstream.test>", b""])
                ids = self.uidl(p)
                self.assertEqual(len(set(ids)), 2)
                self.assertTrue(all(0x21 <= b <= 0x7E for uid in ids for b in uid))
                self.assertEqual(p.uidl(2), b"+OK 2 " + ids[1])
                self.assertEqual(p.dele(1), b"+OK Message 1 deleted")
                with self.assertRaisesRegex(poplib.error_proto, "already deleted"):
                    p.retr(1)
                self.assertEqual(p.stat(), (1, sizes[1]))
                self.assertEqual(p.quit(), b"+OK treehouse POP3 signing off (1 messages deleted)")
                p = self.pop3_when_free(account)
                self.assertEqual(p.stat(), (1, sizes[1]))
                self.assertEqual(self.uidl(p), [ids[1]])
                self.assertEqual(strip_received(body_of(p.retr(1)[1])), second)
                p.dele(1)
                p.quit()

    def test_rset_undoes_dele(self):
        account = self.ACCOUNTS["misc"][0]
        self.deliver(account, message("kept"))
        p = self.pop3(account)
        count, _ = p.stat()
        p.dele(count)
        self.assertEqual(p.stat()[0], count - 1)
        self.assertTrue(p.rset().startswith(b"+OK"))
        p.quit()
        p = self.pop3_when_free(account)
        self.assertEqual(p.stat()[0], count)
        p.quit()


class UidlTest(Pop3Server):
    STEMS = ("stable",)

    def test_uidl_is_stable_across_sessions_and_restarts(self):
        before = {}
        for account in self.ACCOUNTS["stable"]:
            for i in range(3):
                self.deliver(account, message(f"stable {i}"))
            p = self.pop3(account)
            before[account] = self.uidl(p)
            p.quit()
            p = self.pop3_when_free(account)
            self.assertEqual(self.uidl(p), before[account])
            p.quit()
        self.server.stop()
        self.server.start()
        for account, ids in before.items():
            p = self.pop3(account)
            self.assertEqual(self.uidl(p), ids)
            # A message delivered later gets a new id of its own.
            p.quit()
            self.deliver(account, message("stable later"))
            p = self.pop3_when_free(account)
            after = self.uidl(p)
            self.assertEqual(after[:3], ids)
            self.assertNotIn(after[3], ids)
            p.quit()


class LockTest(Pop3Server):
    STEMS = ("inuse", "drop")

    def test_a_second_session_gets_in_use(self):
        for account in self.ACCOUNTS["inuse"]:
            with self.subTest(account=account):
                self.deliver(account, message("locked"))
                first = self.pop3(account)
                # Whichever executors accept them, both sessions meet at the shard's owner.
                for _ in range(4):
                    with self.assertRaisesRegex(poplib.error_proto, r"^b'-ERR \[IN-USE\] "):
                        self.pop3(account)
                self.assertEqual(first.stat()[0], 1)
                first.quit()
                second = self.pop3_when_free(account)
                self.assertEqual(second.stat()[0], 1)
                second.quit()

    def test_dropped_connection_deletes_nothing_and_releases_the_lock(self):
        for account in self.ACCOUNTS["drop"]:
            with self.subTest(account=account):
                self.deliver(account, message("survivor"))
                p = self.pop3(account)
                p.dele(1)
                p.close()  # no QUIT
                p = self.pop3_when_free(account)
                self.assertEqual(p.stat()[0], 1)
                self.assertEqual(strip_received(body_of(p.retr(1)[1])), message("survivor"))
                p.quit()


class ImapTest(Pop3Server):
    STEMS = ("imap", "snap")

    def test_imap_sees_what_pop3_deleted(self):
        for account in self.ACCOUNTS["imap"]:
            with self.subTest(account=account):
                self.deliver(account, message("to delete"))
                self.deliver(account, message("to keep"))
                imap = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
                imap.login(account, PASSWORD)
                typ, data = imap.select("INBOX")
                self.assertEqual((typ, data), ("OK", [b"2"]))
                p = self.pop3(account)
                p.dele(1)
                self.assertEqual(p.quit(), b"+OK treehouse POP3 signing off (1 messages deleted)")
                imap.noop()
                typ, data = imap.search(None, "ALL")
                self.assertEqual(data, [b"1"])
                typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                self.assertIn(b"Subject: to keep", data[0][1])
                imap.logout()

    def test_message_expunged_by_imap_during_a_session(self):
        account = self.ACCOUNTS["snap"][1]
        self.deliver(account, message("going"))
        p = self.pop3(account)
        self.assertEqual(p.stat()[0], 1)
        imap = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        imap.login(account, PASSWORD)
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "\\Deleted")
        imap.expunge()
        imap.logout()
        # The session keeps its snapshot; the message itself is gone.
        self.assertEqual(p.stat()[0], 1)
        with self.assertRaisesRegex(poplib.error_proto, "no longer exists"):
            p.retr(1)
        p.dele(1)
        self.assertTrue(p.quit().startswith(b"+OK"))
        p = self.pop3_when_free(account)
        self.assertEqual(p.stat(), (0, 0))
        p.quit()

    def test_mail_delivered_during_a_session_appears_in_the_next(self):
        account = self.ACCOUNTS["snap"][0]
        p = self.pop3(account)
        count = p.stat()[0]
        self.deliver(account, message("late arrival"))
        self.assertEqual(p.stat()[0], count)
        p.quit()
        p = self.pop3_when_free(account)
        self.assertEqual(p.stat()[0], count + 1)
        p.quit()


class TlsTest(Pop3Server):
    STEMS = ("tls",)

    def test_pop3s_and_stls(self):
        for account in self.ACCOUNTS["tls"]:
            with self.subTest(account=account):
                self.deliver(account, message("over tls"))
                p = poplib.POP3_SSL("127.0.0.1", self.server.pop3s_port, timeout=30, context=client_context())
                self.assertIn(p.sock.version(), ("TLSv1.2", "TLSv1.3"))
                self.assertEqual(p.getwelcome(), b"+OK treehouse POP3 ready")
                self.assertNotIn("STLS", p.capa())
                p.user(account)
                p.pass_(PASSWORD)
                self.assertEqual(strip_received(body_of(p.retr(1)[1])), message("over tls"))
                p.quit()

                p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
                caps = p.capa()
                self.assertIn("STLS", caps)
                self.assertEqual(caps["SASL"], ["SCRAM-SHA-256", "PLAIN", "LOGIN"])
                self.assertEqual(caps["IMPLEMENTATION"], ["treehouse"])
                p.stls(client_context())
                self.assertNotIn("STLS", p.capa())
                p.user(account)
                p.pass_(PASSWORD)
                self.assertEqual(p.stat()[0], 1)
                p.dele(1)
                p.quit()

    def test_input_pipelined_after_stls_is_not_run(self):
        account = self.ACCOUNTS["tls"][0]
        with socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30) as raw:
            self.assertEqual(raw.recv(512), b"+OK treehouse POP3 ready\r\n")
            raw.sendall(f"STLS\r\nUSER {account}\r\n".encode())
            self.assertEqual(raw.recv(512), b"+OK Begin TLS negotiation\r\n")
            with client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                # Had the injected USER run, PASS would log in.
                tls.sendall(f"PASS {PASSWORD}\r\n".encode())
                self.assertEqual(tls.recv(512), b"-ERR Send USER first\r\n")
                tls.sendall(b"QUIT\r\n")
                self.assertEqual(tls.recv(512), b"+OK treehouse POP3 signing off\r\n")


class ProtocolTest(Pop3Server):
    STEMS = ("misc",)

    def chat(self, sock, line, expected):
        sock.sendall(line)
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, expected, line)

    def test_auth_plain_bad_input_and_failed_logins(self):
        account = self.ACCOUNTS["misc"][1]
        with socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30) as raw:
            raw.recv(512)
            self.chat(raw, b"HELO\r\n", b"-ERR Unknown command\r\n")
            self.chat(raw, b"X" * 5000 + b"\r\n", b"-ERR Line too long\r\n")
            self.chat(raw, b"STAT\r\n", b"-ERR Log in first\r\n")
            wrong = base64.b64encode(f"\0{account}\0wrong".encode())
            self.chat(raw, b"AUTH PLAIN " + wrong + b"\r\n", b"-ERR [AUTH] Authentication failed\r\n")
            self.chat(raw, b"AUTH PLAIN\r\n", b"+ \r\n")
            right = base64.b64encode(f"\0{account}\0{PASSWORD}".encode())
            self.chat(raw, right + b"\r\n", b"+OK Logged in, maildrop has 0 messages (0 octets)\r\n")
            self.chat(raw, b"RETR 1\r\n", b"-ERR No such message, only 0 messages in maildrop\r\n")
            self.chat(raw, b"QUIT\r\n", b"+OK treehouse POP3 signing off\r\n")
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
        p.user(account)
        with self.assertRaisesRegex(poplib.error_proto, r"\[AUTH\]"):
            p.pass_("wrong")
        p.quit()

    def test_auth_scram_sha_256_against_scramp(self):
        import scramp
        account = self.ACCOUNTS["misc"][0]
        for password, verified in ((PASSWORD, True), ("wrong", False)):
            client = scramp.ScramClient(["SCRAM-SHA-256"], account, password)
            with socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30) as raw:
                f = raw.makefile("rb")
                f.readline()
                first = base64.b64encode(client.get_client_first().encode())
                raw.sendall(b"AUTH SCRAM-SHA-256 " + first + b"\r\n")
                line = f.readline()
                self.assertTrue(line.startswith(b"+ "), line)
                client.set_server_first(base64.b64decode(line[2:].strip()).decode())
                raw.sendall(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
                line = f.readline()
                if not verified:
                    self.assertEqual(line, b"-ERR [AUTH] Authentication failed\r\n")
                    continue
                self.assertTrue(line.startswith(b"+ "), line)
                # scramp raises unless the server proves it knows the keys.
                client.set_server_final(base64.b64decode(line[2:].strip()).decode())
                raw.sendall(b"\r\n")
                self.assertTrue(f.readline().startswith(b"+OK Logged in"))
                raw.sendall(b"QUIT\r\n")
                self.assertTrue(f.readline().startswith(b"+OK"))

    def test_too_many_errors_close_the_connection(self):
        with socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30) as raw:
            raw.recv(512)
            raw.sendall(b"BOGUS\r\n" * 10)
            got = read_to_end(raw)
            self.assertEqual(got, b"-ERR Unknown command\r\n" * 10 + b"-ERR Too many errors, closing connection\r\n")


class LimitsTest(unittest.TestCase):
    """A server with one POP3 connection per executor and a one-second idle timeout."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(
            executors=EXECUTORS, shards=SHARDS, extra_toml="[pop3]\nmax_connections = 1\nidle_timeout_secs = 1\n"
        )
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_connections_over_the_limit_are_refused(self):
        # Each of the two executors admits one: of three connections, two share one.
        socks = [socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30) for _ in range(3)]
        try:
            greetings = [s.recv(512) for s in socks]
        finally:
            for s in socks:
                s.close()
        refused = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
        self.assertIn(refused, greetings)
        self.assertIn(b"+OK treehouse POP3 ready\r\n", greetings)
        self.assertEqual(set(greetings), {refused, b"+OK treehouse POP3 ready\r\n"})

    def test_silent_client_is_disconnected(self):
        # Named to run after the limit test, whose counts its connection would disturb.
        with socket.create_connection(("127.0.0.1", self.server.pop3_port), timeout=30) as s:
            self.assertEqual(s.recv(512), b"+OK treehouse POP3 ready\r\n")
            self.assertEqual(read_to_end(s), b"-ERR Disconnected for inactivity\r\n")


class PlaintextRefusedTest(unittest.TestCase):
    """A server that takes passwords only under TLS, even on loopback."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=EXECUTORS, shards=SHARDS, auth_toml='plaintext_login = "never"\n')
        cls.account = f"careful@{DOMAIN}"
        cls.server.add_user(cls.account, PASSWORD)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_user_and_plain_need_stls_first(self):
        p = poplib.POP3("127.0.0.1", self.server.pop3_port, timeout=30)
        caps = p.capa()
        self.assertNotIn("USER", caps)
        self.assertEqual(caps["SASL"], ["SCRAM-SHA-256"])
        with self.assertRaisesRegex(poplib.error_proto, r"^b'-ERR \[AUTH\] Plaintext"):
            p.user(self.account)
        p.stls(client_context())
        self.assertIn("USER", p.capa())
        p.user(self.account)
        p.pass_(PASSWORD)
        self.assertEqual(p.stat(), (0, 0))
        p.quit()


if __name__ == "__main__":
    unittest.main()
