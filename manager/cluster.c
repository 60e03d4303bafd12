/* cluster.c - the manager's NATS link, loop side (cluster.h).
 *
 * nats.c reads and writes the socket on our event_base (its libevent
 * adapter, clusterev.c). A subscription to an exact subject (the hot ones:
 * forwarded requests and frames, mail) is synchronous: clusterev.c calls
 * cluster__drain() right after nats.c parsed a read, which hands each
 * message to its handler here, never leaving the loop thread. A wildcard
 * subscription (reply inboxes: pongs, no-responders, list parts) is
 * asynchronous, because a synchronous one loses a "no responders" status's
 * subject (natsSubscription_NextMsg returns NATS_NO_RESPONDERS and destroys
 * it): nats.c's delivery thread copies the message into the inbox
 * (clusterq.c) and wakes the loop. Connection callbacks (disconnected,
 * reconnected, errors) and the worker's done callbacks come the same way;
 * wake_cb delivers them. Blocking calls go to the worker (clusterwork.c).
 *
 * Why the loop keeps its own idea of "up" (C.up, from the state events)
 * instead of asking natsConnection_Status: nats.c 3.4.1's reconnect thread
 * holds the connection's lock through each TCP connect and handshake
 * (_doReconnect -> _createConn), up to the connect timeout when a server
 * is unreachable rather than refusing. Every call that takes that lock
 * (Status, Publish, Subscribe, GetMaxPayload) would stall the loop as long.
 * So while down we call none of them: publish fails fast on C.up, and
 * subscriptions wait for the next up. What remains is the short window
 * between a disconnect and its event reaching the loop (with one server,
 * nats.c first sleeps the reconnect wait, lock released; with several it
 * tries the next at once): clusteropts.c's CONNECT_TIMEOUT_MS bounds it. */
#include "clusterint.h"
#include "clusterq.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define INBOX_MAX_MSGS 65536            /* wildcard messages; state and done are never dropped */
#define INBOX_MAX_BYTES (64u << 20)
#define PREFIX_MAX 32
#define DRAIN_BATCH 256                 /* messages per drain, then let other events run */
#define DRAIN_PER_SUB 64                /* per subscription per drain: no one starves the rest */

struct csub {
    char *subject, *queue;
    cluster_handler h;
    void *arg;
    natsSubscription *sub;      /* NULL until the connection exists */
    int sync;                   /* an exact subject: drained on the loop */
};

struct listener {
    cluster_state_fn fn;
    void *arg;
};

static struct {
    int enabled, inbox_ready, stopped;
    struct event_base *base;
    struct event *wake_ev;
    struct cq inbox;
    natsOptions *opts;
    natsConnection *nc;         /* loop-owned; set once the worker connected */
    char host[CLUSTER_HOST_MAX + 1], prefix[PREFIX_MAX + 1];
    struct csub **subs;
    size_t nsubs;
    struct listener *ls;
    size_t nls;
    int up;                     /* connected, as the last state event said */
    int no_responders;          /* of the message being handled */
    cluster_state_fn on_error;  /* asynchronous errors: cluster_on_error */
    void *on_error_arg;
    int early_up;               /* a state event that came before nc: -1 none */
    size_t max_payload;         /* the server's, read when it came up */
    size_t next_sub;            /* where the next drain starts (round robin) */
    int draining;
    void (*flush)(void);        /* cluster_on_drained */
} C;

void cluster_on_drained(void (*fn)(void)) { C.flush = fn; }

int cluster_enabled(void) { return C.enabled; }
int cluster_msg_no_responders(void) { return C.no_responders; }
const char *cluster_self(void) { return C.enabled ? C.host : ""; }

/* nats.c drops past a subscription's pending bound (65,536 messages or
 * 64 MB, a slow-consumer error): what the loop could not keep up with. */
unsigned long long cluster_dropped(void)
{
    unsigned long long d = C.inbox_ready ? cq_dropped(&C.inbox) : 0;
    int64_t n;
    for (size_t i = 0; i < C.nsubs && !C.stopped; i++)
        if (C.subs[i]->sub && natsSubscription_GetDropped(C.subs[i]->sub, &n) == NATS_OK)
            d += (unsigned long long)n;
    return d;
}

int cluster_up(void)
{
    return C.nc && C.up && !C.stopped;
}

size_t cluster_max_payload(void)
{
    return cluster_up() ? C.max_payload : 0;
}

int cluster_subject(char *buf, size_t n, const char *fmt, ...)
{
    int k = snprintf(buf, n, "%s.", C.prefix);
    if (k < 0 || (size_t)k >= n)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf + k, n - (size_t)k, fmt, ap);
    va_end(ap);
    return r < 0 || (size_t)r >= n - (size_t)k ? -1 : 0;
}

