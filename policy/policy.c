/*
 * policy.c - load, merge, check and resolve a tlspolicy policy
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "certcheck.h"
#include "ini.h"
#include "policy.h"
#include "util.h"

#ifndef TP_SYSCONFDIR
#define TP_SYSCONFDIR "/etc"
#endif

#define MAX_DROPINS 256
#define MAX_SECTIONS 512
#define MAX_BAN_SUITES 64

struct setting {
	char *value;		/* as written */
	char *resolved;		/* paths: absolute; otherwise NULL */
	const char *file;	/* owned by the policy's file list */
	int line;
	int present;		/* written somewhere, even if bad */
	int bad;		/* written, but failed its check */
};

struct section {
	char *name;		/* canonical: "global", "port 587", "port ::1:587" */
	int global;
	int port;
	char *address;		/* canonical text, NULL for any */
	const char *file;	/* where the section was first opened */
	int line;
	struct setting set[TP_KEY_COUNT];
	struct tp_rule rule;
	int rule_ok;		/* rule resolved (protocol and tls known) */
	int syntax_error;	/* a line in it could not be read */
	char *tls12, *tls13;
	char *bans;		/* ban_ciphers in effect: [global]'s words, then the port's */
};

struct tp_policy {
	char **files;
	size_t nfiles;
	struct section *sections;	/* [0] is [global] */
	size_t nsections;
	struct tp_rule **rules;		/* pointers into sections, port order of appearance */
	size_t nrules;
};

const char *tp_policy_default_path(void)
{
	const char *env = secure_getenv("TLSPOLICY_CONF");

	if (env != NULL && env[0] != '\0')
		return env;
	return TP_SYSCONFDIR "/tlspolicy/tlspolicy.conf";
}

const char *tp_protocol_name(enum tp_protocol p)
{
	return tp_keys[TP_KEY_PROTOCOL].values[p].word;
}

const char *tp_tls_mode_name(enum tp_tls_mode m)
{
	return tp_keys[TP_KEY_TLS].values[m].word;
}

/* --- the relay socket --------------------------------------------------------- */

int tp_relay_sockaddr(const char *name, struct sockaddr_un *sa, unsigned *len_r)
{
	size_t len = strlen(name);

	if (name[0] != '@' || len < 2 || len > sizeof(sa->sun_path))
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, name + 1, len - 1);	/* "@name": abstract */
	*len_r = (unsigned)(offsetof(struct sockaddr_un, sun_path) + len);
	return 0;
}

/* --- the published policy ---------------------------------------------------- */

const char *tp_policy_rundir(void)
{
	const char *env = secure_getenv("TLSPOLICY_RUNDIR");

	return env != NULL && *env ? env : "/run/tlspolicy";
}

int tp_published_generation(const char *rundir, unsigned *gen_r, char *sha256_r)
{
	char path[4096], sha[65] = "";
	unsigned gen;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "%s/%s", rundir, TP_PUBLISHED_GENERATION);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	n = fscanf(f, "%u %64[0-9a-f]", &gen, sha);
	fclose(f);
	if (n != 2 || strlen(sha) != 64 || gen == 0)
		return -1;
	*gen_r = gen;
	if (sha256_r != NULL)
		memcpy(sha256_r, sha, sizeof(sha));
	return 0;
}

/* --- what a daemon negotiated ---------------------------------------------- */

const char *tp_wire_version_name(unsigned version, char *buf, size_t size)
{
	static const char *const names[] = { "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3" };

	if (version >= 0x0300 && version <= 0x0304)
		return names[version - 0x0300];
	snprintf(buf, size, "0x%04X", version);
	return buf;
}

/* wire_version - 0x0301.. as enum tp_version; TP_VERSION_NONE below TLS 1.0 */
static enum tp_version wire_version(unsigned version)
{
	if (version < 0x0301)
		return TP_VERSION_NONE;
	return version > 0x0304 ? TP_TLS13 : (enum tp_version)(TP_TLS10 + (version - 0x0301));
}

/* class_names - the banned classes a suite is in, "3DES,SHA1" */
static void class_names(unsigned bits, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < tp_cipher_class_count; i++)
		if (bits & tp_cipher_classes[i].bit)
			len += (size_t)snprintf(buf + len, size > len ? size - len : 0, "%s%s",
						len ? "," : "", tp_cipher_classes[i].name);
}

int tp_rule_check_session(const struct tp_rule *r, unsigned version, unsigned suite,
			  const char **reason_r, char *detail, size_t size)
{
	const struct tp_suite *s = tp_suite_by_id(suite);
	char vbuf[16], classes[128];

	if (wire_version(version) < r->min_version) {
		*reason_r = "version-below-floor";
		snprintf(detail, size, "version=%s policy_floor=%s",
			 tp_wire_version_name(version, vbuf, sizeof(vbuf)), tp_version_name(r->min_version));
		return -1;
	}
	if (s != NULL && (s->classes & r->ban_classes)) {
		class_names(s->classes & r->ban_classes, classes, sizeof(classes));
		*reason_r = "banned-suite";
		snprintf(detail, size, "suite=%s banned=%s", s->name, classes);
		return -1;
	}
	if (s == NULL || !tp_list_has(s->tls13 ? r->tls13_suites : r->tls12_suites, s->name, ':')) {
		*reason_r = "suite-not-allowed";
		if (s != NULL)
			snprintf(detail, size, "suite=%s profile=%s", s->name, r->profile->name);
		else
			snprintf(detail, size, "suite=0x%04X profile=%s", suite, r->profile->name);
		return -1;
	}
	return 0;
}

/* --- sections ----------------------------------------------------------- */

