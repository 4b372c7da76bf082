/*
 * relay.c - tlspolicyd's workers: TLS with wolfSSL, the protocol filter,
 * and the bytes in between
 *
 * Each connection has the client's TCP socket and the daemon's relay end
 * ("app").  Bytes from either side go through the filter; what it says to
 * forward is buffered for the other side, what it answers itself goes
 * back.  Buffers are bounded: a side whose output is full is not read
 * until it drains.  Nothing is ever written to the client in plaintext on
 * an implicit-TLS port, or after the upgrade has begun.
 *
 * With tls_by = daemon the daemon does the TLS: after the plaintext phase
 * (filtered the same way) the handshake records go by through two record
 * readers (tlsrec.h), the daemon's ServerHello is held until the version
 * and suite it chose pass the rule, and then the bytes pass untouched.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "filter.h"
#include "connlimits.h"
#include "relay.h"
#include <wolfssl/wolfcrypt/ecc.h>	/* after options.h, which relay.h includes */
#include <wolfssl/wolfcrypt/memory.h>
#include "tlsrec.h"
#include "tplog.h"

#define READ_CHUNK 16384

struct buf {
	uint8_t *data;
	size_t len, cap;
};

enum conn_state {
	ST_PEEK,		/* implicit TLS: waiting for the first bytes */
	ST_PLAIN,		/* plaintext phase (STARTTLS modes) */
	ST_UPGRADE,		/* upgrade reply sent: waiting for the ClientHello */
	ST_HANDSHAKE,		/* TLS handshake under way */
	ST_TLS,			/* inside TLS */
	ST_INSPECT,		/* tls_by = daemon: the daemon's handshake going by */
	ST_PASS,		/* tls_by = daemon: its session, passed through */
};

struct conn;

struct endpoint {
	struct conn *c;
	int fd;
	uint32_t events;	/* current epoll interest */
};

struct conn {
	struct conn *next, *prev;
	struct endpoint tcp, app;
	const struct tp_rule *rule;
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;
	struct tp_filter *filter;
	enum conn_state state;
	int start_tls, closing, client_eof, app_eof, dead;
	int expect_tls;		/* tls_by = daemon: it accepted the upgrade */
	int audit_plain;	/* enforce = audit: a plaintext client let through on an implicit port */
	struct tp_tlsrec *crec, *srec;	/* ST_INSPECT: client's and daemon's records */
	size_t held;		/* ST_INSPECT: bytes at the end of to_client not yet cleared */
	char offered[64];	/* ST_INSPECT: what the client's hello offered, for the log */
	int spliced;		/* ST_PASS with both buffers empty: bytes move by splice(2) */
	int pipe_c2a[2], pipe_a2c[2];	/* the kernel buffers splice moves through */
	size_t in_c2a, in_a2c;	/* bytes sitting in them */
	int app_shut;		/* the daemon was told the client's end of input */
	int retired;		/* closed; freed at the end of the event batch */
	size_t tls_write_len;	/* length of a wolfSSL_write to repeat */
	struct buf to_app, to_client;
	time_t deadline, last;
	time_t quiet_deadline;	/* opportunistic, before TLS: closed if the client is silent till then */
	char addr[TP_LIMITS_ADDR_MAX];	/* the client's address, as counted in the limits */
	struct tp_limits *limits;	/* where it is counted; NULL once released */
	unsigned long long in, out;
	char client[INET6_ADDRSTRLEN + 16];
	unsigned generation;	/* of the policy the rule comes from */
	void (*release)(void *);	/* the rule's policy is no longer needed */
	void *release_arg;
};

struct tp_worker {
	struct tp_limits *limits;
	int ep;
	int pipe[2];
	volatile int stop;
	struct conn *conns;
	struct conn *retired;	/* closed during this batch of events */
};

/* --- buffers ------------------------------------------------------------ */

/*
 * The bytes in these buffers are the session in plaintext (credentials
 * too): none is left behind in memory that is freed or no longer used,
 * so a later heap bug or a core dump cannot show them (issue 9, item 18).
 */

/* buf_grow - a bigger buffer; not realloc, which would free the old copy unwiped */
static int buf_grow(struct buf *b, size_t cap)
{
	uint8_t *d = malloc(cap);

	if (d == NULL)
		return -1;
	if (b->len > 0)
		memcpy(d, b->data, b->len);
	if (b->data != NULL) {
		explicit_bzero(b->data, b->cap);
		free(b->data);
	}
	b->data = d;
	b->cap = cap;
	return 0;
}

