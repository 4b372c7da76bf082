/*
 * shim.c - tlspolicy.so, preloaded into mail daemons
 *
 * The shim learns once, in its constructor (before any chroot or privilege
 * drop), which local address:port pairs are managed, where tlspolicyd
 * listens and which uid it runs as: from the ports file of the generation
 * tlspolicyctl reload published, else from the policy file.  For a
 * connection accepted on a managed address:port it hands the TCP socket to
 * tlspolicyd (handoff.h) and gives the daemon, in its place, a UNIX stream
 * socket connected to tlspolicyd whose name carries the real addresses
 * (relayname.h), so that getpeername() and getsockname() keep telling the
 * truth in every process that ever holds the socket.  Every other
 * connection is returned untouched.
 *
 * Abstract socket names carry no permissions, so the shim trusts nobody by
 * name: it hands a connection only to a listener whose SO_PEERCRED is root
 * or tlspolicyd's user, keeps only the relay connection made by that very
 * process, and answers for a relay name only on a socket whose peer is
 * root or tlspolicyd's user.
 *
 * Rules for code inside someone else's process (STYLE.md, PAM): no
 * threads, no forks, no exit, no signal handlers, nothing written to the
 * host's stdout or stderr, errors to syslog (facility mail, prefix
 * "tlspolicy:"), every blocking call retried on EINTR within its time (the
 * host's signal handlers are not ours), environment read with
 * secure_getenv() only (a setuid host's environment is its caller's), and
 * fail closed: if the policy cannot be read, or tlspolicyd cannot take a
 * connection, the connection is closed, never served in plaintext.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "handoff.h"
#include "policy.h"
#include "published.h"
#include "ratelimit.h"
#include "relayname.h"

/* connections tlspolicyd may find queued before its own on a relay name */
#define RELAY_BACKLOG 8
/* how long to wait before connecting again when tlspolicyd's backlog is full */
#define BUSY_RETRY_MS 5

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

/*
 * What the constructor learnt, and each newer published generation.  A
 * daemon may accept on several threads, so it is read and replaced under
 * the lock (held for no system call that waits on another process).
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	int ready;			/* ports is good: else refuse everything */
	struct tp_ports ports;
	struct tp_ports scratch;	/* a new ports file, parsed here first */
	char text[TP_PORTS_TEXT_MAX + 1];
	struct tp_ratelimit impostors;	/* listeners on relay_socket that are not tlspolicyd */
	struct tp_ratelimit intruders;	/* others connecting to a hand-off's relay name */
} shim;

/*
 * tlspolicyd's uid, or -1 if only root is trusted: getpeername() and
 * getsockname() read it on every relayed socket, without the lock
 */
static long trusted_uid = -1;

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
	const char *path = secure_getenv("TLSPOLICY_SYSLOG_SOCKET");
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
	if (secure_getenv("TLSPOLICY_SYSLOG_SOCKET") == NULL)
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

/* now_ms - CLOCK_MONOTONIC in milliseconds (the hand-off's deadlines) */
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* now_s - CLOCK_MONOTONIC in seconds (the log's rate limits) */
static time_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* adopt - ports becomes what the shim follows (the lock is held) */
static void adopt(const struct tp_ports *ports)
{
	if (ports != &shim.ports)
		memcpy(&shim.ports, ports, sizeof(shim.ports));
	shim.ready = 1;
	__atomic_store_n(&trusted_uid, ports->have_uid ? (long)ports->uid : -1L, __ATOMIC_RELAXED);
}

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

/* out_of_resources - an error that says nothing of the file: try again later */
static int out_of_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR;
}

/*
 * read_ports - the ports file into shim.text; its inode, or 0 (*transient
 * set if the process could not open it for want of descriptors or memory)
 */
static ino_t read_ports(int *transient)
{
	struct stat st;
	size_t len = 0;
	ssize_t n = 1;
	int fd = openat(rundir.fd, TP_PUBLISHED_PORTS, O_RDONLY | O_CLOEXEC);

	*transient = fd < 0 && out_of_resources(errno);
	if (fd < 0)
		return 0;
	while (n > 0 && len < sizeof(shim.text) - 1) {
		n = read(fd, shim.text + len, sizeof(shim.text) - 1 - len);
		if (n > 0)
			len += (size_t)n;
		else if (n < 0 && errno == EINTR)
			n = 1;
	}
	if (fstat(fd, &st) < 0 || n < 0 || len == sizeof(shim.text) - 1)
		st.st_ino = 0;		/* unreadable, or longer than any the writer makes */
	close(fd);
	shim.text[len] = '\0';
	return st.st_ino;
}

