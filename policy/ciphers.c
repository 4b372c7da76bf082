/*
 * ciphers.c - the installed wolfSSL's suites, classified; cipher classes;
 * profiles
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef TP_POLICY_NO_TLS
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#endif

#include "ciphers.h"
#include "util.h"

#define MAX_SUITES 256

static const char *const version_names[] = {
	[TP_TLS10] = "TLSv1.0",
	[TP_TLS11] = "TLSv1.1",
	[TP_TLS12] = "TLSv1.2",
	[TP_TLS13] = "TLSv1.3",
};

const char *tp_version_name(enum tp_version v)
{
	if (v < TP_TLS10 || v > TP_TLS13)
		return "none";
	return version_names[v];
}

enum tp_version tp_version_parse(const char *s)
{
	for (int v = TP_TLS10; v <= TP_TLS13; v++)
		if (strcasecmp(s, version_names[v]) == 0)
			return (enum tp_version)v;
	return TP_VERSION_NONE;
}

const struct tp_cipher_class tp_cipher_classes[] = {
	{ "NULL", TP_CLASS_NULL, "no encryption at all (also TLS 1.3 integrity-only suites)" },
	{ "aNULL", TP_CLASS_ANULL, "anonymous key exchange: no server authentication, open to a man in the middle" },
	{ "EXPORT", TP_CLASS_EXPORT, "1990s export-grade keys (FREAK, Logjam)" },
	{ "RC4", TP_CLASS_RC4, "RC4 stream cipher (RFC 7465 prohibits it)" },
	{ "DES", TP_CLASS_DES, "single DES, 56-bit keys" },
	{ "3DES", TP_CLASS_3DES, "triple DES, 64-bit blocks (Sweet32)" },
	{ "MD5", TP_CLASS_MD5, "MD5 record MAC" },
	{ "SHA1", TP_CLASS_SHA1, "SHA-1 record MAC (CBC suites of TLS 1.0 to 1.2)" },
	{ "CBC", TP_CLASS_CBC, "CBC-mode ciphers, MAC-then-encrypt (Lucky13, POODLE-style padding oracles)" },
	{ "kRSA", TP_CLASS_KRSA, "RSA key transport: no forward secrecy" },
	{ "PSK", TP_CLASS_PSK, "pre-shared-key suites: need a shared secret, not a certificate" },
	{ "DHE", TP_CLASS_DHE, "finite-field Diffie-Hellman key exchange (slow; weak with small groups)" },
	{ "CAMELLIA", TP_CLASS_CAMELLIA, "Camellia block cipher" },
	{ "ARIA", TP_CLASS_ARIA, "ARIA block cipher" },
	{ "SEED", TP_CLASS_SEED, "SEED block cipher" },
	{ "IDEA", TP_CLASS_IDEA, "IDEA block cipher, 64-bit blocks" },
	{ "CCM8", TP_CLASS_CCM8, "AES-CCM with a truncated 8-byte tag" },
	{ "CHACHA20-OLD", TP_CLASS_CHACHA20OLD, "pre-standard ChaCha20-Poly1305 draft suites" },
};
const size_t tp_cipher_class_count =
	sizeof(tp_cipher_classes) / sizeof(tp_cipher_classes[0]);

/* other spellings people bring from OpenSSL */
static const struct {
	const char *alias, *name;
} class_aliases[] = {
	{ "eNULL", "NULL" },
	{ "ADH", "aNULL" },
	{ "EXP", "EXPORT" },
	{ "DES-CBC3", "3DES" },
	{ "RSA", "kRSA" },
	{ "EDH", "DHE" },
};

const struct tp_cipher_class *tp_cipher_class_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(class_aliases) / sizeof(class_aliases[0]); i++)
		if (strcasecmp(name, class_aliases[i].alias) == 0)
			name = class_aliases[i].name;
	/* "NULL" and "aNULL" differ only by case-insensitive prefix: exact first */
	for (size_t i = 0; i < tp_cipher_class_count; i++)
		if (strcmp(name, tp_cipher_classes[i].name) == 0)
			return &tp_cipher_classes[i];
	for (size_t i = 0; i < tp_cipher_class_count; i++)
		if (strcasecmp(name, tp_cipher_classes[i].name) == 0)
			return &tp_cipher_classes[i];
	return NULL;
}

