/* vmreq.c - a VM's request queue: the FIFO of requests written to its node
 * (node ids replace the clients' ids), the one deadline timer on its head,
 * and the matching of each reply to that head. Owns the pending entries and
 * vm->head/tail/npending/deadline/next_id. */
#include "manager.h"
#include "cputhrottle.h"
#include "jsonw.h"
#include "nodewire.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_START_TIMEOUT 10.0     /* seconds a node gets to answer init */

static void deadline_cb(evutil_socket_t fd, short ev, void *arg);

int vmreq_init(struct vm *vm)
{
    vm->next_id = 1;
    vm->deadline = evtimer_new(mgr->base, deadline_cb, vm);
    return vm->deadline ? 0 : -1;
}

void vmreq_free(struct vm *vm)
{
    if (vm->deadline)
        event_free(vm->deadline);
    vm->deadline = NULL;
}

/* ---- the head's deadline ------------------------------------------------ */

/* Only the head runs (the node takes requests in order), so only its
 * deadline is armed, from the moment the reply before it arrived. */
static void deadline_arm(struct vm *vm)
{
    struct pending *h = vm->head;
    if (h && h->timeout > 0 && !vm->restarting)
        timer_arm(vm->deadline, h->timeout + mgr->grace);
    else
        evtimer_del(vm->deadline);
}

static void deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct vm *vm = arg;
    /* A node that never answers init would only hang again if restarted:
     * kill it and let the reap path report the crash. */
    if (vm->head && vm->head->kind == PEND_INIT)
        node_broken(vm->node);
    else
        restart_fresh(vm, BX_E_TIMEOUT);
}

/* ---- the FIFO ------------------------------------------------------------ */

static void pending_free(struct pending *p)
{
    json_decref(p->orig_id);
    free(p);
}

/* Queues a pending entry for the next request to vm's node. */
static struct pending *pending_push(struct vm *vm, uint64_t client_id, json_t *orig_id,
                                    enum pend_kind kind, double timeout)
{
    size_t id_len = nodewire_id_text(orig_id, NULL, 0);
    struct pending *p = malloc(sizeof *p + id_len);
    if (!p)
        return NULL;
    p->next = NULL;
    p->node_id = vm->next_id++;
    p->client_id = client_id;
    p->orig_id = json_incref(orig_id);
    p->kind = kind;
    p->timeout = timeout;
    p->op[0] = 0;
    p->id_len = nodewire_id_text(orig_id, p->id_text, id_len);
    if (vm->tail)
        vm->tail->next = p;
    else
        vm->head = p;
    vm->tail = p;
    if (vm->npending++ == 0)
        deadline_arm(vm);
    return p;
}

/* A reply must answer the FIFO head: the node runs requests in order.
 * Returns the head, unlinked (the caller frees it), or NULL when the node
 * broke the protocol (it has been killed). */
static struct pending *head_take(struct node *n, uint64_t id, int id_ok)
{
    struct vm *vm = n->vm;
    struct pending *p = vm->head;
    if (!p || !id_ok || id != p->node_id) {
        fprintf(stderr, "bioxen-manager: node %d of %s sent an unexpected reply\n",
                (int)n->pid, vm->name);
        node_broken(n);
        return NULL;
    }
    vm->head = p->next;
    if (!vm->head)
        vm->tail = NULL;
    vm->npending--;
    deadline_arm(vm);
    return p;
}

size_t vmreq_fail_all(struct vm *vm, enum bx_err head_code, const char *msg, int restarted)
{
    size_t n = 0;
    evtimer_del(vm->deadline);
    for (struct pending *p = vm->head, *next; p; p = next, n++) {
        next = p->next;
        enum bx_err code = p == vm->head ? head_code : BX_E_VM_CRASHED;
        json_t *r = proto_error_new(p->orig_id, code, "%s", msg);
        if (p->kind == PEND_EXEC)
            stats_run(vm, p->op, bx_err_code(code), -1, 0, msg);
        if (restarted)
            json_object_set_new(json_object_get(r, "error"), "restarted", json_true());
        struct client *c = client_find(p->client_id);
        if (c && r)
            client_send(c, r);
        json_decref(r);
        pending_free(p);
    }
    vm->head = vm->tail = NULL;
    vm->npending = 0;
    return n;
}

/* ---- writing to the node ------------------------------------------------ */

/* Writes the gathered acks as {"mail_acks":[K,...]}: built by hand, since
 * the K are integers, and this runs once per 32 messages at full speed. */
static void acks_write(struct node *n, struct evbuffer *out)
{
    char buf[32 + NODE_ACK_BATCH * 22];
    size_t len = (size_t)snprintf(buf, sizeof buf, "{\"mail_acks\":[");
    for (int i = 0; i < n->nacks; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, i ? ",%lld" : "%lld",
                                (long long)n->acks[i]);
    len += (size_t)snprintf(buf + len, sizeof buf - len, "]}\n");
    n->nacks = 0;
    evbuffer_add(out, buf, len);
}

