/*
 * connlimits.c - connection counts per client address and in all
 *
 * A hash table of the addresses with connections now: an entry lives while
 * its count is not zero, so the table never holds more entries than
 * connections admitted (at most max_connections).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connlimits.h"

#define BUCKETS 1024

struct entry {
	struct entry *next;
	long count;
	char addr[TP_LIMITS_ADDR_MAX];
};

struct tp_limits {
	pthread_mutex_t lock;
	long max_total, max_per_client;
	long total;
	time_t logged_at;		/* the second the last refusal was logged */
	unsigned long suppressed;	/* refusals not logged since */
	struct entry *bucket[BUCKETS];
};

/* hash - FNV-1a; the table's size bounds the work, not the spread */
static size_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % BUCKETS;
}

struct tp_limits *tp_limits_new(long max_total, long max_per_client)
{
	struct tp_limits *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	l->max_total = max_total;
	l->max_per_client = max_per_client;
	return l;
}

void tp_limits_free(struct tp_limits **l)
{
	if (*l == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		while ((*l)->bucket[i] != NULL) {
			struct entry *e = (*l)->bucket[i];

			(*l)->bucket[i] = e->next;
			free(e);
		}
	pthread_mutex_destroy(&(*l)->lock);
	free(*l);
	*l = NULL;
}

void tp_limits_set(struct tp_limits *l, long max_total, long max_per_client)
{
	pthread_mutex_lock(&l->lock);
	l->max_total = max_total;
	l->max_per_client = max_per_client;
	pthread_mutex_unlock(&l->lock);
}

static struct entry **find(struct tp_limits *l, const char *addr)
{
	struct entry **e = &l->bucket[hash(addr)];

	while (*e != NULL && strcmp((*e)->addr, addr) != 0)
		e = &(*e)->next;
	return e;
}

/* refused - count a refusal; say whether to log it (one a second) */
static int refused(struct tp_limits *l, int *log_r, unsigned long *suppressed_r)
{
	time_t now = time(NULL);

	*log_r = now != l->logged_at;
	*suppressed_r = l->suppressed;
	if (*log_r) {
		l->logged_at = now;
		l->suppressed = 0;
	} else {
		l->suppressed++;
	}
	return -1;
}

int tp_limits_admit(struct tp_limits *l, const char *addr, const char **limit_r,
		    long *value_r, int *log_r, unsigned long *suppressed_r)
{
	struct entry **e;
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	e = find(l, addr);
	if (l->total >= l->max_total) {
		*limit_r = "max_connections";
		*value_r = l->max_total;
		rc = refused(l, log_r, suppressed_r);
	} else if (*e != NULL && (*e)->count >= l->max_per_client) {
		*limit_r = "max_connections_per_client";
		*value_r = l->max_per_client;
		rc = refused(l, log_r, suppressed_r);
	} else if (*e == NULL && (*e = calloc(1, sizeof(**e))) == NULL) {
		*limit_r = "memory";
		*value_r = 0;
		rc = refused(l, log_r, suppressed_r);
	} else {
		if ((*e)->count == 0)
			strncpy((*e)->addr, addr, sizeof((*e)->addr) - 1);
		(*e)->count++;
		l->total++;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void tp_limits_release(struct tp_limits *l, const char *addr)
{
	struct entry **e, *gone;

	pthread_mutex_lock(&l->lock);
	e = find(l, addr);
	if (*e != NULL) {
		l->total--;
		if (--(*e)->count == 0) {
			gone = *e;
			*e = gone->next;
			free(gone);
		}
	}
	pthread_mutex_unlock(&l->lock);
}

long tp_limits_count(struct tp_limits *l)
{
	long n;

	pthread_mutex_lock(&l->lock);
	n = l->total;
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* address_text - the address part of "ADDR:PORT" or "[ADDR]:PORT" */
static void address_text(const char *client, char *out, size_t size)
{
	const char *start = client, *end = strrchr(client, ':');
	size_t n;

	if (*client == '[') {
		start = client + 1;
		end = strchr(start, ']');
	}
	if (end == NULL || end < start)
		end = client + strlen(client);
	n = (size_t)(end - start);
	if (n >= size)
		n = size - 1;
	memcpy(out, start, n);
	out[n] = '\0';
}

void tp_limits_client_addr(const char *client, char *out)
{
	struct in6_addr a6;
	char text[TP_LIMITS_ADDR_MAX];

	address_text(client, text, sizeof(text));
	if (inet_pton(AF_INET6, text, &a6) != 1) {
		memcpy(out, text, sizeof(text));
		return;
	}
	if (IN6_IS_ADDR_V4MAPPED(&a6)) {
		/* a dual-stack listener's IPv4 client is the same client */
		inet_ntop(AF_INET, &a6.s6_addr[12], out, TP_LIMITS_ADDR_MAX);
		return;
	}
	/* one site gets a /64 (RFC 6177): counted as one client */
	memset(&a6.s6_addr[8], 0, 8);
	inet_ntop(AF_INET6, &a6, out, TP_LIMITS_ADDR_MAX - 3);
	strcat(out, "/64");
}
