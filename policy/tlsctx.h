/*
 * tlsctx.h - the wolfSSL server contexts of a policy
 *
 * tlspolicyd does the handshake with these contexts, and `tlspolicyctl
 * validate` builds the very same ones, so that a policy validate accepts
 * is one tlspolicyd can start with: whatever the installed wolfSSL cannot
 * do (a protocol floor it was built without, a suite list it rejects, a
 * certificate or key it cannot load) is found before anything runs.
 * Not part of the shim's build (it links no TLS library).
 *
 * Certificates and keys are read into memory from a descriptor and loaded
 * from there (the key's copy is wiped): the descriptor may come from a
 * process that can open files this one cannot (tlspolicyd's key helper,
 * keyhelper.h), so a key readable by root only works at every reload.
 */
#ifndef TP_TLSCTX_H
#define TP_TLSCTX_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "policy.h"

/* the largest certificate chain or key file read (a chain of a few certificates is ~10 KiB) */
#define TP_TLSCTX_FILE_MAX (1024 * 1024)

/*
 * How a context gets its certificate and key files: open(arg, path, error,
 * size) returns a descriptor open for reading on path (the caller closes
 * it), or -1 with the reason in error.  A NULL struct or open: open(2)
 * here, with this process's rights.
 */
struct tp_tlsctx_files {
	int (*open)(void *arg, const char *path, char *error, size_t size);
	void *arg;
};

/*
 * tp_tlsctx_new - the server context for rule r: its floor, its suites
 * (with enforce = audit: every suite this wolfSSL has, the rule's first,
 * and a floor of TLS 1.1, so the session can be checked afterwards), its
 * certificate chain and key.  NULL on failure, with the wolfSSL call that
 * failed and its argument in error ("wolfSSL_CTX_SetMinVersion(TLSv1.0)
 * failed: ...") and, if key_r is not NULL, the policy key whose value it
 * was in *key_r (TP_KEY_MIN_PROTOCOL, TP_KEY_BAN_CIPHERS, TP_KEY_CERTIFICATE,
 * TP_KEY_PRIVATE_KEY), for a diagnostic at the line that set it.
 */
WOLFSSL_CTX *tp_tlsctx_new(const struct tp_rule *r, const struct tp_tlsctx_files *files,
			   enum tp_key_id *key_r, char *error, size_t size);

/*
 * tp_tlsctx_new_all - one context per rule of p where the module does TLS
 * (tls_by = module, tls not refuse), NULL in the other slots; an array of
 * tp_policy_rule_count(p) entries.  NULL on failure, with the failing
 * rule's index in *failed_r, its key in *key_r (if not NULL) and the
 * reason in error.
 */
WOLFSSL_CTX **tp_tlsctx_new_all(const struct tp_policy *p, const struct tp_tlsctx_files *files,
				size_t *failed_r, enum tp_key_id *key_r,
				char *error, size_t size);

/* tp_tlsctx_free_all - free the n contexts and the array; *ctx set to NULL */
void tp_tlsctx_free_all(WOLFSSL_CTX ***ctx, size_t n);

#endif
