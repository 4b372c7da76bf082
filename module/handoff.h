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

#endif
