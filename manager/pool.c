/* pool.c - a connection's pool of stateless VMs behind the op "run".
 * A run goes to an idle pool VM as set_globals (if any) + exec + reset, all
 * pipelined into the VM's FIFO; the reset's reply is swallowed (client id 0)
 * so the next run starts from a fresh Lua state with the same limits. Runs
 * wait in a queue when every VM is busy and the pool is at max.
 * Owned by the client (c->pool); its VMs are ordinary registry VMs named
 * "#pool-<slot>-<n>" ('#' is not allowed in a created name, so users cannot
 * take or reach them) with vm->pool set. The ops are in the op table
 * (ops.def: pool_op_*); the VMs' comings and goings and the client's
 * departure come in through the pool_* hooks of manager.h. */
#include "manager.h"
#include "ops.h"
#include "spread.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pool_run {
    struct pool_run *next;
    json_t *req;            /* owned: the run request, id included */
};

struct pool_waiter {
    struct pool_waiter *next;
    json_t *id;             /* owned: the pool_warmup's id */
};

struct pool_vm {
    struct vm *vm;
    unsigned gen;           /* the config it was built with */
    int busy, ready;        /* a run is in its FIFO; it answered init */
    double idle_since;
};

struct pool {
    struct client *owner;
    struct pool_cfg cfg;    /* cfg.init owned */
    unsigned gen, seq;
    struct pool_vm *vms;    /* owned array of n (cap) */
    size_t n, cap;
    struct pool_run *qhead, *qtail;
    struct pool_waiter *warm;
    struct event *tick;     /* owned: idle shrink */
    struct event *kick;     /* owned: refill after a VM went away */
    json_t *empty;          /* owned: {} for reset */
    json_t *cfg_src;        /* owned: the pool_config's fields, as sent to proxies */
    struct spread *spread;  /* owned by spread.c: runs waiting for a host */
    int closing;
};

static void pool_fill(struct pool *p);

static struct pool_vm *entry_of(struct pool *p, struct vm *vm)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->vms[i].vm == vm)
            return &p->vms[i];
    return NULL;
}

/* ---- spawning and dispatch ---------------------------------------------- */

static struct pool_vm *pool_spawn(struct pool *p)
{
    char name[BX_NAME_MAX + 1], err[256];
    enum bx_err e;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct pool_vm *a = realloc(p->vms, cap * sizeof *a);
        if (!a)
            return NULL;
        p->vms = a, p->cap = cap;
    }
    snprintf(name, sizeof name, "#pool-%u-%u", (unsigned)(uint32_t)p->owner->id, ++p->seq);
    json_t *init = json_deep_copy(p->cfg.init);
    json_object_set_new(init, "name", json_string(name));
    struct vm *vm = init ? vm_create(name, init, p->owner, NULL, &e, err, sizeof err) : NULL;
    json_decref(init);
    if (!vm) {
        fprintf(stderr, "bioxen-manager: pool VM: %s\n", err);
        return NULL;
    }
    vm->pool = p;
    p->vms[p->n] = (struct pool_vm){vm, p->gen, 0, 0, proto_now()};
    return &p->vms[p->n++];
}

static void dispatch(struct pool *p, struct pool_vm *e, json_t *req)
{
    json_t *id = json_object_get(req, "id");
    e->busy = 1;
    int rc = 0;
    if (json_object_get(req, "globals"))
        rc = vmreq_send_op(e->vm, "set_globals", req, 0, 0, NULL);
    rc = rc || vmreq_send_op(e->vm, "exec", req, 1, p->owner->id, id);
    if (!rc)    /* metrics and history name it as the client did */
        snprintf(e->vm->tail->op, sizeof e->vm->tail->op, "run");
    rc = rc || vmreq_send_op(e->vm, "reset", p->empty, 0, 0, NULL);
    if (rc)
        client_send_new(p->owner, proto_error_new(id, BX_E_INTERNAL, "out of memory"));
}

static struct pool_vm *pick_idle(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (!p->vms[i].busy && p->vms[i].gen == p->gen)
            return &p->vms[i];
    return NULL;
}

static size_t count_ready(struct pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        k += p->vms[i].ready && p->vms[i].gen == p->gen;
    return k;
}

static void answer_warm(struct pool *p)
{
    size_t k = count_ready(p);
    if (k < p->cfg.min)
        return;
    for (struct pool_waiter *w = p->warm, *next; w; w = next) {
        next = w->next;
        client_send_new(p->owner, proto_reply_new(w->id, json_pack("{s:I}", "ready", (json_int_t)k)));
        json_decref(w->id);
        free(w);
    }
    p->warm = NULL;
}

