/*
 * keys.c - the table of policy keys and their validators
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ciphers.h"
#include "diag.h"
#include "keys.h"
#include "util.h"

static const struct tp_key_value protocol_values[] = {
	{ "smtp", "SMTP: mail transfer (25), submission (587), submissions (465)" },
	{ "imap", "IMAP: mail access (143, and 993 with implicit TLS)" },
	{ "pop3", "POP3: mail download (110, and 995 with implicit TLS)" },
	{ NULL, NULL }
};

static const struct tp_key_hint protocol_hints[] = {
	{ "smtps", "\"smtps\" is SMTP over implicit TLS: write protocol = smtp and tls = implicit" },
	{ "submission", "submission is SMTP: write protocol = smtp (and tls = starttls on port 587)" },
	{ "submissions", "submissions is SMTP over implicit TLS: write protocol = smtp and tls = implicit" },
	{ "esmtp", "ESMTP is SMTP: write protocol = smtp" },
	{ "imaps", "\"imaps\" is IMAP over implicit TLS: write protocol = imap and tls = implicit" },
	{ "imap4", "write protocol = imap" },
	{ "pop", "write protocol = pop3" },
	{ "pop3s", "\"pop3s\" is POP3 over implicit TLS: write protocol = pop3 and tls = implicit" },
	{ NULL, NULL }
};

static const struct tp_key_value tls_values[] = {
	{ "implicit", "TLS from the first byte (RFC 8314; ports 465, 993, 995)" },
	{ "starttls", "plaintext greeting, then a mandatory STARTTLS/STLS upgrade (RFC 3207, RFC 2595; ports 587, 143, 110)" },
	{ "opportunistic", "STARTTLS offered, mail may flow in clear, authentication never does (RFC 3207 section 4; port 25)" },
	{ "refuse", "the plaintext port is closed with a reply naming the port to use instead" },
	{ NULL, NULL }
};

static const struct tp_key_hint tls_hints[] = {
	{ "tls", "\"tls\" is ambiguous: use \"implicit\" (TLS from the first byte, ports 465/993/995) or \"starttls\" (upgrade after the plaintext greeting, ports 587/143/110)" },
	{ "ssl", "\"ssl\" is ambiguous: it usually means TLS from the first byte (the old \"SSL ports\" 465/993/995): use \"implicit\"; for an upgrade after the greeting use \"starttls\"" },
	{ "ssl/tls", "\"ssl/tls\" is what mail clients call TLS from the first byte: use \"implicit\"" },
	{ "tls/ssl", "\"tls/ssl\" is what mail clients call TLS from the first byte: use \"implicit\"" },
	{ "explicit", "\"explicit\" TLS means the STARTTLS upgrade: use \"starttls\" (mandatory) or \"opportunistic\" (mail may flow in clear, as on port 25)" },
	{ "tls-if-available", "\"tls-if-available\" means STARTTLS when both sides can: use \"opportunistic\" (port 25), or \"starttls\" to make it mandatory" },
	{ "stls", "STLS is POP3's name for STARTTLS: use \"starttls\"" },
	{ "required", "use \"starttls\" (upgrade required) or \"implicit\" (TLS from the first byte)" },
	{ "mandatory", "use \"starttls\" (upgrade required) or \"implicit\" (TLS from the first byte)" },
	{ "none", "to disable the plaintext port use \"refuse\"; to leave the port alone, remove its section" },
	{ "plain", "to disable the plaintext port use \"refuse\"; to leave the port alone, remove its section" },
	{ "plaintext", "to disable the plaintext port use \"refuse\"; to leave the port alone, remove its section" },
	{ "off", "to disable the plaintext port use \"refuse\"; to leave the port alone, remove its section" },
	{ "no", "to disable the plaintext port use \"refuse\"; to leave the port alone, remove its section" },
	{ "smtps", "use \"implicit\" (TLS from the first byte)" },
	{ "imaps", "use \"implicit\" (TLS from the first byte)" },
	{ "pop3s", "use \"implicit\" (TLS from the first byte)" },
	{ NULL, NULL }
};

static const struct tp_key_value tls_by_values[] = {
	{ "module", "tlspolicyd does the TLS handshake with wolfSSL; the daemon sees plaintext" },
	{ "daemon", "the daemon does TLS itself; tlspolicyd checks what it negotiated and cuts off what the policy forbids" },
	{ NULL, NULL }
};

static const struct tp_key_hint tls_by_hints[] = {
	{ "tlspolicy", "use \"module\" (tlspolicyd does the TLS)" },
	{ "tlspolicyd", "use \"module\" (tlspolicyd does the TLS)" },
	{ "wolfssl", "use \"module\" (tlspolicyd does the TLS with wolfSSL)" },
	{ "server", "use \"daemon\" (the mail daemon does the TLS)" },
	{ "postfix", "use \"daemon\" (the mail daemon does the TLS)" },
	{ "dovecot", "use \"daemon\" (the mail daemon does the TLS)" },
	{ "exim", "use \"daemon\" (the mail daemon does the TLS)" },
	{ NULL, NULL }
};

static const struct tp_key_value enforce_values[] = {
	{ "yes", "refuse what the policy forbids" },
	{ "audit", "log what would be refused (action=would-refuse) and refuse nothing" },
	{ NULL, NULL }
};

static const struct tp_key_hint enforce_hints[] = {
	{ "no", "\"no\": there is no enforce = no; use \"audit\" to only log what would be refused, or remove a port's section to leave that port alone" },
	{ "off", "\"off\": there is no enforce = off; use \"audit\" to only log what would be refused, or remove a port's section to leave that port alone" },
	{ "false", "\"false\": there is no enforce = false; use \"audit\" to only log what would be refused, or remove a port's section to leave that port alone" },
	{ "true", "write \"yes\"" },
	{ "on", "write \"yes\"" },
	{ "1", "write \"yes\"" },
	{ "log", "use \"audit\" to log what would be refused" },
	{ NULL, NULL }
};

const struct tp_key tp_keys[TP_KEY_COUNT] = {
	[TP_KEY_PROFILE] = {
		"profile", TP_TYPE_PROFILE, TP_SCOPE_ANY, "intermediate", NULL,
		0, 0, NULL, NULL,
		"named set of protocol floor and cipher suites",
		"The named starting point for protocol versions and cipher suites. "
		"min_protocol and ban_ciphers adjust it.",
	},
	[TP_KEY_MIN_PROTOCOL] = {
		"min_protocol", TP_TYPE_VERSION, TP_SCOPE_ANY, NULL, "the profile's floor",
		0, 0, NULL, NULL,
		"lowest TLS version accepted: TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3",
		"The lowest protocol version a handshake may use. SSLv2 and SSLv3 are "
		"never accepted (RFC 6176, RFC 7568). Below TLSv1.2 draws a warning "
		"(RFC 8996 deprecates TLS 1.0 and 1.1).",
	},
	[TP_KEY_BAN_CIPHERS] = {
		"ban_ciphers", TP_TYPE_CIPHERS, TP_SCOPE_ANY, "", "nothing beyond the profile",
		0, 0, NULL, NULL,
		"cipher classes or suite names removed from the profile's suites",
		"Cipher classes or suite names (wolfSSL or IANA spelling) to remove from "
		"the profile's suites, separated by spaces or commas. Each word must be "
		"a class or a suite the installed wolfSSL offers; a ban that leaves no "
		"usable suite is an error. In a [port] section the words add to those "
		"of [global]: a port can ban more, never less.",
	},
	[TP_KEY_CERTIFICATE] = {
		"certificate", TP_TYPE_PATH, TP_SCOPE_ANY, NULL, "none",
		0, 0, NULL, NULL,
		"PEM certificate chain, server certificate first",
		"The PEM file with the server certificate followed by its chain, used "
		"where tls_by = module. Required there; it must parse, match "
		"private_key and not be expired. A relative path is relative to the "
		"file that names it.",
	},
	[TP_KEY_PRIVATE_KEY] = {
		"private_key", TP_TYPE_PATH, TP_SCOPE_ANY, NULL, "none",
		0, 0, NULL, NULL,
		"PEM private key of the certificate",
		"The PEM private key matching certificate. It must not be readable by "
		"other users (mode 0600, or 0640 with group ssl-cert). Only tlspolicyd "
		"reads it; the mail daemons never see it.",
	},
	[TP_KEY_ENFORCE] = {
		"enforce", TP_TYPE_ENUM, TP_SCOPE_ANY, "yes", NULL,
		0, 0, enforce_values, enforce_hints,
		"yes: refuse what the policy forbids; audit: only log it",
		"With audit, every refusal the policy would make is logged as "
		"action=would-refuse and the connection goes on. Use it to learn what a "
		"stricter policy would break before enforcing it.",
	},
	[TP_KEY_HANDSHAKE_TIMEOUT] = {
		"handshake_timeout", TP_TYPE_SECONDS, TP_SCOPE_ANY, "30", NULL,
		1, 600, NULL, NULL,
		"seconds allowed for the plaintext phase and the TLS handshake",
		"Seconds a client has to finish the plaintext phase and the TLS "
		"handshake; then the connection is closed.",
	},
	[TP_KEY_RELAY_SOCKET] = {
		"relay_socket", TP_TYPE_SOCKET, TP_SCOPE_GLOBAL, "@tlspolicy", NULL,
		0, 0, NULL, NULL,
		"abstract UNIX socket between the shim and tlspolicyd",
		"The abstract-namespace UNIX socket (\"@name\") over which the shim "
		"hands connections to tlspolicyd. Abstract names work inside a chroot. "
		"Only in [global].",
	},
	[TP_KEY_USER] = {
		"user", TP_TYPE_USER, TP_SCOPE_GLOBAL, "tlspolicy", NULL,
		0, 0, NULL, NULL,
		"the system user tlspolicyd runs as, and the only one the shims trust",
		"The unprivileged system user tlspolicyd runs as after it has bound its "
		"socket. The shim hands connections only to a tlspolicyd running as root "
		"or as this user (SO_PEERCRED), because any local user could bind an "
		"abstract socket name. tlspolicyd refuses to start if the user does not "
		"exist. Takes effect on restart. Only in [global].",
	},
	[TP_KEY_MAX_CONNECTIONS] = {
		"max_connections", TP_TYPE_COUNT, TP_SCOPE_GLOBAL, "4096", NULL,
		1, 1048576, NULL, NULL,
		"connections tlspolicyd relays at once, in all",
		"The most connections tlspolicyd relays at once; a connection over it "
		"is refused (the daemon's accept() fails with ECONNABORTED and the "
		"client is disconnected) and logged. Only in [global].",
	},
	[TP_KEY_MAX_CONNECTIONS_PER_CLIENT] = {
		"max_connections_per_client", TP_TYPE_COUNT, TP_SCOPE_GLOBAL, "50", NULL,
		1, 1048576, NULL, NULL,
		"connections tlspolicyd relays at once from one client address (IPv6: per /64)",
		"The most connections tlspolicyd relays at once from one client: one "
		"IPv4 address (also when a dual-stack listener sees it as "
		"::ffff:a.b.c.d), or one IPv6 /64, the block one site holds (RFC 6177). "
		"One client holding idle connections then cannot exhaust tlspolicyd for "
		"everybody (Postfix's smtpd_client_connection_count_limit plays the same "
		"part). Only in [global].",
	},
	[TP_KEY_PLAINTEXT_TIMEOUT] = {
		"plaintext_timeout", TP_TYPE_SECONDS, TP_SCOPE_ANY, "300", NULL,
		1, 3600, NULL, NULL,
		"seconds a client may stay silent before TLS on an opportunistic port",
		"On a port with tls = opportunistic, where mail may flow in clear and "
		"the plaintext phase has no overall limit, the seconds a client may stay "
		"silent before TLS; then the connection is closed (Postfix's smtpd_timeout "
		"is 300 s). Other modes bound the whole plaintext phase and the "
		"handshake with handshake_timeout.",
	},
	[TP_KEY_PROTOCOL] = {
		"protocol", TP_TYPE_ENUM, TP_SCOPE_PORT, NULL, "none: required",
		0, 0, protocol_values, protocol_hints,
		"the mail protocol spoken on the port",
		"The protocol spoken on the port. Required in every [port] section.",
	},
	[TP_KEY_TLS] = {
		"tls", TP_TYPE_ENUM, TP_SCOPE_PORT, NULL, "none: required",
		0, 0, tls_values, tls_hints,
		"how TLS is used on the port (words of RFC 8314 and RFC 3207)",
		"How TLS is used on the port. Required in every [port] section. The "
		"words clients use (tls, ssl, ssl/tls, explicit, tls-if-available) are "
		"ambiguous and rejected with an explanation.",
	},
	[TP_KEY_TLS_BY] = {
		"tls_by", TP_TYPE_ENUM, TP_SCOPE_ANY, "module", NULL,
		0, 0, tls_by_values, tls_by_hints,
		"who does the TLS handshake: module (tlspolicyd) or daemon",
		"Who does the TLS handshake on the port.",
	},
};

const struct tp_key *tp_key_lookup(const char *name)
{
	for (size_t i = 0; i < TP_KEY_COUNT; i++)
		if (strcmp(name, tp_keys[i].name) == 0)
			return &tp_keys[i];
	return NULL;
}

const char *tp_key_suggest(const char *name)
{
	const char *names[TP_KEY_COUNT];

	for (size_t i = 0; i < TP_KEY_COUNT; i++)
		names[i] = tp_keys[i].name;
	/* "ciphers", "cert", "key": common short forms that are too far for typos */
	if (strstr(name, "cipher") != NULL)
		return "ban_ciphers";
	if (strncmp(name, "cert", 4) == 0)
		return "certificate";
	if (strcmp(name, "key") == 0 || strstr(name, "key_file") != NULL ||
	    strcmp(name, "keyfile") == 0)
		return "private_key";
	if (strstr(name, "version") != NULL || strcmp(name, "min_tls") == 0)
		return "min_protocol";
	return tp_suggest(name, names, TP_KEY_COUNT);
}

