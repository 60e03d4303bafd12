/* names.c - VM names across the cluster (names.h). The bucket is the truth:
 * a name is ours once kvStore_Create wrote its key (one winner per name),
 * and every KV call runs on the cluster worker (namesjob.c). The loop keeps:
 *   mine     the names this host holds or is claiming: released on destroy;
 *   replica  name -> record of every host, for names_where(): fed by the
 *            "<prefix>.names" announcements each host publishes after a
 *            write that succeeded, and replaced by a bucket scan now and then
 *            (announcements are core NATS, at most once).
 * Why not a core subscription to "$KV.<bucket>.>": it sees every publish to
 * the stream's subjects, the losing create of a race included, so it would
 * tell some hosts the loser holds the name. kvWatcher_Next (3.4.1) blocks
 * on a condition variable and would hold the one worker thread.
 *
 * The sweep (every NAMES_SWEEP_S while a host is gone, else every 5th):
 * the lowest live host scans the bucket and, for a name whose host has been gone NAMES_GRACE_S (hosts.c), takes
 * over an on-crash VM (kvStore_Update on the revision it read: one winner)
 * or deletes the key. A host that left cleanly ("leaving" beat) destroyed
 * its VMs on purpose: its names are deleted, nothing fails over. Every host
 * also deletes stale keys under its own name (a previous run of it). */
#include "manager.h"
#include "cluster.h"
#include "hosts.h"
#include "names.h"
#include "namescheck.h"
#include "namesint.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMES_SWEEP_S 2.0
#define NAMES_GRACE_S 2.0       /* gone this long (past HOSTS_ALIVE_S) before its names go */
#define NAMES_RESCAN_TICKS 5    /* a non-leader refreshes its replica every 5 sweeps */

static struct {
    int started;
    json_t *mine;       /* name -> record */
    json_t *replica;    /* name -> record + "t" (when heard), or {"gone": true, "t"} */
    struct event *tick;
    unsigned ticks;
    int sweeping;       /* jobs of the current sweep still out */
    char subject[160];
} N;

/* ---- the replica -------------------------------------------------------- */

/* A record's host becomes a subject token ("<prefix>.h.<host>..."), so
 * only a valid host name is believed, from the wire and from the bucket. */
#define record_ok namescheck_record

static void replica_set(const char *name, json_t *rec, int gone)
{
    json_t *r = gone ? json_pack("{s:b}", "gone", 1) : json_deep_copy(rec);
    if (!r)
        return;
    json_object_set_new(r, "t", json_real(proto_now()));
    json_object_set_new(N.replica, name, r);
}

static void announce(const char *op, const char *name, json_t *rec)
{
    char err[128];
    json_t *m = json_pack("{s:s, s:s, s:s, s:O?}", "op", op, "name", name,
                          "host", cluster_self(), "record", rec);
    if (m && cluster_up())
        cluster_publish(N.subject, NULL, m, err, sizeof err);
    json_decref(m);
}

/* Another host wrote a name. A "del" only removes the entry of the host
 * that sent it: a newer owner's "set" may have come first. */
static void on_names(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    const char *op, *name, *from;
    json_t *rec = json_object_get(msg, "record");
    if (namescheck_announce(msg, &op, &name, &from) < 0) {
        fprintf(stderr, "bioxen-manager: cluster: dropped a malformed names message\n");
        return;
    }
    if (strcmp(from, cluster_self()) == 0)
        return;
    if (strcmp(op, "set") == 0)
        replica_set(name, rec, 0);
    else if (strcmp(op, "failover") == 0) {
        replica_set(name, rec, 0);      /* before its clients hear it moved */
        names_failover_heard(msg);
    } else if (strcmp(op, "del") == 0) {
        json_t *cur = json_object_get(N.replica, name);
        const char *h = json_string_value(json_object_get(cur, "host"));
        if (h && strcmp(h, from) == 0)
            replica_set(name, NULL, 1);
    }
}

const char *names_where(const char *name)
{
    if (!N.started || !name)
        return NULL;
    if (json_object_get(N.mine, name))
        return cluster_self();
    return json_string_value(json_object_get(json_object_get(N.replica, name), "host"));
}

/* A scan replaces the replica, except for what was heard after it began. */
static void replica_merge(json_t *scan, double began)
{
    json_t *next = json_object(), *v;
    const char *k;
    json_object_foreach(N.replica, k, v)
        if (json_number_value(json_object_get(v, "t")) > began)
            json_object_set(next, k, v);
    json_object_foreach(scan, k, v)
        if (!json_object_get(next, k) && record_ok(json_object_get(v, "record"))) {
            json_t *r = json_deep_copy(json_object_get(v, "record"));
            json_object_set_new(r, "t", json_real(began));
            json_object_set_new(next, k, r);
        }
    json_decref(N.replica);
    N.replica = next;
}

/* ---- claim and release -------------------------------------------------- */

/* mine keeps a copy of the record and when it was claimed ("t"). */
static void mine_add(const char *name, json_t *record)
{
    json_t *m = json_deep_copy(record);
    if (m)
        json_object_set_new(m, "t", json_real(proto_now()));
    json_object_set_new(N.mine, name, m ? m : json_object());
}

