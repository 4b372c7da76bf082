/*
 * show.c - tlspolicyctl show: the effective policy and where each value
 * came from
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "json.h"
#include "policy.h"

/* key_in - does the key belong in [global] (rule NULL) or a port section? */
static int key_in(const struct tp_key *k, const struct tp_rule *rule)
{
	if (rule == NULL)
		return k->scope != TP_SCOPE_PORT;
	return k->scope != TP_SCOPE_GLOBAL;
}

/* needs_quotes - must a value be quoted for iniparser to read it back? */
static int needs_quotes(const char *v)
{
	return v[0] == '\0' || strpbrk(v, ";#") != NULL || v[0] == ' ' ||
	       v[strlen(v) - 1] == ' ';
}

static void print_suites(FILE *f, const char *label, const char *list)
{
	fprintf(f, "; %s: %s\n", label, list[0] ? list : "(none)");
}

static void show_section_ini(FILE *f, const struct tp_policy *p, const struct tp_rule *rule)
{
	fprintf(f, "\n[%s]\n", rule ? rule->section : "global");
	if (rule != NULL && rule->enforce == TP_ENFORCE_AUDIT)
		fprintf(f, "; AUDIT MODE: this port refuses nothing; what the policy would refuse is only\n"
			"; logged (action=would-refuse). Set enforce = yes once the logs are clean.\n");
	/* a port's own keys (protocol, tls) first, then the inheritable ones */
	for (int i = 0; i < 2 * TP_KEY_COUNT; i++) {
		int k = i % TP_KEY_COUNT;
		const char *src, *v;
		char line[4200];

		if (!key_in(&tp_keys[k], rule) ||
		    (tp_keys[k].scope == TP_SCOPE_PORT) != (i < TP_KEY_COUNT))
			continue;
		v = tp_policy_value(p, rule, k, &src);
		if (v == NULL) {
			fprintf(f, "; %s: not set\n", tp_keys[k].name);
			continue;
		}
		if (needs_quotes(v))
			snprintf(line, sizeof(line), "%s = \"%s\"", tp_keys[k].name, v);
		else
			snprintf(line, sizeof(line), "%s = %s", tp_keys[k].name, v);
		fprintf(f, "%-39s ; %s\n", line, src);
	}
	if (rule != NULL && rule->tls != TP_TLS_REFUSE) {
		print_suites(f, "TLS 1.2 and below, suites", rule->tls12_suites);
		print_suites(f, "TLS 1.3 suites", rule->tls13_suites);
	}
}

void ctl_show_ini(FILE *f, const struct tp_policy *p)
{
	fprintf(f, "# tlspolicy: the effective policy, read from\n");
	for (size_t i = 0; i < tp_policy_file_count(p); i++)
		fprintf(f, "#   %s\n", tp_policy_file(p, i));
	fprintf(f, "# After each value: where it came from.\n");
	show_section_ini(f, p, NULL);
	for (size_t i = 0; i < tp_policy_rule_count(p); i++)
		show_section_ini(f, p, tp_policy_rule(p, i));
}

static void json_settings(const struct tp_policy *p, const struct tp_rule *rule)
{
	int first = 1;

	printf("{");
	for (int k = 0; k < TP_KEY_COUNT; k++) {
		const char *src = "unset", *v;

		if (!key_in(&tp_keys[k], rule))
			continue;
		v = tp_policy_value(p, rule, k, &src);
		printf("%s", first ? "" : ",");
		first = 0;
		json_str(stdout, tp_keys[k].name);
		printf(":{");
		json_kv(stdout, 0, "value", v);
		json_kv(stdout, 1, "source", v ? src : "unset");
		printf("}");
	}
	printf("}");
}

static void json_list(const char *list)
{
	char *copy = strdup(list), *sp = NULL;
	int first = 1;

	printf("[");
	for (char *t = copy ? strtok_r(copy, ":", &sp) : NULL; t; t = strtok_r(NULL, ":", &sp)) {
		printf("%s", first ? "" : ",");
		json_str(stdout, t);
		first = 0;
	}
	printf("]");
	free(copy);
}

static void json_classes(unsigned bits)
{
	int first = 1;

	printf("[");
	for (size_t i = 0; i < tp_cipher_class_count; i++) {
		if (!(bits & tp_cipher_classes[i].bit))
			continue;
		printf("%s", first ? "" : ",");
		json_str(stdout, tp_cipher_classes[i].name);
		first = 0;
	}
	printf("]");
}

