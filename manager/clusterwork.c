/* clusterwork.c - the cluster's one worker thread: the place for nats.c
 * calls that block.
 *
 * Blocking in nats.c 3.4.1, so only ever called here (never on the loop,
 * whose thread is the one that must read the reply off the socket):
 *   natsConnection_Connect (TCP connect, INFO/CONNECT/PING handshake, read
 *     synchronously before the socket is attached to the loop),
 *   natsConnection_Request*, Flush, FlushTimeout,
 *   natsConnection_JetStream is not, but every js_* and kvStore_* call is
 *     (each is a request/reply to the JetStream API, up to jsOptions.Wait).
 * Not blocking, so fine on the loop: Publish*, Subscribe, QueueSubscribe,
 * Status, GetMaxPayload, and Close/Destroy (cluster.c, at shutdown; it
 * flushes for up to 500 ms only if unsent bytes remain, which SendAsap
 * makes rare).
 *
 * Jobs run in submission order; each job's done goes back to the loop
 * through the inbox. After cw_quiesce the queued jobs skip their work but
 * still get their done, so whoever owns arg can free it. */
#include "clusterint.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_WAIT_MS 2000     /* a JetStream call while NATS is away fails in this */
#define RETRY_MS 250        /* as cluster.c's reconnect wait */

struct job {
    struct job *next;
    cluster_fn work, done;
    void *arg;
};

static struct {
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
    int started, stopping, finished;
    natsOptions *opts;
    void (*connected)(natsConnection *, int);
    int first_up;
    /* the worker's own, touched on this thread only */
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    char bucket[128];
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

struct __kvStore *cluster_kv(void)
{
    return W.kv;
}

static void *worker_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&W.mu);
    for (;;) {
        while (!W.head && !W.stopping)
            pthread_cond_wait(&W.cv, &W.mu);
        struct job *j = W.head;
        if (!j)
            break;                      /* stopping, and nothing left */
        W.head = j->next;
        if (!W.head)
            W.tail = NULL;
        int skip = W.stopping;
        pthread_mutex_unlock(&W.mu);
        if (!skip && j->work)
            j->work(j->arg);
        if (j->done)
            cluster__post_done(j->done, j->arg);
        free(j);
        pthread_mutex_lock(&W.mu);
    }
    W.finished = 1;
    pthread_mutex_unlock(&W.mu);
    cluster__post_done(NULL, NULL);     /* wakes the loop: cw_quiet() is now true */
    return NULL;
}

int cw_submit(cluster_fn work, cluster_fn done, void *arg)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->work = work;
    j->done = done;
    j->arg = arg;
    pthread_mutex_lock(&W.mu);
    if (!W.started || W.stopping) {
        pthread_mutex_unlock(&W.mu);
        free(j);
        return -1;
    }
    if (W.tail)
        W.tail->next = j;
    else
        W.head = j;
    W.tail = j;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    return 0;
}

/* The first job: connect, retrying until it works or shutdown, so that a
 * manager may start before NATS. Not nats.c's RetryOnFailedConnect: in
 * 3.4.1, when the first server accepts TCP and then says nothing within
 * the timeout (a hung server, a half-open path), it returns
 * NATS_NOT_YET_CONNECTED, status RECONNECTING, and then never tries again
 * (seen here: one connect() in minutes). Once connected, nats.c's own
 * reconnect (MaxReconnect -1) takes over and handles both refusals and
 * silence. Later jobs wait behind this one, as they would wait for NATS. */
static int stopping(void)
{
    pthread_mutex_lock(&W.mu);
    int s = W.stopping;
    pthread_mutex_unlock(&W.mu);
    return s;
}

static int connect_once(natsStatus *st)
{
    natsStatus s = *st = natsConnection_Connect(&W.nc, W.opts);
    if (s == NATS_OK)
        return W.first_up = 1;
    W.nc = NULL;
    return s == NATS_INVALID_ARG || s == NATS_NO_MEMORY ? -1 : 0;
}

/* nats.c's status alone says "SSL Error" or "Protocol Error"; its error
 * text (this thread's) names the cause: a certificate that does not
 * verify, a missing client certificate, an authorization violation. Said
 * once per cause, not per retry. */
