/*
 * tlspolicyd - the enforcement daemon
 *
 * Started as root, it forks its key helper (keyhelper.h), which opens the
 * certificate and key files for it now and at every reload; loads the
 * policy and the certificates; binds its socket; and then becomes the
 * policy's unprivileged `user` for good, before it handles any connection
 * (it refuses to start if there is no such user, unless told
 * --insecure-run-as-root).  Listens on the abstract
 * UNIX socket of [global] relay_socket for connections the shim hands
 * over, checks who hands them (SO_PEERCRED), takes the client's address
 * from the TCP socket itself, and gives each connection to a worker.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "handoff.h"
#include "keyhelper.h"
#include "connlimits.h"
#include "policy.h"
#include "relay.h"
#include "relaysock.h"
#include "tlsctx.h"
#include "tplog.h"
#include "util.h"

#define WORKERS 2
#define MAX_UIDS 16

static volatile sig_atomic_t stopping, reloading;

static struct {
	struct gen *cur;		/* the running policy */
	struct tp_policy *policy;	/* cur's, for short */
	WOLFSSL_CTX **ctx;		/* cur's: per rule, NULL where no TLS is done here */
	struct tp_worker *worker[WORKERS];
	uid_t uids[MAX_UIDS];		/* who may hand over connections */
	size_t nuids;
	unsigned generation;		/* the published generation running; 0: the files in /etc */
	const char *path;		/* -c FILE; NULL: the published policy, else the default */
	struct tp_keyhelper *keys;	/* opens the key files; NULL when we run as root or were not */
	struct { char name[64]; uid_t uid; gid_t gid; } user;	/* to become; name "": stay */
	struct tp_limits *limits;	/* connections now, against the running generation's limits */
} d;

/*
 * A loaded policy and its TLS contexts.  Each connection started under it
 * holds a reference, and so does tlspolicyd while it is the running one;
 * whoever drops the last frees it, so a reload frees the old contexts when
 * the last connection that uses them ends (on that worker's thread).
 */
struct gen {
	atomic_int refs;
	unsigned number;
	struct tp_policy *policy;
	WOLFSSL_CTX **ctx;
};

