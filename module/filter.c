/*
 * filter.c - the engine of the sans-I/O protocol filters
 *
 * Bytes in, decisions and bytes out (filter.h).  The engine frames both
 * streams, holds the client's bytes while their framing depends on a
 * reply the daemon has not sent yet, and keeps the queue of pipelined
 * commands that puts the filter's own replies in their place among the
 * daemon's.  What a line means is up to the protocol modules
 * (filter_smtp.c, filter_imap.c, filter_pop3.c).
 *
 * No sockets, clocks, globals or printing; every buffer has a fixed size
 * except the output of one call, which is at most a small multiple of
 * that call's input.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_int.h"
#include "replies.h"

/* --- output and log ------------------------------------------------------- */

/* tpf_to_server - bytes for the daemon */
void tpf_to_server(struct tp_filter *f, const void *p, size_t n)
{
	if (n > 0)
		tp_buf_addn(&f->to_server, p, n);
}

/*
 * tpf_to_client - bytes for the client.  Once the upgrade reply is out the
 * client is about to start TLS: nothing may follow it in plaintext, so
 * what the daemon still says is dropped (and logged) until the handshake.
 */
void tpf_to_client(struct tp_filter *f, const void *p, size_t n)
{
	if (f->upgrading) {
		tpf_discard(f, "server-during-upgrade", n);
		return;
	}
	if (n > 0)
		tp_buf_addn(&f->to_client, p, n);
}

void tpf_to_client_str(struct tp_filter *f, const char *s)
{
	tpf_to_client(f, s, strlen(s));
}

/*
 * tpf_event - one decision for the log.  When the array is full, only a
 * "close" still gets in (over the last one): the relay must learn why
 * the session ends.
 */
void tpf_event(struct tp_filter *f, const char *action, const char *reason,
	       size_t bytes)
{
	struct tp_filter_out *o = f->out;

	if (o->nevents == TP_FILTER_MAX_EVENTS) {
		if (strcmp(action, "close") != 0)
			return;
		o->nevents--;
	}
	o->events[o->nevents++] = (struct tp_filter_event){ action, reason, bytes };
}

/*
 * tpf_discard - bytes thrown away, logged where it happens (so the order
 * of events does not depend on how the input was cut), one event for a
 * run of them
 */
void tpf_discard(struct tp_filter *f, const char *reason, size_t n)
{
	struct tp_filter_out *o = f->out;
	struct tp_filter_event *last = o->nevents > 0 ? &o->events[o->nevents - 1] : NULL;

	if (n == 0)
		return;
	if (last != NULL && strcmp(last->action, "discard") == 0 &&
	    strcmp(last->reason, reason) == 0) {
		last->bytes += n;
		return;
	}
	tpf_event(f, "discard", reason, n);
}

/*
 * tpf_refuse - the policy refuses a command.  Returns 1: answer it here;
 * 0: enforce = audit, log "would-refuse" and let it through.
 */
int tpf_refuse(struct tp_filter *f, const char *reason)
{
	if (f->cfg.audit) {
		tpf_event(f, "would-refuse", reason, 0);
		return 0;
	}
	tpf_event(f, "refuse", reason, 0);
	return 1;
}

/*
 * tpf_upgrade - STARTTLS/STLS: inside TLS refuse it with the protocol's
 * "already active" reply; with tls_by = daemon let the daemon answer;
 * else answer it here with the go-ahead and mark the upgrade
 */
int tpf_upgrade(struct tp_filter *f, const char *active_reply, const char *go_reply)
{
	struct tpf_cmd *c = &f->cmd;

	if (f->tls) {
		if (!tpf_refuse(f, "tls-already-active"))
			return TPF_FORWARD;
		c->reply = active_reply;
		return TPF_DROP;
	}
	if (f->cfg.tls_by == TP_BY_DAEMON)
		return TPF_FORWARD;
	c->reply = go_reply;
	c->upgrade = 1;
	return TPF_DROP;
}

/* tpf_fail - end the session: a last reply (if any), the reason, CLOSE */
int tpf_fail(struct tp_filter *f, const char *action, const char *reason,
	     const char *reply)
{
	if (f->dead)
		return -1;
	if (reply != NULL) {
		tpf_to_client_str(f, reply);
		tpf_to_client(f, "\r\n", 2);
	}
	tpf_event(f, action, reason, 0);
	f->dead = 1;
	f->cstate = TPF_C_DEAD;
	f->sstate = TPF_S_DEAD;
	explicit_bzero(f->cline, sizeof(f->cline));
	explicit_bzero(f->hold, sizeof(f->hold));
	f->hold_len = 0;
	return -1;
}

