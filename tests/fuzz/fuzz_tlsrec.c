/*
 * fuzz_tlsrec.c - libFuzzer target for the TLS record reader
 *
 * Input format (tests/unit/check_tlsrec --seeds writes the unit table in it):
 *
 *   byte 0   bit 0: call tp_tlsrec_after_hrr first;
 *            bits 1-4: the number of cut points, k (0 to 15)
 *   then k cut points, 16 bits each, little-endian, taken modulo the
 *   stream's length + 1 (fewer if the input ends)
 *   then the stream: the bytes of one direction of a connection.
 *
 * The stream is read three times: in one call, one byte per call, and in
 * pieces ending at the cut points; each piece is in a buffer of its own
 * size, so that ASan sees any read past it.  Checked, besides ASan and
 * UBSan:
 *
 *   - the three reads make the same reports at the same stream offsets,
 *     with the same fields;
 *   - no call consumes more than it was given; MORE consumes all of it; a
 *     report consumes at least the byte that made it; APPDATA, ALERT and
 *     ERROR stick (the same code, nothing consumed, no hello);
 *   - an error has a known reason token, and only an error has one; an
 *     alert has its level and description only after ALERT;
 *   - a hello is there exactly after a hello report, and its fields obey
 *     tlsrec.h: bounded lists, a checked server name, the version rules
 *     (the highest non-GREASE offer; the higher of legacy and selected,
 *     selected 1.3 or later, present in an HRR);
 *   - a stream whose first report is a ClientHello passes
 *     tp_tlsrec_is_clienthello_start.
 *
 * Build (from a configured tree; make fuzz does it):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Imodule \
 *     module/tlsrec.c tests/fuzz/fuzz_tlsrec.c -o fuzz_tlsrec
 *   ./fuzz_tlsrec -dict=tests/fuzz/tlsrec.dict -max_total_time=120 CORPUS_COPY
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrec.h"
#include "bytes.h"

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_tlsrec: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static void add_u64(struct bytes *b, uint64_t v)
{
	bytes_add(b, &v, sizeof(v));
}

static const char *const reasons[] = {
	"not-tls", "sslv2-hello", "bad-record-version", "bad-record-type", "record-too-long",
	"empty-record", "handshake-too-long", "interleaved-handshake", "unexpected-message",
	"bad-clienthello", "bad-sni", "bad-serverhello", "bad-change-cipher-spec", "bad-alert",
};

static int is_final(int rc)
{
	return rc == TP_TLSREC_ERROR || rc == TP_TLSREC_APPDATA || rc == TP_TLSREC_ALERT;
}

static int is_grease(uint16_t v)
{
	return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

static void check_client_hello(const struct tp_tlsrec_hello *h)
{
	uint16_t top = 0;

	CHECK(h->nsuites >= 1 && h->nsuites <= 32767 && h->suites != NULL);
	CHECK(h->nversions <= TP_TLSREC_VERSIONS_MAX);
	CHECK((h->versions != NULL) == (h->nversions > 0));
	CHECK(h->suite == 0 && h->selected_version == 0 && !h->hrr);
	CHECK((h->legacy_version >> 8) == 3);
	for (size_t i = 0; i < h->nversions; i++)
		if (!is_grease(h->versions[i]) && h->versions[i] > top)
			top = h->versions[i];
	CHECK(h->version == (top != 0 ? top : h->legacy_version));
	if (h->sni != NULL) {
		size_t n = strlen(h->sni);

		CHECK(n >= 1 && n <= TP_TLSREC_SNI_MAX);
		for (size_t i = 0; i < n; i++)
			CHECK(h->sni[i] > 0x20 && h->sni[i] < 0x7f);
	}
}

static void check_server_hello(const struct tp_tlsrec_hello *h, int rc)
{
	CHECK(h->hrr == (rc == TP_TLSREC_HRR));
	CHECK(h->nsuites == 0 && h->suites == NULL && h->nversions == 0 && h->sni == NULL);
	CHECK(h->legacy_version >= TP_TLSREC_SSL3 && h->legacy_version <= TP_TLSREC_TLS12);
	CHECK(h->selected_version == 0 || h->selected_version >= TP_TLSREC_TLS13);
	CHECK(!h->hrr || h->selected_version >= TP_TLSREC_TLS13);
	CHECK(h->version == (h->selected_version > h->legacy_version ? h->selected_version
								      : h->legacy_version));
}

/* log_report - check a report and write it down, to compare the reads */
static void log_report(struct bytes *log, const struct tp_tlsrec *r, int rc, size_t at)
{
	const struct tp_tlsrec_hello *h = tp_tlsrec_hello(r);
	const char *err = tp_tlsrec_error(r);
	uint8_t level = 0, desc = 0;
	int known = err == NULL;

	add_u64(log, (uint64_t)(rc + 1));
	add_u64(log, at);
	CHECK((rc == TP_TLSREC_ERROR) == (err != NULL));
	for (size_t i = 0; !known && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		known = strcmp(err, reasons[i]) == 0;
	CHECK(known);
	if (err != NULL)
		bytes_add(log, err, strlen(err) + 1);
	if (tp_tlsrec_alert(r, &level, &desc) == 0) {
		CHECK(rc == TP_TLSREC_ALERT);
		add_u64(log, (uint64_t)level << 8 | desc);
	}
	CHECK((h != NULL) == (rc == TP_TLSREC_CLIENT_HELLO || rc == TP_TLSREC_SERVER_HELLO ||
			      rc == TP_TLSREC_HRR));
	if (h == NULL)
		return;
	if (rc == TP_TLSREC_CLIENT_HELLO)
		check_client_hello(h);
	else
		check_server_hello(h, rc);
	add_u64(log, (uint64_t)h->legacy_version << 32 | (uint64_t)h->version << 16 | h->suite);
	add_u64(log, (uint64_t)h->selected_version << 1 | (uint64_t)h->hrr);
	add_u64(log, h->nsuites);
	bytes_add(log, h->suites, h->nsuites * sizeof(*h->suites));
	add_u64(log, h->nversions);
	bytes_add(log, h->versions, h->nversions * sizeof(*h->versions));
	if (h->sni != NULL)
		bytes_add(log, h->sni, strlen(h->sni) + 1);
}

/*
 * read_stream - the stream in pieces ending at the cuts (sorted, within
 * it), each in a buffer of its own size.  Returns the first report's code.
 */
static int read_stream(const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts,
		       int after_hrr, struct bytes *log)
{
	struct tp_tlsrec *r = tp_tlsrec_new();
	size_t from = 0, used;
	int rc = TP_TLSREC_MORE, first = TP_TLSREC_MORE;

	CHECK(r != NULL);
	if (after_hrr)
		tp_tlsrec_after_hrr(r);
	for (size_t c = 0; c <= ncuts && !is_final(rc); c++) {
		size_t to = c < ncuts ? cuts[c] : n, at = 0, len = to - from;
		uint8_t *piece = malloc(len > 0 ? len : 1);

		CHECK(piece != NULL);
		if (len > 0)
			memcpy(piece, s + from, len);
		do {
			rc = tp_tlsrec_feed(r, piece + at, len - at, &used);
			CHECK(rc >= TP_TLSREC_ERROR && rc <= TP_TLSREC_ALERT);
			CHECK(used <= len - at);
			CHECK(rc != TP_TLSREC_MORE || used == len - at);
			CHECK(rc == TP_TLSREC_MORE || used >= 1);
			at += used;
			if (rc != TP_TLSREC_MORE) {
				log_report(log, r, rc, from + at);
				if (first == TP_TLSREC_MORE)
					first = rc;
			}
		} while (at < len && !is_final(rc));
		free(piece);
		from = to;
	}
	if (is_final(rc)) {
		CHECK(tp_tlsrec_feed(r, s, n, &used) == rc && used == 0);
		CHECK(tp_tlsrec_hello(r) == NULL);
	} else {
		CHECK(from == n);
		add_u64(log, 0);
	}
	tp_tlsrec_free(&r);
	CHECK(r == NULL);
	return first;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static int same(const struct bytes *a, const struct bytes *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bytes whole = { 0 }, bytewise = { 0 }, cut = { 0 };
	size_t cuts[15], ncuts, at = 1, n, *every;
	const uint8_t *s;
	int after_hrr, first;

	if (size < 1)
		return 0;
	after_hrr = data[0] & 1;
	ncuts = (data[0] >> 1) & 15;
	for (size_t i = 0; i < ncuts; i++, at += 2)
		cuts[i] = at + 2 <= size ? (size_t)data[at] | (size_t)data[at + 1] << 8 : 0;
	if (at > size)
		at = size;
	s = data + at;
	n = size - at;
	for (size_t i = 0; i < ncuts; i++)
		cuts[i] %= n + 1;
	qsort(cuts, ncuts, sizeof(cuts[0]), cmp_size);

	first = read_stream(s, n, NULL, 0, after_hrr, &whole);
	every = malloc((n + 1) * sizeof(*every));
	CHECK(every != NULL);
	for (size_t i = 0; i < n; i++)
		every[i] = i + 1;
	read_stream(s, n, every, n, after_hrr, &bytewise);
	read_stream(s, n, cuts, ncuts, after_hrr, &cut);
	CHECK(same(&whole, &bytewise));
	CHECK(same(&whole, &cut));
	if (first == TP_TLSREC_CLIENT_HELLO)
		CHECK(tp_tlsrec_is_clienthello_start(s, n < 6 ? n : 6) == 1);
	free(every);
	free(whole.p);
	free(bytewise.p);
	free(cut.p);
	return 0;
}
