"""test_module_clients.py - real clients against the module: curl, openssl, swaks

- curl: SMTP with --ssl-reqd on the STARTTLS port and smtps (upload with
  AUTH), IMAP/IMAPS and POP3/POP3S (listing and fetching); without TLS
  curl's login is denied and its mail refused with the 530.
- openssl s_client -starttls smtp|imap|pop3, and on the implicit ports:
  the handshake succeeds at TLS 1.2 and 1.3; TLS 1.0 and 1.1 (at security
  level 0, where OpenSSL 3 still offers them) fail on every kind of
  managed port, and so does an offer of only banned suites (NULL, aNULL;
  RC4 and 3DES where a local TLS library can still offer them), each
  refusal logged by tlspolicyd.
- swaks: --tls and --tlsc deliver with AUTH PLAIN; without TLS, AUTH is not
  offered and the mail gets the 530.
"""

import os
import re
import subprocess
import time

import harness
from modcommon import IMAP_CAPS_TLS, ModuleCase, message, unique

PORTS = {"submission": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
         "imap": ("imap", "starttls"), "imaps": ("imap", "implicit"),
         "pop3": ("pop3", "starttls"), "pop3s": ("pop3", "implicit")}
FIRST = unique("first")             # the message every fetch test reads: UID 1, POP3 message 1
TLSCLIENT = os.path.join(harness.BUILDDIR, "tests", "tp-tlsclient")


def openssl_knows(cipher):
    """does the local openssl have any TLS 1.2 suite for this cipher string?"""
    p = subprocess.run(["openssl", "ciphers", "-tls1_2", cipher + ":@SECLEVEL=0"],
                       capture_output=True, text=True)
    return p.returncode == 0 and p.stdout.strip() != ""


class ClientCase(ModuleCase):
    ports = PORTS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # the oldest file: UID 1 in IMAP, message 1 in POP3
        with open(os.path.join(cls.s.maildir, "0000-first.eml"), "wb") as f:
            f.write(message(FIRST))

    def count(self, pattern):
        return len(re.findall(pattern, self.s.log, re.M))

    def wait_count(self, pattern, n, timeout=5):
        """wait until tlspolicyd's log has n lines matching pattern, no more"""
        deadline = time.monotonic() + timeout
        while self.count(pattern) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.count(pattern), n, "lines of %r in:\n%s" % (pattern, self.s.log[-3000:]))

    def smtp_commands(self, *verbs):
        """how many command lines starting with these verbs the daemon got"""
        return len([line for line in self.s.lines("smtp") if line.upper().startswith(verbs)])


class CurlTest(ClientCase):
    def setUp(self):
        harness.require("curl")

    def curl(self, name, scheme, *args, password="secret"):
        port = self.s.ports[name]
        return self.s.run(["curl", "-sS", "--max-time", "10", "--cacert", self.s.cert,
                           "--resolve", "localhost:%d:127.0.0.1" % port, "-u", "test:" + password,
                           *args, "%s://localhost:%d%s" % (scheme[0], port, scheme[1])])

    def upload(self, name, scheme, *args):
        subject = unique("curl-" + name)
        path = os.path.join(self.s.tmp, subject + ".eml")
        with open(path, "wb") as f:
            f.write(message(subject, to="x@elsewhere.example"))
        rc, out, err = self.curl(name, (scheme, ""), "--mail-from", "a@client.test",
                                 "--mail-rcpt", "x@elsewhere.example", "-T", path, *args)
        return subject, rc, err

    def test_smtp_starttls_and_smtps(self):
        for name, scheme, args in (("submission", "smtp", ["--ssl-reqd"]), ("smtps", "smtps", [])):
            with self.subTest(port=name):
                auths = len(self.s.events("auth", ok=True))
                subject, rc, err = self.upload(name, scheme, *args)
                self.assertEqual(rc, 0, err)
                stored = [m for m in self.s.messages() if subject.encode() in m]
                self.assertEqual(stored, [message(subject, to="x@elsewhere.example")])
                self.assertEqual(len(self.s.events("auth", ok=True)), auths + 1)

    def test_smtp_without_tls_gets_530(self):
        before = self.smtp_commands("MAIL", "AUTH")
        subject, rc, err = self.upload("submission", "smtp")
        self.assertEqual(rc, 55, err)
        self.assertIn("MAIL failed: 530", err)
        self.assertFalse([m for m in self.s.messages() if subject.encode() in m])
        self.assertEqual(self.smtp_commands("MAIL", "AUTH"), before, "neither reached the daemon")

    def test_imap(self):
        for name, scheme, args in (("imap", "imap", ["--ssl-reqd"]), ("imaps", "imaps", [])):
            with self.subTest(port=name):
                rc, out, err = self.curl(name, (scheme, "/"), *args)
                self.assertEqual((rc, out), (0, '* LIST (\\HasNoChildren) "/" INBOX\r\n'), err)
                rc, out, err = self.curl(name, (scheme, "/INBOX;UID=1"), *args)
                self.assertEqual(rc, 0, err)
                self.assertEqual(out.encode(), message(FIRST))

    def test_pop3(self):
        for name, scheme, args in (("pop3", "pop3", ["--ssl-reqd"]), ("pop3s", "pop3s", [])):
            with self.subTest(port=name):
                rc, out, err = self.curl(name, (scheme, "/"), *args)
                self.assertEqual(rc, 0, err)
                self.assertEqual(out.splitlines()[0], "1 %d" % len(message(FIRST)))
                rc, out, err = self.curl(name, (scheme, "/1"), *args)
                self.assertEqual(rc, 0, err)
                self.assertEqual(out.encode(), message(FIRST))

    def test_imap_and_pop3_without_tls_login_denied(self):
        secret = unique("curl-pw")
        for name in ("imap", "pop3"):
            with self.subTest(port=name):
                rc, out, err = self.curl(name, (name, "/"), password=secret)
                self.assertEqual(rc, 67, err)
                self.assertIn("Login denied", err)
        self.assertNeverSeen(secret)