int tp_key_enum_index(const struct tp_key *k, const char *value)
{
	for (int i = 0; k->values[i].word != NULL; i++)
		if (strcasecmp(value, k->values[i].word) == 0)
			return i;
	return -1;
}

/* word_list - "a, b or c" for an error message; static buffer */
static const char *word_list(const char *const *w, size_t n)
{
	static __thread char buf[512];
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(buf); i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";

		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", sep, w[i]);
	}
	return buf;
}

static void bad_value(const struct tp_key *k, const struct tp_where *w,
		      struct tp_diags *d, const char *value, const char *say)
{
	tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name, value,
		     "%s", say);
}

static int check_enum(const struct tp_key *k, const char *value,
		      const struct tp_where *w, struct tp_diags *d)
{
	const char *words[16];
	size_t n = 0;
	const char *guess;

	for (; k->values[n].word != NULL && n < 16; n++) {
		words[n] = k->values[n].word;
		if (strcasecmp(value, words[n]) == 0)
			return 0;
	}
	for (size_t i = 0; k->hints != NULL && k->hints[i].word != NULL; i++) {
		if (strcasecmp(value, k->hints[i].word) == 0) {
			/* a hint that starts by quoting the word stands alone */
			if (k->hints[i].say[0] == '"')
				tp_diags_add(d, TP_ERROR, w->file, w->line, w->section,
					     k->name, value, "%s", k->hints[i].say);
			else
				tp_diags_add(d, TP_ERROR, w->file, w->line, w->section,
					     k->name, value, "\"%s\" is not a value for %s; %s",
					     value, k->name, k->hints[i].say);
			return -1;
		}
	}
	guess = tp_suggest(value, words, n);
	if (value[0] == '\0')
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "empty value; use %s", word_list(words, n));
	else if (guess != NULL)
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "unknown value \"%s\"; did you mean \"%s\"? (allowed: %s)",
			     value, guess, word_list(words, n));
	else
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "unknown value \"%s\"; use %s", value,
			     word_list(words, n));
	return -1;
}

