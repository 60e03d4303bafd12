/* mailbox.c - mailboxes by name: a bounded FIFO per VM (it lives here, so it
 * survives a node restart) and per client-opened name; parked senders while
 * a box is full (back-pressure, never a drop) and one parked pull per box.
 * Each VM's box also owns its outbox: the same kind of queue, unnamed, fed
 * by Lua's post() and read by clients (outbox_recv).
 * Called through mailbox.h by router.c, vmproc.c and client.c. Owns every
 * struct mailbox, its mails, parked senders and timers. */
#include "mailbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_BUCKETS 4096
#define MB_PULL_DEFAULT 256
#define MB_PULL_MAX 1024
#define MB_SIZE_MAX 1000000

struct mail {
    struct mail *next;
    json_t *from, *value;   /* owned */
    size_t bytes;           /* frame size it came in: the byte budget */
};

/* Who waits for an answer: a node (named by VM and pid, so an answer never
 * reaches a restarted node that did not ask) or a client (by id). */
struct who {
    int is_client;
    char vm[BX_NAME_MAX + 1];
    pid_t pid;
    uint64_t client_id;
    json_t *tag;            /* owned: the node's K or the client's id */
};

struct sender {
    struct sender *next;
    struct mailbox *mb;
    struct mail *m;         /* owned until admitted */
    struct who w;
    struct event *timer;    /* owned; NULL without a send timeout */
};

struct mailbox {
    struct mailbox *hnext;
    char name[BX_NAME_MAX + 1];
    uint64_t owner;         /* the client that opened it; 0: a VM's mailbox */
    struct mail *head, *tail;
    size_t count, bytes, cap;
    struct sender *s_head, *s_tail;
    int pulling;
    struct who puller;
    size_t pull_max;
    struct event *pull_timer;   /* owned */
    struct mailbox *outbox;     /* owned; VM boxes only, not in tab[] */
};

static struct mailbox *tab[MB_BUCKETS];

