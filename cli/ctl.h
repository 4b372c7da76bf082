/*
 * ctl.h - the verbs of tlspolicyctl
 *
 * Each verb is one function taking its own argv (argv[0] is the verb) and
 * returning the process exit code: 0 success, 1 the policy or the check
 * failed, 2 usage.
 */
#ifndef TP_CTL_H
#define TP_CTL_H

#include <stddef.h>
#include <stdio.h>

struct tp_policy;
struct tp_diags;

#define EXIT_USAGE 2

struct ctl_verb {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;	/* options after the verb */
	const char *summary;	/* one line */
	const char *help;	/* what --help prints after the usage line */
};

extern const struct ctl_verb ctl_verbs[];
extern const unsigned ctl_verb_count;

int ctl_validate(int argc, char **argv);
int ctl_show(int argc, char **argv);
int ctl_explain(int argc, char **argv);
int ctl_status(int argc, char **argv);
int ctl_enable(int argc, char **argv);
int ctl_reload(int argc, char **argv);
int ctl_disable(int argc, char **argv);
int ctl_report(int argc, char **argv);
int ctl_probe(int argc, char **argv);

/* the log report reads when journalctl does not work */
#define CTL_MAIL_LOG "/var/log/mail.log"

/* ctl_show_ini - the effective policy as INI that reads back the same
 * (what show prints, and what reload publishes) */
void ctl_show_ini(FILE *f, const struct tp_policy *p);

/* ctl_policy_text - the policy as reload publishes it (show's INI, which
 * the caller frees) and its sha256 in hex; 0 or -1 */
int ctl_policy_text(const struct tp_policy *p, char **text_r, size_t *len_r, char sha_r[65]);

/* ctl_usage - print a verb's usage to stderr and return EXIT_USAGE */
int ctl_usage(const char *verb);

/* ctl_wants_help - is argv[1..] asking for --help? prints it if so */
int ctl_wants_help(int argc, char **argv);

/*
 * ctl_load - load the policy at path (NULL: the default), printing every
 * diagnostic to stderr; NULL if it has errors
 */
struct tp_policy *ctl_load(const char *path, unsigned flags);

#endif
