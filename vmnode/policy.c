/* policy.c - Lua's fs.read, fs.lines and require inside the node (see
 * policy.h and docs/protocol.md "Policy"). The node opens nothing: it asks
 * the manager ({"ask":K,"fs_read":P} / {"ask":K,"module":N}), which checks
 * the policy, reads the file and answers with its bytes; the wait goes
 * through link_await like mailbox.recv, under the request's limits.
 *
 * require looks in this order: the node-local preload table (registry
 * PRELOAD_KEY: a project's mocks, name -> the module's value itself), the
 * project's files (project.c; "a.b" is /a/b.lua or /a/b/init.lua), then
 * the manager's module directory for a name listed in the policy's
 * imports; anything else is refused. Loaded modules are cached per VM
 * (LOADED_KEY, like package.loaded). */
#include "policy.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coded.h"
#include "modmatch.h"
#include "convert.h"
#include "textcodec.h"
#include "mailbox.h"
#include "netlib.h"
#include "project.h"

#define LOADED_KEY "bioxen.loaded"
#define PRELOAD_KEY "bioxen.preload"

static struct {
    json_t *imports;            /* the policy's imports list (owned) */
    json_int_t next_k;          /* the last ask's number */
} pol;

static char loading;            /* its address marks a module being loaded */

void policy_configure(bx_node *n, json_t *p)
{
    if (!json_is_object(p))
        return;
    json_t *imports = json_object_get(p, "imports"), *tcp = json_object_get(p, "tcp");
    json_t *mem = json_object_get(p, "mem");
    json_decref(pol.imports);
    pol.imports = json_is_array(imports) ? json_incref(imports) : NULL;
    if (json_is_array(tcp))
        netlib_configure(tcp);
    if (json_is_integer(mem) && json_integer_value(mem) >= 0)
        n->lim.memory_limit = (size_t)json_integer_value(mem);
}

json_t *policy_op_set(bx_node *n, json_t *req, json_t *id)
{
    json_t *p = json_object_get(req, "policy");
    if (!json_is_object(p))
        return proto_error_new(id, BX_E_BAD_REQUEST, "set_policy needs an object \"policy\"");
    policy_configure(n, p);
    return proto_reply_new(id, json_true());
}

int policy_frame(json_t *msg)
{
    return json_object_get(msg, "answer") != NULL;
}

/* ---- asking the manager --------------------------------------------------- */

struct want {
    json_int_t k;
    bx_node *n;
};

int policy_answer_is(json_t *msg, json_int_t k)
{
    json_t *a = json_object_get(msg, "answer");
    if (!a)
        return mailbox_frame(msg) ? 0 : -1;
    /* another number: the answer of a wait a timeout ended */
    return json_is_integer(a) && json_integer_value(a) == k;
}

static int want_answer(json_t *msg, void *ud)
{
    struct want *w = ud;
    int is = policy_answer_is(msg, w->k);
    if (is <= 0)
        return is;
    /* kept in cb_msg: freed by the next wait or at the end of the request,
     * so a Lua error raised while its bytes are pushed leaks nothing */
    json_decref(w->n->cb_msg);
    w->n->cb_msg = json_incref(msg);
    return 1;
}

/* Sends {"ask":K, field:value} and waits for its answer (borrowed). */
static json_t *ask(lua_State *L, const char *field, const char *value)
{
    bx_node *n = node_of(L);
    struct want w = { ++pol.next_k, n };
    json_t *msg = json_pack("{s:I, s:s}", "ask", w.k, field, value);
    if (!msg)
        luaL_error(L, "out of memory");
    if (link_send(n, msg) < 0)
        _exit(1);   /* the manager is gone */
    if (link_await(n, want_answer, &w) != 1)
        luaL_error(L, "timeout while waiting for %s", field);
    return n->cb_msg;
}

/* Raises the answer's error: POLICY_VIOLATION keeps its code, the rest
 * (missing file, too large) are plain Lua errors. */
static int raise_answer(lua_State *L, json_t *error)
{
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *text = json_string_value(json_object_get(error, "message"));
    luaL_where(L, 1);
    lua_pushstring(L, text ? text : "refused");
    lua_concat(L, 2);
    if (code && bx_err_from_code(code) == BX_E_POLICY_VIOLATION)
        return coded_raise(L, BX_E_POLICY_VIOLATION);
    return lua_error(L);
}

/* Pushes the answer's bytes as a Lua string, or raises its error. */
static void push_answer(lua_State *L, json_t *answer)
{
    char err[256];
    json_t *error = json_object_get(answer, "error"), *res = json_object_get(answer, "result");
    if (error)
        raise_answer(L, error);
    if (!res || conv_push_json(L, res, err, sizeof err) != BX_OK || lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "malformed answer from the manager");
}

/* The string argument arg, refused unless it can travel as JSON text. */
static const char *text_arg(lua_State *L, int arg)
{
    size_t len;
    const char *s = luaL_checklstring(L, arg, &len);
    luaL_argcheck(L, strlen(s) == len && textcodec_utf8_valid(s, len), arg,
                  "must be UTF-8 text without NUL bytes");
    return s;
}

