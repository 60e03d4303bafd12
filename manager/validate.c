/* validate.c - pure checks on a parsed client request (see validate.h): the
 * id, names, limits, create's init frame, the VM ops' fields, and req_check
 * over the op table. No state, so the fuzzer runs exactly the code the
 * manager runs. The policy's rules are policycheck.c's. */
#include "validate.h"
#include "fwdcheck.h"
#include "mailcheck.h"
#include "ops.h"
#include "project_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; int is_float; } limit_fields[] = {
    {"memory_limit", 0}, {"instruction_limit", 0}, {"timeout", 1},
    {"cpu_limit", 1}, {"max_output", 0},
};

enum bx_err req_check_id(json_t *req, char *err, size_t n)
{
    json_t *id = json_object_get(req, "id");
    if (json_is_integer(id) || json_is_string(id))
        return BX_OK;
    snprintf(err, n, "'id' must be an integer or a string");
    return BX_E_BAD_REQUEST;
}

int req_cb_result_ok(json_t *req)
{
    return json_is_integer(json_object_get(req, "callback"));
}

int req_stream_ack_ok(json_t *req)
{
    json_t *sid = json_object_get(req, "stream"), *k = json_object_get(req, "n");
    json_t *cancel = json_object_get(req, "cancel");
    return req_vm_name(req) && (json_is_integer(sid) || json_is_string(sid)) &&
           (!k || (json_is_integer(k) && json_integer_value(k) >= 0)) &&
           (!cancel || json_is_boolean(cancel));
}

const char *req_plain_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

const char *req_vm_name(json_t *req)
{
    return req_plain_string(json_object_get(req, "vm"));
}

int req_check_limit(const char *key, json_t *v, int is_float, char *err, size_t n)
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
        if (req_check_limit(key, v, limit_fields[i].is_float, err, n) < 0)
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

/* ---- VM ops --------------------------------------------------------------- */

enum bx_err req_need_vm(json_t *req, char *err, size_t n)
{
    if (req_vm_name(req))
        return BX_OK;
    snprintf(err, n, "'vm' must be a VM name");
    return BX_E_BAD_REQUEST;
}

/* A VM op's name and its one required field of the given type. */
static enum bx_err vm_field(json_t *req, const char *key, json_type type, char *err, size_t n)
{
    json_t *v = json_object_get(req, key);
    if (req_need_vm(req, err, n) != BX_OK)
        return BX_E_BAD_REQUEST;
    if (!v || json_typeof(v) != type) {
        snprintf(err, n, "'%s' must be %s", key, type == JSON_OBJECT ? "an object" : "a string");
        return BX_E_BAD_REQUEST;
    }
    return BX_OK;
}

int req_filename_ok(const char *s, size_t len, const char **why)
{
    if (len == 0 || len > BX_FILENAME_MAX) {
        *why = "must be 1 to 255 bytes";   /* BX_FILENAME_MAX */
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            *why = "must not hold control characters (it is printed in error messages)";
            return 0;
        }
    return 1;
}

/* filename (IsoBox's ExecutionOptions.filename), chunkname and context:
 * what names the chunk and what the one run sees. */
enum bx_err req_check_run_names(json_t *req, char *err, size_t n)
{
    json_t *f = json_object_get(req, "filename"), *ctx = json_object_get(req, "context");
    const char *why = "must be a string";
    if (f && (!json_is_string(f) || !req_filename_ok(json_string_value(f), json_string_length(f), &why))) {
        snprintf(err, n, "'filename' %s", why);
        return BX_E_BAD_REQUEST;
    }
    if (f && json_object_get(req, "chunkname")) {
        snprintf(err, n, "give 'filename' or 'chunkname', not both");
        return BX_E_BAD_REQUEST;
    }
    if (ctx && !json_is_object(ctx)) {
        snprintf(err, n, "'context' must be an object of globals for this run");
        return BX_E_BAD_REQUEST;
    }
    return BX_OK;
}