/* --- the queue -------------------------------------------------------------- */

/* queue_at - the i-th entry from the head of the ring */
static struct tpf_entry *queue_at(struct tp_filter *f, size_t i)
{
	return &f->q[(f->qhead + i) % TPF_QUEUE_MAX];
}

/* queue_add - a new entry at the tail; when full the session ends (queue-full) */
static struct tpf_entry *queue_add(struct tp_filter *f)
{
	struct tpf_entry *e;

	if (f->qlen == TPF_QUEUE_MAX) {
		tpf_fail(f, "close", "queue-full", f->proto->queue_full);
		return NULL;
	}
	e = queue_at(f, f->qlen++);
	*e = (struct tpf_entry){ .id = ++f->next_id, .count = 1 };
	if (e->id == 0)		/* 0 means "none" */
		e->id = ++f->next_id;
	return e;
}

/* release - send a local reply whose turn has come */
static void release(struct tp_filter *f, const struct tpf_entry *e)
{
	if (e->taglen > 0) {
		tpf_to_client(f, e->tag, e->taglen);
		tpf_to_client(f, " ", 1);
	}
	tpf_to_client_str(f, e->reply);
	tpf_to_client(f, "\r\n", 2);
	if (e->upgrade) {
		/* RFC 3207 4, RFC 2595 3.1/4: TLS starts right after this reply */
		f->out->flags |= TP_FILTER_START_TLS;
		tpf_event(f, "starttls", NULL, 0);
		f->upgrading = 1;
	}
}

/*
 * settle - release the local replies at the head of the queue: every
 * command before them has had its reply from the daemon.
 */
static void settle(struct tp_filter *f)
{
	while (f->qlen > 0 && !f->dead) {
		struct tpf_entry *e = queue_at(f, 0);

		if (!e->local && !e->done)
			return;
		if (e->local)
			release(f, e);
		f->qhead = (f->qhead + 1) % TPF_QUEUE_MAX;
		f->qlen--;
	}
}

/*
 * tpf_queue_forward - a command sent to the daemon; NULL (and the session
 * closed) if the queue is full.  With coalesce, it joins the last entry
 * when that is a forwarded command of the same kind.
 */
struct tpf_entry *tpf_queue_forward(struct tp_filter *f, int kind, int coalesce)
{
	struct tpf_entry *e;

	if (coalesce && f->qlen > 0) {
		e = queue_at(f, f->qlen - 1);
		if (!e->local && !e->done && e->kind == kind && e->count < 1000000) {
			e->count++;
			return e;
		}
	}
	e = queue_add(f);
	if (e != NULL)
		e->kind = kind;
	return e;
}

/* tpf_queue_local - a reply of the filter's own, sent in its turn; -1 if full */
int tpf_queue_local(struct tp_filter *f, const char *tag, size_t taglen,
		    const char *reply, int upgrade)
{
	struct tpf_entry *e = queue_add(f);

	if (e == NULL)
		return -1;
	e->local = 1;
	e->reply = reply;
	e->upgrade = (unsigned char)upgrade;
	if (taglen > sizeof(e->tag)) {
		tag = "*";	/* cannot be echoed: answer untagged */
		taglen = 1;
	}
	if (taglen > 0)
		memcpy(e->tag, tag, taglen);
	e->taglen = taglen;
	settle(f);
	return 0;
}

/* tpf_queue_head - the forwarded command the daemon is answering, or NULL */
struct tpf_entry *tpf_queue_head(struct tp_filter *f)
{
	for (size_t i = 0; i < f->qlen; i++) {
		struct tpf_entry *e = queue_at(f, i);

		if (!e->local && !e->done)
			return e;
	}
	return NULL;
}

/* tpf_queue_find - an open forwarded entry by id (ids outlive ring slots) */
struct tpf_entry *tpf_queue_find(struct tp_filter *f, unsigned id)
{
	for (size_t i = 0; id != 0 && i < f->qlen; i++) {
		struct tpf_entry *e = queue_at(f, i);

		if (e->id == id && !e->local && !e->done)
			return e;
	}
	return NULL;
}

