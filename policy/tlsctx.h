/*
 * tlsctx.h - the wolfSSL server contexts of a policy
 *
 * tlspolicyd does the handshake with these contexts, and `tlspolicyctl
 * validate` builds the very same ones, so that a policy validate accepts
 * is one tlspolicyd can start with: whatever the installed wolfSSL cannot
 * do (a protocol floor it was built without, a suite list it rejects, a
 * certificate or key it cannot load) is found before anything runs.
 * Not part of the shim's build (it links no TLS library).
 */
#ifndef TP_TLSCTX_H
#define TP_TLSCTX_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "policy.h"

/*
 * tp_tlsctx_new - the server context for rule r: its floor, its suites
 * (with enforce = audit: every suite this wolfSSL has, the rule's first,
 * and a floor of TLS 1.1, so the session can be checked afterwards), its
 * certificate chain and key.  NULL on failure, with the wolfSSL call that
 * failed and its argument in error ("wolfSSL_CTX_SetMinVersion(TLSv1.0)
 * failed: this wolfSSL was built without it").
 */
WOLFSSL_CTX *tp_tlsctx_new(const struct tp_rule *r, char *error, size_t size);

/*
 * tp_tlsctx_new_all - one context per rule of p where the module does TLS
 * (tls_by = module, tls not refuse), NULL in the other slots; an array of
 * tp_policy_rule_count(p) entries.  NULL on failure, with the failing
 * rule's index in *failed_r and the reason in error.
 */
WOLFSSL_CTX **tp_tlsctx_new_all(const struct tp_policy *p, size_t *failed_r,
				char *error, size_t size);

/* tp_tlsctx_free_all - free the n contexts and the array; *ctx set to NULL */
void tp_tlsctx_free_all(WOLFSSL_CTX ***ctx, size_t n);

#endif
