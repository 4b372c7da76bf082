/*
 * filter_int.h - the inside of struct tp_filter, shared by the engine
 * (filter.c) and the protocol modules (filter_smtp.c, filter_imap.c,
 * filter_pop3.c).  Not a public header: the relay uses filter.h only.
 *
 * The engine frames the two byte streams and keeps the queue of
 * pipelined commands; a protocol module says what each line means
 * through the four callbacks of struct tpf_proto.
 *
 * Framing is the security boundary here.  Before TLS the filter must
 * never read as data what the daemon will read as a command, so bare LF
 * ends a line (as it does for Postfix, Dovecot and Exim), and wherever
 * the framing depends on the daemon's answer (a synchronising literal,
 * DATA's 354, a SASL continuation) the client's next bytes are held until
 * that answer has been seen.
 */
#ifndef TP_FILTER_INT_H
#define TP_FILTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"
#include "util.h"

/* limits: DESIGN.md "Limits", STYLE.md 7 */
#define TPF_SMTP_LINE_MAX	512	/* RFC 5321 4.5.3.1.4 (command), 4.5.3.1.5 (reply) */
#define TPF_TEXT_LINE_MAX	8192	/* IMAP and POP3 lines */
#define TPF_QUEUE_MAX		64	/* pipelined commands waiting for a reply */
#define TPF_HOLD_MAX		8192	/* client bytes held while framing is undecided */
#define TPF_LITERAL_MAX		8192	/* IMAP literal before TLS */
#define TPF_LITERAL_MINUS_MAX	4096	/* RFC 7888 4: LITERAL- non-synchronising limit */
#define TPF_TAG_MAX		128	/* IMAP tag kept for a reply */
#define TPF_TAIL_MAX		32	/* end of an over-long line, for "{n}" */
#define TPF_OUT_KEEP		(256 * 1024)	/* output buffer kept between calls */

/*
 * Protocol errors.  Not in policy/replies.h because they are not policy
 * decisions but the answers to a broken peer; the wording follows
 * Postfix ("500 5.5.2 Error: line too long") and Dovecot.
 */
#define TPF_SMTP_TOO_LONG	"500 5.5.2 Error: line too long"
#define TPF_SMTP_BAD_REPLY	"421 4.3.0 Error: the mail server sent a reply line too long"
#define TPF_SMTP_QUEUE_FULL	"421 4.7.0 Error: too many pipelined commands"
#define TPF_SMTP_AMBIGUOUS	"421 4.5.0 Error: ambiguous end of data (\".\" then CR CR LF)"
#define TPF_IMAP_TOO_LONG	"* BYE Line too long"
#define TPF_IMAP_QUEUE_FULL	"* BYE Too many pipelined commands"
#define TPF_POP3_TOO_LONG	"-ERR Line too long"
#define TPF_POP3_QUEUE_FULL	"-ERR Too many pipelined commands"

/* what happens to the bytes of a line (or of octets) */
enum tpf_dest {
	TPF_FORWARD,		/* pass them on unchanged */
	TPF_DROP,		/* throw them away */
	TPF_HANDLED,		/* server lines: the module wrote its own version */
};

/* client side: what the engine is reading */
enum tpf_cstate {
	TPF_C_LINE,		/* a line, up to the protocol's limit */
	TPF_C_STREAM,		/* the rest of an over-long line (after TLS, or audit) */
	TPF_C_OCTETS,		/* a counted run: IMAP literal, BDAT chunk */
	TPF_C_BODY,		/* SMTP DATA: message body up to "." on a line */
	TPF_C_WAIT,		/* framing depends on the daemon's next reply: hold */
	TPF_C_DISCARD,		/* after the upgrade command: discard (RFC 3207 4.2) */
	TPF_C_OPAQUE,		/* not ours to read any more (TLS by the daemon, COMPRESS) */
	TPF_C_DEAD,		/* the session is being closed */
};

/* what the next client line is */
enum tpf_role {
	TPF_R_CMD,		/* a new command */
	TPF_R_CONT,		/* IMAP: the rest of a command after a literal */
	TPF_R_DATA,		/* a response to the daemon's continuation (SASL, IDLE's DONE) */
};

/* server side */
enum tpf_sstate {
	TPF_S_LINE,
	TPF_S_STREAM,
	TPF_S_OCTETS,		/* an IMAP literal in a response */
	TPF_S_OPAQUE,
	TPF_S_DEAD,
};

