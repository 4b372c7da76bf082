"""enforce = audit: the refusals of the enforcing tests, rerun on audit
ports, are logged as action=would-refuse with their reason and the traffic
goes through.

Each test does what an enforcing test does (AUTH before STARTTLS, a
command before STARTTLS, TLS 1.1, an RC4-only or 3DES-only offer,
plaintext on an implicit port) and asserts: the would-refuse line in
tlspolicyd's log, no action=refuse line for it, and that the mail server
received what an enforcing port would have kept from it.  show and status
say that the port is in audit mode.
"""

import json
import subprocess

import harness


def tlsclient(*args):
    r = subprocess.run([harness.os.path.join(harness.BUILDDIR, "tests", "tp-tlsclient"), *args],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip()


AUDIT = {"enforce": "audit"}


class AuditTest(harness.TestCase):
    timeout = 90

    def setUp(self):
        harness.require_module()

    def setup(self):
        return harness.Setup({"sub": dict(protocol="smtp", tls="starttls", **AUDIT),
                              "smtps": dict(protocol="smtp", tls="implicit", **AUDIT),
                              "imap": dict(protocol="imap", tls="starttls", **AUDIT),
                              "pop3": dict(protocol="pop3", tls="starttls", **AUDIT)},
                             policy={"global": {"ban_ciphers": "NULL aNULL EXPORT RC4 DES 3DES MD5"}})

    def test_auth_before_tls_let_through(self):
        with self.setup() as s:
            c = s.smtp("sub")
            c.ehlo("client.test")
            code, text = c.docmd("AUTH", "PLAIN AHRlc3QAc2VjcmV0")
            self.assertEqual(code, 235, text)           # the daemon answered
            c.quit()
            s.wait_log(r"port=%d .*action=would-refuse reason=auth-before-tls$" % s.ports["sub"])
            self.assertIn("AUTH PLAIN AHRlc3QAc2VjcmV0", s.lines("smtp"))
            self.assertNotRegex(s.log, r"action=refuse reason=auth-before-tls")

            m = s.imap("imap")
            self.assertEqual(m.login(s.user, s.password)[0], "OK")
            m.logout()
            s.wait_log(r"port=%d .*action=would-refuse reason=auth-before-tls$" % s.ports["imap"])

            p = s.pop3("pop3")
            p.user(s.user)
            self.assertTrue(p.pass_(s.password).startswith(b"+OK"))
            p.quit()
            s.wait_log(r"port=%d .*action=would-refuse reason=auth-before-tls$" % s.ports["pop3"])

    def test_command_before_tls_let_through(self):
        with self.setup() as s:
            c = s.smtp("sub")
            c.ehlo("client.test")
            code, text = c.mail("a@x.test")
            self.assertEqual(code, 250, text)
            c.quit()
            s.wait_log(r"action=would-refuse reason=command-before-tls$")
            self.assertTrue([l for l in s.lines("smtp") if l.upper().startswith("MAIL FROM")])

    def test_weak_tls_let_through_and_logged(self):
        with self.setup() as s:
            for args, reason in ((["--version", "1.1"], r"version-below-floor version=TLSv1\.1 policy_floor=TLSv1\.2"),
                                 (["--version", "1.2", "--cipher", "ECDHE-RSA-RC4-SHA"], r"banned-suite suite=ECDHE-RSA-RC4-SHA banned=RC4"),
                                 (["--version", "1.2", "--cipher", "ECDHE-RSA-DES-CBC3-SHA"], r"banned-suite suite=ECDHE-RSA-DES-CBC3-SHA banned=3DES")):
                rc, out = tlsclient(*args, "127.0.0.1", str(s.ports["smtps"]))
                self.assertEqual(rc, 0, out)
                self.assertTrue(out.startswith("handshake ok:"), out)
                s.wait_log(r"port=%d .*action=would-refuse reason=%s tls_by=module$" % (s.ports["smtps"], reason))
            # an allowed session is not flagged
            c = s.smtp_ssl("smtps")
            c.quit()
            self.assertEqual(len([l for l in s.log.splitlines() if "action=would-refuse reason=" in l]), 3)

    def test_plaintext_on_implicit_let_through(self):
        with self.setup() as s:
            r = s.raw("smtps")
            r.send(b"EHLO plaintext.client\r\n")
            got = r.read_until(b"250 ")
            self.assertIn(b"mail.test", got)
            s.wait_log(r"port=%d .*action=would-refuse reason=plaintext-on-implicit-port" % s.ports["smtps"])
            self.assertIn("EHLO plaintext.client", s.lines("smtp"))

    def test_show_and_status_say_audit(self):
        with self.setup() as s:
            rc, out, err = s.ctl("show")
            self.assertEqual(out.count("; AUDIT MODE: this port refuses nothing"), 4, out)
            rc, out, err = s.ctl("status", "--json")
            ports = {p["port"]: p for p in json.loads(out)["ports"]}
            self.assertTrue(all(ports[s.ports[n]]["audit"] for n in ("sub", "smtps", "imap", "pop3")))
            rc, out, err = s.ctl("status")
            self.assertEqual(out.count("AUDIT: refusals only logged"), 4, out)
            rc, out, err = s.ctl("validate")
            self.assertEqual(err.count("audit mode refuses nothing on this port"), 4, err)
