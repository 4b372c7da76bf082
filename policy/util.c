/*
 * util.c - small string helpers
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

int tp_streq_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

char *tp_strdup_null(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

size_t tp_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t *d, r;

	/* the words compared are config keys and values: short */
	if (la > 64 || lb > 64)
		return (size_t)-1;
	d = calloc((la + 1) * (lb + 1), sizeof(*d));
	if (d == NULL)
		return (size_t)-1;
#define D(i, j) d[(i) * (lb + 1) + (j)]
	for (size_t i = 0; i <= la; i++)
		D(i, 0) = i;
	for (size_t j = 0; j <= lb; j++)
		D(0, j) = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			size_t cost = ca != cb;

			D(i, j) = min3(D(i - 1, j) + 1, D(i, j - 1) + 1,
				       D(i - 1, j - 1) + cost);
			if (i > 1 && j > 1 &&
			    ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb &&
			    D(i - 2, j - 2) + 1 < D(i, j))
				D(i, j) = D(i - 2, j - 2) + 1;
		}
	}
	r = D(la, lb);
#undef D
	free(d);
	return r;
}

const char *tp_suggest(const char *word, const char *const *candidates,
		       size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, len = strlen(word);
	/* one edit for short words, up to a third of the word for long ones */
	size_t limit = len <= 4 ? 1 : len / 3 < 2 ? 2 : len / 3;

	for (size_t i = 0; i < n; i++) {
		size_t dist = tp_edit_distance(word, candidates[i]);

		if (dist < best_d) {
			best_d = dist;
			best = candidates[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

/*
 * buf_reserve - room for more; grown by copy and wipe, not realloc, which
 * would free the old block unwiped: the filters keep session lines here,
 * credentials among them (STYLE.md 8)
 */
static void buf_reserve(struct tp_buf *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->oom || b->len + more + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 128;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = malloc(cap);
	if (s == NULL) {
		b->oom = 1;
		return;
	}
	if (b->s != NULL) {
		memcpy(s, b->s, b->len + 1);
		explicit_bzero(b->s, b->cap);
		free(b->s);
	}
	b->s = s;
	b->cap = cap;
}

void tp_buf_addn(struct tp_buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->oom)
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void tp_buf_add(struct tp_buf *b, const char *s)
{
	tp_buf_addn(b, s, strlen(s));
}

void tp_buf_addf(struct tp_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	tp_buf_add(b, s);
	free(s);
}

void tp_buf_free(struct tp_buf *b)
{
	if (b->s != NULL)
		explicit_bzero(b->s, b->cap);
	free(b->s);
	*b = (struct tp_buf){ 0 };
}

void tp_path_fold(char *path)
{
	char *out = path, *seg = path;

	if (path[0] != '/')
		return;
	while (*seg != '\0') {
		char *end;
		size_t n;

		while (*seg == '/')
			seg++;
		end = seg + strcspn(seg, "/");
		n = (size_t)(end - seg);
		if (n == 0 || (n == 1 && seg[0] == '.')) {
			/* nothing */
		} else if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			while (out > path && *--out != '/')
				;
		} else {
			*out++ = '/';
			memmove(out, seg, n);
			out += n;
		}
		seg = end;
	}
	if (out == path)
		*out++ = '/';
	*out = '\0';
}

const char *tp_path_display(const char *path, char *buf, size_t len)
{
	char cwd[4096];
	size_t n;

	snprintf(buf, len, "%s", path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return buf;
	n = strlen(cwd);
	if (n > 1 && strncmp(path, cwd, n) == 0 && path[n] == '/')
		snprintf(buf, len, "%s", path + n + 1);
	return buf;
}

int tp_list_has(const char *list, const char *word, char sep)
{
	size_t len = strlen(word);

	if (len == 0)
		return 0;
	for (const char *q = strstr(list, word); q != NULL; q = strstr(q + 1, word))
		if ((q == list || q[-1] == sep) && (q[len] == sep || q[len] == '\0'))
			return 1;
	return 0;
}
