/* fwd.c - the origin's half of forwarding (remote.h): requests for VMs of
 * other hosts, each owed exactly one reply.
 *
 * A forwarded request carries a sequence number of ours as its id, so its
 * reply is matched exactly (whatever ids the client chose) and re-stamped
 * with the client's own id before it goes out. Every pending request ends
 * one way: its reply, its host declared dead (hosts_on_change, or our own
 * probe: "<prefix>.h.<host>.ping" answered by nobody -- NATS's "no
 * responders" -- or not at all for FWD_DEAD_S), NATS going away, or its
 * deadline (the request's timeout + grace + a margin). The probe runs only
 * while something is pending on a host, so idle hosts cost nothing, and it
 * does not wait for the heartbeat table to notice a death. */
#include "manager.h"
#include "cluster.h"
#include "hosts.h"
#include "ops.h"
#include "remote.h"
#include "spread.h"
#include "fwdint.h"
#include "fwdcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_TICK_MS 250
#define FWD_PING_S 1.0          /* probe period of a host with requests pending */
#define FWD_DEAD_S 4.0          /* no pong this long: the host is gone (< the 5 s budget) */
#define FWD_MARGIN_S 2.0        /* on top of timeout + grace: the target answers first */
#define FWD_NO_TIMEOUT_S 3600.0 /* a request with no timeout we know of */
#define FWD_CREATE_S 30.0       /* a create: spawn and init */
#define FWD_BUCKETS 256
#define FWD_HOSTS 64            /* c->fwd_hosts is a bit per host slot */

enum fkind { FK_OTHER, FK_CREATE, FK_DESTROY, FK_RUN };   /* FK_RUN: spread.c's */

struct fpend {
    struct fpend *next;
    uint64_t seq, client_id;
    json_t *orig_id;            /* owned */
    unsigned host;              /* index into F.hosts */
    double deadline;
    enum fkind kind;
    double vm_timeout;          /* create: the VM's default timeout, for the hint */
    char name[BX_NAME_MAX + 1]; /* create, destroy: the VM */
};

struct fhost {
    char name[CLUSTER_HOST_MAX + 1];
    size_t npending;
    double last_pong, next_ping;
    int no_resp;                /* "no responders" in a row */
};

static struct {
    struct fpend *b[FWD_BUCKETS];
    struct fhost hosts[FWD_HOSTS];
    unsigned nhosts;
    uint64_t seq;
    struct event *tick;
} F;

#define FAIL(c, id, code, ...) client_send_new((c), proto_error_new((id), (code), __VA_ARGS__))

/* The slot of a host, made on first use; FWD_HOSTS at most (-1 past). */
static int host_slot(const char *name)
{
    for (unsigned i = 0; i < F.nhosts; i++)
        if (strcmp(F.hosts[i].name, name) == 0)
            return (int)i;
    if (F.nhosts == FWD_HOSTS || strlen(name) > CLUSTER_HOST_MAX)
        return -1;
    struct fhost *h = &F.hosts[F.nhosts];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    return (int)F.nhosts++;
}

/* ---- the pending table ---- */

static struct fpend *pend_take(uint64_t seq)
{
    for (struct fpend **pp = &F.b[seq % FWD_BUCKETS]; *pp; pp = &(*pp)->next)
        if ((*pp)->seq == seq) {
            struct fpend *p = *pp;
            *pp = p->next;
            F.hosts[p->host].npending--;
            return p;
        }
    return NULL;
}

static struct fpend *pend_find(uint64_t seq)
{
    struct fpend *p = F.b[seq % FWD_BUCKETS];
    while (p && p->seq != seq)
        p = p->next;
    return p;
}

/* A stream is named by its exec's id: the client's on this side, our
 * sequence number on the target's (stream_ack out, stream items back). */
static struct fpend *pend_by_client_id(uint64_t client_id, json_t *id)
{
    for (unsigned i = 0; i < FWD_BUCKETS; i++)
        for (struct fpend *p = F.b[i]; p; p = p->next)
            if (p->client_id == client_id && json_equal(p->orig_id, id))
                return p;
    return NULL;
}

