"""harness.py - start tlspolicyd and a shimmed test mail server, talk to them

The integration tests import this module.  One Setup is one isolated
instance: its own temp dir, certificate, policy file, abstract relay socket
("@tlspolicy-test-<pid>-<n>"), tlspolicyd, and tests/server/mailserver.py
preloaded with tlspolicy.so.  Everything it starts is stopped when it is
closed (SIGTERM, then SIGKILL after 5 s), at interpreter exit, and, should
the test process be killed, by PR_SET_PDEATHSIG.

    with Setup({"submission": {"protocol": "smtp", "tls": "starttls"},
                "smtps": {"protocol": "smtp", "tls": "implicit"}}) as s:
        c = s.smtp("submission")            # smtplib, connected
        c.starttls()                        # verifies "localhost" against s.cert
        ...
        assert s.wait_for(event="auth", ok=True)
        print(s.log)                        # tlspolicyd's stderr

Setup(..., daemonless=True) runs the mail server alone (no shim, no
tlspolicyd, no policy), to test the server and the tests themselves.

Paths come from TOP_BUILDDIR and TOP_SRCDIR (or automake's top_builddir and
top_srcdir), else the source tree this file is in.
"""

import atexit
import ctypes
import itertools
import json
import os
import imaplib
import poplib
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("TOP_SRCDIR") or os.environ.get("top_srcdir")
                         or os.path.join(HERE, "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("TOP_BUILDDIR") or os.environ.get("top_builddir") or SRCDIR)
SHIM = os.path.join(BUILDDIR, "module", ".libs", "tlspolicy.so")
DAEMON = os.path.join(BUILDDIR, "module", "tlspolicyd")
CTL = os.path.join(BUILDDIR, "cli", "tlspolicyctl")
MAILSERVER = os.path.join(HERE, "..", "server", "mailserver.py")
CI = os.environ.get("CI") == "true"
KEEP = os.environ.get("TLSPOLICY_TEST_KEEP") == "1"      # keep temp dirs for a post-mortem

START_TIMEOUT = 10      # seconds for tlspolicyd and the mail server to come up
STOP_GRACE = 5          # seconds between SIGTERM and SIGKILL
CLIENT_TIMEOUT = 10     # socket timeout of every client this module makes
RUN_TIMEOUT = 15        # default for run()

# tools every integration test run needs; run.py checks them before anything
PREREQUISITES = {
    "openssl": "makes the test certificates (Debian: openssl)",
    "curl": "the real SMTP/IMAP/POP3 client of the tests (Debian: curl)",
}


class SetupError(AssertionError):
    """something a Setup started did not come up; the message carries its log"""


class CommandTimeout(AssertionError):
    """run() gave up on a command"""


# --- prerequisites ----------------------------------------------------------

def missing_prerequisites():
    """[reason, ...] for each tool in PREREQUISITES that is not installed"""
    return ["%s not installed: %s" % (t, why) for t, why in PREREQUISITES.items() if not shutil.which(t)]


def skip_or_fail(reason):
    """skip the test, or fail it when CI=true (CI must run everything)"""
    if CI:
        raise AssertionError("prerequisite missing, and CI=true makes that a failure: " + reason)
    raise unittest.SkipTest(reason)


def require(*tools):
    """skip (or, in CI, fail) unless every tool is on PATH"""
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        skip_or_fail("not installed: " + " ".join(missing))


def require_module():
    """skip (or, in CI, fail) unless tlspolicy.so and tlspolicyd are built"""
    missing = [p for p in (SHIM, DAEMON) if not os.path.exists(p)]
    if missing:
        skip_or_fail("module not built: no " + ", ".join(missing))


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- ports, certificates, policies --------------------------------------------

_ports_given = set()


def free_port(ipv6=False):
    """a loopback TCP port nobody listens on (nor did this process hand out)"""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in _ports_given:
            continue
        if ipv6:
            try:
                with socket.socket(socket.AF_INET6) as s6:
                    s6.bind(("::1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise SetupError("no free loopback port found")


def make_cert(directory, name="mail"):
    """a self-signed RSA certificate for mail.test, localhost and 127.0.0.1:
    returns (cert path, key path); the key is mode 0600"""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, name + ".pem"), os.path.join(directory, name + ".key")
    rc, out, err = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-subj", "/CN=mail.test",
                        "-addext", "subjectAltName=DNS:mail.test,DNS:localhost,IP:127.0.0.1",
                        "-days", "365"], timeout=60)
    if rc != 0:
        raise SetupError("openssl req failed (%d):\n%s%s" % (rc, out, err))
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)
    return cert, key