static void gen_release(void *arg)
{
	struct gen *g = arg;

	if (atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	tp_log(LOG_INFO, "action=free generation=%u note=\"its last connection ended\"", g->number);
	tp_tlsctx_free_all(&g->ctx, tp_policy_rule_count(g->policy));
	tp_policy_free(&g->policy);
	free(g);
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reloading = 1;
	else
		stopping = 1;
}

static void allow_user(const char *name)
{
	struct passwd *pw = getpwnam(name);

	if (pw != NULL && d.nuids < MAX_UIDS)
		d.uids[d.nuids++] = pw->pw_uid;
}

/* allowed - root, ourselves, and the mail daemons' users may hand over */
static int allowed(uid_t uid)
{
	for (size_t i = 0; i < d.nuids; i++)
		if (d.uids[i] == uid)
			return 1;
	return 0;
}

/*
 * drop_privileges - become pw for good, keeping its supplementary groups
 * (initgroups: ssl-cert is how Debian lets a service read its keys), and
 * check that root cannot be had back
 */
static int drop_privileges(void)
{
	const char *name = d.user.name;
	uid_t uid = d.user.uid;
	gid_t gid = d.user.gid;

	if (name[0] == '\0')
		return 0;	/* --insecure-run-as-root, or started unprivileged */
	if (initgroups(name, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		tp_log(LOG_ERR, "action=start-failed reason=setuid user=%s error=\"%s\"", name,
		       strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || getuid() != uid ||
	    geteuid() != uid || getgid() != gid || getegid() != gid) {
		tp_log(LOG_ERR, "action=start-failed reason=setuid user=%s note=\"root could be "
		       "regained after the drop\"", name);
		return -1;
	}
	tp_log(LOG_INFO, "action=start user=%s uid=%d gid=%d groups=%d", name, (int)uid, (int)gid,
	       getgroups(0, NULL));
	return 0;
}

/*
 * record_serving - write the run directory's TP_DAEMON_RECORD (policy.h):
 * the relay socket this tlspolicyd listens on, its user and its pid.
 * relay_socket and user take effect on restart only, so tlspolicyctl
 * reload must talk to this name whatever the policy files say by then,
 * and never publish another.  Called as root right after listen(), before
 * the privilege drop; also gives the run directory its mode whatever our
 * umask: the shims and our own user read it.
 */
static void record_serving(void)
{
	const char *rundir = tp_policy_rundir();
	char path[4096], tmp[4200];
	struct stat st;
	int fd, ok;

	if (stat(rundir, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 07777) != 0755)
		chmod(rundir, 0755);
	snprintf(path, sizeof(path), "%s/%s", rundir, TP_DAEMON_RECORD);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	ok = fd >= 0 && fchmod(fd, 0644) == 0 &&
	     dprintf(fd, "# what this tlspolicyd serves (it writes this at start; tlspolicyctl reads it)\n"
		     "pid %d\nrelay_socket %s\nuser %s\n", (int)getpid(), tp_policy_relay_socket(d.policy),
		     tp_policy_user(d.policy)) > 0;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (ok && rename(tmp, path) == 0)
		return;
	tp_log(LOG_ERR, "action=start note=\"cannot record what this tlspolicyd serves in %s: %s; "
	       "tlspolicyctl reload cannot then tell the relay_socket it serves from a changed one\"",
	       path, strerror(errno));
	if (fd >= 0)
		unlink(tmp);
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t len,
		      int *port)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		*port = ntohs(s6->sin6_port);
	} else {
		*port = -1;
	}
	snprintf(out, len, "%s", ip);
}

/* take - one hand-off: check it, find the rule, give it to a worker */
static int take(int tcp, int app)
{
	static unsigned next;
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer);
	char lip[INET6_ADDRSTRLEN], pip[INET6_ADDRSTRLEN], client[INET6_ADDRSTRLEN + 16];
	int lport, pport;
	const struct tp_rule *r;
	size_t idx = 0;

	/* the addresses come from the TCP socket itself, never from the caller */
	if (getsockname(tcp, (struct sockaddr *)&local, &llen) < 0 ||
	    getpeername(tcp, (struct sockaddr *)&peer, &plen) < 0)
		return errno ? errno : EINVAL;
	addr_text(&local, lip, sizeof(lip), &lport);
	addr_text(&peer, pip, sizeof(pip), &pport);
	if (lport < 0 || pport < 0)
		return EAFNOSUPPORT;
	snprintf(client, sizeof(client), "%s%s%s:%d", strchr(pip, ':') ? "[" : "", pip,
		 strchr(pip, ':') ? "]" : "", pport);
	r = tp_policy_lookup(d.policy, lport, lip);
	if (r == NULL) {
		tp_log(LOG_WARNING, "port=%d client=%s action=close reason=port-not-managed", lport, client);
		return ENOENT;
	}
	for (; idx < tp_policy_rule_count(d.policy); idx++)
		if (tp_policy_rule(d.policy, idx) == r)
			break;
	atomic_fetch_add(&d.cur->refs, 1);
	if (tp_worker_add(d.worker[next++ % WORKERS], tcp, app, r, d.ctx[idx], client, d.generation,
			  gen_release, d.cur) < 0) {
		int e = errno == EBUSY ? EBUSY : ENOMEM;	/* EBUSY: a connection cap */

		gen_release(d.cur);
		return e;
	}
	return 0;
}

static int reload(void);

/* run_control - a control message: only from root or our own user */
static void run_control(const struct tp_control *m, const struct ucred *cred,
			struct tp_control_reply *r)
{
	if (cred->uid != 0 && cred->uid != getuid()) {
		tp_log(LOG_WARNING, "action=control-refused reason=uid-not-allowed uid=%d pid=%d",
		       (int)cred->uid, (int)cred->pid);
		r->status = EPERM;
	} else if (m->command == TP_CONTROL_RELOAD) {
		r->status = reload();
	} else {
		r->status = EINVAL;
	}
	r->generation = d.generation;
}

/* on_tick - the signals' work, on the main thread */
static void on_tick(void)
{
	if (reloading) {
		reloading = 0;
		reload();
	}
}

static int usage(FILE *f, int rc)
{
	fprintf(f, "usage: tlspolicyd [-f] [-c FILE] [--insecure-run-as-root]\n"
		"  -f       stay in the foreground and log to stderr\n"
		"  -c FILE  the policy (default: $TLSPOLICY_CONF or %s/tlspolicy/tlspolicy.conf)\n"
		"  --insecure-run-as-root\n"
		"           do not become the policy's user: handle every connection as root\n",
		TP_SYSCONFDIR);
	return rc;
}

