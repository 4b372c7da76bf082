"""test_privileges.py - tlspolicyd never handles a connection as root, and a
key only root can read still works, at start and at every reload

Issue 9, item 14.  Each test makes its own system user (and a supplementary
group, standing in for Debian's ssl-cert) and removes it afterwards, so the
result does not depend on a "tlspolicy" user on the machine.  The keys are
0600 root:root in a 0700 root directory: tlspolicyd's user cannot open them
(checked), only its key helper can.

Asserted: without its user and without --insecure-run-as-root tlspolicyd
refuses to start and says why; with a user it runs as that user for good
(/proc/PID/status: every Uid and Gid field, the supplementary group kept,
no capabilities); it serves TLS with the root-only key (a whole SMTP
session, the mail delivered); and after a reload that changes the
certificate -- by SIGHUP and by tlspolicyctl reload's control message --
the client sees the new certificate.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import ssl
import tempfile
import time

import harness

_serial = iter(range(1000))


def make_user(test, groups=()):
    """a system user of its own (and its cleanup): (name, uid, gid, {group: gid})"""
    name = "tpt%d-%d" % (os.getpid() % 100000, next(_serial))
    made = {}
    for g in groups:
        gname = "%s-%s" % (name, g)
        rc, out, err = harness.run(["groupadd", "--system", gname])
        test.assertEqual(rc, 0, err)
        test.addCleanup(harness.run, ["groupdel", gname])
        made[g] = gname
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
    if made:
        cmd += ["--groups", ",".join(made.values())]
    rc, out, err = harness.run(cmd + [name])
    test.assertEqual(rc, 0, err)
    test.addCleanup(harness.run, ["userdel", name])
    pw = pwd.getpwnam(name)
    return name, pw.pw_uid, pw.pw_gid, {g: grp.getgrnam(n).gr_gid for g, n in made.items()}


def root_only_pair(test, name):
    """a certificate and key in a fresh 0700 root directory, the key 0600 root:root"""
    d = tempfile.mkdtemp(prefix="tlspolicy-keys-")
    test.addCleanup(shutil.rmtree, d, True)
    cert, key = harness.make_cert(d, name)
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    os.chmod(d, 0o700)
    return cert, key


def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()
    return fields


def peer_certificate(port, cafile):
    """the DER certificate an implicit-TLS client sees on port, verified for localhost"""
    ctx = ssl.create_default_context(cafile=cafile)
    with harness._connect("127.0.0.1", port, 10, None) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as t:
            return t.getpeercert(binary_form=True)


def der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class PrivilegesTest(harness.TestCase):
    timeout = 120

    def setUp(self):
        harness.require_module()
        if os.geteuid() != 0:
            harness.skip_or_fail("needs root: makes users and root-only keys")

    def assert_cannot_read(self, uid, gid, path):
        rc, out, err = harness.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                                    "cat", path])
        self.assertNotEqual(rc, 0, "uid %d can read %s: the test would prove nothing" % (uid, path))

    def test_refuses_to_start_without_its_user(self):
        tmp = tempfile.mkdtemp(prefix="tlspolicy-priv-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = harness.test_cert()
        conf = os.path.join(tmp, "tlspolicy.conf")
        missing = "tpnobody%d" % os.getpid()
        harness.write_policy(conf, {
            "global": {"certificate": cert, "private_key": key, "user": missing,
                       "relay_socket": "@tlspolicy-priv-%d" % os.getpid()},
            "port %d" % harness.free_port(): {"protocol": "smtp", "tls": "implicit"}})
        env = dict(os.environ, TLSPOLICY_RUNDIR=os.path.join(tmp, "run"))
        rc, out, err = harness.run([harness.DAEMON, "-f", "-c", conf], env=env)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("action=start-failed reason=no-user user=%s" % missing, err)
        self.assertIn("--insecure-run-as-root", err, "the message names the way out")
        self.assertNotIn("action=start socket=", err, "it never served")

    def test_runs_as_its_user_with_a_root_only_key(self):
        name, uid, gid, groups = make_user(self, groups=("keys",))
        cert, key = root_only_pair(self, "mail")
        self.assert_cannot_read(uid, gid, key)
        with harness.Setup({"smtps": ("smtp", "implicit")}, run_as=name,
                           policy={"global": {"certificate": cert, "private_key": key}}) as s:
            st = proc_status(s.daemon.pid)
            self.assertEqual(st["Uid"], [str(uid)] * 4, "real, effective, saved and fs uid")
            self.assertEqual(st["Gid"], [str(gid)] * 4)
            self.assertIn(str(groups["keys"]), st["Groups"], "initgroups kept the supplementary group")
            self.assertEqual(int(st["CapEff"][0], 16), 0)
            self.assertEqual(int(st["CapPrm"][0], 16), 0)
            s.wait_log(r"action=start user=%s uid=%d gid=%d" % (name, uid, gid))

            self.assertEqual(peer_certificate(s.ports["smtps"], cert), der(cert))
            c = s._keep(harness.SMTP_SSL(s.ports["smtps"], "127.0.0.1",
                                         ssl.create_default_context(cafile=cert)))
            c.login(s.user, s.password)
            c.sendmail("a@x.test", ["b@y.test"], "Subject: privileges\r\n\r\nroot-only key\r\n")
            c.quit()
            s.wait_for("message")
            self.assertTrue(any(b"root-only key" in m for m in s.messages()))

    def test_reload_changes_the_certificate(self):
        name, uid, gid, _ = make_user(self)
        first = root_only_pair(self, "first")
        second = root_only_pair(self, "second")
        third = root_only_pair(self, "third")
        with harness.Setup({"smtps": ("smtp", "implicit")}, run_as=name,
                           policy={"global": {"certificate": first[0], "private_key": first[1]}}) as s:
            port = s.ports["smtps"]
            self.assertEqual(peer_certificate(port, first[0]), der(first[0]))

            # SIGHUP: the files in place
            s.policy_sections["global"].update(certificate=second[0], private_key=second[1])
            s.write_policy()
            s.daemon.send_signal(signal.SIGHUP)
            s.wait_log(r"action=reload file=%s generation=0" % s.conf)
            self.assertNotIn("reload-failed", s.log)
            self.assertEqual(peer_certificate(port, second[0]), der(second[0]))

            # tlspolicyctl reload: a published generation, loaded over the control message
            s.policy_sections["global"].update(certificate=third[0], private_key=third[1])
            s.write_policy()
            self.assertEqual(s.reload(), "generation 1\n")
            s.wait_log(r"action=reload file=\S+ generation=1")
            self.assertEqual(peer_certificate(port, third[0]), der(third[0]))
            self.assertNotIn("reload-failed", s.log)
            self.assertEqual(proc_status(s.daemon.pid)["Uid"], [str(uid)] * 4)


def memory_holds(pid, needles):
    """which of needles (bytes) are anywhere in the writable memory of pid
    (heap, stacks, anonymous maps), read through /proc/PID/mem as a core
    dump would show it"""
    found = set()
    step, overlap = 16 << 20, max(len(n) for n in needles)
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "w" not in fields[1] or (len(fields) > 5 and fields[5].startswith("[v")):
                continue
            if hi - lo > 1 << 32:
                # AddressSanitizer's shadow (a build with --enable-sanitizers): terabytes
                # reserved, one metadata byte per 8 of memory, never the process's data
                continue
            for at in range(lo, hi, step):
                try:
                    mem.seek(at)
                    chunk = mem.read(min(step + overlap, hi - at))
                except OSError:
                    break
                found.update(n for n in needles if n in chunk)
    return found


class WipeTest(harness.TestCase):
    """issue 9, item 18: what passed through the relay in plaintext after TLS
    (an AUTH PLAIN line, a message) is not left in tlspolicyd's memory once
    the session has ended -- its buffers, the filter's output and wolfSSL's
    record buffers are wiped before they are freed or reused"""

    timeout = 60

    def setUp(self):
        harness.require_module()

    def test_session_leaves_no_plaintext(self):
        import uuid
        from modcommon import plain
        password = "pw-" + uuid.uuid4().hex
        marker = "body-" + uuid.uuid4().hex
        with harness.Setup({"sub": ("smtp", "starttls")}, password=password) as s:
            auth = plain(s.user, password)
            for _ in range(3):
                r = s.raw("sub")
                for line, reply in ((None, b"220 "), ("EHLO client.test", b"250 "),
                                    ("STARTTLS", b"220 "), ("tls", None),
                                    ("EHLO client.test", b"250 "), ("AUTH PLAIN " + auth, b"235 "),
                                    ("MAIL FROM:<a@client.test>", b"250 "),
                                    ("RCPT TO:<b@mail.test>", b"250 "), ("DATA", b"354 "),
                                    ("Subject: wipe\r\n\r\n%s\r\n." % marker, b"250 "),
                                    ("QUIT", b"221 ")):
                    if line == "tls":
                        r.starttls()
                        continue
                    if line is not None:
                        r.sendline(line)
                    r.read_until(re.compile(re.escape(reply) + rb".*\r\n"))
                r.close()
            deadline = time.monotonic() + 10
            while s.log.count("action=end") < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(s.log.count("action=end"), 3, s.log[-2000:])
            needles = {auth.encode(), marker.encode(), password.encode()}
            self.assertEqual(memory_holds(s.daemon.pid, needles), set(),
                             "plaintext of ended sessions is still in tlspolicyd's memory")


class ContextErrorTest(harness.TestCase):
    """issue 9, item 16: where the installed wolfSSL cannot build a rule's
    TLS context, tlspolicyd's log names the failing call, its argument and
    the policy key -- at start (it does not start) and at reload (the
    running generation stays and goes on serving)"""

    timeout = 60
    FAILED = (r"action=load-failed reason=tls-context port=%d section=\"port %d\" key=min_protocol "
              r"error=\"wolfSSL_CTX_SetMinVersion\(TLSv1\.0\) failed: [^\"]+\"")

    def setUp(self):
        harness.require_module()

    def test_at_start(self):
        tmp = tempfile.mkdtemp(prefix="tlspolicy-ctx-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = harness.test_cert()
        conf, port = os.path.join(tmp, "tlspolicy.conf"), harness.free_port()
        harness.write_policy(conf, {
            "global": {"certificate": cert, "private_key": key,
                       "relay_socket": "@tlspolicy-ctx-%d" % os.getpid()},
            "port %d" % port: {"protocol": "smtp", "tls": "implicit", "min_protocol": "TLSv1.0"}})
        rc, out, err = harness.run([harness.DAEMON, "-f", "--insecure-run-as-root", "-c", conf],
                                   env=dict(os.environ, TLSPOLICY_RUNDIR=os.path.join(tmp, "run")))
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, self.FAILED % (port, port))
        self.assertIn("action=start-failed reason=policy-invalid", err)

    def test_at_reload(self):
        with harness.Setup({"smtps": ("smtp", "implicit")}) as s:
            port = s.ports["smtps"]
            s.policy_sections["port %d" % port]["min_protocol"] = "TLSv1.0"
            s.write_policy()
            s.daemon.send_signal(signal.SIGHUP)
            s.wait_log(self.FAILED % (port, port))
            s.wait_log(r"action=reload-failed .*the running policy stays")
            self.assertEqual(peer_certificate(port, s.cert), der(s.cert))
