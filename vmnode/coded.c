/* coded.c - remembers the last coded Lua error (value in the registry, code
 * here) so that, when a request fails, luaerr.c can tell whether the error
 * that escaped is one raised with a wire code (see coded.h). */
#include "coded.h"

#include <lauxlib.h>

/* its address is the registry key: a light userdata key never allocates,
 * so clearing is safe outside protection */
static enum bx_err last_code = BX_E_LUA_ERROR;

int coded_raise(lua_State *L, enum bx_err code)
{
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &last_code);
    last_code = code;
    return lua_error(L);
}

enum bx_err coded_take(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    enum bx_err code = BX_E_LUA_ERROR;
    /* rawequal: strings compare by content, so a script that catches the
     * error and raises the same text again keeps the code */
    if (lua_checkstack(L, 1)) {
        lua_rawgetp(L, LUA_REGISTRYINDEX, &last_code);
        if (!lua_isnil(L, -1) && lua_rawequal(L, -1, idx))
            code = last_code;
        lua_pop(L, 1);
    }
    coded_clear(L);
    return code;
}

void coded_clear(lua_State *L)
{
    /* storing nil never allocates */
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &last_code);
    last_code = BX_E_LUA_ERROR;
}
