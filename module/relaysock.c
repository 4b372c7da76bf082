/*
 * relaysock.c - tlspolicyd's end of the hand-off: listener and event loop
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"
#include "procnet.h"
#include "ratelimit.h"
#include "relayname.h"
#include "relaysock.h"
#include "tplog.h"

#define MAX_FDS 253		/* SCM_MAX_FD: the most one message can carry */
#define MAX_DRAIN 64		/* hand-offs answered per turn when out of descriptors */

/* a connection on the relay socket whose message has not come yet */
struct pending {
	int fd;
	long long deadline;	/* CLOCK_MONOTONIC ms */
	struct ucred cred;
};

/* what one message brought: every descriptor, so that none can leak */
struct received {
	int fd[MAX_FDS];
	size_t n;
	int rights;		/* SCM_RIGHTS control messages */
	int other;		/* control messages of any other kind */
	int truncated;		/* MSG_CTRUNC: some did not fit, or we are out of descriptors */
};

static struct {
	const struct tp_relaysock_ops *ops;
	struct pending p[TP_RELAYSOCK_PENDING];
	size_t n;
	int reserve;			/* given up to answer a hand-off when out of descriptors */
	long long backoff_until;	/* no accept() before then */
	struct tp_ratelimit refused;	/* uids that may not hand over */
	struct tp_ratelimit exhausted;	/* out of descriptors */
	struct tp_ratelimit silent;	/* allowed peers that sent nothing in time */
} loop = { .reserve = -1 };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static time_t now_s(void)
{
	return (time_t)(now_ms() / 1000);
}

/* --- who holds the name ------------------------------------------------- */

