/* mailremote.c - mailboxes across hosts (mailremote.h; docs/cluster.md
 * "Mail"). Core NATS drops to slow consumers, so the flow control is ours
 * and is the one a single host already has: the sender's ack.
 *
 * Origin side: a send to a name that is not here is found with
 * names_where (names_lookup when the replica does not know it yet), gets a
 * seq, is remembered as pending and goes to "<prefix>.h.<host>.mail". Its
 * sender's ack (node mail_ack, client reply) is held until the target
 * answers on "<prefix>.h.<origin>.mailack": accepted, PARKED (its queue is
 * full: keep waiting, the accept comes when room is made) or an error. So
 * what is in flight per sender is bounded by the sender's own window (a
 * node's 64 un-acked sends, a client's pending requests), and nothing is
 * dropped silently: a pending send fails with VM_NOT_FOUND when its host
 * stops being alive (hosts_on_change), with "cluster unavailable" when
 * NATS goes away (cluster_on_state), and with TIMEOUT when its host heard
 * nothing of it within ANSWER_S (its manager's inbox overflowed).
 *
 * Order per sender: one publisher (this loop) on one connection, one
 * subject per target host, one subscription there drained in order by its
 * loop, and mbq_deliver's FIFO of parked senders.
 *
 * Batching: what one loop round queues for a host goes in one publish
 * (mails or acks), up to BATCH_BYTES; a 1 s tick fails the unheard. */
#include "mailremote.h"
#include "hosts.h"
#include "mailbox.h"
#include "mailcheck.h"
#include "names.h"
#include "timer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEND_BUCKETS 4096
#define BATCH_BYTES ((size_t)256 << 10)     /* well under NATS's 1 MB max payload */
#define ANSWER_S 5.0        /* a send its host never heard of fails after this */
#define TICK_S 1.0

struct pend {
    struct pend *hnext, *prev, *next;   /* by seq; every pending, oldest first */
    long long seq;
    char host[CLUSTER_HOST_MAX + 1];
    int heard;              /* the target parked it: wait for the accept */
    double sent;
    struct mbq_who w;
};

struct batch {              /* what goes to one host in the next publish */
    struct batch *next;
    char host[CLUSTER_HOST_MAX + 1];
    int acks;               /* 1: acks to an origin; 0: mail to a target */
    json_t *items;
    size_t bytes;
};

struct qsend {              /* a send waiting for names_lookup of its name */
    struct qsend *next;
    struct mbq_who w;
    char from[BX_NAME_MAX + 2];
    json_t *value;
    size_t bytes;
    double timeout;
};

struct lookup {
    struct lookup *next;
    char to[BX_NAME_MAX + 1];
    struct qsend *head, *tail;
};

static struct {
    int started;
    long long next_seq;
    struct pend *tab[PEND_BUCKETS], *head, *tail;
    struct batch *batches;
    struct lookup *lookups;
    struct event *flush_ev, *tick;
} R;

/* ---- pending sends ---- */

static struct pend **pend_slot(long long seq)
{
    struct pend **pp = &R.tab[(unsigned long long)seq % PEND_BUCKETS];
    while (*pp && (*pp)->seq != seq)
        pp = &(*pp)->hnext;
    return pp;
}

static struct pend *pend_add(struct mbq_who *w, const char *host)
{
    struct pend *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->seq = R.next_seq++;
    snprintf(p->host, sizeof p->host, "%s", host);
    p->sent = proto_now();
    p->w = *w;
    w->tag = NULL;          /* moved */
    struct pend **pp = pend_slot(p->seq);
    *pp = p;
    p->prev = R.tail;
    if (R.tail)
        R.tail->next = p;
    else
        R.head = p;
    R.tail = p;
    return p;
}

/* Unlinks the pending send seq and returns it (NULL: not pending). */
static struct pend *pend_take(long long seq)
{
    struct pend **pp = pend_slot(seq), *p = *pp;
    if (!p)
        return NULL;
    *pp = p->hnext;
    if (p->prev)
        p->prev->next = p->next;
    else
        R.head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        R.tail = p->prev;
    return p;
}

/* Answers p's sender (code BX_OK: accepted) and frees p, taken already. */
static void pend_end(struct pend *p, enum bx_err code, const char *msg)
{
    mailbox_answer(&p->w, code, msg);
    mbq_who_clear(&p->w);
    free(p);
}

