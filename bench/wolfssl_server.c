/*
 * wolfssl_server.c - the benchmark's bare wolfSSL server: the ceiling, and
 * a plaintext SMTP sink in C
 *
 *   wolfssl_server [-t THREADS] -c CERT -k KEY PORT    implicit-TLS SMTP
 *   wolfssl_server [-t THREADS] -P PORT                plaintext SMTP
 *
 * Listens on 127.0.0.1:PORT and speaks just enough SMTP for bench/client:
 * a greeting, then HELO/EHLO, MAIL, RCPT, RSET, NOOP and QUIT answered
 * with 250 (221 for QUIT), and DATA, whose content is read up to the
 * terminating line and discarded.  Nothing is checked, stored or logged:
 * this is the least any server can do per connection and per byte.
 *
 * With -c and -k it does TLS itself with wolfSSL, under the same floor as
 * the benchmark's policy (TLS 1.2 minimum; the client offers only TLS 1.3
 * suites, so 1.3 is negotiated): the ceiling a relay in front of a mail
 * server is measured against.  With -P it speaks plaintext: the same
 * SMTP code as a backend that costs next to nothing, for tlspolicyd (run
 * it with tlspolicy.so preloaded) or stunnel in front of it.
 *
 * Concurrency: blocking I/O in a fixed pool of THREADS threads (default
 * 16), each looping accept(), serve one connection, close.  The pool is
 * larger than the benchmark's client concurrency, so no connection waits
 * for a thread, and the kernel spreads the threads over the CPUs.  It
 * prints "ready" on stdout once it listens and runs until killed.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#define THREADS_DEFAULT 16
#define THREADS_MAX 256
#define IO_CHUNK 65536		/* one read(); wolfSSL returns at most a record */
#define LINE_MAX_SMTP 512	/* RFC 5321 4.5.3.1.4: command line, with CRLF */
#define IO_TIMEOUT_S 30

static const char greeting[] = "220 mail.test ESMTP tlspolicy-bench\r\n";
static const char ehlo_reply[] = "250-mail.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

/* one connection */
struct sink {
	int fd;
	WOLFSSL *ssl;		/* NULL in plaintext mode */
	char in[IO_CHUNK];
	size_t len;		/* unconsumed bytes at the start of in[] */
	int dot;		/* in DATA: octets of ".\r\n" matched at a line start; -1 mid-line */
};

static int listen_fd = -1;
static WOLFSSL_CTX *ctx;	/* NULL in plaintext mode */

static int usage(void)
{
	fprintf(stderr, "usage: wolfssl_server [-t THREADS] -c CERT -k KEY PORT\n"
		"       wolfssl_server [-t THREADS] -P PORT\n");
	return 2;
}

/* sink_read - more bytes into in[]; >0 read, 0 at EOF, -1 on error */
static int sink_read(struct sink *s)
{
	size_t room = sizeof(s->in) - s->len;
	ssize_t n;

	if (s->ssl != NULL)
		n = wolfSSL_read(s->ssl, s->in + s->len, (int)room);
	else
		do
			n = read(s->fd, s->in + s->len, room);
		while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	s->len += (size_t)n;
	return 1;
}

