/*
 * client.c - the benchmark's handshake load: full TLS handshakes per
 * second against an implicit-TLS SMTP port on 127.0.0.1
 *
 *   client [-n N] [-c K] [-s SUITE] -a CAFILE PORT
 *
 * N full TLS handshakes (default 2000; every connection is a new session,
 * nothing is resumed), K at a time (default 8) from K threads.  Each
 * connects, does the handshake, reads the SMTP greeting (so the mail
 * server behind the TLS endpoint was reached), sends close_notify and
 * closes.  The time is from the first connect to the last close.
 *
 * The offer is fixed so every server negotiates the same thing: TLS 1.2
 * as the floor, but only the one TLS 1.3 suite SUITE (default
 * TLS13-AES128-GCM-SHA256, the one RFC 8446 9.1 makes mandatory) and one
 * key share, X25519.  The certificate is verified against CAFILE for the
 * name "localhost".  Output is one line of key=value pairs:
 *
 *   handshakes=N concurrency=K seconds=S per_second=R version=V suite=S group=G
 *
 * The exit status is 0, 1 if any connection failed (it says which and
 * why on stderr), or 2 for bad usage.
 *
 * Bulk throughput is measured by bench/bulk_client.py instead: wolfSSL as
 * Debian builds it encrypts AES-GCM without AES-NI, so a wolfSSL client
 * would be the bottleneck of every setup.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define TIMEOUT_S 60
#define THREADS_MAX 256
#define REPLY_MAX 4096		/* a whole (multi-line) SMTP reply */

struct opts {
	const char *cafile, *suite;
	int port;
	long count, concurrency;
};

/* one TLS connection and what it has read but not consumed */
struct conn {
	int fd;
	WOLFSSL *ssl;
	char buf[REPLY_MAX];
	size_t len;
};

/* the handshake run, shared by its threads */
static struct {
	WOLFSSL_CTX *ctx;
	int port;
	long count;
	atomic_long next;	/* handshakes handed out */
	atomic_int failed;
	pthread_mutex_t lock;	/* for the lines below */
	char first[256];	/* what the first connection negotiated */
	char error[256];	/* the first failure */
} run = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int usage(void)
{
	fprintf(stderr, "usage: client [-n N] [-c K] [-s SUITE] -a CAFILE PORT\n");
	return 2;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* dial - a TCP connection to 127.0.0.1:port with timeouts and no Nagle; -1 on error */
static int dial(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct timeval tv = { TIMEOUT_S, 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* conn_open - connect and do the TLS handshake; 0, or -1 with why in err */
static int conn_open(struct conn *c, WOLFSSL_CTX *ctx, int port, char *err, size_t errlen)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->fd = dial(port);
	if (c->fd < 0) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		return -1;
	}
	c->ssl = wolfSSL_new(ctx);
	if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS ||
	    wolfSSL_check_domain_name(c->ssl, "localhost") != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL_new failed");
		return -1;
	}
	rc = wolfSSL_connect(c->ssl);
	if (rc != WOLFSSL_SUCCESS) {
		char text[WOLFSSL_MAX_ERROR_SZ];

		wolfSSL_ERR_error_string_n((unsigned long)wolfSSL_get_error(c->ssl, rc), text, sizeof(text));
		snprintf(err, errlen, "handshake: %s", text);
		return -1;
	}
	return 0;
}

/* conn_close - close_notify (not waiting for the peer's), then close */
static void conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		wolfSSL_shutdown(c->ssl);
		wolfSSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* describe - "version=... suite=... group=..." of an established connection */
static void describe(struct conn *c, char *out, size_t len)
{
	const char *group = wolfSSL_get_curve_name(c->ssl);

	snprintf(out, len, "version=%s suite=%s group=%s", wolfSSL_get_version(c->ssl),
		 wolfSSL_get_cipher_name(c->ssl), group != NULL ? group : "?");
}

/*
 * read_reply - one SMTP reply (RFC 5321 4.2: lines "NNN-..." then "NNN ...");
 * returns its code, or -1 on EOF, error or a reply longer than REPLY_MAX
 */
