"""tlspolicyctl reload under load: full sessions on every managed port while
the policy is reloaded 100 times, alternating two valid policies and an
invalid one.

Asserted: no session fails; each reload of a valid policy prints the next
generation and each reload of the invalid one exits 1 and changes nothing;
every connection is handled by exactly one generation (its one
"action=relay ... gen=N" line), and only generations of valid policies ever
handle one; tlspolicyd and status end on the last valid generation.  Each
session connects from a source address of its own (127.1.x.y), so a
client ip:port names one connection even when the kernel hands out the
same ephemeral port again.  Also: concurrent reloads serialize (distinct,
consecutive generations).

Who reload talks to (performed as `nobody`, see squat.py): an impostor on
the relay socket gets no byte and nothing is published; a policy that
changes relay_socket or user is refused while tlspolicyd runs, the shims
keep the name it serves, and a squatter on the new name gets nothing.
Under `umask 077`, a tlspolicyd running as its own user and a shimmed
daemon running as another one still follow what reload publishes; a
published generation tlspolicyd cannot read is never replaced by the files
in /etc behind its back.
"""

import collections
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import socket
import threading
import time

import harness
import squat

PORTS = {"sub": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
         "imaps": ("imap", "implicit"), "imap": ("imap", "starttls"),
         "pop3s": ("pop3", "implicit"), "pop3": ("pop3", "starttls")}


# one source address per session, never reused within a test: 127.1.0.1, 127.1.0.2, ...
_sources = itertools.count(1)


