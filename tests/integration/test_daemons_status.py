"""test_daemons_status.py - tlspolicyctl status against Debian's Postfix and Dovecot

status is the guard against the shim silently not loading: for every
managed port it lists the processes holding the listening socket and
whether tlspolicy.so is mapped in each.  Here those processes are the real
daemons (daemons.py), put under the shim by `tlspolicyctl enable`, with a
policy that gives both roles: Postfix's MX port behind postscreen and its
submission port with tls_by = module, submissions with tls_by = daemon;
Dovecot's IMAP, IMAPS and POP3 with tls_by = module, POP3S with tls_by =
daemon.

- With both daemons under the shim and tlspolicyd running, every managed
  port is protected, its listeners are the daemons' own processes (Postfix
  master, smtpd, postscreen; dovecot, imap-login, pop3-login), each with
  the shim, and status exits 0.  Postfix's master holds the listeners but
  never accepts: it has the shim because its environment has LD_PRELOAD,
  as the systemd drop-in of `enable` gives it in production.
- After `tlspolicyctl disable dovecot` and a restart of Dovecot without
  LD_PRELOAD (what the drop-in's removal means at the next restart), its
  ports are UNPROTECTED, listed with their listeners' pids, Postfix's stay
  protected, status exits 1 and its text says UNPROTECTED.  Clients do
  reach Dovecot directly there, past tlspolicyd: what UNPROTECTED means.
"""

import json
import re

import daemons
import harness

PORTS = {
    "smtp": ("smtp", "opportunistic"),              # postscreen in front of smtpd
    "submission": ("smtp", "starttls"),
    "submissions": ("smtp", "implicit", "daemon"),  # Postfix's own TLS
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
    "pop3": ("pop3", "starttls"),
    "pop3s": ("pop3", "implicit", "daemon"),        # Dovecot's own TLS
}
POSTFIX_PORTS = ("smtp", "submission", "submissions")
DOVECOT_PORTS = ("imap", "imaps", "pop3", "pop3s")
# the processes that hold each port's listening socket once a client came
LISTENERS = {"smtp": {"master", "postscreen"}, "submission": {"master", "smtpd"},
             "submissions": {"master", "smtpd"}, "imap": {"dovecot", "imap-login"},
             "imaps": {"dovecot", "imap-login"}, "pop3": {"dovecot", "pop3-login"},
             "pop3s": {"dovecot", "pop3-login"}}


