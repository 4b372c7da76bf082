"""test_trust.py - who is on the other end: local attacks on the hand-off, for real

Abstract UNIX names carry no permissions: any local user can bind one,
connect to one, or read them all in /proc/net/unix.  Each test below is
one such attack by `nobody` (setpriv), against tlspolicyd, the shim in the
test server, and the real Postfix (issue 9, items 1, 3, 4 and 13):

- a squatter bound to relay_socket while tlspolicyd is stopped: the shim
  refuses the connection and logs the squatter's pid and uid; the squatter
  gets no byte of the client and no descriptor; the daemon sees nothing.
  Against the test server and against Postfix.
- a squatter that wins relay_socket during a restart: the new tlspolicyd
  exits non-zero naming the holder's pid, uid and command; shims refuse.
- a spinner that reads /proc/net/unix and connects to every relay-name
  listener it sees, with AUTH ready: the shim keeps only tlspolicyd's own
  connection; the daemon never hears from the spinner.
- a forged relayed socket (a relay name with made-up addresses, connected
  to by the forger itself, or connected to tlspolicyd's relay socket or a
  root service's socket so that its SO_PEERCRED is root's) passed by
  SCM_RIGHTS into a shimmed process: getpeername() and getsockname() give
  the real UNIX answer.
- log flooding: `nobody` hammering relay_socket, and a squatter refusing
  many clients, leave a bounded number of log lines that say how many.
- the environment of a secure-execution process (a file-capability
  program run by nobody: AT_SECURE) is its unprivileged caller's: the
  shim ignores TLSPOLICY_CONF, TLSPOLICY_RUNDIR and TLSPOLICY_SYSLOG_SOCKET
  there (issue 9.18).
"""

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import daemons
import harness
from modcommon import SMTP_GREETING, SMTP_REPLY, plain

NOBODY_UID = 65534
NOBODY = ["setpriv", "--reuid=%d" % NOBODY_UID, "--regid=%d" % NOBODY_UID, "--clear-groups"]

# --- the attackers' programs, run as nobody ------------------------------------

# binds the name (retrying, in race mode, until it wins it) and accepts
# every connection; reads what comes, keeps any descriptor passed to it and
# reads from those too; answers like a tlspolicyd that took the connection
SQUATTER = r'''
import array, json, os, select, signal, socket, struct, sys, time
name, out, race = sys.argv[1], sys.argv[2], sys.argv[3] == "race"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
while True:
    try:
        s.bind("\0" + name[1:])
        break
    except OSError:
        if not race:
            raise
        time.sleep(0.001)
s.listen(64)
seen = {"pid": os.getpid(), "connections": 0, "bytes": 0, "fds": 0, "client_bytes": 0, "client": ""}
def save():
    with open(out + ".new", "w") as f:
        json.dump(seen, f)
    os.rename(out + ".new", out)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
save()
conns, taken = [], []
while not stop:
    try:
        ready = select.select([s] + conns + taken, [], [], 0.05)[0]
    except InterruptedError:
        continue
    for x in ready:
        if x is s:
            conns.append(s.accept()[0])
            seen["connections"] += 1
        elif x in conns:
            try:
                data, anc, _, _ = x.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
            except OSError:
                data, anc = b"", []
            if not data and not anc:
                conns.remove(x)
                x.close()
                continue
            seen["bytes"] += len(data)
            for level, kind, blob in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(blob[:len(blob) - len(blob) % fds.itemsize])
                    seen["fds"] += len(fds)
                    taken.extend(socket.socket(fileno=fd) for fd in fds)
            try:
                x.send(struct.pack("<Ii", 0x74706831, 0))     # "taken"
            except OSError:
                pass
        else:
            try:
                data = x.recv(65536)
            except OSError:
                data = b""
            if not data:
                taken.remove(x)
                x.close()
                continue
            seen["client_bytes"] += len(data)
            seen["client"] = (seen["client"] + data.decode("latin-1"))[-400:]
            if b"AUTH" in data:
                x.send(b"235 2.7.0 Authentication successful\r\n")
    save()
save()
'''

