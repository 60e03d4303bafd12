/* vmproc.c - a VM's node process: spawn, socketpair channel, FIFO of
 * in-flight requests, head deadline, kill, reap and restart.
 * Called by router.c (create/send/destroy), client.c (disown), main.c (reap
 * and shutdown). Owns struct vm (freed in vm_free) and struct node (freed
 * once it is reaped, its channel closed and no VM holds it). */
#include "manager.h"
#include "cgroup.h"
#include "mailbox.h"
#include "nodewire.h"
#include "policy.h"
#include "spare.h"
#include "spawn.h"
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PID_BUCKETS 256
#define NODE_START_TIMEOUT 10.0     /* seconds a node gets to answer init */
#define BX_NOBODY 65534             /* Debian's nobody and nogroup */

static void node_read_cb(struct bufferevent *bev, void *arg);
static void node_event_cb(struct bufferevent *bev, short what, void *arg);
static void deadline_cb(evutil_socket_t fd, short ev, void *arg);
static void vm_restart(struct vm *vm, enum bx_err reason);
static struct evbuffer *node_out(struct vm *vm);

/* ---- pid table ---------------------------------------------------------- */

static struct node **pid_slot(pid_t pid)
{
    if (!mgr->pids)
        mgr->pids = calloc(PID_BUCKETS, sizeof *mgr->pids);
    struct node **pp = &mgr->pids[(unsigned)pid % PID_BUCKETS];
    while (*pp && (*pp)->pid != pid)
        pp = &(*pp)->hnext;
    return pp;
}

/* Frees the node once nothing can reach it any more: reaped, channel gone,
 * no VM. Safe to call at any point; it does nothing until all three hold. */
static void node_release(struct node *n)
{
    if (!n->reaped || n->chan || n->vm || n->busy)
        return;
    struct node **pp = pid_slot(n->pid);
    if (*pp == n)
        *pp = n->hnext;
    mgr->nnodes--;
    cgroup_remove(n->cg_seq);
    free(n);
}

static void node_close_chan(struct node *n)
{
    if (n->chan) {
        flush_forget(n->chan, &n->dirty);
        bufferevent_free(n->chan);  /* deferred by libevent if in its callback */
        n->chan = NULL;
    }
}

/* The VM lets go of its node: SIGKILL, close the channel; the reaper frees it. */
static void node_detach(struct node *n)
{
    if (!n)
        return;
    if (!n->reaped)
        kill(n->pid, SIGKILL);
    node_close_chan(n);
    if (n->vm && n->vm->node == n)
        n->vm->node = NULL;
    n->vm = NULL;
    node_release(n);
}

/* ---- spawning ----------------------------------------------------------- */

/* Starts a node for vm and queues its init frame (answered to client_id's
 * orig_id when the node is ready). Returns 0, or -1 with err filled. */
static double limit_num(json_t *limits, const char *key)
{
    json_t *v = json_object_get(limits, key);
    return json_is_number(v) ? json_number_value(v) : 0;
}

/* What the node about to start gets, for create's reply and examples. */
static json_t *isolation_report(struct vm *vm, const char *ns, unsigned long long heap)
{
    json_t *uid = json_object_get(vm->init, "uid"), *gid = json_object_get(vm->init, "gid");
    const char *why = cgroup_unavailable();
    json_t *cg = why ? json_null()
                     : json_pack("{s:o, s:i}", "memory", heap ? json_integer((json_int_t)heap) : json_null(),
                                 "pids_max", 4);
    return json_pack("{s:b, s:s, s:b, s:b, s:O?, s:O?, s:o, s:s?}", "full", vm->full_isolation,
                     "namespaces", ns, "seccomp", vm->full_isolation, "no_new_privs", 1,
                     "uid", uid, "gid", gid, "cgroup", cg, "cgroup_unavailable", why);
}

