/*
 * filter_imap.c - IMAP (RFC 9051, RFC 3501) with STARTTLS and
 * LOGINDISABLED (RFC 2595), PRIVACYREQUIRED (RFC 5530), literals
 * (RFC 7888 LITERAL+ and LITERAL-) and SASL-IR (RFC 4959)
 *
 * Before TLS: capability lists lose AUTH=*, SASL-IR, LITERAL+ and
 * LITERAL- and gain STARTTLS and LOGINDISABLED, LOGIN and AUTHENTICATE
 * are refused (their credentials dropped, a "{n}" literal never asked
 * for), a "{n+}" literal ends the session, STARTTLS is answered here.
 * Other commands pass: the daemon's not-authenticated state limits them.
 * After TLS: STARTTLS is refused and removed from capability lists.
 */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "filter_int.h"
#include "replies.h"

enum { V_OTHER, V_LOGIN, V_AUTHENTICATE, V_STARTTLS, V_IDLE, V_COMPRESS };

static const struct tpf_word verbs[] = {
	{ "LOGIN", V_LOGIN }, { "AUTHENTICATE", V_AUTHENTICATE },
	{ "STARTTLS", V_STARTTLS }, { "IDLE", V_IDLE }, { "COMPRESS", V_COMPRESS },
};

/* the kinds of daemon responses (RFC 9051 7) */
enum { RESP_CONT, RESP_STATUS, RESP_DATA, RESP_TAGGED };

static const struct tpf_word statuses[] = {
	{ "OK", 1 }, { "NO", 2 }, { "BAD", 3 }, { "BYE", 4 }, { "PREAUTH", 5 },
};

static int status_of(const uint8_t *w, size_t n)
{
	return tpf_word_id(w, n, statuses, sizeof(statuses) / sizeof(statuses[0]), 0);
}

/*
 * literal - does the line end in a literal's announcement, "{n}" or
 * "{n+}" (RFC 9051 4.3, RFC 7888)?  0: no; 1: synchronising; 2: not.
 */
static int literal(const uint8_t *line, size_t len, uint64_t *size)
{
	size_t end = tpf_line_text(line, len), i;
	int plus = 0;

	if (end == 0 || line[end - 1] != '}')
		return 0;
	end--;
	if (end > 0 && line[end - 1] == '+') {
		plus = 1;
		end--;
	}
	for (i = end; i > 0 && isdigit(line[i - 1]); i--)
		;
	if (i == 0 || line[i - 1] != '{' || tpf_parse_size(line + i, end - i, size) < 0)
		return 0;
	return plus ? 2 : 1;
}

/* --- the client's commands ------------------------------------------------------ */

/*
 * tag_char - RFC 9051 9: tag = 1*<any ASTRING-CHAR except "+">, as
 * Dovecot 2.3 reads it: printable ASCII but ( ) { % * " \ + and ]
 * (checked on the wire: "a]b NOOP" is "* BAD" to imap-login)
 */
static int tag_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+]", c) == NULL;
}

/*
 * tag_valid - would the daemon take the line's first word as a tag?
 * Dovecot reads the tag from the first octet up to SP, CR or LF; any
 * other octet on the way (TAB, NUL, 8-bit, a leading space) makes it
 * answer "* BAD Error in IMAP command received by server." and skip to
 * the next LF, ignoring the rest of the line, a literal's announcement
 * included: the literal's octets are then its next command.
 */
static int tag_valid(const uint8_t *line, size_t len, size_t at, size_t n)
{
	if (at != 0 || n == 0)
		return 0;
	if (n < len && line[n] != ' ' && line[n] != '\r' && line[n] != '\n')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!tag_char(line[i]))
			return 0;
	return 1;
}