/* Where a request to vm's node is written: its channel, or while the VM is
 * restarting the held buffer that follows the next node's init. Acks still
 * gathered go first, so every frame reaches the node in the order made. */
static struct evbuffer *node_out(struct vm *vm)
{
    if (vm->node && vm->node->chan) {
        struct evbuffer *out = bufferevent_get_output(vm->node->chan);
        flush_mark(vm->node->chan, &vm->node->dirty);
        if (vm->node->nacks)
            acks_write(vm->node, out);
        /* a waiting node got what it asked for, or an error that changes
         * its count: until it sends again, each ack goes at once (safe
         * whatever it still waits for) */
        if (vm->node->ack_now)
            vm->node->ack_need = 1;
        return out;
    }
    return vm->restarting ? vm->held : NULL;
}

/* A node needs its success acks only to move its send window and to end a
 * wait for one (mailbox.flush, a first send to a name, a full window), and
 * it says when it waits (mail_sync). So they are gathered: they ride with
 * the next frame to the node, go when NODE_ACK_BATCH have gathered, or at
 * once while it waits. In a ping-pong that saves the sender a wake-up per
 * message; at full speed, a frame (and its JSON) per message each way. */
void vmreq_ack(struct vm *vm, json_t *k)
{
    struct node *n = vm->node;
    if (!n || !n->chan || !json_is_integer(k)) {
        json_t *msg = json_pack("{s:O}", "mail_ack", k);
        vmreq_send_raw(vm, msg);
        json_decref(msg);
        return;
    }
    n->acks[n->nacks++] = json_integer_value(k);
    if (n->nacks == NODE_ACK_BATCH || (n->ack_now && n->nacks >= n->ack_need))
        node_out(vm);
}

void vmreq_send_items(struct vm *vm, json_t *k, json_t *items)
{
    struct evbuffer *out = node_out(vm);
    if (out)
        jsonw_mail_items(out, k, items);
}

/* {"mail_sync":N}: the node blocks until N more of its sends are acked (0:
 * until one particular ack, so each goes at once). What is gathered goes
 * now; later acks wait until they make up the rest of N, so a sender held
 * by a slow target resumes with room for a batch, not for one send. */
void vmreq_ack_sync(struct vm *vm, json_t *need)
{
    struct node *n = vm->node;
    if (!n || !n->chan)
        return;
    json_int_t k = json_is_integer(need) ? json_integer_value(need) : 0;
    k = k < 1 ? 1 : k > NODE_ACK_BATCH ? NODE_ACK_BATCH : k;
    k -= n->nacks;
    n->ack_now = 1;
    node_out(vm);
    n->ack_need = k < 1 ? 1 : (int)k;
}

void vmreq_send_raw(struct vm *vm, json_t *msg)
{
    size_t len;
    char scratch[4096];
    struct evbuffer *out = node_out(vm);
    char *buf = out ? proto_dump_into(msg, scratch, sizeof scratch, &len) : NULL;
    if (buf) {
        evbuffer_add(out, buf, len);
        if (buf != scratch)
            free(buf);
    }
}

int vmreq_send(struct vm *vm, json_t *req, uint64_t client_id, json_t *orig_id,
               enum pend_kind kind, double timeout)
{
    struct pending *p = pending_push(vm, client_id, orig_id, kind, timeout);
    if (!p)
        return -1;
    json_object_set_new(req, "id", json_integer((json_int_t)p->node_id));
    vmreq_send_raw(vm, req);
    return 0;
}

int vmreq_send_op(struct vm *vm, const char *op, json_t *req, int runs,
                  uint64_t client_id, json_t *orig_id)
{
    json_t *t = json_object_get(req, "timeout");
    double timeout = !runs ? 0 : t ? json_number_value(t) : vm->timeout;
    struct nodewire_run run = {vm->timeout_text, (uint64_t)vm->instruction_limit};
    struct pending *p = pending_push(vm, client_id, orig_id, runs ? PEND_EXEC : PEND_OTHER, timeout);
    if (!p)
        return -1;
    snprintf(p->op, sizeof p->op, "%s", op);
    struct evbuffer *out = node_out(vm);
    /* a failed write leaves a partial frame: the node breaks the link */
    if (out)
        nodewire_request(out, p->node_id, op, req, runs ? &run : NULL);
    return 0;
}

void vmreq_send_init(struct vm *vm, uint64_t client_id, json_t *orig_id)
{
    json_t *init = json_deep_copy(vm->init);
    json_object_set_new(init, "op", json_string("init"));
    /* it may be pid 1 in its namespace */
    json_object_set_new(init, "host_pid", json_integer(vm->node->pid));
    /* init goes first, before requests held during a restart's back-off */
    struct pending *held = vm->head, *held_tail = vm->tail;
    size_t nheld = vm->npending;
    vm->head = vm->tail = NULL;
    vm->npending = 0;
    vmreq_send(vm, init, client_id, orig_id, PEND_INIT, NODE_START_TIMEOUT);
    json_decref(init);
    if (held) {
        vm->tail->next = held;
        vm->tail = held_tail;
        vm->npending += nheld;
    }
    if (vm->held && evbuffer_get_length(vm->held))
        evbuffer_add_buffer(node_out(vm), vm->held);
}

