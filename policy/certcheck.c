/*
 * certcheck.c - certificate and key checks with wolfSSL
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "certcheck.h"
#include "diag.h"
#include "keys.h"
#include "util.h"

#ifdef TP_POLICY_NO_TLS
/*
 * The shim's build: it never reads keys (TP_LOAD_CHECK_FILES is for
 * tlspolicyctl and tlspolicyd) and must not bring wolfSSL, whose library
 * exports functions under OpenSSL's names, into a mail daemon's process.
 */
void tp_cert_check(const char *cert, const struct tp_where *cw,
		   const char *key, const struct tp_where *kw,
		   struct tp_diags *d)
{
	(void)cert, (void)cw, (void)key, (void)kw, (void)d;
}
#else
#include <stdint.h>
#include <stdlib.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>

/* the largest certificate or key file compared (a chain of a few certificates is ~10 KiB) */
#define PEM_MAX (1024 * 1024)

static void say(struct tp_diags *d, enum tp_severity sev,
		const struct tp_where *w, const char *key, const char *path,
		const char *what)
{
	tp_diags_add(d, sev, w->file, w->line, w->section, key, path, "%s", what);
}

/* readable_file - 0 if path is a regular file we can open; else reported */
static int readable_file(const char *path, const struct tp_where *w,
			 const char *key, const char *what, struct tp_diags *d)
{
	struct stat st;
	FILE *f;
	char msg[6000];

	const char *reason = NULL;
	char shown[4096];

	tp_path_display(path, shown, sizeof(shown));
	if (stat(path, &st) < 0)
		reason = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		reason = "not a regular file";
	if (reason != NULL) {
		snprintf(msg, sizeof(msg), "cannot read %s \"%s\": %s; %s",
			 what, shown, reason,
			 strcmp(key, "certificate") == 0 ?
			 "point it at the PEM certificate chain (Debian's ssl-cert package makes /etc/ssl/certs/ssl-cert-snakeoil.pem)" :
			 "point it at the PEM private key (Debian's ssl-cert package makes /etc/ssl/private/ssl-cert-snakeoil.key)");
		say(d, TP_ERROR, w, key, path, msg);
		return -1;
	}
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(msg, sizeof(msg), "cannot read %s \"%s\": %s; run the check as root, or as the user tlspolicyd loads keys as",
			 what, shown, strerror(errno));
		say(d, TP_ERROR, w, key, path, msg);
		return -1;
	}
	fclose(f);
	return 0;
}

/* check_expiry - error if expired, warning if close */
static void check_expiry(const char *cert, const struct tp_where *cw,
			 struct tp_diags *d)
{
	WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(cert, WOLFSSL_FILETYPE_PEM);
	const WOLFSSL_ASN1_TIME *na;
	struct tm tm;
	char date[32], msg[4600], shown[4096];
	time_t end, now = time(NULL);
	long days;

	if (x == NULL)
		return;
	na = wolfSSL_X509_get_notAfter(x);
	if (na == NULL || wolfSSL_ASN1_TIME_to_tm(na, &tm) != WOLFSSL_SUCCESS) {
		wolfSSL_X509_free(x);
		return;
	}
	wolfSSL_X509_free(x);
	end = timegm(&tm);
	tp_path_display(cert, shown, sizeof(shown));
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	days = (long)((end - now) / 86400);
	if (end <= now) {
		snprintf(msg, sizeof(msg), "\"%s\" expired on %s; clients will refuse it: renew the certificate",
			 shown, date);
		say(d, TP_ERROR, cw, "certificate", cert, msg);
	} else if (days < TP_CERT_WARN_DAYS) {
		snprintf(msg, sizeof(msg), "\"%s\" expires on %s (in %ld days); renew it before then",
			 shown, date, days);
		say(d, TP_WARNING, cw, "certificate", cert, msg);
	}
}

/* key_mode_ok - a key others can read is a key others can use */
static int key_mode_ok(const char *key, const struct tp_where *kw,
		       struct tp_diags *d)
{
	struct stat st;
	char msg[10000], shown[4096];

