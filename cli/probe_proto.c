/*
 * probe_proto.c - the SMTP, IMAP and POP3 dialogues of tlspolicyctl probe
 *
 * Each reply is read line by line with a deadline and a bounded buffer
 * (probe_net.c); the probe never needs more of a reply than its first
 * PN_BUF_MAX bytes.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "probe.h"

#define WAIT_MS (PN_TIMEOUT_S * 1000)
#define QUIET_MS 1500		/* how long to listen for a reply nobody asked for */
#define REPLY_MAX 4096

/* a credential that cannot be real: the user name is in a reserved domain */
#define DUMMY_USER "tlspolicy-probe@example.invalid"
#define DUMMY_PASS "not-a-password"
/* base64 of "\0" DUMMY_USER "\0" DUMMY_PASS, for SMTP AUTH PLAIN */
#define DUMMY_PLAIN "AHRsc3BvbGljeS1wcm9iZUBleGFtcGxlLmludmFsaWQAbm90LWEtcGFzc3dvcmQ="

static const char *const upgrade_word[] = { "STARTTLS", "STARTTLS", "STLS" };
static const char *const proto_upper[] = { "SMTP", "IMAP", "POP3" };

void probe_add(struct probe *p, const char *id, enum probe_status st, const char *advice,
	       const char *fmt, ...)
{
	struct probe_check *c;
	va_list ap;

	if (p->n == PROBE_MAX_CHECKS)
		return;
	c = &p->checks[p->n++];
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->status = st;
	c->advice = st == PROBE_FAIL ? advice : NULL;
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

/* append - add line and a newline to text, as far as it fits */
static void append(char *text, size_t size, const char *line)
{
	size_t len = strlen(text);

	if (len + 1 < size)
		snprintf(text + len, size - len, "%s\n", line);
}

/* first_line - the first line of text, for a check's detail */
static const char *first_line(const char *text, char *buf, size_t size)
{
	size_t n = strcspn(text, "\n");

	snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), text);
	return buf;
}

/* smtp_reply - a whole (multiline) SMTP reply into text; its code, or -1 */
static int smtp_reply(struct pn_conn *c, char *text, size_t size, int timeout_ms)
{
	char line[PN_LINE_MAX];

	text[0] = '\0';
	for (int i = 0; i < 100; i++) {
		if (pn_line(c, line, sizeof(line), timeout_ms) < 0)
			return -1;
		append(text, size, line);
		if (strlen(line) < 3 || !isdigit((unsigned char)line[0]))
			return -1;
		if (line[3] != '-')
			return atoi(line);
	}
	return -1;
}

/*
 * imap_reply - untagged lines and the tagged one into text; 'O', 'N' or
 * 'B' for the tagged OK, NO or BAD, -1 if none came
 */
static int imap_reply(struct pn_conn *c, const char *tag, char *text, size_t size)
{
	char line[PN_LINE_MAX];
	size_t tl = strlen(tag);

	text[0] = '\0';
	for (int i = 0; i < 1000; i++) {
		if (pn_line(c, line, sizeof(line), WAIT_MS) < 0)
			return -1;
		append(text, size, line);
		if (strncmp(line, tag, tl) == 0 && line[tl] == ' ')
			return toupper((unsigned char)line[tl + 1]);
	}
	return -1;
}

/* pop3_reply - a status line (and with multi, the listing to "."); 1 +OK, 0 -ERR, -1 */
static int pop3_reply(struct pn_conn *c, int multi, char *text, size_t size)
{
	char line[PN_LINE_MAX];
	int ok;

	text[0] = '\0';
	if (pn_line(c, line, sizeof(line), WAIT_MS) < 0)
		return -1;
	append(text, size, line);
	ok = strncmp(line, "+OK", 3) == 0;
	if (!ok)
		return strncmp(line, "-ERR", 4) == 0 ? 0 : -1;
	for (int i = 0; multi && i < 1000; i++) {
		if (pn_line(c, line, sizeof(line), WAIT_MS) < 0)
			return -1;
		if (strcmp(line, ".") == 0)
			break;
		append(text, size, line);
	}
	return 1;
}

