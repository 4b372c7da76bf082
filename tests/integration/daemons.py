"""daemons.py - private instances of Debian's Postfix and Dovecot under the shim

The real-daemon tests run Postfix 3.7 and Dovecot 2.3 as the distribution
ships them, but as instances of their own: a config directory, queue, state
and run directories, and logs in a temp dir, listening on loopback high
ports.  /etc/postfix, /etc/dovecot and the system's own instances (if any
run) are never touched.  Each fixture is a context manager, like
harness.Setup, and is composed with a Setup that runs tlspolicyd alone
(Setup(..., server=False)): the policy's managed ports are the ones the
daemons listen on.

    with harness.Setup(PORTS, server=False) as s, \\
         Postfix(s, submission="submission", submissions="submissions") as pf, \\
         Dovecot(s, imap="imap", imaps="imaps", pop3="pop3", pop3s="pop3s",
                 sasl_socket=Postfix.sasl_socket(s)) as dc:
        ...
        pf.wait_log(r"connect from unknown\\[127\\.0\\.0\\.2\\]")
        pf.messages()                        # what virtual(8) delivered

Postfix first: Dovecot's SASL socket goes into Postfix's queue directory.

Each fixture writes the configuration a host has before tlspolicy, the
daemon doing its own TLS with the test certificate (harness.test_cert()),
then runs the real `tlspolicyctl enable postfix|dovecot --config-dir DIR
--no-systemd --shim SHIM -c POLICY` on it, as an admin would: enable owns
the shim's pass-through (DESIGN.md, "What real daemons do to a preloaded
module": both masters scrub their children's environment, so it adds
`LD_PRELOAD=... TLSPOLICY_CONF=...` to Postfix's and Dovecot's
import_environment) and, on tls_by = module ports, the daemon's TLS
settings (plaintext behind tlspolicyd); on tls_by = daemon ports it must
leave them.  What enable printed is kept (enable_output).  The only
pass-through the fixture writes itself is test-only: TLSPOLICY_RUNDIR,
TLSPOLICY_SYSLOG_SOCKET and the instance marker.  The masters are started
with LD_PRELOAD and TLSPOLICY_CONF in their environment, which the systemd
drop-in gives them in production (enable writes it; --no-systemd here):
status judges every process holding a managed listener, masters included.

The mail setup is a common virtual-user one, nothing test-only:
- Dovecot: passdb and userdb passwd-file with one user (test/secret,
  uid/gid MAIL_UID, no system account needed), Maildir under the temp dir,
  `ssl = required` with IMAP and POP3 listeners on a STARTTLS-style and an
  implicit (`ssl = yes`) port each, login processes with `service_count`
  1 (Dovecot's default, high-security mode) or 0, and a small
  `default_idle_kill` if asked.  Its SASL service listens inside Postfix's
  queue directory, at private/auth, as the Dovecot and Postfix
  documentation set it up, so that a chrooted smtpd reaches it.
- Postfix: smtpd chrooted into the queue directory (Debian's master.cf
  default; the jail is prepared by Debian's own configure-instance.sh, as
  the postfix@ unit does), `smtpd_tls_security_level = may`, submission
  and submissions services as Debian's master.cf examples have them
  (`encrypt` and `smtpd_tls_auth_only` on the first, wrapper mode on the
  second), SASL through Dovecot (`smtpd_sasl_type = dovecot`,
  `smtpd_sasl_path = private/auth`), `mynetworks = 127.0.0.1/32` only,
  relay restrictions permit_mynetworks, permit_sasl_authenticated,
  reject_unauth_destination, and virtual(8) delivery of test@mail.test into
  the Maildir Dovecot reads.  Nothing ever leaves the host: every other
  destination goes to the error transport.  The Postfix log goes to a file
  (`maillog_file`, through postlogd).
- weak=True (the tls_by = daemon tests) configures both badly on purpose:
  TLS 1.0 and SHA-1 CBC suites allowed (`@SECLEVEL=0`; Debian's OpenSSL 3
  has no 3DES left), and Postfix's submission offering AUTH before
  STARTTLS (`may`, no `smtpd_tls_auth_only`).

Starting: Postfix with `postfix -c DIR start`, Dovecot with `dovecot -c FILE
-F` (the command Debian's systemd unit runs), each awaited until its ports
listen (read from /proc/net/tcp: a test connection would be a client).
Stopping: `postfix -c DIR stop` and `doveadm -c FILE stop`, then whatever
process of the instance is still there is killed, also when a test failed
or the start did not complete.  An instance's processes are its master and
the master's descendants, and those with TLSPOLICY_TEST_INSTANCE in their
environment (Postfix passes it on; Dovecot overwrites its processes'
environment with their titles).  The test process makes itself a child
subreaper, so that Postfix's daemonized master and whatever outlives its
parent are reaped here, not left as zombies.

If the Setup catches what the shim logs (Setup(shim_log=True)), the daemons
get TLSPOLICY_SYSLOG_SOCKET too.

shim=False leaves tlspolicy out altogether (test_probe_daemons.py): no
`enable`, no LD_PRELOAD, the daemons doing their own TLS as configured by
hand, beside a Setup(daemonless=True, server=False) that only provides the
ports and the temp dir.  Extra settings, written after the fixture's own
(the later one wins in main.cf and dovecot.conf), make a configuration good
or bad on purpose: Postfix(main_cf=..., submission_options=...) and
Dovecot(extra_conf=...).
"""

