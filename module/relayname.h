/*
 * relayname.h - the name that makes a relayed socket recognisable
 *
 * The socket the shim gives a mail daemon in place of the client's TCP
 * socket is a UNIX stream socket.  Its local address is an abstract name
 * that carries the real client and local TCP addresses, so any process
 * holding it -- the one that accepted, a child after fork, a process it
 * was passed to with SCM_RIGHTS (Dovecot's login hand-off), a re-exec --
 * can answer getpeername() and getsockname() with the real addresses from
 * the socket itself, with no table, no query and no race.  dup() and fd
 * reuse cannot confuse it: the answer belongs to the socket, not the fd.
 *
 * The name is also bound, for the length of one hand-off, to the listener
 * tlspolicyd connects its end of the relay to (handoff.h), and abstract
 * names are visible to every local user in /proc/net/unix.  So a name
 * proves nothing by itself: anyone can bind one with forged addresses.
 * What makes a socket relayed is who is on its other end: the shim only
 * believes the name of a socket whose peer (SO_PEERCRED) is root or
 * tlspolicyd's user, and during the hand-off only keeps a connection whose
 * peer is the very tlspolicyd it handed the client to.  The 128 random
 * bits make the name impossible to guess before it appears, and unique.
 *
 * Layout of the name (binary, after the abstract namespace's NUL):
 *   "tlspolicy" 0x02 | family (1) | client addr (16) | client port (2)
 *   | local addr (16) | local port (2) | nonce (16)
 * Addresses are stored as IPv6 (IPv4 as v4-mapped); ports in network order.
 */
#ifndef TP_RELAYNAME_H
#define TP_RELAYNAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#define TP_RELAYNAME_MAGIC "tlspolicy\002"
#define TP_RELAYNAME_NONCE 16
#define TP_RELAYNAME_LEN (1 + 10 + 1 + 18 + 18 + TP_RELAYNAME_NONCE)

/*
 * tp_relayname_make - fill sun with the name for a connection from client
 * to local; nonce (TP_RELAYNAME_NONCE bytes, from getrandom()) makes it
 * unique and unguessable.  Returns the address length for bind(), or 0 if
 * an address family is not AF_INET/AF_INET6.
 */
socklen_t tp_relayname_make(struct sockaddr_un *sun,
			    const struct sockaddr *client,
			    const struct sockaddr *local,
			    const uint8_t nonce[TP_RELAYNAME_NONCE]);

/*
 * tp_relayname_parse - from a socket's own address, the real client
 * (want_local 0) or local (want_local 1) address, in the family the
 * daemon's listening socket had.  Returns 1 if addr is a relay name and
 * out was filled (*outlen set to the real length), 0 if it is not one.
 * Whether to believe it is the caller's question (see above).
 */
int tp_relayname_parse(const struct sockaddr_un *addr, socklen_t addrlen,
		       int want_local, struct sockaddr_storage *out,
		       socklen_t *outlen);

#endif
