/* sandbox.c - builds the node's Lua state: the whitelisted standard library,
 * text-only load, captured print, and coroutines that carry the limits;
 * the VM-independent part can be built ahead of init. */
#include "node.h"
#include "mailbox.h"
#include "netlib.h"
#include "policy.h"
#include "project.h"
#include "stream.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The whole whitelist: what each library keeps ("*" = everything). Names
 * not listed are removed from the library's own table, so no metatable
 * (strings index `string`) can reach them. */
static const struct sb_lib {
    const char *name;
    lua_CFunction open;
    const char *keep;
} sb_libs[] = {
    { LUA_GNAME, luaopen_base,
      " assert error getmetatable ipairs next pairs pcall rawequal rawget rawlen"
      " rawset select setmetatable tonumber tostring type xpcall _G _VERSION"
      " load print collectgarbage " },
    { LUA_STRLIBNAME, luaopen_string,
      " byte char find format gmatch gsub len lower match rep reverse sub upper"
      " pack packsize unpack " },
    { LUA_TABLIBNAME, luaopen_table, "*" },
    { LUA_MATHLIBNAME, luaopen_math, "*" },
    { LUA_UTF8LIBNAME, luaopen_utf8, "*" },
    { LUA_COLIBNAME, luaopen_coroutine, "*" },
    { LUA_OSLIBNAME, luaopen_os, " time clock date difftime " },
    { NULL, NULL, NULL },
};

void sandbox_output_reset(bx_node *n)
{
    n->out_len = 0;
    n->out_truncated = 0;
    /* an idle node should not sit on a big buffer */
    if (n->out_cap > 65536) {
        free(n->out);
        n->out = NULL;
        n->out_cap = 0;
    }
}

void sandbox_output_append(bx_node *n, const char *p, size_t len)
{
    size_t max = n->lim.max_output;
    if (n->out_len + len > max) {
        len = max - n->out_len;
        n->out_truncated = 1;
    }
    if (len == 0)
        return;
    if (n->out_len + len > n->out_cap) {
        size_t cap = n->out_cap ? n->out_cap : 256;
        while (cap < n->out_len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *q = realloc(n->out, cap);
        if (!q) {
            n->out_truncated = 1;
            return;
        }
        n->out = q;
        n->out_cap = cap;
    }
    memcpy(n->out + n->out_len, p, len);
    n->out_len += len;
}

/* print: like luaB_print, but into the request's bounded capture buffer */
static int sb_print(lua_State *L)
{
    bx_node *n = node_of(L);
    int top = lua_gettop(L);
    if (stream_active())
        return stream_print(L);     /* each line to the requester at once */
    for (int i = 1; i <= top; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1)
            sandbox_output_append(n, "\t", 1);
        sandbox_output_append(n, s, len);
        lua_pop(L, 1);
    }
    sandbox_output_append(n, "\n", 1);
    return 0;
}

/* load: the real one with mode forced to "t"; binary chunks can forge
 * bytecode that escapes every check. The default env stays the globals. */
