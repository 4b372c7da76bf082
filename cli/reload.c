/*
 * reload.c - tlspolicyctl reload: validate, publish a new generation
 * atomically, and have tlspolicyd take it
 *
 * Like visudo: the policy is checked whole (the same code as validate,
 * certificates and keys included), written to a temp file, fsynced and
 * renamed into the run directory.  The published form is what show prints:
 * one self-contained INI file with absolute paths.  Order matters:
 *   0. who is tlspolicyd: the name it serves comes from its record in the
 *      run directory (procnet.h), not from the new policy, and whoever
 *      listens there must be root or its user; an impostor gets nothing
 *      and nothing is published; a running tlspolicyd whose relay_socket
 *      or user the new policy changes is refused (restart only);
 *   1. the policy and its generation file, so tlspolicyd can load it;
 *   2. tlspolicyd loads it (control message, on a connection whose
 *      listener is again checked to be that same tlspolicyd); if it
 *      refuses, both files are put back as they were and nothing has
 *      changed;
 *   3. the ports file, which the shims follow from their next accept.
 * Every file and the run directory get their modes explicitly, whatever
 * the caller's umask (systemd's UMask= applies to ExecReload=): tlspolicyd
 * runs as its own user and the shims as the mail daemons' users, and all
 * of them must read what is published.
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
#include "procnet.h"
#include "published.h"

/* the mode of every published file and of the run directory: root writes, all read */
#define PUBLISHED_MODE 0644
#define RUNDIR_MODE 0755

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
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, PUBLISHED_MODE);
	if (fd < 0)
		return -1;
	/* not the umask's: tlspolicyd and the shims run as other users */
	if (fchmod(fd, PUBLISHED_MODE) < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) < 0) {
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

/* the tlspolicyd reload may talk to */
struct served {
	char relay_socket[128];	/* the name it listens on */
	char user[64];		/* the user it runs as */
	pid_t pid;		/* from its record; 0: not recorded */
	pid_t found;		/* the listener checked in step 0; 0: nobody listens */
};

/* impostor - say who holds the name instead of tlspolicyd */
static void impostor(const struct served *sv, const struct pn_peer *peer, const char *what)
{
	fprintf(stderr, "tlspolicyctl: reload: impostor pid %d uid %u (%s) holds %s: tlspolicyd is not "
		"running there (only root or user %s may be); %s\n", (int)peer->pid, (unsigned)peer->uid,
		peer->comm, sv->relay_socket, sv->user, what);
}

/*
 * is_daemon - is peer the tlspolicyd of sv: root or its user, and the
 * process that recorded itself (if one did)?  Says why not if it is not.
 */
static int is_daemon(const struct served *sv, const struct pn_peer *peer, const char *what)
{
	if (!pn_user_trusted(sv->user, peer->uid)) {
		impostor(sv, peer, what);
		return 0;
	}
	if (sv->pid != 0 && peer->pid != sv->pid) {
		fprintf(stderr, "tlspolicyctl: reload: pid %d uid %u (%s) listens on %s, but the tlspolicyd "
			"that serves it recorded pid %d in %s/%s: restart tlspolicyd; %s\n",
			(int)peer->pid, (unsigned)peer->uid, peer->comm, sv->relay_socket, (int)sv->pid,
			tp_policy_rundir(), TP_DAEMON_RECORD, what);
		return 0;
	}
	return 1;
}

/*
 * tell_daemon - ask tlspolicyd to load what was published: 0 and the
 * generation it runs, 1 if it is not running, -1 if it refused (errno),
 * -2 if someone else than the tlspolicyd of step 0 listens now (said)
 */
static int tell_daemon(const struct served *sv, unsigned *gen_r)
{
	struct tp_control msg = { TP_CONTROL_MAGIC, 1, TP_CONTROL_RELOAD, 0 };
	struct tp_control_reply r;
	struct pn_peer peer;
	struct pollfd pfd;
	int s;

	s = pn_relay_connect(sv->relay_socket, &peer);
	if (s < 0 && errno == ECONNREFUSED && sv->found == 0)
		return 1;
	if (s < 0)
		return -1;
	/* checked on the very connection the message goes over: no race */
	if (!is_daemon(sv, &peer, "nothing sent")) {
		close(s);
		return -2;
	}
	if (peer.pid != sv->found) {
		/* one started (or restarted) meanwhile, and may have loaded either generation */
		fprintf(stderr, "tlspolicyctl: reload: pid %d (%s) started listening on %s meanwhile: nothing "
			"sent; run tlspolicyctl reload again\n", (int)peer.pid, peer.comm, sv->relay_socket);
		close(s);
		return -2;
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

/* ports_text - the ports file of generation gen (published.h owns the format) */
static char *ports_text(const struct tp_policy *p, unsigned gen)
{
	struct tp_ports *ports = malloc(sizeof(*ports));
	const char *why = NULL;
	char *text = NULL;

	if (ports != NULL && tp_ports_from_policy(p, gen, ports, &why) == 0)
		text = tp_ports_text(ports);
	if (why != NULL)
		fprintf(stderr, "tlspolicyctl: reload: %s\n", why);
	free(ports);
	return text;
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

/* publish - steps 1 to 3 of the header; the lock is held and step 0 done */
static int publish(const char *rundir, const struct tp_policy *p, const char *path, const struct served *sv)
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
	told = tell_daemon(sv, &running);
	if (told == -2) {
		fprintf(stderr, "tlspolicyctl: reload: nothing changed, generation %u stays\n", cur);
		restore(rundir, &old);
		goto out;
	}
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
	if (told == 1 && strcmp(sv->relay_socket, tp_policy_relay_socket(p)) != 0)
		printf("generation %u (tlspolicyd is not running on %s; it loads this generation, on %s, "
		       "when it starts)\n", gen, sv->relay_socket, tp_policy_relay_socket(p));
	else if (told == 1)
		printf("generation %u (tlspolicyd is not running on %s; it loads this generation when it starts)\n",
		       gen, sv->relay_socket);
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

/* published_relay - the relay_socket line of the published ports file into out; 0 or -1 */
static int published_relay(const char *rundir, char *out, size_t size)
{
	size_t len;
	char *text = slurp(rundir, TP_PUBLISHED_PORTS, &len), *save = NULL;
	int rc = -1;

	for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l != NULL && rc < 0;
	     l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "relay_socket @", 14) == 0 && strlen(l + 13) < size) {
			snprintf(out, size, "%s", l + 13);
			rc = 0;
		}
	}
	free(text);
	return rc;
}

/*
 * served_by - the name and user the running tlspolicyd serves: from its
 * record.  Without one (no tlspolicyd started since the run directory was
 * made, or one that could not write it and logged so), the name the shims
 * follow: the published ports file's, else the new policy's.  -1 if the
 * record is there but cannot be trusted (said).
 */
static int served_by(const char *rundir, const struct tp_policy *p, struct served *sv)
{
	struct pn_record rec;
	char why[512];
	int rc = pn_record_read(rundir, &rec, why, sizeof(why));

	memset(sv, 0, sizeof(*sv));
	if (rc < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot tell which relay socket tlspolicyd serves: %s\n", why);
		return -1;
	}
	if (rc == 1) {
		snprintf(sv->relay_socket, sizeof(sv->relay_socket), "%s", rec.relay_socket);
		snprintf(sv->user, sizeof(sv->user), "%s", rec.user);
		sv->pid = rec.pid;
		return 0;
	}
	if (published_relay(rundir, sv->relay_socket, sizeof(sv->relay_socket)) < 0)
		snprintf(sv->relay_socket, sizeof(sv->relay_socket), "%s", tp_policy_relay_socket(p));
	snprintf(sv->user, sizeof(sv->user), "%s", tp_policy_user(p));
	return 0;
}

/*
 * find_daemon - step 0: who listens on the served name.  0 if tlspolicyd
 * does (sv->found is its pid) or nobody does (sv->found 0), and the new
 * policy keeps its relay_socket and user; -1 otherwise (said)
 */
static int find_daemon(struct served *sv, const struct tp_policy *p, unsigned cur)
{
	struct pn_peer peer;
	char stays[64];
	int s = pn_relay_connect(sv->relay_socket, &peer);

	if (cur != 0)
		snprintf(stays, sizeof(stays), "nothing published; generation %u stays", cur);
	else
		snprintf(stays, sizeof(stays), "nothing published");
	if (s < 0 && errno == ECONNREFUSED)
		return 0;	/* not running: it serves what is published when it starts */
	if (s < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot connect to %s: %s; %s\n", sv->relay_socket,
			strerror(errno), stays);
		return -1;
	}
	close(s);
	if (!is_daemon(sv, &peer, stays))
		return -1;
	sv->found = peer.pid;
	if (strcmp(sv->relay_socket, tp_policy_relay_socket(p)) != 0) {
		fprintf(stderr, "tlspolicyctl: reload: relay_socket changes from %s to %s: takes effect on "
			"restart: restart tlspolicyd (stop it, run tlspolicyctl reload, start it); %s\n",
			sv->relay_socket, tp_policy_relay_socket(p), stays);
		return -1;
	}
	if (strcmp(sv->user, tp_policy_user(p)) != 0) {
		fprintf(stderr, "tlspolicyctl: reload: user changes from %s to %s: takes effect on "
			"restart: restart tlspolicyd (stop it, run tlspolicyctl reload, start it); %s\n",
			sv->user, tp_policy_user(p), stays);
		return -1;
	}
	return 0;
}

