/*
 * published.h - the ports file: what the shims hand to tlspolicyd, where
 * tlspolicyd listens and who it is (the format: policy.h, beside
 * TP_PUBLISHED_PORTS)
 *
 * The format has one owner: tlspolicyctl reload writes it with
 * tp_ports_text(), the shim reads it with tp_ports_parse(), and when
 * nothing was published the shim builds the same value from the policy
 * file with tp_ports_from_policy().  struct tp_ports is a plain value of
 * fixed size, not an opaque object: the shim keeps one in static storage
 * inside each mail daemon, fills a second one from a new file, and copies
 * it over the first only when the whole file parsed (no allocation on the
 * accept path, and a bad file changes nothing).
 */
#ifndef TP_PUBLISHED_H
#define TP_PUBLISHED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "policy.h"

/* as many rules as a policy can have sections */
#define TP_PORTS_MAX 512
/* the longest ports file: every rule an IPv6 address, and the header */
#define TP_PORTS_TEXT_MAX (TP_PORTS_MAX * 64 + 1024)

/* one managed local address:port */
struct tp_port_entry {
	uint16_t port;
	uint8_t any;		/* 1: every local address ("*") */
	uint8_t addr[16];	/* IPv6; IPv4 as v4-mapped; unused if any */
};

struct tp_ports {
	unsigned generation;		/* 0: built from the policy file */
	char relay_socket[112];		/* "@name" */
	char user[33];			/* tlspolicyd's user; "" if unknown */
	int have_uid;			/* 1: uid is the user's */
	uid_t uid;
	size_t n;
	struct tp_port_entry entry[TP_PORTS_MAX];
};

/*
 * tp_ports_from_policy - the ports value of a policy, for generation gen:
 * every rule's address and port, the relay socket, and the [global] user
 * with its uid (looked up with getpwnam(); have_uid 0 if there is no such
 * user: then only root is trusted).  0, or -1 with the reason in *error_r.
 */
int tp_ports_from_policy(const struct tp_policy *p, unsigned gen,
			 struct tp_ports *out, const char **error_r);

/*
 * tp_ports_text - ports as the file's text (malloc'd, NUL-terminated;
 * the caller frees it), or NULL if out of memory
 */
char *tp_ports_text(const struct tp_ports *ports);

/*
 * tp_ports_parse - text (NUL-terminated) into *out.  Every line must be
 * one of the format's; generation and relay_socket must be there.  0 if
 * the whole text is good, else -1 with "line N: what" in error (out is
 * then undefined: parse into a scratch value).
 */
int tp_ports_parse(const char *text, struct tp_ports *out, char *error,
		   size_t size);

/*
 * tp_ports_match - 1 if a connection accepted on local (AF_INET or
 * AF_INET6; an IPv4-mapped IPv6 address is its IPv4 address) is managed:
 * an entry names its port with its address or "*"; else 0
 */
int tp_ports_match(const struct tp_ports *ports, const struct sockaddr *local);

#endif