static int buf_add(struct buf *b, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		/* the filter never makes more than a line or two of its own */
		if (cap > 2 * TP_RELAY_BUFFER + 2 * READ_CHUNK || buf_grow(b, cap) < 0)
			return -1;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* buf_drop - n bytes sent; the tail they moved out of is wiped */
static void buf_drop(struct buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	explicit_bzero(b->data + b->len, n);
}

static void buf_free(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	*b = (struct buf){ 0 };
}

/*
 * consumed - the filter's output has been copied into our buffers: wipe
 * it where it lies (the filter's buffers, valid until its next call and
 * rewritten from their start then, would otherwise keep the longest line
 * that ever passed, e.g. an AUTH line, until the filter is freed unwiped)
 */
static void consumed(const struct tp_filter_out *out)
{
	if (out->to_server_len > 0)
		explicit_bzero((void *)(uintptr_t)out->to_server, out->to_server_len);
	if (out->to_client_len > 0)
		explicit_bzero((void *)(uintptr_t)out->to_client, out->to_client_len);
}

/* --- wolfSSL's heap ------------------------------------------------------------ */

/*
 * wolfSSL decrypts records in place in its input buffers and builds them
 * from plaintext in its output buffers, and frees both with the session;
 * its API has no switch to wipe them, but it lets the allocator be
 * replaced: every block it frees (or moves by realloc) is wiped first.
 */
static void wipe_free_cb(void *p)
{
	if (p == NULL)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static void *malloc_cb(size_t n)
{
	return malloc(n);
}

static void *wipe_realloc_cb(void *p, size_t n)
{
	size_t old;
	void *d;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	d = malloc(n ? n : 1);
	if (d == NULL)
		return NULL;
	memcpy(d, p, old < n ? old : n);
	wipe_free_cb(p);
	return d;
}

int tp_relay_wipe_tls_heap(void)
{
	return wolfSSL_SetAllocators(malloc_cb, wipe_free_cb, wipe_realloc_cb) == 0 ? 0 : -1;
}

/* --- logging ---------------------------------------------------------------- */

static void conn_log(const struct conn *c, int prio, const char *action,
		     const char *reason, const char *extra)
{
	tp_log(prio, "port=%d client=%s mode=%s action=%s%s%s%s%s",
	       c->rule->port, c->client, tp_tls_mode_name(c->rule->tls), action,
	       reason ? " reason=" : "", reason ? reason : "",
	       extra ? " " : "", extra ? extra : "");
}

static void log_events(const struct conn *c, const struct tp_filter_out *out)
{
	for (size_t i = 0; i < out->nevents; i++) {
		char extra[64] = "";

		if (out->events[i].bytes)
			snprintf(extra, sizeof(extra), "bytes=%zu", out->events[i].bytes);
		conn_log(c, LOG_NOTICE, out->events[i].action, out->events[i].reason,
			 extra[0] ? extra : NULL);
	}
}

/* --- one connection ------------------------------------------------------------ */

/*
 * drain - before closing a plaintext connection we refused: send our FIN
 * first, then read what the client already sent.  Closing a socket with
 * unread input sends a reset, which can make the client's TCP drop the
 * refusal it has not read yet (RFC 9293 3.6.1).
 */
static void drain(int fd)
{
	char sink[4096];

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16; i++)
		if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
}

static void conn_close(struct tp_worker *w, struct conn *c)
{
	char extra[96];

	snprintf(extra, sizeof(extra), "bytes_in=%llu bytes_out=%llu%s", c->in, c->out,
		 c->spliced ? " splice=yes" : "");
	conn_log(c, LOG_INFO, "end", NULL, extra);
	if (c->ssl != NULL) {
		if (c->state == ST_TLS)
			wolfSSL_shutdown(c->ssl);
		wolfSSL_free(c->ssl);
	}
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->tcp.fd, NULL);
	epoll_ctl(w->ep, EPOLL_CTL_DEL, c->app.fd, NULL);
	if (c->closing && c->ssl == NULL)
		drain(c->tcp.fd);
	close(c->tcp.fd);
	close(c->app.fd);
	if (c->spliced)
		for (int i = 0; i < 2; i++) {
			close(c->pipe_c2a[i]);
			close(c->pipe_a2c[i]);
		}
	tp_filter_free(&c->filter);
	tp_tlsrec_free(&c->crec);
	tp_tlsrec_free(&c->srec);
	if (c->release != NULL)
		c->release(c->release_arg);	/* the rule may be gone after this */
	c->release = NULL;
	if (c->limits != NULL)
		tp_limits_release(c->limits, c->addr);
	c->limits = NULL;
	buf_free(&c->to_app);
	buf_free(&c->to_client);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	/* other events of this batch may still point at it */
	c->retired = 1;
	c->next = w->retired;
	w->retired = c;
}

static void free_retired(struct tp_worker *w)
{
	while (w->retired != NULL) {
		struct conn *c = w->retired;

		w->retired = c->next;
		free(c);
	}
}

