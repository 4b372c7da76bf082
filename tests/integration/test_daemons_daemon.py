"""test_daemons_daemon.py - Debian's Postfix and Dovecot doing their own TLS, tls_by = daemon

The real daemons keep their TLS (the test certificate, harness.test_cert());
tlspolicyd filters the plaintext phase and reads the handshake going by.
Both daemons are configured weakly on purpose (daemons.py, weak=True): TLS
1.0 and SHA-1 CBC suites allowed with @SECLEVEL=0 (Debian's OpenSSL 3 has
no 3DES to offer any more, so the banned suite is ECDHE-RSA-AES128-SHA and
the policy bans SHA1), and Postfix's submission offering AUTH before
STARTTLS.  The shim gets in with the real `tlspolicyctl enable postfix`
and `enable dovecot`, which must leave the daemons' TLS settings alone on
tls_by = daemon ports.  Checked:

- enable changed nothing of the daemons' TLS (postconf, doveconf), and a
  second run changes nothing at all;
- a client forcing TLS 1.0 (openssl s_client -tls1), on every port,
  STARTTLS or implicit: the daemon's ServerHello for TLS 1.0 is held and
  the session cut, so s_client shows no session and no application data,
  the daemon logs a handshake that never completed, and tlspolicyd logs
  `action=refuse reason=version-below-floor version=TLSv1.0 ...
  tls_by=daemon hint="..."`;
- a client offering only the banned suite: likewise, `reason=banned-suite`;
- a good client (TLS 1.3) works end to end: AUTH after STARTTLS through
  Postfix's own TLS delivers a message, fetched from Dovecot over its own
  implicit TLS (IMAPS and POP3S);
- before STARTTLS tlspolicyd still hides AUTH, refuses it with DESIGN.md's
  replies (which are not the daemons' own wording), and never lets the
  credentials through.
"""

import re
import subprocess

import daemons
import harness
from modcommon import IMAP_GO_TLS, IMAP_NEED_TLS, SMTP_GO_TLS, SMTP_NEED_TLS, SMTP_REPLY, plain, unique

PORTS = {
    "submission": ("smtp", "starttls", "daemon"),      # 587-style
    "submissions": ("smtp", "implicit", "daemon"),     # 465-style
    "imap": ("imap", "starttls", "daemon"),            # 143-style
    "imaps": ("imap", "implicit", "daemon"),           # 993-style
    "pop3s": ("pop3", "implicit", "daemon"),           # 995-style
}
STARTTLS = {"submission": "smtp", "imap": "imap"}      # s_client -starttls
DAEMON_OF = {"submission": "postfix", "submissions": "postfix", "imap": "dovecot", "imaps": "dovecot",
             "pop3s": "dovecot"}
BANS = "NULL aNULL EXPORT RC4 DES 3DES MD5 SHA1"
BANNED_SUITE = "ECDHE-RSA-AES128-SHA"

CLIENT = "127.0.0.2"
S_CLIENT_TIMEOUT = 20
HINT_VERSION = "the daemon's TLS settings allow this version: raise its minimum to the policy floor"
HINT_SUITE = "the daemon's TLS settings allow this suite: remove it from the daemon's cipher list"
# what a daemon says first, in the clear or inside TLS
GREETINGS = re.compile(r"(?m)^(220 mail\.test|\* OK|\+OK)")


def s_client(port, *args, starttls=None):
    """openssl s_client to 127.0.0.1:port, reading until the server closes
    (-ign_eof: whatever the server sent is printed); (output, session):
    session is None when no session was established"""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
           "-ign_eof", *args]
    if starttls:
        cmd += ["-starttls", starttls]
    r = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=S_CLIENT_TIMEOUT)
    out = r.stdout + r.stderr
    m = re.search(r"(?m)^New, (\S+), Cipher is (\S+)", out)
    session = m.group(2) if m and m.group(2) != "(NONE)" else None
    if re.search(r"(?m)^    Master-Key: \S", out):
        session = session or "master key"
    return out, session


