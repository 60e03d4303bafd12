/* coded.h - Lua errors that carry a wire error code (POLICY_VIOLATION from
 * the net policy, VM_NOT_FOUND from mailbox.send) instead of LUA_ERROR.
 * Read back by luaerr.c when a request fails. */
#ifndef BX_VMNODE_CODED_H
#define BX_VMNODE_CODED_H

#include <lua.h>

#include "proto.h"

/* Raises the string on top of L's stack as an error and remembers it with
 * code; never returns. Needs protection (allocates). */
int coded_raise(lua_State *L, enum bx_err code);
/* The code of the error object at idx if it is the very value last given
 * to coded_raise (so an error caught by pcall and replaced by another one
 * is not mis-coded), else BX_E_LUA_ERROR. Forgets the remembered error. */
enum bx_err coded_take(lua_State *L, int idx);
/* Forgets the remembered error (start of each request). */
void coded_clear(lua_State *L);

#endif
