/*
 * check_policy.c - unit tests of the policy library (Check)
 *
 * Table-driven: the broken policies and their exact diagnostics live in
 * tests/policies/invalid/NN-name/{tlspolicy.conf,expected}; the valid ones
 * and their resolved rules are rows below.  The tests run in the build
 * tree's tests/work (a copy of tests/policies plus generated certificates),
 * named by $TESTS_WORK.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "policy.h"
#include "util.h"

static const char *work_dir(void)
{
	const char *w = getenv("TESTS_WORK");

	return w ? w : "tests/work";
}

/* slurp - a whole small file; NULL if unreadable */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = calloc(1, 1 << 20);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* write_policy - a policy file (and the directory for it) under dir */
static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

/* normalise - dates and day counts vary from run to run */
static void normalise(char *s)
{
	regex_t date, days;
	regmatch_t m;

	regcomp(&date, "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC", REG_EXTENDED);
	regcomp(&days, "in [0-9]+ days", REG_EXTENDED);
	while (regexec(&date, s, 1, &m, 0) == 0) {
		memmove(s + m.rm_so + 4, s + m.rm_eo, strlen(s + m.rm_eo) + 1);
		memcpy(s + m.rm_so, "DATE", 4);
	}
	while (regexec(&days, s, 1, &m, 0) == 0) {
		memmove(s + m.rm_so + 9, s + m.rm_eo, strlen(s + m.rm_eo) + 1);
		memcpy(s + m.rm_so, "in N days", 9);
	}
	regfree(&date);
	regfree(&days);
}

/* diag_text - all diagnostics, one per line, as the CLI prints them */
static char *diag_text(const struct tp_diags *d)
{
	struct tp_buf b = { 0 };

	tp_buf_add(&b, "");
	for (size_t i = 0; i < tp_diags_len(d); i++) {
		char *line = tp_diag_format(tp_diags_get(d, i));

		tp_buf_add(&b, line);
		tp_buf_add(&b, "\n");
		free(line);
	}
	return b.s;
}

/* --- the golden table of invalid policies ---------------------------------- */

static char **invalid_cases;
static int invalid_count;

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_invalid(void)
{
	char path[4096];
	DIR *dh;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/invalid", work_dir());
	dh = opendir(path);
	if (dh == NULL)
		return;
	invalid_cases = calloc(512, sizeof(char *));
	while ((de = readdir(dh)) != NULL && invalid_count < 512)
		if (de->d_name[0] != '.')
			invalid_cases[invalid_count++] = strdup(de->d_name);
	closedir(dh);
	qsort(invalid_cases, (size_t)invalid_count, sizeof(char *), by_str);
}

/* expected_diags - the golden file without its exit-code lines */
static char *expected_diags(const char *golden)
{
	struct tp_buf b = { 0 };
	char *copy = strdup(golden), *sp = NULL;

	tp_buf_add(&b, "");
	for (char *l = strtok_r(copy, "\n", &sp); l; l = strtok_r(NULL, "\n", &sp)) {
		if (strncmp(l, "exit ", 5) == 0 || strncmp(l, "strict-exit ", 12) == 0)
			continue;
		tp_buf_add(&b, l);
		tp_buf_add(&b, "\n");
	}
	free(copy);
	return b.s;
}

START_TEST(test_invalid_golden)
{
	const char *name = invalid_cases[_i];
	char conf[4096], golden_path[4096];
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p;
	char *golden, *want, *got;

	ck_assert_int_eq(chdir(work_dir()), 0);
	snprintf(conf, sizeof(conf), "invalid/%s/tlspolicy.conf", name);
	snprintf(golden_path, sizeof(golden_path), "invalid/%s/expected", name);
	golden = slurp(golden_path);
	ck_assert_msg(golden != NULL, "%s: no golden file", name);
	p = tp_policy_load(conf, TP_LOAD_CHECK_FILES, d);
	got = diag_text(d);
	normalise(got);
	want = expected_diags(golden);
	ck_assert_msg(strcmp(got, want) == 0, "%s:\n--- expected\n%s--- got\n%s", name, want, got);
	/* a policy is returned exactly when there is no error */
	ck_assert_msg((p == NULL) == (strstr(want, ": error: ") != NULL),
		      "%s: policy %s returned", name, p ? "was" : "was not");
	tp_policy_free(&p);
	tp_diags_free(&d);
	free(golden);
	free(want);
	free(got);
}
END_TEST

