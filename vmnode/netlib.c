/* netlib.c - the C core under networked VMs: loads Debian's LuaSocket into
 * the VM (dlopen of socket/core.so, socket.lua run with a private require),
 * has reach.c wrap every address-taking socket method with the reach
 * check, and hands lua/net.lua its primitives (encode, decode, wait,
 * getfd); and the idle read that serves the VM's sockets between requests. */
#include "netlib.h"
#include "coded.h"
#include "convert.h"
#include "textcodec.h"
#include "mailbox.h"
#include "reach.h"

#include <dlfcn.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net_lua.h"

#define SOCKET_CORE_SO "/usr/lib/x86_64-linux-gnu/lua/5.4/socket/core.so"
#define SOCKET_LUA "/usr/share/lua/5.4/socket.lua"
#define NET_KEY "bioxen.net"
void netlib_configure(json_t *allow)
{
    reach_grants(allow);
}

void netlib_seal(void)
{
    reach_seal();
}

/* ---- loading LuaSocket -------------------------------------------------- */

static int private_require(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (lua_getfield(L, lua_upvalueindex(1), name) == LUA_TNIL)
        return luaL_error(L, "module '%s' is not available in the sandbox", name);
    return 1;
}

/* Pushes socket.core's table (the shared object stays loaded for good). */
static void open_core(lua_State *L)
{
    static void *so;
    if (!so && !(so = dlopen(SOCKET_CORE_SO, RTLD_NOW | RTLD_LOCAL)))
        luaL_error(L, "cannot load LuaSocket: %s", dlerror());
    lua_CFunction open = (lua_CFunction)(uintptr_t)dlsym(so, "luaopen_socket_core");
    if (!open)
        luaL_error(L, "LuaSocket has no luaopen_socket_core");
    lua_pushcfunction(L, open);
    lua_call(L, 0, 1);
}

/* socket.lua's text, read once: a fully isolated node opens no file after
 * init (seccomp), yet reset rebuilds the state and runs it again. */
static void load_socket_lua(lua_State *L)
{
    static char *src;
    static size_t len;
    if (!src) {
        FILE *f = fopen(SOCKET_LUA, "rb");
        char *buf = f ? malloc(1 << 16) : NULL;
        size_t n = buf ? fread(buf, 1, 1 << 16, f) : 0;
        if (f)
            fclose(f);
        if (!buf || n == 0 || n == 1 << 16) {
            free(buf);
            luaL_error(L, "cannot read " SOCKET_LUA);
        }
        src = buf, len = n;
    }
    if (luaL_loadbufferx(L, src, len, "@" SOCKET_LUA, "t") != LUA_OK)
        lua_error(L);
}

/* Runs socket.lua with an environment whose `require` only hands out the
 * modules listed here; pushes the resulting socket table. */
static void run_socket_lua(lua_State *L, int core)
{
    load_socket_lua(L);
    lua_newtable(L);                              /* its _ENV */
    lua_newtable(L);                              /* the modules require gives */
    lua_getglobal(L, "string");
    lua_setfield(L, -2, "string");
    lua_getglobal(L, "math");
    lua_setfield(L, -2, "math");
    lua_pushvalue(L, core);
    lua_setfield(L, -2, "socket.core");
    lua_pushcclosure(L, private_require, 1);
    lua_setfield(L, -2, "require");
    lua_newtable(L);                              /* other names: the globals */
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setupvalue(L, -2, 1);
    lua_call(L, 0, 1);
}

/* ---- net.lua's primitives ----------------------------------------------- */

/* encode(v) -> one NDJSON line ("[v]\n"); raises past NET_MSG_MAX. */
static int l_encode(lua_State *L)
{
    char err[256];
    json_t *v;
    luaL_checkany(L, 1);
    if (conv_to_json(L, 1, &v, err, sizeof err) != BX_OK)
        return luaL_error(L, "cannot send this value: %s", err);
    json_t *wrap = json_array();
    json_array_append_new(wrap, v);
    size_t len = 0;
    char *buf = proto_dump(wrap, &len);
    json_decref(wrap);
    if (!buf)
        return luaL_error(L, "cannot encode the message");
    if (len > NET_MSG_MAX) {
        free(buf);
        return luaL_error(L, "message of %I bytes exceeds the %I-byte limit",
                          (lua_Integer)len, (lua_Integer)NET_MSG_MAX);
    }
    lua_pushlstring(L, buf, len);   /* may raise: a leak of buf on OOM only */
    free(buf);
    return 1;
}

/* decode(line) -> v; raises on a line that is not an encoded message. */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    json_error_t je;
    char err[256];
    json_t *wrap = json_loadb(s, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!json_is_array(wrap) || json_array_size(wrap) != 1) {
        json_decref(wrap);
        return luaL_error(L, "malformed message from peer");
    }
    enum bx_err e = conv_push_value_p(L, json_array_get(wrap, 0), err, sizeof err);
    json_decref(wrap);
    if (e != BX_OK)
        return luaL_error(L, "malformed message from peer: %s", err);
    return 1;
}

