/*
 * validate.c - tlspolicyctl validate: check a policy without publishing it
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "json.h"
#include "policy.h"
#include "tlsctx.h"

/*
 * where_set - the file, line and section that set key for rule r: the
 * port's section or [global].  Line 0 (and the main file) for a default.
 */
static int where_set(const struct tp_policy *p, const struct tp_rule *r, enum tp_key_id key,
		     char *file, size_t size, const char **section_r)
{
	const char *got, *gsrc, *colon;
	char src[4200];

	/* the source may be the library's buffer, rewritten by the next call */
	tp_policy_value(p, r, key, &got);
	snprintf(src, sizeof(src), "%s", got);
	tp_policy_value(p, NULL, key, &gsrc);
	*section_r = strcmp(src, gsrc) == 0 ? "global" : r->section;
	colon = strrchr(src, ':');
	if (colon == NULL || strcmp(src, "default") == 0) {
		snprintf(file, size, "%s", tp_policy_file(p, 0));
		return 0;
	}
	snprintf(file, size, "%.*s", (int)(colon - src), src);
	return atoi(colon + 1);
}

/* lowest_version - the lowest protocol floor this wolfSSL accepts, for the advice */
static const char *lowest_version(void)
{
	static const int wolf[] = { WOLFSSL_TLSV1, WOLFSSL_TLSV1_1, WOLFSSL_TLSV1_2, WOLFSSL_TLSV1_3 };
	static const char *const name[] = { "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3" };
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	size_t i = 0;

	while (ctx != NULL && i < 3 && wolfSSL_CTX_SetMinVersion(ctx, wolf[i]) != WOLFSSL_SUCCESS)
		i++;
	wolfSSL_CTX_free(ctx);
	return name[i];
}

/* context_advice - what to write instead, for the key a context failed on */
static void context_advice(enum tp_key_id key, int from_profile, const char *error, char *out,
			   size_t size)
{
	if (key == TP_KEY_MIN_PROTOCOL && from_profile) {
		snprintf(out, size, "the installed wolfSSL cannot do this profile's floor (%s), so "
			 "tlspolicyd would not start; add min_protocol = TLSv1.2 (RFC 8996; the lowest "
			 "this wolfSSL has is %s)", error, lowest_version());
		return;
	}
	switch (key) {
	case TP_KEY_MIN_PROTOCOL:
		snprintf(out, size, "the installed wolfSSL cannot do this floor (%s), so tlspolicyd would "
			 "not start; write min_protocol = TLSv1.2 (RFC 8996; the lowest this wolfSSL "
			 "has is %s)", error, lowest_version());
		break;
	case TP_KEY_PROFILE:
	case TP_KEY_BAN_CIPHERS:
		snprintf(out, size, "the installed wolfSSL takes none of the suites left (%s), so "
			 "tlspolicyd would not start; ban fewer suites or choose another profile", error);
		break;
	default:
		snprintf(out, size, "wolfSSL cannot use it (%s), so tlspolicyd would not start", error);
		break;
	}
}

/*
 * check_contexts - build the TLS contexts tlspolicyd will build (tlsctx.h),
 * so that whatever the installed wolfSSL cannot do is an error here, at
 * the line that set it, not a refusal to start
 */