static void pend_free(struct fpend *p)
{
    json_decref(p->orig_id);
    free(p);
}

/* p's one answer, when it is not the target's (p is taken already). */
static void pend_fail(struct fpend *p, enum bx_err code, const char *why)
{
    struct client *c = client_find(p->client_id);
    if (p->kind == FK_RUN &&    /* a run lost with its host: spread.c may retry it */
        spread_settled(p->client_id, p->orig_id, F.hosts[p->host].name, NULL, code)) {
        pend_free(p);
        return;
    }
    if (c)
        FAIL(c, p->orig_id, code, "%s", why);
    pend_free(p);
}

/* Every request pending on host h (all hosts: h < 0) of client cid (all:
 * 0) is answered code/why (code BX_OK: dropped, its client is gone). */
static void fail_where(int h, uint64_t cid, enum bx_err code, const char *why)
{
    for (unsigned i = 0; i < FWD_BUCKETS; i++) {
        struct fpend **pp = &F.b[i];
        while (*pp) {
            struct fpend *p = *pp;
            if ((h >= 0 && p->host != (unsigned)h) || (cid && p->client_id != cid)) {
                pp = &p->next;
                continue;
            }
            *pp = p->next;
            F.hosts[p->host].npending--;
            if (code == BX_OK && p->kind == FK_RUN)    /* spread.c forgets it too */
                spread_settled(p->client_id, p->orig_id, F.hosts[p->host].name, NULL, code);
            if (code == BX_OK)
                pend_free(p);
            else
                pend_fail(p, code, why);
        }
    }
}

static void host_dead(unsigned h, const char *how)
{
    char why[256];
    snprintf(why, sizeof why, "host '%s' is gone (%s): the VM went with it",
             F.hosts[h].name, how);
    fprintf(stderr, "bioxen-manager: cluster: host '%s' is gone (%s): failing its %zu "
            "forwarded requests\n", F.hosts[h].name, how, F.hosts[h].npending);
    fail_where((int)h, 0, BX_E_VM_CRASHED, why);
    F.hosts[h].no_resp = 0;
}

/* The deadline of a forwarded request, a backstop for a frame NATS lost
 * (a dead host is found by the probe long before): the timeout the target
 * enforces (the request's, else the VM's as its create said, else an
 * hour), the kill's grace, a margin, so the target's own TIMEOUT comes
 * first -- once for each request already pending there, since a VM runs
 * its FIFO one at a time and a local call waits its turn too. */
static double pend_deadline(struct fpend *p, json_t *req)
{
    json_t *t = json_object_get(req, "timeout");
    double s = json_is_number(t) ? json_number_value(t) : 0;
    if (p->kind == FK_CREATE) {
        s = FWD_CREATE_S;
    } else if (!json_is_number(t)) {
        s = fwdhint_timeout(req_vm_name(req));
        s = s > 0 ? s : FWD_NO_TIMEOUT_S;
    }
    double ahead = (double)F.hosts[p->host].npending;
    return proto_now() + (s + mgr->grace) * (1 + ahead) + FWD_MARGIN_S;
}

static struct fpend *pend_new(struct op_ctx *x, unsigned host)
{
    struct fpend *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->seq = ++F.seq;
    p->client_id = x->c->id;
    p->orig_id = json_incref(x->id);
    p->host = host;
    p->kind = strcmp(x->op->name, "create") == 0 ? FK_CREATE :
              strcmp(x->op->name, "destroy") == 0 ? FK_DESTROY :
              strcmp(x->op->name, "run") == 0 ? FK_RUN : FK_OTHER;
    const char *name = p->kind == FK_CREATE ? json_string_value(json_object_get(x->req, "name"))
                                            : req_vm_name(x->req);
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    if (p->kind == FK_CREATE) {
        json_t *t = json_object_get(json_object_get(x->req, "limits"), "timeout");
        p->vm_timeout = json_is_number(t) ? json_number_value(t) : 0;
    }
    p->deadline = pend_deadline(p, x->req);
    return p;
}

/* ---- forwarding ---- */

/* {from, client, identity, admin, req}: req is the client's own, its id
 * replaced by p's sequence number (NOREPLY ops have none and no p). */
