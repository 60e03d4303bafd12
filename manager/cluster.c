/* cluster.c - the manager's NATS link, loop side (cluster.h).
 *
 * nats.c reads and writes the socket on our event_base (its libevent
 * adapter), but runs every callback on threads of its own. Those callbacks
 * do one thing: copy what arrived into the inbox (clusterq.c) and wake the
 * loop with a user event; wake_cb drains the inbox in batches and calls the
 * handlers and state listeners here, on the loop thread. Blocking calls go
 * to the worker (clusterwork.c).
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
 * tries the next at once): CONNECT_TIMEOUT_MS bounds it. */
#include "clusterint.h"
#include "clusterq.h"

#include <nats/adapters/libevent.h>     /* defines functions: this file only */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define INBOX_MAX_MSGS 65536            /* about a second of heavy traffic */
#define INBOX_MAX_BYTES (64u << 20)     /* as nats.c's own per-subscription bound */
#define DRAIN_BATCH 256                 /* then let other events run */
#define RECONNECT_WAIT_MS 250           /* a restarted nats-server is back quickly */
#define PREFIX_MAX 32
#define CONNECT_TIMEOUT_MS 1000         /* per attempt; a LAN answers in far less */
#define PING_MS 2000                    /* with 2 pings out: a dead link seen in ~4-6 s, */
#define PINGS_OUT 2                     /* not nats.c's default of 4 minutes */

struct csub {
    char *subject, *queue;
    cluster_handler h;
    void *arg;
    natsSubscription *sub;      /* NULL until the connection exists */
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
} C;

void cluster_init_threads(void)
{
    natsLibevent_Init();
}

int cluster_enabled(void) { return C.enabled; }
int cluster_msg_no_responders(void) { return C.no_responders; }
const char *cluster_self(void) { return C.enabled ? C.host : ""; }
unsigned long long cluster_dropped(void) { return C.inbox_ready ? cq_dropped(&C.inbox) : 0; }

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

static void on_reconnected(natsConnection *nc, void *c) { (void)nc; (void)c; cluster__post_state(1, "reconnected"); }
static void on_disconnected(natsConnection *nc, void *c) { (void)nc; (void)c; cluster__post_state(0, "disconnected from NATS"); }
static void on_closed(natsConnection *nc, void *c) { (void)nc; (void)c; cluster__post_state(0, "NATS connection closed"); }

/* Asynchronous errors (a slow consumer, a permission violation) do not end
 * the connection: a log line, not a state change. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *c)
{
    (void)nc; (void)sub; (void)c;
    cluster__post_state(-1, natsStatus_GetText(err));   /* a BROKER_ERROR, on the loop */
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

static void deliver_msg(struct cq_item *it)
{
    struct csub *s = it->target;
    char err[256];
    json_t *msg = it->up ? NULL : proto_parse(it->data, it->len, err, sizeof err);
    C.no_responders = it->up;
    s->h(it->subject, it->reply, msg, s->arg);
    C.no_responders = 0;
    json_decref(msg);
}

static void wake_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    struct cq_item *list, *next;
    int more = cq_take(&C.inbox, &list, DRAIN_BATCH);
    for (; list; list = next) {
        next = list->next;
        if (list->kind == CQ_MSG && !C.stopped)
            deliver_msg(list);
        else if (list->kind == CQ_STATE && !C.stopped)
            deliver_state(list->up, list->subject);
        else if (list->kind == CQ_DONE && list->target)
            ((cluster_fn)list->target)(list->arg);
        free(list);
    }
    if (more)
        event_active(C.wake_ev, EV_READ, 0);
}

static int sub_now(struct csub *s)
{
    natsStatus st = s->queue
        ? natsConnection_QueueSubscribe(&s->sub, C.nc, s->subject, s->queue, on_msg, s)
        : natsConnection_Subscribe(&s->sub, C.nc, s->subject, on_msg, s);
    if (st != NATS_OK) {
        fprintf(stderr, "bioxen-manager: cluster: cannot subscribe to %s: %s\n",
                s->subject, natsStatus_GetText(st));
        s->sub = NULL;
        return -1;
    }
    /* nats.c's own pending bound (65,536 messages) stays: on_msg empties
     * it at once, so the bound that bites is the inbox's, which counts. */
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

int cluster_publish(const char *subject, const char *reply, json_t *msg, char *err, size_t n)
{
    if (!cluster_up()) {
        snprintf(err, n, "cluster unavailable");
        return -1;
    }
    size_t len, max = cluster_max_payload();
    char *buf = proto_dump(msg, &len);
    if (!buf) {
        snprintf(err, n, "cannot encode the message");
        return -1;
    }
    len--;      /* proto_dump's newline frames the socket protocol, not NATS */
    if (cq_payload_fits(len, max, err, n) < 0) {
        free(buf);
        return -1;
    }
    natsStatus s = reply ? natsConnection_PublishRequest(C.nc, subject, reply, buf, (int)len)
                         : natsConnection_Publish(C.nc, subject, buf, (int)len);
    free(buf);
    if (s != NATS_OK) {
        snprintf(err, n, "cluster publish failed: %s", natsStatus_GetText(s));
        return -1;
    }
    return 0;
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

/* Reconnect for ever, quickly; no flusher thread (SendAsap: a publish is
 * written at once, from the loop). Each subscription keeps its own
 * delivery thread: 3.4.1's shared pool (UseGlobalMessageDelivery) leaks its
 * close message when the library's garbage collector stops first, seen
 * under LeakSanitizer at every few shutdowns; the manager has a handful of
 * subscriptions, so a thread each is cheap. */
static int set_options(struct event_base *base, const struct cluster_opts *o, char *err, size_t n)
{
    char name[CLUSTER_HOST_MAX + 16];
    snprintf(name, sizeof name, "bioxen-%s", C.host);
    if (natsOptions_Create(&C.opts) != NATS_OK) {
        snprintf(err, n, "cluster: %s", nats_GetLastError(NULL));
        return -1;
    }
    if (cluster__servers(C.opts, o->urls, err, n) < 0 || cluster__auth(C.opts, o, err, n) < 0)
        return -1;
    natsStatus s = natsOptions_SetName(C.opts, name);
    if (s == NATS_OK) s = natsOptions_SetEventLoop(C.opts, base, natsLibevent_Attach,
                                                   natsLibevent_Read, natsLibevent_Write, natsLibevent_Detach);
    if (s == NATS_OK) s = natsOptions_SetSendAsap(C.opts, true);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(C.opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(C.opts, RECONNECT_WAIT_MS);
    if (s == NATS_OK) s = natsOptions_SetTimeout(C.opts, CONNECT_TIMEOUT_MS);
    if (s == NATS_OK) s = natsOptions_SetPingInterval(C.opts, PING_MS);
    if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(C.opts, PINGS_OUT);
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(C.opts, on_disconnected, NULL);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(C.opts, on_reconnected, NULL);
    if (s == NATS_OK) s = natsOptions_SetClosedCB(C.opts, on_closed, NULL);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(C.opts, on_error, NULL);
    if (s != NATS_OK) {
        snprintf(err, n, "cluster: %s", natsStatus_GetText(s));
        return -1;
    }
    return 0;
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
    if (set_options(base, o, err, n) < 0)
        return -1;
    if (!(C.wake_ev = event_new(base, -1, EV_PERSIST, wake_cb, NULL)) ||
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
    cq_fini(&C.inbox);
}