/*
 * follow_published - read the ports file if reload published a new one
 * since the last look (the lock is held); a broken or missing one leaves
 * things as they are.  -1 if a new one is there but cannot be read now
 * (the daemon is out of descriptors): the policy known is then out of
 * date, this connection is refused, and the file is read at the next.
 */
static int follow_published(void)
{
	struct stat st;
	char why[128];
	ino_t ino;
	int transient;

	if (rundir.fd < 0)
		return 0;
	if (fstat(rundir.fd, &st) < 0 || st.st_dev != rundir.dev || st.st_ino != rundir.ino) {
		rundir.fd = -1;		/* the daemon closed it: the number is not ours */
		return 0;
	}
	if (fstatat(rundir.fd, TP_PUBLISHED_PORTS, &st, 0) < 0 || st.st_ino == rundir.ports_ino)
		return 0;
	ino = read_ports(&transient);
	if (transient)
		return -1;
	rundir.ports_ino = ino != 0 ? ino : st.st_ino;
	if (ino != 0 && tp_ports_parse(shim.text, &shim.scratch, why, sizeof(why)) == 0)
		adopt(&shim.scratch);
	else
		log_line(LOG_ERR, "tlspolicy: action=keep-policy reason=published-ports-unreadable "
			 "generation=%u error=\"%s\" hint=\"run tlspolicyctl reload again\"",
			 shim.ports.generation, ino != 0 ? why : "cannot read it whole");
	return 0;
}

/* from_policy_file - nothing published: what the policy file says */
static void from_policy_file(void)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p;
	const char *why = "out of memory";

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
	if (tp_ports_from_policy(p, 0, &shim.scratch, &why) == 0)
		adopt(&shim.scratch);
	else
		log_line(LOG_ERR, "tlspolicy: action=refuse-all reason=policy-unusable file=%s error=\"%s\"",
			 tp_policy_default_path(), why);
	tp_policy_free(&p);
	tp_diags_free(&d);
}

/*
 * One hand-off (handoff.h), within one deadline.  Every step that can
 * wait polls for at most the time left and retries on EINTR: the host's
 * signals (SIGCHLD in a daemon that forks per session) are not failures.
 * Each step returns 0, or -1 with why (a log reason) and err set.
 */
struct handoff {
	long long deadline;		/* CLOCK_MONOTONIC ms */
	unsigned interrupted;		/* calls retried after EINTR */
	int port;
	char relay_name[sizeof(shim.ports.relay_socket)];
	struct sockaddr_un relay;
	socklen_t relay_len;
	int have_uid;			/* tlspolicyd's user is known: uid */
	uid_t uid;
	struct ucred daemon;		/* who listens on relay_socket */
	int listener, conn, app;
	int replied, status;		/* tlspolicyd's answer */
	const char *why;
	int err;
};

/* trusted - may uid be tlspolicyd: root, or its user */
static int trusted(const struct handoff *h, uid_t uid)
{
	return uid == 0 || (h->have_uid && h->uid == uid);
}

static int fail(struct handoff *h, const char *why, int err)
{
	h->why = why;
	h->err = err;
	return -1;
}

/* left - ms until the deadline, 0 when it has passed */
static int left(const struct handoff *h)
{
	long long l = h->deadline - now_ms();

	return l > 0 ? (int)l : 0;
}

static int timed_out(struct handoff *h)
{
	return fail(h, "tlspolicyd-timeout", ETIMEDOUT);
}

/* wait_for - poll one descriptor within the time left; 0 when it is ready */
static int wait_for(struct handoff *h, int fd, short events, int max_ms)
{
	for (;;) {
		struct pollfd pfd = { fd, events, 0 };
		int ms = left(h), n;

		if (ms == 0)
			return timed_out(h);
		n = poll(fd >= 0 ? &pfd : NULL, fd >= 0 ? 1 : 0, max_ms < ms ? max_ms : ms);
		if (n > 0 || (n == 0 && fd < 0))
			return 0;
		if (n < 0 && errno != EINTR)
			return fail(h, "handoff-failed", errno);
		if (n < 0)
			h->interrupted++;
	}
}

