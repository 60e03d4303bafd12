/* mgrops.c - the ops the manager answers itself (create, destroy, list,
 * auth, hello, history, metrics, subscribe, shutdown, ...), as named in
 * ops.def. Each gets a request that passed its pure check, and for destroy
 * the VM the router resolved. */
#include "manager.h"
#include "cluster.h"
#include "hosts.h"
#include "mailbox.h"
#include "names.h"
#include "ops.h"
#include "promhttp.h"
#include "remote.h"
#include "spare.h"
#include "zygote.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void reply(struct op_ctx *x, json_t *result)
{
    client_send_new(x->c, proto_reply_new(x->id, result));
}

#define FAIL(x, code, ...) client_send_new((x)->c, proto_error_new((x)->id, (code), __VA_ARGS__))

/* The node is spawned once the name is this host's (names.c claims it in
 * the cluster first; without a cluster at once). The client may have gone
 * while the claim was out: then the name goes again. */
struct held {
    struct held *next;
    uint64_t client_id;
    json_t *req;            /* owned */
};
struct pending_create {
    struct pending_create *next;
    uint64_t client_id;
    json_t *id, *init;      /* owned */
    struct held *held, **held_tail;   /* requests for the name, in arrival order */
    char name[BX_NAME_MAX + 1];
};
static struct pending_create *claiming;    /* names whose claim is out */

/* A request for a name whose create is still claiming it (a pipelined
 * create + exec, as on one host, must find the VM): kept, and carried out
 * in arrival order once the claim is settled. 1 when held. */
int mgrop_hold(struct client *c, const char *name, json_t *req)
{
    struct pending_create *p = claiming;
    while (p && strcmp(p->name, name) != 0)
        p = p->next;
    struct held *h = p ? malloc(sizeof *h) : NULL;
    if (!h)
        return 0;
    *h = (struct held){NULL, c->id, json_incref(req)};
    *p->held_tail = h;
    p->held_tail = &h->next;
    return 1;
}

/* The claim is settled (the VM exists here now, or not): run what waited. */
static void replay_held(struct pending_create *p)
{
    struct pending_create **pp = &claiming;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    for (struct held *h = p->held, *next; h; h = next) {
        next = h->next;
        struct client *c = client_find(h->client_id);
        if (c && !mgr->shutting_down)
            router_dispatch(c, h->req);
        json_decref(h->req);
        free(h);
    }
}

static void create_claimed(int ok, const char *why, void *arg)
{
    struct pending_create *p = arg;
    struct client *c = client_find(p->client_id);
    char err[256];
    enum bx_err e;
    if (!c || c->closing || mgr->shutting_down) {
        if (ok == 1)
            names_release(p->name);     /* no VM follows: the key goes again */
    } else if (ok == 0)
        client_send_new(c, proto_error_new(p->id, BX_E_VM_EXISTS, "a VM named '%s' already "
                        "exists in the cluster (on host %s)", p->name, why));
    else if (ok < 0)
        client_send_new(c, proto_error_new(p->id, BX_E_CLUSTER_UNAVAILABLE, "%s", why));
    else if (registry_find(p->name))
        client_send_new(c, proto_error_new(p->id, BX_E_VM_EXISTS,
                        "a VM named '%s' already exists", p->name));
    else {
        struct vm *vm = vm_create(p->name, p->init, c, p->id, &e, err, sizeof err);
        if (!vm) {
            names_release(p->name);
            client_send_new(c, proto_error_new(p->id, e, "%s", err));
        } else if (mailbox_vm_added(vm) < 0)
            vm_destroy(vm, BX_E_INTERNAL, "out of memory for the VM's mailbox");
    }
    replay_held(p);
    json_decref(p->id);
    json_decref(p->init);
    free(p);
}

/* x->a.init: the init frame opcheck_create built (released by the router). */
void mgrop_create(struct op_ctx *x)
{
    char err[256];
    enum bx_err e;
    const char *name = json_string_value(json_object_get(x->req, "name"));
    if (remote_create(x))       /* host= another host (remote.h) */
        return;
    if (registry_find(name))
        return FAIL(x, BX_E_VM_EXISTS, "a VM named '%s' already exists", name);
    /* mailbox hook: a name held by a client mailbox is taken too; the node
     * learns its own name for mailbox.name() and as the sender of its mail */
    if ((e = mailbox_check_create(x->req, err, sizeof err)) != BX_OK)
        return FAIL(x, e, "%s", err);
    json_object_set_new(x->a.init, "name", json_string(name));
    struct pending_create *p = calloc(1, sizeof *p);
    json_t *rec = names_record(x->c->identity, x->a.init);
    if (!p || !rec) {
        free(p);
        json_decref(rec);
        return FAIL(x, BX_E_INTERNAL, "out of memory");
    }
    p->client_id = x->c->id;
    p->id = json_incref(x->id);
    p->init = json_incref(x->a.init);
    p->held_tail = &p->held;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->next = claiming;
    claiming = p;
    names_claim(name, rec, create_claimed, p);
    json_decref(rec);
}

/* The router resolved only a VM the asker may see; a shared VM of another
 * identity can be used by all but taken away only by its owner or an admin. */
void mgrop_destroy(struct op_ctx *x)
{
    if (!identity_owns(x->c, x->vm))
        return FAIL(x, BX_E_FORBIDDEN, "VM '%s' is shared by %s: only its owner or an admin "
                    "may destroy it", x->vm->name, x->vm->owner);
    vm_destroy(x->vm, BX_E_VM_CRASHED, "VM destroyed");
    reply(x, json_true());
}