/* Starts the node process in its cgroup. BX_OK, or a code with err. */
static enum bx_err node_start(struct vm *vm, int child_fd, pid_t *pid, unsigned *seq,
                      char *err, size_t errlen)
{
    unsigned long long heap = (unsigned long long)limit_num(json_object_get(vm->init, "limits"),
                                                            "memory_limit");
    struct spawn_req r = {mgr->vmnode_path, child_fd, vm->full_isolation, vm->networked, ""};
    *seq = ++mgr->node_seq;
    if (cgroup_prepare(*seq, heap) < 0)
        return snprintf(err, errlen, "cannot make the VM's cgroup"), BX_E_INTERNAL;
    if (spawn_node(&r, pid, err, errlen) < 0) {
        cgroup_remove(*seq);
        return r.isolated ? BX_E_ISOLATION : BX_E_INTERNAL;
    }
    if (cgroup_attach(*seq, *pid) < 0) {
        kill(*pid, SIGKILL);    /* not in the pid table yet: reap it here */
        waitpid(*pid, NULL, 0);
        cgroup_remove(*seq);
        snprintf(err, errlen, "cannot move the node into its cgroup");
        return BX_E_INTERNAL;
    }
    json_decref(vm->isolation);
    vm->isolation = isolation_report(vm, r.out_ns, heap);
    return BX_OK;
}

/* A spare node (spare.c) for a plainly spawned VM: 0 with its channel fd. */
static int node_from_spare(struct vm *vm, int *fd, pid_t *pid, unsigned *seq)
{
    unsigned long long heap = (unsigned long long)limit_num(json_object_get(vm->init, "limits"),
                                                            "memory_limit");
    if (vm->full_isolation || spare_take(heap, fd, pid, seq) < 0)
        return -1;
    json_decref(vm->isolation);
    vm->isolation = isolation_report(vm, "", heap);
    return 0;
}

/* Starts a node for vm and queues its init frame (answered to client_id's
 * orig_id when the node is ready). Returns BX_OK, or a code with err. */
static enum bx_err node_spawn(struct vm *vm, uint64_t client_id, json_t *orig_id,
                      char *err, size_t errlen)
{
    int sv[2];
    pid_t pid;
    unsigned seq;
    if (node_from_spare(vm, &sv[0], &pid, &seq) == 0)
        goto started;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return BX_E_INTERNAL;
    }
    if (sv[1] == 3) {   /* dup2(3, 3) would leave FD_CLOEXEC set */
        int d = fcntl(sv[1], F_DUPFD_CLOEXEC, 4);
        close(sv[1]);
        sv[1] = d;
    }
    enum bx_err rc = sv[1] < 0 ? BX_E_INTERNAL : node_start(vm, sv[1], &pid, &seq, err, errlen);
    if (sv[1] >= 0)
        close(sv[1]);
    if (rc != BX_OK) {
        if (sv[1] < 0)
            snprintf(err, errlen, "fcntl: %s", strerror(errno));
        close(sv[0]);
        return rc;
    }
started:;
    struct node *n = calloc(1, sizeof *n);
    evutil_make_socket_nonblocking(sv[0]);
    n->chan = n ? bufferevent_socket_new(mgr->base, sv[0], BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (!n || !n->chan) {
        kill(pid, SIGKILL);     /* reaped and ignored: it is not in the table */
        close(sv[0]);
        free(n);
        snprintf(err, errlen, "out of memory");
        return BX_E_INTERNAL;
    }
    n->pid = pid;
    n->vm = vm;
    n->cg_seq = seq;
    struct node **pp = pid_slot(pid);
    n->hnext = *pp;
    *pp = n;
    mgr->nnodes++;
    bufferevent_setcb(n->chan, node_read_cb, NULL, node_event_cb, n);
    bufferevent_disable(n->chan, EV_WRITE);  /* on by default; see flush.c */
    bufferevent_enable(n->chan, EV_READ);
    vm->node = n;
    vm->state = VM_STARTING;
    json_t *init = json_deep_copy(vm->init);
    json_object_set_new(init, "op", json_string("init"));
    json_object_set_new(init, "host_pid", json_integer(pid));  /* it may be pid 1 in its namespace */
    /* init goes first, before requests held during a restart's back-off */
    struct pending *held = vm->head, *held_tail = vm->tail;
    size_t nheld = vm->npending;
    vm->head = vm->tail = NULL;
    vm->npending = 0;
    vmproc_send(vm, init, client_id, orig_id, PEND_INIT, NODE_START_TIMEOUT);
    json_decref(init);
    if (held) {
        vm->tail->next = held;
        vm->tail = held_tail;
        vm->npending += nheld;
    }
    if (vm->held && evbuffer_get_length(vm->held))
        evbuffer_add_buffer(node_out(vm), vm->held);
    return BX_OK;
}

