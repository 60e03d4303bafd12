/* zygote_wire.h - the manager's requests to its zygote (manager/zygote.c)
 * and the zygote's replies (vmnode/zygote.c), over a SOCK_SEQPACKET pair:
 * one fixed-size record each way per fork, the new node's channel fd
 * riding with the request as SCM_RIGHTS. Both ends are the same build. */
#ifndef BX_ZYGOTE_WIRE_H
#define BX_ZYGOTE_WIRE_H

#include <sched.h>
#include <stdint.h>

#define ZY_MAGIC 0x7a79676fu
/* the only clone flags a request may carry: full isolation's namespaces
 * (never a user namespace: manager/spawn.c exec's those nodes) */
#define ZY_NS_ALLOWED (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)

#define ZY_PROCS_MAX 4      /* cgroup.procs fds: one per cgroup hierarchy */

/* SCM_RIGHTS: the channel, then nprocs cgroup.procs files the child
 * writes "0" to (moving itself into its cgroup) before it reads a byte */
struct zy_fork {
    uint32_t magic;
    uint32_t flags;         /* 0 (a plain node) or namespaces from ZY_NS_ALLOWED */
    uint32_t nprocs;        /* at most ZY_PROCS_MAX */
};

struct zy_reply {
    int32_t pid;            /* the child, a child of the manager; 0 on failure */
    int32_t err;            /* errno of the failed step */
    char step[56];          /* the step that failed, NUL-terminated */
};

#endif
