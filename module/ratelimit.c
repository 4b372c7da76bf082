/*
 * ratelimit.c - first refusal per uid in full, then counted summaries
 */
#include "config.h"

#include "ratelimit.h"

/* named - has uid had its full line since the last quiet interval? */
static int named(const struct tp_ratelimit *rl, uid_t uid)
{
	for (size_t i = 0; i < rl->nuids; i++)
		if (rl->uid[i] == uid)
			return 1;
	return 0;
}

int tp_ratelimit_admit(struct tp_ratelimit *rl, pid_t pid, uid_t uid, time_t now)
{
	/* a quiet interval with nothing left to summarise: a new burst is news */
	if (rl->unlogged == 0 && now - rl->last_event >= TP_RATELIMIT_INTERVAL)
		rl->nuids = 0;
	rl->last_event = now;
	if (!named(rl, uid) && rl->nuids < TP_RATELIMIT_UIDS) {
		rl->uid[rl->nuids++] = uid;
		rl->last_summary = now;
		return 1;
	}
	rl->unlogged++;
	rl->last_pid = pid;
	rl->last_uid = uid;
	return 0;
}

unsigned long tp_ratelimit_due(struct tp_ratelimit *rl, time_t now, pid_t *pid_r, uid_t *uid_r)
{
	unsigned long n = rl->unlogged;

	if (n == 0 || now - rl->last_summary < TP_RATELIMIT_INTERVAL)
		return 0;
	*pid_r = rl->last_pid;
	*uid_r = rl->last_uid;
	rl->unlogged = 0;
	rl->last_summary = now;
	return n;
}
