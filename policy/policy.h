/*
 * policy.h - the tlspolicy policy: load, check, resolve a port to its rule
 *
 * One library reads a policy for tlspolicyctl, the shim and tlspolicyd, so
 * all three read a file the same way.  A policy is the main file plus the
 * drop-ins in tlspolicy.d/ beside it, merged in lexical order (later keys
 * override earlier ones).  Loading collects every problem into a
 * struct tp_diags and returns a policy only if there was no error.
 */
#ifndef TP_POLICY_H
#define TP_POLICY_H

#include <stddef.h>

#include "ciphers.h"
#include "diag.h"
#include "keys.h"

/* the values of the enumerated keys, in the order of their tables */
enum tp_protocol { TP_PROTO_SMTP, TP_PROTO_IMAP, TP_PROTO_POP3 };
enum tp_tls_mode { TP_TLS_IMPLICIT, TP_TLS_STARTTLS, TP_TLS_OPPORTUNISTIC, TP_TLS_REFUSE };
enum tp_tls_by { TP_BY_MODULE, TP_BY_DAEMON };
enum tp_enforce { TP_ENFORCE_YES, TP_ENFORCE_AUDIT };

/*
 * A port's rule, resolved: the port's section over [global] over the
 * defaults.  Owned by the policy; valid while the policy lives.
 */
struct tp_rule {
	const char *section;		/* "port 587", "port 127.0.0.1:587", "port ::1:587" */
	int port;
	const char *address;		/* canonical local address, NULL: any */
	enum tp_protocol protocol;
	enum tp_tls_mode tls;
	enum tp_tls_by tls_by;
	enum tp_enforce enforce;
	const struct tp_profile *profile;
	enum tp_version min_version;
	const char *tls12_suites;	/* wolfSSL cipher list for TLS <= 1.2; "" if none */
	const char *tls13_suites;	/* wolfSSL cipher list for TLS 1.3; "" if none */
	unsigned ban_classes;		/* TP_CLASS_* bits banned by ban_ciphers */
	const char *certificate;	/* absolute path, NULL if not set */
	const char *private_key;	/* absolute path, NULL if not set */
	int handshake_timeout;		/* seconds */
	int plaintext_timeout;		/* seconds of silence before TLS (opportunistic) */
	int refuse_alt_port;		/* tls = refuse: the port to name; 0 if none */
};

struct tp_policy;

/* load flags */
enum {
	/* check certificates and keys (validate, tlspolicyd); the shim
	 * runs inside mail daemons and never reads keys */
	TP_LOAD_CHECK_FILES = 1 << 0,
};

/*
 * tp_policy_default_path - $TLSPOLICY_CONF, else the installed
 * /etc/tlspolicy/tlspolicy.conf.  Read with secure_getenv(): the shim
 * runs this inside setuid and file-capability programs too, whose
 * environment is their unprivileged caller's.
 */
const char *tp_policy_default_path(void);

/*
 * tp_policy_load - read path and the drop-ins beside it.  Every error and
 * warning goes to diags, sorted by file and line.  Returns the policy if
 * there was no error, NULL otherwise (or on allocation failure, which is
 * then in diags too).  Free with tp_policy_free().
 */
struct tp_policy *tp_policy_load(const char *path, unsigned flags,
				 struct tp_diags *diags);

void tp_policy_free(struct tp_policy **p);

/* the files read, main file first */
size_t tp_policy_file_count(const struct tp_policy *p);
const char *tp_policy_file(const struct tp_policy *p, size_t i);

/* the port rules, in the order their sections were first seen */
size_t tp_policy_rule_count(const struct tp_policy *p);
const struct tp_rule *tp_policy_rule(const struct tp_policy *p, size_t i);

/*
 * tp_policy_lookup - the rule for a local port and address (address as
 * text, canonical or not; NULL for any).  A section naming the address
 * wins over one naming only the port.  NULL: the port is not managed.
 */
const struct tp_rule *tp_policy_lookup(const struct tp_policy *p, int port,
				       const char *address);

/*
 * tp_policy_value - the effective value of a key for a rule (NULL rule:
 * [global]) as text, and where it came from in *source_r: "FILE:LINE",
 * "default" or "profile NAME".  NULL if the key has no value there.
 */