/* Fails every pending send to host (NULL: all) with code and msg. */
static void pend_fail_all(const char *host, enum bx_err code, const char *msg)
{
    for (struct pend *p = R.head, *next; p; p = next) {
        next = p->next;
        if (!host || strcmp(p->host, host) == 0)
            pend_end(pend_take(p->seq), code, msg);
    }
    flush_all();
}

/* ---- batches: one publish per host per loop round ---- */

static void batch_publish(struct batch *b)
{
    char subject[256], err[256];
    json_t *msg = b->acks
        ? json_pack("{s:s, s:O}", "host", cluster_self(), "acks", b->items)
        : json_pack("{s:s, s:O}", "origin", cluster_self(), "mails", b->items);
    int ok = msg && cluster_subject(subject, sizeof subject, "h.%s.%s", b->host,
                                    b->acks ? "mailack" : "mail") == 0 &&
             cluster_publish(subject, NULL, msg, err, sizeof err) == 0;
    if (!msg)
        snprintf(err, sizeof err, "out of memory");
    json_decref(msg);
    if (!ok && b->acks) {   /* the origin's own timer fails what it never hears of */
        fprintf(stderr, "bioxen-manager: mail: acks to %s lost: %s\n", b->host, err);
    } else if (!ok) {
        enum bx_err code = strstr(err, "max payload") && json_array_size(b->items) == 1
                         ? BX_E_FRAME_TOO_LARGE
                         : strstr(err, "unavailable") ? BX_E_CLUSTER_UNAVAILABLE : BX_E_INTERNAL;
        size_t i;
        json_t *it;
        json_array_foreach(b->items, i, it) {
            struct pend *p = pend_take(json_integer_value(json_array_get(it, 0)));
            if (p)
                pend_end(p, code, err);
        }
    }
    json_array_clear(b->items);
    b->bytes = 0;
}

static void flush_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    for (struct batch *b = R.batches; b; b = b->next)
        if (json_array_size(b->items))
            batch_publish(b);
    flush_all();
}

static struct batch *batch_get(const char *host, int acks)
{
    struct batch *b = R.batches;
    while (b && (b->acks != acks || strcmp(b->host, host) != 0))
        b = b->next;
    if (b)
        return b;
    if (!(b = calloc(1, sizeof *b)) || !(b->items = json_array())) {
        free(b);
        return NULL;
    }
    snprintf(b->host, sizeof b->host, "%s", host);
    b->acks = acks;
    b->next = R.batches;
    R.batches = b;
    return b;
}

/* Queues item (stolen) for host; a batch past BATCH_BYTES goes at once. */
static int batch_add(const char *host, int acks, json_t *item, size_t bytes)
{
    struct batch *b = item ? batch_get(host, acks) : NULL;
    if (!b) {
        json_decref(item);
        return -1;
    }
    if (b->bytes && b->bytes + bytes > BATCH_BYTES)
        batch_publish(b);
    json_array_append_new(b->items, item);
    b->bytes += bytes;
    event_active(R.flush_ev, EV_TIMEOUT, 0);
    return 0;
}

/* ---- origin: sending ---- */

static void route(const char *host, struct mbq_who *w, const char *from, const char *to,
                  json_t *value, size_t bytes, double timeout)
{
    char msg[160];
    if (!cluster_up()) {
        mailbox_answer(w, BX_E_CLUSTER_UNAVAILABLE, "cluster unavailable");
        return mbq_who_clear(w);
    }
    if (strcmp(host, cluster_self()) == 0 || !hosts_alive(host)) {
        snprintf(msg, sizeof msg, "no VM or mailbox named '%.64s' (its host %s is not alive)", to, host);
        mailbox_answer(w, BX_E_VM_NOT_FOUND, msg);
        return mbq_who_clear(w);
    }
    struct pend *p = pend_add(w, host);
    if (!p) {
        mailbox_answer(w, BX_E_INTERNAL, "out of memory");
        return mbq_who_clear(w);
    }
    json_t *item = json_pack("[I, s, s, O, f, I]", (json_int_t)p->seq, from, to,
                             value ? value : json_null(), timeout, (json_int_t)bytes);
    if (batch_add(host, 0, item, bytes + 48) < 0)
        pend_end(pend_take(p->seq), BX_E_INTERNAL, "out of memory");
}

