/*
 * enable.c - tlspolicyctl enable|disable DAEMON: hook the module into a
 * mail daemon, or unhook it, idempotently
 *
 * Three things make the shim load and work in a daemon (DESIGN.md, "What
 * real daemons do to a preloaded module"):
 *  1. LD_PRELOAD in the daemon's service: a systemd drop-in, which also
 *     orders the daemon after tlspolicyd;
 *  2. the daemon passing it on to the processes that accept connections,
 *     which get a scrubbed environment: Postfix import_environment,
 *     Dovecot import_environment, Exim keep_environment;
 *  3. the daemon's own TLS settings for the role the policy gives each
 *     port: with tls_by = module tlspolicyd does the TLS and the daemon
 *     must serve plaintext behind it (and accept authentication it sees in
 *     plaintext, which tlspolicyd only lets through inside TLS).
 * Every change is printed; --dry-run prints without changing.  What enable
 * overrode is remembered next to the daemon's configuration, so disable
 * puts back exactly the values that were there.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"
#include "policy.h"

#ifndef TP_SHIM_PATH
#define TP_SHIM_PATH "/usr/lib/tlspolicy/tlspolicy.so"
#endif

#define OUT_MAX 65536
#define UNSET "\x01unset"

struct en {
	int enable;			/* 1 enable, 0 disable */
	int dry_run;
	const char *daemon;
	const char *config_dir;
	const char *systemd_dir;	/* NULL: no systemd drop-in */
	const char *shim;
	const char *conf;		/* policy path to pass on; NULL: the default */
	struct tp_policy *policy;
	int changes;
};