/* greeting - the server's first words; 0 if they are a protocol greeting */
static int greeting(struct pn_conn *c, enum tp_protocol proto, char *text, size_t size)
{
	switch (proto) {
	case TP_PROTO_SMTP:
		return smtp_reply(c, text, size, WAIT_MS) == 220 ? 0 : -1;
	case TP_PROTO_IMAP:
		text[0] = '\0';
		if (pn_line(c, text, size, WAIT_MS) < 0)
			return -1;
		return strncasecmp(text, "* OK", 4) == 0 ? 0 : -1;
	case TP_PROTO_POP3:
		return pop3_reply(c, 0, text, size) == 1 ? 0 : -1;
	}
	return -1;
}

/* capabilities - EHLO, CAPABILITY or CAPA into text; 0 if the server answered */
static int capabilities(struct pn_conn *c, enum tp_protocol proto, char *text, size_t size)
{
	switch (proto) {
	case TP_PROTO_SMTP:
		return pn_send(c, "EHLO probe.invalid\r\n") == 0 &&
		       smtp_reply(c, text, size, WAIT_MS) == 250 ? 0 : -1;
	case TP_PROTO_IMAP:
		return pn_send(c, "C1 CAPABILITY\r\n") == 0 &&
		       imap_reply(c, "C1", text, size) == 'O' ? 0 : -1;
	case TP_PROTO_POP3:
		return pn_send(c, "CAPA\r\n") == 0 && pop3_reply(c, 1, text, size) == 1 ? 0 : -1;
	}
	return -1;
}

/*
 * has_cap - does a capability listing name cap?  Words are compared
 * case-insensitively; a cap ending in '=' matches any word it starts
 * ("AUTH=" matches "AUTH=PLAIN").  SMTP lines lose their "250-" first.
 */
static int has_cap(const char *text, enum tp_protocol proto, const char *cap)
{
	size_t cl = strlen(cap);
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n'), *w;

		if (end == NULL)
			end = line + strlen(line);
		w = proto == TP_PROTO_SMTP && end - line > 4 ? line + 4 : line;
		while (w < end) {
			size_t wl;

			w += strspn(w, " []()");
			wl = strcspn(w, " []()\n");
			if (w + wl > end)
				wl = (size_t)(end - w);
			if (wl > 0 && (cap[cl - 1] == '=' ? wl >= cl : wl == cl) &&
			    strncasecmp(w, cap, cl) == 0)
				return 1;
			w += wl ? wl : 1;
		}
		line = *end ? end + 1 : end;
	}
	return 0;
}

/*
 * pop3_sasl - does a CAPA listing offer SASL mechanisms?  A bare "SASL"
 * line names none (RFC 2449 6.3 lists them after it): Dovecot sends one
 * before TLS when disable_plaintext_auth hides its plaintext mechanisms.
 */
static int pop3_sasl(const char *text)
{
	for (const char *line = text; *line; ) {
		size_t n = strcspn(line, "\n");

		if (n > 4 && strncasecmp(line, "SASL", 4) == 0 && line[4] == ' ' &&
		    line[4 + strspn(line + 4, " ")] != '\n' && line[4 + strspn(line + 4, " ")] != '\0')
			return 1;
		line += n + (line[n] == '\n');
	}
	return 0;
}

/* upgrade - ask for TLS (with payload pipelined behind in the same
 * segment); 0 if the server said go ahead, reply in text */
static int upgrade(struct pn_conn *c, enum tp_protocol proto, int inject, char *text, size_t size)
{
	switch (proto) {
	case TP_PROTO_SMTP:
		return pn_send(c, inject ? "STARTTLS\r\nNOOP\r\n" : "STARTTLS\r\n") == 0 &&
		       smtp_reply(c, text, size, WAIT_MS) == 220 ? 0 : -1;
	case TP_PROTO_IMAP:
		return pn_send(c, inject ? "S1 STARTTLS\r\nS2 NOOP\r\n" : "S1 STARTTLS\r\n") == 0 &&
		       imap_reply(c, "S1", text, size) == 'O' ? 0 : -1;
	case TP_PROTO_POP3:
		return pn_send(c, inject ? "STLS\r\nCAPA\r\n" : "STLS\r\n") == 0 &&
		       pop3_reply(c, 0, text, size) == 1 ? 0 : -1;
	}
	return -1;
}

