/*
 * filter_pop3.c - POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595)
 * and AUTH (RFC 5034)
 *
 * Before TLS: the CAPA reply loses SASL and USER and gains STLS, the
 * greeting its APOP timestamp, USER, PASS, APOP and AUTH are refused, and in starttls mode so is every
 * command but CAPA, STLS and QUIT.  After TLS: STLS is refused and
 * removed from CAPA, everything else passes.
 */
#include "config.h"

#include <string.h>

#include "filter_int.h"
#include "replies.h"

enum { V_OTHER, V_CAPA, V_STLS, V_QUIT, V_USER, V_PASS, V_APOP, V_AUTH,
       V_LIST, V_UIDL, V_RETR, V_TOP, V_LANG };

static const struct tpf_word verbs[] = {
	{ "CAPA", V_CAPA }, { "STLS", V_STLS }, { "QUIT", V_QUIT },
	{ "USER", V_USER }, { "PASS", V_PASS }, { "APOP", V_APOP },
	{ "AUTH", V_AUTH }, { "LIST", V_LIST }, { "UIDL", V_UIDL },
	{ "RETR", V_RETR }, { "TOP", V_TOP }, { "LANG", V_LANG },
};

/* the first line of a reply */
enum { ST_OTHER, ST_OK, ST_ERR, ST_CONT };

/* --- the client's commands ------------------------------------------------------ */

/* parse - the verb and whether an argument follows, in the line up to a NUL as Dovecot reads it */
static void parse(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_cmd *c = &f->cmd;
	size_t at, n, at2;

	len = tpf_cstr_len(line, len);
	n = tpf_token(line, len, &at);

	c->verb = tpf_word_id(line + at, n, verbs, sizeof(verbs) / sizeof(verbs[0]),
			      V_OTHER);
	c->has_arg = tpf_token(line + at + n, len - at - n, &at2) > 0;
}

static int is_auth(int verb)
{
	return verb == V_USER || verb == V_PASS || verb == V_APOP || verb == V_AUTH;
}

static int decide(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;
	const char *reason = NULL;

	c->reply = NULL;
	c->upgrade = 0;
	if (c->verb == V_STLS)
		return tpf_upgrade(f, TP_POP3_TLS_ACTIVE, TP_POP3_GO_TLS);
	if (f->tls)
		return TPF_FORWARD;
	if (is_auth(c->verb))
		reason = "auth-before-tls";	/* RFC 2595 4 */
	else if (f->cfg.mode == TP_TLS_STARTTLS && c->verb != V_CAPA && c->verb != V_QUIT)
		reason = "command-before-tls";
	if (reason == NULL || !tpf_refuse(f, reason))
		return TPF_FORWARD;
	c->reply = TP_POP3_NEED_TLS;
	return TPF_DROP;
}

static int client_head(struct tp_filter *f, const uint8_t *line, size_t len,
		       int complete)
{
	(void)complete;
	if (f->role == TPF_R_DATA)
		return TPF_FORWARD;	/* RFC 5034 4: a SASL response */
	parse(f, line, len);
	return decide(f);
}

/*
 * kind_of - how the reply to a command is framed: RFC 1939 and 2449 say
 * which commands answer "+OK" with a multi-line reply; a bare AUTH lists
 * the mechanisms that way on Dovecot and most other servers.
 */
static int kind_of(const struct tpf_cmd *c)
{
	switch (c->verb) {
	case V_CAPA:
		return TPF_K_CAPS;
	case V_STLS:
		return TPF_K_STARTTLS;
	case V_AUTH:
		return c->has_arg ? TPF_K_AUTH : TPF_K_MULTI;
	case V_LIST:
	case V_UIDL:
	case V_LANG:
		return c->has_arg ? TPF_K_PLAIN : TPF_K_MULTI;
	case V_RETR:
	case V_TOP:
		return TPF_K_MULTI;
	default:
		return TPF_K_PLAIN;
	}
}

static void end_forward(struct tp_filter *f)
{
	int kind = kind_of(&f->cmd);
	int coalesce = kind == TPF_K_PLAIN || kind == TPF_K_MULTI;
	struct tpf_entry *e = tpf_queue_forward(f, kind, coalesce);

	if (e == NULL)
		return;
	if (kind == TPF_K_STARTTLS && !f->tls)
		tpf_client_discard(f);	/* RFC 2595 4, the daemon doing TLS */
	else if (kind == TPF_K_STARTTLS || kind == TPF_K_AUTH)
		tpf_client_wait(f, e->id);	/* RFC 5034 4: a challenge or the end */
	else
		tpf_client_line(f, TPF_R_CMD);
}