json_t *vm_describe(struct vm *vm)
{
    const char *state = vm->state == VM_STARTING ? "starting" :
                        vm->npending ? "busy" : "idle";
    return json_pack("{s:s, s:i, s:s, s:I, s:b, s:b, s:b, s:s, s:b}", "name", vm->name,
                     "pid", vm->node ? (int)vm->node->pid : 0, "state", state,
                     "pending", (json_int_t)vm->npending,
                     "persistent", vm->persistent, "networked", vm->networked,
                     "pool", vm->pool != NULL, "owner", vm->owner, "shared", vm->shared);
}

void mgrop_list(struct op_ctx *x)
{
    size_t n;
    struct vm **all = registry_all(&n);
    json_t *arr = json_array();
    for (size_t i = 0; all && i < n; i++)     /* the VMs the asker may use */
        if (identity_sees(x->c, all[i]))
            json_array_append_new(arr, vm_describe(all[i]));
    free(all);
    if (json_is_true(json_object_get(x->req, "cluster")) && cluster_enabled())
        return remote_list(x, arr);     /* every host's, gathered (fwdlist.c) */
    reply(x, arr);
}

/* This connection's VMs and the persistent ones its identity may destroy:
 * an admin's reaches every persistent VM, anyone else's only its own (the
 * VMs of other identities are not in its view, so they are not touched). */
void mgrop_shutdown_all(struct op_ctx *x)
{
    size_t n, killed = 0;
    struct vm **all = registry_all(&n);
    for (size_t i = 0; all && i < n; i++) {
        struct vm *vm = all[i];
        if (!vm->pool && (vm->owner_id == x->c->id ||
                          (vm->persistent && identity_owns(x->c, vm)))) {
            vm_destroy(all[i], BX_E_VM_CRASHED, "VM destroyed");
            killed++;
        }
    }
    free(all);
    reply(x, json_integer((json_int_t)killed));
}

/* A Unix client is its uid already (identity.c, at accept): nothing to do. */
void mgrop_auth(struct op_ctx *x)
{
    char err[256];
    const char *tok = json_string_value(json_object_get(x->req, "token"));
    if (!x->c->is_tcp)
        return reply(x, json_true());
    enum bx_err e = identity_auth(x->c, tok, err, sizeof err);
    if (e != BX_OK)
        return FAIL(x, e, "%s", err);
    reply(x, json_true());
}

void mgrop_hello(struct op_ctx *x)
{
    pid_t pids[64];
    size_t n = spare_pids(pids, 64);
    json_t *spares = json_array();  /* nodes ready for a create (spare.c) */
    for (size_t i = 0; i < n; i++)
        json_array_append_new(spares, json_integer(pids[i]));
    json_t *r = json_pack("{s:s, s:i, s:i, s:I, s:o, s:s, s:b}", "server", "bioxen-manager",
                          "version", BX_PROTO_VERSION, "pid", (int)getpid(),
                          "frame_max", (json_int_t)mgr->max_frame, "spares", spares,
                          "identity", x->c->identity, "admin", x->c->admin);
    if (r && zygote_pid() > 0)      /* forks the nodes (zygote.c): not a leak */
        json_object_set_new(r, "zygote", json_integer(zygote_pid()));
    if (r && promhttp_port() > 0)   /* --metrics-port 0 picks one: say which */
        json_object_set_new(r, "metrics_port", json_integer(promhttp_port()));
    if (r && server_tcp_bound())    /* so does --tcp HOST:0 */
        json_object_set_new(r, "tcp", json_string(server_tcp_bound()));
    if (r && cluster_enabled())
        json_object_set_new(r, "cluster", json_pack("{s:s, s:b, s:I}", "host", cluster_self(),
                            "connected", cluster_up(), "dropped", (json_int_t)cluster_dropped()));
    reply(x, r);
}

/* hosts.c's table; [] without a cluster. */
void mgrop_hosts(struct op_ctx *x)
{
    reply(x, hosts_report());
}

void mgrop_ping(struct op_ctx *x)
{
    reply(x, json_string("pong"));
}

void mgrop_metrics(struct op_ctx *x)
{
    reply(x, metrics_report());
}

/* x->a.count: how many entries opcheck_history allowed. A non-admin sees
 * the runs of the VMs it may use now (the ring keeps names, not owners, so
 * the runs of VMs that are gone are an admin's to see). */
void mgrop_history(struct op_ctx *x)
{
    if (x->c->admin)
        return reply(x, stats_history(x->a.count));
    json_t *all = stats_history(REQ_HISTORY_MAX), *mine = json_array(), *e;
    size_t i;
    json_array_foreach(all, i, e) {
        const char *name = json_string_value(json_object_get(e, "vm"));
        struct vm *vm = name ? registry_find(name) : NULL;
        if (vm && identity_sees(x->c, vm))
            json_array_append(mine, e);
    }
    json_decref(all);
    while (mine && json_array_size(mine) > x->a.count)
        json_array_remove(mine, 0);     /* the newest count, as for an admin */
    reply(x, mine);
}

void mgrop_subscribe(struct op_ctx *x)
{
    events_subscribe(x->c);
    reply(x, json_true());
}

/* {"op":"metrics_events","on":true}: METRICS_RECORDED for this connection
 * (on defaults to true; false stops them). */
void mgrop_metrics_events(struct op_ctx *x)
{
    json_t *on = json_object_get(x->req, "on");
    events_metrics_listen(x->c, !on || json_is_true(on));
    reply(x, json_true());
}

void mgrop_shutdown(struct op_ctx *x)
{
    reply(x, json_true());
    manager_shutdown("shutdown requested");
}
