/*
 * tlsclient.c - tp-tlsclient: a wolfSSL client that offers exactly what it
 * is told, for the demo and the tests
 *
 *   tp-tlsclient [--starttls smtp|imap|pop3] [--version 1.1|1.2|1.3]
 *                [--cipher LIST] [--cafile FILE] HOST PORT
 *
 * OpenSSL 3 no longer offers RC4 and only offers TLS 1.0/1.1 at security
 * level 0; Debian's wolfSSL still has RC4, NULL and anonymous suites and
 * TLS 1.1, so this client can make the offers a hardened server must
 * refuse.  It prints one line:
 *
 *   handshake ok: VERSION SUITE
 *   handshake failed: REASON
 *
 * and exits 0 (ok), 1 (handshake failed or the server closed) or
 * 2 (usage, connection or STARTTLS dialogue failed).  Without --cafile the
 * server certificate is not verified: the point is the offer, not trust.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define TIMEOUT_S 10

struct opts {
	const char *starttls, *version, *cipher, *cafile, *host, *port;
};

static int usage(void)
{
	fprintf(stderr, "usage: tp-tlsclient [--starttls smtp|imap|pop3] [--version 1.1|1.2|1.3]\n"
		"                    [--cipher LIST] [--cafile FILE] HOST PORT\n");
	return 2;
}

/* dial - a TCP connection with send and receive timeouts; -1 on error */
static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { TIMEOUT_S, 0 };
	int fd = -1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* read_reply - read until a line starting with want (after an optional
 * "tag "); 0 when found, -1 on EOF, error or a line starting with bad */
static int read_reply(int fd, const char *want)
{
	char buf[4096];
	size_t len = 0;
	ssize_t n;

	for (;;) {
		char *line = buf, *nl;

		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		while ((nl = strstr(line, "\r\n")) != NULL) {
			if (strncmp(line, want, strlen(want)) == 0)
				return 0;
			line = nl + 2;
		}
		len -= (size_t)(line - buf);
		memmove(buf, line, len);
		if (len == sizeof(buf) - 1)
			return -1;
	}
}

static int say(int fd, const char *s)
{
	return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s) ? 0 : -1;
}

/* starttls - the plaintext dialogue up to "go ahead with TLS" */
static int starttls(int fd, const char *proto)
{
	if (strcmp(proto, "smtp") == 0)
		return read_reply(fd, "220 ") || say(fd, "EHLO tp-tlsclient\r\n") ||
		       read_reply(fd, "250 ") || say(fd, "STARTTLS\r\n") ||
		       read_reply(fd, "220 ") ? -1 : 0;
	if (strcmp(proto, "imap") == 0)
		return read_reply(fd, "* OK") || say(fd, "a STARTTLS\r\n") ||
		       read_reply(fd, "a OK") ? -1 : 0;
	if (strcmp(proto, "pop3") == 0)
		return read_reply(fd, "+OK") || say(fd, "STLS\r\n") ||
		       read_reply(fd, "+OK") ? -1 : 0;
	return -1;
}

static WOLFSSL_METHOD *method(const char *version)
{
	if (version == NULL)
		return wolfSSLv23_client_method();
	if (strcmp(version, "1.1") == 0)
		return wolfTLSv1_1_client_method();
	if (strcmp(version, "1.2") == 0)
		return wolfTLSv1_2_client_method();
	if (strcmp(version, "1.3") == 0)
		return wolfTLSv1_3_client_method();
	return NULL;
}

static int parse(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char **slot = strcmp(argv[i], "--starttls") == 0 ? &o->starttls :
				    strcmp(argv[i], "--version") == 0 ? &o->version :
				    strcmp(argv[i], "--cipher") == 0 ? &o->cipher :
				    strcmp(argv[i], "--cafile") == 0 ? &o->cafile : NULL;
		if (slot == NULL || i + 1 >= argc)
			return -1;
		*slot = argv[i + 1];
	}
	if (argc - i != 2)
		return -1;
	o->host = argv[i];
	o->port = argv[i + 1];
	return 0;
}

/* handshake - the TLS part; prints the outcome line, returns the exit code */
static int handshake(int fd, const struct opts *o)
{
	WOLFSSL_METHOD *m = method(o->version);
	WOLFSSL_CTX *ctx = m != NULL ? wolfSSL_CTX_new(m) : NULL;
	WOLFSSL *ssl = NULL;
	char err[WOLFSSL_MAX_ERROR_SZ];
	int rc = 1;

	if (ctx == NULL) {
		printf("handshake failed: this wolfSSL cannot make a TLS %s client\n", o->version);
		return 2;
	}
	if (o->cafile != NULL)
		wolfSSL_CTX_load_verify_locations(ctx, o->cafile, NULL);
	else
		wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
	if (o->cipher != NULL && wolfSSL_CTX_set_cipher_list(ctx, o->cipher) != WOLFSSL_SUCCESS) {
		printf("handshake failed: this wolfSSL has none of the suites \"%s\"\n", o->cipher);
		rc = 2;
		goto out;
	}
	ssl = wolfSSL_new(ctx);
	if (ssl == NULL || wolfSSL_set_fd(ssl, fd) != WOLFSSL_SUCCESS)
		goto out;
	wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, o->host, (unsigned short)strlen(o->host));
	if (wolfSSL_connect(ssl) != WOLFSSL_SUCCESS) {
		wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(ssl, 0), err, sizeof(err));
		printf("handshake failed: %s\n", err);
		goto out;
	}
	printf("handshake ok: %s %s\n", wolfSSL_get_version(ssl), wolfSSL_get_cipher(ssl));
	wolfSSL_shutdown(ssl);
	rc = 0;
out:
	wolfSSL_free(ssl);
	wolfSSL_CTX_free(ctx);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	int fd, rc;

	if (parse(argc, argv, &o) < 0)
		return usage();
	fd = dial(o.host, o.port);
	if (fd < 0) {
		printf("connection failed: %s:%s: %s\n", o.host, o.port, strerror(errno));
		return 2;
	}
	if (o.starttls != NULL && starttls(fd, o.starttls) < 0) {
		printf("starttls failed: the server did not accept %s STARTTLS\n", o.starttls);
		close(fd);
		return 2;
	}
	wolfSSL_Init();
	rc = handshake(fd, &o);
	wolfSSL_Cleanup();
	close(fd);
	return rc;
}