/*
 * parse_port_spec - "587", "127.0.0.1:587", "::1:587", "*:587" into a port
 * and canonical address (NULL for any).  The port is what follows the last
 * colon, so an IPv6 address needs no brackets (iniparser could not read
 * them inside a section name).  Returns NULL on success, else what is wrong.
 */
static const char *parse_port_spec(const char *spec, int *port_r, char **addr_r)
{
	char host[INET6_ADDRSTRLEN + 2] = "", canon[INET6_ADDRSTRLEN];
	const char *portstr = spec, *colon = strrchr(spec, ':');
	unsigned char bin[sizeof(struct in6_addr)];
	char *end;
	long port;

	*addr_r = NULL;
	if (colon != NULL) {
		if ((size_t)(colon - spec) >= sizeof(host))
			return "the address is too long";
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		portstr = colon + 1;
	}
	errno = 0;
	port = strtol(portstr, &end, 10);
	if (portstr[0] == '\0' || *end != '\0' || !isdigit((unsigned char)portstr[0]))
		return "the port must be a number, e.g. [port 587], [port 127.0.0.1:587] or [port ::1:587]";
	if (errno != 0 || port < 1 || port > 65535)
		return "the port must be between 1 and 65535";
	*port_r = (int)port;
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		return NULL;
	if (inet_pton(AF_INET, host, bin) == 1)
		inet_ntop(AF_INET, bin, canon, sizeof(canon));
	else if (inet_pton(AF_INET6, host, bin) == 1 &&
		 IN6_IS_ADDR_V4MAPPED((struct in6_addr *)bin))
		inet_ntop(AF_INET, bin + 12, canon, sizeof(canon));	/* the IPv4 address it is */
	else if (inet_pton(AF_INET6, host, bin) == 1)
		inet_ntop(AF_INET6, bin, canon, sizeof(canon));
	else
		return "the address must be a numeric IPv4 or IPv6 address (host names are not looked up), e.g. [port 127.0.0.1:587] or [port ::1:587]";
	*addr_r = strdup(canon);
	return *addr_r == NULL ? "out of memory" : NULL;
}

static char *section_name(int port, const char *addr)
{
	char *s;
	int n;

	if (addr == NULL)
		n = asprintf(&s, "port %d", port);
	else
		n = asprintf(&s, "port %s:%d", addr, port);
	return n < 0 ? NULL : s;
}

static struct section *find_section(struct tp_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nsections; i++)
		if (strcmp(p->sections[i].name, name) == 0)
			return &p->sections[i];
	return NULL;
}

static struct section *new_section(struct tp_policy *p, char *name, int port,
				   char *addr, const char *file, int line)
{
	struct section *s;

	if (p->nsections == MAX_SECTIONS)
		return NULL;
	s = &p->sections[p->nsections++];
	*s = (struct section){ 0 };
	s->name = name;
	s->port = port;
	s->address = addr;
	s->file = file;
	s->line = line;
	return s;
}

/* unknown_section - say what a section header should have been */
static void unknown_section(const char *raw, const char *file, int line,
			    struct tp_diags *d)
{
	static const char *const words[] = { "global", "port" };
	char first[64] = "";
	const char *guess;

	sscanf(raw, "%63[^ 0-9]", first);
	guess = tp_suggest(first, words, 2);
	if (strncmp(raw, "port", 4) == 0 && isdigit((unsigned char)raw[4]))
		tp_diags_add(d, TP_ERROR, file, line, raw, NULL, NULL,
			     "unknown section; did you mean [port %s]? (a space goes between \"port\" and the number)",
			     raw + 4);
	else if (guess != NULL && strcmp(guess, "port") == 0)
		tp_diags_add(d, TP_ERROR, file, line, raw, NULL, NULL,
			     "unknown section; did you mean [port%s]?",
			     raw + strlen(first));
	else if (guess != NULL)
		tp_diags_add(d, TP_ERROR, file, line, raw, NULL, NULL,
			     "unknown section; did you mean [global]?");
	else
		tp_diags_add(d, TP_ERROR, file, line, raw, NULL, NULL,
			     "unknown section; sections are [global] and [port N] (or [port ADDRESS:N])");
}

/*
 * open_section - the policy section a header names, created on first use;
 * NULL (reported) if the header is not a valid section
 */
static struct section *open_section(struct tp_policy *p, const char *raw,
				    const char *file, int line,
				    struct tp_diags *d)
{
	const char *why;
	char *addr = NULL, *name;
	int port = 0;
	struct section *s;

	if (strcmp(raw, "global") == 0)
		return &p->sections[0];
	if (strncmp(raw, "port", 4) != 0 || !isspace((unsigned char)raw[4])) {
		unknown_section(raw, file, line, d);
		return NULL;
	}
	why = parse_port_spec(raw + 5 + strspn(raw + 5, " \t"), &port, &addr);
	if (why != NULL) {
		tp_diags_add(d, TP_ERROR, file, line, raw, NULL, NULL, "%s", why);
		return NULL;
	}
	name = section_name(port, addr);
	if (name == NULL) {
		free(addr);
		return NULL;
	}
	s = find_section(p, name);
	if (s != NULL) {
		free(name);
		free(addr);
		return s;
	}
	s = new_section(p, name, port, addr, file, line);
	if (s == NULL) {
		tp_diags_add(d, TP_ERROR, file, line, raw, NULL, NULL,
			     "more than %d sections; is this the right file?", MAX_SECTIONS);
		free(name);
		free(addr);
	}
	return s;
}

/* --- reading one file ----------------------------------------------------- */

