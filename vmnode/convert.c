/* convert.c - Lua <-> JSON value conversion (see convert.h for the contract).
 * Called by exec.c (results, args, globals), callback.c and test_convert.c. */
#include "convert.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- text helpers ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t n;
    unsigned v;
    if (c < 0x80)
        return 1;
    if (c < 0xC2 || c > 0xF4)
        return 0;
    n = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (len < n)
        return 0;
    v = c & (0x3F >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    return n;
}

int conv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

json_t *conv_text_json(const char *s, size_t len)
{
    if (conv_utf8_valid(s, len))
        return json_stringn_nocheck(s, len);
    char *buf = malloc(len * 3 + 1);
    if (!buf)
        return NULL;
    size_t o = 0, i = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (n) {
            memcpy(buf + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn_nocheck(buf, o);
    free(buf);
    return j;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *b64_tag(const char *s, size_t len)
{
    size_t olen = (len + 2) / 3 * 4;
    char *o = malloc(olen + 1);
    if (!o)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t j = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = p[i] << 16 | (i + 1 < len ? p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        o[j++] = b64[v >> 18 & 63];
        o[j++] = b64[v >> 12 & 63];
        o[j++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        o[j++] = i + 2 < len ? b64[v & 63] : '=';
    }
    json_t *str = json_stringn_nocheck(o, j);
    free(o);
    return str ? json_pack("{s:o}", "$b", str) : NULL;
}

static int b64_val(int c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Decodes base64 (padding optional) into a Lua string on the stack. */
static int b64_push(lua_State *L, const char *s, size_t len)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            luaL_addchar(&b, (char)(acc >> bits & 0xFF));
        }
    }
    luaL_pushresult(&b);
    return 0;
}

/* ---- Lua -> JSON --------------------------------------------------------- */

enum { K_ARRAY, K_OBJECT, K_MAP };

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

/* Picks the JSON shape of the table at t (see the Values table). */
static int table_kind(lua_State *L, int t, lua_Integer *seqlen)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, t);
    size_t count = 0;
    int all_seq = 1, all_str = 1, dollar = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        count++;
        if (lua_type(L, -1) == LUA_TSTRING) {
            all_seq = 0;
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            /* Jansson refuses to parse a NUL in an object key, so such a
             * key would make a frame the manager cannot read */
            if (all_str && (!conv_utf8_valid(s, len) || memchr(s, '\0', len)))
                all_str = 0;
            if (len > 0 && s[0] == '$')
                dollar = 1;
        } else {
            all_str = 0;
            lua_Integer k;
            if (!lua_isinteger(L, -1) || (k = lua_tointeger(L, -1)) < 1 || k > n)
                all_seq = 0;
        }
    }
    *seqlen = n;
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
        j = conv_utf8_valid(s, len) ? json_stringn_nocheck(s, len) : b64_tag(s, len);
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

/* Adds the next entry of frame f; 0 on progress, 1 when f is done. */
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
            return 1;
        lua_rawgeti(L, f->tslot, ++f->i);
        if (value_take(c, &j) < 0)
            return -1;
        return json_array_append_new(f->dst, j) < 0 ? lfail(c, BX_E_INTERNAL, "out of memory") : 0;
    }
    if (!lua_next(L, f->tslot))
        return 1;
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
    while (rc == 0 && c->nf > 0) {
        lframe *f = &c->f[c->nf - 1];
        int r = frame_step(c, f);
        if (r < 0)
            rc = -1;
        else if (r == 1) {
            lua_settop(L, f->tslot - 1);
            c->nf--;
        }
    }
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

/* ---- JSON -> Lua --------------------------------------------------------- */

#define JFRAMES (2 * BX_VALUE_DEPTH_MAX + 8)

typedef struct jframe {
    json_t *src;        /* array (K_ARRAY, K_MAP) or object (K_OBJECT) */
    int kind;
    int tslot;
    int depth;
    size_t i;
    void *iter;
} jframe;

typedef struct jctx {
    lua_State *L;
    jframe f[JFRAMES];
    int nf;
    char *err;
    size_t errlen;
} jctx;

static int jfail(jctx *c, const char *fmt, const char *what)
{
    snprintf(c->err, c->errlen, fmt, what ? what : "");
    return -1;
}

/* Reads a one-key "$..." object; returns its tag name or NULL. */
static const char *tag_of(json_t *v, json_t **arg)
{
    if (json_object_size(v) != 1)
        return NULL;
    void *it = json_object_iter(v);
    const char *k = json_object_iter_key(it);
    if (k[0] != '$')
        return NULL;
    *arg = json_object_iter_value(it);
    return k;
}