class OpenSSLTest(ClientCase):
    def setUp(self):
        harness.require("openssl")

    def s_client(self, name, *args, data=""):
        proto, mode = PORTS[name]
        cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.s.ports[name],
               "-servername", "localhost", "-verify_hostname", "localhost", "-CAfile", self.s.cert,
               "-verify_return_error", "-ign_eof", *args]
        if mode == "starttls":
            cmd += ["-starttls", proto]
        return self.s.run(cmd, input=data)

    SAY = {"smtp": "EHLO client.test\r\nQUIT\r\n", "imap": "c CAPABILITY\r\nz LOGOUT\r\n",
           "pop3": "CAPA\r\nQUIT\r\n"}

    def test_handshake_on_a_good_floor(self):
        for name, (proto, mode) in PORTS.items():
            for version, shown in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
                with self.subTest(port=name, version=version):
                    rc, out, err = self.s_client(name, version, data=self.SAY[proto])
                    self.assertEqual(rc, 0, err)
                    self.assertRegex(out, r"New, %s, Cipher is (TLS_AES|TLS_CHACHA|ECDHE)" % shown)
                    self.assertIn("Verify return code: 0 (ok)", out)
                    # inside TLS: authentication offered, STARTTLS/STLS gone
                    caps = {"smtp": "250-AUTH PLAIN LOGIN\r\n",
                            "imap": "* CAPABILITY %s\r\n" % IMAP_CAPS_TLS.decode(),
                            "pop3": "USER\r\nSASL PLAIN\r\n"}[proto]
                    self.assertIn(caps, out.replace("\n", "\r\n").replace("\r\r\n", "\r\n"))
                    self.assertNotRegex(out, r"(?m)^(250-STARTTLS|STLS)\r?$|LOGINDISABLED")
        self.assertGreaterEqual(self.count(r"action=tls version=TLSv1\.2 suite=\S+"), len(PORTS))

    def refused(self, name, args, error):
        """the offer fails to handshake on that port, and tlspolicyd says why"""
        pattern = (r"^tlspolicy: port=%d client=\S+ mode=\S+ action=refuse reason=tls-handshake-failed"
                   r' error="%s" policy_floor=TLSv1\.2$' % (self.s.ports[name], re.escape(error)))
        before = self.count(pattern)
        lines = len(self.s.events("line"))
        rc, out, err = self.s_client(name, *args, data=self.SAY[PORTS[name][0]])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("Cipher is (NONE)", out)
        self.assertNotRegex(out, r"Cipher is (TLS_|ECDHE|DHE|AES|ADH)")
        self.assertRegex(out, r"Protocol  : TLSv1(\.[12])?\n")
        self.wait_count(pattern, before + 1)
        if PORTS[name][1] == "implicit":
            self.assertEqual(len(self.s.events("line")), lines, "nothing reached the daemon")

    def test_tls10_and_tls11_refused_everywhere(self):
        # OpenSSL 3 offers TLS 1.0/1.1 only at security level 0
        for name in PORTS:
            for version in ("-tls1", "-tls1_1"):
                with self.subTest(port=name, version=version):
                    self.refused(name, [version, "-cipher", "DEFAULT@SECLEVEL=0"], "record layer version error")

    def test_banned_suites_refused_everywhere(self):
        offers = [("NULL", "eNULL"), ("aNULL", "aNULL")]
        # this openssl (3.0, Debian) has neither RC4 nor 3DES any more: both
        # are tried here only where it still has them, and with tp-tlsclient
        # (wolfSSL) below
        offers += [(label, c) for label, c in (("RC4", "RC4"), ("3DES", "3DES")) if openssl_knows(c)]
        for label, cipher in offers:
            self.assertTrue(openssl_knows(cipher), "openssl can offer %s" % label)
            for name in PORTS:
                with self.subTest(port=name, offer=label):
                    self.refused(name, ["-tls1_2", "-cipher", cipher + ":@SECLEVEL=0"],
                                 "can't match cipher suite")

    def test_rc4_and_3des_offers_refused_everywhere(self):
        """tp-tlsclient (wolfSSL) still offers RC4 and 3DES suites"""
        if not os.path.exists(TLSCLIENT):
            harness.skip_or_fail("not built: %s (make)" % TLSCLIENT)
        for label, suites in (("RC4", "ECDHE-RSA-RC4-SHA:ECDHE-ECDSA-RC4-SHA:RC4-SHA"),
                              ("3DES", "ECDHE-RSA-DES-CBC3-SHA:DES-CBC3-SHA")):
            for name, (proto, mode) in PORTS.items():
                with self.subTest(port=name, offer=label):
                    pattern = (r"^tlspolicy: port=%d client=\S+ mode=\S+ action=refuse "
                               r"reason=tls-handshake-failed error=\"can't match cipher suite\""
                               % self.s.ports[name])
                    before = self.count(pattern)
                    cmd = [TLSCLIENT, "--version", "1.2", "--cipher", suites]
                    if mode == "starttls":
                        cmd += ["--starttls", proto]
                    rc, out, err = harness.run(cmd + ["127.0.0.1", str(self.s.ports[name])])
                    if rc == 2 and "has none of the suites" in out:
                        self.skipTest("this wolfSSL cannot offer %s either: %s" % (label, out.strip()))
                    self.assertEqual((rc, out.split(":")[0]), (1, "handshake failed"), out + err)
                    self.wait_count(pattern, before + 1)


