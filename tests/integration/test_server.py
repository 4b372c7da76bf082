"""test_server.py - the test mail server alone (no shim, no tlspolicyd)

These check tests/server/mailserver.py and the harness with real clients
(smtplib, imaplib, poplib, curl, swaks, openssl), so that when a test with the
module fails, the server is not the suspect.
"""

import base64
import imaplib
import os
import poplib
import re
import smtplib
import ssl
import unittest
import uuid

import harness


def message(subject, body="Hello.\r\n"):
    return ("From: a@x\r\nTo: b@mail.test\r\nSubject: %s\r\n\r\n%s" % (subject, body)).encode()


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


class ServerCase(harness.TestCase):
    """one daemonless server per class, on an SMTP, an IMAP and a POP3 port"""

    timeout = 60
    setup_args = {}

    @classmethod
    def setUpClass(cls):
        cls.s = harness.Setup({"smtp": "smtp", "imap": "imap", "pop3": "pop3"}, daemonless=True,
                              **cls.setup_args)
        cls.addClassCleanup(cls.s.close)

    def deliver(self, subject=None, body="Hello.\r\n"):
        """send a message through SMTP; returns its subject"""
        subject = subject or "test %s" % uuid.uuid4().hex
        c = self.s.smtp("smtp")
        c.sendmail("a@x", ["b@mail.test"], message(subject, body))
        c.quit()
        return subject

    def stored(self, subject):
        hits = [m for m in self.s.messages() if ("Subject: %s\r\n" % subject).encode() in m]
        self.assertEqual(len(hits), 1, "message %r stored once" % subject)
        return hits[0]