enum bx_err req_check_run_fields(json_t *req, int stream_ok, char *err, size_t n)
{
    json_t *t = json_object_get(req, "timeout"), *il = json_object_get(req, "instruction_limit");
    json_t *args = json_object_get(req, "args"), *expr = json_object_get(req, "expr");
    if ((t && req_check_limit("timeout", t, 1, err, n) < 0) ||
        (il && req_check_limit("instruction_limit", il, 0, err, n) < 0))
        return BX_E_BAD_REQUEST;
    if (args && !json_is_array(args)) {
        snprintf(err, n, "'args' must be a list");
        return BX_E_BAD_REQUEST;
    }
    if (expr && !json_is_boolean(expr)) {
        snprintf(err, n, "'expr' must be a boolean");
        return BX_E_BAD_REQUEST;
    }
    if (req_check_run_names(req, err, n) != BX_OK)
        return BX_E_BAD_REQUEST;
    json_t *stream = json_object_get(req, "stream");
    if (stream && (!stream_ok || !json_is_boolean(stream))) {
        snprintf(err, n, "'stream' must be a boolean, on exec only");
        return BX_E_BAD_REQUEST;
    }
    return BX_OK;
}

enum bx_err opcheck_vm(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    return req_need_vm(req, err, n);
}

enum bx_err opcheck_exec(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    enum bx_err e = vm_field(req, "code", JSON_STRING, err, n);
    return e != BX_OK ? e : req_check_run_fields(req, 1, err, n);
}

enum bx_err opcheck_call(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    enum bx_err e = vm_field(req, "fn", JSON_STRING, err, n);
    return e != BX_OK ? e : req_check_run_fields(req, 0, err, n);
}

enum bx_err opcheck_exists(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    return vm_field(req, "fn", JSON_STRING, err, n);
}

enum bx_err opcheck_set_globals(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    return vm_field(req, "globals", JSON_OBJECT, err, n);
}

enum bx_err opcheck_get_global(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    return vm_field(req, "name", JSON_STRING, err, n);
}

/* Frames without an id: a failed check means "dropped", never a reply. */
enum bx_err opcheck_cb_result(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    if (req_cb_result_ok(req))
        return BX_OK;
    snprintf(err, n, "'callback' must be an integer");
    return BX_E_BAD_REQUEST;
}

enum bx_err opcheck_stream_ack(json_t *req, struct op_args *a, char *err, size_t n)
{
    (void)a;
    if (req_stream_ack_ok(req))
        return BX_OK;
    snprintf(err, n, "stream_ack needs 'vm', 'stream', and a non-negative 'n'");
    return BX_E_BAD_REQUEST;
}

/* full_isolation, uid, gid, restart: how the VM is isolated and supervised */
static int check_isolation(json_t *in, char *err, size_t n)
{
    static const char *const ids[] = {"uid", "gid"};
    json_t *full = json_object_get(in, "full_isolation"), *r = json_object_get(in, "restart");
    if (full && !json_is_boolean(full))
        return snprintf(err, n, "'full_isolation' must be a boolean"), -1;
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(in, ids[i]);
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0 ||
                  json_integer_value(v) >= 0xFFFFFFFFLL))
            return snprintf(err, n, "'%s' must be an integer from 0 to 4294967294", ids[i]), -1;
    }
    const char *rs = json_string_value(r);
    if (r && (!rs || (strcmp(rs, "never") != 0 && strcmp(rs, "on-crash") != 0)))
        return snprintf(err, n, "'restart' must be \"never\" or \"on-crash\""), -1;
    return 0;
}

/* cpu_share: CPUs of cgroup cpu quota. The kernel's quota is at least 1 ms
 * per 100 ms period; the host's CPU count is the manager's check
 * (cputhrottle.c), this one is only what no host has. */
static int check_cpu_share(json_t *in, char *err, size_t n)
{
    json_t *v = json_object_get(in, "cpu_share");
    if (!v || json_is_null(v)) {
        json_object_del(in, "cpu_share");
        return 0;
    }
    double s = json_number_value(v);
    if (!json_is_number(v) || !(s >= REQ_CPU_SHARE_MIN && s <= REQ_CPU_SHARE_MAX))
        return snprintf(err, n, "'cpu_share' must be a number of CPUs from %g to %g",
                        REQ_CPU_SHARE_MIN, REQ_CPU_SHARE_MAX), -1;
    return 0;
}

