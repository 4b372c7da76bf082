#!/usr/bin/env python3
"""bench.py - TLS handshakes per second and bulk throughput through the
module, against stunnel4 and a bare wolfSSL server, in one run

    bench.py [--handshakes N] [--concurrency K] [--mib M] [--repeat R]
             [--suite SUITE] [--quick]

`make bench` builds bench/client and bench/wolfssl_server and runs this.
It makes one RSA 2048 certificate (as the integration tests do) and
starts, all on 127.0.0.1, with that certificate and a TLS 1.2 floor:

  module    tlspolicyd, and tests/server/mailserver.py with tlspolicy.so
            preloaded, on a port the policy makes implicit-TLS SMTP;
            and the same with bench/wolfssl_server -P (a plaintext SMTP
            sink in C) as the daemon instead of mailserver.py
  stunnel4  one stunnel in the foreground with two services, TLS in front
            of a second mailserver.py and a second C sink (no shim)
  bare      bench/wolfssl_server: wolfSSL and the SMTP sink in one
            process, no relay and no backend: the ceiling

Then, R times (default 3), each setup in turn: bench/client (wolfSSL, C)
does N full TLS 1.3 handshakes K at a time, each reading the SMTP
greeting, and bench/bulk_client.py (OpenSSL) sends one M MiB message over
SMTP DATA.  Both clients offer one TLS 1.3 suite (--suite) and X25519
only, so every setup negotiates the same.  Meanwhile it reads the CPU
time of the setup's own processes from /proc.  It prints every run and a
table of medians with the ratios module/stunnel4 and module/bare.
Everything it starts is stopped on exit, Ctrl-C, SIGTERM or failure (and,
through PR_SET_PDEATHSIG, if it is killed); its temp dir is removed.
bench/README.md says how to read the table.

Paths come from TOP_SRCDIR and TOP_BUILDDIR (make bench sets them), else
the source tree this file is in.
"""

import argparse
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("TOP_SRCDIR") or os.path.join(HERE, ".."))
BUILDDIR = os.path.abspath(os.environ.get("TOP_BUILDDIR") or SRCDIR)
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
sys.dont_write_bytecode = True          # no __pycache__ in the source tree

import harness  # noqa: E402

CLIENT = os.path.join(BUILDDIR, "bench", "client")
BULK_CLIENT = os.path.join(SRCDIR, "bench", "bulk_client.py")
SERVER = os.path.join(BUILDDIR, "bench", "wolfssl_server")
START_TIMEOUT = 10                      # seconds for each process to come up
CLIENT_TIMEOUT = 600                    # seconds for one client run

# the TLS 1.3 suites by their IANA (OpenSSL) and wolfSSL names
SUITES = {
    "TLS_AES_128_GCM_SHA256": "TLS13-AES128-GCM-SHA256",
    "TLS_AES_256_GCM_SHA384": "TLS13-AES256-GCM-SHA384",
    "TLS_CHACHA20_POLY1305_SHA256": "TLS13-CHACHA20-POLY1305-SHA256",
}
IANA = {w: i for i, w in SUITES.items()}

SETUPS = [("module", "py"), ("stunnel4", "py"), ("module", "c"), ("stunnel4", "c"), ("bare", None)]

# the processes whose CPU time is a setup's cost
SETUP_PROCS = {
    ("module", "py"): ("tlspolicyd", "mailserver-module"),
    ("stunnel4", "py"): ("stunnel4", "mailserver-stunnel"),
    ("module", "c"): ("tlspolicyd", "sink-module"),
    ("stunnel4", "c"): ("stunnel4", "sink-stunnel"),
    ("bare", None): ("bare",),
}

BACKENDS = {
    "py": "tests/server/mailserver.py (Python, thread per connection)",
    "c": "bench/wolfssl_server -P (plaintext SMTP sink in C)",
}


class BenchError(Exception):
    """something did not start or a client run failed; the message says what"""