/* ---- from nats.c's threads: copy, push, wake; nothing else ---- */

static void wake(void *unused)
{
    (void)unused;
    event_active(C.wake_ev, EV_READ, 0);   /* thread-safe: natsLibevent_Init */
}

/* A wildcard subscription's message, on its delivery thread. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc; (void)sub;
    struct cq_item *it = cq_item_new(CQ_MSG, natsMsg_GetSubject(m), natsMsg_GetReply(m),
                                     natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    if (it)
        it->up = natsMsg_IsNoResponders(m);     /* MSG: the flag rides in 'up' */
    natsMsg_Destroy(m);
    if (!it)
        return;
    it->target = closure;
    if (cq_push(&C.inbox, it) == 1)     /* first of a burst; hello counts them all */
        fprintf(stderr, "bioxen-manager: cluster: inbox full (%u messages or %u MiB): "
                "dropping new messages\n", INBOX_MAX_MSGS, INBOX_MAX_BYTES >> 20);
}

void cluster__post_state(int up, const char *why)
{
    struct cq_item *it = cq_item_new(CQ_STATE, why, NULL, NULL, 0);
    if (!it)
        return;
    it->up = up;
    cq_push(&C.inbox, it);
}

void cluster__post_done(cluster_fn done, void *arg)
{
    struct cq_item *it = cq_item_new(CQ_DONE, NULL, NULL, NULL, 0);
    if (!it) {      /* cannot be owed: better late on this thread than never */
        fprintf(stderr, "bioxen-manager: cluster: out of memory posting a job's end\n");
        return;
    }
    it->target = (void *)done;
    it->arg = arg;
    cq_push(&C.inbox, it);
}

/* ---- on the loop ---- */

static int sub_now(struct csub *s);

/* Connected: read what takes the lock now, while it is free (nc is up),
 * and send the subscriptions made while down. */
static void came_up(void)
{
    int64_t m = natsConnection_GetMaxPayload(C.nc);
    C.max_payload = m > 0 ? (size_t)m : 0;
    for (size_t i = 0; i < C.nsubs; i++)
        if (!C.subs[i]->sub)
            sub_now(C.subs[i]);
    cw_bind_kv();       /* the bucket may be new, or gone with a wiped store */
}

static void deliver_state(int up, const char *why)
{
    if (up < 0) {       /* an asynchronous error (slow consumer, ...): state unchanged */
        fprintf(stderr, "bioxen-manager: cluster: %s\n", why);
        if (C.on_error)
            C.on_error(C.up, why, C.on_error_arg);
        return;
    }
    if (!C.nc) {        /* before the worker handed us the connection */
        C.early_up = up;
        return;
    }
    if (up == C.up)
        return;
    C.up = up;
    fprintf(stderr, "bioxen-manager: cluster: %s\n", why);
    if (up)
        came_up();
    for (size_t i = 0; i < C.nls; i++)
        C.ls[i].fn(up, why, C.ls[i].arg);
}

/* The handler, for a message (m: a synchronous subscription's, the
 * caller's to bury) or an inbox item (it). */
static void deliver_msg(struct csub *s, natsMsg *m, struct cq_item *it)
{
    char err[256];
    int nr = m ? natsMsg_IsNoResponders(m) : it->up;
    json_t *msg = nr ? NULL : m ? proto_parse(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                                              err, sizeof err)
                                : proto_parse(it->data, it->len, err, sizeof err);
    C.no_responders = nr;
    s->h(m ? natsMsg_GetSubject(m) : it->subject, m ? natsMsg_GetReply(m) : it->reply, msg, s->arg);
    C.no_responders = 0;
    json_decref(msg);
}

/* A synchronous subscription's "no responders" (NextMsg destroyed it):
 * its subject is the subscription's, exact by construction. */
static void deliver_no_responders(struct csub *s)
{
    C.no_responders = 1;
    s->h(s->subject, NULL, NULL, s->arg);
    C.no_responders = 0;
}

/* Up to DRAIN_PER_SUB of each subscription's pending messages, at most
 * DRAIN_BATCH in all, starting where the last drain stopped; what is left
 * gets a wake of its own, so other events run in between. A handler may
 * subscribe (C.subs grows): indices, not pointers, across calls. */
