/* frame.c - reassembly of newline-delimited frames (see frame.h).
 * Used by the node's loop. */
#include "frame.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fb_init(bx_framebuf *fb, size_t max)
{
    memset(fb, 0, sizeof *fb);
    fb->max = max ? max : BX_FRAME_MAX_DEFAULT;
}

void fb_free(bx_framebuf *fb)
{
    free(fb->data);
    memset(fb, 0, sizeof *fb);
}

/* Makes room for n more bytes (plus a NUL), compacting consumed bytes first
 * so a long-lived buffer does not grow without bound. */
static int fb_reserve(bx_framebuf *fb, size_t n)
{
    if (fb->start > 0 && (fb->start == fb->len || fb->start >= fb->cap / 2)) {
        memmove(fb->data, fb->data + fb->start, fb->len - fb->start);
        fb->len -= fb->start;
        fb->start = 0;
    }
    if (fb->len + n + 1 <= fb->cap)
        return 0;
    size_t cap = fb->cap ? fb->cap : 4096;
    while (cap < fb->len + n + 1) {
        if (cap > ((size_t)-1) / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(fb->data, cap);
    if (!p)
        return -1;
    fb->data = p;
    fb->cap = cap;
    return 0;
}

int fb_append(bx_framebuf *fb, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (fb_reserve(fb, n) < 0)
        return -1;
    memcpy(fb->data + fb->len, p, n);
    fb->len += n;
    return 0;
}

int fb_next(bx_framebuf *fb, char **line, size_t *len)
{
    size_t avail = fb->len - fb->start;
    char *base = fb->data + fb->start;
    char *nl = avail > fb->scan ? memchr(base + fb->scan, '\n', avail - fb->scan) : NULL;
    if (!nl) {
        fb->scan = avail;
        /* a frame may be exactly max bytes; only its '\n' is still missing */
        return avail > fb->max ? -1 : 0;
    }
    size_t n = (size_t)(nl - base);
    if (n > fb->max)
        return -1;
    *nl = '\0';
    *line = base;
    *len = n;
    fb->start += n + 1;
    fb->scan = 0;
    return 1;
}

ssize_t fb_read_fd(bx_framebuf *fb, int fd)
{
    if (fb_reserve(fb, 65536) < 0) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t r = read(fd, fb->data + fb->len, fb->cap - fb->len - 1);
    if (r > 0)
        fb->len += (size_t)r;
    return r;
}

int bx_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        return -1;
    }
    return 0;
}
