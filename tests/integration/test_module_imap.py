"""test_module_imap.py - IMAP through tlspolicyd, byte for byte

DESIGN.md "Protocol behaviour before TLS", IMAP column: the greeting's and
CAPABILITY's capability lists before TLS (no AUTH=*, STARTTLS
LOGINDISABLED, and nothing that invites credentials: no SASL-IR, no
LITERAL+ or LITERAL-) and after it (AUTH=*, SASL-IR, LITERAL+ back, no
STARTTLS), LOGIN and AUTHENTICATE refused with the tagged PRIVACYREQUIRED
NO and their credentials never forwarded, literals framed right (a
refused "{n}" gets no continuation, a "{n+}" before TLS ends the session
with "* BYE", a line whose tag the daemon rejects announces no literal),
the upgrade and the upgrade again inside TLS, STARTTLS injection, and
the 8 KiB line limit.
"""

import os

from modcommon import (IMAP_CAPS_PLAIN, IMAP_CAPS_TLS, IMAP_GO_TLS, IMAP_NEED_TLS,
                       IMAP_TLS_ACTIVE, IMAP_TOO_LONG, TEXT_LINE_MAX, ModuleCase, message,
                       nodelay, plain, unique)

GREETING_BEFORE_TLS = b"* OK [CAPABILITY " + IMAP_CAPS_PLAIN + b" STARTTLS LOGINDISABLED] tlspolicy-test ready\r\n"
# a daemon that offers STARTTLS itself keeps it in its place; LOGINDISABLED is added
GREETING_DAEMON_STARTTLS = (b"* OK [CAPABILITY IMAP4rev1 STARTTLS ID IDLE LOGINDISABLED]"
                            b" tlspolicy-test ready\r\n")
GREETING_TLS = b"* OK [CAPABILITY " + IMAP_CAPS_TLS + b"] tlspolicy-test ready\r\n"
CAPABILITY_BEFORE_TLS = (b"* CAPABILITY " + IMAP_CAPS_PLAIN + b" STARTTLS LOGINDISABLED\r\n"
                         b"c OK Capability completed.\r\n")
CAPABILITY_AFTER_TLS = b"* CAPABILITY " + IMAP_CAPS_TLS + b"\r\nc OK Capability completed.\r\n"
PASSWORD = unique("imap-pw")
TP_NONSYNC = b"* BYE Non-synchronizing literals are not allowed before TLS.\r\n"


