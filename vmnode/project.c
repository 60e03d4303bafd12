/* project.c - expression mode, project files and mocks, and get_state (see
 * project.h). The project arrives once in the init frame and lives for the
 * node's life (a reset keeps it, as it keeps the limits). */
#include "project.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "textcodec.h"

#define BASELINE_KEY "bioxen.baseline"
#define PROJECT_PATH_MAX 512

static struct {
    json_t *files;      /* {"/a/b.lua": source} (owned), or NULL */
    json_t *mocks;      /* {"name": value} (owned), or NULL */
} proj;

/* ---- expression mode ------------------------------------------------------ */

struct parts {
    const char *p[2];
    size_t len[2];
    int i;
};

/* lua_Reader over the parts in order: the prefix is not copied into code */
static const char *read_parts(lua_State *L, void *ud, size_t *size)
{
    struct parts *r = ud;
    (void)L;
    while (r->i < 2) {
        int k = r->i++;
        if (r->len[k]) {
            *size = r->len[k];
            return r->p[k];
        }
    }
    *size = 0;
    return NULL;
}

int project_load_chunk(lua_State *L, const char *code, size_t len, const char *chunkname,
                       int expr)
{
    if (expr) {
        struct parts r = { { "return ", code }, { 7, len }, 0 };
        int st = lua_load(L, read_parts, &r, chunkname, "t");
        if (st != LUA_ERRSYNTAX)
            return st;  /* compiled, or out of memory: no second try */
        lua_pop(L, 1);
    }
    return luaL_loadbufferx(L, code, len, chunkname, "t");
}

/* ---- files and mocks -------------------------------------------------------- */

int project_configure(json_t *project, char *err, size_t errlen)
{
    if (!project)
        return 0;
    json_t *files = json_object_get(project, "files"), *mocks = json_object_get(project, "mocks");
    if (!json_is_object(project) || (files && !json_is_object(files)) ||
        (mocks && !json_is_object(mocks))) {
        snprintf(err, errlen, "project must be {\"files\": {...}, \"mocks\": {...}}");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(files, key, v) {
        if (!json_is_string(v)) {
            snprintf(err, errlen, "project file %.200s must be a string", key);
            return -1;
        }
    }
    proj.files = files ? json_incref(files) : json_object();
    proj.mocks = mocks ? json_incref(mocks) : NULL;
    return 0;
}

int project_active(void)
{
    return proj.files != NULL;
}

void project_register_mocks(lua_State *L)
{
    const char *name;
    json_t *v;
    char err[256];
    json_object_foreach(proj.mocks, name, v) {
        if (json_is_null(v))
            continue;   /* nil is no module value; the manager refuses it */
        luaL_checkstack(L, 4, "mocks");
        if (conv_push_json(L, v, err, sizeof err) != BX_OK)
            luaL_error(L, "mock '%s': %s", name, err);
        lua_setfield(L, -2, name);
    }
}

/* "a.b" -> "/a/b" + suffix; 0, or -1 when name is not a module name or
 * too long (nothing else can name a project file). */
static int module_path(const char *name, const char *suffix, char *out, size_t n)
{
    size_t len = strlen(name);
    if (len == 0 || len + strlen(suffix) + 2 > n || strspn(name,
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") != len)
        return -1;
    out[0] = '/';
    for (size_t i = 0; i <= len; i++)
        out[i + 1] = name[i] == '.' ? '/' : name[i];
    strcat(out, suffix);
    return 0;
}

int project_find(const char *name, const char **src, size_t *len, const char **path)
{
    static char buf[PROJECT_PATH_MAX];
    static const char *const suffixes[] = { ".lua", "/init.lua" };
    if (!proj.files)
        return 0;
    for (int i = 0; i < 2; i++) {
        json_t *f;
        if (module_path(name, suffixes[i], buf, sizeof buf) < 0)
            return 0;
        if ((f = json_object_get(proj.files, buf))) {
            *src = json_string_value(f);
            *len = json_string_length(f);
            *path = buf;
            return 1;
        }
    }
    return 0;
}

/* ---- get_state ---------------------------------------------------------- */

void project_baseline(lua_State *L)
{
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {       /* base, G, key, value */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);          /* base[key] = value */
    }
    lua_pop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, BASELINE_KEY);
}

/* A global the user made: a string key that is valid JSON text, a data
 * value, and not the very value the sandbox put under that name. Stack:
 * base, G, key, value. */
static int user_global(lua_State *L)
{
    size_t len;
    int t = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || t == LUA_TFUNCTION || t == LUA_TUSERDATA ||
        t == LUA_TLIGHTUSERDATA || t == LUA_TTHREAD)
        return 0;
    const char *k = lua_tolstring(L, -2, &len);
    if (strlen(k) != len || !textcodec_utf8_valid(k, len))
        return 0;
    lua_pushvalue(L, -2);
    lua_rawget(L, -5);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 1);
    return !same;
}

json_t *project_op_get_state(bx_node *n, json_t *req, json_t *id)
{
    lua_State *L = n->L;
    char err[256];
    (void)req;
    /* nothing here runs Lua code or allocates in the Lua heap (raw reads,
     * lua_next), so no limits need arming */
    if (!lua_checkstack(L, 8))
        return proto_error_new(id, BX_E_INTERNAL, "Lua stack exhausted");
    json_t *out = json_object();
    int top = lua_gettop(L);
    lua_getfield(L, LUA_REGISTRYINDEX, BASELINE_KEY);
    if (!lua_istable(L, -1)) {
        lua_settop(L, top);
        json_decref(out);
        return proto_error_new(id, BX_E_INTERNAL, "the state has no baseline of globals");
    }
    lua_pushglobaltable(L);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        json_t *v;
        if (user_global(L)) {
            enum bx_err e = conv_to_json(L, -1, &v, err, sizeof err);
            if (e != BX_OK) {
                json_t *r = proto_error_new(id, e, "global '%.100s': %s", lua_tostring(L, -2), err);
                json_decref(out);
                lua_settop(L, top);
                return r;
            }
            json_object_set_new(out, lua_tostring(L, -2), v);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    /* each value is bounded, their sum is not: the reply must fit a frame */
    if (json_dumpb(out, NULL, 0, JSON_COMPACT) > BX_VALUE_BYTES_MAX) {
        json_decref(out);
        return proto_error_new(id, BX_E_CONVERSION_ERROR, "the state is over %zu bytes of JSON",
                               (size_t)BX_VALUE_BYTES_MAX);
    }
    return proto_reply_new(id, out);
}
