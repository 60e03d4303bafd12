/* luaerr.c - a failed Lua run as a wire error (see luaerr.h): the message
 * handler, the traceback kept in the registry for the reply, and the choice
 * of code, whose message is text however hostile the error object is. */
#include "luaerr.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "coded.h"
#include "textcodec.h"

#define TB_KEY "bioxen.traceback"

void luaerr_keep_traceback(lua_State *L, lua_State *of, int level)
{
    luaL_traceback(L, of, NULL, level);
    lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
}

int luaerr_msgh(lua_State *L)
{
    luaerr_keep_traceback(L, L, 1);
    lua_settop(L, 1);
    return 1;
}

/* s as wire text, capped (a message or a traceback may be huge) */
static json_t *luaerr_text(const char *s, size_t len)
{
    return textcodec_json(s, len > BX_ERRTEXT_MAX ? BX_ERRTEXT_MAX : len);
}

static int tostring_p(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* The error object at idx as JSON text. A hostile __tostring may raise,
 * loop or allocate, so it runs protected with the hooks still armed. */
static json_t *error_text(bx_node *n, int idx)
{
    lua_State *L = n->L;
    size_t len;
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &len);
        return luaerr_text(s, len);
    }
    limits_arm_budget(n, 100000);
    /* like lua.c's msghandler: only numbers and __tostring make text */
    int has_tostring = lua_type(L, idx) == LUA_TNUMBER ||
        (lua_checkstack(L, 4) && luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL && (lua_pop(L, 1), 1));
    if (has_tostring && lua_checkstack(L, 4)) {
        lua_pushcfunction(L, tostring_p);
        lua_pushvalue(L, idx);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
            const char *s = lua_tolstring(L, -1, &len);
            json_t *j = luaerr_text(s, len);
            lua_pop(L, 1);
            return j;
        }
        lua_pop(L, 1);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "(error object is a %s value)", luaL_typename(L, idx));
    return json_string(buf);
}

static int is_mem_message(lua_State *L, int idx)
{
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    return s && strstr(s, "not enough memory") != NULL;
}

enum bx_err luaerr_classify(bx_node *n, int status, int loading, json_t **msg)
{
    lua_State *L = n->L;
    /* a tripped limit wins over whatever error object it unwound with */
    if (limits_timed_out()) {
        *msg = json_sprintf("execution exceeded the %gs timeout", n->req_timeout);
        return BX_E_TIMEOUT;
    }
    if (n->instr_tripped) {
        *msg = json_sprintf("instruction limit of %lld exceeded", n->req_instr);
        return BX_E_INSTRUCTION_LIMIT;
    }
    if (status == LUA_ERRMEM || (n->mem_refused && (status == LUA_ERRERR || is_mem_message(L, -1)))) {
        *msg = n->lim.memory_limit ? json_sprintf("memory limit of %zu bytes exceeded", n->lim.memory_limit)
                                   : json_string("out of memory (the node's address-space limit)");
        return BX_E_MEMORY_LIMIT;
    }
    if (loading && status == LUA_ERRSYNTAX) {
        *msg = error_text(n, -1);
        return BX_E_SYNTAX_ERROR;
    }
    /* LUA_ERROR unless C raised this very error with a code (coded.h):
     * a net policy refusal, a mailbox send to a missing name. Taken before
     * a __tostring runs, which could raise coded errors of its own. */
    enum bx_err code = coded_take(L, -1);
    *msg = error_text(n, -1);
    return code;
}

json_t *luaerr_traceback_take(lua_State *L, int want)
{
    json_t *tb = NULL;
    if (want) {
        lua_getfield(L, LUA_REGISTRYINDEX, TB_KEY);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            tb = luaerr_text(s, len);
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
    return tb;
}
