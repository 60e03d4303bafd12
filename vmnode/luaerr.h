/* luaerr.h - what a failed Lua run means on the wire, as lua.c's
 * msghandler and report are for the standalone interpreter: the message
 * handler that keeps the traceback, and what a failed load or pcall
 * becomes: its code, its message as text, its traceback. */
#ifndef BX_LUAERR_H
#define BX_LUAERR_H

#include "node.h"

/* The message handler of every request's pcall: keeps the traceback for
 * luaerr_traceback_take and leaves the error object as it is (it is turned to
 * text later, under the limits). */
int luaerr_msgh(lua_State *L);
/* Keeps the traceback of thread `of` from `level` as the request's (a
 * streamed chunk fails in its own coroutine). */
void luaerr_keep_traceback(lua_State *L, lua_State *of, int level);
/* The code a load (loading) or pcall that returned status means, with
 * the error object on top of n->L (it stays there): TIMEOUT,
 * INSTRUCTION_LIMIT, MEMORY_LIMIT, SYNTAX_ERROR, a code raised with
 * coded.h, else LUA_ERROR. *msg gets its message (new reference, NULL when
 * out of memory): the object as text, however hostile it is. */
enum bx_err luaerr_classify(bx_node *n, int status, int loading, json_t **msg);
/* Clears the kept traceback and returns it as text if want (new reference),
 * else NULL. */
json_t *luaerr_traceback_take(lua_State *L, int want);

#endif
