#!/usr/bin/env python3
"""demo.py - make demo: the module enforcing the shipped policy, shown live

On loopback only, in a temp dir: a self-signed certificate, the shipped
policy/tlspolicy.conf unchanged plus a drop-in that maps its rules onto
free high ports (and points at the certificate and a private relay socket),
tlspolicyd in the foreground, and the plaintext test mail server preloaded
with tlspolicy.so.  Then real clients (smtplib, imaplib, Python's ssl, and
tp-tlsclient for the offers OpenSSL no longer makes) walk through what the
policy promises, and each step says in plain words what happened.  Exit 0
when every step turned out as the policy says, 1 otherwise.  Everything it
starts is stopped at the end.

    demo.py BUILDDIR SRCDIR
"""

import imaplib
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import warnings

BUILDDIR, SRCDIR = (os.path.abspath(a) for a in (sys.argv[1:3] if len(sys.argv) >= 3 else (".", ".")))
CTL = os.path.join(BUILDDIR, "cli", "tlspolicyctl")
DAEMON = os.path.join(BUILDDIR, "module", "tlspolicyd")
SHIM = os.path.join(BUILDDIR, "module", ".libs", "tlspolicy.so")
TLSCLIENT = os.path.join(BUILDDIR, "tests", "tp-tlsclient")
SERVER = os.path.join(SRCDIR, "tests", "server", "mailserver.py")
POLICY = os.path.join(SRCDIR, "policy", "tlspolicy.conf")

USER, PASSWORD = "alice", "demo-secret-42"
failures = []


def say(text=""):
    print(text, flush=True)


def step(title):
    say("\n== %s" % title)


def check(ok, good, bad):
    """print the outcome of one promise of the policy; remember a broken one"""
    say(("   OK: " if ok else "   NOT AS EXPECTED: ") + (good if ok else bad))
    if not ok:
        failures.append(bad)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(tmp):
    cert, key = os.path.join(tmp, "demo.pem"), os.path.join(tmp, "demo.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                    "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert, key


def demo_user():
    """(name, made): the user tlspolicyd runs as.  As root, a system user of
    the demo's own, made now and removed at the end (tlspolicyd never handles
    a connection as root); otherwise the caller, whom tlspolicyd stays"""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name, False
    name = "tpdemo%d" % os.getpid()
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--shell", "/usr/sbin/nologin", name], check=True)
    return name, True


def write_policy(tmp, ports, cert, key, user):
    """the shipped policy as is, plus a drop-in for the demo's high ports"""
    conf = os.path.join(tmp, "tlspolicy.conf")
    shutil.copy(POLICY, conf)
    os.makedirs(os.path.join(tmp, "tlspolicy.d"))
    rules = {"submission": ("smtp", "starttls"), "submissions": ("smtp", "implicit"),
             "imaps": ("imap", "implicit"), "imap": ("imap", "starttls")}
    with open(os.path.join(tmp, "tlspolicy.d", "50-demo.conf"), "w") as f:
        f.write("; the demo: the shipped rules on free high ports, a generated certificate\n"
                "[global]\ncertificate = %s\nprivate_key = %s\nrelay_socket = @tlspolicy-demo-%d\n"
                "user = %s\n" % (cert, key, os.getpid(), user))
        for name, port in ports.items():
            proto, tls = rules[name]
            f.write("\n; like the shipped %s port\n[port %d]\nprotocol = %s\ntls = %s\n"
                    % (name, port, proto, tls))
    return conf


class Demo:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tlspolicy-demo-")
        self.procs = []
        self.ports = {n: free_port() for n in ("submission", "submissions", "imap", "imaps")}
        self.cert, self.key = make_cert(self.tmp)
        self.user, self.made_user = demo_user()
        self.conf = write_policy(self.tmp, self.ports, self.cert, self.key, self.user)
        self.record = os.path.join(self.tmp, "received.jsonl")
        self.env = dict(os.environ, TLSPOLICY_CONF=self.conf,
                        TLSPOLICY_RUNDIR=os.path.join(self.tmp, "run"))
        self.env.pop("LD_PRELOAD", None)
        self.daemon_log = os.path.join(self.tmp, "tlspolicyd.log")

    def start(self):
        log = open(self.daemon_log, "wb")
        self.procs.append(subprocess.Popen([DAEMON, "-f"], env=self.env, stdout=log, stderr=log,
                                           start_new_session=True))
        ready = os.path.join(self.tmp, "ready")
        env = dict(self.env, LD_PRELOAD=SHIM)
        cmd = [sys.executable, SERVER, "--record", self.record, "--ready-file", ready,
               "--maildir", os.path.join(self.tmp, "maildir"), "--user", USER, "--password", PASSWORD,
               "--smtp", str(self.ports["submission"]), "--smtp", str(self.ports["submissions"]),
               "--imap", str(self.ports["imap"]), "--imap", str(self.ports["imaps"])]
        self.procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                           stderr=open(os.path.join(self.tmp, "server.log"), "wb"),
                                           start_new_session=True))
        deadline = time.monotonic() + 10
        while not os.path.exists(ready) or "action=start socket" not in self.log():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError("tlspolicyd or the mail server did not start; tlspolicyd said:\n"
                                   + self.log())
            time.sleep(0.05)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.made_user:
            subprocess.run(["userdel", self.user], check=False)
            self.made_user = False

    def log(self):
        with open(self.daemon_log, errors="replace") as f:
            return f.read()

    def received(self):
        with open(self.record, errors="replace") as f:
            return f.read()

    def context(self):
        return ssl.create_default_context(cafile=self.cert)