static int check_profile(const struct tp_key *k, const char *value,
			 const struct tp_where *w, struct tp_diags *d)
{
	const char *words[8];
	const char *guess;
	size_t n = tp_profile_count < 8 ? tp_profile_count : 8;

	if (tp_profile_lookup(value) != NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		words[i] = tp_profiles[i].name;
	guess = tp_suggest(value, words, n);
	if (strcasecmp(value, "default") == 0 || strcasecmp(value, "recommended") == 0)
		guess = "intermediate";
	else if (strcasecmp(value, "old") == 0 || strcasecmp(value, "compat") == 0 ||
		 strcasecmp(value, "compatible") == 0)
		guess = "legacy";
	else if (strcasecmp(value, "secure") == 0 || strcasecmp(value, "strict") == 0)
		guess = "modern";
	if (guess != NULL)
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "unknown profile \"%s\"; did you mean \"%s\"? (allowed: %s)",
			     value, guess, word_list(words, n));
	else
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "unknown profile \"%s\"; use %s", value,
			     word_list(words, n));
	return -1;
}

/* version_guess - "1.2", "TLS1.2", "tlsv1_2", "TLSv1" to the name meant */
static const char *version_guess(const char *value)
{
	char digits[8];
	size_t n = 0;
	const char *p = value;

	if (strncasecmp(p, "tls", 3) == 0)
		p += 3;
	for (; *p != '\0'; p++) {
		if (isdigit((unsigned char)*p) && n < sizeof(digits) - 1)
			digits[n++] = *p;
		else if (strchr("vV._- ", *p) == NULL)
			return NULL;
	}
	digits[n] = '\0';
	if (strcmp(digits, "1") == 0 || strcmp(digits, "10") == 0)
		return "TLSv1.0";
	if (strcmp(digits, "11") == 0)
		return "TLSv1.1";
	if (strcmp(digits, "12") == 0)
		return "TLSv1.2";
	if (strcmp(digits, "13") == 0)
		return "TLSv1.3";
	return NULL;
}

