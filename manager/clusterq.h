/* clusterq.h - the cluster's inbox: the one place where nats.c's threads
 * (and the cluster worker) hand things to the loop thread. It knows nothing
 * of NATS, so tests/c/test_clusterq.c links it alone.
 *
 * Messages are bounded (count and bytes): past the bound the newest is
 * dropped and counted, because a nats.c delivery thread must never wait for
 * the loop. State changes and done callbacks are never dropped: each is
 * owed to someone (a listener, the owner of a deferred job's arg). */
#ifndef BX_CLUSTERQ_H
#define BX_CLUSTERQ_H

#include <pthread.h>
#include <stddef.h>

enum cq_kind { CQ_MSG, CQ_STATE, CQ_DONE };

struct cq_item {
    struct cq_item *next;
    enum cq_kind kind;
    void *target;           /* MSG: the subscription; DONE: the done function */
    void *arg;              /* DONE: its arg */
    int up;                 /* STATE: 1 connected, 0 not */
    char *subject;          /* MSG: subject; STATE: the reason (all in this block) */
    char *reply;            /* MSG: reply subject or NULL */
    char *data;             /* MSG: payload (NUL-terminated too), len bytes */
    size_t len;
    size_t cost;            /* bytes charged to the bound */
};

struct cq {
    pthread_mutex_t mu;
    struct cq_item *head, *tail;
    size_t count, bytes;            /* queued now */
    size_t max_count, max_bytes;    /* bound on messages */
    unsigned long long dropped;     /* messages refused since start */
    int woken;                      /* a wake is owed or in progress */
    int dropping;                   /* within a burst of drops (log once) */
    void (*wake)(void *);           /* called (unlocked) on empty -> non-empty */
    void *wake_arg;
};

int cq_init(struct cq *q, size_t max_count, size_t max_bytes, void (*wake)(void *), void *arg);
void cq_fini(struct cq *q);        /* frees whatever is still queued */

/* One allocation holding the item and copies of the strings and data
 * (any may be NULL). NULL when out of memory. */
struct cq_item *cq_item_new(enum cq_kind kind, const char *subject, const char *reply,
                            const void *data, size_t len);

/* Queues it (0), or, for a CQ_MSG past the bound, frees it, counts the drop
 * and returns -1 (1 for the first drop of a burst: the caller logs once). */
int cq_push(struct cq *q, struct cq_item *it);

/* Unlinks up to max items, oldest first, into *list (NULL-terminated);
 * returns 1 if more remain (the caller wakes itself again), else 0. */
int cq_take(struct cq *q, struct cq_item **list, size_t max);

unsigned long long cq_dropped(struct cq *q);

/* cluster_publish's size rule: 0 if len bytes fit the server's max
 * payload, else -1 with the message the caller gets (never truncated).
 * max 0: not known (not connected), which the caller reports first. */
int cq_payload_fits(size_t len, size_t max, char *err, size_t n);

#endif
