/*
 * handoff.h - the message with which the shim hands a connection to
 * tlspolicyd
 *
 * Over the abstract UNIX socket named by [global] relay_socket, one
 * connection per hand-off: the shim sends one struct tp_handoff with two
 * descriptors attached (SCM_RIGHTS): the client's TCP socket and
 * tlspolicyd's end of the relay pair.  tlspolicyd answers with one struct
 * tp_handoff_reply; only status 0 means it took the connection.  Anything
 * else, or no answer, and the shim closes the connection (fail closed).
 */
#ifndef TP_HANDOFF_H
#define TP_HANDOFF_H

#include <stdint.h>

#define TP_HANDOFF_MAGIC 0x74706831u	/* "tph1" */
#define TP_HANDOFF_TIMEOUT_MS 5000

struct tp_handoff {
	uint32_t magic;
	uint32_t version;	/* 1 */
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
