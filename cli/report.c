/*
 * report.c - tlspolicyctl report: what tlspolicy decided, per port, from its log
 *
 * Reads tlspolicyd's and the shim's log lines (the journal, mail.log, or
 * the stderr of "tlspolicyd -f") and counts per port: connections, TLS
 * sessions by version and suite, refusals and would-refusals (audit mode)
 * by reason, injection discards, handshake timeouts and the clients
 * refused most.  The numbers an admin needs before tightening the policy.
 *
 * The log is input from outside: every line is bounded (MAX_LINE), every
 * table has a fixed number of entries (past it, new keys are not counted
 * and the report says so), and a line that cannot be read is skipped and
 * counted, never fatal.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "json.h"

#define MAX_LINE 8192		/* longer lines are skipped as garbage */
#define MAX_KEY 128		/* a counted key (reason, suite, address) */
#define MAX_PAIRS 32		/* key=value pairs read per line */
#define MAX_PORTS 256
#define MAX_NAMES 64		/* versions, suites, reasons per port */
#define MAX_CLIENTS 4096	/* refused client addresses per port */
#define TOP_CLIENTS 5
#define MAX_SOURCES 32
#define IDENT "tlspolicy"

/* --- a bounded tally: string -> count, open addressing ------------------ */

struct tally_entry {
	char *key;
	unsigned long n;
};

struct tally {
	struct tally_entry *slot;	/* 2 * max slots, allocated on first use */
	size_t len, max;
	unsigned long dropped;		/* counts of keys that found the table full */
};

static unsigned long hash_str(const char *s)
{
	unsigned long h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

/* tally_add - count one key; -1 on allocation failure */
static int tally_add(struct tally *t, const char *key)
{
	size_t cap = 2 * t->max, i;

	if (t->slot == NULL && (t->slot = calloc(cap, sizeof(*t->slot))) == NULL)
		return -1;
	for (i = hash_str(key) % cap; t->slot[i].key != NULL; i = (i + 1) % cap) {
		if (strcmp(t->slot[i].key, key) == 0) {
			t->slot[i].n++;
			return 0;
		}
	}
	if (t->len == t->max) {
		t->dropped++;
		return 0;
	}
	if ((t->slot[i].key = strdup(key)) == NULL)
		return -1;
	t->slot[i].n = 1;
	t->len++;
	return 0;
}

static void tally_free(struct tally *t)
{
	for (size_t i = 0; t->slot != NULL && i < 2 * t->max; i++)
		free(t->slot[i].key);
	free(t->slot);
	t->slot = NULL;
	t->len = 0;
}

/* by_count - most first, then by key, so the output does not depend on hashing */
static int by_count(const void *a, const void *b)
{
	const struct tally_entry *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->key, y->key);
}

/*
 * tally_sorted - the entries, most counted first; *n their number.  The
 * array is the caller's to free (the keys stay the tally's); NULL when
 * empty or out of memory.
 */
static struct tally_entry *tally_sorted(const struct tally *t, size_t *n)
{
	struct tally_entry *v;
	size_t k = 0;

	*n = 0;
	if (t->len == 0 || (v = malloc(t->len * sizeof(*v))) == NULL)
		return NULL;
	for (size_t i = 0; i < 2 * t->max; i++)
		if (t->slot[i].key != NULL)
			v[k++] = t->slot[i];
	qsort(v, k, sizeof(*v), by_count);
	*n = k;
	return v;
}

/* --- the counts ------------------------------------------------------------ */

struct port_stats {
	int port;
	unsigned long connections, tls, refused, would_refuse, discarded, timeouts, closed;
	struct tally versions, suites, refused_by, would_by, closed_by, clients;
};

