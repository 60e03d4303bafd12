/* router.c - op dispatch: validates a client's request, answers manager ops
 * itself and hands VM ops to vmproc.c. Called by client.c for every parsed
 * frame; the request is borrowed (the caller frees it). This is the one
 * place that decides where a VM lives ("not here" belongs here later). */
#include "manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void reply(struct client *c, json_t *id, json_t *result)
{
    client_send_new(c, proto_reply_new(id, result));
}

#define FAIL(c, id, code, ...) client_send_new((c), proto_error_new((id), (code), __VA_ARGS__))

/* ---- validation --------------------------------------------------------- */

static const struct { const char *name; int is_float; } limit_fields[] = {
    {"memory_limit", 0}, {"instruction_limit", 0}, {"timeout", 1},
    {"cpu_limit", 1}, {"max_output", 0},
};

/* Checks one limit value. Returns 0, or -1 with err naming the field. */
static int check_limit(const char *key, json_t *v, int is_float, char *err, size_t n)
{
    int ok = is_float ? json_is_number(v) : json_is_integer(v);
    if (!ok || json_number_value(v) < 0) {
        snprintf(err, n, "limit '%s' must be a non-negative %s", key,
                 is_float ? "number" : "integer");
        return -1;
    }
    return 0;
}

static int check_limits(json_t *limits, char *err, size_t n)
{
    const char *key;
    json_t *v;
    if (!json_is_object(limits)) {
        snprintf(err, n, "'limits' must be an object");
        return -1;
    }
    json_object_foreach(limits, key, v) {
        size_t i = 0, nf = sizeof limit_fields / sizeof limit_fields[0];
        while (i < nf && strcmp(limit_fields[i].name, key) != 0)
            i++;
        if (i == nf) {
            snprintf(err, n, "unknown limit '%.64s'", key);
            return -1;
        }
        if (check_limit(key, v, limit_fields[i].is_float, err, n) < 0)
            return -1;
    }
    return 0;
}

static int check_callbacks(json_t *cbs, char *err, size_t n)
{
    size_t i;
    json_t *v;
    if (!json_is_array(cbs)) {
        snprintf(err, n, "'callbacks' must be a list of names");
        return -1;
    }
    json_array_foreach(cbs, i, v) {
        if (!json_is_string(v) || json_string_length(v) == 0) {
            snprintf(err, n, "'callbacks' must be a list of non-empty strings");
            return -1;
        }
    }
    return 0;
}

/* ---- manager ops -------------------------------------------------------- */

static void op_create(struct client *c, json_t *id, json_t *req)
{
    char err[256];
    const char *name = json_string_value(json_object_get(req, "name"));
    if (!proto_valid_name(name))
        return FAIL(c, id, BX_E_BAD_REQUEST, "'name' must match ^[A-Za-z0-9_.:-]{1,64}$");
    json_t *init = json_deep_copy(req);
    json_object_del(init, "id");
    json_object_del(init, "op");
    json_object_del(init, "name");
    if (!json_object_get(init, "limits"))
        json_object_set_new(init, "limits", json_object());
    if (!json_object_get(init, "callbacks"))
        json_object_set_new(init, "callbacks", json_array());
    if (!json_object_get(init, "networked"))
        json_object_set_new(init, "networked", json_false());
    json_t *pers = json_object_get(init, "persistent");
    int bad = check_limits(json_object_get(init, "limits"), err, sizeof err) < 0 ||
              check_callbacks(json_object_get(init, "callbacks"), err, sizeof err) < 0;
    if (!bad && (!json_is_boolean(json_object_get(init, "networked")) ||
                 (pers && !json_is_boolean(pers)))) {
        snprintf(err, sizeof err, "'networked' and 'persistent' must be booleans");
        bad = 1;
    }
    if (bad) {
        json_decref(init);
        return FAIL(c, id, BX_E_BAD_REQUEST, "%s", err);
    }
    if (registry_find(name)) {
        json_decref(init);
        return FAIL(c, id, BX_E_VM_EXISTS, "a VM named '%s' already exists", name);
    }
    if (!vmproc_create(name, init, c, id, err, sizeof err))
        FAIL(c, id, BX_E_INTERNAL, "%s", err);
    json_decref(init);
}

