/* fwdlist.c - list with "cluster": true (remote.h): scatter to every
 * manager on "<prefix>.list" with a reply subject of ours, gather what
 * comes back until each live host answered (hosts_report) or the deadline,
 * then answer once. Each host filters by the identity the request carries,
 * as its own list op would for that client. */
#include "manager.h"
#include "cluster.h"
#include "fwdcheck.h"
#include "hosts.h"
#include "ops.h"
#include "remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_WAIT_S 1.0         /* a live host answers in milliseconds */

struct gather {
    struct gather *next;
    uint64_t seq, client_id;
    json_t *orig_id, *arr;      /* owned */
    long expected;              /* other live hosts; -1 unknown: wait the deadline */
    long got;
    struct event *ev;
};

static struct gather *gathers;
static uint64_t list_seq;

static void tag(json_t *arr, const char *host)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
        json_object_set_new(e, "host", json_string(host));
}

/* Live hosts besides this one, or -1 when the table says nothing. */
static long others_alive(void)
{
    json_t *r = hosts_report(), *e;
    size_t i;
    long n = 0;
    if (!json_is_array(r) || json_array_size(r) == 0) {
        json_decref(r);
        return -1;
    }
    json_array_foreach(r, i, e)
        if (json_is_true(json_object_get(e, "alive")) &&
            strcmp(json_string_value(json_object_get(e, "name")) ?: "", cluster_self()) != 0)
            n++;
    json_decref(r);
    return n;
}

static void finish(struct gather *g)
{
    for (struct gather **pp = &gathers; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    client_send_new(client_find(g->client_id), proto_reply_new(g->orig_id, g->arr));
    json_decref(g->orig_id);
    event_free(g->ev);
    free(g);
}

static void gather_due(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    finish(arg);
}

void remote_list(struct op_ctx *x, json_t *local)
{
    char subj[160], reply[160], err[256];
    struct gather *g = calloc(1, sizeof *g);
    struct timeval tv = {(long)LIST_WAIT_S, (long)((LIST_WAIT_S - (long)LIST_WAIT_S) * 1e6)};
    tag(local, cluster_self());
    json_t *m = json_pack("{s:s, s:s, s:b}", "from", cluster_self(), "identity", x->c->identity,
                          "admin", x->c->admin);
    if (!g || !m || !(g->ev = evtimer_new(mgr->base, gather_due, g))) {
        client_send_new(x->c, proto_error_new(x->id, BX_E_INTERNAL, "out of memory"));
        goto out;
    }
    g->seq = ++list_seq;
    cluster_subject(subj, sizeof subj, "list");
    cluster_subject(reply, sizeof reply, "h.%s.lr.%llu", cluster_self(), (unsigned long long)g->seq);
    if (cluster_publish(subj, reply, m, err, sizeof err) < 0) {
        client_send_new(x->c, proto_error_new(x->id, cluster_up() ? BX_E_INTERNAL
                                              : BX_E_CLUSTER_UNAVAILABLE, "%s", err));
        goto out;
    }
    g->client_id = x->c->id;
    g->orig_id = json_incref(x->id);
    g->arr = local;
    g->expected = others_alive();
    g->next = gathers;
    gathers = g;
    if (g->expected == 0)
        return finish(g);
    event_add(g->ev, &tv);
    json_decref(m);
    return;
out:
    if (g && g->ev)
        event_free(g->ev);
    free(g);
    json_decref(m);
    json_decref(local);
}

/* "<prefix>.h.<self>.lr.<seq>": {host, vms} from one host (or NATS's "no
 * responders", an empty payload: nobody else is there). */
static void on_part(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)reply; (void)arg;
    const char *dot = strrchr(subject, '.');
    uint64_t seq = dot ? strtoull(dot + 1, NULL, 10) : 0;
    struct gather *g = gathers;
    while (g && g->seq != seq)
        g = g->next;
    json_t *vms = json_object_get(msg, "vms");
    const char *host = json_string_value(json_object_get(msg, "host"));
    if (!g)
        return;
    if (!msg)
        return finish(g);
    if (!host || !json_is_array(vms) || strcmp(host, cluster_self()) == 0)
        return;
    tag(vms, host);
    size_t i;
    json_t *e;
    json_array_foreach(vms, i, e)       /* get_vm finds it so: ops on it forward */
        if (json_is_string(json_object_get(e, "name")))
            remote_hint(json_string_value(json_object_get(e, "name")), host);
    json_array_extend(g->arr, vms);
    if (g->expected >= 0 && ++g->got >= g->expected)
        finish(g);
}

/* "<prefix>.list" from any manager (this one's own comes back too: skipped). */
static void on_list(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)arg;
    struct fwd_env e;
    char err[256];
    if (fwdcheck_list(msg, &e, err, sizeof err) < 0 || !reply) {
        fprintf(stderr, "bioxen-manager: cluster: %s on %s: dropped\n",
                reply ? err : "no reply subject", subject);
        return;
    }
    if (strcmp(e.from, cluster_self()) == 0)
        return;
    struct client asker = {0};
    snprintf(asker.identity, sizeof asker.identity, "%s", e.identity);
    asker.admin = e.admin;
    const char *from = e.from;
    size_t n;
    struct vm **all = registry_all(&n);
    json_t *arr = json_array();
    for (size_t i = 0; all && i < n; i++)
        if (!all[i]->pool && identity_sees(&asker, all[i]))
            json_array_append_new(arr, vm_describe(all[i]));
    free(all);
    json_t *r = json_pack("{s:s, s:o}", "host", cluster_self(), "vms", arr);
    if (r && cluster_publish(reply, NULL, r, err, sizeof err) < 0)
        fprintf(stderr, "bioxen-manager: cluster: list for %s: %s\n", from, err);
    json_decref(r);
}

int fwdlist_start(void)
{
    char s1[160], s2[160];
    if (cluster_subject(s1, sizeof s1, "list") < 0 ||
        cluster_subject(s2, sizeof s2, "h.%s.lr.*", cluster_self()) < 0 ||
        cluster_subscribe(s1, NULL, on_list, NULL) < 0 ||
        cluster_subscribe(s2, NULL, on_part, NULL) < 0)
        return -1;
    return 0;
}