struct claim_ctx {
    struct names_job j;
    names_done_fn done;
    void *arg;
};

static void claim_done(struct names_job *j)
{
    struct claim_ctx *c = (struct claim_ctx *)j;
    if (j->ok == 1)
        announce("set", j->name, j->record);
    else
        json_object_del(N.mine, j->name);
    c->done(j->ok, j->ok == 1 ? cluster_self() : j->why, c->arg);
}

int names_claim(const char *name, json_t *record, names_done_fn done, void *arg)
{
    if (!cluster_enabled() || !N.started) {
        done(1, "", arg);
        return 0;
    }
    if (json_object_get(N.mine, name)) {
        done(0, cluster_self(), arg);   /* a create of that name is on its way here */
        return 0;
    }
    if (!cluster_up()) {
        done(-1, "cluster unavailable: not connected to NATS", arg);
        return 0;
    }
    json_object_set_new(record, "host", json_string(cluster_self()));
    struct claim_ctx *c = calloc(1, sizeof *c);
    if (!c || namesjob_init(&c->j, name, record) < 0) {
        free(c);
        done(-1, "cluster unavailable: out of memory", arg);
        return 0;
    }
    c->done = done;
    c->arg = arg;
    mine_add(name, record);
    if (namesjob_submit(&c->j, NJ_CLAIM, claim_done) < 0) {
        json_object_del(N.mine, name);
        done(-1, "cluster unavailable: shutting down", arg);
    }
    return 0;
}

static void release_done(struct names_job *j)
{
    if (j->ok == 1)
        announce("del", j->name, NULL);
}

void names_release(const char *name)
{
    if (!N.started || !json_object_get(N.mine, name))
        return;
    json_object_del(N.mine, name);
    struct names_job *j = calloc(1, sizeof *j);
    if (!j || namesjob_init(j, name, NULL) < 0) {
        free(j);
        return;     /* the sweep of our own stale keys deletes it later */
    }
    namesjob_submit(j, NJ_RELEASE, release_done);
}

struct lookup_ctx {
    struct names_job j;
    names_done_fn done;
    void *arg;
};

static void lookup_done(struct names_job *j)
{
    struct lookup_ctx *c = (struct lookup_ctx *)j;
    const char *host = json_string_value(json_object_get(j->record, "host"));
    if (j->ok == 1 && !record_ok(j->record)) {
        host = NULL, j->ok = 0;
        snprintf(j->why, sizeof j->why, "no such name in the cluster");
    }
    if (j->ok == 1)
        replica_set(j->name, j->record, 0);
    c->done(j->ok == 1 && host ? 1 : j->ok == -1 ? -1 : 0, host ? host : j->why, c->arg);
}

int names_lookup(const char *name, names_done_fn done, void *arg)
{
    if (!cluster_enabled() || !cluster_up() || !N.started) {
        done(-1, "cluster unavailable", arg);
        return 0;
    }
    struct lookup_ctx *c = calloc(1, sizeof *c);
    if (!c || namesjob_init(&c->j, name, NULL) < 0) {
        free(c);
        done(-1, "cluster unavailable: out of memory", arg);
        return 0;
    }
    c->done = done;
    c->arg = arg;
    if (namesjob_submit(&c->j, NJ_LOOKUP, lookup_done) < 0)
        done(-1, "cluster unavailable: shutting down", arg);
    return 0;
}

/* ---- the sweep ---------------------------------------------------------- */

static void action_done(struct names_job *j)
{
    N.sweeping--;
    if (j->ok != 1)
        return;
    if (j->kind == NJ_PURGE) {
        replica_set(j->name, NULL, 1);
        announce("del", j->name, NULL);
        return;
    }
    /* NJ_TAKEOVER: the key is ours now; mine before the create, so that a
     * create that fails releases it again */
    mine_add(j->name, j->record);
    announce("set", j->name, j->record);
    names_failover(j->name, j->record, j->why);
}

static void sweep_action(const char *name, json_t *entry, enum nj_kind kind)
{
    struct names_job *j = calloc(1, sizeof *j);
    json_t *rec = json_object_get(entry, "record");
    if (!j || namesjob_init(j, name, rec) < 0) {
        free(j);
        return;
    }
    snprintf(j->why, sizeof j->why, "%s", json_string_value(json_object_get(rec, "host")));
    if (kind == NJ_TAKEOVER)
        json_object_set_new(j->record, "host", json_string(cluster_self()));
    if (namesjob_submit(j, kind, action_done) == 0)
        N.sweeping++;
}

/* What becomes of one key the scan found. */
static void sweep_one(const char *name, json_t *entry, int leader)
{
    json_t *rec = json_object_get(entry, "record");
    const char *host = json_string_value(json_object_get(rec, "host"));
    const char *restart = json_string_value(json_object_get(rec, "restart"));
    if (!record_ok(rec))
        return;
    if (strcmp(host, cluster_self()) == 0) {
        if (!json_object_get(N.mine, name))
            sweep_action(name, entry, NJ_PURGE);    /* a previous run of this host */
        return;
    }
    if (!leader || hosts_gone_for(host) < NAMES_GRACE_S)
        return;
    /* failover needs a witness: a host heard alive that fell silent; one
     * never heard (it stopped before this host started) or one that left
     * cleanly only loses its names */
    int failover = restart && strcmp(restart, "on-crash") == 0 && hosts_seen(host) &&
                   !hosts_left(host) && json_object_get(rec, "init") && !mgr->shutting_down;
    sweep_action(name, entry, failover ? NJ_TAKEOVER : NJ_PURGE);
}

