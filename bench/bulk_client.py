#!/usr/bin/env python3
"""bulk_client.py - the benchmark's bulk load: one large message over
implicit-TLS SMTP on 127.0.0.1, timed

    bulk_client.py --cafile FILE [--mib M] PORT

One connection: the handshake (certificate verified for "localhost"), the
greeting, EHLO, MAIL, RCPT, DATA, then one message of M MiB (default 64:
a Subject line and a blank line, then lines of 76 "x" and CRLF, the last
shorter, so the total is exact and no line needs dot-stuffing), the
terminating ".", the final reply, QUIT.  The time is from the first
content byte to the final reply: by then the server has read the whole
message.  The final reply may be 250 or 552: a server whose size limit
is below M MiB (mailserver.py's is 10 MiB) still reads the message to its
end before it says so (RFC 5321 4.2.5), and stores nothing.

It is Python's ssl, i.e. OpenSSL with AES-NI, because wolfSSL as Debian
builds it has no AES-NI and a wolfSSL client would cap every setup at its
own encryption speed.  The sending is one sendall(): OpenSSL encrypts with
the GIL released, so Python costs nothing per byte here.  bench.py pins
the offer (TLS 1.3 suite, X25519) with an OPENSSL_CONF file; the suite
and version negotiated are printed so it can check them.

Output, one line:  bytes=N seconds=S mib_per_second=R reply=CODE version=V suite=S
Exit: 0, 1 on any failure (said on stderr), 2 for bad usage.
"""

import argparse
import socket
import ssl
import sys
import time

TIMEOUT = 120
LINE = b"x" * 76 + b"\r\n"
SUBJECT = b"Subject: tlspolicy bench\r\n\r\n"


class Failed(Exception):
    pass


def message(mib):
    """exactly mib MiB of content, as described above"""
    size = mib << 20
    full, rest = divmod(size - len(SUBJECT), len(LINE))
    if rest == 1:                       # no room for CRLF: one line gets 77 "x"
        full, rest = full - 1, rest + len(LINE)
    tail = b"x" * (rest - 2) + b"\r\n" if rest else b""
    data = SUBJECT + LINE * full + tail
    assert len(data) == size
    return data


class SMTP:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def reply(self):
        """the code of the next (multi-line) reply"""
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                data = self.sock.recv(4096)
                if not data:
                    raise Failed("connection closed; got %r" % self.buf)
                self.buf += data
                continue
            line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
            if line[3:4] != b"-":
                return int(line[:3])

    def command(self, line, want):
        self.sock.sendall(line)
        code = self.reply()
        if code != want:
            raise Failed("%r: %d, not %d" % (line.strip(), code, want))


def run(port, cafile, mib):
    data = message(mib)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        c = SMTP(s)
        if c.reply() != 220:
            raise Failed("no 220 greeting")
        c.command(b"EHLO client.test\r\n", 250)
        c.command(b"MAIL FROM:<bench@client.test>\r\n", 250)
        c.command(b"RCPT TO:<bench@mail.test>\r\n", 250)
        c.command(b"DATA\r\n", 354)
        t0 = time.monotonic()
        s.sendall(data)
        s.sendall(b".\r\n")
        code = c.reply()
        secs = time.monotonic() - t0
        if code not in (250, 552):
            raise Failed("final reply to the message: %d" % code)
        c.command(b"QUIT\r\n", 221)
        print("bytes=%d seconds=%.3f mib_per_second=%.2f reply=%d version=%s suite=%s"
              % (len(data), secs, len(data) / secs / (1 << 20), code, s.version(), s.cipher()[0]))


def main(argv=None):
    p = argparse.ArgumentParser(description="one timed message over implicit-TLS SMTP")
    p.add_argument("--cafile", required=True)
    p.add_argument("--mib", type=int, default=64)
    p.add_argument("port", type=int)
    opts = p.parse_args(argv)
    try:
        run(opts.port, opts.cafile, opts.mib)
    except (Failed, OSError, ssl.SSLError) as e:
        print("bulk_client.py: 127.0.0.1:%d: %s" % (opts.port, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
