#!/usr/bin/env python3
"""tlsrec_capture.py - real TLS hellos for tests/unit/check_tlsrec.c

Runs Python's ssl (OpenSSL) client and server against each other through
memory BIOs, so nothing touches the network, and prints both directions of
each handshake as C string macros of hex digits, with the records and the
hello fields as comments (decoded here, independently of module/tlsrec.c),
up to the end of the first alert or application_data record, where the
reader stops.
The captures in check_tlsrec.c came from this script; rerunning it gives
new randoms, keys and session ids, so the hex changes but not the fields.

  tls13   default client and server (TLS 1.3)
  tls12   client capped at TLS 1.2
  hrr     server that only takes secp384r1: HelloRetryRequest (RFC 8446 4.1.4)
  tls10   both at TLS 1.0, "ALL:@SECLEVEL=0"
  alert   client TLS 1.3 only, server TLS 1.2 at most: protocol_version alert
"""
import os
import ssl
import subprocess
import sys
import tempfile
import textwrap
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
SNI = "mail.example.org"


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/k.pem",
                    "-out", d + "/c.pem", "-subj", "/CN=" + SNI, "-days", "3650"],
                   check=True, capture_output=True)


def contexts(d, cmin=None, cmax=None, smin=None, smax=None, ciphers=None, curve=None):
    cc = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cc.check_hostname = False
    cc.verify_mode = ssl.CERT_NONE
    sc = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sc.load_cert_chain(d + "/c.pem", d + "/k.pem")
    for ctx, lo, hi in ((cc, cmin, cmax), (sc, smin, smax)):
        if ciphers:
            ctx.set_ciphers(ciphers)
        if lo:
            ctx.minimum_version = lo
        if hi:
            ctx.maximum_version = hi
    if curve:
        sc.set_ecdh_curve(curve)   # OpenSSL 3: the server's only group
    return cc, sc


def step(obj, fn):
    try:
        fn()
        return True
    except ssl.SSLWantReadError:
        return False
    except ssl.SSLError:
        return True


def handshake(cc, sc):
    """both directions' bytes: the handshake, then one write each way"""
    ci, co, si, so = (ssl.MemoryBIO() for _ in range(4))
    c = cc.wrap_bio(ci, co, server_hostname=SNI)
    s = sc.wrap_bio(si, so, server_side=True)
    cbytes, sbytes = b"", b""
    cdone = sdone = False
    for _ in range(10):
        cdone = step(c, c.do_handshake) or cdone
        b = co.read()
        cbytes += b
        si.write(b)
        sdone = step(s, s.do_handshake) or sdone
        b = so.read()
        sbytes += b
        ci.write(b)
        if cdone and sdone:
            break
    for obj, bio, line in ((c, co, b"EHLO client\r\n"), (s, so, b"220 ready\r\n")):
        try:
            obj.write(line)
        except ssl.SSLError:
            pass
    return cbytes + co.read(), sbytes + so.read()


def u16(b, i):
    return b[i] << 8 | b[i + 1]


def hello_fields(msg):
    """the fields check_tlsrec.c asserts, decoded from one hello message"""
    t, body = msg[0], msg[4:]
    f = {"legacy": u16(body, 0)}
    i = 2 + 32
    i += 1 + body[i]
    if t == 1:
        n = u16(body, i)
        f["suites"] = body[i + 2:i + 2 + n].hex()
        i += 2 + n
        i += 1 + body[i]
    else:
        f["suite"] = u16(body, i)
        f["hrr"] = body[2:34].hex().startswith("cf21ad74")
        i += 3
    if i < len(body):
        end = i + 2 + u16(body, i)
        i += 2
        while i < end:
            et, el = u16(body, i), u16(body, i + 2)
            data = body[i + 4:i + 4 + el]
            if et == 43 and t == 1:
                f["versions"] = data[1:].hex()
            elif et == 43:
                f["selected"] = u16(data, 0)
            elif et == 0:
                f["sni"] = data[5:].decode()
            i += 4 + el
    return f


def comment(t, end, f):
    """the comment lines for one hello"""
    name = {1: "ClientHello", 2: "ServerHello"}[t]
    if t == 2 and f.get("hrr"):
        name = "HelloRetryRequest"
    out = ["  %s ends at %d" % (name, end)]
    parts = ["legacy %04x" % f["legacy"]]
    if "versions" in f:
        v = f["versions"]
        parts.append("versions " + " ".join(v[k:k + 4] for k in range(0, len(v), 4)))
    if "selected" in f:
        parts.append("selected %04x" % f["selected"])
    if "suite" in f:
        parts.append("suite %04x" % f["suite"])
    if "sni" in f:
        parts.append("sni " + f["sni"])
    out.append("    " + ", ".join(parts))
    if "suites" in f:
        s = f["suites"]
        words = " ".join(s[k:k + 4] for k in range(0, len(s), 4))
        out += ["    " + line for line in textwrap.wrap("suites " + words, 72)]
    return out


def describe(stream, hrr):
    """the records of a stream, and the hello messages in the clear ones"""
    out, hs, i, ccs = [], b"", 0, False
    while i + 5 <= len(stream):
        t, n = stream[i], u16(stream, i + 3)
        name = {20: "ccs", 21: "alert", 22: "hs", 23: "appdata"}.get(t, "?")
        out.append("%s %d at %d" % (name, n, i))
        if t == 22 and (hrr or not ccs):
            hs += stream[i + 5:i + 5 + n]
            while len(hs) >= 4 and len(hs) >= 4 + (hs[1] << 16 | hs[2] << 8 | hs[3]):
                m = 4 + (hs[1] << 16 | hs[2] << 8 | hs[3])
                if hs[0] in (1, 2):
                    out += comment(hs[0], i + 5 + n - (len(hs) - m), hello_fields(hs[:m]))
                hs = hs[m:]
        ccs = ccs or t == 20
        i += 5 + n
    return out


def trim(stream):
    """the stream up to the end of its first alert or application_data record"""
    i = 0
    while i + 5 <= len(stream):
        end = i + 5 + u16(stream, i + 3)
        if stream[i] in (21, 23):
            return stream[:end]
        i = end
    return stream


def macro(name, data):
    print("#define %s \\" % name)
    hx = data.hex()
    lines = [hx[k:k + 80] for k in range(0, len(hx), 80)]
    for k, line in enumerate(lines):
        print('\t"%s"%s' % (line, " \\" if k + 1 < len(lines) else ""))


def main():
    d = tempfile.mkdtemp()
    make_cert(d)
    v = ssl.TLSVersion
    cases = [
        ("TLS13", contexts(d)),
        ("TLS12", contexts(d, cmax=v.TLSv1_2)),
        ("HRR", contexts(d, curve="secp384r1")),
        ("TLS10", contexts(d, cmin=v.TLSv1, cmax=v.TLSv1, smin=v.TLSv1, smax=v.TLSv1,
                           ciphers="ALL:@SECLEVEL=0")),
        ("ALERT", contexts(d, cmin=v.TLSv1_3, smax=v.TLSv1_2)),
    ]
    print("/* tests/unit/tlsrec_capture.py, %s */" % ssl.OPENSSL_VERSION)
    for name, (cc, sc) in cases:
        for side, stream in zip("CS", handshake(cc, sc)):
            stream = trim(stream)
            print("\n/* %s_%s: %d bytes" % (name, side, len(stream)))
            for line in describe(stream, name == "HRR"):
                print(" *   " + line)
            print(" */")
            macro("%s_%s" % (name, side), stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