const char *tp_policy_value(const struct tp_policy *p,
			    const struct tp_rule *rule, enum tp_key_id key,
			    const char **source_r);

/* tp_policy_relay_socket - "@tlspolicy" or the [global] relay_socket */
const char *tp_policy_relay_socket(const struct tp_policy *p);

/* tp_policy_user - "tlspolicy" or the [global] user tlspolicyd runs as */
const char *tp_policy_user(const struct tp_policy *p);

/* tp_policy_count - a [global] TP_TYPE_COUNT key's value (max_connections, ...) */
long tp_policy_count(const struct tp_policy *p, enum tp_key_id key);

struct sockaddr_un;

/*
 * tp_relay_sockaddr - the abstract UNIX address of a relay_socket value
 * ("@name"), for bind or connect: 0 and *len_r, or -1 if name is not one
 */
int tp_relay_sockaddr(const char *name, struct sockaddr_un *sa, unsigned *len_r);

const char *tp_protocol_name(enum tp_protocol p);
const char *tp_tls_mode_name(enum tp_tls_mode m);

/*
 * tp_rule_check_session - may a TLS session negotiated by a daemon run
 * under rule r (tls_by = daemon)?  version is the version on the wire
 * (0x0303 for TLS 1.2), suite the two-byte suite code.  0 if it may; -1 if
 * not, with a reason token in *reason_r ("version-below-floor",
 * "banned-suite", "suite-not-allowed") and, in detail, what to tell the
 * admin: the version or suite seen and what the rule requires.
 */
int tp_rule_check_session(const struct tp_rule *r, unsigned version, unsigned suite,
			  const char **reason_r, char *detail, size_t size);

/*
 * The published policy (tlspolicyctl reload): in the run directory,
 * TP_PUBLISHED_POLICY is the validated policy as one self-contained INI
 * file (what show prints), TP_PUBLISHED_PORTS the ports the shim manages,
 * and TP_PUBLISHED_GENERATION "N SHA256" (the number and the sha256 of the
 * policy file), each replaced by rename.  When a generation is published,
 * tlspolicyd and the shim follow it rather than the files in /etc.
 */
/*
 * The ports file, one item a line ('#' lines are comments):
 *   generation N
 *   relay_socket @NAME
 *   user NAME UID          tlspolicyd's user, resolved by reload
 *   port ADDR PORT         ADDR "*" for a rule on every local address, else
 *                          the rule's canonical address (IPv4 dotted quad,
 *                          IPv6 as inet_ntop writes it)
 * A connection is handed over iff a line names its local port with its
 * local address or "*"; every other address:port is left alone.
 * policy/published.h reads and writes it.
 */
#define TP_PUBLISHED_POLICY "policy.conf"
#define TP_PUBLISHED_PORTS "ports"
#define TP_PUBLISHED_GENERATION "generation"

/* tp_policy_rundir - $TLSPOLICY_RUNDIR (secure_getenv()), else /run/tlspolicy */
const char *tp_policy_rundir(void);

/*
 * tp_published_generation - the generation published in rundir: 0 and
 * *gen_r (and sha256_r, 65 bytes, if not NULL), or -1 if none (or the file
 * is not ours)
 */
int tp_published_generation(const char *rundir, unsigned *gen_r, char *sha256_r);

/*
 * TP_DAEMON_RECORD, in the run directory: what the running tlspolicyd
 * serves, written by it at start (as root, before it drops privileges),
 * read by tlspolicyctl reload and status.  relay_socket and user take
 * effect on restart only, so this, not the policy files, says which name
 * reload may talk to and publish.  Lines ('#' lines are comments):
 *   pid N                  tlspolicyd's pid (the listener's SO_PEERCRED pid)
 *   relay_socket @NAME     the name it listens on
 *   user NAME              the [global] user it runs as
 */
#define TP_DAEMON_RECORD "tlspolicyd"

/* tp_wire_version_name - "TLSv1.2" for 0x0303, "SSLv3" for 0x0300, "0xXXXX" otherwise */
const char *tp_wire_version_name(unsigned version, char *buf, size_t size);

#endif