/*
 * One pipelined command, answered by the daemon ("forwarded") or by the
 * filter ("local").  Forwarded SMTP and POP3 commands of the same kind
 * share one entry with a count, so a message to a hundred recipients
 * (RFC 2920) does not fill the queue.
 */
struct tpf_entry {
	unsigned id;
	unsigned char local;	/* answered by the filter with reply */
	unsigned char done;	/* IMAP: completed out of order */
	unsigned char upgrade;	/* local: releasing it starts TLS */
	unsigned char stage;	/* SMTP DATA: 1 once 354 came */
	int kind;		/* protocol's TPF_K_* */
	unsigned count;		/* forwarded commands in this entry */
	const char *reply;	/* local: from policy/replies.h, without CRLF */
	size_t taglen;		/* IMAP */
	char tag[TPF_TAG_MAX];
};

/* entry kinds, shared by the three protocols */
enum {
	TPF_K_GREETING,		/* the daemon's greeting: every session starts with it */
	TPF_K_PLAIN,		/* one reply, nothing special */
	TPF_K_MULTI,		/* POP3: "+OK" starts a multi-line reply */
	TPF_K_CAPS,		/* SMTP EHLO, POP3 CAPA: a reply to rewrite */
	TPF_K_DATA,		/* SMTP DATA: 354, then the final reply */
	TPF_K_AUTH,		/* SASL exchange: continuations until the final reply */
	TPF_K_STARTTLS,		/* the upgrade, forwarded to the daemon */
	TPF_K_IDLE,		/* IMAP IDLE: continuation, then DONE */
	TPF_K_COMPRESS,		/* IMAP COMPRESS (RFC 4978): opaque after OK */
};

/* the command being read from the client */
struct tpf_cmd {
	int verb;		/* protocol's verb id */
	int has_arg;		/* POP3 LIST/UIDL n; SMTP BDAT size parsed */
	uint64_t size;		/* SMTP BDAT chunk size */
	enum tpf_dest dest;	/* IMAP: where the rest of the command goes */
	const char *reply;	/* answered here: the reply, else NULL */
	int upgrade;		/* the reply starts TLS */
	unsigned id;		/* IMAP: the queue entry of the forwarded command */
	int tag_valid;		/* IMAP: the daemon takes it as a tag */
	int tag_ok;		/* ... and it fits the queue: replies are tracked */
	size_t taglen;
	char tag[TPF_TAG_MAX];
};

struct tp_filter;

/* what a protocol module supplies */
struct tpf_proto {
	size_t line_max;
	const char *too_long;		/* client line over the limit */
	const char *queue_full;
	/*
	 * client_head - classify a client line from its start: the complete
	 * line (complete = 1) or the first line_max octets of an over-long
	 * one.  Returns TPF_FORWARD or TPF_DROP, or -1 once the session is
	 * closed.
	 */
	int (*client_head)(struct tp_filter *f, const uint8_t *line, size_t len,
			   int complete);
	/* client_end - the line ended; tail is its last octets; set the next state */
	void (*client_end)(struct tp_filter *f, const uint8_t *tail, size_t len);
	/* server_head - same for a daemon line; may also return TPF_HANDLED */
	int (*server_head)(struct tp_filter *f, const uint8_t *line, size_t len,
			   int complete);
	void (*server_end)(struct tp_filter *f, const uint8_t *tail, size_t len);
};

/* per-protocol state of the daemon's side */
struct tpf_smtp {
	int code;		/* reply code of the line being read, -1 if none */
	int final;		/* it is the last line of its reply ("NNN ") */
	int chunking;		/* the last EHLO reply offered CHUNKING (RFC 3030) */
	int chunking_new;
	int lines;		/* lines of the EHLO reply so far */
	int rewrite;		/* this EHLO reply is being rewritten */
	int starttls;		/* ... and offers STARTTLS itself */
	int has_held;		/* the last kept line, waiting to learn if it is the last */
	int held_first;		/* ... and it is the first line (the domain) */
	size_t held_len;
	char held_code[3];
	char held[TPF_SMTP_LINE_MAX];
};

struct tpf_imap {
	int kind;		/* the response being read: see filter_imap.c */
	int ok;			/* tagged: OK */
	int cont;		/* reading the rest of a response after a literal */
	unsigned entry;		/* tagged: the command it completes, 0 if none */
	int literal_plus;	/* RFC 7888 LITERAL+ advertised */
	int literal_minus;	/* RFC 7888 LITERAL- advertised */
};

struct tpf_pop3 {
	int status;		/* first line of a reply: see filter_pop3.c */
	int multi;		/* inside a multi-line reply (RFC 1939 3) */
	int dot;		/* the line is the terminating "." */
	int stls;		/* the CAPA reply lists STLS */
};