/* resolve_path - a relative path is relative to the file that names it */
static char *resolve_path(const char *value, const char *file)
{
	const char *slash = strrchr(file, '/');
	char cwd[PATH_MAX];
	char *out;
	int n;

	if (value[0] == '/')
		n = asprintf(&out, "%s", value);
	else if (file[0] == '/')
		n = asprintf(&out, "%.*s/%s", (int)(slash - file), file, value);
	else if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	else if (slash == NULL)
		n = asprintf(&out, "%s/%s", cwd, value);
	else
		n = asprintf(&out, "%s/%.*s/%s", cwd, (int)(slash - file), file, value);
	if (n < 0)
		return NULL;
	tp_path_fold(out);
	return out;
}

static void set_value(struct setting *st, const struct tp_key *k,
		      const char *value, const char *file, int line, int bad)
{
	free(st->value);
	free(st->resolved);
	st->value = strdup(value);
	st->resolved = (!bad && k->type == TP_TYPE_PATH) ? resolve_path(value, file) : NULL;
	st->file = file;
	st->line = line;
	st->present = 1;
	st->bad = bad;
}

/* is_last - no later line sets the same key in the same section */
static int is_last(const struct tp_ini *ini, size_t i)
{
	const struct tp_ini_entry *e = &ini->entries[i];

	for (size_t j = i + 1; j < ini->len; j++)
		if (ini->entries[j].kind == TP_INI_KEY &&
		    strcmp(ini->entries[j].key, e->key) == 0 &&
		    strcmp(ini->entries[j].section, e->section) == 0)
			return 0;
	return 1;
}

/* apply_key - one key line: known, allowed here, not repeated, valid */
static void apply_key(struct section *s, const struct tp_ini *ini, size_t i,
		      const char *file, struct tp_diags *d)
{
	const struct tp_ini_entry *e = &ini->entries[i];
	const struct tp_key *k = tp_key_lookup(e->key);
	/* iniparser keeps the last of repeated keys: for an earlier one, the scan's reading */
	const char *value = is_last(ini, i) && e->value ? e->value : e->raw ? e->raw : "";
	const char *sec = s->name;
	struct tp_where w = { file, e->line, sec };
	const char *guess;

	if (k == NULL) {
		guess = tp_key_suggest(e->key);
		if (guess != NULL)
			tp_diags_add(d, TP_ERROR, file, e->line, sec, e->key, NULL,
				     "unknown key; did you mean \"%s\"?", guess);
		else
			tp_diags_add(d, TP_ERROR, file, e->line, sec, e->key, NULL,
				     "unknown key; see tlspolicy.conf(5) for the keys");
		return;
	}
	if (k->scope == TP_SCOPE_PORT && s->global) {
		tp_diags_add(d, TP_ERROR, file, e->line, sec, e->key, value,
			     "only allowed in a [port N] section; move it under the port it describes");
		return;
	}
	if (k->scope == TP_SCOPE_GLOBAL && !s->global) {
		tp_diags_add(d, TP_ERROR, file, e->line, sec, e->key, value,
			     "only allowed in [global]: there is one socket for all ports; move it there");
		return;
	}
	/* the same key twice in one section of one file: the first one counts */
	for (size_t j = 0; j < i; j++) {
		const struct tp_ini_entry *o = &ini->entries[j];

		if (o->kind == TP_INI_KEY && strcmp(o->key, e->key) == 0 &&
		    strcmp(o->section, e->section) == 0) {
			tp_diags_add(d, TP_ERROR, file, e->line, sec, e->key, value,
				     "set twice in this section (first on line %d); keep one",
				     o->line);
			return;
		}
	}
	set_value(&s->set[k - tp_keys], k, value, file, e->line,
		  tp_key_check(k, value, &w, d) < 0);
}

/*
 * read_file - merge one file into the policy.  Sections may repeat across
 * files (a drop-in overrides), but not within one.
 */
