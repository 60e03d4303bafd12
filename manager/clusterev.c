/* clusterev.c - nats.c's libevent adapter (nats/adapters/libevent.h),
 * with two changes that take thread hand-offs and loop rounds out of every
 * forwarded request (bench/cluster.py: remote exec p50 0.39 -> ~0.2 ms on
 * a loaded two-core machine):
 *
 * - Reads: after nats.c has read and parsed what the socket had
 *   (natsConnection_ProcessReadEvent, on the loop), cluster__drain() hands
 *   each message to its handler right there. The subscriptions are
 *   synchronous, so no nats.c delivery thread and no wake of the loop sit
 *   between the socket and the handler.
 * - Writes: nats.c asks for EV_WRITE whenever it has buffered something
 *   (a publish, with SendAsap). The header's adapter then arms EPOLLOUT,
 *   waits a loop round, writes and disarms: two epoll_ctl and a round per
 *   publish. Here the request activates a user event instead, which writes
 *   in the same loop round (what several handlers published goes in one
 *   send); only what the socket refuses waits for EV_WRITE.
 *
 * - Handled messages are destroyed in batches (cluster__bury), not one by
 *   one: each natsMsg_Destroy wakes nats.c's garbage-collector thread.
 *
 * nats.c calls attach and write from other threads too (the reconnect
 * thread; a publish from the worker or the pinger): event_active and
 * event_add are thread-safe here (natsLibevent_Init: libevent's pthreads). */
#include "clusterint.h"

#include <nats/adapters/libevent.h>     /* defines functions: this file only */

#include <stdatomic.h>

struct ev {
    natsConnection *nc;
    struct event_base *base;
    struct event *read, *write, *flush, *keep;
    atomic_int want;            /* nats.c has bytes to send (write add, not yet remove) */
};

void cluster_init_threads(void)
{
    natsLibevent_Init();
}

static void on_read(evutil_socket_t fd, short event, void *arg)
{
    struct ev *e = arg;
    (void)fd;
    if (event & EV_READ) {
        natsConnection_ProcessReadEvent(e->nc);
        cluster__drain();
    }
    if (event & EV_WRITE)
        natsConnection_ProcessWriteEvent(e->nc);
}

/* Writes what nats.c buffered; a remainder the socket refused waits for
 * EV_WRITE (nats.c removes the want once everything is out). */
static void on_flush(evutil_socket_t fd, short event, void *arg)
{
    struct ev *e = arg;
    (void)fd; (void)event;
    if (!atomic_load(&e->want))
        return;
    natsConnection_ProcessWriteEvent(e->nc);
    if (atomic_load(&e->want) && e->write)
        event_add(e->write, NULL);
}

static void keep_alive(evutil_socket_t fd, short flags, void *arg)
{
    (void)fd; (void)flags; (void)arg;
}

static natsStatus detach(void *user)
{
    struct ev *e = user;
    if (e->read)
        event_free(e->read);
    if (e->write)
        event_free(e->write);
    if (e->flush)
        event_free(e->flush);
    if (e->keep) {
        event_active(e->keep, 0, 0);
        event_free(e->keep);
    }
    free(e);
    return NATS_OK;
}

static natsStatus ev_read(void *user, bool add)
{
    struct ev *e = user;
    return (add ? event_add(e->read, NULL) : event_del_noblock(e->read)) == 0 ? NATS_OK : NATS_ERR;
}

static natsStatus ev_write(void *user, bool add)
{
    struct ev *e = user;
    atomic_store(&e->want, add);
    if (add) {
        event_active(e->flush, EV_WRITE, 0);
        return NATS_OK;
    }
    return event_del_noblock(e->write) == 0 ? NATS_OK : NATS_ERR;
}

/* The first attach makes the state; a reconnect's gets new socket events. */
static natsStatus attach(void **user, void *loop, natsConnection *nc, natsSock sock)
{
    struct ev *e = *user;
    if (!e) {
        struct timeval far = {100000, 0};
        if (!(e = calloc(1, sizeof *e)))
            return NATS_NO_MEMORY;
        e->nc = nc;
        e->base = loop;
        if (!(e->keep = event_new(e->base, -1, EV_PERSIST, keep_alive, NULL)) ||
            event_add(e->keep, &far) != 0 ||
            !(e->flush = event_new(e->base, -1, 0, on_flush, e))) {
            detach(e);
            return NATS_NO_MEMORY;
        }
    } else {
        if (e->read)
            event_free(e->read);
        if (e->write)
            event_free(e->write);
        e->read = e->write = NULL;
    }
    e->read = event_new(e->base, sock, EV_READ | EV_PERSIST, on_read, e);
    e->write = event_new(e->base, sock, EV_WRITE | EV_PERSIST, on_read, e);
    if (!e->read || !e->write) {
        detach(e);
        *user = NULL;
        return NATS_NO_MEMORY;
    }
    *user = e;
    return ev_read(e, true);
}

/* ---- the graveyard ---- */

#define GRAVE_MAX 256
#define GRAVE_BYTES (1u << 20)
#define GRAVE_MS 5

static struct {
    natsMsg *m[GRAVE_MAX];      /* handled, not yet destroyed */
    size_t n, bytes;
    struct event *ev;
} G;

/* natsMsg_Destroy hands the message to nats.c's garbage-collector thread
 * and wakes it: a context switch per message, on the path of every
 * forwarded request and competing with the node for the CPU. Destroyed in
 * batches instead: when GRAVE_MAX or GRAVE_BYTES are held, else GRAVE_MS
 * after the first. */
static void grave_empty(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    while (G.n)
        natsMsg_Destroy(G.m[--G.n]);
    G.bytes = 0;
}

void cluster__bury(natsMsg *m)
{
    size_t len = (size_t)natsMsg_GetDataLength(m);
    if (G.n == GRAVE_MAX || G.bytes + len > GRAVE_BYTES || !G.ev)
        grave_empty(-1, 0, NULL);
    if (!G.ev)
        return natsMsg_Destroy(m);
    if (G.n == 0) {
        struct timeval tv = {0, GRAVE_MS * 1000};
        evtimer_add(G.ev, &tv);
    }
    G.m[G.n++] = m;
    G.bytes += len;
}

void cluster__grave_empty(void)
{
    grave_empty(-1, 0, NULL);
}

int cluster__grave_init(struct event_base *base)
{
    return (G.ev = evtimer_new(base, grave_empty, NULL)) ? 0 : -1;
}

void cluster__grave_fini(void)
{
    grave_empty(-1, 0, NULL);
    if (G.ev)
        event_free(G.ev);
    G.ev = NULL;
}

natsStatus cluster__set_loop(natsOptions *opts, struct event_base *base)
{
    return natsOptions_SetEventLoop(opts, base, attach, ev_read, ev_write, detach);
}
