/*
 * status.c - tlspolicyctl status: is every managed port really protected?
 *
 * The guard against the shim silently not loading: for every port the
 * policy manages, the processes holding a listening socket there, and
 * whether tlspolicy.so is mapped in each.  A managed port served by a
 * process without the shim is UNPROTECTED: its connections never reach
 * tlspolicyd.  Also: whether tlspolicyd listens on the relay socket
 * (without it every managed connection is refused), and the published
 * generation in the run directory.  "Listens" means what the shims check
 * (procnet.h): the listener is root or the policy's user; anyone else who
 * holds the name is an impostor, reported as such, and tlspolicyd is not
 * running there.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"
#include "policy.h"
#include "procnet.h"

enum port_state { PS_PROTECTED, PS_UNPROTECTED, PS_UNKNOWN, PS_IDLE };
static const char *const state_name[] = { "protected", "UNPROTECTED", "unknown", "not-listening" };

/* one managed rule and what serves it */
struct port_status {
	const struct tp_rule *rule;
	enum port_state state;
	struct pn_holder *holders;
	size_t nholders;
	char addrs[256];	/* the listening addresses, space-separated */
};

enum listener { LS_NOBODY, LS_DAEMON, LS_IMPOSTOR };

struct status {
	const struct tp_policy *policy;
	const char *path;
	char generation[32];	/* "" when nothing was published */
	int differs;		/* the policy files say something else than the published one */
	const char *rundir;
	enum listener listener;	/* who is on the relay socket */
	struct pn_peer peer;	/* who, unless LS_NOBODY */
	struct pn_record record;	/* what tlspolicyd recorded it serves */
	int recorded;		/* 1: record is its, and it is alive */
	int stalled;		/* a listener is there but accepts nobody */
	int daemon_running;
	struct pn_holder *daemon;
	size_t ndaemon;
	struct port_status *ports;
	size_t nports;
	size_t unreadable;	/* processes whose descriptors we could not read */
};

/*
 * identify - who listens on the policy's relay socket: tlspolicyd (root,
 * the policy's user, or the user the running tlspolicyd recorded for that
 * name), an impostor, or nobody
 */
static void identify(struct status *s)
{
	const char *name = tp_policy_relay_socket(s->policy);
	char why[512];
	int fd;

	s->recorded = pn_record_read(s->rundir, &s->record, why, sizeof(why)) == 1;
	fd = pn_relay_connect(name, &s->peer);
	if (fd < 0) {
		s->stalled = errno == ETIMEDOUT;
		s->listener = LS_NOBODY;
		return;
	}
	close(fd);
	s->listener = pn_user_trusted(tp_policy_user(s->policy), s->peer.uid) ||
		      (s->recorded && strcmp(s->record.relay_socket, name) == 0 &&
		       pn_user_trusted(s->record.user, s->peer.uid)) ? LS_DAEMON : LS_IMPOSTOR;
}

static void read_generation(struct status *s)
{
	unsigned gen;
	char sha[65], now[65], *text;
	size_t len;

	s->generation[0] = '\0';
	if (tp_published_generation(s->rundir, &gen, sha) < 0)
		return;
	snprintf(s->generation, sizeof(s->generation), "%u", gen);
	if (ctl_policy_text(s->policy, &text, &len, now) == 0) {
		s->differs = strcmp(sha, now) != 0;
		free(text);
	}
}

/* serves - does listener l take connections for rule r? */
static int serves(const struct pn_listener *l, const struct tp_rule *r)
{
	if (l->port != r->port)
		return 0;
	return r->address == NULL || l->wildcard || strcmp(l->addr, r->address) == 0 ||
	       (strncmp(l->addr, "::ffff:", 7) == 0 && strcmp(l->addr + 7, r->address) == 0);
}