# reads /proc/net/unix as fast as it can and connects to every listener
# whose name looks like a relay name, then sends an SMTP session with AUTH
SPINNER = r'''
import itertools, json, os, select, signal, socket, sys, time
out, auth = sys.argv[1], sys.argv[2].encode()
seen = {"pid": os.getpid(), "names": 0, "connected": 0, "reply_bytes": 0, "replies": ""}
def save():
    with open(out + ".new", "w") as f:
        json.dump(seen, f)
    os.rename(out + ".new", out)
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
save()
known, conns = set(), []
def candidates(raw):
    # /proc/net/unix shows a NUL of an abstract name as "@": try both readings
    ats = [i for i, b in enumerate(raw) if b == 0x40]
    first = bytes(0 if b == 0x40 else b for b in raw)
    yield first
    if len(ats) <= 6:
        for bits in itertools.product((0, 0x40), repeat=len(ats)):
            b = bytearray(raw)
            for i, v in zip(ats, bits):
                b[i] = v
            if bytes(b) != first:
                yield bytes(b)
while not stop:
    with open("/proc/net/unix", "rb") as f:
        text = f.read()
    at = 0
    while True:
        i = text.find(b"@tlspolicy", at)
        if i < 0:
            break
        at = i + 1
        version = text[i + 10:i + 11]
        if version not in (b"\x01", b"\x02"):
            continue
        raw = text[i + 1:i + 1 + (63 if version == b"\x02" else 55)]
        if raw in known:
            continue
        known.add(raw)
        seen["names"] += 1
        for name in candidates(raw):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                c.connect(b"\0" + name)
            except OSError:
                c.close()
                continue
            seen["connected"] += 1
            try:
                c.sendall(b"EHLO spinner.test\r\nAUTH PLAIN " + auth + b"\r\n")
            except OSError:
                pass
            c.setblocking(False)
            conns.append(c)
            save()
            break
    for c in list(conns):
        try:
            data = c.recv(4096)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        if not data:
            conns.remove(c)
            c.close()
            continue
        seen["reply_bytes"] += len(data)
        seen["replies"] = (seen["replies"] + data.decode("latin-1"))[-400:]
        save()
save()
'''

# a relay name with made-up addresses (10.9.8.7:1234 -> 10.1.1.1:25),
# bound and connected to by the forger itself, in both layouts the shim
# has known; and bound by the forger but connected to a listener of root
# or tlspolicyd's user, whose SO_PEERCRED it then carries: tlspolicyd's own
# relay socket (argv[2]) and any root service's stream socket (argv[3],
# as journald's /run/systemd/journal/stdout is).  All passed by
# SCM_RIGHTS to the process listening on argv[1].
FORGER = r'''
import array, os, socket, struct, sys
def put(a, port):
    return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(a) + struct.pack("!H", port)
addrs = put("10.9.8.7", 1234) + put("10.1.1.1", 25)
def forged():
    return b"\0tlspolicy\x02" + bytes([socket.AF_INET]) + addrs + os.urandom(16)
names = [forged(), b"\0tlspolicy\x01" + bytes([socket.AF_INET]) + addrs + struct.pack("=II", os.getpid(), 1)]
keep, passed = [], []
for name in names:
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(name)
    l.listen(1)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(name)
    a = l.accept()[0]
    keep += [l, c, a]
    passed.append(a)
for target in ("\0" + sys.argv[2][1:], sys.argv[3]):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.bind(forged())
    c.connect(target)
    keep.append(c)
    passed.append(c)
v = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
v.connect(sys.argv[1])
v.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [p.fileno() for p in passed]))])
print(v.recv(16).decode(), flush=True)
'''

