/*
 * mkman.c - write tlspolicy.conf(5) from its template and the key table
 *
 * The template's lines @KEYS@, @PROFILES@ and @CLASSES@ are replaced by
 * the keys, profiles and cipher classes as the library defines them, so
 * the manual cannot drift from the code.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ciphers.h"
#include "keys.h"

/* roff - text with the characters roff treats specially escaped */
static void roff(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", stdout);
		else if (*s == '-')
			fputs("\\-", stdout);
		else
			putchar(*s);
	}
}

static const char *scope_text(enum tp_key_scope s)
{
	switch (s) {
	case TP_SCOPE_GLOBAL:
		return "[global] only";
	case TP_SCOPE_PORT:
		return "[port] sections only; required there";
	case TP_SCOPE_ANY:
		break;
	}
	return "[global], or a [port] section for that port";
}

static void keys(void)
{
	for (int i = 0; i < TP_KEY_COUNT; i++) {
		const struct tp_key *k = &tp_keys[i];

		printf(".TP\n.B %s\n", k->name);
		roff(k->help);
		printf(".\n");
		roff(k->doc);
		printf("\n.RS\n.PP\nWhere: ");
		roff(scope_text(k->scope));
		printf(".\nDefault: ");
		if (k->def != NULL && k->def[0] != '\0')
			printf("\\fB%s\\fR", k->def);
		else
			roff(k->def_doc ? k->def_doc : "none");
		printf(".\n");
		if (k->type == TP_TYPE_SECONDS || k->type == TP_TYPE_COUNT)
			printf("Range: %ld to %ld.\n", k->min, k->max);
		for (int v = 0; k->values != NULL && k->values[v].word != NULL; v++) {
			printf(".IP \\(bu 2\n\\fB%s\\fR: ", k->values[v].word);
			roff(k->values[v].help);
			printf("\n");
		}
		printf(".RE\n");
	}
}

static void profiles(void)
{
	for (size_t i = 0; i < tp_profile_count; i++) {
		printf(".TP\n.B %s\n", tp_profiles[i].name);
		printf("Floor %s. ", tp_version_name(tp_profiles[i].floor));
		roff(tp_profiles[i].help);
		printf(".\n");
	}
}

static void classes(void)
{
	for (size_t i = 0; i < tp_cipher_class_count; i++) {
		printf(".TP\n.B %s\n", tp_cipher_classes[i].name);
		roff(tp_cipher_classes[i].help);
		printf("\n");
	}
}

int main(int argc, char **argv)
{
	char line[4096];
	FILE *f;

	if (argc != 2 || (f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "usage: tp-mkman TEMPLATE > PAGE\n");
		return 2;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strcmp(line, "@KEYS@\n") == 0)
			keys();
		else if (strcmp(line, "@PROFILES@\n") == 0)
			profiles();
		else if (strcmp(line, "@CLASSES@\n") == 0)
			classes();
		else
			fputs(line, stdout);
	}
	fclose(f);
	return 0;
}
