#!/usr/bin/env python3
"""mailserver.py - a small plaintext SMTP, IMAP and POP3 server for the tlspolicy tests

It stands in for a real mail daemon behind tlspolicy: the integration tests
preload tlspolicy.so into it and check, in the record it writes (--record,
JSON lines), exactly what reached the daemon.  Ordinary blocking sockets, one
thread per connection, and socket.accept(): the shim hooks accept/accept4 in
this very process, so nothing here may bypass them.

Listeners: --smtp/--imap/--pop3 PORT[/MODE], each as often as needed, on
127.0.0.1 (and ::1 with --ipv6, or every address with --listen-any); or --inetd PROTO serves the one connection
on fd 0 (the shim's inherited-socket path) and exits.  MODE is plain (no TLS), starttls (offers
STARTTLS/STLS and does it, for tls_by = daemon) or implicit (TLS from the first
byte); without one, a port is starttls if --offer-starttls is given, else
plain.  TLS needs --tls-cert and --tls-key.

Record events (one JSON object a line, flushed at once):
  connect  proto port mode conn peer (accept's address) getpeername getsockname
  line     proto conn data (the exact bytes, latin-1, with their line end);
           "body": true for DATA/BDAT content, "literal": true for IMAP literals
  auth     proto conn mech user ok
  message  proto conn file from rcpt size
  tls, discarded, close, accept_error, error
"""

import argparse
import base64
import binascii
import errno
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback

MAX_LINE = 64 * 1024            # longest command line (and IMAP literal line) read
MAX_MESSAGE = 10485760          # the SIZE advertised in EHLO
MAX_LITERAL = MAX_MESSAGE
IDLE_TIMEOUT = 300              # seconds a connection may stay silent
HOSTNAME = "mail.test"


class Closed(Exception):
    """the client closed the connection"""


class LineTooLong(Exception):
    """a line longer than MAX_LINE"""


class SaslAborted(Exception):
    """the client answered a SASL challenge with "*" """


class SaslBad(Exception):
    """a SASL response that does not decode, or an unknown mechanism"""


def addr(a):
    """a socket address as JSON: [ip, port], or a string for anything else"""
    if a is None:
        return None
    if isinstance(a, tuple) and len(a) >= 2:
        return [a[0], a[1]]
    return a.decode("latin-1") if isinstance(a, bytes) else str(a)


def sockaddr(fn):
    """getpeername/getsockname as JSON, or {"error": ...}"""
    try:
        return addr(fn())
    except OSError as e:
        return {"error": str(e)}


def crlf(data):
    """data with every line ending CRLF, as sent by IMAP and POP3"""
    return re.sub(rb"\r?\n", b"\r\n", data)


class Recorder:
    """Writes one JSON object per event to the record file, flushed at once."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "a", encoding="utf-8") if path else None

    def __call__(self, event, **fields):
        fields = {"event": event, **fields, "time": round(time.time(), 6)}
        line = json.dumps(fields) + "\n"
        with self.lock:
            if self.file:
                self.file.write(line)
                self.file.flush()


class Store:
    """The one mailbox, INBOX: one file per message in a directory.

    UIDs are given in file-name order the first time a file is seen, so
    they only grow; flags live in memory."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.uids = {}                  # file name -> uid
        self.next_uid = 1
        self.flags = {}                 # uid -> set of flags
        self.counter = itertools.count(1)

    def _scan(self):
        names = sorted(n for n in os.listdir(self.path) if not n.startswith("."))
        for n in names:
            if n not in self.uids:
                self.uids[n] = self.next_uid
                self.next_uid += 1
        for n in set(self.uids) - set(names):
            del self.uids[n]

    def list(self):
        """[(uid, file name)] in UID order"""
        with self.lock:
            self._scan()
            return sorted((u, n) for n, u in self.uids.items())

    def add(self, data):
        """store a message; returns its file name"""
        with self.lock:
            name = "%016d.%06d.%d.eml" % (time.time_ns() // 1000, next(self.counter), os.getpid())
            tmp = os.path.join(self.path, "." + name)
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(self.path, name))
            self._scan()
            return name

    def read(self, name):
        """a message with CRLF line ends; b"" if it was deleted meanwhile"""
        try:
            with open(os.path.join(self.path, name), "rb") as f:
                return crlf(f.read())
        except FileNotFoundError:
            return b""

    def mtime(self, name):
        try:
            return os.stat(os.path.join(self.path, name)).st_mtime
        except FileNotFoundError:
            return time.time()

    def delete(self, name):
        try:
            os.unlink(os.path.join(self.path, name))
        except FileNotFoundError:
            pass