/* Queued runs onto idle VMs (new ones up to max), then the warm minimum. */
static void pool_fill(struct pool *p)
{
    struct pool_vm *e;
    while (p->qhead && ((e = pick_idle(p)) || (p->n < p->cfg.max && (e = pool_spawn(p))))) {
        struct pool_run *r = p->qhead;
        p->qhead = r->next;
        if (!p->qhead)
            p->qtail = NULL;
        dispatch(p, e, r->req);
        json_decref(r->req);
        free(r);
    }
    size_t fresh = 0;
    for (size_t i = 0; i < p->n; i++)
        fresh += p->vms[i].gen == p->gen;
    while (fresh++ < p->cfg.min && pool_spawn(p))
        ;
}

/* ---- timers ------------------------------------------------------------- */

static void tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct pool *p = arg;
    double now = proto_now();
    for (size_t i = p->n; i-- > 0 && p->n > p->cfg.min;) {
        struct pool_vm *e = &p->vms[i];
        if (i < p->n && !e->busy && e->ready && now - e->idle_since >= p->cfg.idle_timeout)
            vm_destroy(e->vm, BX_E_VM_CRASHED, "pool VM idle");
    }
}

static void kick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct pool *p = arg;
    if (!mgr->shutting_down)
        pool_fill(p);
}

static void tick_arm(struct pool *p)
{
    double t = p->cfg.idle_timeout / 4;
    t = t < 0.01 ? 0.01 : t > 1.0 ? 1.0 : t;
    evtimer_del(p->tick);
    timer_arm(p->tick, t);
}

/* ---- hooks from vm.c, nodeframe.c and client.c -------------------------- */

void pool_vm_settled(struct vm *vm)
{
    struct pool *p = vm->pool;
    struct pool_vm *e = entry_of(p, vm);
    if (!e || vm->npending || vm->restarting || vm->state != VM_READY)
        return;
    e->ready = 1;
    if (e->gen != p->gen)   /* built for an older pool_config */
        return vm_destroy(vm, BX_E_VM_CRASHED, "pool reconfigured");
    if (e->busy)
        e->idle_since = proto_now();
    e->busy = 0;
    pool_fill(p);
    answer_warm(p);
    spread_pump(p);
}

void pool_vm_gone(struct vm *vm)
{
    struct pool *p = vm->pool;
    struct pool_vm *e = entry_of(p, vm);
    vm->pool = NULL;
    if (!e)
        return;
    int never_ready = !e->ready;
    *e = p->vms[--p->n];
    if (p->closing || mgr->shutting_down)
        return;
    /* A VM that dies before it ever answered init would die again: wait a
     * second before the next try instead of spinning. */
    timer_arm(p->kick, never_ready ? 1 : 0);
}

void pool_client_gone(struct client *c)
{
    struct pool *p = c->pool;
    if (!p)
        return;
    p->closing = 1;
    spread_pool_gone(p);
    while (p->n)
        vm_destroy(p->vms[p->n - 1].vm, BX_E_VM_CRASHED, "VM destroyed: its owner disconnected");
    for (struct pool_run *r = p->qhead, *next; r; r = next) {
        next = r->next;
        json_decref(r->req);
        free(r);
    }
    for (struct pool_waiter *w = p->warm, *next; w; w = next) {
        next = w->next;
        json_decref(w->id);
        free(w);
    }
    event_free(p->tick);
    event_free(p->kick);
    json_decref(p->cfg.init);
    json_decref(p->empty);
    json_decref(p->cfg_src);
    free(p->vms);
    free(p);
    c->pool = NULL;
}

/* ---- ops ---------------------------------------------------------------- */

static struct pool *pool_get(struct client *c)
{
    char err[128];
    if (c->pool)
        return c->pool;
    struct pool *p = calloc(1, sizeof *p);
    json_t *dflt = json_object();
    if (!p || !dflt || req_check_pool_config(dflt, &p->cfg, err, sizeof err) != BX_OK) {
        json_decref(dflt);
        free(p);
        return NULL;
    }
    json_decref(dflt);
    p->owner = c;
    p->empty = json_object();
    p->cfg_src = json_object();
    p->tick = event_new(mgr->base, -1, EV_PERSIST, tick_cb, p);
    p->kick = evtimer_new(mgr->base, kick_cb, p);
    c->pool = p;
    if (!p->empty || !p->cfg_src || !p->tick || !p->kick) {
        pool_client_gone(c);
        return NULL;
    }
    tick_arm(p);
    return p;
}

/* cfg (taken) and the fields it came from (src, referenced) become p's. */
static void pool_apply(struct pool *p, struct pool_cfg cfg, json_t *src)
{
    if (!json_equal(cfg.init, p->cfg.init)) {
        p->gen++;   /* VMs of the old limits go as soon as they are idle */
        for (size_t i = p->n; i-- > 0;)
            if (i < p->n && !p->vms[i].busy && p->vms[i].ready)
                vm_destroy(p->vms[i].vm, BX_E_VM_CRASHED, "pool reconfigured");
    }
    json_decref(p->cfg.init);
    p->cfg = cfg;
    json_decref(p->cfg_src);
    p->cfg_src = json_incref(src);
    tick_arm(p);
    pool_fill(p);
}

