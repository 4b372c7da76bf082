/*
 * ini.c - iniparser plus a line-numbering pre-scan
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iniparser/iniparser.h>

#include "diag.h"
#include "ini.h"
#include "util.h"

/* quiet - iniparser prints to stderr by default; the library never prints */
static int quiet(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

static char *strip(char *s)
{
	size_t len;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	return s;
}

static void lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

static int add_entry(struct tp_ini *ini, size_t *cap, enum tp_ini_kind kind,
		     int line, const char *section, const char *key)
{
	struct tp_ini_entry *e;

	if (ini->len == *cap) {
		size_t n = *cap ? *cap * 2 : 32;
		e = realloc(ini->entries, n * sizeof(*e));
		if (e == NULL)
			return -1;
		ini->entries = e;
		*cap = n;
	}
	e = &ini->entries[ini->len];
	e->kind = kind;
	e->line = line;
	e->section = strdup(section);
	e->key = key ? strdup(key) : NULL;
	e->value = NULL;
	if (e->section == NULL || (key != NULL && e->key == NULL)) {
		free(e->section);
		free(e->key);
		return -1;
	}
	ini->len++;
	return 0;
}

/*
 * classify - one logical line, by iniparser 4.1's rules: empty, comment
 * (# or ;), [section] (up to the first ]), key = value (text before the
 * first =, at least one character), anything else an error.
 * Returns 0 if fine, -1 if it is a syntax error (reported).
 */
static int classify(struct tp_ini *ini, size_t *cap, char *text, int line,
		    char *section, size_t section_size, const char *path,
		    struct tp_diags *d)
{
	char *s = strip(text), *eq;
	size_t len = strlen(s);

	if (len == 0 || s[0] == '#' || s[0] == ';')
		return 0;
	if (s[0] == '[' && s[len - 1] == ']') {
		char *end = strchr(s + 1, ']');

		/* iniparser ends a section name at its first "]" */
		if (end != s + len - 1) {
			tp_diags_add(d, TP_ERROR, path, line, NULL, NULL, s,
				     "syntax error: a section name ends at its first \"]\", so \"%s\" cannot be read; write IPv6 addresses without brackets, e.g. [port ::1:993]",
				     s);
			return -1;
		}
		*end = '\0';
		snprintf(section, section_size, "%s", strip(s + 1));
		lower(section);
		return add_entry(ini, cap, TP_INI_SECTION, line, section, NULL);
	}
	if (s[0] == '[') {
		tp_diags_add(d, TP_ERROR, path, line, NULL, NULL, s,
			     "syntax error: \"%s\" opens a section but has no closing \"]\" at the end of the line; write [global] or [port N] alone on the line (comments go on their own line)",
			     s);
		return -1;
	}
	eq = strchr(s, '=');
	if (eq == NULL || eq == s) {
		tp_diags_add(d, TP_ERROR, path, line, section[0] ? section : NULL,
			     NULL, s,
			     "syntax error: \"%s\" is not \"key = value\", a [section] or a comment (# or ;)",
			     s);
		return -1;
	}
	*eq = '\0';
	s = strip(s);
	lower(s);
	return add_entry(ini, cap, TP_INI_KEY, line, section, s);
}

/* read_all - the whole file, bounded */
static char *read_all(const char *path, size_t *len_r, struct tp_diags *d)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL,
			     "cannot read the policy file: %s", strerror(errno));
		return NULL;
	}
	buf = malloc(TP_INI_MAX_FILE + 1);
	if (buf == NULL) {
		fclose(f);
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL, "out of memory");
		return NULL;
	}
	n = fread(buf, 1, TP_INI_MAX_FILE + 1, f);
	if (ferror(f) || n > TP_INI_MAX_FILE) {
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL,
			     ferror(f) ? "cannot read the policy file: read error"
				       : "the file is larger than 1 MiB; a policy is a few dozen lines: is this the right file?");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len_r = n;
	return buf;
}

/* blank - replace a physical line range [from, to) with spaces, keep \n */
static void blank(char *from, const char *to)
{
	for (; from < to; from++)
		if (*from != '\n')
			*from = ' ';
}

/*
 * scan - split buf into logical lines (a trailing backslash continues a
 * line, as in iniparser), classify each.  Bad lines are blanked in buf.
 * Returns the number of bad lines.
 */