def stunnel_binary():
    for name in ("stunnel4", "stunnel"):
        path = shutil.which(name)
        if path:
            return path
    raise BenchError("stunnel4 is not installed (Debian: apt-get install stunnel4; Fedora: dnf install stunnel)")


class Bench:
    """The processes of one run, their ports and temp dir; close() stops them all."""

    def __init__(self):
        self.procs, self.logs, self.pids = [], {}, {}
        self.tmp = tempfile.mkdtemp(prefix="tlspolicy-bench-")
        self.relay_socket = "@tlspolicy-bench-%d" % os.getpid()
        self.conf = os.path.join(self.tmp, "tlspolicy.conf")
        self.rundir = os.path.join(self.tmp, "run")
        os.makedirs(self.rundir)
        self.cert = self.key = None
        self.env = dict(os.environ, TLSPOLICY_CONF=self.conf, TLSPOLICY_RUNDIR=self.rundir)
        self.env.pop("LD_PRELOAD", None)
        self.port = {}                  # (setup, backend) -> the port the client uses

    # --- starting
    def spawn(self, name, cmd, env=None, stdout=None):
        log = open(os.path.join(self.tmp, name + ".log"), "ab")
        self.logs[name] = log.name
        proc = subprocess.Popen(cmd, env=env or self.env, stdin=subprocess.DEVNULL,
                                stdout=stdout or log, stderr=log, start_new_session=True,
                                preexec_fn=harness._die_with_parent)
        log.close()
        self.procs.append((name, proc))
        self.pids[name] = proc.pid
        return proc

    def log_tail(self, name, lines=20):
        try:
            with open(self.logs[name], encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (KeyError, OSError):
            return ""

    def died(self, name, proc):
        return BenchError("%s exited with %s; its log:\n%s" % (name, proc.returncode, self.log_tail(name)))

    def wait_until(self, name, proc, ready):
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if proc.poll() is not None:
                raise self.died(name, proc)
            if time.monotonic() > deadline:
                raise BenchError("%s not ready after %d s; its log:\n%s" % (name, START_TIMEOUT, self.log_tail(name)))
            time.sleep(0.05)

    def start(self, suite):
        self.cert, self.key = harness.make_cert(os.path.join(self.tmp, "cert"))
        self.write_openssl_conf(suite)
        ports = {k: harness.free_port() for k in ("mod-py", "mod-c", "py", "c", "st-py", "st-c", "bare")}
        harness.write_policy(self.conf, {
            "global": {"certificate": self.cert, "private_key": self.key, "min_protocol": "TLSv1.2",
                       "relay_socket": self.relay_socket},
            "port %d" % ports["mod-py"]: {"protocol": "smtp", "tls": "implicit"},
            "port %d" % ports["mod-c"]: {"protocol": "smtp", "tls": "implicit"},
        })
        self.start_tlspolicyd()
        shimmed = harness.preload_env(self.env)
        self.start_mailserver("mailserver-module", ports["mod-py"], shimmed)
        self.start_mailserver("mailserver-stunnel", ports["py"], self.env)
        self.start_sink("sink-module", ["-P", str(ports["mod-c"])], shimmed)
        self.start_sink("sink-stunnel", ["-P", str(ports["c"])], self.env)
        self.start_stunnel({"py": (ports["st-py"], ports["py"]), "c": (ports["st-c"], ports["c"])})
        self.start_sink("bare", ["-c", self.cert, "-k", self.key, str(ports["bare"])], self.env)
        self.port = {("module", "py"): ports["mod-py"], ("module", "c"): ports["mod-c"],
                     ("stunnel4", "py"): ports["st-py"], ("stunnel4", "c"): ports["st-c"],
                     ("bare", None): ports["bare"]}

    def write_openssl_conf(self, suite):
        """the bulk client's offer, pinned like bench/client's: one suite, X25519"""
        self.openssl_conf = os.path.join(self.tmp, "openssl-client.cnf")
        with open(self.openssl_conf, "w") as f:
            f.write("openssl_conf = bench\n[bench]\nssl_conf = bench_ssl\n"
                    "[bench_ssl]\nsystem_default = bench_client\n[bench_client]\n"
                    "MinProtocol = TLSv1.2\nCiphersuites = %s\nGroups = X25519\n" % suite)

    def start_tlspolicyd(self):
        daemon = harness.DAEMON
        if not os.path.exists(daemon):
            raise BenchError("tlspolicyd not built: %s" % daemon)
        proc = self.spawn("tlspolicyd", [daemon, "-f"])
        abstract = "\0" + self.relay_socket[1:]

        def listening():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(abstract)
                    return True
                except OSError:
                    return False
        self.wait_until("tlspolicyd", proc, listening)

    def start_mailserver(self, name, port, env):
        ready = os.path.join(self.tmp, name + ".ready")
        maildir = os.path.join(self.tmp, name + ".maildir")
        os.makedirs(maildir)
        # no --record: the record is a JSON line per line of mail, which
        # would be most of what is measured
        proc = self.spawn(name, [sys.executable, harness.MAILSERVER, "--maildir", maildir,
                                 "--ready-file", ready, "--smtp", "%d/plain" % port], env)
        self.wait_until(name, proc, lambda: os.path.exists(ready))

    def start_sink(self, name, args, env):
        """bench/wolfssl_server, which says "ready" on stdout once it listens"""
        proc = self.spawn(name, [SERVER, *args], env, stdout=subprocess.PIPE)
        r, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        line = proc.stdout.readline() if r else b""
        proc.stdout.close()
        if line.strip() != b"ready":
            proc.poll()
            raise self.died(name, proc) if proc.returncode is not None else \
                BenchError("%s not ready after %d s; its log:\n%s" % (name, START_TIMEOUT, self.log_tail(name)))

    def start_stunnel(self, services):
        path = os.path.join(self.tmp, "stunnel.conf")
        with open(path, "w") as f:
            f.write("; the module's policy, said to stunnel: same certificate, key and floor\n"
                    "foreground = yes\npid =\nsyslog = no\n")
            for name, (accept, connect) in services.items():
                f.write("\n[%s]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\ncert = %s\nkey = %s\n"
                        "sslVersionMin = TLSv1.2\n" % (name, accept, connect, self.cert, self.key))
        proc = self.spawn("stunnel4", [stunnel_binary(), path])

        def listening():
            for accept, _ in services.values():
                try:
                    socket.create_connection(("127.0.0.1", accept), 1).close()
                except OSError:
                    return False
            return True
        self.wait_until("stunnel4", proc, listening)

    # --- measuring
    def run_client(self, cmd, setup, backend, env=None):
        """run one client to its end: its key=value line as a dict, and the
        CPU seconds the client and the setup's processes used meanwhile"""
        pids = [self.pids[n] for n in SETUP_PROCS[(setup, backend)]]
        server0, client0 = cpu_seconds(pids), children_cpu()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               timeout=CLIENT_TIMEOUT, preexec_fn=harness._die_with_parent)
        except subprocess.TimeoutExpired:
            raise BenchError("%s: no end after %d s" % (" ".join(cmd), CLIENT_TIMEOUT)) from None
        if p.returncode != 0:
            logs = "".join("\n--- %s (last lines):\n%s" % (n, self.log_tail(n)) for n in self.logs)
            raise BenchError("%s (%s) failed: %s%s" % (" ".join(cmd), label(setup, backend),
                                                      p.stderr.strip(), logs))
        out = dict(kv.split("=", 1) for kv in p.stdout.split())
        out["server_cpu"] = cpu_seconds(pids) - server0
        out["client_cpu"] = children_cpu() - client0
        return out

    def handshakes(self, setup, backend, count, concurrency, suite):
        cmd = [CLIENT, "-n", str(count), "-c", str(concurrency), "-s", SUITES[suite],
               "-a", self.cert, str(self.port[(setup, backend)])]
        out = self.run_client(cmd, setup, backend)
        out["suite"] = IANA.get(out["suite"], out["suite"])
        return out

    def bulk(self, setup, backend, mib):
        cmd = [sys.executable, BULK_CLIENT, "--cafile", self.cert, "--mib", str(mib),
               str(self.port[(setup, backend)])]
        out = self.run_client(cmd, setup, backend, env=dict(self.env, OPENSSL_CONF=self.openssl_conf))
        out["group"] = "X25519"         # the only one offered; Python cannot tell
        return out

    def close(self):
        for name, proc in reversed(self.procs):
            harness.stop_process(proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- the run ------------------------------------------------------------------

def cpu_seconds(pids):
    """user + system CPU time of these processes (all their threads) so far"""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])     # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def label(setup, backend):
    return setup if backend is None else "%s [%s]" % (setup, backend)


