/*
 * probe_net.c - TCP, bounded lines and wolfSSL handshakes for tlspolicyctl probe
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "probe_net.h"

/* set_timeouts - no blocking call on fd may wait longer than PN_TIMEOUT_S */
static void set_timeouts(int fd)
{
	struct timeval tv = { PN_TIMEOUT_S, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* connect_timed - connect(2) that gives up after PN_TIMEOUT_S; 0 or errno */
static int connect_timed(int fd, const struct addrinfo *ai)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int flags = fcntl(fd, F_GETFL), e = 0;
	socklen_t len = sizeof(e);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			return errno;
		if (poll(&p, 1, PN_TIMEOUT_S * 1000) != 1)
			return ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
			return errno;
		if (e != 0)
			return e;
	}
	fcntl(fd, F_SETFL, flags);
	return 0;
}

int pn_dial(struct pn_conn *c, const char *host, const char *port, char *err, size_t size)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int rc, e = ECONNREFUSED;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, size, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);

		if (fd < 0) {
			e = errno;
			continue;
		}
		e = connect_timed(fd, ai);
		if (e == 0) {
			set_timeouts(fd);
			c->fd = fd;
		} else {
			close(fd);
		}
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		snprintf(err, size, "%s port %s: %s", host, port, strerror(e));
		return -1;
	}
	return 0;
}

int pn_send(struct pn_conn *c, const char *s)
{
	size_t len = strlen(s);

	if (c->ssl != NULL)
		return wolfSSL_write(c->ssl, s, (int)len) == (int)len ? 0 : -1;
	return send(c->fd, s, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* fill - more bytes into c->buf within timeout_ms; >0, 0 at EOF, -1 error, -2 timeout */
static int fill(struct pn_conn *c, int timeout_ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	int room = (int)(sizeof(c->buf) - c->len), n;

	if (c->ssl == NULL || wolfSSL_pending(c->ssl) == 0) {
		n = poll(&p, 1, timeout_ms);
		if (n == 0)
			return -2;
		if (n < 0)
			return -1;
	}
	if (c->ssl != NULL) {
		n = wolfSSL_read(c->ssl, c->buf + c->len, room);
		if (n <= 0)
			return wolfSSL_get_error(c->ssl, n) == WOLFSSL_ERROR_ZERO_RETURN ? 0 : -1;
	} else {
		n = (int)recv(c->fd, c->buf + c->len, (size_t)room, 0);
		if (n <= 0)
			return n == 0 ? 0 : -1;
	}
	c->len += (size_t)n;
	return n;
}

/* take - move the first n bytes of c->buf to line (cut to size - 1), drop n + skip */
static int take(struct pn_conn *c, size_t n, size_t skip, char *line, size_t size)
{
	size_t keep = n < size - 1 ? n : size - 1;

	memcpy(line, c->buf, keep);
	line[keep] = '\0';
	if (keep > 0 && line[keep - 1] == '\r')
		line[--keep] = '\0';
	memmove(c->buf, c->buf + n + skip, c->len - n - skip);
	c->len -= n + skip;
	return (int)keep;
}

int pn_line(struct pn_conn *c, char *line, size_t size, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		int n;

		if (nl != NULL)
			return take(c, (size_t)(nl - c->buf), 1, line, size);
		if (c->len == sizeof(c->buf))	/* an endless line: keep its start */
			return take(c, c->len, 0, line, size);
		n = fill(c, timeout_ms);
		if (n == -2)
			return -2;
		if (n <= 0)
			return -1;
	}
}

/*
 * The verify callback has no argument of its own; the probe makes one
 * handshake at a time, so the result being filled is kept here.
 */
static struct pn_result *verifying;

/* verify_cb - note the first chain error and go on: the probe reports, it does not refuse */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	if (!preverify && verifying != NULL && verifying->verify_error == 0) {
		int e = wolfSSL_X509_STORE_CTX_get_error(store);

		verifying->verify_error = e != 0 ? e : -1;
		snprintf(verifying->verify_text, sizeof(verifying->verify_text), "%s",
			 wolfSSL_X509_verify_cert_error_string(e));
	}
	return 1;
}

static WOLFSSL_METHOD *client_method(int version)
{
	switch (version) {
	case PN_TLS11: return wolfTLSv1_1_client_method();
	case PN_TLS12: return wolfTLSv1_2_client_method();
	case PN_TLS13: return wolfTLSv1_3_client_method();
	default: return wolfSSLv23_client_method();
	}
}

/* make_ctx - the context t asks for; NULL with r->error set */
static WOLFSSL_CTX *make_ctx(const struct pn_tls *t, struct pn_result *r)
{
	WOLFSSL_METHOD *m = client_method(t->version);
	WOLFSSL_CTX *ctx = m != NULL ? wolfSSL_CTX_new(m) : NULL;

	if (ctx == NULL) {
		snprintf(r->error, sizeof(r->error), "this wolfSSL cannot make that client");
		return NULL;
	}
	if (t->ciphers != NULL && wolfSSL_CTX_set_cipher_list(ctx, t->ciphers) != WOLFSSL_SUCCESS) {
		snprintf(r->error, sizeof(r->error), "this wolfSSL refuses the suites %s", t->ciphers);
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	if (!t->verify) {
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if (t->cafile != NULL ? wolfSSL_CTX_load_verify_locations(ctx, t->cafile, NULL) != WOLFSSL_SUCCESS
	    : wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
		r->verify_error = -1;
		snprintf(r->verify_text, sizeof(r->verify_text), "cannot load %s",
			 t->cafile != NULL ? t->cafile : "the system CA store");
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, verify_cb);
	return ctx;
}

int pn_handshake(struct pn_conn *c, const struct pn_tls *t, struct pn_result *r,
		 WOLFSSL_X509 **cert_r)
{
	memset(r, 0, sizeof(*r));
	c->ctx = make_ctx(t, r);
	if (c->ctx == NULL)
		return -2;
	c->ssl = wolfSSL_new(c->ctx);
	if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS) {
		snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	if (t->sni != NULL)
		wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, t->sni, (unsigned short)strlen(t->sni));
	verifying = r;
	if (wolfSSL_connect(c->ssl) != WOLFSSL_SUCCESS) {
		char e[WOLFSSL_MAX_ERROR_SZ];

		wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(c->ssl, 0), e, sizeof(e));
		snprintf(r->error, sizeof(r->error), "%s", e);
		verifying = NULL;
		wolfSSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	verifying = NULL;
	r->ok = 1;
	snprintf(r->version, sizeof(r->version), "%s", wolfSSL_get_version(c->ssl));
	snprintf(r->cipher, sizeof(r->cipher), "%s", wolfSSL_get_cipher(c->ssl));
	if (cert_r != NULL)
		*cert_r = wolfSSL_get_peer_certificate(c->ssl);
	return 0;
}

void pn_close(struct pn_conn *c)
{
	if (c->ssl != NULL) {
		wolfSSL_shutdown(c->ssl);
		wolfSSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->ctx != NULL) {
		wolfSSL_CTX_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
}