static struct mailbox **mb_slot(const char *name)
{
    size_t h = 1469598103934665603ULL;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    struct mailbox **pp = &tab[h % MB_BUCKETS];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

/* Resolves a destination name. This is the one place that decides "not
 * here": a clustered manager would forward to the owning peer (NATS) here
 * instead of failing with VM_NOT_FOUND. */
static struct mailbox *mailbox_route(const char *name)
{
    return name && proto_valid_name(name) ? *mb_slot(name) : NULL;
}

/* ---- answering a waiter --------------------------------------------------- */

static struct vm *who_node(const struct who *w)
{
    struct vm *vm = registry_find(w->vm);
    return vm && vm->node && vm->node->pid == w->pid ? vm : NULL;
}

static int who_alive(const struct who *w)
{
    return w->is_client ? client_find(w->client_id) != NULL : who_node(w) != NULL;
}

static void who_set_node(struct who *w, struct vm *vm, json_t *k)
{
    memset(w, 0, sizeof *w);
    snprintf(w->vm, sizeof w->vm, "%s", vm->name);
    w->pid = vm->node ? vm->node->pid : 0;
    w->tag = json_incref(k);
}

static void who_set_client(struct who *w, struct client *c, json_t *id)
{
    memset(w, 0, sizeof *w);
    w->is_client = 1;
    w->client_id = c->id;
    w->tag = json_incref(id);
}

/* Sends msg (stolen) to a node waiter, or result/err to a client waiter. */
static void who_send_node(struct who *w, json_t *msg)
{
    struct vm *vm = who_node(w);
    if (vm)
        vmreq_send_raw(vm, msg);
    json_decref(msg);
}

static void who_ok(struct who *w, json_t *items)
{
    if (w->is_client) {
        struct client *c = client_find(w->client_id);
        json_t *r = items ? json_incref(items) : json_true();
        if (c)
            client_send_new(c, proto_reply_new(w->tag, r));
        else
            json_decref(r);
    } else if (items) {
        who_send_node(w, json_pack("{s:O, s:O}", "mail_items", w->tag, "items", items));
    } else {
        who_send_node(w, json_pack("{s:O}", "mail_ack", w->tag));
    }
}

static void who_err(struct who *w, enum bx_err code, const char *msg)
{
    if (w->is_client) {
        struct client *c = client_find(w->client_id);
        if (c)
            client_send_new(c, proto_error_new(w->tag, code, "%s", msg));
        return;
    }
    who_send_node(w, json_pack("{s:O, s:{s:s, s:s}}", "mail_ack", w->tag, "error",
                               "code", bx_err_code(code), "message", msg));
}

static void who_clear(struct who *w)
{
    json_decref(w->tag);
    w->tag = NULL;
}

/* ---- queue ---------------------------------------------------------------- */

static void mail_free(struct mail *m)
{
    json_decref(m->from);
    json_decref(m->value);
    free(m);
}

static int fits(struct mailbox *mb, struct mail *m)
{
    /* one message of any size fits an empty box: a frame is bounded anyway */
    return mb->count < mb->cap &&
           (mb->count == 0 || mb->bytes + m->bytes <= MAILBOX_DEFAULT_BYTES);
}

static void enqueue(struct mailbox *mb, struct mail *m)
{
    m->next = NULL;
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    mb->count++;
    mb->bytes += m->bytes;
}

/* Up to max oldest mails as [[from, value], ...], kept under one frame. */
static json_t *take(struct mailbox *mb, size_t max)
{
    json_t *items = json_array();
    size_t total = 0, budget = mgr->max_frame > 8192 ? mgr->max_frame - 4096 : mgr->max_frame;
    while (mb->head && json_array_size(items) < max &&
           (json_array_size(items) == 0 || total + mb->head->bytes <= budget)) {
        struct mail *m = mb->head;
        mb->head = m->next;
        if (!mb->head)
            mb->tail = NULL;
        mb->count--;
        mb->bytes -= m->bytes;
        total += m->bytes;
        json_array_append_new(items, json_pack("[O, O]", m->from, m->value));
        mail_free(m);
    }
    return items;
}

static void sender_free(struct sender *s)
{
    if (s->timer)
        event_free(s->timer);
    if (s->m)
        mail_free(s->m);
    who_clear(&s->w);
    free(s);
}

/* Room was made: parked senders go in, oldest first, each acked now. */
static void admit(struct mailbox *mb)
{
    while (mb->s_head && fits(mb, mb->s_head->m)) {
        struct sender *s = mb->s_head;
        mb->s_head = s->next;
        if (!mb->s_head)
            mb->s_tail = NULL;
        enqueue(mb, s->m);
        s->m = NULL;
        who_ok(&s->w, NULL);
        sender_free(s);
    }
}

static void pull_end(struct mailbox *mb)
{
    mb->pulling = 0;
    evtimer_del(mb->pull_timer);
    who_clear(&mb->puller);
}

/* Answers a parked pull if there is mail (or drops it if its asker died). */
static void serve_pull(struct mailbox *mb)
{
    if (!mb->pulling || !mb->head)
        return;
    if (!who_alive(&mb->puller))
        return pull_end(mb);
    json_t *items = take(mb, mb->pull_max);
    who_ok(&mb->puller, items);
    json_decref(items);
    pull_end(mb);
    admit(mb);
}

static void pull_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct mailbox *mb = arg;
    json_t *none = json_array();
    who_ok(&mb->puller, none);
    json_decref(none);
    pull_end(mb);
    flush_all();
}

static void sender_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct sender *s = arg, **pp = &s->mb->s_head, *prev = NULL;
    while (*pp != s)
        prev = *pp, pp = &(*pp)->next;
    *pp = s->next;
    if (s->mb->s_tail == s)
        s->mb->s_tail = prev;
    char msg[160];
    snprintf(msg, sizeof msg, "mailbox '%s' stayed full; the message was not sent", s->mb->name);
    who_err(&s->w, BX_E_TIMEOUT, msg);
    sender_free(s);
    flush_all();
}

/* Takes m and the waiter w (stolen). Accepts at once when there is room and
 * nobody is parked ahead (order per sender), else parks the sender. */
