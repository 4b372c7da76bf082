/*
 * check_filter.c - unit tests of the protocol filters (Check)
 *
 * Table-driven and byte-exact: each row is a session (protocol, mode,
 * tls_by, audit) and a script of steps, "the daemon sends X", "the
 * client sends Y", "the handshake finished", each with the exact bytes
 * the filter must forward to the daemon and send to the client, its
 * flags and its events.  Every row runs twice: each step in one call,
 * and each step one byte per call (the concatenated output must be the
 * same: framing may never depend on how TCP cut the stream).  A third
 * test makes sure that no row could pass with a filter that does nothing
 * or passes everything through.
 *
 * The expected replies come from policy/replies.h, except where a row
 * checks the formatting itself (the refusals naming a port) and the
 * protocol error replies, which are not policy.
 *
 * "check_filter --seeds DIR" writes the rows as seeds for the fuzz target
 * (tests/fuzz/fuzz_filter.c, which documents the format).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "bytes.h"
#include "replies.h"

/* --- the table ---------------------------------------------------------------- */

struct step {
	char kind;		/* 'c' client, 's' daemon, 't' TLS done, 'r' refusal line */
	const char *in;
	size_t in_len;
	const char *to_server;
	size_t ts_len;
	const char *to_client;	/* for 'r': the refusal line */
	size_t tc_len;
	unsigned flags;
	const char *events;	/* "action/reason[/bytes]", space-separated */
};

#define MAX_STEPS 14

struct row {
	const char *name;
	enum tp_protocol proto;
	enum tp_tls_mode mode;
	enum tp_tls_by by;
	int audit;
	int alt_port;
	struct step steps[MAX_STEPS];
};

/* the arguments are string literals: their sizes are the lengths, NULs included */
#define C(in, ts, tc, fl, ev) \
	{ 'c', in, sizeof(in) - 1, ts, sizeof(ts) - 1, tc, sizeof(tc) - 1, fl, ev }
#define S(in, ts, tc, fl, ev) \
	{ 's', in, sizeof(in) - 1, ts, sizeof(ts) - 1, tc, sizeof(tc) - 1, fl, ev }
#define TLS() { 't', "", 0, "", 0, "", 0, 0, "" }
#define REFUSAL(line) { 'r', "", 0, "", 0, line, sizeof(line) - 1, 0, "" }
/* the daemon or the client says something that passes unchanged */
#define SPASS(x) S(x, "", x, 0, "")
#define CPASS(x) C(x, x, "", 0, "")

#define ST TP_FILTER_START_TLS
#define EX TP_FILTER_EXPECT_TLS
#define CL TP_FILTER_CLOSE

#define SMTP TP_PROTO_SMTP
#define IMAP TP_PROTO_IMAP
#define POP3 TP_PROTO_POP3
#define IMPLICIT TP_TLS_IMPLICIT
#define STARTTLS TP_TLS_STARTTLS
#define OPPORT TP_TLS_OPPORTUNISTIC
#define REFUSE TP_TLS_REFUSE
#define MODULE TP_BY_MODULE
#define DAEMON TP_BY_DAEMON

/* long lines */
#define A16 "aaaaaaaaaaaaaaaa"
#define A32 A16 A16
#define A64 A32 A32
#define A128 A64 A64
#define A256 A128 A128
#define A512 A256 A256
#define A2048 A512 A512 A512 A512
#define A8192 A2048 A2048 A2048 A2048
#define CLIENT_HELLO "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"

/* the protocol errors (filter_int.h; not policy, so not in replies.h) */
#define SMTP_TOO_LONG "500 5.5.2 Error: line too long\r\n"
#define SMTP_BAD_REPLY "421 4.3.0 Error: the mail server sent a reply line too long\r\n"
#define SMTP_QUEUE_FULL "421 4.7.0 Error: too many pipelined commands\r\n"
#define SMTP_AMBIGUOUS "421 4.5.0 Error: ambiguous end of data (\".\" then CR CR LF)\r\n"
#define IMAP_TOO_LONG "* BYE Line too long\r\n"
#define IMAP_QUEUE_FULL "* BYE Too many pipelined commands\r\n"
#define POP3_TOO_LONG "-ERR Line too long\r\n"

/* SMTP: a Postfix-like daemon */
#define SMTP_GREET "220 mx.example.org ESMTP\r\n"
#define EHLO_S "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" \
	"250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n" \
	"250-8BITMIME\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"
#define EHLO_PRE "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n" \
	"250-STARTTLS\r\n250 SMTPUTF8\r\n"
#define EHLO_TLS_S "250-mx.example.org\r\n250-PIPELINING\r\n250-STARTTLS\r\n" \
	"250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
#define EHLO_TLS_POST "250-mx.example.org\r\n250-PIPELINING\r\n" \
	"250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
#define AUTH_PLAIN "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n"
#define SMTP_NEED TP_SMTP_NEED_TLS "\r\n"
#define SMTP_GO TP_SMTP_GO_TLS "\r\n"
#define SMTP_ACTIVE TP_SMTP_TLS_ACTIVE "\r\n"
#define MAIL4 "MAIL FROM:<a>\r\nMAIL FROM:<a>\r\nMAIL FROM:<a>\r\nMAIL FROM:<a>\r\n"
#define MAIL64 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 \
	MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4 MAIL4
#define RCPT4 "RCPT TO:<b@example.org>\r\nRCPT TO:<b@example.org>\r\n" \
	"RCPT TO:<b@example.org>\r\nRCPT TO:<b@example.org>\r\n"
#define RCPT20 RCPT4 RCPT4 RCPT4 RCPT4 RCPT4
#define RCPT100 RCPT20 RCPT20 RCPT20 RCPT20 RCPT20
#define OK4 "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
#define OK20 OK4 OK4 OK4 OK4 OK4
#define OK100 OK20 OK20 OK20 OK20 OK20
#define REFUSE7 "refuse/command-before-tls refuse/command-before-tls " \
	"refuse/command-before-tls refuse/command-before-tls refuse/command-before-tls " \
	"refuse/command-before-tls refuse/command-before-tls"

/* IMAP: a Dovecot-like daemon */
#define IMAP_GREET "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE " \
	"LITERAL+ AUTH=PLAIN AUTH=LOGIN] Dovecot ready.\r\n"
#define IMAP_GREET_PRE "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS ID ENABLE IDLE " \
	"STARTTLS LOGINDISABLED] Dovecot ready.\r\n"
#define IMAP_GREET_NOLIT "* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] ready.\r\n"
#define IMAP_GREET_NOLIT_PRE "* OK [CAPABILITY IMAP4rev1 ID STARTTLS LOGINDISABLED] ready.\r\n"
#define IMAP_NO TP_IMAP_NEED_TLS "\r\n"
#define IMAP_NONSYNC TP_IMAP_NONSYNC_LITERAL "\r\n"
#define IMAP_BAD TP_IMAP_TLS_ACTIVE "\r\n"
#define LOGIN4 "a LOGIN u p\r\na LOGIN u p\r\na LOGIN u p\r\na LOGIN u p\r\n"
#define LOGIN64 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 \
	LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4 LOGIN4
#define REFUSE7_AUTH "refuse/auth-before-tls refuse/auth-before-tls " \
	"refuse/auth-before-tls refuse/auth-before-tls refuse/auth-before-tls " \
	"refuse/auth-before-tls refuse/auth-before-tls"

/* POP3: a Dovecot-like daemon */
#define POP_GREET "+OK Dovecot ready.\r\n"
#define CAPA_S "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n" \
	"AUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\n.\r\n"
#define CAPA_PRE "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\n" \
	"AUTH-RESP-CODE\r\nSTLS\r\n.\r\n"
#define CAPA_TLS_S "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
#define CAPA_TLS_POST "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nUSER\r\nSASL PLAIN\r\n.\r\n"
#define POP_NEED TP_POP3_NEED_TLS "\r\n"
#define POP_GO TP_POP3_GO_TLS "\r\n"
#define POP_ACTIVE TP_POP3_TLS_ACTIVE "\r\n"

