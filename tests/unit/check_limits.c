/*
 * check_limits.c - what tlspolicyd counts a client as, and the counts
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "connlimits.h"

static const struct {
	const char *client, *key;
} keys[] = {
	{ "192.0.2.7:42594", "192.0.2.7" },
	{ "[::ffff:192.0.2.7]:42594", "192.0.2.7" },	/* dual-stack listener, same client */
	{ "[::FFFF:192.0.2.7]:1", "192.0.2.7" },
	{ "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:25", "2001:db8:1:2::/64" },
	{ "[2001:db8:1:2::1]:25", "2001:db8:1:2::/64" },
	{ "[2001:db8:1:3::1]:25", "2001:db8:1:3::/64" },
	{ "[::1]:993", "::/64" },
	{ "[fe80::1%lo]:25", "fe80::1%lo" },	/* not an address inet_pton reads: as written */
};

START_TEST(test_client_key)
{
	char out[TP_LIMITS_ADDR_MAX];

	tp_limits_client_addr(keys[_i].client, out);
	ck_assert_msg(strcmp(out, keys[_i].key) == 0, "%s: counted as %s, want %s",
		      keys[_i].client, out, keys[_i].key);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("keys");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_client_key, 0, (int)(sizeof(keys) / sizeof(keys[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