static void deliver(struct mailbox *mb, struct mail *m, struct who *w, double timeout)
{
    if (!mb->s_head && fits(mb, m)) {
        enqueue(mb, m);
        who_ok(w, NULL);
        who_clear(w);
        serve_pull(mb);
        return;
    }
    struct sender *s = calloc(1, sizeof *s);
    if (!s) {
        who_err(w, BX_E_INTERNAL, "out of memory");
        who_clear(w);
        mail_free(m);
        return;
    }
    s->mb = mb;
    s->m = m;
    s->w = *w;
    if (timeout > 0) {
        s->timer = evtimer_new(mgr->base, sender_timeout_cb, s);
        double t = timeout > 1e9 ? 1e9 : timeout;
        struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
        if (s->timer)
            evtimer_add(s->timer, &tv);
    }
    if (mb->s_tail)
        mb->s_tail->next = s;
    else
        mb->s_head = s;
    mb->s_tail = s;
}

/* Parks or answers a pull; w is stolen. timeout < 0: no manager timer. */
static void pull(struct mailbox *mb, struct who *w, size_t max, double timeout)
{
    if (mb->pulling) {     /* a newer pull replaces one its asker gave up on */
        json_t *none = json_array();
        who_ok(&mb->puller, none);
        json_decref(none);
        pull_end(mb);
    }
    mb->pulling = 1;
    mb->puller = *w;
    mb->pull_max = max;
    if (mb->head)
        return serve_pull(mb);
    if (timeout == 0)
        return pull_timeout_cb(-1, 0, mb);
    if (timeout > 0) {
        double t = timeout > 1e9 ? 1e9 : timeout;
        struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
        evtimer_add(mb->pull_timer, &tv);
    }
}

/* ---- lifetime ------------------------------------------------------------- */

/* A box not yet in tab[]: an outbox stays that way, so no name reaches it. */
static struct mailbox *mb_alloc(const char *name, uint64_t owner, size_t cap)
{
    struct mailbox *mb = calloc(1, sizeof *mb);
    if (!mb)
        return NULL;
    mb->pull_timer = evtimer_new(mgr->base, pull_timeout_cb, mb);
    if (!mb->pull_timer) {
        free(mb);
        return NULL;
    }
    snprintf(mb->name, sizeof mb->name, "%s", name);
    mb->owner = owner;
    mb->cap = cap ? cap : MAILBOX_DEFAULT_COUNT;
    return mb;
}

static struct mailbox *mb_new(const char *name, uint64_t owner, size_t cap)
{
    struct mailbox *mb = mb_alloc(name, owner, cap);
    if (!mb)
        return NULL;
    struct mailbox **pp = mb_slot(name);
    mb->hnext = *pp;
    *pp = mb;
    return mb;
}

static void mb_free(struct mailbox *mb, const char *why)
{
    struct mailbox **pp = mb_slot(mb->name);
    if (*pp == mb)
        *pp = mb->hnext;
    if (mb->outbox)
        mb_free(mb->outbox, why);
    for (struct sender *s = mb->s_head, *next; s; s = next) {
        next = s->next;
        who_err(&s->w, BX_E_VM_NOT_FOUND, why);
        sender_free(s);
    }
    if (mb->pulling && mb->puller.is_client)
        who_err(&mb->puller, BX_E_VM_NOT_FOUND, why);
    who_clear(&mb->puller);
    for (struct mail *m = mb->head, *next; m; m = next) {
        next = m->next;
        mail_free(m);
    }
    event_free(mb->pull_timer);
    free(mb);
}

/* A size: absent (0) or an integer 1..MB_SIZE_MAX; -1 when bad. */
static long long size_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MB_SIZE_MAX)
        return -1;
    return json_integer_value(v);
}

enum bx_err mailbox_check_create(json_t *req, char *err, size_t n)
{
    if (size_field(req, "mailbox_size") < 0 || size_field(req, "outbox_size") < 0) {
        snprintf(err, n, "'mailbox_size' and 'outbox_size' must be integers from 1 to %d", MB_SIZE_MAX);
        return BX_E_BAD_REQUEST;
    }
    const char *name = json_string_value(json_object_get(req, "name"));
    if (name && *mb_slot(name)) {
        snprintf(err, n, "a mailbox named '%.64s' already exists", name);
        return BX_E_VM_EXISTS;
    }
    return BX_OK;
}

