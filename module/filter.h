/*
 * filter.h - the sans-I/O protocol filters for SMTP, IMAP and POP3
 *
 * One struct tp_filter follows one mail session between a client and the
 * mail daemon.  It never touches a socket, a clock or a global: the relay
 * in tlspolicyd feeds it the bytes each side sent and gets back what to
 * forward, what to answer itself, and what to do next.
 *
 * Before TLS the filter enforces DESIGN.md's "Protocol behaviour before
 * TLS": capabilities rewritten (authentication hidden, STARTTLS/STLS
 * shown), authentication refused with the exact replies of
 * policy/replies.h, other commands refused in starttls mode, the upgrade
 * answered, anything pipelined after the upgrade command discarded.
 * After TLS it passes the session through, except that the upgrade
 * command is refused and STARTTLS/STLS is removed from capabilities.
 *
 * Replies the filter makes itself are kept in order with the daemon's:
 * a local reply to a pipelined command is released only after the
 * daemon's replies to every command before it.
 *
 * Memory is bounded: lines over the protocol's limit (SMTP 512 octets,
 * IMAP and POP3 8 KiB, DESIGN.md "Limits") end the session with a
 * protocol error reply, and the queue of pipelined commands is bounded.
 */
#ifndef TP_FILTER_H
#define TP_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

struct tp_filter;

/* how the filter is set up for one session */
struct tp_filter_config {
	enum tp_protocol protocol;
	enum tp_tls_mode mode;		/* STARTTLS, OPPORTUNISTIC, IMPLICIT or REFUSE */
	enum tp_tls_by tls_by;		/* MODULE: tlspolicyd does TLS; DAEMON: the daemon does */
	int audit;			/* enforce = audit: decide, log, but let through */
	int refuse_alt_port;		/* REFUSE: the port to name; 0 if none */
};

/* what the relay must do after a call, besides moving the bytes */
enum {
	TP_FILTER_START_TLS = 1 << 0,	/* after to_client is flushed, do the server-side
					 * TLS handshake with the client (tls_by = module) */
	TP_FILTER_EXPECT_TLS = 1 << 1,	/* tls_by = daemon: the daemon accepted the upgrade;
					 * from now on the bytes are TLS records */
	TP_FILTER_CLOSE = 1 << 2,	/* after to_client is flushed, close both sides */
};

/* one decision, for the log: "action=refuse reason=auth-before-tls" etc. */
struct tp_filter_event {
	const char *action;		/* "refuse", "would-refuse", "discard", "starttls", "close" */
	const char *reason;		/* short token: "auth-before-tls", "injection", ... */
	size_t bytes;			/* for "discard": how many bytes */
};

#define TP_FILTER_MAX_EVENTS 8

/*
 * The output of one call.  The buffers are owned by the filter and valid
 * until the next call on it; the relay copies or sends them before then.
 */
struct tp_filter_out {
	const uint8_t *to_server;	/* forward these to the daemon */
	size_t to_server_len;
	const uint8_t *to_client;	/* send these to the client */
	size_t to_client_len;
	unsigned flags;			/* TP_FILTER_* */
	struct tp_filter_event events[TP_FILTER_MAX_EVENTS];
	size_t nevents;
};

/*
 * tp_filter_new - a filter for one session; NULL on allocation failure.
 * With mode IMPLICIT the session starts inside TLS (the relay does the
 * handshake first), so the filter starts in its after-TLS state.
 */
struct tp_filter *tp_filter_new(const struct tp_filter_config *config);

/* tp_filter_free - free it and set *f to NULL */
void tp_filter_free(struct tp_filter **f);

/*
 * tp_filter_client - bytes the client sent.  Returns 0, or -1 if the
 * session must end (the reason is in out->events and any last reply in
 * out->to_client, with TP_FILTER_CLOSE set).
 */
int tp_filter_client(struct tp_filter *f, const uint8_t *in, size_t len,
		     struct tp_filter_out *out);

/* tp_filter_server - bytes the daemon sent; same contract */
int tp_filter_server(struct tp_filter *f, const uint8_t *in, size_t len,
		     struct tp_filter_out *out);

/*
 * tp_filter_tls_done - the handshake finished (either role); the session
 * is now inside TLS.  Bytes of the client that arrived between the upgrade
 * command and the handshake were discarded by then (RFC 3207 4.2,
 * CVE-2011-0411).
 */
void tp_filter_tls_done(struct tp_filter *f);

/*
 * tp_filter_held - how many client bytes the filter holds until the
 * daemon's next reply says how they read (a DATA body before the 354, a
 * literal before the "+").  They go on with a later tp_filter_server
 * output, so the relay must not end the daemon's input while any are held.
 */
size_t tp_filter_held(const struct tp_filter *f);

/*
 * tp_filter_refusal - for tls = refuse: the one reply that tells the
 * client to use another port, to send before closing (policy/replies.h).
 * For other modes NULL.
 */
const char *tp_filter_refusal(const struct tp_filter *f);

#endif