/* Pushes v; a container becomes an empty table and *kind says which. */
static int push_json(jctx *c, json_t *v, int depth, int *kind)
{
    lua_State *L = c->L;
    json_t *arg;
    const char *tag;
    (void)depth; /* containers are checked when their frame is pushed */
    *kind = -1;
    switch (json_typeof(v)) {
    case JSON_NULL: lua_pushnil(L); return 0;
    case JSON_TRUE: lua_pushboolean(L, 1); return 0;
    case JSON_FALSE: lua_pushboolean(L, 0); return 0;
    case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); return 0;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); return 0;
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); return 0;
    case JSON_ARRAY:
        lua_createtable(L, (int)(json_array_size(v) < 1 << 20 ? json_array_size(v) : 0), 0);
        *kind = K_ARRAY;
        return 0;
    case JSON_OBJECT: break;
    }
    tag = tag_of(v, &arg);
    if (!tag) {
        lua_createtable(L, 0, (int)(json_object_size(v) < 1 << 20 ? json_object_size(v) : 0));
        *kind = K_OBJECT;
        return 0;
    }
    if (strcmp(tag, "$f") == 0 && json_is_string(arg)) {
        const char *s = json_string_value(arg);
        if (strcmp(s, "nan") == 0) lua_pushnumber(L, NAN);
        else if (strcmp(s, "inf") == 0) lua_pushnumber(L, HUGE_VAL);
        else if (strcmp(s, "-inf") == 0) lua_pushnumber(L, -HUGE_VAL);
        else return jfail(c, "bad $f value '%s'", s);
        return 0;
    }
    if (strcmp(tag, "$b") == 0 && json_is_string(arg)) {
        if (b64_push(L, json_string_value(arg), json_string_length(arg)) < 0)
            return jfail(c, "bad base64 in $b%s", NULL);
        return 0;
    }
    if (strcmp(tag, "$map") == 0 && json_is_array(arg)) {
        lua_createtable(L, 0, (int)(json_array_size(arg) < 1 << 20 ? json_array_size(arg) : 0));
        *kind = K_MAP;
        return 0;
    }
    if (strcmp(tag, "$t") == 0)
        return jfail(c, "a %s placeholder cannot be sent back into Lua",
                     json_is_string(arg) ? json_string_value(arg) : "$t");
    return jfail(c, "unknown or malformed tag '%s'", tag);
}

static int jframe_push(jctx *c, json_t *v, int kind, int slot, int depth)
{
    if (depth > BX_VALUE_DEPTH_MAX || c->nf >= JFRAMES)
        return jfail(c, "values nested deeper than 100 levels%s", NULL);
    jframe *f = &c->f[c->nf++];
    f->src = kind == K_MAP ? json_object_get(v, "$map") : v;
    f->kind = kind;
    f->tslot = slot;
    f->depth = depth;
    f->i = 0;
    f->iter = kind == K_OBJECT ? json_object_iter(v) : NULL;
    return 0;
}

static int jstep_map(jctx *c, jframe *f)
{
    lua_State *L = c->L;
    json_t *pair = json_array_get(f->src, f->i++);
    int kk, vk;
    if (!json_is_array(pair) || json_array_size(pair) != 2)
        return jfail(c, "$map entries must be [key, value] pairs%s", NULL);
    json_t *k = json_array_get(pair, 0), *v = json_array_get(pair, 1);
    if (push_json(c, k, f->depth + 1, &kk) < 0)
        return -1;
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1))))
        return jfail(c, "a $map key cannot be nil or NaN%s", NULL);
    if (push_json(c, v, f->depth + 1, &vk) < 0)
        return -1;
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, f->tslot);
    int top = lua_gettop(L), d = f->depth + 1;
    if (kk >= 0 && vk >= 0)
        return jframe_push(c, k, kk, top - 1, d) < 0 ? -1 : jframe_push(c, v, vk, top, d);
    if (kk >= 0) {
        lua_pop(L, 1);
        return jframe_push(c, k, kk, top - 1, d);
    }
    if (vk >= 0) {
        lua_remove(L, -2);
        return jframe_push(c, v, vk, top - 1, d);
    }
    lua_pop(L, 2);
    return 0;
}

/* Fills one entry of frame f; 0 on progress, 1 when f is done. */
static int jstep(jctx *c, jframe *f)
{
    lua_State *L = c->L;
    int kind;
    if (f->kind == K_MAP) {
        if (f->i >= json_array_size(f->src))
            return 1;
        return jstep_map(c, f);
    }
    if (f->kind == K_ARRAY) {
        if (f->i >= json_array_size(f->src))
            return 1;
        json_t *v = json_array_get(f->src, f->i++);
        if (push_json(c, v, f->depth + 1, &kind) < 0)
            return -1;
        if (kind >= 0)
            lua_pushvalue(L, -1);
        lua_rawseti(L, f->tslot, (lua_Integer)f->i);
        return kind >= 0 ? jframe_push(c, v, kind, lua_gettop(L), f->depth + 1) : 0;
    }
    if (!f->iter)
        return 1;
    void *it = f->iter;
    f->iter = json_object_iter_next(f->src, it);
    json_t *v = json_object_iter_value(it);
    lua_pushlstring(L, json_object_iter_key(it), json_object_iter_key_len(it));
    if (push_json(c, v, f->depth + 1, &kind) < 0)
        return -1;
    if (kind >= 0) {
        lua_pushvalue(L, -1);
        lua_insert(L, -3);
    }
    lua_rawset(L, f->tslot);
    return kind >= 0 ? jframe_push(c, v, kind, lua_gettop(L), f->depth + 1) : 0;
}