/* add_holders - the processes of one listening socket, into ps */
static int add_holders(struct status *s, struct port_status *ps, const struct pn_listener *l)
{
	struct pn_holder *h;
	size_t denied, len = strlen(ps->addrs);
	ssize_t n = pn_holders(l->inode, &h, &denied);

	if (n < 0)
		return -1;
	s->unreadable = denied > s->unreadable ? denied : s->unreadable;
	snprintf(ps->addrs + len, sizeof(ps->addrs) - len, "%s%s%s%s", len ? " " : "",
		 strchr(l->addr, ':') ? "[" : "", l->addr, strchr(l->addr, ':') ? "]" : "");
	for (ssize_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < ps->nholders && ps->holders[j].pid != h[i].pid; j++)
			;
		if (j < ps->nholders)
			continue;	/* one process, several sockets */
		struct pn_holder *nv = realloc(ps->holders, (ps->nholders + 1) * sizeof(*nv));

		if (nv == NULL) {
			free(h);
			return -1;
		}
		ps->holders = nv;
		ps->holders[ps->nholders++] = h[i];
	}
	free(h);
	return 0;
}

static enum port_state judge(const struct port_status *ps, int listening)
{
	enum port_state st = PS_PROTECTED;

	if (!listening)
		return PS_IDLE;
	if (ps->nholders == 0)
		return PS_UNKNOWN;	/* the listener's process is not ours to see */
	for (size_t i = 0; i < ps->nholders; i++) {
		if (ps->holders[i].shim == 0)
			return PS_UNPROTECTED;
		if (ps->holders[i].shim < 0)
			st = PS_UNKNOWN;
	}
	return st;
}

static int collect(struct status *s)
{
	struct pn_listener *l;
	ssize_t nl = pn_tcp_listeners(&l);
	unsigned long relay;
	size_t denied;

	if (nl < 0)
		return -1;
	s->nports = tp_policy_rule_count(s->policy);
	s->ports = calloc(s->nports ? s->nports : 1, sizeof(*s->ports));
	if (s->ports == NULL) {
		free(l);
		return -1;
	}
	for (size_t i = 0; i < s->nports; i++) {
		struct port_status *ps = &s->ports[i];
		int listening = 0;

		ps->rule = tp_policy_rule(s->policy, i);
		for (ssize_t j = 0; j < nl; j++) {
			if (!serves(&l[j], ps->rule))
				continue;
			listening = 1;
			if (add_holders(s, ps, &l[j]) < 0) {
				free(l);
				return -1;
			}
		}
		ps->state = judge(ps, listening);
	}
	free(l);
	identify(s);
	s->daemon_running = s->listener == LS_DAEMON;
	relay = s->daemon_running ? pn_unix_listener(tp_policy_relay_socket(s->policy)) : 0;
	if (relay != 0) {
		ssize_t n = pn_holders(relay, &s->daemon, &denied);

		s->ndaemon = n > 0 ? (size_t)n : 0;
	}
	read_generation(s);
	return 0;
}

static size_t count_state(const struct status *s, enum port_state st)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nports; i++)
		n += s->ports[i].state == st;
	return n;
}

static const char *rule_name(const struct tp_rule *r, char *buf, size_t size)
{
	if (r->address == NULL)
		snprintf(buf, size, "%d", r->port);
	else
		snprintf(buf, size, strchr(r->address, ':') ? "[%s]:%d" : "%s:%d", r->address, r->port);
	return buf;
}

static void print_holders(const struct port_status *ps)
{
	for (size_t i = 0; i < ps->nholders; i++)
		printf("%s%s[%d]%s", i ? " " : "", ps->holders[i].comm, (int)ps->holders[i].pid,
		       ps->holders[i].shim == 0 ? " (no shim)" :
		       ps->holders[i].shim < 0 ? " (unreadable)" : "");
}

