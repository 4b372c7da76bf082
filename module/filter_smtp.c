/*
 * filter_smtp.c - SMTP (RFC 5321) with STARTTLS (RFC 3207), AUTH
 * (RFC 4954), PIPELINING (RFC 2920) and CHUNKING (RFC 3030)
 *
 * Before TLS: the EHLO reply loses its AUTH and CHUNKING lines and gains
 * STARTTLS, AUTH and BDAT are refused, and in starttls mode so is every
 * command but the few RFC 3207 needs to upgrade.  The DATA body ends
 * where Postfix or Exim would end it (filter.c).  After TLS: STARTTLS is refused and removed
 * from the EHLO reply, everything else passes.
 */
#include "config.h"

#include <string.h>

#include "filter_int.h"
#include "replies.h"

enum { V_OTHER, V_EHLO, V_HELO, V_STARTTLS, V_NOOP, V_RSET, V_QUIT, V_AUTH,
       V_DATA, V_BDAT };

static const struct tpf_word verbs[] = {
	{ "EHLO", V_EHLO }, { "HELO", V_HELO }, { "STARTTLS", V_STARTTLS },
	{ "NOOP", V_NOOP }, { "RSET", V_RSET }, { "QUIT", V_QUIT },
	{ "AUTH", V_AUTH }, { "DATA", V_DATA }, { "BDAT", V_BDAT },
};

/* --- the client's commands ------------------------------------------------ */

/*
 * parse - the verb, and BDAT's size (RFC 3030 2: "BDAT" SP size [SP "LAST"]),
 * as Postfix reads them: the line up to a NUL, split at any white space
 */
static void parse(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_cmd *c = &f->cmd;
	size_t at, n, at2, m;
	const uint8_t *rest;

	len = tpf_cstr_len(line, len);
	n = tpf_token(line, len, &at);
	rest = line + at + n;

	c->verb = tpf_word_id(line + at, n, verbs, sizeof(verbs) / sizeof(verbs[0]),
			      V_OTHER);
	c->has_arg = 0;
	if (c->verb != V_BDAT)
		return;
	m = tpf_token(rest, len - at - n, &at2);
	c->has_arg = tpf_parse_size(rest + at2, m, &c->size) == 0;
}

/* allowed - RFC 3207 4: what a client needs before STARTTLS where TLS is required */
static int allowed(int verb)
{
	return verb == V_EHLO || verb == V_HELO || verb == V_STARTTLS ||
	       verb == V_NOOP || verb == V_RSET || verb == V_QUIT;
}

/* decide - forward the command, or answer it here (c->reply) */
static int decide(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;
	const char *reason = NULL;

	c->reply = NULL;
	c->upgrade = 0;
	if (c->verb == V_STARTTLS)
		return tpf_upgrade(f, TP_SMTP_TLS_ACTIVE, TP_SMTP_GO_TLS);
	if (f->tls)
		return TPF_FORWARD;
	if (c->verb == V_AUTH)
		reason = "auth-before-tls";	/* RFC 4954 4 with RFC 3207 */
	else if (c->verb == V_BDAT || (f->cfg.mode == TP_TLS_STARTTLS && !allowed(c->verb)))
		reason = "command-before-tls";	/* BDAT: see ehlo_keyword */
	if (reason == NULL || !tpf_refuse(f, reason))
		return TPF_FORWARD;
	c->reply = TP_SMTP_NEED_TLS;
	return TPF_DROP;
}

static int client_head(struct tp_filter *f, const uint8_t *line, size_t len,
		       int complete)
{
	(void)complete;
	if (f->role == TPF_R_DATA)
		return TPF_FORWARD;	/* RFC 4954 4: a SASL response, not a command */
	parse(f, line, len);
	return decide(f);
}

static void end_local(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;

	if (tpf_queue_local(f, NULL, 0, c->reply, c->upgrade) < 0)
		return;
	if (c->upgrade)
		tpf_client_discard(f);	/* RFC 3207 4.2: nothing pipelined after it counts */
	else if (c->verb == V_BDAT && c->has_arg)
		/* RFC 3030 2: the chunk follows its BDAT unasked, refused or not */
		tpf_client_octets(f, c->size, TPF_DROP, TPF_R_CMD);
	else
		tpf_client_line(f, TPF_R_CMD);
}

