/*
 * probe.c - tlspolicyctl probe HOST:PORT: audit a live server against the
 * rule the policy gives its port
 *
 * The probe is a wolfSSL client and needs nothing of tlspolicy on the
 * server: it is as much for Postfix or Dovecot configured by hand as for
 * a port under the module.  Each check is one line, PASS, WARN or FAIL;
 * a FAIL carries one line of advice.  WARN is only for what could not be
 * tested and for what is allowed but close to the edge.
 */
#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certcheck.h"
#include "ctl.h"
#include "json.h"
#include "probe.h"

/* the bans assumed where no policy rule says: the shipped policy's */
#define DEFAULT_BANS "NULL aNULL EXPORT RC4 DES 3DES MD5"

static const char *const status_name[] = { "PASS", "WARN", "FAIL" };

struct probe_opts {
	const char *config, *protocol, *tls, *min_version;
	int json;
};

/* split_target - "host:port", "[v6]:port"; 0 or -1 */
static int split_target(char *target, const char **host_r, const char **port_r)
{
	char *colon = strrchr(target, ':');

	if (colon == NULL || colon == target || colon[1] == '\0' ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	*colon = '\0';
	*port_r = colon + 1;
	if (target[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		target++;
	}
	*host_r = target;
	return 0;
}

/* local_literal - host if it is an address literal of this machine, else NULL */
static const char *local_literal(const char *host)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	int v6 = inet_pton(AF_INET6, host, &a6.sin6_addr) == 1, fd, ok;

	if (!v6 && inet_pton(AF_INET, host, &a4.sin_addr) != 1)
		return NULL;
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return NULL;
	/* an address we can bind to is one of ours */
	ok = v6 ? bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0 :
	     bind(fd, (struct sockaddr *)&a4, sizeof(a4)) == 0;
	close(fd);
	return ok ? host : NULL;
}

static int parse_bans(const char *list, unsigned *ban)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *w = strtok_r(buf, " ,", &save); w != NULL; w = strtok_r(NULL, " ,", &save)) {
		const struct tp_cipher_class *c = tp_cipher_class_lookup(w);

		if (c == NULL)
			return -1;
		*ban |= c->bit;
	}
	return 0;
}

/* expect_from_options - what --protocol, --tls and --min-version say; 0 or -1 */
static int expect_from_options(struct probe *p, const struct probe_opts *o)
{
	static const char *const protos[] = { "smtp", "imap", "pop3" };
	static const char *const modes[] = { "implicit", "starttls", "opportunistic", "refuse" };

	if (o->protocol != NULL) {
		unsigned i;

		for (i = 0; i < 3 && strcmp(o->protocol, protos[i]) != 0; i++)
			;
		if (i == 3) {
			fprintf(stderr, "tlspolicyctl probe: --protocol must be smtp, imap or pop3, not \"%s\"\n", o->protocol);
			return -1;
		}
		p->proto = (enum tp_protocol)i;
	}
	if (o->tls != NULL) {
		unsigned i;

		for (i = 0; i < 4 && strcmp(o->tls, modes[i]) != 0; i++)
			;
		if (i == 4) {
			fprintf(stderr, "tlspolicyctl probe: --tls must be implicit, starttls, opportunistic or refuse, not \"%s\"\n", o->tls);
			return -1;
		}
		p->tls = (enum tp_tls_mode)i;
	}
	if (o->min_version != NULL) {
		p->floor = tp_version_parse(o->min_version);
		if (p->floor == TP_VERSION_NONE) {
			fprintf(stderr, "tlspolicyctl probe: --min-version must be TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3, not \"%s\"\n", o->min_version);
			return -1;
		}
	}
	return 0;
}

/*
 * expect - the rule for the port, or what the options say; 0, or -1
 * (printed) when there is nothing to check against
 */
