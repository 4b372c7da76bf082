"""test_probe_daemons.py - tlspolicyctl probe audits the real Postfix and
Dovecot, configured by hand and not under tlspolicy

What `probe` is for: an admin's own Postfix 3.7 and Dovecot 2.3 (daemons.py,
shim=False: no `enable`, no LD_PRELOAD, no tlspolicyd), each doing its own
TLS with the test certificate, checked from outside against a policy file
(-c) that says what their ports must be: a submission-style STARTTLS port
and a submissions-style implicit one (Postfix), IMAP STARTTLS and IMAPS,
POP3 STARTTLS and POP3S (Dovecot), floor TLSv1.2, the shipped bans
(NULL aNULL EXPORT RC4 DES 3DES MD5).  Every test probes all six ports at
once and asserts each port's exact FAIL and WARN ids in the --json output.

- Configured well (Postfix: smtpd_tls_auth_only = yes, encrypt on
  submission, >=TLSv1.2 for smtpd_tls_protocols and
  smtpd_tls_mandatory_protocols; Dovecot: ssl = required,
  disable_plaintext_auth = yes, ssl_min_protocol = TLSv1.2): compliant, no
  FAIL.  The daemons answer in their own words, which pass: Postfix's "530
  5.7.0 Must issue a STARTTLS command first", Dovecot's LOGINDISABLED, "NO
  [PRIVACYREQUIRED]" and "-ERR [AUTH] Plaintext authentication
  disallowed".  The only WARNs are what this wolfSSL cannot try
  (version-tls1.0, class-EXPORT, class-DES, class-MD5: "not tested").
  Dovecot fails the handshake into which the probe's pipelined command was
  read (it takes the bytes for TLS data) and the probe then upgrades once
  more with nothing pipelined: injection PASS.
- Postfix's submission with smtpd_tls_security_level = may and
  smtpd_tls_auth_only = no: auth-hidden and auth-refused FAIL there
  (AUTH listed before STARTTLS, the dummy credentials checked in clear:
  535 5.7.8), advice smtpd_tls_auth_only = yes.
- Postfix allowing TLS 1.0 and 1.1 (>=TLSv1, the low cipher grade at
  @SECLEVEL=0, which OpenSSL 3 needs for them): version-tls1.1 FAIL on both
  Postfix ports, advice naming the minimum protocol settings; version-tls1.0
  stays a WARN (this wolfSSL has no TLS 1.0 client).  Postfix 3.7's own
  defaults accept TLS 1.1 with Debian's OpenSSL too, which is why the good
  configuration sets >=TLSv1.2 explicitly.
- Dovecot with ssl = yes and disable_plaintext_auth = no: auth-hidden and
  auth-refused FAIL on the IMAP and POP3 STARTTLS ports ("NO
  [AUTHENTICATIONFAILED]", "USER accepted"), advice disable_plaintext_auth
  = yes; its implicit ports are unaffected.

Dovecot listens on 127.0.0.2: it takes a client whose address is the
server's own (127.0.0.1 to 127.0.0.1) for a secured one and lets it log in
in clear whatever disable_plaintext_auth says, so a probe from the same
address would see a misconfiguration that is not there.
"""

import json
import os
import threading

import daemons
import harness

PORTS = {
    "submission": ("smtp", "starttls"),         # 587-style, Postfix
    "submissions": ("smtp", "implicit"),        # 465-style, Postfix
    "imap": ("imap", "starttls"),               # 143-style, Dovecot
    "imaps": ("imap", "implicit"),              # 993-style
    "pop3": ("pop3", "starttls"),               # 110-style
    "pop3s": ("pop3", "implicit"),              # 995-style
}
POSTFIX_ADDR, DOVECOT_ADDR = "127.0.0.1", "127.0.0.2"
BANS = "NULL aNULL EXPORT RC4 DES 3DES MD5"     # policy/tlspolicy.conf's