/* tpf_queue_find_tag - IMAP: the oldest open command with this tag */
struct tpf_entry *tpf_queue_find_tag(struct tp_filter *f, const uint8_t *tag,
				     size_t len)
{
	for (size_t i = 0; i < f->qlen; i++) {
		struct tpf_entry *e = queue_at(f, i);

		if (!e->local && !e->done && e->taglen == len && len > 0 &&
		    memcmp(e->tag, tag, len) == 0)
			return e;
	}
	return NULL;
}

/* tpf_waiting_on - is the client held until e's reply comes? */
int tpf_waiting_on(const struct tp_filter *f, const struct tpf_entry *e)
{
	return f->cstate == TPF_C_WAIT && f->wait_id == e->id;
}

/*
 * tpf_done - the daemon's final reply to one command of e.  If the client
 * was held waiting on that reply, its next bytes are commands again.
 */
void tpf_done(struct tp_filter *f, struct tpf_entry *e)
{
	if (tpf_waiting_on(f, e))
		tpf_client_line(f, TPF_R_CMD);
	if (--e->count == 0)
		e->done = 1;
	settle(f);
}

/* --- the client's next state -------------------------------------------------- */

/* tpf_client_line - the next client bytes are a line in that role */
void tpf_client_line(struct tp_filter *f, enum tpf_role role)
{
	if (f->dead)
		return;
	f->cstate = TPF_C_LINE;
	f->role = role;
	f->cline_len = 0;
}

/* tpf_client_octets - the next n client octets are data (literal, chunk), then a line */
void tpf_client_octets(struct tp_filter *f, uint64_t n, enum tpf_dest dest,
		       enum tpf_role after)
{
	if (f->dead)
		return;
	if (n == 0) {
		tpf_client_line(f, after);
		return;
	}
	f->cstate = TPF_C_OCTETS;
	f->octets = n;
	f->cdest = dest;
	f->after = after;
}

/*
 * the DATA body states: at the start of a line, after ".", after ".\r",
 * after ".\r\r" (and more CRs), inside a line
 */
enum { BODY_BOL, BODY_DOT, BODY_DOTCR, BODY_DOTCRCR, BODY_MID };

/* tpf_client_body - the DATA body follows, from the start of a line */
void tpf_client_body(struct tp_filter *f)
{
	if (f->dead)
		return;
	f->cstate = TPF_C_BODY;
	f->body = BODY_BOL;
}

/* tpf_client_wait - hold the client's bytes until entry id's reply says what they are */
void tpf_client_wait(struct tp_filter *f, unsigned id)
{
	if (f->dead)
		return;
	f->cstate = TPF_C_WAIT;
	f->wait_id = id;
	f->wait_literal = 0;
}

/* tpf_client_discard - the upgrade command was read: nothing after it counts */
void tpf_client_discard(struct tp_filter *f)
{
	if (!f->dead)
		f->cstate = TPF_C_DISCARD;
}

/* tpf_opaque - the rest of the session is not ours to read: pass it through */
void tpf_opaque(struct tp_filter *f)
{
	if (f->dead)
		return;
	f->cstate = TPF_C_OPAQUE;
	f->sstate = TPF_S_OPAQUE;
}

/*
 * tpf_daemon_tls - tls_by = daemon and the daemon accepted the upgrade:
 * from here on the bytes are TLS records for the record inspector.  What
 * the client sent after the upgrade command stays discarded (RFC 3207 4.2).
 */
void tpf_daemon_tls(struct tp_filter *f)
{
	tpf_discard(f, "injection", f->hold_len);
	explicit_bzero(f->hold, f->hold_len);
	f->hold_len = 0;
	if (!f->tls) {
		f->out->flags |= TP_FILTER_EXPECT_TLS;
		tpf_event(f, "starttls", NULL, 0);
	}
	tpf_opaque(f);
}

/* tpf_server_octets - an IMAP literal of n octets in the daemon's response */
void tpf_server_octets(struct tp_filter *f, uint64_t n)
{
	if (f->dead || n == 0)
		return;
	f->sstate = TPF_S_OCTETS;
	f->soctets = n;
}

/* --- parsing helpers ---------------------------------------------------------- */

/* tpf_line_text - length of a line without its LF or CRLF */
size_t tpf_line_text(const uint8_t *line, size_t len)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return len;
}

