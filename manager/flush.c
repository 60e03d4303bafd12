/* flush.c - writes the frames queued during one callback straight away.
 * Left to itself a bufferevent arms EPOLLOUT, waits a loop round, writes and
 * disarms: 2 epoll_ctl and an extra wakeup per frame. So our bufferevents
 * keep EV_WRITE off; writers flush_mark() what they queued, and flush_all()
 * (at the end of read callbacks, else from an active event in the same loop
 * round) writes it in one writev per socket. Only what the socket refuses is
 * left to the bufferevent (EV_WRITE on until it drains). Owners call
 * flush_forget() before freeing a bufferevent. */
#include "manager.h"

#include <stdlib.h>

struct dirty { struct bufferevent *bev; int *flag; };
static struct dirty *dirty;
static size_t ndirty, cap;
static struct event *flush_ev;

static void flush_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd; (void)ev; (void)arg;
    flush_all();
}

void flush_mark(struct bufferevent *bev, int *flag)
{
    if (*flag)
        return;
    if (ndirty == cap) {
        size_t n = cap ? cap * 2 : 64;
        struct dirty *d = realloc(dirty, n * sizeof *d);
        if (!d)
            return;     /* the bufferevent still writes it, a bit later */
        dirty = d;
        cap = n;
    }
    *flag = 1;
    dirty[ndirty++] = (struct dirty){bev, flag};
    if (!flush_ev)
        flush_ev = event_new(mgr->base, -1, 0, flush_cb, NULL);
    if (ndirty == 1 && flush_ev)   /* a safety net for writers outside read callbacks */
        event_active(flush_ev, EV_TIMEOUT, 0);
}

void flush_forget(struct bufferevent *bev, int *flag)
{
    if (!*flag)
        return;
    for (size_t i = 0; i < ndirty; i++)
        if (dirty[i].bev == bev)
            dirty[i].bev = NULL;
    *flag = 0;
}

void flush_all(void)
{
    for (size_t i = 0; i < ndirty; i++) {
        struct bufferevent *bev = dirty[i].bev;
        if (!bev)
            continue;
        *dirty[i].flag = 0;
        struct evbuffer *out = bufferevent_get_output(bev);
        /* A socket bufferevent freezes its output's start so only it drains
         * it; thaw just for this write, as its own write callback does.
         * Errors show up as EOF/error on the read side. */
        if (evbuffer_get_length(out)) {
            evbuffer_unfreeze(out, 1);
            evbuffer_write(out, bufferevent_getfd(bev));
            evbuffer_freeze(out, 1);
        }
        if (evbuffer_get_length(out))
            bufferevent_enable(bev, EV_WRITE);
        else
            bufferevent_disable(bev, EV_WRITE);
    }
    ndirty = 0;
}

void flush_free(void)
{
    if (flush_ev)
        event_free(flush_ev);
    flush_ev = NULL;
    free(dirty);
    dirty = NULL;
    ndirty = cap = 0;
}