import ctypes
import os
import re
import shutil
import signal
import time

import harness

MAIL_UID = 64999            # owner of the test user's Maildir; no passwd entry needed
MAIL_DOMAIN = "mail.test"
USER, PASSWORD = "test", "secret"
ADDRESS = "%s@%s" % (USER, MAIL_DOMAIN)

START_TIMEOUT = 20          # seconds for a daemon to listen on all its ports
STOP_TIMEOUT = 10           # seconds for its own stop command

PACKAGES = "postfix dovecot-imapd dovecot-pop3d"
POSTFIX, DOVECOT, DOVEADM = "/usr/sbin/postfix", "/usr/sbin/dovecot", "/usr/bin/doveadm"

# Postfix's import_environment default (postconf -d, 3.7): kept, the shim's added
POSTFIX_ENV_DEFAULT = ("MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C "
                       "POSTLOG_SERVICE POSTLOG_HOSTNAME")
# Dovecot's (doveconf -d, 2.3)
DOVECOT_ENV_DEFAULT = "TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS NOTIFY_SOCKET"
# test-only variables the fixture passes on itself (enable passes LD_PRELOAD
# and TLSPOLICY_CONF)
TEST_ENV = ("TLSPOLICY_RUNDIR", "TLSPOLICY_SYSLOG_SOCKET")
MARKER = "TLSPOLICY_TEST_INSTANCE"


def require_daemons():
    """skip (or, in CI, fail) unless Postfix and Dovecot (imapd, pop3d) are installed"""
    harness.require_module()
    if os.geteuid() != 0:
        harness.skip_or_fail("Postfix and Dovecot instances are started as root, as they are in real use")
    missing = [p for p in (POSTFIX, DOVECOT, DOVEADM,
                           "/usr/lib/dovecot/imap", "/usr/lib/dovecot/pop3")
               if not os.path.exists(p)]
    if missing:
        harness.skip_or_fail("Postfix and Dovecot are not installed (apt-get install %s): no %s"
                             % (PACKAGES, ", ".join(missing)))


# --- processes ----------------------------------------------------------------

_subreaper = False


def become_subreaper():
    """PR_SET_CHILD_SUBREAPER: daemonized processes we start are reparented
    to us, not to init, so close() can reap them"""
    global _subreaper
    if not _subreaper:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
        _subreaper = True