static void say_why(natsStatus st, char *said, size_t n)
{
    char why[512];
    const char *t = nats_GetLastError(NULL), *loc = t && *t == '(' ? strstr(t, "): ") : NULL;
    if (loc)
        t = loc + 3;    /* nats.c's "(conn.c:1905): " says where, not why */
    snprintf(why, sizeof why, "%s)%s%s%s", natsStatus_GetText(st), t && *t ? ": " : "", t ? t : "",
             st == NATS_PROTOCOL_ERROR && t && strstr(t, "PONG")
             ? "; the server closed the connection in the handshake: a TLS server that verifies "
               "clients does that to one without a certificate (--cluster-cert, --cluster-key)" : "");
    if (strcmp(why, said) == 0)
        return;
    snprintf(said, n, "%s", why);
    fprintf(stderr, "bioxen-manager: cluster: cannot connect to NATS yet (%s; retrying every 250 ms\n",
            why);
}

static void connect_work(void *arg)
{
    (void)arg;
    int r;
    char said[512] = "";
    natsStatus st;
    while ((r = connect_once(&st)) == 0) {
        say_why(st, said, sizeof said);
        for (int i = 0; i < RETRY_MS / 50 && !stopping(); i++)
            nats_Sleep(50);
        if (stopping())
            return;
    }
    if (r < 0)
        fprintf(stderr, "bioxen-manager: cluster: cannot connect: %s\n", nats_GetLastError(NULL));
}

static void connect_done(void *arg)
{
    (void)arg;
    W.connected(W.nc, W.first_up);  /* written before the done was posted */
}

int cw_start(natsOptions *opts, const char *prefix, void (*connected)(natsConnection *nc, int up))
{
    W.opts = opts;
    W.connected = connected;
    snprintf(W.bucket, sizeof W.bucket, "%s_names", prefix);
    if (pthread_create(&W.tid, NULL, worker_main, NULL))
        return -1;
    W.started = 1;
    return cw_submit(connect_work, connect_done, NULL);
}

/* Creates the bucket, or binds it when it exists with another config.
 * Single server: replicas 1. A 3-node JetStream cluster wants Replicas 3
 * (names survive the loss of one server, and a create needs a quorum, which
 * is what makes "exactly one wins" hold across a partition). */
static void kv_work(void *arg)
{
    (void)arg;
    kvConfig cfg;
    jsOptions jo;
    if (!W.nc)
        return;
    if (!W.js) {
        jsOptions_Init(&jo);
        jo.Wait = JS_WAIT_MS;
        if (natsConnection_JetStream(&W.js, W.nc, &jo) != NATS_OK)
            return;
    }
    if (W.kv) {     /* the store may have been wiped while away: bind again */
        kvStore_Destroy(W.kv);
        W.kv = NULL;
    }
    kvConfig_Init(&cfg);
    cfg.Bucket = W.bucket;
    cfg.History = 1;
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = 1;
    if (js_CreateKeyValue(&W.kv, W.js, &cfg) != NATS_OK &&
        js_KeyValue(&W.kv, W.js, W.bucket) != NATS_OK) {
        fprintf(stderr, "bioxen-manager: cluster: no key-value bucket %s: %s\n",
                W.bucket, nats_GetLastError(NULL));
        W.kv = NULL;
    }
}

void cw_bind_kv(void)
{
    cw_submit(kv_work, NULL, NULL);
}

void cw_quiesce(void)
{
    pthread_mutex_lock(&W.mu);
    W.stopping = 1;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
}

int cw_quiet(void)
{
    pthread_mutex_lock(&W.mu);
    int q = !W.started || W.finished;
    pthread_mutex_unlock(&W.mu);
    return q;
}

void cw_join(void)
{
    if (!W.started)
        return;
    cw_quiesce();
    pthread_join(W.tid, NULL);
    W.started = 0;
    if (W.kv)
        kvStore_Destroy(W.kv);
    if (W.js)
        jsCtx_Destroy(W.js);
    W.kv = NULL;
    W.js = NULL;
}
