/*
 * procnet.c - listening sockets and their processes, from /proc; who
 * listens on the relay socket
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy.h"
#include "procnet.h"

#define TCP_LISTEN 0x0A
#define UNIX_ACCEPTCON 0x00010000UL
#define MAX_ENTRIES 65536	/* a bound on what we keep, far above real hosts */

/* hex_addr - /proc/net/tcp{,6}'s address: 32-bit words in host order */
static int hex_addr(const char *hex, int family, char *out, int *wildcard)
{
	uint32_t w[4] = { 0 };
	size_t words = family == AF_INET ? 1 : 4;
	char chunk[9] = { 0 };

	if (strlen(hex) != words * 8)
		return -1;
	for (size_t i = 0; i < words; i++) {
		memcpy(chunk, hex + 8 * i, 8);
		w[i] = (uint32_t)strtoul(chunk, NULL, 16);
	}
	*wildcard = (w[0] | w[1] | w[2] | w[3]) == 0;
	return inet_ntop(family, w, out, INET6_ADDRSTRLEN) != NULL ? 0 : -1;
}

/* read_tcp - append the listeners of one /proc/net file */
static int read_tcp(const char *path, int family, struct pn_listener **v, size_t *n)
{
	FILE *f = fopen(path, "re");
	char line[512], local[64];
	unsigned st;
	unsigned long inode;
	int port;

	if (f == NULL)
		return errno == ENOENT ? 0 : -1;	/* no IPv6 in this kernel */
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon;

		if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %*d %*d %lu", local, &st, &inode) != 3 ||
		    st != TCP_LISTEN || (colon = strchr(local, ':')) == NULL || *n >= MAX_ENTRIES)
			continue;
		*colon = '\0';
		port = (int)strtol(colon + 1, NULL, 16);
		struct pn_listener *nv = realloc(*v, (*n + 1) * sizeof(**v));

		if (nv == NULL) {
			fclose(f);
			return -1;
		}
		*v = nv;
		if (hex_addr(local, family, nv[*n].addr, &nv[*n].wildcard) < 0)
			continue;
		nv[*n].port = port;
		nv[*n].inode = inode;
		(*n)++;
	}
	fclose(f);
	return 0;
}

ssize_t pn_tcp_listeners(struct pn_listener **out)
{
	struct pn_listener *v = NULL;
	size_t n = 0;

	if (read_tcp("/proc/net/tcp", AF_INET, &v, &n) < 0 ||
	    read_tcp("/proc/net/tcp6", AF_INET6, &v, &n) < 0) {
		free(v);
		return -1;
	}
	*out = v;
	return (ssize_t)n;
}

unsigned long pn_unix_listener(const char *name)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char line[512], path[256];
	unsigned long flags, inode, found = 0;

	if (f == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %255s", &flags, &inode, path) == 3 &&
		    (flags & UNIX_ACCEPTCON) && strcmp(path, name) == 0)
			found = inode;
	}
	fclose(f);
	return found;
}

int pn_has_shim(pid_t pid)
{
	char path[64], line[1024];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		size_t len = strcspn(line, "\n");

		line[len] = '\0';
		found = len >= 13 && strcmp(line + len - 13, "/tlspolicy.so") == 0;
	}
	fclose(f);
	return found;
}

/* holds - does pid have a descriptor on socket:[inode]? -1 if unreadable */
static int holds(const char *pid, const char *want)
{
	char dir[300], link[600], target[64];
	DIR *d;
	struct dirent *e;
	int found = 0;

	snprintf(dir, sizeof(dir), "/proc/%s/fd", pid);
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;	/* ENOENT: it just exited */
	while (!found && (e = readdir(d)) != NULL) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		found = strcmp(target, want) == 0;
	}
	closedir(d);
	return found;
}

