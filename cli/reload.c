/*
 * reload.c - tlspolicyctl reload: validate, publish a new generation
 * atomically, and have tlspolicyd take it
 *
 * Like visudo: the policy is checked whole (the same code as validate,
 * certificates and keys included), written to a temp file, fsynced and
 * renamed into the run directory.  The published form is what show prints:
 * one self-contained INI file with absolute paths.  Order matters:
 *   1. the policy and its generation file, so tlspolicyd can load it;
 *   2. tlspolicyd loads it (control message); if it refuses, both files are
 *      put back as they were and nothing has changed;
 *   3. the ports file, which the shims follow from their next accept.
 * A lock in the run directory serializes concurrent reloads.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "ctl.h"
#include "handoff.h"
#include "policy.h"

/* ctl_policy_text - the policy as published (show's INI) and its sha256 */
int ctl_policy_text(const struct tp_policy *p, char **text_r, size_t *len_r, char sha_r[65])
{
	FILE *f = open_memstream(text_r, len_r);
	unsigned char digest[WC_SHA256_DIGEST_SIZE];
	wc_Sha256 sha;

	if (f == NULL)
		return -1;
	ctl_show_ini(f, p);
	if (fclose(f) != 0)
		return -1;
	if (wc_InitSha256(&sha) != 0 || wc_Sha256Update(&sha, (const byte *)*text_r, (word32)*len_r) != 0 ||
	    wc_Sha256Final(&sha, digest) != 0) {
		free(*text_r);
		return -1;
	}
	wc_Sha256Free(&sha);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(sha_r + 2 * i, 3, "%02x", digest[i]);
	return 0;
}

/* put - dir/name holds text (NULL: does not exist), by temp file, fsync, rename */
static int put(const char *dir, const char *name, const char *text, size_t len)
{
	char path[4096], tmp[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (text == NULL)
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
		unlink(tmp);
		return -1;
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* slurp - dir/name's contents, or NULL if it does not exist */
static char *slurp(const char *dir, const char *name, size_t *len_r)
{
	char path[4096], *buf = NULL;
	FILE *f, *m;
	int c;

	*len_r = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (f == NULL)
		return NULL;
	m = open_memstream(&buf, len_r);
	if (m != NULL) {
		while ((c = getc(f)) != EOF)
			putc(c, m);
		fclose(m);
	}
	fclose(f);
	return buf;
}

/*
 * tell_daemon - ask tlspolicyd to load what was published: 0 and the
 * generation it runs, 1 if it is not running, -1 if it refused (errno)
 */
static int tell_daemon(const char *name, unsigned *gen_r)
{
	struct sockaddr_un sa;
	struct tp_control msg = { TP_CONTROL_MAGIC, 1, TP_CONTROL_RELOAD, 0 };
	struct tp_control_reply r;
	unsigned len;
	struct pollfd pfd;
	int s;

	if (tp_relay_sockaddr(name, &sa, &len) < 0)
		return 1;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&sa, (socklen_t)len) < 0) {
		close(s);
		return 1;
	}
	pfd = (struct pollfd){ s, POLLIN, 0 };
	if (send(s, &msg, sizeof(msg), MSG_NOSIGNAL) != (ssize_t)sizeof(msg) ||
	    poll(&pfd, 1, TP_CONTROL_TIMEOUT_MS) != 1 ||
	    recv(s, &r, sizeof(r), 0) != (ssize_t)sizeof(r) || r.magic != TP_CONTROL_MAGIC) {
		close(s);
		errno = EPROTO;
		return -1;
	}
	close(s);
	*gen_r = r.generation;
	if (r.status != 0) {
		errno = r.status;
		return -1;
	}
	return 0;
}

static char *ports_text(const struct tp_policy *p, unsigned gen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f, "# tlspolicy generation %u: the ports tlspolicy.so hands to tlspolicyd\n"
		"# (written by tlspolicyctl reload; do not edit)\ngeneration %u\nrelay_socket %s\n",
		gen, gen, tp_policy_relay_socket(p));
	for (size_t i = 0; i < tp_policy_rule_count(p); i++)
		fprintf(f, "port %d\n", tp_policy_rule(p, i)->port);
	fclose(f);
	return buf;
}

