/*
 * check_keyhelper.c - tlspolicyd's key helper (module/keyhelper.h), for real
 *
 * The helper is forked as in tlspolicyd and reads the policy itself; the
 * test is the unprivileged side.  The attack is a compromised tlspolicyd
 * asking for files the policy root published does not name: it sends the
 * paths of a policy of its own making (a private_key of /etc/shadow, a key
 * in the certificates' directory that no rule names).  Each row: the
 * policy the helper reads, the one the asker loaded, and for each path
 * whether a descriptor comes back (and reads as that file) or what the
 * refusal says.  Needs $TESTS_WORK (tests/work with the generated
 * certificates).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyhelper.h"
#include "policy.h"
#include "tplog.h"

static char helper_policy[4096];	/* what policy_path() gives the helper; "" for none */

static const char *policy_path(char *buf, size_t size)
{
	if (helper_policy[0] == '\0') {
		snprintf(buf, size, "no policy (test)");
		return NULL;
	}
	snprintf(buf, size, "%s", helper_policy);
	return buf;
}

static const char *work(void)
{
	const char *w = getenv("TESTS_WORK");

	return w ? w : "tests/work";
}

/* write_policy - a one-port policy naming cert and key; its path in out */
static void write_policy(const char *name, const char *cert, const char *key, char *out, size_t size)
{
	FILE *f;

	snprintf(out, size, "%s/keyhelper-%d-%s.conf", work(), (int)getpid(), name);
	f = fopen(out, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[global]\ncertificate = %s\nprivate_key = %s\n\n[port 465]\nprotocol = smtp\n"
		"tls = implicit\n", cert, key);
	fclose(f);
}

static struct tp_policy *load(const char *path)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p = tp_policy_load(path, 0, d);

	tp_diags_free(&d);
	ck_assert_ptr_nonnull(p);
	return p;
}

/* same_bytes - fd reads exactly the file at path */
static int same_bytes(int fd, const char *path)
{
	char a[8192], b[8192];
	FILE *f = fopen(path, "r");
	ssize_t n = read(fd, a, sizeof(a));
	size_t m = f != NULL ? fread(b, 1, sizeof(b), f) : 0;

	if (f != NULL)
		fclose(f);
	return n > 0 && (size_t)n == m && memcmp(a, b, m) == 0;
}

static const struct row {
	const char *name;
	const char *helper_key;		/* the policy the helper reads: certs/rsa.pem and this key; NULL: none */
	const char *asked_key;		/* the policy the asker loaded: certs/rsa.pem and this key */
	int cert_ok, key_ok;		/* descriptors expected back */
	const char *refusal;		/* in the error of a refused file */
} rows[] = {
	{ "the policy's own files", "rsa.key", "rsa.key", 1, 1, NULL },
	{ "/etc/shadow as the key", "rsa.key", "/etc/shadow", 1, 0, "not a certificate or private_key" },
	{ "a key no rule names", "rsa.key", "other.key", 1, 0, "not a certificate or private_key" },
	{ "the helper's policy is invalid", "encrypted.key", "encrypted.key", 0, 0,
	  "the policy is invalid as root reads it" },
	{ "no policy for the helper", NULL, "rsa.key", 0, 0, "the policy is invalid as root reads it" },
};

static void path_of(const char *key, char *out, size_t size)
{
	if (key[0] == '/')
		snprintf(out, size, "%s", key);
	else
		snprintf(out, size, "%s/certs/%s", work(), key);
}

START_TEST(test_helper)
{
	const struct row *r = &rows[_i];
	char cert[4096], hkey[4096], akey[4096], hconf[4096], aconf[4096], error[512] = "";
	struct tp_keyhelper *h;
	struct tp_keyfiles *files = NULL;
	struct tp_policy *asked;
	int fd;

	snprintf(cert, sizeof(cert), "%s/certs/rsa.pem", work());
	helper_policy[0] = '\0';
	if (r->helper_key != NULL) {
		path_of(r->helper_key, hkey, sizeof(hkey));
		write_policy("helper", cert, hkey, hconf, sizeof(hconf));
		snprintf(helper_policy, sizeof(helper_policy), "%s", hconf);
	}
	path_of(r->asked_key, akey, sizeof(akey));
	write_policy("asked", cert, akey, aconf, sizeof(aconf));
	asked = load(aconf);
	h = tp_keyhelper_start(policy_path);
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(tp_keyhelper_fetch(h, asked, &files, error, sizeof(error)), 0);

	fd = tp_keyfiles_open(files, cert, error, sizeof(error));
	ck_assert_msg((fd >= 0) == r->cert_ok, "%s: certificate: %s", r->name, error);
	if (fd >= 0) {
		ck_assert_msg(same_bytes(fd, cert), "%s: the certificate's descriptor reads another file", r->name);
		close(fd);
	}
	error[0] = '\0';
	fd = tp_keyfiles_open(files, akey, error, sizeof(error));
	ck_assert_msg((fd >= 0) == r->key_ok, "%s: key: %s", r->name, error);
	if (fd >= 0) {
		ck_assert_msg(same_bytes(fd, akey), "%s: the key's descriptor reads another file", r->name);
		close(fd);
	} else {
		ck_assert_msg(strstr(error, r->refusal) != NULL, "%s: refusal \"%s\"", r->name, error);
	}
	tp_keyfiles_free(&files);
	tp_keyhelper_stop(&h);
	tp_policy_free(&asked);
	unlink(aconf);
	if (r->helper_key != NULL)
		unlink(hconf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("keyhelper");
	TCase *tc = tcase_create("helper");
	SRunner *sr;
	int failed;

	tp_log_open(1);		/* the helper's refusals go to stderr, into the test's log */
	tcase_add_loop_test(tc, test_helper, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);		/* a row in a process of its own: a failed one leaves no helper */
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
