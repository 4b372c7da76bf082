"""test_module_refuse.py - tls = refuse: the plaintext port is disabled

DESIGN.md "tls modes": a protocol-correct refusal (SMTP 554 5.7.0, IMAP
* BYE, POP3 -ERR) naming the port to use instead -- the policy's implicit
port for the same protocol, else its starttls one, else none -- then the
close.  Whatever the client sends, and whatever the daemon says, never
passes.  Three Setups rotate which alternative each protocol has.
"""

from modcommon import ModuleCase

REFUSAL = {
    "smtp": "554 5.7.0 This plaintext port is disabled by policy; use %s\r\n",
    "imap": "* BYE This plaintext port is disabled by policy; use %s\r\n",
    "pop3": "-ERR This plaintext port is disabled by policy; use %s\r\n",
}
FIRST_WORDS = {"smtp": "EHLO client.test", "imap": "a LOGIN test secret", "pop3": "USER test"}


class RefuseCase(ModuleCase):
    # {protocol: the mode of the other port it has ("implicit", "starttls") or None}
    alternatives = {}

    @classmethod
    def setUpClass(cls):
        ports = {}
        for proto, alt in cls.alternatives.items():
            ports[proto + "-refuse"] = (proto, "refuse")
            if alt == "implicit":       # a starttls port too: implicit still comes first
                ports[proto + "-starttls"] = (proto, "starttls")
            if alt:
                ports[proto + "-" + alt] = (proto, alt)
        cls.ports = ports
        super().setUpClass()

    def expected(self, proto):
        alt = self.alternatives[proto]
        where = "port %d with TLS" % self.s.ports[proto + "-" + alt] if alt else "TLS"
        return (REFUSAL[proto] % where).encode()

    def check_refusal(self, proto, speak_first):
        r = self.s.raw(proto + "-refuse")
        if speak_first:                 # a client that does not wait for the greeting
            r.sendline(FIRST_WORDS[proto])
        self.assertEqual(r.read_all(), self.expected(proto), "the refusal, then the close")
        self.assertServerGot(r, [])
        self.log_for(r, "action=refuse reason=port-disabled")

    def test_refusal_names_the_alternative(self):
        for proto in self.alternatives:
            for speak_first in (False, True):
                with self.subTest(proto=proto, speak_first=speak_first):
                    self.check_refusal(proto, speak_first)

    def test_alternative_port_works(self):
        for proto, alt in self.alternatives.items():
            if alt is None:
                continue
            with self.subTest(proto=proto, alt=alt):
                port = proto + "-" + alt
                c = getattr(self.s, proto + ("_ssl" if alt == "implicit" else ""))(port)
                if proto == "smtp":
                    if alt == "starttls":
                        c.starttls()
                    self.assertEqual(c.login("test", "secret")[0], 235)
                    c.quit()
                elif proto == "imap":
                    if alt == "starttls":
                        c.starttls()
                    self.assertEqual(c.login("test", "secret")[0], "OK")
                    c.logout()
                else:
                    if alt == "starttls":
                        c.stls()
                    c.user("test")
                    self.assertTrue(c.pass_("secret").startswith(b"+OK"))
                    c.quit()


class RefuseImplicitStarttlsNone(RefuseCase):
    alternatives = {"smtp": "implicit", "imap": "starttls", "pop3": None}


class RefuseStarttlsNoneImplicit(RefuseCase):
    alternatives = {"smtp": "starttls", "imap": None, "pop3": "implicit"}


class RefuseNoneImplicitStarttls(RefuseCase):
    alternatives = {"smtp": None, "imap": "implicit", "pop3": "starttls"}


del RefuseCase          # the base class has no ports: not a test of its own


if __name__ == "__main__":
    import unittest
    unittest.main()
