/*
 * tlsrec.c - the sans-I/O TLS record reader
 *
 * Bytes of one direction in, what the clear part of the handshake says
 * out (tlsrec.h).  The input is read one state at a time: a record header
 * byte by byte (the only record bytes kept), then the record's body,
 * which for handshake records feeds the handshake stream: a message
 * header, then a body that is kept for the hellos (to be parsed when
 * complete) and skipped for the rest.
 *
 * No sockets, clocks, globals or printing; one allocation, in
 * tp_tlsrec_new.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrec.h"

/* content types, RFC 8446 5.1 */
enum { CT_CCS = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
/* handshake types, RFC 8446 4 */
enum { HT_CLIENT_HELLO = 1, HT_SERVER_HELLO = 2 };
/* extensions: RFC 6066 3, RFC 8446 4.2.1 */
enum { EXT_SERVER_NAME = 0, EXT_SUPPORTED_VERSIONS = 43 };
/* RFC 6066 3: NameType host_name */
#define SNI_HOST_NAME 0

/* RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello with this random, SHA-256("HelloRetryRequest") */
static const uint8_t hrr_random[32] = {
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

/* what the reader is reading */
enum rstate {
	R_HEADER,		/* a record header */
	R_BODY,			/* a record's body */
	R_ALERT,		/* the two bytes of an alert in the clear */
};

/* which side's stream this is, known from its first hello */
enum role { ROLE_NONE, ROLE_CLIENT, ROLE_SERVER };

struct tp_tlsrec {
	enum rstate state;
	uint8_t hdr[5];
	size_t hdr_len;
	int started;			/* a whole record header was read */
	uint8_t type;			/* the current record's content type */
	size_t left;			/* its body bytes still to come */

	enum role role;
	int ccs;			/* a change_cipher_spec went by */
	int plain_after_ccs;		/* RFC 8446 D.4: the hello after HRR is in the clear */
	int hrr;			/* a HelloRetryRequest went by */
	int server_hello;		/* a ServerHello (not HRR) went by */
	int tls13;			/* it negotiated TLS 1.3: the rest is encrypted */

	/* the handshake message being read */
	uint8_t hs_hdr[4];
	size_t hs_hdr_len;		/* 4: reading its body */
	size_t hs_len, hs_got;
	int hs_keep;			/* a hello: keep the body in msg */

	int final;			/* 0, or the report that ended the reading */
	const char *error;
	uint8_t alert[2];
	size_t alert_got;

	int hello_ready;		/* the last feed reported a hello */
	struct tp_tlsrec_hello hello;
	uint16_t versions[TP_TLSREC_VERSIONS_MAX];
	char sni[TP_TLSREC_SNI_MAX + 1];
	/* the hello being reassembled; its suites are decoded over it (decode_suites) */
	union {
		uint8_t b[TP_TLSREC_HANDSHAKE_MAX];
		uint16_t w[TP_TLSREC_HANDSHAKE_MAX / 2];
	} msg;
};

/* --- reading a message: a cursor that fails closed ------------------------------ */

/* a cursor over a message; bad once a read ran past its end */
struct cur {
	const uint8_t *p;
	size_t n;
	int bad;
};

/* get8, get16 - a number in network order; 0 and bad past the end */
static uint8_t get8(struct cur *c)
{
	if (c->n < 1) {
		c->bad = 1;
		return 0;
	}
	c->n--;
	return *c->p++;
}

static uint16_t get16(struct cur *c)
{
	uint16_t hi = get8(c);

	return (uint16_t)(hi << 8 | get8(c));
}

/* sub - the next n bytes as a cursor of their own */
static struct cur sub(struct cur *c, size_t n)
{
	struct cur s = { c->p, n, 0 };

	if (c->n < n) {
		c->bad = 1;
		s.n = 0;
		return s;
	}
	c->p += n;
	c->n -= n;
	return s;
}

/* vec8, vec16 - a vector with a 1- or 2-byte length (RFC 8446 3.4) */
static struct cur vec8(struct cur *c)
{
	size_t n = get8(c);

	return sub(c, n);
}

static struct cur vec16(struct cur *c)
{
	size_t n = get16(c);

	return sub(c, n);
}

/* is_grease - RFC 8701 2: 0x0a0a, 0x1a1a, ... 0xfafa */
static int is_grease(uint16_t v)
{
	return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* --- the ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2) ------------------------ */

/* client_versions - supported_versions: versions<2..254> */
static const char *client_versions(struct tp_tlsrec *r, struct cur *data)
{
	struct cur list = vec8(data);

	if (data->bad || data->n != 0 || list.n < 2 || list.n % 2 != 0)
		return "bad-clienthello";
	while (list.n > 0)
		r->versions[r->hello.nversions++] = get16(&list);
	r->hello.versions = r->versions;
	return NULL;
}

/*
 * client_sni - server_name (RFC 6066 3): one host_name at most, a DNS
 * name of printable ASCII (it ends up in the log); other name types,
 * none of which exist, are skipped
 */
static const char *client_sni(struct tp_tlsrec *r, struct cur *data)
{
	struct cur list = vec16(data);

	if (data->bad || data->n != 0 || list.n == 0)
		return "bad-sni";
	while (list.n > 0) {
		uint8_t type = get8(&list);
		struct cur name = vec16(&list);

		if (list.bad)
			return "bad-sni";
		if (type != SNI_HOST_NAME)
			continue;
		if (r->hello.sni != NULL || name.n == 0 || name.n > TP_TLSREC_SNI_MAX)
			return "bad-sni";
		for (size_t i = 0; i < name.n; i++)
			if (name.p[i] < 0x21 || name.p[i] > 0x7e)
				return "bad-sni";
		memcpy(r->sni, name.p, name.n);
		r->sni[name.n] = '\0';
		r->hello.sni = r->sni;
	}
	return NULL;
}

/* client_extensions - the ones we read; RFC 8446 4.2: each at most once */
static const char *client_extensions(struct tp_tlsrec *r, struct cur *exts)
{
	int sni = 0, versions = 0;

	while (exts->n > 0) {
		uint16_t type = get16(exts);
		struct cur data = vec16(exts);
		const char *err = NULL;

		if (exts->bad)
			return "bad-clienthello";
		if (type == EXT_SERVER_NAME)
			err = sni++ ? "bad-clienthello" : client_sni(r, &data);
		else if (type == EXT_SUPPORTED_VERSIONS)
			err = versions++ ? "bad-clienthello" : client_versions(r, &data);
		if (err != NULL)
			return err;
	}
	return NULL;
}

/*
 * decode_suites - the n suites at offset off as host-order numbers,
 * written over the start of the message buffer, so that the reader needs
 * no second 64 KiB.  Done last, when nothing else is read from the
 * message.  Safe in place: the suites start at offset 41 or later, so
 * each pair is read before anything is written over it.
 */
static void decode_suites(struct tp_tlsrec *r, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = r->msg.b + off + 2 * i;
		uint16_t v = (uint16_t)(p[0] << 8 | p[1]);

		r->msg.w[i] = v;
	}
	r->hello.suites = r->msg.w;
	r->hello.nsuites = n;
}

/* client_version - the highest version offered, GREASE aside */
static uint16_t client_version(const struct tp_tlsrec_hello *h)
{
	uint16_t v = 0;

	for (size_t i = 0; i < h->nversions; i++)
		if (!is_grease(h->versions[i]) && h->versions[i] > v)
			v = h->versions[i];
	return v != 0 ? v : h->legacy_version;
}

/* parse_client_hello - the len bytes in msg; NULL, or the reason it is refused */
static const char *parse_client_hello(struct tp_tlsrec *r, size_t len)
{
	struct cur c = { r->msg.b, len, 0 }, suites, exts = { NULL, 0, 0 };
	struct tp_tlsrec_hello *h = &r->hello;
	const char *err;

	h->legacy_version = get16(&c);
	sub(&c, 32);				/* random */
	if (vec8(&c).n > 32)			/* legacy_session_id<0..32> */
		return "bad-clienthello";
	suites = vec16(&c);			/* cipher_suites<2..2^16-2> */
	if (suites.n < 2 || suites.n % 2 != 0 || vec8(&c).n < 1)	/* compression */
		return "bad-clienthello";
	if (c.n > 0) {				/* extensions, absent in old hellos */
		exts = vec16(&c);
		if (c.n != 0)
			return "bad-clienthello";
	}
	if (c.bad || (h->legacy_version >> 8) != 3)
		return "bad-clienthello";
	err = client_extensions(r, &exts);
	if (err != NULL)
		return err;
	h->version = client_version(h);
	decode_suites(r, (size_t)(suites.p - r->msg.b), suites.n / 2);
	return NULL;
}

/* --- the ServerHello (RFC 8446 4.1.3, 4.1.4; RFC 5246 7.4.1.3) --------------------- */

/* server_extensions - supported_versions: one selected_version, at most once */
static const char *server_extensions(struct tp_tlsrec *r, struct cur *exts, int *have_r)
{
	while (exts->n > 0) {
		uint16_t type = get16(exts);
		struct cur data = vec16(exts);

		if (exts->bad)
			return "bad-serverhello";
		if (type != EXT_SUPPORTED_VERSIONS)
			continue;
		if (*have_r || data.n != 2)
			return "bad-serverhello";
		r->hello.selected_version = get16(&data);
		*have_r = 1;
	}
	return NULL;
}

/* parse_server_hello - the same for a ServerHello or HelloRetryRequest */
static const char *parse_server_hello(struct tp_tlsrec *r, size_t len)
{
	struct cur c = { r->msg.b, len, 0 }, random, exts = { NULL, 0, 0 };
	struct tp_tlsrec_hello *h = &r->hello;
	const char *err;
	int have = 0;

	h->legacy_version = get16(&c);
	random = sub(&c, 32);
	if (vec8(&c).n > 32)			/* legacy_session_id_echo<0..32> */
		return "bad-serverhello";
	h->suite = get16(&c);
	get8(&c);				/* compression method */
	if (c.n > 0) {
		exts = vec16(&c);
		if (c.n != 0)
			return "bad-serverhello";
	}
	/* RFC 8446 4.1.3: legacy_version stays at TLS 1.2 even for 1.3 */
	if (c.bad || h->legacy_version < TP_TLSREC_SSL3 || h->legacy_version > TP_TLSREC_TLS12)
		return "bad-serverhello";
	h->hrr = memcmp(random.p, hrr_random, sizeof(hrr_random)) == 0;
	err = server_extensions(r, &exts, &have);
	if (err != NULL)
		return err;
	/* RFC 8446 4.2.1: the extension only ever selects 1.3 or later; 4.1.4: HRR has it */
	if ((have && h->selected_version < TP_TLSREC_TLS13) || (h->hrr && !have))
		return "bad-serverhello";
	h->version = h->selected_version > h->legacy_version ? h->selected_version
							     : h->legacy_version;
	return NULL;
}

/* --- handshake messages ---------------------------------------------------------- */

/* fail - the reading ends with an error; the reason is kept for tp_tlsrec_error */
static int fail(struct tp_tlsrec *r, const char *reason)
{
	r->error = reason;
	return TP_TLSREC_ERROR;
}

/* encrypted - are the handshake and alert records from here on encrypted? */
static int encrypted(const struct tp_tlsrec *r)
{
	return r->tls13 || (r->ccs && !r->plain_after_ccs);
}

/* start_message - its 4-byte header is in: type, length, and whether it may come here */
static int start_message(struct tp_tlsrec *r)
{
	uint8_t type = r->hs_hdr[0];

	r->hs_len = (size_t)r->hs_hdr[1] << 16 | (size_t)r->hs_hdr[2] << 8 | r->hs_hdr[3];
	r->hs_got = 0;
	r->hs_keep = type == HT_CLIENT_HELLO || type == HT_SERVER_HELLO;
	if (r->hs_len > TP_TLSREC_HANDSHAKE_MAX)
		return fail(r, "handshake-too-long");
	if ((type == HT_CLIENT_HELLO && r->role == ROLE_SERVER) ||
	    (type == HT_SERVER_HELLO && (r->role == ROLE_CLIENT || r->server_hello)) ||
	    (!r->hs_keep && r->role == ROLE_NONE))
		return fail(r, "unexpected-message");
	return TP_TLSREC_MORE;
}

/* end_message - a whole message is in; the hellos are parsed and reported */
static int end_message(struct tp_tlsrec *r)
{
	uint8_t type = r->hs_hdr[0];
	const char *err;

	r->hs_hdr_len = 0;
	if (!r->hs_keep)
		return TP_TLSREC_MORE;
	memset(&r->hello, 0, sizeof(r->hello));
	if (type == HT_CLIENT_HELLO) {
		err = parse_client_hello(r, r->hs_len);
		if (err != NULL)
			return fail(r, err);
		r->role = ROLE_CLIENT;
		r->hello_ready = 1;
		return TP_TLSREC_CLIENT_HELLO;
	}
	err = parse_server_hello(r, r->hs_len);
	/* RFC 8446 4.1.4: a second HelloRetryRequest is an error */
	if (err == NULL && r->hello.hrr && r->hrr)
		err = "unexpected-message";
	if (err != NULL)
		return fail(r, err);
	r->role = ROLE_SERVER;
	r->hello_ready = 1;
	if (r->hello.hrr) {
		r->hrr = 1;
		r->plain_after_ccs = 1;
		return TP_TLSREC_HRR;
	}
	r->server_hello = 1;
	r->tls13 = r->hello.version >= TP_TLSREC_TLS13;
	return TP_TLSREC_SERVER_HELLO;
}

/*
 * read_handshake - n bytes of a handshake record in the clear.  Stops
 * after a message it reports, so that the report falls where the message
 * ends, however the stream was cut.
 */
static int read_handshake(struct tp_tlsrec *r, const uint8_t *p, size_t n, size_t *used_r)
{
	size_t i = 0, k;
	int rc = TP_TLSREC_MORE;

	while (i < n && rc == TP_TLSREC_MORE) {
		if (r->hs_hdr_len < 4) {
			r->hs_hdr[r->hs_hdr_len++] = p[i++];
			if (r->hs_hdr_len < 4)
				continue;
			rc = start_message(r);
			if (rc == TP_TLSREC_MORE && r->hs_len == 0)
				rc = end_message(r);
			continue;
		}
		k = r->hs_len - r->hs_got;
		if (k > n - i)
			k = n - i;
		if (r->hs_keep)
			memcpy(r->msg.b + r->hs_got, p + i, k);
		r->hs_got += k;
		i += k;
		if (r->hs_got == r->hs_len)
			rc = end_message(r);
	}
	*used_r = i;
	return rc;
}

/* --- records ------------------------------------------------------------------------ */

/* start_record - a whole record header is in */
static int start_record(struct tp_tlsrec *r)
{
	size_t len = (size_t)r->hdr[3] << 8 | r->hdr[4];

	r->hdr_len = 0;
	r->started = 1;
	r->type = r->hdr[0];
	r->left = len;
	r->state = R_BODY;
	if (len > TP_TLSREC_RECORD_MAX)
		return fail(r, "record-too-long");
	/* RFC 8446 5.1: no other record inside a handshake message */
	if (r->type != CT_HANDSHAKE && r->hs_hdr_len > 0)
		return fail(r, "interleaved-handshake");
	switch (r->type) {
	case CT_APPDATA:
		return TP_TLSREC_APPDATA;
	case CT_CCS:
		/* RFC 8446 5, RFC 5246 7.1: never encrypted, the single byte 1 */
		return len == 1 ? TP_TLSREC_MORE : fail(r, "bad-change-cipher-spec");
	case CT_ALERT:
		if (encrypted(r))
			return TP_TLSREC_ALERT;
		if (len < 2)
			return fail(r, len == 0 ? "empty-record" : "bad-alert");
		r->state = R_ALERT;
		return TP_TLSREC_MORE;
	default:
		/* RFC 8446 5.1, RFC 5246 6.2.1: no empty handshake records */
		return len == 0 && !encrypted(r) ? fail(r, "empty-record") : TP_TLSREC_MORE;
	}
}

/*
 * read_header - one byte of a record header.  The first record of the
 * stream says whether it is TLS at all, as early as a byte can tell.
 */
static int read_header(struct tp_tlsrec *r, uint8_t b)
{
	const char *version_error = r->started ? "bad-record-version" : "not-tls";
	int sslv2 = !r->started && (r->hdr[0] & 0x80);

	r->hdr[r->hdr_len++] = b;
	switch (r->hdr_len) {
	case 1:
		if (!r->started && !(b & 0x80) && b != CT_HANDSHAKE && b != CT_ALERT)
			return fail(r, "not-tls");
		if (r->started && (b < CT_CCS || b > CT_APPDATA))
			return fail(r, "bad-record-type");
		break;
	case 2:
		if (!sslv2 && b != 3)
			return fail(r, version_error);
		break;
	case 3:
		/* an SSLv2 CLIENT-HELLO: 2-byte length with the top bit, then type 1 */
		if (sslv2)
			return fail(r, b == 1 ? "sslv2-hello" : "not-tls");
		if (b > 4)
			return fail(r, version_error);
		break;
	case 5:
		return start_record(r);
	}
	return TP_TLSREC_MORE;
}

/* read_alert - one of the two bytes of an alert in the clear */
static int read_alert(struct tp_tlsrec *r, uint8_t b)
{
	r->alert[r->alert_got++] = b;
	return r->alert_got == 2 ? TP_TLSREC_ALERT : TP_TLSREC_MORE;
}

/* read_body - bytes of the current record's body */
static int read_body(struct tp_tlsrec *r, const uint8_t *p, size_t n, size_t *used_r)
{
	int rc = TP_TLSREC_MORE;
	size_t k = n < r->left ? n : r->left;

	if (r->type == CT_HANDSHAKE && !encrypted(r)) {
		rc = read_handshake(r, p, k, &k);
	} else if (r->type == CT_CCS) {
		if (p[0] != 1)
			rc = fail(r, "bad-change-cipher-spec");
		r->ccs = 1;
	}
	r->left -= k;
	if (r->left == 0)
		r->state = R_HEADER;
	*used_r = k;
	return rc;
}

/* --- the API ------------------------------------------------------------------------- */

struct tp_tlsrec *tp_tlsrec_new(void)
{
	struct tp_tlsrec *r = malloc(sizeof(*r));

