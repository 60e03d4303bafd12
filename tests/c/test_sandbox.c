/* test_sandbox.c - vmnode/sandbox.c and limits.c: every removed function
 * is really absent, load refuses binary chunks, print is captured and
 * bounded, and the memory and instruction limits fail cleanly and leave
 * the state usable. */
#include "node.h"
#include "check.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static bx_node n;

/* Runs code in the sandbox; returns the pcall status, result left on top. */
static int run(const char *code)
{
    lua_settop(n.L, 0);
    int st = luaL_loadbufferx(n.L, code, strlen(code), "=test", "t");
    if (st == LUA_OK)
        st = lua_pcall(n.L, 0, 1, 0);
    return st;
}

static int run_true(const char *code)
{
    int ok = run(code) == LUA_OK && lua_toboolean(n.L, -1);
    if (!ok)
        fprintf(stderr, "  not true: %s (%s)\n", code, lua_tostring(n.L, -1));
    return ok;
}

static void test_removed(void)
{
    static const char *const absent[] = {
        "dofile", "loadfile", "package", "io", "debug", "string.dump",
        "os.execute", "os.exit", "os.getenv", "os.remove", "os.rename", "os.tmpname",
        "os.setlocale", "warn", "loadstring", "module",
        NULL,
    };
    char code[256];
    for (int i = 0; absent[i]; i++) {
        snprintf(code, sizeof code, "return %s == nil", absent[i]);
        CHECK(run_true(code));
    }
    /* require and fs exist (vmnode/policy.c); they serve only what the policy grants */
    CHECK(run_true("return type(require) == 'function' and type(fs.read) == 'function'"));
    CHECK(run_true("return ('').dump == nil"));          /* via the string metatable */
    CHECK(run_true("return getmetatable('').__index.dump == nil"));
    CHECK(run_true("return type(os.time()) == 'number' and type(os.clock()) == 'number'"));
    CHECK(run_true("return type(os.date('%Y')) == 'string' and os.difftime(2, 1) == 1"));
    CHECK(run_true("return math.sqrt(16) == 4 and utf8.char(233) == '\\u{E9}' and table.concat({1, 2}) == '12'"));
    CHECK(run_true("return not pcall(collectgarbage, 'stop')"));
    CHECK(run_true("return type(collectgarbage('count')) == 'number'"));
    CHECK(run_true("return collectgarbage('generational', 20, 100) == 'incremental'"
                   " and collectgarbage('incremental', 100, 200, 10) == 'generational'"));
    /* clamped: setpause answers the pause it replaces */
    CHECK(run_true("collectgarbage('setpause', 5000) return collectgarbage('setpause', 200) == 400"));
    CHECK(run_true("collectgarbage('setstepmul') return collectgarbage('setstepmul', 100) == 100"));
    CHECK(run_true("collectgarbage('incremental', -1, 0, 99) return collectgarbage('setpause', 200) == 48"));
    CHECK(run_true("return _G.string == string and _G._G == _G"));
    /* finalizers run with hooks off, so no limit could stop one */
    CHECK(run_true("return not pcall(setmetatable, {}, {__gc = function() end})"));
    CHECK(run_true("return getmetatable(setmetatable({}, {__index = {a = 1}})).__index.a == 1"));
}

static void test_load(void)
{
    /* a genuine binary chunk, made by a full state */
    lua_State *full = luaL_newstate();
    luaL_openlibs(full);
    CHECK(luaL_dostring(full, "return string.dump(function() return 1 end)") == LUA_OK);
    size_t len;
    const char *bin = lua_tolstring(full, -1, &len);
    lua_pushlstring(n.L, bin, len);
    lua_setglobal(n.L, "bin");
    lua_close(full);
    CHECK(run_true("local f, e = load(bin) return f == nil and e:find('binary') ~= nil"));
    CHECK(run_true("local f, e = load(bin, 'x', 'b') return f == nil"));
    CHECK(run_true("local f, e = load(bin, 'x', 'bt', {}) return f == nil"));
    CHECK(run_true("local i = 0 local f = load(function() i = i + 1 return i == 1 and bin or nil end) return f == nil"));
    CHECK(run_true("return load('return 1 + 1')() == 2"));
    CHECK(run_true("x_global = 5 return load('return x_global')() == 5"));     /* default env: globals */
    CHECK(run_true("return load('return x_global', 'c', 't', {x_global = 7})() == 7"));
    CHECK(run_true("return load('return x_global', 'c', 't', nil) ~= nil"));
}

static void test_print(void)
{
    sandbox_output_reset(&n);
    CHECK(run("print('a', 1, nil, true) print()") == LUA_OK);
    CHECK(n.out_len == 14 && memcmp(n.out, "a\t1\tnil\ttrue\n\n", 14) == 0);
    CHECK(!n.out_truncated);
    sandbox_output_reset(&n);
    n.lim.max_output = 8;
    CHECK(run("for i = 1, 100 do print('0123456789') end") == LUA_OK);
    CHECK(n.out_len == 8 && n.out_truncated);
    n.lim.max_output = BX_OUTPUT_DEFAULT;
    sandbox_output_reset(&n);
    CHECK(n.out_len == 0 && !n.out_truncated);
}

static void test_memory(void)
{
    n.lim.memory_limit = 1 << 20;
    CHECK(run("local t = {} for i = 1, 1e7 do t[i] = i .. 'x' end") == LUA_ERRMEM);
    CHECK(n.mem_refused);
    n.mem_refused = 0;
    CHECK(run("return #string.rep('x', 1 << 30)") == LUA_ERRMEM);
    CHECK(run("return #string.rep('x', 1 << 10) == 1024") == LUA_OK && lua_toboolean(n.L, -1));
    lua_settop(n.L, 0);
    lua_gc(n.L, LUA_GCCOLLECT);
    CHECK(n.mem < (1 << 20));
    n.lim.memory_limit = 0;
}

static void test_instructions(void)
{
    limits_arm(&n, 0, 100000);
    CHECK(run("while true do end") == LUA_ERRRUN && n.instr_tripped);
    limits_disarm(&n);
    limits_arm(&n, 0, 100000);
    CHECK(run("while true do pcall(function() while true do end end) end") == LUA_ERRRUN);
    limits_disarm(&n);
    limits_arm(&n, 0, 100000);
    CHECK(run("local co = coroutine.wrap(function() while true do end end) while true do pcall(co) end") == LUA_ERRRUN);
    limits_disarm(&n);
    limits_arm(&n, 0, 100000);
    CHECK(run("local t <close> = setmetatable({}, {__close = function() while true do end end}) while true do end") == LUA_ERRRUN);
    limits_disarm(&n);
    limits_arm(&n, 0, 100000);
    CHECK(run("return 1") == LUA_OK && !n.instr_tripped); /* a budget not spent */
    limits_disarm(&n);
    CHECK(run_true("local s = 0 for i = 1, 1e6 do s = s + i end return s > 0")); /* no hook: no limit */
}

static void test_reset(void)
{
    CHECK(run("keep_me = 1") == LUA_OK);
    sandbox_close(&n);
    CHECK(n.mem == 0); /* the allocator saw every byte come back */
    CHECK(sandbox_open(&n) == 0);
    CHECK(run_true("return keep_me == nil"));
}

int main(void)
{
    n.lim.max_output = BX_OUTPUT_DEFAULT;
    n.fd = -1;
    CHECK(limits_install_signals() == 0);
    CHECK(sandbox_open(&n) == 0);
    test_removed();
    test_load();
    test_print();
    test_memory();
    test_instructions();
    test_reset();
    sandbox_close(&n);
    free(n.out);
    return CHECK_DONE();
}