static void read_file(struct tp_policy *p, const char *file, struct tp_diags *d)
{
	struct tp_ini ini;
	struct section *cur = NULL;
	struct { struct section *s; int line; } seen[MAX_SECTIONS];
	size_t nseen = 0;

	if (tp_ini_read(file, &ini, d) < 0)
		return;
	for (size_t i = 0; i < ini.len; i++) {
		const struct tp_ini_entry *e = &ini.entries[i];

		if (e->kind == TP_INI_BROKEN) {
			/* a broken header's keys go nowhere; a broken line taints its section */
			if (strcmp(e->section, TP_INI_BROKEN_SECTION) == 0)
				cur = NULL;
			else if (cur != NULL)
				cur->syntax_error = 1;
			continue;
		}
		if (e->kind == TP_INI_SECTION) {
			cur = open_section(p, e->section, file, e->line, d);
			for (size_t j = 0; cur != NULL && j < nseen; j++) {
				if (seen[j].s != cur)
					continue;
				if (cur->global)
					tp_diags_add(d, TP_ERROR, file, e->line, e->section, NULL, NULL,
						     "duplicate section: [global] is already open on line %d; merge the two",
						     seen[j].line);
				else
					tp_diags_add(d, TP_ERROR, file, e->line, e->section, NULL, NULL,
						     "duplicate port: the same port as [%s] on line %d; merge the two",
						     cur->name, seen[j].line);
				break;
			}
			if (cur != NULL && nseen < MAX_SECTIONS)
				{ seen[nseen].s = cur; seen[nseen].line = e->line; nseen++; }
			continue;
		}
		if (e->section[0] == '\0') {
			tp_diags_add(d, TP_ERROR, file, e->line, NULL, e->key, NULL,
				     "key outside any section; put it under [global] or a [port N] section");
			continue;
		}
		if (cur != NULL)
			apply_key(cur, &ini, i, file, d);
	}
	tp_ini_free(&ini);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_file(struct tp_policy *p, const char *path)
{
	char **files = realloc(p->files, (p->nfiles + 1) * sizeof(*files));

	if (files == NULL)
		return -1;
	p->files = files;
	p->files[p->nfiles] = strdup(path);
	if (p->files[p->nfiles] == NULL)
		return -1;
	p->nfiles++;
	return 0;
}

/* is_dropin - "*.conf", not hidden (editors' and packagers' leftovers are not) */
static int is_dropin(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 && strcmp(name + len - 5, ".conf") == 0;
}

/* list_dropins - the .conf files in tlspolicy.d beside the main file, byte order */
static void list_dropins(struct tp_policy *p, const char *main, struct tp_diags *d)
{
	char dir[PATH_MAX], path[PATH_MAX];
	char *names[MAX_DROPINS];
	size_t n = 0;
	const char *slash = strrchr(main, '/');
	struct dirent *de;
	DIR *dh;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), "tlspolicy.d");
	else
		snprintf(dir, sizeof(dir), "%.*s/tlspolicy.d", (int)(slash - main), main);
	dh = opendir(dir);
	if (dh == NULL) {
		if (errno != ENOENT)
			tp_diags_add(d, TP_ERROR, dir, 0, NULL, NULL, NULL,
				     "cannot read the drop-in directory: %s", strerror(errno));
		return;
	}
	while ((de = readdir(dh)) != NULL && n < MAX_DROPINS)
		if (is_dropin(de->d_name) && (names[n] = strdup(de->d_name)) != NULL)
			n++;
	closedir(dh);
	/* byte order, not the locale's: the same order on every host */
	qsort(names, n, sizeof(names[0]), by_name);
	for (size_t i = 0; i < n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
			add_file(p, path);
		free(names[i]);
	}
}

/* --- resolving and checking the rules -------------------------------------- */

static const struct setting *effective(const struct tp_policy *p,
				       const struct section *s,
				       enum tp_key_id k)
{
	const struct setting *st = &s->set[k];

	if (st->present && !st->bad)
		return st;
	if (tp_keys[k].scope == TP_SCOPE_PORT || s->global)
		return NULL;
	st = &p->sections[0].set[k];
	return st->present && !st->bad ? st : NULL;
}

/* effective_value - the value as text, default if not set */
static const char *effective_value(const struct tp_policy *p,
				   const struct section *s, enum tp_key_id k)
{
	const struct setting *st = effective(p, s, k);

	if (st == NULL)
		return tp_keys[k].def;
	return st->resolved ? st->resolved : st->value;
}

/* has_bad - is the value in effect for k one that failed its check? */
static int has_bad(const struct tp_policy *p, const struct section *s,
		   enum tp_key_id k)
{
	if (s->set[k].present)
		return s->set[k].bad;
	return p->sections[0].set[k].present && p->sections[0].set[k].bad;
}

/* where_of - where a value came from, for a diagnostic about it */
static struct tp_where where_of(const struct tp_policy *p,
				const struct section *s, enum tp_key_id k)
{
	const struct setting *st = effective(p, s, k);

	if (st == NULL)
		return (struct tp_where){ s->file, s->line, s->name };
	if (st == &s->set[k])
		return (struct tp_where){ st->file, st->line, s->name };
	return (struct tp_where){ st->file, st->line, "global" };
}

static const struct {
	int port;
	enum tp_protocol protocol;
	enum tp_tls_mode tls;
	const char *what;
} well_known[] = {
	{ 25, TP_PROTO_SMTP, TP_TLS_OPPORTUNISTIC, "SMTP mail transfer (RFC 5321)" },
	{ 465, TP_PROTO_SMTP, TP_TLS_IMPLICIT, "SMTP submission over implicit TLS (RFC 8314)" },
	{ 587, TP_PROTO_SMTP, TP_TLS_STARTTLS, "SMTP submission with STARTTLS (RFC 6409)" },
	{ 143, TP_PROTO_IMAP, TP_TLS_STARTTLS, "IMAP with STARTTLS (RFC 9051)" },
	{ 993, TP_PROTO_IMAP, TP_TLS_IMPLICIT, "IMAP over implicit TLS (RFC 8314)" },
	{ 110, TP_PROTO_POP3, TP_TLS_STARTTLS, "POP3 with STLS (RFC 1939, RFC 2595)" },
	{ 995, TP_PROTO_POP3, TP_TLS_IMPLICIT, "POP3 over implicit TLS (RFC 8314)" },
};

/* implicit_port - RFC 8314's implicit-TLS port for a protocol */
static int implicit_port(enum tp_protocol proto)
{
	return proto == TP_PROTO_SMTP ? 465 : proto == TP_PROTO_IMAP ? 993 : 995;
}

static int well_known_index(int port)
{
	for (size_t i = 0; i < sizeof(well_known) / sizeof(well_known[0]); i++)
		if (well_known[i].port == port)
			return (int)i;
	return -1;
}

/* check_required - protocol and tls must be in every port section */
static void check_required(const struct section *s, enum tp_key_id k,
			   struct tp_diags *d)
{
	int wk = well_known_index(s->port);