def _proc_pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def instance_pids(marker, root=None, title=None):
    """pids of the live processes of an instance: root (its master) and its
    descendants, those whose environment has MARKER=marker (Dovecot
    overwrites its processes' environment with their titles, Postfix does
    not), and those whose title (command line) starts with title"""
    want = ("%s=%s" % (MARKER, marker)).encode()
    pids, parents = set(), {}
    for pid in _proc_pids():
        parents[pid] = _parent(pid)
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if want in f.read().split(b"\0"):
                    pids.add(pid)
            if title is not None:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if f.read().startswith(title.encode()):
                        pids.add(pid)
        except OSError:
            continue
    if root is not None and root in parents:
        pids.add(root)
        grew = True
        while grew:
            new = {p for p, pp in parents.items() if pp in pids and p not in pids}
            pids |= new
            grew = bool(new)
    return sorted(p for p in pids if _state(p) not in (None, "Z"))


def process_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def reap(pids):
    """collect the exit status of those of pids that are our (adopted) children"""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def reap_zombie_children(keep):
    """reap our children that have exited, but for the pids in keep
    (Popen's own, which must collect them themselves): the orphans of a
    stopped instance that exited after it was stopped"""
    me = os.getpid()
    for pid in _proc_pids():
        if pid not in keep and _parent(pid) == me and _state(pid) == "Z":
            reap([pid])


def kill_pids(pids, grace=2):
    """SIGKILL those of pids still alive, wait up to grace seconds for them
    to be gone, reap all pids; the ones that were still alive"""
    left = [p for p in pids if _state(p) not in (None, "Z")]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap(pids)
        if all(_state(p) in (None, "Z") for p in left):
            break
        time.sleep(0.05)
    reap(pids)
    return left


def _state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def listening(port, addr="127.0.0.1"):
    """True if some socket listens on addr:port (TCP, IPv4), from /proc/net/tcp:
    connecting to find out would be a connection to the daemon"""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(addr.split("."))), port)
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                return True
    return False


def wait_text(read, pattern, timeout, what):
    """the first match of pattern (a regex) in read(), waiting up to timeout s"""
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        text = read()
        m = rx.search(text)
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError("no %r in %s within %s s; its end:\n%s" % (pattern, what, timeout, text[-4000:]))
        time.sleep(0.05)


