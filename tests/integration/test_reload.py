"""tlspolicyctl reload under load: full sessions on every managed port while
the policy is reloaded 100 times, alternating two valid policies and an
invalid one.

Asserted: no session fails; each reload of a valid policy prints the next
generation and each reload of the invalid one exits 1 and changes nothing;
every connection is handled by exactly one generation (its one
"action=relay ... gen=N" line), and only generations of valid policies ever
handle one; tlspolicyd and status end on the last valid generation.  Also:
concurrent reloads serialize (distinct, consecutive generations).
"""

import json
import os
import re
import threading
import time

import harness

PORTS = {"sub": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
         "imaps": ("imap", "implicit"), "imap": ("imap", "starttls"),
         "pop3s": ("pop3", "implicit"), "pop3": ("pop3", "starttls")}


def session(s, name):
    """one full session on a port: login inside TLS, then a command, then quit"""
    proto, mode = PORTS[name]
    if proto == "smtp":
        c = s.smtp_ssl(name) if mode == "implicit" else s.smtp(name)
        if mode != "implicit":
            c.starttls()
        c.login(s.user, s.password)
        c.sendmail("a@x.test", ["b@y.test"], "Subject: reload\r\n\r\nbody\r\n")
        c.quit()
    elif proto == "imap":
        c = s.imap_ssl(name) if mode == "implicit" else s.imap(name)
        if mode != "implicit":
            c.starttls()
        c.login(s.user, s.password)
        c.select("INBOX")
        c.logout()
    else:
        c = s.pop3_ssl(name) if mode == "implicit" else s.pop3(name)
        if mode != "implicit":
            c.stls()
        c.user(s.user)
        c.pass_(s.password)
        c.stat()
        c.quit()