def measure(b, opts):
    """{setup: {"hs": [runs], "mib": [runs], "hs_cpu": [ms per handshake],
    "mib_cpu": [ms per MiB], "client_share": [..], "info": (version, suite, group),
    "reply": {codes}}}"""
    keys = ("hs", "mib", "hs_cpu", "mib_cpu", "client_share")
    res = {k: dict({x: [] for x in keys}, info=None, reply=set()) for k in SETUPS}
    want = ("TLSv1.3", opts.suite, "X25519")
    print("warming up (100 handshakes and 1 MiB per setup, not counted)", flush=True)
    for k in SETUPS:
        b.handshakes(*k, 100, opts.concurrency, opts.suite)
        b.bulk(*k, 1)
    for rep in range(1, opts.repeat + 1):
        for k in SETUPS:                # interleaved: drift hits every setup alike
            hs = b.handshakes(*k, opts.handshakes, opts.concurrency, opts.suite)
            bulk = b.bulk(*k, opts.mib)
            r = res[k]
            r["hs"].append(float(hs["per_second"]))
            r["hs_cpu"].append(hs["server_cpu"] * 1000 / opts.handshakes)
            r["client_share"].append(hs["client_cpu"] / float(hs["seconds"]))
            r["mib"].append(float(bulk["mib_per_second"]))
            r["mib_cpu"].append(bulk["server_cpu"] * 1000 / opts.mib)
            r["reply"].add(bulk["reply"])
            for out in (hs, bulk):
                got = (out["version"], out["suite"], out["group"])
                if got != want:
                    raise BenchError("%s negotiated %s, not %s" % (label(*k), " ".join(got), " ".join(want)))
            r["info"] = want
            print("run %d/%d  %-15s %8.1f handshakes/s (%5.2f ms CPU each)  %7.1f MiB/s (%5.1f ms CPU/MiB)"
                  % (rep, opts.repeat, label(*k), r["hs"][-1], r["hs_cpu"][-1], r["mib"][-1], r["mib_cpu"][-1]),
                  flush=True)
    return res