static void change(struct en *e, const char *fmt, ...)
{
	va_list ap;

	printf("%s", e->dry_run ? "would " : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	e->changes++;
}

/* --- running the daemon's own configuration tool ------------------------- */

/*
 * run - argv with stdout captured into out (NUL-terminated, trailing
 * newlines cut); stderr goes to ours, or (quiet) nowhere.  Returns the
 * exit status, -1 if it could not run.
 */
static int run(const char *const argv[], char *out, size_t size, int quiet)
{
	int pfd[2], status;
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		char *av[32];
		size_t i;

		for (i = 0; i < 31 && argv[i] != NULL; i++)
			av[i] = strdup(argv[i]);
		av[i] = NULL;
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		if (quiet) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, 2);
		}
		execvp(av[0], av);
		fprintf(stderr, "tlspolicyctl: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], out + len, size - 1 - len)) > 0 && len + (size_t)n < size - 1)
		len += (size_t)n;
	if (n > 0)
		len += (size_t)n;
	close(pfd[0]);
	out[len] = '\0';
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* --- files ---------------------------------------------------------------- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
	    (buf = malloc((size_t)size + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[size] = '\0';
	fclose(f);
	return buf;
}

/* write_file - atomically: a temp file beside it, fsync, rename */
static int write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[4096];
	int fd;
	size_t len = strlen(text);

	if (snprintf(tmp, sizeof(tmp), "%s.tlspolicy-new", path) >= (int)sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* put_file - make path hold text (or, text NULL, not exist); 0 or -1 */
static int put_file(struct en *e, const char *path, const char *text)
{
	char *old = read_file(path);
	int same = text != NULL ? old != NULL && strcmp(old, text) == 0 : old == NULL;

	free(old);
	if (same) {
		printf("unchanged: %s\n", path);
		return 0;
	}
	change(e, text != NULL ? "write %s" : "remove %s", path);
	if (e->dry_run)
		return 0;
	if (text == NULL)
		return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
	return write_file(path, text, 0644);
}

static int fail(const char *what, const char *path)
{
	fprintf(stderr, "tlspolicyctl: %s %s: %s\n", what, path, strerror(errno));
	return -1;
}

/* --- 1. the systemd drop-in ---------------------------------------------- */

static int systemd_dropin(struct en *e, const char *unit)
{
	char dir[4096], path[4200], text[2048];

	if (e->systemd_dir == NULL)
		return 0;
	snprintf(dir, sizeof(dir), "%s/%s.d", e->systemd_dir, unit);
	snprintf(path, sizeof(path), "%s/tlspolicy.conf", dir);
	snprintf(text, sizeof(text),
		 "# Written by 'tlspolicyctl enable %s'; 'tlspolicyctl disable %s' removes it.\n"
		 "# Loads tlspolicy.so into %s so that tlspolicyd enforces the TLS policy on\n"
		 "# the ports it manages (tlspolicy.conf(5)).\n"
		 "[Unit]\nWants=tlspolicyd.service\nAfter=tlspolicyd.service\n\n"
		 "[Service]\nEnvironment=LD_PRELOAD=%s\n%s%s%s",
		 e->daemon, e->daemon, unit, e->shim,
		 e->conf ? "Environment=TLSPOLICY_CONF=" : "", e->conf ? e->conf : "",
		 e->conf ? "\n" : "");
	if (e->enable && !e->dry_run && mkdir(dir, 0755) < 0 && errno != EEXIST)
		return fail("cannot create", dir);
	if (put_file(e, path, e->enable ? text : NULL) < 0)
		return fail("cannot write", path);
	if (!e->enable && !e->dry_run)
		rmdir(dir);	/* only if empty: other drop-ins stay */
	return 0;
}

/* --- the environment words to pass on --------------------------------------- */

/* env_words - "LD_PRELOAD=... [TLSPOLICY_CONF=...]" */
static void env_words(const struct en *e, char *out, size_t size, const char *sep)
{
	snprintf(out, size, "LD_PRELOAD=%s%s%s%s", e->shim, e->conf ? sep : "",
		 e->conf ? "TLSPOLICY_CONF=" : "", e->conf ? e->conf : "");
}

/* without_ours - words of list that are not LD_PRELOAD=/TLSPOLICY_CONF= */
static void without_ours(const char *list, char *out, size_t size)
{
	char *copy = strdup(list), *save = NULL;
	size_t len = 0;

	out[0] = '\0';
	if (copy == NULL)
		return;
	for (char *w = strtok_r(copy, " \t,", &save); w != NULL; w = strtok_r(NULL, " \t,", &save)) {
		if (strncmp(w, "LD_PRELOAD=", 11) == 0 || strncmp(w, "TLSPOLICY_CONF=", 15) == 0)
			continue;
		len += (size_t)snprintf(out + len, size > len ? size - len : 0, "%s%s", len ? " " : "", w);
	}
	free(copy);
}

/* --- the ports the policy gives each role ---------------------------------- */

/* service_port - a Postfix master.cf service name as [host:]port */
static int service_port(const char *service, const char **host_end)
{
	const char *colon = strrchr(service, ':');
	const char *name = colon ? colon + 1 : service;
	struct servent *se;
	char *end;
	long v = strtol(name, &end, 10);

	*host_end = colon;
	if (*name != '\0' && *end == '\0')
		return v > 0 && v < 65536 ? (int)v : -1;
	se = getservbyname(name, "tcp");
	return se != NULL ? ntohs((uint16_t)se->s_port) : -1;
}

static const struct tp_rule *rule_for(const struct en *e, int port, enum tp_protocol proto)
{
	const struct tp_rule *r = tp_policy_lookup(e->policy, port, NULL);

	return r != NULL && r->protocol == proto ? r : NULL;
}

/* --- Postfix ------------------------------------------------------------------- */

struct pf {
	struct en *e;
	char state[4096];	/* what enable overrode, to put back */
	char *saved;		/* its contents */
	char *record;		/* what this run adds to it */
	size_t record_len;
};

static int postconf(struct pf *p, char *out, size_t size, ...)
{
	const char *argv[16];
	int argc = 0, quiet = 0;
	va_list ap;

	argv[argc++] = "postconf";
	argv[argc++] = "-c";
	argv[argc++] = p->e->config_dir;
	va_start(ap, size);
	while (argc < 15 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	/* queries (-h) of parameters that are not set only warn: keep that quiet */
	for (int i = 3; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0)
			quiet = 1;
	return run(argv, out, size, quiet);
}

/* saved_value - the value enable found before it first changed key */
static const char *saved_value(struct pf *p, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);

	for (const char *l = p->saved; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, klen) == 0 && l[klen] == '\t') {
			size_t n = strcspn(l + klen + 1, "\n");

			snprintf(out, size, "%.*s", (int)n, l + klen + 1);
			return out;
		}
	}
	return NULL;
}

static void remember(struct pf *p, const char *key, const char *value)
{
	char line[8192], have[4096];
	int n;

	if (saved_value(p, key, have, sizeof(have)) != NULL)
		return;		/* the first value seen is the original */
	n = snprintf(line, sizeof(line), "%s\t%s\n", key, value);
	char *nr = realloc(p->record, p->record_len + (size_t)n + 1);

	if (nr == NULL)
		return;
	p->record = nr;
	memcpy(p->record + p->record_len, line, (size_t)n + 1);
	p->record_len += (size_t)n;
}

/*
 * pf_set - make main.cf parameter key (master: "service/type/param" in
 * master.cf) hold value, remembering what was there
 */
static int pf_set(struct pf *p, int master, const char *key, const char *value)
{
	char cur[OUT_MAX], arg[8192], rkey[512];
	int rc = postconf(p, cur, sizeof(cur), master ? "-P" : "-n", "-h", key, NULL);

	if (rc != 0)
		cur[0] = '\0';
	if (rc == 0 && cur[0] && strcmp(cur, value) == 0) {
		printf("unchanged: %s %s = %s\n", master ? "master.cf" : "main.cf", key, value);
		return 0;
	}
	snprintf(rkey, sizeof(rkey), "%s %s", master ? "master" : "main", key);
	remember(p, rkey, cur[0] ? cur : UNSET);
	change(p->e, "set %s %s = %s%s%s%s", master ? "master.cf" : "main.cf", key, value,
	       cur[0] ? " (was " : "", cur, cur[0] ? ")" : "");
	if (p->e->dry_run)
		return 0;
	snprintf(arg, sizeof(arg), "%s=%s", key, value);
	return postconf(p, cur, sizeof(cur), master ? "-P" : "-e", arg, NULL) == 0 ? 0 : -1;
}

/* pf_restore - put one remembered value back */
static int pf_restore(struct pf *p, const char *rkey, const char *value)
{
	int master = strncmp(rkey, "master ", 7) == 0;
	const char *key = strchr(rkey, ' ') + 1;
	char out[OUT_MAX], arg[8192];

	if (strcmp(value, UNSET) == 0) {
		change(p->e, "remove %s %s", master ? "master.cf" : "main.cf", key);
		if (p->e->dry_run)
			return 0;
		return postconf(p, out, sizeof(out), master ? "-PX" : "-X", key, NULL) == 0 ? 0 : -1;
	}
	change(p->e, "set %s %s = %s (as before enable)", master ? "master.cf" : "main.cf", key, value);
	if (p->e->dry_run)
		return 0;
	snprintf(arg, sizeof(arg), "%s=%s", key, value);
	return postconf(p, out, sizeof(out), master ? "-P" : "-e", arg, NULL) == 0 ? 0 : -1;
}

/* pf_import_environment - LD_PRELOAD (and TLSPOLICY_CONF) for the children */
static int pf_import_environment(struct pf *p)
{
	char cur[OUT_MAX], base[OUT_MAX], words[4096], want[OUT_MAX + 4096];

	if (postconf(p, cur, sizeof(cur), "-h", "import_environment", NULL) != 0) {
		fprintf(stderr, "tlspolicyctl: 'postconf -c %s -h import_environment' failed: is this a "
			"Postfix configuration directory?\n", p->e->config_dir);
		return -1;
	}
	without_ours(cur, base, sizeof(base));
	env_words(p->e, words, sizeof(words), " ");
	snprintf(want, sizeof(want), "%s%s%s", base, base[0] ? " " : "", words);
	return pf_set(p, 0, "import_environment", want);
}

/*
 * pf_plain - service (of type inet or pass) serves plaintext behind
 * tlspolicyd: no TLS of its own, no wrapper mode, and AUTH accepted on
 * what it sees as plaintext (tlspolicyd lets AUTH through only inside TLS)
 */
static int pf_plain(struct pf *p, const char *service, const char *type)
{
	static const char *const plain[][2] = {
		{ "smtpd_tls_security_level", "none" },
		{ "smtpd_tls_wrappermode", "no" },
		{ "smtpd_tls_auth_only", "no" },
	};
	char key[600];
	int rc = 0;

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]) && rc == 0; i++) {
		snprintf(key, sizeof(key), "%s/%s/%s", service, type, plain[i][0]);
		rc = pf_set(p, 1, key, plain[i][1]);
	}
	return rc;
}