/*
 * tpf_cstr_len - how much of a line a daemon that parses C strings reads
 * as its command: up to the first NUL.  Postfix's smtpd and Dovecot's
 * pop3-login split the line they read as a C string, so "AUTH\0 PLAIN x"
 * is an AUTH to them, and must be one to the filter too.
 */
size_t tpf_cstr_len(const uint8_t *line, size_t len)
{
	const uint8_t *nul = memchr(line, '\0', len);

	return nul != NULL ? (size_t)(nul - line) : len;
}

/*
 * is_space - a word separator.  Wider than the RFCs' SP on purpose:
 * Postfix splits SMTP commands on any white space, so "AUTH<TAB>PLAIN"
 * is AUTH to it and must be AUTH to the filter too.
 */
static int is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/*
 * tpf_token - the word at p: its length up to white space or the end,
 * with leading white space skipped (its length in *start)
 */
size_t tpf_token(const uint8_t *p, size_t len, size_t *start)
{
	size_t i = 0, n = 0;

	while (i < len && is_space(p[i]))
		i++;
	*start = i;
	while (i + n < len && !is_space(p[i + n]))
		n++;
	return n;
}

int tpf_word_eq(const uint8_t *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp((const char *)p, word, len) == 0;
}

int tpf_word_prefix(const uint8_t *p, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && strncasecmp((const char *)p, prefix, n) == 0;
}

/* tpf_word_id - the id of a word in a table (case-insensitive), else other */
int tpf_word_id(const uint8_t *p, size_t len, const struct tpf_word *words,
		size_t n, int other)
{
	for (size_t i = 0; i < n; i++)
		if (tpf_word_eq(p, len, words[i].name))
			return words[i].id;
	return other;
}

/* tpf_parse_size - 1..19 decimal digits, the whole of p; 0 or -1 */
int tpf_parse_size(const uint8_t *p, size_t len, uint64_t *size)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit(p[i]))
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*size = v;
	return 0;
}

/* tail_add - keep the last TPF_TAIL_MAX octets of a line being streamed */
static void tail_add(uint8_t *tail, size_t *tlen, const uint8_t *p, size_t n)
{
	if (n >= TPF_TAIL_MAX) {
		memcpy(tail, p + n - TPF_TAIL_MAX, TPF_TAIL_MAX);
		*tlen = TPF_TAIL_MAX;
		return;
	}
	if (*tlen + n > TPF_TAIL_MAX) {
		size_t keep = TPF_TAIL_MAX - n;

		memmove(tail, tail + *tlen - keep, keep);
		*tlen = keep;
	}
	memcpy(tail + *tlen, p, n);
	*tlen += n;
}

/* --- the client's stream ---------------------------------------------------------- */

static size_t client_run(struct tp_filter *f, const uint8_t *p, size_t n);

/*
 * client_hello - a TLS ClientHello (a handshake record, 0x16 0x03) where a
 * command should start, before any STARTTLS: the client was set to
 * implicit TLS on a STARTTLS port.  -1: closed; 1: audit, stepped aside.
 */
static int client_hello(struct tp_filter *f)
{
	if (f->tls || f->role != TPF_R_CMD || f->cline_len < 2 ||
	    f->cline[0] != 0x16 || f->cline[1] != 0x03)
		return 0;
	if (!f->cfg.audit)
		return tpf_fail(f, "refuse", "tls-on-starttls-port", NULL);
	tpf_event(f, "would-refuse", "tls-on-starttls-port", 0);
	tpf_to_server(f, f->cline, f->cline_len);
	f->cline_len = 0;
	tpf_opaque(f);
	return 1;
}

/* client_complete - a whole line: classify, pass or drop, then its end */
static void client_complete(struct tp_filter *f)
{
	size_t len = f->cline_len;
	int dest = f->proto->client_head(f, f->cline, len, 1);

	if (dest < 0)
		return;
	if (dest == TPF_FORWARD)
		tpf_to_server(f, f->cline, len);
	f->cline_len = 0;
	f->proto->client_end(f, f->cline, len);
	if (dest == TPF_DROP)	/* STYLE.md 8: refused credentials */
		explicit_bzero(f->cline, len);
}

/*
 * client_overflow - the line is longer than the protocol allows.  Before
 * TLS that ends the session (DESIGN.md "Limits"); after it, or in audit
 * mode, the line streams through (the daemon applies its own limit: an
 * XOAUTH2 token or a long UID set is no attack inside TLS) and only its
 * start and its last octets are looked at.
 */
