/* json2lua.c - JSON -> Lua, conv_push_json and its protected forms
 * (contract in convert.h): reads the $ tags, walks with an explicit stack
 * of frames, and sets raw fields only (no metamethod runs). */
#include "convert.h"
#include "textcodec.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define JFRAMES (2 * BX_VALUE_DEPTH_MAX + 8)

typedef struct jframe {
    json_t *src;        /* array (K_ARRAY, K_MAP) or object (K_OBJECT) */
    int kind;
    int tslot;
    int depth;
    size_t i;
    void *iter;
    int holes;          /* K_ARRAY: a null was met, its length is noted */
} jframe;

typedef struct jctx {
    lua_State *L;
    jframe f[JFRAMES];
    int nf;
    char *err;
    size_t errlen;
} jctx;

/* The one walk context. A walk never nests: it sets raw fields only (no
 * metamethod), runs no Lua instruction (no hook fires) and no finalizer
 * (the sandbox refuses __gc and the node's userdata have none), so nothing
 * can convert again until it returns or raises. Kept for the process's
 * life, it cannot leak when the walk raises (a memory error past the limit
 * would otherwise lose a malloc'd context outside the Lua heap each time). */
static jctx walk;

const char conv_arraylen_key = 'n';

/* Notes n as the declared length of the table at slot t, which came from a
 * JSON array with nulls, in the registry's weak-keyed side table (created
 * on first use). Scripts see neither the side table nor any mark on t. */
static void arraylen_note(lua_State *L, int t, size_t n)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &conv_arraylen_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &conv_arraylen_key);
    }
    lua_pushvalue(L, t);
    lua_pushinteger(L, (lua_Integer)n);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

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
        if (textcodec_b64_push(L, json_string_value(arg), json_string_length(arg)) < 0)
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
    f->holes = 0;
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

/* Fills one entry of frame f, or drops f when it is complete; 0, or -1 on
 * failure. */
static int jstep(jctx *c, jframe *f)
{
    lua_State *L = c->L;
    int kind;
    if (f->kind == K_MAP) {
        if (f->i >= json_array_size(f->src))
            return conv_frame_pop(L, f->tslot, &c->nf);
        return jstep_map(c, f);
    }
    if (f->kind == K_ARRAY) {
        if (f->i >= json_array_size(f->src))
            return conv_frame_pop(L, f->tslot, &c->nf);
        json_t *v = json_array_get(f->src, f->i++);
        if (push_json(c, v, f->depth + 1, &kind) < 0)
            return -1;
        if (!f->holes && lua_isnil(L, -1)) {
            f->holes = 1;
            arraylen_note(L, f->tslot, json_array_size(f->src));
        }
        if (kind >= 0)
            lua_pushvalue(L, -1);
        lua_rawseti(L, f->tslot, (lua_Integer)f->i);
        return kind >= 0 ? jframe_push(c, v, kind, lua_gettop(L), f->depth + 1) : 0;
    }
    if (!f->iter)
        return conv_frame_pop(L, f->tslot, &c->nf);
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
    jctx *c = &walk;
    int kind, base = lua_gettop(L), rc;
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
    while (rc == 0 && c->nf > 0)
        rc = lua_checkstack(L, 8) ? jstep(c, &c->f[c->nf - 1])
                                  : jfail(c, "Lua stack overflow while converting%s", NULL);
    if (rc < 0) {
        lua_settop(L, base);
        return BX_E_CONVERSION_ERROR;
    }
    return BX_OK;
}

/* ---- protected entry points ----------------------------------------------
 * conv_push_json allocates and so may raise; these run it under lua_pcall
 * and turn a raise into a code. */

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