struct saved {
	char *policy, *generation;
	size_t policy_len, generation_len;
};

static void restore(const char *rundir, const struct saved *s)
{
	put(rundir, TP_PUBLISHED_POLICY, s->policy, s->policy_len);
	put(rundir, TP_PUBLISHED_GENERATION, s->generation, s->generation_len);
}

/* publish - steps 1 to 3 of the header; the lock is held */
static int publish(const char *rundir, const struct tp_policy *p, const char *path)
{
	struct saved old = { 0 };
	char sha[65], genline[100], *text = NULL, *file = NULL, *ports = NULL;
	size_t len, flen = 0;
	unsigned cur = 0, gen, running = 0;
	int rc = -1, told;
	FILE *f;

	if (ctl_policy_text(p, &text, &len, sha) < 0)
		goto out;
	tp_published_generation(rundir, &cur, NULL);
	gen = cur + 1;
	f = open_memstream(&file, &flen);
	if (f == NULL)
		goto out;
	fprintf(f, "# tlspolicy generation %u, published by tlspolicyctl reload from %s\n%s", gen, path, text);
	fclose(f);
	snprintf(genline, sizeof(genline), "%u %s\n", gen, sha);
	ports = ports_text(p, gen);
	old.policy = slurp(rundir, TP_PUBLISHED_POLICY, &old.policy_len);
	old.generation = slurp(rundir, TP_PUBLISHED_GENERATION, &old.generation_len);
	if (ports == NULL || put(rundir, TP_PUBLISHED_POLICY, file, flen) < 0 ||
	    put(rundir, TP_PUBLISHED_GENERATION, genline, strlen(genline)) < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot write in %s: %s\n", rundir, strerror(errno));
		restore(rundir, &old);
		goto out;
	}
	told = tell_daemon(tp_policy_relay_socket(p), &running);
	if (told < 0 || (told == 0 && running != gen)) {
		fprintf(stderr, "tlspolicyctl: reload: tlspolicyd did not take generation %u (%s); "
			"its log says why; nothing changed, generation %u stays\n",
			gen, told < 0 ? strerror(errno) : "it runs another", cur);
		restore(rundir, &old);
		goto out;
	}
	if (put(rundir, TP_PUBLISHED_PORTS, ports, strlen(ports)) < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot write %s/%s: %s\n", rundir,
			TP_PUBLISHED_PORTS, strerror(errno));
		goto out;
	}
	if (told == 1)
		printf("generation %u (tlspolicyd is not running on %s; it loads this generation when it starts)\n",
		       gen, tp_policy_relay_socket(p));
	else
		printf("generation %u\n", gen);
	rc = 0;
out:
	free(text);
	free(file);
	free(ports);
	free(old.policy);
	free(old.generation);
	return rc;
}

int ctl_reload(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *rundir = tp_policy_rundir();
	char lockpath[4096];
	struct tp_policy *p;
	int c, lock, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		if (c == 'c')
			path = optarg;
		else
			return ctl_usage("reload");
	}
	if (optind != argc)
		return ctl_usage("reload");
	if (path == NULL)
		path = tp_policy_default_path();
	if (mkdir(rundir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "tlspolicyctl: reload: cannot create %s: %s\n", rundir, strerror(errno));
		return 1;
	}
	snprintf(lockpath, sizeof(lockpath), "%s/lock", rundir);
	lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot lock %s: %s\n", lockpath, strerror(errno));
		return 1;
	}
	p = ctl_load(path, TP_LOAD_CHECK_FILES);
	if (p == NULL) {
		unsigned cur = 0;

		if (tp_published_generation(rundir, &cur, NULL) == 0)
			fprintf(stderr, "tlspolicyctl: reload: nothing published; generation %u stays\n", cur);
		else
			fprintf(stderr, "tlspolicyctl: reload: nothing published\n");
		close(lock);
		return 1;
	}
	rc = publish(rundir, p, path) == 0 ? 0 : 1;
	tp_policy_free(&p);
	close(lock);	/* releases the lock */
	return rc;
}
