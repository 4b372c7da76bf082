/*
 * tlspolicyctl - check, explain and show the host's TLS policy for mail
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "policy.h"

/* the options enable and disable share */
#define ENABLE_OPTIONS \
	"  -c, --config FILE       the policy (also passed on to the daemon when given)\n" \
	"      --config-dir DIR    the daemon's configuration directory (default /etc/DAEMON);\n" \
	"                          for a private instance: no systemd drop-in then\n" \
	"      --systemd-dir DIR   where the drop-in goes (default /etc/systemd/system)\n" \
	"      --no-systemd        no systemd drop-in\n" \
	"      --shim PATH         the tlspolicy.so to preload (default " TP_SHIM_PATH ")\n" \
	"      --dry-run           print the changes without making them\n"

const struct ctl_verb ctl_verbs[] = {
	{ "validate", ctl_validate, "[-c FILE] [--strict] [--json]",
	  "check a policy and its drop-ins without publishing it",
	  "Checks FILE (default: $TLSPOLICY_CONF or " TP_SYSCONFDIR "/tlspolicy/tlspolicy.conf)\n"
	  "and the drop-ins in tlspolicy.d/ beside it. Every problem is reported as\n"
	  "FILE:LINE: error|warning: [section] key: what is wrong; what to do\n"
	  "\n"
	  "  -c, --config FILE  the policy file to check\n"
	  "      --strict       warnings fail the check too\n"
	  "      --json         print the diagnostics as a JSON list of objects\n"
	  "\n"
	  "Exit: 0 valid, 1 invalid (or warnings with --strict), 2 usage.\n"
	  "Works as an Ansible check: validate: tlspolicyctl validate -c %s\n" },
	{ "show", ctl_show, "[-c FILE] [--json] [--ciphers]",
	  "print the effective policy, each value with the file:line it came from",
	  "Prints [global] and every [port] section with all keys in effect, in INI form\n"
	  "that reads back as the same policy; a comment gives each value's source\n"
	  "(FILE:LINE, default, or the profile) and each port's resolved suites.\n"
	  "\n"
	  "  -c, --config FILE  the policy file to read\n"
	  "      --json         print it as JSON\n"
	  "      --ciphers      list the suites the installed wolfSSL offers, their\n"
	  "                     classes and the profiles that allow them\n"
	  "\n"
	  "Exit: 0, 1 if the policy has errors, 2 usage.\n" },
	{ "explain", ctl_explain, "[-c FILE] [--address ADDR] PORT",
	  "say in plain words what a client must do on a port, and why",
	  "Explains the rule for local PORT: what a client must do there, which mail\n"
	  "client setting matches (\"SSL/TLS\" for implicit TLS, \"STARTTLS\" for the\n"
	  "upgrade), which TLS versions and suites are accepted, and why.\n"
	  "\n"
	  "  -c, --config FILE   the policy file to read\n"
	  "      --address ADDR  the local address, where the policy has per-address sections\n"
	  "\n"
	  "Exit: 0 the port is managed, 1 not managed or the policy has errors, 2 usage.\n" },
	{ "reload", ctl_reload, "[-c FILE]",
	  "validate the policy, publish it as a new generation, and have tlspolicyd take it",
	  "Checks FILE as validate does; if it is valid, writes it to the run directory\n"
	  "($TLSPOLICY_RUNDIR, default /run/tlspolicy) as a new generation (temp file,\n"
	  "fsync, rename), tells tlspolicyd to load it, and then lets the shims follow it\n"
	  "for their next connections; established connections keep theirs. Prints\n"
	  "\"generation N\". If the policy is invalid or tlspolicyd refuses it, nothing\n"
	  "changes. It talks only to the relay socket the running tlspolicyd recorded\n"
	  "at its start, and only if the listener there is root or the policy's user:\n"
	  "an impostor gets nothing. relay_socket and user change on restart only (stop\n"
	  "tlspolicyd, reload, start it). Files get mode 0644 whatever the umask.\n"
	  "Concurrent reloads wait for each other.\n"
	  "\n"
	  "  -c, --config FILE  the policy file (default: $TLSPOLICY_CONF or " TP_SYSCONFDIR "/tlspolicy/tlspolicy.conf)\n"
	  "\n"
	  "Exit: 0 published, 1 invalid, refused or an impostor (nothing changed), 2 usage.\n" },
	{ "status", ctl_status, "[-c FILE] [--json]",
	  "is every managed port served with the module loaded, and tlspolicyd up?",
	  "For every port the policy manages: the processes listening there and whether\n"
	  "tlspolicy.so is loaded in each (from /proc). A managed port served by a process\n"
	  "without it is UNPROTECTED: its connections bypass the policy. Also whether\n"
	  "tlspolicyd answers on the relay socket (a listener that is not root or the\n"
	  "policy's user is reported as an impostor), and the published generation in\n"
	  "$TLSPOLICY_RUNDIR (default /run/tlspolicy). Run it as root: other users'\n"
	  "processes cannot be read otherwise.\n"
	  "\n"
	  "  -c, --config FILE  the policy file to read\n"
	  "      --json         print it as JSON\n"
	  "\n"
	  "Exit: 0 every listening managed port protected and tlspolicyd running,\n"
	  "1 not (or the policy has errors), 2 usage.\n" },
	{ "enable", ctl_enable, "[OPTIONS] postfix|dovecot|exim4",
	  "load the module into a mail daemon and set the daemon up for its role",
	  "Installs, idempotently: a systemd drop-in for the daemon's unit that preloads\n"
	  "tlspolicy.so and orders it after tlspolicyd; the daemon's own pass-through of\n"
	  "LD_PRELOAD to its children (Postfix and Dovecot import_environment); and, for\n"
	  "ports where tlspolicyd does the TLS (tls_by = module), the daemon settings that\n"
	  "make it serve plaintext behind tlspolicyd. Every change is printed; the values\n"
	  "replaced are kept so that disable puts them back. For Exim it prints the lines\n"
	  "to add to its configuration.\n"
	  "\n"
	  ENABLE_OPTIONS
	  "\n"
	  "Exit: 0 done (or nothing to do), 1 failed or the policy has errors, 2 usage.\n" },
	{ "disable", ctl_disable, "[OPTIONS] postfix|dovecot|exim4",
	  "remove what enable installed and put the daemon's settings back",
	  "Removes the systemd drop-in and the pass-through, and sets back the daemon\n"
	  "settings enable replaced, to the values recorded when it replaced them.\n"
	  "\n"
	  ENABLE_OPTIONS
	  "\n"
	  "Exit: 0 done (or nothing to do), 1 failed or the policy has errors, 2 usage.\n" },
	{ "report", ctl_report, "[--log FILE]... [--since TIME] [--json]",
	  "count tlspolicy's decisions per port from its log",
	  "Reads tlspolicy's log lines and counts, per port: connections, TLS sessions by\n"
	  "version and suite, refusals and would-refusals (audit mode) by reason,\n"
	  "injection discards, handshake timeouts, and the five clients refused most.\n"
	  "Without --log: 'journalctl -t tlspolicy' if journalctl works, else\n"
	  CTL_MAIL_LOG ". Other programs' lines are passed over; unreadable\n"
	  "lines are skipped and counted.\n"
	  "\n"
	  "  --log FILE    a syslog file (traditional or RFC 3339 timestamps) or the\n"
	  "                stderr of tlspolicyd -f; - for stdin; may be repeated\n"
	  "  --since TIME  only lines from TIME on: 2026-11-29, 2026-11-29T09:00 (local\n"
	  "                time), or an age: 30m, 1h, 2d; lines without a time are\n"
	  "                then skipped and counted\n"
	  "  --json        print it as JSON\n"
	  "\n"
	  "Exit: 0, 1 if no log could be read, 2 usage.\n" },
	{ "probe", ctl_probe, "[OPTIONS] HOST:PORT",
	  "audit a live server against the policy's rule for its port",
	  "Connects to HOST:PORT as a wolfSSL client and checks it against the rule the\n"
	  "policy gives PORT (and HOST, if it is an address of this machine): implicit TLS\n"
	  "or STARTTLS as required, plaintext refused, authentication hidden and refused\n"
	  "before TLS, STARTTLS command injection not executed, every version below the\n"
	  "floor and every banned cipher class refused, the floor accepted, and the\n"
	  "certificate's chain, expiry and name. The server need not run tlspolicy.\n"
	  "Prints one line per check, PASS, WARN or FAIL, with advice for each FAIL.\n"
	  "\n"
	  "  -c, --config FILE        the policy file to read\n"
	  "      --protocol PROTO     smtp, imap or pop3: what the server speaks\n"
	  "      --tls MODE           implicit, starttls, opportunistic or refuse: what to\n"
	  "                           expect; with --protocol, for a port the policy does\n"
	  "                           not manage (or to override its rule)\n"
	  "      --min-version VER    the floor to check without a rule (default TLSv1.2;\n"
	  "                           the banned classes are then " "NULL aNULL EXPORT RC4\n"
	  "                           DES 3DES MD5)\n"
	  "      --servername NAME    the name the certificate must carry, also sent as\n"
	  "                           SNI (default HOST)\n"
	  "      --cafile FILE        verify the chain against FILE (default: the system\n"
	  "                           CA store)\n"
	  "      --json               print the checks as JSON\n"
	  "\n"
	  "Exit: 0 compliant (no FAIL), 1 not compliant, 2 could not probe (connection\n"
	  "failed, usage, or an unmanaged port without --protocol and --tls).\n" },
};
const unsigned ctl_verb_count = sizeof(ctl_verbs) / sizeof(ctl_verbs[0]);

