/* namestub.c - STAND-IN for hosts.c and names.c (helper cl-names), so that
 * cross-host mail can be built and tested before they land; it goes at
 * that merge. Deliberately minimal and on subjects of its own:
 * - hosts: a beat on "<prefix>.stub.hb" every HOSTS_BEAT_S, a host alive
 *   while its last beat is younger than HOSTS_ALIVE_S, listeners told on
 *   each change;
 * - names: no KV. names_lookup asks every host ("<prefix>.stub.who", reply
 *   on "<prefix>.h.<self>.stub.ans") whether it has a VM or mailbox of that
 *   name; no answer within LOOKUP_S = nowhere. names_where answers from
 *   what lookups found, for CACHE_S. Claims always win. */
#include "hosts.h"
#include "mailbox.h"
#include "manager.h"
#include "names.h"
#include "cluster.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STUB_HOSTS 64
#define CACHE_SLOTS 1024
#define LOOKUP_S 0.5
#define CACHE_S 2.0

struct hrow { char name[CLUSTER_HOST_MAX + 1]; double last; int alive; };
struct crow { char name[BX_NAME_MAX + 1], host[CLUSTER_HOST_MAX + 1]; double t; };
struct qry {
    struct qry *next;
    long long id;
    names_done_fn done;
    void *arg;
    struct event *timer;
};
struct lst { hosts_change_fn fn; void *arg; };

static struct {
    struct hrow h[STUB_HOSTS];
    size_t nh;
    struct lst ls[8];
    size_t nls;
    struct crow cache[CACHE_SLOTS];
    struct qry *qs;
    long long next_id;
    struct event *beat;
} S;

static size_t slot(const char *name)
{
    size_t h = 1469598103934665603ULL;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ULL;
    return h % CACHE_SLOTS;
}

static void tell(const char *host, int up)
{
    for (size_t i = 0; i < S.nls; i++)
        S.ls[i].fn(host, up, S.ls[i].arg);
}

static void on_beat(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    const char *host = json_string_value(json_object_get(msg, "host"));
    size_t i = 0;
    if (!host || strlen(host) > CLUSTER_HOST_MAX || strcmp(host, cluster_self()) == 0)
        return;
    while (i < S.nh && strcmp(S.h[i].name, host) != 0)
        i++;
    if (i == S.nh && S.nh < STUB_HOSTS)
        snprintf(S.h[S.nh++].name, sizeof S.h[0].name, "%s", host);
    if (i == S.nh)
        return;
    S.h[i].last = proto_now();
    if (!S.h[i].alive) {
        S.h[i].alive = 1;
        tell(host, 1);
    }
}

static void beat_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    char subj[128], err[128];
    json_t *m = json_pack("{s:s}", "host", cluster_self());
    if (cluster_subject(subj, sizeof subj, "stub.hb") == 0)
        cluster_publish(subj, NULL, m, err, sizeof err);
    json_decref(m);
    double now = proto_now();
    for (size_t i = 0; i < S.nh; i++) {
        if (S.h[i].alive && now - S.h[i].last > HOSTS_ALIVE_S) {
            S.h[i].alive = 0;
            tell(S.h[i].name, 0);
        }
    }
}

int hosts_alive(const char *host)
{
    if (strcmp(host, cluster_self()) == 0)
        return 1;
    for (size_t i = 0; i < S.nh; i++)
        if (strcmp(S.h[i].name, host) == 0)
            return S.h[i].alive;
    return 0;
}

json_t *hosts_report(void)
{
    json_t *a = json_pack("[{s:s, s:b}]", "name", cluster_self(), "alive", 1);
    for (size_t i = 0; i < S.nh; i++)
        json_array_append_new(a, json_pack("{s:s, s:b}", "name", S.h[i].name, "alive", S.h[i].alive));
    return a;
}

const char *hosts_pick(void) { return cluster_self(); }

int hosts_on_change(hosts_change_fn fn, void *arg)
{
    if (S.nls == sizeof S.ls / sizeof S.ls[0])
        return -1;
    S.ls[S.nls++] = (struct lst){fn, arg};
    return 0;
}

/* ---- names ---- */

