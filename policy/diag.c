/*
 * diag.c - the list of policy diagnostics
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "util.h"

struct tp_diags {
	struct tp_diag *items;
	size_t *order;		/* arrival index, for a stable sort */
	size_t len, cap;
	int oom;
};

struct tp_diags *tp_diags_new(void)
{
	return calloc(1, sizeof(struct tp_diags));
}

/* free_const - the list owns the strings its const fields point to */
static void free_const(const char *s)
{
	free((void *)(uintptr_t)s);
}

static void diag_clear(struct tp_diag *x)
{
	free_const(x->file);
	free_const(x->section);
	free_const(x->key);
	free_const(x->value);
	free_const(x->message);
}

void tp_diags_free(struct tp_diags **d)
{
	if (*d == NULL)
		return;
	for (size_t i = 0; i < (*d)->len; i++)
		diag_clear(&(*d)->items[i]);
	free((*d)->items);
	free((*d)->order);
	free(*d);
	*d = NULL;
}

/* same_diag - true if two diagnostics say the same thing at the same place */
static int same_diag(const struct tp_diag *a, const struct tp_diag *b)
{
	return a->severity == b->severity && a->line == b->line &&
	       tp_streq_null(a->file, b->file) &&
	       tp_streq_null(a->section, b->section) &&
	       tp_streq_null(a->key, b->key) &&
	       tp_streq_null(a->message, b->message);
}

static int diags_grow(struct tp_diags *d)
{
	size_t cap = d->cap ? d->cap * 2 : 16;
	struct tp_diag *items = realloc(d->items, cap * sizeof(*items));

	if (items == NULL)
		return -1;
	d->items = items;
	size_t *order = realloc(d->order, cap * sizeof(*order));
	if (order == NULL)
		return -1;
	d->order = order;
	d->cap = cap;
	return 0;
}

void tp_diags_add(struct tp_diags *d, enum tp_severity sev, const char *file,
		  int line, const char *section, const char *key,
		  const char *value, const char *fmt, ...)
{
	struct tp_diag x;
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL) {
		d->oom = 1;
		return;
	}
	x = (struct tp_diag){ sev, file, line, section, key, value, msg };
	for (size_t i = 0; i < d->len; i++) {
		if (same_diag(&d->items[i], &x)) {
			free(msg);
			return;
		}
	}
	if (d->len == d->cap && diags_grow(d) < 0) {
		free(msg);
		d->oom = 1;
		return;
	}
	x.file = tp_strdup_null(file);
	x.section = tp_strdup_null(section);
	x.key = tp_strdup_null(key);
	x.value = tp_strdup_null(value);
	d->order[d->len] = d->len;
	d->items[d->len++] = x;
}

size_t tp_diags_len(const struct tp_diags *d)
{
	return d->len;
}

const struct tp_diag *tp_diags_get(const struct tp_diags *d, size_t i)
{
	return i < d->len ? &d->items[i] : NULL;
}

size_t tp_diags_count(const struct tp_diags *d, enum tp_severity sev)
{
	size_t n = 0;

	for (size_t i = 0; i < d->len; i++)
		n += d->items[i].severity == sev;
	/* an allocation failure while collecting is itself an error */
	if (sev == TP_ERROR && d->oom)
		n++;
	return n;
}

/* file_rank - where a file stands in the order the files were read */
static size_t file_rank(const char *file, const char *const *files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tp_streq_null(files[i], file))
			return i;
	return n;
}

static int diag_before(const struct tp_diags *d, size_t a, size_t b,
		       const char *const *files, size_t n)
{
	size_t ra = file_rank(d->items[a].file, files, n);
	size_t rb = file_rank(d->items[b].file, files, n);

	if (ra != rb)
		return ra < rb;
	if (d->items[a].line != d->items[b].line)
		return d->items[a].line < d->items[b].line;
	return d->order[a] < d->order[b];
}

void tp_diags_sort(struct tp_diags *d, const char *const *files, size_t n)
{
	/* insertion sort: the lists are short and the order must be stable */
	for (size_t i = 1; i < d->len; i++) {
		for (size_t j = i; j > 0 && diag_before(d, j, j - 1, files, n); j--) {
			struct tp_diag x = d->items[j];
			size_t o = d->order[j];

			d->items[j] = d->items[j - 1];
			d->order[j] = d->order[j - 1];
			d->items[j - 1] = x;
			d->order[j - 1] = o;
		}
	}
}

const char *tp_severity_name(enum tp_severity sev)
{
	return sev == TP_ERROR ? "error" : "warning";
}

char *tp_diag_format(const struct tp_diag *x)
{
	char where[4096] = "", what[512] = "";
	char *out;

	if (x->file != NULL && x->line > 0)
		snprintf(where, sizeof(where), "%s:%d: ", x->file, x->line);
	else if (x->file != NULL)
		snprintf(where, sizeof(where), "%s: ", x->file);
	if (x->section != NULL && x->key != NULL)
		snprintf(what, sizeof(what), "[%s] %s: ", x->section, x->key);
	else if (x->section != NULL)
		snprintf(what, sizeof(what), "[%s]: ", x->section);
	else if (x->key != NULL)
		snprintf(what, sizeof(what), "%s: ", x->key);
	if (asprintf(&out, "%s%s: %s%s", where, tp_severity_name(x->severity),
		     what, x->message) < 0)
		return NULL;
	return out;
}