static const struct row rows[] = {
	/* ------------------------------------------------------------ SMTP */
	{ "smtp: EHLO reply loses AUTH, gains STARTTLS", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO client.example.org\r\n"),
		S(EHLO_S, "", EHLO_PRE, 0, ""),
	} },
	{ "smtp: one-line EHLO reply keeps the domain first", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S("250 mx.example.org\r\n", "", "250-mx.example.org\r\n250 STARTTLS\r\n", 0, ""),
	} },
	{ "smtp: EHLO reply ending in AUTH gets a new last line", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S("250-mx.example.org\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n", "",
		  "250-mx.example.org\r\n250-STARTTLS\r\n250 PIPELINING\r\n", 0, ""),
	} },
	{ "smtp: daemon doing TLS: its STARTTLS kept once, AUTH dropped", SMTP, STARTTLS, DAEMON, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S("250-mx.example.org\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n", "",
		  "250-mx.example.org\r\n250 STARTTLS\r\n", 0, ""),
	} },
	{ "smtp: EHLO error passes, AUTH still refused", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		SPASS("502 5.5.2 Error: command not recognized\r\n"),
		C(AUTH_PLAIN, "", SMTP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "smtp: STARTTLS upgrade, then the session inside TLS", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S(EHLO_S, "", EHLO_PRE, 0, ""),
		C("STARTTLS\r\n", "", SMTP_GO, ST, "starttls"),
		TLS(),
		CPASS("EHLO c\r\n"),
		S(EHLO_TLS_S, "", EHLO_TLS_POST, 0, ""),
		CPASS(AUTH_PLAIN),
		SPASS("235 2.7.0 Authentication successful\r\n"),
	} },
	{ "smtp: AUTH before TLS, starttls mode", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C(AUTH_PLAIN, "", SMTP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "smtp: AUTH before TLS, opportunistic mode; no 334 for AUTH LOGIN", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C(AUTH_PLAIN, "", SMTP_NEED, 0, "refuse/auth-before-tls"),
		C("AUTH LOGIN\r\n", "", SMTP_NEED, 0, "refuse/auth-before-tls"),
		CPASS("NOOP\r\n"),
		SPASS("250 2.0.0 Ok\r\n"),
	} },
	{ "smtp: lower case, TAB and leading space are still AUTH", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("auth plain AHVzZXIAc2VjcmV0\r\n", "", SMTP_NEED, 0, "refuse/auth-before-tls"),
		C("AUTH\tPLAIN AHVzZXIAc2VjcmV0\r\n", "", SMTP_NEED, 0, "refuse/auth-before-tls"),
		C(" AUTH PLAIN AHVzZXIAc2VjcmV0\r\n", "", SMTP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "smtp: mail transaction refused before TLS, starttls mode", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("MAIL FROM:<a@example.org>\r\n", "", SMTP_NEED, 0, "refuse/command-before-tls"),
		C("RCPT TO:<b@example.org>\r\n", "", SMTP_NEED, 0, "refuse/command-before-tls"),
		C("DATA\r\n", "", SMTP_NEED, 0, "refuse/command-before-tls"),
		C("Subject: not a body\r\n", "", SMTP_NEED, 0, "refuse/command-before-tls"),
		C("VRFY root\r\n", "", SMTP_NEED, 0, "refuse/command-before-tls"),
	} },
	{ "smtp: RSET NOOP HELO QUIT pass in starttls mode, the 530 in its turn", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("RSET\r\nVRFY root\r\nNOOP\r\nHELO c\r\nQUIT\r\n", "RSET\r\nNOOP\r\nHELO c\r\nQUIT\r\n",
		  "", 0, "refuse/command-before-tls"),
		S("250 2.0.0 Ok\r\n", "", "250 2.0.0 Ok\r\n" SMTP_NEED, 0, ""),
		SPASS("250 2.0.0 Ok\r\n250 mx.example.org\r\n221 2.0.0 Bye\r\n"),
	} },
	{ "smtp: opportunistic mail passes, a body with AUTH and STARTTLS untouched", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S(EHLO_S, "", EHLO_PRE, 0, ""),
		CPASS("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"),
		SPASS("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"),
		CPASS("Subject: test\r\n\r\n" AUTH_PLAIN "STARTTLS\r\n..leading dot\r\n.\r\n"),
		SPASS("250 2.0.0 Ok: queued as 4F1\r\n"),
		CPASS("QUIT\r\n"),
	} },
	{ "smtp: DATA refused by the daemon: the held AUTH is a command", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("MAIL FROM:<a@example.org>\r\nDATA\r\n" AUTH_PLAIN,
		  "MAIL FROM:<a@example.org>\r\nDATA\r\n", "", 0, ""),
		S("250 2.1.0 Ok\r\n554 5.5.1 Error: no valid recipients\r\n", "",
		  "250 2.1.0 Ok\r\n554 5.5.1 Error: no valid recipients\r\n" SMTP_NEED, 0,
		  "refuse/auth-before-tls"),
	} },
	{ "smtp: the body is held until 354", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("DATA\r\nSubject: x\r\n\r\nhello\r\n.\r\n", "DATA\r\n", "", 0, ""),
		S("354 End data with <CR><LF>.<CR><LF>\r\n", "Subject: x\r\n\r\nhello\r\n.\r\n",
		  "354 End data with <CR><LF>.<CR><LF>\r\n", 0, ""),
		SPASS("250 2.0.0 Ok: queued as 4F1\r\n"),
	} },
	{ "smtp: BDAT before TLS refused, opportunistic: its chunk dropped, not parsed", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S(EHLO_S, "", EHLO_PRE, 0, ""),
		C("BDAT 17 LAST\r\n\x00\x01\xff\r\nAUTH PLAIN\r\nNOOP\r\n", "NOOP\r\n", SMTP_NEED, 0,
		  "refuse/command-before-tls"),
		SPASS("250 2.0.0 Ok\r\n"),
	} },
	{ "smtp: BDAT sizes the daemon rejects cannot smuggle AUTH before TLS", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S(EHLO_S, "", EHLO_PRE, 0, ""),
		/* Postfix: 501, then it reads the "chunk" as commands; the daemon never sees either */
		C("BDAT 29 X\r\n" AUTH_PLAIN, "", SMTP_NEED, 0, "refuse/command-before-tls"),
		CPASS("NOOP\r\n"),
	} },
	{ "smtp: BDAT with binary data inside TLS passes unchanged", SMTP, IMPLICIT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		SPASS(EHLO_S),
		C("BDAT 17 LAST\r\n\x00\x01\xff\r\nSTARTTLS\r\n\r\nSTARTTLS\r\n",
		  "BDAT 17 LAST\r\n\x00\x01\xff\r\nSTARTTLS\r\n\r\n", "", 0, "refuse/tls-already-active"),
		S("250 2.0.0 Ok: 17 octets\r\n", "", "250 2.0.0 Ok: 17 octets\r\n" SMTP_ACTIVE, 0, ""),
	} },
	{ "smtp: refused BDAT: its chunk is dropped, not parsed", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("BDAT 10 LAST\r\nAUTH x\r\nyzNOOP\r\n", "NOOP\r\n", SMTP_NEED, 0,
		  "refuse/command-before-tls"),
		SPASS("250 2.0.0 Ok\r\n"),
	} },
	{ "smtp: EHLO and AUTH pipelined: the 530 after the EHLO reply", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("EHLO c\r\n" AUTH_PLAIN, "EHLO c\r\n", "", 0, "refuse/auth-before-tls"),
		S(EHLO_S, "", EHLO_PRE SMTP_NEED, 0, ""),
	} },
	{ "smtp: a local reply waits for the whole greeting", SMTP, STARTTLS, MODULE, 0, 0, {
		C(AUTH_PLAIN, "", "", 0, "refuse/auth-before-tls"),
		SPASS("220-mx.example.org ESMTP\r\n"),
		S("220 mx.example.org ready\r\n", "", "220 mx.example.org ready\r\n" SMTP_NEED, 0, ""),
	} },
	{ "smtp: injection, STARTTLS and EHLO in one segment", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S(EHLO_S, "", EHLO_PRE, 0, ""),
		C("STARTTLS\r\nEHLO x\r\n", "", SMTP_GO, ST, "starttls discard/injection/8"),
		TLS(),
		CPASS("EHLO c\r\n"),
		SPASS(EHLO_S),
	} },
	{ "smtp: injection in later calls", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("STARTTLS\r\n", "", SMTP_GO, ST, "starttls"),
		C("EHLO x\r\n", "", "", 0, "discard/injection/8"),
		C(AUTH_PLAIN, "", "", 0, "discard/injection/29"),
		TLS(),
		CPASS("EHLO c\r\n"),
	} },
	{ "smtp: injection split inside STARTTLS", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("STAR", "", "", 0, ""),
		C("TTLS\r\nEH", "", SMTP_GO, ST, "starttls discard/injection/2"),
		C("LO x\r\n", "", "", 0, "discard/injection/6"),
		TLS(),
		CPASS("NOOP\r\n"),
	} },
	{ "smtp: STARTTLS pipelined after EHLO: upgrade after its reply", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("EHLO c\r\nSTARTTLS\r\nMAIL FROM:<x>\r\n", "EHLO c\r\n", "", 0,
		  "discard/injection/15"),
		S(EHLO_S, "", EHLO_PRE SMTP_GO, ST, "starttls"),
		TLS(),
		CPASS("EHLO c\r\n"),
	} },
	{ "smtp: STARTTLS inside TLS refused", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("STARTTLS\r\n", "", SMTP_GO, ST, "starttls"),
		TLS(),
		C("STARTTLS\r\n", "", SMTP_ACTIVE, 0, "refuse/tls-already-active"),
		CPASS("NOOP\r\n"),
	} },
	{ "smtp: implicit TLS: STARTTLS refused and removed, AUTH passes", SMTP, IMPLICIT, MODULE, 0, 0, {
		TLS(),
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S(EHLO_TLS_S, "", EHLO_TLS_POST, 0, ""),
		C("STARTTLS\r\n", "", SMTP_ACTIVE, 0, "refuse/tls-already-active"),
		CPASS(AUTH_PLAIN),
		SPASS("235 2.7.0 Authentication successful\r\n"),
	} },
	{ "smtp: implicit TLS: pipelined STARTTLS answered in its turn", SMTP, IMPLICIT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("NOOP\r\nSTARTTLS\r\nNOOP\r\n", "NOOP\r\nNOOP\r\n", "", 0, "refuse/tls-already-active"),
		S("250 2.0.0 Ok\r\n", "", "250 2.0.0 Ok\r\n" SMTP_ACTIVE, 0, ""),
		SPASS("250 2.0.0 Ok\r\n"),
	} },
	{ "smtp: tls_by daemon: STARTTLS forwarded, the rest discarded, records pass", SMTP, STARTTLS, DAEMON, 0, 0, {
		SPASS(SMTP_GREET),
		C("STARTTLS\r\nEHLO x\r\n", "STARTTLS\r\n", "", 0, "discard/injection/8"),
		S("220 2.0.0 Ready to start TLS\r\n", "", "220 2.0.0 Ready to start TLS\r\n", EX, "starttls"),
		CPASS("\x16\x03\x01\x00\x05hello"),
		SPASS("\x16\x03\x03\x00\x02hi"),
		TLS(),
		CPASS("\x17\x03\x03\x00\x01x"),
	} },
	{ "smtp: tls_by daemon: the daemon refuses the upgrade", SMTP, OPPORT, DAEMON, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("STARTTLS\r\n"),
		SPASS("454 4.7.0 TLS not available due to local problem\r\n"),
		C(AUTH_PLAIN, "", SMTP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "smtp: ClientHello on a STARTTLS port", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C(CLIENT_HELLO, "", "", CL, "refuse/tls-on-starttls-port"),
	} },
	{ "smtp: ClientHello split, opportunistic", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("\x16", "", "", 0, ""),
		C("\x03\x01\x00\xa5", "", "", CL, "refuse/tls-on-starttls-port"),
		C("EHLO x\r\n", "", "", CL, ""),
	} },
	{ "smtp: a 512-octet command passes, 513 closes", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("NOOP " A256 A128 A64 A32 A16 "aaaaaaaaa\r\n"),
		C("NOOP " A256 A128 A64 A32 A16 "aaaaaaaaaa\r\n", "", SMTP_TOO_LONG, CL,
		  "close/line-too-long"),
	} },
	{ "smtp: a long line inside TLS streams through", SMTP, IMPLICIT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("NOOP " A512 "\r\n"),
		SPASS("250 2.0.0 Ok\r\n"),
		C("STARTTLS\r\n", "", SMTP_ACTIVE, 0, "refuse/tls-already-active"),
	} },
	{ "smtp: an EHLO reply line over 512 octets closes", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		S("250-mx.example.org\r\n250-X" A512 "\r\n250 OK\r\n", "", SMTP_BAD_REPLY, CL,
		  "close/line-too-long"),
	} },
	{ "smtp: the queue of pipelined commands is bounded", SMTP, STARTTLS, MODULE, 0, 0, {
		C(MAIL64, "", SMTP_QUEUE_FULL, CL, REFUSE7 " close/queue-full"),
	} },
	{ "smtp: a hundred pipelined recipients fit the queue", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("MAIL FROM:<a@example.org>\r\n" RCPT100 AUTH_PLAIN,
		  "MAIL FROM:<a@example.org>\r\n" RCPT100, "", 0, "refuse/auth-before-tls"),
		S("250 2.1.0 Ok\r\n" OK100, "", "250 2.1.0 Ok\r\n" OK100 SMTP_NEED, 0, ""),
	} },
	{ "smtp: audit lets AUTH and MAIL through, and logs them", SMTP, STARTTLS, MODULE, 1, 0, {
		SPASS(SMTP_GREET),
		CPASS("EHLO c\r\n"),
		SPASS(EHLO_S),
		C(AUTH_PLAIN, AUTH_PLAIN, "", 0, "would-refuse/auth-before-tls"),
		SPASS("235 2.7.0 Authentication successful\r\n"),
		C("MAIL FROM:<a@example.org>\r\n", "MAIL FROM:<a@example.org>\r\n", "", 0,
		  "would-refuse/command-before-tls"),
	} },
	{ "smtp: audit: the upgrade works, injection is discarded", SMTP, STARTTLS, MODULE, 1, 0, {
		SPASS(SMTP_GREET),
		C("STARTTLS\r\nEHLO x\r\n", "", SMTP_GO, ST, "starttls discard/injection/8"),
		TLS(),
		C("STARTTLS\r\n", "STARTTLS\r\n", "", 0, "would-refuse/tls-already-active"),
		SPASS("554 5.5.1 Error: TLS already active\r\n"),
		CPASS("NOOP\r\n"),
	} },
	{ "smtp: SASL exchange inside TLS: its lines are data", SMTP, IMPLICIT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("AUTH LOGIN\r\n"),
		SPASS("334 VXNlcm5hbWU6\r\n"),
		CPASS("STARTTLS\r\n"),
		SPASS("334 UGFzc3dvcmQ6\r\n"),
		CPASS("c2VjcmV0\r\n"),
		SPASS("235 2.7.0 Authentication successful\r\n"),
		C("STARTTLS\r\n", "", SMTP_ACTIVE, 0, "refuse/tls-already-active"),
	} },
	{ "smtp: a bare LF ends a command", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("NOOP\nAUTH PLAIN AHVzZXIAc2VjcmV0\n", "NOOP\n", "", 0, "refuse/auth-before-tls"),
		S("250 2.0.0 Ok\r\n", "", "250 2.0.0 Ok\r\n" SMTP_NEED, 0, ""),
	} },
	{ "smtp: LF.LF ends the body: no AUTH smuggled behind it", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("DATA\r\n"),
		SPASS("354 go ahead\r\n"),
		C("x\n.\n" AUTH_PLAIN, "x\n.\n", "", 0, "refuse/auth-before-tls"),
		S("250 2.0.0 Ok: queued\r\n", "", "250 2.0.0 Ok: queued\r\n" SMTP_NEED, 0, ""),
	} },
	{ "smtp: .CR CR LF ends the data for Postfix, not Exim: closed before TLS", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("DATA\r\n"),
		SPASS("354 go ahead\r\n"),
		C("x\r\n.\r\r\n" AUTH_PLAIN, "x\r\n.\r\r", SMTP_AMBIGUOUS, CL, "close/ambiguous-end-of-data"),
	} },
	{ "smtp: CR LF . LF ends the body: no AUTH smuggled behind it", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("DATA\r\n"),
		SPASS("354 go ahead\r\n"),
		C("x\r\n.\n" AUTH_PLAIN, "x\r\n.\n", "", 0, "refuse/auth-before-tls"),
		S("250 2.0.0 Ok: queued\r\n", "", "250 2.0.0 Ok: queued\r\n" SMTP_NEED, 0, ""),
	} },
	{ "smtp: a bare CR starts no line, a NUL ends none: both stay body", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("DATA\r\n"),
		SPASS("354 go ahead\r\n"),
		CPASS("x\r.\r\nAUTH PLAIN x\r\n.\x00\r\nAUTH PLAIN y\r\n.\r\n"),
		SPASS("250 2.0.0 Ok: queued\r\n"),
		C(AUTH_PLAIN, "", SMTP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "smtp: audit: .CR CR LF is logged and ends the data, as Postfix does", SMTP, OPPORT, MODULE, 1, 0, {
		SPASS(SMTP_GREET),
		CPASS("DATA\r\n"),
		SPASS("354 go ahead\r\n"),
		C("x\r\n.\r\r\n" AUTH_PLAIN, "x\r\n.\r\r\n" AUTH_PLAIN, "", 0,
		  "would-refuse/ambiguous-end-of-data would-refuse/auth-before-tls"),
	} },
	{ "smtp: inside TLS .CR CR LF ends the data, as Postfix does", SMTP, IMPLICIT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		CPASS("DATA\r\n"),
		SPASS("354 go ahead\r\n"),
		C("x\r\n.\r\r\r\nSTARTTLS\r\n", "x\r\n.\r\r\r\n", "", 0, "refuse/tls-already-active"),
		S("250 2.0.0 Ok: queued\r\n", "", "250 2.0.0 Ok: queued\r\n" SMTP_ACTIVE, 0, ""),
	} },
	{ "smtp: commands as Postfix reads them: up to a NUL, CRs before LF stripped", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("AUTH\x00 PLAIN AHVzZXIAc2VjcmV0\r\n", "", SMTP_NEED, 0, "refuse/auth-before-tls"),
		C("NOOP\r\r\nAUTH PLAIN AHVzZXIAc2VjcmV0\r\r\n", "NOOP\r\r\n", "", 0, "refuse/auth-before-tls"),
		S("250 2.0.0 Ok\r\n", "", "250 2.0.0 Ok\r\n" SMTP_NEED, 0, ""),
		C("STARTTLS\x00 x\r\n", "", SMTP_GO, ST, "starttls"),
	} },
	{ "smtp: the daemon's bytes during the upgrade are dropped", SMTP, STARTTLS, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("STARTTLS\r\n", "", SMTP_GO, ST, "starttls"),
		S("421 4.4.2 mx.example.org Error: timeout exceeded\r\n", "", "", 0,
		  "discard/server-during-upgrade/50"),
		TLS(),
		CPASS("NOOP\r\n"),
		SPASS("250 2.0.0 Ok\r\n"),
	} },
	{ "smtp: audit: a ClientHello is logged, then the session passes", SMTP, STARTTLS, MODULE, 1, 0, {
		SPASS(SMTP_GREET),
		C(CLIENT_HELLO, CLIENT_HELLO, "", 0, "would-refuse/tls-on-starttls-port"),
		SPASS("500 5.5.2 Error: command not recognized\r\n"),
		CPASS(AUTH_PLAIN),
	} },
	{ "smtp: audit: a long line before TLS is logged and passes", SMTP, OPPORT, MODULE, 1, 0, {
		SPASS(SMTP_GREET),
		C("NOOP " A512 "\r\n", "NOOP " A512 "\r\n", "", 0, "would-refuse/line-too-long"),
		SPASS("250 2.0.0 Ok\r\n"),
	} },
	{ "smtp: more than 8 KiB sent before 354 closes", SMTP, OPPORT, MODULE, 0, 0, {
		SPASS(SMTP_GREET),
		C("DATA\r\n" A8192 "\r\n", "DATA\r\n", SMTP_QUEUE_FULL, CL, "close/queue-full"),
	} },
	{ "smtp: refuse mode names the implicit port", SMTP, REFUSE, MODULE, 0, 465, {
		REFUSAL("554 5.7.0 This plaintext port is disabled by policy; use port 465 with TLS"),
		C("EHLO x\r\n", "", "", CL, "close/port-disabled"),
	} },
	{ "smtp: refuse mode without another port", SMTP, REFUSE, MODULE, 0, 0, {
		REFUSAL("554 5.7.0 This plaintext port is disabled by policy; use TLS"),
		S("220 mx ESMTP\r\n", "", "", CL, "close/port-disabled"),
	} },

	/* ------------------------------------------------------------ IMAP */
	{ "imap: greeting and CAPABILITY lose AUTH=, gain STARTTLS LOGINDISABLED", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		CPASS("a CAPABILITY\r\n"),
		S("* CAPABILITY IMAP4rev1 SASL-IR ID IDLE LITERAL+ AUTH=PLAIN\r\n"
		  "a OK Pre-login capabilities listed.\r\n", "",
		  "* CAPABILITY IMAP4rev1 ID IDLE STARTTLS LOGINDISABLED\r\n"
		  "a OK Pre-login capabilities listed.\r\n", 0, ""),
	} },
	{ "imap: greeting split inside CAPABILITY", IMAP, OPPORT, MODULE, 0, 0, {
		S("* OK [CAPAB", "", "", 0, ""),
		S("ILITY IMAP4rev1 AUTH=PLAIN] ready.\r\n", "",
		  "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready.\r\n", 0, ""),
	} },
	{ "imap: a daemon doing TLS: STARTTLS kept once, AUTH= dropped", IMAP, STARTTLS, DAEMON, 0, 0, {
		S("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=PLAIN] ready.\r\n", "",
		  "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready.\r\n", 0, ""),
	} },
	{ "imap: a [CAPABILITY] code in a tagged reply is rewritten", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		CPASS("a ID NIL\r\n"),
		S("* ID NIL\r\na OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2] ID completed.\r\n", "",
		  "* ID NIL\r\na OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ID completed.\r\n", 0, ""),
	} },
	{ "imap: LOGIN refused", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a LOGIN bob secret\r\n", "", "a " IMAP_NO, 0, "refuse/auth-before-tls"),
	} },
	{ "imap: LOGIN refused, opportunistic, any case", IMAP, OPPORT, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a LOGIN bob secret\r\n", "", "a " IMAP_NO, 0, "refuse/auth-before-tls"),
		C("b login bob secret\r\n", "", "b " IMAP_NO, 0, "refuse/auth-before-tls"),
	} },
	{ "imap: LOGIN {n}: the NO at once, no continuation", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a LOGIN {3}\r\n", "", "a " IMAP_NO, 0, "refuse/auth-before-tls"),
		CPASS("b NOOP\r\n"),
		SPASS("b OK NOOP completed.\r\n"),
	} },
	{ "imap: LOGIN {n+} before TLS closes, nothing forwarded", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a LOGIN {3+}\r\nbob {6+}\r\nsecret\r\nb NOOP\r\n", "", IMAP_NONSYNC, CL,
		  "refuse/auth-before-tls close/nonsync-literal"),
	} },
	{ "imap: a {n+} split across calls closes, opportunistic", IMAP, OPPORT, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a LOGIN bob {6", "", "", 0, ""),
		C("+}\r\nsec", "", IMAP_NONSYNC, CL, "refuse/auth-before-tls close/nonsync-literal"),
		C("ret\r\nb NOOP\r\n", "", "", CL, ""),
	} },
	{ "imap: invalid tag, {n+}: Dovecot runs the literal, the filter closes first", IMAP, OPPORT, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		/* Dovecot: "* BAD Error in IMAP command received by server.", skips to LF, logs in */
		C("x* ID {27+}\r\na LOGIN test secret\r\n", "", IMAP_NONSYNC, CL, "close/nonsync-literal"),
	} },
	{ "imap: invalid tag, {n}: no literal to the daemon, the next line is a command", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		/* an untagged BAD completes nothing: the NO is not held behind it */
		C("x* ID {18}\r\na LOGIN test secret\r\nb NOOP\r\n", "x* ID {18}\r\nb NOOP\r\n",
		  "a " IMAP_NO, 0, "refuse/auth-before-tls"),
		SPASS("* BAD Error in IMAP command received by server.\r\n"),
		SPASS("b OK NOOP completed.\r\n"),
	} },
	{ "imap: tags as Dovecot reads them: ], TAB, NUL, a leading space, 8-bit", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a] ID {4}\r\n" "c\tID {4}\r\n" "d\0 ID {4}\r\n" " e ID {4}\r\n" "\xe9 ID {4}\r\n"
		  "f LOGIN u p\r\n",
		  "a] ID {4}\r\n" "c\tID {4}\r\n" "d\0 ID {4}\r\n" " e ID {4}\r\n" "\xe9 ID {4}\r\n",
		  "f " IMAP_NO, 0, "refuse/auth-before-tls"),
		SPASS("* BAD Error in IMAP command received by server.\r\n"),
	} },
	{ "imap: a literal over 8 KiB before TLS closes", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a ID {9000}\r\n", "a ID {9000}\r\n", IMAP_TOO_LONG, CL, "close/line-too-long"),
	} },
	{ "imap: AUTHENTICATE refused, no challenge", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a AUTHENTICATE PLAIN\r\n", "", "a " IMAP_NO, 0, "refuse/auth-before-tls"),
		CPASS("b NOOP\r\n"),
	} },
	{ "imap: SASL-IR credentials dropped", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\n", "", "a " IMAP_NO, 0,
		  "refuse/auth-before-tls"),
	} },
	{ "imap: injection, A STARTTLS and B NOOP in one segment", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("A STARTTLS\r\nB NOOP\r\n", "", "A " TP_IMAP_GO_TLS "\r\n", ST,
		  "starttls discard/injection/8"),
		TLS(),
		CPASS("C CAPABILITY\r\n"),
		S("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=PLAIN\r\nC OK Capability completed.\r\n", "",
		  "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nC OK Capability completed.\r\n", 0, ""),
		CPASS("D LOGIN bob secret\r\n"),
		SPASS("D OK Logged in\r\n"),
	} },
	{ "imap: injection in a later call", IMAP, OPPORT, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("A STARTTLS\r\n", "", "A " TP_IMAP_GO_TLS "\r\n", ST, "starttls"),
		C("B LOGIN bob secret\r\n", "", "", 0, "discard/injection/20"),
		TLS(),
		CPASS("C NOOP\r\n"),
	} },
	{ "imap: STARTTLS inside TLS", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		C("x STARTTLS\r\n", "", "x " IMAP_BAD, 0, "refuse/tls-already-active"),
		CPASS("y LOGIN bob secret\r\n"),
	} },
	{ "imap: a pipelined LOGIN answered in its turn", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a NOOP\r\nb LOGIN bob secret\r\nc NOOP\r\n", "a NOOP\r\nc NOOP\r\n", "", 0,
		  "refuse/auth-before-tls"),
		S("a OK NOOP completed.\r\n", "", "a OK NOOP completed.\r\nb " IMAP_NO, 0, ""),
		SPASS("c OK NOOP completed.\r\n"),
	} },
	{ "imap: tagged replies out of order", IMAP, OPPORT, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a NOOP\r\nb NOOP\r\nc LOGIN bob secret\r\n", "a NOOP\r\nb NOOP\r\n", "", 0,
		  "refuse/auth-before-tls"),
		SPASS("b OK done\r\n"),
		S("a OK done\r\n", "", "a OK done\r\nc " IMAP_NO, 0, ""),
	} },
	{ "imap: AUTHENTICATE inside TLS: the exchange passes as data", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		CPASS("a AUTHENTICATE LOGIN\r\n"),
		SPASS("+ VXNlcm5hbWU6\r\n"),
		CPASS("STARTTLS\r\n"),
		SPASS("+ UGFzc3dvcmQ6\r\n"),
		CPASS("c2VjcmV0\r\n"),
		S("a OK [CAPABILITY IMAP4rev1 IDLE STARTTLS] Logged in\r\n", "",
		  "a OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n", 0, ""),
		C("b STARTTLS\r\n", "", "b " IMAP_BAD, 0, "refuse/tls-already-active"),
	} },
	{ "imap: SASL-IR inside TLS passes", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		C("a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\nb STARTTLS\r\n",
		  "a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\n", "", 0, ""),
		S("a OK Logged in\r\n", "", "a OK Logged in\r\nb " IMAP_BAD, 0,
		  "refuse/tls-already-active"),
	} },
	{ "imap: IDLE: commands after DONE wait for its reply", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		CPASS("a IDLE\r\n"),
		SPASS("+ idling\r\n"),
		SPASS("* 3 EXISTS\r\n"),
		C("DONE\r\nb STARTTLS\r\n", "DONE\r\n", "", 0, ""),
		S("a OK Idle completed.\r\n", "", "a OK Idle completed.\r\nb " IMAP_BAD, 0,
		  "refuse/tls-already-active"),
	} },
	{ "imap: a {n} literal of an allowed command waits for +", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		CPASS("a ID ({4}\r\n"),
		SPASS("+ OK\r\n"),
		CPASS("name NIL)\r\n"),
		SPASS("* ID NIL\r\na OK ID completed.\r\n"),
	} },
	{ "imap: a {n} the daemon refuses: held bytes are commands", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a ID ({4}\r\nb LOGIN bob secret\r\n", "a ID ({4}\r\n", "", 0, ""),
		S("a BAD Literal refused\r\n", "", "a BAD Literal refused\r\nb " IMAP_NO, 0,
		  "refuse/auth-before-tls"),
	} },
	{ "imap: audit: {n+} to a daemon without LITERAL+ is no literal", IMAP, STARTTLS, MODULE, 1, 0, {
		SPASS(IMAP_GREET_NOLIT),
		C("a ID {20+}\r\nb LOGIN bob secret\r\n", "a ID {20+}\r\nb LOGIN bob secret\r\n", "", 0,
		  "would-refuse/nonsync-literal would-refuse/auth-before-tls"),
		SPASS("a BAD Error in IMAP command\r\n"),
	} },
	{ "imap: {n+} inside TLS is forwarded as data", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		C("a ID ({4+}\r\nname {10+}\r\nb STARTTLS)\r\nc STARTTLS\r\n",
		  "a ID ({4+}\r\nname {10+}\r\nb STARTTLS)\r\n", "", 0, "refuse/tls-already-active"),
		S("* ID NIL\r\na OK ID completed.\r\n", "", "* ID NIL\r\na OK ID completed.\r\nc " IMAP_BAD,
		  0, ""),
	} },
	{ "imap: after TLS SASL-IR, LITERAL+ and AUTH= are shown again", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a STARTTLS\r\n", "", "a " TP_IMAP_GO_TLS "\r\n", ST, "starttls"),
		TLS(),
		CPASS("b CAPABILITY\r\n"),
		S("* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ LITERAL- AUTH=PLAIN STARTTLS\r\nb OK done\r\n", "",
		  "* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ LITERAL- AUTH=PLAIN\r\nb OK done\r\n", 0, ""),
	} },
	{ "imap: a line over 8 KiB before TLS closes", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("a NOOP " A8192 "\r\n", "", IMAP_TOO_LONG, CL, "close/line-too-long"),
	} },
	{ "imap: long lines inside TLS stream through", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		CPASS("a UID SEARCH UID 1:" A8192 "\r\n"),
		SPASS("* SEARCH " A8192 "\r\na OK Search completed.\r\n"),
		C("b STARTTLS\r\n", "", "b " IMAP_BAD, 0, "refuse/tls-already-active"),
	} },
	{ "imap: ClientHello on a STARTTLS port", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C(CLIENT_HELLO, "", "", CL, "refuse/tls-on-starttls-port"),
	} },
	{ "imap: tls_by daemon: STARTTLS forwarded, the rest discarded", IMAP, STARTTLS, DAEMON, 0, 0, {
		SPASS("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready.\r\n"),
		C("A STARTTLS\r\nB NOOP\r\n", "A STARTTLS\r\n", "", 0, "discard/injection/8"),
		S("A OK Begin TLS negotiation now.\r\n", "", "A OK Begin TLS negotiation now.\r\n", EX,
		  "starttls"),
		CPASS("\x16\x03\x01\x00\x01\x01"),
	} },
	{ "imap: audit lets LOGIN through", IMAP, STARTTLS, MODULE, 1, 0, {
		SPASS(IMAP_GREET),
		C("a LOGIN bob secret\r\n", "a LOGIN bob secret\r\n", "", 0, "would-refuse/auth-before-tls"),
		SPASS("a OK Logged in\r\n"),
	} },
	{ "imap: audit: LOGIN {n} literals follow the daemon's +", IMAP, STARTTLS, MODULE, 1, 0, {
		SPASS(IMAP_GREET),
		C("a LOGIN {3}\r\n", "a LOGIN {3}\r\n", "", 0, "would-refuse/auth-before-tls"),
		SPASS("+ OK\r\n"),
		CPASS("bob {6}\r\n"),
		SPASS("+ OK\r\n"),
		CPASS("secret\r\n"),
		SPASS("a OK Logged in\r\n"),
	} },
	{ "imap: a literal in a FETCH response is no tagged reply", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		C("a FETCH 1 BODY[]\r\nb STARTTLS\r\n", "a FETCH 1 BODY[]\r\n", "", 0,
		  "refuse/tls-already-active"),
		SPASS("* 1 FETCH (BODY[] {11}\r\na OK fake\r\n)\r\n"),
		S("a OK Fetch completed.\r\n", "", "a OK Fetch completed.\r\nb " IMAP_BAD, 0, ""),
	} },
	{ "imap: after COMPRESS the stream is opaque", IMAP, IMPLICIT, MODULE, 0, 0, {
		SPASS(IMAP_GREET),
		C("a STARTTLS\r\n", "", "a " IMAP_BAD, 0, "refuse/tls-already-active"),
		CPASS("b COMPRESS DEFLATE\r\n"),
		SPASS("b OK DEFLATE active\r\n"),
		CPASS("\x78\x9c c STARTTLS\r\n"),
		SPASS("\x78\x9c\x01"),
	} },
	{ "imap: a daemon accepting COMPRESS before TLS ends the session", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		CPASS("a COMPRESS DEFLATE\r\n"),
		S("a OK DEFLATE active\r\n\x78\x9c", "", "a OK DEFLATE active\r\n", CL,
		  "close/command-before-tls"),
	} },
	{ "imap: audit: LITERAL- bounds a {n+} literal at 4096 octets before TLS", IMAP, STARTTLS, MODULE, 1, 0, {
		SPASS("* OK [CAPABILITY IMAP4rev1 LITERAL- AUTH=PLAIN] ready.\r\n"),
		C("a ID ({4096+}\r\n" A2048 A2048 ")\r\n", "a ID ({4096+}\r\n" A2048 A2048 ")\r\n", "", 0,
		  "would-refuse/nonsync-literal"),
		C("b ID ({4097+}\r\n", "b ID ({4097+}\r\n", "", 0,
		  "would-refuse/nonsync-literal would-refuse/line-too-long"),
	} },
	{ "imap: LITERAL- hidden before TLS, a {n+} within its bound still closes", IMAP, STARTTLS, MODULE, 0, 0, {
		S("* OK [CAPABILITY IMAP4rev1 LITERAL- AUTH=PLAIN] ready.\r\n", "",
		  "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready.\r\n", 0, ""),
		C("a ID ({1+}\r\nx)\r\n", "", IMAP_NONSYNC, CL, "close/nonsync-literal"),
	} },
	{ "imap: audit: a literal over 8 KiB before TLS is logged and passes", IMAP, STARTTLS, MODULE, 1, 0, {
		SPASS(IMAP_GREET),
		C("a LOGIN bob {9000+}\r\n", "a LOGIN bob {9000+}\r\n", "", 0,
		  "would-refuse/auth-before-tls would-refuse/nonsync-literal would-refuse/line-too-long"),
		CPASS(A8192 A512 A256 A32 "aaaaaaaa\r\n"),
		SPASS("a OK Logged in\r\n"),
	} },
	{ "imap: a capability list over 8 KiB before TLS closes", IMAP, STARTTLS, MODULE, 0, 0, {
		S("* CAPABILITY IMAP4rev1 " A8192 "\r\n", "", IMAP_TOO_LONG, CL, "close/line-too-long"),
	} },
	{ "imap: tls_by daemon: the daemon refuses STARTTLS", IMAP, OPPORT, DAEMON, 0, 0, {
		SPASS("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready.\r\n"),
		CPASS("A STARTTLS\r\n"),
		SPASS("A NO TLS is not available.\r\n"),
		C("B LOGIN bob secret\r\n", "", "B " IMAP_NO, 0, "refuse/auth-before-tls"),
	} },
	{ "imap: a tag too long to echo gets an untagged NO", IMAP, STARTTLS, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C(A128 A64 "aaaaaaaa LOGIN bob secret\r\n", "", "* " IMAP_NO, 0, "refuse/auth-before-tls"),
	} },
	{ "imap: the queue of pipelined commands is bounded", IMAP, STARTTLS, MODULE, 0, 0, {
		C(LOGIN64, "", IMAP_QUEUE_FULL, CL, REFUSE7_AUTH " close/queue-full"),
	} },
	{ "imap: refuse mode names the implicit port", IMAP, REFUSE, MODULE, 0, 993, {
		REFUSAL("* BYE This plaintext port is disabled by policy; use port 993 with TLS"),
		C("a CAPABILITY\r\n", "", "", CL, "close/port-disabled"),
	} },
	{ "imap: refuse mode without another port", IMAP, REFUSE, MODULE, 0, 0, {
		REFUSAL("* BYE This plaintext port is disabled by policy; use TLS"),
		S(IMAP_GREET, "", "", CL, "close/port-disabled"),
	} },
	{ "imap: a local reply waits for the greeting", IMAP, STARTTLS, MODULE, 0, 0, {
		C("a LOGIN bob secret\r\n", "", "", 0, "refuse/auth-before-tls"),
		S(IMAP_GREET, "", IMAP_GREET_PRE "a " IMAP_NO, 0, ""),
	} },
	{ "imap: LOGIN without a valid tag is still refused", IMAP, OPPORT, MODULE, 0, 0, {
		S(IMAP_GREET, "", IMAP_GREET_PRE, 0, ""),
		C("* LOGIN bob secret\r\n", "", "* " IMAP_NO, 0, "refuse/auth-before-tls"),
	} },

	/* ------------------------------------------------------------ POP3 */
	{ "pop3: CAPA loses SASL and USER, gains STLS", POP3, STARTTLS, MODULE, 0, 0, {
		SPASS(POP_GREET),
		CPASS("CAPA\r\n"),
		S(CAPA_S, "", CAPA_PRE, 0, ""),
	} },
	{ "pop3: the greeting loses its APOP timestamp before TLS", POP3, OPPORT, MODULE, 0, 0, {
		S("+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>\r\n", "", "+OK Dovecot ready.\r\n", 0, ""),
		C("APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "pop3: implicit TLS: the APOP timestamp stays", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS("+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>\r\n"),
		C("STLS\r\n", "", POP_ACTIVE, 0, "refuse/tls-already-active"),
	} },
	{ "pop3: commands as Dovecot reads them: up to a NUL", POP3, OPPORT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("USER\x00 bob\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
		C("AUTH\x00\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
		C("PASS\x00secret\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "pop3: a daemon doing TLS: STLS kept once", POP3, STARTTLS, DAEMON, 0, 0, {
		SPASS(POP_GREET),
		CPASS("CAPA\r\n"),
		S(CAPA_TLS_S, "", "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n", 0, ""),
	} },
	{ "pop3: USER PASS APOP AUTH refused", POP3, STARTTLS, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("USER bob\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
		C("PASS secret\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
		C("APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
		C("AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "pop3: AUTH without initial response: no challenge", POP3, OPPORT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("AUTH PLAIN\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
		CPASS("CAPA\r\n"),
		S(CAPA_S, "", CAPA_PRE, 0, ""),
	} },
	{ "pop3: transaction commands refused in starttls mode, QUIT passes", POP3, STARTTLS, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("STAT\r\n", "", POP_NEED, 0, "refuse/command-before-tls"),
		C("LIST\r\n", "", POP_NEED, 0, "refuse/command-before-tls"),
		CPASS("QUIT\r\n"),
		SPASS("+OK Logging out.\r\n"),
	} },
	{ "pop3: opportunistic: other commands pass, USER refused", POP3, OPPORT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		CPASS("STAT\r\n"),
		SPASS("-ERR Unknown command.\r\n"),
		C("USER bob\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "pop3: injection, STLS and CAPA in one segment", POP3, STARTTLS, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("STLS\r\nCAPA\r\n", "", POP_GO, ST, "starttls discard/injection/6"),
		TLS(),
		CPASS("CAPA\r\n"),
		S(CAPA_TLS_S, "", CAPA_TLS_POST, 0, ""),
		CPASS("USER bob\r\n"),
		SPASS("+OK\r\n"),
	} },
	{ "pop3: injection split across calls", POP3, OPPORT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("ST", "", "", 0, ""),
		C("LS\r\nUS", "", POP_GO, ST, "starttls discard/injection/2"),
		C("ER bob\r\nPASS secret\r\n", "", "", 0, "discard/injection/21"),
		TLS(),
		CPASS("CAPA\r\n"),
	} },
	{ "pop3: STLS inside TLS", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("STLS\r\n", "", POP_ACTIVE, 0, "refuse/tls-already-active"),
		CPASS("USER bob\r\n"),
	} },
	{ "pop3: a pipelined STLS waits for a multi-line LIST", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("LIST\r\nSTLS\r\nUIDL 1\r\n", "LIST\r\nUIDL 1\r\n", "", 0, "refuse/tls-already-active"),
		SPASS("+OK 2 messages:\r\n1 120\r\n"),
		S("2 200\r\n.\r\n", "", "2 200\r\n.\r\n" POP_ACTIVE, 0, ""),
		SPASS("+OK 1 00000001\r\n"),
	} },
	{ "pop3: a RETR body with dot-stuffing", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("RETR 1\r\nSTLS\r\n", "RETR 1\r\n", "", 0, "refuse/tls-already-active"),
		S("+OK 25 octets\r\n..STLS\r\n.x\r\nbody\r\n.\r\n", "",
		  "+OK 25 octets\r\n..STLS\r\n.x\r\nbody\r\n.\r\n" POP_ACTIVE, 0, ""),
	} },
	{ "pop3: -ERR to LIST is one line", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("LIST\r\nSTLS\r\n", "LIST\r\n", "", 0, "refuse/tls-already-active"),
		S("-ERR No such message\r\n", "", "-ERR No such message\r\n" POP_ACTIVE, 0, ""),
	} },
	{ "pop3: SASL exchange inside TLS: its lines are data", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		CPASS("AUTH PLAIN\r\n"),
		SPASS("+ \r\n"),
		CPASS("STLS\r\n"),
		SPASS("+OK Logged in.\r\n"),
		C("STLS\r\n", "", POP_ACTIVE, 0, "refuse/tls-already-active"),
	} },
	{ "pop3: a bare AUTH lists mechanisms in a multi-line reply", POP3, IMPLICIT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("AUTH\r\nSTLS\r\n", "AUTH\r\n", "", 0, "refuse/tls-already-active"),
		S("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n", "", "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n" POP_ACTIVE, 0, ""),
	} },
	{ "pop3: a line over 8 KiB before TLS closes", POP3, STARTTLS, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C("CAPA " A8192 "\r\n", "", POP3_TOO_LONG, CL, "close/line-too-long"),
	} },
	{ "pop3: ClientHello on a STARTTLS port", POP3, OPPORT, MODULE, 0, 0, {
		SPASS(POP_GREET),
		C(CLIENT_HELLO, "", "", CL, "refuse/tls-on-starttls-port"),
	} },
	{ "pop3: tls_by daemon: STLS forwarded, the rest discarded", POP3, STARTTLS, DAEMON, 0, 0, {
		SPASS(POP_GREET),
		C("STLS\r\nUSER bob\r\n", "STLS\r\n", "", 0, "discard/injection/10"),
		S("+OK Begin TLS negotiation now.\r\n", "", "+OK Begin TLS negotiation now.\r\n", EX,
		  "starttls"),
		CPASS("\x16\x03\x01\x00\x00"),
	} },
	{ "pop3: tls_by daemon: the daemon refuses STLS", POP3, STARTTLS, DAEMON, 0, 0, {
		SPASS(POP_GREET),
		CPASS("STLS\r\n"),
		SPASS("-ERR TLS support isn't enabled.\r\n"),
		C("USER bob\r\n", "", POP_NEED, 0, "refuse/auth-before-tls"),
	} },
	{ "pop3: audit lets everything through, logged", POP3, STARTTLS, MODULE, 1, 0, {
		SPASS(POP_GREET),
		CPASS("CAPA\r\n"),
		SPASS(CAPA_S),
		C("USER bob\r\n", "USER bob\r\n", "", 0, "would-refuse/auth-before-tls"),
		SPASS("+OK\r\n"),
		C("STAT\r\n", "STAT\r\n", "", 0, "would-refuse/command-before-tls"),
	} },
	{ "pop3: audit: STLS inside TLS forwarded, logged", POP3, IMPLICIT, MODULE, 1, 0, {
		SPASS(POP_GREET),
		C("STLS\r\n", "STLS\r\n", "", 0, "would-refuse/tls-already-active"),
		SPASS("-ERR Unknown command.\r\n"),
		CPASS("CAPA\r\n"),
		SPASS(CAPA_TLS_S),
	} },
	{ "pop3: a local reply waits for the greeting", POP3, STARTTLS, MODULE, 0, 0, {
		C("USER bob\r\n", "", "", 0, "refuse/auth-before-tls"),
		S(POP_GREET, "", POP_GREET POP_NEED, 0, ""),
	} },
	{ "pop3: refuse mode names the implicit port", POP3, REFUSE, MODULE, 0, 995, {
		REFUSAL("-ERR This plaintext port is disabled by policy; use port 995 with TLS"),
		C("CAPA\r\n", "", "", CL, "close/port-disabled"),
	} },
	{ "pop3: refuse mode without another port", POP3, REFUSE, MODULE, 0, 0, {
		REFUSAL("-ERR This plaintext port is disabled by policy; use TLS"),
		S(POP_GREET, "", "", CL, "close/port-disabled"),
	} },
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* --- running a row ------------------------------------------------------------- */

