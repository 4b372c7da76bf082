/*
 * probe_net.h - the client side of tlspolicyctl probe: a TCP connection
 * with timeouts, bounded line reads, and a wolfSSL handshake on it
 *
 * Every network operation has a deadline (PN_TIMEOUT_S unless given), and
 * every read is bounded by PN_LINE_MAX: a server that never answers or
 * answers without end cannot hang or exhaust the probe.
 */
#ifndef TP_PROBE_NET_H
#define TP_PROBE_NET_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define PN_TIMEOUT_S 10
#define PN_LINE_MAX 1024	/* longer lines are cut; the rest is read and dropped */
#define PN_BUF_MAX 8192

struct pn_conn {
	int fd;
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;
	char buf[PN_BUF_MAX];
	size_t len;
};

/* what a handshake is to offer and check */
struct pn_tls {
	enum { PN_ANY, PN_TLS11, PN_TLS12, PN_TLS13 } version;
	const char *ciphers;	/* wolfSSL list; NULL: wolfSSL's default */
	const char *cafile;	/* NULL: the system store */
	const char *sni;	/* NULL: none */
	int verify;		/* record the chain's verification result */
};

/* what a handshake gave */
struct pn_result {
	int ok;
	char version[16];
	char cipher[64];
	char error[128];	/* why it failed */
	int verify_error;	/* first chain error (wolfSSL code), 0 if none */
	char verify_text[128];
};

/*
 * pn_dial - connect to host:port within PN_TIMEOUT_S; 0, or -1 with the
 * reason in err
 */
int pn_dial(struct pn_conn *c, const char *host, const char *port, char *err, size_t size);

/* pn_send - all of s, through TLS once it is up; 0 or -1 */
int pn_send(struct pn_conn *c, const char *s);

/*
 * pn_line - the next line, without its line end, cut to size - 1;
 * waits at most timeout_ms.  Returns its length, -1 at EOF or on error,
 * -2 on timeout.
 */
int pn_line(struct pn_conn *c, char *line, size_t size, int timeout_ms);

/*
 * pn_handshake - a TLS client handshake on c as t says; fills r.  0 if
 * it succeeded (c now talks TLS), -1 if not, -2 if this wolfSSL cannot
 * make the offer (no such client method, no such suites).  The peer certificate, if
 * any, goes to *cert_r (caller frees with wolfSSL_X509_free) when
 * cert_r is not NULL.
 */
int pn_handshake(struct pn_conn *c, const struct pn_tls *t, struct pn_result *r,
		 WOLFSSL_X509 **cert_r);

void pn_close(struct pn_conn *c);

#endif
