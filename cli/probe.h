/*
 * probe.h - tlspolicyctl probe: what it expects of a server, and the
 * checklist it fills
 *
 * probe.c reads the command line and the policy, runs the checks and
 * prints them; probe_proto.c holds the SMTP, IMAP and POP3 dialogues and
 * the checks made in them.
 */
#ifndef TP_PROBE_H
#define TP_PROBE_H

#include "policy.h"
#include "probe_net.h"

#define PROBE_MAX_CHECKS 64

enum probe_status { PROBE_PASS, PROBE_WARN, PROBE_FAIL };

struct probe_check {
	char id[32];
	enum probe_status status;
	char detail[256];
	const char *advice;	/* for a FAIL; NULL otherwise */
};

struct probe {
	/* what to probe and what to expect of it */
	const char *host, *port;
	const char *servername;	/* the name the certificate must carry */
	const char *cafile;	/* NULL: the system store */
	enum tp_protocol proto;
	enum tp_tls_mode tls;
	enum tp_version floor;
	unsigned ban;		/* TP_CLASS_* */
	const char *rule;	/* the policy section, NULL if none */
	/* what was found */
	struct probe_check checks[PROBE_MAX_CHECKS];
	size_t n;
	WOLFSSL_X509 *cert;	/* from the main handshake, NULL if none */
	int handshake_done;
	int verify_error;	/* the chain's first error, 0 if it verified */
	char verify_text[128];
};

/* probe_add - append a check; fmt describes what was seen */
void probe_add(struct probe *p, const char *id, enum probe_status st, const char *advice,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * probe_session - the main session: on an implicit port a TLS handshake;
 * on a STARTTLS port the plaintext dialogue (greeting, capabilities, AUTH
 * refused, STARTTLS with an injected command), the handshake and the
 * capabilities after it; on a refuse port the refusal.  Keeps the peer
 * certificate in p->cert.  0, or -1 if the server could not be reached
 * (err says why).
 */
int probe_session(struct probe *p, char *err, size_t size);

/* probe_plaintext_refused - implicit port: a protocol line in clear gets no protocol reply */
void probe_plaintext_refused(struct probe *p);

/*
 * probe_attempt - one more connection, brought to the point of the
 * handshake (STARTTLS first where the port wants it), then a handshake as
 * t says.  0 the server accepted it, -1 refused, -2 this wolfSSL cannot
 * make the offer, -3 the connection or the STARTTLS dialogue failed;
 * r says more.
 */
int probe_attempt(const struct probe *p, const struct pn_tls *t, struct pn_result *r);

#endif