def show_reply(code, text):
    say("   server: %d %s" % (code, text.decode(errors="replace").replace("\n", " | ")))


def step_policy(d):
    step("1. The policy: the shipped hardened default, plus a drop-in moving its rules to high ports")
    for name, port in d.ports.items():
        say("   %-12s -> 127.0.0.1:%d" % (name, port))
    say("   tlspolicyd runs as %s%s; the shim hands connections to nobody else" %
        (d.user, " (a system user made for the demo)" if d.made_user else ""))
    r = subprocess.run([CTL, "validate", "--strict", "-c", d.conf], capture_output=True, text=True)
    say("   $ tlspolicyctl validate --strict\n   " + (r.stdout + r.stderr).strip().replace("\n", "\n   "))
    check(r.returncode == 0, "the policy is valid", "tlspolicyctl validate failed")


def step_submission(d):
    port = d.ports["submission"]
    step("2. Submission (STARTTLS required) on port %d, with Python's smtplib" % port)
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    code, text = c.ehlo("demo.client")
    show_reply(code, text)
    check(b"STARTTLS" in text and b"AUTH" not in text,
          "before TLS the server offers STARTTLS and hides AUTH",
          "the EHLO reply before TLS still offers AUTH or lacks STARTTLS")
    say("   client: AUTH PLAIN <alice's password>   (a careless client, before STARTTLS)")
    code, text = c.docmd("AUTH", "PLAIN AGFsaWNlAGRlbW8tc2VjcmV0LTQy")
    show_reply(code, text)
    check(code == 530, "refused with 530: the password was not accepted in clear",
          "AUTH before TLS was not refused with 530")
    c.starttls(context=d.context())
    say("   client: STARTTLS, then TLS: %s %s" % (c.sock.version(), c.sock.cipher()[0]))
    code, text = c.ehlo("demo.client")
    check(b"AUTH" in text and b"STARTTLS" not in text,
          "inside TLS the server offers AUTH and no longer STARTTLS",
          "the EHLO reply inside TLS is wrong")
    # the server has answered the EHLO after the refusal: had the AUTH line
    # been forwarded, its record would show it by now
    check("AGFsaWNlAGRlbW8tc2VjcmV0LTQy" not in d.received(),
          "the mail server's record shows the refused AUTH line never reached it",
          "the refused password reached the mail server")
    code, text = c.login(USER, PASSWORD)
    show_reply(code, text)
    check(code == 235, "inside TLS the same login is accepted", "login inside TLS failed")
    c.sendmail("alice@demo.test", ["bob@demo.test"],
               "From: alice@demo.test\r\nTo: bob@demo.test\r\nSubject: hello through tlspolicy\r\n\r\n"
               "This message crossed the wire encrypted only.\r\n")
    c.quit()
    say("   the message was submitted")


def step_implicit(d):
    port = d.ports["submissions"]
    step("3. Submissions (implicit TLS) on port %d: TLS from the first byte" % port)
    c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=d.context())
    say("   TLS: %s %s" % (c.sock.version(), c.sock.cipher()[0]))
    code, text = c.ehlo("demo.client")
    check(b"AUTH" in text, "the client is inside TLS at once and may log in", "no AUTH on the implicit port")
    c.login(USER, PASSWORD)
    c.quit()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"EHLO plaintext.client\r\n")
    s.settimeout(5)
    try:
        data = s.recv(100)
    except OSError:
        data = b""
    s.close()
    check(data == b"", "a client speaking plaintext there gets no reply: the connection is closed",
          "a plaintext client got an answer on the implicit port: %r" % data)

    port = d.ports["imaps"]
    step("4. IMAPS (implicit TLS) on port %d, with Python's imaplib: fetch the message" % port)
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=d.context(), timeout=10)
    say("   TLS: %s %s" % (m.sock.version(), m.sock.cipher()[0]))
    m.login(USER, PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY[HEADER.FIELDS (SUBJECT)])")
    subject = data[0][1].decode(errors="replace").strip() if data and data[0] else ""
    say("   fetched: %s" % subject)
    m.logout()
    check("hello through tlspolicy" in subject, "the message submitted in step 2 came back over TLS",
          "the message could not be fetched over IMAPS")

    port = d.ports["imap"]
    step("5. IMAP (STARTTLS required) on port %d: LOGIN before STARTTLS" % port)
    m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    say("   capabilities before TLS: %s" % " ".join(m.capabilities))
    try:
        m.login(USER, PASSWORD)
        refused = ""
    except imaplib.IMAP4.error as e:
        refused = str(e)
    say("   server: NO %s" % refused)
    check("PRIVACYREQUIRED" in refused, "LOGIN in clear is refused; the password never reaches the server",
          "LOGIN in clear was not refused")
    m.shutdown()


