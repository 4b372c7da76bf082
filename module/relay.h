/*
 * relay.h - tlspolicyd's workers: one epoll loop per thread, relaying
 * each connection between the client's TCP socket (TLS done here with
 * wolfSSL, or by the daemon) and the daemon's end of the relay pair,
 * through the protocol filter.
 */
#ifndef TP_RELAY_H
#define TP_RELAY_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "policy.h"

struct tp_worker;
struct tp_limits;

/* limits: per direction, bytes buffered before reading that side stops */
#define TP_RELAY_BUFFER (256 * 1024)
/* seconds a connection may be idle once the session is under way */
#define TP_RELAY_IDLE_TIMEOUT 3600

/*
 * tp_relay_wipe_tls_heap - have wolfSSL wipe every block it frees (its
 * record buffers hold the session in plaintext); call before wolfSSL_Init.
 * 0, or -1 if this wolfSSL does not let its allocator be replaced.
 */
int tp_relay_wipe_tls_heap(void);

/*
 * tp_worker_new - a worker; NULL on failure.  Connections are counted in
 * limits (shared by the workers, owned by the caller, outliving them);
 * NULL: no limits.
 */
struct tp_worker *tp_worker_new(struct tp_limits *limits);

/* tp_worker_run - the worker's loop (a pthread start routine) */
void *tp_worker_run(void *worker);

/* tp_worker_stop - ask the loop to end; it closes every connection */
void tp_worker_stop(struct tp_worker *w);

/*
 * tp_worker_add - hand a connection to the worker (from another thread).
 * The worker owns both descriptors from then on.  ctx is the wolfSSL
 * context for the rule (NULL where the module does no TLS).  client is
 * "ADDR:PORT" for the log; generation the published generation the rule
 * comes from (0: the files in /etc), for the log too.  The rule and ctx
 * stay valid until the worker calls release(release_arg), once, when the
 * connection ends (on the worker's thread).  The connection is counted
 * in the worker's limits from here until it ends.  Returns 0, or -1 with
 * errno (descriptors not taken, release not called): EBUSY when a limit
 * of the running generation is reached (max_connections,
 * max_connections_per_client; the refusal is logged, at most once a
 * second), ENOMEM, EAGAIN.
 */
int tp_worker_add(struct tp_worker *w, int tcp, int app,
		  const struct tp_rule *rule, WOLFSSL_CTX *ctx,
		  const char *client, unsigned generation,
		  void (*release)(void *), void *release_arg);

#endif
