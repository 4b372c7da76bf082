/*
 * procnet.h - who listens where, and whether the shim is loaded there,
 * read from /proc (tlspolicyctl status)
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

#endif
