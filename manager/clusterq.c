/* clusterq.c - the cluster's bounded inbox (clusterq.h). */
#include "clusterq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cq_init(struct cq *q, size_t max_count, size_t max_bytes, void (*wake)(void *), void *arg)
{
    memset(q, 0, sizeof *q);
    q->max_count = max_count;
    q->max_bytes = max_bytes;
    q->wake = wake;
    q->wake_arg = arg;
    return pthread_mutex_init(&q->mu, NULL) ? -1 : 0;
}

void cq_fini(struct cq *q)
{
    struct cq_item *it = q->head, *next;
    for (; it; it = next) {
        next = it->next;
        free(it);
    }
    q->head = q->tail = NULL;
    pthread_mutex_destroy(&q->mu);
}

static char *put(char **p, const void *s, size_t n)
{
    char *at = *p;
    memcpy(at, s, n);
    at[n] = 0;
    *p += n + 1;
    return at;
}

struct cq_item *cq_item_new(enum cq_kind kind, const char *subject, const char *reply,
                            const void *data, size_t len)
{
    size_t ns = subject ? strlen(subject) : 0, nr = reply ? strlen(reply) : 0;
    size_t cost = sizeof(struct cq_item) + ns + nr + len + 3;
    struct cq_item *it = calloc(1, cost);
    if (!it)
        return NULL;
    char *p = (char *)(it + 1);
    it->kind = kind;
    it->cost = cost;
    it->subject = subject ? put(&p, subject, ns) : NULL;
    it->reply = reply ? put(&p, reply, nr) : NULL;
    it->data = put(&p, data ? data : "", data ? len : 0);
    it->len = data ? len : 0;
    return it;
}

int cq_push(struct cq *q, struct cq_item *it)
{
    int wake = 0, r = 0;
    pthread_mutex_lock(&q->mu);
    if (it->kind == CQ_MSG && (q->count + 1 > q->max_count || q->bytes + it->cost > q->max_bytes)) {
        q->dropped++;
        r = q->dropping ? -1 : 1;
        q->dropping = 1;
        pthread_mutex_unlock(&q->mu);
        free(it);
        return r;
    }
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->count++;
    q->bytes += it->cost;
    if (!q->woken)
        wake = q->woken = 1;
    pthread_mutex_unlock(&q->mu);
    if (wake && q->wake)
        q->wake(q->wake_arg);
    return 0;
}

int cq_take(struct cq *q, struct cq_item **list, size_t max)
{
    struct cq_item *first, *last = NULL, *it;
    size_t n = 0;
    pthread_mutex_lock(&q->mu);
    first = q->head;
    for (it = q->head; it && n < max; it = it->next, n++) {
        last = it;
        q->count--;
        q->bytes -= it->cost;
    }
    q->head = it;
    if (!it)
        q->tail = NULL;
    if (last)
        last->next = NULL;
    int more = q->head != NULL;
    if (!more) {
        q->woken = 0;
        q->dropping = 0;
    }
    pthread_mutex_unlock(&q->mu);
    *list = n ? first : NULL;
    return more;
}

unsigned long long cq_dropped(struct cq *q)
{
    pthread_mutex_lock(&q->mu);
    unsigned long long d = q->dropped;
    pthread_mutex_unlock(&q->mu);
    return d;
}

int cq_payload_fits(size_t len, size_t max, char *err, size_t n)
{
    if (len <= max)
        return 0;
    snprintf(err, n, "a message of %zu bytes is larger than the cluster's max payload of %zu bytes",
             len, max);
    return -1;
}
