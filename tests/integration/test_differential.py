"""test_differential.py - hostile pre-TLS byte streams against the filter and the real daemons

The pre-TLS filters must frame every byte as the daemon behind them does
(STYLE.md, "learnt the hard way"): whatever Postfix or Dovecot executes
before TLS, the filter must have seen as a command, or closed first.  Each
row of STREAMS is a byte stream an attacker on the wire (or a client with
TLS switched off) sends to a port of the real Postfix 3.7 or Dovecot 2.3
behind tlspolicyd (daemons.py, tls_by = module, so the daemons serve
plaintext and accept credentials in clear: only the filter stands between
them and the wire).  The rows come from issue 9 (an invalid IMAP tag before
a "{n+}" literal, Postfix's ".\\r\\r\\n" end of data, SASL-IR), the "NO
STARTTLS" study (Poddebniak et al., USENIX Security 2021: commands
pipelined after STARTTLS, credentials before TLS) and the SMTP smuggling
advisories of December 2023 (Postfix, Exim, Sendmail: "\\n.\\n",
"\\r\\n.\\n", ".\\r\\r\\n", bare CR, NUL), and BDAT sizes Postfix rejects.

For every row, besides the row's own event in tlspolicyd's log:
- the wire carries no authentication success (235, "Logged in");
- the daemon's own log shows no authentication for that connection
  (Postfix: no "sasl_method=" line for the client's port; Dovecot: no
  "Login:" with its rport), and what the daemon read holds no credential
  command: Postfix's debug_peer_list logs every command line it reads
  ("< unknown[127.0.0.2]:PORT: ..."): no AUTH, and on the starttls port no
  MAIL, RCPT, DATA or BDAT; Dovecot's login processes run with a rawlog
  (imap-login -R, pop3-login -R: every octet they read): no line that is
  a LOGIN, AUTHENTICATE, USER, PASS, APOP or AUTH command.
Each row is also a row of tests/unit/check_filter.c (the byte-exact
decision) and a seed in tests/fuzz/corpus/.  Without the filter's framing
fixes the ".\\r\\r\\n", BDAT and invalid-tag rows end in "235
Authentication successful" and "a OK ... Logged in" in clear.
"""

import base64
import os
import re
import time

import daemons
import harness
from modcommon import logged_client

PORTS = {
    "mx": ("smtp", "opportunistic"),        # Postfix's smtpd, SASL enabled: a submission port left opportunistic
    "sub": ("smtp", "starttls"),
    "imap-o": ("imap", "opportunistic"),
    "pop3-o": ("pop3", "opportunistic"),
}
CLIENT = "127.0.0.2"

CREDS = base64.b64encode(b"\0%s\0%s" % (daemons.USER.encode(), daemons.PASSWORD.encode()))
AUTH = b"AUTH PLAIN " + CREDS + b"\r\n"
LOGIN = b"a LOGIN %s %s\r\n" % (daemons.USER.encode(), daemons.PASSWORD.encode())
MAIL = b"MAIL FROM:<a@client.test>\r\nRCPT TO:<%s>\r\nDATA\r\n" % daemons.ADDRESS.encode()