class DaemonRoleTest(harness.TestCase):
    """tlspolicyd, and the weak Postfix and Dovecot behind it, for the whole class"""

    timeout = 90

    @classmethod
    def setUpClass(cls):
        daemons.require_daemons()
        harness.require("swaks", "openssl")
        cls.s = harness.Setup(PORTS, server=False, policy={"global": {"ban_ciphers": BANS}})
        cls.addClassCleanup(cls.s.close)
        cls.pf = daemons.Postfix(cls.s, submission="submission", submissions="submissions", weak=True)
        cls.addClassCleanup(cls.pf.close)
        cls.dc = daemons.Dovecot(cls.s, imap="imap", imaps="imaps", pop3s="pop3s", weak=True,
                                 sasl_socket=daemons.Postfix.sasl_socket(cls.s))
        cls.addClassCleanup(cls.dc.close)

    # --- helpers
    def daemon(self, name):
        return self.pf if DAEMON_OF[name] == "postfix" else self.dc

    def log_after(self, offset, pattern, timeout=5):
        """a match of pattern in tlspolicyd's log written after offset"""
        return daemons.wait_text(lambda: self.s.log[offset:], pattern, timeout, "tlspolicyd's log")

    def refused(self, name, args, reason, detail, hint):
        """s_client with args on port name: cut off before any application
        data, no session; tlspolicyd's refusal; the daemon's handshake never
        completed.  Returns s_client's output."""
        port = self.s.ports[name]
        before = len(self.s.log)
        out, session = s_client(port, *args, starttls=STARTTLS.get(name))
        self.assertIsNone(session, "no TLS session: " + out)
        self.assertRegex(out, r"(?m)^New, \(NONE\), Cipher is \(NONE\)$")
        self.assertRegex(out, r"(?m)^    Session-ID: $")
        self.assertNotRegex(out, GREETINGS, "no application data reached the client")
        m = self.log_after(before, r"^tlspolicy: port=%d client=(127\.0\.0\.1:(\d+)) mode=%s action=refuse "
                                   r"reason=%s %s tls_by=daemon hint=\"%s\"$"
                           % (port, "implicit" if name not in STARTTLS else "starttls", reason, detail,
                              re.escape(hint)))
        client, cport = m.group(1), int(m.group(2))
        end = self.log_after(before, r"^tlspolicy: port=%d client=%s mode=\S+ action=end bytes_in=\d+ "
                                     r"bytes_out=(\d+)$" % (port, re.escape(client)))
        if name not in STARTTLS:
            self.assertEqual(end.group(1), "0", "not a byte of the daemon's handshake reached the client")
        if self.daemon(name) is self.pf:
            self.pf.wait_log(r"smtpd\[\d+\]: SSL_accept error from unknown\[127\.0\.0\.1\]:%d: " % cport)
            self.assertNotRegex(self.pf.log, r"TLS connection established from unknown\[127\.0\.0\.1\]:%d:" % cport)
        else:
            self.dc.wait_log(r"-login: Info: Disconnected: .*rport=%d, lip=127\.0\.0\.1, lport=%d, "
                             r"TLS handshaking: " % (cport, port))
        return out

    # --- enable
    def test_enable_left_the_daemons_tls_alone(self):
        """enable set up the pass-through only: every TLS setting of both
        daemons is as the fixture wrote it, and a second run changes nothing"""
        out = self.pf.enable_output
        self.assertRegex(out, r"(?m)^set main\.cf import_environment = .* LD_PRELOAD=%s TLSPOLICY_CONF=%s \(was "
                         % (re.escape(daemons.Instance.shim_path()), re.escape(self.s.conf)))
        for name in ("submission", "submissions"):
            self.assertIn("master.cf service {0} (port {0}): [port {0}] tls = {1}, tls_by = daemon: Postfix's own "
                          "TLS settings stay\n".format(self.s.ports[name], PORTS[name][1]), out)
        self.assertNotRegex(out, r"(?m)^set master\.cf", "no service of Postfix's was changed")

        def postconf(*args):
            rc, text, err = harness.run(["postconf", "-c", self.pf.confdir, *args], env=self.pf.admin_env())
            return text.strip()
        self.assertEqual(postconf("-h", "smtpd_tls_security_level", "smtpd_tls_protocols",
                                  "smtpd_tls_mandatory_protocols", "tls_medium_cipherlist").splitlines(),
                         ["may", ">=TLSv1", ">=TLSv1", "DEFAULT:@SECLEVEL=0"])
        sub, subs = self.s.ports["submission"], self.s.ports["submissions"]
        self.assertEqual(postconf("-P", "%d/inet" % sub).splitlines(),
                         ["%d/inet/smtpd_sasl_auth_enable = yes" % sub,
                          "%d/inet/smtpd_tls_security_level = may" % sub,
                          "%d/inet/syslog_name = postfix/submission" % sub])
        self.assertEqual(postconf("-P", "%d/inet" % subs).splitlines(),
                         ["%d/inet/smtpd_sasl_auth_enable = yes" % subs,
                          "%d/inet/smtpd_tls_wrappermode = yes" % subs,
                          "%d/inet/syslog_name = postfix/submissions" % subs])

        out = self.dc.enable_output
        for name in ("imap", "imaps", "pop3s"):
            self.assertRegex(out, r"(?m)^Dovecot \w+-login listener %s \(port %d\): \[port %d\] tls = %s, "
                             r"tls_by = daemon: Dovecot's own TLS settings stay$"
                             % (name, self.s.ports[name], self.s.ports[name], PORTS[name][1]))

        def doveconf(*args):
            rc, text, err = harness.run(["doveconf", "-c", self.dc.conf, *args], env=self.dc.admin_env())
            self.assertEqual(rc, 0, err)
            return text.strip()
        self.assertEqual(doveconf("-h", "ssl"), "required")
        self.assertEqual(doveconf("-h", "disable_plaintext_auth"), "yes")
        self.assertEqual(doveconf("-h", "ssl_min_protocol"), "TLSv1")
        self.assertEqual(doveconf("-h", "ssl_cipher_list"), "DEFAULT:@SECLEVEL=0")
        self.assertRegex(doveconf("-h", "import_environment"), r" LD_PRELOAD=%s TLSPOLICY_CONF=%s$"
                         % (re.escape(daemons.Instance.shim_path()), re.escape(self.s.conf)))
        self.assertRegex(doveconf("-n"), r"inet_listener imaps \{\n    port = %d\n    ssl = yes\n  \}"
                         % self.s.ports["imaps"])
        self.assertRegex(doveconf("-n"), r"inet_listener imap \{\n    port = %d\n  \}" % self.s.ports["imap"])
        with open(self.dc.conf.replace("dovecot.conf", "tlspolicy-dovecot.conf")) as f:
            ours = [l for l in f.read().splitlines() if l and not l.startswith("#")]
        self.assertEqual([l.split(" = ")[0] for l in ours], ["import_environment"])

        for instance in (self.pf, self.dc):
            rc, out, err = instance.ctl_enable()
            self.assertEqual(rc, 0, out + err)
            self.assertIn("enable %s: nothing to change\n" % instance.name, out)

    # --- the weak daemons, cut off
    def test_tls10_client_cut_off(self):
        """the daemons accept TLS 1.0; a client that forces it gets nothing"""
        for name in PORTS:
            with self.subTest(port=name):
                self.refused(name, ("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"), "version-below-floor",
                             r"version=TLSv1\.0 policy_floor=TLSv1\.2 client_max=TLSv1\.0", HINT_VERSION)

    def test_banned_suite_cut_off(self):
        """the daemons accept a SHA-1 CBC suite the policy bans; a client
        that offers only that suite gets nothing; one with an allowed
        TLS 1.2 suite gets its session"""
        for name in PORTS:
            with self.subTest(port=name):
                self.refused(name, ("-tls1_2", "-cipher", BANNED_SUITE + ":@SECLEVEL=0"), "banned-suite",
                             r"suite=%s banned=SHA1 client_max=TLSv1\.2" % BANNED_SUITE, HINT_SUITE)
        for name in ("submissions", "imaps"):
            with self.subTest(port=name, suite="allowed"):
                port = self.s.ports[name]
                before = len(self.s.log)
                r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2",
                                    "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], input="", capture_output=True,
                                   text=True, timeout=S_CLIENT_TIMEOUT)
                self.assertRegex(r.stdout, r"(?m)^New, TLSv1\.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256$",
                                 r.stdout + r.stderr)
                self.log_after(before, r"port=%d .*action=tls version=TLSv1\.2 suite=ECDHE-RSA-AES128-GCM-SHA256 "
                                       r"tls_by=daemon$" % port)

    # --- a good client
    def test_good_client_end_to_end(self):
        """AUTH after STARTTLS through Postfix's own TLS delivers a message;
        Dovecot's own implicit TLS serves it by IMAPS and POP3S"""
        before = len(self.s.log)
        subject = unique("daemon-role")
        rc, out, err = harness.run(["swaks", "--server", "127.0.0.1", "--port", str(self.s.ports["submission"]),
                                    "--local-interface", CLIENT, "--from", "a@client.test",
                                    "--to", daemons.ADDRESS, "--helo", "client.test", "--tls",
                                    "--auth", "PLAIN", "--auth-user", daemons.USER,
                                    "--auth-password", daemons.PASSWORD,
                                    "--header", "Subject: " + subject, "--timeout", "10"])
        self.assertEqual(rc, 0, out + err)
        self.assertIn("<~  235 2.7.0 Authentication successful", out)
        self.assertNotRegex(out.split(" -> STARTTLS")[0], r"<-  250.AUTH", "no AUTH before STARTTLS")
        m = self.pf.wait_message(("Subject: %s\n" % subject).encode())
        self.assertRegex(m, rb"\tby mail\.test \(Postfix\) with ESMTPSA id ", "Postfix did the TLS (the S)")
        self.pf.wait_log(r"postfix/submission/smtpd\[\d+\]: (\w+ )?TLS connection established from "
                         r"unknown\[127\.0\.0\.2\]:\d+: TLSv1\.3 with cipher ")
        self.log_after(before, r"^tlspolicy: port=%d client=127\.0\.0\.2:\d+ mode=starttls action=tls "
                               r"version=TLSv1\.3 suite=TLS13-\S+ tls_by=daemon$" % self.s.ports["submission"])

        c = self.s.imap_ssl("imaps", source=CLIENT)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        self.assertEqual(c.login(daemons.USER, daemons.PASSWORD)[0], "OK")
        self.assertEqual(c.select("INBOX")[0], "OK")
        typ, data = c.search(None, "SUBJECT", '"%s"' % subject)
        self.assertEqual((typ, len(data[0].split())), ("OK", 1), data)
        typ, data = c.fetch(data[0].split()[0], "(RFC822)")
        self.assertIn(("Subject: %s\r\n" % subject).encode(), data[0][1])
        self.assertEqual(c.logout()[0], "BYE")

        p = self.s.pop3_ssl("pop3s", source=CLIENT)
        p.user(daemons.USER)
        self.assertEqual(p.pass_(daemons.PASSWORD), b"+OK Logged in.")
        count, _ = p.stat()
        self.assertEqual(len([n for n in range(1, count + 1)
                              if ("Subject: %s" % subject).encode() in b"\n".join(p.retr(n)[1])]), 1)
        p.quit()
        for proto, name in (("imap", "imaps"), ("pop3", "pop3s")):
            # Dovecot's %c: it did the TLS itself
            self.dc.wait_log(r"%s-login: Info: Login: user=<test>, method=PLAIN, rip=127\.0\.0\.2, rport=\d+, "
                             r"lip=127\.0\.0\.1, lport=%d, mpid=\d+, TLS, " % (proto, self.s.ports[name]))
            self.log_after(before, r"^tlspolicy: port=%d client=127\.0\.0\.2:\d+ mode=implicit action=tls "
                                   r"version=TLSv1\.3 suite=TLS13-\S+ tls_by=daemon$" % self.s.ports[name])

    # --- the plaintext phase
    def test_smtp_plaintext_phase_filtered(self):
        """Postfix's submission offers AUTH in clear (weak); tlspolicyd hides
        it and refuses it with the 530; after Postfix's own STARTTLS, AUTH"""
        r = self.s.raw("submission", source=CLIENT)
        self.assertEqual(r.read_until(SMTP_REPLY), b"220 mail.test ESMTP Postfix\r\n")
        r.sendline("EHLO client.test")
        ehlo = r.read_until(SMTP_REPLY)
        self.assertIn(b"250-STARTTLS\r\n", ehlo)
        self.assertNotIn(b"AUTH", ehlo, "AUTH hidden before STARTTLS")
        wrong = unique("pw")
        for line in ("AUTH PLAIN " + plain(daemons.USER, wrong), "MAIL FROM:<a@client.test>"):
            r.sendline(line)
            self.assertEqual(r.read_until(SMTP_REPLY), SMTP_NEED_TLS)
        r.sendline("STARTTLS")
        self.assertEqual(r.read_until(SMTP_REPLY), SMTP_GO_TLS)
        r.starttls()
        self.assertEqual(r.sock.version(), "TLSv1.3")
        r.sendline("EHLO client.test")
        ehlo = r.read_until(SMTP_REPLY)
        self.assertIn(b"250-AUTH PLAIN LOGIN\r\n", ehlo)
        self.assertNotIn(b"STARTTLS", ehlo)
        r.sendline("AUTH PLAIN " + plain(daemons.USER, daemons.PASSWORD))
        self.assertEqual(r.read_until(SMTP_REPLY), b"235 2.7.0 Authentication successful\r\n")
        r.sendline("QUIT")
        self.assertEqual(r.read_until(SMTP_REPLY), b"221 2.0.0 Bye\r\n")

        who = r"client=127\.0\.0\.2:%d mode=starttls" % r.local[1]
        self.s.wait_log(r"^tlspolicy: port=%d %s action=refuse reason=auth-before-tls$"
                        % (self.s.ports["submission"], who))
        self.s.wait_log(r"^tlspolicy: port=%d %s action=tls version=TLSv1\.3 suite=TLS13-\S+ tls_by=daemon$"
                        % (self.s.ports["submission"], who))
        client = r"unknown\[127\.0\.0\.2\]:%d" % r.local[1]
        self.pf.wait_log(r"TLS connection established from %s: TLSv1\.3 with cipher " % client)
        self.pf.wait_log(r"disconnect from %s ehlo=2 starttls=1 auth=1 quit=1 commands=5$" % client)
        self.assertNotIn(wrong, self.pf.log + self.dc.log + self.s.log)

    def test_imap_plaintext_phase_filtered(self):
        """Dovecot's LOGIN before STARTTLS is answered by tlspolicyd (DESIGN.md's
        wording, not Dovecot's), never reaches Dovecot; after Dovecot's own
        STARTTLS the login works"""
        r = self.s.raw("imap", source=CLIENT)
        greeting = r.read_line()
        self.assertRegex(greeting, rb"^\* OK \[CAPABILITY [^]]*STARTTLS[^]]*LOGINDISABLED[^]]*\] Dovecot")
        self.assertNotIn(b"AUTH=", greeting)
        wrong = unique("pw")
        r.sendline("a1 LOGIN %s %s" % (daemons.USER, wrong))
        self.assertEqual(r.read_line(), b"a1 " + IMAP_NEED_TLS)
        r.sendline("a2 STARTTLS")
        self.assertEqual(r.read_line(), b"a2 " + IMAP_GO_TLS)
        r.starttls()
        self.assertEqual(r.sock.version(), "TLSv1.3")
        r.sendline("a3 LOGIN %s %s" % (daemons.USER, daemons.PASSWORD))
        self.assertRegex(r.read_until(re.compile(rb"^a3 [^\r\n]*\r\n", re.M)), rb"a3 OK ")
        r.sendline("a4 LOGOUT")
        r.read_until(re.compile(rb"^a4 OK [^\r\n]*\r\n", re.M))
        self.s.wait_log(r"^tlspolicy: port=%d client=127\.0\.0\.2:%d mode=starttls action=refuse "
                        r"reason=auth-before-tls$" % (self.s.ports["imap"], r.local[1]))
        self.dc.wait_log(r"imap-login: Info: Login: user=<test>, method=PLAIN, rip=127\.0\.0\.2, rport=%d, "
                         r"lip=127\.0\.0\.1, lport=%d, mpid=\d+, TLS, " % (r.local[1], self.s.ports["imap"]))
        self.assertNotIn(wrong, self.dc.log + self.s.log)
        self.assertNotRegex(self.dc.log, r"auth failed|Disconnected \(auth failed")