	/* a line of this section could not be read: it may have been the key */
	if (s->set[k].present || s->syntax_error)
		return;
	if (k == TP_KEY_PROTOCOL && wk >= 0)
		tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, "protocol", NULL,
			     "not set; add \"protocol = %s\" (port %d is %s)",
			     tp_protocol_name(well_known[wk].protocol), s->port, well_known[wk].what);
	else if (k == TP_KEY_PROTOCOL)
		tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, "protocol", NULL,
			     "not set; add \"protocol = smtp\", \"imap\" or \"pop3\"");
	else if (wk >= 0)
		tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, "tls", NULL,
			     "not set; add \"tls = %s\" (port %d is %s)",
			     tp_tls_mode_name(well_known[wk].tls), s->port, well_known[wk].what);
	else
		tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, "tls", NULL,
			     "not set; add \"tls = implicit\", \"starttls\", \"opportunistic\" or \"refuse\"");
}

/* check_port_conventions - RFC 8314 and RFC 3207 port assignments */
static void check_port_conventions(const struct tp_policy *p,
				   const struct section *s, struct tp_diags *d)
{
	int wk = well_known_index(s->port);
	const struct tp_rule *r = &s->rule;
	struct tp_where pw = where_of(p, s, TP_KEY_PROTOCOL);
	struct tp_where tw = where_of(p, s, TP_KEY_TLS);

	if (wk < 0)
		return;
	if (r->protocol != well_known[wk].protocol)
		tp_diags_add(d, TP_WARNING, pw.file, pw.line, pw.section, "protocol",
			     tp_protocol_name(r->protocol),
			     "port %d is %s, not %s; clients will not understand each other: use protocol = %s",
			     s->port, well_known[wk].what, tp_protocol_name(r->protocol),
			     tp_protocol_name(well_known[wk].protocol));
	if (s->port == 25 && r->tls == TP_TLS_STARTTLS)
		tp_diags_add(d, TP_WARNING, tw.file, tw.line, tw.section, "tls", "starttls",
			     "starttls on port 25 bounces mail from servers without TLS (RFC 3207 section 4: a publicly-referenced MX must not require STARTTLS); use opportunistic");
	else if (s->port == 587 && r->tls == TP_TLS_IMPLICIT)
		tp_diags_add(d, TP_WARNING, tw.file, tw.line, tw.section, "tls", "implicit",
			     "RFC 8314 assigns port 587 to STARTTLS and 465 to implicit TLS; clients set to 587 expect a plaintext greeting: use starttls here and implicit on 465");
	else if (well_known[wk].tls == TP_TLS_IMPLICIT && r->tls == TP_TLS_REFUSE)
		tp_diags_add(d, TP_WARNING, tw.file, tw.line, tw.section, "tls", "refuse",
			     "port %d is an implicit-TLS port: its clients start with a TLS handshake and cannot read a plaintext refusal; to close it, stop the daemon listening on it (or use tls = implicit)",
			     s->port);
	else if (well_known[wk].tls == TP_TLS_IMPLICIT && r->tls != TP_TLS_IMPLICIT)
		tp_diags_add(d, TP_WARNING, tw.file, tw.line, tw.section, "tls",
			     tp_tls_mode_name(r->tls),
			     "RFC 8314 assigns port %d to implicit TLS; clients set to it start with a TLS handshake and fail: use implicit",
			     s->port);
	else if (well_known[wk].tls != TP_TLS_IMPLICIT && r->tls == TP_TLS_IMPLICIT)
		tp_diags_add(d, TP_WARNING, tw.file, tw.line, tw.section, "tls", "implicit",
			     "port %d is a plaintext-greeting port; clients set to it expect STARTTLS: use %s, and implicit TLS on %d",
			     s->port, tp_tls_mode_name(well_known[wk].tls), implicit_port(r->protocol));
}

/* alt_port - the port a refusal names: implicit first, else starttls */
static int alt_port(const struct tp_policy *p, enum tp_protocol proto)
{
	for (int pass = 0; pass < 2; pass++) {
		enum tp_tls_mode want = pass == 0 ? TP_TLS_IMPLICIT : TP_TLS_STARTTLS;

		for (size_t i = 1; i < p->nsections; i++) {
			const struct section *o = &p->sections[i];

			if (o->rule_ok && o->rule.protocol == proto && o->rule.tls == want)
				return o->port;
		}
	}
	return 0;
}

#ifndef TP_POLICY_NO_TLS	/* the shim's build: no suite lists to check */
/* blame - the key to report a suite problem at: the port's own first */
static enum tp_key_id blame(const struct tp_policy *p, const struct section *s)
{
	static const enum tp_key_id order[] = {
		TP_KEY_BAN_CIPHERS, TP_KEY_MIN_PROTOCOL, TP_KEY_PROFILE
	};

	for (size_t i = 0; i < 3; i++)
		if (s->set[order[i]].present && !s->set[order[i]].bad)
			return order[i];
	for (size_t i = 0; i < 3; i++)
		if (effective(p, s, order[i]) != NULL)
			return order[i];
	return TP_KEY_PROFILE;
}

/* check_suites - what the profile and bans leave must be usable */
static void check_suites(const struct tp_policy *p, const struct section *s,
			 struct tp_diags *d)
{
	const struct tp_rule *r = &s->rule;
	enum tp_key_id k = blame(p, s);
	struct tp_where w = where_of(p, s, k);
	int has12 = r->tls12_suites[0] != '\0', has13 = r->tls13_suites[0] != '\0';
	int bans = s->bans != NULL && strspn(s->bans, " \t,:") < strlen(s->bans);

