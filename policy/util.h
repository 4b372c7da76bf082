/*
 * util.h - small string helpers shared by the policy library and its users
 */
#ifndef TP_UTIL_H
#define TP_UTIL_H

#include <stddef.h>

/* tp_streq_null - strcmp() == 0 that treats two NULLs as equal */
int tp_streq_null(const char *a, const char *b);

/* tp_strdup_null - strdup() that passes NULL through */
char *tp_strdup_null(const char *s);

/* tp_edit_distance - Damerau-Levenshtein distance, case-insensitive */
size_t tp_edit_distance(const char *a, const char *b);

/*
 * tp_suggest - the candidate closest to word, or NULL if none is close
 * enough to be what the user meant (a typo, not another word)
 */
const char *tp_suggest(const char *word, const char *const *candidates,
		       size_t n);

/*
 * tp_path_fold - fold "." and ".." and repeated slashes out of an absolute
 * path, in place, without touching the file system
 */
void tp_path_fold(char *path);

/*
 * tp_path_display - path for a message: relative to the working directory
 * when it lies under it (so a suggested command can be pasted), otherwise
 * as it is.  Returns buf.
 */
const char *tp_path_display(const char *path, char *buf, size_t len);

/* tp_list_has - is word one of the sep-separated words of list? */
int tp_list_has(const char *list, const char *word, char sep);

/*
 * a growable string; on allocation failure .oom is set and appends stop.
 * Memory it gives back (growing, tp_buf_free) is wiped first.
 */
struct tp_buf {
	char *s;
	size_t len, cap;
	int oom;
};

void tp_buf_add(struct tp_buf *b, const char *s);
void tp_buf_addn(struct tp_buf *b, const char *s, size_t n);
void tp_buf_addf(struct tp_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tp_buf_free(struct tp_buf *b);

#endif