START_TEST(test_invalid_table_size)
{
	/* the contract: at least 40 broken policies with exact diagnostics */
	ck_assert_int_ge(invalid_count, 40);
}
END_TEST

/* --- valid policies and their resolved rules -------------------------------- */

struct valid_row {
	const char *name;
	const char *conf;		/* the main file */
	const char *dropin;		/* tlspolicy.d/50-x.conf, or NULL */
	int port;
	const char *address;
	const char *expect;		/* the rule, as rule_text() prints it; NULL: not managed */
};

#define TLS12_INTERMEDIATE \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS13_STRONG "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256"

static const struct valid_row valid_rows[] = {
	{ "defaults",
	  "[port 587]\nprotocol = smtp\ntls = starttls\ntls_by = daemon\n", NULL, 587, NULL,
	  "port 587 smtp starttls daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "unmanaged port",
	  "[port 587]\nprotocol = smtp\ntls = starttls\ntls_by = daemon\n", NULL, 25, NULL, NULL },
	{ "global overridden per port",
	  "[global]\nprofile = legacy\nmin_protocol = TLSv1.2\nhandshake_timeout = 10\n"
	  "ban_ciphers = CBC RC4 3DES NULL aNULL EXPORT DHE kRSA\ntls_by = daemon\n"
	  "[port 993]\nprotocol = imap\ntls = implicit\nprofile = modern\nhandshake_timeout = 5\n",
	  NULL, 993, NULL,
	  "port 993 imap implicit daemon yes modern TLSv1.2 t=5 alt=0 tls12= tls13=" TLS13_STRONG },
	{ "legacy with bans",
	  "[global]\nprofile = legacy\nmin_protocol = TLSv1.2\ntls_by = daemon\n"
	  "ban_ciphers = CBC RC4 3DES NULL aNULL EXPORT DHE\n"
	  "[port 465]\nprotocol = smtp\ntls = implicit\n", NULL, 465, NULL,
	  "port 465 smtp implicit daemon yes legacy TLSv1.2 t=30 alt=0 "
	  "tls12=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
	  "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	  "ECDHE-ECDSA-AES128-CCM tls13=" TLS13_STRONG ":TLS13-AES128-CCM-SHA256" },
	{ "suite banned by name",
	  "[global]\ntls_by = daemon\nban_ciphers = TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 DHE-RSA-AES256-GCM-SHA384 dhe-rsa-chacha20-poly1305\n"
	  "[port 587]\nprotocol = smtp\ntls = starttls\n", NULL, 587, NULL,
	  "port 587 smtp starttls daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
	  "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305 "
	  "tls13=" TLS13_STRONG },
	{ "address section wins",
	  "[global]\ntls_by = daemon\n[port 587]\nprotocol = smtp\ntls = starttls\n"
	  "[port 127.0.0.1:587]\nprotocol = smtp\ntls = opportunistic\n", NULL, 587, "127.0.0.1",
	  "port 127.0.0.1:587 smtp opportunistic daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "IPv4-mapped address",
	  "[global]\ntls_by = daemon\n[port 587]\nprotocol = smtp\ntls = starttls\n"
	  "[port 127.0.0.1:587]\nprotocol = smtp\ntls = opportunistic\n", NULL, 587, "::ffff:127.0.0.1",
	  "port 127.0.0.1:587 smtp opportunistic daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "other address falls back to the port",
	  "[global]\ntls_by = daemon\n[port 587]\nprotocol = smtp\ntls = starttls\n"
	  "[port 127.0.0.1:587]\nprotocol = smtp\ntls = opportunistic\n", NULL, 587, "127.0.0.2",
	  "port 587 smtp starttls daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "IPv6 section, canonical form",
	  "[global]\ntls_by = daemon\n[port 0:0::1:993]\nprotocol = imap\ntls = implicit\n", NULL, 993, "::1",
	  "port ::1:993 imap implicit daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "refuse names the implicit port",
	  "[global]\ntls_by = daemon\n[port 110]\nprotocol = pop3\ntls = refuse\n"
	  "[port 2110]\nprotocol = pop3\ntls = starttls\n[port 995]\nprotocol = pop3\ntls = implicit\n",
	  NULL, 110, NULL,
	  "port 110 pop3 refuse daemon yes intermediate TLSv1.2 t=30 alt=995 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "refuse names the starttls port when there is no implicit one",
	  "[global]\ntls_by = daemon\n[port 143]\nprotocol = imap\ntls = refuse\n"
	  "[port 1143]\nprotocol = imap\ntls = starttls\n", NULL, 143, NULL,
	  "port 143 imap refuse daemon yes intermediate TLSv1.2 t=30 alt=1143 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "drop-in overrides the main file",
	  "[global]\ntls_by = daemon\n[port 587]\nprotocol = smtp\ntls = starttls\n",
	  "[port 587]\ntls = opportunistic\n[global]\nenforce = audit\nmin_protocol = TLSv1.3\n", 587, NULL,
	  "port 587 smtp opportunistic daemon audit intermediate TLSv1.3 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "case, quotes, comments and continued lines",
	  "; comment\n# comment\n[GLOBAL]\nTLS_BY = \"daemon\"\n[Port 587]\nprotocol = SMTP ; inline\n"
	  "tls = \\\n  starttls\n", NULL, 587, NULL,
	  "port 587 smtp starttls daemon yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
	{ "module with a certificate",
	  "[global]\ncertificate = ../certs/rsa.pem\nprivate_key = ../certs/rsa.key\n"
	  "[port 465]\nprotocol = smtp\ntls = implicit\n", NULL, 465, NULL,
	  "port 465 smtp implicit module yes intermediate TLSv1.2 t=30 alt=0 "
	  "tls12=" TLS12_INTERMEDIATE " tls13=" TLS13_STRONG },
};

/* rule_text - one line with every resolved field */
static char *rule_text(const struct tp_rule *r)
{
	char *s;

	if (asprintf(&s, "%s %s %s %s %s %s %s t=%d alt=%d tls12=%s tls13=%s",
		     r->section, tp_protocol_name(r->protocol), tp_tls_mode_name(r->tls),
		     r->tls_by == TP_BY_MODULE ? "module" : "daemon",
		     r->enforce == TP_ENFORCE_YES ? "yes" : "audit", r->profile->name,
		     tp_version_name(r->min_version), r->handshake_timeout,
		     r->refuse_alt_port, r->tls12_suites, r->tls13_suites) < 0)
		return NULL;
	return s;
}

/* load_row - write a row's files under work/valid-rows/N and load them */
static struct tp_policy *load_text(const char *conf, const char *dropin, int n,
				   struct tp_diags *d)
{
	char dir[4096], path[4200];

	snprintf(dir, sizeof(dir), "%s/rows-%d", work_dir(), n);
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/tlspolicy.d", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/tlspolicy.d/50-x.conf", dir);
	unlink(path);
	if (dropin != NULL)
		write_file(path, dropin);
	snprintf(path, sizeof(path), "%s/tlspolicy.conf", dir);
	write_file(path, conf);
	return tp_policy_load(path, TP_LOAD_CHECK_FILES, d);
}

START_TEST(test_valid_rows)
{
	const struct valid_row *row = &valid_rows[_i];
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p = load_text(row->conf, row->dropin, _i, d);
	const struct tp_rule *r;
	char *diags = diag_text(d), *got;

	ck_assert_msg(p != NULL, "%s: did not load:\n%s", row->name, diags);
	r = tp_policy_lookup(p, row->port, row->address);
	if (row->expect == NULL) {
		ck_assert_msg(r == NULL, "%s: port %d should not be managed", row->name, row->port);
	} else {
		ck_assert_msg(r != NULL, "%s: port %d not found", row->name, row->port);
		got = rule_text(r);
		ck_assert_msg(strcmp(got, row->expect) == 0, "%s:\nexpected %s\n     got %s",
			      row->name, row->expect, got);
		free(got);
	}
	free(diags);
	tp_policy_free(&p);
	tp_diags_free(&d);
}
END_TEST

START_TEST(test_value_sources)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p = load_text(
		"[global]\nprofile = modern\ntls_by = daemon\n[port 993]\nprotocol = imap\ntls = implicit\n",
		"[port 993]\nhandshake_timeout = 12\n", 900, d);
	const struct tp_rule *r;
	const char *src, *v;
	char want[4200];

	ck_assert_ptr_nonnull(p);
	r = tp_policy_lookup(p, 993, NULL);
	v = tp_policy_value(p, r, TP_KEY_PROFILE, &src);
	ck_assert_str_eq(v, "modern");
	snprintf(want, sizeof(want), "%s/rows-900/tlspolicy.conf:2", work_dir());
	ck_assert_str_eq(src, want);
	v = tp_policy_value(p, r, TP_KEY_MIN_PROTOCOL, &src);
	ck_assert_str_eq(v, "TLSv1.3");
	ck_assert_str_eq(src, "profile modern");
	v = tp_policy_value(p, r, TP_KEY_ENFORCE, &src);
	ck_assert_str_eq(v, "yes");
	ck_assert_str_eq(src, "default");
	v = tp_policy_value(p, r, TP_KEY_HANDSHAKE_TIMEOUT, &src);
	ck_assert_str_eq(v, "12");
	snprintf(want, sizeof(want), "%s/rows-900/tlspolicy.d/50-x.conf:2", work_dir());
	ck_assert_str_eq(src, want);
	ck_assert_ptr_null(tp_policy_value(p, r, TP_KEY_CERTIFICATE, &src));
	ck_assert_str_eq(tp_policy_relay_socket(p), "@tlspolicy");
	ck_assert_uint_eq(tp_policy_file_count(p), 2);
	tp_policy_free(&p);
	tp_diags_free(&d);
}
END_TEST

