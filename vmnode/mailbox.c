/* mailbox.c - Lua's mailbox.send/recv/flush/name over the manager's
 * mailboxes (docs/protocol.md "Mailboxes"). Sends to a name not yet
 * confirmed wait for their ack, so a missing name fails at the send; later
 * sends to it are pipelined (up to MAILBOX_WINDOW un-acked) and an error of
 * one is raised at the next mailbox call. Also the global post(v), to the
 * VM's outbox, on the same acks. Waits go through link_await. */
#include "mailbox.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coded.h"
#include "convert.h"
#include "stream.h"

#define CONFIRMED_MAX 16

static struct {
    char name[BX_NAME_MAX + 1];
    long long next_k;
    int unacked;
    char *err;                  /* first error of a pipelined send (malloc) */
    enum bx_err err_code;       /* its wire code, for coded_raise */
    json_t *inbox;              /* pulled [from, value] pairs, owned */
    size_t pos;                 /* next inbox item to hand out */
    long long pull_k;
    int pull_done;
    long long sync_k;           /* the send whose ack we wait for, or 0 */
    int sync_failed;
    char confirmed[CONFIRMED_MAX][BX_NAME_MAX + 1];  /* ring of good names */
    int nconfirmed;
} mb;

void mailbox_init(const char *name)
{
    snprintf(mb.name, sizeof mb.name, "%s", name ? name : "");
}

static int is_confirmed(const char *to)
{
    for (int i = 0; i < mb.nconfirmed && i < CONFIRMED_MAX; i++)
        if (strcmp(mb.confirmed[i], to) == 0)
            return 1;
    return 0;
}

/* One ack: K, and the error it carries (NULL when accepted). */
static void ack_one(json_int_t k, json_t *error)
{
    const char *text = json_string_value(json_object_get(error, "message"));
    const char *code = json_string_value(json_object_get(error, "code"));
    if (mb.unacked > 0)
        mb.unacked--;
    if (k == mb.sync_k) {
        mb.sync_k = 0;
        mb.sync_failed = error != NULL;
    }
    if (error) {
        mb.nconfirmed = 0;  /* a destination went away: confirm again */
        if (!mb.err) {
            mb.err = strdup(text ? text : "mailbox send failed");
            /* only a missing name (or host) and a lost cluster link keep
             * their code: a TIMEOUT here is not the request's own timeout
             * and must not read as one */
            enum bx_err e = code ? bx_err_from_code(code) : BX_E_LUA_ERROR;
            mb.err_code = e == BX_E_VM_NOT_FOUND || e == BX_E_CLUSTER_UNAVAILABLE
                        ? e : BX_E_LUA_ERROR;
        }
    }
}

/* {"mail_ack":K[,"error":...]}, or the manager's gathered successes
 * {"mail_acks":[K,...]}. A K that is not an integer still counts as acked. */
static void on_ack(json_t *msg)
{
    json_t *k = json_object_get(msg, "mail_ack"), *ks = json_object_get(msg, "mail_acks");
    size_t i;
    json_t *v;
    if (!ks) {
        ack_one(json_is_integer(k) ? json_integer_value(k) : -1, json_object_get(msg, "error"));
        return;
    }
    json_array_foreach(ks, i, v)
        ack_one(json_is_integer(v) ? json_integer_value(v) : -1, NULL);
}

int mailbox_frame(json_t *msg)
{
    if (json_object_get(msg, "mail_ack") || json_object_get(msg, "mail_acks")) {
        on_ack(msg);
        return 1;
    }
    json_t *k = json_object_get(msg, "mail_items");
    if (!k)
        return 0;
    json_t *items = json_object_get(msg, "items");
    if (!mb.inbox)
        mb.inbox = json_array();
    if (json_is_array(items))
        json_array_extend(mb.inbox, items);
    if (json_is_integer(k) && json_integer_value(k) == mb.pull_k)
        mb.pull_done = 1;
    return 1;
}

/* ---- waiting -------------------------------------------------------------- */

static int want_pull(json_t *msg, void *ud)
{
    (void)ud;
    if (!mailbox_frame(msg))
        return -1;
    return mb.pull_done ? 1 : 0;
}

/* Any mailbox frame (an ack above all) ends a wait round: wait_acks then
 * judges again. */
static int want_mail_frame(json_t *msg, void *ud)
{
    (void)ud;
    return mailbox_frame(msg) ? 1 : -1;
}

/* Waits until at most limit sends are un-acked (and no sync send waits).
 * A full window waits for half of it to drain, not for one slot: resuming
 * at each single ack would make every send a frame, a sync and an ack of
 * its own while the target is slower than we are. The manager gathers acks
 * until we say how many we wait for (0: each at once, for a send whose own
 * ack we need). It may count acks already on their way to us as still
 * owed, so after every frame that comes we tell it again what is left. */
static void wait_acks(lua_State *L, int limit)
{
    if (limit == MAILBOX_WINDOW - 1 && mb.unacked > limit)
        limit = MAILBOX_WINDOW / 2;
    while (mb.unacked > limit || mb.sync_k != 0) {
        int need = mb.sync_k ? 0 : mb.unacked - limit;
        json_t *sync = json_pack("{s:i}", "mail_sync", need);
        if (!sync || link_send(node_of(L), sync) < 0)
            _exit(1);   /* the manager is gone */
        if (link_await(node_of(L), want_mail_frame, NULL) == -2)
            luaL_error(L, "timeout while a mailbox was full");
    }
}