/*
 * pf_handoff - postscreen(8) accepts, then passes each client it lets in
 * to the smtpd of type "pass" named by its smtpd_service_name (a -o
 * override, else main.cf's, default "smtpd"): that smtpd serves the port,
 * so it gets the plaintext settings too.  services: postconf -M's output.
 */
static int pf_handoff(struct pf *p, const char *services, const char *postscreen, int port)
{
	char name[256], key[600], line[1024];
	const char *l, *nl;

	snprintf(key, sizeof(key), "%s/inet/smtpd_service_name", postscreen);
	if ((postconf(p, name, sizeof(name), "-P", "-h", key, NULL) != 0 || name[0] == '\0') &&
	    (postconf(p, name, sizeof(name), "-h", "smtpd_service_name", NULL) != 0 || name[0] == '\0'))
		snprintf(name, sizeof(name), "smtpd");
	for (l = services; *l; l = nl ? nl + 1 : l + strlen(l)) {
		char service[256], type[32];

		nl = strchr(l, '\n');
		snprintf(line, sizeof(line), "%.*s", (int)(nl ? (size_t)(nl - l) : strlen(l)), l);
		if (sscanf(line, "%255s %31s", service, type) == 2 && strcmp(service, name) == 0 &&
		    strcmp(type, "pass") == 0) {
			printf("master.cf service %s (pass): postscreen on port %d hands its clients to it\n",
			       name, port);
			return pf_plain(p, name, "pass");
		}
	}
	printf("note: postscreen on port %d hands clients to \"%s\", which master.cf has no pass service of\n",
	       port, name);
	return 0;
}

