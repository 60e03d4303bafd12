/* clusterint.h - what cluster.c (the loop side) and clusterwork.c (the
 * worker thread) share. Not for the rest of the manager: use cluster.h. */
#ifndef BX_CLUSTERINT_H
#define BX_CLUSTERINT_H

#include "cluster.h"

#include <nats/nats.h>

/* Posts done(arg) to the loop through the inbox (never dropped). */
void cluster__post_done(cluster_fn done, void *arg);
/* Posts a state change to the loop (from any thread). */
void cluster__post_state(int up, const char *why);

/* clusterev.c: the libevent adapter, which calls cluster__drain() (cluster.c:
 * every pending message to its handler, on the loop) after each read. */
natsStatus cluster__set_loop(natsOptions *opts, struct event_base *base);
void cluster__drain(void);
/* A handled message, destroyed with others a little later (clusterev.c). */
void cluster__bury(natsMsg *m);
int cluster__grave_init(struct event_base *base);
void cluster__grave_empty(void);    /* now: before the subscriptions go */
void cluster__grave_fini(void);

/* clusteropts.c: --cluster's URLs (checked: a typo is an error, not an
 * endless reconnect), credentials and TLS into opts; 0 or -1 with err. */
int cluster__servers(natsOptions *opts, const char *urls, char *err, size_t n);
int cluster__auth(natsOptions *opts, const struct cluster_opts *o, char *err, size_t n);
int cluster__host_ok(const char *h);
/* All of the connection's options (the above included) into a new *out. */
int cluster__options(natsOptions **out, struct event_base *base, const struct cluster_opts *o,
                     char *err, size_t n);    /* a subject token: VM-name-like, no dots */

/* The worker (clusterwork.c). cw_start runs the connect as its first job;
 * connected(nc, up) then runs on the loop with the connection (up: its
 * first attempt worked, so no connected callback will come), or with NULL
 * if nats.c refused the options. */
int cw_start(natsOptions *opts, const char *prefix, void (*connected)(natsConnection *nc, int up));
int cw_submit(cluster_fn work, cluster_fn done, void *arg);
void cw_bind_kv(void);      /* queue a create-or-bind of the names bucket */
void cw_quiesce(void);      /* no new jobs; queued ones skip their work */
int cw_quiet(void);         /* the worker has finished (or never ran) */
void cw_join(void);         /* after cw_quiet: reap the thread, free its state */

#endif
