/* reach.c - where a networked VM's sockets may go (reach.h; the model is in
 * docs/security.md, "Network reach"). Once netlib.c has loaded
 * LuaSocket, every address-taking method of its classes is wrapped here.
 *
 * A target is resolved once, here, and the method gets the numeric address
 * that was checked, so a name cannot answer differently the second time.
 * Allowed: the policy's host:port grants (compared on the resolved address,
 * so localhost:P and 127.0.0.1:P are one grant) and the loopback addresses
 * some VM of the same manager listens on, which the manager knows because
 * every node reports its loopback binds ({"listen"}) and their closes
 * ({"unlisten"}); the node asks ({"ask":K,"reach":...}) before it connects
 * or sends to a loopback address it was not granted. */
#include "reach.h"
#include "policy.h"
#include "reachaddr.h"
#include "coded.h"
#include "mailbox.h"
#include "textcodec.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BOUND_KEY "bioxen.bound"    /* registry: socket -> its bound[] slot (weak keys) */
#define NO_LOOKUP "a name is looked up only if a grant names it; use a numeric address"
#define NOT_LISTENED "no VM of this manager listens there and no allow_tcp grant names it"

/* A loopback listener of this VM that the manager knows of. */
struct bound {
    int used, collected;    /* collected: closed by the GC, not yet reported */
    char proto[4];
    char addr[INET6_ADDRSTRLEN];
    int port;
};

static struct {
    json_int_t next_k;      /* asks count down from -1; policy.c's count up */
    int ncollected;
    struct bound bound[REACH_BOUND_MAX];
} reach;

/* ---- the manager: reports and asks ---------------------------------------- */

static void report(bx_node *n, const char *what, const struct bound *b)
{
    json_t *m = json_pack("{s:{s:s, s:s, s:i}}", what, "proto", b->proto, "addr", b->addr,
                          "port", b->port);
    if (m)
        link_send(n, m);
}

void reach_flush(bx_node *n)
{
    for (int i = 0; reach.ncollected > 0 && i < REACH_BOUND_MAX; i++) {
        struct bound *b = &reach.bound[i];
        if (b->used && b->collected) {
            report(n, "unlisten", b);
            b->used = b->collected = 0;
            reach.ncollected--;
        }
    }
    reach.ncollected = 0;
}

struct want {
    json_int_t k;
    int ok;
};

static int want_reach(json_t *msg, void *ud)
{
    struct want *w = ud;
    int is = policy_answer_is(msg, w->k);
    if (is <= 0)
        return is;
    w->ok = json_is_true(json_object_get(msg, "result"));
    return 1;
}

/* Whether some VM of the manager listens on t (proto "tcp"/"udp"). */
static int ask_listening(lua_State *L, const char *proto, const struct reach_target *t)
{
    bx_node *n = node_of(L);
    reach_flush(n);
    struct want w = { --reach.next_k, 0 };
    json_t *msg = json_pack("{s:I, s:{s:s, s:s, s:i}}", "ask", w.k, "reach", "proto", proto,
                            "addr", t->key, "port", t->port);
    if (!msg)
        luaL_error(L, "out of memory");
    if (link_send(n, msg) < 0)
        _exit(1);   /* the manager is gone */
    if (link_await(n, want_reach, &w) != 1)
        luaL_error(L, "timeout while asking the manager about %s:%d", t->key, t->port);
    return w.ok;
}

/* ---- refusals -------------------------------------------------------------- */

/* Emits SECURITY_VIOLATION and raises POLICY_VIOLATION; never returns. */
static void refuse(lua_State *L, const char *verb, const char *target, const char *reason)
{
    char what[640];
    snprintf(what, sizeof what, "%s %s refused: %s", verb, target, reason);
    /* action/target/reason as every policy refusal reports them (policy.c) */
    json_t *ev = json_pack("{s:s, s:{s:o, s:s, s:o, s:s}}", "event", "SECURITY_VIOLATION", "detail",
                           "what", textcodec_json(what, strlen(what)), "action", verb,
                           "target", textcodec_json(target, strlen(target)), "reason", reason);
    if (ev)
        link_send(node_of(L), ev);
    lua_pushstring(L, what);
    coded_raise(L, BX_E_POLICY_VIOLATION);
}

static void refuse_target(lua_State *L, const char *verb, const char *given,
                          const struct reach_target *t, const char *reason)
{
    char target[400];
    if (strcmp(given, t->use) == 0)
        snprintf(target, sizeof target, "%.200s:%d", given, t->port);
    else
        snprintf(target, sizeof target, "%.200s:%d (%.120s)", given, t->port, t->use);
    refuse(L, verb, target, reason);
}

/* ---- the guards -------------------------------------------------------------
 * Each is a closure with upvalues: the original method, the index of its
 * host argument (the port follows it), the method's name, "tcp" or "udp". */

