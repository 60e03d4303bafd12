/* namesjob.c - names.c's key-value calls, on the cluster worker thread
 * (every kvStore_* call blocks for its JetStream reply: never on the loop).
 * A job touches only itself and cluster_kv(); its done runs on the loop.
 *
 * Keys: a VM name may hold ':' and '.', which a KV key may not hold (':')
 * or reads as a token separator ('.'): they travel as "=3A" and "=2E" ('='
 * is not a name character, so decoding is exact; namescheck.c). Values:
 * the record as JSON text. */
#include "namescheck.h"
#include "namesint.h"

#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *host_in(json_t *rec)
{
    return json_string_value(json_object_get(rec, "host"));
}

/* The entry's record (new reference) or NULL if its value is not JSON. */
static json_t *entry_record(kvEntry *e)
{
    return json_loadb(kvEntry_Value(e), (size_t)kvEntry_ValueLen(e), 0, NULL);
}

static void unavailable(struct names_job *j, natsStatus s)
{
    j->ok = -1;
    snprintf(j->why, sizeof j->why, "cluster unavailable: names bucket: %s",
             s == NATS_OK ? "not bound yet (is JetStream on?)" : natsStatus_GetText(s));
}

/* ok 1 with the entry, 0 when the key is absent, -1 (why) on failure. */
static int get(struct names_job *j, kvStore *kv, const char *key, kvEntry **e)
{
    natsStatus s = kvStore_Get(e, kv, key);
    if (s == NATS_OK)
        return 1;
    *e = NULL;
    if (s == NATS_NOT_FOUND)
        return 0;
    unavailable(j, s);
    return -1;
}

/* Create wins or loses; a loss to a stale key of our own host (a previous
 * run that was killed) takes the key over on its revision. */
static void claim(struct names_job *j, kvStore *kv, const char *key, const char *val)
{
    uint64_t rev;
    for (int attempt = 0; attempt < 2; attempt++) {
        natsStatus s = kvStore_Create(&rev, kv, key, val, (int)strlen(val));
        if (s == NATS_OK) {
            j->ok = 1;
            return;
        }
        if (s != NATS_ERR)      /* timeout, no responders, closed: not a conflict */
            return unavailable(j, s);
        kvEntry *e;
        int g = get(j, kv, key, &e);
        if (g < 0)
            return;
        if (g == 0)
            continue;           /* deleted in between: try again */
        json_t *cur = entry_record(e);
        const char *h = host_in(cur);
        if (h && strcmp(h, j->self) == 0 &&
            kvStore_Update(&rev, kv, key, val, (int)strlen(val), kvEntry_Revision(e)) == NATS_OK)
            j->ok = 1;
        else
            j->ok = 0, snprintf(j->why, sizeof j->why, "%s", h ? h : "another host");
        json_decref(cur);
        kvEntry_Destroy(e);
        return;
    }
    j->ok = 0;
    snprintf(j->why, sizeof j->why, "another host");
}

/* Release: only a key still naming this host (a failover may have moved it). */
static void release(struct names_job *j, kvStore *kv, const char *key)
{
    kvEntry *e;
    if (get(j, kv, key, &e) <= 0)
        return;
    json_t *cur = entry_record(e);
    const char *h = host_in(cur);
    if (h && strcmp(h, j->self) == 0)
        j->ok = kvStore_Delete(kv, key) == NATS_OK;
    json_decref(cur);
    kvEntry_Destroy(e);
}

static void lookup(struct names_job *j, kvStore *kv, const char *key)
{
    kvEntry *e;
    int g = get(j, kv, key, &e);
    if (g <= 0) {
        if (g == 0)
            snprintf(j->why, sizeof j->why, "no such name in the cluster");
        return;
    }
    json_decref(j->record);
    j->record = entry_record(e);
    j->rev = kvEntry_Revision(e);
    j->ok = j->record != NULL;
    kvEntry_Destroy(e);
}

/* Every live key with its value and revision, from one watcher's initial
 * values (kvStore_Keys would list the keys only, and a Get per key would
 * follow). The end-of-initial marker comes from the consumer's pending
 * count at subscribe time; reading on for SCAN_IDLE_MS past it also takes
 * what was written meanwhile. Deleted keys come as delete markers. */