struct report {
	const char *sources[MAX_SOURCES];
	size_t nsources;
	time_t since;			/* 0: everything */
	unsigned long lines;		/* tlspolicy lines counted */
	unsigned long garbage;		/* unreadable lines */
	unsigned long undated;		/* tlspolicy lines without a time, left out by --since */
	unsigned long older;		/* tlspolicy lines before --since */
	unsigned long other;		/* other programs' lines */
	unsigned long ports_dropped;	/* decisions on ports past MAX_PORTS */
	int nomem;
	struct port_stats *ports[MAX_PORTS];
	size_t nports;
};

static void report_clear(struct report *r)
{
	for (size_t i = 0; i < r->nports; i++) {
		struct port_stats *p = r->ports[i];

		tally_free(&p->versions);
		tally_free(&p->suites);
		tally_free(&p->refused_by);
		tally_free(&p->would_by);
		tally_free(&p->closed_by);
		tally_free(&p->clients);
		free(p);
	}
	r->nports = 0;
	r->lines = r->garbage = r->undated = r->older = r->other = r->ports_dropped = 0;
}

static struct port_stats *port_get(struct report *r, int port)
{
	struct port_stats *p;

	for (size_t i = 0; i < r->nports; i++)
		if (r->ports[i]->port == port)
			return r->ports[i];
	if (r->nports == MAX_PORTS) {
		r->ports_dropped++;
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		r->nomem = 1;
		return NULL;
	}
	p->port = port;
	p->versions.max = p->suites.max = p->refused_by.max = p->would_by.max =
		p->closed_by.max = MAX_NAMES;
	p->clients.max = MAX_CLIENTS;
	r->ports[r->nports++] = p;
	return p;
}

/* --- reading one line ------------------------------------------------------- */

struct pair {
	const char *key, *value;
};

/*
 * parse_pairs - split "k=v k2="v 2"" in place; *n pairs.  Words without
 * "=" (free text) are passed over; -1 on an unterminated quote or a key
 * that is not [a-z0-9_]+.
 */
static int parse_pairs(char *s, struct pair *pv, size_t *n)
{
	*n = 0;
	while (*s) {
		char *key = s, *eq;

		if (*s == ' ') {
			s++;
			continue;
		}
		eq = s;
		while (*eq && *eq != ' ' && *eq != '=')
			eq++;
		if (*eq != '=') {	/* a bare word */
			s = eq;
			continue;
		}
		for (char *k = key; k < eq; k++)
			if (!islower((unsigned char)*k) && !isdigit((unsigned char)*k) && *k != '_')
				return -1;
		if (eq == key)
			return -1;
		*eq = '\0';
		s = eq + 1;
		if (*s == '"') {
			char *end = strchr(s + 1, '"');

			if (end == NULL)
				return -1;
			*end = '\0';
			if (*n < MAX_PAIRS)
				pv[(*n)++] = (struct pair){ key, s + 1 };
			s = end + 1;
			if (*s && *s != ' ')
				return -1;
			continue;
		}
		if (*n < MAX_PAIRS)
			pv[(*n)++] = (struct pair){ key, s };
		while (*s && *s != ' ')
			s++;
		if (*s)
			*s++ = '\0';
	}
	return 0;
}

static const char *pair_get(const struct pair *pv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(pv[i].key, key) == 0)
			return pv[i].value;
	return NULL;
}

/* num - s is all digits, within [1, max]; its value, else -1 */
static long num(const char *s, long max)
{
	long v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 9)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v >= 1 && v <= max ? v : -1;
}

/* digits - n digits at s as a number, or -1 */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * parse_iso - "YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|+hh:mm|+hhmm]" at s;
 * the time, and in *end where it stopped.  Without a zone it is local
 * time.  -1 if s does not start so.
 */