def step_refusals(d):
    port = d.ports["submissions"]
    step("6. Clients the policy refuses: TLS 1.0, TLS 1.1, and a client offering only RC4")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s) as t:
                outcome = "handshake ok: " + t.version()
    except (ssl.SSLError, OSError) as e:
        outcome = "handshake failed: %s" % (getattr(e, "reason", None) or e)
    say("   TLS 1.0 client (Python ssl) on port %d: %s" % (port, outcome))
    check(outcome.startswith("handshake failed"), "TLS 1.0 is refused (the floor is TLS 1.2, RFC 8996)",
          "a TLS 1.0 handshake succeeded")
    for what, args in (("TLS 1.1 client", ["--version", "1.1"]),
                       ("RC4-only client", ["--cipher", "ECDHE-RSA-RC4-SHA:ECDHE-ECDSA-RC4-SHA"])):
        for name, extra in (("submissions", []), ("submission", ["--starttls", "smtp"])):
            r = subprocess.run([TLSCLIENT] + extra + args + ["127.0.0.1", str(d.ports[name])],
                               capture_output=True, text=True, timeout=30)
            say("   %s (wolfSSL) on port %d%s: %s" % (what, d.ports[name], " after STARTTLS" if extra else "",
                                                       r.stdout.strip()))
            check(r.returncode == 1, "refused", "%s was not refused on port %d" % (what, d.ports[name]))


def step_probe(d):
    step("7. The audit from outside: tlspolicyctl probe checks each port against the policy")
    for name in ("submission", "submissions", "imap", "imaps"):
        port = d.ports[name]
        r = subprocess.run([CTL, "probe", "-c", d.conf, "--cafile", d.cert, "--servername", "localhost",
                            "--json", "127.0.0.1:%d" % port], capture_output=True, text=True, timeout=120)
        try:
            checks = json.loads(r.stdout)["checks"]
        except (ValueError, KeyError):
            checks = []
        counts = {st: sum(1 for c in checks if c["status"] == st) for st in ("PASS", "WARN", "FAIL")}
        say("   $ tlspolicyctl probe 127.0.0.1:%d   -> %d PASS, %d WARN, %d FAIL (exit %d)"
            % (port, counts["PASS"], counts["WARN"], counts["FAIL"], r.returncode))
        for c in checks:
            if c["status"] != "PASS":
                say("     %s %s: %s" % (c["status"], c["id"], c["detail"]))
        check(r.returncode == 0 and counts["FAIL"] == 0 and counts["PASS"] > 0,
              "%s port %d complies with the policy" % (name, port),
              "probe found port %d not compliant: %s" % (port, (r.stdout + r.stderr).strip()[:400]))


def running_uid(pid):
    """the real uid of a running process, from /proc"""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def step_log(d):
    uid = running_uid(d.procs[0].pid)
    check(uid == pwd.getpwnam(d.user).pw_uid,
          "tlspolicyd ran every connection as %s (uid %d), not as root" % (d.user, uid),
          "tlspolicyd runs as uid %s, not as %s" % (uid, d.user))
    step("8. What tlspolicyd logged (syslog, facility mail, when not run with -f)")
    for line in d.log().splitlines():
        if "action=relay" not in line and "action=end" not in line:
            say("   " + line)


def main():
    d = Demo()
    try:
        step_policy(d)
        d.start()
        step_submission(d)
        step_implicit(d)
        step_refusals(d)
        step_probe(d)
        step_log(d)
    finally:
        d.stop()
    if failures:
        say("\nThe demo saw %d thing(s) not as the policy says:" % len(failures))
        for f in failures:
            say("  - " + f)
        return 1
    say("\nEvery step behaved as the policy says.  Next: tlspolicyctl explain 587, man tlspolicy.conf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