/* Calls the original with this call's arguments, which stay below the
 * results; returns the number of results. */
static int call_original(lua_State *L)
{
    int top = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    for (int i = 1; i <= top; i++)
        lua_pushvalue(L, i);
    lua_call(L, top, LUA_MULTRET);
    return lua_gettop(L) - top;
}

/* The port argument: an integer 0-65535, as a number or decimal text. */
static int port_arg(lua_State *L, int idx)
{
    int isnum = 0;
    lua_Integer p = 0;
    if (lua_type(L, idx) == LUA_TNUMBER || lua_type(L, idx) == LUA_TSTRING)
        p = lua_tointegerx(L, idx, &isnum);
    return isnum && p >= 0 && p <= 65535 ? (int)p : -1;
}

/* Reads the host (at hi) and port (hi + 1) into t. 0; or -1 with nil and
 * the reason pushed when the name does not resolve (as LuaSocket answers
 * then). Raises on a bad argument. */
static int target_arg(lua_State *L, int hi, const char *verb, struct reach_target *t)
{
    const char *err = "host not found";
    if (lua_type(L, hi) != LUA_TSTRING && lua_type(L, hi) != LUA_TNUMBER)
        return luaL_argerror(L, hi, "address expected");
    const char *host = lua_tostring(L, hi);
    if ((t->port = port_arg(L, hi + 1)) < 0)
        return luaL_argerror(L, hi + 1, "port expected (an integer 0-65535)");
    int rc = reachaddr_resolve(host, t, &err);
    if (rc == -2)
        return luaL_error(L, "%s %s: a fully isolated VM cannot look names up; use a numeric address",
                          verb, host);
    if (rc == -3) {
        char target[300];
        snprintf(target, sizeof target, "%.200s:%d", host, t->port);
        refuse(L, verb, target, NO_LOOKUP);
    }
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return -1;
    }
    return 0;
}

/* Puts the checked address and port in place of what the script gave. */
static void use_target(lua_State *L, int hi, const char *use, int port)
{
    lua_pushstring(L, use);
    lua_replace(L, hi);
    lua_pushinteger(L, port);
    lua_replace(L, hi + 1);
}

/* connect, setpeername, sendto, socket.connect: a grant, or a loopback
 * address some VM of this manager listens on. */
static int guard_peer(lua_State *L)
{
    int hi = (int)lua_tointeger(L, lua_upvalueindex(2));
    const char *verb = lua_tostring(L, lua_upvalueindex(3));
    const char *proto = lua_tostring(L, lua_upvalueindex(4));
    if (strcmp(verb, "setpeername") == 0 && lua_type(L, hi) == LUA_TSTRING &&
        strcmp(lua_tostring(L, hi), "*") == 0)
        return call_original(L);    /* a disconnect reaches nobody */
    struct reach_target t;
    if (target_arg(L, hi, verb, &t) < 0)
        return 2;
    const char *given = lua_tostring(L, hi);
    if (!reachaddr_granted(given, &t)) {
        if (!reachaddr_loopback(t.key))
            refuse_target(L, verb, given, &t, "loopback only, beyond it an allow_tcp grant");
        if (!ask_listening(L, proto, &t))
            refuse_target(L, verb, given, &t, NOT_LISTENED);
    }
    use_target(L, hi, t.use, t.port);
    return call_original(L);
}

/* send on a connected datagram socket: a loopback peer is checked again,
 * as the VM that listened there at setpeername may have closed since (a
 * grant beyond loopback changes only with the policy: setpeername saw it). */
static int guard_send(lua_State *L)
{
    int top = lua_gettop(L), isnum = 0;
    struct reach_target t;
    luaL_checktype(L, 1, LUA_TUSERDATA);
    lua_getfield(L, 1, "getpeername");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 2);
    const char *ip = lua_tostring(L, -2);
    t.port = (int)lua_tointegerx(L, -1, &isnum);
    if (ip && isnum && reachaddr_normal(ip, t.key, sizeof t.key) == 0 && reachaddr_loopback(t.key)) {
        snprintf(t.use, sizeof t.use, "%s", ip);
        /* the ask first: a named grant would cost a lookup per datagram */
        if (!ask_listening(L, "udp", &t) && !reachaddr_granted(t.key, &t))
            refuse_target(L, "send", t.key, &t, NOT_LISTENED);
    }
    lua_settop(L, top);
    return call_original(L);
}

static int free_slot(void)
{
    for (int i = 0; i < REACH_BOUND_MAX; i++)
        if (!reach.bound[i].used)
            return i;
    return -1;
}

/* After a bind: a loopback (or wildcard, reachable on loopback) address is
 * told to the manager, and the socket remembered for its close. */