static void client_overflow(struct tp_filter *f)
{
	size_t len = f->cline_len;
	int dest;

	if (!f->tls) {
		if (!f->cfg.audit) {
			tpf_fail(f, "close", "line-too-long", f->proto->too_long);
			return;
		}
		tpf_event(f, "would-refuse", "line-too-long", 0);
	}
	dest = f->proto->client_head(f, f->cline, len, 0);
	if (dest < 0)
		return;
	if (dest == TPF_FORWARD)
		tpf_to_server(f, f->cline, len);
	f->ctail_len = 0;
	tail_add(f->ctail, &f->ctail_len, f->cline, len);
	explicit_bzero(f->cline, len);
	f->cline_len = 0;
	f->cdest = dest;
	f->cstate = TPF_C_STREAM;
}

/*
 * client_line - gather a line up to LF or the limit; returns the octets
 * taken.  The line ends at the first LF, so a line never holds more than
 * one command.
 */
static size_t client_line(struct tp_filter *f, const uint8_t *p, size_t n)
{
	size_t room = f->proto->line_max - f->cline_len;
	size_t look = n < room ? n : room;
	const uint8_t *lf = memchr(p, '\n', look);
	size_t take = lf != NULL ? (size_t)(lf - p) + 1 : look;

	memcpy(f->cline + f->cline_len, p, take);
	f->cline_len += take;
	if (client_hello(f) != 0)
		return take;
	if (lf != NULL)
		client_complete(f);
	else if (f->cline_len == f->proto->line_max)
		client_overflow(f);
	return take;
}

/* client_stream - the rest of an over-long line, up to its LF */
static size_t client_stream(struct tp_filter *f, const uint8_t *p, size_t n)
{
	const uint8_t *lf = memchr(p, '\n', n);
	size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;

	if (f->cdest == TPF_FORWARD)
		tpf_to_server(f, p, take);
	tail_add(f->ctail, &f->ctail_len, p, take);
	if (lf != NULL) {
		f->cstate = TPF_C_LINE;
		f->proto->client_end(f, f->ctail, f->ctail_len);
	}
	return take;
}

/* client_octets - counted data: never read as commands, whatever it holds */
static size_t client_octets(struct tp_filter *f, const uint8_t *p, size_t n)
{
	size_t take = (uint64_t)n < f->octets ? n : (size_t)f->octets;

	if (f->cdest == TPF_FORWARD)
		tpf_to_server(f, p, take);
	f->octets -= take;
	if (f->octets == 0)
		tpf_client_line(f, f->after);
	return take;
}

/*
 * body_crcr_end - a line of ".", two or more CRs and LF.  Postfix ends
 * the data there (smtp_get() strips every CR before the LF), Exim 4.96
 * does not (only ".\n" and ".\r\n"), so whatever the filter decides, a
 * daemon may read the next bytes differently.  Before TLS that is a
 * smuggling attempt (the SMTP smuggling advisories of December 2023):
 * close.  Inside TLS, or auditing, follow Postfix, the more lenient.
 * Returns 1 if the data ended, 0 if the session was closed.
 */
static int body_crcr_end(struct tp_filter *f)
{
	if (f->tls)
		return 1;
	if (f->cfg.audit) {
		tpf_event(f, "would-refuse", "ambiguous-end-of-data", 0);
		return 1;
	}
	tpf_fail(f, "close", "ambiguous-end-of-data", TPF_SMTP_AMBIGUOUS);
	return 0;
}

/* body_next - the body state after octet c (CR and LF are handled by the caller too) */
static int body_next(int state, uint8_t c)
{
	if (c == '\n')
		return BODY_BOL;
	if (c == '.' && state == BODY_BOL)
		return BODY_DOT;
	if (c == '\r' && state == BODY_DOT)
		return BODY_DOTCR;
	if (c == '\r' && (state == BODY_DOTCR || state == BODY_DOTCRCR))
		return BODY_DOTCRCR;
	return BODY_MID;
}

/*
 * client_body - the DATA body, forwarded as it comes, up to a line that
 * is "." (RFC 5321 4.1.1.4).  The filter ends the data wherever a daemon
 * it fronts would: a line starts after any LF, bare or not (Postfix and
 * Exim both take "\n.\n" and "\r\n.\n" as the end), and a bare CR
 * starts none (neither daemon ends the data at "\r.\r\n").  A filter
 * stricter than its daemon would forward as body what the daemon then
 * runs as commands.
 */
