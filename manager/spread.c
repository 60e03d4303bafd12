/* spread.c - placement and retry of `run` over the cluster (spread.h).
 *
 * Placement is bioxen's own, not a NATS queue group: a queue group would
 * hand each run to whichever subscriber NATS picks, with no idea of a
 * host's pool being full, and a run lost with its host could not be told
 * apart from one still running -- here every forwarded run is a pending
 * request of fwd.c, owed one reply, failed at once when its host dies.
 *
 * Each client's runs wait in its pool's spread queue and go out while a
 * host has a free slot: at most pool max + half of it in flight per host
 * from this client (the target's pool is configured like ours, so that is
 * its VMs plus a little prefetch to hide the NATS hop). A completion frees
 * a slot and the next run goes to the least busy host with room -- so work
 * is pulled by how fast each host answers, a slow host gets less, and no
 * KV or NATS call is made to place a run (the live hosts and their
 * reported load come from the heartbeat table, hosts_live). Ties go to the
 * host with the lower reported load, then to this one. */
#include "manager.h"
#include "cluster.h"
#include "hosts.h"
#include "ops.h"
#include "remote.h"
#include "spread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPREAD_HOSTS 64
#define FLY_BUCKETS 256
#define SPREAD_SKIP_S (2 * HOSTS_ALIVE_S)

struct squeued {
    struct squeued *next;
    json_t *req;                        /* owned: the run, the client's id */
    char avoid[CLUSTER_HOST_MAX + 1];   /* a retry: not the host that died */
    int tries;
};

struct shost {
    char name[CLUSTER_HOST_MAX + 1];
    size_t inflight;
    double failed_at;   /* a run was lost with it: skipped a while, as fwd.c's
                         * probe may see a death before the heartbeats do */
};

struct spread {
    struct squeued *head, *tail;
    struct shost h[SPREAD_HOSTS];
    size_t nh;
};

/* A run forwarded and not yet answered (all clients; by client and id). */
struct sfly {
    struct sfly *next;
    uint64_t client;
    json_t *req;                        /* owned */
    char host[CLUSTER_HOST_MAX + 1];
    int tries;
};

static struct sfly *fly[FLY_BUCKETS];

/* Where this host's clients' runs went, for metrics (runs_by_host). */
static struct {
    char name[SPREAD_HOSTS][CLUSTER_HOST_MAX + 1];
    uint64_t runs[SPREAD_HOSTS];
    size_t n;
    uint64_t retried;
} placed;

static void count_placed(const char *host)
{
    size_t i = 0;
    while (i < placed.n && strcmp(placed.name[i], host) != 0)
        i++;
    if (i == placed.n && placed.n < SPREAD_HOSTS)
        snprintf(placed.name[placed.n++], sizeof placed.name[0], "%s", host);
    if (i < placed.n)
        placed.runs[i]++;
}

void spread_report(json_t *r)
{
    json_t *by = json_object();
    for (size_t i = 0; by && i < placed.n; i++)
        json_object_set_new(by, placed.name[i], json_integer((json_int_t)placed.runs[i]));
    json_object_set_new(r, "runs_by_host", by);
    json_object_set_new(r, "runs_retried", json_integer((json_int_t)placed.retried));
}

int spread_wanted(struct client *c)
{
    return cluster_enabled() && !c->remote;
}

/* Runs go to other hosts only while the link is up (docs/cluster.md: the
 * rule when NATS is away); otherwise all of them run here. */
static int spreading(void)
{
    return cluster_up() && !mgr->shutting_down;
}

static struct spread *spread_of(struct pool *p)
{
    struct spread **sp = pool_spread(p);
    if (!*sp)
        *sp = calloc(1, sizeof **sp);
    return *sp;
}

static struct shost *shost(struct spread *s, const char *name)
{
    for (size_t i = 0; i < s->nh; i++)
        if (strcmp(s->h[i].name, name) == 0)
            return &s->h[i];
    if (s->nh == SPREAD_HOSTS)
        return NULL;
    struct shost *h = &s->h[s->nh++];
    snprintf(h->name, sizeof h->name, "%s", name);
    h->inflight = 0;
    h->failed_at = 0;
    return h;
}

static unsigned fly_hash(uint64_t client, json_t *id)
{
    uint64_t v = json_is_integer(id) ? (uint64_t)json_integer_value(id) : 0;
    const char *s = json_string_value(id);
    while (s && *s)
        v = v * 33 + (unsigned char)*s++;
    return (unsigned)((v ^ (client * 2654435761u)) % FLY_BUCKETS);
}

static struct sfly *fly_take(uint64_t client, json_t *id)
{
    for (struct sfly **pp = &fly[fly_hash(client, id)]; *pp; pp = &(*pp)->next)
        if ((*pp)->client == client && json_equal(json_object_get((*pp)->req, "id"), id)) {
            struct sfly *f = *pp;
            *pp = f->next;
            return f;
        }
    return NULL;
}

/* ---- placement ---------------------------------------------------------- */

/* The host for q: NULL for this one, else the name; *none when every host
 * with room is full (q waits). */