#ifndef TP_POLICY_NO_TLS	/* the shim's build: no suites to classify */
/* --- classifying a suite from its IANA name ------------------------------ */

static const struct {
	const char *text;
	enum tp_kx kx;
	enum tp_auth auth;
} kx_names[] = {
	{ "ECDHE_ECDSA", KX_ECDHE, AU_ECDSA }, { "ECDHE_RSA", KX_ECDHE, AU_RSA },
	{ "ECDHE_PSK", KX_ECDHE, AU_PSK },     { "DHE_RSA", KX_DHE, AU_RSA },
	{ "DHE_DSS", KX_DHE, AU_DSS },         { "DHE_PSK", KX_DHE, AU_PSK },
	{ "ECDH_ECDSA", KX_ECDH, AU_ECDSA },   { "ECDH_RSA", KX_ECDH, AU_RSA },
	{ "ECDH_anon", KX_ECDH, AU_ANON },     { "DH_anon", KX_DH, AU_ANON },
	{ "DH_RSA", KX_DH, AU_RSA },           { "DH_DSS", KX_DH, AU_DSS },
	{ "RSA_PSK", KX_RSA, AU_PSK },         { "RSA", KX_RSA, AU_RSA },
	{ "PSK", KX_PSK, AU_PSK },
};

static const struct {
	const char *text;
	enum tp_enc enc;
} enc_names[] = {
	{ "AES_128_GCM", EN_AES128GCM },	{ "AES_256_GCM", EN_AES256GCM },
	{ "CHACHA20_POLY1305", EN_CHACHA20 },	{ "CHACHA20_OLD_POLY1305", EN_CHACHA20OLD },
	{ "AES_128_CCM_8", EN_AES128CCM8 },	{ "AES_256_CCM_8", EN_AES256CCM8 },
	{ "AES_128_CCM", EN_AES128CCM },	{ "AES_256_CCM", EN_AES256CCM },
	{ "AES_128_CBC", EN_AES128CBC },	{ "AES_256_CBC", EN_AES256CBC },
	{ "CAMELLIA_128_CBC", EN_CAMELLIA128CBC }, { "CAMELLIA_256_CBC", EN_CAMELLIA256CBC },
	{ "3DES_EDE_CBC", EN_3DES },		{ "DES_CBC", EN_DES },
	{ "DES40_CBC", EN_DES },		{ "DES_CBC_40", EN_DES },
	{ "RC4_128", EN_RC4 },			{ "RC4_40", EN_RC4 },
	{ "SEED_CBC", EN_SEED },		{ "IDEA_CBC", EN_IDEA },
	{ "NULL", EN_NULL },
};

static const struct {
	const char *suffix;
	enum tp_mac mac;
} mac_names[] = {
	{ "_SHA384", MAC_SHA384 }, { "_SHA256", MAC_SHA256 },
	{ "_SHA", MAC_SHA1 },      { "_MD5", MAC_MD5 },
};

static int is_aead(enum tp_enc e)
{
	return e <= EN_AES256CCM8 || e == EN_CHACHA20OLD;
}

static int is_cbc(enum tp_enc e)
{
	return (e >= EN_AES128CBC && e <= EN_DES);
}

/* parse_kx - "ECDHE_RSA" (with any _EXPORT stripped) to key exchange and auth */
static void parse_kx(struct tp_suite *s, char *kx)
{
	char *exp = strstr(kx, "_EXPORT");

	if (exp != NULL) {
		s->export_grade = 1;
		*exp = '\0';
	}
	s->kx = KX_OTHER;
	s->auth = AU_OTHER;
	for (size_t i = 0; i < sizeof(kx_names) / sizeof(kx_names[0]); i++) {
		if (strcmp(kx, kx_names[i].text) == 0) {
			s->kx = kx_names[i].kx;
			s->auth = kx_names[i].auth;
			return;
		}
	}
}

