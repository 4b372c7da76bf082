"""test_daemons_module.py - Debian's Postfix and Dovecot under the shim, tls_by = module

tlspolicyd does TLS in front of the real daemons, which serve plaintext
behind it (daemons.py runs them as private instances on loopback high
ports, configured with their own TLS as a host has them, then put under
the shim by the real `tlspolicyctl enable`, which turns their TLS off on
these ports).  What DESIGN.md promises, checked against the real programs:

- Postfix, submission on a STARTTLS port and submissions on an implicit
  one: AUTH hidden and refused (530 5.7.0) before STARTTLS, accepted after
  against Dovecot's SASL; a message submitted with swaks is delivered.
- The address Postfix's smtpd sees is the client's real one, in its own
  chrooted process: it logs 127.0.0.2 and the client's port, and the
  open-relay trap holds (mynetworks = 127.0.0.1/32: a client from
  127.0.0.2 that does not authenticate may not relay; 127.0.0.1 may).
- Dovecot, IMAP and POP3 on a STARTTLS and an implicit port each: LOGIN
  and USER refused in clear with the exact replies, login after TLS, the
  message Postfix delivered fetched and retrieved; with service_count = 1
  (imap-login hands the client to imap and exits) and 0; sessions live
  past default_idle_kill and across `doveadm reload`; Dovecot logs the
  real rip and rport.

Clients connect from 127.0.0.2 where the address matters, so that a
relayed socket that went unanswered (the socketpair, or 127.0.0.1) shows.
"""

import re
import time

import daemons
import harness
from modcommon import (IMAP_GO_TLS, IMAP_NEED_TLS, POP3_GO_TLS, POP3_NEED_TLS, SMTP_GO_TLS,
                       SMTP_NEED_TLS, SMTP_REPLY, plain, unique)

PORTS = {
    "smtp": ("smtp", "opportunistic"),      # 25-style MX: no SASL on this smtpd
    "submission": ("smtp", "starttls"),     # 587-style
    "submissions": ("smtp", "implicit"),    # 465-style
    "imap": ("imap", "starttls"),           # 143-style
    "imaps": ("imap", "implicit"),          # 993-style
    "pop3": ("pop3", "starttls"),           # 110-style
    "pop3s": ("pop3", "implicit"),          # 995-style
}

CLIENT = "127.0.0.2"        # outside mynetworks
TRUSTED = "127.0.0.1"       # mynetworks
OUTSIDE = "victim@elsewhere.example"
IDLE_KILL = 2               # default_idle_kill, seconds

RELAY_DENIED = "554 5.7.1 <%s>: Relay access denied\r\n" % OUTSIDE


