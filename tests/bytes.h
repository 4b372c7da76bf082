/*
 * bytes.h - a growing byte string, for the unit tests and fuzz targets of
 * the filters and the record reader
 *
 * Always NUL-terminated after its len bytes, so one holding text reads as
 * a string (bytes_str).  Running out of memory aborts the test: Check
 * reports an abort inside a test as an error, and libFuzzer as a crash.
 */
#ifndef TP_TEST_BYTES_H
#define TP_TEST_BYTES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static inline void bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL) {
			fputs("bytes_add: out of memory\n", stderr);
			abort();
		}
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* bytes_str - the bytes as a C string (they are NUL-terminated) */
static inline char *bytes_str(const struct bytes *b)
{
	return (char *)b->p;
}

#endif
