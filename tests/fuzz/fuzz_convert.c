/* fuzz_convert.c - libFuzzer target for the node's Lua <-> JSON value
 * conversion (convert.h: lua2json.c, json2lua.c, textcodec.c), in a real
 * sandboxed state (sandbox.c, limits.c).
 * The first byte picks a mode:
 *   'j'  the rest is a JSON value: pushed as a call argument, a list of
 *        arguments and a globals object, as the node's ops do;
 *   'l'  the rest is Lua code, run under an instruction budget and a memory
 *        limit; its results are converted;
 *   'b'  the rest is a little program of table-building ops (cycles, NaN,
 *        bytes, deep nesting, functions, threads as keys and values);
 *   other bytes pick one of these by value.
 * Whatever converts to JSON must survive the wire (dump, parse, equal) and
 * come back into Lua, and convert again to the same JSON ($map pair order
 * aside); only a $t placeholder may refuse to come back. run.sh builds
 * it with a small BX_VALUE_BYTES_MAX so shared-table blow-ups stay fast. */
#include "convert.h"
#include "textcodec.h"
#include "node.h"

#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define MEM_LIMIT ((size_t)8 << 20)
#define INSTR_LIMIT 20000

static bx_node node;

/* ---- canonical JSON: $map pairs sorted, so pair order does not matter --- */

typedef struct sorted_pair {
    char *text;
    json_t *pair;
} sorted_pair;

static int cmp_pair(const void *a, const void *b)
{
    return strcmp(((const sorted_pair *)a)->text, ((const sorted_pair *)b)->text);
}

/* A canonical copy of j (new reference). Recursion is bounded: j comes
 * from conv_to_json, which stops at BX_VALUE_DEPTH_MAX tables. */
static json_t *canon(json_t *j)
{
    json_t *map = json_object_size(j) == 1 ? json_object_get(j, "$map") : NULL, *v, *out;
    const char *key;
    size_t i;
    if (json_is_array(map)) {
        size_t n = json_array_size(map);
        sorted_pair *ps = calloc(n + 1, sizeof *ps);
        CHECK(ps);
        for (i = 0; i < n; i++) {
            json_t *pair = json_array_get(map, i);
            ps[i].pair = json_pack("[o,o]", canon(json_array_get(pair, 0)),
                                   canon(json_array_get(pair, 1)));
            ps[i].text = json_dumps(ps[i].pair, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            CHECK(ps[i].pair && ps[i].text);
        }
        qsort(ps, n, sizeof *ps, cmp_pair);
        json_t *arr = json_array();
        for (i = 0; i < n; i++) {
            json_array_append_new(arr, ps[i].pair);
            free(ps[i].text);
        }
        free(ps);
        return json_pack("{s:o}", "$map", arr);
    }
    if (json_is_array(j)) {
        out = json_array();
        json_array_foreach(j, i, v)
            json_array_append_new(out, canon(v));
        return out;
    }
    if (json_is_object(j)) {
        out = json_object();
        json_object_foreach(j, key, v)
            json_object_set_new_nocheck(out, key, canon(v));
        return out;
    }
    return json_incref(j);
}

static int has_placeholder(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_object_size(j) == 1 && json_object_get(j, "$t"))
        return 1;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            if (has_placeholder(v))
                return 1;
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v)
            if (has_placeholder(v))
                return 1;
    }
    return 0;
}

/* ---- checks --------------------------------------------------------------- */

/* A value the node sends, inside a reply frame, must parse back equal. */
static void check_wire(json_t *value)
{
    char err[160];
    size_t len;
    json_t *id = json_integer(1);
    json_t *reply = proto_reply_new(id, json_incref(value));
    json_decref(id);
    char *s = proto_dump(reply, &len);
    CHECK(s && !memchr(s, '\n', len - 1));
    json_t *back = proto_parse(s, len - 1, err, sizeof err);
    CHECK(back && json_equal(back, reply));
    json_decref(back);
    json_decref(reply);
    free(s);
}

/* Converts the Lua value at idx to JSON, back into Lua and to JSON again. */
static void roundtrip(lua_State *L, int idx)
{
    char err[256];
    json_t *j1 = NULL, *j2 = NULL;
    int top = lua_gettop(L);
    enum bx_err e = conv_to_json(L, idx, &j1, err, sizeof err);
    CHECK(lua_gettop(L) == top);
    CHECK(e == BX_OK || e == BX_E_CONVERSION_ERROR);
    if (e != BX_OK)
        return;
    check_wire(j1);
    e = conv_push_value_p(L, j1, err, sizeof err);
    if (e == BX_E_MEMORY_LIMIT) {
        CHECK(lua_gettop(L) == top);
    } else if (e == BX_E_CONVERSION_ERROR) {
        CHECK(lua_gettop(L) == top && has_placeholder(j1));
    } else {
        CHECK(e == BX_OK && lua_gettop(L) == top + 1);
        CHECK(conv_to_json(L, -1, &j2, err, sizeof err) == BX_OK);
        json_t *a = canon(j1), *b = canon(j2);
        CHECK(json_equal(a, b));
        json_decref(a);
        json_decref(b);
        json_decref(j2);
        lua_settop(L, top);
    }
    json_decref(j1);
}