static void read_comm(pid_t pid, char *out, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(out, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(out, (int)size, f) == NULL)
		snprintf(out, size, "?");
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* listener_cred - connect to the name and ask who listens (sends nothing) */
static int listener_cred(const struct sockaddr_un *sun, unsigned len, struct ucred *cred)
{
	socklen_t clen = sizeof(*cred);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc = -1;

	if (s < 0)
		return -1;
	if (connect(s, (const struct sockaddr *)sun, (socklen_t)len) == 0 &&
	    getsockopt(s, SOL_SOCKET, SO_PEERCRED, cred, &clen) == 0)
		rc = 0;
	close(s);
	return rc;
}

/* holder_cred - else the first process with the name's socket open (/proc, as root) */
static int holder_cred(const char *name, struct ucred *cred)
{
	unsigned long inode = pn_unix_listener(name);
	struct pn_holder *h = NULL;
	size_t denied = 0;
	char path[64];
	struct stat st;
	ssize_t n;

	if (inode == 0)
		return -1;
	n = pn_holders(inode, &h, &denied);
	if (n <= 0) {
		free(h);
		return -1;
	}
	cred->pid = h[0].pid;
	free(h);
	snprintf(path, sizeof(path), "/proc/%d", (int)cred->pid);
	cred->uid = stat(path, &st) == 0 ? st.st_uid : (uid_t)-1;
	return 0;
}

/* log_holder - the name is taken: by whom */
static void log_holder(const char *name, const struct sockaddr_un *sun, unsigned len)
{
	struct ucred cred;
	char comm[64];

	if (listener_cred(sun, len, &cred) < 0 && holder_cred(name, &cred) < 0) {
		tp_log(LOG_ERR, "action=start-failed reason=relay-socket-taken socket=%s holder=unknown "
		       "note=\"bound by a process this tlspolicyd cannot see (not listening, or in "
		       "another user's /proc)\"", name);
		return;
	}
	read_comm(cred.pid, comm, sizeof(comm));
	tp_log(LOG_ERR, "action=start-failed reason=relay-socket-taken socket=%s holder_pid=%d "
	       "holder_uid=%d holder_command=\"%s\" note=\"another process holds the name; unless it "
	       "is a running tlspolicyd, it is an impostor: stop it, then start tlspolicyd\"",
	       name, (int)cred.pid, (int)cred.uid, comm);
}

int tp_relaysock_listen(const char *name)
{
	struct sockaddr_un sun;
	unsigned len;
	int s, e;

	if (tp_relay_sockaddr(name, &sun, &len) < 0) {
		errno = EINVAL;
		return -1;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	if (bind(s, (struct sockaddr *)&sun, (socklen_t)len) == 0 && listen(s, 128) == 0)
		return s;
	e = errno;
	close(s);
	if (e == EADDRINUSE)
		log_holder(name, &sun, len);
	errno = e;
	return -1;
}

/* --- refusals, logged at a bounded rate ------------------------------------ */

/* refusal - one refusal of pid/uid: its line if it is news, then any summary due */
static void refusal(struct tp_ratelimit *rl, const char *what, pid_t pid, uid_t uid, int err)
{
	if (!tp_ratelimit_admit(rl, pid, uid, now_s()))
		return;
	tp_log(LOG_WARNING, "%s uid=%d pid=%d%s%s%s", what, (int)uid, (int)pid,
	       err ? " error=\"" : "", err ? strerror(err) : "", err ? "\"" : "");
}

static void summary(struct tp_ratelimit *rl, const char *what)
{
	pid_t pid;
	uid_t uid;
	unsigned long n = tp_ratelimit_due(rl, now_s(), &pid, &uid);

	if (n != 0)
		tp_log(LOG_WARNING, "%s count=%lu last_uid=%d last_pid=%d note=\"in the last %d s or more, "
		       "not logged one by one\"", what, n, (int)uid, (int)pid, TP_RATELIMIT_INTERVAL);
}

#define R_UID "action=handoff-refused reason=uid-not-allowed"
#define R_FDS "action=handoff-refused reason=out-of-descriptors"
#define R_SILENT "action=handoff-refused reason=no-message-in-time"

static void summaries(void)
{
	summary(&loop.refused, R_UID);
	summary(&loop.exhausted, R_FDS);
	summary(&loop.silent, R_SILENT);
}

/* --- one message --------------------------------------------------------- */

/* answer - the reply to a hand-off; never blocks (a fresh socket has room) */
static void answer(int s, int status)
{
	struct tp_handoff_reply r = { TP_HANDOFF_MAGIC, status };

	/* a peer that hung up does not need the answer (a refused one is often gone) */
	if (send(s, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(r) &&
	    errno != EPIPE && errno != ECONNRESET)
		tp_log(LOG_WARNING, "action=handoff-reply-failed error=\"%s\"", strerror(errno));
}

/* collect - every descriptor in mh's control messages, and what else came */
static void collect(struct msghdr *mh, struct received *r)
{
	memset(r, 0, sizeof(*r));
	r->truncated = (mh->msg_flags & MSG_CTRUNC) != 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			r->other++;
			continue;
		}
		r->rights++;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && r->n < MAX_FDS; i++)
			memcpy(&r->fd[r->n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
}

static void close_received(struct received *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->fd[i] >= 0)
			close(r->fd[i]);
	r->n = 0;
}

static int sockopt(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, name, &v, &len) == 0 ? v : -1;
}

/* is_tcp - a connected TCP socket (what the shim accepted) */
static int is_tcp(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int domain = sockopt(fd, SO_DOMAIN);

	return (domain == AF_INET || domain == AF_INET6) && sockopt(fd, SO_TYPE) == SOCK_STREAM &&
	       sockopt(fd, SO_PROTOCOL) == IPPROTO_TCP && getpeername(fd, (struct sockaddr *)&ss, &len) == 0;
}

/* relay_listener - a listening UNIX stream socket bound to a relay name: its name */
static int relay_listener(int fd, struct sockaddr_un *sun, socklen_t *len)
{
	struct sockaddr_storage real;
	socklen_t rlen;

	*len = sizeof(*sun);
	return sockopt(fd, SO_DOMAIN) == AF_UNIX && sockopt(fd, SO_TYPE) == SOCK_STREAM &&
	       sockopt(fd, SO_ACCEPTCONN) == 1 && getsockname(fd, (struct sockaddr *)sun, len) == 0 &&
	       tp_relayname_parse(sun, *len, 0, &real, &rlen);
}

/* bad_message - what is wrong with a hand-off, or NULL */
static const char *bad_message(const struct tp_handoff *m, ssize_t n, const struct received *r)
{
	if (n != (ssize_t)sizeof(*m) || m->magic != TP_HANDOFF_MAGIC)
		return "not a hand-off message";
	if (m->version != TP_HANDOFF_VERSION)
		return "another hand-off version (a shim older or newer than tlspolicyd)";
	if (r->truncated || r->rights != 1 || r->other != 0 || r->n != 2)
		return "not exactly two descriptors in one SCM_RIGHTS message";
	return NULL;
}

/* out_of_fds - was the message cut because we are out of descriptors? */
static int out_of_fds(const struct msghdr *mh, const struct received *r, size_t room)
{
	/* the kernel stops installing descriptors at EMFILE, with room left */
	return r->truncated && mh->msg_controllen + CMSG_SPACE(sizeof(int)) <= room;
}

/*
 * connect_app - tlspolicyd's end of the relay, connected to the shim's
 * listener by its name (the listener holds the name, so nobody else can)
 */
static int connect_app(const struct sockaddr_un *sun, socklen_t len, int *app)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc;

	if (s < 0)
		return errno;
	do
		rc = connect(s, (const struct sockaddr *)sun, len);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		int e = errno;	/* EAGAIN: its backlog is full (others connected to it first) */

		close(s);
		return e;
	}
	*app = s;
	return 0;
}