static time_t parse_iso(const char *s, const char **end)
{
	struct tm tm = { .tm_isdst = -1 };
	int zone = 0, has_zone = 0, sign;

	/* each field is looked at only once the ones before it matched, so
	 * nothing is read past the end of a short line */
	tm.tm_year = digits(s, 4) - 1900;
	if (tm.tm_year < 70 || s[4] != '-')
		return -1;
	tm.tm_mon = digits(s + 5, 2) - 1;
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || s[7] != '-')
		return -1;
	tm.tm_mday = digits(s + 8, 2);
	if (tm.tm_mday < 1 || tm.tm_mday > 31)
		return -1;
	s += 10;
	if ((*s == 'T' || *s == ' ') && isdigit((unsigned char)s[1])) {
		tm.tm_hour = digits(s + 1, 2);
		if (tm.tm_hour < 0 || tm.tm_hour > 23 || s[3] != ':')
			return -1;
		tm.tm_min = digits(s + 4, 2);
		if (tm.tm_min < 0 || tm.tm_min > 59)
			return -1;
		s += 6;
		if (*s == ':') {
			tm.tm_sec = digits(s + 1, 2);
			if (tm.tm_sec < 0 || tm.tm_sec > 60)
				return -1;
			s += 3;
			if (*s == '.' || *s == ',')
				for (s++; isdigit((unsigned char)*s); s++)
					;
		}
		if (*s == 'Z') {
			has_zone = 1;
			s++;
		} else if ((*s == '+' || *s == '-') && digits(s + 1, 2) >= 0) {
			sign = *s == '-' ? -1 : 1;
			zone = digits(s + 1, 2) * 3600;
			s += 3;
			if (*s == ':')
				s++;
			if (digits(s, 2) >= 0) {
				zone += digits(s, 2) * 60;
				s += 2;
			}
			zone *= sign;
			has_zone = 1;
		}
	}
	*end = s;
	if (!has_zone)
		return mktime(&tm);
	tm.tm_isdst = 0;
	return timegm(&tm) - zone;
}

/*
 * parse_bsd - "Mmm dd hh:mm:ss " (RFC 3164, no year: the year that puts
 * it not more than a day in the future), local time; -1 if not so
 */
static time_t parse_bsd(const char *s, const char **end, time_t now)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm = { .tm_isdst = -1 }, nowtm;
	const char *m = NULL;
	time_t t;

	for (int i = 0; i < 12 && m == NULL; i++)
		if (strncmp(s, months + 3 * i, 3) == 0)
			m = s, tm.tm_mon = i;
	if (m == NULL || strnlen(s, 16) < 16 || s[3] != ' ')
		return -1;
	tm.tm_mday = s[4] == ' ' ? digits(s + 5, 1) : digits(s + 4, 2);
	tm.tm_hour = digits(s + 7, 2);
	tm.tm_min = digits(s + 10, 2);
	tm.tm_sec = digits(s + 13, 2);
	if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 ||
	    tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60 ||
	    s[6] != ' ' || s[9] != ':' || s[12] != ':')
		return -1;
	localtime_r(&now, &nowtm);
	tm.tm_year = nowtm.tm_year;
	t = mktime(&tm);
	if (t > now + 86400) {
		tm.tm_year--;
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	*end = s + 15;
	return t;
}

/*
 * tlspolicy_message - the message of a tlspolicy line, or NULL if the line
 * is another program's (*other = 1) or unreadable (*other = 0).  *when is
 * its time, or -1 for the stderr form, which has none.
 */
static char *tlspolicy_message(char *line, time_t now, time_t *when, int *other)
{
	char *s, *tag;
	const char *end;
	size_t n = strlen(IDENT);

	*other = 0;
	*when = -1;
	if (strncmp(line, IDENT ": ", n + 2) == 0)	/* tlspolicyd -f on stderr */
		return line + n + 2;
	if (strncmp(line, "-- ", 3) == 0) {		/* journalctl's "-- No entries --" */
		*other = 1;
		return NULL;
	}
	if ((*when = parse_iso(line, &end)) == -1 && (*when = parse_bsd(line, &end, now)) == -1)
		return NULL;
	s = line + (end - line);
	if (*s != ' ')
		return NULL;
	s++;
	tag = strchr(s, ' ');			/* past the host name */
	if (tag == NULL || tag == s)
		return NULL;
	tag++;
	*other = 1;
	if (strncmp(tag, IDENT, n) != 0)
		return NULL;
	s = tag + n;
	if (*s == '[') {
		s++;
		while (isdigit((unsigned char)*s))
			s++;
		if (*s != ']')
			return NULL;
		s++;
	}
	if (strncmp(s, ": ", 2) != 0)
		return NULL;
	*other = 0;
	return s + 2;
}