STARTTLS_IDS = ["greeting", "starttls-advertised", "auth-hidden", "auth-refused", "tls-handshake",
                "injection", "starttls-not-after"]
IMPLICIT_IDS = ["tls-handshake", "plaintext-refused"]
TLS_IDS = ["version-tls1.0", "version-tls1.1", "version-floor"] + \
          ["class-" + c for c in BANS.split()] + ["cert-chain", "cert-expiry", "cert-name"]
# what this wolfSSL cannot try: the only WARNs of a well-configured daemon
NOT_TESTED = {"version-tls1.0", "class-EXPORT", "class-DES", "class-MD5"}

# as an admin configures them well
POSTFIX_GOOD = """\
smtpd_tls_auth_only = yes
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
"""
# Debian's master.cf example for submission
SUBMISSION_GOOD = ("smtpd_tls_security_level=encrypt", "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=yes")
DOVECOT_GOOD = """\
ssl = required
disable_plaintext_auth = yes
ssl_min_protocol = TLSv1.2
"""

# the planted misconfigurations
SUBMISSION_AUTH_IN_CLEAR = ("smtpd_tls_security_level=may", "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=no")
POSTFIX_AUTH_IN_CLEAR = POSTFIX_GOOD.replace("smtpd_tls_auth_only = yes", "smtpd_tls_auth_only = no")
POSTFIX_OLD_TLS = POSTFIX_GOOD.replace(">=TLSv1.2", ">=TLSv1") + """\
smtpd_tls_ciphers = low
smtpd_tls_mandatory_ciphers = low
tls_low_cipherlist = DEFAULT:@SECLEVEL=0
"""
DOVECOT_PLAINTEXT_AUTH = """\
ssl = yes
disable_plaintext_auth = no
ssl_min_protocol = TLSv1.2
"""


def statuses(doc):
    return {c["id"]: c["status"] for c in doc["checks"]}


def ids_with(doc, status):
    return {c["id"] for c in doc["checks"] if c["status"] == status}


def check(doc, cid):
    return next(c for c in doc["checks"] if c["id"] == cid)