class DaemonStatusTest(harness.TestCase):
    timeout = 120

    def setUp(self):
        daemons.require_daemons()
        self.s = harness.Setup(PORTS, server=False)
        self.addCleanup(self.s.close)
        self.pf = daemons.Postfix(self.s, smtp="smtp", submission="submission", submissions="submissions",
                                  postscreen=True)
        self.dc = daemons.Dovecot(self.s, imap="imap", imaps="imaps", pop3="pop3", pop3s="pop3s",
                                  sasl_socket=daemons.Postfix.sasl_socket(self.s))

    def status(self, *args):
        """status with TLSPOLICY_CONF pointing at the test policy; (rc, out, err)"""
        return self.s.ctl("status", *args)

    def json_status(self):
        rc, out, err = self.status("--json")
        doc = json.loads(out)
        return rc, {p["port"]: p for p in doc["ports"]}, doc

    def clients(self):
        """a client on each port, each held in its login phase, so that the
        processes that accept (smtpd, postscreen, imap-login, pop3-login)
        run and hold the listeners too; each got the daemon's greeting"""
        held = []
        for name in PORTS:
            r = self.s.raw(name, tls=PORTS[name][1] == "implicit")
            self.assertRegex(r.read_line(), rb"^(220[ -]mail\.test ESMTP|\* OK |\+OK )", name)
            held.append(r)
        return held

    def assertListeners(self, port, name, shim):
        """the port's listeners are the daemon's own processes, shim or not"""
        by_command = {}
        for l in port["listeners"]:
            by_command.setdefault(l["command"], []).append(l)
            self.assertIs(l["shim"], shim, "%s: %r" % (name, l))
        self.assertEqual(set(by_command), LISTENERS[name], port)
        instance = self.pf if name in POSTFIX_PORTS else self.dc
        pids = {l["pid"] for l in port["listeners"]}
        self.assertIn(instance.master_pid(), pids, "the master holds the listener")
        self.assertLessEqual(pids, set(instance.pids()), "every listener is a process of the instance")
        return pids

    def test_protected_then_unprotected_after_disable(self):
        held = self.clients()
        rc, ports, doc = self.json_status()
        self.assertEqual(rc, 0, json.dumps(doc, indent=1))
        self.assertTrue(doc["protected"])
        self.assertTrue(doc["tlspolicyd"]["running"])
        self.assertEqual(doc["tlspolicyd"]["pids"], [self.s.daemon.pid])
        self.assertEqual(len(ports), len(PORTS))
        for name in PORTS:
            with self.subTest(port=name):
                p = ports[self.s.ports[name]]
                self.assertEqual((p["state"], p["tls"], p["tls_by"]),
                                 ("protected", PORTS[name][1], (PORTS[name] + ("module",))[2]))
                self.assertListeners(p, name, True)
        rc, out, err = self.status()
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Every managed port that has a listener is protected.", out)
        self.assertRegex(out, r"(?m)^%d +smtp +opportunistic +module +protected +master\[%d\] "
                         % (self.s.ports["smtp"], self.pf.master_pid()))
        self.assertNotIn("UNPROTECTED", out)
        for r in held:
            r.close()

        # the shim leaves Dovecot: disable, and a restart without the drop-in
        rc, out, err = self.dc.ctl_enable("disable")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("remove %s/tlspolicy-dovecot.conf\n" % self.dc.confdir, out)
        self.dc.restart(preload=False)
        logged = len(self.s.log)
        held = self.clients()
        rc, ports, doc = self.json_status()
        self.assertEqual(rc, 1, json.dumps(doc, indent=1))
        self.assertFalse(doc["protected"])
        self.assertTrue(doc["tlspolicyd"]["running"])
        pids = {}
        for name in PORTS:
            with self.subTest(port=name):
                p = ports[self.s.ports[name]]
                unprotected = name in DOVECOT_PORTS
                self.assertEqual(p["state"], "UNPROTECTED" if unprotected else "protected")
                pids[name] = self.assertListeners(p, name, not unprotected)
        rc, out, err = self.status()
        self.assertEqual(rc, 1, out + err)
        for name in DOVECOT_PORTS:
            row = re.search(r"(?m)^%d +%s +%s +%s +UNPROTECTED +(.*)$"
                            % (self.s.ports[name], PORTS[name][0], PORTS[name][1],
                               (PORTS[name] + ("module",))[2]), out)
            self.assertIsNotNone(row, out)
            listed = re.findall(r"([\w-]+)\[(\d+)\] \(no shim\)", row.group(1))
            self.assertEqual({int(pid) for _, pid in listed}, pids[name], row.group(0))
            self.assertEqual(len(listed), len(row.group(1).split(") ")), "every listener marked: " + row.group(0))
        for name in POSTFIX_PORTS:
            self.assertRegex(out, r"(?m)^%d +smtp +\S+ +\w+ +protected +master\[%d\]"
                             % (self.s.ports[name], self.pf.master_pid()))
        self.assertIn("4 managed ports are UNPROTECTED: a process listens there without tlspolicy.so", out)
        # UNPROTECTED is real: those clients reached Dovecot past tlspolicyd
        self.assertNotRegex(self.s.log[logged:], r"port=(%s) " % "|".join(str(self.s.ports[n]) for n in DOVECOT_PORTS))
        daemons.wait_text(lambda: self.s.log[logged:], r"port=%d client=\S+ mode=\S+ action=relay"
                          % self.s.ports["submission"], 5, "tlspolicyd's log")
        for r in held:
            r.close()