static int expect(struct probe *p, const struct probe_opts *o, struct tp_policy **pol_r)
{
	const char *path = o->config != NULL ? o->config : tp_policy_default_path();
	const struct tp_rule *r = NULL;
	int port = atoi(p->port);

	if (o->config != NULL || access(path, F_OK) == 0 || o->tls == NULL) {
		*pol_r = ctl_load(path, 0);
		if (*pol_r == NULL)
			return -1;
		r = tp_policy_lookup(*pol_r, port, local_literal(p->host));
	}
	if (r == NULL && (o->tls == NULL || o->protocol == NULL)) {
		fprintf(stderr, "tlspolicyctl probe: port %d is not managed by the policy %s;\n"
			"say what to expect with --protocol smtp|imap|pop3 and --tls implicit|starttls\n", port, path);
		return -1;
	}
	if (r != NULL) {
		p->rule = r->section;
		p->proto = r->protocol;
		p->tls = r->tls;
		p->floor = r->min_version;
		p->ban = r->ban_classes;
	} else {
		p->floor = TP_TLS12;
		parse_bans(DEFAULT_BANS, &p->ban);
	}
	return expect_from_options(p, o);
}

/*
 * version_advice - what to set for the floor, in both daemons' words:
 * Postfix applies smtpd_tls_mandatory_protocols where TLS is required
 * (security level encrypt, wrapper mode) and smtpd_tls_protocols where
 * it is opportunistic, so both are named
 */
static const char *version_advice(enum tp_version floor)
{
	switch (floor) {
	case TP_TLS13:
		return "raise the server's minimum protocol to the policy's floor (Postfix: smtpd_tls_protocols = >=TLSv1.3 and smtpd_tls_mandatory_protocols = >=TLSv1.3; Dovecot: ssl_min_protocol = TLSv1.3)";
	case TP_TLS11:
		return "raise the server's minimum protocol to the policy's floor (Postfix: smtpd_tls_protocols = >=TLSv1.1 and smtpd_tls_mandatory_protocols = >=TLSv1.1; Dovecot: ssl_min_protocol = TLSv1.1)";
	default:
		return "raise the server's minimum protocol to the policy's floor (Postfix: smtpd_tls_protocols = >=TLSv1.2 and smtpd_tls_mandatory_protocols = >=TLSv1.2; Dovecot: ssl_min_protocol = TLSv1.2)";
	}
}

/* check_version - one version below the floor must be refused */
static void check_version(struct probe *p, enum tp_version v)
{
	struct pn_tls t = { .version = v == TP_TLS11 ? PN_TLS11 : PN_TLS12 };
	struct pn_result r;
	char id[32];
	int rc;

	snprintf(id, sizeof(id), "version-%s", v == TP_TLS10 ? "tls1.0" : v == TP_TLS11 ? "tls1.1" : "tls1.2");
	if (v == TP_TLS10) {
		probe_add(p, id, PROBE_WARN, NULL, "not tested: this wolfSSL cannot make a TLS 1.0 client");
		return;
	}
	rc = probe_attempt(p, &t, &r);
	if (rc == 0)
		probe_add(p, id, PROBE_FAIL, version_advice(p->floor),
			  "%s accepted (%s) below the floor %s", tp_version_name(v), r.cipher, tp_version_name(p->floor));
	else if (rc == -1)
		probe_add(p, id, PROBE_PASS, NULL, "%s refused", tp_version_name(v));
	else
		probe_add(p, id, PROBE_WARN, NULL, "not tested: %s", r.error);
}

/* check_floor - the floor itself must be accepted: the policy promises it to clients */
static void check_floor(struct probe *p)
{
	struct pn_tls t = { .version = p->floor == TP_TLS13 ? PN_TLS13 : p->floor == TP_TLS12 ? PN_TLS12 : PN_TLS11 };
	struct pn_result r;
	int rc;

	if (p->floor == TP_TLS10) {
		probe_add(p, "version-floor", PROBE_WARN, NULL, "not tested: this wolfSSL cannot make a TLS 1.0 client");
		return;
	}
	rc = probe_attempt(p, &t, &r);
	if (rc == 0)
		probe_add(p, "version-floor", PROBE_PASS, NULL, "%s accepted (%s)", tp_version_name(p->floor), r.cipher);
	else if (rc == -1)
		probe_add(p, "version-floor", PROBE_FAIL, "allow the policy's minimum version: clients limited to it cannot connect",
			  "%s refused: %s", tp_version_name(p->floor), r.error);
	else
		probe_add(p, "version-floor", PROBE_WARN, NULL, "not tested: %s", r.error);
}

