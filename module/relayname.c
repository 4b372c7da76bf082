/*
 * relayname.c - real TCP addresses carried in a relayed socket's name
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "relayname.h"

/* put_addr - 16 address bytes (IPv4 as v4-mapped) and 2 port bytes */
static int put_addr(uint8_t *p, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		memcpy(p, &s6->sin6_addr, 16);
		memcpy(p + 16, &s6->sin6_port, 2);
		return 0;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		memset(p, 0, 10);
		p[10] = p[11] = 0xff;
		memcpy(p + 12, &s4->sin_addr, 4);
		memcpy(p + 16, &s4->sin_port, 2);
		return 0;
	}
	return -1;
}

socklen_t tp_relayname_make(struct sockaddr_un *sun,
			    const struct sockaddr *client,
			    const struct sockaddr *local,
			    const uint8_t nonce[TP_RELAYNAME_NONCE])
{
	uint8_t *p = (uint8_t *)sun->sun_path;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	p[0] = '\0';	/* abstract namespace: works inside a chroot */
	memcpy(p + 1, TP_RELAYNAME_MAGIC, 10);
	p[11] = (uint8_t)local->sa_family;
	if (put_addr(p + 12, client) < 0 || put_addr(p + 30, local) < 0)
		return 0;
	memcpy(p + 48, nonce, TP_RELAYNAME_NONCE);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + TP_RELAYNAME_LEN);
}

/* get_addr - back to the family the daemon listened with */
static socklen_t get_addr(const uint8_t *p, int family,
			  struct sockaddr_storage *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(out, 0, sizeof(*out));
	if (family == AF_INET && memcmp(p, mapped, 12) == 0) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, p + 12, 4);
		memcpy(&s4->sin_port, p + 16, 2);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

	s6->sin6_family = AF_INET6;
	memcpy(&s6->sin6_addr, p, 16);
	memcpy(&s6->sin6_port, p + 16, 2);
	return sizeof(*s6);
}

int tp_relayname_parse(const struct sockaddr_un *addr, socklen_t addrlen,
		       int want_local, struct sockaddr_storage *out,
		       socklen_t *outlen)
{
	const uint8_t *p = (const uint8_t *)addr->sun_path;

	if (addr->sun_family != AF_UNIX ||
	    addrlen != (socklen_t)(offsetof(struct sockaddr_un, sun_path) + TP_RELAYNAME_LEN) ||
	    p[0] != '\0' || memcmp(p + 1, TP_RELAYNAME_MAGIC, 10) != 0)
		return 0;
	*outlen = get_addr(want_local ? p + 30 : p + 12, p[11], out);
	return 1;
}