static void check_contexts(const struct tp_policy *p, struct tp_diags *d)
{
	wolfSSL_Init();
	for (size_t i = 0; i < tp_policy_rule_count(p); i++) {
		const struct tp_rule *r = tp_policy_rule(p, i);
		enum tp_key_id key = TP_KEY_CERTIFICATE, at;
		char error[512], file[4096], advice[1200];
		const char *section, *src;
		WOLFSSL_CTX *ctx;
		int line, from_profile;

		if (r->tls_by != TP_BY_MODULE || r->tls == TP_TLS_REFUSE)
			continue;
		ctx = tp_tlsctx_new(r, NULL, &key, error, sizeof(error));
		if (ctx != NULL) {
			wolfSSL_CTX_free(ctx);
			continue;
		}
		if (key == TP_KEY_BAN_CIPHERS && strncmp(tp_policy_value(p, r, key, &src) ? src : "default",
							 "default", 7) == 0)
			key = TP_KEY_PROFILE;	/* the profile's suites, nothing banned by hand */
		tp_policy_value(p, r, key, &src);
		from_profile = strncmp(src, "profile ", 8) == 0;
		at = from_profile ? TP_KEY_PROFILE : key;	/* the line that chose it */
		line = where_set(p, r, at, file, sizeof(file), &section);
		context_advice(key, from_profile, error, advice, sizeof(advice));
		tp_diags_add(d, TP_ERROR, file, line, section, tp_keys[at].name,
			     tp_policy_value(p, r, at, &src), "%s", advice);
	}
	wolfSSL_Cleanup();
}

static void print_json(const struct tp_diags *d)
{
	printf("[");
	for (size_t i = 0; i < tp_diags_len(d); i++) {
		const struct tp_diag *x = tp_diags_get(d, i);
		char *text = tp_diag_format(x);

		printf("%s\n {", i ? "," : "");
		json_kv(stdout, 0, "file", x->file);
		printf(",\"line\":%d", x->line);
		json_kv(stdout, 1, "severity", tp_severity_name(x->severity));
		json_kv(stdout, 1, "section", x->section);
		json_kv(stdout, 1, "key", x->key);
		json_kv(stdout, 1, "value", x->value);
		json_kv(stdout, 1, "message", x->message);
		json_kv(stdout, 1, "text", text);
		printf("}");
		free(text);
	}
	printf("%s]\n", tp_diags_len(d) ? "\n" : "");
}

static void print_text(const struct tp_diags *d)
{
	for (size_t i = 0; i < tp_diags_len(d); i++) {
		char *text = tp_diag_format(tp_diags_get(d, i));

		fprintf(stderr, "%s\n", text ? text : "out of memory");
		free(text);
	}
}

static const char *plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

int ctl_validate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "strict", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	int strict = 0, json = 0, c, rc;
	struct tp_diags *d;
	struct tp_policy *p;
	size_t errors, warnings;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 's': strict = 1; break;
		case 'j': json = 1; break;
		default:
			fprintf(stderr, "tlspolicyctl validate: unknown option \"%s\"\n", argv[optind - 1]);
			return ctl_usage("validate");
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tlspolicyctl validate: unexpected argument \"%s\" (the file goes after -c)\n", argv[optind]);
		return ctl_usage("validate");
	}
	if (path == NULL)
		path = tp_policy_default_path();
	d = tp_diags_new();
	if (d == NULL)
		return 1;
	p = tp_policy_load(path, TP_LOAD_CHECK_FILES, d);
	if (p != NULL) {
		const char *files[64];
		size_t n = 0;

		check_contexts(p, d);
		for (; n < tp_policy_file_count(p) && n < 64; n++)
			files[n] = tp_policy_file(p, n);
		tp_diags_sort(d, files, n);
	}
	errors = tp_diags_count(d, TP_ERROR);
	warnings = tp_diags_count(d, TP_WARNING);
	rc = errors > 0 || (strict && warnings > 0);
	if (json) {
		print_json(d);
	} else {
		print_text(d);
		if (errors > 0)
			printf("%s: %zu %s, %zu %s; the policy is invalid\n", path, errors,
			       plural(errors, "error", "errors"), warnings,
			       plural(warnings, "warning", "warnings"));
		else if (rc)
			printf("%s: %zu %s, failing because of --strict\n", path, warnings,
			       plural(warnings, "warning", "warnings"));
		else
			printf("%s: valid, %zu %s managed, %zu %s\n", path,
			       tp_policy_rule_count(p),
			       plural(tp_policy_rule_count(p), "port", "ports"), warnings,
			       plural(warnings, "warning", "warnings"));
	}
	tp_policy_free(&p);
	tp_diags_free(&d);
	return rc;
}
