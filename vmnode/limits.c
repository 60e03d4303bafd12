/* limits.c - what stops a script: the limits as init and each request give
 * them, the counting allocator, the instruction budget, the timer-armed wall
 * timeout (carried into coroutines), and the process rlimits. */
#include "node.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

/* Read by the SIGALRM handler, which may only arm a hook (as lua.c's
 * laction does): lua_sethook is the one Lua call that is safe there. */
static lua_State *volatile g_L;
static lua_State *volatile g_running;
static volatile sig_atomic_t g_timed_out;

/* How many instructions pass between two budget checks. A count hook costs
 * the same whatever its period, so a short period only adds C calls. */
#define BX_INSTR_PERIOD 1000

/* ---- the limits from the wire ---------------------------------------------- */

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

int limits_parse(json_t *limits, bx_limits *lim, char *err, size_t errlen)
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

int limits_parse_request(const bx_limits *lim, json_t *req, double *timeout, long long *instr)
{
    double t = lim->timeout, i = (double)lim->instruction_limit;
    if (req && (opt_number(req, "timeout", &t) < 0 || opt_number(req, "instruction_limit", &i) < 0))
        return -1;
    *timeout = t;
    *instr = i > 9e18 ? (long long)9e18 : (long long)i;
    return 0;
}

/* ---- the allocator and the hooks ------------------------------------------- */

void *limits_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    bx_node *n = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        n->mem -= old;
        return NULL;
    }
    /* refuse growth only: Lua assumes shrinking never fails */
    if (nsize > old && n->lim.memory_limit && !n->mem_unlimited &&
        n->mem - old + nsize > n->lim.memory_limit) {
        n->mem_refused = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        n->mem_refused = 1; /* the address-space backstop said no */
        return NULL;
    }
    n->mem = n->mem - old + nsize;
    return p;
}

static int instr_period(long long left)
{
    return left < BX_INSTR_PERIOD ? (int)(left > 0 ? left : 1) : BX_INSTR_PERIOD;
}

static void limits_hook(lua_State *L, lua_Debug *ar);

static void trip(lua_State *L)
{
    lua_State *main = g_L;
    lua_sethook(L, limits_hook, LUA_MASKCOUNT, 1);
    if (main && main != L)
        lua_sethook(main, limits_hook, LUA_MASKCOUNT, 1);
}

/* Raises while a limit is tripped, on every instruction, so pcall, xpcall,
 * coroutines and __close handlers cannot swallow the error for good. */
static void limits_hook(lua_State *L, lua_Debug *ar)
{
    bx_node *n = node_of(L);
    (void)ar;
    if (n->cork_len)
        link_flush(n);  /* a dead link is found by the next read or send */
    if (!g_timed_out && !n->instr_tripped && n->req_instr == 0 && !n->hook_budget) {
        lua_sethook(L, NULL, 0, 0);     /* only limits_arm_flush's hook */
        return;
    }
    if (g_timed_out) {
        trip(L);
        luaL_error(L, "timeout: wall-clock limit exceeded");
    }
    if (!n->instr_tripped && n->req_instr > 0) {
        n->instr_left -= lua_gethookcount(L);
        if (n->instr_left > 0) {
            int p = instr_period(n->instr_left);
            if (p != lua_gethookcount(L))
                lua_sethook(L, limits_hook, LUA_MASKCOUNT, p);
            return;
        }
    }
    n->instr_tripped = 1;
    trip(L);
    luaL_error(L, "instruction limit exceeded");
}

