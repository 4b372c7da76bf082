/*
 * keys.h - the one table of policy keys
 *
 * Every key a policy file may contain is one row here: name, type, where
 * it may appear, default, bounds or allowed values, a validator and its
 * help text.  Parsing, defaults, unknown-key detection, `tlspolicyctl
 * show` and the tlspolicy.conf(5) man page are all driven from this table;
 * there is no second list of keys.
 */
#ifndef TP_KEYS_H
#define TP_KEYS_H

#include <stddef.h>

struct tp_diags;

enum tp_key_id {
	TP_KEY_PROFILE,
	TP_KEY_MIN_PROTOCOL,
	TP_KEY_BAN_CIPHERS,
	TP_KEY_CERTIFICATE,
	TP_KEY_PRIVATE_KEY,
	TP_KEY_ENFORCE,
	TP_KEY_HANDSHAKE_TIMEOUT,
	TP_KEY_RELAY_SOCKET,
	TP_KEY_USER,
	TP_KEY_MAX_CONNECTIONS,
	TP_KEY_MAX_CONNECTIONS_PER_CLIENT,
	TP_KEY_PLAINTEXT_TIMEOUT,
	TP_KEY_PROTOCOL,
	TP_KEY_TLS,
	TP_KEY_TLS_BY,
	TP_KEY_COUNT
};

enum tp_key_type {
	TP_TYPE_ENUM,		/* one word out of values[] */
	TP_TYPE_PROFILE,	/* a profile name (tp_profiles) */
	TP_TYPE_VERSION,	/* a protocol version name */
	TP_TYPE_SECONDS,	/* a whole number of seconds in [min, max] */
	TP_TYPE_PATH,		/* a file; relative paths are relative to the file that names them */
	TP_TYPE_CIPHERS,	/* cipher classes and suite names */
	TP_TYPE_SOCKET,		/* an abstract UNIX socket name, "@name" */
	TP_TYPE_COUNT,		/* a whole number in [min, max] */
	TP_TYPE_USER,		/* a system user name */
};

enum tp_key_scope {
	TP_SCOPE_ANY,		/* [global], overridable per port */
	TP_SCOPE_GLOBAL,	/* [global] only */
	TP_SCOPE_PORT,		/* [port ...] only, and required there */
};

/* where a value was written, for diagnostics */
struct tp_where {
	const char *file;
	int line;
	const char *section;
};

struct tp_key_value {
	const char *word;
	const char *help;
};

/* a word a user may write that is not a value, and what to say about it */
struct tp_key_hint {
	const char *word;
	const char *say;
};

struct tp_key {
	const char *name;
	enum tp_key_type type;
	enum tp_key_scope scope;
	const char *def;		/* default value; NULL: none (see def_doc) */
	const char *def_doc;		/* the default in words, for show and man */
	long min, max;			/* TP_TYPE_SECONDS, TP_TYPE_COUNT */
	const struct tp_key_value *values;	/* TP_TYPE_ENUM; NULL-terminated */
	const struct tp_key_hint *hints;	/* NULL-terminated, may be NULL */
	const char *help;		/* one line */
	const char *doc;		/* a paragraph for the man page */
};

extern const struct tp_key tp_keys[TP_KEY_COUNT];

/* tp_key_lookup - a key by its exact (lower-case) name; NULL if unknown */
const struct tp_key *tp_key_lookup(const char *name);

/* tp_key_suggest - the key name a misspelt one most likely meant, or NULL */
const char *tp_key_suggest(const char *name);

/*
 * tp_key_check - validate one value as written at w.  Every problem found
 * is added to d (all of them, not just the first).  Returns 0 if the value
 * is usable, -1 if not.
 */
int tp_key_check(const struct tp_key *k, const char *value,
		 const struct tp_where *w, struct tp_diags *d);

/* tp_key_enum_index - position of value in k->values, or -1 */
int tp_key_enum_index(const struct tp_key *k, const char *value);

/*
 * tp_ciphers_parse - split a ban_ciphers value into class bits and suites.
 * Unknown words are skipped (tp_key_check reports them).  Returns the
 * number of suites stored in suites[0..max-1].
 */
struct tp_suite;
size_t tp_ciphers_parse(const char *value, unsigned *classes_r,
			const struct tp_suite **suites, size_t max);

#endif
