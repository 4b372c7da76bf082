"""tls_by = daemon: the mail server does its own TLS; tlspolicyd filters the
plaintext phase, reads the handshake going by, and cuts a session the
daemon negotiated below the policy's floor or with a suite the policy does
not allow, before any application data.

The "daemon" is the test mail server doing TLS itself (Python's ssl,
OpenSSL), configured weakly on purpose where a test says so.  Clients are
smtplib/imaplib and openssl s_client.  Assertions: replies on the wire,
what the server received, and tlspolicyd's log lines.
"""

import re
import smtplib
import ssl
import subprocess

import harness

WEAK = ["--tls-min-version", "TLSv1", "--tls-ciphers", "DEFAULT:@SECLEVEL=0"]


def s_client(port, *args, starttls=None):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost", *args]
    if starttls:
        cmd += ["-starttls", starttls]
    r = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=20)
    m = re.search(r"(?m)^New, (\S+), Cipher is (\S+)", r.stdout)
    return m.group(2) if m else None, r.stdout + r.stderr


class DaemonRoleTest(harness.TestCase):
    timeout = 90

    def setUp(self):
        harness.require_module()
        harness.require("openssl")

    def test_good_session_passes_and_is_logged(self):
        with harness.Setup({"smtps": ("smtp", "implicit", "daemon"),
                            "imaps": ("imap", "implicit", "daemon")}) as s:
            c = s.smtp_ssl("smtps")
            self.assertEqual(c.sock.version(), "TLSv1.3")
            code, text = c.ehlo("client.test")
            self.assertIn(b"AUTH PLAIN LOGIN", text)
            self.assertEqual(c.login(s.user, s.password)[0], 235)
            c.sendmail("a@x.test", ["b@y.test"], "Subject: daemon role\r\n\r\nbody\r\n")
            c.quit()
            self.assertEqual(len(s.messages()), 1)
            m = s.imap_ssl("imaps")
            self.assertEqual(m.login(s.user, s.password)[0], "OK")
            m.logout()
            s.wait_log(r"port=%d .*action=tls version=TLSv1\.3 suite=TLS13-\S+ tls_by=daemon" % s.ports["smtps"])
            s.wait_log(r"port=%d .*action=tls version=TLSv1\.3 suite=TLS13-\S+ tls_by=daemon" % s.ports["imaps"])

    def test_starttls_plaintext_phase_filtered(self):
        with harness.Setup({"sub": ("smtp", "starttls", "daemon")}) as s:
            c = s.smtp("sub")
            code, text = c.ehlo("client.test")
            self.assertIn(b"STARTTLS", text)
            self.assertNotIn(b"AUTH", text)
            self.assertEqual(c.docmd("AUTH", "PLAIN AHRlc3QAc2VjcmV0"),
                             (530, b"5.7.0 Must issue a STARTTLS command first"))
            c.starttls()
            code, text = c.ehlo("client.test")
            self.assertIn(b"AUTH PLAIN LOGIN", text)
            self.assertEqual(c.login(s.user, s.password)[0], 235)
            c.quit()
            # the refused AUTH never reached the daemon; the one inside TLS did, once
            auths = [l for l in s.lines("smtp") if l.upper().startswith("AUTH")]
            self.assertEqual(len(auths), 1, auths)
            s.wait_log(r"action=refuse reason=auth-before-tls")
            s.wait_log(r"action=tls version=TLSv1\.3 .*tls_by=daemon")

    def test_injection_after_starttls_discarded(self):
        with harness.Setup({"sub": ("smtp", "starttls", "daemon")}) as s:
            r = s.raw("sub")
            r.read_until(re.compile(rb"^220 .*\r\n"))
            r.send(b"EHLO client.test\r\n")
            r.read_until(re.compile(rb"(?m)^250 .*\r\n"))
            r.send(b"STARTTLS\r\nRSET\r\nMAIL FROM:<injected@x.test>\r\n")
            r.read_until(re.compile(rb"(?m)^220 .*\r\n"))
            r.starttls()
            r.send(b"EHLO client.test\r\n")
            r.read_until(re.compile(rb"(?m)^250 .*\r\n"))
            r.send(b"QUIT\r\n")
            r.read_until(re.compile(rb"(?m)^221 .*\r\n"))
            lines = s.lines("smtp")
            self.assertFalse([l for l in lines if "injected" in l or l.upper() == "RSET"], lines)
            s.wait_log(r"action=discard reason=injection")

    def test_weak_daemon_version_cut(self):
        # the daemon accepts TLS 1.0; the policy's floor is TLS 1.2
        with harness.Setup({"smtps": ("smtp", "implicit", "daemon"),
                            "sub": ("smtp", "starttls", "daemon"),
                            "pop3s": ("pop3", "implicit", "daemon")}, server_args=WEAK) as s:
            for name, starttls in (("smtps", None), ("sub", "smtp"), ("pop3s", None)):
                cipher, out = s_client(s.ports[name], "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0",
                                       starttls=starttls)
                self.assertIn(cipher, (None, "(NONE)"), out)
                s.wait_log(r"port=%d .*action=refuse reason=version-below-floor version=TLSv1\.0 "
                           r"policy_floor=TLSv1\.2 client_max=TLSv1\.0 tls_by=daemon" % s.ports[name])
            # no greeting or reply of the daemon's ever crossed in clear or in TLS 1.0
            self.assertFalse(s.events("line", proto="pop3"))
            # a good client on the same weak daemon still works
            cipher, out = s_client(s.ports["smtps"], "-tls1_3")
            self.assertRegex(cipher or "", r"^TLS_", out)
            c = s.smtp_ssl("smtps")
            self.assertEqual(c.login(s.user, s.password)[0], 235)
            c.quit()

    def test_weak_daemon_suite_cut(self):
        # the daemon offers a CBC/SHA1 suite the policy bans; a client that
        # offers only that suite gets cut after the ServerHello
        with harness.Setup({"smtps": ("smtp", "implicit", "daemon")},
                           policy={"global": {"ban_ciphers": "NULL aNULL EXPORT RC4 DES 3DES MD5 SHA1"}},
                           server_args=WEAK) as s:
            cipher, out = s_client(s.ports["smtps"], "-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
            self.assertIn(cipher, (None, "(NONE)"), out)
            s.wait_log(r"action=refuse reason=banned-suite suite=ECDHE-RSA-AES128-SHA banned=SHA1")
            cipher, out = s_client(s.ports["smtps"], "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
            self.assertEqual(cipher, "ECDHE-RSA-AES128-GCM-SHA256", out)
            s.wait_log(r"action=tls version=TLSv1\.2 suite=ECDHE-RSA-AES128-GCM-SHA256 tls_by=daemon")

    def test_plaintext_on_implicit_daemon_port(self):
        with harness.Setup({"smtps": ("smtp", "implicit", "daemon")}) as s:
            r = s.raw("smtps")
            r.send(b"EHLO plaintext.client\r\n")
            self.assertTrue(r.closed())
            s.wait_log(r"action=refuse reason=plaintext-on-implicit-port")
            self.assertFalse(s.lines("smtp"))

    def test_audit_mode_lets_weak_session_through(self):
        with harness.Setup({"smtps": {"protocol": "smtp", "tls": "implicit", "tls_by": "daemon",
                                      "enforce": "audit"}}, server_args=WEAK) as s:
            cipher, out = s_client(s.ports["smtps"], "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
            self.assertNotIn(cipher, (None, "(NONE)"), out)
            s.wait_log(r"action=would-refuse reason=version-below-floor version=TLSv1\.0")

    def test_bulk_after_handshake_goes_by_splice(self):
        # once the daemon's session passed, the bytes move socket to socket
        body = "".join("line %06d %s\r\n" % (i, "x" * 60) for i in range(80000))     # ~5.7 MB
        with harness.Setup({"smtps": ("smtp", "implicit", "daemon")}) as s:
            c = s.smtp_ssl("smtps", timeout=60)
            c.login(s.user, s.password)
            c.sendmail("a@x.test", ["b@y.test"], "Subject: bulk\r\n\r\n" + body)
            c.quit()
            msgs = s.messages()
            self.assertEqual(len(msgs), 1)
            self.assertIn(b"line 079999 " + b"x" * 60, msgs[0])
            m = s.wait_log(r"port=%d .*action=end bytes_in=(\d+) bytes_out=\d+ splice=yes$" % s.ports["smtps"])
            self.assertGreater(int(m.group(1)), len(body))
