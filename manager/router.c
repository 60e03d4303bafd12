/* router.c - carries out one client request by the op table (ops.def):
 * look the op up, apply the gates every op shares (shutting down, auth),
 * run the op's pure check, resolve the VM an OPF_VM op names, then call the
 * op's handler. Also the handlers of the ops a node carries out. The
 * request is borrowed (client.c frees it). */
#include "manager.h"
#include "cluster.h"
#include "ops.h"
#include "remote.h"
#include "stream.h"

#include <stdio.h>
#include <string.h>

#define FAIL(c, id, code, ...) client_send_new((c), proto_error_new((id), (code), __VA_ARGS__))

static void (*const handlers[])(struct op_ctx *) = {
#define OP(NAME, CHECK, HANDLER, FLAGS, FIELDS) HANDLER,
#include "ops.def"
#undef OP
};
_Static_assert(sizeof handlers / sizeof handlers[0] == OP_COUNT, "ops.def expanded twice alike");

/* The VM a request names, or NULL (the caller answers VM_NOT_FOUND or, for
 * a frame without an id, drops it). Every op that addresses a VM comes
 * through this one function, so this is where it is decided:
 * ownership (a VM of another identity, not shared and the asker no admin:
 * NULL, so "not yours" is the same VM_NOT_FOUND as "no such name", no hint
 * that it exists) and, next, the cluster (a VM that lives on another host:
 * forward the request there instead of answering here; *forwarded is then
 * set and the target host answers, ownership included). A proxy's requests
 * (c->remote) came here to be carried out: they are never sent on again. */
static struct vm *router_vm(struct op_ctx *x, const char *name, int *forwarded)
{
    struct vm *vm = name ? registry_find(name) : NULL;
    if (!vm && name && mgrop_hold(x->c, name, x->req)) {
        *forwarded = 1;     /* carried out once its create has claimed the name */
        return NULL;
    }
    if (!vm && name && cluster_enabled() && !x->c->remote) {
        const char *host = remote_where(name);
        if (host) {
            remote_forward(x, host);
            *forwarded = 1;
        }
        return NULL;
    }
    if (!vm || vm->pool)    /* pool VMs are reached through run only */
        return NULL;
    return identity_sees(x->c, vm) ? vm : NULL;
}

/* ---- ops a node carries out ------------------------------------------------ */

void router_vm_op(struct op_ctx *x)
{
    if (vmreq_send_op(x->vm, x->op->name, x->req, (x->op->flags & OPF_RUNS) != 0, x->c->id, x->id) < 0)
        FAIL(x->c, x->id, BX_E_INTERNAL, "out of memory");
}

void router_net_enable(struct op_ctx *x)
{
    struct vm *vm = x->vm;
    if (vm->full_isolation && !vm->networked)
        return FAIL(x->c, x->id, BX_E_ISOLATION, "VM '%s' runs in full isolation in its own network "
                    "namespace; create it with networked=True to use the network", vm->name);
    if (vmreq_send_op(vm, x->op->name, x->req, 0, x->c->id, x->id) < 0)
        return FAIL(x->c, x->id, BX_E_INTERNAL, "out of memory");
    /* The host turned networking on: a node restarted after a timeout or a
     * CPU kill must come back networked too. */
    json_object_set_new(vm->init, "networked", json_true());
}

/* Only the owner answers its VM's callbacks; anything else is dropped
 * because cb_result has no reply to carry an error. */
void router_cb_result(struct op_ctx *x)
{
    if (x->vm->owner_id != x->c->id)
        return;
    json_object_del(x->req, "vm");
    vmreq_send_raw(x->vm, x->req);
}

/* stream.c finds the requester's exec in the VM's FIFO (no reply). */
void router_stream_ack(struct op_ctx *x)
{
    stream_client_ack(x->c, x->req);
}

/* ---- dispatch -------------------------------------------------------------- */

/* Check, resolve, handle; every failure before the handler is answered
 * (or, for OPF_NOREPLY ops, dropped). */
static void run_op(struct op_ctx *x)
{
    char err[512];
    int noreply = (x->op->flags & OPF_NOREPLY) != 0;
    enum bx_err e = op_check_fields(x->op, x->req, err, sizeof err);
    if (e == BX_OK)
        e = x->op->check(x->req, &x->a, err, sizeof err);
    if (e != BX_OK) {
        if (!noreply)
            FAIL(x->c, x->id, e, "%s", err);
        return;
    }
    if (x->op->flags & OPF_VM) {
        const char *name = req_vm_name(x->req);
        int forwarded = 0;
        if (!(x->vm = router_vm(x, name, &forwarded))) {
            if (!noreply && !forwarded)
                FAIL(x->c, x->id, BX_E_VM_NOT_FOUND, "no VM named '%.64s'", name ? name : "");
            return;
        }
    }
    handlers[x->op - op_table](x);
}

void router_dispatch(struct client *c, json_t *req)
{
    router_dispatch_op(c, req, op_lookup(json_string_value(json_object_get(req, "op"))));
}

/* d is op_lookup() of req's "op", already made by the caller. */
void router_dispatch_op(struct client *c, json_t *req, const struct op_def *d)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    struct op_ctx x = { c, json_object_get(req, "id"), req, d, NULL, {0} };
    char err[128];
    if (d && (d->flags & OPF_NOREPLY) && c->authed) {
        x.id = NULL;    /* these frames carry none: nothing is answered */
        run_op(&x);
    } else if (req_check_id(req, err, sizeof err) != BX_OK)
        FAIL(c, NULL, BX_E_BAD_REQUEST, "%s", err);
    else if (!op)
        FAIL(c, x.id, BX_E_BAD_REQUEST, "'op' must be a string");
    else if (mgr->shutting_down)
        FAIL(c, x.id, BX_E_SHUTTING_DOWN, "manager is shutting down");
    else if (!c->authed && !(d && (d->flags & OPF_PREAUTH)))
        FAIL(c, x.id, BX_E_AUTH_REQUIRED, "authenticate first (op \"auth\")");
    else if (!d)
        FAIL(c, x.id, BX_E_UNKNOWN_OP, "unknown op '%.64s'", op);
    else if ((d->flags & OPF_ADMIN) && !c->admin)
        FAIL(c, x.id, BX_E_FORBIDDEN, "'%s' is for admins; this connection is %s",
             d->name, c->identity);
    else
        run_op(&x);
    op_args_clear(&x.a);
}