struct result {
	struct bytes ts, tc, ev;
	unsigned flags;
	int rc;
	size_t nevents;		/* most in one call */
};

/*
 * add_event - "action/reason[/bytes]"; discard counts of the same reason
 * in a row are summed, so that byte-at-a-time output compares equal
 */
static void add_event(struct result *r, const struct tp_filter_event *e)
{
	char tok[160];
	char *last;

	if (e->bytes > 0 && r->ev.len > 0) {
		last = strrchr(bytes_str(&r->ev), ' ');
		last = last != NULL ? last + 1 : bytes_str(&r->ev);
		snprintf(tok, sizeof(tok), "%s/%s/", e->action, e->reason ? e->reason : "");
		if (strncmp(last, tok, strlen(tok)) == 0) {
			size_t sum = strtoul(last + strlen(tok), NULL, 10) + e->bytes;

			r->ev.len = (size_t)(last - bytes_str(&r->ev));
			snprintf(tok, sizeof(tok), "%s/%s/%zu", e->action, e->reason, sum);
			bytes_add(&r->ev, tok, strlen(tok));
			return;
		}
	}
	if (e->reason == NULL)
		snprintf(tok, sizeof(tok), "%s", e->action);
	else if (e->bytes > 0)
		snprintf(tok, sizeof(tok), "%s/%s/%zu", e->action, e->reason, e->bytes);
	else
		snprintf(tok, sizeof(tok), "%s/%s", e->action, e->reason);
	if (r->ev.len > 0)
		bytes_add(&r->ev, " ", 1);
	bytes_add(&r->ev, tok, strlen(tok));
}