static void raise_pending(lua_State *L)
{
    if (!mb.err)
        return;
    lua_pushstring(L, mb.err);
    free(mb.err);
    mb.err = NULL;
    coded_raise(L, mb.err_code);
}

/* ---- the Lua functions ---------------------------------------------------- */

/* The script's value at idx as JSON (new reference); raises, prefixed with
 * what, when it does not convert. */
static json_t *value_json(lua_State *L, int idx, const char *what)
{
    char err[256];
    json_t *v;
    if (conv_to_json(L, idx, &v, err, sizeof err) != BX_OK)
        luaL_error(L, "%s: %s", what, err);
    return v;
}

/* Sends msg (stolen; NULL when it could not be built) as one more frame
 * waiting for its ack. Over the frame limit it is a Lua error; when the
 * manager is gone the node ends. */
static void send_unacked(lua_State *L, json_t *msg, const char *what)
{
    int rc = msg ? link_send_later(node_of(L), L, msg) : -1;
    if (rc == -2) /* the value fit its limit, the frame around it did not */
        luaL_error(L, "%s: value too large to send (over the frame limit)", what);
    if (rc < 0)
        _exit(1);   /* the manager is gone */
    mb.unacked++;
}

static int l_send(lua_State *L)
{
    const char *to = luaL_checkstring(L, 1);
    lua_settop(L, 2);
    raise_pending(L);
    if (!proto_valid_name(to)) {
        luaL_where(L, 1);
        lua_pushfstring(L, "no VM or mailbox named '%s'", to);
        lua_concat(L, 2);
        return coded_raise(L, BX_E_VM_NOT_FOUND);
    }
    json_t *v = value_json(L, 2, "mailbox.send");
    long long k = ++mb.next_k;
    send_unacked(L, json_pack("{s:I, s:s, s:o}", "mail", (json_int_t)k, "to", to, "value", v), "mailbox.send");
    if (is_confirmed(to)) {
        wait_acks(L, MAILBOX_WINDOW - 1);
    } else {
        mb.sync_k = k;
        wait_acks(L, MAILBOX_WINDOW - 1);
        if (mb.sync_failed) {
            mb.sync_failed = 0;
            raise_pending(L);
        }
        snprintf(mb.confirmed[mb.nconfirmed++ % CONFIRMED_MAX], BX_NAME_MAX + 1, "%s", to);
    }
    raise_pending(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* post(v): into the VM's outbox in the manager, read by Python's vm.recv.
 * The outbox always exists while the VM does, so posts are pipelined from
 * the first; a full outbox blocks like a full mailbox. */
static int l_post(lua_State *L)
{
    if (stream_active())
        return stream_post(L);      /* during a stream: to its requester */
    lua_settop(L, 1);
    raise_pending(L);
    json_t *v = value_json(L, 1, "post");
    send_unacked(L, json_pack("{s:I, s:o}", "post", (json_int_t)++mb.next_k, "value", v), "post");
    wait_acks(L, MAILBOX_WINDOW - 1);
    raise_pending(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_flush(lua_State *L)
{
    wait_acks(L, 0);
    raise_pending(L);
    lua_pushboolean(L, 1);
    return 1;
}

static void pull(lua_State *L, double timeout)
{
    long long k = ++mb.next_k;
    mb.pull_k = k;
    mb.pull_done = 0;
    json_t *msg = json_pack("{s:I, s:i}", "mail_pull", (json_int_t)k, "max", MAILBOX_PULL_MAX);
    if (msg && timeout >= 0)
        json_object_set_new(msg, "timeout", json_real(timeout));
    if (!msg || link_send(node_of(L), msg) < 0)
        _exit(1);
    if (link_await(node_of(L), want_pull, NULL) == -2)
        luaL_error(L, "timeout while waiting in mailbox.recv");
}

static int l_recv(lua_State *L)
{
    double timeout = -1;
    if (!lua_isnoneornil(L, 1)) {
        timeout = luaL_checknumber(L, 1);
        luaL_argcheck(L, timeout >= 0, 1, "timeout must be non-negative");
    }
    raise_pending(L);
    if (!mb.inbox || mb.pos >= json_array_size(mb.inbox))
        pull(L, timeout);
    if (!mb.inbox || mb.pos >= json_array_size(mb.inbox)) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    json_t *item = json_array_get(mb.inbox, mb.pos++);
    json_t *from = json_array_get(item, 0), *value = json_array_get(item, 1);
    char err[256];
    /* the item is still owned by the inbox: a memory error here leaks nothing */
    enum bx_err e = conv_push_json(L, value ? value : json_null(), err, sizeof err);
    lua_pushstring(L, json_is_string(from) ? json_string_value(from) : "?");
    if (mb.pos >= json_array_size(mb.inbox)) {
        json_array_clear(mb.inbox);
        mb.pos = 0;
    }
    if (e != BX_OK)
        return luaL_error(L, "mailbox.recv: %s", err);
    return 2;
}

static int l_name(lua_State *L)
{
    lua_pushstring(L, mb.name);
    return 1;
}

void mailbox_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"send", l_send}, {"recv", l_recv}, {"flush", l_flush}, {"name", l_name}, {NULL, NULL}
    };
    luaL_newlib(L, fns);
    lua_setglobal(L, "mailbox");
    lua_pushcfunction(L, l_post);
    lua_setglobal(L, "post");
}
