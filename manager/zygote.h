/* zygote.h - the manager's zygote (zygote.c): one bioxen-vmnode exec'd in
 * zygote mode that forks new nodes on request, cheaper than an exec each. */
#ifndef BX_ZYGOTE_H
#define BX_ZYGOTE_H

#include <sys/types.h>

/* Starts the zygote (unless --no-zygote). Call before the loop. */
void zygote_init(void);
enum { ZYGOTE_OK = 0, ZYGOTE_REFUSED = -1, ZYGOTE_DOWN = -2, ZYGOTE_LOST = -3 };
/* A node forked from the zygote with chan (the node's end of its channel)
 * as its fd 3 and the namespaces in flags; it moves itself into its cgroup
 * through the nprocs cgroup.procs files in procs before it reads a frame. ZYGOTE_OK with *pid, a child of
 * the manager's; ZYGOTE_REFUSED with err (the fork or its namespaces were
 * refused: the node does not exist); ZYGOTE_DOWN (no zygote: exec instead);
 * ZYGOTE_LOST (the zygote died with the request: a child may hold chan,
 * so the caller starts over with a new channel). */
int zygote_fork(int chan, const int *procs, int nprocs, int flags, pid_t *pid, char *err, size_t n);
/* pid was reaped and is no VM's node: 1 if it was the zygote (restarted). */
int zygote_reaped(pid_t pid);
/* The zygote's pid, 0 while there is none (a test hook, in "hello"). */
pid_t zygote_pid(void);
/* Ends the zygote (shutdown); no restart after this. */
void zygote_stop(void);

#endif
