"""test_module_addresses.py - the daemon sees the real addresses

DESIGN.md: the shim fills accept()'s address with the real client and
answers getpeername()/getsockname() on the relayed socket with the real
TCP addresses, never the socketpair's (Postfix would otherwise take every
client for localhost: an open relay).  The test server records, for each
connection, accept()'s address ("peer"), getpeername() and getsockname();
each must be the client's own socket address and the address and port it
connected to: over IPv4, over IPv6, and for a connection inherited on fd 0
(inetd, systemd Accept=yes).

A rule is for a local address:port, not for a port number (issue 9.20):
with only [port 127.0.0.1:N] and a daemon listening on every address, a
connection to 127.0.0.2:N or [::1]:N is the daemon's alone, untouched,
whether the shim knows the rules from the policy file or from the ports
file a reload published.
"""

import os
import re
import unittest

import harness
from modcommon import SMTP_GREETING, SMTP_REPLY, ModuleCase

PORTS = {"submission": ("smtp", "starttls"), "smtps": ("smtp", "implicit"),
         "imap": ("imap", "starttls"), "pop3s": ("pop3", "implicit")}


class AddressCase(ModuleCase):
    def check(self, name, host="127.0.0.1", inetd=False):
        proto, mode = PORTS.get(name) or self.ports[name]
        r = self.s.raw(name, addr=host, tls=(mode == "implicit"))
        greeting = r.read_line()
        self.assertTrue(greeting.startswith((b"220 ", b"* OK", b"+OK")), greeting)
        mine = r.getsockname()
        self.assertEqual(mine, r.local)
        e = self.s.connection(r)
        client = [mine[0], mine[1]]
        self.assertEqual(e["getpeername"], client)
        self.assertEqual(e["getsockname"], [host, self.s.ports[name]],
                         "getsockname: the address the client connected to")
        self.assertEqual(e["peer"], None if inetd else client, "accept()'s address")
        self.assertEqual(e["proto"], proto)
        r.close()
        return e


class IPv4Test(AddressCase):
    ports = PORTS

    def test_accept_getpeername_getsockname(self):
        for name in self.ports:
            with self.subTest(port=name):
                self.check(name)

    def test_many_connections_each_its_own(self):
        """the answer belongs to each socket: 20 at once, none confused"""
        raws = [self.s.raw("submission") for _ in range(20)]
        for r in raws:
            self.assertEqual(r.read_line(), SMTP_GREETING)
        for r in raws:
            mine = r.getsockname()
            self.assertEqual(self.s.connection(r)["peer"], [mine[0], mine[1]])


class IPv6Test(AddressCase):
    ports = PORTS
    setup_args = {"ipv6": True}

    @classmethod
    def setUpClass(cls):
        if not harness.have_ipv6():
            raise unittest.SkipTest("no IPv6 loopback (::1) on this machine")
        super().setUpClass()

    def test_ipv6_and_ipv4_side_by_side(self):
        for name in self.ports:
            for host in ("::1", "127.0.0.1"):
                with self.subTest(port=name, host=host):
                    self.check(name, host)
        self.assertRegex(self.s.log, r"client=\[::1\]:\d+ mode=starttls action=relay")


class InetdTest(AddressCase):
    ports = {"inetd-smtp": ("smtp", "starttls"), "inetd-pop3s": ("pop3", "implicit")}
    setup_args = {"inetd": ("inetd-smtp", "inetd-pop3s")}

    def test_inherited_connection(self):
        for name in self.ports:
            with self.subTest(port=name):
                e = self.check(name, inetd=True)
                self.assertIn(e["conn"], [p.pid for p in self.s.procs],
                              "served by a mailserver.py --inetd of its own")

    def test_inherited_connection_is_enforced(self):
        """the fd 0 path runs the same filter: AUTH hidden and refused before TLS"""
        c = self.s.smtp("inetd-smtp")
        c.ehlo()
        self.assertNotIn("auth", c.esmtp_features)
        self.assertIn("starttls", c.esmtp_features)
        self.assertEqual(c.docmd("AUTH", "PLAIN"), (530, b"5.7.0 Must issue a STARTTLS command first"))
        c.starttls()
        c.ehlo()
        self.assertEqual(c.login("test", "secret")[0], 235)
        c.quit()