static void end_local(struct tp_filter *f)
{
	struct tpf_cmd *c = &f->cmd;

	if (tpf_queue_local(f, NULL, 0, c->reply, c->upgrade) < 0)
		return;
	if (c->upgrade)
		tpf_client_discard(f);	/* RFC 2595 4: nothing pipelined after it counts */
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

/* --- the daemon's replies -------------------------------------------------------- */

static int status_of(const uint8_t *line, size_t len)
{
	if (tpf_word_prefix(line, len, "+OK"))
		return ST_OK;
	if (tpf_word_prefix(line, len, "-ERR"))
		return ST_ERR;
	if (len > 0 && line[0] == '+')
		return ST_CONT;	/* RFC 5034 4: "+" SP challenge */
	return ST_OTHER;
}

/* is_dot - the line that ends a multi-line reply (RFC 1939 3) */
static int is_dot(const uint8_t *line, size_t len)
{
	return tpf_line_text(line, len) == 1 && line[0] == '.';
}

/* capa_line - a line of the CAPA reply (RFC 2449 6) */
static int capa_line(struct tp_filter *f, const uint8_t *line, size_t len)
{
	struct tpf_pop3 *s = &f->s.pop3;
	size_t at, n;
	const uint8_t *w;

	if (s->dot) {
		if (!f->tls && !s->stls)
			tpf_to_client_str(f, "STLS\r\n");	/* RFC 2595 4 */
		return TPF_FORWARD;
	}
	n = tpf_token(line, len, &at);
	w = line + at;
	if (tpf_word_eq(w, n, "STLS")) {
		s->stls = 1;
		return f->tls ? TPF_DROP : TPF_FORWARD;
	}
	if (!f->tls && (tpf_word_eq(w, n, "SASL") || tpf_word_eq(w, n, "USER")))
		return TPF_DROP;
	return TPF_FORWARD;
}

/*
 * greeting - before TLS the greeting loses its APOP timestamp (RFC 1939
 * 7: "+OK ... <process-ID.clock@hostname>"): it invites a client to send
 * APOP, a credential, before TLS, and APOP is refused then anyway.
 */
static int greeting(struct tp_filter *f, const uint8_t *line, size_t len)
{
	size_t text = tpf_line_text(line, len), lt;

	if (f->tls || f->cfg.audit || text < 2 || line[text - 1] != '>')
		return TPF_FORWARD;
	for (lt = text - 1; lt > 0 && line[lt] != '<'; lt--)
		;
	if (line[lt] != '<' || memchr(line + lt, '@', text - lt) == NULL)
		return TPF_FORWARD;
	while (lt > 0 && line[lt - 1] == ' ')
		lt--;
	tpf_to_client(f, line, lt);
	tpf_to_client(f, "\r\n", 2);
	return TPF_HANDLED;
}

static int server_head(struct tp_filter *f, const uint8_t *line, size_t len,
		       int complete)
{
	struct tpf_pop3 *s = &f->s.pop3;
	const struct tpf_entry *e = tpf_queue_head(f);

	if (!s->multi) {
		s->status = status_of(line, len);
		if (s->status == ST_OK && complete && e != NULL && e->kind == TPF_K_GREETING)
			return greeting(f, line, len);
		return TPF_FORWARD;
	}
	s->dot = complete && is_dot(line, len);
	if (e != NULL && e->kind == TPF_K_CAPS && !f->cfg.audit)
		return capa_line(f, line, len);
	return TPF_FORWARD;
}

/* first_line - the first line of a reply to e's command */
static void first_line(struct tp_filter *f, struct tpf_entry *e)
{
	struct tpf_pop3 *s = &f->s.pop3;

	if (s->status == ST_OK && (e->kind == TPF_K_MULTI || e->kind == TPF_K_CAPS)) {
		s->multi = 1;
		s->stls = 0;
		return;
	}
	if (s->status == ST_OK && e->kind == TPF_K_STARTTLS) {
		tpf_daemon_tls(f);	/* RFC 2595 4: TLS right after the +OK */
		return;
	}
	if (s->status == ST_CONT && e->kind == TPF_K_AUTH) {
		if (tpf_waiting_on(f, e))
			tpf_client_line(f, TPF_R_DATA);
		return;
	}
	if (e->kind == TPF_K_STARTTLS && f->cstate == TPF_C_DISCARD)
		tpf_client_line(f, TPF_R_CMD);
	tpf_done(f, e);
}

static void server_end(struct tp_filter *f, const uint8_t *tail, size_t len)
{
	struct tpf_pop3 *s = &f->s.pop3;
	struct tpf_entry *e = tpf_queue_head(f);

	(void)tail;
	(void)len;
	if (e == NULL) {
		s->multi = 0;	/* unsolicited */
		return;
	}
	if (!s->multi) {
		first_line(f, e);
	} else if (s->dot) {
		s->multi = 0;
		tpf_done(f, e);
	}
}

const struct tpf_proto tpf_pop3 = {
	.line_max = TPF_TEXT_LINE_MAX,
	.too_long = TPF_POP3_TOO_LONG,
	.queue_full = TPF_POP3_QUEUE_FULL,
	.client_head = client_head,
	.client_end = client_end,
	.server_head = server_head,
	.server_end = server_end,
};