static void qsend_free(struct qsend *q)
{
    json_decref(q->value);
    mbq_who_clear(&q->w);
    free(q);
}

/* names_lookup answered: every send queued behind it goes (or fails) in order. */
static void lookup_done(int ok, const char *why, void *arg)
{
    struct lookup *l = arg, **pp = &R.lookups;
    char msg[160];
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp)
        *pp = l->next;
    snprintf(msg, sizeof msg, "no VM or mailbox named '%.64s'", l->to);
    for (struct qsend *q = l->head, *next; q; q = next) {
        next = q->next;
        if (ok == 1 && why)
            route(why, &q->w, q->from, l->to, q->value, q->bytes, q->timeout);
        else
            mailbox_answer(&q->w, ok == 0 ? BX_E_VM_NOT_FOUND : BX_E_CLUSTER_UNAVAILABLE,
                           ok == 0 ? msg : why ? why : "cluster unavailable");
        qsend_free(q);
    }
    free(l);
    flush_all();
}

static struct lookup *lookup_find(const char *to)
{
    struct lookup *l = R.lookups;
    while (l && strcmp(l->to, to) != 0)
        l = l->next;
    return l;
}

/* Queues the send behind the lookup of its name (starting one if none). */
static int lookup_queue(const char *to, struct mbq_who *w, const char *from, json_t *value,
                        size_t bytes, double timeout)
{
    struct lookup *l = lookup_find(to);
    int fresh = !l;
    struct qsend *q = calloc(1, sizeof *q);
    if (fresh && q && (l = calloc(1, sizeof *l))) {
        snprintf(l->to, sizeof l->to, "%s", to);
        l->next = R.lookups;
        R.lookups = l;
    }
    if (!q || !l) {
        free(q);
        mailbox_answer(w, BX_E_INTERNAL, "out of memory");
        return mbq_who_clear(w), 0;
    }
    q->w = *w;
    snprintf(q->from, sizeof q->from, "%s", from);
    q->value = value ? json_incref(value) : json_null();
    q->bytes = bytes;
    q->timeout = timeout;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    if (fresh && names_lookup(to, lookup_done, l) < 0)
        lookup_done(-1, "cluster unavailable", l);
    return 0;
}

int mailremote_send(struct mbq_who *w, const char *from, const char *to, json_t *value,
                    size_t bytes, double timeout)
{
    if (!R.started || !to)
        return -1;
    const char *host = lookup_find(to) ? NULL : names_where(to);
    if (!host)
        return lookup_queue(to, w, from, value, bytes, timeout);
    route(host, w, from, to, value, bytes, timeout);
    return 0;
}

/* "<prefix>.h.<self>.mailack": {"host": H, "acks": [[seq, ...], ...]} */
static void on_ack(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    json_t *items, *it;
    const char *host = mailcheck_batch(msg, "host", "acks", &items), *code, *text;
    size_t i;
    long long seq;
    if (!host) {
        fprintf(stderr, "bioxen-manager: mail: malformed mailack dropped\n");
        return;
    }
    json_array_foreach(items, i, it) {
        struct pend **pp;
        if (mailcheck_ack(it, &seq, &code, &text) < 0 || !*(pp = pend_slot(seq)) ||
            strcmp((*pp)->host, host) != 0)
            continue;   /* malformed, or for a send already failed here */
        if (code && strcmp(code, "PARKED") == 0)
            (*pp)->heard = 1;
        else
            pend_end(pend_take(seq), code ? bx_err_from_code(code) : BX_OK, text ? text : "");
    }
    flush_all();
}

/* ---- target: receiving ---- */

void mailremote_answer(struct mbq_who *w, enum bx_err code, const char *msg)
{
    json_t *seq = w->tag, *item;
    if (!json_is_integer(seq) || !R.started)
        return;
    item = code == BX_OK ? json_pack("[O]", seq)
                         : json_pack("[O, s, s]", seq, bx_err_code(code), msg ? msg : "");
    batch_add(w->host, 1, item, 32 + (msg && code != BX_OK ? strlen(msg) : 0));
}