class ProbeDaemonsTest(harness.TestCase):
    """each test: its own Postfix and Dovecot, configured by hand, probed on all six ports"""

    timeout = 240

    def run_daemons(self, postfix_main=POSTFIX_GOOD, submission=SUBMISSION_GOOD, dovecot=DOVECOT_GOOD):
        """probe every port of a Postfix and a Dovecot with these settings;
        {name: (rc, out, err, doc)} (doc: the parsed --json output)"""
        plain = {name: proto for name, (proto, _) in PORTS.items()}
        with harness.Setup(plain_ports=plain, daemonless=True, server=False) as s, \
             daemons.Postfix(s, submission="submission", submissions="submissions", shim=False,
                             main_cf=postfix_main, submission_options=submission) as pf, \
             daemons.Dovecot(s, imap="imap", imaps="imaps", pop3="pop3", pop3s="pop3s", shim=False,
                             sasl_socket=daemons.Postfix.sasl_socket(s), extra_conf=dovecot,
                             listen=DOVECOT_ADDR) as dc:
            # no tlspolicy anywhere in either daemon
            for d in (pf, dc):
                self.assertEqual(d.enable_output, "")
                for pid in d.pids():
                    try:
                        with open("/proc/%d/environ" % pid, "rb") as f:
                            environ = f.read()
                    except OSError:         # gone since
                        continue
                    for var in (b"LD_PRELOAD=", b"TLSPOLICY_CONF=", b"TLSPOLICY_RUNDIR="):
                        self.assertNotIn(var, environ, (d.name, pid))
            self.assertIsNone(s.daemon)
            self.conf = os.path.join(s.tmp, "audit.conf")
            sections = {"global": {"profile": "intermediate", "min_protocol": "TLSv1.2", "ban_ciphers": BANS}}
            for name, (proto, tls) in PORTS.items():
                sections["port %d" % s.ports[name]] = {"protocol": proto, "tls": tls, "tls_by": "daemon"}
            harness.write_policy(self.conf, sections)
            self.setup, self.postfix, self.dovecot = s, pf, dc
            results = {}

            def one(name):
                results[name] = self.probe(name, "--json")

            threads = [threading.Thread(target=one, args=(n,)) for n in PORTS]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            out = {}
            for name, (rc, stdout, err) in results.items():
                try:
                    doc = json.loads(stdout)
                except ValueError:
                    self.fail("%s: no JSON (%d): %s%s\nPostfix:\n%s\nDovecot:\n%s"
                              % (name, rc, stdout, err, pf.log[-3000:], dc.log[-3000:]))
                self.check_shape(name, doc)
                out[name] = (rc, stdout, err, doc)
            self.text = self.probe("submission")        # once in text, while the daemons run
            return out

    def target(self, name):
        return "%s:%d" % (POSTFIX_ADDR if name.startswith("sub") else DOVECOT_ADDR, self.setup.ports[name])

    def probe(self, name, *args):
        return harness.run([harness.CTL, "probe", "-c", self.conf, "--cafile", harness.test_cert()[0],
                            "--servername", "localhost", *args, self.target(name)],
                           env=self.setup.env(), timeout=180)

    def check_shape(self, name, doc):
        proto, tls = PORTS[name]
        self.assertEqual((doc["target"], doc["protocol"], doc["tls"], doc["policy_rule"]),
                         (self.target(name), proto, tls, "port %d" % self.setup.ports[name]), doc)
        self.assertEqual([c["id"] for c in doc["checks"]],
                         (STARTTLS_IDS if tls == "starttls" else IMPLICIT_IDS) + TLS_IDS, name)
        for c in doc["checks"]:
            if c["status"] == "FAIL":
                self.assertTrue(c["advice"], c)
            else:
                self.assertIsNone(c["advice"], c)
            if c["status"] == "WARN":
                self.assertTrue(c["detail"].startswith("not tested"), c)
        self.assertEqual(check(doc, "version-tls1.0")["detail"],
                         "not tested: this wolfSSL cannot make a TLS 1.0 client")

    def assert_results(self, results, want_fails):
        """each port: exit 1 and exactly want_fails[name] FAILing, or exit 0
        and none; WARN only for what this wolfSSL cannot try"""
        for name, (rc, out, err, doc) in results.items():
            want = want_fails.get(name, set())
            self.assertEqual(ids_with(doc, "FAIL"), want, "%s: %s" % (name, out))
            self.assertEqual(ids_with(doc, "WARN"), NOT_TESTED, "%s: %s" % (name, out))
            self.assertEqual(rc, 1 if want else 0, "%s: %s%s" % (name, out, err))
            self.assertEqual(doc["compliant"], not want, name)
            self.assertEqual(statuses(doc)["cert-chain"], "PASS", name)
            self.assertEqual(statuses(doc)["version-floor"], "PASS", name)

    def test_well_configured_daemons_comply(self):
        res = self.run_daemons()
        self.assert_results(res, {})
        doc = {name: r[3] for name, r in res.items()}
        # the daemons' own replies, not tlspolicy's, and they pass
        self.assertEqual(check(doc["submission"], "auth-refused")["detail"],
                         "530 5.7.0 Must issue a STARTTLS command first")
        self.assertIn("LOGINDISABLED", check(doc["imap"], "greeting")["detail"])
        self.assertRegex(check(doc["imap"], "auth-refused")["detail"], r"^L1 NO \[PRIVACYREQUIRED\] ")
        self.assertRegex(check(doc["pop3"], "auth-refused")["detail"], r"^USER: -ERR \[AUTH\] ")
        # Dovecot's bare "SASL" line before TLS names no mechanism
        self.assertEqual(check(doc["pop3"], "auth-hidden")["detail"],
                         "CAPA lists neither USER nor SASL mechanisms before TLS")
        # Postfix discards what came with STARTTLS; Dovecot reads it as
        # the start of the handshake, which fails, and a clean one works
        self.assertEqual(check(doc["submission"], "injection")["detail"],
                         "the command sent with STARTTLS was not executed")
        for name, word in (("imap", "STARTTLS"), ("pop3", "STLS")):
            self.assertIn("the command sent with %s was not executed" % word, check(doc[name], "injection")["detail"])
            self.assertRegex(check(doc[name], "tls-handshake")["detail"], r"^%s handshake: TLSv1\.[23] " % word)
        for name in PORTS:
            self.assertEqual(check(doc[name], "version-tls1.1")["detail"], "TLSv1.1 refused", name)
        rc, out, err = self.text
        self.assertEqual(rc, 0, out + err)
        self.assertNotIn("FAIL", out)
        self.assertIn("Compliant:", out)

    def test_postfix_auth_before_starttls(self):
        res = self.run_daemons(postfix_main=POSTFIX_AUTH_IN_CLEAR, submission=SUBMISSION_AUTH_IN_CLEAR)
        self.assert_results(res, {"submission": {"auth-hidden", "auth-refused"}})
        doc = res["submission"][3]
        self.assertEqual(check(doc, "auth-hidden")["detail"], "EHLO lists AUTH before TLS")
        self.assertRegex(check(doc, "auth-refused")["detail"], r"^credentials were checked in clear: 535 5\.7\.8 ")
        for cid in ("auth-hidden", "auth-refused"):
            self.assertIn("Postfix: smtpd_tls_auth_only = yes", check(doc, cid)["advice"])
        rc, out, err = self.text
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r"(?m)^FAIL  auth-hidden +EHLO lists AUTH before TLS\n +advice: .*smtpd_tls_auth_only = yes")
        self.assertIn("NOT COMPLIANT: 2 FAIL, 4 WARN.", out)

    def test_postfix_allows_old_tls(self):
        res = self.run_daemons(postfix_main=POSTFIX_OLD_TLS)
        self.assert_results(res, {"submission": {"version-tls1.1"}, "submissions": {"version-tls1.1"}})
        for name in ("submission", "submissions"):
            c = check(res[name][3], "version-tls1.1")
            self.assertRegex(c["detail"], r"^TLSv1\.1 accepted \(\S+\) below the floor TLSv1\.2$")
            self.assertIn("minimum protocol", c["advice"])
            self.assertIn("Postfix: smtpd_tls_protocols = >=TLSv1.2 and smtpd_tls_mandatory_protocols = >=TLSv1.2",
                          c["advice"])
            self.assertIn("Dovecot: ssl_min_protocol = TLSv1.2", c["advice"])
        rc, out, err = self.text
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(out, r"(?m)^FAIL  version-tls1\.1 +TLSv1\.1 accepted .*\n +advice: .*smtpd_tls_mandatory_protocols")

    def test_dovecot_plaintext_auth(self):
        res = self.run_daemons(dovecot=DOVECOT_PLAINTEXT_AUTH)
        self.assert_results(res, {"imap": {"auth-hidden", "auth-refused"}, "pop3": {"auth-hidden", "auth-refused"}})
        imap, pop3 = res["imap"][3], res["pop3"][3]
        self.assertNotIn("LOGINDISABLED", check(imap, "greeting")["detail"])
        self.assertIn("AUTH=PLAIN", check(imap, "greeting")["detail"])
        self.assertRegex(check(imap, "auth-refused")["detail"],
                         r"^credentials were checked in clear: L1 NO \[AUTHENTICATIONFAILED\]")
        self.assertEqual(check(pop3, "auth-hidden")["detail"], "CAPA lists USER or SASL mechanisms before TLS")
        self.assertRegex(check(pop3, "auth-refused")["detail"], r"^USER accepted before TLS: \+OK")
        for doc in (imap, pop3):
            for cid in ("auth-hidden", "auth-refused"):
                self.assertIn("Dovecot: disable_plaintext_auth = yes", check(doc, cid)["advice"])
