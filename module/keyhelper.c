/*
 * keyhelper.c - tlspolicyd's privileged key helper (see keyhelper.h)
 *
 * The wire, over a SOCK_SEQPACKET socket pair: one request is the wanted
 * paths, each ending in NUL; the answer is one message per path, in order:
 * a struct answer, with the descriptor attached when status is 0.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keyhelper.h"
#include "tplog.h"

#define REQUEST_MAX (64 * 1024)

struct answer {
	int32_t status;		/* 0: a descriptor is attached; else an errno value */
};

struct tp_keyhelper {
	int sock;
	pid_t pid;
};

struct tp_keyfiles {
	size_t n;
	char *path[TP_KEYHELPER_MAX_FILES];
	int fd[TP_KEYHELPER_MAX_FILES];		/* -1: refused, with status */
	int status[TP_KEYHELPER_MAX_FILES];
};

/* --- the helper's side (root) ---------------------------------------------------- */

/* named - is path the certificate or key of a rule where the module does TLS? */
static int named(const struct tp_policy *p, const char *path)
{
	for (size_t i = 0; i < tp_policy_rule_count(p); i++) {
		const struct tp_rule *r = tp_policy_rule(p, i);

		if (r->tls_by != TP_BY_MODULE || r->tls == TP_TLS_REFUSE)
			continue;
		if ((r->certificate != NULL && strcmp(r->certificate, path) == 0) ||
		    (r->private_key != NULL && strcmp(r->private_key, path) == 0))
			return 1;
	}
	return 0;
}

static int send_answer(int s, int status, int fd)
{
	struct answer a = { status };
	struct iovec iov = { &a, sizeof(a) };
	char control[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(control, 0, sizeof(control));
		mh.msg_control = control;
		mh.msg_controllen = sizeof(control);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	do
		n = sendmsg(s, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(a) ? 0 : -1;
}

/* open_named - a regular file named by the policy, opened; -1 and *status */
static int open_named(const struct tp_policy *p, const char *path, int *status)
{
	struct stat st;
	int fd;

	if (p == NULL) {
		*status = EBADMSG;
		return -1;
	}
	if (!named(p, path)) {
		tp_log(LOG_WARNING, "action=key-helper-refused file=\"%s\" note=\"not a certificate or "
		       "private_key of the policy\"", path);
		*status = EPERM;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		*status = errno;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		*status = EINVAL;
		return -1;
	}
	*status = 0;
	return fd;
}

/* checked_policy - the policy as root reads and checks it; diagnostics
 * only root could make (the files') or errors are logged here */
static struct tp_policy *checked_policy(const char *path)
{
	struct tp_diags *dg = tp_diags_new();
	struct tp_policy *p = tp_policy_load(path, TP_LOAD_CHECK_FILES, dg);

	for (size_t i = 0; dg != NULL && i < tp_diags_len(dg); i++) {
		const struct tp_diag *x = tp_diags_get(dg, i);
		char *line;

		if (x->severity != TP_ERROR && (x->key == NULL || (strcmp(x->key, "certificate") != 0 &&
								  strcmp(x->key, "private_key") != 0)))
			continue;
		line = tp_diag_format(x);
		tp_log(x->severity == TP_ERROR ? LOG_ERR : LOG_WARNING, "%s", line ? line : "out of memory");
		free(line);
	}
	tp_diags_free(&dg);
	if (p == NULL)
		tp_log(LOG_ERR, "action=key-helper-refused file=%s note=\"the policy is invalid as root "
		       "reads it: no key is handed out\"", path);
	return p;
}

static void serve(int s, const char *req, size_t len, const char *policy, const char *why)
{
	struct tp_policy *p = NULL;

	if (policy != NULL)
		p = checked_policy(policy);
	else
		tp_log(LOG_ERR, "action=key-helper-refused error=\"%s\"", why);

	for (size_t off = 0; off < len;) {
		const char *path = req + off;
		size_t plen = strnlen(path, len - off);
		int status, fd;

		if (plen == len - off)
			break;		/* unterminated: the request ends here */
		off += plen + 1;
		fd = open_named(p, path, &status);
		if (send_answer(s, status, fd) < 0)
			break;
		if (fd >= 0)
			close(fd);
	}
	tp_policy_free(&p);
}

static void __attribute__((noreturn)) helper_main(int s, const char *(*policy_path)(char *, size_t))
{
	static char req[REQUEST_MAX];
	char buf[4096];

	signal(SIGHUP, SIG_IGN);	/* a reload is tlspolicyd's business */
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	prctl(PR_SET_NAME, "tlspolicyd-keys");
	for (;;) {
		ssize_t n = recv(s, req, sizeof(req), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* tlspolicyd is gone */
		serve(s, req, (size_t)n, policy_path(buf, sizeof(buf)), buf);
	}
}

struct tp_keyhelper *tp_keyhelper_start(const char *(*policy_path)(char *buf, size_t size))
{
	struct tp_keyhelper *h = calloc(1, sizeof(*h));
	int sv[2];

	if (h == NULL)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(h);
		return NULL;
	}
	h->pid = fork();
	if (h->pid < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		free(h);
		errno = e;
		return NULL;
	}
	if (h->pid == 0) {
		close(sv[0]);
		helper_main(sv[1], policy_path);
	}
	close(sv[1]);
	h->sock = sv[0];
	return h;
}

void tp_keyhelper_stop(struct tp_keyhelper **h)
{
	if (*h == NULL)
		return;
	close((*h)->sock);
	while (waitpid((*h)->pid, NULL, 0) < 0 && errno == EINTR)
		;
	free(*h);
	*h = NULL;
}

/* --- tlspolicyd's side ---------------------------------------------------------- */

static int have(const struct tp_keyfiles *f, const char *path)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->path[i], path) == 0)
			return 1;
	return 0;
}