/*
 * impostor - a local process where only tlspolicyd may be: logged (the
 * first per uid in full, then a count per interval, since any local user
 * can do this as fast as it likes)
 */
static void impostor(struct tp_ratelimit *rl, const char *what, const char *note,
		     const struct handoff *h, pid_t pid, uid_t uid)
{
	time_t now = now_s();
	unsigned long n;
	pid_t lpid = 0;
	uid_t luid = 0;
	int full;

	pthread_mutex_lock(&lock);
	full = tp_ratelimit_admit(rl, pid, uid, now);
	n = tp_ratelimit_due(rl, now, &lpid, &luid);
	pthread_mutex_unlock(&lock);
	if (full)
		log_line(LOG_ERR, "tlspolicy: port=%d %s note=\"%s\" socket=%s pid=%d uid=%d", h->port, what,
			 note, h->relay_name, (int)pid, (int)uid);
	if (n != 0)
		log_line(LOG_ERR, "tlspolicy: %s socket=%s count=%lu last_pid=%d last_uid=%d "
			 "note=\"in the last %d s or more, not logged one by one\"", what, h->relay_name,
			 n, (int)lpid, (int)luid, TP_RATELIMIT_INTERVAL);
}

/* random_name - the relay name for this connection, with a fresh nonce */
static socklen_t random_name(struct handoff *h, struct sockaddr_un *name,
			     const struct sockaddr *peer, const struct sockaddr *local)
{
	uint8_t nonce[TP_RELAYNAME_NONCE];
	ssize_t n;

	do
		n = getrandom(nonce, sizeof(nonce), GRND_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(nonce)) {
		/* no entropy yet (early boot): refuse rather than be guessable */
		fail(h, "no-entropy", n < 0 ? errno : EIO);
		return 0;
	}
	return tp_relayname_make(name, peer, local, nonce);
}

/* make_listener - L: listening on a fresh relay name, non-blocking */
static int make_listener(struct handoff *h, const struct sockaddr *peer, const struct sockaddr *local)
{
	struct sockaddr_un name;
	socklen_t len;

	h->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->listener < 0)
		return fail(h, "relay-listener-failed", errno);
	for (int tries = 0;; tries++) {
		len = random_name(h, &name, peer, local);
		if (len == 0)
			return h->why ? -1 : fail(h, "relay-listener-failed", EAFNOSUPPORT);
		if (bind(h->listener, (struct sockaddr *)&name, len) == 0)
			break;
		if (errno != EADDRINUSE || tries == 3)	/* 128 random bits: never twice */
			return fail(h, "relay-listener-failed", errno);
	}
	if (listen(h->listener, RELAY_BACKLOG) < 0)
		return fail(h, "relay-listener-failed", errno);
	return 0;
}

/* connect_relay - to relay_socket; a full backlog is retried, briefly */
static int connect_relay(struct handoff *h)
{
	h->conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->conn < 0)
		return fail(h, "handoff-failed", errno);
	for (;;) {
		if (connect(h->conn, (struct sockaddr *)&h->relay, h->relay_len) == 0 || errno == EISCONN)
			return 0;
		if (errno == EINTR) {
			h->interrupted++;
			continue;
		}
		if (errno != EAGAIN)	/* nobody listens there: ECONNREFUSED at once */
			return fail(h, "tlspolicyd-unreachable", errno);
		if (wait_for(h, -1, 0, BUSY_RETRY_MS) < 0)
			return -1;
	}
}

/* check_listener - is it tlspolicyd (root or its user) on relay_socket? */
static int check_listener(struct handoff *h)
{
	socklen_t len = sizeof(h->daemon);

	if (real.getsockopt(h->conn, SOL_SOCKET, SO_PEERCRED, &h->daemon, &len) < 0)
		return fail(h, "handoff-failed", errno);
	if (trusted(h, h->daemon.uid))
		return 0;
	impostor(&shim.impostors, "action=close reason=impostor", "listens on the relay socket, is "
		 "neither root nor tlspolicyd's user: nothing handed over", h, h->daemon.pid, h->daemon.uid);
	h->why = "impostor";
	return -1;
}