class Conn:
    """One client connection: line reading, recording, SASL, STARTTLS."""

    proto = "?"
    CONT = "+ "                         # prefix of a SASL challenge
    ids = itertools.count(1)

    def __init__(self, srv, sock, peer, port, mode):
        self.srv, self.sock, self.peer, self.port, self.mode = srv, sock, peer, port, mode
        self.id = next(Conn.ids)
        self.buf = b""
        self.tls = False
        self.user = None

    def record(self, event, **fields):
        self.srv.record(event, proto=self.proto, conn=self.id, **fields)

    def line_event(self, data, **fields):
        self.record("line", data=data.decode("latin-1"), **fields)

    def send(self, data):
        self.sock.sendall(data.encode("latin-1", "replace") if isinstance(data, str) else data)

    def reply(self, *lines):
        self.send("".join(line + "\r\n" for line in lines))

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.buf += data

    def readline(self):
        """the next line with its line end; LineTooLong past MAX_LINE"""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                if i >= MAX_LINE:
                    raise LineTooLong()
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if len(self.buf) > MAX_LINE:
                raise LineTooLong()
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def can_starttls(self):
        return self.mode == "starttls" and not self.tls

    def start_tls(self):
        """server-side handshake; bytes the client pipelined before it are dropped
        (kept and executed with --insecure-keep-pipelined: CVE-2011-0411)"""
        if self.buf and not self.srv.opts.insecure_keep_pipelined:
            self.record("discarded", data=self.buf.decode("latin-1"))
            self.buf = b""
        self.sock = self.srv.tls_context.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.record("tls", version=self.sock.version(), cipher=self.sock.cipher()[0])

    def challenge(self, text):
        """send a SASL challenge, return the client's answer (stripped)"""
        self.reply(self.CONT + text)
        line = self.readline()
        self.line_event(line)
        answer = line.decode("latin-1").strip()
        if answer == "*":
            raise SaslAborted()
        return answer

    @staticmethod
    def b64(text):
        try:
            return b"" if text == "=" else base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SaslBad("invalid base64") from None

    def sasl(self, mech, initial):
        """PLAIN or LOGIN; returns whether the user logged in (self.user is set)"""
        mech = mech.upper()
        if mech == "PLAIN":
            raw = self.b64(initial if initial is not None else self.challenge(""))
            parts = raw.split(b"\0")
            if len(parts) != 3:
                raise SaslBad("PLAIN needs authzid NUL authcid NUL password")
            user, password = parts[1], parts[2]
        elif mech == "LOGIN":
            user = self.b64(initial if initial is not None else self.challenge("VXNlcm5hbWU6"))
            password = self.b64(self.challenge("UGFzc3dvcmQ6"))
        else:
            raise SaslBad("unsupported mechanism")
        return self.login(user.decode("utf-8", "replace"), password, mech)

    def login(self, user, password, mech):
        ok = self.srv.check(user, password)
        self.record("auth", mech=mech, user=user, ok=ok)
        if ok:
            self.user = user
        return ok

    def run(self):
        self.sock.settimeout(IDLE_TIMEOUT)
        peer, local = sockaddr(self.sock.getpeername), sockaddr(self.sock.getsockname)
        self.srv.record("connect", proto=self.proto, port=self.port, mode=self.mode, conn=self.id,
                        peer=addr(self.peer), getpeername=peer, getsockname=local)
        try:
            if self.mode == "implicit":
                self.start_tls()
            self.greet()
            while self.serve_one():
                pass
        except Closed:
            pass
        except LineTooLong:
            self.record("error", detail="line too long")
            self.try_send(self.too_long())
        except (OSError, ssl.SSLError) as e:
            self.record("error", detail="%s: %s" % (type(e).__name__, e))
        finally:
            self.record("close")
            try:
                if self.tls:            # close_notify, as real daemons send it
                    self.sock.settimeout(2)
                    self.sock = self.sock.unwrap()
            except (OSError, ValueError):
                pass
            try:
                self.sock.close()
            except OSError:
                pass

    def serve_one(self):
        """read and answer one command; False when the session is over"""
        line = self.readline()
        self.line_event(line)
        try:
            return self.handle(line)
        except (Closed, LineTooLong, OSError):
            raise
        except Exception:  # a bug here must cost one reply, not the server
            self.record("error", detail=traceback.format_exc())
            self.reply(self.internal_error())
            return True

    def try_send(self, text):
        try:
            self.reply(text)
        except OSError:
            pass