	if (!has13 && (!has12 || r->min_version == TP_TLS13)) {
		tp_diags_add(d, TP_ERROR, w.file, w.line, w.section, tp_keys[k].name,
			     effective_value(p, s, k),
			     "profile %s %s no usable cipher suite for %s and up; %s",
			     r->profile->name, bans ? "with ban_ciphers leaves" : "has",
			     tp_version_name(r->min_version),
			     bans ? "remove some of ban_ciphers or choose another profile" : "choose another profile");
	} else if (!has12 && r->min_version < TP_TLS13) {
		tp_diags_add(d, TP_WARNING, w.file, w.line, w.section, tp_keys[k].name,
			     effective_value(p, s, k),
			     "profile %s %s no suite for TLS 1.2 and below, so %s clients cannot connect and TLSv1.3 is the real floor; set min_protocol = TLSv1.3 to say so, or %s",
			     r->profile->name, bans ? "with ban_ciphers leaves" : "has",
			     tp_version_name(r->min_version),
			     bans ? "remove some of ban_ciphers" : "use profile intermediate");
	}
}
#endif

static void check_floor(const struct tp_policy *p, const struct section *s,
			struct tp_diags *d)
{
	enum tp_key_id k = effective(p, s, TP_KEY_MIN_PROTOCOL) ? TP_KEY_MIN_PROTOCOL : TP_KEY_PROFILE;
	struct tp_where w = where_of(p, s, k);

	if (s->rule.min_version >= TP_TLS12)
		return;
	if (k == TP_KEY_PROFILE)
		tp_diags_add(d, TP_WARNING, w.file, w.line, w.section, tp_keys[k].name,
			     effective_value(p, s, k),
			     "the %s profile allows %s when min_protocol is not set, which RFC 8996 deprecates (no modern client needs it); add min_protocol = TLSv1.2 unless very old clients must connect",
			     s->rule.profile->name, tp_version_name(s->rule.min_version));
	else
		tp_diags_add(d, TP_WARNING, w.file, w.line, w.section, tp_keys[k].name,
			     effective_value(p, s, k),
			     "allows %s, which RFC 8996 deprecates (no modern client needs it); use TLSv1.2 unless very old clients must connect",
			     tp_version_name(s->rule.min_version));
}

/* check_certs - tls_by = module needs a usable certificate and key */
static void check_certs(const struct tp_policy *p, const struct section *s,
			struct tp_diags *d)
{
	const struct tp_rule *r = &s->rule;
	struct tp_where cw = where_of(p, s, TP_KEY_CERTIFICATE);
	struct tp_where kw = where_of(p, s, TP_KEY_PRIVATE_KEY);

	if (r->tls_by != TP_BY_MODULE || r->tls == TP_TLS_REFUSE ||
	    has_bad(p, s, TP_KEY_TLS_BY) || has_bad(p, s, TP_KEY_TLS))
		return;
	if (r->certificate == NULL && !s->set[TP_KEY_CERTIFICATE].bad &&
	    !p->sections[0].set[TP_KEY_CERTIFICATE].bad)
		tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, "certificate", NULL,
			     "not set; with tls_by = module tlspolicyd presents it: set certificate (and private_key) in [global] or in this section, or set tls_by = daemon if the mail daemon does TLS itself");
	if (r->private_key == NULL && !s->set[TP_KEY_PRIVATE_KEY].bad &&
	    !p->sections[0].set[TP_KEY_PRIVATE_KEY].bad)
		tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, "private_key", NULL,
			     "not set; with tls_by = module tlspolicyd needs the certificate's key: set private_key in [global] or in this section, or set tls_by = daemon if the mail daemon does TLS itself");
	if (r->certificate == NULL || r->private_key == NULL)
		return;
	/* one check per distinct pair: the diagnostics dedupe the rest */
	for (size_t i = 1; i < p->nsections; i++) {
		const struct section *o = &p->sections[i];

		if (o == s)
			break;
		if (o->rule_ok && o->rule.tls_by == TP_BY_MODULE && o->rule.tls != TP_TLS_REFUSE &&
		    tp_streq_null(o->rule.certificate, r->certificate) &&
		    tp_streq_null(o->rule.private_key, r->private_key))
			return;
	}
	tp_cert_check(r->certificate, &cw, r->private_key, &kw, d);
}

/*
 * merge_bans - a port bans what [global] bans and what it adds: a port can
 * ban more, never less.  Words already present are not repeated.
 */
static char *merge_bans(const struct setting *global, const struct setting *port)
{
	struct tp_buf b = { 0 };
	const char *lists[2] = { global ? global->value : "", port ? port->value : "" };

	tp_buf_add(&b, "");
	for (int i = 0; i < 2; i++) {
		char *copy = strdup(lists[i]), *sp = NULL;

		if (copy == NULL) {
			tp_buf_free(&b);
			return NULL;
		}
		for (char *t = strtok_r(copy, " \t,:", &sp); t; t = strtok_r(NULL, " \t,:", &sp)) {
			if (tp_list_has(b.s, t, ' '))
				continue;
			if (b.len)
				tp_buf_add(&b, " ");
			tp_buf_add(&b, t);
		}
		free(copy);
	}
	if (b.oom) {
		tp_buf_free(&b);
		return NULL;
	}
	return b.s;
}

