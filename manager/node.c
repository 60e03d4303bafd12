/* node.c - a VM's node process: started fresh or taken from the spares, its
 * socketpair channel, the pid table, reaping, and what a death was caused by
 * (restart.c decides what follows). Owns struct node: freed once it is
 * reaped, its channel closed and no VM holds it. */
#include "manager.h"
#include "cgroup.h"
#include "cputhrottle.h"
#include "reach.h"
#include "spare.h"
#include "spawn.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define PID_BUCKETS 256

static void node_read_cb(struct bufferevent *bev, void *arg);
static void node_event_cb(struct bufferevent *bev, short what, void *arg);

/* ---- the pid table and a node's end ------------------------------------- */

static struct node **pid_slot(pid_t pid)
{
    if (!mgr->pids)
        mgr->pids = calloc(PID_BUCKETS, sizeof *mgr->pids);
    struct node **pp = &mgr->pids[(unsigned)pid % PID_BUCKETS];
    while (*pp && (*pp)->pid != pid)
        pp = &(*pp)->hnext;
    return pp;
}

/* Frees the node once nothing can reach it any more: reaped, channel gone,
 * no VM. Safe to call at any point; it does nothing until all three hold. */
static void node_release(struct node *n)
{
    if (!n->reaped || n->chan || n->vm || n->busy)
        return;
    struct node **pp = pid_slot(n->pid);
    if (*pp == n)
        *pp = n->hnext;
    mgr->nnodes--;
    cgroup_remove(n->cg_seq);
    free(n);
}

/* Every end of a node passes here: once its channel is gone it can report
 * no close, so its listening addresses go now (reach.c). */
static void node_close_chan(struct node *n)
{
    reach_node_gone(n);
    if (n->chan) {
        flush_forget(n->chan, &n->dirty);
        bufferevent_free(n->chan);  /* deferred by libevent if in its callback */
        n->chan = NULL;
    }
}

void node_detach(struct node *n)
{
    if (!n)
        return;
    if (!n->reaped)
        kill(n->pid, SIGKILL);
    node_close_chan(n);
    if (n->vm && n->vm->node == n)
        n->vm->node = NULL;
    n->vm = NULL;
    node_release(n);
}

/* ---- starting ------------------------------------------------------------ */

/* What the node about to start gets, for create's reply and examples. */
static json_t *isolation_report(struct vm *vm, const char *ns)
{
    json_t *uid = json_object_get(vm->init, "uid"), *gid = json_object_get(vm->init, "gid");
    const char *why = cgroup_unavailable();
    unsigned long long heap = vm->heap_limit;
    json_t *cg = why ? json_null()
                     : json_pack("{s:o, s:i}", "memory", heap ? json_integer((json_int_t)heap) : json_null(),
                                 "pids_max", 4);
    if (vm->cpu_share > 0 && json_is_object(cg))
        json_object_set_new(cg, "cpu_share", json_real(vm->cpu_share));
    /* "empty": the node pivots into an empty read-only root at init, or
     * init (and so the create) fails */
    return json_pack("{s:b, s:s, s:s, s:b, s:b, s:O?, s:O?, s:o, s:s?}", "full", vm->full_isolation,
                     "namespaces", ns, "root", vm->full_isolation ? "empty" : "host",
                     "seccomp", vm->full_isolation, "no_new_privs", 1,
                     "uid", uid, "gid", gid, "cgroup", cg, "cgroup_unavailable", why);
}

/* A process for vm, in its cgroup, with its channel: a spare when one fits,
 * else a fresh spawn. BX_OK with *fd, *pid, *seq; else a code with err. */
static enum bx_err node_start(struct vm *vm, int *fd, pid_t *pid, unsigned *seq,
                              char *err, size_t errlen)
{
    const char *ns = "";
    struct spawn_req r = {.path = mgr->vmnode_path, .fd = -1, .isolated = vm->full_isolation,
                          .networked = vm->networked};
    enum bx_err e = cputhrottle_check(vm, err, errlen);    /* before any process */
    if (e != BX_OK)
        return e;
    if (vm->full_isolation || spare_take(vm->heap_limit, fd, pid, seq) < 0) {
        *seq = ++mgr->node_seq;
        int rc = spawn_channel(&r, *seq, vm->heap_limit, fd, pid, err, errlen);
        if (rc != SPAWN_OK)
            return rc == SPAWN_E_START && r.isolated ? BX_E_ISOLATION : BX_E_INTERNAL;
        ns = r.out_ns;
    }
    /* a spare or a fresh node alike: under its quota before its init frame */
    if (vm->cpu_share > 0 && cputhrottle_attach(vm, *pid, *seq, err, errlen) < 0) {
        spawn_discard(*pid, *fd, *seq);
        return BX_E_ISOLATION;
    }
    json_decref(vm->isolation);
    vm->isolation = isolation_report(vm, ns);
    return BX_OK;
}

/* The node record for a started process, in the pid table; NULL (and the
 * process undone) when out of memory. */
