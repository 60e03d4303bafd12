/* stream.c - streamed exec (see stream.h): the coroutine driver, the
 * window of un-acked items and the stream_ack frames that open it. One
 * stream at most, the running request's; its state is static like the
 * mailbox's. Items go through link_send, so one over the frame limit is a
 * Lua error in the script, never an oversized frame. */
#include "stream.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "luaerr.h"
#include "textcodec.h"
#include "mailbox.h"

#define PRECANCEL_MAX 8

static struct {
    int active;
    json_t *id;                 /* the request's id, owned while active */
    bx_node *n;
    long long sent, acked;
    int cancelled;
    size_t printed;             /* bytes of print counted against max_output */
    lua_State *co;              /* the chunk's coroutine */
    char yield_err[300];        /* why the last top-level yield was not sent */
    /* ids cancelled before their request started (the client closed a
     * stream still queued behind another request) */
    json_int_t precancel[PRECANCEL_MAX];
    int nprecancel;
} st;

int stream_requested(json_t *req)
{
    return json_is_true(json_object_get(req, "stream"));
}

int stream_active(void)
{
    return st.active;
}

void stream_begin(bx_node *n, json_t *id)
{
    st.active = 1;
    st.id = json_incref(id);
    st.n = n;
    st.sent = st.acked = 0;
    st.cancelled = 0;
    st.printed = 0;
    st.co = NULL;
    st.yield_err[0] = 0;
    for (int i = 0; i < st.nprecancel && i < PRECANCEL_MAX; i++)
        if (json_is_integer(id) && st.precancel[i] == json_integer_value(id))
            st.cancelled = 1;
}

void stream_end(void)
{
    json_decref(st.id);
    st.id = NULL;
    st.co = NULL;
    st.active = 0;
}

/* ---- acks ---------------------------------------------------------------- */

int stream_frame(json_t *msg)
{
    const char *op = json_string_value(json_object_get(msg, "op"));
    if (!op || strcmp(op, "stream_ack") != 0)
        return 0;
    json_t *id = json_object_get(msg, "stream"), *k = json_object_get(msg, "n");
    int cancel = json_is_true(json_object_get(msg, "cancel"));
    if (st.active && id && json_equal(id, st.id)) {
        if (json_is_integer(k) && json_integer_value(k) > 0 && json_integer_value(k) <= st.sent - st.acked)
            st.acked += json_integer_value(k);
        else if (json_is_integer(k) && json_integer_value(k) > 0)
            st.acked = st.sent;  /* never more than was sent */
        st.cancelled |= cancel;
    } else if (cancel && json_is_integer(id)) {
        st.precancel[st.nprecancel++ % PRECANCEL_MAX] = json_integer_value(id);
    }
    return 1;
}

int stream_want(json_t *msg, void *ud)
{
    (void)ud;
    if (mailbox_frame(msg))
        return 0;   /* mail keeps flowing while we wait, as in a callback */
    if (!stream_frame(msg))
        return -1;  /* a request: answered after this one */
    return st.cancelled || st.sent - st.acked < STREAM_WINDOW ? 1 : 0;
}

/* ---- sending --------------------------------------------------------------- */

/* Sends one item (value stolen), first waiting for room in the window.
 * NULL, or why not: cancelled, timed out while the consumer did not read,
 * too large for a frame. */
static const char *try_send(const char *kind, json_t *value)
{
    bx_node *n = st.n;
    if (!st.cancelled && st.sent - st.acked >= STREAM_WINDOW &&
        link_await(n, stream_want, NULL) == -2) {
        json_decref(value);
        return "timeout while the stream's consumer was not reading";
    }
    if (st.cancelled) {
        json_decref(value);
        return "stream cancelled";
    }
    json_t *msg = json_pack("{s:O, s:s, s:o}", "stream", st.id, "kind", kind, "value", value);
    int rc = msg ? link_send(n, msg) : -1;
    if (rc == -2)
        return "stream item too large to send (over the frame limit)";
    if (rc < 0)
        _exit(1);   /* the manager is gone */
    st.sent++;
    return NULL;
}