/*
 * pf_services - master.cf's inet services on managed SMTP ports with
 * tls_by = module serve plaintext behind tlspolicyd; so does the smtpd a
 * postscreen on such a port hands its clients to
 */
static int pf_services(struct pf *p)
{
	char *out = malloc(OUT_MAX), *all = NULL, *save = NULL;
	int rc = 0, managed = 0;

	if (out == NULL || postconf(p, out, OUT_MAX, "-M", NULL) != 0 || (all = strdup(out)) == NULL) {
		free(out);
		fprintf(stderr, "tlspolicyctl: 'postconf -c %s -M' failed\n", p->e->config_dir);
		return -1;
	}
	for (char *l = strtok_r(out, "\n", &save); l != NULL && rc == 0; l = strtok_r(NULL, "\n", &save)) {
		char service[256], type[32], command[64];
		const char *host_end;
		const struct tp_rule *r;
		int port;

		if (sscanf(l, "%255s %31s %*s %*s %*s %*s %*s %63s", service, type, command) != 3 ||
		    strcmp(type, "inet") != 0)
			continue;
		port = service_port(service, &host_end);
		r = port > 0 ? rule_for(p->e, port, TP_PROTO_SMTP) : NULL;
		if (r == NULL)
			continue;
		managed++;
		printf("master.cf service %s (port %d): [%s] tls = %s, tls_by = %s%s\n", service, port,
		       r->section, tp_tls_mode_name(r->tls), r->tls_by == TP_BY_DAEMON ? "daemon" : "module",
		       r->tls_by == TP_BY_DAEMON ? ": Postfix's own TLS settings stay" : "");
		if (r->tls_by != TP_BY_MODULE || r->tls == TP_TLS_REFUSE)
			continue;
		rc = pf_plain(p, service, "inet");
		if (rc == 0 && strcmp(command, "postscreen") == 0)
			rc = pf_handoff(p, all, service, port);
	}
	free(out);
	free(all);
	if (managed == 0)
		printf("note: no inet service in %s/master.cf listens on a port the policy manages\n",
		       p->e->config_dir);
	return rc;
}