/* parse_encmac - "AES_128_CBC_SHA256" to cipher and record MAC */
static void parse_encmac(struct tp_suite *s, char *em)
{
	size_t len = strlen(em);

	s->mac = MAC_OTHER;
	for (size_t i = 0; i < sizeof(mac_names) / sizeof(mac_names[0]); i++) {
		size_t sl = strlen(mac_names[i].suffix);

		if (len > sl && strcmp(em + len - sl, mac_names[i].suffix) == 0) {
			s->mac = mac_names[i].mac;
			em[len - sl] = '\0';
			break;
		}
	}
	s->enc = EN_OTHER;
	if (strncmp(em, "ARIA_", 5) == 0)
		s->enc = EN_ARIA;
	if (strncmp(em, "CAMELLIA_", 9) == 0 && strstr(em, "GCM") != NULL)
		s->enc = EN_OTHER;	/* not offered by wolfSSL; keep it out of profiles */
	for (size_t i = 0; i < sizeof(enc_names) / sizeof(enc_names[0]); i++)
		if (strcmp(em, enc_names[i].text) == 0)
			s->enc = enc_names[i].enc;
	if (is_aead(s->enc))
		s->mac = MAC_AEAD;
}

static unsigned suite_classes(const struct tp_suite *s)
{
	unsigned c = 0;

	c |= s->enc == EN_NULL ? TP_CLASS_NULL : 0;
	c |= s->auth == AU_ANON ? TP_CLASS_ANULL : 0;
	c |= s->export_grade ? TP_CLASS_EXPORT : 0;
	c |= s->enc == EN_RC4 ? TP_CLASS_RC4 : 0;
	c |= s->enc == EN_DES ? TP_CLASS_DES : 0;
	c |= s->enc == EN_3DES ? TP_CLASS_3DES : 0;
	c |= s->mac == MAC_MD5 ? TP_CLASS_MD5 : 0;
	c |= s->mac == MAC_SHA1 ? TP_CLASS_SHA1 : 0;
	c |= is_cbc(s->enc) ? TP_CLASS_CBC : 0;
	c |= (s->kx == KX_RSA && s->auth == AU_RSA) ? TP_CLASS_KRSA : 0;
	c |= s->auth == AU_PSK ? TP_CLASS_PSK : 0;
	c |= s->kx == KX_DHE ? TP_CLASS_DHE : 0;
	c |= (s->enc == EN_CAMELLIA128CBC || s->enc == EN_CAMELLIA256CBC) ? TP_CLASS_CAMELLIA : 0;
	c |= s->enc == EN_ARIA ? TP_CLASS_ARIA : 0;
	c |= s->enc == EN_SEED ? TP_CLASS_SEED : 0;
	c |= s->enc == EN_IDEA ? TP_CLASS_IDEA : 0;
	c |= (s->enc == EN_AES128CCM8 || s->enc == EN_AES256CCM8) ? TP_CLASS_CCM8 : 0;
	c |= s->enc == EN_CHACHA20OLD ? TP_CLASS_CHACHA20OLD : 0;
	return c;
}

/* suite_rank - forward secrecy first, then AEAD, then the stronger cipher */
static unsigned suite_rank(const struct tp_suite *s)
{
	unsigned kx = s->kx == KX_ANY ? 0 : s->kx == KX_ECDHE ? 0 :
		      s->kx == KX_DHE ? 1 : s->kx == KX_RSA ? 2 : 3;
	unsigned grade = s->mac == MAC_AEAD ? 0 :
			 (s->mac == MAC_SHA256 || s->mac == MAC_SHA384) ? 1 :
			 s->enc == EN_3DES ? 3 : 2;
	unsigned auth = s->auth == AU_ECDSA ? 0 : s->auth == AU_RSA ? 1 : 2;

	return kx * 10000 + grade * 1000 + (unsigned)s->enc * 10 + auth;
}