/* client_address - "192.0.2.7:42594" -> "192.0.2.7", "[::1]:993" -> "::1" */
static void client_address(const char *client, char *out, size_t size)
{
	const char *colon;
	size_t len;

	if (client[0] == '[' && (colon = strchr(client, ']')) != NULL) {
		client++;
		len = (size_t)(colon - client);
	} else if ((colon = strrchr(client, ':')) != NULL && strchr(client, ':') == colon) {
		len = (size_t)(colon - client);
	} else {
		len = strlen(client);
	}
	if (len >= size)
		len = size - 1;
	memcpy(out, client, len);
	out[len] = '\0';
}

static void add(struct report *r, struct tally *t, const char *key)
{
	char k[MAX_KEY];

	snprintf(k, sizeof(k), "%s", key != NULL && *key ? key : "unknown");
	if (tally_add(t, k) < 0)
		r->nomem = 1;
}

/* count - one decision of tlspolicy on a port */
static void count(struct report *r, struct port_stats *p, const struct pair *pv, size_t n)
{
	const char *action = pair_get(pv, n, "action"), *reason = pair_get(pv, n, "reason");
	const char *client = pair_get(pv, n, "client");
	char addr[MAX_KEY];

	if (strcmp(action, "relay") == 0) {
		p->connections++;
	} else if (strcmp(action, "tls") == 0) {
		p->tls++;
		add(r, &p->versions, pair_get(pv, n, "version"));
		add(r, &p->suites, pair_get(pv, n, "suite"));
	} else if (strcmp(action, "refuse") == 0) {
		p->refused++;
		add(r, &p->refused_by, reason);
		if (client != NULL) {
			client_address(client, addr, sizeof(addr));
			add(r, &p->clients, addr);
		}
	} else if (strcmp(action, "would-refuse") == 0) {
		p->would_refuse++;
		add(r, &p->would_by, reason);
	} else if (strcmp(action, "discard") == 0 && reason != NULL &&
		   strcmp(reason, "injection") == 0) {
		p->discarded++;
	} else if (strcmp(action, "close") == 0 && reason != NULL &&
		   strcmp(reason, "handshake-timeout") == 0) {
		p->timeouts++;
	} else if (strcmp(action, "close") == 0) {
		/* the shim's (tlspolicyd unreachable), buffer-full, idle-timeout... */
		p->closed++;
		add(r, &p->closed_by, reason);
	}
}

/*
 * diagnostic - is msg a policy diagnostic tlspolicyd logged at start or
 * reload ("FILE:LINE: warning: [section] key: ...", tp_diag_format)?
 * Free text, not key=value, but tlspolicy's own and not garbage.
 */
static int diagnostic(const char *msg)
{
	const char *sp = strchr(msg, ' ');

	if (strncmp(msg, "error: ", 7) == 0 || strncmp(msg, "warning: ", 9) == 0)
		return 1;
	return sp != NULL && sp > msg && sp[-1] == ':' &&
	       (strncmp(sp + 1, "error: ", 7) == 0 || strncmp(sp + 1, "warning: ", 9) == 0);
}