	/* the message buffer is written before it is read: leave its pages untouched */
	if (r != NULL)
		memset(r, 0, offsetof(struct tp_tlsrec, msg));
	return r;
}

void tp_tlsrec_free(struct tp_tlsrec **r)
{
	if (r == NULL || *r == NULL)
		return;
	free(*r);
	*r = NULL;
}

int tp_tlsrec_feed(struct tp_tlsrec *r, const uint8_t *in, size_t len, size_t *used_r)
{
	size_t at = 0, k;
	int rc = TP_TLSREC_MORE;

	r->hello_ready = 0;
	if (r->final != 0) {
		*used_r = 0;
		return r->final;
	}
	while (at < len && rc == TP_TLSREC_MORE) {
		if (r->state == R_HEADER) {
			rc = read_header(r, in[at++]);
		} else if (r->state == R_ALERT) {
			rc = read_alert(r, in[at++]);
		} else {
			rc = read_body(r, in + at, len - at, &k);
			at += k;
		}
	}
	if (rc == TP_TLSREC_ERROR || rc == TP_TLSREC_APPDATA || rc == TP_TLSREC_ALERT)
		r->final = rc;
	*used_r = at;
	return rc;
}

const struct tp_tlsrec_hello *tp_tlsrec_hello(const struct tp_tlsrec *r)
{
	return r->hello_ready ? &r->hello : NULL;
}

int tp_tlsrec_alert(const struct tp_tlsrec *r, uint8_t *level_r, uint8_t *desc_r)
{
	if (r->final != TP_TLSREC_ALERT || r->alert_got != 2)
		return -1;
	*level_r = r->alert[0];
	*desc_r = r->alert[1];
	return 0;
}

const char *tp_tlsrec_error(const struct tp_tlsrec *r)
{
	return r->error;
}

void tp_tlsrec_after_hrr(struct tp_tlsrec *r)
{
	r->plain_after_ccs = 1;
}

int tp_tlsrec_is_clienthello_start(const uint8_t *p, size_t n)
{
	size_t len;

	if (n < 3 || p[0] != CT_HANDSHAKE || p[1] != 3 || p[2] > 4)
		return 0;
	if (n >= 5) {
		len = (size_t)p[3] << 8 | p[4];
		if (len == 0 || len > TP_TLSREC_RECORD_MAX)
			return 0;
	}
	return n < 6 || p[5] == HT_CLIENT_HELLO;
}