static void parse(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_cmd *c = &f->cmd;
	size_t at, n = tpf_token(line, len, &at), at2, m;
	const uint8_t *tag = line + at, *rest = tag + n;

	c->taglen = n;
	memcpy(c->tag, tag, n < TPF_TAG_MAX ? n : TPF_TAG_MAX);
	c->tag_valid = tag_valid(line, len, at, n);
	c->tag_ok = c->tag_valid && n <= TPF_TAG_MAX;
	m = tpf_token(rest, len - at - n, &at2);
	c->verb = tpf_word_id(rest + at2, m, verbs, sizeof(verbs) / sizeof(verbs[0]),
			      V_OTHER);
}

static int decide(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;

	c->reply = NULL;
	c->upgrade = 0;
	c->id = 0;
	if (c->verb == V_STARTTLS)
		return tpf_upgrade(f, TP_IMAP_TLS_ACTIVE, TP_IMAP_GO_TLS);
	if (f->tls || (c->verb != V_LOGIN && c->verb != V_AUTHENTICATE))
		return TPF_FORWARD;
	/* RFC 2595 3.2, RFC 9051 6.2.3: LOGINDISABLED before TLS; and SASL too */
	if (!tpf_refuse(f, "auth-before-tls"))
		return TPF_FORWARD;
	c->reply = TP_IMAP_NEED_TLS;
	return TPF_DROP;
}

/*
 * nonsync_literal - does the line announce a "{n+}" literal (RFC 7888)
 * before TLS?  LITERAL+ and LITERAL- are not offered then (drop_cap), so
 * a client that sends one anyway does what no conforming client does,
 * and how the daemon reads what follows (its octets as data, or as
 * commands after a rejected tag) is framing the filter cannot be sure
 * of: the session ends with "* BYE", the line not forwarded.  Returns 1
 * if it did (auditing, it is logged, and 0).
 */
static int nonsync_literal(struct tp_filter *f, const uint8_t *line, size_t len)
{
	uint64_t size;

	if (f->tls || f->cmd.verb == V_STARTTLS || literal(line, len, &size) != 2)
		return 0;
	if (f->cfg.audit) {
		tpf_event(f, "would-refuse", "nonsync-literal", 0);
		return 0;
	}
	tpf_fail(f, "close", "nonsync-literal", TP_IMAP_NONSYNC_LITERAL);
	return 1;
}

static int client_head(struct tp_filter *f, const uint8_t *line, size_t len,
		       int complete)
{
	switch (f->role) {
	case TPF_R_DATA:
		return TPF_FORWARD;	/* a SASL response or IDLE's DONE */
	case TPF_R_CONT:
		break;
	case TPF_R_CMD:
		parse(f, line, len);
		f->cmd.dest = decide(f);
		break;
	}
	if (complete && nonsync_literal(f, line, len))
		return -1;
	return f->cmd.dest;
}

/*
 * end_local - a refused LOGIN or AUTHENTICATE, or STARTTLS, answered
 * here.  A "{n}" literal would need a continuation: the tagged NO comes
 * instead, so the client never sends it (DESIGN.md; RFC 9051 7.5).
 * Without SASL-IR the NO likewise comes before any challenge.  (A "{n+}"
 * literal never gets here: the filter answers only before TLS, where it
 * ends the session, and STARTTLS inside TLS, which announces none.)
 */
static void end_local(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;

	if (tpf_queue_local(f, c->tag, c->taglen, c->reply, c->upgrade) < 0)
		return;
	if (c->upgrade)
		tpf_client_discard(f);	/* RFC 2595 3.1: nothing pipelined after it counts */
	else
		tpf_client_line(f, TPF_R_CMD);
}

static int kind_of(int verb)
{
	switch (verb) {
	case V_STARTTLS:
		return TPF_K_STARTTLS;
	case V_AUTHENTICATE:
		return TPF_K_AUTH;
	case V_IDLE:
		return TPF_K_IDLE;
	case V_COMPRESS:
		return TPF_K_COMPRESS;
	default:
		return TPF_K_PLAIN;
	}
}

/*
 * open_command - queue a forwarded command under its tag.  A command
 * with no valid tag gets an untagged BAD from the daemon, so there is no
 * tagged reply to wait for and it is not queued.
 */
