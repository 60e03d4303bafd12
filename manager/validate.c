/* validate.c - pure checks on a parsed client request (see validate.h):
 * field presence and types, names, limits. No state, so the fuzzer runs
 * exactly the code the manager runs. Called by router.c and fuzz_request.c. */
#include "validate.h"
#include "mailcheck.h"
#include "ops.h"
#include "pathcheck.h"
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

/* The C string of a JSON string without NUL bytes, else NULL: a name with
 * a NUL would silently stand for its prefix. */
static const char *plain_string(json_t *v)
{
    const char *s = json_string_value(v);
    return s && strlen(s) == json_string_length(v) ? s : NULL;
}

const char *req_vm_name(json_t *req)
{
    return plain_string(json_object_get(req, "vm"));
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

static enum bx_err need_vm(json_t *req, char *err, size_t n)
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
    if (need_vm(req, err, n) != BX_OK)
        return BX_E_BAD_REQUEST;
    if (!v || json_typeof(v) != type) {
        snprintf(err, n, "'%s' must be %s", key, type == JSON_OBJECT ? "an object" : "a string");
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
    return need_vm(req, err, n);
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

/* ---- policy (docs/protocol.md "Policy") ---------------------------------- */

/* "host:port" as netlib.c compares it: a host of printable characters and
 * a decimal port 0..65535 after the last ':'. */
static int tcp_entry_ok(json_t *v)
{
    const char *s = plain_string(v);
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || strlen(s) > POLICY_TCP_TEXT_MAX)
        return 0;
    for (const char *p = s; p < colon; p++)
        if (*p <= ' ' || *p > '~')
            return 0;
    size_t pl = strlen(colon + 1);
    if (pl == 0 || pl > 5 || strspn(colon + 1, "0123456789") != pl)
        return 0;
    return atol(colon + 1) <= 65535;
}

/* An absolute glob without ".." that does not aim at /proc, /sys, /dev. */
static int fs_glob_ok(json_t *v, const char **why)
{
    const char *s = plain_string(v);
    char norm[PATH_TEXT_MAX + 1];
    if (!s) {
        *why = "must be a string without NUL bytes";
        return 0;
    }
    if (path_normalise(s, norm, sizeof norm, why) < 0)
        return 0;
    if (path_in_kernel_area(norm)) {
        *why = "aims at /proc, /sys or /dev, which are never readable";
        return 0;
    }
    return 1;
}

static int module_ok(json_t *v)
{
    const char *s = plain_string(v);
    return s && module_name_valid(s);
}

/* A list field of the policy: an array of at most max items, each passing
 * its check. 0, or -1 with err set. */
static int check_list(json_t *pol, const char *key, size_t max, char *err, size_t n)
{
    json_t *list = json_object_get(pol, key), *v;
    size_t i;
    if (!json_is_array(list) || json_array_size(list) > max) {
        snprintf(err, n, "policy '%s' must be a list of at most %zu strings", key, max);
        return -1;
    }
    json_array_foreach(list, i, v) {
        const char *why = NULL, *s = json_is_string(v) ? json_string_value(v) : "(not a string)";
        if (strcmp(key, "tcp") == 0 && !tcp_entry_ok(v))
            why = "must be \"host:port\" (port 0-65535)";
        else if (strcmp(key, "fs") == 0 && !fs_glob_ok(v, &why))
            ;
        else if (strcmp(key, "imports") == 0 && !module_ok(v))
            why = "must be a module name like a.b_c (letters, digits, _ and dots)";
        if (why) {
            snprintf(err, n, "policy %s entry %.200s: %s", key, s, why);
            return -1;
        }
    }
    return 0;
}

json_t *req_policy_normal(json_t *pol, char *err, size_t n)
{
    static const char *const keys[] = {"mem", "tcp", "fs", "imports"};
    const char *key;
    json_t *v;
    if (!json_is_object(pol)) {
        snprintf(err, n, "'policy' must be an object with mem, tcp, fs and imports");
        return NULL;
    }
    json_object_foreach(pol, key, v) {
        size_t i = 0;
        while (i < 4 && strcmp(keys[i], key) != 0)
            i++;
        if (i == 4) {
            snprintf(err, n, "unknown policy field '%.64s' (known: mem, tcp, fs, imports)", key);
            return NULL;
        }
    }
    json_t *mem = json_object_get(pol, "mem");
    if (mem && !json_is_null(mem) && (!json_is_integer(mem) || json_integer_value(mem) < 0)) {
        snprintf(err, n, "policy 'mem' must be null or a non-negative integer (bytes)");
        return NULL;
    }
    json_t *out = json_pack("{s:O, s:[], s:[], s:[]}", "mem", mem ? mem : json_null(),
                            "tcp", "fs", "imports");
    if (!out) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    for (int i = 1; i < 4; i++)
        if (json_object_get(pol, keys[i]))
            json_object_set(out, keys[i], json_object_get(pol, keys[i]));
    if (check_list(out, "tcp", POLICY_TCP_MAX, err, n) < 0 ||
        check_list(out, "fs", POLICY_FS_MAX, err, n) < 0 ||
        check_list(out, "imports", POLICY_IMPORTS_MAX, err, n) < 0) {
        json_decref(out);
        return NULL;
    }
    /* copies, so the caller owns every list it may extend */
    for (int i = 1; i < 4; i++)
        json_object_set_new(out, keys[i], json_copy(json_object_get(out, keys[i])));
    return out;
}

/* create: "policy" normalised, the older "allow_tcp" merged into its tcp
 * list, and policy.mem made the effective memory_limit. 0 or -1. */
static int create_policy(json_t *in, char *err, size_t n)
{
    json_t *pol = json_object_get(in, "policy"), *allow = json_object_get(in, "allow_tcp");
    if (!pol && !allow)
        return 0;
    if (allow && !json_is_array(allow)) {
        snprintf(err, n, "'allow_tcp' must be a list of \"host:port\" strings");
        return -1;
    }
    json_t *empty = json_object();
    json_t *norm = req_policy_normal(pol ? pol : empty, err, n);
    json_decref(empty);
    if (!norm)
        return -1;
    if (allow && (json_array_extend(json_object_get(norm, "tcp"), allow) < 0 ||
                  check_list(norm, "tcp", POLICY_TCP_MAX, err, n) < 0)) {
        json_decref(norm);
        return -1;
    }
    json_t *mem = json_object_get(norm, "mem");
    if (json_is_integer(mem))
        json_object_set(json_object_get(in, "limits"), "memory_limit", mem);
    json_object_del(in, "allow_tcp");
    json_object_set_new(in, "policy", norm);
    return 0;
}

enum bx_err req_check_create(json_t *req, json_t **init, char *err, size_t n)
{
    *init = NULL;
    if (!proto_valid_name(plain_string(json_object_get(req, "name")))) {
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
    json_t *pers = json_object_get(in, "persistent");
    int bad = check_limits(json_object_get(in, "limits"), err, n) < 0 ||
              check_callbacks(json_object_get(in, "callbacks"), err, n) < 0 ||
              check_isolation(in, err, n) < 0 ||
              create_policy(in, err, n) < 0 ||
              req_check_project(json_object_get(in, "project"), err, n) < 0;
    if (!bad && (!json_is_boolean(json_object_get(in, "networked")) ||
                 (pers && !json_is_boolean(pers)))) {
        snprintf(err, n, "'networked' and 'persistent' must be booleans");
        bad = 1;
    }
    if (bad) {
        json_decref(in);
        return BX_E_BAD_REQUEST;
    }
    *init = in;
    return BX_OK;
}

enum bx_err opcheck_set_policy(json_t *req, struct op_args *a, char *err, size_t n)
{
    if (need_vm(req, err, n) != BX_OK)
        return BX_E_BAD_REQUEST;
    a->policy = req_policy_normal(json_object_get(req, "policy"), err, n);
    return a->policy ? BX_OK : BX_E_BAD_REQUEST;
}

/* ---- manager ops ---------------------------------------------------------- */

/* create: the init frame, then the mailbox sizes (mailcheck.c). */
enum bx_err opcheck_create(json_t *req, struct op_args *a, char *err, size_t n)
{
    enum bx_err e = req_check_create(req, &a->init, err, n);
    return e != BX_OK ? e : mailcheck_create(req, err, n);
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
        e = d->check(req, &a, err, n);
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
    e = d->check(req, &a, err, n);
    op_args_clear(&a);
    return e;
}
