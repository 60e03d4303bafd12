/* mbqueue.h - a bounded FIFO of messages with back-pressure, the mechanism
 * under every mailbox and outbox: a sender that does not fit is parked
 * (oldest first, with an optional timeout) and admitted as room is made,
 * never dropped; one pull at a time waits for mail, with an optional
 * timer. No names and no wire format: whoever waits is a struct mbq_who,
 * answered through the mbq_answers the queue's user supplies. */
#ifndef BX_MBQUEUE_H
#define BX_MBQUEUE_H

#include "cluster.h"
#include "manager.h"

#define MAILBOX_DEFAULT_COUNT 1024                  /* messages, unless sized */
#define MAILBOX_DEFAULT_BYTES ((size_t)16 << 20)    /* bytes held, whatever the count */

/* Who waits for an answer: a node (named by VM and pid, so an answer never
 * reaches a restarted node that did not ask), a client (by id) or a sender
 * on another host (is_remote: its host, and its seq as the tag). The queue
 * stores it and hands it back; only the user reads vm, pid, client, host. */
struct mbq_who {
    int is_client, is_remote;
    char vm[BX_NAME_MAX + 1];
    pid_t pid;
    uint64_t client_id;
    char host[CLUSTER_HOST_MAX + 1];
    json_t *tag;            /* owned: the node's K, the client's id or the seq */
};

struct mbq_answers {
    /* items NULL: the send was accepted; else the pull's [[from, value], ...] */
    void (*ok)(struct mbq_who *w, json_t *items);
    void (*err)(struct mbq_who *w, enum bx_err code, const char *msg);
    int (*alive)(const struct mbq_who *w);
};

struct mbq;
struct mbq_mail;

/* A queue of cap messages (0: MAILBOX_DEFAULT_COUNT); name only words the
 * timeout message. NULL when out of memory. */
struct mbq *mbq_new(const char *name, size_t cap, const struct mbq_answers *ans);
/* Parked senders and a client's parked pull fail with VM_NOT_FOUND why
 * (a node's pull goes with its node); queued mail is dropped. */
void mbq_free(struct mbq *q, const char *why);

/* A message from `from` (copied) with value (a new reference; NULL: null),
 * counted as bytes against the byte budget. NULL when out of memory. */
struct mbq_mail *mbq_mail_new(const char *from, json_t *value, size_t bytes);
void mbq_mail_free(struct mbq_mail *m);

/* Takes m and the waiter w (its tag stolen). Accepted at once when there
 * is room and nobody is parked ahead (order per sender), else parked;
 * timeout <= 0: parked until room or the queue goes. 1 when it was parked
 * (a remote sender is told, so that it keeps waiting), else 0. */
int mbq_deliver(struct mbq *q, struct mbq_mail *m, struct mbq_who *w, double timeout);
/* Parks or answers a pull for up to max messages; w is stolen. timeout 0
 * answers at once, < 0 sets no timer (the asker times out itself). */
void mbq_pull(struct mbq *q, struct mbq_who *w, size_t max, double timeout);

/* Parked senders for which drop(w, arg) is true go unanswered (their host
 * is gone: nobody to answer, and their message must not arrive after the
 * sender was told it did not). */
void mbq_drop_parked(struct mbq *q, int (*drop)(const struct mbq_who *w, void *arg), void *arg);

void mbq_who_clear(struct mbq_who *w);

#endif