static json_t *envelope(struct op_ctx *x, struct fpend *p)
{
    json_t *req = json_deep_copy(x->req);
    if (!req)
        return NULL;
    json_object_del(req, "host");       /* create: it is for the target itself */
    if (p)
        json_object_set_new(req, "id", json_integer((json_int_t)p->seq));
    if (strcmp(x->op->name, "stream_ack") == 0) {
        struct fpend *s = pend_by_client_id(x->c->id, json_object_get(req, "stream"));
        if (!s) {
            json_decref(req);
            return NULL;        /* no stream of that id in flight: nothing to ack */
        }
        json_object_set_new(req, "stream", json_integer((json_int_t)s->seq));
    }
    return json_pack("{s:s, s:I, s:s, s:b, s:o}", "from", cluster_self(),
                     "client", (json_int_t)x->c->id, "identity", x->c->identity,
                     "admin", x->c->admin, "req", req);
}

static int send_to(struct op_ctx *x, int h, struct fpend *p, char *err, size_t n)
{
    char subj[160], reply[160];
    json_t *env = envelope(x, p);
    if (!env) {
        snprintf(err, n, "out of memory");
        return -1;
    }
    int rc = cluster_subject(subj, sizeof subj, "h.%s.req", F.hosts[h].name) < 0 ||
             cluster_subject(reply, sizeof reply, "h.%s.nr.%s", cluster_self(), F.hosts[h].name) < 0
             ? (snprintf(err, n, "host name too long"), -1)
             : cluster_publish(subj, reply, env, err, n);
    json_decref(env);
    return rc;
}

void remote_forward(struct op_ctx *x, const char *host)
{
    char err[256];
    int noreply = (x->op->flags & OPF_NOREPLY) != 0, h = host_slot(host);
    if (h < 0) {
        if (strcmp(x->op->name, "run") == 0)
            spread_settled(x->c->id, x->id, host, NULL, BX_E_INTERNAL);
        if (!noreply)
            FAIL(x->c, x->id, BX_E_INTERNAL, "too many cluster hosts to forward to");
        return;
    }
    if (hosts_gone_for(host) > 0) {     /* the heartbeats said so already: no need to ask */
        if (strcmp(x->op->name, "run") == 0 &&
            spread_settled(x->c->id, x->id, host, NULL, BX_E_VM_CRASHED))
            return;
        if (!noreply)
            FAIL(x->c, x->id, BX_E_VM_CRASHED, "host '%s' is gone: VM '%s' went with it",
                 host, req_vm_name(x->req) ? req_vm_name(x->req) : "");
        return;
    }
    struct fpend *p = noreply ? NULL : pend_new(x, (unsigned)h);
    if (!noreply && !p)
        return FAIL(x->c, x->id, BX_E_INTERNAL, "out of memory");
    if (send_to(x, h, p, err, sizeof err) < 0) {
        enum bx_err code = strstr(err, "max payload") ? BX_E_FRAME_TOO_LARGE
                         : !cluster_up() ? BX_E_CLUSTER_UNAVAILABLE : BX_E_INTERNAL;
        if (p && p->kind == FK_RUN && spread_settled(x->c->id, x->id, host, NULL, code))
            return pend_free(p);
        if (p)
            FAIL(x->c, x->id, code, "%s (VM '%s' is on host '%s')", err, p->name, host);
        if (p)
            pend_free(p);
        return;
    }
    x->c->fwd_hosts |= 1ull << h;
    if (!p)
        return;
    struct fhost *fh = &F.hosts[h];
    if (fh->npending++ == 0) {      /* the probe starts with the first one */
        fh->last_pong = proto_now();
        fh->next_ping = proto_now() + FWD_PING_S;
    }
    p->next = F.b[p->seq % FWD_BUCKETS];
    F.b[p->seq % FWD_BUCKETS] = p;
}