# (name, port, steps, the event tlspolicyd logs); a step sends bytes, or
# ("expect", bytes) waits for them from the server
STREAMS = [
    # SMTP smuggling: where does DATA end?
    ("smtp: .CR CR LF, AUTH behind it", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), MAIL, ("expect", b"354 "),
      b"Subject: x\r\n\r\nx\r\n.\r\r\n" + AUTH + b"QUIT\r\n"],
     r"action=close reason=ambiguous-end-of-data"),
    ("smtp: LF . LF, AUTH behind it", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), MAIL, ("expect", b"354 "),
      b"Subject: x\r\n\r\nx\n.\n" + AUTH + b"QUIT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    ("smtp: CR LF . LF, AUTH behind it", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), MAIL, ("expect", b"354 "),
      b"Subject: x\r\n\r\nx\r\n.\n" + AUTH + b"QUIT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    ("smtp: bare CR . CR LF stays body", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), MAIL, ("expect", b"354 "),
      b"Subject: x\r\n\r\nx\r.\r\n" + AUTH + b".\r\n" + AUTH + b"QUIT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    # how Postfix reads a command line
    ("smtp: NUL after the verb", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), b"AUTH\0 PLAIN " + CREDS + b"\r\nQUIT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    ("smtp: CRs before LF", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), b"NOOP\r\r\n" + AUTH.replace(b"\r\n", b"\r\r\n") + b"QUIT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    # BDAT: Postfix answers 501 to a size or keyword it rejects, then reads the chunk as commands
    ("smtp: BDAT with a keyword Postfix rejects", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), b"BDAT %d X\r\n" % len(AUTH) + AUTH + b"QUIT\r\n"],
     r"action=refuse reason=command-before-tls"),
    ("smtp: BDAT with a size over off_t", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), b"BDAT 9300000000000000000 LAST\r\n" + AUTH + b"QUIT\r\n"],
     r"action=refuse reason=command-before-tls"),
    # NO STARTTLS: pipelined after the upgrade, commands in clear
    ("smtp: AUTH pipelined after STARTTLS", "mx",
     [b"EHLO c\r\n", ("expect", b"250 "), b"STARTTLS\r\n" + AUTH, ("expect", b"220 2.0.0 Ready to start TLS\r\n")],
     r"action=discard reason=injection bytes=%d" % len(AUTH)),
    ("smtp: a mail transaction before STARTTLS", "sub",
     [b"EHLO c\r\n" + MAIL + b"x\r\n.\r\n" + AUTH + b"QUIT\r\n"],
     r"action=refuse reason=command-before-tls"),
    # IMAP: tags and literals as Dovecot reads them
    ("imap: invalid tag, {n+} literal holding LOGIN", "imap-o",
     [("expect", b"\r\n"), b"x* ID {%d+}\r\n" % len(LOGIN) + LOGIN + b"b LOGOUT\r\n"],
     r"action=close reason=nonsync-literal"),
    ("imap: invalid tag, {n} literal, then LOGIN", "imap-o",
     [("expect", b"\r\n"), b"x* ID {%d}\r\n" % len(LOGIN),
      ("expect", b"* BAD Error in IMAP command received by server.\r\n"), LOGIN + b"b LOGOUT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    ("imap: ] in the tag, {n+} literal holding LOGIN", "imap-o",
     [("expect", b"\r\n"), b"x] ID {%d+}\r\n" % len(LOGIN) + LOGIN + b"b LOGOUT\r\n"],
     r"action=close reason=nonsync-literal"),
    ("imap: LOGIN with {n+} literals", "imap-o",
     [("expect", b"\r\n"), b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\nb LOGOUT\r\n"
      % (len(daemons.USER), daemons.USER.encode(), len(daemons.PASSWORD), daemons.PASSWORD.encode())],
     r"action=close reason=nonsync-literal"),
    ("imap: SASL-IR before TLS", "imap-o",
     [("expect", b"\r\n"), b"a AUTHENTICATE PLAIN " + CREDS + b"\r\nb LOGOUT\r\n"],
     r"action=refuse reason=auth-before-tls"),
    ("imap: LOGIN pipelined after STARTTLS", "imap-o",
     [("expect", b"\r\n"), b"s STARTTLS\r\n" + LOGIN, ("expect", b"s OK Begin TLS negotiation now.\r\n")],
     r"action=discard reason=injection bytes=%d" % len(LOGIN)),
    # POP3
    ("pop3: NUL after USER", "pop3-o",
     [("expect", b"\r\n"), b"USER\0 %s\r\nPASS %s\r\nQUIT\r\n" % (daemons.USER.encode(), daemons.PASSWORD.encode())],
     r"action=refuse reason=auth-before-tls"),
    ("pop3: USER PASS pipelined after STLS", "pop3-o",
     [("expect", b"\r\n"), b"STLS\r\nUSER %s\r\nPASS %s\r\n" % (daemons.USER.encode(), daemons.PASSWORD.encode()),
      ("expect", b"+OK Begin TLS negotiation now.\r\n")],
     r"action=discard reason=injection"),
]

