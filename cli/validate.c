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
