/* test_clusterq.c - the cluster inbox (manager/clusterq.c) without NATS:
 * its bounds drop the newest message and count it, never a state change or
 * a job's end; it wakes the loop once per empty -> non-empty; batches keep
 * order; concurrent pushers lose nothing they were not told about. And the
 * publish size rule: over the max payload is refused, never cut. */
#include "check.h"
#include "clusterq.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int wakes;
static void count_wake(void *arg) { (void)arg; wakes++; }

static struct cq_item *msg(const char *subj, size_t len)
{
    char *data = calloc(1, len + 1);
    memset(data, 'x', len);
    struct cq_item *it = cq_item_new(CQ_MSG, subj, "reply.1", data, len);
    free(data);
    return it;
}

static size_t drain(struct cq *q, size_t batch, size_t *batches)
{
    struct cq_item *list, *next;
    size_t n = 0;
    int more;
    do {
        more = cq_take(q, &list, batch);
        (*batches)++;
        for (; list; list = next, n++) {
            next = list->next;
            free(list);
        }
    } while (more);
    return n;
}

static void test_item_copies(void)
{
    struct cq_item *it = cq_item_new(CQ_MSG, "bx.a", NULL, "{\"k\":1}", 7);
    CHECK(it && !strcmp(it->subject, "bx.a") && it->reply == NULL);
    CHECK(it->len == 7 && !memcmp(it->data, "{\"k\":1}", 7) && it->data[7] == 0);
    free(it);
    it = cq_item_new(CQ_STATE, "why", NULL, NULL, 0);
    CHECK(it && it->len == 0 && it->data[0] == 0 && !strcmp(it->subject, "why"));
    free(it);
}

static void test_count_bound(void)
{
    struct cq q;
    size_t batches = 0;
    wakes = 0;
    CHECK(cq_init(&q, 3, 1 << 20, count_wake, NULL) == 0);
    for (int i = 0; i < 3; i++)
        CHECK(cq_push(&q, msg("s", 10)) == 0);
    CHECK(wakes == 1);                      /* one wake for the burst */
    CHECK(cq_push(&q, msg("s", 10)) == 1);  /* first drop: the caller logs */
    CHECK(cq_push(&q, msg("s", 10)) == -1); /* same burst: no second line */
    CHECK(cq_dropped(&q) == 2);
    struct cq_item *st = cq_item_new(CQ_STATE, "down", NULL, NULL, 0);
    struct cq_item *dn = cq_item_new(CQ_DONE, NULL, NULL, NULL, 0);
    CHECK(cq_push(&q, st) == 0 && cq_push(&q, dn) == 0);   /* owed: never dropped */
    CHECK(drain(&q, 2, &batches) == 5 && batches == 3);
    CHECK(cq_push(&q, msg("s", 10)) == 0 && wakes == 2);   /* empty again: wakes again */
    CHECK(drain(&q, 8, &batches) == 1);
    cq_fini(&q);
}

static void test_byte_bound(void)
{
    struct cq q;
    size_t batches = 0;
    CHECK(cq_init(&q, 1000, 3000, NULL, NULL) == 0);
    CHECK(cq_push(&q, msg("s", 1000)) == 0);
    CHECK(cq_push(&q, msg("s", 1000)) == 0);
    CHECK(cq_push(&q, msg("s", 1000)) == 1);    /* 3 x (1000 + header) > 3000 */
    CHECK(cq_push(&q, msg("s", 10)) == 0);      /* a small one still fits */
    CHECK(q.bytes <= 3000 && q.count == 3);
    CHECK(drain(&q, 100, &batches) == 3 && q.bytes == 0 && q.count == 0);
    CHECK(cq_push(&q, msg("s", 1000)) == 0);    /* room again; new burst */
    cq_fini(&q);                                /* frees what is left */
}

static void test_order(void)
{
    struct cq q;
    struct cq_item *list;
    char subj[16];
    CHECK(cq_init(&q, 100, 1 << 20, NULL, NULL) == 0);
    for (int i = 0; i < 10; i++) {
        snprintf(subj, sizeof subj, "s.%d", i);
        cq_push(&q, msg(subj, 1));
    }
    int want = 0, ok = 1;
    for (int more = 1; more;) {
        more = cq_take(&q, &list, 3);
        while (list) {
            struct cq_item *next = list->next;
            snprintf(subj, sizeof subj, "s.%d", want++);
            ok &= !strcmp(list->subject, subj);
            free(list);
            list = next;
        }
    }
    CHECK(ok && want == 10);
    cq_fini(&q);
}

#define PUSHERS 4
#define PER_PUSHER 20000
static struct cq shared;
static int refused[PUSHERS];

static void *pusher(void *arg)
{
    int k = (int)(long)arg;
    for (int i = 0; i < PER_PUSHER; i++)
        if (cq_push(&shared, msg("p", 16)) != 0)
            refused[k]++;
    return NULL;
}

static void test_concurrent(void)
{
    pthread_t t[PUSHERS];
    size_t taken = 0, batches = 0;
    CHECK(cq_init(&shared, 500, 1 << 20, NULL, NULL) == 0);
    for (long i = 0; i < PUSHERS; i++)
        pthread_create(&t[i], NULL, pusher, (void *)i);
    for (int spin = 0; spin < 2000; spin++)
        taken += drain(&shared, 64, &batches);
    for (int i = 0; i < PUSHERS; i++)
        pthread_join(t[i], NULL);
    taken += drain(&shared, 64, &batches);
    unsigned long long lost = 0;
    for (int i = 0; i < PUSHERS; i++)
        lost += (unsigned long long)refused[i];
    CHECK(lost == cq_dropped(&shared));
    CHECK(taken + lost == (unsigned long long)PUSHERS * PER_PUSHER);
    cq_fini(&shared);
}

static void test_payload_rule(void)
{
    char err[200] = "";
    CHECK(cq_payload_fits(1048576, 1048576, err, sizeof err) == 0);
    CHECK(cq_payload_fits(1048577, 1048576, err, sizeof err) == -1);
    CHECK(strstr(err, "1048577 bytes") && strstr(err, "max payload of 1048576"));
}

int main(void)
{
    test_item_copies();
    test_count_bound();
    test_byte_bound();
    test_order();
    test_concurrent();
    test_payload_rule();
    return CHECK_DONE();
}
