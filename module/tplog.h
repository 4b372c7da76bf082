/*
 * tplog.h - tlspolicyd's log: one key=value line per decision
 *
 * To syslog (facility mail, ident "tlspolicy"), or to stderr when
 * tlspolicyd runs in the foreground (-f).
 */
#ifndef TP_TPLOG_H
#define TP_TPLOG_H

#include <syslog.h>

/* tp_log_open - to_stderr: log to stderr instead of syslog */
void tp_log_open(int to_stderr);

void tp_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