static int pf_save_state(struct pf *p)
{
	char *text;
	int rc;

	if (p->record_len == 0 || p->e->dry_run)
		return 0;
	size_t len = (p->saved ? strlen(p->saved) : 0) + p->record_len;

	text = malloc(len + 200);
	if (text == NULL)
		return -1;
	snprintf(text, len + 200, "%s%s%s",
		 p->saved && *p->saved ? p->saved :
		 "# tlspolicyctl enable postfix: the values it replaced, put back by disable\n",
		 "", p->record);
	rc = write_file(p->state, text, 0644);
	free(text);
	return rc < 0 ? fail("cannot write", p->state) : 0;
}

static int pf_disable(struct pf *p)
{
	char *save = NULL;
	int rc = 0;

	if (p->saved == NULL) {
		printf("unchanged: %s has no record of an enable (nothing to put back)\n", p->state);
		return 0;
	}
	for (char *l = strtok_r(p->saved, "\n", &save); l != NULL && rc == 0; l = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(l, '\t');

		if (l[0] == '#' || tab == NULL)
			continue;
		*tab = '\0';
		rc = pf_restore(p, l, tab + 1);
	}
	if (rc == 0) {
		change(p->e, "remove %s", p->state);
		if (!p->e->dry_run && unlink(p->state) < 0)
			return fail("cannot remove", p->state);
	}
	return rc;
}

static int do_postfix(struct en *e)
{
	struct pf p = { .e = e };
	int rc;

	snprintf(p.state, sizeof(p.state), "%s/tlspolicy-saved.cf", e->config_dir);
	p.saved = read_file(p.state);
	if (e->enable) {
		rc = pf_import_environment(&p);
		if (rc == 0)
			rc = pf_services(&p);
		if (pf_save_state(&p) < 0)
			rc = -1;
	} else {
		rc = pf_disable(&p);
	}
	free(p.saved);
	free(p.record);
	return rc;
}

/* --- Dovecot --------------------------------------------------------------- */

#define DV_UNMANAGED_MAX 16

/* what dv_listeners found in Dovecot's configuration */
struct dv_scan {
	char text[8192];	/* "ssl = no" for each listener on a tls_by = module port */
	size_t len;
	int module;		/* IMAP/POP3 listeners on tls_by = module ports */
	size_t unmanaged;	/* ... on ports the policy does not manage */
	struct {
		char service[128], listener[128];
		int port;
		enum tp_protocol proto;
	} um[DV_UNMANAGED_MAX];
};

/* dv_listener - one inet_listener of an IMAP or POP3 service, seen */
static void dv_listener(struct en *e, struct dv_scan *sc, const char *service,
			const char *listener, int port)
{
	enum tp_protocol proto = strncmp(service, "pop3", 4) == 0 ? TP_PROTO_POP3 : TP_PROTO_IMAP;
	const struct tp_rule *r = rule_for(e, port, proto);

	if (r == NULL) {
		if (sc->unmanaged < DV_UNMANAGED_MAX) {
			snprintf(sc->um[sc->unmanaged].service, sizeof(sc->um[0].service), "%s", service);
			snprintf(sc->um[sc->unmanaged].listener, sizeof(sc->um[0].listener), "%s", listener);
			sc->um[sc->unmanaged].port = port;
			sc->um[sc->unmanaged].proto = proto;
		}
		sc->unmanaged++;
		return;
	}
	printf("Dovecot %s listener %s (port %d): [%s] tls = %s, tls_by = %s%s\n", service, listener,
	       port, r->section, tp_tls_mode_name(r->tls), r->tls_by == TP_BY_DAEMON ? "daemon" : "module",
	       r->tls_by == TP_BY_DAEMON ? ": Dovecot's own TLS settings stay" : "");
	if (r->tls_by != TP_BY_MODULE)
		return;
	sc->module++;
	if (sc->len < sizeof(sc->text))	/* else dv_listeners reports the overflow */
		sc->len += (size_t)snprintf(sc->text + sc->len, sizeof(sc->text) - sc->len,
					    "service %s {\n  inet_listener %s {\n    ssl = no\n  }\n}\n",
					    service, listener);
}