/* resolve - a port section's rule from its keys, [global] and defaults */
static int resolve(struct tp_policy *p, struct section *s)
{
	struct tp_rule *r = &s->rule;
	const struct tp_suite *bans[MAX_BAN_SUITES];
	const char *min = effective_value(p, s, TP_KEY_MIN_PROTOCOL);
	const struct setting *proto = effective(p, s, TP_KEY_PROTOCOL);
	const struct setting *tls = effective(p, s, TP_KEY_TLS);
	size_t nban;

	if (proto == NULL || tls == NULL)
		return 0;
	r->section = s->name;
	r->port = s->port;
	r->address = s->address;
	r->protocol = tp_key_enum_index(&tp_keys[TP_KEY_PROTOCOL], proto->value);
	r->tls = tp_key_enum_index(&tp_keys[TP_KEY_TLS], tls->value);
	r->tls_by = tp_key_enum_index(&tp_keys[TP_KEY_TLS_BY], effective_value(p, s, TP_KEY_TLS_BY));
	r->enforce = tp_key_enum_index(&tp_keys[TP_KEY_ENFORCE], effective_value(p, s, TP_KEY_ENFORCE));
	r->profile = tp_profile_lookup(effective_value(p, s, TP_KEY_PROFILE));
	r->min_version = min ? tp_version_parse(min) : r->profile->floor;
	s->bans = merge_bans(effective(p, &p->sections[0], TP_KEY_BAN_CIPHERS),
			     s->set[TP_KEY_BAN_CIPHERS].present && !s->set[TP_KEY_BAN_CIPHERS].bad ?
			     &s->set[TP_KEY_BAN_CIPHERS] : NULL);
	if (s->bans == NULL)
		return -1;
	nban = tp_ciphers_parse(s->bans, &r->ban_classes, bans, MAX_BAN_SUITES);
	if (tp_suites_select(r->profile, r->ban_classes, bans, nban, &s->tls12, &s->tls13) < 0)
		return -1;
	r->tls12_suites = s->tls12;
	r->tls13_suites = s->tls13;
	r->certificate = effective(p, s, TP_KEY_CERTIFICATE) ? effective_value(p, s, TP_KEY_CERTIFICATE) : NULL;
	r->private_key = effective(p, s, TP_KEY_PRIVATE_KEY) ? effective_value(p, s, TP_KEY_PRIVATE_KEY) : NULL;
	r->handshake_timeout = atoi(effective_value(p, s, TP_KEY_HANDSHAKE_TIMEOUT));
	r->plaintext_timeout = atoi(effective_value(p, s, TP_KEY_PLAINTEXT_TIMEOUT));
	s->rule_ok = 1;
	return 0;
}

static void check_rules(struct tp_policy *p, unsigned flags, struct tp_diags *d)
{
	const struct section *g = &p->sections[0];

	if (g->set[TP_KEY_ENFORCE].present && !g->set[TP_KEY_ENFORCE].bad &&
	    strcasecmp(g->set[TP_KEY_ENFORCE].value, "audit") == 0)
		tp_diags_add(d, TP_WARNING, g->set[TP_KEY_ENFORCE].file, g->set[TP_KEY_ENFORCE].line,
			     "global", "enforce", "audit",
			     "audit mode refuses nothing: plaintext logins and weak TLS are only logged (action=would-refuse); set enforce = yes once the logs are clean");
	/* (only for an otherwise clean policy: a broken section is not "no section") */
	if (p->nsections == 1 && tp_diags_count(d, TP_ERROR) == 0)
		tp_diags_add(d, TP_WARNING, p->files[0], 0, NULL, NULL, NULL,
			     "no [port N] section: this policy manages no port, so tlspolicy leaves every connection alone; add a section for each mail port (see the shipped tlspolicy.conf)");
	for (size_t i = 1; i < p->nsections; i++) {
		struct section *s = &p->sections[i];

		check_required(s, TP_KEY_PROTOCOL, d);
		check_required(s, TP_KEY_TLS, d);
		if (resolve(p, s) < 0)
			tp_diags_add(d, TP_ERROR, s->file, s->line, s->name, NULL, NULL, "out of memory");
	}
	for (size_t i = 1; i < p->nsections; i++) {
		struct section *s = &p->sections[i];
		struct tp_where tw = where_of(p, s, TP_KEY_TLS);

		if (!s->rule_ok)
			continue;
		if (s->rule.tls == TP_TLS_REFUSE) {
			s->rule.refuse_alt_port = alt_port(p, s->rule.protocol);
			if (s->rule.refuse_alt_port == 0)
				tp_diags_add(d, TP_WARNING, tw.file, tw.line, tw.section, "tls", "refuse",
					     "no implicit or starttls port for %s in this policy, so the refusal cannot tell clients which port to use; add [port %d] with protocol = %s and tls = implicit",
					     tp_protocol_name(s->rule.protocol), implicit_port(s->rule.protocol),
					     tp_protocol_name(s->rule.protocol));
		}
		if (s->set[TP_KEY_ENFORCE].present && !s->set[TP_KEY_ENFORCE].bad &&
		    s->rule.enforce == TP_ENFORCE_AUDIT)
			tp_diags_add(d, TP_WARNING, s->set[TP_KEY_ENFORCE].file, s->set[TP_KEY_ENFORCE].line,
				     s->name, "enforce", "audit",
				     "audit mode refuses nothing on this port: plaintext logins and weak TLS are only logged (action=would-refuse); set enforce = yes once the logs are clean");
		check_port_conventions(p, s, d);
		if (s->rule.tls == TP_TLS_REFUSE)
			continue;
		check_floor(p, s, d);
#ifndef TP_POLICY_NO_TLS
		check_suites(p, s, d);	/* the shim's build has no suite lists */
#endif
		if (flags & TP_LOAD_CHECK_FILES)
			check_certs(p, s, d);
	}
}

/* --- the public interface ----------------------------------------------- */

static void section_free(struct section *s)
{
	free(s->name);
	free(s->address);
	free(s->tls12);
	free(s->tls13);
	free(s->bans);
	for (int k = 0; k < TP_KEY_COUNT; k++) {
		free(s->set[k].value);
		free(s->set[k].resolved);
	}
}