enum bx_err req_check_create(json_t *req, json_t **init, char *err, size_t n)
{
    *init = NULL;
    if (!proto_valid_name(req_plain_string(json_object_get(req, "name")))) {
        snprintf(err, n, "'name' must match ^[A-Za-z0-9_.:-]{1,64}$");
        return BX_E_BAD_REQUEST;
    }
    json_t *in = json_deep_copy(req);
    if (!in) {
        snprintf(err, n, "out of memory");
        return BX_E_INTERNAL;
    }
    json_object_del(in, "id");
    json_object_del(in, "op");
    json_object_del(in, "name");
    if (!json_object_get(in, "limits"))
        json_object_set_new(in, "limits", json_object());
    if (!json_object_get(in, "callbacks"))
        json_object_set_new(in, "callbacks", json_array());
    if (!json_object_get(in, "networked"))
        json_object_set_new(in, "networked", json_false());
    json_t *pers = json_object_get(in, "persistent"), *shared = json_object_get(in, "shared");
    int bad = check_limits(json_object_get(in, "limits"), err, n) < 0 ||
              check_callbacks(json_object_get(in, "callbacks"), err, n) < 0 ||
              check_isolation(in, err, n) < 0 || check_cpu_share(in, err, n) < 0 ||
              req_create_policy(in, err, n) < 0 ||
              req_check_project(json_object_get(in, "project"), err, n) < 0;
    if (!bad && (!json_is_boolean(json_object_get(in, "networked")) ||
                 (pers && !json_is_boolean(pers)) || (shared && !json_is_boolean(shared)))) {
        snprintf(err, n, "'networked', 'persistent' and 'shared' must be booleans");
        bad = 1;
    }
    if (bad) {
        json_decref(in);
        return BX_E_BAD_REQUEST;
    }
    *init = in;
    return BX_OK;
}

/* ---- manager ops ---------------------------------------------------------- */

/* create: the init frame, then the mailbox sizes (mailcheck.c). */
/* create's "host": a host name (a subject token: 1-64 of A-Za-z0-9_:-) or "*". */
static enum bx_err check_host(json_t *req, char *err, size_t n)
{
    json_t *v = json_object_get(req, "host");
    const char *h = json_string_value(v);
    if (!v || json_is_null(v) || (h && strcmp(h, "*") == 0) || fwdcheck_host(h))
        return BX_OK;
    snprintf(err, n, "'host' must be a host name (1-%d of A-Z a-z 0-9 _ : -) or \"*\"", FWD_HOST_MAX);
    return BX_E_BAD_REQUEST;
}

enum bx_err opcheck_create(json_t *req, struct op_args *a, char *err, size_t n)
{
    enum bx_err e = check_host(req, err, n);
    e = e != BX_OK ? e : req_check_create(req, &a->init, err, n);
    if (e == BX_OK)
        json_object_del(a->init, "host");   /* the manager's business, not the node's */
    return e != BX_OK ? e : mailcheck_create(req, err, n);
}

/* list's "cluster": a boolean (true: every host's VMs). */
enum bx_err opcheck_list(json_t *req, struct op_args *a, char *err, size_t n)
{
    json_t *v = json_object_get(req, "cluster");
    (void)a;
    if (!v || json_is_boolean(v) || json_is_null(v))
        return BX_OK;
    snprintf(err, n, "'cluster' must be true or false");
    return BX_E_BAD_REQUEST;
}

enum bx_err opcheck_history(json_t *req, struct op_args *a, char *err, size_t n)
{
    json_t *v = json_object_get(req, "n");
    a->count = REQ_HISTORY_DEFAULT;
    if (!v || json_is_null(v))
        return BX_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, n, "'n' must be a non-negative integer");
        return BX_E_BAD_REQUEST;
    }
    json_int_t k = json_integer_value(v);
    a->count = k > REQ_HISTORY_MAX ? REQ_HISTORY_MAX : (size_t)k;  /* all that is kept */
    return BX_OK;
}

/* ---- the whole request, as router_dispatch judges it ----------------------- */

enum bx_err req_check(json_t *req, char *err, size_t n)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    const struct op_def *d = op_lookup(op);
    struct op_args a = {0};
    enum bx_err e;
    if (d && (d->flags & OPF_NOREPLY)) {    /* before the id: these have none */
        e = op_check_fields(d, req, err, n);
        e = e != BX_OK ? e : d->check(req, &a, err, n);
        op_args_clear(&a);
        snprintf(err, n, "%s%s", d->name, e == BX_OK ? "" : " (dropped)");
        return BX_OK;
    }
    if ((e = req_check_id(req, err, n)) != BX_OK)
        return e;
    if (!op) {
        snprintf(err, n, "'op' must be a string");
        return BX_E_BAD_REQUEST;
    }
    if (!d) {
        snprintf(err, n, "unknown op '%.64s'", op);
        return BX_E_UNKNOWN_OP;
    }
    if ((e = op_check_fields(d, req, err, n)) != BX_OK)
        return e;
    e = d->check(req, &a, err, n);
    op_args_clear(&a);
    return e;
}
