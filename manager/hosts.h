/* hosts.h - who is in the cluster. Every manager publishes a heartbeat
 * ("<prefix>.hb": name, vms, executions, load, pool capacity) every
 * HOSTS_BEAT_S and keeps the table of what it heard; a host is alive while
 * its last beat is younger than HOSTS_ALIVE_S. This is the one place that
 * decides "host H is gone" for the rest of the manager (forwarded calls
 * fail, names are released, on-crash VMs fail over). Loop thread only. */
#ifndef BX_HOSTS_H
#define BX_HOSTS_H

#include <jansson.h>
#include <stddef.h>

#define HOSTS_BEAT_S 0.5
#define HOSTS_ALIVE_S 3.0       /* calls to a dead host's VMs fail within this (+ a beat) */

int hosts_start(void);          /* after cluster_start; 0 or -1 */
/* Clean shutdown (manager_shutdown, while the link runs): a "leaving" beat
 * tells the others at once; they free its names and fail nothing over. */
void hosts_stop(void);

int hosts_alive(const char *host);      /* this host counts as alive */
int hosts_left(const char *host);       /* it is gone by its own "leaving" beat */
int hosts_seen(const char *host);       /* this host heard it beat since it started */
/* Seconds host has been not alive while this host's link was up and had
 * time to hear it (HOSTS_ALIVE_S after each (re)connect; a host never
 * heard counts from then). -1 while it is alive or this link is down. */
double hosts_gone_for(const char *host);
int hosts_leader(void);     /* this host has the lowest name of the live ones */
/* [{name, alive, vms, executions, load}, ...], this host included: op hosts. */
json_t *hosts_report(void);
/* The least loaded live host (this one included), for host="*"; never NULL
 * while clustered (falls back to this host). */
const char *hosts_pick(void);
/* The live hosts other than this one, with the load each last reported,
 * at most max of them: the run spreader's candidates (spread.c), read from
 * the table, so it costs no NATS or KV call. */
size_t hosts_live(const char **names, double *loads, size_t max);

/* Called once per transition on the loop thread: up = 0 when a host stops
 * being alive (missed beats, or its "leaving" beat), 1 when one (re)appears.
 * Several listeners may register. */
typedef void (*hosts_change_fn)(const char *host, int up, void *arg);
int hosts_on_change(hosts_change_fn fn, void *arg);

#endif
