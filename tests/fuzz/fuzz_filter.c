/*
 * fuzz_filter.c - libFuzzer target for the protocol filters
 *
 * Input format (tests/unit/check_filter --seeds writes the unit table in it):
 *
 *   byte 0   protocol: 0 SMTP, 1 IMAP, 2 POP3 (mod 3); ignored when the
 *            target is built for one protocol (-DTP_FUZZ_PROTOCOL=TP_PROTO_SMTP
 *            etc.: make fuzz builds fuzz_smtp, fuzz_imap and fuzz_pop3 so)
 *   byte 1   tls mode: 0 implicit, 1 starttls, 2 opportunistic (mod 3)
 *   byte 2   bit 0: tls_by = daemon; bit 1: enforce = audit
 *   then steps, each: kind (low 2 bits: 0 client, 1 daemon, 2 TLS done,
 *   3 credential probe), length (16 bits, little-endian), that many bytes
 *   (fewer if the input ends).
 *
 * The session runs twice: each step in one call, and each step cut into
 * pieces of 1 to 8 bytes.  Checked, besides ASan and UBSan:
 *
 *   - the two runs give the same bytes, flags and events, step by step;
 *   - rc is -1 exactly when CLOSE is set, and a closed filter stays
 *     closed and silent;
 *   - output is bounded by the input: no call returns more than a fixed
 *     multiple of what it was given plus the bounded queue;
 *   - between START_TLS and tls_done nothing reaches either side, and the
 *     call that sets START_TLS ends its output with the upgrade reply;
 *     START_TLS only with tls_by = module, EXPECT_TLS only with daemon;
 *   - before TLS, enforcing: SMTP and POP3 in starttls mode forward only
 *     command lines whose verb the protocol table allows (EHLO HELO NOOP
 *     RSET QUIT, CAPA QUIT, and STARTTLS/STLS when the daemon does TLS),
 *     and POP3 in opportunistic mode never forwards USER PASS APOP AUTH;
 *   - a credential probe (step kind 3), sent where the filter expects a
 *     command, never puts its password marker into to_server.
 *
 * Build (from a configured tree; make fuzz builds the three one-protocol
 * targets and runs them on copies of tests/fuzz/corpus/smtp, imap, pop3):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Imodule -Ipolicy \
 *     module/filter*.c policy/util.c tests/fuzz/fuzz_filter.c -o fuzz_filter
 *   cp -R tests/fuzz/corpus/smtp tests/fuzz/corpus/imap tests/fuzz/corpus/pop3 ...
 *   ./fuzz_filter -dict=tests/fuzz/filter.dict -max_total_time=120 CORPUS_COPY
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filter.h"
#include "bytes.h"
#include "filter_int.h"
#include "replies.h"

#define MARKER "S3CR3T-P4SS"

/* the protocol of a session: fixed at build time, or byte 0 */
#ifdef TP_FUZZ_PROTOCOL
#define PROTOCOL_OF(byte) TP_FUZZ_PROTOCOL
#else
#define PROTOCOL_OF(byte) ((enum tp_protocol)((byte) % 3))
#endif

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_filter: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* one run of the session */
struct run {
	struct tp_filter *f;
	struct tp_filter_config cfg;
	int upgrading;		/* START_TLS or EXPECT_TLS seen, tls_done not called */
	int tls;
	int expect_tls;
	int closed;
	struct bytes pre;	/* to_server before TLS, for the verb check */
	/* this step */
	struct bytes ts, tc, ev;
	unsigned flags;
	int full;		/* an event array filled up */
};

static const char *const reasons[] = {
	"auth-before-tls", "command-before-tls", "injection", "tls-already-active",
	"line-too-long", "tls-on-starttls-port", "queue-full", "server-during-upgrade",
	"port-disabled", "out-of-memory", "nonsync-literal", "ambiguous-end-of-data",
};

