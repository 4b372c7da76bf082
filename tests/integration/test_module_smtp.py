"""test_module_smtp.py - SMTP through tlspolicyd, byte for byte

DESIGN.md "Protocol behaviour before TLS", SMTP column: the EHLO reply
before and after TLS, AUTH refused before TLS and its credentials never
forwarded, every other command but EHLO HELO STARTTLS NOOP RSET QUIT
refused on a starttls port, the upgrade, the upgrade again inside TLS,
opportunistic mode (mail in clear, no AUTH), STARTTLS command injection
(CVE-2011-0411) in one segment and split, and the 512-octet line limit.
Each test checks the bytes on the wire, what the daemon received (the
test server's record) and what tlspolicyd logged.
"""

import smtplib
import time

from modcommon import (SMTP_GO_TLS, SMTP_GREETING, SMTP_LINE_MAX, SMTP_NEED_TLS, SMTP_REPLY,
                       SMTP_TLS_ACTIVE, SMTP_TOO_LONG, ModuleCase, b64, message, nodelay, plain,
                       unique)

# the test server's EHLO reply is 250-mail.test PIPELINING SIZE [STARTTLS] AUTH
# ENHANCEDSTATUSCODES 8BITMIME CHUNKING; before TLS the module drops AUTH and
# CHUNKING (a BDAT chunk's framing is the daemon's to decide) and offers
# STARTTLS before the last line
EHLO_BEFORE_TLS = (b"250-mail.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
                   b"250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
EHLO_AFTER_TLS = (b"250-mail.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n250-AUTH PLAIN LOGIN\r\n"
                  b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
# a daemon that offers STARTTLS itself keeps its own line, in its place
EHLO_BEFORE_TLS_DAEMON_STARTTLS = (b"250-mail.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n"
                                   b"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")
PASSWORD = unique("smtp-pw")


class SMTPTest(ModuleCase):
    ports = {"submission": ("smtp", "starttls"),
             "submission-d": ("smtp", "starttls"),      # the daemon offers STARTTLS too
             "smtps": ("smtp", "implicit"),
             "mx": ("smtp", "opportunistic")}
    setup_args = {"password": PASSWORD, "server_tls": {"submission-d": "starttls"}}

    def starttls(self, r):
        r.sendline("STARTTLS")
        self.assertEqual(r.read_line(), SMTP_GO_TLS)
        r.starttls()
        r.sendline("EHLO client.test")
        self.assertEqual(r.read_until(SMTP_REPLY), EHLO_AFTER_TLS)

    def quit(self, r):
        r.sendline("QUIT")
        self.assertEqual(r.read_all(), b"221 2.0.0 Bye\r\n")

    # --- capabilities
    def test_ehlo_before_tls_hides_auth_and_offers_starttls(self):
        for port in ("submission", "mx"):
            with self.subTest(port=port):
                r, ehlo = self.smtp_ehlo(port)
                self.assertEqual(ehlo, EHLO_BEFORE_TLS)
                self.quit(r)
                self.assertServerGot(r, ["EHLO client.test", "QUIT"])
        r, ehlo = self.smtp_ehlo("submission-d")
        self.assertEqual(ehlo, EHLO_BEFORE_TLS_DAEMON_STARTTLS)

    def test_ehlo_after_tls_shows_auth_and_no_starttls(self):
        for port in ("submission", "submission-d", "mx"):
            with self.subTest(port=port):
                r, _ = self.smtp_ehlo(port)
                self.starttls(r)        # asserts EHLO_AFTER_TLS
                self.quit(r)
                self.assertServerGot(r, ["EHLO client.test", "EHLO client.test", "QUIT"])
                self.log_for(r, r"action=tls version=TLSv1\.[23] suite=\S+")

    def test_implicit_tls_ehlo(self):
        r = self.s.raw("smtps", tls=True)
        self.assertEqual(r.read_line(), SMTP_GREETING)
        r.sendline("EHLO client.test")
        self.assertEqual(r.read_until(SMTP_REPLY), EHLO_AFTER_TLS)

    def test_helo_before_tls_passes(self):
        r = self.s.raw("submission")
        r.read_line()
        r.sendline("HELO client.test")
        self.assertEqual(r.read_line(), b"250 mail.test\r\n")

    # --- authentication before TLS
    def test_auth_refused_before_tls_and_never_forwarded(self):
        secret = unique("refused-pw")       # this test's own: the record is shared
        blob = plain("test", secret)
        attempts = ["AUTH PLAIN " + blob, "auth plain " + blob, "AUTH\tPLAIN " + blob,
                    "AUTH LOGIN " + b64(secret), "AUTH PLAIN", "AUTH LOGIN", "AUTH CRAM-MD5"]
        for port in ("submission", "mx"):
            with self.subTest(port=port):
                r, _ = self.smtp_ehlo(port)
                for a in attempts:
                    r.sendline(a)
                    self.assertEqual(r.read_line(), SMTP_NEED_TLS, a)
                r.sendline("NOOP")      # the daemon answers: everything before it is settled
                self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
                self.quit(r)
                conn = self.assertServerGot(r, ["EHLO client.test", "NOOP", "QUIT"])
                self.assertEqual(self.s.events("auth", conn=conn), [], "no AUTH reached the daemon")
                self.log_for(r, "action=refuse reason=auth-before-tls")
        self.assertNeverSeen(secret, blob, b64(secret))

    def test_pipelined_auth_before_tls_is_refused_in_order(self):
        """RFC 2920: one write with EHLO, AUTH, NOOP; the local 530 comes in its place"""
        secret = unique("refused-pw")
        r = self.s.raw("submission")
        r.read_line()
        r.send("EHLO client.test\r\nAUTH PLAIN %s\r\nNOOP\r\n" % plain("test", secret))
        self.assertEqual(r.read_until(SMTP_REPLY), EHLO_BEFORE_TLS)
        self.assertEqual(r.read_line(), SMTP_NEED_TLS)
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", "NOOP", "QUIT"])
        self.assertNeverSeen(secret, plain("test", secret))

    # --- other commands, starttls mode
    def test_commands_before_starttls_refused_but_the_rfc3207_few(self):
        r, _ = self.smtp_ehlo("submission")
        refused = ["MAIL FROM:<a@client.test>", "RCPT TO:<b@mail.test>", "DATA", "VRFY test",
                   "EXPN staff", "HELP", "ETRN mail.test", "XCLIENT ADDR=10.0.0.1", "BOGUS"]
        for cmd in refused:
            r.sendline(cmd)
            self.assertEqual(r.read_line(), SMTP_NEED_TLS, cmd)
        allowed = [("NOOP", b"250 2.0.0 Ok\r\n"), ("RSET", b"250 2.0.0 Ok\r\n"),
                   ("noop", b"250 2.0.0 Ok\r\n"), ("HELO client.test", b"250 mail.test\r\n")]
        for cmd, reply in allowed:
            r.sendline(cmd)
            self.assertEqual(r.read_line(), reply, cmd)
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test"] + [c for c, _ in allowed] + ["QUIT"])
        self.log_for(r, "action=refuse reason=command-before-tls")

    def test_refused_bdat_chunk_is_dropped_not_read_as_commands(self):
        """RFC 3030: the chunk follows BDAT unasked; refused, it must not run as commands"""
        r, _ = self.smtp_ehlo("submission")
        chunk = b"HELO injected\r\n"
        r.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        self.assertEqual(r.read_line(), SMTP_NEED_TLS)
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", "NOOP", "QUIT"])

    # --- the upgrade
    def test_upgrade_reply_and_again_inside_tls(self):
        r, _ = self.smtp_ehlo("submission")
        self.starttls(r)
        r.sendline("STARTTLS")
        self.assertEqual(r.read_line(), SMTP_TLS_ACTIVE)
        r.sendline("NOOP")
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        self.quit(r)
        # both STARTTLS were the module's to answer: the daemon saw neither
        self.assertServerGot(r, ["EHLO client.test", "EHLO client.test", "NOOP", "QUIT"])
        self.log_for(r, "action=starttls")
        self.log_for(r, "action=refuse reason=tls-already-active")

    def test_starttls_on_implicit_port_is_already_active(self):
        r = self.s.raw("smtps", tls=True)
        r.read_line()
        r.sendline("EHLO client.test")
        r.read_until(SMTP_REPLY)
        r.sendline("STARTTLS")
        self.assertEqual(r.read_line(), SMTP_TLS_ACTIVE)
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", "QUIT"])

    def test_after_starttls_auth_and_mail_pass_through(self):
        """the positive control: inside TLS the credential reaches the daemon"""
        subject = unique("starttls")
        c = self.s.smtp("submission")
        c.starttls()
        c.ehlo()
        self.assertEqual(c.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
        self.assertNotIn("starttls", c.esmtp_features)
        self.assertEqual(c.login("test", PASSWORD)[0], 235)
        self.assertEqual(c.sendmail("a@client.test", ["x@elsewhere.example"], message(subject)), {})
        c.quit()
        self.s.wait_for("auth", ok=True, user="test", mech="PLAIN")
        stored = [m for m in self.s.messages() if subject.encode() in m]
        self.assertEqual(stored, [message(subject)])

    def test_implicit_tls_auth_and_mail(self):
        subject = unique("smtps")
        c = self.s.smtp_ssl("smtps")
        self.assertEqual(c.login("test", PASSWORD)[0], 235)
        c.sendmail("a@client.test", ["x@elsewhere.example"], message(subject))
        c.quit()
        self.assertEqual([m for m in self.s.messages() if subject.encode() in m], [message(subject)])

    # --- opportunistic: RFC 3207 4, mail may flow in clear, AUTH never does
    def test_opportunistic_accepts_mail_in_clear(self):
        subject = unique("clear")
        opened = time.time()
        c = self.s.smtp("mx")
        c.ehlo()
        self.assertIn("starttls", c.esmtp_features)
        self.assertNotIn("auth", c.esmtp_features)
        self.assertEqual(c.sendmail("a@client.test", ["b@mail.test"], message(subject)), {})
        with self.assertRaises(smtplib.SMTPNotSupportedError):
            c.login("test", PASSWORD)   # smtplib sees no AUTH offered
        addr = c.sock.getsockname()
        c.quit()
        conn = self.finished(addr, since=opened)
        msg = self.s.wait_for("message", conn=conn)
        self.assertEqual((msg["from"], msg["rcpt"]), ("a@client.test", ["b@mail.test"]))
        self.assertEqual([m for m in self.s.messages() if subject.encode() in m], [message(subject)])
        self.assertEqual(self.s.events("auth", conn=conn), [])

    def test_opportunistic_refuses_auth_in_clear(self):
        r, _ = self.smtp_ehlo("mx")
        r.sendline("MAIL FROM:<a@client.test>")
        self.assertEqual(r.read_line(), b"250 2.1.0 Ok\r\n")
        r.sendline("RSET")
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        secret = unique("refused-pw")
        r.sendline("AUTH PLAIN " + plain("test", secret))
        self.assertEqual(r.read_line(), SMTP_NEED_TLS)
        # a relay recipient without AUTH is the daemon's to refuse, as ever
        r.sendline("MAIL FROM:<a@client.test>")
        r.read_line()
        r.sendline("RCPT TO:<x@elsewhere.example>")
        self.assertEqual(r.read_line(), b"554 5.7.1 <x@elsewhere.example>: Relay access denied\r\n")
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", "MAIL FROM:<a@client.test>", "RSET",
                                    "MAIL FROM:<a@client.test>", "RCPT TO:<x@elsewhere.example>", "QUIT"])
        self.assertNeverSeen(secret, plain("test", secret))

    def test_opportunistic_body_lines_are_not_commands(self):
        """DATA's body is the daemon's, whatever its lines look like"""
        subject = unique("body")
        body = ("Subject: %s\r\n\r\n..a dot\r\nSTARTTLS\r\nAUTH PLAIN %s\r\nQUIT\r\n"
                % (subject, plain("test", "not-a-secret")))
        r, _ = self.smtp_ehlo("mx")
        r.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mail.test>\r\nDATA\r\n")
        self.assertEqual(r.read_line(), b"250 2.1.0 Ok\r\n")
        self.assertEqual(r.read_line(), b"250 2.1.5 Ok\r\n")
        self.assertEqual(r.read_line(), b"354 End data with <CR><LF>.<CR><LF>\r\n")
        r.send(body + ".\r\nNOOP\r\n")
        self.assertRegex(r.read_line(), rb"^250 2\.0\.0 Ok: queued as \d+\r\n$")
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        self.quit(r)
        stored = [m for m in self.s.messages() if subject.encode() in m]
        self.assertEqual(stored, [body.replace("\r\n..", "\r\n.").encode()])

    def test_ambiguous_end_of_data_closes_before_tls(self):
        """SMTP smuggling (December 2023): ".\r\r\n" ends the data for
        Postfix (and this server, which frames as Postfix does), not for
        Exim; before TLS the filter closes on it, so the AUTH behind it
        runs nowhere and no message is delivered"""
        subject = unique("smuggle")
        r, _ = self.smtp_ehlo("mx")
        r.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mail.test>\r\nDATA\r\n")
        self.assertEqual(r.read_until(b"354 End data with <CR><LF>.<CR><LF>\r\n"),
                         b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
        r.send("Subject: %s\r\n\r\nx\r\n.\r\r\nAUTH PLAIN %s\r\nQUIT\r\n" % (subject, plain("test", PASSWORD)))
        self.assertEqual(r.read_all(), b'421 4.5.0 Error: ambiguous end of data ("." then CR CR LF)\r\n')
        self.log_for(r, "action=close reason=ambiguous-end-of-data")
        conn = self.assertServerGot(r, ["EHLO client.test", "MAIL FROM:<a@client.test>", "RCPT TO:<b@mail.test>",
                                        "DATA", "Subject: %s" % subject, "", "x"])
        self.assertEqual(self.s.events("auth", conn=conn), [])
        self.assertEqual([m for m in self.s.messages() if subject.encode() in m], [])

    def test_bdat_before_tls_refused_chunk_dropped(self):
        """before TLS CHUNKING is hidden and BDAT refused on every port, its
        chunk dropped: a size the daemon rejects (Postfix: 501 for "BDAT 29
        X", then the chunk runs as commands) cannot smuggle AUTH"""
        r, ehlo = self.smtp_ehlo("mx")
        self.assertNotIn(b"CHUNKING", ehlo)
        chunk = ("AUTH PLAIN %s\r\n" % plain("test", PASSWORD)).encode()
        r.send(b"BDAT %d X\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        self.assertEqual(r.read_line(), SMTP_NEED_TLS)
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        self.quit(r)
        conn = self.assertServerGot(r, ["EHLO client.test", "NOOP", "QUIT"])
        self.assertEqual(self.s.events("auth", conn=conn), [])
        self.log_for(r, "action=refuse reason=command-before-tls")

    # --- STARTTLS command injection (CVE-2011-0411)
    def injection_then_session(self, r, injected):
        """after the handshake: the session works, the injected line never ran"""
        r.starttls()
        r.sendline("EHLO after.test")
        self.assertEqual(r.read_until(SMTP_REPLY), EHLO_AFTER_TLS)
        r.sendline("AUTH PLAIN " + plain("test", PASSWORD))
        self.assertEqual(r.read_line(), b"235 2.7.0 Authentication successful\r\n")
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", "EHLO after.test",
                                    "AUTH PLAIN " + plain("test", PASSWORD), "QUIT"])
        self.log_for(r, "action=discard reason=injection bytes=%d" % len(injected))

    def test_injection_in_the_starttls_segment_is_discarded(self):
        r, _ = self.smtp_ehlo("submission")
        r.send(b"STARTTLS\r\nEHLO x\r\n")
        self.assertEqual(r.read_line(), SMTP_GO_TLS)
        self.injection_then_session(r, b"EHLO x\r\n")

    def test_injection_sent_before_the_reply_is_discarded(self):
        r, _ = self.smtp_ehlo("submission")
        nodelay(r)
        r.send(b"STARTTLS\r\n")
        r.send(b"EHLO x\r\n")           # a segment of its own, before the 220 is read
        self.assertEqual(r.read_line(), SMTP_GO_TLS)
        self.injection_then_session(r, b"EHLO x\r\n")

    def test_injection_sent_after_the_reply_is_discarded(self):
        r, _ = self.smtp_ehlo("submission")
        r.send(b"STARTTLS\r\n")
        self.assertEqual(r.read_line(), SMTP_GO_TLS)
        r.send(b"EHLO x\r\n")           # plaintext after the 220, before the ClientHello
        self.injection_then_session(r, b"EHLO x\r\n")

    def test_injected_credentials_are_discarded(self):
        secret = unique("injected-pw")
        blob = plain("test", secret)
        injected = ("AUTH PLAIN %s\r\nMAIL FROM:<evil@x>\r\n" % blob).encode()
        for port in ("submission", "mx"):
            with self.subTest(port=port):
                r, _ = self.smtp_ehlo(port)
                r.send(b"STARTTLS\r\n" + injected)
                self.assertEqual(r.read_line(), SMTP_GO_TLS)
                r.starttls()
                r.sendline("EHLO after.test")
                self.assertEqual(r.read_until(SMTP_REPLY), EHLO_AFTER_TLS)
                self.quit(r)
                self.assertServerGot(r, ["EHLO client.test", "EHLO after.test", "QUIT"])
                self.log_for(r, "action=discard reason=injection bytes=%d" % len(injected))
        self.assertNeverSeen(secret, blob)

    # --- limits: RFC 5321 4.5.3.1.4, 512 octets with the CRLF
    def test_line_limit(self):
        longest = "NOOP " + "x" * (SMTP_LINE_MAX - len("NOOP ") - 2)
        r, _ = self.smtp_ehlo("submission")
        r.sendline(longest)
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n", "512 octets is a legal line")
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", longest, "QUIT"])

        r, _ = self.smtp_ehlo("submission")
        r.sendline(longest + "x")
        self.assertEqual(r.read_all(), SMTP_TOO_LONG, "513 octets: the reply, then the close")
        self.assertServerGot(r, ["EHLO client.test"])
        self.log_for(r, "action=close reason=line-too-long")

    def test_line_limit_after_tls_is_the_daemons(self):
        """inside TLS long lines stream through: the daemon applies its own limit"""
        r, _ = self.smtp_ehlo("submission")
        self.starttls(r)
        long = "NOOP " + "y" * 2000
        r.sendline(long)
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")
        self.quit(r)
        self.assertServerGot(r, ["EHLO client.test", "EHLO client.test", long, "QUIT"])


if __name__ == "__main__":
    import unittest
    unittest.main()