static int open_command(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;
	struct tpf_entry *e;

	c->id = 0;
	if (!c->tag_ok)
		return 0;
	e = tpf_queue_forward(f, kind_of(c->verb), 0);
	if (e == NULL)
		return -1;
	memcpy(e->tag, c->tag, c->taglen);
	e->taglen = c->taglen;
	c->id = e->id;
	return 0;
}

/*
 * literal_ok - a literal announced before TLS is bounded (DESIGN.md
 * "Limits"); with LITERAL- only, a non-synchronising one is bounded
 * by 4096 octets (RFC 7888 4).  0 if the session was closed.
 */
static int literal_ok(struct tp_filter *f, uint64_t size, int lit)
{
	uint64_t max = TPF_LITERAL_MAX;

	if (f->tls)
		return 1;
	if (lit == 2 && !f->s.imap.literal_plus)
		max = TPF_LITERAL_MINUS_MAX;
	if (size <= max)
		return 1;
	if (f->cfg.audit) {
		tpf_event(f, "would-refuse", "line-too-long", 0);
		return 1;
	}
	tpf_fail(f, "close", "line-too-long", TPF_IMAP_TOO_LONG);
	return 0;
}

/*
 * command_end - the last line of a forwarded command.  After
 * AUTHENTICATE, IDLE, COMPRESS and (inside TLS) STARTTLS what the client
 * sends next is data or commands depending on the daemon's reply: wait
 * for it.
 */
static void command_end(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;

	if (c->verb == V_STARTTLS && !f->tls)
		tpf_client_discard(f);	/* RFC 2595 3.1, the daemon doing TLS */
	else if (c->id != 0 && kind_of(c->verb) != TPF_K_PLAIN)
		tpf_client_wait(f, c->id);
	else
		tpf_client_line(f, TPF_R_CMD);
}

/*
 * end_forward - a line of a forwarded command ended.  A "{n}" literal is
 * sent only after the daemon's "+", so hold what follows until the daemon
 * has answered: a tagged NO instead means the next bytes are a command.
 * A line whose tag the daemon rejects announces no literal at all: the
 * daemon skips to the next LF (tag_valid).  A "{n+}" literal before TLS
 * ended the session in client_head; inside TLS it follows at once, and
 * so it does auditing before TLS if the daemon offered LITERAL+ or
 * LITERAL-: a daemon without them would run the literal as commands.
 */
static void end_forward(struct tp_filter *f, const uint8_t *tail, size_t len)
{
	const struct tpf_imap *s = &f->s.imap;
	uint64_t size = 0;
	int lit = 0;

	if (f->role == TPF_R_CMD && open_command(f) < 0)
		return;
	if (f->cmd.verb != V_STARTTLS && f->cmd.tag_valid)
		lit = literal(tail, len, &size);
	if (lit == 2 && !f->tls && !s->literal_plus && !s->literal_minus)
		lit = 0;	/* auditing before TLS (nonsync_literal) */
	if (lit != 0 && !literal_ok(f, size, lit))
		return;
	if (lit == 1) {
		tpf_client_wait(f, f->cmd.id);
		f->wait_literal = 1;
		f->wait_size = size;
	} else if (lit == 2) {
		tpf_client_octets(f, size, TPF_FORWARD, TPF_R_CONT);
	} else {
		command_end(f);
	}
}

static void client_end(struct tp_filter *f, const uint8_t *tail, size_t len)
{
	if (f->role == TPF_R_DATA)
		tpf_client_wait(f, f->wait_id);
	else if (f->cmd.reply != NULL)
		end_local(f);
	else
		end_forward(f, tail, len);
}

/* --- the daemon's responses -------------------------------------------------------- */

/*
 * caps_span - where a capability list is: "* CAPABILITY ..." (RFC 9051
 * 7.2.2) or a "[CAPABILITY ...]" response code (7.1) of a status
 * response, tagged or not.  0 if the line has none.
 */