static void bound_record(lua_State *L, int slot, const char *proto)
{
    int top = lua_gettop(L), isnum;
    lua_getfield(L, 1, "getsockname");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 2);
    const char *ip = lua_tostring(L, -2);
    lua_Integer port = lua_tointegerx(L, -1, &isnum);
    struct bound *b = &reach.bound[slot];
    if (ip && isnum && reachaddr_normal(ip, b->addr, sizeof b->addr) == 0) {
        if (strcmp(b->addr, "0.0.0.0") == 0)
            snprintf(b->addr, sizeof b->addr, "127.0.0.1");
        else if (strcmp(b->addr, "::") == 0)
            snprintf(b->addr, sizeof b->addr, "::1");
        if (reachaddr_loopback(b->addr)) {
            snprintf(b->proto, sizeof b->proto, "%s", proto);
            b->port = (int)port;
            b->used = 1;
            lua_getfield(L, LUA_REGISTRYINDEX, BOUND_KEY);
            lua_pushvalue(L, 1);
            lua_pushinteger(L, slot);
            lua_rawset(L, -3);
            report(node_of(L), "listen", b);
        }
    }
    lua_settop(L, top);
}

/* bind, setsockname: loopback is free (that is how VMs serve each other);
 * any other address, the wildcard too, needs a grant. */
static int guard_bind(lua_State *L)
{
    int hi = (int)lua_tointeger(L, lua_upvalueindex(2));
    const char *verb = lua_tostring(L, lua_upvalueindex(3));
    const char *proto = lua_tostring(L, lua_upvalueindex(4));
    struct reach_target t;
    luaL_checktype(L, 1, LUA_TUSERDATA);
    if (target_arg(L, hi, verb, &t) < 0)
        return 2;
    const char *given = lua_tostring(L, hi);
    if (!reachaddr_loopback(t.key) && !reachaddr_granted(given, &t))
        refuse_target(L, verb, given, &t, "binding beyond loopback needs an allow_tcp grant");
    reach_flush(node_of(L));
    int slot = free_slot();
    if (slot < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "a VM holds at most %d listening sockets", REACH_BOUND_MAX);
        return 2;
    }
    /* '*' stays '*': LuaSocket picks the wildcard of the socket's family */
    use_target(L, hi, strcmp(given, "*") == 0 ? "*" : t.use, t.port);
    int top = lua_gettop(L), nres = call_original(L);
    if (nres > 0 && lua_toboolean(L, top + 1))
        bound_record(L, slot, proto);
    return nres;
}

/* listen on a socket never bound would bind every address on a free port. */
static int guard_listen(lua_State *L)
{
    int top = lua_gettop(L), isnum = 0;
    if (lua_type(L, 1) == LUA_TUSERDATA) {
        lua_getfield(L, 1, "getsockname");
        lua_pushvalue(L, 1);
        lua_call(L, 1, 2);
        lua_Integer port = lua_tointegerx(L, -1, &isnum);
        isnum = isnum && port > 0;
    }
    lua_settop(L, top);
    if (!isnum)
        refuse(L, "listen", "an unbound socket", "bind it first: listen alone binds every address");
    return call_original(L);
}

/* close, __gc: the manager forgets the listener. A finalizer may run in the
 * middle of anything, so it only marks the slot (reach_flush reports it). */
static int guard_close(lua_State *L)
{
    int top = lua_gettop(L), slot = -1;
    int gc = strcmp(lua_tostring(L, lua_upvalueindex(3)), "__gc") == 0;
    if (lua_type(L, 1) == LUA_TUSERDATA && lua_getfield(L, LUA_REGISTRYINDEX, BOUND_KEY) == LUA_TTABLE) {
        lua_pushvalue(L, 1);
        if (lua_rawget(L, -2) == LUA_TNUMBER)
            slot = (int)lua_tointeger(L, -1);
        if (slot >= 0 && !gc) {
            lua_pushvalue(L, 1);
            lua_pushnil(L);
            lua_rawset(L, top + 1);
        }
    }
    lua_settop(L, top);
    struct bound *b = slot >= 0 && slot < REACH_BOUND_MAX ? &reach.bound[slot] : NULL;
    if (b && b->used && !b->collected && gc) {
        b->collected = 1;
        reach.ncollected++;
    } else if (b && b->used && !b->collected) {
        report(node_of(L), "unlisten", b);
        b->used = 0;
    }
    return call_original(L);
}

/* reuseport would let a VM share a port another program listens on, and so
 * register it as its own; so would reuseaddr on a datagram socket. */