static json_t *vm_describe(struct vm *vm)
{
    const char *state = vm->state == VM_STARTING ? "starting" :
                        vm->npending ? "busy" : "idle";
    return json_pack("{s:s, s:i, s:s, s:I, s:b, s:b}", "name", vm->name,
                     "pid", vm->node ? (int)vm->node->pid : 0, "state", state,
                     "pending", (json_int_t)vm->npending,
                     "persistent", vm->persistent, "networked", vm->networked);
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
        if (all[i]->owner_id == c->id || all[i]->persistent) {
            vmproc_destroy(all[i], BX_E_VM_CRASHED, "VM destroyed");
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
    reply(c, id, json_pack("{s:s, s:i, s:i, s:I}", "server", "bioxen-manager",
                           "version", BX_PROTO_VERSION, "pid", (int)getpid(),
                           "frame_max", (json_int_t)mgr->max_frame));
}

/* ---- VM ops ------------------------------------------------------------- */

/* Per-op required field and its type; NULL field means none. */
static const struct { const char *op, *field; json_type type; } vm_ops[] = {
    {"exec", "code", JSON_STRING}, {"call", "fn", JSON_STRING},
    {"exists", "fn", JSON_STRING}, {"set_globals", "globals", JSON_OBJECT},
    {"get_global", "name", JSON_STRING}, {"reset", NULL, JSON_NULL},
    {"stats", NULL, JSON_NULL},
};

static int vm_op_index(const char *op)
{
    for (size_t i = 0; i < sizeof vm_ops / sizeof vm_ops[0]; i++)
        if (strcmp(vm_ops[i].op, op) == 0)
            return (int)i;
    return -1;
}

static int run_overrides(json_t *req, struct vm *vm, double *timeout, char *err, size_t n)
{
    json_t *t = json_object_get(req, "timeout"), *il = json_object_get(req, "instruction_limit");
    json_t *args = json_object_get(req, "args");
    if ((t && check_limit("timeout", t, 1, err, n) < 0) ||
        (il && check_limit("instruction_limit", il, 0, err, n) < 0))
        return -1;
    if (args && !json_is_array(args)) {
        snprintf(err, n, "'args' must be a list");
        return -1;
    }
    *timeout = t ? json_number_value(t) : vm->timeout;
    json_object_set_new(req, "timeout", json_real(*timeout));
    if (!il)
        json_object_set_new(req, "instruction_limit", json_integer(vm->instruction_limit));
    return 0;
}

static void op_vm(struct client *c, json_t *id, json_t *req, int k)
{
    char err[256];
    double timeout = 0;
    const char *name = json_string_value(json_object_get(req, "vm"));
    if (!name)
        return FAIL(c, id, BX_E_BAD_REQUEST, "'vm' must be a VM name");
    struct vm *vm = registry_find(name);
    if (!vm)
        return FAIL(c, id, BX_E_VM_NOT_FOUND, "no VM named '%.64s'", name);
    json_t *field = vm_ops[k].field ? json_object_get(req, vm_ops[k].field) : NULL;
    if (vm_ops[k].field && (!field || json_typeof(field) != vm_ops[k].type))
        return FAIL(c, id, BX_E_BAD_REQUEST, "'%s' must be %s", vm_ops[k].field,
                    vm_ops[k].type == JSON_OBJECT ? "an object" : "a string");
    int runs = k <= 1;  /* exec, call */
    if (runs && run_overrides(req, vm, &timeout, err, sizeof err) < 0)
        return FAIL(c, id, BX_E_BAD_REQUEST, "%s", err);
    json_object_del(req, "vm");
    if (vmproc_send(vm, req, c->id, id, runs ? PEND_EXEC : PEND_OTHER, timeout) < 0)
        FAIL(c, id, BX_E_INTERNAL, "out of memory");
}

static void op_cb_result(struct client *c, json_t *req)
{
    struct vm *vm = registry_find(json_string_value(json_object_get(req, "vm")) ?
                                  json_string_value(json_object_get(req, "vm")) : "");
    /* Only the owner answers its VM's callbacks; anything else is dropped
     * because cb_result has no reply to carry an error. */
    if (!vm || vm->owner_id != c->id || !json_is_integer(json_object_get(req, "callback")))
        return;
    json_object_del(req, "vm");
    vmproc_send_raw(vm, req);
}

/* ---- dispatch ----------------------------------------------------------- */

void router_dispatch(struct client *c, json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    json_t *id = json_object_get(req, "id");
    if (op && strcmp(op, "cb_result") == 0 && c->authed)
        return op_cb_result(c, req);
    if (!json_is_integer(id) && !json_is_string(id))
        return FAIL(c, NULL, BX_E_BAD_REQUEST, "'id' must be an integer or a string");
    json_incref(id);    /* VM ops rewrite req's id; keep the client's */
    if (!op)
        FAIL(c, id, BX_E_BAD_REQUEST, "'op' must be a string");
    else if (mgr->shutting_down)
        FAIL(c, id, BX_E_SHUTTING_DOWN, "manager is shutting down");
    else if (strcmp(op, "auth") == 0)
        op_auth(c, id, req);
    else if (!c->authed)
        FAIL(c, id, BX_E_AUTH_REQUIRED, "authenticate first (op \"auth\")");
    else if (vm_op_index(op) >= 0)
        op_vm(c, id, req, vm_op_index(op));
    else if (strcmp(op, "create") == 0)
        op_create(c, id, req);
    else if (strcmp(op, "destroy") == 0) {
        struct vm *vm = registry_find(json_string_value(json_object_get(req, "vm")) ?
                                      json_string_value(json_object_get(req, "vm")) : "");
        if (!vm)
            FAIL(c, id, BX_E_VM_NOT_FOUND, "no such VM");
        else {
            vmproc_destroy(vm, BX_E_VM_CRASHED, "VM destroyed");
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
    else if (strcmp(op, "subscribe") == 0) {
        events_subscribe(c);
        reply(c, id, json_true());
    } else if (strcmp(op, "shutdown") == 0) {
        reply(c, id, json_true());
        manager_shutdown("shutdown requested");
    } else
        FAIL(c, id, BX_E_UNKNOWN_OP, "unknown op '%.64s'", op);
    json_decref(id);
}