/* A name of ours the bucket lost (swept while this host was cut off from
 * NATS, or a wiped store): claimed again; if another host has it now (a
 * failover while we were away), the cluster has one VM of that name, and
 * it is not ours: ours goes. */
static void reclaim_done(struct names_job *j)
{
    N.sweeping--;
    struct vm *vm = registry_find(j->name);
    if (j->ok == 1)
        announce("set", j->name, j->record);
    if (j->ok != 0 || !json_object_get(N.mine, j->name))
        return;
    char why[300];
    snprintf(why, sizeof why, "VM destroyed: its name was taken by host %s while this host "
             "was cut off from the cluster", j->why);
    fprintf(stderr, "bioxen-manager: cluster: '%s': %s\n", j->name, why);
    json_object_del(N.mine, j->name);   /* not ours to release */
    if (vm) {
        events_emit(vm, "VM_CRASH", json_pack("{s:s}", "reason", why));
        vm_destroy(vm, BX_E_VM_CRASHED, why);
    }
}

static void reclaim_missing(json_t *scan, double began)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(N.mine, tmp, k, v) {
        if (json_object_get(scan, k) || json_number_value(json_object_get(v, "t")) >= began)
            continue;
        struct names_job *j = calloc(1, sizeof *j);
        if (!j || namesjob_init(j, k, v) < 0) {
            free(j);
            continue;
        }
        json_object_del(j->record, "t");
        if (namesjob_submit(j, NJ_CLAIM, reclaim_done) == 0)
            N.sweeping++;
    }
}

struct scan_ctx {
    struct names_job j;
    double began;
};

static void scan_done(struct names_job *j)
{
    struct scan_ctx *s = (struct scan_ctx *)j;
    N.sweeping--;
    if (j->ok != 1 && N.started)
        fprintf(stderr, "bioxen-manager: cluster: names scan failed: %s\n", j->why);
    if (j->ok != 1 || !N.started)
        return;
    int leader = hosts_leader();
    const char *k;
    json_t *v;
    /* what the replica heard and the scan missed (a write after it read) */
    json_object_foreach(N.replica, k, v)
        if (leader && !json_object_get(j->record, k) && json_object_get(v, "host")) {
            json_t *entry = json_pack("{s:o}", "record", json_deep_copy(v));
            json_object_del(json_object_get(entry, "record"), "t");
            sweep_one(k, entry, leader);
            json_decref(entry);
        }
    replica_merge(j->record, s->began);
    json_object_foreach(j->record, k, v)
        sweep_one(k, v, leader);
    reclaim_missing(j->record, s->began);
}

/* The replica names a host that is not alive: the sweeper looks closer. */
static int suspect(void)
{
    const char *k;
    json_t *v;
    json_object_foreach(N.replica, k, v) {
        const char *h = json_string_value(json_object_get(v, "host"));
        if (h && !hosts_alive(h))
            return 1;
    }
    return 0;
}

/* A scan holds the worker for SCAN_IDLE_MS at least (namesjob.c), and
 * creates queue behind it: every NAMES_RESCAN_TICKS sweeps, or every sweep
 * on the sweeping host while a name of a host that is gone is known. */
static void sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    timer_arm(N.tick, NAMES_SWEEP_S);
    N.ticks++;
    if (N.sweeping || !cluster_up() || mgr->shutting_down)
        return;
    if (N.ticks % NAMES_RESCAN_TICKS && !(hosts_leader() && suspect()))
        return;
    struct scan_ctx *s = calloc(1, sizeof *s);
    if (!s || namesjob_init(&s->j, "", NULL) < 0) {
        free(s);
        return;
    }
    s->began = proto_now();
    if (namesjob_submit(&s->j, NJ_SCAN, scan_done) == 0)
        N.sweeping++;
}

/* ---- start, stop -------------------------------------------------------- */

int names_start(void)
{
    if (!cluster_enabled())
        return 0;
    N.mine = json_object();
    N.replica = json_object();
    if (!N.mine || !N.replica || cluster_subject(N.subject, sizeof N.subject, "names") < 0 ||
        cluster_subscribe(N.subject, NULL, on_names, NULL) < 0 ||
        !(N.tick = evtimer_new(mgr->base, sweep_cb, NULL)))
        return -1;
    N.started = 1;
    timer_arm(N.tick, NAMES_SWEEP_S);
    return 0;
}

void names_stop(void)
{
    if (!N.started)
        return;
    N.started = 0;
    event_free(N.tick);
    N.tick = NULL;
    json_decref(N.mine);
    json_decref(N.replica);
    N.mine = N.replica = NULL;
}