_cert_dir = None


def test_cert():
    """one certificate per test process, made on first use"""
    global _cert_dir
    if _cert_dir is None:
        d = tempfile.mkdtemp(prefix="tlspolicy-cert-")
        atexit.register(shutil.rmtree, d, True)
        make_cert(d)
        _cert_dir = d
    return os.path.join(_cert_dir, "mail.pem"), os.path.join(_cert_dir, "mail.key")


def policy_value(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return " ".join(map(str, v))
    return str(v)


def write_policy(path, sections):
    """write an INI policy from {section: {key: value}}; [global] first.
    Values: str, int, bool (yes/no), or a list (joined by spaces)."""
    order = sorted(sections, key=lambda name: name != "global")
    with open(path, "w") as f:
        for name in order:
            f.write("[%s]\n" % name)
            for key, value in sections[name].items():
                f.write("%s = %s\n" % (key, policy_value(value)))
            f.write("\n")


# --- processes ----------------------------------------------------------------

def _die_with_parent():
    """in the child before exec: be killed when the test process dies"""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _asan_runtime(path):
    """libasan's path if the shared object at path needs it, else None: an ASan
    shim must be preloaded after libasan into a Python that has none"""
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^\s*libasan\.so\S*\s+=>\s+(\S+)", out, re.M)
    return m.group(1) if m else None


def _readable_by_all(path):
    """can every user read path (and run it, if it is a program)?"""
    st = os.stat(path)
    if not st.st_mode & 0o004 or (st.st_mode & 0o100 and not st.st_mode & 0o001):
        return False
    d = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(d).st_mode & 0o001:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


_public = {}


def for_others(path):
    """path, or a copy of it every user can read and run: a test that runs
    a program as another user (setpriv) hands it the shim, tlspolicyd or the
    test server, and the tree they come from may be private to root (a
    clone in a `mktemp -d` directory is mode 0700).  A directory is copied
    whole.  The copies are removed at exit."""
    path = os.path.abspath(path)
    if _readable_by_all(path):
        return path
    if path not in _public:
        top = tempfile.mkdtemp(prefix="tlspolicy-public-")
        os.chmod(top, 0o755)
        atexit.register(shutil.rmtree, top, True)
        dst = os.path.join(top, os.path.basename(path))
        if os.path.isdir(path):
            shutil.copytree(path, dst)
            for root, dirs, files in os.walk(dst):
                for n in dirs + files:
                    q = os.path.join(root, n)
                    os.chmod(q, os.stat(q).st_mode | 0o555 if os.path.isdir(q) else os.stat(q).st_mode | 0o444)
        else:
            shutil.copy2(path, dst)
            os.chmod(dst, os.stat(dst).st_mode | 0o444)
        os.chmod(top, 0o755)
        _public[path] = dst
    return _public[path]


def preload_env(env, shim=None):
    """env with LD_PRELOAD set to the shim (after libasan for a sanitizer
    build); shim: another path of it (for_others)"""
    env = dict(env)
    shim = shim or SHIM
    asan = _asan_runtime(SHIM)
    env["LD_PRELOAD"] = (asan + " " + shim) if asan else shim
    if asan:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")     # CPython is not leak-clean
    return env


def stop_process(proc, grace=STOP_GRACE):
    """SIGTERM its process group, SIGKILL after grace seconds; waits for it"""
    if proc.poll() is not None:
        return proc.returncode
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            proc.send_signal(sig)
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run(cmd, input=None, timeout=RUN_TIMEOUT, env=None, cwd=None):
    """run a command (curl, openssl, swaks, tlspolicyctl ...) to its end:
    returns (rc, stdout, stderr) as text; CommandTimeout after timeout seconds.
    input: str or bytes for its stdin (default: /dev/null)."""
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
                            start_new_session=True, preexec_fn=_die_with_parent)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc, grace=1)
        out, err = proc.communicate()
        raise CommandTimeout("%s: no end after %s s\nstdout: %s\nstderr: %s"
                             % (" ".join(cmd), timeout, out.decode(errors="replace"),
                                err.decode(errors="replace"))) from None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# --- clients: connect to an address, verify the name "localhost" ------------------

