/*
 * keyhelper.h - tlspolicyd's privileged key helper
 *
 * tlspolicyd never handles a connection as root, yet a private key is
 * often readable by root only (0600 root:root), and it must load the keys
 * again at every reload.  Before it drops its privileges, tlspolicyd forks
 * this helper, which stays root and does one thing: on request, it opens
 * the certificate and key files that the policy names -- the policy it
 * reads itself, from the same place tlspolicyd does -- and passes the
 * open descriptors back (SCM_RIGHTS).  tlspolicyd then reads them into
 * memory and loads them from there (tlsctx.h).
 *
 * Who may ask: only tlspolicyd's own process, over a socket pair made
 * before the fork (no name, nothing another process can connect to).  What
 * it answers: a descriptor for a path only if that path is the certificate
 * or private_key of a rule where the module does TLS in the policy the
 * helper has just read and checked with TP_LOAD_CHECK_FILES (as root: key
 * modes, expiry, key match); any other path is refused (EPERM).  So a
 * compromised unprivileged tlspolicyd can read, through the helper, only
 * the keys of the policy root published, which it holds in memory anyway.
 * The helper exits when tlspolicyd's end of the pair closes.
 */
#ifndef TP_KEYHELPER_H
#define TP_KEYHELPER_H

#include <stddef.h>

#include "policy.h"

/* at most this many distinct files in one request */
#define TP_KEYHELPER_MAX_FILES 128
/* a reply not in within this time and the load fails */
#define TP_KEYHELPER_TIMEOUT_MS 10000

struct tp_keyhelper;
struct tp_keyfiles;

/*
 * tp_keyhelper_start - fork the helper (call as root, before any thread
 * and before dropping privileges).  policy_path(buf, size) is the policy
 * it reads at each request (NULL: none can be read, the reason in buf:
 * every file is refused).  NULL on failure (errno set).
 */
struct tp_keyhelper *tp_keyhelper_start(const char *(*policy_path)(char *buf, size_t size));

/* tp_keyhelper_stop - close our end (the helper exits) and reap it; *h set to NULL */
void tp_keyhelper_stop(struct tp_keyhelper **h);

/*
 * tp_keyhelper_fetch - the certificate and key files of p's rules where the
 * module does TLS, opened by the helper.  0 and *files_r (free with
 * tp_keyfiles_free), or -1 with the reason in error.
 */
int tp_keyhelper_fetch(struct tp_keyhelper *h, const struct tp_policy *p,
		       struct tp_keyfiles **files_r, char *error, size_t size);

/*
 * tp_keyfiles_open - a struct tp_tlsctx_files open() over fetched files
 * (arg: the struct tp_keyfiles): a new descriptor for path, or -1 with
 * the helper's reason in error
 */
int tp_keyfiles_open(void *files, const char *path, char *error, size_t size);

/* tp_keyfiles_free - close the descriptors; *f set to NULL */
void tp_keyfiles_free(struct tp_keyfiles **f);

#endif
