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
#include "keys.h"
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
		     int line, const char *section, const char *key,
		     const char *raw)
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
	e->raw = raw ? strdup(raw) : NULL;
	e->value = NULL;
	if (e->section == NULL || (key != NULL && e->key == NULL) ||
	    (raw != NULL && e->raw == NULL)) {
		free(e->section);
		free(e->key);
		free(e->raw);
		return -1;
	}
	ini->len++;
	return 0;
}

/*
 * raw_value - the value after "=", by iniparser 4.1's rules: "..." or '...'
 * up to the closing quote, otherwise up to a ; or # comment, stripped.
 */
static char *raw_value(char *v)
{
	char *close;

	v = strip(v);
	if ((v[0] == '"' || v[0] == '\'') && v[1] != '\0' &&
	    (close = strchr(v + 1, v[0])) != NULL && close > v + 1) {
		*close = '\0';
		return v + 1;
	}
	v[strcspn(v, ";#")] = '\0';
	v = strip(v);
	if (strcmp(v, "\"\"") == 0 || strcmp(v, "''") == 0)
		v[0] = '\0';
	return v;
}

/* known_key_typo - "protocol smtp": a key and value without the "=" */
static void no_equals(const char *s, const char *section, const char *path,
		      int line, struct tp_diags *d)
{
	char word[64], rest[TP_INI_MAX_LINE + 1];

	if (sscanf(s, "%63s %1000[^\n]", word, rest) == 2 && tp_key_lookup(word) != NULL)
		tp_diags_add(d, TP_ERROR, path, line, section[0] ? section : NULL,
			     NULL, s,
			     "syntax error: \"%s\" has no \"=\"; did you mean \"%s = %s\"?",
			     s, word, rest);
	else
		tp_diags_add(d, TP_ERROR, path, line, section[0] ? section : NULL,
			     NULL, s,
			     "syntax error: \"%s\" is not \"key = value\", a [section] or a comment (# or ;)",
			     s);
}

/*
 * classify - one logical line, by iniparser 4.1's rules: empty, comment
 * (# or ;), [section] (up to the first ]), key = value (text before the
 * first =, at least one character), anything else an error.  Returns 0 if
 * fine, -1 if it is a syntax error (reported and recorded), 1 if it is a
 * broken section header (its keys are then skipped).
 */
static int classify(struct tp_ini *ini, size_t *cap, char *text, int line,
		    char *section, size_t section_size, const char *path,
		    struct tp_diags *d)
{
	char *s = strip(text), *eq;
	size_t len = strlen(s);

	if (len == 0 || s[0] == '#' || s[0] == ';')
		return 0;
	if (s[0] == '[') {
		char *end = strchr(s + 1, ']');

		if (end == s + len - 1) {
			*end = '\0';
			snprintf(section, section_size, "%s", strip(s + 1));
			lower(section);
			return add_entry(ini, cap, TP_INI_SECTION, line, section, NULL, NULL);
		}
		if (s[len - 1] == ']')	/* iniparser ends a section name at its first "]" */
			tp_diags_add(d, TP_ERROR, path, line, NULL, NULL, s,
				     "syntax error: a section name ends at its first \"]\", so \"%s\" cannot be read; write IPv6 addresses without brackets, e.g. [port ::1:993]",
				     s);
		else
			tp_diags_add(d, TP_ERROR, path, line, NULL, NULL, s,
				     "syntax error: \"%s\" opens a section but has no closing \"]\" at the end of the line; write [global] or [port N] alone on the line (comments go on their own line)",
				     s);
		snprintf(section, section_size, "%s", TP_INI_BROKEN_SECTION);
		add_entry(ini, cap, TP_INI_BROKEN, line, section, NULL, NULL);
		return 1;
	}
	eq = strchr(s, '=');
	if (eq == NULL || eq == s) {
		no_equals(s, section, path, line, d);
		add_entry(ini, cap, TP_INI_BROKEN, line, section, NULL, NULL);
		return -1;
	}
	*eq = '\0';
	s = strip(s);
	lower(s);
	return add_entry(ini, cap, TP_INI_KEY, line, section, s, raw_value(eq + 1));
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

/*
 * scan - split buf into logical lines (a trailing backslash continues a
 * line, as in iniparser) and classify each.  out receives the text
 * iniparser is given: the same lines, except that a bad line is emptied
 * and a broken section header becomes a placeholder section, so that the
 * keys after it land nowhere real.  Returns the number of bad lines.
 */
static int scan(struct tp_ini *ini, const char *buf, size_t buflen,
		struct tp_buf *out, const char *path, struct tp_diags *d)
{
	char section[TP_INI_MAX_LINE + 1] = "";
	char logical[TP_INI_MAX_LINE + 1];
	size_t llen = 0, cap = 0;
	int lineno = 0, start = 0, bad = 0, grouplines = 0;
	const char *p = buf, *group = buf;

	while (p < buf + buflen) {
		const char *nl = memchr(p, '\n', (size_t)(buf + buflen - p));
		const char *end = nl ? nl : buf + buflen;
		size_t plen = (size_t)(end - p);
		const char *why = NULL;
		int rc;

		lineno++;
		grouplines++;
		if (llen == 0) {
			start = lineno;
			group = p;
			grouplines = 1;
		}
		if (memchr(p, '\0', plen) != NULL)
			why = "line contains a NUL byte; is this a text file?";
		while (plen > 0 && isspace((unsigned char)p[plen - 1]))
			plen--;
		if (why == NULL && llen + plen > TP_INI_MAX_LINE)
			why = llen ? "continued line longer than 1000 characters; shorten it"
				   : "line longer than 1000 characters; shorten it";
		if (why != NULL) {
			tp_diags_add(d, TP_ERROR, path, llen ? start : lineno, NULL, NULL, NULL, "%s", why);
			add_entry(ini, &cap, TP_INI_BROKEN, start, section, NULL, NULL);
			for (int i = 0; i < grouplines; i++)
				tp_buf_add(out, "\n");
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
		rc = classify(ini, &cap, logical, start, section, sizeof(section), path, d);
		if (rc == 0) {
			tp_buf_addn(out, group, (size_t)(end - group));
			tp_buf_add(out, "\n");
		} else {
			if (rc > 0)
				tp_buf_addf(out, "[%s]", TP_INI_BROKEN_SECTION);
			for (int i = 0; i < grouplines; i++)
				tp_buf_add(out, "\n");
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
	struct tp_buf out = { 0 };
	int bad;
	dictionary *dict;

	*ini = (struct tp_ini){ 0 };
	if (buf == NULL)
		return -1;
	tp_buf_add(&out, "");
	bad = scan(ini, buf, len, &out, path, d);
	free(buf);
	dict = out.oom ? NULL : load_dict(path, out.s, out.len, bad > 0);
	tp_buf_free(&out);
	if (dict == NULL) {
		tp_diags_add(d, TP_ERROR, path, 0, NULL, NULL, NULL,
			     "iniparser could not read the file (out of memory?)");
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
		free(ini->entries[i].raw);
	}
	free(ini->entries);
	if (ini->dict != NULL)
		iniparser_freedict(ini->dict);
	*ini = (struct tp_ini){ 0 };
}
