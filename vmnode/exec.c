/* exec.c - the ops that run the client's code: exec (a chunk, streamed or
 * not) and call (a function by its dotted name, with converted arguments),
 * each inside one run (run.c) under the VM's limits. */
#include "nodeops.h"

#include <lauxlib.h>
#include <stdio.h>

#include "convert.h"
#include "luaerr.h"
#include "project.h"
#include "run.h"
#include "stream.h"

/* The chunk name of an exec: "=" + filename (so messages read
 * "calc.lua:3: boom", IsoBox's ExecutionOptions.filename), else the raw
 * chunkname, else "=exec". The manager bounded filename (validate.c). */
static const char *exec_chunkname(json_t *req, char *buf, size_t n)
{
    json_t *jfile = json_object_get(req, "filename"), *jname = json_object_get(req, "chunkname");
    if (json_is_string(jfile)) {
        snprintf(buf, n, "=%s", json_string_value(jfile));
        return buf;
    }
    return jname ? json_string_value(jname) : "=exec";
}

static int exec_args_ok(json_t *req)
{
    json_t *jcode = json_object_get(req, "code"), *jname = json_object_get(req, "chunkname");
    json_t *jexpr = json_object_get(req, "expr"), *jfile = json_object_get(req, "filename");
    json_t *ctx = json_object_get(req, "context");
    return json_is_string(jcode) && (!jname || json_is_string(jname)) &&
           (!jexpr || json_is_boolean(jexpr)) && (!jfile || json_is_string(jfile)) &&
           (!ctx || json_is_object(ctx));
}

json_t *exec_op_exec(bx_node *n, json_t *req, json_t *id)
{
    json_t *jcode = json_object_get(req, "code"), *ctx = json_object_get(req, "context"), *reply;
    if (!exec_args_ok(req))
        return proto_error_new(id, BX_E_BAD_REQUEST, "exec needs a string \"code\" (and optional strings \"chunkname\", \"filename\", an object \"context\" and a boolean \"expr\")");
    bx_run r;
    if (run_begin(&r, n, id, req, &reply) < 0)
        return reply;
    char cname[BX_FILENAME_MAX + 2], err[256];
    enum bx_err e = ctx ? run_context(&r, ctx, err, sizeof err) : BX_OK;
    if (e != BX_OK) {
        n->errors++;
        run_end(&r);
        return proto_error_new(id, e, "%s", err);
    }
    int streamed = stream_requested(req);
    if (streamed)
        stream_begin(n, id);
    lua_State *L = n->L;
    n->executions++;
    lua_pushcfunction(L, luaerr_msgh);
    int st = project_load_chunk(L, json_string_value(jcode), json_string_length(jcode),
                                exec_chunkname(req, cname, sizeof cname), json_is_true(json_object_get(req, "expr")));
    if (st != LUA_OK)
        reply = run_error_new(&r, st, 1);
    else if ((st = streamed ? stream_pcall(L) : lua_pcall(L, 0, LUA_MULTRET, r.base + 1)) != LUA_OK ||
             limits_tripped(n))
        reply = run_error_new(&r, st, 0);
    else
        reply = run_result_new(&r, r.base + 2);
    if (streamed)
        stream_end();
    run_end(&r);
    return reply;
}

typedef struct call_job {
    const char *fn;
    json_t *args;
    enum bx_err rc;
    char err[256];
    int nargs;
} call_job;

/* Protected: pushes the function and its arguments (converting allocates). */
static int call_prepare(lua_State *L)
{
    call_job *j = lua_touserdata(L, 1);
    lua_pop(L, 1);
    state_push_name(L, j->fn);
    if (!lua_isfunction(L, -1) && !luaL_getmetafield(L, -1, "__call")) {
        j->rc = BX_E_LUA_ERROR;
        return luaL_error(L, "'%s' is not a function", j->fn);
    }
    lua_settop(L, 1); /* drop a __call field pushed by the check */
    size_t i;
    json_t *a;
    json_array_foreach(j->args, i, a) {
        luaL_checkstack(L, 8, "too many arguments");
        if ((j->rc = conv_push_json(L, a, j->err, sizeof j->err)) != BX_OK)
            return luaL_error(L, "argument %d: %s", (int)i + 1, j->err);
        j->nargs++;
    }
    return 1 + j->nargs;
}

json_t *exec_op_call(bx_node *n, json_t *req, json_t *id)
{
    json_t *jfn = json_object_get(req, "fn"), *args = json_object_get(req, "args"), *reply;
    if (!json_is_string(jfn) || (args && !json_is_array(args)))
        return proto_error_new(id, BX_E_BAD_REQUEST, "call needs a string \"fn\" and an array \"args\"");
    json_t *none = args ? NULL : json_array();
    call_job job = { .fn = json_string_value(jfn), .args = args ? args : none };
    bx_run r;
    if (run_begin(&r, n, id, req, &reply) < 0) {
        json_decref(none);
        return reply;
    }
    lua_State *L = n->L;
    n->executions++;
    lua_pushcfunction(L, luaerr_msgh);
    lua_pushcfunction(L, call_prepare);
    lua_pushlightuserdata(L, &job);
    int st = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (st != LUA_OK && job.rc == BX_E_CONVERSION_ERROR) {
        reply = proto_error_new(id, BX_E_CONVERSION_ERROR, "%s", lua_tostring(L, -1));
        n->errors++;
    } else if (st != LUA_OK) {
        reply = run_error_new(&r, st, 0);
    } else if ((st = lua_pcall(L, job.nargs, LUA_MULTRET, r.base + 1)) != LUA_OK || limits_tripped(n)) {
        reply = run_error_new(&r, st, 0);
    } else {
        reply = run_result_new(&r, r.base + 2);
    }
    run_end(&r);
    json_decref(none);
    return reply;
}