START_TEST(test_relative_paths)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p = load_text(
		"[global]\ncertificate = ../certs/rsa.pem\nprivate_key = ../certs/rsa.key\n"
		"[port 465]\nprotocol = smtp\ntls = implicit\n", NULL, 901, d);
	const struct tp_rule *r;
	char want[4200], cwd[4096];

	ck_assert_ptr_nonnull(p);
	r = tp_policy_lookup(p, 465, NULL);
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	/* relative to the file that names it; absolute, with ".." folded, once resolved */
	if (work_dir()[0] == '/')
		snprintf(want, sizeof(want), "%s/certs/rsa.pem", work_dir());
	else
		snprintf(want, sizeof(want), "%s/%s/certs/rsa.pem", cwd, work_dir());
	ck_assert_str_eq(r->certificate, want);
	ck_assert_int_eq(r->certificate[0], '/');
	tp_policy_free(&p);
	tp_diags_free(&d);
}
END_TEST

/* --- cipher classes against wolfSSL's own lists -------------------------- */

/* wolf_suites - every suite this wolfSSL offers, as "NAME IANA" pairs */
struct wolf_suite {
	char name[64], iana[80];
};

static int in_list(const char *list, const char *name)
{
	return tp_list_has(list, name, ':');
}

static int wolf_suites(struct wolf_suite *out, int max)
{
	static char list[16384];
	int n = 0;

	ck_assert_int_eq(wolfSSL_get_ciphers(list, sizeof(list)), WOLFSSL_SUCCESS);
	for (unsigned code = 0; code <= 0xffff && n < max; code++) {
		const char *nm = wolfSSL_get_cipher_name_from_suite(code >> 8, code & 0xff);
		const char *ia = wolfSSL_get_cipher_name_iana_from_suite(code >> 8, code & 0xff);
		if (nm == NULL || ia == NULL || strcmp(nm, "None") == 0 || !in_list(list, nm))
			continue;
		snprintf(out[n].name, sizeof(out[n].name), "%s", nm);
		snprintf(out[n].iana, sizeof(out[n].iana), "%s", ia);
		n++;
	}
	return n;
}

