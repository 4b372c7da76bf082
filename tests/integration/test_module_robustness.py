"""test_module_robustness.py - clients that do it wrong, and a daemon that is gone

- a TLS ClientHello on a STARTTLS port, plaintext on an implicit-TLS port:
  closed, logged, nothing reaches the daemon (and no plaintext greeting
  leaks on an implicit port);
- over-long input before TLS: the protocol's error reply, the close, and
  tlspolicyd reads a bounded amount of it;
- silent clients (nothing at all, or STARTTLS and then no handshake, or a
  handshake that stalls): closed after handshake_timeout;
- tlspolicyd down: fail closed (the shim drops the connection, logs it,
  the daemon's accept() gets ECONNABORTED and its loop goes on) and fast
  (at once when nobody listens, within the hand-off's bound when
  tlspolicyd hangs), and service resumes when tlspolicyd is back, on a
  listener and on the inetd path;
- 200 concurrent full sessions, half STARTTLS, half implicit TLS;
- the hand-off under the host's signals: a forking server that gets
  SIGCHLD while it accepts loses none of 300 back-to-back sessions;
- an inetd service whose stderr is the client's socket: on an implicit-TLS
  port nothing it writes there reaches the client in plaintext, nor when
  its descriptor table is too full for the shim to copy or relay it;
- a daemon out of descriptors at its first accept after a reload that
  made the port managed: refused, not served under the old generation,
  and the new generation followed once it has descriptors again;
- tlspolicyd's relay socket: a silent allowed peer delays nobody, a
  message with other than two descriptors is refused and every descriptor
  it brought closed, and out of descriptors it refuses at once, does not
  spin and keeps its listener.
"""

import array
import errno
import os
import re
import resource
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import harness
from modcommon import (IMAP_GO_TLS, IMAP_TOO_LONG, POP3_GREETING, POP3_TOO_LONG, SMTP_GO_TLS,
                       SMTP_GREETING, SMTP_TOO_LONG, ModuleCase, message, unique)

TIMEOUT = 2             # handshake_timeout of the ports of the silent-client tests
# tlspolicyd checks its deadlines once a second, at whole seconds: a
# connection is closed between TIMEOUT and TIMEOUT + 2 s after its start,
# and a loaded machine may take a little longer
TIMEOUT_MARGIN = 3


def client_hello():
    """the first flight of a real TLS client (Python's ssl), as bytes"""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16", hello[:16]
    return hello


