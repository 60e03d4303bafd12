/* test_convert.c - vmnode/convert.h (lua2json.c, json2lua.c, textcodec.c):
 * every value kind both ways, tags, bytes vs UTF-8, int vs float, NaN/inf,
 * cycles, depth, malformed tags. */
#include "convert.h"
#include "textcodec.h"
#include "check.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static lua_State *L;

/* Runs `return <expr>` and converts the result; returns compact JSON text
 * (caller frees) or "ERR:<code>". */
static char *lua_to_text(const char *expr)
{
    char code[4096], err[256];
    snprintf(code, sizeof code, "return %s", expr);
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
        lua_settop(L, 0);
        return strdup("ERR:LUA");
    }
    json_t *j = NULL;
    int top = lua_gettop(L);
    enum bx_err e = conv_to_json(L, -1, &j, err, sizeof err);
    CHECK(lua_gettop(L) == top); /* the stack is left as it was */
    lua_settop(L, 0);
    if (e != BX_OK) {
        char *s = malloc(64);
        snprintf(s, 64, "ERR:%s", bx_err_code(e));
        return s;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

static int lua_is(const char *expr, const char *want)
{
    char *got = lua_to_text(expr);
    int ok = strcmp(got, want) == 0;
    if (!ok)
        fprintf(stderr, "  %s -> %s (want %s)\n", expr, got, want);
    free(got);
    return ok;
}

/* Like lua_is, but compares parsed JSON (object key order is free). */
static int lua_is_json(const char *expr, const char *want)
{
    char *got = lua_to_text(expr);
    json_t *a = json_loads(got, JSON_DECODE_ANY, NULL), *b = json_loads(want, JSON_DECODE_ANY, NULL);
    int ok = a && b && json_equal(a, b);
    if (!ok)
        fprintf(stderr, "  %s -> %s (want %s)\n", expr, got, want);
    json_decref(a);
    json_decref(b);
    free(got);
    return ok;
}

static void test_scalars(void)
{
    CHECK(lua_is("nil", "null"));
    CHECK(lua_is("true", "true"));
    CHECK(lua_is("false", "false"));
    CHECK(lua_is("42", "42"));
    CHECK(lua_is("math.maxinteger", "9223372036854775807"));
    CHECK(lua_is("math.mininteger", "-9223372036854775808"));
    CHECK(lua_is("4.0", "4.0"));
    CHECK(lua_is("0.5", "0.5"));
    CHECK(lua_is("0/0", "{\"$f\":\"nan\"}"));
    CHECK(lua_is("1/0", "{\"$f\":\"inf\"}"));
    CHECK(lua_is("-1/0", "{\"$f\":\"-inf\"}"));
    CHECK(lua_is("'text'", "\"text\""));
    CHECK(lua_is("'h\\u{E9}llo'", "\"h\xC3\xA9llo\""));
    CHECK(lua_is("'a\\0b'", "\"a\\u0000b\""));
    CHECK(lua_is("'\\xff'", "{\"$b\":\"/w==\"}"));
    CHECK(lua_is("'\\xed\\xa0\\x80'", "{\"$b\":\"7aCA\"}")); /* a surrogate is not UTF-8 */
    CHECK(lua_is("'\\xc0\\x80'", "{\"$b\":\"wIA=\"}"));     /* overlong */
    CHECK(lua_is("print", "{\"$t\":\"function\"}"));
    CHECK(lua_is("coroutine.create(print)", "{\"$t\":\"thread\"}"));
    CHECK(lua_is("io.stdout", "{\"$t\":\"userdata\"}"));
}

static void test_tables(void)
{
    CHECK(lua_is("{}", "{}"));
    CHECK(lua_is("{1, 2, 'x'}", "[1,2,\"x\"]"));
    CHECK(lua_is("{a = 1}", "{\"a\":1}"));
    CHECK(lua_is("{[1] = 1, [3] = 3}", "{\"$map\":[[1,1],[3,3]]}")
          || lua_is("{[1] = 1, [3] = 3}", "{\"$map\":[[3,3],[1,1]]}"));
    CHECK(lua_is("{['$b'] = 1}", "{\"$map\":[[\"$b\",1]]}"));
    CHECK(lua_is_json("{['$b'] = 1, c = 2}", "{\"$b\":1,\"c\":2}"));
    CHECK(lua_is("{[true] = 'y'}", "{\"$map\":[[true,\"y\"]]}"));
    CHECK(lua_is("{[2.5] = 1}", "{\"$map\":[[2.5,1]]}"));
    CHECK(lua_is("{['\\xff'] = 1}", "{\"$map\":[[{\"$b\":\"/w==\"},1]]}"));
    CHECK(lua_is("{[{1}] = {2}}", "{\"$map\":[[[1],[2]]]}"));
    CHECK(lua_is("{[{}] = {}}", "{\"$map\":[[{},{}]]}"));
    CHECK(lua_is("{{a = {1, {}}}}", "[{\"a\":[1,{}]}]"));
    CHECK(lua_is("(function() local s = {1} return {s, s} end)()", "[[1],[1]]")); /* shared, not a cycle */
}

static void test_cycles_depth(void)
{
    CHECK(lua_is("(function() local t = {} t[1] = t return t end)()", "ERR:CONVERSION_ERROR"));
    CHECK(lua_is("(function() local t = {} t.x = {y = t} return t end)()", "ERR:CONVERSION_ERROR"));
    CHECK(lua_is("(function() local t = {} t[t] = 1 return t end)()", "ERR:CONVERSION_ERROR"));
    char *s = lua_to_text("(function() local t = {} for i = 2, 100 do t = {t} end return t end)()");
    CHECK(strncmp(s, "[[[[", 4) == 0);
    free(s);
    CHECK(lua_is("(function() local t = {} for i = 2, 101 do t = {t} end return t end)()", "ERR:CONVERSION_ERROR"));
    /* a deep chain must not recurse in C: 100k levels are refused quickly */
    CHECK(lua_is("(function() local t = {} for i = 1, 100000 do t = {t} end return t end)()", "ERR:CONVERSION_ERROR"));
    s = lua_to_text("(function() local t = {} for i = 1, 100000 do t[i] = {i} end return t end)()");
    CHECK(strncmp(s, "[[1],[2],", 9) == 0);
    free(s);
}

/* Parses json, pushes it, then checks it with a Lua predicate on `v`. */
static int json_check(const char *json, const char *pred)
{
    char err[256], code[1024];
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        return fprintf(stderr, "  bad test json %s\n", json), 0;
    enum bx_err e = conv_push_value_p(L, j, err, sizeof err);
    json_decref(j);
    if (e != BX_OK) {
        lua_settop(L, 0);
        return strcmp(pred, "ERR") == 0 ? 1 : (fprintf(stderr, "  %s: %s\n", json, err), 0);
    }
    if (strcmp(pred, "ERR") == 0)
        return lua_settop(L, 0), fprintf(stderr, "  %s converted, want an error\n", json), 0;
    lua_setglobal(L, "v");
    snprintf(code, sizeof code, "return %s", pred);
    int ok = luaL_dostring(L, code) == LUA_OK && lua_toboolean(L, -1);
    if (!ok)
        fprintf(stderr, "  %s fails %s\n", json, pred);
    lua_settop(L, 0);
    return ok;
}

static void test_from_json(void)
{
    CHECK(json_check("null", "v == nil"));
    CHECK(json_check("true", "v == true"));
    CHECK(json_check("42", "math.type(v) == 'integer' and v == 42"));
    CHECK(json_check("4.0", "math.type(v) == 'float' and v == 4"));
    CHECK(json_check("9223372036854775807", "v == math.maxinteger"));
    CHECK(json_check("{\"$f\":\"nan\"}", "v ~= v"));
    CHECK(json_check("{\"$f\":\"-inf\"}", "v == -1/0"));
    CHECK(json_check("\"a\\u0000b\"", "v == 'a\\0b'"));
    CHECK(json_check("{\"$b\":\"/w==\"}", "v == '\\xff'"));
    CHECK(json_check("{\"$b\":\"AAECAw\"}", "v == '\\0\\1\\2\\3'"));
    CHECK(json_check("[1,[2,[3]],{}]", "v[1] == 1 and v[2][2][1] == 3 and next(v[3]) == nil"));
    CHECK(json_check("{\"a\":{\"b\":[true]}}", "v.a.b[1] == true"));
    CHECK(json_check("{\"$map\":[[1,\"x\"],[true,\"y\"],[[1],[2]],[{\"$b\":\"/w==\"},3]]}",
                     "v[1] == 'x' and v[true] == 'y' and v['\\xff'] == 3"));
    CHECK(json_check("{\"$map\":[[{\"k\":1},{\"v\":2}]]}", "(function() local k, x = next(v) return k.k == 1 and x.v == 2 end)()"));
    CHECK(json_check("{\"$x\":1}", "ERR"));
    CHECK(json_check("{\"$t\":\"function\"}", "ERR"));
    CHECK(json_check("{\"$f\":\"zero\"}", "ERR"));
    CHECK(json_check("{\"$b\":\"!!\"}", "ERR"));
    CHECK(json_check("{\"$map\":[[1]]}", "ERR"));
    CHECK(json_check("{\"$map\":[[null,1]]}", "ERR"));
    CHECK(json_check("{\"$map\":[[{\"$f\":\"nan\"},1]]}", "ERR"));
    CHECK(json_check("{\"$b\":1,\"c\":2}", "v['$b'] == 1 and v.c == 2")); /* two keys: not a tag */

    /* depth: 100 nested arrays pass, 101 fail, 100k fail without recursion */
    char *deep = malloc(200005);
    for (int depth = 100; depth <= 101; depth++) {
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        deep[2 * depth] = 0;
        CHECK(json_check(deep, depth == 100 ? "type(v) == 'table'" : "ERR"));
    }
    json_t *j = json_array(), *cur = j;
    for (int i = 0; i < 100000; i++) {
        json_t *n = json_array();
        json_array_append_new(cur, n);
        cur = n;
    }
    char err[256];
    CHECK(conv_push_value_p(L, j, err, sizeof err) == BX_E_CONVERSION_ERROR);
    CHECK(lua_gettop(L) == 0);
    json_decref(j);
    free(deep);
}

static void test_round_trip(void)
{
    const char *cases[] = {
        "[1,2.5,\"x\",true,{\"$f\":\"inf\"},{\"$b\":\"/w==\"}]",
        "{\"a\":[1,{\"b\":{}}],\"c\":\"\\u00e9\"}",
        "{\"$map\":[[true,1]]}",
        "{\"$map\":[[\"$b\",1]]}",
        NULL,
    };
    for (int i = 0; cases[i]; i++) {
        char err[256];
        json_t *in = json_loads(cases[i], 0, NULL), *out = NULL;
        CHECK(in && conv_push_value_p(L, in, err, sizeof err) == BX_OK);
        CHECK(conv_to_json(L, -1, &out, err, sizeof err) == BX_OK);
        CHECK(out && json_equal(in, out));
        lua_settop(L, 0);
        json_decref(in);
        json_decref(out);
    }
    /* list and globals forms */
    char err[256];
    int count = 0;
    json_t *list = json_loads("[1,\"two\",[3]]", 0, NULL);
    CHECK(conv_push_list_p(L, list, &count, err, sizeof err) == BX_OK && count == 3 && lua_gettop(L) == 3);
    lua_settop(L, 0);
    json_decref(list);
    json_t *g = json_loads("{\"user\":\"alice\",\"n\":3}", 0, NULL);
    CHECK(conv_set_globals_p(L, g, err, sizeof err) == BX_OK);
    CHECK(luaL_dostring(L, "return user == 'alice' and n == 3") == LUA_OK && lua_toboolean(L, -1));
    lua_settop(L, 0);
    json_decref(g);
}

static void test_text(void)
{
    json_t *t = textcodec_json("ok\xff!", 4);
    CHECK(t && strcmp(json_string_value(t), "ok\xEF\xBF\xBD!") == 0);
    json_decref(t);
    CHECK(textcodec_utf8_valid("\xF0\x9F\x98\x80", 4));
    CHECK(!textcodec_utf8_valid("\xF4\x90\x80\x80", 4)); /* past U+10FFFF */
    CHECK(!textcodec_utf8_valid("\xE2\x82", 2));         /* truncated */
}

/* Regressions found by fuzz_convert: keys Jansson cannot carry as object
 * keys, and shared subtables whose tree expansion is exponential. */
static void test_fuzz_regressions(void)
{
    CHECK(lua_is("{[\"a\\0b\"] = 1}", "{\"$map\":[[\"a\\u0000b\",1]]}"));
    CHECK(lua_is("(function() local t = {} for i = 1, 60 do t = {t, t} end return t end)()",
                 "ERR:CONVERSION_ERROR"));
}

/* Arrays with nulls come back with their length (convert.h); a change in
 * Lua keeps it while every key stays in 1..n. */
static void test_holes(void)
{
    const char *cases[] = {
        "[1,null,3]", "[null]", "[1,2,null]", "[null,null]", "[[null],{\"k\":[1,null]}]",
        "{\"$map\":[[[null,2],1]]}", NULL,
    };
    char err[256];
    for (int i = 0; cases[i]; i++) {
        json_t *in = json_loads(cases[i], 0, NULL), *out = NULL;
        CHECK(in && conv_push_value_p(L, in, err, sizeof err) == BX_OK);
        CHECK(conv_to_json(L, -1, &out, err, sizeof err) == BX_OK);
        CHECK(out && json_equal(in, out));
        lua_settop(L, 0);
        json_decref(in);
        json_decref(out);
    }
    CHECK(json_check("[1,null,3]", "getmetatable(v) == nil and #v == 3 and v[2] == nil"));
    json_t *g = json_loads("{\"h\":[null,2,null]}", 0, NULL);
    CHECK(conv_set_globals_p(L, g, err, sizeof err) == BX_OK);
    json_decref(g);
    CHECK(lua_is("h", "[null,2,null]"));
    CHECK(lua_is("(function() h[1] = 1 h[2] = nil return h end)()", "[1,null,null]"));
    CHECK(lua_is("(function() h[4] = 4 return h end)()", "{\"$map\":[[1,1],[4,4]]}"));
    CHECK(lua_is("(function() h[4] = nil return h end)()", "[1,null,null]"));
    CHECK(lua_is("(function() local t = {} for k, x in pairs(h) do t[k] = x end return t end)()", "[1]"));
    CHECK(lua_is("{1, nil, 3}", "{\"$map\":[[1,1],[3,3]]}"));  /* Lua's own: unchanged */
}

/* A counting allocator with a limit, like the node's (vmnode/limits.c). */
static size_t heap_used, heap_limit;
static void *limited_alloc(void *ud, void *p, size_t osize, size_t nsize)
{
    (void)ud;
    if (!p)
        osize = 0;
    if (nsize == 0) {
        heap_used -= osize;
        free(p);
        return NULL;
    }
    if (nsize > osize && heap_used + nsize - osize > heap_limit)
        return NULL;
    void *q = realloc(p, nsize);
    if (q)
        heap_used = heap_used + nsize - osize;
    return q;
}

/* A memory error in the middle of a walk leaves nothing behind: the
 * ASan build's leak check fails if a walk's context is lost. */
static void test_memory_error_mid_walk(void)
{
    heap_limit = 256 << 10;
    lua_State *S = lua_newstate(limited_alloc, NULL);
    CHECK(S != NULL);
    json_t *big = json_array();
    for (int i = 0; i < 40000; i++)
        json_array_append_new(big, i % 7 ? json_integer(i) : json_null());
    char err[256];
    for (int i = 0; i < 50; i++) {
        CHECK(conv_push_value_p(S, big, err, sizeof err) == BX_E_MEMORY_LIMIT);
        CHECK(lua_gettop(S) == 0);
    }
    json_t *small = json_loads("[1,null,3]", 0, NULL), *out = NULL;
    CHECK(conv_push_value_p(S, small, err, sizeof err) == BX_OK);
    CHECK(conv_to_json(S, -1, &out, err, sizeof err) == BX_OK && json_equal(small, out));
    json_decref(out);
    json_decref(small);
    json_decref(big);
    lua_close(S);
}

int main(void)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    test_scalars();
    test_tables();
    test_cycles_depth();
    test_from_json();
    test_round_trip();
    test_text();
    test_fuzz_regressions();
    test_holes();
    test_memory_error_mid_walk();
    lua_close(L);
    return CHECK_DONE();
}