/* apply - take what the filter said */
static void apply(struct conn *c, const struct tp_filter_out *out, int rc)
{
	log_events(c, out);
	if (buf_add(&c->to_app, out->to_server, out->to_server_len) < 0 ||
	    buf_add(&c->to_client, out->to_client, out->to_client_len) < 0) {
		consumed(out);
		conn_log(c, LOG_WARNING, "close", "buffer-full", NULL);
		c->dead = 1;
		return;
	}
	consumed(out);
	if (out->flags & (TP_FILTER_START_TLS | TP_FILTER_EXPECT_TLS)) {
		/* the upgrade is under way: from here the handshake's limit holds */
		c->quiet_deadline = 0;
		if (c->deadline == 0)
			c->deadline = time(NULL) + c->rule->handshake_timeout;
	}
	if (out->flags & TP_FILTER_START_TLS)
		c->start_tls = 1;
	if (out->flags & TP_FILTER_EXPECT_TLS)
		c->expect_tls = 1;
	if (rc < 0 || (out->flags & TP_FILTER_CLOSE))
		c->closing = 1;
}

static void start_handshake(struct conn *c)
{
	c->ssl = wolfSSL_new(c->ctx);
	if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, c->tcp.fd) != WOLFSSL_SUCCESS) {
		conn_log(c, LOG_ERR, "close", "tls-setup-failed", NULL);
		c->dead = 1;
		return;
	}
	c->state = ST_HANDSHAKE;
}

/* start_inspect - tls_by = daemon: the daemon's handshake begins */
static void start_inspect(struct conn *c)
{
	c->crec = tp_tlsrec_new();
	c->srec = tp_tlsrec_new();
	if (c->crec == NULL || c->srec == NULL) {
		conn_log(c, LOG_ERR, "close", "out-of-memory", NULL);
		c->dead = 1;
		return;
	}
	c->state = ST_INSPECT;
}

/* begin_tls - the client's TLS starts here: ours, or the daemon's */
static void begin_tls(struct conn *c)
{
	if (c->rule->tls_by == TP_BY_DAEMON)
		start_inspect(c);
	else
		start_handshake(c);
}

/*
 * audit_session - enforce = audit: the handshake accepted what this
 * wolfSSL can do; log what the rule would have refused
 */
static void audit_session(struct conn *c)
{
	const char *reason;
	char detail[160], extra[200];

	if (tp_rule_check_session(c->rule, (unsigned)wolfSSL_version(c->ssl),
				  (unsigned)wolfSSL_get_current_cipher_suite(c->ssl),
				  &reason, detail, sizeof(detail)) == 0)
		return;
	snprintf(extra, sizeof(extra), "%s tls_by=module", detail);
	conn_log(c, LOG_WARNING, "would-refuse", reason, extra);
}

/* handshake - drive wolfSSL_accept; 1 if progress was made */
static int handshake(struct conn *c)
{
	char extra[256];
	int rc = wolfSSL_accept(c->ssl), err;

	if (rc == WOLFSSL_SUCCESS) {
		c->state = ST_TLS;
		c->deadline = 0;
		snprintf(extra, sizeof(extra), "version=%s suite=%s",
			 wolfSSL_get_version(c->ssl), wolfSSL_get_cipher_name(c->ssl));
		conn_log(c, LOG_INFO, "tls", NULL, extra);
		if (c->rule->enforce == TP_ENFORCE_AUDIT)
			audit_session(c);
		tp_filter_tls_done(c->filter);
		return 1;
	}
	err = wolfSSL_get_error(c->ssl, rc);
	if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
		return 0;
	{
		char reason[80];

		wolfSSL_ERR_error_string_n((unsigned long)err, reason, sizeof(reason));
		snprintf(extra, sizeof(extra), "error=\"%s\" policy_floor=%s", reason,
			 tp_version_name(c->rule->min_version));
	}
	conn_log(c, LOG_NOTICE, "refuse", "tls-handshake-failed", extra);
	c->dead = 1;
	return 0;
}

/* peek_first - implicit TLS: is the first byte a TLS handshake record? */
static int peek_first(struct conn *c)
{
	uint8_t b;
	ssize_t n = recv(c->tcp.fd, &b, 1, MSG_PEEK);

	if (n < 0)
		return errno == EAGAIN ? 0 : (c->dead = 1, 0);
	if (n == 0) {
		c->dead = 1;
		return 0;
	}
	/* 0x16: a TLS handshake record; 0x80: an SSLv2-style hello (refused by
	 * wolfSSL, and by the record reader for the daemon) */
	if (b != 0x16 && b != 0x80) {
		if (c->rule->enforce == TP_ENFORCE_AUDIT) {
			conn_log(c, LOG_WARNING, "would-refuse", "plaintext-on-implicit-port",
				 "hint=\"plaintext client on implicit-TLS port: client set to STARTTLS?\"");
			c->audit_plain = 1;
			c->state = ST_PLAIN;
			c->deadline = 0;
			c->quiet_deadline = time(NULL) + c->rule->plaintext_timeout;
			return 1;
		}
		conn_log(c, LOG_NOTICE, "refuse", "plaintext-on-implicit-port",
			 "hint=\"plaintext client on implicit-TLS port: client set to STARTTLS?\"");
		c->dead = 1;
		return 0;
	}
	begin_tls(c);
	return 1;
}