static int check_version(const struct tp_key *k, const char *value,
			 const struct tp_where *w, struct tp_diags *d)
{
	const char *guess;

	if (tp_version_parse(value) != TP_VERSION_NONE)
		return 0;
	if (strncasecmp(value, "SSL", 3) == 0) {
		bad_value(k, w, d, value,
			  "SSLv2 and SSLv3 are broken (RFC 6176, RFC 7568: POODLE) and never accepted; use TLSv1.2");
		return -1;
	}
	guess = version_guess(value);
	if (guess != NULL)
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "unknown version \"%s\"; did you mean \"%s\"? (allowed: TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)",
			     value, guess);
	else
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "unknown version \"%s\"; use TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3",
			     value);
	return -1;
}

/*
 * check_number - a whole number in [k->min, k->max]; what is "whole
 * seconds" or "a whole number", unit " seconds" or ""
 */
static int check_number(const struct tp_key *k, const char *value,
			const struct tp_where *w, struct tp_diags *d,
			const char *what, const char *unit)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (value[0] == '\0' || end == value) {
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "\"%s\" is not a number; write %s between %ld and %ld, e.g. %s",
			     value, what, k->min, k->max, k->def);
		return -1;
	}
	if (*end != '\0') {
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "\"%s\" is not a plain number; write %s in decimal without a unit, e.g. %s",
			     value, what, k->def);
		return -1;
	}
	if (errno == ERANGE || v < k->min || v > k->max) {
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "%s is out of range; use %ld to %ld%s",
			     value, k->min, k->max, unit);
		return -1;
	}
	return 0;
}

