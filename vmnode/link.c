/* link.c - the node's end of its socketpair with the manager (fd 3):
 * blocking frame reads that a wall timeout can interrupt, one-write
 * replies, and the queue of requests read while a callback waited.
 * Called by main.c (request loop) and callback.c (waiting for cb_result). */
#include "node.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int link_read(bx_node *n, char **line, size_t *len, int stop_on_timeout)
{
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
            struct pollfd p = { .fd = n->fd, .events = POLLIN };
            int pr = ppoll(&p, 1, NULL, &old);
            sigprocmask(SIG_SETMASK, &old, NULL);
            if (pr < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
        }
        ssize_t got = fb_read_fd(&n->fb, n->fd);
        if (got == 0)
            return 0;
        if (got < 0 && errno != EINTR && errno != EAGAIN)
            return -1;
    }
}

int link_send(bx_node *n, json_t *msg)
{
    const char *buf;
    size_t len;
    int rc = reply_build(n, msg, &buf, &len);
    if (rc == 0 && len > n->fb.max) {
        /* the manager would drop the whole link over one oversized reply */
        json_t *err = proto_error_new(json_object_get(msg, "id"), BX_E_CONVERSION_ERROR,
                                      "reply of %zu bytes exceeds the frame limit", len);
        rc = reply_build(n, err, &buf, &len);
        json_decref(err);
    }
    json_decref(msg);
    return rc < 0 ? -1 : bx_write_all(n->fd, buf, len);
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
        if (r == -2)
            return -2;
        json_t *m = proto_parse(line, len, perr, sizeof perr);
        int w = m ? want(m, ud) : -1;
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