static void on_who(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)arg;
    const char *name = json_string_value(json_object_get(msg, "name"));
    char err[128];
    if (!reply || !name || !proto_valid_name(name) || !mailbox_exists(name))
        return;
    json_t *m = json_pack("{s:O, s:s, s:s}", "q", json_object_get(msg, "q"),
                          "host", cluster_self(), "name", name);
    cluster_publish(reply, NULL, m, err, sizeof err);
    json_decref(m);
}

static struct qry *qry_take(long long id)
{
    for (struct qry **pp = &S.qs, *q; (q = *pp); pp = &q->next)
        if (q->id == id) {
            *pp = q->next;
            return q;
        }
    return NULL;
}

static void qry_end(struct qry *q, int ok, const char *why)
{
    event_free(q->timer);
    q->done(ok, why, q->arg);
    free(q);
}

static void on_ans(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    const char *host = json_string_value(json_object_get(msg, "host"));
    const char *name = json_string_value(json_object_get(msg, "name"));
    json_t *id = json_object_get(msg, "q");
    struct qry *q = json_is_integer(id) ? qry_take(json_integer_value(id)) : NULL;
    if (!q || !host || !name || strlen(host) > CLUSTER_HOST_MAX || !proto_valid_name(name)) {
        if (q)
            qry_end(q, 0, "no such name");
        return;
    }
    struct crow *c = &S.cache[slot(name)];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->host, sizeof c->host, "%s", host);
    c->t = proto_now();
    qry_end(q, 1, c->host);
}

static void qry_timeout(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct qry *q = qry_take(((struct qry *)arg)->id);
    if (q)
        qry_end(q, 0, "no such name");
}

int names_lookup(const char *name, names_done_fn done, void *arg)
{
    char subj[128], reply[256], err[256];
    struct qry *q = calloc(1, sizeof *q);
    if (!q || !(q->timer = evtimer_new(mgr->base, qry_timeout, q))) {
        free(q);
        return -1;
    }
    q->id = ++S.next_id;
    q->done = done;
    q->arg = arg;
    json_t *m = json_pack("{s:s, s:I}", "name", name, "q", (json_int_t)q->id);
    int r = cluster_subject(subj, sizeof subj, "stub.who") == 0 &&
            cluster_subject(reply, sizeof reply, "h.%s.stub.ans", cluster_self()) == 0 ?
            cluster_publish(subj, reply, m, err, sizeof err) : -1;
    json_decref(m);
    if (r < 0) {
        event_free(q->timer);
        free(q);
        return -1;
    }
    q->next = S.qs;
    S.qs = q;
    timer_arm(q->timer, LOOKUP_S);
    return 0;
}

const char *names_where(const char *name)
{
    struct crow *c = &S.cache[slot(name)];
    return strcmp(c->name, name) == 0 && proto_now() - c->t < CACHE_S && hosts_alive(c->host)
           ? c->host : NULL;
}

int names_claim(const char *name, json_t *record, names_done_fn done, void *arg)
{
    (void)name; (void)record;
    done(1, NULL, arg);
    return 0;
}

void names_release(const char *name) { (void)name; }

int hosts_start(void)
{
    char a[128], b[128], c[256];
    struct timeval tv = timer_tv(HOSTS_BEAT_S);
    if (cluster_subject(a, sizeof a, "stub.hb") < 0 || cluster_subject(b, sizeof b, "stub.who") < 0 ||
        cluster_subject(c, sizeof c, "h.%s.stub.ans", cluster_self()) < 0)
        return -1;
    S.beat = event_new(mgr->base, -1, EV_PERSIST, beat_cb, NULL);
    return S.beat && event_add(S.beat, &tv) == 0 && cluster_subscribe(a, NULL, on_beat, NULL) == 0 &&
           cluster_subscribe(b, NULL, on_who, NULL) == 0 &&
           cluster_subscribe(c, NULL, on_ans, NULL) == 0 ? 0 : -1;
}

void hosts_stop(void)
{
    if (S.beat)
        event_free(S.beat);
    S.beat = NULL;
    while (S.qs) {
        struct qry *q = S.qs;
        S.qs = q->next;
        event_free(q->timer);
        free(q);
    }
}

int names_start(void) { return 0; }
void names_stop(void) {}