enum bx_err conv_push_json(lua_State *L, json_t *v, char *err, size_t errlen)
{
    jctx *c = malloc(sizeof *c);
    int kind, base = lua_gettop(L), rc;
    if (!c)
        return luaL_error(L, "not enough memory");
    c->L = L;
    c->nf = 0;
    c->err = err;
    c->errlen = errlen;
    luaL_checkstack(L, 8, "converting a value");
    rc = push_json(c, v, 1, &kind);
    if (rc == 0 && kind >= 0) {
        lua_pushvalue(L, -1);
        rc = jframe_push(c, v, kind, lua_gettop(L), 1);
    }
    while (rc == 0 && c->nf > 0) {
        jframe *f = &c->f[c->nf - 1];
        if (!lua_checkstack(L, 8)) {
            rc = jfail(c, "Lua stack overflow while converting%s", NULL);
            break;
        }
        int r = jstep(c, f);
        if (r < 0)
            rc = -1;
        else if (r == 1) {
            lua_settop(L, f->tslot - 1);
            c->nf--;
        }
    }
    free(c);
    if (rc < 0) {
        lua_settop(L, base);
        return BX_E_CONVERSION_ERROR;
    }
    return BX_OK;
}

/* ---- protected entry points ---------------------------------------------- */

enum { PJ_VALUE, PJ_LIST, PJ_GLOBALS };

typedef struct pjob {
    json_t *v;
    int mode;
    int count;
    enum bx_err rc;
    char *err;
    size_t errlen;
} pjob;

static int pjob_run(lua_State *L)
{
    pjob *p = lua_touserdata(L, 1);
    lua_pop(L, 1);
    if (p->mode == PJ_VALUE) {
        p->rc = conv_push_json(L, p->v, p->err, p->errlen);
        p->count = p->rc == BX_OK;
        return p->count;
    }
    if (p->mode == PJ_LIST) {
        size_t i;
        json_t *item;
        json_array_foreach(p->v, i, item) {
            luaL_checkstack(L, 8, "too many values");
            if ((p->rc = conv_push_json(L, item, p->err, p->errlen)) != BX_OK)
                return 0;
            p->count++;
        }
        return p->count;
    }
    const char *key;
    size_t klen;
    json_t *item;
    lua_pushglobaltable(L);
    json_object_keylen_foreach(p->v, key, klen, item) {
        lua_pushlstring(L, key, klen);
        if ((p->rc = conv_push_json(L, item, p->err, p->errlen)) != BX_OK)
            return 0;
        lua_rawset(L, -3);
    }
    return 0;
}

static enum bx_err pjob_call(lua_State *L, pjob *p)
{
    p->count = 0;
    p->rc = BX_OK;
    int base = lua_gettop(L);
    lua_pushcfunction(L, pjob_run);
    lua_pushlightuserdata(L, p);
    int st = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (st == LUA_OK && p->rc == BX_OK)
        return BX_OK;
    if (st != LUA_OK) {
        const char *m = lua_tostring(L, -1);
        snprintf(p->err, p->errlen, "%s", m ? m : "error while converting");
        p->rc = st == LUA_ERRMEM ? BX_E_MEMORY_LIMIT : BX_E_CONVERSION_ERROR;
    }
    lua_settop(L, base);
    p->count = 0;
    return p->rc;
}

enum bx_err conv_push_value_p(lua_State *L, json_t *v, char *err, size_t errlen)
{
    pjob p = { .v = v, .mode = PJ_VALUE, .err = err, .errlen = errlen };
    return pjob_call(L, &p);
}

enum bx_err conv_push_list_p(lua_State *L, json_t *list, int *count, char *err, size_t errlen)
{
    pjob p = { .v = list, .mode = PJ_LIST, .err = err, .errlen = errlen };
    enum bx_err e = pjob_call(L, &p);
    *count = p.count;
    return e;
}

enum bx_err conv_set_globals_p(lua_State *L, json_t *obj, char *err, size_t errlen)
{
    pjob p = { .v = obj, .mode = PJ_GLOBALS, .err = err, .errlen = errlen };
    return pjob_call(L, &p);
}
