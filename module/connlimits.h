/*
 * connlimits.h - how many connections tlspolicyd relays at once, in all and
 * per client address
 *
 * One table, shared by the workers: a connection is admitted (counted)
 * before a worker takes it and released when it ends, so one address that
 * holds hundreds of idle connections cannot take every descriptor and
 * every worker's attention from the others.  The limits come from the
 * running generation (max_connections, max_connections_per_client) and a
 * reload changes them for the connections admitted afterwards; the
 * connections already admitted stay.  Thread-safe.
 */
#ifndef TP_CONNLIMITS_H
#define TP_CONNLIMITS_H

#include <stddef.h>

/* the longest client address key: an IPv6 address as text */
#define TP_LIMITS_ADDR_MAX 48

struct tp_limits;

/* tp_limits_new - an empty table with the given limits; NULL on failure */
struct tp_limits *tp_limits_new(long max_total, long max_per_client);

/* tp_limits_free - free the table; *l set to NULL */
void tp_limits_free(struct tp_limits **l);

/* tp_limits_set - the limits of the new running generation */
void tp_limits_set(struct tp_limits *l, long max_total, long max_per_client);

/*
 * tp_limits_admit - count one more connection from addr (the client's IP
 * address as text, no port).  0 if admitted; -1 if a limit is reached (or
 * out of memory), with its key name ("max_connections",
 * "max_connections_per_client") in *limit_r and its value in *value_r,
 * and in *log_r whether to log this refusal: at most one logged a second,
 * the number left unlogged since in *suppressed_r.
 */
int tp_limits_admit(struct tp_limits *l, const char *addr, const char **limit_r,
		    long *value_r, int *log_r, unsigned long *suppressed_r);

/* tp_limits_release - one connection from addr (admitted before) ended */
void tp_limits_release(struct tp_limits *l, const char *addr);

/* tp_limits_count - connections admitted now, in all (for the log and tests) */
long tp_limits_count(struct tp_limits *l);

/*
 * tp_limits_client_addr - what a client "ADDR:PORT" or "[ADDR]:PORT" is
 * counted as, into out (TP_LIMITS_ADDR_MAX bytes): an IPv4 address as
 * it is, also when a dual-stack listener saw it as ::ffff:a.b.c.d; an
 * IPv6 address as its /64 ("2001:db8:1:2::/64"), since one site holds a
 * whole /64 and could otherwise take every connection
 */
void tp_limits_client_addr(const char *client, char *out);

#endif