static void check_caps_before(struct probe *p, const char *caps)
{
	enum tp_protocol pr = p->proto;
	char buf[200];

	if (has_cap(caps, pr, upgrade_word[pr]))
		probe_add(p, "starttls-advertised", PROBE_PASS, NULL, "%s offered before TLS",
			  upgrade_word[pr]);
	else
		probe_add(p, "starttls-advertised", PROBE_FAIL,
			  "enable STARTTLS in the server (Postfix smtpd_tls_security_level, Dovecot ssl) with a certificate",
			  "%s not offered before TLS: %s", upgrade_word[pr], first_line(caps, buf, sizeof(buf)));
	if (pr == TP_PROTO_SMTP ? has_cap(caps, pr, "AUTH") || has_cap(caps, pr, "AUTH=") :
	    pr == TP_PROTO_IMAP ? has_cap(caps, pr, "AUTH=") || !has_cap(caps, pr, "LOGINDISABLED") :
	    has_cap(caps, pr, "USER") || pop3_sasl(caps))
		probe_add(p, "auth-hidden", PROBE_FAIL,
			  pr == TP_PROTO_SMTP ? "offer AUTH only after TLS (Postfix: smtpd_tls_auth_only = yes)" :
			  "offer authentication only after TLS (Dovecot: disable_plaintext_auth = yes)",
			  pr == TP_PROTO_SMTP ? "EHLO lists AUTH before TLS" :
			  pr == TP_PROTO_IMAP ? "capabilities before TLS list AUTH= or lack LOGINDISABLED" :
			  "CAPA lists USER or SASL mechanisms before TLS");
	else
		probe_add(p, "auth-hidden", PROBE_PASS, NULL, "%s",
			  pr == TP_PROTO_SMTP ? "EHLO lists no AUTH before TLS" :
			  pr == TP_PROTO_IMAP ? "no AUTH=, LOGINDISABLED present before TLS" :
			  "CAPA lists neither USER nor SASL mechanisms before TLS");
}

#define AUTH_ADVICE_SMTP "refuse AUTH before TLS with 530 5.7.0 (Postfix: smtpd_tls_auth_only = yes)"
#define AUTH_ADVICE_MAIL "refuse authentication before TLS (Dovecot: disable_plaintext_auth = yes)"

/* auth_smtp - AUTH PLAIN with the dummy credential must get 530 5.7.0 */
static void auth_smtp(struct probe *p, struct pn_conn *c)
{
	char text[REPLY_MAX], buf[200];
	int code;

	code = pn_send(c, "AUTH PLAIN " DUMMY_PLAIN "\r\n") == 0 ?
	       smtp_reply(c, text, sizeof(text), WAIT_MS) : -1;
	if (code == 334)	/* a challenge after all: abort it */
		code = pn_send(c, "*\r\n") == 0 ? smtp_reply(c, text, sizeof(text), WAIT_MS) : -1;
	if (code < 0)
		probe_add(p, "auth-refused", PROBE_FAIL, AUTH_ADVICE_SMTP, "no reply to AUTH before TLS");
	else if (code == 530 && strstr(text, "5.7.0") != NULL)
		probe_add(p, "auth-refused", PROBE_PASS, NULL, "%s", first_line(text, buf, sizeof(buf)));
	else if (code == 502 || code == 503 || code == 530 || code == 538)
		probe_add(p, "auth-refused", PROBE_WARN, NULL, "refused, but not with 530 5.7.0: %s",
			  first_line(text, buf, sizeof(buf)));
	else
		probe_add(p, "auth-refused", PROBE_FAIL, AUTH_ADVICE_SMTP,
			  "credentials were checked in clear: %s", first_line(text, buf, sizeof(buf)));
}

/* auth_imap - LOGIN with the dummy credential must get NO [PRIVACYREQUIRED] or BAD */
static void auth_imap(struct probe *p, struct pn_conn *c)
{
	char text[REPLY_MAX], buf[200];
	const char *last;
	int st;

	st = pn_send(c, "L1 LOGIN \"" DUMMY_USER "\" \"" DUMMY_PASS "\"\r\n") == 0 ?
	     imap_reply(c, "L1", text, sizeof(text)) : -1;
	last = strstr(text, "L1 ");
	first_line(last != NULL ? last : text, buf, sizeof(buf));
	if (st == 'B' || (st == 'N' && strcasestr(buf, "[PRIVACYREQUIRED]") != NULL))
		probe_add(p, "auth-refused", PROBE_PASS, NULL, "%s", buf);
	else if (st == 'N' && strcasestr(buf, "[AUTHENTICATIONFAILED]") == NULL)
		probe_add(p, "auth-refused", PROBE_WARN, NULL,
			  "refused, but without [PRIVACYREQUIRED]: %s", buf);
	else
		probe_add(p, "auth-refused", PROBE_FAIL, AUTH_ADVICE_MAIL,
			  st < 0 ? "no reply to LOGIN before TLS" : "credentials were checked in clear: %s", buf);
}