static int caps_span(const uint8_t *line, size_t len, size_t *start, size_t *end)
{
	size_t text = tpf_line_text(line, len), at, n, at2, m, p;
	const uint8_t *q;

	n = tpf_token(line, text, &at);
	p = at + n;
	m = tpf_token(line + p, text - p, &at2);
	if (n == 1 && line[at] == '*' && tpf_word_eq(line + p + at2, m, "CAPABILITY")) {
		*start = p + at2 + m;
		*end = text;
		return 1;
	}
	if (n == 0 || line[at] == '+' || status_of(line + p + at2, m) == 0)
		return 0;
	p += at2 + m;
	if (p < text && line[p] == ' ')
		p++;
	if (!tpf_word_prefix(line + p, text - p, "[CAPABILITY"))
		return 0;
	p += strlen("[CAPABILITY");
	q = p < text ? memchr(line + p, ']', text - p) : NULL;
	if (q == NULL || (line[p] != ' ' && line[p] != ']'))
		return 0;
	*start = p;
	*end = (size_t)(q - line);
	return 1;
}

/* scan_caps - what the daemon's framing depends on (RFC 7888) */
static void scan_caps(struct tp_filter *f, const uint8_t *p, size_t len)
{
	struct tpf_imap *s = &f->s.imap;
	size_t at, n;

	s->literal_plus = s->literal_minus = 0;
	for (; len > 0 && (n = tpf_token(p, len, &at)) > 0; p += at + n, len -= at + n) {
		if (tpf_word_eq(p + at, n, "LITERAL+"))
			s->literal_plus = 1;
		if (tpf_word_eq(p + at, n, "LITERAL-"))
			s->literal_minus = 1;
	}
}

/*
 * drop_cap - before TLS nothing that invites credentials: no AUTH=*, and
 * no SASL-IR (RFC 4959), which makes clients such as neomutt send
 * "AUTHENTICATE PLAIN <credentials>" in one line; no LITERAL+ or
 * LITERAL- (RFC 7888) either, see nonsync_literal.  After TLS no
 * STARTTLS (RFC 2595 3.1); everything else is shown again.
 */
static int drop_cap(const struct tp_filter *f, const uint8_t *w, size_t n)
{
	if (!f->tls)
		return tpf_word_prefix(w, n, "AUTH=") || tpf_word_eq(w, n, "SASL-IR") ||
		       tpf_word_eq(w, n, "LITERAL+") || tpf_word_eq(w, n, "LITERAL-");
	return tpf_word_eq(w, n, "STARTTLS") || tpf_word_eq(w, n, "LOGINDISABLED");
}

/* rewrite_caps - the line with its capability list [start, end) rewritten */
static void rewrite_caps(struct tp_filter *f, const uint8_t *line, size_t len,
			 size_t start, size_t end)
{
	size_t text = tpf_line_text(line, len), p = start, at, n;
	int starttls = 0, logindisabled = 0;

	tpf_to_client(f, line, start);
	for (; p < end && (n = tpf_token(line + p, end - p, &at)) > 0; p += at + n) {
		const uint8_t *w = line + p + at;

		starttls |= tpf_word_eq(w, n, "STARTTLS");
		logindisabled |= tpf_word_eq(w, n, "LOGINDISABLED");
		if (drop_cap(f, w, n))
			continue;
		tpf_to_client(f, " ", 1);
		tpf_to_client(f, w, n);
	}
	if (!f->tls && !starttls)
		tpf_to_client_str(f, " STARTTLS");
	if (!f->tls && !logindisabled)
		tpf_to_client_str(f, " LOGINDISABLED");
	tpf_to_client(f, line + end, text - end);
	tpf_to_client(f, "\r\n", 2);
}

/* classify - what kind of response starts with this line */
static void classify(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_imap *s = &f->s.imap;
	size_t at, n = tpf_token(line, len, &at), at2, m;
	const uint8_t *w = line + at, *rest = w + n;
	const struct tpf_entry *e;

	m = tpf_token(rest, len - at - n, &at2);
	s->entry = 0;
	s->ok = tpf_word_eq(rest + at2, m, "OK");
	if (len > 0 && line[0] == '+') {
		s->kind = RESP_CONT;
	} else if (n == 1 && w[0] == '*') {
		s->kind = status_of(rest + at2, m) ? RESP_STATUS : RESP_DATA;
	} else {
		s->kind = RESP_TAGGED;
		e = tpf_queue_find_tag(f, w, n);
		s->entry = e != NULL ? e->id : 0;
	}
}