/* dv_listeners - Dovecot's IMAP and POP3 listeners and the role of each port */
static int dv_listeners(struct en *e, const char *conf, struct dv_scan *sc)
{
	const char *args[] = { "doveconf", "-c", conf, "-n", NULL };
	char service[128] = "", listener[128] = "", *save = NULL, *out = malloc(OUT_MAX);

	if (out == NULL)
		return -1;
	if (run(args, out, OUT_MAX, 0) != 0) {
		fprintf(stderr, "tlspolicyctl: 'doveconf -c %s -n' failed: is this a Dovecot configuration?\n", conf);
		free(out);
		return -1;
	}
	/* walk "service NAME {", "inet_listener NAME {", "port = N" */
	for (char *l = strtok_r(out, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char name[128];
		int port;

		while (*l == ' ' || *l == '\t')
			l++;
		if (sscanf(l, "service %127s {", name) == 1)
			snprintf(service, sizeof(service), "%s", name);
		else if (sscanf(l, "inet_listener %127s {", name) == 1)
			snprintf(listener, sizeof(listener), "%s", name);
		else if (listener[0] && sscanf(l, "port = %d", &port) == 1 && port > 0) {
			/* lmtp, doveadm, ...: not a client port */
			if (strncmp(service, "imap", 4) == 0 || strncmp(service, "pop3", 4) == 0)
				dv_listener(e, sc, service, listener, port);
			listener[0] = '\0';
		}
	}
	free(out);
	if (sc->len >= sizeof(sc->text)) {
		fprintf(stderr, "tlspolicyctl: Dovecot has too many listeners for enable\n");
		return -1;
	}
	return 0;
}

/*
 * dv_unmanaged - listeners on ports the policy does not manage.  With a
 * tls_by = module port Dovecot must accept passwords it sees in plaintext,
 * and that setting is global: it would hold on those listeners too, so
 * enable refuses.  Without one Dovecot's own settings stay and apply there.
 */
static int dv_unmanaged(const struct dv_scan *sc)
{
	for (size_t i = 0; i < sc->unmanaged && i < DV_UNMANAGED_MAX; i++) {
		const char *proto = sc->um[i].proto == TP_PROTO_POP3 ? "pop3" : "imap";

		if (sc->module == 0) {
			printf("Dovecot %s listener %s (port %d): not managed by the policy: Dovecot's own "
			       "settings apply there\n", sc->um[i].service, sc->um[i].listener, sc->um[i].port);
			continue;
		}
		fprintf(stderr, "tlspolicyctl: Dovecot's %s listener \"%s\" on port %d is not managed by "
			"the policy: with tls_by = module Dovecot must accept passwords it sees in plaintext, "
			"which would then be allowed there too; add a [port %d] section (protocol = %s) or "
			"remove the listener, then run enable again\n", sc->um[i].service, sc->um[i].listener,
			sc->um[i].port, sc->um[i].port, proto);
	}
	if (sc->module > 0 && sc->unmanaged > DV_UNMANAGED_MAX)
		fprintf(stderr, "tlspolicyctl: and %zu more unmanaged listeners\n", sc->unmanaged - DV_UNMANAGED_MAX);
	return sc->module > 0 && sc->unmanaged > 0 ? -1 : 0;
}

/* dv_disable - remove our file, and the include line enable appended */
static int dv_disable(struct en *e, const char *conf, const char *path, char *main_text, int via_confd)
{
	static const char include[] = "\n!include_try tlspolicy-dovecot.conf\n";
	int rc = put_file(e, path, NULL);
	char *p;

	if (rc == 0 && !via_confd && (p = strstr(main_text, include)) != NULL) {
		memmove(p + 1, p + sizeof(include) - 1, strlen(p + sizeof(include) - 1) + 1);
		rc = put_file(e, conf, main_text);
	}
	return rc;
}

/*
 * dv_relax - with a tls_by = module listener Dovecot sees those clients in
 * plaintext: it must accept their passwords (tlspolicyd lets them through
 * only inside TLS), and ssl = required would refuse them: lower it to yes,
 * which still lets tls_by = daemon listeners do their TLS.  A second run
 * sees our own file's ssl = yes and keeps it.
 */
static void dv_relax(const char *conf, const char *path, char *text, size_t size)
{
	const char *ssl_args[] = { "doveconf", "-c", conf, "-h", "ssl", NULL };
	char ssl[64], *ours = read_file(path);

	strncat(text, "disable_plaintext_auth = no\n", size - strlen(text) - 1);
	if ((run(ssl_args, ssl, sizeof(ssl), 1) == 0 && strcmp(ssl, "required") == 0) ||
	    (ours != NULL && strstr(ours, "\nssl = yes\n") != NULL))
		strncat(text, "ssl = yes\n", size - strlen(text) - 1);
	free(ours);
}

static int do_dovecot(struct en *e)
{
	char conf[4096], path[4200], words[4096], *main_text, text[16384];
	struct dv_scan *sc;
	int via_confd, rc;

	snprintf(conf, sizeof(conf), "%s/dovecot.conf", e->config_dir);
	main_text = read_file(conf);
	if (main_text == NULL)
		return fail("cannot read", conf);
	/* Debian's dovecot.conf includes every conf.d file; a bare one gets our include */
	via_confd = strstr(main_text, "!include conf.d/*.conf") != NULL;
	snprintf(path, sizeof(path), via_confd ? "%s/conf.d/99-tlspolicy.conf" : "%s/tlspolicy-dovecot.conf",
		 e->config_dir);
	if (!e->enable) {
		rc = dv_disable(e, conf, path, main_text, via_confd);
		free(main_text);
		return rc;
	}
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL || dv_listeners(e, conf, sc) < 0 || dv_unmanaged(sc) < 0) {
		free(sc);
		free(main_text);
		return -1;
	}
	env_words(e, words, sizeof(words), " ");
	snprintf(text, sizeof(text),
		 "# Written by 'tlspolicyctl enable dovecot'; 'tlspolicyctl disable dovecot' removes it.\n"
		 "# The login and mail processes get tlspolicy.so%s\n"
		 "import_environment = $import_environment %s\n",
		 sc->module ? "; on ports where tlspolicyd does\n"
		 "# the TLS (tls_by = module) Dovecot serves plaintext behind it and accepts the\n"
		 "# passwords tlspolicyd lets through only inside TLS." :
		 ". No listener is on a tls_by = module port:\n"
		 "# Dovecot's own TLS settings stay, and tlspolicyd checks what they negotiate.", words);
	if (sc->module) {
		dv_relax(conf, path, text, sizeof(text));
		strncat(text, sc->text, sizeof(text) - strlen(text) - 1);
	}
	free(sc);
	rc = put_file(e, path, text);
	if (rc == 0 && !via_confd && strstr(main_text, "\n!include_try tlspolicy-dovecot.conf\n") == NULL) {
		size_t len = strlen(main_text);
		char *nt = malloc(len + 64);

		if (nt == NULL) {
			free(main_text);
			return -1;
		}
		snprintf(nt, len + 64, "%s%s!include_try tlspolicy-dovecot.conf\n", main_text,
			 len && main_text[len - 1] != '\n' ? "\n" : "");
		rc = put_file(e, conf, nt);
		free(nt);
	}
	free(main_text);
	return rc < 0 ? fail("cannot write", path) : 0;
}

