/* hosts.c - who is in the cluster (hosts.h). Every HOSTS_BEAT_S this
 * manager publishes its beat on "<prefix>.hb" and ages the table of the
 * beats it heard; a host whose last beat is older than HOSTS_ALIVE_S, or
 * that said it is leaving, is gone, and the listeners hear it once.
 *
 * Load, as beaten and as hosts_pick() compares it: the requests in flight
 * on this host's VMs (every VM's FIFO, pool VMs included, so queued pool
 * runs count) over the CPUs online. 0 = idle; 1 = a request per core.
 *
 * Ages are measured on the receiver's clock (when the beat arrived), never
 * by comparing two hosts' clocks. */
#include "manager.h"
#include "cluster.h"
#include "hosts.h"
#include "namescheck.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOSTS_MAX 256

struct host {
    char name[CLUSTER_HOST_MAX + 1];
    double last;            /* when its last beat arrived (proto_now) */
    double gone_at;         /* when it stopped being alive; 0 while alive */
    json_int_t vms, executions;
    double load;
    int alive, leaving;
};

struct listener {
    hosts_change_fn fn;
    void *arg;
};

static struct {
    int started, left;       /* left: our "leaving" beat went out */
    struct host h[HOSTS_MAX];
    size_t n;
    struct listener ls[8];
    size_t nls;
    struct event *tick;
    char subject[160];
    double up_since;        /* the link came up last; 0 while down */
} H;

static void notify(const char *host, int up)
{
    for (size_t i = 0; i < H.nls; i++)
        H.ls[i].fn(host, up, H.ls[i].arg);
}

static struct host *find(const char *name)
{
    for (size_t i = 0; i < H.n; i++)
        if (strcmp(H.h[i].name, name) == 0)
            return &H.h[i];
    return NULL;
}

/* This host's own figures, for its beat and for hosts_report. */
static void own_figures(json_int_t *vms, double *load)
{
    size_t n, inflight = 0;
    struct vm **all = registry_all(&n);
    for (size_t i = 0; all && i < n; i++)
        inflight += all[i]->npending;
    free(all);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *vms = (json_int_t)mgr->nvms;
    *load = (double)inflight / (double)(cpus > 0 ? cpus : 1);
}

static json_t *own_entry(int leaving)
{
    json_int_t vms;
    double load;
    own_figures(&vms, &load);
    return json_pack("{s:s, s:b, s:I, s:I, s:f, s:b}", "name", cluster_self(),
                     "alive", !leaving, "vms", vms,
                     "executions", (json_int_t)stats_totals.executions, "load", load,
                     "leaving", leaving);
}

static void beat(int leaving)
{
    char err[128];
    if (H.left)
        return;     /* a late (re)connect must not unsay our "leaving" */
    H.left = leaving;
    json_t *b = own_entry(leaving);
    if (b && cluster_up())
        cluster_publish(H.subject, NULL, b, err, sizeof err);
    json_decref(b);
}

/* A beat arrived. Malformed ones are dropped: nobody waits for an answer. */
static void on_beat(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    struct beat b;
    if (namescheck_beat(msg, &b) < 0) {
        fprintf(stderr, "bioxen-manager: cluster: dropped a malformed heartbeat\n");
        return;
    }
    const char *name = b.name;
    if (strcmp(name, cluster_self()) == 0)
        return;     /* our own, echoed back */
    struct host *h = find(name);
    if (!h) {
        if (H.n == HOSTS_MAX)
            return;
        h = &H.h[H.n++];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", name);
    }
    h->vms = b.vms;
    h->executions = b.executions;
    h->load = b.load;
    h->leaving = b.leaving;
    h->last = proto_now();
    if (h->leaving && h->alive) {
        h->alive = 0;
        h->gone_at = h->last;
        notify(h->name, 0);
    } else if (!h->leaving && !h->alive) {
        h->alive = 1;
        h->gone_at = 0;
        notify(h->name, 1);
    }
}

