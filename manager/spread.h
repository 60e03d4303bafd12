/* spread.h - `run` over the pools of every live host (docs/cluster.md,
 * "run and map"). A clustered manager places each run of a client on a live
 * host, itself included, and forwards it (fwd.c) to the proxy of that
 * client on the target, whose own pool runs it; a run whose host dies is
 * retried once elsewhere. Loop thread only. */
#ifndef BX_SPREAD_H
#define BX_SPREAD_H

#include "proto.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct pool;
struct client;
struct spread;

/* ---- pool.c, for spread.c ---- */
void pool_run_local(struct pool *p, json_t *req);   /* req: the run, id included */
size_t pool_local_runs(struct pool *p);    /* runs in its VMs' FIFOs or queued */
size_t pool_max_vms(struct pool *p);
json_t *pool_cfg_src(struct pool *p);       /* the pool_config's fields, for the proxies */
struct spread **pool_spread(struct pool *p);
struct client *pool_owner(struct pool *p);

/* ---- spread.c ---- */
/* 1 when c's runs go through spread_run: this manager is clustered and c
 * is a client of this host (a proxy's runs were placed by their origin).
 * While the link is down they are all placed here. */
int spread_wanted(struct client *c);
/* The run req (a reference is taken) is placed now or when a slot frees. */
void spread_run(struct pool *p, json_t *req);
void spread_pump(struct pool *p);           /* a local run ended: place what waits */
void spread_pool_gone(struct pool *p);      /* the client went: drop what waits */
/* fwd.c: a forwarded run's end. frame is the target's reply (NULL when fwd
 * fails it with code, or drops it, code BX_OK, as its client is gone). 1 when spread took it over (a retry elsewhere) and
 * fwd must neither answer nor free the request's id; 0 otherwise. */
int spread_settled(uint64_t client_id, json_t *orig_id, const char *host,
                   json_t *frame, enum bx_err code);

/* metrics on a clustered manager: runs_by_host {host: runs this host's
 * clients placed there}, runs_retried (lost with their host, run again). */
void spread_report(json_t *r);

#endif