/* print_daemon - the tlspolicyd line, and what it serves if the policy files changed that */
static void print_daemon(const struct status *s)
{
	const char *name = tp_policy_relay_socket(s->policy);

	if (s->listener == LS_IMPOSTOR)
		printf("tlspolicyd: NOT RUNNING: impostor pid %d uid %u (%s) holds %s: tlspolicyd is not "
		       "running there\n", (int)s->peer.pid, (unsigned)s->peer.uid, s->peer.comm, name);
	else {
		printf("tlspolicyd: %s", s->daemon_running ? "running" : "NOT RUNNING");
		for (size_t i = 0; i < s->ndaemon; i++)
			printf("%s%d", i ? "," : " (pid ", (int)s->daemon[i].pid);
		printf("%s on %s%s\n", s->ndaemon ? ")" : "", name,
		       s->stalled ? " (something listens there but accepts no connection)" : "");
	}
	if (s->recorded && (strcmp(s->record.relay_socket, name) != 0 ||
			    strcmp(s->record.user, tp_policy_user(s->policy)) != 0))
		printf("            pid %d recorded it serves %s as user %s; the policy files say %s as user %s:\n"
		       "            that takes effect on restart\n", (int)s->record.pid, s->record.relay_socket,
		       s->record.user, name, tp_policy_user(s->policy));
}

static void print_text(const struct status *s)
{
	char name[80];
	size_t unprot = count_state(s, PS_UNPROTECTED), unknown = count_state(s, PS_UNKNOWN);

	printf("policy:     %s, %zu ports managed\n", s->path, s->nports);
	if (s->generation[0])
		printf("published:  generation %s (%s)%s\n", s->generation, s->rundir,
		       s->differs ? "; the policy files differ from it: run tlspolicyctl reload" : "");
	else
		printf("published:  nothing in %s; the module reads the policy files\n", s->rundir);
	print_daemon(s);
	printf("\n%-22s %-5s %-13s %-7s %-14s %s\n", "PORT", "PROTO", "TLS", "TLS_BY", "STATE",
	       "LISTENERS");
	for (size_t i = 0; i < s->nports; i++) {
		const struct port_status *ps = &s->ports[i];
		const struct tp_rule *r = ps->rule;

		printf("%-22s %-5s %-13s %-7s %-14s ", rule_name(r, name, sizeof(name)),
		       tp_protocol_name(r->protocol), tp_tls_mode_name(r->tls),
		       r->tls_by == TP_BY_DAEMON ? "daemon" : "module", state_name[ps->state]);
		print_holders(ps);
		if (r->enforce == TP_ENFORCE_AUDIT)
			printf("%sAUDIT: refusals only logged", ps->nholders ? "  " : "");
		printf("\n");
	}
	printf("\n");
	if (s->listener == LS_IMPOSTOR)
		printf("pid %d is neither root nor user %s, so it is not tlspolicyd: the shims hand it\n"
		       "nothing, and every connection to a managed port is refused. Find out who started\n"
		       "it, stop it, and start tlspolicyd.\n", (int)s->peer.pid, tp_policy_user(s->policy));
	else if (!s->daemon_running)
		printf("tlspolicyd does not answer on %s: every connection to a managed port is refused.\n"
		       "Start it (systemctl start tlspolicyd, or tlspolicyd -f to see why it stops).\n",
		       tp_policy_relay_socket(s->policy));
	if (unprot > 0)
		printf("%zu managed port%s UNPROTECTED: a process listens there without tlspolicy.so, so its\n"
		       "connections bypass the policy. Run 'tlspolicyctl enable DAEMON' and restart that daemon.\n",
		       unprot, unprot == 1 ? " is" : "s are");
	if (unknown > 0)
		printf("%zu managed port%s could not be checked: run status as root to read every process.\n",
		       unknown, unknown == 1 ? "" : "s");
	if (s->daemon_running && unprot == 0 && unknown == 0)
		printf("Every managed port that has a listener is protected.\n");
}

