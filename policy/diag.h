/*
 * diag.h - diagnostics collected while a policy is read and checked
 *
 * Every problem found in a policy becomes one struct tp_diag, kept in a
 * struct tp_diags list in the order found.  Nothing here prints: the caller
 * (tlspolicyctl, the shim, tlspolicyd) decides where the text goes.
 */
#ifndef TP_DIAG_H
#define TP_DIAG_H

#include <stddef.h>

enum tp_severity {
	TP_WARNING,
	TP_ERROR,
};

struct tp_diag {
	enum tp_severity severity;
	const char *file;	/* file the problem is in; NULL if none */
	int line;		/* 1-based line; 0 for the whole file */
	const char *section;	/* "global", "port 587", ...; NULL if none */
	const char *key;	/* key name; NULL for a section or file problem */
	const char *value;	/* offending value as written; NULL if none */
	const char *message;	/* "what is wrong; what to do" */
};

struct tp_diags;

/* tp_diags_new - empty list; NULL on allocation failure */
struct tp_diags *tp_diags_new(void);

/* tp_diags_free - free the list and everything in it; sets *d to NULL */
void tp_diags_free(struct tp_diags **d);

/*
 * tp_diags_add - append one diagnostic.  All strings are copied.  A
 * diagnostic identical to one already in the list (same severity, place,
 * section, key and message) is not added twice: a [global] value inherited
 * by six ports is one problem, not six.  The message is printf-formatted.
 */
void tp_diags_add(struct tp_diags *d, enum tp_severity sev, const char *file,
		  int line, const char *section, const char *key,
		  const char *value, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

size_t tp_diags_len(const struct tp_diags *d);
const struct tp_diag *tp_diags_get(const struct tp_diags *d, size_t i);
size_t tp_diags_count(const struct tp_diags *d, enum tp_severity sev);

/*
 * tp_diags_sort - order by file (as ranked in files[0..n-1], others last),
 * then line, then arrival
 */
void tp_diags_sort(struct tp_diags *d, const char *const *files, size_t n);

/*
 * tp_diag_format - "FILE:LINE: error: [section] key: message" into a new
 * string (caller frees); NULL on allocation failure.
 */
char *tp_diag_format(const struct tp_diag *diag);

const char *tp_severity_name(enum tp_severity sev);

#endif
