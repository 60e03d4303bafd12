/* callback.c - host callbacks: Lua globals that ask the manager's client to
 * run a function and wait for its cb_result. The wait reads fd 3 through
 * link.c, which queues every other frame for after the request. */
#include "node.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"

/* Sends {"callback":K,"fn":name,"args":[...]}; raises on bad args, and on
 * args that are each under the value limit but together over a frame. */
static long long cb_send(lua_State *L, bx_node *n, const char *name)
{
    char err[256];
    int top = lua_gettop(L);
    json_t *args = json_array();
    for (int i = 1; i <= top; i++) {
        json_t *j;
        if (conv_to_json(L, i, &j, err, sizeof err) != BX_OK) {
            json_decref(args);
            luaL_error(L, "callback '%s', argument %d: %s", name, i, err);
        }
        json_array_append_new(args, j);
    }
    long long k = ++n->cb_next;
    json_t *msg = json_pack("{s:I, s:s, s:o}", "callback", (json_int_t)k, "fn", name, "args", args);
    int rc = msg ? link_send(n, msg) : -1;
    if (rc == -2)
        luaL_error(L, "callback '%s': arguments too large to send (over the frame limit)", name);
    if (rc < 0)
        _exit(1); /* the manager is gone: nobody to answer to */
    return k;
}

struct cb_want { bx_node *n; long long k; };

static int cb_want(json_t *m, void *ud)
{
    struct cb_want *w = ud;
    const char *op = json_string_value(json_object_get(m, "op"));
    if (!op || strcmp(op, "cb_result") != 0)
        return -1;
    json_t *cb = json_object_get(m, "callback");
    if (!json_is_integer(cb) || json_integer_value(cb) != w->k)
        return 0; /* a late answer to a callback we gave up on */
    json_decref(w->n->cb_msg);
    w->n->cb_msg = json_incref(m);
    return 1;
}

/* Reads until our cb_result arrives; returns it (owned by n->cb_msg). */
static json_t *cb_wait(lua_State *L, bx_node *n, long long k)
{
    struct cb_want w = { n, k };
    if (link_await(n, cb_want, &w) == -2)
        luaL_error(L, "timeout while waiting for a callback");
    return n->cb_msg;
}

static int cb_call(lua_State *L)
{
    bx_node *n = node_of(L);
    const char *name = lua_tostring(L, lua_upvalueindex(1));
    long long k = cb_send(L, n, name);
    lua_settop(L, 0);
    json_t *m = cb_wait(L, n, k);
    json_t *e = json_object_get(m, "error");
    if (e) {
        const char *s = json_is_string(e) ? json_string_value(e) : "callback failed";
        lua_pushstring(L, s);
        return lua_error(L);
    }
    json_t *res = json_object_get(m, "result");
    if (!res || json_is_null(res))
        return 0;
    if (!json_is_array(res))
        return luaL_error(L, "callback '%s': result must be a list", name);
    char err[256];
    size_t i;
    json_t *v;
    json_array_foreach(res, i, v) {
        luaL_checkstack(L, 4, "too many callback results");
        if (conv_push_json(L, v, err, sizeof err) != BX_OK)
            return luaL_error(L, "callback '%s' result %d: %s", name, (int)i + 1, err);
    }
    return (int)json_array_size(res);
}

void callback_register(lua_State *L, bx_node *n)
{
    size_t i;
    json_t *name;
    json_array_foreach(n->callbacks, i, name) {
        lua_pushstring(L, json_string_value(name));
        lua_pushcclosure(L, cb_call, 1);
        lua_setglobal(L, json_string_value(name));
    }
}