/* auth_pop3 - USER must get -ERR: a +OK asks the client for PASS in clear */
static void auth_pop3(struct probe *p, struct pn_conn *c)
{
	char text[REPLY_MAX], buf[200];
	int st;

	st = pn_send(c, "USER " DUMMY_USER "\r\n") == 0 ? pop3_reply(c, 0, text, sizeof(text)) : -1;
	first_line(st < 0 ? "" : text, buf, sizeof(buf));
	if (st == 0)
		probe_add(p, "auth-refused", PROBE_PASS, NULL, "USER: %s", buf);
	else
		probe_add(p, "auth-refused", PROBE_FAIL, AUTH_ADVICE_MAIL,
			  st < 0 ? "no reply to USER before TLS" : "USER accepted before TLS: %s", buf);
}

/*
 * handshake - the main handshake, verifying the certificate; its check.
 * With error, a failure is not recorded but its reason put there.
 */
static int handshake(struct probe *p, struct pn_conn *c, const char *how, char *error, size_t size)
{
	struct pn_tls t = { .version = PN_ANY, .cafile = p->cafile, .sni = p->servername, .verify = 1 };
	struct pn_result r;

	if (pn_handshake(c, &t, &r, &p->cert) != 0) {
		if (error != NULL) {
			snprintf(error, size, "%s", r.error);
			return -1;
		}
		probe_add(p, "tls-handshake", PROBE_FAIL,
			  "give the server a certificate and allow TLS 1.2 or newer with AEAD suites",
			  "%s handshake failed: %s", how, r.error);
		return -1;
	}
	p->handshake_done = 1;
	p->verify_error = r.verify_error;
	snprintf(p->verify_text, sizeof(p->verify_text), "%s", r.verify_text);
	probe_add(p, "tls-handshake", PROBE_PASS, NULL, "%s handshake: %s %s", how, r.version, r.cipher);
	return 0;
}

/*
 * quiet - nothing may arrive now: 0 if nothing did; else -1, the first
 * line in buf, and the rest of what came read and dropped, so that the
 * next reply read is the answer to the next command
 */
static int quiet(struct pn_conn *c, char *buf, size_t size)
{
	char rest[PN_LINE_MAX];
	int n = pn_line(c, buf, size, QUIET_MS);

	if (n == -2 || n == -1)
		return 0;
	for (int i = 0; i < 1000 && pn_line(c, rest, sizeof(rest), 300) >= 0; i++)
		;
	return -1;
}

static const char *const quit_cmd[] = { "QUIT\r\n", "Q1 LOGOUT\r\n", "QUIT\r\n" };

#define INJECT_ADVICE "discard input pipelined after STARTTLS (CVE-2011-0411); upgrade the server"

static void caps_after_tls(struct probe *p, int got, const char *text);

/* after_tls - injection and capabilities once TLS is up */
static void after_tls(struct probe *p, struct pn_conn *c)
{
	char text[REPLY_MAX], line[PN_LINE_MAX];
	int injected = quiet(c, line, sizeof(line)) != 0, got;

	got = capabilities(c, p->proto, text, sizeof(text)) == 0;
	if (!injected && p->proto == TP_PROTO_SMTP)	/* one reply per command */
		injected = got && quiet(c, line, sizeof(line)) != 0;
	if (!injected && p->proto == TP_PROTO_IMAP && strstr(text, "S2 ") != NULL)
		injected = 1, first_line(strstr(text, "S2 "), line, sizeof(line));
	if (injected)
		probe_add(p, "injection", PROBE_FAIL, INJECT_ADVICE,
			  "the command sent with %s ran after the handshake: %s", upgrade_word[p->proto], line);
	else
		probe_add(p, "injection", PROBE_PASS, NULL, "the command sent with %s was not executed",
			  upgrade_word[p->proto]);
	caps_after_tls(p, got, text);
}