/* ---- VM lifetime -------------------------------------------------------- */

struct vm *vmproc_create(const char *name, json_t *init, struct client *owner,
                         json_t *orig_id, enum bx_err *code, char *err, size_t errlen)
{
    *code = BX_E_INTERNAL;
    struct vm *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(vm->name, sizeof vm->name, "%s", name);
    vm->init = json_incref(init);
    json_t *limits = json_object_get(init, "limits");
    vm->timeout = limit_num(limits, "timeout");
    json_t *t = json_object_get(limits, "timeout");
    size_t tl = json_is_number(t) ? json_dumpb(t, vm->timeout_text, sizeof vm->timeout_text - 1,
                                               JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    if (tl == 0 || tl >= sizeof vm->timeout_text)
        tl = (size_t)snprintf(vm->timeout_text, sizeof vm->timeout_text, "%.17g", vm->timeout);
    vm->timeout_text[tl] = 0;
    vm->instruction_limit = (json_int_t)limit_num(limits, "instruction_limit");
    vm->cpu_limit = limit_num(limits, "cpu_limit");
    vm->persistent = json_is_true(json_object_get(init, "persistent"));
    vm->networked = json_is_true(json_object_get(init, "networked"));
    vm->full_isolation = json_is_true(json_object_get(init, "full_isolation"));
    const char *restart = json_string_value(json_object_get(init, "restart"));
    vm->restart_on_crash = restart && strcmp(restart, "on-crash") == 0;
    /* Fully isolated scripts never run as root: nobody, unless told otherwise */
    if (vm->full_isolation && geteuid() == 0 && !json_object_get(init, "uid")) {
        json_object_set_new(init, "uid", json_integer(BX_NOBODY));
        if (!json_object_get(init, "gid"))
            json_object_set_new(init, "gid", json_integer(BX_NOBODY));
    }
    json_object_del(init, "persistent");
    vm->deadline = evtimer_new(mgr->base, deadline_cb, vm);
    vm->next_id = 1;
    /* no orig_id: nobody waits for the init reply (a pool VM, pool.c) */
    uint64_t waiter = orig_id ? owner->id : 0;
    if (!vm->deadline || (*code = node_spawn(vm, waiter, orig_id, err, errlen)) != BX_OK) {
        if (vm->deadline)
            event_free(vm->deadline);
        json_decref(vm->init);
        json_decref(vm->isolation);
        free(vm);
        return NULL;
    }
    vm->owner_id = owner->id;
    vm->own_next = owner->vms;
    if (owner->vms)
        owner->vms->own_prev = vm;
    owner->vms = vm;
    stats_vm_created(vm);
    registry_add(vm);
    return vm;
}

static void vm_unlink_owner(struct vm *vm)
{
    struct client *c = vm->owner_id ? mgr->slots[(uint32_t)vm->owner_id] : NULL;
    if (c && c->id != vm->owner_id)
        c = NULL;
    if (vm->own_prev)
        vm->own_prev->own_next = vm->own_next;
    else if (c && c->vms == vm)
        c->vms = vm->own_next;
    if (vm->own_next)
        vm->own_next->own_prev = vm->own_prev;
    vm->own_prev = vm->own_next = NULL;
    vm->owner_id = 0;
}

static void pending_free(struct pending *p)
{
    json_decref(p->orig_id);
    free(p);
}

static void pending_answer(struct pending *p, json_t *reply)
{
    struct client *c = client_find(p->client_id);
    if (c && reply)
        client_send(c, reply);
    json_decref(reply);
}

/* Answers every pending request: the head with head_code, the rest with
 * VM_CRASHED; "restarted" tells the client whether the VM lives on fresh. */
static size_t vm_fail_pending(struct vm *vm, enum bx_err head_code,
                              const char *msg, int restarted)
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
        pending_answer(p, r);
        pending_free(p);
    }
    vm->head = vm->tail = NULL;
    vm->npending = 0;
    return n;
}

