/*
 * check_handoff.c - unit tests of what the shim and tlspolicyd agree on
 * (Check): the ports file (published.h), relay names (relayname.h) and
 * the rate limit of refusal logs (ratelimit.h)
 *
 * Table-driven: one row per ports file, with the error it must give or the
 * address:port pairs it must and must not manage.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "published.h"
#include "ratelimit.h"
#include "relayname.h"

/* sa - "1.2.3.4:25", "[::1]:25" as a sockaddr */
static const struct sockaddr *sa(const char *text, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	int port = atoi(colon + 1);

	memset(ss, 0, sizeof(*ss));
	if (text[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - text - 2), text + 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET6, host, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		ck_assert_int_eq(inet_pton(AF_INET, host, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

#define HEAD "generation 3\nrelay_socket @tlspolicy\n"

static const struct {
	const char *text;
	const char *error;		/* NULL: parses */
	const char *managed[4];		/* local addresses handed over */
	const char *untouched[4];	/* and left alone */
} rows[] = {
	{ HEAD "port * 25\n", NULL,
	  { "127.0.0.1:25", "10.0.0.1:25", "[::1]:25", "[::ffff:127.0.0.2]:25" },
	  { "127.0.0.1:26", "[::1]:587" } },
	{ HEAD "port 127.0.0.1 587\n", NULL,
	  { "127.0.0.1:587", "[::ffff:127.0.0.1]:587" },
	  { "127.0.0.2:587", "[::1]:587", "[::ffff:127.0.0.2]:587", "127.0.0.1:25" } },
	{ HEAD "port ::1 993\nport 127.0.0.1 993\n", NULL,
	  { "[::1]:993", "127.0.0.1:993" }, { "[::2]:993", "127.0.0.2:993" } },
	{ "# a comment, with more than four words in it\n" HEAD "user tlspolicy 998\n\n  # indented\n", NULL,
	  { NULL }, { "127.0.0.1:25" } },
	{ HEAD "port 25\n", "line 3: not a line of the ports file", { NULL }, { NULL } },
	{ HEAD "port * 0\n", "line 3: bad port line, or too many", { NULL }, { NULL } },
	{ HEAD "port * 65536\n", "line 3: bad port line, or too many", { NULL }, { NULL } },
	{ HEAD "port * 25x\n", "line 3: bad port line, or too many", { NULL }, { NULL } },
	{ HEAD "port example.org 25\n", "line 3: bad port line, or too many", { NULL }, { NULL } },
	{ HEAD "port * 25 extra\n", "line 3: not a line of the ports file", { NULL }, { NULL } },
	{ HEAD "user tlspolicy\n", "line 3: not a line of the ports file", { NULL }, { NULL } },
	{ HEAD "user tlspolicy -1\n", "line 3: bad or repeated user", { NULL }, { NULL } },
	{ HEAD "user a 1\nuser b 2\n", "line 4: bad or repeated user", { NULL }, { NULL } },
	{ HEAD "generation 4\n", "line 3: bad or repeated generation", { NULL }, { NULL } },
	{ "relay_socket @tlspolicy\n", "no generation line", { NULL }, { NULL } },
	{ "generation 1\n", "no relay_socket line", { NULL }, { NULL } },
	{ "generation 1\nrelay_socket tlspolicy\n", "line 2: bad or repeated relay_socket", { NULL }, { NULL } },
	{ "generation 0\nrelay_socket @x\n", "line 1: bad or repeated generation", { NULL }, { NULL } },
	{ HEAD "ports * 25\n", "line 3: not a line of the ports file", { NULL }, { NULL } },
};

START_TEST(test_ports_rows)
{
	static struct tp_ports ports;
	struct sockaddr_storage ss;
	char error[128] = "";
	int rc = tp_ports_parse(rows[_i].text, &ports, error, sizeof(error));

	if (rows[_i].error != NULL) {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(error, rows[_i].error);
		return;
	}
	ck_assert_msg(rc == 0, "row %d: %s", _i, error);
	for (size_t i = 0; i < 4 && rows[_i].managed[i] != NULL; i++)
		ck_assert_msg(tp_ports_match(&ports, sa(rows[_i].managed[i], &ss)), "row %d: %s not managed", _i,
			      rows[_i].managed[i]);
	for (size_t i = 0; i < 4 && rows[_i].untouched[i] != NULL; i++)
		ck_assert_msg(!tp_ports_match(&ports, sa(rows[_i].untouched[i], &ss)), "row %d: %s managed", _i,
			      rows[_i].untouched[i]);
}
END_TEST

/* the writer's text is what the parser reads back, the same value */
START_TEST(test_ports_roundtrip)
{
	static struct tp_ports a, b;
	char error[128] = "", *text;

	ck_assert_int_eq(tp_ports_parse(HEAD "user mailtls 4242\nport * 25\nport 127.0.0.1 587\n"
					"port 2001:db8::1 993\n", &a, error, sizeof(error)), 0);
	text = tp_ports_text(&a);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\nuser mailtls 4242\nport * 25\nport 127.0.0.1 587\nport 2001:db8::1 993\n"));
	ck_assert_int_eq(tp_ports_parse(text, &b, error, sizeof(error)), 0);
	ck_assert_int_eq(b.generation, 3);
	ck_assert_str_eq(b.relay_socket, "@tlspolicy");
	ck_assert_str_eq(b.user, "mailtls");
	ck_assert_int_eq(b.have_uid, 1);
	ck_assert_int_eq(b.uid, 4242);
	ck_assert_int_eq(b.n, 3);
	ck_assert_mem_eq(b.entry, a.entry, sizeof(a.entry[0]) * a.n);
	free(text);
}
END_TEST

/* a name carries both addresses; two names for one connection differ */
START_TEST(test_relayname)
{
	struct sockaddr_storage c, l, out;
	struct sockaddr_un n1, n2;
	uint8_t nonce[TP_RELAYNAME_NONCE] = { 1 };
	socklen_t len1, len2, olen;
	char ip[INET6_ADDRSTRLEN];

	len1 = tp_relayname_make(&n1, sa("192.0.2.7:40000", &c), sa("127.0.0.1:587", &l), nonce);
	nonce[0] = 2;
	len2 = tp_relayname_make(&n2, (struct sockaddr *)&c, (struct sockaddr *)&l, nonce);
	ck_assert_int_eq(len1, offsetof(struct sockaddr_un, sun_path) + TP_RELAYNAME_LEN);
	ck_assert_int_eq(len1, len2);
	ck_assert_int_ne(memcmp(&n1, &n2, len1), 0);
	ck_assert_int_eq(tp_relayname_parse(&n1, len1, 0, &out, &olen), 1);
	ck_assert_int_eq(out.ss_family, AF_INET);
	inet_ntop(AF_INET, &((struct sockaddr_in *)&out)->sin_addr, ip, sizeof(ip));
	ck_assert_str_eq(ip, "192.0.2.7");
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&out)->sin_port), 40000);
	ck_assert_int_eq(tp_relayname_parse(&n1, len1, 1, &out, &olen), 1);
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&out)->sin_port), 587);
	ck_assert_int_eq(tp_relayname_parse(&n1, len1 - 1, 0, &out, &olen), 0);
	n1.sun_path[10] = 1;		/* another layout's magic */
	ck_assert_int_eq(tp_relayname_parse(&n1, len1, 0, &out, &olen), 0);
}
END_TEST