class WrongClientTest(ModuleCase):
    ports = {"submission": ("smtp", "starttls"), "imap": ("imap", "starttls"),
             "pop3": ("pop3", "starttls"), "mx": ("smtp", "opportunistic"),
             "smtps": ("smtp", "implicit"), "imaps": ("imap", "implicit"),
             "pop3s": ("pop3", "implicit")}

    def test_tls_handshake_on_starttls_port(self):
        """a client set to implicit TLS (SSL/TLS) on a STARTTLS port"""
        for name in ("submission", "imap", "pop3", "mx"):
            with self.subTest(port=name):
                r = self.s.raw(name)
                with self.assertRaises((ssl.SSLError, OSError)):
                    r.starttls()        # ClientHello at once, before the greeting is read
                r.close()
                self.assertServerGot(r, [])
                self.log_for(r, "action=refuse reason=tls-on-starttls-port")

    def test_tls_handshake_after_greeting_on_starttls_port(self):
        greetings = {"submission": SMTP_GREETING, "pop3": POP3_GREETING}
        for name, greeting in greetings.items():
            with self.subTest(port=name):
                r = self.s.raw(name)
                self.assertEqual(r.read_line(), greeting)
                r.send(client_hello())
                self.assertEqual(r.read_all(), b"", "no ServerHello, no reply: the close")
                self.assertServerGot(r, [])
                self.log_for(r, "action=refuse reason=tls-on-starttls-port")

    def test_plaintext_on_implicit_port(self):
        said = {"smtps": "EHLO client.test", "imaps": "a LOGIN test secret", "pop3s": "USER test"}
        for name, line in said.items():
            with self.subTest(port=name):
                r = self.s.raw(name)
                r.sendline(line)
                # nothing in plaintext, not even the daemon's greeting
                self.assertEqual(r.read_all(), b"")
                self.assertServerGot(r, [])
                self.log_for(r, re.escape('action=refuse reason=plaintext-on-implicit-port '
                                             'hint="plaintext client on implicit-TLS port: '
                                             'client set to STARTTLS?"'))

    def test_half_closed_client_gets_every_reply(self):
        """a client that writes everything, shuts down its sending side and
        reads: the daemon gets all of it and its EOF, and every reply comes
        back, as without the relay (RFC 9293 3.6: a half-closed connection
        still carries data the other way)"""
        body = b"Subject: half-close\r\n\r\nHello.\r\n.\r\n"
        cases = [
            ("mx", b"EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@mail.test>\r\n"
                   b"DATA\r\n" + body + b"QUIT\r\n",       # the body before the 354: held, then sent
             re.compile(rb"^220 .*\r\n250-mail.test\r\n(250-.*\r\n)*250 8BITMIME\r\n250 2.1.0 Ok\r\n"
                        rb"250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                        rb"250 2.0.0 Ok: queued as \d+\r\n221 2.0.0 Bye\r\n$")),
            ("submission", b"EHLO client.test\r\nAUTH PLAIN AHRlc3QAc2VjcmV0\r\nQUIT\r\n",
             re.compile(rb"^220 .*\r\n250-mail.test\r\n(250-.*\r\n)*250 8BITMIME\r\n530 5.7.0 Must "
                        rb"issue a STARTTLS command first\r\n221 2.0.0 Bye\r\n$")),
            ("pop3", b"CAPA\r\nQUIT\r\n",
             re.compile(rb"^\+OK tlspolicy-test ready\r\n\+OK Capability list follows\r\n(.*\r\n)*"
                        rb"STLS\r\n\.\r\n\+OK Logging out\.\r\n$")),
            ("imap", b"a CAPABILITY\r\nb LOGOUT\r\n",
             re.compile(rb"^\* OK .*\r\n\* CAPABILITY .*\r\na OK Capability completed\.\r\n"
                        rb"\* BYE Logging out\r\nb OK Logout completed\.\r\n$")),
        ]
        for name, sent, reply in cases:
            with self.subTest(port=name):
                r = self.s.raw(name)
                r.send(sent)
                r.sock.shutdown(socket.SHUT_WR)
                self.assertRegex(r.read_all(), reply)
                self.finished(r)
        msg = [m for m in self.s.messages() if b"Subject: half-close\r\n" in m]
        self.assertEqual(msg, [b"Subject: half-close\r\n\r\nHello.\r\n"])

    def test_overlong_input_is_bounded(self):
        """1 MiB with no line end, before TLS: the error reply and the close,
        after tlspolicyd read no more than a few of its 16 KiB chunks"""
        for name, reply in (("submission", SMTP_TOO_LONG), ("imap", IMAP_TOO_LONG),
                            ("pop3", POP3_TOO_LONG)):
            with self.subTest(port=name):
                r = self.s.raw(name)
                r.read_line()
                r.sock.settimeout(5)
                try:
                    r.sock.sendall(b"x" * (1 << 20))
                except OSError:
                    pass            # reset by the close: expected
                got = r.read_all()
                self.assertIn(got, (reply, b""), "the reply, unless the reset overtook it")
                self.assertServerGot(r, [])
                self.log_for(r, "action=close reason=line-too-long")
                m = self.log_for(r, r"action=end bytes_in=(\d+)")
                self.assertLessEqual(int(m.group(1)), 64 * 1024)

    def test_overlong_line_reply_is_exact(self):
        for name, reply, line in (("submission", SMTP_TOO_LONG, "NOOP " + "y" * 600),
                                  ("imap", IMAP_TOO_LONG, "a NOOP " + "y" * 9000),
                                  ("pop3", POP3_TOO_LONG, "NOOP " + "y" * 9000)):
            with self.subTest(port=name):
                r = self.s.raw(name)
                r.read_line()
                r.sendline(line)
                self.assertEqual(r.read_all(), reply)
                self.assertServerGot(r, [])


class BigMessageTest(ModuleCase):
    """6 MB through TLS both ways: STARTTLS upload, IMAP and POP3 download
    (the relay's bounded buffers, wolfSSL's partial writes)"""

    ports = {"submission": ("smtp", "starttls"), "imap": ("imap", "starttls"),
             "imaps": ("imap", "implicit"), "pop3s": ("pop3", "implicit")}

    def test_big_message(self):
        subject = unique("big")
        body = b"".join(b"line %07d %s\r\n" % (i, b"x" * 60) for i in range(80000))
        msg = message(subject).replace(b"Hello.\r\n", body)
        c = self.s.smtp("submission", timeout=60)
        c.starttls()
        c.login("test", "secret")
        self.assertEqual(c.sendmail("a@client.test", ["x@elsewhere.example"], msg), {})
        c.quit()
        self.assertEqual(self.s.messages(), [msg])
        for name in ("imap", "imaps"):
            with self.subTest(port=name):
                c = self.s.imap(name, timeout=60) if name == "imap" else self.s.imap_ssl(name, timeout=60)
                if name == "imap":
                    c.starttls()
                c.login("test", "secret")
                c.select("INBOX")
                typ, data = c.fetch("1", "(BODY.PEEK[])")
                self.assertEqual(data[0][1], msg)
                c.logout()
        c = self.s.pop3_ssl("pop3s", timeout=60)
        c.user("test")
        c.pass_("secret")
        _, lines, octets = c.retr(1)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", msg)
        c.quit()


class SilentClientTest(ModuleCase):
    ports = {name: {"protocol": proto, "tls": tls, "handshake_timeout": TIMEOUT}
             for name, proto, tls in (("submission", "smtp", "starttls"), ("smtps", "smtp", "implicit"),
                                      ("imap", "imap", "starttls"), ("pop3s", "pop3", "implicit"),
                                      ("mx", "smtp", "opportunistic"))}

    def test_silent_clients_are_closed(self):
        """all at once, so that the test takes one timeout, not five"""
        cases = []

        def started(name, note, r):
            cases.append((name, note, r, time.monotonic()))

        for name in ("smtps", "pop3s"):             # connect, then say nothing
            started(name, "silent", self.s.raw(name))
        r = self.s.raw("submission")                # the greeting, then silence
        started("submission", "silent after greeting", r)
        self.assertEqual(r.read_line(), SMTP_GREETING)
        for name, line, reply in (("submission", "STARTTLS", SMTP_GO_TLS),
                                  ("imap", "a STARTTLS", b"a " + IMAP_GO_TLS),
                                  ("mx", "STARTTLS", SMTP_GO_TLS)):
            r = self.s.raw(name)                    # STARTTLS, then no handshake
            started(name, "no handshake after the upgrade", r)
            r.read_line()
            r.sendline(line)
            self.assertEqual(r.read_line(), reply)
        r = self.s.raw("smtps")                     # half a ClientHello, then silence
        started("smtps", "stalled handshake", r)
        r.send(client_hello()[:20])

        for name, note, r, start in cases:
            with self.subTest(port=name, case=note):
                if not r.closed(TIMEOUT + TIMEOUT_MARGIN + 1):
                    self.fail("still open after %s s" % (time.monotonic() - start))
                took = time.monotonic() - start
                self.assertGreaterEqual(took, TIMEOUT - 1, "closed before its time")
                self.assertLessEqual(took, TIMEOUT + TIMEOUT_MARGIN)
                self.assertEqual(r.buf, b"", "nothing more was said")
                self.log_for(r, "action=close reason=handshake-timeout")
                self.assertServerGot(r, [])

    def test_a_client_that_finishes_in_time_stays(self):
        r = self.s.raw("smtps", tls=True)
        self.assertEqual(r.read_line(), SMTP_GREETING)
        time.sleep(TIMEOUT + TIMEOUT_MARGIN)        # the timeout is for the handshake only
        r.sendline("NOOP")
        self.assertEqual(r.read_line(), b"250 2.0.0 Ok\r\n")


class DaemonDownTest(harness.TestCase):
    """tlspolicyd killed: fail closed; restarted: service resumes"""

    timeout = 60
    ports = {"submission": ("smtp", "starttls"), "imaps": ("imap", "implicit")}

    def setUp(self):
        harness.require_module()
        self.s = harness.Setup(self.ports, shim_log=True)
        self.addCleanup(self.s.close)

    def test_listener(self):
        s = self.s
        s.stop_daemon()
        for name in ("submission", "imaps"):
            with self.subTest(port=name):
                started = time.time()
                r = s.raw(name)
                self.assertEqual(r.read_all(), b"", "no plaintext greeting, nothing at all")
                port = s.ports[name]
                s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=close reason=tlspolicyd-unreachable "
                                r'error="Connection refused"$' % port)
                e = s.wait_for("accept_error", port=port)
                self.assertEqual(e["errno"], errno.ECONNABORTED, "daemons retry accept() on it")
                # nobody listens on the name: ECONNREFUSED at once, no wait
                self.assertLess(e["time"] - started, 0.5, "accept() failed fast")
        self.assertEqual(s.events("connect"), [], "the daemon never got a connection")
        self.assertEqual(s.events("line"), [])

        s.start_daemon()                # the same listeners, accept loops still running
        c = s.smtp("submission")
        c.starttls()
        self.assertEqual(c.login("test", "secret")[0], 235)
        c.quit()
        c = s.imap_ssl("imaps")
        self.assertEqual(c.login("test", "secret")[0], "OK")
        c.logout()

    def test_hung_tlspolicyd_holds_accept_for_a_bounded_time(self):
        """tlspolicyd stopped (SIGSTOP) but still listening: the kernel queues
        the hand-off, nobody answers; the daemon's accept() gets ECONNABORTED
        after the hand-off's bound (TP_HANDOFF_TIMEOUT_MS, 1 s), not later"""
        s = self.s
        os.kill(s.daemon.pid, signal.SIGSTOP)
        try:
            started = time.time()
            r = s.raw("submission")
            e = s.wait_for("accept_error", port=s.ports["submission"], timeout=5)
            took = e["time"] - started
            s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=close reason=tlspolicyd-timeout "
                            r"after_ms=1000 interrupted=0 " % s.ports["submission"])
        finally:
            os.kill(s.daemon.pid, signal.SIGCONT)
        self.assertEqual(e["errno"], errno.ECONNABORTED)
        self.assertGreaterEqual(took, 0.9, "it did wait for tlspolicyd, a little")
        self.assertLess(took, 2.0, "but no longer than its bound")
        self.assertEqual(r.read_all(), b"", "never served in plaintext")
        self.assertEqual(s.events("connect"), [])
        c = s.smtp("submission")        # tlspolicyd going again: served
        c.starttls()
        self.assertEqual(c.login("test", "secret")[0], 235)
        c.quit()

    def test_inetd(self):
        s = harness.Setup({"inetd": ("smtp", "starttls")}, inetd=("inetd",), shim_log=True)
        self.addCleanup(s.close)
        s.stop_daemon()
        r = s.raw("inetd")
        self.assertEqual(r.read_all(), b"")
        s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=close reason=tlspolicyd-unreachable"
                        % s.ports["inetd"])
        self.assertEqual(s.events("connect"), [])
        s.start_daemon()
        r = s.raw("inetd")
        self.assertEqual(r.read_line(), SMTP_GREETING)