/* report_line - one line of a log, without its newline */
static void report_line(struct report *r, char *line, time_t now)
{
	struct pair pv[MAX_PAIRS];
	size_t n;
	time_t when;
	int other;
	char *msg = tlspolicy_message(line, now, &when, &other);
	const char *port, *action;
	struct port_stats *p;
	long portnum;

	if (msg == NULL) {
		if (other)
			r->other++;
		else
			r->garbage++;
		return;
	}
	if (r->since != 0 && when == -1) {
		r->undated++;
		return;
	}
	if (r->since != 0 && when < r->since) {
		r->older++;
		return;
	}
	if (diagnostic(msg)) {
		r->lines++;
		return;
	}
	if (parse_pairs(msg, pv, &n) < 0 || (action = pair_get(pv, n, "action")) == NULL) {
		r->garbage++;
		return;
	}
	port = pair_get(pv, n, "port");
	portnum = num(port, 65535);
	if (port != NULL && portnum < 0) {
		r->garbage++;
		return;
	}
	r->lines++;
	if (port == NULL)		/* start, stop, reload: not about a port */
		return;
	if ((p = port_get(r, (int)portnum)) != NULL)
		count(r, p, pv, n);
}

/*
 * report_read - every line of f.  Read by hand rather than with fgets or
 * getline: a line longer than MAX_LINE is skipped without growing a
 * buffer, and one holding a NUL byte is seen as garbage, not cut short.
 */
static void report_read(struct report *r, FILE *f)
{
	char line[MAX_LINE];
	time_t now = time(NULL);
	size_t len = 0;
	int ch, bad = 0;

	while ((ch = getc_unlocked(f)) != EOF || len > 0 || bad) {
		if (ch != '\n' && ch != EOF) {
			if (ch == '\0' || len == sizeof(line) - 1)
				bad = 1;
			else
				line[len++] = (char)ch;
			continue;
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		if (bad)
			r->garbage++;
		else if (len > 0)
			report_line(r, line, now);
		len = 0;
		bad = 0;
		if (ch == EOF)
			break;
	}
}

/* --- the sources ----------------------------------------------------------- */

/* in_path - is there an executable "name" in $PATH? */
static int in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (path == NULL)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".", name);
		if (access(buf, X_OK) == 0)
			return 1;
		path += len;
		if (*path == ':')
			path++;
	}
	return 0;
}

/* read_journal - the journal's tlspolicy lines; 0 if journalctl ran and exited 0 */
static int read_journal(struct report *r)
{
	int fds[2], status;
	pid_t pid;
	FILE *f;

	if (!in_path("journalctl") || pipe(fds) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		char prog[] = "journalctl", t[] = "-t", ident[] = IDENT, o[] = "-o",
		     fmt[] = "short-iso", nopager[] = "--no-pager";
		char *args[] = { prog, t, ident, o, fmt, nopager, NULL };
		int null = open("/dev/null", O_RDWR);

		dup2(fds[1], 1);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 2);
		}
		close(fds[0]);
		close(fds[1]);
		execvp(prog, args);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	if (f == NULL) {
		close(fds[0]);
	} else {
		report_read(r, f);
		fclose(f);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return f != NULL && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* read_file - one --log FILE ("-": stdin); -1 if it cannot be read */
static int read_file(struct report *r, const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");

	if (f == NULL) {
		fprintf(stderr, "tlspolicyctl report: %s: %s\n", path, strerror(errno));
		return -1;
	}
	report_read(r, f);
	if (ferror(f)) {
		fprintf(stderr, "tlspolicyctl report: %s: read error\n", path);
		if (f != stdin)
			fclose(f);
		return -1;
	}
	if (f != stdin)
		fclose(f);
	return 0;
}

/* read_default - the journal if journalctl works, else CTL_MAIL_LOG */
static int read_default(struct report *r)
{
	if (read_journal(r) == 0) {
		r->sources[r->nsources++] = "journalctl -t " IDENT;
		return 0;
	}
	report_clear(r);	/* whatever a failing journalctl printed */
	if (read_file(r, CTL_MAIL_LOG) < 0) {
		fprintf(stderr, "tlspolicyctl report: no log to read: journalctl is missing or "
			"failed, and " CTL_MAIL_LOG " cannot be read; give one with --log FILE\n");
		return -1;
	}
	r->sources[r->nsources++] = CTL_MAIL_LOG;
	return 0;
}

/* --- --since ----------------------------------------------------------------- */

/* parse_since - an ISO date/time or "N[smhdw]" ago; -1 if neither */
static time_t parse_since(const char *s, time_t now)
{
	static const struct { char unit; long seconds; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	const char *end;
	size_t len = strlen(s);
	time_t t;

	if (len >= 2 && len <= 8 && isdigit((unsigned char)s[0])) {
		char number[8];
		long v;

		memcpy(number, s, len - 1);
		number[len - 1] = '\0';
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[len - 1] == units[i].unit && (v = num(number, 9999999)) > 0)
				return now - v * units[i].seconds;
	}
	t = parse_iso(s, &end);
	return t == -1 || *end != '\0' ? -1 : t;
}

/* --- output -------------------------------------------------------------------- */

#define ROW "  %-40s %8lu\n"
#define SUBROW "    %-38s %8lu\n"

/* print_tally - the rows of t under a heading row; prefix before each key */
static void print_tally(const char *title, const char *prefix, const struct tally *t,
			unsigned long total)
{
	char label[MAX_KEY + 16];
	size_t n;
	struct tally_entry *v = tally_sorted(t, &n);

	if (title != NULL)
		printf(ROW, title, total);
	for (size_t i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "%s%s", prefix, v[i].key);
		printf(SUBROW, label, v[i].n);
	}
	if (t->dropped) {
		snprintf(label, sizeof(label), "%s(others: table full)", prefix);
		printf(SUBROW, label, t->dropped);
	}
	free(v);
}