/* banned_by_iana - the test's own reading of the IANA names, not the library's */
static int banned_by_iana(const char *iana)
{
	return strstr(iana, "RC4") != NULL || strstr(iana, "3DES") != NULL ||
	       strstr(iana, "_NULL_") != NULL || strstr(iana, "WITH_NULL") != NULL ||
	       strncmp(iana, "TLS_SHA", 7) == 0 || strstr(iana, "_anon_") != NULL ||
	       strstr(iana, "EXPORT") != NULL;
}

START_TEST(test_bans_against_wolfssl)
{
	struct wolf_suite ws[256];
	int n = wolf_suites(ws, 256), banned_seen = 0;
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p = load_text(
		"[global]\nprofile = legacy\ntls_by = daemon\nban_ciphers = RC4 3DES NULL aNULL EXPORT\n"
		"[port 465]\nprotocol = smtp\ntls = implicit\n", NULL, 902, d);
	const struct tp_rule *r;
	WOLFSSL_CTX *ctx;
	char all[8192];

	ck_assert_ptr_nonnull(p);
	r = tp_policy_lookup(p, 465, NULL);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_gt(n, 20);
	for (int i = 0; i < n; i++) {
		if (!banned_by_iana(ws[i].iana))
			continue;
		banned_seen++;
		ck_assert_msg(!in_list(r->tls12_suites, ws[i].name) &&
			      !in_list(r->tls13_suites, ws[i].name),
			      "%s (%s) is banned but selected", ws[i].name, ws[i].iana);
	}
	/* Debian's wolfSSL offers RC4, 3DES, NULL and anonymous suites: the
	 * bans must have had something to remove */
	ck_assert_int_ge(banned_seen, 8);
	/* every selected suite is one wolfSSL offers, and wolfSSL takes the list */
	snprintf(all, sizeof(all), "%s:%s", r->tls12_suites, r->tls13_suites);
	for (char *sp = NULL, *t = strtok_r(all, ":", &sp); t; t = strtok_r(NULL, ":", &sp)) {
		int found = 0;

		for (int i = 0; i < n; i++)
			found |= strcmp(ws[i].name, t) == 0;
		ck_assert_msg(found, "%s selected but not offered by wolfSSL", t);
	}
	ck_assert_ptr_nonnull(strstr(r->tls12_suites, "ECDHE-RSA-AES128-GCM-SHA256"));
	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	snprintf(all, sizeof(all), "%s:%s", r->tls13_suites, r->tls12_suites);
	ck_assert_int_eq(wolfSSL_CTX_set_cipher_list(ctx, all), WOLFSSL_SUCCESS);
	wolfSSL_CTX_free(ctx);
	wolfSSL_Cleanup();
	tp_policy_free(&p);
	tp_diags_free(&d);
}
END_TEST