class ConcurrencyTest(ModuleCase):
    timeout = 240
    ports = {"submission": ("smtp", "starttls"), "smtps": ("smtp", "implicit")}
    SESSIONS = 200

    def session(self, i, results):
        subject = "concurrent %d %s" % (i, unique("m"))
        # 200 clients, not one: a single address may hold at most
        # max_connections_per_client (50) at once (test_limits.py)
        source = "127.0.%d.%d" % (1 + i // 250, 1 + i % 250)
        try:
            if i % 2:
                c = harness.SMTP_SSL(self.s.ports["smtps"], "127.0.0.1", self.s.ssl_context, timeout=60,
                                     source=source)
            else:
                c = harness.SMTP(self.s.ports["submission"], "127.0.0.1", self.s.ssl_context, timeout=60,
                                 source=source)
                c.starttls()
            try:
                c.login("test", "secret")
                refused = c.sendmail("a@client.test", ["x@elsewhere.example"], message(subject))
                c.quit()
            finally:
                c.close()
            results[i] = ("ok", subject) if refused == {} else ("refused", refused)
        except Exception as e:      # noqa: BLE001 - reported below, per session
            results[i] = ("error", "%s: %s" % (type(e).__name__, e))

    def test_200_concurrent_sessions(self):
        results = {}
        threads = [threading.Thread(target=self.session, args=(i, results), daemon=True)
                   for i in range(self.SESSIONS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 180
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self.assertFalse([t for t in threads if t.is_alive()], "sessions still running after 180 s")
        failed = {i: r for i, r in results.items() if r[0] != "ok"}
        self.assertEqual(failed, {}, "every session delivers")
        self.assertEqual(len(results), self.SESSIONS)
        self.assertEqual(len(self.s.events("message")), self.SESSIONS)
        self.assertEqual(len(self.s.events("auth", ok=True)), self.SESSIONS)
        stored = self.s.messages()
        for _, subject in results.values():
            self.assertEqual(sum(1 for m in stored if ("Subject: %s\r\n" % subject).encode() in m), 1)
        self.assertEqual(len(re.findall(r"action=tls version=TLSv1\.3", self.s.log)), self.SESSIONS)


# --- the hand-off under the host's signals (issue 9.9) --------------------------

# a forking SMTP-ish server, as Exim is: one child per session, and a
# SIGCHLD handler in the parent (installed without SA_RESTART, as Python
# does), so a child that exits interrupts whatever the parent is in,
# accept() and the shim's hand-off inside it included
FORKING_SERVER = r'''
import os, signal, socketserver, sys
port, done = int(sys.argv[1]), sys.argv[2]
signal.signal(signal.SIGCHLD, lambda *a: None)
class Session(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 fork.test ESMTP forking\r\n")
        for line in self.rfile:
            if line.upper().startswith(b"QUIT"):
                self.wfile.write(b"221 2.0.0 Bye\r\n")
                break
            self.wfile.write(b"250 2.0.0 Ok\r\n")
        with open(done, "a") as f:
            f.write("%d\n" % os.getpid())
class Server(socketserver.ForkingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    block_on_close = False
    max_children = 1000
srv = Server(("127.0.0.1", port), Session)
print("ready", flush=True)
srv.serve_forever(poll_interval=0.05)
'''


class ForkingServerTest(harness.TestCase):
    timeout = 180
    SESSIONS = 300

    def test_sigchld_during_the_handoff_drops_nothing(self):
        s = harness.Setup({"fork": ("smtp", "opportunistic")}, server=False, shim_log=True)
        self.addCleanup(s.close)
        done = os.path.join(s.tmp, "sessions")
        srv = subprocess.Popen([sys.executable, "-c", FORKING_SERVER, str(s.ports["fork"]), done],
                               env=harness.preload_env(s.env(**s.server_extra_env)), stdout=subprocess.PIPE,
                               start_new_session=True)
        self.addCleanup(harness.stop_process, srv)
        self.assertEqual(srv.stdout.readline().strip(), b"ready")
        ok, failed = 0, []
        for i in range(self.SESSIONS):      # back to back: the last child exits as the next one connects
            try:
                r = harness.Raw(socket.create_connection(("127.0.0.1", s.ports["fork"]), 5))
                self.assertEqual(r.read_line(timeout=5), b"220 fork.test ESMTP forking\r\n")
                r.sendline("QUIT")
                self.assertEqual(r.read_line(timeout=5), b"221 2.0.0 Bye\r\n")
                r.close()
                ok += 1
            except (AssertionError, OSError) as e:
                failed.append("session %d: %s" % (i, e))
        closes = [l for l in s.shim_log_lines() if "action=close" in l]
        self.assertEqual(failed, [], "every session served; the shim said: %s" % closes[:5])
        self.assertEqual(ok, self.SESSIONS)
        deadline = time.monotonic() + 5
        while len(harness.Setup._read(done).split()) < self.SESSIONS and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(harness.Setup._read(done).split()), self.SESSIONS, "each in a child of its own")
        self.assertEqual(closes, [], "the shim refused nothing")
        self.assertEqual(len(re.findall(r"action=relay ", s.log)), self.SESSIONS)


# --- inetd with the socket on stderr (issue 9.10) -------------------------------

# what inetd starts, with the client's socket on 0, 1 and 2: a line to
# stderr first, as a daemon's diagnostics go, then a greeting
INETD_SERVICE = r'''
import os
os.write(2, b"PLAINTEXT-ON-STDERR diagnostic\r\n")
os.write(1, b"220 inetd.test ESMTP\r\n")
while os.read(0, 4096):
    os.write(1, b"221 2.0.0 Bye\r\n")
'''


class InetdStderrTest(harness.TestCase):
    timeout = 60

    def setUp(self):
        harness.require_module()
        self.s = harness.Setup({"smtps": ("smtp", "implicit")}, server=False, shim_log=True)
        self.addCleanup(self.s.close)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.s.ports["smtps"]))
        self.lsock.listen(8)
        self.addCleanup(self.lsock.close)

    def serve_one(self):
        """inetd: accept one connection, start the service on it as 0, 1 and 2"""
        conn, _ = self.lsock.accept()
        with conn:
            p = subprocess.Popen([sys.executable, "-c", INETD_SERVICE], stdin=conn, stdout=conn, stderr=conn,
                                 env=harness.preload_env(self.s.env(**self.s.server_extra_env)),
                                 start_new_session=True)
        self.addCleanup(harness.stop_process, p)
        return p

    def test_stderr_on_the_socket_never_reaches_the_client_in_plaintext(self):
        r = harness.Raw(socket.create_connection(("127.0.0.1", self.s.ports["smtps"]), 5))
        self.serve_one()
        self.assertEqual(r.read_for(1.5), b"", "on an implicit-TLS port, nothing before the handshake")
        r.close()

        r = harness.Raw(socket.create_connection(("127.0.0.1", self.s.ports["smtps"]), 5), self.s.ssl_context)
        self.serve_one()
        r.starttls()
        got = r.read_until(b"220 inetd.test ESMTP\r\n")
        self.assertIn(b"PLAINTEXT-ON-STDERR", got, "its stderr is the relayed socket: inside TLS")

    def test_refused_inherited_socket_leaves_nothing_open(self):
        self.s.stop_daemon()
        r = harness.Raw(socket.create_connection(("127.0.0.1", self.s.ports["smtps"]), 5))
        p = self.serve_one()
        self.assertEqual(r.read_all(), b"", "refused: no byte, not even from stderr")
        self.s.wait_shim_log(r"reason=tlspolicyd-unreachable")
        p.wait(5)

    def test_full_descriptor_table_never_serves_in_plaintext(self):
        """the service starts with RLIMIT_NOFILE so low that the shim can
        open nothing (no policy file, no copy of fd 0, no relay): the
        client's socket is shut down, not left to the service"""
        for limit in (4, 5, 6):
            with self.subTest(nofile=limit):
                r = harness.Raw(socket.create_connection(("127.0.0.1", self.s.ports["smtps"]), 5))
                conn, _ = self.lsock.accept()
                with conn:
                    p = subprocess.Popen(["/bin/sh", "-c", "echo 220 PLAINTEXT; echo 220 PLAINTEXT >&2"],
                                         stdin=conn, stdout=conn, stderr=conn,
                                         env=harness.preload_env(self.s.env(**self.s.server_extra_env)),
                                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                               (limit, limit)),
                                         start_new_session=True)
                self.addCleanup(harness.stop_process, p)
                p.wait(5)
                got = r.read_all()
                self.assertNotIn(b"PLAINTEXT", got, "nothing in plaintext on an implicit-TLS port")
                r.close()