def read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Instance:
    """what Postfix and Dovecot share: a directory in the Setup's temp dir,
    a marker in the environment, a log, cleanup"""

    name = "daemon"

    def __init__(self, setup, ports, shim=True):
        require_daemons()
        become_subreaper()
        self.shim = shim
        self.addr = "127.0.0.1"     # where it listens
        self.setup = setup
        self.ports = {role: setup.ports[name] for role, name in ports.items() if name}
        self.dir = os.path.join(setup.tmp, self.name)
        self.marker = self.dir
        self.leftovers = []
        self.running = self.closed = False
        self.preload = shim         # the master starts with the drop-in's environment
        self.enable_output = ""
        setup.add_closer(self.close)
        os.makedirs(self.dir)
        # the Maildir's path must be traversable by the mail user and by Postfix
        for d in (setup.tmp, self.dir):
            os.chmod(d, 0o755)

    @staticmethod
    def shim_path():
        """what LD_PRELOAD gets: the built shim (after libasan in a
        sanitizer build; ':'-separated, Postfix splits its settings at blanks)"""
        return harness.preload_env({})["LD_PRELOAD"].replace(" ", ":")

    def test_env(self):
        """the test-only variables the daemon's processes need, which the
        fixture passes on itself: TLSPOLICY_RUNDIR, TLSPOLICY_SYSLOG_SOCKET
        if the Setup catches what the shim logs (Setup(shim_log=True)), and
        the instance marker"""
        if not self.shim:           # not under tlspolicy: only the marker
            return {MARKER: self.marker}
        env = {"TLSPOLICY_RUNDIR": self.setup.rundir, MARKER: self.marker}
        sock = self.setup.server_extra_env.get("TLSPOLICY_SYSLOG_SOCKET")
        if sock:
            os.chmod(sock, 0o666)       # the daemons' users send to it too
            env["TLSPOLICY_SYSLOG_SOCKET"] = sock
        return env

    def dropin_env(self):
        """the systemd drop-in's Environment= lines that `enable` writes"""
        return {"LD_PRELOAD": self.shim_path(), "TLSPOLICY_CONF": self.setup.conf}

    def ctl_enable(self, verb="enable"):
        """tlspolicyctl enable|disable DAEMON on this instance's configuration,
        as an admin runs it (without a systemd drop-in: no unit here); (rc, out, err)"""
        return harness.run([harness.CTL, verb, self.name, "--config-dir", self.confdir, "--no-systemd",
                            "--shim", self.shim_path(), "-c", self.setup.conf], env=self.admin_env())

    def enable(self):
        if not self.shim:           # a daemon not under tlspolicy: nothing to enable
            return ""
        rc, out, err = self.ctl_enable()
        if rc != 0:
            raise harness.SetupError("tlspolicyctl enable %s failed (%d):\n%s%s" % (self.name, rc, out, err))
        self.enable_output = out
        return out

    def admin_env(self, **extra):
        """the environment of the daemons' own commands (postfix, doveadm):
        the test's, without the shim, with the sbin directories on PATH"""
        env = self.setup.env(**extra)
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + env.get("PATH", "")
        return env

    def env(self):
        """the environment the daemon's master is started with: the test
        variables and, unless preload is False (as after `disable` and a
        restart), the shim's, as the systemd drop-in gives it in production"""
        env = dict(self.admin_env(), **self.test_env())
        if self.preload:
            env.update(self.dropin_env())
        return env

    def wait_listening(self, proc=None):
        deadline = time.monotonic() + START_TIMEOUT
        while not all(listening(p, self.addr) for p in self.ports.values()):
            if proc is not None and proc.poll() is not None:
                raise harness.SetupError("%s exited with %s; its log:\n%s" % (self.name, proc.returncode, self.log))
            if time.monotonic() > deadline:
                raise harness.SetupError("%s not listening on %s after %d s; its log:\n%s"
                                         % (self.name, sorted(self.ports.values()), START_TIMEOUT, self.log))
            time.sleep(0.05)

    def master_pid(self):
        return None

    title = None

    def pids(self):
        """the instance's live processes"""
        return instance_pids(self.marker, self.master_pid(), self.title)

    def close(self):
        """stop the daemon with its own command, then kill what is left of
        it and reap what became ours (leftovers: what had to be killed)"""
        if self.closed:
            return
        self.closed = True
        seen = self.pids()
        if self.running:
            self.running = False
            try:
                self.stop()
            except Exception:
                pass
        self.leftovers = kill_pids(sorted(set(seen) | set(self.pids())))
        popen = {p.pid for live in harness._live for p in live.procs} | {p.pid for p in self.setup.procs}
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            reap_zombie_children(popen)
            if not self.pids():
                break
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def log(self):
        return read_text(self.log_path)

    def wait_log(self, pattern, timeout=5):
        return wait_text(lambda: self.log, pattern, timeout, self.name + "'s log")


# --- Dovecot --------------------------------------------------------------------

DOVECOT_CONF = """\
# a private Dovecot instance of the tlspolicy integration tests (daemons.py)
instance_name = {instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {log}
listen = {listen}
protocols = imap pop3

# Dovecot's own TLS; `tlspolicyctl enable dovecot` changes what a
# tls_by = module port needs (tlspolicy-dovecot.conf, included at the end)
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
{weak}
# test-only pass-through; enable adds the shim's
import_environment = {import_environment}

default_idle_kill = {idle_kill}
login_log_format_elements = user=<%u> method=%m rip=%r rport=%{{rport}} lip=%l lport=%{{lport}} mpid=%e %c session=<%{{session}}>
first_valid_uid = {uid}
mail_location = maildir:{mailroot}/%n

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {users}
}}

service imap-login {{
  service_count = {service_count}
{imap_listeners}}}
service pop3-login {{
  service_count = {service_count}
{pop3_listeners}}}
{sasl}"""