static size_t client_body(struct tp_filter *f, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		int end = c == '\n' && (f->body == BODY_DOT || f->body == BODY_DOTCR);

		if (c == '\n' && f->body == BODY_DOTCRCR) {
			if (!body_crcr_end(f)) {
				tpf_to_server(f, p, i);
				return n;
			}
			end = 1;
		}
		if (end) {
			tpf_to_server(f, p, i + 1);
			tpf_client_line(f, TPF_R_CMD);
			return i + 1;
		}
		f->body = body_next(f->body, c);
	}
	tpf_to_server(f, p, n);
	return n;
}

/*
 * client_run - feed client bytes through the state machine; returns how
 * many were taken.  It stops early only in TPF_C_WAIT, where the caller
 * holds the rest.
 */
static size_t client_run(struct tp_filter *f, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (used < n) {
		const uint8_t *q = p + used;
		size_t left = n - used;

		switch (f->cstate) {
		case TPF_C_LINE:
			used += client_line(f, q, left);
			break;
		case TPF_C_STREAM:
			used += client_stream(f, q, left);
			break;
		case TPF_C_OCTETS:
			used += client_octets(f, q, left);
			break;
		case TPF_C_BODY:
			used += client_body(f, q, left);
			break;
		case TPF_C_WAIT:
			return used;
		case TPF_C_DISCARD:
			/* RFC 3207 4.2, CVE-2011-0411: never executed */
			tpf_discard(f, "injection", left);
			return n;
		case TPF_C_OPAQUE:
			tpf_to_server(f, q, left);
			return n;
		case TPF_C_DEAD:
			return n;
		}
	}
	return n;
}

/* hold - client bytes whose meaning the daemon's next reply decides */
static void hold(struct tp_filter *f, const uint8_t *p, size_t n)
{
	if (n == 0 || f->dead)
		return;
	if (n > TPF_HOLD_MAX - f->hold_len) {
		tpf_fail(f, "close", "queue-full", f->proto->queue_full);
		return;
	}
	memcpy(f->hold + f->hold_len, p, n);
	f->hold_len += n;
}

/* replay - the reply came: read the held bytes with the framing now known */
static void replay(struct tp_filter *f)
{
	size_t used;

	if (f->hold_len == 0 || f->cstate == TPF_C_WAIT || f->dead)
		return;
	used = client_run(f, f->hold, f->hold_len);
	if (f->dead)
		return;
	memmove(f->hold, f->hold + used, f->hold_len - used);
	f->hold_len -= used;
}

/* --- the daemon's stream --------------------------------------------------------- */

/* server_complete - a whole daemon line: classify, pass, drop or rewrite, then its end */
static void server_complete(struct tp_filter *f)
{
	size_t len = f->sline_len;
	int dest = f->proto->server_head(f, f->sline, len, 1);

	if (dest < 0)
		return;
	if (dest == TPF_FORWARD)
		tpf_to_client(f, f->sline, len);
	f->sline_len = 0;
	f->proto->server_end(f, f->sline, len);
}

/*
 * server_overflow - a daemon line longer than the limit.  Ordinary lines
 * (a big SEARCH result, a long header in RETR) stream through; a line
 * the module must rewrite returns -1 from server_head and ends the
 * session, since passing it unchanged could show authentication before
 * TLS.
 */
static void server_overflow(struct tp_filter *f)
{
	size_t len = f->sline_len;
	int dest = f->proto->server_head(f, f->sline, len, 0);

	if (dest < 0)
		return;
	if (dest == TPF_FORWARD)
		tpf_to_client(f, f->sline, len);
	f->stail_len = 0;
	tail_add(f->stail, &f->stail_len, f->sline, len);
	f->sline_len = 0;
	f->sdest = dest;
	f->sstate = TPF_S_STREAM;
}

/* server_line - gather a daemon line up to LF or the limit */
static size_t server_line(struct tp_filter *f, const uint8_t *p, size_t n)
{
	size_t room = f->proto->line_max - f->sline_len;
	size_t look = n < room ? n : room;
	const uint8_t *lf = memchr(p, '\n', look);
	size_t take = lf != NULL ? (size_t)(lf - p) + 1 : look;

	memcpy(f->sline + f->sline_len, p, take);
	f->sline_len += take;
	if (lf != NULL)
		server_complete(f);
	else if (f->sline_len == f->proto->line_max)
		server_overflow(f);
	return take;
}