static void check_event(const struct tp_filter_event *e)
{
	int known = e->reason == NULL;

	CHECK(e->action != NULL);
	for (size_t i = 0; !known && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		known = strcmp(e->reason, reasons[i]) == 0;
	CHECK(known);
	CHECK((e->bytes > 0) == (strcmp(e->action, "discard") == 0));
}

/* add_event - like check_filter.c: discard counts in a row are summed */
static void add_event(struct bytes *ev, const struct tp_filter_event *e)
{
	char tok[128];

	snprintf(tok, sizeof(tok), "%s/%s/%c;", e->action, e->reason ? e->reason : "-",
		 e->bytes ? 'n' : '0');
	if (e->bytes == 0 || ev->len < strlen(tok) ||
	    memcmp(ev->p + ev->len - strlen(tok), tok, strlen(tok)) != 0)
		bytes_add(ev, tok, strlen(tok));
}

static const char *upgrade_reply(enum tp_protocol p)
{
	switch (p) {
	case TP_PROTO_SMTP:
		return TP_SMTP_GO_TLS "\r\n";
	case TP_PROTO_IMAP:
		return TP_IMAP_GO_TLS "\r\n";
	case TP_PROTO_POP3:
		return TP_POP3_GO_TLS "\r\n";
	}
	return "";
}

/* check_call - the invariants of one call */
static void check_call(struct run *r, int rc, const struct tp_filter_out *out, size_t in_len)
{
	const char *go = upgrade_reply(r->cfg.protocol);
	size_t golen = strlen(go);

	CHECK(rc == 0 || rc == -1);
	CHECK((rc == -1) == !!(out->flags & TP_FILTER_CLOSE));
	CHECK(out->nevents <= TP_FILTER_MAX_EVENTS);
	CHECK(out->to_server_len <= in_len + TPF_HOLD_MAX);
	CHECK(out->to_client_len <= 100 * in_len + TPF_QUEUE_MAX * 256 + 256);
	if (r->closed)
		CHECK(rc == -1 && out->to_server_len == 0 && out->to_client_len == 0);
	if (r->upgrading && !r->expect_tls)
		CHECK(out->to_server_len == 0 && out->to_client_len == 0);
	if (out->flags & TP_FILTER_START_TLS) {
		CHECK(r->cfg.tls_by == TP_BY_MODULE && !r->tls && !r->upgrading);
		CHECK(out->to_client_len >= golen &&
		      memcmp(out->to_client + out->to_client_len - golen, go, golen) == 0);
	}
	if (out->flags & TP_FILTER_EXPECT_TLS)
		CHECK(r->cfg.tls_by == TP_BY_DAEMON && !r->tls && !r->upgrading);
	for (size_t i = 0; i < out->nevents; i++)
		check_event(&out->events[i]);
}

static void call(struct run *r, int server, const uint8_t *p, size_t n)
{
	struct tp_filter_out out;
	int rc = server ? tp_filter_server(r->f, p, n, &out) : tp_filter_client(r->f, p, n, &out);

	check_call(r, rc, &out, n);
	bytes_add(&r->ts, out.to_server, out.to_server_len);
	bytes_add(&r->tc, out.to_client, out.to_client_len);
	if (!r->tls && !r->expect_tls)
		bytes_add(&r->pre, out.to_server, out.to_server_len);
	r->flags |= out.flags;
	r->full |= out.nevents == TP_FILTER_MAX_EVENTS;
	for (size_t i = 0; i < out.nevents; i++)
		add_event(&r->ev, &out.events[i]);
	if (out.flags & (TP_FILTER_START_TLS | TP_FILTER_EXPECT_TLS))
		r->upgrading = 1;
	if (out.flags & TP_FILTER_EXPECT_TLS)
		r->expect_tls = 1;
	if (rc < 0)
		r->closed = 1;
}

/* --- the verb checks -------------------------------------------------------------- */

/* is_sep - the separators of module/filter.c, written out again on purpose */
static int is_sep(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/*
 * verb_is - is the first word of the line one of verbs?  The line is read
 * up to a NUL, as Postfix and Dovecot read it (they parse C strings)
 */
static int verb_is(const uint8_t *line, size_t len, const char *const *verbs)
{
	size_t i = 0, n = 0;
	const uint8_t *nul = memchr(line, '\0', len);

	if (nul != NULL)
		len = (size_t)(nul - line);

	while (i < len && is_sep(line[i]))
		i++;
	while (i + n < len && !is_sep(line[i + n]))
		n++;
	for (; *verbs != NULL; verbs++)
		if (strlen(*verbs) == n && strncasecmp((const char *)line + i, *verbs, n) == 0)
			return 1;
	return 0;
}

/*
 * check_verbs - the lines forwarded before TLS, where the filter leaves
 * no room for data (no DATA, BDAT or SASL exchange is ever forwarded)
 */
static void check_verbs(const struct run *r)
{
	static const char *const smtp_ok[] = { "EHLO", "HELO", "NOOP", "RSET", "QUIT", NULL };
	static const char *const smtp_daemon[] = { "STARTTLS", NULL };
	static const char *const pop3_ok[] = { "CAPA", "QUIT", NULL };
	static const char *const pop3_daemon[] = { "STLS", NULL };
	static const char *const pop3_auth[] = { "USER", "PASS", "APOP", "AUTH", NULL };
	const struct tp_filter_config *c = &r->cfg;
	int strict = c->mode == TP_TLS_STARTTLS, daemon = c->tls_by == TP_BY_DAEMON;
	size_t start = 0;

	if (c->audit || c->protocol == TP_PROTO_IMAP ||
	    (c->protocol == TP_PROTO_SMTP && !strict) || c->mode == TP_TLS_IMPLICIT)
		return;
	for (size_t i = 0; i < r->pre.len; i++) {
		const uint8_t *line = r->pre.p + start;
		size_t len = i + 1 - start;

		if (r->pre.p[i] != '\n')
			continue;
		start = i + 1;
		if (c->protocol == TP_PROTO_SMTP)
			CHECK(verb_is(line, len, smtp_ok) || (daemon && verb_is(line, len, smtp_daemon)));
		else if (strict)
			CHECK(verb_is(line, len, pop3_ok) || (daemon && verb_is(line, len, pop3_daemon)));
		else
			CHECK(!verb_is(line, len, pop3_auth));
	}
}

/* --- the credential probe --------------------------------------------------------- */

static const char *const smtp_probes[] = {
	"AUTH PLAIN " MARKER "\r\n", "auth login " MARKER "\r\n", "AUTH\tPLAIN " MARKER "\n",
};
static const char *const smtp_strict_probes[] = {
	"MAIL FROM:<" MARKER ">\r\n", "VRFY " MARKER "\r\n",
};
static const char *const imap_probes[] = {
	"t1 LOGIN bob " MARKER "\r\n", "t2 AUTHENTICATE PLAIN " MARKER "\r\n",
	"t3 LOGIN bob {11+}\r\n" MARKER "\r\n", "t4 login {3+}\r\nbob " MARKER "\r\n",
	"t5 LOGIN bob \"" MARKER "\"\n",
};
static const char *const pop3_probes[] = {
	"USER " MARKER "\r\n", "PASS " MARKER "\r\n", "APOP bob " MARKER "\r\n",
	"AUTH PLAIN " MARKER "\r\n",
};

/* probe_of - a credential command for this session, chosen by sel */
static const char *probe_of(const struct tp_filter_config *c, unsigned sel)
{
	switch (c->protocol) {
	case TP_PROTO_SMTP:
		if (c->mode == TP_TLS_STARTTLS && (sel & 4))
			return smtp_strict_probes[sel % 2];
		return smtp_probes[sel % 3];
	case TP_PROTO_IMAP:
		return imap_probes[sel % 5];
	case TP_PROTO_POP3:
		return pop3_probes[sel % 4];
	}
	return NULL;
}

/* at_command - white box: the filter expects a new command, before TLS, enforcing */
static int at_command(const struct tp_filter *f)
{
	return f->cstate == TPF_C_LINE && f->role == TPF_R_CMD && f->cline_len == 0 &&
	       !f->tls && !f->cfg.audit && !f->dead && !f->upgrading;
}

static int has_marker(const struct bytes *b, size_t from)
{
	size_t m = strlen(MARKER);

	for (size_t i = from; i + m <= b->len; i++)
		if (memcmp(b->p + i, MARKER, m) == 0)
			return 1;
	return 0;
}

/* --- one session ------------------------------------------------------------------- */

static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void step_begin(struct run *r)
{
	r->ts.len = r->tc.len = r->ev.len = 0;
	r->flags = 0;
	r->full = 0;
}

/* feed - one client or daemon step, whole or in pieces */
static void feed(struct run *r, int server, const uint8_t *p, size_t n, uint32_t *rnd)
{
	if (rnd == NULL || n == 0) {
		call(r, server, p, n);
		return;
	}
	for (size_t at = 0; at < n;) {
		size_t k = 1 + next_rand(rnd) % 8;

		if (k > n - at)
			k = n - at;
		call(r, server, p + at, k);
		at += k;
	}
}

static void tls_done(struct run *r)
{
	tp_filter_tls_done(r->f);
	r->upgrading = 0;
	r->tls = 1;
}

static int bytes_eq(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* same - the two runs agree on the step */
static void same(const struct run *a, const struct run *b)
{
	CHECK(bytes_eq(&a->ts, &b->ts));
	CHECK(bytes_eq(&a->tc, &b->tc));
	CHECK(a->flags == b->flags);
	if (!a->full && !b->full && !bytes_eq(&a->ev, &b->ev)) {
		fprintf(stderr, "events \"%.*s\" and, cut in pieces, \"%.*s\"\n",
			(int)a->ev.len, (const char *)a->ev.p, (int)b->ev.len, (const char *)b->ev.p);
		CHECK(!"the same events");
	}
}

static void probe(struct run *a, struct run *b, unsigned sel, uint32_t *rnd)
{
	const char *p;
	size_t before;

	CHECK(at_command(a->f) == at_command(b->f));
	if (!at_command(a->f) || a->cfg.mode == TP_TLS_IMPLICIT)
		return;
	p = probe_of(&a->cfg, sel);
	before = a->ts.len;
	feed(a, 0, (const uint8_t *)p, strlen(p), NULL);
	feed(b, 0, (const uint8_t *)p, strlen(p), rnd);
	CHECK(!has_marker(&a->ts, before));
	CHECK(!has_marker(&b->ts, before));
}

static void run_free(struct run *r)
{
	tp_filter_free(&r->f);
	CHECK(r->f == NULL);
	free(r->pre.p);
	free(r->ts.p);
	free(r->tc.p);
	free(r->ev.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum tp_tls_mode modes[] = { TP_TLS_IMPLICIT, TP_TLS_STARTTLS,
						  TP_TLS_OPPORTUNISTIC };
	struct run a = { 0 }, b = { 0 };
	uint32_t rnd = 2463534242u;
	size_t at = 3;

	if (size < 3)
		return 0;
	a.cfg = (struct tp_filter_config){ PROTOCOL_OF(data[0]), modes[data[1] % 3],
					   (data[2] & 1) ? TP_BY_DAEMON : TP_BY_MODULE,
					   (data[2] >> 1) & 1, 0 };
	b.cfg = a.cfg;
	a.f = tp_filter_new(&a.cfg);
	b.f = tp_filter_new(&b.cfg);
	CHECK(a.f != NULL && b.f != NULL);
	a.tls = b.tls = a.cfg.mode == TP_TLS_IMPLICIT;
	for (size_t i = 0; i < size; i++)
		rnd = rnd * 31 + data[i];
	rnd |= 1;
	while (at + 3 <= size) {
		unsigned kind = data[at] & 3;
		size_t n = (size_t)data[at + 1] | (size_t)data[at + 2] << 8;

		at += 3;
		if (n > size - at)
			n = size - at;
		step_begin(&a);
		step_begin(&b);
		if (kind == 0 || kind == 1) {
			feed(&a, kind == 1, data + at, n, NULL);
			feed(&b, kind == 1, data + at, n, &rnd);
		} else if (kind == 2 && (a.upgrading || a.cfg.mode == TP_TLS_IMPLICIT)) {
			tls_done(&a);
			tls_done(&b);
		} else if (kind == 3) {
			probe(&a, &b, n > 0 ? data[at] : 0, &rnd);
		}
		same(&a, &b);
		at += n;
	}
	check_verbs(&a);
	check_verbs(&b);
	run_free(&a);
	run_free(&b);
	return 0;
}