int mailbox_vm_added(struct vm *vm)
{
    long long size = size_field(vm->init, "mailbox_size");
    long long out = size_field(vm->init, "outbox_size");
    struct mailbox *mb = mb_new(vm->name, 0, size > 0 ? (size_t)size : 0);
    if (mb)
        mb->outbox = mb_alloc(vm->name, 0, out > 0 ? (size_t)out : 0);
    return mb && mb->outbox ? 0 : -1;
}

void mailbox_vm_removed(const char *name)
{
    struct mailbox *mb = *mb_slot(name);
    if (mb && !mb->owner) {
        char why[128];
        snprintf(why, sizeof why, "VM '%.64s' was destroyed", name);
        mb_free(mb, why);
    }
}

void mailbox_client_gone(struct client *c)
{
    for (size_t i = 0; i < MB_BUCKETS; i++) {
        for (struct mailbox *mb = tab[i], *next; mb; mb = next) {
            next = mb->hnext;
            if (mb->owner == c->id)
                mb_free(mb, "mailbox closed: its client disconnected");
        }
    }
}

void mailbox_free_all(void)
{
    for (size_t i = 0; i < MB_BUCKETS; i++)
        while (tab[i])
            mb_free(tab[i], "manager is shutting down");
}

/* ---- node frames ---------------------------------------------------------- */

static double opt_timeout(json_t *obj)
{
    json_t *t = json_object_get(obj, "timeout");
    return json_is_number(t) && json_number_value(t) >= 0 ? json_number_value(t) : -1;
}

static size_t opt_max(json_t *obj)
{
    json_t *v = json_object_get(obj, "max");
    json_int_t m = json_is_integer(v) ? json_integer_value(v) : MB_PULL_DEFAULT;
    return m < 1 ? 1 : m > MB_PULL_MAX ? MB_PULL_MAX : (size_t)m;
}

static struct mail *mail_new(const char *from, json_t *value, size_t bytes)
{
    struct mail *m = calloc(1, sizeof *m);
    if (m) {
        m->from = json_string(from);
        m->value = value ? json_incref(value) : json_null();
        m->bytes = bytes;
    }
    return m;
}

static void no_such(struct who *w, const char *to)
{
    char msg[128];
    snprintf(msg, sizeof msg, "no VM or mailbox named '%.64s'", to ? to : "");
    who_err(w, BX_E_VM_NOT_FOUND, msg);
    who_clear(w);
}

/* Lua's post(v): into the VM's own outbox, acked (or parked) like a send. */
static void node_post(struct vm *vm, json_t *k, json_t *value, size_t len)
{
    struct who w;
    struct mailbox *mb = *mb_slot(vm->name);
    if (!json_is_integer(k) || !mb || !mb->outbox)
        return;     /* a node bug: no K, or a VM without boxes (out of memory) */
    who_set_node(&w, vm, k);
    struct mail *m = mail_new(vm->name, value, len);
    if (!m) {
        who_err(&w, BX_E_INTERNAL, "out of memory");
        return who_clear(&w);
    }
    deliver(mb->outbox, m, &w, -1);
}

int mailbox_node_frame(struct vm *vm, json_t *msg, size_t len)
{
    struct who w;
    json_t *k = json_object_get(msg, "mail");
    if (k) {
        if (!json_is_integer(k))
            return 1;   /* no K to answer: the node's own bug, its wait times out */
        const char *to = json_string_value(json_object_get(msg, "to"));
        struct mailbox *mb = mailbox_route(to);
        who_set_node(&w, vm, k);
        if (!mb)
            return no_such(&w, to), 1;
        struct mail *m = mail_new(vm->name, json_object_get(msg, "value"), len);
        if (!m) {
            who_err(&w, BX_E_INTERNAL, "out of memory");
            return who_clear(&w), 1;
        }
        deliver(mb, m, &w, -1);
        return 1;
    }
    k = json_object_get(msg, "post");
    if (k)
        return node_post(vm, k, json_object_get(msg, "value"), len), 1;
    k = json_object_get(msg, "mail_pull");
    if (!k)
        return 0;
    struct mailbox *mb = *mb_slot(vm->name);
    if (mb && json_is_integer(k)) {
        who_set_node(&w, vm, k);
        pull(mb, &w, opt_max(msg), opt_timeout(msg));
    }
    return 1;
}

