/* router.c - op dispatch: validates a client's request, answers manager ops
 * itself and hands VM ops to vmproc.c. Called by client.c for every parsed
 * frame; the request is borrowed (the caller frees it). The stateless
 * checks live in validate.c (fuzzed); this file applies them. This is the one
 * place that decides where a VM lives ("not here" belongs here later). */
#include "manager.h"
#include "validate.h"
#include "mailbox.h"
#include "policy.h"
#include "stream.h"
#include "promhttp.h"
#include "spare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void reply(struct client *c, json_t *id, json_t *result)
{
    client_send_new(c, proto_reply_new(id, result));
}

#define FAIL(c, id, code, ...) client_send_new((c), proto_error_new((id), (code), __VA_ARGS__))

/* ---- manager ops -------------------------------------------------------- */

static void op_create(struct client *c, json_t *id, json_t *req)
{
    char err[256];
    json_t *init;
    enum bx_err e = req_check_create(req, &init, err, sizeof err);
    if (e != BX_OK)
        return FAIL(c, id, e, "%s", err);
    const char *name = json_string_value(json_object_get(req, "name"));
    if (registry_find(name)) {
        json_decref(init);
        return FAIL(c, id, BX_E_VM_EXISTS, "a VM named '%s' already exists", name);
    }
    /* mailbox hook: a name held by a client mailbox is taken too; the node
     * learns its own name for mailbox.name() and as the sender of its mail */
    if ((e = mailbox_check_create(req, err, sizeof err)) != BX_OK) {
        json_decref(init);
        return FAIL(c, id, e, "%s", err);
    }
    json_object_set_new(init, "name", json_string(name));
    struct vm *vm = vm_create(name, init, c, id, &e, err, sizeof err);
    if (!vm)
        FAIL(c, id, e, "%s", err);
    else if (mailbox_vm_added(vm) < 0)
        vm_destroy(vm, BX_E_INTERNAL, "out of memory for the VM's mailbox");
    json_decref(init);
}

static json_t *vm_describe(struct vm *vm)
{
    const char *state = vm->state == VM_STARTING ? "starting" :
                        vm->npending ? "busy" : "idle";
    return json_pack("{s:s, s:i, s:s, s:I, s:b, s:b, s:b}", "name", vm->name,
                     "pid", vm->node ? (int)vm->node->pid : 0, "state", state,
                     "pending", (json_int_t)vm->npending,
                     "persistent", vm->persistent, "networked", vm->networked,
                     "pool", vm->pool != NULL);
}

static void op_list(struct client *c, json_t *id)
{
    size_t n;
    struct vm **all = registry_all(&n);
    json_t *arr = json_array();
    for (size_t i = 0; all && i < n; i++)
        json_array_append_new(arr, vm_describe(all[i]));
    free(all);
    reply(c, id, arr);
}

static void op_shutdown_all(struct client *c, json_t *id)
{
    size_t n, killed = 0;
    struct vm **all = registry_all(&n);
    for (size_t i = 0; all && i < n; i++) {
        if (!all[i]->pool && (all[i]->owner_id == c->id || all[i]->persistent)) {
            vm_destroy(all[i], BX_E_VM_CRASHED, "VM destroyed");
            killed++;
        }
    }
    free(all);
    reply(c, id, json_integer((json_int_t)killed));
}

/* Constant-time so the reply time does not leak how much of a guess was right. */
static int token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;
    for (size_t i = 0; i < lb; i++)     /* time depends on the secret's length only */
        d |= (unsigned char)(i < la ? a[i] : 0) ^ (unsigned char)b[i];
    return d == 0;
}

static void op_auth(struct client *c, json_t *id, json_t *req)
{
    const char *tok = json_string_value(json_object_get(req, "token"));
    if (!c->is_tcp)
        return reply(c, id, json_true());
    if (tok && mgr->token && token_equal(tok, mgr->token)) {
        c->authed = 1;
        return reply(c, id, json_true());
    }
    FAIL(c, id, BX_E_AUTH_REQUIRED, "bad token");
}

static void op_hello(struct client *c, json_t *id)
{
    pid_t pids[64];
    size_t n = spare_pids(pids, 64);
    json_t *spares = json_array();  /* nodes ready for a create (spare.c) */
    for (size_t i = 0; i < n; i++)
        json_array_append_new(spares, json_integer(pids[i]));
    json_t *r = json_pack("{s:s, s:i, s:i, s:I, s:o}", "server", "bioxen-manager",
                          "version", BX_PROTO_VERSION, "pid", (int)getpid(),
                          "frame_max", (json_int_t)mgr->max_frame, "spares", spares);
    if (r && promhttp_port() > 0)   /* --metrics-port 0 picks one: say which */
        json_object_set_new(r, "metrics_port", json_integer(promhttp_port()));
    if (r && server_tcp_bound())    /* so does --tcp HOST:0 */
        json_object_set_new(r, "tcp", json_string(server_tcp_bound()));
    reply(c, id, r);
}