/* class_suites - the TLS <= 1.2 suites of this wolfSSL in a class, as a cipher list */
static size_t class_suites(unsigned bit, char *list, size_t size)
{
	size_t n, count = 0, len = 0;
	const struct tp_suite *s = tp_suites(&n);

	list[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (s[i].tls13 || !(s[i].classes & bit) || len + strlen(s[i].name) + 2 > size)
			continue;
		len += (size_t)snprintf(list + len, size - len, "%s%s", count ? ":" : "", s[i].name);
		count++;
	}
	return count;
}

/* check_classes - one handshake per banned class, offering only its suites */
static void check_classes(struct probe *p)
{
	for (size_t i = 0; i < tp_cipher_class_count; i++) {
		const struct tp_cipher_class *cl = &tp_cipher_classes[i];
		struct pn_tls t = { .version = PN_TLS12 };
		struct pn_result r;
		char id[32], list[2048];
		int rc;

		if (!(p->ban & cl->bit))
			continue;
		snprintf(id, sizeof(id), "class-%s", cl->name);
		if (class_suites(cl->bit, list, sizeof(list)) == 0) {
			probe_add(p, id, PROBE_WARN, NULL, "not tested: this wolfSSL has no %s suite", cl->name);
			continue;
		}
		t.ciphers = list;
		rc = probe_attempt(p, &t, &r);
		if (rc == 0)
			probe_add(p, id, PROBE_FAIL, "remove the class from the server's cipher list (e.g. add !CLASS to it)",
				  "banned %s suite accepted: %s %s", cl->name, r.version, r.cipher);
		else if (rc == -1)
			probe_add(p, id, PROBE_PASS, NULL, "%s suites refused", cl->name);
		else
			probe_add(p, id, PROBE_WARN, NULL, "not tested: %s", r.error);
	}
}

/* check_cert - chain, expiry and name of the certificate the main handshake saw */
static void check_cert(struct probe *p)
{
	const char *name = p->servername != NULL ? p->servername : p->host;
	const WOLFSSL_ASN1_TIME *na;
	struct tm tm;
	int ok;

	if (p->cert == NULL) {
		probe_add(p, "cert-chain", PROBE_WARN, NULL, "not tested: no TLS handshake");
		return;
	}
	if (p->verify_error == 0)
		probe_add(p, "cert-chain", PROBE_PASS, NULL, "verifies against %s",
			  p->cafile != NULL ? p->cafile : "the system CA store");
	else
		probe_add(p, "cert-chain", PROBE_FAIL,
			  "serve the full chain (certificate then intermediates) signed by a CA clients trust",
			  "does not verify against %s: %s", p->cafile != NULL ? p->cafile : "the system CA store",
			  p->verify_text);
	na = wolfSSL_X509_get_notAfter(p->cert);
	if (na == NULL || wolfSSL_ASN1_TIME_to_tm(na, &tm) != WOLFSSL_SUCCESS) {
		probe_add(p, "cert-expiry", PROBE_FAIL, "replace the certificate", "unreadable expiry date");
	} else {
		long days = (long)((timegm(&tm) - time(NULL)) / 86400);

		probe_add(p, "cert-expiry", days < 0 ? PROBE_FAIL : days < TP_CERT_WARN_DAYS ? PROBE_WARN : PROBE_PASS,
			  "renew the certificate", "%s %04d-%02d-%02d (%ld days)", days < 0 ? "expired" : "expires",
			  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, days);
	}
	ok = inet_pton(AF_INET6, name, &(struct in6_addr){ 0 }) == 1 ||
	     inet_pton(AF_INET, name, &(struct in_addr){ 0 }) == 1 ?
	     wolfSSL_X509_check_ip_asc(p->cert, name, 0) == 1 :
	     wolfSSL_X509_check_host(p->cert, name, strlen(name), 0, NULL) == 1;
	if (ok)
		probe_add(p, "cert-name", PROBE_PASS, NULL, "matches %s", name);
	else
		probe_add(p, "cert-name", PROBE_FAIL,
			  "get a certificate whose subjectAltName names the host clients connect to",
			  "does not name %s", name);
}