static void read_comm(pid_t pid, char *out, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	snprintf(out, size, "?");
	f = fopen(path, "re");
	if (f == NULL)
		return;
	if (fgets(out, (int)size, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

ssize_t pn_holders(unsigned long inode, struct pn_holder **out, size_t *denied)
{
	DIR *proc = opendir("/proc");
	struct dirent *e;
	struct pn_holder *v = NULL;
	size_t n = 0;
	char want[48];

	*out = NULL;
	*denied = 0;
	if (proc == NULL)
		return -1;
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	while ((e = readdir(proc)) != NULL) {
		int h;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		h = holds(e->d_name, want);
		if (h < 0)
			(*denied)++;
		if (h <= 0 || n >= MAX_ENTRIES)
			continue;
		struct pn_holder *nv = realloc(v, (n + 1) * sizeof(*v));

		if (nv == NULL) {
			free(v);
			closedir(proc);
			return -1;
		}
		v = nv;
		v[n].pid = (pid_t)atoi(e->d_name);
		read_comm(v[n].pid, v[n].comm, sizeof(v[n].comm));
		v[n].shim = pn_has_shim(v[n].pid);
		n++;
	}
	closedir(proc);
	*out = v;
	return (ssize_t)n;
}

/* --- who listens on the relay socket ------------------------------------- */

/*
 * connect_bounded - a UNIX stream connect that a listener cannot stall:
 * blocking, connect() waits for as long as the listener's backlog is full
 * (a squatter need never accept), non-blocking it fails with EAGAIN; so
 * retry for at most PEER_WAIT_MS, then ETIMEDOUT
 */
#define PEER_WAIT_MS 1000
#define PEER_RETRY_MS 20

static int connect_bounded(int s, const struct sockaddr_un *sa, unsigned len)
{
	for (int waited = 0; ; waited += PEER_RETRY_MS) {
		if (connect(s, (const struct sockaddr *)sa, (socklen_t)len) == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if (waited >= PEER_WAIT_MS) {
			errno = ETIMEDOUT;
			return -1;
		}
		usleep(PEER_RETRY_MS * 1000);
	}
}

int pn_relay_connect(const char *name, struct pn_peer *peer)
{
	struct sockaddr_un sa;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	unsigned len;
	int s, e;

	if (tp_relay_sockaddr(name, &sa, &len) < 0) {
		errno = EINVAL;
		return -1;
	}
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	if (connect_bounded(s, &sa, len) < 0 || fcntl(s, F_SETFL, 0) < 0 ||
	    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		e = errno == ENOENT ? ECONNREFUSED : errno;
		close(s);
		errno = e;
		return -1;
	}
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	read_comm(cred.pid, peer->comm, sizeof(peer->comm));
	return s;
}

int pn_user_trusted(const char *user, uid_t uid)
{
	struct passwd *pw;

	if (uid == 0)
		return 1;
	pw = user != NULL ? getpwnam(user) : NULL;
	return pw != NULL && pw->pw_uid == uid;
}

/* record_line - one "key value" line of the record into r; 0 or -1 */
static int record_line(char *line, struct pn_record *r, unsigned *seen)
{
	char key[16], value[128], extra;
	int n;

	if (line[0] == '#' || line[0] == '\0')
		return 0;
	n = sscanf(line, "%15s %127s %c", key, value, &extra);
	if (n != 2)
		return -1;
	if (strcmp(key, "pid") == 0) {
		char *end;
		long pid = strtol(value, &end, 10);

		if (*end != '\0' || pid <= 0 || pid > INT32_MAX)
			return -1;
		r->pid = (pid_t)pid;
		*seen |= 1;
	} else if (strcmp(key, "relay_socket") == 0 && strlen(value) < sizeof(r->relay_socket)) {
		struct sockaddr_un sa;
		unsigned len;

		if (tp_relay_sockaddr(value, &sa, &len) < 0)
			return -1;
		snprintf(r->relay_socket, sizeof(r->relay_socket), "%s", value);
		*seen |= 2;
	} else if (strcmp(key, "user") == 0 && strlen(value) < sizeof(r->user)) {
		snprintf(r->user, sizeof(r->user), "%s", value);
		*seen |= 4;
	} else {
		return -1;
	}
	return 0;
}

/* record_parse - the record's text; 0 if every line is good and all three are there */
static int record_parse(char *text, struct pn_record *r, char *why, size_t size)
{
	unsigned seen = 0, lineno = 0;
	char *save = NULL;

	memset(r, 0, sizeof(*r));
	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (record_line(l, r, &seen) < 0) {
			snprintf(why, size, "line %u is not \"pid N\", \"relay_socket @NAME\" or \"user NAME\"",
				 lineno);
			return -1;
		}
	}
	if (seen != 7) {
		snprintf(why, size, "it lacks a pid, relay_socket or user line");
		return -1;
	}
	return 0;
}

int pn_record_read(const char *rundir, struct pn_record *r, char *why, size_t size)
{
	char path[4096], text[1024];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", rundir, TP_DAEMON_RECORD);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		snprintf(why, size, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 022) != 0) {
		close(fd);
		snprintf(why, size, "%s is not a regular file of root's that only root may write", path);
		return -1;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0 || n == (ssize_t)sizeof(text) - 1) {
		snprintf(why, size, "%s: %s", path, n < 0 ? strerror(errno) : "too long");
		return -1;
	}
	text[n] = '\0';
	if (record_parse(text, r, why, size) < 0) {
		char detail[200];

		snprintf(detail, sizeof(detail), "%s", why);
		snprintf(why, size, "%s: %s", path, detail);
		return -1;
	}
	/* the tlspolicyd that wrote it is gone: it says nothing about the next one */
	if (kill(r->pid, 0) < 0 && errno == ESRCH)
		return 0;
	return 1;
}
