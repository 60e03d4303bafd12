/* remote.h - requests for VMs that live on another host (docs/cluster.md,
 * "Forwarding"). Two halves, one per side of a forwarded call:
 *
 * fwd.c, the origin (the manager the client is connected to): forwards a
 * request to "<prefix>.h.<host>.req", keeps it pending per target host
 * until its one reply comes back on "<prefix>.h.<self>.out", and answers
 * it itself (VM_CRASHED, TIMEOUT, "cluster unavailable") when the host
 * dies, the request's time is up or NATS goes away. Frames without an id
 * (events, callbacks, stream items) go straight to the client.
 *
 * remote.c, the target: a proxy `struct client` per (origin host, client
 * id), with the forwarded identity and no socket. It goes through
 * router_dispatch like any client, so every check, limit and ownership rule
 * is the local one; what the manager sends it (client_send*) goes back to
 * the origin (remote_write). Loop thread only. */
#ifndef BX_REMOTE_H
#define BX_REMOTE_H

#include <jansson.h>
#include <stddef.h>

struct client;
struct op_ctx;

/* Subscribes both halves' subjects; after cluster_start. 0 or -1. */
int remote_start(void);

/* ---- fwd.c: the origin ---- */

/* The host a VM name lives on when it is not here: names_where(), or the
 * host a create forwarded from here made it on (the names replica may lag
 * that create by a moment). NULL: nowhere known, or this host. */
const char *remote_where(const char *name);
/* A list from host named the VM (fwdlist.c): a hint like a create's. */
void remote_hint(const char *name, const char *host);
/* Sends x's request to host and owes x's client its reply (answered at
 * once, with the error, when it cannot be sent). */
void remote_forward(struct op_ctx *x, const char *host);
/* create's host field: 1 when the create was forwarded (or refused) and
 * the caller is done, 0 when it is for this host. */
int remote_create(struct op_ctx *x);
/* list with "cluster": true (fwdlist.c): local (stolen) plus every live
 * host's list, each entry with its "host". */
void remote_list(struct op_ctx *x, json_t *local);
struct vm;
json_t *vm_describe(struct vm *vm);     /* mgrops.c: one list entry */
/* manager_shutdown: every request forwarded from here is answered
 * SHUTTING_DOWN (its reply could come, but nobody would wait for it). */
void remote_stop(void);
/* c is going (client_free): the hosts it used drop its proxies; a proxy
 * going leaves the target's table. */
void remote_client_gone(struct client *c);

/* ---- remote.c: the target ---- */

/* A frame for a proxy client (one line, newline included): published to
 * its origin. Replaces the socket write for c->remote clients. */
void remote_write(struct client *c, const char *buf, size_t len);
/* A proxy's own part of the client record (remote.c). */
struct remote_link;
void remote_proxy_gone(struct client *c);

#endif