static int scan(struct tp_ini *ini, char *buf, size_t buflen, const char *path,
		struct tp_diags *d)
{
	char section[TP_INI_MAX_LINE + 1] = "";
	char logical[TP_INI_MAX_LINE * 4 + 1];
	size_t llen = 0, cap = 0;
	int lineno = 0, start = 0, bad = 0;
	char *p = buf, *group = buf;

	while (p < buf + buflen) {
		char *nl = memchr(p, '\n', (size_t)(buf + buflen - p));
		char *end = nl ? nl : buf + buflen;
		size_t plen = (size_t)(end - p);

		lineno++;
		if (llen == 0) {
			start = lineno;
			group = p;
		}
		if (plen > TP_INI_MAX_LINE || memchr(p, '\0', plen) != NULL) {
			tp_diags_add(d, TP_ERROR, path, lineno, NULL, NULL, NULL,
				     plen > TP_INI_MAX_LINE ?
				     "line longer than 1000 characters; split the value or shorten it" :
				     "line contains a NUL byte; is this a text file?");
			blank(group, end);
			bad++;
			llen = 0;
			p = end + (nl != NULL);
			continue;
		}
		/* trailing whitespace off, then a backslash continues the line */
		while (plen > 0 && isspace((unsigned char)p[plen - 1]))
			plen--;
		if (llen + plen >= sizeof(logical)) {
			tp_diags_add(d, TP_ERROR, path, start, NULL, NULL, NULL,
				     "continued line longer than 4000 characters; shorten it");
			blank(group, end);
			bad++;
			llen = 0;
			p = end + (nl != NULL);
			continue;
		}
		memcpy(logical + llen, p, plen);
		llen += plen;
		logical[llen] = '\0';
		if (plen > 0 && p[plen - 1] == '\\' && nl != NULL) {
			llen--;	/* the backslash goes; the next line follows */
			p = end + 1;
			continue;
		}
		if (classify(ini, &cap, logical, start, section, sizeof(section),
			     path, d) < 0) {
			blank(group, end);
			bad++;
		}
		llen = 0;
		p = end + (nl != NULL);
	}
	return bad;
}

/* load_dict - iniparser on the file, or on the blanked copy in a memfd */
static dictionary *load_dict(const char *path, const char *buf, size_t len,
			     int sanitized)
{
	char fdpath[64];
	dictionary *dict;
	int fd;

	iniparser_set_error_callback(quiet);
	if (!sanitized)
		return iniparser_load(path);
	fd = memfd_create("tlspolicy-ini", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (write(fd, buf, len) != (ssize_t)len) {
		close(fd);
		return NULL;
	}
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	dict = iniparser_load(fdpath);
	close(fd);
	return dict;
}

int tp_ini_read(const char *path, struct tp_ini *ini, struct tp_diags *d)
{
	size_t len = 0;
	char *buf = read_all(path, &len, d);
	int bad;
	dictionary *dict;

	*ini = (struct tp_ini){ 0 };
	if (buf == NULL)
		return -1;
	bad = scan(ini, buf, len, path, d);
	dict = load_dict(path, buf, len, bad > 0);
	free(buf);
	if (dict == NULL) {
		/* with bad lines reported already, say only what it costs */
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL,
			     bad ? "not checked further until the syntax errors above are fixed"
				 : "iniparser could not read the file");
		tp_ini_free(ini);
		return 0;
	}
	ini->dict = dict;
	for (size_t i = 0; i < ini->len; i++) {
		struct tp_ini_entry *e = &ini->entries[i];
		char full[2 * TP_INI_MAX_LINE + 2];

		if (e->kind != TP_INI_KEY)
			continue;
		snprintf(full, sizeof(full), "%s:%s", e->section, e->key);
		e->value = iniparser_getstring(dict, full, NULL);
	}
	return 0;
}

void tp_ini_free(struct tp_ini *ini)
{
	for (size_t i = 0; i < ini->len; i++) {
		free(ini->entries[i].section);
		free(ini->entries[i].key);
	}
	free(ini->entries);
	if (ini->dict != NULL)
		iniparser_freedict(ini->dict);
	*ini = (struct tp_ini){ 0 };
}
