/* spare.h - nodes started ahead of need (spare.c): a plain create takes one
 * instead of paying for socketpair + cgroup + fork/exec on its path. */
#ifndef BX_SPARE_H
#define BX_SPARE_H

#include <sys/types.h>

/* How many spares to keep (--spares; 0 turns them off). Call before the loop. */
void spare_init(unsigned target);
/* Hands over a spare: its channel fd (owned by the caller from now on), pid
 * and cgroup seq, the cgroup's memory bound set for heap_limit. 0, or -1
 * when there is none (the caller spawns a node itself). Refills later. */
int spare_take(unsigned long long heap_limit, int *fd, pid_t *pid, unsigned *seq);
/* A create's reply has gone out: refill now (off its critical path). */
void spare_kick(void);
/* pid was reaped and is no VM's node: 1 if it was a spare. */
int spare_reaped(pid_t pid);
/* Kills and reaps every spare (shutdown); no refill after this. */
void spare_stop(void);
/* The pids of the current spares (a test hook, in "hello"): count written. */
size_t spare_pids(pid_t *out, size_t cap);

#endif