/*
 * skip_injection - the upgrade reply is out and the client's next bytes
 * should be its ClientHello.  Plaintext sent after the upgrade command
 * that the filter did not see (it came in a later segment) is discarded
 * and logged here, never executed and never fed to the handshake
 * (RFC 3207 4.2, CVE-2011-0411): the handshake starts at the first byte
 * that can begin a TLS handshake record.
 */
static int skip_injection(struct conn *c)
{
	uint8_t data[READ_CHUNK];
	ssize_t n = recv(c->tcp.fd, data, sizeof(data), MSG_PEEK);
	const uint8_t *hello;
	size_t skip;
	char extra[64];

	if (n < 0)
		return errno == EAGAIN ? 0 : (c->dead = 1, 0);
	if (n == 0) {
		c->dead = 1;
		return 0;
	}
	hello = memchr(data, 0x16, (size_t)n);
	skip = hello != NULL ? (size_t)(hello - data) : (size_t)n;
	if (skip > 0) {
		if (recv(c->tcp.fd, data, skip, 0) != (ssize_t)skip) {
			c->dead = 1;
			return 0;
		}
		explicit_bzero(data, skip);
		c->in += skip;
		snprintf(extra, sizeof(extra), "bytes=%zu", skip);
		conn_log(c, LOG_NOTICE, "discard", "injection", extra);
	}
	if (hello != NULL)
		begin_tls(c);
	return 1;
}

/*
 * session_ok - the daemon's ServerHello (or HelloRetryRequest): may the
 * version and suite it chose run under the rule?  In audit mode a refusal
 * is only logged.
 */
static int session_ok(struct conn *c, const struct tp_tlsrec_hello *h)
{
	const char *reason;
	char detail[160], extra[400];

	if (tp_rule_check_session(c->rule, h->version, h->suite, &reason, detail, sizeof(detail)) == 0)
		return 1;
	snprintf(extra, sizeof(extra), "%s%s tls_by=daemon hint=\"%s\"", detail, c->offered,
		 strcmp(reason, "version-below-floor") == 0 ?
		 "the daemon's TLS settings allow this version: raise its minimum to the policy floor" :
		 "the daemon's TLS settings allow this suite: remove it from the daemon's cipher list");
	if (c->rule->enforce == TP_ENFORCE_AUDIT) {
		conn_log(c, LOG_WARNING, "would-refuse", reason, extra);
		return 1;
	}
	conn_log(c, LOG_WARNING, "refuse", reason, extra);
	return 0;
}

/* inspect_server - the daemon's bytes during its handshake: hold them
 * until its ServerHello passes the rule */
static void inspect_server(struct conn *c, const uint8_t *p, size_t n)
{
	size_t off = 0, used;
	char extra[160], vbuf[16];

	c->held += n;
	while (off < n && c->state == ST_INSPECT) {
		int rc = tp_tlsrec_feed(c->srec, p + off, n - off, &used);
		const struct tp_tlsrec_hello *h = tp_tlsrec_hello(c->srec);

		off += used;
		switch (rc) {
		case TP_TLSREC_MORE:
			return;
		case TP_TLSREC_HRR:
		case TP_TLSREC_SERVER_HELLO:
			if (!session_ok(c, h)) {
				c->dead = 1;
				return;
			}
			c->held = n - off;	/* up to the hello's end may go */
			if (rc == TP_TLSREC_HRR) {
				tp_tlsrec_after_hrr(c->crec);
				continue;
			}
			{
				const struct tp_suite *s = tp_suite_by_id(h->suite);

				snprintf(extra, sizeof(extra), "version=%s suite=%s tls_by=daemon",
					 tp_wire_version_name(h->version, vbuf, sizeof(vbuf)),
					 s != NULL ? s->name : "unknown");
			}
			conn_log(c, LOG_INFO, "tls", NULL, extra);
			break;
		case TP_TLSREC_ALERT:
			conn_log(c, LOG_NOTICE, "close", "daemon-refused-handshake", c->offered[0] ? c->offered + 1 : NULL);
			break;
		default:	/* application data before a ServerHello, or not TLS */
			snprintf(extra, sizeof(extra), "error=%s from=daemon",
				 rc == TP_TLSREC_APPDATA ? "appdata-before-serverhello" :
				 tp_tlsrec_error(c->srec));
			conn_log(c, LOG_WARNING, "refuse", "bad-daemon-handshake", extra);
			c->dead = 1;
			return;
		}
		/* decided: the rest passes untouched */
		c->held = 0;
		c->state = ST_PASS;
		c->deadline = 0;
		tp_tlsrec_free(&c->crec);
		tp_tlsrec_free(&c->srec);
	}
}

/* inspect_client - the client's bytes during the daemon's handshake:
 * they must be TLS; its ClientHello goes into the log line */