/* send_handoff - the message, with the TCP socket and L */
static int send_handoff(struct handoff *h, int tcp)
{
	struct tp_handoff msg = { TP_HANDOFF_MAGIC, TP_HANDOFF_VERSION, (uint32_t)h->port, 0 };
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { &msg, sizeof(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	struct cmsghdr *cm;
	int fds[2] = { tcp, h->listener };

	memset(&control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	for (;;) {
		ssize_t n = sendmsg(h->conn, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == (ssize_t)sizeof(msg))
			return 0;
		if (n >= 0)
			return fail(h, "handoff-failed", EPROTO);
		if (errno == EINTR) {		/* nothing was sent */
			h->interrupted++;
			continue;
		}
		if (errno != EAGAIN)
			return fail(h, "handoff-failed", errno);
		if (wait_for(h, h->conn, POLLOUT, TP_HANDOFF_TIMEOUT_MS) < 0)
			return -1;
	}
}

/*
 * take_app - accept what is queued on L: the connection of the tlspolicyd
 * checked on relay_socket (same pid, trusted uid: it may have dropped
 * root since it called listen()) is kept; anyone else who read the name
 * in /proc/net/unix and connected is closed
 */
static int take_app(struct handoff *h)
{
	for (;;) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int a = real.accept4(h->listener, NULL, NULL, SOCK_CLOEXEC);

		if (a < 0 && errno == EINTR) {
			h->interrupted++;
			continue;
		}
		if (a < 0)
			return errno == EAGAIN || errno == ECONNABORTED ? 0 : fail(h, "handoff-failed", errno);
		if (real.getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
			cred = (struct ucred){ -1, (uid_t)-1, (gid_t)-1 };
		if (h->app < 0 && cred.pid == h->daemon.pid && trusted(h, cred.uid)) {
			h->app = a;
			continue;
		}
		impostor(&shim.intruders, "action=drop-intruder reason=not-tlspolicyd", "connected to "
			 "a hand-off's relay name: closed, the hand-off goes on", h, cred.pid, cred.uid);
		close(a);
	}
}

/* read_reply - tlspolicyd's answer, once the socket is readable */
static int read_reply(struct handoff *h)
{
	struct tp_handoff_reply reply;
	ssize_t n = recv(h->conn, &reply, sizeof(reply), MSG_DONTWAIT);

	if (n < 0 && errno == EINTR) {
		h->interrupted++;
		return 0;
	}
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		return fail(h, "handoff-failed", errno);
	if (n != (ssize_t)sizeof(reply) || reply.magic != TP_HANDOFF_MAGIC)
		return fail(h, "handoff-failed", EPROTO);
	h->replied = 1;
	h->status = reply.status;
	return 0;
}

/* await_daemon - the reply and, if it took the connection, tlspolicyd's connection on L */
static int await_daemon(struct handoff *h)
{
	for (;;) {
		struct pollfd pfd[2] = { { h->listener, POLLIN, 0 }, { h->conn, POLLIN, 0 } };
		int ms = left(h), n;

		if (h->replied && h->status != 0)
			return fail(h, "tlspolicyd-refused", h->status);
		if (h->replied && h->app >= 0)
			return 0;
		if (ms == 0)
			return timed_out(h);
		if (h->app >= 0)
			pfd[0].fd = -1;
		if (h->replied)
			pfd[1].fd = -1;
		n = poll(pfd, 2, ms);
		if (n < 0 && errno == EINTR) {
			h->interrupted++;
			continue;
		}
		if (n < 0)
			return fail(h, "handoff-failed", errno);
		if (pfd[0].revents != 0 && take_app(h) < 0)
			return -1;
		if (pfd[1].revents != 0 && read_reply(h) < 0)
			return -1;
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * hand_off - give tcp to tlspolicyd: the daemon's end of the relay, or -1
 * (h->why says why)
 */
static int hand_off(struct handoff *h, int tcp, const struct sockaddr *peer, const struct sockaddr *local)
{
	int d = -1;

	h->deadline = now_ms() + TP_HANDOFF_TIMEOUT_MS;
	h->listener = h->conn = h->app = -1;
	if (make_listener(h, peer, local) == 0 && connect_relay(h) == 0 && check_listener(h) == 0 &&
	    send_handoff(h, tcp) == 0 && await_daemon(h) == 0) {
		d = h->app;
		h->app = -1;
	}
	close_fd(&h->app);
	close_fd(&h->conn);
	close_fd(&h->listener);
	return d;
}

/* say_failure - what went wrong with a hand-off, in the log */
static void say_failure(const struct handoff *h)
{
	if (strcmp(h->why, "impostor") == 0)
		return;		/* logged, rate-limited, where it was found */
	if (strcmp(h->why, "tlspolicyd-timeout") == 0)
		log_line(LOG_ERR, "tlspolicy: port=%d action=close reason=tlspolicyd-timeout after_ms=%d "
			 "interrupted=%u socket=%s", h->port, TP_HANDOFF_TIMEOUT_MS, h->interrupted,
			 h->relay_name);
	else
		say(LOG_ERR, h->why, h->port, h->err);
}

/*
 * handoff_begin - under the lock: follow a newer published generation,
 * and copy what this hand-off needs.  *managed: is local handed over?
 * -1 if the shim knows no good policy (refuse).
 */
static int handoff_begin(struct handoff *h, const struct sockaddr *local, int port, int *managed)
{
	unsigned len = 0;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	h->port = port;
	pthread_mutex_lock(&lock);
	if (follow_published() == 0 && shim.ready) {
		*managed = tp_ports_match(&shim.ports, local);
		memcpy(h->relay_name, shim.ports.relay_socket, sizeof(h->relay_name));
		h->have_uid = shim.ports.have_uid;
		h->uid = shim.ports.uid;
		rc = tp_relay_sockaddr(h->relay_name, &h->relay, &len);
		h->relay_len = (socklen_t)len;
	}
	pthread_mutex_unlock(&lock);
	return rc;
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
 * relay - the descriptor the daemon gets for an accepted connection: tcp
 * itself if its address:port is not managed, else the daemon's end of the
 * relay, or -1 with errno ECONNABORTED (daemons retry accept on it)
 */
static int relay(int tcp, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	struct handoff hs, *h = &hs;
	int port, managed = 0, d;

	if (real.getsockname(tcp, (struct sockaddr *)&local, &llen) < 0 ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6))
		return tcp;	/* not TCP: none of our business */
	port = port_of(&local);
	if (handoff_begin(h, (struct sockaddr *)&local, port, &managed) < 0) {
		say(LOG_ERR, "policy-unreadable", port, 0);
		goto refuse;
	}
	if (!managed)
		return tcp;
	if (real.getpeername(tcp, (struct sockaddr *)&peer, &plen) < 0) {
		say(LOG_WARNING, "peer-gone", port, errno);
		goto refuse;
	}
	d = hand_off(h, tcp, (struct sockaddr *)&peer, (struct sockaddr *)&local);
	if (d < 0) {
		say_failure(h);
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

/* same_socket - is fd open on the socket st describes? */
static int same_socket(int fd, const struct stat *st)
{
	struct stat s;

	return fstat(fd, &s) == 0 && s.st_dev == st->st_dev && s.st_ino == st->st_ino;
}

/* put_over - dup2 with onto fd, keeping fd's close-on-exec flag */
static void put_over(int with, int fd)
{
	int cloexec = fcntl(fd, F_GETFD);

	dup3(with, fd, cloexec >= 0 && (cloexec & FD_CLOEXEC) ? O_CLOEXEC : 0);
}

/*
 * replace_everywhere - every descriptor of this process open on the
 * socket st describes becomes with: inetd passes the client as 0, 1 and 2,
 * and a daemon's stderr on the raw socket would reach the client in
 * plaintext.  From /proc/self/fd, else every number below the fd limit.
 */
static void replace_everywhere(const struct stat *st, int with)
{
	DIR *dir = opendir("/proc/self/fd");
	struct rlimit rl;
	struct dirent *e;

	if (dir != NULL) {
		while ((e = readdir(dir)) != NULL) {
			int fd = atoi(e->d_name);

			if (e->d_name[0] != '.' && fd != dirfd(dir) && fd != with && same_socket(fd, st))
				put_over(with, fd);
		}
		closedir(dir);
		return;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (int fd = 0; fd < (int)rl.rlim_cur; fd++)
		if (fd != with && same_socket(fd, st))
			put_over(with, fd);
}

/* inherited_port - the local port of fd 0, or -1 */
static int inherited_port(void)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	if (real.getsockname(0, (struct sockaddr *)&local, &len) < 0)
		return -1;
	return port_of(&local);
}

/*
 * inherited_managed - must fd 0 go through tlspolicyd: its address:port
 * is managed, or the shim knows no good policy (a descriptor table too
 * full to read the policy in is one way) and so cannot tell it is not
 */
static int inherited_managed(void)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	struct handoff h;
	int managed = 0;

	if (real.getsockname(0, (struct sockaddr *)&local, &len) < 0 ||
	    handoff_begin(&h, (struct sockaddr *)&local, port_of(&local), &managed) < 0)
		return 1;
	return managed;
}

/*
 * inherited_connection - inetd, or systemd with Accept=yes, starts the
 * daemon with the client's connection on fd 0 (and often 1 and 2): relay
 * it as if it had been accepted here, or, if refused, leave the process
 * nothing of it but /dev/null.
 */
static void inherited_connection(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct stat s0;
	int type, d, in;
	socklen_t tlen = sizeof(type);

	if (fstat(0, &s0) < 0 || !S_ISSOCK(s0.st_mode) ||
	    real.getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM ||
	    real.getpeername(0, (struct sockaddr *)&ss, &len) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return;
	in = fcntl(0, F_DUPFD_CLOEXEC, 3);
	if (in < 0) {
		/* no descriptor to relay it with: managed (or unknown) is refused */
		int err = errno;

		if (!inherited_managed())
			return;
		say(LOG_ERR, "no-descriptor", inherited_port(), err);
		d = -1;
	} else {
		d = relay(in, NULL, NULL, SOCK_CLOEXEC);
		if (d == in) {
			close(in);	/* not a managed address:port: left as it was */
			return;
		}
	}
	if (d < 0) {
		/* refused: the daemon must not serve the client in plaintext */
		shutdown(0, SHUT_RDWR);
		d = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (d < 0)
			return;		/* shut down: nothing more crosses it */
	}
	replace_everywhere(&s0, d);
	close(d);
}

__attribute__((constructor)) static void shim_init(void)
{
	load_real();
	log_open();
	rundir_open();
	pthread_mutex_lock(&lock);
	follow_published();	/* a published generation: what tlspolicyd follows too */
	if (!shim.ready)
		from_policy_file();
	pthread_mutex_unlock(&lock);
	inherited_connection();
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

/*
 * peer_is_tlspolicyd - is fd's peer tlspolicyd's end of a relay: a socket
 * of root or tlspolicyd's user, and unnamed.  The uid alone proves
 * nothing: SO_PEERCRED of a socket that connected to a listener is the
 * listener's, so a local user who binds a relay name and connects it to
 * tlspolicyd's own relay socket, or to any root service's stream socket
 * (journald's), holds a socket whose peer is "root".  But such a peer is
 * a listener, and every listener has a name; tlspolicyd's end connects
 * without one (relaysock.c, connect_app).
 */
static int peer_is_tlspolicyd(int fd)
{
	struct ucred cred;
	struct sockaddr_storage peer;
	socklen_t clen = sizeof(cred), plen = sizeof(peer);
	long uid = __atomic_load_n(&trusted_uid, __ATOMIC_RELAXED);

	if (real.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && (uid < 0 || (long)cred.uid != uid)))
		return 0;
	return real.getpeername(fd, (struct sockaddr *)&peer, &plen) == 0 &&
	       peer.ss_family == AF_UNIX && plen == sizeof(sa_family_t);
}

/*
 * relayed_name - the real address behind a relayed socket, if fd is one:
 * its own name is a relay name and its peer is tlspolicyd's end of the
 * relay.  Anyone can bind a relay name with forged addresses and pass a
 * socket with it in by SCM_RIGHTS; only tlspolicyd (or root) can be the
 * unnamed peer of one.
 */
static int relayed_name(int fd, int want_local, struct sockaddr *addr,
			socklen_t *addrlen)
{
	struct sockaddr_un un;
	struct sockaddr_storage real_addr;
	socklen_t len = sizeof(un), rlen;

	if (real.getsockname(fd, (struct sockaddr *)&un, &len) < 0 ||
	    !tp_relayname_parse(&un, len, want_local, &real_addr, &rlen) ||
	    !peer_is_tlspolicyd(fd))
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