/*
 * server_head - a response line.  Capability lists are rewritten; one
 * too long to rewrite ends the session before TLS (passing it unchanged
 * would show AUTH=PLAIN), and streams through after it.
 */
static int server_head(struct tp_filter *f, const uint8_t *line, size_t len,
		       int complete)
{
	size_t start, end;

	if (f->s.imap.cont)
		return TPF_FORWARD;	/* the rest of a response after a literal */
	classify(f, line, len);
	if (!caps_span(line, len, &start, &end))
		return TPF_FORWARD;
	if (!complete)
		return f->tls || f->cfg.audit ? TPF_FORWARD :
			tpf_fail(f, "close", "line-too-long", TPF_IMAP_TOO_LONG);
	scan_caps(f, line + start, end - start);
	if (f->cfg.audit)
		return TPF_FORWARD;
	rewrite_caps(f, line, len, start, end);
	return TPF_HANDLED;
}

/* continuation - "+" (RFC 9051 7.5): what the client held may now come */
static void continuation(struct tp_filter *f)
{
	if (f->cstate != TPF_C_WAIT)
		return;
	if (f->wait_literal)
		tpf_client_octets(f, f->wait_size, TPF_FORWARD, TPF_R_CONT);
	else
		tpf_client_line(f, TPF_R_DATA);
}

/*
 * compressed - RFC 4978 3: both streams are compressed from the next
 * octet on, unreadable here.  RFC 4978 allows COMPRESS only once
 * authenticated; a daemon that accepts it before TLS would let the
 * client authenticate past the filter, so then the session ends.
 */
static void compressed(struct tp_filter *f)
{
	if (!f->tls && !f->cfg.audit)
		tpf_fail(f, "close", "command-before-tls", NULL);
	else
		tpf_opaque(f);
}

/* completed - the tagged response to a forwarded command */
static void completed(struct tp_filter *f, struct tpf_entry *e, int ok)
{
	if (ok && e->kind == TPF_K_STARTTLS) {
		tpf_daemon_tls(f);	/* RFC 9051 6.2.1: TLS right after the OK */
		return;
	}
	if (ok && e->kind == TPF_K_COMPRESS) {
		compressed(f);
		return;
	}
	if (e->kind == TPF_K_STARTTLS && f->cstate == TPF_C_DISCARD)
		tpf_client_line(f, TPF_R_CMD);
	tpf_done(f, e);
}

static void response_end(struct tp_filter *f)
{
	struct tpf_imap *s = &f->s.imap;
	struct tpf_entry *e;

	switch (s->kind) {
	case RESP_CONT:
		continuation(f);
		break;
	case RESP_TAGGED:
		e = tpf_queue_find(f, s->entry);
		if (e != NULL)
			completed(f, e, s->ok);
		break;
	default:
		e = tpf_queue_head(f);
		if (e != NULL && e->kind == TPF_K_GREETING)
			tpf_done(f, e);
		break;
	}
}

/* server_end - a line ended: a literal follows (RFC 9051 4.3), or the response ended */
static void server_end(struct tp_filter *f, const uint8_t *tail, size_t len)
{
	struct tpf_imap *s = &f->s.imap;
	uint64_t size;

	if ((s->cont || s->kind == RESP_DATA) && literal(tail, len, &size) == 1) {
		s->cont = 1;
		tpf_server_octets(f, size);
		return;
	}
	s->cont = 0;
	response_end(f);
}

const struct tpf_proto tpf_imap = {
	.line_max = TPF_TEXT_LINE_MAX,
	.too_long = TPF_IMAP_TOO_LONG,
	.queue_full = TPF_IMAP_QUEUE_FULL,
	.client_head = client_head,
	.client_end = client_end,
	.server_head = server_head,
	.server_end = server_end,
};
