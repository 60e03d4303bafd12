/* link.c - the node's end of its socketpair with the manager (fd 3):
 * blocking frame reads that a wall timeout can interrupt, one-write
 * replies, and the queue of requests read while a callback waited. */
#include "node.h"
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Kept mail and posts go in one write at this many frames or bytes: the
 * manager then reads them in one go, and a sending script makes one
 * syscall per 16 sends instead of one per send. */
#define LINK_CORK_FRAMES 16
#define LINK_CORK_BYTES 16384

/* ppoll on fd 3 and the net fds, if any, (SIGALRM unblocked atomically, as link_read
 * does). Restores the mask. Returns -3 when a net fd is ready or the
 * deadline passed, 1 when fd 3 is readable, 0 on EINTR, -1 on error. */
static int link_poll(bx_node *n, sigset_t *old)
{
    struct pollfd pf[1 + 512];
    int k = !n->xfds ? 0 : n->nxfds < 512 ? n->nxfds : 512;
    pf[0] = (struct pollfd){ .fd = n->fd, .events = POLLIN };
    if (k)
        memcpy(pf + 1, n->xfds, (size_t)k * sizeof *pf);
    struct timespec ts, *tp = NULL;
    if (n->xfds && n->xdeadline >= 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = n->xdeadline - (now.tv_sec * 1e3 + now.tv_nsec / 1e6);
        if (left < 0)
            left = 0;
        ts.tv_sec = (time_t)(left / 1e3);
        ts.tv_nsec = (long)((left - ts.tv_sec * 1e3) * 1e6);
        tp = &ts;
    }
    int pr = ppoll(pf, (nfds_t)k + 1, tp, old);
    sigprocmask(SIG_SETMASK, old, NULL);
    if (pr < 0)
        return errno == EINTR ? 0 : -1;
    if (pr == 0)
        return -3;
    for (int i = 1; i <= k; i++)
        if (pf[i].revents)
            return -3;
    return 1;   /* only fd 3: read it */
}

int link_read(bx_node *n, char **line, size_t *len, int stop_on_timeout)
{
    if (link_flush(n) < 0)
        return -1;  /* nothing we kept may wait behind a read */
    for (;;) {
        int r = fb_next(&n->fb, line, len);
        if (r != 0)
            return r;
        if (stop_on_timeout) {
            /* SIGALRM is blocked only between checking the flag and ppoll,
             * which unblocks it atomically: a timer firing in that gap
             * still wakes us instead of being lost */
            sigset_t block, old;
            sigemptyset(&block);
            sigaddset(&block, SIGALRM);
            sigprocmask(SIG_BLOCK, &block, &old);
            if (limits_timed_out()) {
                sigprocmask(SIG_SETMASK, &old, NULL);
                return -2;
            }
            int x = link_poll(n, &old);
            if (x < 0)
                return x;   /* -3: a net fd or the deadline; -1 */
            if (x == 0)
                continue;   /* EINTR: check the timer again */
        }
        ssize_t got = fb_read_fd(&n->fb, n->fd);
        if (got == 0)
            return 0;
        if (got < 0 && errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

/* msg (stolen) as one frame in n->wbuf: 0, -1 (out of memory) or -2 (not a
 * reply, and over the frame limit). */
static int frame_of(bx_node *n, json_t *msg, const char **buf, size_t *len)
{
    int rc = reply_build(n, msg, buf, len);
    if (rc == 0 && *len > n->fb.max && !json_object_get(msg, "id")) {
        /* A callback, mail or post (not a reply) too big for one frame: an
         * error "reply" in its place would have no request to answer, and
         * the manager kills a node for a stray reply. The caller raises in
         * Lua instead (tests/attacks/160, 129). */
        json_decref(msg);
        return -2;
    }
    if (rc == 0 && *len > n->fb.max) {
        /* the manager would drop the whole link over one oversized reply */
        json_t *err = proto_error_new(json_object_get(msg, "id"), BX_E_CONVERSION_ERROR,
                                      "reply of %zu bytes exceeds the frame limit", *len);
        rc = reply_build(n, err, buf, len);
        json_decref(err);
    }
    json_decref(msg);
    return rc < 0 ? -1 : 0;
}

int link_flush(bx_node *n)
{
    size_t len = n->cork_len;
    n->cork_len = 0;
    n->cork_n = 0;
    return len ? bx_write_all(n->fd, n->cork, len) : 0;
}

int link_send_later(bx_node *n, lua_State *L, json_t *msg)
{
    const char *buf;
    size_t len;
    int rc = frame_of(n, msg, &buf, &len);
    if (rc < 0)
        return rc;
    if (n->cork_len + len > LINK_CORK_BYTES && link_flush(n) < 0)
        return -1;
    if (!n->cork && !(n->cork = malloc(LINK_CORK_BYTES)))
        return bx_write_all(n->fd, buf, len);   /* out of memory: unbatched */
    if (len > LINK_CORK_BYTES)
        return bx_write_all(n->fd, buf, len);
    memcpy(n->cork + n->cork_len, buf, len);
    n->cork_len += len;
    if (++n->cork_n >= LINK_CORK_FRAMES)
        return link_flush(n);
    if (n->cork_n == 1)
        limits_arm_flush(L);
    return 0;
}

int link_send(bx_node *n, json_t *msg)
{
    const char *buf;
    size_t len;
    if (link_flush(n) < 0) {
        json_decref(msg);
        return -1;
    }
    int rc = frame_of(n, msg, &buf, &len);
    return rc < 0 ? rc : bx_write_all(n->fd, buf, len);
}


int link_await(bx_node *n, link_want want, void *ud)
{
    for (;;) {
        char *line, perr[128];
        size_t len;
        int r = link_read(n, &line, &len, 1);
        if (r == 0)
            exit(0);
        if (r == -1)
            _exit(1);
        if (r == -2 || r == -3)
            return r;
        json_t *m = proto_parse(line, len, perr, sizeof perr);
        /* a stream_ack is consumed whatever waits: a stream may block on
         * its window after this wait */
        int w = !m ? -1 : want != stream_want && stream_frame(m) ? 0 : want(m, ud);
        json_decref(m);
        if (w == 1)
            return 1;
        if (w < 0)
            link_queue_push(n, line, len); /* answered after this request */
    }
}

void link_queue_push(bx_node *n, const char *line, size_t len)
{
    bx_queued *q = malloc(sizeof *q + len + 1);
    if (!q)
        return; /* out of memory: the manager times the request out */
    q->next = NULL;
    q->len = len;
    memcpy(q->line, line, len);
    q->line[len] = '\0';
    if (n->q_tail)
        n->q_tail->next = q;
    else
        n->q_head = q;
    n->q_tail = q;
}

bx_queued *link_queue_pop(bx_node *n)
{
    bx_queued *q = n->q_head;
    if (q) {
        n->q_head = q->next;
        if (!n->q_head)
            n->q_tail = NULL;
    }
    return q;
}
