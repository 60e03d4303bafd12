/* namesint.h - names.c's jobs for the cluster worker (namesjob.c) and the
 * failover's recreate (namesfail.c). Internal to the names part. A job is
 * made and read on the loop; between namesjob_submit and its done it
 * belongs to the worker, which touches nothing but the job and the bucket. */
#ifndef BX_NAMESINT_H
#define BX_NAMESINT_H

#include "cluster.h"
#include "proto.h"

#include <jansson.h>
#include <stdint.h>

enum nj_kind {
    NJ_CLAIM,       /* create the key (or take over a stale one of ours) */
    NJ_RELEASE,     /* delete it if it is still ours */
    NJ_LOOKUP,      /* read it: record */
    NJ_SCAN,        /* every key: record = {name: {"record": R, "rev": N}} */
    NJ_PURGE,       /* delete it if it still names host why */
    NJ_TAKEOVER,    /* write record if it still names host why, on the
                       revision read (kvStore_Update): one winner */
};

struct names_job {
    enum nj_kind kind;
    char name[BX_NAME_MAX + 1];
    char self[CLUSTER_HOST_MAX + 1];
    json_t *record;     /* owned: what to write, or what was read */
    uint64_t rev;       /* NJ_LOOKUP: the revision read */
    int ok;             /* 1 done, 0 refused (taken, changed), -1 cluster unavailable */
    char why[200];      /* ok 0: the holder's host; -1: the reason */
    void (*done)(struct names_job *j);
};

/* record is copied (may be NULL). 0 or -1. */
int namesjob_init(struct names_job *j, const char *name, json_t *record);
/* On the worker; done on the loop, then j is freed (it must be the first
 * member of a calloc'd block). -1: not submitted (j is freed, done not run). */
int namesjob_submit(struct names_job *j, enum nj_kind kind, void (*done)(struct names_job *j));

/* namesfail.c: the key is ours, recreate the VM of a dead host. */
void names_failover(const char *name, json_t *record, const char *from);
/* ... and another host's failover relay ("op": "failover"): its VM_RESTART
 * to this host's clients of the owner's identity and its subscribers. */
void names_failover_heard(json_t *msg);

#endif