DOVECOT_WEAK = """\
# deliberately weak (test_daemons_daemon.py): TLS 1.0 and SHA-1 CBC suites
ssl_min_protocol = TLSv1
ssl_cipher_list = DEFAULT:@SECLEVEL=0
"""

DOVECOT_SASL = """\
service auth {{
  unix_listener {path} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""


class Dovecot(Instance):
    """A private Dovecot serving IMAP and POP3 under the shim, put there by
    `tlspolicyctl enable dovecot`: in plaintext behind tlspolicyd on
    tls_by = module ports, with its own TLS on tls_by = daemon ones.

    setup: a harness.Setup; imap, imaps, pop3, pop3s: names of its ports
    (each optional) for the 143-, 993-, 110- and 995-style listeners;
    service_count: of imap-login and pop3-login (1: a login process per
    connection, which hands the client to imap/pop3 and exits; 0: login
    processes serve many); idle_kill: default_idle_kill, in seconds;
    sasl_socket: a path for Dovecot's SASL service (Postfix.sasl_socket);
    weak: TLS 1.0 and SHA-1 CBC suites allowed; shim: False for a Dovecot
    not under tlspolicy (no enable, no LD_PRELOAD); extra_conf: settings
    appended to dovecot.conf, overriding the fixture's; listen: its address
    (Dovecot takes a client whose address is the server's own, as on
    127.0.0.1 to 127.0.0.1, for a secured one and lets it log in in clear:
    listening on 127.0.0.2, a local client comes from another address).

    Attributes: confdir, conf, log_path, mailroot (Maildirs, one per user),
    ports, enable_output.
    """

    name = "dovecot"
    _serial = 0

    def __init__(self, setup, *, imap=None, imaps=None, pop3=None, pop3s=None, service_count=1,
                 idle_kill=60, sasl_socket=None, weak=False, shim=True, extra_conf="", listen="127.0.0.1"):
        super().__init__(setup, {"imap": imap, "imaps": imaps, "pop3": pop3, "pop3s": pop3s}, shim)
        self.extra_conf, self.addr = extra_conf, listen
        Dovecot._serial += 1
        self.instance = "tp-test-%d-%d" % (os.getpid(), Dovecot._serial)
        self.title = "dovecot-%s/" % self.instance       # its processes' titles
        self.confdir = self.dir
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.mailroot = mailroot(setup)
        self.proc = None
        try:
            self._write_config(service_count, idle_kill, sasl_socket, weak)
            self.enable()
            self.start()
        except BaseException:
            self.close()
            raise

    def _listeners(self, plain, implicit):
        out = ""
        for role, ssl in ((plain, ""), (implicit, "    ssl = yes\n")):
            if role in self.ports:
                out += "  inet_listener %s {\n    port = %d\n%s  }\n" % (role, self.ports[role], ssl)
        return out

    def _write_config(self, service_count, idle_kill, sasl_socket, weak):
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            f.write("%s:{PLAIN}%s:%d:%d::%s/%s::\n" % (USER, PASSWORD, MAIL_UID, MAIL_UID, self.mailroot, USER))
        shutil.chown(users, "root", "dovecot")     # auth runs as dovecot
        os.chmod(users, 0o640)
        sasl = DOVECOT_SASL.format(path=sasl_socket) if sasl_socket else ""
        cert, key = harness.test_cert()
        text = DOVECOT_CONF.format(
            instance=self.instance, dir=self.dir, log=self.log_path, uid=min(MAIL_UID, 1000), listen=self.addr,
            cert=cert, key=key, weak=DOVECOT_WEAK if weak else "",
            import_environment=" ".join((DOVECOT_ENV_DEFAULT,) + TEST_ENV + (MARKER,)),
            idle_kill="%d secs" % idle_kill, mailroot=self.mailroot, users=users,
            service_count=service_count, sasl=sasl,
            imap_listeners=self._listeners("imap", "imaps"), pop3_listeners=self._listeners("pop3", "pop3s"))
        if self.extra_conf:
            text += "\n# this test's own settings\n" + self.extra_conf
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        self.proc = self.setup._spawn([DOVECOT, "-c", self.conf, "-F"], self.env(),
                                      os.path.join(self.dir, "dovecot.stderr"))
        self.running = True
        self.wait_listening(self.proc)
        self.wait_log(r"master: Info: Dovecot v\S+ .*starting up", START_TIMEOUT)

    def master_pid(self):
        proc = getattr(self, "proc", None)
        return proc.pid if proc is not None and proc.poll() is None else None

    def doveadm(self, *args, timeout=harness.RUN_TIMEOUT):
        """doveadm -c CONF ARGS (without the shim); (rc, out, err)"""
        return harness.run([DOVEADM, "-c", self.conf, *args], timeout=timeout, env=self.admin_env())

    def reload(self):
        rc, out, err = self.doveadm("reload")
        if rc != 0:
            raise AssertionError("doveadm reload failed (%d): %s%s" % (rc, out, err))

    def stop(self):
        self.doveadm("stop", timeout=STOP_TIMEOUT)
        if self.proc is not None:
            harness.stop_process(self.proc)

    def restart(self, preload=True):
        """stop, then start again; preload=False: without the drop-in's
        LD_PRELOAD, as after `disable dovecot` and a restart"""
        self.stop()
        self.running = False
        kill_pids(self.pids())      # nothing of the old one may hold a listener
        self.preload = preload
        self.start()

    @property
    def stderr(self):
        return read_text(os.path.join(self.dir, "dovecot.stderr"))


# --- Postfix --------------------------------------------------------------------

POSTFIX_MAIN = """\
# a private Postfix instance of the tlspolicy integration tests (daemons.py)
compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
maillog_file_prefixes = {dir}
maillog_file = {log}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4

