/*
 * published.c - the ports file, written by reload and read by the shim
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "published.h"
#include "util.h"

#define LINE_MAX_LEN 256
#define MAX_WORDS 4

/* put_address - addr as 16 bytes, IPv4 as v4-mapped; -1 if it is not one */
static int put_address(const char *text, uint8_t out[16])
{
	struct in_addr a4;

	if (inet_pton(AF_INET, text, &a4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &a4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

/* add_entry - one managed address:port (address NULL or "*": any) */
static int add_entry(struct tp_ports *ports, const char *address, int port)
{
	struct tp_port_entry *e;

	if (ports->n >= TP_PORTS_MAX || port < 1 || port > 65535)
		return -1;
	e = &ports->entry[ports->n];
	memset(e, 0, sizeof(*e));
	e->port = (uint16_t)port;
	e->any = address == NULL || strcmp(address, "*") == 0;
	if (!e->any && put_address(address, e->addr) < 0)
		return -1;
	ports->n++;
	return 0;
}

static int set_relay_socket(struct tp_ports *ports, const char *name)
{
	struct sockaddr_un sa;
	unsigned len;

	if (strlen(name) >= sizeof(ports->relay_socket) || tp_relay_sockaddr(name, &sa, &len) < 0)
		return -1;
	snprintf(ports->relay_socket, sizeof(ports->relay_socket), "%s", name);
	return 0;
}

int tp_ports_from_policy(const struct tp_policy *p, unsigned gen,
			 struct tp_ports *out, const char **error_r)
{
	const char *user = tp_policy_user(p);
	struct passwd *pw;

	memset(out, 0, sizeof(*out));
	out->generation = gen;
	if (set_relay_socket(out, tp_policy_relay_socket(p)) < 0) {
		*error_r = "relay_socket is not an abstract socket name";
		return -1;
	}
	for (size_t i = 0; i < tp_policy_rule_count(p); i++) {
		const struct tp_rule *r = tp_policy_rule(p, i);

		if (add_entry(out, r->address, r->port) < 0) {
			*error_r = out->n >= TP_PORTS_MAX ? "more port rules than the shim can hold"
							  : "a rule's address is not an IP address";
			return -1;
		}
	}
	if (strlen(user) >= sizeof(out->user)) {
		*error_r = "user name too long";
		return -1;
	}
	snprintf(out->user, sizeof(out->user), "%s", user);
	pw = getpwnam(user);
	if (pw != NULL) {
		out->have_uid = 1;
		out->uid = pw->pw_uid;
	}
	return 0;
}

/* entry_address - an entry's address as the policy writes it ("*" for any) */
static const char *entry_address(const struct tp_port_entry *e, char *buf, size_t size)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (e->any)
		return "*";
	if (memcmp(e->addr, mapped, sizeof(mapped)) == 0)
		return inet_ntop(AF_INET, e->addr + 12, buf, (socklen_t)size);
	return inet_ntop(AF_INET6, e->addr, buf, (socklen_t)size);
}

char *tp_ports_text(const struct tp_ports *ports)
{
	struct tp_buf b = { 0 };
	char ip[INET6_ADDRSTRLEN];

	tp_buf_addf(&b, "# tlspolicy generation %u: the address:port pairs tlspolicy.so hands to tlspolicyd\n"
		    "# (written by tlspolicyctl reload; do not edit)\ngeneration %u\nrelay_socket %s\n",
		    ports->generation, ports->generation, ports->relay_socket);
	if (ports->have_uid)
		tp_buf_addf(&b, "user %s %lu\n", ports->user, (unsigned long)ports->uid);
	for (size_t i = 0; i < ports->n; i++) {
		const char *a = entry_address(&ports->entry[i], ip, sizeof(ip));

		tp_buf_addf(&b, "port %s %u\n", a ? a : "?", ports->entry[i].port);
	}
	if (b.oom) {
		tp_buf_free(&b);
		return NULL;
	}
	return b.s;
}

/* split - words of line (in place), at most MAX_WORDS; the count, or -1 if more */
static int split(char *line, char *word[MAX_WORDS])
{
	int n = 0;

	for (char *p = line; *p != '\0';) {
		while (*p == ' ' || *p == '\t')
			*p++ = '\0';
		if (*p == '\0')
			break;
		if (n == MAX_WORDS)
			return -1;
		word[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
	}
	return n;
}

/* number - a decimal number in [min, max], or -1 */
static long number(const char *s, long min, long max)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

/* parse_line - one line's words into ports; NULL, or what is wrong */
static const char *parse_line(struct tp_ports *ports, char **w, int n)
{
	long v;

	if (n == 2 && strcmp(w[0], "generation") == 0) {
		v = number(w[1], 1, 0x7fffffffL);
		if (v < 0 || ports->generation != 0)
			return "bad or repeated generation";
		ports->generation = (unsigned)v;
		return NULL;
	}
	if (n == 2 && strcmp(w[0], "relay_socket") == 0)
		return ports->relay_socket[0] != '\0' || set_relay_socket(ports, w[1]) < 0
			       ? "bad or repeated relay_socket" : NULL;
	if (n == 3 && strcmp(w[0], "user") == 0) {
		v = number(w[2], 0, 0x7fffffffL);
		if (v < 0 || ports->have_uid || strlen(w[1]) >= sizeof(ports->user))
			return "bad or repeated user";
		snprintf(ports->user, sizeof(ports->user), "%s", w[1]);
		ports->uid = (uid_t)v;
		ports->have_uid = 1;
		return NULL;
	}
	if (n == 3 && strcmp(w[0], "port") == 0) {
		v = number(w[2], 1, 65535);
		return v < 0 || add_entry(ports, w[1], (int)v) < 0 ? "bad port line, or too many" : NULL;
	}
	return "not a line of the ports file";
}

int tp_ports_parse(const char *text, struct tp_ports *out, char *error, size_t size)
{
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, "\n");
		char line[LINE_MAX_LEN], *w[MAX_WORDS];
		const char *why = NULL;
		int n;

		lineno++;
		if (p[strspn(p, " \t")] == '#') {
			/* a comment, however long */
		} else if (len >= sizeof(line)) {
			why = "line too long";
		} else {
			memcpy(line, p, len);
			line[len] = '\0';
			n = split(line, w);
			if (n < 0)
				why = "too many words";
			else if (n > 0)
				why = parse_line(out, w, n);
		}
		if (why != NULL) {
			snprintf(error, size, "line %d: %s", lineno, why);
			return -1;
		}
		p += len;
		if (*p == '\n')
			p++;
	}
	if (out->generation == 0 || out->relay_socket[0] == '\0') {
		snprintf(error, size, "no %s line", out->generation == 0 ? "generation" : "relay_socket");
		return -1;
	}
	return 0;
}

int tp_ports_match(const struct tp_ports *ports, const struct sockaddr *local)
{
	uint8_t addr[16];
	uint16_t port;

	if (local->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)local;

		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &s4->sin_addr, 4);
		port = ntohs(s4->sin_port);
	} else if (local->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)local;

		memcpy(addr, &s6->sin6_addr, 16);
		port = ntohs(s6->sin6_port);
	} else {
		return 0;
	}
	for (size_t i = 0; i < ports->n; i++) {
		const struct tp_port_entry *e = &ports->entry[i];

		if (e->port == port && (e->any || memcmp(e->addr, addr, 16) == 0))
			return 1;
	}
	return 0;
}