static void print_text_port(const struct port_stats *p)
{
	size_t n;
	struct tally_entry *v;

	printf("\nport %d\n", p->port);
	printf(ROW, "connections", p->connections);
	print_tally("TLS sessions", "version ", &p->versions, p->tls);
	print_tally(NULL, "suite ", &p->suites, p->tls);
	print_tally("refused", "", &p->refused_by, p->refused);
	print_tally("would refuse (audit)", "", &p->would_by, p->would_refuse);
	printf(ROW, "injection discards", p->discarded);
	printf(ROW, "handshake timeouts", p->timeouts);
	if (p->closed)
		print_tally("closed, other reasons", "", &p->closed_by, p->closed);
	v = tally_sorted(&p->clients, &n);
	if (n > 0)
		printf("  top refused clients\n");
	for (size_t i = 0; i < n && i < TOP_CLIENTS; i++)
		printf(SUBROW, v[i].key, v[i].n);
	if (p->clients.dropped)
		printf("    more than %d refused clients: %lu refusals of the rest not ranked\n",
		       MAX_CLIENTS, p->clients.dropped);
	free(v);
}

static int capped(const struct report *r)
{
	if (r->ports_dropped)
		return 1;
	for (size_t i = 0; i < r->nports; i++) {
		const struct port_stats *p = r->ports[i];

		if (p->versions.dropped || p->suites.dropped || p->refused_by.dropped ||
		    p->would_by.dropped || p->closed_by.dropped || p->clients.dropped)
			return 1;
	}
	return 0;
}

static void print_text(const struct report *r)
{
	printf("source:  ");
	for (size_t i = 0; i < r->nsources; i++)
		printf("%s%s", i ? ", " : "", r->sources[i]);
	printf("\nlines:   %lu from tlspolicy counted", r->lines);
	if (r->older)
		printf(", %lu before --since", r->older);
	if (r->other)
		printf(", %lu from other programs", r->other);
	printf("\nskipped: %lu unreadable", r->garbage);
	if (r->since != 0)
		printf(", %lu without a time (--since)", r->undated);
	printf("\n");
	if (r->ports_dropped)
		printf("note: more than %d ports; %lu decisions on the others not counted\n",
		       MAX_PORTS, r->ports_dropped);
	else if (capped(r))
		printf("note: a table was full; the counts marked so are incomplete\n");
	if (r->nports == 0)
		printf("\nno decisions on any port\n");
	for (size_t i = 0; i < r->nports; i++)
		print_text_port(r->ports[i]);
}