/* server_stream - the rest of an over-long daemon line */
static size_t server_stream(struct tp_filter *f, const uint8_t *p, size_t n)
{
	const uint8_t *lf = memchr(p, '\n', n);
	size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;

	if (f->sdest == TPF_FORWARD)
		tpf_to_client(f, p, take);
	tail_add(f->stail, &f->stail_len, p, take);
	if (lf != NULL) {
		f->sstate = TPF_S_LINE;
		f->proto->server_end(f, f->stail, f->stail_len);
	}
	return take;
}

/* server_octets - an IMAP literal from the daemon (a message body): streamed */
static size_t server_octets(struct tp_filter *f, const uint8_t *p, size_t n)
{
	size_t take = (uint64_t)n < f->soctets ? n : (size_t)f->soctets;

	tpf_to_client(f, p, take);
	f->soctets -= take;
	if (f->soctets == 0)
		f->sstate = TPF_S_LINE;
	return take;
}

/* server_run - feed the daemon's bytes through the state machine */
static void server_run(struct tp_filter *f, const uint8_t *p, size_t n)
{
	size_t used = 0;

	while (used < n) {
		const uint8_t *q = p + used;
		size_t left = n - used;

		switch (f->sstate) {
		case TPF_S_LINE:
			used += server_line(f, q, left);
			break;
		case TPF_S_STREAM:
			used += server_stream(f, q, left);
			break;
		case TPF_S_OCTETS:
			used += server_octets(f, q, left);
			break;
		case TPF_S_OPAQUE:
			tpf_to_client(f, q, left);
			return;
		case TPF_S_DEAD:
			return;
		}
		/* a reply may have decided how the held client bytes read */
		replay(f);
	}
}

/* --- one call ---------------------------------------------------------------------- */

/* buf_reset - empty an output buffer; one grown by a big call is given back */
static void buf_reset(struct tp_buf *b)
{
	if (b->cap > TPF_OUT_KEEP)
		tp_buf_free(b);
	b->len = 0;
}

/* call_begin - the previous call's output is no longer valid (filter.h) */
static void call_begin(struct tp_filter *f, struct tp_filter_out *out)
{
	memset(out, 0, sizeof(*out));
	f->out = out;
	buf_reset(&f->to_server);
	buf_reset(&f->to_client);
}

/* call_end - fill out; fail closed if an output buffer could not grow */
static int call_end(struct tp_filter *f)
{
	struct tp_filter_out *out = f->out;

	if (f->to_server.oom || f->to_client.oom) {
		/* STYLE.md 5: never a partial, unchecked decision */
		tp_buf_free(&f->to_server);
		tp_buf_free(&f->to_client);
		tpf_fail(f, "close", "out-of-memory", NULL);
	}
	out->to_server = (const uint8_t *)f->to_server.s;
	out->to_server_len = f->to_server.len;
	out->to_client = (const uint8_t *)f->to_client.s;
	out->to_client_len = f->to_client.len;
	if (f->dead)
		out->flags |= TP_FILTER_CLOSE;
	f->out = NULL;
	return f->dead ? -1 : 0;
}

/* refused_port - tls = refuse: the relay sent the refusal; nothing else passes */
static int refused_port(struct tp_filter *f)
{
	if (f->cfg.mode != TP_TLS_REFUSE)
		return 0;
	if (!f->dead)
		tpf_fail(f, "close", "port-disabled", NULL);
	return 1;
}

int tp_filter_client(struct tp_filter *f, const uint8_t *in, size_t len,
		     struct tp_filter_out *out)
{
	size_t used;

	call_begin(f, out);
	if (!refused_port(f) && !f->dead && len > 0) {
		used = f->cstate == TPF_C_WAIT ? 0 : client_run(f, in, len);
		hold(f, in + used, len - used);
	}
	return call_end(f);
}

int tp_filter_server(struct tp_filter *f, const uint8_t *in, size_t len,
		     struct tp_filter_out *out)
{
	call_begin(f, out);
	if (!refused_port(f) && !f->dead && len > 0)
		server_run(f, in, len);
	return call_end(f);
}

/*
 * tp_filter_tls_done - inside TLS now.  With tls_by = daemon the filter
 * cannot read the session any more (the records pass through it), so it
 * stays out of the way; otherwise the client's bytes are commands again.
 */