/* open_rundir - the run directory, made if need be, ours, with its mode set */
static int open_rundir(const char *rundir)
{
	struct stat st;
	int fd;

	if (mkdir(rundir, RUNDIR_MODE) < 0 && errno != EEXIST) {
		fprintf(stderr, "tlspolicyctl: reload: cannot create %s: %s\n", rundir, strerror(errno));
		return -1;
	}
	fd = open(rundir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot open %s: %s\n", rundir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* the shims believe what is in it: nobody else may write there */
	if (st.st_uid != geteuid()) {
		fprintf(stderr, "tlspolicyctl: reload: %s belongs to uid %u, not to uid %u: the module trusts "
			"what is published there; remove it or give it to root\n", rundir,
			(unsigned)st.st_uid, (unsigned)geteuid());
		close(fd);
		return -1;
	}
	if ((st.st_mode & 07777) != RUNDIR_MODE && fchmod(fd, RUNDIR_MODE) < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot chmod %s: %s\n", rundir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
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
	struct served sv;
	unsigned cur = 0;
	int c, lock, rc = 1;

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
	if (open_rundir(rundir) < 0)
		return 1;
	snprintf(lockpath, sizeof(lockpath), "%s/lock", rundir);
	lock = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX) < 0) {
		fprintf(stderr, "tlspolicyctl: reload: cannot lock %s: %s\n", lockpath, strerror(errno));
		return 1;
	}
	p = ctl_load(path, TP_LOAD_CHECK_FILES);
	if (p == NULL) {
		if (tp_published_generation(rundir, &cur, NULL) == 0)
			fprintf(stderr, "tlspolicyctl: reload: nothing published; generation %u stays\n", cur);
		else
			fprintf(stderr, "tlspolicyctl: reload: nothing published\n");
		close(lock);
		return 1;
	}
	tp_published_generation(rundir, &cur, NULL);
	if (served_by(rundir, p, &sv) == 0 && find_daemon(&sv, p, cur) == 0)
		rc = publish(rundir, p, path, &sv) == 0 ? 0 : 1;
	tp_policy_free(&p);
	close(lock);	/* releases the lock */
	return rc;
}
