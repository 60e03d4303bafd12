/* lua2json.c - Lua -> JSON, conv_to_json (contract in convert.h): picks
 * each table's shape, walks with an explicit stack of frames, and charges
 * every value against the size caps before it is built. */
#include "convert.h"
#include "textcodec.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lframe {
    json_t *dst;
    int kind;
    int tslot;          /* the table's stack slot; its iteration key above */
    const void *ptr;    /* identity, for cycle detection */
    lua_Integer i, n;
    json_t *pair;       /* K_MAP: pair whose value is still to convert */
} lframe;

typedef struct lctx {
    lua_State *L;
    lframe f[BX_VALUE_DEPTH_MAX + 1];
    int nf;
    size_t bytes;       /* a lower bound of the JSON text produced so far */
    size_t values, max_values;
    char *err;
    size_t errlen;
    enum bx_err rc;
} lctx;

static int lfail(lctx *c, enum bx_err rc, const char *msg)
{
    c->rc = rc;
    snprintf(c->err, c->errlen, "%s", msg);
    return -1;
}

static json_t *number_json(lua_State *L, int idx)
{
    if (lua_isinteger(L, idx))
        return json_integer((json_int_t)lua_tointeger(L, idx));
    double d = lua_tonumber(L, idx);
    if (isnan(d))
        return json_pack("{s:s}", "$f", "nan");
    if (isinf(d))
        return json_pack("{s:s}", "$f", d > 0 ? "inf" : "-inf");
    return json_real(d);
}

/* The length json2lua.c noted for the table at t (convert.h), or 0. */
static lua_Integer arraylen_declared(lua_State *L, int t)
{
    lua_Integer d = 0;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &conv_arraylen_key) == LUA_TTABLE) {
        lua_pushvalue(L, t);
        if (lua_rawget(L, -2) == LUA_TNUMBER)
            d = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return d;
}

/* Picks the JSON shape of the table at t (see the Values table); for an
 * array, *seqlen gets its length. */
static int table_kind(lua_State *L, int t, lua_Integer *seqlen)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, t), d = arraylen_declared(L, t), k;
    size_t count = 0;
    int all_seq = 1, all_str = 1, dollar = 0, all_decl = d > 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        count++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            all_seq = all_decl = 0;
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            /* Jansson refuses to parse a NUL in an object key, so such a
             * key would make a frame the manager cannot read */
            if (all_str && (!textcodec_utf8_valid(s, len) || memchr(s, '\0', len)))
                all_str = 0;
            if (len > 0 && s[0] == '$')
                dollar = 1;
            continue;
        }
        all_str = 0;
        k = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
        if (k < 1 || k > n)
            all_seq = 0;
        if (k < 1 || k > d)
            all_decl = 0;
    }
    *seqlen = all_decl ? d : n;
    if (all_decl)
        return K_ARRAY;
    if (count == 0)
        return K_OBJECT;
    if (all_seq && (lua_Integer)count == n)
        return K_ARRAY;
    /* a one-key object whose key starts with '$' would read as a tag */
    if (all_str && !(count == 1 && dollar))
        return K_OBJECT;
    return K_MAP;
}

/* A tree of values cannot hold more values than the heap has 16-byte
 * slots; more means tables shared over and over, whose expansion in C
 * would escape the Lua memory limit. */
static size_t max_values(lua_State *L)
{
    int kb = lua_gc(L, LUA_GCCOUNT, 0), b = lua_gc(L, LUA_GCCOUNTB, 0);
    if (kb < 0 || b < 0)
        return (size_t)-1;
    return ((size_t)kb * 1024 + (size_t)b) / 16 + 64;
}

/* Counts one value and at least n bytes of JSON text; -1 past a cap. */
static int charge(lctx *c, size_t n, int value)
{
    c->bytes += n;
    c->values += value;
    if (c->bytes <= BX_VALUE_BYTES_MAX && c->values <= c->max_values)
        return 0;
    c->rc = BX_E_CONVERSION_ERROR;
    if (c->bytes > BX_VALUE_BYTES_MAX)
        snprintf(c->err, c->errlen, "value too large to send (over %zu bytes of JSON)",
                 (size_t)BX_VALUE_BYTES_MAX);
    else
        snprintf(c->err, c->errlen, "value too large to send (tables shared too many times over)");
    return -1;
}

/* Converts the value on top of the stack. A scalar is popped; a table stays
 * as the slot of a new frame (with its iteration key pushed above it). */