void tp_filter_tls_done(struct tp_filter *f)
{
	if (f->dead)
		return;
	f->upgrading = 0;
	if (f->cfg.tls_by == TP_BY_DAEMON) {
		f->tls = 1;
		f->cstate = TPF_C_OPAQUE;
		f->sstate = TPF_S_OPAQUE;
		return;
	}
	if (f->tls && f->cstate != TPF_C_DISCARD)
		return;		/* implicit TLS: already in the after-TLS state */
	f->tls = 1;
	tpf_client_line(f, TPF_R_CMD);
}

/* --- life cycle -------------------------------------------------------------------- */

/* set_refusal - tls = refuse: the line naming the port to use instead */
static void set_refusal(struct tp_filter *f)
{
	char *r = f->refusal;
	size_t n = sizeof(f->refusal);
	int port = f->cfg.refuse_alt_port;

	switch (f->cfg.protocol) {
	case TP_PROTO_SMTP:
		if (port > 0)
			snprintf(r, n, TP_SMTP_REFUSE, port);
		else
			snprintf(r, n, "%s", TP_SMTP_REFUSE_NOALT);
		break;
	case TP_PROTO_IMAP:
		if (port > 0)
			snprintf(r, n, TP_IMAP_REFUSE, port);
		else
			snprintf(r, n, "%s", TP_IMAP_REFUSE_NOALT);
		break;
	case TP_PROTO_POP3:
		if (port > 0)
			snprintf(r, n, TP_POP3_REFUSE, port);
		else
			snprintf(r, n, "%s", TP_POP3_REFUSE_NOALT);
		break;
	}
}

/* proto_of - the protocol module; NULL for a value outside the enum */
static const struct tpf_proto *proto_of(enum tp_protocol p)
{
	switch (p) {
	case TP_PROTO_SMTP:
		return &tpf_smtp;
	case TP_PROTO_IMAP:
		return &tpf_imap;
	case TP_PROTO_POP3:
		return &tpf_pop3;
	}
	return NULL;
}

/* config_ok - STYLE.md 5: a value outside the enums is no mode to guess at */
static int config_ok(const struct tp_filter_config *c)
{
	return (c->mode == TP_TLS_IMPLICIT || c->mode == TP_TLS_STARTTLS ||
		c->mode == TP_TLS_OPPORTUNISTIC || c->mode == TP_TLS_REFUSE) &&
	       (c->tls_by == TP_BY_MODULE || c->tls_by == TP_BY_DAEMON);
}

struct tp_filter *tp_filter_new(const struct tp_filter_config *config)
{
	const struct tpf_proto *proto = proto_of(config->protocol);
	struct tp_filter *f;

	if (proto == NULL || !config_ok(config))
		return NULL;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return NULL;
	f->cfg = *config;
	f->proto = proto;
	f->cstate = TPF_C_LINE;
	f->role = TPF_R_CMD;
	f->sstate = TPF_S_LINE;
	if (config->protocol == TP_PROTO_SMTP)
		f->s.smtp.code = -1;
	/* every session starts with the daemon's greeting */
	f->qlen = 1;
	f->q[0] = (struct tpf_entry){ .id = ++f->next_id, .kind = TPF_K_GREETING,
				      .count = 1 };
	if (config->mode == TP_TLS_IMPLICIT)
		f->tls = 1;
	if (config->mode == TP_TLS_IMPLICIT && config->tls_by == TP_BY_DAEMON) {
		/* the daemon's TLS from the first byte: nothing here to read */
		f->cstate = TPF_C_OPAQUE;
		f->sstate = TPF_S_OPAQUE;
	}
	if (config->mode == TP_TLS_REFUSE)
		set_refusal(f);
	return f;
}

/* tp_filter_free - wiped first: it may hold a refused password (STYLE.md 8) */
void tp_filter_free(struct tp_filter **fp)
{
	struct tp_filter *f = *fp;

	if (f == NULL)
		return;
	tp_buf_free(&f->to_server);
	tp_buf_free(&f->to_client);
	explicit_bzero(f, sizeof(*f));
	free(f);
	*fp = NULL;
}

size_t tp_filter_held(const struct tp_filter *f)
{
	return f->hold_len;
}

const char *tp_filter_refusal(const struct tp_filter *f)
{
	return f->cfg.mode == TP_TLS_REFUSE ? f->refusal : NULL;
}