class DaemonCase(harness.TestCase):
    """tlspolicyd, Postfix and Dovecot for the whole class"""

    timeout = 60
    service_count = 1

    @classmethod
    def setUpClass(cls):
        daemons.require_daemons()
        harness.require("swaks")
        cls.s = harness.Setup(PORTS, server=False, shim_log=True)
        cls.addClassCleanup(cls.s.close)
        cls.pf = daemons.Postfix(cls.s, smtp="smtp", submission="submission", submissions="submissions",
                                 postscreen=True)
        cls.addClassCleanup(cls.pf.close)
        cls.dc = daemons.Dovecot(cls.s, imap="imap", imaps="imaps", pop3="pop3", pop3s="pop3s",
                                 service_count=cls.service_count, idle_kill=IDLE_KILL,
                                 sasl_socket=daemons.Postfix.sasl_socket(cls.s))
        cls.addClassCleanup(cls.dc.close)

    # --- SMTP
    def smtp_cmd(self, r, line):
        """send a command line, return the whole reply"""
        r.sendline(line)
        return r.read_until(SMTP_REPLY)

    def smtp_greeted(self, name, source=CLIENT, tls=False):
        r = self.s.raw(name, tls=tls, source=source)
        greeting = r.read_until(SMTP_REPLY)
        # postscreen's first "220-" line is its pregreet test, for a client it does not know yet
        self.assertRegex(greeting, rb"^(220-mail\.test ESMTP[^\r\n]*\r\n)?220 mail\.test ESMTP")
        return r

    def swaks(self, name, *args, source=CLIENT):
        """swaks from source to test@mail.test through a submission port; (subject, rc, output)"""
        subject = unique("swaks")
        rc, out, err = harness.run(["swaks", "--server", "127.0.0.1", "--port", str(self.s.ports[name]),
                                    "--local-interface", source, "--from", "a@client.test",
                                    "--to", daemons.ADDRESS, "--helo", "client.test",
                                    "--header", "Subject: " + subject, "--timeout", "10", *args])
        return subject, rc, out + err

    def submit(self, name="submission", tls="--tls"):
        """a message submitted with AUTH PLAIN over TLS; its subject, once
        delivered, and swaks's transcript"""
        subject, rc, out = self.swaks(name, tls, "--auth", "PLAIN", "--auth-user", daemons.USER,
                                      "--auth-password", daemons.PASSWORD)
        self.assertEqual(rc, 0, out)
        self.assertIn("<~  235 2.7.0 Authentication successful", out)
        self.pf.wait_message(("Subject: %s\n" % subject).encode())
        return subject, out

    def maillog_connect(self, r):
        """Postfix's "connect from" line for a Raw client (address and port)"""
        host, port = r.local
        return self.pf.wait_log(r"postfix/[\w/]+\[\d+\]: connect from (\S+)\[%s\]:%d$"
                                % (re.escape(host), port))

    # --- IMAP and POP3
    def imap_cmd(self, r, tag, line):
        r.sendline("%s %s" % (tag, line))
        return r.read_until(re.compile(rb"^%s [^\r\n]*\r\n" % tag.encode(), re.M))

    def dovecot_login_line(self, proto, r):
        """Dovecot's "Login:" line for the client r (its rip and rport)"""
        host, port = r.local
        return self.dc.wait_log(r"%s-login: Info: Login: user=<%s>, method=\S+, rip=%s, rport=%d, "
                                r"lip=127\.0\.0\.1, lport=(\d+)" % (proto, daemons.USER, re.escape(host), port))

    def login_processes(self, proto):
        return {p for p in self.dc.pids() if daemons.process_name(p) == proto + "-login"}

    def imap_logged_in(self, name="imaps"):
        """an imaplib client from CLIENT, logged in over TLS, INBOX selected"""
        c = (self.s.imap_ssl if name == "imaps" else self.s.imap)(name, source=CLIENT)
        if name != "imaps":
            c.starttls()
        self.assertEqual(c.login(daemons.USER, daemons.PASSWORD)[0], "OK")
        self.assertEqual(c.select("INBOX")[0], "OK")
        return c

    def imap_fetch(self, c, subject):
        """the message with that subject, fetched with c"""
        typ, data = c.search(None, "SUBJECT", '"%s"' % subject)
        self.assertEqual(typ, "OK")
        nums = data[0].split()
        self.assertEqual(len(nums), 1, "one message with subject %s: %r" % (subject, data))
        typ, data = c.fetch(nums[0], "(RFC822)")
        self.assertEqual(typ, "OK")
        return data[0][1]


