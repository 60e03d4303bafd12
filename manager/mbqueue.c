/* mbqueue.c - the bounded message queue (mbqueue.h): FIFO, byte and count
 * budget, parked senders with their timers, one parked pull with its
 * timer. Owns every struct mbq, its mails, parked senders and timers; the
 * waiters are answered through the queue's mbq_answers. */
#include "mbqueue.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mbq_mail {
    struct mbq_mail *next;
    json_t *from, *value;   /* owned */
    size_t bytes;           /* frame size it came in: the byte budget */
};

struct sender {
    struct sender *next;
    struct mbq *q;
    struct mbq_mail *m;     /* owned until admitted */
    struct mbq_who w;
    struct event *timer;    /* owned; NULL without a send timeout */
};

struct mbq {
    char name[BX_NAME_MAX + 1];
    const struct mbq_answers *ans;
    struct mbq_mail *head, *tail;
    size_t count, bytes, cap;
    struct sender *s_head, *s_tail;
    int pulling;
    struct mbq_who puller;
    size_t pull_max;
    struct event *pull_timer;   /* owned */
};

void mbq_who_clear(struct mbq_who *w)
{
    json_decref(w->tag);
    w->tag = NULL;
}

struct mbq_mail *mbq_mail_new(const char *from, json_t *value, size_t bytes)
{
    struct mbq_mail *m = calloc(1, sizeof *m);
    if (m) {
        m->from = json_string(from);
        m->value = value ? json_incref(value) : json_null();
        m->bytes = bytes;
    }
    return m;
}

void mbq_mail_free(struct mbq_mail *m)
{
    json_decref(m->from);
    json_decref(m->value);
    free(m);
}

static int fits(struct mbq *q, struct mbq_mail *m)
{
    /* one message of any size fits an empty box: a frame is bounded anyway */
    return q->count < q->cap &&
           (q->count == 0 || q->bytes + m->bytes <= MAILBOX_DEFAULT_BYTES);
}

static void enqueue(struct mbq *q, struct mbq_mail *m)
{
    m->next = NULL;
    if (q->tail)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    q->count++;
    q->bytes += m->bytes;
}

/* Up to max oldest mails as [[from, value], ...], kept under one frame. */
static json_t *take(struct mbq *q, size_t max)
{
    json_t *items = json_array();
    size_t total = 0, budget = mgr->max_frame > 8192 ? mgr->max_frame - 4096 : mgr->max_frame;
    while (q->head && json_array_size(items) < max &&
           (json_array_size(items) == 0 || total + q->head->bytes <= budget)) {
        struct mbq_mail *m = q->head;
        q->head = m->next;
        if (!q->head)
            q->tail = NULL;
        q->count--;
        q->bytes -= m->bytes;
        total += m->bytes;
        json_array_append_new(items, json_pack("[O, O]", m->from, m->value));
        mbq_mail_free(m);
    }
    return items;
}

static void sender_free(struct sender *s)
{
    if (s->timer)
        event_free(s->timer);
    if (s->m)
        mbq_mail_free(s->m);
    mbq_who_clear(&s->w);
    free(s);
}

/* Room was made: parked senders go in, oldest first, each acked now. */
static void admit(struct mbq *q)
{
    while (q->s_head && fits(q, q->s_head->m)) {
        struct sender *s = q->s_head;
        q->s_head = s->next;
        if (!q->s_head)
            q->s_tail = NULL;
        enqueue(q, s->m);
        s->m = NULL;
        q->ans->ok(&s->w, NULL);
        sender_free(s);
    }
}

static void pull_end(struct mbq *q)
{
    q->pulling = 0;
    evtimer_del(q->pull_timer);
    mbq_who_clear(&q->puller);
}

static void pull_answer_none(struct mbq *q)
{
    json_t *none = json_array();
    q->ans->ok(&q->puller, none);
    json_decref(none);
    pull_end(q);
}

