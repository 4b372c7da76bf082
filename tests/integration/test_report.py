"""test_report.py - tlspolicyctl report on the log of a real tlspolicyd

One Setup: a STARTTLS submission port, an implicit-TLS port and a
STARTTLS port with enforce = audit.  Real clients make good TLS sessions
on the first two, AUTH before TLS (refused), a TLS 1.1 handshake with
tp-tlsclient (refused under the TLSv1.2 floor), a STARTTLS with a
pipelined command (the injection, discarded), a plaintext client on the
implicit port, and AUTH before TLS on the audit port (would-refuse, let
through); tlspolicyd -f logs each decision
on stderr ("tlspolicy: ..."), and report --json on that file must count
exactly those.  Then the same lines as syslog writes them (RFC 3339 and
traditional timestamps) give the same counts.
"""

import json
import os
import re
import time

import harness
from modcommon import SMTP_GO_TLS, SMTP_NEED_TLS, SMTP_REPLY, ModuleCase, plain

TLSCLIENT = os.path.join(harness.BUILDDIR, "tests", "tp-tlsclient")
GOOD_STARTTLS = 2
GOOD_IMPLICIT = 3


def expect(got, wanted):
    if got != wanted:
        raise AssertionError("got %r, wanted %r" % (got, wanted))


class ReportTest(ModuleCase):
    ports = {"submission": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
             "audit": {"protocol": "smtp", "tls": "starttls", "enforce": "audit"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.path.exists(TLSCLIENT):
            harness.skip_or_fail("not built: %s (make)" % TLSCLIENT)
        cls.traffic()

    @classmethod
    def traffic(cls):
        """the sessions whose log lines report counts; returns when
        tlspolicyd has logged the end of every one"""
        s = cls.s
        for _ in range(GOOD_STARTTLS):
            c = s.smtp("submission")
            c.ehlo("client.test")
            c.starttls(context=s.ssl_context)
            c.ehlo("client.test")
            c.quit()
        for _ in range(GOOD_IMPLICIT):
            c = s.smtp_ssl("smtps")
            c.ehlo("client.test")
            c.quit()
        # AUTH before TLS: refused, then the client gives up
        r = s.raw("submission")
        r.read_line()
        r.sendline("EHLO client.test")
        r.read_until(SMTP_REPLY)
        r.sendline("AUTH PLAIN " + plain("test", "secret"))
        expect(r.read_line(), SMTP_NEED_TLS)
        r.sendline("QUIT")
        r.read_all()
        # STARTTLS with a command pipelined behind it: discarded, then TLS
        r = s.raw("submission")
        r.read_line()
        r.sendline("EHLO client.test")
        r.read_until(SMTP_REPLY)
        r.send(b"STARTTLS\r\nMAIL FROM:<a@client.test>\r\n")
        expect(r.read_line(), SMTP_GO_TLS)
        r.starttls()
        r.sendline("QUIT")
        r.read_all()
        # TLS 1.1 against the TLSv1.2 floor
        rc, out, err = harness.run([TLSCLIENT, "--version", "1.1", "127.0.0.1", str(s.ports["smtps"])])
        if rc == 0:
            raise AssertionError("TLS 1.1 was accepted: %s%s" % (out, err))
        # plaintext on the implicit port
        r = s.raw("smtps")
        r.sendline("EHLO client.test")
        r.read_all()
        # AUTH before TLS on the audit port: would-refuse, let through
        r = s.raw("audit")
        r.read_line()
        r.sendline("EHLO client.test")
        r.read_until(SMTP_REPLY)
        r.sendline("AUTH PLAIN " + plain("test", "secret"))
        r.read_line()
        r.sendline("QUIT")
        r.read_all()
        sessions = GOOD_STARTTLS + GOOD_IMPLICIT + 5
        deadline = time.monotonic() + 10
        while len(re.findall(r"(?m)^tlspolicy: .* action=end ", s.log)) < sessions:
            if time.monotonic() > deadline:
                raise AssertionError("not every session ended in tlspolicyd's log:\n" + s.log)
            time.sleep(0.05)

    def report(self, *args):
        rc, out, err = harness.run([harness.CTL, "report", "--json", *args])
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def logged(self, port, pattern):
        """how many of tlspolicyd's lines for port match pattern"""
        return len(re.findall(r"(?m)^tlspolicy: port=%d client=\S+ mode=\S+ %s" % (port, pattern),
                              self.s.log))

    def expected(self):
        """what report must say about this Setup's traffic"""
        sub, smtps, audit = self.s.ports["submission"], self.s.ports["smtps"], self.s.ports["audit"]
        tls_sub = GOOD_STARTTLS + 1                 # the injection session ends in TLS too
        suites = {}
        for m in re.finditer(r"(?m)^tlspolicy: port=(\d+) .* action=tls version=\S+ suite=(\S+)",
                             self.s.log):
            key = (int(m.group(1)), m.group(2))
            suites[key] = suites.get(key, 0) + 1
        return [
            {"port": sub, "connections": GOOD_STARTTLS + 2,
             "tls": {"sessions": tls_sub, "versions": {"TLSv1.3": tls_sub},
                     "suites": {k[1]: n for k, n in suites.items() if k[0] == sub}},
             "refused": {"auth-before-tls": 1}, "would_refuse": {},
             "discarded": 1, "timeouts": 0, "closed": {},
             "top_refused_clients": [{"client": "127.0.0.1", "count": 1}]},
            {"port": smtps, "connections": GOOD_IMPLICIT + 2,
             "tls": {"sessions": GOOD_IMPLICIT, "versions": {"TLSv1.3": GOOD_IMPLICIT},
                     "suites": {k[1]: n for k, n in suites.items() if k[0] == smtps}},
             "refused": {"tls-handshake-failed": 1, "plaintext-on-implicit-port": 1},
             "would_refuse": {}, "discarded": 0, "timeouts": 0, "closed": {},
             "top_refused_clients": [{"client": "127.0.0.1", "count": 2}]},
            {"port": audit, "connections": 1, "tls": {"sessions": 0, "versions": {}, "suites": {}},
             "refused": {}, "would_refuse": {"auth-before-tls": 1}, "discarded": 0, "timeouts": 0,
             "closed": {}, "top_refused_clients": []},
        ]

    def test_counts_of_the_daemons_log(self):
        got = self.report("--log", self.s.daemon_log_path)
        self.assertEqual(got["source"], [self.s.daemon_log_path])
        self.assertEqual((got["skipped"], got["garbage"], got["capped"]), (0, 0, False))
        self.assertEqual(got["ports"], sorted(self.expected(), key=lambda p: p["port"]))
        # every tlspolicy line was read: the start line, and per session its own
        self.assertEqual(got["lines"], len(re.findall(r"(?m)^tlspolicy: ", self.s.log)))
        # the refusals the log shows, one by one
        self.assertEqual(self.logged(self.s.ports["submission"], "action=refuse reason=auth-before-tls$"), 1)
        self.assertEqual(self.logged(self.s.ports["submission"], "action=discard reason=injection bytes=\\d+$"), 1)
        self.assertEqual(self.logged(self.s.ports["smtps"], 'action=refuse reason=tls-handshake-failed error="[^"]+" policy_floor=TLSv1\\.2$'), 1)

    def test_the_same_lines_from_syslog(self):
        """the log as rsyslog writes it, half with RFC 3339 and half with
        traditional timestamps, plus another program's lines: same counts"""
        lines = [l[len("tlspolicy: "):] for l in self.s.log.splitlines() if l.startswith("tlspolicy: ")]
        path = os.path.join(self.s.tmp, "mail.log")
        with open(path, "w", encoding="utf-8") as f:
            for i, line in enumerate(lines):
                if i % 2:
                    f.write("2026-11-29T09:12:%02d.123456+00:00 mx tlspolicy[812]: %s\n" % (i % 60, line))
                else:
                    f.write("Nov 29 09:12:%02d mx tlspolicy[812]: %s\n" % (i % 60, line))
                f.write("Nov 29 09:12:%02d mx postfix/smtpd[901]: connect from x[192.0.2.1]\n" % (i % 60))
        got = self.report("--log", path)
        self.assertEqual(got["ports"], sorted(self.expected(), key=lambda p: p["port"]))
        self.assertEqual((got["lines"], got["other"], got["skipped"]), (len(lines), len(lines), 0))
        # with --since the daemon's own stderr lines have no time: skipped and counted
        got = self.report("--log", self.s.daemon_log_path, "--since", "1h")
        self.assertEqual((got["lines"], got["skipped"], got["undated"], got["ports"]),
                         (0, len(lines), len(lines), []))


if __name__ == "__main__":
    import unittest
    unittest.main()
