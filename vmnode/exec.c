/* exec.c - runs one request against the node's Lua state and builds its
 * reply: exec, call, exists, set_globals, get_global, reset, stats, and the
 * mapping of Lua failures to wire error codes. Called by main.c. */
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "convert.h"
#include "coded.h"
#include "netlib.h"
#include "policy.h"
#include "project.h"
#include "stream.h"

#define TB_KEY "bioxen.traceback"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Reads an optional non-negative number field; -1 if present but bad. */
static int opt_number(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(d >= 0) || isinf(d))
        return -1;
    *out = d;
    return 1;
}

int exec_parse_limits(json_t *limits, bx_limits *lim, char *err, size_t errlen)
{
    static const char *const names[] = { "memory_limit", "instruction_limit", "timeout", "cpu_limit", "max_output" };
    double v[5] = { 0, 0, 0, 0, 0 };
    memset(lim, 0, sizeof *lim);
    lim->max_output = BX_OUTPUT_DEFAULT;
    if (!limits || json_is_null(limits))
        return 0;
    if (!json_is_object(limits)) {
        snprintf(err, errlen, "limits must be an object");
        return -1;
    }
    for (int i = 0; i < 5; i++) {
        if (opt_number(limits, names[i], &v[i]) < 0) {
            snprintf(err, errlen, "limits.%s must be a non-negative number", names[i]);
            return -1;
        }
    }
    lim->memory_limit = v[0] > 9e18 ? (size_t)9e18 : (size_t)v[0];
    lim->instruction_limit = v[1] > 9e18 ? (long long)9e18 : (long long)v[1];
    lim->timeout = v[2];
    lim->cpu_limit = v[3] > 1e9 ? (long long)1e9 : (long long)ceil(v[3]);
    if (v[4] >= 1)
        lim->max_output = v[4] > 9e18 ? (size_t)9e18 : (size_t)v[4];
    return 0;
}

/* ---- request frame: limits armed, output captured --------------------- */

typedef struct run {
    bx_node *n;
    json_t *id;
    int base;       /* stack top before the request */
    double t0;
} run;

static int run_begin(run *r, bx_node *n, json_t *id, json_t *req, json_t **reply)
{
    double timeout = n->lim.timeout, instr = (double)n->lim.instruction_limit;
    if (req && (opt_number(req, "timeout", &timeout) < 0 || opt_number(req, "instruction_limit", &instr) < 0)) {
        *reply = proto_error_new(id, BX_E_BAD_REQUEST, "timeout and instruction_limit must be non-negative numbers");
        return -1;
    }
    r->n = n;
    r->id = id;
    r->base = lua_gettop(n->L);
    sandbox_output_reset(n);
    n->mem_refused = 0;
    r->t0 = now_ms();
    coded_clear(n->L);
    limits_arm(n, timeout, instr > 9e18 ? (long long)9e18 : (long long)instr);
    return 0;
}

static void run_end(run *r)
{
    bx_node *n = r->n;
    /* garbage of a script stopped by the limit would otherwise sit there
     * until the heap doubles again; collect it while the hooks still stop
     * any finalizer that loops */
    if (n->mem_refused)
        lua_gc(n->L, LUA_GCCOLLECT);
    limits_disarm(n);
    lua_settop(n->L, r->base);
    if (n->cb_msg) {
        json_decref(n->cb_msg);
        n->cb_msg = NULL;
    }
}

static void add_output(bx_node *n, json_t *obj)
{
    json_object_set_new(obj, "output", conv_text_json(n->out ? n->out : "", n->out_len));
    if (n->out_truncated)
        json_object_set_new(obj, "output_truncated", json_true());
}

/* ---- errors ------------------------------------------------------------- */

/* Message handler: records the traceback, keeps the error object as is
 * (it is turned to text later, under the limits). */
static int msgh(lua_State *L)
{
    luaL_traceback(L, L, NULL, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
    lua_settop(L, 1);
    return 1;
}

static int tostring_p(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static json_t *capped_text(const char *s, size_t len)
{
    return conv_text_json(s, len > BX_ERRTEXT_MAX ? BX_ERRTEXT_MAX : len);
}

/* The error object at idx as JSON text. A hostile __tostring may raise,
 * loop or allocate, so it runs protected with the hooks still armed. */
static json_t *error_text(bx_node *n, int idx)
{
    lua_State *L = n->L;
    size_t len;
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &len);
        return capped_text(s, len);
    }
    limits_arm_budget(n, 100000);
    /* like lua.c's msghandler: only numbers and __tostring make text */
    int has_tostring = lua_type(L, idx) == LUA_TNUMBER ||
        (lua_checkstack(L, 4) && luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL && (lua_pop(L, 1), 1));
    if (has_tostring && lua_checkstack(L, 4)) {
        lua_pushcfunction(L, tostring_p);
        lua_pushvalue(L, idx);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
            const char *s = lua_tolstring(L, -1, &len);
            json_t *j = capped_text(s, len);
            lua_pop(L, 1);
            return j;
        }
        lua_pop(L, 1);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "(error object is a %s value)", luaL_typename(L, idx));
    return json_string(buf);
}

