/* names.h - VM names across the cluster: one winner per name. A name is a
 * key of the JetStream KV bucket (cluster_kv()), its value a small JSON
 * record {"host": H, "owner": IDENTITY, "shared": bool, "restart": "...",
 * "persistent": bool, "init": {...} for restart="on-crash" VMs (failover
 * recreates them, namesfail.c)}. The rules: docs/cluster.md.
 * Every KV call runs on the cluster worker (cluster_defer); a local
 * replica, fed by a KV watch, answers names_where() on the loop thread
 * without a round trip. Loop thread only. */
#ifndef BX_NAMES_H
#define BX_NAMES_H

#include <jansson.h>

int names_start(void);          /* after cluster_start; 0 or -1 */
void names_stop(void);          /* after cluster_stop (the owed dones have run) */

/* The record for a create by owner (an identity) with this init frame:
 * the failover's init only for restart="on-crash". New reference. */
json_t *names_record(const char *owner, json_t *init);

/* Claims name for this host before a VM of that name is created here.
 * done(ok, why, arg) on the loop thread: ok 1 = ours, 0 = taken (VMExists;
 * why names the host), -1 = cluster unavailable (why says so). record is
 * borrowed (host is filled in). Without a cluster done runs at once with 1. */
typedef void (*names_done_fn)(int ok, const char *why, void *arg);
int names_claim(const char *name, json_t *record, names_done_fn done, void *arg);
/* The VM of that name is gone from this host: the key goes (fire and forget). */
void names_release(const char *name);

/* The host a name lives on, from the replica (NULL: unknown or no cluster).
 * A replica can lag a write by a moment: a caller that finds nothing may
 * ask names_lookup, which reads the bucket itself. */
const char *names_where(const char *name);  /* valid until the loop runs on */
int names_lookup(const char *name, names_done_fn done, void *arg);  /* why = host on ok */

#endif