void vmproc_destroy(struct vm *vm, enum bx_err code, const char *why)
{
    if (vm->pool)
        pool_vm_gone(vm);
    vm_fail_pending(vm, code, why, 0);
    node_detach(vm->node);
    mailbox_vm_removed(vm->name);   /* mailbox hook */
    registry_remove(vm);
    vm_unlink_owner(vm);
    event_free(vm->deadline);
    if (vm->restart_ev)
        event_free(vm->restart_ev);
    if (vm->held)
        evbuffer_free(vm->held);
    json_decref(vm->init);
    json_decref(vm->isolation);
    free(vm);
}

void vmproc_disown(struct client *c)
{
    struct vm *vm = c->vms, *next;
    c->vms = NULL;
    for (; vm; vm = next) {
        next = vm->own_next;
        vm->own_prev = vm->own_next = NULL;
        vm->owner_id = 0;
        if (!vm->persistent)
            vmproc_destroy(vm, BX_E_VM_CRASHED, "VM destroyed: its owner disconnected");
    }
}

void vmproc_kill_all(struct manager *m)
{
    size_t n;
    struct vm **all = registry_all(&n);
    for (size_t i = 0; all && i < n; i++)
        vmproc_destroy(all[i], BX_E_SHUTTING_DOWN, "manager is shutting down");
    free(all);
    (void)m;
}

/* ---- requests ----------------------------------------------------------- */

static void deadline_arm(struct vm *vm)
{
    struct pending *h = vm->head;
    if (h && h->timeout > 0 && !vm->restarting) {
        double t = h->timeout + mgr->grace;
        if (t > 1e9)    /* a huge timeout (1e300 is valid JSON) must not overflow time_t */
            t = 1e9;
        struct timeval tv = {(time_t)t, (suseconds_t)((t - (time_t)t) * 1e6)};
        evtimer_add(vm->deadline, &tv);
    } else {
        evtimer_del(vm->deadline);
    }
}

/* Where a request to vm's node is written: its channel, or while the VM is
 * restarting the held buffer that follows the next node's init. */
static struct evbuffer *node_out(struct vm *vm)
{
    if (vm->node && vm->node->chan) {
        flush_mark(vm->node->chan, &vm->node->dirty);
        return bufferevent_get_output(vm->node->chan);
    }
    return vm->restarting ? vm->held : NULL;
}