# the shimmed process the forged sockets are passed to: what getpeername
# and getsockname say of each descriptor it receives
VICTIM = r'''
import array, json, os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(1)
print("ready", flush=True)
c = s.accept()[0]
_, anc, _, _ = c.recvmsg(16, socket.CMSG_SPACE(8 * 4))
got = []
for level, kind, blob in anc:
    fds = array.array("i")
    fds.frombytes(blob[:len(blob) - len(blob) % fds.itemsize])
    for fd in fds:
        x = socket.socket(fileno=fd)
        got.append({"family": int(x.family), "peer": repr(x.getpeername()), "sock": repr(x.getsockname())})
print(json.dumps(got), flush=True)
c.send(b"done")
'''

# connects to the relay socket and hangs up, as fast as it can, for argv[2] s
HAMMER = r'''
import json, socket, sys, time
name, seconds, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect("\0" + name[1:])
        n += 1
    except OSError:
        pass
    c.close()
with open(out, "w") as f:
    json.dump({"connections": n}, f)
'''


# dlopen()s the shim, as a preload would load it: in a program with file
# capabilities, run by nobody, that is a secure-execution process
SECURE_PROGRAM = r'''
#include <dlfcn.h>
#include <stdio.h>
#include <sys/auxv.h>
int main(int argc, char **argv)
{
	printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
	fflush(stdout);
	if (argc < 2 || dlopen(argv[1], RTLD_NOW) == NULL) {
		printf("dlopen: %s\n", dlerror());
		return 2;
	}
	return 0;
}
'''


class Attacker:
    """one of the programs above, run as nobody in a directory of its own"""

    def __init__(self, test, program, *args):
        self.dir = tempfile.mkdtemp(prefix="tlspolicy-attacker-")
        os.chmod(self.dir, 0o777)
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.out = os.path.join(self.dir, "report.json")
        self.proc = subprocess.Popen(NOBODY + [sys.executable, "-c", program,
                                               *[a.replace("{out}", self.out) for a in args]],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.dir,
                                     start_new_session=True)
        test.addCleanup(self.stop)

    def wait_report(self, what="its report", timeout=5, until=lambda r: True):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.out) as f:
                    r = json.load(f)
                if until(r):
                    return r
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%s: no %s (exit %s): %s" % (self.proc.args[:6], what, self.proc.poll(),
                                                                  self.proc.stderr.read1(4000) if self.proc.poll()
                                                                  is not None else ""))
            time.sleep(0.005)

    def stop(self):
        """SIGTERM, and its last report"""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.report()

    def report(self):
        try:
            with open(self.out) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}


CLIENT_AUTH = "EHLO client.test\r\nAUTH PLAIN %s\r\n" % plain("test", "secret")


class TrustCase(harness.TestCase):
    timeout = 60

    def setUp(self):
        harness.require_module()
        harness.require("setpriv")

    def squat(self, race=False):
        sq = Attacker(self, SQUATTER, self.s.relay_socket, "{out}", "race" if race else "now")
        return sq

    def assertSquatterGotNothing(self, report):
        self.assertEqual(report.get("fds"), 0, "no descriptor reached the squatter: %r" % report)
        self.assertEqual(report.get("bytes"), 0, "the shim sent it nothing: %r" % report)
        self.assertEqual(report.get("client_bytes"), 0, "no byte of the client: %r" % report)

    def assertRefusedImpostor(self, port, pid):
        return self.s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=close reason=impostor .*socket=%s "
                                    r"pid=%d uid=%d$" % (port, re.escape(self.s.relay_socket), pid, NOBODY_UID))


