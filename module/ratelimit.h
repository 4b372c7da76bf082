/*
 * ratelimit.h - refusals of local peers, logged without flooding the log
 *
 * Any local user can connect to an abstract socket as fast as it likes,
 * and a line per refusal wrote 31 MB of log in 6 s.  So, per kind of
 * refusal: the first one from each uid is logged in full at once, every
 * other one is only counted, and at most one summary line per
 * TP_RATELIMIT_INTERVAL seconds says how many went unlogged (and the last
 * pid and uid among them).  A uid is forgotten once a whole interval went
 * by without a refusal, so a new burst is named again.
 *
 * Plain data, no locks, no clock of its own: each user owns its limiter
 * and passes the time (the shim, one per process; tlspolicyd, its main
 * thread).
 */
#ifndef TP_RATELIMIT_H
#define TP_RATELIMIT_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define TP_RATELIMIT_INTERVAL 5	/* seconds between summary lines */
#define TP_RATELIMIT_UIDS 16	/* uids named in full; beyond, only counted */

struct tp_ratelimit {
	uid_t uid[TP_RATELIMIT_UIDS];	/* named since the last quiet interval */
	size_t nuids;
	unsigned long unlogged;		/* counted since the last summary */
	pid_t last_pid;			/* of the last one counted */
	uid_t last_uid;
	time_t last_event;		/* the last refusal */
	time_t last_summary;		/* the last line written (full or summary) */
};

/*
 * tp_ratelimit_admit - one refusal from pid and uid at now: 1 if it is to
 * be logged in full, 0 if it was only counted
 */
int tp_ratelimit_admit(struct tp_ratelimit *rl, pid_t pid, uid_t uid, time_t now);

/*
 * tp_ratelimit_due - if a summary is due at now (refusals went unlogged
 * and an interval passed since the last line), their count, with the last
 * pid and uid in *pid_r and *uid_r, and the count starts again; else 0
 */
unsigned long tp_ratelimit_due(struct tp_ratelimit *rl, time_t now, pid_t *pid_r, uid_t *uid_r);

#endif