# a shimmed server on 127.0.0.1:argv[1]; for each line on stdin it accepts
# one connection ("tight": with a single descriptor free, as a daemon out
# of descriptors) and writes a plaintext greeting on it
TIGHT_SERVER = r'''
import os, resource, socket, sys
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(8)
print("ready", flush=True)
def tight_accept():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(int(x) for x in os.listdir("/proc/self/fd")) + 16, hard))
    fill = []
    try:
        while True:
            fill.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    os.close(fill.pop())
    try:
        return ls.accept()[0]
    finally:
        for fd in fill:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
kept = []
for line in sys.stdin:
    try:
        c = tight_accept() if line.strip() == "tight" else ls.accept()[0]
    except OSError as e:
        print("refused %s" % e.errno, flush=True)
        continue
    c.sendall(b"220 PLAINTEXT\r\n")
    kept.append(c)
    print("accepted", flush=True)
'''


class DaemonOutOfDescriptorsTest(harness.TestCase):
    """a reload makes a port managed; the daemon's first accept after it has
    no descriptor left to read the new ports file with"""

    timeout = 60

    def test_a_new_generation_it_cannot_read_yet_is_not_ignored(self):
        harness.require_module()
        s = harness.Setup({"other": ("smtp", "implicit")}, plain_ports={"p": "smtp"}, server=False,
                          shim_log=True, publish=True)
        self.addCleanup(s.close)
        port = s.ports["p"]
        srv = subprocess.Popen([sys.executable, "-c", TIGHT_SERVER, str(port)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=harness.preload_env(s.env(**s.server_extra_env)),
                               start_new_session=True)
        self.addCleanup(harness.stop_process, srv)
        self.assertEqual(srv.stdout.readline(), b"ready\n")

        def connect(how):
            r = harness.Raw(socket.create_connection(("127.0.0.1", port), 5))
            self.addCleanup(r.close)
            srv.stdin.write(how.encode() + b"\n")
            srv.stdin.flush()
            return r, srv.stdout.readline().decode().strip()

        r, said = connect("accept")
        self.assertEqual((said, r.read_line()), ("accepted", b"220 PLAINTEXT\r\n"), "not managed yet")

        s.policy_sections["port %d" % port] = {"protocol": "smtp", "tls": "implicit"}
        s.write_policy()
        s.reload()
        r, said = connect("tight")
        self.assertNotIn(b"PLAINTEXT", r.read_for(1.0), "managed now: nothing in plaintext")
        self.assertEqual(said, "refused %d" % errno.ECONNABORTED, "the policy known is out of date: refused")
        r, said = connect("accept")
        self.assertEqual(said, "accepted")
        self.assertEqual(r.read_for(1.0), b"", "descriptors again: the new generation is followed")
        s.wait_log(r"port=%d .*mode=implicit" % port)


# --- tlspolicyd's relay socket (issues 9.11 and 9.12) -----------------------------

HANDOFF_MAGIC, HANDOFF_VERSION = 0x74706831, 2


def relay_connect(s):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect("\0" + s.relay_socket[1:])
    return c


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class RelaySocketTest(harness.TestCase):
    timeout = 60

    def setUp(self):
        harness.require_module()
        self.s = harness.Setup({"submission": ("smtp", "starttls")})
        self.addCleanup(self.s.close)

    def session(self):
        c = self.s.smtp("submission")
        c.starttls()
        self.assertEqual(c.login("test", "secret")[0], 235)
        c.quit()

    def test_silent_allowed_peers_delay_no_one(self):
        """root (allowed) connects and says nothing, three times: clients are
        served while those are still connected"""
        silent = [relay_connect(self.s) for _ in range(3)]
        for _ in range(3):
            self.session()
        for c in silent:
            c.setblocking(False)
            with self.assertRaises(BlockingIOError, msg="the silent peer is still connected"):
                c.recv(1, socket.MSG_PEEK)
        for c in silent:                # then dropped, at the deadline of its message
            c.settimeout(5)
            self.assertEqual(c.recv(16), b"")
            c.close()
        self.assertRegex(self.s.log, r"reason=no-message-in-time uid=0 pid=%d" % os.getpid())

    def tcp_pair(self):
        """a connected TCP socket, as the shim would hand over: (the accepted one, the client)"""
        with socket.socket() as l:
            l.bind(("127.0.0.1", 0))
            l.listen(1)
            client = socket.create_connection(l.getsockname(), 5)
            accepted, _ = l.accept()
        self.addCleanup(client.close)
        self.addCleanup(accepted.close)
        return accepted, client

    def relay_name_listener(self, peer, local):
        l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        def put(a):
            return b"\0" * 10 + b"\xff\xff" + socket.inet_aton(a[0]) + struct.pack("!H", a[1])
        l.bind(b"\0tlspolicy\x02" + bytes([socket.AF_INET]) + put(peer) + put(local) + os.urandom(16))
        l.listen(8)
        self.addCleanup(l.close)
        return l

    def test_messages_without_exactly_two_descriptors_are_refused_and_closed(self):
        s = self.s
        tcp, client = self.tcp_pair()
        listener = self.relay_name_listener(client.getsockname(), tcp.getsockname())
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)      # listening, not on a relay name
        other.bind(b"\0tlspolicy-test-not-a-relay-name-%d" % os.getpid())
        other.listen(1)
        self.addCleanup(other.close)
        rd, wr = os.pipe()
        self.addCleanup(os.close, rd)
        self.addCleanup(os.close, wr)
        rights = lambda *fds: (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))
        v2 = struct.pack("=IIII", HANDOFF_MAGIC, HANDOFF_VERSION, s.ports["submission"], 0)
        v1 = struct.pack("=IIII", HANDOFF_MAGIC, 1, s.ports["submission"], 0)
        cases = [
            ("no descriptor", v2, []),
            ("one", v2, [rights(tcp.fileno())]),
            ("three", v2, [rights(tcp.fileno(), listener.fileno(), rd)]),
            ("two and one more, in two control messages", v2, [rights(tcp.fileno(), listener.fileno()),
                                                               rights(wr)]),
            ("two pipes", v2, [rights(rd, wr)]),
            ("the listener first", v2, [rights(listener.fileno(), tcp.fileno())]),
            ("a listener not on a relay name", v2, [rights(tcp.fileno(), other.fileno())]),
            ("a hand-off of version 1", v1, [rights(tcp.fileno(), listener.fileno())]),
            ("half a message", v2[:8], [rights(tcp.fileno(), listener.fileno())]),
        ]
        pid = s.daemon.pid
        for name, msg, anc in cases:
            with self.subTest(case=name):
                before = open_fds(pid)
                c = relay_connect(s)
                c.sendmsg([msg], anc)
                magic, status = struct.unpack("=Ii", c.recv(8))
                self.assertEqual(c.recv(8), b"", "then tlspolicyd hangs up")
                c.close()
                self.assertEqual(magic, HANDOFF_MAGIC)
                self.assertEqual(status, errno.EPROTO, "refused")
                self.assertEqual(open_fds(pid), before, "every descriptor it brought is closed")
        self.assertEqual(len(re.findall(r"action=handoff-refused reason=bad-message uid=0 ", s.log)), len(cases))
        self.assertNotIn("action=relay", s.log, "none of them was relayed")
        self.session()                  # and tlspolicyd serves on