class SMTP(Conn):
    """RFC 5321 with PIPELINING, SIZE, 8BITMIME, CHUNKING (BDAT), AUTH (RFC 4954)."""

    proto = "smtp"
    CONT = "334 "

    def __init__(self, *a):
        super().__init__(*a)
        self.helo = None
        self.reset()

    def reset(self):
        self.mail_from, self.rcpts, self.chunks = None, [], None

    def greet(self):
        self.reply("220 %s ESMTP tlspolicy-test" % HOSTNAME)

    def too_long(self):
        return "500 5.5.0 Error: line too long"

    def internal_error(self):
        return "451 4.3.0 Error: internal server error"

    def handle(self, line):
        text = line.decode("latin-1").rstrip("\r\n")
        verb, _, arg = text.partition(" ")
        fn = getattr(self, "do_" + verb.upper(), None) if verb.isascii() and verb.isalpha() else None
        if fn is None:
            self.reply("502 5.5.2 Error: command not recognized")
            return True
        return fn(arg.strip()) is not False

    def do_HELO(self, arg):
        if not arg:
            return self.reply("501 5.5.4 Syntax: HELO hostname")
        self.helo = arg
        self.reset()
        self.reply("250 " + HOSTNAME)

    def do_EHLO(self, arg):
        if not arg:
            return self.reply("501 5.5.4 Syntax: EHLO hostname")
        self.helo = arg
        self.reset()
        caps = [HOSTNAME, "PIPELINING", "SIZE %d" % MAX_MESSAGE]
        if self.can_starttls():
            caps.append("STARTTLS")
        caps += ["AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING"]
        self.reply(*["250-" + c for c in caps[:-1]], "250 " + caps[-1])

    def do_STARTTLS(self, arg):
        if self.tls:
            return self.reply("554 5.5.1 Error: TLS already active")
        if not self.can_starttls():
            return self.reply("502 5.5.1 Error: command not implemented")
        self.reply("220 2.0.0 Ready to start TLS")
        self.start_tls()
        self.helo, self.user = None, None
        self.reset()

    def do_AUTH(self, arg):
        if not self.helo:
            return self.reply("503 5.5.1 Error: send HELO/EHLO first")
        if self.user:
            return self.reply("503 5.5.1 Error: already authenticated")
        if self.mail_from is not None:
            return self.reply("503 5.5.1 Error: MAIL transaction in progress")
        mech, _, initial = arg.partition(" ")
        try:
            ok = self.sasl(mech, initial.strip() or None)
        except SaslAborted:
            return self.reply("501 5.7.0 Authentication aborted")
        except SaslBad as e:
            return self.reply("535 5.7.8 Error: authentication failed: %s" % e)
        if ok:
            return self.reply("235 2.7.0 Authentication successful")
        self.reply("535 5.7.8 Error: authentication failed: authentication failure")

    def do_MAIL(self, arg):
        m = re.match(r"FROM:\s*<([^>]*)>(.*)$", arg, re.I)
        if not self.helo:
            return self.reply("503 5.5.1 Error: send HELO/EHLO first")
        if self.mail_from is not None:
            return self.reply("503 5.5.1 Error: nested MAIL command")
        if not m:
            return self.reply("501 5.5.4 Syntax: MAIL FROM:<address>")
        size = re.search(r"\bSIZE=(\d+)", m.group(2), re.I)
        if size and int(size.group(1)) > MAX_MESSAGE:
            return self.reply("552 5.3.4 Message size exceeds fixed limit")
        self.mail_from = m.group(1)
        self.reply("250 2.1.0 Ok")

    def do_RCPT(self, arg):
        m = re.match(r"TO:\s*<([^>]+)>", arg, re.I)
        if self.mail_from is None:
            return self.reply("503 5.5.1 Error: need MAIL command")
        if not m:
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>")
        rcpt = m.group(1)
        if not self.user and not rcpt.lower().endswith("@" + HOSTNAME):
            return self.reply("554 5.7.1 <%s>: Relay access denied" % rcpt)
        self.rcpts.append(rcpt)
        self.reply("250 2.1.5 Ok")

    def do_DATA(self, arg):
        if arg:
            return self.reply("501 5.5.4 Syntax: DATA")
        if self.chunks is not None:
            return self.reply("503 5.5.1 Error: BDAT in progress")
        if not self.rcpts:
            return self.reply("554 5.5.1 Error: no valid recipients")
        self.reply("354 End data with <CR><LF>.<CR><LF>")
        parts, size = [], 0
        while True:
            line = self.readline()
            self.line_event(line, body=True)
            # Postfix's framing: a line ends at LF, every CR before it is
            # stripped, so ".\n" and ".\r\r\n" end the data too
            if line.rstrip(b"\n").rstrip(b"\r") == b".":
                break
            if line.startswith(b"."):   # RFC 5321 4.5.2 transparency
                line = line[1:]
            size += len(line)
            if size <= MAX_MESSAGE:
                parts.append(line)
        if size > MAX_MESSAGE:
            self.reset()
            return self.reply("552 5.3.4 Message size exceeds fixed limit")
        self.deliver(b"".join(parts))

    def do_BDAT(self, arg):
        m = re.match(r"(\d+)(\s+LAST)?$", arg, re.I)
        if not m:
            return self.reply("501 5.5.4 Syntax: BDAT count [LAST]")
        n = int(m.group(1))
        if n > MAX_MESSAGE:
            self.reply("552 5.3.4 Message size exceeds fixed limit")
            return False            # the stream cannot be followed any more
        chunk = self.read_exact(n)
        self.line_event(chunk, body=True, bdat=True)
        if not self.rcpts:
            self.reset()
            return self.reply("503 5.5.1 Error: need RCPT command")
        self.chunks = (self.chunks or []) + [chunk]
        if sum(map(len, self.chunks)) > MAX_MESSAGE:
            self.reset()
            return self.reply("552 5.3.4 Message size exceeds fixed limit")
        if m.group(2):
            return self.deliver(b"".join(self.chunks))
        self.reply("250 2.0.0 Ok: %d octets received" % n)

    def deliver(self, data):
        name = self.srv.store.add(data)
        self.record("message", file=os.path.join(self.srv.store.path, name),
                    **{"from": self.mail_from}, rcpt=self.rcpts, size=len(data))
        self.reset()
        self.reply("250 2.0.0 Ok: queued as %s" % name.split(".")[1])

    def do_RSET(self, arg):
        self.reset()
        self.reply("250 2.0.0 Ok")

    def do_NOOP(self, arg):
        self.reply("250 2.0.0 Ok")

    def do_VRFY(self, arg):
        self.reply("252 2.0.0 Send some mail, I'll try my best")

    def do_HELP(self, arg):
        self.reply("214 2.0.0 tlspolicy-test: see RFC 5321")

    def do_QUIT(self, arg):
        self.reply("221 2.0.0 Bye")
        return False