/* textcodec_utf8_valid must agree with Jansson, and textcodec_json must
 * always give valid UTF-8 that keeps valid input unchanged. */
static void check_text(const char *s, size_t len)
{
    json_t *strict = json_stringn(s, len);
    CHECK(!strict == !textcodec_utf8_valid(s, len));
    json_t *t = textcodec_json(s, len);
    CHECK(t && textcodec_utf8_valid(json_string_value(t), json_string_length(t)));
    CHECK(!strict || json_equal(strict, t));
    json_decref(strict);
    json_decref(t);
}

/* ---- modes ----------------------------------------------------------------- */

static void mode_json(lua_State *L, const char *p, size_t n)
{
    char err[256];
    int count, top = lua_gettop(L);
    check_text(p, n);
    json_t *v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    if (!v)
        return;
    enum bx_err e = conv_push_value_p(L, v, err, sizeof err);
    CHECK(e == BX_OK || e == BX_E_CONVERSION_ERROR || e == BX_E_MEMORY_LIMIT);
    CHECK(lua_gettop(L) == top + (e == BX_OK));
    if (e == BX_OK)
        roundtrip(L, -1);
    lua_settop(L, top);
    if (json_is_array(v)) {
        e = conv_push_list_p(L, v, &count, err, sizeof err);
        CHECK(e == BX_OK || e == BX_E_CONVERSION_ERROR || e == BX_E_MEMORY_LIMIT);
        CHECK(e != BX_OK || (size_t)count == json_array_size(v));
        CHECK(lua_gettop(L) == top + (e == BX_OK ? count : 0));
        lua_settop(L, top);
    }
    if (json_is_object(v)) {
        e = conv_set_globals_p(L, v, err, sizeof err);
        CHECK(e == BX_OK || e == BX_E_CONVERSION_ERROR || e == BX_E_MEMORY_LIMIT);
        CHECK(lua_gettop(L) == top);
        if (e == BX_OK) {
            const char *key;
            size_t klen;
            json_t *item;
            json_object_keylen_foreach(v, key, klen, item) {
                lua_pushglobaltable(L);
                lua_pushlstring(L, key, klen);
                lua_rawget(L, -2);
                roundtrip(L, -1);
                lua_settop(L, top);
            }
        }
    }
    json_decref(v);
}

static void mode_lua(lua_State *L, const char *p, size_t n)
{
    int top = lua_gettop(L);
    /* limits_disarm clears ITIMER_REAL, which is libFuzzer's -timeout clock */
    struct itimerval fuzz_timer;
    getitimer(ITIMER_REAL, &fuzz_timer);
    limits_arm(&node, 0, INSTR_LIMIT);
    int st = luaL_loadbufferx(L, p, n, "=fuzz", "t");
    if (st == LUA_OK)
        st = lua_pcall(L, 0, LUA_MULTRET, 0);
    limits_disarm(&node);
    setitimer(ITIMER_REAL, &fuzz_timer, NULL);
    if (st != LUA_OK) {
        lua_settop(L, top);
        return;
    }
    for (int i = top + 1; i <= lua_gettop(L) && i <= top + 16; i++)
        roundtrip(L, i);
    lua_settop(L, top);
}

typedef struct prog {
    const unsigned char *p;
    size_t n, i;
} prog;

static unsigned next_byte(prog *g)
{
    return g->i < g->n ? g->p[g->i++] : 0;
}

/* Ops 0-3 and 7-9: push one new value, read from the program. */
static void build_push(lua_State *L, prog *g, unsigned op)
{
    unsigned b;
    switch (op) {
    case 0: lua_newtable(L); break;
    case 1:
        b = next_byte(g);
        lua_pushinteger(L, b == 0x7f ? LUA_MAXINTEGER : b == 0x80 ? LUA_MININTEGER : (int8_t)b);
        break;
    case 2: {
        double d = 0;
        unsigned char raw[8];
        for (int i = 0; i < 8; i++)
            raw[i] = (unsigned char)next_byte(g);
        memcpy(&d, raw, sizeof d);
        lua_pushnumber(L, d);
        break;
    }
    case 3: {
        size_t len = next_byte(g) % 32;
        if (len > g->n - g->i)
            len = g->n - g->i;
        lua_pushlstring(L, (const char *)g->p + g->i, len);
        g->i += len;
        break;
    }
    case 7: lua_pushboolean(L, next_byte(g) & 1); break;
    case 8: lua_pushcfunction(L, lua_gettop); break;
    case 9: lua_newthread(L); break;
    }
}