static void show_json(const struct tp_policy *p)
{
	printf("{\"files\":[");
	for (size_t i = 0; i < tp_policy_file_count(p); i++) {
		printf("%s", i ? "," : "");
		json_str(stdout, tp_policy_file(p, i));
	}
	printf("],\n\"global\":");
	json_settings(p, NULL);
	printf(",\n\"ports\":[");
	for (size_t i = 0; i < tp_policy_rule_count(p); i++) {
		const struct tp_rule *r = tp_policy_rule(p, i);

		printf("%s\n {", i ? "," : "");
		json_kv(stdout, 0, "section", r->section);
		printf(",\"port\":%d", r->port);
		json_kv(stdout, 1, "address", r->address);
		printf(",\"settings\":");
		json_settings(p, r);
		printf(",\"resolved\":{");
		json_kv(stdout, 0, "protocol", tp_protocol_name(r->protocol));
		json_kv(stdout, 1, "tls", tp_tls_mode_name(r->tls));
		json_kv(stdout, 1, "profile", r->profile->name);
		json_kv(stdout, 1, "min_protocol", tp_version_name(r->min_version));
		printf(",\"banned_classes\":");
		json_classes(r->ban_classes);
		printf(",\"tls12_suites\":");
		json_list(r->tls12_suites);
		printf(",\"tls13_suites\":");
		json_list(r->tls13_suites);
		printf(",\"refuse_alt_port\":%d}}", r->refuse_alt_port);
	}
	printf("\n]}\n");
}

static const char *profiles_allowing(const struct tp_suite *s)
{
	static char buf[128];

	buf[0] = '\0';
	for (size_t i = 0; i < tp_profile_count; i++) {
		if (!tp_profiles[i].allows(s))
			continue;
		if (buf[0])
			strcat(buf, ",");
		strcat(buf, tp_profiles[i].name);
	}
	return buf[0] ? buf : "-";
}

static const char *class_names(unsigned bits)
{
	static char buf[256];

	buf[0] = '\0';
	for (size_t i = 0; i < tp_cipher_class_count; i++) {
		if (!(bits & tp_cipher_classes[i].bit))
			continue;
		if (buf[0])
			strcat(buf, ",");
		strcat(buf, tp_cipher_classes[i].name);
	}
	return buf[0] ? buf : "-";
}

static int show_ciphers(int json)
{
	size_t n;
	const struct tp_suite *s = tp_suites(&n);

	if (s == NULL) {
		fprintf(stderr, "tlspolicyctl: wolfSSL listed no cipher suites\n");
		return 1;
	}
	if (json)
		printf("[");
	else
		printf("%-36s %-48s %-24s %s\n", "# wolfSSL name", "IANA name", "classes", "profiles");
	for (size_t i = 0; i < n; i++) {
		if (json) {
			printf("%s\n {", i ? "," : "");
			json_kv(stdout, 0, "name", s[i].name);
			json_kv(stdout, 1, "iana", s[i].iana);
			printf(",\"tls13\":%s,\"classes\":", s[i].tls13 ? "true" : "false");
			json_classes(s[i].classes);
			json_kv(stdout, 1, "profiles", profiles_allowing(&s[i]));
			printf("}");
		} else {
			printf("%-36s %-48s %-24s %s\n", s[i].name, s[i].iana,
			       class_names(s[i].classes), profiles_allowing(&s[i]));
		}
	}
	if (json)
		printf("\n]\n");
	else {
		printf("\n# classes:\n");
		for (size_t i = 0; i < tp_cipher_class_count; i++)
			printf("#   %-13s %s\n", tp_cipher_classes[i].name, tp_cipher_classes[i].help);
	}
	return 0;
}

int ctl_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "ciphers", no_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	int json = 0, ciphers = 0, c;
	struct tp_policy *p;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'j': json = 1; break;
		case 'C': ciphers = 1; break;
		default:
			fprintf(stderr, "tlspolicyctl show: unknown option \"%s\"\n", argv[optind - 1]);
			return ctl_usage("show");
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tlspolicyctl show: unexpected argument \"%s\"\n", argv[optind]);
		return ctl_usage("show");
	}
	if (ciphers)
		return show_ciphers(json);
	p = ctl_load(path, 0);
	if (p == NULL)
		return 1;
	if (json)
		show_json(p);
	else
		ctl_show_ini(stdout, p);
	tp_policy_free(&p);
	return 0;
}