class DescriptorExhaustionTest(harness.TestCase):
    """tlspolicyd out of descriptors (RLIMIT_NOFILE lowered under it)"""

    timeout = 90

    def test_refuses_at_once_without_spinning_and_recovers(self):
        s = harness.Setup({"mx": ("smtp", "opportunistic")}, shim_log=True)
        self.addCleanup(s.close)
        pid = s.daemon.pid
        rc, out, err = harness.run(["prlimit", "--pid", str(pid), "--nofile=40:40"])
        self.assertEqual(rc, 0, err)
        idle = []
        for _ in range(40):                 # two descriptors each in tlspolicyd, until there are none
            r = s.raw("mx")
            got = r.read_for(0.5)
            if got != SMTP_GREETING:
                break
            idle.append(r)
        self.assertEqual(got, b"", "refused, nothing served")
        self.assertLess(len(idle), 40, "tlspolicyd did run out")
        s.wait_shim_log(r"action=close reason=tlspolicyd-refused error=\"Too many open files\"")

        def cpu():
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        used = cpu()
        for _ in range(10):                 # refused, each at once
            started = time.monotonic()
            r = s.raw("mx")
            self.assertEqual(r.read_all(timeout=3), b"")
            self.assertLess(time.monotonic() - started, 0.9, "refused at once, not at the shim's deadline")
            time.sleep(0.1)
        self.assertLess(cpu() - used, 0.5, "tlspolicyd did not spin")
        self.assertLessEqual(len(re.findall(r"reason=out-of-descriptors", s.log)), 3,
                             "logged once, then counted")
        for r in idle:
            r.close()
        time.sleep(0.5)
        r = s.raw("mx")                     # the listener was kept: served again
        self.assertEqual(r.read_line(), SMTP_GREETING)


if __name__ == "__main__":
    import unittest
    unittest.main()
