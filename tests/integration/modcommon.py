"""modcommon.py - what the test_module_*.py files share

The replies below are DESIGN.md's table "Protocol behaviour before TLS",
copied from there rather than from policy/replies.h, so that a change of
wording in the code shows up as a failing test against the contract.
The test mail server's own texts (greeting, capabilities, replies) are in
tests/server/mailserver.py.
"""

import base64
import re
import socket
import time
import uuid

import harness

# --- DESIGN.md: the replies the module makes itself
SMTP_NEED_TLS = b"530 5.7.0 Must issue a STARTTLS command first\r\n"
SMTP_GO_TLS = b"220 2.0.0 Ready to start TLS\r\n"
SMTP_TLS_ACTIVE = b"554 5.5.1 Error: TLS already active\r\n"
IMAP_NEED_TLS = b"NO [PRIVACYREQUIRED] Cleartext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
IMAP_GO_TLS = b"OK Begin TLS negotiation now.\r\n"
IMAP_TLS_ACTIVE = b"BAD TLS is already active.\r\n"
POP3_NEED_TLS = b"-ERR [AUTH] Cleartext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
POP3_GO_TLS = b"+OK Begin TLS negotiation now.\r\n"
POP3_TLS_ACTIVE = b"-ERR TLS already active.\r\n"

# protocol errors of the filters (module/filter_int.h; Postfix and Dovecot wording)
SMTP_TOO_LONG = b"500 5.5.2 Error: line too long\r\n"
IMAP_TOO_LONG = b"* BYE Line too long\r\n"
POP3_TOO_LONG = b"-ERR Line too long\r\n"

# DESIGN.md "Limits"
SMTP_LINE_MAX = 512
TEXT_LINE_MAX = 8192

# --- the test mail server's texts (tests/server/mailserver.py)
SMTP_GREETING = b"220 mail.test ESMTP tlspolicy-test\r\n"
POP3_GREETING = b"+OK tlspolicy-test ready\r\n"
IMAP_CAPS_PLAIN = b"IMAP4rev1 ID IDLE"       # the daemon's, minus AUTH=* SASL-IR LITERAL+
IMAP_CAPS_TLS = b"IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR LITERAL+ ID IDLE"

SMTP_REPLY = re.compile(rb"^\d{3} [^\r\n]*\r\n", re.M)        # the last line of a reply


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(user, password):
    """a SASL PLAIN response (RFC 4616), base64"""
    return b64(b"\0" + user.encode() + b"\0" + password.encode())


def message(subject, to="b@mail.test", body="Hello.\r\n"):
    return ("From: a@client.test\r\nTo: %s\r\nSubject: %s\r\n\r\n%s" % (to, subject, body)).encode()


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class ModuleCase(harness.TestCase):
    """one Setup (tlspolicyd + the shimmed server) per class: ports and
    setup_args are Setup's arguments"""

    timeout = 60
    ports = {}
    setup_args = {}

    @classmethod
    def setUpClass(cls):
        harness.require_module()
        cls.s = harness.Setup(cls.ports, **cls.setup_args)
        cls.addClassCleanup(cls.s.close)

    # --- what reached the daemon
    # client: a harness.Raw (it knows its address and when it connected),
    # or a (host, port) address with since, a time.time() from before it did
    def finished(self, client, timeout=5, since=None):
        """the server's conn id of a connection, once the server has seen it
        end (its "close" event): nothing more can arrive from it after that"""
        conn = self.s.connection(client, timeout, since)["conn"]
        self.s.wait_for("close", conn=conn, timeout=timeout)
        return conn

    def assertServerGot(self, client, lines, timeout=5):
        """after the connection ended: exactly these command lines reached the
        daemon on it (data lines and literals included, without line ends)"""
        conn = self.finished(client, timeout)
        got = [e["data"].rstrip("\r\n") for e in self.s.events("line", conn=conn)]
        self.assertEqual(got, lines, "what the daemon received on that connection")
        return conn

    def assertNeverSeen(self, *secrets):
        """none of the strings anywhere the daemon or tlspolicyd left a trace:
        the server's record, its log and tlspolicyd's log"""
        with open(self.s.record_path, encoding="utf-8", errors="replace") as f:
            record = f.read()
        for secret in secrets:
            self.assertNotIn(secret, record, "a refused credential reached the daemon")
            self.assertNotIn(secret, self.s.server_log)
            self.assertNotIn(secret, self.s.log, "tlspolicyd logged a credential")

    def log_for(self, client, pattern, timeout=5):
        """a line of tlspolicyd's log about this client's connection matching
        pattern: searched from the connection's "action=relay" line on (the
        latest from that address: the kernel may give a closed connection's
        port to a new one at once)"""
        who = r"^tlspolicy: port=\d+ client=%s mode=\S+ " % re.escape(logged_client(client))
        relay = re.compile(who + "action=relay", re.M)
        rx = re.compile(who + pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            log = self.s.log
            starts = [m.start() for m in relay.finditer(log)]
            m = rx.search(log, starts[-1]) if starts else None
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("tlspolicyd logged no %r for %s within %s s; the log:\n%s"
                                     % (pattern, logged_client(client), timeout, log[-4000:]))
            time.sleep(0.02)

    # --- clients
    def smtp_ehlo(self, port, name="client.test"):
        """a Raw SMTP connection past the greeting and EHLO; (raw, EHLO reply)"""
        r = self.s.raw(port)
        self.assertEqual(r.read_line(), SMTP_GREETING)
        r.sendline("EHLO " + name)
        return r, r.read_until(SMTP_REPLY)

    def imap_greeted(self, port, tls=False):
        r = self.s.raw(port, tls=tls)
        greeting = r.read_line()
        self.assertTrue(greeting.startswith(b"* OK "), greeting)
        return r

    def pop3_greeted(self, port, tls=False):
        r = self.s.raw(port, tls=tls)
        self.assertEqual(r.read_line(), POP3_GREETING)
        return r


def logged_client(client):
    """a client's address as tlspolicyd logs it: 127.0.0.1:PORT, [::1]:PORT"""
    addr = client.local if isinstance(client, harness.Raw) else client
    host, port = addr[0], addr[1]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def nodelay(raw):
    """every send a segment of its own (for the split-injection tests)"""
    raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return raw

