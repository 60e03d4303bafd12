/* cputhrottle.c - the VMs created with a cpu_share: checked and put under
 * their quota when a node starts (cgroupcpu.c writes it), and watched: one
 * timer, armed only while such a VM exists, reads each one's cpu.stat once
 * a second and emits CPU_THROTTLE to its owner and subscribers when its
 * throttled time grew since the last event, so a VM throttles audibly and
 * at most one event per VM per second. VMs without a share are never on
 * the list, so they cost no file reads. Owns struct cputhr (vm->cpu_thr). */
#include "manager.h"
#include "cgroup.h"
#include "cputhrottle.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define POLL_S 1.0      /* the cpu.stat reads, and the events' rate, per VM */

struct cputhr {
    struct cputhr *prev, *next;
    struct vm *vm;
    unsigned seq;                       /* the current node's cgroup */
    unsigned long long past_ns, past_nr;    /* the VM's earlier nodes (restarts) */
    unsigned long long ns, nr;          /* the current node's, as last read */
    unsigned long long told_ns;         /* the total the last event reported */
};

static struct {
    struct cputhr *head;
    struct event *tick;     /* owned; exists while the list is not empty */
} ct;

enum bx_err cputhrottle_check(struct vm *vm, char *err, size_t n)
{
    if (!(vm->cpu_share > 0))
        return BX_OK;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0 && vm->cpu_share > (double)cpus) {
        snprintf(err, n, "cpu_share %g is more than this host's %ld CPUs", vm->cpu_share, cpus);
        return BX_E_BAD_REQUEST;
    }
    const char *why = cgroup_cpu_unavailable();
    if (why) {
        /* never a VM that runs unthrottled when a share was asked for */
        snprintf(err, n, "cpu_share %g needs the cgroup cpu controller, which this manager "
                 "cannot use: %s", vm->cpu_share, why);
        return BX_E_ISOLATION;
    }
    return BX_OK;
}

/* The current node's counters; kept as they were when it cannot be read
 * (the node is gone, its cgroup with it). */
static void read_stat(struct cputhr *t)
{
    unsigned long long ns, nr;
    struct node *nd = t->vm->node;
    if (nd && nd->cg_seq == t->seq && cgroup_cpu_stat(t->seq, &ns, &nr) == 0)
        t->ns = ns, t->nr = nr;
}

static void tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    for (struct cputhr *t = ct.head; t; t = t->next) {
        read_stat(t);
        unsigned long long total = t->past_ns + t->ns;
        if (total <= t->told_ns)
            continue;
        json_t *d = json_pack("{s:f, s:f, s:I, s:f}", "throttled_ms", total / 1e6,
                              "since_last_ms", (total - t->told_ns) / 1e6,
                              "nr_throttled", (json_int_t)(t->past_nr + t->nr),
                              "cpu_share", t->vm->cpu_share);
        t->told_ns = total;
        events_emit(t->vm, "CPU_THROTTLE", d);
    }
    flush_all();
}

static struct cputhr *watch(struct vm *vm)
{
    if (vm->cpu_thr)
        return vm->cpu_thr;
    if (!ct.tick) {
        struct timeval tv = timer_tv(POLL_S);
        ct.tick = event_new(mgr->base, -1, EV_PERSIST, tick_cb, NULL);
        if (!ct.tick || event_add(ct.tick, &tv) < 0) {
            if (ct.tick)
                event_free(ct.tick);
            ct.tick = NULL;
            return NULL;
        }
    }
    struct cputhr *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->vm = vm;
    t->next = ct.head;
    if (ct.head)
        ct.head->prev = t;
    ct.head = t;
    vm->cpu_thr = t;
    return t;
}

int cputhrottle_attach(struct vm *vm, pid_t pid, unsigned seq, char *err, size_t n)
{
    struct cputhr *t = watch(vm);
    if (!t)
        return snprintf(err, n, "out of memory"), -1;
    /* a restart: what the last node was throttled counts on for the VM */
    t->past_ns += t->ns;
    t->past_nr += t->nr;
    t->ns = t->nr = 0;
    t->seq = seq;
    return cgroup_cpu_attach(seq, pid, vm->cpu_share, err, n);
}

void cputhrottle_read(struct vm *vm)
{
    if (vm->cpu_thr)
        read_stat(vm->cpu_thr);
}

void cputhrottle_stats(struct vm *vm, json_t *result)
{
    struct cputhr *t = vm->cpu_thr;
    if (!t)
        return;
    read_stat(t);   /* fresh: a stats call right after a busy run sees it */
    json_object_set_new(result, "cpu_share", json_real(vm->cpu_share));
    json_object_set_new(result, "throttled_ms", json_real((t->past_ns + t->ns) / 1e6));
    json_object_set_new(result, "nr_throttled", json_integer((json_int_t)(t->past_nr + t->nr)));
}

void cputhrottle_forget(struct vm *vm)
{
    struct cputhr *t = vm->cpu_thr;
    if (!t)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        ct.head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free(t);
    vm->cpu_thr = NULL;
    if (!ct.head && ct.tick) {  /* nobody to watch: no timer wakes the manager */
        event_free(ct.tick);
        ct.tick = NULL;
    }
}