class SwaksTest(ClientCase):
    def setUp(self):
        harness.require("swaks")

    def swaks(self, name, *args):
        subject = unique("swaks")
        rc, out, err = self.s.run(["swaks", "--server", "127.0.0.1", "--port", str(self.s.ports[name]),
                                   "--from", "a@client.test", "--to", "x@elsewhere.example",
                                   "--helo", "client.test", "--header", "Subject: " + subject,
                                   "--timeout", "10", *args])
        return subject, rc, out + err

    def test_starttls_and_implicit_deliver_with_auth(self):
        for name, tls in (("submission", "--tls"), ("smtps", "--tlsc")):
            with self.subTest(port=name):
                subject, rc, out = self.swaks(name, tls, "--auth", "PLAIN", "--auth-user", "test",
                                              "--auth-password", "secret")
                self.assertEqual(rc, 0, out)
                self.assertIn("<~  235 2.7.0 Authentication successful", out)
                self.assertRegex(out, r"<~  250 2\.0\.0 Ok: queued as \d+")
                self.assertEqual(sum(1 for m in self.s.messages()
                                     if ("Subject: %s\r\n" % subject).encode() in m), 1)

    def test_without_tls_no_auth_and_530(self):
        before = self.smtp_commands("MAIL", "AUTH")
        secret = unique("swaks-pw")
        subject, rc, out = self.swaks("submission", "--auth", "PLAIN", "--auth-user", "test",
                                      "--auth-password", secret)
        self.assertEqual(rc, 28, out)       # swaks: the server offers no AUTH
        self.assertIn("Host did not advertise authentication", out)
        self.assertNotRegex(out, r"<-  250-AUTH")
        self.assertIn("<-  250-STARTTLS", out)

        subject, rc, out = self.swaks("submission", "--auth-optional", "PLAIN", "--auth-user", "test",
                                      "--auth-password", secret)
        self.assertNotEqual(rc, 0, out)
        self.assertIn(" -> MAIL FROM:<a@client.test>\n<** 530 5.7.0 Must issue a STARTTLS command first", out)
        self.assertFalse([m for m in self.s.messages() if subject.encode() in m])
        self.assertNeverSeen(secret)
        self.assertEqual(self.smtp_commands("MAIL", "AUTH"), before, "neither reached the daemon")


del ClientCase


if __name__ == "__main__":
    import unittest
    unittest.main()