	if (stat(key, &st) < 0)
		return -1;
	tp_path_display(key, shown, sizeof(shown));
	if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "\"%s\" is readable by every user on this host (mode %04o), so anyone here can impersonate this server; run: chmod 600 %s (or chmod 640 with group ssl-cert)",
		 shown, (unsigned)(st.st_mode & 07777), shown);
	say(d, TP_ERROR, kw, "private_key", key, msg);
	return -1;
}

/* is_encrypted - a PEM key protected by a passphrase */
static int is_encrypted(const char *key)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(key, "r");

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "ENCRYPTED") != NULL;
}

/* slurp - a file's bytes (at most PEM_MAX), NUL-terminated; NULL if unreadable */
static unsigned char *slurp(const char *path, int *len_r)
{
	FILE *f = fopen(path, "r");
	unsigned char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = malloc(PEM_MAX + 1);
	n = buf != NULL ? fread(buf, 1, PEM_MAX, f) : 0;
	fclose(f);
	if (buf != NULL)
		buf[n] = '\0';
	*len_r = (int)n;
	return buf;
}

static void wipe_free(unsigned char *buf, int len)
{
	if (buf != NULL)
		explicit_bzero(buf, (size_t)len);
	free(buf);
}

/* ends_with - does the certificate's key (SPKI for ECC, raw for Ed25519) end with pub? */
static int ends_with(const byte *spki, word32 slen, const byte *pub, word32 plen)
{
	return plen > 0 && slen >= plen && memcmp(spki + slen - plen, pub, plen) == 0;
}

/* ecc_public_matches - the public point of an EC private key (DER) is the certificate's */
static int ecc_public_matches(const byte *der, word32 dlen, const byte *spki, word32 slen)
{
	ecc_key k;
	word32 idx = 0, n;
	byte point[160];
	int ok = 0;

	if (wc_GetPkcs8TraditionalOffset((byte *)(uintptr_t)der, &idx, dlen) < 0)
		idx = 0;
	if (wc_ecc_init(&k) != 0)
		return 0;
	/* the point is computed from the private scalar, never taken from the file */
	if (wc_EccPrivateKeyDecode(der, &idx, &k, dlen) == 0 && wc_ecc_make_pub(&k, NULL) == 0) {
		n = sizeof(point);
		ok = wc_ecc_export_x963_ex(&k, point, &n, 0) == 0 && ends_with(spki, slen, point, n);
		n = sizeof(point);
		ok = ok || (wc_ecc_export_x963_ex(&k, point, &n, 1) == 0 && ends_with(spki, slen, point, n));
	}
	wc_ecc_free(&k);
	return ok;
}

/* ed25519_public_matches - the public key of an Ed25519 private key (DER) is the certificate's */
static int ed25519_public_matches(const byte *der, word32 dlen, const byte *pub, word32 plen)
{
#ifdef HAVE_ED25519
	ed25519_key k;
	word32 idx = 0;
	byte mine[ED25519_PUB_KEY_SIZE];
	int ok;

	if (wc_ed25519_init(&k) != 0)
		return 0;
	ok = wc_Ed25519PrivateKeyDecode(der, &idx, &k, dlen) == 0 &&
	     wc_ed25519_make_public(&k, mine, sizeof(mine)) == 0 &&
	     plen == sizeof(mine) && memcmp(pub, mine, sizeof(mine)) == 0;
	wc_ed25519_free(&k);
	return ok;
#else
	(void)der, (void)dlen, (void)pub, (void)plen;
	return 0;
#endif
}

/*
 * public_matches - wolfSSL_CTX_check_private_key compares RSA moduli, but
 * here not the public key of an ECDSA or Ed25519 key with the
 * certificate's (issue 9, item 17): so derive the key's public half from
 * its private half and compare.  1 match, 0 mismatch, -1 an RSA (or other)
 * certificate, left to wolfSSL's check.
 */