void vmproc_send_raw(struct vm *vm, json_t *msg)
{
    size_t len;
    struct evbuffer *out = node_out(vm);
    char *buf = out ? proto_dump(msg, &len) : NULL;
    if (buf) {
        evbuffer_add(out, buf, len);
        free(buf);
    }
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

int vmproc_send(struct vm *vm, json_t *req, uint64_t client_id, json_t *orig_id,
                enum pend_kind kind, double timeout)
{
    struct pending *p = pending_push(vm, client_id, orig_id, kind, timeout);
    if (!p)
        return -1;
    json_object_set_new(req, "id", json_integer((json_int_t)p->node_id));
    vmproc_send_raw(vm, req);
    return 0;
}

int vmproc_send_op(struct vm *vm, const char *op, json_t *req, int runs,
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

/* ---- node frames -------------------------------------------------------- */

/* The node broke the protocol: kill it; the reap path reports the crash. */
static void node_died(struct node *n);
static void node_broken(struct node *n)
{
    if (!n->reaped)
        kill(n->pid, SIGKILL);
    node_close_chan(n);
    if (n->reaped && n->vm)     /* no SIGCHLD will come again: account now */
        node_died(n);
}

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

/* Metrics (runs only) and events from a fully parsed reply. */
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

static void init_reply(struct vm *vm, struct pending *p, json_t *msg)
{
    struct client *c = client_find(p->client_id);
    if (json_object_get(msg, "error")) {
        json_object_set(msg, "id", p->orig_id);
        if (c)
            client_send(c, msg);
        else
            events_emit(vm, "VM_CRASH", json_pack("{s:s}", "reason", "node init failed"));
        vmproc_destroy(vm, BX_E_VM_CRASHED, "VM failed to start");
        return;
    }
    vm->state = VM_READY;
    if (c)
        client_send_new(c, proto_reply_new(p->orig_id,
                        json_pack("{s:s, s:i, s:O}", "name", vm->name, "pid", (int)vm->node->pid,
                                  "isolation", vm->isolation)));
    spare_kick();   /* after the reply: flush_all() sends it before the next loop turn */
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

static void node_reply(struct node *n, json_t *msg)
{
    struct vm *vm = n->vm;
    json_t *id = json_object_get(msg, "id");
    struct pending *p = head_take(n, (uint64_t)json_integer_value(id), json_is_integer(id));
    if (!p)
        return;
    if (p->kind == PEND_INIT) {
        init_reply(vm, p, msg);
    } else {
        json_object_del(msg, "hdr");
        json_object_set(msg, "id", p->orig_id);
        if (strcmp(p->op, "stats") == 0 && json_is_object(json_object_get(msg, "result")))
            stats_vm_reply(vm, json_object_get(msg, "result"));  /* adds the manager's counters */
        client_send(client_find(p->client_id), msg);  /* the reply, then its event */
        reply_accounting(vm, p, msg);
    }
    pending_free(p);
}

/* Accounts for a run whose reply passed through; only an error's reply is
 * parsed, for its message (errors are rare, successes are the hot path). */
static void passed_run(struct vm *vm, struct pending *p, const struct nodewire_head *h,
                       const char *line, size_t len)
{
    json_t *msg = NULL;
    if (h->code[0]) {
        char err[64];
        msg = proto_parse(line, len, err, sizeof err);
    }
    stats_run(vm, p->op, h->code, h->code[0] ? -1 : h->us / 1e3, (json_int_t)h->mem,
              json_string_value(json_object_get(json_object_get(msg, "error"), "message")));
    json_decref(msg);
}

/* The hot path: the reply's bytes after its id go to the client as they are;
 * metrics and events come from the header. A reply without one passes only
 * if it is a result of an op that runs no code. 0, or -1 to parse it fully. */
static int node_reply_passed(struct node *n, const char *line, size_t len)
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

static void node_callback(struct vm *vm, json_t *msg)
{
    struct client *owner = client_find(vm->owner_id);
    if (owner) {
        json_object_set_new(msg, "vm", json_string(vm->name));
        client_send(owner, msg);
        return;
    }
    json_t *r = json_pack("{s:s, s:O, s:s}", "op", "cb_result", "callback",
                          json_object_get(msg, "callback"), "error", "callback owner is gone");
    vmproc_send_raw(vm, r);
    json_decref(r);
}

static void node_frame(struct node *n, const char *line, size_t len)
{
    char err[256];
    if (node_reply_passed(n, line, len) == 0)
        return;
    json_t *msg = proto_parse(line, len, err, sizeof err);
    if (!msg) {
        fprintf(stderr, "bioxen-manager: node %d: %s\n", (int)n->pid, err);
        node_broken(n);
        return;
    }
    if (json_object_get(msg, "callback")) {
        node_callback(n->vm, msg);
    } else if (stream_node_frame(n->vm, msg)) {
        ; /* a stream item: to its requester */
    } else if (mailbox_node_frame(n->vm, msg, len)) {
        ; /* mail, mail_pull: mailbox.c answers */
    } else if (policy_node_frame(n->vm, msg)) {
        ; /* ask: fs_read, module */
    } else if (json_is_string(json_object_get(msg, "event"))) {
        json_object_set_new(msg, "vm", json_string(n->vm->name));
        json_object_set_new(msg, "ts", json_real(proto_now()));
        events_emit_json(n->vm, json_incref(msg));
    } else {
        node_reply(n, msg);
    }
    json_decref(msg);
}

static void node_read_cb(struct bufferevent *bev, void *arg)
{
    struct node *n = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    n->busy = 1;    /* keeps n alive while a frame tears its VM down */
    /* Each frame may end this node (a bad frame, a failed init): stop then. */
    while (n->vm && n->chan) {
        const char *line;
        size_t len;
        int rc = linebuf_next(in, &n->scanned, mgr->max_frame, &line, &len);
        if (rc < 0) {
            fprintf(stderr, "bioxen-manager: node %d sent an oversized frame\n", (int)n->pid);
            node_broken(n);
            break;
        }
        if (rc == 0)
            break;
        if (len > 0)
            node_frame(n, line, len);
        if (n->chan)
            evbuffer_drain(in, len + 1);
    }
    if (n->vm && n->vm->pool)
        pool_vm_settled(n->vm);
    n->busy = 0;
    node_release(n);
    flush_all();
}

/* ---- restart="on-crash" ------------------------------------------------- */

/* Erlang-style: restart at once-ish, back off while it keeps crashing, give
 * up after RESTART_MAX crashes within RESTART_WINDOW seconds. */
#define RESTART_WINDOW 60.0
#define RESTART_MAX 10
#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 5.0

static void restart_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct vm *vm = arg;
    char err[256];
    vm->restarting = 0;
    if (node_spawn(vm, 0, NULL, err, sizeof err) != BX_OK) {
        events_emit(vm, "VM_CRASH", json_pack("{s:s}", "reason", err));
        vmproc_destroy(vm, BX_E_VM_CRASHED, err);
        return;
    }
    events_emit(vm, "VM_RESTART", json_pack("{s:s, s:i, s:i}", "reason", "VM_CRASHED",
                                            "pid", (int)vm->node->pid, "crashes", vm->crashes));
}

/* Schedules a fresh node after a back-off; requests that arrive meanwhile
 * wait in vm->held. 1 if so, 0 when the VM should go. */
static int crash_restart(struct vm *vm, const char *msg)
{
    if (!vm->restart_on_crash || vm->state != VM_READY || mgr->shutting_down)
        return 0;   /* a node that cannot even start would only crash again */
    double now = proto_now();
    if (now - vm->crash_since > RESTART_WINDOW)
        vm->crash_since = now, vm->crashes = 0;
    if (++vm->crashes > RESTART_MAX)
        return 0;
    if (!vm->restart_ev)
        vm->restart_ev = evtimer_new(mgr->base, restart_cb, vm);
    if (!vm->held)
        vm->held = evbuffer_new();
    if (!vm->restart_ev || !vm->held)
        return 0;
    double d = BACKOFF_FIRST * (double)(1u << (vm->crashes - 1));
    d = d > BACKOFF_MAX ? BACKOFF_MAX : d;
    vm_fail_pending(vm, BX_E_VM_CRASHED, msg, 1);
    vm->restarting = 1;
    vm->state = VM_STARTING;
    struct timeval tv = {(time_t)d, (suseconds_t)((d - (time_t)d) * 1e6)};
    evtimer_add(vm->restart_ev, &tv);
    return 1;
}

/* ---- death -------------------------------------------------------------- */

static int died_of_cpu_limit(struct vm *vm, struct node *n)
{
    if (!WIFSIGNALED(n->status))
        return 0;
    int sig = WTERMSIG(n->status);
    return sig == SIGXCPU ||
           (sig == SIGKILL && vm->cpu_limit > 0 && n->cpu_s >= vm->cpu_limit - 0.05);
}

/* A crash: the event(s), then a restart or the VM's end. */
static void node_crashed(struct vm *vm, int status)
{
    char msg[160];
    json_t *sig = json_null(), *st = json_null();
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
        snprintf(msg, sizeof msg, "VM node was killed by seccomp: it made a forbidden system call");
        events_emit(vm, "SECURITY_VIOLATION", json_pack("{s:s, s:s}", "layer", "seccomp",
                                                        "what", "forbidden system call"));
    } else if (WIFSIGNALED(status)) {
        snprintf(msg, sizeof msg, "VM node died of signal %d", WTERMSIG(status));
    } else {
        snprintf(msg, sizeof msg, "VM node exited with status %d", WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status))
        sig = json_integer(WTERMSIG(status));
    else
        st = json_integer(WEXITSTATUS(status));
    int again = vm->restart_on_crash && vm->state == VM_READY;
    events_emit(vm, "VM_CRASH", json_pack("{s:o, s:o, s:I, s:b}", "signal", sig, "status", st,
                                          "pending", (json_int_t)vm->npending, "restart", again));
    if (!crash_restart(vm, msg))
        vmproc_destroy(vm, BX_E_VM_CRASHED, msg);
}

/* Both the channel EOF and the exit status are in: account for the death. */
static void node_died(struct node *n)
{
    struct vm *vm = n->vm;
    int status = n->status;
    n->vm = NULL;
    vm->node = NULL;
    if (died_of_cpu_limit(vm, n)) {
        node_release(n);
        vm_restart(vm, BX_E_CPU_LIMIT);
    } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && cgroup_oom_killed(n->cg_seq)) {
        node_release(n);    /* the kernel's OOM killer, in the VM's own cgroup */
        vm_restart(vm, BX_E_MEMORY_LIMIT);
    } else {
        node_release(n);
        node_crashed(vm, status);
    }
}