/* want - the distinct files of p's module rules, as one request */
static int want(const struct tp_policy *p, struct tp_keyfiles *f, char *req, size_t *len_r)
{
	size_t len = 0;

	for (size_t i = 0; i < tp_policy_rule_count(p); i++) {
		const struct tp_rule *r = tp_policy_rule(p, i);
		const char *paths[2] = { r->certificate, r->private_key };

		if (r->tls_by != TP_BY_MODULE || r->tls == TP_TLS_REFUSE)
			continue;
		for (int k = 0; k < 2; k++) {
			size_t plen;

			if (paths[k] == NULL || have(f, paths[k]))
				continue;
			plen = strlen(paths[k]) + 1;
			if (f->n == TP_KEYHELPER_MAX_FILES || len + plen > REQUEST_MAX)
				return -1;
			f->path[f->n] = strdup(paths[k]);
			if (f->path[f->n] == NULL)
				return -1;
			f->fd[f->n] = -1;
			f->status[f->n++] = ENOENT;
			memcpy(req + len, paths[k], plen);
			len += plen;
		}
	}
	*len_r = len;
	return 0;
}

/* recv_answer - one answer and its descriptor (-1 if none); 0 or -1 */
static int recv_answer(int s, int *status, int *fd)
{
	struct answer a;
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &a, sizeof(a) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control, .msg_controllen = sizeof(control) };
	struct pollfd pfd = { s, POLLIN, 0 };
	struct cmsghdr *cm;
	ssize_t n;
	int rc;

	*fd = -1;
	while ((rc = poll(&pfd, 1, TP_KEYHELPER_TIMEOUT_MS)) < 0 && errno == EINTR)
		;
	if (rc != 1)
		return -1;
	while ((n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(fd, CMSG_DATA(cm), sizeof(int));
	if (n != (ssize_t)sizeof(a) || (mh.msg_flags & MSG_CTRUNC) || (a.status == 0) != (*fd >= 0)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -1;
	}
	*status = a.status;
	return 0;
}

int tp_keyhelper_fetch(struct tp_keyhelper *h, const struct tp_policy *p,
		       struct tp_keyfiles **files_r, char *error, size_t size)
{
	static char req[REQUEST_MAX];
	struct tp_keyfiles *f = calloc(1, sizeof(*f));
	size_t len = 0;
	ssize_t n;

	*files_r = NULL;
	if (f == NULL || want(p, f, req, &len) < 0) {
		snprintf(error, size, "too many certificate and key files (at most %d) or out of memory",
			 TP_KEYHELPER_MAX_FILES);
		tp_keyfiles_free(&f);
		return -1;
	}
	*files_r = f;
	if (len == 0)
		return 0;
	while ((n = send(h->sock, req, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	for (size_t i = 0; n == (ssize_t)len && i < f->n; i++)
		if (recv_answer(h->sock, &f->status[i], &f->fd[i]) < 0)
			n = -1;
	if (n != (ssize_t)len) {
		snprintf(error, size, "the key helper does not answer (gone?): restart tlspolicyd");
		tp_keyfiles_free(files_r);
		return -1;
	}
	return 0;
}

static const char *status_text(int status)
{
	switch (status) {
	case EBADMSG: return "the policy is invalid as root reads it (see the lines above)";
	case EPERM: return "not a certificate or private_key of the policy the key helper read";
	default: return strerror(status);
	}
}

int tp_keyfiles_open(void *arg, const char *path, char *error, size_t size)
{
	const struct tp_keyfiles *f = arg;

	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->path[i], path) != 0)
			continue;
		if (f->fd[i] < 0) {
			snprintf(error, size, "open(%s) by the key helper failed: %s", path,
				 status_text(f->status[i]));
			return -1;
		}
		/* a dup shares the offset with the others: rewind it */
		{
			int fd = fcntl(f->fd[i], F_DUPFD_CLOEXEC, 0);

			if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0) {
				snprintf(error, size, "dup(%s) failed: %s", path, strerror(errno));
				if (fd >= 0)
					close(fd);
				return -1;
			}
			return fd;
		}
	}
	snprintf(error, size, "open(%s): not asked of the key helper", path);
	return -1;
}

void tp_keyfiles_free(struct tp_keyfiles **f)
{
	if (*f == NULL)
		return;
	for (size_t i = 0; i < (*f)->n; i++) {
		if ((*f)->fd[i] >= 0)
			close((*f)->fd[i]);
		free((*f)->path[i]);
	}
	free(*f);
	*f = NULL;
}