class POP3(Conn):
    """RFC 1939 with CAPA (RFC 2449), AUTH PLAIN (RFC 5034), STLS (RFC 2595)."""

    proto = "pop3"

    def __init__(self, *a):
        super().__init__(*a)
        self.pending_user, self.msgs, self.deleted = None, None, set()

    def greet(self):
        self.reply("+OK tlspolicy-test ready")

    def too_long(self):
        return "-ERR Line too long."

    def internal_error(self):
        return "-ERR Internal error."

    def handle(self, line):
        words = line.decode("latin-1").split()
        if not words:
            self.reply("-ERR Unknown command.")
            return True
        verb, args = words[0].upper(), words[1:]
        self.rest = line.decode("latin-1").rstrip("\r\n").partition(" ")[2]
        fn = getattr(self, "do_" + verb, None) if verb.isascii() and verb.isalpha() else None
        if fn is None:
            self.reply("-ERR Unknown command: %s" % verb[:40])
            return True
        if verb in ("STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET") and self.msgs is None:
            self.reply("-ERR Not logged in.")
            return True
        if verb in ("USER", "PASS", "AUTH", "STLS") and self.msgs is not None:
            self.reply("-ERR Already logged in.")
            return True
        try:
            return fn(args) is not False
        except (ValueError, IndexError):
            self.reply("-ERR Invalid arguments.")
            return True

    def do_CAPA(self, args):
        caps = ["USER", "SASL PLAIN", "PIPELINING", "UIDL", "TOP"]
        if self.can_starttls():
            caps.append("STLS")
        self.reply("+OK Capability list follows", *caps, ".")

    def do_STLS(self, args):
        if self.tls:
            return self.reply("-ERR TLS already active.")
        if not self.can_starttls():
            return self.reply("-ERR Unknown command: STLS")
        self.reply("+OK Begin TLS negotiation now.")
        self.start_tls()

    def do_USER(self, args):
        self.pending_user = self.rest.encode("latin-1").decode("utf-8", "replace")
        self.reply("+OK")

    def do_PASS(self, args):
        if self.pending_user is None:
            return self.reply("-ERR No username given.")
        user, self.pending_user = self.pending_user, None
        self.finish_login(self.login(user, self.rest.encode("latin-1"), "USER"))

    def do_AUTH(self, args):
        if not args:
            return self.reply("+OK", "PLAIN", ".")
        try:
            ok = self.sasl(args[0], args[1] if len(args) > 1 else None)
        except SaslAborted:
            return self.reply("-ERR Authentication aborted.")
        except SaslBad as e:
            return self.reply("-ERR [AUTH] Authentication failed: %s." % e)
        self.finish_login(ok)

    def finish_login(self, ok):
        if not ok:
            return self.reply("-ERR [AUTH] Authentication failed.")
        store = self.srv.store
        self.msgs = [(name, len(store.read(name))) for _, name in store.list()]
        self.reply("+OK Logged in.")

    def msg(self, arg):
        """(name, size) of message number arg, or None after an -ERR"""
        n = int(arg)
        if not 1 <= n <= len(self.msgs):
            return self.reply("-ERR There's no message %d." % n)
        if n in self.deleted:
            return self.reply("-ERR Message is deleted.")
        return self.msgs[n - 1]

    def live(self):
        return [(i, m) for i, m in enumerate(self.msgs, 1) if i not in self.deleted]

    def do_STAT(self, args):
        live = self.live()
        self.reply("+OK %d %d" % (len(live), sum(m[1] for _, m in live)))

    def do_LIST(self, args):
        if args:
            m = self.msg(args[0])
            return m and self.reply("+OK %s %d" % (args[0], m[1]))
        live = self.live()
        self.reply("+OK %d messages:" % len(live), *["%d %d" % (i, m[1]) for i, m in live], ".")

    def do_UIDL(self, args):
        if args:
            m = self.msg(args[0])
            return m and self.reply("+OK %s %s" % (args[0], m[0].rsplit(".", 1)[0]))
        self.reply("+OK", *["%d %s" % (i, m[0].rsplit(".", 1)[0]) for i, m in self.live()], ".")

    def send_stuffed(self, data):
        if data and not data.endswith(b"\r\n"):
            data += b"\r\n"
        self.send(re.sub(rb"(?m)^\.", b"..", data) + b".\r\n")   # RFC 1939 3

    def do_RETR(self, args):
        m = self.msg(args[0])
        if m:
            self.reply("+OK %d octets" % m[1])
            self.send_stuffed(self.srv.store.read(m[0]))

    def do_TOP(self, args):
        m = self.msg(args[0])
        if m:
            lines = int(args[1])
            head, sep, body = self.srv.store.read(m[0]).partition(b"\r\n\r\n")
            body = b"".join(body.splitlines(keepends=True)[:lines]) if lines > 0 else b""
            self.reply("+OK")
            self.send_stuffed(head + sep + body)

    def do_DELE(self, args):
        if self.msg(args[0]):
            self.deleted.add(int(args[0]))
            self.reply("+OK Marked to be deleted.")

    def do_RSET(self, args):
        self.deleted.clear()
        self.reply("+OK")

    def do_NOOP(self, args):
        self.reply("+OK")

    def do_QUIT(self, args):
        for n in self.deleted if self.msgs else ():
            self.srv.store.delete(self.msgs[n - 1][0])
        self.reply("+OK Logging out.")
        return False