/* caps_after_tls - the upgrade word must be gone from the listing (got: one came) */
static void caps_after_tls(struct probe *p, int got, const char *text)
{
	if (!got)
		probe_add(p, "starttls-not-after", PROBE_FAIL, "check the server's log: it failed after TLS",
			  "no capability listing after TLS");
	else if (has_cap(text, p->proto, upgrade_word[p->proto]))
		probe_add(p, "starttls-not-after", PROBE_FAIL,
			  "stop offering STARTTLS inside TLS (RFC 3207 4.2, RFC 2595 3.1)",
			  "%s still offered after TLS", upgrade_word[p->proto]);
	else
		probe_add(p, "starttls-not-after", PROBE_PASS, NULL, "%s no longer offered after TLS",
			  upgrade_word[p->proto]);
}

/* clean_upgrade - a new connection up to a go-ahead for TLS, nothing pipelined; 0 if so */
static int clean_upgrade(const struct probe *p, struct pn_conn *c, char *err, size_t size)
{
	char text[REPLY_MAX];

	if (pn_dial(c, p->host, p->port, err, size) != 0)
		return -1;
	if (p->tls != TP_TLS_IMPLICIT &&
	    (greeting(c, p->proto, text, sizeof(text)) != 0 ||
	     (p->proto == TP_PROTO_SMTP && capabilities(c, p->proto, text, sizeof(text)) != 0) ||
	     upgrade(c, p->proto, 0, text, sizeof(text)) != 0)) {
		snprintf(err, size, "the %s dialogue failed", upgrade_word[p->proto]);
		pn_close(c);
		return -1;
	}
	return 0;
}

/*
 * clean_retry - the handshake failed after the upgrade with a command
 * pipelined behind it.  A server that keeps the bytes it read with the
 * upgrade command takes them for the start of the handshake and fails it
 * (Dovecot does): the command was not executed, but whether TLS works is
 * still open, so a second session upgrades with nothing pipelined.
 */
static void clean_retry(struct probe *p, const char *why)
{
	char text[REPLY_MAX], err[256];
	struct pn_conn c;

	if (clean_upgrade(p, &c, err, sizeof(err)) != 0) {
		probe_add(p, "tls-handshake", PROBE_FAIL, "enable STARTTLS in the server with a certificate",
			  "%s handshake failed: %s; without a command pipelined: %s", upgrade_word[p->proto],
			  why, err);
		return;
	}
	if (handshake(p, &c, upgrade_word[p->proto], NULL, 0) == 0) {
		probe_add(p, "injection", PROBE_PASS, NULL,
			  "the command sent with %s was not executed: the handshake it was pipelined into failed (%s), one without it worked",
			  upgrade_word[p->proto], why);
		caps_after_tls(p, capabilities(&c, p->proto, text, sizeof(text)) == 0, text);
		pn_send(&c, quit_cmd[p->proto]);
	}
	pn_close(&c);
}

/* starttls_session - greeting, capabilities, AUTH, STARTTLS with injection, after TLS */
static void starttls_session(struct probe *p, struct pn_conn *c)
{
	char text[REPLY_MAX], buf[200], why[256];

	if (greeting(c, p->proto, text, sizeof(text)) != 0) {
		probe_add(p, "greeting", PROBE_FAIL,
			  "serve a plaintext greeting here, or set the port to implicit TLS in the policy",
			  "no %s greeting in clear: %s", proto_upper[p->proto],
			  first_line(text, buf, sizeof(buf)));
		return;
	}
	probe_add(p, "greeting", PROBE_PASS, NULL, "%s", first_line(text, buf, sizeof(buf)));
	if (capabilities(c, p->proto, text, sizeof(text)) != 0) {
		probe_add(p, "starttls-advertised", PROBE_FAIL, "check the server's log",
			  "no capability listing before TLS: %s", first_line(text, buf, sizeof(buf)));
		return;
	}
	check_caps_before(p, text);
	if (p->proto == TP_PROTO_SMTP)
		auth_smtp(p, c);
	else if (p->proto == TP_PROTO_IMAP)
		auth_imap(p, c);
	else
		auth_pop3(p, c);
	if (upgrade(c, p->proto, 1, text, sizeof(text)) != 0) {
		probe_add(p, "tls-handshake", PROBE_FAIL,
			  "enable STARTTLS in the server with a certificate",
			  "%s refused: %s", upgrade_word[p->proto], first_line(text, buf, sizeof(buf)));
		return;
	}
	if (handshake(p, c, upgrade_word[p->proto], why, sizeof(why)) == 0) {
		after_tls(p, c);
		pn_send(c, quit_cmd[p->proto]);
	} else {
		clean_retry(p, why);
	}
}