static int sb_load(lua_State *L)
{
    int n = lua_gettop(L);
    if (n < 3) {
        lua_settop(L, 3);
        n = 3;
    }
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* collectgarbage: every Lua 5.4 option but "stop" (garbage would pile up
 * unseen until the memory limit). Tuning is clamped to ranges where the
 * collector keeps pace with allocation: Lua stores the parameters in bytes
 * (out-of-range values wrap to near 0, a collector that never finishes a
 * cycle), and a negative "step" would postpone it by that much. The memory
 * limit holds in either mode; the clamps keep it from being the only bound. */
static const struct sb_gc_param {
    const char *opt;
    int zero_keeps;     /* 0 (or none) means "leave as it is"; else it is a value */
    lua_Integer lo[3], hi[3];   /* for the parameters from stack index 2 on */
} sb_gc_params[] = {
    { "incremental", 1, { 50, 100, 8 }, { 400, 1000, 24 } },  /* pause, stepmul, stepsize (log2 bytes) */
    { "generational", 1, { 5, 50, 0 }, { 100, 300, 0 } },     /* minor, major multiplier */
    { "setpause", 0, { 50, 0, 0 }, { 400, 0, 0 } },
    { "setstepmul", 0, { 100, 0, 0 }, { 1000, 0, 0 } },       /* none would be 0: no pace */
    { "step", 0, { 0, 0, 0 }, { 1 << 20, 0, 0 } },            /* KiB of work; Lua casts to int */
    { NULL, 0, { 0 }, { 0 } },
};

static void sb_gc_clamp(lua_State *L, const struct sb_gc_param *p)
{
    for (int i = 0; i < 3 && p->hi[i]; i++) {
        int idx = 2 + i;
        if (lua_isnoneornil(L, idx) && p->zero_keeps)
            continue;
        lua_Integer v = luaL_optinteger(L, idx, 0);
        if (v == 0 && p->zero_keeps)
            continue;
        if (lua_gettop(L) < idx)
            lua_settop(L, idx);
        lua_pushinteger(L, v < p->lo[i] ? p->lo[i] : v > p->hi[i] ? p->hi[i] : v);
        lua_replace(L, idx);
    }
}

static int sb_collectgarbage(lua_State *L)
{
    static const char *const opts[] = { "collect", "count", "step", "isrunning", "incremental",
                                        "generational", "setpause", "setstepmul", "restart", NULL };
    const char *opt = opts[luaL_checkoption(L, 1, "collect", opts)];
    for (const struct sb_gc_param *p = sb_gc_params; p->opt; p++)
        if (strcmp(p->opt, opt) == 0)
            sb_gc_clamp(L, p);
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* setmetatable without __gc: Lua runs finalizers with hooks disabled
 * (GCTM clears allowhook), so a looping __gc would escape every limit and
 * could hang lua_close on reset. */
static int sb_setmetatable(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_argerror(L, 2, "__gc metamethods are not allowed in the sandbox");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* lcorolib.c's auxresume with the limits carried across; nothing here may
 * raise between setting and restoring the running thread. */
static int sb_auxresume(lua_State *L, lua_State *co, int narg)
{
    int status, nres;
    if (!lua_checkstack(co, narg)) {
        lua_pushliteral(L, "too many arguments to resume");
        return -1;
    }
    limits_pass_hook(L, co);
    lua_xmove(L, co, narg);
    lua_State *prev = limits_set_running(co);
    status = lua_resume(co, L, narg, &nres);
    limits_set_running(prev);
    if (limits_tripped(node_of(L)))
        limits_pass_hook(co, L); /* the trip follows the error out */
    if (status == LUA_OK || status == LUA_YIELD) {
        if (!lua_checkstack(L, nres + 1)) {
            lua_pop(co, nres);
            lua_pushliteral(L, "too many results to resume");
            return -1;
        }
        lua_xmove(co, L, nres);
        return nres;
    }
    lua_xmove(co, L, 1);
    return -1;
}

static int sb_coresume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    int r = sb_auxresume(L, co, lua_gettop(L) - 1);
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -(r + 1));
    return r + 1;
}

static int sb_auxwrap(lua_State *L)
{
    lua_State *co = lua_tothread(L, lua_upvalueindex(1));
    int r = sb_auxresume(L, co, lua_gettop(L));
    if (r < 0) {
        int stat = lua_status(co);
        if (stat != LUA_OK && stat != LUA_YIELD) {
            stat = lua_resetthread(co); /* close its to-be-closed variables */
            lua_xmove(co, L, 1);
        }
        if (stat != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    return r;
}

static int sb_cocreate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_State *co = lua_newthread(L);
    limits_charge_thread(co); /* it starts with a fresh countdown */
    lua_pushvalue(L, 1);
    lua_xmove(L, co, 1);
    return 1;
}

static int sb_cowrap(lua_State *L)
{
    sb_cocreate(L);
    lua_pushcclosure(L, sb_auxwrap, 1);
    return 1;
}

/* How deep coroutine.close calls nest (a __close handler closing another
 * coroutine). Lua 5.4.4's lua_resetthread runs the handlers with the closed
 * coroutine's own C-call count instead of the caller's (fixed in 5.4.5 by
 * lua_closethread), so its C-stack check never fires and 20,000 nested
 * closes overflow the C stack (SIGSEGV; tests/attacks/140). Lua's own bound
 * on C calls, LUAI_MAXCCALLS, is 200. */
#define SB_CLOSE_DEPTH_MAX 200
static int sb_close_depth;

/* coroutine.close runs __close handlers inside co: it must carry limits too */
static int sb_coclose(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argexpected(L, co, 1, "coroutine");
    if (sb_close_depth >= SB_CLOSE_DEPTH_MAX)
        return luaL_error(L, "C stack overflow (coroutine.close nested too deep)");
    limits_pass_hook(L, co);
    lua_State *prev = limits_set_running(co);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    sb_close_depth++; /* lua_pcall always returns here, so this unwinds */
    int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    sb_close_depth--;
    limits_set_running(prev);
    if (status != LUA_OK)
        return lua_error(L);
    return lua_gettop(L);
}

/* math.random's seed comes from the kernel, not from the clock and the
 * state's address: nodes forked from one zygote share their layout, and two
 * created in the same second would otherwise draw the same numbers. */
static void sb_reseed(lua_State *L)
{
    lua_Integer seed[2];
    if (getrandom(seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        return;     /* Lua's own seed (time and address) stands */
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, seed[0]);
    lua_pushinteger(L, seed[1]);
    lua_call(L, 2, 0);
}

/* Deletes every field of the table on top whose name is not in keep. */
static void sb_strip(lua_State *L, const char *keep)
{
    if (strcmp(keep, "*") == 0)
        return;
    char word[64];
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pop(L, 1);
        size_t len;
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        int ok = 0;
        if (k && len + 2 < sizeof word) {
            snprintf(word, sizeof word, " %s ", k);
            ok = strstr(keep, word) != NULL;
        }
        if (!ok) {
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, -4); /* clearing a field during next is allowed */
        }
    }
}

/* Replaces t[name] on top-of-stack table by f with the old value as upvalue. */
static void sb_override(lua_State *L, const char *name, lua_CFunction f, int wrap_old)
{
    if (wrap_old) {
        lua_getfield(L, -1, name);
        lua_pushcclosure(L, f, 1);
    } else {
        lua_pushcfunction(L, f);
    }
    lua_setfield(L, -2, name);
}

/* The part of the state every VM shares: the stripped libraries and the
 * overrides. A spare node builds it before its init frame (sandbox_prebuild)
 * so a create does not wait for it. */
static int sb_build_base(lua_State *L)
{
    for (const struct sb_lib *lib = sb_libs; lib->name; lib++) {
        luaL_requiref(L, lib->name, lib->open, 1);
        if (lib->open == luaopen_math)
            sb_reseed(L);
        sb_strip(L, lib->keep);
        lua_pop(L, 1);
    }
    lua_pushglobaltable(L);
    sb_override(L, "print", sb_print, 0);
    sb_override(L, "load", sb_load, 1);
    sb_override(L, "collectgarbage", sb_collectgarbage, 1);
    sb_override(L, "setmetatable", sb_setmetatable, 1);
    lua_getfield(L, -1, LUA_COLIBNAME);
    sb_override(L, "resume", sb_coresume, 0);
    sb_override(L, "wrap", sb_cowrap, 0);
    sb_override(L, "create", sb_cocreate, 0);
    sb_override(L, "close", sb_coclose, 1);
    sb_override(L, "yield", stream_co_yield, 0);   /* a streamed chunk's yields can fail */
    lua_pop(L, 2);
    /* package.loaded in the registry is not reachable from the sandbox, but
     * nothing in it should outlive the build either */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    return 0;
}

/* The part that depends on the init frame: callbacks, mailbox, policy,
 * networking, the project baseline. */
static int sb_build_vm(lua_State *L)
{
    bx_node *n = lua_touserdata(L, 1);
    callback_register(L, n);
    mailbox_register(L);
    policy_register(L);     /* fs and require */
    if (n->networked)
        netlib_register(L, n);
    if (testhooks_register)     /* only in bioxen-vmnode-testhooks */
        testhooks_register(L);
    project_baseline(L);    /* last: every global so far is the sandbox's */
    return 0;
}

static int sb_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "bioxen-vmnode: lua panic: %s\n", msg ? msg : "?");
    abort();
}

