/*
 * shim.c - tlspolicy.so, preloaded into mail daemons
 *
 * The shim reads the policy once, in its constructor (before any chroot or
 * privilege drop), to learn which local address:port pairs are managed
 * (published.h), then follows the ports file of each generation reload
 * publishes.  For a connection accepted on a managed address:port it
 * hands the TCP socket to
 * tlspolicyd and gives the daemon, in its place, one end of a UNIX stream
 * pair whose name carries the real addresses (relayname.h), so that
 * getpeername() and getsockname() keep telling the truth in every process
 * that ever holds the socket.
 *
 * Rules for code inside someone else's process (STYLE.md, PAM): no
 * threads, no forks, no exit, nothing written to the host's stdout or
 * stderr, errors to syslog (facility mail, prefix "tlspolicy:"), and fail
 * closed: if the policy cannot be read, or tlspolicyd cannot take a
 * connection, the connection is closed, never served in plaintext.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "handoff.h"
#include "policy.h"
#include "published.h"
#include "relayname.h"

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*getname_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*setsockopt_fn)(int, int, int, const void *, socklen_t);
typedef int (*getsockopt_fn)(int, int, int, void *, socklen_t *);

static struct {
	accept_fn accept;
	accept4_fn accept4;
	getname_fn getpeername;
	getname_fn getsockname;
	setsockopt_fn setsockopt;
	getsockopt_fn getsockopt;
} real;

/* what the constructor learnt, and each newer published generation */
static struct {
	int ready;		/* the policy was read */
	struct tp_ports ports;	/* the managed address:port pairs, the relay socket */
	struct tp_ports scratch;	/* a new ports file, parsed here first */
	struct sockaddr_un relay;
	socklen_t relay_len;
	uint32_t serial;	/* only this process's accept path writes it */
} shim;

/*
 * The run directory, opened in the constructor (before any chroot): at
 * each accept one fstatat() tells whether tlspolicyctl reload published a
 * new ports file (a rename gives it a new inode).  Like the log socket it
 * is recognised by its inode, in case the daemon reused the number.
 */
static struct {
	int fd;
	dev_t dev;
	ino_t ino;
	ino_t ports_ino;	/* the ports file last read; 0: none */
} rundir = { -1, 0, 0, 0 };

/*
 * The log socket, connected in the constructor: the processes that accept
 * are chrooted by the time they have something to say (Dovecot's login
 * processes into their run directory, Postfix's smtpd and postscreen into
 * the queue directory), and there /dev/log cannot be named any more.  It is
 * recognised by its inode, like a relayed socket, because a daemon may
 * close descriptors it does not know of and reuse the number.
 */
static struct {
	int fd;
	dev_t dev;
	ino_t ino;
} logsock = { -1, 0, 0 };

/*
 * log_connect - a datagram socket connected to syslog's /dev/log or, in
 * tests, to TLSPOLICY_SYSLOG_SOCKET (as TLSPOLICY_CONF points at their
 * policy, so they can read what was said); -1 if there is none
 */
static int log_connect(void)
{
	const char *path = getenv("TLSPOLICY_SYSLOG_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s;

	if (path == NULL || path[0] != '/')
		path = "/dev/log";
	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(s);
		s = -1;
	}
	return s;
}

/* high_fd - fd moved above 0-2 (a daemon started with them closed owns them) */
static int high_fd(int fd)
{
	int high;

	if (fd < 0 || fd > 2)
		return fd;
	high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return high;
}

/* log_open - keep a log socket, above fds 0-2 (a daemon started with them closed owns them) */
static void log_open(void)
{
	struct stat st;
	int s = high_fd(log_connect());

	if (s < 0)
		return;
	if (fstat(s, &st) < 0) {
		close(s);
		return;
	}
	logsock.fd = s;
	logsock.dev = st.st_dev;
	logsock.ino = st.st_ino;
}

/* log_kept - the constructor's log socket, if its descriptor still is it */
static int log_kept(void)
{
	struct stat st;

	if (logsock.fd < 0)
		return -1;
	if (fstat(logsock.fd, &st) < 0 || st.st_dev != logsock.dev || st.st_ino != logsock.ino) {
		logsock.fd = -1;	/* the daemon closed it: the number is not ours */
		return -1;
	}
	return logsock.fd;
}