def ratio(a, b):
    return "%.2f" % (a / b) if b else "-"


def report(res, opts, load):
    med = {k: {x: statistics.median(v[x]) for x in ("hs", "mib", "hs_cpu", "mib_cpu", "client_share")}
           for k, v in res.items()}
    print()
    print("tlspolicy bench: %d full TLS handshakes (%d concurrent) and one %d MiB message per run;"
          " median of %d runs" % (opts.handshakes, opts.concurrency, opts.mib, opts.repeat))
    print("negotiated in every run: TLSv1.3 %s X25519; RSA 2048 certificate; floor TLS 1.2 everywhere"
          % opts.suite)
    print("load average before / after: %s / %s (2 CPUs shared with other work: figures are noisy)"
          % tuple(" ".join("%.2f" % x for x in la) for la in load))
    print()
    print("%-15s %12s %10s %12s %10s   %s" % ("setup", "handshakes/s", "MiB/s", "CPU ms/hs", "CPU ms/MiB",
                                              "runs: handshakes/s; MiB/s"))
    for k in SETUPS:
        r, m = res[k], med[k]
        print("%-15s %12.1f %10.1f %12.2f %10.2f   %s; %s"
              % (label(*k), m["hs"], m["mib"], m["hs_cpu"], m["mib_cpu"],
                 " ".join("%.0f" % x for x in r["hs"]), " ".join("%.1f" % x for x in r["mib"])))
    print()
    print("[py] backend: %s" % BACKENDS["py"])
    print("[c]  backend: %s" % BACKENDS["c"])
    print("bare: wolfSSL and the C sink in one process, no relay, no backend (the ceiling)")
    print("CPU = user+system time of the setup's own processes (tlspolicyd + daemon, stunnel4 + daemon,")
    print("      or bare) during the run; the handshake client itself used %.0f%%-%.0f%% of one CPU"
          % (100 * min(m["client_share"] for m in med.values()), 100 * max(m["client_share"] for m in med.values())))
    print()
    print("%-28s %12s %10s %12s %10s" % ("ratio of medians", "handshakes/s", "MiB/s", "CPU ms/hs", "CPU ms/MiB"))
    rows = [("module / stunnel4 [%s]" % b, med[("module", b)], med[("stunnel4", b)]) for b in ("py", "c")]
    rows += [("module / bare     [%s]" % b, med[("module", b)], med[("bare", None)]) for b in ("py", "c")]
    rows += [("stunnel4 / bare   [c]", med[("stunnel4", "c")], med[("bare", None)])]
    for name, a, b in rows:
        print("%-28s %12s %10s %12s %10s" % (name, ratio(a["hs"], b["hs"]), ratio(a["mib"], b["mib"]),
                                             ratio(a["hs_cpu"], b["hs_cpu"]), ratio(a["mib_cpu"], b["mib_cpu"])))
    print("(rates: above 1 is faster than the other; CPU: above 1 costs more than the other)")
    if any(r["reply"] != {"250"} for r in res.values()):
        print()
        print("The [py] final reply to the message is 552: over mailserver.py's 10 MiB SIZE limit, read")
        print("to its end, then refused and not stored.  The C sink answers 250 and discards it too.")