static void on_alarm(int sig)
{
    lua_State *L = g_L, *co = g_running;
    (void)sig;
    g_timed_out = 1;
    if (L)
        lua_sethook(L, limits_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
    if (co)
        lua_sethook(co, limits_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

int limits_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a callback's blocking read must wake */
    if (sigaction(SIGALRM, &sa, NULL) < 0)
        return -1;
    /* RLIMIT_FSIZE is 0: a write to a log file must fail, not kill us */
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void limits_set_state(lua_State *L)
{
    g_L = L;
    g_running = NULL;
}

lua_State *limits_set_running(lua_State *co)
{
    lua_State *prev = g_running;
    g_running = co;
    return prev;
}

int limits_timed_out(void)
{
    return g_timed_out;
}

int limits_tripped(bx_node *n)
{
    return g_timed_out || n->instr_tripped;
}

void limits_charge_thread(lua_State *L)
{
    bx_node *n = node_of(L);
    if (n->req_instr > 0 && !n->instr_tripped)
        n->instr_left -= lua_gethookcount(L);
}

void limits_pass_hook(lua_State *from, lua_State *to)
{
    lua_Hook h = lua_gethook(from);
    int mask = lua_gethookmask(from), count = lua_gethookcount(from);
    if (lua_gethook(to) != h || lua_gethookmask(to) != mask || lua_gethookcount(to) != count) {
        lua_sethook(to, h, mask, count);
        limits_charge_thread(to);
    }
}

void limits_arm(bx_node *n, double timeout, long long instr)
{
    n->instr_tripped = 0;
    n->hook_budget = 0;
    n->req_timeout = timeout;
    n->req_instr = instr > 0 ? instr : 0;
    n->instr_left = n->req_instr;
    if (n->req_instr > 0)
        lua_sethook(n->L, limits_hook, LUA_MASKCOUNT, instr_period(n->instr_left));
    if (timeout > 0) {
        struct itimerval it;
        memset(&it, 0, sizeof it);
        if (timeout > 1e9) /* casting 1e300 to time_t is undefined */
            timeout = 1e9;
        double s = floor(timeout);
        it.it_value.tv_sec = (time_t)s;
        it.it_value.tv_usec = (suseconds_t)((timeout - s) * 1e6);
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
            it.it_value.tv_usec = 1;
        setitimer(ITIMER_REAL, &it, NULL);
    }
}

void limits_disarm(bx_node *n)
{
    struct itimerval it;
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_REAL, &it, NULL);
    g_timed_out = 0;
    g_running = NULL;
    n->instr_tripped = 0;
    n->req_instr = 0;
    n->hook_budget = 0;
    if (n->L)
        lua_sethook(n->L, NULL, 0, 0);
}

/* Where no limit runs a hook: a flush hook (limits_arm_flush) gives way. */
static int hook_free(bx_node *n, lua_State *L)
{
    return lua_gethook(L) == NULL ||
           (!g_timed_out && !n->instr_tripped && n->req_instr == 0 && !n->hook_budget);
}

void limits_arm_budget(bx_node *n, int count)
{
    if (hook_free(n, n->L)) {
        n->hook_budget = 1;
        lua_sethook(n->L, limits_hook, LUA_MASKCOUNT, count);
    }
}

void limits_arm_flush(lua_State *L)
{
    lua_State *main = g_L;
    if (lua_gethook(L) == NULL)
        lua_sethook(L, limits_hook, LUA_MASKCOUNT, BX_INSTR_PERIOD);
    /* a coroutine may yield before its hook fires: the main state's flushes */
    if (main && main != L && lua_gethook(main) == NULL)
        lua_sethook(main, limits_hook, LUA_MASKCOUNT, BX_INSTR_PERIOD);
}

void limits_trip_now(bx_node *n)
{
    n->instr_tripped = 1;
    lua_sethook(n->L, limits_hook, LUA_MASKCOUNT, 1);
}

static int set_limit(int res, rlim_t soft, rlim_t hard, const char *what, char *err, size_t errlen)
{
    struct rlimit rl = { .rlim_cur = soft, .rlim_max = hard };
    if (setrlimit(res, &rl) == 0)
        return 0;
    snprintf(err, errlen, "setrlimit(%s): %s", what, strerror(errno));
    return -1;
}

int limits_apply_rlimits(const bx_limits *lim, int networked, char *err, size_t errlen)
{
    /* networked VMs hold a few hundred sockets (netlib.c polls up to 512) */
    /* The hard limit leaves room for the host to turn networking on later
     * (net_enable); the script itself can never call setrlimit. */
    rlim_t files = networked ? BX_NET_FILES : 64;
#ifdef BX_ASAN
    /* a sanitizer's report must reach its log file (dev.sh's log_path):
     * with FSIZE 0 it would be an empty file, the report lost */
    rlim_t fsize = RLIM_INFINITY;
#else
    rlim_t fsize = 0;
#endif
    if (set_limit(RLIMIT_NPROC, 0, 0, "NPROC", err, errlen) < 0 ||
        set_limit(RLIMIT_NOFILE, files, BX_NET_FILES, "NOFILE", err, errlen) < 0 ||
        set_limit(RLIMIT_FSIZE, fsize, fsize, "FSIZE", err, errlen) < 0 ||
        set_limit(RLIMIT_CORE, 0, 0, "CORE", err, errlen) < 0)
        return -1;
    if (lim->cpu_limit > 0 &&
        set_limit(RLIMIT_CPU, (rlim_t)lim->cpu_limit, (rlim_t)lim->cpu_limit + 1, "CPU", err, errlen) < 0)
        return -1;
#ifndef BX_ASAN
    /* a backstop for what the counting allocator cannot see (Jansson, the
     * output buffer); ASan reserves terabytes of address space, so skip it */
    rlim_t as = lim->memory_limit > ((size_t)1 << 40) ? RLIM_INFINITY / 8 : (rlim_t)lim->memory_limit * 4;
    if (as < ((rlim_t)256 << 20))
        as = (rlim_t)256 << 20;
    as += (rlim_t)256 << 20;
    if (set_limit(RLIMIT_AS, as, as, "AS", err, errlen) < 0)
        return -1;
#endif
    return 0;
}

int limits_net_files(void)
{
    struct rlimit r = { BX_NET_FILES, BX_NET_FILES };
    return setrlimit(RLIMIT_NOFILE, &r);
}
