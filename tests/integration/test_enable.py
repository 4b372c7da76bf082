"""tlspolicyctl enable/disable on private Postfix and Dovecot configuration
directories, checked with the daemons' own tools (postconf, doveconf)

Each test copies Debian's stock configuration into a temp dir, adds
listeners on test ports, runs the real command with --config-dir and
--systemd-dir, and asserts what postconf/doveconf then report, that a
second enable changes nothing, and that disable puts back the values from
before.
"""

import os
import re
import shutil
import subprocess
import tempfile

import harness

POSTFIX_STOCK = "/usr/share/postfix"


def sh(*cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


class EnableCase(harness.TestCase):
    timeout = 60

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tlspolicy-enable-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.policy = os.path.join(self.tmp, "tlspolicy.conf")
        self.systemd = os.path.join(self.tmp, "systemd")
        os.makedirs(self.systemd)
        self.shim = harness.SHIM

    def write_policy(self, sections):
        harness.write_policy(self.policy, sections)

    def ctl(self, verb, daemon, confdir, *extra):
        return sh(harness.CTL, verb, "-c", self.policy, "--config-dir", confdir,
                  "--systemd-dir", self.systemd, "--shim", self.shim, *extra, daemon)


class PostfixEnableTest(EnableCase):
    def setUp(self):
        super().setUp()
        harness.require("postconf")
        self.dir = os.path.join(self.tmp, "postfix")
        os.makedirs(self.dir)
        shutil.copy(os.path.join(POSTFIX_STOCK, "main.cf.dist"), os.path.join(self.dir, "main.cf"))
        shutil.copy(os.path.join(POSTFIX_STOCK, "master.cf.dist"), os.path.join(self.dir, "master.cf"))
        with open(os.path.join(self.dir, "master.cf"), "a") as f:
            f.write("127.0.0.1:10587 inet n - n - - smtpd\n  -o smtpd_tls_security_level=encrypt\n"
                    "10465 inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n"
                    "10025 inet n - n - - smtpd\n")
        self.write_policy({"port 10587": {"protocol": "smtp", "tls": "starttls"},
                           "port 10465": {"protocol": "smtp", "tls": "implicit"},
                           "port 10025": {"protocol": "smtp", "tls": "opportunistic", "tls_by": "daemon"}})

    def postconf(self, *args):
        rc, out, err = sh("postconf", "-c", self.dir, *args)
        return out.strip()

    def snapshot(self):
        return {k: self.postconf("-P", "-h", k) for k in (
            "127.0.0.1:10587/inet/smtpd_tls_security_level", "10465/inet/smtpd_tls_wrappermode",
            "10465/inet/smtpd_tls_security_level", "10025/inet/smtpd_tls_security_level")} | {
            "import_environment": self.postconf("-h", "import_environment")}

    def test_enable_idempotent_disable(self):
        before = self.snapshot()
        rc, out, err = self.ctl("enable", "postfix", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("set master.cf 127.0.0.1:10587/inet/smtpd_tls_security_level = none (was encrypt)", out)
        self.assertIn("set master.cf 10465/inet/smtpd_tls_wrappermode = no (was yes)", out)
        # the daemon-role port is left to Postfix's own TLS
        self.assertIn("master.cf service 10025 (port 10025): [port 10025] tls = opportunistic, tls_by = daemon", out)
        self.assertNotIn("10025/inet/", out)
        self.assertEqual(self.postconf("-P", "-h", "127.0.0.1:10587/inet/smtpd_tls_security_level"), "none")
        self.assertEqual(self.postconf("-P", "-h", "10465/inet/smtpd_tls_wrappermode"), "no")
        self.assertEqual(self.postconf("-P", "-h", "10465/inet/smtpd_tls_auth_only"), "no")
        env = self.postconf("-h", "import_environment").split()
        self.assertIn("LD_PRELOAD=" + self.shim, env)
        self.assertIn("TLSPOLICY_CONF=" + self.policy, env)
        self.assertIn("MAIL_CONFIG", env)       # the defaults stay
        dropin = os.path.join(self.systemd, "postfix@.service.d", "tlspolicy.conf")
        with open(dropin) as f:
            text = f.read()
        self.assertIn("Environment=LD_PRELOAD=%s\n" % self.shim, text)
        self.assertIn("After=tlspolicyd.service", text)

        rc, out, err = self.ctl("enable", "postfix", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("enable postfix: nothing to change", out)
        self.assertNotRegex(out, r"(?m)^set ")

        rc, out, err = self.ctl("disable", "postfix", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.snapshot(), before)
        self.assertFalse(os.path.exists(dropin))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "tlspolicy-saved.cf")))
        rc, out, err = self.ctl("disable", "postfix", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("disable postfix: nothing to change", out)

    def test_postscreen_handoff(self):
        """postscreen on a tls_by = module port passes its clients to the pass
        smtpd, which serves that port: it serves plaintext too"""
        with open(os.path.join(self.dir, "master.cf"), "a") as f:
            f.write("10026 inet n - y - 1 postscreen\nsmtpd pass - - y - - smtpd\n"
                    "  -o smtpd_tls_security_level=may\n")
        self.write_policy({"port 10026": {"protocol": "smtp", "tls": "opportunistic"}})
        rc, out, err = self.ctl("enable", "postfix", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("master.cf service smtpd (pass): postscreen on port 10026 hands its clients to it\n", out)
        self.assertIn("set master.cf smtpd/pass/smtpd_tls_security_level = none (was may)", out)
        for key in ("10026/inet/smtpd_tls_security_level", "smtpd/pass/smtpd_tls_security_level"):
            self.assertEqual(self.postconf("-P", "-h", key), "none", key)
        self.assertEqual(self.postconf("-P", "-h", "smtpd/pass/smtpd_tls_auth_only"), "no")
        rc, out, err = self.ctl("disable", "postfix", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.postconf("-P", "-h", "smtpd/pass/smtpd_tls_security_level"), "may")
        self.assertEqual(self.postconf("-P", "-h", "smtpd/pass/smtpd_tls_auth_only"), "")

    def test_dry_run_changes_nothing(self):
        files = {n: open(os.path.join(self.dir, n)).read() for n in ("main.cf", "master.cf")}
        rc, out, err = self.ctl("enable", "postfix", self.dir, "--dry-run")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("would set master.cf 10465/inet/smtpd_tls_wrappermode = no (was yes)", out)
        self.assertIn("would write %s/postfix@.service.d/tlspolicy.conf" % self.systemd, out)
        for n, text in files.items():
            self.assertEqual(open(os.path.join(self.dir, n)).read(), text, n)
        self.assertEqual(os.listdir(self.systemd), [])

    def test_bad_policy_changes_nothing(self):
        with open(self.policy, "a") as f:
            f.write("\n[port 2525]\ntls = tls\n")
        files = {n: open(os.path.join(self.dir, n)).read() for n in ("main.cf", "master.cf")}
        rc, out, err = self.ctl("enable", "postfix", self.dir)
        self.assertEqual(rc, 1)
        self.assertRegex(err, r"tlspolicy\.conf:\d+: error: \[port 2525\] tls")
        for n, text in files.items():
            self.assertEqual(open(os.path.join(self.dir, n)).read(), text, n)

    def test_usage(self):
        rc, out, err = sh(harness.CTL, "enable", "sendmail")
        self.assertEqual(rc, 2)
        self.assertIn('unknown daemon "sendmail"; use postfix, dovecot or exim4', err)
        rc, out, err = sh(harness.CTL, "enable")
        self.assertEqual(rc, 2)
        self.assertIn("usage: tlspolicyctl enable", err)


class DovecotEnableTest(EnableCase):
    def setUp(self):
        super().setUp()
        harness.require("doveconf")
        self.dir = os.path.join(self.tmp, "dovecot")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("protocols = imap pop3\nbase_dir = %s/run\nssl = required\n"
                    "service imap-login {\n  inet_listener imap {\n    port = 10143\n  }\n"
                    "  inet_listener imaps {\n    port = 10993\n    ssl = yes\n  }\n}\n"
                    "service pop3-login {\n  inet_listener pop3 {\n    port = 10110\n  }\n"
                    "  inet_listener pop3s {\n    port = 10995\n  }\n}\n" % self.dir)
        self.write_policy({"port 10143": {"protocol": "imap", "tls": "starttls"},
                           "port 10993": {"protocol": "imap", "tls": "implicit"},
                           "port 10110": {"protocol": "pop3", "tls": "starttls"},
                           "port 10995": {"protocol": "pop3", "tls": "implicit", "tls_by": "daemon"}})

    def doveconf(self):
        rc, out, err = sh("doveconf", "-c", self.conf, "-n")
        self.assertEqual(rc, 0, err)
        return out[out.index("\n", out.index("# Hostname")) + 1:] if "# Hostname" in out else out

    def test_enable_idempotent_disable(self):
        before = self.doveconf()
        rc, out, err = self.ctl("enable", "dovecot", self.dir)
        self.assertEqual(rc, 0, out + err)
        after = self.doveconf()
        self.assertRegex(after, r"import_environment = .*LD_PRELOAD=%s TLSPOLICY_CONF=%s"
                         % (self.shim, self.policy))
        self.assertIn("disable_plaintext_auth = no", after)
        self.assertNotIn("ssl = required", after)       # lowered to yes, the default
        self.assertEqual(sh("doveconf", "-c", self.conf, "-h", "ssl")[1].strip(), "yes")
        self.assertRegex(after, r"inet_listener imaps \{\n    port = 10993\n    ssl = no\n")
        self.assertRegex(after, r"inet_listener imap \{\n    port = 10143\n    ssl = no\n")
        self.assertRegex(after, r"inet_listener pop3s \{\n    port = 10995\n  \}")     # daemon role: its own TLS
        self.assertTrue(os.path.exists(os.path.join(self.systemd, "dovecot.service.d", "tlspolicy.conf")))

        rc, out, err = self.ctl("enable", "dovecot", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("enable dovecot: nothing to change", out)

        rc, out, err = self.ctl("disable", "dovecot", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.doveconf(), before)
        self.assertEqual(sorted(os.listdir(self.dir)), ["dovecot.conf"])

    def test_daemon_role_only_keeps_dovecot_tls(self):
        """no listener on a tls_by = module port: enable passes the shim on
        and leaves ssl and disable_plaintext_auth; a listener the policy does
        not manage is then no reason to refuse"""
        self.write_policy({"port 10143": {"protocol": "imap", "tls": "starttls", "tls_by": "daemon"},
                           "port 10993": {"protocol": "imap", "tls": "implicit", "tls_by": "daemon"}})
        before = self.doveconf()
        rc, out, err = self.ctl("enable", "dovecot", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Dovecot imap-login listener imaps (port 10993): [port 10993] tls = implicit, "
                      "tls_by = daemon: Dovecot's own TLS settings stay\n", out)
        self.assertIn("Dovecot pop3-login listener pop3 (port 10110): not managed by the policy: "
                      "Dovecot's own settings apply there\n", out)
        self.assertEqual(sh("doveconf", "-c", self.conf, "-h", "ssl")[1].strip(), "required")
        self.assertEqual(sh("doveconf", "-c", self.conf, "-h", "disable_plaintext_auth")[1].strip(), "yes")
        after = self.doveconf()
        self.assertRegex(after, r"import_environment = .*LD_PRELOAD=%s TLSPOLICY_CONF=%s"
                         % (self.shim, self.policy))
        self.assertEqual(after.replace(re.search(r"import_environment = [^\n]*\n", after).group(0), ""), before)
        rc, out, err = self.ctl("disable", "dovecot", self.dir)
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.doveconf(), before)

    def test_unmanaged_listener_refused(self):
        with open(self.conf, "a") as f:
            f.write("service imap-login {\n  inet_listener extra {\n    port = 10144\n  }\n}\n")
        text = open(self.conf).read()
        rc, out, err = self.ctl("enable", "dovecot", self.dir)
        self.assertEqual(rc, 1, out + err)
        self.assertIn('Dovecot\'s imap-login listener "extra" on port 10144 is not managed by the policy', err)
        self.assertIn("add a [port 10144] section (protocol = imap)", err)
        self.assertEqual(open(self.conf).read(), text)
        self.assertEqual(sorted(os.listdir(self.dir)), ["dovecot.conf"])
