"""test_limits.py - one client address cannot exhaust tlspolicyd for the
others, and no pre-TLS phase lasts for ever

Issue 9, item 12.  The attack: 127.0.0.2 opens hundreds of connections to
an opportunistic and a starttls port and says nothing.  Asserted: exactly
max_connections_per_client of them are relayed (the daemon's greeting
reaches the client), the others are closed at once without a byte and
logged (action=refuse reason=too-many-connections, rate-limited: a few
lines, not one per refusal); a client from 127.0.0.3 meanwhile does a whole
STARTTLS session and its mail is delivered; a reload that raises the limit
admits that many more.  max_connections caps all clients together the same
way, and a slot freed by a closed connection is used again.  Deadlines: an
idle opportunistic client is closed after plaintext_timeout of silence
(each line it sends re-arms it), a client that asked for STARTTLS and never
starts the handshake after handshake_timeout, also where the daemon does
the TLS (tls_by = daemon: the inspection phase).
"""

import re
import signal
import socket
import time

import harness

HOLDER, OTHER = "127.0.0.2", "127.0.0.3"


def open_idle(s, name, n, source=HOLDER):
    """n connections to port name from source that say nothing: (the ones
    relayed, which got the greeting, and how many were closed unanswered)"""
    held, refused = [], 0
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", s.ports[name]), 10, (source, 0))
        try:
            data = c.recv(512)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if data.startswith(b"220 "):
            held.append(c)
        else:
            if data:
                raise AssertionError("a refused connection got %r" % data)
            refused += 1
            c.close()
    return held, refused


def full_session(s, name, source, subject):
    """a STARTTLS session with login and a mail, from source; the mail is delivered"""
    c = s.smtp(name, source=source)
    c.starttls()
    c.login(s.user, s.password)
    c.sendmail("a@client.test", ["b@mail.test"], "Subject: %s\r\n\r\nstill served\r\n" % subject)
    c.quit()
    deadline = time.monotonic() + 5
    while not any(subject.encode() in m for m in s.messages()):
        if time.monotonic() > deadline:
            raise AssertionError("the mail of %s was not delivered" % source)
        time.sleep(0.05)


def close_all(socks):
    for c in socks:
        c.close()


class LimitsTest(harness.TestCase):
    timeout = 120

    def setUp(self):
        harness.require_module()

    def refusal_lines(self, s, limit):
        return re.findall(r"action=refuse reason=too-many-connections limit=%s value=(\d+) "
                          r"suppressed=(\d+)" % limit, s.log)

    def test_one_address_cannot_take_every_connection(self):
        ports = {"mx": ("smtp", "opportunistic"),
                 "sub": {"protocol": "smtp", "tls": "starttls", "handshake_timeout": 120}}
        with harness.Setup(ports, policy={"global": {"max_connections_per_client": 50}}) as s:
            held_mx, refused_mx = open_idle(s, "mx", 150)
            held_sub, refused_sub = open_idle(s, "sub", 150)
            self.addCleanup(close_all, held_mx + held_sub)
            self.assertEqual(len(held_mx) + len(held_sub), 50, "max_connections_per_client")
            self.assertEqual(refused_mx + refused_sub, 250)
            lines = self.refusal_lines(s, "max_connections_per_client")
            self.assertTrue(lines, s.log[-3000:])
            self.assertEqual(lines[0][0], "50")
            self.assertLess(len(lines), 30, "refusals are rate-limited, not one line each")

            full_session(s, "sub", OTHER, "from-127.0.0.3")
            self.assertTrue(s.events("auth", ok=True))

            # the limits are the running generation's: a reload raises them
            s.policy_sections["global"]["max_connections_per_client"] = 60
            s.write_policy()
            s.daemon.send_signal(signal.SIGHUP)
            s.wait_log(r"action=reload ")
            more, refused = open_idle(s, "mx", 20)
            self.addCleanup(close_all, more)
            self.assertEqual((len(more), refused), (10, 10))

    def test_total_cap(self):
        ports = {"sub": {"protocol": "smtp", "tls": "starttls", "handshake_timeout": 120}}
        with harness.Setup(ports, policy={"global": {"max_connections": 20}}) as s:
            held, refused = open_idle(s, "sub", 40)
            self.addCleanup(close_all, held)
            self.assertEqual((len(held), refused), (20, 20))
            self.assertTrue(self.refusal_lines(s, "max_connections"), s.log[-3000:])
            # another address is refused too: the cap is for everybody
            _, refused_other = open_idle(s, "sub", 1, source=OTHER)
            self.assertEqual(refused_other, 1)
            # a freed slot is used again
            close_all(held[:5])
            deadline = time.monotonic() + 10
            while s.log.count("action=end") < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            full_session(s, "sub", OTHER, "after-release")

    def test_pre_tls_deadlines(self):
        ports = {"mx": {"protocol": "smtp", "tls": "opportunistic", "plaintext_timeout": 2,
                        "handshake_timeout": 3},
                 "mxd": {"protocol": "smtp", "tls": "opportunistic", "tls_by": "daemon",
                         "plaintext_timeout": 2, "handshake_timeout": 3}}
        with harness.Setup(ports) as s:
            # silent after one command: the command re-armed the limit
            r = s.raw("mx")
            r.read_line()
            time.sleep(1.2)
            r.sendline("EHLO client.test")
            r.read_until(b"250 ")
            t = time.monotonic()
            time.sleep(1.5)
            self.assertFalse(r.closed(timeout=0.1), "closed before plaintext_timeout after the EHLO")
            self.assertTrue(r.closed(timeout=5), "an idle opportunistic client stays for ever")
            self.assertGreater(time.monotonic() - t, 1.9)
            s.wait_log(r"port=%d client=127\.0\.0\.1:%d mode=opportunistic action=close "
                       r"reason=plaintext-timeout plaintext_timeout=2" % (s.ports["mx"], r.local[1]))

            # STARTTLS asked for, no handshake: handshake_timeout, here and where the daemon does TLS
            for name in ("mx", "mxd"):
                with self.subTest(port=name):
                    r = s.raw(name)
                    r.read_line()
                    r.sendline("EHLO client.test")
                    r.read_until(b"250 ")
                    r.sendline("STARTTLS")
                    r.read_until(b"220 ")
                    t = time.monotonic()
                    self.assertTrue(r.closed(timeout=8), "no deadline once STARTTLS was issued")
                    self.assertGreater(time.monotonic() - t, 2)
                    s.wait_log(r"port=%d client=127\.0\.0\.1:%d mode=opportunistic action=close "
                               r"reason=handshake-timeout" % (s.ports[name], r.local[1]))