class SquatterTest(TrustCase):
    """relay_socket taken by nobody while tlspolicyd is stopped, or during a restart"""

    def setUp(self):
        super().setUp()
        self.s = harness.Setup({"submission": ("smtp", "starttls")}, shim_log=True)
        self.addCleanup(self.s.close)

    def client_is_refused(self):
        """a client that sends AUTH at once: closed, unserved"""
        r = self.s.raw("submission")
        r.send(CLIENT_AUTH)
        self.assertEqual(r.read_all(), b"", "nothing, and no 235 from the squatter")
        return r

    def test_squatter_while_tlspolicyd_is_stopped(self):
        s = self.s
        s.stop_daemon()
        sq = self.squat()
        pid = sq.wait_report("listening")["pid"]
        self.client_is_refused()
        self.assertRefusedImpostor(s.ports["submission"], pid)
        e = s.wait_for("accept_error", port=s.ports["submission"])
        self.assertEqual(e["errno"], errno.ECONNABORTED, "daemons retry accept() on it")
        report = sq.stop()
        self.assertGreaterEqual(report["connections"], 1, "the shim did look at who listens")
        self.assertSquatterGotNothing(report)
        self.assertEqual(s.events("connect"), [], "the daemon saw nothing")
        self.assertEqual(s.events("line"), [])

        s.start_daemon()                # the real one back: served again
        c = s.smtp("submission")
        c.starttls()
        self.assertEqual(c.login("test", "secret")[0], 235)
        c.quit()

    def test_squatter_racing_a_restart(self):
        s = self.s
        args = list(s.daemon.args)      # the harness's own command line for tlspolicyd
        sq = self.squat(race=True)
        s.stop_daemon()
        pid = sq.wait_report("the name won")["pid"]
        rc, out, err = harness.run(args, env=s.env(), timeout=20)
        self.assertNotEqual(rc, 0, "tlspolicyd must not run without its socket")
        self.assertRegex(out + err, r"action=start-failed reason=relay-socket-taken socket=%s holder_pid=%d "
                                    r"holder_uid=%d holder_command=\"python3\"" % (re.escape(s.relay_socket), pid,
                                                                                  NOBODY_UID))
        self.client_is_refused()
        self.assertRefusedImpostor(s.ports["submission"], pid)
        self.assertSquatterGotNothing(sq.stop())
        self.assertEqual(s.events("connect"), [], "the daemon saw nothing")

    def test_refusals_are_logged_at_a_bounded_rate(self):
        """70 clients over 7 s refused for one squatter: one full line, then
        a count, not 70 lines"""
        s = self.s
        s.stop_daemon()
        sq = self.squat()
        pid = sq.wait_report("listening")["pid"]
        for _ in range(70):
            r = s.raw("submission")
            self.assertEqual(r.read_all(), b"")
            time.sleep(0.1)
        self.assertSquatterGotNothing(sq.stop())
        lines = [l for l in s.shim_log_lines() if "reason=impostor" in l]
        full = [l for l in lines if re.search(r"pid=%d uid=%d$" % (pid, NOBODY_UID), l)]
        counts = [int(m.group(1)) for m in (re.search(r" count=(\d+) last_pid=%d last_uid=%d " % (pid, NOBODY_UID), l)
                                           for l in lines) if m]
        self.assertEqual(len(full), 1, "the first refusal in full: %r" % lines)
        self.assertLessEqual(len(lines), 3, "a bounded number of lines: %r" % lines)
        self.assertTrue(counts and counts[0] >= 40, "a summary says how many: %r" % lines)


class PostfixSquatterTest(TrustCase):
    """the squatter against the real Postfix: smtpd (chrooted, as postfix) refuses"""

    timeout = 90

    def setUp(self):
        super().setUp()
        daemons.require_daemons()
        self.s = harness.Setup({"mx": ("smtp", "opportunistic")}, server=False, shim_log=True)
        self.addCleanup(self.s.close)
        self.pf = daemons.Postfix(self.s, smtp="mx")
        self.addCleanup(self.pf.close)

    def test_squatter_while_tlspolicyd_is_stopped(self):
        s = self.s
        s.stop_daemon()
        sq = self.squat()
        pid = sq.wait_report("listening")["pid"]
        r = s.raw("mx", source="127.0.0.2")
        r.send("EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n")
        self.assertEqual(r.read_all(), b"", "no greeting, from Postfix or the squatter")
        self.assertRefusedImpostor(s.ports["mx"], pid)
        self.assertSquatterGotNothing(sq.stop())
        self.assertNotRegex(self.pf.log, r"connect from \S+\[127\.0\.0\.2\]:%d\b" % r.local[1],
                            "Postfix never saw the client")
        s.start_daemon()
        r = s.raw("mx", source="127.0.0.2")
        self.assertRegex(r.read_until(SMTP_REPLY), rb"^220 mail\.test ESMTP")
        self.pf.wait_log(r"connect from \S+\[127\.0\.0\.2\]:%d$" % r.local[1])


