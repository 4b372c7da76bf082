/*
 * handoff.h - the message with which the shim hands a connection to
 * tlspolicyd (version 2)
 *
 * Over the abstract UNIX socket named by [global] relay_socket, one
 * connection per hand-off.  Abstract names carry no permissions, so both
 * ends check who is on the other one before trusting anything:
 *
 *   1. The shim makes the daemon's end of the relay: a listening UNIX
 *      stream socket L bound to a relay name (relayname.h) that carries
 *      the real addresses and 128 bits from getrandom().  Its backlog (8)
 *      leaves room for tlspolicyd's connection even if a local user who
 *      read the name in /proc/net/unix connected first.
 *   2. It connects to relay_socket (non-blocking; a full backlog is
 *      retried within the time left) and checks the listener's
 *      SO_PEERCRED: root or the policy's `user`, whose uid the shim knows
 *      from its constructor (the ports file's `user` line, or getpwnam()
 *      before any chroot).  Anyone else is an impostor: nothing is sent,
 *      the connection is refused and the impostor's pid and uid logged
 *      (rate-limited: any local user can do it as often as it likes).
 *   3. It sends one struct tp_handoff with exactly two descriptors
 *      (SCM_RIGHTS): the client's TCP socket and L.
 *   4. tlspolicyd checks the sender's SO_PEERCRED (root, its own user, the
 *      mail daemons' users), that exactly two descriptors came in one
 *      SCM_RIGHTS message and nothing else, that the first is a connected
 *      TCP socket and the second a listening UNIX stream socket bound to a
 *      relay name; it connects its own socket to L's name (that is its
 *      "app" end), closes L, and answers with one struct
 *      tp_handoff_reply.  Only status 0 means it took the connection.
 *      Anything else is refused, and every descriptor that came closed.
 *   5. The shim accepts from L and keeps the accepted socket only if its
 *      SO_PEERCRED is the tlspolicyd checked in step 2: the same pid, and
 *      a uid that may be tlspolicyd (the listener's SO_PEERCRED is the uid
 *      it had at listen(), which may have been root before it dropped to
 *      its user).  Anyone else who connected to L is closed (and logged,
 *      rate-limited), and the shim goes on accepting within its time.
 *      The accepted socket goes to the daemon; its own name is L's, so it
 *      still carries the real addresses in any process that holds it, and
 *      its SO_PEERCRED (root or tlspolicyd's user) tells any such process
 *      that it really is a relayed socket (see relayname.h).
 *
 * Every step is non-blocking on both sides: the shim polls for at most
 * the time left and retries on EINTR (the host's signals are not ours);
 * tlspolicyd serves the relay socket from its event loop (relaysock.h).
 *
 * Anything else, or no answer within TP_HANDOFF_TIMEOUT_MS in all, and the
 * shim closes the connection (fail closed).
 */
#ifndef TP_HANDOFF_H
#define TP_HANDOFF_H

#include <stdint.h>

#define TP_HANDOFF_MAGIC 0x74706831u	/* "tph1" */
/*
 * The whole hand-off, L's bind to the daemon's end accepted; and how long
 * tlspolicyd waits for a message after accepting.  A hand-off takes well
 * under a millisecond, a loaded host's scheduling a few hundred: 1 s
 * covers that, and is what a hung tlspolicyd costs each accept() of a
 * daemon (a stopped one costs nothing: connect() is refused at once).
 */
#define TP_HANDOFF_TIMEOUT_MS 1000
#define TP_HANDOFF_VERSION 2

struct tp_handoff {
	uint32_t magic;
	uint32_t version;	/* TP_HANDOFF_VERSION */
	uint32_t local_port;	/* the managed port, as the shim saw it */
	uint32_t reserved;
};

struct tp_handoff_reply {
	uint32_t magic;
	int32_t status;		/* 0 taken; otherwise an errno value */
};

/*
 * A control message on the same socket, from root or tlspolicyd's own
 * user only (SO_PEERCRED): TP_CONTROL_RELOAD makes tlspolicyd load the
 * generation just published in its run directory.  The reply says whether
 * it did, and which generation runs now.
 */
#define TP_CONTROL_MAGIC 0x74706331u	/* "tpc1" */
#define TP_CONTROL_RELOAD 1
#define TP_CONTROL_TIMEOUT_MS 30000

struct tp_control {
	uint32_t magic;
	uint32_t version;	/* 1 */
	uint32_t command;	/* TP_CONTROL_* */
	uint32_t reserved;
};

struct tp_control_reply {
	uint32_t magic;
	int32_t status;		/* 0 done; otherwise an errno value */
	uint32_t generation;	/* the generation running after it */
	uint32_t reserved;
};

#endif