OPEN, CLOSE = object(), object()
IMAP_TOKEN = re.compile(r'"((?:[^"\\\r\n]|\\.)*)"|(\()|(\))|([^\s()"\[\]]*\[[^\]]*\][^\s()"]*|[^\s()"]+)')
FLAGS = r"\Answered \Flagged \Deleted \Seen \Draft"


def imap_tokens(text):
    """one line's tokens: strings, OPEN and CLOSE; ValueError if malformed"""
    out, pos = [], 0
    while pos < len(text):
        if text[pos] == " ":
            pos += 1
            continue
        m = IMAP_TOKEN.match(text, pos)
        if not m:
            raise ValueError("bad token at %r" % text[pos:pos + 20])
        q, o, c, atom = m.groups()
        out.append(re.sub(r"\\(.)", r"\1", q) if q is not None else OPEN if o else CLOSE if c else atom)
        pos = m.end()
    return out


def imap_nest(tokens):
    """flat tokens with OPEN/CLOSE -> nested lists"""
    stack = [[]]
    for t in tokens:
        if t is OPEN:
            stack.append([])
        elif t is CLOSE:
            if len(stack) == 1:
                raise ValueError("unbalanced )")
            inner = stack.pop()
            stack[-1].append(inner)
        else:
            stack[-1].append(t)
    if len(stack) != 1:
        raise ValueError("unbalanced (")
    return stack[0]


def authenticated(fn):
    """an IMAP command valid only after login"""
    fn.state = "auth"
    return fn


def selected(fn):
    """an IMAP command valid only with a mailbox selected"""
    fn.state = "selected"
    return fn


