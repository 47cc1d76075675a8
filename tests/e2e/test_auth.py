"""Authentication: SCRAM-SHA-256 checked by an independent client (Python's scramp),
throttling of password guessing, and one certificate per host name chosen by SNI."""

import base64
import imaplib
import os
import signal
import socket
import ssl
import subprocess
import time
import unittest

import scramp

from harness import Server, client_context

DOMAIN = "example.test"


class ScramTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=4, auth_toml="failure_delay_ms = 0\n")
        cls.server.add_user(f"sam@{DOMAIN}", "correct horse")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def scram(self, m, user, password):
        """Runs SCRAM by hand over imaplib's connection; returns (tagged line, verified)."""
        client = scramp.ScramClient(["SCRAM-SHA-256"], user, password)
        first = base64.b64encode(client.get_client_first().encode()).decode()
        tag = m._new_tag().decode()
        m.send(f"{tag} AUTHENTICATE SCRAM-SHA-256 {first}\r\n".encode())
        line = m.readline().decode()
        self.assertTrue(line.startswith("+ "), line)
        client.set_server_first(base64.b64decode(line[2:].strip()).decode())
        final = base64.b64encode(client.get_client_final().encode()).decode()
        m.send(f"{final}\r\n".encode())
        line = m.readline().decode()
        if not line.startswith("+ "):
            return line, False
        client.set_server_final(base64.b64decode(line[2:].strip()).decode())
        m.send(b"\r\n")
        return m.readline().decode(), True

    def test_scram_sha_256_against_scramp_in_the_clear_and_over_tls(self):
        plain = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        self.assertIn("AUTH=SCRAM-SHA-256", plain.capabilities)
        tls = imaplib.IMAP4_SSL("127.0.0.1", self.server.imaps_port, ssl_context=client_context(), timeout=30)
        for m in (plain, tls):
            line, verified = self.scram(m, f"sam@{DOMAIN}", "correct horse")
            self.assertTrue(verified, "scramp accepted the server signature")
            self.assertRegex(line, r"^\S+ OK ")
            m.state = "AUTH"
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK")
            m.logout()

    def test_scram_with_a_wrong_password_or_unknown_user_fails(self):
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        line, verified = self.scram(m, f"sam@{DOMAIN}", "battery staple")
        self.assertFalse(verified)
        self.assertRegex(line, r"^\S+ NO \[AUTHENTICATIONFAILED\]")
        # A bare local part resolves in the default domain, as for LOGIN.
        line, verified = self.scram(m, "sam", "correct horse")
        self.assertTrue(verified)
        self.assertRegex(line, r"^\S+ OK ")
        m.logout()
        # An unknown user runs the whole exchange and fails as a wrong password does,
        # with the same salt each time (no way to tell unknown users apart).
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        salts = set()
        for _ in range(2):
            client = scramp.ScramClient(["SCRAM-SHA-256"], f"nobody@{DOMAIN}", "x")
            first = base64.b64encode(client.get_client_first().encode()).decode()
            m.send(f"z1 AUTHENTICATE SCRAM-SHA-256 {first}\r\n".encode())
            line = m.readline().decode()
            self.assertTrue(line.startswith("+ "), line)
            server_first = base64.b64decode(line[2:].strip()).decode()
            salts.add([f for f in server_first.split(",") if f.startswith("s=")][0])
            client.set_server_first(server_first)
            m.send(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
            self.assertTrue(m.readline().startswith(b"z1 NO [AUTHENTICATIONFAILED]"))
        self.assertEqual(len(salts), 1)
        m.logout()

    def test_login_mechanism_and_changed_password_keys(self):
        m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        answers = iter([f"sam@{DOMAIN}".encode(), b"correct horse"])
        typ, _ = m.authenticate("LOGIN", lambda challenge: next(answers))
        self.assertEqual(typ, "OK")
        m.logout()
        self.server.add_user(f"sue@{DOMAIN}", "first")
        self.server.admin("user", "passwd", f"sue@{DOMAIN}", "--password", "second")
        deadline = time.time() + 10
        while True:
            m = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
            line, verified = self.scram(m, f"sue@{DOMAIN}", "second")
            m.shutdown()
            if verified or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertTrue(verified, "the directory reload brings the new SCRAM keys")
        self.assertRegex(line, r"^\S+ OK ")


class ThrottleTest(unittest.TestCase):
    def test_password_guessing_is_slowed_down_and_counted(self):
        server = Server(executors=2, shards=4,
                        auth_toml="failure_delay_ms = 200\nfailure_delay_max_ms = 800\n")
        try:
            server.add_user(f"vic@{DOMAIN}", "right")
            server.start()
            waits = []
            for guess in range(5):
                m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
                started = time.monotonic()
                with self.assertRaises(imaplib.IMAP4.error):
                    m.login(f"vic@{DOMAIN}", f"guess{guess}")
                waits.append(time.monotonic() - started)
                m.shutdown()
            # Failures 1..4 before attempts 2..5 make them wait 200, 400, 800, 800 ms at least
            # (lower bounds set by the server; a slow machine only adds to them).
            self.assertGreaterEqual(sum(waits[1:]), 2.2, waits)
            self.assertGreaterEqual(waits[4], 0.8, waits)
            # The right password still works, after its wait, and clears the record.
            m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=30)
            self.assertEqual(m.login(f"vic@{DOMAIN}", "right")[0], "OK")
            m.logout()
            log = server.log()
            self.assertIn("(5 failures since start,", log)
            self.assertNotIn("guess", log, "passwords never reach the log")
        finally:
            server.cleanup()