struct tp_filter {
	struct tp_filter_config cfg;
	const struct tpf_proto *proto;
	int tls;		/* the session is inside TLS */
	int upgrading;		/* upgrade reply released, handshake not done */
	int dead;
	char refusal[160];

	/* the current call */
	struct tp_filter_out *out;
	struct tp_buf to_server, to_client;

	/* client side */
	enum tpf_cstate cstate;
	enum tpf_role role;
	enum tpf_dest cdest;
	enum tpf_role after;	/* role after the octets */
	uint64_t octets;
	int body;		/* DATA body: see filter.c */
	unsigned wait_id;	/* the entry whose reply decides the framing */
	int wait_literal;	/* IMAP: that reply is a "+" for a literal of ... */
	uint64_t wait_size;	/* ... this size */
	struct tpf_cmd cmd;
	size_t cline_len, ctail_len;
	uint8_t cline[TPF_TEXT_LINE_MAX];
	uint8_t ctail[TPF_TAIL_MAX];
	size_t hold_len;
	uint8_t hold[TPF_HOLD_MAX];

	/* server side */
	enum tpf_sstate sstate;
	enum tpf_dest sdest;
	uint64_t soctets;
	size_t sline_len, stail_len;
	uint8_t sline[TPF_TEXT_LINE_MAX];
	uint8_t stail[TPF_TAIL_MAX];
	union {
		struct tpf_smtp smtp;
		struct tpf_imap imap;
		struct tpf_pop3 pop3;
	} s;

	/* the queue, a ring */
	size_t qhead, qlen;
	unsigned next_id;
	struct tpf_entry q[TPF_QUEUE_MAX];
};

extern const struct tpf_proto tpf_smtp, tpf_imap, tpf_pop3;

/* --- output and log (filter.c) */
void tpf_to_server(struct tp_filter *f, const void *p, size_t n);
void tpf_to_client(struct tp_filter *f, const void *p, size_t n);
void tpf_to_client_str(struct tp_filter *f, const char *s);
void tpf_event(struct tp_filter *f, const char *action, const char *reason,
	       size_t bytes);
void tpf_discard(struct tp_filter *f, const char *reason, size_t n);
int tpf_refuse(struct tp_filter *f, const char *reason);
int tpf_upgrade(struct tp_filter *f, const char *active_reply, const char *go_reply);
int tpf_fail(struct tp_filter *f, const char *action, const char *reason,
	     const char *reply);

/* --- the queue (filter.c) */
struct tpf_entry *tpf_queue_forward(struct tp_filter *f, int kind, int coalesce);
int tpf_queue_local(struct tp_filter *f, const char *tag, size_t taglen,
		    const char *reply, int upgrade);
struct tpf_entry *tpf_queue_head(struct tp_filter *f);
struct tpf_entry *tpf_queue_find(struct tp_filter *f, unsigned id);
struct tpf_entry *tpf_queue_find_tag(struct tp_filter *f, const uint8_t *tag,
				     size_t len);
void tpf_done(struct tp_filter *f, struct tpf_entry *e);
int tpf_waiting_on(const struct tp_filter *f, const struct tpf_entry *e);

/* --- the client's next state (filter.c) */
void tpf_client_line(struct tp_filter *f, enum tpf_role role);
void tpf_client_octets(struct tp_filter *f, uint64_t n, enum tpf_dest dest,
		       enum tpf_role after);
void tpf_client_body(struct tp_filter *f);
void tpf_client_wait(struct tp_filter *f, unsigned id);
void tpf_client_discard(struct tp_filter *f);
void tpf_opaque(struct tp_filter *f);
void tpf_daemon_tls(struct tp_filter *f);
void tpf_server_octets(struct tp_filter *f, uint64_t n);

/* --- small parsing helpers (filter.c) */
struct tpf_word {
	const char *name;
	int id;
};

size_t tpf_line_text(const uint8_t *line, size_t len);
size_t tpf_cstr_len(const uint8_t *line, size_t len);
size_t tpf_token(const uint8_t *p, size_t len, size_t *start);
int tpf_word_id(const uint8_t *p, size_t len, const struct tpf_word *words,
		size_t n, int other);
int tpf_word_eq(const uint8_t *p, size_t len, const char *word);
int tpf_word_prefix(const uint8_t *p, size_t len, const char *prefix);
int tpf_parse_size(const uint8_t *p, size_t len, uint64_t *size);

#endif