static const char *place(struct pool *p, struct spread *s, struct squeued *q, int *none)
{
    const char *names[SPREAD_HOSTS], *best = NULL;
    double loads[SPREAD_HOSTS], best_load = 0;
    size_t cap = pool_max_vms(p) + (pool_max_vms(p) + 1) / 2;
    size_t n = hosts_live(names, loads, SPREAD_HOSTS), best_fly = pool_local_runs(p);
    int local_ok = strcmp(q->avoid, cluster_self()) != 0 && best_fly < cap;
    if (!local_ok)
        best_fly = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        struct shost *h = strcmp(names[i], q->avoid) ? shost(s, names[i]) : NULL;
        if (!h || h->inflight >= cap || hosts_gone_for(names[i]) > 0 ||
            (h->failed_at && proto_now() - h->failed_at < SPREAD_SKIP_S))
            continue;
        if (h->inflight < best_fly || (h->inflight == best_fly && best && loads[i] < best_load))
            best = names[i], best_fly = h->inflight, best_load = loads[i];
    }
    *none = !best && !local_ok;
    return best;
}

static void forward(struct pool *p, struct spread *s, struct squeued *q, const char *host)
{
    struct sfly *f = calloc(1, sizeof *f);
    struct client *c = pool_owner(p);
    json_t *id = json_object_get(q->req, "id");
    json_t *req = json_deep_copy(q->req);
    if (!f || !req) {
        free(f);
        json_decref(req);
        return client_send_new(c, proto_error_new(id, BX_E_INTERNAL, "out of memory"));
    }
    /* the target's proxy builds its pool like ours */
    json_object_set(req, "pool", pool_cfg_src(p));
    f->client = c->id;
    f->req = json_incref(q->req);
    f->tries = q->tries;
    snprintf(f->host, sizeof f->host, "%s", host);
    unsigned b = fly_hash(f->client, id);
    f->next = fly[b];
    fly[b] = f;
    shost(s, host)->inflight++;
    struct op_ctx x = {.c = c, .id = id, .req = req, .op = op_lookup("run")};
    remote_forward(&x, host);   /* a failure to send comes back through spread_settled */
    json_decref(req);
}

void spread_pump(struct pool *p)
{
    struct spread *s = *pool_spread(p);
    while (s && s->head) {
        struct squeued *q = s->head;
        int none = 0;
        const char *host = spreading() ? place(p, s, q, &none) : NULL;
        if (none)
            return;
        s->head = q->next;
        if (!s->head)
            s->tail = NULL;
        count_placed(host ? host : cluster_self());
        if (host)
            forward(p, s, q, host);
        else
            pool_run_local(p, q->req);
        json_decref(q->req);
        free(q);
    }
}

static void enqueue(struct pool *p, json_t *req, const char *avoid, int tries, int front)
{
    struct spread *s = spread_of(p);
    struct squeued *q = s ? calloc(1, sizeof *q) : NULL;
    if (!q)
        return client_send_new(pool_owner(p), proto_error_new(json_object_get(req, "id"),
                                                              BX_E_INTERNAL, "out of memory"));
    q->req = json_incref(req);
    q->tries = tries;
    snprintf(q->avoid, sizeof q->avoid, "%s", avoid ? avoid : "");
    if (front) {
        q->next = s->head;
        s->head = q;
        if (!s->tail)
            s->tail = q;
    } else {
        if (s->tail)
            s->tail->next = q;
        else
            s->head = q;
        s->tail = q;
    }
}

void spread_run(struct pool *p, json_t *req)
{
    enqueue(p, req, NULL, 0, 0);
    spread_pump(p);
}

void spread_pool_gone(struct pool *p)
{
    struct spread *s = *pool_spread(p);
    if (!s)
        return;
    for (struct squeued *q = s->head, *next; q; q = next) {
        next = q->next;
        json_decref(q->req);
        free(q);
    }
    free(s);
    *pool_spread(p) = NULL;
}

/* ---- the end of a forwarded run ----------------------------------------- */

/* The run never ran there, or its host went with it: worth one more try.
 * A Lua error, a limit, a TIMEOUT (it may still be running) are answers. */
static int host_failure(json_t *frame, enum bx_err code)
{
    if (!frame)
        return code == BX_E_VM_CRASHED || code == BX_E_CLUSTER_UNAVAILABLE;
    const char *c = json_string_value(json_object_get(json_object_get(frame, "error"), "code"));
    return c && bx_err_from_code(c) == BX_E_SHUTTING_DOWN;
}

int spread_settled(uint64_t client_id, json_t *orig_id, const char *host,
                   json_t *frame, enum bx_err code)
{
    struct sfly *f = fly_take(client_id, orig_id);
    if (!f)
        return 0;
    struct client *c = client_find(client_id);
    struct pool *p = c ? c->pool : NULL;
    struct spread *s = p ? *pool_spread(p) : NULL;
    struct shost *h = s ? shost(s, f->host) : NULL;
    if (h && h->inflight)
        h->inflight--;
    int lost = host_failure(frame, code), retry = p && f->tries == 0 && lost && !c->closing;
    if (h && lost)
        h->failed_at = proto_now();
    if (retry) {
        fprintf(stderr, "bioxen-manager: cluster: run of client %llu lost with host '%s': "
                "retried elsewhere\n", (unsigned long long)client_id, host);
        enqueue(p, f->req, f->host, 1, 1);
        placed.retried++;
    }
    json_decref(f->req);
    free(f);
    if (p)
        spread_pump(p);
    return retry;
}
