/*
 * explain.c - tlspolicyctl explain PORT: the rule for a port in plain words
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "policy.h"
#include "replies.h"

static const char *const proto_upper[] = { "SMTP", "IMAP", "POP3" };
static const char *const starttls_word[] = { "STARTTLS", "STARTTLS", "STLS" };
static const char *const url_scheme[] = { "smtp", "imap", "pop3" };

static void what_before_tls(enum tp_protocol proto, int opportunistic)
{
	switch (proto) {
	case TP_PROTO_SMTP:
		printf("  Before TLS, the EHLO reply lists STARTTLS and no AUTH, and AUTH is refused with\n"
		       "    " TP_SMTP_NEED_TLS "\n");
		if (opportunistic)
			printf("  Mail itself may still be sent in clear (MAIL, RCPT, DATA work without TLS).\n");
		else
			printf("  So is every command but EHLO, HELO, STARTTLS, NOOP, RSET and QUIT.\n");
		break;
	case TP_PROTO_IMAP:
		printf("  Before TLS, the greeting and CAPABILITY list STARTTLS and LOGINDISABLED and no\n"
		       "  AUTH=; LOGIN and AUTHENTICATE are refused with\n"
		       "    TAG " TP_IMAP_NEED_TLS "\n"
		       "  and a password sent as a literal is never asked for.\n");
		break;
	case TP_PROTO_POP3:
		printf("  Before TLS, CAPA lists STLS and no USER or SASL; every command but CAPA, STLS\n"
		       "  and QUIT is refused with\n"
		       "    " TP_POP3_NEED_TLS "\n");
		break;
	}
	printf("  Anything a client sends after %s and before the handshake is discarded\n"
	       "  (STARTTLS command injection, CVE-2011-0411), never executed.\n",
	       starttls_word[proto]);
}

static void explain_mode(const struct tp_rule *r)
{
	enum tp_protocol pr = r->protocol;

	printf("\nWhat a client must do:\n");
	switch (r->tls) {
	case TP_TLS_IMPLICIT:
		printf("  Start the TLS handshake at once: implicit TLS, TLS from the first byte\n"
		       "  (RFC 8314). The %s session runs inside TLS from its greeting on.\n"
		       "  A client that speaks plaintext first is logged and disconnected; it is\n"
		       "  probably set to STARTTLS.\n", proto_upper[pr]);
		printf("\nClient setting: \"SSL/TLS\" (Thunderbird: Connection security SSL/TLS; Apple\n"
		       "  Mail and Outlook: SSL/TLS on; curl: %ss://HOST:%d/; openssl s_client -connect\n"
		       "  HOST:%d). Not \"STARTTLS\": that waits for a plaintext greeting which never comes.\n",
		       url_scheme[pr], r->port, r->port);
		break;
	case TP_TLS_STARTTLS:
	case TP_TLS_OPPORTUNISTIC:
		printf("  Connect in plaintext, read the greeting, then upgrade with %s and complete\n"
		       "  the TLS handshake (explicit TLS: RFC 3207 for SMTP, RFC 2595 for IMAP and POP3).\n",
		       starttls_word[pr]);
		if (r->tls == TP_TLS_STARTTLS)
			printf("  The upgrade is mandatory: nothing but the upgrade works before it.\n");
		else
			printf("  The upgrade is offered, not required (opportunistic, RFC 3207 section 4):\n"
			       "  mail servers without TLS can still deliver, but no password crosses in clear.\n");
		what_before_tls(pr, r->tls == TP_TLS_OPPORTUNISTIC);
		printf("\nClient setting: \"STARTTLS\" (Thunderbird: Connection security STARTTLS; curl:\n"
		       "  %s://HOST:%d/ --ssl-reqd; openssl s_client -connect HOST:%d -starttls %s).\n"
		       "  Not \"SSL/TLS\": that sends a TLS handshake first, which this port does not expect.\n",
		       url_scheme[pr], r->port, r->port, url_scheme[pr]);
		break;
	case TP_TLS_REFUSE:
		printf("  Nothing: this plaintext port is disabled. Clients get one protocol-correct\n"
		       "  refusal and are disconnected:\n    ");
		if (r->refuse_alt_port)
			printf(pr == TP_PROTO_SMTP ? TP_SMTP_REFUSE : pr == TP_PROTO_IMAP ? TP_IMAP_REFUSE : TP_POP3_REFUSE,
			       r->refuse_alt_port);
		else
			printf("%s", pr == TP_PROTO_SMTP ? TP_SMTP_REFUSE_NOALT :
			       pr == TP_PROTO_IMAP ? TP_IMAP_REFUSE_NOALT : TP_POP3_REFUSE_NOALT);
		printf("\n");
		if (r->refuse_alt_port)
			printf("\nClient setting: use port %d instead (see 'tlspolicyctl explain %d').\n",
			       r->refuse_alt_port, r->refuse_alt_port);
		break;
	}
}

static void print_list(const char *label, const char *list)
{
	printf("  %s: ", label);
	if (list[0] == '\0') {
		printf("none\n");
		return;
	}
	for (const char *p = list; *p; p++)
		putchar(*p == ':' ? ' ' : *p);
	putchar('\n');
}

static void explain_tls(const struct tp_rule *r)
{
	if (r->tls == TP_TLS_REFUSE)
		return;
	printf("\nTLS: %s or newer, profile %s.\n", tp_version_name(r->min_version),
	       r->profile->name);
	if (r->tls_by == TP_BY_MODULE)
		printf("  tlspolicyd does the handshake with wolfSSL (tls_by = module); the daemon sees\n"
		       "  plaintext and never holds the key.\n");
	else
		printf("  The mail daemon does the handshake itself (tls_by = daemon); tlspolicy reads\n"
		       "  the handshake going by and cuts the connection before any data if the daemon\n"
		       "  chose a version below %s or a banned suite.\n", tp_version_name(r->min_version));
	print_list("TLS 1.3 suites", r->tls13_suites);
	if (r->min_version < TP_TLS13)
		print_list("TLS 1.2 and below suites", r->tls12_suites);
	if (r->ban_classes) {
		printf("  banned classes:");
		for (size_t i = 0; i < tp_cipher_class_count; i++)
			if (r->ban_classes & tp_cipher_classes[i].bit)
				printf(" %s", tp_cipher_classes[i].name);
		printf("\n");
	}
}

static void explain_why(const struct tp_rule *r)
{
	printf("\nWhy: ");
	switch (r->tls) {
	case TP_TLS_IMPLICIT:
		printf("RFC 8314 prefers implicit TLS for mail access and submission: no plaintext\n"
		       "  phase means nothing to strip or inject before the handshake.\n");
		break;
	case TP_TLS_STARTTLS:
		printf("a mandatory upgrade keeps every password and message encrypted on a port\n"
		       "  that clients expect to greet them in plaintext; hiding AUTH before TLS\n"
		       "  stops clients from offering a password in clear.\n");
		break;
	case TP_TLS_OPPORTUNISTIC:
		printf("a public MX must accept mail from servers without TLS (RFC 3207\n"
		       "  section 4), so TLS is offered, not required; logins are another matter and\n"
		       "  never happen in clear.\n");
		break;
	case TP_TLS_REFUSE:
		printf("a plaintext port that is never needed is one less way to leak a password;\n"
		       "  the refusal tells clients where to go instead of leaving them to time out.\n");
		break;
	}
	if (r->enforce == TP_ENFORCE_AUDIT)
		printf("\nAUDIT MODE: nothing on this port is refused; every refusal above is only\n"
		       "  logged as action=would-refuse. Set enforce = yes to enforce it.\n");
}

int ctl_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "address", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL, *addr = NULL, *src = NULL;
	struct tp_policy *p;
	const struct tp_rule *r;
	char *end;
	long port;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'a': addr = optarg; break;
		default:
			fprintf(stderr, "tlspolicyctl explain: unknown option \"%s\"\n", argv[optind - 1]);
			return ctl_usage("explain");
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "tlspolicyctl explain: give exactly one PORT\n");
		return ctl_usage("explain");
	}
	port = strtol(argv[optind], &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "tlspolicyctl explain: \"%s\" is not a port number (1-65535)\n", argv[optind]);
		return ctl_usage("explain");
	}
	p = ctl_load(path, 0);
	if (p == NULL)
		return 1;
	r = tp_policy_lookup(p, (int)port, addr);
	if (r == NULL) {
		printf("Port %ld is not managed by this policy: tlspolicy leaves it alone, and the\n"
		       "daemon's own settings decide whether it uses TLS. Add a [port %ld] section to\n"
		       "manage it.\n", port, port);
		tp_policy_free(&p);
		return 1;
	}
	tp_policy_value(p, r, TP_KEY_TLS, &src);
	printf("Port %d: %s, tls = %s (section [%s], %s)\n", r->port, proto_upper[r->protocol],
	       tp_tls_mode_name(r->tls), r->section, src);
	explain_mode(r);
	explain_tls(r);
	explain_why(r);
	tp_policy_free(&p);
	return 0;
}