/* sink_write - all of p, or -1 */
static int sink_write(struct sink *s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;

		if (s->ssl != NULL)
			w = wolfSSL_write(s->ssl, p, (int)n);
		else
			w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && s->ssl == NULL && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int reply(struct sink *s, const char *text)
{
	return sink_write(s, text, strlen(text));
}

static void consume(struct sink *s, size_t n)
{
	memmove(s->in, s->in + n, s->len - n);
	s->len -= n;
}

/*
 * body_end - where the DATA content ends in in[]: the offset just after
 * the line that is a single dot (RFC 5321 4.1.1.4), or 0 if it is not
 * there yet.  A match that straddles two reads is carried in s->dot.
 */
static size_t body_end(struct sink *s)
{
	static const char term[] = ".\r\n";
	const char *nl;
	size_t i = 0;

	while (i < s->len) {
		if (s->dot >= 0) {
			if (s->in[i] == term[s->dot]) {
				i++;
				if (++s->dot == 3)
					return i;
				continue;
			}
			s->dot = -1;	/* an ordinary line: skip to its end */
		}
		nl = memchr(s->in + i, '\n', s->len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - s->in) + 1;
		s->dot = 0;
	}
	return 0;
}

/* read_body - read and discard the DATA content; 0 at its end, -1 on EOF or error */
static int read_body(struct sink *s)
{
	s->dot = 0;			/* the content starts at a line start */
	for (;;) {
		size_t end = body_end(s);

		if (end > 0) {
			consume(s, end);	/* keep what the client pipelined after it */
			return 0;
		}
		s->len = 0;		/* all of it is content: drop it */
		if (sink_read(s) <= 0)
			return -1;
	}
}

/* command - answer one command line; 1 to go on, 0 after QUIT, -1 on error */
static int command(struct sink *s, const char *line)
{
	if (strncasecmp(line, "EHLO", 4) == 0)
		return reply(s, ehlo_reply) < 0 ? -1 : 1;
	if (strncasecmp(line, "QUIT", 4) == 0)
		return reply(s, "221 2.0.0 Bye\r\n") < 0 ? -1 : 0;
	if (strncasecmp(line, "DATA", 4) == 0) {
		if (reply(s, "354 End data with <CR><LF>.<CR><LF>\r\n") < 0 || read_body(s) < 0)
			return -1;
		return reply(s, "250 2.0.0 Ok: discarded\r\n") < 0 ? -1 : 1;
	}
	if (strncasecmp(line, "HELO", 4) == 0 || strncasecmp(line, "MAIL", 4) == 0 ||
	    strncasecmp(line, "RCPT", 4) == 0 || strncasecmp(line, "RSET", 4) == 0 ||
	    strncasecmp(line, "NOOP", 4) == 0)
		return reply(s, "250 2.0.0 Ok\r\n") < 0 ? -1 : 1;
	return reply(s, "502 5.5.2 Error: command not recognized\r\n") < 0 ? -1 : 1;
}

/* smtp - the session after the handshake: greeting, then one command a line */
static void smtp(struct sink *s)
{
	if (reply(s, greeting) < 0)
		return;
	for (;;) {
		char line[LINE_MAX_SMTP + 1];
		char *nl = memchr(s->in, '\n', s->len);
		size_t n;
		int rc;

		if (nl == NULL) {
			if (s->len >= LINE_MAX_SMTP) {
				reply(s, "500 5.5.0 Error: line too long\r\n");
				return;
			}
			if (sink_read(s) <= 0)
				return;
			continue;
		}
		n = (size_t)(nl - s->in) + 1;
		if (n > LINE_MAX_SMTP) {
			reply(s, "500 5.5.0 Error: line too long\r\n");
			return;
		}
		memcpy(line, s->in, n);
		line[n] = '\0';
		consume(s, n);
		rc = command(s, line);
		if (rc <= 0)
			return;
	}
}

/* serve - one accepted connection, start to end; the caller closes fd */
static void serve(int fd)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	int one = 1;

	if (s == NULL)
		return;
	s->fd = fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ctx != NULL) {
		s->ssl = wolfSSL_new(ctx);
		if (s->ssl == NULL || wolfSSL_set_fd(s->ssl, fd) != WOLFSSL_SUCCESS ||
		    wolfSSL_accept(s->ssl) != WOLFSSL_SUCCESS)
			goto out;
	}
	smtp(s);
	if (s->ssl != NULL)
		wolfSSL_shutdown(s->ssl);	/* close_notify, as a mail server sends it */
out:
	if (s->ssl != NULL)
		wolfSSL_free(s->ssl);
	free(s);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);

		if (fd < 0) {
			/* ECONNABORTED: the peer gave up, or tlspolicy.so took it */
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(10000);
			continue;
		}
		serve(fd);
		close(fd);
	}
	return NULL;
}

static int listen_on(const char *port_text)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char *end;
	long port = strtol(port_text, &end, 10);
	int one = 1;

	if (*port_text == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "wolfssl_server: bad port: %s\n", port_text);
		return -1;
	}
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(listen_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(listen_fd, SOMAXCONN) < 0) {
		fprintf(stderr, "wolfssl_server: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
		return -1;
	}
	return 0;
}

/* make_ctx - the server context: TLS 1.2 floor, the certificate and key */
static WOLFSSL_CTX *make_ctx(const char *cert, const char *key)
{
	WOLFSSL_CTX *c = wolfSSL_CTX_new(wolfSSLv23_server_method());

	if (c == NULL)
		return NULL;
	if (wolfSSL_CTX_SetMinVersion(c, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_certificate_chain_file(c, cert) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_PrivateKey_file(c, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_check_private_key(c) != WOLFSSL_SUCCESS) {
		fprintf(stderr, "wolfssl_server: cannot load %s and %s\n", cert, key);
		wolfSSL_CTX_free(c);
		return NULL;
	}
	return c;
}

static int start_workers(long n)
{
	pthread_t t;

	for (long i = 0; i < n; i++) {
		int e = pthread_create(&t, NULL, worker, NULL);

		if (e != 0) {
			fprintf(stderr, "wolfssl_server: pthread_create: %s\n", strerror(e));
			return -1;
		}
		pthread_detach(t);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	long threads = THREADS_DEFAULT;
	int plain = 0, opt;

	while ((opt = getopt(argc, argv, "c:k:Pt:")) != -1) {
		switch (opt) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'P': plain = 1; break;
		case 't':
			threads = strtol(optarg, NULL, 10);
			if (threads < 1 || threads > THREADS_MAX)
				return usage();
			break;
		default: return usage();
		}
	}
	if (optind != argc - 1 || (plain ? cert != NULL || key != NULL : cert == NULL || key == NULL))
		return usage();
	signal(SIGPIPE, SIG_IGN);
	if (wolfSSL_Init() != WOLFSSL_SUCCESS)
		return 1;
	if (!plain && (ctx = make_ctx(cert, key)) == NULL)
		return 1;
	if (listen_on(argv[optind]) < 0 || start_workers(threads) < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