/* --- Exim ------------------------------------------------------------------ */

static int do_exim4(struct en *e)
{
	char words[4096];

	env_words(e, words, sizeof(words), " : ");
	printf("Exim clears its environment: its main configuration must keep the shim's\n"
	       "variables, which tlspolicyctl does not edit for you (Debian builds it from\n"
	       "%s/conf.d or exim4.conf.template with update-exim4.conf). Add to the main section:\n"
	       "  keep_environment = LD_PRELOAD : TLSPOLICY_CONF\n"
	       "  add_environment = %s\n", e->config_dir, words);
	return 0;
}

/* --- the verb ------------------------------------------------------------------ */

static const struct {
	const char *name, *unit, *config_dir;
	int (*apply)(struct en *);
} daemons[] = {
	{ "postfix", "postfix@.service", "/etc/postfix", do_postfix },
	{ "dovecot", "dovecot.service", "/etc/dovecot", do_dovecot },
	{ "exim4", "exim4.service", "/etc/exim4", do_exim4 },
};

/*
 * check_shim - warn if the library to preload is not there.  It is what
 * LD_PRELOAD gets, so it may be a list (a sanitizer build's shim comes
 * after libasan): each of its ':'-separated entries is checked.
 */
static void check_shim(const char *shim)
{
	char *copy = strdup(shim), *save = NULL;

	if (copy == NULL)
		return;
	for (char *w = strtok_r(copy, ":", &save); w != NULL; w = strtok_r(NULL, ":", &save))
		if (access(w, R_OK) != 0)
			fprintf(stderr, "tlspolicyctl: warning: %s: %s; the daemon will start without the module "
				"(check with 'tlspolicyctl status')\n", w, strerror(errno));
	free(copy);
}

