/* spare.c - a few bioxen-vmnode processes started ahead of need (forked by
 * the zygote, or exec'd without one; zygote.c owns that), each in its
 * own prepared cgroup, blocked reading its init frame, for a VM that is
 * spawned plainly (not full_isolation: that needs namespaces made at fork
 * time); uid/gid/networked/limits come with init, so a spare fits any such
 * VM. Refills run off the create's path; spawn failures and spares that die
 * back off. Owns the spares' fds and cgroups until handover. */
#include "manager.h"
#include "cgroup.h"
#include "spare.h"
#include "spawn.h"
#include "timer.h"
#include "zygote.h"

#include <unistd.h>

#define SPARE_MAX 64
#define BACKOFF_FIRST 0.2       /* after the first failure; doubles up to the cap */
#define BACKOFF_MAX 30.0
#define SPARE_REFILL_FALLBACK 0.005
#define SPARE_REFILL_DELAY 0.003
/* From the zygote a refill costs the loop a socketpair, the cgroup's mkdir
 * and writes and one request (~0.1-0.2 ms; the node joins its cgroup
 * itself): soon enough that a create/use/close loop finds a spare every
 * time (bench/create.py measured 0.49-0.64 ms p50 against 0.66-0.71 ms
 * with the exec path's delay, which a loop faster than it never outlives). */
#define SPARE_REFILL_DELAY_ZYGOTE 0.0

struct spare {
    pid_t pid;
    int fd;                 /* the manager's end of the channel */
    unsigned seq;           /* its cgroup */
    unsigned long long heap;    /* the memory bound its cgroup was made for */
};

static struct {
    struct spare s[SPARE_MAX];
    unsigned n, target, failures;
    unsigned long long last_heap;   /* the last create's heap: the likely next one */
    struct event *refill;   /* owned */
    int stopped;
} sp;

static void refill_at(double delay)
{
    if (sp.stopped || !sp.refill || sp.n >= sp.target)
        return;
    if (!evtimer_pending(sp.refill, NULL))
        timer_arm(sp.refill, delay);
}

static double backoff(void)
{
    return timer_backoff(BACKOFF_FIRST, sp.failures, BACKOFF_MAX);
}

/* One spare, its cgroup bounded for the last create's heap: the next create
 * likely asks the same, which saves the cgroup writes at handover. */
static int spare_spawn(struct spare *s)
{
    char err[256];
    struct spawn_req r = {.path = mgr->vmnode_path, .fd = -1};
    s->seq = ++mgr->node_seq;
    s->heap = sp.last_heap;
    return spawn_channel(&r, s->seq, s->heap, &s->fd, &s->pid, err, sizeof err) == SPAWN_OK ? 0 : -1;
}

static void refill_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    /* one per turn of the loop: a burst of creates is not held up behind
     * a row of fork/execs */
    if (sp.stopped || sp.n >= sp.target)
        return;
    if (spare_spawn(&sp.s[sp.n]) < 0) {
        sp.failures++;
        refill_at(backoff());
        return;
    }
    sp.n++;
    refill_at(0);
}

void spare_init(unsigned target)
{
    zygote_init();  /* first: the spares are forked from it too */
    sp.target = target > SPARE_MAX ? SPARE_MAX : target;
    if (sp.target)
        sp.refill = evtimer_new(mgr->base, refill_cb, NULL);
    refill_at(0);
}

int spare_take(unsigned long long heap_limit, int *fd, pid_t *pid, unsigned *seq)
{
    /* The refill's fork/exec must not run before the node's init reply has
     * gone out (posix_spawn's vfork stops the loop until the exec): the
     * create reply kicks it (spare_kick); this timer is only the fallback. */
    refill_at(SPARE_REFILL_FALLBACK);
    sp.last_heap = heap_limit;
    while (sp.n) {
        unsigned k = sp.n - 1;
        for (unsigned i = 0; i < sp.n; i++)     /* one made for this heap saves the writes */
            if (sp.s[i].heap == heap_limit)
                k = i;
        struct spare s = sp.s[k];
        sp.s[k] = sp.s[--sp.n];
        /* cgroup_prepare only sets bounds: an unbounded VM cannot take a
         * spare whose cgroup is bounded (nor one whose bound fails to move) */
        if (s.heap != heap_limit && !cgroup_unavailable() &&
            (!heap_limit || cgroup_prepare(s.seq, heap_limit) < 0)) {
            spawn_discard(s.pid, s.fd, s.seq);
            continue;
        }
        sp.failures = 0;    /* it lived until used */
        *fd = s.fd, *pid = s.pid, *seq = s.seq;
        return 0;
    }
    return -1;
}

void spare_kick(void)
{
    if (sp.stopped || !sp.refill || sp.n >= sp.target || sp.failures)
        return;     /* backing off after failures: the timer stands */
    /* Without the zygote not at once: a client's first request to its new
     * VM follows the create reply within a fraction of a millisecond, and a
     * fork/exec now would stall the loop under it. Each create pushes the
     * refill back, so a burst of creates refills after the burst. */
    timer_arm(sp.refill, zygote_pid() ? SPARE_REFILL_DELAY_ZYGOTE : SPARE_REFILL_DELAY);
}

int spare_reaped(pid_t pid)
{
    if (zygote_reaped(pid))
        return 1;
    for (unsigned i = 0; i < sp.n; i++) {
        if (sp.s[i].pid != pid)
            continue;
        /* a spare died before any use: the node binary or the host is in
         * trouble; try again later, not at once */
        close(sp.s[i].fd);
        cgroup_remove(sp.s[i].seq);
        sp.s[i] = sp.s[--sp.n];
        sp.failures++;
        refill_at(backoff());
        return 1;
    }
    return 0;
}

void spare_stop(void)
{
    sp.stopped = 1;
    zygote_stop();
    for (unsigned i = 0; i < sp.n; i++)
        spawn_discard(sp.s[i].pid, sp.s[i].fd, sp.s[i].seq);
    sp.n = 0;
    if (sp.refill)
        event_free(sp.refill);
    sp.refill = NULL;
}

size_t spare_pids(pid_t *out, size_t cap)
{
    size_t k = 0;
    for (unsigned i = 0; i < sp.n && k < cap; i++)
        out[k++] = sp.s[i].pid;
    return k;
}
