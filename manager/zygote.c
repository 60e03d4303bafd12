/* zygote.c - the manager's side of the zygote (vmnode/zygote.c): exec'd
 * once, it forks every new node on request over a SOCK_SEQPACKET pair
 * (net/zygote_wire.h), the node's channel end passed with SCM_RIGHTS. Its
 * children are ours (CLONE_PARENT): node.c reaps them as it reaps exec'd
 * nodes. A request is answered synchronously: the zygote only clones, which
 * takes tens of microseconds. A zygote that dies, hangs or is killed is
 * restarted (backing off if it keeps dying), and creates meanwhile take the
 * exec path (spawn.c), with one log line per outage. */
#include "manager.h"
#include "spawn.h"
#include "timer.h"
#include "zygote.h"
#include "zygote_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_WAIT_MS 2000      /* a clone takes microseconds; this is a hung zygote */
#define BACKOFF_FIRST 0.2
#define BACKOFF_MAX 30.0

static struct {
    pid_t pid;              /* 0: none */
    int ctl;                /* our end of the control pair, -1: none */
    unsigned failures;      /* deaths since the last fork that worked */
    int enabled, stopped, down_logged;
    struct event *restart;  /* owned */
} zy = {0, -1, 0, 0, 0, 0, NULL};

/* Our environment plus LD_BIND_NOW=1 (the strings are environ's: free only
 * the array). The dynamic linker then binds every symbol of every library
 * once, in the zygote, instead of lazily in each child (perf showed
 * _dl_runtime_resolve and symbol lookups in every forked node). */
static char **bind_now_env(void)
{
    extern char **environ;
    size_t k = 0;
    while (environ[k])
        k++;
    char **env = calloc(k + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < k; i++)
        if (strncmp(environ[i], "LD_BIND_NOW=", 12) != 0)
            env[j++] = environ[i];
    env[j] = "LD_BIND_NOW=1";
    return env;
}

static int zy_start(char *err, size_t n)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return snprintf(err, n, "socketpair: %s", strerror(errno)), -1;
    int child = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);   /* never 3: see spawn_channel */
    close(sv[1]);
    char parent[32];
    snprintf(parent, sizeof parent, "%d", (int)getpid());
    char *argv[] = {(char *)mgr->vmnode_path, "--zygote", "--fd", "3", "--parent", parent, NULL};
    pid_t pid;
    char **env = bind_now_env();
    int rc = child < 0 || !env ? -1 : spawn_exec(mgr->vmnode_path, argv, env, child, &pid, err, n);
    free(env);
    if (!env)
        snprintf(err, n, "out of memory");
    if (child >= 0)
        close(child);
    if (rc < 0) {
        close(sv[0]);
        return -1;
    }
    zy.ctl = sv[0];
    zy.pid = pid;
    return 0;
}

static void restart_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    char err[256];
    if (zy.stopped || zy.pid)
        return;
    if (zy_start(err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: cannot start the zygote: %s\n", err);
        zy.failures++;
        timer_arm(zy.restart, timer_backoff(BACKOFF_FIRST, zy.failures, BACKOFF_MAX));
        return;
    }
    if (zy.down_logged)
        fprintf(stderr, "bioxen-manager: zygote restarted (pid %d)\n", (int)zy.pid);
    zy.down_logged = 0;
}

void zygote_init(void)
{
    zy.enabled = !mgr->no_zygote;
    if (!zy.enabled)
        return;
    zy.restart = evtimer_new(mgr->base, restart_cb, NULL);
    restart_cb(-1, 0, NULL);
}

/* The zygote cannot be trusted to answer any more: kill it (the reaper
 * schedules the restart) and stop using its channel at once. */
static void zy_lost(const char *why)
{
    if (!zy.down_logged)
        fprintf(stderr, "bioxen-manager: the zygote %s; starting nodes by exec until it is back\n", why);
    zy.down_logged = 1;
    if (zy.pid)
        kill(zy.pid, SIGKILL);
    if (zy.ctl >= 0)
        close(zy.ctl);
    zy.ctl = -1;
}

static int zy_send(int chan, const int *procs, int nprocs, int flags)
{
    struct zy_fork f = {ZY_MAGIC, (uint32_t)flags, (uint32_t)nprocs};
    int fds[1 + ZY_PROCS_MAX] = {chan};
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof fds)]; } u;
    if (nprocs < 0 || nprocs > ZY_PROCS_MAX)
        return -1;
    memcpy(fds + 1, procs, sizeof(int) * (size_t)nprocs);
    struct iovec iov = {&f, sizeof f};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)(1 + nprocs))};
    memset(u.buf, 0, sizeof u.buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)(1 + nprocs));
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)(1 + nprocs));
    ssize_t r;
    while ((r = sendmsg(zy.ctl, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return r == (ssize_t)sizeof f ? 0 : -1;
}

/* The reply to the request just sent: 0 with *rep, -1 (zygote lost). */
static int zy_recv(struct zy_reply *rep)
{
    struct pollfd p = {zy.ctl, POLLIN, 0};
    int rc;
    while ((rc = poll(&p, 1, REPLY_WAIT_MS)) < 0 && errno == EINTR)
        ;
    if (rc <= 0)
        return -1;
    ssize_t r;
    while ((r = recv(zy.ctl, rep, sizeof *rep, 0)) < 0 && errno == EINTR)
        ;
    return r == (ssize_t)sizeof *rep ? 0 : -1;
}

int zygote_fork(int chan, const int *procs, int nprocs, int flags, pid_t *pid, char *err, size_t n)
{
    if (!zy.enabled)
        return ZYGOTE_DOWN;
    if (zy.ctl < 0) {
        if (!zy.down_logged)
            fprintf(stderr, "bioxen-manager: no zygote; starting nodes by exec until it is back\n");
        zy.down_logged = 1;
        return ZYGOTE_DOWN;
    }
    if (zy_send(chan, procs, nprocs, flags) < 0) {
        zy_lost("does not take requests");  /* never delivered: nothing was forked */
        return ZYGOTE_DOWN;
    }
    struct zy_reply rep;
    if (zy_recv(&rep) < 0) {
        zy_lost("did not answer");
        return ZYGOTE_LOST;
    }
    rep.step[sizeof rep.step - 1] = 0;
    if (rep.pid <= 0) {
        snprintf(err, n, "cannot %s: %s", rep.step, strerror(rep.err ? rep.err : EINVAL));
        return ZYGOTE_REFUSED;
    }
    zy.failures = 0;
    *pid = rep.pid;
    return ZYGOTE_OK;
}

int zygote_reaped(pid_t pid)
{
    if (!zy.pid || pid != zy.pid)
        return 0;
    zy.pid = 0;
    if (zy.ctl >= 0)
        zy_lost("died");
    if (zy.stopped)
        return 1;
    /* at once the first time (a creates' burst wants it back); backing off
     * if it keeps dying before it forked anything */
    timer_arm(zy.restart, zy.failures ? timer_backoff(BACKOFF_FIRST, zy.failures, BACKOFF_MAX) : 0);
    zy.failures++;
    return 1;
}

pid_t zygote_pid(void)
{
    return zy.pid;
}

void zygote_stop(void)
{
    zy.stopped = 1;
    if (zy.ctl >= 0)
        close(zy.ctl);  /* EOF: the zygote exits */
    zy.ctl = -1;
    if (zy.pid) {
        kill(zy.pid, SIGKILL);
        while (waitpid(zy.pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    zy.pid = 0;
    if (zy.restart)
        event_free(zy.restart);
    zy.restart = NULL;
}