/* one row per class: the IANA-name test that defines membership */
static const struct {
	const char *cls;
	const char *needle;	/* substring of the IANA name */
} class_rows[] = {
	{ "RC4", "_RC4_" },
	{ "3DES", "_3DES_" },
	{ "aNULL", "_anon_" },
	{ "PSK", "PSK_" },
	{ "CAMELLIA", "_CAMELLIA_" },
	{ "CCM8", "_CCM_8" },
	{ "CHACHA20-OLD", "CHACHA20_OLD" },
	{ "DHE", "TLS_DHE_" },
	{ "EXPORT", "EXPORT" },
};

START_TEST(test_class_membership)
{
	struct wolf_suite ws[256];
	int n = wolf_suites(ws, 256);
	const struct tp_cipher_class *c = tp_cipher_class_lookup(class_rows[_i].cls);

	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < n; i++) {
		const struct tp_suite *s = tp_suite_lookup(ws[i].name);
		int want = strstr(ws[i].iana, class_rows[_i].needle) != NULL;

		ck_assert_msg(s != NULL, "%s offered by wolfSSL but unknown to tlspolicy", ws[i].name);
		ck_assert_msg(((s->classes & c->bit) != 0) == want, "%s: class %s should %sinclude %s",
			      ws[i].iana, c->name, want ? "" : "not ", ws[i].name);
	}
}
END_TEST

START_TEST(test_profiles)
{
	size_t n;
	const struct tp_suite *s = tp_suites(&n);
	const struct tp_profile *modern = tp_profile_lookup("modern");
	const struct tp_profile *inter = tp_profile_lookup("intermediate");
	const struct tp_profile *legacy = tp_profile_lookup("legacy");
	const unsigned never = TP_CLASS_NULL | TP_CLASS_ANULL | TP_CLASS_EXPORT |
			       TP_CLASS_RC4 | TP_CLASS_DES | TP_CLASS_MD5 | TP_CLASS_PSK;

	ck_assert_int_eq(modern->floor, TP_TLS13);
	ck_assert_int_eq(inter->floor, TP_TLS12);
	ck_assert_int_eq(legacy->floor, TP_TLS10);
	for (size_t i = 0; i < n; i++) {
		if (modern->allows(&s[i]))
			ck_assert_msg(s[i].tls13, "modern allows %s", s[i].name);
		if (inter->allows(&s[i]))
			ck_assert_msg(!(s[i].classes & (never | TP_CLASS_CBC | TP_CLASS_SHA1 | TP_CLASS_KRSA | TP_CLASS_3DES)),
				      "intermediate allows %s", s[i].name);
		if (legacy->allows(&s[i]))
			ck_assert_msg(!(s[i].classes & never), "legacy allows %s", s[i].name);
		/* each profile contains the stricter one */
		if (modern->allows(&s[i]))
			ck_assert(inter->allows(&s[i]));
		if (inter->allows(&s[i]))
			ck_assert(legacy->allows(&s[i]));
	}
}
END_TEST