static void op_history(struct client *c, json_t *id, json_t *req)
{
    char err[128];
    size_t n;
    if (req_check_history(req, &n, err, sizeof err) != BX_OK)
        return FAIL(c, id, BX_E_BAD_REQUEST, "%s", err);
    reply(c, id, stats_history(n));
}

/* ---- VM ops ------------------------------------------------------------- */

static void op_vm(struct client *c, json_t *id, json_t *req, const char *op, int k)
{
    char err[256];
    const char *name = req_vm_name(req);
    if (!name)
        return FAIL(c, id, BX_E_BAD_REQUEST, "'vm' must be a VM name");
    struct vm *vm = registry_find(name);
    if (!vm || vm->pool)    /* pool VMs are reached through run only */
        return FAIL(c, id, BX_E_VM_NOT_FOUND, "no VM named '%.64s'", name);
    enum bx_err e = req_check_vm_op(req, k, err, sizeof err);
    if (e != BX_OK)
        return FAIL(c, id, e, "%s", err);
    if (strcmp(op, "net_enable") == 0 && vm->full_isolation && !vm->networked)
        return FAIL(c, id, BX_E_ISOLATION, "VM '%s' runs in full isolation in its own network "
                    "namespace; create it with networked=True to use the network", vm->name);
    if (vmreq_send_op(vm, op, req, REQ_VM_RUNS(k), c->id, id) < 0)
        return FAIL(c, id, BX_E_INTERNAL, "out of memory");
    /* The host turned networking on: a node restarted after a timeout or a
     * CPU kill must come back networked too. */
    if (strcmp(op, "net_enable") == 0)
        json_object_set_new(vm->init, "networked", json_true());
}

static void op_cb_result(struct client *c, json_t *req)
{
    struct vm *vm = registry_find(req_vm_name(req) ? req_vm_name(req) : "");
    /* Only the owner answers its VM's callbacks; anything else is dropped
     * because cb_result has no reply to carry an error. */
    if (!vm || vm->owner_id != c->id || !req_cb_result_ok(req))
        return;
    json_object_del(req, "vm");
    vmreq_send_raw(vm, req);
}

/* ---- dispatch ----------------------------------------------------------- */

void router_dispatch(struct client *c, json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    json_t *id = json_object_get(req, "id");
    if (op && strcmp(op, "cb_result") == 0 && c->authed)
        return op_cb_result(c, req);
    if (op && strcmp(op, "stream_ack") == 0 && c->authed)
        return stream_client_ack(c, req);   /* no id, no reply */
    char err[128];
    if (req_check_id(req, err, sizeof err) != BX_OK)
        return FAIL(c, NULL, BX_E_BAD_REQUEST, "%s", err);
    int k = req_vm_op(op);
    if (!op)
        FAIL(c, id, BX_E_BAD_REQUEST, "'op' must be a string");
    else if (mgr->shutting_down)
        FAIL(c, id, BX_E_SHUTTING_DOWN, "manager is shutting down");
    else if (strcmp(op, "auth") == 0)
        op_auth(c, id, req);
    else if (!c->authed)
        FAIL(c, id, BX_E_AUTH_REQUIRED, "authenticate first (op \"auth\")");
    else if (k >= 0)
        op_vm(c, id, req, op, k);
    else if (strcmp(op, "create") == 0)
        op_create(c, id, req);
    else if (mailbox_client_op(c, id, op, req))
        ;   /* mailbox_open/close, mail_send/recv, outbox_recv */
    else if (policy_client_op(c, id, op, req))
        ;   /* set_policy */
    else if (pool_client_op(c, id, op, req))
        ;   /* run, pool_config, pool_warmup */
    else if (strcmp(op, "destroy") == 0) {
        struct vm *vm = registry_find(req_vm_name(req) ? req_vm_name(req) : "");
        if (!vm || vm->pool)
            FAIL(c, id, BX_E_VM_NOT_FOUND, "no such VM");
        else {
            vm_destroy(vm, BX_E_VM_CRASHED, "VM destroyed");
            reply(c, id, json_true());
        }
    } else if (strcmp(op, "ping") == 0)
        reply(c, id, json_string("pong"));
    else if (strcmp(op, "hello") == 0)
        op_hello(c, id);
    else if (strcmp(op, "list") == 0)
        op_list(c, id);
    else if (strcmp(op, "shutdown_all") == 0)
        op_shutdown_all(c, id);
    else if (strcmp(op, "metrics") == 0)
        reply(c, id, metrics_report());
    else if (strcmp(op, "history") == 0)
        op_history(c, id, req);
    else if (strcmp(op, "subscribe") == 0) {
        events_subscribe(c);
        reply(c, id, json_true());
    } else if (strcmp(op, "shutdown") == 0) {
        reply(c, id, json_true());
        manager_shutdown("shutdown requested");
    } else
        FAIL(c, id, BX_E_UNKNOWN_OP, "unknown op '%.64s'", op);
}
