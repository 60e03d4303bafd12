/* context.c - a run's "context": globals that exist for that one exec only
 * (IsoBox's ExecutionOptions.context). They are raw-set in the VM's own
 * globals before the chunk runs, and afterwards every one of those names
 * gets back what it held before (a name that was absent is absent again),
 * whatever the outcome: error, timeout, memory limit.
 *
 * Why the real globals and not a per-run _ENV whose __index is _G: a
 * function the run defines would keep that _ENV as its upvalue, so a
 * session's later runs would call it and still see the context (or lose
 * assignments it makes); global assignments would need a __newindex that
 * forwards to _G, and rawset/load/_G would disagree with _ENV. Setting and
 * restoring the names keeps every other assignment a script makes
 * persistent, as on any exec; only the context names are the run's own. */
#include "run.h"

#include <lauxlib.h>

#include "convert.h"

/* Marks "was absent" in the saved table (a table cannot hold nil). */
static const char absent_mark;

typedef struct ctx_job {
    json_t *ctx;
    int *ref;
    enum bx_err rc;
    char *err;
    size_t errlen;
} ctx_job;

/* Protected: saves every context name's value, anchors the saved table in
 * the registry (so run_end can restore even if a set below fails), then
 * sets the new values. */
static int ctx_apply_p(lua_State *L)
{
    ctx_job *j = lua_touserdata(L, 1);
    const char *key;
    size_t klen;
    json_t *v;
    lua_settop(L, 0);
    lua_pushglobaltable(L);                                  /* 1 */
    lua_createtable(L, 0, (int)json_object_size(j->ctx));    /* 2: saved */
    json_object_keylen_foreach(j->ctx, key, klen, v) {
        lua_pushlstring(L, key, klen);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, 1) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushlightuserdata(L, (void *)&absent_mark);
        }
        lua_rawset(L, 2);
    }
    lua_pushvalue(L, 2);
    *j->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    json_object_keylen_foreach(j->ctx, key, klen, v) {
        lua_pushlstring(L, key, klen);
        if ((j->rc = conv_push_json(L, v, j->err, j->errlen)) != BX_OK)
            return luaL_error(L, "context '%s': %s", key, j->err);
        lua_rawset(L, 1);
    }
    return 0;
}

enum bx_err run_context(bx_run *r, json_t *ctx, char *err, size_t errlen)
{
    lua_State *L = r->n->L;
    int top = lua_gettop(L);
    ctx_job j = { .ctx = ctx, .ref = &r->ctx_ref, .rc = BX_OK, .err = err, .errlen = errlen };
    lua_pushcfunction(L, ctx_apply_p);
    lua_pushlightuserdata(L, &j);
    int st = lua_pcall(L, 1, 0, 0);
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        if (j.rc == BX_OK || j.rc == BX_E_CONVERSION_ERROR)
            snprintf(err, errlen, "%s", m ? m : "cannot set the context");
        if (j.rc == BX_OK)
            j.rc = st == LUA_ERRMEM ? BX_E_MEMORY_LIMIT : BX_E_CONVERSION_ERROR;
    }
    lua_settop(L, top);
    return j.rc;
}

/* Protected: every saved name back in the globals. Setting nil never
 * allocates; setting a value back may (its slot may be gone), hence the
 * pcall around it. */
static int ctx_restore_p(lua_State *L)
{
    int ref = (int)lua_tointeger(L, 1);
    lua_settop(L, 0);
    lua_pushglobaltable(L);                         /* 1 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);         /* 2 */
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_touserdata(L, -1) == &absent_mark) {
            lua_pop(L, 1);
            lua_pushnil(L);
        }
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, 1);
    }
    return 0;
}

void run_context_restore(bx_run *r)
{
    lua_State *L = r->n->L;
    if (r->ctx_ref == LUA_NOREF || r->ctx_ref == LUA_REFNIL)
        return;
    for (int tries = 0; tries < 2; tries++) {
        lua_pushcfunction(L, ctx_restore_p);
        lua_pushinteger(L, r->ctx_ref);
        if (lua_pcall(L, 1, 0, 0) == LUA_OK)
            break;
        lua_pop(L, 1);
        lua_gc(L, LUA_GCCOLLECT);   /* a refused allocation: make room, once */
    }
    luaL_unref(L, LUA_REGISTRYINDEX, r->ctx_ref);
    r->ctx_ref = LUA_NOREF;
}