class SpinnerTest(TrustCase):
    """nobody connects to every relay name it sees in /proc/net/unix"""

    def setUp(self):
        super().setUp()
        self.s = harness.Setup({"submission": ("smtp", "starttls")}, shim_log=True)
        self.addCleanup(self.s.close)

    def test_spinner_never_reaches_the_daemon(self):
        """tlspolicyd is held (SIGSTOP) in the middle of a hand-off, so the
        relay name stays up long enough for the spinner to connect before
        tlspolicyd does; the shim keeps tlspolicyd's connection only"""
        s = self.s
        sp = Attacker(self, SPINNER, "{out}", plain("test", "secret"))
        sp.wait_report("running")
        # the name lives less than the shim's 1 s hand-off: on a loaded machine
        # the spinner may miss one, so it gets a few clients to try on
        for attempt in range(1, 6):
            os.kill(s.daemon.pid, signal.SIGSTOP)
            try:
                r = s.raw("submission")
                got = sp.wait_report("a connection to the relay name", timeout=0.8,
                                     until=lambda rep: rep["connected"] >= 1)
                break
            except AssertionError:
                if attempt == 5:
                    raise
                r.close()
            finally:
                os.kill(s.daemon.pid, signal.SIGCONT)
        try:
            greeting = r.read_line()
        except AssertionError as e:
            greeting = str(e)
        time.sleep(0.3)                 # whatever the spinner's session would do, it has done
        report = sp.stop()
        self.assertEqual(s.events("auth"), [], "no AUTH reached the daemon")
        self.assertNotIn("spinner.test", " ".join(s.lines()), "the daemon never heard from the spinner")
        self.assertEqual(report["reply_bytes"], 0, "the daemon never talked to the spinner: %r" % report)
        s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=drop-intruder reason=not-tlspolicyd .* pid=%d uid=%d$"
                        % (s.ports["submission"], got["pid"], NOBODY_UID))
        self.assertEqual(greeting, SMTP_GREETING, "the client is served, through tlspolicyd")
        r.sendline("EHLO client.test")
        self.assertNotIn(b"AUTH", r.read_until(SMTP_REPLY), "the filter is between the client and the daemon")
        r.sendline("QUIT")
        r.read_line()
        self.assertLessEqual(len(s.events("connect")), attempt,
                             "no connection reached the daemon but the clients'")


