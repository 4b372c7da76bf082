"""squat.py - a local user squatting an abstract UNIX socket name

The attack on the relay socket: abstract names have no permissions, so any
local user (here `nobody`, via setpriv) can bind the name tlspolicyd uses
while it is not there, or a name a policy is about to switch to.  The
squatter accepts every connection and counts what it receives (bytes and
SCM_RIGHTS descriptors); the tests assert that it gets nothing.  With
stall=True it accepts nobody (backlog 0): whoever connects once it is full
waits, and tlspolicyctl must not wait with it.

    with Squatter(s, "@name") as sq:
        ...
    sq.report() -> {"connections": N, "bytes": N, "fds": N}
"""

import json
import os
import subprocess
import sys
import time

import harness

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

PROGRAM = r'''
import array, json, os, select, socket, sys, time
name, seconds, out, stall = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] == "stall"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + name[1:])
s.listen(0 if stall else 64)
print("listening", flush=True)
if stall:                       # accepts nobody: whoever connects waits on its backlog
    time.sleep(seconds)
    sys.exit(0)
seen = {"connections": 0, "bytes": 0, "fds": 0}
conns, end = [], time.monotonic() + seconds
def save():
    with open(out + ".new", "w") as f:
        json.dump(seen, f)
    os.rename(out + ".new", out)
save()
while time.monotonic() < end:
    r, _, _ = select.select([s] + conns, [], [], 0.05)
    for x in r:
        if x is s:
            c, _ = s.accept()
            conns.append(c)
            seen["connections"] += 1
        else:
            fds = array.array("i")
            try:
                data, anc, _, _ = x.recvmsg(65536, socket.CMSG_SPACE(16 * fds.itemsize))
            except OSError:
                data, anc = b"", []
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    seen["fds"] += len(payload) // fds.itemsize
            seen["bytes"] += len(data)
            if not data and not anc:
                conns.remove(x)
                x.close()
    save()
'''


class Squatter:
    """`nobody` bound to an abstract name for up to `seconds`, stopped on exit"""

    def __init__(self, setup, name, seconds=60, stall=False):
        harness.require("setpriv")
        self.name = name
        # nobody writes its report into a directory of its own
        self.dir = os.path.join(setup.tmp, "squatter-%d" % time.monotonic_ns())
        os.mkdir(self.dir)
        os.chown(self.dir, 65534, 65534)
        os.chmod(setup.tmp, 0o755)
        self.out = os.path.join(self.dir, "seen.json")
        self.proc = subprocess.Popen(NOBODY + [sys.executable, "-c", PROGRAM, name, str(seconds), self.out,
                                              "stall" if stall else "accept"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        setup.add_closer(self.stop)
        line = self.proc.stdout.readline()
        if line != b"listening\n":
            self.stop()
            raise harness.SetupError("the squatter did not bind %s: %r %r" % (name, line, self.proc.stderr.read()))
        self.pid = self.proc.pid

    def report(self):
        """what it received so far"""
        with open(self.out) as f:
            return json.load(f)

    def stop(self):
        harness.stop_process(self.proc, grace=1)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