static void inspect_client(struct conn *c, const uint8_t *p, size_t n)
{
	size_t off = 0, used;
	char vbuf[16];

	while (off < n && c->crec != NULL) {
		int rc = tp_tlsrec_feed(c->crec, p + off, n - off, &used);
		const struct tp_tlsrec_hello *h = tp_tlsrec_hello(c->crec);

		off += used;
		if (rc == TP_TLSREC_CLIENT_HELLO) {
			snprintf(c->offered, sizeof(c->offered), " client_max=%s",
				 tp_wire_version_name(h->version, vbuf, sizeof(vbuf)));
			continue;
		}
		if (rc == TP_TLSREC_ERROR) {
			char extra[96];

			snprintf(extra, sizeof(extra), "error=%s from=client", tp_tlsrec_error(c->crec));
			conn_log(c, LOG_NOTICE, "refuse", "not-tls", extra);
			c->dead = 1;
		}
		return;		/* MORE, or the client's records go on unread */
	}
}

/* read_raw - ST_INSPECT and ST_PASS: bytes as they are, no filter */
static int read_raw(struct conn *c, int from_client)
{
	uint8_t data[READ_CHUNK];
	ssize_t n = recv(from_client ? c->tcp.fd : c->app.fd, data, sizeof(data), 0);

	if (n < 0)
		return errno == EAGAIN ? 0 : (from_client ? (c->client_eof = 1) : (c->app_eof = 1));
	if (n == 0) {
		if (from_client)
			c->client_eof = 1;
		else
			c->app_eof = 1;
		return 1;
	}
	c->last = time(NULL);
	if (from_client) {
		c->in += (unsigned long long)n;
		if (c->state == ST_INSPECT)
			inspect_client(c, data, (size_t)n);
		if (!c->dead && buf_add(&c->to_app, data, (size_t)n) < 0)
			c->dead = 1;
		return 1;
	}
	if (buf_add(&c->to_client, data, (size_t)n) < 0) {
		c->dead = 1;
		return 1;
	}
	if (c->state == ST_INSPECT)
		inspect_server(c, data, (size_t)n);
	return 1;
}

static int raw_state(const struct conn *c)
{
	return c->state == ST_INSPECT || c->state == ST_PASS;
}

/* read_client - bytes from the client, through the filter */
static int read_client(struct conn *c)
{
	uint8_t data[READ_CHUNK];
	struct tp_filter_out out;
	ssize_t n;
	int rc;

	if (raw_state(c))
		return read_raw(c, 1);
	if (c->state == ST_TLS) {
		n = wolfSSL_read(c->ssl, data, sizeof(data));
		if (n <= 0) {
			int err = wolfSSL_get_error(c->ssl, (int)n);

			if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE)
				return 0;
			c->client_eof = 1;
			return 1;
		}
	} else {
		n = recv(c->tcp.fd, data, sizeof(data), 0);
		if (n < 0)
			return errno == EAGAIN ? 0 : (c->client_eof = 1);
		if (n == 0) {
			c->client_eof = 1;
			return 1;
		}
	}
	c->in += (unsigned long long)n;
	c->last = time(NULL);
	if (c->quiet_deadline != 0)
		c->quiet_deadline = c->last + c->rule->plaintext_timeout;
	memset(&out, 0, sizeof(out));
	rc = tp_filter_client(c->filter, data, (size_t)n, &out);
	apply(c, &out, rc);
	explicit_bzero(data, (size_t)n);
	return 1;
}

static int read_app(struct conn *c)
{
	uint8_t data[READ_CHUNK];
	struct tp_filter_out out;
	ssize_t n;
	int rc;

	if (raw_state(c))
		return read_raw(c, 0);
	n = recv(c->app.fd, data, sizeof(data), 0);
	if (n < 0)
		return errno == EAGAIN ? 0 : (c->app_eof = 1);
	if (n == 0) {
		c->app_eof = 1;
		return 1;
	}
	c->last = time(NULL);
	memset(&out, 0, sizeof(out));
	rc = tp_filter_server(c->filter, data, (size_t)n, &out);
	apply(c, &out, rc);
	explicit_bzero(data, (size_t)n);
	return 1;
}

static int write_app(struct conn *c)
{
	ssize_t n = send(c->app.fd, c->to_app.data, c->to_app.len, MSG_NOSIGNAL);

	if (n < 0) {
		if (errno != EAGAIN)
			c->dead = 1;
		return 0;
	}
	buf_drop(&c->to_app, (size_t)n);
	return n > 0;
}

static int write_client(struct conn *c)
{
	ssize_t n;

	if (c->state == ST_TLS) {
		size_t len = c->tls_write_len ? c->tls_write_len :
			     (c->to_client.len < READ_CHUNK ? c->to_client.len : READ_CHUNK);

		n = wolfSSL_write(c->ssl, c->to_client.data, (int)len);
		if (n <= 0) {
			int err = wolfSSL_get_error(c->ssl, (int)n);

			if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ)
				c->tls_write_len = len;	/* wolfSSL wants the same call again */
			else
				c->dead = 1;
			return 0;
		}
		c->tls_write_len = 0;
	} else {
		n = send(c->tcp.fd, c->to_client.data, c->to_client.len - c->held, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN)
				c->dead = 1;
			return 0;
		}
	}
	c->out += (unsigned long long)n;
	buf_drop(&c->to_client, (size_t)n);
	return n > 0;
}