/* ---- client ops ----------------------------------------------------------- */

#define FAIL(c, id, code, ...) client_send_new((c), proto_error_new((id), (code), __VA_ARGS__))

static struct mailbox *owned(struct client *c, json_t *req)
{
    const char *name = json_string_value(json_object_get(req, "name"));
    struct mailbox *mb = name && proto_valid_name(name) ? *mb_slot(name) : NULL;
    return mb && mb->owner == c->id ? mb : NULL;
}

static void op_open(struct client *c, json_t *id, json_t *req)
{
    const char *name = json_string_value(json_object_get(req, "name"));
    long long size = size_field(req, "size");
    if (!name || !proto_valid_name(name) || size < 0)
        return FAIL(c, id, BX_E_BAD_REQUEST, "'name' must be a valid name and 'size' an integer from 1 to %d", MB_SIZE_MAX);
    if (registry_find(name) || *mb_slot(name))
        return FAIL(c, id, BX_E_VM_EXISTS, "the name '%s' is taken", name);
    if (!mb_new(name, c->id, (size_t)size))
        return FAIL(c, id, BX_E_INTERNAL, "out of memory");
    client_send_new(c, proto_reply_new(id, json_true()));
}

static void op_send(struct client *c, json_t *id, json_t *req)
{
    struct who w;
    json_t *from = json_object_get(req, "from");
    const char *sender = "@client";
    if (from) {
        json_t *probe = json_pack("{s:O}", "name", from);
        struct mailbox *own = owned(c, probe);
        json_decref(probe);
        if (!own)
            return FAIL(c, id, BX_E_BAD_REQUEST, "'from' must name a mailbox this connection opened");
        sender = own->name;
    }
    const char *to = json_string_value(json_object_get(req, "to"));
    struct mailbox *mb = mailbox_route(to);
    who_set_client(&w, c, id);
    if (!mb)
        return no_such(&w, to);
    json_t *value = json_object_get(req, "value");
    size_t bytes = value ? json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 4;
    struct mail *m = mail_new(sender, value, bytes + 32);
    if (!m) {
        who_err(&w, BX_E_INTERNAL, "out of memory");
        return who_clear(&w);
    }
    deliver(mb, m, &w, opt_timeout(req));
}

static void op_recv(struct client *c, json_t *id, json_t *req)
{
    struct who w;
    struct mailbox *mb = owned(c, req);
    if (!mb)
        return FAIL(c, id, BX_E_VM_NOT_FOUND, "no mailbox of this connection is named that");
    who_set_client(&w, c, id);
    pull(mb, &w, opt_max(req), opt_timeout(req));
}

/* Any client may read any VM's outbox, as any may run code in the VM. */
static void op_outbox_recv(struct client *c, json_t *id, json_t *req)
{
    struct who w;
    const char *name = json_string_value(json_object_get(req, "vm"));
    struct mailbox *mb = name && proto_valid_name(name) && registry_find(name) ? *mb_slot(name) : NULL;
    if (!mb || mb->owner || !mb->outbox)
        return FAIL(c, id, BX_E_VM_NOT_FOUND, "no VM named '%.64s'", name ? name : "");
    who_set_client(&w, c, id);
    pull(mb->outbox, &w, opt_max(req), opt_timeout(req));
}

int mailbox_client_op(struct client *c, json_t *id, const char *op, json_t *req)
{
    if (strcmp(op, "mail_send") == 0)
        op_send(c, id, req);
    else if (strcmp(op, "outbox_recv") == 0)
        op_outbox_recv(c, id, req);
    else if (strcmp(op, "mail_recv") == 0)
        op_recv(c, id, req);
    else if (strcmp(op, "mailbox_open") == 0)
        op_open(c, id, req);
    else if (strcmp(op, "mailbox_close") == 0) {
        struct mailbox *mb = owned(c, req);
        if (!mb)
            return FAIL(c, id, BX_E_VM_NOT_FOUND, "no mailbox of this connection is named that"), 1;
        mb_free(mb, "mailbox closed");
        client_send_new(c, proto_reply_new(id, json_true()));
    } else
        return 0;
    return 1;
}