static int enable_disable(int argc, char **argv, int enable)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "config-dir", required_argument, NULL, 'd' },
		{ "systemd-dir", required_argument, NULL, 's' },
		{ "no-systemd", no_argument, NULL, 'n' },
		{ "shim", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'y' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = enable ? "enable" : "disable", *policy_path = NULL;
	struct en e = { .enable = enable, .shim = TP_SHIM_PATH, .systemd_dir = "/etc/systemd/system" };
	int c, no_systemd = 0, custom_systemd = 0, rc;
	size_t i;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': policy_path = optarg; break;
		case 'd': e.config_dir = optarg; break;
		case 's': e.systemd_dir = optarg; custom_systemd = 1; break;
		case 'n': no_systemd = 1; break;
		case 'm': e.shim = optarg; break;
		case 'y': e.dry_run = 1; break;
		default: return ctl_usage(verb);
		}
	}
	if (optind + 1 != argc)
		return ctl_usage(verb);
	for (i = 0; i < sizeof(daemons) / sizeof(daemons[0]); i++)
		if (strcmp(argv[optind], daemons[i].name) == 0)
			break;
	if (i == sizeof(daemons) / sizeof(daemons[0])) {
		fprintf(stderr, "tlspolicyctl: %s: unknown daemon \"%s\"; use postfix, dovecot or exim4\n",
			verb, argv[optind]);
		return EXIT_USAGE;
	}
	e.daemon = daemons[i].name;
	/* a private instance (--config-dir) gets no systemd drop-in unless asked */
	if (no_systemd || (e.config_dir != NULL && !custom_systemd))
		e.systemd_dir = NULL;
	if (e.config_dir == NULL)
		e.config_dir = daemons[i].config_dir;
	if (policy_path != NULL || getenv("TLSPOLICY_CONF") != NULL)
		e.conf = policy_path ? policy_path : getenv("TLSPOLICY_CONF");
	e.policy = ctl_load(e.conf, 0);
	if (e.policy == NULL)
		return 1;
	if (enable)
		check_shim(e.shim);
	rc = systemd_dropin(&e, daemons[i].unit) == 0 && daemons[i].apply(&e) == 0 ? 0 : 1;
	tp_policy_free(&e.policy);
	if (rc != 0) {
		fprintf(stderr, "tlspolicyctl: %s %s failed; what was printed above as done is done\n",
			verb, e.daemon);
		return 1;
	}
	if (e.changes == 0)
		printf("%s %s: nothing to change\n", verb, e.daemon);
	else if (!e.dry_run)
		printf("%s %s: done; restart %s to apply it%s\n", verb, e.daemon, e.daemon,
		       e.systemd_dir ? " (systemctl daemon-reload first)" : "");
	return 0;
}

int ctl_enable(int argc, char **argv)
{
	return enable_disable(argc, argv, 1);
}

int ctl_disable(int argc, char **argv)
{
	return enable_disable(argc, argv, 0);
}