/* check_user - a portable user name (POSIX 3.437, as useradd takes it) */
static int check_user(const struct tp_key *k, const char *value,
		      const struct tp_where *w, struct tp_diags *d)
{
	size_t len = strlen(value);

	if (len == 0 || len > 32 || value[0] == '-' ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
		bad_value(k, w, d, value,
			  "not a user name; write the name of a system user (letters, digits, \".\", \"_\", \"-\"; at most 32), e.g. tlspolicy");
		return -1;
	}
	return 0;
}

static int check_path(const struct tp_key *k, const char *value,
		      const struct tp_where *w, struct tp_diags *d)
{
	if (value[0] == '\0') {
		bad_value(k, w, d, value, "empty path; give the PEM file's path, or remove the line");
		return -1;
	}
	if (strchr(value, '"') != NULL || strlen(value) >= 4096) {
		bad_value(k, w, d, value, "not a usable path (a quote character or too long); rename the file");
		return -1;
	}
	return 0;
}

static int check_socket(const struct tp_key *k, const char *value,
			const struct tp_where *w, struct tp_diags *d)
{
	size_t len = strlen(value);

	if (value[0] != '@') {
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     value, "\"%s\" is not an abstract socket name; write \"@\" and a name, e.g. @tlspolicy (abstract names also work inside the daemons' chroot)",
			     value);
		return -1;
	}
	if (len < 2 || len > 100) {
		bad_value(k, w, d, value, "the name after \"@\" must be 1 to 99 characters");
		return -1;
	}
	for (size_t i = 1; i < len; i++) {
		if (!isgraph((unsigned char)value[i])) {
			bad_value(k, w, d, value, "the socket name may not contain spaces or control characters");
			return -1;
		}
	}
	return 0;
}

/* cipher_names - class names and suite names, for "did you mean" */
static const char *cipher_guess(const char *word)
{
	const char *names[512];
	size_t n = 0, ns;
	const struct tp_suite *s = tp_suites(&ns);

	for (size_t i = 0; i < tp_cipher_class_count; i++)
		names[n++] = tp_cipher_classes[i].name;
	for (size_t i = 0; i < ns && n + 2 <= 512; i++) {
		names[n++] = s[i].name;
		names[n++] = s[i].iana;
	}
	return tp_suggest(word, names, n);
}