int remote_create(struct op_ctx *x)
{
    const char *host = json_string_value(json_object_get(x->req, "host"));
    if (!host || x->c->remote || strcmp(host, cluster_self()) == 0)
        return 0;
    if (!cluster_enabled()) {
        if (strcmp(host, "*") == 0)
            return 0;       /* a lone manager is the least loaded host */
        FAIL(x->c, x->id, BX_E_BAD_REQUEST, "host '%s': this manager is not in a cluster", host);
        return 1;
    }
    if (strcmp(host, "*") == 0 && strcmp((host = hosts_pick()), cluster_self()) == 0)
        return 0;
    if (!cluster_up()) {
        FAIL(x->c, x->id, BX_E_CLUSTER_UNAVAILABLE, "cluster unavailable: cannot create on host '%s'", host);
        return 1;
    }
    if (hosts_gone_for(host) > 0) {   /* not heard: right after a connect it may yet be */
        FAIL(x->c, x->id, BX_E_BAD_REQUEST, "no live host named '%s' in the cluster", host);
        return 1;
    }
    remote_forward(x, host);
    return 1;
}

/* ---- what comes back ---- */

/* A reply: the pending request it settles gets it under the client's id. */
static void got_reply(json_t *frame, uint64_t client_id, const char *from)
{
    json_t *idv = json_object_get(frame, "id");
    struct fpend *p = json_is_integer(idv) ? pend_take((uint64_t)json_integer_value(idv)) : NULL;
    if (!p)
        return;         /* late (answered at its deadline) or not ours */
    if (p->client_id != client_id || strcmp(F.hosts[p->host].name, from) != 0) {
        pend_fail(p, BX_E_INTERNAL, "a forwarded reply came back garbled");
        return;
    }
    int ok = json_object_get(frame, "result") != NULL;
    if (ok && p->kind == FK_CREATE)
        fwdhint_set(p->name, F.hosts[p->host].name, p->vm_timeout);
    else if (p->kind == FK_DESTROY && ok)
        fwdhint_drop(p->name);
    if (p->kind == FK_RUN && spread_settled(client_id, p->orig_id, from, frame, BX_OK)) {
        pend_free(p);
        return;
    }
    json_object_set(frame, "id", p->orig_id);
    client_send(client_find(client_id), frame);
    pend_free(p);
}

/* "<prefix>.h.<self>.out": {from, client, frame}. */
static void on_out(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)reply; (void)arg;
    struct fwd_env e;
    char err[128];
    if (fwdcheck_out(msg, &e, err, sizeof err) < 0) {
        fprintf(stderr, "bioxen-manager: cluster: %s on %s: dropped\n", err, subject);
        return;
    }
    json_t *frame = e.body;
    uint64_t id = e.client;
    if (json_object_get(frame, "id"))
        got_reply(frame, id, e.from);
    else {      /* an event, a callback, a stream item: straight through */
        json_t *sid = json_object_get(frame, "stream");
        struct fpend *p = json_is_integer(sid) ? pend_find((uint64_t)json_integer_value(sid)) : NULL;
        if (sid && !(p && p->client_id == id))
            return;     /* its exec was answered already (or is not this client's) */
        if (p)
            json_object_set(frame, "stream", p->orig_id);
        client_send(client_find(id), frame);
    }
}

/* The host a ".<host>" subject ends with (a probe's pong, a no-responders). */
static int subject_host(const char *subject)
{
    const char *dot = strrchr(subject, '.');
    for (unsigned i = 0; dot && i < F.nhosts; i++)
        if (strcmp(F.hosts[i].name, dot + 1) == 0)
            return (int)i;
    return -1;
}

static void ping(unsigned h)
{
    char subj[160], reply[160], err[128];
    json_t *m = json_object();
    F.hosts[h].next_ping = proto_now() + FWD_PING_S;
    if (cluster_subject(subj, sizeof subj, "h.%s.ping", F.hosts[h].name) == 0 &&
        cluster_subject(reply, sizeof reply, "h.%s.pong.%s", cluster_self(), F.hosts[h].name) == 0)
        cluster_publish(subj, reply, m, err, sizeof err);
    json_decref(m);
}

/* A pong (a JSON object) or "no responders" (an empty payload: NATS's 503
 * status carries no body). Interest can lag a subscribe between servers,
 * so one 503 is asked again; two in a row mean nobody is there. */