class AddressRuleTest(harness.TestCase):
    """[port ADDR:N] manages ADDR:N only; [port N] every address; the rest is untouched"""

    timeout = 90

    def setUp(self):
        harness.require_module()
        if not harness.have_ipv6():
            harness.skip_or_fail("no IPv6 loopback (::1) on this machine")
        smtp = {"protocol": "smtp", "tls": "starttls"}
        # both ports are the server's on every address (one dual-stack socket on ::)
        self.s = harness.Setup(plain_ports={"one": "smtp", "all": "smtp"}, ipv6=True,
                               server_args=["--listen-any"],
                               policy={"port 127.0.0.1:{one}": smtp, "port {all}": smtp})
        self.addCleanup(self.s.close)
        self.one, self.all = self.s.ports["one"], self.s.ports["all"]

    def session(self, port, host):
        """greeting, EHLO and QUIT; (the client's Raw, the EHLO reply)"""
        r = self.s.raw(port, addr=host)
        self.assertEqual(r.read_line(), SMTP_GREETING)
        r.sendline("EHLO client.test")
        reply = r.read_until(SMTP_REPLY)
        r.sendline("QUIT")
        self.assertTrue(r.read_line().startswith(b"221 "))
        return r, reply

    def seen(self, r):
        """the server's connect event for r: found by the client's port, since
        an IPv4 client is ::ffff:a.b.c.d to the dual-stack listener"""
        return self.s.wait_for("connect", where=lambda e: e["getpeername"][1] == r.local[1]
                               and e["time"] >= r.opened)

    def assertManaged(self, port, host):
        r, reply = self.session(port, host)
        self.assertIn(b"STARTTLS", reply)
        self.assertNotIn(b"AUTH", reply, "tlspolicyd's filter hides AUTH before TLS")
        self.s.wait_log(r"client=\[?(::ffff:)?%s\]?:%d mode=starttls action=relay"
                        % (re.escape(r.local[0]), r.local[1]))
        self.assertEqual(self.seen(r)["getsockname"][1], port)

    def assertUntouched(self, port, host):
        r, reply = self.session(port, host)
        self.assertIn(b"250-AUTH PLAIN LOGIN\r\n", reply, "the daemon's own EHLO, no filter between")
        e = self.seen(r)
        want = host if ":" in host else "::ffff:" + host
        self.assertEqual(e["getsockname"], [want, port], "the TCP socket itself")
        self.assertNotRegex(self.s.log, r":%d\b" % r.local[1], "tlspolicyd never saw it")

    def check(self, managed, untouched):
        for port, host in managed:
            with self.subTest(managed="%s:%d" % (host, port)):
                self.assertManaged(port, host)
        for port, host in untouched:
            with self.subTest(untouched="%s:%d" % (host, port)):
                self.assertUntouched(port, host)

    def test_rules_from_the_policy_file_then_a_reload(self):
        one, all_ = self.one, self.all
        self.check(managed=[(one, "127.0.0.1"), (all_, "127.0.0.1"), (all_, "127.0.0.2"), (all_, "::1")],
                   untouched=[(one, "127.0.0.2"), (one, "::1")])
        self.assertNotIn("port-not-managed", self.s.log)

        # reload: the 127.0.0.1 rule goes, rules for 127.0.0.2 and ::1 come
        sections = self.s.policy_sections
        sections["port 127.0.0.2:%d" % one] = sections.pop("port 127.0.0.1:%d" % one)
        sections["port ::1:%d" % one] = dict(sections["port 127.0.0.2:%d" % one])
        self.s.write_policy()
        self.s.reload()
        with open(os.path.join(self.s.rundir, "ports")) as f:
            lines = sorted(l for l in f.read().splitlines() if l.startswith("port "))
        self.assertEqual(lines, sorted(["port 127.0.0.2 %d" % one, "port ::1 %d" % one, "port * %d" % all_]))
        self.check(managed=[(one, "127.0.0.2"), (one, "::1"), (all_, "127.0.0.1"), (all_, "::1")],
                   untouched=[(one, "127.0.0.1"), (one, "127.0.0.3")])
        self.assertNotIn("port-not-managed", self.s.log)


del AddressCase


if __name__ == "__main__":
    unittest.main()