void cluster__drain(void)
{
    size_t budget = DRAIN_BATCH, n = C.nsubs;
    int more = 0;
    if (C.stopped || C.draining || !n)
        return;
    C.draining = 1;
    for (size_t k = 0; k < n && !C.stopped; k++) {
        size_t i = (C.next_sub + k) % n;
        int pending = 0;
        if (!C.subs[i]->sub || !C.subs[i]->sync ||
            natsSubscription_GetPending(C.subs[i]->sub, &pending, NULL) != NATS_OK)
            continue;
        for (int j = 0; j < pending && j < DRAIN_PER_SUB && budget && !C.stopped; j++) {
            natsMsg *m = NULL;
            natsStatus st = natsSubscription_NextMsg(&m, C.subs[i]->sub, 0);
            if (st == NATS_SLOW_CONSUMER)       /* said once after drops; on_error logged them */
                st = natsSubscription_NextMsg(&m, C.subs[i]->sub, 0);
            if (st == NATS_NO_RESPONDERS)
                deliver_no_responders(C.subs[i]);
            else if (st != NATS_OK)
                break;
            else {
                deliver_msg(C.subs[i], m, NULL);
                cluster__bury(m);
            }
            budget--;
        }
        more |= pending > DRAIN_PER_SUB || !budget;
    }
    C.next_sub = (C.next_sub + 1) % n;
    if (budget < DRAIN_BATCH && C.flush)
        C.flush();
    C.draining = 0;
    if (more && !C.stopped)
        event_active(C.wake_ev, EV_READ, 0);
}

static void wake_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    struct cq_item *list, *next;
    int more = cq_take(&C.inbox, &list, DRAIN_BATCH);
    for (; list; list = next) {
        next = list->next;
        if (list->kind == CQ_MSG && !C.stopped)
            deliver_msg(list->target, NULL, list);
        else if (list->kind == CQ_STATE && !C.stopped)
            deliver_state(list->up, list->subject);
        else if (list->kind == CQ_DONE && list->target)
            ((cluster_fn)list->target)(list->arg);
        free(list);
    }
    if (more)
        event_active(C.wake_ev, EV_READ, 0);
    cluster__drain();   /* what is left over from the last drain */
}

static int sub_now(struct csub *s)
{
    natsStatus st = !s->sync ? (s->queue
            ? natsConnection_QueueSubscribe(&s->sub, C.nc, s->subject, s->queue, on_msg, s)
            : natsConnection_Subscribe(&s->sub, C.nc, s->subject, on_msg, s))
        : s->queue ? natsConnection_QueueSubscribeSync(&s->sub, C.nc, s->subject, s->queue)
                   : natsConnection_SubscribeSync(&s->sub, C.nc, s->subject);
    if (st != NATS_OK) {
        fprintf(stderr, "bioxen-manager: cluster: cannot subscribe to %s: %s\n",
                s->subject, natsStatus_GetText(st));
        s->sub = NULL;
        return -1;
    }
    /* nats.c's own pending bound (65,536 messages or 64 MB) stays. For a
     * synchronous subscription it is the inbox: past it nats.c drops,
     * counts (cluster_dropped) and reports a slow consumer (on_error); its
     * reader never waits for the loop. An asynchronous one's on_msg empties
     * it at once, so there the bound that bites is the inbox's. */
    return 0;
}

int cluster_subscribe(const char *subject, const char *queue, cluster_handler h, void *arg)
{
    if (!C.enabled || C.stopped)
        return -1;
    struct csub *s = calloc(1, sizeof *s);
    struct csub **grown = realloc(C.subs, (C.nsubs + 1) * sizeof *grown);
    if (grown)
        C.subs = grown;
    if (!s || !grown || !(s->subject = strdup(subject)) || (queue && !(s->queue = strdup(queue)))) {
        if (s)
            free(s->subject);
        free(s);
        return -1;
    }
    s->h = h;
    s->arg = arg;
    s->sync = !strpbrk(subject, "*>");     /* see the head of this file */
    C.subs[C.nsubs++] = s;
    return cluster_up() ? sub_now(s) : 0;     /* else at the next up */
}

void cluster_on_error(cluster_state_fn fn, void *arg)
{
    C.on_error = fn;
    C.on_error_arg = arg;
}

int cluster_on_state(cluster_state_fn fn, void *arg)
{
    struct listener *grown = realloc(C.ls, (C.nls + 1) * sizeof *grown);
    if (!grown)
        return -1;
    C.ls = grown;
    C.ls[C.nls].fn = fn;
    C.ls[C.nls++].arg = arg;
    return 0;
}

