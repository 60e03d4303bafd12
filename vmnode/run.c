/* run.c - the frame of one request against the Lua state (see run.h):
 * arms what stops it, captures what it prints, and builds the reply that
 * carries its values or its failure. */
#include "run.h"

#include <time.h>

#include <lauxlib.h>

#include "coded.h"
#include "convert.h"
#include "luaerr.h"
#include "textcodec.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int run_begin(bx_run *r, bx_node *n, json_t *id, json_t *req, json_t **reply)
{
    double timeout;
    long long instr;
    if (limits_parse_request(&n->lim, req, &timeout, &instr) < 0) {
        *reply = proto_error_new(id, BX_E_BAD_REQUEST, "timeout and instruction_limit must be non-negative numbers");
        return -1;
    }
    r->n = n;
    r->id = id;
    r->base = lua_gettop(n->L);
    r->ctx_ref = LUA_NOREF;
    sandbox_output_reset(n);
    n->mem_refused = 0;
    r->t0 = now_ms();
    coded_clear(n->L);
    limits_arm(n, timeout, instr);
    return 0;
}

void run_end(bx_run *r)
{
    bx_node *n = r->n;
    /* garbage of a script stopped by the limit would otherwise sit there
     * until the heap doubles again; collect it while the hooks still stop
     * any finalizer that loops */
    if (n->mem_refused)
        lua_gc(n->L, LUA_GCCOLLECT);
    limits_disarm(n);
    run_context_restore(r);     /* after the limits: it must not be stopped */
    lua_settop(n->L, r->base);
    if (n->cb_msg) {
        json_decref(n->cb_msg);
        n->cb_msg = NULL;
    }
}

static void add_output(bx_node *n, json_t *obj)
{
    json_object_set_new(obj, "output", textcodec_json(n->out ? n->out : "", n->out_len));
    if (n->out_truncated)
        json_object_set_new(obj, "output_truncated", json_true());
}

json_t *run_error_new(bx_run *r, int status, int loading)
{
    bx_node *n = r->n;
    json_t *msg;
    enum bx_err code = luaerr_classify(n, status, loading, &msg);
    json_t *reply = proto_error_new(r->id, code, "%s", "");
    json_t *err = json_object_get(reply, "error");
    json_object_set_new(err, "message", msg ? msg : json_string("error"));
    add_output(n, err);
    json_t *tb = luaerr_traceback_take(n->L, code == BX_E_LUA_ERROR);
    if (tb)
        json_object_set_new(err, "traceback", tb);
    n->errors++;
    /* a failure's duration too: metrics' total_duration_ms and
     * METRICS_RECORDED report it (the window and history stay successes') */
    n->hdr = (bx_hdr){ .on = 1, .code = code, .ms = now_ms() - r->t0 };
    return reply;
}

/* The JSON string of a value's Lua type name: one per type, made once and
 * shared (a reply per run should not allocate it again). */
static json_t *type_name(lua_State *L, int i)
{
    static json_t *names[LUA_NUMTYPES];
    int t = lua_type(L, i);
    if (t < 0 || t >= LUA_NUMTYPES)
        return NULL;    /* LUA_TNONE: not a slot we walk */
    if (!names[t])
        names[t] = json_string(lua_typename(L, t));
    return names[t];
}

json_t *run_result_new(bx_run *r, int first)
{
    bx_node *n = r->n;
    lua_State *L = n->L;
    char err[256];
    json_t *values = json_array(), *types = json_array();
    for (int i = first; i <= lua_gettop(L); i++) {
        json_t *j;
        enum bx_err e = conv_to_json(L, i, &j, err, sizeof err);
        if (e != BX_OK) {
            json_decref(values);
            json_decref(types);
            json_t *reply = proto_error_new(r->id, e, "return value %d: %s", i - first + 1, err);
            add_output(n, json_object_get(reply, "error"));
            n->errors++;
            return reply;
        }
        json_array_append_new(values, j);
        /* the Lua type, which the JSON value alone cannot tell (a {} is an
         * empty table, 1.0 a float), for ExecResult.type */
        json_array_append(types, type_name(L, i));
    }
    json_t *res = json_object();
    json_object_set_new(res, "values", values);
    json_object_set_new(res, "types", types);
    add_output(n, res);
    /* reply.c appends duration_ms and mem_bytes to the result */
    n->hdr = (bx_hdr){ .on = 1, .code = BX_OK, .ms = now_ms() - r->t0, .mem = n->mem };
    return proto_reply_new(r->id, res);
}
