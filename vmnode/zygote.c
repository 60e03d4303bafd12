/* zygote.c - the zygote mode of bioxen-vmnode (`--zygote --fd 3 --parent
 * PID`): exec'd once by the manager, it holds nothing but the loaded
 * program and its libraries, and forks one child per request on its
 * control socket (net/zygote_wire.h). clone(CLONE_PARENT) makes each child
 * the manager's, so the manager reaps it as it reaps an exec'd node; with
 * full isolation the same clone makes its namespaces.
 *
 * What a child inherits is only what the zygote has before any VM exists:
 * the zygote never builds a Lua state, never seeds Jansson, opens no file,
 * and keeps no request data after a fork. The child then proceeds exactly
 * as an exec'd node does from main(): signals, Jansson's seed, /proc/self
 * statm, its own Lua state, then init (limits, rlimits, uid drop, seccomp).
 * The cost of sharing one address-space layout is in docs/security.md. */
#include "zygote.h"
#include "zygote_wire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FDS_MAX (1 + ZY_PROCS_MAX)

/* One request: 1 with fds[0] the channel and fds[1..nprocs] its cgroup.procs
 * files (all close-on-exec), 0 at EOF, -1 on a read error, -2 for a
 * malformed request (its fds closed). */
static int recv_fork(int ctl, struct zy_fork *f, int *fds)
{
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int) * (FDS_MAX + 1))]; } u;
    struct iovec iov = {f, sizeof *f};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    ssize_t r;
    while ((r = recvmsg(ctl, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (r <= 0)
        return r == 0 ? 0 : -1;
    int nfd = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (nfd < FDS_MAX)
                fds[nfd++] = fd;
            else
                close(fd);  /* never more than a request carries */
        }
    }
    int ok = r == (ssize_t)sizeof *f && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
             f->magic == ZY_MAGIC && (f->flags & ~(uint32_t)ZY_NS_ALLOWED) == 0 &&
             f->nprocs <= ZY_PROCS_MAX && nfd == 1 + (int)f->nprocs;
    if (ok)
        return 1;
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    return -2;
}

/* Into the VM's cgroup, before the child reads its first frame: no script
 * runs outside it. The manager opened the files; the move is ours, so its
 * cost (an RCU grace period in cgroup v1) is not on the manager's loop. */
static void join_cgroup(const int *procs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        ssize_t w;
        while ((w = write(procs[i], "0", 1)) < 0 && errno == EINTR)
            ;
        if (w != 1) {
            fprintf(stderr, "bioxen-vmnode[%d]: cannot join the VM's cgroup: %s\n", (int)getpid(),
                    strerror(errno));
            _exit(126);
        }
        close(procs[i]);
    }
}

static void *heap_gap;  /* kept for the node's life (and reachable: no leak report) */

/* The child, right after clone: tie it to the manager, join its cgroup,
 * and keep no fd of the zygote's but 0-2 and its channel. */
static void child_setup(pid_t manager, const int *fds, const struct zy_fork *f)
{
    int chan = fds[0];
    uint32_t flags = f->flags;
    /* clone cleared the parent-death signal; the manager may also have
     * died since the request (then our parent is not it any more) */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!(flags & CLONE_NEWPID) && getppid() != manager)
        _exit(1);
    join_cgroup(fds + 1, f->nprocs);
    /* fd 3 is the zygote's control socket: this closes it too */
    if (dup2(chan, 3) < 0 || close_range(4, ~0U, 0) < 0)
        _exit(127);
    /* Every child of one zygote has the same address-space layout, and
     * Lua's string-hash and math.random seeds mix in the address of the
     * state: a random gap in the heap makes them differ (math.random is
     * also reseeded from getrandom, sandbox.c). */
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) == (ssize_t)sizeof r)
        heap_gap = malloc(16 + (r % 4096) * 16);
}

/* Forks the child and replies with its pid (or the clone's errno). */
static void fork_one(int ctl, pid_t manager, const int *fds, const struct zy_fork *f, int *in_child)
{
    struct zy_reply rep = {0, 0, ""};
    /* like fork, without CLONE_VM: the child runs on a copy of this stack */
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | f->flags | SIGCHLD),
                       NULL, NULL, NULL, NULL);
    if (pid == 0) {
        child_setup(manager, fds, f);
        *in_child = 1;
        return;
    }
    rep.pid = pid > 0 ? (int32_t)pid : 0;
    rep.err = pid > 0 ? 0 : errno;
    snprintf(rep.step, sizeof rep.step, "%s", pid > 0 ? "" : "clone");
    for (uint32_t i = 0; i <= f->nprocs; i++)
        close(fds[i]);
    if (send(ctl, &rep, sizeof rep, MSG_NOSIGNAL) < 0) {
        /* the manager is gone: the next recv sees EOF */
    }
}

int zygote_serve(int ctl, int *code)
{
    pid_t manager = getppid();
    *code = 0;
    /* nothing of the manager's but the control socket (and 0-2), should
     * it have leaked an fd without close-on-exec */
    if ((ctl > 3 && close_range(3, (unsigned)ctl - 1, 0) < 0) ||
        close_range((unsigned)ctl + 1, ~0U, 0) < 0) {
        *code = 1;
        return 0;
    }
    for (;;) {
        struct zy_fork f;
        int fds[FDS_MAX], in_child = 0;
        int r = recv_fork(ctl, &f, fds);
        if (r == 0 || r == -1) {
            *code = r == 0 ? 0 : 1;
            return 0;
        }
        if (r == -2) {
            struct zy_reply rep = {0, EINVAL, "read a well-formed fork request"};
            if (send(ctl, &rep, sizeof rep, MSG_NOSIGNAL) < 0) {
                /* as above */
            }
            continue;
        }
        fork_one(ctl, manager, fds, &f, &in_child);
        if (in_child)
            return 1;
    }
}