/* log_diags - a load's diagnostics, one line each */
static void log_diags(const struct tp_diags *dg)
{
	for (size_t i = 0; dg != NULL && i < tp_diags_len(dg); i++) {
		char *line = tp_diag_format(tp_diags_get(dg, i));

		tp_log(tp_diags_get(dg, i)->severity == TP_ERROR ? LOG_ERR : LOG_WARNING, "%s",
		       line ? line : "out of memory");
		free(line);
	}
}

/*
 * contexts - p's TLS contexts, from files the key helper opened (when we
 * dropped privileges) or opened here; NULL and logged on failure
 */
static WOLFSSL_CTX **contexts(const struct tp_policy *p)
{
	struct tp_keyfiles *files = NULL;
	struct tp_tlsctx_files via = { tp_keyfiles_open, NULL };
	WOLFSSL_CTX **ctx;
	enum tp_key_id key = TP_KEY_CERTIFICATE;
	char error[512];
	size_t bad = 0;

	if (d.keys != NULL && tp_keyhelper_fetch(d.keys, p, &files, error, sizeof(error)) < 0) {
		tp_log(LOG_ERR, "action=load-failed reason=key-helper error=\"%s\"", error);
		return NULL;
	}
	via.arg = files;
	ctx = tp_tlsctx_new_all(p, files != NULL ? &via : NULL, &bad, &key, error, sizeof(error));
	tp_keyfiles_free(&files);
	if (ctx == NULL)
		tp_log(LOG_ERR, "action=load-failed reason=tls-context port=%d section=\"%s\" key=%s "
		       "error=\"%s\"", tp_policy_rule(p, bad)->port, tp_policy_rule(p, bad)->section,
		       tp_keys[key].name, error);
	return ctx;
}

/*
 * load - a policy and its contexts, all or nothing; diagnostics logged.
 * With the key helper, the files are checked by it, as root; else here.
 */
static int load(const char *path, struct tp_policy **p_r, WOLFSSL_CTX ***ctx_r)
{
	struct tp_diags *dg = tp_diags_new();
	struct tp_policy *p = tp_policy_load(path, d.keys != NULL ? 0 : TP_LOAD_CHECK_FILES, dg);

	log_diags(dg);
	tp_diags_free(&dg);
	if (p == NULL)
		return -1;
	*ctx_r = contexts(p);
	if (*ctx_r == NULL) {
		tp_policy_free(&p);
		return -1;
	}
	*p_r = p;
	return 0;
}

/*
 * policy_path - what to load: -c FILE; else the generation published in
 * the run directory (tlspolicyctl reload), with its number in *gen_r; else,
 * only if nothing was published (there is no generation file), the default
 * policy file (generation 0).  NULL, with the reason in buf, if a
 * generation file is there but cannot be read: the policy in /etc is then
 * not what the shims follow, and loading it would be a silent fallback.
 */
static const char *policy_path(char *buf, size_t size, unsigned *gen_r)
{
	const char *rundir = tp_policy_rundir();
	struct stat st;

	*gen_r = 0;
	if (d.path != NULL)
		return d.path;
	if (tp_published_generation(rundir, gen_r, NULL) == 0) {
		snprintf(buf, size, "%s/%s", rundir, TP_PUBLISHED_POLICY);
		return buf;
	}
	snprintf(buf, size, "%s/%s", rundir, TP_PUBLISHED_GENERATION);
	if (stat(buf, &st) < 0 && errno == ENOENT)
		return tp_policy_default_path();
	if (access(buf, R_OK) < 0)
		snprintf(buf, size, "published generation %s/%s unreadable: %s", rundir,
			 TP_PUBLISHED_GENERATION, strerror(errno));
	else
		snprintf(buf, size, "published generation %s/%s is not \"N SHA256\"", rundir,
			 TP_PUBLISHED_GENERATION);
	return NULL;
}

/* set_limits - the running generation's connection limits */
static void set_limits(const struct tp_policy *p)
{
	tp_limits_set(d.limits, tp_policy_count(p, TP_KEY_MAX_CONNECTIONS),
		      tp_policy_count(p, TP_KEY_MAX_CONNECTIONS_PER_CLIENT));
}

/*
 * reload - parse into new objects, then swap; on any error the running
 * policy stays (an invalid policy is never activated).  Returns 0 or an
 * errno value.
 */