/* classify - fill a suite's attributes from its IANA name */
static void classify(struct tp_suite *s)
{
	char buf[sizeof(s->iana)];
	char *with;

	memcpy(buf, s->iana, sizeof(buf));
	buf[sizeof(buf) - 1] = '\0';
	s->tls13 = strncmp(s->name, "TLS13-", 6) == 0;
	with = strstr(buf, "_WITH_");
	if (s->tls13) {
		s->kx = KX_ANY;
		s->auth = AU_ANY;
		/* TLS_SHA256_SHA256: integrity only, no encryption (RFC 9150) */
		if (strncmp(buf, "TLS_SHA", 7) == 0) {
			s->enc = EN_NULL;
			s->mac = MAC_OTHER;
		} else {
			parse_encmac(s, buf + 4);
		}
	} else if (with != NULL) {
		*with = '\0';
		parse_kx(s, strncmp(buf, "TLS_", 4) == 0 ? buf + 4 : buf);
		parse_encmac(s, with + 6);
	} else {
		s->kx = KX_OTHER;
		s->auth = AU_OTHER;
		s->enc = EN_OTHER;
		s->mac = MAC_OTHER;
	}
	s->classes = suite_classes(s);
	s->rank = suite_rank(s);
}
#endif

static struct tp_suite suite_table[MAX_SUITES];
static size_t suite_count;
static pthread_once_t suite_once = PTHREAD_ONCE_INIT;

/*
 * load_suites - walk the suite code space, asking wolfSSL for each code's
 * name and IANA name, and keep those wolfSSL_get_ciphers says this build
 * offers.  Walking the codes pairs the two names exactly (the two name
 * lists wolfSSL prints differ in length: it lists aliases).
 */
static void load_suites(void)
{
#ifdef TP_POLICY_NO_TLS
	/* the shim's build knows no suites: see certcheck.c */
	suite_count = 0;
#else
	static char list[16384];
	size_t count = 0;

	if (wolfSSL_get_ciphers(list, sizeof(list)) != WOLFSSL_SUCCESS)
		return;
	for (unsigned code = 0; code <= 0xffff && count < MAX_SUITES; code++) {
		unsigned char b0 = (unsigned char)(code >> 8), b1 = (unsigned char)code;
		const char *name = wolfSSL_get_cipher_name_from_suite(b0, b1);
		const char *iana = wolfSSL_get_cipher_name_iana_from_suite(b0, b1);
		struct tp_suite *s = &suite_table[count];

		if (name == NULL || iana == NULL || strcmp(name, "None") == 0 ||
		    !tp_list_has(list, name, ':') || strlen(name) >= sizeof(s->name) ||
		    strlen(iana) >= sizeof(s->iana))
			continue;
		memcpy(s->name, name, strlen(name) + 1);
		memcpy(s->iana, iana, strlen(iana) + 1);
		s->id = code;
		classify(s);
		count++;
	}
	suite_count = count;
#endif
}

const struct tp_suite *tp_suites(size_t *n)
{
	pthread_once(&suite_once, load_suites);
	*n = suite_count;
	return suite_count ? suite_table : NULL;
}

const struct tp_suite *tp_suite_by_id(unsigned id)
{
	size_t n;
	const struct tp_suite *all = tp_suites(&n);

	for (size_t i = 0; i < n; i++)
		if (all[i].id == id)
			return &all[i];
	return NULL;
}

const struct tp_suite *tp_suite_lookup(const char *name)
{
	size_t n;
	const struct tp_suite *s = tp_suites(&n);

	for (size_t i = 0; i < n; i++)
		if (strcasecmp(name, s[i].name) == 0 || strcasecmp(name, s[i].iana) == 0)
			return &s[i];
	return NULL;
}

/* --- profiles ------------------------------------------------------------- */

static int strong_aead(const struct tp_suite *s)
{
	return s->enc == EN_AES128GCM || s->enc == EN_AES256GCM ||
	       s->enc == EN_CHACHA20;
}

static int cert_auth(const struct tp_suite *s)
{
	return s->auth == AU_RSA || s->auth == AU_ECDSA;
}