/* ---- replies ------------------------------------------------------------- */

/* The events a run's error code stands for (the reply has gone out first). */
static void reply_events(struct vm *vm, struct pending *p, const char *code)
{
    json_t *limits = json_object_get(vm->init, "limits");
    if (strcmp(code, "TIMEOUT") == 0)
        events_emit(vm, "TIMEOUT", json_pack("{s:f, s:b}", "timeout", p->timeout, "killed", 0));
    else if (strcmp(code, "MEMORY_LIMIT") == 0)
        events_emit(vm, "MEM_KILL", json_pack("{s:O?}", "limit", json_object_get(limits, "memory_limit")));
    else if (strcmp(code, "INSTRUCTION_LIMIT") == 0)
        events_emit(vm, "INSTRUCTION_LIMIT", json_pack("{s:I}", "limit", (json_int_t)vm->instruction_limit));
}

/* Counts (runs only) and events from a fully parsed reply. */
static void reply_accounting(struct vm *vm, struct pending *p, json_t *msg)
{
    json_t *res = json_object_get(msg, "result"), *err = json_object_get(msg, "error");
    if (p->kind == PEND_EXEC) {
        json_t *src = json_is_object(res) ? res : err;
        json_t *mem = json_object_get(src, "mem_bytes"), *dur = json_object_get(src, "duration_ms");
        const char *ecode = json_string_value(json_object_get(err, "code"));
        stats_run(vm, p->op, json_is_object(res) ? "" : ecode ? ecode : "INTERNAL",
                  json_is_number(dur) ? json_number_value(dur) : -1,
                  json_is_integer(mem) ? json_integer_value(mem) : 0,
                  json_string_value(json_object_get(err, "message")));
    }
    const char *code = json_string_value(json_object_get(err, "code"));
    if (code)
        reply_events(vm, p, code);
}

void vmreq_reply(struct node *n, json_t *msg)
{
    struct vm *vm = n->vm;
    json_t *id = json_object_get(msg, "id");
    struct pending *p = head_take(n, (uint64_t)json_integer_value(id), json_is_integer(id));
    if (!p)
        return;
    if (p->kind == PEND_INIT) {
        vm_init_reply(vm, p->client_id, p->orig_id, msg);
    } else {
        json_object_del(msg, "hdr");
        json_object_set(msg, "id", p->orig_id);
        if (strcmp(p->op, "stats") == 0 && json_is_object(json_object_get(msg, "result"))) {
            stats_vm_reply(vm, json_object_get(msg, "result"));  /* adds the manager's counters */
            cputhrottle_stats(vm, json_object_get(msg, "result"));   /* and a share's */
        }
        client_send(client_find(p->client_id), msg);  /* the reply, then its event */
        reply_accounting(vm, p, msg);
    }
    pending_free(p);
}

/* Counts a run whose reply passed through; only an error's reply is
 * parsed, for its message (errors are rare, successes are the hot path). */
static void passed_run(struct vm *vm, struct pending *p, const struct nodewire_head *h,
                       const char *line, size_t len)
{
    json_t *msg = NULL;
    if (h->code[0]) {
        char err[64];
        msg = proto_parse(line, len, err, sizeof err);
    }
    stats_run(vm, p->op, h->code, h->us / 1e3, (json_int_t)h->mem,
              json_string_value(json_object_get(json_object_get(msg, "error"), "message")));
    json_decref(msg);
}

/* The hot path: the reply's bytes after its id go to the client as they are;
 * counts and events come from the header. A reply without one passes only
 * if it is a result of an op that runs no code. */
int vmreq_reply_passed(struct node *n, const char *line, size_t len)
{
    static const char result[] = ",\"result\":";
    struct nodewire_head h;
    struct pending *q = n->vm->head;
    if (nodewire_head(line, len, &h) < 0 || !q || q->node_id != h.id || q->kind == PEND_INIT ||
        strcmp(q->op, "stats") == 0)
        return -1;
    if (!h.has_hdr && (q->kind == PEND_EXEC || len - h.rest < sizeof result - 1 ||
                       memcmp(line + h.rest, result, sizeof result - 1) != 0))
        return -1;
    struct pending *p = head_take(n, h.id, 1);
    client_send_passed(client_find(p->client_id), p->id_text, p->id_len,
                       line + h.rest, len - h.rest);
    if (p->kind == PEND_EXEC)
        passed_run(n->vm, p, &h, line, len);
    if (h.code[0])
        reply_events(n->vm, p, h.code);
    pending_free(p);
    return 0;
}