static struct node *node_new(struct vm *vm, int fd, pid_t pid, unsigned seq)
{
    struct node *n = calloc(1, sizeof *n);
    evutil_make_socket_nonblocking(fd);
    if (n)
        n->chan = bufferevent_socket_new(mgr->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!n || !n->chan) {
        free(n);
        spawn_discard(pid, fd, seq);
        return NULL;
    }
    n->pid = pid;
    n->vm = vm;
    n->cg_seq = seq;
    struct node **pp = pid_slot(pid);
    n->hnext = *pp;
    *pp = n;
    mgr->nnodes++;
    bufferevent_setcb(n->chan, node_read_cb, NULL, node_event_cb, n);
    bufferevent_disable(n->chan, EV_WRITE);  /* on by default; see flush.c */
    bufferevent_enable(n->chan, EV_READ);
    return n;
}

enum bx_err node_spawn(struct vm *vm, uint64_t client_id, json_t *orig_id,
                       char *err, size_t errlen)
{
    int fd;
    pid_t pid;
    unsigned seq;
    enum bx_err rc = node_start(vm, &fd, &pid, &seq, err, errlen);
    if (rc != BX_OK)
        return rc;
    struct node *n = node_new(vm, fd, pid, seq);
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return BX_E_INTERNAL;
    }
    vm->node = n;
    vm->state = VM_STARTING;
    vmreq_send_init(vm, client_id, orig_id);  /* answered to client_id once ready */
    return BX_OK;
}

/* ---- the channel --------------------------------------------------------- */

static void node_read_cb(struct bufferevent *bev, void *arg)
{
    struct node *n = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    n->busy = 1;    /* keeps n alive while a frame tears its VM down */
    /* Each frame may end this node (a bad frame, a failed init): stop then. */
    while (n->vm && n->chan) {
        const char *line;
        size_t len;
        int rc = linebuf_next(in, &n->scanned, mgr->max_frame, &line, &len);
        if (rc < 0) {
            fprintf(stderr, "bioxen-manager: node %d sent an oversized frame\n", (int)n->pid);
            node_broken(n);
            break;
        }
        if (rc == 0)
            break;
        if (len > 0)
            nodeframe_route(n, line, len);
        if (n->chan)
            evbuffer_drain(in, len + 1);
    }
    if (n->vm)
        nodeframe_done(n->vm);
    n->busy = 0;
    node_release(n);
    flush_all();
}

/* ---- death --------------------------------------------------------------- */

/* What killed it, as the error its requests get: CPU_LIMIT (the kernel's
 * SIGXCPU, or its SIGKILL at the hard limit), MEMORY_LIMIT (the OOM killer in
 * the VM's own cgroup), or BX_OK for anything else: a crash. */
static enum bx_err death_cause(struct vm *vm, struct node *n)
{
    if (!WIFSIGNALED(n->status))
        return BX_OK;
    int sig = WTERMSIG(n->status);
    if (sig == SIGXCPU || (sig == SIGKILL && vm->cpu_limit > 0 && n->cpu_s >= vm->cpu_limit - 0.05))
        return BX_E_CPU_LIMIT;
    if (sig == SIGKILL && cgroup_oom_killed(n->cg_seq))
        return BX_E_MEMORY_LIMIT;
    return BX_OK;
}

/* Both the channel EOF and the exit status are in: account for the death. */
static void node_died(struct node *n)
{
    struct vm *vm = n->vm;
    int status = n->status;
    enum bx_err cause = death_cause(vm, n);     /* before the cgroup goes */
    cputhrottle_read(vm);   /* its throttled time too: the VM's total keeps it */
    n->vm = NULL;
    vm->node = NULL;
    node_release(n);
    if (cause != BX_OK)
        restart_fresh(vm, cause);
    else
        restart_crashed(vm, status);
}

void node_broken(struct node *n)
{
    if (!n->reaped)
        kill(n->pid, SIGKILL);
    node_close_chan(n);
    if (n->reaped && n->vm)     /* no SIGCHLD will come again: account now */
        node_died(n);
}

static void node_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct node *n = arg;
    (void)bev;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    node_close_chan(n);
    if (!n->vm)
        node_release(n);
    else if (n->reaped)
        node_died(n);
    else
        kill(n->pid, SIGKILL);  /* a node that hung up is finished; make sure */
}

void node_reap_cb(evutil_socket_t sig, short ev, void *arg)
{
    (void)sig; (void)ev; (void)arg;
    int status;
    struct rusage ru;
    pid_t pid;
    while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
        struct node *n = *pid_slot(pid);
        if (!n) {
            spare_reaped(pid);
            continue;
        }
        n->reaped = 1;
        n->status = status;
        n->cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        /* The channel may still hold its last frames: EOF finishes the job. */
        if (!n->vm)
            node_release(n);
        else if (!n->chan)
            node_died(n);
    }
}

/* At exit: forget nodes that did not get reaped in time (SIGKILLed already,
 * and PR_SET_PDEATHSIG covers them once we are gone). */
void node_free_all(struct manager *m)
{
    for (size_t i = 0; m->pids && i < PID_BUCKETS; i++) {
        for (struct node *n = m->pids[i], *next; n; n = next) {
            next = n->hnext;
            node_close_chan(n);
            free(n);
        }
    }
    free(m->pids);
    m->pids = NULL;
}