def next_source():
    n = next(_sources)
    return "127.%d.%d.%d" % (1 + n // (255 * 255), n // 255 % 255, n % 255 + 1)


def session(s, name, source=None):
    """one full session on a port: login inside TLS, then a command, then quit"""
    proto, mode = PORTS[name]
    if proto == "smtp":
        c = s.smtp_ssl(name, source=source) if mode == "implicit" else s.smtp(name, source=source)
        if mode != "implicit":
            c.starttls()
        c.login(s.user, s.password)
        c.sendmail("a@x.test", ["b@y.test"], "Subject: reload\r\n\r\nbody\r\n")
        c.quit()
    elif proto == "imap":
        c = s.imap_ssl(name, source=source) if mode == "implicit" else s.imap(name, source=source)
        if mode != "implicit":
            c.starttls()
        c.login(s.user, s.password)
        c.select("INBOX")
        c.logout()
    else:
        c = s.pop3_ssl(name, source=source) if mode == "implicit" else s.pop3(name, source=source)
        if mode != "implicit":
            c.stls()
        c.user(s.user)
        c.pass_(s.password)
        c.stat()
        c.quit()


def published(s):
    """the run directory's published files, {name: bytes or None}"""
    out = {}
    for name in ("policy.conf", "generation", "ports"):
        try:
            with open(os.path.join(s.rundir, name), "rb") as f:
                out[name] = f.read()
        except FileNotFoundError:
            out[name] = None
    return out


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
                    with lock:
                        source = next_source()
                    try:
                        session(s, name, source)
                        with lock:
                            done.append((name, source))
                    except Exception as e:      # noqa: BLE001 - every failure counts
                        with lock:
                            failures.append("%s from %s: %r" % (name, source, e))

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
            self.assertEqual({name for name, _ in done}, set(PORTS))

            # every connection: one relay line, one generation, a valid one;
            # a source address is one connection, so it is named exactly once
            log = s.log
            relays = re.findall(r"(?m)^tlspolicy: port=(\d+) client=(\S+):\d+ mode=\S+ action=relay "
                                r"tls_by=\w+ gen=(\d+)$", log)
            self.assertGreaterEqual(len(relays), len(done))
            per_source = collections.Counter(c for _, c, _ in relays)
            twice = sorted(c for c, n in per_source.items() if n > 1)
            self.assertEqual(twice, [], "a connection was relayed twice")
            ports = {name: str(s.ports[name]) for name in PORTS}
            relayed = {c: p for p, c, _ in relays}
            for name, source in done:
                self.assertEqual(relayed.get(source), ports[name], "session %s from %s: no relay line" % (name, source))
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

    # --- who reload talks to, and what it may publish ------------------------

    def test_reload_refuses_impostor(self):
        # tlspolicyd stopped; nobody binds its name and waits for a reload
        with harness.Setup({"sub": ("smtp", "starttls")}) as s:
            self.assertEqual(s.reload(), "generation 1\n")
            before = published(s)
            s.stop_daemon()
            with squat.Squatter(s, s.relay_socket) as sq:
                s.policy_sections["global"]["handshake_timeout"] = "20"
                s.write_policy()
                rc, out, err = s.ctl("reload")
                self.assertEqual((rc, out), (1, ""), err)
                self.assertRegex(err, r"reload: impostor pid %d uid 65534 \(python3[^ )]*\) holds %s: "
                                      r"tlspolicyd is not running there \(only root or user tlspolicy may be\); "
                                      r"nothing published; generation 1 stays\n$"
                                 % (sq.pid, re.escape(s.relay_socket)))
                self.assertEqual(published(s), before)
                seen = sq.report()
                self.assertEqual((seen["bytes"], seen["fds"]), (0, 0), seen)
            # one that accepts nobody, its backlog full: reload does not wait on it
            with squat.Squatter(s, s.relay_socket, stall=True):
                filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.addCleanup(filler.close)
                filler.connect("\0" + s.relay_socket[1:])
                started = time.monotonic()
                rc, out, err = s.ctl("reload")
                self.assertEqual((rc, out), (1, ""), err)
                self.assertLess(time.monotonic() - started, 5)
                self.assertIn("reload: cannot connect to %s: Connection timed out; nothing published; "
                              "generation 1 stays" % s.relay_socket, err)
                self.assertEqual(published(s), before)
                rc, out, err = s.ctl("status")
                self.assertEqual(rc, 1)
                self.assertIn("tlspolicyd: NOT RUNNING on %s (something listens there but accepts no "
                              "connection)" % s.relay_socket, out)

    def test_reload_refuses_relay_socket_or_user_change(self):
        # with and without a generation published before (tlspolicyd then
        # runs the files as they were at its start: only its record knows)
        for key, publish_first in (("relay_socket", False), ("relay_socket", True),
                                   ("user", False), ("user", True)):
            with self.subTest(key=key, publish_first=publish_first), \
                    harness.Setup({"sub": ("smtp", "starttls")}, publish=publish_first) as s:
                gen = 1 if publish_first else 0
                before = published(s)
                new_name = s.relay_socket + "-new"
                old, new = {"relay_socket": (s.relay_socket, new_name), "user": ("tlspolicy", "nobody")}[key]
                with squat.Squatter(s, new_name) as sq:
                    s.policy_sections["global"][key] = new
                    s.write_policy()
                    rc, out, err = s.ctl("reload")
                    self.assertEqual((rc, out), (1, ""), err)
                    self.assertIn("reload: %s changes from %s to %s: takes effect on restart: restart tlspolicyd "
                                  % (key, old, new), err)
                    self.assertTrue(err.endswith("nothing published; generation 1 stays\n" if publish_first
                                                 else "nothing published\n"), err)
                    self.assertEqual(published(s), before)
                    # the shims keep the name tlspolicyd serves: a client is still served
                    c = s.smtp("sub")
                    c.starttls()
                    c.ehlo("client.test")
                    c.quit()
                    s.wait_log(r"port=%d client=\S+ mode=starttls action=relay tls_by=module gen=%d$"
                               % (s.ports["sub"], gen))
                    self.assertEqual(sq.report(), {"connections": 0, "bytes": 0, "fds": 0})
                    self.assertNotIn("action=control", s.log)

    def test_relay_socket_change_while_stopped(self):
        # the way to change relay_socket: stop tlspolicyd, reload, start it
        with harness.Setup({"sub": ("smtp", "starttls")}, publish=True) as s:
            s.stop_daemon()
            old, new = s.relay_socket, s.relay_socket + "-new"
            s.policy_sections["global"]["relay_socket"] = new
            s.write_policy()
            rc, out, err = s.ctl("reload")
            self.assertEqual((rc, out), (0, "generation 2 (tlspolicyd is not running on %s; it loads this "
                                           "generation, on %s, when it starts)\n" % (old, new)), err)
            s.relay_socket = new
            s.start_daemon()
            s.wait_log(r"action=start socket=%s ports=1 file=\S+/run/policy\.conf generation=2" % re.escape(new))
            c = s.smtp("sub")
            c.starttls()
            c.quit()
            s.wait_log(r"action=relay tls_by=module gen=2$")

    # --- modes: what reload publishes is readable by whoever must read it ----

    def _user(self):
        """a system user of this test's own, removed at its end"""
        harness.require("useradd", "userdel", "setpriv")
        name = "tlsptest%d" % os.getpid()
        try:
            pwd.getpwnam(name)
            harness.run(["userdel", name])      # left by a run that was killed
        except KeyError:
            pass
        rc, out, err = harness.run(["useradd", "--system", "--no-create-home", "--user-group",
                                    "--shell", "/usr/sbin/nologin", name])
        self.assertEqual(rc, 0, err)
        self.addCleanup(harness.run, ["userdel", name])
        return pwd.getpwnam(name)

    def _spawn_as(self, s, pw, cmd, env):
        """cmd as pw; tlspolicyd, the test server and the shim from where pw can read them"""
        log = s.daemon_log_path if cmd[0] == harness.DAEMON else s.server_log_path
        public = {harness.DAEMON: harness.for_others(harness.DAEMON)}
        if harness.MAILSERVER in cmd:
            server_dir = harness.for_others(os.path.dirname(os.path.abspath(harness.MAILSERVER)))
            public[harness.MAILSERVER] = os.path.join(server_dir, os.path.basename(harness.MAILSERVER))
        if "LD_PRELOAD" in env:
            env = harness.preload_env(env, harness.for_others(harness.SHIM))
        return s._spawn(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups"]
                        + [public.get(c, c) for c in cmd], env, log)

    def _reload_umask_077(self, s):
        old = os.umask(0o077)
        try:
            return s.ctl("reload")
        finally:
            os.umask(old)

    @staticmethod
    def _uid_of(pid):
        with open("/proc/%d/status" % pid) as f:
            return int(re.search(r"(?m)^Uid:\s+(\d+)", f.read()).group(1))

    def test_umask_077_other_users_follow(self):
        me = self._user()                   # tlspolicyd's own user
        mail = pwd.getpwnam("mail")         # a mail daemon's user tlspolicyd takes hand-offs from
        with harness.Setup({"sub": ("smtp", "starttls")}, plain_ports={"extra": "smtp"}, server=False,
                           policy={"global": {"user": me.pw_name}}) as s:
            s.stop_daemon()                 # the harness's, as root: ours runs as `me` throughout
            os.chmod(s.tmp, 0o755)
            keys = os.path.join(s.tmp, "keys")
            os.mkdir(keys, 0o700)
            for src, mode in ((s.cert, 0o644), (s.key, 0o600)):
                dst = os.path.join(keys, os.path.basename(src))
                shutil.copy(src, dst)
                os.chown(dst, me.pw_uid, me.pw_gid)
                os.chmod(dst, mode)
            os.chown(keys, me.pw_uid, me.pw_gid)
            s.policy_sections["global"].update(certificate=os.path.join(keys, "mail.pem"),
                                               private_key=os.path.join(keys, "mail.key"))
            s.write_policy()
            srv = os.path.join(s.tmp, "srv")
            os.mkdir(srv)
            open(s.record_path, "w").close()
            for path in (srv, s.maildir, s.record_path):
                os.chown(path, mail.pw_uid, mail.pw_gid)

            # published under umask 077 while tlspolicyd is stopped; it starts from it
            rc, out, err = self._reload_umask_077(s)
            self.assertEqual(rc, 0, err)
            self.assertTrue(out.startswith("generation 1 (tlspolicyd is not running"), out)
            s.daemon = self._spawn_as(s, me, [harness.DAEMON, "-f"], s.env())
            s.wait_log(r"action=start socket=\S+ ports=1 file=%s/policy\.conf generation=1$" % re.escape(s.rundir))
            self.assertEqual(self._uid_of(s.daemon.pid), me.pw_uid)

            ready = os.path.join(srv, "ready")
            cmd = s._server_cmd([])
            del cmd[cmd.index("--tls-cert"):cmd.index("--tls-key") + 2]     # plaintext ports only
            cmd += ["--ready-file", ready]
            for name in ("sub", "extra"):
                cmd += ["--smtp", "%d/%s" % (s.ports[name], s.server_modes[name])]
            server = self._spawn_as(s, mail, cmd, harness.preload_env(s.env()))
            deadline = time.monotonic() + harness.START_TIMEOUT
            while not os.path.exists(ready):
                self.assertIsNone(server.poll(), s.server_log)
                self.assertLess(time.monotonic(), deadline, s.server_log)
                time.sleep(0.05)
            self.assertEqual(self._uid_of(server.pid), mail.pw_uid)
            r = s.raw("extra")
            r.read_until(b"220 ")           # not managed yet: plaintext, straight from the server
            r.close()

            # a new generation, published under umask 077: both follow it
            s.policy_sections["port %d" % s.ports["extra"]] = {"protocol": "smtp", "tls": "implicit"}
            s.write_policy()
            rc, out, err = self._reload_umask_077(s)
            self.assertEqual((rc, out), (0, "generation 2\n"), err)
            self.assertEqual(os.stat(s.rundir).st_mode & 0o7777, 0o755)
            for name in ("policy.conf", "generation", "ports"):
                self.assertEqual(os.stat(os.path.join(s.rundir, name)).st_mode & 0o7777, 0o644, name)
            c = s.smtp_ssl("extra")         # the shim hands it over, tlspolicyd does TLS for the new rule
            c.ehlo("client.test")
            c.quit()
            relay = r"port=%d client=\S+ mode=implicit action=relay tls_by=module gen=2$" % s.ports["extra"]
            s.wait_log(relay)

            # a published generation tlspolicyd cannot read is never swapped for /etc's files
            os.chmod(os.path.join(s.rundir, "generation"), 0o600)
            s.daemon.send_signal(signal.SIGHUP)
            s.wait_log(r"action=reload-failed reason=published-unreadable error=\"published generation "
                       r"%s/generation unreadable: Permission denied\" generation=2 "
                       r"note=\"the running policy stays\"" % re.escape(s.rundir))
            c = s.smtp_ssl("extra")
            c.quit()
            deadline = time.monotonic() + 5
            while len(re.findall(relay, s.log, re.M)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(len(re.findall(relay, s.log, re.M)), 2, s.log)
            self.assertNotRegex(s.log, r"action=reload file=\S+ generation=0")
            # and at start: it refuses, saying why
            harness.stop_process(s.daemon)
            s.daemon = self._spawn_as(s, me, [harness.DAEMON, "-f"], s.env())
            self.assertNotEqual(s.daemon.wait(harness.START_TIMEOUT), 0)
            self.assertRegex(s.log, r"action=start-failed reason=published-unreadable error=\"published "
                                    r"generation %s/generation unreadable: Permission denied\"" % re.escape(s.rundir))

    def test_record_that_cannot_be_trusted(self):
        # tlspolicyd's record says which name reload may talk to: a record
        # reload cannot trust stops it, saying why, and nothing is published
        rows = [  # (what is done to the record, what reload says)
            ("garbled", r"tlspolicyd: line 2 is not \"pid N\", \"relay_socket @NAME\" or \"user NAME\""),
            ("incomplete", r"tlspolicyd: it lacks a pid, relay_socket or user line"),
            ("writable by others", r"tlspolicyd is not a regular file of root's that only root may write"),
            ("a symlink", r"tlspolicyd: Too many levels of symbolic links"),
            ("too long", r"tlspolicyd: too long"),
        ]
        with harness.Setup({"sub": ("smtp", "starttls")}, publish=True) as s:
            record = os.path.join(s.rundir, "tlspolicyd")
            with open(record) as f:
                good = f.read()
            self.assertEqual(good.splitlines()[1:], ["pid %d" % s.daemon.pid, "relay_socket %s" % s.relay_socket,
                                                     "user tlspolicy"])
            self.assertEqual(os.stat(record).st_mode & 0o7777, 0o644)
            before = published(s)
            for what, says in rows:
                with self.subTest(what):
                    os.unlink(record)
                    if what == "a symlink":
                        other = os.path.join(s.tmp, "elsewhere")
                        with open(other, "w") as f:
                            f.write(good)
                        os.symlink(other, record)
                    else:
                        text = {"garbled": good.replace("pid ", "pid: "),
                                "incomplete": "\n".join(good.splitlines()[:2]) + "\n",
                                "too long": good + "#" * 2000 + "\n"}.get(what, good)
                        with open(record, "w") as f:
                            f.write(text)
                        os.chmod(record, 0o666 if what == "writable by others" else 0o644)
                    rc, out, err = s.ctl("reload")
                    self.assertEqual((rc, out), (1, ""), err)
                    self.assertRegex(err, r"^tlspolicyctl: reload: cannot tell which relay socket tlspolicyd serves: "
                                          r"%s/%s\n$" % (re.escape(s.rundir), says))
                    self.assertEqual(published(s), before)
            os.unlink(record)
            with open(record, "w") as f:
                f.write(good)
            self.assertEqual(s.reload(), "generation 2\n")

    def test_tlspolicyd_under_umask_077_makes_a_readable_run_directory(self):
        # systemd's UMask=0077 applies to ExecStart= too: the run directory
        # tlspolicyd makes must still be readable by the shims
        with harness.Setup({"sub": ("smtp", "starttls")}) as s:
            s.stop_daemon()
            shutil.rmtree(s.rundir)
            old = os.umask(0o077)
            try:
                s.start_daemon()
            finally:
                os.umask(old)
            self.assertEqual(os.stat(s.rundir).st_mode & 0o7777, 0o755)
            self.assertEqual(os.stat(os.path.join(s.rundir, "tlspolicyd")).st_mode & 0o7777, 0o644)