static lua_State *prebuilt;     /* sb_build_base done, not yet a VM's (owned) */

/* A state with the base built, or NULL. The caller sets mem_unlimited: a
 * VM always starts, even under a tiny limit. */
static lua_State *sb_new(bx_node *n)
{
    lua_State *L = lua_newstate(limits_alloc, n);
    if (!L)
        return NULL;
    lua_atpanic(L, sb_panic);
    lua_pushcfunction(L, sb_build_base);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        fprintf(stderr, "bioxen-vmnode: cannot build the state: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return L;
}

void sandbox_prebuild(bx_node *n)
{
    n->mem_unlimited = 1;
    prebuilt = sb_new(n);   /* NULL: sandbox_open builds it all later */
    n->mem_unlimited = 0;
}

int sandbox_open(bx_node *n)
{
    n->mem_unlimited = 1;
    lua_State *L = prebuilt ? prebuilt : sb_new(n);
    prebuilt = NULL;
    if (!L) {
        n->mem_unlimited = 0;
        return -1;
    }
    lua_pushcfunction(L, sb_build_vm);
    lua_pushlightuserdata(L, n);
    int rc = lua_pcall(L, 1, 0, 0);
    n->mem_unlimited = 0;
    if (rc != LUA_OK) {
        fprintf(stderr, "bioxen-vmnode: cannot build the state: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    n->L = L;
    limits_set_state(L);
    return 0;
}

void sandbox_close(bx_node *n)
{
    if (prebuilt) {     /* the node ends before its init: nothing ran in it */
        lua_close(prebuilt);
        prebuilt = NULL;
    }
    if (!n->L)
        return;
    /* __gc handlers run in lua_close; none may loop forever */
    limits_trip_now(n);
    limits_set_state(NULL);
    lua_close(n->L);
    n->L = NULL;
    n->instr_tripped = 0;
}