static int is_mem_message(lua_State *L, int idx)
{
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    return s && strstr(s, "not enough memory") != NULL;
}

/* Builds the error reply for a failed load/pcall (error object on top). */
static json_t *fail_reply(run *r, int status, int loading)
{
    bx_node *n = r->n;
    lua_State *L = n->L;
    enum bx_err code;
    json_t *msg = NULL;
    if (limits_timed_out()) {
        code = BX_E_TIMEOUT;
        msg = json_sprintf("execution exceeded the %gs timeout", n->req_timeout);
    } else if (n->instr_tripped) {
        code = BX_E_INSTRUCTION_LIMIT;
        msg = json_sprintf("instruction limit of %lld exceeded", n->req_instr);
    } else if (status == LUA_ERRMEM || (n->mem_refused && (status == LUA_ERRERR || is_mem_message(L, -1)))) {
        code = BX_E_MEMORY_LIMIT;
        msg = n->lim.memory_limit ? json_sprintf("memory limit of %zu bytes exceeded", n->lim.memory_limit)
                                  : json_string("out of memory (the node's address-space limit)");
    } else if (loading && status == LUA_ERRSYNTAX) {
        code = BX_E_SYNTAX_ERROR;
        msg = error_text(n, -1);
    } else {
        /* LUA_ERROR unless C raised this very error with a code (coded.h):
         * a net policy refusal, a mailbox send to a missing name */
        code = coded_take(L, -1);
        msg = error_text(n, -1);
    }
    json_t *reply = proto_error_new(r->id, code, "%s", "");
    json_t *err = json_object_get(reply, "error");
    json_object_set_new(err, "message", msg ? msg : json_string("error"));
    add_output(n, err);
    if (code == BX_E_LUA_ERROR) {
        lua_getfield(L, LUA_REGISTRYINDEX, TB_KEY);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            json_object_set_new(err, "traceback", capped_text(s, len));
        }
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TB_KEY);
    n->errors++;
    n->hdr = (bx_hdr){ .on = 1, .code = code };
    return reply;
}

/* Builds the result reply from the values above stack slot first. */
static json_t *ok_reply(run *r, int first)
{
    bx_node *n = r->n;
    lua_State *L = n->L;
    char err[256];
    json_t *values = json_array();
    for (int i = first; i <= lua_gettop(L); i++) {
        json_t *j;
        enum bx_err e = conv_to_json(L, i, &j, err, sizeof err);
        if (e != BX_OK) {
            json_decref(values);
            json_t *reply = proto_error_new(r->id, e, "return value %d: %s", i - first + 1, err);
            add_output(n, json_object_get(reply, "error"));
            n->errors++;
            return reply;
        }
        json_array_append_new(values, j);
    }
    json_t *res = json_object();
    json_object_set_new(res, "values", values);
    add_output(n, res);
    /* reply.c appends duration_ms and mem_bytes to the result */
    n->hdr = (bx_hdr){ .on = 1, .code = BX_OK, .ms = now_ms() - r->t0, .mem = n->mem };
    return proto_reply_new(r->id, res);
}

/* ---- ops ---------------------------------------------------------------- */

typedef json_t *(*op_fn)(bx_node *n, json_t *req, json_t *id);

static json_t *op_exec(bx_node *n, json_t *req, json_t *id)
{
    json_t *jcode = json_object_get(req, "code"), *jname = json_object_get(req, "chunkname"), *reply;
    json_t *jexpr = json_object_get(req, "expr");
    if (!json_is_string(jcode) || (jname && !json_is_string(jname)) || (jexpr && !json_is_boolean(jexpr)))
        return proto_error_new(id, BX_E_BAD_REQUEST, "exec needs a string \"code\" (and an optional string \"chunkname\" and boolean \"expr\")");
    run r;
    if (run_begin(&r, n, id, req, &reply) < 0)
        return reply;
    int streamed = stream_requested(req);
    if (streamed)
        stream_begin(n, id);
    lua_State *L = n->L;
    n->executions++;
    lua_pushcfunction(L, msgh);
    int st = project_load_chunk(L, json_string_value(jcode), json_string_length(jcode),
                                jname ? json_string_value(jname) : "=exec", json_is_true(jexpr));
    if (st != LUA_OK)
        reply = fail_reply(&r, st, 1);
    else if ((st = streamed ? stream_pcall(L, TB_KEY) : lua_pcall(L, 0, LUA_MULTRET, r.base + 1)) != LUA_OK ||
             limits_tripped(n))
        reply = fail_reply(&r, st, 0);
    else
        reply = ok_reply(&r, r.base + 2);
    if (streamed)
        stream_end();
    run_end(&r);
    return reply;
}