static int collect_fds(lua_State *L, int idx, struct pollfd *pf)
{
    int k = 0;
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= len && k < NET_FDS_MAX; i++) {
        lua_rawgeti(L, idx, i);
        int isnum;   /* LuaSocket's getfd gives a float */
        lua_Integer fd = lua_tointegerx(L, -1, &isnum);
        if (isnum && fd >= 0 && fd < 1 << 20) {
            pf[k].fd = (int)fd;
            pf[k].events = POLLIN;
            pf[k++].revents = 0;
        }
        lua_pop(L, 1);
    }
    return k;
}

static int want_none(json_t *msg, void *ud)
{
    (void)ud;
    return mailbox_frame(msg) ? 0 : -1;
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* wait(fds, timeout): returns when one of fds is readable or timeout
 * seconds passed; control frames read meanwhile are queued. */
static int l_wait(lua_State *L)
{
    static struct pollfd pf[NET_FDS_MAX];
    bx_node *n = node_of(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    double t = luaL_optnumber(L, 2, -1);
    n->nxfds = collect_fds(L, 1, pf);
    n->xdeadline = t < 0 ? -1 : mono_ms() + t * 1e3;
    n->xfds = pf;
    int r = link_await(n, want_none, NULL);
    n->xfds = NULL;
    n->nxfds = 0;
    if (r == -2)
        return luaL_error(L, "timeout while waiting in net.recv");
    return 0;
}

/* ---- registration and the idle loop ------------------------------------- */

void netlib_register(lua_State *L, bx_node *n)
{
    (void)n;
    open_core(L);
    int core = lua_gettop(L);
    /* net.lua keeps the original getfd (to poll its sockets); scripts lose it */
    luaL_getmetatable(L, "tcp{master}");
    if (!lua_istable(L, -1) || lua_getfield(L, -1, "__index") != LUA_TTABLE ||
        lua_getfield(L, -1, "getfd") != LUA_TFUNCTION)
        luaL_error(L, "this LuaSocket has no tcp{master}.getfd");
    int getfd = lua_gettop(L);
    reach_guard(L, core);
    run_socket_lua(L, core);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "socket");
    int sock = lua_gettop(L);
    if (luaL_loadbufferx(L, (const char *)net_lua, sizeof net_lua, "=net.lua", "t") != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, sock);
    lua_pushcfunction(L, l_encode);
    lua_pushcfunction(L, l_decode);
    lua_pushcfunction(L, l_wait);
    lua_pushvalue(L, getfd);
    lua_pushinteger(L, (lua_Integer)NET_MSG_MAX);
    lua_call(L, 6, 2);
    lua_setfield(L, LUA_REGISTRYINDEX, NET_KEY);
    lua_setglobal(L, "net");
    lua_settop(L, core - 1);
}

/* Calls internal[fname] under the VM's limits (bounded even with none set,
 * as nobody else would stop an on_message handler that loops). */
static int call_internal(bx_node *n, const char *fname, int nres, int limited)
{
    lua_State *L = n->L;
    if (lua_getfield(L, LUA_REGISTRYINDEX, NET_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        return -1;
    }
    lua_getfield(L, -1, fname);
    lua_remove(L, -2);
    if (limited) {
        sandbox_output_reset(n);
        n->mem_refused = 0;
        limits_arm(n, n->lim.timeout > 0 ? n->lim.timeout : 2.0,
                   n->lim.instruction_limit > 0 ? n->lim.instruction_limit : 100000000);
    }
    int rc = lua_pcall(L, 0, nres, 0);
    if (limited) {
        limits_disarm(n);
        sandbox_output_reset(n);   /* print output of handlers goes nowhere */
        json_decref(n->cb_msg);
        n->cb_msg = NULL;
    }
    if (rc != LUA_OK) {
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

int netlib_idle_read(bx_node *n, char **line, size_t *len)
{
    static struct pollfd pf[NET_FDS_MAX];
    int more = 0;   /* the last pump stopped at its line budget: poll without waiting */
    for (;;) {
        reach_flush(n);     /* listeners the collector closed */
        if (!n->L)
            return link_read(n, line, len, 0);
        int top = lua_gettop(n->L), k = 0;
        if (call_internal(n, "fds", 1, 0) == 0) {
            if (lua_istable(n->L, -1))
                k = collect_fds(n->L, -1, pf);
        }
        lua_settop(n->L, top);
        if (k == 0)
            return link_read(n, line, len, 0);
        n->xfds = pf;
        n->nxfds = k;
        n->xdeadline = more ? 0 : -1;
        int r = link_read(n, line, len, 1);
        n->xfds = NULL;
        n->nxfds = 0;
        if (r != -3 && r != -2)
            return r;
        more = call_internal(n, "pump", 1, 1) == 0 && lua_toboolean(n->L, -1);
        lua_settop(n->L, top);
    }
}
