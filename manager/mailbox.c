/* mailbox.c - mailboxes by name: one per VM (it lives here, so it survives
 * a node restart) and one per name a client opens; each VM's box also has
 * its outbox, unnamed, fed by Lua's post() and read by clients. This file
 * owns the names (struct mailbox and its table), the two wire dialects of
 * an answer (node: mail_ack / mail_items frames; client: a reply) and the
 * mailbox ops; the queue itself is mbqueue.c, the field checks mailcheck.c. */
#include "mailbox.h"
#include "mailcheck.h"
#include "mailremote.h"
#include "mbqueue.h"
#include "names.h"
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB_BUCKETS 4096

struct mailbox {
    struct mailbox *hnext;
    char name[BX_NAME_MAX + 1];
    uint64_t owner;         /* the client that opened it; 0: a VM's mailbox */
    struct mbq *q;          /* owned */
    struct mbq *outbox;     /* owned; VM boxes only */
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

/* Resolves a destination name here. This is the one place that decides
 * "not here" for mail: its callers then hand the send to mailremote.c,
 * which finds the name's host (names_where) and fails with VM_NOT_FOUND
 * only when no host has it. */
static struct mailbox *mailbox_route(const char *name)
{
    return name && proto_valid_name(name) ? *mb_slot(name) : NULL;
}

/* ---- answering a waiter, in its dialect ----------------------------------- */

static struct vm *who_node(const struct mbq_who *w)
{
    struct vm *vm = registry_find(w->vm);
    return vm && vm->node && vm->node->pid == w->pid ? vm : NULL;
}

static int who_alive(const struct mbq_who *w)
{
    if (w->is_remote)
        return 1;   /* a remote sender never pulls; its host's death is mailremote's */
    return w->is_client ? client_find(w->client_id) != NULL : who_node(w) != NULL;
}

static void who_set_node(struct mbq_who *w, struct vm *vm, json_t *k)
{
    memset(w, 0, sizeof *w);
    snprintf(w->vm, sizeof w->vm, "%s", vm->name);
    w->pid = vm->node ? vm->node->pid : 0;
    w->tag = json_incref(k);
}

static void who_set_client(struct mbq_who *w, struct client *c, json_t *id)
{
    memset(w, 0, sizeof *w);
    w->is_client = 1;
    w->client_id = c->id;
    w->tag = json_incref(id);
}

/* Sends msg (stolen) to a node waiter if its node is still the one that asked. */
static void who_send_node(struct mbq_who *w, json_t *msg)
{
    struct vm *vm = who_node(w);
    if (vm)
        vmreq_send_raw(vm, msg);
    json_decref(msg);
}

static void who_ok(struct mbq_who *w, json_t *items)
{
    if (w->is_remote) {
        mailremote_answer(w, BX_OK, NULL);
    } else if (w->is_client) {
        struct client *c = client_find(w->client_id);
        json_t *r = items ? json_incref(items) : json_true();
        if (c)
            client_send_new(c, proto_reply_new(w->tag, r));
        else
            json_decref(r);
    } else if (items) {
        struct vm *vm = who_node(w);
        if (vm)
            vmreq_send_items(vm, w->tag, items);
    } else {
        struct vm *vm = who_node(w);
        if (vm)
            vmreq_ack(vm, w->tag);
    }
}

static void who_err(struct mbq_who *w, enum bx_err code, const char *msg)
{
    if (w->is_remote)
        return mailremote_answer(w, code, msg);
    if (w->is_client) {
        struct client *c = client_find(w->client_id);
        if (c)
            client_send_new(c, proto_error_new(w->tag, code, "%s", msg));
        return;
    }
    who_send_node(w, json_pack("{s:O, s:{s:s, s:s}}", "mail_ack", w->tag, "error",
                               "code", bx_err_code(code), "message", msg));
}

static const struct mbq_answers answers = { who_ok, who_err, who_alive };

void mailbox_answer(struct mbq_who *w, enum bx_err code, const char *msg)
{
    if (code == BX_OK)
        who_ok(w, NULL);
    else
        who_err(w, code, msg);
}

static void no_such(struct mbq_who *w, const char *to)
{
    char msg[128];
    snprintf(msg, sizeof msg, "no VM or mailbox named '%.64s'", to ? to : "");
    who_err(w, BX_E_VM_NOT_FOUND, msg);
    mbq_who_clear(w);
}

/* Queues value from `from` into q for the waiter w (stolen). */
static void mb_deliver(struct mbq *q, const char *from, json_t *value, size_t bytes,
                       struct mbq_who *w, double timeout)
{
    struct mbq_mail *m = mbq_mail_new(from, value, bytes);
    if (!m) {
        who_err(w, BX_E_INTERNAL, "out of memory");
        return mbq_who_clear(w);
    }
    mbq_deliver(q, m, w, timeout);
}

int mailbox_deliver_remote(const char *to, const char *from, json_t *value, size_t bytes,
                           struct mbq_who *w, double timeout)
{
    struct mailbox *mb = mailbox_route(to);
    if (!mb)
        return -1;
    struct mbq_mail *m = mbq_mail_new(from, value, bytes);
    if (!m) {
        who_err(w, BX_E_INTERNAL, "out of memory");
        mbq_who_clear(w);
        return 0;
    }
    return mbq_deliver(mb->q, m, w, timeout);
}

static int from_host(const struct mbq_who *w, void *host)
{
    return w->is_remote && strcmp(w->host, host) == 0;
}

void mailbox_host_gone(const char *host)
{
    for (size_t i = 0; i < MB_BUCKETS; i++)
        for (struct mailbox *mb = tab[i]; mb; mb = mb->hnext)
            mbq_drop_parked(mb->q, from_host, (void *)host);
}

/* Not here: another host's, if the cluster knows it (w stolen either way). */
static void elsewhere(struct mbq_who *w, const char *from, const char *to, json_t *value,
                      size_t bytes, double timeout)
{
    if (!to || !proto_valid_name(to) || mailremote_send(w, from, to, value, bytes, timeout) < 0)
        no_such(w, to);
}

/* ---- lifetime ------------------------------------------------------------- */

static struct mailbox *mb_new(const char *name, uint64_t owner, size_t cap)
{
    struct mailbox *mb = calloc(1, sizeof *mb);
    if (!mb || !(mb->q = mbq_new(name, cap, &answers))) {
        free(mb);
        return NULL;
    }
    snprintf(mb->name, sizeof mb->name, "%s", name);
    mb->owner = owner;
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
    mbq_free(mb->outbox, why);
    mbq_free(mb->q, why);
    free(mb);
}

enum bx_err mailbox_check_create(json_t *req, char *err, size_t n)
{
    enum bx_err e = mailcheck_create(req, err, n);
    if (e != BX_OK)
        return e;
    const char *name = json_string_value(json_object_get(req, "name"));
    if (name && *mb_slot(name)) {
        snprintf(err, n, "a mailbox named '%.64s' already exists", name);
        return BX_E_VM_EXISTS;
    }
    return BX_OK;
}

int mailbox_vm_added(struct vm *vm)
{
    long long size = mailcheck_size(vm->init, "mailbox_size");
    long long out = mailcheck_size(vm->init, "outbox_size");
    struct mailbox *mb = mb_new(vm->name, 0, size > 0 ? (size_t)size : 0);
    if (mb)
        mb->outbox = mbq_new(vm->name, out > 0 ? (size_t)out : 0, &answers);
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
            if (mb->owner == c->id) {
                names_release(mb->name);
                mb_free(mb, "mailbox closed: its client disconnected");
            }
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

/* mailbox.send(to, v): {"mail":K,"to":NAME,"value":V}, acked (or parked). */
static void node_mail(struct vm *vm, json_t *k, const char *to, json_t *value, size_t len)
{
    struct mbq_who w;
    if (!json_is_integer(k))
        return;     /* no K to answer: the node's own bug, its wait times out */
    struct mailbox *mb = mailbox_route(to);
    who_set_node(&w, vm, k);
    if (!mb)
        return elsewhere(&w, vm->name, to, value, len, -1);
    mb_deliver(mb->q, vm->name, value, len, &w, -1);
}

/* Lua's post(v): into the VM's own outbox, acked (or parked) like a send. */
static void node_post(struct vm *vm, json_t *k, json_t *value, size_t len)
{
    struct mbq_who w;
    struct mailbox *mb = *mb_slot(vm->name);
    if (!json_is_integer(k) || !mb || !mb->outbox)
        return;     /* a node bug: no K, or a VM without boxes (out of memory) */
    who_set_node(&w, vm, k);
    mb_deliver(mb->outbox, vm->name, value, len, &w, -1);
}

int mailbox_node_fast(struct vm *vm, const char *line, size_t len)
{
    struct mailcheck_fast f;
    if (!mailcheck_node_fast(line, len, &f))
        return 0;
    json_t *k = json_integer(f.k);
    if (f.kind == MAILFAST_PULL) {
        struct mbq_who w;
        struct mailbox *mb = *mb_slot(vm->name);
        if (mb) {
            who_set_node(&w, vm, k);
            mbq_pull(mb->q, &w, f.max, f.timeout);
        }
        json_decref(k);
        return 1;
    }
    if (vm->node)
        vm->node->ack_now = 0;  /* sending again: it no longer waits */
    if (f.kind == MAILFAST_POST)
        node_post(vm, k, f.value, len);
    else
        node_mail(vm, k, f.to, f.value, len);
    json_decref(k);
    json_decref(f.value);
    return 1;
}

int mailbox_node_frame(struct vm *vm, json_t *msg, size_t len)
{
    struct mbq_who w;
    json_t *k;
    if (vm->node && (json_object_get(msg, "mail") || json_object_get(msg, "post")))
        vm->node->ack_now = 0;  /* sending again: it no longer waits */
    if ((k = json_object_get(msg, "mail")))
        return node_mail(vm, k, json_string_value(json_object_get(msg, "to")),
                         json_object_get(msg, "value"), len), 1;
    if ((k = json_object_get(msg, "post")))
        return node_post(vm, k, json_object_get(msg, "value"), len), 1;
    if ((k = json_object_get(msg, "mail_sync")))
        return vmreq_ack_sync(vm, k), 1;
    if (!(k = json_object_get(msg, "mail_pull")))
        return 0;
    struct mailbox *mb = *mb_slot(vm->name);
    if (mb && json_is_integer(k)) {
        who_set_node(&w, vm, k);
        mbq_pull(mb->q, &w, mailcheck_max(msg), mailcheck_timeout(msg));
    }
    return 1;
}

/* ---- client ops (named in ops.def; fields checked by mailcheck.c) --------- */

#define FAIL(c, id, code, ...) client_send_new((c), proto_error_new((id), (code), __VA_ARGS__))

/* The mailbox this connection opened under the name v, or NULL. */
static struct mailbox *owned(struct client *c, json_t *v)
{
    const char *name = json_string_value(v);
    struct mailbox *mb = name && proto_valid_name(name) ? *mb_slot(name) : NULL;
    return mb && mb->owner == c->id ? mb : NULL;
}

/* A client mailbox's name is claimed in the cluster like a VM's (names.c),
 * so that names stay unique across hosts and mail from other hosts finds
 * it; the record says "mailbox" (no VM to fail over or forward to). */
struct pending_open {
    uint64_t client_id;
    json_t *id;
    size_t cap;
    char name[BX_NAME_MAX + 1];
};

static void open_claimed(int ok, const char *why, void *arg)
{
    struct pending_open *p = arg;
    struct client *c = client_find(p->client_id);
    if (!c || c->closing || mgr->shutting_down) {
        if (ok == 1)
            names_release(p->name);
    } else if (ok == 0) {
        FAIL(c, p->id, BX_E_VM_EXISTS, "the name '%s' is taken in the cluster (on host %s)",
             p->name, why ? why : "?");
    } else if (ok < 0) {
        FAIL(c, p->id, BX_E_CLUSTER_UNAVAILABLE, "%s", why ? why : "cluster unavailable");
    } else if (registry_find(p->name) || *mb_slot(p->name)) {
        FAIL(c, p->id, BX_E_VM_EXISTS, "the name '%s' is taken", p->name);
    } else if (!mb_new(p->name, c->id, p->cap)) {
        names_release(p->name);
        FAIL(c, p->id, BX_E_INTERNAL, "out of memory");
    } else {
        client_send_new(c, proto_reply_new(p->id, json_true()));
    }
    json_decref(p->id);
    free(p);
}

void mailbox_op_open(struct op_ctx *x)
{
    const char *name = json_string_value(json_object_get(x->req, "name"));
    if (registry_find(name) || *mb_slot(name))
        return FAIL(x->c, x->id, BX_E_VM_EXISTS, "the name '%s' is taken", name);
    struct pending_open *p = calloc(1, sizeof *p);
    json_t *rec = names_record(x->c->identity, NULL);
    if (!p || !rec || json_object_set_new(rec, "mailbox", json_true()) < 0) {
        free(p);
        json_decref(rec);
        return FAIL(x->c, x->id, BX_E_INTERNAL, "out of memory");
    }
    p->client_id = x->c->id;
    p->id = json_incref(x->id);
    p->cap = x->a.count;
    snprintf(p->name, sizeof p->name, "%s", name);
    names_claim(name, rec, open_claimed, p);
    json_decref(rec);
}

void mailbox_op_close(struct op_ctx *x)
{
    struct mailbox *mb = owned(x->c, json_object_get(x->req, "name"));
    if (!mb)
        return FAIL(x->c, x->id, BX_E_VM_NOT_FOUND, "no mailbox of this connection is named that");
    names_release(mb->name);
    mb_free(mb, "mailbox closed");
    client_send_new(x->c, proto_reply_new(x->id, json_true()));
}

void mailbox_op_send(struct op_ctx *x)
{
    struct mbq_who w;
    json_t *from = json_object_get(x->req, "from");
    const char *sender = "@client";
    if (from) {
        struct mailbox *own = owned(x->c, from);
        if (!own)
            return FAIL(x->c, x->id, BX_E_BAD_REQUEST, "'from' must name a mailbox this connection opened");
        sender = own->name;
    }
    const char *to = json_string_value(json_object_get(x->req, "to"));
    struct mailbox *mb = mailbox_route(to);
    who_set_client(&w, x->c, x->id);
    json_t *value = json_object_get(x->req, "value");
    size_t bytes = value ? json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 4;
    if (!mb)
        return elsewhere(&w, sender, to, value, bytes + 32, x->a.timeout);
    mb_deliver(mb->q, sender, value, bytes + 32, &w, x->a.timeout);
}

void mailbox_op_recv(struct op_ctx *x)
{
    struct mbq_who w;
    struct mailbox *mb = owned(x->c, json_object_get(x->req, "name"));
    if (!mb)
        return FAIL(x->c, x->id, BX_E_VM_NOT_FOUND, "no mailbox of this connection is named that");
    who_set_client(&w, x->c, x->id);
    mbq_pull(mb->q, &w, x->a.count, x->a.timeout);
}

/* Any client may read any VM's outbox, as any may run code in the VM
 * (x->vm: the router resolved it). */
void mailbox_op_outbox_recv(struct op_ctx *x)
{
    struct mbq_who w;
    struct mailbox *mb = *mb_slot(x->vm->name);
    if (!mb || mb->owner || !mb->outbox)
        return FAIL(x->c, x->id, BX_E_VM_NOT_FOUND, "no VM named '%.64s'", x->vm->name);
    who_set_client(&w, x->c, x->id);
    mbq_pull(mb->outbox, &w, x->a.count, x->a.timeout);
}
