/*
 * ini.h - one policy file read with iniparser, plus the line numbers
 * iniparser does not keep
 *
 * iniparser gives values; a pre-scan of the same lines, classified by the
 * same rules as iniparser 4.1, gives each section and key its line and
 * reports syntax errors with file:line.  iniparser rejects a whole file
 * with one bad line, so when the scan finds bad lines iniparser is given
 * a copy with those lines blanked: every other line is still checked.
 */
#ifndef TP_INI_H
#define TP_INI_H

#include <stddef.h>

struct tp_diags;

enum tp_ini_kind {
	TP_INI_SECTION,		/* a [section] header */
	TP_INI_KEY,		/* key = value */
	TP_INI_BROKEN,		/* a line with a syntax error (already reported) */
};

/*
 * The section a broken [header] opens: its keys belong to no real section
 * and are skipped, not merged into the section before it.
 */
#define TP_INI_BROKEN_SECTION "\x7f broken"

struct tp_ini_entry {
	enum tp_ini_kind kind;
	int line;
	char *section;		/* lower-cased, as iniparser stores it */
	char *key;		/* lower-cased; NULL for a section header */
	const char *value;	/* the value; NULL for a section header */
	char *raw;		/* the value as the scan read it (iniparser's rules) */
};

struct tp_ini {
	struct tp_ini_entry *entries;
	size_t len;
	void *dict;		/* iniparser dictionary */
};

/*
 * tp_ini_read - read path into ini; problems go to d.  Returns -1 if the
 * file could not be read at all (reported), 0 otherwise.
 */
int tp_ini_read(const char *path, struct tp_ini *ini, struct tp_diags *d);

void tp_ini_free(struct tp_ini *ini);

/* the longest line accepted, continued lines joined; iniparser 4.1 reads
 * lines of up to 1023 bytes */
#define TP_INI_MAX_LINE 1000
/* the largest policy file accepted */
#define TP_INI_MAX_FILE (1024 * 1024)

#endif