static void json_tally(const char *key, const struct tally *t)
{
	size_t n;
	struct tally_entry *v = tally_sorted(t, &n);

	printf("\"%s\":{", key);
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		json_str(stdout, v[i].key);
		printf(":%lu", v[i].n);
	}
	printf("}");
	free(v);
}

static void print_json_port(const struct port_stats *p)
{
	size_t n;
	struct tally_entry *v;

	printf("{\"port\":%d,\"connections\":%lu,\"tls\":{\"sessions\":%lu,",
	       p->port, p->connections, p->tls);
	json_tally("versions", &p->versions);
	printf(",");
	json_tally("suites", &p->suites);
	printf("},");
	json_tally("refused", &p->refused_by);
	printf(",");
	json_tally("would_refuse", &p->would_by);
	printf(",\"discarded\":%lu,\"timeouts\":%lu,", p->discarded, p->timeouts);
	json_tally("closed", &p->closed_by);
	printf(",\"top_refused_clients\":[");
	v = tally_sorted(&p->clients, &n);
	for (size_t i = 0; i < n && i < TOP_CLIENTS; i++) {
		printf("%s{\"client\":", i ? "," : "");
		json_str(stdout, v[i].key);
		printf(",\"count\":%lu}", v[i].n);
	}
	free(v);
	printf("]}");
}

static void print_json(const struct report *r)
{
	printf("{\"source\":[");
	for (size_t i = 0; i < r->nsources; i++) {
		printf("%s", i ? "," : "");
		json_str(stdout, r->sources[i]);
	}
	printf("],\"lines\":%lu,\"skipped\":%lu,\"garbage\":%lu,\"undated\":%lu,"
	       "\"before_since\":%lu,\"other\":%lu,\"capped\":%s,\"ports\":[",
	       r->lines, r->garbage + r->undated, r->garbage, r->undated, r->older, r->other,
	       capped(r) ? "true" : "false");
	for (size_t i = 0; i < r->nports; i++) {
		printf("%s", i ? "," : "");
		print_json_port(r->ports[i]);
	}
	printf("]}\n");
}

static int by_port(const void *a, const void *b)
{
	const struct port_stats *x = *(struct port_stats *const *)a;
	const struct port_stats *y = *(struct port_stats *const *)b;

	return (x->port > y->port) - (x->port < y->port);
}

/* --- the verb ------------------------------------------------------------------ */

int ctl_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' },
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct report r = { .nsources = 0 };
	const char *logs[MAX_SOURCES];
	size_t nlogs = 0, read_ok = 0;
	int json = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (nlogs == MAX_SOURCES) {
				fprintf(stderr, "tlspolicyctl report: at most %d --log files\n", MAX_SOURCES);
				return EXIT_USAGE;
			}
			logs[nlogs++] = optarg;
			break;
		case 's':
			r.since = parse_since(optarg, time(NULL));
			if (r.since <= 0) {
				fprintf(stderr, "tlspolicyctl report: --since \"%s\": use a date and time "
					"(2026-11-29, 2026-11-29T09:00) or an age (30m, 1h, 2d)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = 1;
			break;
		default:
			return ctl_usage("report");
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tlspolicyctl report: unexpected argument \"%s\"\n", argv[optind]);
		return ctl_usage("report");
	}
	for (size_t i = 0; i < nlogs; i++) {
		if (read_file(&r, logs[i]) == 0) {
			r.sources[r.nsources++] = strcmp(logs[i], "-") == 0 ? "stdin" : logs[i];
			read_ok++;
		}
	}
	if (nlogs == 0 && read_default(&r) == 0)
		read_ok++;
	if (read_ok == 0) {
		report_clear(&r);
		return 1;
	}
	if (r.nomem)
		fprintf(stderr, "tlspolicyctl report: out of memory: some counts are missing\n");
	qsort(r.ports, r.nports, sizeof(r.ports[0]), by_port);
	if (json)
		print_json(&r);
	else
		print_text(&r);
	report_clear(&r);
	return 0;
}