/* Pushes the value at a dotted name, walking tables from the globals with
 * raw reads (no metamethod runs). Pushes nil when a step is missing. */
static void walk_name(lua_State *L, const char *name)
{
    lua_pushglobaltable(L);
    for (const char *p = name;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            lua_pushnil(L);
            return;
        }
        lua_pushlstring(L, p, len);
        lua_rawget(L, -2);
        lua_remove(L, -2);
        if (!dot)
            return;
        p = dot + 1;
    }
}

typedef struct call_job {
    const char *fn;
    json_t *args;
    enum bx_err rc;
    char err[256];
    int nargs;
} call_job;

static int call_prepare(lua_State *L)
{
    call_job *j = lua_touserdata(L, 1);
    lua_pop(L, 1);
    walk_name(L, j->fn);
    if (!lua_isfunction(L, -1) && !luaL_getmetafield(L, -1, "__call")) {
        j->rc = BX_E_LUA_ERROR;
        return luaL_error(L, "'%s' is not a function", j->fn);
    }
    lua_settop(L, 1); /* drop a __call field pushed by the check */
    size_t i;
    json_t *a;
    json_array_foreach(j->args, i, a) {
        luaL_checkstack(L, 8, "too many arguments");
        if ((j->rc = conv_push_json(L, a, j->err, sizeof j->err)) != BX_OK)
            return luaL_error(L, "argument %d: %s", (int)i + 1, j->err);
        j->nargs++;
    }
    return 1 + j->nargs;
}

static json_t *op_call(bx_node *n, json_t *req, json_t *id)
{
    json_t *jfn = json_object_get(req, "fn"), *args = json_object_get(req, "args"), *reply;
    if (!json_is_string(jfn) || (args && !json_is_array(args)))
        return proto_error_new(id, BX_E_BAD_REQUEST, "call needs a string \"fn\" and an array \"args\"");
    json_t *none = args ? NULL : json_array();
    call_job job = { .fn = json_string_value(jfn), .args = args ? args : none };
    run r;
    if (run_begin(&r, n, id, req, &reply) < 0) {
        json_decref(none);
        return reply;
    }
    lua_State *L = n->L;
    n->executions++;
    lua_pushcfunction(L, msgh);
    lua_pushcfunction(L, call_prepare);
    lua_pushlightuserdata(L, &job);
    int st = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (st != LUA_OK && job.rc == BX_E_CONVERSION_ERROR) {
        reply = proto_error_new(id, BX_E_CONVERSION_ERROR, "%s", lua_tostring(L, -1));
        n->errors++;
    } else if (st != LUA_OK) {
        reply = fail_reply(&r, st, 0);
    } else if ((st = lua_pcall(L, job.nargs, LUA_MULTRET, r.base + 1)) != LUA_OK || limits_tripped(n)) {
        reply = fail_reply(&r, st, 0);
    } else {
        reply = ok_reply(&r, r.base + 2);
    }
    run_end(&r);
    json_decref(none);
    return reply;
}

static int lookup_p(lua_State *L)
{
    walk_name(L, lua_touserdata(L, 1));
    return 1;
}

/* Looks a dotted name up under the VM's limits; the value is left on top.
 * Returns NULL, or an error reply. */
static json_t *lookup(run *r, json_t *req, const char *field)
{
    json_t *jname = json_object_get(req, field);
    bx_node *n = r->n;
    if (!json_is_string(jname))
        return proto_error_new(r->id, BX_E_BAD_REQUEST, "a string \"%s\" is required", field);
    lua_pushcfunction(n->L, lookup_p);
    lua_pushlightuserdata(n->L, (void *)json_string_value(jname));
    int st = lua_pcall(n->L, 1, 1, 0);
    return st == LUA_OK ? NULL : fail_reply(r, st, 0);
}

static json_t *op_exists(bx_node *n, json_t *req, json_t *id)
{
    run r;
    json_t *reply;
    if (run_begin(&r, n, id, NULL, &reply) < 0)
        return reply;
    if (!(reply = lookup(&r, req, "fn")))
        reply = proto_reply_new(id, json_boolean(lua_isfunction(n->L, -1)));
    run_end(&r);
    return reply;
}