/* --- the key table ----------------------------------------------------------- */

START_TEST(test_key_table)
{
	for (int i = 0; i < TP_KEY_COUNT; i++) {
		const struct tp_key *k = &tp_keys[i];
		struct tp_diags *d = tp_diags_new();
		struct tp_where w = { "x", 1, "global" };

		ck_assert_msg(k->name != NULL && k->help != NULL && k->doc != NULL,
			      "key %d incomplete", i);
		ck_assert_ptr_eq(tp_key_lookup(k->name), k);
		ck_assert_msg(k->def != NULL || k->def_doc != NULL, "%s: no default in words", k->name);
		if (k->def != NULL)
			ck_assert_msg(tp_key_check(k, k->def, &w, d) == 0,
				      "%s: default \"%s\" fails its own check", k->name, k->def);
		if (k->type == TP_TYPE_ENUM)
			ck_assert_ptr_nonnull(k->values);
		tp_diags_free(&d);
	}
	ck_assert_ptr_null(tp_key_lookup("min_protcol"));
	ck_assert_str_eq(tp_key_suggest("min_protcol"), "min_protocol");
	ck_assert_str_eq(tp_key_suggest("ciphers"), "ban_ciphers");
	ck_assert_ptr_null(tp_key_suggest("completely_unrelated"));
}
END_TEST

/* keys_in_text - the "name =" keys of an INI text, as " a b c " */
static void keys_in_text(const char *text, char *out, size_t len)
{
	char *copy = strdup(text), *sp = NULL;

	snprintf(out, len, " ");
	for (char *l = strtok_r(copy, "\n", &sp); l; l = strtok_r(NULL, "\n", &sp)) {
		char name[64], word[80];

		if (sscanf(l, " %63[a-z_] =", name) != 1 || strchr(l, '=') == NULL)
			continue;
		snprintf(word, sizeof(word), " %s ", name);
		if (strstr(out, word) == NULL && strlen(out) + strlen(name) + 2 < len) {
			strcat(out, name);
			strcat(out, " ");
		}
	}
	free(copy);
}

START_TEST(test_documented_keys)
{
	/* doc/design.md's policy example and the table name the same keys */
	const char *src = getenv("TESTS_SRC");
	char path[4096], keys[4096] = "";
	char *design, *block, *end;

	snprintf(path, sizeof(path), "%s/../doc/design.md", src ? src : "tests");
	design = slurp(path);
	if (design == NULL) {
		fprintf(stderr, "note: %s not found; DESIGN.md comparison not run\n", path);
		return;
	}
	block = strstr(design, "```ini");
	ck_assert_ptr_nonnull(block);
	end = strstr(block + 6, "```");
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	keys_in_text(block, keys, sizeof(keys));
	for (int i = 0; i < TP_KEY_COUNT; i++) {
		char word[80];

		snprintf(word, sizeof(word), " %s ", tp_keys[i].name);
		ck_assert_msg(strstr(keys, word) != NULL, "key %s is not in doc/design.md (%s)",
			      tp_keys[i].name, keys);
	}
	for (char *sp = NULL, *t = strtok_r(keys, " ", &sp); t; t = strtok_r(NULL, " ", &sp))
		ck_assert_msg(tp_key_lookup(t) != NULL, "doc/design.md documents %s, the table lacks it", t);
	free(design);
}
END_TEST

/* --- diagnostics and helpers ---------------------------------------------------- */