static void send_item(lua_State *L, const char *kind, json_t *value)
{
    const char *why = try_send(kind, value);
    if (why)
        luaL_error(L, "%s", why);
}

/* One printed line (without its "\n"), unless max_output is spent. */
static void print_line(lua_State *L, const char *s, size_t len)
{
    bx_node *n = st.n;
    if (st.printed + len + 1 > n->lim.max_output || n->out_truncated) {
        n->out_truncated = 1;   /* past the bound every later line is dropped */
        return;
    }
    st.printed += len + 1;
    send_item(L, "print", textcodec_json(s, len));
}

/* print, streamed: the tab-joined text, one item per line. */
int stream_print(lua_State *L)
{
    int top = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= top; i++) {
        luaL_tolstring(L, i, NULL);
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len), *end = s + len;
    for (;;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        print_line(L, s, nl ? (size_t)(nl - s) : (size_t)(end - s));
        if (!nl)
            break;
        s = nl + 1;
    }
    return 0;
}

int stream_post(lua_State *L)
{
    char err[256];
    json_t *v;
    lua_settop(L, 1);
    if (conv_to_json(L, 1, &v, err, sizeof err) != BX_OK)
        return luaL_error(L, "post: %s", err);
    send_item(L, "post", v);
    lua_pushboolean(L, 1);
    return 1;
}

/* ---- the coroutine driver -------------------------------------------------- */

/* Sends the yielded values as a stream item; what went wrong is raised
 * inside the script when it resumes (stream_co_yield). */
static void send_yield(lua_State *co, int nres)
{
    char err[256];
    json_t *values = json_array();
    for (int i = 1; i <= nres && values; i++) {
        json_t *j;
        if (conv_to_json(co, lua_gettop(co) - nres + i, &j, err, sizeof err) != BX_OK) {
            snprintf(st.yield_err, sizeof st.yield_err, "stream yield, value %d: %s", i, err);
            json_decref(values);
            lua_pop(co, nres);
            return;
        }
        json_array_append_new(values, j);
    }
    lua_pop(co, nres);
    const char *why = values ? try_send("yield", values) : "out of memory";
    if (why)
        snprintf(st.yield_err, sizeof st.yield_err, "%s", why);
}

static int yield_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    if (st.active && L == st.co && st.yield_err[0]) {
        lua_pushstring(L, st.yield_err);
        st.yield_err[0] = 0;
        return lua_error(L);
    }
    return lua_gettop(L);   /* what resume passed */
}

int stream_co_yield(lua_State *L)
{
    return lua_yieldk(L, lua_gettop(L), 0, yield_k);
}

/* lua_CFunction: resumes the chunk (upvalue-free: argument 1, a thread)
 * until it returns, streaming its yields; returns its results. */
static int drive(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    bx_node *n = node_of(L);
    for (;;) {
        int nres;
        limits_pass_hook(L, co);
        lua_State *prev = limits_set_running(co);
        int status = lua_resume(co, L, 0, &nres);
        limits_set_running(prev);
        if (limits_tripped(n))
            limits_pass_hook(co, L);   /* the trip follows the error out */
        if (status == LUA_YIELD) {
            send_yield(co, nres);
            continue;
        }
        if (status == LUA_OK) {
            luaL_checkstack(L, nres + 1, "too many results");
            lua_xmove(co, L, nres);
            return nres;
        }
        /* the coroutine's stack is intact after an error: its traceback */
        luaerr_keep_traceback(L, co, 0);
        lua_xmove(co, L, 1);
        return lua_error(L);
    }
}

static int drive_start(lua_State *L)
{
    /* 1: the chunk; the thread is made here, protected */
    lua_State *co = st.co = lua_newthread(L);
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    lua_replace(L, 1);
    return drive(L);
}

int stream_pcall(lua_State *L)
{
    lua_pushcfunction(L, drive_start);
    lua_insert(L, -2);
    return lua_pcall(L, 1, LUA_MULTRET, 0);
}