void tp_policy_free(struct tp_policy **pp)
{
	struct tp_policy *p = *pp;

	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nsections; i++)
		section_free(&p->sections[i]);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	free(p->sections);
	free(p->rules);
	free(p);
	*pp = NULL;
}

static int collect_rules(struct tp_policy *p)
{
	p->rules = calloc(p->nsections, sizeof(*p->rules));
	if (p->rules == NULL)
		return -1;
	for (size_t i = 1; i < p->nsections; i++)
		if (p->sections[i].rule_ok)
			p->rules[p->nrules++] = &p->sections[i].rule;
	return 0;
}

struct tp_policy *tp_policy_load(const char *path, unsigned flags,
				 struct tp_diags *d)
{
	struct tp_policy *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->sections = calloc(MAX_SECTIONS, sizeof(struct section))) == NULL) {
		free(p);
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL, "out of memory");
		return NULL;
	}
	p->nsections = 1;
	p->sections[0].name = strdup("global");
	p->sections[0].global = 1;
	p->sections[0].file = path;
	if (p->sections[0].name == NULL || add_file(p, path) < 0) {
		tp_policy_free(&p);
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL, "out of memory");
		return NULL;
	}
	list_dropins(p, path, d);
	for (size_t i = 0; i < p->nfiles; i++)
		read_file(p, p->files[i], d);
	p->sections[0].file = p->files[0];
	check_rules(p, flags, d);
	tp_diags_sort(d, (const char *const *)p->files, p->nfiles);
	if (tp_diags_count(d, TP_ERROR) > 0 || collect_rules(p) < 0) {
		tp_policy_free(&p);
		return NULL;
	}
	return p;
}

size_t tp_policy_file_count(const struct tp_policy *p)
{
	return p->nfiles;
}

const char *tp_policy_file(const struct tp_policy *p, size_t i)
{
	return i < p->nfiles ? p->files[i] : NULL;
}

size_t tp_policy_rule_count(const struct tp_policy *p)
{
	return p->nrules;
}

const struct tp_rule *tp_policy_rule(const struct tp_policy *p, size_t i)
{
	return i < p->nrules ? p->rules[i] : NULL;
}

/* canonical_address - text address in inet_ntop form, or NULL */
static int canonical_address(const char *in, char *out, size_t len)
{
	unsigned char bin[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, in, bin) == 1)
		return inet_ntop(AF_INET, bin, out, (socklen_t)len) ? 0 : -1;
	if (inet_pton(AF_INET6, in, bin) == 1) {
		/* an IPv4-mapped address is the IPv4 address */
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)bin))
			return inet_ntop(AF_INET, bin + 12, out, (socklen_t)len) ? 0 : -1;
		return inet_ntop(AF_INET6, bin, out, (socklen_t)len) ? 0 : -1;
	}
	return -1;
}

const struct tp_rule *tp_policy_lookup(const struct tp_policy *p, int port,
				       const char *address)
{
	char canon[INET6_ADDRSTRLEN] = "";
	const struct tp_rule *any = NULL;

	if (address != NULL && canonical_address(address, canon, sizeof(canon)) < 0)
		canon[0] = '\0';
	for (size_t i = 0; i < p->nrules; i++) {
		const struct tp_rule *r = p->rules[i];

		if (r->port != port)
			continue;
		if (r->address == NULL)
			any = r;
		else if (canon[0] != '\0' && strcmp(r->address, canon) == 0)
			return r;
	}
	return any;
}

static const struct section *rule_section(const struct tp_policy *p,
					  const struct tp_rule *rule)
{
	for (size_t i = 1; i < p->nsections; i++)
		if (&p->sections[i].rule == rule)
			return &p->sections[i];
	return NULL;
}

const char *tp_policy_value(const struct tp_policy *p,
			    const struct tp_rule *rule, enum tp_key_id key,
			    const char **source_r)
{
	static __thread char where[PATH_MAX + 32];
	const struct section *s = rule ? rule_section(p, rule) : &p->sections[0];
	const struct setting *st;
	const char *value;

	if (s == NULL)
		return NULL;
	st = effective(p, s, key);
	/* a port's bans are [global]'s plus its own */
	if (key == TP_KEY_BAN_CIPHERS && rule != NULL && st != NULL) {
		const struct setting *g = &p->sections[0].set[key];

		if (st != g && g->present && !g->bad)
			snprintf(where, sizeof(where), "%s:%d + %s:%d", g->file, g->line,
				 st->file, st->line);
		else
			snprintf(where, sizeof(where), "%s:%d", st->file, st->line);
		*source_r = where;
		return s->bans;
	}
	if (st != NULL) {
		snprintf(where, sizeof(where), "%s:%d", st->file, st->line);
		*source_r = where;
		return st->resolved ? st->resolved : st->value;
	}
	if (key == TP_KEY_MIN_PROTOCOL) {
		const struct tp_profile *prof =
			tp_profile_lookup(effective_value(p, s, TP_KEY_PROFILE));

		snprintf(where, sizeof(where), "profile %s", prof->name);
		*source_r = where;
		return tp_version_name(prof->floor);
	}
	value = tp_keys[key].def;
	*source_r = "default";
	return value;
}

const char *tp_policy_relay_socket(const struct tp_policy *p)
{
	const char *src;

	return tp_policy_value(p, NULL, TP_KEY_RELAY_SOCKET, &src);
}

const char *tp_policy_user(const struct tp_policy *p)
{
	const char *src;

	return tp_policy_value(p, NULL, TP_KEY_USER, &src);
}

long tp_policy_count(const struct tp_policy *p, enum tp_key_id key)
{
	const char *src;

	return strtol(tp_policy_value(p, NULL, key, &src), NULL, 10);
}