def make_cert(folder, name):
    cert, key = os.path.join(folder, f"{name}.crt"), os.path.join(folder, f"{name}.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    return cert, key


def served_name(port, sni):
    """The common name of the certificate the server presents for `sni`."""
    ctx = client_context()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, text=True,
                         capture_output=True, check=True).stdout
    return out.strip().split("CN")[-1].lstrip(" =")


class SniTest(unittest.TestCase):
    def test_each_host_name_gets_its_certificate_and_sighup_reloads_them(self):
        server = Server(executors=2, shards=4)
        try:
            folder = os.path.join(server.tmp, "certs")
            os.makedirs(folder)
            a = make_cert(folder, "mail.a.test")
            b = make_cert(folder, "mail.b.test")
            star = make_cert(folder, "wild.c.test")
            with open(server.config_path, "a") as f:
                f.write("\n[tls]\nsni = [\n")
                for name, (cert, key) in [("mail.a.test", a), ("mail.b.test", b), ("*.c.test", star)]:
                    f.write(f'  {{ name = "{name}", cert_file = "{cert}", key_file = "{key}" }},\n')
                f.write("]\n")
            server.add_user(f"sni@{DOMAIN}", "pw")
            server.start()
            self.assertEqual(served_name(server.imaps_port, "mail.a.test"), "mail.a.test")
            self.assertEqual(served_name(server.imaps_port, "MAIL.B.TEST"), "mail.b.test")
            self.assertEqual(served_name(server.imaps_port, "x.c.test"), "wild.c.test")
            # Unknown names get the default (generated) certificate.
            default = subprocess.run(
                ["openssl", "x509", "-noout", "-subject", "-in",
                 os.path.join(server.data_dir, "tls", "self-signed.crt")],
                text=True, capture_output=True, check=True).stdout.strip().split("CN")[-1].lstrip(" =")
            self.assertEqual(served_name(server.imaps_port, "other.test"), default)
            # A session open across SIGHUP keeps working; new handshakes see the new file.
            open_session = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=client_context(),
                                             timeout=30)
            open_session.login(f"sni@{DOMAIN}", "pw")
            os.replace(make_cert(folder, "renewed.a.test")[0], a[0])
            os.replace(os.path.join(folder, "renewed.a.test.key"), a[1])
            server.proc.send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while served_name(server.imaps_port, "mail.a.test") != "renewed.a.test" and time.time() < deadline:
                time.sleep(0.1)
            self.assertEqual(served_name(server.imaps_port, "mail.a.test"), "renewed.a.test")
            self.assertEqual(open_session.select("INBOX")[0], "OK")
            open_session.logout()
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