class ReloadTest(harness.TestCase):
    timeout = 240

    def setUp(self):
        harness.require_module()

    def set_policy(self, s, which):
        g = s.policy_sections["global"]
        if which == "A":
            g.update({"min_protocol": "TLSv1.2", "handshake_timeout": "30"})
        else:
            g.update({"min_protocol": "TLSv1.3", "handshake_timeout": "20"})
        s.write_policy()
        if which == "bad":
            with open(s.conf, "a") as f:
                f.write("\n[port 2525]\nprotocol = smtp\ntls = tls\n")

    def test_reload_under_load(self):
        with harness.Setup(PORTS) as s:
            self.set_policy(s, "A")
            rc, out, err = s.ctl("reload")
            self.assertEqual((rc, out), (0, "generation 1\n"), err)

            stop = threading.Event()
            failures, done = [], []
            lock = threading.Lock()

            def client(names):
                n = 0
                while not stop.is_set():
                    name = names[n % len(names)]
                    n += 1
                    try:
                        session(s, name)
                        with lock:
                            done.append(name)
                    except Exception as e:      # noqa: BLE001 - every failure counts
                        with lock:
                            failures.append("%s: %r" % (name, e))

            names = list(PORTS)
            threads = [threading.Thread(target=client, args=(names[i::3],), daemon=True) for i in range(3)]
            for t in threads:
                t.start()

            valid_gens, gen = {1}, 1
            cycle = ["B", "bad", "A"]
            for i in range(100):
                which = cycle[i % 3]
                self.set_policy(s, which)
                rc, out, err = s.ctl("reload")
                if which == "bad":
                    self.assertEqual(rc, 1, out + err)
                    self.assertIn("nothing published; generation %d stays" % gen, err)
                    self.assertRegex(err, r"tlspolicy\.conf:\d+: error: \[port 2525\] tls")
                else:
                    gen += 1
                    self.assertEqual((rc, out), (0, "generation %d\n" % gen), err)
                    valid_gens.add(gen)
            time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(60)

            self.assertEqual(failures, [], "%d of %d sessions failed" % (len(failures), len(failures) + len(done)))
            self.assertGreater(len(done), 30, "the load was too light to mean anything")
            self.assertEqual(set(done), set(PORTS))

            # every connection: one relay line, one generation, a valid one
            log = s.log
            relays = re.findall(r"(?m)^tlspolicy: port=(\d+) client=(\S+) mode=\S+ action=relay "
                                r"tls_by=\w+ gen=(\d+)$", log)
            self.assertGreaterEqual(len(relays), len(done))
            clients = [(p, c) for p, c, _ in relays]
            self.assertEqual(len(clients), len(set(clients)), "a connection was relayed twice")
            gens = {int(g) for _, _, g in relays}
            self.assertTrue(gens <= valid_gens, gens - valid_gens)
            self.assertGreater(len(gens), 10, "connections were handled by too few generations: %s" % gens)
            self.assertNotIn("reload-failed", log)
            # every superseded generation was freed once its last connection ended
            for n in range(0, gen):
                s.wait_log(r"(?m)^tlspolicy: action=free generation=%d note=" % n, timeout=10)
            self.assertEqual(len(re.findall(r"action=free generation=", s.log)), gen)
            self.assertEqual(len(re.findall(r"action=reload file=\S+ generation=\d+ ports=6", log)), gen)

            # the end state: the last valid generation everywhere
            with open(os.path.join(s.rundir, "generation")) as f:
                self.assertTrue(f.read().startswith("%d " % gen))
            last = cycle[99 % 3]
            self.assertEqual(last, "B")
            self.set_policy(s, "B")
            rc, out, err = s.ctl("status", "--json")
            doc = json.loads(out)
            self.assertEqual(doc["generation"], gen)
            self.assertFalse(doc["files_differ"])
            self.set_policy(s, "A")
            rc, out, err = s.ctl("status", "--json")
            self.assertTrue(json.loads(out)["files_differ"])
            rc, out, err = s.ctl("status")
            self.assertIn("published:  generation %d (%s); the policy files differ from it: "
                          "run tlspolicyctl reload" % (gen, s.rundir), out)

    def test_concurrent_reloads_serialize(self):
        with harness.Setup({"sub": ("smtp", "starttls")}) as s:
            results = []

            def one():
                results.append(s.ctl("reload"))

            threads = [threading.Thread(target=one) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(sorted(out for rc, out, err in results),
                             ["generation %d\n" % n for n in range(1, 9)])
            self.assertTrue(all(rc == 0 for rc, out, err in results))

    def test_usage_and_daemon_not_running(self):
        with harness.Setup({"sub": ("smtp", "starttls")}) as s:
            rc, out, err = s.ctl("reload")
            self.assertEqual(out, "generation 1\n")
            ports = open(os.path.join(s.rundir, "ports")).read()
            rc, out, err = s.ctl("reload", "--bogus")
            self.assertEqual(rc, 2)
            self.assertIn("usage: tlspolicyctl reload", err)
            # tlspolicyd not running: published, and said so
            s.stop_daemon()
            rc, out, err = s.ctl("reload")
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"^generation 2 \(tlspolicyd is not running on %s; it loads this "
                                  r"generation when it starts\)\n$" % re.escape(s.relay_socket))
            self.assertNotEqual(open(os.path.join(s.rundir, "ports")).read(), ports)
            s.start_daemon()
            s.wait_log(r"action=start socket=\S+ ports=1 file=\S+/run/policy\.conf generation=2")
            c = s.smtp("sub")
            c.starttls()
            c.quit()
            s.wait_log(r"action=relay tls_by=module gen=2$")

    def test_shim_follows_new_ports(self):
        # the server listens on a port the first generation does not manage;
        # the next generation manages it: the same running shim hands it over
        with harness.Setup({"sub": ("smtp", "starttls")}, plain_ports={"extra": "smtp"}) as s:
            rc, out, err = s.ctl("reload")
            self.assertEqual(out, "generation 1\n", err)
            r = s.raw("extra")
            r.read_until(b"220 ")                   # plaintext, straight from the server
            r.close()
            self.assertNotRegex(s.log, r"port=%d .*action=relay" % s.ports["extra"])

            s.policy_sections["port %d" % s.ports["extra"]] = {"protocol": "smtp", "tls": "implicit"}
            s.write_policy()
            rc, out, err = s.ctl("reload")
            self.assertEqual(out, "generation 2\n", err)
            c = s.smtp_ssl("extra")                 # now TLS from the first byte
            c.ehlo("client.test")
            c.quit()
            s.wait_log(r"port=%d client=\S+ mode=implicit action=relay tls_by=module gen=2$" % s.ports["extra"])

            # and back: a generation that drops the port leaves it alone again
            del s.policy_sections["port %d" % s.ports["extra"]]
            s.write_policy()
            rc, out, err = s.ctl("reload")
            self.assertEqual(out, "generation 3\n", err)
            r = s.raw("extra")
            r.read_until(b"220 ")
            r.close()
