/* clusterstub.c - cluster.h for a build without libnats (CMake found no
 * libnats-dev): no cluster, and --cluster is refused at start. */
#include "cluster.h"

#include <stdio.h>

void cluster_init_threads(void) {}

int cluster_start(struct event_base *base, const struct cluster_opts *o, char *err, size_t n)
{
    (void)base; (void)o;
    snprintf(err, n, "built without cluster support (no libnats-dev at build time, or -DBIOXEN_CLUSTER=OFF)");
    return -1;
}

void cluster_quiesce(void) {}
int cluster_quiet(void) { return 1; }
void cluster_stop(void) {}
int cluster_enabled(void) { return 0; }
int cluster_msg_no_responders(void) { return 0; }
int cluster_up(void) { return 0; }
const char *cluster_self(void) { return ""; }
size_t cluster_max_payload(void) { return 0; }
unsigned long long cluster_dropped(void) { return 0; }
int cluster_subject(char *buf, size_t n, const char *fmt, ...) { (void)buf; (void)n; (void)fmt; return -1; }

int cluster_publish(const char *subject, const char *reply, json_t *msg, char *err, size_t n)
{
    (void)subject; (void)reply; (void)msg;
    snprintf(err, n, "cluster unavailable");
    return -1;
}

int cluster_publish_raw(const char *subject, const char *reply, const char *data, size_t len,
                        char *err, size_t n)
{
    (void)subject; (void)reply; (void)data; (void)len;
    snprintf(err, n, "cluster unavailable");
    return -1;
}

int cluster_subscribe(const char *subject, const char *queue, cluster_handler h, void *arg)
{
    (void)subject; (void)queue; (void)h; (void)arg;
    return -1;
}

int cluster_defer(cluster_fn work, cluster_fn done, void *arg) { (void)work; (void)done; (void)arg; return -1; }
struct __kvStore *cluster_kv(void) { return NULL; }
int cluster_on_state(cluster_state_fn fn, void *arg) { (void)fn; (void)arg; return 0; }
void cluster_on_error(cluster_state_fn fn, void *arg) { (void)fn; (void)arg; }
void cluster_on_drained(void (*fn)(void)) { (void)fn; }