/* hand_over - check the two descriptors, connect to the listener, give both to a worker */
static int hand_over(const struct pending *p, struct received *r)
{
	struct sockaddr_un sun;
	socklen_t len;
	int app = -1, status;

	if (!is_tcp(r->fd[0]) || !relay_listener(r->fd[1], &sun, &len)) {
		tp_log(LOG_WARNING, "action=handoff-refused reason=bad-message uid=%d pid=%d detail=\"not a "
		       "connected TCP socket and a listening relay name\"", (int)p->cred.uid, (int)p->cred.pid);
		return EPROTO;
	}
	status = connect_app(&sun, len, &app);
	if (status == EMFILE || status == ENFILE)
		refusal(&loop.exhausted, R_FDS, p->cred.pid, p->cred.uid, status);
	else if (status != 0)
		tp_log(LOG_WARNING, "action=handoff-refused reason=relay-name-unreachable uid=%d pid=%d "
		       "error=\"%s\"", (int)p->cred.uid, (int)p->cred.pid, strerror(status));
	if (status != 0)
		return status;
	status = loop.ops->take(r->fd[0], app);
	if (status != 0) {
		close(app);
		return status;
	}
	r->fd[0] = -1;		/* the worker's now */
	return 0;
}

/*
 * receive - read p's message, if it came: 1 when p is done (answered and
 * to be closed), 0 to wait on
 */
