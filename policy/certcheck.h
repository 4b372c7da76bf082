/*
 * certcheck.h - is a certificate and key pair usable by tlspolicyd?
 */
#ifndef TP_CERTCHECK_H
#define TP_CERTCHECK_H

struct tp_diags;
struct tp_where;

/* how many days before expiry a certificate draws a warning */
#define TP_CERT_WARN_DAYS 30

/*
 * tp_cert_check - check that cert is a readable PEM chain that has not
 * expired (warn within TP_CERT_WARN_DAYS days), that key is a PEM private
 * key nobody but its owner and group can read, and that the two match
 * (RSA by wolfSSL's check; ECDSA and Ed25519 by comparing the public key
 * derived from the private one with the certificate's).
 * Problems go to d at cw (the certificate line) or kw (the key line).
 */
void tp_cert_check(const char *cert, const struct tp_where *cw,
		   const char *key, const struct tp_where *kw,
		   struct tp_diags *d);

#endif
