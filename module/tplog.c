/*
 * tplog.c - tlspolicyd's log
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "tplog.h"

static int use_stderr;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void tp_log_open(int to_stderr)
{
	use_stderr = to_stderr;
	if (!to_stderr)
		openlog("tlspolicy", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void tp_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!use_stderr) {
		vsyslog(LOG_MAIL | prio, fmt, ap);
	} else {
		/* one line at a time, whole, even with several workers */
		pthread_mutex_lock(&lock);
		fprintf(stderr, "tlspolicy: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		fflush(stderr);
		pthread_mutex_unlock(&lock);
	}
	va_end(ap);
}
