/*
 * tlsctx.c - the wolfSSL server contexts of a policy
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* call_failed - say which call failed on what, and why in wolfSSL's words; -1 */
static int call_failed(char *error, size_t size, const char *call, const char *arg, int rc)
{
	char why[WOLFSSL_MAX_ERROR_SZ];

	wolfSSL_ERR_error_string_n((unsigned long)(rc < 0 ? -rc : rc), why, sizeof(why));
	snprintf(error, size, "%s(%s) failed: %s", call, arg, why);
	return -1;
}

static WOLFSSL_CTX *failed(WOLFSSL_CTX *ctx, char *error, size_t size, const char *call,
			   const char *arg, int rc)
{
	call_failed(error, size, call, arg, rc);
	wolfSSL_CTX_free(ctx);
	return NULL;
}

static int open_here(void *arg, const char *path, char *error, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	(void)arg;
	if (fd < 0)
		snprintf(error, size, "open(%s) failed: %s", path, strerror(errno));
	return fd;
}

/* read_fd - a regular file's bytes, at most TP_TLSCTX_FILE_MAX; NULL with error */
static unsigned char *read_fd(int fd, const char *path, size_t *len_r, char *error, size_t size)
{
	struct stat st;
	unsigned char *buf;
	size_t len = 0;
	ssize_t n;

	const char *why = NULL;

	if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_size > TP_TLSCTX_FILE_MAX)
		why = "larger than 1 MiB";
	if (why != NULL) {
		snprintf(error, size, "read(%s) failed: %s", path, why);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(error, size, "read(%s) failed: out of memory", path);
		return NULL;
	}
	while (len < (size_t)st.st_size &&
	       ((n = read(fd, buf + len, (size_t)st.st_size - len)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	*len_r = len;
	return buf;
}

/* file_bytes - path's contents through files (or open(2)); NULL with error */
static unsigned char *file_bytes(const struct tp_tlsctx_files *files, const char *path,
				 size_t *len_r, char *error, size_t size)
{
	unsigned char *buf;
	int fd;

	if (path == NULL) {
		snprintf(error, size, "no file set");
		return NULL;
	}
	fd = files != NULL && files->open != NULL ? files->open(files->arg, path, error, size) :
	     open_here(NULL, path, error, size);
	if (fd < 0)
		return NULL;
	buf = read_fd(fd, path, len_r, error, size);
	close(fd);
	return buf;
}

/* wipe_free - a key's bytes do not outlive their use */
static void wipe_free(unsigned char *buf, size_t len)
{
	if (buf == NULL)
		return;
	explicit_bzero(buf, len);
	free(buf);
}

/* load_pair - the certificate chain and the key, from memory; 0 or -1 */
static int load_pair(WOLFSSL_CTX *ctx, const struct tp_rule *r, const struct tp_tlsctx_files *files,
		     enum tp_key_id *key_r, char *error, size_t size)
{
	size_t clen = 0, klen = 0;
	unsigned char *cert, *key;
	int rc;

	*key_r = TP_KEY_CERTIFICATE;
	cert = file_bytes(files, r->certificate, &clen, error, size);
	if (cert == NULL)
		return -1;
	rc = wolfSSL_CTX_use_certificate_chain_buffer(ctx, cert, (long)clen);
	wipe_free(cert, clen);
	if (rc != WOLFSSL_SUCCESS)
		return call_failed(error, size, "wolfSSL_CTX_use_certificate_chain_buffer",
				   r->certificate, rc);
	*key_r = TP_KEY_PRIVATE_KEY;
	key = file_bytes(files, r->private_key, &klen, error, size);
	if (key == NULL)
		return -1;
	rc = wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)klen, WOLFSSL_FILETYPE_PEM);
	wipe_free(key, klen);
	if (rc != WOLFSSL_SUCCESS)
		return call_failed(error, size, "wolfSSL_CTX_use_PrivateKey_buffer",
				   r->private_key, rc);
	rc = wolfSSL_CTX_check_private_key(ctx);
	if (rc != WOLFSSL_SUCCESS)
		return call_failed(error, size, "wolfSSL_CTX_check_private_key", r->private_key, rc);
	return 0;
}

WOLFSSL_CTX *tp_tlsctx_new(const struct tp_rule *r, const struct tp_tlsctx_files *files,
			   enum tp_key_id *key_r, char *error, size_t size)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	char list[16384];
	int audit = r->enforce == TP_ENFORCE_AUDIT, rc;
	enum tp_version floor = audit ? TP_TLS11 : r->min_version;
	enum tp_key_id key, *k = key_r != NULL ? key_r : &key;

	*k = TP_KEY_CERTIFICATE;
	if (ctx == NULL) {
		snprintf(error, size, "wolfSSL_CTX_new failed: out of memory");
		return NULL;
	}
	if (audit)
		audit_suites(r, list, sizeof(list));
	else
		snprintf(list, sizeof(list), "%s%s%s", r->tls13_suites,
			 r->tls13_suites[0] && r->tls12_suites[0] ? ":" : "", r->tls12_suites);
	*k = TP_KEY_MIN_PROTOCOL;
	rc = wolfSSL_CTX_SetMinVersion(ctx, wolf_version(floor));
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_SetMinVersion", tp_version_name(floor), rc);
	*k = TP_KEY_BAN_CIPHERS;
	rc = wolfSSL_CTX_set_cipher_list(ctx, list);
	if (rc != WOLFSSL_SUCCESS)
		return failed(ctx, error, size, "wolfSSL_CTX_set_cipher_list", list, rc);
	if (load_pair(ctx, r, files, k, error, size) < 0) {
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

WOLFSSL_CTX **tp_tlsctx_new_all(const struct tp_policy *p, const struct tp_tlsctx_files *files,
				size_t *failed_r, enum tp_key_id *key_r,
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
		ctx[i] = tp_tlsctx_new(r, files, key_r, error, size);
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