/* the first per uid in full; the rest counted, summarised once per interval */
START_TEST(test_ratelimit)
{
	struct tp_ratelimit rl = { 0 };
	pid_t pid;
	uid_t uid;
	time_t t = 1000;

	ck_assert_int_eq(tp_ratelimit_admit(&rl, 10, 65534, t), 1);
	ck_assert_int_eq(tp_ratelimit_admit(&rl, 11, 65534, t), 0);
	ck_assert_int_eq(tp_ratelimit_admit(&rl, 12, 1000, t), 1);	/* another uid: news */
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(tp_ratelimit_admit(&rl, 13, 65534, t + 1), 0);
	ck_assert_uint_eq(tp_ratelimit_due(&rl, t + 1, &pid, &uid), 0);	/* not yet */
	ck_assert_uint_eq(tp_ratelimit_due(&rl, t + TP_RATELIMIT_INTERVAL, &pid, &uid), 101);
	ck_assert_int_eq(pid, 13);
	ck_assert_int_eq(uid, 65534);
	ck_assert_uint_eq(tp_ratelimit_due(&rl, t + TP_RATELIMIT_INTERVAL, &pid, &uid), 0);
	ck_assert_int_eq(tp_ratelimit_admit(&rl, 14, 65534, t + TP_RATELIMIT_INTERVAL), 0);
	/* a quiet interval with nothing left to say: the next one is news again */
	ck_assert_uint_eq(tp_ratelimit_due(&rl, t + 3 * TP_RATELIMIT_INTERVAL, &pid, &uid), 1);
	ck_assert_int_eq(tp_ratelimit_admit(&rl, 15, 65534, t + 5 * TP_RATELIMIT_INTERVAL), 1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("handoff");
	TCase *t = tcase_create("handoff");
	SRunner *r;
	int failed;

	tcase_add_loop_test(t, test_ports_rows, 0, (int)(sizeof(rows) / sizeof(rows[0])));
	tcase_add_test(t, test_ports_roundtrip);
	tcase_add_test(t, test_relayname);
	tcase_add_test(t, test_ratelimit);
	suite_add_tcase(s, t);
	r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed == 0 ? 0 : 1;
}
