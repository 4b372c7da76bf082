/*
 * tlsrec.h - the sans-I/O TLS record reader
 *
 * One struct tp_tlsrec reads one direction of a TLS connection: the relay
 * feeds it the bytes as they go by, cut wherever TCP cut them, and learns
 * what the handshake says in the clear: the ClientHello (versions, suites,
 * server name), the ServerHello or HelloRetryRequest (the version and suite
 * the daemon chose), and the first record that is no longer handshake.
 * With tls_by = daemon that is what lets tlspolicyd close a connection
 * before any application data when the daemon negotiated below the
 * policy's floor or a banned suite (DESIGN.md "The module").
 *
 * It never touches a socket, a clock or a global.  Memory is bounded and
 * taken once, in tp_tlsrec_new: records are not copied (only their 5-byte
 * headers), and only the hello messages are reassembled, across records,
 * up to TP_TLSREC_HANDSHAKE_MAX; other handshake messages are framed and
 * skipped.
 *
 * What it reads, and where it stops reading:
 *
 *   - records: the 5-byte header (RFC 8446 5.1, RFC 5246 6.2.1), content
 *     type change_cipher_spec, alert, handshake or application_data,
 *     version 3.0 to 3.4, length at most TP_TLSREC_RECORD_MAX.  The first
 *     record must be handshake or alert; anything else there is "not-tls",
 *     and an SSLv2-style hello (a 2-byte header with the top bit set and
 *     message type 1) is "sslv2-hello".
 *   - handshake messages: reassembled across records; a message may not
 *     be interleaved with another content type (RFC 8446 5.1).  The first
 *     message must be a ClientHello or a ServerHello.
 *   - change_cipher_spec passes (it must be the single byte 1).  After it
 *     the handshake records are encrypted (the TLS 1.2 Finished) and are
 *     only framed, except in TLS 1.3's middlebox compatibility mode (RFC
 *     8446 D.4), where a dummy change_cipher_spec goes around a
 *     HelloRetryRequest and the second hello is still in the clear: the
 *     server's reader knows from the HelloRetryRequest it read, the
 *     client's is told with tp_tlsrec_after_hrr.  After a TLS 1.3
 *     ServerHello the rest of the handshake is encrypted as well.
 *   - the first alert or application_data record ends the reading.  In
 *     TLS 1.3 the encrypted handshake travels in application_data records,
 *     so TP_TLSREC_APPDATA follows the ServerHello at once: a relay that
 *     must close "before any application data" decides at the ServerHello
 *     and forwards nothing past the APPDATA report in any case.
 */
#ifndef TP_TLSREC_H
#define TP_TLSREC_H

#include <stddef.h>
#include <stdint.h>

struct tp_tlsrec;

/* limits: STYLE.md 7 */
#define TP_TLSREC_RECORD_MAX	(16384 + 2048)	/* RFC 5246 6.2.3: 2^14 + 2048 */
#define TP_TLSREC_HANDSHAKE_MAX	65536		/* a longer handshake message is refused */
#define TP_TLSREC_SNI_MAX	255		/* a DNS name, RFC 1035 2.3.4 */
#define TP_TLSREC_VERSIONS_MAX	127		/* RFC 8446 4.2.1: versions<2..254> */

/* the versions on the wire */
#define TP_TLSREC_SSL3		0x0300
#define TP_TLSREC_TLS10		0x0301
#define TP_TLSREC_TLS11		0x0302
#define TP_TLSREC_TLS12		0x0303
#define TP_TLSREC_TLS13		0x0304

/* what tp_tlsrec_feed reports */
enum {
	TP_TLSREC_ERROR = -1,		/* not TLS, or broken: tp_tlsrec_error says why */
	TP_TLSREC_MORE = 0,		/* all the input read, nothing to report yet */
	TP_TLSREC_CLIENT_HELLO = 1,	/* a ClientHello: tp_tlsrec_hello */
	TP_TLSREC_SERVER_HELLO = 2,	/* a ServerHello: tp_tlsrec_hello */
	TP_TLSREC_HRR = 3,		/* a HelloRetryRequest: tp_tlsrec_hello */
	TP_TLSREC_APPDATA = 4,		/* the header of the first application_data record */
	TP_TLSREC_ALERT = 5,		/* the first alert record: tp_tlsrec_alert */
};

/*
 * What a hello says.  Owned by the reader; valid until the next
 * tp_tlsrec_feed on it.  Lists keep the order and the values of the wire,
 * GREASE values (RFC 8701) included.
 */
