/* stream.h - exec with "stream": true (docs/protocol.md "Streaming"): the
 * chunk runs as a coroutine; each top-level yield, each print line and each
 * post() goes to the requester at once as a stream frame, at most
 * STREAM_WINDOW un-acked, the window reopened by stream_ack frames. */
#ifndef BX_VMNODE_STREAM_H
#define BX_VMNODE_STREAM_H

#include "node.h"

/* Items the node may have sent and not had acked; then it blocks. */
#define STREAM_WINDOW 32

/* True if req asks for a streamed exec. */
int stream_requested(json_t *req);
/* Starts / ends the request id's stream (begin before the chunk runs, end
 * before its reply is sent). */
void stream_begin(bx_node *n, json_t *id);
void stream_end(void);
/* True while a streamed request runs. */
int stream_active(void);
/* Runs the function on top of L as the stream's coroutine, protected and
 * with the request's limits carried in: like lua_pcall(L, 0, LUA_MULTRET, 0)
 * (results replace the function). An error of the script keeps its
 * coroutine's traceback as the request's (luaerr.h). */
int stream_pcall(lua_State *L);
/* print and post while a stream is active (Lua functions). */
int stream_print(lua_State *L);
int stream_post(lua_State *L);
/* coroutine.yield (sandbox.c): as Lua's, but a top-level yield of a
 * stream whose item could not be sent raises why when it resumes. */
int stream_co_yield(lua_State *L);
/* Consumes a stream_ack frame (1), else 0. A stray one is dropped. */
int stream_frame(json_t *msg);
/* The want of the node's window wait; link_await lets it see stream_acks. */
int stream_want(json_t *msg, void *ud);

#endif