static void call(struct tp_filter *f, char kind, const char *in, size_t len,
		 struct result *r)
{
	struct tp_filter_out out;
	int rc = kind == 'c' ? tp_filter_client(f, (const uint8_t *)in, len, &out)
			     : tp_filter_server(f, (const uint8_t *)in, len, &out);

	ck_assert_msg(rc == 0 || rc == -1, "rc %d", rc);
	ck_assert_msg((rc == -1) == !!(out.flags & TP_FILTER_CLOSE),
		      "rc %d but flags %#x", rc, out.flags);
	ck_assert_uint_le(out.nevents, TP_FILTER_MAX_EVENTS);
	bytes_add(&r->ts, out.to_server, out.to_server_len);
	bytes_add(&r->tc, out.to_client, out.to_client_len);
	r->flags |= out.flags;
	r->rc = rc;
	if (out.nevents > r->nevents)
		r->nevents = out.nevents;
	for (size_t i = 0; i < out.nevents; i++)
		add_event(r, &out.events[i]);
}

/* escape - bytes as a C string, for failure messages */
static const char *escape(const char *p, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < size; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			o += (size_t)snprintf(buf + o, size - o, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(buf + o, size - o, "\\n");
		else if (c < 0x20 || c >= 0x7f || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (o + 8 >= size)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = '\0';
	return buf;
}

static void expect_bytes(const struct row *row, size_t i, const char *what,
			 const struct bytes *got, const char *want, size_t want_len)
{
	char g[700], w[700];

	ck_assert_msg(got->len == want_len && memcmp(got->p, want, want_len) == 0,
		      "%s, step %zu, %s:\n  got  \"%s\"\n  want \"%s\"", row->name, i + 1, what,
		      escape((const char *)got->p, got->len, g, sizeof(g)), escape(want, want_len, w, sizeof(w)));
}

static size_t count_words(const char *s)
{
	size_t n = 0;

	for (const char *p = s; *p != '\0'; p++)
		if (p[0] != ' ' && (p == s || p[-1] == ' '))
			n++;
	return n;
}

/*
 * run_step - one step, in one call or one byte per call.  Event arrays
 * that filled up are not compared byte by byte: which events fit
 * depends on how the input was cut.
 */
static void run_step(const struct row *row, size_t i, struct tp_filter *f, int bytewise)
{
	const struct step *s = &row->steps[i];
	struct result r = { 0 };

	bytes_add(&r.ts, "", 0);
	bytes_add(&r.tc, "", 0);
	bytes_add(&r.ev, "", 0);
	if (!bytewise || s->in_len == 0)
		call(f, s->kind, s->in, s->in_len, &r);
	else
		for (size_t k = 0; k < s->in_len; k++)
			call(f, s->kind, s->in + k, 1, &r);
	expect_bytes(row, i, "to_server", &r.ts, s->to_server, s->ts_len);
	expect_bytes(row, i, "to_client", &r.tc, s->to_client, s->tc_len);
	ck_assert_msg(r.flags == s->flags, "%s, step %zu: flags %#x, want %#x", row->name, i + 1,
		      r.flags, s->flags);
	if (!bytewise || count_words(s->events) < TP_FILTER_MAX_EVENTS)
		ck_assert_msg(strcmp(bytes_str(&r.ev), s->events) == 0, "%s, step %zu: events \"%s\", want \"%s\"",
			      row->name, i + 1, bytes_str(&r.ev), s->events);
	free(r.ts.p);
	free(r.tc.p);
	free(r.ev.p);
}

static void run_row(const struct row *row, int bytewise)
{
	struct tp_filter_config cfg = { row->proto, row->mode, row->by, row->audit,
					row->alt_port };
	struct tp_filter *f = tp_filter_new(&cfg);

	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < MAX_STEPS && row->steps[i].kind != 0; i++) {
		const struct step *s = &row->steps[i];

		if (s->kind == 't') {
			tp_filter_tls_done(f);
		} else if (s->kind == 'r') {
			ck_assert_ptr_nonnull(tp_filter_refusal(f));
			ck_assert_str_eq(tp_filter_refusal(f), s->to_client);
		} else {
			run_step(row, i, f, bytewise);
		}
	}
	tp_filter_free(&f);
	ck_assert_ptr_null(f);
}

START_TEST(test_row)
{
	run_row(&rows[_i], 0);
}
END_TEST

/* the same session fed one byte per call gives the same bytes, flags and events */
START_TEST(test_row_bytewise)
{
	run_row(&rows[_i], 1);
}
END_TEST

/*
 * step_is_trivial - would a filter that does nothing (passes every byte
 * through, or passes nothing at all, and never flags or logs) produce
 * this step's expected output?
 */
static int step_is_trivial(const struct step *s)
{
	int passthrough, silent;

	if (s->flags != 0 || s->events[0] != '\0')
		return 0;
	if (s->kind == 'c')
		passthrough = s->tc_len == 0 && s->ts_len == s->in_len &&
			      memcmp(s->to_server, s->in, s->in_len) == 0;
	else
		passthrough = s->ts_len == 0 && s->tc_len == s->in_len &&
			      memcmp(s->to_client, s->in, s->in_len) == 0;
	silent = s->ts_len == 0 && s->tc_len == 0;
	return passthrough || silent;
}

START_TEST(test_row_not_trivial)
{
	const struct row *row = &rows[_i];
	int decisive = 0;

	for (size_t i = 0; i < MAX_STEPS && row->steps[i].kind != 0; i++) {
		const struct step *s = &row->steps[i];

		if ((s->kind == 'c' || s->kind == 's') && !step_is_trivial(s))
			decisive = 1;
	}
	ck_assert_msg(decisive, "%s: a filter that does nothing would pass this row", row->name);
}
END_TEST

START_TEST(test_row_count)
{
	ck_assert_uint_ge(NROWS, 60);
}
END_TEST

/* --- beyond the table ---------------------------------------------------------- */

/* implicit TLS done by the daemon: nothing to read, every byte passes */
START_TEST(test_implicit_daemon_opaque)
{
	struct tp_filter_config cfg = { TP_PROTO_IMAP, TP_TLS_IMPLICIT, TP_BY_DAEMON, 0, 0 };
	struct tp_filter *f = tp_filter_new(&cfg);
	struct tp_filter_out out;
	static const uint8_t rec[] = { 0x16, 0x03, 0x01, 0x00, 0x02, '\n', 0xff };

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(tp_filter_client(f, rec, sizeof(rec), &out), 0);
	ck_assert_uint_eq(out.to_server_len, sizeof(rec));
	ck_assert_mem_eq(out.to_server, rec, sizeof(rec));
	ck_assert_uint_eq(out.to_client_len, 0);
	ck_assert_uint_eq(out.nevents, 0);
	ck_assert_int_eq(tp_filter_server(f, rec, sizeof(rec), &out), 0);
	ck_assert_uint_eq(out.to_client_len, sizeof(rec));
	ck_assert_ptr_null(tp_filter_refusal(f));
	tp_filter_free(&f);
	ck_assert_ptr_null(f);
	tp_filter_free(&f);	/* freeing NULL is harmless */
}
END_TEST

/* STYLE.md 5: a configuration outside the enums gets no filter at all */
START_TEST(test_bad_config)
{
	struct tp_filter_config cfg = { TP_PROTO_SMTP, (enum tp_tls_mode)7, TP_BY_MODULE, 0, 0 };

	ck_assert_ptr_null(tp_filter_new(&cfg));
	cfg.mode = TP_TLS_STARTTLS;
	cfg.tls_by = (enum tp_tls_by)2;
	ck_assert_ptr_null(tp_filter_new(&cfg));
	cfg.tls_by = TP_BY_MODULE;
	cfg.protocol = (enum tp_protocol)3;
	ck_assert_ptr_null(tp_filter_new(&cfg));
}
END_TEST

/* no refusal line unless tls = refuse */
START_TEST(test_refusal_only_in_refuse_mode)
{
	static const enum tp_tls_mode modes[] = { TP_TLS_IMPLICIT, TP_TLS_STARTTLS,
						  TP_TLS_OPPORTUNISTIC };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct tp_filter_config cfg = { TP_PROTO_SMTP, modes[i], TP_BY_MODULE, 0, 465 };
		struct tp_filter *f = tp_filter_new(&cfg);

		ck_assert_ptr_nonnull(f);
		ck_assert_ptr_null(tp_filter_refusal(f));
		tp_filter_free(&f);
	}
}
END_TEST

