/* state.c - the ops on the VM's state that run no chunk of the client's:
 * exists, get_global, set_globals (lookups and conversion under the
 * limits), reset (a fresh state), stats (counters and the process's own
 * figures), net_enable (networking loaded into the live state). */
#include "nodeops.h"

#include <errno.h>
#include <string.h>

#include "convert.h"
#include "netlib.h"
#include "procstat.h"
#include "run.h"

void state_push_name(lua_State *L, const char *name)
{
    lua_pushglobaltable(L);
    for (const char *p = name;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        lua_pushlstring(L, p, len);
        lua_rawget(L, -2);
        lua_remove(L, -2);
        if (!dot)
            return;
        p = dot + 1;
    }
}

static int lookup_p(lua_State *L)
{
    state_push_name(L, lua_touserdata(L, 1));
    return 1;
}

/* Looks a dotted name up under the VM's limits; the value is left on top.
 * Returns NULL, or an error reply. */
static json_t *lookup(bx_run *r, json_t *req, const char *field)
{
    json_t *jname = json_object_get(req, field);
    bx_node *n = r->n;
    if (!json_is_string(jname))
        return proto_error_new(r->id, BX_E_BAD_REQUEST, "a string \"%s\" is required", field);
    lua_pushcfunction(n->L, lookup_p);
    lua_pushlightuserdata(n->L, (void *)json_string_value(jname));
    int st = lua_pcall(n->L, 1, 1, 0);
    return st == LUA_OK ? NULL : run_error_new(r, st, 0);
}

json_t *state_op_exists(bx_node *n, json_t *req, json_t *id)
{
    bx_run r;
    json_t *reply;
    if (run_begin(&r, n, id, NULL, &reply) < 0)
        return reply;
    if (!(reply = lookup(&r, req, "fn")))
        reply = proto_reply_new(id, json_boolean(lua_isfunction(n->L, -1)));
    run_end(&r);
    return reply;
}

json_t *state_op_get_global(bx_node *n, json_t *req, json_t *id)
{
    bx_run r;
    json_t *reply;
    if (run_begin(&r, n, id, NULL, &reply) < 0)
        return reply;
    if (!(reply = lookup(&r, req, "name"))) {
        char err[256];
        json_t *v;
        enum bx_err e = conv_to_json(n->L, -1, &v, err, sizeof err);
        reply = e == BX_OK ? proto_reply_new(id, v) : proto_error_new(id, e, "%s", err);
    }
    run_end(&r);
    return reply;
}

json_t *state_op_set_globals(bx_node *n, json_t *req, json_t *id)
{
    json_t *g = json_object_get(req, "globals"), *reply;
    if (!json_is_object(g))
        return proto_error_new(id, BX_E_BAD_REQUEST, "set_globals needs an object \"globals\"");
    bx_run r;
    if (run_begin(&r, n, id, NULL, &reply) < 0)
        return reply;
    char err[256];
    enum bx_err e = conv_set_globals_p(n->L, g, err, sizeof err);
    reply = e == BX_OK ? proto_reply_new(id, json_true()) : proto_error_new(id, e, "%s", err);
    run_end(&r);
    return reply;
}

json_t *state_op_reset(bx_node *n, json_t *req, json_t *id)
{
    (void)req;
    sandbox_close(n);
    if (sandbox_open(n) < 0) {
        n->broken = 1;
        return proto_error_new(id, BX_E_INTERNAL, "cannot build a fresh Lua state");
    }
    return proto_reply_new(id, json_true());
}

json_t *state_op_stats(bx_node *n, json_t *req, json_t *id)
{
    (void)req;
    json_t *res = json_pack("{s:i, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:f}",
        "pid", n->host_pid, "mem_bytes", (json_int_t)n->mem,
        "mem_limit", (json_int_t)n->lim.memory_limit, "cpu_ms", procstat_cpu_ms(),
        "rss_bytes", (json_int_t)procstat_rss_bytes(), "executions", (json_int_t)n->executions,
        "errors", (json_int_t)n->errors, "instructions_limit", (json_int_t)n->lim.instruction_limit,
        "timeout", n->lim.timeout);
    return proto_reply_new(id, res);
}

static int net_register_p(lua_State *L)
{
    netlib_register(L, lua_touserdata(L, 1));
    return 0;
}

/* The host asked for networking on a VM created without it: load LuaSocket
 * and `net` into the live state, keeping its globals (reset keeps it too). */
json_t *state_op_net_enable(bx_node *n, json_t *req, json_t *id)
{
    (void)req;
    if (n->networked)
        return proto_reply_new(id, json_true());
    if (n->full_isolation)  /* the manager refuses this first; LuaSocket's files are out of reach */
        return proto_error_new(id, BX_E_ISOLATION, "a fully isolated VM cannot turn networking on");
    if (limits_net_files() < 0)
        return proto_error_new(id, BX_E_INTERNAL, "cannot raise the open-file limit: %s",
                               strerror(errno));
    lua_pushcfunction(n->L, net_register_p);
    lua_pushlightuserdata(n->L, n);
    if (lua_pcall(n->L, 1, 0, 0) != LUA_OK) {
        json_t *e = proto_error_new(id, BX_E_INTERNAL, "cannot load networking: %s",
                                    lua_isstring(n->L, -1) ? lua_tostring(n->L, -1) : "?");
        lua_pop(n->L, 1);
        return e;
    }
    n->networked = 1;
    return proto_reply_new(id, json_true());
}
