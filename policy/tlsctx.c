/*
 * tlsctx.c - the wolfSSL server contexts of a policy
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ciphers.h"
#include "tlsctx.h"
#include "util.h"

/* wolf_version - wolfSSL's number for a protocol floor */
static int wolf_version(enum tp_version v)
{
	switch (v) {
	case TP_TLS10: return WOLFSSL_TLSV1;
	case TP_TLS11: return WOLFSSL_TLSV1_1;
	case TP_TLS12: return WOLFSSL_TLSV1_2;
	default: return WOLFSSL_TLSV1_3;
	}
}

/*
 * audit_suites - enforce = audit: every suite this wolfSSL has, the
 * rule's own first, so that a client the rule would refuse still gets
 * through and is logged (tlspolicyd checks the session against the rule)
 */
static void audit_suites(const struct tp_rule *r, char *list, size_t size)
{
	size_t n, len = (size_t)snprintf(list, size, "%s%s%s", r->tls13_suites,
					 r->tls13_suites[0] && r->tls12_suites[0] ? ":" : "",
					 r->tls12_suites);
	const struct tp_suite *all = tp_suites(&n);

	for (size_t i = 0; i < n && len < size; i++)
		if (!tp_list_has(list, all[i].name, ':'))
			len += (size_t)snprintf(list + len, size - len, "%s%s", len ? ":" : "", all[i].name);
}

/* failed - say which call failed on what, and why in wolfSSL's words */
static WOLFSSL_CTX *failed(WOLFSSL_CTX *ctx, char *error, size_t size, const char *call,
			   const char *arg, int rc)
{
	char why[WOLFSSL_MAX_ERROR_SZ];

	wolfSSL_ERR_error_string_n((unsigned long)(rc < 0 ? -rc : rc), why, sizeof(why));
	snprintf(error, size, "%s(%s) failed: %s", call, arg, why);
	wolfSSL_CTX_free(ctx);
	return NULL;
}

WOLFSSL_CTX *tp_tlsctx_new(const struct tp_rule *r, char *error, size_t size)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	char list[16384];
	int audit = r->enforce == TP_ENFORCE_AUDIT, rc;
	enum tp_version floor = audit ? TP_TLS11 : r->min_version;

	if (ctx == NULL) {
		snprintf(error, size, "wolfSSL_CTX_new failed: out of memory");
		return NULL;
	}
	if (audit)
		audit_suites(r, list, sizeof(list));
	else
		snprintf(list, sizeof(list), "%s%s%s", r->tls13_suites,
			 r->tls13_suites[0] && r->tls12_suites[0] ? ":" : "", r->tls12_suites);
	rc = wolfSSL_CTX_SetMinVersion(ctx, wolf_version(floor));
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_SetMinVersion", tp_version_name(floor), rc);
	rc = wolfSSL_CTX_set_cipher_list(ctx, list);
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_set_cipher_list", list, rc);
	rc = wolfSSL_CTX_use_certificate_chain_file(ctx, r->certificate);
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_use_certificate_chain_file",
			      r->certificate ? r->certificate : "(none)", rc);
	rc = wolfSSL_CTX_use_PrivateKey_file(ctx, r->private_key, WOLFSSL_FILETYPE_PEM);
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_use_PrivateKey_file",
			      r->private_key ? r->private_key : "(none)", rc);
	rc = wolfSSL_CTX_check_private_key(ctx);
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_check_private_key",
			      r->private_key ? r->private_key : "(none)", rc);
	return ctx;
}

WOLFSSL_CTX **tp_tlsctx_new_all(const struct tp_policy *p, size_t *failed_r,
				char *error, size_t size)
{
	size_t n = tp_policy_rule_count(p);
	WOLFSSL_CTX **ctx = calloc(n ? n : 1, sizeof(*ctx));

	if (ctx == NULL) {
		snprintf(error, size, "out of memory");
		*failed_r = 0;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tp_rule *r = tp_policy_rule(p, i);

		if (r->tls_by != TP_BY_MODULE || r->tls == TP_TLS_REFUSE)
			continue;
		ctx[i] = tp_tlsctx_new(r, error, size);
		if (ctx[i] == NULL) {
			*failed_r = i;
			tp_tlsctx_free_all(&ctx, n);
			return NULL;
		}
	}
	return ctx;
}

void tp_tlsctx_free_all(WOLFSSL_CTX ***ctx, size_t n)
{
	for (size_t i = 0; *ctx != NULL && i < n; i++)
		if ((*ctx)[i] != NULL)
			wolfSSL_CTX_free((*ctx)[i]);
	free(*ctx);
	*ctx = NULL;
}