# test-only pass-through; `tlspolicyctl enable postfix` adds the shim's
# (master passes its children only what is named here)
import_environment = {import_environment}

myhostname = {domain}
mydomain = {domain}
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
readme_directory = no
smtputf8_enable = no

# the open-relay trap: only 127.0.0.1 may relay without authenticating
mynetworks = {mynetworks}
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination

# Postfix's own TLS; `tlspolicyctl enable postfix` turns it off on the
# services of tls_by = module ports (master.cf -o overrides)
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
{weak}
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth

# the log names the client and its port; no DNS in a test
smtpd_peername_lookup = no
smtpd_client_port_logging = yes
smtpd_error_sleep_time = 0
in_flow_delay = 0
# postscreen, where it runs: mynetworks pass at once (its default
# permit_mynetworks), others after the pregreet test, which waits this long
postscreen_greet_wait = 1s

virtual_mailbox_domains = {domain}
virtual_mailbox_base = {mailroot}
virtual_mailbox_maps = inline:{{ {address}={user}/ }}
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}

# nothing leaves this host (discard, not error: smtpd refuses a recipient
# whose transport is error, before any relay check)
default_transport = discard:tlspolicy tests deliver nothing off this host
relay_transport = discard:tlspolicy tests deliver nothing off this host
"""

# Debian's master.cf (/usr/share/postfix/master.cf.dist) without the
# example pipe transports; the smtpd services come first
POSTFIX_MASTER_TAIL = """\
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=postfix/$service_name
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       y       -       -       lmtp
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


# postscreen(8) on the MX port, as in its README: it accepts, screens, and
# passes the client's socket to an smtpd of the "pass" type
POSTFIX_POSTSCREEN = """\
{port} inet n - {chroot} - 1 postscreen
smtpd     pass  -       -       {chroot}       -       -       smtpd
  -o syslog_name=postfix/smtp
dnsblog   unix  -       -       {chroot}       -       0       dnsblog
tlsproxy  unix  -       -       {chroot}       -       0       tlsproxy
"""