def _connect(addr, port, timeout, source):
    """a TCP connection to (addr, port), from the address source if given"""
    return socket.create_connection((addr, port), timeout, (source, 0) if source else None)


class SMTP(smtplib.SMTP):
    def __init__(self, port, addr, context, timeout=CLIENT_TIMEOUT, source=None):
        self._addr, self._tls_context = addr, context
        super().__init__("localhost", port, local_hostname="client.test", timeout=timeout,
                         source_address=(source, 0) if source else None)

    def _get_socket(self, host, port, timeout):
        return socket.create_connection((self._addr, port), timeout, self.source_address)

    def starttls(self, keyfile=None, certfile=None, context=None):
        return super().starttls(context=context or self._tls_context)


class SMTP_SSL(smtplib.SMTP_SSL):
    def __init__(self, port, addr, context, timeout=CLIENT_TIMEOUT, source=None):
        self._addr = addr
        super().__init__("localhost", port, local_hostname="client.test", timeout=timeout, context=context,
                         source_address=(source, 0) if source else None)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((self._addr, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class IMAP4(imaplib.IMAP4):
    def __init__(self, port, addr, context, timeout=CLIENT_TIMEOUT, source=None):
        self._source = source
        self._addr, self._tls_context = addr, context
        super().__init__("localhost", port, timeout=timeout)

    def _create_socket(self, timeout):
        return _connect(self._addr, self.port, timeout, self._source)

    def starttls(self, ssl_context=None):
        return super().starttls(ssl_context or self._tls_context)


class IMAP4_SSL(imaplib.IMAP4_SSL):
    def __init__(self, port, addr, context, timeout=CLIENT_TIMEOUT, source=None):
        self._source = source
        self._addr = addr
        super().__init__("localhost", port, ssl_context=context, timeout=timeout)

    def _create_socket(self, timeout):
        sock = _connect(self._addr, self.port, timeout, self._source)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class POP3(poplib.POP3):
    def __init__(self, port, addr, context, timeout=CLIENT_TIMEOUT, source=None):
        self._source = source
        self._addr, self._tls_context = addr, context
        super().__init__("localhost", port, timeout)

    def _create_socket(self, timeout):
        return _connect(self._addr, self.port, timeout, self._source)

    def stls(self, context=None):
        return super().stls(context or self._tls_context)


class POP3_SSL(poplib.POP3_SSL):
    def __init__(self, port, addr, context, timeout=CLIENT_TIMEOUT, source=None):
        self._source = source
        self._addr = addr
        super().__init__("localhost", port, timeout=timeout, context=context)

    def _create_socket(self, timeout):
        sock = _connect(self._addr, self.port, timeout, self._source)
        return self.context.wrap_socket(sock, server_hostname=self.host)


class Raw:
    """A plain socket with helpers for byte-exact conversations.

    read_until() keeps whatever arrived after the match for the next read.
    local is the socket's own address (kept after close), opened the
    time.time() just before it connected (Setup.connection() uses both)."""

    def __init__(self, sock, context=None, opened=None):
        self.sock, self.context, self.buf = sock, context, b""
        self.local, self.opened = sock.getsockname(), opened

    @staticmethod
    def _pattern(p):
        if isinstance(p, str):
            p = p.encode("latin-1")
        if isinstance(p, bytes):
            return re.compile(re.escape(p))
        if isinstance(p.pattern, str):
            return re.compile(p.pattern.encode("latin-1"), p.flags & ~re.UNICODE)
        return p

    def send(self, data):
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def sendline(self, line):
        self.send((line.encode("latin-1") if isinstance(line, str) else line) + b"\r\n")

    def _recv(self, deadline):
        """more bytes into buf; False at EOF; socket.timeout after deadline"""
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            data = b""
        self.buf += data
        return bool(data)

    def read_until(self, pattern, timeout=CLIENT_TIMEOUT):
        """bytes up to and including the first match of pattern (bytes or str:
        literally; a compiled regex: searched); AssertionError on timeout or EOF"""
        rx = self._pattern(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            try:
                if not self._recv(deadline):
                    raise AssertionError("connection closed before %r; got %r" % (rx.pattern, self.buf))
            except socket.timeout:
                raise AssertionError("no %r within %s s; got %r" % (rx.pattern, timeout, self.buf)) from None

    expect = read_until

    def read_line(self, timeout=CLIENT_TIMEOUT):
        return self.read_until(b"\n", timeout)

    def read_all(self, timeout=CLIENT_TIMEOUT):
        """everything until the peer closes; AssertionError if it does not in time"""
        deadline = time.monotonic() + timeout
        try:
            while self._recv(deadline):
                pass
        except socket.timeout:
            raise AssertionError("peer did not close within %s s; got %r" % (timeout, self.buf)) from None
        out, self.buf = self.buf, b""
        return out

    def read_for(self, seconds):
        """whatever arrives within seconds (stops early at EOF); never fails"""
        deadline = time.monotonic() + seconds
        try:
            while self._recv(deadline):
                pass
        except (socket.timeout, OSError):
            pass
        out, self.buf = self.buf, b""
        return out

    def closed(self, timeout=5):
        """True if the peer closes within timeout (data meanwhile goes to buf)"""
        deadline = time.monotonic() + timeout
        try:
            while self._recv(deadline):
                pass
            return True
        except socket.timeout:
            return False

    def starttls(self, server_hostname="localhost", context=None):
        """client-side handshake; anything unread is an error (injection tests use send)"""
        if self.buf:
            raise AssertionError("unread bytes before the TLS handshake: %r" % self.buf)
        self.sock.settimeout(CLIENT_TIMEOUT)
        self.sock = (context or self.context).wrap_socket(self.sock, server_hostname=server_hostname)
        return self.sock

    def getsockname(self):
        return self.sock.getsockname()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- Setup --------------------------------------------------------------------

_instances = itertools.count(1)
_live = []

# what AddressSanitizer, LeakSanitizer and UBSan print (--enable-sanitizers)
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
sanitizer_reports = []


def close_all():
    """close every Setup still open (atexit, and run.py's watchdog)"""
    for s in list(_live):
        s.close()


atexit.register(close_all)


def _section(v):
    """{"protocol": ...}: from a dict, a protocol name, or (protocol, tls[, tls_by])"""
    if isinstance(v, str):
        return {"protocol": v}
    if isinstance(v, (tuple, list)):
        return dict(zip(("protocol", "tls", "tls_by"), v))
    return dict(v)


class Setup:
    """One isolated tlspolicyd + shimmed mail server, started by the constructor.

    policy_ports: {name: section}, each a managed port: a free port is picked,
        "[port N]" gets the section's keys, and the mail server listens there
        for its "protocol".  A section may also be "smtp" or ("smtp", "starttls").
        With tls_by = daemon the server does TLS itself there (implicit for
        tls = implicit, else STARTTLS), with the generated certificate.
    plain_ports: {name: protocol}: ports the server listens on with no section.
    policy: more sections, {section: {key: value}}; "global" keys override the
        defaults (certificate, private_key, relay_socket).  "{name}" in section
        names and values is replaced by that port; {cert}, {key}, {tmp} too.
        A value None leaves the key out (e.g. {"global": {"certificate": None}}).
    daemonless: the mail server alone: no shim, no tlspolicyd, no policy file.
    ipv6: the server listens on ::1 as well.
    server_tls: {name: "plain" | "starttls" | "implicit"}, overriding the above.
    offer_starttls: ports not otherwise set offer STARTTLS.
    server_args, daemon_args: extra arguments for mailserver.py and tlspolicyd.
    run_as: None (the default) starts tlspolicyd with --insecure-run-as-root,
        so that no test depends on a "tlspolicy" user existing; a user name
        makes it the policy's [global] user instead: tlspolicyd drops to it
        (the temp dir and the policy are made readable to it; the test's key
        stays 0600 root, read through tlspolicyd's key helper).
    publish: run "tlspolicyctl reload" before starting tlspolicyd.
    inetd: names of ports served inetd-style: the harness listens there and
        runs one "mailserver.py --inetd" per connection with the client on
        fd 0 (the shim's inherited-socket path); its "conn" is that pid.
    server_env: more environment for the mail server (and so for the shim).
    server: False starts no mail server, only tlspolicyd with the policy for
        policy_ports: for a real daemon started beside it (daemons.py).
    shim_log: catch what the shim logs: a datagram socket in tmp is bound and
        named to the server in TLSPOLICY_SYSLOG_SOCKET; read it with
        shim_log_lines() and wait_shim_log().

    Attributes: ports {name: port}, tmp, conf, rundir, cert, key, relay_socket,
    record_path, maildir, user, password, ssl_context, daemon (tlspolicyd's
    Popen, None when daemonless).
    """

    def __init__(self, policy_ports=None, *, plain_ports=None, policy=None, daemonless=False,
                 ipv6=False, server_tls=None, offer_starttls=False, server_args=(), daemon_args=(),
                 user="test", password="secret", publish=False, inetd=(), server_env=None,
                 shim_log=False, server=True, run_as=None):
        self.daemonless, self.ipv6 = daemonless, ipv6
        self.user, self.password = user, password
        self.procs, self.clients, self.logs = [], [], []
        self.inetd, self.inetd_listeners = tuple(inetd), []
        self.server_pid = None
        self.daemon, self.daemon_args = None, ()
        self.run_as = run_as
        self.server_extra_env = dict(server_env or {})
        self.shim_sock, self.shim_messages = None, []
        self.policy_sections = {}
        self.closers = []
        self.closed = False
        n = next(_instances)
        self.tmp = tempfile.mkdtemp(prefix="tlspolicy-test-%d-%d-" % (os.getpid(), n))
        self.relay_socket = "@tlspolicy-test-%d-%d" % (os.getpid(), n)
        self.rundir = os.path.join(self.tmp, "run")
        self.maildir = os.path.join(self.tmp, "maildir")
        self.record_path = os.path.join(self.tmp, "record.jsonl")
        self.conf = os.path.join(self.tmp, "tlspolicy.conf")
        self.daemon_log_path = os.path.join(self.tmp, "tlspolicyd.log")
        self.server_log_path = os.path.join(self.tmp, "mailserver.log")
        os.makedirs(self.rundir)
        os.makedirs(self.maildir)
        if run_as is not None:
            os.chmod(self.tmp, 0o755)       # the policy must be readable by tlspolicyd's user
        _live.append(self)
        try:
            self._plan(policy_ports or {}, plain_ports or {}, server_tls or {}, offer_starttls)
            needs_cert = not daemonless or any(m != "plain" for m in self.server_modes.values())
            self.cert, self.key = test_cert() if needs_cert else (None, None)
            if not daemonless:
                self.policy_sections = self._policy(policy or {})
                write_policy(self.conf, self.policy_sections)
                if publish:
                    self.reload()
                self.daemon_args = tuple(daemon_args)
                self._start_daemon(daemon_args)
            if shim_log:
                self._open_shim_log()
            if server:
                self._start_server(server_args)
        except BaseException:
            self.close()
            raise

    # --- starting
    def _plan(self, policy_ports, plain_ports, server_tls, offer_starttls):
        self.sections, self.protocols, self.server_modes, self.ports = {}, {}, {}, {}
        for name, v in list(policy_ports.items()) + [(k, {"protocol": p}) for k, p in plain_ports.items()]:
            sec = _section(v)
            self.ports[name] = free_port(self.ipv6)
            self.protocols[name] = sec["protocol"]
            if name in policy_ports:
                self.sections[name] = sec
            mode = "starttls" if offer_starttls else "plain"
            if sec.get("tls_by") == "daemon" and sec.get("tls") != "refuse":
                mode = "implicit" if sec.get("tls") == "implicit" else "starttls"
            self.server_modes[name] = server_tls.get(name, mode)

    def _format(self, text):
        values = dict(self.ports, cert=self.cert, key=self.key, tmp=self.tmp)
        return str(text).format_map(values) if isinstance(text, str) else text

    def _policy(self, extra):
        glob = {"certificate": self.cert, "private_key": self.key, "relay_socket": self.relay_socket}
        if self.run_as is not None:
            glob["user"] = self.run_as
        glob.update(extra.get("global", {}))
        sections = {"global": glob}
        for name, sec in self.sections.items():
            sections["port %d" % self.ports[name]] = sec
        for name, sec in extra.items():
            if name != "global":
                sections[self._format(name)] = sec
        return {name: {k: self._format(v) for k, v in sec.items() if v is not None}
                for name, sec in sections.items()}

    def env(self, **extra):
        """the environment tlspolicyd, the server and tlspolicyctl get"""
        env = dict(os.environ, TLSPOLICY_CONF=self.conf, TLSPOLICY_RUNDIR=self.rundir)
        env.pop("LD_PRELOAD", None)
        env.update(extra)
        return env

    def _spawn(self, cmd, env, log_path, stdin=subprocess.DEVNULL):
        log = open(log_path, "ab")
        self.logs.append(log)
        proc = subprocess.Popen(cmd, env=env, stdin=stdin, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
        self.procs.append(proc)
        return proc

    def _start_daemon(self, daemon_args):
        if not os.path.exists(DAEMON):
            raise SetupError("tlspolicyd not built: %s" % DAEMON)
        privileges = ["--insecure-run-as-root"] if self.run_as is None else []
        proc = self._spawn([DAEMON, "-f", *privileges, *daemon_args], self.env(),
                           self.daemon_log_path)
        self.daemon = proc
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise SetupError("tlspolicyd exited with %s before listening on %s; its log:\n%s"
                                 % (proc.returncode, self.relay_socket, self.log))
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect("\0" + self.relay_socket[1:])
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise SetupError("tlspolicyd not listening on %s after %d s; its log:\n%s"
                                 % (self.relay_socket, START_TIMEOUT, self.log))
            time.sleep(0.05)

    def _server_cmd(self, server_args):
        cmd = [sys.executable, MAILSERVER, "--record", self.record_path, "--maildir", self.maildir,
               "--user", self.user, "--password", self.password]
        if self.cert:
            cmd += ["--tls-cert", self.cert, "--tls-key", self.key]
        return cmd + list(server_args)

    def _server_env(self):
        env = self.env(**self.server_extra_env)
        return env if self.daemonless else preload_env(env)

    def _open_shim_log(self):
        path = os.path.join(self.tmp, "shim-syslog.sock")
        self.shim_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.shim_sock.bind(path)
        self.shim_sock.setblocking(False)
        self.server_extra_env["TLSPOLICY_SYSLOG_SOCKET"] = path

    def stop_daemon(self, sig=signal.SIGKILL):
        """signal tlspolicyd (SIGKILL: it dies at once, as in a crash) and
        wait for it to be gone; its relay socket goes with it"""
        self.daemon.send_signal(sig)
        try:
            self.daemon.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            stop_process(self.daemon)

    def start_daemon(self):
        """start tlspolicyd again (after stop_daemon), same policy and arguments"""
        self._start_daemon(self.daemon_args)

    def _start_server(self, server_args):
        self.server_args = list(server_args)
        for name in self.inetd:
            self._start_inetd(name)
        listen = [name for name in self.ports if name not in self.inetd]
        if not listen:
            return
        ready = os.path.join(self.tmp, "mailserver.ready")
        cmd = self._server_cmd(server_args) + ["--ready-file", ready]
        for name in listen:
            cmd += ["--" + self.protocols[name], "%d/%s" % (self.ports[name], self.server_modes[name])]
        if self.ipv6:
            cmd.append("--ipv6")
        proc = self._spawn(cmd, self._server_env(), self.server_log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(ready):
            if proc.poll() is not None:
                raise SetupError("mailserver.py exited with %s; its log:\n%s\ntlspolicyd's log:\n%s"
                                 % (proc.returncode, self.server_log, self.log))
            if time.monotonic() > deadline:
                raise SetupError("mailserver.py not ready after %d s; its log:\n%s"
                                 % (START_TIMEOUT, self.server_log))
            time.sleep(0.05)
        self.server_pid = proc.pid

    def _start_inetd(self, name):
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", self.ports[name]))
        lsock.listen(16)
        lsock.settimeout(0.1)
        t = threading.Thread(target=self._inetd_loop, args=(lsock, name), daemon=True)
        self.inetd_listeners.append((lsock, t))
        t.start()

    def _inetd_loop(self, lsock, name):
        """accept, and run one mailserver.py per connection with it on fd 0"""
        cmd = self._server_cmd(self.server_args) + [
            "--inetd", "%s/%s" % (self.protocols[name], self.server_modes[name])]
        while not self.closed:
            try:
                conn, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                self._spawn(cmd, self._server_env(), self.server_log_path, stdin=conn)

    # --- stopping
    def close(self):
        """close clients, stop every process (server first), remove the temp dir"""
        if self.closed:
            return
        self.closed = True
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception as e:
                print("harness: closing %s: %s" % (fn, e), file=sys.stderr)
        for lsock, t in self.inetd_listeners:
            t.join(2)
            lsock.close()
        if self.shim_sock is not None:
            self.shim_sock.close()
        for c in self.clients:
            try:
                # imaplib's close() is the IMAP CLOSE command; shutdown() drops the socket
                c.shutdown() if isinstance(c, imaplib.IMAP4) else c.close()
            except Exception:
                pass
        for proc in reversed(self.procs):
            stop_process(proc)
        for log in self.logs:
            log.close()
        self._check_sanitizers()
        if self in _live:
            _live.remove(self)
        if KEEP:
            print("harness: kept %s" % self.tmp, file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _check_sanitizers(self):
        """a sanitizer build's tlspolicyd reports errors and leaks in its log
        at exit: keep them for run.py, which fails the run if there are any"""
        log = self.log
        for marker in SANITIZER_MARKERS:
            at = log.find(marker)
            if at >= 0:
                sanitizer_reports.append("%s\n%s" % (self.tmp, log[max(0, at - 200):at + 3000]))
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def add_closer(self, fn):
        """fn() is called first when the Setup closes, also at exit and by
        run.py's watchdog (daemons.py stops its daemons there)"""
        self.closers.append(fn)

    def write_policy(self):
        """rewrite the policy file from self.policy_sections (edit it first)"""
        write_policy(self.conf, self.policy_sections)

    # --- what happened
    @staticmethod
    def _read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    @property
    def log(self):
        """tlspolicyd's stderr so far ("" when daemonless)"""
        return self._read(self.daemon_log_path)

    @property
    def server_log(self):
        return self._read(self.server_log_path)

    @property
    def record(self):
        """the server's record so far, as a list of dicts"""
        events = []
        for line in self._read(self.record_path).splitlines(keepends=True):
            if line.endswith("\n"):         # a line being written is left for later
                events.append(json.loads(line))
        return events

    def events(self, event=None, **match):
        """the record's events of that kind whose fields equal match"""
        return [e for e in self.record
                if (event is None or e["event"] == event) and all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, event=None, timeout=5, where=None, **match):
        """the first matching event, waiting up to timeout seconds for it;
        where: an extra predicate on the event"""
        deadline = time.monotonic() + timeout
        while True:
            hits = [e for e in self.events(event, **match) if where is None or where(e)]
            if hits:
                return hits[0]
            if time.monotonic() > deadline:
                raise AssertionError("no %s event matching %r within %s s; the record:\n%s"
                                     % (event, match, timeout, "\n".join(map(json.dumps, self.record[-40:]))))
            time.sleep(0.02)

    def wait_log(self, pattern, timeout=5):
        """the first match of pattern (a regex) in tlspolicyd's log, waiting
        up to timeout seconds for it to be written"""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no %r in tlspolicyd's log within %s s; the log:\n%s"
                                     % (pattern, timeout, self.log[-4000:]))
            time.sleep(0.02)

    def shim_log_lines(self):
        """what the shim logged so far (Setup(shim_log=True)), one str each,
        with the syslog priority prefix ("<19>tlspolicy: ...")"""
        while True:
            try:
                self.shim_messages.append(self.shim_sock.recv(4096).decode(errors="replace"))
            except BlockingIOError:
                return list(self.shim_messages)

    def wait_shim_log(self, pattern, timeout=5):
        """the first match of pattern (a regex) in a shim log line"""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.shim_log_lines():
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() > deadline:
                raise AssertionError("the shim logged no %r within %s s; it logged:\n%s"
                                     % (pattern, timeout, "\n".join(self.shim_messages)))
            time.sleep(0.02)

    def connection(self, client, timeout=5, since=None):
        """the server's "connect" event for the connection of a client (a
        Raw, a socket, or its (address, port)): the one whose getpeername
        is the client's own address, so what the server saw of that very
        connection can be checked (lines(conn=...), "close" events).
        since: a time.time() from before the client connected (a Raw knows
        its own), so that an older connection from the same client port,
        which the kernel may hand out again at once, does not count."""
        if isinstance(client, Raw):
            since = client.opened if since is None else since
            client = client.local
        elif hasattr(client, "getsockname"):
            client = client.getsockname()
        want = [client[0], client[1]]
        return self.wait_for("connect", timeout=timeout, where=lambda e: e.get("getpeername") == want
                             and (since is None or e["time"] >= since))

    def lines(self, proto=None, conn=None):
        """the command lines the server received (without their line end)"""
        return [e["data"].rstrip("\r\n") for e in self.events("line", **{k: v for k, v in
                (("proto", proto), ("conn", conn)) if v is not None}) if not e.get("body")]

    def messages(self):
        """the stored messages' bytes, oldest first"""
        names = sorted(n for n in os.listdir(self.maildir) if not n.startswith("."))
        out = []
        for n in names:
            with open(os.path.join(self.maildir, n), "rb") as f:
                out.append(f.read())
        return out

    # --- clients
    def port(self, p):
        return self.ports[p] if isinstance(p, str) else p

    @property
    def ssl_context(self):
        """a client context trusting only the generated certificate"""
        ctx = ssl.create_default_context(cafile=self.cert or test_cert()[0])
        return ctx

    def _keep(self, client):
        self.clients.append(client)
        return client

    def smtp(self, port, addr="127.0.0.1", timeout=CLIENT_TIMEOUT, source=None):
        return self._keep(SMTP(self.port(port), addr, self.ssl_context, timeout, source))

    def smtp_ssl(self, port, addr="127.0.0.1", timeout=CLIENT_TIMEOUT, source=None):
        return self._keep(SMTP_SSL(self.port(port), addr, self.ssl_context, timeout, source))

    def imap(self, port, addr="127.0.0.1", timeout=CLIENT_TIMEOUT, source=None):
        return self._keep(IMAP4(self.port(port), addr, self.ssl_context, timeout, source))

    def imap_ssl(self, port, addr="127.0.0.1", timeout=CLIENT_TIMEOUT, source=None):
        return self._keep(IMAP4_SSL(self.port(port), addr, self.ssl_context, timeout, source))

    def pop3(self, port, addr="127.0.0.1", timeout=CLIENT_TIMEOUT, source=None):
        return self._keep(POP3(self.port(port), addr, self.ssl_context, timeout, source))

    def pop3_ssl(self, port, addr="127.0.0.1", timeout=CLIENT_TIMEOUT, source=None):
        return self._keep(POP3_SSL(self.port(port), addr, self.ssl_context, timeout, source))

    def raw(self, port, addr="127.0.0.1", tls=False, timeout=CLIENT_TIMEOUT, source=None):
        """a connected Raw socket; tls=True does the handshake first (for "localhost");
        source: the local address to connect from (e.g. 127.0.0.2, not 127.0.0.1)"""
        opened = time.time()
        r = Raw(_connect(addr, self.port(port), timeout, source), self.ssl_context, opened)
        if tls:
            r.starttls()
        return self._keep(r)

    def run(self, cmd, input=None, timeout=RUN_TIMEOUT, env=None):
        """run(cmd) with the test environment (TLSPOLICY_CONF, TLSPOLICY_RUNDIR)"""
        return run(cmd, input=input, timeout=timeout, env=env or self.env())

    def ctl(self, *args, timeout=RUN_TIMEOUT):
        """tlspolicyctl ARGS against this Setup's policy and run dir"""
        return self.run([CTL, *args], timeout=timeout)

    def reload(self):
        """tlspolicyctl reload; SetupError if it fails"""
        rc, out, err = self.ctl("reload")
        if rc != 0:
            raise SetupError("tlspolicyctl reload failed (%d):\n%s%s" % (rc, out, err))
        return out


# --- a TestCase with a per-test time limit --------------------------------------

class TestTimeout(AssertionError):
    pass


class TestCase(unittest.TestCase):
    """unittest.TestCase whose every test (setUp to tearDown) ends within
    `timeout` seconds: SIGALRM raises TestTimeout in it."""

    timeout = 60

    def run(self, result=None):
        def expire(signum, frame):
            raise TestTimeout("%s: over its %d s time limit" % (self.id(), self.timeout))
        old = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            return super().run(result)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
