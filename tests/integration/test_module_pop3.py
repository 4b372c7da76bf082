"""test_module_pop3.py - POP3 through tlspolicyd, byte for byte

DESIGN.md "Protocol behaviour before TLS", POP3 column: CAPA before TLS
(no SASL, no USER, STLS present) and after it (STLS gone), USER PASS APOP
AUTH refused with the -ERR [AUTH] line and their credentials never
forwarded, every command but CAPA STLS QUIT refused on a starttls port,
the upgrade and the upgrade again inside TLS, STLS injection, and the
8 KiB line limit.
"""

import os

from modcommon import (POP3_GO_TLS, POP3_NEED_TLS, POP3_TLS_ACTIVE,
                       POP3_TOO_LONG, TEXT_LINE_MAX, ModuleCase, message, nodelay, plain, unique)

CAPA_BEFORE_TLS = b"+OK Capability list follows\r\nPIPELINING\r\nUIDL\r\nTOP\r\nSTLS\r\n.\r\n"
CAPA_AFTER_TLS = b"+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\nPIPELINING\r\nUIDL\r\nTOP\r\n.\r\n"
PASSWORD = unique("pop3-pw")


class POP3Test(ModuleCase):
    ports = {"pop3": ("pop3", "starttls"),
             "pop3-d": ("pop3", "starttls"),        # the daemon offers STLS too
             "pop3-o": ("pop3", "opportunistic"),
             "pop3s": ("pop3", "implicit")}
    setup_args = {"password": PASSWORD, "server_tls": {"pop3-d": "starttls"}}

    def stls(self, r):
        r.sendline("STLS")
        self.assertEqual(r.read_line(), POP3_GO_TLS)
        r.starttls()

    def capa(self, r):
        r.sendline("CAPA")
        return r.read_until(b"\r\n.\r\n")

    def quit(self, r):
        r.sendline("QUIT")
        self.assertEqual(r.read_all(), b"+OK Logging out.\r\n")

    # --- capabilities
    def test_capa_before_tls(self):
        for port in ("pop3", "pop3-d", "pop3-o"):
            with self.subTest(port=port):
                r = self.pop3_greeted(port)
                self.assertEqual(self.capa(r), CAPA_BEFORE_TLS)
                self.quit(r)
                self.assertServerGot(r, ["CAPA", "QUIT"])

    def test_capa_after_tls(self):
        for port in ("pop3", "pop3-d", "pop3-o"):
            with self.subTest(port=port):
                r = self.pop3_greeted(port)
                self.stls(r)
                self.assertEqual(self.capa(r), CAPA_AFTER_TLS)
                self.quit(r)
                self.assertServerGot(r, ["CAPA", "QUIT"])
        r = self.pop3_greeted("pop3s", tls=True)
        self.assertEqual(self.capa(r), CAPA_AFTER_TLS)

    # --- authentication before TLS
    def test_auth_refused_never_forwarded(self):
        secret = unique("refused-pw")
        blob = plain("test", secret)
        attempts = ["USER test", "PASS " + secret, "user test", "pass " + secret,
                    "APOP test c4c9334bac560ecc979e58001b3e22fb", "AUTH PLAIN " + blob,
                    "AUTH PLAIN", "AUTH"]
        for port in ("pop3", "pop3-o"):
            with self.subTest(port=port):
                r = self.pop3_greeted(port)
                for cmd in attempts:
                    r.sendline(cmd)
                    self.assertEqual(r.read_line(), POP3_NEED_TLS, cmd)
                self.assertEqual(self.capa(r), CAPA_BEFORE_TLS)
                self.quit(r)
                conn = self.assertServerGot(r, ["CAPA", "QUIT"])
                self.assertEqual(self.s.events("auth", conn=conn), [])
                self.log_for(r, "action=refuse reason=auth-before-tls")
        self.assertNeverSeen(secret, blob)

    def test_commands_before_stls_refused_but_capa_stls_quit(self):
        r = self.pop3_greeted("pop3")
        for cmd in ("STAT", "LIST", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP",
                    "LANG", "BOGUS"):
            r.sendline(cmd)
            self.assertEqual(r.read_line(), POP3_NEED_TLS, cmd)
        self.assertEqual(self.capa(r), CAPA_BEFORE_TLS)
        self.quit(r)
        self.assertServerGot(r, ["CAPA", "QUIT"])
        self.log_for(r, "action=refuse reason=command-before-tls")

    def test_opportunistic_passes_other_commands(self):
        r = self.pop3_greeted("pop3-o")
        r.sendline("STAT")
        self.assertEqual(r.read_line(), b"-ERR Not logged in.\r\n")     # the daemon's answer
        r.sendline("NOOP")
        self.assertEqual(r.read_line(), b"+OK\r\n")
        r.sendline("USER test")
        self.assertEqual(r.read_line(), POP3_NEED_TLS)
        self.quit(r)
        self.assertServerGot(r, ["STAT", "NOOP", "QUIT"])

    # --- the upgrade
    def test_upgrade_reply_and_again_inside_tls(self):
        r = self.pop3_greeted("pop3")
        self.stls(r)
        r.sendline("STLS")
        self.assertEqual(r.read_line(), POP3_TLS_ACTIVE)
        r.sendline("NOOP")
        self.assertEqual(r.read_line(), b"+OK\r\n")
        self.quit(r)
        self.assertServerGot(r, ["NOOP", "QUIT"])
        self.log_for(r, "action=starttls")
        self.log_for(r, r"action=tls version=TLSv1\.[23] suite=\S+")
        self.log_for(r, "action=refuse reason=tls-already-active")

    def test_stls_on_implicit_port(self):
        r = self.pop3_greeted("pop3s", tls=True)
        r.sendline("STLS")
        self.assertEqual(r.read_line(), POP3_TLS_ACTIVE)
        self.quit(r)
        self.assertServerGot(r, ["QUIT"])

    def test_session_after_stls(self):
        """the positive control: poplib with STLS logs in and reads a message"""
        subject = unique("pop3")
        with open(os.path.join(self.s.maildir, "%s.eml" % subject), "wb") as f:
            f.write(message(subject))
        for port in ("pop3", "pop3s"):
            with self.subTest(port=port):
                if port == "pop3":
                    c = self.s.pop3(port)
                    self.assertNotIn("USER", c.capa())
                    c.stls()
                else:
                    c = self.s.pop3_ssl(port)
                caps = c.capa()
                self.assertNotIn("STLS", caps)
                self.assertEqual(caps["SASL"], ["PLAIN"])
                c.user("test")
                self.assertTrue(c.pass_(PASSWORD).startswith(b"+OK"))
                n, _ = c.stat()
                bodies = [b"\r\n".join(c.retr(i)[1]) + b"\r\n" for i in range(1, n + 1)]
                self.assertIn(message(subject), bodies)
                c.quit()
        self.assertEqual(len(self.s.events("auth", ok=True, mech="USER", user="test")), 2)

    # --- STLS command injection
    def test_injection_after_stls_is_discarded(self):
        secret = unique("injected-pw")
        for injected in (b"CAPA\r\n", ("USER test\r\nPASS %s\r\n" % secret).encode()):
            with self.subTest(injected=injected):
                r = self.pop3_greeted("pop3")
                r.send(b"STLS\r\n" + injected)
                self.assertEqual(r.read_line(), POP3_GO_TLS)
                r.starttls()
                r.sendline("NOOP")
                self.assertEqual(r.read_line(), b"+OK\r\n")
                self.quit(r)
                self.assertServerGot(r, ["NOOP", "QUIT"])
                self.log_for(r, "action=discard reason=injection bytes=%d" % len(injected))
        self.assertNeverSeen(secret)

    def test_injection_after_the_ok_is_discarded(self):
        r = nodelay(self.pop3_greeted("pop3"))
        r.send(b"STLS\r\n")
        self.assertEqual(r.read_line(), POP3_GO_TLS)
        r.send(b"CAPA\r\n")
        r.starttls()
        r.sendline("NOOP")
        self.assertEqual(r.read_line(), b"+OK\r\n")
        self.quit(r)
        self.assertServerGot(r, ["NOOP", "QUIT"])
        self.log_for(r, "action=discard reason=injection bytes=6")

    # --- limits: 8 KiB lines before TLS
    def test_line_limit(self):
        longest = "CAPA " + "x" * (TEXT_LINE_MAX - len("CAPA ") - 2)
        r = self.pop3_greeted("pop3")
        r.sendline(longest)
        self.assertEqual(r.read_until(b"\r\n.\r\n"), CAPA_BEFORE_TLS)
        self.quit(r)
        self.assertServerGot(r, [longest, "QUIT"])

        r = self.pop3_greeted("pop3")
        r.sendline(longest + "x")
        self.assertEqual(r.read_all(), POP3_TOO_LONG)
        self.assertServerGot(r, [])
        self.log_for(r, "action=close reason=line-too-long")


if __name__ == "__main__":
    import unittest
    unittest.main()
