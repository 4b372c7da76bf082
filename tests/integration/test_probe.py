"""tlspolicyctl probe against live servers: ports under tlspolicy pass, a
misconfigured server without it fails the right checks, an unreachable one
cannot be probed

The probe is a wolfSSL client; the servers are tlspolicyd with the shimmed
test mail server (tls_by = module), and the test mail server alone doing its
own TLS with a weak configuration (TLS 1.0 allowed, AUTH offered and
checked before STARTTLS: what it does by default without the module).
Assertions are on the exit code, the --json document and the text output.
"""

import json
import os
import threading

import harness

BANS = "NULL aNULL EXPORT RC4 DES 3DES MD5"
WEAK = ["--tls-min-version", "TLSv1", "--tls-ciphers", "DEFAULT:@SECLEVEL=0"]
STARTTLS_IDS = ["greeting", "starttls-advertised", "auth-hidden", "auth-refused", "tls-handshake",
                "injection", "starttls-not-after"]
TLS_IDS = ["version-tls1.0", "version-tls1.1", "version-floor"] + \
          ["class-" + c for c in BANS.split()] + ["cert-chain", "cert-expiry", "cert-name"]


def probe(s, port, *args, timeout=120):
    """tlspolicyctl probe ... 127.0.0.1:PORT with the Setup's environment"""
    return harness.run([harness.CTL, "probe", *args, "127.0.0.1:%d" % port], env=s.env(),
                       timeout=timeout)


def probe_all(s, names, args_for):
    """probe every named port at once (each takes seconds); {name: (rc, out, err)}"""
    results = {}

    def one(name):
        results[name] = probe(s, s.ports[name], *args_for(name))

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def statuses(doc):
    return {c["id"]: c["status"] for c in doc["checks"]}


def fails(doc):
    return {c["id"] for c in doc["checks"] if c["status"] == "FAIL"}


def check(doc, cid):
    return next(c for c in doc["checks"] if c["id"] == cid)


