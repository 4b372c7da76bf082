"""test_module_addresses.py - the daemon sees the real addresses

DESIGN.md: the shim fills accept()'s address with the real client and
answers getpeername()/getsockname() on the relayed socket with the real
TCP addresses, never the socketpair's (Postfix would otherwise take every
client for localhost: an open relay).  The test server records, for each
connection, accept()'s address ("peer"), getpeername() and getsockname();
each must be the client's own socket address and the address and port it
connected to: over IPv4, over IPv6, and for a connection inherited on fd 0
(inetd, systemd Accept=yes).
"""

import unittest

import harness
from modcommon import SMTP_GREETING, ModuleCase

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


del AddressCase


if __name__ == "__main__":
    unittest.main()