/* refuse_session - a disabled plaintext port answers with a refusal and closes */
static void refuse_session(struct probe *p, struct pn_conn *c)
{
	static const char *const refusal[] = { "554 ", "* BYE", "-ERR" };
	char line[PN_LINE_MAX];
	int n = pn_line(c, line, sizeof(line), WAIT_MS);

	if (n >= 0 && strncmp(line, refusal[p->proto], strlen(refusal[p->proto])) == 0 &&
	    pn_line(c, line + n, sizeof(line) - (size_t)n, WAIT_MS) == -1)
		probe_add(p, "port-refused", PROBE_PASS, NULL, "%s", line);
	else
		probe_add(p, "port-refused", PROBE_FAIL,
			  "stop serving this port, or put it under tlspolicy with tls = refuse",
			  "the port is open for plaintext sessions: %s", n >= 0 ? line : "no refusal");
}

int probe_session(struct probe *p, char *err, size_t size)
{
	struct pn_conn c;

	if (pn_dial(&c, p->host, p->port, err, size) != 0)
		return -1;
	if (p->tls == TP_TLS_IMPLICIT) {
		char text[REPLY_MAX];

		if (handshake(p, &c, "implicit TLS", NULL, 0) == 0 && greeting(&c, p->proto, text, sizeof(text)) == 0)
			pn_send(&c, quit_cmd[p->proto]);
	} else if (p->tls == TP_TLS_REFUSE) {
		refuse_session(p, &c);
	} else {
		starttls_session(p, &c);
	}
	pn_close(&c);
	return 0;
}

/* protocol_reply - does line look like an SMTP, IMAP or POP3 server speaking? */
static int protocol_reply(enum tp_protocol proto, const char *line)
{
	switch (proto) {
	case TP_PROTO_SMTP:
		return isdigit((unsigned char)line[0]) && isdigit((unsigned char)line[1]) &&
		       isdigit((unsigned char)line[2]) && (line[3] == ' ' || line[3] == '-' || !line[3]);
	case TP_PROTO_IMAP:
		return strncmp(line, "* ", 2) == 0 || strncmp(line, "P1 ", 3) == 0;
	case TP_PROTO_POP3:
		return strncmp(line, "+OK", 3) == 0 || strncmp(line, "-ERR", 4) == 0;
	}
	return 0;
}

void probe_plaintext_refused(struct probe *p)
{
	static const char *const hello[] = { "EHLO probe.invalid\r\n", "P1 CAPABILITY\r\n", "CAPA\r\n" };
	char err[256], line[PN_LINE_MAX];
	time_t end = time(NULL) + 3;
	struct pn_conn c;

	if (pn_dial(&c, p->host, p->port, err, sizeof(err)) != 0) {
		probe_add(p, "plaintext-refused", PROBE_WARN, NULL, "not tested: %s", err);
		return;
	}
	pn_send(&c, hello[p->proto]);
	while (time(NULL) <= end) {
		int n = pn_line(&c, line, sizeof(line), 1000);

		if (n == -1)
			break;
		if (n >= 0 && protocol_reply(p->proto, line)) {
			probe_add(p, "plaintext-refused", PROBE_FAIL,
				  "serve only TLS on this port (e.g. Postfix smtpd_tls_wrappermode = yes, Dovecot ssl = yes on the listener)",
				  "the server answered in clear: %s", line);
			pn_close(&c);
			return;
		}
	}
	pn_close(&c);
	probe_add(p, "plaintext-refused", PROBE_PASS, NULL, "no %s reply to a plaintext command",
		  proto_upper[p->proto]);
}

int probe_attempt(const struct probe *p, const struct pn_tls *t, struct pn_result *r)
{
	struct pn_conn c;
	int rc;

	memset(r, 0, sizeof(*r));
	if (clean_upgrade(p, &c, r->error, sizeof(r->error)) != 0)
		return -3;
	rc = pn_handshake(&c, t, r, NULL);
	pn_close(&c);
	return rc;
}