/* after a close every call closes again and passes nothing */
START_TEST(test_closed_stays_closed)
{
	struct tp_filter_config cfg = { TP_PROTO_POP3, TP_TLS_STARTTLS, TP_BY_MODULE, 0, 0 };
	struct tp_filter *f = tp_filter_new(&cfg);
	struct tp_filter_out out;
	static const char hello[] = CLIENT_HELLO;

	ck_assert_int_eq(tp_filter_client(f, (const uint8_t *)hello, sizeof(hello) - 1, &out), -1);
	ck_assert_int_eq(tp_filter_server(f, (const uint8_t *)POP_GREET, strlen(POP_GREET), &out), -1);
	ck_assert_uint_eq(out.to_client_len, 0);
	ck_assert(out.flags & TP_FILTER_CLOSE);
	ck_assert_int_eq(tp_filter_client(f, (const uint8_t *)"CAPA\r\n", 6, &out), -1);
	ck_assert_uint_eq(out.to_server_len, 0);
	tp_filter_free(&f);
}
END_TEST

/*
 * a DATA body sent before the 354 is held until the daemon's reply frames
 * it, then released: the relay waits for tp_filter_held() to be 0 before
 * it passes a client's half-close on to the daemon
 */
START_TEST(test_held_until_the_reply)
{
	struct tp_filter_config cfg = { TP_PROTO_SMTP, TP_TLS_OPPORTUNISTIC, TP_BY_MODULE, 0, 0 };
	struct tp_filter *f = tp_filter_new(&cfg);
	struct tp_filter_out out;
	static const char data[] = "DATA\r\nHi.\r\n";
	static const char go[] = "354 End data with <CR><LF>.<CR><LF>\r\n";

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(tp_filter_server(f, (const uint8_t *)SMTP_GREET, strlen(SMTP_GREET), &out), 0);
	ck_assert_uint_eq(tp_filter_held(f), 0);
	ck_assert_int_eq(tp_filter_client(f, (const uint8_t *)data, strlen(data), &out), 0);
	ck_assert_uint_eq(out.to_server_len, 6);
	ck_assert_mem_eq(out.to_server, "DATA\r\n", 6);
	ck_assert_uint_eq(tp_filter_held(f), 5);
	ck_assert_int_eq(tp_filter_server(f, (const uint8_t *)go, strlen(go), &out), 0);
	ck_assert_uint_eq(tp_filter_held(f), 0);
	ck_assert_uint_eq(out.to_server_len, 5);
	ck_assert_mem_eq(out.to_server, "Hi.\r\n", 5);
	tp_filter_free(&f);
}
END_TEST