class SMTPTest(ServerCase):
    def test_greeting_and_ehlo(self):
        r = self.s.raw("smtp")
        self.assertEqual(r.read_line(), b"220 mail.test ESMTP tlspolicy-test\r\n")
        r.sendline("EHLO client.test")
        ehlo = r.read_until(re.compile(rb"^250 .*\r\n", re.M))
        self.assertEqual(ehlo, b"250-mail.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
                               b"250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n"
                               b"250-8BITMIME\r\n250 CHUNKING\r\n")
        r.sendline("HELO client.test")
        self.assertEqual(r.read_line(), b"250 mail.test\r\n")
        r.sendline("QUIT")
        self.assertEqual(r.read_all(), b"221 2.0.0 Bye\r\n")

    def test_ehlo_features_smtplib(self):
        c = self.s.smtp("smtp")
        code, _ = c.ehlo()
        self.assertEqual(code, 250)
        self.assertEqual(c.esmtp_features["size"], "10485760")
        self.assertEqual(c.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
        for f in ("pipelining", "8bitmime", "chunking"):
            self.assertIn(f, c.esmtp_features)
        self.assertFalse(c.has_extn("starttls"), "a plaintext daemon offers no STARTTLS")
        c.quit()

    def test_auth_plain_and_sendmail_relay(self):
        c = self.s.smtp("smtp")
        self.assertEqual(c.login("test", "secret")[0], 235)
        subject = "relay %s" % uuid.uuid4().hex
        self.assertEqual(c.sendmail("a@x", ["someone@elsewhere.example"], message(subject)), {})
        c.quit()
        self.assertEqual(self.stored(subject), message(subject))
        self.s.wait_for("auth", proto="smtp", user="test", mech="PLAIN", ok=True)
        msg = self.s.wait_for("message", where=lambda e: e["rcpt"] == ["someone@elsewhere.example"])
        self.assertTrue(os.path.exists(msg["file"]))

    def test_auth_plain_with_continuation(self):
        r = self.s.raw("smtp")
        r.read_line()
        r.sendline("EHLO c")
        r.read_until("250 CHUNKING\r\n")
        r.sendline("AUTH PLAIN")
        self.assertEqual(r.read_line(), b"334 \r\n")
        r.sendline(plain("test", "secret"))
        self.assertEqual(r.read_line(), b"235 2.7.0 Authentication successful\r\n")
        r.sendline("AUTH PLAIN " + plain("test", "secret"))
        self.assertTrue(r.read_line().startswith(b"503 "), "AUTH twice is refused")

    def test_auth_login(self):
        c = self.s.smtp("smtp")
        c.ehlo()
        c.user, c.password = "test", "secret"
        self.assertEqual(c.auth("LOGIN", c.auth_login, initial_response_ok=False)[0], 235)
        c.quit()
        r = self.s.raw("smtp")
        r.read_line()
        r.sendline("EHLO c")
        r.read_until("250 CHUNKING\r\n")
        r.sendline("AUTH LOGIN " + base64.b64encode(b"test").decode())   # initial response
        self.assertEqual(r.read_line(), b"334 UGFzc3dvcmQ6\r\n")
        r.sendline(base64.b64encode(b"secret").decode())
        self.assertTrue(r.read_line().startswith(b"235 "))

    def test_auth_failure_and_abort(self):
        c = self.s.smtp("smtp")
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            c.login("test", "wrong")
        self.assertEqual(cm.exception.smtp_code, 535)
        self.s.wait_for("auth", proto="smtp", ok=False)
        code, _ = c.docmd("AUTH", "PLAIN")
        self.assertEqual(code, 334)
        self.assertEqual(c.docmd("*")[0], 501)
        self.assertEqual(c.docmd("AUTH", "PLAIN !!notbase64")[0], 535)
        self.assertEqual(c.docmd("AUTH", "CRAM-MD5")[0], 535)

    def test_relay_denied_without_auth(self):
        c = self.s.smtp("smtp")
        c.ehlo()
        c.mail("a@x")
        self.assertEqual(c.rcpt("someone@elsewhere.example")[0], 554)
        self.assertEqual(c.rcpt("b@mail.test")[0], 250)
        self.assertEqual(c.data(message("local"))[0], 250)
        c.quit()

    def test_command_order_errors(self):
        r = self.s.raw("smtp")
        r.read_line()
        for cmd, code in (("MAIL FROM:<a@x>", b"503"), ("EHLO c", b"250"), ("RCPT TO:<b@mail.test>", b"503"),
                          ("DATA", b"554"), ("MAIL FROM:<a@x>", b"250"), ("MAIL FROM:<a@x>", b"503"),
                          ("MAIL FROM:<a@x> SIZE=99999999", b"503"), ("RSET", b"250"),
                          ("MAIL FROM:<a@x> SIZE=99999999", b"552"), ("MAIL FROM:a@x", b"501"),
                          ("NOOP", b"250"), ("VRFY test", b"252"), ("XYZZY", b"502"), ("", b"502"),
                          ("BDAT x", b"501"), ("STARTTLS", b"502")):
            r.sendline(cmd)
            reply = r.read_until(re.compile(rb"^\d{3} .*\r\n", re.M))
            self.assertTrue(reply.startswith(code), "%r -> %r, wanted %r" % (cmd, reply, code))

    def test_pipelining_one_write(self):
        r = self.s.raw("smtp")
        subject = "pipelined %s" % uuid.uuid4().hex
        r.send(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@mail.test>\r\nRCPT TO:<c@mail.test>\r\nDATA\r\n"
               + message(subject) + b".\r\nNOOP\r\nQUIT\r\n")
        codes = [line[:4] for line in r.read_all().split(b"\r\n") if line and line[3:4] == b" "]
        self.assertEqual(codes, [b"220 ", b"250 ", b"250 ", b"250 ", b"250 ", b"354 ", b"250 ", b"250 ", b"221 "])
        self.assertEqual(self.stored(subject), message(subject))
        conn = self.s.wait_for("message", where=lambda e: e["rcpt"] == ["b@mail.test", "c@mail.test"])["conn"]
        self.assertEqual(self.s.lines("smtp", conn)[:4],
                         ["EHLO c", "MAIL FROM:<a@x>", "RCPT TO:<b@mail.test>", "RCPT TO:<c@mail.test>"])

    def test_data_dot_unstuffing(self):
        subject = "dots %s" % uuid.uuid4().hex
        body = b"..leading dot\r\n"
        r = self.s.raw("smtp")
        r.send(b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@mail.test>\r\nDATA\r\n")
        self.assertEqual(r.read_until("354 End data with <CR><LF>.<CR><LF>\r\n"),
                         b"220 mail.test ESMTP tlspolicy-test\r\n250 mail.test\r\n250 2.1.0 Ok\r\n"
                         b"250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        r.send(message(subject).replace(b"Hello.\r\n", b"") + body + b"...\r\nend\r\n.\r\n")
        self.assertRegex(r.read_until("\r\n", 10).decode(), r"^250 2\.0\.0 Ok: queued as \d+")
        self.assertTrue(self.stored(subject).endswith(b"\r\n.leading dot\r\n..\r\nend\r\n"))
        conn = self.s.wait_for("message", where=lambda e: e["size"] > 0 and subject in open(e["file"]).read())["conn"]
        body_events = [e["data"] for e in self.s.events("line", conn=conn) if e.get("body")]
        self.assertEqual(body_events[-4:], ["..leading dot\r\n", "...\r\n", "end\r\n", ".\r\n"])

    def test_bdat(self):
        subject = "bdat %s" % uuid.uuid4().hex
        msg = message(subject, "line one\r\n.\r\nbinary \x00\xff\r\n")
        first, last = msg[:20], msg[20:]
        r = self.s.raw("smtp")
        r.send(b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@mail.test>\r\n")
        r.send(b"BDAT %d\r\n%s" % (len(first), first))
        r.send(b"BDAT %d LAST\r\n%s" % (len(last), last))
        r.send(b"QUIT\r\n")
        out = r.read_all()
        self.assertIn(b"250 2.0.0 Ok: 20 octets received\r\n", out)
        self.assertRegex(out, rb"250 2\.0\.0 Ok: queued as \d+\r\n221 ")
        self.assertEqual(self.stored(subject), msg)
        chunks = [e for e in self.s.events("line", proto="smtp") if e.get("bdat")]
        self.assertIn(first.decode("latin-1"), [e["data"] for e in chunks])

    def test_overlong_line_closes_then_server_lives(self):
        r = self.s.raw("smtp")
        r.read_line()
        r.send(b"NOOP " + b"x" * (70 * 1024) + b"\r\n")
        self.assertEqual(r.read_all(), b"500 5.5.0 Error: line too long\r\n")
        r = self.s.raw("smtp")
        r.send(b"\xff\xfe\x00garbage\r\nNOOP\r\n")
        self.assertEqual(r.read_until("250 2.0.0 Ok\r\n"),
                         b"220 mail.test ESMTP tlspolicy-test\r\n502 5.5.2 Error: command not recognized\r\n"
                         b"250 2.0.0 Ok\r\n")
        self.assertEqual(self.s.events("error", detail="line too long")[0]["proto"], "smtp")
        self.assertFalse([e for e in self.s.events("error") if "Traceback" in e["detail"]])


class IMAPTest(ServerCase):
    # a password that needs quoting: a space, a quote, a backslash
    setup_args = {"password": 'p w"d\\x'}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.s.smtp("smtp")
        cls.subject = "imap %s" % uuid.uuid4().hex
        c.sendmail("a@x", ["b@mail.test"], message(cls.subject, "Body of the IMAP test.\r\n"))
        c.quit()

    def login(self):
        c = self.s.imap("imap")
        c.login("test", self.s.password)
        return c

    def test_greeting_capability_id_noop_logout(self):
        r = self.s.raw("imap")
        self.assertEqual(r.read_line(), b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR LITERAL+ "
                                        b"ID IDLE] tlspolicy-test ready\r\n")
        r.send(b"a CAPABILITY\r\nb ID NIL\r\nc NOOP\r\nd LOGOUT\r\n")
        self.assertEqual(r.read_all(),
                         b"* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR LITERAL+ ID IDLE\r\n"
                         b"a OK Capability completed.\r\n"
                         b'* ID ("name" "tlspolicy-test" "version" "1")\r\nb OK ID completed.\r\n'
                         b"c OK NOOP completed.\r\n* BYE Logging out\r\nd OK Logout completed.\r\n")

    def test_login_quoted(self):
        c = self.s.imap("imap")
        typ, data = c.login("test", self.s.password)     # imaplib quotes and escapes it
        self.assertEqual(typ, "OK")
        self.assertIn(b"[CAPABILITY IMAP4rev1", data[0])
        self.assertEqual(self.s.wait_for("auth", proto="imap", mech="LOGIN", ok=True)["user"], "test")
        c.logout()
        c = self.s.imap("imap")
        with self.assertRaises(imaplib.IMAP4.error):
            c.login("test", "wrong")

    def test_login_literal_imaplib(self):
        c = self.s.imap("imap")
        c.literal = self.s.password.encode()            # imaplib sends it as {n} after "+"
        typ, _ = c._simple_command("LOGIN", "test")
        self.assertEqual(typ, "OK")

    def test_login_literals_raw(self):
        pw = self.s.password.encode()
        r = self.s.raw("imap")
        r.read_line()
        r.send(b"a1 LOGIN {4}\r\n")
        self.assertEqual(r.read_line(), b"+ Ready\r\n")
        r.send(b"test {%d}\r\n" % len(pw))
        self.assertEqual(r.read_line(), b"+ Ready\r\n")
        r.send(pw + b"\r\n")
        self.assertRegex(r.read_line(), rb"^a1 OK \[CAPABILITY .*\] Logged in\r\n")
        r = self.s.raw("imap")                             # LITERAL+: no continuation
        r.read_line()
        r.send(b"a2 LOGIN {4+}\r\ntest {%d+}\r\n%s\r\na3 NOOP\r\n" % (len(pw), pw))
        out = r.read_until("a3 OK")
        self.assertNotIn(b"+ Ready", out)
        self.assertIn(b"a2 OK", out)
        lit = [e for e in self.s.events("line", proto="imap") if e.get("literal")]
        self.assertIn(self.s.password, [e["data"] for e in lit])

    def test_authenticate_plain(self):
        c = self.s.imap("imap")
        typ, _ = c.authenticate("PLAIN", lambda _: b"\0test\0" + self.s.password.encode())
        self.assertEqual(typ, "OK")
        r = self.s.raw("imap")
        r.read_line()
        r.sendline("x AUTHENTICATE PLAIN " + plain("test", self.s.password))   # SASL-IR
        self.assertRegex(r.read_line(), rb"^x OK ")
        r = self.s.raw("imap")
        r.read_line()
        r.sendline("y AUTHENTICATE PLAIN")
        self.assertEqual(r.read_line(), b"+ \r\n")
        r.sendline("*")
        self.assertEqual(r.read_line(), b"y BAD Authentication aborted by client.\r\n")
        r.sendline("z AUTHENTICATE LOGIN")
        self.assertEqual(r.read_line(), b"+ VXNlcm5hbWU6\r\n")
        r.sendline(base64.b64encode(b"test").decode())
        self.assertEqual(r.read_line(), b"+ UGFzc3dvcmQ6\r\n")
        r.sendline(base64.b64encode(b"nope").decode())
        self.assertEqual(r.read_line(), b"z NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")

    def test_select_fetch_delivered_message(self):
        c = self.login()
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        n = int(data[0])
        self.assertGreaterEqual(n, 1)
        typ, data = c.search(None, "ALL")
        nums = data[0].split()
        self.assertEqual(len(nums), n)
        found = None
        for num in nums:
            typ, data = c.fetch(num, "(UID FLAGS BODY.PEEK[])")
            if ("Subject: %s" % self.subject).encode() in data[0][1]:
                found = num, data
        self.assertIsNotNone(found, "the message SMTP delivered is in INBOX")
        num, data = found
        self.assertEqual(data[0][1], message(self.subject, "Body of the IMAP test.\r\n"))
        self.assertRegex(data[0][0], rb"FLAGS \(\)")          # PEEK left it unseen
        typ, data = c.fetch(num, "(RFC822)")
        self.assertEqual(data[0][1], message(self.subject, "Body of the IMAP test.\r\n"))
        typ, data = c.fetch(num, "FLAGS")
        self.assertIn(b"\\Seen", data[0])
        typ, data = c.fetch(num, "(BODY[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.4> RFC822.SIZE)")
        self.assertEqual(data[0][1], ("Subject: %s\r\n\r\n" % self.subject).encode())
        self.assertEqual(data[1][1], b"Body")
        c.logout()

    def test_uid_fetch_status_list_examine(self):
        c = self.login()
        typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY)")
        m = re.match(rb"INBOX \(MESSAGES (\d+) UIDNEXT (\d+) UIDVALIDITY 1\)", data[0])
        self.assertTrue(m, data)
        typ, data = c.list()
        self.assertEqual(data, [b'(\\HasNoChildren) "/" INBOX'])
        typ, data = c.list('""', "Nothing*")
        self.assertEqual(data, [None])
        typ, data = c.select("INBOX", readonly=True)
        self.assertEqual(typ, "OK")
        typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER])")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0][0], rb"^1 \(UID \d+ FLAGS")
        typ, data = c.uid("SEARCH", None, "ALL")
        self.assertTrue(data[0].split())
        self.assertEqual(c.select("Junk")[0], "NO")
        c.logout()

    def test_idle_sees_new_mail(self):
        c = self.login()
        tag = "i1"
        r = self.s.raw("imap")
        r.read_line()
        r.sendline('a LOGIN test "%s"' % self.s.password.replace("\\", "\\\\").replace('"', '\\"'))
        r.read_until("a OK")
        r.read_line()
        r.sendline("b SELECT INBOX")
        exists = int(re.search(rb"\* (\d+) EXISTS", r.read_until("b OK")).group(1))
        r.read_line()
        r.sendline(tag + " IDLE")
        self.assertEqual(r.read_line(), b"+ idling\r\n")
        self.deliver()
        self.assertEqual(r.read_line(timeout=5), b"* %d EXISTS\r\n" % (exists + 1))
        r.sendline("DONE")
        self.assertEqual(r.read_line(), b"i1 OK Idle completed.\r\n")
        c.logout()

    def test_bad_commands(self):
        r = self.s.raw("imap")
        r.read_line()
        for cmd, want in ((b"a FETCH 1 FLAGS", b"a BAD Not logged in.\r\n"),
                          (b"b FROB", b"b BAD Unknown command.\r\n"),
                          (b"garbage", b"* BAD Error in IMAP command received by server.\r\n"),
                          (b"c LOGIN (unbalanced", b"c BAD Error in IMAP command: unbalanced (\r\n"),
                          (b"d LOGIN onlyone", b"d BAD Invalid arguments.\r\n"),
                          (b"e STARTTLS", b"e BAD Unknown command.\r\n")):
            r.send(cmd + b"\r\n")
            self.assertEqual(r.read_line(), want, cmd)
        r.sendline('f LOGIN test "%s"' % self.s.password.replace("\\", "\\\\").replace('"', '\\"'))
        r.read_until("f OK")
        r.read_line()
        r.sendline("g FETCH 1 FLAGS")
        self.assertEqual(r.read_line(), b"g BAD No mailbox selected.\r\n")
        r.sendline("h SELECT INBOX")
        r.read_until("h OK")
        r.read_line()
        r.sendline("i FETCH 1 (BODYSTRUCTURE)")
        self.assertEqual(r.read_line(), b"i BAD Unsupported FETCH item BODYSTRUCTURE\r\n")
        r.sendline("j FETCH x:y FLAGS")
        self.assertEqual(r.read_line(), b"j BAD Invalid arguments.\r\n")


class POP3Test(ServerCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for subject in ("pop one", "pop two"):
            c = cls.s.smtp("smtp")
            c.sendmail("a@x", ["b@mail.test"], message(subject, ".starts with a dot\r\nbody\r\n"))
            c.quit()

    def test_greeting_and_capa(self):
        r = self.s.raw("pop3")
        self.assertEqual(r.read_line(), b"+OK tlspolicy-test ready\r\n")
        r.sendline("CAPA")
        self.assertEqual(r.read_until(b"\r\n.\r\n"),
                         b"+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\nUIDL\r\nTOP\r\n.\r\n")
        c = self.s.pop3("pop3")
        self.assertEqual(c.getwelcome(), b"+OK tlspolicy-test ready")
        self.assertNotIn("STLS", c.capa())

    def test_user_pass_stat_list_retr_top_uidl(self):
        c = self.s.pop3("pop3")
        c.user("test")
        self.assertEqual(c.pass_("secret"), b"+OK Logged in.")
        count, size = c.stat()
        self.assertEqual(count, 2)
        resp, listing, _ = c.list()
        self.assertEqual(sum(int(x.split()[1]) for x in listing), size)
        resp, lines, octets = c.retr(2)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", message("pop two", ".starts with a dot\r\nbody\r\n"))
        resp, lines, _ = c.top(1, 1)
        self.assertEqual(lines, [b"From: a@x", b"To: b@mail.test", b"Subject: pop one", b"",
                                 b".starts with a dot"])
        resp, uidls, _ = c.uidl()
        self.assertEqual(len(uidls), 2)
        self.assertEqual(c.uidl(1).split()[1:], uidls[0].split())
        c.quit()

    def test_auth_plain(self):
        c = self.s.pop3("pop3")
        self.assertEqual(c._shortcmd("AUTH PLAIN " + plain("test", "secret")), b"+OK Logged in.")
        c.quit()
        r = self.s.raw("pop3")
        r.read_line()
        r.sendline("AUTH PLAIN")
        self.assertEqual(r.read_line(), b"+ \r\n")
        r.sendline(plain("test", "bad"))
        self.assertEqual(r.read_line(), b"-ERR [AUTH] Authentication failed.\r\n")
        self.s.wait_for("auth", proto="pop3", ok=False)

    def test_errors(self):
        c = self.s.pop3("pop3")
        for cmd in ("STAT", "PASS secret", "FROB", "STLS"):
            with self.assertRaises(poplib.error_proto, msg=cmd):
                c._shortcmd(cmd)
        c.user("test")
        with self.assertRaises(poplib.error_proto):
            c.pass_("wrong")
        c.user("test")
        c.pass_("secret")
        for cmd in ("RETR 99", "RETR x", "TOP 1", "USER test"):
            with self.assertRaises(poplib.error_proto, msg=cmd):
                c._shortcmd(cmd)
        c.quit()

    def test_dele_rset_quit(self):
        subject = self.deliver()
        c = self.s.pop3("pop3")
        c.user("test")
        c.pass_("secret")
        count, _ = c.stat()
        num = next(i for i in range(1, count + 1)
                   if ("Subject: %s" % subject).encode() in b"\r\n".join(c.retr(i)[1]))
        c.dele(num)
        self.assertEqual(c.stat()[0], count - 1)
        with self.assertRaises(poplib.error_proto):
            c.retr(num)
        c.rset()
        self.assertEqual(c.stat()[0], count)
        c.dele(num)
        c.quit()
        self.assertFalse([m for m in self.s.messages() if subject.encode() in m], "DELE + QUIT removed it")


class CurlTest(ServerCase):
    @classmethod
    def setUpClass(cls):
        harness.require("curl")
        super().setUpClass()

    def url(self, proto, path=""):
        return "%s://127.0.0.1:%d/%s" % (proto, self.s.ports[proto], path)

    def test_curl_smtp_imap_pop3(self):
        subject = "curl %s" % uuid.uuid4().hex
        path = os.path.join(self.s.tmp, "mail.eml")
        with open(path, "wb") as f:
            f.write(message(subject, "Sent by curl.\r\n"))
        rc, out, err = self.s.run(["curl", "-sS", "--url", self.url("smtp"), "--mail-from", "a@x",
                                   "--mail-rcpt", "b@mail.test", "-T", path, "--user", "test:secret"])
        self.assertEqual(rc, 0, err)
        lines = self.s.lines("smtp")
        self.assertEqual(lines[lines.index("AUTH PLAIN") + 1], plain("test", "secret"))
        stored = self.stored(subject)
        uid = [i for i, m in enumerate(self.s.messages(), 1) if m == stored][0]   # UIDs follow file order

        rc, out, err = self.s.run(["curl", "-sS", self.url("imap", "INBOX;UID=%d" % uid), "--user", "test:secret"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.encode(), stored)
        rc, out, err = self.s.run(["curl", "-sS", self.url("imap"), "--user", "test:secret"])
        self.assertEqual((rc, out), (0, '* LIST (\\HasNoChildren) "/" INBOX\r\n'), err)

        rc, out, err = self.s.run(["curl", "-sS", self.url("pop3", str(uid)), "--user", "test:secret"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.encode(), stored)
        rc, out, err = self.s.run(["curl", "-sS", self.url("pop3"), "--user", "test:secret"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.splitlines()), len(self.s.messages()))
        rc, out, err = self.s.run(["curl", "-sS", self.url("pop3"), "--user", "test:wrong"])
        self.assertNotEqual(rc, 0)

    def test_swaks(self):
        harness.require("swaks")
        rc, out, err = self.s.run(["swaks", "--server", "127.0.0.1", "--port", str(self.s.ports["smtp"]),
                                   "--from", "a@x", "--to", "b@elsewhere.example", "--auth", "LOGIN",
                                   "--auth-user", "test", "--auth-password", "secret",
                                   "--header", "Subject: swaks", "--helo", "client.test"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("235 2.7.0 Authentication successful", out)
        self.s.wait_for("auth", proto="smtp", mech="LOGIN", ok=True)


class TLSTest(harness.TestCase):
    """the server's own TLS (for tls_by = daemon): STARTTLS/STLS and implicit"""

    @classmethod
    def setUpClass(cls):
        harness.require("openssl")
        cls.s = harness.Setup({"smtp": "smtp", "imap": "imap", "pop3": "pop3"}, daemonless=True,
                              offer_starttls=True,
                              plain_ports={"smtps": "smtp", "imaps": "imap", "pop3s": "pop3"},
                              server_tls={"smtps": "implicit", "imaps": "implicit", "pop3s": "implicit"})
        cls.addClassCleanup(cls.s.close)

    def test_smtp_starttls_and_smtps(self):
        c = self.s.smtp("smtp")
        c.ehlo()
        self.assertTrue(c.has_extn("starttls"))
        self.assertEqual(c.starttls()[0], 220)
        c.ehlo()
        self.assertFalse(c.has_extn("starttls"))
        self.assertEqual(c.docmd("STARTTLS")[0], 554)
        c.login("test", "secret")
        c.quit()
        c = self.s.smtp_ssl("smtps")
        c.login("test", "secret")
        c.sendmail("a@x", ["b@mail.test"], message("over smtps"))
        c.quit()
        tls = self.s.wait_for("tls", proto="smtp")
        self.assertIn(tls["version"], ("TLSv1.2", "TLSv1.3"))

    def test_imap_and_pop3_tls(self):
        c = self.s.imap("imap")
        self.assertIn("STARTTLS", c.capabilities)
        c.starttls()
        c.login("test", "secret")
        c.logout()
        c = self.s.imap_ssl("imaps")
        self.assertNotIn("STARTTLS", c.capabilities)
        c.login("test", "secret")
        c.logout()
        c = self.s.pop3("pop3")
        self.assertIn("STLS", c.capa())
        c.stls()
        c.user("test")
        c.pass_("secret")
        c.quit()
        c = self.s.pop3_ssl("pop3s")
        c.user("test")
        c.pass_("secret")
        c.quit()

    def test_wrong_name_is_refused(self):
        c = self.s.raw("smtps")
        with self.assertRaises(ssl.SSLCertVerificationError):
            c.starttls(server_hostname="wrong.example")

    def test_openssl_s_client_starttls_discards_injection(self):
        rc, out, err = self.s.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.s.ports["smtp"],
                                   "-starttls", "smtp", "-verify_return_error", "-CAfile", self.s.cert,
                                   "-verify_hostname", "localhost", "-quiet"], input="EHLO c\r\nQUIT\r\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("221 2.0.0 Bye", out)
        r = self.s.raw("smtp")
        r.read_line()
        r.send(b"EHLO c\r\n")
        r.read_until("250 CHUNKING\r\n")
        r.send(b"STARTTLS\r\nRSET\r\n")                  # RSET pipelined after STARTTLS
        self.assertEqual(r.read_line(), b"220 2.0.0 Ready to start TLS\r\n")
        r.starttls()
        r.sendline("NOOP")
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n", "the injected RSET got no reply")
        self.assertEqual(self.s.wait_for("discarded", proto="smtp")["data"], "RSET\r\n")


class RecordTest(ServerCase):
    def test_connect_addresses(self):
        r = self.s.raw("smtp")
        r.read_line()
        mine = list(r.getsockname())
        ev = self.s.wait_for("connect", proto="smtp", getpeername=mine)
        self.assertEqual(ev["peer"], mine, "accept()'s address")
        self.assertEqual(ev["getsockname"], ["127.0.0.1", self.s.ports["smtp"]])
        self.assertEqual(ev["mode"], "plain")
        r.send(b"NOOP\r\nQUIT\r\n")
        r.read_all()
        self.assertEqual([e["data"] for e in self.s.events("line", conn=ev["conn"])], ["NOOP\r\n", "QUIT\r\n"])
        self.s.wait_for("close", conn=ev["conn"])

    def test_ipv6(self):
        if not harness.have_ipv6():
            self.skipTest("no IPv6 loopback")
        with harness.Setup({"imap": "imap"}, daemonless=True, ipv6=True) as s:
            r = s.raw("imap", addr="::1")
            r.read_line()
            mine = list(r.getsockname()[:2])
            ev = s.wait_for("connect", getpeername=mine)
            self.assertEqual(ev["getsockname"], ["::1", s.ports["imap"]])

    def test_inetd(self):
        with harness.Setup({"smtp": "smtp", "pop3": "pop3"}, daemonless=True, inetd=("pop3",)) as s:
            conns = []
            for _ in range(2):
                c = s.pop3("pop3")
                self.assertEqual(c.getwelcome(), b"+OK tlspolicy-test ready")
                mine = list(c.sock.getsockname())
                c.user("test")
                c.pass_("secret")
                c.quit()
                ev = s.wait_for("connect", proto="pop3", getpeername=mine)
                self.assertIsNone(ev["peer"], "no accept() in inetd mode")
                self.assertEqual(ev["getsockname"], ["127.0.0.1", s.ports["pop3"]])
                conns.append(ev["conn"])
            self.assertNotEqual(conns[0], conns[1], "one process, so one conn number, per connection")
            self.assertEqual(s.smtp("smtp").noop()[0], 250, "the other ports are served as usual")


class HarnessTest(harness.TestCase):
    def test_policy_file(self):
        path = os.path.join(harness.tempfile.mkdtemp(), "p.conf")
        try:
            harness.write_policy(path, {"port 25": {"protocol": "smtp", "tls": "opportunistic"},
                                        "global": {"ban_ciphers": ["RC4", "3DES"], "enforce": True}})
            with open(path) as f:
                self.assertEqual(f.read(), "[global]\nban_ciphers = RC4 3DES\nenforce = yes\n\n"
                                           "[port 25]\nprotocol = smtp\ntls = opportunistic\n\n")
        finally:
            harness.shutil.rmtree(os.path.dirname(path))

    def test_certificate(self):
        cert, key = harness.test_cert()
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        rc, out, err = harness.run(["openssl", "x509", "-in", cert, "-noout", "-checkhost", "localhost",
                                    "-checkip", "127.0.0.1", "-subject"])
        self.assertEqual(rc, 0, err)
        self.assertIn("does match certificate", out)
        self.assertIn("CN = mail.test", out)

    def test_run_timeout_and_ports(self):
        with self.assertRaises(harness.CommandTimeout):
            harness.run(["sleep", "5"], timeout=0.5)
        ports = {harness.free_port() for _ in range(20)}
        self.assertEqual(len(ports), 20)

    def test_setup_cleans_up(self):
        s = harness.Setup({"smtp": "smtp"}, daemonless=True)
        pid, tmp = s.server_pid, s.tmp
        s.close()
        self.assertFalse(os.path.exists(tmp))
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

    def test_failed_start_reports_log(self):
        with self.assertRaises(harness.SetupError) as cm:
            harness.Setup({"smtp": "smtp"}, daemonless=True, server_args=["--pop3", "notaport"])
        self.assertIn("mailserver.py exited", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