int cluster_publish_raw(const char *subject, const char *reply, const char *data, size_t len,
                        char *err, size_t n)
{
    if (!cluster_up()) {
        snprintf(err, n, "cluster unavailable");
        return -1;
    }
    if (cq_payload_fits(len, cluster_max_payload(), err, n) < 0)
        return -1;
    natsStatus s = reply ? natsConnection_PublishRequest(C.nc, subject, reply, data, (int)len)
                         : natsConnection_Publish(C.nc, subject, data, (int)len);
    if (s != NATS_OK) {
        snprintf(err, n, "cluster publish failed: %s", natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

int cluster_publish(const char *subject, const char *reply, json_t *msg, char *err, size_t n)
{
    if (!cluster_up()) {
        snprintf(err, n, "cluster unavailable");
        return -1;
    }
    size_t len;
    char *buf = proto_dump(msg, &len);
    if (!buf) {
        snprintf(err, n, "cannot encode the message");
        return -1;
    }
    /* len - 1: proto_dump's newline frames the socket protocol, not NATS */
    int r = cluster_publish_raw(subject, reply, buf, len - 1, err, n);
    free(buf);
    return r;
}

int cluster_defer(cluster_fn work, cluster_fn done, void *arg)
{
    return C.enabled && !C.stopped ? cw_submit(work, done, arg) : -1;
}

/* From the worker's first job, on the loop: the connection exists now
 * (NULL: options nats.c refused). A state event that overtook this job's
 * end is newer than the connect itself, so it wins. */
static void connected(natsConnection *nc, int up)
{
    C.nc = nc;
    if (nc && (C.early_up >= 0 ? C.early_up : up))
        deliver_state(1, "connected");
}


int cluster_start(struct event_base *base, const struct cluster_opts *o, char *err, size_t n)
{
    const char *prefix = o->prefix ? o->prefix : "bioxen";
    if (!cluster__host_ok(o->host)) {
        snprintf(err, n, "--host-name: '%s' is not a valid host name (letters, digits, _ : -; at most %d)",
                 o->host ? o->host : "", CLUSTER_HOST_MAX);
        return -1;
    }
    if (!cluster__host_ok(prefix) || strlen(prefix) > PREFIX_MAX || strchr(prefix, ':')) {
        snprintf(err, n, "--cluster-name: '%s' is not a valid prefix (letters, digits, _ -; at most %d)",
                 prefix, PREFIX_MAX);
        return -1;
    }
    snprintf(C.host, sizeof C.host, "%s", o->host);
    snprintf(C.prefix, sizeof C.prefix, "%s", prefix);
    C.base = base;
    C.up = 0;
    C.early_up = -1;
    if (cluster__options(&C.opts, base, o, err, n) < 0)
        return -1;
    if (!(C.wake_ev = event_new(base, -1, EV_PERSIST, wake_cb, NULL)) ||
        cluster__grave_init(base) < 0 ||
        cq_init(&C.inbox, INBOX_MAX_MSGS, INBOX_MAX_BYTES, wake, NULL) < 0) {
        snprintf(err, n, "cluster: out of memory");
        return -1;
    }
    C.inbox_ready = C.enabled = 1;
    if (cw_start(C.opts, C.prefix, connected) < 0) {
        snprintf(err, n, "cluster: cannot start the worker thread");
        return -1;
    }
    return 0;
}

/* manager_shutdown: no new jobs; the stop tick waits for cluster_quiet(). */
void cluster_quiesce(void)
{
    if (C.enabled)
        cw_quiesce();
}

/* Not natsConnection_Buffered here: it takes the connection's lock, which
 * nats.c's reconnect thread holds through each connect attempt, and the
 * stop tick runs on the loop (a mute NATS then held shutdown for >20 s). */
int cluster_quiet(void)
{
    return !C.enabled || cw_quiet();
}

/* After the loop: the worker is done (or is joined now), so nothing else
 * uses the connection; close it on this, the loop's, thread. */
void cluster_stop(void)
{
    if (!C.enabled || C.stopped)
        return;
    C.stopped = 1;
    cw_join();
    cluster__grave_empty();
    for (size_t i = 0; i < C.nsubs; i++) {
        if (C.subs[i]->sub)
            natsSubscription_Destroy(C.subs[i]->sub);
        free(C.subs[i]->subject);
        free(C.subs[i]->queue);
        free(C.subs[i]);
    }
    free(C.subs);
    free(C.ls);
    if (C.nc) {
        natsConnection_Close(C.nc);
        natsConnection_Destroy(C.nc);
    }
    natsOptions_Destroy(C.opts);
    nats_CloseAndWait(1000);            /* its threads are gone: none pushes now */
    wake_cb(-1, 0, NULL);               /* done callbacks still owed */
    event_free(C.wake_ev);
    cluster__grave_fini();
    cq_fini(&C.inbox);
}