class IMAP(Conn):
    """An RFC 9051/3501 subset: one mailbox, INBOX, backed by the Store."""

    proto = "imap"

    def __init__(self, *a):
        super().__init__(*a)
        self.view = None                # [uid, name] of the selected INBOX
        self.readonly = False

    def caps(self):
        extra = " STARTTLS" if self.can_starttls() else ""
        return "IMAP4rev1%s AUTH=PLAIN AUTH=LOGIN SASL-IR LITERAL+ ID IDLE" % extra

    def greet(self):
        self.reply("* OK [CAPABILITY %s] tlspolicy-test ready" % self.caps())

    def too_long(self):
        return "* BYE Line too long."

    def internal_error(self):
        return "* BAD Internal error."

    def read_args(self, line):
        """the command's tokens, reading literals ({n} gets "+ Ready", {n+} does not)"""
        tokens = []
        while True:
            m = re.search(rb"\{(\d+)(\+?)\}\r?\n$", line)
            if not m:
                return tokens + imap_tokens(line.rstrip(b"\r\n").decode("latin-1"))
            tokens += imap_tokens(line[:m.start()].decode("latin-1"))
            n = int(m.group(1))
            if n > MAX_LITERAL:
                raise LineTooLong()
            if not m.group(2):
                self.reply("+ Ready")
            data = self.read_exact(n)
            self.line_event(data, literal=True)
            tokens.append(data.decode("latin-1"))
            line = self.readline()
            self.line_event(line)

    @staticmethod
    def tag_valid(line):
        """Dovecot's reading of a tag: from the first octet to SP, CR or LF,
        printable ASCII but ( ) { % * " \\ + ]"""
        m = re.match(rb"([^ \r\n]*)", line)
        tag = m.group(1)
        return bool(tag) and all(0x20 < c < 0x7f and chr(c) not in '(){%*"\\+]' for c in tag)

    def handle(self, line):
        if not self.tag_valid(line):
            # as Dovecot: the rest of the line is skipped, a literal's
            # announcement included (its octets are the next command)
            self.reply("* BAD Error in IMAP command received by server.")
            return True
        try:
            args = imap_nest(self.read_args(line))
        except ValueError as e:
            tag = line.split(b" ", 1)[0].decode("latin-1")
            self.reply("%s BAD Error in IMAP command: %s" % (tag or "*", e))
            return True
        if len(args) < 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
            self.reply("* BAD Error in IMAP command received by server.")
            return True
        tag, cmd, args = args[0], args[1].upper(), args[2:]
        fn = getattr(self, "do_" + cmd, None) if cmd.isascii() and cmd.isalpha() else None
        if fn is None:
            self.reply("%s BAD Unknown command." % tag)
            return True
        need = getattr(fn, "state", None)
        if need and not self.user:
            self.reply("%s BAD Not logged in." % tag)
        elif need == "selected" and self.view is None:
            self.reply("%s BAD No mailbox selected." % tag)
        else:
            try:
                return fn(tag, args) is not False
            except (ValueError, IndexError, KeyError, TypeError, AttributeError):
                self.reply("%s BAD Invalid arguments." % tag)
        return True

    def ok(self, tag, text="Completed."):
        self.reply("%s OK %s" % (tag, text))

    # --- any state
    def do_CAPABILITY(self, tag, args):
        self.reply("* CAPABILITY " + self.caps())
        self.ok(tag, "Capability completed.")

    def do_NOOP(self, tag, args):
        self.refresh()
        self.ok(tag, "NOOP completed.")

    def do_ID(self, tag, args):
        self.reply('* ID ("name" "tlspolicy-test" "version" "1")')
        self.ok(tag, "ID completed.")

    def do_LOGOUT(self, tag, args):
        self.reply("* BYE Logging out", "%s OK Logout completed." % tag)
        return False

    # --- not authenticated
    def do_STARTTLS(self, tag, args):
        if self.tls:
            return self.reply("%s BAD TLS is already active." % tag)
        if not self.can_starttls():
            return self.reply("%s BAD Unknown command." % tag)
        self.ok(tag, "Begin TLS negotiation now.")
        self.start_tls()

    def do_LOGIN(self, tag, args):
        if self.user:
            return self.reply("%s BAD Already logged in." % tag)
        user, password = (a.encode("latin-1") for a in args)
        self.logged_in(tag, self.login(user.decode("utf-8", "replace"), password, "LOGIN"))

    def do_AUTHENTICATE(self, tag, args):
        if self.user:
            return self.reply("%s BAD Already logged in." % tag)
        try:
            ok = self.sasl(args[0], args[1] if len(args) > 1 else None)
        except SaslAborted:
            return self.reply("%s BAD Authentication aborted by client." % tag)
        except SaslBad as e:
            return self.reply("%s NO [AUTHENTICATIONFAILED] %s." % (tag, e))
        self.logged_in(tag, ok)

    def logged_in(self, tag, ok):
        if ok:
            return self.ok(tag, "[CAPABILITY %s] Logged in" % self.caps())
        self.reply("%s NO [AUTHENTICATIONFAILED] Authentication failed." % tag)

    # --- authenticated
    @authenticated
    def do_SELECT(self, tag, args, readonly=False):
        self.view = None
        if args[0].upper() != "INBOX":
            return self.reply("%s NO Mailbox doesn't exist: %s" % (tag, args[0]))
        self.view = [list(m) for m in self.srv.store.list()]
        self.readonly = readonly
        self.reply("* FLAGS (%s)" % FLAGS, "* OK [PERMANENTFLAGS ()] No permanent flags permitted.",
                   "* %d EXISTS" % len(self.view), "* 0 RECENT",
                   "* OK [UIDVALIDITY 1] UIDs valid", "* OK [UIDNEXT %d] Predicted next UID" % self.uidnext())
        self.ok(tag, "[READ-%s] Select completed." % ("ONLY" if readonly else "WRITE"))

    @authenticated
    def do_EXAMINE(self, tag, args):
        self.do_SELECT(tag, args, readonly=True)

    @authenticated
    def do_LIST(self, tag, args, kind="LIST"):
        ref, pattern = args
        if pattern == "":
            self.reply('* %s (\\Noselect) "/" ""' % kind)
        else:
            rx = re.escape(ref + pattern).replace(r"\*", ".*").replace("%", "[^/]*")
            if re.fullmatch(rx, "INBOX", re.I):
                self.reply('* %s (\\HasNoChildren) "/" INBOX' % kind)
        self.ok(tag, "%s completed." % kind.capitalize())

    @authenticated
    def do_LSUB(self, tag, args):
        self.do_LIST(tag, args, "LSUB")

    @authenticated
    def do_STATUS(self, tag, args):
        box, items = args
        items = items if isinstance(items, list) else [items]
        if box.upper() != "INBOX":
            return self.reply("%s NO Mailbox doesn't exist: %s" % (tag, box))
        msgs = self.srv.store.list()
        unseen = sum(1 for u, _ in msgs if "\\Seen" not in self.srv.store.flags.get(u, ()))
        values = {"MESSAGES": len(msgs), "RECENT": 0, "UIDNEXT": self.uidnext(),
                  "UIDVALIDITY": 1, "UNSEEN": unseen}
        out = " ".join("%s %d" % (i.upper(), values[i.upper()]) for i in items)
        self.reply("* STATUS INBOX (%s)" % out)
        self.ok(tag, "Status completed.")

    @authenticated
    def do_IDLE(self, tag, args):
        """RFC 2177: "+ idling", new messages pushed as EXISTS, until DONE"""
        self.reply("+ idling")
        self.sock.settimeout(1)
        deadline = time.time() + IDLE_TIMEOUT
        try:
            while True:
                try:
                    line = self.readline()
                except (socket.timeout, ssl.SSLWantReadError):
                    if time.time() > deadline:
                        raise Closed()
                    self.refresh()
                    continue
                self.line_event(line)
                if line.strip().upper() == b"DONE":
                    break
                self.reply("* BAD Expected DONE.")
        finally:
            self.sock.settimeout(IDLE_TIMEOUT)
        self.ok(tag, "Idle completed.")

    def uidnext(self):
        return self.srv.store.next_uid

    def refresh(self):
        """announce messages that arrived since SELECT"""
        if self.view is None:
            return
        known = {u for u, _ in self.view}
        new = [[u, n] for u, n in self.srv.store.list() if u not in known]
        if new:
            self.view += new
            self.reply("* %d EXISTS" % len(self.view))

    # --- selected
    def seqset(self, spec, uid):
        """sequence numbers (1-based) that spec names"""
        values = [u for u, _ in self.view] if uid else list(range(1, len(self.view) + 1))
        top = values[-1] if values else 0
        want = set()
        for part in spec.split(","):
            lo, _, hi = part.partition(":")
            lo = top if lo == "*" else int(lo)
            hi = lo if not hi else top if hi == "*" else int(hi)
            lo, hi = min(lo, hi), max(lo, hi)
            want |= {i for i, v in enumerate(values, 1) if lo <= v <= hi}
        return sorted(want)

    @selected
    def do_UID(self, tag, args):
        sub = args[0].upper()
        if sub not in ("FETCH", "SEARCH"):
            return self.reply("%s BAD Unknown UID command." % tag)
        getattr(self, "do_" + sub)(tag, args[1:], uid=True)

    @selected
    def do_FETCH(self, tag, args, uid=False):
        seqs = self.seqset(args[0], uid)
        items = args[1] if isinstance(args[1], list) else [args[1]]
        items = [i.upper() for i in items]
        macros = {"FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"], "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]}
        items = [x for i in items for x in macros.get(i, [i])]
        if uid and "UID" not in items:
            items.insert(0, "UID")
        for i in items:         # check them all before answering anything
            if not re.fullmatch(r"UID|FLAGS|INTERNALDATE|RFC822(\.SIZE|\.HEADER|\.TEXT)?"
                                r"|BODY(\.PEEK)?\[(HEADER|TEXT|HEADER\.FIELDS \(.*\))?\](<\d+\.\d+>)?", i):
                return self.reply("%s BAD Unsupported FETCH item %s" % (tag, i[:40]))
        for n in seqs:
            self.send(b"* %d FETCH (%s)\r\n" % (n, b" ".join(self.fetch_item(n, i) for i in items)))
        self.ok(tag, "Fetch completed.")

    def fetch_item(self, n, item):
        u, name = self.view[n - 1]
        flags = self.srv.store.flags.setdefault(u, set())
        if item == "UID":
            return b"UID %d" % u
        if item == "FLAGS":
            return b"FLAGS (%s)" % " ".join(sorted(flags)).encode()
        if item == "INTERNALDATE":
            stamp = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(self.srv.store.mtime(name)))
            return b'INTERNALDATE "%s"' % stamp.encode()
        data = self.srv.store.read(name)
        if item == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % len(data)
        if ".PEEK" not in item and item not in ("RFC822.HEADER",) and not self.readonly:
            flags.add("\\Seen")
        head, sep, body = data.partition(b"\r\n\r\n")
        m = re.fullmatch(r"(?:BODY(?:\.PEEK)?\[(.*)\]|RFC822(.*))(?:<(\d+)\.(\d+)>)?", item)
        section = m.group(1) if m.group(1) is not None else {"": "", ".HEADER": "HEADER", ".TEXT": "TEXT"}[m.group(2)]
        if section == "HEADER":
            data = head + sep
        elif section == "TEXT":
            data = body
        elif section.startswith("HEADER.FIELDS"):
            names = {f.upper() for f in section[len("HEADER.FIELDS ("):-1].split()}
            fields = re.split(rb"\r\n(?![ \t])", head)
            keep = [f for f in fields if f.split(b":")[0].strip().upper().decode("latin-1") in names]
            data = b"".join(f + b"\r\n" for f in keep) + b"\r\n"
        label = item.replace(".PEEK", "").encode()
        if m.group(3):
            start = int(m.group(3))
            data = data[start:start + int(m.group(4))]
            label = re.sub(rb"<(\d+)\.\d+>", rb"<\1>", label)
        return b"%s {%d}\r\n%s" % (label, len(data), data)

    @selected
    def do_SEARCH(self, tag, args, uid=False):
        want = [a.upper() for a in args if isinstance(a, str)]
        hits = []
        for n, (u, _) in enumerate(self.view, 1):
            seen = "\\Seen" in self.srv.store.flags.get(u, ())
            if ("UNSEEN" in want or "NEW" in want) and seen or "SEEN" in want and not seen:
                continue
            hits.append(u if uid else n)
        self.reply("* SEARCH" + "".join(" %d" % h for h in hits))
        self.ok(tag, "Search completed.")

    @selected
    def do_CLOSE(self, tag, args):
        self.view = None
        self.ok(tag, "Close completed.")

    @selected
    def do_UNSELECT(self, tag, args):
        self.view = None
        self.ok(tag, "Unselect completed.")


