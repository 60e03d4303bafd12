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

/* clusteropts.c: --cluster's URLs (checked: a typo is an error, not an
 * endless reconnect), credentials and TLS into opts; 0 or -1 with err. */
int cluster__servers(natsOptions *opts, const char *urls, char *err, size_t n);
int cluster__auth(natsOptions *opts, const struct cluster_opts *o, char *err, size_t n);
int cluster__host_ok(const char *h);    /* a subject token: VM-name-like, no dots */

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