static int kind_of(int verb)
{
	switch (verb) {
	case V_EHLO:
		return TPF_K_CAPS;
	case V_DATA:
		return TPF_K_DATA;
	case V_AUTH:
		return TPF_K_AUTH;
	case V_STARTTLS:
		return TPF_K_STARTTLS;
	default:
		return TPF_K_PLAIN;
	}
}

/*
 * end_forward - a command went to the daemon.  After DATA and AUTH the
 * client waits for 354 or 334 (RFC 2920 3.1, RFC 4954 4), and so does the
 * filter: whether the next bytes are a body, a SASL response or commands
 * is the daemon's to say.  A BDAT chunk is framed by its size alone, but
 * before TLS only if the daemon offered CHUNKING: a daemon without it
 * would run the chunk as commands.
 */
static void end_forward(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;
	int kind = kind_of(c->verb);
	struct tpf_entry *e = tpf_queue_forward(f, kind, kind == TPF_K_PLAIN);

	if (e == NULL)
		return;
	if (kind == TPF_K_DATA || kind == TPF_K_AUTH)
		tpf_client_wait(f, e->id);
	else if (kind == TPF_K_STARTTLS && !f->tls)
		tpf_client_discard(f);	/* RFC 3207 4.2, with the daemon doing TLS */
	else if (kind == TPF_K_STARTTLS)
		tpf_client_wait(f, e->id);
	else if (c->verb == V_BDAT && c->has_arg && (f->tls || f->s.smtp.chunking))
		tpf_client_octets(f, c->size, TPF_FORWARD, TPF_R_CMD);
	else
		tpf_client_line(f, TPF_R_CMD);
}

static void client_end(struct tp_filter *f, const uint8_t *tail, size_t len)
{
	(void)tail;
	(void)len;
	if (f->role == TPF_R_DATA)
		tpf_client_wait(f, f->wait_id);
	else if (f->cmd.reply != NULL)
		end_local(f);
	else
		end_forward(f);
}

/* --- the daemon's replies --------------------------------------------------- */

/* reply_code - the three digits of a reply line (RFC 5321 4.2), -1 if none */
static int reply_code(const uint8_t *line, size_t len)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9')
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* flush - send the held EHLO line, with sep after the code ('-': more follow) */
static void flush(struct tp_filter *f, char sep)
{
	struct tpf_smtp *s = &f->s.smtp;

	if (!s->has_held)
		return;
	tpf_to_client(f, s->held_code, 3);
	tpf_to_client(f, &sep, 1);
	tpf_to_client(f, s->held, s->held_len);
	tpf_to_client(f, "\r\n", 2);
	s->has_held = 0;
}

/*
 * hold_line - keep a line of the EHLO reply back: only once the next
 * kept line comes is it known not to be the last, whose code is followed
 * by SP instead of "-" (RFC 5321 4.2.1).
 */
static void hold_line(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_smtp *s = &f->s.smtp;
	size_t text = tpf_line_text(line, len);
	size_t from = text < 4 ? text : 4;

	flush(f, '-');
	if (s->code >= 0)
		memcpy(s->held_code, line, 3);
	else
		memcpy(s->held_code, "250", 3);
	s->held_len = text - from;
	memcpy(s->held, line + from, s->held_len);
	s->held_first = s->lines == 1;
	s->has_held = 1;
}

/*
 * ehlo_finish - the last line of the reply.  Before TLS STARTTLS is
 * offered (RFC 3207 4) if the daemon did not: before the last line, or
 * after the domain if that is all there is.
 */
static void ehlo_finish(struct tp_filter *f)
{
	struct tpf_smtp *s = &f->s.smtp;

	if (f->tls || s->starttls) {
		flush(f, ' ');
	} else if (s->held_first) {
		flush(f, '-');
		tpf_to_client_str(f, "250 STARTTLS\r\n");
	} else {
		tpf_to_client_str(f, "250-STARTTLS\r\n");
		flush(f, ' ');
	}
}

/* is_auth - "AUTH mechs" or the pre-RFC 4954 "AUTH=mechs" some clients want */
static int is_auth(const uint8_t *w, size_t n)
{
	return tpf_word_eq(w, n, "AUTH") || tpf_word_prefix(w, n, "AUTH=");
}