/* Beats out, and the hosts that fell silent go. */
static void tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    double now = proto_now();
    beat(0);
    for (size_t i = 0; i < H.n; i++) {
        struct host *h = &H.h[i];
        if (h->alive && now - h->last > HOSTS_ALIVE_S) {
            h->alive = 0;
            h->gone_at = now;
            notify(h->name, 0);
        }
    }
    timer_arm(H.tick, HOSTS_BEAT_S);
}

static void on_state(int up, const char *why, void *arg)
{
    (void)why; (void)arg;
    H.up_since = up ? proto_now() : 0;
    if (up)
        beat(0);    /* say we are back at once, not a beat later */
}

int hosts_start(void)
{
    if (!cluster_enabled())
        return 0;
    if (cluster_subject(H.subject, sizeof H.subject, "hb") < 0 ||
        cluster_subscribe(H.subject, NULL, on_beat, NULL) < 0 ||
        cluster_on_state(on_state, NULL) < 0 ||
        !(H.tick = evtimer_new(mgr->base, tick_cb, NULL)))
        return -1;
    H.started = 1;
    H.up_since = cluster_up() ? proto_now() : 0;
    timer_arm(H.tick, HOSTS_BEAT_S);
    return 0;
}

/* A clean shutdown: the others hear "leaving" at once instead of waiting
 * out HOSTS_ALIVE_S. Called while the link still runs. */
void hosts_stop(void)
{
    if (!H.started)
        return;
    beat(1);
    event_free(H.tick);
    H.tick = NULL;
    H.started = 0;
}

int hosts_alive(const char *host)
{
    if (!host || !cluster_enabled())
        return 0;
    if (strcmp(host, cluster_self()) == 0)
        return 1;
    struct host *h = find(host);
    return h && h->alive;
}

int hosts_seen(const char *host)
{
    return host && find(host) != NULL;
}

int hosts_left(const char *host)
{
    struct host *h = host ? find(host) : NULL;
    return h && !h->alive && h->leaving;
}

/* Counted only while our link is up, and only past the time a live host
 * needs to be heard: right after a (re)connect nobody is "gone" yet. */
double hosts_gone_for(const char *host)
{
    if (!cluster_enabled() || !cluster_up() || !H.up_since || hosts_alive(host))
        return -1;
    struct host *h = host ? find(host) : NULL;
    double since = H.up_since + HOSTS_ALIVE_S;
    if (h && h->gone_at > since)
        since = h->gone_at;
    double d = proto_now() - since;
    return d > 0 ? d : 0;
}

/* Lowest live name: the one host that sweeps a dead host's names. */
int hosts_leader(void)
{
    if (!cluster_enabled() || !cluster_up())
        return 0;
    const char *self = cluster_self();
    for (size_t i = 0; i < H.n; i++)
        if (H.h[i].alive && strcmp(H.h[i].name, self) < 0)
            return 0;
    return 1;
}

json_t *hosts_report(void)
{
    json_t *arr = json_array();
    if (!arr || !cluster_enabled())
        return arr;
    json_t *self = own_entry(0);
    json_object_del(self, "leaving");
    json_array_append_new(arr, self);
    for (size_t i = 0; i < H.n; i++) {
        struct host *h = &H.h[i];
        json_array_append_new(arr, json_pack("{s:s, s:b, s:I, s:I, s:f}", "name", h->name,
                                             "alive", h->alive, "vms", h->vms,
                                             "executions", h->executions, "load", h->load));
    }
    return arr;
}

const char *hosts_pick(void)
{
    json_int_t vms;
    double best;
    own_figures(&vms, &best);
    const char *pick = cluster_self();
    for (size_t i = 0; i < H.n; i++)
        if (H.h[i].alive && H.h[i].load < best)
            best = H.h[i].load, pick = H.h[i].name;
    return pick;
}

size_t hosts_live(const char **names, double *loads, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < H.n && k < max; i++)
        if (H.h[i].alive) {
            names[k] = H.h[i].name;
            loads[k++] = H.h[i].load;
        }
    return k;
}

int hosts_on_change(hosts_change_fn fn, void *arg)
{
    if (H.nls == sizeof H.ls / sizeof H.ls[0])
        return -1;
    H.ls[H.nls].fn = fn;
    H.ls[H.nls].arg = arg;
    H.nls++;
    return 0;
}