POSTFIX_WEAK = """\
# deliberately weak (test_daemons_daemon.py): TLS 1.0 and SHA-1 CBC suites
smtpd_tls_protocols = >=TLSv1
smtpd_tls_mandatory_protocols = >=TLSv1
smtpd_tls_ciphers = medium
smtpd_tls_mandatory_ciphers = medium
tls_medium_cipherlist = DEFAULT:@SECLEVEL=0
"""

# the submission services of Debian's master.cf examples; weak: AUTH offered
# before STARTTLS too
POSTFIX_SERVICE_OPTIONS = {
    "smtp": (),
    "submission": ("smtpd_tls_security_level=encrypt", "smtpd_sasl_auth_enable=yes", "smtpd_tls_auth_only=yes"),
    "submissions": ("smtpd_tls_wrappermode=yes", "smtpd_sasl_auth_enable=yes"),
}
POSTFIX_WEAK_SUBMISSION = ("smtpd_tls_security_level=may", "smtpd_sasl_auth_enable=yes")


def mailroot(setup):
    """the Maildirs' parent, shared by a Setup's Postfix and Dovecot:
    owned by the mail user, whom virtual(8) and imap/pop3 run as"""
    path = os.path.join(setup.tmp, "mail")
    if not os.path.isdir(path):
        os.makedirs(path)
        os.chown(path, MAIL_UID, MAIL_UID)
    return path