/*
 * log_line - one syslog line, facility mail; never to the host's stdout or
 * stderr, never blocking the host on a full syslog queue, and without
 * openlog(), which would change the host's own ident.  Through the kept
 * socket, else by name (syslogd restarted; outside a chroot), else
 * syslog(3), which knows stream sockets too.
 */
static void log_line(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(int prio, const char *fmt, ...)
{
	char msg[1024], line[1100];
	int n, s;
	va_list ap;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = snprintf(line, sizeof(line), "<%d>%s", LOG_MAIL | prio, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	s = log_kept();
	if (s >= 0 && send(s, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n)
		return;
	s = log_connect();
	if (s >= 0) {
		send(s, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(s);
		return;
	}
	if (getenv("TLSPOLICY_SYSLOG_SOCKET") == NULL)
		syslog(LOG_MAIL | prio, "%s", msg);
}

static void say(int prio, const char *what, int port, int err)
{
	log_line(prio, "tlspolicy: port=%d action=close reason=%s%s%s%s",
		 port, what, err ? " error=\"" : "", err ? strerror(err) : "", err ? "\"" : "");
}

static void load_real(void)
{
	real.accept = (accept_fn)dlsym(RTLD_NEXT, "accept");
	real.accept4 = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
	real.getpeername = (getname_fn)dlsym(RTLD_NEXT, "getpeername");
	real.getsockname = (getname_fn)dlsym(RTLD_NEXT, "getsockname");
	real.setsockopt = (setsockopt_fn)dlsym(RTLD_NEXT, "setsockopt");
	real.getsockopt = (getsockopt_fn)dlsym(RTLD_NEXT, "getsockopt");
}

/* relay_address - the abstract socket tlspolicyd listens on */
static int relay_address(const char *name)
{
	struct sockaddr_un sa;
	unsigned len;

	if (tp_relay_sockaddr(name, &sa, &len) < 0)
		return -1;
	shim.relay = sa;
	shim.relay_len = (socklen_t)len;
	return 0;
}

static int relay(int tcp, struct sockaddr *addr, socklen_t *addrlen, int flags);


static void rundir_open(void)
{
	struct stat st;
	int fd = high_fd(open(tp_policy_rundir(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));

	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return;
	}
	rundir.fd = fd;
	rundir.dev = st.st_dev;
	rundir.ino = st.st_ino;
}

/* adopt - ports, parsed whole, becomes what the shim follows */
static int adopt(const struct tp_ports *ports)
{
	if (relay_address(ports->relay_socket) < 0)
		return -1;
	if (ports != &shim.ports)
		memcpy(&shim.ports, ports, sizeof(shim.ports));
	shim.ready = 1;
	return 0;
}

/*
 * follow_published - read the ports file if reload published a new one
 * since the last look; a broken or missing one leaves things as they are
 */
static void follow_published(void)
{
	struct stat st;
	static char text[TP_PORTS_TEXT_MAX + 1];
	char why[128] = "cannot read it whole";
	ssize_t len;
	int fd;

	if (rundir.fd < 0)
		return;
	if (fstat(rundir.fd, &st) < 0 || st.st_dev != rundir.dev || st.st_ino != rundir.ino) {
		rundir.fd = -1;		/* the daemon closed it: the number is not ours */
		return;
	}
	if (fstatat(rundir.fd, TP_PUBLISHED_PORTS, &st, 0) < 0 || st.st_ino == rundir.ports_ino)
		return;
	fd = openat(rundir.fd, TP_PUBLISHED_PORTS, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	len = read(fd, text, sizeof(text) - 1);
	if (fstat(fd, &st) < 0)
		len = -1;
	close(fd);
	if (len <= 0 || len == (ssize_t)sizeof(text) - 1)
		return;
	text[len] = '\0';
	rundir.ports_ino = st.st_ino;
	if (tp_ports_parse(text, &shim.scratch, why, sizeof(why)) < 0 || adopt(&shim.scratch) < 0)
		log_line(LOG_ERR, "tlspolicy: action=keep-policy reason=published-ports-unreadable "
			 "generation=%u error=\"%s\" hint=\"run tlspolicyctl reload again\"",
			 shim.ports.generation, why);
}

/*
 * inherited_connection - inetd, or systemd with Accept=yes, starts the
 * daemon with the client's connection on fd 0 (and often fd 1): relay it
 * as if it had been accepted here.
 */
static void inherited_connection(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct stat s0, s1;
	int type, d;
	socklen_t tlen = sizeof(type);

	if (fstat(0, &s0) < 0 || !S_ISSOCK(s0.st_mode) ||
	    real.getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
	    real.getpeername(0, (struct sockaddr *)&ss, &len) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return;
	int same1 = fstat(1, &s1) == 0 && s1.st_ino == s0.st_ino && s1.st_dev == s0.st_dev;
	int in = dup(0);

	if (in < 0)
		return;
	d = relay(in, NULL, NULL, 0);
	if (d == in) {
		close(in);	/* not a managed port: left as it was */
		return;
	}
	if (d < 0) {
		/* refused: the daemon must not serve the client in plaintext */
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		shutdown(0, SHUT_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			if (same1)
				dup2(null, 1);
			close(null);
		}
		return;
	}
	dup2(d, 0);
	if (same1)
		dup2(d, 1);
	close(d);
}

__attribute__((constructor)) static void shim_init(void)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p;
	const char *why = "relay_socket is not an abstract socket name";

	load_real();
	log_open();
	rundir_open();
	follow_published();
	if (shim.ready) {	/* a published generation: what tlspolicyd follows too */
		tp_diags_free(&d);
		inherited_connection();
		return;
	}
	if (d == NULL)
		return;
	p = tp_policy_load(tp_policy_default_path(), 0, d);
	if (p == NULL) {
		log_line(LOG_ERR,
			 "tlspolicy: action=refuse-all reason=policy-invalid file=%s errors=%zu hint=\"run tlspolicyctl validate\"",
			 tp_policy_default_path(), tp_diags_count(d, TP_ERROR));
		tp_diags_free(&d);
		return;
	}
	if (tp_ports_from_policy(p, 0, &shim.scratch, &why) < 0 || adopt(&shim.scratch) < 0)
		log_line(LOG_ERR, "tlspolicy: action=refuse-all reason=policy-unusable file=%s error=\"%s\"",
			 tp_policy_default_path(), why);
	tp_policy_free(&p);
	tp_diags_free(&d);
	inherited_connection();
}

static int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
	return -1;
}

/*
 * make_pair - a connected UNIX stream pair whose daemon end carries the
 * relay name: a listener bound to the name, connected to, accepted from,
 * then closed (the accepted end keeps the listener's address).
 */
static int make_pair(const struct sockaddr_storage *peer,
		     const struct sockaddr_storage *local, int *daemon_end,
		     int *relay_end)
{
	struct sockaddr_un name;
	socklen_t len = 0;
	int l = -1, c = -1, a = -1;

	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -1;
	for (int tries = 0; tries < 16; tries++) {
		len = tp_relayname_make(&name, (const struct sockaddr *)peer,
					(const struct sockaddr *)local,
					(uint32_t)getpid(), ++shim.serial);
		if (len == 0 || bind(l, (struct sockaddr *)&name, len) == 0)
			break;
		if (errno != EADDRINUSE)
			len = 0;
	}
	if (len == 0 || listen(l, 1) < 0)
		goto fail;
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&name, len) < 0)
		goto fail;
	a = real.accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0)
		goto fail;
	close(l);
	*daemon_end = a;
	*relay_end = c;
	return 0;
fail:
	if (c >= 0)
		close(c);
	close(l);
	return -1;
}

/* hand_off - give tcp and the relay end to tlspolicyd; 0 if it took them */
static int hand_off(int tcp, int relay_end, int port)
{
	struct tp_handoff msg = { TP_HANDOFF_MAGIC, 1, (uint32_t)port, 0 };
	struct tp_handoff_reply reply = { 0, -1 };
	char control[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { &msg, sizeof(msg) };
	struct msghdr mh = { 0 };
	struct cmsghdr *cm;
	struct pollfd pfd;
	int s, fds[2] = { tcp, relay_end }, rc = -1;

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return errno;
	if (connect(s, (struct sockaddr *)&shim.relay, shim.relay_len) < 0) {
		rc = errno;
		close(s);
		return rc;
	}
	memset(control, 0, sizeof(control));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = control;
	mh.msg_controllen = sizeof(control);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	pfd = (struct pollfd){ s, POLLIN, 0 };
	if (sendmsg(s, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(msg))
		rc = errno ? errno : EPROTO;
	else if (poll(&pfd, 1, TP_HANDOFF_TIMEOUT_MS) != 1)
		rc = ETIMEDOUT;
	else if (recv(s, &reply, sizeof(reply), 0) != (ssize_t)sizeof(reply) ||
		 reply.magic != TP_HANDOFF_MAGIC)
		rc = EPROTO;
	else
		rc = reply.status;
	close(s);
	return rc;
}

/*
 * relay - the descriptor the daemon gets for an accepted managed
 * connection, or -1 with errno ECONNABORTED (daemons retry accept on it)
 */
static int relay(int tcp, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	int port, d = -1, r = -1, err;

	if (real.getsockname(tcp, (struct sockaddr *)&local, &llen) < 0 ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6))
		return tcp;	/* not TCP: none of our business */
	port = port_of(&local);
	follow_published();
	if (shim.ready && !tp_ports_match(&shim.ports, (struct sockaddr *)&local))
		return tcp;	/* not a managed address:port: untouched */
	if (!shim.ready) {
		say(LOG_ERR, "policy-unreadable", port, 0);
		goto refuse;
	}
	if (real.getpeername(tcp, (struct sockaddr *)&peer, &plen) < 0) {
		say(LOG_WARNING, "peer-gone", port, errno);
		goto refuse;
	}
	if (make_pair(&peer, &local, &d, &r) < 0) {
		say(LOG_ERR, "relay-pair-failed", port, errno);
		goto refuse;
	}
	err = hand_off(tcp, r, port);
	close(r);
	if (err != 0) {
		say(LOG_ERR, "tlspolicyd-unreachable", port, err);
		close(d);
		goto refuse;
	}
	close(tcp);
	if (flags & SOCK_NONBLOCK)
		fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK);
	if (!(flags & SOCK_CLOEXEC))
		fcntl(d, F_SETFD, 0);
	if (addr != NULL && addrlen != NULL) {
		socklen_t n = *addrlen < plen ? *addrlen : plen;

		memcpy(addr, &peer, n);
		*addrlen = plen;
	}
	return d;
refuse:
	close(tcp);
	errno = ECONNABORTED;
	return -1;
}

int accept(int s, struct sockaddr *addr, socklen_t *addrlen)
{
	int fd;

	if (real.accept == NULL)
		load_real();
	fd = real.accept(s, addr, addrlen);
	return fd < 0 ? fd : relay(fd, addr, addrlen, 0);
}

int accept4(int s, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	int fd;

	if (real.accept4 == NULL)
		load_real();
	fd = real.accept4(s, addr, addrlen, flags);
	return fd < 0 ? fd : relay(fd, addr, addrlen, flags);
}

/* relayed_name - the real address behind a relayed socket, if fd is one */
static int relayed_name(int fd, int want_local, struct sockaddr *addr,
			socklen_t *addrlen)
{
	struct sockaddr_un un;
	struct sockaddr_storage real_addr;
	socklen_t len = sizeof(un), rlen;

	if (real.getsockname(fd, (struct sockaddr *)&un, &len) < 0 ||
	    !tp_relayname_parse(&un, len, want_local, &real_addr, &rlen))
		return 0;
	memcpy(addr, &real_addr, *addrlen < rlen ? *addrlen : rlen);
	*addrlen = rlen;
	return 1;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	if (real.getpeername == NULL)
		load_real();
	if (addr != NULL && addrlen != NULL && relayed_name(fd, 0, addr, addrlen))
		return 0;
	return real.getpeername(fd, addr, addrlen);
}

int getsockname(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	if (real.getsockname == NULL)
		load_real();
	if (addr != NULL && addrlen != NULL && relayed_name(fd, 1, addr, addrlen))
		return 0;
	return real.getsockname(fd, addr, addrlen);
}

static int is_relayed(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return relayed_name(fd, 0, (struct sockaddr *)&ss, &len);
}

/*
 * setsockopt - TCP options on a relayed socket: tlspolicyd sets
 * TCP_NODELAY and SO_KEEPALIVE on every TCP socket it relays, and a
 * daemon's TCP_CORK must not hold back the relay, so they succeed here
 * without effect instead of failing on a UNIX socket.
 */
int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (real.setsockopt == NULL)
		load_real();
	if (level == IPPROTO_TCP && is_relayed(fd))
		return 0;
	return real.setsockopt(fd, level, name, val, len);
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	if (real.getsockopt == NULL)
		load_real();
	if (level == IPPROTO_TCP && val != NULL && len != NULL &&
	    *len >= sizeof(int) && is_relayed(fd)) {
		*(int *)val = name == TCP_NODELAY;
		*len = sizeof(int);
		return 0;
	}
	return real.getsockopt(fd, level, name, val, len);
}