class ProbeTest(harness.TestCase):
    timeout = 240

    def assert_all_pass(self, doc, what):
        for c in doc["checks"]:
            if c["status"] == "WARN":
                self.assertTrue(c["detail"].startswith("not tested"), "%s: %s" % (what, c))
            else:
                self.assertEqual(c["status"], "PASS", "%s: %s" % (what, c))
            self.assertIsNone(c["advice"], c)

    def test_module_ports_pass(self):
        harness.require_module()
        ports = {"sub": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
                 "imap": ("imap", "starttls"), "imaps": ("imap", "implicit"),
                 "pop3": ("pop3", "starttls"), "pop3s": ("pop3", "implicit")}
        with harness.Setup(ports, policy={"global": {"ban_ciphers": BANS}}) as s:
            res = probe_all(s, ports, lambda n: ["--json", "--cafile", s.cert, "--servername", "localhost"])
            for name, (rc, out, err) in res.items():
                self.assertEqual(rc, 0, "%s: %s%s" % (name, out, err))
                doc = json.loads(out)
                proto, tls = ports[name]
                self.assertEqual((doc["target"], doc["protocol"], doc["tls"], doc["policy_rule"]),
                                 ("127.0.0.1:%d" % s.ports[name], proto, tls, "port %d" % s.ports[name]))
                self.assertTrue(doc["compliant"])
                ids = [c["id"] for c in doc["checks"]]
                want = (["tls-handshake", "plaintext-refused"] if tls == "implicit" else STARTTLS_IDS) + TLS_IDS
                self.assertEqual(ids, want, name)
                self.assert_all_pass(doc, name)
                self.assertEqual(statuses(doc)["version-tls1.1"], "PASS")
                self.assertEqual(statuses(doc)["class-RC4"], "PASS")     # this wolfSSL has RC4
                self.assertEqual(check(doc, "version-tls1.0")["detail"],
                                 "not tested: this wolfSSL cannot make a TLS 1.0 client")
            # the same in text, once
            rc, out, err = probe(s, s.ports["sub"], "--cafile", s.cert, "--servername", "localhost")
            self.assertEqual(rc, 0, out + err)
            self.assertRegex(out, r"(?m)^PASS  auth-refused +530 5\.7\.0 Must issue a STARTTLS command first$")
            self.assertRegex(out, r"(?m)^PASS  injection ")
            self.assertIn("Compliant:", out)
            self.assertNotIn("FAIL", out)

    def test_weak_server_without_module_fails(self):
        ports = {"sub": "smtp", "smtps": "smtp", "imap": "imap", "pop3": "pop3"}
        modes = {"sub": "starttls", "smtps": "implicit", "imap": "starttls", "pop3": "starttls"}
        with harness.Setup(daemonless=True, plain_ports=ports, server_tls=modes, server_args=WEAK) as s:
            res = probe_all(s, ports, lambda n: ["--json", "--cafile", s.cert, "--protocol", ports[n],
                                                 "--tls", modes[n]])
            for name, (rc, out, err) in res.items():
                self.assertEqual(rc, 1, "%s: %s%s" % (name, out, err))
                doc = json.loads(out)
                self.assertFalse(doc["compliant"])
                self.assertIsNone(doc["policy_rule"])
                want = {"version-tls1.1"} if name == "smtps" else {"auth-hidden", "auth-refused", "version-tls1.1"}
                self.assertEqual(fails(doc), want, "%s: %s" % (name, out))
                for c in doc["checks"]:
                    if c["status"] == "FAIL":
                        self.assertTrue(c["advice"], c)
                self.assertIn("TLSv1.1 accepted", check(doc, "version-tls1.1")["detail"])
                self.assertIn("minimum protocol", check(doc, "version-tls1.1")["advice"])
                self.assertEqual(statuses(doc)["cert-chain"], "PASS")
            sub, imap, pop3 = (json.loads(res[n][1]) for n in ("sub", "imap", "pop3"))
            self.assertIn("smtpd_tls_auth_only = yes", check(sub, "auth-hidden")["advice"])
            self.assertIn("535 5.7.8", check(sub, "auth-refused")["detail"])
            self.assertIn("[AUTHENTICATIONFAILED]", check(imap, "auth-refused")["detail"])
            self.assertIn("disable_plaintext_auth = yes", check(imap, "auth-refused")["advice"])
            self.assertIn("USER accepted before TLS", check(pop3, "auth-refused")["detail"])
            rc, out, err = probe(s, s.ports["sub"], "--cafile", s.cert, "--protocol", "smtp", "--tls", "starttls")
            self.assertEqual(rc, 1, out + err)
            self.assertRegex(out, r"(?m)^FAIL  auth-hidden +EHLO lists AUTH before TLS\n +advice: .*smtpd_tls_auth_only")
            self.assertIn("NOT COMPLIANT: 3 FAIL", out)

    def test_injection_executed(self):
        ports = {"sub": "smtp", "imap": "imap", "pop3": "pop3"}
        with harness.Setup(daemonless=True, plain_ports=ports, offer_starttls=True,
                           server_args=["--insecure-keep-pipelined"]) as s:
            res = probe_all(s, ports, lambda n: ["--json", "--cafile", s.cert, "--protocol", ports[n],
                                                 "--tls", "starttls"])
            for name, (rc, out, err) in res.items():
                self.assertEqual(rc, 1, "%s: %s%s" % (name, out, err))
                doc = json.loads(out)
                self.assertEqual(fails(doc), {"auth-hidden", "auth-refused", "injection"}, name)
                self.assertIn("CVE-2011-0411", check(doc, "injection")["advice"])

    def test_policy_rule_for_a_server_without_module(self):
        # the policy's rule, read with -c, audits a server tlspolicy does not run on:
        # a banned class it accepts, and plaintext on a port the policy says is implicit
        with harness.Setup(daemonless=True, plain_ports={"sub": "smtp", "smtps": "smtp"},
                           server_tls={"sub": "starttls", "smtps": "plain"}, server_args=WEAK) as s:
            conf = os.path.join(s.tmp, "audit.conf")
            harness.write_policy(conf, {
                "global": {"ban_ciphers": "CBC"},
                "port %d" % s.ports["sub"]: {"protocol": "smtp", "tls": "starttls", "tls_by": "daemon"},
                "port %d" % s.ports["smtps"]: {"protocol": "smtp", "tls": "implicit", "tls_by": "daemon"}})
            rc, out, err = probe(s, s.ports["sub"], "-c", conf, "--cafile", s.cert, "--json")
            self.assertEqual(rc, 1, out + err)
            doc = json.loads(out)
            self.assertEqual(doc["policy_rule"], "port %d" % s.ports["sub"])
            self.assertEqual(fails(doc), {"auth-hidden", "auth-refused", "version-tls1.1", "class-CBC"})
            self.assertIn("banned CBC suite accepted", check(doc, "class-CBC")["detail"])
            rc, out, err = probe(s, s.ports["smtps"], "-c", conf, "--json")
            self.assertEqual(rc, 1, out + err)
            doc = json.loads(out)
            self.assertEqual(doc["tls"], "implicit")
            self.assertTrue({"tls-handshake", "plaintext-refused"} <= fails(doc), out)
            self.assertIn("answered in clear: 220 ", check(doc, "plaintext-refused")["detail"])

    def test_cannot_probe(self):
        with harness.Setup(daemonless=True, plain_ports={"sub": "smtp"}) as s:
            closed = harness.free_port()
            rc, out, err = probe(s, closed, "--protocol", "smtp", "--tls", "starttls")
            self.assertEqual(rc, 2, out + err)
            self.assertIn("cannot connect to 127.0.0.1 port %d: Connection refused" % closed, err)
            self.assertEqual(out, "")
            # an unmanaged port and no expectations: nothing to check against
            conf = os.path.join(s.tmp, "empty.conf")
            harness.write_policy(conf, {"global": {"min_protocol": "TLSv1.2"}})
            rc, out, err = probe(s, s.ports["sub"], "-c", conf)
            self.assertEqual(rc, 2, out + err)
            self.assertIn("is not managed by the policy", err)
            self.assertIn("--protocol smtp|imap|pop3 and --tls implicit|starttls", err)
            rc, out, err = probe(s, s.ports["sub"], "--tls", "starttls")     # no --protocol
            self.assertEqual(rc, 2, out + err)
            rc, out, err = harness.run([harness.CTL, "probe", "no-port-here"], env=s.env())
            self.assertEqual(rc, 2, out + err)
            self.assertIn("usage: tlspolicyctl probe", err)