/* may_write_client - never plaintext before or during the handshake, and
 * none of the daemon's handshake before its ServerHello passed */
static int may_write_client(const struct conn *c)
{
	if (raw_state(c))
		return c->to_client.len > c->held;
	return c->state == ST_TLS ||
	       (c->state == ST_PLAIN && (c->rule->tls != TP_TLS_IMPLICIT || c->audit_plain));
}

static int may_read_client(const struct conn *c)
{
	return (c->state == ST_PLAIN || c->state == ST_TLS || raw_state(c)) && !c->start_tls &&
	       !c->expect_tls && !c->client_eof && !c->closing && c->to_app.len < TP_RELAY_BUFFER;
}

/*
 * half_close - the client shut down its sending side in plaintext: once
 * all it sent has gone to the daemon, the daemon gets its end of input
 * too, and its replies still reach the client until it closes, as they
 * would without the relay (RFC 9293 3.6).  Inside TLS a close ends the
 * session (RFC 8446 6.1, RFC 5246 7.2.1).
 */
static int half_close(struct conn *c)
{
	if (c->app_shut || c->to_app.len > 0 || tp_filter_held(c->filter) > 0)
		return 0;
	c->app_shut = 1;
	if (shutdown(c->app.fd, SHUT_WR) < 0)
		c->dead = 1;
	return 1;
}

/* --- tls_by = daemon, after the handshake: splice(2) ------------------------ */

#define SPLICE_CHUNK (64 * 1024)

/*
 * start_splice - the daemon's session passed the rule and nothing is
 * buffered here any more: from now on the bytes go from socket to socket
 * through two pipes, without a copy through user space.  If the pipes
 * cannot be had, the copying relay goes on.
 */
static void start_splice(struct conn *c)
{
	if (pipe2(c->pipe_c2a, O_NONBLOCK | O_CLOEXEC) < 0)
		return;
	if (pipe2(c->pipe_a2c, O_NONBLOCK | O_CLOEXEC) < 0) {
		close(c->pipe_c2a[0]);
		close(c->pipe_c2a[1]);
		return;
	}
	c->spliced = 1;
}