static int receive(const struct pending *p)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int)) + 2 * CMSG_SPACE(64)];
		struct cmsghdr align;
	} control;
	union {
		struct tp_handoff h;
		struct tp_control c;
	} m;
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	struct received r;
	const char *bad;
	ssize_t n = recvmsg(p->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	int status;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	collect(&mh, &r);
	if (n <= 0) {			/* connected and closed: a liveness check */
		close_received(&r);
		return 1;
	}
	if (n == (ssize_t)sizeof(m.c) && m.c.magic == TP_CONTROL_MAGIC && r.n == 0 && r.other == 0 &&
	    !r.truncated) {
		struct tp_control_reply cr = { TP_CONTROL_MAGIC, 0, 0, 0 };

		loop.ops->control(&m.c, &p->cred, &cr);
		if (send(p->fd, &cr, sizeof(cr), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(cr))
			tp_log(LOG_WARNING, "action=control-reply-failed error=\"%s\"", strerror(errno));
		return 1;
	}
	if (out_of_fds(&mh, &r, sizeof(control.buf))) {
		refusal(&loop.exhausted, R_FDS, p->cred.pid, p->cred.uid, EMFILE);
		status = EMFILE;
	} else if ((bad = bad_message(&m.h, n, &r)) != NULL) {
		tp_log(LOG_WARNING, "action=handoff-refused reason=bad-message uid=%d pid=%d fds=%zu "
		       "detail=\"%s\"", (int)p->cred.uid, (int)p->cred.pid, r.n, bad);
		status = EPROTO;
	} else {
		status = hand_over(p, &r);
	}
	close_received(&r);		/* the listener always; the TCP socket unless taken */
	answer(p->fd, status);
	return 1;
}

/* --- the loop ----------------------------------------------------------- */

static void drop(size_t i)
{
	close(loop.p[i].fd);
	loop.p[i] = loop.p[--loop.n];
}

/* expire - allowed peers that said nothing in time: closed */
static void expire(long long now)
{
	for (size_t i = loop.n; i-- > 0;) {
		if (loop.p[i].deadline > now)
			continue;
		refusal(&loop.silent, R_SILENT, loop.p[i].cred.pid, loop.p[i].cred.uid, 0);
		drop(i);
	}
}

/*
 * exhausted - accept() failed for want of descriptors: answer what is
 * queued with a refusal, using the reserve descriptor, then pause
 * accepting (the shims fail closed at once instead of at their deadline)
 */
static void exhausted(int ls, int err)
{
	refusal(&loop.exhausted, R_FDS, 0, 0, err);
	for (int i = 0; i < MAX_DRAIN && loop.reserve >= 0; i++) {
		int s;

		close(loop.reserve);
		s = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (s >= 0) {
			answer(s, err);
			close(s);
		}
		loop.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (s < 0)
			return;		/* nothing queued any more (or it went): no pause needed */
	}
	loop.backoff_until = now_ms() + TP_RELAYSOCK_BACKOFF_MS;
}

/* admit - a new connection: pending if its uid may hand over, else refused at once */
static void admit(int s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		close(s);
		return;
	}
	if (!loop.ops->allowed(cred.uid)) {
		refusal(&loop.refused, R_UID, cred.pid, cred.uid, 0);
		answer(s, EPERM);
		close(s);
		return;
	}
	loop.p[loop.n++] = (struct pending){ s, now_ms() + TP_HANDOFF_TIMEOUT_MS, cred };
}

/* accept_all - everything queued on ls, as long as there is room */
static void accept_all(int ls)
{
	while (loop.n < TP_RELAYSOCK_PENDING) {
		int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (s >= 0) {
			admit(s);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE)
			exhausted(ls, errno);
		return;		/* EAGAIN: none left */
	}
}

/* next_timeout - ms until the loop must look again: a deadline, the pause, or 500 */
static int next_timeout(long long now)
{
	long long t = now + 500;

	for (size_t i = 0; i < loop.n; i++)
		if (loop.p[i].deadline < t)
			t = loop.p[i].deadline;
	if (loop.backoff_until > now && loop.backoff_until < t)
		t = loop.backoff_until;
	return t > now ? (int)(t - now) : 0;
}

void tp_relaysock_serve(int ls, const struct tp_relaysock_ops *ops)
{
	struct pollfd pfd[1 + TP_RELAYSOCK_PENDING];

	loop.ops = ops;
	loop.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
	while (!*ops->stopping) {
		long long now = now_ms();
		int accepting = loop.n < TP_RELAYSOCK_PENDING && now >= loop.backoff_until;

		ops->tick();
		if (loop.reserve < 0)	/* spent on a refusal, and not had back then */
			loop.reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
		expire(now);
		summaries();
		pfd[0] = (struct pollfd){ accepting ? ls : -1, POLLIN, 0 };
		for (size_t i = 0; i < loop.n; i++)
			pfd[1 + i] = (struct pollfd){ loop.p[i].fd, POLLIN, 0 };
		if (poll(pfd, 1 + loop.n, next_timeout(now)) <= 0)
			continue;	/* EINTR: a signal's flag to look at */
		for (size_t i = loop.n; i-- > 0;)
			if (pfd[1 + i].revents != 0 && receive(&loop.p[i]))
				drop(i);
		if (pfd[0].revents != 0)
			accept_all(ls);
	}
	while (loop.n > 0)
		drop(loop.n - 1);
	if (loop.reserve >= 0)
		close(loop.reserve);
	loop.reserve = -1;
}