/*
 * ehlo_keyword - note what the daemon offers; 1 if the line is to be
 * dropped.  Before TLS that is AUTH (RFC 4954 with RFC 3207 4) and
 * CHUNKING: a BDAT chunk is framed by a size the daemon alone decides
 * to accept (Postfix answers "BDAT 5 X" with 501 and reads the chunk as
 * commands; Exim reads the size with sscanf), so the filter cannot know
 * whether the chunk is data or commands to the daemon.  Before TLS BDAT
 * is refused and its chunk dropped; clients send DATA instead.
 */
static int ehlo_keyword(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_smtp *s = &f->s.smtp;
	size_t text = tpf_line_text(line, len), at, n;
	const uint8_t *w;

	if (s->lines == 1 || text <= 4)
		return 0;	/* the first line names the domain */
	n = tpf_token(line + 4, text - 4, &at);
	w = line + 4 + at;
	if (tpf_word_eq(w, n, "CHUNKING")) {
		s->chunking_new = 1;
		return !f->tls;
	}
	if (tpf_word_eq(w, n, "STARTTLS")) {
		s->starttls = 1;
		return f->tls;
	}
	return !f->tls && is_auth(w, n);
}

/*
 * ehlo_line - one line of the reply to EHLO.  It is rewritten (unless
 * auditing, or it is no 250 reply): the lines to drop are dropped, the
 * others re-sent with the continuation marks made right again.
 */
static int ehlo_line(struct tp_filter *f, const uint8_t *line, size_t len,
		     int complete)
{
	struct tpf_smtp *s = &f->s.smtp;
	int drop;

	if (++s->lines == 1) {
		s->rewrite = !f->cfg.audit && s->code == 250;
		s->chunking_new = s->starttls = s->has_held = 0;
	}
	drop = ehlo_keyword(f, line, len);
	if (!s->rewrite)
		return TPF_FORWARD;
	if (!complete)
		return tpf_fail(f, "close", "line-too-long", TPF_SMTP_BAD_REPLY);
	if (!drop)
		hold_line(f, line, len);
	if (s->final)
		ehlo_finish(f);
	return TPF_HANDLED;
}

static int server_head(struct tp_filter *f, const uint8_t *line, size_t len,
		       int complete)
{
	struct tpf_smtp *s = &f->s.smtp;
	struct tpf_entry *e = tpf_queue_head(f);

	s->code = reply_code(line, len);
	s->final = !(s->code >= 0 && len > 3 && line[3] == '-');
	if (e != NULL && e->kind == TPF_K_CAPS)
		return ehlo_line(f, line, len, complete);
	return TPF_FORWARD;
}

/* complete - the last line of a reply to e's command */
static void complete(struct tp_filter *f, struct tpf_entry *e, int code)
{
	switch (e->kind) {
	case TPF_K_DATA:
		if (e->stage == 0 && code == 354) {	/* RFC 5321 4.1.1.4 */
			e->stage = 1;
			if (tpf_waiting_on(f, e))
				tpf_client_body(f);
			return;
		}
		break;
	case TPF_K_AUTH:
		if (code == 334) {	/* RFC 4954 4: the next line answers it */
			if (tpf_waiting_on(f, e))
				tpf_client_line(f, TPF_R_DATA);
			return;
		}
		break;
	case TPF_K_STARTTLS:
		if (code == 220) {	/* RFC 3207 4: the daemon starts TLS */
			tpf_daemon_tls(f);
			return;
		}
		if (f->cstate == TPF_C_DISCARD)
			tpf_client_line(f, TPF_R_CMD);
		break;
	default:
		break;
	}
	tpf_done(f, e);
}

static void server_end(struct tp_filter *f, const uint8_t *tail, size_t len)
{
	struct tpf_smtp *s = &f->s.smtp;
	struct tpf_entry *e;

	(void)tail;
	(void)len;
	if (!s->final)
		return;
	e = tpf_queue_head(f);
	if (e == NULL)
		return;		/* unsolicited, such as a 421 before the daemon closes */
	if (e->kind == TPF_K_CAPS) {
		s->chunking = s->chunking_new;
		s->lines = 0;
	}
	complete(f, e, s->code);
}

const struct tpf_proto tpf_smtp = {
	.line_max = TPF_SMTP_LINE_MAX,
	.too_long = TPF_SMTP_TOO_LONG,
	.queue_full = TPF_SMTP_QUEUE_FULL,
	.client_head = client_head,
	.client_end = client_end,
	.server_head = server_head,
	.server_end = server_end,
};