class PostfixTests:
    """Postfix's smtpd under the shim"""

    def test_submission_auth_only_after_starttls(self):
        r = self.smtp_greeted("submission")
        ehlo = self.smtp_cmd(r, "EHLO client.test")
        self.assertIn(b"250-STARTTLS\r\n", ehlo)
        self.assertNotIn(b"AUTH", ehlo, "AUTH is hidden before STARTTLS")
        wrong = unique("pw")
        self.assertEqual(self.smtp_cmd(r, "AUTH PLAIN " + plain(daemons.USER, wrong)), SMTP_NEED_TLS)
        self.assertEqual(self.smtp_cmd(r, "MAIL FROM:<a@client.test>"), SMTP_NEED_TLS)
        self.assertEqual(self.smtp_cmd(r, "STARTTLS"), SMTP_GO_TLS)
        r.starttls()
        ehlo = self.smtp_cmd(r, "EHLO client.test")
        self.assertRegex(ehlo, rb"250[- ]AUTH PLAIN LOGIN\r\n", "Postfix's AUTH, from Dovecot's mechanisms")
        self.assertNotIn(b"STARTTLS", ehlo)
        self.assertEqual(self.smtp_cmd(r, "AUTH PLAIN " + plain(daemons.USER, daemons.PASSWORD)),
                         b"235 2.7.0 Authentication successful\r\n")
        subject = unique("starttls")
        self.assertEqual(self.smtp_cmd(r, "MAIL FROM:<a@client.test>"), b"250 2.1.0 Ok\r\n")
        self.assertEqual(self.smtp_cmd(r, "RCPT TO:<%s>" % daemons.ADDRESS), b"250 2.1.5 Ok\r\n")
        self.assertEqual(self.smtp_cmd(r, "DATA"), b"354 End data with <CR><LF>.<CR><LF>\r\n")
        r.send("From: a@client.test\r\nTo: %s\r\nSubject: %s\r\n\r\nHello.\r\n" % (daemons.ADDRESS, subject))
        self.assertRegex(self.smtp_cmd(r, "."), rb"^250 2\.0\.0 Ok: queued as \w+\r\n$")
        self.assertEqual(self.smtp_cmd(r, "QUIT"), b"221 2.0.0 Bye\r\n")
        self.pf.wait_message(("Subject: %s\n" % subject).encode())

        host, port = r.local
        client = r"unknown\[%s\]:%d" % (re.escape(host), port)
        self.maillog_connect(r)
        self.pf.wait_log(r"postfix/submission/smtpd\[\d+\]: \w+: client=%s, sasl_method=PLAIN, "
                         r"sasl_username=%s$" % (client, daemons.USER))
        self.assertNotRegex(self.pf.log, r"%s: SASL \S+ authentication failed" % client,
                            "the AUTH refused before STARTTLS never reached Postfix")
        self.assertNotIn(wrong, self.pf.log + self.dc.log)

    def test_submissions_implicit_with_swaks(self):
        subject, out = self.submit("submissions", "--tlsc")
        self.assertIn("<~  250-AUTH PLAIN LOGIN\n", out, "AUTH offered at once over implicit TLS")
        self.assertNotIn("STARTTLS", out)
        m = self.pf.wait_message(("Subject: %s\n" % subject).encode())
        self.assertIn(b"Received: from client.test (unknown [127.0.0.2])", m)
        self.assertRegex(m, rb"\tby mail\.test \(Postfix\) with ESMTPA id ")

    def test_swaks_without_tls_gets_no_auth(self):
        subject, rc, out = self.swaks("submission", "--auth", "PLAIN", "--auth-user", daemons.USER,
                                      "--auth-password", daemons.PASSWORD)
        self.assertEqual(rc, 28, out)       # swaks: the server offers no AUTH
        self.assertIn("<-  250-STARTTLS", out)
        self.assertNotRegex(out, r"<-  250.AUTH")

    def test_client_address_is_the_real_one(self):
        """smtpd logs the client's own address and port on every port; on
        the MX port postscreen accepted, and logs the real local address
        too (getsockname), and smtpd got the socket passed from it"""
        for name in ("smtp", "submission", "submissions"):
            with self.subTest(port=name):
                r = self.smtp_greeted(name, tls=(name == "submissions"))
                self.assertEqual(r.local[0], CLIENT)
                self.assertEqual(self.maillog_connect(r).group(1), "unknown",
                                 "no PTR lookup (smtpd_peername_lookup = no)")
                if name == "smtp":
                    self.pf.wait_log(r"postfix/postscreen\[\d+\]: CONNECT from \[127\.0\.0\.2\]:%d "
                                     r"to \[127\.0\.0\.1\]:%d$" % (r.local[1], self.s.ports["smtp"]))
                self.smtp_cmd(r, "QUIT")
        self.assertNotRegex(self.pf.log, r"connect from \S*\[unknown\]", "no client without an address")
        self.assertNotIn("localhost[127.0.0.1]", self.pf.log)

    def test_open_relay_trap(self):
        """with mynetworks = 127.0.0.1/32, relaying is refused to 127.0.0.2 and
        allowed to 127.0.0.1: smtpd's getpeername is answered in its own
        (chrooted) process, on a socket it accepted through the shim"""
        for name in ("smtp", "submission", "submissions"):
            for source, want in ((CLIENT, RELAY_DENIED.encode()), (TRUSTED, b"250 2.1.5 Ok\r\n")):
                with self.subTest(port=name, source=source):
                    r = self.smtp_greeted(name, source=source, tls=(name == "submissions"))
                    if name == "submission":
                        self.assertEqual(self.smtp_cmd(r, "STARTTLS"), SMTP_GO_TLS)
                        r.starttls()
                    self.assertTrue(self.smtp_cmd(r, "EHLO client.test").startswith(b"250-"))
                    self.assertEqual(self.smtp_cmd(r, "MAIL FROM:<a@client.test>"), b"250 2.1.0 Ok\r\n")
                    self.assertEqual(self.smtp_cmd(r, "RCPT TO:<%s>" % OUTSIDE), want)
                    self.assertEqual(self.smtp_cmd(r, "RCPT TO:<%s>" % daemons.ADDRESS), b"250 2.1.5 Ok\r\n",
                                     "a local recipient is fine from anywhere")
                    self.assertEqual(self.smtp_cmd(r, "QUIT"), b"221 2.0.0 Bye\r\n")
                    if source == CLIENT:
                        self.pf.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.2\]:%d: 554 5\.7\.1 "
                                         r"<%s>: Relay access denied" % (r.local[1], re.escape(OUTSIDE)))


    def test_session_survives_postfix_reload(self):
        """`postfix reload` lets an smtpd finish its session: it does, through
        tlspolicyd, and the message is delivered"""
        r = self.smtp_greeted("submissions", tls=True)
        self.assertTrue(self.smtp_cmd(r, "EHLO client.test").startswith(b"250-"))
        self.assertEqual(self.smtp_cmd(r, "AUTH PLAIN " + plain(daemons.USER, daemons.PASSWORD)),
                         b"235 2.7.0 Authentication successful\r\n")
        rc, out, err = self.pf.postfix("reload")
        self.assertEqual(rc, 0, out + err)
        self.pf.wait_log(r"postfix/master\[\d+\]: reload -- version")
        subject = unique("reload")
        self.assertEqual(self.smtp_cmd(r, "MAIL FROM:<a@client.test>"), b"250 2.1.0 Ok\r\n")
        self.assertEqual(self.smtp_cmd(r, "RCPT TO:<%s>" % daemons.ADDRESS), b"250 2.1.5 Ok\r\n")
        self.assertEqual(self.smtp_cmd(r, "DATA"), b"354 End data with <CR><LF>.<CR><LF>\r\n")
        r.send("Subject: %s\r\n\r\nHello.\r\n" % subject)
        self.assertRegex(self.smtp_cmd(r, "."), rb"^250 2\.0\.0 Ok: queued as \w+\r\n$")
        self.assertEqual(self.smtp_cmd(r, "QUIT"), b"221 2.0.0 Bye\r\n")
        self.pf.wait_message(("Subject: %s\n" % subject).encode())
        self.smtp_cmd(self.smtp_greeted("submission"), "QUIT")     # and the new smtpd serves

    def test_fail_closed_when_tlspolicyd_is_down(self):
        """no tlspolicyd: every managed port of Postfix (postscreen and
        smtpd) and Dovecot (imap-login, pop3-login) closes the connection
        unserved, and the shim in those chrooted processes says why; with
        tlspolicyd back, they serve again"""
        self.s.stop_daemon()
        try:
            for name in PORTS:
                with self.subTest(port=name):
                    r = self.s.raw(name, source=CLIENT)
                    self.assertEqual(r.read_all(), b"", "closed, nothing served in plaintext")
                    self.s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=close reason=tlspolicyd-unreachable "
                                         r"error=\"Connection refused\"$" % self.s.ports[name])
                    self.assertNotRegex(self.pf.log, r"\[127\.0\.0\.2\]:%d\b" % r.local[1])
                    self.assertNotIn("rport=%d," % r.local[1], self.dc.log)
        finally:
            self.s.start_daemon()
        r = self.smtp_greeted("submission")
        self.assertEqual(self.smtp_cmd(r, "QUIT"), b"221 2.0.0 Bye\r\n")
        self.imap_logged_in("imaps").logout()