static void print_json(const struct status *s)
{
	char name[80];

	printf("{");
	json_kv(stdout, 0, "policy", s->path);
	printf(",\"generation\":%s,\"files_differ\":%s", s->generation[0] ? s->generation : "null",
	       s->generation[0] && s->differs ? "true" : "false");
	json_kv(stdout, 1, "rundir", s->rundir);
	printf(",\"tlspolicyd\":{\"running\":%s", s->daemon_running ? "true" : "false");
	json_kv(stdout, 1, "socket", tp_policy_relay_socket(s->policy));
	printf(",\"pids\":[");
	for (size_t i = 0; i < s->ndaemon; i++)
		printf("%s%d", i ? "," : "", (int)s->daemon[i].pid);
	printf("],\"impostor\":");
	if (s->listener == LS_IMPOSTOR) {
		printf("{\"pid\":%d,\"uid\":%u", (int)s->peer.pid, (unsigned)s->peer.uid);
		json_kv(stdout, 1, "command", s->peer.comm);
		printf("}");
	} else {
		printf("null");
	}
	printf("},\"ports\":[");
	for (size_t i = 0; i < s->nports; i++) {
		const struct port_status *ps = &s->ports[i];
		const struct tp_rule *r = ps->rule;

		printf("%s{", i ? "," : "");
		json_kv(stdout, 0, "section", r->section);
		printf(",\"port\":%d", r->port);
		json_kv(stdout, 1, "address", r->address);
		json_kv(stdout, 1, "name", rule_name(r, name, sizeof(name)));
		json_kv(stdout, 1, "protocol", tp_protocol_name(r->protocol));
		json_kv(stdout, 1, "tls", tp_tls_mode_name(r->tls));
		json_kv(stdout, 1, "tls_by", r->tls_by == TP_BY_DAEMON ? "daemon" : "module");
		printf(",\"audit\":%s", r->enforce == TP_ENFORCE_AUDIT ? "true" : "false");
		json_kv(stdout, 1, "state", state_name[ps->state]);
		printf(",\"listeners\":[");
		for (size_t j = 0; j < ps->nholders; j++) {
			printf("%s{\"pid\":%d", j ? "," : "", (int)ps->holders[j].pid);
			json_kv(stdout, 1, "command", ps->holders[j].comm);
			printf(",\"shim\":%s}", ps->holders[j].shim > 0 ? "true" :
			       ps->holders[j].shim == 0 ? "false" : "null");
		}
		printf("]}");
	}
	printf("],\"protected\":%s}\n",
	       s->daemon_running && count_state(s, PS_UNPROTECTED) == 0 &&
	       count_state(s, PS_UNKNOWN) == 0 ? "true" : "false");
}

static void status_free(struct status *s)
{
	for (size_t i = 0; i < s->nports; i++)
		free(s->ports[i].holders);
	free(s->ports);
	free(s->daemon);
}

int ctl_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct status s = { 0 };
	struct tp_policy *p;
	const char *path = NULL;
	int json = 0, c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		if (c == 'c')
			path = optarg;
		else if (c == 'j')
			json = 1;
		else
			return ctl_usage("status");
	}
	if (optind != argc)
		return ctl_usage("status");
	s.path = path ? path : tp_policy_default_path();
	s.rundir = tp_policy_rundir();
	p = ctl_load(s.path, 0);
	if (p == NULL)
		return 1;
	s.policy = p;
	if (collect(&s) < 0) {
		fprintf(stderr, "tlspolicyctl: status: cannot read /proc/net and /proc: is /proc mounted?\n");
		rc = 1;
	} else {
		if (json)
			print_json(&s);
		else
			print_text(&s);
		rc = s.daemon_running && count_state(&s, PS_UNPROTECTED) == 0 &&
		     count_state(&s, PS_UNKNOWN) == 0 ? 0 : 1;
	}
	status_free(&s);
	tp_policy_free(&p);
	return rc;
}