static void node_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct node *n = arg;
    (void)bev;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    node_close_chan(n);
    if (!n->vm)
        node_release(n);
    else if (n->reaped)
        node_died(n);
    else
        kill(n->pid, SIGKILL);  /* a node that hung up is finished; make sure */
}

void vmproc_reap_cb(evutil_socket_t sig, short ev, void *arg)
{
    (void)sig; (void)ev; (void)arg;
    int status;
    struct rusage ru;
    pid_t pid;
    while ((pid = wait4(-1, &status, WNOHANG, &ru)) > 0) {
        struct node *n = *pid_slot(pid);
        if (!n) {
            spare_reaped(pid);
            continue;
        }
        n->reaped = 1;
        n->status = status;
        n->cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        /* The channel may still hold its last frames: EOF finishes the job. */
        if (!n->vm)
            node_release(n);
        else if (!n->chan)
            node_died(n);
    }
}

/* ---- kills and restarts ------------------------------------------------- */

static void vm_restart(struct vm *vm, enum bx_err reason)
{
    char msg[160], err[256];
    int timeout = reason == BX_E_TIMEOUT;
    double t = vm->head ? vm->head->timeout : vm->timeout;
    json_t *mem = json_object_get(json_object_get(vm->init, "limits"), "memory_limit");
    if (timeout)
        snprintf(msg, sizeof msg, "wall timeout of %gs exceeded; the VM was killed and restarted", t);
    else if (reason == BX_E_MEMORY_LIMIT)
        snprintf(msg, sizeof msg, "the VM's cgroup ran out of memory (memory_limit %g bytes); "
                 "the kernel killed it and it was restarted", json_number_value(mem));
    else
        snprintf(msg, sizeof msg, "CPU limit of %gs exceeded; the VM was killed and restarted",
                 vm->cpu_limit);
    vm_fail_pending(vm, reason, msg, 1);
    node_detach(vm->node);
    if (timeout)
        events_emit(vm, "TIMEOUT", json_pack("{s:f, s:b}", "timeout", t, "killed", 1));
    else if (reason == BX_E_MEMORY_LIMIT)
        events_emit(vm, "MEM_KILL", json_pack("{s:O?, s:s}", "limit", mem, "by", "cgroup"));
    else
        events_emit(vm, "CPU_KILL", json_pack("{s:f}", "limit", vm->cpu_limit));
    if (node_spawn(vm, 0, NULL, err, sizeof err) != BX_OK) {
        events_emit(vm, "VM_CRASH", json_pack("{s:s}", "reason", err));
        vmproc_destroy(vm, BX_E_VM_CRASHED, err);
        return;
    }
    events_emit(vm, "VM_RESTART", json_pack("{s:s, s:i}", "reason", bx_err_code(reason),
                                            "pid", (int)vm->node->pid));
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
        vm_restart(vm, BX_E_TIMEOUT);
}

/* At exit: forget nodes that did not get reaped in time (SIGKILLed already,
 * and PR_SET_PDEATHSIG covers them once we are gone). */
void vmproc_free_all(struct manager *m)
{
    for (size_t i = 0; m->pids && i < PID_BUCKETS; i++) {
        for (struct node *n = m->pids[i], *next; n; n = next) {
            next = n->hnext;
            node_close_chan(n);
            free(n);
        }
    }
    free(m->pids);
    m->pids = NULL;
}