/* A valid table key: neither nil nor NaN. */
static int is_key(lua_State *L, int idx)
{
    return !lua_isnil(L, idx) && !(lua_type(L, idx) == LUA_TNUMBER && isnan(lua_tonumber(L, idx)));
}

/* Ops 4-6: store into a table on the stack (6 may make a cycle). */
static void build_store(lua_State *L, prog *g, unsigned op, int top)
{
    unsigned b;
    switch (op) {
    case 4: /* t[k] = v */
        if (top >= 3 && lua_istable(L, -3) && is_key(L, -2))
            lua_rawset(L, -3);
        else
            lua_settop(L, top > 0 ? top - 1 : 0);
        break;
    case 5: /* append v */
        if (top >= 2 && lua_istable(L, -2))
            lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        else
            lua_settop(L, top > 0 ? top - 1 : 0);
        break;
    case 6: /* t.c = some stack value: itself or an ancestor makes a cycle */
        b = next_byte(g);
        if (top >= 1 && lua_istable(L, -1)) {
            lua_pushstring(L, b & 1 ? "c" : "$b");
            lua_pushvalue(L, 1 + (int)(b >> 1) % top);
            lua_rawset(L, -3);
        }
        break;
    }
}

/* Ops 10-13: wrap, key, copy or drop the top value. */
static void build_shape(lua_State *L, prog *g, unsigned op, int top)
{
    unsigned b;
    switch (op) {
    case 10: /* wrap the top value in up to 255 tables */
        b = next_byte(g);
        if (top >= 1)
            for (unsigned k = 0; k < b; k++) {
                lua_createtable(L, 1, 0);
                lua_insert(L, -2);
                lua_rawseti(L, -2, 1);
            }
        break;
    case 11: /* use the top value as a key of a fresh table */
        if (top >= 1 && is_key(L, -1)) {
            lua_newtable(L);
            lua_insert(L, -2);
            lua_pushinteger(L, (lua_Integer)next_byte(g));
            lua_rawset(L, -3);
        }
        break;
    case 12:
        if (top >= 1)
            lua_pushvalue(L, 1 + (int)next_byte(g) % top);
        break;
    case 13:
        if (top >= 1)
            lua_pop(L, 1);
        break;
    }
}

/* One building op; values live on the Lua stack (at most 64). */
static void build_op(lua_State *L, prog *g)
{
    int top = lua_gettop(L);
    unsigned op = next_byte(g) % 14;
    if (top >= 64 && op != 4 && op != 5 && op != 13)
        op = 13;
    if (op >= 10)
        build_shape(L, g, op, top);
    else if (op >= 4 && op <= 6)
        build_store(L, g, op, top);
    else
        build_push(L, g, op);
}

static int build_all(lua_State *L)
{
    prog *g = lua_touserdata(L, 1);
    lua_settop(L, 0);
    luaL_checkstack(L, 80, "building");
    while (g->i < g->n)
        build_op(L, g);
    return lua_gettop(L);
}

static void mode_build(lua_State *L, const char *p, size_t n)
{
    prog g = { (const unsigned char *)p, n, 0 };
    int top = lua_gettop(L);
    lua_pushcfunction(L, build_all);
    lua_pushlightuserdata(L, &g);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK) {
        lua_settop(L, top);
        return;
    }
    for (int i = top + 1; i <= lua_gettop(L); i++)
        roundtrip(L, i);
    lua_settop(L, top);
}

/* ---- driver --------------------------------------------------------------- */

/* Pattern matching is Lua's own code and can take very long without running
 * a single VM instruction; it is not what this target is about. */
static void drop_slow_functions(lua_State *L)
{
    static const char *const slow[] = { "find", "match", "gmatch", "gsub", "rep", NULL };
    lua_getglobal(L, "string");
    for (int i = 0; slow[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, slow[i]);
    }
    lua_pop(L, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    memset(&node, 0, sizeof node);
    node.lim.memory_limit = MEM_LIMIT;
    node.lim.max_output = 4096;
    node.fd = -1;
    if (sandbox_open(&node) < 0)
        return 0;
    lua_State *L = node.L;
    drop_slow_functions(L);
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    int mode = data[0] == 'j' ? 0 : data[0] == 'l' ? 1 : data[0] == 'b' ? 2 : data[0] % 3;
    if (mode == 0)
        mode_json(L, p, n);
    else if (mode == 1)
        mode_lua(L, p, n);
    else
        mode_build(L, p, n);
    CHECK(lua_gettop(L) == 0);
    sandbox_close(&node);
    CHECK(node.mem == 0);   /* the counting allocator saw every free */
    free(node.out);
    json_decref(node.cb_msg);
    return 0;
}