class ForgedSocketTest(TrustCase):
    """a socket bound to a forged relay name, passed by SCM_RIGHTS"""

    def setUp(self):
        super().setUp()
        self.s = harness.Setup({"submission": ("smtp", "starttls")}, server=False)
        self.addCleanup(self.s.close)

    def test_forged_relayed_socket_is_not_believed(self):
        d = tempfile.mkdtemp(prefix="tlspolicy-victim-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        path = os.path.join(d, "victim.sock")
        victim = subprocess.Popen([sys.executable, "-c", VICTIM, path], env=harness.preload_env(self.s.env()),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(harness.stop_process, victim)
        if victim.stdout.readline().strip() != b"ready":
            self.fail("the victim did not start: %r" % victim.communicate(timeout=5)[1])
        service = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)	# a root service's socket
        self.addCleanup(service.close)
        service.bind(os.path.join(d, "service.sock"))
        os.chmod(os.path.join(d, "service.sock"), 0o777)
        service.listen(4)
        rc, out, err = harness.run(NOBODY + [sys.executable, "-c", FORGER, path, self.s.relay_socket,
                                             os.path.join(d, "service.sock")])
        self.assertEqual(rc, 0, err)
        got = json.loads(victim.stdout.readline())
        self.assertEqual(len(got), 4, got)
        for g in got:
            with self.subTest(name=g["sock"][:30]):
                self.assertEqual(g["family"], socket.AF_UNIX, "getsockname says what the socket is: %r" % g)
                self.assertNotIn("10.9.8.7", g["peer"] + g["sock"])
                self.assertNotIn("10.1.1.1", g["peer"] + g["sock"])


class HammerTest(TrustCase):
    """nobody connects to relay_socket as fast as it can for 6 s"""

    timeout = 90

    def setUp(self):
        super().setUp()
        self.s = harness.Setup({"submission": ("smtp", "starttls")})
        self.addCleanup(self.s.close)

    def test_refusals_of_a_local_user_are_counted_not_logged_each(self):
        s = self.s
        before = s.log.count("\n")
        h = Attacker(self, HAMMER, s.relay_socket, "6", "{out}")
        time.sleep(1)
        c = s.smtp("submission")          # served meanwhile
        c.starttls()
        self.assertEqual(c.login("test", "secret")[0], 235)
        c.quit()
        n = h.wait_report("its count", timeout=20)["connections"]
        self.assertGreater(n, 100, "the hammer did hammer")
        rx = re.compile(r"^tlspolicy: action=handoff-refused reason=uid-not-allowed (?:count=(\d+) )?"
                        r"(?:last_)?uid=%d (?:last_)?pid=\d+" % NOBODY_UID, re.M)
        deadline = time.monotonic() + 15
        while True:
            lines = rx.findall(s.log)
            logged = sum(int(count) if count else 1 for count in lines)
            if logged >= n or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(logged, n, "every refusal is counted: %d lines for %d" % (len(lines), n))
        self.assertLessEqual(len(lines), 6, "one line, then a summary per 5 s")
        self.assertLessEqual(s.log.count("\n") - before, 12, "the log grew by a bounded number of lines")


class SecureExecutionTest(TrustCase):
    """the shim in a secure-execution process reads none of its variables"""

    def setUp(self):
        super().setUp()
        harness.require("cc", "setcap")
        self.dir = tempfile.mkdtemp(prefix="tlspolicy-secure-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)
        src = os.path.join(self.dir, "prog.c")
        with open(src, "w") as f:
            f.write(SECURE_PROGRAM)
        self.plain_prog = os.path.join(self.dir, "plain")
        self.secure_prog = os.path.join(self.dir, "secure")
        rc, out, err = harness.run(["cc", "-o", self.plain_prog, src, "-ldl"], timeout=60)
        self.assertEqual(rc, 0, err)
        shutil.copy(self.plain_prog, self.secure_prog)
        rc, out, err = harness.run(["setcap", "cap_net_bind_service=ep", self.secure_prog])
        self.assertEqual(rc, 0, err)
        self.log_path = os.path.join(self.dir, "syslog.sock")
        self.log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.log.bind(self.log_path)
        os.chmod(self.log_path, 0o666)
        self.log.settimeout(2)
        self.addCleanup(self.log.close)

    def run_as_nobody(self, prog):
        # an invalid policy, so that the shim has something to say, and where
        env = dict(os.environ, TLSPOLICY_CONF=os.path.join(self.dir, "no-such-policy.conf"),
                   TLSPOLICY_RUNDIR=self.dir, TLSPOLICY_SYSLOG_SOCKET=self.log_path)
        env.pop("LD_PRELOAD", None)
        rc, out, err = harness.run(NOBODY + [prog, harness.for_others(harness.SHIM)], env=env)
        self.assertEqual(rc, 0, out + err)
        return out

    def said(self):
        try:
            return self.log.recv(4096).decode(errors="replace")
        except socket.timeout:
            return None

    def test_variables_are_ignored_under_at_secure(self):
        self.assertIn("AT_SECURE=0", self.run_as_nobody(self.plain_prog))
        line = self.said()
        self.assertIsNotNone(line, "an ordinary process: the shim logs where it is told")
        self.assertIn("file=%s" % os.path.join(self.dir, "no-such-policy.conf"), line, "and reads that policy")

        self.assertIn("AT_SECURE=1", self.run_as_nobody(self.secure_prog))
        self.assertIsNone(self.said(), "under AT_SECURE the caller's TLSPOLICY_SYSLOG_SOCKET is not used")