/* Answers a parked pull if there is mail (or drops it if its asker died). */
static void serve_pull(struct mbq *q)
{
    if (!q->pulling || !q->head)
        return;
    if (!q->ans->alive(&q->puller))
        return pull_end(q);
    json_t *items = take(q, q->pull_max);
    q->ans->ok(&q->puller, items);
    json_decref(items);
    pull_end(q);
    admit(q);
}

static void pull_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    pull_answer_none(arg);
    flush_all();
}

static void sender_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev;
    struct sender *s = arg, **pp = &s->q->s_head, *prev = NULL;
    while (*pp != s)
        prev = *pp, pp = &(*pp)->next;
    *pp = s->next;
    if (s->q->s_tail == s)
        s->q->s_tail = prev;
    char msg[160];
    snprintf(msg, sizeof msg, "mailbox '%s' stayed full; the message was not sent", s->q->name);
    s->q->ans->err(&s->w, BX_E_TIMEOUT, msg);
    sender_free(s);
    flush_all();
}

int mbq_deliver(struct mbq *q, struct mbq_mail *m, struct mbq_who *w, double timeout)
{
    if (!q->s_head && fits(q, m)) {
        enqueue(q, m);
        q->ans->ok(w, NULL);
        mbq_who_clear(w);
        serve_pull(q);
        return 0;
    }
    struct sender *s = calloc(1, sizeof *s);
    if (!s) {
        q->ans->err(w, BX_E_INTERNAL, "out of memory");
        mbq_who_clear(w);
        mbq_mail_free(m);
        return 0;
    }
    s->q = q;
    s->m = m;
    s->w = *w;
    if (timeout > 0) {
        s->timer = evtimer_new(mgr->base, sender_timeout_cb, s);
        if (s->timer)
            timer_arm(s->timer, timeout);
    }
    if (q->s_tail)
        q->s_tail->next = s;
    else
        q->s_head = s;
    q->s_tail = s;
    return 1;
}

void mbq_pull(struct mbq *q, struct mbq_who *w, size_t max, double timeout)
{
    if (q->pulling)     /* a newer pull replaces one its asker gave up on */
        pull_answer_none(q);
    q->pulling = 1;
    q->puller = *w;
    q->pull_max = max;
    if (q->head)
        return serve_pull(q);
    if (timeout == 0)
        return pull_timeout_cb(-1, 0, q);
    if (timeout > 0)
        timer_arm(q->pull_timer, timeout);
}

void mbq_drop_parked(struct mbq *q, int (*drop)(const struct mbq_who *w, void *arg), void *arg)
{
    struct sender **pp = &q->s_head, *s;
    q->s_tail = NULL;
    while ((s = *pp)) {
        if (drop(&s->w, arg)) {
            *pp = s->next;
            sender_free(s);
        } else {
            q->s_tail = s;
            pp = &s->next;
        }
    }
    admit(q);       /* a smaller one behind a dropped one may fit the bytes */
}

struct mbq *mbq_new(const char *name, size_t cap, const struct mbq_answers *ans)
{
    struct mbq *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->pull_timer = evtimer_new(mgr->base, pull_timeout_cb, q);
    if (!q->pull_timer) {
        free(q);
        return NULL;
    }
    snprintf(q->name, sizeof q->name, "%s", name);
    q->ans = ans;
    q->cap = cap ? cap : MAILBOX_DEFAULT_COUNT;
    return q;
}

void mbq_free(struct mbq *q, const char *why)
{
    if (!q)
        return;
    for (struct sender *s = q->s_head, *next; s; s = next) {
        next = s->next;
        q->ans->err(&s->w, BX_E_VM_NOT_FOUND, why);
        sender_free(s);
    }
    if (q->pulling && q->puller.is_client)
        q->ans->err(&q->puller, BX_E_VM_NOT_FOUND, why);
    mbq_who_clear(&q->puller);
    for (struct mbq_mail *m = q->head, *next; m; m = next) {
        next = m->next;
        mbq_mail_free(m);
    }
    event_free(q->pull_timer);
    free(q);
}