static int allows_modern(const struct tp_suite *s)
{
	return s->tls13 && strong_aead(s);
}

static int allows_intermediate(const struct tp_suite *s)
{
	if (s->tls13)
		return strong_aead(s);
	return (s->kx == KX_ECDHE || s->kx == KX_DHE) && cert_auth(s) &&
	       strong_aead(s);
}

static int allows_legacy(const struct tp_suite *s)
{
	if (s->tls13)
		return strong_aead(s) || s->enc == EN_AES128CCM;
	if (s->export_grade || !cert_auth(s))
		return 0;
	if (s->kx != KX_ECDHE && s->kx != KX_DHE && s->kx != KX_RSA)
		return 0;
	switch (s->enc) {
	case EN_AES128GCM: case EN_AES256GCM: case EN_CHACHA20:
	case EN_AES128CCM: case EN_AES256CCM:
	case EN_AES128CBC: case EN_AES256CBC:
	case EN_CAMELLIA128CBC: case EN_CAMELLIA256CBC: case EN_3DES:
		return s->mac != MAC_MD5 && s->mac != MAC_OTHER;
	default:
		return 0;
	}
}

const struct tp_profile tp_profiles[] = {
	{ "modern", TP_TLS13,
	  "TLS 1.3 only, AES-GCM and ChaCha20-Poly1305; for clients from 2019 on",
	  allows_modern },
	{ "intermediate", TP_TLS12,
	  "TLS 1.2 and 1.3, forward-secret AEAD suites only (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305); the recommended default",
	  allows_intermediate },
	{ "legacy", TP_TLS10,
	  "TLS 1.0 and up, adds CBC, SHA-1, RSA key transport and 3DES suites for very old clients; never NULL, anonymous, export, RC4, DES, MD5 or PSK",
	  allows_legacy },
};
const size_t tp_profile_count = sizeof(tp_profiles) / sizeof(tp_profiles[0]);

const struct tp_profile *tp_profile_lookup(const char *name)
{
	for (size_t i = 0; i < tp_profile_count; i++)
		if (strcasecmp(name, tp_profiles[i].name) == 0)
			return &tp_profiles[i];
	return NULL;
}

static int banned(const struct tp_suite *s, unsigned ban_classes,
		  const struct tp_suite *const *ban_suites, size_t nban)
{
	if (s->classes & ban_classes)
		return 1;
	for (size_t i = 0; i < nban; i++)
		if (ban_suites[i] == s)
			return 1;
	return 0;
}

static int by_rank(const void *a, const void *b)
{
	const struct tp_suite *x = *(const struct tp_suite *const *)a;
	const struct tp_suite *y = *(const struct tp_suite *const *)b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x < y ? -1 : x > y;	/* wolfSSL's own order breaks ties */
}

int tp_suites_select(const struct tp_profile *profile, unsigned ban_classes,
		     const struct tp_suite *const *ban_suites, size_t nban,
		     char **tls12_r, char **tls13_r)
{
	const struct tp_suite *picked[MAX_SUITES];
	struct tp_buf b12 = { 0 }, b13 = { 0 };
	size_t n, k = 0;
	const struct tp_suite *all = tp_suites(&n);

	for (size_t i = 0; i < n; i++)
		if (profile->allows(&all[i]) &&
		    !banned(&all[i], ban_classes, ban_suites, nban))
			picked[k++] = &all[i];
	qsort(picked, k, sizeof(picked[0]), by_rank);
	tp_buf_add(&b12, "");
	tp_buf_add(&b13, "");
	for (size_t i = 0; i < k; i++) {
		struct tp_buf *b = picked[i]->tls13 ? &b13 : &b12;

		if (b->len)
			tp_buf_add(b, ":");
		tp_buf_add(b, picked[i]->name);
	}
	if (b12.oom || b13.oom) {
		tp_buf_free(&b12);
		tp_buf_free(&b13);
		return -1;
	}
	*tls12_r = b12.s;
	*tls13_r = b13.s;
	return 0;
}