static int guard_setoption(lua_State *L)
{
    const char *proto = lua_tostring(L, lua_upvalueindex(4));
    const char *opt = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
    if (lua_toboolean(L, 3) && (strcmp(opt, "reuseport") == 0 ||
                                (strcmp(proto, "udp") == 0 && strcmp(opt, "reuseaddr") == 0)))
        refuse(L, "setoption", opt, "a VM may not share a port with another socket");
    return call_original(L);
}

/* socket.dns.toip, tohostname, getaddrinfo, getnameinfo: a query carries
 * its name out to the resolver, so only names a grant names (and
 * localhost, loopback numbers: answered from /etc/hosts) are looked up. */
static int guard_dns(lua_State *L)
{
    const char *verb = lua_tostring(L, lua_upvalueindex(3));
    char key[NI_MAXHOST];
    if (lua_isnoneornil(L, 1))
        return call_original(L);    /* getnameinfo(nil, service): /etc/services */
    const char *host = luaL_checkstring(L, 1);
    int numeric = reachaddr_normal(host, key, sizeof key) == 0;
    if (numeric && (strcmp(verb, "toip") == 0 || strcmp(verb, "getaddrinfo") == 0))
        return call_original(L);    /* a number answers itself (socket.bind asks so) */
    if (reachaddr_sealed())
        return luaL_error(L, "socket.dns.%s: a fully isolated VM cannot look names up", verb);
    if (strcasecmp(host, "localhost") != 0 && !reachaddr_may_look_up(host) &&
        !(numeric && reachaddr_loopback(key)))
        refuse(L, verb, host, NO_LOOKUP);
    return call_original(L);
}

/* ---- installing them ------------------------------------------------------- */

static int is_guard(lua_CFunction f)
{
    return f == guard_peer || f == guard_send || f == guard_bind || f == guard_listen ||
           f == guard_close || f == guard_setoption || f == guard_dns;
}

/* Replaces t[name] (t on top) by guard g around it, once. */
static void wrap(lua_State *L, const char *name, lua_CFunction g, int hi, const char *proto)
{
    if (lua_getfield(L, -1, name) != LUA_TFUNCTION || is_guard(lua_tocfunction(L, -1))) {
        lua_pop(L, 1);
        return;
    }
    lua_pushinteger(L, hi);
    lua_pushstring(L, name);
    lua_pushstring(L, proto);
    lua_pushcclosure(L, g, 4);
    lua_setfield(L, -2, name);
}

/* The methods of one class's __index table (on top); connected: the
 * class of a datagram socket with a peer. */
static void wrap_methods(lua_State *L, const char *proto, int connected)
{
    wrap(L, "connect", guard_peer, 2, proto);
    wrap(L, "setpeername", guard_peer, 2, proto);
    wrap(L, "sendto", guard_peer, 3, proto);
    wrap(L, "bind", guard_bind, 2, proto);
    wrap(L, "setsockname", guard_bind, 2, proto);
    wrap(L, "listen", guard_listen, 0, proto);
    wrap(L, "close", guard_close, 0, proto);
    wrap(L, "setoption", guard_setoption, 0, proto);
    if (connected)
        wrap(L, "send", guard_send, 0, proto);
    /* setfd would let a script aim a socket object at fd 3 */
    lua_pushnil(L);
    lua_setfield(L, -2, "setfd");
    lua_pushnil(L);
    lua_setfield(L, -2, "getfd");
}

void reach_guard(lua_State *L, int core)
{
    static const char *const classes[] = {
        "tcp{master}", "tcp{client}", "tcp{server}", "udp{unconnected}", "udp{connected}", NULL
    };
    if (lua_getfield(L, LUA_REGISTRYINDEX, BOUND_KEY) != LUA_TTABLE) {
        lua_newtable(L);
        lua_newtable(L);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, BOUND_KEY);
    }
    lua_pop(L, 1);
    for (int i = 0; classes[i]; i++) {
        int top = lua_gettop(L);
        const char *proto = classes[i][0] == 't' ? "tcp" : "udp";
        if (luaL_getmetatable(L, classes[i]) == LUA_TTABLE) {
            wrap(L, "__gc", guard_close, 0, proto);
            if (lua_getfield(L, -1, "__index") == LUA_TTABLE)
                wrap_methods(L, proto, strcmp(classes[i], "udp{connected}") == 0);
        }
        lua_settop(L, top);
    }
    lua_pushvalue(L, core);
    wrap(L, "connect", guard_peer, 1, "tcp");  /* socket.connect(host, port, ...) */
    if (lua_getfield(L, -1, "dns") == LUA_TTABLE) {
        wrap(L, "toip", guard_dns, 1, "dns");
        wrap(L, "tohostname", guard_dns, 1, "dns");
        wrap(L, "getaddrinfo", guard_dns, 1, "dns");
        wrap(L, "getnameinfo", guard_dns, 1, "dns");
    }
    lua_pop(L, 2);
}