static int public_matches(const char *cert, const char *key)
{
	int clen = 0, klen = 0, rc = -1;
	unsigned char *cpem = slurp(cert, &clen), *kpem = slurp(key, &klen);
	byte *cder = malloc(PEM_MAX), *kder = malloc(PEM_MAX), spki[1024];
	word32 slen = sizeof(spki);
	int cdlen, kdlen;
	DecodedCert dc;

	if (cpem == NULL || kpem == NULL || cder == NULL || kder == NULL)
		goto out;
	cdlen = wc_CertPemToDer(cpem, clen, cder, PEM_MAX, CERT_TYPE);
	kdlen = wc_KeyPemToDer(kpem, klen, kder, PEM_MAX, NULL);
	if (cdlen <= 0)
		goto out;
	wc_InitDecodedCert(&dc, cder, (word32)cdlen, NULL);
	if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) == 0 &&
	    wc_GetPubKeyDerFromCert(&dc, spki, &slen) == 0) {
		if (dc.keyOID == ECDSAk)
			rc = kdlen > 0 && ecc_public_matches(kder, (word32)kdlen, spki, slen);
		else if (dc.keyOID == ED25519k)
			rc = kdlen > 0 && ed25519_public_matches(kder, (word32)kdlen, spki, slen);
	}
	wc_FreeDecodedCert(&dc);
out:
	wipe_free(kpem, klen);
	wipe_free(kder, PEM_MAX);
	free(cpem);
	free(cder);
	return rc;
}

void tp_cert_check(const char *cert, const struct tp_where *cw,
		   const char *key, const struct tp_where *kw,
		   struct tp_diags *d)
{
	WOLFSSL_CTX *ctx;
	int cert_ok, key_ok;
	char msg[10000], c_shown[4096], k_shown[4096];

	tp_path_display(cert, c_shown, sizeof(c_shown));
	tp_path_display(key, k_shown, sizeof(k_shown));
	cert_ok = readable_file(cert, cw, "certificate", "the certificate", d) == 0;
	key_ok = readable_file(key, kw, "private_key", "the private key", d) == 0;
	if (key_ok)
		key_ok = key_mode_ok(key, kw, d) == 0;
	if (!cert_ok && !key_ok)
		return;
	wolfSSL_Init();
	ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (ctx == NULL) {
		say(d, TP_ERROR, cw, "certificate", cert, "wolfSSL could not start; out of memory?");
		wolfSSL_Cleanup();
		return;
	}
	if (cert_ok && wolfSSL_CTX_use_certificate_chain_file(ctx, cert) != WOLFSSL_SUCCESS) {
		snprintf(msg, sizeof(msg), "\"%s\" is not a PEM certificate chain wolfSSL can load; it must start with -----BEGIN CERTIFICATE-----, server certificate first",
			 c_shown);
		say(d, TP_ERROR, cw, "certificate", cert, msg);
		cert_ok = 0;
	}
	if (cert_ok)
		check_expiry(cert, cw, d);
	if (key_ok && is_encrypted(key)) {
		snprintf(msg, sizeof(msg), "\"%s\" is protected by a passphrase, which nobody can type when tlspolicyd starts; decrypt it: openssl pkey -in %s -out NEW.key && chmod 600 NEW.key",
			 k_shown, k_shown);
		say(d, TP_ERROR, kw, "private_key", key, msg);
		key_ok = 0;
	} else if (key_ok && wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		snprintf(msg, sizeof(msg), "\"%s\" is not a PEM private key wolfSSL can load; it must start with -----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY)",
			 k_shown);
		say(d, TP_ERROR, kw, "private_key", key, msg);
		key_ok = 0;
	}
	if (cert_ok && key_ok && (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS ||
				  public_matches(cert, key) == 0)) {
		/* report it where the port chose something of its own */
		if (strcmp(kw->section, "global") == 0 && strcmp(cw->section, "global") != 0) {
			snprintf(msg, sizeof(msg), "\"%s\" does not match private_key \"%s\" (from [global], line %d); set private_key in this section too, or use the certificate that key belongs to",
				 c_shown, k_shown, kw->line);
			say(d, TP_ERROR, cw, "certificate", cert, msg);
		} else {
			snprintf(msg, sizeof(msg), "\"%s\" does not match the certificate \"%s\"; use the key the certificate was issued for",
				 k_shown, c_shown);
			say(d, TP_ERROR, kw, "private_key", key, msg);
		}
	}
	wolfSSL_CTX_free(ctx);
	wolfSSL_Cleanup();
}
#endif /* TP_POLICY_NO_TLS */