SUCCESS = re.compile(rb"^235 |^\S+ OK .*Logged in|^\+OK Logged in", re.M)
# a line Dovecot reads as a credential command (IMAP: any tag; POP3)
CREDENTIAL_COMMAND = re.compile(rb"(?im)^(\S+ (LOGIN|AUTHENTICATE)|USER|PASS|APOP|AUTH)\b")


class DifferentialTest(harness.TestCase):
    timeout = 120

    @classmethod
    def setUpClass(cls):
        daemons.require_daemons()
        cls.s = harness.Setup(PORTS, server=False)
        cls.addClassCleanup(cls.s.close)
        # SASL on every smtpd, and every command line of 127.0.0.2 in the log
        cls.pf = daemons.Postfix(cls.s, smtp="mx", submission="sub",
                                 main_cf="smtpd_sasl_auth_enable = yes\ndebug_peer_list = %s\n" % CLIENT,
                                 submission_options=("smtpd_sasl_auth_enable=yes",))
        cls.addClassCleanup(cls.pf.close)
        # the login processes' rawlog: what they read, octet for octet (not
        # chrooted, so that the directory is one path for the test and them)
        cls.rawlog = os.path.join(cls.s.tmp, "dovecot-rawlog")
        os.mkdir(cls.rawlog)
        os.chmod(cls.rawlog, 0o1777)
        rawlog = "".join("service %s-login {\n  chroot =\n  executable = %s-login -R %s\n}\n"
                         % (p, p, cls.rawlog) for p in ("imap", "pop3"))
        cls.dc = daemons.Dovecot(cls.s, imap="imap-o", pop3="pop3-o",
                                 sasl_socket=daemons.Postfix.sasl_socket(cls.s), extra_conf=rawlog)
        cls.addClassCleanup(cls.dc.close)

    def rawlog_input(self, seen):
        """what Dovecot's login processes read into rawlog files not in seen (names)"""
        out = b""
        for name in sorted(os.listdir(self.rawlog)):
            if name.endswith(".in") and name not in seen:
                with open(os.path.join(self.rawlog, name), "rb") as f:
                    out += f.read()
        return out

    def play(self, port, steps):
        """send the steps, then read what comes until the session ends; the bytes received"""
        r = self.s.raw(port, source=CLIENT)
        got = b""
        for step in steps:
            if isinstance(step, tuple):
                got += r.read_until(step[1])
            else:
                r.send(step)
        time.sleep(0.3)
        got += r.read_for(1.5)
        r.close()
        return r, got

    def postfix_lines(self, r):
        """the command lines Postfix read from this client (debug_peer_list)"""
        rx = re.compile(r"postfix/\S+\[\d+\]: < unknown\[%s\]:%d: (.*)$" % (re.escape(CLIENT), r.local[1]), re.M)
        return rx.findall(self.pf.log)

    def assert_nothing_executed(self, name, port, r, got, seen):
        self.assertNotRegex(got, SUCCESS, "%s: an authentication succeeded in clear" % name)
        if PORTS[port][0] == "smtp":
            # Postfix has seen the connection end before its log is read
            self.pf.wait_log(r"disconnect from unknown\[%s\]:%d" % (re.escape(CLIENT), r.local[1]), timeout=10)
            self.assertNotRegex(self.pf.log, r"client=unknown\[%s\]:%d, sasl_method="
                                % (re.escape(CLIENT), r.local[1]), name)
            lines = self.postfix_lines(r)
            self.assertTrue(lines, "%s: debug_peer_list logs what Postfix read" % name)
            self.assertFalse([l for l in lines if re.match(r"(?i)auth\b", l)],
                             "%s: an AUTH reached Postfix before TLS: %r" % (name, lines))
            if PORTS[port][1] == "starttls":
                self.assertFalse([l for l in lines if re.match(r"(?i)(mail|rcpt|data|bdat)\b", l)],
                                 "%s: a mail transaction reached Postfix before TLS: %r" % (name, lines))
        else:
            time.sleep(0.2)
            self.assertNotIn("rport=%d," % r.local[1],
                             "\n".join(l for l in self.dc.log.splitlines() if "Login: " in l),
                             "%s: Dovecot logged a login for this connection" % name)
            raw = self.rawlog_input(seen)
            self.assertNotRegex(raw, CREDENTIAL_COMMAND,
                                "%s: a credential command reached Dovecot before TLS: %r" % (name, raw))

    def test_hostile_streams(self):
        for name, port, steps, event in STREAMS:
            with self.subTest(stream=name):
                seen = set(os.listdir(self.rawlog))
                r, got = self.play(port, steps)
                self.assert_nothing_executed(name, port, r, got, seen)
                who = r"^tlspolicy: port=\d+ client=%s mode=\S+ " % re.escape(logged_client(r))
                daemons.wait_text(lambda: self.s.log, who + event, 5, "tlspolicyd's log")
        # the rawlog does hold what the login processes read: the forwarded
        # line of the invalid-tag row, and its LOGIN answered by the filter
        self.assertIn(b"x* ID {%d}\r\n" % len(LOGIN), self.rawlog_input(set()))

    def test_capabilities_invite_no_credentials_before_tls(self):
        """item 7 against the real daemons: before TLS no AUTH, CHUNKING
        (Postfix), no AUTH=, SASL-IR, LITERAL+ (Dovecot's greeting and
        CAPABILITY), no SASL, USER (POP3 CAPA); after STARTTLS they are back"""
        r = self.s.raw("mx", source=CLIENT)
        r.read_until(b"\r\n")
        r.send(b"EHLO c\r\n")
        ehlo = r.read_until(re.compile(rb"^250 [^\r\n]*\r\n", re.M))
        self.assertIn(b"250-STARTTLS\r\n", ehlo)
        self.assertNotRegex(ehlo, rb"AUTH|CHUNKING")
        r.send(b"STARTTLS\r\n")
        r.read_until(b"220 2.0.0 Ready to start TLS\r\n")
        r.starttls()
        r.send(b"EHLO c\r\n")
        ehlo = r.read_until(re.compile(rb"^250 [^\r\n]*\r\n", re.M))
        self.assertRegex(ehlo, rb"250[- ]AUTH PLAIN LOGIN\r\n")
        self.assertRegex(ehlo, rb"250[- ]CHUNKING\r\n")
        r.close()

        r = self.s.raw("imap-o", source=CLIENT)
        greeting = r.read_until(b"\r\n")
        r.send(b"c CAPABILITY\r\n")
        caps = r.read_until(b"c OK")
        for text in (greeting, caps):
            self.assertIn(b"STARTTLS", text)
            self.assertIn(b"LOGINDISABLED", text)
            self.assertNotRegex(text, rb"AUTH=|SASL-IR|LITERAL[+-]")
        r.read_until(b"\r\n")
        r.send(b"s STARTTLS\r\n")
        r.read_until(b"s OK Begin TLS negotiation now.\r\n")
        r.starttls()
        r.send(b"c CAPABILITY\r\n")
        caps = r.read_until(b"c OK")
        for cap in (b"AUTH=PLAIN", b"SASL-IR", b"LITERAL+"):
            self.assertIn(cap, caps)
        self.assertNotRegex(caps, rb"STARTTLS|LOGINDISABLED")
        r.send(b"l LOGIN %s %s\r\n" % (daemons.USER.encode(), daemons.PASSWORD.encode()))
        self.assertRegex(r.read_until(re.compile(rb"^l [^\r\n]*\r\n", re.M)), rb"l OK ")
        r.close()

        r = self.s.raw("pop3-o", source=CLIENT)
        r.read_until(b"\r\n")
        r.send(b"CAPA\r\n")
        capa = r.read_until(b"\r\n.\r\n")
        self.assertIn(b"\r\nSTLS\r\n", capa)
        self.assertNotRegex(capa, rb"\r\n(SASL|USER)\b")
        r.send(b"STLS\r\n")
        r.read_until(b"+OK Begin TLS negotiation now.\r\n")
        r.starttls()
        r.send(b"CAPA\r\n")
        capa = r.read_until(b"\r\n.\r\n")
        self.assertIn(b"\r\nUSER\r\n", capa)
        self.assertRegex(capa, rb"\r\nSASL PLAIN LOGIN\r\n")
        r.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