class Postfix(Instance):
    """A private Postfix under the shim, put there by `tlspolicyctl enable
    postfix`: its smtpd serves plaintext behind tlspolicyd on tls_by =
    module ports, and does its own TLS on tls_by = daemon ones.

    setup: a harness.Setup; smtp, submission, submissions: names of its
    ports (each optional) for the 25-style MX (no SASL), the 587-style and
    the 465-style smtpd (SASL through a Dovecot started after it with
    sasl_socket=Postfix.sasl_socket(setup)); mynetworks; chroot: smtpd
    chrooted into the queue directory ("y", as Debian ships it) or not;
    postscreen: postscreen(8) in front of the MX port's smtpd, which then
    gets each client socket passed from postscreen (a socket it did not
    accept); weak: TLS 1.0 and SHA-1 CBC suites allowed, AUTH offered
    before STARTTLS on submission; shim: False for a Postfix not under
    tlspolicy (no enable, no LD_PRELOAD); main_cf: settings appended to
    main.cf, overriding the fixture's; submission_options: the submission
    service's -o options instead of Debian's example ones.

    Attributes: confdir, spool, log_path (the maillog_file), mailroot,
    ports, enable_output.
    """

    name = "postfix"

    def __init__(self, setup, *, smtp=None, submission=None, submissions=None,
                 mynetworks="127.0.0.1/32", chroot=True, postscreen=False, weak=False, shim=True,
                 main_cf="", submission_options=None):
        super().__init__(setup, {"smtp": smtp, "submission": submission, "submissions": submissions}, shim)
        self.main_cf, self.submission_options = main_cf, submission_options
        self.confdir = os.path.join(self.dir, "conf")
        self.spool = self.spool_dir(setup)
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "maillog")
        self.mailroot = mailroot(setup)
        try:
            self._write_config(mynetworks, "y" if chroot else "n", postscreen, weak)
            self.enable()
            self._prepare()
            self.start()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def spool_dir(setup):
        return os.path.join(setup.tmp, "postfix", "spool")

    @classmethod
    def sasl_socket(cls, setup):
        """where Dovecot's SASL service listens for this Setup's Postfix:
        private/auth in its queue directory, reachable from the chroot"""
        return os.path.join(cls.spool_dir(setup), "private", "auth")

    def _write_config(self, mynetworks, chroot, postscreen, weak):
        os.makedirs(self.confdir)
        test_env = " ".join("%s=%s" % kv for kv in self.test_env().items())
        cert, key = harness.test_cert()
        with open(os.path.join(self.confdir, "main.cf"), "w") as f:
            f.write(POSTFIX_MAIN.format(
                spool=self.spool, data=self.data, dir=self.dir, log=self.log_path,
                import_environment=POSTFIX_ENV_DEFAULT + " " + test_env,
                cert=cert, key=key, weak=POSTFIX_WEAK if weak else "",
                domain=MAIL_DOMAIN, mynetworks=mynetworks, mailroot=self.mailroot,
                address=ADDRESS, user=USER, uid=MAIL_UID))
            if self.main_cf:
                f.write("\n# this test's own settings\n" + self.main_cf)
        services = ""
        for role in ("smtp", "submission", "submissions"):
            if role not in self.ports:
                continue
            if role == "smtp" and postscreen:
                services += POSTFIX_POSTSCREEN.format(port=self.ports[role], chroot=chroot)
                continue
            services += "%d inet n - %s - - smtpd\n  -o syslog_name=postfix/%s\n" % (
                self.ports[role], chroot, role)
            options = POSTFIX_WEAK_SUBMISSION if weak and role == "submission" else POSTFIX_SERVICE_OPTIONS[role]
            if role == "submission" and self.submission_options is not None:
                options = self.submission_options
            services += "".join("  -o %s\n" % o for o in options)
        with open(os.path.join(self.confdir, "master.cf"), "w") as f:
            f.write(services + POSTFIX_MASTER_TAIL)

    def postfix(self, *args, timeout=harness.RUN_TIMEOUT, env=None):
        """postfix -c CONFDIR ARGS; (rc, out, err)"""
        return harness.run([POSTFIX, "-c", self.confdir, *args], timeout=timeout,
                           env=env or self.admin_env())

    def _prepare(self):
        """the queue and data directories, as `postfix check` makes them,
        and the chroot jail, as Debian's postfix@ unit prepares it"""
        os.makedirs(self.spool)
        os.makedirs(self.data)
        shutil.chown(self.data, "postfix")
        rc, out, err = self.postfix("check")
        if rc != 0:
            raise harness.SetupError("postfix check failed (%d): %s%s\n%s" % (rc, out, err, self.log))
        rc, out, err = harness.run(["/usr/lib/postfix/configure-instance.sh", "-"],
                                   env=self.admin_env(MAIL_CONFIG=self.confdir))
        if rc != 0:
            raise harness.SetupError("configure-instance.sh failed (%d): %s%s" % (rc, out, err))

    def start(self):
        # master gets LD_PRELOAD from its environment, as the systemd
        # drop-in gives it in production (postfix(1) also sets what
        # import_environment names, so master would have it either way)
        rc, out, err = self.postfix("start", timeout=START_TIMEOUT, env=self.env())
        self.running = True
        if rc != 0:
            raise harness.SetupError("postfix start failed (%d): %s%s\nits log:\n%s" % (rc, out, err, self.log))
        self.wait_listening()

    def stop(self):
        self.postfix("stop", timeout=STOP_TIMEOUT)

    def master_pid(self):
        try:
            with open(os.path.join(self.spool_dir(self.setup), "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def messages(self, user=USER):
        """the messages delivered to user's Maildir, as bytes, oldest first"""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.mailroot, user, sub)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
        return out

    def wait_message(self, needle, timeout=10, user=USER):
        """the delivered message containing needle (bytes), waiting for it"""
        deadline = time.monotonic() + timeout
        while True:
            hits = [m for m in self.messages(user) if needle in m]
            if hits:
                return hits[0]
            if time.monotonic() > deadline:
                raise AssertionError("no message with %r delivered to %s within %s s; the maillog:\n%s"
                                     % (needle, user, timeout, self.log[-4000:]))
            time.sleep(0.05)
