/*
 * ciphers.h - cipher suites as the installed wolfSSL offers them, the
 * cipher classes a policy can ban, and the named profiles
 *
 * The suite list is read from wolfSSL itself (wolfSSL_get_ciphers, and
 * the names wolfSSL gives each suite code) and each suite is classified from its IANA
 * name, so a class such as RC4 means exactly the RC4 suites this build
 * of wolfSSL can negotiate, never a hand-kept list.
 */
#ifndef TP_CIPHERS_H
#define TP_CIPHERS_H

#include <stddef.h>

enum tp_version {
	TP_VERSION_NONE = 0,
	TP_TLS10,
	TP_TLS11,
	TP_TLS12,
	TP_TLS13,
};

/* tp_version_name - "TLSv1.2" etc. */
const char *tp_version_name(enum tp_version v);
/* tp_version_parse - exact, case-insensitive name to version; NONE if unknown */
enum tp_version tp_version_parse(const char *s);

enum tp_kx { KX_ANY, KX_ECDHE, KX_DHE, KX_RSA, KX_ECDH, KX_DH, KX_PSK, KX_OTHER };
enum tp_auth { AU_ANY, AU_ECDSA, AU_RSA, AU_DSS, AU_ANON, AU_PSK, AU_OTHER };
enum tp_enc {
	EN_AES128GCM, EN_AES256GCM, EN_CHACHA20, EN_AES128CCM, EN_AES256CCM,
	EN_AES128CCM8, EN_AES256CCM8, EN_AES128CBC, EN_AES256CBC,
	EN_CAMELLIA128CBC, EN_CAMELLIA256CBC, EN_ARIA, EN_SEED, EN_IDEA,
	EN_3DES, EN_DES, EN_RC4, EN_CHACHA20OLD, EN_NULL, EN_OTHER
};
enum tp_mac { MAC_AEAD, MAC_SHA384, MAC_SHA256, MAC_SHA1, MAC_MD5, MAC_OTHER };

enum {
	TP_CLASS_NULL = 1u << 0,
	TP_CLASS_ANULL = 1u << 1,
	TP_CLASS_EXPORT = 1u << 2,
	TP_CLASS_RC4 = 1u << 3,
	TP_CLASS_DES = 1u << 4,
	TP_CLASS_3DES = 1u << 5,
	TP_CLASS_MD5 = 1u << 6,
	TP_CLASS_SHA1 = 1u << 7,
	TP_CLASS_CBC = 1u << 8,
	TP_CLASS_KRSA = 1u << 9,
	TP_CLASS_PSK = 1u << 10,
	TP_CLASS_DHE = 1u << 11,
	TP_CLASS_CAMELLIA = 1u << 12,
	TP_CLASS_ARIA = 1u << 13,
	TP_CLASS_SEED = 1u << 14,
	TP_CLASS_IDEA = 1u << 15,
	TP_CLASS_CCM8 = 1u << 16,
	TP_CLASS_CHACHA20OLD = 1u << 17,
};

struct tp_suite {
	char name[64];		/* wolfSSL's name: ECDHE-RSA-AES128-GCM-SHA256 */
	char iana[80];		/* IANA's: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 */
	unsigned id;		/* the two-byte code on the wire: 0xC02F */
	int tls13;		/* a TLS 1.3 suite (no key exchange in it) */
	int export_grade;
	enum tp_kx kx;
	enum tp_auth auth;
	enum tp_enc enc;
	enum tp_mac mac;
	unsigned classes;	/* TP_CLASS_* bits */
	unsigned rank;		/* server preference: lower first */
};

/*
 * tp_suites - every suite the linked wolfSSL offers, classified.  Built on
 * first use; NULL (and *n = 0) if wolfSSL could not list them.
 */
const struct tp_suite *tp_suites(size_t *n);

/* tp_suite_lookup - by wolfSSL or IANA name, case-insensitive; NULL if unknown */
const struct tp_suite *tp_suite_lookup(const char *name);

/* tp_suite_by_id - by its two-byte code on the wire; NULL if this wolfSSL has none */
const struct tp_suite *tp_suite_by_id(unsigned id);

struct tp_cipher_class {
	const char *name;	/* as written in ban_ciphers: "3DES", "aNULL" */
	unsigned bit;
	const char *help;	/* one line, for show, explain and the man page */
};

extern const struct tp_cipher_class tp_cipher_classes[];
extern const size_t tp_cipher_class_count;

/* tp_cipher_class_lookup - by name or alias, case-insensitive; NULL if unknown */
const struct tp_cipher_class *tp_cipher_class_lookup(const char *name);

struct tp_profile {
	const char *name;
	enum tp_version floor;
	const char *help;
	int (*allows)(const struct tp_suite *s);
};

extern const struct tp_profile tp_profiles[];
extern const size_t tp_profile_count;

const struct tp_profile *tp_profile_lookup(const char *name);

/*
 * tp_suites_select - the suites a profile allows, less those in a banned
 * class or named in ban_names (suite names already checked with
 * tp_suite_lookup), in server preference order, as wolfSSL cipher-list
 * strings ("A:B:C"; "" if none) for TLS 1.2 and below and for TLS 1.3.
 * Caller frees both.  0 on success, -1 on allocation failure.
 */
int tp_suites_select(const struct tp_profile *profile, unsigned ban_classes,
		     const struct tp_suite *const *ban_suites, size_t nban,
		     char **tls12_r, char **tls13_r);

#endif