class Server:
    """The listeners, the shared store, the record and the credentials."""

    PROTOS = {"smtp": SMTP, "imap": IMAP, "pop3": POP3}

    def __init__(self, opts):
        self.opts = opts
        self.record = Recorder(opts.record)
        self.maildir = opts.maildir or tempfile.mkdtemp(prefix="mailserver-")
        os.makedirs(self.maildir, exist_ok=True)
        self.store = Store(self.maildir)
        self.tls_context = self.make_tls_context() if opts.tls_cert else None
        self.listeners = []

    def make_tls_context(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.opts.tls_cert, self.opts.tls_key)
        versions = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.0": ssl.TLSVersion.TLSv1,
                    "TLSv1.1": ssl.TLSVersion.TLSv1_1, "TLSv1.2": ssl.TLSVersion.TLSv1_2,
                    "TLSv1.3": ssl.TLSVersion.TLSv1_3}
        if self.opts.tls_min_version:
            ctx.minimum_version = versions[self.opts.tls_min_version]
        if self.opts.tls_max_version:
            ctx.maximum_version = versions[self.opts.tls_max_version]
        if self.opts.tls_ciphers:
            ctx.set_ciphers(self.opts.tls_ciphers)
        return ctx

    def check(self, user, password):
        return user == self.opts.user and password == self.opts.password.encode("utf-8")

    def listen(self, proto, port, mode):
        hosts = [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if self.opts.ipv6 else [])
        if self.opts.listen_any:
            hosts = [(socket.AF_INET6, "::")]       # every address, IPv4 ones as ::ffff:a.b.c.d
        for family, host in hosts:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
            s.bind((host, port))
            s.listen(64)
            port = s.getsockname()[1]       # port 0: the same one on ::1
            self.listeners.append({"proto": proto, "addr": host, "port": port, "mode": mode})
            threading.Thread(target=self.accept_loop, args=(s, self.PROTOS[proto], port, mode),
                             daemon=True).start()

    def accept_loop(self, lsock, cls, port, mode):
        while True:
            try:
                sock, peer = lsock.accept()     # the call tlspolicy.so hooks
            except OSError as e:
                self.record("accept_error", proto=cls.proto, port=port,
                            errno=e.errno, error=os.strerror(e.errno) if e.errno else str(e))
                time.sleep(0.01 if e.errno in (errno.ECONNABORTED, errno.EINTR) else 0.2)
                continue
            threading.Thread(target=cls(self, sock, peer, port, mode).run, daemon=True).start()