static int reload(void)
{
	struct tp_policy *p;
	WOLFSSL_CTX **ctx;
	struct gen *g = calloc(1, sizeof(*g));
	char buf[4096];
	unsigned gen;
	const char *path = policy_path(buf, sizeof(buf), &gen);

	if (path == NULL) {
		free(g);
		tp_log(LOG_ERR, "action=reload-failed reason=published-unreadable error=\"%s\" generation=%u "
		       "note=\"the running policy stays\"", buf, d.generation);
		return EACCES;
	}
	if (g == NULL || load(path, &p, &ctx) < 0) {
		free(g);
		tp_log(LOG_ERR, "action=reload-failed file=%s generation=%u note=\"the running policy stays\"",
		       path, d.generation);
		return g == NULL ? ENOMEM : EINVAL;
	}
	if (strcmp(tp_policy_relay_socket(p), tp_policy_relay_socket(d.policy)) != 0)
		tp_log(LOG_WARNING, "action=reload note=\"relay_socket changed: takes effect on restart\"");
	if (strcmp(tp_policy_user(p), tp_policy_user(d.policy)) != 0)
		tp_log(LOG_WARNING, "action=reload note=\"user changed: takes effect on restart\"");
	atomic_init(&g->refs, 1);
	g->number = gen;
	g->policy = p;
	g->ctx = ctx;
	gen_release(d.cur);	/* freed now, or when its last connection ends */
	d.cur = g;
	d.policy = p;
	d.ctx = ctx;
	d.generation = gen;
	set_limits(p);
	tp_log(LOG_INFO, "action=reload file=%s generation=%u ports=%zu", path, d.generation,
	       tp_policy_rule_count(p));
	return 0;
}

/* helper_policy_path - the key helper reads what we would load */
static const char *helper_policy_path(char *buf, size_t size)
{
	unsigned gen;

	return policy_path(buf, size, &gen);
}

