/* cluster.h - the manager's link to the other managers of one bioxen cluster
 * over NATS (docs/cluster.md). The link is cluster.c; what travels on it
 * (heartbeats, names, forwarded requests, mail) is the business of the files
 * that call it. Every function here is for the loop thread only: nats.c's
 * own threads (subscription delivery, reconnect, timers) never touch manager
 * state; they only push onto cluster.c's locked inbox and wake the loop.
 *
 * Subjects all start with the cluster's prefix (--cluster-name, default
 * "bioxen"): "<prefix>.<rest>". cluster_subject() builds them. */
#ifndef BX_CLUSTER_H
#define BX_CLUSTER_H

#include <event2/event.h>
#include <jansson.h>
#include <stddef.h>

#define CLUSTER_HOST_MAX 64      /* a host name is a VM-name-like token */

struct cluster_opts {
    const char *urls;        /* --cluster nats://h:p[,nats://...] */
    const char *host;        /* --host-name (default: gethostname) */
    const char *prefix;      /* --cluster-name, default "bioxen" */
    const char *creds;       /* --cluster-creds FILE (.creds: JWT + nkey) or NULL */
    const char *token_file;  /* --cluster-token-file FILE or NULL */
    const char *nkey_file;   /* --cluster-nkey FILE (seed and public key) or NULL */
    const char *ca_file;     /* --cluster-ca FILE: TLS with this CA, or NULL */
    const char *cert_file, *key_file;   /* --cluster-cert/--cluster-key (mutual TLS) */
};

/* Connects in the background (nats.c retries while the server is away, so a
 * manager may start before NATS): 0, or -1 with err for bad options. Call
 * after event_base_new(); natsLibevent_Init() must have run before it
 * (cluster_init_threads(), first thing in main). */
void cluster_init_threads(void);
int cluster_start(struct event_base *base, const struct cluster_opts *o, char *err, size_t n);
/* Shutdown, on the loop thread. cluster_quiesce (from manager_shutdown,
 * while the loop still runs, so that a job blocked in a JetStream call gets
 * its reply or its timeout): no new jobs, queued ones skip their work.
 * cluster_quiet: the worker has finished (the stop tick waits for it).
 * cluster_stop (after the loop): joins the worker, runs the done callbacks
 * still owed, closes and frees the connection. */
void cluster_quiesce(void);
int cluster_quiet(void);
void cluster_stop(void);

int cluster_enabled(void);              /* --cluster was given */
int cluster_up(void);                   /* connected right now */
const char *cluster_self(void);         /* this host's name ("" without a cluster) */
size_t cluster_max_payload(void);       /* the server's max payload (0 while down) */
unsigned long long cluster_dropped(void);   /* inbox messages dropped (full) since start */

/* "<prefix>." + the formatted rest into buf; -1 if it does not fit. */
int cluster_subject(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Publishes msg (borrowed) as one JSON object. -1 with err when the cluster
 * is down ("cluster unavailable"), or the payload is over max payload
 * ("... larger than the cluster's max payload of N bytes"): never truncated. */
int cluster_publish(const char *subject, const char *reply, json_t *msg, char *err, size_t n);
/* The same for a payload already encoded (len bytes of one JSON object). */
int cluster_publish_raw(const char *subject, const char *reply, const char *data, size_t len,
                        char *err, size_t n);

/* A handler runs on the loop thread. msg is the payload parsed as a JSON
 * object (borrowed; NULL when it was not one: the handler answers or drops
 * it as the socket path would); reply is the message's reply subject or
 * NULL. queue: a NATS queue group name (one member gets each message) or
 * NULL. An exact subject is delivered straight from nats.c's read on the
 * loop; a wildcard one (meant for reply inboxes) through nats.c's delivery
 * thread and the inbox, a little later (cluster.c's head says why).
 * Call after cluster_start. Subscriptions live until cluster_stop
 * and survive reconnects; one made while down is sent at the next up
 * (before the state listeners hear of it). 0 or -1. */
typedef void (*cluster_handler)(const char *subject, const char *reply, json_t *msg, void *arg);
int cluster_subscribe(const char *subject, const char *queue, cluster_handler h, void *arg);
/* Inside a handler only: 1 when this message is NATS's "no responders"
 * status (header Status: 503, empty body; msg is NULL): the reply to a
 * request sent to a subject nobody subscribes to. Interest spreads between
 * servers asynchronously, so a request right after a remote subscribe can
 * get one: retry briefly before failing (CLUSTER-NOTES.md). */
int cluster_msg_no_responders(void);
/* fn runs on the loop after each batch of handlers (the manager's
 * flush_all: the frames they queued go out in one write per socket). */
void cluster_on_drained(void (*fn)(void));

/* Blocking nats.c calls (JetStream, key-value) never run on the loop: work
 * runs on the cluster's one worker thread, in submission order; done runs
 * on the loop thread afterwards, with the same arg (done may be NULL).
 * 0 or -1 (out of memory, no cluster, or shutting down). work may use
 * cluster_kv(); nothing else of the manager. done runs exactly once even
 * at shutdown, when work may have been skipped: let work set a flag in arg
 * if done must know. Which nats.c calls block: clusterwork.c's head. */
typedef void (*cluster_fn)(void *arg);
int cluster_defer(cluster_fn work, cluster_fn done, void *arg);

/* The names bucket ("<prefix>_names", JetStream KV), for work functions
 * only; NULL until it exists (it is created or bound on the worker after
 * each (re)connect). */
struct __kvStore;
struct __kvStore *cluster_kv(void);

/* Health of the link, for events (BROKER_ERROR) and fast failure: called on
 * the loop thread with up = 1 (connected / reconnected) or 0 (disconnected,
 * closed) and a reason text, on each change only (never up twice in a
 * row). Asynchronous errors that keep the connection (slow consumer,
 * permission denied) are logged, not reported here. Several listeners may
 * register; they may register before cluster_start. */
typedef void (*cluster_state_fn)(int up, const char *why, void *arg);
int cluster_on_state(cluster_state_fn fn, void *arg);
/* The one listener of asynchronous errors that keep the connection (slow
 * consumer, permission denied), called on the loop with the unchanged
 * state; broker.c turns them into BROKER_ERROR events. */
void cluster_on_error(cluster_state_fn fn, void *arg);

#endif