/* splice_dir - one direction: into its pipe, then out of it; 1 if progress */
static int splice_dir(struct conn *c, int from_client)
{
	int src = from_client ? c->tcp.fd : c->app.fd, dst = from_client ? c->app.fd : c->tcp.fd;
	int *pipefd = from_client ? c->pipe_c2a : c->pipe_a2c;
	size_t *held = from_client ? &c->in_c2a : &c->in_a2c;
	int *eof = from_client ? &c->client_eof : &c->app_eof;
	int progress = 0;
	ssize_t n;

	if (*held == 0 && !*eof) {
		n = splice(src, NULL, pipefd[1], NULL, SPLICE_CHUNK, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			*eof = 1;
			progress = 1;
		} else if (n > 0) {
			*held = (size_t)n;
			if (from_client)
				c->in += (unsigned long long)n;
			else
				c->out += (unsigned long long)n;
			c->last = time(NULL);
			progress = 1;
		}
	}
	if (*held > 0) {
		n = splice(pipefd[0], NULL, dst, NULL, *held, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (n < 0 && errno != EAGAIN)
			c->dead = 1;
		else if (n > 0) {
			*held -= (size_t)n;
			progress = 1;
		}
	}
	return progress;
}

/* step - one round of everything that can be done now; 1 if any was */
static int step(struct conn *c)
{
	int progress = 0;

	if (c->spliced)
		return splice_dir(c, 1) | (!c->dead && splice_dir(c, 0));
	if (c->state == ST_PASS && c->to_app.len == 0 && c->to_client.len == 0 && !c->dead) {
		start_splice(c);
		if (c->spliced)
			return 1;
	}

	if (c->state == ST_PEEK)
		progress |= peek_first(c);
	if (!c->dead && c->state == ST_UPGRADE)
		progress |= skip_injection(c);
	if (!c->dead && c->state == ST_HANDSHAKE)
		progress |= handshake(c);
	if (!c->dead && may_read_client(c))
		progress |= read_client(c);
	if (!c->dead && !c->app_eof && !c->closing && c->to_client.len < TP_RELAY_BUFFER)
		progress |= read_app(c);
	if (!c->dead && c->to_app.len > 0)
		progress |= write_app(c);
	if (!c->dead && c->to_client.len > 0 && may_write_client(c))
		progress |= write_client(c);
	if (!c->dead && c->client_eof && c->state == ST_PLAIN)
		progress |= half_close(c);
	if (!c->dead && (c->start_tls || c->expect_tls) && c->to_client.len == 0) {
		c->start_tls = c->expect_tls = 0;
		c->state = ST_UPGRADE;
		if (c->deadline == 0)
			c->deadline = time(NULL) + c->rule->handshake_timeout;
		progress = 1;
	}
	return progress;
}

static int finished(const struct conn *c)
{
	if (c->dead)
		return 1;
	if (c->spliced)		/* either side's end, once what it sent is delivered */
		return (c->client_eof && c->in_c2a == 0) || (c->app_eof && c->in_a2c == 0);
	if (c->closing && c->to_client.len == 0)
		return 1;
	if (c->client_eof && c->to_app.len == 0 && c->state != ST_PLAIN)
		return 1;	/* in plaintext, half_close() waits for the daemon */
	return c->app_eof && (c->to_client.len == 0 || !may_write_client(c));
}

static void set_interest(struct tp_worker *w, struct endpoint *e, uint32_t ev)
{
	if (e->events == ev)
		return;
	struct epoll_event ee = { .events = ev, .data.ptr = e };

	epoll_ctl(w->ep, EPOLL_CTL_MOD, e->fd, &ee);
	e->events = ev;
}

static void update_interest(struct tp_worker *w, struct conn *c)
{
	uint32_t t = 0, a = 0;

	if (c->spliced) {
		set_interest(w, &c->tcp, (c->in_c2a == 0 && !c->client_eof ? EPOLLIN : 0) |
					 (c->in_a2c > 0 ? EPOLLOUT : 0));
		set_interest(w, &c->app, (c->in_a2c == 0 && !c->app_eof ? EPOLLIN : 0) |
					 (c->in_c2a > 0 ? EPOLLOUT : 0));
		return;
	}

	if (c->state == ST_PEEK || c->state == ST_UPGRADE || may_read_client(c) ||
	    (c->ssl != NULL && wolfSSL_want_read(c->ssl)))
		t |= EPOLLIN;
	if ((c->to_client.len > 0 && may_write_client(c)) ||
	    (c->ssl != NULL && wolfSSL_want_write(c->ssl)))
		t |= EPOLLOUT;
	if (!c->app_eof && !c->closing && c->to_client.len < TP_RELAY_BUFFER)
		a |= EPOLLIN;
	if (c->to_app.len > 0)
		a |= EPOLLOUT;
	set_interest(w, &c->tcp, t);
	set_interest(w, &c->app, a);
}

static void conn_run(struct tp_worker *w, struct conn *c)
{
	for (int i = 0; i < 64 && !c->dead && step(c); i++)
		;
	if (finished(c)) {
		/* the last bytes for the daemon still go out, best effort */
		if (c->to_app.len > 0)
			write_app(c);
		conn_close(w, c);
		return;
	}
	update_interest(w, c);
}

/* --- the worker ------------------------------------------------------------ */

struct tp_worker *tp_worker_new(struct tp_limits *limits)
{
	struct tp_worker *w = calloc(1, sizeof(*w));
	struct epoll_event ee = { .events = EPOLLIN };

	if (w == NULL)
		return NULL;
	w->limits = limits;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0 || pipe2(w->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(w);
		return NULL;
	}
	ee.data.ptr = NULL;
	epoll_ctl(w->ep, EPOLL_CTL_ADD, w->pipe[0], &ee);
	return w;
}

/*
 * admit - count the connection against the limits, or refuse it (logged
 * at most once a second: an address that opens connections in a loop must
 * not flood the log either)
 */
static int admit(struct tp_worker *w, struct conn *c, const struct tp_rule *rule,
		 const char *client)
{
	const char *limit;
	long value;
	int log;
	unsigned long suppressed;

	tp_limits_client_addr(client, c->addr);
	if (w->limits == NULL)
		return 0;
	if (tp_limits_admit(w->limits, c->addr, &limit, &value, &log, &suppressed) == 0) {
		c->limits = w->limits;
		return 0;
	}
	if (log)
		tp_log(LOG_WARNING, "port=%d client=%s mode=%s action=refuse reason=too-many-connections "
		       "limit=%s value=%ld suppressed=%lu", rule->port, client,
		       tp_tls_mode_name(rule->tls), limit, value, suppressed);
	return -1;
}

static void conn_discard(struct conn *c)
{
	if (c->limits != NULL)
		tp_limits_release(c->limits, c->addr);
	tp_filter_free(&c->filter);
	free(c);
}

int tp_worker_add(struct tp_worker *w, int tcp, int app,
		  const struct tp_rule *rule, WOLFSSL_CTX *ctx,
		  const char *client, unsigned generation,
		  void (*release)(void *), void *release_arg)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct tp_filter_config fc;

	if (c == NULL) {
		errno = ENOMEM;
		return -1;
	}
	if (admit(w, c, rule, client) < 0) {
		free(c);
		errno = EBUSY;
		return -1;
	}
	fc = (struct tp_filter_config){ rule->protocol, rule->tls, rule->tls_by,
					rule->enforce == TP_ENFORCE_AUDIT, rule->refuse_alt_port };
	c->filter = tp_filter_new(&fc);
	if (c->filter == NULL) {
		conn_discard(c);
		errno = ENOMEM;
		return -1;
	}
	c->tcp = (struct endpoint){ c, tcp, 0 };
	c->app = (struct endpoint){ c, app, 0 };
	c->rule = rule;
	c->ctx = ctx;
	c->generation = generation;
	c->release = release;
	c->release_arg = release_arg;
	c->last = time(NULL);
	snprintf(c->client, sizeof(c->client), "%s", client);
	if (write(w->pipe[1], &c, sizeof(c)) != (ssize_t)sizeof(c)) {
		conn_discard(c);
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

/* conn_start - first steps of a new connection, in the worker's thread */
static void conn_start(struct tp_worker *w, struct conn *c)
{
	struct epoll_event ee = { .events = 0 };
	int one = 1;

	fcntl(c->tcp.fd, F_SETFL, fcntl(c->tcp.fd, F_GETFL) | O_NONBLOCK);
	fcntl(c->app.fd, F_SETFL, fcntl(c->app.fd, F_GETFL) | O_NONBLOCK);
	setsockopt(c->tcp.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->tcp.fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	ee.data.ptr = &c->tcp;
	epoll_ctl(w->ep, EPOLL_CTL_ADD, c->tcp.fd, &ee);
	ee.data.ptr = &c->app;
	epoll_ctl(w->ep, EPOLL_CTL_ADD, c->app.fd, &ee);
	{
		char extra[64];

		snprintf(extra, sizeof(extra), "tls_by=%s gen=%u",
			 c->rule->tls_by == TP_BY_MODULE ? "module" : "daemon", c->generation);
		conn_log(c, LOG_INFO, "relay", NULL, extra);
	}
	if (c->rule->tls == TP_TLS_REFUSE) {
		const char *line = tp_filter_refusal(c->filter);

		conn_log(c, LOG_NOTICE, "refuse", "port-disabled", NULL);
		buf_add(&c->to_client, (const uint8_t *)line, strlen(line));
		buf_add(&c->to_client, (const uint8_t *)"\r\n", 2);
		c->state = ST_PLAIN;
		c->closing = 1;
		c->deadline = time(NULL) + c->rule->handshake_timeout;
	} else if (c->rule->tls == TP_TLS_IMPLICIT) {
		c->state = ST_PEEK;
		c->deadline = time(NULL) + c->rule->handshake_timeout;
	} else if (c->rule->tls == TP_TLS_STARTTLS) {
		/* the whole plaintext phase and the handshake */
		c->state = ST_PLAIN;
		c->deadline = time(NULL) + c->rule->handshake_timeout;
	} else {
		/* opportunistic: mail may flow in clear, so no limit on the whole
		 * phase, but on the client's silence before TLS */
		c->state = ST_PLAIN;
		c->quiet_deadline = time(NULL) + c->rule->plaintext_timeout;
	}
	conn_run(w, c);
}

static void check_timeouts(struct tp_worker *w)
{
	time_t now = time(NULL);

	for (struct conn *c = w->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->deadline && now > c->deadline && c->state != ST_TLS && c->state != ST_PASS) {
			conn_log(c, LOG_NOTICE, "close", "handshake-timeout", NULL);
			conn_close(w, c);
			continue;
		} else if (c->quiet_deadline && now > c->quiet_deadline && c->state == ST_PLAIN) {
			char extra[48];

			snprintf(extra, sizeof(extra), "plaintext_timeout=%d", c->rule->plaintext_timeout);
			conn_log(c, LOG_NOTICE, "close", "plaintext-timeout", extra);
			conn_close(w, c);
			continue;
		} else if (now - c->last > TP_RELAY_IDLE_TIMEOUT) {
			conn_log(c, LOG_INFO, "close", "idle-timeout", NULL);
			conn_close(w, c);
		}
	}
}

void *tp_worker_run(void *arg)
{
	struct tp_worker *w = arg;
	struct epoll_event ev[64];
	time_t last_check = 0;

	while (!w->stop) {
		int n = epoll_wait(w->ep, ev, 64, 1000);

		for (int i = 0; i < n; i++) {
			struct endpoint *e = ev[i].data.ptr;
			struct conn *c;

			if (e == NULL) {
				while (read(w->pipe[0], &c, sizeof(c)) == (ssize_t)sizeof(c))
					if (c != NULL)	/* NULL: tp_worker_stop's wake-up */
						conn_start(w, c);
				continue;
			}
			if (!e->c->retired)
				conn_run(w, e->c);
		}
		free_retired(w);
		if (time(NULL) != last_check) {
			last_check = time(NULL);
			check_timeouts(w);
		}
	}
	while (w->conns != NULL)
		conn_close(w, w->conns);
	free_retired(w);
#ifdef FP_ECC
	wc_ecc_fp_free();	/* wolfSSL's per-thread ECC point cache */
#endif
	return NULL;
}

/* tp_worker_stop - and wake the loop now, not at its next epoll timeout */
void tp_worker_stop(struct tp_worker *w)
{
	struct conn *none = NULL;

	w->stop = 1;
	if (write(w->pipe[1], &none, sizeof(none)) < 0)
		return;		/* the pipe is full: the loop is awake anyway */
}
