/*
 * replies.h - the exact protocol replies tlspolicy sends before TLS
 *
 * One place for every reply string: the protocol filters send them, and
 * `tlspolicyctl explain` and the documentation quote them.  The wording
 * follows Postfix and Dovecot so that logs and clients look familiar.
 */
#ifndef TP_REPLIES_H
#define TP_REPLIES_H

/* SMTP (RFC 3207, RFC 4954) */
#define TP_SMTP_NEED_TLS	"530 5.7.0 Must issue a STARTTLS command first"
#define TP_SMTP_GO_TLS		"220 2.0.0 Ready to start TLS"
#define TP_SMTP_TLS_ACTIVE	"554 5.5.1 Error: TLS already active"
/* tls = refuse; %d is the port to use instead */
#define TP_SMTP_REFUSE		"554 5.7.0 This plaintext port is disabled by policy; use port %d with TLS"
#define TP_SMTP_REFUSE_NOALT	"554 5.7.0 This plaintext port is disabled by policy; use TLS"

/* IMAP (RFC 9051, RFC 2595, RFC 5530); a command's tag goes first */
#define TP_IMAP_NEED_TLS	"NO [PRIVACYREQUIRED] Cleartext authentication disallowed on non-secure (SSL/TLS) connections."
#define TP_IMAP_GO_TLS		"OK Begin TLS negotiation now."
#define TP_IMAP_TLS_ACTIVE	"BAD TLS is already active."
/* a "{n+}" literal before TLS, where LITERAL+/LITERAL- are not offered: the session ends */
#define TP_IMAP_NONSYNC_LITERAL	"* BYE Non-synchronizing literals are not allowed before TLS."
#define TP_IMAP_REFUSE		"* BYE This plaintext port is disabled by policy; use port %d with TLS"
#define TP_IMAP_REFUSE_NOALT	"* BYE This plaintext port is disabled by policy; use TLS"

/* POP3 (RFC 1939, RFC 2449, RFC 2595) */
#define TP_POP3_NEED_TLS	"-ERR [AUTH] Cleartext authentication disallowed on non-secure (SSL/TLS) connections."
#define TP_POP3_GO_TLS		"+OK Begin TLS negotiation now."
#define TP_POP3_TLS_ACTIVE	"-ERR TLS already active."
#define TP_POP3_REFUSE		"-ERR This plaintext port is disabled by policy; use port %d with TLS"
#define TP_POP3_REFUSE_NOALT	"-ERR This plaintext port is disabled by policy; use TLS"

#endif