static const char *class_list(void)
{
	const char *names[64];
	size_t n = 0;

	for (size_t i = 0; i < tp_cipher_class_count && n < 64; i++)
		names[n++] = tp_cipher_classes[i].name;
	return word_list(names, n);
}

static int check_cipher_word(const struct tp_key *k, const char *word,
			     const struct tp_where *w, struct tp_diags *d)
{
	const char *guess;

	if (tp_cipher_class_lookup(word) != NULL || tp_suite_lookup(word) != NULL)
		return 0;
	if (word[0] == '!' || word[0] == '-' || word[0] == '+') {
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     word, "\"%s\": ban_ciphers lists what to ban, not an OpenSSL cipher string; write \"%s\"",
			     word, word + 1);
		return -1;
	}
	if (strcasecmp(word, "ALL") == 0 || strcasecmp(word, "HIGH") == 0 ||
	    strcasecmp(word, "MEDIUM") == 0 || strcasecmp(word, "LOW") == 0 ||
	    strcasecmp(word, "DEFAULT") == 0 || word[0] == '@') {
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     word, "\"%s\" is OpenSSL cipher-string syntax; ban_ciphers takes classes (%s) or suite names, and the profile chooses the rest",
			     word, class_list());
		return -1;
	}
#ifdef TP_POLICY_NO_TLS
	return 0;	/* the shim knows no suite names; tlspolicyctl and tlspolicyd check them */
#endif
	guess = cipher_guess(word);
	if (guess != NULL)
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     word, "\"%s\" is not a cipher class or a suite this wolfSSL offers; did you mean \"%s\"?",
			     word, guess);
	else
		tp_diags_add(d, TP_ERROR, w->file, w->line, w->section, k->name,
			     word, "\"%s\" is not a cipher class or a suite this wolfSSL offers; classes: %s; \"tlspolicyctl show --ciphers\" lists the suites",
			     word, class_list());
	return -1;
}

#define CIPHER_SEPARATORS " \t,:"

static int check_ciphers(const struct tp_key *k, const char *value,
			 const struct tp_where *w, struct tp_diags *d)
{
	char *copy = strdup(value), *sp = NULL;
	int rc = 0;

	if (copy == NULL)
		return -1;
	for (char *t = strtok_r(copy, CIPHER_SEPARATORS, &sp); t != NULL;
	     t = strtok_r(NULL, CIPHER_SEPARATORS, &sp))
		if (check_cipher_word(k, t, w, d) < 0)
			rc = -1;
	free(copy);
	return rc;
}

size_t tp_ciphers_parse(const char *value, unsigned *classes_r,
			const struct tp_suite **suites, size_t max)
{
	char *copy = strdup(value), *sp = NULL;
	size_t n = 0;

	*classes_r = 0;
	if (copy == NULL)
		return 0;
	for (char *t = strtok_r(copy, CIPHER_SEPARATORS, &sp); t != NULL;
	     t = strtok_r(NULL, CIPHER_SEPARATORS, &sp)) {
		const struct tp_cipher_class *c = tp_cipher_class_lookup(t);
		const struct tp_suite *s = c ? NULL : tp_suite_lookup(t);

		if (c != NULL)
			*classes_r |= c->bit;
		else if (s != NULL && n < max)
			suites[n++] = s;
	}
	free(copy);
	return n;
}

int tp_key_check(const struct tp_key *k, const char *value,
		 const struct tp_where *w, struct tp_diags *d)
{
	switch (k->type) {
	case TP_TYPE_ENUM:
		return check_enum(k, value, w, d);
	case TP_TYPE_PROFILE:
		return check_profile(k, value, w, d);
	case TP_TYPE_VERSION:
		return check_version(k, value, w, d);
	case TP_TYPE_SECONDS:
		return check_number(k, value, w, d, "whole seconds", " seconds");
	case TP_TYPE_COUNT:
		return check_number(k, value, w, d, "a whole number", "");
	case TP_TYPE_USER:
		return check_user(k, value, w, d);
	case TP_TYPE_PATH:
		return check_path(k, value, w, d);
	case TP_TYPE_CIPHERS:
		return check_ciphers(k, value, w, d);
	case TP_TYPE_SOCKET:
		return check_socket(k, value, w, d);
	}
	return -1;
}