static Suite *filter_suite(void)
{
	Suite *s = suite_create("filter");
	TCase *tc = tcase_create("rows");

	tcase_add_loop_test(tc, test_row, 0, (int)NROWS);
	tcase_add_loop_test(tc, test_row_bytewise, 0, (int)NROWS);
	tcase_add_loop_test(tc, test_row_not_trivial, 0, (int)NROWS);
	tcase_add_test(tc, test_row_count);
	suite_add_tcase(s, tc);
	tc = tcase_create("api");
	tcase_add_test(tc, test_implicit_daemon_opaque);
	tcase_add_test(tc, test_refusal_only_in_refuse_mode);
	tcase_add_test(tc, test_bad_config);
	tcase_add_test(tc, test_closed_stays_closed);
	tcase_add_test(tc, test_held_until_the_reply);
	suite_add_tcase(s, tc);
	return s;
}

/* --- fuzz seeds ---------------------------------------------------------------- */

/*
 * write_seeds - one seed per row that is not a refuse-mode row, in the
 * format of tests/fuzz/fuzz_filter.c: protocol, mode, tls_by | audit << 1,
 * then steps as kind (0 client, 1 daemon, 2 TLS done), 16-bit length
 * (little-endian), bytes; after each, a credential probe (kind 3), which
 * the fuzz target sends wherever the filter expects a command.
 */
