/*
 * procnet.h - who listens where, and whether the shim is loaded there,
 * read from /proc (tlspolicyctl status); and who listens on the relay
 * socket (tlspolicyctl status and reload)
 *
 * Everything is read from the /proc of the calling process's namespaces;
 * reading other users' /proc/PID/fd and maps needs root.
 */
#ifndef TP_PROCNET_H
#define TP_PROCNET_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

/* a listening TCP socket */
struct pn_listener {
	char addr[INET6_ADDRSTRLEN];	/* "127.0.0.1", "::", ... */
	int port;
	int wildcard;			/* 0.0.0.0 or :: */
	unsigned long inode;
};

/* a process holding a socket */
struct pn_holder {
	pid_t pid;
	char comm[32];			/* /proc/PID/comm */
	int shim;			/* tlspolicy.so mapped: 1, not: 0, unreadable: -1 */
};

/*
 * pn_tcp_listeners - every listening TCP socket (IPv4 and IPv6).
 * Returns the count and sets *out (free() it), or -1 if /proc/net/tcp
 * cannot be read.
 */
ssize_t pn_tcp_listeners(struct pn_listener **out);

/*
 * pn_unix_listener - the inode of the listening UNIX socket named name
 * ("@abstract" or a path), 0 if there is none.
 */
unsigned long pn_unix_listener(const char *name);

/*
 * pn_holders - the processes with an open descriptor on socket inode.
 * Returns the count and sets *out (free() it; NULL when 0), -1 on error.
 * *denied is set to the number of processes whose descriptors could not
 * be read (not root).
 */
ssize_t pn_holders(unsigned long inode, struct pn_holder **out, size_t *denied);

/* pn_has_shim - 1 if tlspolicy.so is mapped in pid, 0 if not, -1 unreadable */
int pn_has_shim(pid_t pid);

/*
 * Who is tlspolicyd.  An abstract UNIX name carries no permissions: any
 * local user can bind relay_socket while tlspolicyd is not there.  What
 * tells tlspolicyd from an impostor is the listener's SO_PEERCRED (the
 * process that called listen(), with the uid it had then): only root or
 * the policy's user may be tlspolicyd.  And since relay_socket and user
 * take effect on restart only, tlspolicyd records at its start which name
 * it serves as which user (TP_DAEMON_RECORD in the run directory), so
 * that reload talks to that name, whatever the policy files say now.
 */

/* the listener on a relay socket */
struct pn_peer {
	pid_t pid;
	uid_t uid;
	char comm[32];			/* /proc/PID/comm, "?" if gone */
};

/*
 * pn_relay_connect - connect to the relay socket name ("@name") and read
 * who listens there.  Returns the connected socket (the caller closes it;
 * nothing was sent on it) and fills *peer; -1 with errno ECONNREFUSED if
 * nobody listens there (or name is not an abstract name: EINVAL),
 * ETIMEDOUT if the listener's backlog stayed full for a second, another
 * errno on failure.  Never blocks longer than that.
 */
int pn_relay_connect(const char *name, struct pn_peer *peer);

/*
 * pn_user_trusted - may a listener of uid be tlspolicyd running as user?
 * Root always; user's uid if user exists.
 */
int pn_user_trusted(const char *user, uid_t uid);

/* what a running tlspolicyd recorded at its start */
struct pn_record {
	pid_t pid;
	char relay_socket[128];
	char user[64];
};

/*
 * pn_record_read - rundir's TP_DAEMON_RECORD: 1 and *r if it is there and
 * its process is alive; 0 if there is none or its process is gone (the
 * tlspolicyd that wrote it stopped: the next one writes its own); -1 if it
 * cannot be trusted or read (not a regular file owned by root or by us,
 * writable by others, garbled, too long), with the reason in why.
 */
int pn_record_read(const char *rundir, struct pn_record *r, char *why, size_t size);

#endif
