/* frame.h - newline-delimited frames over a byte stream.
 *
 * Owns the reassembly buffer used by bioxen-vmnode (the manager uses
 * libevent's evbuffer_readln with the same FRAME_MAX rule). A frame is one
 * JSON object followed by '\n'; the '\n' is not part of the frame. */
#ifndef BX_FRAME_H
#define BX_FRAME_H

#include <stddef.h>
#include <sys/types.h>

#define BX_FRAME_MAX_DEFAULT ((size_t)16 << 20)

typedef struct bx_framebuf {
    char  *data;
    size_t start;   /* first unconsumed byte */
    size_t len;     /* bytes in data[0..len) */
    size_t cap;
    size_t max;     /* longest frame accepted, without the '\n' */
    size_t scan;    /* bytes after start already known to hold no '\n' */
} bx_framebuf;

void fb_init(bx_framebuf *fb, size_t max);
void fb_free(bx_framebuf *fb);

/* Appends n bytes. Returns 0, or -1 when out of memory. */
int fb_append(bx_framebuf *fb, const char *p, size_t n);

/* Extracts the next complete frame. Returns 1 and points *line and *len at it
 * (valid until the next fb_* call; the byte after it is a NUL), 0 when more
 * bytes are needed, -1 when the pending frame is longer than fb->max
 * (the caller must treat the stream as broken). */
int fb_next(bx_framebuf *fb, char **line, size_t *len);

/* Reads once from fd into the buffer. Returns bytes read, 0 on EOF, -1 on
 * error with errno set (EAGAIN/EINTR included: the caller decides). */
ssize_t fb_read_fd(bx_framebuf *fb, int fd);

/* Writes all n bytes to fd, retrying on EINTR and waiting with poll() on
 * EAGAIN. Returns 0, or -1 with errno set. */
int bx_write_all(int fd, const char *p, size_t n);

#endif