static json_t *op_get_global(bx_node *n, json_t *req, json_t *id)
{
    run r;
    json_t *reply;
    if (run_begin(&r, n, id, NULL, &reply) < 0)
        return reply;
    if (!(reply = lookup(&r, req, "name"))) {
        char err[256];
        json_t *v;
        enum bx_err e = conv_to_json(n->L, -1, &v, err, sizeof err);
        reply = e == BX_OK ? proto_reply_new(id, v) : proto_error_new(id, e, "%s", err);
    }
    run_end(&r);
    return reply;
}

static json_t *op_set_globals(bx_node *n, json_t *req, json_t *id)
{
    json_t *g = json_object_get(req, "globals"), *reply;
    if (!json_is_object(g))
        return proto_error_new(id, BX_E_BAD_REQUEST, "set_globals needs an object \"globals\"");
    run r;
    if (run_begin(&r, n, id, NULL, &reply) < 0)
        return reply;
    char err[256];
    enum bx_err e = conv_set_globals_p(n->L, g, err, sizeof err);
    reply = e == BX_OK ? proto_reply_new(id, json_true()) : proto_error_new(id, e, "%s", err);
    run_end(&r);
    return reply;
}

static json_t *op_reset(bx_node *n, json_t *req, json_t *id)
{
    (void)req;
    sandbox_close(n);
    if (sandbox_open(n) < 0)
        return proto_error_new(id, BX_E_INTERNAL, "cannot build a fresh Lua state");
    return proto_reply_new(id, json_true());
}

/* /proc/self/statm stays open from init: a fully isolated node may read
 * the fds it holds but open nothing new. */
static int statm_fd = -1;

void exec_open_statm(void)
{
    if (statm_fd < 0)
        statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
}

static long long rss_bytes(void)
{
    char buf[128];
    long long size = 0, rss = 0;
    ssize_t k = statm_fd >= 0 ? pread(statm_fd, buf, sizeof buf - 1, 0) : -1;
    if (k <= 0)
        return 0;
    buf[k] = 0;
    if (sscanf(buf, "%lld %lld", &size, &rss) != 2)
        rss = 0;
    return rss * sysconf(_SC_PAGESIZE);
}

static json_t *op_stats(bx_node *n, json_t *req, json_t *id)
{
    struct rusage ru;
    (void)req;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    json_t *res = json_pack("{s:i, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:f}",
        "pid", n->host_pid, "mem_bytes", (json_int_t)n->mem,
        "mem_limit", (json_int_t)n->lim.memory_limit, "cpu_ms", cpu,
        "rss_bytes", (json_int_t)rss_bytes(), "executions", (json_int_t)n->executions,
        "errors", (json_int_t)n->errors, "instructions_limit", (json_int_t)n->lim.instruction_limit,
        "timeout", n->lim.timeout);
    return proto_reply_new(id, res);
}

static int net_register_p(lua_State *L)
{
    netlib_register(L, lua_touserdata(L, 1));
    return 0;
}

/* The host asked for networking on a VM created without it: load LuaSocket
 * and `net` into the live state, keeping its globals (reset keeps it too). */
static json_t *op_net_enable(bx_node *n, json_t *req, json_t *id)
{
    (void)req;
    if (n->networked)
        return proto_reply_new(id, json_true());
    if (n->full_isolation)  /* the manager refuses this first; LuaSocket's files are out of reach */
        return proto_error_new(id, BX_E_ISOLATION, "a fully isolated VM cannot turn networking on");
    if (limits_net_files() < 0)
        return proto_error_new(id, BX_E_INTERNAL, "cannot raise the open-file limit: %s",
                               strerror(errno));
    lua_pushcfunction(n->L, net_register_p);
    lua_pushlightuserdata(n->L, n);
    if (lua_pcall(n->L, 1, 0, 0) != LUA_OK) {
        json_t *e = proto_error_new(id, BX_E_INTERNAL, "cannot load networking: %s",
                                    lua_isstring(n->L, -1) ? lua_tostring(n->L, -1) : "?");
        lua_pop(n->L, 1);
        return e;
    }
    n->networked = 1;
    return proto_reply_new(id, json_true());
}

static const struct {
    const char *name;
    op_fn fn;
} ops[] = {
    { "exec", op_exec },
    { "call", op_call },
    { "exists", op_exists },
    { "get_global", op_get_global },
    { "set_globals", op_set_globals },
    { "reset", op_reset },
    { "stats", op_stats },
    { "net_enable", op_net_enable },
    { "set_policy", policy_op_set },
    { "get_state", project_op_get_state },
};

json_t *exec_request(bx_node *n, json_t *req, json_t *id, const char *op)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, op) == 0)
            return ops[i].fn(n, req, id);
    return proto_error_new(id, BX_E_UNKNOWN_OP, "unknown op '%.64s'", op);
}