#define SCAN_IDLE_MS 60
#define SCAN_FIRST_MS 1000

static void scan_add(struct names_job *j, kvEntry *e)
{
    char name[BX_NAME_MAX + 1];
    kvOperation op = kvEntry_Operation(e);
    if (op == kvOp_Delete || op == kvOp_Purge ||
        namescheck_name_of(kvEntry_Key(e), name, sizeof name) < 0)
        return;
    json_t *rec = entry_record(e);
    if (rec)
        json_object_set_new(j->record, name, json_pack("{s:o, s:I}", "record", rec,
                            "rev", (json_int_t)kvEntry_Revision(e)));
}

static void scan(struct names_job *j, kvStore *kv)
{
    kvWatcher *w = NULL;
    json_decref(j->record);
    j->record = json_object();
    natsStatus s = kvStore_WatchAll(&w, kv, NULL);
    if (s != NATS_OK)
        return unavailable(j, s);
    int marker = 0;
    for (;;) {
        kvEntry *e = NULL;
        s = kvWatcher_Next(&e, w, marker ? SCAN_IDLE_MS : SCAN_FIRST_MS);
        if (s != NATS_OK)
            break;
        if (!e)
            marker = 1;
        else {
            scan_add(j, e);
            kvEntry_Destroy(e);
        }
    }
    kvWatcher_Destroy(w);
    if (s == NATS_TIMEOUT && marker)
        j->ok = 1;
    else
        unavailable(j, s);
}

/* Purge and takeover act only on a key that still names the host that
 * is gone (j->why; nobody took it over since), at the revision read here. */
static void sweep_act(struct names_job *j, kvStore *kv, const char *key, const char *val)
{
    kvEntry *e;
    uint64_t rev;
    if (get(j, kv, key, &e) <= 0)
        return;
    json_t *cur = entry_record(e);
    const char *h = host_in(cur);
    if (h && strcmp(h, j->why) == 0) {
        if (j->kind == NJ_PURGE)
            j->ok = kvStore_Delete(kv, key) == NATS_OK;
        else if (val)
            j->ok = kvStore_Update(&rev, kv, key, val, (int)strlen(val),
                                   kvEntry_Revision(e)) == NATS_OK;
    }
    json_decref(cur);
    kvEntry_Destroy(e);
}

static void work(void *arg)
{
    struct names_job *j = arg;
    kvStore *kv = cluster_kv();
    char key[NAMES_KEY_MAX];
    if (!kv)
        return unavailable(j, NATS_OK);
    namescheck_key_of(j->name, key);
    j->ok = 0;
    char *val = j->record && (j->kind == NJ_CLAIM || j->kind == NJ_TAKEOVER)
                ? json_dumps(j->record, JSON_COMPACT) : NULL;
    switch (j->kind) {
    case NJ_CLAIM:    if (val) claim(j, kv, key, val); break;
    case NJ_RELEASE:  release(j, kv, key); break;
    case NJ_LOOKUP:   lookup(j, kv, key); break;
    case NJ_SCAN:     scan(j, kv); break;
    case NJ_PURGE:
    case NJ_TAKEOVER: sweep_act(j, kv, key, val); break;
    }
    free(val);
}

static void done(void *arg)
{
    struct names_job *j = arg;
    if (j->done)
        j->done(j);
    json_decref(j->record);
    free(j);
}

int namesjob_init(struct names_job *j, const char *name, json_t *record)
{
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->self, sizeof j->self, "%s", cluster_self());
    j->record = record ? json_deep_copy(record) : NULL;
    j->ok = -1;
    snprintf(j->why, sizeof j->why, "cluster unavailable: shutting down");
    return record && !j->record ? -1 : 0;
}

int namesjob_submit(struct names_job *j, enum nj_kind kind, void (*d)(struct names_job *j))
{
    j->kind = kind;
    j->done = d;
    if (cluster_defer(work, done, j) == 0)
        return 0;
    json_decref(j->record);
    free(j);
    return -1;
}