class IMAPTest(ModuleCase):
    ports = {"imap": ("imap", "starttls"),
             "imap-d": ("imap", "starttls"),        # the daemon offers STARTTLS too
             "imap-o": ("imap", "opportunistic"),
             "imaps": ("imap", "implicit")}
    setup_args = {"password": PASSWORD, "server_tls": {"imap-d": "starttls"}}

    def starttls(self, r, tag="t"):
        r.sendline(tag + " STARTTLS")
        self.assertEqual(r.read_line(), tag.encode() + b" " + IMAP_GO_TLS)
        r.starttls()

    def logout(self, r, tag="z"):
        r.sendline(tag + " LOGOUT")
        self.assertEqual(r.read_all(), b"* BYE Logging out\r\n%s OK Logout completed.\r\n" % tag.encode())

    def noop(self, r, tag):
        r.sendline(tag + " NOOP")
        self.assertEqual(r.read_line(), tag.encode() + b" OK NOOP completed.\r\n")

    # --- capabilities
    def test_capabilities_before_tls(self):
        for port, greeting in (("imap", GREETING_BEFORE_TLS), ("imap-o", GREETING_BEFORE_TLS),
                               ("imap-d", GREETING_DAEMON_STARTTLS)):
            with self.subTest(port=port):
                r = self.s.raw(port)
                self.assertEqual(r.read_line(), greeting)
                r.sendline("c CAPABILITY")
                want = CAPABILITY_BEFORE_TLS if port != "imap-d" else (
                    b"* CAPABILITY IMAP4rev1 STARTTLS ID IDLE LOGINDISABLED\r\n"
                    b"c OK Capability completed.\r\n")
                self.assertEqual(r.read_until(b"c OK Capability completed.\r\n"), want)
                self.logout(r)
                self.assertServerGot(r, ["c CAPABILITY", "z LOGOUT"])

    def test_capabilities_after_tls(self):
        for port in ("imap", "imap-d", "imap-o"):
            with self.subTest(port=port):
                r = self.imap_greeted(port)
                self.starttls(r)
                r.sendline("c CAPABILITY")
                self.assertEqual(r.read_until(b"c OK Capability completed.\r\n"), CAPABILITY_AFTER_TLS)
                self.logout(r)
                self.assertServerGot(r, ["c CAPABILITY", "z LOGOUT"])
        r = self.s.raw("imaps", tls=True)
        self.assertEqual(r.read_line(), GREETING_TLS)
        r.sendline("c CAPABILITY")
        self.assertEqual(r.read_until(b"c OK Capability completed.\r\n"), CAPABILITY_AFTER_TLS)

    # --- authentication before TLS
    def test_login_and_authenticate_refused_never_forwarded(self):
        secret = unique("refused-pw")
        blob = plain("test", secret)
        attempts = [("a1", "LOGIN test " + secret), ("a2", 'LOGIN "test" "%s"' % secret),
                    ("a3", "login test " + secret), ("a4", "AUTHENTICATE PLAIN " + blob),
                    ("a5", "AUTHENTICATE PLAIN"), ("a6", "authenticate login"),
                    ("a7", "AUTHENTICATE XOAUTH2 " + blob)]
        for port in ("imap", "imap-o"):
            with self.subTest(port=port):
                r = self.imap_greeted(port)
                for tag, cmd in attempts:
                    r.sendline(tag + " " + cmd)
                    # the tagged NO at once: no "+" challenge, no daemon involved
                    self.assertEqual(r.read_line(), tag.encode() + b" " + IMAP_NEED_TLS, cmd)
                self.noop(r, "n")
                self.logout(r)
                conn = self.assertServerGot(r, ["n NOOP", "z LOGOUT"])
                self.assertEqual(self.s.events("auth", conn=conn), [])
                self.log_for(r, "action=refuse reason=auth-before-tls")
        self.assertNeverSeen(secret, blob)

    def test_synchronising_literal_login_gets_no_continuation(self):
        """RFC 9051 7.5: the NO comes instead of "+", so the client never sends the password"""
        secret = unique("literal-pw")
        r = self.imap_greeted("imap")
        r.sendline("a LOGIN {4}")
        self.assertEqual(r.read_line(), b"a " + IMAP_NEED_TLS)
        r.sendline("b LOGIN test {%d}" % len(secret))
        self.assertEqual(r.read_line(), b"b " + IMAP_NEED_TLS)
        self.noop(r, "n")
        self.assertEqual(r.read_for(0.2), b"", "no continuation request came late either")
        self.logout(r)
        self.assertServerGot(r, ["n NOOP", "z LOGOUT"])
        self.assertNeverSeen(secret)

    def test_non_synchronising_literal_before_tls_closes(self):
        """RFC 7888: "{n+}" literals follow at once; LITERAL+ is not offered
        before TLS, so one is a protocol error: "* BYE", nothing of it
        forwarded, logged; on a refused LOGIN, and on a forwarded command
        whose tag the daemon rejects, where the daemon would have run the
        literal's content as a command (it skips to the LF)"""
        secret = unique("literal-pw")
        login = ("a LOGIN test %s\r\n" % PASSWORD).encode()
        streams = [b"a LOGIN {4+}\r\ntest {%d+}\r\n%s\r\n" % (len(secret), secret.encode()),
                   b"x* ID {%d+}\r\n%s" % (len(login), login),
                   b"b AUTHENTICATE PLAIN {8+}\r\n" + plain("test", secret).encode()[:8] + b"\r\n"]
        for port in ("imap", "imap-o"):
            for sent in streams:
                with self.subTest(port=port, sent=sent[:16]):
                    r = self.imap_greeted(port)
                    r.send(sent)
                    self.assertEqual(r.read_all(), TP_NONSYNC)
                    self.assertServerGot(r, [])
                    self.log_for(r, "action=close reason=nonsync-literal")
        self.assertEqual(self.s.events("auth", ok=True), [])
        self.assertNeverSeen(secret)

    def test_invalid_tag_announces_no_literal(self):
        """a tag the daemon rejects ("x*": Dovecot answers "* BAD" and skips
        to the LF): the "{n}" is no literal to it, so the next line is a
        command to the filter too, and LOGIN there is refused"""
        secret = unique("tag-pw")
        r = self.imap_greeted("imap-o")
        r.send(b"x* ID {24}\r\n")
        self.assertEqual(r.read_line(), b"* BAD Error in IMAP command received by server.\r\n")
        r.send(b"a LOGIN test %s\r\n" % secret.encode())
        self.assertEqual(r.read_line(), b"a " + IMAP_NEED_TLS)
        self.noop(r, "n")
        self.logout(r)
        self.assertServerGot(r, ["x* ID {24}", "n NOOP", "z LOGOUT"])
        self.assertEqual(self.s.events("auth", ok=True), [])
        self.assertNeverSeen(secret)

    def test_other_commands_before_tls_reach_the_daemon(self):
        """not-authenticated state already limits them: the daemon answers"""
        r = self.imap_greeted("imap")
        r.sendline("s SELECT INBOX")
        self.assertEqual(r.read_line(), b"s BAD Not logged in.\r\n")
        r.sendline('i ID NIL')
        self.assertEqual(r.read_until(b"i OK"), b'* ID ("name" "tlspolicy-test" "version" "1")\r\ni OK')
        r.read_line()
        self.noop(r, "n")
        self.logout(r)
        self.assertServerGot(r, ["s SELECT INBOX", "i ID NIL", "n NOOP", "z LOGOUT"])

    # --- the upgrade
    def test_upgrade_reply_and_again_inside_tls(self):
        r = self.imap_greeted("imap")
        self.starttls(r, "A1")
        r.sendline("A2 STARTTLS")
        self.assertEqual(r.read_line(), b"A2 " + IMAP_TLS_ACTIVE)
        self.noop(r, "n")
        self.logout(r)
        self.assertServerGot(r, ["n NOOP", "z LOGOUT"])
        self.log_for(r, "action=starttls")
        self.log_for(r, r"action=tls version=TLSv1\.[23] suite=\S+")
        self.log_for(r, "action=refuse reason=tls-already-active")

    def test_starttls_on_implicit_port(self):
        r = self.imap_greeted("imaps", tls=True)
        r.sendline("x STARTTLS")
        self.assertEqual(r.read_line(), b"x " + IMAP_TLS_ACTIVE)
        self.logout(r)
        self.assertServerGot(r, ["z LOGOUT"])

    def test_session_after_starttls(self):
        """the positive control: imaplib with STARTTLS logs in and reads a message"""
        subject = unique("imap")
        with open(os.path.join(self.s.maildir, "%s.eml" % subject), "wb") as f:
            f.write(message(subject))
        for port in ("imap", "imaps"):
            with self.subTest(port=port):
                if port == "imap":
                    c = self.s.imap(port)
                    self.assertIn("LOGINDISABLED", c.capabilities)
                    c.starttls()
                else:
                    c = self.s.imap_ssl(port)
                self.assertNotIn("STARTTLS", c.capabilities)
                self.assertIn("AUTH=PLAIN", c.capabilities)
                self.assertEqual(c.login("test", PASSWORD)[0], "OK")
                c.select("INBOX")
                typ, data = c.uid("SEARCH", None, "ALL")
                found = []
                for uid in data[0].split():
                    typ, d = c.uid("FETCH", uid, "(BODY.PEEK[])")
                    found += [part[1] for part in d if isinstance(part, tuple)]
                self.assertIn(message(subject), found)
                c.logout()
        self.assertEqual(len(self.s.events("auth", ok=True, mech="LOGIN", user="test")), 2)

    # --- STARTTLS command injection
    def test_injection_after_starttls_is_discarded(self):
        secret = unique("injected-pw")
        for injected in (b"B NOOP\r\n", ("B LOGIN test %s\r\n" % secret).encode()):
            with self.subTest(injected=injected):
                r = self.imap_greeted("imap")
                r.send(b"A STARTTLS\r\n" + injected)
                self.assertEqual(r.read_line(), b"A " + IMAP_GO_TLS)
                r.starttls()
                self.noop(r, "C")
                self.logout(r)
                self.assertServerGot(r, ["C NOOP", "z LOGOUT"])
                self.log_for(r, "action=discard reason=injection bytes=%d" % len(injected))
        self.assertNeverSeen(secret)

    def test_injection_after_the_ok_is_discarded(self):
        r = nodelay(self.imap_greeted("imap"))
        r.send(b"A STARTTLS\r\n")
        self.assertEqual(r.read_line(), b"A " + IMAP_GO_TLS)
        r.send(b"B NOOP\r\n")
        r.starttls()
        self.noop(r, "C")
        self.logout(r)
        self.assertServerGot(r, ["C NOOP", "z LOGOUT"])
        self.log_for(r, "action=discard reason=injection bytes=8")

    # --- limits: 8 KiB lines and literals before TLS
    def test_line_limit(self):
        longest = "a NOOP " + "x" * (TEXT_LINE_MAX - len("a NOOP ") - 2)
        r = self.imap_greeted("imap")
        r.sendline(longest)
        self.assertEqual(r.read_line(), b"a OK NOOP completed.\r\n")
        self.logout(r)
        self.assertServerGot(r, [longest, "z LOGOUT"])

        r = self.imap_greeted("imap")
        r.sendline(longest + "x")
        self.assertEqual(r.read_all(), IMAP_TOO_LONG)
        self.assertServerGot(r, [])
        self.log_for(r, "action=close reason=line-too-long")

    def test_literal_limit_before_tls(self):
        """the announcing line is a legal line and has gone on to the daemon;
        none of the literal does, and the session ends"""
        r = self.imap_greeted("imap")
        r.send(b"a NOOP {%d}\r\nX LOGOUT\r\n" % (TEXT_LINE_MAX + 1))
        self.assertEqual(r.read_all(), IMAP_TOO_LONG)
        self.assertServerGot(r, ["a NOOP {%d}" % (TEXT_LINE_MAX + 1)])
        self.log_for(r, "action=close reason=line-too-long")


if __name__ == "__main__":
    import unittest
    unittest.main()