/* ---- fs ------------------------------------------------------------------- */

static int l_read(lua_State *L)
{
    const char *path = text_arg(L, 1);
    push_answer(L, ask(L, "fs_read", path));
    return 1;
}

/* Upvalues: the file's bytes, the position of the next line. */
static int lines_next(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, lua_upvalueindex(1), &len);
    size_t pos = (size_t)lua_tointeger(L, lua_upvalueindex(2));
    if (pos >= len) {
        lua_pushnil(L);
        return 1;
    }
    const char *nl = memchr(s + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - s) : len;
    lua_pushlstring(L, s + pos, end - pos);
    lua_pushinteger(L, (lua_Integer)(nl ? end + 1 : len));
    lua_replace(L, lua_upvalueindex(2));
    return 1;
}

/* fs.lines(path): an iterator over the file's lines, without their "\n"
 * (the whole file is read at once, as fs.read does). */
static int l_lines(lua_State *L)
{
    l_read(L);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, lines_next, 2);
    return 1;
}

/* ---- require -------------------------------------------------------------- */

static int import_listed(const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(pol.imports, i, v)
        if (json_is_string(v) && modmatch(json_string_value(v), name))
            return 1;
    return 0;
}

static int refuse_import(lua_State *L, const char *name)
{
    const char *why = project_active() ? "not in the project or the policy's imports"
                                       : "not in the policy's imports";
    json_t *ev = json_pack("{s:s, s:{s:s, s:o, s:s}}", "event", "SECURITY_VIOLATION", "detail",
                           "action", "require", "target", textcodec_json(name, strlen(name)),
                           "reason", why);
    if (ev)
        link_send(node_of(L), ev);
    luaL_where(L, 1);
    lua_pushfstring(L, "require '%s' refused: %s", name, why);
    lua_concat(L, 2);
    return coded_raise(L, BX_E_POLICY_VIOLATION);
}

/* __close of the guard run_module leaves below a running module: when the
 * module raised, its "loading" mark goes, so a later require tries again.
 * Being a to-be-closed slot instead of a pcall, the error's traceback is
 * taken inside the module and names its file. */
static int guard_close(lua_State *L)
{
    lua_rawgeti(L, 1, 1);   /* the cache */
    lua_rawgeti(L, 1, 2);   /* the name */
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_touserdata(L, -1) == &loading) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawset(L, -3);
    }
    return 0;
}

/* Runs the module source below its chunk name on top (leaving the
 * module's value on top) in the VM's own globals, with name as its
 * argument. Slot loaded holds the cache; it marks name as loading
 * meanwhile, so a require cycle fails. The caller returns right after (a
 * to-be-closed guard stays on the stack). */
static void run_module(lua_State *L, const char *name, int loaded)
{
    size_t len;
    const char *src = lua_tolstring(L, -2, &len);
    if (luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t") != LUA_OK)
        lua_error(L);   /* the syntax error, with the module's name */
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, loaded);
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, name);
    lua_rawseti(L, -2, 2);
    if (luaL_newmetatable(L, "bioxen.require_guard")) {
        lua_pushcfunction(L, guard_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_toclose(L, -1);
    lua_pushlightuserdata(L, &loading);
    lua_setfield(L, loaded, name);
    lua_pushvalue(L, -2);
    lua_pushstring(L, name);
    lua_call(L, 1, 1);  /* an error keeps its object: a coded one keeps its code */
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
}

static int l_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1), *src, *path;
    size_t len;
    lua_settop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, PRELOAD_KEY);    /* 2 */
    lua_getfield(L, LUA_REGISTRYINDEX, LOADED_KEY);     /* 3 */
    if (!lua_istable(L, 2) || !lua_istable(L, 3))
        return luaL_error(L, "require is not available in this state");
    if (lua_getfield(L, 2, name) != LUA_TNIL)            /* a mock: the value itself */
        return 1;
    lua_pop(L, 1);
    int in_project = project_find(name, &src, &len, &path);
    if (!in_project && !import_listed(name))
        return refuse_import(L, name);
    if (lua_getfield(L, 3, name) != LUA_TNIL) {
        if (lua_touserdata(L, -1) == &loading)
            return luaL_error(L, "module '%s' requires itself (a require cycle)", name);
        return 1;
    }
    lua_pop(L, 1);
    if (in_project) {
        lua_pushlstring(L, src, len);
        lua_pushfstring(L, "@%s", path);
    } else {
        push_answer(L, ask(L, "module", text_arg(L, 1)));
        lua_pushfstring(L, "=%s", name);
    }
    run_module(L, name, 3);
    lua_pushvalue(L, -1);
    lua_setfield(L, 3, name);
    return 1;
}

void policy_register(lua_State *L)
{
    static const luaL_Reg fs[] = { {"read", l_read}, {"lines", l_lines}, {NULL, NULL} };
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LOADED_KEY);
    lua_newtable(L);
    project_register_mocks(L);
    lua_setfield(L, LUA_REGISTRYINDEX, PRELOAD_KEY);
    luaL_newlib(L, fs);
    lua_setglobal(L, "fs");
    lua_pushcfunction(L, l_require);
    lua_setglobal(L, "require");
}
