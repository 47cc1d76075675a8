"""IMAP through the real binary: exact responses, SMTP delivery seen over IMAP, IDLE, limits,
sessions moving between executors, and a two-way sync with mbsync."""

import base64
import imaplib
import os
import re
import shutil
import smtplib
import socket
import subprocess
import time
import unittest

from harness import Server, shard_of

DOMAIN = "example.test"
LITERAL_MAX_BYTES = 1 << 20
LINE_MAX_BYTES = 8192

CAPABILITIES = (
    b"IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN "
    b"LIST-EXTENDED LIST-STATUS SPECIAL-USE ESEARCH SEARCHRES CONDSTORE QRESYNC UTF8=ACCEPT STATUS=SIZE "
    b"APPENDLIMIT="
    + str(LITERAL_MAX_BYTES).encode()
    + b" STARTTLS AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN"
)

SPECIAL_USE_LIST = [
    b'* LIST (\\HasNoChildren \\Archive) "/" Archive',
    b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts',
    b'* LIST (\\HasNoChildren) "/" INBOX',
    b'* LIST (\\HasNoChildren \\Junk) "/" Junk',
    b'* LIST (\\HasNoChildren \\Sent) "/" Sent',
    b'* LIST (\\HasNoChildren \\Trash) "/" Trash',
]


def message(subject, body="Hello world.\r\n", to="alice", extra_headers=""):
    return (
        f"From: Sender <sender@upstream.test>\r\nTo: {to}@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@upstream.test>\r\n{extra_headers}\r\n{body}"
    ).encode()


class Raw:
    """A plain IMAP connection that keeps every byte the server sends."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.response()
        self.tags = 0

    def close(self):
        self.sock.close()

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; unread: {self.buf!r}")
        self.buf += chunk

    def response(self):
        """One whole response line, literals included, without its final CRLF."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            at = self.buf.index(b"\r\n")
            line, self.buf = self.buf[:at], self.buf[at + 2 :]
            out += line
            literal = re.search(rb"\{(\d+)\}$", line)
            if not literal:
                return out
            size = int(literal.group(1))
            while len(self.buf) < size:
                self._fill()
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]

    def send(self, data):
        self.sock.sendall(data)

    def next_tag(self):
        self.tags += 1
        return f"t{self.tags}"

    def wait(self, tag):
        """Reads up to the tagged reply of `tag`: (untagged responses, tagged line)."""
        untagged = []
        while True:
            line = self.response()
            if line.startswith(tag.encode() + b" "):
                return untagged, line
            untagged.append(line)

    def cmd(self, text, expect=b"OK"):
        """Sends one command (str or bytes, no tag) and returns (untagged, tagged line)."""
        tag = self.next_tag()
        body = text.encode() if isinstance(text, str) else text
        self.send(tag.encode() + b" " + body + b"\r\n")
        untagged, tagged = self.wait(tag)
        if expect is not None:
            assert tagged.startswith(f"{tag} {expect.decode()}".encode()), (text, untagged, tagged)
        return untagged, tagged

    def login(self, user, password="secret"):
        return self.cmd(f"LOGIN {user} {password}")

    def append(self, mailbox, data, flags="", date=""):
        """APPEND with a synchronizing literal; returns the tagged line."""
        tag = self.next_tag()
        head = f"{tag} APPEND {mailbox}"
        if flags:
            head += f" ({flags})"
        if date:
            head += f' "{date}"'
        self.send(f"{head} {{{len(data)}}}\r\n".encode())
        cont = self.response()
        assert cont.startswith(b"+ "), cont
        self.send(data + b"\r\n")
        untagged, tagged = self.wait(tag)
        assert tagged.startswith(tag.encode() + b" OK"), (untagged, tagged)
        return tagged


def appenduid(tagged):
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged)
    assert m, tagged
    return int(m.group(1)), int(m.group(2))


class ImapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(
            executors=2,
            shards=8,
            imap_toml=f"max_line_bytes = {LINE_MAX_BYTES}\nmax_literal_bytes = {LITERAL_MAX_BYTES}\n",
        )
        names = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
            "oscar", "peggy", "trent", "victor",
        ]
        cls.users = {n: f"{n}@{DOMAIN}" for n in names}
        for address in cls.users.values():
            cls.server.add_user(address)
        # Accounts on each executor (for the move after login, and for IDLE).
        cls.per_executor, cls.idle_per_executor = {}, {}
        for i in range(200):
            address = f"exec{i}@{DOMAIN}"
            owner = shard_of(address, cls.server.shards) % cls.server.executors
            for chosen in (cls.per_executor, cls.idle_per_executor):
                if owner not in chosen:
                    chosen[owner] = address
                    cls.server.add_user(address)
                    break
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def raw(self, user=None):
        conn = Raw(self.server.imap_port)
        self.addCleanup(conn.close)
        if user:
            conn.login(self.users.get(user, user))
        return conn

    def imaplib(self, user=None):
        conn = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        self.addCleanup(lambda: conn.shutdown())
        if user:
            typ, _ = conn.login(self.users.get(user, user), "secret")
            self.assertEqual(typ, "OK")
        return conn

    def deliver(self, rcpt, msg):
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=60) as s:
            self.assertEqual(s.sendmail("sender@upstream.test", [rcpt], msg), {})

    # -- connection and login ---------------------------------------------------------------

    def test_capability(self):
        c = self.raw()
        self.assertEqual(c.greeting, b"* OK [CAPABILITY " + CAPABILITIES + b"] treehouse IMAP ready")
        untagged, _ = c.cmd("CAPABILITY")
        self.assertEqual(untagged, [b"* CAPABILITY " + CAPABILITIES])
        m = self.imaplib()
        for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "SPECIAL-USE", "AUTH=PLAIN",
                    "LIST-EXTENDED", "LIST-STATUS", "ESEARCH"):
            self.assertIn(cap, m.capabilities)

    def test_login_full_address_and_local_part(self):
        c = self.raw()
        _, tagged = c.cmd("LOGIN judy@example.test wrong", expect=b"NO")
        self.assertIn(b"[AUTHENTICATIONFAILED]", tagged)
        c.login("judy@example.test")
        c.append("INBOX", message("login check", to="judy"))
        bare = self.raw()
        _, tagged = bare.login("judy")
        self.assertEqual(tagged, b"t1 OK Logged in")
        untagged, _ = bare.cmd("STATUS INBOX (MESSAGES)")
        self.assertEqual(untagged, [b"* STATUS INBOX (MESSAGES 1)"])
        # imaplib too, with a quoted password.
        m = self.imaplib()
        self.assertEqual(m.login("judy", "secret")[0], "OK")
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))

    def test_authenticate_plain(self):
        m = self.imaplib()
        typ, data = m.authenticate("PLAIN", lambda _: b"\0bob@example.test\0secret")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        # SASL-IR: the initial response on the command line.
        c = self.raw()
        token = base64.b64encode(b"\0bob\0secret").decode()
        _, tagged = c.cmd(f"AUTHENTICATE PLAIN {token}")
        self.assertTrue(tagged.startswith(b"t1 OK"), tagged)
        c.cmd("SELECT INBOX")
        bad = self.raw()
        token = base64.b64encode(b"\0bob\0nope").decode()
        _, tagged = bad.cmd(f"AUTHENTICATE PLAIN {token}", expect=b"NO")
        self.assertIn(b"[AUTHENTICATIONFAILED]", tagged)

    # -- mailboxes ---------------------------------------------------------------------------

    def test_list_special_use_at_first_login(self):
        c = self.raw("carol")
        untagged, _ = c.cmd('LIST "" "*"')
        self.assertEqual(untagged, SPECIAL_USE_LIST)
        untagged, _ = c.cmd('LSUB "" "*"')
        self.assertEqual(untagged, [b"* LSUB" + line[6:] for line in SPECIAL_USE_LIST])
        untagged, _ = c.cmd('LIST "" ""')
        self.assertEqual(untagged, [b'* LIST (\\Noselect) "/" ""'])

    def test_create_rename_delete_subscribe(self):
        c = self.raw("dave")
        c.cmd("CREATE Projects/2024")
        untagged, _ = c.cmd('LIST "" "Projects*"')
        self.assertEqual(untagged, [b'* LIST (\\HasChildren) "/" Projects', b'* LIST (\\HasNoChildren) "/" Projects/2024'])
        _, tagged = c.cmd("CREATE Projects", expect=b"NO")
        self.assertIn(b"[ALREADYEXISTS]", tagged)
        c.cmd("RENAME Projects Work")
        untagged, _ = c.cmd('LIST "" "Work*"')
        self.assertEqual(untagged, [b'* LIST (\\HasChildren) "/" Work', b'* LIST (\\HasNoChildren) "/" Work/2024'])
        untagged, _ = c.cmd('LIST "" "Projects*"')
        self.assertEqual(untagged, [])
        c.cmd("SUBSCRIBE Work/2024")
        untagged, _ = c.cmd('LSUB "" "Work*"')
        self.assertEqual(untagged, [b'* LSUB (\\HasNoChildren) "/" Work/2024'])
        c.cmd("UNSUBSCRIBE Work/2024")
        untagged, _ = c.cmd('LSUB "" "Work*"')
        self.assertEqual(untagged, [])
        c.cmd("DELETE Work/2024")
        untagged, _ = c.cmd('LIST "" "Work*"')
        self.assertEqual(untagged, [b'* LIST (\\HasNoChildren) "/" Work'])
        _, tagged = c.cmd("DELETE Nothing", expect=b"NO")
        self.assertIn(b"[NONEXISTENT]", tagged)
        # A non-ASCII name in modified UTF-7 comes back as sent.
        c.cmd('CREATE "&AMk-t&AOk-"')
        untagged, _ = c.cmd('LIST "" "&AMk-t&AOk-"')
        self.assertEqual(untagged, [b'* LIST (\\HasNoChildren) "/" &AMk-t&AOk-'])
        c.cmd("DELETE Work")
        # RENAME INBOX moves its messages to a new mailbox and leaves INBOX empty; the
        # selected INBOX hears of the expunge before the tagged completion.
        c.append("INBOX", message("renamed inbox", to="dave"))
        c.cmd("SELECT INBOX")
        untagged, tagged = c.cmd("RENAME INBOX Old-Inbox")
        self.assertEqual((untagged, tagged), ([b"* 1 EXPUNGE"], f"t{c.tags} OK RENAME completed".encode()))
        untagged, _ = c.cmd("NOOP")
        self.assertEqual(untagged, [])
        untagged, _ = c.cmd("STATUS Old-Inbox (MESSAGES)")
        self.assertEqual(untagged, [b"* STATUS Old-Inbox (MESSAGES 1)"])
        untagged, _ = c.cmd("STATUS INBOX (MESSAGES)")
        self.assertEqual(untagged, [b"* STATUS INBOX (MESSAGES 0)"])

    def test_list_extended_and_list_status(self):
        c = self.raw("oscar")
        c.cmd("CREATE Projects/2024")
        c.cmd("SUBSCRIBE Projects/2024")
        c.cmd("SUBSCRIBE Ghost")
        c.cmd("UNSUBSCRIBE Junk")
        untagged, _ = c.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)')
        self.assertEqual(
            untagged,
            [
                b'* LIST (\\Subscribed \\HasNoChildren \\Archive) "/" Archive',
                b'* LIST (\\Subscribed \\HasNoChildren \\Drafts) "/" Drafts',
                b'* LIST (\\NonExistent \\Subscribed \\HasNoChildren) "/" Ghost',
                b'* LIST (\\Subscribed \\HasNoChildren) "/" INBOX',
                b'* LIST (\\HasChildren) "/" Projects ("CHILDINFO" ("SUBSCRIBED"))',
                b'* LIST (\\Subscribed \\HasNoChildren \\Sent) "/" Sent',
                b'* LIST (\\Subscribed \\HasNoChildren \\Trash) "/" Trash',
            ],
        )
        # Several patterns, each name once; the empty pattern is ignored.
        untagged, _ = c.cmd('LIST "" ("INBOX" "I*" "" "Projects/%") RETURN (SUBSCRIBED)')
        self.assertEqual(
            untagged,
            [b'* LIST (\\Subscribed \\HasNoChildren) "/" INBOX', b'* LIST (\\Subscribed \\HasNoChildren) "/" Projects/2024'],
        )
        untagged, _ = c.cmd('LIST (SPECIAL-USE) "" "*"')
        self.assertEqual([line.rsplit(b" ", 1)[1] for line in untagged], [b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash"])
        for bad in ('LIST (RECURSIVEMATCH) "" "*"', 'LIST (X-NOPE) "" "*"', 'LIST "" "*" RETURN (X-NOPE)'):
            c.cmd(bad, expect=b"BAD")
        # LIST-STATUS: the same STATUS as the STATUS command, after each selectable mailbox.
        c.append("INBOX", message("list status", to="oscar"), flags="\\Seen")
        c.append("INBOX", message("list status 2", to="oscar"))
        items = "MESSAGES UNSEEN SIZE DELETED UIDNEXT"
        status_inbox, _ = c.cmd(f"STATUS INBOX ({items})")
        status_sent, _ = c.cmd(f"STATUS Sent ({items})")
        untagged, _ = c.cmd(f'LIST "" (INBOX Sent Projects) RETURN (STATUS ({items}))')
        self.assertEqual(
            untagged,
            [b'* LIST (\\HasNoChildren) "/" INBOX'] + status_inbox
            + [b'* LIST (\\HasChildren) "/" Projects'] + [
                b"* STATUS Projects (MESSAGES 0 UNSEEN 0 SIZE 0 DELETED 0 UIDNEXT 1)"
            ]
            + [b'* LIST (\\HasNoChildren \\Sent) "/" Sent'] + status_sent,
        )
        self.assertRegex(status_inbox[0], rb"^\* STATUS INBOX \(MESSAGES 2 UNSEEN 1 SIZE \d+ DELETED 0 UIDNEXT 3\)$")
        # imaplib sends the extended forms as they are and files the answers by type.
        m = self.imaplib("oscar")
        typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', '"Ghost"')
        self.assertEqual(typ, "OK")
        self.assertEqual(m._untagged_response(typ, data, "LIST")[1], [b'(\\NonExistent \\Subscribed \\HasNoChildren) "/" Ghost'])
        typ, data = m._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS", "(MESSAGES))")
        self.assertEqual(typ, "OK")
        self.assertEqual(m._untagged_response(typ, data, "STATUS")[1], [b"INBOX (MESSAGES 2)"])

    def test_esearch(self):
        c = self.raw("peggy")
        for i, flags in enumerate(["\\Seen", "", "", "\\Seen", ""]):
            c.append("INBOX", message(f"esearch {i}", to="peggy"), flags=flags)
        c.cmd("SELECT INBOX")
        c.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        c.cmd("EXPUNGE")
        # Sequence numbers 1-4 are UIDs 2-5; UID 4 is \Seen.
        untagged, _ = c.cmd("SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN")
        self.assertEqual(untagged, [f'* ESEARCH (TAG "t{c.tags}") MIN 1 MAX 4 COUNT 3 ALL 1:2,4'.encode()])
        untagged, _ = c.cmd("UID SEARCH RETURN () UNSEEN")
        self.assertEqual(untagged, [f'* ESEARCH (TAG "t{c.tags}") UID ALL 2:3,5'.encode()])
        untagged, _ = c.cmd("UID SEARCH RETURN (MIN MAX ALL) SUBJECT nowhere")
        self.assertEqual(untagged, [f'* ESEARCH (TAG "t{c.tags}") UID'.encode()])
        untagged, _ = c.cmd("SEARCH RETURN (COUNT) SUBJECT nowhere")
        self.assertEqual(untagged, [f'* ESEARCH (TAG "t{c.tags}") COUNT 0'.encode()])
        c.cmd("SEARCH RETURN (BOGUS) ALL", expect=b"BAD")
        untagged, _ = c.cmd("SEARCH UNSEEN")
        self.assertEqual(untagged, [b"* SEARCH 1 2 4"])
        m = self.imaplib("peggy")
        m.select("INBOX")
        typ, data = m._simple_command("UID", "SEARCH", "RETURN", "(COUNT MAX)", "ALL")
        self.assertEqual(typ, "OK")
        esearch = m._untagged_response(typ, data, "ESEARCH")[1]
        self.assertEqual(len(esearch), 1)
        self.assertRegex(esearch[0], rb'^\(TAG "[A-Z0-9]+"\) UID MAX 5 COUNT 4$')

    def test_imap4rev2_and_searchres(self):
        c = self.raw("victor")
        for i in range(4):
            c.append("INBOX", message(f"rev2 {'odd' if i % 2 else 'even'} {i}", to="victor"))
        # Before ENABLE the answers are IMAP4rev1's.
        untagged, _ = c.cmd("SELECT INBOX")
        self.assertIn(b"* 0 RECENT", untagged)
        untagged, _ = c.cmd("ENABLE IMAP4rev2")
        self.assertEqual(untagged, [b"* ENABLED IMAP4rev2"])
        untagged, _ = c.cmd("SELECT INBOX")
        self.assertNotIn(b"* 0 RECENT", untagged)
        self.assertFalse(any(b"[UNSEEN " in u for u in untagged), untagged)
        self.assertEqual(untagged[-1], b'* LIST (\\HasNoChildren) "/" INBOX')
        # SAVE alone: nothing but the tagged OK; `$` then names UIDs 2 and 4.
        untagged, _ = c.cmd("SEARCH RETURN (SAVE) SUBJECT odd")
        self.assertEqual(untagged, [])
        untagged, _ = c.cmd("FETCH $ (UID)")
        self.assertEqual(untagged, [b"* 2 FETCH (UID 2)", b"* 4 FETCH (UID 4)"])
        # SEARCH without RETURN answers with ESEARCH under IMAP4rev2.
        untagged, _ = c.cmd("UID SEARCH $")
        self.assertEqual(untagged, [f'* ESEARCH (TAG "t{c.tags}") UID ALL 2,4'.encode()])
        c.cmd("STATUS INBOX (RECENT)", expect=b"BAD")
        c.cmd("SEARCH NEW", expect=b"BAD")
        # The same through imaplib.
        m = self.imaplib("victor")
        typ, data = m._simple_command("ENABLE", "IMAP4rev2")
        self.assertEqual(typ, "OK")
        self.assertEqual(m._untagged_response(typ, data, "ENABLED")[1], [b"IMAP4rev2"])
        m.select("INBOX")
        typ, data = m._simple_command("SEARCH", "RETURN", "(SAVE)", "SUBJECT", "even")
        self.assertEqual(typ, "OK")
        typ, data = m._simple_command("FETCH", "$", "(UID)")
        self.assertEqual(typ, "OK")
        self.assertEqual(m._untagged_response(typ, data, "FETCH")[1], [b"1 (UID 1)", b"3 (UID 3)"])

    def test_append_utf8(self):
        c = self.raw("trent")
        data = "From: Zoë <zoe@upstream.test>\r\nSubject: Grüße aus Köln\r\n\r\nHallo.\r\n".encode()
        tag = c.next_tag()
        c.send(f"{tag} APPEND INBOX UTF8 (~{{{len(data)}+}}\r\n".encode() + data + b")\r\n")
        self.assertEqual(c.wait(tag), ([], f"{tag} BAD APPEND UTF8 needs ENABLE UTF8=ACCEPT".encode()))
        untagged, _ = c.cmd("ENABLE UTF8=ACCEPT")
        self.assertEqual(untagged, [b"* ENABLED UTF8=ACCEPT"])
        tag = c.next_tag()
        c.send(f"{tag} APPEND INBOX UTF8 (~{{{len(data)}}}\r\n".encode())
        self.assertTrue(c.response().startswith(b"+ "))
        c.send(data + b")\r\n")
        untagged, tagged = c.wait(tag)
        self.assertEqual(tagged, f"{tag} OK [APPENDUID {appenduid(tagged)[0]} 1] APPEND completed".encode())
        c.cmd("SELECT INBOX")
        untagged, _ = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(untagged, [b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (len(data), len(data), data)])

    def test_status_agrees_with_select(self):
        c = self.raw("erin")
        sizes = []
        for i, flags in enumerate(["\\Seen", "", "\\Flagged"]):
            data = message(f"status {i}", to="erin")
            sizes.append(len(data))
            c.append("INBOX", data, flags=flags)
        untagged, _ = c.cmd("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)")
        self.assertEqual(len(untagged), 1)
        m = re.fullmatch(
            rb"\* STATUS INBOX \(MESSAGES 3 UIDNEXT 4 UIDVALIDITY (\d+) UNSEEN 2 SIZE (\d+) HIGHESTMODSEQ (\d+)\)",
            untagged[0],
        )
        self.assertTrue(m, untagged)
        uidvalidity, size, highest = (int(x) for x in m.groups())
        self.assertEqual(size, sum(sizes))
        untagged, tagged = c.cmd("SELECT INBOX")
        self.assertEqual(tagged, b"t6 OK [READ-WRITE] SELECT completed")
        self.assertIn(b"* 3 EXISTS", untagged)
        self.assertIn(f"* OK [UIDVALIDITY {uidvalidity}] UIDs valid".encode(), untagged)
        self.assertIn(b"* OK [UIDNEXT 4] Predicted next UID", untagged)
        self.assertIn(f"* OK [HIGHESTMODSEQ {highest}] Highest".encode(), untagged)
        untagged, _ = c.cmd("SEARCH UNSEEN")
        self.assertEqual(untagged, [b"* SEARCH 2 3"])
        untagged, _ = c.cmd("FETCH 1:* (RFC822.SIZE)")
        self.assertEqual(untagged, [f"* {i + 1} FETCH (RFC822.SIZE {s})".encode() for i, s in enumerate(sizes)])

    # -- messages ----------------------------------------------------------------------------

    def test_append_and_fetch(self):
        c = self.raw("frank")
        plain = message("fetch me", body="Hello world, this is the body.\r\n", to="frank")
        tagged = c.append("INBOX", plain, flags="\\Flagged $Work", date="01-Jan-2024 10:00:00 +0000")
        uidvalidity, uid = appenduid(tagged)
        self.assertEqual(tagged, f"t2 OK [APPENDUID {uidvalidity} 1] APPEND completed".encode())
        self.assertEqual(uid, 1)
        c.cmd("SELECT INBOX")
        untagged, _ = c.cmd("FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
        self.assertEqual(
            untagged,
            [
                b'* 1 FETCH (FLAGS ($Work \\Flagged) INTERNALDATE "01-Jan-2024 10:00:00 +0000" RFC822.SIZE '
                + str(len(plain)).encode()
                + b' ENVELOPE (NIL "fetch me" (("Sender" NIL "sender" "upstream.test")) (("Sender" NIL "sender"'
                b' "upstream.test")) (("Sender" NIL "sender" "upstream.test")) ((NIL NIL "frank" "example.test"))'
                b' NIL NIL NIL "<fetch-me@upstream.test>") BODYSTRUCTURE ("TEXT" "PLAIN" ("charset" "us-ascii")'
                b' NIL NIL "7BIT" 32 1 NIL NIL NIL NIL))'
            ],
        )
        untagged, _ = c.cmd("FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject Message-ID)])")
        fields = b"Subject: fetch me\r\nMessage-ID: <fetch-me@upstream.test>\r\n\r\n"
        self.assertEqual(
            untagged,
            [b"* 1 FETCH (BODY[HEADER.FIELDS (Subject Message-ID)] {%d}\r\n%s)" % (len(fields), fields)],
        )
        # PEEK left \Seen alone; BODY[1]<0.10> sets it.
        untagged, _ = c.cmd("FETCH 1 (FLAGS)")
        self.assertEqual(untagged, [b"* 1 FETCH (FLAGS ($Work \\Flagged))"])
        untagged, _ = c.cmd("FETCH 1 (BODY[1]<0.10>)")
        self.assertEqual(untagged, [b"* 1 FETCH (BODY[1]<0> {10}\r\nHello worl FLAGS ($Work \\Flagged \\Seen))"])
        untagged, _ = c.cmd("FETCH 1 (BODY[])")
        self.assertEqual(untagged, [b"* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(plain), plain)])
        # BINARY[] decodes the transfer encoding.
        encoded = (
            b"From: a@upstream.test\r\nSubject: b64\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(bytes(range(256)))
            + b"\r\n"
        )
        c.append("INBOX", encoded)
        untagged, _ = c.cmd("UID FETCH 2 (BINARY.PEEK[1])")
        self.assertEqual(len(untagged), 1)
        self.assertEqual(untagged[0], b"* 2 FETCH (UID 2 BINARY[1] ~{256}\r\n" + bytes(range(256)) + b")")
        m = self.imaplib("frank")
        m.select("INBOX")
        typ, data = m.fetch("1", "(BINARY[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], plain)

    def test_large_append_in_pieces(self):
        c = self.raw("heidi")
        c.cmd("CREATE Large")
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+!?\r\n"
        data = message("large", to="heidi") + line * ((LITERAL_MAX_BYTES - 4096) // len(line))
        tag = c.next_tag()
        c.send(f"{tag} APPEND Large {{{len(data)}}}\r\n".encode())
        self.assertTrue(c.response().startswith(b"+ "))
        for at in range(0, len(data), 7919):
            c.send(data[at : at + 7919])
        c.send(b"\r\n")
        untagged, tagged = c.wait(tag)
        self.assertTrue(tagged.startswith(f"{tag} OK [APPENDUID ".encode()), tagged)
        c.cmd("EXAMINE Large")
        untagged, _ = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
        self.assertEqual(untagged, [b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (len(data), len(data), data)])

    def test_smtp_delivery_fetched_byte_identical(self):
        sent = message("via smtp", body="Line one.\r\n..leading dot\r\nLast line.\r\n", to="grace")
        self.deliver(self.users["grace"], sent)
        c = self.raw("grace")
        c.cmd("SELECT INBOX")
        untagged, _ = c.cmd("FETCH 1 (RFC822.SIZE BODY.PEEK[])")
        m = re.match(rb"\* 1 FETCH \(RFC822\.SIZE (\d+) BODY\[\] \{(\d+)\}\r\n", untagged[0])
        self.assertTrue(m, untagged)
        body = untagged[0][m.end() : m.end() + int(m.group(2))]
        self.assertEqual(untagged[0][m.end() + len(body) :], b")")
        self.assertEqual(int(m.group(1)), len(body))
        self.assertTrue(body.startswith(b"Received: from "), body[:100])
        self.assertTrue(body.endswith(b"\r\n" + sent), body)
        # The stored message is the Received field and what was sent, nothing else.
        received = body[: len(body) - len(sent)]
        self.assertNotIn(b"\r\n", received.replace(b"\r\n ", b"").replace(b"\r\n\t", b"")[:-2])

    def test_store_flags(self):
        c = self.raw("heidi")
        for i in range(3):
            c.append("INBOX", message(f"store {i}", to="heidi"))
        c.cmd("SELECT INBOX")
        untagged, _ = c.cmd("STORE 1:2 +FLAGS (\\Flagged $Label)")
        self.assertEqual(untagged, [b"* 1 FETCH (FLAGS ($Label \\Flagged))", b"* 2 FETCH (FLAGS ($Label \\Flagged))"])
        untagged, _ = c.cmd("STORE 2 -FLAGS ($Label)")
        self.assertEqual(untagged, [b"* 2 FETCH (FLAGS (\\Flagged))"])
        untagged, _ = c.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
        self.assertEqual(untagged, [])
        untagged, _ = c.cmd("STORE 3 FLAGS (\\Answered)")
        self.assertEqual(untagged, [b"* 3 FETCH (FLAGS (\\Answered))"])
        untagged, _ = c.cmd("UID STORE 1 -FLAGS.SILENT (\\Flagged)")
        self.assertEqual(untagged, [])
        untagged, _ = c.cmd("FETCH 1:3 (FLAGS)")
        self.assertEqual(
            untagged,
            [b"* 1 FETCH (FLAGS ($Label))", b"* 2 FETCH (FLAGS (\\Flagged))", b"* 3 FETCH (FLAGS (\\Answered))"],
        )
        # A read-only EXAMINE refuses STORE.
        c.cmd("EXAMINE INBOX")
        c.cmd("STORE 1 +FLAGS (\\Seen)", expect=b"NO")

    def test_search(self):
        c = self.raw("ivan")
        c.append("INBOX", message("apples", body="Red fruit.\r\n", to="ivan"), flags="\\Seen")
        c.append("INBOX", message("pears", body="Green fruit, quite RIPE.\r\n", to="ivan"), flags="\\Flagged")
        c.append("INBOX", message("plums", body="Purple.\r\n", to="ivan", extra_headers="X-Tag: ripe\r\n"))
        c.cmd("SELECT INBOX")
        for query, expected in [
            ("SEARCH SEEN", b"* SEARCH 1"),
            ("SEARCH UNSEEN", b"* SEARCH 2 3"),
            ("SEARCH FLAGGED UNSEEN", b"* SEARCH 2"),
            ("SEARCH OR SEEN FLAGGED", b"* SEARCH 1 2"),
            ("SEARCH NOT FLAGGED", b"* SEARCH 1 3"),
            ("SEARCH HEADER Subject pea", b"* SEARCH 2"),
            ("SEARCH HEADER X-Tag ripe", b"* SEARCH 3"),
            ("SEARCH BODY ripe", b"* SEARCH 2"),
            ("SEARCH TEXT ripe", b"* SEARCH 2 3"),
            ("SEARCH FROM sender@upstream.test SUBJECT plums", b"* SEARCH 3"),
            ("SEARCH UID 2:*", b"* SEARCH 2 3"),
            ("SEARCH UID 1,3", b"* SEARCH 1 3"),
            ("UID SEARCH 2:3", b"* SEARCH 2 3"),
            ("UID SEARCH UID 3:*", b"* SEARCH 3"),
            ("SEARCH BODY nowhere", b"* SEARCH"),
        ]:
            untagged, _ = c.cmd(query)
            self.assertEqual(untagged, [expected], query)

    def test_copy_move_expunge(self):
        c = self.raw("mallory")
        for i in range(5):
            c.append("INBOX", message(f"move {i}", to="mallory"))
        untagged, _ = c.cmd("STATUS Archive (UIDVALIDITY)")
        archive_validity = int(re.search(rb"UIDVALIDITY (\d+)", untagged[0]).group(1))
        untagged, _ = c.cmd("STATUS Trash (UIDVALIDITY)")
        trash_validity = int(re.search(rb"UIDVALIDITY (\d+)", untagged[0]).group(1))
        c.cmd("SELECT INBOX")
        _, tagged = c.cmd("COPY 1:2 Archive")
        self.assertEqual(tagged, f"t{c.tags} OK [COPYUID {archive_validity} 1:2 1:2] COPY completed".encode())
        untagged, tagged = c.cmd("MOVE 2 Trash")
        self.assertEqual(untagged, [f"* OK [COPYUID {trash_validity} 2 1] Moved".encode(), b"* 2 EXPUNGE"])
        untagged, tagged = c.cmd("UID MOVE 4 Trash")
        self.assertEqual(untagged, [f"* OK [COPYUID {trash_validity} 4 2] Moved".encode(), b"* 3 EXPUNGE"])
        _, tagged = c.cmd("COPY 1 Nowhere", expect=b"NO")
        self.assertIn(b"[TRYCREATE]", tagged)
        # INBOX holds UIDs 1 3 5 now.
        untagged, _ = c.cmd("FETCH 1:* (UID)")
        self.assertEqual(untagged, [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)", b"* 3 FETCH (UID 5)"])
        c.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        untagged, _ = c.cmd("UID EXPUNGE 3")
        self.assertEqual(untagged, [b"* 2 EXPUNGE"])
        untagged, _ = c.cmd("EXPUNGE")
        self.assertEqual(untagged, [b"* 2 EXPUNGE", b"* 1 EXPUNGE"])
        untagged, _ = c.cmd("STATUS Trash (MESSAGES UIDNEXT)")
        self.assertEqual(untagged, [b"* STATUS Trash (MESSAGES 2 UIDNEXT 3)"])
        c.cmd("SELECT Archive")
        untagged, _ = c.cmd("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(len(untagged), 2)
        self.assertIn(b"Subject: move 0\r\n", untagged[0])
        self.assertIn(b"Subject: move 1\r\n", untagged[1])

    def test_condstore(self):
        c = self.raw("alice")
        for i in range(2):
            c.append("INBOX", message(f"modseq {i}"))
        untagged, _ = c.cmd("ENABLE CONDSTORE")
        self.assertEqual(untagged, [b"* ENABLED CONDSTORE"])
        untagged, _ = c.cmd("SELECT INBOX")
        highest = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", b"\n".join(untagged)).group(1))
        untagged, _ = c.cmd("FETCH 1:2 (UID MODSEQ)")
        modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", u).group(1)) for u in untagged]
        self.assertEqual(untagged, [b"* 1 FETCH (UID 1 MODSEQ (%d))" % modseqs[0], b"* 2 FETCH (UID 2 MODSEQ (%d))" % modseqs[1]])
        self.assertEqual(max(modseqs), highest)
        untagged, _ = c.cmd(f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) +FLAGS (\\Flagged)")
        self.assertEqual(len(untagged), 1)
        new = int(re.search(rb"MODSEQ \((\d+)\)", untagged[0]).group(1))
        self.assertGreater(new, highest)
        self.assertEqual(untagged, [b"* 1 FETCH (FLAGS (\\Flagged) MODSEQ (%d))" % new])
        # The old MODSEQ no longer matches: the STORE is refused with MODIFIED.
        untagged, tagged = c.cmd(f"STORE 1 (UNCHANGEDSINCE {modseqs[0]}) -FLAGS (\\Flagged)")
        self.assertEqual(tagged, b"t8 OK [MODIFIED 1] Conditional STORE failed")
        untagged, _ = c.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
        self.assertEqual(untagged, [b"* 1 FETCH (FLAGS (\\Flagged) MODSEQ (%d))" % new])
        untagged, _ = c.cmd(f"SEARCH MODSEQ {new}")
        self.assertEqual(untagged, [b"* SEARCH 1 (MODSEQ %d)" % new])
        untagged, _ = c.cmd("STATUS INBOX (HIGHESTMODSEQ)")
        # STATUS of the selected mailbox is allowed and agrees.
        self.assertEqual(untagged, [b"* STATUS INBOX (HIGHESTMODSEQ %d)" % new])

    def test_two_sessions_on_one_mailbox(self):
        one, two = self.raw("bob"), self.raw("bob")
        one.cmd("CREATE Shared")
        for i in range(3):
            one.append("Shared", message(f"shared {i}", to="bob"))
        one.cmd("SELECT Shared")
        two.cmd("SELECT Shared")
        one.cmd("STORE 2 +FLAGS.SILENT (\\Flagged)")
        untagged, _ = two.cmd("NOOP")
        self.assertEqual(untagged, [b"* 2 FETCH (FLAGS (\\Flagged))"])
        one.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        one.cmd("EXPUNGE")
        # FETCH by sequence number must not announce the expunge; NOOP does.
        untagged, _ = two.cmd("FETCH 3 (UID)")
        self.assertEqual(untagged[-1], b"* 3 FETCH (UID 3)")
        self.assertNotIn(b"* 1 EXPUNGE", untagged)
        untagged, _ = two.cmd("NOOP")
        self.assertIn(b"* 1 EXPUNGE", untagged)
        untagged, _ = two.cmd("FETCH 1:* (UID FLAGS)")
        self.assertEqual(untagged, [b"* 1 FETCH (UID 2 FLAGS (\\Flagged))", b"* 2 FETCH (UID 3 FLAGS ())"])
        one.append("Shared", message("shared new", to="bob"))
        untagged, _ = two.cmd("NOOP")
        self.assertEqual(untagged, [b"* 3 EXISTS"])
        # While idling, the other session's flag change and expunge arrive unasked.
        two.sock.settimeout(10)
        two.send(b"i1 IDLE\r\n")
        self.assertEqual(two.response(), b"+ idling")
        one.cmd("STORE 3 +FLAGS.SILENT (\\Seen)")
        self.assertEqual(two.response(), b"* 3 FETCH (FLAGS (\\Seen))")
        one.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.assertEqual(two.response(), b"* 1 FETCH (FLAGS (\\Deleted \\Flagged))")
        one.cmd("EXPUNGE")
        self.assertEqual(two.response(), b"* 1 EXPUNGE")
        two.send(b"DONE\r\n")
        self.assertEqual(two.wait("i1"), ([], b"i1 OK IDLE terminated"))
        untagged, _ = two.cmd("FETCH 1:* (UID FLAGS)")
        self.assertEqual(untagged, [b"* 1 FETCH (UID 3 FLAGS ())", b"* 2 FETCH (UID 4 FLAGS (\\Seen))"])

    def test_idle_announces_smtp_delivery(self):
        # Once per executor: the account's sessions live on the executor owning its shard.
        self.assertEqual(len(self.idle_per_executor), self.server.executors)
        for owner, address in sorted(self.idle_per_executor.items()):
            c = self.raw(address)
            c.cmd("SELECT INBOX")
            status = self.raw(address).cmd("STATUS INBOX (MESSAGES)")[0][0]
            exists = int(re.search(rb"MESSAGES (\d+)", status).group(1))
            c.send(b"i1 IDLE\r\n")
            self.assertEqual(c.response(), b"+ idling")
            started = time.monotonic()
            self.deliver(address, message(f"idle wake {owner}", to=address.split("@")[0]))
            c.sock.settimeout(10)
            line = c.response()
            elapsed = time.monotonic() - started
            print(f"\nIDLE on executor {owner}: EXISTS {elapsed * 1000:.1f} ms after the SMTP delivery began")
            self.assertEqual(line, f"* {exists + 1} EXISTS".encode())
            self.assertLess(elapsed, 10)
            c.send(b"DONE\r\n")
            untagged, tagged = c.wait("i1")
            self.assertEqual((untagged, tagged), ([], b"i1 OK IDLE terminated"))
            untagged, _ = c.cmd(f"FETCH {exists + 1} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            self.assertIn(f"Subject: idle wake {owner}".encode(), untagged[0])

    def test_bad_input_and_session_goes_on(self):
        c = self.raw()
        _, tagged = c.cmd("FROBNICATE", expect=b"BAD")
        c.cmd("NOOP")
        _, tagged = c.cmd("SELECT INBOX", expect=b"BAD")  # not authenticated yet
        # Before login a literal may be no longer than a command line.
        c.send(f"L0 LOGIN {{{LINE_MAX_BYTES + 1}}}\r\n".encode())
        self.assertEqual(c.wait("L0"), ([], f"L0 NO [TOOBIG] Literal exceeds the limit of {LINE_MAX_BYTES} bytes".encode()))
        c.login("alice")
        _, tagged = c.cmd("FETCH 1 (FLAGS)", expect=b"BAD")  # nothing selected
        # Over-long line.
        _, tagged = c.cmd("NOOP " + "x" * (LINE_MAX_BYTES + 100), expect=b"BAD")
        self.assertIn(b"[TOOBIG]", tagged)
        c.cmd("NOOP")
        # Synchronizing literal over the limit: refused before the data is sent.
        c.send(f"L1 APPEND INBOX {{{LITERAL_MAX_BYTES + 1}}}\r\n".encode())
        untagged, tagged = c.wait("L1")
        self.assertEqual(tagged, f"L1 NO [TOOBIG] Literal exceeds the limit of {LITERAL_MAX_BYTES} bytes".encode())
        c.cmd("NOOP")
        # Non-synchronizing literal over the limit: the data is read and thrown away.
        c.send(f"L2 APPEND INBOX {{{LITERAL_MAX_BYTES + 1}+}}\r\n".encode() + b"x" * (LITERAL_MAX_BYTES + 1) + b"\r\n")
        untagged, tagged = c.wait("L2")
        self.assertEqual(tagged, f"L2 BAD [TOOBIG] Literal exceeds the limit of {LITERAL_MAX_BYTES} bytes".encode())
        c.cmd("NOOP")
        # Invalid modified UTF-7 names.
        for name in ('"bad&name"', '"&AAA"', '"&Jjo"'):
            _, tagged = c.cmd(f"CREATE {name}", expect=None)
            self.assertRegex(tagged.decode(), r"^t\d+ (BAD|NO) ", name)
        untagged, _ = c.cmd('LIST "" "bad*"')
        self.assertEqual(untagged, [])
        c.cmd("UNSELECT", expect=b"BAD")
        c.cmd("CHECK", expect=b"BAD")  # selected state only
        untagged, tagged = c.cmd("LOGOUT")
        self.assertEqual((untagged, tagged), ([b"* BYE treehouse logging out"], f"t{c.tags} OK LOGOUT completed".encode()))

    def test_sessions_on_every_executor_with_pipelining(self):
        self.assertEqual(len(self.per_executor), self.server.executors)
        for owner, address in sorted(self.per_executor.items()):
            # Several connections, so that some are accepted by an executor that does not
            # own the account and must hand the session over with its buffered commands.
            for attempt in range(6):
                c = self.raw()
                subject = f"pipelined {owner} {attempt}"
                # Longer than a command line: accepted only because it follows the login.
                data = message(subject, to=address.split("@")[0], body="Pipelined.\r\n" * 1000)
                self.assertGreater(len(data), LINE_MAX_BYTES)
                if attempt % 2:
                    token = base64.b64encode(f"\0{address}\0secret".encode()).decode()
                    login = f"p1 AUTHENTICATE PLAIN {token}\r\n"
                else:
                    login = f"p1 LOGIN {address} secret\r\n"
                c.send(
                    (login + f"p2 SELECT INBOX\r\np3 APPEND INBOX {{{len(data)}+}}\r\n").encode()
                    + data
                    + b"\r\np4 NOOP\r\np5 UID SEARCH ALL\r\np6 LOGOUT\r\n"
                )
                got = {}
                untagged_all = []
                for tag in ("p1", "p2", "p3", "p4", "p5"):
                    untagged, tagged = c.wait(tag)
                    untagged_all.append(untagged)
                    got[tag] = tagged
                    self.assertTrue(tagged.startswith(tag.encode() + b" OK"), (owner, attempt, tag, tagged))
                self.assertIn(f"* {attempt} EXISTS".encode(), untagged_all[1])
                uid = appenduid(got["p3"])[1]
                self.assertEqual(uid, attempt + 1)
                self.assertEqual(untagged_all[4][-1], ("* SEARCH " + " ".join(str(u) for u in range(1, attempt + 2))).encode())
                untagged, tagged = c.wait("p6")
                self.assertEqual(untagged, [b"* BYE treehouse logging out"])


class ImapIdleTimeoutTest(unittest.TestCase):
    def test_silent_clients_are_logged_out(self):
        server = Server(executors=2, shards=4, imap_toml="idle_timeout_secs = 1\n")
        self.addCleanup(server.cleanup)
        server.add_user(f"alice@{DOMAIN}")
        server.start()
        quiet = Raw(server.imap_port, timeout=10)
        self.addCleanup(quiet.close)
        idling = Raw(server.imap_port, timeout=10)
        self.addCleanup(idling.close)
        idling.login("alice")
        idling.cmd("SELECT INBOX")
        idling.send(b"i1 IDLE\r\n")
        self.assertEqual(idling.response(), b"+ idling")
        for conn in (quiet, idling):
            self.assertEqual(conn.response(), b"* BYE Autologout; idle for too long")
            self.assertRaises(ConnectionError, conn.response)


def mbsync_config(root, port, user, maildir):
    return f"""IMAPAccount treehouse
Host 127.0.0.1
Port {port}
User {user}
Pass secret
SSLType None
AuthMechs LOGIN
Timeout 20

IMAPStore remote
Account treehouse

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Remove Both
SyncState *
Sync All
"""


def maildir_messages(maildir):
    """{(folder, Message-ID): [flags letters]} of every message in the Maildir tree."""
    out = {}
    for folder, dirs, files in os.walk(maildir):
        if os.path.basename(folder) not in ("cur", "new"):
            continue
        name = os.path.relpath(os.path.dirname(folder), maildir)
        for f in files:
            with open(os.path.join(folder, f), "rb") as fh:
                m = re.search(rb"(?im)^Message-ID: *(<[^>]+>)", fh.read())
            key = (name, m.group(1).decode() if m else None)
            out.setdefault(key, []).append(f.split(":2,")[1] if ":2," in f else "")
    return out


@unittest.skipUnless(shutil.which("mbsync"), "mbsync (isync) is not installed")
class MbsyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=8)
        cls.user = f"sync@{DOMAIN}"
        cls.server.add_user(cls.user)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def imap(self):
        c = Raw(self.server.imap_port)
        self.addCleanup(c.close)
        c.login(self.user)
        return c

    def mbsync(self):
        done = subprocess.run(
            ["mbsync", "-c", self.config, "-a"], capture_output=True, text=True, timeout=120
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        return done

    def server_messages(self):
        """{(folder, Message-ID): [flags]} over every mailbox of the account."""
        c = self.imap()
        untagged, _ = c.cmd('LIST "" "*"')
        out = {}
        for line in untagged:
            name = line.rsplit(b'"/" ', 1)[1].decode().strip('"')
            if b"\\Noselect" in line:
                continue
            selected, _ = c.cmd(f'EXAMINE "{name}"')
            if b"* 0 EXISTS" in selected:
                continue  # `1:*` in an empty mailbox is BAD (RFC 9051 §9)
            fetched, _ = c.cmd("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            for f in fetched:
                if b" FETCH " not in f:
                    continue
                mid = re.search(rb"Message-ID: *(<[^>]+>)", f, re.I)
                flags = re.search(rb"FLAGS \(([^)]*)\)", f).group(1).decode().split()
                out.setdefault((name, mid.group(1).decode() if mid else None), []).append(sorted(flags))
        return out

    def test_two_way_sync(self):
        tmp = self.server.tmp
        maildir = os.path.join(tmp, "maildir")
        os.makedirs(maildir)
        self.config = os.path.join(tmp, "mbsyncrc")
        with open(self.config, "w") as f:
            f.write(mbsync_config(tmp, self.server.imap_port, self.user, maildir))
        # Mail on the server: two delivered over SMTP, one appended to Sent.
        with smtplib.SMTP("127.0.0.1", self.server.smtp_port, timeout=60) as s:
            for i in range(3):
                s.sendmail("sender@upstream.test", [self.user], message(f"sync in {i}", to="sync"))
        c = self.imap()
        c.append("Sent", message("sync sent", to="sync"), flags="\\Seen")
        c.close()

        self.mbsync()
        local = maildir_messages(maildir)
        remote = self.server_messages()
        self.assertEqual(set(local), set(remote))
        self.assertIn(("INBOX", "<sync-in-0@upstream.test>"), local)
        self.assertIn(("Sent", "<sync-sent@upstream.test>"), local)

        # Server side: flag one message, delete another.
        c = self.imap()
        c.cmd("SELECT INBOX")
        untagged, _ = c.cmd('UID SEARCH HEADER Message-ID "<sync-in-0@upstream.test>"')
        uid0 = untagged[0].split()[-1].decode()
        untagged, _ = c.cmd('UID SEARCH HEADER Message-ID "<sync-in-1@upstream.test>"')
        uid1 = untagged[0].split()[-1].decode()
        c.cmd(f"UID STORE {uid0} +FLAGS.SILENT (\\Flagged)")
        c.cmd(f"UID STORE {uid1} +FLAGS.SILENT (\\Deleted)")
        c.cmd(f"UID EXPUNGE {uid1}")
        c.cmd("CREATE Remote-Folder")
        c.append("Remote-Folder", message("remote folder", to="sync"))
        c.close()

        # Local side: mark one read, delete another, add a folder with a message.
        inbox_cur = os.path.join(maildir, "INBOX", "cur")
        inbox_new = os.path.join(maildir, "INBOX", "new")
        by_id = {}
        for d in (inbox_cur, inbox_new):
            for f in os.listdir(d):
                with open(os.path.join(d, f), "rb") as fh:
                    mid = re.search(rb"(?im)^Message-ID: *(<[^>]+>)", fh.read()).group(1).decode()
                by_id[mid] = os.path.join(d, f)
        path2 = by_id["<sync-in-2@upstream.test>"]
        base = os.path.basename(path2).split(":2,")[0]
        os.rename(path2, os.path.join(inbox_cur, base + ":2,S"))
        os.remove(os.path.join(maildir, "Sent", "cur", os.listdir(os.path.join(maildir, "Sent", "cur"))[0]))
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, "Local-Folder", sub))
        with open(os.path.join(maildir, "Local-Folder", "new", "1700000000.1.host"), "wb") as fh:
            fh.write(message("local folder", to="sync"))

        self.mbsync()
        self.mbsync()
        local = maildir_messages(maildir)
        remote = self.server_messages()
        expected = {
            ("INBOX", "<sync-in-0@upstream.test>"),
            ("INBOX", "<sync-in-2@upstream.test>"),
            ("Remote-Folder", "<remote-folder@upstream.test>"),
            ("Local-Folder", "<local-folder@upstream.test>"),
        }
        self.assertEqual(set(local), expected, local)
        self.assertEqual(set(remote), expected, remote)
        for key, copies in list(local.items()) + list(remote.items()):
            self.assertEqual(len(copies), 1, (key, copies))
        self.assertEqual(remote[("INBOX", "<sync-in-0@upstream.test>")], [["\\Flagged"]])
        self.assertEqual(remote[("INBOX", "<sync-in-2@upstream.test>")], [["\\Seen"]])
        self.assertEqual(local[("INBOX", "<sync-in-0@upstream.test>")], ["F"])
        self.assertEqual(local[("INBOX", "<sync-in-2@upstream.test>")], ["S"])


class ImapListLevelsAndOldnameTest(unittest.TestCase):
    """LSUB and LIST (SUBSCRIBED RECURSIVEMATCH) report the levels above subscribed names
    (RFC 3501 §6.3.9, RFC 5258 §3.5); IMAP4rev2 names a normalized mailbox with OLDNAME
    (RFC 9051 §6.3.9.7)."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(executors=2, shards=4)
        for name in ("lsub", "oldname"):
            cls.server.add_user(f"{name}@{DOMAIN}")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def imaplib(self, user):
        conn = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=30)
        self.addCleanup(lambda: conn.shutdown())
        typ, _ = conn.login(f"{user}@{DOMAIN}", "secret")
        self.assertEqual(typ, "OK")
        return conn

    def test_lsub_percent_lists_unsubscribed_levels_as_noselect(self):
        m = self.imaplib("lsub")
        for typ, _ in (m.create("foo/bar"), m.subscribe("foo/bar"), m.subscribe("ghost/x")):
            self.assertEqual(typ, "OK")
        defaults = [line[len(b"* LIST "):] for line in SPECIAL_USE_LIST]
        typ, data = m.lsub('""', "%")
        self.assertEqual(typ, "OK")
        self.assertEqual(
            data,
            defaults + [b'(\\Noselect \\HasChildren) "/" foo', b'(\\Noselect \\HasNoChildren) "/" ghost'],
        )
        typ, data = m.lsub('""', "foo/%")
        self.assertEqual(data, [b'(\\HasNoChildren) "/" foo/bar'])
        typ, data = m._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "f%")
        self.assertEqual(typ, "OK")
        self.assertEqual(
            m._untagged_response(typ, data, "LIST")[1],
            [b'(\\HasChildren) "/" foo ("CHILDINFO" ("SUBSCRIBED"))'],
        )
        typ, data = m._simple_command("LIST", "(SUBSCRIBED)", '""', "g*")
        self.assertEqual(
            m._untagged_response(typ, data, "LIST")[1],
            [b'(\\NonExistent \\Subscribed \\HasNoChildren) "/" ghost/x'],
        )
        # Once subscribed itself, the level is listed as itself.
        m.subscribe("foo")
        typ, data = m.lsub('""', "f%")
        self.assertEqual(data, [b'(\\HasChildren) "/" foo'])

    def test_imap4rev2_names_normalized_mailboxes_with_oldname(self):
        m = self.imaplib("oldname")
        # IMAP4rev1: no unsolicited LIST.
        typ, _ = m.create("inbox/one")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.response("LIST"), ("LIST", [None]))
        typ, _ = m.enable("IMAP4rev2")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.response("ENABLED"), ("ENABLED", [b"IMAP4rev2"]))
        steps = [
            (lambda: m.create("Inbox/Sub"), b'(\\HasNoChildren) "/" INBOX/Sub ("OLDNAME" (Inbox/Sub))'),
            (lambda: m.create("INBOX/two"), None),
            (lambda: m.rename("inbox/Sub", "Work"), b'(\\HasNoChildren) "/" Work ("OLDNAME" (inbox/Sub))'),
            (lambda: m.rename("Work", "inbox/Work"), b'(\\HasNoChildren) "/" INBOX/Work ("OLDNAME" (Work))'),
            (lambda: m.rename("INBOX/Work", "Done"), None),
            (lambda: m.delete("iNbOx/two"), b'(\\NonExistent \\HasNoChildren) "/" INBOX/two ("OLDNAME" (iNbOx/two))'),
        ]
        for command, oldname in steps:
            typ, _ = command()
            self.assertEqual(typ, "OK")
            self.assertEqual(m.response("LIST"), ("LIST", [oldname]))
        # A refused command announces nothing.
        typ, _ = m.delete("inbox/two")
        self.assertEqual(typ, "NO")
        self.assertEqual(m.response("LIST"), ("LIST", [None]))
        typ, data = m.list('""', "*")
        self.assertEqual(typ, "OK")
        names = [line.rsplit(b" ", 1)[1] for line in data]
        self.assertIn(b"INBOX/one", names)
        self.assertIn(b"Done", names)
        for gone in (b"INBOX/Sub", b"Work", b"INBOX/Work", b"INBOX/two", b"inbox/one"):
            self.assertNotIn(gone, names)


if __name__ == "__main__":
    unittest.main()
