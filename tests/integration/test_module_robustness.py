"""test_module_robustness.py - clients that do it wrong, and a daemon that is gone

- a TLS ClientHello on a STARTTLS port, plaintext on an implicit-TLS port:
  closed, logged, nothing reaches the daemon (and no plaintext greeting
  leaks on an implicit port);
- over-long input before TLS: the protocol's error reply, the close, and
  tlspolicyd reads a bounded amount of it;
- silent clients (nothing at all, or STARTTLS and then no handshake, or a
  handshake that stalls): closed after handshake_timeout;
- tlspolicyd down: fail closed (the shim drops the connection, logs it,
  the daemon's accept() gets ECONNABORTED and its loop goes on), and
  service resumes when tlspolicyd is back, on a listener and on the inetd
  path;
- 200 concurrent full sessions, half STARTTLS, half implicit TLS.
"""

import errno
import re
import socket
import ssl
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
                r = s.raw(name)
                self.assertEqual(r.read_all(), b"", "no plaintext greeting, nothing at all")
                port = s.ports[name]
                s.wait_shim_log(r"^<\d+>tlspolicy: port=%d action=close reason=tlspolicyd-unreachable "
                                r'error="Connection refused"$' % port)
                e = s.wait_for("accept_error", port=port)
                self.assertEqual(e["errno"], errno.ECONNABORTED, "daemons retry accept() on it")
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
        try:
            if i % 2:
                c = harness.SMTP_SSL(self.s.ports["smtps"], "127.0.0.1", self.s.ssl_context, timeout=60)
            else:
                c = harness.SMTP(self.s.ports["submission"], "127.0.0.1", self.s.ssl_context, timeout=60)
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


if __name__ == "__main__":
    import unittest
    unittest.main()
