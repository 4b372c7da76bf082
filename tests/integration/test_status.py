"""tlspolicyctl status against live processes: protected, UNPROTECTED, tlspolicyd down,
an impostor on the relay socket

The shimmed test mail server and tlspolicyd are real processes; the
unprotected listener is this test process itself, which has no
tlspolicy.so mapped; the impostor is `nobody` bound to the relay socket
while tlspolicyd is stopped.  Assertions are on status's exit code, its
JSON and its text.
"""

import json
import os
import re
import socket

import harness
import squat


def status(s, *args):
    rc, out, err = s.ctl("status", *args)
    return rc, out, err


def by_port(doc):
    return {p["port"]: p for p in doc["ports"]}


class StatusTest(harness.TestCase):
    timeout = 60

    def setUp(self):
        harness.require_module()

    def test_all_protected(self):
        with harness.Setup({"sub": ("smtp", "starttls"), "imaps": ("imap", "implicit")}) as s:
            rc, out, err = status(s, "--json")
            self.assertEqual(rc, 0, out + err)
            doc = json.loads(out)
            self.assertTrue(doc["protected"])
            self.assertTrue(doc["tlspolicyd"]["running"])
            self.assertEqual(doc["tlspolicyd"]["socket"], s.relay_socket)
            self.assertEqual(doc["tlspolicyd"]["pids"], [s.daemon.pid])
            ports = by_port(doc)
            for name in ("sub", "imaps"):
                p = ports[s.ports[name]]
                self.assertEqual(p["state"], "protected", p)
                self.assertEqual([(l["pid"], l["shim"]) for l in p["listeners"]], [(s.server_pid, True)])
            self.assertEqual(ports[s.ports["sub"]]["tls"], "starttls")
            rc, out, err = status(s)
            self.assertEqual(rc, 0, out + err)
            self.assertRegex(out, r"(?m)^%d +smtp +starttls +module +protected +python3?[^ ]*\[%d\]$"
                             % (s.ports["sub"], s.server_pid))
            self.assertIn("Every managed port that has a listener is protected.", out)

    def test_unprotected_listener(self):
        # a managed port served by a process without the shim: this one
        with socket.socket() as bare:
            bare.bind(("127.0.0.1", 0))
            bare.listen(1)
            port = bare.getsockname()[1]
            with harness.Setup({"sub": ("smtp", "starttls")},
                               policy={"port %d" % port: {"protocol": "smtp", "tls": "implicit"}}) as s:
                rc, out, err = status(s, "--json")
                self.assertEqual(rc, 1, out + err)
                doc = json.loads(out)
                self.assertFalse(doc["protected"])
                p = by_port(doc)[port]
                self.assertEqual(p["state"], "UNPROTECTED")
                self.assertEqual([(l["pid"], l["shim"]) for l in p["listeners"]], [(os.getpid(), False)])
                self.assertEqual(by_port(doc)[s.ports["sub"]]["state"], "protected")
                rc, out, err = status(s)
                self.assertEqual(rc, 1)
                self.assertRegex(out, r"(?m)^%d +smtp +implicit +module +UNPROTECTED +.*\[%d\] \(no shim\)$"
                                 % (port, os.getpid()))
                self.assertIn("1 managed port is UNPROTECTED", out)
                self.assertIn("tlspolicyctl enable DAEMON", out)

    def test_not_listening_and_daemon_down(self):
        idle = harness.free_port()
        with harness.Setup({"sub": ("smtp", "starttls")},
                           policy={"port %d" % idle: {"protocol": "pop3", "tls": "implicit"}}) as s:
            rc, out, err = status(s, "--json")
            self.assertEqual(rc, 0, out + err)
            self.assertEqual(by_port(json.loads(out))[idle]["state"], "not-listening")
            s.stop_daemon()
            rc, out, err = status(s, "--json")
            self.assertEqual(rc, 1, out + err)
            doc = json.loads(out)
            self.assertFalse(doc["tlspolicyd"]["running"])
            self.assertEqual(doc["tlspolicyd"]["pids"], [])
            self.assertFalse(doc["protected"])
            rc, out, err = status(s)
            self.assertEqual(rc, 1)
            self.assertIn("tlspolicyd: NOT RUNNING on %s" % s.relay_socket, out)
            self.assertIn("every connection to a managed port is refused", out)

    def test_usage_and_bad_policy(self):
        with harness.Setup({"sub": ("smtp", "starttls")}) as s:
            rc, out, err = status(s, "--bogus")
            self.assertEqual(rc, 2)
            self.assertIn("usage: tlspolicyctl status", err)
            with open(s.conf, "a") as f:
                f.write("\n[port 2525]\nprotocol = smpt\n")
            rc, out, err = status(s)
            self.assertEqual(rc, 1)
            self.assertRegex(err, r"tlspolicy\.conf:\d+: error: \[port 2525\] protocol")

    def test_impostor_on_relay_socket(self):
        # tlspolicyd stopped (a crash, a restart): nobody binds its name
        with harness.Setup({"sub": ("smtp", "starttls")}) as s:
            s.stop_daemon()
            with squat.Squatter(s, s.relay_socket) as sq:
                rc, out, err = status(s, "--json")
                self.assertEqual(rc, 1, out + err)
                doc = json.loads(out)
                self.assertFalse(doc["protected"])
                self.assertFalse(doc["tlspolicyd"]["running"])
                self.assertEqual(doc["tlspolicyd"]["pids"], [])
                imp = doc["tlspolicyd"]["impostor"]
                self.assertEqual((imp["pid"], imp["uid"]), (sq.pid, 65534), imp)
                self.assertRegex(imp["command"], r"^python3")
                rc, out, err = status(s)
                self.assertEqual(rc, 1, out + err)
                self.assertRegex(out, r"(?m)^tlspolicyd: NOT RUNNING: impostor pid %d uid 65534 \(python3[^ )]*\) "
                                 r"holds %s: tlspolicyd is not running there$" % (sq.pid, re.escape(s.relay_socket)))
                self.assertIn("pid %d is neither root nor user tlspolicy, so it is not tlspolicyd" % sq.pid, out)
                self.assertEqual(sq.report()["bytes"], 0)
            # and with the real one back: running, no impostor
            s.start_daemon()
            rc, out, err = status(s, "--json")
            self.assertEqual(rc, 0, out + err)
            self.assertIsNone(json.loads(out)["tlspolicyd"]["impostor"])