def parse_args(argv):
    p = argparse.ArgumentParser(description="tlspolicy module vs stunnel4 vs bare wolfSSL")
    p.add_argument("--handshakes", type=int, default=2000, help="full handshakes per run (default 2000)")
    p.add_argument("--concurrency", type=int, default=8, help="connections at a time (default 8)")
    p.add_argument("--mib", type=int, default=64, help="size of the bulk message in MiB (default 64)")
    p.add_argument("--repeat", type=int, default=3, help="runs per setup; the median is reported (default 3)")
    p.add_argument("--suite", default="TLS_AES_128_GCM_SHA256", choices=sorted(SUITES),
                   help="the one TLS 1.3 suite the clients offer (default TLS_AES_128_GCM_SHA256)")
    p.add_argument("--quick", action="store_true", help="a smoke test: 200 handshakes, 4 MiB, 1 run")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.handshakes, opts.mib, opts.repeat = 200, 4, 1
    if opts.handshakes < 1 or opts.concurrency < 1 or opts.mib < 1 or opts.repeat < 1:
        p.error("--handshakes, --concurrency, --mib and --repeat must be at least 1")
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    for path in (CLIENT, SERVER, harness.SHIM, harness.DAEMON):
        if not os.path.exists(path):
            print("bench.py: %s is not built (run make bench)" % path, file=sys.stderr)
            return 1
    # SIGTERM and SIGHUP end the run like Ctrl-C: through the finally below
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    b = None
    try:
        b = Bench()
        b.start(opts.suite)
        load = [os.getloadavg()]
        res = measure(b, opts)
        load.append(os.getloadavg())
        report(res, opts, load)
        return 0
    except (BenchError, harness.SetupError) as e:
        print("bench.py: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.py: interrupted", file=sys.stderr)
        return 130
    finally:
        if b is not None:
            b.close()


if __name__ == "__main__":
    sys.exit(main())
