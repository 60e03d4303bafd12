/* cputhrottle.h - VMs with a cpu_share (cputhrottle.c): the checks and the
 * quota at node start, the CPU_THROTTLE events and the stats fields. */
#ifndef BX_CPUTHROTTLE_H
#define BX_CPUTHROTTLE_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "proto.h"

struct vm;

/* Before vm's node is started: BX_OK when it has no share or can have it;
 * ISOLATION (no cpu controller here, named in err) or BAD_REQUEST (more
 * CPUs than the host has). */
enum bx_err cputhrottle_check(struct vm *vm, char *err, size_t n);
/* vm's new node (pid, cgroup seq; not yet initialised) goes under its quota
 * and is watched from now on. 0, or -1 with err. */
int cputhrottle_attach(struct vm *vm, pid_t pid, unsigned seq, char *err, size_t n);
/* The stats op's result (borrowed, changed in place): cpu_share,
 * throttled_ms and nr_throttled for a VM with a share. */
void cputhrottle_stats(struct vm *vm, json_t *result);
/* vm's node died and its cgroup is about to go: its last counters. */
void cputhrottle_read(struct vm *vm);
/* vm goes (or its create failed): no more polling for it. */
void cputhrottle_forget(struct vm *vm);

#endif