static int write_seeds(const char *dir)
{
	for (size_t n = 0; n < NROWS; n++) {
		const struct row *row = &rows[n];
		char path[4096];
		FILE *fp;

		if (row->mode == TP_TLS_REFUSE)
			continue;
		snprintf(path, sizeof(path), "%s/row-%03zu", dir, n + 1);
		fp = fopen(path, "wb");
		if (fp == NULL) {
			fprintf(stderr, "check_filter: %s: %s\n", path, strerror(errno));
			return 1;
		}
		fputc((int)row->proto, fp);
		fputc((int)row->mode, fp);
		fputc((int)row->by | (row->audit << 1), fp);
		for (size_t i = 0; i < MAX_STEPS && row->steps[i].kind != 0; i++) {
			const struct step *s = &row->steps[i];
			size_t len = s->in_len > 0xffff ? 0xffff : s->in_len;

			fputc(s->kind == 'c' ? 0 : s->kind == 's' ? 1 : 2, fp);
			fputc((int)(len & 0xff), fp);
			fputc((int)(len >> 8), fp);
			fwrite(s->in, 1, len, fp);
			fputc(3, fp);
			fputc(1, fp);
			fputc(0, fp);
			fputc((int)(i + n), fp);
		}
		if (fclose(fp) != 0)
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc == 3 && strcmp(argv[1], "--seeds") == 0)
		return write_seeds(argv[2]);
	sr = srunner_create(filter_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