struct tp_tlsrec_hello {
	uint16_t legacy_version;	/* the version field of the hello itself */
	/*
	 * ClientHello: the highest version offered: the highest
	 * supported_versions entry that is not GREASE, else legacy_version.
	 * ServerHello and HelloRetryRequest: the negotiated version, the
	 * higher of legacy_version and selected_version (TLS 1.3 is only
	 * ever negotiated by the supported_versions extension).
	 */
	uint16_t version;
	const uint16_t *suites;		/* ClientHello: the cipher suites offered */
	size_t nsuites;
	const uint16_t *versions;	/* ClientHello: supported_versions; 0 entries if absent */
	size_t nversions;
	const char *sni;		/* ClientHello: server_name host_name, NUL-terminated
					 * and checked (1..255 printable ASCII); NULL if none */
	uint16_t suite;			/* ServerHello, HelloRetryRequest: the suite chosen */
	uint16_t selected_version;	/* ServerHello, HelloRetryRequest: supported_versions;
					 * 0 if absent */
	int hrr;			/* this ServerHello is a HelloRetryRequest */
};

/* tp_tlsrec_new - a reader for one direction; NULL on allocation failure */
struct tp_tlsrec *tp_tlsrec_new(void);

/* tp_tlsrec_free - free it and set *r to NULL; NULL and *r == NULL are harmless */
void tp_tlsrec_free(struct tp_tlsrec **r);

/*
 * tp_tlsrec_feed - the next len bytes of the stream.  Reads up to the
 * first thing to report and sets *used_r to the bytes it consumed: all of
 * them for TP_TLSREC_MORE; for a report, up to the last byte it needed
 * (the end of the hello message, the application_data record's header,
 * the alert's header and, in the clear, its two bytes; for an error, the
 * byte that showed it).  After a hello, feed the rest (in + *used_r) again.
 *
 * TP_TLSREC_APPDATA, TP_TLSREC_ALERT and TP_TLSREC_ERROR end the reading:
 * every later call returns the same code and consumes nothing.  Where
 * reports fall and what they say does not depend on how the stream was
 * cut into calls.
 */
int tp_tlsrec_feed(struct tp_tlsrec *r, const uint8_t *in, size_t len,
		   size_t *used_r);

/*
 * tp_tlsrec_hello - the hello just reported (CLIENT_HELLO, SERVER_HELLO
 * or HRR by the last tp_tlsrec_feed), else NULL
 */
const struct tp_tlsrec_hello *tp_tlsrec_hello(const struct tp_tlsrec *r);

/*
 * tp_tlsrec_alert - after TP_TLSREC_ALERT: 0 and the alert's level and
 * description (RFC 8446 6) if it was in the clear; -1 if it was encrypted
 * (or no alert was reported)
 */
int tp_tlsrec_alert(const struct tp_tlsrec *r, uint8_t *level_r, uint8_t *desc_r);

/*
 * tp_tlsrec_error - after TP_TLSREC_ERROR, a short token for the log
 * ("not-tls", "sslv2-hello", "bad-record-version", "bad-record-type",
 * "record-too-long", "empty-record", "handshake-too-long",
 * "interleaved-handshake", "unexpected-message", "bad-clienthello",
 * "bad-sni", "bad-serverhello", "bad-change-cipher-spec", "bad-alert");
 * NULL before any error.  A static string.
 */
const char *tp_tlsrec_error(const struct tp_tlsrec *r);

/*
 * tp_tlsrec_after_hrr - for the client's reader: the server sent a
 * HelloRetryRequest, so the client's second ClientHello comes in the
 * clear even after a change_cipher_spec (RFC 8446 D.4).  The relay calls
 * it when the server's reader reports TP_TLSREC_HRR; the client cannot
 * send its second hello before that.
 */
void tp_tlsrec_after_hrr(struct tp_tlsrec *r);

/*
 * tp_tlsrec_is_clienthello_start - do the n bytes at p begin a TLS
 * handshake record carrying a ClientHello: 0x16, 0x03, 0x00..0x04, and,
 * where n reaches them, a record length from 1 to TP_TLSREC_RECORD_MAX
 * and handshake type 1?  0 if not, or if n < 3 (too few to tell).  For a
 * quick look at the first bytes of a connection (a client that starts
 * TLS on a STARTTLS port, a plaintext client on an implicit one).
 */
int tp_tlsrec_is_clienthello_start(const uint8_t *p, size_t n);

#endif