/* x->a.pool parsed by the op's check (poolcheck.c); taken here. */
static void op_pool_config(struct op_ctx *x, struct pool *p)
{
    struct pool_cfg cfg = x->a.pool;
    json_t *src = json_deep_copy(x->req);
    x->a.pool.init = NULL;
    json_object_del(src, "id");
    json_object_del(src, "op");
    pool_apply(p, cfg, src ? src : p->cfg_src);
    json_decref(src);
    client_send_new(x->c, proto_reply_new(x->id, json_true()));
}

/* A forwarded run carries its origin's pool_config as "pool" (spread.c),
 * so the proxy's pool is built alike; only a proxy may send it. 0 when
 * refused (answered). */
static int run_pool_field(struct op_ctx *x, struct pool *p)
{
    char err[256];
    struct pool_cfg cfg;
    json_t *src = json_object_get(x->req, "pool");
    if (!src)
        return 1;
    enum bx_err e = !x->c->remote ? BX_E_BAD_REQUEST
                  : !json_is_object(src) ? BX_E_BAD_REQUEST
                  : json_equal(src, p->cfg_src) ? BX_OK
                  : req_check_pool_config(src, &cfg, err, sizeof err);
    if (e == BX_OK && !json_equal(src, p->cfg_src))
        pool_apply(p, cfg, src);
    if (e != BX_OK)
        client_send_new(x->c, proto_error_new(x->id, e, "'pool': %s", !x->c->remote
                        ? "unknown field (it is for runs forwarded between hosts)"
                        : !json_is_object(src) ? "must be an object" : err));
    json_object_del(x->req, "pool");
    return e == BX_OK;
}

/* The run's fields were checked by opcheck_run (poolcheck.c). */
static void op_run(struct client *c, struct pool *p, json_t *id, json_t *req)
{
    struct pool_vm *v = pick_idle(p);
    if (!v && p->n < p->cfg.max)
        v = pool_spawn(p);
    if (v)
        return dispatch(p, v, req);
    struct pool_run *r = malloc(sizeof *r);
    if (!r)
        return client_send_new(c, proto_error_new(id, BX_E_INTERNAL, "out of memory"));
    r->next = NULL;
    r->req = json_incref(req);
    if (p->qtail)
        p->qtail->next = r;
    else
        p->qhead = r;
    p->qtail = r;
    if (p->n == 0)      /* nothing will settle to take it: try again soon */
        timer_arm(p->kick, 1);
}

static void op_warmup(struct client *c, struct pool *p, json_t *id)
{
    pool_fill(p);
    struct pool_waiter *w = malloc(sizeof *w);
    if (!w)
        return client_send_new(c, proto_error_new(id, BX_E_INTERNAL, "out of memory"));
    w->id = json_incref(id);
    w->next = p->warm;
    p->warm = w;
    answer_warm(p);
}

/* The connection's pool, made on its first pool op; NULL (answered) when
 * out of memory. */
static struct pool *pool_of(struct op_ctx *x)
{
    struct pool *p = pool_get(x->c);
    if (!p)
        client_send_new(x->c, proto_error_new(x->id, BX_E_INTERNAL, "out of memory"));
    return p;
}

void pool_op_run(struct op_ctx *x)
{
    struct pool *p = pool_of(x);
    if (!p || !run_pool_field(x, p))
        return;
    if (spread_wanted(x->c))
        return spread_run(p, x->req);
    op_run(x->c, p, x->id, x->req);
}

/* ---- for spread.c ------------------------------------------------------- */

void pool_run_local(struct pool *p, json_t *req)
{
    op_run(p->owner, p, json_object_get(req, "id"), req);
}

size_t pool_local_runs(struct pool *p)
{
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        k += p->vms[i].busy != 0;
    for (struct pool_run *r = p->qhead; r; r = r->next)
        k++;
    return k;
}

size_t pool_max_vms(struct pool *p) { return p->cfg.max; }
json_t *pool_cfg_src(struct pool *p) { return p->cfg_src; }
struct spread **pool_spread(struct pool *p) { return &p->spread; }
struct client *pool_owner(struct pool *p) { return p->owner; }

void pool_op_config(struct op_ctx *x)
{
    struct pool *p = pool_of(x);
    if (p)
        op_pool_config(x, p);
}

void pool_op_warmup(struct op_ctx *x)
{
    struct pool *p = pool_of(x);
    if (p)
        op_warmup(x->c, p, x->id);
}
