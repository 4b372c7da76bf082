/*
 * relaysock.h - tlspolicyd's end of the hand-off (handoff.h): the relay
 * socket, and the loop that serves it
 *
 * The loop runs on tlspolicyd's main thread and never waits on one peer:
 * every connection on the relay socket is accepted at once (a uid that
 * may not hand over is answered EPERM and closed at once), then read
 * without blocking, with a deadline of TP_HANDOFF_TIMEOUT_MS for its one
 * message; at most TP_RELAYSOCK_PENDING are read at a time (beyond, the
 * kernel's backlog holds them).  A hand-off must carry exactly two
 * descriptors in one SCM_RIGHTS message and nothing else: a connected TCP
 * socket and a listening UNIX stream socket bound to a relay name
 * (relayname.h).  tlspolicyd connects its own end of the relay to that
 * name, closes the listener and hands both to ops->take.  Anything else
 * is refused, and every descriptor that came with it is closed.  Out of
 * descriptors (EMFILE, ENFILE), the loop answers what it can with a
 * refusal, using one descriptor kept in reserve, and stops accepting for
 * a moment rather than spin; refusals of local peers are logged at a
 * bounded rate (ratelimit.h).
 */
#ifndef TP_RELAYSOCK_H
#define TP_RELAYSOCK_H

#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "handoff.h"

#define TP_RELAYSOCK_PENDING 256	/* connections read at once */
#define TP_RELAYSOCK_BACKOFF_MS 100	/* no accept() this long when out of descriptors */

struct tp_relaysock_ops {
	/* may uid hand over connections (SO_PEERCRED of the sender)? */
	int (*allowed)(uid_t uid);
	/* give tcp and app to a worker: 0, or an errno value (nothing taken) */
	int (*take)(int tcp, int app);
	/* a control message from cred; fills *r (magic set by the caller) */
	void (*control)(const struct tp_control *m, const struct ucred *cred,
			struct tp_control_reply *r);
	/* once per turn of the loop, on the loop's thread (signals' work) */
	void (*tick)(void);
	/* the loop ends when this becomes non-zero */
	volatile sig_atomic_t *stopping;
};

/*
 * tp_relaysock_listen - listen on the abstract name ("@name"),
 * non-blocking.  The socket, or -1 with errno; if the name is taken
 * (EADDRINUSE), who holds it (pid, uid, command) is logged first: an
 * abstract name has no permissions, so it may be anyone.
 */
int tp_relaysock_listen(const char *name);

/* tp_relaysock_serve - serve ls until *ops->stopping; closes what it opened */
void tp_relaysock_serve(int ls, const struct tp_relaysock_ops *ops);

#endif