static int value_take(lctx *c, json_t **out)
{
    lua_State *L = c->L;
    int top = lua_gettop(L);
    json_t *j = NULL;
    size_t slen = 0;
    if (lua_type(L, top) == LUA_TSTRING)
        lua_tolstring(L, top, &slen);
    /* every value takes a byte and a separator; a string at least itself */
    if (charge(c, 2 + slen, 1) < 0)
        return -1;
    switch (lua_type(L, top)) {
    case LUA_TNIL: j = json_null(); break;
    case LUA_TBOOLEAN: j = json_boolean(lua_toboolean(L, top)); break;
    case LUA_TNUMBER: j = number_json(L, top); break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, top, &len);
        j = textcodec_utf8_valid(s, len) ? json_stringn_nocheck(s, len) : textcodec_b64_tag(s, len);
        break;
    }
    case LUA_TTABLE: {
        const void *p = lua_topointer(L, top);
        for (int i = 0; i < c->nf; i++)
            if (c->f[i].ptr == p)
                return lfail(c, BX_E_CONVERSION_ERROR, "cannot convert a table that contains itself (cycle)");
        if (c->nf >= BX_VALUE_DEPTH_MAX)
            return lfail(c, BX_E_CONVERSION_ERROR, "tables nested deeper than 100 levels");
        if (!lua_checkstack(L, 8))
            return lfail(c, BX_E_CONVERSION_ERROR, "Lua stack overflow while converting");
        lframe *f = &c->f[c->nf];
        memset(f, 0, sizeof *f);
        f->kind = table_kind(L, top, &f->n);
        f->dst = f->kind == K_OBJECT ? json_object() : json_array();
        /* a $map's pairs go into the array inside its tag object */
        json_t *whole = f->kind == K_MAP ? json_pack("{s:o}", "$map", f->dst) : f->dst;
        if (!f->dst || !whole)
            return lfail(c, BX_E_INTERNAL, "out of memory");
        f->tslot = top;
        f->ptr = p;
        lua_pushnil(L);
        c->nf++;
        *out = whole;
        return 0;
    }
    default: /* function, userdata, thread: a placeholder, not an error */
        j = json_pack("{s:s}", "$t", luaL_typename(L, top));
        break;
    }
    lua_pop(L, 1);
    if (!j)
        return lfail(c, BX_E_INTERNAL, "out of memory");
    *out = j;
    return 0;
}

/* Adds the next entry of frame f, or drops f when it is complete; 0, or -1
 * on failure. */
static int frame_step(lctx *c, lframe *f)
{
    lua_State *L = c->L;
    json_t *j;
    if (f->pair) { /* a table key was filled: now its value, on top */
        json_t *pair = f->pair;
        f->pair = NULL;
        if (value_take(c, &j) < 0)
            return -1;
        return json_array_append_new(pair, j) < 0 ? lfail(c, BX_E_INTERNAL, "out of memory") : 0;
    }
    if (f->kind == K_ARRAY) {
        if (f->i >= f->n)
            return conv_frame_pop(L, f->tslot, &c->nf);
        if (lua_rawgeti(L, f->tslot, ++f->i) == LUA_TNIL) {
            /* a hole in a declared length: text to charge ("null,"), but
             * no Lua object, so not one of the values the heap bounds */
            lua_pop(L, 1);
            if (charge(c, 5, 0) < 0)
                return -1;
            j = json_null();
        } else if (value_take(c, &j) < 0) {
            return -1;
        }
        return json_array_append_new(f->dst, j) < 0 ? lfail(c, BX_E_INTERNAL, "out of memory") : 0;
    }
    if (!lua_next(L, f->tslot))
        return conv_frame_pop(L, f->tslot, &c->nf);
    if (f->kind == K_OBJECT) {
        size_t klen;
        const char *k = lua_tolstring(L, -2, &klen); /* a string: no conversion */
        if (charge(c, klen + 3, 0) < 0 || value_take(c, &j) < 0)
            return -1;
        return json_object_setn_new_nocheck(f->dst, k, klen, j) < 0 ? lfail(c, BX_E_INTERNAL, "out of memory") : 0;
    }
    json_t *pair = json_array();
    if (!pair || json_array_append_new(f->dst, pair) < 0)
        return lfail(c, BX_E_INTERNAL, "out of memory");
    lua_pushvalue(L, -2);
    int before = c->nf;
    if (value_take(c, &j) < 0)
        return -1;
    if (json_array_append_new(pair, j) < 0)
        return lfail(c, BX_E_INTERNAL, "out of memory");
    if (c->nf > before) { /* key is a table: its value waits below it */
        f->pair = pair;
        return 0;
    }
    if (value_take(c, &j) < 0)
        return -1;
    return json_array_append_new(pair, j) < 0 ? lfail(c, BX_E_INTERNAL, "out of memory") : 0;
}

enum bx_err conv_to_json(lua_State *L, int idx, json_t **out, char *err, size_t errlen)
{
    lctx *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return BX_E_INTERNAL;
    }
    c->L = L;
    c->nf = 0;
    c->bytes = 0;
    c->values = 0;
    c->max_values = max_values(L);
    c->err = err;
    c->errlen = errlen;
    c->rc = BX_OK;
    int base = lua_gettop(L);
    json_t *root = NULL;
    if (!lua_checkstack(L, 8)) {
        free(c);
        snprintf(err, errlen, "Lua stack overflow while converting");
        return BX_E_CONVERSION_ERROR;
    }
    lua_pushvalue(L, idx);
    int rc = value_take(c, &root);
    while (rc == 0 && c->nf > 0)
        rc = frame_step(c, &c->f[c->nf - 1]);
    lua_settop(L, base);
    enum bx_err e = c->rc;
    free(c);
    if (rc < 0) {
        json_decref(root);
        return e;
    }
    *out = root;
    return BX_OK;
}