static const struct ctl_verb *find_verb(const char *name)
{
	for (unsigned i = 0; i < ctl_verb_count; i++)
		if (strcmp(ctl_verbs[i].name, name) == 0)
			return &ctl_verbs[i];
	return NULL;
}

int ctl_usage(const char *verb)
{
	const struct ctl_verb *v = find_verb(verb);

	if (v != NULL)
		fprintf(stderr, "usage: tlspolicyctl %s %s\n"
			"Try 'tlspolicyctl %s --help'.\n", v->name, v->usage, v->name);
	return EXIT_USAGE;
}

int ctl_wants_help(int argc, char **argv)
{
	const struct ctl_verb *v = find_verb(argv[0]);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: tlspolicyctl %s %s\n%s\n\n%s", v->name, v->usage,
			       v->summary, v->help);
			return 1;
		}
	}
	return 0;
}

struct tp_policy *ctl_load(const char *path, unsigned flags)
{
	struct tp_diags *d = tp_diags_new();
	struct tp_policy *p;

	if (d == NULL) {
		fprintf(stderr, "tlspolicyctl: out of memory\n");
		return NULL;
	}
	p = tp_policy_load(path ? path : tp_policy_default_path(), flags, d);
	for (size_t i = 0; i < tp_diags_len(d); i++) {
		char *line = tp_diag_format(tp_diags_get(d, i));

		fprintf(stderr, "%s\n", line ? line : "tlspolicyctl: out of memory");
		free(line);
	}
	if (p == NULL)
		fprintf(stderr, "tlspolicyctl: the policy has errors; run 'tlspolicyctl validate' after fixing them\n");
	tp_diags_free(&d);
	return p;
}

static void usage_all(FILE *f)
{
	fprintf(f, "usage: tlspolicyctl VERB [OPTIONS]\n\n"
		"One TLS policy for the host's mail daemons.\n\nVerbs:\n");
	for (unsigned i = 0; i < ctl_verb_count; i++)
		fprintf(f, "  %-9s %s\n", ctl_verbs[i].name, ctl_verbs[i].summary);
	fprintf(f, "\n'tlspolicyctl VERB --help' describes a verb; tlspolicyctl(8) and\n"
		"tlspolicy.conf(5) describe the rest.\n");
}

int main(int argc, char **argv)
{
	const struct ctl_verb *v;

	if (argc < 2) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage_all(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("tlspolicyctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	v = find_verb(argv[1]);
	if (v == NULL) {
		fprintf(stderr, "tlspolicyctl: unknown verb \"%s\"\n", argv[1]);
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (ctl_wants_help(argc - 1, argv + 1))
		return 0;
	return v->run(argc - 1, argv + 1);
}