START_TEST(test_diag_format)
{
	struct tp_diags *d = tp_diags_new();
	char *s;

	tp_diags_add(d, TP_ERROR, "a.conf", 14, "port 587", "tls", "tls", "\"%s\" is ambiguous", "tls");
	tp_diags_add(d, TP_ERROR, "a.conf", 14, "port 587", "tls", "tls", "\"%s\" is ambiguous", "tls");
	tp_diags_add(d, TP_WARNING, "a.conf", 3, "global", NULL, NULL, "section note");
	tp_diags_add(d, TP_ERROR, "b.conf", 0, NULL, NULL, NULL, "cannot read");
	ck_assert_uint_eq(tp_diags_len(d), 3);	/* the duplicate is dropped */
	ck_assert_uint_eq(tp_diags_count(d, TP_ERROR), 2);
	s = tp_diag_format(tp_diags_get(d, 0));
	ck_assert_str_eq(s, "a.conf:14: error: [port 587] tls: \"tls\" is ambiguous");
	free(s);
	s = tp_diag_format(tp_diags_get(d, 1));
	ck_assert_str_eq(s, "a.conf:3: warning: [global]: section note");
	free(s);
	s = tp_diag_format(tp_diags_get(d, 2));
	ck_assert_str_eq(s, "b.conf: error: cannot read");
	free(s);
	{
		const char *files[] = { "b.conf", "a.conf" };

		tp_diags_sort(d, files, 2);
		ck_assert_str_eq(tp_diags_get(d, 0)->file, "b.conf");
		ck_assert_int_eq(tp_diags_get(d, 1)->line, 3);
		ck_assert_int_eq(tp_diags_get(d, 2)->line, 14);
	}
	tp_diags_free(&d);
	ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_suggest)
{
	static const char *const words[] = { "implicit", "starttls", "opportunistic", "refuse" };

	ck_assert_uint_eq(tp_edit_distance("starttsl", "starttls"), 1);
	ck_assert_uint_eq(tp_edit_distance("STARTTLS", "starttls"), 0);
	ck_assert_str_eq(tp_suggest("implict", words, 4), "implicit");
	ck_assert_str_eq(tp_suggest("oportunistic", words, 4), "opportunistic");
	ck_assert_ptr_null(tp_suggest("banana", words, 4));
	ck_assert_int_eq(tp_version_parse("tlsv1.2"), TP_TLS12);
	ck_assert_int_eq(tp_version_parse("SSLv3"), TP_VERSION_NONE);
}
END_TEST

START_TEST(test_missing_file)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p = tp_policy_load("/nonexistent/tlspolicy.conf", 0, d);
	char *s;

	ck_assert_ptr_null(p);
	ck_assert_uint_eq(tp_diags_len(d), 1);
	s = tp_diag_format(tp_diags_get(d, 0));
	ck_assert_str_eq(s, "/nonexistent/tlspolicy.conf: error: cannot read the policy file: No such file or directory");
	free(s);
	tp_diags_free(&d);
}
END_TEST

START_TEST(test_default_path)
{
	setenv("TLSPOLICY_CONF", "/tmp/x.conf", 1);
	ck_assert_str_eq(tp_policy_default_path(), "/tmp/x.conf");
	unsetenv("TLSPOLICY_CONF");
	ck_assert_str_eq(tp_policy_default_path(), TP_SYSCONFDIR "/tlspolicy/tlspolicy.conf");
}
END_TEST

static Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *t;

	list_invalid();
	t = tcase_create("invalid-golden");
	tcase_add_test(t, test_invalid_table_size);
	tcase_add_loop_test(t, test_invalid_golden, 0, invalid_count);
	suite_add_tcase(s, t);

	t = tcase_create("valid");
	tcase_add_loop_test(t, test_valid_rows, 0, (int)(sizeof(valid_rows) / sizeof(valid_rows[0])));
	tcase_add_test(t, test_value_sources);
	tcase_add_test(t, test_relative_paths);
	suite_add_tcase(s, t);

	t = tcase_create("ciphers");
	tcase_add_test(t, test_bans_against_wolfssl);
	tcase_add_loop_test(t, test_class_membership, 0, (int)(sizeof(class_rows) / sizeof(class_rows[0])));
	tcase_add_test(t, test_profiles);
	suite_add_tcase(s, t);

	t = tcase_create("keys");
	tcase_add_test(t, test_key_table);
	tcase_add_test(t, test_documented_keys);
	suite_add_tcase(s, t);

	t = tcase_create("helpers");
	tcase_add_test(t, test_diag_format);
	tcase_add_test(t, test_suggest);
	tcase_add_test(t, test_missing_file);
	tcase_add_test(t, test_default_path);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(policy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