def port_spec(text):
    """PORT or PORT/MODE"""
    port, _, mode = text.partition("/")
    if mode not in ("", "plain", "starttls", "implicit"):
        raise argparse.ArgumentTypeError("mode must be plain, starttls or implicit: %r" % text)
    return int(port), mode or None


def parse_args(argv):
    p = argparse.ArgumentParser(description="plaintext SMTP/IMAP/POP3 test server for tlspolicy")
    for proto in ("smtp", "imap", "pop3"):
        p.add_argument("--" + proto, type=port_spec, action="append", default=[], metavar="PORT[/MODE]",
                       help="listen for %s (MODE: plain, starttls, implicit)" % proto.upper())
    p.add_argument("--ipv6", action="store_true", help="listen on ::1 too")
    p.add_argument("--listen-any", action="store_true",
                   help="listen on every address instead, IPv4 and IPv6 (one dual-stack socket on ::)")
    p.add_argument("--inetd", metavar="PROTO[/MODE]",
                   help="serve the one connection on fd 0 (inetd, systemd Accept=yes), then exit")
    p.add_argument("--record", help="JSON-lines event record")
    p.add_argument("--user", default="test")
    p.add_argument("--password", default="secret")
    p.add_argument("--maildir", help="where messages are stored, one file each (default: a temp dir)")
    p.add_argument("--ready-file", help="written (JSON) once every socket listens")
    p.add_argument("--offer-starttls", action="store_true", help="ports without a MODE offer STARTTLS")
    p.add_argument("--tls-cert", help="certificate (PEM) for STARTTLS and implicit TLS")
    p.add_argument("--tls-key", help="its private key")
    tls_versions = ("TLSv1", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    p.add_argument("--tls-min-version", choices=tls_versions)
    p.add_argument("--tls-max-version", choices=tls_versions)
    p.add_argument("--tls-ciphers", help="OpenSSL cipher string, e.g. AES128-SHA:@SECLEVEL=0")
    p.add_argument("--insecure-keep-pipelined", action="store_true",
                   help="execute commands pipelined behind STARTTLS after the handshake (CVE-2011-0411)")
    opts = p.parse_args(argv)
    if not (opts.smtp or opts.imap or opts.pop3 or opts.inetd):
        p.error("nothing to listen on: give --smtp, --imap, --pop3 or --inetd")
    default = "starttls" if opts.offer_starttls else "plain"
    opts.ports = [(proto, port, mode or default)
                  for proto in ("smtp", "imap", "pop3") for port, mode in getattr(opts, proto)]
    if opts.inetd:
        proto, _, mode = opts.inetd.partition("/")
        if proto not in ("smtp", "imap", "pop3") or mode not in ("", "plain", "starttls", "implicit"):
            p.error("--inetd takes smtp, imap or pop3, and optionally /plain, /starttls or /implicit")
        opts.inetd = (proto, mode or default)
    modes = [mode for _, _, mode in opts.ports] + ([opts.inetd[1]] if opts.inetd else [])
    if any(mode != "plain" for mode in modes) and not (opts.tls_cert and opts.tls_key):
        p.error("STARTTLS and implicit TLS need --tls-cert and --tls-key")
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    srv = Server(opts)
    try:
        return serve(opts, srv)
    finally:
        if not opts.maildir:
            shutil.rmtree(srv.maildir, ignore_errors=True)


def serve(opts, srv):
    """listen until SIGTERM, or serve the one --inetd connection"""
    if opts.inetd:              # its "conn" is our pid, unique among the processes
        sock = socket.socket(fileno=os.dup(0))
        local = sockaddr(sock.getsockname)
        Conn.ids = itertools.count(os.getpid())
        proto, mode = opts.inetd
        Server.PROTOS[proto](srv, sock, None, local[1] if isinstance(local, list) else 0, mode).run()
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        for proto, port, mode in opts.ports:
            srv.listen(proto, port, mode)
    except OSError as e:
        print("mailserver.py: cannot listen: %s" % e, file=sys.stderr)
        return 1
    if opts.ready_file:
        tmp = opts.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pid": os.getpid(), "listeners": srv.listeners, "maildir": srv.maildir}, f)
        os.rename(tmp, opts.ready_file)
    while not stop.wait(0.2):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