static void on_pong(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)reply; (void)arg;
    int h = subject_host(subject);
    if (h < 0)
        return;
    struct fhost *fh = &F.hosts[h];
    if (msg) {
        fh->last_pong = proto_now();
        fh->no_resp = 0;
    } else if (++fh->no_resp >= 2) {
        host_dead((unsigned)h, "no manager answers on its subject");
    } else if (fh->npending) {
        ping((unsigned)h);
    }
}

static void on_tick(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    double now = proto_now();
    for (unsigned h = 0; h < F.nhosts; h++) {
        struct fhost *fh = &F.hosts[h];
        if (!fh->npending || !cluster_up())
            continue;
        if (now - fh->last_pong > FWD_DEAD_S)
            host_dead(h, "it stopped answering");
        else if (now >= fh->next_ping)
            ping(h);
    }
    for (unsigned i = 0; i < FWD_BUCKETS; i++)
        for (struct fpend *p = F.b[i], *next; p; p = next) {
            next = p->next;
            if (now >= p->deadline) {
                char why[200];
                snprintf(why, sizeof why, "no reply from host '%s' in time (forwarded request)",
                         F.hosts[p->host].name);
                pend_fail(pend_take(p->seq), BX_E_TIMEOUT, why);
            }
        }
}

static void on_state(int up, const char *why, void *arg)
{
    (void)arg;
    char msg[256];
    snprintf(msg, sizeof msg, "cluster unavailable (%s): the forwarded request is lost", why);
    if (!up)
        fail_where(-1, 0, BX_E_CLUSTER_UNAVAILABLE, msg);
}

void remote_stop(void)
{
    fail_where(-1, 0, BX_E_SHUTTING_DOWN, "manager is shutting down");
}

static void on_host(const char *host, int up, void *arg)
{
    (void)arg;
    for (unsigned h = 0; !up && h < F.nhosts; h++)
        if (strcmp(F.hosts[h].name, host) == 0)
            host_dead(h, "it missed its heartbeats");
}

/* Tells every host c forwarded to that it is gone: its proxy goes there,
 * and with it the VMs it made that are not persistent. */
void remote_client_gone(struct client *c)
{
    if (c->remote)
        return remote_proxy_gone(c);
    if (c->fwd_hosts)   /* nobody waits for these any more (the target drops them too) */
        fail_where(-1, c->id, BX_OK, NULL);
    for (unsigned h = 0; c->fwd_hosts && h < F.nhosts; h++) {
        if (!(c->fwd_hosts & (1ull << h)))
            continue;
        char subj[160], err[128];
        /* on the req subject, not a subject of its own: nats.c delivers each
         * subscription on its own thread, so a bye on another subject could
         * overtake the client's last requests and a late one would make
         * the proxy again; one subject keeps the publisher's order */
        json_t *m = json_pack("{s:s, s:I, s:b}", "from", cluster_self(),
                              "client", (json_int_t)c->id, "bye", 1);
        if (m && cluster_subject(subj, sizeof subj, "h.%s.req", F.hosts[h].name) == 0)
            cluster_publish(subj, NULL, m, err, sizeof err);
        json_decref(m);
    }
}

int fwd_start(void)
{
    char s1[160], s2[160], s3[160];
    struct timeval tv = {0, FWD_TICK_MS * 1000};
    if (cluster_subject(s1, sizeof s1, "h.%s.out", cluster_self()) < 0 ||
        cluster_subject(s2, sizeof s2, "h.%s.pong.*", cluster_self()) < 0 ||
        cluster_subject(s3, sizeof s3, "h.%s.nr.*", cluster_self()) < 0 ||
        cluster_subscribe(s1, NULL, on_out, NULL) < 0 ||
        cluster_subscribe(s2, NULL, on_pong, NULL) < 0 ||
        cluster_subscribe(s3, NULL, on_pong, NULL) < 0 ||
        cluster_on_state(on_state, NULL) < 0 || hosts_on_change(on_host, NULL) < 0 ||
        !(F.tick = event_new(mgr->base, -1, EV_PERSIST, on_tick, NULL)))
        return -1;
    return event_add(F.tick, &tv);
}