static void deliver_one(const char *origin, json_t *it)
{
    struct mailcheck_mail m;
    struct mbq_who w;
    char msg[160];
    if (mailcheck_mail(it, &m) < 0) {
        if (m.seq >= 0)
            batch_add(origin, 1, json_pack("[I, s, s]", (json_int_t)m.seq, "BAD_REQUEST",
                                           "malformed mail item"), 64);
        return;
    }
    memset(&w, 0, sizeof w);
    w.is_remote = 1;
    snprintf(w.host, sizeof w.host, "%s", origin);
    w.tag = json_integer(m.seq);
    int r = mailbox_deliver_remote(m.to, m.from, m.value, m.bytes, &w, m.timeout);
    if (r < 0) {
        snprintf(msg, sizeof msg, "no VM or mailbox named '%.64s' on host %s", m.to, cluster_self());
        mailremote_answer(&w, BX_E_VM_NOT_FOUND, msg);
        mbq_who_clear(&w);
    } else if (r == 1) {
        batch_add(origin, 1, json_pack("[I, s]", (json_int_t)m.seq, "PARKED"), 32);
    }
}

/* "<prefix>.h.<self>.mail": {"origin": H, "mails": [[seq, from, to, value, timeout, bytes], ...]} */
static void on_mail(const char *subject, const char *reply, json_t *msg, void *arg)
{
    (void)subject; (void)reply; (void)arg;
    json_t *items, *it;
    size_t i;
    const char *origin = mailcheck_batch(msg, "origin", "mails", &items);
    if (!origin) {
        fprintf(stderr, "bioxen-manager: mail: malformed mail batch dropped\n");
        return;
    }
    json_array_foreach(items, i, it)
        deliver_one(origin, it);
    flush_all();
}

/* ---- faults and lifetime ---- */

static void host_change(const char *host, int up, void *arg)
{
    (void)arg;
    char msg[160];
    if (up)
        return;
    snprintf(msg, sizeof msg, "host %s is gone: the message was not delivered", host);
    pend_fail_all(host, BX_E_VM_NOT_FOUND, msg);
    mailbox_host_gone(host);    /* what its senders parked here: they were told "failed" */
}

static void state_change(int up, const char *why, void *arg)
{
    (void)arg;
    char msg[160];
    if (up)
        return;
    snprintf(msg, sizeof msg, "cluster unavailable (%s): the message may not have been delivered", why);
    pend_fail_all(NULL, BX_E_CLUSTER_UNAVAILABLE, msg);
}

static void tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    double now = proto_now();
    char msg[160];
    for (struct pend *p = R.head, *next; p; p = next) {
        next = p->next;
        if (!p->heard && now - p->sent > ANSWER_S) {
            snprintf(msg, sizeof msg, "host %s did not answer within %.0f s", p->host, ANSWER_S);
            pend_end(pend_take(p->seq), BX_E_TIMEOUT, msg);
        }
    }
    flush_all();
}

int mailremote_start(void)
{
    char mail[256], ack[256];
    struct timeval tv = timer_tv(TICK_S);
    if (cluster_subject(mail, sizeof mail, "h.%s.mail", cluster_self()) < 0 ||
        cluster_subject(ack, sizeof ack, "h.%s.mailack", cluster_self()) < 0)
        return -1;
    R.flush_ev = event_new(mgr->base, -1, 0, flush_cb, NULL);
    R.tick = event_new(mgr->base, -1, EV_PERSIST, tick_cb, NULL);
    if (!R.flush_ev || !R.tick || event_add(R.tick, &tv) < 0 ||
        cluster_subscribe(mail, NULL, on_mail, NULL) < 0 ||
        cluster_subscribe(ack, NULL, on_ack, NULL) < 0 ||
        hosts_on_change(host_change, NULL) < 0 || cluster_on_state(state_change, NULL) < 0)
        return -1;
    R.next_seq = 1;
    R.started = 1;
    return 0;
}

void mailremote_stop(void)
{
    if (!R.started)
        return;
    R.started = 0;
    for (struct pend *p = R.head, *next; p; p = next) {
        next = p->next;
        mbq_who_clear(&p->w);
        free(p);
    }
    R.head = R.tail = NULL;
    for (struct batch *b = R.batches, *next; b; b = next) {
        next = b->next;
        json_decref(b->items);
        free(b);
    }
    R.batches = NULL;
    event_free(R.flush_ev);
    event_free(R.tick);
}