class DovecotTests:
    """Dovecot's imap-login and pop3-login under the shim, the hand-off to imap and pop3"""

    def test_imap_starttls_port(self):
        r = self.s.raw("imap", source=CLIENT)
        greeting = r.read_line()
        self.assertRegex(greeting, rb"^\* OK \[CAPABILITY [^]]* STARTTLS LOGINDISABLED\] Dovecot")
        self.assertNotIn(b"AUTH=", greeting)
        wrong = unique("pw")
        self.assertEqual(self.imap_cmd(r, "a1", "LOGIN %s %s" % (daemons.USER, wrong)), b"a1 " + IMAP_NEED_TLS)
        self.assertEqual(self.imap_cmd(r, "a2", "AUTHENTICATE PLAIN " + plain(daemons.USER, wrong)),
                         b"a2 " + IMAP_NEED_TLS)
        self.assertEqual(self.imap_cmd(r, "a3", "STARTTLS"), b"a3 " + IMAP_GO_TLS)
        r.starttls()
        caps = self.imap_cmd(r, "a4", "CAPABILITY")
        self.assertIn(b"AUTH=PLAIN", caps)
        self.assertNotIn(b"STARTTLS", caps)
        self.assertNotIn(b"LOGINDISABLED", caps)
        self.assertRegex(self.imap_cmd(r, "a5", "LOGIN %s %s" % (daemons.USER, daemons.PASSWORD)),
                         rb"a5 OK (\[CAPABILITY [^]]*\] )?Logged in\r\n$")
        self.assertRegex(self.imap_cmd(r, "a6", "SELECT INBOX"), rb"a6 OK \[READ-WRITE\]")
        self.assertRegex(self.imap_cmd(r, "a7", "LOGOUT"), rb"a7 OK Logout completed")
        lport = int(self.dovecot_login_line("imap", r).group(1))
        self.assertEqual(lport, self.s.ports["imap"], "getsockname gives the real local port")
        self.assertNotIn(wrong, self.dc.log)
        self.assertNotRegex(self.dc.log, r"auth failed|Disconnected \(auth failed",
                            "the refused LOGIN never reached Dovecot")

    def test_pop3_starttls_port(self):
        r = self.s.raw("pop3", source=CLIENT)
        self.assertRegex(r.read_line(), rb"^\+OK Dovecot")
        r.sendline("CAPA")
        caps = r.read_until(b"\r\n.\r\n")
        self.assertIn(b"\r\nSTLS\r\n", caps)
        self.assertNotRegex(caps, rb"\r\n(USER|SASL[^\r]*)\r\n")
        wrong = unique("pw")
        r.sendline("USER " + daemons.USER)
        self.assertEqual(r.read_line(), POP3_NEED_TLS)
        r.sendline("AUTH PLAIN " + plain(daemons.USER, wrong))
        self.assertEqual(r.read_line(), POP3_NEED_TLS)
        r.sendline("STLS")
        self.assertEqual(r.read_line(), POP3_GO_TLS)
        r.starttls()
        r.sendline("CAPA")
        caps = r.read_until(b"\r\n.\r\n")
        self.assertIn(b"\r\nUSER\r\n", caps)
        self.assertRegex(caps, rb"\r\nSASL PLAIN LOGIN\r\n")
        self.assertNotIn(b"STLS", caps)
        r.sendline("USER " + daemons.USER)
        self.assertEqual(r.read_line()[:3], b"+OK")
        r.sendline("PASS " + daemons.PASSWORD)
        self.assertEqual(r.read_line(), b"+OK Logged in.\r\n")
        r.sendline("STAT")
        self.assertRegex(r.read_line(), rb"^\+OK \d+ \d+\r\n$")
        r.sendline("QUIT")
        self.assertRegex(r.read_line(), rb"^\+OK Logging out")
        lport = int(self.dovecot_login_line("pop3", r).group(1))
        self.assertEqual(lport, self.s.ports["pop3"])
        self.assertNotIn(wrong, self.dc.log)

    def test_end_to_end_submit_then_fetch_over_implicit_tls(self):
        """submitted with AUTH after STARTTLS through Postfix, fetched over
        implicit TLS through Dovecot (IMAP and POP3), all under the shim"""
        subject, out = self.submit("submission", "--tls")
        self.assertIn("<-  250-STARTTLS\n", out)
        self.assertNotRegex(out.split(" -> STARTTLS")[0], r"<-  250.AUTH", "no AUTH before STARTTLS")
        c = self.imap_logged_in("imaps")
        msg = self.imap_fetch(c, subject)
        self.assertIn(("Subject: %s\r\n" % subject).encode(), msg)
        self.assertEqual(c.logout()[0], "BYE")

        p = self.s.pop3_ssl("pop3s", source=CLIENT)
        p.user(daemons.USER)
        self.assertEqual(p.pass_(daemons.PASSWORD), b"+OK Logged in.")
        count, _ = p.stat()
        found = [n for n in range(1, count + 1)
                 if ("Subject: %s" % subject).encode() in p.retr(n)[1]]
        self.assertEqual(len(found), 1, "the message, by POP3 RETR")
        p.quit()
        self.dc.wait_log(r"imap-login: Info: Login: user=<test>, method=PLAIN, rip=127\.0\.0\.2, rport=\d+, "
                         r"lip=127\.0\.0\.1, lport=%d" % self.s.ports["imaps"])
        self.dc.wait_log(r"pop3-login: Info: Login: user=<test>, method=PLAIN, rip=127\.0\.0\.2, rport=\d+, "
                         r"lip=127\.0\.0\.1, lport=%d" % self.s.ports["pop3s"])

    def test_imap_starttls_with_imaplib(self):
        c = self.imap_logged_in("imap")
        self.assertEqual(c.noop()[0], "OK")
        self.assertEqual(c.logout()[0], "BYE")

    def test_sessions_outlive_default_idle_kill(self):
        """a logged-in session and one still in its login phase both work
        after the login processes that accepted them are gone"""
        c = self.imap_logged_in("imaps")
        pre = self.s.raw("imap", source=CLIENT)
        self.assertRegex(pre.read_line(), rb"^\* OK ")
        self.assertEqual(self.imap_cmd(pre, "b1", "STARTTLS"), b"b1 " + IMAP_GO_TLS)
        pre.starttls()
        logins_before = self.login_processes("imap")
        self.assertTrue(logins_before)
        time.sleep(IDLE_KILL + 1)
        self.assertEqual(c.noop()[0], "OK")
        self.assertRegex(self.imap_cmd(pre, "b2", "LOGIN %s %s" % (daemons.USER, daemons.PASSWORD)),
                         rb"b2 OK ")
        self.assertRegex(self.imap_cmd(pre, "b3", "SELECT INBOX"), rb"b3 OK ")
        # service_count = 1: each login process exits after its hand-off;
        # 0: a login process with no client left is killed after default_idle_kill
        deadline = time.monotonic() + 5 * IDLE_KILL
        while logins_before & self.login_processes("imap") and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertFalse(logins_before & self.login_processes("imap"),
                         "the imap-login processes that accepted the sessions are gone")
        self.assertEqual(c.noop()[0], "OK")
        self.assertRegex(self.imap_cmd(pre, "b4", "NOOP"), rb"b4 OK ")
        self.assertEqual(c.logout()[0], "BYE")

    def test_sessions_survive_reload(self):
        """logged-in IMAP and POP3 sessions work on after `doveadm reload`; a
        connection still in its login phase gets its TLS and its login
        process's answers.  (Its LOGIN would fail, as it does without the
        module: the new auth process does not know the old login process,
        "Master requested auth for nonexistent client".)"""
        c = self.imap_logged_in("imaps")
        p = self.s.pop3_ssl("pop3s", source=CLIENT)
        p.user(daemons.USER)
        p.pass_(daemons.PASSWORD)
        pre = self.s.raw("imap", source=CLIENT)
        self.assertRegex(pre.read_line(), rb"^\* OK ")
        reloads = self.dc.log.count("SIGHUP received - reloading configuration")
        self.dc.reload()
        self.dc.wait_log(r"(?s)(SIGHUP received - reloading configuration.*){%d}" % (reloads + 1))
        self.assertEqual(c.noop()[0], "OK")
        self.assertEqual(p.noop(), b"+OK")
        self.assertEqual(self.imap_cmd(pre, "c1", "STARTTLS"), b"c1 " + IMAP_GO_TLS)
        pre.starttls()
        self.assertRegex(self.imap_cmd(pre, "c2", "CAPABILITY"), rb"\* CAPABILITY [^\r]*AUTH=PLAIN[^\r]*\r\nc2 OK ")
        after = self.imap_logged_in("imaps")
        self.assertEqual(after.noop()[0], "OK")
        for client in (c, after):
            self.assertEqual(client.logout()[0], "BYE")
        p.quit()


class ServiceCount1Test(DaemonCase, PostfixTests, DovecotTests):
    """Dovecot's default: one login process per connection"""
    service_count = 1


class ServiceCount0Test(DaemonCase, DovecotTests):
    """login processes that serve many connections and are idle-killed"""
    service_count = 0


del DaemonCase