static void print_text(const struct probe *p, int fails, int warns)
{
	printf("probe %s:%s: %s, tls = %s, floor %s, %s\n", p->host, p->port, tp_protocol_name(p->proto),
	       tp_tls_mode_name(p->tls), tp_version_name(p->floor),
	       p->rule != NULL ? p->rule : "no policy rule (expectations from the options)");
	for (size_t i = 0; i < p->n; i++) {
		const struct probe_check *c = &p->checks[i];

		printf("%-4s  %-20s %s\n", status_name[c->status], c->id, c->detail);
		if (c->advice != NULL)
			printf("      %-20s advice: %s\n", "", c->advice);
	}
	if (fails)
		printf("NOT COMPLIANT: %d FAIL, %d WARN.\n", fails, warns);
	else
		printf("Compliant: %zu checks, %d WARN.\n", p->n, warns);
}

static void print_json(const struct probe *p, int fails)
{
	char target[300];

	snprintf(target, sizeof(target), "%s:%s", p->host, p->port);
	printf("{");
	json_kv(stdout, 0, "target", target);
	json_kv(stdout, 1, "protocol", tp_protocol_name(p->proto));
	json_kv(stdout, 1, "tls", tp_tls_mode_name(p->tls));
	json_kv(stdout, 1, "min_version", tp_version_name(p->floor));
	json_kv(stdout, 1, "policy_rule", p->rule);
	printf(",\"checks\":[");
	for (size_t i = 0; i < p->n; i++) {
		const struct probe_check *c = &p->checks[i];

		printf("%s{", i ? "," : "");
		json_kv(stdout, 0, "id", c->id);
		json_kv(stdout, 1, "status", status_name[c->status]);
		json_kv(stdout, 1, "detail", c->detail);
		json_kv(stdout, 1, "advice", c->advice);
		printf("}");
	}
	printf("],\"compliant\":%s}\n", fails ? "false" : "true");
}

/* run - every check; the exit code */
static int run(struct probe *p, int json)
{
	char err[300];
	int fails = 0, warns = 0;

	if (probe_session(p, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlspolicyctl probe: cannot connect to %s\n", err);
		return EXIT_USAGE;
	}
	if (p->tls == TP_TLS_IMPLICIT)
		probe_plaintext_refused(p);
	if (p->tls != TP_TLS_REFUSE) {
		for (enum tp_version v = TP_TLS10; v < p->floor; v++)
			check_version(p, v);
		check_floor(p);
		check_classes(p);
		check_cert(p);
	}
	for (size_t i = 0; i < p->n; i++) {
		fails += p->checks[i].status == PROBE_FAIL;
		warns += p->checks[i].status == PROBE_WARN;
	}
	if (json)
		print_json(p, fails);
	else
		print_text(p, fails, warns);
	return fails ? 1 : 0;
}

int ctl_probe(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "protocol", required_argument, NULL, 'p' },
		{ "tls", required_argument, NULL, 't' },
		{ "min-version", required_argument, NULL, 'm' },
		{ "servername", required_argument, NULL, 's' },
		{ "cafile", required_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct probe_opts o = { 0 };
	struct tp_policy *pol = NULL;
	struct probe *p = calloc(1, sizeof(*p));
	int opt, rc = EXIT_USAGE;

	if (p == NULL) {
		fprintf(stderr, "tlspolicyctl: out of memory\n");
		return 1;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': o.config = optarg; break;
		case 'p': o.protocol = optarg; break;
		case 't': o.tls = optarg; break;
		case 'm': o.min_version = optarg; break;
		case 's': p->servername = optarg; break;
		case 'a': p->cafile = optarg; break;
		case 'j': o.json = 1; break;
		default: goto out_usage;
		}
	}
	if (argc - optind != 1 || split_target(argv[optind], &p->host, &p->port) != 0)
		goto out_usage;
	if (expect(p, &o, &pol) == 0) {
		wolfSSL_Init();
		rc = run(p, o.json);
		wolfSSL_X509_free(p->cert);
		wolfSSL_Cleanup();
	}
	goto out;
out_usage:
	rc = ctl_usage("probe");
out:
	tp_policy_free(&pol);
	free(p);
	return rc;
}