static int read_reply(struct conn *c)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(c->buf + start, '\n', c->len - start);
		int n;

		if (nl != NULL) {
			size_t end = (size_t)(nl - c->buf) + 1;

			if (end - start >= 4 && c->buf[start + 3] == ' ') {
				int code = atoi(c->buf + start);

				memmove(c->buf, c->buf + end, c->len - end);
				c->len -= end;
				return code;
			}
			start = end;		/* a continuation line */
			continue;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		n = wolfSSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

static void fail(const char *why)
{
	pthread_mutex_lock(&run.lock);
	if (run.error[0] == '\0')
		snprintf(run.error, sizeof(run.error), "%s", why);
	pthread_mutex_unlock(&run.lock);
	atomic_store(&run.failed, 1);
}

/* one_handshake - connect, handshake, read the greeting, close; 0 or -1 */
static int one_handshake(void)
{
	struct conn c;
	char err[200];
	int code;

	if (conn_open(&c, run.ctx, run.port, err, sizeof(err)) < 0) {
		conn_close(&c);
		fail(err);
		return -1;
	}
	code = read_reply(&c);
	if (code != 220) {
		if (code < 0)
			snprintf(err, sizeof(err), "no SMTP greeting (EOF, error, or over %d octets)", REPLY_MAX);
		else
			snprintf(err, sizeof(err), "greeting %d, not 220", code);
		conn_close(&c);
		fail(err);
		return -1;
	}
	pthread_mutex_lock(&run.lock);
	if (run.first[0] == '\0')
		describe(&c, run.first, sizeof(run.first));
	pthread_mutex_unlock(&run.lock);
	conn_close(&c);
	return 0;
}

static void *handshake_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&run.failed) && atomic_fetch_add(&run.next, 1) < run.count)
		if (one_handshake() < 0)
			break;
	return NULL;
}

static int handshakes(WOLFSSL_CTX *ctx, const struct opts *o)
{
	pthread_t t[THREADS_MAX];
	long started = 0;
	double t0, t1;

	run.ctx = ctx;
	run.port = o->port;
	run.count = o->count;
	t0 = now();
	for (; started < o->concurrency; started++)
		if (pthread_create(&t[started], NULL, handshake_thread, NULL) != 0) {
			fail("pthread_create failed");
			break;
		}
	for (long i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	t1 = now();
	if (atomic_load(&run.failed)) {
		fprintf(stderr, "client: 127.0.0.1:%d: %s\n", o->port, run.error);
		return 1;
	}
	printf("handshakes=%ld concurrency=%ld seconds=%.3f per_second=%.1f %s\n",
	       o->count, o->concurrency, t1 - t0, (double)o->count / (t1 - t0), run.first);
	return 0;
}

/* make_ctx - the client's fixed offer (see the top of this file) */
static WOLFSSL_CTX *make_ctx(const struct opts *o)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	int groups[] = { WOLFSSL_ECC_X25519 };

	if (ctx == NULL)
		return NULL;
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(ctx, o->suite) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_load_verify_locations(ctx, o->cafile, NULL) != WOLFSSL_SUCCESS) {
		fprintf(stderr, "client: cannot set up TLS (suite %s, CA file %s)\n", o->suite, o->cafile);
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
	return ctx;
}

static int number(const char *text, long min, long max, long *out)
{
	char *end;
	long v = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	long port;
	int opt;

	while ((opt = getopt(argc, argv, "a:c:n:s:")) != -1) {
		switch (opt) {
		case 'a': o->cafile = optarg; break;
		case 's': o->suite = optarg; break;
		case 'c': if (number(optarg, 1, THREADS_MAX, &o->concurrency) < 0) return -1; break;
		case 'n': if (number(optarg, 1, 100000000, &o->count) < 0) return -1; break;
		default: return -1;
		}
	}
	if (o->cafile == NULL || optind != argc - 1 || number(argv[optind], 1, 65535, &port) < 0)
		return -1;
	o->port = (int)port;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .suite = "TLS13-AES128-GCM-SHA256", .count = 2000, .concurrency = 8 };
	WOLFSSL_CTX *ctx;
	int rc;

	if (parse(argc, argv, &o) < 0)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	if (wolfSSL_Init() != WOLFSSL_SUCCESS || (ctx = make_ctx(&o)) == NULL)
		return 1;
	rc = handshakes(ctx, &o);
	wolfSSL_CTX_free(ctx);
	wolfSSL_Cleanup();
	return rc;
}
