/* cgroup.h - per-node cgroups with memory and pids limits (cgroup.c). */
#ifndef BX_CGROUP_H
#define BX_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

/* Finds writable cgroups and makes the manager's directory. Returns the
 * version in use (1 or 2) or 0 when there are none (see cgroup_unavailable). */
int cgroup_init(void);
/* NULL when cgroups are in use, else why not. */
const char *cgroup_unavailable(void);
/* Makes node seq's cgroup(s), bounded for a Lua heap of heap_limit bytes (0:
 * no memory bound, pids only). 0 (also without cgroups) or -1. */
int cgroup_prepare(unsigned seq, unsigned long long heap_limit);
/* Moves pid into node seq's cgroup(s). The node has only exec'd and waits
 * for its init frame, which is sent after this: no script ever runs outside
 * its cgroup. 0 (also without cgroups) or -1. */
int cgroup_attach(unsigned seq, pid_t pid);
/* Opens node seq's cgroup.procs files (one per hierarchy, at most max) for
 * a node to move itself in with write("0"): the count (0 without cgroups),
 * or -1. The caller closes them. */
int cgroup_open_procs(unsigned seq, int *fds, int max);
/* 1 when the kernel's OOM killer fired in node seq's cgroup. */
int cgroup_oom_killed(unsigned seq);
/* Removes node seq's cgroup(s); the node must be dead. */
void cgroup_remove(unsigned seq);
/* The cpu controller (cgroupcpu.c), for VMs with a cpu_share; found by
 * cgroup_init like the others. NULL when usable, else why not. */
const char *cgroup_cpu_unavailable(void);
/* Puts node seq (pid, already in its other cgroups, not yet initialised)
 * under a CFS quota of share CPUs. 0, or -1 with err (nothing left behind). */
int cgroup_cpu_attach(unsigned seq, pid_t pid, double share, char *err, size_t n);
/* Node seq's throttled time (ns) and count, from its cpu.stat. 0 or -1. */
int cgroup_cpu_stat(unsigned seq, unsigned long long *throttled_ns, unsigned long long *nr);
/* Removes the manager's directory (at exit, after every node is reaped). */
void cgroup_fini(void);

#endif