/*
 * raise_nofile - every relayed connection holds two descriptors (four
 * more while spliced): the soft limit goes up to the hard one
 */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			tp_log(LOG_WARNING, "action=start note=\"cannot raise RLIMIT_NOFILE: %s\"",
			       strerror(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	tp_log(LOG_INFO, "action=start nofile=%llu", (unsigned long long)rl.rlim_cur);
}

/* check_nofile - will max_connections fit in our descriptors? */
static void check_nofile(const struct tp_policy *p)
{
	struct rlimit rl;
	long max = tp_policy_count(p, TP_KEY_MAX_CONNECTIONS);
	unsigned long long need = 2ULL * (unsigned long long)max + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
		tp_log(LOG_WARNING, "action=start note=\"max_connections=%ld needs about %llu descriptors "
		       "but RLIMIT_NOFILE is %llu: raise it (systemd: LimitNOFILE=) or lower max_connections\"",
		       max, need, (unsigned long long)rl.rlim_cur);
}

/* policy_user - the user the policy names, read as root to know whom to become */
static int policy_user(const char *path, char *user, size_t size)
{
	struct tp_diags *dg = tp_diags_new();
	struct tp_policy *p = tp_policy_load(path, 0, dg);
	int rc = p != NULL ? 0 : -1;

	if (p == NULL)
		log_diags(dg);
	else
		snprintf(user, size, "%s", tp_policy_user(p));
	tp_diags_free(&dg);
	tp_policy_free(&p);
	return rc;
}

/*
 * prepare_drop - started as root: whom to become (d.user), and the key
 * helper forked while we still are root (before any thread, and before
 * the relay socket exists, which it must not hold); never go on as root
 * unless told so (as_root)
 */
static int prepare_drop(const char *path, int as_root)
{
	char user[64] = "";
	struct passwd *pw;

	if (getuid() != 0 && geteuid() != 0)
		return 0;	/* started unprivileged (systemd User=): stay so, load as ourselves */
	if (as_root) {
		tp_log(LOG_WARNING, "action=start user=root note=\"--insecure-run-as-root: every "
		       "connection is handled as root\"");
		return 0;
	}
	if (policy_user(path, user, sizeof(user)) < 0) {
		tp_log(LOG_ERR, "action=start-failed reason=policy-invalid file=%s", path);
		return -1;
	}
	pw = getpwnam(user);
	if (pw == NULL) {
		tp_log(LOG_ERR, "action=start-failed reason=no-user user=%s note=\"tlspolicyd never handles "
		       "a connection as root: create the user (useradd --system --no-create-home --shell "
		       "/usr/sbin/nologin %s), name another in [global] user, or start with "
		       "--insecure-run-as-root\"", user, user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		tp_log(LOG_ERR, "action=start-failed reason=user-is-root user=%s note=\"name an "
		       "unprivileged system user in [global] user\"", user);
		return -1;
	}
	snprintf(d.user.name, sizeof(d.user.name), "%s", user);
	d.user.uid = pw->pw_uid;
	d.user.gid = pw->pw_gid;
	d.keys = tp_keyhelper_start(helper_policy_path);
	if (d.keys == NULL) {
		tp_log(LOG_ERR, "action=start-failed reason=key-helper error=\"%s\"", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "insecure-run-as-root", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path;
	char buf[4096];
	pthread_t th[WORKERS];
	int c, foreground = 0, as_root = 0, ls;

	while ((c = getopt_long(argc, argv, "fc:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': foreground = 1; break;
		case 'c': d.path = optarg; break;
		case 'R': as_root = 1; break;
		case 'h': return usage(stdout, 0);
		default: return usage(stderr, 2);
		}
	}
	if (optind != argc)
		return usage(stderr, 2);
	tp_log_open(foreground);
	/* the shims open the run directory in their constructors, so it must
	 * exist before the daemons start (they are ordered after us), even if
	 * nothing was published yet */
	if (mkdir(tp_policy_rundir(), 0755) < 0 && errno != EEXIST)
		tp_log(LOG_WARNING, "action=start note=\"cannot create %s: %s; shims started now will not "
		       "follow tlspolicyctl reload until restarted\"", tp_policy_rundir(), strerror(errno));
	raise_nofile();
	path = policy_path(buf, sizeof(buf), &d.generation);
	if (path == NULL) {
		tp_log(LOG_ERR, "action=start-failed reason=published-unreadable error=\"%s\"", buf);
		return 1;
	}
	if (prepare_drop(path, as_root) < 0)
		return 1;
	if (tp_relay_wipe_tls_heap() < 0)
		tp_log(LOG_WARNING, "action=start note=\"wolfSSL's buffers cannot be wiped on free here\"");
	wolfSSL_Init();
	d.cur = calloc(1, sizeof(*d.cur));
	if (d.cur == NULL || load(path, &d.policy, &d.ctx) < 0) {
		tp_log(LOG_ERR, "action=start-failed reason=policy-invalid file=%s", path);
		return 1;
	}
	check_nofile(d.policy);
	d.limits = tp_limits_new(tp_policy_count(d.policy, TP_KEY_MAX_CONNECTIONS),
				 tp_policy_count(d.policy, TP_KEY_MAX_CONNECTIONS_PER_CLIENT));
	if (d.limits == NULL)
		return 1;
	d.cur->number = d.generation;
	d.cur->policy = d.policy;
	d.cur->ctx = d.ctx;
	atomic_init(&d.cur->refs, 1);
	ls = tp_relaysock_listen(tp_policy_relay_socket(d.policy));
	if (ls < 0) {
		tp_log(LOG_ERR, "action=start-failed reason=listen socket=%s error=\"%s\"",
		       tp_policy_relay_socket(d.policy), strerror(errno));
		return 1;
	}
	record_serving();
	if (drop_privileges() < 0)
		return 1;
	d.uids[d.nuids++] = 0;
	d.uids[d.nuids++] = getuid();
	allow_user("postfix");
	allow_user("dovecot");
	allow_user("dovenull");
	allow_user("Debian-exim");
	allow_user("mail");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGHUP, on_signal);
	for (int i = 0; i < WORKERS; i++) {
		d.worker[i] = tp_worker_new(d.limits);
		if (d.worker[i] == NULL || pthread_create(&th[i], NULL, tp_worker_run, d.worker[i]) != 0)
			return 1;
	}
	tp_log(LOG_INFO, "action=start socket=%s ports=%zu file=%s generation=%u",
	       tp_policy_relay_socket(d.policy), tp_policy_rule_count(d.policy), path, d.generation);
	tp_relaysock_serve(ls, &(const struct tp_relaysock_ops){ allowed, take, run_control, on_tick,
								 &stopping });
	tp_log(LOG_INFO, "action=stop");
	for (int i = 0; i < WORKERS; i++) {
		tp_worker_stop(d.worker[i]);
		pthread_join(th[i], NULL);
	}
	close(ls);
	gen_release(d.cur);	/* every connection is closed: the last reference */
	tp_limits_free(&d.limits);
	tp_keyhelper_stop(&d.keys);
	wolfSSL_Cleanup();
	return 0;
}
